/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the store on a real LevelDB in a temporary directory: appends through the
 * writer thread, offsets, reads, every key space, persistence across reopen, the directory
 * lock, corruption at open and a failed write. */
#include "common/clock.h"
#include "common/log.h"
#include "store/store.h"
#include "tests/testutil.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct env {
    char dir[4096];
    struct event_base *base;
    fy_store *s;
} env;

/* One completion, recorded by done_cb. */
typedef struct done {
    int calls;
    int status;
    int order; /* value of the global completion counter when this one ran */
    size_t n;
    uint32_t queue[64];
    uint64_t offset[64];
    uint64_t store_ms[64];
} done;

static int completions;

static void done_cb(void *arg, int status, fy_wbatch *b)
{
    done *d = arg;
    d->calls++;
    d->status = status;
    d->order = completions++;
    d->n = fy_wbatch_appends(b);
    for (size_t i = 0; status == FY_OK && i < d->n && i < 64; i++) {
        fy_wbatch_result(b, i, &d->queue[i], &d->offset[i], &d->store_ms[i]);
    }
}

/* Runs the loop until *counter reaches want, or fails the test after 10 s. */
static void wait_for(env *e, const int *counter, int want)
{
    uint64_t deadline = fy_mono_ms() + 10000;
    while (*counter < want) {
        assert_true(fy_mono_ms() < deadline);
        event_base_loop(e->base, EVLOOP_ONCE);
    }
}

static void open_store(env *e, fy_flush flush)
{
    /* Recovery after a failed write only when a test asks (fy_store_recover). */
    fy_store_opts o = {.dir = e->dir, .flush = flush, .recover_every_ms = -1};
    char err[256];
    int rc = fy_store_open(&o, e->base, &e->s, err, sizeof(err));
    if (rc != FY_OK) {
        fail_msg("open: %s", err);
    }
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "%s", fy_test_tmpdir("store"));
    e->base = event_base_new();
    open_store(e, FY_FLUSH_ASYNC);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    fy_store_close(e->s);
    event_base_free(e->base);
    fy_test_rmrf(e->dir);
    free(e);
    return 0;
}

static void reopen(env *e)
{
    fy_store_close(e->s);
    e->s = NULL;
    open_store(e, FY_FLUSH_ASYNC);
}

static fy_record make_rec(const char *topic, const char *body)
{
    fy_record r = {0};
    r.topic = fy_slice_str(topic);
    r.body = fy_slice_str(body);
    r.born_ms = 1234;
    return r;
}

/* Appends one message per body to (topic 1, queue) in one batch and waits for it. */
static void append_sync(env *e, uint32_t queue, const char *const *bodies, size_t n, done *d)
{
    fy_wbatch *b = fy_wbatch_new();
    int want = d->calls + 1;
    for (size_t i = 0; i < n; i++) {
        fy_record r = make_rec("orders", bodies[i]);
        assert_int_equal(fy_wbatch_append(b, 1, queue, &r), (int)i);
    }
    fy_store_submit(e->s, b, done_cb, d);
    wait_for(e, &d->calls, want);
}

static void test_store_append_assigns_dense_offsets(void **state)
{
    env *e = *state;
    const char *bodies[] = {"a", "bb", "ccc"};
    done d = {0};
    fy_buf out = FY_BUF_INIT;
    fy_record_view v;
    uint64_t min, max;

    append_sync(e, 0, bodies, 3, &d);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(d.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d.queue[i], 0);
        assert_int_equal(d.offset[i], i);
        assert_true(d.store_ms[i] > 1000000000000ull);
    }
    append_sync(e, 0, bodies, 2, &d);
    assert_int_equal(d.offset[0], 3);
    assert_int_equal(d.offset[1], 4);
    append_sync(e, 5, bodies, 1, &d);
    assert_int_equal(d.queue[0], 5);
    assert_int_equal(d.offset[0], 0);

    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 5);
    fy_store_queue_range(e->s, 1, 5, &min, &max);
    assert_int_equal(max, 1);
    fy_store_queue_range(e->s, 1, 6, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 0);

    /* The stored record carries its location and store time. */
    assert_int_equal(fy_store_get(e->s, 1, 0, 2, &out), FY_OK);
    assert_int_equal(fy_record_decode(out.data, out.len, &v), FY_OK);
    assert_int_equal(v.queue_offset, 2);
    assert_int_equal(v.queue_id, 0);
    assert_int_equal(v.born_ms, 1234);
    assert_true(v.store_ms >= d.store_ms[0] - 60000);
    assert_int_equal(v.body.len, 3);
    assert_memory_equal(v.body.p, "ccc", 3);
    assert_int_equal(fy_store_get(e->s, 1, 0, 5, &out), -FY_ENOTFOUND);
    assert_int_equal(fy_store_get(e->s, 2, 0, 0, &out), -FY_ENOTFOUND);
    fy_buf_free(&out);
}

static void test_store_group_commit_keeps_submit_order(void **state)
{
    env *e = *state;
    enum { N = 200 };
    static done d[N];
    int calls = 0;
    memset(d, 0, sizeof(d));
    completions = 0;
    for (int i = 0; i < N; i++) {
        fy_wbatch *b = fy_wbatch_new();
        fy_record r = make_rec("orders", "x");
        fy_wbatch_append(b, 1, (uint32_t)(i % 3), &r);
        fy_wbatch_append(b, 1, (uint32_t)(i % 3), &r);
        fy_store_submit(e->s, b, done_cb, &d[i]);
    }
    while (calls < N) {
        uint64_t deadline = fy_mono_ms() + 10000;
        event_base_loop(e->base, EVLOOP_ONCE);
        assert_true(fy_mono_ms() < deadline);
        calls = 0;
        for (int i = 0; i < N; i++) {
            calls += d[i].calls;
        }
    }
    uint64_t next[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].status, FY_OK);
        assert_int_equal(d[i].order, i);
        assert_int_equal(d[i].offset[0], next[i % 3]);
        assert_int_equal(d[i].offset[1], next[i % 3] + 1);
        next[i % 3] += 2;
    }
    fy_store_stats st;
    fy_store_get_stats(e->s, &st);
    assert_int_equal(st.appends, 2 * N);
    assert_int_equal(st.batches, N);
    assert_int_equal(st.pending, 0);
    assert_true(st.commits >= 1 && st.commits <= N);
}

