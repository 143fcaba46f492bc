#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (cross-protocol): a paho 5.0 client publishes to sensors/room1/temp at QoS 1 with a
# user property, and to sensors/room2/hum at QoS 2; a native consumer group (`ferryctl consume
# sensors --group G --from first --json`) receives both from native topic `sensors` with the full
# MQTT topic in property mqtt.topic, the user property as a message property, the payload as body.
# interop: ferry-only
import json
import os
import subprocess

import mqttc
from mqttc import PacketTypes, V5, check, eq, props


def test():
    ferryctl = os.environ["FERRYCTL"]
    native = "127.0.0.1:%s" % os.environ["FERRY_NATIVE_PORT"]
    c = mqttc.Client("interop-20", V5)
    c.connect()
    c.publish("sensors/room1/temp", b"21.5", 1,
              properties=props(PacketTypes.PUBLISH, UserProperty=[("unit", "C")]))
    c.publish("sensors/room2/hum", b"40", 2)
    c.disconnect()
    r = subprocess.run([ferryctl, "--broker", native, "--json", "consume", "sensors", "--group",
                        "interop-20", "--from", "first", "--count", "2", "--timeout", "10000"],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, "ferryctl consume exit code (stderr: %s)" % r.stderr)
    msgs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    eq(len(msgs), 2, "messages consumed natively: %s" % r.stdout)
    by = {m["properties"].get("mqtt.topic"): m for m in msgs}
    check("sensors/room1/temp" in by and "sensors/room2/hum" in by,
          "mqtt.topic properties: %r" % [m["properties"] for m in msgs])
    m = by["sensors/room1/temp"]
    eq(m["topic"], "sensors", "native topic")
    eq(m.get("body"), "21.5", "body")
    eq(m["properties"].get("unit"), "C", "user property as a message property")
    eq(by["sensors/room2/hum"].get("body"), "40", "body of the QoS 2 message")


mqttc.main(test)
