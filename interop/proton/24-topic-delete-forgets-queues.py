#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a deleted topic leaves nothing behind in the store. Request/reply clients attach a
# receiver with a dynamic source per reply address: a temporary topic of one queue, deleted when
# the link ends. N of them attached, written to and detached, and N topics of 4 queues created,
# written and deleted with ferryctl, bring the store's queue count (/metrics ferry_store_queues)
# and the topic count (ferry_topics) back to where they were; a restart brings back none of
# them; temporary topics left behind by a SIGKILL are deleted at start-up and leave nothing
# either. (Before the fix every deleted topic kept its queues' entries in the store's maps.)
# interop: ferry-only own-broker
import os
import urllib.request

import amqpc
from amqpc import Message, check, eq
from proton import Delivery

N = 30


def metrics():
    port = os.environ["FERRY_ADMIN_PORT"]
    with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port,
                                timeout=amqpc.DEADLINE) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()[:2]
            out[name] = float(value)
    return out


def counts():
    m = metrics()
    check("ferry_store_queues" in m, "/metrics has ferry_store_queues")
    return int(m["ferry_store_queues"]), int(m["ferry_topics"])


def wait_counts(want, what):
    """Waits (bounded) for (queues, topics) to be want; the failure names the last seen."""
    seen = []

    def at():
        seen[:] = [counts()]
        return seen[0] == want
    try:
        amqpc.wait_until(at, what)
    except amqpc.TestFailure:
        eq(seen[0], want, "%s: (queues, topics)" % what)


def dynamic_round(conn, relay, n, tag):
    """Attaches n dynamic receivers, sends one message to each address and reads it back."""
    rcvs = [conn.create_receiver(None, dynamic=True, name="%s-%d" % (tag, i), credit=1)
            for i in range(n)]
    for r in rcvs:
        addr = r.link.remote_source.address
        check(addr and addr.startswith("%TMP%amqp-"), "dynamic address %r" % addr)
        d = relay.send(Message(address=addr, body="to " + addr))
        eq(d.remote_state, Delivery.ACCEPTED, "message to %s" % addr)
    for r in rcvs:
        eq(r.receive(timeout=amqpc.DEADLINE).body, "to " + r.link.remote_source.address,
           "the dynamic receiver gets its message")
        r.accept()
    return rcvs


def test():
    b = amqpc.own_broker()
    try:
        base = counts()
        conn = amqpc.connect()
        relay = conn.create_sender(None, name="relay")

        rcvs = dynamic_round(conn, relay, N, "r")
        eq(counts(), (base[0] + N, base[1] + N), "queues and topics with %d dynamic sources" % N)
        for r in rcvs:
            r.close()
        wait_counts(base, "after %d dynamic sources detached" % N)

        names = ["%s-24-%d" % (amqpc.PREFIX, i) for i in range(5)]
        for t in names:
            eq(amqpc.ferryctl("topic", "create", t, "--queues", "4").returncode, 0, "create " + t)
            for i in range(4):
                eq(amqpc.ferryctl("send", t, "--sharding-key", "k%d" % i, "m%d" % i).returncode,
                   0, "send to " + t)
        check(counts()[0] > base[0], "the ferryctl topics' queues are counted")
        for t in names:
            eq(amqpc.ferryctl("topic", "delete", t).returncode, 0, "delete " + t)
        wait_counts(base, "after 5 topics deleted with ferryctl")
        conn.close()

        amqpc.restart(b)
        eq(counts(), base, "(queues, topics) after a restart")

        conn = amqpc.connect()
        relay = conn.create_sender(None, name="relay")
        dynamic_round(conn, relay, 5, "k")
        eq(counts(), (base[0] + 5, base[1] + 5), "queues and topics before the SIGKILL")
        amqpc.restart(b, kill=True)
        wait_counts(base, "after the restart that deleted the temporary topics left by SIGKILL")
        amqpc.restart(b)
        eq(counts(), base, "(queues, topics) after one more restart")
        amqpc.still_serves(amqpc.PREFIX + "-24-after", "alive", "the broker still serves")
    finally:
        b.close()


if __name__ == "__main__":
    amqpc.main(test)
