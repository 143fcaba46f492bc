/* SPDX-License-Identifier: Apache-2.0 */
/* The core model: topics split into queues, produce, consumer groups with clustering and
 * broadcast members, credit, ack / nack / ack timeout, committed offsets. Adapters (native,
 * MQTT, AMQP) translate their protocol into these calls only.
 *
 * Threads: everything here runs on the loop thread. The core never calls an owner back from
 * inside a call the owner made: deliveries triggered by fy_sub_credit run from a deferred event.
 * Every completion fires exactly once (-FY_ECANCELED at shutdown). */
#ifndef FERRY_BROKER_CORE_H
#define FERRY_BROKER_CORE_H

#include "common/record.h"
#include "common/wire.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fy_broker_config;

typedef struct fy_core fy_core;
typedef struct fy_sub fy_sub;

/* Creates the core over an open store and loads topics and groups from it. Returns NULL and
 * writes err if the stored configuration cannot be read. */
fy_core *fy_core_new(struct event_base *base, fy_store *store, const struct fy_broker_config *cfg,
                     char *err, size_t errlen);
/* Persists committed offsets, closes every subscription (their owners get no further calls)
 * and frees the core. Call before fy_store_close. NULL-safe. */
void fy_core_free(fy_core *c);

/* ---- Topics ------------------------------------------------------------------------------ */

/* Topic and group names: [A-Za-z0-9_.%-]{1,127} (RocketMQ's rule). */
bool fy_core_name_valid(const char *name, size_t len);

typedef void (*fy_core_done_cb)(void *arg, int status);

/* Creates a topic with `queues` queues (0 = default_queues). Returns -FY_EBADNAME, -FY_EEXIST,
 * -FY_EINVAL (queues over 1024) or -FY_EUNHEALTHY (the store refuses writes) at once, or FY_OK
 * and calls done once it is stored. From FY_OK on the topic can be used (produce, subscribe);
 * should the write fail, done gets the error and the topic is gone again, its subscriptions
 * ended (owners get sub_closed with the error), as a restart would find it. */
int fy_core_topic_create(fy_core *c, const char *name, uint32_t queues, fy_core_done_cb done,
                         void *arg);
/* Deletes a topic and its messages; its subscriptions are closed (owners get sub_closed).
 * -FY_ENOTFOUND or -FY_EUNHEALTHY (the store refuses writes) at once, or FY_OK and done later.
 * From FY_OK on the name is free (a topic may be made under it again); should the write fail,
 * done gets the error and the topic is back as it was, messages included (unless its name was
 * taken meanwhile), as a restart would find it. */
int fy_core_topic_delete(fy_core *c, const char *name, fy_core_done_cb done, void *arg);

/* Which protocol a message came in or went out by, for the per-topic counters. INTERNAL: the
 * broker itself (a delayed message becoming due, a retry, a dead letter). */
typedef enum fy_proto {
    FY_PROTO_INTERNAL = 0,
    FY_PROTO_NATIVE,
    FY_PROTO_MQTT,
    FY_PROTO_AMQP,
    FY_PROTO_COUNT
} fy_proto;

/* "internal", "native", "mqtt", "amqp". */
const char *fy_proto_name(fy_proto p);

/* Counters of a topic since start, per protocol: messages accepted from producers (counted
 * when handed to the store, delayed ones included) and delivered to consumers (redeliveries
 * included; a light queue's delivery counts for the topic that stores the message). */
typedef struct fy_topic_counters {
    uint64_t msgs_in[FY_PROTO_COUNT];
    uint64_t bytes_in[FY_PROTO_COUNT]; /* encoded record bytes */
    uint64_t msgs_out[FY_PROTO_COUNT];
    uint64_t bytes_out[FY_PROTO_COUNT];
} fy_topic_counters;

typedef struct fy_topic_info {
    const char *name; /* valid until the topic is deleted */
    uint32_t topic_id;
    uint32_t queues;
    const fy_topic_counters *counters; /* live; valid until the topic is deleted */
} fy_topic_info;

/* Looks a topic up. FY_OK or -FY_ENOTFOUND. */
int fy_core_topic_get(fy_core *c, const char *name, fy_topic_info *out);
/* Calls fn for every topic, in name order. */
void fy_core_topic_each(fy_core *c, void (*fn)(void *arg, const fy_topic_info *t), void *arg);
/* Offsets of a queue: first stored and next to be written. */
void fy_core_queue_range(fy_core *c, uint32_t topic_id, uint32_t queue_id, uint64_t *min,
                         uint64_t *max);

