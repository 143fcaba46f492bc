/* SPDX-License-Identifier: Apache-2.0 */
/* AMQP links on the core. A client's sender link (target `<topic>`, or none for the anonymous
 * relay) produces: a transfer is settled `accepted` once the store has it, `rejected` with a
 * condition when refused. A client's receiver link is a core member: source `<topic>` a
 * broadcast member, `<topic>/subscriptions/<group>` (or `<topic>::<group>`) a member of the
 * clustering group, a durable source a clustering group of its own named after the container
 * and link, a dynamic source a temporary topic of its own (request/reply) that lives as long as
 * the link. Link credit is core credit; outcomes become ack and nack. */
#include "adapters/amqp/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strmap.h"

#include "ferry/errors.h"

#include <event2/event.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/session.h>
#include <proton/terminus.h>

#include <stdio.h>
#include <string.h>

#define NS "amqp"
#define BROADCAST_GROUP "amqp%broadcast"
#define DURABLE_VERSION 1
#define DRAIN_WAIT_MS 20 /* how long a drain waits for the core to hand over what it has */
#define SELECTOR_KEY "apache.org:selector-filter:string"
#define SELECTOR_CODE 0x0000468C00000004ULL
#define TAG_FILTER_KEY "ferry:tag-filter"

static const fy_sub_ops link_sub_ops;

enum link_end_how { END_REMOTE_CLOSE, END_REMOTE_DETACH, END_LOCAL, END_CONN };

/* ---- Life cycle ------------------------------------------------------------------------------ */

static alink *link_new(amqp_conn *c, pn_link_t *pl)
{
    alink *l = FY_NEW(alink);
    l->c = c;
    l->link = pl;
    l->next = c->links;
    if (c->links) {
        c->links->prev = l;
    }
    c->links = l;
    c->nlinks++;
    pn_link_set_context(pl, l);
    return l;
}

static void link_free(alink *l)
{
    amqp_conn *c = l->c;
    if (l->prev) {
        l->prev->next = l->next;
    } else if (c->links == l) {
        c->links = l->next;
    }
    if (l->next) {
        l->next->prev = l->prev;
    }
    if (l->drain_ev) {
        event_free(l->drain_ev);
    }
    fy_buf_free(&l->rx);
    fy_free(l->topic);
    fy_free(l->group);
    fy_free(l->tmp_topic);
    fy_free(l);
}

static void link_maybe_free(alink *l)
{
    if (l->closed && l->refs == 0 && !l->link) {
        link_free(l);
    }
}

void amqp_link_unref(alink *l)
{
    l->refs--;
    link_maybe_free(l);
}

static void ignore_done(void *arg, int status)
{
}

static void durable_key(fy_buf *k, const char *group)
{
    fy_buf_reset(k);
    fy_buf_put_u8(k, 'd');
    fy_buf_append(k, group, strlen(group));
}

/* Ends l: its core member leaves (unsettled deliveries go back to the group); a durable
 * subscription the client closed (not detached) is deleted. */
static void link_end(alink *l, enum link_end_how how)
{
    amqp_conn *c = l->c;
    pn_link_t *pl = l->link;
    if (!l->closed) {
        l->closed = true;
        c->nlinks--;
        if (l->sub) {
            fy_sub_close(l->sub);
            l->sub = NULL;
        }
        if (l->drain_ev) {
            event_del(l->drain_ev);
        }
        if (l->tmp_topic && !c->srv->stopping) {
            /* left behind at shutdown, deleted at the next start (amqp_tmp_cleanup) */
            int rc = fy_core_topic_delete(c->srv->env.core, l->tmp_topic, ignore_done, NULL);
            if (rc != FY_OK && rc != -FY_ENOTFOUND) {
                fy_log(WARN, "amqp", "topic=%s err=%s msg=\"temporary topic not deleted\"",
                       l->tmp_topic, fy_errname(rc));
            }
        }
        if (l->durable && how == END_REMOTE_CLOSE) {
            fy_buf key = FY_BUF_INIT;
            fy_kv_op op;
            int rc = fy_core_group_delete(c->srv->env.core, l->group, ignore_done, NULL);
            if (rc != FY_OK && rc != -FY_ENOTFOUND && rc != -FY_EBUSY) {
                fy_log(WARN, "amqp", "group=%s err=%s msg=\"durable subscription not deleted\"",
                       l->group, fy_errname(rc));
            }
            if (rc != -FY_EBUSY) {
                durable_key(&key, l->group);
                op = (fy_kv_op){true, {key.data, key.len}, {NULL, 0}};
                fy_core_kv_write(c->srv->env.core, NS, &op, 1, ignore_done, NULL);
            }
            fy_buf_free(&key);
            fy_log(DEBUG, "amqp", "conn=%llu group=%s msg=\"durable subscription closed\"",
                   (unsigned long long)c->id, l->group);
        }
        if (l->volatile_shared && !c->srv->stopping) {
            /* The last link of a shared volatile subscription ends it: what is published
             * while it has none is not kept for it (busy: other links are still there). */
            int rc = fy_core_group_delete(c->srv->env.core, l->group, ignore_done, NULL);
            if (rc != FY_OK && rc != -FY_ENOTFOUND && rc != -FY_EBUSY) {
                fy_log(WARN, "amqp", "group=%s err=%s msg=\"shared subscription not deleted\"",
                       l->group, fy_errname(rc));
            }
        }
    }
    if (pl) {
        switch (how) {
        case END_REMOTE_CLOSE:
        case END_REMOTE_DETACH:
            if (!(pn_link_state(pl) & PN_LOCAL_CLOSED)) {
                if (how == END_REMOTE_CLOSE) {
                    pn_link_close(pl);
                } else {
                    pn_link_detach(pl);
                }
            }
            pn_link_set_context(pl, NULL);
            pn_link_free(pl);
            l->link = NULL;
            break;
        case END_LOCAL: /* wait for the client's detach before letting the link go */
            if (!(pn_link_state(pl) & PN_LOCAL_CLOSED)) {
                pn_link_close(pl);
            }
            break;
        case END_CONN:
            pn_link_set_context(pl, NULL);
            l->link = NULL;
            break;
        }
    }
    link_maybe_free(l);
}

