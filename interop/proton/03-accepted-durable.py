#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a transfer is settled `accepted` only once the store has it. 200 unsettled
# transfers are accepted, then ferryd is killed with SIGKILL at once and started again on the
# same data: a receiver of group g (`t/subscriptions/g`, attached before the sends) gets all 200.
# A pre-settled transfer (at most once) is stored too when the broker stays up.
# interop: ferry-only, own-broker
import amqpc
from amqpc import Message, eq
from proton import Delivery
from proton.reactor import AtMostOnce


def test():
    b = amqpc.own_broker()
    try:
        t = amqpc.PREFIX + "-03"
        src = t + "/subscriptions/g"
        c = amqpc.connect()
        c.create_receiver(src, credit=0).close()  # the group starts here
        snd = c.create_sender(t)
        for i in range(200):
            d = snd.send(Message(body="d%d" % i))
            eq(d.remote_state, Delivery.ACCEPTED, "outcome %d" % i)
        amqpc.restart(b, kill=True)
        c = amqpc.connect()
        rcv = c.create_receiver(src, credit=50)
        got = [m.body for m in amqpc.receive_n(rcv, 200, "accepted messages after kill -9")]
        eq(sorted(got), sorted("d%d" % i for i in range(200)), "bodies after kill -9")

        # pre-settled: at most once, still stored
        snd = c.create_sender(t, options=AtMostOnce())
        snd.send(Message(body="presettled"))
        m = rcv.receive(timeout=amqpc.DEADLINE)
        rcv.accept()
        eq(m.body, "presettled", "a pre-settled transfer")
        c.close()
    finally:
        b.close()


amqpc.main(test)
