/* SPDX-License-Identifier: Apache-2.0 */
/** @file
 * libferry: the C client of the Ferry broker's native protocol (docs/protocol.md). One
 * fy_client is one TCP connection to ferryd; on it run producer calls (fy_send and friends),
 * consumers (fy_consumer_new) and admin calls (topics, groups, message lookup by id or key).
 *
 * Return values: every int-returning function returns FY_OK (0) or a negative FY_E* code from
 * ferry/errors.h; fy_strerror() names it and fy_client_last_error() gives the details of the
 * last failure on a handle. Out of memory is -FY_ENOMEM: the library never aborts.
 *
 * Threads: the library starts no thread. All I/O happens inside the calls, on a non-blocking
 * socket with poll() and deadlines. A client and its consumers must be used by one thread at a
 * time (the caller serialises access; different clients are independent and may run in
 * different threads). Callbacks run on the calling thread, from inside fy_client_poll(),
 * fy_client_flush() or another call on the same client, never from another thread.
 *
 * Connection loss: when the connection drops, requests in flight fail with -FY_ECLOSED and their
 * outcome is unknown (a send may or may not have been stored). The next call reconnects
 * (unless fy_client_opts.reconnect is false), retrying with back-off for up to
 * connect_timeout_ms, says HELLO again and subscribes every consumer again; deliveries that
 * were not acknowledged on the old connection are redelivered by the broker.
 */
#ifndef FERRY_CLIENT_H
#define FERRY_CLIENT_H

#include "ferry/errors.h"
#include "ferry/message.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A connection to one broker: opaque. */
typedef struct fy_client fy_client;
/** A member of a consumer group, on a client: opaque. */
typedef struct fy_consumer fy_consumer;

/** The library's version, "MAJOR.MINOR.PATCH". Never NULL. */
const char *fy_version(void);

/* ==== Client ================================================================================ */

/** Options of fy_client_new(). Fill with fy_client_opts_init() first, then change fields: later
 * versions may add fields, which fy_client_opts_init() sets to their defaults. Strings are
 * copied by fy_client_new(). */
typedef struct fy_client_opts {
    /** Broker address "host:port", "host" (port 10911) or "[ipv6]:port". NULL =
     * "127.0.0.1:10911". Host names are resolved with getaddrinfo() (which may block). */
    const char *broker;
    /** Shown by the broker in group descriptions. NULL = "<hostname>-<pid>". */
    const char *client_id;
    /** Name of the program, sent in HELLO. NULL = "libferry". */
    const char *client_name;
    /** Limit for one connection attempt (TCP connect plus HELLO), and for all attempts of one
     * reconnection together. 0 = 5000. */
    int connect_timeout_ms;
    /** Limit for each request's answer. 0 = 10000. */
    int request_timeout_ms;
    /** Reconnect when the connection drops (default true). When false, every call after a
     * drop fails with -FY_ECLOSED until fy_client_connect() is called. */
    bool reconnect;
    /** Most fy_send_async() requests in flight; a further fy_send_async() first waits (doing
     * I/O) for one to finish. 0 = 4096. */
    uint32_t max_inflight;
    /** User name sent in HELLO when the broker has a password file (docs/security.md). NULL =
     * anonymous. */
    const char *username;
    /** Password of @p username. NULL = "". Copied, and wiped when the client is freed. */
    const char *password;
    /** Connect with TLS (1.2 or later) to the broker's TLS port ([native] tls_port, 10912). The
     * broker's certificate must be valid for the host of @p broker (DNS name or IP address)
     * and signed by a CA of @p tls_cafile. Default false. */
    bool tls;
    /** PEM file of the CAs that sign the broker's certificate. NULL = the system's CAs. */
    const char *tls_cafile;
    /** PEM client certificate and its private key, for brokers with require_certificate (the
     * certificate's CN is then the user name with use_identity_as_username). NULL = none. */
    const char *tls_certfile;
    const char *tls_keyfile;
} fy_client_opts;

