/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the SQL92 message selector: every operator over real encoded records, SQL
 * three-valued logic, property strings read as numbers and booleans, TAGS, precedence, keyword
 * case, error messages with their positions, and the limits (length, nesting, long chains). */
#include "broker/selector.h"
#include "common/buf.h"
#include "common/record.h"

#include "ferry/errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

/* An encoded record and its decoded view. */
typedef struct tmsg {
    fy_buf buf;
    fy_record_view v;
} tmsg;

/* Encodes a record with the given tag and NULL-terminated name, value, name, value, ... list
 * and decodes it into m->v. */
static void tmsg_make(tmsg *m, const char *tag, const char *const *kv)
{
    fy_slice props[128];
    fy_record r;
    size_t n = 0;

    memset(&r, 0, sizeof(r));
    while (kv && kv[n]) {
        assert_true(n + 1 < sizeof(props) / sizeof(props[0]));
        props[n] = fy_slice_str(kv[n]);
        props[n + 1] = fy_slice_str(kv[n + 1]);
        n += 2;
    }
    r.topic = fy_slice_str("T");
    r.tag = fy_slice_str(tag);
    r.props = props;
    r.nprops = (uint16_t)(n / 2);
    r.body = fy_slice_str("body");
    m->buf = (fy_buf)FY_BUF_INIT;
    assert_int_equal(fy_record_encode(&r, &m->buf), FY_OK);
    assert_int_equal(fy_record_decode(m->buf.data, m->buf.len, &m->v), FY_OK);
}

static void tmsg_free(tmsg *m)
{
    fy_buf_free(&m->buf);
}

/* The message most tests run against. */
static const char *const main_props[] = {
    "a",          "7",
    "b",          "x",
    "f",          "3.5",
    "neg",        "-2",
    "s",          "hello world",
    "flag",       "true",
    "off",        "FALSE",
    "word",       "abc",
    "empty",      "",
    "pct",        "50%",
    "mqtt.topic", "sensors/t1",
    "sp",         " 7",
    "big",        "9223372036854775807",
    "e",          "1e3",
    "u",          "h\xC3\xA9llo", /* héllo */
    "us",         "a_b",
    "ux",         "axb",
    "bs",         "a!b",
    "q",          "it's",
    "x10",        "10",
    "x9",         "9",
    "dup",        "first",
    "dup",        "second",
    "$x",         "1",
    "tags",       "lower",
    "TAGS",       "zzz", /* a property, not the tag */
    NULL,
};

static tmsg main_msg;

static int setup_main(void **state)
{
    tmsg_make(&main_msg, "TagA", main_props);
    return 0;
}

static int teardown_main(void **state)
{
    tmsg_free(&main_msg);
    return 0;
}

static fy_selector *compile_ok(const char *expr)
{
    char err[256];
    size_t pos = 99;
    fy_selector *s = fy_selector_compile(expr, strlen(expr), err, sizeof(err), &pos);

    if (!s) {
        fail_msg("'%s' does not compile: %s", expr, err);
    }
    assert_string_equal(err, "");
    assert_int_equal(pos, 0);
    return s;
}

/* Whether expr matches v. */
static bool matches(const fy_record_view *v, const char *expr)
{
    fy_selector *s = compile_ok(expr);
    bool got = fy_selector_match(s, v);

    fy_selector_free(s);
    return got;
}

typedef struct tcase {
    const char *expr;
    bool want;
} tcase;

static void check_cases(const fy_record_view *v, const tcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool got = matches(v, cases[i].expr);
        if (got != cases[i].want) {
            fail_msg("'%s': got %s, want %s", cases[i].expr, got ? "match" : "no match",
                     cases[i].want ? "match" : "no match");
        }
    }
}

#define CHECK_CASES(v, cases) check_cases((v), (cases), sizeof(cases) / sizeof((cases)[0]))

/* Three-valued result of a condition, told apart through NOT and IS NULL: TRUE matches, FALSE
 * matches only negated, UNKNOWN neither way (and is NULL). "AND TRUE" makes a bare property a
 * condition before IS NULL looks at it. */
enum { TV_F, TV_T, TV_U };

static int truth(const fy_record_view *v, const char *cond)
{
    char buf[512];
    bool pos, negd, isnull;

    pos = matches(v, cond);
    snprintf(buf, sizeof(buf), "NOT (%s)", cond);
    negd = matches(v, buf);
    snprintf(buf, sizeof(buf), "(%s AND TRUE) IS NULL", cond);
    isnull = matches(v, buf);
    if (pos + negd + isnull != 1) {
        fail_msg("'%s': inconsistent: match %d, NOT match %d, IS NULL %d", cond, pos, negd, isnull);
    }
    return pos ? TV_T : negd ? TV_F : TV_U;
}

static void check_truth(const fy_record_view *v, const char *cond, int want)
{
    static const char *const names[] = {"FALSE", "TRUE", "UNKNOWN"};
    int got = truth(v, cond);

    if (got != want) {
        fail_msg("'%s' is %s, want %s", cond, names[got], names[want]);
    }
}

