#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a durable subscription (source durability + expiry-policy never, python's
# DurableSubscription), named by container id and link name, keeps its position: messages sent
# while its connection is gone arrive on reconnect, also across a ferryd restart (SIGTERM) and a
# kill -9; closing the link (not detaching) ends it. A second container's subscription of the
# same link name is a different one.
# interop: ferry-only, own-broker
import amqpc
from amqpc import Message, eq
from proton.reactor import DurableSubscription


def attach(cid, t):
    c = amqpc.connect(container_id=cid)
    return c, c.create_receiver(t, name="sub1", credit=10, options=DurableSubscription())


def test():
    b = amqpc.own_broker()
    try:
        t = amqpc.PREFIX + "-08"
        c, rcv = attach("cont-a", t)
        c2, rcv2 = attach("cont-b", t)
        p = amqpc.connect()
        snd = p.create_sender(t)
        snd.send(Message(body="one"))
        eq(rcv.receive(timeout=amqpc.DEADLINE).body, "one", "online")
        rcv.accept()
        c.close()  # the link is detached with the connection, not closed
        snd.send(Message(body="two"))
        snd.send(Message(body="three"))
        c, rcv = attach("cont-a", t)
        eq(sorted(m.body for m in amqpc.receive_n(rcv, 2, "after reconnect")),
           ["three", "two"], "messages sent while offline")
        c.close()
        p.close()

        amqpc.restart(b)
        p = amqpc.connect()
        p.create_sender(t).send(Message(body="four"))
        c, rcv = attach("cont-a", t)
        eq(rcv.receive(timeout=amqpc.DEADLINE).body, "four", "after a restart")
        rcv.accept()
        c.close()

        p.create_sender(t, name="s5").send(Message(body="five"))
        amqpc.restart(b, kill=True)
        c, rcv = attach("cont-a", t)
        eq(rcv.receive(timeout=amqpc.DEADLINE).body, "five", "after kill -9")
        rcv.accept()
        rcv.close()  # closing ends the subscription
        c.close()
        p = amqpc.connect()
        p.create_sender(t).send(Message(body="six"))
        c, rcv = attach("cont-a", t)
        amqpc.expect_none(rcv, "a closed durable subscription starts afresh")
        c.close()

        # cont-b's subscription kept everything since it was made
        c2, rcv2 = attach("cont-b", t)
        got = sorted(m.body for m in amqpc.receive_n(rcv2, 6, "the other container's subscription"))
        eq(got, sorted(["one", "two", "three", "four", "five", "six"]), "cont-b's messages")
        c2.close()
        p.close()
    finally:
        b.close()


amqpc.main(test)
