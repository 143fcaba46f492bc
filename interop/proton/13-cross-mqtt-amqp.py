#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (cross-protocol): a paho MQTT 5 publish to sensors/room1/temp reaches an AMQP
# receiver of native topic `sensors` as a data section, with the full MQTT topic in application
# property mqtt.topic, the user property as an application property and the content type as
# content-type; an AMQP message to `sensors` reaches a paho subscriber of sensors/# with its
# body as the payload.
# interop: ferry-only
import os
import sys

import amqpc
from amqpc import Message, eq

sys.path.insert(0, os.path.join(os.environ["FERRY_INTEROP_DIR"], "paho"))
import mqttc  # noqa: E402
from mqttc import PacketTypes, V5, props  # noqa: E402


def test():
    topic = amqpc.PREFIX + "s13"
    c = amqpc.connect()
    rcv = c.create_receiver(topic, credit=5)
    sub = mqttc.Client("interop-amqp-13-sub", V5)
    sub.connect()
    sub.subscribe(topic + "/#", 1)
    pub = mqttc.Client("interop-amqp-13", V5)
    pub.connect()
    pub.publish(topic + "/room1/temp", b"21.5", 1,
                properties=props(PacketTypes.PUBLISH, UserProperty=[("unit", "C")],
                                 ContentType="text/plain"))
    m = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    eq(bytes(m.body), b"21.5", "MQTT payload as a data section")
    eq(m.properties.get("mqtt.topic"), topic + "/room1/temp", "mqtt.topic")
    eq(m.properties.get("unit"), "C", "user property")
    eq(m.content_type, "text/plain", "content type")
    got = sub.wait_messages(1, "the MQTT message on the MQTT side")
    eq(got[0].payload, b"21.5", "MQTT subscriber payload")
    sub.take()

    c.create_sender(topic).send(Message(body=b"from amqp", inferred=True, subject="T"))
    got = sub.wait_messages(1, "an AMQP message on the MQTT side")
    eq(got[0].payload, b"from amqp", "AMQP body as the MQTT payload")
    pub.disconnect()
    sub.disconnect()
    c.close()


amqpc.main(test)
