/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the durable MQTT session record (mqtt_session_rec.h): round trip (with and
 * without a will waiting for its delay), records of older ferryd versions (no disconnect time, no
 * will) and of later ones (more fields), every cut, and when a session loaded at start-up counts
 * as disconnected, expires and has its will due. Inputs are exactly-sized heap copies so ASan
 * sees any over-read. */
#include "adapters/mqtt/mqtt_session_rec.h"

#include "ferry/errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

#define NOW_WALL 1800000000000ull /* 2027-01-15 */
#define NOW_MONO 5000000ull

/* A record as ferryd wrote it before disconnect times were stored: expiry 60 s, one subscription
 * "a/#" (QoS 1, No Local, Retain As Published, Retain Handling 2, identifier 7, created
 * 1700000000000). */
static const uint8_t old_record[] = {
    0x01,                                           /* version */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xea, 0x60, /* expiry_ms 60000 */
    0x00, 0x01,                                     /* one subscription */
    0x00, 0x03, 'a',  '/',  '#',                    /* filter */
    0x2d,                                           /* 1 | 1 << 2 | 1 << 3 | 2 << 4 */
    0x00, 0x00, 0x00, 0x07,                         /* identifier */
    0x00, 0x00, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, /* created_ms 1700000000000 */
};

/* An exactly-sized heap copy of n bytes of p. */
static uint8_t *copy(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    memcpy(c, p, n);
    return c;
}

static fy_slice S(const char *s)
{
    fy_slice r = {(const uint8_t *)s, strlen(s)};
    return r;
}

static void encode_two(fy_buf *out, uint64_t disconnected_ms)
{
    fy_mqtt_srec_sub a = {S("devices/+/cmd"), 2, false, false, 0, 0, 1700000000001ull};
    fy_mqtt_srec_sub b = {S("$share/g/x/#"), 1, true, true, 1, 268435455, 1700000000002ull};
    fy_mqtt_srec_begin(out, 3600000, 2);
    fy_mqtt_srec_put_sub(out, &a);
    fy_mqtt_srec_put_sub(out, &b);
    fy_mqtt_srec_end(out, disconnected_ms);
}

static void assert_slice(fy_slice got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    assert_memory_equal(got.p, want, got.len);
}

/* A will as stored: its record is opaque to the session record (any bytes). */
#define WILL_REC "\xf7 a will's message record"

static void put_will(fy_buf *out, uint64_t delay_ms, uint8_t qos, bool retain, const char *rec)
{
    fy_mqtt_srec_will w = {delay_ms, qos, retain, S(rec)};
    fy_mqtt_srec_put_will(out, &w);
}

static void test_mqtt_session_rec_roundtrip(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_srec r;
    fy_mqtt_srec_sub sub;
    uint8_t *v;

    encode_two(&b, NOW_WALL - 5000);
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), FY_OK);
    assert_int_equal(r.expiry_ms, 3600000);
    assert_int_equal(r.nsubs, 2);
    assert_false(r.cut);
    assert_true(r.dated);
    assert_int_equal(r.disconnected_ms, NOW_WALL - 5000);

    assert_true(fy_mqtt_srec_next_sub(&r, &sub));
    assert_slice(sub.filter, "devices/+/cmd");
    assert_int_equal(sub.qos, 2);
    assert_false(sub.no_local);
    assert_false(sub.rap);
    assert_int_equal(sub.rh, 0);
    assert_int_equal(sub.sub_id, 0);
    assert_int_equal(sub.created_ms, 1700000000001ull);
    assert_true(fy_mqtt_srec_next_sub(&r, &sub));
    assert_slice(sub.filter, "$share/g/x/#");
    assert_int_equal(sub.qos, 1);
    assert_true(sub.no_local);
    assert_true(sub.rap);
    assert_int_equal(sub.rh, 1);
    assert_int_equal(sub.sub_id, 268435455);
    assert_int_equal(sub.created_ms, 1700000000002ull);
    assert_false(fy_mqtt_srec_next_sub(&r, &sub));
    assert_false(fy_mqtt_srec_next_sub(&r, &sub));
    assert_false(r.has_will);
    assert_false(r.will_cut);
    free(v);

    /* Connected when written: 0. */
    fy_buf_reset(&b);
    encode_two(&b, 0);
    assert_int_equal(fy_mqtt_srec_decode(b.data, b.len, &r), FY_OK);
    assert_true(r.dated);
    assert_int_equal(r.disconnected_ms, 0);
    assert_false(r.has_will);
    fy_buf_free(&b);
}

