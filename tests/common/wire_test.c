/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the native protocol codec (common/wire.h): a round trip of every message type
 * through frame_parse, frame splitting (every prefix, back-to-back frames, length limits), every
 * decoder against truncated payloads and trailing bytes (on exactly-sized heap copies, so ASan
 * sees any over-read), out-of-range enums, counts and MSG_FIND limits, RESPONSE rules, and
 * message ids. */
#include "common/buf.h"
#include "common/record.h"
#include "common/wire.h"

#include "ferry/errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

static void assert_slice_str(fy_slice s, const char *want)
{
    size_t len = strlen(want);

    assert_int_equal(s.len, len);
    if (len > 0) {
        assert_non_null(s.p);
        assert_memory_equal(s.p, want, len);
    }
}

static void assert_slice_eq(fy_slice s, const void *p, size_t len)
{
    assert_int_equal(s.len, len);
    if (len > 0) {
        assert_memory_equal(s.p, p, len);
    }
}

/* Parses the single frame that fills b exactly and checks its header. */
static void parse_whole(const fy_buf *b, uint8_t type, uint8_t flags, uint32_t id, fy_frame *f)
{
    long n = fy_wire_frame_parse(b->data, b->len, FY_WIRE_DEFAULT_MAX_FRAME, f);

    assert_int_equal(n, (long)b->len);
    assert_int_equal(f->type, type);
    assert_int_equal(f->flags, flags);
    assert_int_equal(f->id, id);
    assert_int_equal(f->payload.len, b->len - FY_WIRE_HEADER_LEN);
    assert_ptr_equal(f->payload.p, b->data + FY_WIRE_HEADER_LEN);
}

/* Encodes a small record into out (a fresh buffer). */
static void make_record(fy_buf *out, const char *topic, const char *body)
{
    fy_slice key = fy_slice_str("k1");
    fy_record r = {0};

    r.born_ms = 1700000000000ull;
    r.topic = fy_slice_str(topic);
    r.tag = fy_slice_str("TagA");
    r.born_host = fy_slice_str("host:1");
    r.keys = &key;
    r.nkeys = 1;
    r.body = fy_slice_str(body);
    assert_int_equal(fy_record_encode(&r, out), FY_OK);
}

/* ---- Decoders as one shape, for the table-driven tests ------------------------------------ */

typedef int (*dec_fn)(const fy_frame *f, void *m);

static int dec_hello(const fy_frame *f, void *m)
{
    return fy_wire_dec_hello(f, m);
}
static int dec_hello_ok(const fy_frame *f, void *m)
{
    fy_w_response resp;
    int rc = fy_wire_dec_response(f, &resp);
    /* Truncation of the body is what this checks; a malformed status/message is also fine. */
    return rc != FY_OK ? rc : fy_wire_dec_hello_ok(resp.body, m);
}
static int dec_topic(const fy_frame *f, void *m)
{
    return fy_wire_dec_topic(f, m);
}
static int dec_send(const fy_frame *f, void *m)
{
    return fy_wire_dec_send(f, m);
}
static int dec_subscribe(const fy_frame *f, void *m)
{
    return fy_wire_dec_subscribe(f, m);
}
static int dec_credit(const fy_frame *f, void *m)
{
    return fy_wire_dec_credit(f, m);
}
static int dec_ack(const fy_frame *f, void *m)
{
    return fy_wire_dec_ack(f, m);
}
static int dec_deliver(const fy_frame *f, void *m)
{
    return fy_wire_dec_deliver(f, m);
}
static int dec_sub_closed(const fy_frame *f, void *m)
{
    return fy_wire_dec_sub_closed(f, m);
}
static int dec_group_reset(const fy_frame *f, void *m)
{
    return fy_wire_dec_group_reset(f, m);
}
static int dec_group_config(const fy_frame *f, void *m)
{
    return fy_wire_dec_group_config(f, m);
}
static int dec_group_config_info(const fy_frame *f, void *m)
{
    fy_w_response resp;
    int rc = fy_wire_dec_response(f, &resp);
    return rc != FY_OK ? rc : fy_wire_dec_group_config_info(resp.body, m);
}
static int dec_msg_find(const fy_frame *f, void *m)
{
    return fy_wire_dec_msg_find(f, m);
}
static int dec_tx_half(const fy_frame *f, void *m)
{
    return fy_wire_dec_tx_half(f, m);
}
static int dec_tx_end(const fy_frame *f, void *m)
{
    return fy_wire_dec_tx_end(f, m);
}
static int dec_tx_list(const fy_frame *f, void *m)
{
    return fy_wire_dec_tx_list(f, m);
}
static int dec_tx_check(const fy_frame *f, void *m)
{
    return fy_wire_dec_tx_check(f, m);
}
static int dec_str(const fy_frame *f, void *m)
{
    return fy_wire_dec_str(f, m);
}
static int dec_error_response(const fy_frame *f, void *m)
{
    return fy_wire_dec_response(f, m);
}

typedef struct sample {
    const char *name;
    fy_buf buf;
    dec_fn dec;
} sample;

enum { NSAMPLES = 21 };

/* One valid frame of every message type whose payload has a fixed end (an OK RESPONSE's body
 * is "the rest", so it is tested on its own). */
