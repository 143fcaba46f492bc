#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a misbehaving peer affects no other connection. Garbage instead of the protocol
# header, a frame that does not decode, a frame larger than max_frame_size: each closes only its
# own connection (the broker answers an AMQP close or its header and closes the socket), while a
# proton client on another connection keeps sending and receiving. A connection that never
# opens is closed after open_timeout; an open one that goes silent after idle_timeout (both 1 s
# here).
# interop: ferry-only, own-broker
import struct
import time

import amqpc
from amqpc import check

CONF = "[amqp]\nidle_timeout 1s\nopen_timeout 1s\n"


def test():
    b = amqpc.own_broker(CONF)
    try:
        t = amqpc.PREFIX + "-15"

        def still_works(n):
            # a fresh client each time: a blocking client sends no heartbeats while the test
            # waits on its raw sockets, and the broker's idle timeout is 1 s here
            amqpc.still_serves(t, "ok%d" % n, "other connection works")

        out = amqpc.read_for(amqpc.raw(b"GET / HTTP/1.1\r\n\r\n"), 5, "garbage header")
        check(out.startswith(b"AMQP") or out == b"", "answer to garbage: %r" % out[:16])
        still_works(1)

        hdr = b"AMQP\x00\x01\x00\x00"
        bad = struct.pack(">IBBH", 12, 2, 0, 0) + b"\xff\xff\xff\xff"  # not a performative
        out = amqpc.read_for(amqpc.raw(hdr + bad), 5, "undecodable frame before open")
        check(out.startswith(hdr), "the broker's header before it closes: %r" % out[:16])
        opened = amqpc.client_open_bytes()
        out = amqpc.read_for(amqpc.raw(opened + bad), 5, "undecodable frame after open")
        check(b"amqp:" in out, "an AMQP close with a condition: %r" % out[-80:])
        still_works(2)

        big = struct.pack(">IBBH", 10 * 1024 * 1024, 2, 0, 0)
        amqpc.read_for(amqpc.raw(hdr + opened[8:] + big), 5, "frame over max_frame_size")
        still_works(3)

        start = time.monotonic()
        amqpc.read_for(amqpc.raw(), 5, "no open")
        check(time.monotonic() - start >= 0.8, "closed for no open only after open_timeout")

        s = amqpc.raw(opened)
        start = time.monotonic()
        amqpc.read_for(s, 6, "silent open connection")
        check(time.monotonic() - start >= 0.8, "idle connection closed only after idle_timeout")
        still_works(4)
    finally:
        b.close()


amqpc.main(test)
