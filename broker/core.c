/* SPDX-License-Identifier: Apache-2.0 */
/* The core model on the loop: topics, produce, consumers (per group and topic, or per broadcast
 * member), cursors per queue with a settle window, credit-driven dispatch from an in-memory tail
 * or from the store, ack timeouts and batched offset commits. */
#include "broker/core.h"

#include "broker/config.h"
#include "broker/private.h"
#include "broker/selector.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strmap.h"
#include "common/u64map.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define MAX_QUEUES 1024
#define WINDOW 4096               /* most offsets between committed and next per cursor */
#define TAIL_SLOTS 512            /* recent records kept per queue for live delivery */
#define TAIL_MAX_RECORD 65536     /* larger records are read from the store */
#define SCAN_BATCH 128            /* records read from the store per cursor per dispatch round */
#define DISPATCH_BUDGET 4096      /* records examined per dispatch before yielding to the loop */
#define TICK_MS 200               /* ack timeouts and offset commits */
#define MAX_LEVELS 32             /* entries of delay_levels and retry_delays */
#define RETENTION_QUEUES 256      /* queues looked at per retention step */
#define RETENTION_MAX_TRIM 100000 /* messages deleted per queue per step */

/* Settle state of an offset inside a cursor's window. */
enum { W_NONE = 0, W_INFLIGHT = 1, W_DONE = 2, W_REDELIVER = 3 };

typedef struct topic topic;
typedef struct group group;
typedef struct consumer consumer;
typedef struct cursor cursor;

/* The most recent records of a queue, by offset modulo TAIL_SLOTS. */
typedef struct tail_slot {
    uint64_t offset;
    bool valid;
    fy_buf rec;
} tail_slot;

struct topic {
    char *name;
    uint32_t id;
    uint32_t queues;
    uint32_t rr;
    tail_slot *tail; /* queues * TAIL_SLOTS, allocated on first produce */
    bool light;      /* a light queue (%LQ%<name>): its records refer to messages elsewhere */
    bool offsets;    /* groups other than its consumers' may have stored offsets of it (loaded
                      * from the store, or reset): its deletion walks every group's */
    bool unstored;   /* made by fy_core_topic_create: its record's write is on its way (or, out
                      * of the maps, failed) */
    topic *shadow;   /* while unstored: a topic of the name whose deletion failed meanwhile, its
                      * record being what the disk has until this one's is written */
    consumer **cons; /* consumers reading this topic */
    size_t ncons, capcons;
    fy_topic_counters ctr;
};

/* What few cursors ever need, allocated on first use: deliveries to make again, and the
 * state of an orderly queue's failing message. */
typedef struct cursor_x {
    uint64_t *redo; /* offsets to deliver again, FIFO */
    uint32_t nredo, capredo, redo_head;
    uint32_t fails;           /* orderly: how often fail_offset failed in place */
    uint64_t fail_offset;     /* orderly: the offset failing in place */
    uint64_t paused_until_ms; /* orderly: a failure pauses the queue until then */
    uint64_t persisted;       /* persistent consumers: last committed offset written */
} cursor_x;

/* One queue of a consumer. Every subscriber has one per queue of its topic, so it is small:
 * the window and the rest are allocated only when used. */
struct cursor {
    fy_sub *owner;
    uint8_t *win;       /* WINDOW states for offsets [committed, next), by offset % WINDOW */
    cursor_x *x;        /* NULL until needed; always there in a persistent consumer */
    uint64_t committed; /* lowest offset not settled */
    uint64_t next;      /* next new offset to read */
    uint16_t queue_id;  /* < MAX_QUEUES; also its index in its consumer's cur[] */
    uint16_t nflight;   /* deliveries of this queue in flight (<= WINDOW) */
    bool dirty_listed;
};

static cursor_x *cur_x(cursor *cu)
{
    if (!cu->x) {
        cu->x = FY_NEW(cursor_x);
    }
    return cu->x;
}

struct consumer {
    group *g;
    topic *t;
    fy_sub_mode mode;
    bool persistent; /* clustering: offsets in the store; broadcast: in memory */
    bool retry;      /* the group's %RETRY% topic: no filter (it was applied before) */
    bool orderly;    /* one message in flight per queue; failures retried in place */
    fy_sub **members;
    size_t nmembers, capmembers;
    char *filter_text;
    cursor cur[]; /* t->queues cursors */
};

/* The consumer a cursor belongs to (its cursors are the end of its allocation). */
static inline consumer *cons_of(const cursor *cu)
{
    return (consumer *)(void *)((char *)(uintptr_t)(cu - cu->queue_id) - offsetof(consumer, cur));
}

/* A persistent consumer's cursor: the committed offset last written to the store. */
static inline uint64_t *persisted_of(cursor *cu)
{
    return &cu->x->persisted;
}

struct group {
    char *name;
    fy_sub_mode mode;
    int max_reconsume; /* 0..64, or FY_GROUP_MAX_RECONSUME_DEFAULT: the broker's */
    consumer **cons;   /* clustering: one per topic; broadcast: one per member */
    size_t ncons, capcons;
    uint32_t members;
    uint32_t next_member_id;
    /* Settings written by fy_core_group_set_max_reconsume: */
    int stored_max_reconsume; /* in the record the store has, as far as the core knows */
    uint32_t conf_writes;     /* writes of the record on their way */
    bool unstored;            /* made by such a write, none of which is done yet (or, out of
                               * the map, all failed) */
    group *shadow;            /* while unstored: a group of the name whose deletion failed
                               * meanwhile, its record being what the disk has */
};

/* The offsets of a group reset (fy_core_group_reset) while their batch is on its way to the
 * store: a consumer of (group, topic) created meanwhile starts from them, not from the older
 * offsets the store still has. */
typedef struct pending_reset {
    char *group;
    uint32_t topic_id;
    uint32_t queues;
    uint64_t *offsets; /* per queue */
    uint64_t gen;      /* which reset: a later reset of the same group and topic replaces it */
} pending_reset;

typedef struct inflight {
    cursor *cur; /* NULL = free slot */
    uint64_t offset;
    uint64_t deadline_ms;
    uint32_t gen;
    uint32_t next_free;
} inflight;

struct fy_sub {
    fy_core *core;
    group *g;
    consumer *cons[2]; /* the topic; for clustering also the group's retry topic */
    unsigned ncons;
    const fy_sub_ops *ops;
    void *owner;
    uint32_t member_id;
    char *client_id;
    char **tags; /* NULL = every tag */
    size_t ntags;
    fy_selector *sel;                                    /* a SQL92 filter, instead of tags */
    bool (*match)(void *owner, const fy_record_view *v); /* the adapter's own predicate */
    bool no_ack_timeout;
    fy_proto proto;
    uint32_t credit;
    inflight *fl;
    uint32_t nfl, capfl, free_head, inflight;
    uint32_t rr;
    fy_sub *ready_next, *ready_prev; /* in the core's list of members to dispatch */
    bool ready;
    bool closed;
    fy_sub *next_all; /* core's list of live subscriptions */
    fy_sub *prev_all;
};

struct fy_core {
    struct event_base *base;
    fy_store *store;
    const fy_broker_config *cfg;
    fy_strmap topics;    /* name -> topic */
    fy_u64map topic_ids; /* id -> topic pointer */
    fy_strmap groups;    /* name -> group */
    fy_strmap deleting;  /* group name -> its latest deletion on its way to the store */
    uint32_t next_topic_id;
    bool bad_topic_records; /* seen at start: queues of no topic are kept, not erased */
    cursor **dirty;
    size_t ndirty, capdirty;
    struct ack_waiter *waiters; /* fy_sub_ack_durable: settled, offset not yet stored */
    size_t nwaiters, capwaiters;
    struct event *persist_ev; /* persists offsets soon (once per loop turn) for waiters */
    /* Members with something to deliver and credit, dispatched by one event in the order they
     * became ready (an event per member would cost 150 bytes each). */
    fy_sub *ready_head, *ready_tail;
    struct event *ready_ev;
    bool ready_armed;
    bool persist_armed;
    fy_sub *subs;
    struct event *tick_ev;
    struct event *retention_ev;
    struct event *timer_ev; /* fires when the earliest delayed message is due */
    bool timer_busy;        /* a batch moving due messages is being written */
    bool closing;           /* fy_core_free is draining: start nothing new */
    /* No timer is pending below min(timer_fired_upto, timer_new_min): scans start there, not
     * at the first key (fired timers leave deletion markers until LevelDB compacts). */
    uint64_t timer_fired_upto;         /* due time of the last timer moved (0 after a start) */
    uint64_t timer_new_min;            /* earliest due time put since the current scan began */
    uint32_t timers_pending;           /* batches with new timers not yet written */
    uint64_t timers_live;              /* messages in the time index (delayed, retries) */
    uint64_t st_retries, st_dead;      /* failures sent to %RETRY% / %DLQ% since start */
    uint64_t delay_levels[MAX_LEVELS]; /* ms of each delay level (1-based in messages) */
    size_t ndelay_levels;
    uint64_t retry_delays[MAX_LEVELS]; /* back-off before the n-th redelivery of a failure */
    size_t nretry_delays;
    uint32_t retention_next_topic; /* where the current retention pass continues */
    double retention_excess;       /* share of each queue to drop for retention_bytes */
    uint64_t retention_deleted;    /* messages deleted by retention */
    uint64_t retention_skipped;    /* messages groups lost to retention before consuming */
    pending_reset *resets;         /* group resets not yet durable */
    size_t nresets, capresets;
    uint64_t reset_gen;
    fy_buf scratch;
    fy_buf patch;          /* a record copied to change a header field before delivery */
    core_tx *tx;           /* transactions (core_tx.c) */
    fy_record_view *views; /* produce: the decoded requests, kept between its two passes */
    uint64_t *dues;
    size_t capviews;
    struct {
        void (*fn)(void *arg, const fy_topic_info *t);
        void *arg;
    } watchers[8];
    size_t nwatchers;
    fy_router_fn router; /* an adapter's: which light queues index each new message */
    void *router_arg;
    fy_buf resolved;   /* the message a light queue's entry refers to */
    fy_buf lq_rec;     /* a light queue entry being built */
    uint32_t *created; /* topics created since the watchers last heard */
    size_t ncreated, capcreated;
    struct event *created_ev;
};

#define FREE_END UINT32_MAX

static void send_back(fy_core *c, group *g, cursor *cu, uint64_t offset, bool reject);

/* Where timer scans start: no timer is pending below it. */
static uint64_t timer_floor(const fy_core *c)
{
    return c->timer_fired_upto < c->timer_new_min ? c->timer_fired_upto : c->timer_new_min;
}

/* Notes the due time of a timer being put (by a produce or a retry). */
static void timer_added(fy_core *c, uint64_t due)
{
    if (due < c->timer_new_min) {
        c->timer_new_min = due;
    }
}
static void arm_timer(fy_core *c);
static void topic_created(fy_core *c, const topic *t);
static void appended(fy_core *c, fy_wbatch *b, const uint32_t *topic_ids, size_t n,
                     fy_produce_result *res, size_t nres);
static void route(fy_core *c, fy_wbatch *b, uint32_t slot, uint32_t topic_id,
                  const fy_record_view *v, uint32_t **ids, size_t *nids, size_t *capids);

/* ---- Small helpers ------------------------------------------------------------------------- */

#define PUSH(arr, n, cap, item)                                                                    \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 4;                                                           \
            (arr) = fy_realloc((arr), (cap) * sizeof(*(arr)));                                     \
        }                                                                                          \
        (arr)[(n)++] = (item);                                                                     \
    } while (0)

/* Removes the first element equal to item (order not kept). */
#define REMOVE(arr, n, item)                                                                       \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            if ((arr)[i_] == (item)) {                                                             \
                (arr)[i_] = (arr)[--(n)];                                                          \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)

bool fy_core_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > 127) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '%' || ch == '-')) {
            return false;
        }
    }
    return true;
}

static topic *topic_by_id(fy_core *c, uint32_t id)
{
    uint64_t *p = fy_u64map_find(&c->topic_ids, id);
    return p ? (topic *)(uintptr_t)*p : NULL;
}

/* The stored topic configuration: u32 id, u32 queues, u64 created_ms. */
static void topic_conf_encode(const topic *t, uint8_t out[16])
{
    fy_be32_put(out, t->id);
    fy_be32_put(out + 4, t->queues);
    fy_be64_put(out + 8, fy_wall_ms());
}

static topic *topic_add(fy_core *c, const char *name, uint32_t id, uint32_t queues)
{
    topic *t = FY_NEW(topic);
    t->name = fy_strdup(name);
    t->light = strncmp(name, FY_LQ_PREFIX, strlen(FY_LQ_PREFIX)) == 0;
    t->id = id;
    t->queues = queues;
    fy_strmap_put(&c->topics, t->name, t);
    *fy_u64map_upsert(&c->topic_ids, id, 0) = (uint64_t)(uintptr_t)t;
    if (id >= c->next_topic_id) {
        c->next_topic_id = id + 1;
    }
    return t;
}

/* Adds the topic's configuration and the next-id counter to a store batch. */
static void topic_persist(fy_core *c, topic *t, fy_wbatch *b)
{
    uint8_t conf[16], next[4];
    topic_conf_encode(t, conf);
    fy_wbatch_put_topic(b, t->name, conf, sizeof(conf));
    fy_be32_put(next, c->next_topic_id);
    fy_wbatch_put_adapter(b, "core", "next_topic_id", 13, next, sizeof(next));
}

static void topic_free(topic *t)
{
    if (t->shadow) {
        topic_free(t->shadow);
    }
    if (t->tail) {
        for (size_t i = 0; i < (size_t)t->queues * TAIL_SLOTS; i++) {
            fy_buf_free(&t->tail[i].rec);
        }
        fy_free(t->tail);
    }
    fy_free(t->cons);
    fy_free(t->name);
    fy_free(t);
}

/* Keeps a copy of a just-stored record for live delivery. */
static void tail_put(topic *t, uint32_t queue_id, uint64_t offset, const uint8_t *rec, size_t len)
{
    tail_slot *s;
    if (len > TAIL_MAX_RECORD) {
        return;
    }
    if (!t->tail) {
        t->tail = fy_calloc((size_t)t->queues * TAIL_SLOTS, sizeof(*t->tail));
    }
    s = &t->tail[(size_t)queue_id * TAIL_SLOTS + offset % TAIL_SLOTS];
    fy_buf_reset(&s->rec);
    fy_buf_append(&s->rec, rec, len);
    s->offset = offset;
    s->valid = true;
}

static const tail_slot *tail_get(const topic *t, uint32_t queue_id, uint64_t offset)
{
    const tail_slot *s;
    if (!t->tail) {
        return NULL;
    }
    s = &t->tail[(size_t)queue_id * TAIL_SLOTS + offset % TAIL_SLOTS];
    return s->valid && s->offset == offset ? s : NULL;
}

/* ---- Cursors and offsets ------------------------------------------------------------------- */

/* The settle state of offset. The window is allocated on first use: a member that is never
 * handed anything (an idle subscriber skipping other clients' messages) never needs one. */
static uint8_t *win_at(cursor *cu, uint64_t offset)
{
    if (!cu->win) {
        cu->win = fy_calloc(WINDOW, 1);
    }
    return &cu->win[offset % WINDOW];
}

static void mark_dirty(fy_core *c, cursor *cu)
{
    if (cons_of(cu)->persistent && !cu->dirty_listed) {
        cu->dirty_listed = true;
        PUSH(c->dirty, c->ndirty, c->capdirty, cu);
    }
}

/* Moves committed past every settled offset at the front of the window. */
static void advance(fy_core *c, cursor *cu)
{
    uint64_t before = cu->committed;
    while (cu->committed < cu->next && *win_at(cu, cu->committed) == W_DONE) {
        *win_at(cu, cu->committed) = W_NONE;
        cu->committed++;
    }
    if (cu->committed != before) {
        mark_dirty(c, cu);
    }
}

/* Settles an offset that needs no delivery (filtered out). At the front of the window the
 * committed offset simply moves on, without touching the window. */
static void mark_done(fy_core *c, cursor *cu, uint64_t offset)
{
    if (offset == cu->committed) {
        cu->committed++;
        mark_dirty(c, cu);
    } else {
        *win_at(cu, offset) = W_DONE;
    }
}

