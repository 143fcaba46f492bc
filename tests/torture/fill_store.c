/* SPDX-License-Identifier: Apache-2.0 */
/* Fills a new store with many messages, fast, through the store API (no broker, no network):
 * for measuring ferryd's start-up time on a large store (issue 10 item 6,
 * tests/torture/startup_time.py). Writes the topic's configuration record as the core does, then
 * COUNT messages of BODY bytes round robin over QUEUES queues, in group commits of 1000.
 *
 * Usage: fill_store DIR TOPIC COUNT [QUEUES [BODY_BYTES]] */
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/record.h"
#include "store/store.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PER_BATCH 1000
#define IN_FLIGHT 8

typedef struct fill {
    struct event_base *base;
    int in_flight;
    int failed;
    uint64_t done;
} fill;

static void on_written(void *arg, int status, fy_wbatch *b)
{
    fill *f = arg;
    f->in_flight--;
    if (status != FY_OK) {
        fprintf(stderr, "fill_store: write failed: %s\n", fy_strerror(status));
        f->failed = 1;
    } else {
        f->done += fy_wbatch_appends(b);
    }
}

int main(int argc, char **argv)
{
    fy_store_opts o = {0};
    fy_store *s = NULL;
    fill f = {0};
    char err[512];
    uint64_t count, t0;
    uint32_t queues = 8, body_len = 100;
    fy_buf rec = FY_BUF_INIT;
    fy_record r = {0};
    char *body;
    uint8_t conf[16], next[4];
    fy_wbatch *b;

    if (argc < 4) {
        fprintf(stderr, "usage: fill_store DIR TOPIC COUNT [QUEUES [BODY_BYTES]]\n");
        return 2;
    }
    count = strtoull(argv[3], NULL, 10);
    if (argc > 4) {
        queues = (uint32_t)strtoul(argv[4], NULL, 10);
    }
    if (argc > 5) {
        body_len = (uint32_t)strtoul(argv[5], NULL, 10);
    }
    if (queues == 0 || queues > 1024) {
        fprintf(stderr, "fill_store: queues must be 1..1024\n");
        return 2;
    }
    fy_log_set_level(FY_LOG_WARN);
    f.base = event_base_new();
    o.dir = argv[1];
    o.flush = FY_FLUSH_ASYNC;
    if (fy_store_open(&o, f.base, &s, err, sizeof(err)) != FY_OK) {
        fprintf(stderr, "fill_store: %s\n", err);
        return 1;
    }

    /* The topic as the core records it (broker/core.c topic_persist): id 1 in a new store. */
    fy_be32_put(conf, 1);
    fy_be32_put(conf + 4, queues);
    fy_be64_put(conf + 8, fy_wall_ms());
    fy_be32_put(next, 2);
    b = fy_wbatch_new();
    fy_wbatch_put_topic(b, argv[2], conf, sizeof(conf));
    fy_wbatch_put_adapter(b, "core", "next_topic_id", 13, next, sizeof(next));
    f.in_flight++;
    fy_store_submit(s, b, on_written, &f);

    body = malloc(body_len + 1);
    memset(body, 'b', body_len);
    body[body_len] = '\0';
    r.topic = fy_slice_str(argv[2]);
    r.body = (fy_slice){(const uint8_t *)body, body_len};
    r.born_ms = fy_wall_ms();
    r.born_host = fy_slice_str("127.0.0.1:1");
    if (fy_record_encode(&r, &rec) != FY_OK) {
        fprintf(stderr, "fill_store: cannot encode the record\n");
        return 1;
    }

    t0 = fy_mono_ms();
    for (uint64_t sent = 0; sent < count && !f.failed;) {
        while (f.in_flight >= IN_FLIGHT) {
            event_base_loop(f.base, EVLOOP_ONCE);
        }
        b = fy_wbatch_new();
        for (int i = 0; i < PER_BATCH && sent < count; i++, sent++) {
            fy_wbatch_append_raw(b, 1, (uint32_t)(sent % queues), rec.data, rec.len, false);
        }
        f.in_flight++;
        fy_store_submit(s, b, on_written, &f);
    }
    while (f.in_flight > 0) {
        event_base_loop(f.base, EVLOOP_ONCE);
    }
    fy_store_close(s);
    event_base_free(f.base);
    printf("messages=%llu seconds=%.1f\n", (unsigned long long)f.done,
           (double)(fy_mono_ms() - t0) / 1000.0);
    fy_buf_free(&rec);
    free(body);
    return f.failed;
}
