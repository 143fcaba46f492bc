/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the core model on a real store: topics, produce with queue choice, clustering
 * allocation and rebalance, broadcast, tag filters, credit, ack / nack / member leave,
 * committed offsets across a restart of the core, start positions and reset by time. */
#include "broker/config.h"
#include "broker/core.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strmap.h"
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
#include <unistd.h>

#include <cmocka.h>

typedef struct env {
    char dir[4096];
    struct event_base *base;
    fy_store *store;
    fy_config *conf;
    fy_broker_config cfg;
    fy_core *core;
} env;

#define MAXD 4096

/* A subscription owner that records what it gets. */
typedef struct owner {
    fy_sub *sub;
    int n;
    uint64_t ids[MAXD];
    uint32_t queue[MAXD];
    uint64_t offset[MAXD];
    char body[MAXD][24];
    char tag[MAXD][16];
    uint64_t at_ms[MAXD]; /* wall time of arrival */
    uint32_t reconsume[MAXD];
    uint16_t nkeys[MAXD];
    char region[MAXD][8];
    int has_real_topic[MAXD];
    uint32_t topic_id[MAXD];
    bool redelivered[MAXD];
    int closed;
    int closed_status;
} owner;

static void on_deliver(void *arg, fy_sub *sub, const fy_delivery *d)
{
    owner *o = arg;
    fy_record_view v;
    assert_int_equal(fy_record_decode(d->record, d->len, &v), FY_OK);
    assert_int_equal(v.queue_offset, d->offset);
    assert_true(o->n < MAXD);
    o->ids[o->n] = d->id;
    o->queue[o->n] = d->queue_id;
    o->offset[o->n] = d->offset;
    snprintf(o->body[o->n], 24, "%.*s", (int)v.body.len, (const char *)v.body.p);
    snprintf(o->tag[o->n], 16, "%.*s", (int)v.tag.len, (const char *)v.tag.p);
    o->at_ms[o->n] = fy_wall_ms();
    o->reconsume[o->n] = v.reconsume;
    o->nkeys[o->n] = v.nkeys;
    {
        fy_slice val;
        o->region[o->n][0] = '\0';
        if (fy_record_prop_get(&v, "region", &val)) {
            snprintf(o->region[o->n], 8, "%.*s", (int)val.len, (const char *)val.p);
        }
        o->has_real_topic[o->n] = fy_record_prop_get(&v, FY_PROP_REAL_TOPIC, &val);
    }
    o->topic_id[o->n] = d->topic_id;
    o->redelivered[o->n] = d->redelivered;
    o->n++;
}

static void on_closed(void *arg, fy_sub *sub, int status, const char *reason)
{
    owner *o = arg;
    o->closed++;
    o->closed_status = status;
    o->sub = NULL;
}

static const fy_sub_ops ops = {on_deliver, on_closed};

/* Lets the store finish what the core submitted (e.g. offsets written by fy_core_free). */
static void drain_store(env *e)
{
    fy_store_stats st;
    uint64_t deadline = fy_mono_ms() + 10000;
    for (fy_store_get_stats(e->store, &st); st.pending > 0; fy_store_get_stats(e->store, &st)) {
        assert_true(fy_mono_ms() < deadline);
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(200);
    }
}

static void core_open(env *e)
{
    char err[256];
    drain_store(e);
    e->core = fy_core_new(e->base, e->store, &e->cfg, err, sizeof(err));
    if (!e->core) {
        fail_msg("core: %s", err);
    }
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof(*e));
    fy_store_opts so = {0};
    char err[256];
    snprintf(e->dir, sizeof(e->dir), "%s", fy_test_tmpdir("core"));
    e->base = event_base_new();
    e->conf = fy_config_new();
    assert_int_equal(fy_broker_config_register(e->conf, &e->cfg), FY_OK);
    so.dir = e->dir;
    assert_int_equal(fy_store_open(&so, e->base, &e->store, err, sizeof(err)), FY_OK);
    core_open(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    fy_store_hold(e->store, false); /* a test that failed while holding the writer */
    fy_core_free(e->core);
    fy_store_close(e->store);
    fy_config_free(e->conf);
    event_base_free(e->base);
    fy_test_rmrf(e->dir);
    free(e);
    return 0;
}

/* Runs the loop until cond(arg) holds, or fails after 10 s. */
static void run_until(env *e, bool (*cond)(void *), void *arg)
{
    uint64_t deadline = fy_mono_ms() + 10000;
    while (!cond(arg)) {
        assert_true(fy_mono_ms() < deadline);
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(200);
    }
}

/* Runs the loop for ms milliseconds (to show that nothing more arrives). */
static void run_for(env *e, uint64_t ms)
{
    uint64_t end = fy_mono_ms() + ms;
    while (fy_mono_ms() < end) {
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(500);
    }
}

typedef struct produced {
    int calls;
    int status;
    size_t n;
    fy_produce_result res[64];
} produced;

static void produce_cb(void *arg, int status, const fy_produce_result *res, size_t n)
{
    produced *p = arg;
    p->calls++;
    p->status = status;
    p->n = n;
    for (size_t i = 0; i < n && i < 64; i++) {
        p->res[i] = res[i];
    }
}

static bool produced_done(void *arg)
{
    return ((produced *)arg)->calls > 0;
}

/* A message to produce in a test: every field but topic may be NULL. */
typedef struct tmsg {
    const char *topic, *tag, *body, *shard, *key, *prop, *val;
} tmsg;

/* Produces one message and waits for its result. Returns what fy_core_produce returned (the
 * result goes to *out, if not NULL, when it succeeded). */
static int produce_msg(env *e, const tmsg *t, fy_produce_result *out)
{
    fy_record r = {0};
    fy_buf rec = FY_BUF_INIT;
    fy_slice keys[1] = {fy_slice_str(t->key)};
    fy_slice props[2] = {fy_slice_str(t->prop), fy_slice_str(t->val)};
    fy_produce_msg m = {0};
    produced p = {0};
    int rc;
    r.topic = fy_slice_str(t->topic);
    r.tag = fy_slice_str(t->tag);
    r.body = fy_slice_str(t->body);
    r.keys = keys;
    r.nkeys = t->key ? 1 : 0;
    r.props = props;
    r.nprops = t->prop ? 1 : 0;
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    m.record = (fy_slice){rec.data, rec.len};
    m.sharding_key = fy_slice_str(t->shard);
    rc = fy_core_produce(e->core, &m, 1, produce_cb, &p, NULL);
    if (rc == FY_OK) {
        run_until(e, produced_done, &p);
        assert_int_equal(p.status, FY_OK);
        if (out) {
            *out = p.res[0];
        }
    }
    fy_buf_free(&rec);
    return rc;
}

/* Produces one message (which must be accepted) and returns its result. */
static fy_produce_result produce(env *e, const char *topic, const char *tag, const char *body,
                                 const char *shard)
{
    tmsg t = {topic, tag, body, shard, NULL, NULL, NULL};
    fy_produce_result r;
    assert_int_equal(produce_msg(e, &t, &r), FY_OK);
    return r;
}

/* A message with property a=<val> (also its body) and a tag. */
static void produce_prop(env *e, const char *topic, const char *tag, const char *val)
{
    tmsg t = {topic, tag, val, NULL, NULL, "a", val};
    assert_int_equal(produce_msg(e, &t, NULL), FY_OK);
}

/* A message with one property name=val (val is also the body); returns fy_core_produce's code. */
static int produce_with(env *e, const char *topic, const char *name, const char *val,
                        fy_produce_result *out)
{
    tmsg t = {topic, NULL, val, NULL, NULL, name, val};
    return produce_msg(e, &t, out);
}

/* A message with a key and the property region=eu, to check that copies keep both. */
static void produce_keyed(env *e, const char *topic, const char *tag, const char *body,
                          const char *key)
{
    tmsg t = {topic, tag, body, NULL, key, "region", "eu"};
    assert_int_equal(produce_msg(e, &t, NULL), FY_OK);
}

static fy_sub *subscribe(env *e, owner *o, const char *group, const char *topic, const char *filter,
                         fy_sub_mode mode, fy_sub_start start)
{
    fy_sub_spec spec = {.group = group,
                        .topic = topic,
                        .filter = filter,
                        .mode = mode,
                        .start = start,
                        .start_ms = 0,
                        .client_id = "test",
                        .filter_type = FY_FILTER_TAG,
                        .errbuf = NULL,
                        .errbuf_len = 0,
                        .orderly = false};
    int err = 0;
    o->sub = fy_core_subscribe(e->core, &spec, &ops, o, &err);
    assert_non_null(o->sub);
    return o->sub;
}

typedef struct want {
    owner *o;
    int n;
} want;

static bool has_n(void *arg)
{
    want *w = arg;
    return w->o->n >= w->n;
}

static void wait_n(env *e, owner *o, int n)
{
    want w = {o, n};
    run_until(e, has_n, &w);
}

static bool topic_done(void *arg)
{
    return *(int *)arg != 1000;
}

static void topic_cb(void *arg, int status)
{
    *(int *)arg = status;
}

static void test_core_topic_create_and_names(void **state)
{
    env *e = *state;
    int st = 1000;
    fy_topic_info t;
    assert_int_equal(fy_core_topic_create(e->core, "orders", 4, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    assert_int_equal(fy_core_topic_get(e->core, "orders", &t), FY_OK);
    assert_int_equal(t.queues, 4);
    assert_int_equal(fy_core_topic_create(e->core, "orders", 4, NULL, NULL), -FY_EEXIST);
    assert_int_equal(fy_core_topic_create(e->core, "bad name", 4, NULL, NULL), -FY_EBADNAME);
    assert_int_equal(fy_core_topic_create(e->core, "x", 2000, NULL, NULL), -FY_EINVAL);
    assert_true(fy_core_name_valid("%RETRY%g-1.a_b", 14));
    assert_false(fy_core_name_valid("a/b", 3));
    assert_false(fy_core_name_valid("", 0));

    /* Topics survive a restart of the core, and ids are not reused. */
    fy_core_free(e->core);
    core_open(e);
    assert_int_equal(fy_core_topic_get(e->core, "orders", &t), FY_OK);
    assert_int_equal(t.queues, 4);
    fy_topic_info t2;
    st = 1000;
    assert_int_equal(fy_core_topic_create(e->core, "audit", 1, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(fy_core_topic_get(e->core, "audit", &t2), FY_OK);
    assert_true(t2.topic_id != t.topic_id);
}

static void test_core_produce_round_robin_and_sharding(void **state)
{
    env *e = *state;
    fy_produce_result r[16];
    fy_topic_info t;
    fy_buf rec = FY_BUF_INIT;
    for (int i = 0; i < 16; i++) {
        r[i] = produce(e, "auto", "", "x", "");
    }
    /* Auto-created with default_queues (8), spread round robin. */
    assert_int_equal(fy_core_topic_get(e->core, "auto", &t), FY_OK);
    assert_int_equal(t.queues, 8);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(r[i].queue_id, i % 8);
        assert_int_equal(r[i].offset, i / 8);
    }
    /* The same sharding key always lands in the same queue, in order. */
    fy_produce_result a = produce(e, "auto", "", "1", "customer-42");
    fy_produce_result b = produce(e, "auto", "", "2", "customer-42");
    assert_int_equal(a.queue_id, b.queue_id);
    assert_int_equal(b.offset, a.offset + 1);
    /* Lookup by message id. */
    assert_int_equal(fy_core_message_get(e->core, b.msgid, &rec), FY_OK);
    fy_record_view v;
    assert_int_equal(fy_record_decode(rec.data, rec.len, &v), FY_OK);
    assert_memory_equal(v.body.p, "2", 1);
    fy_buf_free(&rec);
}

static void test_core_produce_refuses_bad_input(void **state)
{
    env *e = *state;
    fy_produce_msg m[2];
    fy_record r = {0};
    fy_buf ok = FY_BUF_INIT, bad = FY_BUF_INIT, big = FY_BUF_INIT;
    size_t bad_index = 99;
    char *body = malloc(e->cfg.max_message_size + 1);
    memset(body, 'b', e->cfg.max_message_size + 1);

    r.topic = fy_slice_str("fine");
    fy_record_encode(&r, &ok);
    r.topic = fy_slice_str("not/fine");
    fy_record_encode(&r, &bad);
    r.topic = fy_slice_str("fine");
    r.body = (fy_slice){(const uint8_t *)body, e->cfg.max_message_size + 1};
    fy_record_encode(&r, &big);

    m[0] = (fy_produce_msg){{ok.data, ok.len}, {NULL, 0}, FY_PROTO_NATIVE};
    m[1] = (fy_produce_msg){{bad.data, bad.len}, {NULL, 0}, FY_PROTO_NATIVE};
    assert_int_equal(fy_core_produce(e->core, m, 2, produce_cb, NULL, &bad_index), -FY_EBADNAME);
    assert_int_equal(bad_index, 1);
    /* Nothing of the refused request exists, not even the automatic topic. */
    fy_topic_info t;
    assert_int_equal(fy_core_topic_get(e->core, "fine", &t), -FY_ENOTFOUND);

    m[1] = (fy_produce_msg){{big.data, big.len}, {NULL, 0}, FY_PROTO_NATIVE};
    assert_int_equal(fy_core_produce(e->core, m, 2, produce_cb, NULL, &bad_index), -FY_ETOOBIG);
    m[1] = (fy_produce_msg){{ok.data, ok.len - 1}, {NULL, 0}, FY_PROTO_NATIVE};
    assert_int_equal(fy_core_produce(e->core, m, 2, produce_cb, NULL, &bad_index), -FY_ECORRUPT);

    e->cfg.auto_create_topics = false;
    assert_int_equal(fy_core_produce(e->core, m, 1, produce_cb, NULL, &bad_index), -FY_ENOTFOUND);
    fy_buf_free(&ok);
    fy_buf_free(&bad);
    fy_buf_free(&big);
    free(body);
}

static void test_core_clustering_divides_queues(void **state)
{
    env *e = *state;
    static owner a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    int st = 1000;
    fy_core_topic_create(e->core, "jobs", 8, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "workers", "jobs", "*", FY_SUB_CLUSTERING, FY_START_LAST);
    subscribe(e, &b, "workers", "jobs", "*", FY_SUB_CLUSTERING, FY_START_LAST);
    subscribe(e, &c, "workers", "jobs", "*", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 1000);
    fy_sub_credit(b.sub, 1000);
    fy_sub_credit(c.sub, 1000);
    for (int i = 0; i < 80; i++) {
        char body[16];
        snprintf(body, sizeof(body), "m%d", i);
        produce(e, "jobs", "", body, "");
    }
    {
        uint64_t deadline = fy_mono_ms() + 10000;
        while (a.n + b.n + c.n < 80) {
            assert_true(fy_mono_ms() < deadline);
            run_for(e, 5);
        }
    }
    run_for(e, 50);
    assert_int_equal(a.n + b.n + c.n, 80); /* each message to exactly one member */
    /* 8 queues over 3 members: 3, 3, 2 queues of 10 messages each. */
    assert_int_equal(a.n, 30);
    assert_int_equal(b.n, 30);
    assert_int_equal(c.n, 20);
    for (int i = 0; i < a.n; i++) {
        assert_true(a.queue[i] <= 2);
    }
    for (int i = 0; i < c.n; i++) {
        assert_true(c.queue[i] >= 6);
    }
}

static void test_core_member_leave_releases_unacked(void **state)
{
    env *e = *state;
    static owner a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    int st = 1000;
    fy_core_topic_create(e->core, "q2", 2, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "g", "q2", "", FY_SUB_CLUSTERING, FY_START_LAST);
    subscribe(e, &b, "g", "q2", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 100);
    fy_sub_credit(b.sub, 100);
    for (int i = 0; i < 10; i++) {
        produce(e, "q2", "", "m", "");
    }
    wait_n(e, &a, 5);
    wait_n(e, &b, 5);
    /* a acks two, then leaves: its three others go to b, nothing is lost or duplicated. */
    assert_int_equal(fy_sub_ack(a.sub, a.ids[0]), FY_OK);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[1]), FY_OK);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[1]), -FY_ENOTFOUND); /* twice: stale */
    fy_sub_close(a.sub);
    wait_n(e, &b, 8);
    run_for(e, 50);
    assert_int_equal(b.n, 8);
    for (int i = 5; i < 8; i++) {
        assert_int_equal(b.queue[i], a.queue[0]);
        assert_true(b.offset[i] >= 2);
    }
}

