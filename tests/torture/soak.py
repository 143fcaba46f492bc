#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Soak (issue 10 item 5): mixed traffic on all three protocols into one native topic for --minutes,
# with consumers coming and going: an MQTT QoS 1 producer (paho), an AMQP producer (proton) that
# reconnects every minute, a native producer (ferryctl send, a new connection each second); MQTT
# subscribers (clean and persistent sessions), AMQP receivers and native consumer groups
# (ferryctl consume) that connect, read for a few seconds and leave. Every 2 s it samples ferryd's
# RSS (/proc/PID/status), its open file descriptors (/proc/PID/fd: sockets and files apart) and
# the event loop's lag (/metrics). It checks:
#   - growth of the anonymous RSS (RssAnon: the heap and stacks, where a leak shows) after the
#     warm-up below --max-rss-growth percent (the last quarter's mean against the first sample
#     after warm-up). The whole RSS is reported too: it also counts the pages of LevelDB's table
#     files that LevelDB maps into memory to read them (RssFile), which grow with the data read
#     and which the kernel reclaims at will;
#   - no descriptor leak: once every client has left, ferryd holds as many sockets as before the
#     first client, and no descriptor of a deleted file;
#   - every producer kept getting acknowledgements, ferryd never stopped, and exits 0 on SIGTERM
#     (under ASan: no report, leaks included).
# The store's memtable and block cache are bounded small (1 MiB each, the least allowed) so that
# they fill during the warm-up, retention keeps 2 minutes of messages (LevelDB keeps the index and
# filter of every table in memory: an ever-growing store grows them too), and consumers read
# faster than producers write so that no backlog builds up: what grows after the warm-up is what
# the soak looks for.
#
# Usage: soak.py FERRYD FERRYCTL [--minutes M] [--warmup-minutes W] [--rate R] [--json FILE]
#                [--max-rss-growth PCT] [--doc DOC]
# With --doc, the results table replaces what lies between `<!-- soak-results:begin -->` and
# `<!-- soak-results:end -->` in DOC (docs/reliability.md).
import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "interop"))
sys.path.insert(0, os.path.join(SRC, "interop", "paho"))
sys.path.insert(0, os.path.join(SRC, "interop", "proton"))
import broker  # noqa: E402
import mqttc  # noqa: E402  (exits 77 when paho is absent)
import amqpc  # noqa: E402  (exits 77 when proton is absent)
from proton import Message  # noqa: E402
from proton.utils import BlockingConnection  # noqa: E402

mqtt = mqttc.mqtt
TOPIC = "soak"
BODY_PAD = "p" * 160


def log(fmt, *args):
    sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
    sys.stderr.flush()


class Shared:
    def __init__(self, b, ferryctl, rate):
        self.b = b
        self.ferryctl = ferryctl
        self.rate = rate
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = []

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def error(self, what):
        with self.lock:
            self.errors.append(what)
        log("ERROR %s", what)

    def pause(self, lo, hi):
        self.stop.wait(random.uniform(lo, hi))

    def ctl(self, *args, stdin=None, timeout=60):
        return subprocess.run([self.ferryctl, "--broker", "127.0.0.1:%d" % self.b.native_port] +
                              list(args), input=stdin, capture_output=True, text=True,
                              timeout=timeout)


def guard(fn):
    def run(sh, *a):
        try:
            fn(sh, *a)
        except Exception as e:  # a client that dies is a finding, not a crash of the soak
            if not sh.stop.is_set():
                sh.error("%s: %r" % (fn.__name__, e))
    return run


# ---- producers ----------------------------------------------------------------------------------


@guard
def mqtt_producer(sh):
    c = mqtt.Client(client_id="soak-mqtt-pub", clean_session=True, protocol=mqtt.MQTTv311)
    c.max_inflight_messages_set(20)
    acked = []
    c.on_publish = lambda cl, u, mid: acked.append(mid)
    c.connect(sh.b.host, sh.b.mqtt_port, keepalive=30)
    c.loop_start()
    i = 0
    try:
        while not sh.stop.is_set():
            c.publish("%s/k%d" % (TOPIC, i % 4), "mqtt:%d:%s" % (i, BODY_PAD), qos=1)
            i += 1
            sh.stop.wait(1.0 / sh.rate)
            sh.count("mqtt_acked", len(acked))
            del acked[:]
    finally:
        c.disconnect()
        c.loop_stop()


