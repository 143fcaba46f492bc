#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Reads a latency log (ferry-amqp-bench --latency-log: per message in arrival order, its latency
# in µs and, from 2026-11-26 on, its send time in CLOCK_MONOTONIC ms) and prints the stalls in
# it: runs of messages above a threshold, grouped when they are at most GAP messages apart,
# largest first, each with its place in the run in milliseconds (line number / rate). A tail
# made of a few long stalls is the machine (steal, a descheduled vCPU); one spread over many
# small ones is the broker's per-message work.
# With --pauses (ferry-pausemeter --log, run at the same time), it also says how many of the
# slow messages were in flight while a CPU of the machine stood still for at least --pause-ms,
# and the percentiles of the messages that were not: the latency the machine's pauses left out.
# --json prints one line instead: the percentiles of all messages and, with --pauses, the count
# of pauses, of the messages they touched and the percentiles of the others ("clear").
#   scripts/latency-stalls.py LOG [--rate 10000] [--over 1000] [--top 12]
#                                 [--pauses PAUSE_LOG [--pause-ms 1]] [--json]
import argparse
import bisect
import json
import sys


def pct(ranked, q):
    return ranked[min(len(ranked) - 1, int(len(ranked) * q))]


def pcts(ranked):
    return {"p50": pct(ranked, 0.5), "p99": pct(ranked, 0.99), "p999": pct(ranked, 0.999),
            "max": ranked[-1]}


def summary(ranked):
    return (f"p50 {pct(ranked, 0.5):.0f} µs, p99 {pct(ranked, 0.99):.0f} µs, "
            f"p99.9 {pct(ranked, 0.999):.0f} µs, max {ranked[-1]:.0f} µs")


def read_pauses(path, min_ms):
    """[(start ms, end ms)] of the pauses of at least min_ms, sorted by start."""
    spans = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            end, us = float(parts[0]), float(parts[2])
            if us >= min_ms * 1000:
                spans.append((end - us / 1000, end))
    spans.sort()
    return spans


def in_pause(spans, starts, longest, t0, t1):
    """Whether [t0, t1] overlaps one of the spans."""
    i = bisect.bisect_right(starts, t1)  # spans starting after t1 cannot overlap
    while i > 0:
        i -= 1
        s, e = spans[i]
        if e >= t0:
            return True
        if s < t0 - longest:  # no earlier span reaches t0
            return False
    return False


def main():
    ap = argparse.ArgumentParser(description="stalls in a ferry-amqp-bench latency log")
    ap.add_argument("log")
    ap.add_argument("--rate", type=float, default=10000, help="messages per second of the run")
    ap.add_argument("--over", type=float, default=1000, help="stall threshold in µs")
    ap.add_argument("--gap", type=int, default=20, help="messages between two parts of one stall")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--pauses", help="ferry-pausemeter --log of the same run")
    ap.add_argument("--pause-ms", type=float, default=1.0, help="pauses counted from this length")
    ap.add_argument("--json", action="store_true", help="one JSON line of figures")
    a = ap.parse_args()
    try:
        with open(a.log) as f:
            rows = [line.split() for line in f if line.strip()]
        lat = [float(r[0]) for r in rows]
        sent = [float(r[1]) for r in rows] if rows and len(rows[0]) > 1 else None
        spans = read_pauses(a.pauses, a.pause_ms) if a.pauses else None
    except (OSError, ValueError, IndexError) as e:
        sys.exit(f"latency-stalls: {e}")
    if not lat:
        sys.exit(f"latency-stalls: {a.log}: empty")
    if spans is not None and sent is None:
        sys.exit(f"latency-stalls: {a.log} has no send times (an older ferry-amqp-bench)")
    stalls = []  # [first index, last index, worst µs, messages over]
    for i, v in enumerate(lat):
        if v <= a.over:
            continue
        if stalls and i - stalls[-1][1] <= a.gap:
            s = stalls[-1]
            s[1], s[2], s[3] = i, max(s[2], v), s[3] + 1
        else:
            stalls.append([i, i, v, 1])
    out = {"messages": len(lat), "all": pcts(sorted(lat))}
    if a.json and spans is None:
        print(json.dumps(out))
        return
    if not a.json:
        print(f"{len(lat)} messages: {summary(sorted(lat))}")
        print(f"{len(stalls)} stalls over {a.over:.0f} µs holding "
              f"{sum(s[3] for s in stalls)} messages")
        for s in sorted(stalls, key=lambda s: -s[2])[: a.top]:
            print(f"  at {s[0] / a.rate * 1000:9.0f} ms: {s[3]:5d} messages over, "
                  f"worst {s[2]:8.0f} µs")
    if spans is None:
        return
    starts = [s for s, _ in spans]
    longest = max((e - s for s, e in spans), default=0)
    hit = [in_pause(spans, starts, longest, t, t + v / 1000) for t, v in zip(sent, lat)]
    slow = [h for h, v in zip(hit, lat) if v > a.over]
    clear = sorted(v for h, v in zip(hit, lat) if not h)
    if a.json:
        out.update(pauses=len(spans), touched=sum(hit), clear=pcts(clear) if clear else None)
        print(json.dumps(out))
        return
    print(f"{len(spans)} machine pauses of at least {a.pause_ms:g} ms; "
          f"{sum(hit)} messages were in flight during one, "
          f"{sum(slow)} of the {len(slow)} over {a.over:.0f} µs")
    if clear:
        print(f"the {len(clear)} messages no pause touched: {summary(clear)}")


if __name__ == "__main__":
    main()
