#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a qpid-proton client connects with SASL ANONYMOUS, with SASL PLAIN (user name and
# password; every user is allowed until authentication lands), and without SASL at all; the
# broker's open names it (container id `ferry`, property product=ferry). With a 2 s heartbeat the
# client's connection stays up for 4 s (the broker sends empty frames in time), and many sessions
# and links on one connection work side by side.
# interop: ferry-only
import amqpc
from amqpc import Message, check, eq
from proton import Timeout


def roundtrip(conn, topic, body):
    rcv = conn.create_receiver(topic)
    snd = conn.create_sender(topic)
    snd.send(Message(body=body))
    m = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    eq(m.body, body, "body over %s" % topic)
    snd.close()
    rcv.close()


def test():
    t = amqpc.PREFIX + "-01"
    c = amqpc.connect(allowed_mechs="ANONYMOUS")
    eq(c.conn.remote_container, "ferry", "broker container id")
    props = c.conn.remote_properties or {}
    eq(props.get("product"), "ferry", "product in the open's properties")
    roundtrip(c, t, "anonymous")
    c.close()

    c = amqpc.connect(user="alice", password="secret", allowed_mechs="PLAIN")
    roundtrip(c, t, "plain")
    c.close()

    c = amqpc.connect(sasl_enabled=False)
    roundtrip(c, t, "no sasl")
    c.close()

    c = amqpc.connect(heartbeat=2)
    try:
        # idles 4 s: a missing heartbeat from the broker would close the connection
        c.wait(lambda: c.disconnected, timeout=4, msg="idling")
    except Timeout:
        pass
    check(not c.disconnected, "connection with a 2 s heartbeat closed")
    roundtrip(c, t, "after idling")

    # many sessions and links at once
    rcvs = [c.create_receiver(t, name="r%d" % i) for i in range(20)]
    sends = [c.create_sender(t, name="s%d" % i) for i in range(5)]
    for i, s in enumerate(sends):
        s.send(Message(body="m%d" % i))
    for r in rcvs:
        got = sorted(m.body for m in amqpc.receive_n(r, 5, "broadcast receiver"))
        eq(got, ["m%d" % i for i in range(5)], "each of 20 receivers gets all 5")
    c.close()


amqpc.main(test)
