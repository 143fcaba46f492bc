/* SPDX-License-Identifier: Apache-2.0 */
/* The AMQP message <-> record mapping: messages built with proton's own encoder map to records
 * with the documented tag, properties and body, come back with the bare message byte for byte,
 * records of other protocols become sensible AMQP messages, and bad input is refused with the
 * right condition, never a crash. */
#include "adapters/amqp/amqp_map.h"
#include "common/buf.h"
#include "common/record.h"
#include "tests/testutil.h"

#include "ferry/errors.h"

#include <proton/codec.h>
#include <proton/message.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Encodes m into out. */
static void encode(pn_message_t *m, fy_buf *out)
{
    size_t cap = 1 << 16;
    for (;;) {
        size_t n = cap;
        fy_buf_reset(out);
        uint8_t *p = fy_buf_reserve(out, cap);
        int rc = pn_message_encode(m, (char *)p, &n);
        if (rc == 0) {
            out->len = n;
            return;
        }
        assert_int_equal(rc, PN_OVERFLOW);
        cap *= 4;
    }
}

static bool prop_is(const fy_record_view *v, const char *name, const char *want)
{
    fy_slice s;
    return fy_record_prop_get(v, name, &s) && s.len == strlen(want) &&
           memcmp(s.p, want, s.len) == 0;
}

/* The sections after the header and message annotations: properties onward. */
static const uint8_t *bare_start(const fy_buf *b, size_t *len)
{
    size_t off = 0;
    while (off < b->len) {
        size_t n = fy_amqp_value_len(b->data + off, b->len - off, 4);
        assert_true(n > 0);
        if (b->data[off + 2] >= 0x73) {
            *len = b->len - off;
            return b->data + off;
        }
        off += n;
    }
    *len = 0;
    return b->data + off;
}

static void test_amqp_map_roundtrip(void **state)
{
    pn_message_t *m = pn_message();
    fy_buf enc = FY_BUF_INIT, out = FY_BUF_INIT;
    fy_amqp_in in = {FY_BUF_INIT, FY_BUF_INIT, ""};
    fy_record_view v;
    uint8_t msgid[16] = {1, 2, 3};
    pn_data_t *ap, *ma, *body;
    size_t bl1, bl2;
    const uint8_t *b1, *b2;

    pn_message_set_subject(m, "TagA");
    pn_message_set_content_type(m, "text/plain");
    pn_message_set_reply_to(m, "replies");
    pn_message_set_creation_time(m, 1700000000123);
    pn_data_put_string(pn_message_id(m), pn_bytes(4, "id-1"));
    ap = pn_message_properties(m);
    pn_data_put_map(ap);
    pn_data_enter(ap);
    pn_data_put_string(ap, pn_bytes(1, "n"));
    pn_data_put_int(ap, -42);
    pn_data_put_string(ap, pn_bytes(1, "s"));
    pn_data_put_string(ap, pn_bytes(3, "abc"));
    pn_data_put_string(ap, pn_bytes(6, "amqp.x"));
    pn_data_put_string(ap, pn_bytes(3, "own"));
    pn_data_exit(ap);
    ma = pn_message_annotations(m);
    pn_data_put_map(ma);
    pn_data_enter(ma);
    pn_data_put_symbol(ma, pn_bytes(19, "x-opt-partition-key"));
    pn_data_put_string(ma, pn_bytes(2, "k1"));
    pn_data_put_symbol(ma, pn_bytes(19, "x-opt-delivery-time"));
    pn_data_put_timestamp(ma, 1900000000000);
    pn_data_exit(ma);
    body = pn_message_body(m);
    pn_data_put_string(body, pn_bytes(5, "hello"));
    encode(m, &enc);

    assert_int_equal(fy_amqp_map_in(enc.data, enc.len, "t", "h:1", 77, &in), FY_AMQP_MAP_OK);
    assert_int_equal(fy_record_decode(in.record.data, in.record.len, &v), FY_OK);
    assert_int_equal(v.topic.len, 1);
    assert_memory_equal(v.tag.p, "TagA", 4);
    assert_int_equal(v.body.len, 5);
    assert_memory_equal(v.body.p, "hello", 5);
    assert_int_equal(v.born_ms, 77);
    assert_true(prop_is(&v, "n", "-42"));
    assert_true(prop_is(&v, "s", "abc"));
    assert_false(prop_is(&v, "amqp.x", "own"));
    assert_true(prop_is(&v, "amqp.message-id", "id-1"));
    assert_true(prop_is(&v, "amqp.content-type", "text/plain"));
    assert_true(prop_is(&v, "amqp.reply-to", "replies"));
    assert_true(prop_is(&v, "amqp.creation-time", "1700000000123"));
    assert_true(prop_is(&v, "TIMER_DELIVER_MS", "1900000000000"));
    assert_true(prop_is(&v, FY_AMQP_PROP_BODY, "string"));
    assert_int_equal(in.sharding_key.len, 2);
    assert_memory_equal(in.sharding_key.data, "k1", 2);

    /* Back out: the bare message is the one sent, byte for byte. */
    assert_int_equal(fy_amqp_map_out(&v, msgid, 2, &out), FY_OK);
    b1 = bare_start(&enc, &bl1);
    b2 = bare_start(&out, &bl2);
    assert_int_equal(bl1, bl2);
    assert_memory_equal(b1, b2, bl1);
    {
        pn_message_t *back = pn_message();
        assert_int_equal(pn_message_decode(back, (const char *)out.data, out.len), 0);
        assert_int_equal(pn_message_get_delivery_count(back), 2);
        assert_true(pn_message_is_durable(back));
        assert_string_equal(pn_message_get_subject(back), "TagA");
        pn_message_free(back);
    }
    fy_amqp_in_free(&in);
    fy_buf_free(&enc);
    fy_buf_free(&out);
    pn_message_free(m);
}

