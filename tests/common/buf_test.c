/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the small common pieces: byte buffers and their big-endian writers, the
 * bounds-checked reader, the uint64 map, the error names and texts, and the logfmt logger
 * (level parsing, the line shape, and dropping lines below the level). */
#include "common/buf.h"
#include "common/log.h"
#include "common/u64map.h"

#include "ferry/errors.h"

#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

static void test_buf_reserve_and_append(void **state)
{
    fy_buf b = FY_BUF_INIT;
    uint8_t *p;

    fy_buf_append(&b, "", 0); /* nothing to do, nothing allocated */
    assert_int_equal(b.len, 0);

    p = fy_buf_reserve(&b, 10);
    assert_non_null(p);
    assert_true(b.cap >= 10);
    assert_int_equal(b.len, 0); /* reserve does not grow len */
    memcpy(p, "0123456789", 10);
    b.len += 10;

    /* Growing past the capacity keeps the bytes already there. */
    for (int i = 0; i < 1000; i++) {
        fy_buf_append(&b, "abc", 3);
    }
    assert_int_equal(b.len, 10 + 3000);
    assert_true(b.cap >= b.len);
    assert_memory_equal(b.data, "0123456789", 10);
    for (int i = 0; i < 1000; i++) {
        assert_memory_equal(b.data + 10 + 3 * i, "abc", 3);
    }

    /* A reserve that fits returns the end of the data and keeps the memory. */
    size_t cap = b.cap;
    uint8_t *data = b.data;
    if (cap > b.len) {
        assert_ptr_equal(fy_buf_reserve(&b, cap - b.len), data + b.len);
        assert_int_equal(b.cap, cap);
    }

    fy_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap);
    assert_ptr_equal(b.data, data);

    fy_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    fy_buf_append(&b, "x", 1); /* reusable after free */
    assert_int_equal(b.len, 1);
    assert_int_equal(b.data[0], 'x');
    fy_buf_free(&b);
    fy_buf_free(&b); /* freeing an empty buffer is fine */
}

static void test_buf_put_big_endian(void **state)
{
    static const uint8_t want[] = {
        0xAB,                                           /* u8 */
        0x12, 0x34,                                     /* u16 */
        0xDE, 0xAD, 0xBE, 0xEF,                         /* u32 */
        0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, /* u64 */
        0xFF, 0xFE,                                     /* u16, high bit set */
    };
    fy_buf b = FY_BUF_INIT;

    fy_buf_put_u8(&b, 0xAB);
    fy_buf_put_u16(&b, 0x1234);
    fy_buf_put_u32(&b, 0xDEADBEEFu);
    fy_buf_put_u64(&b, 0x0123456789ABCDEFull);
    fy_buf_put_u16(&b, 0xFFFE);
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));

    /* The getters read back what the putters wrote. */
    assert_int_equal(fy_be16_get(b.data + 1), 0x1234);
    assert_int_equal(fy_be32_get(b.data + 3), 0xDEADBEEFu);
    assert_int_equal(fy_be64_get(b.data + 7), 0x0123456789ABCDEFull);
    assert_int_equal(fy_be16_get(b.data + 15), 0xFFFE);

    uint8_t raw[8];
    fy_be64_put(raw, 0x8000000000000001ull);
    assert_memory_equal(raw, "\x80\0\0\0\0\0\0\x01", 8);
    fy_be32_put(raw, 0x80000001u);
    assert_memory_equal(raw, "\x80\0\0\x01", 4);
    fy_buf_free(&b);
}

static void test_buf_reader_reads_in_order(void **state)
{
    static const uint8_t in[] = {0x7F, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x23,
                                 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 'x',  'y'};
    fy_rd rd = fy_rd_make(in, sizeof(in));

    assert_int_equal(fy_rd_u8(&rd), 0x7F);
    assert_int_equal(fy_rd_u16(&rd), 0x1234);
    assert_int_equal(fy_rd_u32(&rd), 0xDEADBEEFu);
    assert_int_equal(fy_rd_u64(&rd), 0x0123456789ABCDEFull);
    const uint8_t *p = fy_rd_take(&rd, 2);
    assert_ptr_equal(p, in + 15);
    assert_int_equal(rd.left, 0);
    assert_false(rd.bad);
    assert_non_null(fy_rd_take(&rd, 0)); /* taking nothing at the end is fine */
    assert_false(rd.bad);
}

