#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (MQTT over WebSocket framing, raw frames): CONNECT and SUBSCRIBE in one frame get
# CONNACK and SUBACK; a QoS 1 PUBLISH cut across a fragmented message (a ping between fragments
# is answered with a pong carrying its payload) and one cut across two messages both arrive; a
# 200 KB publish in 64 KB fragments arrives intact, and so does a 1000-byte one (frames out with
# 7-, 16- and 64-bit lengths). Closed with the right WebSocket status and the
# TCP connection ended: a text frame (1003), an unmasked frame (1002), reserved bits (1002), a
# frame announcing more than max_packet_size (1009), a malformed MQTT packet (MQTT 5 DISCONNECT
# 0x81 in a binary frame, then 1002). A client's close frame is echoed (1000); without DISCONNECT
# its will is published, after DISCONNECT it is not, and the server's close frame (1000) waits
# for the client's before TCP is closed (the close handshake). The broker stays up.
# interop: ferry-only, ws
import struct

import mqttc
import wsc
from mqttc import CONNACK, PUBACK, PUBLISH, SUBACK, check, eq
from wsc import BINARY, CLOSE, CONT, PING, TEXT, Ws, frame


def closed_with(ws, code, what):
    close, _ = ws.wait_closed()
    check(close is not None, "%s: a close frame before the TCP close" % what)
    eq(close[0], code, "close status for " + what)
    ws.close_sock()


def test():
    check(wsc.WS_PORT, "FERRY_WS_PORT is set")
    t = "ws32/x"
    sub = Ws()
    sub.send_binary(mqttc.connect_packet("ws32-sub") + mqttc.subscribe_packet(1, [("ws32/#", 1)]))
    sub.expect(CONNACK)
    eq(sub.expect(SUBACK).reasons, [1], "SUBACK in the same frame's answer")

    pub = Ws()
    pub.connect("ws32-pub")
    pkt = mqttc.publish_packet(t, b"fragmented", qos=1, pid=7)
    pub.send(frame(BINARY, pkt[:3], fin=False) + frame(PING, b"hi") +
             frame(CONT, pkt[3:9], fin=False) + frame(CONT, pkt[9:], fin=True))
    eq(pub.expect(PUBACK).pid, 7, "PUBACK of the fragmented publish")
    eq(pub.pongs, [b"hi"], "pong answering the ping between fragments")
    pkt = mqttc.publish_packet(t, b"two messages", qos=1, pid=8)
    pub.send(frame(BINARY, pkt[:5]) + frame(BINARY, pkt[5:]))
    eq(pub.expect(PUBACK).pid, 8, "PUBACK of the publish across two messages")
    big = bytes(i % 251 for i in range(200000))
    pkt = mqttc.publish_packet(t, big, qos=1, pid=9)
    parts = [pkt[i:i + 65536] for i in range(0, len(pkt), 65536)]
    pub.send(b"".join(frame(BINARY if i == 0 else CONT, p, fin=(i == len(parts) - 1))
                      for i, p in enumerate(parts)))
    eq(pub.expect(PUBACK).pid, 9, "PUBACK of the 200 KB publish")
    mid = bytes(i % 13 for i in range(1000))  # a frame with a 16-bit length to the subscriber
    pub.send_binary(mqttc.publish_packet(t, mid, qos=1, pid=11))
    eq(pub.expect(PUBACK).pid, 11, "PUBACK of the 1000-byte publish")
    got = [sub.expect(PUBLISH) for _ in range(4)]
    eq([(p.topic, p.payload) for p in got],
       [(t, b"fragmented"), (t, b"two messages"), (t, big), (t, mid)],
       "messages at the ws subscriber")
    for p in got:
        sub.send_binary(mqttc.ack_packet(PUBACK, p.pid))

    # a will waits for the abnormal end
    w = Ws()
    w.connect("ws32-will", will=("ws32/will", b"gone", 1, False))
    w.send(frame(CLOSE, struct.pack("!H", 1000)))
    closed_with(w, 1000, "the client's close frame (echoed)")
    p = sub.expect(PUBLISH)
    eq((p.topic, p.payload), ("ws32/will", b"gone"), "will after a close without DISCONNECT")
    sub.send_binary(mqttc.ack_packet(PUBACK, p.pid))
    w = Ws()
    w.connect("ws32-will2", will=("ws32/will", b"not this", 1, False))
    w.send_binary(mqttc.packet(mqttc.DISCONNECT, 0, b""))
    # the server's close frame comes, and it waits for ours before closing TCP
    check(w.read(2) is None and w.close is not None and w.close[0] == 1000,
          "close 1000 after DISCONNECT: %r" % (w.close,))
    check(w.read_frame(0.3) is None and not w.eof, "TCP stays open until the client's close frame")
    w.send(frame(CLOSE, struct.pack("!H", 1000)))
    check(w.read_frame(2) is None and w.eof, "TCP closed once the close frames crossed")
    w.close_sock()

    # protocol errors
    bad = Ws()
    bad.connect("ws32-text")
    bad.send(frame(TEXT, b"hello"))
    closed_with(bad, 1003, "a text frame")
    bad = Ws()
    bad.send(frame(BINARY, mqttc.connect_packet("ws32-unmasked"), mask=False))
    closed_with(bad, 1002, "an unmasked frame")
    bad = Ws()
    bad.send(frame(BINARY, b"\x10", rsv=4))
    closed_with(bad, 1002, "reserved bits")
    bad = Ws()
    bad.connect("ws32-huge")
    bad.send(frame(BINARY, b"x", length=1 << 40))  # the header and a first byte
    closed_with(bad, 1009, "a frame of 1 TiB")
    bad = Ws(version=5)
    bad.connect("ws32-malformed")
    bad.send_binary(mqttc.packet(PUBLISH, 6, mqttc.s16("a/b") + b"x"))  # QoS 3
    close, pkts = bad.wait_closed()
    eq([(p.type, p.reason) for p in pkts], [(mqttc.DISCONNECT, 0x81)], "MQTT 5 DISCONNECT")
    check(close is not None and close[0] == 1002, "close 1002 after the malformed packet: %r" %
          (close,))
    bad.close_sock()

    # nothing of that reached the subscriber, and the broker still serves it
    pub.send_binary(mqttc.publish_packet(t, b"still here", qos=1, pid=10))
    eq(pub.expect(PUBACK).pid, 10, "PUBACK after the bad clients")
    p = sub.expect(PUBLISH)
    eq((p.topic, p.payload), (t, b"still here"), "message after the bad clients")
    pub.close_sock()
    sub.close_sock()


mqttc.main(test)