static void build_samples(sample s[NSAMPLES])
{
    fy_buf rec = FY_BUF_INIT;
    fy_w_hello hello = {1, fy_slice_str("cid"), fy_slice_str("name"), false, {NULL, 0}, {NULL, 0}};
    fy_w_hello_ok hello_ok = {1, 7, 1u << 20, fy_slice_str("ferry 0.1")};
    fy_w_topic create = {fy_slice_str("orders"), 8};
    fy_w_subscribe sub = {
        5, fy_slice_str("g"), fy_slice_str("orders"), fy_slice_str("A||B"), 1, 2, 123456789ull, 64,
        1, FY_SUB_F_ORDERLY};
    fy_w_credit credit = {5, 10};
    static fy_w_ack ack;
    fy_w_sub_closed closed = {5, FY_ENOTFOUND, fy_slice_str("topic deleted")};
    fy_w_group_reset reset = {fy_slice_str("g"), fy_slice_str("orders"), 42};
    fy_w_group_config gconf = {fy_slice_str("g"), FY_GROUP_CFG_MAX_RECONSUME, 3};
    fy_w_group_config_info ginfo = {fy_slice_str("g"), FY_SUB_CLUSTERING, 3, 3};
    fy_w_msg_find find = {fy_slice_str("orders"), fy_slice_str("order-1"), 5, UINT64_MAX, 300};
    size_t start;
    int i = 0;

    memset(s, 0, sizeof(sample) * NSAMPLES);
    make_record(&rec, "orders", "hello");
    fy_w_tx_half tx_half = {fy_slice_str("pg"), fy_slice_str("k"), {rec.data, rec.len}};
    fy_w_tx_end tx_end = {77, FY_TXE_ROLLBACK};
    fy_w_tx_list tx_list = {5, 100};
    fy_w_tx_check tx_check = {77, fy_slice_str("pg"), 3, "0123456789abcde", {rec.data, rec.len}};

    s[i].name = "hello";
    s[i].dec = dec_hello;
    fy_wire_enc_hello(&s[i++].buf, 1, &hello);
    s[i].name = "hello_ok";
    s[i].dec = dec_hello_ok;
    fy_wire_enc_hello_ok(&s[i++].buf, 1, &hello_ok);
    s[i].name = "topic_create";
    s[i].dec = dec_topic;
    fy_wire_enc_topic(&s[i++].buf, FY_W_TOPIC_CREATE, 2, &create);
    s[i].name = "topic_delete";
    s[i].dec = dec_topic;
    fy_wire_enc_topic(&s[i++].buf, FY_W_TOPIC_DELETE, 3, &create);
    s[i].name = "send";
    s[i].dec = dec_send;
    start = fy_wire_send_begin(&s[i].buf, 4);
    fy_wire_send_add(&s[i].buf, "key", rec.data, rec.len);
    fy_wire_send_add(&s[i].buf, NULL, rec.data, rec.len);
    fy_wire_send_end(&s[i++].buf, start, 2);
    s[i].name = "subscribe";
    s[i].dec = dec_subscribe;
    fy_wire_enc_subscribe(&s[i++].buf, 5, &sub);
    s[i].name = "credit";
    s[i].dec = dec_credit;
    fy_wire_enc_credit(&s[i++].buf, 6, FY_WIRE_F_NOREPLY, &credit);
    ack.sub_id = 5;
    ack.how = FY_NACK_RELEASE;
    ack.n = 3;
    ack.ids[0] = 1;
    ack.ids[1] = UINT64_MAX;
    ack.ids[2] = 0x0102030405060708ull;
    s[i].name = "ack";
    s[i].dec = dec_ack;
    fy_wire_enc_ack(&s[i++].buf, FY_W_ACK, 7, 0, &ack);
    s[i].name = "nack";
    s[i].dec = dec_ack;
    fy_wire_enc_ack(&s[i++].buf, FY_W_NACK, 8, 0, &ack);
    s[i].name = "deliver";
    s[i].dec = dec_deliver;
    fy_wire_enc_deliver(&s[i++].buf, 5, 99, (const uint8_t *)"0123456789abcdef", rec.data, rec.len);
    s[i].name = "sub_closed";
    s[i].dec = dec_sub_closed;
    fy_wire_enc_sub_closed(&s[i++].buf, &closed);
    s[i].name = "group_reset";
    s[i].dec = dec_group_reset;
    fy_wire_enc_group_reset(&s[i++].buf, 9, &reset);
    s[i].name = "group_config";
    s[i].dec = dec_group_config;
    fy_wire_enc_group_config(&s[i++].buf, 16, &gconf);
    s[i].name = "group_config_info";
    s[i].dec = dec_group_config_info;
    fy_wire_enc_group_config_info(&s[i++].buf, 16, &ginfo);
    s[i].name = "msg_find";
    s[i].dec = dec_msg_find;
    fy_wire_enc_msg_find(&s[i++].buf, 12, &find);
    s[i].name = "tx_half";
    s[i].dec = dec_tx_half;
    fy_wire_enc_tx_half(&s[i++].buf, 13, &tx_half);
    s[i].name = "tx_end";
    s[i].dec = dec_tx_end;
    fy_wire_enc_tx_end(&s[i++].buf, 14, FY_WIRE_F_NOREPLY, &tx_end);
    s[i].name = "tx_list";
    s[i].dec = dec_tx_list;
    fy_wire_enc_tx_list(&s[i++].buf, 15, &tx_list);
    s[i].name = "tx_check";
    s[i].dec = dec_tx_check;
    fy_wire_enc_tx_check(&s[i++].buf, &tx_check);
    s[i].name = "msg_get";
    s[i].dec = dec_str;
    fy_wire_enc_simple(&s[i++].buf, FY_W_MSG_GET, 10, "000100000002000300000000000000ff");
    s[i].name = "error";
    s[i].dec = dec_error_response;
    fy_wire_enc_error(&s[i++].buf, 11, FY_ENOTFOUND, "no such topic");
    assert_int_equal(i, NSAMPLES);
    fy_buf_free(&rec);
}

static void free_samples(sample s[NSAMPLES])
{
    for (int i = 0; i < NSAMPLES; i++) {
        fy_buf_free(&s[i].buf);
    }
}

/* Runs dec on a frame with the header of f and a heap copy of exactly n payload bytes: the
 * first min(n, f->payload.len) from f, then `fill` bytes. */
static int dec_resized(dec_fn dec, const fy_frame *f, size_t n, uint8_t fill)
{
    static uint8_t m[sizeof(fy_w_send)]; /* the largest decoded struct */
    uint8_t *copy = malloc(n ? n : 1);
    fy_frame g = *f;
    int rc;

    assert_non_null(copy);
    memset(copy, fill, n);
    memcpy(copy, f->payload.p, n < f->payload.len ? n : f->payload.len);
    g.payload.p = copy;
    g.payload.len = n;
    rc = dec(&g, m);
    free(copy);
    return rc;
}

/* ---- Round trips --------------------------------------------------------------------------- */

static void test_wire_round_trip_hello(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_hello in = {FY_WIRE_VERSION,
                     fy_slice_str("client-7"),
                     fy_slice_str("orders app"),
                     false,
                     {NULL, 0},
                     {NULL, 0}},
               out;
    fy_frame f;

    fy_wire_enc_hello(&b, 0xdeadbeef, &in);
    parse_whole(&b, FY_W_HELLO, 0, 0xdeadbeef, &f);
    assert_int_equal(fy_wire_dec_hello(&f, &out), FY_OK);
    assert_int_equal(out.version, FY_WIRE_VERSION);
    assert_slice_str(out.client_id, "client-7");
    assert_slice_str(out.client_name, "orders app");
    /* The exact layout of docs/protocol.md. */
    static const uint8_t want[] = {0,   0,   0,   30,  0x01, 0,   0xde, 0xad, 0xbe, 0xef, 0, 1,
                                   0,   8,   'c', 'l', 'i',  'e', 'n',  't',  '-',  '7',  0, 10,
                                   'o', 'r', 'd', 'e', 'r',  's', ' ',  'a',  'p',  'p'};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    assert_false(out.has_credentials);
    /* With credentials: two more strings, read back. */
    fy_buf_reset(&b);
    in.has_credentials = true;
    in.username = fy_slice_str("alice");
    in.password = fy_slice_str("s3cret");
    fy_wire_enc_hello(&b, 1, &in);
    parse_whole(&b, FY_W_HELLO, 0, 1, &f);
    assert_int_equal(fy_wire_dec_hello(&f, &out), FY_OK);
    assert_true(out.has_credentials);
    assert_slice_str(out.username, "alice");
    assert_slice_str(out.password, "s3cret");
    fy_buf_free(&b);
}

static void test_wire_round_trip_hello_ok(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_hello_ok in = {1, 3, FY_WIRE_DEFAULT_MAX_FRAME, fy_slice_str("0.1.0")}, out;
    fy_w_response resp;
    fy_frame f;

    fy_wire_enc_hello_ok(&b, 77, &in);
    parse_whole(&b, FY_W_RESPONSE, 0, 77, &f);
    assert_int_equal(fy_wire_dec_response(&f, &resp), FY_OK);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.message.len, 0);
    assert_int_equal(fy_wire_dec_hello_ok(resp.body, &out), FY_OK);
    assert_int_equal(out.version, 1);
    assert_int_equal(out.broker_id, 3);
    assert_int_equal(out.max_frame, FY_WIRE_DEFAULT_MAX_FRAME);
    assert_slice_str(out.broker_version, "0.1.0");
    fy_buf_free(&b);
}

static void test_wire_round_trip_topic(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_topic in = {fy_slice_str("orders"), 16}, out;
    fy_frame f;
    fy_slice s;

    fy_wire_enc_topic(&b, FY_W_TOPIC_CREATE, 1, &in);
    parse_whole(&b, FY_W_TOPIC_CREATE, 0, 1, &f);
    assert_int_equal(fy_wire_dec_topic(&f, &out), FY_OK);
    assert_slice_str(out.name, "orders");
    assert_int_equal(out.queues, 16);

    /* TOPIC_DELETE and TOPIC_DESCRIBE carry the name only, the same bytes as enc_simple. */
    for (uint8_t type = FY_W_TOPIC_DELETE; type <= FY_W_TOPIC_DESCRIBE; type += 2) {
        fy_buf c = FY_BUF_INIT;
        fy_buf_reset(&b);
        fy_wire_enc_topic(&b, type, 2, &in);
        fy_wire_enc_simple(&c, type, 2, "orders");
        assert_int_equal(b.len, c.len);
        assert_memory_equal(b.data, c.data, b.len);
        fy_buf_free(&c);
        parse_whole(&b, type, 0, 2, &f);
        assert_int_equal(fy_wire_dec_topic(&f, &out), FY_OK);
        assert_slice_str(out.name, "orders");
        assert_int_equal(out.queues, 0);
        assert_int_equal(fy_wire_dec_str(&f, &s), FY_OK);
        assert_slice_str(s, "orders");
    }
    fy_buf_free(&b);
}

