/* SPDX-License-Identifier: Apache-2.0 */
/* PUBLISH from clients into the core (QoS 0, 1, 2 with the exactly-once state, topic aliases,
 * retained messages stored in the same batch as the message), the acknowledgements clients
 * send, wills, and the mapping of an MQTT publish to a native record (docs/mapping.md). */
#include "adapters/mqtt/mqtt_topic.h"
#include "adapters/mqtt/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS "mqtt"

/* ---- Mapping ---------------------------------------------------------------------------- */

const char *mqtt_native_topic(mqtt_server *srv, fy_slice topic, size_t *len)
{
    const uint8_t *slash;
    size_t n;
    for (size_t i = 0; i < srv->ntmap; i++) {
        const mqtt_tmap *m = &srv->tmap[i];
        if (topic.len >= m->plen && memcmp(topic.p, m->prefix, m->plen) == 0 &&
            (topic.len == m->plen || topic.p[m->plen] == '/')) {
            *len = strlen(m->topic);
            return m->topic;
        }
    }
    slash = memchr(topic.p, '/', topic.len);
    n = slash ? (size_t)(slash - topic.p) : topic.len;
    /* Names starting with % are the broker's own (%RETRY%, %DLQ%). */
    if (n > 0 && topic.p[0] != '%' && fy_core_name_valid((const char *)topic.p, n)) {
        *len = n;
        return (const char *)topic.p;
    }
    *len = strlen(srv->cfg->fallback_topic);
    return srv->cfg->fallback_topic;
}

/* Whether filter f (no wildcard first level) may match a topic `prefix` or `prefix/...`. */
static bool filter_reaches(const char *f, const char *prefix)
{
    const char *p = prefix;
    for (;;) {
        size_t fl = strcspn(f, "/"), pl = strcspn(p, "/");
        if (fl == 1 && f[0] == '#') {
            return true;
        }
        if (!(fl == 1 && f[0] == '+') && (fl != pl || memcmp(f, p, fl) != 0)) {
            return false;
        }
        if (p[pl] == '\0') {
            return true; /* the prefix is consumed: f matches it or topics below it */
        }
        if (f[fl] == '\0') {
            return false; /* f ends above the prefix */
        }
        f += fl + 1;
        p += pl + 1;
    }
}

void mqtt_filter_topics(mqtt_server *srv, const char *filter,
                        void (*fn)(void *arg, const char *topic, size_t len), void *arg)
{
    size_t n;
    fy_slice first = fy_mqtt_first_level(fy_slice_str(filter));
    /* Where unmapped topics under the first level go; map targets the filter may reach. */
    const char *t = mqtt_native_topic(srv, first, &n);
    if (srv->ntmap > 0) {
        /* The first level alone may itself be mapped: look at it without the map. */
        mqtt_tmap *save = srv->tmap;
        size_t nsave = srv->ntmap;
        srv->tmap = NULL;
        srv->ntmap = 0;
        t = mqtt_native_topic(srv, first, &n);
        srv->tmap = save;
        srv->ntmap = nsave;
    }
    fn(arg, t, n);
    for (size_t i = 0; i < srv->ntmap; i++) {
        if (filter_reaches(filter, srv->tmap[i].prefix)) {
            fn(arg, srv->tmap[i].topic, strlen(srv->tmap[i].topic));
        }
    }
}

static int by_prefix_len(const void *a, const void *b)
{
    const mqtt_tmap *x = a, *y = b;
    return x->plen > y->plen ? -1 : x->plen < y->plen;
}

int mqtt_topic_map_parse(mqtt_server *srv, const char *text, char *err, size_t errlen)
{
    const char *p = strcmp(text, "none") == 0 ? "" : text;
    while (*p) {
        size_t n = strcspn(p, " \t"), plen;
        const char *eq = memchr(p, '=', n);
        mqtt_tmap m;
        if (n == 0) {
            p++;
            continue;
        }
        plen = eq ? (size_t)(eq - p) : 0;
        if (!eq || plen == 0 || p[plen - 1] == '/' || memchr(p, '+', plen) ||
            memchr(p, '#', plen) || !fy_mqtt_utf8_valid((const uint8_t *)p, plen) ||
            !fy_core_name_valid(eq + 1, n - plen - 1) || eq[1] == '%') {
            snprintf(err, errlen,
                     "[mqtt] topic_map: bad entry '%.*s': expected PREFIX=TOPIC (an MQTT topic "
                     "prefix without wildcards or a trailing '/', a native topic name)",
                     (int)n, p);
            return -FY_EINVAL;
        }
        m.prefix = fy_strndup(p, plen);
        m.plen = plen;
        m.topic = fy_strndup(eq + 1, n - plen - 1);
        srv->tmap = fy_realloc(srv->tmap, (srv->ntmap + 1) * sizeof(*srv->tmap));
        srv->tmap[srv->ntmap++] = m;
        p += n;
    }
    if (srv->ntmap > 1) {
        qsort(srv->tmap, srv->ntmap, sizeof(*srv->tmap), by_prefix_len);
    }
    return FY_OK;
}