static void test_selector_comparisons(void **state)
{
    static const tcase cases[] = {
        {"a = 7", true},         {"a = 8", false},         {"a <> 8", true},
        {"a <> 7", false},       {"a < 8", true},          {"a < 7", false},
        {"a <= 7", true},        {"a <= 6", false},        {"a > 6", true},
        {"a > 7", false},        {"a >= 7", true},         {"a >= 8", false},
        {"7 = a", true},         {"8 > a", true},          {"b = 'x'", true},
        {"b = 'y'", false},      {"b <> 'y'", true},       {"b < 'y'", true},
        {"b > 'xx'", false},     {"b < 'xx'", true},       {"s >= 'hello'", true},
        {"word <= 'abc'", true}, {"word < 'abc'", false},  {"a = a", true},
        {"b <> word", true},     {"'a' = 'a'", true},      {"'a' < 'b'", true},
        {"1 < 2", true},         {"2.5 > 2", true},        {"empty = ''", true},
        {"empty = 'x'", false},  {"q = 'it''s'", true},    {"mqtt.topic = 'sensors/t1'", true},
        {"$x = 1", true},        {"dup = 'first'", true},  {"dup = 'second'", false},
        {"A = 7", false},        {"tags = 'lower'", true}, {"TRUE", true},
        {"FALSE", false},        {"NULL", false},          {"TRUE = TRUE", true},
        {"TRUE <> FALSE", true}, {"TRUE = FALSE", false},
    };
    CHECK_CASES(&main_msg.v, cases);
}

/* SQL's truth tables for AND, OR and NOT, with TRUE = "a = 7", FALSE = "a = 8" and UNKNOWN
 * = "nope = 1" (a missing property). */
static void test_selector_three_valued_logic(void **state)
{
    static const char *const cond[] = {"a = 8", "a = 7", "nope = 1"}; /* by TV_* */
    static const int and_table[3][3] = {
        {TV_F, TV_F, TV_F}, /* F AND x */
        {TV_F, TV_T, TV_U}, /* T AND x */
        {TV_F, TV_U, TV_U}, /* U AND x */
    };
    static const int or_table[3][3] = {
        {TV_F, TV_T, TV_U},
        {TV_T, TV_T, TV_T},
        {TV_U, TV_T, TV_U},
    };
    static const int not_table[3] = {TV_T, TV_F, TV_U};
    char buf[256];

    for (int l = 0; l < 3; l++) {
        for (int r = 0; r < 3; r++) {
            snprintf(buf, sizeof(buf), "%s AND %s", cond[l], cond[r]);
            check_truth(&main_msg.v, buf, and_table[l][r]);
            snprintf(buf, sizeof(buf), "%s OR %s", cond[l], cond[r]);
            check_truth(&main_msg.v, buf, or_table[l][r]);
        }
        snprintf(buf, sizeof(buf), "NOT %s", cond[l]);
        check_truth(&main_msg.v, buf, not_table[l]);
    }
    /* Longer chains keep the tables: one FALSE decides an AND, one TRUE an OR. */
    check_truth(&main_msg.v, "a = 7 AND nope = 1 AND a = 8", TV_F);
    check_truth(&main_msg.v, "a = 7 AND nope = 1 AND a = 7", TV_U);
    check_truth(&main_msg.v, "a = 8 OR nope = 1 OR a = 7", TV_T);
    check_truth(&main_msg.v, "a = 8 OR nope = 1 OR a = 8", TV_U);
    check_truth(&main_msg.v, "NOT NOT nope = 1", TV_U);
    check_truth(&main_msg.v, "NOT NOT a = 7", TV_T);
    /* Comparisons with NULL are UNKNOWN, even NULL = NULL. */
    check_truth(&main_msg.v, "nope = nope", TV_U);
    check_truth(&main_msg.v, "a = NULL", TV_U);
    check_truth(&main_msg.v, "NULL = NULL", TV_U);
    check_truth(&main_msg.v, "nope <> 'x'", TV_U);
    check_truth(&main_msg.v, "NULL", TV_U);
    check_truth(&main_msg.v, "NULL AND FALSE", TV_F);
    check_truth(&main_msg.v, "NULL OR TRUE", TV_T);
}

/* Property strings are numbers when compared with numbers or used in arithmetic, booleans when
 * compared with TRUE / FALSE or used as a condition, and bytes when compared with strings. */
