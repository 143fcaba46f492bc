#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: ferryd fails closed at start-up. A malformed password file or ACL stops it with
# file:line and the reason; a missing one with the file and the system's reason. A listener on a
# non-loopback address with no password file and allow_anonymous left at auto refuses to start,
# saying why (nothing is bound: the check runs before any listener, so no other interface is
# needed). With a password file, or allow_anonymous false, that check passes (tested on the
# message only: such a broker would bind a public address, so it is not started here).
# interop: ferry-only, own-broker
import os

import sec
from sec import check


def has(err, text, what):
    check(text in err, "%s: want %r in ferryd's stderr, got %r" % (what, text, err))


def test(d):
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "alice", "pw")
    good = open(pw).read()

    bad_pw = os.path.join(d, "bad-passwd")
    sec.write(bad_pw, good + "# comment\nbob:$7$101$notbase64!$xx\n")
    err = sec.refused_start("password_file %s\n" % bad_pw, d)
    has(err, "%s:3: bad salt" % bad_pw, "malformed password file")

    plain = os.path.join(d, "plain-passwd")
    sec.write(plain, "carol:secret\n")
    err = sec.refused_start("password_file %s\n" % plain, d)
    has(err, "%s:1: not a hashed password" % plain, "plain-text password file")

    bad_acl = os.path.join(d, "bad-acl")
    sec.write(bad_acl, "user alice\ntopic read a/#\ntopic read a/#/b\n")
    err = sec.refused_start("password_file %s\nacl_file %s\n" % (pw, bad_acl), d)
    has(err, "%s:3: bad topic filter" % bad_acl, "malformed ACL")

    missing = os.path.join(d, "no-such-file")
    err = sec.refused_start("password_file %s\n" % missing, d)
    has(err, "%s: cannot open: No such file or directory" % missing, "missing password file")
    err = sec.refused_start("acl_file %s\n" % missing, d)
    has(err, "%s: cannot open" % missing, "missing ACL")

    err = sec.refused_start("[mqtt]\nlisten 0.0.0.0\n", d)
    has(err, "[mqtt] listen 0.0.0.0 is not a loopback address and no authentication is "
        "configured", "public MQTT listener without authentication")
    has(err, "allow_anonymous true", "the refusal says how to accept anyone")
    err = sec.refused_start("[native]\nlisten 192.0.2.1\n", d)
    has(err, "[native] listen 192.0.2.1 is not a loopback address", "public native listener")
    err = sec.refused_start("allow_anonymous auto\n[amqp]\nlisten 0.0.0.0\n", d)
    has(err, "[amqp] listen 0.0.0.0 is not a loopback address", "public AMQP listener")
    # With authentication configured the refusal is gone: an unreadable password file is then
    # the first thing to fail (so nothing public is bound by this test).
    err = sec.refused_start("password_file %s\n[mqtt]\nlisten 0.0.0.0\n" % missing, d)
    check("not a loopback address" not in err, "refused for the address despite a password "
          "file: %r" % err)
    has(err, "cannot open", "password file checked instead")
    err = sec.refused_start("allow_anonymous maybe\n", d)
    has(err, "allow_anonymous", "bad allow_anonymous value")


sec.main(test)
