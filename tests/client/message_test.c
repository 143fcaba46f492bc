/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of libferry's message object through the public API only (linked against
 * libferry.so): setters copy, getters read back, properties replace and remove, keys keep order,
 * limits are refused with the message unchanged, a fresh message has no location, dup is deep,
 * message ids parse, and NULL handles are harmless. */
#include "ferry/client.h"
#include "ferry/errors.h"
#include "ferry/message.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

static void test_message_new_is_empty(void **state)
{
    fy_message *m = fy_message_new("orders");
    size_t len = 99;

    assert_non_null(m);
    assert_string_equal(fy_message_topic(m), "orders");
    assert_string_equal(fy_message_tag(m), "");
    assert_int_equal(fy_message_key_count(m), 0);
    assert_int_equal(fy_message_property_count(m), 0);
    assert_null(fy_message_body(m, &len));
    assert_int_equal(len, 0);
    assert_string_equal(fy_message_sharding_key(m), "");
    assert_string_equal(fy_message_born_host(m), "");
    assert_int_equal(fy_message_queue_id(m), -1);
    assert_int_equal(fy_message_queue_offset(m), -1);
    assert_int_equal(fy_message_store_ms(m), 0);
    assert_int_equal(fy_message_born_ms(m), 0);
    assert_int_equal(fy_message_reconsume_count(m), 0);
    assert_string_equal(fy_message_id(m), "");
    fy_message_free(m);

    m = fy_message_new(NULL);
    assert_non_null(m);
    assert_string_equal(fy_message_topic(m), "");
    assert_int_equal(fy_message_set_topic(m, "t2"), FY_OK);
    assert_string_equal(fy_message_topic(m), "t2");
    fy_message_free(m);
}

static void test_message_setters_copy(void **state)
{
    char topic[] = "orders", tag[] = "TagA", key[] = "k1", body[] = "hello";
    fy_message *m = fy_message_new(topic);
    const void *p;
    size_t len;

    assert_int_equal(fy_message_set_tag(m, tag), FY_OK);
    assert_int_equal(fy_message_add_key(m, key), FY_OK);
    assert_int_equal(fy_message_set_body(m, body, 5), FY_OK);
    assert_int_equal(fy_message_set_sharding_key(m, "user-7"), FY_OK);
    /* The caller's buffers may change or go away afterwards. */
    topic[0] = tag[0] = key[0] = body[0] = 'X';
    assert_string_equal(fy_message_topic(m), "orders");
    assert_string_equal(fy_message_tag(m), "TagA");
    assert_string_equal(fy_message_key_at(m, 0), "k1");
    p = fy_message_body(m, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(p, "hello", 5);
    assert_string_equal(fy_message_sharding_key(m), "user-7");
    /* NULL or "" clears the optional strings. */
    assert_int_equal(fy_message_set_tag(m, NULL), FY_OK);
    assert_string_equal(fy_message_tag(m), "");
    assert_int_equal(fy_message_set_sharding_key(m, ""), FY_OK);
    assert_string_equal(fy_message_sharding_key(m), "");
    assert_int_equal(fy_message_set_body(m, NULL, 0), FY_OK);
    assert_null(fy_message_body(m, &len));
    assert_int_equal(len, 0);
    /* A body with NUL bytes is kept whole. */
    assert_int_equal(fy_message_set_body(m, "a\0b", 3), FY_OK);
    p = fy_message_body(m, NULL);
    assert_memory_equal(p, "a\0b", 3);
    fy_message_free(m);
}

static void test_message_keys_keep_order(void **state)
{
    fy_message *m = fy_message_new("t");

    assert_int_equal(fy_message_add_key(m, "b"), FY_OK);
    assert_int_equal(fy_message_add_key(m, "a"), FY_OK);
    assert_int_equal(fy_message_add_key(m, "b"), FY_OK);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(fy_message_add_key(m, "many"), FY_OK);
    }
    assert_int_equal(fy_message_key_count(m), 23);
    assert_string_equal(fy_message_key_at(m, 0), "b");
    assert_string_equal(fy_message_key_at(m, 1), "a");
    assert_string_equal(fy_message_key_at(m, 2), "b");
    assert_null(fy_message_key_at(m, 23));
    assert_int_equal(fy_message_add_key(m, ""), -FY_EINVAL);
    assert_int_equal(fy_message_add_key(m, NULL), -FY_EINVAL);
    assert_int_equal(fy_message_key_count(m), 23);
    assert_int_equal(fy_message_clear_keys(m), FY_OK);
    assert_int_equal(fy_message_key_count(m), 0);
    fy_message_free(m);
}

static void test_message_properties(void **state)
{
    fy_message *m = fy_message_new("t");
    const char *name, *value;

    assert_int_equal(fy_message_set_property(m, "a", "1"), FY_OK);
    assert_int_equal(fy_message_set_property(m, "b", "2"), FY_OK);
    assert_int_equal(fy_message_set_property(m, "c", ""), FY_OK);
    assert_int_equal(fy_message_property_count(m), 3);
    assert_string_equal(fy_message_property(m, "b"), "2");
    assert_string_equal(fy_message_property(m, "c"), "");
    assert_null(fy_message_property(m, "zz"));
    /* Replacing keeps the position. */
    assert_int_equal(fy_message_set_property(m, "a", "one"), FY_OK);
    assert_int_equal(fy_message_property_count(m), 3);
    assert_int_equal(fy_message_property_at(m, 0, &name, &value), FY_OK);
    assert_string_equal(name, "a");
    assert_string_equal(value, "one");
    /* NULL removes; the others keep their order. */
    assert_int_equal(fy_message_set_property(m, "a", NULL), FY_OK);
    assert_int_equal(fy_message_set_property(m, "nope", NULL), FY_OK);
    assert_int_equal(fy_message_property_count(m), 2);
    assert_int_equal(fy_message_property_at(m, 0, &name, NULL), FY_OK);
    assert_string_equal(name, "b");
    assert_int_equal(fy_message_property_at(m, 1, NULL, &value), FY_OK);
    assert_string_equal(value, "");
    assert_int_equal(fy_message_property_at(m, 2, &name, &value), -FY_EINVAL);
    assert_int_equal(fy_message_set_property(m, "", "x"), -FY_EINVAL);
    assert_int_equal(fy_message_set_property(m, NULL, "x"), -FY_EINVAL);
    fy_message_free(m);
}