static void test_mqtt_session_rec_will_roundtrip(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_srec r;
    fy_mqtt_srec_sub sub;
    size_t plain;
    uint8_t *v;

    encode_two(&b, NOW_WALL - 5000);
    plain = b.len;
    put_will(&b, 4000, 2, true, WILL_REC);
    /* The will follows the record as it was: delay, options, length, record. */
    assert_int_equal(b.len, plain + 8 + 1 + 4 + strlen(WILL_REC));
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), FY_OK);
    assert_false(r.cut);
    assert_true(r.dated);
    assert_int_equal(r.disconnected_ms, NOW_WALL - 5000);
    assert_true(r.has_will);
    assert_false(r.will_cut);
    assert_int_equal(r.will.delay_ms, 4000);
    assert_int_equal(r.will.qos, 2);
    assert_true(r.will.retain);
    assert_slice(r.will.rec, WILL_REC);
    /* The subscriptions read as before. */
    assert_int_equal(r.nsubs, 2);
    assert_true(fy_mqtt_srec_next_sub(&r, &sub));
    assert_slice(sub.filter, "devices/+/cmd");
    assert_true(fy_mqtt_srec_next_sub(&r, &sub));
    assert_slice(sub.filter, "$share/g/x/#");
    assert_int_equal(sub.sub_id, 268435455);
    assert_false(fy_mqtt_srec_next_sub(&r, &sub));
    free(v);

    /* QoS 0, not retained, the longest delay. */
    fy_buf_reset(&b);
    encode_two(&b, NOW_WALL);
    put_will(&b, UINT32_MAX * 1000ull, 0, false, "x");
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), FY_OK);
    assert_true(r.has_will);
    assert_int_equal(r.will.delay_ms, UINT32_MAX * 1000ull);
    assert_int_equal(r.will.qos, 0);
    assert_false(r.will.retain);
    assert_slice(r.will.rec, "x");
    free(v);
    fy_buf_free(&b);
}

static void test_mqtt_session_rec_old_format(void **state)
{
    uint8_t *v = copy(old_record, sizeof(old_record));
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_srec r;
    fy_mqtt_srec_sub sub;
    fy_mqtt_srec_sub same;

    /* A record of an older ferryd loads, with no disconnect time. */
    assert_int_equal(fy_mqtt_srec_decode(v, sizeof(old_record), &r), FY_OK);
    assert_int_equal(r.expiry_ms, 60000);
    assert_int_equal(r.nsubs, 1);
    assert_false(r.cut);
    assert_false(r.dated);
    assert_true(fy_mqtt_srec_next_sub(&r, &sub));
    assert_slice(sub.filter, "a/#");
    assert_int_equal(sub.qos, 1);
    assert_true(sub.no_local);
    assert_true(sub.rap);
    assert_int_equal(sub.rh, 2);
    assert_int_equal(sub.sub_id, 7);
    assert_int_equal(sub.created_ms, 1700000000000ull);
    assert_false(fy_mqtt_srec_next_sub(&r, &sub));

    assert_false(r.has_will);
    assert_false(r.will_cut);

    /* Its clock starts at start-up, as it did, whatever the alive time says. */
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 30000, NOW_WALL), NOW_WALL);
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, 0, NOW_WALL), NOW_WALL);
    assert_int_equal(fy_mqtt_session_expire_at(r.expiry_ms, NOW_WALL, NOW_WALL, NOW_MONO),
                     NOW_MONO + 60000);

    /* The new encoding is the old one plus disconnected_ms: an older ferryd reads it as its own
     * (it stops after the subscriptions). */
    same = sub;
    fy_mqtt_srec_begin(&b, 60000, 1);
    fy_mqtt_srec_put_sub(&b, &same);
    fy_mqtt_srec_end(&b, NOW_WALL);
    assert_int_equal(b.len, sizeof(old_record) + 8);
    assert_memory_equal(b.data, old_record, sizeof(old_record));
    free(v);

    /* A record of the version before wills (it ends after disconnected_ms) has none; and one
     * with a will is that record plus the will (an older ferryd ignores it). */
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), FY_OK);
    assert_true(r.dated);
    assert_int_equal(r.disconnected_ms, NOW_WALL);
    assert_false(r.has_will);
    assert_false(r.will_cut);
    free(v);
    put_will(&b, 1000, 1, false, WILL_REC);
    assert_memory_equal(b.data, old_record, sizeof(old_record));
    fy_buf_free(&b);
}

