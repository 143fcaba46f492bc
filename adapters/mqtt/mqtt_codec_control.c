/* SPDX-License-Identifier: Apache-2.0 */
/* PINGREQ, PINGRESP, DISCONNECT and AUTH: the small control packets, with the short forms MQTT 5
 * allows (a DISCONNECT or AUTH without reason code or properties). */
#include "adapters/mqtt/mqtt_codec.h"

#include "ferry/errors.h"

#include <string.h>

static int mqtt_ctl_fail(const char **why, const char *text, int rc)
{
    if (why) {
        *why = text;
    }
    return rc;
}

int fy_mqtt_decode_ping(const fy_mqtt_frame_hdr *h, const char **why)
{
    if ((h->type != FY_MQTT_PINGREQ && h->type != FY_MQTT_PINGRESP) || h->flags != 0) {
        return mqtt_ctl_fail(why, "not a PINGREQ or PINGRESP", FY_MQTT_RC_MALFORMED);
    }
    if (h->remaining != 0) {
        return mqtt_ctl_fail(why, "PING with a body", FY_MQTT_RC_MALFORMED);
    }
    return FY_MQTT_OK;
}

void fy_mqtt_enc_pingreq(fy_buf *out)
{
    fy_buf_put_u8(out, FY_MQTT_PINGREQ << 4);
    fy_buf_put_u8(out, 0);
}

void fy_mqtt_enc_pingresp(fy_buf *out)
{
    fy_buf_put_u8(out, FY_MQTT_PINGRESP << 4);
    fy_buf_put_u8(out, 0);
}

/* Reads the optional "reason code, then properties" tail of DISCONNECT and AUTH. */
static int mqtt_reason_props(fy_rd *r, fy_mqtt_pctx ctx, uint8_t *reason, fy_mqtt_props *props,
                             const char **why)
{
    int rc;

    if (r->left == 0) {
        return FY_MQTT_OK;
    }
    *reason = fy_rd_u8(r);
    if (r->left > 0) {
        rc = fy_mqtt_props_decode(r, ctx, props, why);
        if (rc != FY_MQTT_OK) {
            return rc;
        }
    }
    if (r->left != 0) {
        return mqtt_ctl_fail(why, "bytes after the properties", FY_MQTT_RC_MALFORMED);
    }
    return FY_MQTT_OK;
}

int fy_mqtt_decode_disconnect(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_disconnect *out,
                              const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->type != FY_MQTT_DISCONNECT || h->flags != 0) {
        return mqtt_ctl_fail(why, "not a DISCONNECT", FY_MQTT_RC_MALFORMED);
    }
    if (version != FY_MQTT_V5) {
        if (h->remaining != 0) {
            return mqtt_ctl_fail(why, "DISCONNECT with a body", FY_MQTT_RC_MALFORMED);
        }
        return FY_MQTT_OK;
    }
    rc = mqtt_reason_props(&r, FY_MQTT_PCTX_DISCONNECT, &out->reason, &out->props, why);
    if (rc != FY_MQTT_OK) {
        return rc;
    }
    if (out->reason != 0x00 && out->reason != 0x04 && out->reason < 0x80) {
        return mqtt_ctl_fail(why, "reason code not valid for DISCONNECT",
                             FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

/* Writes the DISCONNECT or AUTH of type with reason and props (v5), in the shortest form. */
static int mqtt_ctl_write(fy_buf *out, uint8_t type, uint8_t reason, const fy_mqtt_props *props,
                          uint32_t max_packet)
{
    size_t psize = fy_mqtt_props_size(props);
    size_t start;

    if (psize == SIZE_MAX) {
        return -FY_EINVAL;
    }
    start = fy_mqtt_pkt_begin(out);
    if (reason != 0 || psize > 0) {
        fy_buf_put_u8(out, reason);
        if (psize > 0) {
            fy_mqtt_props_encode(out, props);
        }
    }
    return fy_mqtt_pkt_end(out, start, (uint8_t)(type << 4), 0, max_packet);
}

static int mqtt_ctl_enc(fy_buf *out, uint8_t type, uint8_t reason, const fy_mqtt_props *props,
                        uint32_t max_packet)
{
    int rc = mqtt_ctl_write(out, type, reason, props, max_packet);

    if (rc == -FY_ETOOBIG) {
        fy_mqtt_props p = *props;
        fy_mqtt_props_drop_optional(&p);
        rc = mqtt_ctl_write(out, type, reason, &p, max_packet);
    }
    return rc;
}

int fy_mqtt_enc_disconnect(fy_buf *out, int version, const fy_mqtt_disconnect *d,
                           uint32_t max_packet)
{
    if (version < FY_MQTT_V31 || version > FY_MQTT_V5) {
        return -FY_EINVAL;
    }
    if (version != FY_MQTT_V5) {
        fy_buf_put_u8(out, FY_MQTT_DISCONNECT << 4);
        fy_buf_put_u8(out, 0);
        return FY_OK;
    }
    return mqtt_ctl_enc(out, FY_MQTT_DISCONNECT, d->reason, &d->props, max_packet);
}

int fy_mqtt_decode_auth(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_auth *out,
                        const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    int rc;

    memset(out, 0, sizeof(*out));
    if (h->type != FY_MQTT_AUTH || h->flags != 0) {
        return mqtt_ctl_fail(why, "not an AUTH", FY_MQTT_RC_MALFORMED);
    }
    if (version != FY_MQTT_V5) {
        return mqtt_ctl_fail(why, "AUTH before MQTT 5", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    rc = mqtt_reason_props(&r, FY_MQTT_PCTX_AUTH, &out->reason, &out->props, why);
    if (rc != FY_MQTT_OK) {
        return rc;
    }
    if (out->reason != 0x00 && out->reason != 0x18 && out->reason != 0x19) {
        return mqtt_ctl_fail(why, "reason code not valid for AUTH", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

int fy_mqtt_enc_auth(fy_buf *out, int version, const fy_mqtt_auth *a, uint32_t max_packet)
{
    if (version != FY_MQTT_V5) {
        return -FY_EINVAL;
    }
    return mqtt_ctl_enc(out, FY_MQTT_AUTH, a->reason, &a->props, max_packet);
}