static void test_core_credit_bounds_deliveries(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "g", "credit", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    for (int i = 0; i < 10; i++) {
        produce(e, "credit", "", "m", "");
    }
    run_for(e, 50);
    assert_int_equal(a.n, 0); /* no credit, nothing */
    fy_sub_credit(a.sub, 3);
    assert_int_equal(a.n, 0); /* never inside the call */
    wait_n(e, &a, 3);
    run_for(e, 50);
    assert_int_equal(a.n, 3);
    fy_sub_credit(a.sub, 100);
    wait_n(e, &a, 10);
}

static void test_core_nack_redelivers(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    int st = 1000;
    fy_core_topic_create(e->core, "one", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "g", "one", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 100);
    produce(e, "one", "", "first", "");
    wait_n(e, &a, 1);
    assert_int_equal(fy_sub_nack(a.sub, a.ids[0], FY_NACK_RELEASE), FY_OK);
    wait_n(e, &a, 2);
    assert_string_equal(a.body[1], "first");
    assert_int_equal(a.offset[1], a.offset[0]);
    assert_true(a.ids[1] != a.ids[0]);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[0]), -FY_ENOTFOUND);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[1]), FY_OK);
}

static void test_core_broadcast_every_member(void **state)
{
    env *e = *state;
    static owner a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    subscribe(e, &a, "fans", "news", "", FY_SUB_BROADCAST, FY_START_LAST);
    subscribe(e, &b, "fans", "news", "", FY_SUB_BROADCAST, FY_START_LAST);
    subscribe(e, &c, "fans", "news", "", FY_SUB_BROADCAST, FY_START_LAST);
    fy_sub_credit(a.sub, 100);
    fy_sub_credit(b.sub, 100);
    fy_sub_credit(c.sub, 100);
    for (int i = 0; i < 20; i++) {
        produce(e, "news", "", "n", "");
    }
    wait_n(e, &a, 20);
    wait_n(e, &b, 20);
    wait_n(e, &c, 20);
    /* The group cannot be joined in the other mode. */
    fy_sub_spec spec = {.group = "fans",
                        .topic = "news",
                        .filter = "",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_LAST,
                        .start_ms = 0,
                        .client_id = "x",
                        .filter_type = FY_FILTER_TAG,
                        .errbuf = NULL,
                        .errbuf_len = 0,
                        .orderly = false};
    int err = 0;
    assert_null(fy_core_subscribe(e->core, &spec, &ops, &a, &err));
    assert_int_equal(err, -FY_EINVAL);
}

static void test_core_tag_filter(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "g", "tags", "TagA || TagC", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 100);
    produce(e, "tags", "TagA", "1", "");
    produce(e, "tags", "TagB", "2", "");
    produce(e, "tags", "TagC", "3", "");
    produce(e, "tags", "", "4", "");
    wait_n(e, &a, 2);
    run_for(e, 50);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.tag[0], "TagA");
    assert_string_equal(a.tag[1], "TagC");

    fy_sub_spec spec = {.group = "g2",
                        .topic = "tags",
                        .filter = "TagA ||",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_LAST,
                        .start_ms = 0,
                        .client_id = "x",
                        .filter_type = FY_FILTER_TAG,
                        .errbuf = NULL,
                        .errbuf_len = 0,
                        .orderly = false};
    int err = 0;
    assert_null(fy_core_subscribe(e->core, &spec, &ops, &a, &err));
    assert_int_equal(err, -FY_EINVAL);
}

static void test_core_sql92_filter(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    char why[128] = "";
    int err = 0;
    fy_sub_spec spec = {.group = "g",
                        .topic = "sql",
                        .filter = "a > 5 AND TAGS <> 'skip'",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_LAST,
                        .start_ms = 0,
                        .client_id = "t",
                        .filter_type = FY_FILTER_SQL92,
                        .errbuf = why,
                        .errbuf_len = sizeof(why),
                        .orderly = false};
    a.sub = fy_core_subscribe(e->core, &spec, &ops, &a, &err);
    assert_non_null(a.sub);
    fy_sub_credit(a.sub, 100);
    produce_prop(e, "sql", "keep", "3");
    produce_prop(e, "sql", "keep", "7");
    produce_prop(e, "sql", "skip", "9");
    produce_prop(e, "sql", "keep", "x"); /* not a number: UNKNOWN, no match */
    produce_prop(e, "sql", "keep", "10.5");
    wait_n(e, &a, 2);
    run_for(e, 50);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.body[0], "7");
    assert_string_equal(a.body[1], "10.5");

    /* A selector that does not parse is refused, with the position. */
    fy_sub_spec bad = {.group = "g2",
                       .topic = "sql",
                       .filter = "a > ",
                       .mode = FY_SUB_CLUSTERING,
                       .start = FY_START_LAST,
                       .start_ms = 0,
                       .client_id = "t",
                       .filter_type = FY_FILTER_SQL92,
                       .errbuf = why,
                       .errbuf_len = sizeof(why),
                       .orderly = false};
    assert_null(fy_core_subscribe(e->core, &bad, &ops, &a, &err));
    assert_int_equal(err, -FY_EINVAL);
    assert_non_null(strstr(why, "position"));
}

static void test_core_delayed_messages(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    fy_produce_result r;
    char at[32];
    uint64_t t0;
    fy_record_view v;
    fy_buf rec = FY_BUF_INIT;
    uint16_t broker, queue;
    uint32_t topic_id;
    uint64_t seq;

    fy_core_free(e->core);
    fy_free(e->cfg.delay_levels);
    e->cfg.delay_levels = fy_strdup("200ms 400ms");
    e->cfg.max_delay_ms = 60000;
    core_open(e);
    subscribe(e, &a, "g", "later", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);

    t0 = fy_wall_ms();
    assert_int_equal(produce_with(e, "later", FY_PROP_DELAY_MS, "300", &r), FY_OK);
    /* Scheduled: no queue yet; the id says so. */
    assert_int_equal(r.queue_id, UINT32_MAX);
    assert_true(r.store_ms >= t0 + 300);
    fy_msgid_parse(r.msgid, &broker, &topic_id, &queue, &seq);
    assert_int_equal(queue, FY_MSGID_SCHEDULED);
    assert_int_equal(produce_with(e, "later", FY_PROP_DELAY_LEVEL, "1", &r), FY_OK);
    snprintf(at, sizeof(at), "%llu", (unsigned long long)(t0 + 100));
    assert_int_equal(produce_with(e, "later", FY_PROP_DELIVER_MS, at, &r), FY_OK);
    assert_int_equal(produce_with(e, "later", "plain", "now", &r), FY_OK);
    wait_n(e, &a, 4);
    /* Each one once, none before its time, none much after (100 ms is the promise; the test
     * allows more for slow machines). */
    for (int i = 0; i < 4; i++) {
        uint64_t due = strcmp(a.body[i], "now") == 0 ? t0
                       : strcmp(a.body[i], at) == 0  ? t0 + 100
                       : strcmp(a.body[i], "1") == 0 ? t0 + 200
                                                     : t0 + 300;
        assert_true(a.at_ms[i] >= due);
        assert_true(a.at_ms[i] < due + 2000);
        for (int k = 0; k < i; k++) {
            assert_string_not_equal(a.body[k], a.body[i]);
        }
    }
    topic_id = 0;
    for (int i = 0; i < 4; i++) {
        if (strcmp(a.body[i], "300") == 0) {
            topic_id = (uint32_t)i; /* index of the 300 ms one, checked below */
        }
    }
    /* A delivered delayed message carries the flag. */
    {
        fy_topic_info ti;
        fy_core_topic_get(e->core, "later", &ti);
        assert_int_equal(
            fy_store_get(e->store, ti.topic_id, a.queue[topic_id], a.offset[topic_id], &rec),
            FY_OK);
    }
    assert_int_equal(fy_record_decode(rec.data, rec.len, &v), FY_OK);
    assert_true(v.flags & FY_RECORD_F_DELAYED);

    /* Refused: a level out of range, a malformed value, a time beyond max_delay. */
    assert_int_equal(produce_with(e, "later", FY_PROP_DELAY_LEVEL, "3", &r), -FY_EINVAL);
    assert_int_equal(produce_with(e, "later", FY_PROP_DELAY_MS, "soon", &r), -FY_EINVAL);
    assert_int_equal(produce_with(e, "later", FY_PROP_DELAY_MS, "600000", &r), -FY_EINVAL);

    /* Pending across a restart: delivered after it, once due. */
    assert_int_equal(produce_with(e, "later", FY_PROP_DELAY_MS, "400", &r), FY_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fy_sub_ack(a.sub, a.ids[i]), FY_OK);
    }
    fy_sub_close(a.sub);
    fy_core_free(e->core);
    core_open(e);
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "g", "later", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 1);
    assert_string_equal(a.body[0], "400");
    fy_buf_free(&rec);
}

typedef struct qinfo {
    int n;
    uint64_t committed[16];
    uint64_t max[16];
} qinfo;

static void on_member(void *arg, const fy_group_member_info *m)
{
}

static void on_queue(void *arg, const fy_group_queue_info *q)
{
    qinfo *qi = arg;
    if (strncmp(q->topic, "%RETRY%", 7) == 0) {
        return; /* the group's retry topic: not what these tests look at */
    }
    qi->committed[q->queue_id] = q->committed;
    qi->max[q->queue_id] = q->max_offset;
    qi->n++;
}

static void test_core_committed_offset_survives_restart(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    int st = 1000;
    fy_sub_mode mode;
    qinfo qi = {0};
    fy_core_topic_create(e->core, "dur", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "g", "dur", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 100);
    for (int i = 0; i < 6; i++) {
        char body[8];
        snprintf(body, sizeof(body), "%d", i);
        produce(e, "dur", "", body, "");
    }
    wait_n(e, &a, 6);
    /* Ack 0, 1, 3: committed is 2 (the lowest unacked). */
    fy_sub_ack(a.sub, a.ids[0]);
    fy_sub_ack(a.sub, a.ids[1]);
    fy_sub_ack(a.sub, a.ids[3]);
    assert_int_equal(fy_core_group_describe(e->core, "g", &mode, on_member, on_queue, &qi), FY_OK);
    assert_int_equal(qi.committed[0], 2);
    assert_int_equal(qi.max[0], 6);

    /* Restart the core (the member is gone): the group resumes at 2; 3 comes again
     * (at-least-once), nothing before 2 does. */
    fy_core_free(e->core);
    core_open(e);
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "g", "dur", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 100);
    wait_n(e, &a, 4);
    run_for(e, 50);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.body[0], "2");
    assert_string_equal(a.body[3], "5");
}

/* fy_sub_ack_durable: done only once the committed offset past the delivery is stored, in the
 * order the acks were made; an unsettled earlier delivery holds it back; the stored offset
 * survives a restart (nothing acked durably comes again); waiters of a deleted group and of a
 * core being freed get -FY_ECANCELED. */
typedef struct durable_seen {
    int n;
    int order[8];
    int status[8];
} durable_seen;

static durable_seen g_durable;

static void durable_cb(void *arg, int status)
{
    int i = g_durable.n++;
    g_durable.order[i] = (int)(intptr_t)arg;
    g_durable.status[i] = status;
}

static bool durable_n(void *arg)
{
    return g_durable.n >= (int)(intptr_t)arg;
}

static void test_core_ack_durable(void **state)
{
    env *e = *state;
    static owner a, b;
    int st = 1000;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&g_durable, 0, sizeof(g_durable));
    fy_core_topic_create(e->core, "ad", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "g", "ad", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 100);
    for (int i = 0; i < 4; i++) {
        char body[8];
        snprintf(body, sizeof(body), "%d", i);
        produce(e, "ad", "", body, "");
    }
    wait_n(e, &a, 4);
    /* 2 and 1 acked durably while 0 is not settled: nothing is told. */
    assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[2], durable_cb, (void *)(intptr_t)2), FY_OK);
    assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[1], durable_cb, (void *)(intptr_t)1), FY_OK);
    run_for(e, 100);
    assert_int_equal(g_durable.n, 0);
    /* Settling 0 moves the committed offset to 3: both are told, in the order they were made. */
    fy_sub_ack(a.sub, a.ids[0]);
    run_until(e, durable_n, (void *)(intptr_t)2);
    assert_int_equal(g_durable.order[0], 2);
    assert_int_equal(g_durable.order[1], 1);
    assert_int_equal(g_durable.status[0], FY_OK);
    assert_int_equal(g_durable.status[1], FY_OK);
    assert_int_equal(fy_sub_ack_durable(a.sub, 999999, durable_cb, NULL), -FY_ENOTFOUND);

    /* When told, the store has the committed offset: a crash from here on starts at 3. */
    {
        uint64_t off = 0;
        assert_int_equal(fy_store_get_offset(e->store, "g", a.topic_id[0], 0, &off), FY_OK);
        assert_int_equal(off, 3);
    }

    /* 3 is acked durably behind nothing, but the group is deleted first: cancelled. */
    subscribe(e, &b, "g2", "ad", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(b.sub, 100);
    wait_n(e, &b, 4);
    assert_int_equal(fy_sub_ack_durable(b.sub, b.ids[3], durable_cb, (void *)(intptr_t)7), FY_OK);
    fy_sub_close(b.sub);
    st = 1000;
    assert_int_equal(fy_core_group_delete(e->core, "g2", topic_cb, &st), FY_OK);
    run_until(e, durable_n, (void *)(intptr_t)3);
    assert_int_equal(g_durable.order[2], 7);
    assert_int_equal(g_durable.status[2], -FY_ECANCELED);
    /* One left waiting (4, behind unsettled 3) when the core goes: cancelled too. */
    produce(e, "ad", "", "4", "");
    wait_n(e, &a, 5);
    assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[4], durable_cb, (void *)(intptr_t)8), FY_OK);
    fy_core_free(e->core);
    e->core = NULL;
    assert_int_equal(g_durable.n, 4);
    assert_int_equal(g_durable.order[3], 8);
    assert_int_equal(g_durable.status[3], -FY_ECANCELED);
    core_open(e);
}