typedef struct seen {
    int n;
    uint64_t offsets[100];
    int stop_at;
} seen;

static int scan_cb(void *arg, uint64_t offset, const uint8_t *rec, size_t len)
{
    seen *s = arg;
    fy_record_view v;
    assert_int_equal(fy_record_decode(rec, len, &v), FY_OK);
    assert_int_equal(v.queue_offset, offset);
    s->offsets[s->n++] = offset;
    return s->n == s->stop_at ? 42 : 0;
}

static void test_store_scan_limits(void **state)
{
    env *e = *state;
    const char *bodies[10] = {"0123456789", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    done d = {0};
    seen s = {0};
    append_sync(e, 0, bodies, 10, &d);
    append_sync(e, 1, bodies, 2, &d);

    assert_int_equal(fy_store_scan(e->s, 1, 0, 3, 4, 0, scan_cb, &s), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.offsets[0], 3);
    assert_int_equal(s.offsets[3], 6);

    memset(&s, 0, sizeof(s));
    assert_int_equal(fy_store_scan(e->s, 1, 0, 8, 100, 0, scan_cb, &s), 0);
    assert_int_equal(s.n, 2); /* stops at the end of the queue, not in queue 1 */

    memset(&s, 0, sizeof(s));
    assert_int_equal(fy_store_scan(e->s, 1, 0, 0, 100, 1, scan_cb, &s), 0);
    assert_int_equal(s.n, 1); /* the byte limit stops after the record that reaches it */

    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    assert_int_equal(fy_store_scan(e->s, 1, 0, 0, 100, 0, scan_cb, &s), 42);
    assert_int_equal(s.n, 2);
}

static void test_store_reopen_recovers_ranges(void **state)
{
    env *e = *state;
    const char *bodies[] = {"a", "b", "c", "d"};
    done d = {0};
    uint64_t min, max;
    append_sync(e, 0, bodies, 4, &d);
    append_sync(e, 7, bodies, 2, &d);
    reopen(e);
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 4);
    fy_store_queue_range(e->s, 1, 7, &min, &max);
    assert_int_equal(max, 2);
    append_sync(e, 0, bodies, 1, &d);
    assert_int_equal(d.offset[0], 4);
    append_sync(e, 7, bodies, 1, &d);
    assert_int_equal(d.offset[0], 2);
}

static void test_store_offset_by_time(void **state)
{
    env *e = *state;
    const char *bodies[] = {"a", "b", "c"};
    done d = {0};
    uint64_t t1, t2, off;

    append_sync(e, 0, bodies, 3, &d); /* offsets 0..2 */
    t1 = d.store_ms[0];
    while (fy_wall_ms() <= t1 + 2) {
        usleep(1000);
    }
    append_sync(e, 0, bodies, 3, &d); /* offsets 3..5 */
    t2 = d.store_ms[0];
    assert_true(t2 > t1);

    assert_int_equal(fy_store_offset_by_time(e->s, 1, 0, 0, &off), FY_OK);
    assert_int_equal(off, 0);
    assert_int_equal(fy_store_offset_by_time(e->s, 1, 0, t1, &off), FY_OK);
    assert_int_equal(off, 0);
    assert_int_equal(fy_store_offset_by_time(e->s, 1, 0, t1 + 1, &off), FY_OK);
    assert_int_equal(off, 3);
    assert_int_equal(fy_store_offset_by_time(e->s, 1, 0, t2, &off), FY_OK);
    assert_int_equal(off, 3);
    assert_int_equal(fy_store_offset_by_time(e->s, 1, 0, t2 + 100000, &off), FY_OK);
    assert_int_equal(off, 6);
}

typedef struct offs {
    int n;
    uint32_t topic[8], queue[8];
    uint64_t off[8];
} offs;

static int offs_cb(void *arg, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    offs *o = arg;
    o->topic[o->n] = topic_id;
    o->queue[o->n] = queue_id;
    o->off[o->n++] = offset;
    return 0;
}

/* Submits a batch without appends and waits for it. */
static void submit_sync(env *e, fy_wbatch *b)
{
    done d = {0};
    fy_store_submit(e->s, b, done_cb, &d);
    wait_for(e, &d.calls, 1);
    assert_int_equal(d.status, FY_OK);
}

static void test_store_consumer_offsets(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    uint64_t off = 0;
    offs o = {0};

    assert_int_equal(fy_store_get_offset(e->s, "g1", 1, 0, &off), -FY_ENOTFOUND);
    fy_wbatch_put_offset(b, "g1", 1, 0, 17);
    fy_wbatch_put_offset(b, "g1", 1, 3, 5);
    fy_wbatch_put_offset(b, "g1", 2, 0, 9);
    fy_wbatch_put_offset(b, "g10", 1, 0, 99); /* a group whose name extends g1's */
    submit_sync(e, b);
    assert_int_equal(fy_store_get_offset(e->s, "g1", 1, 0, &off), FY_OK);
    assert_int_equal(off, 17);
    assert_int_equal(fy_store_get_offset(e->s, "g10", 1, 0, &off), FY_OK);
    assert_int_equal(off, 99);

    assert_int_equal(fy_store_scan_offsets(e->s, "g1", offs_cb, &o), 0);
    assert_int_equal(o.n, 3);
    assert_int_equal(o.topic[0], 1);
    assert_int_equal(o.queue[0], 0);
    assert_int_equal(o.off[0], 17);
    assert_int_equal(o.queue[1], 3);
    assert_int_equal(o.topic[2], 2);
    assert_int_equal(o.off[2], 9);

    b = fy_wbatch_new();
    fy_wbatch_put_offset(b, "g1", 1, 0, 18);
    fy_wbatch_del_offset(b, "g1", 1, 3);
    submit_sync(e, b);
    reopen(e);
    assert_int_equal(fy_store_get_offset(e->s, "g1", 1, 0, &off), FY_OK);
    assert_int_equal(off, 18);
    assert_int_equal(fy_store_get_offset(e->s, "g1", 1, 3, &off), -FY_ENOTFOUND);
}

