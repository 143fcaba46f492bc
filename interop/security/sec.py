# SPDX-License-Identifier: Apache-2.0
# Helpers for the security interop tests (imported, not run): a work directory, password files
# written by `ferryctl passwd` (or mosquitto_passwd), a ferryd started with a configuration that
# turns authentication on (interop/broker.py: free 127.0.0.1 ports, stopped by PID), and a ferryd
# expected to refuse to start. Every wait has a deadline.
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

INTEROP = os.environ.get("FERRY_INTEROP_DIR") or os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))
sys.path.insert(0, INTEROP)
import broker  # noqa: E402

DEADLINE = 15.0
FERRYCTL = os.environ.get("FERRYCTL")
BIN = os.environ.get("FERRY_BROKER_BIN")


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def workdir():
    d = tempfile.mkdtemp(prefix="ferry-sec-")
    return d


def passwd(path, user, password):
    """Adds user to the password file with `ferryctl passwd` (password on stdin)."""
    r = subprocess.run([FERRYCTL, "passwd", path, user], input=password + "\n", text=True,
                       capture_output=True, timeout=60)
    eq(r.returncode, 0, "ferryctl passwd %s %s (stderr: %s)" % (path, user, r.stderr))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Ferry:
    """ferryd with a configuration file of text conf, in directory d."""

    running = []

    def __init__(self, d, conf):
        self.conf = os.path.join(d, "ferry.conf")
        write(self.conf, conf)
        self.b = broker.Broker("ferryd", BIN, extra=["-c", self.conf],
                               workdir=os.path.join(d, "broker"))
        os.makedirs(self.b.workdir, exist_ok=True)
        Ferry.running.append(self)
        self.b.start()
        os.environ.update(self.b.env())

    def log(self):
        return self.b.output()

    def wait_log(self, pattern, after=0, what=None):
        """Waits until the log (from offset after) matches pattern; returns the match."""
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            m = re.search(pattern, self.log()[after:])
            if m:
                return m
            time.sleep(0.02)
        raise TestFailure("timed out waiting for %s in the log:\n%s" %
                          (what or pattern, self.log()[after:][-3000:]))

    def hup(self):
        """Sends SIGHUP; returns the log offset before it (for wait_log)."""
        off = len(self.log())
        os.kill(self.b.pid, 1)
        return off

    def close(self):
        Ferry.running.remove(self)
        code = self.b.stop()
        self.b.close()
        eq(code, 0, "ferryd exit code")


def refused_start(conf, d):
    """Runs ferryd with configuration text conf and free ports; it must exit non-zero within the
    deadline. Returns its stderr."""
    path = os.path.join(d, "refused.conf")
    write(path, conf)
    args = [BIN, "-c", path, "--data-dir", os.path.join(d, "refused-data"), "--port", "0",
            "--admin-port", "0", "--mqtt-port", "0", "--amqp-port", "0"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise TestFailure("ferryd did not refuse to start with:\n%s" % conf)
    check(p.returncode != 0, "ferryd exited 0 with:\n%s" % conf)
    return err


def main(test):
    d = workdir()
    rc = 0
    try:
        test(d)
        print("PASS")
    except TestFailure as e:
        print("FAIL: %s" % e)
        rc = 1
    except Exception:
        import traceback
        traceback.print_exc()
        print("FAIL: unexpected exception")
        rc = 1
    finally:
        for f in list(Ferry.running):
            if rc:
                print("---- ferryd log (last 40 lines) ----\n%s" %
                      "\n".join(f.log().splitlines()[-40:]))
            f.b.close()  # kills it by PID if it still runs
        if not os.environ.get("FERRY_INTEROP_KEEP"):
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(rc)
