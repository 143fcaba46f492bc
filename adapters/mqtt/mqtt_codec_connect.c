/* SPDX-License-Identifier: Apache-2.0 */
/* CONNECT and CONNACK: decoders that enforce the protocol name/level pairing and the connect
 * flag rules of MQTT 3.1, 3.1.1 and 5.0, and the matching encoders. */
#include "adapters/mqtt/mqtt_codec.h"
#include "adapters/mqtt/mqtt_topic.h"

#include "ferry/errors.h"

#include <string.h>

#define MQTT_CF_RESERVED 0x01
#define MQTT_CF_CLEAN 0x02
#define MQTT_CF_WILL 0x04
#define MQTT_CF_WILL_QOS_SHIFT 3
#define MQTT_CF_WILL_RETAIN 0x20
#define MQTT_CF_PASSWORD 0x40
#define MQTT_CF_USERNAME 0x80

static int mqtt_connect_fail(const char **why, const char *text, int rc)
{
    if (why) {
        *why = text;
    }
    return rc;
}

static bool mqtt_name_is(fy_slice s, const char *name)
{
    size_t n = strlen(name);
    return s.len == n && memcmp(s.p, name, n) == 0;
}

int fy_mqtt_decode_connect(const fy_mqtt_frame_hdr *h, fy_mqtt_connect *out, const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    fy_slice name;
    uint8_t level, flags;
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->type != FY_MQTT_CONNECT || h->flags != 0) {
        return mqtt_connect_fail(why, "not a CONNECT", FY_MQTT_RC_MALFORMED);
    }
    if (fy_mqtt_get_bin(&r, &name) != FY_MQTT_OK) {
        return mqtt_connect_fail(why, "protocol name cut short", FY_MQTT_RC_MALFORMED);
    }
    level = fy_rd_u8(&r);
    if (r.bad) {
        return mqtt_connect_fail(why, "protocol level missing", FY_MQTT_RC_MALFORMED);
    }
    if (mqtt_name_is(name, "MQTT")) {
        out->version = level;
        if (level != FY_MQTT_V311 && level != FY_MQTT_V5) {
            return mqtt_connect_fail(why, "unsupported protocol level",
                                     FY_MQTT_RC_UNSUPPORTED_VERSION);
        }
    } else if (mqtt_name_is(name, "MQIsdp")) {
        out->version = level;
        if (level != FY_MQTT_V31) {
            return mqtt_connect_fail(why, "unsupported protocol level",
                                     FY_MQTT_RC_UNSUPPORTED_VERSION);
        }
    } else {
        return mqtt_connect_fail(why, "unknown protocol name", FY_MQTT_RC_PROTOCOL_ERROR);
    }

    flags = fy_rd_u8(&r);
    out->keepalive = fy_rd_u16(&r);
    if (r.bad) {
        return mqtt_connect_fail(why, "connect flags or keep alive cut short",
                                 FY_MQTT_RC_MALFORMED);
    }
    if (flags & MQTT_CF_RESERVED) {
        return mqtt_connect_fail(why, "reserved connect flag set", FY_MQTT_RC_MALFORMED);
    }
    out->clean = (flags & MQTT_CF_CLEAN) != 0;
    out->will = (flags & MQTT_CF_WILL) != 0;
    out->will_qos = (flags >> MQTT_CF_WILL_QOS_SHIFT) & 3;
    out->will_retain = (flags & MQTT_CF_WILL_RETAIN) != 0;
    out->has_password = (flags & MQTT_CF_PASSWORD) != 0;
    out->has_username = (flags & MQTT_CF_USERNAME) != 0;
    if (out->will_qos == 3) {
        return mqtt_connect_fail(why, "will QoS 3", FY_MQTT_RC_MALFORMED);
    }
    if (!out->will && (out->will_qos != 0 || out->will_retain)) {
        return mqtt_connect_fail(why, "will QoS or retain without the will flag",
                                 FY_MQTT_RC_MALFORMED);
    }
    if (out->has_password && !out->has_username && out->version != FY_MQTT_V5) {
        return mqtt_connect_fail(why, "password without user name", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    if (out->version == FY_MQTT_V5) {
        rc = fy_mqtt_props_decode(&r, FY_MQTT_PCTX_CONNECT, &out->props, why);
        if (rc != FY_MQTT_OK) {
            return rc;
        }
    }

    if (fy_mqtt_get_str(&r, &out->client_id) != FY_MQTT_OK) {
        return mqtt_connect_fail(why, "client id cut short or not UTF-8", FY_MQTT_RC_MALFORMED);
    }
    if (out->will) {
        if (out->version == FY_MQTT_V5) {
            rc = fy_mqtt_props_decode(&r, FY_MQTT_PCTX_WILL, &out->will_props, why);
            if (rc != FY_MQTT_OK) {
                return rc;
            }
        }
        if (fy_mqtt_get_str(&r, &out->will_topic) != FY_MQTT_OK) {
            return mqtt_connect_fail(why, "will topic cut short or not UTF-8",
                                     FY_MQTT_RC_MALFORMED);
        }
        if (fy_mqtt_get_bin(&r, &out->will_payload) != FY_MQTT_OK) {
            return mqtt_connect_fail(why, "will payload cut short", FY_MQTT_RC_MALFORMED);
        }
    }
    if (out->has_username && fy_mqtt_get_str(&r, &out->username) != FY_MQTT_OK) {
        return mqtt_connect_fail(why, "user name cut short or not UTF-8", FY_MQTT_RC_MALFORMED);
    }
    if (out->has_password && fy_mqtt_get_bin(&r, &out->password) != FY_MQTT_OK) {
        return mqtt_connect_fail(why, "password cut short", FY_MQTT_RC_MALFORMED);
    }
    if (r.left != 0) {
        return mqtt_connect_fail(why, "bytes after the CONNECT payload", FY_MQTT_RC_MALFORMED);
    }

    /* The packet is complete: what is left are answers with a CONNACK, every field filled. */
    if (out->will && !fy_mqtt_topic_name_valid(out->will_topic)) {
        return mqtt_connect_fail(why, "will topic empty or with wildcards",
                                 FY_MQTT_RC_TOPIC_NAME_INVALID);
    }
    if (out->client_id.len == 0 &&
        (out->version == FY_MQTT_V31 || (out->version == FY_MQTT_V311 && !out->clean))) {
        return mqtt_connect_fail(why, "empty client id", FY_MQTT_RC_CLIENT_ID_INVALID);
    }
    return FY_MQTT_OK;
}

static bool mqtt_fits(fy_slice s)
{
    return s.len <= UINT16_MAX;
}

int fy_mqtt_enc_connect(fy_buf *out, const fy_mqtt_connect *c)
{
    uint8_t flags = 0;
    size_t start;
    bool v5 = c->version == FY_MQTT_V5;

    if (c->version < FY_MQTT_V31 || c->version > FY_MQTT_V5 || (c->will && c->will_qos > 2) ||
        !mqtt_fits(c->client_id) ||
        (c->will && (!mqtt_fits(c->will_topic) || !mqtt_fits(c->will_payload))) ||
        (c->has_username && !mqtt_fits(c->username)) ||
        (c->has_password && !mqtt_fits(c->password))) {
        return -FY_EINVAL;
    }
    if (v5 && (fy_mqtt_props_size(&c->props) == SIZE_MAX ||
               (c->will && fy_mqtt_props_size(&c->will_props) == SIZE_MAX))) {
        return -FY_EINVAL;
    }
    if (c->clean) {
        flags |= MQTT_CF_CLEAN;
    }
    if (c->will) {
        flags |= (uint8_t)(MQTT_CF_WILL | (c->will_qos << MQTT_CF_WILL_QOS_SHIFT));
        if (c->will_retain) {
            flags |= MQTT_CF_WILL_RETAIN;
        }
    }
    if (c->has_username) {
        flags |= MQTT_CF_USERNAME;
    }
    if (c->has_password) {
        flags |= MQTT_CF_PASSWORD;
    }

    start = fy_mqtt_pkt_begin(out);
    fy_mqtt_put_str(out, fy_slice_str(c->version == FY_MQTT_V31 ? "MQIsdp" : "MQTT"));
    fy_buf_put_u8(out, c->version);
    fy_buf_put_u8(out, flags);
    fy_buf_put_u16(out, c->keepalive);
    if (v5) {
        fy_mqtt_props_encode(out, &c->props);
    }
    fy_mqtt_put_str(out, c->client_id);
    if (c->will) {
        if (v5) {
            fy_mqtt_props_encode(out, &c->will_props);
        }
        fy_mqtt_put_str(out, c->will_topic);
        fy_mqtt_put_str(out, c->will_payload);
    }
    if (c->has_username) {
        fy_mqtt_put_str(out, c->username);
    }
    if (c->has_password) {
        fy_mqtt_put_str(out, c->password);
    }
    return fy_mqtt_pkt_end(out, start, FY_MQTT_CONNECT << 4, 0, 0);
}

int fy_mqtt_decode_connack(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_connack *out,
                           const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    uint8_t flags, code;
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->type != FY_MQTT_CONNACK || h->flags != 0) {
        return mqtt_connect_fail(why, "not a CONNACK", FY_MQTT_RC_MALFORMED);
    }
    flags = fy_rd_u8(&r);
    code = fy_rd_u8(&r);
    if (r.bad) {
        return mqtt_connect_fail(why, "CONNACK cut short", FY_MQTT_RC_MALFORMED);
    }
    if (flags & 0xfe) {
        return mqtt_connect_fail(why, "reserved acknowledge flags set", FY_MQTT_RC_MALFORMED);
    }
    out->session_present = flags & 1;
    if (version == FY_MQTT_V5) {
        if (code != 0 && code < 0x80) {
            return mqtt_connect_fail(why, "bad CONNACK reason code", FY_MQTT_RC_MALFORMED);
        }
        out->reason = code;
        rc = fy_mqtt_props_decode(&r, FY_MQTT_PCTX_CONNACK, &out->props, why);
        if (rc != FY_MQTT_OK) {
            return rc;
        }
    } else {
        int reason = fy_mqtt_connack_v5_reason(code);
        if (reason < 0) {
            return mqtt_connect_fail(why, "reserved CONNACK return code", FY_MQTT_RC_MALFORMED);
        }
        out->reason = (uint8_t)reason;
    }
    if (r.left != 0) {
        return mqtt_connect_fail(why, "bytes after the CONNACK", FY_MQTT_RC_MALFORMED);
    }
    if (out->session_present && out->reason != 0) {
        return mqtt_connect_fail(why, "session present with a failure code",
                                 FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

static int mqtt_connack_write(fy_buf *out, int version, const fy_mqtt_connack *c,
                              const fy_mqtt_props *props, uint32_t max_packet)
{
    size_t start;

    if (version < FY_MQTT_V31 || version > FY_MQTT_V5) {
        return -FY_EINVAL;
    }
    if (version == FY_MQTT_V5 && fy_mqtt_props_size(props) == SIZE_MAX) {
        return -FY_EINVAL;
    }
    start = fy_mqtt_pkt_begin(out);
    fy_buf_put_u8(out, c->session_present ? 1 : 0);
    if (version == FY_MQTT_V5) {
        fy_buf_put_u8(out, c->reason);
        fy_mqtt_props_encode(out, props);
    } else {
        fy_buf_put_u8(out, fy_mqtt_connack_v3_code(c->reason));
    }
    return fy_mqtt_pkt_end(out, start, FY_MQTT_CONNACK << 4, 0, max_packet);
}

int fy_mqtt_enc_connack(fy_buf *out, int version, const fy_mqtt_connack *c, uint32_t max_packet)
{
    int rc = mqtt_connack_write(out, version, c, &c->props, max_packet);

    if (rc == -FY_ETOOBIG && version == FY_MQTT_V5) {
        fy_mqtt_props p = c->props;
        fy_mqtt_props_drop_optional(&p);
        rc = mqtt_connack_write(out, version, c, &p, max_packet);
    }
    return rc;
}