/* A short read yields zeros or NULL, sets bad, and every later read fails too, even one that
 * would fit the bytes left. */
static void test_buf_reader_short_read_is_sticky(void **state)
{
    static const uint8_t in[] = {0xFF, 0xFF, 0xFF};
    fy_rd rd;

    rd = fy_rd_make(in, sizeof(in));
    assert_int_equal(fy_rd_u32(&rd), 0);
    assert_true(rd.bad);
    assert_int_equal(rd.left, 3); /* nothing consumed */
    assert_int_equal(fy_rd_u8(&rd), 0);
    assert_int_equal(fy_rd_u16(&rd), 0);
    assert_null(fy_rd_take(&rd, 0));
    assert_true(rd.bad);

    rd = fy_rd_make(in, sizeof(in));
    assert_int_equal(fy_rd_u16(&rd), 0xFFFF);
    assert_false(rd.bad);
    assert_int_equal(fy_rd_u16(&rd), 0);
    assert_true(rd.bad);
    assert_int_equal(fy_rd_u8(&rd), 0); /* one byte is left, but the reader is bad */

    rd = fy_rd_make(in, sizeof(in));
    assert_int_equal(fy_rd_u64(&rd), 0);
    assert_true(rd.bad);

    rd = fy_rd_make(in, sizeof(in));
    assert_null(fy_rd_take(&rd, SIZE_MAX));
    assert_true(rd.bad);

    rd = fy_rd_make(NULL, 0);
    assert_int_equal(fy_rd_u8(&rd), 0);
    assert_true(rd.bad);
}

/* A key pattern that mixes high and low bits, as (topic << 32 | queue) keys do. */
static uint64_t map_key(uint64_t i)
{
    return (i % 100) << 32 | (i / 100) | (i & 1) << 63;
}

static void sum_entry(void *arg, uint64_t key, uint64_t val)
{
    uint64_t *sums = arg;
    sums[0] += 1;
    sums[1] += val;
    if (val != (key ^ 0x5555u)) {
        sums[2] += 1; /* a value stored under the wrong key */
    }
}

/* Deletes and re-inserts packet-id-like keys at random against a plain array as the truth. */
static void test_buf_u64map_delete(void **state)
{
    enum { KEYS = 3000, STEPS = 200000 };
    static uint8_t in[KEYS];
    fy_u64map m = FY_U64MAP_INIT;
    uint64_t x = 88172645463325252ull;
    size_t n = 0;
    memset(in, 0, sizeof(in));
    assert_false(fy_u64map_del(&m, 5)); /* empty map */
    for (int step = 0; step < STEPS; step++) {
        uint64_t k;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        k = x % KEYS;
        if (in[k]) {
            assert_true(fy_u64map_del(&m, k));
            in[k] = 0;
            n--;
        } else {
            *fy_u64map_upsert(&m, k, 0) = k * 3;
            in[k] = 1;
            n++;
        }
        assert_int_equal(m.n, n);
        if (step % 997 == 0) {
            for (uint64_t i = 0; i < KEYS; i++) {
                uint64_t *v = fy_u64map_find(&m, i);
                if (in[i] ? (!v || *v != i * 3) : v != NULL) {
                    fail_msg("step %d key %llu: map and truth differ", step, (unsigned long long)i);
                }
            }
        }
    }
    fy_u64map_free(&m);
}

/* Keys as the store makes them, topic << 32 | queue, spread over the table: the longest run of
 * used slots stays short (one home slot for every topic's queue 0 made it all of them). */
