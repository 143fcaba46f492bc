/* SPDX-License-Identifier: Apache-2.0 */
/* The Ferry store: persistence on one embedded LevelDB database. The only module that knows
 * LevelDB; it knows nothing of protocols.
 *
 * Threads. Every function here is called on the loop thread (the thread running the
 * event_base given to fy_store_open), except where a comment says otherwise. Writes go through
 * one writer thread: fy_store_submit() queues a batch; the writer drains everything queued into
 * one LevelDB WriteBatch (group commit), writes it (sync under FY_FLUSH_SYNC), and posts the
 * completions back to the loop, where each batch's callback runs exactly once, in submit order.
 * Reads are synchronous LevelDB reads on the calling thread and see only completed writes.
 *
 * Key spaces (integers big-endian so that key order is numeric order):
 *   M topic_id queue_id offset              -> message record (common/record.h)
 *   O group 0 topic_id queue_id             -> committed consumer offset (u64)
 *   K topic_id key 0 store_ms queue_id offset -> (empty)   index by message key
 *   T deliver_ms seq                        -> record waiting for its time (delayed, retry)
 *   H tx_id                                 -> half message: u32 mlen, meta, record
 *   C name / G name                         -> topic / group configuration (opaque bytes)
 *   A adapter 0 key                         -> a namespace per adapter (opaque bytes)
 *   E topic_id                              -> a deleted topic being erased: flags, where to
 *                                              go on (fy_wbatch_erase_topic)
 *   V                                       -> store format version */
#ifndef FERRY_STORE_STORE_H
#define FERRY_STORE_STORE_H

#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

typedef struct fy_store fy_store;
typedef struct fy_wbatch fy_wbatch;

typedef enum fy_flush {
    FY_FLUSH_ASYNC = 0, /* written to the OS before completion: survives a crash of ferryd */
    FY_FLUSH_SYNC = 1   /* fsync'ed before completion: survives power loss */
} fy_flush;

typedef struct fy_store_opts {
    const char *dir;         /* data directory; created if missing */
    fy_flush flush;          /* default FY_FLUSH_ASYNC */
    size_t cache_bytes;      /* LevelDB block cache; 0 = 64 MiB */
    size_t write_buffer;     /* LevelDB memtable size; 0 = 64 MiB */
    size_t max_commit_bytes; /* group commit: most bytes in one WriteBatch; 0 = 16 MiB */
    int recover_every_ms;    /* after a failed write, try to recover this often; 0 = 1000,
                                < 0 = only when fy_store_recover is called (tests) */
    size_t erase_chunk;      /* keys deleted per write when erasing a topic; 0 = 8192 */
} fy_store_opts;

/* Opens (creating if missing) the store in opts->dir and starts its writer thread; completions
 * run on `base`. A database that cannot be opened or is corrupt is an error, never a reset.
 * Returns FY_OK and *out, or -FY_ELOCKED (another process holds the directory), -FY_ECORRUPT,
 * -FY_EVERSION (written by a newer ferry), -FY_EIO; a one-line reason is written to err. */
int fy_store_open(const fy_store_opts *opts, struct event_base *base, fy_store **out, char *err,
                  size_t errlen);

/* Stops the writer after it has written everything queued (their callbacks run inside this
 * call), makes the log durable, and closes the database. NULL-safe. */
void fy_store_close(fy_store *s);

/* False once a write has failed (disk full, I/O error): writes are refused with
 * -FY_EUNHEALTHY from then on, reads go on. fy_store_last_error() says why ("" when healthy;
 * the text stays valid until the next call). fy_store_unhealthy_since() is the wall-clock ms
 * the loop first saw the failure (0 while healthy).
 *
 * Recovery without a restart: every second while unhealthy, the store checks the data
 * directory's file system for room (its LevelDB log files' size plus 1 MiB: what reopening
 * writes) and that a 64 KiB file can be written and synced there; once both hold, it waits for the
 * writer to be idle, closes and reopens the database on the loop thread (LevelDB refuses all writes
 * after a failed one until reopened), reloads its queue ranges, and accepts writes again. Should
 * the reopen itself fail, reads fail with -FY_EUNHEALTHY too until a later attempt succeeds. */
