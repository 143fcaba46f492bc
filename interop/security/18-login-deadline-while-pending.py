#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: the login deadlines ([mqtt] connect_timeout, [amqp] open_timeout, [native]
# hello_timeout, 1 s here) do not run while a client's password check waits for the auth worker.
# Four slow checks (wrong passwords, calibrated at about 1 s each) go first; the clients below
# (cheap hashes) wait behind them in the worker's queue, so their answers come after their
# deadline. Clients that sent their login in time with the right password are accepted: MQTT
# 3.1.1 and 5.0 over TCP, MQTT over WebSocket, AMQP with the AMQP header and open pipelined
# behind sasl-init, AMQP that sends them only after its sasl-outcome, native HELLO; and they stay
# connected. The deadline still holds for what a client owes after its answer: an AMQP client
# that gets its outcome and then sends nothing is closed within what was left of open_timeout.
# Clients that send nothing are closed at the deadline (not before half of it), and the log says
# "no CONNECT in time" / "no HELLO" / "no open" for them only.
# interop: ferry-only, own-broker
import os
import re
import socket
import struct
import sys
import time

import sec
from sec import check, eq

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import amqpc, mqttc  # noqa: E402

sys.path.insert(0, os.path.join(sec.INTEROP, "paho"))
sys.path.insert(0, os.path.join(sec.INTEROP, "..", "tests", "it"))
import nativeproto as npr  # noqa: E402
import wsc  # noqa: E402

D = 1.0  # every login deadline, in seconds
CHECK_S = 1.0  # a slow password check (calibrated here: ferryd's may be slower, not faster)
BLOCKERS = 4  # slow checks ahead of the clients: well past D + 0.3 s
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
AMQP_OPEN = b"\x00\x53\x10"


class Peer:
    """A raw socket whose input is collected into buf (eof once the broker closed it)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False
        self.eof_at = None

    def fill(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return
        except OSError:
            d = b""
        if d:
            self.buf += d
        elif not self.eof:
            self.eof = True
            self.eof_at = time.monotonic()

    def drain(self):
        """Reads what has arrived, without waiting for more."""
        n = -1
        while not self.eof and len(self.buf) != n:
            n = len(self.buf)
            self.fill(0.01)

    def wait(self, pred, timeout, what):
        """Reads until pred(buf) holds; fails after timeout or at eof without it."""
        end = time.monotonic() + timeout
        while not pred(self.buf):
            check(not self.eof, "%s: closed by the broker (got %r)" % (what, self.buf[-80:]))
            check(time.monotonic() < end, "%s: not within %.0fs (got %r)" %
                  (what, timeout, self.buf[-80:]))
            self.fill(end - time.monotonic())

    def wait_closed(self, timeout, what):
        end = time.monotonic() + timeout
        while not self.eof:
            check(time.monotonic() < end, "%s: still open after %.0fs" % (what, timeout))
            self.fill(end - time.monotonic())
        return self.eof_at


def amqp_opened(buf):
    """Whether buf holds the broker's AMQP header and, after it, its open."""
    i = buf.find(AMQP_HEADER)
    return i >= 0 and buf.find(AMQP_OPEN, i) > i


def native_hello(user, password):
    s = socket.create_connection(("127.0.0.1", int(os.environ["FERRY_NATIVE_PORT"])),
                                 timeout=sec.DEADLINE)
    hello = struct.pack(">H", 1) + npr.s16(b"deadline") + npr.s16(b"it") + npr.s16(
        user.encode()) + npr.s16(password.encode())
    s.sendall(npr.frame(npr.HELLO, 1, hello))
    return Peer(s)


def native_status(buf):
    """The status of the first RESPONSE frame in buf, or None."""
    if len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        return None
    n, ftype, _, _ = npr.FRAME_HEADER.unpack_from(buf)
    check(ftype == npr.RESPONSE, "native: want RESPONSE, got frame type 0x%02x" % ftype)
    return npr.parse_response(buf[10:4 + n])[0]


