#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks keep-alive: a client that says keep-alive 1 s and then sends nothing is disconnected by
# the broker within 1.5x the keep-alive [MQTT-3.1.2-24] (+ 1 s slack), and its will is published (QoS 1, payload exact); a client that sends
# PINGREQ every 0.5 s stays connected for 3 s and gets a PINGRESP for each. A will with QoS 2 and
# retain set is retained (a later subscriber gets it with RETAIN 1).
# mosquitto 2.0.11 checks keep-alives coarsely: it closes a silent keep-alive 1 client after about
# 5.7 s (keep-alive 3: 6 s), beyond the 1.5 s the spec allows; for mosquitto the deadline is 8 s.
import time

import mqttc
from mqttc import Raw, V311, check, eq

P = mqttc.PREFIX


def test():
    watcher = mqttc.Client(P + "-watch", V311)
    watcher.connect()
    watcher.subscribe(P + "/will/#", 2)

    silent = Raw(4)
    silent.connect(P + "-silent", keepalive=1, will=(P + "/will/silent", b"silent died", 1, False))
    t0 = time.monotonic()
    pinger = Raw(4)
    pinger.connect(P + "-pinger", keepalive=1,
                   will=(P + "/will/pinger", b"must not be published", 1, False))
    silent2 = Raw(4)
    silent2.connect(P + "-silent2", keepalive=1,
                    will=(P + "/will/retained", b"kept", 2, True))

    limit = 2.5  # 1.5 x keep-alive + 1 s slack
    if mqttc.KIND == "mosquitto":
        limit = 8.0
        mqttc.mosquitto_deviates("keep-alive 1 s enforced after ~6 s instead of 1.5 s")
    # The pinger pings every 0.5 s (for at least 3 s) while the silent ones must get closed.
    pongs = 0
    closed = {}
    while time.monotonic() - t0 < 3.0 or len(closed) < 2:
        now = time.monotonic() - t0
        check(now <= limit + 0.5, "silent clients still open after %.1fs (limit %.1fs)"
              % (now, limit))
        pinger.send(mqttc.packet(mqttc.PINGREQ, 0, b""))
        p = pinger.read(timeout=0.5)
        check(p is not None, "pinger: no PINGRESP within 0.5 s (eof=%s)" % pinger.eof)
        eq(p.type, mqttc.PINGRESP, "reply to PINGREQ")
        pongs += 1
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            for name, r in (("silent", silent), ("silent2", silent2)):
                if name not in closed:
                    p = r.read(timeout=0.01)
                    check(p is None, "packet to a silent client: %r" % (p,))
                    if r.eof:
                        closed[name] = time.monotonic() - t0
            time.sleep(0.01)
    check(pongs >= 5, "only %d PINGRESPs" % pongs)
    for name, after in closed.items():
        check(after <= limit, "%s closed after %.1fs, want <= %.1fs" % (name, after, limit))

    msgs = watcher.wait_messages(2, "the two wills")
    eq(sorted((m.topic, m.payload, m.qos) for m in msgs),
       [(P + "/will/retained", b"kept", 2), (P + "/will/silent", b"silent died", 1)], "wills")

    # The pinger is still connected and works.
    pinger.send(mqttc.packet(mqttc.PINGREQ, 0, b""))
    pinger.expect(mqttc.PINGRESP)
    pinger.send(mqttc.packet(mqttc.DISCONNECT, 0, b""))
    eq(pinger.read_until_closed(), [], "after DISCONNECT")
    watcher.expect_no_more(2, "no will for the pinger (normal DISCONNECT)")

    late = mqttc.Client(P + "-late", V311)
    late.connect()
    late.subscribe(P + "/will/retained", 2)
    m = late.wait_messages(1, "the retained will")[0]
    eq((m.payload, m.retain), (b"kept", True), "retained will")
    for c in (silent, silent2, pinger):
        c.close()
    late.disconnect()
    watcher.disconnect()


mqttc.main(test)