static void test_core_start_positions_and_reset(void **state)
{
    env *e = *state;
    static owner first, last, byt;
    memset(&first, 0, sizeof(first));
    memset(&last, 0, sizeof(last));
    memset(&byt, 0, sizeof(byt));
    int st = 1000;
    fy_core_topic_create(e->core, "pos", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    produce(e, "pos", "", "old-0", "");
    fy_produce_result r1 = produce(e, "pos", "", "old-1", "");
    while (fy_wall_ms() <= r1.store_ms + 2) {
        usleep(1000);
    }
    uint64_t mark = fy_wall_ms();
    produce(e, "pos", "", "new-2", "");

    subscribe(e, &first, "gf", "pos", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    subscribe(e, &last, "gl", "pos", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_spec spec = {.group = "gt",
                        .topic = "pos",
                        .filter = "",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_TIME,
                        .start_ms = mark,
                        .client_id = "t",
                        .filter_type = FY_FILTER_TAG,
                        .errbuf = NULL,
                        .errbuf_len = 0,
                        .orderly = false};
    int err = 0;
    byt.sub = fy_core_subscribe(e->core, &spec, &ops, &byt, &err);
    assert_non_null(byt.sub);
    fy_sub_credit(first.sub, 10);
    fy_sub_credit(last.sub, 10);
    fy_sub_credit(byt.sub, 10);
    wait_n(e, &first, 3);
    wait_n(e, &byt, 1);
    run_for(e, 50);
    assert_int_equal(last.n, 0);
    assert_int_equal(byt.n, 1);
    assert_string_equal(byt.body[0], "new-2");

    /* Rewind gl to the start: it gets everything again. */
    st = 1000;
    assert_int_equal(fy_core_group_reset(e->core, "gl", "pos", 0, NULL, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    wait_n(e, &last, 3);
    assert_string_equal(last.body[0], "old-0");
    assert_int_equal(fy_core_group_reset(e->core, "nope", "pos", 0, NULL, NULL, NULL),
                     -FY_ENOTFOUND);
}

/* A reset of a group with no consumer in memory, and a member joining before the reset's
 * offsets are written: the member starts from the reset, not from the older stored offsets. */
static void test_core_reset_then_subscribe_before_written(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    int st = 1000;
    fy_sub_mode mode;
    qinfo qi = {0};
    fy_core_topic_create(e->core, "rw", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    produce(e, "rw", "", "m0", "");
    produce(e, "rw", "", "m1", "");
    produce(e, "rw", "", "m2", "");
    subscribe(e, &a, "g", "rw", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fy_sub_ack(a.sub, a.ids[i]), FY_OK);
    }
    fy_sub_close(a.sub);
    /* After a restart the group's position (3) is only in the store. */
    fy_core_free(e->core);
    core_open(e);

    /* The reset's batch stays queued while the member joins. */
    fy_store_hold(e->store, true);
    st = 1000;
    assert_int_equal(fy_core_group_reset(e->core, "g", "rw", 0, NULL, topic_cb, &st), FY_OK);
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "g", "rw", "", FY_SUB_CLUSTERING, FY_START_LAST);
    assert_int_equal(fy_core_group_describe(e->core, "g", &mode, on_member, on_queue, &qi), FY_OK);
    assert_int_equal(qi.committed[0], 0);
    fy_store_hold(e->store, false);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 3);
    assert_string_equal(a.body[0], "m0");
    assert_string_equal(a.body[2], "m2");
    fy_sub_close(a.sub);

    /* Offline (no consumer in memory), a reset shows in describe at once, before it is
     * written, and the stored offsets show again once it is. */
    fy_core_free(e->core);
    core_open(e);
    fy_store_hold(e->store, true);
    st = 1000;
    assert_int_equal(fy_core_group_reset(e->core, "g", "rw", UINT64_MAX, NULL, topic_cb, &st),
                     FY_OK);
    memset(&qi, 0, sizeof(qi));
    assert_int_equal(fy_core_group_describe(e->core, "g", &mode, on_member, on_queue, &qi), FY_OK);
    assert_int_equal(qi.committed[0], 3);
    fy_store_hold(e->store, false);
    run_until(e, topic_done, &st);
    memset(&qi, 0, sizeof(qi));
    assert_int_equal(fy_core_group_describe(e->core, "g", &mode, on_member, on_queue, &qi), FY_OK);
    assert_int_equal(qi.committed[0], 3);
}

/* Reopens the core with short retry settings. */
static void short_retries(env *e, const char *delays, uint64_t max_reconsume)
{
    fy_core_free(e->core);
    fy_free(e->cfg.retry_delays);
    e->cfg.retry_delays = fy_strdup(delays);
    e->cfg.max_reconsume = max_reconsume;
    core_open(e);
}

static void test_core_ack_timeout_redelivers(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    short_retries(e, "100ms", 16);
    e->cfg.ack_timeout_ms = 100;
    subscribe(e, &a, "g", "slow", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);
    produce(e, "slow", "", "late", "");
    wait_n(e, &a, 1);
    wait_n(e, &a, 2); /* not acked within 100 ms: back through the retry topic */
    assert_string_equal(a.body[1], "late");
    assert_int_equal(a.reconsume[0], 0);
    assert_int_equal(a.reconsume[1], 1);
    assert_true(a.topic_id[1] != a.topic_id[0]);
    assert_true(a.at_ms[1] >= a.at_ms[0] + 200); /* timeout + back-off */
    assert_int_equal(fy_sub_ack(a.sub, a.ids[1]), FY_OK);
    run_for(e, 400);
    assert_int_equal(a.n, 2);
}

static void test_core_retry_then_dead_letter(void **state)
{
    env *e = *state;
    static owner a, other, dlq;
    memset(&a, 0, sizeof(a));
    memset(&other, 0, sizeof(other));
    memset(&dlq, 0, sizeof(dlq));
    fy_sub_mode mode;
    qinfo qi = {0};
    short_retries(e, "50ms 100ms", 2);
    subscribe(e, &a, "billing", "pay", "", FY_SUB_CLUSTERING, FY_START_LAST);
    subscribe(e, &other, "audit", "pay", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);
    fy_sub_credit(other.sub, 10);
    produce_keyed(e, "pay", "TagX", "bad", "order-7");
    wait_n(e, &a, 1);
    wait_n(e, &other, 1);
    assert_int_equal(fy_sub_ack(other.sub, other.ids[0]), FY_OK);
    /* Fail it twice: back after 50 ms, then after 100 ms, reconsume counted. */
    assert_int_equal(fy_sub_nack(a.sub, a.ids[0], FY_NACK_RETRY), FY_OK);
    wait_n(e, &a, 2);
    assert_true(a.at_ms[1] >= a.at_ms[0] + 50);
    assert_int_equal(a.reconsume[1], 1);
    assert_string_equal(a.tag[1], "TagX");
    assert_int_equal(a.nkeys[1], 1);
    assert_string_equal(a.region[1], "eu");
    assert_int_equal(a.has_real_topic[1], 0); /* the internal property is not shown */
    assert_int_equal(fy_sub_nack(a.sub, a.ids[1], FY_NACK_RETRY), FY_OK);
    wait_n(e, &a, 3);
    assert_true(a.at_ms[2] >= a.at_ms[1] + 100);
    assert_int_equal(a.reconsume[2], 2);
    /* The third failure passes max_reconsume (2): the dead-letter queue. */
    assert_int_equal(fy_sub_nack(a.sub, a.ids[2], FY_NACK_RETRY), FY_OK);
    subscribe(e, &dlq, "inspect", "%DLQ%billing", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(dlq.sub, 10);
    wait_n(e, &dlq, 1);
    assert_string_equal(dlq.body[0], "bad");
    assert_int_equal(dlq.reconsume[0], 3);
    assert_int_equal(dlq.nkeys[0], 1);
    assert_string_equal(dlq.region[0], "eu");
    run_for(e, 300);
    assert_int_equal(a.n, 3);     /* no more deliveries to the failing group */
    assert_int_equal(other.n, 1); /* the other group never saw a retry */
    /* The failing group's offset moved on in the original topic. */
    assert_int_equal(fy_core_group_describe(e->core, "billing", &mode, on_member, on_queue, &qi),
                     FY_OK);
    assert_int_equal(qi.committed[0] + qi.committed[1] + qi.committed[2] + qi.committed[3] +
                         qi.committed[4] + qi.committed[5] + qi.committed[6] + qi.committed[7],
                     1);
    /* Rejected at once: straight to the dead-letter queue. */
    produce_keyed(e, "pay", "", "poison", "order-8");
    wait_n(e, &a, 4);
    assert_int_equal(fy_sub_nack(a.sub, a.ids[3], FY_NACK_REJECT), FY_OK);
    wait_n(e, &dlq, 2);
    assert_string_equal(dlq.body[1], "poison");
    assert_int_equal(dlq.reconsume[1], 1);
}

/* fy_core_group_each: notes a clustering group named "strict" without members. */
static void strict_seen(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    if (strcmp(name, "strict") == 0 && mode == FY_SUB_CLUSTERING && members == 0) {
        *(bool *)arg = true;
    }
}

/* Nacks the delivery at index i of o and waits for the next one. */
static void nack_and_wait(env *e, owner *o, int i)
{
    assert_int_equal(fy_sub_nack(o->sub, o->ids[i], FY_NACK_RETRY), FY_OK);
    wait_n(e, o, i + 2);
}

/* max_reconsume per group: a group set to 1 dead-letters after one retry while another group
 * of the same topic follows the broker's default; the setting survives a restart of the core,
 * can be made before the group has members, and goes back to the default. */
static void test_core_group_max_reconsume(void **state)
{
    env *e = *state;
    static owner strict, lenient, dlq;
    memset(&strict, 0, sizeof(strict));
    memset(&lenient, 0, sizeof(lenient));
    memset(&dlq, 0, sizeof(dlq));
    fy_group_config gc;
    int st = 1000;
    bool found;
    short_retries(e, "30ms", 16);

    /* Set before the group exists: it is created, in clustering mode, with no member. */
    assert_int_equal(fy_core_group_config_get(e->core, "strict", &gc), -FY_ENOTFOUND);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "strict", 1, &gc, topic_cb, &st),
                     FY_OK);
    assert_int_equal(gc.mode, FY_SUB_CLUSTERING);
    assert_int_equal(gc.max_reconsume, 1);
    assert_int_equal(gc.max_reconsume_effective, 1);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    found = false;
    fy_core_group_each(e->core, strict_seen, &found);
    assert_true(found);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "strict", 65, NULL, NULL, NULL),
                     -FY_EINVAL);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "strict", -2, NULL, NULL, NULL),
                     -FY_EINVAL);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "bad name", 1, NULL, NULL, NULL),
                     -FY_EBADNAME);

    /* A restart keeps it (the group has no member and no offsets yet). */
    fy_core_free(e->core);
    core_open(e);
    assert_int_equal(fy_core_group_config_get(e->core, "strict", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, 1);
    assert_int_equal(fy_core_group_config_get(e->core, "lenient", &gc), -FY_ENOTFOUND);

    subscribe(e, &strict, "strict", "mr", "", FY_SUB_CLUSTERING, FY_START_LAST);
    subscribe(e, &lenient, "lenient", "mr", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(strict.sub, 100);
    fy_sub_credit(lenient.sub, 100);
    assert_int_equal(fy_core_group_config_get(e->core, "lenient", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, FY_GROUP_MAX_RECONSUME_DEFAULT);
    assert_int_equal(gc.max_reconsume_effective, 16);
    produce(e, "mr", "", "bad", "");
    wait_n(e, &strict, 1);
    wait_n(e, &lenient, 1);
    /* strict: one retry, then the dead-letter queue. */
    nack_and_wait(e, &strict, 0);
    assert_int_equal(strict.reconsume[1], 1);
    assert_int_equal(fy_sub_nack(strict.sub, strict.ids[1], FY_NACK_RETRY), FY_OK);
    subscribe(e, &dlq, "look", "%DLQ%strict", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(dlq.sub, 100);
    wait_n(e, &dlq, 1);
    assert_string_equal(dlq.body[0], "bad");
    assert_int_equal(dlq.reconsume[0], 2);
    /* lenient keeps retrying past that. */
    for (int i = 0; i < 3; i++) {
        nack_and_wait(e, &lenient, i);
    }
    assert_int_equal(lenient.reconsume[3], 3);
    assert_int_equal(fy_sub_ack(lenient.sub, lenient.ids[3]), FY_OK);
    run_for(e, 150);
    assert_int_equal(strict.n, 2);
    assert_int_equal(fy_sub_ack(dlq.sub, dlq.ids[0]), FY_OK);
    fy_sub_close(strict.sub);
    fy_sub_close(lenient.sub);
    fy_sub_close(dlq.sub);

    /* After a restart, with members consuming again: still one retry for strict. */
    fy_core_free(e->core);
    core_open(e);
    memset(&strict, 0, sizeof(strict));
    memset(&dlq, 0, sizeof(dlq));
    subscribe(e, &strict, "strict", "mr", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(strict.sub, 100);
    produce(e, "mr", "", "bad2", "");
    wait_n(e, &strict, 1);
    nack_and_wait(e, &strict, 0);
    assert_int_equal(fy_sub_nack(strict.sub, strict.ids[1], FY_NACK_RETRY), FY_OK);
    subscribe(e, &dlq, "look", "%DLQ%strict", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(dlq.sub, 100);
    wait_n(e, &dlq, 1);
    assert_string_equal(dlq.body[0], "bad2"); /* "look" acknowledged the first one */

    /* Back to the broker's default, which a restart keeps too. */
    st = 1000;
    assert_int_equal(fy_core_group_set_max_reconsume(
                         e->core, "strict", FY_GROUP_MAX_RECONSUME_DEFAULT, &gc, topic_cb, &st),
                     FY_OK);
    assert_int_equal(gc.max_reconsume_effective, 16);
    run_until(e, topic_done, &st);
    fy_sub_close(strict.sub);
    fy_sub_close(dlq.sub);
    fy_core_free(e->core);
    core_open(e);
    assert_int_equal(fy_core_group_config_get(e->core, "strict", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, FY_GROUP_MAX_RECONSUME_DEFAULT);
    assert_int_equal(gc.max_reconsume_effective, 16);

    /* Broadcast groups have no retry topic. */
    memset(&dlq, 0, sizeof(dlq));
    subscribe(e, &dlq, "fans", "mr", "", FY_SUB_BROADCAST, FY_START_LAST);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "fans", 3, NULL, NULL, NULL),
                     -FY_ENOTSUP);
    fy_sub_close(dlq.sub);
}

/* A group record of one byte (mode only, as written before per-group settings) still loads,
 * with the broker's max_reconsume. */
static void test_core_group_old_record_loads(void **state)
{
    env *e = *state;
    fy_group_config gc;
    fy_wbatch *b = fy_wbatch_new();
    uint8_t mode = FY_SUB_BROADCAST;
    fy_wbatch_put_group(b, "old-bc", &mode, 1);
    mode = FY_SUB_CLUSTERING;
    fy_wbatch_put_group(b, "old-cl", &mode, 1);
    fy_store_submit(e->store, b, NULL, NULL);
    fy_core_free(e->core);
    core_open(e);
    assert_int_equal(fy_core_group_config_get(e->core, "old-bc", &gc), FY_OK);
    assert_int_equal(gc.mode, FY_SUB_BROADCAST);
    assert_int_equal(gc.max_reconsume, FY_GROUP_MAX_RECONSUME_DEFAULT);
    assert_int_equal(fy_core_group_config_get(e->core, "old-cl", &gc), FY_OK);
    assert_int_equal(gc.mode, FY_SUB_CLUSTERING);
    assert_int_equal(gc.max_reconsume, FY_GROUP_MAX_RECONSUME_DEFAULT);
    assert_int_equal(gc.max_reconsume_effective, e->cfg.max_reconsume);
}

static void test_core_topic_delete_closes_subscriptions(void **state)
{
    env *e = *state;
    static owner a, b1, b2;
    memset(&a, 0, sizeof(a));
    memset(&b1, 0, sizeof(b1));
    memset(&b2, 0, sizeof(b2));
    int st = 1000;
    fy_topic_info t;
    fy_produce_msg m;
    fy_record r = {0};
    fy_buf rec = FY_BUF_INIT;
    produced late = {0};
    uint32_t old_id;
    uint64_t min, max;
    subscribe(e, &a, "g", "gone", "", FY_SUB_CLUSTERING, FY_START_LAST);
    /* Broadcast members: their consumers go with them while the topic is deleted. */
    subscribe(e, &b1, "fans", "gone", "", FY_SUB_BROADCAST, FY_START_LAST);
    subscribe(e, &b2, "fans", "gone", "", FY_SUB_BROADCAST, FY_START_LAST);
    produce(e, "gone", "", "x", "");
    fy_core_topic_get(e->core, "gone", &t);
    old_id = t.topic_id;
    /* A produce still on its way to the store when the delete comes. */
    r.topic = fy_slice_str("gone");
    r.body = fy_slice_str("late");
    fy_record_encode(&r, &rec);
    m.record = (fy_slice){rec.data, rec.len};
    m.sharding_key = fy_slice_str("");
    assert_int_equal(fy_core_produce(e->core, &m, 1, produce_cb, &late, NULL), FY_OK);
    assert_int_equal(fy_core_topic_delete(e->core, "gone", topic_cb, &st), FY_OK);
    assert_int_equal(a.closed, 1);
    assert_int_equal(a.closed_status, -FY_ENOTFOUND);
    assert_int_equal(b1.closed + b2.closed, 2);
    run_until(e, topic_done, &st);
    run_until(e, produced_done, &late);
    assert_int_equal(fy_core_topic_get(e->core, "gone", &t), -FY_ENOTFOUND);
    assert_int_equal(fy_core_topic_delete(e->core, "gone", NULL, NULL), -FY_ENOTFOUND);
    /* Nothing of the old topic is left in the store, the late message included. */
    drain_store(e);
    for (uint32_t q = 0; q < 8; q++) {
        fy_buf out = FY_BUF_INIT;
        fy_store_queue_range(e->store, old_id, q, &min, &max);
        assert_int_equal(min, max);
        assert_int_equal(fy_store_get(e->store, old_id, q, 0, &out), -FY_ENOTFOUND);
        fy_buf_free(&out);
    }
    fy_buf_free(&rec);
}

/* The store's in-memory counts are back to `want` (both the loop's ranges and the writer's next
 * offsets). */
typedef struct counts_want {
    env *e;
    fy_store_counts want;
} counts_want;

static bool counts_back(void *arg)
{
    counts_want *w = arg;
    fy_store_counts now;
    fy_store_get_counts(w->e->store, &now);
    return now.queues == w->want.queues && now.next_offsets == w->want.next_offsets;
}

static void wait_counts(env *e, const fy_store_counts *target)
{
    counts_want w = {e, *target};
    run_until(e, counts_back, &w);
}

static int count_key(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms)
{
    (*(int *)arg)++;
    return 0;
}

/* Closes the core and the store and opens both again on the same directory. */
static void restart_all(env *e)
{
    fy_store_opts so = {.dir = e->dir};
    char err[256];
    fy_core_free(e->core);
    fy_store_close(e->store);
    assert_int_equal(fy_store_open(&so, e->base, &e->store, err, sizeof(err)), FY_OK);
    core_open(e);
}

/* Deleting a topic forgets its queues in the store, in memory and on disk: the store's counts
 * come back to what they were before the topic was made, its messages, key index and committed
 * offsets are gone, a restart brings none of it back, and a topic of the same name made again
 * starts empty. */
static void test_core_topic_delete_forgets_queues(void **state)
{
    env *e = *state;
    static owner a, c;
    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    int st = 1000;
    fy_store_counts base, now;
    fy_topic_info t, keep;
    fy_buf out = FY_BUF_INIT;
    uint64_t off, min, max;
    uint32_t old_id;
    int keys = 0;
    fy_produce_result kept = produce(e, "keep", "", "stays", "");
    drain_store(e);
    fy_store_get_counts(e->store, &base);
    assert_int_equal(base.queues, 1);

    fy_core_topic_create(e->core, "t", 4, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "g", "t", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    subscribe(e, &c, "fans", "t", "", FY_SUB_BROADCAST, FY_START_FIRST);
    fy_sub_credit(a.sub, 100);
    for (int i = 0; i < 8; i++) {
        produce_keyed(e, "t", "", "m", "k1");
    }
    wait_n(e, &a, 8);
    for (int i = 0; i < 8; i++) {
        fy_sub_ack(a.sub, a.ids[i]);
    }
    fy_core_topic_get(e->core, "t", &t);
    old_id = t.topic_id;
    /* A restart stores the group's offsets and loads the topic from the store. */
    restart_all(e);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues + 4);
    assert_int_equal(fy_store_get_offset(e->store, "g", old_id, 0, &off), FY_OK);
    assert_int_equal(off, 2);
    memset(&c, 0, sizeof(c));
    subscribe(e, &c, "fans", "t", "", FY_SUB_BROADCAST, FY_START_FIRST);

    st = 1000;
    assert_int_equal(fy_core_topic_delete(e->core, "t", topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    assert_int_equal(c.closed, 1);
    wait_counts(e, &base);
    for (uint32_t q = 0; q < 4; q++) {
        assert_int_equal(fy_store_get(e->store, old_id, q, 0, &out), -FY_ENOTFOUND);
        assert_int_equal(fy_store_get_offset(e->store, "g", old_id, q, &off), -FY_ENOTFOUND);
    }
    assert_int_equal(
        fy_store_query_key(e->store, old_id, "k1", 0, UINT64_MAX, 100, count_key, &keys), FY_OK);
    assert_int_equal(keys, 0);

    /* A topic of this run: the offsets its group stored are deleted too. */
    {
        static owner h;
        fy_topic_info u;
        int stored = 1000;
        memset(&h, 0, sizeof(h));
        st = 1000;
        fy_core_topic_create(e->core, "u", 2, topic_cb, &st);
        run_until(e, topic_done, &st);
        fy_core_topic_get(e->core, "u", &u);
        subscribe(e, &h, "h", "u", "", FY_SUB_CLUSTERING, FY_START_FIRST);
        fy_sub_credit(h.sub, 10);
        produce(e, "u", "", "m", "");
        wait_n(e, &h, 1);
        assert_int_equal(fy_sub_ack_durable(h.sub, h.ids[0], topic_cb, &stored), FY_OK);
        run_until(e, topic_done, &stored);
        assert_int_equal(fy_store_get_offset(e->store, "h", u.topic_id, h.queue[0], &off), FY_OK);
        st = 1000;
        assert_int_equal(fy_core_topic_delete(e->core, "u", topic_cb, &st), FY_OK);
        run_until(e, topic_done, &st);
        wait_counts(e, &base);
        for (uint32_t q = 0; q < 2; q++) {
            assert_int_equal(fy_store_get_offset(e->store, "h", u.topic_id, q, &off),
                             -FY_ENOTFOUND);
        }
    }

    /* Nothing comes back at a restart. */
    restart_all(e);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues);
    assert_int_equal(now.next_offsets, base.next_offsets);
    assert_int_equal(fy_core_topic_get(e->core, "t", &t), -FY_ENOTFOUND);

    /* The same name again: a new id, empty queues, the group starts from nothing. */
    st = 1000;
    fy_core_topic_create(e->core, "t", 4, topic_cb, &st);
    run_until(e, topic_done, &st);
    fy_core_topic_get(e->core, "t", &t);
    assert_true(t.topic_id != old_id);
    for (uint32_t q = 0; q < 4; q++) {
        fy_store_queue_range(e->store, t.topic_id, q, &min, &max);
        assert_int_equal(max, 0);
    }
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "g", "t", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    run_for(e, 50);
    assert_int_equal(a.n, 0);
    produce(e, "t", "", "new", "");
    wait_n(e, &a, 1);
    assert_string_equal(a.body[0], "new");
    assert_int_equal(a.offset[0], 0);
    /* The other topic is untouched. */
    assert_int_equal(fy_core_topic_get(e->core, "keep", &keep), FY_OK);
    assert_int_equal(fy_core_message_get(e->core, kept.msgid, &out), FY_OK);
    fy_buf_free(&out);
}

/* Checks that the store holds nothing of topic id tid in queues 0..queues-1: no message, no key
 * index entry, no offset of group g, and no queue range. */
static void check_nothing_of(env *e, uint32_t tid, uint32_t queues, const char *g, const char *key)
{
    fy_buf out = FY_BUF_INIT;
    uint64_t min, max, off;
    int keys = 0;
    for (uint32_t q = 0; q < queues; q++) {
        fy_store_queue_range(e->store, tid, q, &min, &max);
        assert_int_equal(max, 0);
        assert_int_equal(fy_store_get(e->store, tid, q, 0, &out), -FY_ENOTFOUND);
        assert_int_equal(fy_store_get_offset(e->store, g, tid, q, &off), -FY_ENOTFOUND);
    }
    assert_int_equal(fy_store_query_key(e->store, tid, key, 0, UINT64_MAX, 100, count_key, &keys),
                     FY_OK);
    assert_int_equal(keys, 0);
    fy_buf_free(&out);
}

/* A topic that has queues above its queue count (it had 8; its record now says 4): deleting it
 * erases every queue the store knows of it, not only those below the count. The store's counts
 * (/metrics ferry_store_queues) are back to what they were at once, and nothing of it is in
 * the store, then or after a restart. */
static void test_core_topic_delete_erases_queues_above_count(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    int st = 1000;
    fy_store_counts base, now;
    fy_topic_info t;
    fy_wbatch *b;
    uint8_t conf[16];
    uint64_t off;
    uint32_t id;
    produce(e, "keep", "", "stays", "");
    drain_store(e);
    fy_store_get_counts(e->store, &base);

    fy_core_topic_create(e->core, "wide", 8, topic_cb, &st);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "g", "wide", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 100);
    for (int i = 0; i < 16; i++) {
        produce_keyed(e, "wide", "", "m", "k1");
    }
    wait_n(e, &a, 16);
    for (int i = 0; i < 16; i++) {
        fy_sub_ack(a.sub, a.ids[i]);
    }
    fy_core_topic_get(e->core, "wide", &t);
    id = t.topic_id;

    /* The record says 4 queues from the next start; queues 4..7 keep their messages and
     * offsets. */
    fy_be32_put(conf, id);
    fy_be32_put(conf + 4, 4);
    fy_be64_put(conf + 8, fy_wall_ms());
    b = fy_wbatch_new();
    fy_wbatch_put_topic(b, "wide", conf, sizeof(conf));
    fy_store_submit(e->store, b, NULL, NULL);
    restart_all(e);
    assert_int_equal(fy_core_topic_get(e->core, "wide", &t), FY_OK);
    assert_int_equal(t.queues, 4);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues + 8);
    assert_int_equal(fy_store_get_offset(e->store, "g", id, 7, &off), FY_OK);
    assert_int_equal(off, 2);

    st = 1000;
    assert_int_equal(fy_core_topic_delete(e->core, "wide", topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    drain_store(e);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues);
    assert_int_equal(now.next_offsets, base.next_offsets);
    assert_int_equal(now.erasing, 0);
    check_nothing_of(e, id, 8, "g", "k1");

    restart_all(e);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues);
    assert_int_equal(now.next_offsets, base.next_offsets);
    check_nothing_of(e, id, 8, "g", "k1");
}

/* Queue state of a topic id with no topic (left by a crash of an older ferryd between deleting
 * a topic and deleting its messages) is erased when the core opens: it is not carried in
 * memory from then on, and the topic ids given out later start past it. */
static void test_core_open_erases_queues_of_unknown_topics(void **state)
{
    env *e = *state;
    fy_store_counts base, now;
    fy_wbatch *b;
    fy_record r = {0};
    fy_slice keys[1] = {fy_slice_str("k")};
    fy_buf out = FY_BUF_INIT;
    fy_topic_info t;
    uint64_t off;
    int st = 1000, n = 0;
    produce(e, "keep", "", "stays", "");
    fy_core_free(e->core);
    drain_store(e);
    fy_store_get_counts(e->store, &base);
    r.topic = fy_slice_str("orphan");
    r.body = fy_slice_str("x");
    r.keys = keys;
    r.nkeys = 1;
    b = fy_wbatch_new();
    for (uint32_t q = 0; q < 3; q++) {
        fy_wbatch_append(b, 77, q, &r);
        fy_wbatch_put_offset(b, "g", 77, q, 1);
    }
    fy_store_submit(e->store, b, NULL, NULL);
    drain_store(e);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues + 3);

    core_open(e);
    wait_counts(e, &base);
    for (uint32_t q = 0; q < 3; q++) {
        assert_int_equal(fy_store_get(e->store, 77, q, 0, &out), -FY_ENOTFOUND);
        assert_int_equal(fy_store_get_offset(e->store, "g", 77, q, &off), -FY_ENOTFOUND);
    }
    assert_int_equal(fy_store_query_key(e->store, 77, "k", 0, UINT64_MAX, 10, count_key, &n),
                     FY_OK);
    assert_int_equal(n, 0);
    fy_core_topic_create(e->core, "next", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    fy_core_topic_get(e->core, "next", &t);
    assert_true(t.topic_id > 77);
    restart_all(e);
    fy_store_get_counts(e->store, &now);
    assert_int_equal(now.queues, base.queues);
    fy_buf_free(&out);
}

/* Closes the core and the store and opens both again, the store recovering from a failed write
 * only when the test calls fy_store_recover. */
static void restart_no_recovery(env *e)
{
    fy_store_opts so = {.dir = e->dir, .recover_every_ms = -1};
    char err[256];
    fy_core_free(e->core);
    fy_store_close(e->store);
    assert_int_equal(fy_store_open(&so, e->base, &e->store, err, sizeof(err)), FY_OK);
    core_open(e);
}

/* Submits a record too large for the log under release_failing's RLIMIT_FSIZE: the write that
 * takes it fails, with every batch in it. */
static void submit_too_large(env *e)
{
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);
    fy_record r = {0};
    fy_wbatch *b;
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    r.topic = fy_slice_str("other");
    r.body = fy_slice_str(big);
    b = fy_wbatch_new();
    assert_true(fy_wbatch_append(b, 999999, 0, &r) >= 0);
    fy_store_submit(e->store, b, NULL, NULL);
    free(big);
}

/* Lets the writer go on with what the store holds (fy_store_hold) under an RLIMIT_FSIZE the log
 * has room for until the record of submit_too_large, and runs the loop until cond(arg). The
 * store is unhealthy afterwards (open it with restart_no_recovery so that it stays so). */
static void release_failing(env *e, bool (*cond)(void *), void *arg)
{
    struct rlimit old, small;
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fy_store_hold(e->store, false);
    run_until(e, cond, arg);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_false(fy_store_healthy(e->store));
}

/* Makes the write the store holds fail, as the topic delete test does: the batches held and a
 * record too large for the log go in one LevelDB write. */
static void fail_held_write(env *e, bool (*cond)(void *), void *arg)
{
    submit_too_large(e);
    release_failing(e, cond, arg);
}

/* A topic delete whose write fails (the data directory's log may grow no more) leaves the topic
 * where it was, in memory and on disk, and the caller is told: the broker shows the topic with
 * its messages, and so does a restart. While the store is unhealthy a delete is refused at once;
 * once it recovered, a delete goes through and stays done after a restart. */
static void test_core_topic_delete_failed_write_keeps_topic(void **state)
{
    env *e = *state;
    struct rlimit old, small;
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);
    fy_record r = {0};
    fy_wbatch *b;
    fy_topic_info t;
    fy_buf out = FY_BUF_INIT;
    uint64_t min, max;
    uint32_t id;
    int st = 1000;
    fy_produce_result kept;

    restart_no_recovery(e);
    kept = produce(e, "stay", "", "kept", "");
    assert_int_equal(fy_core_topic_get(e->core, "stay", &t), FY_OK);
    id = t.topic_id;
    drain_store(e);

    /* The delete and a write too large for the log go in one LevelDB write, which fails. */
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_topic_delete(e->core, "stay", topic_cb, &st), FY_OK);
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    r.topic = fy_slice_str("other");
    r.body = fy_slice_str(big);
    b = fy_wbatch_new();
    assert_true(fy_wbatch_append(b, id + 100, 0, &r) >= 0);
    fy_store_submit(e->store, b, NULL, NULL);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fy_store_hold(e->store, false);
    run_until(e, topic_done, &st);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_true(st < 0);
    assert_false(fy_store_healthy(e->store));

    /* Still there, same id, its message readable. */
    assert_int_equal(fy_core_topic_get(e->core, "stay", &t), FY_OK);
    assert_int_equal(t.topic_id, id);
    fy_core_queue_range(e->core, id, kept.queue_id, &min, &max);
    assert_int_equal(max, kept.offset + 1);
    assert_int_equal(fy_core_message_get(e->core, kept.msgid, &out), FY_OK);
    /* Refused while writes are. */
    assert_int_equal(fy_core_topic_delete(e->core, "stay", topic_cb, &st), -FY_EUNHEALTHY);
    assert_int_equal(fy_core_topic_get(e->core, "stay", &t), FY_OK);

    /* A restart agrees. */
    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_get(e->core, "stay", &t), FY_OK);
    assert_int_equal(t.topic_id, id);
    assert_int_equal(fy_core_message_get(e->core, kept.msgid, &out), FY_OK);

    /* Deleted for good now. */
    st = 1000;
    assert_int_equal(fy_core_topic_delete(e->core, "stay", topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    assert_int_equal(fy_core_topic_get(e->core, "stay", &t), -FY_ENOTFOUND);
    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_get(e->core, "stay", &t), -FY_ENOTFOUND);
    assert_int_equal(fy_core_message_get(e->core, kept.msgid, &out), -FY_ENOTFOUND);
    fy_buf_free(&out);
    free(big);
}