void mqtt_topic_map_free(mqtt_server *srv)
{
    for (size_t i = 0; i < srv->ntmap; i++) {
        fy_free(srv->tmap[i].prefix);
        fy_free(srv->tmap[i].topic);
    }
    fy_free(srv->tmap);
    srv->tmap = NULL;
    srv->ntmap = 0;
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

/* The publishes of one read of a connection (or one will) go to the core as one produce: one
 * store batch, one completion, acknowledgements in order. */
typedef struct pub_item {
    uint8_t qos;
    uint16_t pid;
    bool retain;
    bool empty;   /* empty payload: a retained publish clears the topic */
    bool nostore; /* a QoS 2 retransmission: answered in order, stored once before */
    size_t rec_off, rec_len, topic_off, topic_len;
} pub_item;

struct mqtt_pub_batch {
    mqtt_server *srv;
    mqtt_conn *c; /* NULL: a will */
    fy_buf data;  /* records and topics, back to back */
    pub_item *items;
    size_t n, cap;
};

#define BATCH_MAX_MSGS 256
#define BATCH_MAX_BYTES (1u << 20)

static void ack_publish(mqtt_conn *c, uint8_t type, uint16_t pid, uint8_t reason)
{
    fy_mqtt_ack a = {0};
    a.packet_id = pid;
    a.reason = reason;
    if (reason >= 0x80 && c->problem_info) {
        a.props.present = FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING);
        a.props.reason_string = fy_slice_str(fy_mqtt_reason_name(reason));
    }
    fy_mqtt_enc_ack(&c->out, c->version, type, &a, c->peer_max_packet);
}

static mqtt_pub_batch *batch_new(mqtt_server *srv, mqtt_conn *c)
{
    mqtt_pub_batch *b = FY_NEW(mqtt_pub_batch);
    b->srv = srv;
    b->c = c;
    return b;
}

static void batch_free(mqtt_pub_batch *b)
{
    fy_buf_free(&b->data);
    fy_free(b->items);
    fy_free(b);
}

static void batch_add(mqtt_pub_batch *b, const fy_buf *rec, fy_slice topic, uint8_t qos,
                      uint16_t pid, bool retain, bool empty)
{
    pub_item *it;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->items = fy_realloc(b->items, b->cap * sizeof(*b->items));
    }
    it = &b->items[b->n++];
    it->qos = qos;
    it->pid = pid;
    it->retain = retain;
    it->empty = empty;
    it->nostore = rec == NULL;
    it->rec_off = b->data.len;
    if (!rec) {
        it->rec_len = it->topic_off = it->topic_len = 0;
        return;
    }
    it->rec_len = rec->len;
    fy_buf_append(&b->data, rec->data, rec->len);
    it->topic_off = b->data.len;
    it->topic_len = topic.len;
    fy_buf_append(&b->data, topic.p, topic.len);
}

static fy_slice item_rec(const mqtt_pub_batch *b, const pub_item *it)
{
    return (fy_slice){b->data.data + it->rec_off, it->rec_len};
}

static fy_slice item_topic(const mqtt_pub_batch *b, const pub_item *it)
{
    return (fy_slice){b->data.data + it->topic_off, it->topic_len};
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
    case -FY_ENOSPC: /* the store is full: nothing stored, the client may retry later */
        return FY_MQTT_RC_QUOTA_EXCEEDED;
    default:
        return FY_MQTT_RC_UNSPECIFIED;
    }
}

/* Answers one publish that was not stored: MQTT 5 says why in the PUBACK/PUBREC; 3.1.1 cannot,
 * so the connection closes (the client will publish again). */
static void refuse(mqtt_conn *c, const pub_item *it, int status)
{
    if (it->qos == 0 || c->closing) {
        return;
    }
    if (it->nostore) {
        if (c->version == FY_MQTT_V5) {
            ack_publish(c, FY_MQTT_PUBREC, it->pid, refusal(status));
        }
        return; /* stored before: its state stays */
    }
    if (it->qos == 2 && c->s) {
        fy_u64map_del(&c->s->q2in, it->pid);
    }
    if (c->in_unacked > 0) {
        c->in_unacked--;
    }
    if (c->version == FY_MQTT_V5) {
        ack_publish(c, it->qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, it->pid, refusal(status));
    } else {
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "publish could not be stored");
    }
}

