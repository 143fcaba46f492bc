#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a client whose open asks for an idle-time-out under 100 ms gets the broker's open and
# a close with amqp:invalid-field (AMQP 1.0 2.4.5: a peer may refuse an idle timeout it cannot
# support), and no stream of empty frames; 100 ms is accepted. Found by the amqp_conn fuzz
# target: with idle-time-out 1 ms, proton's next heartbeat was always due at once, so the loop
# ran the connection's tick timer without ever sleeping and wrote an empty frame each time (the
# broker at 100% CPU, and the output of a client that does not read growing without bound).
# interop: ferry-only
import amqpc
from amqpc import check


def listen(idle_ms, seconds):
    """What the broker answers within `seconds` to a client (no SASL) whose open asks for
    idle-time-out idle_ms."""
    return amqpc.read_for(amqpc.raw(amqpc.client_open_bytes("idle", idle_ms)), seconds,
                          "idle-time-out %d ms" % idle_ms, until_closed=False)


def test():
    t = amqpc.PREFIX + "-22"
    got = listen(1, 1.0)
    check(b"\x00\x53\x10" in got, "the broker's open: %r" % got[:64])
    check(b"\x00\x53\x18" in got and b"amqp:invalid-field" in got,
          "a close with amqp:invalid-field for idle-time-out 1 ms: %r" % got[-120:])
    # open (one frame), close (one frame), maybe a few heartbeats before the close: not thousands
    check(len(got) < 1024, "%d bytes in 1 s for a refused connection" % len(got))

    got = listen(100, 0.5)
    check(b"\x00\x53\x10" in got, "the broker's open for idle-time-out 100 ms: %r" % got[:64])
    check(b"\x00\x53\x18" not in got, "no close for idle-time-out 100 ms: %r" % got[-120:])

    amqpc.still_serves(t, "after", "another client")


amqpc.main(test)