static void test_message_limits_leave_it_unchanged(void **state)
{
    fy_message *m = fy_message_new("t");
    size_t n = 65536;
    char *big = malloc(n + 1);

    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    assert_int_equal(fy_message_set_tag(m, "keep"), FY_OK);
    assert_int_equal(fy_message_set_tag(m, big), -FY_EINVAL);
    assert_string_equal(fy_message_tag(m), "keep");
    assert_int_equal(fy_message_set_topic(m, big), -FY_EINVAL);
    assert_int_equal(fy_message_set_topic(m, ""), -FY_EINVAL);
    assert_int_equal(fy_message_set_topic(m, NULL), -FY_EINVAL);
    assert_string_equal(fy_message_topic(m), "t");
    assert_int_equal(fy_message_add_key(m, big), -FY_EINVAL);
    assert_int_equal(fy_message_set_property(m, big, "v"), -FY_EINVAL);
    assert_int_equal(fy_message_set_sharding_key(m, big), -FY_EINVAL);
    assert_int_equal(fy_message_set_body(m, NULL, 3), -FY_EINVAL);
    /* 65535 bytes is the codec's limit, and allowed. */
    big[n - 1] = '\0';
    assert_int_equal(fy_message_set_tag(m, big), FY_OK);
    assert_int_equal(strlen(fy_message_tag(m)), 65535);
    /* A large property value is fine (u32 length on the wire). */
    memset(big, 'y', n - 1);
    assert_int_equal(fy_message_set_property(m, "big", big), FY_OK);
    free(big);
    fy_message_free(m);
}

static void test_message_dup_is_deep(void **state)
{
    fy_message *m = fy_message_new("t"), *d;

    fy_message_set_tag(m, "tag");
    fy_message_add_key(m, "k1");
    fy_message_add_key(m, "k2");
    fy_message_set_property(m, "p", "v");
    fy_message_set_body(m, "body", 4);
    fy_message_set_sharding_key(m, "s");
    d = fy_message_dup(m);
    assert_non_null(d);
    fy_message_free(m);
    assert_string_equal(fy_message_topic(d), "t");
    assert_string_equal(fy_message_tag(d), "tag");
    assert_int_equal(fy_message_key_count(d), 2);
    assert_string_equal(fy_message_key_at(d, 1), "k2");
    assert_string_equal(fy_message_property(d, "p"), "v");
    assert_memory_equal(fy_message_body(d, NULL), "body", 4);
    assert_string_equal(fy_message_sharding_key(d), "s");
    assert_int_equal(fy_message_queue_id(d), -1);
    fy_message_free(d);
    assert_null(fy_message_dup(NULL));
}

static void test_message_id_parse(void **state)
{
    uint16_t broker;
    uint32_t topic, queue;
    uint64_t offset;

    /* broker 1, topic 0x0203, queue 5, offset 0x0102030405 */
    assert_int_equal(
        fy_message_id_parse("00010000020300050000000102030405", &broker, &topic, &queue, &offset),
        FY_OK);
    assert_int_equal(broker, 1);
    assert_int_equal(topic, 0x0203);
    assert_int_equal(queue, 5);
    assert_int_equal(offset, 0x0102030405ull);
    /* Either case; NULL outputs are fine. */
    assert_int_equal(
        fy_message_id_parse("FFFF0000020300050000000102030405", &broker, NULL, NULL, NULL), FY_OK);
    assert_int_equal(broker, 0xffff);
    assert_int_equal(fy_message_id_parse("0001000002030005000000010203040", NULL, NULL, NULL, NULL),
                     -FY_EINVAL);
    assert_int_equal(
        fy_message_id_parse("000100000203000500000001020304050", NULL, NULL, NULL, NULL),
        -FY_EINVAL);
    assert_int_equal(
        fy_message_id_parse("0001000002030005000000010203040g", NULL, NULL, NULL, NULL),
        -FY_EINVAL);
    assert_int_equal(fy_message_id_parse(NULL, NULL, NULL, NULL, NULL), -FY_EINVAL);
}

static void test_message_null_is_harmless(void **state)
{
    fy_message_free(NULL);
    assert_string_equal(fy_message_topic(NULL), "");
    assert_string_equal(fy_message_id(NULL), "");
    assert_int_equal(fy_message_key_count(NULL), 0);
    assert_int_equal(fy_message_set_tag(NULL, "x"), -FY_EINVAL);
    assert_int_equal(fy_message_queue_offset(NULL), -1);
    assert_non_null(fy_strerror(-FY_EINVAL));
    assert_string_equal(fy_errname(-FY_ECLOSED), "ECLOSED");
    assert_non_null(fy_version());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_new_is_empty),
        cmocka_unit_test(test_message_setters_copy),
        cmocka_unit_test(test_message_keys_keep_order),
        cmocka_unit_test(test_message_properties),
        cmocka_unit_test(test_message_limits_leave_it_unchanged),
        cmocka_unit_test(test_message_dup_is_deep),
        cmocka_unit_test(test_message_id_parse),
        cmocka_unit_test(test_message_null_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
