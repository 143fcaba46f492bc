/* SPDX-License-Identifier: Apache-2.0 */
/* SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK. The decoders validate every entry once and keep
 * the payload as a view; the iterators then walk it without further checks. */
#include "adapters/mqtt/mqtt_codec.h"
#include "adapters/mqtt/mqtt_topic.h"

#include "ferry/errors.h"

#include <string.h>

#define MQTT_SO_QOS 0x03
#define MQTT_SO_NO_LOCAL 0x04
#define MQTT_SO_RAP 0x08
#define MQTT_SO_RH_SHIFT 4

static int mqtt_sub_fail(const char **why, const char *text, int rc)
{
    if (why) {
        *why = text;
    }
    return rc;
}

/* Reads the packet id (and v5 properties) that start SUBSCRIBE and UNSUBSCRIBE. */
static int mqtt_sub_head(fy_rd *r, const fy_mqtt_frame_hdr *h, uint8_t type, int version,
                         fy_mqtt_pctx ctx, fy_mqtt_subscribe *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->version = (uint8_t)version;
    if (h->type != type || h->flags != 2) {
        return mqtt_sub_fail(why, "wrong packet type or flags", FY_MQTT_RC_MALFORMED);
    }
    out->packet_id = fy_rd_u16(r);
    if (r->bad) {
        return mqtt_sub_fail(why, "packet id cut short", FY_MQTT_RC_MALFORMED);
    }
    if (out->packet_id == 0) {
        return mqtt_sub_fail(why, "packet id 0", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    if (version == FY_MQTT_V5) {
        return fy_mqtt_props_decode(r, ctx, &out->props, why);
    }
    return FY_MQTT_OK;
}

int fy_mqtt_decode_subscribe(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_subscribe *out,
                             const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    int rc = mqtt_sub_head(&r, h, FY_MQTT_SUBSCRIBE, version, FY_MQTT_PCTX_SUBSCRIBE, out, why);

    if (rc != FY_MQTT_OK) {
        return rc;
    }
    out->entries.p = r.p;
    out->entries.len = r.left;
    while (r.left > 0) {
        fy_slice filter, group, rest;
        uint8_t o;

        if (fy_mqtt_get_str(&r, &filter) != FY_MQTT_OK) {
            return mqtt_sub_fail(why, "topic filter cut short or not UTF-8", FY_MQTT_RC_MALFORMED);
        }
        o = fy_rd_u8(&r);
        if (r.bad) {
            return mqtt_sub_fail(why, "subscription options missing", FY_MQTT_RC_MALFORMED);
        }
        if ((o & MQTT_SO_QOS) == 3) {
            return mqtt_sub_fail(why, "subscription QoS 3", FY_MQTT_RC_MALFORMED);
        }
        if (version == FY_MQTT_V5) {
            if (o & 0xc0) {
                return mqtt_sub_fail(why, "reserved subscription option bits set",
                                     FY_MQTT_RC_MALFORMED);
            }
            if (((o >> MQTT_SO_RH_SHIFT) & 3) == 3) {
                return mqtt_sub_fail(why, "retain handling 3", FY_MQTT_RC_MALFORMED);
            }
            if ((o & MQTT_SO_NO_LOCAL) &&
                fy_mqtt_share_parse(filter, &group, &rest) != FY_MQTT_SHARE_NONE) {
                return mqtt_sub_fail(why, "no local on a shared subscription",
                                     FY_MQTT_RC_PROTOCOL_ERROR);
            }
        } else if (o & ~MQTT_SO_QOS) {
            return mqtt_sub_fail(why, "reserved subscription option bits set",
                                 FY_MQTT_RC_MALFORMED);
        }
        out->count++;
    }
    if (out->count == 0) {
        return mqtt_sub_fail(why, "SUBSCRIBE without topic filters", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

fy_mqtt_sub_iter fy_mqtt_sub_entries(const fy_mqtt_subscribe *s)
{
    fy_mqtt_sub_iter it = {fy_rd_make(s->entries.p, s->entries.len), s->version};
    return it;
}

bool fy_mqtt_sub_next(fy_mqtt_sub_iter *it, fy_mqtt_sub_entry *e)
{
    uint8_t o;

    if (it->rd.left == 0 || it->rd.bad) {
        return false;
    }
    memset(e, 0, sizeof(*e));
    if (fy_mqtt_get_bin(&it->rd, &e->filter) != FY_MQTT_OK) {
        return false;
    }
    o = fy_rd_u8(&it->rd);
    if (it->rd.bad) {
        return false;
    }
    e->qos = o & MQTT_SO_QOS;
    if (it->version == FY_MQTT_V5) {
        e->no_local = (o & MQTT_SO_NO_LOCAL) != 0;
        e->retain_as_published = (o & MQTT_SO_RAP) != 0;
        e->retain_handling = (o >> MQTT_SO_RH_SHIFT) & 3;
    }
    return true;
}

int fy_mqtt_enc_subscribe(fy_buf *out, int version, uint16_t packet_id, const fy_mqtt_props *props,
                          const fy_mqtt_sub_entry *e, size_t n)
{
    size_t start;

    if (version < FY_MQTT_V31 || version > FY_MQTT_V5 || n == 0 ||
        (version == FY_MQTT_V5 && fy_mqtt_props_size(props) == SIZE_MAX)) {
        return -FY_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (e[i].filter.len > UINT16_MAX || e[i].qos > 2 || e[i].retain_handling > 2) {
            return -FY_EINVAL;
        }
    }
    start = fy_mqtt_pkt_begin(out);
    fy_buf_put_u16(out, packet_id);
    if (version == FY_MQTT_V5) {
        fy_mqtt_props_encode(out, props);
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t o = e[i].qos;
        if (version == FY_MQTT_V5) {
            o |= (uint8_t)((e[i].no_local ? MQTT_SO_NO_LOCAL : 0) |
                           (e[i].retain_as_published ? MQTT_SO_RAP : 0) |
                           e[i].retain_handling << MQTT_SO_RH_SHIFT);
        }
        fy_mqtt_put_str(out, e[i].filter);
        fy_buf_put_u8(out, o);
    }
    return fy_mqtt_pkt_end(out, start, FY_MQTT_SUBSCRIBE << 4 | 2, 0, 0);
}

int fy_mqtt_decode_unsubscribe(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_subscribe *out,
                               const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    int rc = mqtt_sub_head(&r, h, FY_MQTT_UNSUBSCRIBE, version, FY_MQTT_PCTX_UNSUBSCRIBE, out, why);

    if (rc != FY_MQTT_OK) {
        return rc;
    }
    out->entries.p = r.p;
    out->entries.len = r.left;
    while (r.left > 0) {
        fy_slice filter;
        if (fy_mqtt_get_str(&r, &filter) != FY_MQTT_OK) {
            return mqtt_sub_fail(why, "topic filter cut short or not UTF-8", FY_MQTT_RC_MALFORMED);
        }
        out->count++;
    }
    if (out->count == 0) {
        return mqtt_sub_fail(why, "UNSUBSCRIBE without topic filters", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

bool fy_mqtt_unsub_next(fy_mqtt_sub_iter *it, fy_slice *filter)
{
    if (it->rd.left == 0 || it->rd.bad) {
        return false;
    }
    return fy_mqtt_get_bin(&it->rd, filter) == FY_MQTT_OK;
}

int fy_mqtt_enc_unsubscribe(fy_buf *out, int version, uint16_t packet_id,
                            const fy_mqtt_props *props, const fy_slice *f, size_t n)
{
    size_t start;

    if (version < FY_MQTT_V31 || version > FY_MQTT_V5 || n == 0 ||
        (version == FY_MQTT_V5 && fy_mqtt_props_size(props) == SIZE_MAX)) {
        return -FY_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (f[i].len > UINT16_MAX) {
            return -FY_EINVAL;
        }
    }
    start = fy_mqtt_pkt_begin(out);
    fy_buf_put_u16(out, packet_id);
    if (version == FY_MQTT_V5) {
        fy_mqtt_props_encode(out, props);
    }
    for (size_t i = 0; i < n; i++) {
        fy_mqtt_put_str(out, f[i]);
    }
    return fy_mqtt_pkt_end(out, start, FY_MQTT_UNSUBSCRIBE << 4 | 2, 0, 0);
}

/* ---- SUBACK, UNSUBACK ---------------------------------------------------------------------- */

static bool mqtt_suback_code_ok(int version, uint8_t c)
{
    switch (c) {
    case 0x00:
    case 0x01:
    case 0x02:
    case 0x80:
        return true;
    case 0x83:
    case 0x87:
    case 0x8F:
    case 0x91:
    case 0x97:
    case 0x9E:
    case 0xA1:
    case 0xA2:
        return version == FY_MQTT_V5;
    default:
        return false;
    }
}

static bool mqtt_unsuback_code_ok(uint8_t c)
{
    switch (c) {
    case 0x00:
    case 0x11:
    case 0x80:
    case 0x83:
    case 0x87:
    case 0x8F:
    case 0x91:
        return true;
    default:
        return false;
    }
}

int fy_mqtt_decode_suback(const fy_mqtt_frame_hdr *h, int version, fy_mqtt_suback *out,
                          const char **why)
{
    fy_rd r = fy_rd_make(h->body.p, h->body.len);
    bool sub = h->type == FY_MQTT_SUBACK;
    int rc;

    memset(out, 0, sizeof(*out));
    if ((h->type != FY_MQTT_SUBACK && h->type != FY_MQTT_UNSUBACK) || h->flags != 0) {
        return mqtt_sub_fail(why, "not a SUBACK or UNSUBACK", FY_MQTT_RC_MALFORMED);
    }
    out->packet_id = fy_rd_u16(&r);
    if (r.bad) {
        return mqtt_sub_fail(why, "packet id cut short", FY_MQTT_RC_MALFORMED);
    }
    if (version == FY_MQTT_V5) {
        rc = fy_mqtt_props_decode(&r, sub ? FY_MQTT_PCTX_SUBACK : FY_MQTT_PCTX_UNSUBACK,
                                  &out->props, why);
        if (rc != FY_MQTT_OK) {
            return rc;
        }
    } else if (!sub && r.left != 0) {
        return mqtt_sub_fail(why, "bytes after the UNSUBACK", FY_MQTT_RC_MALFORMED);
    }
    out->reasons.p = r.p;
    out->reasons.len = r.left;
    if (out->packet_id == 0) {
        return mqtt_sub_fail(why, "packet id 0", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    if (out->reasons.len == 0 && (sub || version == FY_MQTT_V5)) {
        return mqtt_sub_fail(why, "no reason codes", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    for (size_t i = 0; i < out->reasons.len; i++) {
        uint8_t c = out->reasons.p[i];
        if (sub ? !mqtt_suback_code_ok(version, c) : !mqtt_unsuback_code_ok(c)) {
            return mqtt_sub_fail(why, "reason code not valid for this packet",
                                 FY_MQTT_RC_PROTOCOL_ERROR);
        }
    }
    return FY_MQTT_OK;
}

static int mqtt_suback_write(fy_buf *out, int version, uint8_t type, const fy_mqtt_suback *s,
                             const fy_mqtt_props *props, uint32_t max_packet)
{
    bool with_codes = type == FY_MQTT_SUBACK || version == FY_MQTT_V5;
    size_t start;

    if (version < FY_MQTT_V31 || version > FY_MQTT_V5 || (with_codes && s->reasons.len == 0) ||
        (version == FY_MQTT_V5 && fy_mqtt_props_size(props) == SIZE_MAX)) {
        return -FY_EINVAL;
    }
    start = fy_mqtt_pkt_begin(out);
    fy_buf_put_u16(out, s->packet_id);
    if (version == FY_MQTT_V5) {
        fy_mqtt_props_encode(out, props);
    }
    if (with_codes) {
        fy_buf_append(out, s->reasons.p, s->reasons.len);
    }
    return fy_mqtt_pkt_end(out, start, (uint8_t)(type << 4), 0, max_packet);
}

static int mqtt_suback_enc(fy_buf *out, int version, uint8_t type, const fy_mqtt_suback *s,
                           uint32_t max_packet)
{
    int rc = mqtt_suback_write(out, version, type, s, &s->props, max_packet);

    if (rc == -FY_ETOOBIG && version == FY_MQTT_V5) {
        fy_mqtt_props p = s->props;
        fy_mqtt_props_drop_optional(&p);
        rc = mqtt_suback_write(out, version, type, s, &p, max_packet);
    }
    return rc;
}

int fy_mqtt_enc_suback(fy_buf *out, int version, const fy_mqtt_suback *s, uint32_t max_packet)
{
    return mqtt_suback_enc(out, version, FY_MQTT_SUBACK, s, max_packet);
}

int fy_mqtt_enc_unsuback(fy_buf *out, int version, const fy_mqtt_suback *s, uint32_t max_packet)
{
    return mqtt_suback_enc(out, version, FY_MQTT_UNSUBACK, s, max_packet);
}
