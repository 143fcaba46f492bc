/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the native protocol codec: splits arbitrary bytes into a stream of frames
 * and decodes each with the decoder of its type (SEND records also through fy_record_decode).
 * Whatever decodes is re-encoded; the re-encoding must parse as one frame with the same header,
 * decode to the same fields and carry the very same payload bytes. Aborts on any mismatch. */
#include "common/buf.h"
#include "common/record.h"
#include "common/wire.h"

#include "ferry/errors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "wire_fuzz: %s\n", what);
        abort();
    }
}

static bool slice_eq(fy_slice a, fy_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* A NUL-terminated copy of s for the encoders that take C strings, or NULL if s holds a NUL
 * (such a string cannot be passed through them). Free with free(). */
static char *cstr(fy_slice s)
{
    char *c;

    if (s.len > 0 && memchr(s.p, 0, s.len)) {
        return NULL;
    }
    c = malloc(s.len + 1);
    fuzz_check(c != NULL, "out of memory");
    if (s.len > 0) {
        memcpy(c, s.p, s.len);
    }
    c[s.len] = '\0';
    return c;
}

/* Parses the re-encoding in out (exactly one frame) and checks its header and payload against
 * the original frame f; g gets the re-encoded frame for a field-by-field decode. */
static void check_reencoded(const fy_buf *out, const fy_frame *f, uint8_t flags, uint32_t id,
                            fy_frame *g)
{
    long n = fy_wire_frame_parse(out->data, out->len, FY_WIRE_DEFAULT_MAX_FRAME, g);

    fuzz_check(n > 0 && (size_t)n == out->len, "re-encoding is not one whole frame");
    fuzz_check(g->type == f->type, "re-encoded type differs");
    fuzz_check(g->flags == flags && g->id == id, "re-encoded flags or id differ");
    fuzz_check(slice_eq(g->payload, f->payload), "re-encoded payload differs");
}

static void fuzz_hello(const fy_frame *f, fy_buf *out)
{
    fy_w_hello a, b;
    fy_frame g;

    if (fy_wire_dec_hello(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_hello(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_hello(&g, &b) == FY_OK, "hello: re-encoding does not decode");
    fuzz_check(a.version == b.version && slice_eq(a.client_id, b.client_id) &&
                   slice_eq(a.client_name, b.client_name),
               "hello: fields differ");
}

static void fuzz_topic(const fy_frame *f, fy_buf *out)
{
    fy_w_topic a, b;
    fy_frame g;

    if (fy_wire_dec_topic(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_topic(out, f->type, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_topic(&g, &b) == FY_OK, "topic: re-encoding does not decode");
    fuzz_check(slice_eq(a.name, b.name) && a.queues == b.queues, "topic: fields differ");
}

/* A one-string request: dec_str, and enc_simple when the string has no NUL. MSG_GET's string
 * also goes through the message id parser. */
static void fuzz_str(const fy_frame *f, fy_buf *out)
{
    fy_slice a, b;
    fy_frame g;
    char *s;

    if (fy_wire_dec_str(f, &a) != FY_OK) {
        return;
    }
    if (f->type == FY_W_MSG_GET) {
        uint8_t id[FY_MSGID_LEN], id2[FY_MSGID_LEN];
        char hex[FY_MSGID_HEX_LEN + 1];
        if (fy_msgid_from_hex((const char *)a.p, a.len, id) == FY_OK) {
            fy_msgid_to_hex(id, hex);
            fuzz_check(strlen(hex) == FY_MSGID_HEX_LEN, "msgid: hex length");
            for (size_t i = 0; i < FY_MSGID_HEX_LEN; i++) {
                char c = (char)a.p[i];
                if (c >= 'A' && c <= 'F') {
                    c = (char)(c - 'A' + 'a');
                }
                fuzz_check(hex[i] == c, "msgid: hex differs");
            }
            fuzz_check(fy_msgid_from_hex(hex, FY_MSGID_HEX_LEN, id2) == FY_OK &&
                           memcmp(id, id2, FY_MSGID_LEN) == 0,
                       "msgid: hex round trip differs");
        } else if (a.len == FY_MSGID_HEX_LEN) {
            bool all_hex = true;
            for (size_t i = 0; i < a.len; i++) {
                all_hex = all_hex && strchr("0123456789abcdefABCDEF", a.p[i]) && a.p[i] != 0;
            }
            fuzz_check(!all_hex, "msgid: 32 hex characters refused");
        }
    }
    s = cstr(a);
    if (!s) {
        return;
    }
    fy_wire_enc_simple(out, f->type, f->id, s);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_str(&g, &b) == FY_OK && slice_eq(a, b), "str: fields differ");
    free(s);
}

/* PING, TOPIC_LIST, GROUP_LIST: no payload. */
static void fuzz_empty(const fy_frame *f, fy_buf *out)
{
    fy_frame g;

    if (f->payload.len != 0) {
        return;
    }
    fy_wire_enc_simple(out, f->type, f->id, NULL);
    check_reencoded(out, f, 0, f->id, &g);
}

static void fuzz_send(const fy_frame *f, fy_buf *out)
{
    static fy_w_send a, b;
    char *keys[FY_WIRE_MAX_BATCH];
    fy_record_view v;
    fy_frame g;
    size_t start;
    bool encodable = true;
    uint16_t n;

    if (fy_wire_dec_send(f, &a) != FY_OK) {
        return;
    }
    fuzz_check(a.n >= 1 && a.n <= FY_WIRE_MAX_BATCH, "send: count out of range");
    for (size_t i = 0; i < a.n; i++) {
        int rc = fy_record_decode(a.msgs[i].record.p, a.msgs[i].record.len, &v);
        fuzz_check(rc == FY_OK || rc == -FY_ECORRUPT || rc == -FY_EVERSION,
                   "send: unexpected record error");
        keys[i] = cstr(a.msgs[i].sharding_key);
        encodable = encodable && keys[i] != NULL;
    }
    n = a.n;
    if (encodable) {
        start = fy_wire_send_begin(out, f->id);
        for (size_t i = 0; i < n; i++) {
            fy_wire_send_add(out, keys[i], a.msgs[i].record.p, a.msgs[i].record.len);
        }
        fy_wire_send_end(out, start, n);
        check_reencoded(out, f, 0, f->id, &g);
        fuzz_check(fy_wire_dec_send(&g, &b) == FY_OK && b.n == a.n, "send: count differs");
        for (size_t i = 0; i < n; i++) {
            fuzz_check(slice_eq(a.msgs[i].sharding_key, b.msgs[i].sharding_key) &&
                           slice_eq(a.msgs[i].record, b.msgs[i].record),
                       "send: message differs");
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(keys[i]);
    }
}

static void fuzz_subscribe(const fy_frame *f, fy_buf *out)
{
    fy_w_subscribe a, b;
    fy_frame g;

    if (fy_wire_dec_subscribe(f, &a) != FY_OK) {
        return;
    }
    fuzz_check(a.mode <= FY_SUB_BROADCAST && a.start <= FY_START_TIME &&
                   a.filter_type <= FY_FILTER_SQL92,
               "subscribe: bad enum");
    fy_wire_enc_subscribe(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_subscribe(&g, &b) == FY_OK, "subscribe: re-encoding does not decode");
    fuzz_check(a.sub_id == b.sub_id && slice_eq(a.group, b.group) && slice_eq(a.topic, b.topic) &&
                   slice_eq(a.filter, b.filter) && a.mode == b.mode && a.start == b.start &&
                   a.filter_type == b.filter_type && a.sub_flags == b.sub_flags &&
                   a.start_ms == b.start_ms && a.credit == b.credit,
               "subscribe: fields differ");
}

static void fuzz_credit(const fy_frame *f, fy_buf *out)
{
    fy_w_credit a, b;
    fy_frame g;

    if (fy_wire_dec_credit(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_credit(out, f->id, f->flags, &a);
    check_reencoded(out, f, f->flags, f->id, &g);
    fuzz_check(fy_wire_dec_credit(&g, &b) == FY_OK && a.sub_id == b.sub_id && a.credit == b.credit,
               "credit: fields differ");
}

static void fuzz_ack(const fy_frame *f, fy_buf *out)
{
    static fy_w_ack a, b;
    fy_frame g;

    if (fy_wire_dec_ack(f, &a) != FY_OK) {
        return;
    }
    fuzz_check(a.n >= 1 && a.n <= FY_WIRE_MAX_BATCH, "ack: count out of range");
    fuzz_check(f->type == FY_W_ACK ? a.how == 0 : a.how <= FY_NACK_REJECT, "ack: bad how");
    fy_wire_enc_ack(out, f->type, f->id, f->flags, &a);
    check_reencoded(out, f, f->flags, f->id, &g);
    fuzz_check(fy_wire_dec_ack(&g, &b) == FY_OK, "ack: re-encoding does not decode");
    fuzz_check(a.sub_id == b.sub_id && a.how == b.how && a.n == b.n &&
                   memcmp(a.ids, b.ids, sizeof(a.ids[0]) * a.n) == 0,
               "ack: fields differ");
}

static void fuzz_deliver(const fy_frame *f, fy_buf *out)
{
    fy_w_deliver a, b;
    fy_record_view v;
    fy_frame g;
    int rc;

    if (fy_wire_dec_deliver(f, &a) != FY_OK) {
        return;
    }
    rc = fy_record_decode(a.record.p, a.record.len, &v);
    fuzz_check(rc == FY_OK || rc == -FY_ECORRUPT || rc == -FY_EVERSION,
               "deliver: unexpected record error");
    fy_wire_enc_deliver(out, a.sub_id, a.delivery_id, a.msgid, a.record.p, a.record.len);
    check_reencoded(out, f, 0, 0, &g);
    fuzz_check(fy_wire_dec_deliver(&g, &b) == FY_OK && a.sub_id == b.sub_id &&
                   a.delivery_id == b.delivery_id && memcmp(a.msgid, b.msgid, FY_MSGID_LEN) == 0 &&
                   slice_eq(a.record, b.record),
               "deliver: fields differ");
}

static void fuzz_sub_closed(const fy_frame *f, fy_buf *out)
{
    fy_w_sub_closed a, b;
    fy_frame g;

    if (fy_wire_dec_sub_closed(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_sub_closed(out, &a);
    check_reencoded(out, f, 0, 0, &g);
    fuzz_check(fy_wire_dec_sub_closed(&g, &b) == FY_OK && a.sub_id == b.sub_id &&
                   a.status == b.status && slice_eq(a.reason, b.reason),
               "sub_closed: fields differ");
}

static void fuzz_group_reset(const fy_frame *f, fy_buf *out)
{
    fy_w_group_reset a, b;
    fy_frame g;

    if (fy_wire_dec_group_reset(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_group_reset(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_group_reset(&g, &b) == FY_OK && slice_eq(a.group, b.group) &&
                   slice_eq(a.topic, b.topic) && a.ts_ms == b.ts_ms,
               "group_reset: fields differ");
}

static void fuzz_group_config(const fy_frame *f, fy_buf *out)
{
    fy_w_group_config a, b;
    fy_frame g;

    if (fy_wire_dec_group_config(f, &a) != FY_OK) {
        return;
    }
    fuzz_check((a.set & ~FY_GROUP_CFG_ALL) == 0, "group_config: unknown bits");
    fuzz_check((a.set & FY_GROUP_CFG_MAX_RECONSUME) ? (a.max_reconsume <= FY_WIRE_RECONSUME_MAX ||
                                                       a.max_reconsume == FY_WIRE_RECONSUME_DEFAULT)
                                                    : a.max_reconsume == 0,
               "group_config: max_reconsume out of range");
    fy_wire_enc_group_config(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_group_config(&g, &b) == FY_OK && slice_eq(a.group, b.group) &&
                   a.set == b.set && a.max_reconsume == b.max_reconsume,
               "group_config: fields differ");
}

static void fuzz_msg_find(const fy_frame *f, fy_buf *out)
{
    fy_w_msg_find a, b;
    fy_frame g;

    if (fy_wire_dec_msg_find(f, &a) != FY_OK) {
        return;
    }
    fuzz_check(a.limit >= 1 && a.limit <= FY_WIRE_MAX_BATCH, "msg_find: limit out of range");
    fy_wire_enc_msg_find(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_msg_find(&g, &b) == FY_OK && slice_eq(a.topic, b.topic) &&
                   slice_eq(a.key, b.key) && a.from_ms == b.from_ms && a.to_ms == b.to_ms &&
                   a.limit == b.limit,
               "msg_find: fields differ");
}

static void fuzz_tx_half(const fy_frame *f, fy_buf *out)
{
    fy_w_tx_half a, b;
    fy_frame g;

    if (fy_wire_dec_tx_half(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_tx_half(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_tx_half(&g, &b) == FY_OK && slice_eq(a.group, b.group) &&
                   slice_eq(a.sharding_key, b.sharding_key) && slice_eq(a.record, b.record),
               "tx_half: fields differ");
}

static void fuzz_tx_end(const fy_frame *f, fy_buf *out)
{
    fy_w_tx_end a, b;
    fy_frame g;

    if (fy_wire_dec_tx_end(f, &a) != FY_OK) {
        return;
    }
    fuzz_check(a.state <= FY_TXE_UNKNOWN, "tx_end: state out of range");
    fy_wire_enc_tx_end(out, f->id, f->flags, &a);
    check_reencoded(out, f, f->flags, f->id, &g);
    fuzz_check(fy_wire_dec_tx_end(&g, &b) == FY_OK && a.tx_id == b.tx_id && a.state == b.state,
               "tx_end: fields differ");
}

static void fuzz_tx_list(const fy_frame *f, fy_buf *out)
{
    fy_w_tx_list a, b;
    fy_frame g;

    if (fy_wire_dec_tx_list(f, &a) != FY_OK) {
        return;
    }
    fuzz_check(a.limit >= 1 && a.limit <= FY_WIRE_MAX_BATCH, "tx_list: limit out of range");
    fy_wire_enc_tx_list(out, f->id, &a);
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_tx_list(&g, &b) == FY_OK && a.from_id == b.from_id && a.limit == b.limit,
               "tx_list: fields differ");
}

static void fuzz_tx_check(const fy_frame *f, fy_buf *out)
{
    fy_w_tx_check a, b;
    fy_frame g;

    if (fy_wire_dec_tx_check(f, &a) != FY_OK) {
        return;
    }
    fy_wire_enc_tx_check(out, &a);
    check_reencoded(out, f, 0, 0, &g);
    fuzz_check(fy_wire_dec_tx_check(&g, &b) == FY_OK && a.tx_id == b.tx_id &&
                   slice_eq(a.group, b.group) && a.checks == b.checks &&
                   memcmp(a.msgid, b.msgid, FY_MSGID_LEN) == 0 && slice_eq(a.record, b.record),
               "tx_check: fields differ");
}

/* An OK body read as HELLO's answer and as SEND's answer, each re-encoded when it decodes. */
static void fuzz_ok_body(const fy_frame *f, fy_slice body, fy_buf *out)
{
    fy_w_hello_ok a, b;
    fy_w_group_config_info ga, gb;
    fy_w_response r;
    fy_frame g;
    fy_rd rd;
    size_t start;
    uint16_t n;

    if (fy_wire_dec_group_config_info(body, &ga) == FY_OK) {
        fuzz_check(ga.mode <= FY_SUB_BROADCAST && ga.effective <= FY_WIRE_RECONSUME_MAX,
                   "group_config_info: out of range");
        fy_buf_reset(out);
        fy_wire_enc_group_config_info(out, f->id, &ga);
        check_reencoded(out, f, 0, f->id, &g);
        fuzz_check(fy_wire_dec_response(&g, &r) == FY_OK && r.status == 0 &&
                       fy_wire_dec_group_config_info(r.body, &gb) == FY_OK,
                   "group_config_info: re-encoding does not decode");
        fuzz_check(slice_eq(ga.group, gb.group) && ga.mode == gb.mode &&
                       ga.max_reconsume == gb.max_reconsume && ga.effective == gb.effective,
                   "group_config_info: fields differ");
    }

    if (fy_wire_dec_hello_ok(body, &a) == FY_OK) {
        fy_buf_reset(out);
        fy_wire_enc_hello_ok(out, f->id, &a);
        check_reencoded(out, f, 0, f->id, &g);
        fuzz_check(fy_wire_dec_response(&g, &r) == FY_OK && r.status == 0 &&
                       fy_wire_dec_hello_ok(r.body, &b) == FY_OK,
                   "hello_ok: re-encoding does not decode");
        fuzz_check(a.version == b.version && a.broker_id == b.broker_id &&
                       a.max_frame == b.max_frame && slice_eq(a.broker_version, b.broker_version),
                   "hello_ok: fields differ");
    }

    rd = fy_rd_make(body.p, body.len);
    n = fy_rd_u16(&rd);
    if (rd.bad || rd.left != (size_t)n * FY_WIRE_SEND_RESULT_LEN) {
        return;
    }
    fy_buf_reset(out);
    start = fy_wire_ok_begin(out, f->id);
    fy_buf_put_u16(out, n);
    for (size_t i = 0; i < n; i++) {
        fy_w_send_result res;
        fy_wire_get_send_result(&rd, &res);
        fuzz_check(!rd.bad, "send result: short read");
        fy_wire_put_send_result(out, &res);
    }
    fuzz_check(rd.left == 0, "send result: bytes left");
    fy_wire_frame_end(out, start);
    check_reencoded(out, f, 0, f->id, &g);
}

static void fuzz_response(const fy_frame *f, fy_buf *out)
{
    fy_w_response a, b;
    fy_frame g;
    size_t start;
    char *msg;

    if (fy_wire_dec_response(f, &a) != FY_OK) {
        return;
    }
    if (a.status == 0) {
        fuzz_check(a.message.len == 0, "response: OK with a message");
        start = fy_wire_ok_begin(out, f->id);
        if (a.body.len > 0) {
            fy_buf_append(out, a.body.p, a.body.len);
        }
        fy_wire_frame_end(out, start);
    } else {
        fuzz_check(a.body.len == 0, "response: error with a body");
        msg = cstr(a.message);
        if (!msg) {
            return;
        }
        fy_wire_enc_error(out, f->id, a.status, msg);
        free(msg);
    }
    check_reencoded(out, f, 0, f->id, &g);
    fuzz_check(fy_wire_dec_response(&g, &b) == FY_OK && a.status == b.status &&
                   slice_eq(a.message, b.message) && slice_eq(a.body, b.body),
               "response: fields differ");
    if (a.status == 0) {
        fuzz_ok_body(f, a.body, out);
    }
}

/* Only frames with default flags re-encode through encoders that take no flags argument. */
static void fuzz_frame(const fy_frame *f, fy_buf *out)
{
    bool plain = f->flags == 0;
    bool pushed = plain && f->id == 0; /* DELIVER and SUB_CLOSED are encoded with id 0 */

    fy_buf_reset(out);
    switch (f->type) {
    case FY_W_HELLO:
        if (plain) {
            fuzz_hello(f, out);
        }
        break;
    case FY_W_PING:
    case FY_W_TOPIC_LIST:
    case FY_W_GROUP_LIST:
        if (plain) {
            fuzz_empty(f, out);
        }
        break;
    case FY_W_TOPIC_CREATE:
        if (plain) {
            fuzz_topic(f, out);
        }
        break;
    case FY_W_TOPIC_DELETE:
    case FY_W_TOPIC_DESCRIBE:
        if (plain) {
            fuzz_topic(f, out);
            fy_buf_reset(out);
            fuzz_str(f, out);
        }
        break;
    case FY_W_MSG_GET:
    case FY_W_GROUP_DESCRIBE:
    case FY_W_TX_REGISTER:
    case FY_W_TX_UNREGISTER:
        if (plain) {
            fuzz_str(f, out);
        }
        break;
    case FY_W_SEND:
        if (plain) {
            fuzz_send(f, out);
        }
        break;
    case FY_W_SUBSCRIBE:
        if (plain) {
            fuzz_subscribe(f, out);
        }
        break;
    case FY_W_CREDIT:
        fuzz_credit(f, out);
        break;
    case FY_W_ACK:
    case FY_W_NACK:
        fuzz_ack(f, out);
        break;
    case FY_W_GROUP_RESET:
        if (plain) {
            fuzz_group_reset(f, out);
        }
        break;
    case FY_W_GROUP_CONFIG:
        if (plain) {
            fuzz_group_config(f, out);
        }
        break;
    case FY_W_MSG_FIND:
        if (plain) {
            fuzz_msg_find(f, out);
        }
        break;
    case FY_W_TX_HALF:
        if (plain) {
            fuzz_tx_half(f, out);
        }
        break;
    case FY_W_TX_END:
        fuzz_tx_end(f, out);
        break;
    case FY_W_TX_LIST:
        if (plain) {
            fuzz_tx_list(f, out);
        }
        break;
    case FY_W_TX_CHECK:
        if (pushed) {
            fuzz_tx_check(f, out);
        }
        break;
    case FY_W_RESPONSE:
        if (plain) {
            fuzz_response(f, out);
        }
        break;
    case FY_W_DELIVER:
        if (pushed) {
            fuzz_deliver(f, out);
        }
        break;
    case FY_W_SUB_CLOSED:
        if (pushed) {
            fuzz_sub_closed(f, out);
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fy_buf out = FY_BUF_INIT;
    size_t off = 0;
    size_t max_frame = FY_WIRE_DEFAULT_MAX_FRAME;
    fy_frame f;

    while (off < size) {
        long n = fy_wire_frame_parse(data + off, size - off, max_frame, &f);
        if (n <= 0) {
            fuzz_check(n == 0 || n == -FY_EPROTO || n == -FY_ETOOBIG, "unexpected parse result");
            break;
        }
        fuzz_check((size_t)n <= size - off && (size_t)n >= FY_WIRE_HEADER_LEN &&
                       (size_t)n <= max_frame + 4,
                   "frame size out of range");
        fuzz_check(f.payload.p == data + off + FY_WIRE_HEADER_LEN &&
                       f.payload.len == (size_t)n - FY_WIRE_HEADER_LEN,
                   "payload slice wrong");
        fuzz_frame(&f, &out);
        off += (size_t)n;
    }
    fy_buf_free(&out);
    return 0;
}