static void test_wire_round_trip_send(void **state)
{
    fy_buf b = FY_BUF_INIT, r1 = FY_BUF_INIT, r2 = FY_BUF_INIT;
    fy_w_send *out = malloc(sizeof(*out));
    fy_record_view v;
    fy_frame f;
    size_t start;

    assert_non_null(out);
    make_record(&r1, "orders", "first");
    make_record(&r2, "payments", "second body");
    fy_buf_put_u8(&b, 0xaa); /* a frame need not start at offset 0 of the buffer */
    start = fy_wire_send_begin(&b, 12);
    assert_int_equal(start, 1);
    fy_wire_send_add(&b, "user-42", r1.data, r1.len);
    fy_wire_send_add(&b, NULL, r2.data, r2.len);
    fy_wire_send_end(&b, start, 2);
    assert_int_equal(fy_be32_get(b.data + 1), b.len - 1 - 4);

    assert_int_equal(fy_wire_frame_parse(b.data + 1, b.len - 1, FY_WIRE_DEFAULT_MAX_FRAME, &f),
                     (long)b.len - 1);
    assert_int_equal(f.type, FY_W_SEND);
    assert_int_equal(f.id, 12);
    assert_int_equal(fy_wire_dec_send(&f, out), FY_OK);
    assert_int_equal(out->n, 2);
    assert_slice_str(out->msgs[0].sharding_key, "user-42");
    assert_slice_eq(out->msgs[0].record, r1.data, r1.len);
    assert_slice_str(out->msgs[1].sharding_key, "");
    assert_slice_eq(out->msgs[1].record, r2.data, r2.len);
    assert_int_equal(fy_record_decode(out->msgs[1].record.p, out->msgs[1].record.len, &v), FY_OK);
    assert_slice_str(v.topic, "payments");
    assert_slice_str(v.body, "second body");

    /* The largest batch decodes. */
    fy_buf_reset(&b);
    start = fy_wire_send_begin(&b, 13);
    for (int i = 0; i < FY_WIRE_MAX_BATCH; i++) {
        fy_wire_send_add(&b, i % 2 ? "k" : "", r1.data, r1.len);
    }
    fy_wire_send_end(&b, start, FY_WIRE_MAX_BATCH);
    parse_whole(&b, FY_W_SEND, 0, 13, &f);
    assert_int_equal(fy_wire_dec_send(&f, out), FY_OK);
    assert_int_equal(out->n, FY_WIRE_MAX_BATCH);
    assert_slice_str(out->msgs[FY_WIRE_MAX_BATCH - 1].sharding_key, "k");
    assert_slice_eq(out->msgs[FY_WIRE_MAX_BATCH - 1].record, r1.data, r1.len);

    free(out);
    fy_buf_free(&b);
    fy_buf_free(&r1);
    fy_buf_free(&r2);
}

static void test_wire_round_trip_subscribe(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_subscribe in = {0xfffffffe,
                         fy_slice_str("group-1"),
                         fy_slice_str("orders"),
                         fy_slice_str("TagA || TagB"),
                         FY_SUB_BROADCAST,
                         FY_START_TIME,
                         0x0123456789abcdefull,
                         1000,
                         FY_FILTER_SQL92,
                         FY_SUB_F_ORDERLY},
                   out;
    fy_frame f;

    fy_wire_enc_subscribe(&b, 3, &in);
    parse_whole(&b, FY_W_SUBSCRIBE, 0, 3, &f);
    assert_int_equal(fy_wire_dec_subscribe(&f, &out), FY_OK);
    assert_int_equal(out.sub_id, 0xfffffffe);
    assert_slice_str(out.group, "group-1");
    assert_slice_str(out.topic, "orders");
    assert_slice_str(out.filter, "TagA || TagB");
    assert_int_equal(out.mode, FY_SUB_BROADCAST);
    assert_int_equal(out.filter_type, FY_FILTER_SQL92);
    assert_int_equal(out.sub_flags, FY_SUB_F_ORDERLY);
    assert_int_equal(out.start, FY_START_TIME);
    assert_int_equal(out.start_ms, 0x0123456789abcdefull);
    assert_int_equal(out.credit, 1000);
    fy_buf_free(&b);
}

static void test_wire_round_trip_credit_and_unsubscribe(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_credit in = {9, 0xffffffff}, out;
    fy_frame f;
    fy_rd r;

    fy_wire_enc_credit(&b, 4, FY_WIRE_F_NOREPLY, &in);
    parse_whole(&b, FY_W_CREDIT, FY_WIRE_F_NOREPLY, 4, &f);
    assert_int_equal(fy_wire_dec_credit(&f, &out), FY_OK);
    assert_int_equal(out.sub_id, 9);
    assert_int_equal(out.credit, 0xffffffff);

    /* UNSUBSCRIBE is a bare u32 built with the frame primitives. */
    fy_buf_reset(&b);
    size_t start = fy_wire_frame_begin(&b, FY_W_UNSUBSCRIBE, 0, 5);
    fy_buf_put_u32(&b, 9);
    fy_wire_frame_end(&b, start);
    parse_whole(&b, FY_W_UNSUBSCRIBE, 0, 5, &f);
    r = fy_rd_make(f.payload.p, f.payload.len);
    assert_int_equal(fy_rd_u32(&r), 9);
    assert_false(r.bad);
    assert_int_equal(r.left, 0);
    fy_buf_free(&b);
}

static void test_wire_round_trip_ack_nack(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_ack *in = calloc(1, sizeof(*in)), *out = malloc(sizeof(*out));
    fy_frame f;

    assert_non_null(in);
    assert_non_null(out);
    in->sub_id = 17;
    in->how = FY_NACK_REJECT;
    in->n = FY_WIRE_MAX_BATCH;
    for (int i = 0; i < FY_WIRE_MAX_BATCH; i++) {
        in->ids[i] = 0x1000000000000000ull + (uint64_t)i * 3;
    }

    fy_wire_enc_ack(&b, FY_W_NACK, 8, FY_WIRE_F_NOREPLY, in);
    parse_whole(&b, FY_W_NACK, FY_WIRE_F_NOREPLY, 8, &f);
    assert_int_equal(f.payload.len, 4 + 1 + 2 + 8 * FY_WIRE_MAX_BATCH);
    assert_int_equal(fy_wire_dec_ack(&f, out), FY_OK);
    assert_int_equal(out->sub_id, 17);
    assert_int_equal(out->how, FY_NACK_REJECT);
    assert_int_equal(out->n, FY_WIRE_MAX_BATCH);
    assert_memory_equal(out->ids, in->ids, sizeof(in->ids));

    /* ACK writes its reserved byte as 0 whatever how says. */
    fy_buf_reset(&b);
    in->n = 1;
    fy_wire_enc_ack(&b, FY_W_ACK, 9, 0, in);
    parse_whole(&b, FY_W_ACK, 0, 9, &f);
    assert_int_equal(f.payload.p[4], 0);
    assert_int_equal(fy_wire_dec_ack(&f, out), FY_OK);
    assert_int_equal(out->how, 0);
    assert_int_equal(out->n, 1);
    assert_int_equal(out->ids[0], in->ids[0]);

    free(in);
    free(out);
    fy_buf_free(&b);
}

