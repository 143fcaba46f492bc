/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT sessions on the core: each session holds, while connected, one core member per (group,
 * native topic) its filters need — a broadcast member for a clean session, a member of its own
 * clustering group for a durable one, a member of group <g> for $share/<g>/... — and turns the
 * core's deliveries into PUBLISH packets under the client's in-flight window. Durable sessions
 * (subscriptions, QoS 2 packet ids) are kept in the adapter's key-value namespace. */
#include "adapters/mqtt/mqtt_session_rec.h"
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
#define CLEAN_GROUP "mqtt%clean" /* the broadcast group of every clean session's members */
#define MAX_SUB_IDS 32
#define ALIVE_KEY "a" /* the broker's last alive time (mqtt_session_alive) */

static const fy_sub_ops csub_ops;
static void route_unindex(mqtt_session *s);

/* ---- Names and keys ------------------------------------------------------------------------ */

/* The clustering group of a durable session: mqtt%<client id> when the id is a valid name,
 * else mqtt%h<hash>. */
static char *group_for(const char *client_id)
{
    char buf[160];
    size_t n = strlen(client_id);
    if (n <= 100 && fy_core_name_valid(client_id, n)) {
        snprintf(buf, sizeof(buf), "mqtt%%%s", client_id);
    } else {
        snprintf(buf, sizeof(buf), "mqtt%%h%016llx", (unsigned long long)fy_hash64(client_id, n));
    }
    return fy_strdup(buf);
}

static void session_key(fy_buf *k, const char *client_id)
{
    fy_buf_reset(k);
    fy_buf_put_u8(k, 's');
    fy_buf_append(k, client_id, strlen(client_id));
}

/* "p" + client id + packet id -> message id [+ flags]: a durable session's QoS 2 message in
 * flight, so that after a restart it goes again with the same packet id (MQTT 4.3.3: only the
 * packet id tells the client it has the message already).
 * The value: message id, flags, and the queue id (u32) and offset (u64) of its light-queue entry.
 *   flags Q2_SENT: sent (or about to be), PUBREC not yet seen; after a restart the PUBLISH goes
 *     again with DUP (Q2_RETAIN: with the RETAIN flag).
 *   flags 0: the client has it (PUBREC); after a restart PUBREL goes again, not the message.
 * After a restart the core delivers the message again unless the group's stored offset is past
 * it; that delivery is recognised by its message id and settled, not sent. So the record is
 * deleted only once the stored offset is past the message (fy_sub_ack_durable) and PUBCOMP has
 * come: a completed message is never sent again as a new one. (Records of the first version
 * hold the message id alone: PUBREC'd.) */
#define Q2_SENT 0x01
#define Q2_RETAIN 0x02
#define Q2_REC_LEN (FY_MSGID_LEN + 1 + 4 + 8)

static void q2out_key(fy_buf *k, const char *client_id, uint16_t pid)
{
    size_t n = strlen(client_id);
    fy_buf_reset(k);
    fy_buf_put_u8(k, 'p');
    fy_buf_put_u16(k, (uint16_t)n);
    fy_buf_append(k, client_id, n);
    fy_buf_put_u16(k, pid);
}

void mqtt_q2in_key(fy_buf *k, const char *client_id, uint16_t pid)
{
    size_t n = strlen(client_id);
    fy_buf_reset(k);
    fy_buf_put_u8(k, 'q');
    fy_buf_put_u16(k, (uint16_t)n);
    fy_buf_append(k, client_id, n);
    fy_buf_put_u16(k, pid);
}

/* ---- Life cycle ---------------------------------------------------------------------------- */

mqtt_session *mqtt_session_new(mqtt_server *srv, const char *client_id, bool durable)
{
    mqtt_session *s = FY_NEW(mqtt_session);
    s->srv = srv;
    s->client_id = fy_strdup(client_id);
    s->durable = durable;
    s->group = durable ? group_for(client_id) : NULL;
    s->next_pid = 1;
    if (s->group) {
        if (srv->ndurables == srv->capdurables) {
            srv->capdurables = srv->capdurables ? srv->capdurables * 2 : 16;
            srv->durables = fy_realloc(srv->durables, srv->capdurables * sizeof(*srv->durables));
        }
        s->durable_ix = srv->ndurables;
        srv->durables[srv->ndurables++] = s;
    }
    s->expire_at = UINT64_MAX;
    fy_strmap_put(&srv->sessions, s->client_id, s);
    return s;
}

static void outmsg_free(outmsg *m)
{
    fy_buf_free(&m->pkt);
    fy_free(m);
}

static void free_out(void *arg, uint64_t key, uint64_t val)
{
    outmsg_free((outmsg *)(uintptr_t)val);
}

/* Drops what is in flight or queued: the core gives unacknowledged deliveries back to the
 * group when the members close, to be delivered again (with DUP) on the next connection. */
static void drop_outgoing(mqtt_session *s)
{
    fy_u64map_each(&s->out, free_out, NULL);
    fy_u64map_free(&s->out);
    s->restored_waits = 0;
    while (s->qhead) {
        outmsg *m = s->qhead;
        s->qhead = m->next;
        outmsg_free(m);
    }
    s->qtail = NULL;
    s->nqueued = 0;
    s->inflight = 0;
}

static void retained_pump(mqtt_session *s);
static void retained_drop_pending(mqtt_session *s);

static void close_csubs(mqtt_session *s)
{
    for (size_t i = 0; i < s->ncs; i++) {
        fy_sub_close(s->cs[i]->sub);
        fy_free(s->cs[i]->topic);
        fy_free(s->cs[i]->share);
        fy_free(s->cs[i]);
    }
    s->ncs = 0;
}

void mqtt_session_free(mqtt_session *s)
{
    if (!s) {
        return;
    }
    close_csubs(s);
    drop_outgoing(s);
    retained_drop_pending(s);
    route_unindex(s);
    if (s->group) {
        mqtt_server *srv = s->srv;
        mqtt_session *last = srv->durables[--srv->ndurables];
        srv->durables[s->durable_ix] = last;
        last->durable_ix = s->durable_ix;
    }
    for (size_t i = 0; i < s->nsubs; i++) {
        fy_free(s->subs[i].filter);
        fy_free(s->subs[i].share);
    }
    fy_free(s->subs);
    fy_free(s->cs);
    fy_u64map_free(&s->q2in);
    fy_buf_free(&s->will_rec);
    fy_free(s->group);
    fy_free(s->client_id);
    fy_free(s);
}

static void ignore_done(void *arg, int status)
{
}

typedef struct keys_ctx {
    fy_kv_op *ops;
    fy_buf *bufs;
    size_t n, cap;
} keys_ctx;

static void add_del(keys_ctx *k, const fy_buf *key)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 8;
        k->ops = fy_realloc(k->ops, k->cap * sizeof(*k->ops));
        k->bufs = fy_realloc(k->bufs, k->cap * sizeof(*k->bufs));
    }
    k->bufs[k->n] = (fy_buf)FY_BUF_INIT;
    fy_buf_append(&k->bufs[k->n], key->data, key->len);
    k->n++;
}

static void q2in_del(void *arg, uint64_t pid, uint64_t val)
{
    void **a = arg;
    fy_buf k = FY_BUF_INIT;
    mqtt_q2in_key(&k, a[1], (uint16_t)pid);
    add_del(a[0], &k);
    fy_buf_free(&k);
}

static void q2out_del(void *arg, uint64_t pid, uint64_t val)
{
    void **a = arg;
    const outmsg *m = (const outmsg *)(uintptr_t)val;
    fy_buf k = FY_BUF_INIT;
    if (m->persisted) {
        q2out_key(&k, a[1], (uint16_t)pid);
        add_del(a[0], &k);
    }
    fy_buf_free(&k);
}

void mqtt_session_end(mqtt_session *s)
{
    mqtt_server *srv = s->srv;
    close_csubs(s);
    if (s->will_pending) {
        mqtt_publish_will(srv, &s->will_rec, s->will_qos, s->will_retain);
        s->will_pending = false;
    }
    if (s->group) {
        int rc = fy_core_group_delete(srv->env.core, s->group, ignore_done, NULL);
        if (rc != FY_OK && rc != -FY_ENOTFOUND) {
            fy_log(WARN, "mqtt", "client=%s group=%s err=%s msg=\"session group not deleted\"",
                   s->client_id, s->group, fy_errname(rc));
        }
        rc = fy_core_light_delete(srv->env.core, s->group, ignore_done, NULL);
        if (rc != FY_OK && rc != -FY_ENOTFOUND) {
            fy_log(WARN, "mqtt", "client=%s err=%s msg=\"session light queue not deleted\"",
                   s->client_id, fy_errname(rc));
        }
    }
    if (s->stored) {
        keys_ctx k = {0};
        fy_buf key = FY_BUF_INIT;
        void *a[2] = {&k, s->client_id};
        session_key(&key, s->client_id);
        add_del(&k, &key);
        fy_u64map_each(&s->q2in, q2in_del, a);
        fy_u64map_each(&s->out, q2out_del, a);
        for (size_t i = 0; i < k.n; i++) {
            k.ops[i] = (fy_kv_op){true, {k.bufs[i].data, k.bufs[i].len}, {NULL, 0}};
        }
        fy_core_kv_write(srv->env.core, NS, k.ops, k.n, ignore_done, NULL);
        for (size_t i = 0; i < k.n; i++) {
            fy_buf_free(&k.bufs[i]);
        }
        fy_free(k.ops);
        fy_free(k.bufs);
        fy_buf_free(&key);
    }
    fy_log(DEBUG, "mqtt", "client=%s msg=\"session ended\"", s->client_id);
    fy_strmap_del(&srv->sessions, s->client_id);
    mqtt_session_free(s);
}