/** Sets every field of @p opts to its default. */
void fy_client_opts_init(fy_client_opts *opts);

/** Creates a client. It does not connect yet: fy_client_connect() does, or else the first call
 * that needs the broker.
 * @param opts options (NULL = all defaults); borrowed for the call.
 * @param err  if not NULL, set to FY_OK, -FY_EINVAL (bad broker address, negative timeout, or
 *             a TLS file that cannot be loaded) or -FY_ENOMEM.
 * @return the client, owned by the caller (fy_client_free()), or NULL on error. */
fy_client *fy_client_new(const fy_client_opts *opts, int *err);

/** Connects and says HELLO, unless already connected (also after a drop with reconnect off).
 * One attempt per resolved address, each limited by connect_timeout_ms; consumers are
 * subscribed again.
 * @return FY_OK; -FY_ECLOSED (refused or unreachable), -FY_ETIMEDOUT, -FY_EINVAL (the host does
 * not resolve), -FY_EVERSION (the broker speaks another protocol version), -FY_EPROTO or
 * -FY_ENOMEM. */
int fy_client_connect(fy_client *c);

/** Closes the connection and frees the client and every consumer still open on it (their
 * handles become invalid). Acks and credits not yet written are written first if possible
 * (waiting at most 1 s); async sends still in flight complete with -FY_ECANCELED, their
 * callbacks called from inside this function — call fy_client_flush() first to wait for them.
 * NULL-safe. Must not be called from inside a callback of this client. */
void fy_client_free(fy_client *c);

/** Text describing the last failure of a call on this client or its consumers (for example
 * "broker: topic 'x' not found" or "connect 127.0.0.1:10911: Connection refused"); "" if none
 * yet. Valid until the next call on the client. Never NULL. */
const char *fy_client_last_error(const fy_client *c);

/** True while the client has a live connection that has completed HELLO. */
bool fy_client_is_connected(const fy_client *c);

/** The broker's version string from HELLO ("" before the first connection). */
const char *fy_client_broker_version(const fy_client *c);

/** Sends a PING and waits for its answer (connecting first if needed). FY_OK or an error. */
int fy_client_ping(fy_client *c);

/** Does I/O for up to @p timeout_ms (0 = do not wait, negative = without limit) and runs the
 * callbacks that are ready: completions of fy_send_async() and deliveries to callback
 * consumers. Returns as soon as at least one callback ran.
 * @return the number of callbacks run (>= 0), or a negative error: -FY_ECLOSED when the
 * connection is down and cannot be re-established, -FY_ENOMEM. */
int fy_client_poll(fy_client *c, int timeout_ms);

/** Writes pending acks and credits and waits until every fy_send_async() in flight has
 * completed (its callback has run), for up to @p timeout_ms (negative = without limit).
 * @return FY_OK; -FY_ETIMEDOUT if sends are still in flight; -FY_ECLOSED if the connection
 * dropped meanwhile (the affected sends completed with -FY_ECLOSED). */
int fy_client_flush(fy_client *c, int timeout_ms);

/** Number of fy_send_async() requests whose callback has not run yet. */
size_t fy_client_inflight(const fy_client *c);

/* ==== Producer ============================================================================== */

/** queue_id of a delayed message's send result: it is held until due (store_ms is then the due
 * time); it gets a queue and offset when it is appended to its topic. */
#define FY_QUEUE_SCHEDULED UINT32_MAX

/** Where the broker stored a message. */
typedef struct fy_send_result {
    uint32_t queue_id; /**< or FY_QUEUE_SCHEDULED for a delayed message */
    uint64_t queue_offset;
    uint64_t store_ms;                 /**< store time, ms since the epoch */
    char msgid[FY_MESSAGE_ID_LEN + 1]; /**< message id, 32 hex characters and a NUL */
} fy_send_result;

