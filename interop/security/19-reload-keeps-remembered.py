#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a SIGHUP reload keeps the passwords the broker remembers (the fast check that spares
# a reconnecting client PBKDF2) for users whose password file line did not change, and forgets
# them for users whose line did. Counted, not timed: /metrics' ferry_auth_checks_total counts the
# full checks. After a reload that changed only the ACL file, a remembered MQTT login and the
# admin user's /metrics login need no full check, and the new rules apply. After a reload that
# changed one user's password, that user's old password is refused and the new one is checked in
# full; the other user, whose line is as it was, stays remembered.
# interop: ferry-only, own-broker
import os

import sec
from sec import eq

import authlib  # noqa: E402 (after sec, which sets the path)
from authlib import mqttc  # noqa: E402

ROUNDS = 20000  # a few ms a check: the test counts checks, it does not time them


def reload(f):
    off = f.hup()
    f.wait_log(r'msg="password and ACL files reloaded"', off, "the reload")


def login(user, password):
    """CONNACK return code of an MQTT 3.1.1 login."""
    r = authlib.mqtt_login(user, password, 4)
    rc = authlib.connack(r, sec.DEADLINE)
    r.close()
    return rc


def subscribe_reason(user, password, flt):
    r = authlib.mqtt_login(user, password, 4)
    eq(authlib.connack(r, sec.DEADLINE), 0, "CONNACK of %s" % user)
    got = r.subscribe(1, [(flt, 0)])
    r.close()
    return got[0]


def test(d):
    pw = os.path.join(d, "passwd")
    acl = os.path.join(d, "acl")
    admin_line = authlib.passwd_line("fast", "pw-fast", ROUNDS)
    dev_line = authlib.passwd_line("dev", "one", ROUNDS)
    sec.write(pw, admin_line + dev_line)
    sec.write(acl, "user fast\nadmin\nuser dev\ntopic read a/#\n")
    f = sec.Ferry(d, "password_file %s\nacl_file %s\n" % (pw, acl))
    mqttc.PORT = f.b.mqtt_port

    def checks():
        """ferry_auth_checks_total, read as user fast (whose own login may count)."""
        return authlib.metric(f, "fast", "pw-fast", "ferry_auth_checks_total")

    checks()  # fast's first login: remembered from now on
    c0 = checks()
    eq(login("dev", "one"), 0, "dev's first login")
    eq(checks() - c0, 1, "full checks for dev's first login")
    c0 = checks()
    eq(login("dev", "one"), 0, "dev's second login")
    eq(checks() - c0, 0, "full checks for dev's second login (remembered)")

    # Only the ACL changes: nothing is forgotten.
    sec.write(acl, "user fast\nadmin\nuser dev\ntopic read a/#\ntopic read b/#\n")
    reload(f)
    c0 = checks()
    eq(login("dev", "one"), 0, "dev's login after the ACL reload")
    eq(subscribe_reason("dev", "one", "b/1"), 0, "the new rule applies")
    eq(checks() - c0, 0, "full checks after a reload that changed only the ACL (dev's logins and "
       "fast's /metrics login are remembered)")

    # dev's password changes: the old one is refused, the new one checked; fast stays remembered.
    sec.write(pw, admin_line + authlib.passwd_line("dev", "two", ROUNDS))
    reload(f)
    c0 = checks()
    eq(login("dev", "one"), 4, "dev's old password after the reload: CONNACK")
    eq(login("dev", "two"), 0, "dev's new password after the reload: CONNACK")
    eq(login("dev", "two"), 0, "dev's new password again: CONNACK")
    eq(checks() - c0, 2, "full checks: the old password and the first login with the new one")
    f.close()


sec.main(test)
