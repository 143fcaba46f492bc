/* SPDX-License-Identifier: Apache-2.0 */
/* What the load generators (ferry-bench, ferry-mqtt-bench, ferry-amqp-bench) share: the clock,
 * the broker's CPU time, and the machine's stolen time, which on a virtual machine is the
 * first suspect for a latency tail. */
#ifndef FERRY_TOOLS_BENCH_UTIL_H
#define FERRY_TOOLS_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* The broker's CPU time (user + system) in seconds, from /proc/PID/stat; -1 if unknown. */
double bench_broker_cpu_s(int pid);

/* A reading of /proc/stat's "cpu" line, all CPUs together. */
typedef struct bench_cpu_ticks {
    uint64_t total, steal;
} bench_cpu_ticks;

/* Reads the counters now; both are 0 if /proc/stat cannot be read. */
bench_cpu_ticks bench_cpu_ticks_now(void);

/* The share of all CPU time between the two readings that the hypervisor gave to other guests,
 * in percent; -1 if unknown. */
double bench_steal_pct(bench_cpu_ticks from, bench_cpu_ticks to);

/* Where a measured run starts: the broker's CPU time and the machine's CPU counters. */
typedef struct bench_mark {
    int broker_pid; /* 0: not measured */
    double broker_cpu_s;
    bench_cpu_ticks ticks;
} bench_mark;

bench_mark bench_mark_now(int broker_pid);

/* What ferry-bench and ferry-amqp-bench report of a produce or e2e run. */
typedef struct bench_result {
    const char *mode; /* "produce" or "e2e" */
    uint64_t count, rate;
    size_t size;
    uint32_t inflight;
    double secs;
    bool has_latency; /* e2e: p50, p99, p999 and max (µs) are set */
    double p50, p99, p999, max;
} bench_result;

/* Prints r, with the broker's CPU per million messages and the steal since `from`, as one JSON
 * line (json) or one line of text. */
void bench_report(const bench_result *r, bench_mark from, bool json);

/* Reads the e2e receiver's result line, "count seconds p50 p99 p999 max", into r. */
bool bench_parse_receiver(const char *line, bench_result *r);

#endif