/* Message properties that delay delivery (RocketMQ's names): TIMER_DELIVER_MS = ms since the
 * epoch, TIMER_DELAY_MS = ms from now, DELAY = a level of delay_levels (1-based). A delayed
 * message is held in the store's time index and appended to its topic when due; its produce
 * result has queue_id UINT32_MAX, offset = its sequence number and store_ms = its due time,
 * and its message id carries FY_MSGID_SCHEDULED as queue. */
#define FY_PROP_DELIVER_MS "TIMER_DELIVER_MS"
#define FY_PROP_DELAY_MS "TIMER_DELAY_MS"
#define FY_PROP_DELAY_LEVEL "DELAY"
#define FY_MSGID_SCHEDULED 0xFFFF

/* Failures of a clustering group come back through %RETRY%<group> and end in %DLQ%<group>.
 * A copy waiting for its retry time carries the property REAL_TOPIC (where to append it). */
#define FY_RETRY_PREFIX "%RETRY%"
#define FY_DLQ_PREFIX "%DLQ%"
#define FY_PROP_REAL_TOPIC "REAL_TOPIC"
#define FY_INTERNAL_NAME_MAX 255

/* ---- Produce ----------------------------------------------------------------------------- */

/* One message to produce: an encoded record (as built by fy_record_encode; its location fields
 * are ignored) and an optional sharding key. Both borrowed for the call. */
typedef struct fy_produce_msg {
    fy_slice record;
    fy_slice sharding_key;
    fy_proto proto; /* who produced it (counters only) */
} fy_produce_msg;

typedef struct fy_produce_result {
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t offset;
    uint64_t store_ms;
    uint8_t msgid[FY_MSGID_LEN];
} fy_produce_result;

/* Runs on the loop once every message is durable per the flush policy (status FY_OK, results
 * for each message in order) or failed (negative status, results NULL: none was stored). */
typedef void (*fy_produce_cb)(void *arg, int status, const fy_produce_result *res, size_t n);

/* Validates and stores n messages together (one store batch). Unknown topics are created when
 * auto_create_topics is on. Returns FY_OK (done will be called), or at once, with no call of
 * done and nothing stored: -FY_ECORRUPT (a record does not decode), -FY_ETOOBIG (a body over
 * max_message_size), -FY_EBADNAME, -FY_ENOTFOUND (unknown topic, auto-create off),
 * -FY_EUNHEALTHY. On error, *bad_index (if not NULL) is the first refused message. */
int fy_core_produce(fy_core *c, const fy_produce_msg *msgs, size_t n, fy_produce_cb done, void *arg,
                    size_t *bad_index);

/* Reads a message by id into out (the stored record). FY_OK, -FY_ENOTFOUND, -FY_EINVAL. */
int fy_core_message_get(fy_core *c, const uint8_t msgid[FY_MSGID_LEN], fy_buf *out);

/* Messages of topic with key `key` stored within [from_ms, to_ms], oldest first, at most limit:
 * calls fn with each stored record and its message id. FY_OK, -FY_ENOTFOUND (no such topic), or
 * a store error. */
int fy_core_find_by_key(fy_core *c, const char *topic, const char *key, uint64_t from_ms,
                        uint64_t to_ms, size_t limit,
                        void (*fn)(void *arg, const uint8_t msgid[FY_MSGID_LEN], const uint8_t *rec,
                                   size_t len),
                        void *arg);

/* ---- Transactions (half messages) ---------------------------------------------------------
 * A producer stores a half message (invisible to consumers), runs its local transaction, then
 * commits it (appended to its topic, visible) or rolls it back (deleted). Halves left open
 * longer than tx_check_after are checked back with a producer of the same producer group every
 * tx_check_interval; each round counts as a check whether or not a producer of the group is
 * connected (RocketMQ's rule), and after tx_max_checks the half is rolled back and logged.
 * Halves live in the store (key H); the core keeps in memory only the ids being ended. */

/* Message id queue of a half message: its id names the transaction, not a place in a queue. */
#define FY_MSGID_HALF 0xFFFE

/* Stores one half message of producer group `group`, validated exactly like fy_core_produce
 * (same refusals, returned at once with nothing stored; -FY_EBADNAME also for a bad group).
 * done gets one result once it is durable: queue_id UINT32_MAX, offset = the transaction id,
 * store_ms = the time it was stored, msgid with queue FY_MSGID_HALF. */
