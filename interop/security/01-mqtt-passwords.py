#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: with a password file, MQTT clients need a user and the right password. The file
# is created by `mosquitto_passwd -c -b` (101 PBKDF2 rounds) and `ferryctl passwd` adds a user
# (210,000 rounds), keeping mosquitto's line: both log in. paho 3.1.1: wrong password -> CONNACK 4, no user -> 5; paho 5.0:
# 0x86 and 0x87; mosquitto_pub -u -P: right password publishes, a wrong one is refused with
# "bad user name or password". The right password also works a second time (cached check).
# interop: ferry-only, own-broker
import os
import shutil
import subprocess
import sys

import sec
from sec import check, eq

sys.path.insert(0, os.path.join(sec.INTEROP, "paho"))
import mqttc  # noqa: E402


def connect(proto, user=None, password=None, expect=0):
    c = mqttc.Client("", protocol=proto)
    if user is not None:
        c.c.username_pw_set(user, password)
    c.connect(expect_rc=expect)
    c.disconnect()


def test(d):
    pw = os.path.join(d, "passwd")
    has_mp = shutil.which("mosquitto_passwd") is not None
    if has_mp:
        # The file is created by mosquitto_passwd; ferryctl then adds a user, keeping bob's line.
        r = subprocess.run(["mosquitto_passwd", "-c", "-b", pw, "bob", "hunter2"],
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 0, "mosquitto_passwd -c -b (stderr: %s)" % r.stderr)
    sec.passwd(pw, "alice", "wonder land")
    if has_mp:
        check(open(pw).read().startswith("bob:$7$101$"), "ferryctl kept mosquitto's line")
    f = sec.Ferry(d, "password_file %s\n" % pw)
    mqttc.PORT = f.b.mqtt_port
    port = str(f.b.mqtt_port)

    connect(mqttc.V311, "alice", "wonder land", 0)
    connect(mqttc.V311, "alice", "wonder land", 0)  # second time: the cached check
    connect(mqttc.V311, "alice", "wrong", 4)
    connect(mqttc.V311, "nobody", "x", 4)
    connect(mqttc.V311, None, None, 5)
    connect(mqttc.V5, "alice", "wonder land", 0)
    connect(mqttc.V5, "alice", "wrong", 0x86)
    connect(mqttc.V5, None, None, 0x87)
    if has_mp:
        connect(mqttc.V311, "bob", "hunter2", 0)
        connect(mqttc.V5, "bob", "hunter3", 0x86)

    if shutil.which("mosquitto_pub"):
        base = ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-t", "sec/01", "-m", "hi"]
        r = subprocess.run(base + ["-u", "alice", "-P", "wonder land"], capture_output=True,
                           text=True, timeout=20)
        eq(r.returncode, 0, "mosquitto_pub with the right password (stderr: %s)" % r.stderr)
        r = subprocess.run(base + ["-u", "alice", "-P", "nope"], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode != 0, "mosquitto_pub with a wrong password was not refused")
        check("bad user name or password" in r.stderr.lower(),
              "mosquitto_pub's reason: %r" % r.stderr)
        r = subprocess.run(base + ["-V", "5"], capture_output=True, text=True, timeout=20)
        check(r.returncode != 0, "anonymous mosquitto_pub was not refused")
    mqttc.Client.stop_all()
    f.close()


sec.main(test)
