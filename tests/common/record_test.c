/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the message record codec: the exact version 1 byte layout, round trips of full
 * and minimal records, the limits encode refuses, every kind of malformed input decode
 * rejects (each decode runs on an exactly-sized heap copy so ASan sees any over-read), the
 * in-place location patch, and the key and property iterators. */
#include "common/buf.h"
#include "common/record.h"

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

/* Decodes a heap copy of exactly n bytes, so any read past the end is an ASan error. */
static int decode_exact(const uint8_t *p, size_t n, fy_record_view *v, uint8_t **copy)
{
    *copy = malloc(n ? n : 1);
    assert_non_null(*copy);
    if (n > 0) {
        memcpy(*copy, p, n);
    }
    return fy_record_decode(*copy, n, v);
}

/* Decodes a copy and frees it: for tests that only look at the return code. */
static int decode_rc(const uint8_t *p, size_t n)
{
    fy_record_view v;
    uint8_t *copy;
    int rc = decode_exact(p, n, &v, &copy);
    free(copy);
    return rc;
}

static void assert_slice(fy_slice s, const void *p, size_t len)
{
    assert_int_equal(s.len, len);
    if (len > 0) {
        assert_non_null(s.p);
        assert_memory_equal(s.p, p, len);
    }
}

static fy_slice slice(const void *p, size_t len)
{
    fy_slice s = {p, len};
    return s;
}

/* Builds a version-1 record by hand, field by field, so tests can break one field at a time. */
typedef struct raw {
    uint8_t magic;
    uint8_t version;
    uint32_t body_len;
    uint16_t topic_len;
    const char *topic;
    uint16_t nkeys;
    uint16_t key_len; /* every key is key_len bytes of 'k' */
    uint16_t nprops;
    uint16_t name_len; /* every property is name_len bytes of 'n' and value "vv" */
    const char *body;  /* body_len bytes */
} raw;

static raw raw_valid(void)
{
    raw r = {FY_RECORD_MAGIC, FY_RECORD_VERSION, 3, 5, "topic", 2, 1, 2, 4, "xyz"};
    return r;
}

static void raw_build(const raw *r, fy_buf *b)
{
    fy_buf_reset(b);
    fy_buf_put_u8(b, r->magic);
    fy_buf_put_u8(b, r->version);
    fy_buf_put_u16(b, 0);
    fy_buf_put_u32(b, 1);
    fy_buf_put_u64(b, 2);
    fy_buf_put_u64(b, 3);
    fy_buf_put_u64(b, 4);
    fy_buf_put_u32(b, 5);
    fy_buf_put_u32(b, r->body_len);
    fy_buf_put_u16(b, r->topic_len);
    fy_buf_append(b, r->topic, r->topic_len);
    fy_buf_put_u16(b, 0); /* tag */
    fy_buf_put_u16(b, 0); /* born host */
    fy_buf_put_u16(b, r->nkeys);
    for (int i = 0; i < r->nkeys; i++) {
        fy_buf_put_u16(b, r->key_len);
        for (int j = 0; j < r->key_len; j++) {
            fy_buf_put_u8(b, 'k');
        }
    }
    fy_buf_put_u16(b, r->nprops);
    for (int i = 0; i < r->nprops; i++) {
        fy_buf_put_u16(b, r->name_len);
        for (int j = 0; j < r->name_len; j++) {
            fy_buf_put_u8(b, 'n');
        }
        fy_buf_put_u32(b, 2);
        fy_buf_append(b, "vv", 2);
    }
    fy_buf_append(b, r->body, strlen(r->body));
}

/* A record that uses every field: three keys (one of the maximum length), four properties
 * (an empty value, a binary value, a long value), a binary body with NULs, unknown flag bits. */
typedef struct full {
    uint8_t *long_key;
    uint8_t *long_value;
    uint8_t *body;
    fy_slice keys[3];
    fy_slice props[8];
    fy_record r;
} full;

#define FULL_LONG_VALUE 70000
#define FULL_BODY 100000

