#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a sender or receiver whose address is not a topic name (or names a broker topic such
# as %DLQ%g) is refused at attach with amqp:not-found; a receiver without an address with
# amqp:invalid-field; a sender to a temporary topic that does not exist (%TMP%amqp-...) with
# amqp:not-found (dynamic sources: 16-dynamic-reply.py). A sender
# without a target address is the anonymous relay: each message goes to its `to`; one without a
# valid `to` is rejected with amqp:not-found. The connection survives all of it.
# interop: ferry-only
import amqpc
from amqpc import Message, eq
from proton import Delivery
from proton.utils import LinkDetached


def refused(what, fn, want):
    try:
        fn()
    except LinkDetached as e:
        cond = e.link.remote_condition
        eq(cond.name if cond else None, want, "condition for %s" % what)
        return
    raise amqpc.TestFailure("%s was not refused" % what)


def test():
    t = amqpc.PREFIX + "-10"
    c = amqpc.connect()
    refused("sender to 'bad name!'", lambda: c.create_sender("bad name!", name="a"),
            "amqp:not-found")
    refused("sender to %DLQ%g", lambda: c.create_sender("%DLQ%g", name="b"), "amqp:not-found")
    refused("receiver from 'x/subscriptions/'",
            lambda: c.create_receiver("x/subscriptions/", name="c"), "amqp:not-found")
    refused("receiver from %RETRY%g", lambda: c.create_receiver("%RETRY%g", name="d"),
            "amqp:not-found")
    refused("sender to a temporary topic that is not there",
            lambda: c.create_sender("%TMP%amqp-999999-1", name="e"), "amqp:not-found")

    rcv = c.create_receiver(t, credit=5)
    relay = c.create_sender(None, name="relay")
    d = relay.send(Message(address=t, body="via relay"))
    eq(d.remote_state, Delivery.ACCEPTED, "relay to a topic")
    eq(rcv.receive(timeout=amqpc.DEADLINE).body, "via relay", "relayed message")
    rcv.accept()
    for addr in (None, "no such/topic"):
        d = relay.send(Message(address=addr, body="lost"), error_states=[])
        eq(d.remote_state, Delivery.REJECTED, "relay to %r" % addr)
        eq(d.remote.condition.name if d.remote.condition else None, "amqp:not-found",
           "condition of relay to %r" % addr)
    amqpc.expect_none(rcv, "rejected messages are not delivered")
    c.close()


amqpc.main(test)
