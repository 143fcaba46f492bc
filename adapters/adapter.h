/* SPDX-License-Identifier: Apache-2.0 */
/* What a protocol adapter is to the broker: one const struct fy_adapter per protocol, listed in
 * adapters/adapters.c. An adapter owns a config section (its key table over its own struct),
 * is started on the broker's loop with the core, and is stopped before the core goes. It
 * reaches the model only through broker/core.h. */
#ifndef FERRY_ADAPTERS_ADAPTER_H
#define FERRY_ADAPTERS_ADAPTER_H

#include "broker/auth.h"
#include "broker/config.h"
#include "broker/core.h"
#include "broker/limits.h"
#include "broker/tls.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;

#define FY_ADAPTER_ABI 2

/* Authentication and authorization (broker/auth.h): fy_auth_request, fy_auth_fn (which may answer
 * later: FY_AUTH_PENDING), fy_auth_cancel_fn, fy_acl_op and fy_authz_fn. The hooks in the env are
 * the broker's; an adapter only calls them. */

/* What the broker hands an adapter at start. Borrowed; valid until stop returns. */
typedef struct fy_adapter_env {
    struct event_base *base;
    fy_core *core;
    uint64_t max_message_size; /* the broker's max_message_size (bytes of a body) */
    uint16_t broker_id;
    /* NULL: allow everyone. A check may be pending (FY_AUTH_PENDING): the connection then
     * handles no further input until the result comes, and a connection that ends first calls
     * auth_cancel with its job. */
    fy_auth_fn authenticate;
    fy_auth_cancel_fn auth_cancel;
    void *auth_arg;
    /* May user (NULL: anonymous) do op on topic? NULL: everything is allowed. Called with
     * auth_arg. MQTT asks per PUBLISH, per SUBSCRIBE filter and per message delivered. */
    fy_authz_fn authorize;
    bool allow_anonymous; /* false: clients must authenticate (AMQP offers no ANONYMOUS) */
    /* Connection counts, rate buckets and per-client bounds (broker/limits.h); NULL: none. Each
     * accept path calls fy_limits_accept once and fy_limits_release when the connection goes. */
    fy_limits *limits;
    /* The broker's TLS context ([tls], broker/tls.h), NULL when no certificate is configured:
     * an adapter then opens no TLS listener. fy_tls_bev_new gives a TLS bufferevent for an
     * accepted socket. */
    fy_tls *tls;
} fy_adapter_env;

/* Counters an adapter shows in /health. */
typedef struct fy_adapter_stats {
    uint64_t connections;  /* open now */
    uint64_t sessions;     /* known now (online or not) */
    uint64_t messages_in;  /* accepted from clients since start */
    uint64_t messages_out; /* delivered to clients since start */
} fy_adapter_stats;

/* One open connection, for the admin API. Everything borrowed for the call. */
typedef struct fy_conn_info {
    uint64_t id;           /* the adapter's connection number (the `conn=` of its log lines) */
    const char *client_id; /* "" before the client said who it is */
    const char *peer;      /* address:port */
    const char *user;      /* NULL: anonymous */
    uint32_t subscriptions;
    uint32_t inflight; /* deliveries sent and not yet settled */
} fy_conn_info;

typedef void (*fy_conn_info_fn)(void *arg, const fy_conn_info *ci);

typedef struct fy_adapter {
    uint32_t abi;              /* FY_ADAPTER_ABI */
    const char *name;          /* "mqtt": also its config section and log module */
    const fy_config_key *keys; /* its section's keys, over a struct of conf_size bytes */
    size_t nkeys;
    size_t conf_size;
    /* Starts serving (when the section says so): binds listeners, loads state. Returns FY_OK
     * and *state (NULL when disabled), or an error with a reason in err. Logs
     * `INFO <name> addr=A port=P msg="listening"` for each listener. */
    int (*start)(const fy_adapter_env *env, const void *conf, void **state, char *err,
                 size_t errlen);
    /* Stops accepting, closes every connection and frees state. NULL-safe. */
    void (*stop)(void *state);
    /* Fills counters; may be NULL. */
    void (*stats)(void *state, fy_adapter_stats *out);
    /* Optional: calls fn for each open connection, on the loop, never re-entering the adapter
     * from fn (fn only reads). */
    void (*each_connection)(void *state, fy_conn_info_fn fn, void *arg);
    /* Optional: closes connection id as the protocol says for an administrator's action (MQTT
     * 5: DISCONNECT 0x98; AMQP: close with amqp:connection:forced). The connection is freed
     * later, not inside this call. FY_OK or -FY_ENOTFOUND. */
    int (*kick)(void *state, uint64_t id);
} fy_adapter;

/* ---- The list (adapters/adapters.c) ---------------------------------------------------------- */

typedef struct fy_adapters fy_adapters;

/* Allocates a config struct per adapter and registers its section in cfg. */
fy_adapters *fy_adapters_new(fy_config *cfg);
/* Starts each adapter. FY_OK, or the first error (the ones started are stopped again). */
int fy_adapters_start(fy_adapters *a, const fy_adapter_env *env, char *err, size_t errlen);
/* Stops every started adapter (before the core is freed). NULL-safe, idempotent. */
void fy_adapters_stop(fy_adapters *a);
/* Calls fn for each started adapter with its counters. */
void fy_adapters_each_stats(fy_adapters *a,
                            void (*fn)(void *arg, const char *name, const fy_adapter_stats *s),
                            void *arg);
/* Connections of the started adapter called name: FY_OK, -FY_ENOTFOUND (no such adapter
 * started), -FY_ENOTSUP (it cannot list them). */
int fy_adapters_each_connection(fy_adapters *a, const char *name, fy_conn_info_fn fn, void *arg);
/* Kicks connection id of adapter name: FY_OK, -FY_ENOTFOUND, -FY_ENOTSUP. */
int fy_adapters_kick(fy_adapters *a, const char *name, uint64_t id);
/* Frees the list and the config structs (after fy_config_free, which frees their strings). */
void fy_adapters_free(fy_adapters *a);

#endif
