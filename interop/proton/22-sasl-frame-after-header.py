#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a SASL frame after the AMQP protocol header is a framing error. A client that
# authenticated (SASL ANONYMOUS) and opened, then sends a sasl-init, and a client that skipped
# SASL and sends one after its open, each get an AMQP close with amqp:connection:framing-error
# and the socket closed; other clients go on working. Found by the amqp_conn fuzz target: proton
# hands such a frame to the SASL plugin again (which authenticated the connection a second
# time), and leaks its copy of the mechanism, whose size the client chooses, each time.
# interop: ferry-only
import amqpc
from amqpc import SASL_HEADER, check


def sasl_init(mech):
    """sasl-init with mechanism mech (a symbol) and nothing else."""
    return amqpc.sasl_frame(b"\x00\x53\x41\xc0" + bytes([3 + len(mech), 1, 0xa3, len(mech)]) + mech)


def test():
    t = amqpc.PREFIX + "-21"
    opened = amqpc.client_open_bytes()
    cases = {
        "after SASL ANONYMOUS and open": SASL_HEADER + sasl_init(b"ANONYMOUS") + opened,
        "after an open without SASL": opened,
    }
    for what, start in cases.items():
        got = amqpc.read_for(amqpc.raw(start + sasl_init(b"PLAIN" * 40)), amqpc.DEADLINE, what)
        check(b"\x00\x53\x10" in got, "%s: the broker's open: %r" % (what, got))
        check(b"\x00\x53\x18" in got, "%s: an AMQP close: %r" % (what, got))
        check(b"amqp:connection:framing-error" in got,
              "%s: the close says framing-error: %r" % (what, got[-120:]))
        amqpc.still_serves(t, what, "another client %s" % what)


amqpc.main(test)