static void redo_push(cursor *cu, uint64_t offset)
{
    cursor_x *x = cur_x(cu);
    if (x->nredo == x->capredo) {
        /* Unroll the ring into a bigger array. */
        uint32_t cap = x->capredo ? x->capredo * 2 : 16;
        uint64_t *r = fy_malloc(cap * sizeof(*r));
        for (uint32_t i = 0; i < x->nredo; i++) {
            r[i] = x->redo[(x->redo_head + i) % x->capredo];
        }
        fy_free(x->redo);
        x->redo = r;
        x->capredo = cap;
        x->redo_head = 0;
    }
    x->redo[(x->redo_head + x->nredo) % x->capredo] = offset;
    x->nredo++;
}

static bool redo_pop(cursor *cu, uint64_t *offset)
{
    cursor_x *x = cu->x;
    while (x && x->nredo > 0) {
        uint64_t off = x->redo[x->redo_head];
        x->redo_head = (x->redo_head + 1) % x->capredo;
        x->nredo--;
        /* Skip entries made stale by a reset. */
        if (off >= cu->committed && off < cu->next && *win_at(cu, off) == W_REDELIVER) {
            *offset = off;
            return true;
        }
    }
    return false;
}

/* Where a consumer without a committed offset starts in a queue. */
static uint64_t start_offset(fy_core *c, topic *t, uint32_t q, fy_sub_start start,
                             uint64_t start_ms)
{
    uint64_t min, max, off;
    fy_store_queue_range(c->store, t->id, q, &min, &max);
    switch (start) {
    case FY_START_FIRST:
        return min;
    case FY_START_TIME:
        if (fy_store_offset_by_time(c->store, t->id, q, start_ms, &off) == FY_OK) {
            return off < min ? min : off;
        }
        return max;
    case FY_START_LAST:
    default:
        return max;
    }
}

static const pending_reset *reset_find(const fy_core *c, const char *group_name, uint32_t topic_id)
{
    for (size_t i = 0; i < c->nresets; i++) {
        if (c->resets[i].topic_id == topic_id && strcmp(c->resets[i].group, group_name) == 0) {
            return &c->resets[i];
        }
    }
    return NULL;
}

static void reset_remove_at(fy_core *c, size_t i)
{
    fy_free(c->resets[i].group);
    fy_free(c->resets[i].offsets);
    c->resets[i] = c->resets[--c->nresets];
}

/* Forgets pending resets of a group (NULL = any) in a topic (0 = any). */
static void resets_drop(fy_core *c, const char *group_name, uint32_t topic_id)
{
    for (size_t i = 0; i < c->nresets;) {
        if ((!group_name || strcmp(c->resets[i].group, group_name) == 0) &&
            (topic_id == 0 || c->resets[i].topic_id == topic_id)) {
            reset_remove_at(c, i);
        } else {
            i++;
        }
    }
}

/* The committed offset of (group, topic, queue): a reset on its way to the store, else what the
 * store has, unless a group of that name is being deleted: what the store has then is the
 * deleted group's, on its way out, and the group of that name now (made again at once, as an
 * MQTT client connecting again does) has none yet. FY_OK or -FY_ENOTFOUND. */
static int committed_offset(fy_core *c, const char *group_name, uint32_t topic_id, uint32_t q,
                            uint64_t *off)
{
    const pending_reset *r = reset_find(c, group_name, topic_id);
    if (r && q < r->queues) {
        *off = r->offsets[q];
        return FY_OK;
    }
    if (fy_strmap_get(&c->deleting, group_name, strlen(group_name))) {
        return -FY_ENOTFOUND;
    }
    return fy_store_get_offset(c->store, group_name, topic_id, q, off);
}

static consumer *consumer_new(fy_core *c, group *g, topic *t, const fy_sub_spec *spec)
{
    consumer *co = fy_calloc(1, sizeof(*co) + t->queues * sizeof(co->cur[0]));
    co->g = g;
    co->t = t;
    co->mode = spec->mode;
    co->persistent = spec->mode == FY_SUB_CLUSTERING;
    co->orderly = spec->orderly && spec->mode == FY_SUB_CLUSTERING;
    for (uint32_t q = 0; q < t->queues; q++) {
        cursor *cu = &co->cur[q];
        uint64_t min, max, off;
        cu->queue_id = q;
        fy_store_queue_range(c->store, t->id, q, &min, &max);
        if (co->persistent) {
            cur_x(cu);
        }
        if (co->persistent && committed_offset(c, g->name, t->id, q, &off) == FY_OK) {
            *persisted_of(cu) = off;
            if (off < min) {
                c->retention_skipped += min - off;
                fy_log(WARN, "core",
                       "group=%s topic=%s queue=%u skipped=%llu msg=\"retention removed "
                       "messages the group had not consumed\"",
                       g->name, t->name, q, (unsigned long long)(min - off));
                off = min;
            }
            if (off > max) {
                off = max;
            }
        } else {
            off = start_offset(c, t, q, spec->start, spec->start_ms);
            if (co->persistent) {
                *persisted_of(cu) = UINT64_MAX; /* never written: persist the start position */
            }
        }
        cu->committed = cu->next = off;
        if (co->persistent && *persisted_of(cu) != off) {
            mark_dirty(c, cu);
        }
    }
    PUSH(g->cons, g->ncons, g->capcons, co);
    PUSH(t->cons, t->ncons, t->capcons, co);
    return co;
}

static void remove_dirty(fy_core *c, consumer *co)
{
    for (size_t i = 0; i < c->ndirty;) {
        if (cons_of(c->dirty[i]) == co) {
            c->dirty[i] = c->dirty[--c->ndirty];
        } else {
            i++;
        }
    }
}

/* A delivery settled with fy_sub_ack_durable whose owner waits for the committed offset past
 * it to be stored. */
typedef struct ack_waiter {
    cursor *cu; /* NULL: its consumer went (cancelled) */
    uint64_t offset;
    fy_core_done_cb done;
    void *arg;
} ack_waiter;

/* Waiters whose offsets go in (or went in) a batch: told when it is stored. */
typedef struct ack_fired {
    size_t n;
    ack_waiter w[];
} ack_fired;

static void acks_stored(void *arg, int status, fy_wbatch *b)
{
    ack_fired *f = arg;
    for (size_t i = 0; i < f->n; i++) {
        f->w[i].done(f->w[i].arg, f->w[i].cu ? status : -FY_ECANCELED);
    }
    fy_free(f);
}

/* Takes the waiters whose offsets are persisted (or that were cancelled) out of the list. */
static ack_fired *take_fired(fy_core *c)
{
    ack_fired *f = NULL;
    size_t n = 0;
    for (size_t i = 0; i < c->nwaiters; i++) {
        const ack_waiter *w = &c->waiters[i];
        n += !w->cu || *persisted_of(w->cu) > w->offset;
    }
    if (n == 0) {
        return NULL;
    }
    /* In the order they were made: owners answer their clients in that order. */
    f = fy_malloc(sizeof(*f) + n * sizeof(f->w[0]));
    f->n = 0;
    n = 0;
    for (size_t i = 0; i < c->nwaiters; i++) {
        const ack_waiter *w = &c->waiters[i];
        if (!w->cu || *persisted_of(w->cu) > w->offset) {
            f->w[f->n++] = *w;
        } else {
            c->waiters[n++] = *w;
        }
    }
    c->nwaiters = n;
    return f;
}

/* Writes the committed offsets of every dirty cursor in one store batch; waiters whose offsets
 * it covers are told when it is stored. */
static void persist_offsets(fy_core *c)
{
    fy_wbatch *b;
    ack_fired *f;
    if ((c->ndirty == 0 && c->nwaiters == 0) || !fy_store_healthy(c->store)) {
        return;
    }
    b = fy_wbatch_new();
    for (size_t i = 0; i < c->ndirty; i++) {
        cursor *cu = c->dirty[i];
        cu->dirty_listed = false;
        if (cu->committed != *persisted_of(cu)) {
            fy_wbatch_put_offset(b, cons_of(cu)->g->name, cons_of(cu)->t->id, cu->queue_id,
                                 cu->committed);
            *persisted_of(cu) = cu->committed;
        }
    }
    c->ndirty = 0;
    f = take_fired(c);
    fy_store_submit(c->store, b, f ? acks_stored : NULL, f);
}

static void on_persist_soon(evutil_socket_t fd, short what, void *arg)
{
    fy_core *c = arg;
    c->persist_armed = false;
    persist_offsets(c);
}

/* Waiters of consumer co's cursors are cancelled (co is going); told at the next persist. */
static void waiters_cancel(fy_core *c, const consumer *co)
{
    bool any = false;
    for (size_t i = 0; i < c->nwaiters; i++) {
        if (c->waiters[i].cu && cons_of(c->waiters[i].cu) == co) {
            c->waiters[i].cu = NULL;
            any = true;
        }
    }
    if (any && !c->persist_armed && c->persist_ev) {
        c->persist_armed = true;
        event_active(c->persist_ev, EV_WRITE, 0);
    }
}

static void consumer_free(fy_core *c, consumer *co)
{
    if (co->persistent) {
        for (uint32_t q = 0; q < co->t->queues; q++) {
            mark_dirty(c, &co->cur[q]);
        }
        persist_offsets(c);
    }
    waiters_cancel(c, co);
    remove_dirty(c, co);
    REMOVE(co->g->cons, co->g->ncons, co);
    REMOVE(co->t->cons, co->t->ncons, co);
    for (uint32_t q = 0; q < co->t->queues; q++) {
        fy_free(co->cur[q].win);
        if (co->cur[q].x) {
            fy_free(co->cur[q].x->redo);
            fy_free(co->cur[q].x);
        }
    }
    fy_free(co->members);
    fy_free(co->filter_text);
    fy_free(co);
}

/* RocketMQ's average allocation: member i of m gets a contiguous block of the n queues. */
static void rebalance(consumer *co)
{
    uint32_t n = co->t->queues, m = (uint32_t)co->nmembers;
    for (uint32_t q = 0; q < n; q++) {
        co->cur[q].owner = NULL;
    }
    if (co->mode == FY_SUB_BROADCAST) {
        for (uint32_t q = 0; q < n && m > 0; q++) {
            co->cur[q].owner = co->members[0];
        }
        return;
    }
    for (uint32_t i = 0; i < m; i++) {
        uint32_t mod = n % m;
        uint32_t avg = n <= m ? 1 : (mod > 0 && i < mod ? n / m + 1 : n / m);
        uint32_t start = (mod > 0 && i < mod) ? i * avg : i * avg + mod;
        for (uint32_t q = start; q < start + avg && q < n; q++) {
            co->cur[q].owner = co->members[i];
        }
    }
}

/* ---- Dispatch ------------------------------------------------------------------------------ */

static void schedule(fy_sub *s)
{
    fy_core *c = s->core;
    if (s->closed || s->credit == 0 || s->ready) {
        return;
    }
    s->ready = true;
    s->ready_next = NULL;
    s->ready_prev = c->ready_tail;
    if (c->ready_tail) {
        c->ready_tail->ready_next = s;
    } else {
        c->ready_head = s;
    }
    c->ready_tail = s;
    if (!c->ready_armed) {
        c->ready_armed = true;
        event_active(c->ready_ev, EV_WRITE, 0);
    }
}

static void unschedule(fy_sub *s)
{
    fy_core *c = s->core;
    if (!s->ready) {
        return;
    }
    if (s->ready_prev) {
        s->ready_prev->ready_next = s->ready_next;
    } else {
        c->ready_head = s->ready_next;
    }
    if (s->ready_next) {
        s->ready_next->ready_prev = s->ready_prev;
    } else {
        c->ready_tail = s->ready_prev;
    }
    s->ready = false;
    s->ready_next = s->ready_prev = NULL;
}

/* Wakes the owners of the queue's cursors after new messages arrived. */
static void wake_queue(topic *t, uint32_t queue_id)
{
    for (size_t i = 0; i < t->ncons; i++) {
        fy_sub *owner = t->cons[i]->cur[queue_id].owner;
        if (owner) {
            schedule(owner);
        }
    }
}

static bool filter_matches(const fy_sub *s, const uint8_t *rec, size_t len)
{
    fy_record_view v;
    bool ok = false;
    if (!s->tags && !s->sel && !s->match) {
        return true;
    }
    if (fy_record_decode(rec, len, &v) != FY_OK) {
        return false;
    }
    if (s->sel) {
        ok = fy_selector_match(s->sel, &v);
    } else if (s->tags) {
        for (size_t i = 0; i < s->ntags && !ok; i++) {
            size_t n = strlen(s->tags[i]);
            ok = n == v.tag.len && memcmp(s->tags[i], v.tag.p, n) == 0;
        }
    } else {
        ok = true;
    }
    return ok && (!s->match || s->match(s->owner, &v));
}

static uint32_t fl_alloc(fy_sub *s)
{
    uint32_t i;
    if (s->free_head != FREE_END) {
        i = s->free_head;
        s->free_head = s->fl[i].next_free;
        return i;
    }
    if (s->nfl == s->capfl) {
        s->capfl = s->capfl ? s->capfl * 2 : 64;
        s->fl = fy_realloc(s->fl, s->capfl * sizeof(*s->fl));
    }
    s->fl[s->nfl].gen = 0;
    return s->nfl++;
}

static void fl_release(fy_sub *s, uint32_t i)
{
    if (s->fl[i].cur) {
        s->fl[i].cur->nflight--;
    }
    s->fl[i].cur = NULL;
    s->fl[i].gen++;
    s->fl[i].next_free = s->free_head;
    s->free_head = i;
    s->inflight--;
}

/* Where a delivered message is stored: for a light queue, the message its entry refers to. */
typedef struct msg_loc {
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t offset;
} msg_loc;

/* Hands one record to the owner: records it in flight and uses one credit. */
static void deliver(fy_sub *s, cursor *cu, uint64_t offset, const uint8_t *rec, size_t len,
                    bool again, const msg_loc *real)
{
    fy_core *c = s->core;
    uint32_t i = fl_alloc(s);
    inflight *f = &s->fl[i];
    fy_delivery d;
    f->cur = cu;
    f->offset = offset;
    f->deadline_ms = s->no_ack_timeout ? UINT64_MAX : fy_mono_ms() + c->cfg->ack_timeout_ms;
    s->inflight++;
    s->credit--;
    cu->nflight++;
    *win_at(cu, offset) = W_INFLIGHT;
    d.id = (uint64_t)f->gen << 32 | i;
    d.record = rec;
    d.len = len;
    d.topic_id = real ? real->topic_id : cons_of(cu)->t->id;
    d.queue_id = real ? real->queue_id : cu->queue_id;
    d.offset = real ? real->offset : offset;
    d.entry_queue_id = cu->queue_id;
    d.entry_offset = offset;
    d.redelivered = again;
    fy_msgid_make(d.msgid, (uint16_t)c->cfg->broker_id, d.topic_id, (uint16_t)d.queue_id, d.offset);
    {
        topic *ct = real ? topic_by_id(c, real->topic_id) : cons_of(cu)->t;
        if (ct) {
            ct->ctr.msgs_out[s->proto]++;
            ct->ctr.bytes_out[s->proto] += len;
        }
    }
    s->ops->deliver(s->owner, s, &d);
}

/* A light queue's entry: the body ends with the topic id, queue id and offset of the message it
 * indexes. Reads that message (from the topic's tail, else the store) into rec and len. */
static bool resolve(fy_core *c, const uint8_t *ref, size_t n, const uint8_t **rec, size_t *len,
                    msg_loc *loc)
{
    fy_record_view v;
    topic *t;
    const tail_slot *ts;
    if (fy_record_decode(ref, n, &v) != FY_OK || v.body.len < 16) {
        return false;
    }
    loc->topic_id = fy_be32_get(v.body.p + v.body.len - 16);
    loc->queue_id = fy_be32_get(v.body.p + v.body.len - 12);
    loc->offset = fy_be64_get(v.body.p + v.body.len - 8);
    t = topic_by_id(c, loc->topic_id);
    if (!t || loc->queue_id >= t->queues) {
        return false; /* its topic was deleted */
    }
    ts = tail_get(t, loc->queue_id, loc->offset);
    if (ts) {
        *rec = ts->rec.data;
        *len = ts->rec.len;
        return true;
    }
    if (fy_store_get(c->store, t->id, loc->queue_id, loc->offset, &c->resolved) != FY_OK) {
        return false; /* gone (retention) */
    }
    *rec = c->resolved.data;
    *len = c->resolved.len;
    return true;
}

/* Offers the record at offset to s: delivered if it passes the filter (always, for a
 * redelivery or the retry topic), else settled. A light queue's entry is replaced by the
 * message it refers to, and settled if that is gone. */