int fy_core_tx_half(fy_core *c, const fy_produce_msg *msg, const char *group, fy_produce_cb done,
                    void *arg);

/* Ends transaction tx_id. FY_TXE_COMMIT appends the half's record to its topic (queue chosen
 * from its sharding key, or round robin; a delay property delays it from the commit on, as for
 * a normal produce) and deletes the half, in one store batch: done gets the appended message's
 * result. FY_TXE_ROLLBACK deletes it: done gets FY_OK with no result. FY_TXE_UNKNOWN changes
 * nothing and calls no done: it returns FY_OK if the half is pending. Errors at once, done not
 * called: -FY_ENOTFOUND (no such pending transaction), -FY_EAGAIN (an earlier end of it is
 * being stored), -FY_EUNHEALTHY, -FY_EINVAL (bad state); and for a commit the refusals of
 * fy_core_produce (e.g. -FY_ENOTFOUND when its topic is gone and auto_create_topics is off). */
int fy_core_tx_end(fy_core *c, uint64_t tx_id, fy_tx_end_how how, fy_produce_cb done, void *arg);

typedef struct fy_tx_checker fy_tx_checker;

/* What a check-back asks: is transaction tx_id of `group` committed? The record (the half
 * message as stored) is borrowed for the call. The owner answers later with fy_core_tx_end. */
typedef struct fy_tx_check {
    uint64_t tx_id;
    const char *group;
    uint8_t msgid[FY_MSGID_LEN];
    const uint8_t *record;
    size_t len;
    uint32_t checks; /* this is the checks-th check (1-based) */
} fy_tx_check;

typedef struct fy_tx_checker_ops {
    void (*check)(void *owner, fy_tx_checker *k, const fy_tx_check *chk);
} fy_tx_checker_ops;

/* Registers owner as a producer of `group` that can answer check-backs. Calls come from the
 * core's check timer, never from inside a call of the owner. NULL and *err = -FY_EBADNAME for a
 * bad group name. */
fy_tx_checker *fy_core_tx_checker_add(fy_core *c, const char *group, const fy_tx_checker_ops *ops,
                                      void *owner, int *err);
/* Unregisters: no call reaches the owner after this returns. NULL-safe. */
void fy_core_tx_checker_remove(fy_tx_checker *k);

typedef struct fy_tx_info {
    uint64_t tx_id;
    const char *group;
    uint64_t stored_ms; /* when the half was stored */
    uint32_t checks;    /* check-backs so far */
    uint8_t msgid[FY_MSGID_LEN];
    const uint8_t *record;
    size_t len;
} fy_tx_info;

/* Calls fn for pending halves with ids >= from_id, oldest first, at most limit; everything
 * borrowed for the call. FY_OK or a store error. */
int fy_core_tx_list(fy_core *c, uint64_t from_id, size_t limit,
                    void (*fn)(void *arg, const fy_tx_info *t), void *arg);

/* ---- Subscriptions ----------------------------------------------------------------------- */

typedef struct fy_sub_spec {
    const char *group;          /* consumer group name */
    const char *topic;          /* topic name */
    const char *filter;         /* tag expression: NULL, "", "*", "TagA || TagB" */
    fy_sub_mode mode;           /* clustering or broadcast */
    fy_sub_start start;         /* where a group without committed offsets starts */
    uint64_t start_ms;          /* FY_START_TIME */
    const char *client_id;      /* shown in group descriptions */
    fy_filter_type filter_type; /* FY_FILTER_TAG (default) or FY_FILTER_SQL92 */
    char *errbuf;               /* if not NULL, why a subscription was refused (one line) */
    size_t errbuf_len;
    bool orderly; /* clustering only: one message at a time per queue, in offset order; a
                   * failure is retried in place after orderly_suspend (the queue waits), and
                   * after max_reconsume it goes to the dead-letter queue */
    /* For adapters: a predicate over each decoded record, applied after the tag or SQL92
     * filter; a record it refuses is settled for this member without a delivery. Runs on the
     * loop inside dispatch; it must not call the core. */
    bool (*match)(void *owner, const fy_record_view *v);
    bool no_retry;       /* clustering: do not consume the group's %RETRY% topic (the member
                          * never nacks with RETRY; no retry topic is created for the group) */
    bool no_ack_timeout; /* deliveries wait for their ack as long as the member lives (MQTT) */
    bool light;          /* consume the light queue named `topic` (see fy_core_set_router) */
    fy_proto proto;      /* the member's protocol (counters only) */
} fy_sub_spec;