void amqp_links_close_all(amqp_conn *c)
{
    amqp_links_flush(c); /* what arrived complete is stored, as it would have been */
    for (alink *l = c->links, *next; l; l = next) {
        next = l->next;
        link_end(l, END_CONN);
    }
}

void amqp_links_session_end(amqp_conn *c, pn_session_t *s)
{
    for (alink *l = c->links, *next; l; l = next) {
        next = l->next;
        if (l->link && pn_link_session(l->link) == s) {
            link_end(l, END_CONN); /* the session's end frees the proton link */
        }
    }
}

/* Refuses an attach: an attach with a null terminus, then a detach with the condition. */
static void refuse(pn_link_t *pl, const char *cond, const char *fmt, const char *arg)
{
    pn_condition_format(pn_link_condition(pl), cond, fmt, arg);
    pn_link_open(pl);
    pn_link_close(pl);
}

/* Whether the connection's user may do op on a native topic or group (the ACL). */
static bool amqp_allowed(amqp_conn *c, fy_acl_op op, const char *name)
{
    const fy_adapter_env *env = &c->srv->env;
    if (op == FY_ACL_WRITE && strncmp(name, AMQP_TMP_PREFIX, strlen(AMQP_TMP_PREFIX)) == 0) {
        return true; /* a dynamic source's reply topic: whoever got in may answer to it */
    }
    if (!env->authorize || env->authorize(env->auth_arg, c->user, c->container, "amqp", op,
                                          fy_slice_str(name)) == FY_OK) {
        return true;
    }
    fy_log(INFO, "amqp", "conn=%llu user=%s name=%s msg=\"refused: not authorized\"",
           (unsigned long long)c->id, c->user ? c->user : "(anonymous)", name);
    return false;
}

static void close_with(alink *l, const char *cond, const char *desc)
{
    if (l->link) {
        pn_condition_set_name(pn_link_condition(l->link), cond);
        pn_condition_set_description(pn_link_condition(l->link), desc);
    }
    link_end(l, END_LOCAL);
}

/* ---- Producing (the client's sender link) ------------------------------------------------------
 */

static bool topic_name_ok(const char *t)
{
    return t && t[0] != '%' && fy_core_name_valid(t, strlen(t));
}

static bool is_tmp(const char *t, size_t len)
{
    size_t plen = strlen(AMQP_TMP_PREFIX);
    return len > plen && memcmp(t, AMQP_TMP_PREFIX, plen) == 0;
}

/* A topic a client may send to: a user topic, or a dynamic source's temporary topic while it
 * exists (a message to a temporary topic that is gone must not create it again). */
static bool target_ok(amqp_server *srv, const char *t, size_t len)
{
    char name[128];
    fy_topic_info info;
    if (!fy_core_name_valid(t, len)) {
        return false;
    }
    if (t[0] != '%') {
        return true;
    }
    if (!is_tmp(t, len)) {
        return false;
    }
    memcpy(name, t, len);
    name[len] = '\0';
    return fy_core_topic_get(srv->env.core, name, &info) == FY_OK;
}

static void in_top_up(alink *l)
{
    int window = (int)l->c->srv->cfg->link_credit;
    int want;
    if (!l->link || l->closed) {
        return;
    }
    want = window - pn_link_credit(l->link) - (int)l->in_pending;
    if (want > 0 && (want >= window / 2 || pn_link_credit(l->link) == 0)) {
        pn_link_flow(l->link, want);
    }
}

static void produce_refusal(int rc, const char **cond, const char **desc)
{
    switch (rc) {
    case -FY_ETOOBIG:
        *cond = "amqp:resource-limit-exceeded";
        *desc = "message body larger than max_message_size";
        break;
    case -FY_EBADNAME:
        *cond = "amqp:not-found";
        *desc = "not a valid topic name";
        break;
    case -FY_ENOTFOUND:
        *cond = "amqp:not-found";
        *desc = "no such topic (auto_create_topics is off)";
        break;
    case -FY_ECORRUPT:
        *cond = "amqp:decode-error";
        *desc = "the message does not make a valid record";
        break;
    case -FY_ENOSPC:
    case -FY_EUNHEALTHY:
        *cond = "amqp:resource-limit-exceeded";
        *desc = "not stored: the broker's store refuses writes (disk full or I/O error)";
        break;
    default:
        *cond = "amqp:internal-error";
        *desc = fy_strerror(rc);
        break;
    }
}

static void reject(pn_delivery_t *d, const char *cond, const char *desc)
{
    pn_disposition_t *local = pn_delivery_local(d);
    pn_condition_set_name(pn_disposition_condition(local), cond);
    pn_condition_set_description(pn_disposition_condition(local), desc);
    pn_delivery_update(d, PN_REJECTED);
    pn_delivery_settle(d);
}

/* The complete transfers of one link from one read, produced together: one store batch, one
 * completion, dispositions in order. Holds a reference on the link and a pending count on the
 * connection. */
typedef struct in_item {
    pn_delivery_t *d; /* NULL: pre-settled */
    size_t rec_off, rec_len, key_off, key_len;
} in_item;

struct in_batch {
    alink *l;
    fy_buf data; /* records and sharding keys, back to back */
    in_item *items;
    size_t n, cap;
};

#define BATCH_MAX_MSGS 256
#define BATCH_MAX_BYTES (1u << 20)

static in_batch *batch_new(alink *l)
{
    in_batch *b = FY_NEW(in_batch);
    b->l = l;
    l->refs++;
    l->c->pending++;
    return b;
}

