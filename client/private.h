/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's private declarations, shared by the files of client/: the client, consumer and
 * message structures, the request machinery (client.c) and the record <-> message conversions
 * (message.c). Nothing here is public; include/ferry/ holds the API. */
#ifndef FERRY_CLIENT_PRIVATE_H
#define FERRY_CLIENT_PRIVATE_H

#include "common/buf.h"
#include "common/record.h"
#include "common/wire.h"

#include "ferry/client.h"
#include "ferry/message.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CL_DEFAULT_HOST "127.0.0.1"
#define CL_DEFAULT_PORT 10911
#define CL_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define CL_DEFAULT_REQUEST_TIMEOUT_MS 10000
#define CL_DEFAULT_MAX_INFLIGHT 4096
#define CL_DEFAULT_WINDOW 256
#define CL_NO_DEADLINE INT64_MAX
#define CL_ERR_LEN 512

/* ---- Messages (message.c) ------------------------------------------------------------------ */

typedef struct cl_prop {
    char *name;
    char *value;
} cl_prop;

struct fy_message {
    char *topic;        /* NULL = none */
    char *tag;          /* NULL = none */
    char *sharding_key; /* NULL = none */
    char *born_host;    /* NULL = none */
    char **keys;
    size_t nkeys, capkeys;
    cl_prop *props;
    size_t nprops, capprops;
    uint8_t *body;
    size_t body_len;
    uint16_t flags;
    uint64_t born_ms;
    uint64_t store_ms;
    int64_t queue_id;     /* -1 = not stored */
    int64_t queue_offset; /* -1 = not stored */
    uint32_t reconsume;
    char msgid[FY_MESSAGE_ID_LEN + 1]; /* "" = unknown */
    /* Set on received deliveries: which subscription, on which connection. */
    bool delivered;
    const fy_client *client; /* sub ids are unique per client only */
    uint32_t sub_id;
    uint64_t conn_gen;
    uint64_t delivery_id;
    fy_message *next; /* a consumer's queue of deliveries */
};

/* Size of the record for msg with the given born time and host (0 if it breaks a limit of the
 * codec). */
size_t cl_message_record_size(const fy_message *msg, uint64_t born_ms, const char *born_host);
/* Appends msg's record to out, which must already have room for it (cl_buf_reserve) so that
 * nothing allocates. FY_OK, -FY_EINVAL (no topic, a limit of the codec) or -FY_ENOMEM. */
int cl_message_encode(const fy_message *msg, uint64_t born_ms, const char *born_host, fy_buf *out);
/* A new message from an encoded record. Returns FY_OK, -FY_EPROTO (the record does not
 * decode) or -FY_ENOMEM. */
int cl_message_from_record(const void *rec, size_t len, fy_message **out);

/* ---- Requests (client.c) ------------------------------------------------------------------- */

typedef enum cl_req_kind {
    CL_REQ_SYNC,   /* on the caller's stack: the caller waits for done */
    CL_REQ_SEND,   /* heap: an fy_send_async, completed through the done list */
    CL_REQ_IGNORE, /* heap: nobody waits; the answer is dropped (UNSUBSCRIBE from free) */
} cl_req_kind;

typedef struct cl_req cl_req;
struct cl_req {
    cl_req *prev, *next; /* pending list, then done list */
    cl_req_kind kind;
    uint8_t type;
    uint32_t id;
    int64_t deadline; /* monotonic ms */
    bool done;
    int status;
    char *errmsg; /* the broker's reason (heap), NULL when none */
    fy_buf body;  /* CL_REQ_SYNC: a copy of the OK answer's body */
    /* CL_REQ_SEND */
    fy_send_cb cb;
    void *arg;
    fy_send_result result;
};

struct fy_consumer {
    fy_client *c;
    fy_consumer *prev, *next;
    uint32_t sub_id;
    char *group, *topic, *filter;
    fy_consume_mode mode;
    fy_consume_from from;
    bool filter_sql;
    bool orderly;
    uint64_t from_ms;
    uint32_t window;
    fy_consume_cb cb;
    void *cb_arg;

    uint64_t gen;              /* connection generation it is subscribed on (0 = none) */
    int closed;                /* 0, or why the broker ended the subscription (negative) */
    char *closed_why;          /* the broker's reason */
    bool doomed;               /* freed from its own callback: freed once the dispatch returns */
    bool in_callback;          /* its callback is running */
    fy_message *qhead, *qtail; /* deliveries not yet handed out */
    size_t queued;
    uint32_t credit_owed; /* handed out since the last CREDIT */
    fy_w_ack *acks;       /* pending acks (heap: 8 KiB of ids) */
};

struct fy_tx_producer {
    fy_client *c;
    fy_tx_producer *next;
    char *group;
    fy_tx_cb check;
    void *check_arg;
};

/* A TX_CHECK waiting for its callback (run from fy_client_poll). */
typedef struct cl_tx_check {
    struct cl_tx_check *next;
    uint64_t tx_id;
    char *group;
    fy_message *msg;
} cl_tx_check;

struct fy_client {
    /* Options. */
    char *host;
    char *port;
    char *broker; /* "host:port", for messages */
    char *client_id;
    char *client_name;
    char *username; /* NULL: anonymous */
    char *password;
    int connect_timeout_ms;
    int request_timeout_ms;
    bool reconnect;
    uint32_t max_inflight;

