#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: password checks off the event loop on the connections that run on bufferevents:
# MQTT over TLS, MQTT over WebSocket, AMQP over TLS (14 covers plain TCP). The users' PBKDF2
# costs are about a second a check. While wrong and right passwords over all three wait for their
# checks, a client connected before completes publish -> receive round trips in under 300 ms.
# Wrong passwords get CONNACK 4 (TLS, 3.1.1) and 0x86 (WebSocket, 5.0) and sasl-outcome auth
# (AMQP TLS). Right passwords connect, and what was sent right behind CONNECT (SUBSCRIBE,
# PUBLISH; over WebSocket in a frame of its own) or sasl-init (the AMQP header and open) is handled
# in order once the check answers. Clients of each kind that go away while pending do no harm: the
# broker serves on and stops cleanly (exit 0; no leak under ASan).
# interop: ferry-only, own-broker
import os
import socket
import ssl
import sys
import time

import sec
import tlsutil
from sec import check, eq

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import amqpc, mqttc  # noqa: E402

sys.path.insert(0, os.path.join(sec.INTEROP, "paho"))
import wsc  # noqa: E402

RTT_MAX = 0.3
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"


def tls(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.create_connection(("127.0.0.1", port), timeout=sec.DEADLINE)
    return ctx.wrap_socket(s, server_hostname="127.0.0.1")


def mqtt_tls(port, ca, user, password, then=b""):
    r = authlib.RawOn(tls(port, ca))
    r.send(mqttc.connect_packet("", 4, True, 60, None, None, user, password) + then)
    return r


def mqtt_ws(user, password, then=b""):
    w = wsc.Ws(version=5)
    w.send_binary(mqttc.connect_packet("", 5, True, 60, None, None, user, password))
    if then:
        w.send_binary(then)
    return w


def amqp_tls(port, ca, user, password, then=b""):
    s = tls(port, ca)
    s.sendall(amqpc.SASL_HEADER + authlib.sasl_plain_init(user, password) + then)
    return s


def expect(r, ptype, what):
    p = r.read(authlib.ANSWER_DEADLINE)
    check(p is not None and p.type == ptype, "%s: got %r" % (what, p))
    return p


def test(d):
    pki = tlsutil.Pki(d)
    pw = authlib.password_file(d, 1.0, ["slow", "slow2", "slowa"])
    ws_port = sec.broker.free_port()
    f = tlsutil.TlsFerry(d, "password_file %s\n[tls]\ncertfile %s\nkeyfile %s\ncafile %s\n"
                         "[mqtt]\ntls_port 0\nws_port %d\n[amqp]\ntls_port 0\n" %
                         (pw, pki.server_crt, pki.server_key, pki.ca, ws_port))
    mqttc.PORT = f.b.mqtt_port
    wsc.WS_PORT = ws_port
    mport, aport = f.tls_ports["mqtt"], f.tls_ports["amqp"]
    obs = authlib.Observer("fast", "pw-fast", "obs%d/rtt" % os.getpid())
    obs.rtt()

    t1, t2 = "tls%d/piped" % os.getpid(), "ws%d/piped" % os.getpid()
    t_wrong = mqtt_tls(mport, pki.ca, "slow", "wrong")
    w_wrong = mqtt_ws("slow", "wrong")
    a_wrong = amqp_tls(aport, pki.ca, "slow", "wrong")
    t_right = mqtt_tls(mport, pki.ca, "slow", "right",
                       then=mqttc.subscribe_packet(3, [(t1, 0)]) + mqttc.publish_packet(t1, b"t"))
    w_right = mqtt_ws("slow2", "right",
                      then=mqttc.subscribe_packet(4, [(t2, 0)], version=5) +
                      mqttc.publish_packet(t2, b"w", version=5))
    a_right = amqp_tls(aport, pki.ca, "slowa", "right", then=amqpc.client_open_bytes("tls"))
    times = obs.round_trips(1.5)
    print("round trips while checks were pending: %d, slowest %.0f ms" %
          (len(times), 1000 * max(times)))
    check(max(times) < RTT_MAX, "a round trip took %.0f ms while password checks were pending "
          "(all: %s)" % (1000 * max(times), ["%.0f" % (1000 * t) for t in times]))

    eq(expect(t_wrong, mqttc.CONNACK, "TLS wrong password").reason, 4, "MQTT TLS wrong password")
    eq(expect(w_wrong, mqttc.CONNACK, "WebSocket wrong password").reason, 0x86,
       "MQTT WebSocket wrong password")
    code, got = authlib.amqp_answer(a_wrong)
    eq(code, 1, "AMQP TLS wrong password: sasl-outcome code (got %r)" % got[-64:])
    eq(expect(t_right, mqttc.CONNACK, "TLS right password").reason, 0, "MQTT TLS right password")
    eq(expect(t_right, mqttc.SUBACK, "TLS SUBACK").pid, 3, "the SUBACK behind CONNECT (TLS)")
    eq(expect(t_right, mqttc.PUBLISH, "TLS PUBLISH").payload, b"t", "the PUBLISH behind CONNECT")
    eq(expect(w_right, mqttc.CONNACK, "WebSocket right password").reason, 0,
       "MQTT WebSocket right password")
    eq(expect(w_right, mqttc.SUBACK, "WebSocket SUBACK").pid, 4,
       "the SUBACK behind CONNECT (WebSocket)")
    eq(expect(w_right, mqttc.PUBLISH, "WebSocket PUBLISH").payload, b"w",
       "the PUBLISH behind CONNECT (WebSocket)")
    code, got = authlib.amqp_answer(a_right, more=AMQP_HEADER)
    eq(code, 0, "AMQP TLS right password: sasl-outcome code")
    end = time.monotonic() + sec.DEADLINE
    i = got.find(AMQP_HEADER)
    while got.find(b"\x00\x53\x10", i) < 0 and time.monotonic() < end:
        try:
            got += a_right.recv(65536)
        except socket.timeout:
            pass
    check(got.find(b"\x00\x53\x10", i) > i, "the broker's open over TLS: %r" % got[i:i + 64])
    for s in (t_wrong, w_wrong, t_right, w_right):
        s.sock.close()
    a_wrong.close()
    a_right.close()

    # Clients that go away while their checks are pending.
    gone = [mqtt_tls(mport, pki.ca, "slow", "gone"), mqtt_ws("slow", "gone")]
    gone_amqp = amqp_tls(aport, pki.ca, "slow", "gone")
    time.sleep(0.3)
    for r in gone:
        r.sock.close()
    gone_amqp.close()
    times = obs.round_trips(0.5)
    check(max(times) < RTT_MAX, "a round trip took %.0f ms after clients left" %
          (1000 * max(times)))
    r = mqtt_ws("slow2", "right")
    eq(expect(r, mqttc.CONNACK, "WebSocket again").reason, 0, "MQTT WebSocket right password again")
    r.sock.close()
    obs.r.close()
    f.close()  # exit code 0: under ASan, no leak either


sec.main(test)