@guard
def amqp_producer(sh):
    i = 0
    while not sh.stop.is_set():
        conn = BlockingConnection("amqp://%s:%d" % (sh.b.host, sh.b.amqp_port), timeout=30)
        try:
            snd = conn.create_sender(TOPIC)
            until = time.monotonic() + 60
            while not sh.stop.is_set() and time.monotonic() < until:
                snd.send(Message(body="amqp:%d:%s" % (i, BODY_PAD)))
                sh.count("amqp_acked")
                i += 1
                sh.stop.wait(1.0 / sh.rate)
        finally:
            conn.close()


@guard
def native_producer(sh):
    i = 0
    while not sh.stop.is_set():
        n = max(1, int(sh.rate))
        r = sh.ctl("send", TOPIC, stdin="".join("native:%d:%s\n" % (i + j, BODY_PAD)
                                                  for j in range(n)))
        if r.returncode != 0:
            sh.error("ferryctl send: %s" % r.stderr.strip())
        else:
            sh.count("native_acked", n)
        i += n
        sh.stop.wait(1.0)


# ---- consumers that come and go -----------------------------------------------------------------


@guard
def mqtt_consumers(sh):
    n = 0
    while not sh.stop.is_set():
        persistent = n % 2 == 1
        got = []
        c = mqtt.Client(client_id="soak-mqtt-sub-%s" % ("p" if persistent else n),
                        clean_session=not persistent, protocol=mqtt.MQTTv311)
        c.on_message = lambda cl, u, m: got.append(1)
        c.on_connect = lambda cl, u, f, rc: cl.subscribe(TOPIC + "/#", qos=1)
        c.connect(sh.b.host, sh.b.mqtt_port, keepalive=30)
        c.loop_start()
        sh.pause(3, 10)
        c.disconnect()
        c.loop_stop()
        sh.count("mqtt_received", len(got))
        sh.count("mqtt_sessions")
        n += 1
        sh.pause(0.5, 2)


@guard
def amqp_consumers(sh):
    n = 0
    while not sh.stop.is_set():
        conn = BlockingConnection("amqp://%s:%d" % (sh.b.host, sh.b.amqp_port), timeout=30)
        got = 0
        try:
            rcv = conn.create_receiver(TOPIC, credit=50)
            until = time.monotonic() + random.uniform(3, 10)
            while not sh.stop.is_set() and time.monotonic() < until:
                try:
                    rcv.receive(timeout=1)
                except Exception:
                    continue  # nothing within a second
                rcv.accept()
                got += 1
        finally:
            conn.close()
        sh.count("amqp_received", got)
        sh.count("amqp_links")
        n += 1
        sh.pause(0.5, 2)


@guard
def native_consumers(sh):
    n = 0
    while not sh.stop.is_set():
        r = sh.ctl("consume", TOPIC, "--group", "soak-g%d" % (n % 2), "--count", "2000",
                   "--timeout", "2000")
        if r.returncode not in (0,):
            sh.error("ferryctl consume: rc %d %s" % (r.returncode, r.stderr.strip()))
        sh.count("native_received", len(r.stdout.splitlines()))
        sh.count("native_consumers")
        n += 1
        sh.pause(0.5, 2)


# ---- sampling -----------------------------------------------------------------------------------


def rss_kb(pid):
    """(VmRSS, RssAnon) in kB."""
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    return tuple(int(re.search(r"^%s:\s+(\d+) kB" % k, text, re.M).group(1))
                 for k in ("VmRSS", "RssAnon"))


def fds(pid):
    """(sockets, other descriptors, descriptors of deleted files)."""
    socks = other = deleted = 0
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:"):
            socks += 1
        else:
            other += 1
            if target.endswith(" (deleted)"):
                deleted += 1
    return socks, other, deleted


