/* SPDX-License-Identifier: Apache-2.0 */
/* The broker process: what ferryd's modules share — the loop, the configuration and the store.
 * One instance per process, created by main.c, touched only on the loop thread. */
#ifndef FERRY_BROKER_BROKER_H
#define FERRY_BROKER_BROKER_H

#include "broker/config.h"
#include "store/store.h"

#include <stdint.h>

struct event_base;
typedef struct fy_admin fy_admin;
typedef struct fy_core fy_core;
typedef struct fy_native fy_native;
typedef struct fy_adapters fy_adapters;
typedef struct fy_auth fy_auth;
typedef struct fy_limits fy_limits;
typedef struct fy_tls fy_tls;

typedef struct fy_broker {
    struct event_base *base;
    fy_config *conf;       /* the parsed configuration (sections, for display) */
    fy_broker_config *cfg; /* the broker's own keys */
    fy_store *store;
    fy_core *core;
    fy_native *native;
    fy_admin *admin;
    fy_adapters *adapters; /* the protocol adapters (adapters/adapter.h) */
    fy_auth *auth;         /* users and ACLs (broker/auth.h) */
    fy_limits *limits;     /* connection counts and rate buckets (broker/limits.h) */
    fy_tls *tls;           /* the TLS context (broker/tls.h); NULL: no TLS listeners */
    uint64_t started_mono_ms;
    uint64_t started_wall_ms;
} fy_broker;

#endif