/* A group's offsets deleted together: those in the database and those a batch ahead of the
 * deletion puts in the same write go (a delete for each, nothing more), those of a group whose
 * name extends it stay, and so do those a later batch of the same write puts (the group made
 * again). */
static void test_store_del_group_offsets(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    fy_store_stats before, after;
    uint64_t off = 0;
    done d1 = {0}, d2 = {0}, d3 = {0};
    offs o = {0};
    fy_wbatch_put_offset(b, "g1", 1, 0, 17);
    fy_wbatch_put_offset(b, "g1", 7, 3, 5);
    fy_wbatch_put_offset(b, "g10", 1, 0, 99);
    fy_wbatch_put_offset(b, "g2", 1, 0, 4);
    submit_sync(e, b);
    fy_store_get_stats(e->s, &before);

    fy_store_hold(e->s, true);
    b = fy_wbatch_new();
    fy_wbatch_put_offset(b, "g1", 9, 0, 1); /* on its way: ahead in the same write */
    fy_store_submit(e->s, b, done_cb, &d1);
    b = fy_wbatch_new();
    fy_wbatch_del_group_offsets(b, "g1");
    fy_store_submit(e->s, b, done_cb, &d2);
    b = fy_wbatch_new();
    fy_wbatch_put_offset(b, "g1", 7, 0, 2); /* the group again, after its deletion */
    fy_store_submit(e->s, b, done_cb, &d3);
    fy_store_hold(e->s, false);
    wait_for(e, &d3.calls, 1);
    assert_int_equal(d2.status, FY_OK);
    fy_store_get_stats(e->s, &after);
    assert_int_equal(after.commits - before.commits, 1);
    assert_int_equal(after.deletes - before.deletes, 3);

    reopen(e);
    assert_int_equal(fy_store_scan_offsets(e->s, "g1", offs_cb, &o), 0);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.topic[0], 7);
    assert_int_equal(o.queue[0], 0);
    assert_int_equal(o.off[0], 2);
    assert_int_equal(fy_store_get_offset(e->s, "g10", 1, 0, &off), FY_OK);
    assert_int_equal(off, 99);
    assert_int_equal(fy_store_get_offset(e->s, "g2", 1, 0, &off), FY_OK);
    assert_int_equal(off, 4);
}

/* fy_store_hold keeps submitted batches (inline writes too) from the database until released;
 * closing writes them regardless. */
static void test_store_hold_keeps_batches_queued(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    done d = {0};
    uint64_t off = 0, until = fy_mono_ms() + 100;

    fy_store_hold(e->s, true);
    fy_wbatch_put_offset(b, "g", 1, 0, 7);
    fy_store_submit(e->s, b, done_cb, &d);
    while (fy_mono_ms() < until) {
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(d.calls, 0);
    assert_int_equal(fy_store_get_offset(e->s, "g", 1, 0, &off), -FY_ENOTFOUND);
    fy_store_hold(e->s, false);
    wait_for(e, &d.calls, 1);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(fy_store_get_offset(e->s, "g", 1, 0, &off), FY_OK);
    assert_int_equal(off, 7);

    fy_store_hold(e->s, true);
    b = fy_wbatch_new();
    fy_wbatch_put_offset(b, "g", 1, 0, 8);
    fy_store_submit(e->s, b, NULL, NULL);
    reopen(e); /* writes what was held */
    assert_int_equal(fy_store_get_offset(e->s, "g", 1, 0, &off), FY_OK);
    assert_int_equal(off, 8);
}

typedef struct names {
    int n;
    char name[8][32];
    char val[8][32];
} names;

static int names_cb(void *arg, const char *name, const uint8_t *val, size_t len)
{
    names *o = arg;
    snprintf(o->name[o->n], 32, "%s", name);
    snprintf(o->val[o->n++], 32, "%.*s", (int)len, (const char *)val);
    return 0;
}

static void test_store_topic_and_group_config(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    fy_buf out = FY_BUF_INIT;
    names t = {0}, g = {0};

    fy_wbatch_put_topic(b, "orders", "q=8", 3);
    fy_wbatch_put_topic(b, "audit", "q=2", 3);
    fy_wbatch_put_group(b, "billing", "mode=c", 6);
    submit_sync(e, b);
    assert_int_equal(fy_store_get_topic(e->s, "orders", &out), FY_OK);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "q=8", 3);
    assert_int_equal(fy_store_get_topic(e->s, "billing", &out), -FY_ENOTFOUND);
    assert_int_equal(fy_store_get_group(e->s, "billing", &out), FY_OK);

    assert_int_equal(fy_store_scan_topics(e->s, names_cb, &t), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.name[0], "audit");
    assert_string_equal(t.val[0], "q=2");
    assert_string_equal(t.name[1], "orders");
    assert_int_equal(fy_store_scan_groups(e->s, names_cb, &g), 0);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.name[0], "billing");

    b = fy_wbatch_new();
    fy_wbatch_del_topic(b, "audit");
    fy_wbatch_del_group(b, "billing");
    submit_sync(e, b);
    memset(&t, 0, sizeof(t));
    assert_int_equal(fy_store_scan_topics(e->s, names_cb, &t), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(fy_store_get_group(e->s, "billing", &out), -FY_ENOTFOUND);
    fy_buf_free(&out);
}

typedef struct hits {
    int n;
    uint32_t queue[16];
    uint64_t off[16];
    uint64_t ms[16];
} hits;

static int hits_cb(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms)
{
    hits *h = arg;
    h->queue[h->n] = queue_id;
    h->off[h->n] = offset;
    h->ms[h->n++] = store_ms;
    return 0;
}

