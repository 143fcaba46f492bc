#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: link credit is core credit. With 3 credits a receiver gets exactly 3 of 10 waiting
# messages; drain with 5 credits gets 5 more and leaves no credit; drain with 10 when 2 are left
# gets those 2 and the broker ends the drain (credit back to 0) instead of keeping the credit.
# interop: ferry-only
import amqpc
from amqpc import Message, eq
from proton import Timeout


def test():
    t = amqpc.PREFIX + "-05"
    c = amqpc.connect()
    rcv = c.create_receiver(t + "/subscriptions/g")  # no credit yet
    snd = c.create_sender(t)
    for i in range(10):
        snd.send(Message(body="c%d" % i))
    link = rcv.link
    link.flow(3)
    c.wait(lambda: rcv.fetcher.has_message >= 3, timeout=amqpc.DEADLINE, msg="3 messages")
    try:
        c.wait(lambda: rcv.fetcher.has_message > 3, timeout=amqpc.QUIET, msg="quiet")
    except Timeout:
        pass
    eq(rcv.fetcher.has_message, 3, "messages with 3 credits")

    link.drain(5)
    c.wait(lambda: rcv.fetcher.has_message >= 8 and not link.draining(),
           timeout=amqpc.DEADLINE, msg="drain of 5")
    eq(rcv.fetcher.has_message, 8, "messages after draining 5 credits")
    eq(link.credit, 0, "credit after the drain")

    link.drain(10)
    c.wait(lambda: rcv.fetcher.has_message >= 10 and not link.draining(),
           timeout=amqpc.DEADLINE, msg="drain of 10 with 2 messages left")
    eq(rcv.fetcher.has_message, 10, "messages after draining 10 credits with 2 left")
    eq(link.credit, 0, "credit after a drain the broker ended")
    got = amqpc.receive_n(rcv, 10, "all 10")
    eq(sorted(m.body for m in got), sorted("c%d" % i for i in range(10)), "bodies")
    c.close()


amqpc.main(test)
