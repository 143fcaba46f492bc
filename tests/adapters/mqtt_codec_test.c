/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the MQTT packet codec: framing (need-more, varint limits, reserved flags, size
 * limit before the body), variable byte integers, UTF-8 validation, every packet's decoder on
 * real packets of MQTT 3.1, 3.1.1 and 5.0 and on each spec rule it enforces (with the reason
 * code it must return), property placement/duplicate/range checks, and the encoders' exact
 * bytes, short forms and Maximum Packet Size handling. Every decode runs on an exactly-sized
 * heap copy so ASan sees any over-read. */
#include "adapters/mqtt/mqtt_codec.h"
#include "common/buf.h"

#include "ferry/errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

/* ---- Helpers ----------------------------------------------------------------------------- */

#define MAX_COPIES 256
static uint8_t *copies[MAX_COPIES];
static size_t ncopies;

static uint8_t *copy_exact(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    assert_true(ncopies < MAX_COPIES);
    if (n) {
        memcpy(c, p, n);
    }
    copies[ncopies++] = c;
    return c;
}

static int teardown_copies(void **state)
{
    for (size_t i = 0; i < ncopies; i++) {
        free(copies[i]);
    }
    ncopies = 0;
    return 0;
}

/* Frames n bytes (a heap copy): the bytes must hold exactly one whole packet. */
static fy_mqtt_frame_hdr frame(const void *p, size_t n)
{
    fy_mqtt_frame_hdr h;
    uint8_t *c = copy_exact(p, n);
    assert_int_equal(fy_mqtt_frame(c, n, 0, &h, NULL), FY_MQTT_OK);
    assert_int_equal(h.hdr_len + h.remaining, n);
    return h;
}

/* A packet of first byte b0 around the body in b (b is reset). */
static fy_mqtt_frame_hdr frame_body(uint8_t b0, fy_buf *b)
{
    fy_buf pkt = FY_BUF_INIT;
    fy_mqtt_frame_hdr h;

    fy_buf_put_u8(&pkt, b0);
    fy_mqtt_put_vbi(&pkt, (uint32_t)b->len);
    if (b->len) {
        fy_buf_append(&pkt, b->data, b->len);
    }
    h = frame(pkt.data, pkt.len);
    fy_buf_free(&pkt);
    fy_buf_reset(b);
    return h;
}

#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static void put_s(fy_buf *b, const char *s)
{
    fy_mqtt_put_str(b, fy_slice_str(s));
}

static void assert_slice_str(fy_slice s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    if (s.len) {
        assert_memory_equal(s.p, want, s.len);
    }
}

static fy_slice sl(const char *s)
{
    return fy_slice_str(s);
}

/* A v5 property block holding the bytes given. */
static void put_props(fy_buf *b, const uint8_t *p, size_t n)
{
    fy_mqtt_put_vbi(b, (uint32_t)n);
    if (n) {
        fy_buf_append(b, p, n);
    }
}

/* ---- Framing ------------------------------------------------------------------------------ */

static void test_mqtt_codec_frame(void **state)
{
    fy_mqtt_frame_hdr h;
    const char *why = NULL;
    uint8_t big[200];

    assert_int_equal(fy_mqtt_frame(NULL, 0, 0, &h, NULL), FY_MQTT_NEED_MORE);
    assert_int_equal(fy_mqtt_frame(BYTES(0x30), 0, &h, NULL), FY_MQTT_NEED_MORE);
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0x80), 0, &h, NULL), FY_MQTT_NEED_MORE);
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0x03, 0, 1), 0, &h, NULL), FY_MQTT_NEED_MORE);
    assert_int_equal(h.remaining, 3);
    assert_int_equal(h.hdr_len, 2);
    assert_int_equal(fy_mqtt_frame(BYTES(0xC0, 0x00), 0, &h, NULL), FY_MQTT_OK);
    assert_int_equal(h.type, FY_MQTT_PINGREQ);
    assert_int_equal(h.body.len, 0);

    /* Remaining length: 4 bytes max, minimal encoding. */
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0xff, 0xff, 0xff, 0x7f), 0, &h, NULL),
                     FY_MQTT_NEED_MORE);
    assert_int_equal(h.remaining, FY_MQTT_MAX_REMAINING);
    assert_int_equal(h.hdr_len, 5);
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0xff, 0xff, 0xff, 0xff, 0x01), 0, &h, &why),
                     FY_MQTT_RC_MALFORMED);
    assert_non_null(why);
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0x80, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);

    /* Reserved type and flags. */
    assert_int_equal(fy_mqtt_frame(BYTES(0x00, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0x36, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0x3d, 0x00), 0, &h, NULL), FY_MQTT_OK); /* QoS 2 DUP */
    assert_int_equal(fy_mqtt_frame(BYTES(0x60, 0x02, 0, 1), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0x62, 0x02, 0, 1), 0, &h, NULL), FY_MQTT_OK);
    assert_int_equal(fy_mqtt_frame(BYTES(0x80, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0xA0, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0x41, 0x02, 0, 1), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0x12, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_frame(BYTES(0xE1, 0x00), 0, &h, NULL), FY_MQTT_RC_MALFORMED);

    /* Too large is known from the header alone; exactly the limit is fine. */
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0xc8, 0x01), 201, &h, NULL),
                     FY_MQTT_RC_PACKET_TOO_LARGE);
    assert_int_equal(fy_mqtt_frame(BYTES(0x30, 0xc8, 0x01), 203, &h, NULL), FY_MQTT_NEED_MORE);
    memset(big, 0, sizeof(big));
    big[0] = 0x30;
    big[1] = 0xc5; /* 197 = 0x45 | 0x80, 0x01 */
    big[2] = 0x01;
    assert_int_equal(fy_mqtt_frame(big, 200, 200, &h, NULL), FY_MQTT_OK);
    assert_int_equal(h.hdr_len, 3);
    assert_int_equal(h.remaining, 197);
    assert_ptr_equal(h.body.p, big + 3);
    assert_int_equal(fy_mqtt_frame(big, 200, 199, &h, NULL), FY_MQTT_RC_PACKET_TOO_LARGE);
}

static void test_mqtt_codec_vbi(void **state)
{
    static const uint32_t vals[] = {0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 268435455u};
    static const size_t sizes[] = {1, 1, 1, 2, 2, 3, 3, 4, 4};
    fy_buf b = FY_BUF_INIT;

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        fy_rd r;
        uint32_t v;
        fy_buf_reset(&b);
        fy_mqtt_put_vbi(&b, vals[i]);
        assert_int_equal(b.len, sizes[i]);
        assert_int_equal(fy_mqtt_vbi_size(vals[i]), sizes[i]);
        r = fy_rd_make(b.data, b.len);
        assert_int_equal(fy_mqtt_get_vbi(&r, &v), FY_MQTT_OK);
        assert_int_equal(v, vals[i]);
        assert_int_equal(r.left, 0);
        /* Cut short. */
        r = fy_rd_make(b.data, b.len - 1);
        assert_int_equal(fy_mqtt_get_vbi(&r, &v), FY_MQTT_RC_MALFORMED);
    }
    {
        fy_rd r = fy_rd_make(BYTES(0x80, 0x80, 0x80, 0x80, 0x01));
        uint32_t v;
        assert_int_equal(fy_mqtt_get_vbi(&r, &v), FY_MQTT_RC_MALFORMED);
        r = fy_rd_make(BYTES(0xff, 0x00));
        assert_int_equal(fy_mqtt_get_vbi(&r, &v), FY_MQTT_RC_MALFORMED);
    }
    fy_buf_free(&b);
}

