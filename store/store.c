/* SPDX-License-Identifier: Apache-2.0 */
/* The store on LevelDB: key layout, reads on the loop thread, and one writer thread doing
 * group commit. The loop queues write batches; the writer takes everything queued, assigns
 * queue offsets, writes one LevelDB WriteBatch (synced under flush=sync) and hands the batches
 * back to the loop through an eventfd, where their callbacks run in submit order. */
#include "store/store.h"

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/u64map.h"

#include "ferry/errors.h"

#include <event2/event.h>
#include <leveldb/c.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define STORE_FORMAT_VERSION 1u
#define SEQ_RESERVE 65536u /* sequence numbers (timers, transactions) reserved per step */
/* An inline write slower than INLINE_SLOW_US in which the loop slept pauses inline writes for
 * INLINE_PAUSE_MS (fy_store_submit). */
#define INLINE_SLOW_US 500
#define INLINE_PAUSE_MS 1000
/* Recovery after a failed write: how often the loop looks for room, and the room it wants on
 * top of what reopening writes (the log turned into a table). */
#define RECOVER_EVERY_MS 1000
#define RECOVER_MARGIN (1u << 20)
#define RECOVER_PROBE_BYTES 65536 /* written and synced before a reopen is tried */

/* Operation kinds inside a batch's op buffer. */
enum { OP_APPEND = 1, OP_PUT, OP_DEL, OP_TIMER, OP_TRIM, OP_HALF, OP_ERASE, OP_DEL_OFFSETS };
/* The flags byte of OP_APPEND: 1 = the record has keys to index; APPEND_REF = a reference whose
 * last 12 bytes get the location of an earlier append of the batch. */
#define APPEND_REF 2
/* The flags byte of OP_ERASE (also the first byte of an E record): ERASE_OFFSETS = walk every
 * group's committed offsets too; ERASE_CONT = a later chunk (the E record says where to go on). */
#define ERASE_OFFSETS 1
#define ERASE_CONT 2
#define ERASE_CHUNK 8192 /* keys deleted (or seeks made) per write of an erasing */
/* fy_wbatch.flags: WB_BARRIER = starts a commit of its own (what was submitted before is in the
 * database when it is applied); WB_ERASE = holds OP_ERASE; WB_INTERNAL = submitted by the store
 * itself (the next chunk of an erasing): no callback, not counted in `pending`; WB_DEL_OFFSETS =
 * holds OP_DEL_OFFSETS (its commit notes the offsets it puts). */
#define WB_BARRIER 1
#define WB_ERASE 2
#define WB_INTERNAL 4
#define WB_DEL_OFFSETS 8
/* s->erasing values: a batch with the topic's next chunk is queued or being written; or none
 * is (an E record found at open, or a chunk that failed): the next open or recovery goes on. */
#define ERASING_QUEUED 1
#define ERASING_STALLED 2
/* What a chunk of an erasing left (erase_wt, the byte of OP_ERASE the writer sets): nothing, the
 * next chunk to do, or a read error that stopped it (the E record stays: the next open, or a
 * recovery, starts it over). */
enum { ERASE_DONE = 0, ERASE_MORE = 1, ERASE_STOPPED = 2 };

typedef struct append_res {
    uint32_t queue_id;
    uint64_t offset;
    uint64_t store_ms;
    size_t rec_pos; /* where the record lies in ops */
    uint32_t rec_len;
} append_res;

struct fy_wbatch {
    fy_wbatch *next;
    fy_buf ops; /* encoded operations, replayed by the writer */
    append_res *res;
    size_t nappends;
    size_t rescap;
    fy_wbatch_cb cb;
    void *arg;
    int status;
    uint8_t flags; /* WB_* */
};

struct fy_store {
    leveldb_t *db;
    leveldb_options_t *options;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *filter;
    leveldb_readoptions_t *ropts;
    leveldb_readoptions_t *scan_ropts; /* bulk reads: do not push hot blocks out of the cache */
    leveldb_writeoptions_t *wopts;
    fy_flush flush;
    size_t max_commit_bytes;
    char *dir;

    /* Loop side: committed queue ranges, keyed by topic_id << 32 | queue_id. */
    fy_u64map qmin;
    fy_u64map qmax;
    fy_u64map tqueues;     /* topic id -> its highest queue id in qmax, plus one */
    fy_u64map erasing;     /* topic id -> ERASING_*: deleted topics with keys left to delete */
    size_t erase_chunk;    /* ERASE_CHUNK, smaller in tests */
    struct event *done_ev; /* efd readable: the writer thread finished a group */
    struct event *done_local_ev; /* an inline commit finished (nothing to read from efd) */
    int efd;

    /* Shared between the loop and the writer, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    fy_wbatch *q_head, *q_tail;       /* submitted, not yet taken by the writer */
    fy_wbatch *done_head, *done_tail; /* written (or failed), not yet completed on the loop */
    bool stopping;
    bool writer_busy; /* a commit is under way (on the writer thread, or inline on the loop) */
    bool held;        /* fy_store_hold: queued batches wait (tests) */
    bool recovering;  /* the loop is reopening the database: the writer waits */
    pthread_cond_t idle_cv; /* signalled when writer_busy turns false */
    char last_error[256];
    char last_error_loop[256]; /* copy handed out by fy_store_last_error */

    /* Recovery (loop thread). */
    struct event *recover_ev;
    uint64_t unhealthy_since_ms; /* wall clock of the failure; 0 while healthy */
    uint64_t recover_next_log_ms;

    /* Writer only. */
    pthread_t writer;
    bool writer_started;
    fy_u64map wnext;    /* next offset to assign per queue */
    fy_u64map wtqueues; /* topic id -> its highest queue id in wnext, plus one */
    uint64_t seq_next;  /* next sequence number: timers and transaction ids */
    uint64_t seq_limit; /* first sequence number not yet reserved on disk */
    uint64_t last_ms;   /* store timestamps never go backwards */
    leveldb_writebatch_t *wb;
    size_t wb_dels; /* deletes in wb (fy_store_stats.deletes once written) */

    /* Inline commits (flush=async, writer idle): the loop writes itself and saves two thread
     * hand-offs per batch. Loop thread only. */
    struct commit_ctx_wt *inline_ctx;
    uint64_t inline_off_until_ms; /* after a slow inline write, leave writes to the writer */

    atomic_size_t wnext_n; /* wnext.n, published by the writer after each write */
    atomic_bool healthy;
    atomic_uint_fast64_t st_inline, st_inline_slow, st_inline_paused, st_commits, st_batches,
        st_appends, st_bytes, st_failed, st_pending, st_commit_ns, st_fsyncs, st_fsync_ns,
        st_write_errors, st_recoveries, st_recover_failures, st_deletes;
    bool sync; /* flush=sync: every write is fsync'ed */
    atomic_uint_fast64_t h_commit[FY_STORE_LAT_BUCKETS + 1], h_fsync[FY_STORE_LAT_BUCKETS + 1],
        h_batch[FY_STORE_BATCH_BUCKETS + 1];
};

static const uint64_t lat_bounds_us[FY_STORE_LAT_BUCKETS] = FY_STORE_LAT_BOUNDS_US;
static const uint64_t batch_bounds[FY_STORE_BATCH_BUCKETS] = FY_STORE_BATCH_BOUNDS;

/* Index of the first bound >= v (n = past the last). */
static size_t bucket_of(const uint64_t *bounds, size_t n, uint64_t v)
{
    size_t i = 0;
    while (i < n && v > bounds[i]) {
        i++;
    }
    return i;
}

/* One observation per LevelDB write: a few relaxed increments, no lock. */
static void observe_commit_wt(fy_store *s, uint64_t ns, size_t appends)
{
    uint64_t us = ns / 1000;
    size_t li = bucket_of(lat_bounds_us, FY_STORE_LAT_BUCKETS, us);
    atomic_fetch_add_explicit(&s->h_commit[li], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->h_batch[bucket_of(batch_bounds, FY_STORE_BATCH_BUCKETS, appends)],
                              1, memory_order_relaxed);
    if (s->sync) {
        atomic_fetch_add_explicit(&s->h_fsync[li], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->st_fsyncs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->st_fsync_ns, ns, memory_order_relaxed);
    }
}

static inline uint64_t qkey(uint32_t topic_id, uint32_t queue_id)
{
    return (uint64_t)topic_id << 32 | queue_id;
}

/* Notes queue qk in a per-topic table of queue counts (tqueues, wtqueues): erasing a topic
 * forgets every queue the store has of it, whatever its configuration says now. */
static void queue_seen(fy_u64map *topics, uint64_t qk)
{
    uint64_t *n = fy_u64map_upsert(topics, qk >> 32, 0);
    if ((qk & UINT32_MAX) + 1 > *n) {
        *n = (qk & UINT32_MAX) + 1;
    }
}

/* Adds a delete to the WriteBatch being built (writer, or an inline commit), counted for
 * fy_store_stats.deletes. */
static void wb_del_wt(fy_store *s, const void *k, size_t klen)
{
    leveldb_writebatch_delete(s->wb, (const char *)k, klen);
    s->wb_dels++;
}

/* ---- Keys ------------------------------------------------------------------------------- */

enum { MKEY_LEN = 17 };

static void mkey(uint8_t *k, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    k[0] = 'M';
    fy_be32_put(k + 1, topic_id);
    fy_be32_put(k + 5, queue_id);
    fy_be64_put(k + 9, offset);
}

/* "<prefix><name>\0<tail>" keys: O, A. */
static void named_key(fy_buf *k, char prefix, const char *name, const void *tail, size_t tlen)
{
    fy_buf_reset(k);
    fy_buf_put_u8(k, (uint8_t)prefix);
    fy_buf_append(k, name, strlen(name));
    fy_buf_put_u8(k, 0);
    fy_buf_append(k, tail, tlen);
}

static void okey(fy_buf *k, const char *group, uint32_t topic_id, uint32_t queue_id)
{
    uint8_t tail[8];
    fy_be32_put(tail, topic_id);
    fy_be32_put(tail + 4, queue_id);
    named_key(k, 'O', group, tail, sizeof(tail));
}

static void conf_key(fy_buf *k, char prefix, const char *name)
{
    fy_buf_reset(k);
    fy_buf_put_u8(k, (uint8_t)prefix);
    fy_buf_append(k, name, strlen(name));
}

static void tkey(uint8_t *k, uint64_t deliver_ms, uint64_t seq)
{
    k[0] = 'T';
    fy_be64_put(k + 1, deliver_ms);
    fy_be64_put(k + 9, seq);
}

enum { HKEY_LEN = 9, EKEY_LEN = 5 };

/* "<prefix> topic_id": the start of a topic's M or K keys, and its E record. */
static void topic_key(uint8_t *k, char prefix, uint32_t topic_id)
{
    k[0] = (uint8_t)prefix;
    fy_be32_put(k + 1, topic_id);
}

static void hkey(uint8_t *k, uint64_t tx_id)
{
    k[0] = 'H';
    fy_be64_put(k + 1, tx_id);
}

/* ---- Errors ------------------------------------------------------------------------------ */

/* Maps a LevelDB status text to an error code. */
static int map_leveldb_error(const char *e)
{
    if (strstr(e, "Corruption")) {
        return -FY_ECORRUPT;
    }
    if (strstr(e, "No space left") || strstr(e, "ENOSPC")) {
        return -FY_ENOSPC;
    }
    if (strstr(e, "lock") || strstr(e, "Resource temporarily unavailable")) {
        return -FY_ELOCKED;
    }
    return -FY_EIO;
}

static int take_error(char *lerr, char *err, size_t errlen)
{
    int rc = map_leveldb_error(lerr);
    if (err) {
        snprintf(err, errlen, "%s", lerr);
    }
    leveldb_free(lerr);
    return rc;
}