static void batch_add(in_batch *b, pn_delivery_t *d, fy_slice rec, fy_slice key)
{
    in_item *it;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->items = fy_realloc(b->items, b->cap * sizeof(*b->items));
    }
    it = &b->items[b->n++];
    it->d = d;
    it->rec_off = b->data.len;
    it->rec_len = rec.len;
    fy_buf_append(&b->data, rec.p, rec.len);
    it->key_off = b->data.len;
    it->key_len = key.len;
    fy_buf_append(&b->data, key.p, key.len);
    b->l->in_pending++;
}

/* Settles the batch's unsettled transfers (accepted, or rejected with status) and lets go. */
static void batch_finish(in_batch *b, int status)
{
    alink *l = b->l;
    amqp_conn *c = l->c;
    bool live = l->link && !l->closed && !c->closing;
    for (size_t i = 0; i < b->n; i++) {
        in_item *it = &b->items[i];
        l->in_pending--;
        if (status == FY_OK) {
            c->srv->stats.messages_in++;
        }
        if (it->d && live) {
            if (status == FY_OK) {
                pn_delivery_update(it->d, PN_ACCEPTED);
                pn_delivery_settle(it->d);
            } else {
                const char *cond, *desc;
                produce_refusal(status, &cond, &desc);
                reject(it->d, cond, desc);
            }
        }
    }
    if (status != FY_OK && b->n > 0) {
        fy_log(WARN, "amqp", "conn=%llu transfers=%zu err=%s msg=\"transfers not stored\"",
               (unsigned long long)c->id, b->n, fy_errname(status));
    }
    if (live && b->n > 0) {
        in_top_up(l);
        amqp_conn_schedule(c);
    }
    fy_buf_free(&b->data);
    fy_free(b->items);
    fy_free(b);
    amqp_link_unref(l);
    amqp_conn_pending_done(c);
}

static void on_produced(void *arg, int status, const fy_produce_result *res, size_t n)
{
    batch_finish(arg, status);
}

static int batch_submit(in_batch *b)
{
    fy_produce_msg *m = fy_malloc(b->n * sizeof(*m));
    int rc;
    for (size_t i = 0; i < b->n; i++) {
        m[i].record = (fy_slice){b->data.data + b->items[i].rec_off, b->items[i].rec_len};
        m[i].sharding_key = (fy_slice){b->data.data + b->items[i].key_off, b->items[i].key_len};
        m[i].proto = FY_PROTO_AMQP;
    }
    rc = fy_core_produce(b->l->c->srv->env.core, m, b->n, on_produced, b, NULL);
    fy_free(m);
    return rc;
}

/* Produces l's batch. A refusal of the whole (one bad transfer refuses a batch) is retried
 * transfer by transfer, so that only the bad one is rejected. */
static void batch_flush(alink *l)
{
    in_batch *b = l->batch;
    int rc;
    if (!b) {
        return;
    }
    l->batch = NULL;
    rc = batch_submit(b);
    if (rc == FY_OK) {
        return;
    }
    if (b->n > 1) {
        for (size_t i = 0; i < b->n; i++) {
            in_batch *one = batch_new(l);
            in_item *it = &b->items[i];
            l->in_pending--; /* moves to the single batch */
            batch_add(one, it->d, (fy_slice){b->data.data + it->rec_off, it->rec_len},
                      (fy_slice){b->data.data + it->key_off, it->key_len});
            if ((rc = batch_submit(one)) != FY_OK) {
                batch_finish(one, rc);
            }
        }
        b->n = 0;
        batch_finish(b, FY_OK);
        return;
    }
    batch_finish(b, rc);
}

void amqp_links_flush(amqp_conn *c)
{
    for (alink *l = c->links, *next; l; l = next) {
        next = l->next; /* a closed link may go when its batch finishes */
        if (l->batch) {
            batch_flush(l);
        }
    }
}

/* A complete transfer in l->rx. */
static void transfer_done(alink *l, pn_delivery_t *d)
{
    amqp_conn *c = l->c;
    amqp_server *srv = c->srv;
    bool settled = pn_delivery_settled(d); /* pre-settled by the client: at most once */
    fy_amqp_in in = {FY_BUF_INIT, FY_BUF_INIT, ""};
    fy_amqp_map_err me;
    const char *cond = NULL, *desc = NULL;
    char why[200];

    me = fy_amqp_map_in(l->rx.data, l->rx.len, l->topic, c->peer, fy_wall_ms(), &in);
    fy_buf_reset(&l->rx);
    if (me == FY_AMQP_MAP_OK && !l->topic) {
        fy_record_view v;
        if (fy_record_decode(in.record.data, in.record.len, &v) != FY_OK ||
            !target_ok(srv, (const char *)v.topic.p, v.topic.len)) {
            me = FY_AMQP_MAP_NOTFOUND;
            snprintf(in.why, sizeof(in.why), "`to` is not a valid topic name");
        } else if (srv->env.authorize) {
            char t[128];
            snprintf(t, sizeof(t), "%.*s", (int)v.topic.len, (const char *)v.topic.p);
            if (!amqp_allowed(c, FY_ACL_WRITE, t)) {
                cond = "amqp:unauthorized-access";
                snprintf(why, sizeof(why), "not authorized to write to topic %s", t);
                desc = why;
                goto refused;
            }
        }
    } else if (me == FY_AMQP_MAP_OK && l->topic[0] == '%' &&
               !target_ok(srv, l->topic, strlen(l->topic))) {
        me = FY_AMQP_MAP_NOTFOUND;
        snprintf(in.why, sizeof(in.why), "the temporary topic is gone");
    }
    if (me != FY_AMQP_MAP_OK) {
        cond = fy_amqp_map_condition(me);
        snprintf(why, sizeof(why), "%s", in.why);
        desc = why;
        goto refused;
    }
    if (!l->batch) {
        l->batch = batch_new(l);
    }
    batch_add(l->batch, settled ? NULL : d, (fy_slice){in.record.data, in.record.len},
              (fy_slice){in.sharding_key.data, in.sharding_key.len});
    if (settled) {
        pn_delivery_settle(d);
    }
    if (l->batch->n >= BATCH_MAX_MSGS || l->batch->data.len >= BATCH_MAX_BYTES) {
        batch_flush(l);
    }
    fy_amqp_in_free(&in);
    return;
refused:
    fy_log(DEBUG, "amqp", "conn=%llu link=%s cond=%s msg=\"transfer refused: %s\"",
           (unsigned long long)c->id, pn_link_name(l->link), cond, desc);
    if (settled) {
        pn_delivery_settle(d);
    } else {
        reject(d, cond, desc);
    }
    fy_amqp_in_free(&in);
}

