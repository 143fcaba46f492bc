/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the configuration: defaults, every unit, each error message with file and line,
 * ranges and overflow, comments/CRLF, overrides, the formatted text reloading to the same
 * values, hostile input, and conf/ferry.conf against the key tables (every key, once, at its
 * default, under its doc line). */
#include "adapters/adapter.h"
#include "broker/config.h"
#include "common/buf.h"
#include "tests/testutil.h"

#include "ferry/errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

/* ---- Helpers ------------------------------------------------------------------------------- */

/* The adapters' sections registered by broker_cfg, freed with their config by cfg_free. */
static struct {
    fy_config *cfg;
    fy_adapters *ad;
} registered[64];

/* A config with the broker's sections registered over *bc, then the adapters' (as ferryd). */
static fy_config *broker_cfg(fy_broker_config *bc)
{
    fy_config *cfg = fy_config_new();
    assert_non_null(cfg);
    assert_int_equal(fy_broker_config_register(cfg, bc), FY_OK);
    for (size_t i = 0; i < 64; i++) {
        if (!registered[i].cfg) {
            registered[i].cfg = cfg;
            registered[i].ad = fy_adapters_new(cfg);
            return cfg;
        }
    }
    fail_msg("too many configs");
    return NULL;
}

static void cfg_free(fy_config *cfg)
{
    fy_config_free(cfg);
    for (size_t i = 0; i < 64; i++) {
        if (cfg && registered[i].cfg == cfg) {
            fy_adapters_free(registered[i].ad);
            registered[i].cfg = NULL;
        }
    }
}

/* The canonical text of one value, in a static buffer. */
static const char *get(const fy_config *cfg, const char *section, const char *key)
{
    static char out[4096];
    fy_buf b = FY_BUF_INIT;
    assert_int_equal(fy_config_get(cfg, section, key, &b), FY_OK);
    snprintf(out, sizeof(out), "%.*s", (int)b.len, b.data ? (const char *)b.data : "");
    fy_buf_free(&b);
    return out;
}

/* The whole formatted configuration, malloc'ed. */
static char *format_all(const fy_config *cfg)
{
    fy_buf b = FY_BUF_INIT;
    assert_int_equal(fy_config_format(cfg, &b), FY_OK);
    fy_buf_append(&b, "", 1);
    char *s = strdup((const char *)b.data);
    fy_buf_free(&b);
    return s;
}

/* Loads text into a fresh broker config and checks it fails with -FY_EINVAL and exactly `msg`,
 * and that the failed load changed nothing. */
static void expect_error(const char *text, const char *msg)
{
    fy_broker_config bc;
    fy_config *cfg = broker_cfg(&bc);
    char *before = format_all(cfg);
    char err[512] = "";
    int rc = fy_config_load_string(cfg, text, "t.conf", err, sizeof(err));
    if (rc != -FY_EINVAL || strcmp(err, msg) != 0) {
        fail_msg("input \"%s\": rc %d err \"%s\"; expected -FY_EINVAL and \"%s\"", text, rc, err,
                 msg);
    }
    char *after = format_all(cfg);
    assert_string_equal(before, after);
    free(before);
    free(after);
    cfg_free(cfg);
}

/* Loads text into a fresh broker config, which must succeed. */
static fy_config *load_ok(fy_broker_config *bc, const char *text)
{
    fy_config *cfg = broker_cfg(bc);
    char err[512] = "";
    int rc = fy_config_load_string(cfg, text, "t.conf", err, sizeof(err));
    if (rc != FY_OK) {
        fail_msg("input \"%s\": rc %d err \"%s\"", text, rc, err);
    }
    return cfg;
}

/* A section of every type, as an adapter would register it. */
typedef struct tconf {
    uint64_t size;
    uint64_t dur;
    uint64_t num;
    bool flag;
    char *name;
    int color;
} tconf;

static const char *const colors[] = {"red", "green", "blue", NULL};

static const fy_config_key tkeys[] = {
    FY_CONFIG_KEY_SIZE("size", tconf, size, "0", 0, UINT64_MAX, "A size."),
    FY_CONFIG_KEY_DURATION("dur", tconf, dur, "0", 0, UINT64_MAX, "A duration."),
    FY_CONFIG_KEY_UINT("num", tconf, num, "7", 0, UINT64_MAX, "A number."),
    FY_CONFIG_KEY_BOOL("flag", tconf, flag, "off", "A flag."),
    FY_CONFIG_KEY_STRING("name", tconf, name, "x y", "A name."),
    FY_CONFIG_KEY_ENUM("color", tconf, color, "green", colors, "A color."),
};

static fy_config *test_cfg(tconf *t)
{
    fy_config *cfg = fy_config_new();
    assert_int_equal(fy_config_add_section(cfg, "test", tkeys, 6, t), FY_OK);
    return cfg;
}

/* ---- Defaults ------------------------------------------------------------------------------ */