static void full_init(full *f)
{
    static const uint8_t bin[] = {0x00, 0x01, 0x00, 0xff};

    memset(f, 0, sizeof(*f));
    f->long_key = malloc(FY_RECORD_MAX_NAME);
    f->long_value = malloc(FULL_LONG_VALUE);
    f->body = malloc(FULL_BODY);
    assert_non_null(f->long_key);
    assert_non_null(f->long_value);
    assert_non_null(f->body);
    for (size_t i = 0; i < FY_RECORD_MAX_NAME; i++) {
        f->long_key[i] = (uint8_t)('a' + i % 26);
    }
    for (size_t i = 0; i < FULL_LONG_VALUE; i++) {
        f->long_value[i] = (uint8_t)(i * 7);
    }
    for (size_t i = 0; i < FULL_BODY; i++) {
        f->body[i] = (uint8_t)(i % 3 == 0 ? 0 : i * 31); /* NULs throughout */
    }
    f->keys[0] = fy_slice_str("order-1");
    f->keys[1] = slice(f->long_key, FY_RECORD_MAX_NAME);
    f->keys[2] = fy_slice_str("k");
    f->props[0] = fy_slice_str("content-type");
    f->props[1] = fy_slice_str("application/json");
    f->props[2] = fy_slice_str("empty");
    f->props[3] = fy_slice_str("");
    f->props[4] = fy_slice_str("bin");
    f->props[5] = slice(bin, sizeof(bin));
    f->props[6] = fy_slice_str("long");
    f->props[7] = slice(f->long_value, FULL_LONG_VALUE);

    f->r.flags = FY_RECORD_F_DELAYED | FY_RECORD_F_RETRY | 0x8000u;
    f->r.queue_id = 0xA1B2C3D4u;
    f->r.queue_offset = 0x0102030405060708ull;
    f->r.born_ms = 1764014221123ull;
    f->r.store_ms = 0xF0E0D0C0B0A09080ull;
    f->r.reconsume = 0x7FFFFFFEu;
    f->r.topic = fy_slice_str("orders.eu-west");
    f->r.tag = fy_slice_str("TagA||TagB");
    f->r.born_host = fy_slice_str("10.1.2.3:41234");
    f->r.keys = f->keys;
    f->r.nkeys = 3;
    f->r.props = f->props;
    f->r.nprops = 4;
    f->r.body = slice(f->body, FULL_BODY);
}

static void full_free(full *f)
{
    free(f->long_key);
    free(f->long_value);
    free(f->body);
}

/* Checks that v holds exactly the fields of r, keys and properties in order. */
static void assert_view_is(const fy_record_view *v, const fy_record *r)
{
    fy_record_iter it;
    fy_slice a, b;

    assert_int_equal(v->version, FY_RECORD_VERSION);
    assert_int_equal(v->flags, r->flags);
    assert_int_equal(v->queue_id, r->queue_id);
    assert_int_equal(v->queue_offset, r->queue_offset);
    assert_int_equal(v->born_ms, r->born_ms);
    assert_int_equal(v->store_ms, r->store_ms);
    assert_int_equal(v->reconsume, r->reconsume);
    assert_slice(v->topic, r->topic.p, r->topic.len);
    assert_slice(v->tag, r->tag.p, r->tag.len);
    assert_slice(v->born_host, r->born_host.p, r->born_host.len);
    assert_slice(v->body, r->body.p, r->body.len);
    assert_int_equal(v->nkeys, r->nkeys);
    assert_int_equal(v->nprops, r->nprops);

    it = fy_record_keys(v);
    for (size_t i = 0; i < r->nkeys; i++) {
        assert_true(fy_record_key_next(&it, &a));
        assert_slice(a, r->keys[i].p, r->keys[i].len);
    }
    assert_false(fy_record_key_next(&it, &a));
    assert_false(fy_record_key_next(&it, &a)); /* stays at the end */

    it = fy_record_props(v);
    for (size_t i = 0; i < r->nprops; i++) {
        assert_true(fy_record_prop_next(&it, &a, &b));
        assert_slice(a, r->props[2 * i].p, r->props[2 * i].len);
        assert_slice(b, r->props[2 * i + 1].p, r->props[2 * i + 1].len);
    }
    assert_false(fy_record_prop_next(&it, &a, &b));
}