static void test_selector_property_conversion(void **state)
{
    check_truth(&main_msg.v, "a = 7.0", TV_T); /* "7" is the integer 7 */
    check_truth(&main_msg.v, "a < 7.5", TV_T);
    check_truth(&main_msg.v, "a = '7.0'", TV_F); /* bytes */
    check_truth(&main_msg.v, "a = '7'", TV_T);
    check_truth(&main_msg.v, "f > 3", TV_T);
    check_truth(&main_msg.v, "f = 3.5", TV_T);
    check_truth(&main_msg.v, "f < 3.4", TV_F);
    check_truth(&main_msg.v, "neg < 0", TV_T);
    check_truth(&main_msg.v, "neg = -2", TV_T);
    check_truth(&main_msg.v, "e = 1000", TV_T);
    check_truth(&main_msg.v, "big = 9223372036854775807", TV_T);
    check_truth(&main_msg.v, "big > 9223372036854775806", TV_T);
    /* Not entirely a number: UNKNOWN, so neither the comparison nor its negation matches. */
    check_truth(&main_msg.v, "b > 5", TV_U);
    check_truth(&main_msg.v, "b = 0", TV_U);
    check_truth(&main_msg.v, "sp = 7", TV_U); /* " 7": a leading blank */
    check_truth(&main_msg.v, "empty = 0", TV_U);
    check_truth(&main_msg.v, "word <> 1", TV_U);
    check_truth(&main_msg.v, "pct = 50", TV_U);
    /* Two properties compare as bytes ("10" < "9"); arithmetic makes them numbers. */
    check_truth(&main_msg.v, "x10 < x9", TV_T);
    check_truth(&main_msg.v, "x10 + 0 < x9", TV_F);
    check_truth(&main_msg.v, "x10 > x9 + 0", TV_T);
    /* Booleans: "true" / "false" in any case. */
    check_truth(&main_msg.v, "flag = TRUE", TV_T);
    check_truth(&main_msg.v, "flag = FALSE", TV_F);
    check_truth(&main_msg.v, "flag <> FALSE", TV_T);
    check_truth(&main_msg.v, "off = FALSE", TV_T);
    check_truth(&main_msg.v, "flag", TV_T);
    check_truth(&main_msg.v, "off", TV_F);
    check_truth(&main_msg.v, "flag AND NOT off", TV_T);
    check_truth(&main_msg.v, "b = TRUE", TV_U);
    check_truth(&main_msg.v, "b", TV_U);
    check_truth(&main_msg.v, "nope", TV_U);
    check_truth(&main_msg.v, "(a > 5) = TRUE", TV_T);
    check_truth(&main_msg.v, "(a > 5) = flag", TV_T);
    check_truth(&main_msg.v, "(a > 5) <> off", TV_T);
    check_truth(&main_msg.v, "(a > 5) = b", TV_U);
}

static void test_selector_tags(void **state)
{
    static const char *const no_props[] = {NULL};
    tmsg untagged;

    check_truth(&main_msg.v, "TAGS = 'TagA'", TV_T);
    check_truth(&main_msg.v, "TAGS = 'taga'", TV_F);
    check_truth(&main_msg.v, "TAGS <> 'TagB'", TV_T);
    check_truth(&main_msg.v, "TAGS IN ('TagB', 'TagA')", TV_T);
    check_truth(&main_msg.v, "TAGS IN ('TagB', 'TagC')", TV_F);
    check_truth(&main_msg.v, "TAGS LIKE 'Tag%'", TV_T);
    check_truth(&main_msg.v, "TAGS IS NOT NULL", TV_T);
    /* TAGS is the tag even when a property has that name; `tags` is a property. */
    check_truth(&main_msg.v, "TAGS = 'zzz'", TV_F);
    check_truth(&main_msg.v, "TAGS = 'lower'", TV_F);
    check_truth(&main_msg.v, "tags = 'lower'", TV_T);

    /* An empty tag is NULL. */
    tmsg_make(&untagged, "", no_props);
    check_truth(&untagged.v, "TAGS IS NULL", TV_T);
    check_truth(&untagged.v, "TAGS = ''", TV_U);
    check_truth(&untagged.v, "TAGS = 'TagA'", TV_U);
    check_truth(&untagged.v, "TAGS IN ('TagA')", TV_U);
    check_truth(&untagged.v, "a > 5", TV_U); /* no properties at all */
    tmsg_free(&untagged);
}

static void test_selector_in_between(void **state)
{
    check_truth(&main_msg.v, "b IN ('x')", TV_T);
    check_truth(&main_msg.v, "b IN ('y', 'z')", TV_F);
    check_truth(&main_msg.v, "b IN ('y', 'z', 'x')", TV_T);
    check_truth(&main_msg.v, "b NOT IN ('y', 'z')", TV_T);
    check_truth(&main_msg.v, "b NOT IN ('x')", TV_F);
    check_truth(&main_msg.v, "b IN ('X', 'xx', '')", TV_F);
    check_truth(&main_msg.v, "empty IN ('')", TV_T);
    check_truth(&main_msg.v, "q IN ('it''s')", TV_T);
    check_truth(&main_msg.v, "a IN ('7')", TV_T);
    check_truth(&main_msg.v, "'x' IN ('x')", TV_T);
    check_truth(&main_msg.v, "nope IN ('x')", TV_U);
    check_truth(&main_msg.v, "nope NOT IN ('x')", TV_U);

    check_truth(&main_msg.v, "a BETWEEN 5 AND 10", TV_T);
    check_truth(&main_msg.v, "a BETWEEN 7 AND 7", TV_T);
    check_truth(&main_msg.v, "a BETWEEN 8 AND 10", TV_F);
    check_truth(&main_msg.v, "a BETWEEN 1 AND 6", TV_F);
    check_truth(&main_msg.v, "a BETWEEN 10 AND 5", TV_F);
    check_truth(&main_msg.v, "a NOT BETWEEN 8 AND 10", TV_T);
    check_truth(&main_msg.v, "a NOT BETWEEN 5 AND 10", TV_F);
    check_truth(&main_msg.v, "f BETWEEN 3 AND 4", TV_T);
    check_truth(&main_msg.v, "a BETWEEN 6.5 AND 7.5", TV_T);
    check_truth(&main_msg.v, "a BETWEEN 2 + 3 AND 2 * 3", TV_F);
    check_truth(&main_msg.v, "b BETWEEN 'a' AND 'z'", TV_T);
    check_truth(&main_msg.v, "b BETWEEN 'y' AND 'z'", TV_F);
    check_truth(&main_msg.v, "nope BETWEEN 1 AND 2", TV_U);
    check_truth(&main_msg.v, "nope NOT BETWEEN 1 AND 2", TV_U);
    check_truth(&main_msg.v, "b BETWEEN 1 AND 10", TV_U);
    /* x >= lo AND x <= hi, three-valued: a FALSE half decides. */
    check_truth(&main_msg.v, "a BETWEEN 8 AND nope", TV_F);
    check_truth(&main_msg.v, "a BETWEEN 5 AND nope", TV_U);
    check_truth(&main_msg.v, "a NOT BETWEEN 8 AND nope", TV_T);
}