/** Completion of fy_send_async(): @p status is FY_OK (then @p result is set) or a negative
 * error (then @p result is NULL): a broker refusal (-FY_ETOOBIG, -FY_EBADNAME, -FY_ENOTFOUND,
 * ...), -FY_ETIMEDOUT, -FY_ECLOSED (the connection dropped: outcome unknown) or -FY_ECANCELED
 * (the client was freed). @p result is borrowed for the call. Called exactly once. */
typedef void (*fy_send_cb)(void *arg, int status, const fy_send_result *result);

/** Sends one message and waits until the broker has stored it (per its flush policy). @p msg is
 * borrowed for the call; it is not changed.
 * @param result if not NULL, filled in on success.
 * @return FY_OK; -FY_EINVAL (no topic); -FY_ETOOBIG (larger than the broker's frame limit, or
 * refused by the broker); a broker refusal (-FY_EBADNAME, -FY_ENOTFOUND when the topic does not
 * exist and the broker does not create topics, -FY_EUNHEALTHY ...); -FY_ETIMEDOUT after
 * request_timeout_ms; -FY_ECLOSED (connection lost: outcome unknown); -FY_ENOMEM. */
int fy_send(fy_client *c, const fy_message *msg, fy_send_result *result);

/** Queues one message for sending without waiting for the answer: many sends may be in flight
 * on the connection (pipelining). @p msg is encoded during the call and may be freed right
 * after. @p cb (may be NULL) is called exactly once, later, from inside fy_client_poll(),
 * fy_client_flush(), fy_client_free() or another call on this client.
 * @return FY_OK (then @p cb will be called), or an error with no call of @p cb: -FY_EINVAL,
 * -FY_ETOOBIG, -FY_ECLOSED (not connected and cannot connect), -FY_ETIMEDOUT (max_inflight
 * requests still in flight after request_timeout_ms), -FY_ENOMEM. */
int fy_send_async(fy_client *c, const fy_message *msg, fy_send_cb cb, void *arg);

/** Sends @p n messages (1 to 1024, may name different topics) in one request and waits: the
 * broker stores all of them or none. @p results (if not NULL) must have room for @p n entries,
 * filled in order on success. Return codes as for fy_send(); -FY_EINVAL if @p n is 0 or over
 * 1024. */
int fy_send_batch(fy_client *c, const fy_message *const *msgs, size_t n, fy_send_result *results);

/* ==== Transactional producer ================================================================ */

/** The state of a local transaction: what the execute and check callbacks return. */
typedef enum fy_tx_state {
    FY_TX_COMMIT = 0,   /**< done: the half message becomes visible to consumers */
    FY_TX_ROLLBACK = 1, /**< undone: the half message is deleted */
    FY_TX_UNKNOWN = 2   /**< not known yet: the broker will check back later */
} fy_tx_state;

/** A transactional producer of one producer group, on a client: opaque. */
typedef struct fy_tx_producer fy_tx_producer;

/** The local transaction (fy_tx_send()'s @p execute) and the check-back
 * (fy_tx_producer_opts.check). @p msg is borrowed for the call; fy_message_id() gives the half
 * message's id (the same in the execute call and in every check of that transaction: store it
 * with the local transaction to answer checks), and fy_tx_id_of() its transaction id. */
typedef fy_tx_state (*fy_tx_cb)(void *arg, const fy_message *msg);

/** Options of fy_tx_producer_new(). Fill with fy_tx_producer_opts_init() first. */
typedef struct fy_tx_producer_opts {
    /** Producer group (required; topic naming rules). Check-backs of a transaction go to a
     * producer of the group that sent it. */
    const char *group;
    /** Check-back: the broker asks about a transaction still open after its tx_check_after
     * (6 s by default). Called from inside fy_client_poll(), the answer is sent to the broker at
     * once. NULL: the producer does not answer checks (the broker rolls the half back after
     * tx_max_checks). */
    fy_tx_cb check;
    void *check_arg;
} fy_tx_producer_opts;