/* ---- Write batches ----------------------------------------------------------------------- */

fy_wbatch *fy_wbatch_new(void)
{
    return FY_NEW(fy_wbatch);
}

void fy_wbatch_free(fy_wbatch *b)
{
    if (!b) {
        return;
    }
    fy_buf_free(&b->ops);
    fy_free(b->res);
    fy_free(b);
}

/* Records where the append's record starts in ops (it is appended right after this call). */
static void add_append_slot(fy_wbatch *b, uint32_t len)
{
    if (b->nappends == b->rescap) {
        b->rescap = b->rescap ? b->rescap * 2 : 4;
        b->res = fy_realloc(b->res, b->rescap * sizeof(*b->res));
    }
    b->res[b->nappends].rec_pos = b->ops.len;
    b->res[b->nappends].rec_len = len;
    b->nappends++;
}

int fy_wbatch_append(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, const fy_record *r)
{
    size_t n = fy_record_size(r);
    if (n == 0 || n > UINT32_MAX) {
        return -FY_EINVAL;
    }
    fy_buf_put_u8(&b->ops, OP_APPEND);
    fy_buf_put_u32(&b->ops, topic_id);
    fy_buf_put_u32(&b->ops, queue_id);
    fy_buf_put_u8(&b->ops, r->nkeys > 0);
    fy_buf_put_u32(&b->ops, (uint32_t)n);
    add_append_slot(b, (uint32_t)n);
    fy_record_encode(r, &b->ops);
    return (int)(b->nappends - 1);
}

int fy_wbatch_append_raw(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, const void *rec,
                         size_t len, bool has_keys)
{
    if (len > UINT32_MAX) {
        return -FY_ETOOBIG;
    }
    fy_buf_put_u8(&b->ops, OP_APPEND);
    fy_buf_put_u32(&b->ops, topic_id);
    fy_buf_put_u32(&b->ops, queue_id);
    fy_buf_put_u8(&b->ops, has_keys);
    fy_buf_put_u32(&b->ops, (uint32_t)len);
    add_append_slot(b, (uint32_t)len);
    fy_buf_append(&b->ops, rec, len);
    return (int)(b->nappends - 1);
}

int fy_wbatch_append_ref(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, const void *rec,
                         size_t len, uint32_t ref)
{
    if (len < 12) {
        return -FY_EINVAL;
    }
    if (len > UINT32_MAX) {
        return -FY_ETOOBIG;
    }
    fy_buf_put_u8(&b->ops, OP_APPEND);
    fy_buf_put_u32(&b->ops, topic_id);
    fy_buf_put_u32(&b->ops, queue_id);
    fy_buf_put_u8(&b->ops, APPEND_REF);
    fy_buf_put_u32(&b->ops, (uint32_t)len);
    add_append_slot(b, (uint32_t)len);
    fy_buf_append(&b->ops, rec, len);
    /* Until the writer knows the offset, the queue-id field holds the slot it refers to. */
    fy_be32_put(b->ops.data + b->ops.len - 12, ref);
    return (int)(b->nappends - 1);
}

size_t fy_wbatch_appends(const fy_wbatch *b)
{
    return b->nappends;
}

size_t fy_wbatch_bytes(const fy_wbatch *b)
{
    return b->ops.len;
}

void fy_wbatch_result(const fy_wbatch *b, size_t i, uint32_t *queue_id, uint64_t *offset,
                      uint64_t *store_ms)
{
    const append_res *r = &b->res[i];
    if (queue_id) {
        *queue_id = r->queue_id;
    }
    if (offset) {
        *offset = r->offset;
    }
    if (store_ms) {
        *store_ms = r->store_ms;
    }
}

void fy_wbatch_record(const fy_wbatch *b, size_t i, const uint8_t **rec, size_t *len)
{
    *rec = b->ops.data + b->res[i].rec_pos;
    *len = b->res[i].rec_len;
}

static void put_op(fy_wbatch *b, const fy_buf *key, const void *val, size_t vlen)
{
    fy_buf_put_u8(&b->ops, OP_PUT);
    fy_buf_put_u32(&b->ops, (uint32_t)key->len);
    fy_buf_append(&b->ops, key->data, key->len);
    fy_buf_put_u32(&b->ops, (uint32_t)vlen);
    fy_buf_append(&b->ops, val, vlen);
}

static void del_op(fy_wbatch *b, const void *key, size_t klen)
{
    fy_buf_put_u8(&b->ops, OP_DEL);
    fy_buf_put_u32(&b->ops, (uint32_t)klen);
    fy_buf_append(&b->ops, key, klen);
}

void fy_wbatch_put_offset(fy_wbatch *b, const char *group, uint32_t topic_id, uint32_t queue_id,
                          uint64_t offset)
{
    fy_buf k = FY_BUF_INIT;
    uint8_t v[8];
    okey(&k, group, topic_id, queue_id);
    fy_be64_put(v, offset);
    put_op(b, &k, v, sizeof(v));
    fy_buf_free(&k);
}

void fy_wbatch_del_offset(fy_wbatch *b, const char *group, uint32_t topic_id, uint32_t queue_id)
{
    fy_buf k = FY_BUF_INIT;
    okey(&k, group, topic_id, queue_id);
    del_op(b, k.data, k.len);
    fy_buf_free(&k);
}

static void put_conf(fy_wbatch *b, char prefix, const char *name, const void *val, size_t len)
{
    fy_buf k = FY_BUF_INIT;
    conf_key(&k, prefix, name);
    put_op(b, &k, val, len);
    fy_buf_free(&k);
}

static void del_conf(fy_wbatch *b, char prefix, const char *name)
{
    fy_buf k = FY_BUF_INIT;
    conf_key(&k, prefix, name);
    del_op(b, k.data, k.len);
    fy_buf_free(&k);
}

void fy_wbatch_put_topic(fy_wbatch *b, const char *name, const void *val, size_t len)
{
    put_conf(b, 'C', name, val, len);
}

void fy_wbatch_del_topic(fy_wbatch *b, const char *name)
{
    del_conf(b, 'C', name);
}

void fy_wbatch_put_group(fy_wbatch *b, const char *name, const void *val, size_t len)
{
    put_conf(b, 'G', name, val, len);
}

void fy_wbatch_del_group(fy_wbatch *b, const char *name)
{
    del_conf(b, 'G', name);
}

int fy_wbatch_put_timer(fy_wbatch *b, uint64_t deliver_ms, const void *rec, size_t len)
{
    fy_buf_put_u8(&b->ops, OP_TIMER);
    fy_buf_put_u64(&b->ops, deliver_ms);
    fy_buf_put_u32(&b->ops, (uint32_t)len);
    add_append_slot(b, (uint32_t)len);
    fy_buf_append(&b->ops, rec, len);
    return (int)(b->nappends - 1);
}

void fy_wbatch_del_timer(fy_wbatch *b, uint64_t deliver_ms, uint64_t seq)
{
    uint8_t k[17];
    tkey(k, deliver_ms, seq);
    del_op(b, k, sizeof(k));
}

int fy_wbatch_put_half(fy_wbatch *b, const void *meta, size_t mlen, const void *rec, size_t len)
{
    if (mlen > UINT32_MAX / 2 || len > UINT32_MAX / 2) {
        return -FY_ETOOBIG;
    }
    /* The value is stored as laid out here: u32 mlen, meta, record. */
    fy_buf_put_u8(&b->ops, OP_HALF);
    fy_buf_put_u32(&b->ops, (uint32_t)(4 + mlen + len));
    fy_buf_put_u32(&b->ops, (uint32_t)mlen);
    fy_buf_append(&b->ops, meta, mlen);
    add_append_slot(b, (uint32_t)len);
    fy_buf_append(&b->ops, rec, len);
    return (int)(b->nappends - 1);
}

void fy_wbatch_update_half(fy_wbatch *b, uint64_t tx_id, const void *meta, size_t mlen,
                           const void *rec, size_t len)
{
    uint8_t k[HKEY_LEN];
    fy_buf key = FY_BUF_INIT, val = FY_BUF_INIT;
    hkey(k, tx_id);
    fy_buf_append(&key, k, sizeof(k));
    fy_buf_put_u32(&val, (uint32_t)mlen);
    fy_buf_append(&val, meta, mlen);
    fy_buf_append(&val, rec, len);
    put_op(b, &key, val.data, val.len);
    fy_buf_free(&key);
    fy_buf_free(&val);
}

void fy_wbatch_del_half(fy_wbatch *b, uint64_t tx_id)
{
    uint8_t k[HKEY_LEN];
    hkey(k, tx_id);
    del_op(b, k, sizeof(k));
}

void fy_wbatch_trim_queue(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, uint64_t before)
{
    fy_buf_put_u8(&b->ops, OP_TRIM);
    fy_buf_put_u32(&b->ops, topic_id);
    fy_buf_put_u32(&b->ops, queue_id);
    fy_buf_put_u64(&b->ops, before);
}

void fy_wbatch_put_adapter(fy_wbatch *b, const char *adapter, const void *key, size_t klen,
                           const void *val, size_t vlen)
{
    fy_buf k = FY_BUF_INIT;
    named_key(&k, 'A', adapter, key, klen);
    put_op(b, &k, val, vlen);
    fy_buf_free(&k);
}

void fy_wbatch_del_adapter(fy_wbatch *b, const char *adapter, const void *key, size_t klen)
{
    fy_buf k = FY_BUF_INIT;
    named_key(&k, 'A', adapter, key, klen);
    del_op(b, k.data, k.len);
    fy_buf_free(&k);
}

/* OP_ERASE: topic id, flags, and a byte the writer sets to what the chunk left (ERASE_*). */
static void erase_op(fy_wbatch *b, uint32_t topic_id, uint8_t flags)
{
    fy_buf_put_u8(&b->ops, OP_ERASE);
    fy_buf_put_u32(&b->ops, topic_id);
    fy_buf_put_u8(&b->ops, flags);
    fy_buf_put_u8(&b->ops, 0);
    b->flags |= WB_ERASE;
}

/* OP_DEL_OFFSETS: the group's name (length, bytes). */
void fy_wbatch_del_group_offsets(fy_wbatch *b, const char *group)
{
    size_t n = strlen(group);
    fy_buf_put_u8(&b->ops, OP_DEL_OFFSETS);
    fy_buf_put_u32(&b->ops, (uint32_t)n);
    fy_buf_append(&b->ops, group, n);
    b->flags |= WB_DEL_OFFSETS;
}

void fy_wbatch_erase_topic(fy_wbatch *b, uint32_t topic_id, bool offsets)
{
    erase_op(b, topic_id, offsets ? ERASE_OFFSETS : 0);
    b->flags |= WB_BARRIER;
}

/* ---- The writer thread -------------------------------------------------------------------- */

/* An undo entry: the writer's next offset of a queue before this commit touched it. */
typedef struct undo {
    uint64_t qk;
    uint64_t next;
} undo;

typedef struct commit_ctx_wt {
    undo *undo;
    size_t nundo, capundo;
    fy_buf key; /* scratch for index keys */
    /* When the commit holds OP_DEL_OFFSETS: the offset keys (O ...) its batches put so far, as
     * u32 length and key (not in the database yet, so the walk of a group's keys misses them). */
    bool note_oputs;
    fy_buf oputs;
} commit_ctx_wt;

/* Remembers the writer's next offset of queue qk before this commit changes it. */
static void undo_push_wt(commit_ctx_wt *c, uint64_t qk, uint64_t next)
{
    if (c->nundo == c->capundo) {
        c->capundo = c->capundo ? c->capundo * 2 : 64;
        c->undo = fy_realloc(c->undo, c->capundo * sizeof(*c->undo));
    }
    c->undo[c->nundo++] = (undo){qk, next};
}

