#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: the native protocol with a password file and an ACL, through ferryctl (libferry).
# Without credentials, or with a wrong password (--user and $FERRY_PASSWORD), ferryctl cannot
# connect: HELLO is refused with the reason and the connection closed. A user with `admin`
# creates topics; alice, without it, cannot (EPERM), may send to `orders` but not to `audit`,
# may consume `orders` in group `billing` but not in another group, and cannot read `audit`.
# interop: ferry-only, own-broker
import os
import subprocess

import sec
from sec import check, eq

ACL = """
user root
admin
ntopic readwrite *
group *

user alice
ntopic readwrite orders
group billing
"""


def ctl(f, *args, user=None, password=None):
    env = dict(os.environ)
    env.pop("FERRY_USER", None)
    env.pop("FERRY_PASSWORD", None)
    if password is not None:
        env["FERRY_PASSWORD"] = password
    cmd = [sec.FERRYCTL, "--broker", "127.0.0.1:%d" % f.b.native_port, "--timeout", "5000"]
    if user:
        cmd += ["--user", user]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30, env=env,
                          stdin=subprocess.DEVNULL)


def ok(r, what):
    eq(r.returncode, 0, "%s (stderr: %s)" % (what, r.stderr.strip()))


def refused(r, what, text):
    check(r.returncode != 0, "%s succeeded" % what)
    check(text in r.stderr, "%s: want %r in stderr, got %r" % (what, text, r.stderr))


def test(d):
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "root", "pw-root")
    sec.passwd(pw, "alice", "pw-alice")
    sec.write(os.path.join(d, "acl"), ACL)
    f = sec.Ferry(d, "password_file %s\nacl_file %s\n" % (pw, os.path.join(d, "acl")))

    refused(ctl(f, "topic", "list"), "anonymous ferryctl", "anonymous clients are not allowed")
    refused(ctl(f, "topic", "list", user="alice", password="bad"), "wrong password",
            "bad user name or password")
    ok(ctl(f, "topic", "create", "orders", user="root", password="pw-root"), "root creates orders")
    ok(ctl(f, "topic", "create", "audit", user="root", password="pw-root"), "root creates audit")
    refused(ctl(f, "topic", "create", "mine", user="alice", password="pw-alice"),
            "alice creates a topic", "not authorized")
    ok(ctl(f, "send", "orders", "o-1", user="alice", password="pw-alice"), "alice sends to orders")
    refused(ctl(f, "send", "audit", "a-1", user="alice", password="pw-alice"),
            "alice sends to audit", "not authorized")
    r = ctl(f, "consume", "orders", "--group", "billing", "--from", "first", "--count", "1",
            "--timeout", "5000", user="alice", password="pw-alice")
    ok(r, "alice consumes orders in billing")
    eq(r.stdout.strip(), "o-1", "alice's message")
    refused(ctl(f, "consume", "orders", "--group", "other", "--count", "1", "--timeout", "1000",
                user="alice", password="pw-alice"), "alice in group other", "not authorized")
    refused(ctl(f, "consume", "audit", "--group", "billing", "--count", "1", "--timeout", "1000",
                user="alice", password="pw-alice"), "alice reads audit", "not authorized")
    r = ctl(f, "consume", "audit", "--group", "g", "--from", "first", "--count", "1",
            "--timeout", "1000", user="root", password="pw-root")
    ok(r, "root reads audit (nothing was stored by alice)")
    check("a-1" not in r.stdout, "alice's refused message was stored")
    f.close()


sec.main(test)
