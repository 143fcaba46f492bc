/* SPDX-License-Identifier: Apache-2.0 */
/* Stateful libFuzzer target for the AMQP 1.0 adapter: each input is the byte stream of one client
 * connection (fed in pieces through a socketpair into a real adapter, on a real core and store),
 * from the protocol header (SASL or AMQP) to EOF. Whatever it holds, the broker must not crash,
 * leak or hang; what it leaves behind (groups, topics, durable subscriptions) is deleted before
 * the next input. The first byte of the input chooses how the rest is cut into writes. */
#include "adapters/amqp/private.h"
#include "broker/config.h"
#include "common/log.h"
#include "store/store.h"
#include "tests/fuzz/fuzz_conn.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const fy_adapter fy_amqp_adapter;

/* The broker is started again on a fresh data directory after this many inputs. On one broker
 * every input ran slower than the one before (13 executions a second after 10 minutes, from
 * 110): the store keeps the queue ranges of deleted topics, in a table (common/u64map.c) whose
 * hash takes, up to 32768 slots, bits of the queue id alone, so that lookups walk long runs;
 * and LevelDB keeps the deletions until it compacts them. */
#define INPUTS_PER_BROKER 500

/* How long (in naps of at most 1 ms) the store and the adapter get to finish what an input
 * started: far more than they need, so running out is a hang of the adapter, not a slow disk. */
#define MAX_NAPS 10000

static struct event_base *base;
static fy_store *store;
static fy_core *core;
static amqp_server *srv;
static struct event *nap_ev;
#define DIR_TEMPLATE "/tmp/ferry-fuzz-amqp-XXXXXX"
static char dir[sizeof(DIR_TEMPLATE)];

/* The names of a list of topics or groups, owned. */
typedef struct names {
    char **v;
    size_t n;
} names;

static names baseline; /* the topics the core had when the broker started */

static void names_add(names *x, const char *name)
{
    x->v = realloc(x->v, (x->n + 1) * sizeof(*x->v));
    if (!x->v || !(x->v[x->n] = strdup(name))) {
        abort();
    }
    x->n++;
}

static void names_free(names *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->v[i]);
    }
    free(x->v);
    *x = (names){NULL, 0};
}

