#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks CONNECT and client identifiers:
# - 3.1.1: an empty client id with clean session 0 is refused with CONNACK 0x02 (Identifier
#   rejected) and the connection closed [MQTT-3.1.3-8]; with clean session 1 it is accepted
#   (the spec allows refusing it; accepting is what mosquitto does and what Ferry chooses).
# - 5.0: an empty client id is accepted and the CONNACK carries an Assigned Client Identifier
#   [MQTT-3.2.2-16]; a client can use that connection to publish and receive.
# - 3.1 (protocol name MQIsdp, level 3) and 3.1.1 clients connect with paho.
# - An unsupported protocol level is refused (CONNACK 0x01 in 3.1.1 form, or 0x84 in 5.0 form)
#   and the connection closed [MQTT-3.1.2-2].
# - A CONNECT with a non-zero reserved flag bit is a malformed packet: the connection is closed.
import mqttc
from mqttc import Raw, V5, V31, V311, check, eq


def test():
    # 3.1.1, empty id, clean session 0: 0x02 then close.
    r = Raw(4)
    r.send(mqttc.connect_packet("", 4, clean=False))
    p = r.expect(mqttc.CONNACK)
    eq(p.reason, 0x02, "3.1.1 empty id + clean session 0: CONNACK return code")
    eq(p.session_present, False, "session present with a refused CONNACK")
    r.read_until_closed()
    r.close()

    # 3.1.1, empty id, clean session 1: accepted.
    r = Raw(4)
    p = r.connect("", clean=True)
    eq(p.session_present, False, "session present for an empty id")
    r.send(mqttc.packet(mqttc.PINGREQ, 0, b""))
    r.expect(mqttc.PINGRESP)
    r.close()

    # 5.0, empty id: accepted with an assigned id; it works.
    c = mqttc.Client("", V5)
    flags, rc, props = c.connect()
    assigned = getattr(props, "AssignedClientIdentifier", None)
    check(assigned, "5.0 empty id: CONNACK has no Assigned Client Identifier (%r)" % (props,))
    eq(flags.get("session present"), 0, "session present")
    t = "%s/conn/v5" % mqttc.PREFIX
    eq(c.subscribe(t, 1), [1], "SUBACK")
    c.publish(t, b"to myself", 1)
    eq([m.payload for m in c.wait_messages(1)], [b"to myself"], "message")
    c.disconnect()
    # Two empty-id clients get different identifiers.
    c2 = mqttc.Client("", V5)
    _, _, props2 = c2.connect()
    check(props2.AssignedClientIdentifier != assigned, "the same id was assigned twice")
    c2.disconnect()

    # 3.1 and 3.1.1 with paho.
    for proto, cid in ((V31, "conn-31"), (V311, "conn-311")):
        c = mqttc.Client("%s-%s" % (mqttc.PREFIX, cid), proto)
        c.connect()
        t = "%s/conn/%s" % (mqttc.PREFIX, cid)
        c.subscribe(t, 2)
        c.publish(t, cid.encode(), 2)
        eq([m.payload for m in c.wait_messages(1)], [cid.encode()], "%s message" % cid)
        c.disconnect()

    # Unsupported protocol level.
    r = Raw(4)
    r.send(mqttc.connect_packet("lvl", 4).replace(b"MQTT\x04", b"MQTT\x07"))
    got = r.read_until_closed()
    check(len(got) <= 1, "more than a CONNACK for an unsupported level: %r" % got)
    if got:
        eq(got[0].type, mqttc.CONNACK, "reply to an unsupported level")
        check(got[0].body[1] in (0x01, 0x84), "unsupported level: reason 0x%02x" % got[0].body[1])
    r.close()

    # Reserved flag (bit 0 of the connect flags) set: close without CONNACK 0.
    r = Raw(4)
    pkt = bytearray(mqttc.connect_packet("resv", 4))
    pkt[9] |= 0x01  # fixed header (2) + protocol name (6) + level (1): connect flags at index 9
    r.send(bytes(pkt))
    got = r.read_until_closed()
    check(all(p.type == mqttc.CONNACK and p.reason != 0 for p in got),
          "a CONNECT with the reserved flag set was accepted: %r" % got)
    r.close()


mqttc.main(test)
