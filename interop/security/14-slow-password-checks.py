#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: password checks run off the event loop. The password file's users have PBKDF2
# costs of about a second a check here (rounds calibrated with hashlib, as ferryd hashes with
# OpenSSL). While wrong passwords from every protocol wait for their checks (MQTT 3.1.1 and 5.0
# CONNECTs, an unknown MQTT user, AMQP SASL PLAIN, native HELLO through ferryctl, admin HTTP
# Basic), a client connected before completes publish -> receive round trips in well under a
# check's time (< 300 ms each; on the loop each check stalled everyone for a second). Then each
# refusal is the protocol's: CONNACK 4 / 0x86, sasl-outcome auth, ferryctl "bad user name or
# password", HTTP 401. The right password still connects, and what a client sent right behind
# its CONNECT (SUBSCRIBE, PUBLISH) or its sasl-init (the AMQP header and open) is handled, in
# order, once the check answers. Clients that go away while their checks are pending (MQTT,
# AMQP, ferryctl, HTTP) do no harm: the broker serves on and stops cleanly (exit 0; no leak
# under ASan).
# interop: ferry-only, own-broker
import os
import socket
import time

import sec
from sec import check, eq

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import amqpc, mqttc  # noqa: E402

RTT_MAX = 0.3


def test(d):
    pw = authlib.password_file(d, 1.0, ["slow", "slowa"])
    f = sec.Ferry(d, "password_file %s\n" % pw)
    mqttc.PORT = f.b.mqtt_port
    topic = "obs%d/rtt" % os.getpid()
    obs = authlib.Observer("fast", "pw-fast", topic)
    obs.rtt()

    # Wrong passwords from every protocol, all pending at once (checked one after the other;
    # ferryctl first: it waits 5 s at most for HELLO's answer).
    native = authlib.ferryctl_login(f, "slow", "wrong")
    time.sleep(0.3)
    m3 = authlib.mqtt_login("slow", "wrong", 4)
    m5 = authlib.mqtt_login("slow", "wrong", 5)
    unknown = authlib.mqtt_login("nobody", "right", 4)
    a1 = authlib.amqp_login("slow", "wrong")
    admin = authlib.Later(lambda: authlib.http_get(f.b.admin_port, "/api/v1/topics", "slow",
                                                   "wrong"))
    times = obs.round_trips(1.5)
    pending = [not authlib.answered(m3), not authlib.answered(m5),
               not authlib.answered(unknown), not authlib.amqp_answered(a1)]
    print("round trips while checks were pending: %d, slowest %.0f ms" %
          (len(times), 1000 * max(times)))
    check(max(times) < RTT_MAX, "a round trip took %.0f ms while password checks were pending "
          "(all: %s)" % (1000 * max(times), ["%.0f" % (1000 * t) for t in times]))
    check(len(times) >= 5, "only %d round trips in 1.5 s" % len(times))
    check(any(pending), "the checks were answered before the round trips ended: they are not "
          "slow enough to show anything")

    eq(authlib.connack(m3), 4, "MQTT 3.1.1 wrong password: CONNACK return code")
    eq(authlib.connack(m5), 0x86, "MQTT 5 wrong password: CONNACK reason")
    eq(authlib.connack(unknown), 4, "MQTT 3.1.1 unknown user: CONNACK return code")
    for r in (m3, m5, unknown):
        r.read_until_closed(timeout=sec.DEADLINE)
        r.close()
    code, got = authlib.amqp_answer(a1)
    eq(code, 1, "AMQP SASL PLAIN wrong password: sasl-outcome code (got %r)" % got[-64:])
    a1.close()
    rc, err = authlib.ferryctl_result(native)
    check(rc != 0 and "bad user name or password" in err,
          "ferryctl with a wrong password: exit %d, %r" % (rc, err))
    eq(admin.result()[0], 401, "admin HTTP Basic with a wrong password: status")

    # The right password: what followed CONNECT waits for the check, then is handled in order.
    t2 = "obs%d/piped" % os.getpid()
    r = authlib.mqtt_login("slow", "right", 4,
                           then=mqttc.subscribe_packet(7, [(t2, 0)]) +
                           mqttc.publish_packet(t2, b"piped"))
    eq(authlib.connack(r), 0, "MQTT right password: CONNACK")
    eq(r.expect(mqttc.SUBACK).pid, 7, "the SUBACK of the SUBSCRIBE sent behind CONNECT")
    eq(r.expect(mqttc.PUBLISH).payload, b"piped", "the PUBLISH sent behind CONNECT")
    r.close()
    # A password that passed is checked at once afterwards (no worker).
    t0 = time.monotonic()
    r = authlib.mqtt_login("slow", "right", 5)
    eq(authlib.connack(r, sec.DEADLINE), 0, "MQTT 5 right password again: CONNACK")
    check(time.monotonic() - t0 < RTT_MAX, "the second login took %.0f ms" %
          (1000 * (time.monotonic() - t0)))
    r.close()
    # AMQP: the AMQP header and open sent right behind sasl-init reach proton after the outcome.
    s = authlib.amqp_login("slowa", "right", then=amqpc.client_open_bytes("piped"))
    code, got = authlib.amqp_answer(s, more=b"AMQP\x00\x01\x00\x00")
    eq(code, 0, "AMQP right password: sasl-outcome code")
    i = got.find(b"AMQP\x00\x01\x00\x00")
    end = time.monotonic() + sec.DEADLINE
    while got.find(b"\x00\x53\x10", i) < 0 and time.monotonic() < end:
        try:
            got += s.recv(65536)
        except socket.timeout:
            pass
    check(got.find(b"\x00\x53\x10", i) > i, "the broker's open after the AMQP header: %r" %
          got[i:i + 64])
    s.close()
    c = amqpc.connect(user="slowa", password="right", allowed_mechs="PLAIN")
    rcv = c.create_receiver(t2.replace("/", "-"), credit=5)
    c.create_sender(t2.replace("/", "-")).send(amqpc.Message(body="amqp"))
    eq(rcv.receive(timeout=sec.DEADLINE).body, "amqp", "AMQP after a pending login")
    rcv.accept()
    c.close()

    # Clients that go away while their checks are pending.
    gone = [authlib.mqtt_login("slow", "gone-%d" % i, 4) for i in range(3)]
    gone_amqp = authlib.amqp_login("slow", "gone")
    gone_native = authlib.ferryctl_login(f, "slow", "gone")
    http = socket.create_connection(("127.0.0.1", f.b.admin_port), timeout=sec.DEADLINE)
    http.sendall(b"GET /api/v1/topics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
                 b"c2xvdzpnb25l\r\n\r\n")  # slow:gone
    time.sleep(0.3)
    for r in gone:
        r.close()
    gone_amqp.close()
    gone_native.kill()
    gone_native.communicate()
    http.close()
    times = obs.round_trips(0.5)
    check(max(times) < RTT_MAX, "a round trip took %.0f ms after clients left" %
          (1000 * max(times)))
    r = authlib.mqtt_login("slow", "right", 4)
    eq(authlib.connack(r), 0, "MQTT right password after the clients left")
    r.close()
    obs.r.close()
    f.close()  # exit code 0: under ASan, no leak either


sec.main(test)