static void test_mqtt_codec_utf8(void **state)
{
    static const struct {
        const char *s;
        size_t n;
        bool ok;
    } cases[] = {
        {"", 0, true},
        {"a/b/c", 5, true},
        {"caf\xc3\xa9", 5, true},
        {"\xe4\xb8\xad", 3, true},
        {"\xf0\x9f\x98\x80", 4, true},      /* U+1F600 */
        {"\xf4\x8f\xbf\xbf", 4, true},      /* U+10FFFF */
        {"\xef\xbf\xbf", 3, true},          /* U+FFFF: a noncharacter, still UTF-8 */
        {"a\0b", 3, false},                 /* U+0000 */
        {"\xc0\x80", 2, false},             /* overlong NUL */
        {"\xc1\xbf", 2, false},             /* overlong */
        {"\xe0\x80\x80", 3, false},         /* overlong */
        {"\xe0\x9f\xbf", 3, false},         /* overlong U+07FF */
        {"\xf0\x80\x80\x80", 4, false},     /* overlong */
        {"\xf0\x8f\xbf\xbf", 4, false},     /* overlong U+FFFF */
        {"\xed\xa0\x80", 3, false},         /* U+D800 surrogate */
        {"\xed\xbf\xbf", 3, false},         /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", 4, false},     /* U+110000 */
        {"\xf5\x80\x80\x80", 4, false},     /* lead byte F5 */
        {"\xf8\x88\x80\x80\x80", 5, false}, /* 5-byte form */
        {"\x80", 1, false},                 /* bare continuation */
        {"\xc3", 1, false},                 /* truncated */
        {"\xe4\xb8", 2, false},             /* truncated */
        {"\xc3\x28", 2, false},             /* bad continuation */
        {"\xff", 1, false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *c = copy_exact(cases[i].s, cases[i].n);
        if (fy_mqtt_utf8_valid(c, cases[i].n) != cases[i].ok) {
            fail_msg("utf8 case %zu", i);
        }
    }
}

/* ---- CONNECT / CONNACK -------------------------------------------------------------------- */

static void test_mqtt_codec_connect_v311(void **state)
{
    fy_mqtt_connect c;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;
    const char *why = NULL;

    /* clean, will QoS 1 retained, user name, password */
    put_s(&b, "MQTT");
    fy_buf_put_u8(&b, 4);
    fy_buf_put_u8(&b, 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80);
    fy_buf_put_u16(&b, 60);
    put_s(&b, "dev1");
    put_s(&b, "devices/dev1/lwt");
    put_s(&b, "gone");
    put_s(&b, "alice");
    put_s(&b, "s3cret");
    h = frame_body(0x10, &b);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, &why), FY_MQTT_OK);
    assert_int_equal(c.version, 4);
    assert_true(c.clean);
    assert_int_equal(c.keepalive, 60);
    assert_slice_str(c.client_id, "dev1");
    assert_true(c.will);
    assert_int_equal(c.will_qos, 1);
    assert_true(c.will_retain);
    assert_slice_str(c.will_topic, "devices/dev1/lwt");
    assert_slice_str(c.will_payload, "gone");
    assert_true(c.has_username && c.has_password);
    assert_slice_str(c.username, "alice");
    assert_slice_str(c.password, "s3cret");
    assert_int_equal(c.props.present, 0);

    /* Re-encoding gives the same bytes. */
    assert_int_equal(fy_mqtt_enc_connect(&b, &c), FY_OK);
    assert_int_equal(b.len, h.hdr_len + h.remaining);
    assert_memory_equal(b.data, h.body.p - h.hdr_len, b.len);
    fy_buf_free(&b);
}

static void test_mqtt_codec_connect_v31_v5(void **state)
{
    static const uint8_t cprops[] = {0x11, 0, 0,  0x0e, 0x10, /* session expiry 3600 */
                                     0x21, 0, 20,             /* receive maximum */
                                     0x27, 0, 1,  0,    0,    /* maximum packet size */
                                     0x26, 0, 1,  'k',  0,    1, 'v'};
    static const uint8_t wprops[] = {0x18, 0, 0, 0, 5, 0x01, 1};
    fy_mqtt_connect c, d;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_prop_iter it;
    fy_slice k, v;

    put_s(&b, "MQIsdp");
    fy_buf_put_u8(&b, 3);
    fy_buf_put_u8(&b, 0x02);
    fy_buf_put_u16(&b, 10);
    put_s(&b, "old");
    h = frame_body(0x10, &b);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_OK);
    assert_int_equal(c.version, 3);
    assert_int_equal(fy_mqtt_enc_connect(&b, &c), FY_OK);
    assert_memory_equal(b.data, h.body.p - h.hdr_len, b.len);
    fy_buf_reset(&b);

    /* v5: props, will props, password without user name is allowed. */
    put_s(&b, "MQTT");
    fy_buf_put_u8(&b, 5);
    fy_buf_put_u8(&b, 0x04 | 0x10 | 0x40);
    fy_buf_put_u16(&b, 0);
    put_props(&b, cprops, sizeof(cprops));
    put_s(&b, "");
    put_props(&b, wprops, sizeof(wprops));
    put_s(&b, "w/t");
    put_s(&b, "x");
    put_s(&b, "token");
    h = frame_body(0x10, &b);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_OK);
    assert_int_equal(c.version, 5);
    assert_false(c.clean);
    assert_int_equal(c.client_id.len, 0);
    assert_int_equal(c.will_qos, 2);
    assert_false(c.has_username);
    assert_true(c.has_password);
    assert_slice_str(c.password, "token");
    assert_int_equal(c.props.session_expiry, 3600);
    assert_int_equal(c.props.receive_maximum, 20);
    assert_int_equal(c.props.maximum_packet_size, 65536);
    assert_int_equal(c.props.n_user_props, 1);
    it = fy_mqtt_user_props(&c.props);
    assert_true(fy_mqtt_user_prop_next(&it, &k, &v));
    assert_slice_str(k, "k");
    assert_slice_str(v, "v");
    assert_false(fy_mqtt_user_prop_next(&it, &k, &v));
    assert_true(fy_mqtt_props_has(&c.will_props, FY_MQTT_P_WILL_DELAY));
    assert_int_equal(c.will_props.will_delay, 5);
    assert_int_equal(c.will_props.payload_format, 1);

    assert_int_equal(fy_mqtt_enc_connect(&b, &c), FY_OK);
    h = frame(b.data, b.len);
    assert_int_equal(fy_mqtt_decode_connect(&h, &d, NULL), FY_MQTT_OK);
    assert_int_equal(d.props.present, c.props.present);
    assert_int_equal(d.will_props.present, c.will_props.present);
    assert_int_equal(d.props.raw.len, c.props.raw.len);
    fy_buf_free(&b);
}