static void test_store_key_index(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    fy_slice k1[] = {fy_slice_str("order-1"), fy_slice_str("cust-9")};
    fy_slice k2[] = {fy_slice_str("order-10")};
    fy_record r1 = make_rec("orders", "one"), r2 = make_rec("orders", "two");
    done d = {0};
    hits h = {0};
    r1.keys = k1;
    r1.nkeys = 2;
    r2.keys = k2;
    r2.nkeys = 1;
    fy_wbatch_append(b, 1, 2, &r1);
    fy_wbatch_append(b, 1, 3, &r2);
    fy_wbatch_append(b, 1, 3, &r1);
    fy_store_submit(e->s, b, done_cb, &d);
    wait_for(e, &d.calls, 1);
    assert_int_equal(d.status, FY_OK);

    assert_int_equal(fy_store_query_key(e->s, 1, "order-1", 0, UINT64_MAX, 10, hits_cb, &h), 0);
    assert_int_equal(h.n, 2); /* not order-10 */
    assert_int_equal(h.queue[0], 2);
    assert_int_equal(h.off[0], 0);
    assert_int_equal(h.queue[1], 3);
    assert_int_equal(h.off[1], 1);
    assert_int_equal(h.ms[0], d.store_ms[0]);

    memset(&h, 0, sizeof(h));
    assert_int_equal(fy_store_query_key(e->s, 1, "order-1", 0, UINT64_MAX, 1, hits_cb, &h), 0);
    assert_int_equal(h.n, 1);
    memset(&h, 0, sizeof(h));
    assert_int_equal(
        fy_store_query_key(e->s, 1, "cust-9", d.store_ms[0] + 1, UINT64_MAX, 10, hits_cb, &h), 0);
    assert_int_equal(h.n, 0); /* outside the time range */
    assert_int_equal(fy_store_query_key(e->s, 2, "order-1", 0, UINT64_MAX, 10, hits_cb, &h), 0);
    assert_int_equal(h.n, 0); /* another topic */
}

typedef struct timers {
    int n;
    uint64_t when[16], seq[16];
    char body[16][16];
} timers;

static int timers_cb(void *arg, uint64_t when, uint64_t seq, const uint8_t *rec, size_t len)
{
    timers *t = arg;
    t->when[t->n] = when;
    t->seq[t->n] = seq;
    snprintf(t->body[t->n++], 16, "%.*s", (int)len, (const char *)rec);
    return 0;
}

static void test_store_timers(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    timers t = {0};
    uint64_t next;

    assert_int_equal(fy_store_next_timer(e->s, 0, &next), -FY_ENOTFOUND);
    fy_wbatch_put_timer(b, 3000, "c", 1);
    fy_wbatch_put_timer(b, 1000, "a", 1);
    fy_wbatch_put_timer(b, 1000, "b", 1); /* same time: kept, after "a" */
    fy_wbatch_put_timer(b, 9000, "z", 1);
    submit_sync(e, b);
    assert_int_equal(fy_store_next_timer(e->s, 0, &next), FY_OK);
    assert_int_equal(next, 1000);

    assert_int_equal(fy_store_scan_timers(e->s, 0, 3000, 10, timers_cb, &t), 0);
    assert_int_equal(t.n, 3);
    assert_string_equal(t.body[0], "a");
    assert_string_equal(t.body[1], "b");
    assert_string_equal(t.body[2], "c");
    assert_true(t.seq[1] > t.seq[0]);

    b = fy_wbatch_new();
    fy_wbatch_del_timer(b, t.when[0], t.seq[0]);
    submit_sync(e, b);

    /* After a reopen, new sequence numbers never collide with stored ones. */
    reopen(e);
    b = fy_wbatch_new();
    fy_wbatch_put_timer(b, 1000, "d", 1);
    submit_sync(e, b);
    memset(&t, 0, sizeof(t));
    assert_int_equal(fy_store_scan_timers(e->s, 0, 1000, 10, timers_cb, &t), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.body[0], "b");
    assert_string_equal(t.body[1], "d");
    memset(&t, 0, sizeof(t));
    assert_int_equal(fy_store_scan_timers(e->s, 0, UINT64_MAX, 2, timers_cb, &t), 0);
    assert_int_equal(t.n, 2); /* the limit */
    /* From a time on: earlier ones are not looked at. */
    memset(&t, 0, sizeof(t));
    assert_int_equal(fy_store_scan_timers(e->s, 1001, UINT64_MAX, 10, timers_cb, &t), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.body[0], "c");
    assert_string_equal(t.body[1], "z");
    assert_int_equal(fy_store_next_timer(e->s, 3001, &next), FY_OK);
    assert_int_equal(next, 9000);
    assert_int_equal(fy_store_next_timer(e->s, 9001, &next), -FY_ENOTFOUND);
}

typedef struct kvs {
    int n;
    char key[8][32];
    char val[8][32];
} kvs;

static int kvs_cb(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    kvs *o = arg;
    snprintf(o->key[o->n], 32, "%.*s", (int)klen, (const char *)k);
    snprintf(o->val[o->n++], 32, "%.*s", (int)vlen, (const char *)v);
    return 0;
}

typedef struct halves {
    int n;
    uint64_t id[8];
    char meta[8][16];
    char body[8][32];
    uint64_t rec_offset[8];
    uint64_t rec_store_ms[8];
} halves;

static int halves_cb(void *arg, uint64_t tx_id, const uint8_t *meta, size_t mlen,
                     const uint8_t *rec, size_t len)
{
    halves *h = arg;
    fy_record_view v;
    assert_true(h->n < 8);
    assert_int_equal(fy_record_decode(rec, len, &v), FY_OK);
    h->id[h->n] = tx_id;
    snprintf(h->meta[h->n], 16, "%.*s", (int)mlen, (const char *)meta);
    snprintf(h->body[h->n], 32, "%.*s", (int)v.body.len, (const char *)v.body.p);
    h->rec_offset[h->n] = v.queue_offset;
    h->rec_store_ms[h->n] = v.store_ms;
    h->n++;
    return 0;
}

/* Puts one half message with the given meta and body; returns its id. */
static uint64_t put_half(env *e, const char *meta, const char *body)
{
    fy_wbatch *b = fy_wbatch_new();
    fy_record r = make_rec("orders", body);
    fy_buf rec = FY_BUF_INIT;
    done d = {0};
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    assert_int_equal(fy_wbatch_put_half(b, meta, strlen(meta), rec.data, rec.len), 0);
    fy_store_submit(e->s, b, done_cb, &d);
    wait_for(e, &d.calls, 1);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.queue[0], UINT32_MAX);
    assert_true(d.store_ms[0] > 0);
    fy_buf_free(&rec);
    return d.offset[0];
}