/* ---- Persistence: "s" + client id -> subscriptions ------------------------------------------ */

/* The record (mqtt_session_rec.h): expiry, subscriptions, when the session was disconnected
 * (0 while connected), and the will waiting for its delay, if one does. */
static void encode_session(const mqtt_session *s, fy_buf *out)
{
    fy_mqtt_srec_begin(out, s->expiry_ms, (uint16_t)s->nsubs);
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *m = &s->subs[i];
        char full[65536 + 256];
        int n = m->share ? snprintf(full, sizeof(full), "$share/%s/%s", m->share, m->filter)
                         : snprintf(full, sizeof(full), "%s", m->filter);
        fy_mqtt_srec_sub sub = {{(const uint8_t *)full, (size_t)n},
                                m->qos,
                                m->no_local,
                                m->rap,
                                m->rh,
                                m->sub_id,
                                m->created_ms};
        fy_mqtt_srec_put_sub(out, &sub);
    }
    fy_mqtt_srec_end(out, s->disconnected_ms);
    if (s->will_pending) {
        fy_mqtt_srec_will w = {
            s->will_delay_ms, s->will_qos, s->will_retain, {s->will_rec.data, s->will_rec.len}};
        fy_mqtt_srec_put_will(out, &w);
    }
}

int mqtt_session_store(mqtt_session *s, fy_core_done_cb done, void *arg)
{
    fy_buf key = FY_BUF_INIT, val = FY_BUF_INIT;
    fy_kv_op op;
    int rc;
    session_key(&key, s->client_id);
    encode_session(s, &val);
    op = (fy_kv_op){false, {key.data, key.len}, {val.data, val.len}};
    rc = fy_core_kv_write(s->srv->env.core, NS, &op, 1, done ? done : ignore_done, arg);
    if (rc == FY_OK) {
        s->stored = true;
    }
    fy_buf_free(&key);
    fy_buf_free(&val);
    return rc;
}

/* Adds (or replaces, same filter and share) a subscription. Returns it. */
msub *mqtt_session_add_sub(mqtt_session *s, fy_slice filter, fy_slice share, uint8_t qos,
                           bool no_local, bool rap, uint8_t rh, uint32_t sub_id, uint64_t created,
                           bool *existed)
{
    msub *m = NULL;
    fy_slice first;
    for (size_t i = 0; i < s->nsubs; i++) {
        msub *x = &s->subs[i];
        bool same_share = share.len == 0 ? x->share == NULL
                                         : x->share && strlen(x->share) == share.len &&
                                               memcmp(x->share, share.p, share.len) == 0;
        if (same_share && strlen(x->filter) == filter.len &&
            memcmp(x->filter, filter.p, filter.len) == 0) {
            m = x;
        }
    }
    *existed = m != NULL;
    if (!m) {
        if (s->nsubs == s->capsubs) {
            s->capsubs = s->capsubs ? s->capsubs * 2 : 1;
            s->subs = fy_realloc(s->subs, s->capsubs * sizeof(*s->subs));
        }
        m = &s->subs[s->nsubs++];
        memset(m, 0, sizeof(*m));
        m->filter = fy_strndup((const char *)filter.p, filter.len);
        m->share = share.len ? fy_strndup((const char *)share.p, share.len) : NULL;
        m->created_ms = created;
    }
    m->qos = qos;
    m->no_local = no_local;
    m->rap = rap;
    m->rh = rh;
    m->sub_id = sub_id;
    first = fy_mqtt_first_level(filter);
    m->wildcard_first = first.len == 1 && (first.p[0] == '+' || first.p[0] == '#');
    return m;
}

/* Removes a subscription by its full filter text ($share/... included). */
bool mqtt_session_del_sub(mqtt_session *s, fy_slice full)
{
    fy_slice group = {NULL, 0}, rest = full;
    if (fy_mqtt_share_parse(full, &group, &rest) == FY_MQTT_SHARE_INVALID) {
        return false;
    }
    for (size_t i = 0; i < s->nsubs; i++) {
        msub *x = &s->subs[i];
        bool same_share = group.len == 0 ? x->share == NULL
                                         : x->share && strlen(x->share) == group.len &&
                                               memcmp(x->share, group.p, group.len) == 0;
        if (same_share && strlen(x->filter) == rest.len &&
            memcmp(x->filter, rest.p, rest.len) == 0) {
            fy_free(x->filter);
            fy_free(x->share);
            s->subs[i] = s->subs[--s->nsubs];
            return true;
        }
    }
    return false;
}

/* What loading the records needs: the broker's last alive time (0: none stored) and the start-up
 * moment on both clocks. */
typedef struct load_ctx {
    mqtt_server *srv;
    uint64_t alive_ms;
    uint64_t now_wall, now_mono;
} load_ctx;

static int load_session(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    load_ctx *x = arg;
    char *id = fy_strndup((const char *)key + 1, klen - 1);
    fy_mqtt_srec rec;
    fy_mqtt_srec_sub sub;
    mqtt_session *s;
    int rc = fy_mqtt_srec_decode(val, vlen, &rec);
    if (rc != FY_OK) {
        fy_log(WARN, "mqtt", "client=%s msg=\"unknown session record version, skipped\"", id);
        fy_free(id);
        return 0;
    }
    s = mqtt_session_new(x->srv, id, true);
    s->stored = true;
    s->expiry_ms = rec.expiry_ms;
    while (fy_mqtt_srec_next_sub(&rec, &sub)) {
        fy_slice group = {NULL, 0}, rest = sub.filter;
        bool existed;
        if (fy_mqtt_share_parse(sub.filter, &group, &rest) == FY_MQTT_SHARE_INVALID) {
            break;
        }
        mqtt_session_add_sub(s, rest, group, sub.qos, sub.no_local, sub.rap, sub.rh, sub.sub_id,
                             sub.created_ms, &existed);
    }
    if (rec.cut) {
        fy_log(WARN, "mqtt", "client=%s msg=\"session record cut short\"", id);
    }
    /* Expiry counts from the disconnect, on the wall clock across restarts; a session that was
     * connected when the broker went down counts from the broker's last alive time, and a record
     * of an older ferryd from now (mqtt_session_rec.h). Such a session gets this time stored with
     * it (mqtt_session_load_all), so that a later restart counts from the same moment; one that
     * never expires needs no time. */
    s->disconnected_ms = fy_mqtt_srec_disconnected_at(&rec, x->alive_ms, x->now_wall);
    s->undated = (!rec.dated || rec.disconnected_ms == 0) && s->expiry_ms != UINT64_MAX;
    s->expire_at =
        fy_mqtt_session_expire_at(s->expiry_ms, s->disconnected_ms, x->now_wall, x->now_mono);
    /* A will waiting for its delay is due that long after the same disconnect: at start-up
     * (mqtt_session_load_all's tick publishes it) if that passed while the broker was down, as
     * it has if the session expired meanwhile. */
    if (rec.has_will) {
        fy_buf_append(&s->will_rec, rec.will.rec.p, rec.will.rec.len);
        s->will_qos = rec.will.qos;
        s->will_retain = rec.will.retain;
        s->will_delay_ms = rec.will.delay_ms;
        s->will_pending = true;
        s->will_at = fy_mqtt_session_expire_at(s->will_delay_ms, s->disconnected_ms, x->now_wall,
                                               x->now_mono);
    } else if (rec.will_cut) {
        fy_log(WARN, "mqtt", "client=%s msg=\"session record cut short: its will is lost\"", id);
    }
    mqtt_session_reindex(s);
    fy_free(id);
    return 0;
}

static int load_q2in(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    mqtt_server *srv = arg;
    fy_rd r = fy_rd_make(key + 1, klen - 1);
    uint16_t n = fy_rd_u16(&r);
    const uint8_t *id = fy_rd_take(&r, n);
    uint16_t pid = fy_rd_u16(&r);
    mqtt_session *s;
    if (r.bad) {
        return 0;
    }
    s = fy_strmap_get(&srv->sessions, (const char *)id, n);
    if (s) {
        fy_u64map_upsert(&s->q2in, pid, 1);
    }
    return 0;
}

/* The committed offset (as stored) of queue_id of a durable session's light queue; 0 when it
 * has none yet. */
static uint64_t light_committed(mqtt_server *srv, const char *group, uint32_t queue_id)
{
    char topic[512];
    uint64_t off = 0;
    snprintf(topic, sizeof(topic), "%s%s", FY_LQ_PREFIX, group);
    if (fy_core_group_committed(srv->env.core, group, topic, queue_id, &off) != FY_OK) {
        off = 0;
    }
    return off;
}