/* Builds a CONNECT body with the given name, level, flags, then client id "c" and, per flags,
 * will props (v5), will topic, will payload, user name and password. */
static fy_mqtt_frame_hdr connect_pkt(const char *name, uint8_t level, uint8_t flags,
                                     const char *client_id, const char *will_topic)
{
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_frame_hdr h;

    put_s(&b, name);
    fy_buf_put_u8(&b, level);
    fy_buf_put_u8(&b, flags);
    fy_buf_put_u16(&b, 30);
    if (level == 5) {
        fy_buf_put_u8(&b, 0);
    }
    put_s(&b, client_id);
    if (flags & 0x04) {
        if (level == 5) {
            fy_buf_put_u8(&b, 0);
        }
        put_s(&b, will_topic);
        put_s(&b, "bye");
    }
    if (flags & 0x80) {
        put_s(&b, "u");
    }
    if (flags & 0x40) {
        put_s(&b, "p");
    }
    h = frame_body(0x10, &b);
    fy_buf_free(&b);
    return h;
}

static void test_mqtt_codec_connect_errors(void **state)
{
    fy_mqtt_connect c;
    fy_mqtt_frame_hdr h;
    const char *why = NULL;
    fy_buf b = FY_BUF_INIT;

    /* Level and name. */
    h = connect_pkt("MQTT", 6, 0x02, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, &why), FY_MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(c.version, 6);
    assert_non_null(why);
    h = connect_pkt("MQTT", 3, 0x02, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(c.version, 3);
    h = connect_pkt("MQIsdp", 4, 0x02, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_UNSUPPORTED_VERSION);
    assert_int_equal(c.version, 4);
    h = connect_pkt("MQTX", 4, 0x02, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(c.version, 0);
    /* The answer to an unsupported level is a 3.1.1 CONNACK with return code 1. */
    fy_mqtt_connack ca = {.reason = FY_MQTT_RC_UNSUPPORTED_VERSION};
    assert_int_equal(fy_mqtt_enc_connack(&b, FY_MQTT_V311, &ca, 0), FY_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, ((const uint8_t[]){0x20, 0x02, 0x00, 0x01}), 4);

    /* Flags. */
    h = connect_pkt("MQTT", 4, 0x03, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(c.version, 4);
    h = connect_pkt("MQTT", 4, 0x02 | 0x04 | 0x18, "c", "t");
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED); /* will QoS 3 */
    h = connect_pkt("MQTT", 4, 0x02 | 0x08, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);
    h = connect_pkt("MQTT", 5, 0x02 | 0x20, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);
    h = connect_pkt("MQTT", 4, 0x02 | 0x40, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = connect_pkt("MQIsdp", 3, 0x02 | 0x40, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = connect_pkt("MQTT", 5, 0x02 | 0x40, "c", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_OK);

    /* Client id. */
    h = connect_pkt("MQTT", 4, 0x02, "", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_OK);
    h = connect_pkt("MQTT", 4, 0x80, "", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_CLIENT_ID_INVALID);
    assert_true(c.has_username); /* parsed completely */
    assert_slice_str(c.username, "u");
    h = connect_pkt("MQIsdp", 3, 0x02, "", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_CLIENT_ID_INVALID);
    h = connect_pkt("MQTT", 5, 0x00, "", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_OK);
    h = connect_pkt("MQTT", 4, 0x02, "bad\xc0\x80", NULL);
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);

    /* Will topic. */
    h = connect_pkt("MQTT", 4, 0x02 | 0x04, "c", "a/+/b");
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_TOPIC_NAME_INVALID);
    h = connect_pkt("MQTT", 5, 0x02 | 0x04, "c", "");
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_TOPIC_NAME_INVALID);
    assert_int_equal(c.version, 5);

    /* Cut short and trailing bytes. */
    h = frame(BYTES(0x10, 0x0a, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10));
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 'c', 'x'));
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 10, 0, 1, 'c'));
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_OK);
    /* A v5 CONNECT with a property not allowed there (topic alias): malformed. */
    h = frame(BYTES(0x10, 0x11, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 10, 3, 0x23, 0, 1, 0, 1, 'c'));
    assert_int_equal(fy_mqtt_decode_connect(&h, &c, NULL), FY_MQTT_RC_MALFORMED);
    fy_buf_free(&b);
}

static void test_mqtt_codec_connack(void **state)
{
    static const struct {
        uint8_t v5, v3;
    } map[] = {{0x00, 0}, {0x84, 1}, {0x85, 2}, {0x88, 3}, {0x89, 3}, {0x86, 4},
               {0x87, 5}, {0x8A, 5}, {0x8C, 5}, {0x80, 3}, {0x95, 3}, {0x9F, 3}};
    fy_mqtt_connack c, d;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;
    fy_slice up[4] = {sl("a"), sl("b"), sl("c"), sl("d")};

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        assert_int_equal(fy_mqtt_connack_v3_code(map[i].v5), map[i].v3);
    }
    for (uint8_t code = 0; code <= 5; code++) {
        int r = fy_mqtt_connack_v5_reason(code);
        assert_true(r >= 0);
        assert_int_equal(fy_mqtt_connack_v3_code((uint8_t)r), code);
    }
    assert_int_equal(fy_mqtt_connack_v5_reason(6), -1);

    h = frame(BYTES(0x20, 0x02, 0x01, 0x00));
    assert_int_equal(fy_mqtt_decode_connack(&h, 4, &c, NULL), FY_MQTT_OK);
    assert_true(c.session_present);
    h = frame(BYTES(0x20, 0x02, 0x00, 0x04));
    assert_int_equal(fy_mqtt_decode_connack(&h, 4, &c, NULL), FY_MQTT_OK);
    assert_int_equal(c.reason, FY_MQTT_RC_BAD_USER_PASS);
    h = frame(BYTES(0x20, 0x02, 0x00, 0x06));
    assert_int_equal(fy_mqtt_decode_connack(&h, 4, &c, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x20, 0x02, 0x02, 0x00));
    assert_int_equal(fy_mqtt_decode_connack(&h, 4, &c, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x20, 0x02, 0x01, 0x05));
    assert_int_equal(fy_mqtt_decode_connack(&h, 4, &c, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x20, 0x03, 0x00, 0x00, 0x00));
    assert_int_equal(fy_mqtt_decode_connack(&h, 4, &c, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_decode_connack(&h, 5, &c, NULL), FY_MQTT_OK);

    /* v5 with properties; v3 encoders leave them out. */
    memset(&c, 0, sizeof(c));
    c.reason = 0;
    c.props.present = FY_MQTT_PBIT(FY_MQTT_P_RECEIVE_MAXIMUM) |
                      FY_MQTT_PBIT(FY_MQTT_P_MAXIMUM_QOS) |
                      FY_MQTT_PBIT(FY_MQTT_P_ASSIGNED_CLIENT_ID) |
                      FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING) | FY_MQTT_PBIT(FY_MQTT_P_USER_PROPERTY);
    c.props.receive_maximum = 100;
    c.props.maximum_qos = 1;
    c.props.assigned_client_id = sl("auto-1");
    c.props.reason_string = sl("hello there");
    c.props.user_props = up;
    c.props.n_user_props = 2;
    assert_int_equal(fy_mqtt_enc_connack(&b, 5, &c, 0), FY_OK);
    h = frame(b.data, b.len);
    assert_int_equal(fy_mqtt_decode_connack(&h, 5, &d, NULL), FY_MQTT_OK);
    assert_int_equal(d.props.present, c.props.present);
    assert_int_equal(d.props.receive_maximum, 100);
    assert_int_equal(d.props.maximum_qos, 1);
    assert_slice_str(d.props.assigned_client_id, "auto-1");
    assert_slice_str(d.props.reason_string, "hello there");
    assert_int_equal(d.props.n_user_props, 2);
    /* Under a tighter maximum the reason string and user properties are dropped. */
    {
        size_t full = b.len;
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_connack(&b, 5, &c, (uint32_t)full - 1), FY_OK);
        assert_true(b.len < full);
        h = frame(b.data, b.len);
        assert_int_equal(fy_mqtt_decode_connack(&h, 5, &d, NULL), FY_MQTT_OK);
        assert_int_equal(d.props.present, FY_MQTT_PBIT(FY_MQTT_P_RECEIVE_MAXIMUM) |
                                              FY_MQTT_PBIT(FY_MQTT_P_MAXIMUM_QOS) |
                                              FY_MQTT_PBIT(FY_MQTT_P_ASSIGNED_CLIENT_ID));
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_connack(&b, 5, &c, 10), -FY_ETOOBIG);
        assert_int_equal(b.len, 0);
    }
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_connack(&b, 4, &c, 0), FY_OK);
    assert_int_equal(b.len, 4);
    fy_buf_free(&b);
}