/* A topic create whose write fails is undone and the caller told: the topic is not there, its
 * subscriptions have ended, and a restart finds the same; made again once the store recovered,
 * it stays. */
static void test_core_topic_create_failed_write_undone(void **state)
{
    env *e = *state;
    static owner a;
    int st = 1000;
    fy_topic_info t;
    memset(&a, 0, sizeof(a));

    restart_no_recovery(e);
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_topic_create(e->core, "made", 2, topic_cb, &st), FY_OK);
    /* Usable before its write is done. */
    assert_int_equal(fy_core_topic_get(e->core, "made", &t), FY_OK);
    subscribe(e, &a, "gm", "made", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fail_held_write(e, topic_done, &st);
    assert_true(st < 0);

    assert_int_equal(fy_core_topic_get(e->core, "made", &t), -FY_ENOTFOUND);
    assert_int_equal(a.closed, 1);
    assert_int_equal(a.closed_status, st);
    assert_null(a.sub);
    assert_int_equal(fy_core_topic_create(e->core, "made", 2, NULL, NULL), -FY_EUNHEALTHY);

    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_get(e->core, "made", &t), -FY_ENOTFOUND);
    st = 1000;
    assert_int_equal(fy_core_topic_create(e->core, "made", 2, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_get(e->core, "made", &t), FY_OK);
    assert_int_equal(t.queues, 2);
}