static int load_q2out(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    mqtt_server *srv = arg;
    fy_rd r = fy_rd_make(key + 1, klen - 1);
    uint16_t n = fy_rd_u16(&r);
    const uint8_t *id = fy_rd_take(&r, n);
    uint16_t pid = fy_rd_u16(&r);
    mqtt_session *s;
    outmsg *m;
    if (r.bad || (vlen != FY_MSGID_LEN && vlen != Q2_REC_LEN)) {
        return 0;
    }
    s = fy_strmap_get(&srv->sessions, (const char *)id, n);
    if (!s || fy_u64map_find(&s->out, pid)) {
        return 0;
    }
    m = FY_NEW(outmsg);
    m->pid = pid;
    m->qos = 2;
    m->state = OUT_WAIT_COMP;
    m->durable = true; /* a first-version record: its offset was stored before it */
    if (vlen == Q2_REC_LEN) {
        fy_rd v = fy_rd_make(val + FY_MSGID_LEN + 1, 12);
        if (val[FY_MSGID_LEN] & Q2_SENT) {
            m->state = OUT_WAIT_ACK; /* sent before the restart: again, with DUP, on reconnect */
            m->retain = (val[FY_MSGID_LEN] & Q2_RETAIN) != 0;
            m->dup = true;
        }
        m->queue_id = fy_rd_u32(&v);
        m->offset = fy_rd_u64(&v);
        /* Not durable: the core delivers it again, and that delivery is settled for it. */
        m->durable = s->group && light_committed(srv, s->group, m->queue_id) > m->offset;
    }
    m->has_msgid = true;
    m->persisted = true;
    m->restored = true;
    s->restored_waits++;
    memcpy(m->msgid, val, FY_MSGID_LEN);
    m->seq = ++s->out_seq;
    *fy_u64map_upsert(&s->out, pid, 0) = (uint64_t)(uintptr_t)m;
    s->inflight++;
    return 0;
}

/* The broker's last alive time as stored; 0 when there is none (a store of an older ferryd). */
static uint64_t alive_read(mqtt_server *srv)
{
    fy_buf v = FY_BUF_INIT;
    uint64_t at = 0;
    if (fy_core_kv_get(srv->env.core, NS, ALIVE_KEY, strlen(ALIVE_KEY), &v) != FY_OK ||
        fy_mqtt_alive_decode(v.data, v.len, &at) != FY_OK) {
        at = 0;
    }
    fy_buf_free(&v);
    return at;
}

void mqtt_session_load_all(mqtt_server *srv)
{
    load_ctx x = {srv, alive_read(srv), fy_wall_ms(), fy_mono_ms()};
    size_t loaded;
    fy_core_kv_scan(srv->env.core, NS, "s", 1, load_session, &x);
    fy_core_kv_scan(srv->env.core, NS, "q", 1, load_q2in, srv);
    fy_core_kv_scan(srv->env.core, NS, "p", 1, load_q2out, srv);
    loaded = srv->sessions.n;
    /* Sessions whose expiry passed while the broker was down end now, before any client can
     * connect, the way every expired session ends (its group, light queue and records go: the
     * "q" and "p" records were loaded for that). */
    mqtt_session_tick(srv);
    for (size_t i = 0; i < srv->ndurables; i++) {
        mqtt_session *s = srv->durables[i];
        if (s->undated) {
            s->undated = false;
            mqtt_session_store(s, NULL, NULL);
        }
    }
    if (loaded > 0) {
        fy_log(INFO, "mqtt", "sessions=%zu expired=%zu msg=\"durable sessions loaded\"", loaded,
               loaded - srv->sessions.n);
    }
    mqtt_session_alive(srv);
}

void mqtt_session_alive(mqtt_server *srv)
{
    uint64_t now = fy_mono_ms();
    fy_buf val = FY_BUF_INIT;
    fy_kv_op op;
    /* Called every second (the adapter's tick): rewritten at the ninth tick, the stored time
     * stays within FY_MQTT_ALIVE_EVERY_MS of the present while the loop keeps time. One 8-byte
     * write every 9 s, whatever the traffic. */
    if (!fy_mqtt_alive_due(srv->alive_written, srv->alive_mono, now)) {
        return;
    }
    srv->alive_written = true;
    srv->alive_mono = now;
    fy_mqtt_alive_encode(&val, fy_wall_ms());
    op = (fy_kv_op){false, {(const uint8_t *)ALIVE_KEY, strlen(ALIVE_KEY)}, {val.data, val.len}};
    fy_core_kv_write(srv->env.core, NS, &op, 1, ignore_done, NULL);
    fy_buf_free(&val);
}

/* ---- Core members ---------------------------------------------------------------------------- */

static bool same_share(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* What a stored record says in MQTT terms (docs/mapping.md), read in one pass over its
 * properties: the first of each name counts. */
typedef struct mqtt_meta {
    fy_slice topic;  /* mqtt.topic, else the native topic */
    fy_slice client; /* the publisher's client id (p NULL: not from MQTT) */
    uint8_t qos;     /* as published; native and AMQP messages count as QoS 1 */
    bool retain;
    bool has_expiry;
    uint64_t expiry_ms;
    int payload_format;                                      /* -1: none */
    fy_slice content_type, response_topic, correlation_data; /* p NULL: none */
} mqtt_meta;

static bool prop_is(fy_slice name, const char *suffix)
{
    size_t n = strlen(suffix);
    return name.len == 5 + n && memcmp(name.p + 5, suffix, n) == 0;
}

static void meta_read(const fy_record_view *v, mqtt_meta *m)
{
    fy_record_iter it = fy_record_props(v);
    fy_slice name, val;
    bool topic = false, qos = false;
    memset(m, 0, sizeof(*m));
    m->topic = v->topic;
    m->qos = 1;
    m->payload_format = -1;
    while (fy_record_prop_next(&it, &name, &val)) {
        if (name.len < 6 || memcmp(name.p, "mqtt.", 5) != 0) {
            continue;
        }
        if (prop_is(name, "topic")) {
            if (!topic) {
                m->topic = val;
                topic = true;
            }
        } else if (prop_is(name, "qos")) {
            if (!qos && val.len == 1 && val.p[0] >= '0' && val.p[0] <= '2') {
                m->qos = (uint8_t)(val.p[0] - '0');
                qos = true;
            }
        } else if (prop_is(name, "client")) {
            if (!m->client.p) {
                m->client = val;
            }
        } else if (prop_is(name, "retain")) {
            m->retain = true;
        } else if (prop_is(name, "expiry_ms")) {
            if (!m->has_expiry) {
                char num[24];
                snprintf(num, sizeof(num), "%.*s", (int)(val.len < 23 ? val.len : 23),
                         (const char *)val.p);
                m->expiry_ms = strtoull(num, NULL, 10);
                m->has_expiry = true;
            }
        } else if (prop_is(name, "payload_format")) {
            if (m->payload_format < 0 && val.len == 1) {
                m->payload_format = val.p[0] == '1';
            }
        } else if (prop_is(name, "content_type")) {
            if (!m->content_type.p) {
                m->content_type = val;
            }
        } else if (prop_is(name, "response_topic")) {
            if (!m->response_topic.p) {
                m->response_topic = val;
            }
        } else if (prop_is(name, "correlation_data")) {
            if (!m->correlation_data.p) {
                m->correlation_data = val;
            }
        }
    }
}

static bool meta_from(const mqtt_session *s, const mqtt_meta *m)
{
    return m->client.p && m->client.len == strlen(s->client_id) &&
           memcmp(m->client.p, s->client_id, m->client.len) == 0;
}

static bool csub_match(void *owner, const fy_record_view *v)
{
    mcsub *cs = owner;
    mqtt_session *s = cs->s;
    mqtt_meta meta;
    meta_read(v, &meta);
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *m = &s->subs[i];
        if (!same_share(m->share, cs->share) || (m->no_local && meta_from(s, &meta))) {
            continue;
        }
        if (fy_mqtt_match(fy_slice_str(m->filter), meta.topic)) {
            return true;
        }
    }
    return false;
}

/* Whether subscription m needs a member on native topic `topic`. */
typedef struct covers_ctx {
    const char *topic;
    bool yes;
} covers_ctx;

static void covers_one(void *arg, const char *t, size_t n)
{
    covers_ctx *x = arg;
    x->yes = x->yes || (strlen(x->topic) == n && memcmp(x->topic, t, n) == 0);
}

static bool sub_covers(mqtt_server *srv, const msub *m, const char *topic)
{
    covers_ctx x = {topic, false};
    if (m->wildcard_first) {
        return topic[0] != '%';
    }
    mqtt_filter_topics(srv, m->filter, covers_one, &x);
    return x.yes;
}

static mcsub *csub_find(mqtt_session *s, const char *topic, const char *share)
{
    for (size_t i = 0; i < s->ncs; i++) {
        if (!s->cs[i]->light && strcmp(s->cs[i]->topic, topic) == 0 &&
            same_share(s->cs[i]->share, share)) {
            return s->cs[i];
        }
    }
    return NULL;
}

static mcsub *csub_light(mqtt_session *s)
{
    for (size_t i = 0; i < s->ncs; i++) {
        if (s->cs[i]->light) {
            return s->cs[i];
        }
    }
    return NULL;
}

/* Opens a core member for (topic, share), or for the durable session's light queue. fresh: the
 * topic was just created (read it all). */
