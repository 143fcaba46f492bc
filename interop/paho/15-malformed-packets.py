#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks that malformed packets and protocol errors close the offending connection (3.1.1: close;
# 5.0: close, optionally after a DISCONNECT whose reason is >= 0x80 — 0x81 Malformed Packet,
# 0x82 Protocol Error, 0x90 Topic Name invalid, 0x95 Packet too large, per case) [MQTT-4.8.0-1,
# 5.0 4.13], and that other clients are unaffected: a subscriber connected throughout gets every
# valid message published between the bad connections, and nothing from them.
# Cases, each on a fresh connection after a successful CONNECT, for 3.1.1 and 5.0:
#   remaining length longer than 4 bytes; PUBLISH with a wildcard (+, #) in the topic name;
#   PUBLISH with QoS 3; SUBSCRIBE with reserved flags 0000 instead of 0010; PUBREL with flags
#   0000; bad UTF-8 (0xFF, a surrogate, U+0000) in a PUBLISH topic; a second CONNECT; a packet of
#   type 0 (reserved); PUBLISH QoS 1 with packet id 0; a SUBSCRIBE with no filter.
# Plus: a first packet that is not CONNECT (closed, no CONNACK).
import mqttc
from mqttc import Raw, V311, check, connect_packet, packet, publish_packet, subscribe_packet

P = mqttc.PREFIX

ALLOWED = {0x81, 0x82, 0x90, 0x95}


def publish_raw_topic(topic_bytes, v):
    return publish_packet(topic_bytes, "x", 0, version=v)


def cases(v):
    t = (P + "/bad").encode()
    return [
        ("remaining length of 5 bytes", b"\x30\xff\xff\xff\xff\x01"),
        ("wildcard + in a PUBLISH topic", publish_packet(P + "/bad/+", "x", 1, pid=1, version=v)),
        ("wildcard # in a PUBLISH topic", publish_packet(P + "/bad/#", "x", 0, version=v)),
        ("PUBLISH with QoS 3", packet(3, 6, publish_packet(P + "/bad", "x", 1, pid=1,
                                                            version=v)[2:])),
        ("SUBSCRIBE with reserved flags 0", bytes([0x80]) + subscribe_packet(
            1, [(P + "/bad", 0)], v)[1:]),
        ("PUBREL with flags 0", b"\x60\x02\x00\x01"),
        ("0xFF in a PUBLISH topic", publish_raw_topic(t + b"/\xff", v)),
        ("a UTF-16 surrogate in a PUBLISH topic", publish_raw_topic(t + b"/\xed\xa0\x80", v)),
        ("U+0000 in a PUBLISH topic", publish_raw_topic(t + b"/\x00", v)),
        ("a second CONNECT", connect_packet("%s-again" % P, v)),
        ("packet type 0", b"\x00\x00"),
        ("PUBLISH QoS 1 with packet id 0", publish_packet(P + "/bad", "x", 1, pid=0, version=v)),
        ("SUBSCRIBE without a filter", subscribe_packet(2, [], v)),
    ]


def test():
    watcher = mqttc.Client(P + "-watch", V311)
    watcher.connect()
    watcher.subscribe("#", 1)
    pub = mqttc.Client(P + "-pub", V311)
    pub.connect()
    n = 0
    for v in (4, 5):
        for name, data in cases(v):
            r = Raw(v)
            r.connect("%s-c%d" % (P, n))
            r.send(data)
            got = r.read_until_closed()
            if v == 4:
                check(got == [], "v3.1.1 %s: packets before the close: %r" % (name, got))
            else:
                check(len(got) <= 1 and all(p.type == mqttc.DISCONNECT and p.reason in ALLOWED
                                            for p in got),
                      "v5 %s: want close (after DISCONNECT 0x81/0x82/0x90/0x95), got %r"
                      % (name, got))
            print("v%d %-40s -> %s" % (v, name, got[0] if got else "closed"))
            r.close()
            # Everyone else is fine.
            pub.publish(P + "/ok/%d" % n, b"ok", 1)
            n += 1
            ok = [m for m in watcher.wait_messages(n) if m.topic.startswith(P + "/ok/")]
            check(len(ok) == n, "the watcher missed valid messages: %r" % watcher.messages)

    # First packet not CONNECT.
    r = Raw(4)
    r.send(subscribe_packet(1, [(P + "/x", 0)]))
    got = r.read_until_closed()
    check(got == [], "packets to a client whose first packet is not CONNECT: %r" % got)
    r.close()

    watcher.expect_no_more(n, "messages from the bad connections")
    check(all(m.topic.startswith(P + "/ok/") for m in watcher.messages),
          "a bad connection's message got through: %r" % watcher.messages)
    pub.disconnect()
    watcher.disconnect()


mqttc.main(test)