def metric(b, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % b.admin_port, timeout=10) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def table(r):
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    c = r["counts"]
    rows = [
        ("duration (warm-up)", "%g min (%g min)" % (r["minutes"], r["warmup_minutes"])),
        ("messages acknowledged: MQTT / AMQP / native", "%d / %d / %d" % (
            c.get("mqtt_acked", 0), c.get("amqp_acked", 0), c.get("native_acked", 0))),
        ("messages received: MQTT / AMQP / native", "%d / %d / %d" % (
            c.get("mqtt_received", 0), c.get("amqp_received", 0), c.get("native_received", 0))),
        ("consumers that came and went: MQTT sessions / AMQP links / native", "%d / %d / %d" % (
            c.get("mqtt_sessions", 0), c.get("amqp_links", 0), c.get("native_consumers", 0))),
        ("anonymous RSS (RssAnon) after warm-up / mean of the last quarter / max",
         "%.1f / %.1f / %.1f MiB" % (
             r.get("anon_after_warmup_kb", 0) / 1024.0, r.get("anon_end_kb", 0) / 1024.0,
             r.get("anon_max_kb", 0) / 1024.0)),
        ("anonymous RSS growth after warm-up (limit 10 %)", "%s %%" % r.get("anon_growth_pct")),
        ("whole RSS (VmRSS, with mapped table files) after warm-up / last quarter / max",
         "%.1f / %.1f / %.1f MiB (%s %%)" % (
             r.get("rss_after_warmup_kb", 0) / 1024.0, r.get("rss_end_kb", 0) / 1024.0,
             r.get("rss_max_kb", 0) / 1024.0, r.get("rss_growth_pct"))),
        ("sockets before the first client / after the last left (max)", "%d / %d (%s)" % (
            r["sockets_before"], r["sockets_after"], r.get("sockets_max"))),
        ("other descriptors before / after; of deleted files", "%d / %d; %d" % (
            r["files_before"], r["files_after"], r["deleted_files_open"])),
        ("event loop lag p50 / p99 / max (sampled every 2 s)", "%s / %s / %s ms" % (
            r.get("lag_p50_ms"), r.get("lag_p99_ms"), r.get("lag_max_ms"))),
        ("ferryd exit code on SIGTERM", str(r.get("exit_code"))),
        ("result", "pass" if not r["failures"] else "**FAIL**: " + "; ".join(r["failures"])),
    ]
    out = ["Run of %s: `soak.py --minutes %g --rate %g` (%g msg/s per producer, three producers)."
           % (when, r["minutes"], r["rate_per_producer"], r["rate_per_producer"]), "",
           "| measure | value |", "| --- | --- |"]
    out += ["| %s | %s |" % row for row in rows]
    return "\n".join(out)