static void test_config_defaults(void **state)
{
    fy_broker_config bc;
    memset(&bc, 0xA5, sizeof(bc)); /* registration must set every field, whatever was there */
    bc.data_dir = NULL;
    fy_config *cfg = broker_cfg(&bc);

    assert_string_equal(bc.data_dir, "./data");
    assert_int_equal(bc.flush, 0);     /* async */
    assert_int_equal(bc.log_level, 1); /* info */
    assert_true(bc.auto_create_topics);
    assert_int_equal(bc.default_queues, 8);
    assert_int_equal(bc.max_message_size, 4 * 1024 * 1024);
    assert_int_equal(bc.retention_ms, 72ULL * 3600 * 1000);
    assert_int_equal(bc.retention_bytes, 0);
    assert_int_equal(bc.ack_timeout_ms, 30000);
    assert_int_equal(bc.max_reconsume, 16);
    assert_int_equal(bc.max_delay_ms, 40ULL * 86400 * 1000);
    assert_int_equal(bc.tx_check_after_ms, 6000);
    assert_int_equal(bc.tx_check_interval_ms, 60000);
    assert_int_equal(bc.tx_max_checks, 15);
    assert_int_equal(bc.store_cache_size, 64ULL << 20);
    assert_int_equal(bc.store_write_buffer, 64ULL << 20);
    assert_int_equal(bc.store_max_commit, 16ULL << 20);
    assert_int_equal(bc.broker_id, 0);
    assert_string_equal(bc.native.listen, "127.0.0.1");
    assert_int_equal(bc.native.port, 10911);
    assert_string_equal(bc.admin.listen, "127.0.0.1");
    assert_int_equal(bc.admin.port, 8081);
    assert_string_equal(get(cfg, "mqtt", "enabled"), "true");
    assert_string_equal(get(cfg, "mqtt", "listen"), "127.0.0.1");
    assert_string_equal(get(cfg, "mqtt", "port"), "1883");
    assert_string_equal(get(cfg, "amqp", "enabled"), "true");
    assert_string_equal(get(cfg, "amqp", "listen"), "127.0.0.1");
    assert_string_equal(get(cfg, "amqp", "port"), "5672");

    assert_int_equal(bc.native.hello_timeout_ms, 10000);
    assert_int_equal(bc.limits.max_connections, 0);
    assert_int_equal(bc.limits.max_connect_rate, 100);
    assert_int_equal(bc.limits.connect_burst, 200);
    assert_int_equal(bc.limits.max_subscriptions, 1000);
    assert_int_equal(bc.limits.max_queued_bytes, 1 << 20);

    assert_string_equal(get(cfg, "tls", "certfile"), "none");
    assert_string_equal(get(cfg, "tls", "tls_version"), "tlsv1.2");
    assert_string_equal(get(cfg, "mqtt", "tls_port"), "8883");
    assert_string_equal(get(cfg, "amqp", "tls_port"), "5671");
    assert_int_equal(bc.native.tls_port, 10912);
    assert_false(bc.admin.tls);

    assert_int_equal(fy_config_section_count(cfg), 7);
    const char *names[] = {"", "native", "admin", "limits", "tls", "mqtt", "amqp"};
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(fy_config_section_at(cfg, i)->name, names[i]);
    }
    assert_null(fy_config_section_at(cfg, 7));
    cfg_free(cfg);
    assert_null(bc.data_dir); /* strings freed and cleared */
    assert_null(bc.native.listen);
}

/* ---- Units --------------------------------------------------------------------------------- */

static void test_config_size_units(void **state)
{
    static const struct {
        const char *text;
        uint64_t bytes;
    } cases[] = {
        {"0", 0},
        {"1", 1},
        {"512", 512},
        {"512B", 512},
        {"1K", 1024},
        {"1KiB", 1024},
        {"3M", 3ULL << 20},
        {"3MiB", 3ULL << 20},
        {"2G", 2ULL << 30},
        {"2GiB", 2ULL << 30},
        {"5T", 5ULL << 40},
        {"5TiB", 5ULL << 40},
        {"4 MiB", 4ULL << 20},
        {"007KiB", 7 * 1024},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183GiB", 17179869183ULL << 30},
    };
    tconf t;
    fy_config *cfg = test_cfg(&t);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        t.size = 12345;
        int rc = fy_config_set(cfg, "test", "size", cases[i].text, err, sizeof(err));
        if (rc != FY_OK || t.size != cases[i].bytes) {
            fail_msg("size '%s': rc %d err '%s' value %llu, expected %llu", cases[i].text, rc, err,
                     (unsigned long long)t.size, (unsigned long long)cases[i].bytes);
        }
        /* The same through a file. */
        char text[128];
        snprintf(text, sizeof(text), "[test]\nsize %s\n", cases[i].text);
        t.size = 12345;
        assert_int_equal(fy_config_load_string(cfg, text, "t.conf", err, sizeof(err)), FY_OK);
        assert_int_equal(t.size, cases[i].bytes);
    }
    cfg_free(cfg);
}

