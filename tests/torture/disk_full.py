#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Disk full (issue 10 item 3), through real clients: ferryd's data directory is a small tmpfs that
# a ballast file and MQTT publishes fill up. While it is full, every producer gets a clear refusal
# (MQTT 5 PUBACK 0x97 Quota exceeded, seen by mosquitto_pub -V mqttv5; MQTT 3.1.1 disconnected;
# AMQP rejected with amqp:resource-limit-exceeded, seen by proton; ferryctl send fails naming the
# reason), /health and /metrics say so, and consumers keep reading. The ballast is removed and
# ferryd, never restarted, accepts writes again within seconds. Every acknowledged message is then
# read back, before and after a restart. Last, a damaged log file stops the next start with a
# message naming the file, and nothing is reset.
#
# The tmpfs needs mount(2) (root, or CAP_SYS_ADMIN). Where mount is not allowed (--mode auto), or
# with --mode shim, the disk is full instead while a flag file exists: the LD_PRELOAD shim
# (tests/torture/enospc_shim.c) then fails ferryd's writes, syncs included, under the data
# directory with ENOSPC. Either way the test fills a disk; it never skips.
#
# Usage: disk_full.py FERRYD FERRYCTL --shim LIBENOSPC_SHIM.so [--mode auto|tmpfs|shim]
#                     [--flush async|sync]
import argparse
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "interop"))
sys.path.insert(0, os.path.join(SRC, "interop", "proton"))
import broker  # noqa: E402
import amqpc  # noqa: E402  (exits 77 when proton is absent)
from proton import Message  # noqa: E402
from proton import Delivery  # noqa: E402

TOPIC = "df"
TMPFS_MB = 40
LEFT_MB = 8  # what the ballast leaves free for messages
DEADLINE = 20.0


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def log(fmt, *args):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
    sys.stderr.flush()


def wait_until(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise Fail("timed out after %.0fs waiting for %s" % (timeout, what))


# ---- a minimal MQTT client that shows the PUBACK reason code (paho 1.6 hides it) ----------------


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


class RawMqtt:
    def __init__(self, port, client_id, v5=True):
        self.v5 = v5
        self.s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        level = 5 if v5 else 4
        vh = mstr("MQTT") + bytes([level, 0x02]) + struct.pack(">H", 60)
        if v5:
            vh += b"\x00"
        body = vh + mstr(client_id)
        self.s.sendall(b"\x10" + varint(len(body)) + body)
        t, p = self.read_packet()
        check(t == 0x20 and p[1] == 0, "CONNACK %r %r" % (t, p))
        self.pid = 0

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.s.recv(n - len(out))
            if not chunk:
                raise EOFError("connection closed")
            out += chunk
        return out

    def read_packet(self):
        t = self.read_exact(1)[0]
        n, mul = 0, 1
        while True:
            b = self.read_exact(1)[0]
            n += (b & 0x7F) * mul
            mul *= 128
            if not b & 0x80:
                break
        return t & 0xF0, self.read_exact(n)

    def publish(self, topic, payload):
        """QoS 1 publish; returns the PUBACK reason code (0 for a 3.1.1 PUBACK)."""
        self.pid = self.pid % 65535 + 1
        vh = mstr(topic) + struct.pack(">H", self.pid)
        if self.v5:
            vh += b"\x00"
        body = vh + payload
        self.s.sendall(b"\x32" + varint(len(body)) + body)
        while True:
            t, p = self.read_packet()
            if t == 0x40:
                check(struct.unpack(">H", p[:2])[0] == self.pid, "PUBACK packet id")
                return p[2] if len(p) > 2 else 0

    def close(self):
        try:
            self.s.sendall(b"\xe0\x00")
        except OSError:
            pass
        self.s.close()


# ---- the broker ---------------------------------------------------------------------------------


class Env:
    def __init__(self, ferryd, ferryctl, shim, mode, flush):
        self.ferryctl_bin = ferryctl
        self.work = os.path.realpath(tempfile.mkdtemp(prefix="ferry-diskfull-"))
        self.data = os.path.join(self.work, "data")
        os.mkdir(self.data)
        self.mounted = False
        self.flag = None
        if mode in ("auto", "tmpfs"):
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % TMPFS_MB, "tmpfs",
                                self.data], capture_output=True, text=True)
            if r.returncode == 0:
                self.mounted = True
            elif mode == "tmpfs":
                raise Fail("cannot mount a tmpfs for the data directory: %s" % r.stderr.strip())
            else:
                log("mount not allowed (%s): the LD_PRELOAD shim fills the disk instead",
                    r.stderr.strip())
        if not self.mounted:
            if not os.path.exists(shim):
                raise Fail("no tmpfs and no shim %s" % shim)
            self.flag = os.path.join(self.work, "disk-full.flag")
            os.environ["LD_PRELOAD"] = os.path.abspath(shim)
            os.environ["FERRY_ENOSPC_DIR"] = self.data
            os.environ["FERRY_ENOSPC_FLAG"] = self.flag
            # ASan wants its runtime first; the shim only wraps libc calls.
            os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                          ":verify_asan_link_order=0").lstrip(":")
        self.mode = "tmpfs" if self.mounted else "shim"
        self.ballast = os.path.join(self.data, "ballast")
        conf = os.path.join(self.work, "ferry.conf")
        with open(conf, "w") as f:
            # A small memtable, so that the log to write out on recovery stays small.
            f.write("store_write_buffer 4MiB\nflush %s\n" % flush)
        self.b = broker.Broker("ferryd", ferryd, extra=["-c", conf], workdir=self.work)

    def close(self):
        self.b.close()
        if self.mounted:
            subprocess.run(["umount", self.data])
        shutil.rmtree(self.work, ignore_errors=True)

    def ctl(self, *args, stdin=None, timeout=30):
        return subprocess.run([self.ferryctl_bin, "--broker", "127.0.0.1:%d" % self.b.native_port,
                               "--timeout", "10000"] + list(args), input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def http(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.b.admin_port, path),
                                        timeout=10) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:  # /health answers 503 while unhealthy
            return e.read().decode()

    def health(self):
        return json.loads(self.http("/health"))["store"]

    def metric(self, name):
        m = re.search(r"^%s (\S+)$" % re.escape(name), self.http("/metrics"), re.M)
        check(m, "metric %s missing" % name)
        return float(m.group(1))

    def consume_all(self, group, want, what):
        """Reads TOPIC from the first message with a new group; returns the bodies seen."""
        r = self.ctl("consume", TOPIC, "--group", group, "--from", "first", "--timeout", "3000",
                     timeout=120)
        check(r.returncode == 0, "%s: ferryctl consume exit %d: %s" % (what, r.returncode, r.stderr))
        got = set(r.stdout.split("\n")) - {""}
        missing = want - got
        check(not missing, "%s: %d acknowledged messages not read back, e.g. %s" %
              (what, len(missing), sorted(missing)[:3]))
        return got


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def send_amqp(env, body):
    """Sends one message on an AMQP link; returns None if accepted, else the rejection's
    condition name."""
    conn = amqpc.connect(port=env.b.amqp_port)
    try:
        snd = conn.create_sender(TOPIC)
        d = snd.send(Message(body=body), error_states=[])
        if d.remote_state == Delivery.ACCEPTED:
            return None
        if d.remote.condition is not None:
            return d.remote.condition.name
        return "state %s" % d.remote_state
    finally:
        conn.close()


