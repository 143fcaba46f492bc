#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a client that sends its CONNECT, a QoS 0 PUBLISH and DISCONNECT in one go and
# closes its side of the socket at once (fire and forget: MQTT lets a client send before
# CONNACK) has its message published once its slow password check passes, as when checks ran on
# the loop: the end of the input while the check is pending does not drop what came before it.
# The same for AMQP (the AMQP header and open pipelined behind sasl-init are answered) and the
# native protocol (a SEND behind HELLO is stored).
# interop: ferry-only, own-broker
import json
import os
import socket
import struct
import subprocess
import sys
import time

import sec
from sec import check

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import amqpc, mqttc  # noqa: E402

sys.path.insert(0, os.path.join(sec.INTEROP, "..", "tests", "it"))
import nativeproto as npr  # noqa: E402


def topic_count(f, topic):
    """Messages written to a native topic, by `ferryctl topic describe --json` (as user fast)."""
    env = dict(os.environ, FERRY_PASSWORD="pw-fast")
    r = subprocess.run([sec.FERRYCTL, "--broker", "127.0.0.1:%d" % f.b.native_port, "--user",
                        "fast", "--json", "topic", "describe", topic], capture_output=True,
                       text=True, env=env, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return None
    return sum(q["max_offset"] - q["min_offset"] for q in json.loads(r.stdout)["ranges"])


def test(d):
    # One slow user per login: a password that passed once is answered at once afterwards.
    pw = authlib.password_file(d, 0.5, ["slow", "slow5", "slowa", "slown"])
    f = sec.Ferry(d, "password_file %s\n" % pw)
    mqttc.PORT = f.b.mqtt_port
    topic = "eof%d/x" % os.getpid()
    obs = authlib.Observer("fast", "pw-fast", topic)
    obs.rtt()

    for version in (4, 5):
        body = ("fire-and-forget-%d" % version).encode()
        r = mqttc.Raw(version)
        r.send(mqttc.connect_packet("ff%d" % version, version, True, 60, None, None,
                                    "slow" if version == 4 else "slow5", "right") +
               mqttc.publish_packet(topic, body, version=version) +
               mqttc.packet(0xE, 0, b"" if version == 4 else b"\x00\x00"))
        r.sock.shutdown(socket.SHUT_WR)  # the input ends while the check is pending
        got = None
        while True:
            p = obs.r.read(timeout=20)
            if p is None or (p.type == mqttc.PUBLISH and p.payload == body):
                got = p
                break
        check(got is not None, "MQTT %d: the PUBLISH sent behind CONNECT, before the input "
              "ended, was published" % version)
        r.close()

    # AMQP: sasl-init, the AMQP header and open, then the end of the input.
    s = authlib.amqp_login("slowa", "right", then=amqpc.client_open_bytes("eof"))
    s.shutdown(socket.SHUT_WR)
    code, got = authlib.amqp_answer(s, more=b"AMQP\x00\x01\x00\x00")
    check(code == 0, "AMQP: the sasl-outcome came after the input ended (got %r)" % got[-64:])
    i = got.find(b"AMQP\x00\x01\x00\x00")
    check(i > 0 and got.find(b"\x00\x53\x10", i) > i,
          "AMQP: the header and open sent before the input ended were answered: %r" % got[-64:])
    s.close()

    # native: HELLO as the slow user, a SEND, then the end of the input.
    ntopic = "native-eof%d" % os.getpid()
    hello = struct.pack(">H", 1) + npr.s16(b"eof") + npr.s16(b"it") + npr.s16(b"slown") + \
        npr.s16(b"right")
    send = npr.send_payload([(b"", npr.record(ntopic.encode(), b"native-before-eof"))])
    s = socket.create_connection(("127.0.0.1", f.b.native_port), timeout=10)
    s.sendall(npr.frame(npr.HELLO, 1, hello) + npr.frame(npr.SEND, 2, send))
    s.shutdown(socket.SHUT_WR)
    n = None
    for _ in range(300):
        n = topic_count(f, ntopic)
        if n:
            break
        time.sleep(0.2)
    check(n == 1, "native: the SEND behind HELLO, before the input ended, was stored (%r)" % n)
    s.close()
    obs.r.close()
    f.close()


sec.main(test)