typedef struct forget_ctx {
    uint32_t topic_id;
    commit_ctx_wt *rollback;
} forget_ctx;

static bool forget_one(void *arg, uint64_t qk, uint64_t val)
{
    forget_ctx *x = arg;
    if (qk >> 32 != x->topic_id) {
        return false;
    }
    if (x->rollback) {
        undo_push_wt(x->rollback, qk, val);
    }
    return true;
}

/* Removes the queues of topic_id from a per-queue table (qmin, qmax, wnext), given one more than
 * the highest queue id it has of the topic: one lookup per queue id, or one pass over the table
 * when that is shorter (queue ids far apart). With the writer's commit (wnext), what goes is
 * noted there: a failed write puts it back. */
static void forget_queues(fy_u64map *m, uint32_t topic_id, uint64_t queues, commit_ctx_wt *rollback)
{
    forget_ctx x = {topic_id, rollback};
    if (queues > m->cap) {
        fy_u64map_del_if(m, forget_one, &x);
        return;
    }
    for (uint64_t q = 0; q < queues; q++) {
        uint64_t qk = qkey(topic_id, (uint32_t)q), *v = fy_u64map_find(m, qk);
        if (v) {
            if (rollback) {
                undo_push_wt(rollback, qk, *v);
            }
            fy_u64map_del(m, qk);
        }
    }
}

static uint64_t assign_offset_wt(fy_store *s, commit_ctx_wt *c, uint64_t qk)
{
    size_t n = s->wnext.n;
    uint64_t *next = fy_u64map_upsert(&s->wnext, qk, 0), off;
    undo_push_wt(c, qk, *next);
    off = (*next)++;
    if (s->wnext.n != n) {
        queue_seen(&s->wtqueues, qk); /* a queue new to the writer */
    }
    return off;
}

/* Adds (or, with del, removes) the K entries of each key of a record. Keys with a NUL byte
 * cannot be queried by name and are not indexed. */
static void index_keys_wt(fy_store *s, commit_ctx_wt *c, uint32_t topic_id, const uint8_t *rec,
                          size_t len, bool del)
{
    fy_record_view v;
    fy_slice key;
    if (fy_record_decode(rec, len, &v) != FY_OK) {
        return; /* validated when appended; cannot happen */
    }
    fy_record_iter it = fy_record_keys(&v);
    while (fy_record_key_next(&it, &key)) {
        if (memchr(key.p, 0, key.len)) {
            continue;
        }
        fy_buf_reset(&c->key);
        fy_buf_put_u8(&c->key, 'K');
        fy_buf_put_u32(&c->key, topic_id);
        fy_buf_append(&c->key, key.p, key.len);
        fy_buf_put_u8(&c->key, 0);
        fy_buf_put_u64(&c->key, v.store_ms);
        fy_buf_put_u32(&c->key, v.queue_id);
        fy_buf_put_u64(&c->key, v.queue_offset);
        if (del) {
            wb_del_wt(s, c->key.data, c->key.len);
        } else {
            leveldb_writebatch_put(s->wb, (const char *)c->key.data, c->key.len, "", 0);
        }
    }
}

/* Deletes the records of a queue below `before`, with their key index entries. */
static void trim_wt(fy_store *s, commit_ctx_wt *c, uint32_t topic_id, uint32_t queue_id,
                    uint64_t before)
{
    uint8_t from[MKEY_LEN], k[MKEY_LEN];
    leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
    mkey(from, topic_id, queue_id, 0);
    for (leveldb_iter_seek(it, (const char *)from, sizeof(from)); leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t klen;
        const uint8_t *key = (const uint8_t *)leveldb_iter_key(it, &klen);
        if (klen != MKEY_LEN || memcmp(key, from, 9) != 0 || fy_be64_get(key + 9) >= before) {
            break;
        }
        size_t vlen;
        const uint8_t *val = (const uint8_t *)leveldb_iter_value(it, &vlen);
        memcpy(k, key, MKEY_LEN);
        wb_del_wt(s, k, MKEY_LEN);
        index_keys_wt(s, c, topic_id, val, vlen, true);
    }
    leveldb_iter_destroy(it);
}

/* Deletes the keys starting with prefix from `at` on, one budget unit each. Returns true once
 * none is left; false when the budget ran out, with `at` set to the first key not deleted. */
static bool erase_prefix_wt(fy_store *s, leveldb_iterator_t *it, const uint8_t *prefix, size_t plen,
                            fy_buf *at, size_t *budget)
{
    for (leveldb_iter_seek(it, (const char *)at->data, at->len); leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t klen;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0) {
            return true;
        }
        if (*budget == 0) {
            fy_buf_reset(at);
            fy_buf_append(at, k, klen);
            return false;
        }
        wb_del_wt(s, k, klen);
        (*budget)--;
    }
    return true;
}

/* Deletes every group's committed offsets of topic_id (O group 0 topic_id queue_id) from `at`
 * on: the keys are ordered by group, so a seek per group finds its keys of the topic and one
 * more skips the rest of the group (a seek or a delete costs one budget unit). Returns like
 * erase_prefix_wt. */
static bool erase_offsets_wt(fy_store *s, leveldb_iterator_t *it, uint32_t topic_id, fy_buf *at,
                             size_t *budget)
{
    fy_buf to = FY_BUF_INIT;
    uint8_t tid[4];
    bool done = true;
    fy_be32_put(tid, topic_id);
    leveldb_iter_seek(it, (const char *)at->data, at->len);
    while (leveldb_iter_valid(it)) {
        size_t klen, glen, tail;
        const uint8_t *k = (const uint8_t *)leveldb_iter_key(it, &klen);
        const uint8_t *z;
        int cmp;
        if (klen == 0 || k[0] != 'O') {
            break;
        }
        if (*budget == 0) {
            fy_buf_reset(at);
            fy_buf_append(at, k, klen);
            done = false;
            break;
        }
        (*budget)--;
        z = memchr(k + 1, 0, klen - 1);
        if (!z) {
            leveldb_iter_next(it); /* not an offset key: cannot happen */
            continue;
        }
        glen = (size_t)(z - k) + 1; /* 'O', the group, its 0 */
        tail = klen - glen < 4 ? klen - glen : 4;
        cmp = memcmp(k + glen, tid, tail);
        if (cmp == 0 && tail == 4) {
            wb_del_wt(s, k, klen);
            leveldb_iter_next(it);
            continue;
        }
        fy_buf_reset(&to);
        fy_buf_append(&to, k, glen);
        if (cmp < 0 || (cmp == 0 && tail < 4)) {
            fy_buf_append(&to, tid, 4); /* this group's keys of the topic */
        } else {
            to.data[glen - 1] = 1; /* past this group's keys */
        }
        leveldb_iter_seek(it, (const char *)to.data, to.len);
    }
    fy_buf_free(&to);
    return done;
}

/* One chunk of a topic's erasing: deletes at most erase_chunk keys of the topic, its messages
 * (M), key index (K) and, with ERASE_OFFSETS, every group's offsets of it (O), in that order.
 * It reads the database, i.e. what earlier commits wrote: a first chunk is the first batch of
 * its commit (WB_BARRIER), and nothing is appended to a topic once its erasing has begun. The
 * first chunk also forgets the writer's next offsets of every queue it has of the topic. The E
 * record holds the flags and the first key not deleted yet: written while keys are left, deleted
 * with the last ones, read by the next chunk (and at open: load_ranges skips such a topic, and the
 * erasing goes on). Returns ERASE_MORE while keys are left and the next chunk should follow,
 * ERASE_STOPPED after a read error, ERASE_DONE at the end. */
static uint8_t erase_wt(fy_store *s, commit_ctx_wt *c, uint32_t topic_id, uint8_t flags)
{
    uint8_t ek[EKEY_LEN], mk[EKEY_LEN], kk[EKEY_LEN];
    fy_buf at = FY_BUF_INIT, rec = FY_BUF_INIT;
    size_t budget = s->erase_chunk;
    leveldb_iterator_t *it;
    char *lerr = NULL;
    bool done = true, stopped = false;

    topic_key(ek, 'E', topic_id);
    topic_key(mk, 'M', topic_id);
    topic_key(kk, 'K', topic_id);
    if (flags & ERASE_CONT) {
        size_t vlen = 0;
        char *v = leveldb_get(s->db, s->ropts, (const char *)ek, sizeof(ek), &vlen, &lerr);
        if (lerr) {
            /* The record stays: counted, and started again by the next recovery or open. */
            fy_log(ERROR, "store", "topic_id=%u msg=\"erasing a deleted topic stopped: %s\"",
                   topic_id, lerr);
            leveldb_free(lerr);
            return ERASE_STOPPED;
        }
        if (!v) {
            return ERASE_DONE; /* done already */
        }
        /* An empty record (cannot happen) starts over, offsets included. */
        flags = (uint8_t)(vlen > 0 ? v[0] & ERASE_OFFSETS : ERASE_OFFSETS) | ERASE_CONT;
        if (vlen > 1) {
            fy_buf_append(&at, v + 1, vlen - 1);
        }
        leveldb_free(v);
    } else {
        uint64_t *n = fy_u64map_find(&s->wtqueues, topic_id);
        forget_queues(&s->wnext, topic_id, n ? *n : 0, c); /* a failed write puts them back */
        fy_u64map_del(&s->wtqueues, topic_id);
    }
    if (at.len == 0) {
        fy_buf_append(&at, mk, sizeof(mk));
    }
    it = leveldb_create_iterator(s->db, s->scan_ropts);
    if (at.data[0] == 'M') {
        done = erase_prefix_wt(s, it, mk, sizeof(mk), &at, &budget);
        if (done) {
            fy_buf_reset(&at);
            fy_buf_append(&at, kk, sizeof(kk));
        }
    }
    if (done && at.data[0] == 'K') {
        done = erase_prefix_wt(s, it, kk, sizeof(kk), &at, &budget);
        if (done) {
            fy_buf_reset(&at);
            if (flags & ERASE_OFFSETS) {
                fy_buf_put_u8(&at, 'O');
            }
        }
    }
    if (done && at.len > 0 && at.data[0] == 'O') {
        done = erase_offsets_wt(s, it, topic_id, &at, &budget);
    }
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    if (lerr) {
        /* Start over at the next open: the record stays, without a place to go on from. */
        fy_log(ERROR, "store", "topic_id=%u msg=\"erasing a deleted topic stopped: %s\"", topic_id,
               lerr);
        leveldb_free(lerr);
        fy_buf_reset(&at);
        done = false;
        stopped = true;
    }
    if (!done) {
        fy_buf_put_u8(&rec, flags & ERASE_OFFSETS);
        fy_buf_append(&rec, at.data, at.len);
        leveldb_writebatch_put(s->wb, (const char *)ek, sizeof(ek), (const char *)rec.data,
                               rec.len);
    } else if (flags & ERASE_CONT) {
        wb_del_wt(s, ek, sizeof(ek));
    }
    fy_buf_free(&at);
    fy_buf_free(&rec);
    return stopped ? ERASE_STOPPED : done ? ERASE_DONE : ERASE_MORE;
}

/* Deletes every committed offset of a group (O group 0 ...): the keys in the database (what
 * earlier commits wrote), and those that batches ahead of this one in the same commit put
 * (c->oputs). Batches after it put theirs after these deletes: a group made again under the
 * name keeps them. A read error stops the walk (logged): the keys not reached stay. */
