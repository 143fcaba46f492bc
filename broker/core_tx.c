/* SPDX-License-Identifier: Apache-2.0 */
/* Transactional (half) messages in the core: store a half under H tx_id, end it by id (commit:
 * one batch deletes the half and appends its record; rollback: deletes it), and check back open
 * halves with a registered producer of their group on a timer that scans the H range in
 * bounded steps. Memory holds the checkers, the ids being ended and a few counters: a million
 * open halves cost disk, not memory. */
#include "broker/config.h"
#include "broker/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strmap.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#define TX_SCAN_STEP 1024 /* halves looked at per step of a check round */
#define TX_META_VERSION 1

/* The producers of one group that can answer check-backs. */
typedef struct checker_list {
    char *group;
    fy_tx_checker **v;
    size_t n, cap;
    uint32_t rr;
} checker_list;

struct fy_tx_checker {
    core_tx *t;
    checker_list *list;
    const fy_tx_checker_ops *ops;
    void *owner;
};

struct core_tx {
    fy_core *c;
    fy_store *store;
    const fy_broker_config *cfg;
    struct event *check_ev;
    bool stopped;
    bool in_round; /* a round stopped at its step limit and goes on from round_from */
    uint64_t round_from;
    uint64_t floor;    /* no half is pending below this id (skips deletion markers) */
    uint64_t max_done; /* highest id of a half whose put has completed */
    uint64_t *ending;  /* ids whose commit or rollback is being stored */
    size_t nending, capending;
    fy_strmap checkers; /* group -> checker_list */
    fy_buf meta;        /* scratch */
    uint64_t pending, halves, commits, rollbacks, checks, expired;
};

/* ---- Small helpers ------------------------------------------------------------------------- */

static bool ending_has(const core_tx *t, uint64_t id)
{
    for (size_t i = 0; i < t->nending; i++) {
        if (t->ending[i] == id) {
            return true;
        }
    }
    return false;
}

static void ending_add(core_tx *t, uint64_t id)
{
    if (t->nending == t->capending) {
        t->capending = t->capending ? t->capending * 2 : 16;
        t->ending = fy_realloc(t->ending, t->capending * sizeof(*t->ending));
    }
    t->ending[t->nending++] = id;
}

static void ending_del(core_tx *t, uint64_t id)
{
    for (size_t i = 0; i < t->nending; i++) {
        if (t->ending[i] == id) {
            t->ending[i] = t->ending[--t->nending];
            return;
        }
    }
}

/* The broker's state beside a half's record: u8 version, u32 checks, str group, str sharding
 * key (u16 lengths). */
typedef struct tx_meta {
    uint32_t checks;
    fy_slice group;
    fy_slice shard;
} tx_meta;

static void meta_encode(fy_buf *out, uint32_t checks, fy_slice group, fy_slice shard)
{
    fy_buf_reset(out);
    fy_buf_put_u8(out, TX_META_VERSION);
    fy_buf_put_u32(out, checks);
    fy_buf_put_u16(out, (uint16_t)group.len);
    fy_buf_append(out, group.p, group.len);
    fy_buf_put_u16(out, (uint16_t)shard.len);
    fy_buf_append(out, shard.p, shard.len);
}

static int meta_decode(const uint8_t *p, size_t n, tx_meta *m)
{
    fy_rd r = fy_rd_make(p, n);
    uint16_t len;
    if (fy_rd_u8(&r) != TX_META_VERSION) {
        return -FY_ECORRUPT;
    }
    m->checks = fy_rd_u32(&r);
    len = fy_rd_u16(&r);
    m->group.p = fy_rd_take(&r, len);
    m->group.len = len;
    len = fy_rd_u16(&r);
    m->shard.p = fy_rd_take(&r, len);
    m->shard.len = len;
    return r.bad ? -FY_ECORRUPT : FY_OK;
}

static uint32_t topic_id_of(fy_core *c, const uint8_t *rec, size_t len)
{
    fy_record_view v;
    fy_topic_info ti;
    char name[FY_INTERNAL_NAME_MAX + 1];
    if (fy_record_decode(rec, len, &v) != FY_OK || v.topic.len >= sizeof(name)) {
        return 0;
    }
    memcpy(name, v.topic.p, v.topic.len);
    name[v.topic.len] = '\0';
    return fy_core_topic_get(c, name, &ti) == FY_OK ? ti.topic_id : 0;
}