static void test_selector_like(void **state)
{
    static const tcase cases[] = {
        {"s LIKE 'hello%'", true},
        {"s LIKE '%world'", true},
        {"s LIKE '%lo w%'", true},
        {"s LIKE 'hello'", false},
        {"s LIKE 'hello world'", true},
        {"s LIKE 'h_llo world'", true},
        {"s LIKE 'h_llo'", false},
        {"s LIKE '_'", false},
        {"s LIKE '%'", true},
        {"s LIKE '%%'", true},
        {"s LIKE 'hello%%'", true},
        {"s LIKE '%o%o%'", true},
        {"s LIKE '%o%o%o%'", false},
        {"s LIKE '%l_o%'", true},
        {"s LIKE '%d'", true},
        {"s LIKE '%l'", false},
        {"s LIKE 'H%'", false}, /* case-sensitive */
        {"s NOT LIKE 'x%'", true},
        {"s NOT LIKE 'h%'", false},
        {"empty LIKE '%'", true},
        {"empty LIKE '_'", false},
        {"empty LIKE ''", true},
        {"s LIKE ''", false},
        {"pct LIKE '50!%' ESCAPE '!'", true},
        {"pct LIKE '5_!%' ESCAPE '!'", true},
        {"pct LIKE '%!%' ESCAPE '!'", true},
        {"s LIKE '%!%' ESCAPE '!'", false},
        {"us LIKE 'a\\_b' ESCAPE '\\'", true},
        {"ux LIKE 'a\\_b' ESCAPE '\\'", false},
        {"ux LIKE 'a_b'", true},
        {"bs LIKE 'a!!b' ESCAPE '!'", true},
        {"bs LIKE 'a!%' ESCAPE '!'", false},
        {"pct LIKE '50%%' ESCAPE '%'", true}, /* the escape may be a wildcard itself */
        {"s LIKE 'hello%%' ESCAPE '%'", false},
        {"q LIKE 'it''_'", true},
        {"u LIKE 'h_llo'", true}, /* '_' is one UTF-8 character: é */
        {"u LIKE 'h__llo'", false},
        {"u LIKE 'h\xC3\xA9%'", true},
        {"u LIKE '%\xC3\xA9llo'", true},
        {"TAGS like 'T_g_'", true},
    };
    CHECK_CASES(&main_msg.v, cases);
    check_truth(&main_msg.v, "nope LIKE '%'", TV_U);
    check_truth(&main_msg.v, "nope NOT LIKE '%'", TV_U);
}

static void test_selector_is_null(void **state)
{
    check_truth(&main_msg.v, "nope IS NULL", TV_T);
    check_truth(&main_msg.v, "nope IS NOT NULL", TV_F);
    check_truth(&main_msg.v, "a IS NULL", TV_F);
    check_truth(&main_msg.v, "a IS NOT NULL", TV_T);
    check_truth(&main_msg.v, "empty IS NULL", TV_F); /* present but empty is not NULL */
    check_truth(&main_msg.v, "b + 1 IS NULL", TV_T);
    check_truth(&main_msg.v, "a + 1 IS NULL", TV_F);
    check_truth(&main_msg.v, "NULL IS NULL", TV_T);
    check_truth(&main_msg.v, "(nope = 1) IS NULL", TV_T);
    check_truth(&main_msg.v, "(a = 1) IS NOT NULL", TV_T);
}