static void test_wire_round_trip_deliver(void **state)
{
    fy_buf b = FY_BUF_INIT, rec = FY_BUF_INIT;
    fy_w_deliver out;
    fy_record_view v;
    fy_frame f;

    make_record(&rec, "orders", "payload");
    fy_wire_enc_deliver(&b, 21, 0xfedcba9876543210ull, (const uint8_t *)"0123456789abcdef",
                        rec.data, rec.len);
    parse_whole(&b, FY_W_DELIVER, 0, 0, &f);
    assert_int_equal(fy_wire_dec_deliver(&f, &out), FY_OK);
    assert_int_equal(out.sub_id, 21);
    assert_int_equal(out.delivery_id, 0xfedcba9876543210ull);
    assert_memory_equal(out.msgid, "0123456789abcdef", FY_MSGID_LEN);
    assert_slice_eq(out.record, rec.data, rec.len);
    assert_int_equal(fy_record_decode(out.record.p, out.record.len, &v), FY_OK);
    assert_slice_str(v.body, "payload");
    fy_buf_free(&b);
    fy_buf_free(&rec);
}

static void test_wire_round_trip_sub_closed(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_sub_closed in = {4, FY_ENOTFOUND, fy_slice_str("topic deleted")}, out;
    fy_frame f;

    fy_wire_enc_sub_closed(&b, &in);
    parse_whole(&b, FY_W_SUB_CLOSED, 0, 0, &f);
    assert_int_equal(fy_wire_dec_sub_closed(&f, &out), FY_OK);
    assert_int_equal(out.sub_id, 4);
    assert_int_equal(out.status, FY_ENOTFOUND);
    assert_slice_str(out.reason, "topic deleted");
    fy_buf_free(&b);
}

static void test_wire_round_trip_group_reset(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_group_reset in = {fy_slice_str("g1"), fy_slice_str("orders"), 1700000000123ull}, out;
    fy_frame f;

    fy_wire_enc_group_reset(&b, 6, &in);
    parse_whole(&b, FY_W_GROUP_RESET, 0, 6, &f);
    assert_int_equal(fy_wire_dec_group_reset(&f, &out), FY_OK);
    assert_slice_str(out.group, "g1");
    assert_slice_str(out.topic, "orders");
    assert_int_equal(out.ts_ms, 1700000000123ull);
    fy_buf_free(&b);
}

static void test_wire_round_trip_group_config(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_group_config in = {fy_slice_str("g1"), FY_GROUP_CFG_MAX_RECONSUME, 1}, out;
    fy_w_group_config_info info = {fy_slice_str("g1"), FY_SUB_CLUSTERING, FY_WIRE_RECONSUME_DEFAULT,
                                   16},
                           info2;
    fy_w_response resp;
    fy_frame f;

    fy_wire_enc_group_config(&b, 8, &in);
    parse_whole(&b, FY_W_GROUP_CONFIG, 0, 8, &f);
    assert_int_equal(fy_wire_dec_group_config(&f, &out), FY_OK);
    assert_slice_str(out.group, "g1");
    assert_int_equal(out.set, FY_GROUP_CFG_MAX_RECONSUME);
    assert_int_equal(out.max_reconsume, 1);
    /* The exact layout of docs/protocol.md: str group, u8 set, u8 max_reconsume. */
    static const uint8_t want[] = {0,   0,   0,    12, FY_W_GROUP_CONFIG, 0, 0, 0, 0, 8, 0, 2,
                                   'g', '1', 0x01, 1};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    /* Back to the broker's default, and a read (nothing set). */
    in.max_reconsume = FY_WIRE_RECONSUME_DEFAULT;
    fy_buf_reset(&b);
    fy_wire_enc_group_config(&b, 8, &in);
    parse_whole(&b, FY_W_GROUP_CONFIG, 0, 8, &f);
    assert_int_equal(fy_wire_dec_group_config(&f, &out), FY_OK);
    assert_int_equal(out.max_reconsume, FY_WIRE_RECONSUME_DEFAULT);
    in = (fy_w_group_config){fy_slice_str("g1"), 0, 0};
    fy_buf_reset(&b);
    fy_wire_enc_group_config(&b, 8, &in);
    parse_whole(&b, FY_W_GROUP_CONFIG, 0, 8, &f);
    assert_int_equal(fy_wire_dec_group_config(&f, &out), FY_OK);
    assert_int_equal(out.set, 0);
    /* Out of range: 65..254, a value without its bit, an unknown bit. */
    ((uint8_t *)f.payload.p)[4] = FY_GROUP_CFG_MAX_RECONSUME;
    ((uint8_t *)f.payload.p)[5] = 65;
    assert_int_equal(fy_wire_dec_group_config(&f, &out), -FY_EPROTO);
    ((uint8_t *)f.payload.p)[5] = 64;
    assert_int_equal(fy_wire_dec_group_config(&f, &out), FY_OK);
    ((uint8_t *)f.payload.p)[4] = 0;
    assert_int_equal(fy_wire_dec_group_config(&f, &out), -FY_EPROTO);
    ((uint8_t *)f.payload.p)[4] = 0x02;
    ((uint8_t *)f.payload.p)[5] = 0;
    assert_int_equal(fy_wire_dec_group_config(&f, &out), -FY_EPROTO);

    /* The answer. */
    fy_buf_reset(&b);
    fy_wire_enc_group_config_info(&b, 8, &info);
    parse_whole(&b, FY_W_RESPONSE, 0, 8, &f);
    assert_int_equal(fy_wire_dec_response(&f, &resp), FY_OK);
    assert_int_equal(resp.status, 0);
    assert_int_equal(fy_wire_dec_group_config_info(resp.body, &info2), FY_OK);
    assert_slice_str(info2.group, "g1");
    assert_int_equal(info2.mode, FY_SUB_CLUSTERING);
    assert_int_equal(info2.max_reconsume, FY_WIRE_RECONSUME_DEFAULT);
    assert_int_equal(info2.effective, 16);
    assert_int_equal(resp.body.len, 4 + 3);
    ((uint8_t *)resp.body.p)[6] = 65; /* effective out of range */
    assert_int_equal(fy_wire_dec_group_config_info(resp.body, &info2), -FY_EPROTO);
    ((uint8_t *)resp.body.p)[6] = 0;
    ((uint8_t *)resp.body.p)[4] = 2; /* no such mode */
    assert_int_equal(fy_wire_dec_group_config_info(resp.body, &info2), -FY_EPROTO);
    fy_buf_free(&b);
}