static void del_offsets_wt(fy_store *s, commit_ctx_wt *c, const uint8_t *group, size_t glen)
{
    fy_buf prefix = FY_BUF_INIT;
    fy_rd rd = fy_rd_make(c->oputs.data, c->oputs.len);
    leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->scan_ropts);
    char *lerr = NULL;
    fy_buf_put_u8(&prefix, 'O');
    fy_buf_append(&prefix, group, glen);
    fy_buf_put_u8(&prefix, 0);
    for (leveldb_iter_seek(it, (const char *)prefix.data, prefix.len); leveldb_iter_valid(it);
         leveldb_iter_next(it)) {
        size_t klen;
        const char *k = leveldb_iter_key(it, &klen);
        if (klen < prefix.len || memcmp(k, prefix.data, prefix.len) != 0) {
            break;
        }
        wb_del_wt(s, k, klen);
    }
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    if (lerr) {
        fy_log(ERROR, "store", "group=%.*s msg=\"deleting a group's offsets stopped: %s\"",
               (int)glen, (const char *)group, lerr);
        leveldb_free(lerr);
    }
    while (rd.left > 0 && !rd.bad) {
        uint32_t klen = fy_rd_u32(&rd);
        const uint8_t *k = fy_rd_take(&rd, klen);
        if (k && klen >= prefix.len && memcmp(k, prefix.data, prefix.len) == 0) {
            wb_del_wt(s, k, klen);
        }
    }
    fy_buf_free(&prefix);
}

/* The next sequence number (timers, transaction ids); a new block is reserved on disk, in the
 * same write, before the current one runs out, so numbers are never reused after a restart. */
static uint64_t next_seq_wt(fy_store *s)
{
    if (s->seq_next == s->seq_limit) {
        uint8_t v[8];
        s->seq_limit += SEQ_RESERVE;
        fy_be64_put(v, s->seq_limit);
        leveldb_writebatch_put(s->wb, "S", 1, (const char *)v, sizeof(v));
    }
    return s->seq_next++;
}

/* Replays one batch's operations into the WriteBatch. Returns bytes added. */
static size_t apply_batch_wt(fy_store *s, commit_ctx_wt *c, fy_wbatch *b, uint64_t now)
{
    fy_rd rd = fy_rd_make(b->ops.data, b->ops.len);
    size_t nappend = 0;
    while (rd.left > 0) {
        uint8_t kind = fy_rd_u8(&rd);
        switch (kind) {
        case OP_APPEND: {
            uint32_t topic_id = fy_rd_u32(&rd);
            uint32_t queue_id = fy_rd_u32(&rd);
            uint8_t has_keys = fy_rd_u8(&rd);
            uint32_t len = fy_rd_u32(&rd);
            uint8_t *rec = (uint8_t *)fy_rd_take(&rd, len);
            uint8_t k[MKEY_LEN];
            uint64_t off = assign_offset_wt(s, c, qkey(topic_id, queue_id));
            if (has_keys == APPEND_REF && rec && len >= 12) {
                uint32_t ref = fy_be32_get(rec + len - 12);
                if (ref < nappend) {
                    fy_be32_put(rec + len - 12, b->res[ref].queue_id);
                    fy_be64_put(rec + len - 8, b->res[ref].offset);
                }
                has_keys = 0;
            }
            fy_record_set_location(rec, len, queue_id, off, now);
            mkey(k, topic_id, queue_id, off);
            leveldb_writebatch_put(s->wb, (const char *)k, sizeof(k), (const char *)rec, len);
            if (has_keys) {
                index_keys_wt(s, c, topic_id, rec, len, false);
            }
            b->res[nappend].queue_id = queue_id;
            b->res[nappend].offset = off;
            b->res[nappend].store_ms = now;
            nappend++;
            break;
        }
        case OP_PUT: {
            uint32_t klen = fy_rd_u32(&rd);
            const uint8_t *k = fy_rd_take(&rd, klen);
            uint32_t vlen = fy_rd_u32(&rd);
            const uint8_t *v = fy_rd_take(&rd, vlen);
            leveldb_writebatch_put(s->wb, (const char *)k, klen, (const char *)v, vlen);
            if (c->note_oputs && k && klen > 0 && k[0] == 'O') {
                fy_buf_put_u32(&c->oputs, klen);
                fy_buf_append(&c->oputs, k, klen);
            }
            break;
        }
        case OP_DEL: {
            uint32_t klen = fy_rd_u32(&rd);
            const uint8_t *k = fy_rd_take(&rd, klen);
            wb_del_wt(s, k, klen);
            break;
        }
        case OP_TIMER: {
            uint64_t when = fy_rd_u64(&rd);
            uint32_t len = fy_rd_u32(&rd);
            const uint8_t *rec = fy_rd_take(&rd, len);
            uint8_t k[17];
            uint64_t seq = next_seq_wt(s);
            b->res[nappend].queue_id = UINT32_MAX;
            b->res[nappend].offset = seq;
            b->res[nappend].store_ms = when;
            nappend++;
            tkey(k, when, seq);
            leveldb_writebatch_put(s->wb, (const char *)k, sizeof(k), (const char *)rec, len);
            break;
        }
        case OP_HALF: {
            uint32_t total = fy_rd_u32(&rd);
            uint8_t *val = (uint8_t *)fy_rd_take(&rd, total);
            uint8_t k[HKEY_LEN];
            uint64_t tx_id;
            uint32_t mlen;
            if (!val) {
                break;
            }
            tx_id = next_seq_wt(s);
            mlen = fy_be32_get(val);
            /* The record's header says where it waits: no queue, the transaction id, and the
             * time it was stored (the check-back clock starts there). */
            fy_record_set_location(val + 4 + mlen, total - 4 - mlen, UINT32_MAX, tx_id, now);
            b->res[nappend].queue_id = UINT32_MAX;
            b->res[nappend].offset = tx_id;
            b->res[nappend].store_ms = now;
            nappend++;
            hkey(k, tx_id);
            leveldb_writebatch_put(s->wb, (const char *)k, sizeof(k), (const char *)val, total);
            break;
        }
        case OP_TRIM: {
            uint32_t topic_id = fy_rd_u32(&rd);
            uint32_t queue_id = fy_rd_u32(&rd);
            uint64_t before = fy_rd_u64(&rd);
            trim_wt(s, c, topic_id, queue_id, before);
            break;
        }
        case OP_ERASE: {
            uint32_t topic_id = fy_rd_u32(&rd);
            uint8_t flags = fy_rd_u8(&rd);
            uint8_t *more = (uint8_t *)fy_rd_take(&rd, 1);
            if (more) {
                *more = erase_wt(s, c, topic_id, flags);
            }
            break;
        }
        case OP_DEL_OFFSETS: {
            uint32_t n = fy_rd_u32(&rd);
            const uint8_t *name = fy_rd_take(&rd, n);
            if (name) {
                del_offsets_wt(s, c, name, n);
            }
            break;
        }
        default:
            rd.bad = true; /* our own encoding: cannot happen */
            break;
        }
        if (rd.bad) {
            break;
        }
    }
    return b->ops.len;
}

static void rollback_wt(fy_store *s, commit_ctx_wt *c)
{
    for (size_t i = c->nundo; i-- > 0;) {
        *fy_u64map_upsert(&s->wnext, c->undo[i].qk, 0) = c->undo[i].next;
        queue_seen(&s->wtqueues, c->undo[i].qk); /* an erasing may have forgotten it */
    }
}

/* Takes queued batches from the head of the queue, up to max_commit_bytes (at least one), and
 * never a WB_BARRIER batch after the first. */
static fy_wbatch *take_group_locked(fy_store *s)
{
    fy_wbatch *head = s->q_head, *last = head;
    size_t bytes = head->ops.len;
    while (last->next && !(last->next->flags & WB_BARRIER) &&
           bytes + last->next->ops.len <= s->max_commit_bytes) {
        last = last->next;
        bytes += last->ops.len;
    }
    s->q_head = last->next;
    if (!s->q_head) {
        s->q_tail = NULL;
    }
    last->next = NULL;
    return head;
}

/* Hands written batches back to the loop and ends the commit (clears writer_busy). On the loop
 * thread itself (inline) the completion event is activated directly, without the eventfd. */
static void post_done_wt(fy_store *s, fy_wbatch *group, bool on_loop)
{
    fy_wbatch *last = group;
    bool was_empty;
    while (last->next) {
        last = last->next;
    }
    pthread_mutex_lock(&s->mu);
    was_empty = s->done_head == NULL;
    if (s->done_tail) {
        s->done_tail->next = group;
    } else {
        s->done_head = group;
    }
    s->done_tail = last;
    s->writer_busy = false;
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
    if (on_loop) {
        event_active(s->done_local_ev, EV_READ, 0);
    } else if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(s->efd, &one, sizeof(one));
        (void)w; /* the counter cannot overflow; a failure leaves it readable anyway */
    }
}

/* Writes a group of batches as one LevelDB write. Runs on the writer thread, or inline on the
 * loop (on_loop) when the writer is idle; writer_busy keeps the two apart. */
static void commit_group_wt(fy_store *s, commit_ctx_wt *c, fy_wbatch *group, bool on_loop)
{
    uint64_t now = fy_wall_ms();
    size_t bytes = 0, appends = 0, nbatches = 0;
    char *lerr = NULL;
    int status = FY_OK;

    if (now < s->last_ms) {
        now = s->last_ms;
    }
    s->last_ms = now;

    if (!atomic_load(&s->healthy)) {
        status = -FY_EUNHEALTHY;
    } else {
        uint64_t t0, seq_next0 = s->seq_next, seq_limit0 = s->seq_limit;
        c->nundo = 0;
        leveldb_writebatch_clear(s->wb);
        s->wb_dels = 0;
        c->note_oputs = false;
        fy_buf_reset(&c->oputs);
        for (fy_wbatch *b = group; b && !c->note_oputs; b = b->next) {
            c->note_oputs = (b->flags & WB_DEL_OFFSETS) != 0;
        }
        for (fy_wbatch *b = group; b; b = b->next) {
            bytes += apply_batch_wt(s, c, b, now);
            appends += b->nappends;
            nbatches++;
        }
        t0 = fy_mono_ns();
        leveldb_write(s->db, s->wopts, s->wb, &lerr);
        t0 = fy_mono_ns() - t0;
        atomic_fetch_add(&s->st_commit_ns, t0);
        if (lerr) {
            status = map_leveldb_error(lerr);
            rollback_wt(s, c);
            s->seq_next = seq_next0;
            s->seq_limit = seq_limit0;
            pthread_mutex_lock(&s->mu);
            snprintf(s->last_error, sizeof(s->last_error), "%s", lerr);
            pthread_mutex_unlock(&s->mu);
            atomic_store(&s->healthy, false);
            atomic_fetch_add(&s->st_write_errors, 1);
            /* LevelDB refuses every write after a failed one (its background error is
             * sticky): the loop reopens the database once there is room again. */
            fy_log(ERROR, "store",
                   "err=%s batches=%zu msg=\"write failed, writes refused until the store "
                   "recovers: %s\"",
                   fy_errname(status), nbatches, lerr);
            leveldb_free(lerr);
        } else {
            atomic_fetch_add(&s->st_commits, 1);
            observe_commit_wt(s, t0, appends);
            atomic_fetch_add(&s->st_appends, appends);
            atomic_fetch_add(&s->st_bytes, bytes);
            atomic_fetch_add(&s->st_deletes, s->wb_dels);
        }
    }
    for (fy_wbatch *b = group; b; b = b->next) {
        b->status = status;
    }
    atomic_store_explicit(&s->wnext_n, s->wnext.n, memory_order_relaxed);
    post_done_wt(s, group, on_loop);
}

static void *writer_main_wt(void *arg)
{
    fy_store *s = arg;
    commit_ctx_wt c = {0};
    for (;;) {
        fy_wbatch *group;
        pthread_mutex_lock(&s->mu);
        while ((!s->q_head || s->held || s->recovering) && !s->stopping) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        if (!s->q_head) {
            pthread_mutex_unlock(&s->mu);
            break; /* stopping and drained */
        }
        group = take_group_locked(s);
        s->writer_busy = true;
        pthread_mutex_unlock(&s->mu);
        commit_group_wt(s, &c, group, false);
    }
    fy_free(c.undo);
    fy_buf_free(&c.key);
    fy_buf_free(&c.oputs);
    return NULL;
}

