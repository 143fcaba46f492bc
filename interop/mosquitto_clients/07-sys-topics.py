#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: the $SYS topics, read with mosquitto_sub. With [mqtt] sys_interval 1s:
#   - a new subscriber to $SYS/broker/version gets "ferry version X" at once, RETAIN set;
#   - $SYS/broker/# brings the mosquitto-style values; uptime moves every interval; after known
#     traffic, messages/received equals the adapter's count in /health, retained messages/count
#     is 1, clients/connected follows a second client, store/messages/count is what the admin
#     API counts in the store;
#   - a subscriber to # gets no $SYS message (MQTT 4.7.2) but does get live messages;
#   - $SYS messages are not stored: no topic of the store holds one;
#   - the ACL's read rules apply: a user allowed to read only $SYS/broker/version gets only it;
#   - with sys_interval 0 a $SYS subscriber gets nothing.
# interop: ferry-only, own-broker
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.environ.get("FERRY_INTEROP_DIR", os.path.join(os.path.dirname(__file__), "..")))
import broker  # noqa: E402

DEADLINE = 10


def fail(what):
    print("FAIL: " + what, file=sys.stderr)
    sys.exit(1)


def eq(got, want, what):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def api(b, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (b.admin_port, path),
                                timeout=DEADLINE) as r:
        return json.loads(r.read())


def mqtt(b):
    return ["-h", "127.0.0.1", "-p", str(b.mqtt_port)]


def pub(b, *args):
    subprocess.run(["mosquitto_pub"] + mqtt(b) + list(args), check=True, timeout=DEADLINE)


class Sub:
    """mosquitto_sub in the background, lines `retain|topic|payload` collected in a file."""

    def __init__(self, b, d, name, *args):
        self.path = os.path.join(d, name + ".out")
        self.f = open(self.path, "w")
        self.p = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub"] + mqtt(b) +
                                  ["-i", name, "-F", "%r|%t|%p"] + list(args),
                                  stdout=self.f, stderr=subprocess.STDOUT)

    def lines(self):
        with open(self.path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]

    def values(self, topic):
        return [l.split("|", 2)[2] for l in self.lines() if l.split("|", 2)[1] == topic]

    def wait(self, pred, what, timeout=DEADLINE):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = pred(self)
            if r:
                return r
            time.sleep(0.05)
        fail("%s: timed out after %ds; got:\n%s" % (what, timeout, "\n".join(self.lines())))

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.f.close()


def with_broker(d, conf_text, fn):
    conf = os.path.join(d, "ferry-%d.conf" % len(os.listdir(d)))
    with open(conf, "w") as f:
        f.write(conf_text)
    b = broker.from_env(extra=["-c", conf])
    subs = []
    try:
        b.start()
        fn(b, subs)
    finally:
        for s in subs:
            s.close()
        code = b.stop()
        b.close()
    eq(code, 0, "ferryd exit code")