/* One delivery: the record (borrowed for the call; copy what you keep) and its id. */
typedef struct fy_delivery {
    uint64_t id;
    const uint8_t *record;
    size_t len;
    uint32_t topic_id; /* where the message is stored */
    uint32_t queue_id;
    uint64_t offset;
    uint32_t
        entry_queue_id; /* what the member read: for a light queue, its entry (else the same) */
    uint64_t entry_offset;
    uint8_t msgid[FY_MSGID_LEN];
    bool redelivered; /* delivered before (to this or another member) and not settled */
} fy_delivery;

/* How the core reaches a subscription's owner. */
typedef struct fy_sub_ops {
    /* A message for the owner; it has used one credit. */
    void (*deliver)(void *owner, fy_sub *sub, const fy_delivery *d);
    /* The core ended the subscription (topic deleted, shutdown): the owner must not use sub
     * after this returns; the core frees it. */
    void (*closed)(void *owner, fy_sub *sub, int status, const char *reason);
} fy_sub_ops;

/* Joins group spec->group as a member consuming spec->topic. Returns the subscription, or NULL
 * with *err set: -FY_EBADNAME, -FY_ENOTFOUND (no topic, auto-create off), -FY_EINVAL (bad filter,
 * or the group exists with the other mode), and the reason in spec->errbuf. The member starts
 * with no credit. */
fy_sub *fy_core_subscribe(fy_core *c, const fy_sub_spec *spec, const fy_sub_ops *ops, void *owner,
                          int *err);
/* Adds n credits; deliveries follow from a deferred event, never inside this call. */
void fy_sub_credit(fy_sub *s, uint32_t n);
/* Settles a delivery: the group's committed offset moves past it once everything before it is
 * settled. Unknown or stale ids are ignored (returns -FY_ENOTFOUND). */
int fy_sub_ack(fy_sub *s, uint64_t delivery_id);
/* Settles a delivery like fy_sub_ack, and calls done(arg, FY_OK) once the group's committed
 * offset past it is stored: from then on a restart does not deliver it again. That waits for
 * every earlier delivery of its queue to be settled too (in this run or a later member's).
 * done(arg, -FY_ECANCELED) when it will not happen: the group or topic was deleted, or the core
 * is being freed — then the owner may be gone, and done must only free arg. -FY_ENOTFOUND
 * (unknown or stale id) or -FY_ENOTSUP (a broadcast member: its offsets are not stored; the
 * delivery is settled all the same) and done is not called. */
int fy_sub_ack_durable(fy_sub *s, uint64_t delivery_id, fy_core_done_cb done, void *arg);
/* Gives a delivery back: it will be delivered again (see fy_nack_how). */
int fy_sub_nack(fy_sub *s, uint64_t delivery_id, fy_nack_how how);
/* Deliveries of s not yet settled (for display). */
uint32_t fy_sub_inflight(const fy_sub *s);
/* Leaves the group: unsettled deliveries go back to the group; no call reaches the owner after
 * this returns. */
void fy_sub_close(fy_sub *s);

/* ---- Groups ------------------------------------------------------------------------------ */

typedef struct fy_group_member_info {
    uint32_t member_id;
    const char *client_id;
    const char *topic;
    const char *filter;
    uint32_t credit;
    uint32_t inflight;
} fy_group_member_info;

typedef struct fy_group_queue_info {
    const char *topic;
    uint32_t queue_id;
    uint64_t committed;
    uint64_t max_offset;
    uint32_t owner; /* member id, 0 = none */
} fy_group_queue_info;

/* Calls fn for every known group (name, mode, members online). */
void fy_core_group_each(fy_core *c,
                        void (*fn)(void *arg, const char *name, fy_sub_mode mode, uint32_t members),
                        void *arg);
/* Describes a group: calls member() per member and queue() per (topic, queue) the group has
 * consumed or is consuming. FY_OK or -FY_ENOTFOUND. */
int fy_core_group_describe(fy_core *c, const char *group, fy_sub_mode *mode,
                           void (*member)(void *arg, const fy_group_member_info *m),
                           void (*queue)(void *arg, const fy_group_queue_info *q), void *arg);
