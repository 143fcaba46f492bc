/* SPDX-License-Identifier: Apache-2.0 */
/* PUBLISH from clients into the core (QoS 0, 1, 2 with the exactly-once state, topic aliases,
 * retained messages stored in the same batch as the message), the acknowledgements clients
 * send, wills, and the mapping of an MQTT publish to a native record (docs/mapping.md). */
#include "adapters/mqtt/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <stdio.h>
#include <string.h>

#define NS "mqtt"

/* ---- Mapping ---------------------------------------------------------------------------- */

const char *mqtt_native_topic(mqtt_server *srv, fy_slice topic, size_t *len)
{
    const uint8_t *slash = memchr(topic.p, '/', topic.len);
    size_t n = slash ? (size_t)(slash - topic.p) : topic.len;
    /* Names starting with % are the broker's own (%RETRY%, %DLQ%). */
    if (n > 0 && topic.p[0] != '%' && fy_core_name_valid((const char *)topic.p, n)) {
        *len = n;
        return (const char *)topic.p;
    }
    *len = strlen(srv->cfg->fallback_topic);
    return srv->cfg->fallback_topic;
}

static bool reserved_name(fy_slice name)
{
    return name.len >= 5 && memcmp(name.p, "mqtt.", 5) == 0;
}

void mqtt_build_record(mqtt_server *srv, fy_buf *out, const char *client_id, fy_slice topic,
                       uint8_t qos, bool retain, const fy_mqtt_props *props, fy_slice payload)
{
    static const char *const qos_text[3] = {"0", "1", "2"};
    fy_slice fixed[2 * 9];
    fy_slice *pv = fixed;
    size_t np = 0, nuser = props ? props->n_user_props : 0;
    char expiry[24];
    fy_record r = {0};
    size_t nlen;
    const char *native = mqtt_native_topic(srv, topic, &nlen);

    if (nuser > 0) {
        pv = fy_malloc((9 + nuser) * 2 * sizeof(*pv));
    }
#define PROP(n, v)                                                                                 \
    do {                                                                                           \
        pv[2 * np] = fy_slice_str(n);                                                              \
        pv[2 * np + 1] = (v);                                                                      \
        np++;                                                                                      \
    } while (0)
    PROP("mqtt.topic", topic);
    PROP("mqtt.qos", fy_slice_str(qos_text[qos > 2 ? 2 : qos]));
    if (client_id) {
        PROP("mqtt.client", fy_slice_str(client_id));
    }
    if (retain) {
        PROP("mqtt.retain", fy_slice_str("1"));
    }
    if (props) {
        if (fy_mqtt_props_has(props, FY_MQTT_P_PAYLOAD_FORMAT)) {
            PROP("mqtt.payload_format", fy_slice_str(props->payload_format ? "1" : "0"));
        }
        if (fy_mqtt_props_has(props, FY_MQTT_P_MESSAGE_EXPIRY)) {
            snprintf(expiry, sizeof(expiry), "%llu",
                     (unsigned long long)(fy_wall_ms() + (uint64_t)props->message_expiry * 1000));
            PROP("mqtt.expiry_ms", fy_slice_str(expiry));
        }
        if (fy_mqtt_props_has(props, FY_MQTT_P_CONTENT_TYPE)) {
            PROP("mqtt.content_type", props->content_type);
        }
        if (fy_mqtt_props_has(props, FY_MQTT_P_RESPONSE_TOPIC)) {
            PROP("mqtt.response_topic", props->response_topic);
        }
        if (fy_mqtt_props_has(props, FY_MQTT_P_CORRELATION_DATA)) {
            PROP("mqtt.correlation_data", props->correlation_data);
        }
        if (nuser > 0) {
            fy_mqtt_prop_iter it = fy_mqtt_user_props(props);
            fy_slice name, value;
            while (fy_mqtt_user_prop_next(&it, &name, &value)) {
                if (name.len > 0 && !reserved_name(name)) {
                    PROP("", value);
                    pv[2 * np - 2] = name;
                }
            }
        }
    }
#undef PROP
    r.topic = (fy_slice){(const uint8_t *)native, nlen};
    r.born_ms = fy_wall_ms();
    r.props = pv;
    r.nprops = (uint16_t)np;
    r.body = payload;
    fy_buf_reset(out);
    if (fy_record_encode(&r, out) != FY_OK) {
        fy_buf_reset(out); /* the caller sees an empty record and refuses it */
    }
    if (pv != fixed) {
        fy_free(pv);
    }
}