/* ---- Completions on the loop -------------------------------------------------------------- */

/* For a written batch: moves the queue ranges its appends and trims changed, and follows up its
 * erase chunks (adding the next chunk of each erasing with keys left to *next). For a failed
 * one (nothing of it was written), only the erase chunks: those that went on with an erasing
 * leave it to a recovery or the next open (the E record is there); one that began an erasing did
 * not begin it. */
static void complete_ops(fy_store *s, fy_wbatch *b, fy_wbatch **next)
{
    fy_rd rd = fy_rd_make(b->ops.data, b->ops.len);
    size_t nappend = 0;
    bool ok = b->status == FY_OK;
    while (rd.left > 0 && !rd.bad) {
        switch (fy_rd_u8(&rd)) {
        case OP_APPEND: {
            uint32_t topic_id = fy_rd_u32(&rd);
            fy_rd_take(&rd, 5);
            fy_rd_take(&rd, fy_rd_u32(&rd));
            if (!ok) {
                break;
            }
            const append_res *r = &b->res[nappend++];
            uint64_t qk = qkey(topic_id, r->queue_id);
            size_t n = s->qmax.n;
            uint64_t *max = fy_u64map_upsert(&s->qmax, qk, 0);
            if (r->offset + 1 > *max) {
                *max = r->offset + 1;
            }
            fy_u64map_upsert(&s->qmin, qk, r->offset);
            if (s->qmax.n != n) {
                queue_seen(&s->tqueues, qk);
            }
            break;
        }
        case OP_PUT:
            fy_rd_take(&rd, fy_rd_u32(&rd));
            fy_rd_take(&rd, fy_rd_u32(&rd));
            break;
        case OP_DEL:
        case OP_DEL_OFFSETS:
            fy_rd_take(&rd, fy_rd_u32(&rd));
            break;
        case OP_TIMER:
            fy_rd_take(&rd, 8);
            fy_rd_take(&rd, fy_rd_u32(&rd));
            nappend++; /* a result slot, but no queue */
            break;
        case OP_HALF:
            fy_rd_take(&rd, fy_rd_u32(&rd));
            nappend++;
            break;
        case OP_TRIM: {
            uint32_t topic_id = fy_rd_u32(&rd);
            uint32_t queue_id = fy_rd_u32(&rd);
            uint64_t before = fy_rd_u64(&rd);
            uint64_t qk = qkey(topic_id, queue_id);
            uint64_t *max = fy_u64map_find(&s->qmax, qk);
            uint64_t *min;
            if (!ok || !max) {
                break; /* not written, or a queue never written (or erased) */
            }
            min = fy_u64map_upsert(&s->qmin, qk, 0);
            if (before > *max) {
                before = *max;
            }
            if (before > *min) {
                *min = before;
            }
            break;
        }
        case OP_ERASE: {
            uint32_t topic_id = fy_rd_u32(&rd);
            uint8_t flags = fy_rd_u8(&rd);
            uint8_t more = fy_rd_u8(&rd);
            uint64_t *st = fy_u64map_find(&s->erasing, topic_id);
            if (!ok) {
                if (st) {
                    *st = ERASING_STALLED;
                }
                break;
            }
            if (!(flags & ERASE_CONT)) {
                /* Every queue the store has of it, not only those its configuration names:
                 * a topic may have had more. */
                uint64_t *n = fy_u64map_find(&s->tqueues, topic_id);
                forget_queues(&s->qmin, topic_id, n ? *n : 0, NULL);
                forget_queues(&s->qmax, topic_id, n ? *n : 0, NULL);
                fy_u64map_del(&s->tqueues, topic_id);
            }
            if (more == ERASE_DONE) {
                fy_u64map_del(&s->erasing, topic_id);
            } else if (more == ERASE_STOPPED || s->stopping) {
                *fy_u64map_upsert(&s->erasing, topic_id, 0) = ERASING_STALLED; /* next open */
            } else {
                *fy_u64map_upsert(&s->erasing, topic_id, 0) = ERASING_QUEUED;
                if (!*next) {
                    *next = fy_wbatch_new();
                    (*next)->flags = WB_INTERNAL;
                }
                erase_op(*next, topic_id, ERASE_CONT);
            }
            break;
        }
        default:
            rd.bad = true;
            break;
        }
    }
}

/* Queues the next chunk of every erasing that has none on its way (after open and recovery). */
static void erasing_resume(fy_store *s)
{
    fy_wbatch *b = NULL;
    for (size_t i = 0; i < s->erasing.cap; i++) {
        if (s->erasing.used[i] && s->erasing.vals[i] == ERASING_STALLED) {
            if (!b) {
                b = fy_wbatch_new();
                b->flags = WB_INTERNAL;
            }
            erase_op(b, (uint32_t)s->erasing.keys[i], ERASE_CONT);
            s->erasing.vals[i] = ERASING_QUEUED;
        }
    }
    if (b) {
        fy_store_submit(s, b, NULL, NULL);
    }
}

static void run_completions(fy_store *s)
{
    fy_wbatch *list, *next = NULL;
    pthread_mutex_lock(&s->mu);
    list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->mu);
    while (list) {
        fy_wbatch *b = list;
        list = b->next;
        if (b->status == FY_OK || (b->flags & WB_ERASE)) {
            complete_ops(s, b, &next);
        }
        atomic_fetch_add(b->status == FY_OK ? &s->st_batches : &s->st_failed, 1);
        if (!(b->flags & WB_INTERNAL)) {
            atomic_fetch_sub(&s->st_pending, 1);
        }
        if (b->cb) {
            b->cb(b->arg, b->status, b);
        }
        fy_wbatch_free(b);
    }
    if (next) {
        fy_store_submit(s, next, NULL, NULL); /* erasings go on */
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    fy_store *s = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r; /* EAGAIN: another wake-up already consumed it; the list is checked regardless */
    run_completions(s);
}

static void on_done_local(evutil_socket_t fd, short what, void *arg)
{
    run_completions(arg);
}

void fy_store_submit(fy_store *s, fy_wbatch *b, fy_wbatch_cb cb, void *arg)
{
    b->cb = cb;
    b->arg = arg;
    b->next = NULL;
    if (!(b->flags & WB_INTERNAL)) {
        atomic_fetch_add(&s->st_pending, 1);
    }
    pthread_mutex_lock(&s->mu);
    if (s->flush == FY_FLUSH_ASYNC && !s->q_head && !s->writer_busy && !s->stopping && !s->held &&
        !s->recovering && s->inline_ctx && fy_mono_ms() >= s->inline_off_until_ms &&
        !(b->flags & (WB_ERASE | WB_DEL_OFFSETS))) {
        /* The writer is idle and nothing waits: write now on the loop. Under flush=async a
         * LevelDB write is a write(2) into the log and a memtable insert (microseconds). One
         * that is slow because the thread slept in it (LevelDB throttling behind compaction, a
         * full memtable, the disk: a voluntary context switch) leaves the writes to the writer
         * for a while, so the loop never waits on the disk twice in a row. One slow without
         * sleeping lost its CPU (another task, or the hypervisor): the writer thread would
         * fare no better, and each hand-off costs a wake-up on the other CPU. An erase chunk
         * (thousands of deletes) or a group's offset deletion (a walk of its keys, which may
         * read the disk) is never written here. */
        struct rusage r0, r1;
        uint64_t t0, took_us;
        bool counted;
        s->writer_busy = true;
        pthread_mutex_unlock(&s->mu);
        counted = getrusage(RUSAGE_THREAD, &r0) == 0;
        t0 = fy_mono_ns();
        atomic_fetch_add(&s->st_inline, 1);
        commit_group_wt(s, s->inline_ctx, b, true);
        took_us = (fy_mono_ns() - t0) / 1000;
        if (took_us > INLINE_SLOW_US) {
            atomic_fetch_add(&s->st_inline_slow, 1);
            if (!counted || getrusage(RUSAGE_THREAD, &r1) != 0 || r1.ru_nvcsw != r0.ru_nvcsw) {
                atomic_fetch_add(&s->st_inline_paused, 1);
                s->inline_off_until_ms = fy_mono_ms() + INLINE_PAUSE_MS;
            }
        }
        return;
    }
    if (s->q_tail) {
        s->q_tail->next = b;
    } else {
        s->q_head = b;
    }
    s->q_tail = b;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void fy_store_hold(fy_store *s, bool hold)
{
    pthread_mutex_lock(&s->mu);
    s->held = hold;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- Open and close ----------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path)) {
        return -FY_EINVAL;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] == '/' || path[i] == '\0') {
            char c = path[i];
            path[i] = '\0';
            if (mkdir(path, 0755) != 0 && errno != EEXIST) {
                return -FY_EIO;
            }
            path[i] = c;
        }
    }
    return FY_OK;
}

/* Notes the topics whose erasing an earlier run (or a failed write) left unfinished: their E
 * records. The erasing goes on once the writer runs (erasing_resume). */
static int load_erasing(fy_store *s, char *err, size_t errlen)
{
    leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
    char *lerr = NULL;
    for (leveldb_iter_seek(it, "E", 1); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen;
        const uint8_t *key = (const uint8_t *)leveldb_iter_key(it, &klen);
        if (klen == 0 || key[0] != 'E') {
            break;
        }
        if (klen == EKEY_LEN) {
            fy_u64map_upsert(&s->erasing, fy_be32_get(key + 1), ERASING_STALLED);
        }
    }
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    if (lerr) {
        return take_error(lerr, err, errlen);
    }
    return FY_OK;
}

/* Reads the first and last offset of every queue into the range tables: three seeks per queue,
 * whatever the number of messages. The queues of a topic being erased are skipped: they are
 * gone as far as anyone reading the store is concerned. */
static int load_ranges(fy_store *s, char *err, size_t errlen)
{
    leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
    char *lerr = NULL;
    uint8_t k[MKEY_LEN];
    leveldb_iter_seek(it, "M", 1);
    while (leveldb_iter_valid(it)) {
        size_t klen;
        const uint8_t *key = (const uint8_t *)leveldb_iter_key(it, &klen);
        uint32_t topic_id, queue_id;
        uint64_t first, last;
        if (klen == 0 || key[0] != 'M') {
            break;
        }
        if (klen != MKEY_LEN) {
            snprintf(err, errlen, "corrupt message key of %zu bytes", klen);
            leveldb_iter_destroy(it);
            return -FY_ECORRUPT;
        }
        topic_id = fy_be32_get(key + 1);
        queue_id = fy_be32_get(key + 5);
        first = fy_be64_get(key + 9);
        if (fy_u64map_find(&s->erasing, topic_id)) {
            if (topic_id == UINT32_MAX) {
                break;
            }
            mkey(k, topic_id + 1, 0, 0);
            leveldb_iter_seek(it, (const char *)k, sizeof(k));
            continue;
        }
        /* Seek just past this queue, then step back to its last message. */
        if (queue_id == UINT32_MAX) {
            mkey(k, topic_id + 1, 0, 0);
        } else {
            mkey(k, topic_id, queue_id + 1, 0);
        }
        leveldb_iter_seek(it, (const char *)k, sizeof(k));
        if (leveldb_iter_valid(it)) {
            leveldb_iter_prev(it);
        } else {
            leveldb_iter_seek_to_last(it);
        }
        key = (const uint8_t *)leveldb_iter_key(it, &klen);
        last = (klen == MKEY_LEN) ? fy_be64_get(key + 9) : first;
        {
            /* Store times never go backwards, even if the wall clock did between runs. */
            size_t vlen;
            const char *val = leveldb_iter_value(it, &vlen);
            uint64_t ms;
            if (fy_record_peek_store_ms(val, vlen, &ms) == FY_OK && ms > s->last_ms) {
                s->last_ms = ms;
            }
        }
        *fy_u64map_upsert(&s->qmin, qkey(topic_id, queue_id), 0) = first;
        *fy_u64map_upsert(&s->qmax, qkey(topic_id, queue_id), 0) = last + 1;
        *fy_u64map_upsert(&s->wnext, qkey(topic_id, queue_id), 0) = last + 1;
        queue_seen(&s->tqueues, qkey(topic_id, queue_id));
        queue_seen(&s->wtqueues, qkey(topic_id, queue_id));
        leveldb_iter_seek(it, (const char *)k, sizeof(k));
    }
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    if (lerr) {
        return take_error(lerr, err, errlen);
    }
    return FY_OK;
}