/* The committed offset of (group, topic, queue): the group's position in memory, or as stored
 * when no member has read that topic since the start. FY_OK, or -FY_ENOTFOUND (no such topic
 * or queue, or nothing committed). */
int fy_core_group_committed(fy_core *c, const char *group, const char *topic, uint32_t queue_id,
                            uint64_t *offset);
/* Moves a group's position in topic to the first message stored at or after ts_ms, per queue;
 * deliveries in flight are forgotten (their acks are ignored). Calls fn per queue with the new
 * offset, then done once the offsets are stored. The new position holds at once: a member that
 * joins before they are stored starts from it, and describe shows it. FY_OK, -FY_ENOTFOUND,
 * -FY_ENOTSUP (a broadcast group). */
int fy_core_group_reset(fy_core *c, const char *group, const char *topic, uint64_t ts_ms,
                        void (*fn)(void *arg, uint32_t queue_id, uint64_t offset),
                        fy_core_done_cb done, void *arg);

/* Deletes a clustering group: its committed offsets and its record with its settings (its retry
 * and dead-letter topics stay). -FY_ENOTFOUND, -FY_EBUSY (a member is online) or -FY_EUNHEALTHY
 * (the store refuses writes) at once, or FY_OK and done once stored. From FY_OK on the name is
 * free (a group may be made under it again); should the write fail, done gets the error and the
 * group is back with its settings and stored offsets (unless its name was taken meanwhile), as a
 * restart would find it. */
int fy_core_group_delete(fy_core *c, const char *group, fy_core_done_cb done, void *arg);

/* Per-group settings (RocketMQ's subscription group config), kept in the group's record. */
#define FY_GROUP_MAX_RECONSUME_DEFAULT (-1) /* the broker's max_reconsume applies */
#define FY_GROUP_MAX_RECONSUME_MAX 64

typedef struct fy_group_config {
    fy_sub_mode mode;
    int max_reconsume; /* the group's own (0..64) or FY_GROUP_MAX_RECONSUME_DEFAULT */
    uint32_t max_reconsume_effective; /* what applies: the group's, else the broker's */
} fy_group_config;

/* Reads a group's settings into out. FY_OK or -FY_ENOTFOUND. */
int fy_core_group_config_get(fy_core *c, const char *group, fy_group_config *out);

/* Sets how many times the group's failed messages are delivered again before they go to
 * %DLQ%<group> (through %RETRY%<group> when consumed concurrently, in place when orderly):
 * 0..64, or FY_GROUP_MAX_RECONSUME_DEFAULT to follow the broker's max_reconsume again. It
 * applies from the next failure on, to messages already waiting in the retry topic too (their
 * reconsume count is compared with the new value). A group that does not exist is created in
 * clustering mode with no member and no offsets (RocketMQ lets a subscription group be set up
 * before its consumers start); a broadcast member can then not join it. Returns at once
 * -FY_EBADNAME, -FY_EINVAL (out of range), -FY_ENOTSUP (a broadcast group: its failures are
 * delivered again at once, never dead-lettered), -FY_EUNHEALTHY; or FY_OK with the setting in
 * force, *out (if not NULL) the group's settings, and done (may be NULL) called once the record
 * is stored. Should the write fail, done gets the error and the group is as the store has it:
 * one made by this call is gone again (members that joined it meanwhile get sub_closed with the
 * error), one that was there has the max_reconsume of its stored record back. */
int fy_core_group_set_max_reconsume(fy_core *c, const char *group, int max_reconsume,
                                    fy_group_config *out, fy_core_done_cb done, void *arg);

/* ---- Light queues ------------------------------------------------------------------------ */

/* RocketMQ's light message queues: a light queue indexes messages stored in other topics, so
 * that a consumer with a narrow interest (an MQTT session) reads only its own messages. The
 * body is stored once; each light queue that wants a message gets a small entry in the same
 * store batch as the message. A light queue lives in the internal topic %LQ%<name> (one
 * queue, created on first use); a member subscribed with spec.light reads the messages its
 * entries refer to (the delivery's location and id are the message's own). Entries whose
 * message is gone (retention, topic deleted) are skipped. */
#define FY_LQ_PREFIX "%LQ%"

/* Called once per stored message (produced, or a delayed message becoming due): emit(ctx, name)
 * for each light queue that must index it, each name at most once per message (the router
 * makes sure: an entry is added per call). Runs on the loop inside the produce; it must not
 * call the core. */