static void test_store_half_messages(void **state)
{
    env *e = *state;
    halves h = {0};
    fy_wbatch *b;
    fy_buf out = FY_BUF_INIT, rec = FY_BUF_INIT;
    fy_record r = make_rec("orders", "pay");
    uint64_t a, c, d3, min, max;
    done d = {0};

    a = put_half(e, "m-a", "pay");
    c = put_half(e, "m-c", "ship");
    assert_true(c > a);
    /* A half is no message: the queue is untouched. */
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(max, 0);
    assert_int_equal(fy_store_get_half(e->s, a, halves_cb, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.meta[0], "m-a");
    assert_string_equal(h.body[0], "pay");
    assert_int_equal(h.rec_offset[0], a); /* the writer wrote the id into the header */
    assert_true(h.rec_store_ms[0] > 0);
    assert_int_equal(fy_store_get_half(e->s, a + 1000, halves_cb, &h), -FY_ENOTFOUND);

    /* Commit: the delete and the append in one batch. */
    b = fy_wbatch_new();
    fy_wbatch_del_half(b, a);
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    assert_int_equal(fy_wbatch_append_raw(b, 1, 0, rec.data, rec.len, false), 0);
    fy_store_submit(e->s, b, done_cb, &d);
    wait_for(e, &d.calls, 1);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(d.offset[0], 0);
    assert_int_equal(fy_store_get_half(e->s, a, halves_cb, &h), -FY_ENOTFOUND);
    assert_int_equal(fy_store_get(e->s, 1, 0, 0, &out), FY_OK);

    /* Rewrite (a check counted) and rollback. */
    d3 = put_half(e, "m-d", "third");
    b = fy_wbatch_new();
    fy_wbatch_update_half(b, d3, "m-d2", 4, rec.data, rec.len);
    submit_sync(e, b);
    memset(&h, 0, sizeof(h));
    assert_int_equal(fy_store_get_half(e->s, d3, halves_cb, &h), 0);
    assert_string_equal(h.meta[0], "m-d2");
    b = fy_wbatch_new();
    fy_wbatch_del_half(b, d3);
    submit_sync(e, b);

    /* Scans: in id order, from an id, bounded. */
    memset(&h, 0, sizeof(h));
    assert_int_equal(fy_store_scan_halves(e->s, 0, 10, halves_cb, &h), 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.id[0], c);
    put_half(e, "m-e", "e");
    memset(&h, 0, sizeof(h));
    assert_int_equal(fy_store_scan_halves(e->s, 0, 1, halves_cb, &h), 0);
    assert_int_equal(h.n, 1);
    memset(&h, 0, sizeof(h));
    assert_int_equal(fy_store_scan_halves(e->s, c + 1, 10, halves_cb, &h), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.body[0], "e");

    /* Halves survive a reopen; ids are never reused. */
    reopen(e);
    memset(&h, 0, sizeof(h));
    assert_int_equal(fy_store_scan_halves(e->s, 0, 10, halves_cb, &h), 0);
    assert_int_equal(h.n, 2);
    assert_true(put_half(e, "m-f", "f") > h.id[1]);
    fy_buf_free(&out);
    fy_buf_free(&rec);
}

/* A commit whose write fails leaves the half message in place and appends nothing. */
static void test_store_half_commit_is_atomic(void **state)
{
    env *e = *state;
    struct rlimit old, small;
    halves h = {0};
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);
    fy_record r;
    fy_buf rec = FY_BUF_INIT;
    fy_wbatch *b;
    uint64_t id, min, max;
    done d = {0};

    id = put_half(e, "m", "small");
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    r = make_rec("orders", big);
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    b = fy_wbatch_new();
    fy_wbatch_del_half(b, id);
    fy_wbatch_append_raw(b, 1, 0, rec.data, rec.len, false);
    fy_store_submit(e->s, b, done_cb, &d);
    wait_for(e, &d.calls, 1);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(d.status < 0);
    reopen(e);
    assert_int_equal(fy_store_get_half(e->s, id, halves_cb, &h), 0);
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(max, 0);
    fy_buf_free(&rec);
    free(big);
}

static void test_store_adapter_namespace(void **state)
{
    env *e = *state;
    fy_wbatch *b = fy_wbatch_new();
    fy_buf out = FY_BUF_INIT;
    kvs o = {0};
    fy_wbatch_put_adapter(b, "mqtt", "ret/a", 5, "1", 1);
    fy_wbatch_put_adapter(b, "mqtt", "ret/b", 5, "2", 1);
    fy_wbatch_put_adapter(b, "mqtt", "sess/x", 6, "3", 1);
    fy_wbatch_put_adapter(b, "mqtt2", "ret/c", 5, "4", 1);
    submit_sync(e, b);

    assert_int_equal(fy_store_get_adapter(e->s, "mqtt", "ret/b", 5, &out), FY_OK);
    assert_memory_equal(out.data, "2", 1);
    assert_int_equal(fy_store_get_adapter(e->s, "amqp", "ret/b", 5, &out), -FY_ENOTFOUND);
    assert_int_equal(fy_store_scan_adapter(e->s, "mqtt", "ret/", 4, kvs_cb, &o), 0);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.key[0], "ret/a");
    assert_string_equal(o.key[1], "ret/b");
    memset(&o, 0, sizeof(o));
    assert_int_equal(fy_store_scan_adapter(e->s, "mqtt", "", 0, kvs_cb, &o), 0);
    assert_int_equal(o.n, 3); /* not mqtt2's */

    b = fy_wbatch_new();
    fy_wbatch_del_adapter(b, "mqtt", "ret/a", 5);
    submit_sync(e, b);
    assert_int_equal(fy_store_get_adapter(e->s, "mqtt", "ret/a", 5, &out), -FY_ENOTFOUND);
    fy_buf_free(&out);
}