static void offer(fy_sub *s, cursor *cu, uint64_t offset, const uint8_t *rec, size_t len,
                  bool again)
{
    msg_loc loc, *real = NULL;
    if (cons_of(cu)->t->light) {
        if (!resolve(s->core, rec, len, &rec, &len, &loc)) {
            if (again) {
                *win_at(cu, offset) = W_DONE;
            } else {
                mark_done(s->core, cu, offset);
            }
            return;
        }
        real = &loc;
    }
    if (again || cons_of(cu)->retry || filter_matches(s, rec, len)) {
        deliver(s, cu, offset, rec, len, again, real);
    } else {
        mark_done(s->core, cu, offset);
    }
}

typedef struct scan_ctx {
    fy_sub *s;
    cursor *cu;
    size_t examined;
} scan_ctx;

/* One new record read from the store at cu->next. */
static int scan_deliver(void *arg, uint64_t offset, const uint8_t *rec, size_t len)
{
    scan_ctx *x = arg;
    cursor *cu = x->cu;
    if (offset != cu->next) {
        /* A gap (retention trimmed under us): skip it, never past the window (the offsets of
         * the window's slots must stay distinct); the rest is skipped on a later round. */
        while (cu->next < offset && cu->next - cu->committed < WINDOW) {
            *win_at(cu, cu->next) = W_DONE;
            cu->next++;
        }
        advance(x->s->core, cu);
        if (cu->next < offset) {
            return 1;
        }
    }
    if (x->s->credit == 0 || cu->next - cu->committed >= WINDOW ||
        (cons_of(cu)->orderly && cu->nflight > 0)) {
        return 1;
    }
    x->examined++;
    cu->next++;
    offer(x->s, cu, offset, rec, len, false);
    return 0;
}

/* Delivers from one cursor: redeliveries first, then new records (from the tail when recent,
 * else from the store in a batch). Returns the number of records examined. */
static size_t dispatch_cursor(fy_sub *s, cursor *cu)
{
    fy_core *c = s->core;
    topic *t = cons_of(cu)->t;
    size_t examined = 0;
    uint64_t off, min, max;
    fy_buf *tmp = &c->scratch;

    if (cons_of(cu)->orderly &&
        (cu->nflight > 0 || (cu->x && fy_mono_ms() < cu->x->paused_until_ms))) {
        return 0; /* one at a time, and a failed message waits out its pause */
    }
    while (s->credit > 0 && !(cons_of(cu)->orderly && cu->nflight > 0) && redo_pop(cu, &off)) {
        const tail_slot *ts = tail_get(t, cu->queue_id, off);
        const uint8_t *p = NULL;
        size_t n = 0;
        examined++;
        if (ts) {
            p = ts->rec.data;
            n = ts->rec.len;
        } else if (fy_store_get(c->store, t->id, cu->queue_id, off, tmp) == FY_OK) {
            p = tmp->data;
            n = tmp->len;
        } else {
            *win_at(cu, off) = W_DONE; /* gone (retention): nothing to redeliver */
            continue;
        }
        if (cons_of(cu)->orderly && cu->x && cu->x->fail_offset == off && cu->x->fails > 0 &&
            n >= FY_RECORD_HEADER_LEN) {
            /* Retried in place: the delivery says how often it failed. */
            fy_buf_reset(&c->patch);
            fy_buf_append(&c->patch, p, n);
            fy_be32_put(c->patch.data + FY_RECORD_OFF_RECONSUME, cu->x->fails);
            p = c->patch.data;
        }
        offer(s, cu, off, p, n, true);
    }
    fy_store_queue_range(c->store, t->id, cu->queue_id, &min, &max);
    if (cu->next < min) {
        /* Retention removed records the group had not read: skip ahead, and say so. */
        uint64_t from = cu->next;
        while (cu->next < min && cu->next - cu->committed < WINDOW) {
            *win_at(cu, cu->next) = W_DONE;
            cu->next++;
        }
        c->retention_skipped += cu->next - from;
        fy_log(WARN, "core",
               "group=%s topic=%s queue=%u skipped=%llu msg=\"retention removed messages the "
               "group had not consumed\"",
               cons_of(cu)->g->name, t->name, cu->queue_id, (unsigned long long)(cu->next - from));
    }
    while (s->credit > 0 && cu->next < max && cu->next - cu->committed < WINDOW &&
           examined < SCAN_BATCH && !(cons_of(cu)->orderly && cu->nflight > 0)) {
        const tail_slot *ts = tail_get(t, cu->queue_id, cu->next);
        if (!ts) {
            scan_ctx x = {s, cu, 0};
            int rc = fy_store_scan(c->store, t->id, cu->queue_id, cu->next, SCAN_BATCH, 1u << 20,
                                   scan_deliver, &x);
            examined += x.examined;
            if (rc < 0) {
                fy_log(ERROR, "core", "topic=%s queue=%u err=%s msg=\"store read failed\"", t->name,
                       cu->queue_id, fy_errname(rc));
                break;
            }
            if (x.examined == 0) {
                break;
            }
            continue;
        }
        off = cu->next++;
        examined++;
        offer(s, cu, off, ts->rec.data, ts->rec.len, false);
    }
    advance(c, cu);
    return examined;
}

static void dispatch(fy_sub *s)
{
    size_t budget = DISPATCH_BUDGET;
    bool progress = true;

    while (!s->closed && s->credit > 0 && progress && budget > 0) {
        progress = false;
        for (unsigned i = 0; i < s->ncons; i++) {
            consumer *co = s->cons[(s->rr + i) % s->ncons];
            uint32_t n = co->t->queues;
            for (uint32_t k = 0; k < n && s->credit > 0 && !s->closed; k++) {
                cursor *cu = &co->cur[(s->rr + k) % n];
                size_t e;
                if (cu->owner != s) {
                    continue;
                }
                e = dispatch_cursor(s, cu);
                if (e > 0) {
                    progress = true;
                    budget = e >= budget ? 0 : budget - e;
                }
            }
        }
        s->rr++;
    }
    if (!s->closed && s->credit > 0 && budget == 0) {
        schedule(s); /* more to do: yield to the loop and continue */
    }
}

/* Dispatches the members that were ready when it fired; those that become ready meanwhile
 * (or yield with more to do) wait for the next turn of the loop. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    fy_core *c = arg;
    fy_sub *last = c->ready_tail;
    c->ready_armed = false;
    while (c->ready_head) {
        fy_sub *s = c->ready_head;
        bool was_last = s == last;
        unschedule(s);
        dispatch(s);
        if (was_last) {
            break;
        }
    }
    if (c->ready_head && !c->ready_armed) {
        c->ready_armed = true;
        event_active(c->ready_ev, EV_WRITE, 0);
    }
}

/* ---- Subscriptions ------------------------------------------------------------------------- */

/* Parses "TagA || TagB" into s->tags; "", "*" and NULL mean every tag. */
static int parse_filter(fy_sub *s, const char *filter)
{
    const char *p = filter;
    if (!filter || !*filter || strcmp(filter, "*") == 0) {
        return FY_OK;
    }
    while (*p) {
        const char *end = strstr(p, "||");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *a = p, *b = p + n;
        while (a < b && (*a == ' ' || *a == '\t')) {
            a++;
        }
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) {
            b--;
        }
        if (a == b) {
            return -FY_EINVAL;
        }
        if (b - a == 1 && *a == '*') {
            return -FY_EINVAL; /* "*" mixed with tags */
        }
        s->tags = fy_realloc(s->tags, (s->ntags + 1) * sizeof(*s->tags));
        s->tags[s->ntags++] = fy_strndup(a, (size_t)(b - a));
        p = end ? end + 2 : p + n;
        if (end && !*p) {
            return -FY_EINVAL; /* trailing "||" */
        }
    }
    return FY_OK;
}

static void sub_free(fy_sub *s)
{
    fy_selector_free(s->sel);
    for (size_t i = 0; i < s->ntags; i++) {
        fy_free(s->tags[i]);
    }
    fy_free(s->tags);
    fy_free(s->fl);
    fy_free(s->client_id);
    unschedule(s);
    fy_free(s);
}

static group *group_get_or_add(fy_core *c, const char *name, fy_sub_mode mode, bool *created)
{
    group *g = fy_strmap_get(&c->groups, name, strlen(name));
    *created = false;
    if (!g) {
        g = FY_NEW(group);
        g->name = fy_strdup(name);
        g->mode = mode;
        g->max_reconsume = FY_GROUP_MAX_RECONSUME_DEFAULT;
        g->stored_max_reconsume = FY_GROUP_MAX_RECONSUME_DEFAULT;
        g->next_member_id = 1;
        fy_strmap_put(&c->groups, g->name, g);
        *created = true;
    }
    return g;
}

/* A group's record (key G name): u8 mode, u8 max_reconsume (GROUP_REC_DEFAULT = the broker's).
 * Records written before per-group settings are one byte (mode only); bytes after the known
 * ones are left for later fields and ignored. */
#define GROUP_REC_LEN 2
#define GROUP_REC_DEFAULT 0xFF

static void group_persist(const group *g, fy_wbatch *b)
{
    uint8_t rec[GROUP_REC_LEN];
    rec[0] = (uint8_t)g->mode;
    rec[1] = g->max_reconsume < 0 ? GROUP_REC_DEFAULT : (uint8_t)g->max_reconsume;
    fy_wbatch_put_group(b, g->name, rec, sizeof(rec));
}

/* Failures of a message before it goes to the dead-letter queue, for this group. */
static uint32_t group_max_reconsume(const fy_core *c, const group *g)
{
    return g->max_reconsume >= 0 ? (uint32_t)g->max_reconsume : (uint32_t)c->cfg->max_reconsume;
}

static topic *topic_get_or_create(fy_core *c, const char *name, size_t len, fy_wbatch *b, int *err)
{
    topic *t = fy_strmap_get(&c->topics, name, len);
    char tmp[128];
    if (t) {
        return t;
    }
    if (!fy_core_name_valid(name, len)) {
        *err = -FY_EBADNAME;
        return NULL;
    }
    if (!c->cfg->auto_create_topics) {
        *err = -FY_ENOTFOUND;
        return NULL;
    }
    memcpy(tmp, name, len);
    tmp[len] = '\0';
    t = topic_add(c, tmp, c->next_topic_id, (uint32_t)c->cfg->default_queues);
    topic_persist(c, t, b);
    topic_created(c, t);
    fy_log(INFO, "core", "topic=%s id=%u queues=%u msg=\"topic created automatically\"", t->name,
           t->id, t->queues);
    return t;
}

/* A topic the broker uses itself (%RETRY%<group>, %DLQ%<group>): one queue, created whatever
 * auto_create_topics says, names up to 255 bytes. Its creation rides along in b. */
static topic *internal_topic(fy_core *c, const char *prefix, const char *group_name, fy_wbatch *b)
{
    char name[FY_INTERNAL_NAME_MAX + 1];
    topic *t;
    snprintf(name, sizeof(name), "%s%s", prefix, group_name);
    t = fy_strmap_get(&c->topics, name, strlen(name));
    if (!t) {
        t = topic_add(c, name, c->next_topic_id, 1);
        topic_persist(c, t, b);
        fy_log(DEBUG, "core", "topic=%s id=%u msg=\"internal topic created\"", t->name, t->id);
    }
    return t;
}

/* The consumer of a clustering group's retry topic (created with the topic if needed). Starts
 * at the first message: whatever is there belongs to the group. */
static consumer *retry_consumer(fy_core *c, group *g)
{
    fy_wbatch *b = fy_wbatch_new();
    topic *t = internal_topic(c, FY_RETRY_PREFIX, g->name, b);
    fy_sub_spec spec = {0};
    consumer *co;
    fy_store_submit(c->store, b, NULL, NULL);
    for (size_t i = 0; i < g->ncons; i++) {
        if (g->cons[i]->t == t) {
            return g->cons[i];
        }
    }
    spec.mode = FY_SUB_CLUSTERING;
    spec.start = FY_START_FIRST;
    co = consumer_new(c, g, t, &spec);
    co->retry = true;
    co->filter_text = fy_strdup("");
    return co;
}

fy_sub *fy_core_subscribe(fy_core *c, const fy_sub_spec *spec, const fy_sub_ops *ops, void *owner,
                          int *err)
{
    fy_sub *s;
    group *g;
    topic *t;
    consumer *co = NULL;
    bool created;
    int rc = FY_OK;
    fy_wbatch *b;

    if (!spec->group || !fy_core_name_valid(spec->group, strlen(spec->group)) || !spec->topic) {
        *err = -FY_EBADNAME;
        return NULL;
    }
    if (spec->mode != FY_SUB_CLUSTERING && spec->mode != FY_SUB_BROADCAST) {
        *err = -FY_EINVAL;
        return NULL;
    }
    g = fy_strmap_get(&c->groups, spec->group, strlen(spec->group));
    if (g && g->mode != spec->mode) {
        if (spec->errbuf) {
            snprintf(spec->errbuf, spec->errbuf_len, "group %s exists in %s mode", g->name,
                     g->mode == FY_SUB_CLUSTERING ? "clustering" : "broadcast");
        }
        *err = -FY_EINVAL;
        return NULL;
    }
    s = FY_NEW(fy_sub);
    s->core = c;
    s->ops = ops;
    s->owner = owner;
    s->free_head = FREE_END;
    s->client_id = fy_strdup(spec->client_id ? spec->client_id : "");
    s->match = spec->match;
    s->no_ack_timeout = spec->no_ack_timeout;
    s->proto = (unsigned)spec->proto < FY_PROTO_COUNT ? spec->proto : FY_PROTO_INTERNAL;
    if (spec->filter_type == FY_FILTER_SQL92) {
        char why[160];
        const char *text = spec->filter ? spec->filter : "";
        s->sel = fy_selector_compile(text, strlen(text), why, sizeof(why), NULL);
        rc = s->sel ? FY_OK : -FY_EINVAL;
        if (!s->sel && spec->errbuf) {
            snprintf(spec->errbuf, spec->errbuf_len, "bad SQL92 filter: %s", why);
        }
    } else if (spec->filter_type == FY_FILTER_TAG) {
        rc = parse_filter(s, spec->filter);
        if (rc != FY_OK && spec->errbuf) {
            snprintf(spec->errbuf, spec->errbuf_len,
                     "bad tag filter: expected \"*\" or tags joined by \"||\"");
        }
    } else {
        rc = -FY_EINVAL;
    }
    if (rc != FY_OK) {
        sub_free(s);
        *err = rc;
        return NULL;
    }
    b = fy_wbatch_new();
    if (spec->light) {
        t = strlen(spec->topic) + strlen(FY_LQ_PREFIX) <= FY_INTERNAL_NAME_MAX
                ? internal_topic(c, FY_LQ_PREFIX, spec->topic, b)
                : NULL;
        rc = -FY_EBADNAME;
    } else {
        t = topic_get_or_create(c, spec->topic, strlen(spec->topic), b, &rc);
    }
    if (!t) {
        sub_free(s);
        fy_wbatch_free(b);
        *err = rc;
        return NULL;
    }
    g = group_get_or_add(c, spec->group, spec->mode, &created);
    if (created) {
        group_persist(g, b);
    }
    fy_store_submit(c->store, b, NULL, NULL);

    if (spec->mode == FY_SUB_CLUSTERING) {
        for (size_t i = 0; i < g->ncons; i++) {
            if (g->cons[i]->t == t) {
                co = g->cons[i];
            }
        }
    }
    if (co && co->orderly != spec->orderly) {
        if (spec->errbuf) {
            snprintf(spec->errbuf, spec->errbuf_len, "group %s consumes %s %s", g->name, t->name,
                     co->orderly ? "orderly" : "concurrently");
        }
        sub_free(s);
        *err = -FY_EINVAL;
        return NULL;
    }
    if (!co) {
        co = consumer_new(c, g, t, spec);
        co->filter_text = fy_strdup(spec->filter ? spec->filter : "");
    }
    s->g = g;
    s->cons[s->ncons++] = co;
    if (spec->mode == FY_SUB_CLUSTERING && !co->retry && !co->orderly && !spec->no_retry) {
        /* The member also consumes the group's retry topic, where its failures come back. */
        consumer *rco = retry_consumer(c, g);
        if (rco && rco != co) {
            s->cons[s->ncons++] = rco;
        }
    }
    s->member_id = g->next_member_id++;
    g->members++;
    for (unsigned i = 0; i < s->ncons; i++) {
        consumer *m = s->cons[i];
        PUSH(m->members, m->nmembers, m->capmembers, s);
        rebalance(m);
        /* Other members may have lost queues with work waiting: let the new owners look. */
        for (size_t k = 0; k < m->nmembers; k++) {
            schedule(m->members[k]);
        }
    }
    s->next_all = c->subs;
    if (c->subs) {
        c->subs->prev_all = s;
    }
    c->subs = s;
    fy_log(DEBUG, "core", "group=%s topic=%s member=%u client=%s mode=%s msg=\"member joined\"",
           g->name, t->name, s->member_id, s->client_id,
           spec->mode == FY_SUB_CLUSTERING ? "clustering" : "broadcast");
    return s;
}