/* ---- PUBLISH and acks ---------------------------------------------------------------------- */

static void test_mqtt_codec_publish(void **state)
{
    fy_mqtt_publish p, q;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;

    h = frame(BYTES(0x30, 0x07, 0, 3, 'a', '/', 'b', 'h', 'i'));
    for (int v = 3; v <= 5; v++) {
        int want = v == 5 ? FY_MQTT_RC_MALFORMED : FY_MQTT_OK; /* v5 reads 'h' as props len */
        assert_int_equal(fy_mqtt_decode_publish(&h, v, false, &p, NULL), want);
    }
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_OK);
    assert_int_equal(p.qos, 0);
    assert_false(p.dup || p.retain);
    assert_slice_str(p.topic, "a/b");
    assert_slice_str(p.payload, "hi");
    assert_int_equal(p.packet_id, 0);

    h = frame(BYTES(0x3b, 0x08, 0, 1, 't', 0x12, 0x34, 0, 'x', 'y'));
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, false, &p, NULL), FY_MQTT_OK);
    assert_true(p.dup && p.retain);
    assert_int_equal(p.qos, 1);
    assert_int_equal(p.packet_id, 0x1234);
    assert_slice_str(p.payload, "xy");
    assert_int_equal(fy_mqtt_enc_publish(&b, 5, &p, 0), FY_OK);
    assert_int_equal(b.len, h.hdr_len + h.remaining);
    assert_memory_equal(b.data, h.body.p - h.hdr_len, b.len);
    assert_int_equal(fy_mqtt_publish_size(5, &p, 2), b.len);

    /* Flag and packet id rules. */
    h = frame(BYTES(0x38, 0x03, 0, 1, 't'));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x32, 0x05, 0, 1, 't', 0, 0));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x32, 0x04, 0, 1, 't', 0));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_MALFORMED);

    /* Topic rules. */
    h = frame(BYTES(0x30, 0x05, 0, 3, 'a', '/', '#'));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_TOPIC_NAME_INVALID);
    h = frame(BYTES(0x30, 0x04, 0, 2, '+', 'x'));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_TOPIC_NAME_INVALID);
    h = frame(BYTES(0x30, 0x04, 0, 2, 0xc0, 0x80));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x30, 0x03, 0, 1, 0x00));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x30, 0x03, 0, 0, 'x'));
    assert_int_equal(fy_mqtt_decode_publish(&h, 4, false, &p, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x30, 0x03, 0, 0, 0));
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, false, &p, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x30, 0x06, 0, 0, 3, 0x23, 0, 7));
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, false, &p, NULL), FY_MQTT_OK);
    assert_int_equal(p.props.topic_alias, 7);
    assert_int_equal(p.topic.len, 0);
    h = frame(BYTES(0x30, 0x06, 0, 0, 3, 0x23, 0, 0));
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, false, &p, NULL), FY_MQTT_RC_PROTOCOL_ERROR);

    /* Subscription identifiers: none from a client, several from a server. */
    h = frame(BYTES(0x30, 0x0b, 0, 1, 't', 7, 0x0b, 1, 0x0b, 0xff, 0xff, 0xff, 0x7f));
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, false, &p, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, true, &p, NULL), FY_MQTT_OK);
    assert_int_equal(p.props.n_sub_ids, 2);
    assert_int_equal(p.props.sub_id, 1);
    {
        fy_mqtt_prop_iter it = fy_mqtt_sub_ids(&p.props);
        uint32_t id;
        assert_true(fy_mqtt_sub_id_next(&it, &id));
        assert_int_equal(id, 1);
        assert_true(fy_mqtt_sub_id_next(&it, &id));
        assert_int_equal(id, FY_MQTT_MAX_VBI);
        assert_false(fy_mqtt_sub_id_next(&it, &id));
    }
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_publish(&b, 5, &p, 0), FY_OK);
    h = frame(b.data, b.len);
    assert_int_equal(fy_mqtt_decode_publish(&h, 5, true, &q, NULL), FY_MQTT_OK);
    assert_int_equal(q.props.n_sub_ids, 2);
    /* Hand-built list of subscription identifiers. */
    {
        uint32_t ids[3] = {5, 300, 70000};
        memset(&p, 0, sizeof(p));
        p.topic = sl("x/y");
        p.props.present = FY_MQTT_PBIT(FY_MQTT_P_SUBSCRIPTION_ID);
        p.props.sub_ids = ids;
        p.props.n_sub_ids = 3;
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_publish(&b, 5, &p, 0), FY_OK);
        h = frame(b.data, b.len);
        assert_int_equal(fy_mqtt_decode_publish(&h, 5, true, &q, NULL), FY_MQTT_OK);
        assert_int_equal(q.props.n_sub_ids, 3);
        assert_int_equal(q.props.raw.len, 2 + 3 + 4);
        assert_int_equal(fy_mqtt_props_size(&p.props), 9);
        assert_int_equal(fy_mqtt_props_block_size(&p.props), 10);
    }
    fy_buf_free(&b);
}