static void test_mqtt_session_rec_later_fields(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_srec r;
    uint8_t *v;

    /* A field of a later version after a will, and after an empty one (no will). */
    encode_two(&b, NOW_WALL - 1);
    put_will(&b, 3000, 1, true, WILL_REC);
    fy_buf_put_u32(&b, 0xdeadbeef);
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), FY_OK);
    assert_false(r.cut);
    assert_true(r.dated);
    assert_int_equal(r.disconnected_ms, NOW_WALL - 1);
    assert_int_equal(r.nsubs, 2);
    assert_true(r.has_will);
    assert_int_equal(r.will.delay_ms, 3000);
    assert_slice(r.will.rec, WILL_REC);
    free(v);
    fy_buf_reset(&b);
    encode_two(&b, NOW_WALL - 1);
    put_will(&b, 0, 0, false, "");
    fy_buf_put_u32(&b, 0xdeadbeef);
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), FY_OK);
    assert_false(r.cut);
    assert_true(r.dated);
    assert_int_equal(r.disconnected_ms, NOW_WALL - 1);
    assert_int_equal(r.nsubs, 2);
    assert_false(r.has_will);
    assert_false(r.will_cut);
    free(v);

    /* Another version is not ours to read. */
    b.data[0] = 2;
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_srec_decode(v, b.len, &r), -FY_EVERSION);
    free(v);
    fy_buf_free(&b);
}

/* Every cut of a record decodes in bounds: the whole subscriptions before the cut, a disconnect
 * time only when all eight bytes are there, a will only when all of it is there (cut inside it,
 * it is lost, and said to be). */
static void test_mqtt_session_rec_cut(void **state)
{
    fy_buf b = FY_BUF_INIT;
    size_t first_end, subs_end, will_at;

    encode_two(&b, NOW_WALL);
    subs_end = b.len - 8;
    will_at = b.len;
    put_will(&b, 4000, 1, false, WILL_REC);
    first_end = 1 + 8 + 2 + 2 + strlen("devices/+/cmd") + 1 + 4 + 8;
    assert_int_equal(fy_mqtt_srec_decode(b.data, 0, &(fy_mqtt_srec){0}), -FY_EVERSION);
    for (size_t n = 1; n <= b.len; n++) {
        uint8_t *v = copy(b.data, n);
        fy_mqtt_srec r;
        fy_mqtt_srec_sub sub;
        uint16_t got = 0;
        assert_int_equal(fy_mqtt_srec_decode(v, n, &r), FY_OK);
        while (fy_mqtt_srec_next_sub(&r, &sub)) {
            got++;
        }
        assert_int_equal(got, r.nsubs);
        assert_int_equal(r.cut, n < subs_end);
        assert_int_equal(r.dated, n >= will_at);
        assert_int_equal(r.has_will, n == b.len);
        assert_int_equal(r.will_cut, n > will_at && n < b.len);
        if (r.has_will) {
            assert_slice(r.will.rec, WILL_REC);
        }
        assert_int_equal(r.nsubs, n < first_end ? 0 : n < subs_end ? 1 : 2);
        assert_int_equal(r.expiry_ms, n < 9 ? 0 : 3600000);
        if (r.cut || !r.dated) {
            /* Not dated: its clock starts at start-up. */
            assert_int_equal(fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 1000, NOW_WALL), NOW_WALL);
        }
        free(v);
    }
    fy_buf_free(&b);
}