/** What fy_tx_send() did. */
typedef struct fy_tx_result {
    uint64_t tx_id;                      /**< transaction id (0 if the half was not stored) */
    char half_id[FY_MESSAGE_ID_LEN + 1]; /**< the half message's id */
    fy_tx_state state;                   /**< what execute returned */
    fy_send_result result;               /**< state FY_TX_COMMIT: where the message was stored */
} fy_tx_result;

/** Sets every field of @p opts to its default. */
void fy_tx_producer_opts_init(fy_tx_producer_opts *opts);

/** Registers a transactional producer of group @p opts->group on @p c (TX_REGISTER, waited for)
 * so that the broker can send it check-backs; registered again after a reconnection.
 * @param err if not NULL: FY_OK, -FY_EINVAL (no group), -FY_EBADNAME, -FY_ETIMEDOUT,
 * -FY_ECLOSED, -FY_ENOMEM.
 * @return the producer, owned by the caller (fy_tx_producer_free()), or NULL. */
fy_tx_producer *fy_tx_producer_new(fy_client *c, const fy_tx_producer_opts *opts, int *err);

/** Unregisters (TX_UNREGISTER, waited for at most request_timeout_ms) and frees. NULL-safe. Not
 * from inside its own check callback. */
void fy_tx_producer_free(fy_tx_producer *p);

/** Sends @p msg in a transaction (RocketMQ's sendMessageInTransaction): stores it as a half
 * message (invisible to consumers), calls @p execute (the local transaction) and sends its
 * decision: commit makes the message visible (atomically: it is appended exactly once),
 * rollback deletes it, unknown sends nothing and leaves it to the check-back.
 * @param out if not NULL, filled in (tx_id as soon as the half is stored).
 * @return FY_OK (the half was stored and the decision delivered); the errors of fy_send() when
 * the half was not stored (execute is then not called); or the error of ending it (e.g.
 * -FY_ECLOSED: the half stays open and the broker will check back). */
int fy_tx_send(fy_tx_producer *p, const fy_message *msg, fy_tx_cb execute, void *arg,
               fy_tx_result *out);

/** The transaction id carried in a half message id (fy_message_id() of the message given to a
 * fy_tx_cb), or 0 if @p msg is not a half message. */
uint64_t fy_tx_id_of(const fy_message *msg);

/** Lower level, for tools: stores @p msg as a half message of producer group @p group and
 * returns its transaction id in @p tx_id (and the half's id in @p half, if not NULL). Return
 * codes as for fy_send(), -FY_EINVAL without a group. */
int fy_tx_send_half(fy_client *c, const char *group, const fy_message *msg, uint64_t *tx_id,
                    fy_send_result *half);

/** Ends transaction @p tx_id with @p state (any connection may end any transaction).
 * @param result if not NULL and @p state is FY_TX_COMMIT: where the message was stored.
 * @return FY_OK; -FY_ENOTFOUND (no such pending transaction: already ended, rolled back by the
 * broker, or its topic is gone); -FY_EAGAIN (an earlier end is being stored); -FY_EINVAL; the
 * errors of every request. */
int fy_tx_end(fy_client *c, uint64_t tx_id, fy_tx_state state, fy_send_result *result);

/** A pending transaction in fy_tx_list(). */
typedef struct fy_tx_pending {
    uint64_t tx_id;
    const char *group;
    uint64_t stored_ms;  /**< when the half message was stored */
    uint32_t checks;     /**< check-backs so far */
    fy_message *message; /**< the half message (owned by the list) */
} fy_tx_pending;

/** The answer of fy_tx_list(), oldest first. */
typedef struct fy_tx_pending_list {
    size_t n;
    fy_tx_pending *txs;
} fy_tx_pending_list;