static bool both_set(void *arg)
{
    return ((int *)arg)[0] != 1000 && ((int *)arg)[1] != 1000;
}

/* Deletes and creates of one name whose writes all fail leave what the disk has: a topic deleted
 * and made again is the old one again, with its id and messages (the newer one, never stored,
 * does not stay over it); a topic made and deleted is not there. A restart agrees. */
static void test_core_topic_delete_and_create_failed_writes(void **state)
{
    env *e = *state;
    int st[2] = {1000, 1000};
    fy_topic_info t;
    fy_buf out = FY_BUF_INIT;
    fy_produce_result kept;
    uint32_t id;

    restart_no_recovery(e);
    kept = produce(e, "swap", "", "kept", "");
    assert_int_equal(fy_core_topic_get(e->core, "swap", &t), FY_OK);
    id = t.topic_id;
    drain_store(e);

    /* Deleted, made again: both writes fail. */
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_topic_delete(e->core, "swap", topic_cb, &st[0]), FY_OK);
    assert_int_equal(fy_core_topic_create(e->core, "swap", 3, topic_cb, &st[1]), FY_OK);
    assert_int_equal(fy_core_topic_get(e->core, "swap", &t), FY_OK);
    assert_true(t.topic_id != id);
    fail_held_write(e, both_set, st);
    assert_true(st[0] < 0 && st[1] < 0);
    assert_int_equal(fy_core_topic_get(e->core, "swap", &t), FY_OK);
    assert_int_equal(t.topic_id, id);
    assert_int_equal(fy_core_message_get(e->core, kept.msgid, &out), FY_OK);

    /* Made, deleted: both writes fail (the creation's with the large record, the deletion's,
     * in a commit of its own, refused after it). */
    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    st[0] = st[1] = 1000;
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_topic_create(e->core, "brief", 1, topic_cb, &st[0]), FY_OK);
    submit_too_large(e);
    assert_int_equal(fy_core_topic_delete(e->core, "brief", topic_cb, &st[1]), FY_OK);
    release_failing(e, both_set, st);
    assert_true(st[0] < 0 && st[1] < 0);
    assert_int_equal(fy_core_topic_get(e->core, "brief", &t), -FY_ENOTFOUND);

    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_get(e->core, "swap", &t), FY_OK);
    assert_int_equal(t.topic_id, id);
    assert_int_equal(fy_core_message_get(e->core, kept.msgid, &out), FY_OK);
    assert_int_equal(fy_core_topic_get(e->core, "brief", &t), -FY_ENOTFOUND);
    fy_buf_free(&out);
}

static void test_core_orderly_one_at_a_time_retry_in_place(void **state)
{
    env *e = *state;
    static owner a, dlq;
    memset(&a, 0, sizeof(a));
    memset(&dlq, 0, sizeof(dlq));
    int st = 1000, err = 0;
    char why[128] = "";
    fy_core_free(e->core);
    e->cfg.orderly_suspend_ms = 100;
    e->cfg.max_reconsume = 2;
    core_open(e);
    fy_core_topic_create(e->core, "ord", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    fy_sub_spec spec = {.group = "seq",
                        .topic = "ord",
                        .filter = "",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_LAST,
                        .start_ms = 0,
                        .client_id = "t",
                        .filter_type = FY_FILTER_TAG,
                        .errbuf = why,
                        .errbuf_len = sizeof(why),
                        .orderly = true};
    a.sub = fy_core_subscribe(e->core, &spec, &ops, &a, &err);
    assert_non_null(a.sub);
    fy_sub_credit(a.sub, 10);
    produce(e, "ord", "", "m0", "k");
    produce(e, "ord", "", "m1", "k");
    produce(e, "ord", "", "m2", "k");
    wait_n(e, &a, 1);
    run_for(e, 100);
    assert_int_equal(a.n, 1); /* one at a time, although credit allows more */
    assert_string_equal(a.body[0], "m0");

    /* A failure is retried in place after the pause: nothing overtakes it. */
    assert_int_equal(fy_sub_nack(a.sub, a.ids[0], FY_NACK_RETRY), FY_OK);
    wait_n(e, &a, 2);
    assert_string_equal(a.body[1], "m0");
    assert_int_equal(a.reconsume[1], 1);
    assert_true(a.at_ms[1] >= a.at_ms[0] + 100);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[1]), FY_OK);
    wait_n(e, &a, 3);
    assert_string_equal(a.body[2], "m1");

    /* Past max_reconsume (2) it goes to the dead-letter queue and the queue moves on. */
    assert_int_equal(fy_sub_nack(a.sub, a.ids[2], FY_NACK_RETRY), FY_OK);
    wait_n(e, &a, 4);
    assert_int_equal(fy_sub_nack(a.sub, a.ids[3], FY_NACK_RETRY), FY_OK);
    wait_n(e, &a, 5);
    assert_string_equal(a.body[4], "m1");
    assert_int_equal(a.reconsume[4], 2);
    assert_int_equal(fy_sub_nack(a.sub, a.ids[4], FY_NACK_RETRY), FY_OK);
    wait_n(e, &a, 6);
    assert_string_equal(a.body[5], "m2");
    subscribe(e, &dlq, "look", "%DLQ%seq", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(dlq.sub, 10);
    wait_n(e, &dlq, 1);
    assert_string_equal(dlq.body[0], "m1");

    /* A group is orderly or concurrent, not both. */
    fy_sub_spec mixed = {.group = "seq",
                         .topic = "ord",
                         .filter = "",
                         .mode = FY_SUB_CLUSTERING,
                         .start = FY_START_LAST,
                         .start_ms = 0,
                         .client_id = "t",
                         .filter_type = FY_FILTER_TAG,
                         .errbuf = why,
                         .errbuf_len = sizeof(why),
                         .orderly = false};
    assert_null(fy_core_subscribe(e->core, &mixed, &ops, &dlq, &err));
    assert_int_equal(err, -FY_EINVAL);
    assert_non_null(strstr(why, "orderly"));
}

static void test_core_orderly_owner_change_waits_for_settle(void **state)
{
    env *e = *state;
    static owner a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    int st = 1000, err = 0;
    fy_core_topic_create(e->core, "ord2", 2, topic_cb, &st);
    run_until(e, topic_done, &st);
    fy_sub_spec spec = {.group = "seq2",
                        .topic = "ord2",
                        .filter = "",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_LAST,
                        .start_ms = 0,
                        .client_id = "t",
                        .filter_type = FY_FILTER_TAG,
                        .errbuf = NULL,
                        .errbuf_len = 0,
                        .orderly = true};
    a.sub = fy_core_subscribe(e->core, &spec, &ops, &a, &err);
    assert_non_null(a.sub);
    fy_sub_credit(a.sub, 10);
    /* A sharding key of queue 1, the queue that moves to the second member (RocketMQ's
     * average allocation gives queue 0 to the first, queue 1 to the second). */
    char key[16];
    for (int i = 0;; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        if (fy_hash64(key, strlen(key)) % 2 == 1) {
            break;
        }
    }
    fy_produce_result r0 = produce(e, "ord2", "", "q-0", key);
    assert_int_equal(r0.queue_id, 1);
    produce(e, "ord2", "", "q-1", key);
    wait_n(e, &a, 1);
    assert_string_equal(a.body[0], "q-0");
    /* b joins and takes over that queue while q-0 is still in flight at a: b must not get
     * q-1 before a settles q-0. */
    b.sub = fy_core_subscribe(e->core, &spec, &ops, &b, &err);
    assert_non_null(b.sub);
    fy_sub_credit(b.sub, 10);
    run_for(e, 100);
    assert_int_equal(a.n + b.n, 1);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[0]), FY_OK);
    {
        uint64_t deadline = fy_mono_ms() + 10000;
        while (a.n + b.n < 2) {
            assert_true(fy_mono_ms() < deadline);
            run_for(e, 5);
        }
    }
    /* The new owner got q-1, only after q-0 was settled. */
    assert_int_equal(b.n, 1);
    assert_string_equal(b.body[0], "q-1");
    assert_int_equal(b.queue[0], 1);
}