static void test_wire_round_trip_tx(void **state)
{
    fy_buf b = FY_BUF_INIT, rec = FY_BUF_INIT;
    fy_frame f;
    fy_w_tx_half h, h2;
    fy_w_tx_end e = {0x0102030405060708ull, FY_TXE_COMMIT}, e2;
    fy_w_tx_list l = {9, FY_WIRE_MAX_BATCH}, l2;
    fy_w_tx_check c, c2;

    make_record(&rec, "orders", "half");
    h = (fy_w_tx_half){fy_slice_str("pg"), fy_slice_str("order-1"), {rec.data, rec.len}};
    fy_wire_enc_tx_half(&b, 3, &h);
    parse_whole(&b, FY_W_TX_HALF, 0, 3, &f);
    assert_int_equal(fy_wire_dec_tx_half(&f, &h2), FY_OK);
    assert_slice_str(h2.group, "pg");
    assert_slice_str(h2.sharding_key, "order-1");
    assert_int_equal(h2.record.len, rec.len);
    assert_memory_equal(h2.record.p, rec.data, rec.len);
    /* str group, str sharding_key, u32 len, record. */
    assert_int_equal(f.payload.len, 2 + 2 + 2 + 7 + 4 + rec.len);

    fy_buf_reset(&b);
    fy_wire_enc_tx_end(&b, 4, FY_WIRE_F_NOREPLY, &e);
    parse_whole(&b, FY_W_TX_END, FY_WIRE_F_NOREPLY, 4, &f);
    assert_int_equal(fy_wire_dec_tx_end(&f, &e2), FY_OK);
    assert_int_equal(e2.tx_id, e.tx_id);
    assert_int_equal(e2.state, FY_TXE_COMMIT);
    assert_int_equal(f.payload.len, 9);
    ((uint8_t *)f.payload.p)[8] = 3; /* no such state */
    assert_int_equal(fy_wire_dec_tx_end(&f, &e2), -FY_EPROTO);

    fy_buf_reset(&b);
    fy_wire_enc_tx_list(&b, 5, &l);
    parse_whole(&b, FY_W_TX_LIST, 0, 5, &f);
    assert_int_equal(fy_wire_dec_tx_list(&f, &l2), FY_OK);
    assert_int_equal(l2.from_id, 9);
    assert_int_equal(l2.limit, FY_WIRE_MAX_BATCH);
    l.limit = 0;
    fy_buf_reset(&b);
    fy_wire_enc_tx_list(&b, 5, &l);
    parse_whole(&b, FY_W_TX_LIST, 0, 5, &f);
    assert_int_equal(fy_wire_dec_tx_list(&f, &l2), -FY_EPROTO);

    c.tx_id = 42;
    c.group = fy_slice_str("pg");
    c.checks = 2;
    memcpy(c.msgid, "0123456789abcdef", FY_MSGID_LEN);
    c.record = (fy_slice){rec.data, rec.len};
    fy_buf_reset(&b);
    fy_wire_enc_tx_check(&b, &c);
    parse_whole(&b, FY_W_TX_CHECK, 0, 0, &f);
    assert_int_equal(fy_wire_dec_tx_check(&f, &c2), FY_OK);
    assert_int_equal(c2.tx_id, 42);
    assert_slice_str(c2.group, "pg");
    assert_int_equal(c2.checks, 2);
    assert_memory_equal(c2.msgid, "0123456789abcdef", FY_MSGID_LEN);
    assert_int_equal(c2.record.len, rec.len);
    fy_buf_free(&b);
    fy_buf_free(&rec);
}

static void test_wire_round_trip_msg_find(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_msg_find in = {fy_slice_str("orders"), fy_slice_str("order-7"), 1700000000123ull,
                        0xfedcba9876543210ull, FY_WIRE_MAX_BATCH},
                  out;
    fy_frame f;

    fy_wire_enc_msg_find(&b, 0x01020304, &in);
    parse_whole(&b, FY_W_MSG_FIND, 0, 0x01020304, &f);
    assert_int_equal(fy_wire_dec_msg_find(&f, &out), FY_OK);
    assert_slice_str(out.topic, "orders");
    assert_slice_str(out.key, "order-7");
    assert_int_equal(out.from_ms, 1700000000123ull);
    assert_int_equal(out.to_ms, 0xfedcba9876543210ull);
    assert_int_equal(out.limit, FY_WIRE_MAX_BATCH);
    /* The exact layout of docs/protocol.md: header, str topic, str key, u64 from_ms, u64 to_ms,
     * u32 limit. */
    static const uint8_t want[] = {
        0,    0,    0,    43,   0x41, 0,    1,    2,    3,    4,    0,    6, 'o', 'r',  'd',  'e',
        'r',  's',  0,    7,    'o',  'r',  'd',  'e',  'r',  '-',  '7',  0, 0,   0x01, 0x8b, 0xcf,
        0xe5, 0x68, 0x7b, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0, 0,   0x04, 0};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    /* Empty strings and the smallest limit survive too. */
    fy_buf_reset(&b);
    in.topic = fy_slice_str("");
    in.key = fy_slice_str("");
    in.from_ms = 0;
    in.to_ms = 0;
    in.limit = 1;
    fy_wire_enc_msg_find(&b, 9, &in);
    parse_whole(&b, FY_W_MSG_FIND, 0, 9, &f);
    assert_int_equal(fy_wire_dec_msg_find(&f, &out), FY_OK);
    assert_int_equal(out.topic.len, 0);
    assert_int_equal(out.key.len, 0);
    assert_int_equal(out.from_ms, 0);
    assert_int_equal(out.to_ms, 0);
    assert_int_equal(out.limit, 1);
    fy_buf_free(&b);
}

/* MSG_FIND's limit is 1..1024: the encoder writes any value, the decoder refuses the others. */
static void test_wire_msg_find_limit_range(void **state)
{
    static const uint32_t bad[] = {0, FY_WIRE_MAX_BATCH + 1, 0x10000, UINT32_MAX};
    static const uint32_t good[] = {1, 2, FY_WIRE_MAX_BATCH - 1, FY_WIRE_MAX_BATCH};
    fy_w_msg_find in = {fy_slice_str("t"), fy_slice_str("k"), 0, UINT64_MAX, 0}, out;
    fy_buf b = FY_BUF_INIT;
    fy_frame f;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fy_buf_reset(&b);
        in.limit = bad[i];
        fy_wire_enc_msg_find(&b, 1, &in);
        parse_whole(&b, FY_W_MSG_FIND, 0, 1, &f);
        assert_int_equal(fy_be32_get(b.data + b.len - 4), bad[i]);
        if (fy_wire_dec_msg_find(&f, &out) != -FY_EPROTO) {
            fail_msg("limit %u accepted", (unsigned)bad[i]);
        }
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        fy_buf_reset(&b);
        in.limit = good[i];
        fy_wire_enc_msg_find(&b, 1, &in);
        parse_whole(&b, FY_W_MSG_FIND, 0, 1, &f);
        assert_int_equal(fy_wire_dec_msg_find(&f, &out), FY_OK);
        assert_int_equal(out.limit, good[i]);
    }
    fy_buf_free(&b);
}

static void test_wire_round_trip_simple(void **state)
{
    static const uint8_t empty_types[] = {FY_W_PING, FY_W_TOPIC_LIST, FY_W_GROUP_LIST};
    static const uint8_t str_types[] = {FY_W_TOPIC_DELETE, FY_W_TOPIC_DESCRIBE, FY_W_MSG_GET,
                                        FY_W_GROUP_DESCRIBE};
    fy_buf b = FY_BUF_INIT;
    fy_frame f;
    fy_slice s;

    for (size_t i = 0; i < sizeof(empty_types); i++) {
        fy_buf_reset(&b);
        fy_wire_enc_simple(&b, empty_types[i], (uint32_t)i, NULL);
        assert_int_equal(b.len, FY_WIRE_HEADER_LEN);
        parse_whole(&b, empty_types[i], 0, (uint32_t)i, &f);
        assert_int_equal(f.payload.len, 0);
    }
    for (size_t i = 0; i < sizeof(str_types); i++) {
        fy_buf_reset(&b);
        fy_wire_enc_simple(&b, str_types[i], 100 + (uint32_t)i, "name-x");
        parse_whole(&b, str_types[i], 0, 100 + (uint32_t)i, &f);
        assert_int_equal(fy_wire_dec_str(&f, &s), FY_OK);
        assert_slice_str(s, "name-x");
    }
    /* An empty string is a u16 0, not an empty payload. */
    fy_buf_reset(&b);
    fy_wire_enc_simple(&b, FY_W_GROUP_DESCRIBE, 1, "");
    parse_whole(&b, FY_W_GROUP_DESCRIBE, 0, 1, &f);
    assert_int_equal(f.payload.len, 2);
    assert_int_equal(fy_wire_dec_str(&f, &s), FY_OK);
    assert_int_equal(s.len, 0);
    fy_buf_free(&b);
}