static void on_produced(void *arg, int status, const fy_produce_result *res, size_t n)
{
    mqtt_pub_batch *b = arg;
    mqtt_conn *c = b->c;
    if (status != FY_OK) {
        fy_log(WARN, "mqtt", "client=%s messages=%zu err=%s msg=\"publish not stored\"",
               c && c->s ? c->s->client_id : "-", b->n, fy_errname(status));
    }
    for (size_t i = 0; i < b->n; i++) {
        const pub_item *it = &b->items[i];
        if (status == FY_OK && !it->nostore) {
            b->srv->stats.messages_in++;
            if (it->retain) {
                fy_slice rec = item_rec(b, it);
                retained_set(b->srv, item_topic(b, it), rec.p, it->empty ? 0 : rec.len);
            }
        }
        if (!c || c->closing) {
            continue;
        }
        if (status != FY_OK) {
            refuse(c, it, status);
        } else if (it->qos == 1) {
            ack_publish(c, FY_MQTT_PUBACK, it->pid, FY_MQTT_RC_SUCCESS);
            c->in_unacked--;
        } else if (it->qos == 2) {
            ack_publish(c, FY_MQTT_PUBREC, it->pid, FY_MQTT_RC_SUCCESS);
        }
    }
    if (c) {
        mqtt_conn_flush(c);
        mqtt_conn_pending_done(c);
    } else {
        b->srv->wills_pending--;
    }
    batch_free(b);
}

static void on_nothing_stored(void *arg, int status)
{
    on_produced(arg, status, NULL, 0);
}

/* Produces the batch: the messages, their retained keys and the QoS 2 packet ids of a durable
 * session, in one store batch. On success the completion owns b; on failure the caller does. */
static int batch_submit(mqtt_pub_batch *b)
{
    mqtt_conn *c = b->c;
    mqtt_session *s = c ? c->s : NULL;
    fy_produce_msg *msgs = fy_malloc(b->n * sizeof(*msgs));
    fy_kv_op *ops = fy_malloc(2 * b->n * sizeof(*ops));
    fy_buf keys = FY_BUF_INIT;
    size_t nops = 0, *key_at = fy_malloc(2 * b->n * sizeof(*key_at));
    size_t nmsgs = 0;
    int rc;
    for (size_t i = 0; i < b->n; i++) {
        const pub_item *it = &b->items[i];
        if (it->nostore) {
            continue;
        }
        msgs[nmsgs].record = item_rec(b, it);
        msgs[nmsgs].sharding_key = item_topic(b, it); /* one MQTT topic, one queue: in order */
        msgs[nmsgs].proto = FY_PROTO_MQTT;
        nmsgs++;
        if (it->retain) {
            fy_slice t = item_topic(b, it);
            key_at[nops] = keys.len;
            fy_buf_put_u8(&keys, 'r');
            fy_buf_append(&keys, t.p, t.len);
            ops[nops] = (fy_kv_op){it->empty, {NULL, 1 + t.len}, item_rec(b, it)};
            nops++;
        }
        if (it->qos == 2 && s && s->durable) {
            fy_buf k = FY_BUF_INIT;
            mqtt_q2in_key(&k, s->client_id, it->pid);
            key_at[nops] = keys.len;
            fy_buf_append(&keys, k.data, k.len);
            ops[nops] = (fy_kv_op){false, {NULL, k.len}, {NULL, 0}};
            nops++;
            fy_buf_free(&k);
        }
    }
    for (size_t i = 0; i < nops; i++) {
        ops[i].key.p = keys.data + key_at[i]; /* keys no longer moves */
    }
    if (nmsgs > 0) {
        rc = fy_core_produce_kv(b->srv->env.core, msgs, nmsgs, NS, ops, nops, on_produced, b, NULL);
    } else {
        /* Only retransmissions: an empty store batch completes after the ones before it. */
        rc = fy_core_kv_write(b->srv->env.core, NS, NULL, 0, on_nothing_stored, b);
    }
    fy_free(msgs);
    fy_free(ops);
    fy_free(key_at);
    fy_buf_free(&keys);
    if (rc == FY_OK && c) {
        c->pending++;
    }
    return rc;
}

void mqtt_publish_flush(mqtt_conn *c)
{
    mqtt_pub_batch *b = c->batch;
    int rc;
    if (!b) {
        return;
    }
    c->batch = NULL;
    rc = batch_submit(b);
    if (rc != FY_OK) {
        fy_log(INFO, "mqtt", "client=%s messages=%zu err=%s msg=\"publish refused\"",
               c->s ? c->s->client_id : "-", b->n, fy_errname(rc));
        for (size_t i = 0; i < b->n; i++) {
            refuse(c, &b->items[i], rc);
        }
        batch_free(b);
    }
}