bool fy_store_healthy(const fy_store *s);
const char *fy_store_last_error(const fy_store *s);
uint64_t fy_store_unhealthy_since(const fy_store *s);

/* Tries the recovery at once (loop thread): FY_OK if the store is healthy (already, or now),
 * -FY_ENOSPC or -FY_EIO if the file system takes no writes yet (the database stays open for
 * reads), -FY_EUNHEALTHY if the reopen failed. */
int fy_store_recover(fy_store *s);

/* ---- Write batches ------------------------------------------------------------------------
 * A batch collects operations that must be durable together (a producer's batch of messages,
 * a transaction commit: append + delete of the half message, a set of offset commits). */

/* Called on the loop once the batch is durable per the flush policy (status FY_OK), or has
 * failed (negative status: nothing of the batch was written), or at close (-FY_ECANCELED if it
 * could not be written). The batch is freed after the callback returns. */
typedef void (*fy_wbatch_cb)(void *arg, int status, fy_wbatch *b);

fy_wbatch *fy_wbatch_new(void);
/* Frees a batch that was never submitted. NULL-safe. */
void fy_wbatch_free(fy_wbatch *b);

/* Appends a message to (topic_id, queue_id); the store assigns the next offset of that queue
 * and the store timestamp when it writes (dense, in write order), and indexes its keys.
 * Returns the index of this append within the batch (for fy_wbatch_result), or -FY_EINVAL if
 * the record cannot be encoded. */
int fy_wbatch_append(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, const fy_record *r);
/* Same, from an already encoded record (copied) that the caller has validated (decoded): it is
 * not decoded again, so the produce path decodes each message once. has_keys: the record has
 * keys to index. -FY_ETOOBIG over 4 GiB. */
int fy_wbatch_append_raw(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, const void *rec,
                         size_t len, bool has_keys);
/* Appends a reference record (a light queue's entry: an index of a message stored in another
 * topic by the same batch). rec is a record whose body ends with 12 bytes the store fills in
 * with the queue id (be32) and offset (be64) the append of result slot `ref` (an earlier append
 * of this batch, not a timer) was given. Returns the result slot, or -FY_EINVAL if the record
 * is shorter than 12 bytes, -FY_ETOOBIG over 4 GiB. */
int fy_wbatch_append_ref(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, const void *rec,
                         size_t len, uint32_t ref);
/* Number of result slots in the batch: appends and timers. */
size_t fy_wbatch_appends(const fy_wbatch *b);
/* Bytes the batch will write (approximate). */
size_t fy_wbatch_bytes(const fy_wbatch *b);
/* After a successful completion: where append number i went. */
void fy_wbatch_result(const fy_wbatch *b, size_t i, uint32_t *queue_id, uint64_t *offset,
                      uint64_t *store_ms);

/* After a successful completion: the bytes of append number i as stored (location and store
 * time filled in). Valid until the batch is freed, i.e. during the callback. */
void fy_wbatch_record(const fy_wbatch *b, size_t i, const uint8_t **rec, size_t *len);

/* Consumer offsets: sets the committed offset of (group, topic, queue). */
void fy_wbatch_put_offset(fy_wbatch *b, const char *group, uint32_t topic_id, uint32_t queue_id,
                          uint64_t offset);
void fy_wbatch_del_offset(fy_wbatch *b, const char *group, uint32_t topic_id, uint32_t queue_id);
/* Deletes every committed offset of group, of any topic (a group's deletion): the writer walks
 * the group's offset keys as earlier writes left them and deletes those, and those that batches
 * submitted before this one put in the same write; offsets put by later batches stay (a group of
 * the same name made again keeps them). All in this batch's write: a group has at most one
 * offset per queue of the topics it read. */