void fy_sub_credit(fy_sub *s, uint32_t n)
{
    uint64_t total = (uint64_t)s->credit + n;
    s->credit = total > UINT32_MAX ? UINT32_MAX : (uint32_t)total;
    schedule(s);
}

/* Finds the in-flight entry of a delivery id, or NULL. */
static inflight *fl_find(fy_sub *s, uint64_t id, uint32_t *slot)
{
    uint32_t i = (uint32_t)id, gen = (uint32_t)(id >> 32);
    if (i >= s->nfl || !s->fl[i].cur || s->fl[i].gen != gen) {
        return NULL;
    }
    *slot = i;
    return &s->fl[i];
}

uint32_t fy_sub_inflight(const fy_sub *s)
{
    return s->inflight;
}

int fy_sub_ack(fy_sub *s, uint64_t delivery_id)
{
    uint32_t slot;
    inflight *f = fl_find(s, delivery_id, &slot);
    cursor *cu;
    if (!f) {
        return -FY_ENOTFOUND;
    }
    cu = f->cur;
    if (f->offset >= cu->committed && f->offset < cu->next &&
        *win_at(cu, f->offset) == W_INFLIGHT) {
        *win_at(cu, f->offset) = W_DONE;
        advance(s->core, cu);
    }
    if (cu->x && cu->x->fail_offset == f->offset) {
        cu->x->fails = 0;
    }
    fl_release(s, slot);
    if (cu->owner) {
        schedule(cu->owner); /* the window may have room again */
    }
    return FY_OK;
}

int fy_core_group_committed(fy_core *c, const char *group_name, const char *topic_name,
                            uint32_t queue_id, uint64_t *offset)
{
    topic *t = fy_strmap_get(&c->topics, topic_name, strlen(topic_name));
    group *g = fy_strmap_get(&c->groups, group_name, strlen(group_name));
    if (!t || queue_id >= t->queues) {
        return -FY_ENOTFOUND;
    }
    for (size_t i = 0; g && i < g->ncons; i++) {
        if (g->cons[i]->t == t) {
            *offset = g->cons[i]->cur[queue_id].committed;
            return FY_OK;
        }
    }
    return committed_offset(c, group_name, t->id, queue_id, offset);
}

int fy_sub_ack_durable(fy_sub *s, uint64_t delivery_id, fy_core_done_cb done, void *arg)
{
    fy_core *c = s->core;
    uint32_t slot;
    inflight *f = fl_find(s, delivery_id, &slot);
    cursor *cu;
    uint64_t offset;
    if (!f) {
        return -FY_ENOTFOUND;
    }
    cu = f->cur;
    offset = f->offset;
    if (!cons_of(cu)->persistent) {
        fy_sub_ack(s, delivery_id);
        return -FY_ENOTSUP;
    }
    PUSH(c->waiters, c->nwaiters, c->capwaiters, ((ack_waiter){cu, offset, done, arg}));
    fy_sub_ack(s, delivery_id);
    if (!c->persist_armed) {
        /* Once this turn of the loop is over: the acks of one read go in one batch. */
        c->persist_armed = true;
        event_active(c->persist_ev, EV_WRITE, 0);
    }
    return FY_OK;
}

/* Puts an in-flight offset back for redelivery by the cursor's current owner. */
static void release_one(cursor *cu, uint64_t offset)
{
    if (offset >= cu->committed && offset < cu->next && *win_at(cu, offset) == W_INFLIGHT) {
        *win_at(cu, offset) = W_REDELIVER;
        redo_push(cu, offset);
        if (cu->owner) {
            schedule(cu->owner);
        }
    }
}

typedef struct back_ctx {
    fy_core *c;
    char *group;
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t offset;
    uint32_t dlq_topic_id; /* != 0: the record was appended there */
} back_ctx;

/* The cursor of (group, topic, queue), if the group still consumes that topic. */
static cursor *find_cursor(fy_core *c, const char *group_name, uint32_t topic_id, uint32_t q)
{
    group *g = fy_strmap_get(&c->groups, group_name, strlen(group_name));
    for (size_t i = 0; g && i < g->ncons; i++) {
        if (g->cons[i]->persistent && g->cons[i]->t->id == topic_id && q < g->cons[i]->t->queues) {
            return &g->cons[i]->cur[q];
        }
    }
    return NULL;
}

static void send_back_done(void *arg, int status, fy_wbatch *b)
{
    back_ctx *x = arg;
    fy_core *c = x->c;
    cursor *cu = find_cursor(c, x->group, x->topic_id, x->queue_id);
    if (!x->dlq_topic_id) {
        c->timers_pending--; /* a retry: its timer is written (or failed) */
    }
    if (status == FY_OK && x->dlq_topic_id) {
        appended(c, b, &x->dlq_topic_id, 1, NULL, 0);
    } else if (status == FY_OK) {
        arm_timer(c); /* the copy waits in the time index */
    }
    if (cu && x->offset >= cu->committed && x->offset < cu->next &&
        *win_at(cu, x->offset) == W_INFLIGHT) {
        if (status == FY_OK) {
            /* The copy is durable: the original is settled for this group. */
            *win_at(cu, x->offset) = W_DONE;
            advance(c, cu);
            if (cu->owner) {
                schedule(cu->owner);
            }
        } else {
            release_one(cu, x->offset); /* could not move it: deliver it again as it is */
        }
    }
    fy_free(x->group);
    fy_free(x);
}

/* Encodes into out a copy of the message v with the given flags and reconsume count, without
 * its REAL_TOPIC property, and with REAL_TOPIC = real when real is not NULL. */
static int copy_record(const fy_record_view *v, uint16_t flags, uint32_t reconsume,
                       const char *real, fy_buf *out)
{
    fy_record r = {0};
    fy_slice *keys = fy_malloc((size_t)(v->nkeys + 1) * sizeof(*keys));
    fy_slice *props = fy_malloc(((size_t)v->nprops + 1) * 2 * sizeof(*props));
    fy_slice name, value;
    fy_record_iter it;
    size_t np = 0;
    int rc;
    r.flags = flags;
    r.born_ms = v->born_ms;
    r.reconsume = reconsume;
    r.topic = v->topic; /* the original topic, wherever the copy is stored */
    r.tag = v->tag;
    r.born_host = v->born_host;
    r.body = v->body;
    it = fy_record_keys(v);
    while (r.nkeys < v->nkeys && fy_record_key_next(&it, &keys[r.nkeys])) {
        r.nkeys++;
    }
    r.keys = keys;
    it = fy_record_props(v);
    while (np < 2u * v->nprops && fy_record_prop_next(&it, &name, &value)) {
        if (name.len == strlen(FY_PROP_REAL_TOPIC) &&
            memcmp(name.p, FY_PROP_REAL_TOPIC, name.len) == 0) {
            continue;
        }
        props[np++] = name;
        props[np++] = value;
    }
    if (real) {
        props[np++] = fy_slice_str(FY_PROP_REAL_TOPIC);
        props[np++] = fy_slice_str(real);
    }
    if (np / 2 > UINT16_MAX) {
        fy_free(keys);
        fy_free(props);
        return -FY_ETOOBIG; /* no room for the routing property */
    }
    r.props = props;
    r.nprops = (uint16_t)(np / 2);
    fy_buf_reset(out);
    rc = fy_record_encode(&r, out);
    fy_free(keys);
    fy_free(props);
    return rc;
}

/* A failed delivery in a clustering group: a copy with reconsume + 1 goes to %RETRY%<group>
 * after the back-off of retry_delays (through the time index), or to %DLQ%<group> once
 * max_reconsume is passed (or at once when rejected). Only this group sees it; its offset in
 * the original queue is settled when the copy is durable (until then it stays in flight, so the
 * committed offset cannot pass it). */
static void send_back(fy_core *c, group *g, cursor *cu, uint64_t offset, bool reject)
{
    topic *t = cons_of(cu)->t;
    const tail_slot *ts = tail_get(t, cu->queue_id, offset);
    fy_buf tmp = FY_BUF_INIT, out = FY_BUF_INIT;
    const uint8_t *rec;
    size_t len;
    fy_record_view v;
    fy_wbatch *b;
    back_ctx *x;
    uint32_t reconsume;
    bool dlq;
    topic *target;

    if (offset < cu->committed || offset >= cu->next || *win_at(cu, offset) != W_INFLIGHT) {
        return; /* stale (reset meanwhile) */
    }
    if (ts) {
        rec = ts->rec.data;
        len = ts->rec.len;
    } else if (fy_store_get(c->store, t->id, cu->queue_id, offset, &tmp) == FY_OK) {
        rec = tmp.data;
        len = tmp.len;
    } else {
        rec = NULL;
        len = 0;
    }
    if (!rec || fy_record_decode(rec, len, &v) != FY_OK) {
        /* Gone (retention), or not a record: nothing to retry. */
        *win_at(cu, offset) = W_DONE;
        advance(c, cu);
        fy_buf_free(&tmp);
        return;
    }
    reconsume = v.reconsume + 1;
    dlq = reject || reconsume > group_max_reconsume(c, g);
    b = fy_wbatch_new();
    target = internal_topic(c, dlq ? FY_DLQ_PREFIX : FY_RETRY_PREFIX, g->name, b);
    if (copy_record(&v, (uint16_t)(v.flags | FY_RECORD_F_RETRY), reconsume,
                    dlq ? NULL : target->name, &out) != FY_OK) {
        /* A copy cannot be made (no room for the routing property): deliver it again as it
         * is rather than lose it. The topic creation still rides along. */
        fy_store_submit(c->store, b, NULL, NULL);
        release_one(cu, offset);
        fy_buf_free(&tmp);
        fy_buf_free(&out);
        return;
    }
    x = FY_NEW(back_ctx);
    x->c = c;
    x->group = fy_strdup(g->name);
    x->topic_id = t->id;
    x->queue_id = cu->queue_id;
    x->offset = offset;
    if (dlq) {
        fy_wbatch_append_raw(b, target->id, 0, out.data, out.len, v.nkeys > 0);
        x->dlq_topic_id = target->id;
        c->st_dead++;
        fy_log(WARN, "core",
               "group=%s topic=%s queue=%u offset=%llu reconsume=%u msg=\"message sent to the "
               "dead-letter queue %s\"",
               g->name, t->name, cu->queue_id, (unsigned long long)offset, v.reconsume,
               target->name);
    } else {
        size_t level = reconsume - 1 < c->nretry_delays ? reconsume - 1 : c->nretry_delays - 1;
        uint64_t due = fy_wall_ms() + c->retry_delays[level];
        fy_wbatch_put_timer(b, due, out.data, out.len);
        timer_added(c, due);
        c->timers_pending++;
        c->timers_live++;
        c->st_retries++;
    }
    fy_store_submit(c->store, b, send_back_done, x);
    fy_buf_free(&out);
    fy_buf_free(&tmp);
}

/* A failure in an orderly queue: delivered again in place after orderly_suspend (the queue
 * waits, so order holds); past max_reconsume (or when rejected) it goes to the dead-letter
 * queue and the queue moves on. */
static void orderly_fail(fy_core *c, group *g, cursor *cu, uint64_t offset, bool reject)
{
    cursor_x *x = cur_x(cu);
    if (x->fail_offset != offset) {
        x->fail_offset = offset;
        x->fails = 0;
    }
    x->fails++;
    if (reject || x->fails > group_max_reconsume(c, g)) {
        x->fails = 0;
        send_back(c, g, cu, offset, true);
        return;
    }
    x->paused_until_ms = fy_mono_ms() + c->cfg->orderly_suspend_ms;
    release_one(cu, offset);
}

/* What a failure (nack or ack timeout) does, by group mode and consumer kind. */
static void failed(fy_core *c, fy_sub *s, cursor *cu, uint64_t offset, fy_nack_how how)
{
    if (how == FY_NACK_RELEASE || s->g->mode == FY_SUB_BROADCAST) {
        release_one(cu, offset); /* again now; broadcast members have no retry topic */
    } else if (cons_of(cu)->orderly) {
        orderly_fail(c, s->g, cu, offset, how == FY_NACK_REJECT);
    } else {
        send_back(c, s->g, cu, offset, how == FY_NACK_REJECT);
    }
}

int fy_sub_nack(fy_sub *s, uint64_t delivery_id, fy_nack_how how)
{
    uint32_t slot;
    inflight *f = fl_find(s, delivery_id, &slot);
    if (!f) {
        return -FY_ENOTFOUND;
    }
    failed(s->core, s, f->cur, f->offset, how);
    fl_release(s, slot);
    return FY_OK;
}

static void release_all(fy_sub *s)
{
    for (uint32_t i = 0; i < s->nfl; i++) {
        if (s->fl[i].cur) {
            release_one(s->fl[i].cur, s->fl[i].offset);
            fl_release(s, i);
        }
    }
}

/* Detaches s from its consumer and group; frees the consumer when it has no members left. */
static void consumer_left(fy_core *c, consumer *co)
{
    if (co->nmembers == 0) {
        if (co->persistent) {
            /* Keep the group's position in memory: a member that rejoins at once must not read
             * an offset the store has not written yet. Persist it now. */
            for (uint32_t q = 0; q < co->t->queues; q++) {
                mark_dirty(c, &co->cur[q]);
            }
            persist_offsets(c);
        } else {
            consumer_free(c, co);
        }
    } else {
        for (size_t i = 0; i < co->nmembers; i++) {
            schedule(co->members[i]);
        }
    }
}

static void sub_detach(fy_core *c, fy_sub *s)
{
    s->closed = true;
    for (unsigned i = 0; i < s->ncons; i++) {
        REMOVE(s->cons[i]->members, s->cons[i]->nmembers, s);
        rebalance(s->cons[i]);
    }
    s->g->members--;
    release_all(s);
    if (s->prev_all) {
        s->prev_all->next_all = s->next_all;
    } else {
        c->subs = s->next_all;
    }
    if (s->next_all) {
        s->next_all->prev_all = s->prev_all;
    }
    for (unsigned i = 0; i < s->ncons; i++) {
        consumer_left(c, s->cons[i]);
    }
}

void fy_sub_close(fy_sub *s)
{
    if (!s) {
        return;
    }
    fy_log(DEBUG, "core", "group=%s member=%u msg=\"member left\"", s->g->name, s->member_id);
    sub_detach(s->core, s);
    sub_free(s);
}

/* Closes a subscription from the core's side and tells its owner. */
static void sub_end(fy_core *c, fy_sub *s, int status, const char *reason)
{
    sub_detach(c, s);
    s->ops->closed(s->owner, s, status, reason);
    sub_free(s);
}

/* ---- Ticks: ack timeouts and offset commits ----------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    fy_core *c = arg;
    uint64_t now = fy_mono_ms();
    for (fy_sub *s = c->subs; s; s = s->next_all) {
        for (uint32_t i = 0; i < s->nfl && s->inflight > 0; i++) {
            if (s->fl[i].cur && s->fl[i].deadline_ms <= now) {
                fy_log(DEBUG, "core", "group=%s member=%u offset=%llu msg=\"ack timeout\"",
                       s->g->name, s->member_id, (unsigned long long)s->fl[i].offset);
                /* Like a failure (RocketMQ's consume timeout). */
                failed(c, s, s->fl[i].cur, s->fl[i].offset, FY_NACK_RETRY);
                fl_release(s, i);
            }
        }
    }
    for (fy_sub *s = c->subs; s; s = s->next_all) {
        if (s->cons[0]->orderly) {
            schedule(s); /* a paused queue may be due again */
        }
    }
    persist_offsets(c);
}

/* ---- Retention ---------------------------------------------------------------------------- */

