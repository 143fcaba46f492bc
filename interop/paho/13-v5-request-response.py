#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 properties end to end between paho clients: user properties (order and repeated
# keys kept [MQTT-3.3.2-18]), content type, payload format indicator, message expiry (forwarded,
# not above the value sent [MQTT-3.3.2-6]), and the request/response pattern: a requester
# publishes with Response Topic and Correlation Data, a responder answers on that topic with the
# same correlation data, and the requester matches the answers to its requests.
import mqttc
from mqttc import PacketTypes, V5, eq, props

P = mqttc.PREFIX


def test():
    rx = mqttc.Client(P + "-rx", V5)
    rx.connect()
    rx.subscribe(P + "/props", 2)
    tx = mqttc.Client(P + "-tx", V5)
    tx.connect()
    up = [("a", "1"), ("b", "2"), ("a", "3"), ("ключ", "значение")]
    for q in (0, 1, 2):
        tx.publish(P + "/props", b"{\"q\":%d}" % q, q, properties=props(
            PacketTypes.PUBLISH, UserProperty=up, ContentType="application/json",
            PayloadFormatIndicator=1, MessageExpiryInterval=600))
    got = rx.wait_messages(3)
    for q, m in enumerate(got):
        eq(m.payload, b"{\"q\":%d}" % q, "payload")
        eq(m.prop("UserProperty"), up, "user properties")
        eq(m.prop("ContentType"), "application/json", "content type")
        eq(m.prop("PayloadFormatIndicator"), 1, "payload format indicator")
        e = m.prop("MessageExpiryInterval")
        mqttc.check(e is not None and 590 <= e <= 600, "message expiry %r, want 590..600" % e)

    # Request/response: a responder that echoes requests in upper case.
    responder = mqttc.Client(P + "-responder", V5)

    def on_request(c, u, m):
        rt = m.properties.ResponseTopic
        cd = m.properties.CorrelationData
        c.publish(rt, m.payload.upper(), 1, properties=props(PacketTypes.PUBLISH, CorrelationData=cd))

    responder.c.message_callback_add(P + "/service", on_request)
    responder.connect()
    responder.subscribe(P + "/service", 1)
    req = mqttc.Client(P + "-requester", V5)
    req.connect()
    reply = P + "/reply/" + P
    req.subscribe(reply, 1)
    for i in range(5):
        req.publish(P + "/service", b"request %d" % i, 1, properties=props(
            PacketTypes.PUBLISH, ResponseTopic=reply, CorrelationData=b"\x00corr%d\xff" % i))
    answers = req.wait_messages(5)
    eq(sorted((m.prop("CorrelationData"), m.payload) for m in answers),
       sorted((b"\x00corr%d\xff" % i, b"REQUEST %d" % i) for i in range(5)),
       "answers matched by correlation data")
    for m in answers:
        eq(m.topic, reply, "answer topic")
    for c in (rx, tx, responder, req):
        c.disconnect()


mqttc.main(test)
