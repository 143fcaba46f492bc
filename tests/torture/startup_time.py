#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Start-up time with a large store (issue 10 item 6): fill_store writes N messages straight through
# the store API, then ferryd is started on that data directory and timed until its native port
# accepts connections, and until it logs "ready"; a consumer then reads the first message and
# ferryctl must see all N messages in the topic's queues. Fails if a start takes longer than
# --max-seconds (a start must not scan the messages).
#
# Usage: startup_time.py FERRYD FERRYCTL FILL_STORE [--messages N] [--max-seconds S]
#                        [--starts K] [--keep DIR]
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "interop"))
import broker  # noqa: E402  (free_port)

TOPIC = "big"


def log(fmt, *args):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
    sys.stderr.flush()


def accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def start_and_time(a, data, ports, logf, limit):
    """Starts ferryd; returns (seconds to accept, seconds to ready, proc)."""
    args = [a.ferryd, "--data-dir", data, "--port", str(ports[0]), "--mqtt-port", str(ports[1]),
            "--amqp-port", str(ports[2]), "--admin-port", str(ports[3])]
    off = os.path.getsize(logf) if os.path.exists(logf) else 0
    out = open(logf, "a")
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    t_accept = t_ready = None
    deadline = t0 + limit + 30
    while time.monotonic() < deadline and (t_accept is None or t_ready is None):
        if proc.poll() is not None:
            raise SystemExit("ferryd exited with %d:\n%s" % (proc.returncode, open(logf).read()[off:]))
        if t_accept is None and accepts(ports[0]):
            t_accept = time.monotonic() - t0
        if t_ready is None:
            with open(logf, errors="replace") as f:
                f.seek(off)
                if 'msg="ready"' in f.read():
                    t_ready = time.monotonic() - t0
        time.sleep(0.005)
    if t_accept is None or t_ready is None:
        proc.kill()
        proc.wait()
        raise SystemExit("ferryd did not start within %.0fs" % (limit + 30))
    return t_accept, t_ready, proc


def ctl(a, port, *args):
    return subprocess.run([a.ferryctl, "--broker", "127.0.0.1:%d" % port, "--timeout", "30000"] +
                          list(args), capture_output=True, text=True, timeout=120)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ferryd")
    p.add_argument("ferryctl")
    p.add_argument("fill_store")
    p.add_argument("--messages", type=int, default=10_000_000)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--starts", type=int, default=2)
    p.add_argument("--keep", help="use (and keep) this directory; filled once")
    a = p.parse_args()

    work = a.keep or tempfile.mkdtemp(prefix="ferry-startup-")
    data = os.path.join(work, "data")
    logf = os.path.join(work, "ferryd.log")
    result = {"messages": a.messages}
    try:
        if not os.path.isdir(data):
            t0 = time.monotonic()
            r = subprocess.run([a.fill_store, data, TOPIC, str(a.messages)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                raise SystemExit("fill_store failed: %s" % r.stderr)
            result["fill_seconds"] = round(time.monotonic() - t0, 1)
            log("filled %d messages in %.1fs (%s)", a.messages, result["fill_seconds"],
                r.stdout.strip())
        du = subprocess.run(["du", "-sm", data], capture_output=True, text=True).stdout.split()
        result["store_mb"] = int(du[0]) if du else None
        ports = [broker.free_port() for _ in range(4)]
        starts = []
        for i in range(a.starts):
            t_accept, t_ready, proc = start_and_time(a, data, ports, logf, a.max_seconds)
            log("start %d: accepting after %.3fs, ready after %.3fs", i + 1, t_accept, t_ready)
            starts.append({"accept_s": round(t_accept, 3), "ready_s": round(t_ready, 3)})
            try:
                if i == 0:
                    r = ctl(a, ports[0], "--json", "topic", "describe", TOPIC)
                    if r.returncode != 0:
                        raise SystemExit("topic describe: %s" % r.stderr)
                    d = json.loads(r.stdout.splitlines()[0])
                    total = sum(q["max_offset"] - q["min_offset"] for q in d["ranges"])
                    if total != a.messages:
                        raise SystemExit("the topic holds %d messages, want %d" %
                                         (total, a.messages))
                    t0 = time.monotonic()
                    r = ctl(a, ports[0], "consume", TOPIC, "--group", "g", "--from", "first",
                            "--count", "1", "--timeout", "30000")
                    if r.returncode != 0 or not r.stdout.strip():
                        raise SystemExit("first message not read: %s" % r.stderr)
                    result["first_read_s"] = round(time.monotonic() - t0, 3)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        result["starts"] = starts
        print(json.dumps(result))
        worst = max(s["ready_s"] for s in starts)
        if worst > a.max_seconds:
            raise SystemExit("start-up took %.1fs with %d messages (limit %.1fs)" %
                             (worst, a.messages, a.max_seconds))
        log("PASS")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