static void on_transfer(alink *l, pn_delivery_t *d)
{
    pn_link_t *pl = l->link;
    if (l->closed || !pn_delivery_readable(d)) {
        return;
    }
    if (pn_delivery_aborted(d)) {
        fy_buf_reset(&l->rx);
        pn_link_advance(pl);
        pn_delivery_settle(d);
        in_top_up(l);
        return;
    }
    for (;;) {
        size_t pending = pn_delivery_pending(d);
        ssize_t n;
        if (pending == 0) {
            break;
        }
        if (l->rx.len + pending > l->c->srv->max_msg) {
            char desc[120];
            snprintf(desc, sizeof(desc), "message larger than %llu bytes",
                     (unsigned long long)l->c->srv->max_msg);
            fy_buf_reset(&l->rx);
            close_with(l, "amqp:link:message-size-exceeded", desc);
            return;
        }
        n = pn_link_recv(pl, (char *)fy_buf_reserve(&l->rx, pending), pending);
        if (n <= 0) {
            break;
        }
        l->rx.len += (size_t)n;
    }
    if (pn_delivery_partial(d)) {
        return; /* more frames to come */
    }
    pn_link_advance(pl);
    transfer_done(l, d);
    in_top_up(l);
}

static void open_producer(amqp_conn *c, pn_link_t *pl)
{
    pn_terminus_t *target = pn_link_remote_target(pl);
    const char *addr = pn_terminus_get_address(target);
    alink *l;
    if (pn_terminus_get_type(target) == PN_COORDINATOR) {
        refuse(pl, "amqp:not-implemented", "%s", "transactions are not supported over AMQP yet");
        return;
    }
    if (pn_terminus_is_dynamic(target)) {
        refuse(pl, "amqp:not-implemented", "%s", "dynamic targets are not supported");
        return;
    }
    if (addr && addr[0] && !target_ok(c->srv, addr, strlen(addr))) {
        refuse(pl, "amqp:not-found", "'%s' is not a topic name ([A-Za-z0-9_.%%-]{1,127})", addr);
        return;
    }
    if (addr && addr[0] && !amqp_allowed(c, FY_ACL_WRITE, addr)) {
        refuse(pl, "amqp:unauthorized-access", "not authorized to write to topic %s", addr);
        return;
    }
    l = link_new(c, pl);
    l->topic = addr && addr[0] ? fy_strdup(addr) : NULL;
    pn_terminus_copy(pn_link_target(pl), target);
    pn_terminus_copy(pn_link_source(pl), pn_link_remote_source(pl));
    pn_link_set_max_message_size(pl, c->srv->max_msg);
    pn_link_set_snd_settle_mode(pl, pn_link_remote_snd_settle_mode(pl));
    pn_link_set_rcv_settle_mode(pl, PN_RCV_FIRST);
    pn_link_open(pl);
    in_top_up(l);
    fy_log(DEBUG, "amqp", "conn=%llu link=%s topic=%s msg=\"producer attached\"",
           (unsigned long long)c->id, pn_link_name(pl), l->topic ? l->topic : "(relay)");
}

/* ---- Consuming (the client's receiver link) ----------------------------------------------------
 */

static void out_top_up(alink *l)
{
    int credit;
    uint32_t want;
    if (!l->sub || !l->link || l->closed || amqp_conn_out_blocked(l->c)) {
        return; /* a blocked connection's links are topped up by amqp_links_out_resume */
    }
    credit = pn_link_credit(l->link);
    want = credit > 0 ? (uint32_t)credit : 0;
    if (want > l->c->srv->cfg->max_prefetch) {
        want = (uint32_t)l->c->srv->cfg->max_prefetch;
    }
    if (want > l->core_credit) {
        fy_sub_credit(l->sub, want - l->core_credit);
        l->core_credit = want;
    }
}

static void on_deliver(void *owner, fy_sub *sub, const fy_delivery *d)
{
    alink *l = owner;
    amqp_conn *c = l->c;
    amqp_server *srv = c->srv;
    fy_record_view v;
    pn_delivery_t *dlv;
    uint8_t tag[8];
    if (l->core_credit > 0) {
        l->core_credit--;
    }
    if (!l->link || l->closed || c->closing) {
        fy_sub_nack(sub, d->id, FY_NACK_RELEASE);
        return;
    }
    if (fy_record_decode(d->record, d->len, &v) != FY_OK ||
        fy_amqp_map_out(&v, d->msgid, v.reconsume + (d->redelivered ? 1u : 0u), &srv->scratch) !=
            FY_OK) {
        fy_log(WARN, "amqp", "conn=%llu group=%s msg=\"message cannot be sent over AMQP\"",
               (unsigned long long)c->id, l->group);
        if (l->broadcast) {
            fy_sub_ack(sub, d->id);
        } else {
            fy_sub_nack(sub, d->id, FY_NACK_REJECT);
        }
        return;
    }
    fy_be64_put(tag, d->id);
    dlv = pn_delivery(l->link, pn_dtag((const char *)tag, sizeof(tag)));
    pn_link_send(l->link, (const char *)srv->scratch.data, srv->scratch.len);
    pn_link_advance(l->link);
    c->out_added += srv->scratch.len; /* counted before the top-up below asks whether to go on */
    srv->stats.messages_out++;
    if (l->presettled) {
        pn_delivery_settle(dlv);
        fy_sub_ack(sub, d->id);
    }
    out_top_up(l);
    if (l->drain_ev && pn_link_get_drain(l->link)) {
        /* a drain ends once the core has been quiet for a moment, or at once without credit */
        struct timeval tv = {0, pn_link_credit(l->link) > 0 ? DRAIN_WAIT_MS * 1000 : 0};
        event_add(l->drain_ev, &tv);
    }
    amqp_conn_schedule(c);
}

