# SPDX-License-Identifier: Apache-2.0
# Helpers for the tests of slow password checks (imported, not run): password file lines with a
# chosen PBKDF2 cost (calibrated to about a second a check on this machine), raw MQTT CONNECTs
# and AMQP SASL PLAIN attempts whose answers are read later, ferryctl and admin HTTP logins, an
# observer that times publish/receive round trips, and /metrics. Every wait has a deadline.
import base64
import hashlib
import http.client
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time

import sec
from sec import check

sys.path.insert(0, os.path.join(sec.INTEROP, "paho"))
sys.path.insert(0, os.path.join(sec.INTEROP, "proton"))
import amqpc  # noqa: E402
import mqttc  # noqa: E402

ANSWER_DEADLINE = 90.0  # seconds for a queue of slow checks to be answered


def rounds_for(seconds):
    """PBKDF2-SHA512 rounds that take about `seconds` here (OpenSSL through hashlib, as
    ferryd's), within the file format's 1..10,000,000. The fastest of three samples: a machine
    busy with other work while it measures would otherwise give too few rounds, and the checks
    would be much faster than asked once it is idle again."""
    n = 50000
    took = None
    for _ in range(3):
        t0 = time.monotonic()
        hashlib.pbkdf2_hmac("sha512", b"calibrate", b"salt-salt-12", n, 64)
        t = max(time.monotonic() - t0, 1e-4)
        took = t if took is None else min(took, t)
    return max(100000, min(10000000, int(n * seconds / took)))


def passwd_line(user, password, rounds):
    """A `user:$7$rounds$salt$hash` line (mosquitto's format, what common/passwd.c parses)."""
    salt = os.urandom(12)
    h = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, rounds, 64)
    return "%s:$7$%d$%s$%s\n" % (user, rounds, base64.b64encode(salt).decode(),
                                 base64.b64encode(h).decode())


def password_file(d, seconds, slow_users):
    """Writes d/passwd: each of slow_users with the password "right" at about `seconds` a check,
    and "fast" ("pw-fast") at 1,000 rounds (a few ms). Returns its path. One slow user per login
    that should wait: a password that passed once is answered at once afterwards."""
    rounds = rounds_for(seconds)
    print("PBKDF2 rounds for about %g s a check: %d" % (seconds, rounds))
    path = os.path.join(d, "passwd")
    sec.write(path, "".join(passwd_line(u, "right", rounds) for u in slow_users) +
              passwd_line("fast", "pw-fast", 1000))
    return path


# ---- MQTT ---------------------------------------------------------------------------------

def mqtt_login(user, password, version=4, then=b""):
    """A raw MQTT connection that has sent CONNECT (and `then` right behind it)."""
    r = mqttc.Raw(version)
    r.send(mqttc.connect_packet("", version, True, 60, None, None, user, password) + then)
    return r


class RawOn(mqttc.Raw):
    """mqttc.Raw over a socket of the caller's (a TLS socket)."""

    def __init__(self, sock, version=4):
        self.version = version
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self, timeout):
        try:
            return mqttc.Raw._fill(self, timeout)
        except socket.timeout:
            return False
        except OSError:  # a TLS connection cut short
            self.eof = True
            return False


def connack(r, timeout=ANSWER_DEADLINE):
    p = r.read(timeout)
    check(p is not None and p.type == mqttc.CONNACK, "want CONNACK, got %r" % (p,))
    return p.reason


def peek(sock):
    """What sock has received and not been read yet, without waiting (None: closed)."""
    if not select.select([sock], [], [], 0)[0]:
        return b""
    try:
        data = sock.recv(65536, socket.MSG_PEEK)
    except OSError:
        return None
    return data if data else None


def answered(r):
    """Whether the broker has answered raw MQTT connection r yet (without waiting)."""
    return bool(r.buf) or r.eof or peek(r.sock) != b""