static void test_store_trim_queue(void **state)
{
    env *e = *state;
    const char *bodies[] = {"a", "b", "c", "d", "e"};
    done d = {0};
    fy_buf out = FY_BUF_INIT;
    uint64_t min, max;
    fy_store_stats st;
    append_sync(e, 0, bodies, 5, &d);
    fy_store_get_stats(e->s, &st);
    assert_int_equal(st.deletes, 0);
    fy_wbatch *b = fy_wbatch_new();
    fy_wbatch_trim_queue(b, 1, 0, 3);
    submit_sync(e, b);
    fy_store_get_stats(e->s, &st);
    assert_int_equal(st.deletes, 3); /* the messages (they have no keys to unindex) */
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(min, 3);
    assert_int_equal(max, 5);
    assert_int_equal(fy_store_get(e->s, 1, 0, 2, &out), -FY_ENOTFOUND);
    assert_int_equal(fy_store_get(e->s, 1, 0, 3, &out), FY_OK);
    reopen(e);
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(min, 3);
    assert_int_equal(max, 5);
    fy_buf_free(&out);
}

/* ---- Erasing a deleted topic ----------------------------------------------------------- */

static const char *const erase_groups[] = {"g1", "g2", "g10"};

/* Writes topic tid: n messages with the key "k" in each of its queues, and the offsets of three
 * groups for each queue. */
static void fill_topic(env *e, uint32_t tid, uint32_t queues, int n)
{
    fy_wbatch *b = fy_wbatch_new();
    fy_slice keys[1] = {fy_slice_str("k")};
    fy_record r = make_rec("t", "x");
    r.keys = keys;
    r.nkeys = 1;
    for (uint32_t q = 0; q < queues; q++) {
        for (int i = 0; i < n; i++) {
            fy_wbatch_append(b, tid, q, &r);
        }
        for (size_t g = 0; g < 3; g++) {
            fy_wbatch_put_offset(b, erase_groups[g], tid, q, (uint64_t)n);
        }
    }
    submit_sync(e, b);
}

/* Checks that topic tid has n messages per queue, its key index and its groups' offsets (n
 * = 0: that nothing of it is left, and its queues read as never written). */
static void check_topic(env *e, uint32_t tid, uint32_t queues, int n)
{
    fy_buf out = FY_BUF_INIT;
    hits h = {0};
    uint64_t min, max, off;
    int want_hits = (int)queues * n < 16 ? (int)queues * n : 16;
    for (uint32_t q = 0; q < queues; q++) {
        fy_store_queue_range(e->s, tid, q, &min, &max);
        assert_int_equal(min, 0);
        assert_int_equal(max, n);
        assert_int_equal(fy_store_get(e->s, tid, q, 0, &out), n ? FY_OK : -FY_ENOTFOUND);
        for (size_t g = 0; g < 3; g++) {
            assert_int_equal(fy_store_get_offset(e->s, erase_groups[g], tid, q, &off),
                             n ? FY_OK : -FY_ENOTFOUND);
        }
    }
    assert_int_equal(fy_store_query_key(e->s, tid, "k", 0, UINT64_MAX, 16, hits_cb, &h), 0);
    assert_int_equal(h.n, want_hits);
    fy_buf_free(&out);
}

static void check_counts(env *e, size_t queues, size_t erasing)
{
    fy_store_counts c;
    fy_store_get_counts(e->s, &c);
    assert_int_equal(c.queues, queues);
    assert_int_equal(c.next_offsets, queues);
    assert_int_equal(c.erasing, erasing);
}

/* Runs the loop until no erasing is left, or fails after 10 s. */
static void wait_erased(env *e)
{
    uint64_t deadline = fy_mono_ms() + 10000;
    fy_store_counts c;
    for (fy_store_get_counts(e->s, &c); c.erasing > 0; fy_store_get_counts(e->s, &c)) {
        assert_true(fy_mono_ms() < deadline);
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(200);
    }
}

static void reopen_chunked(env *e, size_t chunk)
{
    fy_store_opts o = {.dir = e->dir, .recover_every_ms = -1, .erase_chunk = chunk};
    char err[256];
    fy_store_close(e->s);
    e->s = NULL;
    if (fy_store_open(&o, e->base, &e->s, err, sizeof(err)) != FY_OK) {
        fail_msg("open: %s", err);
    }
}

/* The batch that deletes topic "t" (id 1, 3 queues) and erases it. */
static fy_wbatch *delete_t(void)
{
    fy_wbatch *b = fy_wbatch_new();
    fy_wbatch_del_topic(b, "t");
    fy_wbatch_erase_topic(b, 1, true);
    return b;
}

static void put_t(env *e)
{
    fy_wbatch *b = fy_wbatch_new();
    fy_wbatch_put_topic(b, "t", "\0\0\0\1", 4);
    submit_sync(e, b);
}

/* A topic erased: its messages, key index and every group's offsets are gone from the store,
 * and its queues from the store's memory (the counts are back to what they were); another
 * topic is untouched; a reopen brings nothing back; a topic of the same name (a new id) starts
 * empty. */
static void test_store_erase_topic_forgets_queues(void **state)
{
    env *e = *state;
    fy_buf out = FY_BUF_INIT;
    done d = {0};
    const char *bodies[] = {"a"};
    fill_topic(e, 1, 3, 5);
    fill_topic(e, 2, 1, 2);
    put_t(e);
    check_counts(e, 4, 0);
    check_topic(e, 1, 3, 5);

    submit_sync(e, delete_t());
    check_counts(e, 1, 0);
    check_topic(e, 1, 3, 0);
    check_topic(e, 2, 1, 2);
    assert_int_equal(fy_store_get_topic(e->s, "t", &out), -FY_ENOTFOUND);

    reopen(e);
    check_counts(e, 1, 0);
    check_topic(e, 1, 3, 0);
    check_topic(e, 2, 1, 2);
    /* "t" again, as id 3: empty, its first message at offset 0. */
    check_topic(e, 3, 3, 0);
    fy_wbatch *b = fy_wbatch_new();
    fy_record r = make_rec("t", bodies[0]);
    fy_wbatch_put_topic(b, "t", "\0\0\0\3", 4);
    fy_wbatch_append(b, 3, 0, &r);
    fy_store_submit(e->s, b, done_cb, &d);
    wait_for(e, &d.calls, 1);
    assert_int_equal(d.offset[0], 0);
    check_counts(e, 2, 0);
    fy_buf_free(&out);
}