static void on_sub_closed(void *owner, fy_sub *sub, int status, const char *reason)
{
    alink *l = owner;
    char desc[200];
    l->sub = NULL;
    snprintf(desc, sizeof(desc), "%s", reason ? reason : fy_strerror(status));
    close_with(l, status == -FY_ECANCELED ? "amqp:connection:forced" : "amqp:resource-deleted",
               desc);
    amqp_conn_schedule(l->c);
}

static const fy_sub_ops link_sub_ops = {on_deliver, on_sub_closed};

/* The client settled (or gave an outcome for) a delivery. */
static void on_outcome(alink *l, pn_delivery_t *dlv)
{
    uint64_t state = pn_delivery_remote_state(dlv);
    pn_delivery_tag_t tag = pn_delivery_tag(dlv);
    uint64_t id;
    if (state == PN_RECEIVED || (state == 0 && !pn_delivery_settled(dlv))) {
        return; /* not an outcome yet */
    }
    if (tag.size != 8 || !l->sub) {
        pn_delivery_settle(dlv);
        return;
    }
    id = fy_be64_get((const uint8_t *)tag.start);
    switch (state) {
    case PN_REJECTED:
        /* dead letter; a broadcast member has no dead-letter queue: not to this link again */
        if (l->broadcast) {
            fy_sub_ack(l->sub, id);
        } else {
            fy_sub_nack(l->sub, id, FY_NACK_REJECT);
        }
        break;
    case PN_RELEASED:
        fy_sub_nack(l->sub, id, FY_NACK_RELEASE);
        break;
    case PN_MODIFIED: {
        pn_disposition_t *rd = pn_delivery_remote(dlv);
        if (pn_disposition_is_undeliverable(rd)) {
            /* not to this link again: a broadcast member drops its copy; a group member sends
             * it through the retry topic (it may come back to this link) */
            if (l->broadcast) {
                fy_sub_ack(l->sub, id);
            } else {
                fy_sub_nack(l->sub, id, FY_NACK_RETRY);
            }
        } else if (pn_disposition_is_failed(rd)) {
            fy_sub_nack(l->sub, id, FY_NACK_RETRY);
        } else {
            fy_sub_nack(l->sub, id, FY_NACK_RELEASE);
        }
        break;
    }
    default: /* accepted, or settled without an outcome */
        fy_sub_ack(l->sub, id);
        break;
    }
    pn_delivery_settle(dlv);
}

static void on_drain_timer(evutil_socket_t fd, short what, void *arg)
{
    alink *l = arg;
    if (l->link && !l->closed && pn_link_get_drain(l->link)) {
        pn_link_drained(l->link);
        amqp_conn_process(l->c);
    }
}

static void on_flow(alink *l)
{
    if (l->closed || !l->link) {
        return;
    }
    out_top_up(l);
    if (pn_link_get_drain(l->link) && pn_link_credit(l->link) > 0) {
        struct timeval tv = {0, DRAIN_WAIT_MS * 1000};
        if (!l->drain_ev) {
            l->drain_ev = event_new(l->c->srv->env.base, -1, 0, on_drain_timer, l);
        }
        event_add(l->drain_ev, &tv);
    }
}

/* The clustering group of a subscription named by the client: amqp%<kind><container>%<name>
 * (kind "" for a durable subscription, "v%" for a shared volatile one; container NULL for a
 * global one: amqp%g%<name>, amqp%gv%<name>) when that is a valid name, else
 * amqp%<kind letter><hash>. */
static char *sub_group(const char *kind, const char *container, const char *name)
{
    char buf[200];
    int n = container ? snprintf(buf, sizeof(buf), "amqp%%%s%s%%%s", kind, container, name)
                      : snprintf(buf, sizeof(buf), "amqp%%g%s%%%s", kind[0] ? "v" : "", name);
    if (n > 0 && n <= 127 && fy_core_name_valid(buf, (size_t)n)) {
        return fy_strdup(buf);
    }
    {
        fy_buf k = FY_BUF_INIT;
        fy_buf_append(&k, kind, strlen(kind) + 1);
        fy_buf_append(&k, container ? container : "", strlen(container ? container : "") + 1);
        fy_buf_append(&k, name, strlen(name));
        snprintf(buf, sizeof(buf), "amqp%%%c%016llx", kind[0] ? 'v' : 'd',
                 (unsigned long long)fy_hash64(k.data, k.len));
        fy_buf_free(&k);
    }
    return fy_strdup(buf);
}

static char *durable_group(const char *container, const char *name)
{
    return sub_group("", container, name);
}

static void count_member(void *arg, const fy_group_member_info *m)
{
    (*(uint32_t *)arg)++;
}

static void no_queue(void *arg, const fy_group_queue_info *q)
{
}

/* A shared volatile subscription's first link starts at the tail: a group left from before
 * (the broker stopped while it had links) is moved to now, not resumed. */
static void volatile_fresh(amqp_server *srv, const char *group, const char *topic)
{
    uint32_t members = 0;
    fy_sub_mode mode;
    if (fy_core_group_describe(srv->env.core, group, &mode, count_member, no_queue, &members) ==
            FY_OK &&
        members == 0) {
        fy_core_group_reset(srv->env.core, group, topic, fy_wall_ms(), NULL, ignore_done, NULL);
    }
}