typedef void (*fy_route_emit)(void *ctx, const char *name);
typedef void (*fy_router_fn)(void *arg, const fy_record_view *v, fy_route_emit emit, void *ctx);

/* Sets the router (one per core; NULL removes it). */
void fy_core_set_router(fy_core *c, fy_router_fn fn, void *arg);
/* Deletes light queue name (its entries, not the messages): its owner has gone. -FY_ENOTFOUND,
 * or FY_OK and done. Unlike fy_core_topic_delete it is gone from the core even when the store
 * refuses or fails the write (done gets the error; a restart may find it again): a new owner of
 * the name starts with an empty light queue. */
int fy_core_light_delete(fy_core *c, const char *name, fy_core_done_cb done, void *arg);

/* ---- Topic watch ------------------------------------------------------------------------- */

/* Calls fn for every topic created from now on (automatically or by request), from a deferred
 * event after the creation, never inside the call that created it. Internal topics (%RETRY%,
 * %DLQ%) are not reported. At most 8 watchers; returns -FY_EINVAL beyond. */
int fy_core_watch_topics(fy_core *c, void (*fn)(void *arg, const fy_topic_info *t), void *arg);
/* Stops the calls of fn with arg (a watcher that goes before the core: an adapter's stop), those
 * of creations not yet reported included. Not from inside a watcher's call. */
void fy_core_unwatch_topics(fy_core *c, void (*fn)(void *arg, const fy_topic_info *t), void *arg);

/* ---- Adapter key-value namespace --------------------------------------------------------- */

/* Each adapter keeps its own durable state (MQTT sessions, retained messages) in a namespace
 * of the store named after it; keys are bytes, ordered bytewise. */
typedef struct fy_kv_op {
    bool del;     /* delete key (val ignored) */
    fy_slice key; /* borrowed for the call */
    fy_slice val;
} fy_kv_op;

/* Reads one key into out (replacing its contents). FY_OK, -FY_ENOTFOUND or a store error. */
int fy_core_kv_get(fy_core *c, const char *ns, const void *key, size_t klen, fy_buf *out);
/* Calls fn for each key starting with prefix, in key order; fn returns non-zero to stop. */
int fy_core_kv_scan(fy_core *c, const char *ns, const void *prefix, size_t plen,
                    int (*fn)(void *arg, const uint8_t *key, size_t klen, const uint8_t *val,
                              size_t vlen),
                    void *arg);
/* Writes n operations in one store batch; done (may be NULL) runs once they are durable per
 * the flush policy. FY_OK or -FY_EUNHEALTHY at once (done not called). */
int fy_core_kv_write(fy_core *c, const char *ns, const fy_kv_op *ops, size_t n,
                     fy_core_done_cb done, void *arg);
/* Like fy_core_produce, with key-value operations of namespace ns written in the same store
 * batch: the messages and the operations become durable together or not at all (MQTT: a QoS 2
 * packet id, or a retained message, with the message itself). */
int fy_core_produce_kv(fy_core *c, const fy_produce_msg *msgs, size_t n, const char *ns,
                       const fy_kv_op *ops, size_t nops, fy_produce_cb done, void *arg,
                       size_t *bad_index);

/* ---- Counters ---------------------------------------------------------------------------- */

typedef struct fy_core_stats {
    uint64_t topics;
    uint64_t groups;
    uint64_t retention_deleted; /* messages deleted by retention since start */
    uint64_t retention_skipped; /* of which groups had not consumed (they skipped ahead) */
    uint64_t tx_pending;        /* half messages waiting for commit or rollback */
    uint64_t tx_halves;         /* half messages stored since start */
    uint64_t tx_commits;        /* ... committed since start */
    uint64_t tx_rollbacks;      /* ... rolled back since start (by producers or by checks) */
    uint64_t tx_checks;         /* check-backs sent to producers since start */
    uint64_t tx_expired;        /* halves rolled back after tx_max_checks since start */
    uint64_t delayed_pending;   /* messages waiting in the time index (delayed and retries) */
    uint64_t retries;           /* failures sent to a %RETRY% topic since start */
    uint64_t dead_letters;      /* messages sent to a %DLQ% topic since start */
} fy_core_stats;
void fy_core_get_stats(fy_core *c, fy_core_stats *st);

#endif
