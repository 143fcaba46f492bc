#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (MQTT over WebSocket, cross-protocol): paho clients with transport="websockets" (path
# /mqtt, subprotocol mqtt) and plain-TCP paho clients share topics. A 3.1.1 ws subscriber (QoS 2),
# a 5.0 ws subscriber (QoS 1) and a 5.0 TCP subscriber (QoS 2) each get every message published
# at QoS 0, 1 and 2 by a 5.0 ws publisher and a 3.1.1 TCP publisher, once, in order, at
# min(published, granted). A ws publish reaches a native consumer group (`ferryctl consume`) with
# mqtt.topic and body intact; `ferryctl send` reaches the ws subscribers.
# interop: ferry-only, ws
import json
import os
import subprocess

import mqttc
import wsc
from mqttc import V5, V311, check, eq

N = 5


def over_ws(client):
    """Connects a paho client over the WebSocket port."""
    saved = mqttc.PORT
    mqttc.PORT = wsc.WS_PORT
    try:
        return client.connect()
    finally:
        mqttc.PORT = saved


def ferryctl(*args):
    r = subprocess.run([os.environ["FERRYCTL"], "--broker",
                        "127.0.0.1:%s" % os.environ["FERRY_NATIVE_PORT"]] + list(args),
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, "ferryctl %s exit code (stderr: %s)" % (args[0], r.stderr))
    return r.stdout


def test():
    check(wsc.WS_PORT, "FERRY_WS_PORT is set")
    t = "ws30"
    w4 = mqttc.Client("ws30-w4", V311, transport="websockets")
    w5 = mqttc.Client("ws30-w5", V5, transport="websockets")
    tcp = mqttc.Client("ws30-tcp", V5)
    over_ws(w4)
    over_ws(w5)
    tcp.connect()
    eq(w4.subscribe(t + "/#", 2), [2], "ws 3.1.1 SUBACK")
    eq(w5.subscribe(t + "/#", 1), [1], "ws 5.0 SUBACK")
    eq(tcp.subscribe(t + "/#", 2), [2], "tcp SUBACK")
    pw = mqttc.Client("ws30-pw", V5, transport="websockets")
    pt = mqttc.Client("ws30-pt", V311)
    over_ws(pw)
    pt.connect()
    want = []
    for p, name in ((pw, "ws"), (pt, "tcp")):
        for qos in (0, 1, 2):
            for i in range(N):
                topic = "%s/%s/%d" % (t, name, qos)
                payload = ("%s-q%d-%d" % (name, qos, i)).encode()
                p.publish(topic, payload, qos)
                want.append((topic, payload, qos))
    for s, granted, what in ((w4, 2, "ws 3.1.1"), (w5, 1, "ws 5.0"), (tcp, 2, "tcp")):
        s.wait_messages(len(want), "%d messages at the %s subscriber" % (len(want), what))
        got = s.settle()
        eq(sorted((m.topic, m.payload, m.qos) for m in got),
           sorted((tp, pl, min(q, granted)) for tp, pl, q in want), "messages at " + what)
        for topic in sorted({w[0] for w in want}):
            eq([m.payload for m in got if m.topic == topic],
               [w[1] for w in want if w[0] == topic], "order on %s at %s" % (topic, what))

    # ws -> native consumer group
    pw.publish("ws30n/room/temp", b"19.5", 1)
    out = ferryctl("--json", "consume", "ws30n", "--group", "ws30", "--from", "first", "--count",
                   "1", "--timeout", "10000")
    msgs = [json.loads(line) for line in out.splitlines() if line.strip()]
    eq(len(msgs), 1, "messages consumed natively: %s" % out)
    eq(msgs[0]["properties"].get("mqtt.topic"), "ws30n/room/temp", "mqtt.topic of the ws publish")
    eq(msgs[0].get("body"), "19.5", "body of the ws publish")

    # native -> ws subscribers
    eq(w4.subscribe("ws30n/#", 1), [1], "ws SUBACK for ws30n/#")
    eq(w5.subscribe("ws30n/#", 1), [1], "ws SUBACK for ws30n/#")
    ferryctl("send", "ws30n", "from native")
    for s, what in ((w4, "ws 3.1.1"), (w5, "ws 5.0")):
        got = s.wait_messages(1, "the native message at the %s subscriber" % what)
        eq([(m.topic, m.payload) for m in got], [("ws30n", b"from native")], "native at " + what)
    for c in (w4, w5, tcp, pw, pt):
        c.disconnect()


mqttc.main(test)
