/* SPDX-License-Identifier: Apache-2.0 */
/* SUBSCRIBE and UNSUBSCRIBE: per-filter answers, MQTT 5 subscription options and identifiers,
 * shared subscriptions, retained messages sent after the SUBACK. A durable session's
 * subscriptions are stored before they are acknowledged. */
#include "adapters/mqtt/mqtt_topic.h"
#include "adapters/mqtt/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <string.h>

#define MAX_ENTRIES 4096

/* An answer waiting for the session record to be stored. */
typedef struct sub_ctx {
    mqtt_conn *c;
    uint8_t type; /* SUBACK or UNSUBACK */
    uint16_t pid;
    fy_buf reasons;
    char **retained; /* SUBSCRIBE: full filters whose retained messages go out after the SUBACK */
    size_t nretained;
} sub_ctx;

static void answer(sub_ctx *x)
{
    mqtt_conn *c = x->c;
    fy_mqtt_suback a = {0};
    a.packet_id = x->pid;
    a.reasons = (fy_slice){x->reasons.data, x->reasons.len};
    if (x->type == FY_MQTT_SUBACK) {
        fy_mqtt_enc_suback(&c->out, c->version, &a, c->peer_max_packet);
    } else {
        fy_mqtt_enc_unsuback(&c->out, c->version, &a, c->peer_max_packet);
    }
    mqtt_conn_flush(c);
    for (size_t i = 0; i < x->nretained && c->s; i++) {
        mqtt_session *s = c->s;
        fy_slice full = fy_slice_str(x->retained[i]);
        for (size_t k = 0; k < s->nsubs; k++) {
            if (!s->subs[k].share && strcmp(s->subs[k].filter, x->retained[i]) == 0) {
                mqtt_session_send_retained(s, &s->subs[k]);
                mqtt_sys_subscribed(s, &s->subs[k]);
            }
        }
        (void)full;
    }
}

/* Whether s already holds (share, filter): replacing a subscription does not count against
 * max_subscriptions. */
static bool has_sub(const mqtt_session *s, fy_slice share, fy_slice filter)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *x = &s->subs[i];
        bool same_share = share.len == 0 ? x->share == NULL
                                         : x->share && strlen(x->share) == share.len &&
                                               memcmp(x->share, share.p, share.len) == 0;
        if (same_share && strlen(x->filter) == filter.len &&
            memcmp(x->filter, filter.p, filter.len) == 0) {
            return true;
        }
    }
    return false;
}

static void ctx_free(sub_ctx *x)
{
    for (size_t i = 0; i < x->nretained; i++) {
        fy_free(x->retained[i]);
    }
    fy_free(x->retained);
    fy_buf_free(&x->reasons);
    fy_free(x);
}

static void on_stored(void *arg, int status)
{
    sub_ctx *x = arg;
    mqtt_conn *c = x->c;
    if (!c->closing) {
        if (status == FY_OK) {
            answer(x);
        } else {
            mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "session could not be stored");
        }
    }
    mqtt_conn_pending_done(c);
    ctx_free(x);
}

/* Stores the session if it is durable, then answers; answers at once otherwise. */
static void finish(mqtt_conn *c, sub_ctx *x)
{
    mqtt_session *s = c->s;
    mqtt_session_reindex(s);
    mqtt_session_reconcile(s);
    if (s->durable && mqtt_session_store(s, on_stored, x) == FY_OK) {
        c->pending++;
        return;
    }
    answer(x);
    ctx_free(x);
}