static void test_buf_u64map_topic_keys_spread(void **state)
{
    enum { TOPICS = 4096 };
    fy_u64map m = FY_U64MAP_INIT;
    size_t run = 0, longest = 0;
    for (uint64_t t = 1; t <= TOPICS; t++) {
        *fy_u64map_upsert(&m, t << 32, 0) = t;
    }
    for (size_t i = 0; i < 2 * m.cap; i++) { /* twice round: a run may wrap */
        run = m.used[i & (m.cap - 1)] ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    if (longest > 64) {
        fail_msg("%d keys in %zu slots: a run of %zu used slots", TOPICS, m.cap, longest);
    }
    for (uint64_t t = 1; t <= TOPICS; t++) {
        uint64_t *v = fy_u64map_find(&m, t << 32);
        assert_non_null(v);
        assert_int_equal(*v, t);
    }
    fy_u64map_free(&m);
}

static void test_buf_u64map_many_keys(void **state)
{
    enum { N = 10000 };
    fy_u64map m = FY_U64MAP_INIT;
    uint64_t sums[3] = {0, 0, 0}, want_sum = 0;

    assert_null(fy_u64map_find(&m, 1)); /* empty map */
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *v = fy_u64map_upsert(&m, map_key(i), map_key(i) ^ 0x5555u);
        assert_non_null(v);
        assert_int_equal(*v, map_key(i) ^ 0x5555u);
        want_sum += map_key(i) ^ 0x5555u;
    }
    assert_int_equal(m.n, N);
    for (uint64_t i = 0; i < N; i++) {
        uint64_t *v = fy_u64map_find(&m, map_key(i));
        if (!v || *v != (map_key(i) ^ 0x5555u)) {
            fail_msg("key %llu lost or wrong", (unsigned long long)i);
        }
    }
    for (uint64_t i = N; i < 2 * N; i++) {
        if (fy_u64map_find(&m, map_key(i))) {
            fail_msg("absent key %llu found", (unsigned long long)i);
        }
    }
    assert_null(fy_u64map_find(&m, 0x7FFFFFFFFFFFFFFFull));

    fy_u64map_each(&m, sum_entry, sums);
    assert_int_equal(sums[0], N);
    assert_int_equal(sums[1], want_sum);
    assert_int_equal(sums[2], 0);
    fy_u64map_free(&m);
    assert_int_equal(m.n, 0);
    assert_null(fy_u64map_find(&m, map_key(0)));
}

static void test_buf_u64map_upsert_keeps_existing(void **state)
{
    fy_u64map m = FY_U64MAP_INIT;
    uint64_t *v;

    v = fy_u64map_upsert(&m, 42, 7);
    assert_int_equal(*v, 7);
    *v = 100;
    v = fy_u64map_upsert(&m, 42, 9); /* present: the default is ignored */
    assert_int_equal(*v, 100);
    assert_int_equal(m.n, 1);
    (*v)++;
    assert_int_equal(*fy_u64map_find(&m, 42), 101);
    v = fy_u64map_upsert(&m, 0, 5); /* key 0 is an ordinary key */
    assert_int_equal(*v, 5);
    assert_int_equal(*fy_u64map_find(&m, 0), 5);
    assert_int_equal(*fy_u64map_find(&m, 42), 101);
    assert_int_equal(m.n, 2);
    fy_u64map_free(&m);
}

static void test_buf_errors_names_and_texts(void **state)
{
    assert_string_equal(fy_errname(FY_OK), "OK");
    assert_string_equal(fy_strerror(FY_OK), "success");
    assert_string_equal(fy_errname(-FY_ENOSPC), "ENOSPC");
    assert_string_equal(fy_errname(FY_ENOSPC), "ENOSPC");
    assert_string_equal(fy_strerror(-FY_ENOSPC), "no space left on device");
    assert_string_equal(fy_strerror(FY_ENOSPC), fy_strerror(-FY_ENOSPC));
    assert_string_equal(fy_errname(-FY_ECORRUPT), "ECORRUPT");
    assert_string_equal(fy_errname(-FY_EVERSION), "EVERSION");
    assert_string_equal(fy_errname(FY_EINVAL), "EINVAL");

    /* Every known code has its own name and a text. */
    for (int e = 1; e < FY_ERROR_MAX_; e++) {
        assert_non_null(fy_strerror(-e));
        assert_string_not_equal(fy_errname(-e), "EUNKNOWN");
        assert_string_not_equal(fy_strerror(-e), "unknown error");
        for (int o = 1; o < e; o++) {
            assert_string_not_equal(fy_errname(-e), fy_errname(-o));
        }
    }

    /* Unknown codes are named, never NULL. */
    assert_string_equal(fy_errname(FY_ERROR_MAX_), "EUNKNOWN");
    assert_string_equal(fy_errname(-FY_ERROR_MAX_), "EUNKNOWN");
    assert_string_equal(fy_errname(-12345), "EUNKNOWN");
    assert_string_equal(fy_strerror(12345), "unknown error");
    assert_non_null(fy_strerror(-2147483647));
}