    /* TLS (opts.tls): the context, and the session of the connection (NULL when none). */
    struct ssl_ctx_st *ssl_ctx;
    struct ssl_st *ssl;

    /* Connection. */
    int fd;          /* -1 when not connected */
    bool ready;      /* HELLO answered */
    bool ever_ready; /* a connection was up once: later failures retry with back-off */
    uint64_t gen;    /* connection generation, bumped at each successful HELLO */
    uint16_t broker_id;
    uint32_t max_frame;
    char broker_version[64];
    char born_host[64]; /* local "ip:port" of the connection */
    fy_buf out;
    size_t out_off; /* written prefix of out */
    fy_buf in;
    size_t in_off; /* parsed prefix of in */

    /* Requests. */
    uint32_t next_id;
    cl_req *pend_head, *pend_tail; /* in send order */
    cl_req *done_head, *done_tail; /* completed async sends, callbacks not yet run */
    size_t inflight;               /* async sends whose callback has not run */

    /* Consumers. */
    fy_consumer *cons_head;
    uint32_t next_sub_id;
    int dispatching; /* depth of callback dispatch (consume callbacks) */

    /* Transactional producers and check-backs not yet answered. */
    fy_tx_producer *txp_head;
    cl_tx_check *chk_head, *chk_tail;

    char err[CL_ERR_LEN];
};

/* Reserves room for `more` bytes past b->len with the plain allocator: afterwards the fy_buf
 * helpers (which abort on OOM) will not allocate for that many bytes. FY_OK or -FY_ENOMEM. */
int cl_buf_reserve(fy_buf *b, size_t more);
/* Monotonic milliseconds, and a deadline timeout_ms from now (negative = none). */
int64_t cl_now(void);
int64_t cl_deadline(int timeout_ms);

/* Records the text of the current failure; returns err for convenience. */
int cl_fail(fy_client *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Makes sure the connection is up (connecting or reconnecting as the options say). */
int cl_ready(fy_client *c);
/* Reserves room for a frame of up to `size` bytes in the output buffer. */
int cl_out_reserve(fy_client *c, size_t size);
/* A fresh request id (never 0). */
uint32_t cl_next_id(fy_client *c);
/* Registers a request whose frame the caller has just appended to c->out. */
void cl_req_start(fy_client *c, cl_req *req, cl_req_kind kind, uint8_t type, uint32_t id);
/* Waits for a synchronous request's answer. Returns its status (the broker's error as a
 * negative code with the reason in c->err, -FY_ETIMEDOUT, -FY_ECLOSED). The caller then reads
 * req->body and calls cl_req_clear. */
int cl_req_wait(fy_client *c, cl_req *req);
void cl_req_clear(cl_req *req);
/* Tries to write pending output without waiting. Returns FY_OK or -FY_ECLOSED (dropped). */
int cl_write_now(fy_client *c);
/* One round of I/O: waits until the socket is ready or the deadline passes, writes, reads and
 * dispatches what arrived. FY_OK, or -FY_ECLOSED when the connection dropped. */
int cl_pump(fy_client *c, int64_t deadline);
/* Runs the callbacks of completed async sends. Returns how many ran. */
int cl_run_completions(fy_client *c);
/* A simple synchronous request (payload: one string or nothing), answer body in req. */
int cl_call_simple(fy_client *c, uint8_t type, const char *s, cl_req *req);

/* ---- Consumers (consumer.c) ---------------------------------------------------------------- */

/* Appends the SUBSCRIBE frame of cons to c->out and registers it on req. Used at creation and
 * at reconnection. */
int cl_consumer_subscribe_start(fy_consumer *cons, cl_req *req);
/* Waits for its answer: FY_OK or the broker's error. */
int cl_consumer_subscribe_finish(fy_consumer *cons, cl_req *req);
/* A DELIVER or SUB_CLOSED frame for the consumer with sub_id. */
void cl_consumer_on_deliver(fy_client *c, const fy_w_deliver *d);
void cl_consumer_on_closed(fy_client *c, const fy_w_sub_closed *m);
/* The connection dropped: forget deliveries and pending acks of the old connection. */
void cl_consumer_on_disconnect(fy_consumer *cons);
/* Writes pending acks and owed credit of every consumer into c->out. */
int cl_consumers_emit(fy_client *c);
/* Runs consume callbacks for queued deliveries. Returns how many ran, or a negative error. */
int cl_consumers_dispatch(fy_client *c);
/* Frees a consumer's memory (no I/O). */
void cl_consumer_destroy(fy_consumer *cons);

/* ---- Transactions (transaction.c) --------------------------------------------------------- */

/* A TX_CHECK frame: queued for its producer's callback. */
void cl_tx_on_check(fy_client *c, const fy_w_tx_check *m);
/* Runs check callbacks for queued checks and sends their answers. Returns how many ran. */
int cl_tx_dispatch(fy_client *c);
/* Registers every producer again on a fresh connection. FY_OK or an error. */
int cl_tx_reregister(fy_client *c);
/* Frees producers and queued checks (no I/O), at fy_client_free. */
void cl_tx_destroy(fy_client *c);

#endif
