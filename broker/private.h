/* SPDX-License-Identifier: Apache-2.0 */
/* Declarations shared by the files of the core (core.c, core_tx.c); nothing outside broker/
 * core code uses them. Loop thread only, like the core itself. */
#ifndef FERRY_BROKER_PRIVATE_H
#define FERRY_BROKER_PRIVATE_H

#include "broker/core.h"

struct fy_broker_config;

/* ---- core.c ---- */

/* Validates messages as fy_core_produce does (decode, size, delay relative to now, internal
 * properties, topic name and auto-creation), creating nothing. FY_OK or its refusal, *bad_index
 * the first bad. */
int core_produce_validate(fy_core *c, const fy_produce_msg *msgs, size_t n, uint64_t now,
                          size_t *bad_index);
/* fy_core_produce, with the messages added to b (NULL = a new batch) so that other operations
 * commit with them. On success the store owns b; on failure the caller still does. */
int core_produce_batch(fy_core *c, const fy_produce_msg *msgs, size_t n, fy_wbatch *b,
                       fy_produce_cb done, void *arg, size_t *bad_index);

/* ---- core_tx.c ---- */

typedef struct core_tx core_tx;

core_tx *core_tx_of(fy_core *c);
/* Loads the count of pending halves and starts the check timer. */
core_tx *core_tx_new(fy_core *c, struct event_base *base, fy_store *store,
                     const struct fy_broker_config *cfg);
/* Stops checking (the core is closing); checkers get no more calls. NULL-safe. */
void core_tx_stop(core_tx *t);
/* Frees after the store has completed everything the core submitted. NULL-safe. */
void core_tx_free(core_tx *t);
/* Fills the tx_* counters. NULL-safe. */
void core_tx_stats(core_tx *t, fy_core_stats *st);

#endif