static void test_mqtt_session_rec_disconnected_at(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_srec r;

    /* Disconnected before the broker stopped: its own time. */
    encode_two(&b, NOW_WALL - 50000);
    assert_int_equal(fy_mqtt_srec_decode(b.data, b.len, &r), FY_OK);
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 10, NOW_WALL), NOW_WALL - 50000);
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, 0, NOW_WALL), NOW_WALL - 50000);
    /* A time after now (the wall clock was set back): now. */
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, 0, NOW_WALL - 60000), NOW_WALL - 60000);

    /* Connected when the broker was killed: the last alive time plus the most it can be behind. */
    fy_buf_reset(&b);
    encode_two(&b, 0);
    assert_int_equal(fy_mqtt_srec_decode(b.data, b.len, &r), FY_OK);
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 3600000, NOW_WALL),
                     NOW_WALL - 3600000 + FY_MQTT_ALIVE_EVERY_MS);
    /* ... but never after now: a quick restart counts from now. */
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 2000, NOW_WALL), NOW_WALL);
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, NOW_WALL + 86400000, NOW_WALL), NOW_WALL);
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, UINT64_MAX, NOW_WALL), NOW_WALL);
    /* No alive time stored (a store of an older ferryd): from now. */
    assert_int_equal(fy_mqtt_srec_disconnected_at(&r, 0, NOW_WALL), NOW_WALL);
    fy_buf_free(&b);
}

static void test_mqtt_session_rec_expire_at(void **state)
{
    /* Never. */
    assert_int_equal(fy_mqtt_session_expire_at(UINT64_MAX, NOW_WALL - 1, NOW_WALL, NOW_MONO),
                     UINT64_MAX);
    assert_int_equal(fy_mqtt_session_expire_at(UINT64_MAX, 1, NOW_WALL, NOW_MONO), UINT64_MAX);
    /* Disconnected 50 s ago with 60 s: 10 s left. */
    assert_int_equal(fy_mqtt_session_expire_at(60000, NOW_WALL - 50000, NOW_WALL, NOW_MONO),
                     NOW_MONO + 10000);
    /* Ran out while the broker was down, or exactly now: expired. */
    assert_int_equal(fy_mqtt_session_expire_at(60000, NOW_WALL - 70000, NOW_WALL, NOW_MONO),
                     NOW_MONO);
    assert_int_equal(fy_mqtt_session_expire_at(60000, NOW_WALL - 60000, NOW_WALL, NOW_MONO),
                     NOW_MONO);
    assert_int_equal(fy_mqtt_session_expire_at(0, NOW_WALL, NOW_WALL, NOW_MONO), NOW_MONO);
    assert_int_equal(fy_mqtt_session_expire_at(60000, 0, NOW_WALL, NOW_MONO), NOW_MONO);
    /* A disconnect time in the future counts as now: the whole interval. */
    assert_int_equal(fy_mqtt_session_expire_at(60000, NOW_WALL + 3600000, NOW_WALL, NOW_MONO),
                     NOW_MONO + 60000);
    /* The largest intervals (session_expiry_max up to UINT64_MAX / 2) do not wrap. */
    assert_int_equal(fy_mqtt_session_expire_at(UINT64_MAX / 2, NOW_WALL - 1, NOW_WALL, NOW_MONO),
                     NOW_MONO + UINT64_MAX / 2 - 1);
    assert_int_equal(fy_mqtt_session_expire_at(UINT64_MAX - 1, NOW_WALL, NOW_WALL, UINT64_MAX / 2),
                     UINT64_MAX - 1);
}

/* A will is due its delay after the disconnect, that moment taken as for the expiry: its own
 * time, the alive time plus FY_MQTT_ALIVE_EVERY_MS after a crash, never later than now. */
