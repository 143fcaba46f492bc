/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the core's light queues when the store refuses or fails writes: a light queue
 * deleted for an owner that has gone (an MQTT session's end) is gone from the core whatever the
 * store says, so that a new owner of the name (a client connecting again with a clean start)
 * starts with an empty one and never gets the entries of the one before. */
#include "broker/config.h"
#include "broker/core.h"
#include "common/clock.h"
#include "common/log.h"
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

/* A member that counts what it gets. */
typedef struct owner {
    fy_sub *sub;
    int n;
    uint64_t ids[16];
} owner;

static void on_deliver(void *arg, fy_sub *sub, const fy_delivery *d)
{
    owner *o = arg;
    assert_true(o->n < 16);
    o->ids[o->n++] = d->id;
}

static void on_closed(void *arg, fy_sub *sub, int status, const char *reason)
{
    ((owner *)arg)->sub = NULL;
}

static const fy_sub_ops ops = {on_deliver, on_closed};

static void run_until(env *e, bool (*cond)(void *), void *arg)
{
    uint64_t deadline = fy_mono_ms() + 10000;
    while (!cond(arg)) {
        assert_true(fy_mono_ms() < deadline);
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(200);
    }
}

static void run_for(env *e, uint64_t ms)
{
    uint64_t end = fy_mono_ms() + ms;
    while (fy_mono_ms() < end) {
        event_base_loop(e->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(500);
    }
}

static bool store_idle(void *arg)
{
    fy_store_stats st;
    fy_store_get_stats(((env *)arg)->store, &st);
    return st.pending == 0;
}

static bool store_unhealthy(void *arg)
{
    return !fy_store_healthy(((env *)arg)->store);
}

static int setup(void **state)
{
    env *e = calloc(1, sizeof(*e));
    fy_store_opts so = {0};
    char err[256];
    snprintf(e->dir, sizeof(e->dir), "%s", fy_test_tmpdir("core-light"));
    e->base = event_base_new();
    e->conf = fy_config_new();
    assert_int_equal(fy_broker_config_register(e->conf, &e->cfg), FY_OK);
    so.dir = e->dir;
    so.recover_every_ms = -1; /* unhealthy until the test says */
    assert_int_equal(fy_store_open(&so, e->base, &e->store, err, sizeof(err)), FY_OK);
    e->core = fy_core_new(e->base, e->store, &e->cfg, err, sizeof(err));
    if (!e->core) {
        fail_msg("core: %s", err);
    }
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env *e = *state;
    fy_store_hold(e->store, false);
    fy_store_recover(e->store);
    fy_core_free(e->core);
    fy_store_close(e->store);
    fy_config_free(e->conf);
    event_base_free(e->base);
    fy_test_rmrf(e->dir);
    free(e);
    return 0;
}

/* Routes every message to light queue "mqtt%x". */
static void router_all(void *arg, const fy_record_view *v, fy_route_emit emit, void *ctx)
{
    emit(ctx, "mqtt%x");
}

typedef struct produced {
    int calls;
    int status;
} produced;

static void produce_cb(void *arg, int status, const fy_produce_result *res, size_t n)
{
    ((produced *)arg)->calls++;
    ((produced *)arg)->status = status;
}

static bool produced_done(void *arg)
{
    return ((produced *)arg)->calls > 0;
}

static void produce(env *e, const char *topic, const char *body)
{
    fy_record r = {0};
    fy_buf rec = FY_BUF_INIT;
    fy_produce_msg m = {0};
    produced p = {0};
    r.topic = fy_slice_str(topic);
    r.body = fy_slice_str(body);
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    m.record = (fy_slice){rec.data, rec.len};
    assert_int_equal(fy_core_produce(e->core, &m, 1, produce_cb, &p, NULL), FY_OK);
    run_until(e, produced_done, &p);
    assert_int_equal(p.status, FY_OK);
    fy_buf_free(&rec);
}

static fy_sub *light_member(env *e, owner *o)
{
    fy_sub_spec spec = {.group = "mqtt%x",
                        .topic = "mqtt%x",
                        .mode = FY_SUB_CLUSTERING,
                        .start = FY_START_FIRST,
                        .client_id = "x",
                        .no_retry = true,
                        .light = true};
    char why[200] = "";
    int err = 0;
    spec.errbuf = why;
    spec.errbuf_len = sizeof(why);
    o->sub = fy_core_subscribe(e->core, &spec, &ops, o, &err);
    if (!o->sub) {
        fail_msg("subscribe: %s %s", fy_strerror(err), why);
    }
    fy_sub_credit(o->sub, 16);
    return o->sub;
}

static bool has_two(void *arg)
{
    return ((owner *)arg)->n >= 2;
}

/* A light queue "mqtt%x" of group mqtt%x with two entries, the first acknowledged, the member gone
 * (an MQTT session whose client left). Returns the light queue's topic id. */
static uint32_t session_with_backlog(env *e)
{
    owner a = {0};
    fy_topic_info lq;
    fy_core_set_router(e->core, router_all, NULL);
    produce(e, "dev", "m1");
    produce(e, "dev", "m2");
    light_member(e, &a);
    run_until(e, has_two, &a);
    assert_int_equal(fy_sub_ack(a.sub, a.ids[0]), FY_OK);
    fy_sub_close(a.sub);
    run_until(e, store_idle, e);
    assert_int_equal(fy_core_topic_get(e->core, "%LQ%mqtt%x", &lq), FY_OK);
    return lq.topic_id;
}

/* Submits a write too large for the log (RLIMIT_FSIZE): the commit it is in fails, with what
 * was submitted (held) before it. */
static void fail_the_write(env *e, bool (*until)(void *), void *arg)
{
    struct rlimit old, small;
    size_t big_len = 4u << 20;
    char *big = malloc(big_len + 1);
    fy_record r = {0};
    fy_wbatch *b = fy_wbatch_new();
    memset(big, 'x', big_len);
    big[big_len] = '\0';
    r.topic = fy_slice_str("other");
    r.body = fy_slice_str(big);
    assert_true(fy_wbatch_append(b, 999, 0, &r) >= 0);
    fy_store_submit(e->store, b, NULL, NULL);
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 1u << 20;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fy_store_hold(e->store, false);
    run_until(e, until, arg);
    setrlimit(RLIMIT_FSIZE, &old);
    assert_false(fy_store_healthy(e->store));
    free(big);
}

/* After the light queue's deletion: the name is free, and a new member of the group reads a new,
 * empty light queue, not the entries of the one before (acknowledged or not). */
static void check_fresh(env *e, uint32_t old_id)
{
    owner b = {0};
    fy_topic_info lq;
    uint64_t min = 0, max = 0;
    assert_int_equal(fy_core_topic_get(e->core, "%LQ%mqtt%x", &lq), -FY_ENOTFOUND);
    light_member(e, &b);
    assert_int_equal(fy_core_topic_get(e->core, "%LQ%mqtt%x", &lq), FY_OK);
    assert_int_not_equal(lq.topic_id, old_id);
    fy_core_queue_range(e->core, lq.topic_id, 0, &min, &max);
    assert_int_equal(max, 0);
    run_for(e, 100);
    assert_int_equal(b.n, 0);
    fy_sub_close(b.sub);
}

static bool status_set(void *arg)
{
    return *(int *)arg != 1000;
}

static void status_cb(void *arg, int status)
{
    *(int *)arg = status;
}

/* The session ends (mqtt_session_end: its group, then its light queue) while the store refuses
 * writes (a full disk): the light queue is gone from the core all the same, its deletion not
 * stored. */
static void test_core_light_delete_while_unhealthy(void **state)
{
    env *e = *state;
    uint32_t id = session_with_backlog(e);
    int st = 1000;
    fy_store_hold(e->store, true);
    fail_the_write(e, store_unhealthy, e);
    fy_core_group_delete(e->core, "mqtt%x", NULL, NULL); /* refused: its consumer stays */
    assert_int_equal(fy_core_light_delete(e->core, "mqtt%x", status_cb, &st), FY_OK);
    run_until(e, status_set, &st);
    assert_true(st < 0);
    check_fresh(e, id);
}

/* The session ends (its group, then its light queue), and the write of those deletions fails:
 * the light queue is not put back for the next owner of the name, which would read it from its
 * first entry. */
static void test_core_light_delete_failed_write(void **state)
{
    env *e = *state;
    uint32_t id = session_with_backlog(e);
    int st = 1000;
    fy_store_hold(e->store, true);
    assert_int_equal(fy_core_group_delete(e->core, "mqtt%x", NULL, NULL), FY_OK);
    assert_int_equal(fy_core_light_delete(e->core, "mqtt%x", status_cb, &st), FY_OK);
    fail_the_write(e, status_set, &st);
    assert_true(st < 0);
    check_fresh(e, id);
}

int main(void)
{
    fy_log_set_level(FY_LOG_FATAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_core_light_delete_while_unhealthy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_light_delete_failed_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
