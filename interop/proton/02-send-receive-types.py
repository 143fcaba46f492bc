#!/usr/bin/python3
# Ferry only: 1,000 unsettled transfers to topic t are each settled `accepted`, and a receiver on
# t gets all of them in order per queue; message properties (message-id, correlation-id, subject,
# content-type, reply-to, to, creation and expiry times), application properties of several types,
# message annotations and bodies of every kind (string, binary, map, list, null, data sections)
# reach an AMQP receiver unchanged; a redelivered message has its delivery-count set.
# SPDX-License-Identifier: Apache-2.0
# interop: ferry-only
import uuid

import amqpc
from amqpc import Message, check, eq
from proton import Delivery, symbol, ulong


def test():
    t = amqpc.PREFIX + "-02"
    c = amqpc.connect()
    rcv = c.create_receiver(t, credit=100)
    snd = c.create_sender(t)
    # 1,000 unsettled: every delivery ends accepted
    for i in range(1000):
        d = snd.send(Message(body="n%d" % i))
        eq(d.remote_state, Delivery.ACCEPTED, "outcome of transfer %d" % i)
    got = [m.body for m in amqpc.receive_n(rcv, 1000, "1000 messages")]
    eq(sorted(got), sorted("n%d" % i for i in range(1000)), "the 1000 bodies")

    uid = uuid.uuid4()
    cases = [
        Message(id="id-1", correlation_id="corr-1", subject="TagA", content_type="text/plain",
                reply_to="replies", address=t, creation_time=1700000000.5,
                expiry_time=4102444800.0, body="a string",
                properties={"s": "x", "i": 42, "neg": -7, "b": True, "f": 1.5, "l": ulong(2**40)},
                annotations={symbol("x-opt-custom"): "kept"}),
        Message(id=ulong(12345), correlation_id=uid, body=b"\x00\x01binary\xff"),
        Message(id=uid, body={"k": [1, 2, {"n": None}], "z": 1.25}),
        Message(body=["a", 1, True]),
        Message(body=None),
        Message(body="x" * 300),  # a str32-free long string
    ]
    for m in cases:
        snd.send(m)
    for want in cases:
        m = rcv.receive(timeout=amqpc.DEADLINE)
        rcv.accept()
        for f in ("id", "correlation_id", "subject", "content_type", "reply_to", "address",
                  "creation_time", "expiry_time", "body", "properties", "annotations"):
            eq(getattr(m, f), getattr(want, f), "field %s of %r" % (f, want.body))
        check(m.durable, "delivered messages are durable")

    # a data section (Message.inferred)
    m = Message(body=b"raw bytes", inferred=True)
    snd.send(m)
    got = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    eq(bytes(got.body), b"raw bytes", "a data section body")

    # redelivery sets delivery-count
    snd.send(Message(body="again"))
    first = rcv.receive(timeout=amqpc.DEADLINE)
    eq(first.delivery_count, 0, "delivery-count of a first delivery")
    rcv.release(delivered=False)
    again = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    eq(again.body, "again", "released message comes back")
    check(again.delivery_count >= 1, "delivery-count of a redelivery: %d" % again.delivery_count)
    c.close()


amqpc.main(test)
