#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks that persistent sessions survive a broker restart (SIGTERM, then a start on the same data
# directory and port): QoS 1 and 2 messages published while the subscriber was offline, and acked
# to the publisher before the restart, all arrive after the restart, each QoS 2 message exactly
# once; the subscriptions are kept (3.1.1 clean session 0, and 5.0 with session expiry); a
# retained message survives too.
# interop: own-broker
import os
import sys

sys.path.insert(0, os.environ.get("FERRY_INTEROP_DIR", os.path.join(os.path.dirname(__file__), "..")))
import broker  # noqa: E402
import mqttc  # noqa: E402
from mqttc import PacketTypes, V5, V311, eq, props  # noqa: E402

P = mqttc.PREFIX
N = 25


def test():
    b = broker.from_env()
    try:
        b.start()
        mqttc.PORT = b.mqtt_port
        expiry = props(PacketTypes.CONNECT, SessionExpiryInterval=3600)
        subs = {"v311": (V311, P + "/r311"), "v5": (V5, P + "/r5")}
        for name, (proto, t) in subs.items():
            c = mqttc.Client(P + "-" + name, proto, clean_session=False if proto == V311 else None)
            c.connect(clean_start=False, properties=expiry if proto == V5 else None)
            c.subscribe(t + "/+", 2)
            c.disconnect()
        pub = mqttc.Client(P + "-pub", V311)
        pub.connect()
        for name, (proto, t) in subs.items():
            for q in (1, 2):
                for i in range(N):
                    pub.publish("%s/%d" % (t, q), b"%s-q%d-%d" % (name.encode(), q, i), q)
        pub.publish(P + "/retained", b"kept", 1, retain=True)
        pub.disconnect()

        b.restart()

        for name, (proto, t) in subs.items():
            c = mqttc.Client(P + "-" + name, proto, clean_session=False if proto == V311 else None)
            flags, _, _ = c.connect(clean_start=False,
                                    properties=expiry if proto == V5 else None)
            eq(flags["session present"], 1, name + ": session present after restart")
            got = c.wait_messages(2 * N, name + ": messages queued before the restart")
            for q in (1, 2):
                mine = [m.payload for m in got if m.topic == "%s/%d" % (t, q)]
                want = [b"%s-q%d-%d" % (name.encode(), q, i) for i in range(N)]
                if q == 2:
                    eq(mine, want, name + ": QoS 2 messages (exactly once, in order)")
                else:
                    eq(sorted(set(mine)), sorted(want), name + ": QoS 1 messages (all there)")
            c.take()
            # the subscription survived: a live message arrives
            p2 = mqttc.Client(P + "-pub2", V311)
            p2.connect()
            p2.publish(t + "/1", b"live", 1)
            p2.disconnect()
            live = c.wait_messages(1, name + ": live message after restart")
            eq(live[-1].payload, b"live", name + ": live message")
            c.disconnect()
        late = mqttc.Client(P + "-late", V311)
        late.connect()
        late.subscribe(P + "/retained", 1)
        m = late.wait_messages(1, "retained message after restart")[0]
        eq((m.payload, m.retain), (b"kept", True), "retained after restart")
        late.disconnect()
        mqttc.Client.stop_all()
        eq(b.stop(), 0, "broker exit code")
    finally:
        b.close()


mqttc.main(test, own_broker=True)