/** Lists pending transactions with ids >= @p from_id, at most @p limit (1 to 1024) and as many as
 * fit in one frame; page on from the last id + 1. Admin-call return codes. */
int fy_tx_list(fy_client *c, uint64_t from_id, size_t limit, fy_tx_pending_list **out);
/** Frees the answer of fy_tx_list(). NULL-safe. */
void fy_tx_pending_list_free(fy_tx_pending_list *list);

/* ==== Consumer ============================================================================== */

/** Consumption mode of a group. */
typedef enum fy_consume_mode {
    FY_CONSUME_CLUSTERING = 0, /**< each message goes to one member of the group */
    FY_CONSUME_BROADCAST = 1   /**< every member gets every message */
} fy_consume_mode;

/** Where a group with no committed offset for a queue starts. */
typedef enum fy_consume_from {
    FY_FROM_LAST = 0,  /**< only messages stored from now on */
    FY_FROM_FIRST = 1, /**< the oldest message kept */
    FY_FROM_TIME = 2   /**< the first message stored at or after from_ms */
} fy_consume_from;

/** What becomes of a delivery: the value a consume callback returns, and the @p how of
 * fy_consumer_nack(). */
typedef enum fy_consume_status {
    FY_CONSUME_SUCCESS = 0,     /**< ack: processed, the group's offset moves on */
    FY_CONSUME_RETRY_LATER = 1, /**< nack: deliver again later, with back-off */
    FY_CONSUME_RELEASE = 2,     /**< nack: deliver again now, maybe to another member */
    FY_CONSUME_REJECT = 3       /**< nack: do not deliver again (dead letter) */
} fy_consume_status;

/** A consume callback: called from inside fy_client_poll() for each delivery, in order. @p msg
 * is borrowed for the call (fy_message_dup() keeps a copy). The return value settles the
 * delivery. The callback may call other functions of the client (sends, fy_consumer_free() of
 * its own consumer) but not fy_client_free(). */
typedef fy_consume_status (*fy_consume_cb)(void *arg, fy_consumer *consumer, const fy_message *msg);

/** Options of fy_consumer_new(). Fill with fy_consumer_opts_init() first. Strings are copied. */
typedef struct fy_consumer_opts {
    const char *group; /**< consumer group (required; topic naming rules) */
    const char *topic; /**< topic to consume (required) */
    /** With filter_sql false: a tag expression, NULL, "" or "*" = all, or "TagA || TagB".
     * With filter_sql true: a SQL92 selector on properties and TAGS, e.g.
     * "region = 'eu' AND amount > 100" (docs/selectors.md); one that does not parse makes
     * fy_consumer_new() fail with -FY_EINVAL and the position in fy_client_last_error(). */
    const char *filter;
    bool filter_sql; /**< filter is SQL92 (default false: a tag expression) */
    /** Orderly consumption (clustering only): the broker delivers one message at a time per
     * queue, in offset order; a failed message (RETRY_LATER) comes back in place after the
     * broker's orderly_suspend, and after max_reconsume failures goes to the dead-letter queue.
     * All members of a group must agree. Default false (concurrent). */
    bool orderly;
    fy_consume_mode mode; /**< default FY_CONSUME_CLUSTERING */
    fy_consume_from from; /**< default FY_FROM_LAST */
    uint64_t from_ms;     /**< FY_FROM_TIME: ms since the epoch */
    /** Deliveries the broker may push ahead of the application (credit kept topped up as
     * messages are handed out). 0 = 256. */
    uint32_t window;
    /** NULL: pull messages with fy_consumer_poll(). Else: deliveries are passed to this
     * callback from inside fy_client_poll(). */
    fy_consume_cb callback;
    void *callback_arg;
} fy_consumer_opts;

/** Sets every field of @p opts to its default. */
void fy_consumer_opts_init(fy_consumer_opts *opts);