static void test_mqtt_codec_publish_head(void **state)
{
    fy_mqtt_publish p, q;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;
    uint8_t payload[300];
    fy_slice ct = sl("text/plain");

    memset(payload, 'z', sizeof(payload));
    memset(&p, 0, sizeof(p));
    p.qos = 2;
    p.packet_id = 9;
    p.topic = sl("sensors/room1/temp");
    p.props.present = FY_MQTT_PBIT(FY_MQTT_P_CONTENT_TYPE) | FY_MQTT_PBIT(FY_MQTT_P_MESSAGE_EXPIRY);
    p.props.content_type = ct;
    p.props.message_expiry = 60;
    for (int v = 3; v <= 5; v++) {
        size_t want = fy_mqtt_publish_size(v, &p, sizeof(payload));
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_publish_head(&b, v, &p, sizeof(payload), 0), FY_OK);
        fy_buf_append(&b, payload, sizeof(payload));
        assert_int_equal(b.len, want);
        h = frame(b.data, b.len);
        assert_int_equal(h.hdr_len, 3);
        assert_int_equal(fy_mqtt_decode_publish(&h, v, false, &q, NULL), FY_MQTT_OK);
        assert_int_equal(q.payload.len, sizeof(payload));
        assert_int_equal(q.packet_id, 9);
        assert_int_equal(q.qos, 2);
        assert_int_equal(q.props.present, v == 5 ? p.props.present : 0);
        /* One byte over the client's maximum: refused, nothing written. */
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_publish_head(&b, v, &p, sizeof(payload), (uint32_t)want - 1),
                         -FY_ETOOBIG);
        assert_int_equal(b.len, 0);
        assert_int_equal(fy_mqtt_enc_publish_head(&b, v, &p, sizeof(payload), (uint32_t)want),
                         FY_OK);
    }
    p.qos = 3;
    assert_int_equal(fy_mqtt_enc_publish(&b, 4, &p, 0), -FY_EINVAL);
    fy_buf_free(&b);
}

static void test_mqtt_codec_ack(void **state)
{
    fy_mqtt_ack a;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;
    fy_slice up[2] = {sl("k"), sl("v")};

    h = frame(BYTES(0x40, 0x02, 0x00, 0x07));
    for (int v = 3; v <= 5; v++) {
        assert_int_equal(fy_mqtt_decode_ack(&h, v, &a, NULL), FY_MQTT_OK);
        assert_int_equal(a.packet_id, 7);
        assert_int_equal(a.reason, 0);
    }
    h = frame(BYTES(0x50, 0x03, 0x00, 0x07, 0x10));
    assert_int_equal(fy_mqtt_decode_ack(&h, 4, &a, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_decode_ack(&h, 5, &a, NULL), FY_MQTT_OK);
    assert_int_equal(a.reason, 0x10);
    h = frame(BYTES(0x70, 0x03, 0x00, 0x07, 0x10));
    assert_int_equal(fy_mqtt_decode_ack(&h, 5, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x62, 0x08, 0x00, 0x07, 0x92, 4, 0x1f, 0, 1, 'r'));
    assert_int_equal(fy_mqtt_decode_ack(&h, 5, &a, NULL), FY_MQTT_OK);
    assert_int_equal(a.reason, 0x92);
    assert_slice_str(a.props.reason_string, "r");
    h = frame(BYTES(0x40, 0x02, 0x00, 0x00));
    assert_int_equal(fy_mqtt_decode_ack(&h, 4, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x40, 0x01, 0x00));
    assert_int_equal(fy_mqtt_decode_ack(&h, 5, &a, NULL), FY_MQTT_RC_MALFORMED);
    /* A property not allowed in an ack (content type): malformed. */
    h = frame(BYTES(0x40, 0x08, 0x00, 0x07, 0x00, 4, 0x03, 0, 1, 'x'));
    assert_int_equal(fy_mqtt_decode_ack(&h, 5, &a, NULL), FY_MQTT_RC_MALFORMED);
    /* A property block longer than the packet. */
    h = frame(BYTES(0x40, 0x05, 0x00, 0x07, 0x00, 4, 0x1f));
    assert_int_equal(fy_mqtt_decode_ack(&h, 5, &a, NULL), FY_MQTT_RC_MALFORMED);

    /* Encoders: the v5 short forms. */
    memset(&a, 0, sizeof(a));
    a.packet_id = 0x0102;
    assert_int_equal(fy_mqtt_enc_ack(&b, 5, FY_MQTT_PUBACK, &a, 0), FY_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, ((const uint8_t[]){0x40, 2, 1, 2}), 4);
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_ack(&b, 4, FY_MQTT_PUBREL, &a, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0x62, 2, 1, 2}), 4);
    fy_buf_reset(&b);
    a.reason = 0x10;
    assert_int_equal(fy_mqtt_enc_ack(&b, 5, FY_MQTT_PUBREC, &a, 0), FY_OK);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, ((const uint8_t[]){0x50, 3, 1, 2, 0x10}), 5);
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_ack(&b, 4, FY_MQTT_PUBREC, &a, 0), FY_OK);
    assert_int_equal(b.len, 4); /* 3.1.1 has no reason code */
    fy_buf_reset(&b);
    a.reason = 0;
    a.props.present = FY_MQTT_PBIT(FY_MQTT_P_USER_PROPERTY);
    a.props.user_props = up;
    a.props.n_user_props = 1;
    assert_int_equal(fy_mqtt_enc_ack(&b, 5, FY_MQTT_PUBCOMP, &a, 0), FY_OK);
    assert_memory_equal(b.data,
                        ((const uint8_t[]){0x70, 11, 1, 2, 0, 7, 0x26, 0, 1, 'k', 0, 1, 'v'}), 13);
    fy_buf_reset(&b);
    /* Over the maximum: the user property goes, the ack stays. */
    assert_int_equal(fy_mqtt_enc_ack(&b, 5, FY_MQTT_PUBCOMP, &a, 12), FY_OK);
    assert_int_equal(b.len, 4);
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_ack(&b, 5, FY_MQTT_PUBCOMP, &a, 3), -FY_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(fy_mqtt_enc_ack(&b, 5, FY_MQTT_SUBACK, &a, 0), -FY_EINVAL);
    fy_buf_free(&b);
}

/* ---- Properties ---------------------------------------------------------------------------- */

/* Decodes the property block p[0..n) (length prefix included) in ctx. */
static int props_rc(fy_mqtt_pctx ctx, const uint8_t *p, size_t n, fy_mqtt_props *out)
{
    uint8_t *c = copy_exact(p, n);
    fy_rd r = fy_rd_make(c, n);
    const char *why = NULL;
    int rc = fy_mqtt_props_decode(&r, ctx, out, &why);
    if (rc != FY_MQTT_OK) {
        assert_non_null(why);
    }
    return rc;
}

