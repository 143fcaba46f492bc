#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks QoS 1 and 2 packet-id handling in both directions, with raw packets:
# - client -> broker: PUBLISH QoS 1 id 7 -> PUBACK 7; QoS 2 id 9 -> PUBREC 9, a DUP re-send of
#   id 9 before PUBREL -> PUBREC 9 again, PUBREL 9 -> PUBCOMP 9; the QoS 2 message is delivered
#   exactly once [MQTT-4.3.3]; PUBREL for an unknown id still gets PUBCOMP (v5: reason 0x00 or
#   0x92 Packet Identifier not found: both are allowed; mosquitto sends 0x00).
# - broker -> client: deliveries at QoS 1/2 carry non-zero ids, unique among unacknowledged
#   ones; PUBREC id -> PUBREL same id -> PUBCOMP.
# - redelivery: a persistent session that did not PUBACK a QoS 1 message gets it again on
#   reconnect with DUP 1 and the same packet id; one that sent PUBREC for a QoS 2 message but got
#   no further gets the PUBREL again (not the PUBLISH) [MQTT-4.4.0-1].
# - paho QoS 1 and 2, 100 messages each way: exact count and order.
import mqttc
from mqttc import (PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Raw, V5, V311, ack_packet, check,
                   eq, publish_packet)

P = mqttc.PREFIX


def test():
    sub = mqttc.Client(P + "-sub", V311)
    sub.connect()
    sub.subscribe(P + "/ids/#", 2)

    for v in (4, 5):
        r = Raw(v)
        r.connect("%s-pub%d" % (P, v))
        r.send(publish_packet(P + "/ids/q1", "one", 1, pid=7, version=v))
        eq(r.expect(PUBACK).pid, 7, "PUBACK id")
        r.send(publish_packet(P + "/ids/q2", "two", 2, pid=9, version=v))
        eq(r.expect(PUBREC).pid, 9, "PUBREC id")
        r.send(publish_packet(P + "/ids/q2", "two", 2, pid=9, dup=True, version=v))
        eq(r.expect(PUBREC).pid, 9, "PUBREC id for the DUP re-send")
        r.send(ack_packet(PUBREL, 9, version=v))
        eq(r.expect(PUBCOMP).pid, 9, "PUBCOMP id")
        r.send(ack_packet(PUBREL, 4242, version=v))
        p = r.expect(PUBCOMP)
        eq(p.pid, 4242, "PUBCOMP id for an unknown PUBREL")
        if v == 5:
            check(p.reason in (0x00, 0x92), "v5 PUBCOMP reason 0x%02x for an unknown id" % p.reason)
        r.close()
    got = sub.wait_messages(4)
    sub.expect_no_more(4, "QoS 2 delivered exactly once")
    eq(sorted((m.topic, m.payload) for m in got),
       sorted([(P + "/ids/q1", b"one"), (P + "/ids/q2", b"two")] * 2), "messages")

    # Broker -> client ids, and redelivery on reconnect.
    cid = P + "-rsub"
    r = Raw(4)
    r.connect(cid, clean=False)
    eq(r.subscribe(1, [(P + "/out/q1", 1), (P + "/out/q2", 2)]), [1, 2], "SUBACK")
    pub = mqttc.Client(P + "-p", V311)
    pub.connect()
    for i in range(3):
        pub.publish(P + "/out/q1", b"a%d" % i, 1)
    for i in range(3):
        pub.publish(P + "/out/q2", b"b%d" % i, 2)
    pubs = [r.expect(PUBLISH) for _ in range(6)]
    ids = [p.pid for p in pubs]
    check(all(ids), "packet id 0 on a QoS > 0 PUBLISH: %r" % pubs)
    eq(len(set(ids)), 6, "distinct packet ids among unacknowledged messages %r" % ids)
    q1 = [p for p in pubs if p.qos == 1]
    q2 = [p for p in pubs if p.qos == 2]
    eq([p.payload for p in q1], [b"a0", b"a1", b"a2"], "QoS 1 messages in order")
    eq([p.payload for p in q2], [b"b0", b"b1", b"b2"], "QoS 2 messages in order")
    # Ack the first of each; PUBREC the second QoS 2 only; leave the rest.
    r.send(ack_packet(PUBACK, q1[0].pid))
    r.send(ack_packet(PUBREC, q2[0].pid))
    eq(r.expect(PUBREL).pid, q2[0].pid, "PUBREL id")
    r.send(ack_packet(PUBCOMP, q2[0].pid))
    r.send(ack_packet(PUBREC, q2[1].pid))
    eq(r.expect(PUBREL).pid, q2[1].pid, "PUBREL id")
    r.close()  # no DISCONNECT, nothing more acked

    r = Raw(4)
    eq(r.connect(cid, clean=False).session_present, True, "session present on reconnect")
    again = []
    while len(again) < 4:
        p = r.read()
        check(p is not None, "redelivery: got only %r" % again)
        again.append(p)
    pubs_again = {p.pid: p for p in again if p.type == PUBLISH}
    rels = [p.pid for p in again if p.type == PUBREL]
    eq(rels, [q2[1].pid], "PUBREL re-sent for the PUBREC'd QoS 2 message")
    eq(sorted(pubs_again), sorted([q1[1].pid, q1[2].pid, q2[2].pid]), "re-sent PUBLISH ids")
    for p in pubs_again.values():
        check(p.dup, "re-sent PUBLISH without DUP: %r" % p)
    eq(pubs_again[q1[1].pid].payload, b"a1", "payload of a re-sent message")
    eq(pubs_again[q2[2].pid].payload, b"b2", "payload of a re-sent message")
    r.send(ack_packet(PUBCOMP, q2[1].pid))
    r.send(ack_packet(PUBACK, q1[1].pid))
    r.send(ack_packet(PUBACK, q1[2].pid))
    r.send(ack_packet(PUBREC, q2[2].pid))
    eq(r.expect(PUBREL).pid, q2[2].pid, "PUBREL id")
    r.send(ack_packet(PUBCOMP, q2[2].pid))
    eq(r.read(timeout=mqttc.QUIET), None, "nothing more after all acks")
    r.close()

    # paho, both directions, 100 messages per QoS and protocol.
    for proto in (V311, V5):
        s = mqttc.Client("%s-ps%d" % (P, proto), proto)
        s.connect()
        s.subscribe(P + "/many/#", 2)
        p = mqttc.Client("%s-pp%d" % (P, proto), proto)
        p.connect()
        for q in (1, 2):
            mids = [p.publish(P + "/many/%d" % q, b"%d" % i, q, wait=False) for i in range(100)]
            p._wait(lambda: set(mids) <= p.published, "acks of 100 QoS %d publishes" % q)
            got = s.wait_messages(100)
            eq([m.payload for m in got], [b"%d" % i for i in range(100)], "QoS %d payloads" % q)
            eq({m.qos for m in got}, {q}, "delivered QoS")
            s.take()
        s.expect_no_more(0)
        s.disconnect()
        p.disconnect()
    pub.disconnect()
    sub.disconnect()


mqttc.main(test)