/* Checks (or writes, for a new database) the format version, and loads the timer sequence. */
static int check_meta(fy_store *s, char *err, size_t errlen)
{
    char *lerr = NULL;
    size_t vlen = 0;
    char *v = leveldb_get(s->db, s->ropts, "V", 1, &vlen, &lerr);
    if (lerr) {
        return take_error(lerr, err, errlen);
    }
    if (!v) {
        leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
        bool empty;
        uint8_t ver[4];
        leveldb_iter_seek_to_first(it);
        empty = !leveldb_iter_valid(it);
        leveldb_iter_destroy(it);
        if (!empty) {
            snprintf(err, errlen, "database has data but no format version: not a ferry store");
            return -FY_ECORRUPT;
        }
        fy_be32_put(ver, STORE_FORMAT_VERSION);
        leveldb_put(s->db, s->wopts, "V", 1, (const char *)ver, sizeof(ver), &lerr);
        if (lerr) {
            return take_error(lerr, err, errlen);
        }
    } else {
        uint32_t ver = vlen == 4 ? fy_be32_get((const uint8_t *)v) : 0;
        leveldb_free(v);
        if (ver == 0) {
            snprintf(err, errlen, "corrupt format version record");
            return -FY_ECORRUPT;
        }
        if (ver > STORE_FORMAT_VERSION) {
            snprintf(err, errlen, "store format %u is newer than this ferryd (%u)", ver,
                     STORE_FORMAT_VERSION);
            return -FY_EVERSION;
        }
    }
    v = leveldb_get(s->db, s->ropts, "S", 1, &vlen, &lerr);
    if (lerr) {
        return take_error(lerr, err, errlen);
    }
    /* Sequence numbers start at 1: 0 never names a timer or a transaction. */
    s->seq_next = s->seq_limit = (v && vlen == 8) ? fy_be64_get((const uint8_t *)v) : 1;
    leveldb_free(v);
    return FY_OK;
}

/* Appends to err the last line of LevelDB's own LOG that names a file it found damaged
 * ("000005.log: dropping 120 bytes; Corruption: checksum mismatch"): LevelDB's status for a
 * damaged log does not say which file. */
static void add_log_hint(const char *dir, char *err, size_t errlen)
{
    char path[4096], buf[16384], found[512] = "";
    FILE *f;
    long size;
    size_t n, used = strlen(err);
    snprintf(path, sizeof(path), "%s/LOG", dir);
    f = fopen(path, "r");
    if (!f) {
        return;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size > (long)sizeof(buf) - 1 ? size - (long)sizeof(buf) + 1 : 0, SEEK_SET);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(line, "dropping") || strstr(line, "Corruption") || strstr(line, "IO error")) {
            char *msg = strchr(line, ' '); /* skip LevelDB's time stamp and thread id */
            msg = msg ? strchr(msg + 1, ' ') : NULL;
            snprintf(found, sizeof(found), "%s", msg ? msg + 1 : line);
        }
    }
    if (found[0] && used < errlen) {
        snprintf(err + used, errlen - used, " (in %s/LOG: %s)", dir, found);
    }
}

/* Opens the LevelDB database in s->dir and loads what the store keeps in memory (format
 * version, sequence, queue ranges). On failure s->db is NULL and err says why, naming the
 * file when LevelDB does. */
static int open_db(fy_store *s, char *err, size_t errlen)
{
    char *lerr = NULL;
    int rc;
    s->db = leveldb_open(s->options, s->dir, &lerr);
    if (lerr) {
        rc = map_leveldb_error(lerr);
        if (rc == -FY_ELOCKED) {
            snprintf(err, errlen, "data directory %s is in use by another ferryd (%s)", s->dir,
                     lerr);
        } else {
            snprintf(err, errlen, "cannot open store in %s: %s", s->dir, lerr);
            add_log_hint(s->dir, err, errlen);
        }
        leveldb_free(lerr);
        s->db = NULL;
        return rc;
    }
    rc = check_meta(s, err, errlen);
    if (rc == FY_OK) {
        rc = load_erasing(s, err, errlen);
    }
    if (rc == FY_OK) {
        rc = load_ranges(s, err, errlen);
        atomic_store_explicit(&s->wnext_n, s->wnext.n, memory_order_relaxed);
    }
    if (rc != FY_OK) {
        leveldb_close(s->db);
        s->db = NULL;
    }
    return rc;
}

/* ---- Recovery after a failed write --------------------------------------------------------
 * A failed LevelDB write (disk full, I/O error) leaves the database refusing every later write
 * (LevelDB's background error is sticky: the log's tail is in doubt). Nothing of the failed
 * write was acknowledged, and reads go on from the open database. Once the file system has room
 * for what a reopen writes (the log turned into a table), the loop waits for the writer to be
 * idle, closes and reopens the database, and reloads the queue ranges from it: acknowledged
 * data is all in the log or the tables LevelDB reopens; a failed write's partial record at the
 * log's end is dropped by LevelDB as a torn tail. */

/* Bytes in the LevelDB log files of dir: what a reopen writes out as a table (at most). */
static uint64_t log_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t total = 0;
    if (!d) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        struct stat st;
        char path[4096];
        if (n < 5 || strcmp(e->d_name + n - 4, ".log") != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0) {
            total += (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return total;
}

/* Writes, syncs and removes a small file in dir: can the file system take writes again (an I/O
 * error that persists, or a full disk statvfs does not tell about)? Closing the database to find
 * out would stop reads too should the reopen fail. */
static int probe_write(const char *dir, char *why, size_t whylen)
{
    char path[4096];
    static const char block[RECOVER_PROBE_BYTES];
    int fd, rc = FY_OK;
    snprintf(path, sizeof(path), "%s/ferry-probe.tmp", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, whylen, "%.512s: %.200s", path, strerror(errno));
        return -FY_EIO;
    }
    if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fdatasync(fd) != 0) {
        snprintf(why, whylen, "%.512s: %.200s", path, strerror(errno));
        rc = errno == ENOSPC ? -FY_ENOSPC : -FY_EIO;
    }
    close(fd);
    unlink(path);
    return rc;
}

static int recover_now(fy_store *s, bool force)
{
    char err[1024];
    struct statvfs vfs;
    uint64_t need = log_bytes(s->dir) + RECOVER_MARGIN, avail = 0, now = fy_wall_ms();
    int rc;

    if (atomic_load(&s->healthy)) {
        return FY_OK;
    }
    if (statvfs(s->dir, &vfs) == 0) {
        avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    }
    if (avail < need && !force) {
        if (now >= s->recover_next_log_ms) {
            s->recover_next_log_ms = now + 30000;
            fy_log(WARN, "store",
                   "dir=%s free=%llu need=%llu msg=\"writes refused: waiting for free space to "
                   "reopen the store\"",
                   s->dir, (unsigned long long)avail, (unsigned long long)need);
        }
        return -FY_ENOSPC;
    }
    rc = probe_write(s->dir, err, sizeof(err));
    if (rc != FY_OK && !force) {
        if (now >= s->recover_next_log_ms) {
            s->recover_next_log_ms = now + 30000;
            fy_log(WARN, "store",
                   "dir=%s err=%s msg=\"writes refused: the data directory does "
                   "not take writes yet: %s\"",
                   s->dir, fy_errname(rc), err);
        }
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    s->recovering = true;
    while (s->writer_busy) {
        pthread_cond_wait(&s->idle_cv, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);

    if (s->db) {
        leveldb_close(s->db);
        s->db = NULL;
    }
    err[0] = '\0';
    rc = open_db(s, err, sizeof(err));

    pthread_mutex_lock(&s->mu);
    s->recovering = false;
    if (rc == FY_OK) {
        s->last_error[0] = '\0';
        atomic_store(&s->healthy, true);
    } else {
        snprintf(s->last_error, sizeof(s->last_error), "reopen failed: %.200s", err);
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (rc == FY_OK) {
        atomic_fetch_add(&s->st_recoveries, 1);
        erasing_resume(s);
        fy_log(WARN, "store",
               "dir=%s unhealthy_ms=%llu queues=%zu msg=\"store recovered: writes "
               "accepted again\"",
               s->dir,
               (unsigned long long)(s->unhealthy_since_ms ? now - s->unhealthy_since_ms : 0),
               s->qmax.n);
        s->unhealthy_since_ms = 0;
        s->recover_next_log_ms = 0;
    } else {
        atomic_fetch_add(&s->st_recover_failures, 1);
        if (now >= s->recover_next_log_ms) {
            s->recover_next_log_ms = now + 30000;
            fy_log(ERROR, "store",
                   "dir=%s err=%s msg=\"reopen failed, reads and writes refused "
                   "until it succeeds: %s\"",
                   s->dir, fy_errname(rc), err);
        }
    }
    return rc == FY_OK ? FY_OK : -FY_EUNHEALTHY;
}

static void on_recover_tick(evutil_socket_t fd, short what, void *arg)
{
    fy_store *s = arg;
    if (atomic_load(&s->healthy)) {
        return;
    }
    if (s->unhealthy_since_ms == 0) {
        s->unhealthy_since_ms = fy_wall_ms();
    }
    recover_now(s, false);
}

int fy_store_recover(fy_store *s)
{
    if (!atomic_load(&s->healthy) && s->unhealthy_since_ms == 0) {
        s->unhealthy_since_ms = fy_wall_ms();
    }
    return recover_now(s, false);
}

int fy_store_open(const fy_store_opts *opts, struct event_base *base, fy_store **out, char *err,
                  size_t errlen)
{
    fy_store *s = FY_NEW(fy_store);
    int rc;

    err[0] = '\0';
    s->efd = -1;
    s->flush = opts->flush;
    s->max_commit_bytes = opts->max_commit_bytes ? opts->max_commit_bytes : 16u << 20;
    s->erase_chunk = opts->erase_chunk ? opts->erase_chunk : ERASE_CHUNK;
    atomic_init(&s->healthy, true);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);

    rc = mkdir_p(opts->dir);
    if (rc != FY_OK) {
        snprintf(err, errlen, "cannot create data directory %s: %s", opts->dir, strerror(errno));
        goto fail;
    }
    s->options = leveldb_options_create();
    s->cache = leveldb_cache_create_lru(opts->cache_bytes ? opts->cache_bytes : 64u << 20);
    s->filter = leveldb_filterpolicy_create_bloom(10);
    leveldb_options_set_create_if_missing(s->options, 1);
    leveldb_options_set_paranoid_checks(s->options, 1);
    leveldb_options_set_cache(s->options, s->cache);
    leveldb_options_set_filter_policy(s->options, s->filter);
    leveldb_options_set_write_buffer_size(s->options,
                                          opts->write_buffer ? opts->write_buffer : 64u << 20);
    leveldb_options_set_max_file_size(s->options, 64u << 20);
    leveldb_options_set_max_open_files(s->options, 1000);
    s->ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(s->ropts, 1);
    s->scan_ropts = leveldb_readoptions_create();
    leveldb_readoptions_set_verify_checksums(s->scan_ropts, 1);
    leveldb_readoptions_set_fill_cache(s->scan_ropts, 0);
    s->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(s->wopts, opts->flush == FY_FLUSH_SYNC);
    s->sync = opts->flush == FY_FLUSH_SYNC;

    s->dir = fy_strdup(opts->dir);
    s->last_ms = fy_wall_ms();
    rc = open_db(s, err, errlen);
    if (rc != FY_OK) {
        goto fail;
    }
    s->wb = leveldb_writebatch_create();
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        rc = -FY_EIO;
        goto fail;
    }
    s->done_ev = event_new(base, s->efd, EV_READ | EV_PERSIST, on_done, s);
    s->done_local_ev = event_new(base, -1, 0, on_done_local, s);
    if (opts->recover_every_ms >= 0) {
        int ms = opts->recover_every_ms ? opts->recover_every_ms : RECOVER_EVERY_MS;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        s->recover_ev = event_new(base, -1, EV_PERSIST, on_recover_tick, s);
        if (!s->recover_ev || event_add(s->recover_ev, &tv) != 0) {
            snprintf(err, errlen, "cannot register the store recovery timer");
            rc = -FY_EIO;
            goto fail;
        }
    }
    if (!s->done_ev || !s->done_local_ev || event_add(s->done_ev, NULL) != 0) {
        snprintf(err, errlen, "cannot register the store completion event");
        rc = -FY_EIO;
        goto fail;
    }
    if (pthread_create(&s->writer, NULL, writer_main_wt, s) != 0) {
        snprintf(err, errlen, "cannot start the store writer thread");
        rc = -FY_EIO;
        goto fail;
    }
    s->writer_started = true;
    s->inline_ctx = FY_NEW(commit_ctx_wt);
    fy_log(INFO, "store", "dir=%s flush=%s queues=%zu erasing=%zu msg=\"store open\"", opts->dir,
           opts->flush == FY_FLUSH_SYNC ? "sync" : "async", s->qmax.n, s->erasing.n);
    erasing_resume(s);
    *out = s;
    return FY_OK;
fail:
    fy_store_close(s);
    return rc;
}

void fy_store_close(fy_store *s)
{
    if (!s) {
        return;
    }
    if (s->writer_started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->writer, NULL);
        run_completions(s);
    }
    if (s->db && s->flush == FY_FLUSH_ASYNC && atomic_load(&s->healthy)) {
        /* An empty synced write makes the log, and everything acknowledged before, durable. */
        leveldb_writeoptions_t *w = leveldb_writeoptions_create();
        leveldb_writebatch_t *empty = leveldb_writebatch_create();
        char *lerr = NULL;
        leveldb_writeoptions_set_sync(w, 1);
        leveldb_write(s->db, w, empty, &lerr);
        if (lerr) {
            fy_log(ERROR, "store", "msg=\"final flush failed: %s\"", lerr);
            leveldb_free(lerr);
        }
        leveldb_writebatch_destroy(empty);
        leveldb_writeoptions_destroy(w);
    }
    if (s->inline_ctx) {
        fy_free(s->inline_ctx->undo);
        fy_buf_free(&s->inline_ctx->key);
        fy_buf_free(&s->inline_ctx->oputs);
        fy_free(s->inline_ctx);
    }
    if (s->done_ev) {
        event_free(s->done_ev);
    }
    if (s->done_local_ev) {
        event_free(s->done_local_ev);
    }
    if (s->recover_ev) {
        event_free(s->recover_ev);
    }
    if (s->efd >= 0) {
        close(s->efd);
    }
    if (s->db) {
        leveldb_close(s->db);
    }
    if (s->wb) {
        leveldb_writebatch_destroy(s->wb);
    }
    if (s->options) {
        leveldb_options_destroy(s->options);
    }
    if (s->cache) {
        leveldb_cache_destroy(s->cache);
    }
    if (s->filter) {
        leveldb_filterpolicy_destroy(s->filter);
    }
    if (s->ropts) {
        leveldb_readoptions_destroy(s->ropts);
    }
    if (s->scan_ropts) {
        leveldb_readoptions_destroy(s->scan_ropts);
    }
    if (s->wopts) {
        leveldb_writeoptions_destroy(s->wopts);
    }
    fy_u64map_free(&s->qmin);
    fy_u64map_free(&s->qmax);
    fy_u64map_free(&s->tqueues);
    fy_u64map_free(&s->erasing);
    fy_u64map_free(&s->wnext);
    fy_u64map_free(&s->wtqueues);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->idle_cv);
    fy_free(s->dir);
    fy_free(s);
}