static void test_selector_arithmetic(void **state)
{
    static const tcase cases[] = {
        {"a + 1 = 8", true},
        {"a - 10 = -3", true},
        {"a * 2 = 14", true},
        {"a / 2 = 3", true}, /* integers divide as integers */
        {"a / 2 = 3.5", false},
        {"a / 2.0 = 3.5", true},
        {"f * 2 = 7", true},
        {"-a = -7", true},
        {"- -a = 7", true},
        {"-(-a) = 7", true},
        {"+a = 7", true},
        {"+a = 7.0", true},
        {"-f < -3", true},
        {"1 + 2 * 3 = 7", true},
        {"(1 + 2) * 3 = 9", true},
        {"10 - 4 - 3 = 3", true}, /* left-associative */
        {"100 / 10 / 5 = 2", true},
        {"7 / 2 * 2 = 6", true},
        {"2 * 3 / 4 = 1", true},
        {"-7 / 2 = -3", true}, /* truncates towards zero */
        {"2e3 = 2000", true},
        {"1.5e1 = 15", true},
        {"1E+1 = 10", true},
        {"25e-1 = 2.5", true},
        {".5 = 0.5", true},
        {"5. = 5", true},
        {"neg * neg = 4", true},
        {"a + f = 10.5", true},
        {"e / 10 = 100", true},
        /* int64 overflow continues in double instead of wrapping */
        {"big + 1 > 0", true},
        {"big * 2 > big", true},
        {"-big - 2 < 0", true},
        {"-9223372036854775808 < 0", true},
        {"99999999999999999999 > big", true},
        {"1e308 * 10 > 1e308", true},
    };
    CHECK_CASES(&main_msg.v, cases);
    /* Division by zero, non-numeric operands and NULL operands are UNKNOWN. */
    check_truth(&main_msg.v, "a / 0 = 0", TV_U);
    check_truth(&main_msg.v, "a / 0.0 > 0", TV_U);
    check_truth(&main_msg.v, "a / (a - 7) = 1", TV_U);
    check_truth(&main_msg.v, "b + 1 = 1", TV_U);
    check_truth(&main_msg.v, "nope + 1 = 1", TV_U);
    check_truth(&main_msg.v, "-b = 0", TV_U);
    check_truth(&main_msg.v, "+b = 0", TV_U);
    check_truth(&main_msg.v, "NULL + 1 = 1", TV_U);
    check_truth(&main_msg.v, "1e308 * 10 - 1e308 * 10 = 0", TV_U); /* inf - inf */
}

static void test_selector_precedence(void **state)
{
    static const tcase cases[] = {
        {"a = 7 OR a = 8 AND b = 'y'", true}, /* AND binds tighter than OR */
        {"(a = 7 OR a = 8) AND b = 'y'", false},
        {"b = 'y' AND a = 8 OR a = 7", true},
        {"b = 'y' AND (a = 8 OR a = 7)", false},
        {"NOT a = 8 AND b = 'x'", true}, /* NOT binds tighter than AND */
        {"NOT (a = 7 AND b = 'y')", true},
        {"NOT a = 7 OR b = 'x'", true},
        {"NOT (a = 7 OR b = 'x')", false},
        {"NOT a = 7 AND b = 'x'", false},
        {"a = 1 + 2 * 3", true}, /* arithmetic before comparison */
        {"a = (1 + 2) * 3", false},
        {"-a * 2 = -14", true},
        {"a - -1 = 8", true},
        {"a > 5 AND b BETWEEN 'a' AND 'z' AND s LIKE 'h%'", true},
        {"a BETWEEN 5 AND 10 AND b = 'y'", false},
        {"a BETWEEN 5 AND 10 OR b = 'y'", true},
        {"a BETWEEN 5 AND 10 AND NOT b = 'y'", true},
        {"a NOT BETWEEN 8 AND 9 AND b IN ('x') AND s NOT LIKE 'x%'", true},
        {"((((a = 7))))", true},
        {"((a = 7) AND ((b = 'x') OR (b = 'y')))", true},
        {"(a) = (7)", true},
        {"(flag)", true},
    };
    CHECK_CASES(&main_msg.v, cases);
}

static void test_selector_keywords_any_case(void **state)
{
    static const tcase cases[] = {
        {"a between 5 and 10", true},
        {"a Between 5 And 10 oR b = 'y'", true},
        {"b in ('x')", true},
        {"b nOt In ('x')", false},
        {"s like 'h%' escape '!'", true},
        {"nope is null", true},
        {"a Is Not Null", true},
        {"not a = 8", true},
        {"flag = true", true},
        {"flag = True", true},
        {"fAlSe", false},
        {"tRuE", true},
        {"a = 7 aNd b = 'x'", true},
        {"a = nULL", false},
        /* identifiers are case-sensitive */
        {"A = 7", false},
        {"B = 'x'", false},
        {"Tags = 'TagA'", false},
    };
    CHECK_CASES(&main_msg.v, cases);
}

/* Empty or blank text is no selector (JMS): everything matches. */
static void test_selector_empty_matches_all(void **state)
{
    static const char *const no_props[] = {NULL};
    tmsg bare;
    fy_selector *s;

    tmsg_make(&bare, "", no_props);
    s = fy_selector_compile("", 0, NULL, 0, NULL);
    assert_non_null(s);
    assert_true(fy_selector_match(s, &main_msg.v));
    assert_true(fy_selector_match(s, &bare.v));
    fy_selector_free(s);
    s = fy_selector_compile(NULL, 0, NULL, 0, NULL);
    assert_non_null(s);
    assert_true(fy_selector_match(s, &bare.v));
    fy_selector_free(s);
    assert_true(matches(&bare.v, " \t\r\n "));
    tmsg_free(&bare);
    fy_selector_free(NULL);
}

/* One selector is evaluated against many messages; nothing of one match leaks into the next. */
static void test_selector_reused_across_messages(void **state)
{
    static const char *const seven[] = {"a", "7", "b", "x", NULL};
    static const char *const three[] = {"a", "3", "b", "x", NULL};
    static const char *const other[] = {"c", "7", NULL};
    tmsg m7, m3, mo;
    fy_selector *s = compile_ok("a > 5 AND b = 'x'");

    tmsg_make(&m7, "t", seven);
    tmsg_make(&m3, "t", three);
    tmsg_make(&mo, "t", other);
    for (int i = 0; i < 3; i++) {
        assert_true(fy_selector_match(s, &m7.v));
        assert_false(fy_selector_match(s, &m3.v));
        assert_false(fy_selector_match(s, &mo.v));
    }
    fy_selector_free(s);
    tmsg_free(&m7);
    tmsg_free(&m3);
    tmsg_free(&mo);
}