/** Joins a consumer group as a member (SUBSCRIBE) and waits for the broker's answer; deliveries
 * start flowing right after. The consumer belongs to @p c and is used on the same thread.
 * @param err if not NULL, set to FY_OK or: -FY_EINVAL (missing group or topic, bad enum),
 * -FY_EBADNAME, -FY_ENOTFOUND (unknown topic and the broker does not create topics), a broker
 * refusal (-FY_EINVAL: bad filter or the group exists with the other mode), -FY_ETIMEDOUT,
 * -FY_ECLOSED, -FY_ENOMEM.
 * @return the consumer, owned by the caller (fy_consumer_free()), or NULL on error. */
fy_consumer *fy_consumer_new(fy_client *c, const fy_consumer_opts *opts, int *err);

/** Leaves the group: writes the pending acks, sends UNSUBSCRIBE and waits for its answer (at most
 * request_timeout_ms); deliveries not acknowledged go back to the group. Messages received from
 * this consumer can no longer be acknowledged. NULL-safe. May be called from inside the
 * consumer's own callback (the consumer is then freed when the callback returns). */
void fy_consumer_free(fy_consumer *cons);

/** Takes the next delivery of a pull consumer, waiting up to @p timeout_ms (0 = do not wait,
 * negative = without limit). Acknowledge it with fy_consumer_ack() or fy_consumer_nack(), then
 * free it. Other I/O of the client (async send completions) happens meanwhile.
 * @param out set to the message, owned by the caller (fy_message_free()), or NULL on error.
 * @return FY_OK; -FY_ETIMEDOUT (nothing arrived in time); -FY_EINVAL (a callback consumer);
 * -FY_ECLOSED (the broker closed the subscription, e.g. its topic was deleted — see
 * fy_client_last_error() — or the connection is down and cannot be re-established);
 * -FY_ENOMEM. */
int fy_consumer_poll(fy_consumer *cons, int timeout_ms, fy_message **out);

/** Acknowledges a delivery received from @p cons: the group's offset may move past it. Acks are
 * batched into one ACK frame (sent without reply) and written when no more deliveries wait
 * locally, at the next call that does I/O, or in fy_client_flush().
 * @return FY_OK; -FY_EINVAL (@p msg was not delivered by @p cons); -FY_ECLOSED (it was delivered
 * on a connection that has since dropped: the broker delivers it again). */
int fy_consumer_ack(fy_consumer *cons, const fy_message *msg);

/** Gives a delivery back (NACK, sent without reply): @p how is FY_CONSUME_RETRY_LATER,
 * FY_CONSUME_RELEASE or FY_CONSUME_REJECT. Return codes as fy_consumer_ack(), and -FY_EINVAL
 * for another @p how. */
int fy_consumer_nack(fy_consumer *cons, const fy_message *msg, fy_consume_status how);

/** The consumer's client. */
fy_client *fy_consumer_client(const fy_consumer *cons);

/* ==== Admin ================================================================================= */

/** Offsets of one queue: the first message kept and the next offset to be written. */
typedef struct fy_queue_range {
    uint64_t min_offset;
    uint64_t max_offset;
} fy_queue_range;

/** A topic (from fy_topic_list() or fy_topic_describe()). */
typedef struct fy_topic_info {
    const char *name;
    uint32_t topic_id;
    uint32_t queues;
    /** fy_topic_describe(): @c queues entries, index = queue id. fy_topic_list(): NULL. */
    const fy_queue_range *ranges;
} fy_topic_info;

/** The answer of fy_topic_list(), in name order. */
typedef struct fy_topics {
    size_t n;
    const fy_topic_info *topics;
} fy_topics;

/** A consumer group in fy_group_list(). */
typedef struct fy_group_summary {
    const char *name;
    fy_consume_mode mode;
    uint32_t members; /**< members online */
} fy_group_summary;

