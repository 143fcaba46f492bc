#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: SIGTERM while AMQP connections are open (a sender and a receiver each, one transfer
# accepted) stops ferryd cleanly: exit 0, and the accepted message is there after the restart.
# Regression: amqp_conn_close_all read the next connection from one it had just freed (found by
# tests/torture/crash_loop.py --signal term against the sanitizer build).
# interop: ferry-only, own-broker
import amqpc
from amqpc import Message, eq


def test():
    b = amqpc.own_broker()
    try:
        t = amqpc.PREFIX + "-17"
        src = t + "/subscriptions/g"
        conns = [amqpc.connect() for _ in range(3)]
        for c in conns:
            c.create_receiver(src, credit=0)
        conns[0].create_sender(t).send(Message(body="kept"))
        eq(b.stop(), 0, "ferryd's exit code after SIGTERM with open AMQP connections")
        for c in conns:
            try:
                c.close()
            except Exception:
                pass  # the broker closed them first
        b.start()
        amqpc._point_at(b)
        c = amqpc.connect()
        rcv = c.create_receiver(src, credit=10)
        eq([m.body for m in amqpc.receive_n(rcv, 1, "after the restart")], ["kept"],
           "the accepted message")
        c.close()
    finally:
        b.close()


amqpc.main(test)