void fy_wbatch_del_group_offsets(fy_wbatch *b, const char *group);
/* Topic and group configuration records (opaque bytes owned by the broker). */
void fy_wbatch_put_topic(fy_wbatch *b, const char *name, const void *val, size_t len);
void fy_wbatch_del_topic(fy_wbatch *b, const char *name);
void fy_wbatch_put_group(fy_wbatch *b, const char *name, const void *val, size_t len);
void fy_wbatch_del_group(fy_wbatch *b, const char *name);
/* Delayed delivery: holds an encoded record until deliver_ms. The writer assigns a sequence
 * number so equal times stay distinct and ordered. Takes a result slot like an append: returns
 * its index; after completion fy_wbatch_result gives queue_id UINT32_MAX, offset = the sequence
 * number and store_ms = deliver_ms (the key to delete it with). */
int fy_wbatch_put_timer(fy_wbatch *b, uint64_t deliver_ms, const void *rec, size_t len);
void fy_wbatch_del_timer(fy_wbatch *b, uint64_t deliver_ms, uint64_t seq);
/* Transactions: a half message waits under H tx_id until it is committed (one batch deletes it
 * and appends its record, see fy_wbatch_append_raw) or rolled back (deleted). `meta` is the
 * broker's own state (opaque here), stored beside the record. The writer assigns the id from
 * the same never-reused sequence as timers and writes the id and the store time into the
 * record's header (queue UINT32_MAX, offset = id, store_ms = now). Takes a result slot: after
 * completion fy_wbatch_result gives queue_id UINT32_MAX, offset = tx_id, store_ms = now.
 * -FY_ETOOBIG for sizes over 2 GiB. */
int fy_wbatch_put_half(fy_wbatch *b, const void *meta, size_t mlen, const void *rec, size_t len);
/* Rewrites a half message (new meta, the record bytes as read). */
void fy_wbatch_update_half(fy_wbatch *b, uint64_t tx_id, const void *meta, size_t mlen,
                           const void *rec, size_t len);
void fy_wbatch_del_half(fy_wbatch *b, uint64_t tx_id);
/* Deletes the messages of a queue with offsets below `before`, and their key index entries
 * (retention). The writer does the deleting; the caller bounds how many at once. */
void fy_wbatch_trim_queue(fy_wbatch *b, uint32_t topic_id, uint32_t queue_id, uint64_t before);
/* Erases what the store holds of topic_id, whose configuration this batch deletes (or that has
 * none): the messages of its queues (M), their key index (K) and, with `offsets`, every group's
 * committed offsets of it (O; false when the caller knows none was ever written, which saves a
 * seek per group), on disk; and in memory the queues' ranges and next offsets, so that a topic
 * deleted costs nothing from then on. Every queue the store has of the topic goes, whatever
 * number of queues its configuration says now (it may have had more). When the batch completes the
 * queues read as never written, and no open brings them back. Delayed messages (T) and half
 * messages (H) are not touched: they name their topic, not its id.
 *
 * The batch is written in a commit of its own, after everything submitted before it (appends
 * to the topic still on their way included); nothing may be appended to topic_id afterwards
 * (ids are never reused). The keys go in chunks of erase_chunk per write: the first chunk in this
 * batch, the others in batches the store submits itself after each completion, so a large topic
 * does not hold up other writes. While keys are left a record E topic_id says where to go on;
 * the last chunk deletes it. A crash or a failed write in between leaves that record and the
 * keys not yet deleted; the next open (or recovery) does not load those queues and goes on. */
void fy_wbatch_erase_topic(fy_wbatch *b, uint32_t topic_id, bool offsets);
/* A namespace per adapter (e.g. "mqtt": retained messages, sessions). */
void fy_wbatch_put_adapter(fy_wbatch *b, const char *adapter, const void *key, size_t klen,
                           const void *val, size_t vlen);
void fy_wbatch_del_adapter(fy_wbatch *b, const char *adapter, const void *key, size_t klen);

/* Queues the batch for the writer; the store owns it from now on. cb runs later on the loop,
 * never inside this call. An unhealthy store completes the batch with -FY_EUNHEALTHY. */
void fy_store_submit(fy_store *s, fy_wbatch *b, fy_wbatch_cb cb, void *arg);