static void test_wire_response_ok_and_error(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_response resp;
    fy_w_send_result in = {3, 0x1122334455667788ull, 1700000000999ull, {0}}, out;
    fy_frame f;
    fy_rd r;
    size_t start;

    /* OK with a SEND answer body. */
    fy_msgid_make(in.msgid, 1, 2, 3, in.offset);
    start = fy_wire_ok_begin(&b, 40);
    fy_buf_put_u16(&b, 1);
    fy_wire_put_send_result(&b, &in);
    fy_wire_frame_end(&b, start);
    parse_whole(&b, FY_W_RESPONSE, 0, 40, &f);
    assert_int_equal(fy_wire_dec_response(&f, &resp), FY_OK);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.message.len, 0);
    assert_int_equal(resp.body.len, 2 + FY_WIRE_SEND_RESULT_LEN);
    r = fy_rd_make(resp.body.p, resp.body.len);
    assert_int_equal(fy_rd_u16(&r), 1);
    fy_wire_get_send_result(&r, &out);
    assert_false(r.bad);
    assert_int_equal(r.left, 0);
    assert_int_equal(out.queue_id, 3);
    assert_int_equal(out.offset, in.offset);
    assert_int_equal(out.store_ms, in.store_ms);
    assert_memory_equal(out.msgid, in.msgid, FY_MSGID_LEN);
    fy_wire_get_send_result(&r, &out); /* short: sets bad */
    assert_true(r.bad);

    /* OK with an empty body. */
    fy_buf_reset(&b);
    fy_wire_frame_end(&b, fy_wire_ok_begin(&b, 41));
    parse_whole(&b, FY_W_RESPONSE, 0, 41, &f);
    assert_int_equal(fy_wire_dec_response(&f, &resp), FY_OK);
    assert_int_equal(resp.status, 0);
    assert_int_equal(resp.body.len, 0);

    /* Error: status and message, no body; a negated code is accepted. */
    fy_buf_reset(&b);
    fy_wire_enc_error(&b, 42, -FY_ETOOBIG, "message too large");
    fy_wire_enc_error(&b, 43, FY_EBADNAME, NULL);
    assert_int_equal(fy_wire_frame_parse(b.data, b.len, FY_WIRE_DEFAULT_MAX_FRAME, &f),
                     FY_WIRE_HEADER_LEN + 2 + 2 + 17);
    assert_int_equal(f.id, 42);
    assert_int_equal(fy_wire_dec_response(&f, &resp), FY_OK);
    assert_int_equal(resp.status, FY_ETOOBIG);
    assert_slice_str(resp.message, "message too large");
    assert_int_equal(resp.body.len, 0);
    long first = FY_WIRE_HEADER_LEN + 2 + 2 + 17;
    assert_int_equal(
        fy_wire_frame_parse(b.data + first, b.len - first, FY_WIRE_DEFAULT_MAX_FRAME, &f),
        FY_WIRE_HEADER_LEN + 4);
    assert_int_equal(fy_wire_dec_response(&f, &resp), FY_OK);
    assert_int_equal(resp.status, FY_EBADNAME);
    assert_int_equal(resp.message.len, 0);
    fy_buf_free(&b);
}

static void test_wire_response_rejects_malformed(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_response resp;
    fy_frame f;
    size_t start;

    /* OK with a message. */
    start = fy_wire_frame_begin(&b, FY_W_RESPONSE, 0, 1);
    fy_buf_put_u16(&b, 0);
    fy_wire_put_str(&b, "hi");
    fy_wire_frame_end(&b, start);
    parse_whole(&b, FY_W_RESPONSE, 0, 1, &f);
    assert_int_equal(fy_wire_dec_response(&f, &resp), -FY_EPROTO);

    /* Error with a body (trailing bytes). */
    fy_buf_reset(&b);
    fy_wire_enc_error(&b, 2, FY_EINVAL, "bad");
    fy_buf_put_u8(&b, 0);
    fy_wire_frame_end(&b, 0);
    parse_whole(&b, FY_W_RESPONSE, 0, 2, &f);
    assert_int_equal(fy_wire_dec_response(&f, &resp), -FY_EPROTO);

    /* Too short for a status and a message. */
    for (size_t n = 0; n < 4; n++) {
        fy_buf_reset(&b);
        fy_wire_frame_end(&b, fy_wire_ok_begin(&b, 3));
        parse_whole(&b, FY_W_RESPONSE, 0, 3, &f);
        assert_int_equal(dec_resized(dec_error_response, &f, n, 0), -FY_EPROTO);
    }
    fy_buf_free(&b);
}

/* ---- Frame splitting ----------------------------------------------------------------------- */

static void test_wire_frame_parse_every_prefix(void **state)
{
    sample s[NSAMPLES];
    fy_frame f;

    build_samples(s);
    for (int i = 0; i < NSAMPLES; i++) {
        const fy_buf *b = &s[i].buf;
        for (size_t n = 0; n < b->len; n++) {
            uint8_t *copy = malloc(n ? n : 1);
            assert_non_null(copy);
            memcpy(copy, b->data, n);
            if (fy_wire_frame_parse(copy, n, FY_WIRE_DEFAULT_MAX_FRAME, &f) != 0) {
                fail_msg("%s: prefix of %zu bytes did not ask for more", s[i].name, n);
            }
            free(copy);
        }
        assert_int_equal(fy_wire_frame_parse(b->data, b->len, FY_WIRE_DEFAULT_MAX_FRAME, &f),
                         (long)b->len);
    }
    free_samples(s);
}

static void test_wire_frame_parse_back_to_back(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_credit c = {1, 2};
    fy_frame f;
    long n1, n2;

    fy_wire_enc_simple(&b, FY_W_PING, 1, NULL);
    fy_wire_enc_credit(&b, 2, 0, &c);
    fy_buf_put_u8(&b, 0); /* the start of a third frame */

    n1 = fy_wire_frame_parse(b.data, b.len, FY_WIRE_DEFAULT_MAX_FRAME, &f);
    assert_int_equal(n1, FY_WIRE_HEADER_LEN);
    assert_int_equal(f.type, FY_W_PING);
    assert_int_equal(f.id, 1);
    n2 = fy_wire_frame_parse(b.data + n1, b.len - (size_t)n1, FY_WIRE_DEFAULT_MAX_FRAME, &f);
    assert_int_equal(n2, FY_WIRE_HEADER_LEN + 8);
    assert_int_equal(f.type, FY_W_CREDIT);
    assert_int_equal(f.id, 2);
    assert_int_equal(fy_wire_dec_credit(&f, &c), FY_OK);
    assert_int_equal(c.sub_id, 1);
    assert_int_equal(c.credit, 2);
    assert_int_equal(fy_wire_frame_parse(b.data + n1 + n2, b.len - (size_t)(n1 + n2),
                                         FY_WIRE_DEFAULT_MAX_FRAME, &f),
                     0);
    fy_buf_free(&b);
}