static void csub_open(mqtt_session *s, const char *topic, const char *share, bool fresh, bool light)
{
    mqtt_server *srv = s->srv;
    mcsub *cs = FY_NEW(mcsub);
    fy_sub_spec spec = {0};
    char why[200] = "";
    int err = 0;
    uint64_t since = UINT64_MAX;
    for (size_t i = 0; i < s->nsubs; i++) {
        if (same_share(s->subs[i].share, share) && sub_covers(srv, &s->subs[i], topic) &&
            s->subs[i].created_ms < since) {
            since = s->subs[i].created_ms;
        }
    }
    cs->s = s;
    cs->topic = fy_strdup(topic);
    cs->share = share ? fy_strdup(share) : NULL;
    spec.topic = topic;
    spec.proto = FY_PROTO_MQTT;
    spec.client_id = s->client_id;
    spec.filter = "*";
    spec.filter_type = FY_FILTER_TAG;
    spec.errbuf = why;
    spec.errbuf_len = sizeof(why);
    spec.match = csub_match;
    spec.no_retry = true;
    spec.no_ack_timeout = true;
    cs->light = light;
    if (light) {
        /* Everything in it was indexed for this session: from its first entry. */
        spec.group = s->group;
        spec.mode = FY_SUB_CLUSTERING;
        spec.start = FY_START_FIRST;
        spec.light = true;
    } else if (share || s->group) {
        spec.group = share ? share : s->group;
        spec.mode = FY_SUB_CLUSTERING;
        /* Where a group without a committed offset starts: when its subscription was made. */
        spec.start = fresh ? FY_START_FIRST : FY_START_TIME;
        spec.start_ms = since == UINT64_MAX ? fy_wall_ms() : since;
    } else {
        spec.group = CLEAN_GROUP;
        spec.mode = FY_SUB_BROADCAST;
        spec.start = fresh ? FY_START_FIRST : FY_START_LAST;
    }
    cs->sub = fy_core_subscribe(srv->env.core, &spec, &csub_ops, cs, &err);
    if (!cs->sub) {
        fy_log(WARN, "mqtt", "client=%s topic=%s group=%s err=%s msg=\"cannot consume: %s\"",
               s->client_id, topic, spec.group, fy_errname(err), why);
        fy_free(cs->topic);
        fy_free(cs->share);
        fy_free(cs);
        return;
    }
    if (s->ncs == s->capcs) {
        s->capcs = s->capcs ? s->capcs * 2 : 4;
        s->cs = fy_realloc(s->cs, s->capcs * sizeof(*s->cs));
    }
    s->cs[s->ncs++] = cs;
    fy_sub_credit(cs->sub, s->conn ? s->conn->window : 1);
}

typedef struct need_ctx {
    mqtt_session *s;
    bool fresh;
    const char *only; /* only this topic (a new one) */
} need_ctx;

/* Marks (opening if needed) the members topic t needs for subscriptions whose first level is a
 * wildcard; and, for a topic just created (x->only), for the other subscriptions that name it
 * too: their member was closed when the topic was deleted, or could not be opened before it
 * existed (mqtt_filter_topics gives them their members otherwise). */
static void need_topic(void *arg, const fy_topic_info *t)
{
    need_ctx *x = arg;
    mqtt_session *s = x->s;
    if (x->only && strcmp(x->only, t->name) != 0) {
        return;
    }
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *m = &s->subs[i];
        mcsub *cs;
        if ((!m->wildcard_first && !x->only) || t->name[0] == '%' || (s->group && !m->share)) {
            continue; /* a durable session's own subscriptions read its light queue */
        }
        if (!sub_covers(s->srv, m, t->name)) {
            continue;
        }
        cs = csub_find(s, t->name, m->share);
        if (cs) {
            cs->mark = true;
        } else {
            csub_open(s, t->name, m->share, x->fresh, false);
            cs = csub_find(s, t->name, m->share);
            if (cs) {
                cs->mark = true;
            }
        }
    }
}

/* An in-flight message whose member is gone: its acknowledgement goes nowhere. */
static void unlink_cs(void *arg, uint64_t key, uint64_t val)
{
    outmsg *m = (outmsg *)(uintptr_t)val;
    if (m->cs == arg) {
        m->cs = NULL;
    }
}

/* Forgets member s->cs[i], closed already (cs->sub NULL): what it had queued or in flight is
 * settled through nobody (the core gave it back to the group, or its topic is gone), so that a
 * delivery id of it never reaches a member opened later. */
static void csub_drop(mqtt_session *s, size_t i)
{
    mcsub *cs = s->cs[i];
    for (outmsg *m = s->qhead; m; m = m->next) {
        if (m->cs == cs) {
            m->cs = NULL;
        }
    }
    fy_u64map_each(&s->out, unlink_cs, cs);
    fy_free(cs->topic);
    fy_free(cs->share);
    fy_free(cs);
    s->cs[i] = s->cs[--s->ncs];
}

typedef struct need_one_ctx {
    mqtt_session *s;
    const char *share;
} need_one_ctx;

/* Marks (opening if needed) the member for one native topic a subscription needs. */
static void need_one(void *arg, const char *t, size_t n)
{
    need_one_ctx *x = arg;
    char topic[256];
    mcsub *cs;
    snprintf(topic, sizeof(topic), "%.*s", (int)n, t);
    cs = csub_find(x->s, topic, x->share);
    if (!cs) {
        csub_open(x->s, topic, x->share, false, false);
        cs = csub_find(x->s, topic, x->share);
    }
    if (cs) {
        cs->mark = true;
    }
}

void mqtt_session_reconcile(mqtt_session *s)
{
    mqtt_server *srv = s->srv;
    need_ctx x = {s, false, NULL};
    if (!s->conn) {
        return;
    }
    for (size_t i = 0; i < s->ncs; i++) {
        s->cs[i]->mark = false;
    }
    if (s->group) {
        mcsub *cs = csub_light(s);
        if (!cs) {
            csub_open(s, s->group, NULL, false, true);
            cs = csub_light(s);
        }
        if (cs) {
            cs->mark = true;
        }
        s->light_lost = false;
    }
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *m = &s->subs[i];
        need_one_ctx y = {s, m->share};
        if (!m->wildcard_first && !(s->group && !m->share)) {
            mqtt_filter_topics(srv, m->filter, need_one, &y);
        }
    }
    fy_core_topic_each(srv->env.core, need_topic, &x);
    for (size_t i = 0; i < s->ncs;) {
        mcsub *cs = s->cs[i];
        if (cs->mark) {
            i++;
            continue;
        }
        /* No subscription needs this member any more: what it had in flight goes back. */
        fy_sub_close(cs->sub);
        cs->sub = NULL;
        csub_drop(s, i);
    }
}

typedef struct topic_ctx {
    mqtt_server *srv;
    const fy_topic_info *t;
} topic_ctx;

static void session_on_topic(void *arg, const char *key, void *val)
{
    topic_ctx *x = arg;
    mqtt_session *s = val;
    need_ctx n = {s, true, x->t->name};
    if (s->conn) {
        for (size_t i = 0; i < s->ncs; i++) {
            s->cs[i]->mark = true;
        }
        need_topic(&n, x->t);
    }
}

void mqtt_session_on_topic(void *arg, const fy_topic_info *t)
{
    mqtt_server *srv = arg;
    topic_ctx x = {srv, t};
    fy_strmap_each(&srv->sessions, session_on_topic, &x);
}

/* ---- The router's index ------------------------------------------------------------------ */

/* The durable sessions with an exact (wildcard-free) filter, by that filter. */
typedef struct route_list {
    char *filter;
    mqtt_session **v;
    size_t n, cap;
} route_list;

static bool has_wildcard(const char *f)
{
    return strpbrk(f, "+#") != NULL;
}

static void route_unindex(mqtt_session *s)
{
    mqtt_server *srv = s->srv;
    for (size_t i = 0; i < s->nroute_keys; i++) {
        route_list *l =
            fy_strmap_get(&srv->route_exact, s->route_keys[i], strlen(s->route_keys[i]));
        for (size_t k = 0; l && k < l->n; k++) {
            if (l->v[k] == s) {
                l->v[k] = l->v[--l->n];
                break;
            }
        }
        if (l && l->n == 0) {
            fy_strmap_del(&srv->route_exact, l->filter);
            fy_free(l->filter);
            fy_free(l->v);
            fy_free(l);
        }
        fy_free(s->route_keys[i]);
    }
    fy_free(s->route_keys);
    s->route_keys = NULL;
    s->nroute_keys = 0;
    if (s->in_wild) {
        mqtt_session *last = srv->route_wild[--srv->nwild];
        srv->route_wild[s->wild_ix] = last;
        last->wild_ix = s->wild_ix;
        s->in_wild = false;
    }
}

/* Lists a durable session under its own subscriptions' exact filters, or among the sessions
 * with wildcards, after its subscriptions changed. */
