#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a 1 MiB message (many 64 KiB frames each way) is accepted and received intact, as a
# data section and as a string; the broker announces its max-message-size on the link, and a
# message over it (5 MiB with the default 4 MiB max_message_size) detaches the sender's link with
# amqp:link:message-size-exceeded while the connection keeps working.
# interop: ferry-only
import os

import amqpc
from amqpc import Message, check, eq
from proton import Delivery
from proton.utils import LinkDetached, SendException


def test():
    t = amqpc.PREFIX + "-09"
    c = amqpc.connect()
    rcv = c.create_receiver(t, credit=4)
    snd = c.create_sender(t, name="big")
    check(0 < snd.link.remote_max_message_size <= 5 * 1024 * 1024,
          "max-message-size offered: %d" % snd.link.remote_max_message_size)
    blob = os.urandom(1024 * 1024)
    d = snd.send(Message(body=blob, inferred=True))
    eq(d.remote_state, Delivery.ACCEPTED, "outcome of 1 MiB")
    m = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    check(bytes(m.body) == blob, "1 MiB data body intact (%d bytes)" % len(m.body))
    text = "é" * (512 * 1024)
    snd.send(Message(body=text))
    m = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    check(m.body == text, "1 MiB string body intact")

    huge = c.create_sender(t, name="huge")
    try:
        huge.send(Message(body=b"x" * (5 * 1024 * 1024), inferred=True))
        raise amqpc.TestFailure("a 5 MiB message was accepted")
    except (LinkDetached, SendException) as e:
        cond = huge.link.remote_condition
        eq(cond.name if cond else None, "amqp:link:message-size-exceeded", "condition (%s)" % e)
    snd.send(Message(body="still fine"))
    eq(rcv.receive(timeout=amqpc.DEADLINE).body, "still fine", "the connection works on")
    rcv.accept()
    c.close()


amqpc.main(test)
