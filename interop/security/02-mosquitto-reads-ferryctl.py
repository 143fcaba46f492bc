#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a password file written by `ferryctl passwd` works in mosquitto 2.0.11 as is:
# mosquitto started with it accepts mosquitto_pub with the right password and refuses a wrong one
# and an anonymous client. (The other direction, ferryd reading mosquitto_passwd's lines, is in
# 01.) Skipped when mosquitto or mosquitto_pub is absent.
# interop: ferry-only, own-broker
import os
import pwd
import shutil
import subprocess
import sys
import time

import sec
from sec import check, eq

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if os.path.exists("/usr/sbin/mosquitto") else None)


def pub(port, *extra):
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "sec/02",
                           "-m", "hi"] + list(extra), capture_output=True, text=True, timeout=20)


def test(d):
    if not MOSQUITTO or not shutil.which("mosquitto_pub"):
        print("SKIP: mosquitto or mosquitto_pub is not installed")
        sys.exit(77)
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "carol", "c0rrect horse")
    sec.passwd(pw, "dave", "battery")
    os.chmod(pw, 0o600)
    port = sec.broker.free_port()
    conf = os.path.join(d, "mosquitto.conf")
    sec.write(conf, "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
              "persistence false\n"
              # as root mosquitto would switch to user "mosquitto", who cannot read our
              # temporary directory: stay who we are
              "user %s\n" % (port, pw, pwd.getpwuid(os.getuid()).pw_name))
    log = open(os.path.join(d, "mosquitto.log"), "w")
    p = subprocess.Popen([MOSQUITTO, "-c", conf], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    try:
        end = time.monotonic() + sec.DEADLINE
        while not sec.broker.port_accepts(port):
            check(p.poll() is None, "mosquitto exited with %s: %s" %
                  (p.returncode, open(os.path.join(d, "mosquitto.log")).read()))
            check(time.monotonic() < end, "mosquitto not listening within the deadline")
            time.sleep(0.05)
        r = pub(port, "-u", "carol", "-P", "c0rrect horse")
        eq(r.returncode, 0, "mosquitto accepts carol's password (stderr: %s)" % r.stderr)
        r = pub(port, "-u", "dave", "-P", "battery")
        eq(r.returncode, 0, "mosquitto accepts dave's password (stderr: %s)" % r.stderr)
        r = pub(port, "-u", "carol", "-P", "battery")
        check(r.returncode != 0, "mosquitto accepted a wrong password")
        r = pub(port)
        check(r.returncode != 0, "mosquitto accepted an anonymous client")
    finally:
        p.terminate()
        try:
            p.wait(timeout=sec.DEADLINE)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()


sec.main(test)
