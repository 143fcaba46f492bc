#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a client whose open asks for an idle-time-out under 100 ms gets the broker's open and
# a close with amqp:invalid-field (AMQP 1.0 2.4.5: a peer may refuse an idle timeout it cannot
# support), and no stream of empty frames; 100 ms is accepted. Found by the amqp_conn fuzz
# target: with idle-time-out 1 ms, proton's next heartbeat was always due at once, so the loop
# ran the connection's tick timer without ever sleeping and wrote an empty frame each time (the
# broker at 100% CPU, and the output of a client that does not read growing without bound).
# interop: ferry-only
import os
import socket
import time

import amqpc
from amqpc import Message, check, eq
from proton import Connection, Transport


def open_bytes(idle_ms):
    """AMQP header and open frame of a client (no SASL) whose open says idle-time-out idle_ms
    (proton advertises half its own idle timeout)."""
    t = Transport()
    t.idle_timeout = 2 * idle_ms / 1000.0
    conn = Connection()
    conn.container = "idle"
    t.bind(conn)
    conn.open()
    return t.peek(t.pending())


def listen(data, seconds):
    """Sends data and returns what the broker sends within `seconds` (the socket is then
    closed by the test)."""
    s = socket.create_connection((amqpc.HOST, int(os.environ["FERRY_AMQP_PORT"])), timeout=5)
    s.sendall(data)
    got = b""
    end = time.monotonic() + seconds
    s.settimeout(0.1)
    try:
        while time.monotonic() < end:
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    return got


def test():
    t = amqpc.PREFIX + "-22"
    got = listen(open_bytes(1), 1.0)
    check(b"\x00\x53\x10" in got, "the broker's open: %r" % got[:64])
    check(b"\x00\x53\x18" in got and b"amqp:invalid-field" in got,
          "a close with amqp:invalid-field for idle-time-out 1 ms: %r" % got[-120:])
    # open (one frame), close (one frame), maybe a few heartbeats before the close: not thousands
    check(len(got) < 1024, "%d bytes in 1 s for a refused connection" % len(got))

    got = listen(open_bytes(100), 0.5)
    check(b"\x00\x53\x10" in got, "the broker's open for idle-time-out 100 ms: %r" % got[:64])
    check(b"\x00\x53\x18" not in got, "no close for idle-time-out 100 ms: %r" % got[-120:])

    c = amqpc.connect()
    rcv = c.create_receiver(t, credit=10)
    c.create_sender(t).send(Message(body="after"))
    eq(rcv.receive(timeout=amqpc.DEADLINE).body, "after", "another client")
    rcv.accept()
    c.close()


amqpc.main(test)