/* Whether a terminus lists capability sym (a symbol, or an array of symbols). */
static bool has_capability(pn_terminus_t *t, const char *sym)
{
    pn_data_t *d = pn_terminus_capabilities(t);
    size_t n = strlen(sym);
    bool found = false;
    pn_data_rewind(d);
    while (!found && pn_data_next(d)) {
        if (pn_data_type(d) == PN_SYMBOL) {
            pn_bytes_t b = pn_data_get_symbol(d);
            found = b.size == n && memcmp(b.start, sym, n) == 0;
        } else if (pn_data_type(d) == PN_ARRAY && pn_data_get_array_type(d) == PN_SYMBOL) {
            pn_data_enter(d);
            while (!found && pn_data_next(d)) {
                pn_bytes_t b = pn_data_get_symbol(d);
                found = b.size == n && memcmp(b.start, sym, n) == 0;
            }
            pn_data_exit(d);
        }
    }
    pn_data_rewind(d);
    return found;
}

/* When a durable subscription was first made (its start), stored on first use. */
static uint64_t durable_since(amqp_server *srv, const char *group)
{
    fy_buf key = FY_BUF_INIT, val = FY_BUF_INIT;
    uint64_t since = fy_wall_ms();
    durable_key(&key, group);
    if (fy_core_kv_get(srv->env.core, NS, key.data, key.len, &val) == FY_OK && val.len >= 9 &&
        val.data[0] == DURABLE_VERSION) {
        since = fy_be64_get(val.data + 1);
    } else {
        fy_kv_op op;
        fy_buf_reset(&val);
        fy_buf_put_u8(&val, DURABLE_VERSION);
        fy_buf_put_u64(&val, since);
        op = (fy_kv_op){false, {key.data, key.len}, {val.data, val.len}};
        fy_core_kv_write(srv->env.core, NS, &op, 1, ignore_done, NULL);
    }
    fy_buf_free(&key);
    fy_buf_free(&val);
    return since;
}

typedef struct source_filter {
    char *selector;
    bool selector_by_code; /* its descriptor was the numeric one */
    char *selector_key;
    char *tags;
    char *tags_key;
} source_filter;

static char *bytes_dup(pn_bytes_t b)
{
    return fy_strndup(b.start ? b.start : "", b.size);
}

/* Reads the filters Ferry knows from a source's filter map; others are ignored (not echoed). */
static void read_filters(pn_terminus_t *src, source_filter *f)
{
    pn_data_t *d = pn_terminus_filter(src);
    size_t n;
    pn_data_rewind(d);
    if (!pn_data_next(d) || pn_data_type(d) != PN_MAP) {
        return;
    }
    n = pn_data_get_map(d) / 2;
    pn_data_enter(d);
    for (size_t i = 0; i < n; i++) {
        pn_bytes_t key = {0, NULL}, desc = {0, NULL}, text = {0, NULL};
        uint64_t code = 0;
        bool has_text = false;
        if (!pn_data_next(d)) {
            break;
        }
        if (pn_data_type(d) == PN_SYMBOL) {
            key = pn_data_get_symbol(d);
        } else if (pn_data_type(d) == PN_STRING) {
            key = pn_data_get_string(d);
        }
        if (!pn_data_next(d)) {
            break;
        }
        if (pn_data_type(d) == PN_DESCRIBED) {
            pn_data_enter(d);
            if (pn_data_next(d)) {
                if (pn_data_type(d) == PN_SYMBOL) {
                    desc = pn_data_get_symbol(d);
                } else if (pn_data_type(d) == PN_ULONG) {
                    code = pn_data_get_ulong(d);
                }
                if (pn_data_next(d) && pn_data_type(d) == PN_STRING) {
                    text = pn_data_get_string(d);
                    has_text = true;
                }
            }
            pn_data_exit(d);
        } else if (pn_data_type(d) == PN_STRING) {
            text = pn_data_get_string(d);
            has_text = true;
        }
        if (!has_text) {
            continue;
        }
#define IS(b, s) ((b).size == strlen(s) && memcmp((b).start, s, (b).size) == 0)
        if (!f->selector &&
            (IS(key, SELECTOR_KEY) || IS(desc, SELECTOR_KEY) || code == SELECTOR_CODE)) {
            f->selector = bytes_dup(text);
            f->selector_key = bytes_dup(key);
            f->selector_by_code = code == SELECTOR_CODE;
        } else if (!f->tags && (IS(key, TAG_FILTER_KEY) || IS(desc, TAG_FILTER_KEY))) {
            f->tags = bytes_dup(text);
            f->tags_key = bytes_dup(key);
        }
#undef IS
    }
    pn_data_exit(d);
}

static void put_filter(pn_data_t *d, const char *key, bool by_code, const char *desc,
                       const char *text)
{
    pn_data_put_symbol(d, pn_bytes(strlen(key), key));
    pn_data_put_described(d);
    pn_data_enter(d);
    if (by_code) {
        pn_data_put_ulong(d, SELECTOR_CODE);
    } else {
        pn_data_put_symbol(d, pn_bytes(strlen(desc), desc));
    }
    pn_data_put_string(d, pn_bytes(strlen(text), text));
    pn_data_exit(d);
}

static void source_filter_free(source_filter *f)
{
    fy_free(f->selector);
    fy_free(f->selector_key);
    fy_free(f->tags);
    fy_free(f->tags_key);
}

/* A receiver with a dynamic source (request/reply): a temporary topic of one queue, made for
 * this link, read by it alone as a broadcast member (no group state in the store); its name is
 * the source address of the attach reply, for the client's reply-to. The topic is deleted when
 * the link ends (detach, session end or connection end), whatever the expiry policy. */