/* The encoding of a small record, byte by byte, as documented in common/record.h. */
static void test_record_layout_matches_header(void **state)
{
    static const uint8_t want[] = {
        0xF7, 0x01,                                                           /* magic, version */
        0x80, 0x05,                                                           /* flags */
        0x11, 0x22, 0x33, 0x44,                                               /* queue id */
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,                       /* queue offset */
        0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80,                       /* born ms */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02,                       /* store ms */
        0x00, 0x00, 0x00, 0x09,                                               /* reconsume */
        0x00, 0x00, 0x00, 0x02,                                               /* body length */
        0x00, 0x01, 't',                                                      /* topic */
        0x00, 0x02, 'g',  'g',                                                /* tag */
        0x00, 0x00,                                                           /* born host */
        0x00, 0x02, 0x00, 0x01, 'a',  0x00, 0x02, 'b',  'c',                  /* keys */
        0x00, 0x01, 0x00, 0x01, 'p',  0x00, 0x00, 0x00, 0x03, 'v', 0x00, 'w', /* props */
        'B',  0x00,                                                           /* body */
    };
    fy_slice keys[] = {fy_slice_str("a"), fy_slice_str("bc")};
    fy_slice props[] = {fy_slice_str("p"), slice("v\0w", 3)};
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;

    r.flags = 0x8005;
    r.queue_id = 0x11223344;
    r.queue_offset = 0x0102030405060708ull;
    r.born_ms = 0x1020304050607080ull;
    r.store_ms = 0x0102;
    r.reconsume = 9;
    r.topic = fy_slice_str("t");
    r.tag = fy_slice_str("gg");
    r.keys = keys;
    r.nkeys = 2;
    r.props = props;
    r.nprops = 1;
    r.body = slice("B\0", 2);

    assert_int_equal(fy_record_size(&r), sizeof(want));
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    fy_buf_free(&out);
}

static void test_record_round_trip_full(void **state)
{
    full f;
    fy_buf out = FY_BUF_INIT;
    fy_record_view v;
    uint8_t *copy;

    full_init(&f);
    assert_int_equal(fy_record_encode(&f.r, &out), FY_OK);
    assert_int_equal(decode_exact(out.data, out.len, &v, &copy), FY_OK);
    assert_view_is(&v, &f.r);
    /* The view points into the decoded bytes, not into the encoder's inputs. */
    assert_true(v.topic.p >= copy && v.topic.p < copy + out.len);
    assert_true(v.body.p + v.body.len == copy + out.len);
    free(copy);
    fy_buf_free(&out);
    full_free(&f);
}

static void test_record_round_trip_minimal(void **state)
{
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;
    fy_record_view v;
    fy_record_iter it;
    fy_slice a, b;
    uint8_t *copy;

    r.topic = fy_slice_str("t");
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    /* header + topic (2 + 1) + empty tag, empty host, no keys, no properties (2 each) */
    assert_int_equal(out.len, FY_RECORD_HEADER_LEN + 3 + 2 + 2 + 2 + 2);
    assert_int_equal(decode_exact(out.data, out.len, &v, &copy), FY_OK);
    assert_view_is(&v, &r);
    assert_int_equal(v.flags, 0);
    assert_int_equal(v.tag.len, 0);
    assert_int_equal(v.born_host.len, 0);
    assert_int_equal(v.body.len, 0);
    it = fy_record_keys(&v);
    assert_false(fy_record_key_next(&it, &a));
    it = fy_record_props(&v);
    assert_false(fy_record_prop_next(&it, &a, &b));
    assert_false(fy_record_prop_get(&v, "x", &a));
    free(copy);
    fy_buf_free(&out);
}

/* fy_record_size is exactly what encode appends, also behind bytes already in the buffer. */
static void test_record_size_matches_encoding(void **state)
{
    full f;
    fy_record minimal = {0};
    fy_buf out = FY_BUF_INIT;
    size_t before, n;

    full_init(&f);
    minimal.topic = fy_slice_str("t");
    fy_buf_append(&out, "prefix", 6);

    before = out.len;
    n = fy_record_size(&f.r);
    assert_true(n > FY_RECORD_HEADER_LEN + FULL_BODY + FULL_LONG_VALUE + FY_RECORD_MAX_NAME);
    assert_int_equal(fy_record_encode(&f.r, &out), FY_OK);
    assert_int_equal(out.len - before, n);
    assert_memory_equal(out.data, "prefix", 6);
    assert_int_equal(decode_rc(out.data + before, n), FY_OK);

    before = out.len;
    n = fy_record_size(&minimal);
    assert_int_equal(fy_record_encode(&minimal, &out), FY_OK);
    assert_int_equal(out.len - before, n);
    assert_int_equal(decode_rc(out.data + before, n), FY_OK);

    fy_buf_free(&out);
    full_free(&f);
}