void mqtt_session_reindex(mqtt_session *s)
{
    mqtt_server *srv = s->srv;
    bool wild = false;
    route_unindex(s);
    s->any_no_local = false;
    if (!s->group) {
        return;
    }
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *m = &s->subs[i];
        route_list *l;
        bool listed = false;
        if (m->share) {
            continue;
        }
        s->any_no_local = s->any_no_local || m->no_local;
        if (has_wildcard(m->filter)) {
            wild = true;
            continue;
        }
        for (size_t k = 0; k < s->nroute_keys && !listed; k++) {
            listed = strcmp(s->route_keys[k], m->filter) == 0;
        }
        if (listed) {
            continue;
        }
        l = fy_strmap_get(&srv->route_exact, m->filter, strlen(m->filter));
        if (!l) {
            l = FY_NEW(route_list);
            l->filter = fy_strdup(m->filter);
            fy_strmap_put(&srv->route_exact, l->filter, l);
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 2;
            l->v = fy_realloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = s;
        s->route_keys = fy_realloc(s->route_keys, (s->nroute_keys + 1) * sizeof(char *));
        s->route_keys[s->nroute_keys++] = fy_strdup(m->filter);
    }
    if (wild) {
        if (srv->nwild == srv->capwild) {
            srv->capwild = srv->capwild ? srv->capwild * 2 : 16;
            srv->route_wild = fy_realloc(srv->route_wild, srv->capwild * sizeof(*srv->route_wild));
        }
        s->wild_ix = srv->nwild;
        srv->route_wild[srv->nwild++] = s;
        s->in_wild = true;
    }
}

static void free_route_list(void *arg, const char *key, void *val)
{
    route_list *l = val;
    fy_free(l->filter);
    fy_free(l->v);
    fy_free(l);
}

void mqtt_route_free(mqtt_server *srv)
{
    fy_strmap_each(&srv->route_exact, free_route_list, NULL);
    fy_strmap_free(&srv->route_exact);
    fy_free(srv->route_wild);
    srv->route_wild = NULL;
    srv->nwild = srv->capwild = 0;
}

/* Whether one of s's own (not shared) subscriptions takes the message. */
static bool session_takes(const mqtt_session *s, const mqtt_meta *meta)
{
    for (size_t k = 0; k < s->nsubs; k++) {
        const msub *m = &s->subs[k];
        if (m->share || (m->no_local && meta_from(s, meta))) {
            continue;
        }
        if (fy_mqtt_match(fy_slice_str(m->filter), meta->topic)) {
            return true;
        }
    }
    return false;
}

/* The core's router: a stored message goes into the light queue of every durable session with
 * a subscription of its own (not shared) that matches it, once per session. Sessions with an
 * exact filter are found by the message's topic; only those with wildcards are tried one by
 * one. */
void mqtt_session_route(void *arg, const fy_record_view *v, fy_route_emit emit, void *ctx)
{
    mqtt_server *srv = arg;
    mqtt_meta meta;
    route_list *l;
    uint64_t gen;
    if (srv->ndurables == 0) {
        return;
    }
    meta_read(v, &meta);
    gen = ++srv->route_gen;
    l = fy_strmap_get(&srv->route_exact, (const char *)meta.topic.p, meta.topic.len);
    for (size_t i = 0; l && i < l->n; i++) {
        mqtt_session *s = l->v[i];
        if (s->route_gen != gen && (!s->any_no_local || session_takes(s, &meta))) {
            s->route_gen = gen;
            emit(ctx, s->group);
        }
    }
    for (size_t i = 0; i < srv->nwild; i++) {
        mqtt_session *s = srv->route_wild[i];
        if (s->route_gen != gen && session_takes(s, &meta)) {
            s->route_gen = gen;
            emit(ctx, s->group);
        }
    }
}

/* ---- Deliveries ---------------------------------------------------------------------------- */

static void give_back(mqtt_session *s, mcsub *cs)
{
    if (!cs || !cs->sub) {
        return;
    }
    if (!s->conn || mqtt_conn_slow(s->conn)) {
        cs->owed++;
    } else {
        fy_sub_credit(cs->sub, 1);
    }
}

void mqtt_session_drained(mqtt_session *s)
{
    for (size_t i = 0; i < s->ncs; i++) {
        if (s->cs[i]->owed > 0 && s->cs[i]->sub) {
            fy_sub_credit(s->cs[i]->sub, s->cs[i]->owed);
            s->cs[i]->owed = 0;
        }
    }
    retained_pump(s);
}

/* Settles a core delivery and gives its credit back. */
static void settle(mqtt_session *s, mcsub *cs, uint64_t delivery_id)
{
    if (cs && cs->sub) {
        fy_sub_ack(cs->sub, delivery_id);
        give_back(s, cs);
    }
}

static uint16_t next_pid(mqtt_session *s)
{
    for (;;) {
        uint16_t pid = s->next_pid++;
        if (s->next_pid == 0) {
            s->next_pid = 1;
        }
        if (pid != 0 && !fy_u64map_find(&s->out, pid)) {
            return pid;
        }
    }
}

/* What the session's subscriptions say about a record: the QoS to deliver at (-1: none matches),
 * retain as published, and the subscription identifiers. only: just this subscription (a
 * retained message sent for it). */
static int delivery_qos(mqtt_session *s, const char *share, const mqtt_meta *meta, const msub *only,
                        bool *rap, uint32_t *ids, size_t *nids)
{
    int qos = -1;
    uint8_t pub = meta->qos;
    bool self = meta_from(s, meta);
    *rap = false;
    *nids = 0;
    for (size_t i = 0; i < s->nsubs; i++) {
        const msub *m = &s->subs[i];
        if (only ? m != only
                 : (!same_share(m->share, share) || (m->no_local && self) ||
                    !fy_mqtt_match(fy_slice_str(m->filter), meta->topic))) {
            continue;
        }
        if ((int)(m->qos < pub ? m->qos : pub) > qos) {
            qos = m->qos < pub ? m->qos : pub;
        }
        *rap = *rap || m->rap;
        if (m->sub_id && *nids < MAX_SUB_IDS) {
            ids[(*nids)++] = m->sub_id;
        }
    }
    return qos;
}

/* Whether the connected client may receive a message of this topic (the ACL's read rules):
 * a wildcard subscription matches topics the user may not read. Asked when a message goes to
 * the socket, so an offline session's queue is checked against whoever connects. */
static bool may_read(mqtt_session *s, const mqtt_meta *meta)
{
    const fy_adapter_env *env = &s->srv->env;
    if (!s->conn || !env->authorize) {
        return true;
    }
    return env->authorize(env->auth_arg, s->conn->user, s->client_id, "mqtt", FY_ACL_READ,
                          meta->topic) == FY_OK;
}

/* Builds and writes the PUBLISH for record v at the given QoS (pid 0 for QoS 0). Returns false
 * when the message must be skipped: expired, or too large for the client. */
static bool write_publish(mqtt_session *s, const fy_record_view *v, const mqtt_meta *meta,
                          uint8_t qos, uint16_t pid, bool retain, bool dup, const uint32_t *ids,
                          size_t nids)
{
    mqtt_conn *c = s->conn;
    fy_mqtt_publish p = {0};
    fy_slice val, name;
    fy_slice users[2 * 64];
    size_t nusers = 0;
    fy_record_iter it;
    char *new_alias = NULL;
    int rc;
    p.topic = meta->topic;
    p.qos = qos;
    p.packet_id = pid;
    p.retain = retain;
    p.dup = dup;
    if (meta->has_expiry) {
        uint64_t at = meta->expiry_ms, now = fy_wall_ms();
        if (at <= now) {
            return false; /* expired: not sent (MQTT 5 3.3.2.3.3) */
        }
        p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_MESSAGE_EXPIRY);
        p.props.message_expiry = (uint32_t)((at - now + 999) / 1000);
    }
    if (c->version == FY_MQTT_V5) {
        if (meta->payload_format >= 0) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_PAYLOAD_FORMAT);
            p.props.payload_format = (uint8_t)meta->payload_format;
        }
        if (meta->content_type.p) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_CONTENT_TYPE);
            p.props.content_type = meta->content_type;
        }
        if (meta->response_topic.p) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_RESPONSE_TOPIC);
            p.props.response_topic = meta->response_topic;
        }
        if (meta->correlation_data.p) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_CORRELATION_DATA);
            p.props.correlation_data = meta->correlation_data;
        }
        it = fy_record_props(v);
        while (fy_record_prop_next(&it, &name, &val) && nusers < 64) {
            if (name.len >= 5 && memcmp(name.p, "mqtt.", 5) == 0) {
                continue;
            }
            if (!fy_mqtt_utf8_valid(name.p, name.len) || !fy_mqtt_utf8_valid(val.p, val.len)) {
                continue; /* native properties may hold bytes MQTT cannot carry */
            }
            users[2 * nusers] = name;
            users[2 * nusers + 1] = val;
            nusers++;
        }
        if (nusers > 0) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_USER_PROPERTY);
            p.props.user_props = users;
            p.props.n_user_props = (uint32_t)nusers;
        }
        if (nids > 0) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_SUBSCRIPTION_ID);
            p.props.sub_id = ids[0];
            p.props.sub_ids = ids;
            p.props.n_sub_ids = (uint32_t)nids;
        }
    } else {
        p.props.present = 0;
    }
    if (c->out_alias_max > 0 && p.topic.len > 0) {
        /* Topic aliases towards the client: the first topics get one each, for the life of the
         * connection; later sends of such a topic carry only the alias. */
        uintptr_t a = (uintptr_t)fy_strmap_get(&c->out_alias, (const char *)p.topic.p, p.topic.len);
        if (a == 0 && c->out_aliases < c->out_alias_max) {
            a = ++c->out_aliases;
            new_alias = fy_strndup((const char *)p.topic.p, p.topic.len);
            fy_strmap_put(&c->out_alias, new_alias, (void *)a);
        } else if (a != 0) {
            p.topic.len = 0;
        }
        if (a != 0) {
            p.props.present |= FY_MQTT_PBIT(FY_MQTT_P_TOPIC_ALIAS);
            p.props.topic_alias = (uint16_t)a;
        }
    }
    rc = fy_mqtt_enc_publish_head(&c->out, c->version, &p, v->body.len, c->peer_max_packet);
    if (rc != FY_OK && new_alias) {
        /* Not sent: the alias was not set up with the client. */
        fy_strmap_del(&c->out_alias, new_alias);
        fy_free(new_alias);
        c->out_aliases--;
    }
    if (rc != FY_OK) {
        fy_log(DEBUG, "mqtt", "client=%s err=%s msg=\"message not sent: too large for the client\"",
               s->client_id, fy_errname(rc));
        return false;
    }
    fy_buf_append(&c->out, v->body.p, v->body.len);
    mqtt_conn_flush(c);
    s->srv->stats.messages_out++;
    return true;
}

