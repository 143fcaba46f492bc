#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks session takeover: a second connection with the same client id makes the broker close the
# first one [MQTT-3.1.4-2 / MQTT-3.1.4-3]; in 5.0 the first may get DISCONNECT 0x8E (Session
# taken over) before the close, and nothing else. The new connection works, and with clean session
# 0 it takes over the session (session present 1, subscriptions kept).
# Wills on takeover: 3.1.1 publishes the will whenever the server closes the network connection
# without a DISCONNECT from the client [MQTT-3.1.2-8], also when the new connection continues the
# session; mosquitto 2.0.11 publishes it only when the new connection starts a clean session (it
# applies 5.0's rule, where a new connection before the will delay ends cancels the will, to
# 3.1.1 too) — that one assertion is skipped for mosquitto. With a clean new connection both
# 3.1.1 and 5.0 publish the old connection's will (the session ends).
import mqttc
from mqttc import Raw, V311, check, eq

P = mqttc.PREFIX


def test():
    # 3.1.1 with raw connections, persistent session, will on the first.
    watcher = mqttc.Client(P + "-watch", V311)
    watcher.connect()
    watcher.subscribe(P + "/will/#", 1)

    cid = P + "-take311"
    a = Raw(4)
    eq(a.connect(cid, clean=False, will=(P + "/will/a", b"a gone", 1, False)).session_present,
       False, "first connection: session present")
    eq(a.subscribe(1, [(P + "/t311", 1)]), [1], "SUBACK")
    b = Raw(4)
    eq(b.connect(cid, clean=False).session_present, True, "takeover: session present")
    got = a.read_until_closed()
    eq(got, [], "3.1.1: packets to the first connection before its close")
    # The session (and its subscription) went to the new connection.
    pub = mqttc.Client(P + "-pub", V311)
    pub.connect()
    pub.publish(P + "/t311", b"for the new one", 1)
    m = b.expect(mqttc.PUBLISH)
    eq((m.topic, m.payload, m.qos), (P + "/t311", b"for the new one", 1), "message on the new conn")
    b.send(mqttc.ack_packet(mqttc.PUBACK, m.pid))
    # 3.1.1: the server closed the first network connection without DISCONNECT: will published.
    nwill = 0
    if not mqttc.mosquitto_deviates("3.1.1 will on takeover by a clean session 0 connection"):
        w = watcher.wait_messages(1, "the first connection's will")
        eq((w[0].topic, w[0].payload), (P + "/will/a", b"a gone"), "will")
        nwill = 1
    a.close()
    b.close()

    # Takeover by a clean connection: the old session ends, its will is published (3.1.1 and 5.0).
    for v in (4, 5):
        cid = "%s-takeclean%d" % (P, v)
        a = Raw(v)
        a.connect(cid, clean=True, will=(P + "/will/clean%d" % v, b"gone", 1, False))
        b = Raw(v)
        eq(b.connect(cid, clean=True).session_present, False, "clean takeover: session present")
        a.read_until_closed()
        w = watcher.wait_messages(nwill + 1, "will of the connection taken over (v%d)" % v)
        eq((w[-1].topic, w[-1].payload), (P + "/will/clean%d" % v, b"gone"), "will")
        nwill += 1
        a.close()
        b.close()

    # 5.0 with raw connections.
    cid = P + "-take5"
    a = Raw(5)
    a.connect(cid, props=[(0x11, 60)])
    b = Raw(5)
    eq(b.connect(cid, clean=False, props=[(0x11, 60)]).session_present, True,
       "5.0 takeover: session present")
    got = a.read_until_closed()
    check(len(got) <= 1, "5.0: more than a DISCONNECT to the old connection: %r" % got)
    if got:
        eq((got[0].type, got[0].reason), (mqttc.DISCONNECT, 0x8E),
           "5.0: DISCONNECT to the old connection")
    b.send(mqttc.packet(mqttc.PINGREQ, 0, b""))
    b.expect(mqttc.PINGRESP)
    a.close()
    b.close()

    # paho sees its first client disconnected.
    c1 = mqttc.Client(P + "-paho", V311)
    c1.connect()
    c1.c.reconnect_delay_set(30, 60)  # do not fight back during the test
    c2 = mqttc.Client(P + "-paho", V311)
    c2.connect()
    check(c1.wait_disconnected() != 0, "paho client 1: disconnect reported as clean")
    c1.stop()
    c2.subscribe(P + "/paho", 1)
    c2.publish(P + "/paho", b"x", 1)
    c2.wait_messages(1)
    c2.disconnect()
    pub.disconnect()
    watcher.disconnect()


mqttc.main(test)