/* ---- Retained messages: "r" + MQTT topic -> record ------------------------------------------ */

static void retained_key(fy_buf *k, fy_slice topic)
{
    fy_buf_reset(k);
    fy_buf_put_u8(k, 'r');
    fy_buf_append(k, topic.p, topic.len);
}

static void retained_free(mqtt_retained *r)
{
    fy_buf_free(&r->rec);
    fy_free(r->topic);
    fy_free(r);
}

/* Replaces the retained message of topic (len 0: removes it). */
static void retained_set(mqtt_server *srv, fy_slice topic, const uint8_t *rec, size_t len)
{
    mqtt_retained *old = fy_strmap_get(&srv->retained, (const char *)topic.p, topic.len);
    if (old) {
        fy_strmap_del(&srv->retained, old->topic);
        retained_free(old);
    }
    if (len > 0) {
        mqtt_retained *r = FY_NEW(mqtt_retained);
        r->topic = fy_strndup((const char *)topic.p, topic.len);
        fy_buf_append(&r->rec, rec, len);
        fy_strmap_put(&srv->retained, r->topic, r);
    }
}

static int load_retained(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen)
{
    mqtt_server *srv = arg;
    fy_slice topic = {key + 1, klen - 1};
    if (klen > 1) {
        retained_set(srv, topic, val, vlen);
    }
    return 0;
}

void mqtt_retained_load(mqtt_server *srv)
{
    fy_core_kv_scan(srv->env.core, NS, "r", 1, load_retained, srv);
    if (srv->retained.n > 0) {
        fy_log(INFO, "mqtt", "retained=%zu msg=\"retained messages loaded\"", srv->retained.n);
    }
}

static void free_retained(void *arg, const char *key, void *val)
{
    retained_free(val);
}

void mqtt_retained_free(mqtt_server *srv)
{
    fy_strmap_each(&srv->retained, free_retained, NULL);
    fy_strmap_free(&srv->retained);
}

/* ---- Producing --------------------------------------------------------------------------- */

typedef struct pub_ctx {
    mqtt_server *srv;
    mqtt_conn *c; /* NULL: a will */
    uint8_t qos;
    uint16_t pid;
    bool retain;
    fy_buf rec;  /* retained only: the record, for the in-memory copy */
    char *topic; /* retained only */
} pub_ctx;

static void ack_publish(mqtt_conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    fy_mqtt_ack a = {0};
    a.packet_id = pid;
    a.reason = reason;
    fy_mqtt_enc_ack(&c->out, c->version, type, &a, c->peer_max_packet);
}

static void on_produced(void *arg, int status, const fy_produce_result *res, size_t n)
{
    pub_ctx *x = arg;
    mqtt_conn *c = x->c;
    if (status == FY_OK) {
        x->srv->stats.messages_in++;
        if (x->retain) {
            retained_set(x->srv, fy_slice_str(x->topic), x->rec.data, x->rec.len);
        }
    } else {
        fy_log(WARN, "mqtt", "client=%s err=%s msg=\"publish not stored\"",
               c && c->s ? c->s->client_id : "-", fy_errname(status));
    }
    if (c && !c->closing) {
        if (status == FY_OK) {
            if (x->qos == 1) {
                ack_publish(c, FY_MQTT_PUBACK, x->pid, FY_MQTT_RC_SUCCESS);
                c->in_unacked--;
            } else if (x->qos == 2) {
                ack_publish(c, FY_MQTT_PUBREC, x->pid, FY_MQTT_RC_SUCCESS);
            }
        } else if (x->qos > 0) {
            if (c->version == FY_MQTT_V5) {
                if (x->qos == 2 && c->s) {
                    fy_u64map_del(&c->s->q2in, x->pid);
                }
                ack_publish(c, x->qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, x->pid,
                            FY_MQTT_RC_UNSPECIFIED);
                c->in_unacked--;
            } else {
                mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "publish could not be stored");
            }
        }
        mqtt_conn_flush(c);
    }
    if (c) {
        mqtt_conn_pending_done(c);
    }
    fy_buf_free(&x->rec);
    fy_free(x->topic);
    fy_free(x);
}