static void test_config_duration_units(void **state)
{
    static const struct {
        const char *text;
        uint64_t ms;
    } cases[] = {
        {"0", 0},         {"0ms", 0},
        {"250ms", 250},   {"1s", 1000},
        {"30s", 30000},   {"5m", 300000},
        {"2h", 7200000},  {"72h", 259200000},
        {"1d", 86400000}, {"40d", 3456000000ULL},
        {"1 s", 1000},    {"213503982334d", 213503982334ULL * 86400000},
    };
    tconf t;
    fy_config *cfg = test_cfg(&t);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        t.dur = 12345;
        int rc = fy_config_set(cfg, "test", "dur", cases[i].text, err, sizeof(err));
        if (rc != FY_OK || t.dur != cases[i].ms) {
            fail_msg("duration '%s': rc %d err '%s' value %llu, expected %llu", cases[i].text, rc,
                     err, (unsigned long long)t.dur, (unsigned long long)cases[i].ms);
        }
    }
    cfg_free(cfg);
}

static void test_config_bool_enum_string(void **state)
{
    tconf t;
    fy_config *cfg = test_cfg(&t);
    char err[256];
    assert_false(t.flag);
    assert_string_equal(t.name, "x y");
    assert_int_equal(t.color, 1);
    const char *yes[] = {"true", "yes", "on"};
    const char *no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fy_config_set(cfg, "test", "flag", yes[i], err, sizeof(err)), FY_OK);
        assert_true(t.flag);
        assert_int_equal(fy_config_set(cfg, "test", "flag", no[i], err, sizeof(err)), FY_OK);
        assert_false(t.flag);
    }
    assert_int_equal(fy_config_set(cfg, "test", "color", "blue", err, sizeof(err)), FY_OK);
    assert_int_equal(t.color, 2);
    assert_int_equal(fy_config_set(cfg, "test", "color", "red", err, sizeof(err)), FY_OK);
    assert_int_equal(t.color, 0);
    assert_int_equal(fy_config_set(cfg, "test", "color", "Red", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "bad value 'Red' for key 'color': expected one of red, green, blue");
    assert_int_equal(fy_config_set(cfg, "test", "flag", "1", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err,
                        "bad value '1' for key 'flag': expected one of true, false, yes, no, on, "
                        "off");
    cfg_free(cfg);
}

/* ---- Errors -------------------------------------------------------------------------------- */

static void test_config_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"max_message_size 12QB\n", "t.conf:1: bad size '12QB' for key 'max_message_size'"},
        {"max_message_size 4MB\n", "t.conf:1: bad size '4MB' for key 'max_message_size'"},
        {"max_message_size MiB\n", "t.conf:1: bad size 'MiB' for key 'max_message_size'"},
        {"max_message_size -1\n", "t.conf:1: bad size '-1' for key 'max_message_size'"},
        {"max_message_size 1.5MiB\n", "t.conf:1: bad size '1.5MiB' for key 'max_message_size'"},
        {"flush fast\n", "t.conf:1: bad value 'fast' for key 'flush': expected one of async, sync"},
        {"log_level trace\n", "t.conf:1: bad value 'trace' for key 'log_level': expected one of "
                              "debug, info, warn, error"},
        {"auto_create_topics maybe\n", "t.conf:1: bad value 'maybe' for key 'auto_create_topics':"
                                       " expected one of true, false, yes, no, on, off"},
        {"default_queues 8x\n", "t.conf:1: bad number '8x' for key 'default_queues'"},
        {"default_queues 8 KiB\n", "t.conf:1: bad number '8 KiB' for key 'default_queues'"},
        {"default_queues +8\n", "t.conf:1: bad number '+8' for key 'default_queues'"},
        {"default_queues 0x10\n", "t.conf:1: bad number '0x10' for key 'default_queues'"},
        {"ack_timeout 30\n",
         "t.conf:1: bad duration '30' for key 'ack_timeout': missing unit (ms, s, m, h or d)"},
        {"ack_timeout 30sec\n", "t.conf:1: bad duration '30sec' for key 'ack_timeout'"},
        {"ack_timeout 1h30m\n", "t.conf:1: bad duration '1h30m' for key 'ack_timeout'"},
        {"retention 1.5h\n", "t.conf:1: bad duration '1.5h' for key 'retention'"},
        {"[mqtt]\nfoo 1\n", "t.conf:2: unknown key 'foo' in section [mqtt]"},
        {"foo 1\n", "t.conf:1: unknown key 'foo' at top level"},
        {"port=1883\n", "t.conf:1: unknown key 'port=1883' at top level"},
        {"port 1883\n", "t.conf:1: unknown key 'port' at top level"},
        {"[native]\ndata_dir /x\n", "t.conf:2: unknown key 'data_dir' in section [native]"},
        {"# c\n\n[nope]\nport 1\n", "t.conf:3: unknown section [nope]"},
        {"[MQTT]\n", "t.conf:1: unknown section [MQTT]"},
        {"\n# c\nflush sync\nflush async\n",
         "t.conf:4: duplicate key 'flush' at top level (first at line 3)"},
        {"[mqtt]\nport 1\n[amqp]\nport 2\n[mqtt]\nport 3\n",
         "t.conf:6: duplicate key 'port' in section [mqtt] (first at line 2)"},
        {"data_dir\n", "t.conf:1: missing value for key 'data_dir'"},
        {"data_dir \t  \r\n", "t.conf:1: missing value for key 'data_dir'"},
        {"[mqtt]\n  port", "t.conf:2: missing value for key 'port'"},
        {"[\n", "t.conf:1: bad section header '['"},
        {"[mqtt\n", "t.conf:1: bad section header '[mqtt'"},
        {"[]\n", "t.conf:1: bad section header '[]'"},
        {"[ ]\n", "t.conf:1: bad section header '[ ]'"},
        {"[mqtt] # x\n", "t.conf:1: bad section header '[mqtt] # x'"},
        {"[[mqtt]]\n", "t.conf:1: bad section header '[[mqtt]]'"},
        {"flush sync\x01\n", "t.conf:1: control character 0x01 in line"},
        {"flush\rsync\n", "t.conf:1: control character 0x0d in line"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        expect_error(cases[i].text, cases[i].msg);
    }
}