static void test_wire_frame_parse_length_limits(void **state)
{
    uint8_t hdr[FY_WIRE_HEADER_LEN + 100] = {0};
    fy_frame f;

    /* Below the minimum: the length cannot even hold type, flags and id. */
    for (uint32_t len = 0; len < FY_WIRE_MIN_FRAME; len++) {
        fy_be32_put(hdr, len);
        assert_int_equal(fy_wire_frame_parse(hdr, 4, 100, &f), -FY_EPROTO);
        assert_int_equal(fy_wire_frame_parse(hdr, sizeof(hdr), 100, &f), -FY_EPROTO);
    }
    /* The minimum and max_frame itself are fine. */
    fy_be32_put(hdr, FY_WIRE_MIN_FRAME);
    assert_int_equal(fy_wire_frame_parse(hdr, sizeof(hdr), 100, &f), FY_WIRE_HEADER_LEN);
    assert_int_equal(f.payload.len, 0);
    fy_be32_put(hdr, 100);
    assert_int_equal(fy_wire_frame_parse(hdr, sizeof(hdr), 100, &f), 104);
    assert_int_equal(fy_wire_frame_parse(hdr, 103, 100, &f), 0);
    /* Over max_frame: refused as soon as the length is readable. */
    fy_be32_put(hdr, 101);
    assert_int_equal(fy_wire_frame_parse(hdr, 4, 100, &f), -FY_ETOOBIG);
    assert_int_equal(fy_wire_frame_parse(hdr, sizeof(hdr), 100, &f), -FY_ETOOBIG);
    fy_be32_put(hdr, UINT32_MAX);
    assert_int_equal(fy_wire_frame_parse(hdr, 4, FY_WIRE_DEFAULT_MAX_FRAME, &f), -FY_ETOOBIG);
    fy_be32_put(hdr, FY_WIRE_DEFAULT_MAX_FRAME + 1);
    assert_int_equal(fy_wire_frame_parse(hdr, 4, FY_WIRE_DEFAULT_MAX_FRAME, &f), -FY_ETOOBIG);
    /* Fewer than 4 bytes: more needed, whatever they are. */
    memset(hdr, 0, 4);
    for (size_t n = 0; n < 4; n++) {
        assert_int_equal(fy_wire_frame_parse(hdr, n, 100, &f), 0);
    }
}

static void test_wire_long_string_is_cut(void **state)
{
    size_t big = 70000;
    char *s = malloc(big + 1);
    fy_buf b = FY_BUF_INIT;
    fy_frame f;
    fy_slice out;

    assert_non_null(s);
    memset(s, 'x', big);
    s[big] = '\0';
    fy_wire_enc_simple(&b, FY_W_GROUP_DESCRIBE, 1, s);
    parse_whole(&b, FY_W_GROUP_DESCRIBE, 0, 1, &f);
    assert_int_equal(fy_wire_dec_str(&f, &out), FY_OK);
    assert_int_equal(out.len, UINT16_MAX);
    free(s);
    fy_buf_free(&b);
}

/* ---- Malformed payloads -------------------------------------------------------------------- */

static void test_wire_decoders_reject_truncation_and_trailing(void **state)
{
    sample s[NSAMPLES];
    fy_frame f;

    build_samples(s);
    for (int i = 0; i < NSAMPLES; i++) {
        assert_true(
            fy_wire_frame_parse(s[i].buf.data, s[i].buf.len, FY_WIRE_DEFAULT_MAX_FRAME, &f) > 0);
        if (dec_resized(s[i].dec, &f, f.payload.len, 0) != FY_OK) {
            fail_msg("%s: the valid payload does not decode", s[i].name);
        }
        for (size_t n = 0; n < f.payload.len; n++) {
            if (dec_resized(s[i].dec, &f, n, 0) != -FY_EPROTO) {
                fail_msg("%s: a %zu-byte prefix of %zu decoded", s[i].name, n, f.payload.len);
            }
        }
        for (size_t extra = 1; extra <= 3; extra++) {
            if (dec_resized(s[i].dec, &f, f.payload.len + extra, 0) != -FY_EPROTO) {
                fail_msg("%s: %zu trailing bytes accepted", s[i].name, extra);
            }
        }
    }
    free_samples(s);
}

/* Patches payload byte `off` of the first frame in b to v and returns the decoder's result. */
static int dec_patched(fy_buf *b, size_t off, uint8_t v, dec_fn dec)
{
    static uint8_t m[sizeof(fy_w_send)];
    fy_frame f;
    uint8_t old = b->data[FY_WIRE_HEADER_LEN + off];
    int rc;

    b->data[FY_WIRE_HEADER_LEN + off] = v;
    assert_true(fy_wire_frame_parse(b->data, b->len, FY_WIRE_DEFAULT_MAX_FRAME, &f) > 0);
    rc = dec(&f, m);
    b->data[FY_WIRE_HEADER_LEN + off] = old;
    return rc;
}

static void test_wire_decoders_reject_bad_enums(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_subscribe sub = {1, fy_slice_str("g"), fy_slice_str("t"), fy_slice_str(""), 0, 0, 0, 10, 0,
                          0};
    fy_w_ack ack = {.sub_id = 1, .how = 0, .n = 1, .ids = {5}};
    /* SUBSCRIBE: u32 sub_id, str g (3), str t (3), str "" (2), then mode and start. */
    size_t mode_off = 4 + 3 + 3 + 2, start_off = mode_off + 1;

    fy_wire_enc_subscribe(&b, 1, &sub);
    assert_int_equal(dec_patched(&b, mode_off, FY_SUB_BROADCAST, dec_subscribe), FY_OK);
    assert_int_equal(dec_patched(&b, mode_off, 2, dec_subscribe), -FY_EPROTO);
    assert_int_equal(dec_patched(&b, mode_off, 0xff, dec_subscribe), -FY_EPROTO);
    assert_int_equal(dec_patched(&b, start_off, FY_START_TIME, dec_subscribe), FY_OK);
    assert_int_equal(dec_patched(&b, start_off, 3, dec_subscribe), -FY_EPROTO);
    assert_int_equal(dec_patched(&b, start_off, 0x80, dec_subscribe), -FY_EPROTO);
    /* ... then u64 start_ms, u32 credit and the filter type (0..1). */
    size_t ftype_off = start_off + 1 + 8 + 4;
    assert_int_equal(dec_patched(&b, ftype_off, FY_FILTER_SQL92, dec_subscribe), FY_OK);
    assert_int_equal(dec_patched(&b, ftype_off, 2, dec_subscribe), -FY_EPROTO);
    assert_int_equal(dec_patched(&b, ftype_off + 1, FY_SUB_F_ORDERLY, dec_subscribe), FY_OK);
    assert_int_equal(dec_patched(&b, ftype_off + 1, 0x02, dec_subscribe), -FY_EPROTO);

    /* NACK how 0..2; ACK's reserved byte must be 0. */
    fy_buf_reset(&b);
    fy_wire_enc_ack(&b, FY_W_NACK, 1, 0, &ack);
    for (unsigned how = 0; how <= FY_NACK_REJECT; how++) {
        assert_int_equal(dec_patched(&b, 4, (uint8_t)how, dec_ack), FY_OK);
    }
    assert_int_equal(dec_patched(&b, 4, 3, dec_ack), -FY_EPROTO);
    fy_buf_reset(&b);
    fy_wire_enc_ack(&b, FY_W_ACK, 1, 0, &ack);
    assert_int_equal(dec_patched(&b, 4, 0, dec_ack), FY_OK);
    assert_int_equal(dec_patched(&b, 4, 1, dec_ack), -FY_EPROTO);

    /* dec_ack and dec_topic need a frame of their family: the type decides the layout. */
    b.data[4] = FY_W_CREDIT;
    assert_int_equal(dec_patched(&b, 4, 0, dec_ack), -FY_EPROTO);
    fy_buf_reset(&b);
    fy_wire_enc_simple(&b, FY_W_MSG_GET, 1, "x");
    assert_int_equal(dec_patched(&b, 0, 0, dec_topic), -FY_EPROTO);
    fy_buf_free(&b);
}

/* A SEND or ACK/NACK frame with count n and n well-formed entries (so only the count is wrong). */
static void build_counted(fy_buf *b, uint8_t type, uint32_t n)
{
    size_t start = fy_wire_frame_begin(b, type, 0, 1);

    if (type != FY_W_SEND) {
        fy_buf_put_u32(b, 1);
        fy_buf_put_u8(b, 0);
    }
    fy_buf_put_u16(b, (uint16_t)n);
    for (uint32_t i = 0; i < n; i++) {
        if (type == FY_W_SEND) {
            fy_wire_put_str(b, "");
            fy_buf_put_u32(b, 1);
            fy_buf_put_u8(b, 0xf7);
        } else {
            fy_buf_put_u64(b, i);
        }
    }
    fy_wire_frame_end(b, start);
}

