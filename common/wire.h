/* SPDX-License-Identifier: Apache-2.0 */
/* The native protocol's frame codec (docs/protocol.md), shared by ferryd and libferry. Pure
 * functions over buffers: encoders append to an fy_buf, decoders fill structs whose slices
 * borrow the frame's bytes and validate every length. Decoding never reads outside the frame
 * and never allocates, except for the fixed-size arrays noted per message. */
#ifndef FERRY_COMMON_WIRE_H
#define FERRY_COMMON_WIRE_H

#include "common/buf.h"
#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_WIRE_VERSION 1
#define FY_WIRE_HEADER_LEN 10 /* u32 length, u8 type, u8 flags, u32 id */
#define FY_WIRE_MIN_FRAME 6   /* the length field counts type, flags and id */
#define FY_WIRE_DEFAULT_MAX_FRAME (8u << 20)
#define FY_WIRE_MAX_BATCH 1024 /* messages in one SEND, ids in one ACK/NACK */
#define FY_MSGID_LEN 16        /* binary message id; 32 hex characters as text */
#define FY_MSGID_HEX_LEN 32

/* Frame types. Requests go client -> broker and are answered by one RESPONSE with the same id
 * (unless FY_WIRE_F_NOREPLY); DELIVER, SUB_CLOSED and TX_CHECK go broker -> client with id 0. */
typedef enum fy_wire_type {
    FY_W_HELLO = 0x01,
    FY_W_PING = 0x02,
    FY_W_TOPIC_CREATE = 0x10,
    FY_W_TOPIC_DELETE = 0x11,
    FY_W_TOPIC_LIST = 0x12,
    FY_W_TOPIC_DESCRIBE = 0x13,
    FY_W_SEND = 0x20,
    FY_W_SUBSCRIBE = 0x30,
    FY_W_CREDIT = 0x31,
    FY_W_ACK = 0x32,
    FY_W_NACK = 0x33,
    FY_W_UNSUBSCRIBE = 0x34,
    FY_W_MSG_GET = 0x40,
    FY_W_MSG_FIND = 0x41,
    FY_W_GROUP_LIST = 0x50,
    FY_W_GROUP_DESCRIBE = 0x51,
    FY_W_GROUP_RESET = 0x52,
    FY_W_GROUP_CONFIG = 0x53,
    FY_W_TX_HALF = 0x60,
    FY_W_TX_END = 0x61,
    FY_W_TX_REGISTER = 0x62,
    FY_W_TX_UNREGISTER = 0x63,
    FY_W_TX_LIST = 0x64,
    FY_W_RESPONSE = 0x80,
    FY_W_DELIVER = 0x81,
    FY_W_SUB_CLOSED = 0x82,
    FY_W_TX_CHECK = 0x83
} fy_wire_type;

#define FY_WIRE_F_NOREPLY 0x01 /* request flag: do not answer (CREDIT, ACK, NACK, TX_END) */

/* Consumption mode and start position of a subscription. */
typedef enum fy_sub_mode { FY_SUB_CLUSTERING = 0, FY_SUB_BROADCAST = 1 } fy_sub_mode;
typedef enum fy_sub_start { FY_START_LAST = 0, FY_START_FIRST = 1, FY_START_TIME = 2 } fy_sub_start;
/* The language of a subscription's filter. */
typedef enum fy_filter_type {
    FY_FILTER_TAG = 0,  /* tag expression: "", "*", "TagA || TagB" */
    FY_FILTER_SQL92 = 1 /* SQL92 selector on properties and TAGS (docs/selectors.md) */
} fy_filter_type;

/* SUBSCRIBE flags. */
#define FY_SUB_F_ORDERLY 0x01 /* one message at a time per queue, failures retried in place */
#define FY_SUB_F_ALL 0x01

/* What a NACK asks for. */
typedef enum fy_nack_how {
    FY_NACK_RETRY = 0,   /* deliver again later (with back-off) */
    FY_NACK_RELEASE = 1, /* deliver again now, maybe to another member */
    FY_NACK_REJECT = 2   /* do not deliver again: dead letter */
} fy_nack_how;

/* How a transaction ends (TX_END), and what a producer's check-back answers. */
typedef enum fy_tx_end_how {
    FY_TXE_COMMIT = 0,   /* the half message becomes visible */
    FY_TXE_ROLLBACK = 1, /* the half message is deleted */
    FY_TXE_UNKNOWN = 2   /* not decided yet: ask again at the next check */
} fy_tx_end_how;

/* A parsed frame header; payload borrows the input. */
typedef struct fy_frame {
    uint8_t type;
    uint8_t flags;
    uint32_t id;
    fy_slice payload;
} fy_frame;

