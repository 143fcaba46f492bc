/* SPDX-License-Identifier: Apache-2.0 */
/* What the stateful connection targets (mqtt_conn, mqtt_ws, amqp_conn) share: the store and
 * core under the adapter, pumping the loop, playing one input as a client's byte stream, and an
 * authentication hook that answers later.
 * Header-only: each target is one file. */
#ifndef FERRY_TESTS_FUZZ_CONN_H
#define FERRY_TESTS_FUZZ_CONN_H

#include "adapters/adapter.h"
#include "broker/auth.h"
#include "broker/core.h"
#include "store/store.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- An authentication hook with pending checks ------------------------------------------- */

/* A check of the fake hook: answered on the next turn of the loop, as the broker's worker would
 * answer later. */
typedef struct fuzz_auth_check {
    struct event *ev;
    fy_auth_done_fn done;
    void *done_arg;
    int result;
} fuzz_auth_check;

static inline void fuzz_auth_fire(evutil_socket_t fd, short what, void *arg)
{
    fuzz_auth_check *k = arg;
    fy_auth_done_fn done = k->done;
    void *done_arg = k->done_arg;
    int result = k->result;
    event_free(k->ev);
    free(k);
    done(done_arg, result);
}

/* The env's authenticate (arg: the event_base): anonymous clients pass at once; a user name
 * starting with 'b' is refused as busy at once; any other is pending, and then passes with the
 * password "pw" (and is refused with any other): on the next turn of the loop, or 20 ms later for
 * a name starting with 'h' (a slow check, whose answer comes after the input and its end, and
 * which a connection closed meanwhile cancels). So inputs reach the adapters' paths that hold a
 * connection's input while its check runs, resume it, or cancel. (A check must answer: a login
 * deadline does not run while one is pending, and the end of the input waits for it.) */
static inline int fuzz_auth_start(void *arg, const fy_auth_request *req, fy_auth_done_fn done,
                                  void *done_arg, fy_auth_job **job)
{
    fuzz_auth_check *k;
    *job = NULL;
    if (!req->has_username) {
        return FY_OK;
    }
    if (req->username.len > 0 && req->username.p[0] == 'b') {
        return -FY_EAGAIN;
    }
    k = calloc(1, sizeof(*k));
    if (!k || !(k->ev = event_new(arg, -1, 0, fuzz_auth_fire, k))) {
        abort();
    }
    k->done = done;
    k->done_arg = done_arg;
    k->result = req->has_password && req->password.len == 2 && memcmp(req->password.p, "pw", 2) == 0
                    ? FY_OK
                    : -FY_EPERM;
    if (req->username.len == 0 || req->username.p[0] != 'h') {
        event_active(k->ev, EV_TIMEOUT, 0);
    } else {
        struct timeval slow = {0, 20000};
        event_add(k->ev, &slow);
    }
    *job = (fy_auth_job *)k;
    return FY_AUTH_PENDING;
}

static inline void fuzz_auth_cancel(void *arg, fy_auth_job *job)
{
    fuzz_auth_check *k = (fuzz_auth_check *)job;
    if (k) {
        event_free(k->ev);
        free(k);
    }
}

/* A store in dir and a core over it on base, and the adapter env a target starts its adapter
 * with: anonymous clients allowed, users checked by fuzz_auth_start. Aborts on failure. */
static inline fy_adapter_env fuzz_broker_open(struct event_base *base, const char *dir,
                                              const fy_broker_config *bc, fy_store **store,
                                              fy_core **core)
{
    char err[256];
    fy_store_opts so = {.dir = dir};
    if (fy_store_open(&so, base, store, err, sizeof(err)) != FY_OK ||
        !(*core = fy_core_new(base, *store, bc, err, sizeof(err)))) {
        abort();
    }
    return (fy_adapter_env){.base = base,
                            .core = *core,
                            .max_message_size = bc->max_message_size,
                            .authenticate = fuzz_auth_start,
                            .auth_cancel = fuzz_auth_cancel,
                            .auth_arg = base,
                            .allow_anonymous = true};
}

/* Runs `rounds` non-blocking passes of the loop. */
static inline void fuzz_run_loop(struct event_base *base, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
}

/* Plays data[1..size) into client, the peer end of a socketpair whose other end the adapter
 * accepted, in pieces of data[0] % 64 + 1 bytes (0x3f: 64), pumping the loop and draining what
 * the broker answers after each; then EOF, and the socket is closed. */
static inline void fuzz_play(struct event_base *base, int client, const uint8_t *data, size_t size)
{
    size_t piece = size > 0 ? (size_t)data[0] % 64 + 1 : 1, off = 1;
    char sink[4096];
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        if (write(client, data + off, n) < 0) {
            break;
        }
        off += n;
        fuzz_run_loop(base, 2);
        while (read(client, sink, sizeof(sink)) > 0) {
        }
    }
    shutdown(client, SHUT_WR);
    fuzz_run_loop(base, 20);
    while (read(client, sink, sizeof(sink)) > 0) {
    }
    close(client);
    fuzz_run_loop(base, 20);
}

#endif
