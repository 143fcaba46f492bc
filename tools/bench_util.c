/* SPDX-License-Identifier: Apache-2.0 */
#include "tools/bench_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_broker_cpu_s(int pid)
{
    char path[64], buf[1024];
    unsigned long utime = 0, stime = 0;
    FILE *f;
    char *p;
    if (pid <= 0) {
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) {
        return -1;
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

bench_cpu_ticks bench_cpu_ticks_now(void)
{
    bench_cpu_ticks t = {0, 0};
    uint64_t v[8] = {0};
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    if (!f) {
        return t;
    }
    /* cpu  user nice system idle iowait irq softirq steal [guest guest_nice: inside user] */
    if (fgets(line, sizeof(line), f) && strncmp(line, "cpu ", 4) == 0 &&
        sscanf(line + 4,
               "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %" SCNu64,
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++) {
            t.total += v[i];
        }
        t.steal = v[7];
    }
    fclose(f);
    return t;
}

double bench_steal_pct(bench_cpu_ticks from, bench_cpu_ticks to)
{
    if (to.total <= from.total || to.steal < from.steal) {
        return -1;
    }
    return 100.0 * (double)(to.steal - from.steal) / (double)(to.total - from.total);
}

bench_mark bench_mark_now(int broker_pid)
{
    bench_mark m = {broker_pid, bench_broker_cpu_s(broker_pid), bench_cpu_ticks_now()};
    return m;
}

void bench_report(const bench_result *r, bench_mark from, bool json)
{
    double cpu1 = bench_broker_cpu_s(from.broker_pid);
    double steal = bench_steal_pct(from.ticks, bench_cpu_ticks_now());
    double rate = r->secs > 0 ? (double)r->count / r->secs : 0;
    double cpu_per_m = from.broker_cpu_s >= 0 && cpu1 >= 0 && r->count
                           ? (cpu1 - from.broker_cpu_s) * 1e6 / (double)r->count
                           : -1;
    if (json) {
        printf("{\"mode\":\"%s\",\"count\":%" PRIu64 ",\"size\":%zu,\"inflight\":%u,"
               "\"rate\":%" PRIu64 ",\"seconds\":%.3f,\"msgs_per_s\":%.0f,"
               "\"broker_cpu_s_per_million\":%.2f,\"steal_pct\":%.1f",
               r->mode, r->count, r->size, r->inflight, r->rate, r->secs, rate, cpu_per_m, steal);
        if (r->has_latency) {
            printf(",\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}", r->p50,
                   r->p99, r->p999, r->max);
        }
        printf("}\n");
        return;
    }
    printf("%s: %" PRIu64 " messages of %zu bytes in %.2f s = %.0f msg/s", r->mode, r->count,
           r->size, r->secs, rate);
    if (cpu_per_m >= 0) {
        printf(", broker CPU %.2f s per million", cpu_per_m);
    }
    if (r->has_latency) {
        printf(", latency p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us", r->p50, r->p99,
               r->p999, r->max);
    }
    if (steal >= 0) {
        printf(", steal %.1f%%", steal);
    }
    printf("\n");
}

bool bench_parse_receiver(const char *line, bench_result *r)
{
    unsigned long long n = 0;
    if (sscanf(line, "%llu %lf %lf %lf %lf %lf", &n, &r->secs, &r->p50, &r->p99, &r->p999,
               &r->max) != 6) {
        return false;
    }
    r->has_latency = true;
    return true;
}