def mosquitto_pub(env, body):
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(env.b.mqtt_port),
                           "-V", "mqttv5", "-q", "1", "-t", TOPIC, "-m", body, "-i", "df-mp"],
                          capture_output=True, text=True, timeout=30)


def run(env):
    b = env.b
    b.start()
    pid = b.pid
    acked = set()
    r = env.ctl("topic", "create", TOPIC, "--queues", "2")
    check(r.returncode == 0, "topic create: %s" % r.stderr)

    # Before: some messages through the native protocol.
    r = env.ctl("send", TOPIC, stdin="".join("pre-%d\n" % i for i in range(50)))
    check(r.returncode == 0, "send before: %s" % r.stderr)
    acked |= {"pre-%d" % i for i in range(50)}

    # Fill: on the tmpfs, the ballast leaves LEFT_MB and MQTT 5 publishes of 64 KiB take the rest;
    # with the shim, the disk is full from the 20th publish on.
    if env.mounted:
        with open(env.ballast, "wb") as f:
            f.write(b"\0" * max(0, free_bytes(env.data) - LEFT_MB * 1024 * 1024))
    c5 = RawMqtt(b.mqtt_port, "df-fill")
    refused = None
    for i in range(4 * TMPFS_MB * 16):
        if env.flag and i == 20:
            open(env.flag, "w").close()
        body = ("fill-%d:" % i).encode()
        pad = os.urandom(32768).hex().encode()  # does not compress
        rc = c5.publish(TOPIC, body + pad)
        if rc == 0:
            acked.add(body.decode() + pad.decode())
        else:
            refused = rc
            break
    check(refused is not None, "the disk never filled up")
    check(refused == 0x97, "PUBACK reason when the disk is full: 0x%02x, want 0x97" % refused)
    log("disk full after %d acknowledged publishes: PUBACK 0x%02x", len(acked) - 50, refused)
    check(c5.publish(TOPIC, b"fill-again") == 0x97, "a second publish is refused the same way")
    c5.close()

    # While full: every protocol says no, clearly.
    h = env.health()
    check(h["state"] == "unhealthy" and h["error"], "/health while full: %r" % h)
    check(env.metric("ferry_store_healthy") == 0, "ferry_store_healthy while full")
    check(env.metric("ferry_store_write_errors_total") >= 1, "ferry_store_write_errors_total")
    log("/health while full: %s", json.dumps(h))

    mp = mosquitto_pub(env, "mp-full")
    check("Quota exceeded" in mp.stderr + mp.stdout,
          "mosquitto_pub -V mqttv5 while full: rc %d, %r %r" % (mp.returncode, mp.stdout, mp.stderr))

    c3 = RawMqtt(b.mqtt_port, "df-v311", v5=False)
    try:
        c3.publish(TOPIC, b"v311-full")
        raise Fail("MQTT 3.1.1: a publish that was not stored got a PUBACK")
    except (EOFError, ConnectionResetError):
        pass  # 3.1.1 has no way to say no: the broker closes the connection

    cond = send_amqp(env, "amqp-full")
    check(cond == "amqp:resource-limit-exceeded", "AMQP while full: %r" % cond)

    r = env.ctl("send", TOPIC, "native-full")
    check(r.returncode == 1 and ("refuses writes" in r.stderr or "no space" in r.stderr),
          "ferryctl send while full: rc %d, %r" % (r.returncode, r.stderr))
    log("while full: mosquitto_pub %r, AMQP %s, ferryctl %r", (mp.stdout + mp.stderr).strip(),
        cond, r.stderr.strip())

    # Consumers keep reading what was stored.
    got = env.consume_all("g-full", acked, "read while full")
    check(not ({"mp-full", "amqp-full", "native-full", "v311-full", "fill-again"} & got),
          "a refused message was stored: %s" % sorted(
              {"mp-full", "amqp-full", "native-full", "v311-full", "fill-again"} & got))

    # Free the space: ferryd recovers by itself, without a restart.
    os.unlink(env.ballast if env.mounted else env.flag)
    t0 = time.monotonic()
    wait_until(lambda: env.health()["state"] == "ok", "the store to recover after freeing space")
    log("recovered %.1fs after the space was freed", time.monotonic() - t0)
    check(b.pid == pid and b.proc.poll() is None, "ferryd was restarted or died")
    check(env.metric("ferry_store_recoveries_total") >= 1, "ferry_store_recoveries_total")
    check('msg="store recovered' in b.output(), "the recovery is logged")

    # And takes writes again on every protocol.
    r = mosquitto_pub(env, "mp-after")
    check(r.returncode == 0 and "failed" not in r.stderr, "mosquitto_pub after: %r" % r.stderr)
    acked.add("mp-after")
    check(send_amqp(env, "amqp-after") is None, "AMQP after recovery")
    acked.add("amqp-after")
    r = env.ctl("send", TOPIC, "native-after")
    check(r.returncode == 0, "ferryctl send after: %s" % r.stderr)
    acked.add("native-after")
    c5 = RawMqtt(b.mqtt_port, "df-after")
    check(c5.publish(TOPIC, b"raw-after") == 0, "MQTT 5 publish after recovery")
    c5.close()
    acked.add("raw-after")

    env.consume_all("g-after", acked, "read after recovery")
    b.stop()
    b.start()
    env.consume_all("g-restart", acked, "read after a restart")
    log("all %d acknowledged messages read back, before and after a restart (%s)", len(acked),
        env.mode)

    # A damaged log at start-up: a clear error naming the file, and no reset.
    b.stop()
    logs = sorted(f for f in os.listdir(env.data) if f.endswith(".log"))
    check(logs, "no LevelDB log file to damage")
    victim = os.path.join(env.data, logs[-1])
    with open(victim, "r+b") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        check(size > 64, "log %s too small to damage (%d bytes)" % (victim, size))
        f.seek(size // 2)
        f.write(b"\xde\xad\xbe\xef" * 4)
    before = sorted(os.listdir(env.data))
    try:
        b.start()
        raise Fail("ferryd started on a damaged log")
    except broker.BrokerError as e:
        msg = str(e)
    check(logs[-1] in msg, "the start-up error names the damaged file %s: %s" % (logs[-1], msg))
    check(os.path.getsize(victim) == size, "the damaged log was changed")
    check(set(before) <= set(os.listdir(env.data)), "files disappeared after the failed start")
    log("damaged log at start-up: %s", msg.strip().splitlines()[-1] if msg.strip() else msg)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ferryd")
    p.add_argument("ferryctl")
    p.add_argument("--shim", required=True, help="libenospc_shim.so")
    p.add_argument("--mode", choices=("auto", "tmpfs", "shim"), default="auto")
    p.add_argument("--flush", choices=("async", "sync"), default="async")
    a = p.parse_args()
    if not shutil.which("mosquitto_pub"):
        print("SKIP: mosquitto_pub is not installed (apt-get install mosquitto-clients)")
        sys.exit(77)
    try:
        env = Env(a.ferryd, a.ferryctl, a.shim, a.mode, a.flush)
    except Fail as e:
        log("FAIL: %s", e)
        sys.exit(1)
    try:
        run(env)
    except Exception as e:  # noqa: BLE001  (whatever went wrong, show ferryd's side too)
        log("FAIL: %s: %s", type(e).__name__, e)
        sys.stderr.write("---- ferryd log ----\n%s\n" % env.b.output()[-6000:])
        sys.exit(1)
    finally:
        env.close()
    log("PASS")


if __name__ == "__main__":
    main()
