/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-pausemeter: how long the machine itself stops. One thread per CPU, pinned to it, sleeps
 * a fixed interval to an absolute deadline, over and over, and records every time it woke up
 * late by more than a threshold. At SCHED_FIFO priority nothing in the guest outranks it, so a
 * late wake-up means the virtual CPU did not run: the hypervisor gave it to another guest, or
 * took the whole machine away. Run beside a latency benchmark, it gives the tail its floor: a
 * 5 ms pause of the vCPU that holds the broker is a 5 ms stall for every message in flight, on
 * any broker. Without permission for SCHED_FIFO it runs at normal priority and says so ("fifo":
 * false); its pauses then include ordinary scheduling delay.
 *
 *   ferry-pausemeter [--seconds N] [--interval-us 500] [--threshold-us 300] [--log FILE]
 *
 * Runs until SIGINT or SIGTERM (or N seconds), then prints one JSON line: CPUs watched, seconds,
 * whether FIFO priority was had, the count of pauses of at least 1, 2 and 5 ms, the longest
 * (µs) and the total paused time (ms, all CPUs). --log writes one line per pause over the
 * threshold: "end-ms cpu pause-us", end-ms being CLOCK_MONOTONIC in ms at the end of the pause,
 * the clock of ferry-amqp-bench's --latency-log, so that scripts/latency-stalls.py --pauses can
 * line the two up. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 256
#define MAX_LOGGED 100000 /* pauses kept per CPU for --log */

typedef struct pause_rec {
    int64_t end_x10; /* CLOCK_MONOTONIC at the end of the pause, 0.1 ms */
    uint32_t us;
} pause_rec;

typedef struct meter {
    int cpu;
    bool fifo;
    uint64_t n1, n2, n5, longest_us, total_us;
    pause_rec *log;
    size_t nlog;
} meter;

static atomic_bool stop_flag;
static uint64_t interval_ns = 500000, threshold_ns = 300000;
static bool want_log;

static int64_t ns_of(const struct timespec *t)
{
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, true);
}