def test(d):
    pw = os.path.join(d, "passwd")
    rounds = authlib.rounds_for(CHECK_S)
    print("PBKDF2 rounds for about %g s a check: %d" % (CHECK_S, rounds))
    sec.write(pw, authlib.passwd_line("blocker", "right", rounds) +
              "".join(authlib.passwd_line(u, "right", 1000)
                      for u in ("m4", "m5", "mws", "a1", "a2", "a3", "n1")))
    ws_port = sec.broker.free_port()
    f = sec.Ferry(d, "password_file %s\n[mqtt]\nconnect_timeout 1s\nws_port %d\n"
                  "[amqp]\nopen_timeout 1s\n[native]\nhello_timeout 1s\n" % (pw, ws_port))
    mqttc.PORT = f.b.mqtt_port
    wsc.WS_PORT = ws_port

    # Slow checks go first: the logins below wait behind them.
    blockers = [authlib.mqtt_login("blocker", "wrong-%d" % i, 4) for i in range(BLOCKERS)]
    t0 = time.monotonic()
    m4 = authlib.mqtt_login("m4", "right", 4)
    m5 = authlib.mqtt_login("m5", "right", 5)
    mws = wsc.Ws(version=4)
    mws.send_binary(mqttc.connect_packet("", 4, True, 60, None, None, "mws", "right"))
    a1 = Peer(authlib.amqp_login("a1", "right", then=amqpc.client_open_bytes("piped")))
    a2 = Peer(authlib.amqp_login("a2", "right"))
    a3 = Peer(authlib.amqp_login("a3", "right"))
    n1 = native_hello("n1", "right")

    def a2_open_after_outcome():
        """a2 sends the AMQP header and open as soon as its outcome came."""
        a2.wait(lambda b: authlib.outcome_code(b) is not None, authlib.ANSWER_DEADLINE,
                "AMQP: sasl-outcome")
        eq(authlib.outcome_code(a2.buf), 0, "AMQP: sasl-outcome code")
        a2.sock.sendall(amqpc.client_open_bytes("after-outcome"))
        a2.wait(amqp_opened, sec.DEADLINE,
                "AMQP open sent after the sasl-outcome: the broker's open")

    def a3_silent_after_outcome():
        """a3 sends nothing after its outcome: (when the outcome came, when a3 was closed)."""
        a3.wait(lambda b: authlib.outcome_code(b) is not None, authlib.ANSWER_DEADLINE,
                "AMQP (silent after its outcome): sasl-outcome")
        t = time.monotonic()
        return t, a3.wait_closed(D + 10, "AMQP silent after its sasl-outcome")
    a2_watch = authlib.Later(a2_open_after_outcome)
    a3_watch = authlib.Later(a3_silent_after_outcome)

    # Clients that send nothing: closed at the deadline, not before half of it.
    t_silent = time.monotonic()
    s_mqtt = authlib.RawOn(socket.create_connection(("127.0.0.1", f.b.mqtt_port),
                                                    timeout=sec.DEADLINE))
    s_ws = wsc.Ws(version=4)
    s_amqp = Peer(amqpc.raw())
    s_native = Peer(socket.create_connection(("127.0.0.1", f.b.native_port),
                                             timeout=sec.DEADLINE))
    for what, s in (("MQTT", s_mqtt), ("MQTT over WebSocket", s_ws), ("AMQP", s_amqp),
                    ("native", s_native)):
        end = time.monotonic() + D + 10
        while not s.eof:
            check(time.monotonic() < end, "%s sending nothing: still open after %.0fs" %
                  (what, D + 10))
            if isinstance(s, Peer):
                s.fill(end - time.monotonic())
            else:
                s.buf.clear()
                s._fill(end - time.monotonic())
            # eof seen this early means the broker closed it earlier still
            check(not s.eof or time.monotonic() - t_silent >= D / 2,
                  "%s sending nothing: closed %.2f s after it connected, the deadline is %.1f s" %
                  (what, time.monotonic() - t_silent, D))
        print("%s sending nothing: closed after %.2f s" % (what, time.monotonic() - t_silent))

    # Past the deadline, the clients whose checks are still pending are still connected.
    time.sleep(max(0.0, t0 + D + 0.3 - time.monotonic()))
    unanswered = [not authlib.answered(m4), not authlib.answered(m5)]
    for what, r in (("MQTT 3.1.1", m4), ("MQTT 5", m5), ("MQTT over WebSocket", mws)):
        n = -1
        while not r.eof and len(r.buf) != n:  # what has arrived, without waiting for more
            n = len(r.buf)
            r._fill(0.01)
        check(not r.eof, "%s: closed while its password check was pending" % what)
    for what, p, answer in (("AMQP (open pipelined)", a1, authlib.outcome_code),
                            ("native", n1, native_status)):
        p.drain()
        check(not p.eof, "%s: closed while its password check was pending (got %r)" %
              (what, p.buf[-80:]))
        unanswered.append(answer(p.buf) is None)
    check(any(unanswered), "every check answered within the deadline: they are not slow enough "
          "to show anything")

    # The answers: accepted.
    for b in blockers:
        eq(authlib.connack(b), 4, "the blockers' wrong passwords")
        b.close()
    eq(authlib.connack(m4), 0, "MQTT 3.1.1 answered after the deadline: CONNACK")
    eq(authlib.connack(m5), 0, "MQTT 5 answered after the deadline: CONNACK")
    p = mws.read(authlib.ANSWER_DEADLINE)
    check(p is not None and p.type == mqttc.CONNACK and p.reason == 0,
          "MQTT over WebSocket answered after the deadline: CONNACK 0, got %r" % (p,))
    a1.wait(lambda b: authlib.outcome_code(b) is not None, authlib.ANSWER_DEADLINE,
            "AMQP (open pipelined): sasl-outcome")
    eq(authlib.outcome_code(a1.buf), 0, "AMQP (open pipelined): sasl-outcome code")
    a1.wait(amqp_opened, sec.DEADLINE, "AMQP (open pipelined): the broker's open")
    a2_watch.result()
    n1.wait(lambda b: native_status(b) is not None, authlib.ANSWER_DEADLINE, "native HELLO")
    eq(native_status(n1.buf), 0, "native HELLO answered after the deadline: status")

    # The deadline goes on after the answer, with what was left of it: a3 got its outcome and
    # sends nothing more.
    t_outcome, at = a3_watch.result()
    eq(authlib.outcome_code(a3.buf), 0, "AMQP (silent after its outcome): sasl-outcome code")
    print("AMQP silent after its sasl-outcome: closed %.2f s after it" % (at - t_outcome))
    check(at - t_outcome <= D + 5, "AMQP silent after its outcome: closed %.2f s after it, "
          "open_timeout is %.1f s" % (at - t_outcome, D))

    # Accepted clients stay: after another deadline's time, they still answer.
    time.sleep(D + 0.3)
    m4.send(mqttc.packet(0xC, 0, b""))
    m4.expect(mqttc.PINGRESP)
    mws.send_binary(mqttc.packet(0xC, 0, b""))
    mws.expect(mqttc.PINGRESP)
    for what, p in (("AMQP (open pipelined)", a1), ("AMQP", a2), ("native", n1)):
        p.drain()
        check(not p.eof, "%s: closed after its login was accepted" % what)

    # The log names what happened: a missing login for the silent clients only.
    log = f.log()
    eq(len(re.findall(r'msg="closed: no CONNECT in time"', log)), 2,
       "'no CONNECT in time' lines (the two silent MQTT clients)")
    eq(len(re.findall(r"no HELLO within hello_timeout", log)), 1,
       "'no HELLO' lines (the silent native client)")
    eq(len(re.findall(r'msg="closed: no open within', log)), 2,
       "'no open' lines (the silent AMQP clients, before and after SASL)")
    eq(len(re.findall(r'msg="closed: no open within 1000 ms \(not counting the \d+ ms its '
                      r'password check took\)', log)), 1,
       "'no open' line of the AMQP client silent after its check: says the check was not counted")
    for r in (m4, m5):
        r.close()
    mws.close_sock()
    for p in (a1, a2, a3, n1, s_amqp, s_native):
        p.sock.close()
    s_mqtt.close()
    s_ws.close_sock()
    f.close()


sec.main(test)