static bool names_has(const names *x, const char *name)
{
    for (size_t i = 0; i < x->n; i++) {
        if (strcmp(x->v[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void collect_topic(void *arg, const fy_topic_info *t)
{
    names_add(arg, t->name);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static fy_broker_config bc;
static fy_amqp_config ac;

/* A broker on a fresh data directory: store, core, and the adapter started with
 * allow_anonymous. */
static void broker_start(void)
{
    char err[256];
    fy_adapter_env env;
    void *state = NULL;
    snprintf(dir, sizeof(dir), "%s", DIR_TEMPLATE);
    if (!mkdtemp(dir)) {
        abort();
    }
    env = fuzz_broker_open(base, dir, &bc, &store, &core);
    if (fy_amqp_adapter.start(&env, &ac, &state, err, sizeof(err)) != FY_OK) {
        abort();
    }
    srv = state;
    fy_core_topic_each(core, collect_topic, &baseline);
}

/* The adapter, core and store go, and so does the data directory. */
static void broker_stop(void)
{
    fy_amqp_adapter.stop(srv);
    fy_core_free(core);
    fy_store_close(store);
    names_free(&baseline);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void teardown(void)
{
    broker_stop();
    event_free(nap_ev);
    event_base_free(base);
}

static void nap_done(evutil_socket_t fd, short what, void *arg)
{
}

static void setup(void)
{
    static fy_config *cfg;
    char err[256];
    fy_log_set_level(FY_LOG_OFF);
    signal(SIGPIPE, SIG_IGN); /* as ferryd: a peer that went away is an error, not a signal */
    cfg = fy_config_new();    /* kept for the process: the adapter reads its strings */
    if (fy_broker_config_register(cfg, &bc) != FY_OK ||
        fy_config_add_section(cfg, "amqp", fy_amqp_adapter.keys, fy_amqp_adapter.nkeys, &ac) !=
            FY_OK ||
        fy_config_set(cfg, "amqp", "port", "0", err, sizeof(err)) != FY_OK ||
        fy_config_set(cfg, "", "max_message_size", "64KiB", err, sizeof(err)) != FY_OK) {
        abort();
    }
    base = event_base_new();
    nap_ev = evtimer_new(base, nap_done, NULL);
    broker_start();
    atexit(teardown);
}

/* One turn of the loop that waits at most 1 ms for something to happen (a store completion
 * posted by the writer thread). */
static void nap(void)
{
    struct timeval tv = {0, 1000};
    evtimer_add(nap_ev, &tv);
    event_base_loop(base, EVLOOP_ONCE);
    evtimer_del(nap_ev);
}

/* ---- Cleaning up after an input ------------------------------------------------------------ */

static unsigned outstanding; /* store writes of the clean-up not yet done */

static void count_done(void *arg, int status)
{
    outstanding--;
}

static void wait_outstanding(const char *what)
{
    for (int i = 0; outstanding > 0; i++) {
        if (i == MAX_NAPS) {
            fprintf(stderr, "amqp_conn_fuzz: %u store writes (%s) never completed\n", outstanding,
                    what);
            abort();
        }
        nap();
    }
}

static void collect_group(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    if (members > 0) {
        fprintf(stderr, "amqp_conn_fuzz: group %s has %u members with no connection left\n", name,
                (unsigned)members);
        abort();
    }
    names_add(arg, name);
}

/* Deletions of the keys of the adapter's namespace, keys owned. */
typedef struct key_dels {
    fy_kv_op *v;
    size_t n;
} key_dels;

static int collect_key(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    key_dels *x = arg;
    void *copy = malloc(klen ? klen : 1);
    x->v = realloc(x->v, (x->n + 1) * sizeof(*x->v));
    if (!x->v || !copy) {
        abort();
    }
    memcpy(copy, key, klen);
    x->v[x->n++] = (fy_kv_op){true, {copy, klen}, {NULL, 0}};
    return 0;
}

/* Ends what the input left behind: every connection is freed (after its store completions),
 * then the groups (durable and shared subscriptions, named groups), the topics it created
 * (its own, dynamic sources' temporary ones, retry and dead-letter topics) and the adapter's
 * durable-subscription records are deleted, so that inputs do not pile state up. */
static void cleanup(void)
{
    names groups = {NULL, 0}, topics = {NULL, 0};
    key_dels keys = {NULL, 0};
    for (int i = 0; srv->conns; i++) {
        if (i == MAX_NAPS) {
            fprintf(stderr, "amqp_conn_fuzz: connection %llu not freed (closing=%d pending=%u)\n",
                    (unsigned long long)srv->conns->id, (int)srv->conns->closing,
                    (unsigned)srv->conns->pending);
            abort();
        }
        nap();
    }
    /* Writes the adapter made without waiting (a durable subscription's record) are done once
     * an empty batch submitted after them is: the store completes batches in order. */
    if (fy_core_kv_write(core, "amqp", NULL, 0, count_done, NULL) == FY_OK) {
        outstanding++;
    }
    wait_outstanding("barrier");
    fy_core_group_each(core, collect_group, &groups);
    for (size_t i = 0; i < groups.n; i++) {
        if (fy_core_group_delete(core, groups.v[i], count_done, NULL) == FY_OK) {
            outstanding++;
        }
    }
    fy_core_topic_each(core, collect_topic, &topics);
    for (size_t i = 0; i < topics.n; i++) {
        if (!names_has(&baseline, topics.v[i]) &&
            fy_core_topic_delete(core, topics.v[i], count_done, NULL) == FY_OK) {
            outstanding++;
        }
    }
    fy_core_kv_scan(core, "amqp", "", 0, collect_key, &keys);
    if (keys.n > 0 && fy_core_kv_write(core, "amqp", keys.v, keys.n, count_done, NULL) == FY_OK) {
        outstanding++;
    }
    for (size_t i = 0; i < keys.n; i++) {
        free((void *)keys.v[i].key.p);
    }
    free(keys.v);
    names_free(&groups);
    names_free(&topics);
    wait_outstanding("clean-up");
    fuzz_run_loop(base, 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    static unsigned inputs;
    if (!base) {
        setup();
    } else if (++inputs % INPUTS_PER_BROKER == 0) {
        broker_stop();
        broker_start();
    }
    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) {
        return 0;
    }
    amqp_conn_accept(srv, fds[0], "fuzz", FY_LIMIT_ADMIT);
    fuzz_play(base, fds[1], data, size);
    cleanup();
    return 0;
}