void mqtt_publish_will(mqtt_server *srv, const fy_buf *rec, uint8_t qos, bool retain)
{
    fy_record_view v;
    fy_slice topic;
    mqtt_pub_batch *b;
    int rc;
    if (rec->len == 0 || fy_record_decode(rec->data, rec->len, &v) != FY_OK ||
        !fy_record_prop_get(&v, "mqtt.topic", &topic)) {
        return;
    }
    b = batch_new(srv, NULL);
    batch_add(b, rec, topic, qos, 0, retain, v.body.len == 0);
    rc = batch_submit(b);
    if (rc != FY_OK) {
        fy_log(WARN, "mqtt", "topic=%.*s err=%s msg=\"will not published\"", (int)topic.len,
               (const char *)topic.p, fy_errname(rc));
        batch_free(b);
    } else {
        srv->wills_pending++; /* its completion refers to srv: mqtt_stop waits for it */
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
            /* A retransmission of a QoS 2 publish we already stored (or are storing): PUBREC
             * again, after the original is stored; nothing stored twice. */
            if (!c->batch && c->pending == 0) {
                ack_publish(c, FY_MQTT_PUBREC, p.packet_id, FY_MQTT_RC_SUCCESS);
                return 0;
            }
            if (!c->batch) {
                c->batch = batch_new(srv, c);
            }
            batch_add(c->batch, NULL, p.topic, 2, p.packet_id, false, false);
            return 0;
        }
    }
    if (srv->env.authorize && srv->env.authorize(srv->env.auth_arg, c->user, s->client_id, "mqtt",
                                                 FY_ACL_WRITE, topic) != FY_OK) {
        fy_log(INFO, "mqtt",
               "conn=%llu client=%s topic=%.*s msg=\"publish refused: not authorized\"",
               (unsigned long long)c->id, s->client_id, (int)(topic.len > 256 ? 256 : topic.len),
               (const char *)topic.p);
        if (p.qos == 0) {
            return 0; /* dropped, as mosquitto does */
        }
        if (c->version != FY_MQTT_V5) {
            /* 3.1.1 has no refusal: acknowledged and dropped (as mosquitto). */
            if (p.qos == 2) {
                fy_u64map_upsert(&s->q2in, p.packet_id, 1); /* so PUBREL finds it */
            }
            ack_publish(c, p.qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, p.packet_id,
                        FY_MQTT_RC_SUCCESS);
            return 0;
        }
        ack_publish(c, p.qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, p.packet_id,
                    FY_MQTT_RC_NOT_AUTHORIZED);
        return 0;
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
        fy_log(INFO, "mqtt", "client=%s topic=%.*s msg=\"publish cannot be stored as a record\"",
               s->client_id, (int)topic.len, (const char *)topic.p);
        if (p.qos > 0 && c->version == FY_MQTT_V5) {
            ack_publish(c, p.qos == 1 ? FY_MQTT_PUBACK : FY_MQTT_PUBREC, p.packet_id,
                        FY_MQTT_RC_UNSPECIFIED);
            return 0;
        }
        return p.qos > 0 ? FY_MQTT_RC_UNSPECIFIED : 0;
    }
    if (p.qos == 2) {
        fy_u64map_upsert(&s->q2in, p.packet_id, 1);
    }
    if (p.qos > 0) {
        c->in_unacked++;
    }
    if (!c->batch) {
        c->batch = batch_new(srv, c);
    }
    batch_add(c->batch, &srv->scratch, topic, p.qos, p.packet_id, p.retain, p.payload.len == 0);
    if (c->batch->n >= BATCH_MAX_MSGS || c->batch->data.len >= BATCH_MAX_BYTES) {
        mqtt_publish_flush(c);
    }
    return 0;
}

typedef struct pubcomp_ctx {
    mqtt_conn *c;
    uint16_t pid;
} pubcomp_ctx;

/* The packet id's record is deleted: PUBCOMP now. Sent earlier, a crash before the deletion is
 * stored would leave the id looking in use, and the client's next PUBLISH with it (free again
 * after PUBCOMP) would be taken for a retransmission and not stored. */
static void q2in_deleted(void *arg, int status)
{
    pubcomp_ctx *x = arg;
    mqtt_conn *c = x->c;
    if (!c->closing) {
        ack_publish(c, FY_MQTT_PUBCOMP, x->pid, FY_MQTT_RC_SUCCESS);
        mqtt_conn_flush(c);
    }
    fy_free(x);
    mqtt_conn_pending_done(c);
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
                pubcomp_ctx *x = FY_NEW(pubcomp_ctx);
                x->c = c;
                x->pid = a.packet_id;
                mqtt_q2in_key(&k, s->client_id, a.packet_id);
                op = (fy_kv_op){true, {k.data, k.len}, {NULL, 0}};
                rc = fy_core_kv_write(c->srv->env.core, NS, &op, 1, q2in_deleted, x);
                fy_buf_free(&k);
                if (rc == FY_OK) {
                    c->pending++;
                    return 0; /* PUBCOMP once the deletion is stored */
                }
                fy_free(x);
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