/* Produces rec (an encoded record) with, for a retained publish, the retained key and, for a
 * QoS 2 publish of a durable session, its packet id, all in one store batch. */
static int produce(mqtt_server *srv, mqtt_conn *c, const fy_buf *rec, fy_slice topic, bool retain,
                   uint8_t qos, uint16_t pid, bool empty_payload)
{
    fy_produce_msg m;
    fy_kv_op ops[2];
    size_t nops = 0;
    fy_buf rkey = FY_BUF_INIT, qkey = FY_BUF_INIT;
    pub_ctx *x = FY_NEW(pub_ctx);
    int rc;
    x->srv = srv;
    x->c = c;
    x->qos = qos;
    x->pid = pid;
    x->retain = retain;
    m.record = (fy_slice){rec->data, rec->len};
    m.sharding_key = topic; /* one MQTT topic, one queue: its order holds */
    if (retain) {
        retained_key(&rkey, topic);
        x->topic = fy_strndup((const char *)topic.p, topic.len);
        if (!empty_payload) {
            fy_buf_append(&x->rec, rec->data, rec->len);
        }
        ops[nops++] = (fy_kv_op){empty_payload, {rkey.data, rkey.len}, {rec->data, rec->len}};
    }
    if (qos == 2 && c && c->s && c->s->durable) {
        mqtt_q2in_key(&qkey, c->s->client_id, pid);
        ops[nops++] = (fy_kv_op){false, {qkey.data, qkey.len}, {NULL, 0}};
    }
    rc = fy_core_produce_kv(srv->env.core, &m, 1, NS, ops, nops, on_produced, x, NULL);
    fy_buf_free(&rkey);
    fy_buf_free(&qkey);
    if (rc != FY_OK) {
        fy_buf_free(&x->rec);
        fy_free(x->topic);
        fy_free(x);
        return rc;
    }
    if (c) {
        c->pending++;
    }
    return FY_OK;
}

void mqtt_publish_will(mqtt_server *srv, const fy_buf *rec, uint8_t qos, bool retain)
{
    fy_record_view v;
    fy_slice topic;
    int rc;
    if (rec->len == 0 || fy_record_decode(rec->data, rec->len, &v) != FY_OK ||
        !fy_record_prop_get(&v, "mqtt.topic", &topic)) {
        return;
    }
    rc = produce(srv, NULL, rec, topic, retain, qos, 0, v.body.len == 0);
    if (rc != FY_OK) {
        fy_log(WARN, "mqtt", "topic=%.*s err=%s msg=\"will not published\"", (int)topic.len,
               (const char *)topic.p, fy_errname(rc));
    }
}

static uint8_t refusal(int rc)
{
    switch (rc) {
    case -FY_ETOOBIG:
        return FY_MQTT_RC_PACKET_TOO_LARGE;
    case -FY_EBADNAME:
    case -FY_ENOTFOUND:
        return FY_MQTT_RC_TOPIC_NAME_INVALID;
    case -FY_EUNHEALTHY:
        return FY_MQTT_RC_QUOTA_EXCEEDED;
    default:
        return FY_MQTT_RC_UNSPECIFIED;
    }
}