static void test_wire_decoders_reject_bad_counts(void **state)
{
    static const uint8_t types[] = {FY_W_SEND, FY_W_ACK, FY_W_NACK};
    static const uint32_t counts[] = {0, FY_WIRE_MAX_BATCH + 1, UINT16_MAX};
    fy_buf b = FY_BUF_INIT;

    for (size_t t = 0; t < sizeof(types); t++) {
        dec_fn dec = types[t] == FY_W_SEND ? dec_send : dec_ack;
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            fy_buf_reset(&b);
            build_counted(&b, types[t], counts[c]);
            if (dec_patched(&b, 0, b.data[FY_WIRE_HEADER_LEN], dec) != -FY_EPROTO) {
                fail_msg("type 0x%02x: count %u accepted", types[t], (unsigned)counts[c]);
            }
        }
        /* The same shape with a valid count decodes, so the count is what was refused. */
        fy_buf_reset(&b);
        build_counted(&b, types[t], FY_WIRE_MAX_BATCH);
        assert_int_equal(dec_patched(&b, 0, b.data[FY_WIRE_HEADER_LEN], dec), FY_OK);
    }
    fy_buf_free(&b);
}

static void test_wire_decoders_reject_lengths_past_end(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_w_deliver d;
    fy_w_send *s = malloc(sizeof(*s));
    fy_frame f;
    size_t start;

    assert_non_null(s);
    /* A record length one over what is there. */
    fy_wire_enc_deliver(&b, 1, 2, (const uint8_t *)"0123456789abcdef", "abc", 3);
    fy_be32_put(b.data + FY_WIRE_HEADER_LEN + 12 + FY_MSGID_LEN, 4);
    parse_whole(&b, FY_W_DELIVER, 0, 0, &f);
    assert_int_equal(fy_wire_dec_deliver(&f, &d), -FY_EPROTO);
    fy_be32_put(b.data + FY_WIRE_HEADER_LEN + 12 + FY_MSGID_LEN, UINT32_MAX);
    assert_int_equal(fy_wire_dec_deliver(&f, &d), -FY_EPROTO);

    /* A SEND that claims two messages but holds one. */
    fy_buf_reset(&b);
    start = fy_wire_send_begin(&b, 1);
    fy_wire_send_add(&b, "k", "abc", 3);
    fy_wire_send_end(&b, start, 2);
    parse_whole(&b, FY_W_SEND, 0, 1, &f);
    assert_int_equal(fy_wire_dec_send(&f, s), -FY_EPROTO);
    free(s);
    fy_buf_free(&b);
}

/* ---- Message ids --------------------------------------------------------------------------- */

static void test_wire_msgid_round_trip(void **state)
{
    uint8_t id[FY_MSGID_LEN], back[FY_MSGID_LEN];
    char hex[FY_MSGID_HEX_LEN + 1];
    uint16_t broker, queue;
    uint32_t topic;
    uint64_t offset;

    fy_msgid_make(id, 0x0102, 0xa0b0c0d0, 0xfffe, 0x0011223344556677ull);
    static const uint8_t want[FY_MSGID_LEN] = {0x01, 0x02, 0xa0, 0xb0, 0xc0, 0xd0, 0xff, 0xfe,
                                               0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
    assert_memory_equal(id, want, FY_MSGID_LEN);
    fy_msgid_parse(id, &broker, &topic, &queue, &offset);
    assert_int_equal(broker, 0x0102);
    assert_int_equal(topic, 0xa0b0c0d0);
    assert_int_equal(queue, 0xfffe);
    assert_int_equal(offset, 0x0011223344556677ull);

    fy_msgid_to_hex(id, hex);
    assert_string_equal(hex, "0102a0b0c0d0fffe0011223344556677");
    assert_int_equal(fy_msgid_from_hex(hex, strlen(hex), back), FY_OK);
    assert_memory_equal(back, id, FY_MSGID_LEN);
    memset(back, 0, sizeof(back));
    assert_int_equal(fy_msgid_from_hex("0102A0B0C0D0FFFE0011223344556677", 32, back), FY_OK);
    assert_memory_equal(back, id, FY_MSGID_LEN);
    /* A length that is not the string's: only the first 32 characters count. */
    assert_int_equal(fy_msgid_from_hex("0102a0b0c0d0fffe0011223344556677zz", 32, back), FY_OK);
    assert_memory_equal(back, id, FY_MSGID_LEN);
}

static void test_wire_msgid_bad_hex(void **state)
{
    static const char *bad[] = {
        "0102a0b0c0d0fffe001122334455667g", /* not hex */
        "0102a0b0c0d0fffe00112233445566 7", "0102a0b0c0d0fffe00112233445566-7",
        "x102a0b0c0d0fffe0011223344556677", "0102a0b0c0d0fffe0011223344556:77",
        "0102a0b0c0d0fffe0011223344556@77", "0102a0b0c0d0fffe0011223344556G77",
    };
    uint8_t id[FY_MSGID_LEN], keep[FY_MSGID_LEN];
    char nul[FY_MSGID_HEX_LEN] = "0102a0b0c0d0fffe0011223344556677";

    memset(keep, 0x5a, sizeof(keep));
    memcpy(id, keep, sizeof(id));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fy_msgid_from_hex(bad[i], strlen(bad[i]), id), -FY_EINVAL);
    }
    assert_int_equal(fy_msgid_from_hex("0102a0b0c0d0fffe001122334455667", 31, id), -FY_EINVAL);
    assert_int_equal(fy_msgid_from_hex("0102a0b0c0d0fffe00112233445566778", 33, id), -FY_EINVAL);
    assert_int_equal(fy_msgid_from_hex("", 0, id), -FY_EINVAL);
    nul[10] = '\0';
    assert_int_equal(fy_msgid_from_hex(nul, sizeof(nul), id), -FY_EINVAL);
    assert_memory_equal(id, keep, sizeof(id)); /* failures leave id alone */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip_hello),
        cmocka_unit_test(test_wire_round_trip_hello_ok),
        cmocka_unit_test(test_wire_round_trip_topic),
        cmocka_unit_test(test_wire_round_trip_send),
        cmocka_unit_test(test_wire_round_trip_subscribe),
        cmocka_unit_test(test_wire_round_trip_credit_and_unsubscribe),
        cmocka_unit_test(test_wire_round_trip_ack_nack),
        cmocka_unit_test(test_wire_round_trip_deliver),
        cmocka_unit_test(test_wire_round_trip_sub_closed),
        cmocka_unit_test(test_wire_round_trip_group_reset),
        cmocka_unit_test(test_wire_round_trip_group_config),
        cmocka_unit_test(test_wire_round_trip_msg_find),
        cmocka_unit_test(test_wire_msg_find_limit_range),
        cmocka_unit_test(test_wire_round_trip_simple),
        cmocka_unit_test(test_wire_response_ok_and_error),
        cmocka_unit_test(test_wire_response_rejects_malformed),
        cmocka_unit_test(test_wire_frame_parse_every_prefix),
        cmocka_unit_test(test_wire_frame_parse_back_to_back),
        cmocka_unit_test(test_wire_frame_parse_length_limits),
        cmocka_unit_test(test_wire_long_string_is_cut),
        cmocka_unit_test(test_wire_decoders_reject_truncation_and_trailing),
        cmocka_unit_test(test_wire_decoders_reject_bad_enums),
        cmocka_unit_test(test_wire_decoders_reject_bad_counts),
        cmocka_unit_test(test_wire_decoders_reject_lengths_past_end),
        cmocka_unit_test(test_wire_round_trip_tx),
        cmocka_unit_test(test_wire_msgid_round_trip),
        cmocka_unit_test(test_wire_msgid_bad_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