/* Parses one frame at the start of [p, p + n). Returns the frame's total size (> 0) and fills
 * f; 0 if more bytes are needed; -FY_ETOOBIG if the length exceeds max_frame; -FY_EPROTO if it
 * is below FY_WIRE_MIN_FRAME. */
long fy_wire_frame_parse(const void *p, size_t n, size_t max_frame, fy_frame *f);

/* Starts a frame in out: writes the header with a placeholder length and returns the offset to
 * pass to fy_wire_frame_end, which fills in the length once the payload is appended. */
size_t fy_wire_frame_begin(fy_buf *out, uint8_t type, uint8_t flags, uint32_t id);
void fy_wire_frame_end(fy_buf *out, size_t start);

/* Strings on the wire: u16 length + bytes. A string over UINT16_MAX bytes is cut to UINT16_MAX so
 * the frame stays well-formed (callers check their name limits first); NULL is "". */
void fy_wire_put_str(fy_buf *out, const char *s);
void fy_wire_put_slice(fy_buf *out, fy_slice s);
/* Reads a u16-length string (sets r->bad when short). */
fy_slice fy_wire_get_str(fy_rd *r);

/* ---- Messages ------------------------------------------------------------------------------ */

/* HELLO; the credentials are optional trailing fields (absent in older clients' frames). */
typedef struct fy_w_hello {
    uint16_t version;
    fy_slice client_id;
    fy_slice client_name;
    bool has_credentials;
    fy_slice username;
    fy_slice password;
} fy_w_hello;

typedef struct fy_w_hello_ok {
    uint16_t version;
    uint16_t broker_id;
    uint32_t max_frame;
    fy_slice broker_version;
} fy_w_hello_ok;

typedef struct fy_w_topic {
    fy_slice name;
    uint32_t queues; /* TOPIC_CREATE: 0 = the broker's default */
} fy_w_topic;

/* One message of a SEND: the encoded record (topic, tag, keys, properties, body, born time and
 * host; the broker sets location and store time) and an optional sharding key. */
typedef struct fy_w_send_msg {
    fy_slice sharding_key;
    fy_slice record;
} fy_w_send_msg;

typedef struct fy_w_send {
    uint16_t n;
    fy_w_send_msg msgs[FY_WIRE_MAX_BATCH];
} fy_w_send;

typedef struct fy_w_send_result {
    uint32_t queue_id;
    uint64_t offset;
    uint64_t store_ms;
    uint8_t msgid[FY_MSGID_LEN];
} fy_w_send_result;
#define FY_WIRE_SEND_RESULT_LEN 36 /* u32 queue_id, u64 offset, u64 store_ms, 16-byte id */

/* One entry of SEND's answer body (after its u16 n): the broker appends them, the client reads
 * them; get sets r->bad (and zeroes m) when short. */
void fy_wire_put_send_result(fy_buf *out, const fy_w_send_result *m);
void fy_wire_get_send_result(fy_rd *r, fy_w_send_result *m);

typedef struct fy_w_subscribe {
    uint32_t sub_id; /* chosen by the client, unique on its connection */
    fy_slice group;
    fy_slice topic;
    fy_slice filter; /* tag expression: "", "*", "TagA || TagB" */
    uint8_t mode;    /* fy_sub_mode */
    uint8_t start;   /* fy_sub_start */
    uint64_t start_ms;
    uint32_t credit;
    uint8_t filter_type; /* fy_filter_type: how to read `filter` */
    uint8_t sub_flags;   /* FY_SUB_F_*: how to consume */
} fy_w_subscribe;

typedef struct fy_w_credit {
    uint32_t sub_id;
    uint32_t credit;
} fy_w_credit;

typedef struct fy_w_ack {
    uint32_t sub_id;
    uint8_t how; /* NACK only: fy_nack_how */
    uint16_t n;
    uint64_t ids[FY_WIRE_MAX_BATCH];
} fy_w_ack;

typedef struct fy_w_deliver {
    uint32_t sub_id;
    uint64_t delivery_id;
    uint8_t msgid[FY_MSGID_LEN];
    fy_slice record;
} fy_w_deliver;

typedef struct fy_w_sub_closed {
    uint32_t sub_id;
    uint16_t status;
    fy_slice reason;
} fy_w_sub_closed;

/* MSG_FIND: messages of a topic by key, stored within [from_ms, to_ms], oldest first. */
typedef struct fy_w_msg_find {
    fy_slice topic;
    fy_slice key;
    uint64_t from_ms;
    uint64_t to_ms;
    uint32_t limit; /* 1..FY_WIRE_MAX_BATCH */
} fy_w_msg_find;

typedef struct fy_w_group_reset {
    fy_slice group;
    fy_slice topic;
    uint64_t ts_ms;
} fy_w_group_reset;

/* GROUP_CONFIG: reads a group's settings, or changes those named in `set` (a group that does not
 * exist is then created in clustering mode). Answered with fy_w_group_config_info. */