class Observer:
    """An MQTT client connected before the slow checks, timing publish -> receive round trips
    through the broker (a raw connection: no client library thread in the measurement)."""

    def __init__(self, user, password, topic):
        self.topic = topic
        self.r = mqtt_login(user, password)
        check(connack(self.r, sec.DEADLINE) == 0, "the observer connects")
        self.r.subscribe(1, [(topic, 0)])
        self.n = 0

    def rtt(self):
        self.n += 1
        body = ("rtt-%d" % self.n).encode()
        t0 = time.monotonic()
        self.r.send(mqttc.publish_packet(self.topic, body))
        while True:
            p = self.r.read(timeout=sec.DEADLINE)
            check(p is not None, "the observer's message %d came back" % self.n)
            if p.type == mqttc.PUBLISH and p.payload == body:
                return time.monotonic() - t0

    def round_trips(self, seconds):
        """Round trips for `seconds`; returns their times."""
        times = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            times.append(self.rtt())
            time.sleep(0.02)
        return times


# ---- AMQP ---------------------------------------------------------------------------------

def sasl_plain_init(user, password):
    """sasl-init, mechanism PLAIN, initial response NUL user NUL password."""
    resp = b"\0" + user.encode() + b"\0" + password.encode()
    body = b"\xa3\x05PLAIN" + b"\xa0" + bytes([len(resp)]) + resp
    return amqpc.sasl_frame(b"\x00\x53\x41\xc0" + bytes([len(body) + 1, 2]) + body)


def amqp_login(user, password, then=b""):
    """A raw AMQP connection that has sent the SASL header and a PLAIN sasl-init (and `then`)."""
    return amqpc.raw(amqpc.SASL_HEADER + sasl_plain_init(user, password) + then)


def outcome_code(got):
    """The code of the sasl-outcome in got (0 ok, 1 auth, 4 sys-temp), or None."""
    i = got.find(b"\x00\x53\x44")
    if i < 0 or len(got) < i + 4:
        return None
    j = i + 3 + (3 if got[i + 3] == 0xc0 else 9 if got[i + 3] == 0xd0 else 0)
    if j == i + 3 or len(got) < j + 2 or got[j] != 0x50:
        return None
    return got[j + 1]


def amqp_answer(s, timeout=ANSWER_DEADLINE, more=b""):
    """Reads s until its sasl-outcome (and `more`, if given, after it) arrives; returns (code,
    bytes read)."""
    got = b""
    end = time.monotonic() + timeout
    s.settimeout(0.1)
    while time.monotonic() < end:
        code = outcome_code(got)
        if code is not None and (not more or more in got[got.find(b"\x00\x53\x44"):]):
            return code, got
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:  # reset, or a TLS connection cut short
            b = b""
        if not b:
            break
        got += b
    return outcome_code(got), got


def amqp_answered(s):
    """Whether the broker has sent its sasl-outcome on raw AMQP socket s yet (without waiting)."""
    data = peek(s)
    return data is None or outcome_code(data) is not None


# ---- native and admin ---------------------------------------------------------------------

def ferryctl_login(f, user, password):
    """`ferryctl topic list` as user, started (not waited for)."""
    env = dict(os.environ)
    env["FERRY_PASSWORD"] = password
    env.pop("FERRY_USER", None)
    cmd = [sec.FERRYCTL, "--broker", "127.0.0.1:%d" % f.b.native_port, "--timeout", "60000",
           "--user", user, "topic", "list"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, stdin=subprocess.DEVNULL)


def ferryctl_result(p):
    try:
        out, err = p.communicate(timeout=ANSWER_DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise sec.TestFailure("ferryctl did not finish")
    return p.returncode, err


def http_get(port, path, user, password, timeout=ANSWER_DEADLINE):
    """(status, body) of GET path with HTTP Basic credentials."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    c.request("GET", path, headers={"Authorization": "Basic " + auth})
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    c.close()
    return r.status, body


class Later(threading.Thread):
    """fn() on a thread; .result() waits for it (with a deadline)."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn = fn
        self.value = None
        self.error = None
        self.start()

    def run(self):
        try:
            self.value = self.fn()
        except Exception as e:  # reported by result()
            self.error = e

    def result(self, timeout=ANSWER_DEADLINE):
        self.join(timeout)
        check(not self.is_alive(), "no answer within %.0fs" % timeout)
        if self.error:
            raise self.error
        return self.value


def metric(f, user, password, name):
    """The value of a /metrics series (user's password must be known to pass at once)."""
    st, body = http_get(f.b.admin_port, "/metrics", user, password, sec.DEADLINE)
    check(st == 200, "/metrics: status %d" % st)
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    check(m is not None, "/metrics has %s" % name)
    return float(m.group(1))
