#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a QoS 2 message sent to a durable session and not yet PUBREC'd when the broker
# crashes goes again after the restart with the SAME packet id and DUP set — never under a new
# packet id, which the client could not tell from a new message (MQTT 4.3.3, 4.4). The
# subscriber (3.1.1, clean session 0) gets the PUBLISH and does not answer; ferryd is killed
# (SIGKILL) and restarted. On reconnect: that PUBLISH once, same pid, DUP; after PUBREC, PUBREL;
# after PUBCOMP nothing more, and the next message arrives once.
# interop: ferry-only own-broker
import os
import sys

sys.path.insert(0, os.environ.get("FERRY_INTEROP_DIR", os.path.join(os.path.dirname(__file__), "..")))
import broker  # noqa: E402
import mqttc  # noqa: E402
from mqttc import (PUBCOMP, PUBLISH, PUBREC, PUBREL, Raw, V311, ack_packet, check,  # noqa: E402
                   eq)


def drain(r, wait):
    got = []
    while True:
        q = r.read(timeout=wait)
        if q is None:
            return got
        got.append(q)


def test():
    b = broker.from_env()
    try:
        b.start()
        mqttc.PORT = b.mqtt_port
        r = Raw(V311)
        r.connect("interop-28", clean=False)
        r.subscribe(1, [("q2crash/#", 2)])
        pub = mqttc.Client("interop-28-pub", V311)
        pub.connect()
        for i in range(3):  # complete flows first, so the packet id in flight is not the first
            pub.publish("q2crash/a", b"warm-up", 2)
            w = r.expect(PUBLISH)
            r.send(ack_packet(PUBREC, w.pid))
            eq(r.expect(PUBREL).pid, w.pid, "PUBREL of a warm-up message")
            r.send(ack_packet(PUBCOMP, w.pid))
        pub.publish("q2crash/a", b"first", 2)
        p = r.expect(PUBLISH)
        eq((p.qos, p.payload, p.dup), (2, b"first", False), "the first QoS 2 delivery")
        pub.disconnect()
        b.kill()  # no PUBREC was sent
        r.close()
        b.start()
        mqttc.PORT = b.mqtt_port
        r = Raw(V311)
        eq(r.connect("interop-28", clean=False).session_present, True, "session present")
        got = drain(r, 1.5)
        eq([(q.type, q.pid, q.dup, q.payload) for q in got], [(PUBLISH, p.pid, True, b"first")],
           "after the restart: the same PUBLISH once, same packet id, DUP (%r)" % got)
        r.send(ack_packet(PUBREC, p.pid))
        eq(r.expect(PUBREL).pid, p.pid, "PUBREL after PUBREC")
        r.send(ack_packet(PUBCOMP, p.pid))
        got = drain(r, 1.0)
        eq(got, [], "nothing more after PUBCOMP (%r)" % got)
        # Once more across a restart: the completed message must not come back.
        r.close()
        b.kill()
        b.start()
        mqttc.PORT = b.mqtt_port
        r = Raw(V311)
        r.connect("interop-28", clean=False)
        got = drain(r, 1.5)
        eq(got, [], "a completed message stays completed across a restart (%r)" % got)
        pub = mqttc.Client("interop-28-pub2", V311)
        pub.connect()
        pub.publish("q2crash/a", b"second", 2)
        q = r.expect(PUBLISH)
        eq((q.payload, q.dup), (b"second", False), "the next message")
        r.send(ack_packet(PUBREC, q.pid))
        eq(r.expect(PUBREL).pid, q.pid, "PUBREL")
        r.send(ack_packet(PUBCOMP, q.pid))
        check(r.read(timeout=1.0) is None, "nothing more")
        pub.disconnect()
        r.close()
    finally:
        b.close()


if __name__ == "__main__":
    mqttc.main(test, own_broker=True)
