/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the MQTT codec: frames arbitrary bytes into packets and decodes each one
 * as MQTT 3.1, 3.1.1 and 5.0 (PUBLISH both as sent by a client and by a server). Whatever
 * decodes is re-encoded; the re-encoding must frame as exactly one packet of the same type and
 * decode to the same fields. Topic names and filters found on the way also go through the
 * topic functions, with a few invariants. Aborts on any mismatch. */
#include "adapters/mqtt/mqtt_codec.h"
#include "adapters/mqtt/mqtt_topic.h"
#include "common/buf.h"

#include "ferry/errors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "mqtt_codec_fuzz: %s\n", what);
        abort();
    }
}

static bool slice_eq(fy_slice a, fy_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static bool rc_known(int rc)
{
    return rc == FY_MQTT_OK || rc == FY_MQTT_RC_MALFORMED || rc == FY_MQTT_RC_PROTOCOL_ERROR ||
           rc == FY_MQTT_RC_UNSUPPORTED_VERSION || rc == FY_MQTT_RC_CLIENT_ID_INVALID ||
           rc == FY_MQTT_RC_TOPIC_NAME_INVALID;
}

/* Frames the re-encoding in out: exactly one packet of type. */
static void reframe(const fy_buf *out, uint8_t type, fy_mqtt_frame_hdr *g)
{
    int rc = fy_mqtt_frame(out->data, out->len, 0, g, NULL);

    fuzz_check(rc == FY_MQTT_OK, "re-encoding does not frame");
    fuzz_check((size_t)g->hdr_len + g->remaining == out->len, "re-encoding is not one packet");
    fuzz_check(g->type == type, "re-encoded type differs");
}

static void check_props(const fy_mqtt_props *a, const fy_mqtt_props *b)
{
    fy_mqtt_prop_iter ia, ib;
    fy_slice ka, va, kb, vb;
    uint32_t sa, sb;
    uint64_t m = a->present;
    fy_buf tmp = FY_BUF_INIT;

    fuzz_check(a->present == b->present, "props: present differs");
#define SAME(bit, cond) fuzz_check(!(m & FY_MQTT_PBIT(bit)) || (cond), "props: " #bit " differs")
    SAME(FY_MQTT_P_PAYLOAD_FORMAT, a->payload_format == b->payload_format);
    SAME(FY_MQTT_P_MESSAGE_EXPIRY, a->message_expiry == b->message_expiry);
    SAME(FY_MQTT_P_CONTENT_TYPE, slice_eq(a->content_type, b->content_type));
    SAME(FY_MQTT_P_RESPONSE_TOPIC, slice_eq(a->response_topic, b->response_topic));
    SAME(FY_MQTT_P_CORRELATION_DATA, slice_eq(a->correlation_data, b->correlation_data));
    SAME(FY_MQTT_P_SUBSCRIPTION_ID, a->sub_id == b->sub_id && a->n_sub_ids == b->n_sub_ids);
    SAME(FY_MQTT_P_SESSION_EXPIRY, a->session_expiry == b->session_expiry);
    SAME(FY_MQTT_P_ASSIGNED_CLIENT_ID, slice_eq(a->assigned_client_id, b->assigned_client_id));
    SAME(FY_MQTT_P_SERVER_KEEP_ALIVE, a->server_keep_alive == b->server_keep_alive);
    SAME(FY_MQTT_P_AUTH_METHOD, slice_eq(a->auth_method, b->auth_method));
    SAME(FY_MQTT_P_AUTH_DATA, slice_eq(a->auth_data, b->auth_data));
    SAME(FY_MQTT_P_REQUEST_PROBLEM_INFO, a->request_problem_info == b->request_problem_info);
    SAME(FY_MQTT_P_WILL_DELAY, a->will_delay == b->will_delay);
    SAME(FY_MQTT_P_REQUEST_RESPONSE_INFO, a->request_response_info == b->request_response_info);
    SAME(FY_MQTT_P_RESPONSE_INFO, slice_eq(a->response_info, b->response_info));
    SAME(FY_MQTT_P_SERVER_REFERENCE, slice_eq(a->server_reference, b->server_reference));
    SAME(FY_MQTT_P_REASON_STRING, slice_eq(a->reason_string, b->reason_string));
    SAME(FY_MQTT_P_RECEIVE_MAXIMUM, a->receive_maximum == b->receive_maximum);
    SAME(FY_MQTT_P_TOPIC_ALIAS_MAXIMUM, a->topic_alias_maximum == b->topic_alias_maximum);
    SAME(FY_MQTT_P_TOPIC_ALIAS, a->topic_alias == b->topic_alias);
    SAME(FY_MQTT_P_MAXIMUM_QOS, a->maximum_qos == b->maximum_qos);
    SAME(FY_MQTT_P_RETAIN_AVAILABLE, a->retain_available == b->retain_available);
    SAME(FY_MQTT_P_USER_PROPERTY, a->n_user_props == b->n_user_props);
    SAME(FY_MQTT_P_MAXIMUM_PACKET_SIZE, a->maximum_packet_size == b->maximum_packet_size);
    SAME(FY_MQTT_P_WILDCARD_SUB_AVAILABLE, a->wildcard_sub_available == b->wildcard_sub_available);
    SAME(FY_MQTT_P_SUB_ID_AVAILABLE, a->sub_id_available == b->sub_id_available);
    SAME(FY_MQTT_P_SHARED_SUB_AVAILABLE, a->shared_sub_available == b->shared_sub_available);
#undef SAME

    ia = fy_mqtt_user_props(a);
    ib = fy_mqtt_user_props(b);
    for (uint32_t n = 0;; n++) {
        bool ha = fy_mqtt_user_prop_next(&ia, &ka, &va);
        bool hb = fy_mqtt_user_prop_next(&ib, &kb, &vb);
        fuzz_check(ha == hb, "props: user property count differs");
        if (!ha) {
            fuzz_check(n == a->n_user_props, "props: user property count wrong");
            break;
        }
        fuzz_check(slice_eq(ka, kb) && slice_eq(va, vb), "props: user property differs");
    }
    ia = fy_mqtt_sub_ids(a);
    ib = fy_mqtt_sub_ids(b);
    for (uint32_t n = 0;; n++) {
        bool ha = fy_mqtt_sub_id_next(&ia, &sa);
        bool hb = fy_mqtt_sub_id_next(&ib, &sb);
        fuzz_check(ha == hb, "props: subscription id count differs");
        if (!ha) {
            fuzz_check(n == a->n_sub_ids, "props: subscription id count wrong");
            break;
        }
        fuzz_check(sa == sb && (n > 0 || sa == a->sub_id), "props: subscription id differs");
    }

    /* The size function agrees with the encoder, and a re-encoded block is the same size. */
    fuzz_check(fy_mqtt_props_encode(&tmp, a) == FY_OK, "props: encode failed");
    fuzz_check(tmp.len == fy_mqtt_props_block_size(a), "props: block size disagrees");
    fuzz_check(fy_mqtt_props_size(a) == a->raw.len, "props: size differs from the decoded one");
    fy_buf_free(&tmp);
}

/* Topic function invariants on a topic name or filter taken from a packet. */
static void fuzz_topic(fy_slice s)
{
    fy_slice group, rest, first;
    bool name_ok = fy_mqtt_topic_name_valid(s);
    bool filter_ok = fy_mqtt_filter_valid(s);
    int share = fy_mqtt_share_parse(s, &group, &rest);

    fuzz_check(!name_ok || filter_ok, "topic: a valid name is not a valid filter");
    if (name_ok) {
        fuzz_check(fy_mqtt_match(s, s), "topic: a name does not match itself");
        fuzz_check(fy_mqtt_match(fy_slice_str("#"), s) == (s.p[0] != '$'),
                   "topic: '#' and '$' rule");
    }
    if (share == FY_MQTT_SHARE_OK) {
        fuzz_check(group.len > 0 && fy_mqtt_filter_valid(rest), "topic: bad share parse");
        fuzz_check(group.p > s.p && rest.p + rest.len == s.p + s.len, "topic: share bounds");
    }
    first = fy_mqtt_first_level(s);
    fuzz_check(first.p == s.p && first.len <= s.len, "topic: first level bounds");
    fuzz_check(first.len == s.len || s.p[first.len] == '/', "topic: first level end");
    if (filter_ok) {
        (void)fy_mqtt_match(s, first);
    }
}

static void fuzz_connect(const fy_mqtt_frame_hdr *h, fy_buf *out)
{
    fy_mqtt_connect a, b;
    fy_mqtt_frame_hdr g;
    int rc = fy_mqtt_decode_connect(h, &a, NULL);

    fuzz_check(rc_known(rc), "connect: unexpected result");
    if (rc == FY_MQTT_RC_CLIENT_ID_INVALID || rc == FY_MQTT_RC_TOPIC_NAME_INVALID) {
        fuzz_check(a.version >= 3 && a.version <= 5, "connect: version not kept");
    }
    if (rc != FY_MQTT_OK) {
        return;
    }
    if (a.will) {
        fuzz_topic(a.will_topic);
    }
    fuzz_check(fy_mqtt_enc_connect(out, &a) == FY_OK, "connect: encode failed");
    reframe(out, FY_MQTT_CONNECT, &g);
    fuzz_check(fy_mqtt_decode_connect(&g, &b, NULL) == FY_OK, "connect: re-encoding fails");
    fuzz_check(a.version == b.version && a.clean == b.clean && a.keepalive == b.keepalive &&
                   slice_eq(a.client_id, b.client_id) && a.will == b.will &&
                   a.will_qos == b.will_qos && a.will_retain == b.will_retain &&
                   slice_eq(a.will_topic, b.will_topic) &&
                   slice_eq(a.will_payload, b.will_payload) && a.has_username == b.has_username &&
                   slice_eq(a.username, b.username) && a.has_password == b.has_password &&
                   slice_eq(a.password, b.password),
               "connect: fields differ");
    fuzz_check(g.remaining == h->remaining, "connect: length differs");
    check_props(&a.props, &b.props);
    check_props(&a.will_props, &b.will_props);
}

static void fuzz_connack(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_connack a, b;
    fy_mqtt_frame_hdr g;
    int rc = fy_mqtt_decode_connack(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "connack: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    fuzz_check(fy_mqtt_enc_connack(out, v, &a, 0) == FY_OK, "connack: encode failed");
    reframe(out, FY_MQTT_CONNACK, &g);
    fuzz_check(fy_mqtt_decode_connack(&g, v, &b, NULL) == FY_OK, "connack: re-encoding fails");
    fuzz_check(a.session_present == b.session_present && a.reason == b.reason,
               "connack: fields differ");
    check_props(&a.props, &b.props);
}

static void fuzz_publish(const fy_mqtt_frame_hdr *h, int v, bool from_server, fy_buf *out)
{
    fy_mqtt_publish a, b;
    fy_mqtt_frame_hdr g;
    fy_buf head = FY_BUF_INIT;
    int rc = fy_mqtt_decode_publish(h, v, from_server, &a, NULL);

    fuzz_check(rc_known(rc), "publish: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    if (a.topic.len > 0) {
        fuzz_topic(a.topic);
    }
    fuzz_check(fy_mqtt_enc_publish(out, v, &a, 0) == FY_OK, "publish: encode failed");
    fuzz_check(fy_mqtt_publish_size(v, &a, a.payload.len) == out->len, "publish: size differs");
    reframe(out, FY_MQTT_PUBLISH, &g);
    fuzz_check(g.flags == h->flags && g.remaining == h->remaining, "publish: header differs");
    fuzz_check(fy_mqtt_decode_publish(&g, v, from_server, &b, NULL) == FY_OK,
               "publish: re-encoding fails");
    fuzz_check(a.dup == b.dup && a.qos == b.qos && a.retain == b.retain &&
                   slice_eq(a.topic, b.topic) && a.packet_id == b.packet_id &&
                   slice_eq(a.payload, b.payload),
               "publish: fields differ");
    check_props(&a.props, &b.props);

    /* The head encoder plus the payload appended by hand gives the same bytes. */
    fuzz_check(fy_mqtt_enc_publish_head(&head, v, &a, a.payload.len, 0) == FY_OK,
               "publish: head encode failed");
    fy_buf_append(&head, a.payload.p, a.payload.len);
    fuzz_check(head.len == out->len && memcmp(head.data, out->data, out->len) == 0,
               "publish: head + payload differs");
    /* One byte under the size: refused, buffer untouched. */
    head.len = 0;
    fuzz_check(fy_mqtt_enc_publish(&head, v, &a, (uint32_t)out->len - 1) == -FY_ETOOBIG &&
                   head.len == 0,
               "publish: max packet not enforced");
    fy_buf_free(&head);
}

static void fuzz_ack(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_ack a, b;
    fy_mqtt_frame_hdr g;
    fy_buf small = FY_BUF_INIT;
    int rc = fy_mqtt_decode_ack(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "ack: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    fuzz_check(fy_mqtt_enc_ack(out, v, h->type, &a, 0) == FY_OK, "ack: encode failed");
    reframe(out, h->type, &g);
    fuzz_check(fy_mqtt_decode_ack(&g, v, &b, NULL) == FY_OK, "ack: re-encoding fails");
    fuzz_check(a.packet_id == b.packet_id && a.reason == b.reason, "ack: fields differ");
    check_props(&a.props, &b.props);

    /* Under a tighter maximum the optional properties go first. */
    rc = fy_mqtt_enc_ack(&small, v, h->type, &a, (uint32_t)out->len - 1);
    if (rc == FY_OK) {
        reframe(&small, h->type, &g);
        fuzz_check(small.len < out->len && fy_mqtt_decode_ack(&g, v, &b, NULL) == FY_OK &&
                       !fy_mqtt_props_has(&b.props, FY_MQTT_P_REASON_STRING) &&
                       !fy_mqtt_props_has(&b.props, FY_MQTT_P_USER_PROPERTY) &&
                       a.packet_id == b.packet_id && a.reason == b.reason,
                   "ack: shrunk packet wrong");
    } else {
        fuzz_check(rc == -FY_ETOOBIG && small.len == 0, "ack: shrink result");
    }
    fy_buf_free(&small);
}

static void fuzz_subscribe(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_subscribe a, b;
    fy_mqtt_sub_entry *e, eb;
    fy_mqtt_sub_iter it;
    fy_mqtt_frame_hdr g;
    size_t n = 0;
    int rc = fy_mqtt_decode_subscribe(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "subscribe: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    fuzz_check(a.count >= 1, "subscribe: no entries");
    e = calloc(a.count, sizeof(*e));
    fuzz_check(e != NULL, "out of memory");
    it = fy_mqtt_sub_entries(&a);
    while (n <= a.count && fy_mqtt_sub_next(&it, &e[n < a.count ? n : 0])) {
        fuzz_check(n < a.count, "subscribe: more entries than counted");
        fuzz_check(e[n].qos <= 2 && e[n].retain_handling <= 2, "subscribe: option range");
        fuzz_topic(e[n].filter);
        n++;
    }
    fuzz_check(n == a.count, "subscribe: fewer entries than counted");
    fuzz_check(fy_mqtt_enc_subscribe(out, v, a.packet_id, &a.props, e, n) == FY_OK,
               "subscribe: encode failed");
    reframe(out, FY_MQTT_SUBSCRIBE, &g);
    fuzz_check(g.remaining == h->remaining, "subscribe: length differs");
    fuzz_check(fy_mqtt_decode_subscribe(&g, v, &b, NULL) == FY_OK, "subscribe: re-encoding fails");
    fuzz_check(a.packet_id == b.packet_id && a.count == b.count, "subscribe: fields differ");
    check_props(&a.props, &b.props);
    it = fy_mqtt_sub_entries(&b);
    for (size_t i = 0; i < n; i++) {
        fuzz_check(fy_mqtt_sub_next(&it, &eb), "subscribe: entry missing");
        fuzz_check(slice_eq(e[i].filter, eb.filter) && e[i].qos == eb.qos &&
                       e[i].no_local == eb.no_local &&
                       e[i].retain_as_published == eb.retain_as_published &&
                       e[i].retain_handling == eb.retain_handling,
                   "subscribe: entry differs");
    }
    fuzz_check(!fy_mqtt_sub_next(&it, &eb), "subscribe: extra entry");
    free(e);
}

static void fuzz_unsubscribe(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_subscribe a, b;
    fy_slice *f, fb;
    fy_mqtt_sub_iter it;
    fy_mqtt_frame_hdr g;
    size_t n = 0;
    int rc = fy_mqtt_decode_unsubscribe(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "unsubscribe: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    f = calloc(a.count, sizeof(*f));
    fuzz_check(f != NULL, "out of memory");
    it = fy_mqtt_sub_entries(&a);
    while (n <= a.count && fy_mqtt_unsub_next(&it, &f[n < a.count ? n : 0])) {
        fuzz_check(n < a.count, "unsubscribe: more entries than counted");
        fuzz_topic(f[n]);
        n++;
    }
    fuzz_check(n == a.count && n >= 1, "unsubscribe: entry count");
    fuzz_check(fy_mqtt_enc_unsubscribe(out, v, a.packet_id, &a.props, f, n) == FY_OK,
               "unsubscribe: encode failed");
    reframe(out, FY_MQTT_UNSUBSCRIBE, &g);
    fuzz_check(fy_mqtt_decode_unsubscribe(&g, v, &b, NULL) == FY_OK,
               "unsubscribe: re-encoding fails");
    fuzz_check(a.packet_id == b.packet_id && a.count == b.count, "unsubscribe: fields differ");
    check_props(&a.props, &b.props);
    it = fy_mqtt_sub_entries(&b);
    for (size_t i = 0; i < n; i++) {
        fuzz_check(fy_mqtt_unsub_next(&it, &fb) && slice_eq(f[i], fb),
                   "unsubscribe: entry differs");
    }
    free(f);
}

static void fuzz_suback(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_suback a, b;
    fy_mqtt_frame_hdr g;
    int rc = fy_mqtt_decode_suback(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "suback: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    rc = h->type == FY_MQTT_SUBACK ? fy_mqtt_enc_suback(out, v, &a, 0)
                                   : fy_mqtt_enc_unsuback(out, v, &a, 0);
    fuzz_check(rc == FY_OK, "suback: encode failed");
    reframe(out, h->type, &g);
    fuzz_check(fy_mqtt_decode_suback(&g, v, &b, NULL) == FY_OK, "suback: re-encoding fails");
    fuzz_check(a.packet_id == b.packet_id && slice_eq(a.reasons, b.reasons),
               "suback: fields differ");
    check_props(&a.props, &b.props);
}

static void fuzz_disconnect(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_disconnect a, b;
    fy_mqtt_frame_hdr g;
    int rc = fy_mqtt_decode_disconnect(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "disconnect: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    fuzz_check(fy_mqtt_enc_disconnect(out, v, &a, 0) == FY_OK, "disconnect: encode failed");
    reframe(out, FY_MQTT_DISCONNECT, &g);
    fuzz_check(fy_mqtt_decode_disconnect(&g, v, &b, NULL) == FY_OK,
               "disconnect: re-encoding fails");
    fuzz_check(a.reason == b.reason, "disconnect: fields differ");
    check_props(&a.props, &b.props);
}

static void fuzz_auth(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_mqtt_auth a, b;
    fy_mqtt_frame_hdr g;
    int rc = fy_mqtt_decode_auth(h, v, &a, NULL);

    fuzz_check(rc_known(rc), "auth: unexpected result");
    if (rc != FY_MQTT_OK) {
        return;
    }
    fuzz_check(fy_mqtt_enc_auth(out, v, &a, 0) == FY_OK, "auth: encode failed");
    reframe(out, FY_MQTT_AUTH, &g);
    fuzz_check(fy_mqtt_decode_auth(&g, v, &b, NULL) == FY_OK, "auth: re-encoding fails");
    fuzz_check(a.reason == b.reason, "auth: fields differ");
    check_props(&a.props, &b.props);
}

static void fuzz_packet(const fy_mqtt_frame_hdr *h, int v, fy_buf *out)
{
    fy_buf_reset(out);
    switch (h->type) {
    case FY_MQTT_CONNECT:
        if (v == FY_MQTT_V5) { /* CONNECT carries its own version */
            fuzz_connect(h, out);
        }
        break;
    case FY_MQTT_CONNACK:
        fuzz_connack(h, v, out);
        break;
    case FY_MQTT_PUBLISH:
        fuzz_publish(h, v, false, out);
        fy_buf_reset(out);
        fuzz_publish(h, v, true, out);
        break;
    case FY_MQTT_PUBACK:
    case FY_MQTT_PUBREC:
    case FY_MQTT_PUBREL:
    case FY_MQTT_PUBCOMP:
        fuzz_ack(h, v, out);
        break;
    case FY_MQTT_SUBSCRIBE:
        fuzz_subscribe(h, v, out);
        break;
    case FY_MQTT_UNSUBSCRIBE:
        fuzz_unsubscribe(h, v, out);
        break;
    case FY_MQTT_SUBACK:
    case FY_MQTT_UNSUBACK:
        fuzz_suback(h, v, out);
        break;
    case FY_MQTT_PINGREQ:
    case FY_MQTT_PINGRESP:
        fuzz_check(fy_mqtt_decode_ping(h, NULL) == (h->remaining == 0 ? 0 : FY_MQTT_RC_MALFORMED),
                   "ping: result");
        break;
    case FY_MQTT_DISCONNECT:
        fuzz_disconnect(h, v, out);
        break;
    case FY_MQTT_AUTH:
        fuzz_auth(h, v, out);
        break;
    default:
        fuzz_check(false, "frame returned a bad type");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fy_buf out = FY_BUF_INIT;
    size_t off = 0;

    while (off < size) {
        fy_mqtt_frame_hdr h, h2;
        const char *why = NULL;
        size_t total;
        int rc = fy_mqtt_frame(data + off, size - off, 0, &h, &why);

        if (rc != FY_MQTT_OK) {
            fuzz_check(rc == FY_MQTT_NEED_MORE || (rc == FY_MQTT_RC_MALFORMED && why != NULL),
                       "unexpected frame result");
            break;
        }
        total = (size_t)h.hdr_len + h.remaining;
        fuzz_check(h.hdr_len >= 2 && h.hdr_len <= 5 && total <= size - off, "frame bounds");
        fuzz_check(h.body.p == data + off + h.hdr_len && h.body.len == h.remaining,
                   "body slice wrong");
        /* The size limit is seen from the header alone, and only when exceeded. */
        fuzz_check(fy_mqtt_frame(data + off, h.hdr_len, (uint32_t)total - 1, &h2, NULL) ==
                       FY_MQTT_RC_PACKET_TOO_LARGE,
                   "max packet not enforced from the header");
        fuzz_check(fy_mqtt_frame(data + off, total, (uint32_t)total, &h2, NULL) == FY_MQTT_OK,
                   "max packet off by one");
        for (int v = FY_MQTT_V31; v <= FY_MQTT_V5; v++) {
            fuzz_packet(&h, v, &out);
        }
        off += total;
    }
    fy_buf_free(&out);
    return 0;
}
