#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# ferry-pausemeter (tools/ferry_pausemeter.c) sees a pause: stopped with SIGSTOP for 200 ms, each
# of its per-CPU threads wakes up ~200 ms late, and the JSON line and the log say so. Bad
# arguments exit 2; --seconds ends the run by itself.
#   pausemeter_test.py FERRY_PAUSEMETER
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

exe = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


with tempfile.TemporaryDirectory() as tmp:
    log = os.path.join(tmp, "pauses.txt")
    p = subprocess.Popen([exe, "--log", log], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGSTOP)
        time.sleep(0.2)
        os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(p.returncode == 0, f"exit status 0 after SIGINT, got {p.returncode}")
    r = json.loads(out.strip().splitlines()[-1])
    ncpu = len(os.sched_getaffinity(0))
    check(r["cpus"] == ncpu, f"watches {ncpu} CPUs: {r}")
    check(r["pauses_5ms"] >= ncpu, f"every CPU saw the 200 ms stop: {r}")
    check(150_000 <= r["longest_us"] <= 5_000_000, f"longest pause ~200 ms: {r}")
    check(r["paused_ms"] >= 150 * ncpu, f"paused time covers the stop on each CPU: {r}")
    with open(log) as f:
        rows = [line.split() for line in f if line.strip()]
    big = [r for r in rows if int(r[2]) >= 150_000]
    check(sorted(int(r[1]) for r in big) == sorted(os.sched_getaffinity(0)),
          f"the log has the stop once per CPU: {big}")
    check(all(abs(float(r[0]) / 1000 - (t0 + 0.2)) < 2 for r in big),
          f"the log's CLOCK_MONOTONIC time is the end of the stop: {big} vs {t0 + 0.2}")

    # --seconds ends the run by itself.
    t = time.monotonic()
    r2 = subprocess.run([exe, "--seconds", "1"], capture_output=True, text=True, timeout=10)
    check(r2.returncode == 0 and 0.9 <= time.monotonic() - t < 8, "--seconds 1 runs ~1 s")
    check(json.loads(r2.stdout)["seconds"] >= 0.99, f"--seconds 1 reports ~1 s: {r2.stdout}")

    for bad in (["--seconds", "0"], ["--interval-us", "x"], ["--threshold-us", "-5"], ["extra"]):
        r3 = subprocess.run([exe] + bad, capture_output=True, text=True, timeout=10)
        check(r3.returncode == 2 and r3.stderr, f"{bad} is refused with exit 2 and a message")

    # A log that cannot be written is refused at once, before any measuring.
    t = time.monotonic()
    r4 = subprocess.run([exe, "--seconds", "5", "--log", os.path.join(tmp, "no", "such", "dir")],
                        capture_output=True, text=True, timeout=10)
    check(r4.returncode == 1 and "such" in r4.stderr and time.monotonic() - t < 3,
          f"an unwritable --log fails at once with the path: {r4.returncode} {r4.stderr!r}")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("pausemeter: all checks passed")