bool fy_store_healthy(const fy_store *s)
{
    return atomic_load(&((fy_store *)s)->healthy);
}

const char *fy_store_last_error(const fy_store *s)
{
    fy_store *m = (fy_store *)s;
    if (atomic_load(&m->healthy)) {
        return "";
    }
    /* The writer sets it under mu; callers on the loop get a copy that stays put. */
    pthread_mutex_lock(&m->mu);
    snprintf(m->last_error_loop, sizeof(m->last_error_loop), "%s", m->last_error);
    pthread_mutex_unlock(&m->mu);
    return m->last_error_loop;
}

uint64_t fy_store_unhealthy_since(const fy_store *s)
{
    return s->unhealthy_since_ms;
}

uint64_t fy_store_messages_bytes(fy_store *s)
{
    const char *start = "M", *limit = "N";
    size_t slen = 1, llen = 1;
    uint64_t size = 0;
    if (!s->db) {
        return 0;
    }
    leveldb_approximate_sizes(s->db, 1, &start, &slen, &limit, &llen, &size);
    return size;
}

void fy_store_get_counts(fy_store *s, fy_store_counts *out)
{
    out->queues = s->qmax.n > s->qmin.n ? s->qmax.n : s->qmin.n;
    out->next_offsets = atomic_load_explicit(&s->wnext_n, memory_order_relaxed);
    out->erasing = s->erasing.n;
}

void fy_store_topics_each(fy_store *s, void (*fn)(void *arg, uint32_t topic_id, uint32_t queues),
                          void *arg)
{
    fy_u64map ids = FY_U64MAP_INIT; /* a copy: fn may change the store's tables */
    for (size_t i = 0; i < s->tqueues.cap; i++) {
        if (s->tqueues.used[i]) {
            *fy_u64map_upsert(&ids, s->tqueues.keys[i], 0) = s->tqueues.vals[i];
        }
    }
    for (size_t i = 0; i < s->erasing.cap; i++) {
        if (s->erasing.used[i]) {
            fy_u64map_upsert(&ids, s->erasing.keys[i], 0);
        }
    }
    for (size_t i = 0; i < ids.cap; i++) {
        if (ids.used[i]) {
            fn(arg, (uint32_t)ids.keys[i], (uint32_t)ids.vals[i]);
        }
    }
    fy_u64map_free(&ids);
}

void fy_store_get_stats(const fy_store *s, fy_store_stats *st)
{
    fy_store *m = (fy_store *)s;
    st->commits = atomic_load(&m->st_commits);
    st->inline_commits = atomic_load(&m->st_inline);
    st->inline_slow = atomic_load(&m->st_inline_slow);
    st->inline_paused = atomic_load(&m->st_inline_paused);
    st->batches = atomic_load(&m->st_batches);
    st->appends = atomic_load(&m->st_appends);
    st->bytes = atomic_load(&m->st_bytes);
    st->failed = atomic_load(&m->st_failed);
    st->pending = atomic_load(&m->st_pending);
    st->commit_ns_total = atomic_load(&m->st_commit_ns);
    st->fsyncs = atomic_load(&m->st_fsyncs);
    st->fsync_ns_total = atomic_load(&m->st_fsync_ns);
    st->write_errors = atomic_load(&m->st_write_errors);
    st->deletes = atomic_load(&m->st_deletes);
    st->recoveries = atomic_load(&m->st_recoveries);
    st->recover_failures = atomic_load(&m->st_recover_failures);
    for (size_t i = 0; i <= FY_STORE_LAT_BUCKETS; i++) {
        st->commit_us[i] = atomic_load(&m->h_commit[i]);
        st->fsync_us[i] = atomic_load(&m->h_fsync[i]);
    }
    for (size_t i = 0; i <= FY_STORE_BATCH_BUCKETS; i++) {
        st->batch_msgs[i] = atomic_load(&m->h_batch[i]);
    }
}

/* ---- Reads -------------------------------------------------------------------------------- */

static int get_key(fy_store *s, const void *k, size_t klen, fy_buf *out)
{
    char *lerr = NULL;
    size_t vlen = 0;
    char *v;
    if (!s->db) {
        return -FY_EUNHEALTHY; /* a reopen failed: see recover_now */
    }
    v = leveldb_get(s->db, s->ropts, k, klen, &vlen, &lerr);
    if (lerr) {
        return take_error(lerr, NULL, 0);
    }
    if (!v) {
        return -FY_ENOTFOUND;
    }
    fy_buf_reset(out);
    fy_buf_append(out, v, vlen);
    leveldb_free(v);
    return FY_OK;
}

int fy_store_get(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t offset, fy_buf *out)
{
    uint8_t k[MKEY_LEN];
    mkey(k, topic_id, queue_id, offset);
    return get_key(s, k, sizeof(k), out);
}

/* Walks the keys starting with prefix (from `start`, itself starting with prefix), calling
 * fn(arg, key, klen, val, vlen) until it returns non-zero. Returns that value, 0, or an error. */
typedef int (*walk_fn)(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen);

static int walk_with(fy_store *s, const leveldb_readoptions_t *ro, const void *prefix, size_t plen,
                     const void *start, size_t slen, walk_fn fn, void *arg)
{
    leveldb_iterator_t *it;
    char *lerr = NULL;
    int rc = 0;
    if (!s->db) {
        return -FY_EUNHEALTHY;
    }
    it = leveldb_create_iterator(s->db, ro);
    for (leveldb_iter_seek(it, start, slen); leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = leveldb_iter_key(it, &klen);
        const char *v;
        if (klen < plen || memcmp(k, prefix, plen) != 0) {
            break;
        }
        v = leveldb_iter_value(it, &vlen);
        rc = fn(arg, (const uint8_t *)k, klen, (const uint8_t *)v, vlen);
        if (rc != 0) {
            break;
        }
    }
    leveldb_iter_get_error(it, &lerr);
    leveldb_iter_destroy(it);
    if (lerr) {
        return take_error(lerr, NULL, 0);
    }
    return rc;
}

static int walk(fy_store *s, const void *prefix, size_t plen, const void *start, size_t slen,
                walk_fn fn, void *arg)
{
    return walk_with(s, s->ropts, prefix, plen, start, slen, fn, arg);
}

typedef struct scan_ctx {
    fy_store_scan_cb cb;
    void *arg;
    size_t left;
    size_t max_bytes;
    size_t bytes;
} scan_ctx;

static int scan_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    scan_ctx *c = arg;
    int rc;
    if (klen != MKEY_LEN) {
        return -FY_ECORRUPT;
    }
    rc = c->cb(c->arg, fy_be64_get(k + 9), v, vlen);
    if (rc != 0) {
        return rc;
    }
    c->bytes += vlen;
    if (--c->left == 0 || (c->max_bytes && c->bytes >= c->max_bytes)) {
        return INT32_MIN; /* internal "limit reached" */
    }
    return 0;
}

int fy_store_scan(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t from,
                  size_t max_count, size_t max_bytes, fy_store_scan_cb cb, void *arg)
{
    uint8_t k[MKEY_LEN];
    scan_ctx c = {cb, arg, max_count, max_bytes, 0};
    int rc;
    if (max_count == 0) {
        return 0;
    }
    mkey(k, topic_id, queue_id, from);
    rc = walk_with(s, s->scan_ropts, k, 9, k, sizeof(k), scan_one, &c);
    return rc == INT32_MIN ? 0 : rc;
}