static void test_mqtt_codec_props(void **state)
{
    fy_mqtt_props p;
    fy_buf b = FY_BUF_INIT;

    /* Allowed sets. */
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(2, 0x17, 1), &p), FY_MQTT_OK);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x17, 1), &p), FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_WILL, BYTES(5, 0x18, 0, 0, 0, 1), &p), FY_MQTT_OK);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(5, 0x18, 0, 0, 0, 1), &p),
                     FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_PUBLISH_C2S, BYTES(5, 0x11, 0, 0, 0, 1), &p),
                     FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_SUBSCRIBE, BYTES(2, 0x0b, 5), &p), FY_MQTT_OK);
    assert_int_equal(p.sub_id, 5);
    assert_int_equal(props_rc(FY_MQTT_PCTX_UNSUBSCRIBE, BYTES(2, 0x0b, 5), &p),
                     FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(2, 0x7f, 0), &p), FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(2, 0x00, 0), &p), FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(1, 0x80), &p), FY_MQTT_RC_MALFORMED);

    /* Duplicates: only user properties, and subscription ids from a server. */
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(6, 0x21, 0, 1, 0x21, 0, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(
        props_rc(FY_MQTT_PCTX_ACK, BYTES(10, 0x26, 0, 0, 0, 0, 0x26, 0, 1, 'a', 0, 0), &p),
        FY_MQTT_RC_MALFORMED); /* cut short: 11 bytes of properties needed */
    assert_int_equal(
        props_rc(FY_MQTT_PCTX_ACK, BYTES(11, 0x26, 0, 0, 0, 0, 0x26, 0, 1, 'a', 0, 0), &p),
        FY_MQTT_OK);
    assert_int_equal(p.n_user_props, 2);
    assert_int_equal(props_rc(FY_MQTT_PCTX_SUBSCRIBE, BYTES(4, 0x0b, 1, 0x0b, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_PUBLISH_S2C, BYTES(4, 0x0b, 1, 0x0b, 2), &p),
                     FY_MQTT_OK);

    /* Ranges. */
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(3, 0x21, 0, 0), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(5, 0x27, 0, 0, 0, 0), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_SUBSCRIBE, BYTES(2, 0x0b, 0), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_PUBLISH_C2S, BYTES(2, 0x01, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(2, 0x17, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(2, 0x19, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x24, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x24, 1), &p), FY_MQTT_OK);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x25, 2), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x28, 3), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x29, 3), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, BYTES(2, 0x2a, 3), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_PUBLISH_C2S, BYTES(3, 0x23, 0, 0), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(props_rc(FY_MQTT_PCTX_AUTH, BYTES(4, 0x16, 0, 1, 'x'), &p),
                     FY_MQTT_RC_PROTOCOL_ERROR); /* data without method */
    /* UTF-8 in property strings; binary data is not checked. */
    assert_int_equal(props_rc(FY_MQTT_PCTX_ACK, BYTES(4, 0x1f, 0, 1, 0xff), &p),
                     FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_ACK, BYTES(6, 0x26, 0, 0, 0, 1, 0x00), &p),
                     FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_PUBLISH_C2S, BYTES(4, 0x09, 0, 1, 0xff), &p),
                     FY_MQTT_OK);
    /* Length overrun and truncated values. */
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(3, 0x21, 0), &p), FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(2, 0x21, 0), &p), FY_MQTT_RC_MALFORMED);
    assert_int_equal(props_rc(FY_MQTT_PCTX_CONNECT, BYTES(0), &p), FY_MQTT_OK);
    assert_int_equal(p.present, 0);

    /* Every property round-trips, the size agrees, drop_optional removes what may go. */
    {
        fy_slice up[4] = {sl("a"), sl("1"), sl("b"), sl("2")};
        fy_mqtt_props q;
        memset(&p, 0, sizeof(p));
        p.present =
            FY_MQTT_PBIT(FY_MQTT_P_SESSION_EXPIRY) | FY_MQTT_PBIT(FY_MQTT_P_AUTH_METHOD) |
            FY_MQTT_PBIT(FY_MQTT_P_AUTH_DATA) | FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING) |
            FY_MQTT_PBIT(FY_MQTT_P_USER_PROPERTY) | FY_MQTT_PBIT(FY_MQTT_P_SERVER_KEEP_ALIVE) |
            FY_MQTT_PBIT(FY_MQTT_P_TOPIC_ALIAS_MAXIMUM) | FY_MQTT_PBIT(FY_MQTT_P_RETAIN_AVAILABLE) |
            FY_MQTT_PBIT(FY_MQTT_P_SHARED_SUB_AVAILABLE) |
            FY_MQTT_PBIT(FY_MQTT_P_SERVER_REFERENCE) | FY_MQTT_PBIT(FY_MQTT_P_RESPONSE_INFO);
        p.session_expiry = 0xffffffffu;
        p.auth_method = sl("PLAIN");
        p.auth_data = sl("\x01\x02");
        p.reason_string = sl("because");
        p.user_props = up;
        p.n_user_props = 2;
        p.server_keep_alive = 45;
        p.topic_alias_maximum = 10;
        p.retain_available = 1;
        p.shared_sub_available = 0;
        p.server_reference = sl("host:1883");
        p.response_info = sl("r/");
        assert_int_equal(fy_mqtt_props_encode(&b, &p), FY_OK);
        assert_int_equal(b.len, fy_mqtt_props_block_size(&p));
        assert_int_equal(props_rc(FY_MQTT_PCTX_CONNACK, b.data, b.len, &q), FY_MQTT_OK);
        assert_int_equal(q.present, p.present);
        assert_int_equal(q.session_expiry, 0xffffffffu);
        assert_slice_str(q.auth_method, "PLAIN");
        assert_int_equal(q.auth_data.len, 2);
        assert_slice_str(q.reason_string, "because");
        assert_int_equal(q.server_keep_alive, 45);
        assert_int_equal(q.topic_alias_maximum, 10);
        assert_int_equal(q.retain_available, 1);
        assert_slice_str(q.server_reference, "host:1883");
        assert_slice_str(q.response_info, "r/");
        assert_int_equal(q.n_user_props, 2);
        {
            fy_mqtt_prop_iter it = fy_mqtt_user_props(&q);
            fy_slice k, v;
            assert_true(fy_mqtt_user_prop_next(&it, &k, &v));
            assert_slice_str(k, "a");
            assert_slice_str(v, "1");
            assert_true(fy_mqtt_user_prop_next(&it, &k, &v));
            assert_slice_str(k, "b");
            assert_slice_str(v, "2");
            assert_false(fy_mqtt_user_prop_next(&it, &k, &v));
        }
        /* A decoded block re-encodes from its raw user properties. */
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_props_encode(&b, &q), FY_OK);
        assert_int_equal(b.len, fy_mqtt_props_block_size(&p));
        fy_mqtt_props_drop_optional(&q);
        assert_false(fy_mqtt_props_has(&q, FY_MQTT_P_REASON_STRING));
        assert_false(fy_mqtt_props_has(&q, FY_MQTT_P_USER_PROPERTY));
        assert_int_equal(fy_mqtt_props_size(&q), fy_mqtt_props_size(&p) - (3 + 7) - 2 * (5 + 2));
        /* Strings too long to encode. */
        p.reason_string.len = 70000;
        assert_int_equal(fy_mqtt_props_size(&p), SIZE_MAX);
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_props_encode(&b, &p), -FY_EINVAL);
        assert_int_equal(b.len, 0);
    }
    assert_int_equal(fy_mqtt_props_block_size(NULL), 1);
    fy_buf_free(&b);
}

/* ---- SUBSCRIBE family ---------------------------------------------------------------------- */