def test_on(b, subs):
    d = tempfile.mkdtemp(prefix="ferry-sys-", dir=os.environ.get("TMPDIR"))
    version = subprocess.run([os.environ["FERRY_BROKER_BIN"], "--version"], capture_output=True,
                             text=True, timeout=DEADLINE).stdout.split()[-1]

    # Known traffic first: one retained message, four more.
    pub(b, "-t", "sys7/ret", "-m", "kept", "-r", "-q", "1")
    for i in range(4):
        pub(b, "-t", "sys7/t", "-m", "m%d" % i, "-q", "1")

    v = Sub(b, d, "s-version", "-t", "$SYS/broker/version")
    subs.append(v)
    # At once (well within one interval), with RETAIN set.
    v.wait(lambda s: s.lines(), "$SYS/broker/version", timeout=0.9)
    eq(v.lines()[0], "1|$SYS/broker/version|ferry version %s" % version, "first $SYS/broker/version")

    every = Sub(b, d, "s-all", "-t", "$SYS/broker/#")
    subs.append(every)
    hashsub = Sub(b, d, "s-hash", "-t", "#")
    subs.append(hashsub)
    # uptime moves: two different values, "N seconds"
    every.wait(lambda s: len(set(s.values("$SYS/broker/uptime"))) >= 2, "uptime updates")
    for u in every.values("$SYS/broker/uptime"):
        if not (u.endswith(" seconds") and u.split()[0].isdigit()):
            fail("uptime %r is not 'N seconds'" % u)
    for t in ("clients/total", "clients/maximum", "clients/disconnected", "messages/sent",
              "publish/messages/received", "publish/messages/sent", "subscriptions/count",
              "load/messages/received/1min", "load/messages/sent/15min"):
        if not every.values("$SYS/broker/" + t):
            fail("no $SYS/broker/%s; got:\n%s" % (t, "\n".join(every.lines())))

    health = api(b, "/health")["adapters"]["mqtt"]
    every.wait(lambda s: s.values("$SYS/broker/messages/received")[-1:] == [
        str(health["messages_in"])], "messages/received = /health's mqtt messages_in %d" %
        health["messages_in"], timeout=3)
    eq(health["messages_in"], 5, "/health: MQTT messages in")
    eq(every.values("$SYS/broker/retained messages/count")[-1], "1", "retained messages/count")
    # connected: s-version, s-all, s-hash; then one more
    every.wait(lambda s: s.values("$SYS/broker/clients/connected")[-1:] == ["3"],
               "clients/connected 3")
    extra = Sub(b, d, "s-extra", "-t", "nothing/here")
    subs.append(extra)
    every.wait(lambda s: s.values("$SYS/broker/clients/connected")[-1:] == ["4"],
               "clients/connected 4 after one more client")
    stored = sum(t["messages"] for t in api(b, "/api/v1/topics?internal=true")["topics"])
    every.wait(lambda s: s.values("$SYS/broker/store/messages/count")[-1:] == [str(stored)],
               "store/messages/count = %d as the admin API counts" % stored, timeout=3)

    # '#' gets live messages and no $SYS one; nothing $SYS went into the store.
    pub(b, "-t", "sys7/live", "-m", "hello", "-q", "1")
    hashsub.wait(lambda s: "0|sys7/live|hello" in s.lines(), "live message on #")
    bad = [l for l in hashsub.lines() if "$SYS" in l]
    if bad:
        fail("# got $SYS messages: %r" % bad[:3])
    eq(stored, 5, "messages in the store before the live one (the 5 published)")
    time.sleep(1.2)  # one more round of $SYS messages
    stored_now = sum(t["messages"] for t in api(b, "/api/v1/topics?internal=true")["topics"])
    eq(stored_now, 6, "messages in the store after the live one: $SYS messages are not stored")
    shutil.rmtree(d, ignore_errors=True)


def test_acl(b, subs):
    d = tempfile.mkdtemp(prefix="ferry-sys-acl-", dir=os.environ.get("TMPDIR"))
    full = Sub(b, d, "s-full", "-u", "alice", "-P", "pw-a", "-t", "$SYS/broker/#")
    subs.append(full)
    one = Sub(b, d, "s-one", "-u", "bob", "-P", "pw-b", "-t", "$SYS/broker/#")
    subs.append(one)
    # two rounds for both (uptime moves every round)
    full.wait(lambda s: len(set(s.values("$SYS/broker/uptime"))) >= 2, "alice: uptime updates")
    time.sleep(1.2)
    eq(sorted(set(l.split("|")[1] for l in one.lines())), ["$SYS/broker/version"],
       "topics bob (read $SYS/broker/version only) got")
    shutil.rmtree(d, ignore_errors=True)


def test_off(b, subs):
    d = tempfile.mkdtemp(prefix="ferry-sys-off-", dir=os.environ.get("TMPDIR"))
    s = Sub(b, d, "s-off", "-t", "$SYS/#", "-d")
    subs.append(s)
    s.wait(lambda x: any("SUBACK" in l for l in x.lines()), "SUBACK")
    time.sleep(1.5)
    got = [l for l in s.lines() if "$SYS" in l and not l.startswith("Client ")]
    eq(got, [], "$SYS messages with sys_interval 0")
    shutil.rmtree(d, ignore_errors=True)


def main():
    if shutil.which("mosquitto_sub") is None or shutil.which("mosquitto_pub") is None:
        print("SKIP: mosquitto-clients is not installed")
        return 77
    d = tempfile.mkdtemp(prefix="ferry-sys-conf-")
    try:
        with_broker(d, "[mqtt]\nsys_interval 1s\n", test_on)
        pw = os.path.join(d, "passwd")
        for user, password in (("alice", "pw-a"), ("bob", "pw-b")):
            subprocess.run([os.environ["FERRYCTL"], "passwd", pw, user], input=password + "\n",
                           text=True, check=True, timeout=DEADLINE)
        acl = os.path.join(d, "acl")
        with open(acl, "w") as f:
            f.write("user alice\ntopic read $SYS/#\nuser bob\ntopic read $SYS/broker/version\n")
        with_broker(d, "password_file %s\nacl_file %s\n[mqtt]\nsys_interval 1s\n" % (pw, acl),
                    test_acl)
        with_broker(d, "[mqtt]\nsys_interval 0\n", test_off)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("ok")
    return 0


sys.exit(main())
