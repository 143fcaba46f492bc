/* SPDX-License-Identifier: Apache-2.0 */
/* Limits that protect the broker from its clients ([limits], docs/security.md): how many
 * connections are open (all protocols together), how fast one source address may open new ones
 * (a token bucket per address), and the per-client bounds adapters apply (subscriptions, bytes
 * queued for a client that does not read). One call from each accept path; loop thread only. */
#ifndef FERRY_BROKER_LIMITS_H
#define FERRY_BROKER_LIMITS_H

#include "broker/config.h"

#include <stdbool.h>
#include <stdint.h>

struct sockaddr;

typedef struct fy_limits fy_limits;

/* Registers the [limits] section over lc (called by fy_broker_config_register). */
int fy_limits_config_register(fy_config *cfg, fy_limits_config *lc);

/* Raises this process's soft RLIMIT_NOFILE to its hard limit and logs both. Returns the soft
 * limit in force afterwards (0 if it cannot be read). Call once at start, before listening. */
uint64_t fy_limits_raise_nofile(void);

/* Connections kept free below the descriptor limit for the store and the admin listener when
 * max_connections is automatic. */
#define FY_LIMITS_FD_RESERVE 1100

/* Refusals being answered at a time (a CONNACK, an AMQP close, an error frame); beyond this a
 * connection over max_connections is closed at accept without an answer, as mosquitto does. */
#define FY_LIMITS_MAX_REFUSING 64

/* Builds the limits from cfg (borrowed; must outlive l). nofile is the descriptor limit used when
 * max_connections is 0 (automatic: nofile minus FY_LIMITS_FD_RESERVE, at least 16). */
fy_limits *fy_limits_new(const fy_limits_config *cfg, uint64_t nofile);
void fy_limits_free(fy_limits *l);

/* The protocols counted apart in the refusal counters. */
typedef enum fy_limit_proto {
    FY_LIMIT_MQTT = 0,
    FY_LIMIT_AMQP = 1,
    FY_LIMIT_NATIVE = 2,
    FY_LIMIT_NPROTO = 3
} fy_limit_proto;

/* What an accept path does with a new socket. */
typedef enum fy_limit_verdict {
    FY_LIMIT_ADMIT = 0,  /* serve it; call fy_limits_release(l, FY_LIMIT_ADMIT) when it is freed */
    FY_LIMIT_REFUSE = 1, /* over max_connections: answer the protocol's refusal to its first
                          * packet (MQTT CONNACK 0x97 / 3.1.1 0x03, AMQP close with
                          * amqp:resource-limit-exceeded, native error), then close; call
                          * fy_limits_release(l, FY_LIMIT_REFUSE) when it is freed */
    FY_LIMIT_DROP = 2    /* close the socket now (connect rate exceeded, or too many refusals
                          * in progress); nothing to release */
} fy_limit_verdict;

/* The one call of each accept path, with the peer address from accept. A NULL l admits all.
 * Counts the refusal and logs refusals once per 10 s (not once per connection). */
fy_limit_verdict fy_limits_accept(fy_limits *l, fy_limit_proto proto, const struct sockaddr *sa);
/* A connection admitted or refused by fy_limits_accept is gone. NULL-safe. */
void fy_limits_release(fy_limits *l, fy_limit_verdict v);

/* Per-client bounds for adapters; each works on a NULL l (the built-in defaults). */
uint32_t fy_limits_max_subscriptions(const fy_limits *l); /* 0 = unlimited */
uint64_t fy_limits_max_queued_bytes(const fy_limits *l);  /* output held for one client */
uint64_t fy_limits_max_connections(const fy_limits *l);   /* in force (automatic resolved) */
/* A subscription refused for max_subscriptions (counted for /metrics). */
void fy_limits_count_subscription_refused(fy_limits *l, fy_limit_proto proto);

/* Counters for /metrics. */
typedef struct fy_limits_stats {
    uint64_t open; /* connections admitted and not yet released */
    uint64_t max_connections;
    uint64_t refused_connections[FY_LIMIT_NPROTO]; /* over max_connections (answered or not) */
    uint64_t refused_rate[FY_LIMIT_NPROTO];        /* over max_connect_rate */
    uint64_t refused_subscriptions[FY_LIMIT_NPROTO];
    uint64_t rate_addresses; /* source addresses with a bucket now */
} fy_limits_stats;

void fy_limits_get_stats(const fy_limits *l, fy_limits_stats *out);

#endif
