/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-store-bench: append throughput of the store. N concurrent appenders each keep one
 * single-message batch in flight (topic "bench", 8 queues round robin, 100-byte bodies); reports
 * messages/s, MiB/s, the mean group-commit size and the commit and acknowledgement latencies. */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "store/store.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_TOPIC_ID 1u
#define BENCH_TOPIC "bench"

typedef struct bench_opts {
    int inflight;
    fy_flush flush;
    double seconds;
    uint64_t count; /* 0: run for `seconds` */
    size_t size;
    uint32_t queues;
    const char *dir;
    bool json;
    bool keep;
} bench_opts;

typedef struct bench {
    const bench_opts *o;
    fy_store *s;
    struct event_base *base;
    uint8_t *body;
    uint64_t submitted;
    uint64_t acked;
    uint64_t failed;
    int outstanding;
    bool stopping;
    uint64_t t_start, t_stop_at, t_end;
    uint64_t lat_ns_total; /* submit to completion, summed over acked messages */
    uint64_t lat_ns_max;
} bench;

/* One appender: one batch of one message in flight at a time. */
typedef struct appender {
    bench *b;
    uint64_t t_submit;
} appender;

static void bench_submit(appender *a);

static void bench_done(void *arg, int status, fy_wbatch *wb)
{
    appender *a = arg;
    bench *b = a->b;
    uint64_t now = fy_mono_ns(), lat = now - a->t_submit;
    b->outstanding--;
    if (status == FY_OK) {
        b->acked++;
        b->lat_ns_total += lat;
        if (lat > b->lat_ns_max) {
            b->lat_ns_max = lat;
        }
    } else {
        b->failed++;
        b->stopping = true;
        fprintf(stderr, "ferry-store-bench: append failed: %s\n", fy_strerror(status));
    }
    if (!b->stopping &&
        ((b->o->count && b->submitted >= b->o->count) || (!b->o->count && now >= b->t_stop_at))) {
        b->stopping = true;
    }
    if (!b->stopping) {
        bench_submit(a);
    } else if (b->outstanding == 0) {
        b->t_end = now;
        event_base_loopbreak(b->base);
    }
}