static void open_dynamic(amqp_conn *c, pn_link_t *pl)
{
    amqp_server *srv = c->srv;
    fy_sub_spec spec = {0};
    char name[128], why[200] = "";
    alink *l;
    int rc, err = 0;

    for (;;) {
        snprintf(name, sizeof(name), "%s%llu-%llu", AMQP_TMP_PREFIX, (unsigned long long)c->id,
                 (unsigned long long)++srv->next_tmp);
        rc = fy_core_topic_create(srv->env.core, name, 1, ignore_done, NULL);
        if (rc != -FY_EEXIST) {
            break;
        }
    }
    if (rc != FY_OK) {
        refuse(pl, "amqp:internal-error", "cannot create a temporary topic: %s", fy_strerror(rc));
        return;
    }
    l = link_new(c, pl);
    l->consumer = true;
    l->presettled = pn_link_remote_snd_settle_mode(pl) == PN_SND_SETTLED;
    l->group = fy_strdup(BROADCAST_GROUP);
    l->broadcast = true;
    l->tmp_topic = fy_strdup(name);
    spec.group = l->group;
    spec.topic = name;
    spec.proto = FY_PROTO_AMQP;
    spec.filter = "*";
    spec.mode = FY_SUB_BROADCAST;
    spec.start = FY_START_FIRST;
    spec.client_id = c->container;
    spec.errbuf = why;
    spec.errbuf_len = sizeof(why);
    spec.no_ack_timeout = true;
    l->sub = fy_core_subscribe(srv->env.core, &spec, &link_sub_ops, l, &err);
    if (!l->sub) {
        fy_log(WARN, "amqp", "conn=%llu topic=%s err=%s msg=\"dynamic source refused: %s\"",
               (unsigned long long)c->id, name, fy_errname(err), why);
        link_end(l, END_CONN); /* deletes the topic; the proton link is ours to refuse */
        refuse(pl, "amqp:internal-error", "%s", why[0] ? why : fy_strerror(err));
        return;
    }
    pn_terminus_copy(pn_link_source(pl), pn_link_remote_source(pl));
    pn_terminus_set_address(pn_link_source(pl), name);
    pn_data_clear(pn_terminus_filter(pn_link_source(pl))); /* no filter is applied */
    pn_terminus_copy(pn_link_target(pl), pn_link_remote_target(pl));
    pn_link_set_snd_settle_mode(pl, l->presettled ? PN_SND_SETTLED : PN_SND_UNSETTLED);
    pn_link_set_rcv_settle_mode(pl, PN_RCV_FIRST);
    pn_link_open(pl);
    fy_log(DEBUG, "amqp", "conn=%llu link=%s topic=%s msg=\"dynamic source attached\"",
           (unsigned long long)c->id, pn_link_name(pl), name);
    out_top_up(l);
}

static void open_consumer(amqp_conn *c, pn_link_t *pl)
{
    amqp_server *srv = c->srv;
    pn_terminus_t *src = pn_link_remote_source(pl);
    const char *addr = pn_terminus_get_address(src);
    const char *sep;
    char topic[128], group[128];
    source_filter f = {0};
    fy_sub_spec spec = {0};
    char why[200] = "";
    alink *l;
    bool durable;
    int err = 0;
    pn_data_t *lf;

    if (pn_terminus_is_dynamic(src)) {
        open_dynamic(c, pl);
        return;
    }
    if (!addr || !addr[0]) {
        refuse(pl, "amqp:invalid-field", "%s", "a receiver needs a source address");
        return;
    }
    group[0] = '\0';
    sep = strstr(addr, "/subscriptions/");
    if (sep) {
        snprintf(topic, sizeof(topic), "%.*s", (int)(sep - addr < 127 ? sep - addr : 127), addr);
        snprintf(group, sizeof(group), "%.127s", sep + strlen("/subscriptions/"));
    } else if ((sep = strstr(addr, "::")) != NULL) {
        snprintf(topic, sizeof(topic), "%.*s", (int)(sep - addr < 127 ? sep - addr : 127), addr);
        snprintf(group, sizeof(group), "%.127s", sep + 2);
    } else {
        snprintf(topic, sizeof(topic), "%.127s", addr);
    }
    if (strlen(addr) > 300 || !topic_name_ok(topic) ||
        (sep && (!group[0] || group[0] == '%' || !fy_core_name_valid(group, strlen(group))))) {
        refuse(pl, "amqp:not-found",
               "'%s' is not <topic> or <topic>/subscriptions/<group> with valid names", addr);
        return;
    }
    if (!amqp_allowed(c, FY_ACL_READ, topic)) {
        refuse(pl, "amqp:unauthorized-access", "not authorized to read topic %s", topic);
        return;
    }
    if (group[0] && !amqp_allowed(c, FY_ACL_GROUP, group)) {
        refuse(pl, "amqp:unauthorized-access", "not authorized to use group %s", group);
        return;
    }
    read_filters(src, &f);
    durable = pn_terminus_get_durability(src) != PN_NONDURABLE &&
              pn_terminus_get_expiry_policy(src) == PN_EXPIRE_NEVER;

    l = link_new(c, pl);
    l->consumer = true;
    l->presettled = pn_link_remote_snd_settle_mode(pl) == PN_SND_SETTLED;
    if (!group[0] && has_capability(src, "shared")) {
        /* A JMS 2.0 shared subscription (Qpid JMS, the AMQP topic-subscription proposal): the
         * subscription is the link name up to its first '|' (clients number further links of
         * it "name|2", "name|volatile1", ...); every link of it is a member of one clustering
         * group, scoped to the container unless the source has the "global" capability. */
        const char *ln = pn_link_name(pl), *bar = strchr(ln, '|');
        char *name = fy_strndup(ln, bar ? (size_t)(bar - ln) : strlen(ln));
        const char *scope = has_capability(src, "global") ? NULL : c->container;
        l->group = sub_group(durable ? "" : "v%", scope, name);
        l->durable = durable;
        l->volatile_shared = !durable;
        fy_free(name);
    } else if (group[0]) {
        l->group = fy_strdup(group);
    } else if (durable) {
        l->group = durable_group(c->container, pn_link_name(pl));
        l->durable = true;
    } else {
        l->group = fy_strdup(BROADCAST_GROUP);
        l->broadcast = true;
    }
    spec.group = l->group;
    spec.topic = topic;
    spec.proto = FY_PROTO_AMQP;
    spec.client_id = c->container;
    spec.errbuf = why;
    spec.errbuf_len = sizeof(why);
    spec.no_ack_timeout = true; /* unsettled deliveries wait as long as the link lives */
    if (f.selector) {
        spec.filter = f.selector;
        spec.filter_type = FY_FILTER_SQL92;
    } else {
        spec.filter = f.tags ? f.tags : "*";
        spec.filter_type = FY_FILTER_TAG;
    }
    if (l->volatile_shared) {
        volatile_fresh(srv, l->group, topic);
    }
    if (l->broadcast) {
        spec.mode = FY_SUB_BROADCAST;
        spec.start = FY_START_LAST;
    } else {
        spec.mode = FY_SUB_CLUSTERING;
        if (l->durable) {
            spec.start = FY_START_TIME;
            spec.start_ms = durable_since(srv, l->group);
        } else {
            spec.start = FY_START_LAST;
        }
    }
    l->sub = fy_core_subscribe(srv->env.core, &spec, &link_sub_ops, l, &err);
    if (!l->sub) {
        const char *cond = err == -FY_EINVAL ? "amqp:invalid-field" : "amqp:not-found";
        if (!why[0]) {
            snprintf(why, sizeof(why), "%s", fy_strerror(err));
        }
        fy_log(DEBUG, "amqp", "conn=%llu link=%s source=%s msg=\"refused: %s\"",
               (unsigned long long)c->id, pn_link_name(pl), addr, why);
        l->closed = true;
        c->nlinks--;
        pn_link_set_context(pl, NULL);
        l->link = NULL;
        link_maybe_free(l);
        refuse(pl, cond, "%s", why);
        source_filter_free(&f);
        return;
    }
    pn_terminus_copy(pn_link_source(pl), src);
    pn_terminus_copy(pn_link_target(pl), pn_link_remote_target(pl));
    /* Echo only the filters applied: a client checks that its filter was taken. */
    lf = pn_terminus_filter(pn_link_source(pl));
    pn_data_clear(lf);
    if (f.selector || f.tags) {
        pn_data_put_map(lf);
        pn_data_enter(lf);
        if (f.selector) {
            put_filter(lf, f.selector_key[0] ? f.selector_key : SELECTOR_KEY, f.selector_by_code,
                       SELECTOR_KEY, f.selector);
        } else {
            put_filter(lf, f.tags_key[0] ? f.tags_key : TAG_FILTER_KEY, false, TAG_FILTER_KEY,
                       f.tags);
        }
        pn_data_exit(lf);
    }
    pn_link_set_snd_settle_mode(pl, l->presettled ? PN_SND_SETTLED : PN_SND_UNSETTLED);
    pn_link_set_rcv_settle_mode(pl, PN_RCV_FIRST);
    pn_link_open(pl);
    fy_log(DEBUG, "amqp",
           "conn=%llu link=%s topic=%s group=%s mode=%s durable=%d msg=\"consumer "
           "attached\"",
           (unsigned long long)c->id, pn_link_name(pl), topic, l->group,
           l->broadcast ? "broadcast" : "clustering", (int)l->durable);
    source_filter_free(&f);
    out_top_up(l);
}