static void test_core_produce_refuses_internal_routing(void **state)
{
    env *e = *state;
    fy_produce_result r;
    /* REAL_TOPIC is how the broker routes retries; a producer may not set it. */
    assert_int_equal(produce_with(e, "x", FY_PROP_REAL_TOPIC, "%RETRY%g", &r), -FY_EINVAL);
}

static bool queue_emptied(void *arg)
{
    env *e = arg;
    fy_topic_info t;
    uint64_t min, max;
    fy_core_topic_get(e->core, "old", &t);
    fy_core_queue_range(e->core, t.topic_id, 0, &min, &max);
    return min == max && max == 5;
}

static void test_core_retention_deletes_old_messages(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    int st = 1000;
    fy_core_stats cs;
    fy_buf rec = FY_BUF_INIT;
    fy_produce_result first;
    /* Short retention, checked often. */
    fy_core_free(e->core);
    e->cfg.retention_ms = 300;
    e->cfg.retention_interval_ms = 50;
    core_open(e);
    fy_core_topic_create(e->core, "old", 1, topic_cb, &st);
    run_until(e, topic_done, &st);
    /* The group reads nothing and leaves: its committed offset stays at 0. */
    subscribe(e, &a, "late", "old", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_close(a.sub);
    first = produce(e, "old", "", "gone-0", "");
    for (int i = 1; i < 5; i++) {
        produce(e, "old", "", "gone", "");
    }
    run_until(e, queue_emptied, e);
    assert_int_equal(fy_core_message_get(e->core, first.msgid, &rec), -FY_ENOTFOUND);
    fy_core_get_stats(e->core, &cs);
    assert_int_equal(cs.retention_deleted, 5);

    /* The group comes back: it skips what retention removed and gets what is new. */
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "late", "old", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    produce(e, "old", "", "fresh", "");
    wait_n(e, &a, 1);
    run_for(e, 50);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.body[0], "fresh");
    fy_core_get_stats(e->core, &cs);
    assert_int_equal(cs.retention_skipped, 5);
    fy_buf_free(&rec);
}

/* ---- Adapter hooks: match predicate, no retry topic, topic watch, key-value, group delete ---- */

/* Accepts records whose property "a" starts with "x". */
static bool match_x(void *owner_arg, const fy_record_view *v)
{
    fy_slice val;
    return fy_record_prop_get(v, "a", &val) && val.len > 0 && val.p[0] == 'x';
}

static void test_core_adapter_match_and_no_retry(void **state)
{
    env *e = *state;
    owner a = {0};
    int err = 0;
    fy_topic_info ti;
    fy_sub_spec spec = {.group = "ada",
                        .topic = "mt",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_LAST,
                        .client_id = "t",
                        .match = match_x,
                        .no_retry = true,
                        .no_ack_timeout = true};
    a.sub = fy_core_subscribe(e->core, &spec, &ops, &a, &err);
    assert_non_null(a.sub);
    fy_sub_credit(a.sub, 100);
    produce_prop(e, "mt", "", "x1");
    produce_prop(e, "mt", "", "y2");
    produce_prop(e, "mt", "", "x3");
    wait_n(e, &a, 2);
    run_for(e, 50);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.body[0], "x1");
    assert_string_equal(a.body[1], "x3");
    /* No retry topic was created for the group. */
    assert_int_equal(fy_core_topic_get(e->core, "%RETRY%ada", &ti), -FY_ENOTFOUND);
    /* A released delivery comes back marked as a redelivery. */
    assert_int_equal(fy_sub_nack(a.sub, a.ids[0], FY_NACK_RELEASE), FY_OK);
    wait_n(e, &a, 3);
    assert_string_equal(a.body[2], "x1");
    assert_false(a.redelivered[0]);
    assert_true(a.redelivered[2]);
    fy_sub_close(a.sub);
}

typedef struct watched {
    int n;
    char names[8][32];
} watched;

static void on_topic(void *arg, const fy_topic_info *t)
{
    watched *w = arg;
    if (w->n < 8) {
        snprintf(w->names[w->n], 32, "%s", t->name);
    }
    w->n++;
}

static bool watched_two(void *arg)
{
    return ((watched *)arg)->n >= 2;
}

static void test_core_watch_topics(void **state)
{
    env *e = *state;
    watched w = {0};
    int st = 1000;
    assert_int_equal(fy_core_watch_topics(e->core, on_topic, &w), FY_OK);
    assert_int_equal(fy_core_topic_create(e->core, "w1", 2, topic_cb, &st), FY_OK);
    assert_int_equal(w.n, 0); /* never inside the creating call */
    produce(e, "w2", "", "m", NULL);
    produce(e, "w2", "", "m", NULL); /* exists now: not reported again */
    run_until(e, watched_two, &w);
    run_for(e, 30);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.names[0], "w1");
    assert_string_equal(w.names[1], "w2");
}

/* A watcher that goes (an adapter stopping before the core) hears nothing more, not even of a
 * creation made before it went (reported from a deferred event); the others still do. */
static void test_core_unwatch_topics(void **state)
{
    env *e = *state;
    watched gone = {0}, stays = {0};
    int st = 1000;
    assert_int_equal(fy_core_watch_topics(e->core, on_topic, &gone), FY_OK);
    assert_int_equal(fy_core_watch_topics(e->core, on_topic, &stays), FY_OK);
    assert_int_equal(fy_core_topic_create(e->core, "u1", 2, topic_cb, &st), FY_OK);
    fy_core_unwatch_topics(e->core, on_topic, &gone); /* u1 is not reported yet */
    fy_core_unwatch_topics(e->core, on_topic, &gone); /* not watching: nothing */
    produce(e, "u2", "", "m", NULL);
    run_until(e, watched_two, &stays);
    run_for(e, 30);
    assert_int_equal(gone.n, 0);
    assert_int_equal(stays.n, 2);
    assert_string_equal(stays.names[0], "u1");
    assert_string_equal(stays.names[1], "u2");
}

static bool status_set(void *arg)
{
    return *(int *)arg != 1000;
}

static void kv_done(void *arg, int status)
{
    *(int *)arg = status;
}

typedef struct kv_seen {
    int n;
    char keys[4][16];
} kv_seen;

static int kv_each(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    kv_seen *k = arg;
    snprintf(k->keys[k->n++], 16, "%.*s", (int)klen, (const char *)key);
    return k->n == 4;
}

static void test_core_kv_and_produce_kv(void **state)
{
    env *e = *state;
    int st = 1000;
    fy_buf out = FY_BUF_INIT;
    kv_seen seen = {0};
    fy_kv_op ops2[2] = {{false, fy_slice_str("s/a"), fy_slice_str("1")},
                        {false, fy_slice_str("s/b"), fy_slice_str("2")}};
    fy_kv_op del = {true, fy_slice_str("s/a"), {NULL, 0}};
    fy_record r = {0};
    fy_buf rec = FY_BUF_INIT;
    fy_produce_msg m;
    produced p = {0};
    fy_kv_op with_msg = {false, fy_slice_str("r/t"), fy_slice_str("retained")};

    assert_int_equal(fy_core_kv_write(e->core, "test", ops2, 2, kv_done, &st), FY_OK);
    run_until(e, status_set, &st);
    assert_int_equal(st, FY_OK);
    assert_int_equal(fy_core_kv_get(e->core, "test", "s/b", 3, &out), FY_OK);
    assert_int_equal(out.len, 1);
    assert_memory_equal(out.data, "2", 1);
    /* Another namespace does not see it. */
    assert_int_equal(fy_core_kv_get(e->core, "other", "s/b", 3, &out), -FY_ENOTFOUND);
    st = 1000;
    assert_int_equal(fy_core_kv_write(e->core, "test", &del, 1, kv_done, &st), FY_OK);
    run_until(e, status_set, &st);
    assert_int_equal(fy_core_kv_get(e->core, "test", "s/a", 3, &out), -FY_ENOTFOUND);

    /* A message and a key written together. */
    r.topic = fy_slice_str("kvt");
    r.body = fy_slice_str("hello");
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    m.record = (fy_slice){rec.data, rec.len};
    m.sharding_key = (fy_slice){NULL, 0};
    assert_int_equal(fy_core_produce_kv(e->core, &m, 1, "test", &with_msg, 1, produce_cb, &p, NULL),
                     FY_OK);
    run_until(e, produced_done, &p);
    assert_int_equal(p.status, FY_OK);
    assert_int_equal(fy_core_kv_get(e->core, "test", "r/t", 3, &out), FY_OK);
    assert_memory_equal(out.data, "retained", 8);
    assert_int_equal(fy_core_kv_scan(e->core, "test", "", 0, kv_each, &seen), FY_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.keys[0], "r/t");
    assert_string_equal(seen.keys[1], "s/b");
    fy_buf_free(&rec);
    fy_buf_free(&out);
}

static void group_seen(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    if (strcmp(name, "gdel") == 0) {
        (*(int *)arg)++;
    }
}

static void group_seen_gkeep(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    if (strcmp(name, "gkeep") == 0) {
        (*(int *)arg)++;
    }
}

static void test_core_group_delete(void **state)
{
    env *e = *state;
    owner a = {0}, b = {0};
    int st = 1000, found = 0;
    produce(e, "gd", "", "old", NULL);
    subscribe(e, &a, "gdel", "gd", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 1);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[0]), FY_OK);
    assert_int_equal(fy_core_group_delete(e->core, "gdel", kv_done, &st), -FY_EBUSY);
    fy_sub_close(a.sub);
    assert_int_equal(fy_core_group_delete(e->core, "gdel", kv_done, &st), FY_OK);
    run_until(e, status_set, &st);
    assert_int_equal(st, FY_OK);
    assert_int_equal(fy_core_group_delete(e->core, "gdel", kv_done, &st), -FY_ENOTFOUND);
    fy_core_group_each(e->core, group_seen, &found);
    assert_int_equal(found, 0);
    /* After a restart of the core the group is still gone, and a new member starting at the
     * first message reads it again (no committed offset survived). */
    fy_core_free(e->core);
    core_open(e);
    fy_core_group_each(e->core, group_seen, &found);
    assert_int_equal(found, 0);
    subscribe(e, &b, "gdel", "gd", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(b.sub, 10);
    wait_n(e, &b, 1);
    assert_string_equal(b.body[0], "old");
    fy_sub_close(b.sub);
}

static int count_offset(void *arg, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    (*(int *)arg)++;
    return 0;
}

static bool store_busy(void *arg)
{
    fy_store_stats st;
    fy_store_get_stats(((env *)arg)->store, &st);
    return st.pending > 0;
}

/* Deleting a group deletes the offsets it has, however many topics the broker has: with 40
 * topics of 8 queues the write holds a delete for each of the group's own offsets and its
 * record, not one for each of the 320-odd queues. Offsets still on their way to the store
 * when the group goes are deleted too, and none is back after a restart. */
static void test_core_group_delete_only_its_offsets(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    int st = 1000, stored = 1000, real = 0, left = 0;
    fy_store_stats before, after;
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "many%d", i);
        st = 1000;
        assert_int_equal(fy_core_topic_create(e->core, name, 8, topic_cb, &st), FY_OK);
        run_until(e, topic_done, &st);
    }
    st = 1000;
    assert_int_equal(fy_core_topic_create(e->core, "gd2", 2, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "gdel", "gd2", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    produce(e, "gd2", "", "m0", NULL);
    produce(e, "gd2", "", "m1", NULL);
    wait_n(e, &a, 2);
    for (int i = 0; i < 2; i++) {
        stored = 1000;
        assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[i], topic_cb, &stored), FY_OK);
        run_until(e, topic_done, &stored);
        assert_int_equal(stored, FY_OK);
    }
    fy_sub_close(a.sub);
    drain_store(e);
    assert_int_equal(fy_store_scan_offsets(e->store, "gdel", count_offset, &real), 0);
    assert_true(real >= 2);

    fy_store_get_stats(e->store, &before);
    st = 1000;
    assert_int_equal(fy_core_group_delete(e->core, "gdel", kv_done, &st), FY_OK);
    run_until(e, status_set, &st);
    assert_int_equal(st, FY_OK);
    drain_store(e);
    fy_store_get_stats(e->store, &after);
    assert_int_equal(after.deletes - before.deletes, (uint64_t)real + 1);
    assert_int_equal(fy_store_scan_offsets(e->store, "gdel", count_offset, &left), 0);
    assert_int_equal(left, 0);

    /* The group again: an offset written in the same commit as, and before, its deletion. */
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "gdel", "gd2", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 2);
    fy_store_hold(e->store, true);
    stored = 1000;
    assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[1], topic_cb, &stored), FY_OK);
    run_until(e, store_busy, e);
    fy_sub_close(a.sub);
    st = 1000;
    assert_int_equal(fy_core_group_delete(e->core, "gdel", kv_done, &st), FY_OK);
    fy_store_hold(e->store, false);
    run_until(e, status_set, &st);
    assert_int_equal(st, FY_OK);
    drain_store(e);
    assert_int_equal(fy_store_scan_offsets(e->store, "gdel", count_offset, &left), 0);
    assert_int_equal(left, 0);

    restart_all(e);
    assert_int_equal(fy_store_scan_offsets(e->store, "gdel", count_offset, &left), 0);
    assert_int_equal(left, 0);
}

/* A group delete whose write fails leaves the group where it was, in memory and on disk, and the
 * caller is told: the group is there with its settings and committed offsets, and so it is after
 * a restart; a member joining again goes on from its committed offset. Once the store recovered,
 * a delete goes through and stays done after a restart. */
