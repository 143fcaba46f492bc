#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Runs every interop test (interop/<client>/NN-*.{sh,py,js}) through run.py against one broker
# kind and prints one line per test and a summary "N passed, N failed, N skipped". Used to
# validate the tests against mosquitto:  run_all.py mosquitto /usr/sbin/mosquitto
#   run_all.py KIND BROKER_BIN [FERRYCTL_BIN] [SUBSTRING...]
# Exit code 0 when nothing failed.
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv):
    if len(argv) < 3:
        print("usage: run_all.py KIND BROKER_BIN [FERRYCTL_BIN] [SUBSTRING...]", file=sys.stderr)
        return 2
    kind, binary = argv[1], argv[2]
    rest = argv[3:]
    ferryctl = []
    if rest and os.path.isfile(rest[0]) and os.access(rest[0], os.X_OK):
        ferryctl = [rest.pop(0)]
    tests = sorted(t for c in ("mosquitto_clients", "paho", "mqttjs")
                   for t in glob.glob(os.path.join(HERE, c, "[0-9][0-9]-*"))
                   if re.search(r"\.(sh|py|js)$", t))
    if rest:
        tests = [t for t in tests if any(s in t for s in rest)]
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    start = time.monotonic()
    for t in tests:
        name = os.path.relpath(t, HERE)
        t0 = time.monotonic()
        r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "run.py"), kind, binary, t]
                           + ferryctl, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        dt = time.monotonic() - t0
        if r.returncode == 0:
            counts["passed"] += 1
            verdict = "PASS"
        elif r.returncode == 77:
            counts["skipped"] += 1
            verdict = "SKIP"
        else:
            counts["failed"] += 1
            verdict = "FAIL"
        print("%-4s %5.1fs  %s" % (verdict, dt, name), flush=True)
        if verdict == "FAIL":
            sys.stdout.write(r.stdout[-4000:] + r.stderr[-6000:] + "\n")
    print("total %.1fs" % (time.monotonic() - start))
    print("%d passed, %d failed, %d skipped" % (counts["passed"], counts["failed"],
                                                 counts["skipped"]))
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