/* For tests of what happens while a batch is on its way: with hold true, submitted batches
 * queue up and none is written (not even inline) until fy_store_hold(s, false); closing the
 * store writes them regardless. */
void fy_store_hold(fy_store *s, bool hold);

/* ---- Reads (loop thread; synchronous) ------------------------------------------------------ */

/* Copies the record at (topic, queue, offset) into out (replacing its contents).
 * Returns FY_OK, -FY_ENOTFOUND, or -FY_EIO / -FY_ECORRUPT. */
int fy_store_get(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t offset, fy_buf *out);

/* Called for each record in offset order; rec is valid only during the call. Return 0 to go on,
 * non-zero to stop (the value is returned by the scan). */
typedef int (*fy_store_scan_cb)(void *arg, uint64_t offset, const uint8_t *rec, size_t len);
/* Reads records of (topic, queue) starting at `from`, at most max_count records and stopping
 * after the record that reaches max_bytes (0 = no byte limit). Returns 0 when done, the callback's
 * stop value, or a negative error. */
int fy_store_scan(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t from,
                  size_t max_count, size_t max_bytes, fy_store_scan_cb cb, void *arg);

/* Offsets of (topic, queue): min is the first stored offset (after retention), max the next
 * offset to be written (= min when empty; 0 for a queue never written). */
void fy_store_queue_range(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t *min,
                          uint64_t *max);

/* First offset of (topic, queue) whose store timestamp is >= ts_ms, or max if none (binary
 * search over the queue). Returns FY_OK or a negative error. */
int fy_store_offset_by_time(fy_store *s, uint32_t topic_id, uint32_t queue_id, uint64_t ts_ms,
                            uint64_t *offset);

/* Committed offset of (group, topic, queue): FY_OK, or -FY_ENOTFOUND if none was committed. */
int fy_store_get_offset(fy_store *s, const char *group, uint32_t topic_id, uint32_t queue_id,
                        uint64_t *offset);
/* Calls fn for each committed offset of group (topic, queue, offset), in key order. */
int fy_store_scan_offsets(fy_store *s, const char *group,
                          int (*fn)(void *arg, uint32_t topic_id, uint32_t queue_id,
                                    uint64_t offset),
                          void *arg);

/* Topic / group configuration: get one (into out) or scan all (name is NUL-terminated). */
int fy_store_get_topic(fy_store *s, const char *name, fy_buf *out);
int fy_store_scan_topics(fy_store *s,
                         int (*fn)(void *arg, const char *name, const uint8_t *val, size_t len),
                         void *arg);
int fy_store_get_group(fy_store *s, const char *name, fy_buf *out);
int fy_store_scan_groups(fy_store *s,
                         int (*fn)(void *arg, const char *name, const uint8_t *val, size_t len),
                         void *arg);

/* Messages of topic with key `key` stored in [from_ms, to_ms], oldest first, at most limit. */
int fy_store_query_key(fy_store *s, uint32_t topic_id, const char *key, uint64_t from_ms,
                       uint64_t to_ms, size_t limit,
                       int (*fn)(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms),
                       void *arg);

/* Timers due in [from_ms, now_ms], earliest first, at most limit; rec valid during the call.
 * Starting at from_ms (rather than at the first key) keeps a scan from walking over the
 * deletion markers of timers already fired, which LevelDB keeps until it compacts. */
int fy_store_scan_timers(fy_store *s, uint64_t from_ms, uint64_t now_ms, size_t limit,
                         int (*fn)(void *arg, uint64_t deliver_ms, uint64_t seq, const uint8_t *rec,
                                   size_t len),
                         void *arg);
/* Deliver time of the earliest timer at or after from_ms: FY_OK, or -FY_ENOTFOUND. */
int fy_store_next_timer(fy_store *s, uint64_t from_ms, uint64_t *deliver_ms);

/* Half messages: meta and record are valid during the call; return non-zero to stop. */
typedef int (*fy_store_half_cb)(void *arg, uint64_t tx_id, const uint8_t *meta, size_t mlen,
                                const uint8_t *rec, size_t len);