/* The topic with the smallest id >= from, or NULL. */
static topic *topic_from(fy_core *c, uint32_t from)
{
    topic *best = NULL;
    for (size_t i = 0; i < c->topic_ids.cap; i++) {
        topic *t;
        if (!c->topic_ids.used[i]) {
            continue;
        }
        t = (topic *)(uintptr_t)c->topic_ids.vals[i];
        if (t->id >= from && (!best || t->id < best->id)) {
            best = t;
        }
    }
    return best;
}

/* Where retention cuts a queue: below the first message young enough, and below the share of
 * the oldest messages that retention_bytes asks to drop; never more than RETENTION_MAX_TRIM at
 * once. */
static uint64_t retention_cut(fy_core *c, topic *t, uint32_t q, uint64_t now_ms)
{
    uint64_t min, max, cut;
    fy_store_queue_range(c->store, t->id, q, &min, &max);
    cut = min;
    if (c->cfg->retention_ms && now_ms > c->cfg->retention_ms) {
        uint64_t off;
        if (fy_store_offset_by_time(c->store, t->id, q, now_ms - c->cfg->retention_ms, &off) ==
                FY_OK &&
            off > cut) {
            cut = off;
        }
    }
    if (c->retention_excess > 0) {
        uint64_t drop = (uint64_t)((double)(max - min) * c->retention_excess + 0.999);
        if (min + drop > cut) {
            cut = min + drop;
        }
    }
    if (cut > max) {
        cut = max;
    }
    if (cut > min + RETENTION_MAX_TRIM) {
        cut = min + RETENTION_MAX_TRIM;
    }
    return cut;
}

/* One retention step: up to RETENTION_QUEUES queues, continuing where the last step stopped;
 * the deleting itself is done by the store's writer, off the loop. */
static void on_retention(evutil_socket_t fd, short what, void *arg)
{
    fy_core *c = arg;
    uint64_t now = fy_wall_ms();
    size_t budget = RETENTION_QUEUES;
    fy_wbatch *b = NULL;
    topic *t;
    struct timeval next;

    if (c->retention_next_topic == 0) {
        /* A new pass: decide the share to drop for the byte limit once for the whole pass. */
        uint64_t bytes = c->cfg->retention_bytes ? fy_store_messages_bytes(c->store) : 0;
        c->retention_excess = bytes > c->cfg->retention_bytes && c->cfg->retention_bytes
                                  ? (double)(bytes - c->cfg->retention_bytes) / (double)bytes
                                  : 0;
    }
    while (budget > 0 && (t = topic_from(c, c->retention_next_topic)) != NULL) {
        for (uint32_t q = 0; q < t->queues; q++, budget = budget ? budget - 1 : 0) {
            uint64_t min, max, cut = retention_cut(c, t, q, now);
            fy_store_queue_range(c->store, t->id, q, &min, &max);
            if (cut > min) {
                if (!b) {
                    b = fy_wbatch_new();
                }
                fy_wbatch_trim_queue(b, t->id, q, cut);
                c->retention_deleted += cut - min;
                fy_log(DEBUG, "core",
                       "topic=%s queue=%u before=%llu deleted=%llu "
                       "msg=\"retention\"",
                       t->name, q, (unsigned long long)cut, (unsigned long long)(cut - min));
            }
        }
        c->retention_next_topic = t->id + 1;
    }
    if (b) {
        fy_store_submit(c->store, b, NULL, NULL);
    }
    if (!t) {
        c->retention_next_topic = 0; /* pass done: the next one after the interval */
        next = fy_ms_timeval(c->cfg->retention_interval_ms);
    } else {
        next.tv_sec = 0;
        next.tv_usec = 10000; /* more queues in this pass: continue soon */
    }
    event_add(c->retention_ev, &next);
}

/* ---- Delayed messages ---------------------------------------------------------------------- */

/* Parses a decimal property value; false unless it is all digits and fits. */
static bool prop_u64(const fy_record_view *v, const char *name, bool *present, uint64_t *out)
{
    fy_slice s;
    uint64_t n = 0;
    *present = fy_record_prop_get(v, name, &s);
    if (!*present) {
        return true;
    }
    if (s.len == 0 || s.len > 19) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        n = n * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = n;
    return true;
}

/* When a message is to be delivered: now, unless it carries TIMER_DELIVER_MS (ms since the
 * epoch), TIMER_DELAY_MS (ms from now) or DELAY (a level of delay_levels, 1-based; 0 = none).
 * -FY_EINVAL for a malformed value, a level out of range, or a time beyond max_delay. */
static int deliver_at(fy_core *c, const fy_record_view *v, uint64_t now, uint64_t *due)
{
    bool present;
    uint64_t n = 0;
    *due = now;
    if (v->nprops == 0) {
        return FY_OK;
    }
    if (!prop_u64(v, FY_PROP_DELIVER_MS, &present, &n)) {
        return -FY_EINVAL;
    }
    if (present) {
        *due = n;
    } else {
        if (!prop_u64(v, FY_PROP_DELAY_MS, &present, &n)) {
            return -FY_EINVAL;
        }
        if (present) {
            *due = now + n;
        } else {
            if (!prop_u64(v, FY_PROP_DELAY_LEVEL, &present, &n)) {
                return -FY_EINVAL;
            }
            if (present && n > c->ndelay_levels) {
                return -FY_EINVAL;
            }
            if (present && n > 0) {
                *due = now + c->delay_levels[n - 1];
            }
        }
    }
    if (*due > now + c->cfg->max_delay_ms) {
        return -FY_EINVAL;
    }
    return FY_OK;
}

/* Parses delay_levels ("1s 5s 10s ... 2h"). */
static int parse_durations(const char *key, const char *text, uint64_t *out, size_t *n, char *err,
                           size_t errlen)
{
    const char *p = text;
    *n = 0;
    while (*p) {
        uint64_t num = 0, unit;
        const char *start;
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        if (!*p) {
            break;
        }
        start = p;
        while (*p >= '0' && *p <= '9' && num < UINT32_MAX) {
            num = num * 10 + (uint64_t)(*p++ - '0');
        }
        if (p == start) {
            goto bad;
        }
        if (p[0] == 'm' && p[1] == 's') {
            unit = 1, p += 2;
        } else if (*p == 's') {
            unit = 1000, p++;
        } else if (*p == 'm') {
            unit = 60000, p++;
        } else if (*p == 'h') {
            unit = 3600000, p++;
        } else if (*p == 'd') {
            unit = 86400000, p++;
        } else {
            goto bad;
        }
        if ((*p && *p != ' ' && *p != '\t' && *p != ',') || *n == MAX_LEVELS) {
            goto bad;
        }
        out[(*n)++] = num * unit;
    }
    if (*n > 0) {
        return FY_OK;
    }
bad:
    snprintf(err, errlen,
             "%s: expected up to 32 durations such as \"1s 5s 10s 30s 1m\", got \"%s\"", key, text);
    return -FY_EINVAL;
}

typedef struct fire_ctx {
    fy_core *c;
    fy_wbatch *b;
    uint64_t last_when;
    uint32_t *topic_ids;
    size_t n, cap;
} fire_ctx;

/* One due message: append it to its topic and remove it from the time index, in one batch. */
static int fire_one(void *arg, uint64_t when, uint64_t seq, const uint8_t *rec, size_t len)
{
    fire_ctx *x = arg;
    fy_core *c = x->c;
    fy_record_view v;
    topic *t = NULL;
    int rc = FY_OK;
    fy_slice real;
    uint32_t slot;
    x->last_when = when;
    fy_wbatch_del_timer(x->b, when, seq);
    if (c->timers_live > 0) {
        c->timers_live--;
    }
    if (fy_record_decode(rec, len, &v) == FY_OK) {
        if (fy_record_prop_get(&v, FY_PROP_REAL_TOPIC, &real)) {
            /* A retry: it goes to the group's retry topic, not to the topic it names. */
            t = fy_strmap_get(&c->topics, (const char *)real.p, real.len);
            rc = t ? FY_OK : -FY_ENOTFOUND;
        } else {
            t = topic_get_or_create(c, (const char *)v.topic.p, v.topic.len, x->b, &rc);
        }
    }
    if (!t) {
        fy_log(ERROR, "core",
               "deliver_ms=%llu seq=%llu err=%s msg=\"dropped a delayed message: "
               "its topic cannot be created\"",
               (unsigned long long)when, (unsigned long long)seq,
               fy_errname(rc ? rc : -FY_ECORRUPT));
        return 0;
    }
    /* The copy consumers get: flagged as delayed (unless it is a retry), without the internal
     * REAL_TOPIC property. */
    if (copy_record(
            &v, (uint16_t)(v.flags & FY_RECORD_F_RETRY ? v.flags : v.flags | FY_RECORD_F_DELAYED),
            v.reconsume, NULL, &c->scratch) != FY_OK) {
        return 0; /* cannot happen: it decoded */
    }
    slot = (uint32_t)fy_wbatch_appends(x->b);
    fy_wbatch_append_raw(x->b, t->id, t->rr++ % t->queues, c->scratch.data, c->scratch.len,
                         v.nkeys > 0);
    PUSH(x->topic_ids, x->n, x->cap, t->id);
    if (!(v.flags & FY_RECORD_F_RETRY)) {
        route(c, x->b, slot, t->id, &v, &x->topic_ids, &x->n, &x->cap);
    }
    return 0;
}

static void fire_done(void *arg, int status, fy_wbatch *b)
{
    fire_ctx *x = arg;
    fy_core *c = x->c;
    if (status == FY_OK) {
        if (x->last_when > c->timer_fired_upto) {
            c->timer_fired_upto = x->last_when;
        }
        appended(c, b, x->topic_ids, x->n, NULL, 0);
    } else {
        fy_log(ERROR, "core", "err=%s msg=\"moving due delayed messages failed; retrying\"",
               fy_errname(status));
    }
    c->timer_busy = false;
    fy_free(x->topic_ids);
    fy_free(x);
    arm_timer(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    fy_core *c = arg;
    fire_ctx *x;
    int rc;
    if (c->timer_busy || !fy_store_healthy(c->store)) {
        return;
    }
    x = FY_NEW(fire_ctx);
    x->c = c;
    x->b = fy_wbatch_new();
    rc = fy_store_scan_timers(c->store, timer_floor(c), fy_wall_ms(), 1024, fire_one, x);
    if (c->timers_pending == 0) {
        /* Every timer put so far was written before this scan: it saw them. */
        c->timer_new_min = UINT64_MAX;
    }
    if (rc < 0 || fy_wbatch_bytes(x->b) == 0) {
        if (rc < 0) {
            fy_log(ERROR, "core", "err=%s msg=\"reading due delayed messages failed\"",
                   fy_errname(rc));
        }
        fy_wbatch_free(x->b);
        fy_free(x->topic_ids);
        fy_free(x);
        arm_timer(c);
        return;
    }
    c->timer_busy = true;
    fy_store_submit(c->store, x->b, fire_done, x);
}

/* Schedules on_timer for the earliest delayed message (at once if it is already due). */
static void arm_timer(fy_core *c)
{
    uint64_t next, now;
    struct timeval tv = {0, 0};
    if (c->timer_busy || c->closing || !c->timer_ev ||
        fy_store_next_timer(c->store, timer_floor(c), &next) != FY_OK) {
        return;
    }
    now = fy_wall_ms();
    if (next > now) {
        uint64_t d = next - now;
        tv = fy_ms_timeval(d);
    }
    event_add(c->timer_ev, &tv);
}

/* ---- Produce ------------------------------------------------------------------------------- */

/* ---- Light queues -------------------------------------------------------------------------- */

/* One message being routed: where its light queue entries go. */
typedef struct route_ctx {
    fy_core *c;
    fy_wbatch *b;
    uint32_t slot; /* the message's result slot in b */
    uint32_t topic_id;
    uint64_t born_ms;
    uint32_t **ids; /* topic id per result slot */
    size_t *nids, *capids;
} route_ctx;

/* Appends an entry for the message to light queue `name` (created in the batch if new). */
static void route_emit(void *arg, const char *name)
{
    route_ctx *x = arg;
    fy_core *c = x->c;
    fy_record r = {0};
    uint8_t body[16] = {0};
    topic *lq;
    if (strlen(name) + strlen(FY_LQ_PREFIX) > FY_INTERNAL_NAME_MAX) {
        return;
    }
    lq = internal_topic(c, FY_LQ_PREFIX, name, x->b);
    fy_be32_put(body, x->topic_id); /* then queue id and offset, filled in by the store */
    r.topic = fy_slice_str(lq->name);
    r.born_ms = x->born_ms;
    r.body = (fy_slice){body, sizeof(body)};
    fy_buf_reset(&c->lq_rec);
    if (fy_record_encode(&r, &c->lq_rec) != FY_OK ||
        fy_wbatch_append_ref(x->b, lq->id, 0, c->lq_rec.data, c->lq_rec.len, x->slot) < 0) {
        return;
    }
    PUSH(*x->ids, *x->nids, *x->capids, lq->id);
}

/* Adds, for the message appended in result slot `slot` of b (topic_id, view v), an entry to
 * each light queue the router names. Each entry's topic id is pushed to *ids (one per slot). */
static void route(fy_core *c, fy_wbatch *b, uint32_t slot, uint32_t topic_id,
                  const fy_record_view *v, uint32_t **ids, size_t *nids, size_t *capids)
{
    route_ctx x = {c, b, slot, topic_id, v->born_ms, ids, nids, capids};
    if (c->router) {
        c->router(c->router_arg, v, route_emit, &x);
    }
}

void fy_core_set_router(fy_core *c, fy_router_fn fn, void *arg)
{
    c->router = fn;
    c->router_arg = arg;
}

static int topic_delete(fy_core *c, const char *name, bool restore, fy_core_done_cb done,
                        void *arg);

int fy_core_light_delete(fy_core *c, const char *name, fy_core_done_cb done, void *arg)
{
    char full[FY_INTERNAL_NAME_MAX + 1];
    if (strlen(name) + strlen(FY_LQ_PREFIX) > FY_INTERNAL_NAME_MAX) {
        return -FY_ENOTFOUND;
    }
    snprintf(full, sizeof(full), "%s%s", FY_LQ_PREFIX, name);
    return topic_delete(c, full, false, done, arg);
}

typedef struct produce_ctx {
    fy_core *c;
    bool timers; /* the batch puts timers (counted in timers_pending) */
    fy_produce_cb done;
    void *arg;
    size_t n;            /* messages (the first n result slots) */
    size_t nslots;       /* with the light queue entries after them */
    uint32_t *topic_ids; /* per result slot */
} produce_ctx;

/* After a batch of appends is stored: fills res (if not NULL) and hands the records to live
 * delivery. Timer slots (queue UINT32_MAX: held for a deliver-at time) get a scheduled id. */
static void appended(fy_core *c, fy_wbatch *b, const uint32_t *topic_ids, size_t n,
                     fy_produce_result *res, size_t nres)
{
    bool timers = false;
    for (size_t i = 0; i < n; i++) {
        fy_produce_result r;
        const uint8_t *rec;
        size_t len;
        topic *t = topic_by_id(c, topic_ids[i]);
        r.topic_id = topic_ids[i];
        fy_wbatch_result(b, i, &r.queue_id, &r.offset, &r.store_ms);
        if (r.queue_id == UINT32_MAX) {
            timers = true;
            fy_msgid_make(r.msgid, (uint16_t)c->cfg->broker_id, r.topic_id, FY_MSGID_SCHEDULED,
                          r.offset);
        } else {
            fy_msgid_make(r.msgid, (uint16_t)c->cfg->broker_id, r.topic_id, (uint16_t)r.queue_id,
                          r.offset);
            if (t) {
                fy_wbatch_record(b, i, &rec, &len);
                tail_put(t, r.queue_id, r.offset, rec, len);
                wake_queue(t, r.queue_id);
            }
        }
        if (res && i < nres) {
            res[i] = r;
        }
    }
    if (timers) {
        arm_timer(c);
    }
}

static void produce_done(void *arg, int status, fy_wbatch *b)
{
    produce_ctx *x = arg;
    fy_core *c = x->c;
    fy_produce_result *res = NULL;
    if (x->timers) {
        c->timers_pending--;
    }
    if (status == FY_OK) {
        res = fy_malloc(x->n * sizeof(*res));
        appended(c, b, x->topic_ids, x->nslots, res, x->n);
    }
    if (x->done) {
        x->done(x->arg, status, res, status == FY_OK ? x->n : 0);
    }
    fy_free(res);
    fy_free(x->topic_ids);
    fy_free(x);
}

int core_produce_validate(fy_core *c, const fy_produce_msg *msgs, size_t n, uint64_t now,
                          size_t *bad_index)
{
    int rc = FY_OK;
    size_t i;
    fy_slice real;

    if (n == 0) {
        return -FY_EINVAL;
    }
    if (!fy_store_healthy(c->store)) {
        return -FY_EUNHEALTHY;
    }
    /* Validate everything first, so that nothing (not even an automatic topic) is created for
     * a request that is refused. Each record is decoded once: the views and due times are kept
     * for the second pass. */
    if (n > c->capviews) {
        c->capviews = n;
        c->views = fy_realloc(c->views, n * sizeof(*c->views));
        c->dues = fy_realloc(c->dues, n * sizeof(*c->dues));
    }
    for (i = 0; i < n; i++) {
        fy_record_view *v = &c->views[i];
        rc = fy_record_decode(msgs[i].record.p, msgs[i].record.len, v);
        if (rc != FY_OK) {
            rc = -FY_ECORRUPT;
            goto fail;
        }
        if (v->body.len > c->cfg->max_message_size) {
            rc = -FY_ETOOBIG;
            goto fail;
        }
        if (deliver_at(c, v, now, &c->dues[i]) != FY_OK) {
            rc = -FY_EINVAL;
            goto fail;
        }
        if (v->nprops > 0 && fy_record_prop_get(v, FY_PROP_REAL_TOPIC, &real)) {
            rc = -FY_EINVAL; /* the broker's own routing property: not for producers */
            goto fail;
        }
        if (!fy_strmap_get(&c->topics, (const char *)v->topic.p, v->topic.len)) {
            if (!fy_core_name_valid((const char *)v->topic.p, v->topic.len)) {
                rc = -FY_EBADNAME;
                goto fail;
            }
            if (!c->cfg->auto_create_topics) {
                rc = -FY_ENOTFOUND;
                goto fail;
            }
        }
    }
    return FY_OK;
fail:
    if (bad_index) {
        *bad_index = i;
    }
    return rc;
}

int core_produce_batch(fy_core *c, const fy_produce_msg *msgs, size_t n, fy_wbatch *b,
                       fy_produce_cb done, void *arg, size_t *bad_index)
{
    produce_ctx *x;
    int rc;
    size_t i;
    uint32_t slot0;
    uint64_t now = fy_wall_ms();

    /* One clock reading for both passes: a due time computed as "now" must not look later
     * than the time it is compared with (the message would go to the time index). */
    rc = core_produce_validate(c, msgs, n, now, bad_index);
    if (rc != FY_OK) {
        return rc;
    }
    if (!b) {
        b = fy_wbatch_new();
    }
    x = FY_NEW(produce_ctx);
    x->c = c;
    x->done = done;
    x->arg = arg;
    x->n = n;
    x->topic_ids = fy_malloc(n * sizeof(*x->topic_ids));
    slot0 = (uint32_t)fy_wbatch_appends(b);
    for (i = 0; i < n; i++) {
        const fy_record_view *v = &c->views[i];
        uint64_t due = c->dues[i];
        topic *t;
        uint32_t q;
        t = topic_get_or_create(c, (const char *)v->topic.p, v->topic.len, b, &rc);
        x->topic_ids[i] = t->id;
        if ((unsigned)msgs[i].proto < FY_PROTO_COUNT) {
            t->ctr.msgs_in[msgs[i].proto]++;
            t->ctr.bytes_in[msgs[i].proto] += msgs[i].record.len;
        }
        if (due > now) {
            /* Held in the store's time index until due; the topic is named in the record. */
            fy_wbatch_put_timer(b, due, msgs[i].record.p, msgs[i].record.len);
            timer_added(c, due);
            c->timers_live++;
            if (!x->timers) {
                x->timers = true;
                c->timers_pending++;
            }
            continue;
        }
        if (msgs[i].sharding_key.len > 0) {
            q = (uint32_t)(fy_hash64(msgs[i].sharding_key.p, msgs[i].sharding_key.len) % t->queues);
        } else {
            q = t->rr++ % t->queues;
        }
        fy_wbatch_append_raw(b, t->id, q, msgs[i].record.p, msgs[i].record.len, v->nkeys > 0);
    }
    x->nslots = n;
    if (c->router) {
        size_t cap = n;
        for (i = 0; i < n; i++) {
            if (c->dues[i] <= now) {
                route(c, b, slot0 + (uint32_t)i, x->topic_ids[i], &c->views[i], &x->topic_ids,
                      &x->nslots, &cap);
            }
        }
    }
    fy_store_submit(c->store, b, produce_done, x);
    return FY_OK;
}

static void kv_ops_add(fy_wbatch *b, const char *ns, const fy_kv_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i].del) {
            fy_wbatch_del_adapter(b, ns, ops[i].key.p, ops[i].key.len);
        } else {
            fy_wbatch_put_adapter(b, ns, ops[i].key.p, ops[i].key.len, ops[i].val.p,
                                  ops[i].val.len);
        }
    }
}

