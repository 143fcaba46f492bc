#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a malformed sasl-init is refused with a sasl-outcome (code auth) and the connection
# is closed, before any AMQP; the broker goes on serving other clients. Cases found by the
# amqp_conn fuzz target: a sasl-init without its mandatory mechanism (an empty field list, or a
# null), which proton hands the SASL plugin as NULL: strcmp on it, and ferryd died of SIGSEGV
# from 20 bytes sent before authentication. Also PLAIN without an initial response (the fuzz
# target found its parser adding the size 0 to a null pointer, which only clang's UBSan reports:
# the seed tests/fuzz/seeds/amqp_conn/sasl-plain-no-response keeps that case).
# interop: ferry-only
import amqpc
from amqpc import SASL_HEADER, check

SASL_OUTCOME = b"\x00\x53\x44"  # descriptor of sasl-outcome


def test():
    t = amqpc.PREFIX + "-20"
    cases = {
        "sasl-init with no fields": b"\x00\x53\x41\x45",  # described list0
        "sasl-init with a null mechanism": b"\x00\x53\x41\xc0\x02\x01\x40",
        "PLAIN without an initial response": b"\x00\x53\x41\xc0\x08\x01\xa3\x05PLAIN",
    }
    for what, init in cases.items():
        s = amqpc.raw(SASL_HEADER + amqpc.sasl_frame(init))
        got = amqpc.read_for(s, amqpc.DEADLINE, what)
        check(got.startswith(SASL_HEADER),
              "%s: the broker's SASL header first: %r" % (what, got[:16]))
        i = got.find(SASL_OUTCOME)
        check(i > 0, "%s: a sasl-outcome before the close: %r" % (what, got))
        # sasl-outcome's first field, the code: 1 (auth), encoded as a ubyte (0x50 0x01)
        check(got[i + 3:].find(b"\x50\x01") >= 0, "%s: outcome code auth: %r" % (what, got[i:]))
        amqpc.still_serves(t, what, "another client after %s" % what)


amqpc.main(test)