static void test_buf_log_parse_level(void **state)
{
    fy_log_level l = FY_LOG_FATAL;

    assert_int_equal(fy_log_parse_level("debug", &l), FY_OK);
    assert_int_equal(l, FY_LOG_DEBUG);
    assert_int_equal(fy_log_parse_level("info", &l), FY_OK);
    assert_int_equal(l, FY_LOG_INFO);
    assert_int_equal(fy_log_parse_level("warn", &l), FY_OK);
    assert_int_equal(l, FY_LOG_WARN);
    assert_int_equal(fy_log_parse_level("error", &l), FY_OK);
    assert_int_equal(l, FY_LOG_ERROR);
    assert_int_equal(fy_log_parse_level("fatal", &l), FY_OK);
    assert_int_equal(l, FY_LOG_FATAL);
    assert_int_equal(fy_log_parse_level("off", &l), FY_OK);
    assert_int_equal(l, FY_LOG_OFF);

    l = FY_LOG_WARN;
    assert_int_equal(fy_log_parse_level("verbose", &l), -FY_EINVAL);
    assert_int_equal(fy_log_parse_level("", &l), -FY_EINVAL);
    assert_int_equal(fy_log_parse_level("infoo", &l), -FY_EINVAL);
    assert_int_equal(l, FY_LOG_WARN); /* untouched on error */
}

/* Reads all of f (from the start) into buf. */
static size_t read_all(FILE *f, char *buf, size_t n)
{
    size_t got;

    assert_int_equal(fflush(f), 0);
    rewind(f);
    got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    return got;
}

static void test_buf_log_writes_logfmt_lines(void **state)
{
    FILE *f = tmpfile();
    char text[4096];
    regex_t re;
    int saved = fy_log_level_min;

    assert_non_null(f);
    fy_log_set_file(f);
    fy_log_set_level(FY_LOG_INFO);

    fy_log(INFO, "mod", "k=%s msg=\"%s\"", "v", "x");
    read_all(f, text, sizeof(text));
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"
                             " INFO mod k=v msg=\"x\"\n$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, text, 0, NULL, 0) != 0) {
        fail_msg("not a logfmt line: '%s'", text);
    }
    regfree(&re);

    /* Below the level: dropped; at or above: written, one line each. */
    fy_log(DEBUG, "mod", "msg=\"%s\"", "hidden");
    fy_log(WARN, "mod", "msg=\"%s\"", "shown");
    read_all(f, text, sizeof(text));
    assert_null(strstr(text, "hidden"));
    assert_null(strstr(text, "DEBUG"));
    assert_non_null(strstr(text, "Z WARN mod msg=\"shown\"\n"));
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    assert_non_null(strchr(nl + 1, '\n'));
    assert_null(strchr(strchr(nl + 1, '\n') + 1, '\n')); /* exactly two lines */

    /* At DEBUG the same line goes through. */
    fy_log_set_level(FY_LOG_DEBUG);
    fy_log(DEBUG, "mod", "msg=\"%s\"", "now-shown");
    read_all(f, text, sizeof(text));
    assert_non_null(strstr(text, "Z DEBUG mod msg=\"now-shown\"\n"));

    fy_log_set_file(NULL);
    fy_log_set_level((fy_log_level)saved);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_reserve_and_append),
        cmocka_unit_test(test_buf_put_big_endian),
        cmocka_unit_test(test_buf_reader_reads_in_order),
        cmocka_unit_test(test_buf_reader_short_read_is_sticky),
        cmocka_unit_test(test_buf_u64map_many_keys),
        cmocka_unit_test(test_buf_u64map_delete),
        cmocka_unit_test(test_buf_u64map_topic_keys_spread),
        cmocka_unit_test(test_buf_u64map_upsert_keeps_existing),
        cmocka_unit_test(test_buf_errors_names_and_texts),
        cmocka_unit_test(test_buf_log_parse_level),
        cmocka_unit_test(test_buf_log_writes_logfmt_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