int fy_core_produce_kv(fy_core *c, const fy_produce_msg *msgs, size_t n, const char *ns,
                       const fy_kv_op *ops, size_t nops, fy_produce_cb done, void *arg,
                       size_t *bad_index)
{
    fy_wbatch *b = NULL;
    int rc;
    if (nops > 0) {
        b = fy_wbatch_new();
        kv_ops_add(b, ns, ops, nops);
    }
    rc = core_produce_batch(c, msgs, n, b, done, arg, bad_index);
    if (rc != FY_OK) {
        fy_wbatch_free(b);
    }
    return rc;
}

int fy_core_produce(fy_core *c, const fy_produce_msg *msgs, size_t n, fy_produce_cb done, void *arg,
                    size_t *bad_index)
{
    return fy_core_produce_kv(c, msgs, n, NULL, NULL, 0, done, arg, bad_index);
}

int fy_core_message_get(fy_core *c, const uint8_t msgid[FY_MSGID_LEN], fy_buf *out)
{
    uint16_t broker_id, queue_id;
    uint32_t topic_id;
    uint64_t offset;
    fy_msgid_parse(msgid, &broker_id, &topic_id, &queue_id, &offset);
    if (broker_id != (uint16_t)c->cfg->broker_id) {
        return -FY_ENOTFOUND;
    }
    return fy_store_get(c->store, topic_id, queue_id, offset, out);
}

typedef struct find_ctx {
    fy_core *c;
    uint32_t topic_id;
    void (*fn)(void *arg, const uint8_t msgid[FY_MSGID_LEN], const uint8_t *rec, size_t len);
    void *arg;
} find_ctx;

static int find_one(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms)
{
    find_ctx *x = arg;
    fy_buf *rec = &x->c->scratch;
    uint8_t id[FY_MSGID_LEN];
    /* The index may outlive its message (retention): skip what is gone. */
    if (fy_store_get(x->c->store, x->topic_id, queue_id, offset, rec) == FY_OK) {
        fy_msgid_make(id, (uint16_t)x->c->cfg->broker_id, x->topic_id, (uint16_t)queue_id, offset);
        x->fn(x->arg, id, rec->data, rec->len);
    }
    return 0;
}

int fy_core_find_by_key(fy_core *c, const char *topic_name, const char *key, uint64_t from_ms,
                        uint64_t to_ms, size_t limit,
                        void (*fn)(void *arg, const uint8_t msgid[FY_MSGID_LEN], const uint8_t *rec,
                                   size_t len),
                        void *arg)
{
    topic *t = fy_strmap_get(&c->topics, topic_name, strlen(topic_name));
    find_ctx x = {c, 0, fn, arg};
    int rc;
    if (!t) {
        return -FY_ENOTFOUND;
    }
    x.topic_id = t->id;
    rc = fy_store_query_key(c->store, t->id, key, from_ms, to_ms, limit, find_one, &x);
    return rc < 0 ? rc : FY_OK;
}

/* ---- Topics -------------------------------------------------------------------------------- */

typedef struct done_ctx {
    fy_core_done_cb done;
    void *arg;
} done_ctx;

static void batch_done(void *arg, int status, fy_wbatch *b)
{
    done_ctx *x = arg;
    if (x->done) {
        x->done(x->arg, status);
    }
    fy_free(x);
}

static void submit_with_done(fy_core *c, fy_wbatch *b, fy_core_done_cb done, void *arg)
{
    done_ctx *x = FY_NEW(done_ctx);
    x->done = done;
    x->arg = arg;
    fy_store_submit(c->store, b, batch_done, x);
}

/* A topic made by fy_core_topic_create, its record on its way to the store. */
typedef struct topic_make_ctx {
    fy_core *c;
    topic *t;
    fy_core_done_cb done;
    void *arg;
} topic_make_ctx;

/* What topic_restore did with a topic that is on disk but out of the maps. */
enum { TOPIC_RESTORED, TOPIC_WAITS, TOPIC_DROPPED };

/* A topic whose record is on disk though it left the maps (its deletion's write failed): back as
 * it was if its name is free. A topic made under the name meanwhile stays: while that one's
 * record is on its way, this one waits behind it (shadow) and comes back should that write fail
 * too; else this one goes, and the caller frees it (the newer record replaces its on disk, and
 * queues of no topic are erased at the next start). */
static int topic_restore(fy_core *c, topic *t)
{
    topic *h = fy_strmap_get(&c->topics, t->name, strlen(t->name));
    if (!h) {
        fy_strmap_put(&c->topics, t->name, t);
        *fy_u64map_upsert(&c->topic_ids, t->id, 0) = (uint64_t)(uintptr_t)t;
        return TOPIC_RESTORED;
    }
    if (h->unstored && !h->shadow) {
        h->shadow = t;
        return TOPIC_WAITS;
    }
    return TOPIC_DROPPED;
}

/* Takes out of memory, and frees, a topic whose record never reached the disk: its
 * subscriptions end (their owners get sub_closed with status) and its consumers go without
 * writing offsets. */
static void topic_unmake(fy_core *c, topic *t, int status)
{
    /* Out of the maps first: an owner told of its subscription's end may subscribe again, and
     * must not find this topic. */
    fy_strmap_del(&c->topics, t->name);
    fy_u64map_del(&c->topic_ids, t->id);
    while (t->ncons > 0) {
        consumer *co = t->cons[t->ncons - 1];
        bool kept = co->mode == FY_SUB_CLUSTERING;
        size_t n = co->nmembers;
        while (n-- > 0) {
            sub_end(c, co->members[n], status, "topic not stored");
        }
        if (kept) {
            co->persistent = false;
            consumer_free(c, co);
        }
    }
    resets_drop(c, NULL, t->id);
    topic_free(t);
}

static void topic_create_done(void *arg, int status, fy_wbatch *b)
{
    topic_make_ctx *x = arg;
    fy_core *c = x->c;
    topic *t = x->t, *old = t->shadow;
    t->shadow = NULL;
    if (status == FY_OK) {
        t->unstored = false;
        fy_log(INFO, "core", "topic=%s id=%u queues=%u msg=\"topic created\"", t->name, t->id,
               t->queues);
        if (old) {
            /* Its record replaced the older topic's on disk (whose queues, of no topic now, are
             * erased at the next start). */
            topic_free(old);
        }
    } else {
        fy_log(ERROR, "core",
               "topic=%s id=%u err=%s msg=\"topic not created: the store refused the write\"",
               t->name, t->id, fy_errname(status));
        /* As a restart would find it: not there. Out of the maps already, it is being deleted
         * (a write behind this one, failing too): that deletion sees it unstored and does not
         * put it back. */
        if (topic_by_id(c, t->id) == t) {
            topic_unmake(c, t, status);
        }
        if (old) {
            int r = topic_restore(c, old);
            if (r == TOPIC_RESTORED) {
                fy_log(WARN, "core", "topic=%s id=%u msg=\"topic back: the disk still has it\"",
                       old->name, old->id);
            } else if (r == TOPIC_DROPPED) {
                topic_free(old);
            }
        }
    }
    if (x->done) {
        x->done(x->arg, status);
    }
    fy_free(x);
}

int fy_core_topic_create(fy_core *c, const char *name, uint32_t queues, fy_core_done_cb done,
                         void *arg)
{
    topic_make_ctx *x;
    fy_wbatch *b;
    topic *t;
    if (!fy_core_name_valid(name, strlen(name))) {
        return -FY_EBADNAME;
    }
    if (queues == 0) {
        queues = (uint32_t)c->cfg->default_queues;
    }
    if (queues > MAX_QUEUES) {
        return -FY_EINVAL;
    }
    if (fy_strmap_get(&c->topics, name, strlen(name))) {
        return -FY_EEXIST;
    }
    if (!fy_store_healthy(c->store)) {
        return -FY_EUNHEALTHY;
    }
    /* Usable at once (produce, subscribe); should its write fail, it is taken out again
     * (topic_create_done) and the caller told. */
    t = topic_add(c, name, c->next_topic_id, queues);
    t->unstored = true;
    b = fy_wbatch_new();
    topic_persist(c, t, b);
    topic_created(c, t);
    x = FY_NEW(topic_make_ctx);
    x->c = c;
    x->t = t;
    x->done = done;
    x->arg = arg;
    fy_store_submit(c->store, b, topic_create_done, x);
    return FY_OK;
}

typedef struct name_list {
    const char **names;
    size_t n, cap;
} name_list;

static void collect_name(void *arg, const char *key, void *val)
{
    name_list *l = arg;
    PUSH(l->names, l->n, l->cap, key);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A topic whose deletion is on its way to the store: out of the core's maps (nothing reaches it
 * by name or id), kept until the write is done. restore: put it back should the write fail (a
 * topic deleted by name); a light queue, whose owner has gone, is not. */
typedef struct topic_del_ctx {
    fy_core *c;
    topic *t;
    bool restore;
    fy_core_done_cb done;
    void *arg;
} topic_del_ctx;

static void topic_delete_done(void *arg, int status, fy_wbatch *b)
{
    topic_del_ctx *x = arg;
    fy_core *c = x->c;
    topic *t = x->t;
    if (status == FY_OK) {
        fy_log(INFO, "core", "topic=%s id=%u msg=\"topic deleted\"", t->name, t->id);
        topic_free(t);
    } else if (!x->restore) {
        /* A light queue stays gone: its owner's successor under the name (an MQTT client back
         * with a clean start) gets a new, empty one, never the entries of the one before. */
        fy_log(ERROR, "core",
               "topic=%s id=%u err=%s msg=\"light queue forgotten, its deletion not stored: the "
               "store refused the write\"",
               t->name, t->id, fy_errname(status));
        topic_free(t);
    } else if (t->unstored) {
        /* Its creation's write failed before this one: nothing of it is on disk to put back. */
        fy_log(ERROR, "core",
               "topic=%s id=%u err=%s msg=\"topic not deleted: the store refused the write; it "
               "was never stored either\"",
               t->name, t->id, fy_errname(status));
        topic_free(t);
    } else {
        /* None of the write reached the disk: the topic's record and messages are all there.
         * Put it back as it was, so that what the broker shows is what a restart finds. Its
         * consumers are gone, the offsets they stored are not: a later deletion walks every
         * group's. */
        static const char *const why[] = {"",
                                          "; the name is taken again, by a topic not stored yet",
                                          "; the name is taken again"};
        int r;
        t->offsets = true;
        r = topic_restore(c, t);
        fy_log(ERROR, "core",
               "topic=%s id=%u err=%s msg=\"topic not deleted: the store refused the write%s\"",
               t->name, t->id, fy_errname(status), why[r]);
        if (r == TOPIC_DROPPED) {
            topic_free(t);
        }
    }
    if (x->done) {
        x->done(x->arg, status);
    }
    fy_free(x);
}

/* fy_core_topic_delete (restore) and fy_core_light_delete (not): a light queue is deleted
 * because its owner has gone, and goes from the core whatever the store does with the write. */