static void enqueue(mqtt_session *s, outmsg *m)
{
    m->state = OUT_QUEUED;
    m->next = NULL;
    if (s->qtail) {
        s->qtail->next = m;
    } else {
        s->qhead = m;
    }
    s->qtail = m;
    s->nqueued++;
}

static void out_done(mqtt_session *s, outmsg *m);

/* Writes the PUBLISH of in-flight message m from its record, or read back by id. false: it cannot
 * go (gone by retention, expired, too large for the client). */
static bool out_send(mqtt_session *s, outmsg *m, bool dup)
{
    fy_record_view v;
    mqtt_meta meta;
    uint32_t ids[MAX_SUB_IDS];
    size_t nids = 0;
    bool rap;
    const fy_buf *rec = &m->pkt;
    if (m->pkt.len == 0 && m->has_msgid) {
        fy_buf_reset(&s->srv->scratch);
        if (fy_core_message_get(s->srv->env.core, m->msgid, &s->srv->scratch) != FY_OK) {
            return false;
        }
        rec = &s->srv->scratch;
    }
    if (fy_record_decode(rec->data, rec->len, &v) != FY_OK) {
        return false;
    }
    meta_read(&v, &meta);
    if (delivery_qos(s, m->cs ? m->cs->share : NULL, &meta, NULL, &rap, ids, &nids) < 0) {
        nids = 0;
    }
    if (!write_publish(s, &v, &meta, m->qos, m->pid, m->retain, dup, ids, nids)) {
        return false;
    }
    if (m->has_msgid) {
        fy_buf_free(&m->pkt); /* read back by id if it must go again */
    }
    return true;
}

/* What a store completion about an in-flight QoS 2 message (session, packet id, message id)
 * needs to find it again, if it is still there. */
typedef struct q2out_ctx {
    mqtt_live *live;
    char *client_id;
    uint16_t pid;
    bool has_msgid;
    uint8_t msgid[FY_MSGID_LEN];
} q2out_ctx;

static q2out_ctx *q2ctx_new(mqtt_session *s, const outmsg *m)
{
    q2out_ctx *x = FY_NEW(q2out_ctx);
    x->live = s->srv->live;
    x->live->refs++;
    x->client_id = fy_strdup(s->client_id);
    x->pid = m->pid;
    x->has_msgid = m->has_msgid;
    memcpy(x->msgid, m->msgid, FY_MSGID_LEN);
    return x;
}

static void q2ctx_free(q2out_ctx *x)
{
    if (--x->live->refs == 0 && !x->live->srv) {
        fy_free(x->live);
    }
    fy_free(x->client_id);
    fy_free(x);
}

static outmsg *q2out_find(q2out_ctx *x, mqtt_session **sp)
{
    mqtt_server *srv = x->live->srv;
    mqtt_session *s =
        srv ? fy_strmap_get(&srv->sessions, x->client_id, strlen(x->client_id)) : NULL;
    uint64_t *slot = s ? fy_u64map_find(&s->out, x->pid) : NULL;
    outmsg *m = slot ? (outmsg *)(uintptr_t)*slot : NULL;
    *sp = s;
    if (!m || m->has_msgid != x->has_msgid ||
        (m->has_msgid && memcmp(m->msgid, x->msgid, FY_MSGID_LEN) != 0)) {
        return NULL; /* gone, or the packet id went to another message since */
    }
    return m;
}

static void send_pubrel(mqtt_conn *c, uint16_t pid)
{
    fy_mqtt_ack a = {0};
    a.packet_id = pid;
    fy_mqtt_enc_ack(&c->out, c->version, FY_MQTT_PUBREL, &a, c->peer_max_packet);
    mqtt_conn_flush(c);
}

/* The PUBREL goes out once the "waiting for PUBCOMP" record is stored (if the session and the
 * connection are still there; else a reconnect sends it). */
static void pubrel_stored(void *arg, int status)
{
    q2out_ctx *x = arg;
    mqtt_session *s;
    outmsg *m = q2out_find(x, &s);
    if (m && m->state == OUT_WAIT_COMP && s->conn && !s->conn->closing) {
        send_pubrel(s->conn, x->pid);
    }
    q2ctx_free(x);
}

/* The PUBLISH goes out once its "sent" record is stored; with no connection by then, a
 * reconnect sends it (resend_unacked). */
static void publish_stored(void *arg, int status)
{
    q2out_ctx *x = arg;
    mqtt_session *s;
    outmsg *m = q2out_find(x, &s);
    if (m && m->unsent) {
        m->unsent = false;
        if (s->conn && !s->conn->closing && !out_send(s, m, m->dup)) {
            settle(s, m->cs, m->delivery_id);
            out_done(s, m);
        }
    }
    q2ctx_free(x);
}

/* Stores m's "p" record: sent and waiting for PUBREC (then the PUBLISH goes out when it is
 * stored), or PUBREC'd and waiting for PUBCOMP (then the PUBREL goes out when it is stored).
 * Returns FY_OK or the store's refusal. */
static int q2out_put(mqtt_session *s, outmsg *m, bool sent)
{
    uint8_t val[Q2_REC_LEN];
    size_t vlen = FY_MSGID_LEN;
    fy_buf k = FY_BUF_INIT;
    fy_kv_op op;
    q2out_ctx *x = q2ctx_new(s, m);
    int rc;
    memcpy(val, m->msgid, FY_MSGID_LEN);
    val[vlen++] = sent ? Q2_SENT | (m->retain ? Q2_RETAIN : 0) : 0;
    fy_be32_put(val + vlen, m->queue_id);
    fy_be64_put(val + vlen + 4, m->offset);
    vlen += 12;
    q2out_key(&k, s->client_id, m->pid);
    op = (fy_kv_op){false, {k.data, k.len}, {val, vlen}};
    rc = fy_core_kv_write(s->srv->env.core, NS, &op, 1, sent ? publish_stored : pubrel_stored, x);
    if (rc != FY_OK) {
        q2ctx_free(x);
    } else {
        m->persisted = true;
    }
    fy_buf_free(&k);
    return rc;
}

static void out_forget(mqtt_session *s, outmsg *m);

/* The group's stored offset is past m: a restart will not deliver it again. A PUBCOMP'd one
 * can go now. */
static void acked_durable(void *arg, int status)
{
    q2out_ctx *x = arg;
    mqtt_session *s;
    outmsg *m = status == -FY_ECANCELED ? NULL : q2out_find(x, &s);
    if (m && m->acking) {
        if (status != FY_OK) {
            fy_log(WARN, "mqtt",
                   "client=%s pid=%u err=%s msg=\"offset past a QoS 2 message "
                   "not stored\"",
                   s->client_id, m->pid, fy_errname(status));
        }
        m->acking = false;
        m->durable = true;
        if (m->state == OUT_COMPLETE) {
            out_forget(s, m);
        }
    }
    q2ctx_free(x);
}

/* Settles the light-queue delivery (cs, id) of m and marks it durable once the group's offset
 * past it is stored. */
static void q2_settle(mqtt_session *s, outmsg *m, mcsub *cs, uint64_t delivery_id)
{
    q2out_ctx *x;
    int rc = -FY_ENOTFOUND;
    if (m->durable || m->acking) {
        settle(s, cs, delivery_id); /* a second delivery of it: nothing to wait for */
        return;
    }
    x = q2ctx_new(s, m);
    if (cs->sub) {
        rc = fy_sub_ack_durable(cs->sub, delivery_id, acked_durable, x);
        give_back(s, cs);
    }
    if (rc == FY_OK) {
        m->acking = true;
    } else {
        q2ctx_free(x);
        m->durable = true; /* stale: its offset is settled already, or it went back */
    }
}

static void q2out_forget(mqtt_session *s, uint16_t pid)
{
    fy_buf k = FY_BUF_INIT;
    fy_kv_op op;
    q2out_key(&k, s->client_id, pid);
    op = (fy_kv_op){true, {k.data, k.len}, {NULL, 0}};
    fy_core_kv_write(s->srv->env.core, NS, &op, 1, ignore_done, NULL);
    fy_buf_free(&k);
}

/* A PUBCOMP'd message whose offset is stored: its record and packet id go. */
static void out_forget(mqtt_session *s, outmsg *m)
{
    if (m->persisted) {
        q2out_forget(s, m->pid);
    }
    fy_u64map_del(&s->out, m->pid);
    if (m->restored) {
        s->restored_waits--;
    }
    outmsg_free(m);
}

