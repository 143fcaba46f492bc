/* SPDX-License-Identifier: Apache-2.0 */
/* broker/limits.c: connection counting against max_connections (admit, refuse with an answer,
 * drop once too many refusals are in progress), release, the automatic limit from the descriptor
 * limit, the per-address connect-rate buckets, and the counters. */
#include "broker/limits.h"
#include "common/log.h"
#include "tests/testutil.h"

#include "ferry/errors.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

static struct sockaddr_in addr(const char *ip)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(40000);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static fy_limits_config cfg_of(uint64_t max_conns, uint64_t rate, uint64_t burst)
{
    fy_limits_config c = {max_conns, rate, burst, 0, 1 << 20};
    return c;
}

static void test_limits_max_connections(void **state)
{
    fy_limits_config cfg = cfg_of(3, 0, 1);
    fy_limits *l = fy_limits_new(&cfg, 20000);
    fy_limits_stats st;
    char ip[32];
    assert_int_equal(fy_limits_max_connections(l), 3);
    for (int i = 0; i < 3; i++) {
        struct sockaddr_in a = addr("10.0.0.1");
        assert_int_equal(fy_limits_accept(l, FY_LIMIT_MQTT, (struct sockaddr *)&a), FY_LIMIT_ADMIT);
    }
    /* Over the limit: answered refusals up to FY_LIMITS_MAX_REFUSING, then dropped at accept. */
    for (int i = 0; i < FY_LIMITS_MAX_REFUSING; i++) {
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 250, i % 250 + 1);
        struct sockaddr_in a = addr(ip);
        assert_int_equal(fy_limits_accept(l, FY_LIMIT_AMQP, (struct sockaddr *)&a),
                         FY_LIMIT_REFUSE);
    }
    struct sockaddr_in a = addr("10.2.0.1");
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_NATIVE, (struct sockaddr *)&a), FY_LIMIT_DROP);
    /* A refusal that ends makes room for the next refusal, not for a connection. */
    fy_limits_release(l, FY_LIMIT_REFUSE);
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_NATIVE, (struct sockaddr *)&a), FY_LIMIT_REFUSE);
    /* A connection that ends makes room for one more. */
    fy_limits_release(l, FY_LIMIT_ADMIT);
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_MQTT, (struct sockaddr *)&a), FY_LIMIT_ADMIT);
    fy_limits_release(l, FY_LIMIT_DROP); /* nothing to release: no change */
    fy_limits_get_stats(l, &st);
    assert_int_equal(st.open, 3);
    assert_int_equal(st.max_connections, 3);
    assert_int_equal(st.refused_connections[FY_LIMIT_AMQP], FY_LIMITS_MAX_REFUSING);
    assert_int_equal(st.refused_connections[FY_LIMIT_NATIVE], 2);
    assert_int_equal(st.refused_connections[FY_LIMIT_MQTT], 0);
    fy_limits_free(l);
}

static void test_limits_automatic_from_nofile(void **state)
{
    fy_limits_config cfg = cfg_of(0, 0, 1);
    fy_limits *l = fy_limits_new(&cfg, 20000);
    assert_int_equal(fy_limits_max_connections(l), 20000 - FY_LIMITS_FD_RESERVE);
    fy_limits_free(l);
    l = fy_limits_new(&cfg, 1024); /* a small descriptor limit: half of it */
    assert_int_equal(fy_limits_max_connections(l), 512);
    fy_limits_free(l);
    assert_true(fy_limits_raise_nofile() > 0);
}

static void test_limits_connect_rate_per_address(void **state)
{
    /* 1 per second with a burst of 5: within one test run no token comes back. */
    fy_limits_config cfg = cfg_of(1000, 1, 5);
    fy_limits *l = fy_limits_new(&cfg, 20000);
    struct sockaddr_in a = addr("192.0.2.1"), b = addr("192.0.2.2");
    struct sockaddr_in6 six;
    fy_limits_stats st;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fy_limits_accept(l, FY_LIMIT_MQTT, (struct sockaddr *)&a), FY_LIMIT_ADMIT);
    }
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_MQTT, (struct sockaddr *)&a), FY_LIMIT_DROP);
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_AMQP, (struct sockaddr *)&a), FY_LIMIT_DROP);
    /* another address has its own bucket */
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_MQTT, (struct sockaddr *)&b), FY_LIMIT_ADMIT);
    memset(&six, 0, sizeof(six));
    six.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", &six.sin6_addr);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fy_limits_accept(l, FY_LIMIT_NATIVE, (struct sockaddr *)&six),
                         FY_LIMIT_ADMIT);
    }
    assert_int_equal(fy_limits_accept(l, FY_LIMIT_NATIVE, (struct sockaddr *)&six), FY_LIMIT_DROP);
    fy_limits_get_stats(l, &st);
    assert_int_equal(st.refused_rate[FY_LIMIT_MQTT], 1);
    assert_int_equal(st.refused_rate[FY_LIMIT_AMQP], 1);
    assert_int_equal(st.refused_rate[FY_LIMIT_NATIVE], 1);
    assert_int_equal(st.rate_addresses, 3);
    assert_int_equal(st.open, 11);
    fy_limits_free(l);
}

static void test_limits_many_addresses_stay_bounded(void **state)
{
    /* 100,000 addresses connecting once each: buckets that are full again are swept, so the map
     * does not keep one entry per address ever seen. A high rate refills them at once. */
    fy_limits_config cfg = cfg_of(1000000, 1000000, 1);
    fy_limits *l = fy_limits_new(&cfg, 20000);
    fy_limits_stats st;
    for (uint32_t i = 0; i < 100000; i++) {
        struct sockaddr_in a;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(0x0a000000u + i);
        fy_limits_accept(l, FY_LIMIT_MQTT, (struct sockaddr *)&a);
    }
    fy_limits_get_stats(l, &st);
    assert_true(st.rate_addresses <= 16384);
    fy_limits_free(l);
}

static void test_limits_null_is_unlimited(void **state)
{
    struct sockaddr_in a = addr("10.0.0.1");
    assert_int_equal(fy_limits_accept(NULL, FY_LIMIT_MQTT, (struct sockaddr *)&a), FY_LIMIT_ADMIT);
    fy_limits_release(NULL, FY_LIMIT_ADMIT);
    assert_int_equal(fy_limits_max_subscriptions(NULL), 0);
    assert_int_equal(fy_limits_max_queued_bytes(NULL), 1 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits_max_connections),
        cmocka_unit_test(test_limits_automatic_from_nofile),
        cmocka_unit_test(test_limits_connect_rate_per_address),
        cmocka_unit_test(test_limits_many_addresses_stay_bounded),
        cmocka_unit_test(test_limits_null_is_unlimited),
    };
    fy_log_set_level(FY_LOG_OFF);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