static void test_core_group_delete_failed_write_keeps_group(void **state)
{
    env *e = *state;
    static owner a;
    int st = 1000, found = 0;
    fy_group_config gc;
    fy_topic_info t;
    uint64_t off = 0;
    memset(&a, 0, sizeof(a));

    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_create(e->core, "gk", 1, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    produce(e, "gk", "", "m0", NULL);
    produce(e, "gk", "", "m1", NULL);
    produce(e, "gk", "", "m2", NULL);
    assert_int_equal(fy_core_topic_get(e->core, "gk", &t), FY_OK);
    st = 1000;
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gkeep", 5, NULL, topic_cb, &st),
                     FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    subscribe(e, &a, "gkeep", "gk", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 1);
    wait_n(e, &a, 1);
    st = 1000;
    assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[0], topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    assert_int_equal(st, FY_OK);
    fy_sub_close(a.sub);
    drain_store(e);

    /* The delete goes in one LevelDB write with a record too large for the log. */
    fy_store_hold(e->store, true);
    st = 1000;
    assert_int_equal(fy_core_group_delete(e->core, "gkeep", kv_done, &st), FY_OK);
    assert_int_equal(fy_core_group_config_get(e->core, "gkeep", &gc), -FY_ENOTFOUND);
    fail_held_write(e, status_set, &st);
    assert_true(st < 0);

    /* Back as it was: its setting, its committed offset. */
    assert_int_equal(fy_core_group_config_get(e->core, "gkeep", &gc), FY_OK);
    assert_int_equal(gc.mode, FY_SUB_CLUSTERING);
    assert_int_equal(gc.max_reconsume, 5);
    assert_int_equal(fy_core_group_committed(e->core, "gkeep", "gk", 0, &off), FY_OK);
    assert_int_equal(off, 1);
    fy_core_group_each(e->core, group_seen_gkeep, &found);
    assert_int_equal(found, 1);
    assert_int_equal(fy_core_group_delete(e->core, "gkeep", kv_done, &st), -FY_EUNHEALTHY);

    /* A restart agrees, and a member goes on from the committed offset. */
    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_group_config_get(e->core, "gkeep", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, 5);
    memset(&a, 0, sizeof(a));
    subscribe(e, &a, "gkeep", "gk", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 2);
    assert_string_equal(a.body[0], "m1");
    assert_string_equal(a.body[1], "m2");
    fy_sub_close(a.sub);

    /* Deleted for good now. */
    st = 1000;
    assert_int_equal(fy_core_group_delete(e->core, "gkeep", kv_done, &st), FY_OK);
    run_until(e, status_set, &st);
    assert_int_equal(st, FY_OK);
    assert_int_equal(fy_core_group_config_get(e->core, "gkeep", &gc), -FY_ENOTFOUND);
    restart_no_recovery(e);
    assert_int_equal(fy_core_group_config_get(e->core, "gkeep", &gc), -FY_ENOTFOUND);
    assert_int_equal(fy_store_get_offset(e->store, "gkeep", t.topic_id, 0, &off), -FY_ENOTFOUND);
}

/* A group made again under the name of one whose deletion is on its way (an MQTT client
 * connecting again with a clean start) is a new group: it starts where a new group starts, not
 * from the offsets the deleted one has in the store until the deletion is written. Should that
 * write fail, the newer group stays: the older one is not put back over it. */
static void test_core_group_made_again_while_deleted(void **state)
{
    env *e = *state;
    static owner a, b;
    int st = 1000;
    fy_group_config gc;
    uint64_t off = 99;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));

    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_create(e->core, "gn", 1, topic_cb, &st), FY_OK);
    run_until(e, topic_done, &st);
    produce(e, "gn", "", "m0", NULL);
    produce(e, "gn", "", "m1", NULL);
    produce(e, "gn", "", "m2", NULL);
    st = 1000;
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gagain", 5, NULL, topic_cb, &st),
                     FY_OK);
    run_until(e, topic_done, &st);
    subscribe(e, &a, "gagain", "gn", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 2);
    wait_n(e, &a, 2);
    for (int i = 0; i < 2; i++) {
        st = 1000;
        assert_int_equal(fy_sub_ack_durable(a.sub, a.ids[i], topic_cb, &st), FY_OK);
        run_until(e, topic_done, &st);
        assert_int_equal(st, FY_OK);
    }
    fy_sub_close(a.sub);
    drain_store(e);

    /* The deletion is held; the group is made again and reads from the first message. */
    fy_store_hold(e->store, true);
    st = 1000;
    assert_int_equal(fy_core_group_delete(e->core, "gagain", kv_done, &st), FY_OK);
    subscribe(e, &b, "gagain", "gn", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    assert_int_equal(fy_core_group_committed(e->core, "gagain", "gn", 0, &off), FY_OK);
    assert_int_equal(off, 0);
    fy_sub_credit(b.sub, 10);
    wait_n(e, &b, 3);
    assert_string_equal(b.body[0], "m0");

    /* The deletion fails: the newer group, with its member and the broker's max_reconsume,
     * stays. */
    fail_held_write(e, status_set, &st);
    assert_true(st < 0);
    assert_int_equal(fy_core_group_config_get(e->core, "gagain", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, FY_GROUP_MAX_RECONSUME_DEFAULT);
    assert_non_null(b.sub);
    assert_int_equal(b.closed, 0);
    fy_sub_close(b.sub);
    assert_int_equal(fy_store_recover(e->store), FY_OK);
}

/* A group config write that fails leaves the group as the disk has it, and the caller is told: a
 * group it made is gone again (a subscription made to it meanwhile has ended), a group that was
 * there has its stored max_reconsume back, however many writes failed; with a deletion of the
 * name failing too, what stays is the group the disk has. A restart agrees. */
static void test_core_group_config_failed_write_undone(void **state)
{
    env *e = *state;
    static owner a;
    int st[2] = {1000, 1000};
    fy_group_config gc;
    memset(&a, 0, sizeof(a));

    restart_no_recovery(e);
    assert_int_equal(fy_core_topic_create(e->core, "gct", 1, topic_cb, &st[0]), FY_OK);
    run_until(e, topic_done, &st[0]);

    /* Made by the write. */
    fy_store_hold(e->store, true);
    st[0] = 1000;
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gc1", 3, &gc, topic_cb, &st[0]),
                     FY_OK);
    assert_int_equal(gc.max_reconsume, 3);
    subscribe(e, &a, "gc1", "gct", "*", FY_SUB_CLUSTERING, FY_START_FIRST);
    fail_held_write(e, topic_done, &st[0]);
    assert_true(st[0] < 0);
    assert_int_equal(fy_core_group_config_get(e->core, "gc1", &gc), -FY_ENOTFOUND);
    assert_int_equal(a.closed, 1);
    assert_int_equal(a.closed_status, st[0]);

    /* There before: two changes, both failing. */
    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_group_config_get(e->core, "gc1", &gc), -FY_ENOTFOUND);
    st[0] = 1000;
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gc2", 4, NULL, topic_cb, &st[0]),
                     FY_OK);
    run_until(e, topic_done, &st[0]);
    assert_int_equal(st[0], FY_OK);
    fy_store_hold(e->store, true);
    st[0] = 1000;
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gc2", 7, NULL, topic_cb, &st[0]),
                     FY_OK);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gc2", 9, &gc, topic_cb, &st[1]),
                     FY_OK);
    assert_int_equal(gc.max_reconsume, 9);
    fail_held_write(e, both_set, st);
    assert_true(st[0] < 0 && st[1] < 0);
    assert_int_equal(fy_core_group_config_get(e->core, "gc2", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, 4);

    /* Deleted, made again by a config write: both fail; the older group, which the disk still
     * has, is back (not the newer one, never stored). */
    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    st[0] = st[1] = 1000;
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_group_delete(e->core, "gc2", kv_done, &st[0]), FY_OK);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gc2", 6, NULL, topic_cb, &st[1]),
                     FY_OK);
    fail_held_write(e, both_set, st);
    assert_true(st[0] < 0 && st[1] < 0);
    assert_int_equal(fy_core_group_config_get(e->core, "gc2", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, 4);

    /* Made by a config write, deleted: both fail; nothing is there. */
    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    st[0] = st[1] = 1000;
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_group_set_max_reconsume(e->core, "gc3", 2, NULL, topic_cb, &st[0]),
                     FY_OK);
    submit_too_large(e);
    assert_int_equal(fy_core_group_delete(e->core, "gc3", kv_done, &st[1]), FY_OK);
    release_failing(e, both_set, st);
    assert_true(st[0] < 0 && st[1] < 0);
    assert_int_equal(fy_core_group_config_get(e->core, "gc3", &gc), -FY_ENOTFOUND);

    assert_int_equal(fy_store_recover(e->store), FY_OK);
    restart_no_recovery(e);
    assert_int_equal(fy_core_group_config_get(e->core, "gc1", &gc), -FY_ENOTFOUND);
    assert_int_equal(fy_core_group_config_get(e->core, "gc2", &gc), FY_OK);
    assert_int_equal(gc.max_reconsume, 4);
    assert_int_equal(fy_core_group_config_get(e->core, "gc3", &gc), -FY_ENOTFOUND);
}

/* ---- Transactions ---- */

/* Stores a half message of producer group `group` and returns its transaction id. */
static uint64_t half(env *e, const char *group, const char *topic, const char *body,
                     const char *prop, const char *val)
{
    fy_record r = {0};
    fy_buf rec = FY_BUF_INIT;
    fy_slice props[2] = {fy_slice_str(prop), fy_slice_str(val)};
    fy_produce_msg m;
    produced p = {0};
    r.topic = fy_slice_str(topic);
    r.body = fy_slice_str(body);
    r.props = props;
    r.nprops = prop ? 1 : 0;
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    m.record = (fy_slice){rec.data, rec.len};
    m.sharding_key = fy_slice_str(NULL);
    assert_int_equal(fy_core_tx_half(e->core, &m, group, produce_cb, &p), FY_OK);
    run_until(e, produced_done, &p);
    assert_int_equal(p.status, FY_OK);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.res[0].queue_id, UINT32_MAX);
    fy_buf_free(&rec);
    return p.res[0].offset;
}

/* Ends a transaction and waits for the store; returns the status (the result in *out). */
static int tx_end(env *e, uint64_t id, fy_tx_end_how how, produced *out)
{
    produced p = {0};
    int rc = fy_core_tx_end(e->core, id, how, produce_cb, &p);
    if (rc != FY_OK || how == FY_TXE_UNKNOWN) {
        return rc;
    }
    run_until(e, produced_done, &p);
    if (out) {
        *out = p;
    }
    return p.status;
}

static void test_core_tx_commit_and_rollback(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    produced p;
    fy_core_stats st;
    fy_buf rec = FY_BUF_INIT;
    fy_record_view v;
    fy_topic_info ti;
    uint64_t t1, t2, t3;

    subscribe(e, &a, "g", "pay", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);
    t1 = half(e, "pg", "pay", "one", NULL, NULL);
    t2 = half(e, "pg", "pay", "two", NULL, NULL);
    assert_true(t2 > t1);
    /* Invisible while open. */
    run_for(e, 100);
    assert_int_equal(a.n, 0);
    fy_core_get_stats(e->core, &st);
    assert_int_equal(st.tx_pending, 2);

    /* Commit: visible once, flagged, with its location in the result. */
    assert_int_equal(tx_end(e, t1, FY_TXE_COMMIT, &p), FY_OK);
    assert_int_equal(p.n, 1);
    assert_true(p.res[0].queue_id < 8);
    wait_n(e, &a, 1);
    assert_string_equal(a.body[0], "one");
    assert_int_equal(fy_core_topic_get(e->core, "pay", &ti), FY_OK);
    assert_int_equal(fy_store_get(e->store, ti.topic_id, p.res[0].queue_id, p.res[0].offset, &rec),
                     FY_OK);
    assert_int_equal(fy_record_decode(rec.data, rec.len, &v), FY_OK);
    assert_true(v.flags & FY_RECORD_F_TX);
    /* A second end of the same transaction finds nothing. */
    assert_int_equal(tx_end(e, t1, FY_TXE_COMMIT, NULL), -FY_ENOTFOUND);
    assert_int_equal(tx_end(e, t1, FY_TXE_ROLLBACK, NULL), -FY_ENOTFOUND);

    /* Unknown changes nothing; rollback deletes; never delivered. */
    assert_int_equal(tx_end(e, t2, FY_TXE_UNKNOWN, NULL), FY_OK);
    assert_int_equal(tx_end(e, t2, FY_TXE_ROLLBACK, &p), FY_OK);
    assert_int_equal(p.n, 0);
    assert_int_equal(tx_end(e, t2, FY_TXE_COMMIT, NULL), -FY_ENOTFOUND);
    assert_int_equal(tx_end(e, t2, FY_TXE_UNKNOWN, NULL), -FY_ENOTFOUND);

    /* Two ends in flight: the second is told to wait, and only one message appears. */
    t3 = half(e, "pg", "pay", "three", NULL, NULL);
    {
        produced p1 = {0};
        assert_int_equal(fy_core_tx_end(e->core, t3, FY_TXE_COMMIT, produce_cb, &p1), FY_OK);
        assert_int_equal(fy_core_tx_end(e->core, t3, FY_TXE_COMMIT, produce_cb, &p), -FY_EAGAIN);
        run_until(e, produced_done, &p1);
        assert_int_equal(p1.status, FY_OK);
    }
    wait_n(e, &a, 2);
    run_for(e, 100);
    assert_int_equal(a.n, 2);
    assert_string_equal(a.body[1], "three");
    fy_core_get_stats(e->core, &st);
    assert_int_equal(st.tx_pending, 0);
    assert_int_equal(st.tx_commits, 2);
    assert_int_equal(st.tx_rollbacks, 1);

    /* Refused like a produce: bad topic name, bad group. */
    {
        fy_record r = {0};
        fy_produce_msg m;
        fy_buf_reset(&rec);
        r.topic = fy_slice_str("bad topic");
        r.body = fy_slice_str("x");
        assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
        m.record = (fy_slice){rec.data, rec.len};
        m.sharding_key = fy_slice_str(NULL);
        assert_int_equal(fy_core_tx_half(e->core, &m, "pg", produce_cb, &p), -FY_EBADNAME);
        r.topic = fy_slice_str("pay");
        fy_buf_reset(&rec);
        assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
        m.record = (fy_slice){rec.data, rec.len};
        assert_int_equal(fy_core_tx_half(e->core, &m, "bad group", produce_cb, &p), -FY_EBADNAME);
    }
    fy_buf_free(&rec);
}

static void test_core_tx_delayed_commit(void **state)
{
    env *e = *state;
    static owner a;
    memset(&a, 0, sizeof(a));
    produced p;
    uint64_t t, t0;
    subscribe(e, &a, "g", "later", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);
    t = half(e, "pg", "later", "d", FY_PROP_DELAY_MS, "300");
    run_for(e, 400); /* the delay counts from the commit, not from the half */
    assert_int_equal(a.n, 0);
    t0 = fy_wall_ms();
    assert_int_equal(tx_end(e, t, FY_TXE_COMMIT, &p), FY_OK);
    assert_int_equal(p.res[0].queue_id, UINT32_MAX); /* in the time index */
    wait_n(e, &a, 1);
    assert_true(a.at_ms[0] >= t0 + 300);
}

