/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the MQTT topic functions: topic name and filter validation, shared subscription
 * parsing, filter matching with every example of MQTT 5 section 4.7 (and its '$' rule), and the
 * first level. Inputs are exactly-sized heap copies so ASan sees any over-read. */
#include "adapters/mqtt/mqtt_topic.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

#define MAX_COPIES 256
static uint8_t *copies[MAX_COPIES];
static size_t ncopies;

/* An exactly-sized heap copy of s (n bytes, or strlen(s) if n is SIZE_MAX). */
static fy_slice cp(const char *s, size_t n)
{
    fy_slice r;
    uint8_t *c;

    if (n == SIZE_MAX) {
        n = strlen(s);
    }
    c = malloc(n ? n : 1);
    assert_non_null(c);
    assert_true(ncopies < MAX_COPIES);
    memcpy(c, s, n);
    copies[ncopies++] = c;
    r.p = c;
    r.len = n;
    return r;
}

static fy_slice S(const char *s)
{
    return cp(s, SIZE_MAX);
}

static int teardown_copies(void **state)
{
    for (size_t i = 0; i < ncopies; i++) {
        free(copies[i]);
    }
    ncopies = 0;
    return 0;
}

static void test_mqtt_topic_name_valid(void **state)
{
    static const char *const good[] = {
        "a",    "sport/tennis/player1",        "/", "//", "/finance", "Accounts payable", "$SYS/x",
        "a/b/", "caf\xc3\xa9/\xf0\x9f\x98\x80"};
    static const char *const bad[] = {"+", "#", "a/+", "a/#", "sport+", "a#b", "\xc0\x80", "\xff"};
    char *longest;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!fy_mqtt_topic_name_valid(S(good[i]))) {
            fail_msg("topic name \"%s\" refused", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fy_mqtt_topic_name_valid(S(bad[i]))) {
            fail_msg("topic name \"%s\" accepted", bad[i]);
        }
    }
    assert_false(fy_mqtt_topic_name_valid(cp("", 0)));
    assert_false(fy_mqtt_topic_name_valid(cp("a\0b", 3)));
    longest = malloc(65536);
    assert_non_null(longest);
    memset(longest, 'x', 65536);
    assert_true(fy_mqtt_topic_name_valid(cp(longest, 65535)));
    assert_false(fy_mqtt_topic_name_valid(cp(longest, 65536)));
    assert_true(fy_mqtt_filter_valid(cp(longest, 65535)));
    assert_false(fy_mqtt_filter_valid(cp(longest, 65536)));
    free(longest);
}

static void test_mqtt_topic_filter_valid(void **state)
{
    /* MQTT 5 section 4.7.1.2 and 4.7.1.3. */
    static const char *const good[] = {"#",          "sport/tennis/player1/#",
                                       "sport/#",    "+",
                                       "+/tennis/#", "sport/+/player1",
                                       "/+",         "+/+",
                                       "/",          "a//b",
                                       "+/",         "/#",
                                       "$SYS/#",     "$share/g/x",
                                       "a/b/c",      "+/+/+/+",
                                       "//#",        "a/+/#"};
    static const char *const bad[] = {"sport/tennis#", "sport/tennis/#/ranking",
                                      "sport+",        "#/",
                                      "a/#/",          "++",
                                      "a/b+",          "+a/b",
                                      "a/#b",          "##",
                                      "\xed\xa0\x80"};

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!fy_mqtt_filter_valid(S(good[i]))) {
            fail_msg("filter \"%s\" refused", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fy_mqtt_filter_valid(S(bad[i]))) {
            fail_msg("filter \"%s\" accepted", bad[i]);
        }
    }
    assert_false(fy_mqtt_filter_valid(cp("", 0)));
    assert_false(fy_mqtt_filter_valid(cp("a/\0", 3)));
}

static void test_mqtt_topic_share(void **state)
{
    fy_slice g, r;
    static const char *const invalid[] = {"$share/",    "$share/g",    "$share//x",
                                          "$share/g/",  "$share/g+/x", "$share/#/x",
                                          "$share/+/x", "$share/g/a#", "$share/g/#/a"};

    assert_int_equal(fy_mqtt_share_parse(S("$share/consumer1/sport/tennis/+"), &g, &r),
                     FY_MQTT_SHARE_OK);
    assert_int_equal(g.len, 9);
    assert_memory_equal(g.p, "consumer1", 9);
    assert_int_equal(r.len, 14);
    assert_memory_equal(r.p, "sport/tennis/+", 14);
    assert_int_equal(fy_mqtt_share_parse(S("$share/consumer1//finance"), &g, &r), FY_MQTT_SHARE_OK);
    assert_int_equal(r.len, 8);
    assert_memory_equal(r.p, "/finance", 8);
    assert_int_equal(fy_mqtt_share_parse(S("$share/g/#"), &g, &r), FY_MQTT_SHARE_OK);
    assert_int_equal(r.len, 1);
    assert_int_equal(fy_mqtt_share_parse(S("$share/g/+/x"), &g, &r), FY_MQTT_SHARE_OK);

    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        if (fy_mqtt_share_parse(S(invalid[i]), &g, &r) != FY_MQTT_SHARE_INVALID) {
            fail_msg("shared filter \"%s\" not refused", invalid[i]);
        }
    }
    g.p = NULL;
    assert_int_equal(fy_mqtt_share_parse(S("$share"), &g, &r), FY_MQTT_SHARE_NONE);
    assert_int_equal(fy_mqtt_share_parse(S("$sharex/a/b"), &g, &r), FY_MQTT_SHARE_NONE);
    assert_int_equal(fy_mqtt_share_parse(S("share/a/b"), &g, &r), FY_MQTT_SHARE_NONE);
    assert_int_equal(fy_mqtt_share_parse(S("$SHARE/a/b"), &g, &r), FY_MQTT_SHARE_NONE);
    assert_int_equal(fy_mqtt_share_parse(cp("", 0), &g, &r), FY_MQTT_SHARE_NONE);
    assert_null(g.p); /* untouched */
}