static void test_amqp_map_native_record(void **state)
{
    fy_buf rec = FY_BUF_INIT, out = FY_BUF_INIT;
    fy_slice props[] = {
        fy_slice_str("mqtt.topic"), fy_slice_str("a/b"), fy_slice_str("mqtt.content_type"),
        fy_slice_str("text/x"),     fy_slice_str("bin"), {(const uint8_t *)"\xff\x00", 2}};
    fy_record r = {0};
    fy_record_view v;
    uint8_t msgid[16];
    pn_message_t *m = pn_message();
    pn_data_t *body, *ap;
    memset(msgid, 0xAB, sizeof(msgid));
    r.topic = fy_slice_str("a");
    r.tag = fy_slice_str("T");
    r.born_ms = 5;
    r.props = props;
    r.nprops = 3;
    r.body = fy_slice_str("payload");
    assert_int_equal(fy_record_encode(&r, &rec), FY_OK);
    assert_int_equal(fy_record_decode(rec.data, rec.len, &v), FY_OK);
    assert_int_equal(fy_amqp_map_out(&v, msgid, 0, &out), FY_OK);
    assert_int_equal(pn_message_decode(m, (const char *)out.data, out.len), 0);
    assert_string_equal(pn_message_get_subject(m), "T");
    assert_string_equal(pn_message_get_content_type(m), "text/x");
    assert_int_equal(pn_message_get_creation_time(m), 5);
    body = pn_message_body(m);
    pn_data_rewind(body);
    assert_true(pn_data_next(body));
    assert_int_equal(pn_data_type(body), PN_BINARY);
    assert_int_equal(pn_data_get_binary(body).size, 7);
    ap = pn_message_properties(m);
    pn_data_rewind(ap);
    assert_true(pn_data_next(ap));
    assert_int_equal(pn_data_get_map(ap), 6); /* mqtt.topic, mqtt.content_type, bin */
    {
        pn_data_t *id = pn_message_id(m);
        pn_data_rewind(id);
        assert_true(pn_data_next(id));
        assert_int_equal(pn_data_get_string(id).size, 32);
    }
    pn_message_free(m);
    fy_buf_free(&rec);
    fy_buf_free(&out);
}

static void test_amqp_map_refusals(void **state)
{
    fy_amqp_in in = {FY_BUF_INIT, FY_BUF_INIT, ""};
    pn_message_t *m = pn_message();
    fy_buf enc = FY_BUF_INIT;
    static const uint8_t garbage[] = {0x00, 0x53, 0x75, 0xa0, 0x09, 'x'};
    static const uint8_t order[] = {0x00, 0x53, 0x75, 0xa0, 0x00, 0x00, 0x53, 0x73, 0x45};
    static const uint8_t notsec[] = {0x00, 0x53, 0x10, 0x40};

    assert_int_equal(fy_amqp_map_in(garbage, sizeof(garbage), "t", "", 0, &in), FY_AMQP_MAP_DECODE);
    assert_true(in.why[0] != '\0');
    assert_int_equal(fy_amqp_map_in(order, sizeof(order), "t", "", 0, &in), FY_AMQP_MAP_DECODE);
    assert_int_equal(fy_amqp_map_in(notsec, sizeof(notsec), "t", "", 0, &in), FY_AMQP_MAP_DECODE);
    /* an empty message is a message with an empty body */
    assert_int_equal(fy_amqp_map_in(NULL, 0, "t", "", 0, &in), FY_AMQP_MAP_OK);

    /* anonymous relay: the topic is properties.to */
    pn_data_put_binary(pn_message_body(m), pn_bytes(3, "abc"));
    encode(m, &enc);
    assert_int_equal(fy_amqp_map_in(enc.data, enc.len, NULL, "", 0, &in), FY_AMQP_MAP_NOTFOUND);
    pn_message_set_address(m, "dest");
    encode(m, &enc);
    assert_int_equal(fy_amqp_map_in(enc.data, enc.len, NULL, "", 0, &in), FY_AMQP_MAP_OK);

    /* every cut of a valid message is refused or mapped, never read past */
    for (size_t n = 0; n < enc.len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, enc.data, n);
        fy_amqp_map_err e = fy_amqp_map_in(cut, n, "t", "", 0, &in);
        assert_true(e == FY_AMQP_MAP_OK || e == FY_AMQP_MAP_DECODE);
        free(cut);
    }
    assert_string_equal(fy_amqp_map_condition(FY_AMQP_MAP_DECODE), "amqp:decode-error");
    fy_amqp_in_free(&in);
    fy_buf_free(&enc);
    pn_message_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amqp_map_roundtrip),
        cmocka_unit_test(test_amqp_map_native_record),
        cmocka_unit_test(test_amqp_map_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