static void test_mqtt_session_rec_will_due(void **state)
{
    fy_buf b = FY_BUF_INIT;
    fy_mqtt_srec r;
    uint64_t at;

    /* Disconnected 1 s before the restart with a 4 s delay: due in 3 s. */
    encode_two(&b, NOW_WALL - 1000);
    put_will(&b, 4000, 1, false, WILL_REC);
    assert_int_equal(fy_mqtt_srec_decode(b.data, b.len, &r), FY_OK);
    at = fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 5000, NOW_WALL);
    assert_int_equal(fy_mqtt_session_expire_at(r.will.delay_ms, at, NOW_WALL, NOW_MONO),
                     NOW_MONO + 3000);
    /* The delay passed while the broker was down: due at start-up. */
    at = fy_mqtt_srec_disconnected_at(&r, 0, NOW_WALL + 60000);
    assert_int_equal(fy_mqtt_session_expire_at(r.will.delay_ms, at, NOW_WALL + 60000, NOW_MONO),
                     NOW_MONO);
    /* The clock was set back since: the disconnect counts as now, the whole delay is left. */
    at = fy_mqtt_srec_disconnected_at(&r, 0, NOW_WALL - 3600000);
    assert_int_equal(fy_mqtt_session_expire_at(r.will.delay_ms, at, NOW_WALL - 3600000, NOW_MONO),
                     NOW_MONO + 4000);

    /* A record saying connected (a crash): the alive time rule. */
    fy_buf_reset(&b);
    encode_two(&b, 0);
    put_will(&b, 30000, 1, false, WILL_REC);
    assert_int_equal(fy_mqtt_srec_decode(b.data, b.len, &r), FY_OK);
    assert_true(r.has_will);
    at = fy_mqtt_srec_disconnected_at(&r, NOW_WALL - 25000, NOW_WALL);
    assert_int_equal(at, NOW_WALL - 25000 + FY_MQTT_ALIVE_EVERY_MS);
    assert_int_equal(fy_mqtt_session_expire_at(r.will.delay_ms, at, NOW_WALL, NOW_MONO),
                     NOW_MONO + 30000 - 25000 + FY_MQTT_ALIVE_EVERY_MS);
    fy_buf_free(&b);
}

static void test_mqtt_session_rec_alive(void **state)
{
    fy_buf b = FY_BUF_INIT;
    uint64_t at = 0;
    uint8_t *v;

    fy_mqtt_alive_encode(&b, NOW_WALL);
    assert_int_equal(b.len, 8);
    v = copy(b.data, b.len);
    assert_int_equal(fy_mqtt_alive_decode(v, b.len, &at), FY_OK);
    assert_int_equal(at, NOW_WALL);
    free(v);
    for (size_t n = 0; n < 8; n++) {
        v = copy(b.data, n);
        assert_int_equal(fy_mqtt_alive_decode(v, n, &at), -FY_ECORRUPT);
        free(v);
    }
    fy_buf_free(&b);
}

/* The alive record is written at the ninth one-second tick after the last write, however late
 * (up to 499 ms) each tick comes: never a whole tick later, so two writes are at most
 * FY_MQTT_ALIVE_EVERY_MS apart. A ninth tick a millisecond less late than the one of the last
 * write is less than 9000 ms after it by the clock: it must still write. */
static void test_mqtt_session_rec_alive_due(void **state)
{
    static const uint64_t late[] = {0, 1, 3, 250, 498, 499};
    const size_t n = sizeof(late) / sizeof(late[0]);
    const uint64_t t0 = NOW_MONO;
    assert_true(fy_mqtt_alive_due(false, 0, t0));
    for (size_t a = 0; a < n; a++) {
        for (size_t b = 0; b < n; b++) {
            uint64_t wrote = t0 + late[a];
            for (uint64_t tick = 1; tick <= 8; tick++) {
                assert_false(fy_mqtt_alive_due(true, wrote, t0 + tick * 1000 + late[b]));
            }
            assert_true(fy_mqtt_alive_due(true, wrote, t0 + 9000 + late[b]));
            assert_true(t0 + 9000 + late[b] - wrote <= FY_MQTT_ALIVE_EVERY_MS);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mqtt_session_rec_roundtrip),
        cmocka_unit_test(test_mqtt_session_rec_will_roundtrip),
        cmocka_unit_test(test_mqtt_session_rec_old_format),
        cmocka_unit_test(test_mqtt_session_rec_later_fields),
        cmocka_unit_test(test_mqtt_session_rec_cut),
        cmocka_unit_test(test_mqtt_session_rec_disconnected_at),
        cmocka_unit_test(test_mqtt_session_rec_expire_at),
        cmocka_unit_test(test_mqtt_session_rec_will_due),
        cmocka_unit_test(test_mqtt_session_rec_alive),
        cmocka_unit_test(test_mqtt_session_rec_alive_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