/* ---- Events ------------------------------------------------------------------------------------
 */

void amqp_link_event(amqp_conn *c, pn_event_t *e)
{
    pn_link_t *pl = pn_event_link(e);
    alink *l = pl ? pn_link_get_context(pl) : NULL;
    switch (pn_event_type(e)) {
    case PN_LINK_REMOTE_OPEN:
        if (!(pn_link_state(pl) & PN_LOCAL_UNINIT) || l) {
            break; /* our own attach came first (never for a server) */
        }
        if (c->nlinks >= c->srv->cfg->max_links) {
            char n[24];
            snprintf(n, sizeof(n), "%u", (unsigned)c->srv->cfg->max_links);
            refuse(pl, "amqp:resource-limit-exceeded", "at most %s links per connection", n);
        } else if (pn_link_is_receiver(pl)) {
            open_producer(c, pl);
        } else {
            open_consumer(c, pl);
        }
        break;
    case PN_LINK_REMOTE_CLOSE:
    case PN_LINK_REMOTE_DETACH: {
        bool closed = pn_event_type(e) == PN_LINK_REMOTE_CLOSE;
        if (l) {
            link_end(l, closed ? END_REMOTE_CLOSE : END_REMOTE_DETACH);
        } else {
            if (!(pn_link_state(pl) & PN_LOCAL_CLOSED)) {
                if (closed) {
                    pn_link_close(pl);
                } else {
                    pn_link_detach(pl);
                }
            }
            pn_link_free(pl);
        }
        break;
    }
    case PN_LINK_FLOW:
        if (l && l->consumer) {
            on_flow(l);
        }
        break;
    case PN_DELIVERY: {
        pn_delivery_t *d = pn_event_delivery(e);
        if (!l) {
            break;
        }
        if (l->consumer) {
            if (pn_delivery_updated(d)) {
                on_outcome(l, d);
            }
        } else {
            on_transfer(l, d);
        }
        break;
    }
    default:
        break;
    }
}

/* ---- Temporary topics ------------------------------------------------------------------------ */

typedef struct tmp_list {
    char **names;
    size_t n;
} tmp_list;

static void collect_tmp(void *arg, const fy_topic_info *t)
{
    tmp_list *x = arg;
    if (is_tmp(t->name, strlen(t->name))) {
        x->names = fy_realloc(x->names, (x->n + 1) * sizeof(*x->names));
        x->names[x->n++] = fy_strdup(t->name);
    }
}

void amqp_tmp_cleanup(amqp_server *srv)
{
    tmp_list x = {NULL, 0};
    fy_core_topic_each(srv->env.core, collect_tmp, &x);
    for (size_t i = 0; i < x.n; i++) {
        fy_core_topic_delete(srv->env.core, x.names[i], ignore_done, NULL);
        fy_log(INFO, "amqp", "topic=%s msg=\"temporary topic of a previous run deleted\"",
               x.names[i]);
        fy_free(x.names[i]);
    }
    fy_free(x.names);
}

void amqp_links_out_resume(amqp_conn *c)
{
    for (alink *l = c->links; l; l = l->next) {
        if (l->consumer) {
            out_top_up(l);
        }
    }
}