#define FY_GROUP_CFG_MAX_RECONSUME 0x01 /* set: max_reconsume */
#define FY_GROUP_CFG_ALL 0x01
#define FY_WIRE_RECONSUME_DEFAULT 0xFF /* max_reconsume: the broker's max_reconsume applies */
#define FY_WIRE_RECONSUME_MAX 64

typedef struct fy_w_group_config {
    fy_slice group;
    uint8_t set;           /* FY_GROUP_CFG_* to change; 0 = read only */
    uint8_t max_reconsume; /* 0..64 or FY_WIRE_RECONSUME_DEFAULT with FY_GROUP_CFG_MAX_RECONSUME,
                            * else 0 */
} fy_w_group_config;

/* GROUP_CONFIG's answer: the group's settings after the request. */
typedef struct fy_w_group_config_info {
    fy_slice group;
    uint8_t mode;          /* fy_sub_mode */
    uint8_t max_reconsume; /* the group's own (0..64), or FY_WIRE_RECONSUME_DEFAULT */
    uint8_t effective;     /* what applies: the group's, else the broker's (0..64) */
} fy_w_group_config_info;

/* TX_HALF: one half message of a producer group; answered like a one-message SEND whose
 * offset is the transaction id (queue_id UINT32_MAX). */
typedef struct fy_w_tx_half {
    fy_slice group;
    fy_slice sharding_key;
    fy_slice record;
} fy_w_tx_half;

/* TX_END: commit, roll back or "unknown" (fy_tx_end_how). Answered with u16 n (1 for a commit,
 * else 0) and n SEND results. */
typedef struct fy_w_tx_end {
    uint64_t tx_id;
    uint8_t state;
} fy_w_tx_end;

/* TX_LIST: pending halves with ids >= from_id, at most limit (1..FY_WIRE_MAX_BATCH). */
typedef struct fy_w_tx_list {
    uint64_t from_id;
    uint32_t limit;
} fy_w_tx_list;

/* TX_CHECK (broker -> client): is transaction tx_id of group committed? Answered by TX_END. */
typedef struct fy_w_tx_check {
    uint64_t tx_id;
    fy_slice group;
    uint32_t checks; /* 1 for the first check */
    uint8_t msgid[FY_MSGID_LEN];
    fy_slice record;
} fy_w_tx_check;

/* RESPONSE: status 0 = OK (then the payload of the request's answer), else an FY_E* code and
 * a message. */
typedef struct fy_w_response {
    uint16_t status;
    fy_slice message;
    fy_slice body; /* the rest: the answer, decoded per request type */
} fy_w_response;

/* Encoders: each appends one whole frame. enc_topic writes queues only for TOPIC_CREATE;
 * enc_ack writes how only for NACK (0 for ACK); DELIVER and SUB_CLOSED carry id 0. */
void fy_wire_enc_hello(fy_buf *out, uint32_t id, const fy_w_hello *m);
void fy_wire_enc_hello_ok(fy_buf *out, uint32_t id, const fy_w_hello_ok *m);
void fy_wire_enc_topic(fy_buf *out, uint8_t type, uint32_t id, const fy_w_topic *m);
void fy_wire_enc_subscribe(fy_buf *out, uint32_t id, const fy_w_subscribe *m);
void fy_wire_enc_credit(fy_buf *out, uint32_t id, uint8_t flags, const fy_w_credit *m);
void fy_wire_enc_ack(fy_buf *out, uint8_t type, uint32_t id, uint8_t flags, const fy_w_ack *m);
void fy_wire_enc_deliver(fy_buf *out, uint32_t sub_id, uint64_t delivery_id,
                         const uint8_t msgid[FY_MSGID_LEN], const void *rec, size_t len);
void fy_wire_enc_sub_closed(fy_buf *out, const fy_w_sub_closed *m);
void fy_wire_enc_group_reset(fy_buf *out, uint32_t id, const fy_w_group_reset *m);
void fy_wire_enc_group_config(fy_buf *out, uint32_t id, const fy_w_group_config *m);
/* An OK RESPONSE to GROUP_CONFIG. */
void fy_wire_enc_group_config_info(fy_buf *out, uint32_t id, const fy_w_group_config_info *m);
void fy_wire_enc_msg_find(fy_buf *out, uint32_t id, const fy_w_msg_find *m);
void fy_wire_enc_tx_half(fy_buf *out, uint32_t id, const fy_w_tx_half *m);
void fy_wire_enc_tx_end(fy_buf *out, uint32_t id, uint8_t flags, const fy_w_tx_end *m);
void fy_wire_enc_tx_list(fy_buf *out, uint32_t id, const fy_w_tx_list *m);
void fy_wire_enc_tx_check(fy_buf *out, const fy_w_tx_check *m);
/* A request whose payload is one string (TOPIC_DELETE, TOPIC_DESCRIBE, MSG_GET, GROUP_DESCRIBE,
 * TX_REGISTER, TX_UNREGISTER)
 * or nothing (PING, TOPIC_LIST, GROUP_LIST: s = NULL). */
