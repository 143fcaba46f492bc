#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (reason strings are optional in MQTT 5): a refused QoS 1 publish (Payload Format
# Indicator 1 with bytes that are not UTF-8) gets PUBACK 0x99 with a Reason String, and none when
# the client set Request Problem Information 0; a protocol violation (a wildcard in a PUBLISH
# topic) gets DISCONNECT 0x90 with a Reason String saying why, then the connection closes.
# interop: ferry-only
import mqttc
from mqttc import PUBACK, DISCONNECT, V5, Raw, check, eq, publish_packet


def test():
    r = Raw(V5)
    r.connect("interop-26")
    r.send(publish_packet("rs26/x", b"\xff\xfe", 1, pid=3, version=V5, props=[(0x01, 1)]))
    a = r.expect(PUBACK)
    eq((a.pid, a.reason), (3, 0x99), "PUBACK for a payload that is not UTF-8")
    check(a.prop(0x1F), "a Reason String on the refusal: %r" % a)
    r.send(publish_packet("rs26/+", b"x", 0, version=V5))
    got = r.read_until_closed()
    check(got and got[-1].type == DISCONNECT, "DISCONNECT before the close: %r" % got)
    eq(got[-1].reason, 0x90, "DISCONNECT reason: Topic Name invalid")
    check(got[-1].prop(0x1F), "a Reason String on the DISCONNECT: %r" % got[-1])

    q = Raw(V5)
    q.connect("interop-26b", props=[(0x17, 0)])  # Request Problem Information 0
    q.send(publish_packet("rs26/x", b"\xff", 1, pid=4, version=V5, props=[(0x01, 1)]))
    a = q.expect(PUBACK)
    eq((a.pid, a.reason, a.prop(0x1F)), (4, 0x99, None), "no Reason String when not asked")
    q.close()


if __name__ == "__main__":
    mqttc.main(test)