/* A file with good lines before a bad one changes nothing: values are stored only once the
 * whole text is good. */
static void test_config_load_is_atomic(void **state)
{
    fy_broker_config bc;
    fy_config *cfg = broker_cfg(&bc);
    char err[256];
    assert_int_equal(fy_config_load_string(cfg, "flush sync\ndata_dir /a\n[mqtt]\nport 1\nfoo 2\n",
                                           "t.conf", err, sizeof(err)),
                     -FY_EINVAL);
    assert_string_equal(err, "t.conf:5: unknown key 'foo' in section [mqtt]");
    assert_int_equal(bc.flush, 0);
    assert_string_equal(bc.data_dir, "./data");
    assert_string_equal(get(cfg, "mqtt", "port"), "1883");
    cfg_free(cfg);
}

static void test_config_ranges(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"default_queues 0\n",
         "t.conf:1: bad value '0' for key 'default_queues': expected 1..1024"},
        {"default_queues 1025\n",
         "t.conf:1: bad value '1025' for key 'default_queues': expected 1..1024"},
        {"max_message_size 1023B\n",
         "t.conf:1: bad value '1023B' for key 'max_message_size': expected 1KiB..256MiB"},
        {"max_message_size 257MiB\n",
         "t.conf:1: bad value '257MiB' for key 'max_message_size': expected 1KiB..256MiB"},
        {"max_message_size 1G\n",
         "t.conf:1: bad value '1G' for key 'max_message_size': expected 1KiB..256MiB"},
        {"max_reconsume 65\n", "t.conf:1: bad value '65' for key 'max_reconsume': expected 0..64"},
        {"broker_id 65536\n", "t.conf:1: bad value '65536' for key 'broker_id': expected 0..65535"},
        {"[native]\nport 65536\n", "t.conf:2: bad value '65536' for key 'port': expected 0..65535"},
        {"[admin]\nport 99999\n", "t.conf:2: bad value '99999' for key 'port': expected 0..65535"},
        {"ack_timeout 0\n", "t.conf:1: bad value '0' for key 'ack_timeout': expected at least 1ms"},
        {"store_max_commit 1KiB\n",
         "t.conf:1: bad value '1KiB' for key 'store_max_commit': expected at least 64KiB"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_error(bad[i].text, bad[i].msg);
    }

    /* The bounds themselves are accepted. */
    fy_broker_config bc;
    fy_config *cfg = load_ok(&bc, "default_queues 1024\nmax_message_size 256MiB\nmax_reconsume "
                                  "64\nbroker_id 65535\n[native]\nport 65535\n[mqtt]\nport 0\n");
    assert_int_equal(bc.default_queues, 1024);
    assert_int_equal(bc.max_message_size, 256ULL << 20);
    assert_int_equal(bc.max_reconsume, 64);
    assert_int_equal(bc.broker_id, 65535);
    assert_int_equal(bc.native.port, 65535);
    assert_string_equal(get(cfg, "mqtt", "port"), "0");
    cfg_free(cfg);
    cfg = load_ok(&bc, "default_queues 1\nmax_message_size 1KiB\nmax_reconsume 0\n");
    assert_int_equal(bc.default_queues, 1);
    assert_int_equal(bc.max_message_size, 1024);
    assert_int_equal(bc.max_reconsume, 0);
    cfg_free(cfg);
}

static void test_config_overflow(void **state)
{
    expect_error("retention_bytes 99999999999999999999GiB\n",
                 "t.conf:1: bad size '99999999999999999999GiB' for key 'retention_bytes': too "
                 "large");
    expect_error("retention_bytes 18446744073709551616\n",
                 "t.conf:1: bad size '18446744073709551616' for key 'retention_bytes': too large");
    /* 2^34 GiB = 2^64 bytes: one past the largest. */
    expect_error("retention_bytes 17179869184GiB\n",
                 "t.conf:1: bad size '17179869184GiB' for key 'retention_bytes': too large");
    expect_error("retention 213503982335d\n",
                 "t.conf:1: bad duration '213503982335d' for key 'retention': too large");
    expect_error("default_queues 99999999999999999999\n",
                 "t.conf:1: bad number '99999999999999999999' for key 'default_queues': too "
                 "large");
    expect_error("broker_id 18446744073709551617\n",
                 "t.conf:1: bad number '18446744073709551617' for key 'broker_id': too large");
    /* The largest values that fit. */
    fy_broker_config bc;
    fy_config *cfg =
        load_ok(&bc, "retention_bytes 18446744073709551615\nretention 213503982334d\n");
    assert_int_equal(bc.retention_bytes, UINT64_MAX);
    assert_int_equal(bc.retention_ms, 213503982334ULL * 86400000);
    cfg_free(cfg);
}