void fy_wire_enc_simple(fy_buf *out, uint8_t type, uint32_t id, const char *s);
/* An error RESPONSE (status != 0: an FY_E* code, positive or negated; message NULL = ""). */
void fy_wire_enc_error(fy_buf *out, uint32_t id, int status, const char *message);

/* A SEND is built incrementally: begin, add each message, end. */
size_t fy_wire_send_begin(fy_buf *out, uint32_t id);
void fy_wire_send_add(fy_buf *out, const char *sharding_key, const void *rec, size_t len);
void fy_wire_send_end(fy_buf *out, size_t start, uint16_t n);

/* An OK RESPONSE is built the same way: begin writes status 0 and an empty message; the caller
 * appends the answer with fy_buf_put_* / fy_wire_put_str; end fills in the length. */
size_t fy_wire_ok_begin(fy_buf *out, uint32_t id);

/* Decoders: FY_OK, or -FY_EPROTO when the payload is malformed (short, trailing bytes,
 * a count of 0 or over FY_WIRE_MAX_BATCH, an out-of-range enum). dec_topic reads queues only for
 * TOPIC_CREATE (else 0) and dec_ack requires ACK's reserved byte to be 0; both reject a frame of
 * another type. dec_response rejects an OK with a message and an error with a body. On failure
 * m is unspecified. */
int fy_wire_dec_hello(const fy_frame *f, fy_w_hello *m);
int fy_wire_dec_hello_ok(fy_slice body, fy_w_hello_ok *m);
int fy_wire_dec_topic(const fy_frame *f, fy_w_topic *m);
int fy_wire_dec_send(const fy_frame *f, fy_w_send *m);
int fy_wire_dec_subscribe(const fy_frame *f, fy_w_subscribe *m);
int fy_wire_dec_credit(const fy_frame *f, fy_w_credit *m);
int fy_wire_dec_ack(const fy_frame *f, fy_w_ack *m); /* ACK and NACK */
int fy_wire_dec_deliver(const fy_frame *f, fy_w_deliver *m);
int fy_wire_dec_sub_closed(const fy_frame *f, fy_w_sub_closed *m);
int fy_wire_dec_group_reset(const fy_frame *f, fy_w_group_reset *m);
/* set within FY_GROUP_CFG_ALL; max_reconsume 0..64 or FY_WIRE_RECONSUME_DEFAULT when set, else 0.
 */
int fy_wire_dec_group_config(const fy_frame *f, fy_w_group_config *m);
/* The body of GROUP_CONFIG's OK RESPONSE: mode 0..1, max_reconsume 0..64 or
 * FY_WIRE_RECONSUME_DEFAULT, effective 0..64. */
int fy_wire_dec_group_config_info(fy_slice body, fy_w_group_config_info *m);
int fy_wire_dec_msg_find(const fy_frame *f, fy_w_msg_find *m); /* limit 1..FY_WIRE_MAX_BATCH */
int fy_wire_dec_tx_half(const fy_frame *f, fy_w_tx_half *m);
int fy_wire_dec_tx_end(const fy_frame *f, fy_w_tx_end *m);   /* state 0..FY_TXE_UNKNOWN */
int fy_wire_dec_tx_list(const fy_frame *f, fy_w_tx_list *m); /* limit 1..FY_WIRE_MAX_BATCH */
int fy_wire_dec_tx_check(const fy_frame *f, fy_w_tx_check *m);
/* A payload that is exactly one string. */
int fy_wire_dec_str(const fy_frame *f, fy_slice *s);
int fy_wire_dec_response(const fy_frame *f, fy_w_response *m);

/* Message ids: 16 bytes = broker id (u16), topic id (u32), queue id (u16), offset (u64),
 * big-endian; shown as 32 lowercase hex characters. */
void fy_msgid_make(uint8_t id[FY_MSGID_LEN], uint16_t broker_id, uint32_t topic_id,
                   uint16_t queue_id, uint64_t offset);
void fy_msgid_parse(const uint8_t id[FY_MSGID_LEN], uint16_t *broker_id, uint32_t *topic_id,
                    uint16_t *queue_id, uint64_t *offset);
/* Writes 33 bytes (32 hex + NUL). */
void fy_msgid_to_hex(const uint8_t id[FY_MSGID_LEN], char hex[FY_MSGID_HEX_LEN + 1]);
/* Parses 32 hex characters (either case); FY_OK or -FY_EINVAL. */
int fy_msgid_from_hex(const char *hex, size_t len, uint8_t id[FY_MSGID_LEN]);

#endif