def write_doc(doc, r):
    begin, end = "<!-- soak-results:begin -->", "<!-- soak-results:end -->"
    with open(doc) as f:
        text = f.read()
    a, b = text.index(begin) + len(begin), text.index(end)
    with open(doc, "w") as f:
        f.write(text[:a] + "\n" + table(r) + "\n" + text[b:])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("ferryd")
    p.add_argument("ferryctl")
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--warmup-minutes", type=float, default=5)
    p.add_argument("--rate", type=float, default=50, help="messages/s per producer")
    p.add_argument("--max-rss-growth", type=float, default=10.0,
                   help="percent; 0 = report only (ASan's quarantine grows by design)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--doc", help="write the results table into this document")
    a = p.parse_args()

    work = tempfile.mkdtemp(prefix="ferry-soak-")
    conf = os.path.join(work, "ferry.conf")
    with open(conf, "w") as f:
        f.write("store_write_buffer 1MiB\nstore_cache_size 1MiB\nretention 2m\n"
                "retention_interval 10s\n")
    b = broker.Broker("ferryd", a.ferryd, extra=["-c", conf], workdir=work + "/b")
    os.makedirs(work + "/b")
    b.start()
    pid = b.pid
    base_socks, base_other, _ = fds(pid)
    sh = Shared(b, a.ferryctl, a.rate)
    threads = [threading.Thread(target=f, args=(sh,), daemon=True) for f in
               (mqtt_producer, amqp_producer, native_producer, mqtt_consumers, amqp_consumers,
                native_consumers)]
    for t in threads:
        t.start()
    log("soak: ferryd pid %d, %.1f min (warm-up %.1f), %g msg/s per producer", pid, a.minutes,
        a.warmup_minutes, a.rate)

    samples = []  # (t, rss_kb, sockets, other, lag_s, anon_kb)
    lag_max = 0.0
    t0 = time.monotonic()
    end = t0 + a.minutes * 60
    last_log = 0
    failed = []
    while time.monotonic() < end:
        time.sleep(2)
        if b.proc.poll() is not None:
            failed.append("ferryd exited with %d during the soak" % b.proc.returncode)
            break
        t = time.monotonic() - t0
        s, o, _ = fds(pid)
        lag = metric(b, "ferry_event_loop_lag_seconds") or 0.0
        lag_max = max(lag_max, metric(b, "ferry_event_loop_lag_max_seconds") or 0.0)
        rss, anon = rss_kb(pid)
        samples.append((t, rss, s, o, lag, anon))
        if t - last_log >= 60:
            last_log = t
            log("t=%4.0fs rss=%d kB anon=%d kB sockets=%d files=%d lag=%.4fs counts=%s", t, rss,
                anon, s, o, lag, json.dumps(sh.counts, sort_keys=True))

    sh.stop.set()
    for t in threads:
        t.join(timeout=60)
    # Every client has left: the sockets go back to what ferryd had before the first one.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s, o, deleted = fds(pid)
        if s == base_socks:
            break
        time.sleep(0.2)
    s, o, deleted = fds(pid)
    data_files = len(os.listdir(b.data_dir))

    warm = [x for x in samples if x[0] >= a.warmup_minutes * 60]
    res = {"minutes": a.minutes, "warmup_minutes": a.warmup_minutes, "rate_per_producer": a.rate,
           "counts": sh.counts, "errors": sh.errors[:20]}
    if warm:
        quarter = warm[-max(1, len(warm) // 4):]
        rss0, anon0 = warm[0][1], warm[0][5]
        rss_end = statistics.mean(x[1] for x in quarter)
        anon_end = statistics.mean(x[5] for x in quarter)
        res.update({"rss_after_warmup_kb": rss0, "rss_end_kb": int(rss_end),
                    "rss_max_kb": max(x[1] for x in samples),
                    "rss_growth_pct": round(100.0 * (rss_end - rss0) / rss0, 1),
                    "anon_after_warmup_kb": anon0, "anon_end_kb": int(anon_end),
                    "anon_max_kb": max(x[5] for x in samples),
                    "anon_growth_pct": round(100.0 * (anon_end - anon0) / anon0, 1),
                    "lag_p50_ms": round(1000 * percentile([x[4] for x in warm], 50), 2),
                    "lag_p99_ms": round(1000 * percentile([x[4] for x in warm], 99), 2),
                    "lag_max_ms": round(1000 * lag_max, 2),
                    "sockets_max": max(x[2] for x in samples)})
    res.update({"sockets_before": base_socks, "sockets_after": s, "files_before": base_other,
                "files_after": o, "deleted_files_open": deleted, "data_dir_files": data_files})

    rc = b.stop()
    res["exit_code"] = rc
    out = b.output()
    if "AddressSanitizer" in out or "LeakSanitizer" in out or "runtime error:" in out:
        failed.append("sanitizer report in ferryd's output")
        sys.stderr.write(out[-8000:])
    if rc != 0:
        failed.append("ferryd exited with %r on SIGTERM" % rc)
    if not warm:
        failed.append("no sample after the warm-up")
    elif a.max_rss_growth > 0 and res["anon_growth_pct"] >= a.max_rss_growth:
        failed.append("anonymous RSS grew %.1f%% after the warm-up (limit %.0f%%)" %
                      (res["anon_growth_pct"], a.max_rss_growth))
    if s != base_socks:
        failed.append("socket leak: %d sockets after every client left, %d before" %
                      (s, base_socks))
    if deleted:
        failed.append("%d descriptors of deleted files still open" % deleted)
    if o > base_other + data_files:
        failed.append("file descriptors: %d open, %d before plus %d files in the data directory" %
                      (o, base_other, data_files))
    for k in ("mqtt_acked", "amqp_acked", "native_acked", "mqtt_received", "amqp_received",
              "native_received"):
        if not sh.counts.get(k):
            failed.append("no %s during the soak" % k)
    if sh.errors:
        failed.append("%d client errors, first: %s" % (len(sh.errors), sh.errors[0]))
    res["failures"] = failed
    print(json.dumps(res, sort_keys=True))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, sort_keys=True, indent=1)
    if a.doc:
        write_doc(a.doc, res)
    b.close()
    import shutil
    shutil.rmtree(work, ignore_errors=True)
    if failed:
        for f in failed:
            log("FAIL: %s", f)
        sys.exit(1)
    log("PASS")


if __name__ == "__main__":
    main()