/* A checker that records what it is asked. */
typedef struct checker {
    int n;
    uint64_t tx[64];
    uint32_t checks[64];
    char group[64][16];
    char body[64][16];
    uint64_t at_ms[64];
} checker;

static void on_check(void *arg, fy_tx_checker *k, const fy_tx_check *chk)
{
    checker *c = arg;
    fy_record_view v;
    assert_true(c->n < 64);
    assert_int_equal(fy_record_decode(chk->record, chk->len, &v), FY_OK);
    c->tx[c->n] = chk->tx_id;
    c->checks[c->n] = chk->checks;
    snprintf(c->group[c->n], 16, "%s", chk->group);
    snprintf(c->body[c->n], 16, "%.*s", (int)v.body.len, (const char *)v.body.p);
    c->at_ms[c->n] = fy_wall_ms();
    c->n++;
}

static const fy_tx_checker_ops checker_ops = {on_check};

typedef struct cwant {
    checker *c;
    int n;
    uint64_t tx; /* checked_tx: this transaction */
} cwant;

static bool checked_n(void *arg)
{
    cwant *w = arg;
    return w->c->n >= w->n;
}

/* Whether transaction w->tx has been checked. */
static bool checked_tx(void *arg)
{
    cwant *w = arg;
    for (int i = 0; i < w->c->n; i++) {
        if (w->c->tx[i] == w->tx) {
            return true;
        }
    }
    return false;
}

static void test_core_tx_check_back(void **state)
{
    env *e = *state;
    static checker mine, other;
    static owner a;
    memset(&mine, 0, sizeof(mine));
    memset(&other, 0, sizeof(other));
    memset(&a, 0, sizeof(a));
    fy_tx_checker *k1, *k2;
    cwant w = {&mine, 1, 0};
    fy_core_stats st;
    uint64_t t1, t0;
    int err;

    fy_core_free(e->core);
    e->cfg.tx_check_after_ms = 400;
    e->cfg.tx_check_interval_ms = 100;
    e->cfg.tx_max_checks = 3;
    core_open(e);
    assert_null(fy_core_tx_checker_add(e->core, "bad group", &checker_ops, &mine, &err));
    assert_int_equal(err, -FY_EBADNAME);
    k1 = fy_core_tx_checker_add(e->core, "pg", &checker_ops, &mine, &err);
    k2 = fy_core_tx_checker_add(e->core, "other", &checker_ops, &other, &err);
    assert_non_null(k1);
    subscribe(e, &a, "g", "pay", "", FY_SUB_CLUSTERING, FY_START_LAST);
    fy_sub_credit(a.sub, 10);

    t0 = fy_wall_ms();
    t1 = half(e, "pg", "pay", "ask-me", NULL, NULL);
    run_until(e, checked_n, &w);
    /* Asked only after tx_check_after, only the checker of its group. */
    assert_true(mine.at_ms[0] >= t0 + 400);
    assert_int_equal(mine.tx[0], t1);
    assert_int_equal(mine.checks[0], 1);
    assert_string_equal(mine.group[0], "pg");
    assert_string_equal(mine.body[0], "ask-me");
    assert_int_equal(other.n, 0);
    /* Answered by a commit: delivered, and never asked again. */
    assert_int_equal(tx_end(e, t1, FY_TXE_COMMIT, NULL), FY_OK);
    wait_n(e, &a, 1);
    run_for(e, 300);
    assert_int_equal(mine.n, 1);
    assert_int_equal(other.n, 0);

    /* Unanswered: asked every interval, up to tx_max_checks, then rolled back. */
    mine.n = 0;
    t1 = half(e, "pg", "pay", "silent", NULL, NULL);
    w.n = 3;
    run_until(e, checked_n, &w);
    assert_int_equal(mine.checks[2], 3);
    assert_true(mine.at_ms[1] - mine.at_ms[0] >= 90);
    for (;;) {
        fy_core_get_stats(e->core, &st);
        if (st.tx_expired == 1) {
            break;
        }
        run_for(e, 20);
    }
    assert_int_equal(tx_end(e, t1, FY_TXE_COMMIT, NULL), -FY_ENOTFOUND);
    run_for(e, 300);
    assert_int_equal(mine.n, 3);
    assert_int_equal(a.n, 1);
    assert_int_equal(st.tx_pending, 0);
    assert_int_equal(st.tx_checks, 4);

    /* With no checker of its group, rounds still count (RocketMQ's rule). */
    fy_core_tx_checker_remove(k1);
    fy_core_tx_checker_remove(k2);
    half(e, "pg", "pay", "nobody", NULL, NULL);
    for (;;) {
        fy_core_get_stats(e->core, &st);
        if (st.tx_expired == 2) {
            break;
        }
        run_for(e, 20);
    }
    assert_int_equal(mine.n, 3);
    assert_int_equal(other.n, 0);
    assert_int_equal(a.n, 1);
}

static void test_core_tx_half_survives_restart(void **state)
{
    env *e = *state;
    static checker mine;
    static owner a;
    memset(&mine, 0, sizeof(mine));
    memset(&a, 0, sizeof(a));
    cwant w = {&mine, 1, 0};
    fy_core_stats st;
    uint64_t t1, t2;
    int err;

    t1 = half(e, "pg", "pay", "kept", NULL, NULL);
    t2 = half(e, "pg", "pay", "dropped", NULL, NULL);
    fy_core_free(e->core);
    e->cfg.tx_check_after_ms = 100;
    e->cfg.tx_check_interval_ms = 100;
    core_open(e);
    fy_core_get_stats(e->core, &st);
    assert_int_equal(st.tx_pending, 2);
    subscribe(e, &a, "g", "pay", "", FY_SUB_CLUSTERING, FY_START_FIRST);
    fy_sub_credit(a.sub, 10);
    run_for(e, 100);
    assert_int_equal(a.n, 0);
    /* Still checked back after the restart, oldest first, and still ends by id. (A round may
     * find t1 old enough and t2, stored a little later, not yet: t1 is then asked again in the
     * next round before t2 is asked once.) */
    fy_core_tx_checker_add(e->core, "pg", &checker_ops, &mine, &err);
    w.n = 1;
    run_until(e, checked_n, &w);
    assert_int_equal(mine.tx[0], t1);
    w.tx = t2;
    run_until(e, checked_tx, &w);
    assert_int_equal(tx_end(e, t1, FY_TXE_COMMIT, NULL), FY_OK);
    assert_int_equal(tx_end(e, t2, FY_TXE_ROLLBACK, NULL), FY_OK);
    wait_n(e, &a, 1);
    run_for(e, 200);
    assert_int_equal(a.n, 1);
    assert_string_equal(a.body[0], "kept");
    /* New ids never reuse old ones after a restart. */
    fy_core_free(e->core);
    core_open(e);
    assert_true(half(e, "pg", "pay", "new", NULL, NULL) > t2);
}

typedef struct txlist {
    int n;
    uint64_t id[8];
    char group[8][16];
    uint32_t checks[8];
    uint64_t stored_ms[8];
} txlist;

static void on_tx(void *arg, const fy_tx_info *t)
{
    txlist *l = arg;
    assert_true(l->n < 8);
    l->id[l->n] = t->tx_id;
    snprintf(l->group[l->n], 16, "%s", t->group);
    l->checks[l->n] = t->checks;
    l->stored_ms[l->n] = t->stored_ms;
    l->n++;
}

static void test_core_tx_list(void **state)
{
    env *e = *state;
    txlist l = {0};
    uint64_t t0 = fy_wall_ms();
    uint64_t t1 = half(e, "pg", "pay", "l1", NULL, NULL);
    uint64_t t2 = half(e, "pg2", "pay", "l2", NULL, NULL);
    assert_int_equal(fy_core_tx_list(e->core, 0, 10, on_tx, &l), FY_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.id[0], t1);
    assert_string_equal(l.group[1], "pg2");
    assert_int_equal(l.checks[0], 0);
    assert_true(l.stored_ms[0] >= t0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(fy_core_tx_list(e->core, t1 + 1, 10, on_tx, &l), FY_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.id[0], t2);
}

/* ---- Light queues ---------------------------------------------------------------------------- */

/* Routes messages whose property "a" starts with x to light queue "lx", and those starting with
 * "xy" also to "lxy". */
static void router_x(void *arg, const fy_record_view *v, fy_route_emit emit, void *ctx)
{
    fy_slice val;
    (*(int *)arg)++;
    if (fy_record_prop_get(v, "a", &val) && val.len > 0 && val.p[0] == 'x') {
        emit(ctx, "lx");
        if (val.len > 1 && val.p[1] == 'y') {
            emit(ctx, "lxy");
        }
    }
}

/* A message with property a=<a> and a delay of delay_ms (0: none), body a. */
static void produce_routed(env *e, const char *topic, const char *a, const char *delay_ms)
{
    fy_record r = {0};
    fy_buf rec = FY_BUF_INIT;
    fy_slice props[4] = {fy_slice_str("a"), fy_slice_str(a), fy_slice_str(FY_PROP_DELAY_MS),
                         fy_slice_str(delay_ms)};
    fy_produce_msg m;
    produced p = {0};
    r.topic = fy_slice_str(topic);
    r.body = fy_slice_str(a);
    r.props = props;
    r.nprops = delay_ms ? 2 : 1;
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    m.record = (fy_slice){rec.data, rec.len};
    m.sharding_key = (fy_slice){NULL, 0};
    assert_int_equal(fy_core_produce(e->core, &m, 1, produce_cb, &p, NULL), FY_OK);
    run_until(e, produced_done, &p);
    assert_int_equal(p.status, FY_OK);
    fy_buf_free(&rec);
}

/* Routes every message to 100 light queues (more than any fixed table would hold). */
static void router_many(void *arg, const fy_record_view *v, fy_route_emit emit, void *ctx)
{
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "many%d", i);
        emit(ctx, name);
    }
}

static void test_core_light_queue_fan_out(void **state)
{
    env *e = *state;
    fy_topic_info lq;
    char name[32];
    fy_core_set_router(e->core, router_many, NULL);
    produce(e, "fan", "", "m", NULL);
    for (int i = 0; i < 100; i++) {
        uint64_t min, max;
        snprintf(name, sizeof(name), "%%LQ%%many%d", i);
        assert_int_equal(fy_core_topic_get(e->core, name, &lq), FY_OK);
        fy_core_queue_range(e->core, lq.topic_id, 0, &min, &max);
        assert_int_equal(max - min, 1);
    }
}

static void test_core_light_queues(void **state)
{
    env *e = *state;
    owner a = {0}, b = {0};
    int err = 0, routed = 0;
    fy_produce_result r1, r3;
    fy_topic_info ti, lx;
    fy_sub_spec spec = {.group = "lqg",
                        .topic = "lx",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_FIRST,
                        .client_id = "t",
                        .no_retry = true,
                        .light = true};
    fy_core_set_router(e->core, router_x, &routed);
    produce_with(e, "lq1", "a", "x1", &r1);
    produce_with(e, "lq2", "a", "y2", NULL); /* not indexed */
    produce_with(e, "lq2", "a", "xy3", &r3);
    assert_int_equal(routed, 3);
    assert_int_equal(fy_core_topic_get(e->core, "%LQ%lx", &lx), FY_OK);
    assert_int_equal(lx.queues, 1);

    a.sub = fy_core_subscribe(e->core, &spec, &ops, &a, &err);
    assert_non_null(a.sub);
    fy_sub_credit(a.sub, 10);
    wait_n(e, &a, 2);
    /* The deliveries are the messages themselves, at their own location. */
    assert_string_equal(a.body[0], "x1");
    assert_string_equal(a.body[1], "xy3");
    assert_int_equal(fy_core_topic_get(e->core, "lq1", &ti), FY_OK);
    assert_int_equal(a.topic_id[0], ti.topic_id);
    assert_int_equal(a.queue[0], r1.queue_id);
    assert_int_equal(a.offset[0], r1.offset);
    assert_int_equal(a.offset[1], r3.offset);
    /* A delayed message is indexed when it becomes due and moves to its topic. */
    produce_routed(e, "lq1", "x-later", "1500"); /* not due before the check below */
    run_for(e, 30);
    assert_int_equal(a.n, 2);
    wait_n(e, &a, 3);
    assert_string_equal(a.body[2], "x-later");
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fy_sub_ack(a.sub, a.ids[i]), FY_OK);
    }

    /* The light queue and the group's position in it survive a restart of the core. */
    fy_sub_close(a.sub);
    fy_core_free(e->core);
    core_open(e);
    fy_core_set_router(e->core, router_x, &routed);
    produce_routed(e, "lq1", "x5", NULL);
    b.sub = fy_core_subscribe(e->core, &spec, &ops, &b, &err);
    assert_non_null(b.sub);
    fy_sub_credit(b.sub, 10);
    wait_n(e, &b, 1);
    assert_string_equal(b.body[0], "x5");
    run_for(e, 30);
    assert_int_equal(b.n, 1);
    fy_sub_close(b.sub);
    assert_int_equal(fy_core_light_delete(e->core, "lx", NULL, NULL), FY_OK);
    assert_int_equal(fy_core_topic_get(e->core, "%LQ%lx", &lx), -FY_ENOTFOUND);
    assert_int_equal(fy_core_topic_get(e->core, "%LQ%lxy", &lx), FY_OK);
}

int main(void)
{
    fy_log_set_level(FY_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_core_topic_create_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_produce_round_robin_and_sharding, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_produce_refuses_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_clustering_divides_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_member_leave_releases_unacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_credit_bounds_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_nack_redelivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_broadcast_every_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_tag_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_sql92_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_delayed_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_committed_offset_survives_restart, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_ack_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_start_positions_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_reset_then_subscribe_before_written, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_ack_timeout_redelivers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_retry_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_group_max_reconsume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_group_old_record_loads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_topic_delete_closes_subscriptions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_topic_delete_forgets_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_topic_delete_failed_write_keeps_topic, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_topic_create_failed_write_undone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_topic_delete_and_create_failed_writes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_topic_delete_erases_queues_above_count, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_open_erases_queues_of_unknown_topics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_produce_refuses_internal_routing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_orderly_one_at_a_time_retry_in_place, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_orderly_owner_change_waits_for_settle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_retention_deletes_old_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_adapter_match_and_no_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_watch_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_unwatch_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_kv_and_produce_kv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_group_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_group_delete_only_its_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_group_delete_failed_write_keeps_group, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_group_made_again_while_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_group_config_failed_write_undone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_core_light_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_light_queue_fan_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_tx_commit_and_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_tx_delayed_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_tx_check_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_tx_half_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_tx_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
