#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks SUBSCRIBE / UNSUBSCRIBE:
# - SUBACK has one reason code per filter, in order: the granted QoS (never above the requested
#   one) [MQTT-3.8.4-5..-8, 3.9.3].
# - An invalid filter (a/#/b, a+/b) in a SUBSCRIBE with valid ones: Ferry refuses that filter in
#   the SUBACK (3.1.1: 0x80; 5.0: 0x8F Topic Filter invalid, or another code >= 0x80) and grants
#   the others — a choice the spec allows (it also allows treating the packet as malformed and
#   closing the connection, which is what mosquitto 2.0.11 does; for mosquitto the test accepts
#   that instead).
# - UNSUBSCRIBE: UNSUBACK with the same packet id; 5.0 reason codes 0x00 for a removed
#   subscription and 0x11 (No subscription existed) or 0x00 for an unknown one; after it, no more
#   messages for that filter, while the client's other subscriptions go on.
import mqttc
from mqttc import Raw, V5, V311, check, eq

P = mqttc.PREFIX


def test():
    for v in (4, 5):
        r = Raw(v)
        r.connect("%s-suback%d" % (P, v))
        got = r.subscribe(3, [(P + "/a", 0), (P + "/b/+", 1), (P + "/c/#", 2)])
        eq(got, [0, 1, 2], "v%d SUBACK reason codes" % v)
        r.close()

    for v in (4, 5):
        r = Raw(v)
        r.connect("%s-bad%d" % (P, v))
        r.send(mqttc.subscribe_packet(4, [(P + "/ok", 1), (P + "/x/#/y", 1), (P + "/z+/w", 1),
                                          (P + "/ok2", 2)], v))
        p = r.read()
        if p is not None and p.type == mqttc.SUBACK:
            eq(p.pid, 4, "SUBACK id")
            eq(len(p.reasons), 4, "one reason per filter")
            eq((p.reasons[0], p.reasons[3]), (1, 2), "valid filters granted")
            for code in p.reasons[1:3]:
                check(code >= 0x80, "invalid filter granted: 0x%02x" % code)
                if v == 5 and mqttc.KIND == "ferryd":
                    eq(code, 0x8F, "5.0 reason for an invalid filter")
            print("v%d SUBACK for invalid filters: %r" % (v, p.reasons))
        else:
            rest = r.read_until_closed()
            got = ([p] if p is not None else []) + rest
            check(mqttc.KIND != "ferryd", "ferryd closed the connection instead of a SUBACK "
                  "refusing the invalid filters: %r" % got)
            check(all(x.type == mqttc.DISCONNECT and x.reason >= 0x80 for x in got),
                  "invalid filter: want SUBACK or the connection closed, got %r" % got)
            print("v%d invalid filter: connection closed after %r" % (v, got))
        r.close()

    for proto in (V311, V5):
        c = mqttc.Client("%s-unsub%d" % (P, proto), proto)
        c.connect()
        c.subscribe(P + "/u/1", 1)
        c.subscribe(P + "/u/2", 1)
        pub = mqttc.Client("%s-pub%d" % (P, proto), proto)
        pub.connect()
        pub.publish(P + "/u/1", b"before", 1)
        c.wait_messages(1)
        reasons = c.unsubscribe(P + "/u/1")
        if proto == V5:
            eq(reasons, [0], "5.0 UNSUBACK for an existing subscription")
            reasons = c.unsubscribe(P + "/u/never")
            check(reasons in ([0x11], [0]), "5.0 UNSUBACK for an unknown filter: %r" % reasons)
        pub.publish(P + "/u/1", b"after", 1)
        pub.publish(P + "/u/2", b"other", 1)
        got = c.wait_messages(2)
        c.expect_no_more(2, "messages after UNSUBSCRIBE")
        eq(sorted((m.topic, m.payload) for m in got),
           [(P + "/u/1", b"before"), (P + "/u/2", b"other")], "messages around the UNSUBSCRIBE")
        c.disconnect()
        pub.disconnect()


mqttc.main(test)