/* An erasing forgets every queue the store has of the topic, in memory and on disk, however
 * far apart their ids (the caller does not say how many there are). */
static void test_store_erase_topic_forgets_every_queue(void **state)
{
    env *e = *state;
    const uint32_t far = UINT32_MAX - 1;
    fy_buf out = FY_BUF_INIT;
    uint64_t min, max;
    fill_topic(e, 1, 3, 2);
    {
        fy_wbatch *b = fy_wbatch_new();
        fy_record r = make_rec("t", "far");
        fy_wbatch_append(b, 1, 700, &r);
        fy_wbatch_put_offset(b, "g1", 1, 700, 1);
        fy_wbatch_append(b, 1, far, &r);
        submit_sync(e, b);
    }
    put_t(e);
    check_counts(e, 5, 0);
    submit_sync(e, delete_t());
    check_counts(e, 0, 0);
    check_topic(e, 1, 701, 0);
    fy_store_queue_range(e->s, 1, far, &min, &max);
    assert_int_equal(max, 0);
    assert_int_equal(fy_store_get(e->s, 1, far, 0, &out), -FY_ENOTFOUND);
    reopen(e);
    check_counts(e, 0, 0);
    check_topic(e, 1, 701, 0);
    fy_buf_free(&out);
}

/* Appends to a topic submitted before its erasing, and still queued with it, are written first
 * and erased with the rest (the erasing begins a commit of its own). */
static void test_store_erase_after_queued_appends(void **state)
{
    env *e = *state;
    const char *bodies[] = {"a", "b", "c"};
    done d1 = {0}, d2 = {0};
    fy_wbatch *b = fy_wbatch_new();
    fy_store_hold(e->s, true);
    for (int i = 0; i < 3; i++) {
        fy_record r = make_rec("t", bodies[i]);
        fy_wbatch_append(b, 1, (uint32_t)i, &r);
    }
    fy_store_submit(e->s, b, done_cb, &d1);
    fy_store_submit(e->s, delete_t(), done_cb, &d2);
    fy_store_hold(e->s, false);
    wait_for(e, &d2.calls, 1);
    assert_int_equal(d1.status, FY_OK);
    assert_int_equal(d2.status, FY_OK);
    check_topic(e, 1, 3, 0);
    check_counts(e, 0, 0);
    reopen(e);
    check_topic(e, 1, 3, 0);
    check_counts(e, 0, 0);
}

/* A completion callback that holds the writer: the next chunk of the erasing stays queued. */
static void hold_cb(void *arg, int status, fy_wbatch *b)
{
    env *e = arg;
    assert_int_equal(status, FY_OK);
    fy_store_hold(e->s, true);
    completions++;
}

/* The first chunk of an erasing (in a batch of its own, held after it) and what it leaves. */
static void erase_first_chunk(env *e)
{
    int want;
    fill_topic(e, 1, 3, 10);
    fill_topic(e, 2, 1, 2);
    put_t(e);
    want = completions + 1;
    fy_store_submit(e->s, delete_t(), hold_cb, e);
    wait_for(e, &completions, want);
    check_counts(e, 1, 1);
}

/* An erasing in chunks of 4 keys (99 keys: 18 writes), the process gone after the first one (the
 * topic's configuration deleted, the E record written, the next chunk never written): at the
 * next open the topic's queues are not loaded, read as never written, and the erasing goes on
 * to the end. */
static void test_store_erase_goes_on_after_a_crash(void **state)
{
    env *e = *state;
    uint64_t deadline = fy_mono_ms() + 10000;
    int status = -1;
    pid_t pid;
    fy_buf out = FY_BUF_INIT;
    reopen_chunked(e, 4);
    fill_topic(e, 1, 3, 10);
    fill_topic(e, 2, 1, 2);
    put_t(e);
    fy_store_close(e->s);
    e->s = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child begins the erasing and ends without closing the store: a crash. */
        fy_store_opts o = {.dir = e->dir, .recover_every_ms = -1, .erase_chunk = 4};
        fy_store_counts c;
        char err[256];
        int want = completions + 1;
        e->base = event_base_new();
        if (fy_store_open(&o, e->base, &e->s, err, sizeof(err)) != FY_OK) {
            _exit(2);
        }
        fy_store_submit(e->s, delete_t(), hold_cb, e);
        while (completions < want && fy_mono_ms() < deadline) {
            event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
            usleep(200);
        }
        fy_store_get_counts(e->s, &c);
        _exit(completions == want && c.erasing == 1 ? 0 : 3);
    }
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (fy_mono_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the child did not end");
        }
        usleep(1000);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    reopen_chunked(e, 4);
    assert_int_equal(fy_store_get_topic(e->s, "t", &out), -FY_ENOTFOUND);
    check_counts(e, 1, 1);
    for (uint32_t q = 0; q < 3; q++) {
        uint64_t min, max;
        fy_store_queue_range(e->s, 1, q, &min, &max);
        assert_int_equal(max, 0);
    }
    wait_erased(e);
    check_topic(e, 1, 3, 0);
    check_topic(e, 2, 1, 2);
    reopen(e);
    check_counts(e, 1, 0);
    check_topic(e, 1, 3, 0);
    fy_buf_free(&out);
}

/* A chunk of an erasing that fails with its write leaves the erasing to the recovery, which
 * goes on with it. */