static int topic_delete(fy_core *c, const char *name, bool restore, fy_core_done_cb done, void *arg)
{
    topic *t = fy_strmap_get(&c->topics, name, strlen(name));
    topic_del_ctx *x;
    fy_wbatch *b;
    if (!t) {
        return -FY_ENOTFOUND;
    }
    if (restore && !fy_store_healthy(c->store)) {
        return -FY_EUNHEALTHY;
    }
    /* The configuration goes in the same write as the erasing's beginning: a restart finds
     * either the whole topic or none of it (the store finishes an erasing it finds begun).
     * Appends and offsets still on their way (those the members' leaving persists below
     * included) are written before, the erasing starting a commit of its own, and erased with
     * the rest. The groups that stored offsets of the topic in this run are those of its
     * clustering consumers, kept until now: theirs are deleted by key. A topic of an earlier
     * run, or reset by time, may have more: the store walks every group's offsets. */
    b = fy_wbatch_new();
    fy_wbatch_del_topic(b, t->name);
    for (size_t i = 0; i < t->ncons && !t->offsets; i++) {
        for (uint32_t q = 0; q < t->queues && t->cons[i]->persistent; q++) {
            fy_wbatch_del_offset(b, t->cons[i]->g->name, t->id, q);
        }
    }
    fy_wbatch_erase_topic(b, t->id, t->offsets);
    /* End every subscription of the topic and drop its consumers. A broadcast consumer goes
     * with its last member (so it must not be looked at after that); a clustering one stays
     * until freed here. */
    while (t->ncons > 0) {
        consumer *co = t->cons[t->ncons - 1];
        bool kept = co->mode == FY_SUB_CLUSTERING;
        size_t n = co->nmembers;
        while (n-- > 0) {
            sub_end(c, co->members[n], -FY_ENOTFOUND, "topic deleted");
        }
        if (kept) {
            consumer_free(c, co);
        }
    }
    resets_drop(c, NULL, t->id);
    /* Gone from the maps at once (no produce, subscription or second deletion reaches it, and
     * the name may be taken again), freed once the write is done; should the write fail, the
     * topic is put back (topic_delete_done) and the caller told. */
    fy_strmap_del(&c->topics, t->name);
    fy_u64map_del(&c->topic_ids, t->id);
    x = FY_NEW(topic_del_ctx);
    x->c = c;
    x->t = t;
    x->restore = restore;
    x->done = done;
    x->arg = arg;
    fy_store_submit(c->store, b, topic_delete_done, x);
    return FY_OK;
}

int fy_core_topic_delete(fy_core *c, const char *name, fy_core_done_cb done, void *arg)
{
    return topic_delete(c, name, true, done, arg);
}

const char *fy_proto_name(fy_proto p)
{
    static const char *const names[FY_PROTO_COUNT] = {"internal", "native", "mqtt", "amqp"};
    return (unsigned)p < FY_PROTO_COUNT ? names[p] : "unknown";
}

int fy_core_topic_get(fy_core *c, const char *name, fy_topic_info *out)
{
    topic *t = fy_strmap_get(&c->topics, name, strlen(name));
    if (!t) {
        return -FY_ENOTFOUND;
    }
    out->name = t->name;
    out->topic_id = t->id;
    out->queues = t->queues;
    out->counters = &t->ctr;
    return FY_OK;
}

void fy_core_topic_each(fy_core *c, void (*fn)(void *arg, const fy_topic_info *t), void *arg)
{
    name_list l = {0};
    fy_strmap_each(&c->topics, collect_name, &l);
    if (l.n > 1) {
        qsort(l.names, l.n, sizeof(*l.names), cmp_str);
    }
    for (size_t i = 0; i < l.n; i++) {
        fy_topic_info info;
        fy_core_topic_get(c, l.names[i], &info);
        fn(arg, &info);
    }
    fy_free(l.names);
}

void fy_core_queue_range(fy_core *c, uint32_t topic_id, uint32_t queue_id, uint64_t *min,
                         uint64_t *max)
{
    fy_store_queue_range(c->store, topic_id, queue_id, min, max);
}

/* ---- Groups -------------------------------------------------------------------------------- */

void fy_core_group_each(fy_core *c,
                        void (*fn)(void *arg, const char *name, fy_sub_mode mode, uint32_t members),
                        void *arg)
{
    name_list l = {0};
    fy_strmap_each(&c->groups, collect_name, &l);
    if (l.n > 1) {
        qsort(l.names, l.n, sizeof(*l.names), cmp_str);
    }
    for (size_t i = 0; i < l.n; i++) {
        group *g = fy_strmap_get(&c->groups, l.names[i], strlen(l.names[i]));
        fn(arg, g->name, g->mode, g->members);
    }
    fy_free(l.names);
}

typedef struct describe_ctx {
    fy_core *c;
    group *g;
    void (*queue)(void *arg, const fy_group_queue_info *q);
    void *arg;
} describe_ctx;

static consumer *online_consumer(group *g, uint32_t topic_id)
{
    for (size_t i = 0; i < g->ncons; i++) {
        if (g->cons[i]->t->id == topic_id && g->cons[i]->persistent) {
            return g->cons[i];
        }
    }
    return NULL;
}

/* Offline queues of a group, from its stored offsets. */
static int describe_stored(void *arg, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    describe_ctx *x = arg;
    topic *t = topic_by_id(x->c, topic_id);
    fy_group_queue_info q;
    uint64_t min, max;
    if (!t || online_consumer(x->g, topic_id) || reset_find(x->c, x->g->name, topic_id)) {
        return 0; /* deleted topic, or reported from memory */
    }
    fy_store_queue_range(x->c->store, topic_id, queue_id, &min, &max);
    q.topic = t->name;
    q.queue_id = queue_id;
    q.committed = offset;
    q.max_offset = max;
    q.owner = 0;
    x->queue(x->arg, &q);
    return 0;
}

int fy_core_group_describe(fy_core *c, const char *name, fy_sub_mode *mode,
                           void (*member)(void *arg, const fy_group_member_info *m),
                           void (*queue)(void *arg, const fy_group_queue_info *q), void *arg)
{
    group *g = fy_strmap_get(&c->groups, name, strlen(name));
    describe_ctx x = {c, g, queue, arg};
    if (!g) {
        return -FY_ENOTFOUND;
    }
    *mode = g->mode;
    for (size_t i = 0; i < g->ncons; i++) {
        consumer *co = g->cons[i];
        if (co->retry) {
            continue; /* its members are those of the group's topics */
        }
        for (size_t k = 0; k < co->nmembers; k++) {
            fy_sub *s = co->members[k];
            fy_group_member_info m = {s->member_id,    s->client_id, co->t->name,
                                      co->filter_text, s->credit,    s->inflight};
            member(arg, &m);
        }
    }
    for (size_t i = 0; i < g->ncons; i++) {
        consumer *co = g->cons[i];
        for (uint32_t q = 0; q < co->t->queues; q++) {
            cursor *cu = &co->cur[q];
            fy_group_queue_info qi;
            uint64_t min, max;
            fy_store_queue_range(c->store, co->t->id, q, &min, &max);
            qi.topic = co->t->name;
            qi.queue_id = q;
            qi.committed = cu->committed;
            qi.max_offset = max;
            qi.owner = cu->owner ? cu->owner->member_id : 0;
            queue(arg, &qi);
        }
    }
    for (size_t i = 0; i < c->nresets; i++) {
        const pending_reset *r = &c->resets[i];
        topic *t = topic_by_id(c, r->topic_id);
        if (!t || strcmp(r->group, g->name) != 0 || online_consumer(g, r->topic_id)) {
            continue;
        }
        for (uint32_t q = 0; q < r->queues && q < t->queues; q++) {
            fy_group_queue_info qi;
            uint64_t min, max;
            fy_store_queue_range(c->store, t->id, q, &min, &max);
            qi.topic = t->name;
            qi.queue_id = q;
            qi.committed = r->offsets[q];
            qi.max_offset = max;
            qi.owner = 0;
            queue(arg, &qi);
        }
    }
    if (g->mode == FY_SUB_CLUSTERING && !fy_strmap_get(&c->deleting, g->name, strlen(g->name))) {
        fy_store_scan_offsets(c->store, g->name, describe_stored, &x);
    }
    return FY_OK;
}

/* Drops every in-flight entry of a cursor (after a reset). */
static void forget_inflight(consumer *co, cursor *cu)
{
    for (size_t k = 0; k < co->nmembers; k++) {
        fy_sub *s = co->members[k];
        for (uint32_t i = 0; i < s->nfl; i++) {
            if (s->fl[i].cur == cu) {
                fl_release(s, i);
            }
        }
    }
}

typedef struct reset_ctx {
    fy_core *c;
    uint64_t gen; /* 0: nothing pending to forget */
    fy_core_done_cb done;
    void *arg;
} reset_ctx;

static void reset_done(void *arg, int status, fy_wbatch *b)
{
    reset_ctx *x = arg;
    fy_core *c = x->c;
    /* Durable (or failed: then the store refuses every write, and what a consumer created
     * meanwhile holds in memory is as good as anything): the store answers from now on. */
    for (size_t i = 0; x->gen && i < c->nresets; i++) {
        if (c->resets[i].gen == x->gen) {
            reset_remove_at(c, i);
            break;
        }
    }
    if (x->done) {
        x->done(x->arg, status);
    }
    fy_free(x);
}

int fy_core_group_reset(fy_core *c, const char *name, const char *topic_name, uint64_t ts_ms,
                        void (*fn)(void *arg, uint32_t queue_id, uint64_t offset),
                        fy_core_done_cb done, void *arg)
{
    group *g = fy_strmap_get(&c->groups, name, strlen(name));
    topic *t = fy_strmap_get(&c->topics, topic_name, strlen(topic_name));
    consumer *co;
    fy_wbatch *b;
    reset_ctx *x;
    pending_reset *pr = NULL;
    if (!g || !t) {
        return -FY_ENOTFOUND;
    }
    if (g->mode != FY_SUB_CLUSTERING) {
        return -FY_ENOTSUP; /* broadcast positions live in each member */
    }
    co = online_consumer(g, t->id);
    x = FY_NEW(reset_ctx);
    x->c = c;
    x->done = done;
    x->arg = arg;
    if (!co) {
        /* No consumer holds the group's position in memory: until the batch is written, a
         * member joining must find the new offsets here, not the old ones in the store. */
        pending_reset r = {0};
        resets_drop(c, g->name, t->id);
        r.group = fy_strdup(g->name);
        r.topic_id = t->id;
        r.queues = t->queues;
        r.offsets = fy_calloc(t->queues, sizeof(*r.offsets));
        r.gen = x->gen = ++c->reset_gen;
        PUSH(c->resets, c->nresets, c->capresets, r);
        pr = &c->resets[c->nresets - 1];
    }
    b = fy_wbatch_new();
    t->offsets = true; /* the group may have no consumer of t */
    for (uint32_t q = 0; q < t->queues; q++) {
        uint64_t off = start_offset(c, t, q, FY_START_TIME, ts_ms);
        fy_wbatch_put_offset(b, g->name, t->id, q, off);
        if (pr) {
            pr->offsets[q] = off;
        }
        if (co) {
            cursor *cu = &co->cur[q];
            forget_inflight(co, cu);
            if (cu->win) {
                memset(cu->win, 0, WINDOW);
            }
            if (cu->x) {
                cu->x->nredo = cu->x->redo_head = 0;
            }
            cur_x(cu);
            cu->committed = cu->next = *persisted_of(cu) = off;
        }
        if (fn) {
            fn(arg, q, off);
        }
    }
    fy_store_submit(c->store, b, reset_done, x);
    if (co) {
        for (size_t k = 0; k < co->nmembers; k++) {
            schedule(co->members[k]);
        }
    }
    fy_log(INFO, "core", "group=%s topic=%s ts_ms=%llu msg=\"group reset\"", g->name, t->name,
           (unsigned long long)ts_ms);
    return FY_OK;
}

static void group_free(group *g)
{
    if (g->shadow) {
        group_free(g->shadow);
    }
    fy_free(g->cons);
    fy_free(g->name);
    fy_free(g);
}

/* What group_restore did with a group that is on disk but out of the map. */
enum { GROUP_RESTORED, GROUP_WAITS, GROUP_DROPPED };

/* A group whose record is on disk though it left the map (its deletion's write failed): back if
 * its name is free. A group made under the name meanwhile stays: while that one's record is on
 * its way (fy_core_group_set_max_reconsume), this one waits behind it (shadow) and comes back
 * should that write fail too; else the caller frees this one. */
static int group_restore(fy_core *c, group *g)
{
    group *h = fy_strmap_get(&c->groups, g->name, strlen(g->name));
    if (!h) {
        fy_strmap_put(&c->groups, g->name, g);
        return GROUP_RESTORED;
    }
    if (h->unstored && !h->shadow) {
        h->shadow = g;
        return GROUP_WAITS;
    }
    return GROUP_DROPPED;
}

/* Takes out of memory, and frees, a group whose record never reached the disk: its members'
 * subscriptions end (their owners get sub_closed with status) and its consumers go without
 * writing offsets. */
static void group_unmake(fy_core *c, group *g, int status)
{
    fy_strmap_del(&c->groups, g->name);
    while (g->ncons > 0) {
        consumer *co = g->cons[g->ncons - 1];
        bool kept = co->mode == FY_SUB_CLUSTERING;
        size_t n = co->nmembers;
        while (n-- > 0) {
            sub_end(c, co->members[n], status, "group not stored");
        }
        if (kept) {
            co->persistent = false;
            consumer_free(c, co);
        }
    }
    resets_drop(c, g->name, 0);
    group_free(g);
}

/* A group deletion on its way to the store: out of the core's map (the name may be
 * taken again at once), kept until the write is done. */
typedef struct group_del_ctx {
    fy_core *c;
    group *g;
    uint32_t *topic_ids; /* the topics its clustering consumers read (it has offsets of them) */
    size_t ntopics, captopics;
    fy_core_done_cb done;
    void *arg;
} group_del_ctx;

static void group_delete_done(void *arg, int status, fy_wbatch *b)
{
    group_del_ctx *x = arg;
    fy_core *c = x->c;
    group *g = x->g;
    if (fy_strmap_get(&c->deleting, g->name, strlen(g->name)) == x) {
        fy_strmap_del(&c->deleting, g->name); /* no later deletion of the name is on its way */
    }
    if (status == FY_OK) {
        fy_log(INFO, "core", "group=%s msg=\"group deleted\"", g->name);
        group_free(g);
    } else {
        /* None of the write reached the disk: the group's record and offsets are all there.
         * The consumers that would have named the group to a deletion of their topics are
         * gone: such a deletion must walk every group's offsets to find this one's. */
        for (size_t i = 0; i < x->ntopics; i++) {
            topic *t = topic_by_id(c, x->topic_ids[i]);
            if (t) {
                t->offsets = true;
            }
        }
        if (g->unstored) {
            /* Its creation's write failed before this one: nothing of it is on disk. */
            fy_log(ERROR, "core",
                   "group=%s err=%s msg=\"group not deleted: the store refused the write; it "
                   "was never stored either\"",
                   g->name, fy_errname(status));
            group_free(g);
        } else {
            /* Put it back, as a restart would find it: its mode, settings and member ids are
             * those it had. What cannot come back are its consumers, dropped with the
             * positions they held in memory (acknowledgements not written yet, redeliveries
             * queued, an orderly queue's pause): a member joining again starts from the
             * committed offsets in the store, as after a restart, and gets the messages past
             * them again (at least once). A group of that name made meanwhile (an MQTT client
             * connecting again) stays instead: its record, should it be written, replaces
             * this one's. */
            static const char *const why[] = {
                "", "; the name is taken again, by a group not stored yet",
                "; the name is taken again"};
            int r = group_restore(c, g);
            fy_log(ERROR, "core",
                   "group=%s err=%s msg=\"group not deleted: the store refused the write%s\"",
                   g->name, fy_errname(status), why[r]);
            if (r == GROUP_DROPPED) {
                group_free(g);
            }
        }
    }
    if (x->done) {
        x->done(x->arg, status);
    }
    fy_free(x->topic_ids);
    fy_free(x);
}

int fy_core_group_delete(fy_core *c, const char *name, fy_core_done_cb done, void *arg)
{
    group *g = fy_strmap_get(&c->groups, name, strlen(name));
    group_del_ctx *x;
    fy_wbatch *b;
    if (!g) {
        return -FY_ENOTFOUND;
    }
    if (g->members > 0) {
        return -FY_EBUSY;
    }
    if (!fy_store_healthy(c->store)) {
        return -FY_EUNHEALTHY;
    }
    x = FY_NEW(group_del_ctx);
    x->c = c;
    x->g = g;
    x->done = done;
    x->arg = arg;
    /* Consumers without members keep positions in memory (and may just have queued their
     * offsets for writing): drop them, then delete every offset in a later batch. The store
     * deletes the offsets the group has, those on their way included: not one per queue of
     * every topic, which on a broker with many topics made a large write of deletions. */
    while (g->ncons > 0) {
        consumer *co = g->cons[0];
        if (co->persistent) {
            PUSH(x->topic_ids, x->ntopics, x->captopics, co->t->id);
        }
        co->persistent = false;
        consumer_free(c, co);
    }
    b = fy_wbatch_new();
    fy_wbatch_del_group_offsets(b, g->name);
    fy_wbatch_del_group(b, g->name);
    resets_drop(c, g->name, 0);
    /* Gone from the map at once (nothing joins it, and the name may be taken again), freed once
     * the write is done; should the write fail, the group is put back (group_delete_done) and
     * the caller told. */
    fy_strmap_del(&c->groups, g->name);
    fy_strmap_put(&c->deleting, g->name, x);
    fy_store_submit(c->store, b, group_delete_done, x);
    return FY_OK;
}

