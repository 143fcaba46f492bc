#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 topic aliases from client to server (3.3.2.3.4):
# - the CONNACK states Topic Alias Maximum > 0 (both mosquitto and Ferry accept aliases);
# - PUBLISH topic + alias 1 sets the alias; PUBLISH with an empty topic + alias 1 goes to that
#   topic; a new topic with alias 1 remaps it. Subscribers see full topic names.
# - alias 0 or above the server's maximum: connection closed [MQTT-3.3.2-8, -9]; an empty topic
#   with an alias never set: protocol error, closed. A DISCONNECT before the close may carry 0x94
#   (Topic Alias invalid, what Ferry should send), 0x82 (Protocol Error) or 0x81 (Malformed
#   Packet: mosquitto 2.0.11's choice for alias 0).
# Aliases from server to client are not required of the server and not checked.
import mqttc
from mqttc import PacketTypes, Raw, V5, check, eq, props, publish_packet

P = mqttc.PREFIX


def alias(n):
    return props(PacketTypes.PUBLISH, TopicAlias=n)


def closed_with(r, reasons, what):
    got = r.read_until_closed()
    print("%s: %r then closed" % (what, got))
    check(all(p.type == mqttc.DISCONNECT and p.reason in reasons for p in got),
          "%s: want the connection closed (DISCONNECT %s allowed), got %r"
          % (what, "/".join("0x%02x" % x for x in reasons), got))
    r.close()


def test():
    sub = mqttc.Client(P + "-sub", V5)
    sub.connect()
    sub.subscribe(P + "/ta/#", 1)

    c = mqttc.Client(P + "-pub", V5)
    _, _, cprops = c.connect()
    tamax = getattr(cprops, "TopicAliasMaximum", 0)
    check(tamax >= 2, "CONNACK Topic Alias Maximum %r, want >= 2" % tamax)
    c.publish(P + "/ta/one", b"set", 1, properties=alias(1))
    c.publish("", b"use", 1, properties=alias(1))
    c.publish(P + "/ta/two", b"remap", 1, properties=alias(1))
    c.publish("", b"use2", 1, properties=alias(1))
    got = sub.wait_messages(4)
    # order is kept per topic only
    eq([m.payload for m in got if m.topic == P + "/ta/one"], [b"set", b"use"],
       "messages under the first aliased topic")
    eq([m.payload for m in got if m.topic == P + "/ta/two"], [b"remap", b"use2"],
       "messages under the remapped alias")
    for m in got:
        eq(m.prop("TopicAlias"), None, "alias forwarded to a subscriber that did not allow any")
    c.disconnect()

    r = Raw(5)
    r.connect(P + "-a0")
    r.send(publish_packet(P + "/ta/x", "x", 1, pid=1, version=5, props=[(0x23, 0)]))
    closed_with(r, (0x94, 0x82, 0x81), "topic alias 0")

    r = Raw(5)
    ca = r.connect(P + "-abig")
    m = ca.prop(0x22, 0)
    r.send(publish_packet(P + "/ta/x", "x", 1, pid=1, version=5, props=[(0x23, m + 1)]))
    closed_with(r, (0x94, 0x82, 0x81), "topic alias above the maximum %d" % m)

    r = Raw(5)
    r.connect(P + "-unset")
    r.send(publish_packet("", "x", 1, pid=1, version=5, props=[(0x23, 1)]))
    closed_with(r, (0x82, 0x94, 0x81), "empty topic with an alias never set")
    sub.expect_no_more(4, "nothing from the refused publishes")
    sub.disconnect()


mqttc.main(test)
