#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: QoS 2 towards a durable session is exactly once across a broker crash. The
# subscriber (3.1.1, clean session 0) gets a QoS 2 PUBLISH, answers PUBREC and gets PUBREL, but
# does not send PUBCOMP; ferryd is killed (SIGKILL) at once and restarted. On reconnect the
# session gets PUBREL for that packet id again and never the message a second time; after its
# PUBCOMP the next message arrives once. (MQTT 4.3.3 and 4.4: after PUBREC the receiver owns the
# message; the sender must only complete the flow.)
# interop: ferry-only own-broker
import os
import sys

sys.path.insert(0, os.environ.get("FERRY_INTEROP_DIR", os.path.join(os.path.dirname(__file__), "..")))
import broker  # noqa: E402
import mqttc  # noqa: E402
from mqttc import (PUBCOMP, PUBLISH, PUBREC, PUBREL, Raw, V311, ack_packet, check,  # noqa: E402
                   eq)


def test():
    b = broker.from_env()
    try:
        b.start()
        mqttc.PORT = b.mqtt_port
        r = Raw(V311)
        r.connect("interop-27", clean=False)
        r.subscribe(1, [("q2out/#", 2)])
        pub = mqttc.Client("interop-27-pub", V311)
        pub.connect()
        pub.publish("q2out/a", b"first", 2)
        p = r.expect(PUBLISH)
        eq((p.qos, p.payload), (2, b"first"), "the QoS 2 delivery")
        r.send(ack_packet(PUBREC, p.pid))
        eq(r.expect(PUBREL).pid, p.pid, "PUBREL after PUBREC")
        pub.disconnect()
        b.kill()  # no PUBCOMP was sent
        r.close()
        b.start()
        mqttc.PORT = b.mqtt_port
        r = Raw(V311)
        eq(r.connect("interop-27", clean=False).session_present, True, "session present")
        got = []
        while True:
            q = r.read(timeout=1.5)
            if q is None:
                break
            got.append(q)
        eq([(q.type, q.pid) for q in got], [(PUBREL, p.pid)],
           "after the restart: PUBREL again, not the message (%r)" % got)
        r.send(ack_packet(PUBCOMP, p.pid))
        pub = mqttc.Client("interop-27-pub2", V311)
        pub.connect()
        pub.publish("q2out/a", b"second", 2)
        q = r.expect(PUBLISH)
        eq(q.payload, b"second", "the next message")
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
