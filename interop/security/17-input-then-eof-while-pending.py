#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a client that sends its CONNECT, a QoS 0 PUBLISH and DISCONNECT in one go and
# closes its side of the socket at once (fire and forget: MQTT lets a client send before
# CONNACK) has its message published once its slow password check passes, as when checks ran on
# the loop: the end of the input while the check is pending does not drop what came before it.
# interop: ferry-only, own-broker
import os
import socket

import sec
from sec import check

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import mqttc  # noqa: E402


def test(d):
    rounds = authlib.rounds_for(0.5)
    pw = os.path.join(d, "passwd")
    sec.write(pw, authlib.passwd_line("slow", "right", rounds) +
              authlib.passwd_line("fast", "pw-fast", 1000))
    f = sec.Ferry(d, "password_file %s\n%s" % (pw, authlib.LONG_LOGIN))
    mqttc.PORT = f.b.mqtt_port
    topic = "eof%d/x" % os.getpid()
    obs = authlib.Observer("fast", "pw-fast", topic)
    obs.rtt()

    for version in (4, 5):
        body = ("fire-and-forget-%d" % version).encode()
        r = mqttc.Raw(version)
        r.send(mqttc.connect_packet("ff%d" % version, version, True, 60, None, None, "slow",
                                    "right") +
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
    obs.r.close()
    f.close()


sec.main(test)