static void *meter_main(void *arg)
{
    meter *m = arg;
    cpu_set_t set;
    struct sched_param sp = {.sched_priority = 1};
    struct timespec next, now;

    CPU_ZERO(&set);
    CPU_SET(m->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    m->fifo = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the deadline, not up to 50 µs after it */
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load(&stop_flag)) {
        int64_t t = ns_of(&next) + (int64_t)interval_ns, late;
        next.tv_sec = t / 1000000000;
        next.tv_nsec = t % 1000000000;
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        late = ns_of(&now) - t;
        if (late >= (int64_t)threshold_ns) {
            uint64_t us = (uint64_t)late / 1000;
            m->n1 += us >= 1000;
            m->n2 += us >= 2000;
            m->n5 += us >= 5000;
            m->total_us += us;
            if (us > m->longest_us) {
                m->longest_us = us;
            }
            if (want_log && m->nlog < MAX_LOGGED) {
                m->log[m->nlog].end_x10 = ns_of(&now) / 100000;
                m->log[m->nlog].us = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
                m->nlog++;
            }
            next = now; /* the next interval starts now, not at the missed deadlines */
        }
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-pausemeter [--seconds N] [--interval-us US] [--threshold-us US]\n"
               "                        [--log FILE]\n"
               "  Measures how long each CPU of this (virtual) machine stops running: one\n"
               "  SCHED_FIFO thread per CPU sleeps --interval-us (500) to a deadline and counts\n"
               "  wake-ups later than --threshold-us (300). Runs until SIGINT/SIGTERM or N\n"
               "  seconds, then prints one JSON line. --log FILE: one line per pause,\n"
               "  \"end-ms cpu pause-us\" (end-ms: CLOCK_MONOTONIC).\n");
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max || s[0] == '-') {
        return false;
    }
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"seconds", required_argument, NULL, 's'},
                                             {"interval-us", required_argument, NULL, 'i'},
                                             {"threshold-us", required_argument, NULL, 't'},
                                             {"log", required_argument, NULL, 'l'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    uint64_t seconds = 0, v;
    const char *log_path = NULL;
    int opt;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!parse_u64(optarg, 1, 86400, &seconds)) {
                fprintf(stderr, "ferry-pausemeter: --seconds: 1..86400\n");
                return 2;
            }
            break;
        case 'i':
            if (!parse_u64(optarg, 50, 1000000, &v)) {
                fprintf(stderr, "ferry-pausemeter: --interval-us: 50..1000000\n");
                return 2;
            }
            interval_ns = v * 1000;
            break;
        case 't':
            if (!parse_u64(optarg, 10, 10000000, &v)) {
                fprintf(stderr, "ferry-pausemeter: --threshold-us: 10..10000000\n");
                return 2;
            }
            threshold_ns = v * 1000;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    want_log = log_path != NULL;
    /* Opened now: a path that cannot be written is an error before the run, not after it. */
    FILE *logf = log_path ? fopen(log_path, "w") : NULL;
    if (log_path && !logf) {
        fprintf(stderr, "ferry-pausemeter: %s: %s\n", log_path, strerror(errno));
        return 1;
    }

    cpu_set_t online;
    int ncpu = 0, cpus[MAX_CPUS];
    if (sched_getaffinity(0, sizeof(online), &online) != 0) {
        fprintf(stderr, "ferry-pausemeter: sched_getaffinity: %s\n", strerror(errno));
        return 1;
    }
    for (int c = 0; c < MAX_CPUS && c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &online)) {
            cpus[ncpu++] = c;
        }
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    meter *m = calloc((size_t)ncpu, sizeof(*m));
    pthread_t *th = calloc((size_t)ncpu, sizeof(*th));
    if (!m || !th) {
        fprintf(stderr, "ferry-pausemeter: out of memory\n");
        return 1;
    }
    /* The threads start with the two signals blocked, so that main is the one they wake. */
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &old);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < ncpu; i++) {
        m[i].cpu = cpus[i];
        if (want_log && !(m[i].log = calloc(MAX_LOGGED, sizeof(pause_rec)))) {
            fprintf(stderr, "ferry-pausemeter: out of memory\n");
            return 1;
        }
        if (pthread_create(&th[i], NULL, meter_main, &m[i]) != 0) {
            fprintf(stderr, "ferry-pausemeter: cannot start a thread\n");
            return 1;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (seconds) {
        struct timespec end = t0;
        end.tv_sec += (time_t)seconds;
        while (!atomic_load(&stop_flag) &&
               clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) == EINTR) {
        }
        atomic_store(&stop_flag, true);
    } else {
        while (!atomic_load(&stop_flag)) {
            pause(); /* a signal ends it */
        }
    }
    for (int i = 0; i < ncpu; i++) {
        pthread_join(th[i], NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);

    uint64_t n1 = 0, n2 = 0, n5 = 0, longest = 0, total = 0;
    bool fifo = true;
    for (int i = 0; i < ncpu; i++) {
        n1 += m[i].n1;
        n2 += m[i].n2;
        n5 += m[i].n5;
        total += m[i].total_us;
        longest = m[i].longest_us > longest ? m[i].longest_us : longest;
        fifo = fifo && m[i].fifo;
    }
    int rc = 0;
    if (logf) {
        for (int i = 0; i < ncpu; i++) {
            for (size_t k = 0; k < m[i].nlog; k++) {
                fprintf(logf, "%lld.%lld %d %u\n", (long long)(m[i].log[k].end_x10 / 10),
                        (long long)(m[i].log[k].end_x10 % 10), m[i].cpu, m[i].log[k].us);
            }
        }
        if (fclose(logf) != 0) {
            fprintf(stderr, "ferry-pausemeter: %s: %s\n", log_path, strerror(errno));
            rc = 1;
        }
    }
    printf("{\"cpus\":%d,\"seconds\":%.3f,\"fifo\":%s,\"interval_us\":%llu,\"pauses_1ms\":%llu,"
           "\"pauses_2ms\":%llu,\"pauses_5ms\":%llu,\"longest_us\":%llu,\"paused_ms\":%.1f}\n",
           ncpu, (double)(ns_of(&t1) - ns_of(&t0)) / 1e9, fifo ? "true" : "false",
           (unsigned long long)(interval_ns / 1000), (unsigned long long)n1, (unsigned long long)n2,
           (unsigned long long)n5, (unsigned long long)longest, (double)total / 1e3);
    for (int i = 0; i < ncpu; i++) {
        free(m[i].log);
    }
    free(m);
    free(th);
    return rc;
}
