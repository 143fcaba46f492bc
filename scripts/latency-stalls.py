#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Reads a latency log (ferry-amqp-bench --latency-log: one latency in µs per line, in arrival
# order) and prints the stalls in it: runs of messages above a threshold, grouped when they are
# at most GAP messages apart, largest first, each with its place in the run in milliseconds
# (line number / rate). A tail made of a few long stalls is the machine (steal, a descheduled
# vCPU); one spread over many small ones is the broker's per-message work.
#   scripts/latency-stalls.py LOG [--rate 10000] [--over 1000] [--top 12]
import argparse
import sys


def main():
    ap = argparse.ArgumentParser(description="stalls in a ferry-amqp-bench latency log")
    ap.add_argument("log")
    ap.add_argument("--rate", type=float, default=10000, help="messages per second of the run")
    ap.add_argument("--over", type=float, default=1000, help="stall threshold in µs")
    ap.add_argument("--gap", type=int, default=20, help="messages between two parts of one stall")
    ap.add_argument("--top", type=int, default=12)
    a = ap.parse_args()
    try:
        with open(a.log) as f:
            lat = [float(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        sys.exit(f"latency-stalls: {a.log}: {e}")
    stalls = []  # [first index, last index, worst µs, messages over]
    for i, v in enumerate(lat):
        if v <= a.over:
            continue
        if stalls and i - stalls[-1][1] <= a.gap:
            s = stalls[-1]
            s[1], s[2], s[3] = i, max(s[2], v), s[3] + 1
        else:
            stalls.append([i, i, v, 1])
    ranked = sorted(lat)
    n = len(ranked)
    if n == 0:
        sys.exit(f"latency-stalls: {a.log}: empty")
    print(f"{n} messages: p50 {ranked[n // 2]:.0f} µs, p99 {ranked[int(n * 0.99)]:.0f} µs, "
          f"p99.9 {ranked[int(n * 0.999)]:.0f} µs, max {ranked[-1]:.0f} µs")
    print(f"{len(stalls)} stalls over {a.over:.0f} µs holding {sum(s[3] for s in stalls)} messages")
    for s in sorted(stalls, key=lambda s: -s[2])[: a.top]:
        print(f"  at {s[0] / a.rate * 1000:9.0f} ms: {s[3]:5d} messages over, worst {s[2]:8.0f} µs")


if __name__ == "__main__":
    main()