/* More distinct properties than the per-match lookup cache holds are still all read. */
static void test_selector_many_properties(void **state)
{
    enum { N = 48 };
    static char names[N][8], values[N][8];
    const char *kv[2 * N + 1];
    char expr[2048];
    size_t len = 0;
    tmsg m;

    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "p%d", i);
        snprintf(values[i], sizeof(values[i]), "%d", i);
        kv[2 * i] = names[i];
        kv[2 * i + 1] = values[i];
        len +=
            (size_t)snprintf(expr + len, sizeof(expr) - len, "%sp%d = %d", i ? " AND " : "", i, i);
    }
    kv[2 * N] = NULL;
    /* and again, so repeated names past the cache are looked up correctly too */
    for (int i = N - 1; i >= 0; i--) {
        len += (size_t)snprintf(expr + len, sizeof(expr) - len, " AND p%d < %d", i, i + 1);
    }
    assert_true(len < sizeof(expr) - 1);
    tmsg_make(&m, "t", kv);
    assert_true(matches(&m.v, expr));
    tmsg_free(&m);

    snprintf(values[40], sizeof(values[40]), "41"); /* a name past the cache */
    tmsg_make(&m, "t", kv);
    assert_false(matches(&m.v, expr));
    tmsg_free(&m);
    snprintf(values[40], sizeof(values[40]), "40");
    snprintf(values[3], sizeof(values[3]), "x"); /* a cached name */
    tmsg_make(&m, "t", kv);
    assert_false(matches(&m.v, expr));
    tmsg_free(&m);
}

typedef struct terr {
    const char *expr;
    size_t pos;
    const char *msg; /* the whole message */
} terr;

static void check_error(const char *expr, size_t len, size_t want_pos, const char *want_msg)
{
    char err[256];
    size_t pos = 0;
    fy_selector *s = fy_selector_compile(expr, len, err, sizeof(err), &pos);

    if (s) {
        fy_selector_free(s);
        fail_msg("'%s' compiled, want an error at %zu", expr, want_pos);
    }
    if (pos != want_pos || strcmp(err, want_msg) != 0) {
        fail_msg("'%s': got %zu \"%s\", want %zu \"%s\"", expr, pos, err, want_pos, want_msg);
    }
}