/* ---- Syntax -------------------------------------------------------------------------------- */

static void test_config_comments_blank_crlf(void **state)
{
    fy_broker_config bc;
    fy_config *cfg = load_ok(&bc, "\xEF\xBB\xBF# a comment\r\n"
                                  "\r\n"
                                  "   # an indented comment\r\n"
                                  "\t\r\n"
                                  "flush sync\r\n"
                                  "  data_dir\t /var/lib/my ferry # not a comment  \r\n"
                                  "[mqtt]\r\n"
                                  "\tport    1884   \r\n"
                                  "listen ::1\r\n"
                                  "[ amqp ]\r\n"
                                  "enabled off"); /* no newline at the end */
    assert_int_equal(bc.flush, 1);
    assert_string_equal(bc.data_dir, "/var/lib/my ferry # not a comment");
    assert_string_equal(get(cfg, "mqtt", "port"), "1884");
    assert_string_equal(get(cfg, "mqtt", "listen"), "::1");
    assert_string_equal(get(cfg, "amqp", "enabled"), "false");
    assert_string_equal(get(cfg, "mqtt", "enabled"), "true");
    cfg_free(cfg);

    /* Empty and comment-only texts are fine and change nothing. */
    const char *empties[] = {"", "\n", "\n\n\n", "# only\n#", "   ", "\r\n\r\n"};
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        cfg = load_ok(&bc, empties[i]);
        assert_string_equal(bc.data_dir, "./data");
        cfg_free(cfg);
    }
}

