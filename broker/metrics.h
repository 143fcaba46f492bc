/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text exposition (format 0.0.4) of the broker's counters: per-topic traffic by
 * protocol, connections, group lag, store commit histograms, process figures. Served by the
 * admin listener at /metrics (broker/admin.c); docs/admin-api.md lists every series. */
#ifndef FERRY_BROKER_METRICS_H
#define FERRY_BROKER_METRICS_H

#include "broker/broker.h"

struct evbuffer;

/* What the admin listener measures itself. */
typedef struct fy_metrics_loop {
    double lag_s;     /* lateness of the last 250 ms tick of the loop */
    double lag_max_s; /* the worst since the previous scrape */
} fy_metrics_loop;

/* Appends every series to out. Loop thread; reads only (a scrape changes nothing but the
 * caller's own lag_max). */
void fy_metrics_render(fy_broker *b, const fy_metrics_loop *loop, struct evbuffer *out);

/* Resident set size of this process in bytes (0 if /proc cannot be read). */
uint64_t fy_metrics_rss_bytes(void);

#endif