/* m (a packet id given) is in flight, waiting for PUBACK/PUBREC. */
static void out_track(mqtt_session *s, outmsg *m)
{
    m->state = OUT_WAIT_ACK;
    m->seq = ++s->out_seq;
    *fy_u64map_upsert(&s->out, m->pid, 0) = (uint64_t)(uintptr_t)m;
    s->inflight++;
}

/* A durable session's QoS 2 message from its light queue: sent only once the store has its
 * packet id, so that after a crash it goes again with the same one (out_stored). */
static bool q2_tracked(const mqtt_session *s, const outmsg *m)
{
    return m->qos == 2 && s->group && m->has_msgid && m->cs && m->cs->light;
}

/* Puts a q2_tracked m (its record in m->pkt, a packet id given) in flight: sent once its "p"
 * record is stored (or now, if the store refuses it). */
static void out_stored(mqtt_session *s, outmsg *m)
{
    out_track(s, m);
    m->unsent = true;
    if (q2out_put(s, m, true) == FY_OK) {
        return;
    }
    m->unsent = false;
    if (!out_send(s, m, m->dup)) {
        settle(s, m->cs, m->delivery_id);
        out_done(s, m);
    }
}

/* Sends a record now, or queues it until the client is connected and has room in its window.
 * cs NULL: a retained message sent for subscription `only`. */
static void send_or_queue(mqtt_session *s, mcsub *cs, const fy_delivery *d, const uint8_t *rec,
                          size_t len, bool redelivered, const msub *only)
{
    mqtt_conn *c = s->conn;
    fy_record_view v;
    bool rap = false, retain_flag;
    uint32_t ids[MAX_SUB_IDS];
    size_t nids = 0;
    int qos = -1;
    mqtt_meta meta;
    outmsg *m;
    uint64_t delivery_id = d ? d->id : 0;
    if (fy_record_decode(rec, len, &v) == FY_OK) {
        meta_read(&v, &meta);
        qos = delivery_qos(s, cs ? cs->share : NULL, &meta, only, &rap, ids, &nids);
        if (qos >= 0 && !may_read(s, &meta)) {
            qos = -1;
        }
    }
    if (qos < 0) {
        settle(s, cs, delivery_id); /* nothing matches any more */
        return;
    }
    retain_flag = only != NULL || (rap && meta.retain);
    if (c && qos == 0 && !s->qhead) {
        write_publish(s, &v, &meta, 0, 0, retain_flag, false, ids, nids);
        settle(s, cs, delivery_id);
        return;
    }
    m = FY_NEW(outmsg);
    m->qos = (uint8_t)qos;
    m->cs = cs;
    m->delivery_id = delivery_id;
    m->retain = retain_flag;
    m->dup = redelivered;
    m->only = only != NULL;
    if (d) {
        memcpy(m->msgid, d->msgid, sizeof(m->msgid));
        m->has_msgid = true;
        m->queue_id = d->entry_queue_id; /* a light queue's entry: what the group's offset counts */
        m->offset = d->entry_offset;
    }
    if (!c || s->inflight >= c->window || s->qhead) {
        fy_buf_append(&m->pkt, rec, len); /* kept until there is room */
        enqueue(s, m);
        return;
    }
    m->pid = next_pid(s);
    if (q2_tracked(s, m)) {
        fy_buf_append(&m->pkt, rec, len); /* sent from here once its packet id is stored */
        out_stored(s, m);
        return;
    }
    if (!write_publish(s, &v, &meta, m->qos, m->pid, retain_flag, redelivered, ids, nids)) {
        settle(s, cs, delivery_id);
        fy_free(m);
        return;
    }
    if (!m->has_msgid) {
        fy_buf_append(&m->pkt, rec, len); /* a retained message: no id to read it back by */
    }
    out_track(s, m);
}

/* Sends queued messages while the client is connected and its window has room. */
static void pump(mqtt_session *s)
{
    while (s->conn && s->qhead && (s->qhead->qos == 0 || s->inflight < s->conn->window)) {
        outmsg *m = s->qhead;
        fy_record_view v;
        mqtt_meta meta;
        uint32_t ids[MAX_SUB_IDS];
        size_t nids = 0;
        bool rap;
        s->qhead = m->next;
        if (!s->qhead) {
            s->qtail = NULL;
        }
        s->nqueued--;
        if (fy_record_decode(m->pkt.data, m->pkt.len, &v) != FY_OK) {
            settle(s, m->cs, m->delivery_id);
            outmsg_free(m);
            continue;
        }
        meta_read(&v, &meta);
        if (!may_read(s, &meta)) {
            settle(s, m->cs, m->delivery_id);
            outmsg_free(m);
            continue;
        }
        if (delivery_qos(s, m->cs ? m->cs->share : NULL, &meta, NULL, &rap, ids, &nids) < 0) {
            nids = 0;
        }
        if (m->qos == 0) {
            write_publish(s, &v, &meta, 0, 0, m->retain, false, ids, nids);
            settle(s, m->cs, m->delivery_id);
            outmsg_free(m);
            continue;
        }
        m->pid = next_pid(s);
        if (q2_tracked(s, m)) {
            out_stored(s, m);
            continue;
        }
        if (!write_publish(s, &v, &meta, m->qos, m->pid, m->retain, m->dup, ids, nids)) {
            settle(s, m->cs, m->delivery_id);
            outmsg_free(m);
            continue;
        }
        if (m->has_msgid) {
            fy_buf_free(&m->pkt); /* read back by id if it must go again */
        }
        out_track(s, m);
    }
}

typedef struct waiting_ctx {
    const uint8_t *msgid;
    outmsg *m;
} waiting_ctx;

static void find_waiting(void *arg, uint64_t pid, uint64_t val)
{
    waiting_ctx *x = arg;
    outmsg *m = (outmsg *)(uintptr_t)val;
    if ((m->state >= OUT_WAIT_COMP || m->restored) && m->has_msgid &&
        memcmp(m->msgid, x->msgid, FY_MSGID_LEN) == 0) {
        x->m = m;
    }
}

static void on_deliver(void *owner, fy_sub *sub, const fy_delivery *d)
{
    mcsub *cs = owner;
    mqtt_session *s = cs->s;
    if (s->restored_waits > 0) {
        /* A message in flight since before a restart (the group's offset had not moved past
         * it yet). PUBREC'd: the client has it; settled, not sent again. Sent and not yet
         * PUBREC'd: it went again with its old packet id at reconnect; this delivery is the one
         * its PUBREC settles. Within one run a message in flight is not delivered again, so only
         * restored ones are looked for, and only while there are some. */
        waiting_ctx w = {d->msgid, NULL};
        fy_u64map_each(&s->out, find_waiting, &w);
        if (w.m && w.m->state == OUT_WAIT_ACK && !w.m->cs && cs->light && !w.m->durable) {
            w.m->cs = cs; /* its PUBREC settles this delivery */
            w.m->delivery_id = d->id;
            return;
        }
        if (w.m && w.m->state != OUT_WAIT_ACK) {
            if (cs->light) {
                q2_settle(s, w.m, cs, d->id);
            } else {
                settle(s, cs, d->id);
            }
            return;
        }
    }
    send_or_queue(s, cs, d, d->record, d->len, d->redelivered, NULL);
}

/* The core ended a member: its topic was deleted (or, for the light queue, the internal topic
 * holding it). The member is forgotten, so that the session's subscriptions get one again as for
 * a topic they never had: a connected session's when the topic is made again
 * (mqtt_session_on_topic: by ferryctl, the admin API, or the next publish), any session's at its
 * next reconcile (SUBSCRIBE, reconnect); the light queue, the session's own, at the next tick
 * (mqtt_session_tick). Not from here: the core is deleting the topic. The core does not look at
 * cs after this returns (fy_sub_ops), and no adapter code holding a member runs under a topic
 * deletion (mqtt_session_end closes its members before deleting its light queue). */
static void on_closed(void *owner, fy_sub *sub, int status, const char *reason)
{
    mcsub *cs = owner;
    mqtt_session *s = cs->s;
    const char *group = cs->light || !cs->share ? s->group : cs->share;
    fy_log(DEBUG, "mqtt", "client=%s topic=%s group=%s msg=\"member closed: %s\"", s->client_id,
           cs->topic, group ? group : CLEAN_GROUP, reason);
    cs->sub = NULL;
    if (cs->light) {
        s->light_lost = true;
    }
    for (size_t i = 0; i < s->ncs; i++) {
        if (s->cs[i] == cs) {
            csub_drop(s, i);
            break;
        }
    }
}

static const fy_sub_ops csub_ops = {on_deliver, on_closed};

/* The retained messages one new subscription still has to get: their topics only (each is
 * looked up again when its turn comes; it may have been replaced or cleared meanwhile). */
typedef struct ret_pending {
    char *filter; /* the subscription's (not shared) */
    char **topics;
    size_t n, cap, ix;
    struct ret_pending *next;
} ret_pending;

static void ret_pending_free(ret_pending *p)
{
    for (size_t i = 0; i < p->n; i++) {
        fy_free(p->topics[i]);
    }
    fy_free(p->topics);
    fy_free(p->filter);
    fy_free(p);
}

static void retained_drop_pending(mqtt_session *s)
{
    while (s->ret_head) {
        ret_pending *p = s->ret_head;
        s->ret_head = p->next;
        ret_pending_free(p);
    }
    s->ret_tail = NULL;
}