/* r must be refused by both size and encode, and the buffer must keep its bytes. */
static void assert_encode_refused(const fy_record *r)
{
    fy_buf out = FY_BUF_INIT;

    fy_buf_append(&out, "keep", 4);
    assert_int_equal(fy_record_size(r), 0);
    assert_int_equal(fy_record_encode(r, &out), -FY_EINVAL);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "keep", 4);
    fy_buf_free(&out);
}

static void test_record_encode_refuses_limit_breaks(void **state)
{
    uint8_t *big = calloc(1, FY_RECORD_MAX_NAME + 1);
    fy_slice at_limit = slice(big, FY_RECORD_MAX_NAME);
    fy_slice over = slice(big, FY_RECORD_MAX_NAME + 1);
    fy_slice keys[2], props[2];
    fy_record ok = {0}, r;
    fy_buf out = FY_BUF_INIT;

    assert_non_null(big);
    ok.topic = fy_slice_str("t");

    /* Every name exactly at the limit is accepted: the checks below are not vacuous. */
    r = ok;
    r.topic = at_limit;
    r.tag = at_limit;
    r.born_host = at_limit;
    keys[0] = at_limit;
    props[0] = at_limit;
    props[1] = fy_slice_str("");
    r.keys = keys;
    r.nkeys = 1;
    r.props = props;
    r.nprops = 1;
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(decode_rc(out.data, out.len), FY_OK);
    fy_buf_free(&out);

    r = ok;
    r.topic = fy_slice_str("");
    assert_encode_refused(&r);
    r = ok;
    r.topic = over;
    assert_encode_refused(&r);
    r = ok;
    r.tag = over;
    assert_encode_refused(&r);
    r = ok;
    r.born_host = over;
    assert_encode_refused(&r);

    r = ok;
    keys[0] = fy_slice_str("fine");
    keys[1] = fy_slice_str("");
    r.keys = keys;
    r.nkeys = 2;
    assert_encode_refused(&r);
    keys[1] = over;
    assert_encode_refused(&r);

    r = ok;
    props[0] = fy_slice_str("");
    props[1] = fy_slice_str("v");
    r.props = props;
    r.nprops = 1;
    assert_encode_refused(&r);
    props[0] = over;
    assert_encode_refused(&r);

    /* Counts with no array, and bytes with no pointer. */
    r = ok;
    r.nkeys = 1;
    assert_encode_refused(&r);
    r = ok;
    r.nprops = 1;
    assert_encode_refused(&r);
    r = ok;
    r.body = slice(NULL, 1);
    assert_encode_refused(&r);
    r = ok;
    r.body = slice(big, (size_t)FY_RECORD_MAX_BODY + 1); /* refused before any byte is read */
    assert_encode_refused(&r);

    free(big);
}

/* Every proper prefix of a valid record is refused as corrupt. */
static void test_record_decode_rejects_every_truncation(void **state)
{
    fy_slice keys[] = {fy_slice_str("k1"), fy_slice_str("key-2")};
    fy_slice props[] = {fy_slice_str("a"), fy_slice_str("1"),   fy_slice_str("e"),
                        fy_slice_str(""),  fy_slice_str("bin"), slice("\0\0", 2)};
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;

    r.topic = fy_slice_str("orders");
    r.tag = fy_slice_str("tag");
    r.born_host = fy_slice_str("host");
    r.keys = keys;
    r.nkeys = 2;
    r.props = props;
    r.nprops = 3;
    r.body = slice("body\0body", 9);
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(decode_rc(out.data, out.len), FY_OK);
    for (size_t n = 0; n < out.len; n++) {
        if (decode_rc(out.data, n) != -FY_ECORRUPT) {
            fail_msg("prefix of %zu of %zu bytes was not refused", n, out.len);
        }
    }
    fy_buf_free(&out);
}

static void test_record_decode_rejects_trailing_byte(void **state)
{
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;

    r.topic = fy_slice_str("t");
    r.body = fy_slice_str("body");
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(decode_rc(out.data, out.len), FY_OK);
    fy_buf_put_u8(&out, 0);
    assert_int_equal(decode_rc(out.data, out.len), -FY_ECORRUPT);
    fy_buf_free(&out);
}

