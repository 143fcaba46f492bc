/* SPDX-License-Identifier: Apache-2.0 */
/* PUBLISH and its acknowledgements (PUBACK, PUBREC, PUBREL, PUBCOMP): decoders, encoders, and
 * the head-only PUBLISH encoder that lets the caller append the payload without a copy. */
#include "adapters/mqtt/mqtt_codec.h"
#include "adapters/mqtt/mqtt_topic.h"

#include "ferry/errors.h"

#include <string.h>

static int mqtt_pub_fail(const char **why, const char *text, int rc)
{
    if (why) {
        *why = text;
    }
    return rc;
}

int fy_mqtt_decode_publish(const fy_mqtt_frame_hdr *h, int version, bool from_server,
                           fy_mqtt_publish *out, const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->type != FY_MQTT_PUBLISH) {
        return mqtt_pub_fail(why, "not a PUBLISH", FY_MQTT_RC_MALFORMED);
    }
    out->dup = (h->flags & 8) != 0;
    out->qos = (h->flags >> 1) & 3;
    out->retain = (h->flags & 1) != 0;
    if (out->qos == 3) {
        return mqtt_pub_fail(why, "PUBLISH with QoS 3", FY_MQTT_RC_MALFORMED);
    }
    if (out->dup && out->qos == 0) {
        return mqtt_pub_fail(why, "DUP set on a QoS 0 PUBLISH", FY_MQTT_RC_MALFORMED);
    }
    if (fy_mqtt_get_str(&r, &out->topic) != FY_MQTT_OK) {
        return mqtt_pub_fail(why, "topic cut short or not UTF-8", FY_MQTT_RC_MALFORMED);
    }
    if (out->qos > 0) {
        out->packet_id = fy_rd_u16(&r);
        if (r.bad) {
            return mqtt_pub_fail(why, "packet id cut short", FY_MQTT_RC_MALFORMED);
        }
        if (out->packet_id == 0) {
            return mqtt_pub_fail(why, "packet id 0", FY_MQTT_RC_PROTOCOL_ERROR);
        }
    }
    if (version == FY_MQTT_V5) {
        rc = fy_mqtt_props_decode(&r,
                                  from_server ? FY_MQTT_PCTX_PUBLISH_S2C : FY_MQTT_PCTX_PUBLISH_C2S,
                                  &out->props, why);
        if (rc != FY_MQTT_OK) {
            return rc;
        }
    }
    out->payload.p = r.p;
    out->payload.len = r.left;

    if (out->topic.len == 0) {
        if (version != FY_MQTT_V5) {
            return mqtt_pub_fail(why, "empty topic", FY_MQTT_RC_MALFORMED);
        }
        if (!fy_mqtt_props_has(&out->props, FY_MQTT_P_TOPIC_ALIAS)) {
            return mqtt_pub_fail(why, "empty topic without a topic alias",
                                 FY_MQTT_RC_PROTOCOL_ERROR);
        }
    } else if (!fy_mqtt_topic_name_valid(out->topic)) {
        return mqtt_pub_fail(why, "wildcard in topic name", FY_MQTT_RC_TOPIC_NAME_INVALID);
    }
    return FY_MQTT_OK;
}

/* Writes everything but the payload; the remaining length counts payload_len more bytes. */
static int mqtt_publish_head(fy_buf *out, int version, const fy_mqtt_publish *p, size_t payload_len,
                             uint32_t max_packet)
{
    size_t start;
    uint8_t b0;

    if (version < FY_MQTT_V31 || version > FY_MQTT_V5 || p->qos > 2 || p->topic.len > UINT16_MAX) {
        return -FY_EINVAL;
    }
    if (version == FY_MQTT_V5 && fy_mqtt_props_size(&p->props) == SIZE_MAX) {
        return -FY_EINVAL;
    }
    b0 = (uint8_t)(FY_MQTT_PUBLISH << 4 | (p->dup ? 8 : 0) | p->qos << 1 | (p->retain ? 1 : 0));
    start = fy_mqtt_pkt_begin(out);
    fy_mqtt_put_str(out, p->topic);
    if (p->qos > 0) {
        fy_buf_put_u16(out, p->packet_id);
    }
    if (version == FY_MQTT_V5) {
        fy_mqtt_props_encode(out, &p->props);
    }
    return fy_mqtt_pkt_end(out, start, b0, payload_len, max_packet);
}

int fy_mqtt_enc_publish_head(fy_buf *out, int version, const fy_mqtt_publish *p, size_t payload_len,
                             uint32_t max_packet)
{
    return mqtt_publish_head(out, version, p, payload_len, max_packet);
}