static void bench_submit(appender *a)
{
    bench *b = a->b;
    fy_wbatch *wb = fy_wbatch_new();
    fy_record r = {0};
    uint32_t queue = (uint32_t)(b->submitted % b->o->queues);
    r.born_ms = fy_wall_ms();
    r.topic = fy_slice_str(BENCH_TOPIC);
    r.body = (fy_slice){b->body, b->o->size};
    if (fy_wbatch_append(wb, BENCH_TOPIC_ID, queue, &r) < 0) {
        fprintf(stderr, "ferry-store-bench: cannot encode the message\n");
        exit(1);
    }
    b->submitted++;
    b->outstanding++;
    a->t_submit = fy_mono_ns();
    fy_store_submit(b->s, wb, bench_done, a);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--inflight N] [--flush async|sync] [--seconds S | --count N]\n"
            "          [--size BYTES] [--queues N] [--dir DIR] [--keep] [--json]\n"
            "  --inflight N   concurrent appenders, each with one 1-message batch in flight "
            "(default 1)\n"
            "  --flush MODE   async: written to the OS; sync: fsync'ed (default async)\n"
            "  --seconds S    run time (default 5); --count N: stop after N messages\n"
            "  --size BYTES   body size (default 100); --queues N: queues of topic bench "
            "(default 8)\n"
            "  --dir DIR      data directory (default: a fresh one under $TMPDIR, removed after)\n"
            "  --json         print one JSON object on one line\n",
            argv0);
    return 2;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (strcmp(a, "--keep") == 0) {
            o->keep = true;
        } else if (!v) {
            return -1;
        } else if (strcmp(a, "--inflight") == 0) {
            o->inflight = atoi(v);
            i++;
        } else if (strcmp(a, "--flush") == 0) {
            if (strcmp(v, "sync") == 0) {
                o->flush = FY_FLUSH_SYNC;
            } else if (strcmp(v, "async") == 0) {
                o->flush = FY_FLUSH_ASYNC;
            } else {
                return -1;
            }
            i++;
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = atof(v);
            i++;
        } else if (strcmp(a, "--count") == 0) {
            o->count = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--size") == 0) {
            o->size = (size_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--queues") == 0) {
            o->queues = (uint32_t)strtoul(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--dir") == 0) {
            o->dir = v;
            i++;
        } else {
            return -1;
        }
    }
    if (o->inflight < 1 || o->queues < 1 || (o->seconds <= 0 && o->count == 0)) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts o = {.inflight = 1, .flush = FY_FLUSH_ASYNC, .seconds = 5, .size = 100, .queues = 8};
    bench b = {0};
    appender *apps = NULL;
    fy_store_opts so = {0};
    fy_store_stats st;
    char tmp[4096], err[256];
    bool made_dir = false;
    int rc = 1;

    if (parse_args(argc, argv, &o) != 0) {
        return usage(argv[0]);
    }
    fy_log_set_level(FY_LOG_WARN);
    if (!o.dir) {
        const char *t = getenv("TMPDIR");
        snprintf(tmp, sizeof(tmp), "%s/ferry-bench-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmp)) {
            perror("mkdtemp");
            return 1;
        }
        o.dir = tmp;
        made_dir = true;
    }
    b.o = &o;
    b.body = fy_malloc(o.size ? o.size : 1);
    for (size_t i = 0; i < o.size; i++) {
        b.body[i] = (uint8_t)('a' + i % 26);
    }
    b.base = event_base_new();
    so.dir = o.dir;
    so.flush = o.flush;
    if (!b.base || fy_store_open(&so, b.base, &b.s, err, sizeof(err)) != FY_OK) {
        fprintf(stderr, "ferry-store-bench: open %s: %s\n", o.dir, b.base ? err : "no event base");
        goto out;
    }

    apps = fy_calloc((size_t)o.inflight, sizeof(*apps));
    b.t_start = fy_mono_ns();
    b.t_stop_at = b.t_start + (uint64_t)(o.seconds * 1e9);
    for (int i = 0; i < o.inflight && (!o.count || b.submitted < o.count); i++) {
        apps[i].b = &b;
        bench_submit(&apps[i]);
    }
    event_base_dispatch(b.base);
    fy_store_get_stats(b.s, &st);
    if (b.failed || b.t_end == 0) {
        fprintf(stderr, "ferry-store-bench: %" PRIu64 " appends failed\n", b.failed);
        goto out;
    }

    {
        double secs = (double)(b.t_end - b.t_start) / 1e9;
        double rate = (double)b.acked / secs;
        double mib = rate * (double)o.size / (1024.0 * 1024.0);
        double store_mib = (double)st.bytes / secs / (1024.0 * 1024.0);
        double group = st.commits ? (double)st.appends / (double)st.commits : 0;
        double commit_us = st.commits ? (double)st.commit_ns_total / (double)st.commits / 1e3 : 0;
        double ack_us = b.acked ? (double)b.lat_ns_total / (double)b.acked / 1e3 : 0;
        const char *flush = o.flush == FY_FLUSH_SYNC ? "sync" : "async";
        if (o.json) {
            printf("{\"flush\":\"%s\",\"inflight\":%d,\"size\":%zu,\"queues\":%u,"
                   "\"seconds\":%.3f,\"messages\":%" PRIu64 ",\"msgs_per_s\":%.0f,"
                   "\"mib_per_s\":%.2f,\"store_mib_per_s\":%.2f,\"commits\":%" PRIu64 ","
                   "\"mean_group\":%.2f,\"commit_us\":%.1f,\"ack_us\":%.1f,"
                   "\"ack_max_us\":%.1f}\n",
                   flush, o.inflight, o.size, o.queues, secs, b.acked, rate, mib, store_mib,
                   st.commits, group, commit_us, ack_us, (double)b.lat_ns_max / 1e3);
        } else {
            printf("flush=%s inflight=%d size=%zu: %" PRIu64 " msgs in %.2f s = %.0f msg/s, "
                   "%.2f MiB/s payload (%.2f MiB/s stored), %" PRIu64 " commits, "
                   "mean group %.2f msgs, commit %.1f us, ack latency mean %.1f us max %.1f us\n",
                   flush, o.inflight, o.size, b.acked, secs, rate, mib, store_mib, st.commits,
                   group, commit_us, ack_us, (double)b.lat_ns_max / 1e3);
        }
    }
    rc = 0;
out:
    fy_store_close(b.s);
    if (b.base) {
        event_base_free(b.base);
    }
    if (made_dir && !o.keep) {
        nftw(o.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    fy_free(apps);
    fy_free(b.body);
    return rc;
}
