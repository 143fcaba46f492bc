#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 subscription identifiers and overlapping subscriptions (3.3.4, 3.8.2.1.2):
# - a subscription's identifier comes back in each PUBLISH it matches; a subscription without one
#   adds none; re-subscribing the same filter with another identifier replaces it.
# - one client with overlapping subscriptions (a/# id 1 QoS 1, a/+ id 2 QoS 2, a/b without id QoS 0)
#   gets a message to a/b either as one copy carrying identifiers {1, 2} at QoS max(granted)
#   capped by the published QoS [MQTT-3.3.4-2, -4], or as one copy per subscription, each with
#   its own identifier (if any) [MQTT-3.3.4-5]. Either way identifiers 1 and 2 each appear exactly
#   once over the copies, and no copy is at a QoS above the published one.
# - an identifier of 0 is a protocol error (connection closed, v5 DISCONNECT 0x82 allowed first).
import mqttc
from mqttc import PacketTypes, Raw, V5, check, eq, props

P = mqttc.PREFIX


def sub_ids(m):
    ids = m.prop("SubscriptionIdentifier", [])
    return sorted(ids if isinstance(ids, list) else [ids])


def test():
    c = mqttc.Client(P + "-c", V5)
    c.connect()
    pub = mqttc.Client(P + "-pub", V5)
    pub.connect()

    # One subscription with an id, one without.
    c.subscribe(P + "/one", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=42))
    c.subscribe(P + "/none", 1)
    pub.publish(P + "/one", b"1", 1)
    pub.publish(P + "/none", b"2", 1)
    got = c.wait_messages(2)
    byt = {m.topic: m for m in got}
    eq(sub_ids(byt[P + "/one"]), [42], "identifier of the matching subscription")
    eq(sub_ids(byt[P + "/none"]), [], "identifiers without one")
    c.take()
    # Replacing the subscription replaces its identifier.
    c.subscribe(P + "/one", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    pub.publish(P + "/one", b"3", 1)
    eq(sub_ids(c.wait_messages(1)[0]), [7], "identifier after re-subscribing")
    c.take()

    # Overlapping.
    c.subscribe(P + "/o/#", 1, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=1))
    c.subscribe(P + "/o/+", 2, properties=props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=2))
    c.subscribe(P + "/o/b", 0)
    for pq in (2, 1):
        pub.publish(P + "/o/b", b"q%d" % pq, pq)
        c.wait_messages(1)
        copies = c.settle()
        ids = sorted(i for m in copies for i in sub_ids(m))
        eq(ids, [1, 2], "published QoS %d: identifiers over the copies %r" % (pq, copies))
        for m in copies:
            eq(m.payload, b"q%d" % pq, "payload")
            check(m.qos <= pq, "copy at QoS %d above the published %d" % (m.qos, pq))
        if len(copies) == 1:
            eq(copies[0].qos, min(pq, 2), "single copy: QoS = max granted, capped")
            print("published QoS %d: one copy, ids %r, QoS %d" % (pq, ids, copies[0].qos))
        else:
            check(len(copies) <= 3, "more copies than subscriptions: %r" % copies)
            want = {1: min(pq, 1), 2: min(pq, 2)}
            eq(sorted(m.qos for m in copies if not sub_ids(m)), [0] * (len(copies) - 2),
               "QoS of the copy for the subscription without identifier")
            for m in copies:
                for i in sub_ids(m):
                    eq(m.qos, want[i], "QoS of the copy for subscription %d" % i)
            print("published QoS %d: %d copies %r" % (pq, len(copies),
                                                       [(sub_ids(m), m.qos) for m in copies]))

    # Identifier 0 is a protocol error.
    r = Raw(5)
    r.connect(P + "-zero")
    r.send(mqttc.subscribe_packet(1, [(P + "/z", 1)], 5, props=[(0x0B, 0)]))
    got = r.read_until_closed()
    check(all(p.type == mqttc.DISCONNECT and p.reason in (0x81, 0x82) for p in got),
          "subscription identifier 0: want the connection closed, got %r" % got)
    r.close()
    c.disconnect()
    pub.disconnect()


mqttc.main(test)