static void test_store_erase_goes_on_after_recovery(void **state)
{
    env *e = *state;
    struct rlimit old, small;
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);
    done d = {0};
    reopen_chunked(e, 4);
    erase_first_chunk(e);
    /* The next chunk is held; a write too large for the log goes with it. */
    memset(big, 'z', big_len);
    big[big_len] = '\0';
    fy_wbatch *b = fy_wbatch_new();
    fy_record r = make_rec("t", big);
    fy_wbatch_append(b, 2, 0, &r);
    fy_store_submit(e->s, b, done_cb, &d);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fy_store_hold(e->s, false);
    wait_for(e, &d.calls, 1);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(d.status < 0);
    assert_false(fy_store_healthy(e->s));
    check_counts(e, 1, 1);

    assert_int_equal(fy_store_recover(e->s), FY_OK);
    wait_erased(e);
    check_topic(e, 1, 3, 0);
    check_topic(e, 2, 1, 2);
    reopen(e);
    check_counts(e, 1, 0);
    free(big);
}

static void test_store_second_open_is_refused(void **state)
{
    env *e = *state;
    fy_store_opts o = {.dir = e->dir};
    fy_store *s2 = NULL;
    char err[256];
    assert_int_equal(fy_store_open(&o, e->base, &s2, err, sizeof(err)), -FY_ELOCKED);
    assert_null(s2);
    assert_non_null(strstr(err, "in use"));
}

static void test_store_corrupt_database_is_an_error(void **state)
{
    env *e = *state;
    char path[4200];
    fy_store_opts o = {.dir = e->dir};
    fy_store *s2 = NULL;
    char err[256];
    FILE *f;
    fy_store_close(e->s);
    e->s = NULL;
    snprintf(path, sizeof(path), "%s/CURRENT", e->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("garbage-without-newline", f);
    fclose(f);
    assert_int_equal(fy_store_open(&o, e->base, &s2, err, sizeof(err)), -FY_ECORRUPT);
    assert_null(s2);
    assert_true(strlen(err) > 0);
    /* Not reset: the file is still what we wrote. */
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(err, sizeof(err), f));
    fclose(f);
    assert_string_equal(err, "garbage-without-newline");
    /* teardown must not close it again; reopen a fresh store elsewhere for it */
    fy_test_rmrf(e->dir);
    snprintf(e->dir, sizeof(e->dir), "%s", fy_test_tmpdir("store"));
    open_store(e, FY_FLUSH_ASYNC);
}

static void test_store_failed_write_is_not_acknowledged(void **state)
{
    env *e = *state;
    const char *bodies[] = {"kept-1", "kept-2"};
    done d = {0};
    struct rlimit old, small;
    fy_buf out = FY_BUF_INIT;
    uint64_t min, max;
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);

    append_sync(e, 0, bodies, 2, &d);
    assert_int_equal(d.status, FY_OK);

    /* The log file may grow no more: the next write fails with EFBIG. */
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    const char *bigs[] = {big};
    append_sync(e, 0, bigs, 1, &d);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(d.status < 0);
    assert_false(fy_store_healthy(e->s));
    assert_true(strlen(fy_store_last_error(e->s)) > 0);

    /* Refused from now on, and the range did not move. */
    append_sync(e, 0, bodies, 1, &d);
    assert_int_equal(d.status, -FY_EUNHEALTHY);
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(max, 2);
    assert_int_equal(fy_store_get(e->s, 1, 0, 1, &out), FY_OK); /* reads go on */

    /* Recovery reopens the database in place; nothing failed is there, offsets stay dense. */
    assert_int_equal(fy_store_recover(e->s), FY_OK);
    assert_true(fy_store_healthy(e->s));
    assert_string_equal(fy_store_last_error(e->s), "");
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(max, 2);
    assert_int_equal(fy_store_get(e->s, 1, 0, 2, &out), -FY_ENOTFOUND);
    append_sync(e, 0, bodies, 1, &d);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(d.offset[0], 2);
    assert_int_equal(fy_store_get(e->s, 1, 0, 0, &out), FY_OK);
    {
        fy_store_stats st;
        fy_store_get_stats(e->s, &st);
        assert_int_equal(st.write_errors, 1);
        assert_int_equal(st.recoveries, 1);
    }

    /* And after a restart, all three acknowledged messages are there. */
    reopen(e);
    assert_true(fy_store_healthy(e->s));
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(max, 3);
    append_sync(e, 0, bodies, 1, &d);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(d.offset[0], 3);
    fy_buf_free(&out);
    free(big);
}

/* The recovery timer brings the store back by itself once writes can succeed, and batches
 * queued while it was unhealthy are refused, not written later behind the producer's back. */
static void test_store_recovers_by_itself(void **state)
{
    env *e = *state;
    const char *bodies[] = {"a", "b"};
    done d = {0};
    struct rlimit old, small;
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);
    fy_store_opts o = {.dir = e->dir, .flush = FY_FLUSH_SYNC, .recover_every_ms = 50};
    char err[256];
    uint64_t deadline, min, max;

    fy_store_close(e->s);
    assert_int_equal(fy_store_open(&o, e->base, &e->s, err, sizeof(err)), FY_OK);
    append_sync(e, 0, bodies, 2, &d);
    assert_int_equal(d.status, FY_OK);

    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    memset(big, 'y', big_len);
    big[big_len] = '\0';
    const char *bigs[] = {big};
    append_sync(e, 0, bigs, 1, &d);
    assert_true(d.status < 0);
    setrlimit(RLIMIT_FSIZE, &old);

    deadline = fy_mono_ms() + 10000;
    while (!fy_store_healthy(e->s)) {
        assert_true(fy_mono_ms() < deadline);
        event_base_loop(e->base, EVLOOP_ONCE);
    }
    append_sync(e, 0, bodies, 1, &d);
    assert_int_equal(d.status, FY_OK);
    assert_int_equal(d.offset[0], 2);
    fy_store_queue_range(e->s, 1, 0, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 3);
    free(big);
}

int main(void)
{
    fy_log_set_level(FY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_append_assigns_dense_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_group_commit_keeps_submit_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_scan_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_reopen_recovers_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_offset_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_consumer_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_del_group_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_hold_keeps_batches_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_topic_and_group_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_key_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_half_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_half_commit_is_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_adapter_namespace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_trim_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_erase_topic_forgets_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_erase_topic_forgets_every_queue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_erase_after_queued_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_erase_goes_on_after_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_erase_goes_on_after_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_second_open_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_corrupt_database_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_failed_write_is_not_acknowledged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_recovers_by_itself, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
