#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: auth_max_pending bounds the password checks waiting for the worker thread. With
# auth_max_pending 2 and two slow checks pending (about 3 s each), a login whose
# password needs checking is refused at once as server busy, in each protocol's terms: MQTT
# 3.1.1 CONNACK 3 (server unavailable), MQTT 5 CONNACK 0x89 (Server busy), AMQP sasl-outcome
# sys-temp (4), native HELLO EAGAIN ("server busy" from ferryctl), admin HTTP 503 with
# Retry-After. A password that passed before is still accepted at once (the fast check needs no
# worker). /metrics counts ferry_auth_pending and ferry_auth_busy_total. Once the checks are
# answered, logins are checked again.
# interop: ferry-only, own-broker
import time

import sec
from sec import check, eq

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import mqttc  # noqa: E402

BUSY_WINDOW = 2.5  # seconds the probes have: the first slow check takes about 3


def test(d):
    pw = authlib.password_file(d, 3.0, ["slow"])
    f = sec.Ferry(d, "password_file %s\nauth_max_pending 2\n" % pw)
    mqttc.PORT = f.b.mqtt_port

    def pending():
        return authlib.metric(f, "fast", "pw-fast", "ferry_auth_pending")

    # fast's password passes once (a check on the worker), and is then known: /metrics and its
    # MQTT logins below need no worker.
    eq(pending(), 0, "ferry_auth_pending at rest")
    r = authlib.mqtt_login("fast", "pw-fast", 4)
    eq(authlib.connack(r), 0, "fast logs in")
    r.close()

    slow = [authlib.mqtt_login("slow", "wrong-%d" % i, 4) for i in range(2)]
    sec_end = time.monotonic() + sec.DEADLINE
    while pending() < 2:
        check(time.monotonic() < sec_end, "two checks pending")
        time.sleep(0.01)

    t0 = time.monotonic()
    eq(authlib.connack(authlib.mqtt_login("slow", "right", 4)), 3,
       "MQTT 3.1.1 while busy: CONNACK return code (server unavailable)")
    eq(authlib.connack(authlib.mqtt_login("slow", "right", 5)), 0x89,
       "MQTT 5 while busy: CONNACK reason (Server busy)")
    code, got = authlib.amqp_answer(authlib.amqp_login("slow", "right"))
    eq(code, 4, "AMQP SASL PLAIN while busy: sasl-outcome code sys-temp (got %r)" % got[-64:])
    st, body = authlib.http_get(f.b.admin_port, "/api/v1/topics", "slow", "right")
    eq(st, 503, "admin HTTP while busy: status (%s)" % body)
    rc, err = authlib.ferryctl_result(authlib.ferryctl_login(f, "slow", "right"))
    check(rc != 0 and "server busy" in err, "ferryctl while busy: exit %d, %r" % (rc, err))
    took = time.monotonic() - t0
    check(took < BUSY_WINDOW, "five busy refusals took %.1f s" % took)
    r = authlib.mqtt_login("fast", "pw-fast", 5)
    eq(authlib.connack(r), 0, "a known password while busy (the fast check)")
    r.close()
    eq(authlib.metric(f, "fast", "pw-fast", "ferry_auth_busy_total"), 5, "ferry_auth_busy_total")

    for r in slow:
        eq(authlib.connack(r), 4, "the pending wrong passwords: CONNACK")
        r.close()
    while pending() > 0:
        check(time.monotonic() < sec_end + authlib.ANSWER_DEADLINE, "checks answered")
        time.sleep(0.01)
    r = authlib.mqtt_login("slow", "right", 4)
    eq(authlib.connack(r), 0, "slow logs in once the worker is free")
    r.close()
    f.wait_log(r"server busy: too many password checks pending", what="the busy log line")
    f.close()


sec.main(test)