static void half_msgid(const core_tx *t, uint32_t topic_id, uint64_t tx_id,
                       uint8_t msgid[FY_MSGID_LEN])
{
    fy_msgid_make(msgid, (uint16_t)t->cfg->broker_id, topic_id, FY_MSGID_HALF, tx_id);
}

/* ---- Half messages ------------------------------------------------------------------------- */

typedef struct half_ctx {
    core_tx *t;
    uint32_t topic_id;
    fy_produce_cb done;
    void *arg;
} half_ctx;

static void half_done(void *arg, int status, fy_wbatch *b)
{
    half_ctx *x = arg;
    core_tx *t = x->t;
    fy_produce_result r;
    if (status == FY_OK) {
        r.topic_id = x->topic_id;
        fy_wbatch_result(b, 0, &r.queue_id, &r.offset, &r.store_ms);
        half_msgid(t, x->topic_id, r.offset, r.msgid);
        if (r.offset > t->max_done) {
            t->max_done = r.offset;
        }
        t->halves++;
        t->pending++;
        fy_log(DEBUG, "tx", "tx=%llu msg=\"half message stored\"", (unsigned long long)r.offset);
    }
    if (x->done) {
        x->done(x->arg, status, status == FY_OK ? &r : NULL, status == FY_OK ? 1 : 0);
    }
    fy_free(x);
}

int fy_core_tx_half(fy_core *c, const fy_produce_msg *msg, const char *group, fy_produce_cb done,
                    void *arg)
{
    core_tx *t = core_tx_of(c);
    fy_wbatch *b;
    half_ctx *x;
    int rc;
    if (!group || !fy_core_name_valid(group, strlen(group)) || msg->sharding_key.len > UINT16_MAX) {
        return -FY_EBADNAME;
    }
    rc = core_produce_validate(c, msg, 1, fy_wall_ms(), NULL);
    if (rc != FY_OK) {
        return rc;
    }
    meta_encode(&t->meta, 0, fy_slice_str(group), msg->sharding_key);
    b = fy_wbatch_new();
    rc = fy_wbatch_put_half(b, t->meta.data, t->meta.len, msg->record.p, msg->record.len);
    if (rc < 0) {
        fy_wbatch_free(b);
        return rc;
    }
    x = FY_NEW(half_ctx);
    x->t = t;
    x->topic_id = topic_id_of(c, msg->record.p, msg->record.len);
    x->done = done;
    x->arg = arg;
    fy_store_submit(t->store, b, half_done, x);
    return FY_OK;
}

/* ---- Ending a transaction ------------------------------------------------------------------ */

typedef struct half_copy {
    fy_buf meta;
    fy_buf rec;
} half_copy;

static int copy_half(void *arg, uint64_t tx_id, const uint8_t *meta, size_t mlen,
                     const uint8_t *rec, size_t len)
{
    half_copy *h = arg;
    fy_buf_append(&h->meta, meta, mlen);
    fy_buf_append(&h->rec, rec, len);
    return 0;
}

typedef struct end_ctx {
    core_tx *t;
    uint64_t tx_id;
    fy_tx_end_how how;
    fy_produce_cb done;
    void *arg;
} end_ctx;

static void end_finish(end_ctx *x, int status, const fy_produce_result *res, size_t n)
{
    core_tx *t = x->t;
    ending_del(t, x->tx_id);
    if (status == FY_OK) {
        t->pending -= t->pending > 0;
        if (x->how == FY_TXE_COMMIT) {
            t->commits++;
        } else {
            t->rollbacks++;
        }
    }
    fy_log(DEBUG, "tx", "tx=%llu how=%s status=%s msg=\"transaction ended\"",
           (unsigned long long)x->tx_id, x->how == FY_TXE_COMMIT ? "commit" : "rollback",
           fy_errname(status));
    if (x->done) {
        x->done(x->arg, status, res, n);
    }
    fy_free(x);
}

static void commit_done(void *arg, int status, const fy_produce_result *res, size_t n)
{
    end_finish(arg, status, res, n);
}

static void rollback_done(void *arg, int status, fy_wbatch *b)
{
    end_finish(arg, status, NULL, 0);
}

