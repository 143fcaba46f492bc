#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Runs one interop test against a broker it starts on free 127.0.0.1 ports (interop/broker.py).
#
#   run.py KIND BROKER_BIN TEST_FILE [FERRYCTL_BIN]
#
# KIND is `ferryd` (the broker under test) or `mosquitto` (to validate the tests themselves).
# The test runs with bash (.sh), /usr/bin/python3 (.py) or node (.js), with these variables:
#   FERRY_BROKER_KIND  ferryd | mosquitto        FERRY_BROKER_BIN  the broker's binary
#   FERRY_MQTT_HOST    127.0.0.1                  FERRY_MQTT_PORT   the broker's MQTT port
#   FERRY_NATIVE_PORT, FERRY_ADMIN_PORT, FERRY_AMQP_PORT, FERRYCTL (ferryd only)
#   FERRY_INTEROP_DIR  this directory (for `import broker`, lib.sh, ...)
# Its exit code is ours: 0 passed, 77 skipped (its client is absent), anything else failed.
#
# A test declares what it needs on a line near its top (within the first 40 lines), in a comment
# (`#` or `//`):
#   interop: ferry-only    Ferry behaviour (cross-protocol, ferryctl): skipped (77) for mosquitto.
#   interop: own-broker    the test starts, restarts and stops its broker itself
#                          (broker.from_env() with FERRY_BROKER_KIND/FERRY_BROKER_BIN); run.py
#                          then starts none and sets no port variables.
#   interop: ws            ferryd also serves MQTT over WebSocket, its port in FERRY_WS_PORT
#                          (skipped for mosquitto, built here without WebSocket support).
# The broker's log is printed when a test fails. FERRY_INTEROP_KEEP=1 keeps the work directory.
import os
import re
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import broker  # noqa: E402

SKIP = 77
TEST_TIMEOUT_S = 60  # a test taking longer has hung; CTest has its own timeout above this


def directives(path):
    found = set()
    with open(path, errors="replace") as f:
        for i, line in enumerate(f):
            if i >= 40:
                break
            m = re.match(r"\s*(?:#|//)\s*interop:\s*([\w\- ,]+)", line)
            if m:
                found.update(w for w in re.split(r"[\s,]+", m.group(1)) if w)
    return found


def command(path):
    if path.endswith(".sh"):
        return ["bash", path]
    if path.endswith(".py"):
        return ["/usr/bin/python3", path]
    if path.endswith(".js"):
        return ["node", path]
    raise SystemExit("run.py: do not know how to run %s" % path)


def main(argv):
    if len(argv) not in (4, 5):
        print("usage: run.py KIND BROKER_BIN TEST_FILE [FERRYCTL_BIN]", file=sys.stderr)
        return 2
    kind, binary, test = argv[1], os.path.abspath(argv[2]), os.path.abspath(argv[3])
    ferryctl = os.path.abspath(argv[4]) if len(argv) == 5 else None
    name = os.path.relpath(test, HERE)
    marks = directives(test)
    if "ferry-only" in marks and kind != "ferryd":
        print("run.py: %s: SKIP: tests Ferry-only behaviour, broker is %s" % (name, kind))
        return SKIP
    if "ws" in marks and kind != "ferryd":
        print("run.py: %s: SKIP: needs MQTT over WebSocket, broker is %s" % (name, kind))
        return SKIP
    if test.endswith(".js"):
        from shutil import which
        if which("node") is None:
            print("run.py: %s: SKIP: node is not installed" % name)
            return SKIP

    env = dict(os.environ)
    env.update({"FERRY_BROKER_KIND": kind, "FERRY_BROKER_BIN": binary, "FERRY_INTEROP_DIR": HERE,
                "FERRY_MQTT_HOST": broker.HOST, "PYTHONDONTWRITEBYTECODE": "1"})
    if ferryctl:
        env["FERRYCTL"] = ferryctl

    b = None
    if "own-broker" not in marks:
        b = broker.Broker(kind, binary, ws="ws" in marks)
        try:
            b.start()
        except broker.BrokerError as e:
            print("run.py: %s: cannot start %s: %s" % (name, kind, e), file=sys.stderr)
            b.close()
            return 1
        env.update(b.env())
    rc = 1
    proc = None
    try:
        proc = subprocess.Popen(command(test), env=env, cwd=os.path.dirname(test),
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=TEST_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print("run.py: %s: FAIL: still running after %ds, killed" % (name, TEST_TIMEOUT_S),
                  file=sys.stderr)
            rc = 1
    finally:
        if proc is not None and proc.poll() is None:
            # the test's whole process group: a client it left behind must not outlive it
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers the test started and forgot
            except ProcessLookupError:
                pass
        if b is not None:
            try:
                code = b.stop()
                if code not in (0, None) and rc == 0:
                    print("run.py: %s: FAIL: %s exited with %d after the test" % (name, kind, code),
                          file=sys.stderr)
                    rc = 1
            except broker.BrokerError as e:
                print("run.py: %s: %s" % (name, e), file=sys.stderr)
                rc = rc or 1
            if rc not in (0, SKIP):
                out = b.output()
                print("---- %s log (last 60 lines) ----\n%s" %
                      (kind, "\n".join(out.splitlines()[-60:])), file=sys.stderr)
            b.close()
    verdict = {0: "PASS", SKIP: "SKIP"}.get(rc, "FAIL (exit %d)" % rc)
    print("run.py: %s: %s" % (name, verdict))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