typedef struct match_case {
    const char *filter;
    const char *topic;
    bool match;
} match_case;

static void test_mqtt_topic_match(void **state)
{
    static const match_case cases[] = {
        /* 4.7.1.2 multi-level wildcard */
        {"sport/tennis/player1/#", "sport/tennis/player1", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
        {"sport/tennis/player1/#", "sport/tennis/player2", false},
        {"sport/tennis/player1/#", "sport/tennis", false},
        {"sport/#", "sport", true},
        {"sport/#", "sport/", true},
        {"sport/#", "sports", false},
        {"#", "sport", true},
        {"#", "sport/tennis/player1", true},
        {"#", "/", true},
        {"#", "/finance", true},
        /* 4.7.1.3 single-level wildcard */
        {"sport/tennis/+", "sport/tennis/player1", true},
        {"sport/tennis/+", "sport/tennis/player2", true},
        {"sport/tennis/+", "sport/tennis/player1/ranking", false},
        {"sport/tennis/+", "sport/tennis", false},
        {"sport/+", "sport", false},
        {"sport/+", "sport/", true},
        {"+/tennis/#", "sport/tennis/player1", true},
        {"+/tennis/#", "sport/tennis", true},
        {"+/tennis/#", "sport/golf", false},
        {"sport/+/player1", "sport/tennis/player1", true},
        {"sport/+/player1", "sport/tennis/player2", false},
        {"sport/+/player1", "sport//player1", true},
        {"+/+", "/finance", true},
        {"/+", "/finance", true},
        {"+", "/finance", false},
        {"+", "finance", true},
        {"+", "", true}, /* an empty level (not a valid name, but in bounds) */
        {"+/+", "a", false},
        {"+/+/+", "a/b", false},
        {"a/+/+", "a//", true},
        {"+/#", "a", true},
        {"/#", "/", true},
        {"/#", "finance", false},
        /* 4.7.2 topics beginning with $ */
        {"#", "$SYS/monitor/Clients", false},
        {"+/monitor/Clients", "$SYS/monitor/Clients", false},
        {"$SYS/#", "$SYS/monitor/Clients", true},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
        {"$SYS/#", "$SYS", true},
        {"+", "$SYS", false},
        {"#", "$", false},
        {"a/#", "a/$b", true}, /* only the first character counts */
        {"+/$x", "a/$x", true},
        /* 4.7.3 literal comparison, case sensitive, leading '/' is a level */
        {"ACCOUNTS", "Accounts", false},
        {"Accounts", "Accounts", true},
        {"Accounts payable", "Accounts payable", true},
        {"/finance", "finance", false},
        {"finance", "/finance", false},
        {"/", "/", true},
        {"/", "//", false},
        {"a/b", "a/b/", false},
        {"a/b/", "a/b", false},
        {"a/b", "a/bc", false},
        {"a/bc", "a/b", false},
        {"a", "a/b", false},
        {"a/b/c", "a/b/c", true},
        {"caf\xc3\xa9/+", "caf\xc3\xa9/x", true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got = fy_mqtt_match(S(cases[i].filter), S(cases[i].topic));
        if (got != cases[i].match) {
            fail_msg("filter \"%s\" topic \"%s\": got %d", cases[i].filter, cases[i].topic, got);
        }
    }
}

static void test_mqtt_topic_first_level(void **state)
{
    fy_slice t = S("sensors/room1/temp");
    fy_slice f = fy_mqtt_first_level(t);

    assert_ptr_equal(f.p, t.p);
    assert_int_equal(f.len, 7);
    assert_int_equal(fy_mqtt_first_level(S("sensors")).len, 7);
    assert_int_equal(fy_mqtt_first_level(S("/a/b")).len, 0);
    assert_int_equal(fy_mqtt_first_level(S("a/")).len, 1);
    assert_int_equal(fy_mqtt_first_level(cp("", 0)).len, 0);
    assert_int_equal(fy_mqtt_first_level(S("$SYS/x")).len, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mqtt_topic_name_valid, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_topic_filter_valid, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_topic_share, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_topic_match, teardown_copies),
        cmocka_unit_test_teardown(test_mqtt_topic_first_level, teardown_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