int fy_core_tx_end(fy_core *c, uint64_t tx_id, fy_tx_end_how how, fy_produce_cb done, void *arg)
{
    core_tx *t = core_tx_of(c);
    half_copy h = {FY_BUF_INIT, FY_BUF_INIT};
    tx_meta m;
    end_ctx *x = NULL;
    fy_wbatch *b = NULL;
    int rc;

    if (how != FY_TXE_COMMIT && how != FY_TXE_ROLLBACK && how != FY_TXE_UNKNOWN) {
        return -FY_EINVAL;
    }
    if (ending_has(t, tx_id)) {
        return -FY_EAGAIN;
    }
    rc = fy_store_get_half(t->store, tx_id, copy_half, &h);
    if (rc == FY_OK) {
        rc = meta_decode(h.meta.data, h.meta.len, &m);
    }
    if (rc != FY_OK || how == FY_TXE_UNKNOWN) {
        goto out;
    }
    if (!fy_store_healthy(t->store)) {
        rc = -FY_EUNHEALTHY;
        goto out;
    }
    x = FY_NEW(end_ctx);
    x->t = t;
    x->tx_id = tx_id;
    x->how = how;
    x->done = done;
    x->arg = arg;
    b = fy_wbatch_new();
    fy_wbatch_del_half(b, tx_id);
    if (how == FY_TXE_COMMIT) {
        fy_produce_msg pm;
        uint8_t *flags = h.rec.data + 2;
        /* Consumers can tell the message went through a transaction. */
        if (h.rec.len >= FY_RECORD_HEADER_LEN) {
            fy_be16_put(flags, (uint16_t)(fy_be16_get(flags) | FY_RECORD_F_TX));
        }
        pm.record = (fy_slice){h.rec.data, h.rec.len};
        pm.sharding_key = m.shard;
        pm.proto = FY_PROTO_NATIVE; /* transactions are native only */
        rc = core_produce_batch(c, &pm, 1, b, commit_done, x, NULL);
        if (rc != FY_OK) {
            goto out;
        }
    } else {
        fy_store_submit(t->store, b, rollback_done, x);
    }
    b = NULL;
    x = NULL;
    ending_add(t, tx_id);
out:
    fy_wbatch_free(b);
    fy_free(x);
    fy_buf_free(&h.meta);
    fy_buf_free(&h.rec);
    return rc;
}

/* ---- Checkers ------------------------------------------------------------------------------ */

fy_tx_checker *fy_core_tx_checker_add(fy_core *c, const char *group, const fy_tx_checker_ops *ops,
                                      void *owner, int *err)
{
    core_tx *t = core_tx_of(c);
    checker_list *l;
    fy_tx_checker *k;
    if (!group || !fy_core_name_valid(group, strlen(group))) {
        if (err) {
            *err = -FY_EBADNAME;
        }
        return NULL;
    }
    l = fy_strmap_get(&t->checkers, group, strlen(group));
    if (!l) {
        l = FY_NEW(checker_list);
        l->group = fy_strdup(group);
        fy_strmap_put(&t->checkers, l->group, l);
    }
    k = FY_NEW(fy_tx_checker);
    k->t = t;
    k->list = l;
    k->ops = ops;
    k->owner = owner;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = fy_realloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = k;
    if (err) {
        *err = FY_OK;
    }
    return k;
}

static void list_free(checker_list *l)
{
    fy_free(l->v);
    fy_free(l->group);
    fy_free(l);
}

void fy_core_tx_checker_remove(fy_tx_checker *k)
{
    checker_list *l;
    if (!k) {
        return;
    }
    l = k->list;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] == k) {
            memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
            l->n--;
            break;
        }
    }
    if (l->n == 0) {
        fy_strmap_del(&k->t->checkers, l->group);
        list_free(l);
    }
    fy_free(k);
}

/* ---- Check-back rounds --------------------------------------------------------------------- */

typedef struct round_ctx {
    core_tx *t;
    fy_wbatch *b;
    uint64_t now;
    uint64_t first_live; /* first half seen (UINT64_MAX: none) */
    uint64_t last_id;
    size_t seen;
    bool young; /* reached a half too young to check: the round is over */
    uint64_t *expired;
    size_t nexpired, capexpired;
} round_ctx;

static void round_done(void *arg, int status, fy_wbatch *b)
{
    round_ctx *x = arg;
    core_tx *t = x->t;
    for (size_t i = 0; i < x->nexpired; i++) {
        ending_del(t, x->expired[i]);
        if (status == FY_OK) {
            t->pending -= t->pending > 0;
            t->rollbacks++;
            t->expired++;
        }
    }
    if (status != FY_OK) {
        fy_log(ERROR, "tx", "err=%s msg=\"storing a check round failed; the next round retries\"",
               fy_errname(status));
    }
    fy_free(x->expired);
    fy_free(x);
}

