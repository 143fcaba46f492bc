#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: request/reply with a dynamic source. A receiver attached with a dynamic source gets
# a broker-made address (%TMP%amqp-<conn>-<n>) in the attach reply; a service reading requests
# from `t/subscriptions/svc` answers to each request's reply-to through the anonymous relay, and a
# sender whose target is that address reaches it too; nothing else reaches it. Once the dynamic
# receiver closes, its temporary topic is gone (`ferryctl topic list`), and a message to the
# address is rejected with amqp:not-found instead of creating the topic again.
# interop: ferry-only
import amqpc
from amqpc import Message, check, eq
from proton import Delivery
from proton.utils import LinkDetached


def topics():
    return [t["name"] for t in amqpc.ferryctl_json("topic", "list")[0]["topics"]]


def test():
    t = amqpc.PREFIX + "-16"
    svc = amqpc.connect()
    requests = svc.create_receiver(t + "/subscriptions/svc", name="svc", credit=10)
    relay = svc.create_sender(None, name="relay")

    cli = amqpc.connect()
    replies = cli.create_receiver(None, dynamic=True, name="replies", credit=10)
    addr = replies.link.remote_source.address
    check(addr and addr.startswith("%TMP%amqp-"), "dynamic address %r" % addr)
    check(replies.link.remote_source.dynamic, "the attach reply's source is dynamic")
    other = cli.create_receiver(None, dynamic=True, name="other", credit=10)
    check(other.link.remote_source.address != addr, "two dynamic sources get two addresses")
    check(addr in topics(), "temporary topic %s listed" % addr)

    req = cli.create_sender(t, name="req")
    for i in range(3):
        d = req.send(Message(body="q%d" % i, reply_to=addr, correlation_id="c%d" % i))
        eq(d.remote_state, Delivery.ACCEPTED, "request %d" % i)
    for i in range(3):
        m = requests.receive(timeout=amqpc.DEADLINE)
        requests.accept()
        d = relay.send(Message(address=m.reply_to, correlation_id=m.correlation_id,
                               body="a" + m.body[1:]))
        eq(d.remote_state, Delivery.ACCEPTED, "reply %d through the relay" % i)
    got = sorted((m.correlation_id, m.body) for m in amqpc.receive_n(replies, 3, "replies"))
    eq(got, [("c0", "a0"), ("c1", "a1"), ("c2", "a2")], "replies reach the dynamic receiver")

    direct = svc.create_sender(addr, name="direct")
    eq(direct.send(Message(body="direct")).remote_state, Delivery.ACCEPTED, "sender to the address")
    eq(replies.receive(timeout=amqpc.DEADLINE).body, "direct", "message of a sender with target")
    replies.accept()
    amqpc.expect_none(other, "the other dynamic receiver gets nothing")

    replies.close()
    amqpc.wait_until(lambda: addr not in topics(), "temporary topic %s deleted" % addr)
    d = relay.send(Message(address=addr, body="late"), error_states=[])
    eq(d.remote_state, Delivery.REJECTED, "relay to a closed dynamic address")
    eq(d.remote.condition.name if d.remote.condition else None, "amqp:not-found",
       "condition of a message to a closed dynamic address")
    check(addr not in topics(), "the late message did not create %s again" % addr)
    d = direct.send(Message(body="late"), error_states=[])
    eq(d.remote_state, Delivery.REJECTED, "sender link to a closed dynamic address")
    try:
        svc.create_sender(addr, name="direct2")
        raise amqpc.TestFailure("a new sender to a closed dynamic address was attached")
    except LinkDetached as e:
        eq(e.link.remote_condition.name, "amqp:not-found", "attach to a closed dynamic address")

    oaddr = other.link.remote_source.address
    cli.close()  # the connection's end deletes the other temporary topic
    amqpc.wait_until(lambda: oaddr not in topics(), "temporary topic %s deleted" % oaddr)
    svc.close()


amqpc.main(test)