static void group_config_fill(const fy_core *c, const group *g, fy_group_config *out)
{
    out->mode = g->mode;
    out->max_reconsume = g->max_reconsume;
    out->max_reconsume_effective = group_max_reconsume(c, g);
}

int fy_core_group_config_get(fy_core *c, const char *name, fy_group_config *out)
{
    group *g = fy_strmap_get(&c->groups, name, strlen(name));
    if (!g) {
        return -FY_ENOTFOUND;
    }
    group_config_fill(c, g, out);
    return FY_OK;
}

/* A write of a group's record by fy_core_group_set_max_reconsume. */
typedef struct gconf_ctx {
    fy_core *c;
    group *g;
    int max_reconsume; /* what the record says */
    fy_core_done_cb done;
    void *arg;
} gconf_ctx;

static void group_conf_done(void *arg, int status, fy_wbatch *b)
{
    gconf_ctx *x = arg;
    fy_core *c = x->c;
    group *g = x->g, *old = NULL;
    g->conf_writes--;
    if (status == FY_OK) {
        g->stored_max_reconsume = x->max_reconsume;
        g->unstored = false;
        if (g->shadow) {
            /* Its record replaced the older group's. */
            group_free(g->shadow);
            g->shadow = NULL;
        }
    } else if (g->conf_writes == 0) {
        /* None of the writes was done, and none is on its way: back to what the disk has. */
        fy_log(ERROR, "core",
               "group=%s max_reconsume=%d err=%s msg=\"group config not stored: the store "
               "refused the write\"",
               g->name, x->max_reconsume, fy_errname(status));
        g->max_reconsume = g->stored_max_reconsume;
        if (g->unstored) {
            /* Made by these writes, it is not on disk: gone, as after a restart. Out of the
             * map already, it is being deleted (behind this write, failing too): that deletion
             * sees it unstored and does not put it back. */
            old = g->shadow;
            g->shadow = NULL;
            if (fy_strmap_get(&c->groups, g->name, strlen(g->name)) == g) {
                group_unmake(c, g, status);
            }
        }
        if (old) {
            int r = group_restore(c, old);
            if (r == GROUP_RESTORED) {
                fy_log(WARN, "core", "group=%s msg=\"group back: the disk still has it\"",
                       old->name);
            } else if (r == GROUP_DROPPED) {
                group_free(old);
            }
        }
    }
    if (x->done) {
        x->done(x->arg, status);
    }
    fy_free(x);
}

int fy_core_group_set_max_reconsume(fy_core *c, const char *name, int max_reconsume,
                                    fy_group_config *out, fy_core_done_cb done, void *arg)
{
    group *g;
    bool created;
    gconf_ctx *x;
    fy_wbatch *b;
    if (!fy_core_name_valid(name, strlen(name))) {
        return -FY_EBADNAME;
    }
    if (max_reconsume != FY_GROUP_MAX_RECONSUME_DEFAULT &&
        (max_reconsume < 0 || max_reconsume > FY_GROUP_MAX_RECONSUME_MAX)) {
        return -FY_EINVAL;
    }
    g = fy_strmap_get(&c->groups, name, strlen(name));
    if (g && g->mode != FY_SUB_CLUSTERING) {
        return -FY_ENOTSUP; /* broadcast failures are redelivered at once, never dead-lettered */
    }
    if (!fy_store_healthy(c->store)) {
        return -FY_EUNHEALTHY;
    }
    /* RocketMQ lets a subscription group be configured before its consumers start: the group
     * is created in clustering mode, with no member and no offsets yet. */
    g = group_get_or_add(c, name, FY_SUB_CLUSTERING, &created);
    g->max_reconsume = max_reconsume;
    /* In force at once; should the write fail, the group is as the disk has it again (not there,
     * if it was made here) and the caller told (group_conf_done). */
    if (created) {
        g->unstored = true;
    }
    g->conf_writes++;
    b = fy_wbatch_new();
    group_persist(g, b);
    x = FY_NEW(gconf_ctx);
    x->c = c;
    x->g = g;
    x->max_reconsume = max_reconsume;
    x->done = done;
    x->arg = arg;
    fy_store_submit(c->store, b, group_conf_done, x);
    fy_log(INFO, "core",
           "group=%s max_reconsume=%d effective=%u created=%d msg=\"group config set\"", g->name,
           g->max_reconsume, group_max_reconsume(c, g), created);
    if (out) {
        group_config_fill(c, g, out);
    }
    return FY_OK;
}

/* ---- Topic watch --------------------------------------------------------------------------- */

static void on_created(evutil_socket_t fd, short what, void *arg)
{
    fy_core *c = arg;
    /* Watchers may create topics themselves: take the list first. */
    uint32_t *ids = c->created;
    size_t n = c->ncreated;
    c->created = NULL;
    c->ncreated = c->capcreated = 0;
    for (size_t i = 0; i < n; i++) {
        topic *t = topic_by_id(c, ids[i]);
        fy_topic_info info;
        if (!t) {
            continue; /* deleted meanwhile */
        }
        info.name = t->name;
        info.topic_id = t->id;
        info.queues = t->queues;
        info.counters = &t->ctr;
        for (size_t w = 0; w < c->nwatchers; w++) {
            c->watchers[w].fn(c->watchers[w].arg, &info);
        }
    }
    fy_free(ids);
}

static void topic_created(fy_core *c, const topic *t)
{
    if (c->nwatchers == 0) {
        return;
    }
    PUSH(c->created, c->ncreated, c->capcreated, t->id);
    event_active(c->created_ev, EV_WRITE, 0);
}

int fy_core_watch_topics(fy_core *c, void (*fn)(void *arg, const fy_topic_info *t), void *arg)
{
    if (c->nwatchers == sizeof(c->watchers) / sizeof(c->watchers[0])) {
        return -FY_EINVAL;
    }
    c->watchers[c->nwatchers].fn = fn;
    c->watchers[c->nwatchers].arg = arg;
    c->nwatchers++;
    return FY_OK;
}

void fy_core_unwatch_topics(fy_core *c, void (*fn)(void *arg, const fy_topic_info *t), void *arg)
{
    for (size_t i = 0; i < c->nwatchers; i++) {
        if (c->watchers[i].fn == fn && c->watchers[i].arg == arg) {
            memmove(&c->watchers[i], &c->watchers[i + 1],
                    (c->nwatchers - i - 1) * sizeof(c->watchers[0]));
            c->nwatchers--;
            return;
        }
    }
}

/* ---- Adapter key-value namespace ------------------------------------------------------------ */

int fy_core_kv_get(fy_core *c, const char *ns, const void *key, size_t klen, fy_buf *out)
{
    return fy_store_get_adapter(c->store, ns, key, klen, out);
}

int fy_core_kv_scan(fy_core *c, const char *ns, const void *prefix, size_t plen,
                    int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                              size_t vlen),
                    void *arg)
{
    return fy_store_scan_adapter(c->store, ns, prefix, plen, fn, arg);
}

int fy_core_kv_write(fy_core *c, const char *ns, const fy_kv_op *ops, size_t n,
                     fy_core_done_cb done, void *arg)
{
    fy_wbatch *b;
    if (!fy_store_healthy(c->store)) {
        return -FY_EUNHEALTHY;
    }
    b = fy_wbatch_new();
    kv_ops_add(b, ns, ops, n);
    submit_with_done(c, b, done, arg);
    return FY_OK;
}

static int count_timer(void *arg, uint64_t deliver_ms, uint64_t seq, const uint8_t *rec, size_t len)
{
    ((fy_core *)arg)->timers_live++;
    return 0;
}

void fy_core_get_stats(fy_core *c, fy_core_stats *st)
{
    st->topics = c->topics.n;
    st->groups = c->groups.n;
    st->retention_deleted = c->retention_deleted;
    st->retention_skipped = c->retention_skipped;
    st->delayed_pending = c->timers_live;
    st->retries = c->st_retries;
    st->dead_letters = c->st_dead;
    core_tx_stats(c->tx, st);
}

core_tx *core_tx_of(fy_core *c)
{
    return c->tx;
}

/* ---- Life cycle ---------------------------------------------------------------------------- */

static int load_topic(void *arg, const char *name, const uint8_t *val, size_t len)
{
    fy_core *c = arg;
    if (len != 16) {
        fy_log(ERROR, "core", "topic=%s msg=\"bad topic record, skipped\"", name);
        c->bad_topic_records = true;
        return 0;
    }
    /* Offsets of it from an earlier run would be in the store only: assume there are some. */
    topic_add(c, name, fy_be32_get(val), fy_be32_get(val + 4))->offsets = true;
    return 0;
}

static int load_group(void *arg, const char *name, const uint8_t *val, size_t len)
{
    fy_core *c = arg;
    bool created;
    group *g = group_get_or_add(
        c, name, len >= 1 && val[0] == FY_SUB_BROADCAST ? FY_SUB_BROADCAST : FY_SUB_CLUSTERING,
        &created);
    if (len >= 2 && val[1] <= FY_GROUP_MAX_RECONSUME_MAX) {
        g->max_reconsume = g->stored_max_reconsume = val[1];
    } else if (len >= 2 && val[1] != GROUP_REC_DEFAULT) {
        fy_log(ERROR, "core",
               "group=%s max_reconsume=%u msg=\"bad group record, the broker's "
               "max_reconsume applies\"",
               name, val[1]);
    }
    return 0;
}

typedef struct sweep_ctx {
    fy_core *c;
    fy_wbatch *b;
} sweep_ctx;

/* A topic id with queues in the store but no topic: a crash between a topic's deletion and the
 * deletion of its messages by an older ferryd (which did those in two writes), or a topic whose
 * configuration never reached the store. Nothing can read those queues: erase them. Ids are
 * never given out twice: the next one is past it. */
static void sweep_topic(void *arg, uint32_t topic_id, uint32_t queues)
{
    sweep_ctx *x = arg;
    if (topic_by_id(x->c, topic_id)) {
        return;
    }
    if (topic_id >= x->c->next_topic_id) {
        uint8_t next[4];
        x->c->next_topic_id = topic_id + 1;
        fy_be32_put(next, x->c->next_topic_id);
        x->b = x->b ? x->b : fy_wbatch_new();
        fy_wbatch_put_adapter(x->b, "core", "next_topic_id", 13, next, sizeof(next));
    }
    if (queues > 0) { /* 0: its erasing has begun already */
        x->b = x->b ? x->b : fy_wbatch_new();
        fy_wbatch_erase_topic(x->b, topic_id, true);
        fy_log(WARN, "core", "topic_id=%u queues=%u msg=\"queues of no topic erased\"", topic_id,
               queues);
    }
}

fy_core *fy_core_new(struct event_base *base, fy_store *store, const struct fy_broker_config *cfg,
                     char *err, size_t errlen)
{
    sweep_ctx sweep = {0};
    fy_core *c = FY_NEW(fy_core);
    fy_buf v = FY_BUF_INIT;
    int rc;
    struct timeval tick = {0, TICK_MS * 1000};
    c->base = base;
    c->store = store;
    c->cfg = cfg;
    c->next_topic_id = 1;
    c->timer_new_min = UINT64_MAX; /* timer_fired_upto 0: the first scan starts at the start */
    rc = fy_store_scan_topics(store, load_topic, c);
    if (rc == FY_OK) {
        rc = fy_store_scan_groups(store, load_group, c);
    }
    if (rc < 0) {
        snprintf(err, errlen, "cannot load topics and groups: %s", fy_strerror(rc));
        fy_core_free(c);
        return NULL;
    }
    if (fy_store_get_adapter(store, "core", "next_topic_id", 13, &v) == FY_OK && v.len == 4 &&
        fy_be32_get(v.data) > c->next_topic_id) {
        c->next_topic_id = fy_be32_get(v.data);
    }
    fy_buf_free(&v);
    sweep.c = c;
    if (!c->bad_topic_records) { /* whose queues would look like no topic's */
        fy_store_topics_each(store, sweep_topic, &sweep);
    }
    if (sweep.b) {
        fy_store_submit(store, sweep.b, NULL, NULL);
    }
    c->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, c);
    event_add(c->tick_ev, &tick);
    c->created_ev = event_new(base, -1, 0, on_created, c);
    c->persist_ev = event_new(base, -1, 0, on_persist_soon, c);
    c->ready_ev = event_new(base, -1, 0, on_ready, c);
    if (parse_durations("delay_levels", cfg->delay_levels, c->delay_levels, &c->ndelay_levels, err,
                        errlen) != FY_OK ||
        parse_durations("retry_delays", cfg->retry_delays, c->retry_delays, &c->nretry_delays, err,
                        errlen) != FY_OK) {
        fy_core_free(c);
        return NULL;
    }
    c->timer_ev = event_new(base, -1, 0, on_timer, c);
    /* One pass over the time index at start; kept up to date from then on. */
    fy_store_scan_timers(store, 0, UINT64_MAX, SIZE_MAX, count_timer, c);
    arm_timer(c); /* messages that came due while ferryd was down go out now */
    c->tx = core_tx_new(c, base, store, cfg);
    c->retention_ev = event_new(base, -1, 0, on_retention, c);
    {
        struct timeval first = {(time_t)(cfg->retention_interval_ms / 1000),
                                (suseconds_t)(cfg->retention_interval_ms % 1000) * 1000};
        event_add(c->retention_ev, &first);
    }
    fy_log(INFO, "core", "topics=%zu groups=%zu msg=\"core ready\"", c->topics.n, c->groups.n);
    return c;
}

static void free_consumers(void *arg, const char *key, void *val)
{
    group *g = val;
    while (g->ncons > 0) {
        consumer_free(arg, g->cons[g->ncons - 1]);
    }
}

static void free_group(void *arg, const char *key, void *val)
{
    group_free(val);
}

static void free_topic(void *arg, const char *key, void *val)
{
    topic_free(val);
}

void fy_core_free(fy_core *c)
{
    if (!c) {
        return;
    }
    c->closing = true;
    while (c->subs) {
        sub_end(c, c->subs, -FY_ECANCELED, "broker shutting down");
    }
    fy_strmap_each(&c->groups, free_consumers, c);
    persist_offsets(c);
    for (size_t i = 0; i < c->nwaiters; i++) {
        c->waiters[i].done(c->waiters[i].arg, -FY_ECANCELED); /* not stored in this run */
    }
    c->nwaiters = 0;
    core_tx_stop(c->tx);
    /* Completions of what the core submitted (produce results, delayed messages moving) need
     * the core: let them all run before it goes. */
    if (c->store) {
        fy_store_stats st;
        for (fy_store_get_stats(c->store, &st); st.pending > 0; fy_store_get_stats(c->store, &st)) {
            event_base_loop(c->base, EVLOOP_ONCE);
        }
    }
    if (c->tick_ev) {
        event_free(c->tick_ev);
    }
    if (c->created_ev) {
        event_free(c->created_ev);
    }
    if (c->persist_ev) {
        event_free(c->persist_ev);
    }
    if (c->ready_ev) {
        event_free(c->ready_ev);
    }
    fy_free(c->waiters);
    fy_free(c->created);
    if (c->retention_ev) {
        event_free(c->retention_ev);
    }
    if (c->timer_ev) {
        event_free(c->timer_ev);
        c->timer_ev = NULL;
    }
    core_tx_free(c->tx);
    fy_strmap_each(&c->groups, free_group, NULL);
    fy_strmap_free(&c->groups);
    fy_strmap_free(&c->deleting); /* empty: every deletion completed */
    fy_strmap_each(&c->topics, free_topic, NULL);
    fy_strmap_free(&c->topics);
    fy_u64map_free(&c->topic_ids);
    fy_free(c->dirty);
    resets_drop(c, NULL, 0);
    fy_free(c->resets);
    fy_buf_free(&c->scratch);
    fy_buf_free(&c->patch);
    fy_buf_free(&c->resolved);
    fy_buf_free(&c->lq_rec);
    fy_free(c->views);
    fy_free(c->dues);
    fy_free(c);
}