int fy_mqtt_enc_publish(fy_buf *out, int version, const fy_mqtt_publish *p, uint32_t max_packet)
{
    int rc = mqtt_publish_head(out, version, p, p->payload.len, max_packet);

    if (rc == FY_OK && p->payload.len > 0) {
        fy_buf_append(out, p->payload.p, p->payload.len);
    }
    return rc;
}

size_t fy_mqtt_publish_size(int version, const fy_mqtt_publish *p, size_t payload_len)
{
    size_t n = 2 + p->topic.len + (p->qos > 0 ? 2 : 0);

    if (p->topic.len > UINT16_MAX || p->qos > 2) {
        return SIZE_MAX;
    }
    if (version == FY_MQTT_V5) {
        size_t pn = fy_mqtt_props_block_size(&p->props);
        if (pn == SIZE_MAX) {
            return SIZE_MAX;
        }
        n += pn;
    }
    if (payload_len > FY_MQTT_MAX_REMAINING || n > FY_MQTT_MAX_REMAINING - payload_len) {
        return SIZE_MAX;
    }
    n += payload_len;
    return 1 + fy_mqtt_vbi_size((uint32_t)n) + n;
}

/* ---- Acknowledgements ------------------------------------------------------------------- */

static bool mqtt_ack_reason_ok(uint8_t type, uint8_t reason)
{
    if (type == FY_MQTT_PUBREL || type == FY_MQTT_PUBCOMP) {
        return reason == 0x00 || reason == 0x92;
    }
    switch (reason) {
    case 0x00:
    case 0x10:
    case 0x80:
    case 0x83:
    case 0x87:
    case 0x90:
    case 0x91:
    case 0x97:
    case 0x99:
        return true;
    default:
        return false;
    }
}

int fy_mqtt_decode_ack(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_ack *out, const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->type < FY_MQTT_PUBACK || h->type > FY_MQTT_PUBCOMP ||
        h->flags != (h->type == FY_MQTT_PUBREL ? 2 : 0)) {
        return mqtt_pub_fail(why, "not a PUBLISH acknowledgement", FY_MQTT_RC_MALFORMED);
    }
    out->packet_id = fy_rd_u16(&r);
    if (r.bad) {
        return mqtt_pub_fail(why, "packet id cut short", FY_MQTT_RC_MALFORMED);
    }
    if (version == FY_MQTT_V5 && r.left > 0) {
        out->reason = fy_rd_u8(&r);
        if (r.left > 0) {
            rc = fy_mqtt_props_decode(&r, FY_MQTT_PCTX_ACK, &out->props, why);
            if (rc != FY_MQTT_OK) {
                return rc;
            }
        }
    }
    if (r.left != 0) {
        return mqtt_pub_fail(why, "bytes after the acknowledgement", FY_MQTT_RC_MALFORMED);
    }
    if (out->packet_id == 0) {
        return mqtt_pub_fail(why, "packet id 0", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    if (!mqtt_ack_reason_ok(h->type, out->reason)) {
        return mqtt_pub_fail(why, "reason code not valid for this packet",
                             FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

static int mqtt_ack_write(fy_buf *out, int version, uint8_t type, const fy_mqtt_ack *a,
                          const fy_mqtt_props *props, uint32_t max_packet)
{
    size_t start, psize = 0;

    if (version < FY_MQTT_V31 || version > FY_MQTT_V5 || type < FY_MQTT_PUBACK ||
        type > FY_MQTT_PUBCOMP) {
        return -FY_EINVAL;
    }
    if (version == FY_MQTT_V5) {
        psize = fy_mqtt_props_size(props);
        if (psize == SIZE_MAX) {
            return -FY_EINVAL;
        }
    }
    start = fy_mqtt_pkt_begin(out);
    fy_buf_put_u16(out, a->packet_id);
    if (version == FY_MQTT_V5 && (a->reason != 0 || psize > 0)) {
        fy_buf_put_u8(out, a->reason);
        if (psize > 0) {
            fy_mqtt_props_encode(out, props);
        }
    }
    return fy_mqtt_pkt_end(out, start, (uint8_t)(type << 4 | (type == FY_MQTT_PUBREL ? 2 : 0)), 0,
                           max_packet);
}

int fy_mqtt_enc_ack(fy_buf *out, int version, uint8_t type, const fy_mqtt_ack *a,
                    uint32_t max_packet)
{
    int rc = mqtt_ack_write(out, version, type, a, &a->props, max_packet);

    if (rc == -FY_ETOOBIG && version == FY_MQTT_V5) {
        fy_mqtt_props p = a->props;
        fy_mqtt_props_drop_optional(&p);
        rc = mqtt_ack_write(out, version, type, a, &p, max_packet);
    }
    return rc;
}