static void test_mqtt_codec_subscribe(void **state)
{
    fy_mqtt_subscribe s, t;
    fy_mqtt_sub_entry e;
    fy_mqtt_sub_iter it;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;

    /* 3.1.1: two entries. */
    fy_buf_put_u16(&b, 10);
    put_s(&b, "a/+");
    fy_buf_put_u8(&b, 1);
    put_s(&b, "b/#");
    fy_buf_put_u8(&b, 2);
    h = frame_body(0x82, &b);
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_OK);
    assert_int_equal(s.packet_id, 10);
    assert_int_equal(s.count, 2);
    it = fy_mqtt_sub_entries(&s);
    assert_true(fy_mqtt_sub_next(&it, &e));
    assert_slice_str(e.filter, "a/+");
    assert_int_equal(e.qos, 1);
    assert_true(fy_mqtt_sub_next(&it, &e));
    assert_slice_str(e.filter, "b/#");
    assert_int_equal(e.qos, 2);
    assert_false(fy_mqtt_sub_next(&it, &e));

    /* Options: 3.1.1 allows only the QoS bits. */
    h = frame(BYTES(0x82, 0x06, 0, 1, 0, 1, 't', 0x04));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x82, 0x06, 0, 1, 0, 1, 't', 0x03));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x82, 0x07, 0, 1, 0, 0, 1, 't', 0x2d));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &s, NULL), FY_MQTT_OK);
    it = fy_mqtt_sub_entries(&s);
    assert_true(fy_mqtt_sub_next(&it, &e));
    assert_int_equal(e.qos, 1);
    assert_true(e.no_local);
    assert_true(e.retain_as_published);
    assert_int_equal(e.retain_handling, 2);
    h = frame(BYTES(0x82, 0x07, 0, 1, 0, 0, 1, 't', 0x30));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &s, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x82, 0x07, 0, 1, 0, 0, 1, 't', 0x40));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &s, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x82, 0x07, 0, 1, 0, 0, 1, 't', 0x80));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &s, NULL), FY_MQTT_RC_MALFORMED);
    /* Missing options byte, no entries, packet id 0, bad UTF-8. */
    h = frame(BYTES(0x82, 0x05, 0, 1, 0, 1, 't'));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0x82, 0x02, 0, 1));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x82, 0x03, 0, 1, 0));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &s, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x82, 0x06, 0, 0, 0, 1, 't', 0));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x82, 0x06, 0, 1, 0, 1, 0xfe, 0));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_RC_MALFORMED);
    /* An invalid filter is the caller's per-entry answer (0x8F), not a decode error. */
    h = frame(BYTES(0x82, 0x07, 0, 1, 0, 2, 'a', '#', 0));
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &s, NULL), FY_MQTT_OK);

    /* No Local on a shared subscription is a protocol error. */
    fy_buf_put_u16(&b, 3);
    fy_buf_put_u8(&b, 0);
    put_s(&b, "$share/g/a/b");
    fy_buf_put_u8(&b, 0x04);
    h = frame_body(0x82, &b);
    assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &s, NULL), FY_MQTT_RC_PROTOCOL_ERROR);

    /* Encode with a subscription identifier, decode, compare. */
    {
        fy_mqtt_sub_entry in[2] = {{sl("x/+/y"), 2, true, false, 1},
                                   {sl("$share/g/z"), 0, false, false, 0}};
        fy_mqtt_props p = {0};
        p.present = FY_MQTT_PBIT(FY_MQTT_P_SUBSCRIPTION_ID);
        p.sub_id = 268435455u;
        assert_int_equal(fy_mqtt_enc_subscribe(&b, 5, 77, &p, in, 2), FY_OK);
        h = frame(b.data, b.len);
        assert_int_equal(h.flags, 2);
        assert_int_equal(fy_mqtt_decode_subscribe(&h, 5, &t, NULL), FY_MQTT_OK);
        assert_int_equal(t.packet_id, 77);
        assert_int_equal(t.count, 2);
        assert_int_equal(t.props.sub_id, 268435455u);
        it = fy_mqtt_sub_entries(&t);
        assert_true(fy_mqtt_sub_next(&it, &e));
        assert_slice_str(e.filter, "x/+/y");
        assert_int_equal(e.qos, 2);
        assert_true(e.no_local);
        assert_false(e.retain_as_published);
        assert_int_equal(e.retain_handling, 1);
        assert_true(fy_mqtt_sub_next(&it, &e));
        assert_slice_str(e.filter, "$share/g/z");
        assert_false(fy_mqtt_sub_next(&it, &e));
        /* 3.1.1 writes only the QoS bits. */
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_subscribe(&b, 4, 77, &p, in, 2), FY_OK);
        h = frame(b.data, b.len);
        assert_int_equal(fy_mqtt_decode_subscribe(&h, 4, &t, NULL), FY_MQTT_OK);
        fy_buf_reset(&b);
        assert_int_equal(fy_mqtt_enc_subscribe(&b, 4, 77, NULL, in, 0), -FY_EINVAL);
    }
    fy_buf_free(&b);
}

static void test_mqtt_codec_unsubscribe_acks(void **state)
{
    fy_mqtt_subscribe s;
    fy_mqtt_suback a;
    fy_mqtt_sub_iter it;
    fy_mqtt_frame_hdr h;
    fy_slice f;
    fy_buf b = FY_BUF_INIT;
    fy_slice filters[2] = {sl("a/b"), sl("c/#")};

    assert_int_equal(fy_mqtt_enc_unsubscribe(&b, 4, 5, NULL, filters, 2), FY_OK);
    h = frame(b.data, b.len);
    assert_int_equal(h.flags, 2);
    assert_int_equal(fy_mqtt_decode_unsubscribe(&h, 4, &s, NULL), FY_MQTT_OK);
    assert_int_equal(s.count, 2);
    it = fy_mqtt_sub_entries(&s);
    assert_true(fy_mqtt_unsub_next(&it, &f));
    assert_slice_str(f, "a/b");
    assert_true(fy_mqtt_unsub_next(&it, &f));
    assert_slice_str(f, "c/#");
    assert_false(fy_mqtt_unsub_next(&it, &f));
    h = frame(BYTES(0xA2, 0x02, 0, 5));
    assert_int_equal(fy_mqtt_decode_unsubscribe(&h, 4, &s, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0xA2, 0x03, 0, 5, 0));
    assert_int_equal(fy_mqtt_decode_unsubscribe(&h, 5, &s, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0xA2, 0x06, 0, 5, 0, 0, 1, 'x'));
    assert_int_equal(fy_mqtt_decode_unsubscribe(&h, 5, &s, NULL), FY_MQTT_OK);
    /* A subscription identifier is not allowed in UNSUBSCRIBE. */
    h = frame(BYTES(0xA2, 0x08, 0, 5, 2, 0x0b, 1, 0, 1, 'x'));
    assert_int_equal(fy_mqtt_decode_unsubscribe(&h, 5, &s, NULL), FY_MQTT_RC_MALFORMED);

    /* SUBACK. */
    h = frame(BYTES(0x90, 0x05, 0, 9, 0, 1, 0x80));
    assert_int_equal(fy_mqtt_decode_suback(&h, 4, &a, NULL), FY_MQTT_OK);
    assert_int_equal(a.packet_id, 9);
    assert_int_equal(a.reasons.len, 3);
    h = frame(BYTES(0x90, 0x03, 0, 9, 0x8f));
    assert_int_equal(fy_mqtt_decode_suback(&h, 4, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0x90, 0x04, 0, 9, 0, 0x8f));
    assert_int_equal(fy_mqtt_decode_suback(&h, 5, &a, NULL), FY_MQTT_OK);
    h = frame(BYTES(0x90, 0x03, 0, 9, 0));
    assert_int_equal(fy_mqtt_decode_suback(&h, 5, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    fy_buf_reset(&b);
    memset(&a, 0, sizeof(a));
    a.packet_id = 9;
    a.reasons = sl("\x01\x80");
    assert_int_equal(fy_mqtt_enc_suback(&b, 4, &a, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0x90, 4, 0, 9, 1, 0x80}), 6);
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_suback(&b, 5, &a, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0x90, 5, 0, 9, 0, 1, 0x80}), 7);

    /* UNSUBACK: 3.1.1 has no payload, v5 one code per filter. */
    h = frame(BYTES(0xB0, 0x02, 0, 9));
    assert_int_equal(fy_mqtt_decode_suback(&h, 4, &a, NULL), FY_MQTT_OK);
    assert_int_equal(fy_mqtt_decode_suback(&h, 5, &a, NULL), FY_MQTT_RC_MALFORMED);
    h = frame(BYTES(0xB0, 0x03, 0, 9, 0));
    assert_int_equal(fy_mqtt_decode_suback(&h, 4, &a, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_decode_suback(&h, 5, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0xB0, 0x05, 0, 9, 0, 0x00, 0x11));
    assert_int_equal(fy_mqtt_decode_suback(&h, 5, &a, NULL), FY_MQTT_OK);
    h = frame(BYTES(0xB0, 0x04, 0, 9, 0, 0x01));
    assert_int_equal(fy_mqtt_decode_suback(&h, 5, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    fy_buf_reset(&b);
    a.reasons = sl("\x11");
    assert_int_equal(fy_mqtt_enc_unsuback(&b, 4, &a, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0xB0, 2, 0, 9}), 4);
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_unsuback(&b, 5, &a, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0xB0, 4, 0, 9, 0, 0x11}), 6);
    fy_buf_free(&b);
}