int mqtt_handle_subscribe(mqtt_conn *c, const fy_mqtt_frame_hdr *h)
{
    mqtt_session *s = c->s;
    fy_mqtt_subscribe sub;
    fy_mqtt_sub_iter it;
    fy_mqtt_sub_entry e;
    const char *why = "bad SUBSCRIBE";
    uint32_t sub_id = 0;
    sub_ctx *x;
    int rc = fy_mqtt_decode_subscribe(h, c->version, &sub, &why);
    if (rc != 0) {
        return rc;
    }
    if (sub.count > MAX_ENTRIES) {
        return FY_MQTT_RC_QUOTA_EXCEEDED;
    }
    if (fy_mqtt_props_has(&sub.props, FY_MQTT_P_SUBSCRIPTION_ID)) {
        sub_id = sub.props.sub_id;
    }
    x = FY_NEW(sub_ctx);
    x->c = c;
    x->type = FY_MQTT_SUBACK;
    x->pid = sub.packet_id;
    it = fy_mqtt_sub_entries(&sub);
    while (fy_mqtt_sub_next(&it, &e)) {
        fy_slice group = {NULL, 0}, rest = e.filter;
        int share = fy_mqtt_share_parse(e.filter, &group, &rest);
        uint8_t reason;
        bool existed;
        msub *m;
        if (share == FY_MQTT_SHARE_INVALID ||
            (share == FY_MQTT_SHARE_NONE && !fy_mqtt_filter_valid(e.filter))) {
            reason = c->version == FY_MQTT_V5 ? FY_MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
            fy_log(INFO, "mqtt", "client=%s filter=%.*s msg=\"subscription refused: bad filter\"",
                   s->client_id, (int)e.filter.len, (const char *)e.filter.p);
            fy_buf_put_u8(&x->reasons, reason);
            continue;
        }
        if (share == FY_MQTT_SHARE_OK && !fy_core_name_valid((const char *)group.p, group.len)) {
            reason = c->version == FY_MQTT_V5 ? FY_MQTT_RC_TOPIC_FILTER_INVALID : 0x80;
            fy_log(INFO, "mqtt",
                   "client=%s filter=%.*s msg=\"subscription refused: share name is not a "
                   "group name\"",
                   s->client_id, (int)e.filter.len, (const char *)e.filter.p);
            fy_buf_put_u8(&x->reasons, reason);
            continue;
        }
        if (c->srv->env.authorize &&
            c->srv->env.authorize(c->srv->env.auth_arg, c->user, s->client_id, "mqtt",
                                  FY_ACL_SUBSCRIBE, rest) != FY_OK) {
            fy_log(INFO, "mqtt",
                   "client=%s filter=%.*s msg=\"subscription refused: not authorized\"",
                   s->client_id, (int)e.filter.len, (const char *)e.filter.p);
            fy_buf_put_u8(&x->reasons, c->version == FY_MQTT_V5 ? FY_MQTT_RC_NOT_AUTHORIZED : 0x80);
            continue;
        }
        if (fy_limits_max_subscriptions(c->srv->env.limits) > 0 &&
            s->nsubs >= fy_limits_max_subscriptions(c->srv->env.limits) &&
            !has_sub(s, share == FY_MQTT_SHARE_OK ? group : (fy_slice){NULL, 0}, rest)) {
            fy_log(DEBUG, "mqtt",
                   "client=%s filter=%.*s max_subscriptions=%u msg=\"subscription refused: too "
                   "many subscriptions\"",
                   s->client_id, (int)e.filter.len, (const char *)e.filter.p,
                   (unsigned)fy_limits_max_subscriptions(c->srv->env.limits));
            fy_limits_count_subscription_refused(c->srv->env.limits, FY_LIMIT_MQTT);
            fy_buf_put_u8(&x->reasons, c->version == FY_MQTT_V5 ? FY_MQTT_RC_QUOTA_EXCEEDED : 0x80);
            continue;
        }
        m = mqtt_session_add_sub(s, rest, share == FY_MQTT_SHARE_OK ? group : (fy_slice){NULL, 0},
                                 e.qos, e.no_local, e.retain_as_published, e.retain_handling,
                                 sub_id, fy_wall_ms(), &existed);
        fy_buf_put_u8(&x->reasons, m->qos);
        if (!m->share && (m->rh == 0 || (m->rh == 1 && !existed))) {
            x->retained = fy_realloc(x->retained, (x->nretained + 1) * sizeof(*x->retained));
            x->retained[x->nretained++] = fy_strdup(m->filter);
        }
    }
    finish(c, x);
    return 0;
}

int mqtt_handle_unsubscribe(mqtt_conn *c, const fy_mqtt_frame_hdr *h)
{
    mqtt_session *s = c->s;
    fy_mqtt_subscribe sub;
    fy_mqtt_sub_iter it;
    fy_slice f;
    const char *why = "bad UNSUBSCRIBE";
    sub_ctx *x;
    int rc = fy_mqtt_decode_unsubscribe(h, c->version, &sub, &why);
    if (rc != 0) {
        return rc;
    }
    x = FY_NEW(sub_ctx);
    x->c = c;
    x->type = FY_MQTT_UNSUBACK;
    x->pid = sub.packet_id;
    it = fy_mqtt_sub_entries(&sub);
    while (fy_mqtt_unsub_next(&it, &f)) {
        fy_buf_put_u8(&x->reasons, mqtt_session_del_sub(s, f) ? FY_MQTT_RC_SUCCESS
                                                              : FY_MQTT_RC_NO_SUBSCRIPTION_EXISTED);
    }
    finish(c, x);
    return 0;
}
