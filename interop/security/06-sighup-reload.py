#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: SIGHUP reloads the password and ACL files. A good new password file takes effect
# (the new password works, the old one is refused) and so does a good ACL; a malformed password
# file or ACL is logged with file:line and the files in use stay in force (the last good
# password still works, the ACL still allows what it allowed). A missing file is refused too.
# interop: ferry-only, own-broker
import os
import sys

import sec
from sec import check, eq

sys.path.insert(0, os.path.join(sec.INTEROP, "paho"))
import mqttc  # noqa: E402
from mqttc import CONNACK  # noqa: E402


def login(user, password, expect):
    c = mqttc.Client("", protocol=mqttc.V5)
    c.c.username_pw_set(user, password)
    c.connect(expect_rc=expect)
    c.disconnect()


def sub_reason(user, password, flt):
    r = mqttc.Raw(5)
    r.send(mqttc.connect_packet("s-" + user, 5, username=user, password=password))
    p = r.read()
    check(p is not None and p.type == CONNACK and p.reason == 0, "CONNACK: %r" % (p,))
    got = r.subscribe(1, [(flt, 0)])
    r.close()
    return got[0]


def reload(f, ok):
    off = f.hup()
    if ok:
        f.wait_log(r'msg="password and ACL files reloaded"', off, "the reload")
        return None
    return f.wait_log(r'msg="reload failed, keeping the files in use: ([^"]*)"', off,
                      "the failed reload").group(1)


def test(d):
    pw = os.path.join(d, "passwd")
    acl = os.path.join(d, "acl")
    sec.passwd(pw, "alice", "one")
    sec.write(acl, "user alice\ntopic read a/#\n")
    f = sec.Ferry(d, "password_file %s\nacl_file %s\n" % (pw, acl))
    mqttc.PORT = f.b.mqtt_port

    login("alice", "one", 0)
    eq(sub_reason("alice", "one", "a/1"), 0, "a/1 allowed")
    eq(sub_reason("alice", "one", "b/1"), 0x87, "b/1 denied")

    # Good files: the new password and rules apply.
    sec.passwd(pw, "alice", "two")
    sec.write(acl, "user alice\ntopic read b/#\n")
    reload(f, True)
    login("alice", "two", 0)
    login("alice", "one", 0x86)
    eq(sub_reason("alice", "two", "b/1"), 0, "b/1 allowed after the reload")
    eq(sub_reason("alice", "two", "a/1"), 0x87, "a/1 denied after the reload")

    # A malformed password file: refused with file:line, the old one stays.
    good = open(pw).read()
    sec.write(pw, good + "mallory:plaintext\n")
    why = reload(f, False)
    check(why.startswith("%s:2:" % pw), "reason names file:line: %r" % why)
    login("alice", "two", 0)
    login("mallory", "plaintext", 0x86)

    # A malformed ACL: refused with file:line, the old rules stay.
    sec.write(pw, good)
    sec.write(acl, "user alice\ntopic read a/#\ntopic sometimes c/#\nfrobnicate\n")
    why = reload(f, False)
    check(why.startswith("%s:4:" % acl), "reason names file:line: %r" % why)
    eq(sub_reason("alice", "two", "b/1"), 0, "b/1 still allowed (old ACL kept)")
    eq(sub_reason("alice", "two", "a/1"), 0x87, "a/1 still denied (old ACL kept)")

    # A missing file.
    os.rename(acl, acl + ".gone")
    why = reload(f, False)
    check(acl in why and "cannot open" in why, "reason for a missing file: %r" % why)
    eq(sub_reason("alice", "two", "b/1"), 0, "b/1 still allowed")
    mqttc.Client.stop_all()
    f.close()


sec.main(test)
