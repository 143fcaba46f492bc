#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: the temporary topic of a dynamic source does not outlive a broker crash. A
# receiver attaches with a dynamic source (its topic %TMP%amqp-<conn>-<n> exists and takes a
# message); ferryd is killed with SIGKILL, so no detach ever deletes the topic; after the restart
# the topic is gone (deleted at start-up, with what it held), a message to the old address is
# rejected with amqp:not-found, and a new dynamic receiver gets a fresh address that works.
# interop: ferry-only own-broker
import amqpc
from amqpc import Message, check, eq
from proton import Delivery


def tmp_topics():
    return [t["name"] for t in amqpc.ferryctl_json("topic", "list")[0]["topics"]
            if t["name"].startswith("%TMP%")]


def test():
    b = amqpc.own_broker()
    try:
        cli = amqpc.connect()
        replies = cli.create_receiver(None, dynamic=True, name="replies", credit=0)
        addr = replies.link.remote_source.address
        check(addr and addr.startswith("%TMP%amqp-"), "dynamic address %r" % addr)
        eq(tmp_topics(), [addr], "temporary topics before the crash")
        snd = amqpc.connect().create_sender(addr, name="to-tmp")
        eq(snd.send(Message(body="held")).remote_state, Delivery.ACCEPTED, "message to it")

        amqpc.restart(b, kill=True)
        eq(tmp_topics(), [], "temporary topics after the restart")
        relay = amqpc.connect().create_sender(None, name="relay")
        d = relay.send(Message(address=addr, body="late"), error_states=[])
        eq(d.remote_state, Delivery.REJECTED, "message to the old dynamic address")
        eq(d.remote.condition.name if d.remote.condition else None, "amqp:not-found",
           "its condition")

        cli = amqpc.connect()
        again = cli.create_receiver(None, dynamic=True, name="replies", credit=10)
        addr2 = again.link.remote_source.address
        check(addr2 and addr2.startswith("%TMP%amqp-"), "new dynamic address %r" % addr2)
        eq(relay.send(Message(address=addr2, body="fresh")).remote_state, Delivery.ACCEPTED,
           "message to the new address")
        eq(again.receive(timeout=amqpc.DEADLINE).body, "fresh", "the new receiver gets it")
        again.accept()
        amqpc.expect_none(again, "nothing of the old topic")
    finally:
        b.close()


if __name__ == "__main__":
    amqpc.main(test)
