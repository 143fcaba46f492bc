#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a SASL frame after the AMQP protocol header is a framing error. A client that
# authenticated (SASL ANONYMOUS) and opened, then sends a sasl-init, and a client that skipped
# SASL and sends one after its open, each get an AMQP close with amqp:connection:framing-error
# and the socket closed; other clients go on working. Found by the amqp_conn fuzz target: proton
# hands such a frame to the SASL plugin again (which authenticated the connection a second
# time), and leaks its copy of the mechanism, whose size the client chooses, each time.
# interop: ferry-only
import os
import socket
import struct
import time

import amqpc
from amqpc import Message, check, eq
from proton import Connection, Transport

SASL_HEADER = b"AMQP\x03\x01\x00\x00"


def sasl_frame(body):
    """A SASL frame (type 1) on channel 0 around an encoded performative."""
    return struct.pack(">IBBH", 8 + len(body), 2, 1, 0) + body


def sasl_init(mech):
    """sasl-init with mechanism mech (a symbol) and nothing else."""
    return sasl_frame(b"\x00\x53\x41\xc0" + bytes([3 + len(mech), 1, 0xa3, len(mech)]) + mech)


def client_open_bytes():
    """AMQP header and open frame of a client, from proton's own engine."""
    t = Transport()
    conn = Connection()
    conn.container = "raw"
    t.bind(conn)
    conn.open()
    return t.peek(t.pending())


def answer(data):
    """What the broker sends to data, read until it closes the socket (bounded)."""
    s = socket.create_connection((amqpc.HOST, int(os.environ["FERRY_AMQP_PORT"])), timeout=5)
    s.sendall(data)
    got = b""
    end = time.monotonic() + amqpc.DEADLINE
    s.settimeout(0.2)
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
        else:
            raise amqpc.TestFailure("connection still open after %.1fs" % amqpc.DEADLINE)
    finally:
        s.close()
    return got


def test():
    t = amqpc.PREFIX + "-21"
    opened = client_open_bytes()
    cases = {
        "after SASL ANONYMOUS and open": SASL_HEADER + sasl_init(b"ANONYMOUS") + opened,
        "after an open without SASL": opened,
    }
    for what, start in cases.items():
        got = answer(start + sasl_init(b"PLAIN" * 40))
        check(b"\x00\x53\x10" in got, "%s: the broker's open: %r" % (what, got))
        check(b"\x00\x53\x18" in got, "%s: an AMQP close: %r" % (what, got))
        check(b"amqp:connection:framing-error" in got,
              "%s: the close says framing-error: %r" % (what, got[-120:]))

        c = amqpc.connect()
        rcv = c.create_receiver(t, credit=10)
        c.create_sender(t).send(Message(body=what))
        eq(rcv.receive(timeout=amqpc.DEADLINE).body, what, "another client %s" % what)
        rcv.accept()
        c.close()


amqpc.main(test)
