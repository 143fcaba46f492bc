#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: dispositions of a receiver in group g (`t/subscriptions/g`). released: delivered
# again at once (delivery-count 1); modified with delivery-failed: back through the retry topic
# after the back-off (1 s here); modified with undeliverable-here: not redelivered at once (retry
# topic); rejected: dead-lettered to %DLQ%g, counted by `ferryctl dlq list g`. On a broadcast
# source, rejected drops that receiver's copy (no redelivery).
# interop: ferry-only, own-broker
import amqpc
from amqpc import Message, check, eq
from proton import Delivery

CONF = "retry_delays 1s 1s 1s 1s\n"


def settle(rcv, state, failed=False, undeliverable=False):
    d = rcv.fetcher.unsettled.popleft()
    d.local.failed = failed
    d.local.undeliverable = undeliverable
    d.update(state)
    d.settle()


def test():
    b = amqpc.own_broker(CONF)
    try:
        t = amqpc.PREFIX + "-06"
        c = amqpc.connect()
        rcv = c.create_receiver(t + "/subscriptions/g", credit=10)
        snd = c.create_sender(t)

        snd.send(Message(body="rel"))
        m = rcv.receive(timeout=amqpc.DEADLINE)
        eq((m.body, m.delivery_count), ("rel", 0), "first delivery")
        settle(rcv, Delivery.RELEASED)
        m = rcv.receive(timeout=amqpc.DEADLINE)
        eq((m.body, m.delivery_count), ("rel", 1), "released: again at once")
        rcv.accept()

        snd.send(Message(body="fail"))
        m = rcv.receive(timeout=amqpc.DEADLINE)
        settle(rcv, Delivery.MODIFIED, failed=True)
        amqpc.expect_none(rcv, "modified(failed) waits for the back-off", quiet=0.5)
        m = rcv.receive(timeout=amqpc.DEADLINE)
        eq(m.body, "fail", "modified(delivery-failed) comes back through the retry topic")
        check(m.delivery_count >= 1, "delivery-count after a retry: %d" % m.delivery_count)
        rcv.accept()

        snd.send(Message(body="undeliverable"))
        m = rcv.receive(timeout=amqpc.DEADLINE)
        settle(rcv, Delivery.MODIFIED, undeliverable=True)
        amqpc.expect_none(rcv, "modified(undeliverable-here) is not redelivered at once",
                          quiet=0.5)
        m = rcv.receive(timeout=amqpc.DEADLINE)  # the only member gets it again, later
        eq(m.body, "undeliverable", "undeliverable-here: back later through the retry topic")
        rcv.accept()

        for i in range(3):
            snd.send(Message(body="dead%d" % i))
        for i in range(3):
            m = rcv.receive(timeout=amqpc.DEADLINE)
            rcv.reject()
        amqpc.expect_none(rcv, "rejected messages are not redelivered")
        r = amqpc.ferryctl("dlq", "list", "g")
        eq(r.returncode, 0, "ferryctl dlq list g (stderr: %s)" % r.stderr)
        check(" 3 " in " %s " % r.stdout.replace("\n", " ") or "3" in r.stdout.split(),
              "3 dead letters of g: %r" % r.stdout)
        dead = amqpc.ferryctl_json("dlq", "consume", "g", "--count", "3", "--timeout", "5000")
        eq(sorted(m["body"] for m in dead), ["dead0", "dead1", "dead2"], "dead letters")

        # broadcast: rejected drops this receiver's copy
        br = c.create_receiver(t, name="bcast", credit=10)
        snd.send(Message(body="bc"))
        m = br.receive(timeout=amqpc.DEADLINE)
        br.reject()
        amqpc.expect_none(br, "a rejected broadcast copy is not redelivered")
        rcv.receive(timeout=amqpc.DEADLINE)
        rcv.accept()
        c.close()
    finally:
        b.close()


amqpc.main(test)
