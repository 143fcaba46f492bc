# SPDX-License-Identifier: Apache-2.0
# Helpers for the qpid-proton interop tests (imported, not run): connections to the broker under
# test, ferryctl, checks that raise, waits with deadlines. Reads FERRY_MQTT_HOST (the host) and
# FERRY_AMQP_PORT, FERRY_NATIVE_PORT, FERRYCTL (interop/run.py).
import json
import os
import socket
import struct
import subprocess
import sys
import time
import traceback

try:
    from proton import Connection, Message, Transport  # Message: for the tests too
    from proton.utils import BlockingConnection
    from proton.reactor import Container
except ImportError:
    print("SKIP: python3-qpid-proton is not installed for /usr/bin/python3 "
          "(apt-get install python3-qpid-proton)")
    sys.exit(77)

HOST = os.environ.get("FERRY_MQTT_HOST", "127.0.0.1")
DEADLINE = 10.0  # seconds, for every wait
QUIET = 0.5  # seconds a negative check ("nothing more arrives") listens for
PREFIX = "am%d" % os.getpid()  # keeps this run's topics apart


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def wait_until(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))


def url(port=None):
    return "amqp://%s:%s" % (HOST, port or os.environ["FERRY_AMQP_PORT"])


def connect(container_id=None, port=None, **kw):
    """A BlockingConnection to the broker (every wait bounded by DEADLINE)."""
    cont = None
    if container_id:
        cont = Container()
        cont.container_id = container_id
    return BlockingConnection(url(port), timeout=DEADLINE, container=cont, **kw)


def conn_wait(conn, pred, what, timeout=DEADLINE):
    """Runs the connection's events until pred() holds (or fails after the deadline)."""
    conn.wait(pred, timeout=timeout, msg=what)


def receive_n(rcv, n, what, accept=True, timeout=DEADLINE):
    """n messages from a BlockingReceiver (accepted unless told otherwise)."""
    got = []
    for _ in range(n):
        try:
            got.append(rcv.receive(timeout=timeout))
        except Exception as e:
            raise TestFailure("%s: got %d of %d messages (%s)" % (what, len(got), n, e))
        if accept:
            rcv.accept()
    return got


def expect_none(rcv, what, quiet=QUIET):
    """Nothing more arrives on rcv within `quiet` seconds."""
    try:
        m = rcv.receive(timeout=quiet)
    except Exception:
        return
    raise TestFailure("%s: unexpected message %r" % (what, m.body))


# ---- Raw sockets: bytes the proton clients would never send ----------------------------------

SASL_HEADER = b"AMQP\x03\x01\x00\x00"


def sasl_frame(body):
    """A SASL frame (type 1) on channel 0 around an encoded performative."""
    return struct.pack(">IBBH", 8 + len(body), 2, 1, 0) + body


def client_open_bytes(container="raw", idle_ms=None):
    """A client's AMQP header and open frame (no SASL), from proton's own engine; idle_ms sets
    the idle-time-out its open asks for (proton advertises half its own timeout)."""
    t = Transport()
    if idle_ms is not None:
        t.idle_timeout = 2 * idle_ms / 1000.0
    conn = Connection()
    conn.container = container
    t.bind(conn)
    conn.open()
    return t.peek(t.pending())


def raw(data=b""):
    """A plain socket to the broker's AMQP port, data sent on it."""
    s = socket.create_connection((HOST, int(os.environ["FERRY_AMQP_PORT"])), timeout=5)
    if data:
        s.sendall(data)
    return s


def read_for(s, seconds, what, until_closed=True):
    """What the broker sends on s within `seconds`, then closes s. until_closed: the broker must
    close the socket in that time (else TestFailure); otherwise reading simply stops then."""
    got = b""
    end = time.monotonic() + seconds
    s.settimeout(0.1)
    try:
        while time.monotonic() < end:
            try:
                b = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return got
            if not b:
                return got
            got += b
        if until_closed:
            raise TestFailure("%s: connection still open after %.1fs" % (what, seconds))
        return got
    finally:
        s.close()


def still_serves(topic, body, what):
    """A fresh proton client still sends to topic and receives body back (other connections
    are unaffected by whatever the test did on its raw sockets)."""
    c = connect()
    rcv = c.create_receiver(topic, credit=10)
    c.create_sender(topic).send(Message(body=body))
    eq(rcv.receive(timeout=DEADLINE).body, body, what)
    rcv.accept()
    c.close()


def ferryctl(*args, timeout=20):
    """Runs ferryctl against the broker's native port; returns the CompletedProcess."""
    cmd = [os.environ["FERRYCTL"], "--broker", "%s:%s" % (HOST, os.environ["FERRY_NATIVE_PORT"])]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def ferryctl_json(*args):
    r = ferryctl("--json", *args)
    eq(r.returncode, 0, "ferryctl %s exit code (stderr: %s)" % (" ".join(args), r.stderr))
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def own_broker(conf=None):
    """Starts a broker for a test marked `interop: own-broker` (optionally with a configuration
    file of text conf) and points this module's helpers at it. The caller closes it."""
    sys.path.insert(0, os.environ["FERRY_INTEROP_DIR"])
    import broker
    b = broker.from_env()
    if conf is not None:
        path = os.path.join(b.workdir, "ferry.conf")
        with open(path, "w") as f:
            f.write(conf)
        b.extra = ["-c", path]
    b.start()
    _point_at(b)
    return b


def _point_at(b):
    os.environ.update(b.env())


def restart(b, kill=False):
    """Restarts broker b (SIGTERM, or SIGKILL) on the same data and ports."""
    b.restart(kill=kill)
    _point_at(b)


def main(test):
    """Runs test() and exits 0 (pass) or 1 (fail, with the reason)."""
    try:
        test()
    except TestFailure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print("FAIL: unexpected exception")
        sys.exit(1)
    print("PASS")
    sys.exit(0)