static void test_selector_syntax_errors(void **state)
{
    static const terr cases[] = {
        {"s = 'abc", 5, "position 5: unterminated string"},
        {"s = 'it''s", 5, "position 5: unterminated string"},
        {"a >", 4, "position 4: expected a value after '>'"},
        {"a > 5 AND", 10, "position 10: expected a value after 'AND'"},
        {"a > )", 5, "position 5: expected a value after '>', found ')'"},
        {"AND a = 1", 1, "position 1: expected a value, found 'AND'"},
        {"a = 1 AND OR b = 2", 11, "position 11: expected a value after 'AND', found 'OR'"},
        {"(a = 1", 7, "position 7: expected ')' to close the '(' at position 1, found the end"},
        {"((a = 1)", 9, "position 9: expected ')' to close the '(' at position 1, found the end"},
        {"(a = 1 b", 8, "position 8: expected ')' to close the '(' at position 1, found 'b'"},
        {"a = 1)", 6, "position 6: unexpected ')' without a matching '('"},
        {"()", 2, "position 2: expected a value after '(', found ')'"},
        {"a = 1 # 2", 7, "position 7: unexpected character '#'"},
        {"a = 1 ; b = 2", 7, "position 7: unexpected character ';'"},
        {"a = 1 b", 7, "position 7: unexpected 'b': expected AND, OR or the end"},
        {"a = 1 = 2", 7, "position 7: unexpected '=': expected AND, OR or the end"},
        {"a = 1 'x'", 7, "position 7: unexpected a string: expected AND, OR or the end"},
        {"a != 1", 3, "position 3: '!=' is not an operator; use '<>'"},
        {"a = \"x\"", 5, "position 5: unexpected '\"': strings are in single quotes"},
        {"12abc = 1", 3, "position 3: malformed number"},
        {"a = 1.2.3", 8, "position 8: malformed number"},
        {"a = 1e", 6, "position 6: malformed number"},
        {"a NOT 5", 7, "position 7: expected BETWEEN, IN or LIKE after NOT, found '5'"},
        {"a BETWEEN 1 OR 2", 13, "position 13: expected AND in BETWEEN, found 'OR'"},
        {"a BETWEEN 1", 12, "position 12: expected AND in BETWEEN, found the end"},
        {"a IN 'x'", 6, "position 6: expected '(' after IN, found a string"},
        {"a IN ()", 7, "position 7: expected a string in the IN list, found ')'"},
        {"a IN ('x' 'y')", 11, "position 11: expected ',' or ')' in the IN list, found a string"},
        {"a IN ('x',)", 11, "position 11: expected a string in the IN list, found ')'"},
        {"a IN ('x'", 10, "position 10: expected ',' or ')' in the IN list, found the end"},
        {"a IN (1, 2)", 7, "position 7: expected a string in the IN list, found '1'"},
        {"a LIKE 5", 8, "position 8: expected a string pattern after LIKE"},
        {"a LIKE 'x' ESCAPE 'ab'", 19,
         "position 19: the ESCAPE string must be exactly one "
         "character"},
        {"a LIKE 'x' ESCAPE ''", 19,
         "position 19: the ESCAPE string must be exactly one "
         "character"},
        {"a LIKE 'x' ESCAPE 1", 19, "position 19: expected a one-character string after ESCAPE"},
        {"a LIKE 'x!' ESCAPE '!'", 8,
         "position 8: in the LIKE pattern the escape character "
         "must be followed by '%', '_' or itself"},
        {"a LIKE '!x' ESCAPE '!'", 8,
         "position 8: in the LIKE pattern the escape character "
         "must be followed by '%', '_' or itself"},
        {"a IS 5", 6, "position 6: expected NULL after IS, found '5'"},
        {"a IS NOT TRUE", 10, "position 10: expected NULL after IS NOT, found 'TRUE'"},
        {"a = -", 6, "position 6: expected a value after '-'"},
        {"a = 1 a_very_long_property_name_indeed", 7,
         "position 7: unexpected 'a_very_long_property...': expected AND, OR or the end"},
        /* positions count UTF-8 characters, not bytes: é is one */
        {"s = '\xC3\xA9' #", 9, "position 9: unexpected character '#'"},
        {"s = '\xC3\xA9\xC3\xA9' a", 10,
         "position 10: unexpected 'a': expected AND, OR or the end"},
        {"a = \xC3\xA9", 5, "position 5: unexpected byte 0xC3"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_error(cases[i].expr, strlen(cases[i].expr), cases[i].pos, cases[i].msg);
    }
    /* A NUL byte in the text is an unexpected byte, not the end. */
    check_error("a = 1 \0 OR b = 2", 16, 7, "position 7: unexpected byte 0x00");
    /* Text past len is not read: the same bytes with a shorter len are fine or another error. */
    check_error("a >= 5", 3, 4, "position 4: expected a value after '>'");
}

/* Values of the wrong type for their operator are rejected when compiling. */
static void test_selector_type_errors(void **state)
{
    static const terr cases[] = {
        {"5", 1, "position 1: expected a condition, found a number"},
        {"'x'", 1, "position 1: expected a condition, found a string"},
        {"a + 1", 1, "position 1: expected a condition, found a number"},
        {"a = 1 AND 5", 11, "position 11: expected a condition, found a number"},
        {"'x' OR a = 1", 1, "position 1: expected a condition, found a string"},
        {"NOT 'x'", 5, "position 5: expected a condition, found a string"},
        {"'x' = 1", 5, "position 5: cannot compare a string with a number"},
        {"1 <> 'x'", 3, "position 3: cannot compare a number with a string"},
        {"TRUE = 1", 6, "position 6: cannot compare a condition with a number"},
        {"a > TRUE", 3, "position 3: conditions compare only with = and <>"},
        {"(a = 1) < (b = 2)", 9, "position 9: conditions compare only with = and <>"},
        {"a BETWEEN TRUE AND FALSE", 3, "position 3: conditions compare only with = and <>"},
        {"a BETWEEN 1 AND 'z'", 3, "position 3: cannot compare a number with a string"},
        {"a = 'x' + 1", 9, "position 9: '+' needs numbers, found a string"},
        {"a = 1 * TRUE", 7, "position 7: '*' needs numbers, found a condition"},
        {"-'x' = a", 1, "position 1: '-' needs numbers, found a string"},
        {"5 IN ('a')", 1,
         "position 1: IN needs a string or a property on its left, found a "
         "number"},
        {"(a = 1) LIKE 'x'", 1,
         "position 1: LIKE needs a string or a property on its left, "
         "found a condition"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_error(cases[i].expr, strlen(cases[i].expr), cases[i].pos, cases[i].msg);
    }
}

/* Builds prefix + inner + suffix repeated n times around it: "((((" "a = 7" "))))". */
static char *nest(const char *open, int n, const char *inner, const char *close)
{
    size_t len = strlen(open) * (size_t)n + strlen(inner) + strlen(close) * (size_t)n + 1;
    char *s = malloc(len), *p = s;

    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        p = stpcpy(p, open);
    }
    p = stpcpy(p, inner);
    for (int i = 0; i < n; i++) {
        p = stpcpy(p, close);
    }
    return s;
}

static void test_selector_depth_limit(void **state)
{
    char *e;

    /* 64 levels compile and evaluate; the 65th is an error at its own position. */
    e = nest("(", 64, "a = 7", ")");
    assert_true(matches(&main_msg.v, e));
    free(e);
    e = nest("(", 65, "a = 7", ")");
    check_error(e, strlen(e), 65, "position 65: nesting deeper than 64 levels");
    free(e);

    e = nest("NOT ", 64, "a = 7", "");
    assert_true(matches(&main_msg.v, e)); /* an even number of NOTs */
    free(e);
    e = nest("NOT ", 65, "a = 7", "");
    check_error(e, strlen(e), 257, "position 257: nesting deeper than 64 levels");
    free(e);

    e = nest("-", 64, "7 = 7", "");
    assert_true(matches(&main_msg.v, e));
    free(e);
    e = nest("-", 65, "7 = 7", "");
    check_error(e, strlen(e), 65, "position 65: nesting deeper than 64 levels");
    free(e);

    /* Pending values pile up across the levels: three per level here (FALSE OR, TRUE AND,
     * flag =), all on the evaluation stack at the innermost comparison. */
    e = nest("FALSE OR TRUE AND flag = (", 64, "a = 7", ")");
    assert_true(matches(&main_msg.v, e));
    free(e);
    e = nest("FALSE OR TRUE AND flag = (", 64, "a = 8", ")");
    assert_false(matches(&main_msg.v, e));
    free(e);
    /* x(n) = 1 + 2 * x(n - 1): 2^65 - 1 at the bottom, past int64, so continued in double. */
    e = nest("1 + 2 * (", 64, "1", ")");
    {
        char *b = malloc(2 * strlen(e) + 64);
        assert_non_null(b);
        sprintf(b, "a BETWEEN 0 AND %s AND %s > 3.6e19", e, e);
        assert_true(matches(&main_msg.v, b));
        sprintf(b, "%s > 3.7e19", e);
        assert_false(matches(&main_msg.v, b));
        free(b);
    }
    free(e);
}

static void test_selector_length_limit(void **state)
{
    size_t n = FY_SELECTOR_MAX_LEN;
    char *e = malloc(n + 1);

    assert_non_null(e);
    memset(e, ' ', n + 1);
    memcpy(e + n - 5, "a = 7", 5);
    {
        fy_selector *s = fy_selector_compile(e, n, NULL, 0, NULL);
        assert_non_null(s);
        assert_true(fy_selector_match(s, &main_msg.v));
        fy_selector_free(s);
    }
    check_error(e, n + 1, 65537, "position 65537: selector longer than 65536 bytes");
    free(e);
}

/* Long AND / OR / '+' chains are not nesting: they compile and evaluate without recursion. */
static void test_selector_long_chains(void **state)
{
    enum { N = 5000 };
    char *e = malloc(N * 16 + 64);
    size_t len = 0;

    assert_non_null(e);
    for (int i = 0; i < N; i++) {
        len += (size_t)sprintf(e + len, "%sa = 7", i ? " AND " : "");
    }
    assert_true(matches(&main_msg.v, e));
    len = 0;
    for (int i = 0; i < N; i++) {
        len += (size_t)sprintf(e + len, "%sa = %d", i ? " OR " : "", N - i);
    }
    assert_true(matches(&main_msg.v, e)); /* the TRUE one is near the end */
    len = 0;
    for (int i = 0; i < N; i++) {
        len += (size_t)sprintf(e + len, "%s1", i ? " + " : "");
    }
    sprintf(e + len, " = %d", N);
    assert_true(matches(&main_msg.v, e));
    free(e);
}

/* The text need not be NUL-terminated, and err / errpos are optional and bounded. */
static void test_selector_buffer_handling(void **state)
{
    static const char text[] = "a = 7 AND garbage (((";
    char *exact = malloc(5);
    char err[8] = "junk";
    size_t pos = 12345;
    fy_selector *s;

    assert_non_null(exact);
    memcpy(exact, text, 5); /* no NUL after it: ASan catches a read past the end */
    s = fy_selector_compile(exact, 5, err, sizeof(err), &pos);
    assert_non_null(s);
    assert_string_equal(err, "");
    assert_int_equal(pos, 0);
    assert_true(fy_selector_match(s, &main_msg.v));
    fy_selector_free(s);
    memcpy(exact, "a = '", 5);
    check_error(exact, 5, 5, "position 5: unterminated string");
    free(exact);

    assert_null(fy_selector_compile("a >", 3, NULL, 0, NULL));
    assert_null(fy_selector_compile("a >", 3, err, 0, &pos));
    assert_int_equal(pos, 4);
    assert_null(fy_selector_compile("a >", 3, err, sizeof(err), NULL));
    assert_string_equal(err, "positio"); /* truncated, still terminated */
    assert_null(fy_selector_compile(NULL, 3, err, sizeof(err), &pos));
    assert_int_equal(pos, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector_comparisons),
        cmocka_unit_test(test_selector_three_valued_logic),
        cmocka_unit_test(test_selector_property_conversion),
        cmocka_unit_test(test_selector_tags),
        cmocka_unit_test(test_selector_in_between),
        cmocka_unit_test(test_selector_like),
        cmocka_unit_test(test_selector_is_null),
        cmocka_unit_test(test_selector_arithmetic),
        cmocka_unit_test(test_selector_precedence),
        cmocka_unit_test(test_selector_keywords_any_case),
        cmocka_unit_test(test_selector_empty_matches_all),
        cmocka_unit_test(test_selector_reused_across_messages),
        cmocka_unit_test(test_selector_many_properties),
        cmocka_unit_test(test_selector_syntax_errors),
        cmocka_unit_test(test_selector_type_errors),
        cmocka_unit_test(test_selector_depth_limit),
        cmocka_unit_test(test_selector_length_limit),
        cmocka_unit_test(test_selector_long_chains),
        cmocka_unit_test(test_selector_buffer_handling),
    };
    return cmocka_run_group_tests(tests, setup_main, teardown_main);
}