static void test_record_decode_rejects_bad_magic(void **state)
{
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;

    r.topic = fy_slice_str("t");
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    out.data[0] = 0xF6;
    assert_int_equal(decode_rc(out.data, out.len), -FY_ECORRUPT);
    out.data[0] = 0x00;
    assert_int_equal(decode_rc(out.data, out.len), -FY_ECORRUPT);
    fy_buf_free(&out);
}

static void test_record_decode_rejects_unknown_version(void **state)
{
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;

    r.topic = fy_slice_str("t");
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    out.data[1] = 2;
    assert_int_equal(decode_rc(out.data, out.len), -FY_EVERSION);
    out.data[1] = 0;
    assert_int_equal(decode_rc(out.data, out.len), -FY_EVERSION);
    /* A bad magic is corruption whatever the version says. */
    out.data[0] = 0x00;
    out.data[1] = 2;
    assert_int_equal(decode_rc(out.data, out.len), -FY_ECORRUPT);
    fy_buf_free(&out);
}

/* Each length or count field, one at a time, made to point past the end. */
static void test_record_decode_rejects_length_past_end(void **state)
{
    fy_buf b = FY_BUF_INIT;
    raw r;

    r = raw_valid();
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), FY_OK);

    r = raw_valid();
    r.body_len = 4; /* one more than there is */
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    r.body_len = 0xFFFFFFFFu;
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    r.body_len = 2; /* one byte of the body left over */
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    raw_build(&r, &b);
    fy_be16_put(b.data + FY_RECORD_HEADER_LEN, 0xFFFF); /* topic length */
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    raw_build(&r, &b);
    fy_be16_put(b.data + FY_RECORD_HEADER_LEN + 2 + 5, 200); /* tag length */
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    /* Counts that do not fit the bytes that follow. */
    r = raw_valid();
    raw_build(&r, &b);
    fy_be16_put(b.data + FY_RECORD_HEADER_LEN + 2 + 5 + 2 + 2, 3); /* key count */
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);
    fy_be16_put(b.data + FY_RECORD_HEADER_LEN + 2 + 5 + 2 + 2, 0xFFFF);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    raw_build(&r, &b);
    size_t props_at = FY_RECORD_HEADER_LEN + 2 + 5 + 2 + 2 + 2 + 2 * (2 + 1);
    assert_int_equal(fy_be16_get(b.data + props_at), 2);
    fy_be16_put(b.data + props_at, 0xFFFF); /* property count */
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    raw_build(&r, &b);
    fy_be32_put(b.data + props_at + 2 + 2 + 4, 0xFFFFFFFFu); /* first property value length */
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);
    fy_be32_put(b.data + props_at + 2 + 2 + 4, 3); /* runs into the next property */
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    fy_buf_free(&b);
}

static void test_record_decode_rejects_empty_names(void **state)
{
    fy_buf b = FY_BUF_INIT;
    raw r;

    r = raw_valid();
    r.topic_len = 0;
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    r.key_len = 0;
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    r = raw_valid();
    r.name_len = 0;
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), -FY_ECORRUPT);

    /* No keys and no properties at all is fine: it is only empty names that are refused. */
    r = raw_valid();
    r.nkeys = 0;
    r.key_len = 0;
    r.nprops = 0;
    r.name_len = 0;
    raw_build(&r, &b);
    assert_int_equal(decode_rc(b.data, b.len), FY_OK);

    fy_buf_free(&b);
}

