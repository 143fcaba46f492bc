#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (mosquitto does not offer Response Information): an MQTT 5 client that sets Request
# Response Information 1 in CONNECT gets Response Information "response/<client id>" in CONNACK
# and can use it as the base of its response topic; without the request there is none.
# interop: ferry-only
import mqttc
from mqttc import V5, eq, check, Raw


def test():
    r = Raw(V5)
    ack = r.connect("interop-16", props=[(0x19, 1)])
    eq(ack.prop(0x1A), "response/interop-16", "Response Information")
    # The prefix works as a topic: subscribe to it and get what is published there.
    r.subscribe(1, [("response/interop-16/#", 1)])
    c = mqttc.Client("interop-16-pub", V5)
    c.connect()
    c.publish("response/interop-16/reply", b"pong", 1)
    p = r.expect(mqttc.PUBLISH)
    eq(p.payload, b"pong", "payload on the response topic")
    r.close()
    r2 = Raw(V5)
    ack2 = r2.connect("interop-16b")
    check(ack2.prop(0x1A) is None, "no Response Information unless asked: %r" % (ack2,))
    r2.close()


if __name__ == "__main__":
    mqttc.main(test)