/* ---- Control packets ----------------------------------------------------------------------- */

static void test_mqtt_codec_control(void **state)
{
    fy_mqtt_disconnect d;
    fy_mqtt_auth a;
    fy_mqtt_frame_hdr h;
    fy_buf b = FY_BUF_INIT;

    fy_mqtt_enc_pingreq(&b);
    fy_mqtt_enc_pingresp(&b);
    assert_memory_equal(b.data, ((const uint8_t[]){0xC0, 0, 0xD0, 0}), 4);
    h = frame(b.data, 2);
    assert_int_equal(fy_mqtt_decode_ping(&h, NULL), FY_MQTT_OK);
    h = frame(BYTES(0xD0, 0x01, 0));
    assert_int_equal(fy_mqtt_decode_ping(&h, NULL), FY_MQTT_RC_MALFORMED);

    h = frame(BYTES(0xE0, 0x00));
    for (int v = 3; v <= 5; v++) {
        assert_int_equal(fy_mqtt_decode_disconnect(&h, v, &d, NULL), FY_MQTT_OK);
        assert_int_equal(d.reason, 0);
    }
    h = frame(BYTES(0xE0, 0x01, 0x04));
    assert_int_equal(fy_mqtt_decode_disconnect(&h, 4, &d, NULL), FY_MQTT_RC_MALFORMED);
    assert_int_equal(fy_mqtt_decode_disconnect(&h, 5, &d, NULL), FY_MQTT_OK);
    assert_int_equal(d.reason, FY_MQTT_RC_DISCONNECT_WITH_WILL);
    h = frame(BYTES(0xE0, 0x01, 0x10));
    assert_int_equal(fy_mqtt_decode_disconnect(&h, 5, &d, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0xE0, 0x07, 0x8b, 5, 0x11, 0, 0, 0, 9));
    assert_int_equal(fy_mqtt_decode_disconnect(&h, 5, &d, NULL), FY_MQTT_OK);
    assert_int_equal(d.props.session_expiry, 9);
    h = frame(BYTES(0xE0, 0x04, 0x8b, 2, 0x23, 0));
    assert_int_equal(fy_mqtt_decode_disconnect(&h, 5, &d, NULL), FY_MQTT_RC_MALFORMED);

    fy_buf_reset(&b);
    memset(&d, 0, sizeof(d));
    assert_int_equal(fy_mqtt_enc_disconnect(&b, 5, &d, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0xE0, 0}), 2);
    fy_buf_reset(&b);
    d.reason = FY_MQTT_RC_SERVER_SHUTTING_DOWN;
    assert_int_equal(fy_mqtt_enc_disconnect(&b, 5, &d, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0xE0, 1, 0x8b}), 3);
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_disconnect(&b, 4, &d, 0), FY_OK);
    assert_memory_equal(b.data, ((const uint8_t[]){0xE0, 0}), 2);

    /* AUTH: MQTT 5 only. */
    h = frame(BYTES(0xF0, 0x00));
    assert_int_equal(fy_mqtt_decode_auth(&h, 4, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    assert_int_equal(fy_mqtt_decode_auth(&h, 5, &a, NULL), FY_MQTT_OK);
    h = frame(BYTES(0xF0, 0x01, 0x01));
    assert_int_equal(fy_mqtt_decode_auth(&h, 5, &a, NULL), FY_MQTT_RC_PROTOCOL_ERROR);
    h = frame(BYTES(0xF0, 0x0b, 0x18, 9, 0x15, 0, 2, 'M', 'x', 0x16, 0, 1, 'd'));
    assert_int_equal(fy_mqtt_decode_auth(&h, 5, &a, NULL), FY_MQTT_OK);
    assert_int_equal(a.reason, FY_MQTT_RC_CONTINUE_AUTH);
    assert_slice_str(a.props.auth_method, "Mx");
    assert_slice_str(a.props.auth_data, "d");
    fy_buf_reset(&b);
    assert_int_equal(fy_mqtt_enc_auth(&b, 5, &a, 0), FY_OK);
    assert_int_equal(b.len, h.hdr_len + h.remaining);
    assert_memory_equal(b.data, h.body.p - h.hdr_len, b.len);
    assert_int_equal(fy_mqtt_enc_auth(&b, 4, &a, 0), -FY_EINVAL);
    fy_buf_free(&b);
}

/* Names for log lines. */
static void test_mqtt_codec_names(void **state)
{
    assert_string_equal(fy_mqtt_type_name(FY_MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(fy_mqtt_type_name(FY_MQTT_AUTH), "AUTH");
    assert_string_equal(fy_mqtt_type_name(99), "UNKNOWN");
    assert_string_equal(fy_mqtt_reason_name(0x81), "Malformed Packet");
    assert_string_equal(fy_mqtt_reason_name(0x95), "Packet too large");
    assert_string_equal(fy_mqtt_reason_name(0x7f), "Unknown reason code");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mqtt_codec_frame, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_vbi, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_utf8, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_connect_v311, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_connect_v31_v5, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_connect_errors, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_connack, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_publish, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_publish_head, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_ack, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_props, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_subscribe, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_unsubscribe_acks, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_control, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_codec_names, teardown_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
