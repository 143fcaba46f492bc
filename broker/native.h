/* SPDX-License-Identifier: Apache-2.0 */
/* The native protocol server (docs/protocol.md): a TCP listener on the loop whose connections
 * speak framed requests and get responses and pushed deliveries. It translates frames into
 * core calls only. */
#ifndef FERRY_BROKER_NATIVE_H
#define FERRY_BROKER_NATIVE_H

#include "broker/core.h"

#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Room in a frame beyond the largest body: record header, names, keys, properties. */
#define FY_NATIVE_FRAME_SLACK (1u << 20)
typedef struct fy_native fy_native;
typedef struct fy_auth fy_auth;

/* Listens on addr:port (0 = a free port) and serves connections on base. auth (borrowed, may
 * be NULL: everyone may do anything) checks HELLO's credentials and each request. Returns FY_OK
 * and *out, or -FY_EIO with a reason in err. */
int fy_native_start(struct event_base *base, fy_core *core, uint16_t broker_id, size_t max_frame,
                    const char *addr, uint16_t port, fy_auth *auth, fy_native **out, char *err,
                    size_t errlen);
typedef struct fy_limits fy_limits;
/* Applies limits (borrowed, may be NULL) to the connections accepted from now on: max_connections
 * and the connect rate at accept, max_subscriptions, max_queued_bytes; and closes a connection
 * that sends no HELLO within hello_timeout_ms (0: never). */
void fy_native_set_limits(fy_native *n, fy_limits *limits, uint64_t hello_timeout_ms);
/* The port actually bound. */
uint16_t fy_native_port(const fy_native *n);
typedef struct fy_tls fy_tls;
/* Opens the TLS listener on addr:port (0 = a free port) with tls (borrowed, outlives n).
 * FY_OK, or -FY_EINVAL / -FY_EIO with a reason in err. */
int fy_native_listen_tls(fy_native *n, fy_tls *tls, const char *addr, uint16_t port, char *err,
                         size_t errlen);
/* The TLS port bound (0: none). */
uint16_t fy_native_tls_port(const fy_native *n);
struct fy_conn_info;
/* Calls fn for each open connection (adapters/adapter.h's fy_conn_info; fn only reads). */
void fy_native_each_connection(fy_native *n, void (*fn)(void *arg, const struct fy_conn_info *ci),
                               void *arg);
/* Closes connection id (its subscriptions leave their groups). FY_OK or -FY_ENOTFOUND. */
int fy_native_kick(fy_native *n, uint64_t id);
/* Stops accepting and closes every connection (their subscriptions leave their groups;
 * requests waiting for the store are answered to nobody). NULL-safe. */
void fy_native_stop(fy_native *n);

#endif