int mqtt_handle_publish(mqtt_conn *c, const fy_mqtt_frame_hdr *h)
{
    mqtt_server *srv = c->srv;
    mqtt_session *s = c->s;
    fy_mqtt_publish p;
    const char *why = "bad PUBLISH";
    fy_slice topic;
    int rc = fy_mqtt_decode_publish(h, c->version, false, &p, &why);
    if (rc != 0) {
        fy_log(INFO, "mqtt", "conn=%llu client=%s reason=0x%02x msg=\"%s\"",
               (unsigned long long)c->id, s ? s->client_id : "-", rc, why);
        return rc;
    }
    topic = p.topic;
    if (fy_mqtt_props_has(&p.props, FY_MQTT_P_TOPIC_ALIAS)) {
        uint16_t a = p.props.topic_alias;
        if (a == 0 || a > c->nalias) {
            return FY_MQTT_RC_TOPIC_ALIAS_INVALID;
        }
        if (topic.len > 0) {
            fy_free(c->aliases[a - 1]);
            c->aliases[a - 1] = fy_strndup((const char *)topic.p, topic.len);
        } else if (!c->aliases[a - 1]) {
            return FY_MQTT_RC_PROTOCOL_ERROR; /* an alias never set up */
        } else {
            topic = fy_slice_str(c->aliases[a - 1]);
        }
    }
    if (p.qos > 0) {
        if (c->version == FY_MQTT_V5 && c->in_unacked >= srv->cfg->receive_maximum) {
            return FY_MQTT_RC_RECEIVE_MAX_EXCEEDED;
        }
        if (p.qos == 2 && fy_u64map_find(&s->q2in, p.packet_id)) {
            /* A retransmission of a QoS 2 publish we already stored: answer, store nothing. */
            ack_publish(c, FY_MQTT_PUBREC, p.packet_id, FY_MQTT_RC_SUCCESS);
            return 0;
        }
    }
    if (c->version == FY_MQTT_V5 && fy_mqtt_props_has(&p.props, FY_MQTT_P_PAYLOAD_FORMAT) &&
        p.props.payload_format == 1 && !fy_mqtt_utf8_valid(p.payload.p, p.payload.len)) {
        if (p.qos == 0) {
            return FY_MQTT_RC_PAYLOAD_FORMAT_INVALID;
        }
        ack_publish(c, p.qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, p.packet_id,
                    FY_MQTT_RC_PAYLOAD_FORMAT_INVALID);
        return 0;
    }
    mqtt_build_record(srv, &srv->scratch, s->client_id, topic, p.qos, p.retain,
                      c->version == FY_MQTT_V5 ? &p.props : NULL, p.payload);
    if (srv->scratch.len == 0) {
        why = "publish cannot be stored as a record";
        rc = -FY_EINVAL;
    } else {
        if (p.qos == 2) {
            fy_u64map_upsert(&s->q2in, p.packet_id, 1);
        }
        rc =
            produce(srv, c, &srv->scratch, topic, p.retain, p.qos, p.packet_id, p.payload.len == 0);
        why = "publish refused";
    }
    if (rc == FY_OK) {
        if (p.qos > 0) {
            c->in_unacked++;
        }
        return 0;
    }
    if (p.qos == 2) {
        fy_u64map_del(&s->q2in, p.packet_id);
    }
    fy_log(INFO, "mqtt", "client=%s topic=%.*s err=%s msg=\"%s\"", s->client_id, (int)topic.len,
           (const char *)topic.p, fy_errname(rc), why);
    if (p.qos > 0 && c->version == FY_MQTT_V5) {
        ack_publish(c, p.qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, p.packet_id, refusal(rc));
        return 0;
    }
    return p.qos > 0 ? refusal(rc) : 0;
}

static void q2in_done(void *arg, int status)
{
}

int mqtt_handle_ack(mqtt_conn *c, const fy_mqtt_frame_hdr *h)
{
    fy_mqtt_ack a;
    const char *why = "bad acknowledgement";
    mqtt_session *s = c->s;
    int rc = fy_mqtt_decode_ack(h, c->version, &a, &why);
    if (rc != 0) {
        return rc;
    }
    if (h->type == FY_MQTT_PUBREL) {
        uint8_t reason = FY_MQTT_RC_SUCCESS;
        if (fy_u64map_find(&s->q2in, a.packet_id)) {
            fy_u64map_del(&s->q2in, a.packet_id);
            if (c->in_unacked > 0) {
                c->in_unacked--;
            }
            if (s->durable) {
                fy_buf k = FY_BUF_INIT;
                fy_kv_op op;
                mqtt_q2in_key(&k, s->client_id, a.packet_id);
                op = (fy_kv_op){true, {k.data, k.len}, {NULL, 0}};
                fy_core_kv_write(c->srv->env.core, NS, &op, 1, q2in_done, NULL);
                fy_buf_free(&k);
            }
        } else {
            reason = FY_MQTT_RC_PACKET_ID_NOT_FOUND;
        }
        ack_publish(c, FY_MQTT_PUBCOMP, a.packet_id, reason);
        return 0;
    }
    mqtt_session_puback(s, a.packet_id, h->type);
    return 0;
}
