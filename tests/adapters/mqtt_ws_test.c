/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the MQTT-over-WebSocket handshake parser (mqtt_ws_parse_request): RFC 6455's
 * example key and accept value, a request arriving in pieces, the subprotocol chosen, frames left
 * in the buffer behind the head, and each refusal with its HTTP status. */
#include "adapters/mqtt/private.h"

#include <event2/buffer.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

#define HEAD_START "GET /mqtt HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define V13 "Sec-WebSocket-Version: 13\r\n"
#define PROTO "Sec-WebSocket-Protocol: mqtt\r\n"

/* Parses text (all of it at once) with path /mqtt and origins "*", or those given. */
static int parse_with(const char *text, const char *path, const char *origins, mqtt_ws_request *r,
                      size_t *left)
{
    struct evbuffer *in = evbuffer_new();
    int st;
    assert_non_null(in);
    evbuffer_add(in, text, strlen(text));
    st = mqtt_ws_parse_request(in, path, origins, r);
    if (left) {
        *left = evbuffer_get_length(in);
    }
    evbuffer_free(in);
    return st;
}

static int parse(const char *text, mqtt_ws_request *r)
{
    return parse_with(text, "/mqtt", "*", r, NULL);
}

static void test_mqtt_ws_rfc_example(void **state)
{
    mqtt_ws_request r;
    size_t left = 0;
    assert_int_equal(parse_with(HEAD_START KEY V13 PROTO "\r\n\x82\x80", "/mqtt", "*", &r, &left),
                     101);
    assert_string_equal(r.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_string_equal(r.protocol, "mqtt");
    assert_null(r.why);
    assert_int_equal(left, 2); /* the frame behind the head stays for the connection */
}

static void test_mqtt_ws_in_pieces(void **state)
{
    const char *req = HEAD_START KEY V13 PROTO "\r\n";
    struct evbuffer *in = evbuffer_new();
    mqtt_ws_request r;
    size_t n = strlen(req);
    for (size_t i = 0; i < n - 1; i++) {
        evbuffer_add(in, req + i, 1);
        assert_int_equal(mqtt_ws_parse_request(in, "/mqtt", "*", &r), 0);
    }
    evbuffer_add(in, req + n - 1, 1);
    assert_int_equal(mqtt_ws_parse_request(in, "/mqtt", "*", &r), 101);
    assert_int_equal(evbuffer_get_length(in), 0);
    evbuffer_free(in);
}

static void test_mqtt_ws_subprotocols(void **state)
{
    mqtt_ws_request r;
    assert_int_equal(parse(HEAD_START KEY V13 "Sec-WebSocket-Protocol: chat, mqtt\r\n\r\n", &r),
                     101);
    assert_string_equal(r.protocol, "mqtt");
    assert_int_equal(parse(HEAD_START KEY V13 "Sec-WebSocket-Protocol: chat\r\n"
                                              "Sec-WebSocket-Protocol: mqttv3.1\r\n\r\n",
                           &r),
                     101);
    assert_string_equal(r.protocol, "mqttv3.1");
    /* mqtt wins over mqttv3.1 whatever the order; names are case-sensitive */
    assert_int_equal(parse(HEAD_START KEY V13 "Sec-WebSocket-Protocol: mqttv3.1,mqtt\r\n\r\n", &r),
                     101);
    assert_string_equal(r.protocol, "mqtt");
    assert_int_equal(parse(HEAD_START KEY V13 "Sec-WebSocket-Protocol: MQTT\r\n\r\n", &r), 400);
    assert_int_equal(parse(HEAD_START KEY V13 "\r\n", &r), 400);
    assert_non_null(strstr(r.why, "subprotocol"));
}

static void test_mqtt_ws_refusals(void **state)
{
    mqtt_ws_request r;
    char big[10000];
    assert_int_equal(parse("POST /mqtt HTTP/1.1\r\nHost: b\r\n\r\n", &r), 405);
    assert_int_equal(parse("GET /mqtt HTTP/1.0\r\nHost: b\r\n\r\n", &r), 400);
    assert_int_equal(parse("GET /x HTTP/1.1\r\nHost: b\r\n\r\n", &r), 404);
    assert_int_equal(parse("GET /mqtt HTTP/1.1\r\nHost: b\r\n" KEY V13 PROTO "\r\n", &r), 426);
    assert_int_equal(parse(HEAD_START KEY "Sec-WebSocket-Version: 8\r\n" PROTO "\r\n", &r), 426);
    assert_int_equal(parse(HEAD_START "Sec-WebSocket-Key: abc\r\n" V13 PROTO "\r\n", &r), 400);
    assert_int_equal(
        parse(HEAD_START "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==\r\n" V13 PROTO "\r\n", &r),
        400);
    assert_int_equal(parse(HEAD_START KEY KEY V13 PROTO "\r\n", &r), 400);
    assert_int_equal(
        parse("GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" KEY V13 PROTO
              "\r\n",
              &r),
        400); /* no Host */
    assert_int_equal(parse(HEAD_START "no colon here\r\n\r\n", &r), 400);
    assert_int_equal(parse("\r\n\r\n", &r), 400);
    assert_int_equal(parse("GET\r\n\r\n", &r), 400);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse(big, &r), 431); /* no end of head within 8 KiB */
}

static void test_mqtt_ws_path_and_origin(void **state)
{
    mqtt_ws_request r;
    const char *with_origin = HEAD_START KEY V13 PROTO "Origin: https://a.example\r\n\r\n";
    assert_int_equal(parse_with(with_origin, "/mqtt", "https://a.example http://b", &r, NULL), 101);
    assert_int_equal(parse_with(with_origin, "/mqtt", "http://b", &r, NULL), 403);
    assert_int_equal(parse_with(HEAD_START KEY V13 PROTO "\r\n", "/mqtt", "http://b", &r, NULL),
                     101); /* no Origin: not a browser */
    assert_int_equal(parse_with("GET /mqtt?x=1 HTTP/1.1\r\nHost: b\r\nUpgrade: WebSocket\r\n"
                                "Connection: keep-alive, Upgrade\r\n" KEY V13 PROTO "\r\n",
                                "/mqtt", "*", &r, NULL),
                     101);
    assert_int_equal(parse_with("GET /else/where HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\n" KEY V13 PROTO "\r\n",
                                "*", "*", &r, NULL),
                     101);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mqtt_ws_rfc_example),     cmocka_unit_test(test_mqtt_ws_in_pieces),
        cmocka_unit_test(test_mqtt_ws_subprotocols),    cmocka_unit_test(test_mqtt_ws_refusals),
        cmocka_unit_test(test_mqtt_ws_path_and_origin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