static void test_record_set_location_and_peek(void **state)
{
    full f;
    fy_buf out = FY_BUF_INIT;
    fy_record_view v;
    uint8_t *copy;
    uint64_t ms = 0;

    full_init(&f);
    assert_int_equal(fy_record_encode(&f.r, &out), FY_OK);
    assert_int_equal(fy_record_peek_store_ms(out.data, out.len, &ms), FY_OK);
    assert_int_equal(ms, f.r.store_ms);

    assert_int_equal(fy_record_set_location(out.data, out.len, 0x0BADF00Du, 0x1122334455667788ull,
                                            1764014221999ull),
                     FY_OK);
    assert_int_equal(fy_record_peek_store_ms(out.data, out.len, &ms), FY_OK);
    assert_int_equal(ms, 1764014221999ull);

    /* Only the three location fields changed. */
    f.r.queue_id = 0x0BADF00Du;
    f.r.queue_offset = 0x1122334455667788ull;
    f.r.store_ms = 1764014221999ull;
    assert_int_equal(decode_exact(out.data, out.len, &v, &copy), FY_OK);
    assert_view_is(&v, &f.r);
    free(copy);

    /* peek needs only the header */
    assert_int_equal(fy_record_peek_store_ms(out.data, FY_RECORD_HEADER_LEN, &ms), FY_OK);
    assert_int_equal(ms, 1764014221999ull);
    fy_buf_free(&out);
    full_free(&f);
}

static void test_record_set_location_and_peek_refuse_non_records(void **state)
{
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;
    uint8_t *copy;
    uint64_t ms = 77;

    r.topic = fy_slice_str("t");
    r.store_ms = 5;
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);

    /* Too short: a heap copy of exactly HEADER_LEN - 1 bytes, left untouched. */
    copy = malloc(FY_RECORD_HEADER_LEN - 1);
    assert_non_null(copy);
    memcpy(copy, out.data, FY_RECORD_HEADER_LEN - 1);
    assert_int_equal(fy_record_peek_store_ms(copy, FY_RECORD_HEADER_LEN - 1, &ms), -FY_ECORRUPT);
    assert_int_equal(fy_record_set_location(copy, FY_RECORD_HEADER_LEN - 1, 1, 2, 3), -FY_ECORRUPT);
    assert_memory_equal(copy, out.data, FY_RECORD_HEADER_LEN - 1);
    free(copy);
    assert_int_equal(ms, 77);

    out.data[0] = 0x00; /* not a record */
    assert_int_equal(fy_record_peek_store_ms(out.data, out.len, &ms), -FY_ECORRUPT);
    assert_int_equal(fy_record_set_location(out.data, out.len, 1, 2, 3), -FY_ECORRUPT);
    assert_int_equal(fy_be64_get(out.data + FY_RECORD_OFF_STORE_MS), 5);
    assert_int_equal(ms, 77);
    fy_buf_free(&out);
}

static void test_record_prop_get(void **state)
{
    fy_slice props[] = {fy_slice_str("name"), fy_slice_str("first"), fy_slice_str("empty"),
                        fy_slice_str(""),     fy_slice_str("name"),  fy_slice_str("second"),
                        fy_slice_str("bin"),  slice("\0x\0", 3)};
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;
    fy_record_view v;
    fy_slice val;
    uint8_t *copy;

    r.topic = fy_slice_str("t");
    r.props = props;
    r.nprops = 4;
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(decode_exact(out.data, out.len, &v, &copy), FY_OK);

    assert_true(fy_record_prop_get(&v, "name", &val));
    assert_slice(val, "first", 5); /* the first of two */
    val = slice("sentinel", 8);
    assert_true(fy_record_prop_get(&v, "empty", &val));
    assert_int_equal(val.len, 0);
    assert_true(fy_record_prop_get(&v, "bin", &val));
    assert_slice(val, "\0x\0", 3);

    val = slice("sentinel", 8);
    assert_false(fy_record_prop_get(&v, "nam", &val)); /* a prefix is not a match */
    assert_false(fy_record_prop_get(&v, "names", &val));
    assert_false(fy_record_prop_get(&v, "absent", &val));
    assert_false(fy_record_prop_get(&v, "", &val));
    assert_slice(val, "sentinel", 8); /* untouched when not found */
    free(copy);
    fy_buf_free(&out);
}