static void test_config_set_overrides(void **state)
{
    fy_broker_config bc;
    fy_config *cfg = load_ok(&bc, "data_dir /from/file\n[mqtt]\nport 1999\n");
    char err[256] = "";
    assert_int_equal(fy_config_set(cfg, "", "data_dir", "/from/cli", err, sizeof(err)), FY_OK);
    assert_string_equal(bc.data_dir, "/from/cli");
    assert_int_equal(fy_config_set(cfg, NULL, "flush", "sync", err, sizeof(err)), FY_OK);
    assert_int_equal(bc.flush, 1);
    assert_int_equal(fy_config_set(cfg, "mqtt", "port", " 1884 ", err, sizeof(err)), FY_OK);
    assert_string_equal(get(cfg, "mqtt", "port"), "1884");
    assert_int_equal(fy_config_set(cfg, "", "log_level", "debug", err, sizeof(err)), FY_OK);
    assert_int_equal(bc.log_level, 0);

    /* Errors: no file:line prefix, nothing changes. */
    assert_int_equal(fy_config_set(cfg, "mqtt", "port", "70000", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "bad value '70000' for key 'port': expected 0..65535");
    assert_string_equal(get(cfg, "mqtt", "port"), "1884");
    assert_int_equal(fy_config_set(cfg, "nope", "port", "1", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "unknown section [nope]");
    assert_int_equal(fy_config_set(cfg, "mqtt", "foo", "1", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "unknown key 'foo' in section [mqtt]");
    assert_int_equal(fy_config_set(cfg, "", "foo", "1", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "unknown key 'foo' at top level");
    assert_int_equal(fy_config_set(cfg, "", "flush", "", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "missing value for key 'flush'");
    assert_int_equal(fy_config_set(cfg, "", "flush", NULL, err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "missing value for key 'flush'");
    assert_int_equal(fy_config_set(cfg, "", "data_dir", "a\nb", err, sizeof(err)), -FY_EINVAL);
    assert_string_equal(err, "bad value 'a?b' for key 'data_dir': control character");
    assert_string_equal(bc.data_dir, "/from/cli");
    assert_int_equal(bc.flush, 1);
    cfg_free(cfg);
}

/* ---- Output -------------------------------------------------------------------------------- */

static void test_config_format_reloads(void **state)
{
    fy_broker_config a, b;
    fy_config *ca = load_ok(&a, "data_dir /srv/ferry data\nflush sync\nlog_level warn\n"
                                "auto_create_topics no\ndefault_queues 16\n"
                                "max_message_size 1500B\nretention 1500ms\nretention_bytes 3T\n"
                                "ack_timeout 90s\nmax_delay 0\ntx_check_after 2m\n"
                                "broker_id 7\n[native]\nlisten 0.0.0.0\nport 0\n"
                                "[amqp]\nenabled false\nport 5673\n");
    char *text = format_all(ca);
    /* Canonical forms: the largest exact unit. */
    assert_non_null(strstr(text, "\nmax_message_size 1500B\n"));
    assert_non_null(strstr(text, "\nretention 1500ms\n"));
    assert_non_null(strstr(text, "\nretention_bytes 3TiB\n"));
    assert_non_null(strstr(text, "\nack_timeout 90s\n"));
    assert_non_null(strstr(text, "\nmax_delay 0\n"));
    assert_non_null(strstr(text, "\ntx_check_after 2m\n"));
    assert_non_null(strstr(text, "\nstore_cache_size 64MiB\n"));
    assert_non_null(strstr(text, "\n\n[amqp]\nenabled false\nlisten 127.0.0.1\nport 5673\n"));
    const char *head = "data_dir /srv/ferry data\nflush sync\nlog_level warn\n";
    assert_true(strncmp(text, head, strlen(head)) == 0);

    fy_config *cb = load_ok(&b, text);
    for (size_t i = 0; i < fy_config_section_count(ca); i++) {
        const fy_config_section *s = fy_config_section_at(ca, i);
        for (size_t k = 0; k < s->nkeys; k++) {
            char va[4096];
            snprintf(va, sizeof(va), "%s", get(ca, s->name, s->keys[k].name));
            assert_string_equal(va, get(cb, s->name, s->keys[k].name));
        }
    }
    assert_string_equal(b.data_dir, "/srv/ferry data");
    assert_int_equal(b.log_level, 2);
    assert_false(b.auto_create_topics);
    assert_int_equal(b.max_message_size, 1500);
    assert_int_equal(b.retention_ms, 1500);
    assert_int_equal(b.retention_bytes, 3ULL << 40);
    assert_int_equal(b.native.port, 0);
    assert_string_equal(get(cb, "amqp", "enabled"), "false");
    char *text2 = format_all(cb);
    assert_string_equal(text, text2);
    free(text);
    free(text2);

    /* get: unknown names. */
    fy_buf out = FY_BUF_INIT;
    assert_int_equal(fy_config_get(ca, "nope", "port", &out), -FY_ENOTFOUND);
    assert_int_equal(fy_config_get(ca, "mqtt", "nope", &out), -FY_ENOTFOUND);
    assert_int_equal(out.len, 0);
    fy_buf_free(&out);
    cfg_free(ca);
    cfg_free(cb);
}

/* ---- Registration -------------------------------------------------------------------------- */

static void test_config_registration(void **state)
{
    /* An adapter registers its own section, and files and format see it. */
    fy_broker_config bc;
    tconf t;
    fy_config *cfg = broker_cfg(&bc);
    assert_int_equal(fy_config_add_section(cfg, "test", tkeys, 6, &t), FY_OK);
    assert_int_equal(fy_config_add_section(cfg, "test", tkeys, 6, &t), -FY_EEXIST);
    assert_int_equal(fy_config_add_section(cfg, "mqtt", tkeys, 6, &t), -FY_EEXIST);
    char err[256] = "";
    assert_int_equal(fy_config_load_string(cfg, "[test]\ncolor blue\nname a b c\n[mqtt]\nport 2\n",
                                           "t.conf", err, sizeof(err)),
                     FY_OK);
    assert_int_equal(t.color, 2);
    assert_string_equal(t.name, "a b c");
    char *text = format_all(cfg);
    assert_non_null(strstr(text, "\n\n[test]\nsize 0\ndur 0\nnum 7\nflag false\nname a b c\n"
                                 "color blue\n"));
    free(text);
    cfg_free(cfg);
    assert_null(t.name);

    /* Bad tables are refused and change nothing. */
    static const char *const none[] = {NULL};
    static const fy_config_key bad_default[] = {
        FY_CONFIG_KEY_UINT("num", tconf, num, "12", 0, 10, "Out of range default."),
    };
    static const fy_config_key bad_default2[] = {
        FY_CONFIG_KEY_STRING("name", tconf, name, "", "Empty default."),
    };
    static const fy_config_key dup_key[] = {
        FY_CONFIG_KEY_UINT("num", tconf, num, "1", 0, 10, "One."),
        FY_CONFIG_KEY_UINT("num", tconf, num, "1", 0, 10, "Two."),
    };
    static const fy_config_key no_choices[] = {
        FY_CONFIG_KEY_ENUM("color", tconf, color, "red", none, "No choices."),
    };
    static const fy_config_key no_doc[] = {
        FY_CONFIG_KEY_UINT("num", tconf, num, "1", 0, 10, ""),
    };
    static const fy_config_key bad_name[] = {
        FY_CONFIG_KEY_UINT("n um", tconf, num, "1", 0, 10, "Space in the name."),
    };
    static const fy_config_key null_default[] = {
        FY_CONFIG_KEY_UINT("num", tconf, num, NULL, 0, 10, "No default."),
    };
    const fy_config_key *tables[] = {bad_default, bad_default2, dup_key,     no_choices,
                                     no_doc,      bad_name,     null_default};
    const size_t sizes[] = {1, 1, 2, 1, 1, 1, 1};
    cfg = fy_config_new();
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        memset(&t, 0, sizeof(t));
        t.num = 99;
        assert_int_equal(fy_config_add_section(cfg, "x", tables[i], sizes[i], &t), -FY_EINVAL);
        assert_int_equal(t.num, 99);
        assert_null(t.name);
    }
    assert_int_equal(fy_config_add_section(cfg, "bad name", tkeys, 6, &t), -FY_EINVAL);
    assert_int_equal(fy_config_section_count(cfg), 0);
    cfg_free(cfg);
    cfg_free(NULL);
}

/* ---- Hostile input ------------------------------------------------------------------------- */

static void test_config_hostile_input(void **state)
{
    fy_broker_config bc;
    fy_config *cfg = broker_cfg(&bc);
    char err[512];

    /* A 100k-character value is a value; a 100k-character key is quoted cut short. */
    size_t big = 100 * 1000;
    char *text = malloc(big + 64);
    memcpy(text, "data_dir ", 9);
    memset(text + 9, 'd', big);
    text[9 + big] = '\0';
    assert_int_equal(fy_config_load_string(cfg, text, "t.conf", err, sizeof(err)), FY_OK);
    assert_int_equal(strlen(bc.data_dir), big);
    memset(text, 'k', big);
    strcpy(text + big, " 1\n");
    assert_int_equal(fy_config_load_string(cfg, text, "t.conf", err, sizeof(err)), -FY_EINVAL);
    assert_true(strncmp(err, "t.conf:1: unknown key 'kkkk", 27) == 0);
    assert_non_null(strstr(err, "...' at top level"));
    assert_true(strlen(err) < 200);
    /* A tiny error buffer is cut, never overrun; none at all is fine. */
    char tiny[8];
    assert_int_equal(fy_config_load_string(cfg, text, "t.conf", tiny, sizeof(tiny)), -FY_EINVAL);
    assert_string_equal(tiny, "t.conf:");
    assert_int_equal(fy_config_load_string(cfg, text, "t.conf", NULL, 0), -FY_EINVAL);
    free(text);

    /* NUL bytes inside the text. */
    static const char nul[] = "flush sync\n[mqtt]\nport 1\0 2\n";
    assert_int_equal(fy_config_load_mem(cfg, nul, sizeof(nul) - 1, "n.conf", err, sizeof(err)),
                     -FY_EINVAL);
    assert_string_equal(err, "n.conf:3: control character 0x00 in line");
    assert_int_equal(bc.flush, 0);

    /* Random lines from hostile pieces: only FY_OK or -FY_EINVAL, and one line of error. */
    static const char *const pieces[] = {"[",
                                         "]",
                                         "[mqtt]",
                                         "[amqp]",
                                         "#",
                                         " ",
                                         "\t",
                                         "\r",
                                         "\n",
                                         "\r\n",
                                         "port",
                                         "flush",
                                         "sync",
                                         "data_dir",
                                         "0",
                                         "99",
                                         "MiB",
                                         "d",
                                         "ms",
                                         "x",
                                         "\0",
                                         "\xff",
                                         "\xEF\xBB\xBF",
                                         "18446744073709551616",
                                         "on",
                                         "listen",
                                         "[]",
                                         "=",
                                         "enabled",
                                         "\x7f",
                                         "max_message_size",
                                         "4"};
    const size_t npieces = sizeof(pieces) / sizeof(pieces[0]);
    unsigned seed = 12345;
    char buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        int n = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 24;
        for (int j = 0; j < n; j++) {
            seed = seed * 1103515245 + 12345;
            const char *p = pieces[(seed >> 16) % npieces];
            size_t pl = p[0] ? strlen(p) : 1;
            if (len + pl < sizeof(buf)) {
                memcpy(buf + len, p, pl);
                len += pl;
            }
        }
        err[0] = '\0';
        int rc = fy_config_load_mem(cfg, buf, len, "r.conf", err, sizeof(err));
        if (rc != FY_OK && rc != -FY_EINVAL) {
            fail_msg("iteration %d: rc %d", iter, rc);
        }
        if (rc != FY_OK && (strncmp(err, "r.conf:", 7) != 0 || strchr(err, '\n'))) {
            fail_msg("iteration %d: error \"%s\"", iter, err);
        }
    }
    cfg_free(cfg);
}

static void test_config_load_file(void **state)
{
    fy_broker_config bc;
    fy_config *cfg = broker_cfg(&bc);
    char err[512], path[4200];
    const char *dir = fy_test_tmpdir("config");

    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    assert_int_equal(fy_config_load_file(cfg, path, err, sizeof(err)), -FY_EIO);
    char want[4400];
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
    assert_string_equal(err, want);

    /* A directory opens but cannot be read. */
    assert_int_equal(fy_config_load_file(cfg, dir, err, sizeof(err)), -FY_EIO);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", dir);
    assert_string_equal(err, want);

    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("# x\n[admin]\nport 8082\nmax_message_size 12QB\n", f);
    fclose(f);
    assert_int_equal(fy_config_load_file(cfg, path, err, sizeof(err)), -FY_EINVAL);
    snprintf(want, sizeof(want), "%s:4: unknown key 'max_message_size' in section [admin]", path);
    assert_string_equal(err, want);

    f = fopen(path, "wb");
    fputs("# x\n[admin]\nport 8082", f);
    fclose(f);
    assert_int_equal(fy_config_load_file(cfg, path, err, sizeof(err)), FY_OK);
    assert_int_equal(bc.admin.port, 8082);

    cfg_free(cfg);
    fy_test_rmrf(dir);
}

/* ---- conf/ferry.conf against the tables ---------------------------------------------------- */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s", path);
    }
    fy_buf b = FY_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        fy_buf_append(&b, chunk, n);
    }
    fclose(f);
    fy_buf_append(&b, "", 1);
    char *s = strdup((const char *)b.data);
    fy_buf_free(&b);
    return s;
}

static const fy_config_key *find_key(const fy_config *cfg, const char *sec, const char *key)
{
    for (size_t i = 0; i < fy_config_section_count(cfg); i++) {
        const fy_config_section *s = fy_config_section_at(cfg, i);
        if (strcmp(s->name, sec) != 0) {
            continue;
        }
        for (size_t k = 0; k < s->nkeys; k++) {
            if (strcmp(s->keys[k].name, key) == 0) {
                return &s->keys[k];
            }
        }
    }
    return NULL;
}

static void test_config_conf_file_matches_tables(void **state)
{
    char path[4096];
    fy_test_source_path("conf/ferry.conf", path, sizeof(path));

    /* (a) It loads, with the adapters' sections. */
    fy_broker_config fbc, dbc;
    fy_config *file = broker_cfg(&fbc);
    fy_config *dflt = broker_cfg(&dbc);

    char err[512] = "";
    int rc = fy_config_load_file(file, path, err, sizeof(err));
    if (rc != FY_OK) {
        fail_msg("%s does not load: %s", path, err);
    }

    /* Read it ourselves: sections, key lines, and the line above each key. */
    char *text = read_all(path);
    char *lines[1024];
    size_t nlines = 0;
    for (char *p = text, *nl; p && *p && nlines < 1024; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) {
            *nl = '\0';
        }
        size_t n = strlen(p);
        if (n > 0 && p[n - 1] == '\r') {
            p[n - 1] = '\0';
        }
        lines[nlines++] = p;
    }
    assert_true(nlines < 1024);

    size_t counts[64][64];
    memset(counts, 0, sizeof(counts));
    assert_true(fy_config_section_count(dflt) <= 64);
    char section[128] = "";
    int failures = 0;
    for (size_t i = 0; i < nlines; i++) {
        const char *l = lines[i];
        while (*l == ' ' || *l == '\t') {
            l++;
        }
        if (*l == '\0' || *l == '#') {
            continue;
        }
        if (*l == '[') {
            const char *end = strchr(l, ']');
            assert_non_null(end);
            snprintf(section, sizeof(section), "%.*s", (int)(end - l - 1), l + 1);
            continue;
        }
        char key[128];
        size_t klen = strcspn(l, " \t");
        snprintf(key, sizeof(key), "%.*s", (int)klen, l);

        /* (c) Every key in the file is in the tables. */
        const fy_config_key *k = find_key(dflt, section, key);
        if (!k) {
            print_error("conf/ferry.conf:%zu: key '%s' in [%s] is not in the tables\n", i + 1, key,
                        section);
            failures++;
            continue;
        }
        size_t si = 0;
        while (strcmp(fy_config_section_at(dflt, si)->name, section) != 0) {
            si++;
        }
        counts[si][(size_t)(k - fy_config_section_at(dflt, si)->keys)]++;

        /* (e) Exactly one doc line above it: the table's doc. */
        char doc[512];
        snprintf(doc, sizeof(doc), "# %s", k->doc);
        if (i == 0 || strcmp(lines[i - 1], doc) != 0) {
            print_error("conf/ferry.conf:%zu: key '%s' in [%s] needs the line \"%s\" above it\n",
                        i + 1, key, section, doc);
            failures++;
        } else if (i >= 2 && lines[i - 2][0] == '#') {
            print_error("conf/ferry.conf:%zu: key '%s' in [%s] has more than one comment line\n",
                        i + 1, key, section);
            failures++;
        }
    }

    /* (b) Every key of every section is in the file exactly once. */
    for (size_t si = 0; si < fy_config_section_count(dflt); si++) {
        const fy_config_section *s = fy_config_section_at(dflt, si);
        assert_true(s->nkeys <= 64);
        for (size_t k = 0; k < s->nkeys; k++) {
            if (counts[si][k] != 1) {
                print_error("conf/ferry.conf: key '%s' of [%s] appears %zu times, expected once\n",
                            s->keys[k].name, s->name, counts[si][k]);
                failures++;
            }
            /* (d) Its value is the default, compared as parsed values. */
            char fv[4096];
            snprintf(fv, sizeof(fv), "%s", get(file, s->name, s->keys[k].name));
            const char *dv = get(dflt, s->name, s->keys[k].name);
            if (strcmp(fv, dv) != 0) {
                print_error("conf/ferry.conf: key '%s' of [%s] is '%s', the default is '%s' (%s)\n",
                            s->keys[k].name, s->name, fv, dv, s->keys[k].dflt);
                failures++;
            }
        }
    }
    free(text);
    cfg_free(file);
    cfg_free(dflt);
    if (failures) {
        fail_msg("conf/ferry.conf and the key tables differ (%d problems above)", failures);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_size_units),
        cmocka_unit_test(test_config_duration_units),
        cmocka_unit_test(test_config_bool_enum_string),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_load_is_atomic),
        cmocka_unit_test(test_config_ranges),
        cmocka_unit_test(test_config_overflow),
        cmocka_unit_test(test_config_comments_blank_crlf),
        cmocka_unit_test(test_config_set_overrides),
        cmocka_unit_test(test_config_format_reloads),
        cmocka_unit_test(test_config_registration),
        cmocka_unit_test(test_config_hostile_input),
        cmocka_unit_test(test_config_load_file),
        cmocka_unit_test(test_config_conf_file_matches_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
