#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: receivers from source `t` are broadcast members (each gets every message); receivers
# from `t/subscriptions/g` (and the Artemis form `t::g`) are competing members of clustering
# group g: together they get each message once, and both get some (8 queues shared out).
# interop: ferry-only
import amqpc
from amqpc import Message, check, eq


def test():
    t = amqpc.PREFIX + "-04"
    n = 40
    c = amqpc.connect()
    b1 = c.create_receiver(t, name="b1", credit=n)
    b2 = c.create_receiver(t, name="b2", credit=n)
    g1 = c.create_receiver(t + "/subscriptions/g", name="g1", credit=n)
    g2 = c.create_receiver(t + "::g", name="g2", credit=n)
    snd = c.create_sender(t)
    for i in range(n):
        snd.send(Message(body="m%d" % i))
    want = sorted("m%d" % i for i in range(n))
    eq(sorted(m.body for m in amqpc.receive_n(b1, n, "broadcast b1")), want, "b1 gets all")
    eq(sorted(m.body for m in amqpc.receive_n(b2, n, "broadcast b2")), want, "b2 gets all")
    got1, got2 = [], []

    def pump():
        while g1.fetcher.has_message:
            got1.append(g1.receive(timeout=1).body)
            g1.accept()
        while g2.fetcher.has_message:
            got2.append(g2.receive(timeout=1).body)
            g2.accept()
        return len(got1) + len(got2) >= n

    c.wait(pump, timeout=amqpc.DEADLINE, msg="group g: %d messages" % n)
    eq(sorted(got1 + got2), want, "group g gets each message once")
    check(got1 and got2, "both members of g got some (%d and %d)" % (len(got1), len(got2)))
    amqpc.expect_none(g1, "no duplicates on g1")
    c.close()


amqpc.main(test)
