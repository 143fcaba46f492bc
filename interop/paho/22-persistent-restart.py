#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: persistent sessions (3.1.1 clean session 0; 5.0 with session expiry) get every QoS 1
# and QoS 2 message published while they were offline, before and after a ferryd crash (SIGKILL:
# Ferry acks only what its store has, so an acked message survives the process dying), nothing
# lost, each QoS 2 message exactly once and in order. The QoS 2 exactly-once state of an
# incoming message survives too: a publisher that got PUBREC before the crash re-sends the PUBLISH
# (DUP) and then PUBREL after it, and the message is delivered once.
# (Run against mosquitto by hand, FERRY_BROKER_KIND=mosquitto, it restarts with SIGTERM instead:
# mosquitto saves its state only on a clean shutdown.)
# interop: ferry-only own-broker
import os
import sys

sys.path.insert(0, os.environ.get("FERRY_INTEROP_DIR", os.path.join(os.path.dirname(__file__), "..")))
import broker  # noqa: E402
import mqttc  # noqa: E402
from mqttc import (PUBCOMP, PUBREC, PUBREL, PacketTypes, Raw, V5, V311, ack_packet,  # noqa: E402
                   eq, props, publish_packet)

N = 30


def session(name, proto):
    c = mqttc.Client("interop-22-" + name, proto, clean_session=False if proto == V311 else None)
    flags, _, _ = c.connect(clean_start=False, properties=props(
        PacketTypes.CONNECT, SessionExpiryInterval=3600) if proto == V5 else None)
    return c, flags["session present"]


def publish_batch(tag):
    p = mqttc.Client("interop-22-pub-" + tag, V311)
    p.connect()
    for q in (1, 2):
        for i in range(N):
            p.publish("p22/%d" % q, b"%s-q%d-%d" % (tag.encode(), q, i), q)
    p.disconnect()


def test():
    b = broker.from_env()
    crash = b.kind == "ferryd"
    try:
        b.start()
        mqttc.PORT = b.mqtt_port
        sessions = {"v311": V311, "v5": V5}
        for name, proto in sessions.items():
            c, _ = session(name, proto)
            c.subscribe("p22/+", 2)
            c.disconnect()
        publish_batch("before")
        # A QoS 2 publish half done: PUBREC received, no PUBREL yet.
        r = Raw(4)
        r.connect("interop-22-half", clean=False)
        r.send(publish_packet("p22/2", "half", 2, pid=5))
        eq(r.expect(PUBREC).pid, 5, "PUBREC id")
        r.close()

        b.restart(kill=crash)
        mqttc.PORT = b.mqtt_port

        r = Raw(4)
        eq(r.connect("interop-22-half", clean=False).session_present, True,
           "publisher session present after restart")
        r.send(publish_packet("p22/2", "half", 2, pid=5, dup=True))
        eq(r.expect(PUBREC).pid, 5, "PUBREC id for the re-sent PUBLISH")
        r.send(ack_packet(PUBREL, 5))
        eq(r.expect(PUBCOMP).pid, 5, "PUBCOMP id")
        r.close()
        publish_batch("after")

        for name, proto in sessions.items():
            c, present = session(name, proto)
            eq(present, 1, name + ": session present after restart")
            got = c.wait_messages(4 * N + 1, name + ": all queued messages")
            c.expect_no_more(4 * N + 1, name + ": duplicates")
            for q in (1, 2):
                mine = [m.payload for m in got if m.topic == "p22/%d" % q and m.payload != b"half"]
                want = [b"%s-q%d-%d" % (tag, q, i) for tag in (b"before", b"after")
                        for i in range(N)]
                if q == 2:
                    eq(mine, want, name + ": QoS 2 messages, exactly once, in order")
                else:
                    eq(sorted(set(mine)), sorted(want), name + ": QoS 1 messages, none lost")
            eq([m.payload for m in got if m.payload == b"half"], [b"half"],
               name + ": the half-done QoS 2 message, exactly once")
            c.disconnect()
        mqttc.Client.stop_all()
        eq(b.stop(), 0, "broker exit code")
    finally:
        b.close()


mqttc.main(test, own_broker=True)
