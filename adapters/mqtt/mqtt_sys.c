/* SPDX-License-Identifier: Apache-2.0 */
/* The $SYS topics, compatible with mosquitto's common ones ($SYS/broker/version, .../uptime,
 * .../clients/connected, .../messages/received, ...): every [mqtt] sys_interval the values are
 * measured and those that changed go to the connected sessions subscribed to them, as QoS 0
 * messages; a new subscription gets the current values at once with RETAIN set, as mosquitto's
 * retained $SYS messages. They are never stored nor produced to the core (mosquitto does not
 * persist them either): they exist only in this file's table. Loop thread only. */
#include "adapters/mqtt/mqtt_topic.h"
#include "adapters/mqtt/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "unknown"
#endif

enum {
    SYS_VERSION,
    SYS_UPTIME,
    SYS_CLIENTS_CONNECTED,
    SYS_CLIENTS_DISCONNECTED,
    SYS_CLIENTS_TOTAL,
    SYS_CLIENTS_MAXIMUM,
    SYS_MESSAGES_RECEIVED,
    SYS_MESSAGES_SENT,
    SYS_PUBLISH_RECEIVED,
    SYS_PUBLISH_SENT,
    SYS_LOAD_RECEIVED_1,
    SYS_LOAD_RECEIVED_5,
    SYS_LOAD_RECEIVED_15,
    SYS_LOAD_SENT_1,
    SYS_LOAD_SENT_5,
    SYS_LOAD_SENT_15,
    SYS_RETAINED_COUNT,
    SYS_SUBSCRIPTIONS_COUNT,
    SYS_STORE_COUNT,
    SYS_COUNT
};

static const char *const sys_topics[SYS_COUNT] = {
    "$SYS/broker/version",
    "$SYS/broker/uptime",
    "$SYS/broker/clients/connected",
    "$SYS/broker/clients/disconnected",
    "$SYS/broker/clients/total",
    "$SYS/broker/clients/maximum",
    "$SYS/broker/messages/received",
    "$SYS/broker/messages/sent",
    "$SYS/broker/publish/messages/received",
    "$SYS/broker/publish/messages/sent",
    "$SYS/broker/load/messages/received/1min",
    "$SYS/broker/load/messages/received/5min",
    "$SYS/broker/load/messages/received/15min",
    "$SYS/broker/load/messages/sent/1min",
    "$SYS/broker/load/messages/sent/5min",
    "$SYS/broker/load/messages/sent/15min",
    "$SYS/broker/retained messages/count",
    "$SYS/broker/subscriptions/count",
    "$SYS/broker/store/messages/count",
};

typedef struct sys_value {
    char text[64]; /* the payload */
    fy_buf rec;    /* the record sent: MQTT topic, QoS 0, retain */
    bool changed;  /* since the last round */
} sys_value;

struct mqtt_sys {
    mqtt_server *srv;
    struct event *ev;
    uint64_t started_ms; /* mono */
    uint64_t last_ms;    /* mono, of the last round */
    uint64_t max_connected;
    uint64_t last_in, last_out;
    double load_in[3], load_out[3]; /* per minute, averaged over 1, 5, 15 minutes */
    sys_value v[SYS_COUNT];
};