void fy_store_queue_range(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t *min,
                          uint64_t *max)
{
    uint64_t qk = qkey(topic_id, queue_id);
    uint64_t *mx = fy_u64map_find(&s->qmax, qk);
    uint64_t *mn = fy_u64map_find(&s->qmin, qk);
    *max = mx ? *mx : 0;
    *min = mn ? *mn : *max;
}

int fy_store_offset_by_time(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t ts_ms,
                            uint64_t *offset)
{
    uint64_t lo, hi;
    fy_buf rec = FY_BUF_INIT;
    int rc = FY_OK;
    fy_store_queue_range(s, topic_id, queue_id, &lo, &hi);
    /* Store timestamps never decrease along a queue: find the first one >= ts_ms. */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2, ms;
        rc = fy_store_get(s, topic_id, queue_id, mid, &rec);
        if (rc == -FY_ENOTFOUND) {
            lo = mid + 1; /* trimmed under us: the answer lies after it */
            rc = FY_OK;
            continue;
        }
        if (rc != FY_OK) {
            break;
        }
        if (fy_record_peek_store_ms(rec.data, rec.len, &ms) != FY_OK) {
            rc = -FY_ECORRUPT;
            break;
        }
        if (ms >= ts_ms) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    fy_buf_free(&rec);
    *offset = lo;
    return rc;
}

int fy_store_get_offset(fy_store *s, const char *group, uint32_t topic_id, uint32_t queue_id,
                        uint64_t *offset)
{
    fy_buf k = FY_BUF_INIT, v = FY_BUF_INIT;
    int rc;
    okey(&k, group, topic_id, queue_id);
    rc = get_key(s, k.data, k.len, &v);
    if (rc == FY_OK) {
        if (v.len == 8) {
            *offset = fy_be64_get(v.data);
        } else {
            rc = -FY_ECORRUPT;
        }
    }
    fy_buf_free(&k);
    fy_buf_free(&v);
    return rc;
}

typedef struct offsets_ctx {
    int (*fn)(void *arg, uint32_t topic_id, uint32_t queue_id, uint64_t offset);
    void *arg;
    size_t plen;
} offsets_ctx;

static int offsets_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    offsets_ctx *c = arg;
    if (klen != c->plen + 8 || vlen != 8) {
        return -FY_ECORRUPT;
    }
    return c->fn(c->arg, fy_be32_get(k + c->plen), fy_be32_get(k + c->plen + 4), fy_be64_get(v));
}

int fy_store_scan_offsets(fy_store *s, const char *group,
                          int (*fn)(void *arg, uint32_t topic_id, uint32_t queue_id,
                                    uint64_t offset),
                          void *arg)
{
    fy_buf p = FY_BUF_INIT;
    int rc;
    named_key(&p, 'O', group, NULL, 0);
    offsets_ctx c = {fn, arg, p.len};
    rc = walk(s, p.data, p.len, p.data, p.len, offsets_one, &c);
    fy_buf_free(&p);
    return rc;
}

typedef struct conf_ctx {
    int (*fn)(void *arg, const char *name, const uint8_t *val, size_t len);
    void *arg;
} conf_ctx;

static int conf_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    conf_ctx *c = arg;
    char name[256];
    if (klen - 1 >= sizeof(name)) {
        return -FY_ECORRUPT;
    }
    memcpy(name, k + 1, klen - 1);
    name[klen - 1] = '\0';
    return c->fn(c->arg, name, v, vlen);
}

static int get_conf(fy_store *s, char prefix, const char *name, fy_buf *out)
{
    fy_buf k = FY_BUF_INIT;
    int rc;
    conf_key(&k, prefix, name);
    rc = get_key(s, k.data, k.len, out);
    fy_buf_free(&k);
    return rc;
}

static int scan_conf(fy_store *s, char prefix,
                     int (*fn)(void *arg, const char *name, const uint8_t *val, size_t len),
                     void *arg)
{
    conf_ctx c = {fn, arg};
    char p = prefix;
    return walk(s, &p, 1, &p, 1, conf_one, &c);
}

int fy_store_get_topic(fy_store *s, const char *name, fy_buf *out)
{
    return get_conf(s, 'C', name, out);
}

int fy_store_scan_topics(fy_store *s,
                         int (*fn)(void *arg, const char *name, const uint8_t *val, size_t len),
                         void *arg)
{
    return scan_conf(s, 'C', fn, arg);
}

int fy_store_get_group(fy_store *s, const char *name, fy_buf *out)
{
    return get_conf(s, 'G', name, out);
}

int fy_store_scan_groups(fy_store *s,
                         int (*fn)(void *arg, const char *name, const uint8_t *val, size_t len),
                         void *arg)
{
    return scan_conf(s, 'G', fn, arg);
}

typedef struct key_ctx {
    int (*fn)(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms);
    void *arg;
    size_t plen;
    uint64_t to_ms;
    size_t left;
} key_ctx;

static int key_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    key_ctx *c = arg;
    uint64_t ms;
    int rc;
    if (klen != c->plen + 20) {
        return 0; /* a longer key sharing this prefix: not ours */
    }
    ms = fy_be64_get(k + c->plen);
    if (ms > c->to_ms) {
        return INT32_MIN;
    }
    rc = c->fn(c->arg, fy_be32_get(k + c->plen + 8), fy_be64_get(k + c->plen + 12), ms);
    if (rc == 0 && --c->left == 0) {
        rc = INT32_MIN;
    }
    return rc;
}

int fy_store_query_key(fy_store *s, uint32_t topic_id, const char *key, uint64_t from_ms,
                       uint64_t to_ms, size_t limit,
                       int (*fn)(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms),
                       void *arg)
{
    fy_buf p = FY_BUF_INIT;
    size_t plen;
    int rc;
    if (limit == 0) {
        return 0;
    }
    fy_buf_put_u8(&p, 'K');
    fy_buf_put_u32(&p, topic_id);
    fy_buf_append(&p, key, strlen(key));
    fy_buf_put_u8(&p, 0);
    plen = p.len;
    fy_buf_put_u64(&p, from_ms);
    key_ctx c = {fn, arg, plen, to_ms, limit};
    rc = walk(s, p.data, plen, p.data, p.len, key_one, &c);
    fy_buf_free(&p);
    return rc == INT32_MIN ? 0 : rc;
}

typedef struct timer_ctx {
    int (*fn)(void *arg, uint64_t deliver_ms, uint64_t seq, const uint8_t *rec, size_t len);
    void *arg;
    uint64_t now_ms;
    size_t left;
} timer_ctx;

static int timer_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    timer_ctx *c = arg;
    uint64_t when;
    int rc;
    if (klen != 17) {
        return -FY_ECORRUPT;
    }
    when = fy_be64_get(k + 1);
    if (when > c->now_ms) {
        return INT32_MIN;
    }
    rc = c->fn(c->arg, when, fy_be64_get(k + 9), v, vlen);
    if (rc == 0 && --c->left == 0) {
        rc = INT32_MIN;
    }
    return rc;
}

int fy_store_scan_timers(fy_store *s, uint64_t from_ms, uint64_t now_ms, size_t limit,
                         int (*fn)(void *arg, uint64_t deliver_ms, uint64_t seq, const uint8_t *rec,
                                   size_t len),
                         void *arg)
{
    timer_ctx c = {fn, arg, now_ms, limit};
    uint8_t start[17];
    int rc;
    if (limit == 0) {
        return 0;
    }
    tkey(start, from_ms, 0);
    rc = walk(s, "T", 1, start, sizeof(start), timer_one, &c);
    return rc == INT32_MIN ? 0 : rc;
}

static int first_timer(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    if (klen != 17) {
        return -FY_ECORRUPT;
    }
    *(uint64_t *)arg = fy_be64_get(k + 1);
    return 1;
}

int fy_store_next_timer(fy_store *s, uint64_t from_ms, uint64_t *deliver_ms)
{
    uint8_t start[17];
    int rc;
    tkey(start, from_ms, 0);
    rc = walk(s, "T", 1, start, sizeof(start), first_timer, deliver_ms);
    if (rc == 1) {
        return FY_OK;
    }
    return rc < 0 ? rc : -FY_ENOTFOUND;
}

/* Splits a half message's value (u32 mlen, meta, record) and calls fn. */
static int half_call(fy_store_half_cb fn, void *arg, uint64_t tx_id, const uint8_t *v, size_t vlen)
{
    uint32_t mlen;
    if (vlen < 4 || (mlen = fy_be32_get(v)) > vlen - 4) {
        return -FY_ECORRUPT;
    }
    return fn(arg, tx_id, v + 4, mlen, v + 4 + mlen, vlen - 4 - mlen);
}

int fy_store_get_half(fy_store *s, uint64_t tx_id, fy_store_half_cb fn, void *arg)
{
    uint8_t k[HKEY_LEN];
    char *lerr = NULL;
    size_t vlen = 0;
    char *v;
    int rc;
    hkey(k, tx_id);
    if (!s->db) {
        return -FY_EUNHEALTHY;
    }
    v = leveldb_get(s->db, s->ropts, (const char *)k, sizeof(k), &vlen, &lerr);
    if (lerr) {
        return take_error(lerr, NULL, 0);
    }
    if (!v) {
        return -FY_ENOTFOUND;
    }
    rc = half_call(fn, arg, tx_id, (const uint8_t *)v, vlen);
    leveldb_free(v);
    return rc;
}

typedef struct half_ctx {
    fy_store_half_cb fn;
    void *arg;
    size_t left;
} half_ctx;

static int half_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    half_ctx *c = arg;
    int rc;
    if (klen != HKEY_LEN) {
        return -FY_ECORRUPT;
    }
    rc = half_call(c->fn, c->arg, fy_be64_get(k + 1), v, vlen);
    if (rc == 0 && --c->left == 0) {
        rc = INT32_MIN;
    }
    return rc;
}

int fy_store_scan_halves(fy_store *s, uint64_t from_id, size_t limit, fy_store_half_cb fn,
                         void *arg)
{
    uint8_t start[HKEY_LEN];
    half_ctx c = {fn, arg, limit};
    int rc;
    if (limit == 0) {
        return 0;
    }
    hkey(start, from_id);
    rc = walk(s, "H", 1, start, sizeof(start), half_one, &c);
    return rc == INT32_MIN ? 0 : rc;
}

int fy_store_get_adapter(fy_store *s, const char *adapter, const void *key, size_t klen,
                         fy_buf *out)
{
    fy_buf k = FY_BUF_INIT;
    int rc;
    named_key(&k, 'A', adapter, key, klen);
    rc = get_key(s, k.data, k.len, out);
    fy_buf_free(&k);
    return rc;
}

typedef struct adapter_ctx {
    int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
    void *arg;
    size_t nslen; /* length of "A<adapter>\0" */
} adapter_ctx;

static int adapter_one(void *arg, const uint8_t *k, size_t klen, const uint8_t *v, size_t vlen)
{
    adapter_ctx *c = arg;
    return c->fn(c->arg, k + c->nslen, klen - c->nslen, v, vlen);
}

int fy_store_scan_adapter(fy_store *s, const char *adapter, const void *prefix, size_t plen,
                          int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                                    size_t vlen),
                          void *arg)
{
    fy_buf p = FY_BUF_INIT;
    int rc;
    named_key(&p, 'A', adapter, prefix, plen);
    adapter_ctx c = {fn, arg, p.len - plen};
    rc = walk(s, p.data, p.len, p.data, p.len, adapter_one, &c);
    fy_buf_free(&p);
    return rc;
}
