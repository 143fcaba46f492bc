#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a misbehaving peer affects no other connection. Garbage instead of the protocol
# header, a frame that does not decode, a frame larger than max_frame_size: each closes only its
# own connection (the broker answers an AMQP close or its header and closes the socket), while a
# proton client on another connection keeps sending and receiving. A connection that never
# opens is closed after open_timeout; an open one that goes silent after idle_timeout (both 1 s
# here).
# interop: ferry-only, own-broker
import os
import socket
import struct
import time

import amqpc
from amqpc import Message, check, eq
from proton import Connection, Transport

CONF = "[amqp]\nidle_timeout 1s\nopen_timeout 1s\n"


def raw(data=b""):
    s = socket.create_connection((amqpc.HOST, int(os.environ["FERRY_AMQP_PORT"])), timeout=5)
    if data:
        s.sendall(data)
    return s


def closed_within(s, seconds, what):
    """Reads until the broker closes the socket; returns what it sent."""
    got = b""
    end = time.monotonic() + seconds
    s.settimeout(0.2)
    while time.monotonic() < end:
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got
        if not b:
            return got
        got += b
    raise amqpc.TestFailure("%s: connection still open after %.1fs" % (what, seconds))


def client_open_bytes():
    """AMQP header and open frame of a client without SASL, from proton's own engine."""
    t = Transport()
    conn = Connection()
    conn.container = "raw"
    t.bind(conn)
    conn.open()
    out = t.peek(t.pending())
    return out


def test():
    b = amqpc.own_broker(CONF)
    try:
        t = amqpc.PREFIX + "-15"

        def still_works(n):
            # a fresh client each time: a blocking client sends no heartbeats while the test
            # waits on its raw sockets, and the broker's idle timeout is 1 s here
            c = amqpc.connect()
            rcv = c.create_receiver(t, credit=10)
            c.create_sender(t).send(Message(body="ok%d" % n))
            eq(rcv.receive(timeout=amqpc.DEADLINE).body, "ok%d" % n, "other connection works")
            rcv.accept()
            c.close()

        out = closed_within(raw(b"GET / HTTP/1.1\r\n\r\n"), 5, "garbage header")
        check(out.startswith(b"AMQP") or out == b"", "answer to garbage: %r" % out[:16])
        still_works(1)

        hdr = b"AMQP\x00\x01\x00\x00"
        bad = struct.pack(">IBBH", 12, 2, 0, 0) + b"\xff\xff\xff\xff"  # not a performative
        out = closed_within(raw(hdr + bad), 5, "undecodable frame before open")
        check(out.startswith(hdr), "the broker's header before it closes: %r" % out[:16])
        out = closed_within(raw(client_open_bytes() + bad), 5, "undecodable frame after open")
        check(b"amqp:" in out, "an AMQP close with a condition: %r" % out[-80:])
        still_works(2)

        big = struct.pack(">IBBH", 10 * 1024 * 1024, 2, 0, 0)
        closed_within(raw(hdr + client_open_bytes()[8:] + big), 5, "frame over max_frame_size")
        still_works(3)

        start = time.monotonic()
        closed_within(raw(), 5, "no open")
        check(time.monotonic() - start >= 0.8, "closed for no open only after open_timeout")

        s = raw(client_open_bytes())
        start = time.monotonic()
        closed_within(s, 6, "silent open connection")
        check(time.monotonic() - start >= 0.8, "idle connection closed only after idle_timeout")
        still_works(4)
    finally:
        b.close()


amqpc.main(test)
