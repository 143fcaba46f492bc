#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 flow control towards a client:
# - Receive Maximum 2 in CONNECT: the broker never has more than 2 unacknowledged QoS 1/2
#   PUBLISHes out to the client [MQTT-3.3.4-9]; each ack lets one more through; all 10 arrive,
#   in order per topic (two topics, QoS 1 and QoS 2). mosquitto 2.0.11 deviates: each ack lets
#   two more out (2, then 3, 4, ... unacknowledged), so for mosquitto only the delivery of all 10
#   is checked.
# - Maximum Packet Size 128 in CONNECT: the broker never sends a packet larger than that; a
#   message that would not fit is dropped for that client [MQTT-3.1.2-24, -25] while a small one
#   published after it arrives, and another client without the limit gets both.
# - The CONNACK's Receive Maximum (if any) is honoured by this test's publisher (paho).
import mqttc
from mqttc import PUBACK, PUBCOMP, PUBLISH, PUBREC, PUBREL, Raw, V5, ack_packet, check, eq

P = mqttc.PREFIX


def test():
    pub = mqttc.Client(P + "-pub", V5)
    pub.connect()

    r = Raw(5)
    r.connect(P + "-rm", props=[(0x21, 2)])
    eq(r.subscribe(1, [(P + "/rm/#", 2)]), [2], "SUBACK")
    for i in range(10):
        pub.publish(P + "/rm/%d" % (i % 2 + 1), b"%d" % i, i % 2 + 1)
    inflight = {}
    received = []
    limit = 2
    if mqttc.KIND == "mosquitto" and mqttc.mosquitto_deviates(
            "Receive Maximum 2: each ack lets two more PUBLISHes out"):
        limit = 10
    most = 0
    while len(received) < 10:
        # Read all the broker sends within QUIET: it must stop at 2 outstanding.
        p = r.read(timeout=mqttc.QUIET)
        if p is None:
            check(not r.eof, "connection closed")
            check(inflight, "stalled with nothing in flight after %d messages" % len(received))
            # Ack the oldest outstanding message.
            pid, q = next(iter(inflight.items()))
            if q == 1:
                r.send(ack_packet(PUBACK, pid, version=5))
                del inflight[pid]
            else:
                r.send(ack_packet(PUBREC, pid, version=5))
                eq(r.expect(PUBREL).pid, pid, "PUBREL id")
                r.send(ack_packet(PUBCOMP, pid, version=5))
                del inflight[pid]
            continue
        eq(p.type, PUBLISH, "packet type")
        check(p.pid not in inflight, "packet id %d reused while in flight" % p.pid)
        inflight[p.pid] = p.qos
        received.append(int(p.payload))
        most = max(most, len(inflight))
        check(len(inflight) <= limit, "%d unacknowledged PUBLISHes with Receive Maximum 2"
              % len(inflight))
    # Order is kept per topic only (Ferry spreads topics over queues; the spec orders per topic).
    eq(sorted(received), list(range(10)), "every message once")
    for parity in (0, 1):
        eq([i for i in received if i % 2 == parity], list(range(parity, 10, 2)),
           "order on topic rm/%d" % (parity + 1))
    print("at most %d unacknowledged PUBLISHes with Receive Maximum 2" % most)
    r.close()

    # Maximum Packet Size.
    small = mqttc.Client(P + "-mps", V5)
    small.connect(properties=mqttc.props(mqttc.PacketTypes.CONNECT, MaximumPacketSize=128))
    small.subscribe(P + "/mps", 1)
    big = mqttc.Client(P + "-nolimit", V5)
    big.connect()
    big.subscribe(P + "/mps", 1)
    pub.publish(P + "/mps", b"x" * 200, 1)
    pub.publish(P + "/mps", b"small", 1)
    eq([m.payload for m in big.wait_messages(2)], [b"x" * 200, b"small"], "client without limit")
    eq([m.payload for m in small.wait_messages(1)], [b"small"], "client with a 128-byte limit")
    small.expect_no_more(1, "oversized message for the limited client")
    check(small.disconnected is None, "the limited client was disconnected")
    small.disconnect()
    big.disconnect()
    pub.disconnect()


mqttc.main(test)