static const msub *own_sub(const mqtt_session *s, const char *filter)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        if (!s->subs[i].share && strcmp(s->subs[i].filter, filter) == 0) {
            return &s->subs[i];
        }
    }
    return NULL;
}

/* Sends pending retained messages while the client reads: not when its output is above
 * max_queued_bytes or messages already wait for its window (mqtt_session_drained and the
 * acknowledgements call again). */
static void retained_pump(mqtt_session *s)
{
    bool sent = false;
    while (s->ret_head && s->conn && !s->conn->closing && !mqtt_conn_slow(s->conn) && !s->qhead) {
        ret_pending *p = s->ret_head;
        const char *topic;
        const mqtt_retained *r;
        const msub *m;
        if (p->ix == p->n) {
            s->ret_head = p->next;
            if (!s->ret_head) {
                s->ret_tail = NULL;
            }
            ret_pending_free(p);
            continue;
        }
        topic = p->topics[p->ix++];
        r = fy_strmap_get(&s->srv->retained, topic, strlen(topic));
        m = own_sub(s, p->filter);
        if (r && m) {
            send_or_queue(s, NULL, NULL, r->rec.data, r->rec.len, false, m);
            sent = true;
        }
    }
    if (sent && s->conn) {
        mqtt_conn_flush(s->conn);
    }
}

static void retained_one(void *arg, const char *topic, void *val)
{
    ret_pending *p = arg;
    if (fy_mqtt_match(fy_slice_str(p->filter), fy_slice_str(topic))) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 16;
            p->topics = fy_realloc(p->topics, p->cap * sizeof(*p->topics));
        }
        p->topics[p->n++] = fy_strdup(topic);
    }
}

void mqtt_session_send_record(mqtt_session *s, const uint8_t *rec, size_t len, const msub *only)
{
    send_or_queue(s, NULL, NULL, rec, len, false, only);
}

void mqtt_session_send_retained(mqtt_session *s, const msub *m)
{
    ret_pending *p;
    if (m->share || !s->conn) {
        return; /* retained messages are not sent for shared subscriptions */
    }
    p = FY_NEW(ret_pending);
    p->filter = fy_strdup(m->filter);
    fy_strmap_each(&s->srv->retained, retained_one, p);
    if (p->n == 0) {
        ret_pending_free(p);
        return;
    }
    if (s->ret_tail) {
        s->ret_tail->next = p;
    } else {
        s->ret_head = p;
    }
    s->ret_tail = p;
    retained_pump(s);
}

static void out_done(mqtt_session *s, outmsg *m)
{
    out_forget(s, m);
    s->inflight--;
    pump(s);
    retained_pump(s);
}

void mqtt_session_puback(mqtt_session *s, uint16_t pid, uint8_t type)
{
    uint64_t *slot = fy_u64map_find(&s->out, pid);
    outmsg *m = slot ? (outmsg *)(uintptr_t)*slot : NULL;
    if (type == FY_MQTT_PUBCOMP) {
        if (m && m->state == OUT_WAIT_COMP) {
            if (m->durable || !m->persisted) {
                out_done(s, m);
                return;
            }
            /* Out of the window now; the record (and packet id) wait for the offset. */
            m->state = OUT_COMPLETE;
            s->inflight--;
            pump(s);
        }
        return;
    }
    if (!m || m->state != OUT_WAIT_ACK || m->unsent || (type == FY_MQTT_PUBACK) != (m->qos == 1)) {
        fy_log(DEBUG, "mqtt", "client=%s pid=%u msg=\"acknowledgement of nothing in flight\"",
               s->client_id, pid);
        return;
    }
    if (type == FY_MQTT_PUBACK) {
        settle(s, m->cs, m->delivery_id);
        m->cs = NULL;
        out_done(s, m);
        return;
    }
    /* PUBREC: the client has it; the packet id stays in use until PUBCOMP. A durable session
     * records that (PUBREL once it is stored), so that after a restart it sends PUBREL, not the
     * message. */
    if (m->persisted && m->cs && m->cs->light) {
        q2_settle(s, m, m->cs, m->delivery_id);
    } else if (m->restored) {
        /* Sent before a restart; not durable: its delivery comes again and is settled then */
    } else {
        settle(s, m->cs, m->delivery_id);
        m->durable = true; /* not a light-queue delivery: nothing to wait for */
    }
    m->cs = NULL;
    m->state = OUT_WAIT_COMP;
    fy_buf_free(&m->pkt);
    if (s->group && m->has_msgid && q2out_put(s, m, false) == FY_OK) {
        return; /* PUBREL once it is stored */
    }
    send_pubrel(s->conn, pid);
}

/* ---- Connect and disconnect ---------------------------------------------------------------- */

typedef struct resend_ctx {
    outmsg **v;
    size_t n;
} resend_ctx;

static void collect_out(void *arg, uint64_t key, uint64_t val)
{
    resend_ctx *x = arg;
    x->v[x->n++] = (outmsg *)(uintptr_t)val;
}

static int by_seq(const void *a, const void *b)
{
    const outmsg *x = *(outmsg *const *)a, *y = *(outmsg *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A resumed session: what the client had not acknowledged goes again, in the order it was
 * first sent, with its packet id — PUBLISH with DUP, or PUBREL after a PUBREC (MQTT 4.4). */
static void resend_unacked(mqtt_session *s)
{
    mqtt_conn *c = s->conn;
    resend_ctx x = {NULL, 0};
    if (s->out.n == 0) {
        return;
    }
    x.v = fy_malloc(s->out.n * sizeof(*x.v));
    fy_u64map_each(&s->out, collect_out, &x);
    qsort(x.v, x.n, sizeof(*x.v), by_seq);
    for (size_t i = 0; i < x.n; i++) {
        outmsg *m = x.v[i];
        if (m->unsent || m->state == OUT_COMPLETE) {
            continue; /* goes when its record is stored (publish_stored), or is done */
        }
        if (m->state == OUT_WAIT_COMP) {
            fy_mqtt_ack a = {0};
            a.packet_id = m->pid;
            fy_mqtt_enc_ack(&c->out, c->version, FY_MQTT_PUBREL, &a, c->peer_max_packet);
            continue;
        }
        if (!out_send(s, m, true)) {
            settle(s, m->cs, m->delivery_id); /* gone (retention), expired or too large */
            out_done(s, m);
        }
    }
    fy_free(x.v);
    mqtt_conn_flush(c);
}

void mqtt_session_attach(mqtt_session *s, mqtt_conn *c, bool resumed)
{
    s->conn = c;
    c->s = s;
    s->expire_at = UINT64_MAX;
    resend_unacked(s);
    mqtt_session_reconcile(s);
    mqtt_session_drained(s);
    pump(s);
    mqtt_conn_flush(c);
}

void mqtt_session_detach(mqtt_session *s)
{
    s->conn = NULL;
    retained_drop_pending(s); /* retained messages go out on subscribing only */
    if (s->expiry_ms == 0) {
        mqtt_session_end(s);
        return;
    }
    /* A session that lives on keeps its members, what is in flight (re-sent with the same
     * packet ids on reconnect) and what is queued. Its record says when it was disconnected:
     * after a restart its expiry still counts from now. */
    s->expire_at = s->expiry_ms == UINT64_MAX ? UINT64_MAX : fy_mono_ms() + s->expiry_ms;
    s->disconnected_ms = fy_wall_ms();
    if (s->durable) {
        mqtt_session_store(s, NULL, NULL);
    }
}

typedef struct tick_ctx {
    uint64_t now;
    mqtt_session **expired;
    size_t n, cap;
} tick_ctx;

static void tick_one(void *arg, const char *key, void *val)
{
    tick_ctx *x = arg;
    mqtt_session *s = val;
    if (s->light_lost) {
        /* Its light queue was deleted (on_closed): a new one is read from its first entry (the
         * router fills it meanwhile), connected or not, as a session keeps its members. */
        s->light_lost = false;
        if (!csub_light(s)) {
            csub_open(s, s->group, NULL, false, true);
        }
    }
    if (s->conn) {
        return;
    }
    if (s->will_pending && s->will_at <= x->now) {
        mqtt_publish_will(s->srv, &s->will_rec, s->will_qos, s->will_retain);
        s->will_pending = false;
        fy_buf_reset(&s->will_rec);
        if (s->stored && s->expire_at > x->now) {
            /* Its record goes on without the will: a restart must not publish it again. (Should
             * the broker die between the two writes, it is published twice: at least once.) */
            mqtt_session_store(s, NULL, NULL);
        }
    }
    if (s->expire_at <= x->now) {
        if (x->n == x->cap) {
            x->cap = x->cap ? x->cap * 2 : 8;
            x->expired = fy_realloc(x->expired, x->cap * sizeof(*x->expired));
        }
        x->expired[x->n++] = s;
    }
}

void mqtt_session_tick(mqtt_server *srv)
{
    tick_ctx x = {fy_mono_ms(), NULL, 0, 0};
    fy_strmap_each(&srv->sessions, tick_one, &x);
    for (size_t i = 0; i < x.n; i++) {
        fy_log(INFO, "mqtt", "client=%s msg=\"session expired\"", x.expired[i]->client_id);
        mqtt_session_end(x.expired[i]);
    }
    fy_free(x.expired);
}