static void set_value(mqtt_sys *y, int i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_value(mqtt_sys *y, int i, const char *fmt, ...)
{
    char text[sizeof(y->v[i].text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (y->v[i].rec.len > 0 && strcmp(text, y->v[i].text) == 0) {
        return;
    }
    memcpy(y->v[i].text, text, sizeof(text));
    fy_buf_reset(&y->v[i].rec);
    mqtt_build_record(y->srv, &y->v[i].rec, NULL, fy_slice_str(sys_topics[i]), 0, true, NULL,
                      fy_slice_str(y->v[i].text));
    y->v[i].changed = true;
}

static void count_stored(void *arg, const fy_topic_info *t)
{
    struct {
        fy_core *core;
        uint64_t n;
    } *x = arg;
    for (uint32_t q = 0; q < t->queues; q++) {
        uint64_t min, max;
        fy_core_queue_range(x->core, t->topic_id, q, &min, &max);
        x->n += max - min;
    }
}

static void count_subs(void *arg, const char *key, void *val)
{
    *(uint64_t *)arg += ((const mqtt_session *)val)->nsubs;
}

/* Moves a load average (per minute over `minutes`) towards the rate of the last `secs`. */
static void load_update(double *load, double per_min, double secs, double minutes)
{
    double keep = exp(-secs / (60.0 * minutes));
    *load = per_min + keep * (*load - per_min);
}

/* Measures every value; marks those that changed. */
static void measure(mqtt_sys *y)
{
    mqtt_server *srv = y->srv;
    uint64_t now = fy_mono_ms();
    uint64_t conns = srv->stats.connections, total = srv->sessions.n;
    uint64_t in = srv->stats.messages_in, out = srv->stats.messages_out, subs = 0;
    double secs = (double)(now - y->last_ms) / 1000.0;
    static const double minutes[3] = {1, 5, 15};
    struct {
        fy_core *core;
        uint64_t n;
    } stored = {srv->env.core, 0};

    if (conns > y->max_connected) {
        y->max_connected = conns;
    }
    if (total < conns) {
        total = conns; /* a connection still in CONNECT has no session yet */
    }
    if (secs > 0) {
        for (int k = 0; k < 3; k++) {
            load_update(&y->load_in[k], (double)(in - y->last_in) * 60.0 / secs, secs, minutes[k]);
            load_update(&y->load_out[k], (double)(out - y->last_out) * 60.0 / secs, secs,
                        minutes[k]);
        }
    }
    y->last_ms = now;
    y->last_in = in;
    y->last_out = out;
    fy_strmap_each(&srv->sessions, count_subs, &subs);
    fy_core_topic_each(srv->env.core, count_stored, &stored);

    set_value(y, SYS_VERSION, "ferry version %s", FERRY_VERSION);
    set_value(y, SYS_UPTIME, "%llu seconds", (unsigned long long)((now - y->started_ms) / 1000));
    set_value(y, SYS_CLIENTS_CONNECTED, "%llu", (unsigned long long)conns);
    set_value(y, SYS_CLIENTS_DISCONNECTED, "%llu", (unsigned long long)(total - conns));
    set_value(y, SYS_CLIENTS_TOTAL, "%llu", (unsigned long long)total);
    set_value(y, SYS_CLIENTS_MAXIMUM, "%llu", (unsigned long long)y->max_connected);
    set_value(y, SYS_MESSAGES_RECEIVED, "%llu", (unsigned long long)in);
    set_value(y, SYS_MESSAGES_SENT, "%llu", (unsigned long long)out);
    set_value(y, SYS_PUBLISH_RECEIVED, "%llu", (unsigned long long)in);
    set_value(y, SYS_PUBLISH_SENT, "%llu", (unsigned long long)out);
    for (int k = 0; k < 3; k++) {
        set_value(y, SYS_LOAD_RECEIVED_1 + k, "%.2f", y->load_in[k]);
        set_value(y, SYS_LOAD_SENT_1 + k, "%.2f", y->load_out[k]);
    }
    set_value(y, SYS_RETAINED_COUNT, "%llu", (unsigned long long)srv->retained.n);
    set_value(y, SYS_SUBSCRIPTIONS_COUNT, "%llu", (unsigned long long)subs);
    set_value(y, SYS_STORE_COUNT, "%llu", (unsigned long long)stored.n);
}

/* Whether a session has a subscription that can match a $SYS topic: only filters that start
 * with '$' do (MQTT 4.7.2: + and # at the first level do not match topics starting with $). */
static bool wants_sys(const mqtt_session *s)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        if (s->subs[i].filter[0] == '$' && !s->subs[i].share) {
            return true;
        }
    }
    return false;
}

static void on_round(evutil_socket_t fd, short what, void *arg)
{
    mqtt_sys *y = arg;
    mqtt_server *srv = y->srv;
    measure(y);
    for (mqtt_conn *c = srv->conns; c; c = c->next) {
        mqtt_session *s = c->s;
        if (c->closing || !c->connected || !s || s->conn != c || !wants_sys(s)) {
            continue;
        }
        for (int i = 0; i < SYS_COUNT; i++) {
            if (y->v[i].changed) {
                mqtt_session_send_record(s, y->v[i].rec.data, y->v[i].rec.len, NULL);
            }
        }
    }
    for (int i = 0; i < SYS_COUNT; i++) {
        y->v[i].changed = false;
    }
}

void mqtt_sys_start(mqtt_server *srv)
{
    uint64_t ms = srv->cfg->sys_interval_ms;
    struct timeval tv;
    mqtt_sys *y;
    if (ms == 0) {
        return;
    }
    y = FY_NEW(mqtt_sys);
    y->srv = srv;
    y->started_ms = y->last_ms = fy_mono_ms();
    measure(y);
    for (int i = 0; i < SYS_COUNT; i++) {
        y->v[i].changed = false;
    }
    tv = fy_ms_timeval(ms);
    y->ev = event_new(srv->env.base, -1, EV_PERSIST, on_round, y);
    event_add(y->ev, &tv);
    srv->sys = y;
}

void mqtt_sys_stop(mqtt_server *srv)
{
    mqtt_sys *y = srv->sys;
    if (!y) {
        return;
    }
    event_free(y->ev);
    for (int i = 0; i < SYS_COUNT; i++) {
        fy_buf_free(&y->v[i].rec);
    }
    fy_free(y);
    srv->sys = NULL;
}

void mqtt_sys_subscribed(mqtt_session *s, const msub *m)
{
    mqtt_sys *y = s->srv->sys;
    if (!y || m->share || m->filter[0] != '$' || !s->conn) {
        return;
    }
    for (int i = 0; i < SYS_COUNT; i++) {
        if (fy_mqtt_match(fy_slice_str(m->filter), fy_slice_str(sys_topics[i]))) {
            mqtt_session_send_record(s, y->v[i].rec.data, y->v[i].rec.len, m);
        }
    }
}