/** The answer of fy_group_list(). */
typedef struct fy_groups {
    size_t n;
    const fy_group_summary *groups;
} fy_groups;

/** A member of a group (one subscription). */
typedef struct fy_group_member {
    uint32_t member_id;
    const char *client_id;
    const char *topic;
    const char *filter;
    uint32_t credit;   /**< deliveries the broker may still push */
    uint32_t inflight; /**< deliveries not yet acknowledged */
} fy_group_member;

/** A group's position in one queue. */
typedef struct fy_group_queue {
    const char *topic;
    uint32_t queue_id;
    uint64_t committed;  /**< lowest offset not yet acknowledged */
    uint64_t max_offset; /**< next offset to be written */
    uint64_t lag;        /**< max_offset - committed (0 if committed is ahead) */
    uint32_t owner;      /**< member_id consuming the queue, 0 = none */
} fy_group_queue;

/** The answer of fy_group_describe(). */
typedef struct fy_group_info {
    const char *name;
    fy_consume_mode mode;
    size_t nmembers;
    const fy_group_member *members;
    size_t nqueues;
    const fy_group_queue *queues;
} fy_group_info;

/** The answer of fy_group_reset(): the new offset of each queue. */
typedef struct fy_group_offsets {
    size_t n;
    const uint32_t *queue_ids;
    const uint64_t *offsets;
} fy_group_offsets;

/* Every admin call is synchronous: it connects if needed, sends one request, waits at most
 * request_timeout_ms for the answer and returns FY_OK, the broker's refusal (-FY_ENOTFOUND,
 * -FY_EEXIST, -FY_EBADNAME, -FY_EINVAL, ...; details in fy_client_last_error()), -FY_ETIMEDOUT,
 * -FY_ECLOSED, -FY_EPROTO (a malformed answer) or -FY_ENOMEM. Results are owned by the caller
 * and freed with the matching _free function (NULL-safe); on error *out is set to NULL. */

/** Creates topic @p name with @p queues queues (0 = the broker's default_queues). */
int fy_topic_create(fy_client *c, const char *name, uint32_t queues);
/** Deletes topic @p name and its messages; its subscriptions are closed. */
int fy_topic_delete(fy_client *c, const char *name);
/** Lists every topic. */
int fy_topic_list(fy_client *c, fy_topics **out);
/** Frees the answer of fy_topic_list(). NULL-safe. */
void fy_topics_free(fy_topics *list);
/** Describes topic @p name, with the offset range of each queue. */
int fy_topic_describe(fy_client *c, const char *name, fy_topic_info **out);
/** Frees the answer of fy_topic_describe(). NULL-safe. */
void fy_topic_info_free(fy_topic_info *info);

/** Reads a stored message by id (32 hex characters); -FY_EINVAL if @p msgid is malformed
 * (checked before sending), -FY_ENOTFOUND if no such message is kept. *out is a message owned
 * by the caller (fy_message_free()) with its id, queue, offset and store time set. */
int fy_message_get_by_id(fy_client *c, const char *msgid, fy_message **out);

/** The answer of fy_message_find(): the messages found, oldest first. */
typedef struct fy_message_list {
    size_t n;
    /** @c n messages (NULL when @c n is 0), each with its id, queue, offset and store time set.
     * They belong to the list: fy_message_list_free() frees them. A caller may take one over
     * by copying the pointer and setting its slot to NULL (it then frees it with
     * fy_message_free()). */
    fy_message **messages;
} fy_message_list;