/* Calls fn once with half message tx_id: its return value, -FY_ENOTFOUND, -FY_ECORRUPT or an
 * I/O error. */
int fy_store_get_half(fy_store *s, uint64_t tx_id, fy_store_half_cb fn, void *arg);
/* Calls fn for half messages with ids >= from_id, in id order (= store order), at most limit.
 * Returns 0 when done, fn's stop value, or a negative error. */
int fy_store_scan_halves(fy_store *s, uint64_t from_id, size_t limit, fy_store_half_cb fn,
                         void *arg);

/* Adapter namespace: get one key, or scan keys starting with prefix (in key order). */
int fy_store_get_adapter(fy_store *s, const char *adapter, const void *key, size_t klen,
                         fy_buf *out);
int fy_store_scan_adapter(fy_store *s, const char *adapter, const void *prefix, size_t plen,
                          int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                                    size_t vlen),
                          void *arg);

/* Approximate bytes the messages take on disk (LevelDB's estimate of the M key space; what is
 * only in the memtable is not counted). */
uint64_t fy_store_messages_bytes(fy_store *s);

/* What the store keeps in memory per queue (loop thread), for /health and metrics. */
typedef struct fy_store_counts {
    size_t queues;       /* queues with a known offset range (written to, or loaded at open) */
    size_t next_offsets; /* queues the writer keeps a next offset for, as of its last write */
    size_t erasing;      /* erased topics with keys still to delete (fy_wbatch_erase_topic) */
} fy_store_counts;
void fy_store_get_counts(fy_store *s, fy_store_counts *out);

/* Calls fn once for each topic id the store has queues of (loaded at open or written since),
 * with one more than its highest queue id, and for each topic being erased (queues 0). Loop
 * thread; for the core at start, to find what belongs to no topic. */
void fy_store_topics_each(fy_store *s, void (*fn)(void *arg, uint32_t topic_id, uint32_t queues),
                          void *arg);

/* Upper bounds of the commit histograms: write latency in microseconds, messages per write. */
#define FY_STORE_LAT_BUCKETS 14
#define FY_STORE_LAT_BOUNDS_US                                                                     \
    {                                                                                              \
        50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000  \
    }
#define FY_STORE_BATCH_BUCKETS 12
#define FY_STORE_BATCH_BOUNDS                                                                      \
    {                                                                                              \
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096                                          \
    }

/* Counters for /health and metrics. Any thread. */
typedef struct fy_store_stats {
    uint64_t commits;         /* LevelDB writes */
    uint64_t inline_commits;  /* of which written on the loop while the writer was idle */
    uint64_t inline_slow;     /* inline writes over 500 µs */
    uint64_t inline_paused;   /* of which slept in LevelDB or the disk: writer-only for 1 s */
    uint64_t batches;         /* fy_wbatch completed */
    uint64_t appends;         /* messages appended */
    uint64_t bytes;           /* bytes written */
    uint64_t failed;          /* batches failed */
    uint64_t pending;         /* batches queued or being written */
    uint64_t commit_ns_total; /* time spent in LevelDB writes */
    /* Histograms, one observation per LevelDB write (not per message): counts per bucket (not
     * cumulative), the last one past the highest bound (+Inf). The write time includes the
     * fsync under flush=sync, and is then also observed in fsync_us. */
    uint64_t commit_us[FY_STORE_LAT_BUCKETS + 1];
    uint64_t fsync_us[FY_STORE_LAT_BUCKETS + 1];
    uint64_t fsyncs;         /* synced writes */
    uint64_t fsync_ns_total; /* time spent in them */
    uint64_t batch_msgs[FY_STORE_BATCH_BUCKETS + 1];
    uint64_t write_errors;     /* LevelDB writes that failed (each makes the store unhealthy) */
    uint64_t recoveries;       /* reopens that made it healthy again */
    uint64_t recover_failures; /* reopens that failed */
    uint64_t deletes;          /* keys deleted by completed writes (tombstones written) */
} fy_store_stats;
void fy_store_get_stats(const fy_store *s, fy_store_stats *st);

#endif