static int round_one(void *arg, uint64_t tx_id, const uint8_t *meta, size_t mlen,
                     const uint8_t *rec, size_t len)
{
    round_ctx *x = arg;
    core_tx *t = x->t;
    tx_meta m;
    uint64_t stored_ms = 0;
    char group[FY_INTERNAL_NAME_MAX + 1];

    if (x->first_live == UINT64_MAX) {
        x->first_live = tx_id;
    }
    x->last_id = tx_id;
    x->seen++;
    if (meta_decode(meta, mlen, &m) != FY_OK ||
        fy_record_peek_store_ms(rec, len, &stored_ms) != FY_OK || m.group.len >= sizeof(group)) {
        fy_log(ERROR, "tx", "tx=%llu msg=\"corrupt half message, skipped\"",
               (unsigned long long)tx_id);
        return 0;
    }
    /* Ids follow store order: once one is too young, so are the rest. */
    if (stored_ms + t->cfg->tx_check_after_ms > x->now) {
        x->young = true;
        return 1;
    }
    if (ending_has(t, tx_id)) {
        return 0; /* its producer is ending it right now */
    }
    memcpy(group, m.group.p, m.group.len);
    group[m.group.len] = '\0';
    if (m.checks >= t->cfg->tx_max_checks) {
        fy_log(WARN, "tx",
               "tx=%llu group=%s checks=%u age_ms=%llu msg=\"transaction still open after "
               "tx_max_checks: rolled back\"",
               (unsigned long long)tx_id, group, m.checks,
               (unsigned long long)(x->now - stored_ms));
        fy_wbatch_del_half(x->b, tx_id);
        ending_add(t, tx_id);
        if (x->nexpired == x->capexpired) {
            x->capexpired = x->capexpired ? x->capexpired * 2 : 16;
            x->expired = fy_realloc(x->expired, x->capexpired * sizeof(*x->expired));
        }
        x->expired[x->nexpired++] = tx_id;
        return 0;
    }
    /* A check is counted whether or not a producer of the group is there to answer. */
    meta_encode(&t->meta, m.checks + 1, m.group, m.shard);
    fy_wbatch_update_half(x->b, tx_id, t->meta.data, t->meta.len, rec, len);
    {
        checker_list *l = fy_strmap_get(&t->checkers, group, strlen(group));
        fy_tx_check chk;
        fy_tx_checker *k;
        if (!l || l->n == 0) {
            fy_log(DEBUG, "tx", "tx=%llu group=%s checks=%u msg=\"no producer to check with\"",
                   (unsigned long long)tx_id, group, m.checks + 1);
            return 0;
        }
        k = l->v[l->rr++ % l->n];
        chk.tx_id = tx_id;
        chk.group = group;
        half_msgid(t, topic_id_of(t->c, rec, len), tx_id, chk.msgid);
        chk.record = rec;
        chk.len = len;
        chk.checks = m.checks + 1;
        t->checks++;
        k->ops->check(k->owner, k, &chk);
    }
    return 0;
}

static void arm_check(core_tx *t, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (!t->stopped) {
        event_add(t->check_ev, &tv);
    }
}

/* One step of a check round: looks at up to TX_SCAN_STEP halves, oldest first. */
static void on_check(evutil_socket_t fd, short what, void *arg)
{
    core_tx *t = arg;
    round_ctx *x;
    int rc;
    if (t->stopped) {
        return;
    }
    if (!fy_store_healthy(t->store)) {
        arm_check(t, t->cfg->tx_check_interval_ms);
        return;
    }
    x = FY_NEW(round_ctx);
    x->t = t;
    x->b = fy_wbatch_new();
    x->now = fy_wall_ms();
    x->first_live = UINT64_MAX;
    rc = fy_store_scan_halves(t->store, t->in_round ? t->round_from : t->floor, TX_SCAN_STEP,
                              round_one, x);
    if (rc < 0) {
        fy_log(ERROR, "tx", "err=%s msg=\"reading half messages failed\"", fy_errname(rc));
    }
    if (!t->in_round) {
        /* A round that starts at the floor sees the first pending half (or none): no half
         * below it is pending, and none below a completed put's id can appear later. */
        if (x->first_live != UINT64_MAX) {
            t->floor = x->first_live;
        } else if (rc >= 0 && t->max_done + 1 > t->floor) {
            t->floor = t->max_done + 1;
        }
    }
    if (rc >= 0 && !x->young && x->seen == TX_SCAN_STEP) {
        t->in_round = true; /* more to look at: go on at once, on a later turn of the loop */
        t->round_from = x->last_id + 1;
        arm_check(t, 0);
    } else {
        t->in_round = false;
        arm_check(t, t->cfg->tx_check_interval_ms);
    }
    if (fy_wbatch_bytes(x->b) == 0) {
        fy_wbatch_free(x->b);
        fy_free(x->expired);
        fy_free(x);
        return;
    }
    fy_store_submit(t->store, x->b, round_done, x);
}