/** Finds the messages of @p topic that carry the key @p key (fy_message_add_key(), compared
 * exactly) and were stored within [@p from_ms, @p to_ms] (ms since the epoch, both inclusive),
 * oldest first (by store time), at most @p limit of them. Messages removed by retention are
 * left out.
 * @param from_ms earliest store time; 0 = from the oldest message kept.
 * @param to_ms   latest store time; 0 = no upper bound (everything stored when the broker
 *                answers).
 * @param limit   most messages returned, 1 to 1024; when more match, the oldest are returned
 *                (to page on, call again with @p from_ms = the last message's store time and
 *                skip the ids already seen).
 * @param out     set to the list, owned by the caller (fy_message_list_free()), or NULL on
 *                error. A search that matches nothing is FY_OK with an empty list.
 * @return FY_OK; -FY_EINVAL (no topic or key, @p limit out of range, @p to_ms before
 * @p from_ms; checked before sending); -FY_ENOTFOUND (no such topic); -FY_ETIMEDOUT,
 * -FY_ECLOSED, -FY_EPROTO, -FY_ENOMEM as for every admin call. */
int fy_message_find(fy_client *c, const char *topic, const char *key, uint64_t from_ms,
                    uint64_t to_ms, size_t limit, fy_message_list **out);
/** Frees the answer of fy_message_find() and every message still in it. NULL-safe. */
void fy_message_list_free(fy_message_list *list);

/** Lists the consumer groups. */
int fy_group_list(fy_client *c, fy_groups **out);
/** Frees the answer of fy_group_list(). NULL-safe. */
void fy_groups_free(fy_groups *list);
/** Describes group @p group: members, and per queue its committed offset, lag and owner. */
int fy_group_describe(fy_client *c, const char *group, fy_group_info **out);
/** Frees the answer of fy_group_describe(). NULL-safe. */
void fy_group_info_free(fy_group_info *info);
/** Moves group @p group's position in @p topic to the first message stored at or after @p ts_ms
 * (ms since the epoch), in every queue; deliveries in flight are forgotten. @p out may be NULL
 * when the new offsets are not wanted. */
int fy_group_reset(fy_client *c, const char *group, const char *topic, uint64_t ts_ms,
                   fy_group_offsets **out);
/** Frees the answer of fy_group_reset(). NULL-safe. */
void fy_group_offsets_free(fy_group_offsets *offsets);

/** fy_group_set_max_reconsume(): follow the broker's max_reconsume again. In fy_group_config:
 * the group has no value of its own. */
#define FY_MAX_RECONSUME_DEFAULT (-1)

/** A consumer group's own settings (RocketMQ's subscription group config), kept by the broker
 * with the group across restarts. */
typedef struct fy_group_config {
    const char *name;
    fy_consume_mode mode;
    /** Failures of a message before it goes to the group's dead-letter queue, as set for this
     * group: 0..64, or FY_MAX_RECONSUME_DEFAULT when the broker's max_reconsume applies. */
    int max_reconsume;
    /** The value in force: the group's own, else the broker's max_reconsume. */
    int max_reconsume_effective;
} fy_group_config;

/** Reads the settings of group @p group; -FY_ENOTFOUND if the broker does not know it. */
int fy_group_config_get(fy_client *c, const char *group, fy_group_config **out);
/** Sets how many times a failed message of group @p group is delivered again (through
 * %RETRY%<group>, or in place for orderly consumption) before it goes to %DLQ%<group>:
 * @p max_reconsume 0..64, or FY_MAX_RECONSUME_DEFAULT to follow the broker's max_reconsume again
 * (-FY_EINVAL otherwise, checked before sending). It applies from the next failure on, also to
 * messages already waiting in the retry topic. A group the broker does not know is created in
 * clustering mode with no members (as RocketMQ lets a subscription group be set up before its
 * consumers start); -FY_ENOTSUP for a broadcast group (it never retries through %RETRY%). The
 * answer comes once the setting is stored; @p out (may be NULL) gets the group's settings. */
int fy_group_set_max_reconsume(fy_client *c, const char *group, int max_reconsume,
                               fy_group_config **out);
/** Frees the answer of fy_group_config_get() or fy_group_set_max_reconsume(). NULL-safe. */
void fy_group_config_free(fy_group_config *cfg);

#ifdef __cplusplus
}
#endif

#endif