/* Many keys and properties come back in encoded order, then the iterators stop. */
static void test_record_iterators_yield_in_order(void **state)
{
    enum { N = 300 };
    static char names[N][8], values[N][8];
    fy_slice keys[N], props[2 * N];
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;
    fy_record_view v;
    fy_record_iter it;
    fy_slice a, b;
    uint8_t *copy;
    size_t i;

    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "k%03zu", i);
        snprintf(values[i], sizeof(values[i]), "v%zu", i * 7);
        keys[i] = fy_slice_str(names[i]);
        props[2 * i] = fy_slice_str(names[i]);
        props[2 * i + 1] = fy_slice_str(values[i]);
    }
    r.topic = fy_slice_str("t");
    r.keys = keys;
    r.nkeys = N;
    r.props = props;
    r.nprops = N;
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(decode_exact(out.data, out.len, &v, &copy), FY_OK);

    it = fy_record_keys(&v);
    for (i = 0; fy_record_key_next(&it, &a); i++) {
        assert_true(i < N);
        assert_slice(a, names[i], strlen(names[i]));
    }
    assert_int_equal(i, N);

    it = fy_record_props(&v);
    for (i = 0; fy_record_prop_next(&it, &a, &b); i++) {
        assert_true(i < N);
        assert_slice(a, names[i], strlen(names[i]));
        assert_slice(b, values[i], strlen(values[i]));
    }
    assert_int_equal(i, N);
    assert_false(fy_record_prop_next(&it, &a, &b));

    assert_true(fy_record_prop_get(&v, "k299", &a));
    assert_slice(a, "v2093", 5);
    free(copy);
    fy_buf_free(&out);
}

/* The iterators stop after the view's counts, and never read past the regions, even for a
 * view that was altered after decoding. */
static void test_record_iterators_respect_counts_and_regions(void **state)
{
    fy_slice keys[] = {fy_slice_str("a"), fy_slice_str("bb"), fy_slice_str("ccc")};
    fy_slice props[] = {fy_slice_str("p"), fy_slice_str("1"), fy_slice_str("q"),
                        fy_slice_str("22")};
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;
    fy_record_view v, w;
    fy_record_iter it;
    fy_slice a, b;
    uint8_t *copy;

    r.topic = fy_slice_str("t");
    r.keys = keys;
    r.nkeys = 3;
    r.props = props;
    r.nprops = 2;
    assert_int_equal(fy_record_encode(&r, &out), FY_OK);
    assert_int_equal(decode_exact(out.data, out.len, &v, &copy), FY_OK);

    w = v;
    w.nkeys = 2;
    w.nprops = 1;
    it = fy_record_keys(&w);
    assert_true(fy_record_key_next(&it, &a));
    assert_slice(a, "a", 1);
    assert_true(fy_record_key_next(&it, &a));
    assert_slice(a, "bb", 2);
    assert_false(fy_record_key_next(&it, &a));
    it = fy_record_props(&w);
    assert_true(fy_record_prop_next(&it, &a, &b));
    assert_slice(b, "1", 1);
    assert_false(fy_record_prop_next(&it, &a, &b));
    assert_false(fy_record_prop_get(&w, "q", &a));

    /* Regions cut short: the entry that does not fit is not returned. */
    w = v;
    w.keys_raw.len -= 1;
    w.props_raw.len -= 1;
    it = fy_record_keys(&w);
    assert_true(fy_record_key_next(&it, &a));
    assert_true(fy_record_key_next(&it, &a));
    assert_false(fy_record_key_next(&it, &a));
    assert_false(fy_record_key_next(&it, &a));
    it = fy_record_props(&w);
    assert_true(fy_record_prop_next(&it, &a, &b));
    assert_false(fy_record_prop_next(&it, &a, &b));
    assert_false(fy_record_prop_get(&w, "q", &a));
    assert_true(fy_record_prop_get(&w, "p", &a));

    free(copy);
    fy_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_layout_matches_header),
        cmocka_unit_test(test_record_round_trip_full),
        cmocka_unit_test(test_record_round_trip_minimal),
        cmocka_unit_test(test_record_size_matches_encoding),
        cmocka_unit_test(test_record_encode_refuses_limit_breaks),
        cmocka_unit_test(test_record_decode_rejects_every_truncation),
        cmocka_unit_test(test_record_decode_rejects_trailing_byte),
        cmocka_unit_test(test_record_decode_rejects_bad_magic),
        cmocka_unit_test(test_record_decode_rejects_unknown_version),
        cmocka_unit_test(test_record_decode_rejects_length_past_end),
        cmocka_unit_test(test_record_decode_rejects_empty_names),
        cmocka_unit_test(test_record_set_location_and_peek),
        cmocka_unit_test(test_record_set_location_and_peek_refuse_non_records),
        cmocka_unit_test(test_record_prop_get),
        cmocka_unit_test(test_record_iterators_yield_in_order),
        cmocka_unit_test(test_record_iterators_respect_counts_and_regions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