/* ---- Listing and life cycle ---------------------------------------------------------------- */

typedef struct list_ctx {
    core_tx *t;
    void (*fn)(void *arg, const fy_tx_info *i);
    void *arg;
} list_ctx;

static int list_one(void *arg, uint64_t tx_id, const uint8_t *meta, size_t mlen, const uint8_t *rec,
                    size_t len)
{
    list_ctx *x = arg;
    tx_meta m;
    fy_tx_info i;
    char group[FY_INTERNAL_NAME_MAX + 1];
    if (meta_decode(meta, mlen, &m) != FY_OK || m.group.len >= sizeof(group)) {
        return 0;
    }
    memcpy(group, m.group.p, m.group.len);
    group[m.group.len] = '\0';
    i.tx_id = tx_id;
    i.group = group;
    i.stored_ms = 0;
    fy_record_peek_store_ms(rec, len, &i.stored_ms);
    i.checks = m.checks;
    half_msgid(x->t, topic_id_of(x->t->c, rec, len), tx_id, i.msgid);
    i.record = rec;
    i.len = len;
    x->fn(x->arg, &i);
    return 0;
}

int fy_core_tx_list(fy_core *c, uint64_t from_id, size_t limit,
                    void (*fn)(void *arg, const fy_tx_info *t), void *arg)
{
    core_tx *t = core_tx_of(c);
    list_ctx x = {t, fn, arg};
    int rc = fy_store_scan_halves(t->store, from_id, limit, list_one, &x);
    return rc < 0 ? rc : FY_OK;
}

static int count_one(void *arg, uint64_t tx_id, const uint8_t *meta, size_t mlen,
                     const uint8_t *rec, size_t len)
{
    core_tx *t = arg;
    t->pending++;
    t->max_done = tx_id;
    return 0;
}

core_tx *core_tx_new(fy_core *c, struct event_base *base, fy_store *store,
                     const fy_broker_config *cfg)
{
    core_tx *t = FY_NEW(core_tx);
    int rc;
    t->c = c;
    t->store = store;
    t->cfg = cfg;
    /* One pass over the open halves at start: the /health count (no per-half memory). */
    rc = fy_store_scan_halves(store, 0, SIZE_MAX, count_one, t);
    if (rc < 0) {
        fy_log(ERROR, "tx", "err=%s msg=\"cannot count half messages\"", fy_errname(rc));
    }
    t->check_ev = event_new(base, -1, 0, on_check, t);
    arm_check(t, cfg->tx_check_interval_ms);
    if (t->pending > 0) {
        fy_log(INFO, "tx", "pending=%llu msg=\"open transactions found\"",
               (unsigned long long)t->pending);
    }
    return t;
}

void core_tx_stop(core_tx *t)
{
    if (t) {
        t->stopped = true;
        event_del(t->check_ev);
    }
}

static void free_list(void *arg, const char *key, void *val)
{
    checker_list *l = val;
    for (size_t i = 0; i < l->n; i++) {
        fy_free(l->v[i]);
    }
    list_free(l);
}

void core_tx_free(core_tx *t)
{
    if (!t) {
        return;
    }
    if (t->check_ev) {
        event_free(t->check_ev);
    }
    fy_strmap_each(&t->checkers, free_list, NULL);
    fy_strmap_free(&t->checkers);
    fy_free(t->ending);
    fy_buf_free(&t->meta);
    fy_free(t);
}

void core_tx_stats(core_tx *t, fy_core_stats *st)
{
    if (!t) {
        return;
    }
    st->tx_pending = t->pending;
    st->tx_halves = t->halves;
    st->tx_commits = t->commits;
    st->tx_rollbacks = t->rollbacks;
    st->tx_checks = t->checks;
    st->tx_expired = t->expired;
}
