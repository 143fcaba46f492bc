/* SPDX-License-Identifier: Apache-2.0 */
/* Stateful libFuzzer target for the MQTT adapter: each input is the byte stream of one client
 * connection (fed in pieces through a socketpair into a real adapter on a real core and store),
 * from the first byte of CONNECT to EOF. Whatever it holds, the broker must not crash, leak or
 * hang; sessions it leaves behind are ended before the next input. The first byte of the input
 * chooses how the rest is cut into writes (so packets also arrive split). */
#include "adapters/mqtt/private.h"
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

extern const fy_adapter fy_mqtt_adapter;

static struct event_base *base;
static fy_store *store;
static fy_core *core;
static mqtt_server *srv;

/* mqtt_ws_fuzz.c builds this harness again with FUZZ_MQTT_WS: the WebSocket side's accept. */
#ifdef FUZZ_MQTT_WS
#define FUZZ_ACCEPT mqtt_ws_accept
static char dir[] = "/tmp/ferry-fuzz-mqtt-ws-XXXXXX";
#else
#define FUZZ_ACCEPT mqtt_conn_accept
static char dir[] = "/tmp/ferry-fuzz-mqtt-XXXXXX";
#endif

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* At exit: the adapter, core and store go, and so does the temporary data directory. */
static void teardown(void)
{
    fy_mqtt_adapter.stop(srv);
    fy_core_free(core);
    fy_store_close(store);
    event_base_free(base);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    static fy_broker_config bc;
    static fy_mqtt_config mc;
    static fy_config *cfg;
    char err[256];
    fy_adapter_env env;
    void *state = NULL;
    fy_log_set_level(FY_LOG_OFF);
    signal(SIGPIPE, SIG_IGN); /* as ferryd: a peer that went away is an error, not a signal */
    cfg = fy_config_new();    /* kept for the process: the adapter reads its strings */
    if (!mkdtemp(dir) || fy_broker_config_register(cfg, &bc) != FY_OK ||
        fy_config_add_section(cfg, "mqtt", fy_mqtt_adapter.keys, fy_mqtt_adapter.nkeys, &mc) !=
            FY_OK ||
        fy_config_set(cfg, "mqtt", "port", "0", err, sizeof(err)) != FY_OK ||
        fy_config_set(cfg, "", "max_message_size", "64KiB", err, sizeof(err)) != FY_OK) {
        abort();
    }
    base = event_base_new();
    env = fuzz_broker_open(base, dir, &bc, &store, &core);
    if (fy_mqtt_adapter.start(&env, &mc, &state, err, sizeof(err)) != FY_OK) {
        abort();
    }
    srv = state; /* the configuration stays alive for the process (the adapter reads it) */
    atexit(teardown);
}

typedef struct ended {
    mqtt_session *v[4096];
    size_t n;
} ended;

static void collect(void *arg, const char *key, void *val)
{
    ended *e = arg;
    mqtt_session *s = val;
    if (!s->conn && e->n < sizeof(e->v) / sizeof(e->v[0])) {
        e->v[e->n++] = s;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    ended e;
    if (!base) {
        setup();
    }
    if (size < 1 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) {
        return 0;
    }
    FUZZ_ACCEPT(srv, fds[0], "fuzz", FY_LIMIT_ADMIT);
    fuzz_play(base, fds[1], data, size);
    /* Durable sessions it created would pile up across inputs: end them. */
    e.n = 0;
    fy_strmap_each(&srv->sessions, collect, &e);
    for (size_t i = 0; i < e.n; i++) {
        mqtt_session_end(e.v[i]);
    }
    fuzz_run_loop(base, 5);
    return 0;
}
