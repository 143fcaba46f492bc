/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT codec basics: the fixed header (framing), variable byte integers, UTF-8 strings and
 * binary data, UTF-8 validation, the packet begin/end helpers every encoder uses, and the
 * names and CONNACK code mappings. */
#include "adapters/mqtt/mqtt_codec.h"

#include "ferry/errors.h"

#include <string.h>

/* ---- Names and code mappings --------------------------------------------------------------- */

uint8_t fy_mqtt_connack_v3_code(uint8_t reason)
{
    switch (reason) {
    case FY_MQTT_RC_SUCCESS:
        return FY_MQTT_V3_ACCEPTED;
    case FY_MQTT_RC_UNSUPPORTED_VERSION:
        return FY_MQTT_V3_BAD_VERSION;
    case FY_MQTT_RC_CLIENT_ID_INVALID:
        return FY_MQTT_V3_ID_REJECTED;
    case FY_MQTT_RC_BAD_USER_PASS:
        return FY_MQTT_V3_BAD_USER_PASS;
    case FY_MQTT_RC_NOT_AUTHORIZED:
    case FY_MQTT_RC_BANNED:
    case FY_MQTT_RC_BAD_AUTH_METHOD:
        return FY_MQTT_V3_NOT_AUTHORIZED;
    default:
        return FY_MQTT_V3_UNAVAILABLE;
    }
}

int fy_mqtt_connack_v5_reason(uint8_t code)
{
    static const uint8_t map[] = {
        FY_MQTT_RC_SUCCESS,           FY_MQTT_RC_UNSUPPORTED_VERSION,
        FY_MQTT_RC_CLIENT_ID_INVALID, FY_MQTT_RC_SERVER_UNAVAILABLE,
        FY_MQTT_RC_BAD_USER_PASS,     FY_MQTT_RC_NOT_AUTHORIZED,
    };

    return code < sizeof(map) ? map[code] : -1;
}

const char *fy_mqtt_type_name(int type)
{
    static const char *const names[] = {
        "RESERVED", "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
        "PUBREL",   "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
        "PINGREQ",  "PINGRESP", "DISCONNECT", "AUTH",
    };

    return type >= 0 && type < 16 ? names[type] : "UNKNOWN";
}

const char *fy_mqtt_reason_name(int reason)
{
    switch (reason) {
    case 0x00:
        return "Success";
    case 0x01:
        return "Granted QoS 1";
    case 0x02:
        return "Granted QoS 2";
    case 0x04:
        return "Disconnect with Will Message";
    case 0x10:
        return "No matching subscribers";
    case 0x11:
        return "No subscription existed";
    case 0x18:
        return "Continue authentication";
    case 0x19:
        return "Re-authenticate";
    case 0x80:
        return "Unspecified error";
    case 0x81:
        return "Malformed Packet";
    case 0x82:
        return "Protocol Error";
    case 0x83:
        return "Implementation specific error";
    case 0x84:
        return "Unsupported Protocol Version";
    case 0x85:
        return "Client Identifier not valid";
    case 0x86:
        return "Bad User Name or Password";
    case 0x87:
        return "Not authorized";
    case 0x88:
        return "Server unavailable";
    case 0x89:
        return "Server busy";
    case 0x8A:
        return "Banned";
    case 0x8B:
        return "Server shutting down";
    case 0x8C:
        return "Bad authentication method";
    case 0x8D:
        return "Keep Alive timeout";
    case 0x8E:
        return "Session taken over";
    case 0x8F:
        return "Topic Filter invalid";
    case 0x90:
        return "Topic Name invalid";
    case 0x91:
        return "Packet Identifier in use";
    case 0x92:
        return "Packet Identifier not found";
    case 0x93:
        return "Receive Maximum exceeded";
    case 0x94:
        return "Topic Alias invalid";
    case 0x95:
        return "Packet too large";
    case 0x96:
        return "Message rate too high";
    case 0x97:
        return "Quota exceeded";
    case 0x98:
        return "Administrative action";
    case 0x99:
        return "Payload format invalid";
    case 0x9A:
        return "Retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "Use another server";
    case 0x9D:
        return "Server moved";
    case 0x9E:
        return "Shared Subscriptions not supported";
    case 0x9F:
        return "Connection rate exceeded";
    case 0xA0:
        return "Maximum connect time";
    case 0xA1:
        return "Subscription Identifiers not supported";
    case 0xA2:
        return "Wildcard Subscriptions not supported";
    default:
        return "Unknown reason code";
    }
}

/* ---- Framing ------------------------------------------------------------------------------ */

static int mqtt_fail(const char **why, const char *text, int rc)
{
    if (why) {
        *why = text;
    }
    return rc;
}

/* Whether flags are allowed for type (MQTT 5 section 2.1.3, 3.1.1 section 2.2.2). */
static bool mqtt_flags_ok(uint8_t type, uint8_t flags)
{
    switch (type) {
    case FY_MQTT_PUBLISH:
        return ((flags >> 1) & 3) != 3;
    case FY_MQTT_PUBREL:
    case FY_MQTT_SUBSCRIBE:
    case FY_MQTT_UNSUBSCRIBE:
        return flags == 2;
    default:
        return flags == 0;
    }
}

int fy_mqtt_frame(const uint8_t *p, size_t len, uint32_t max_packet, fy_mqtt_frame_hdr *out,
                  const char **why)
{
    uint32_t rem = 0;
    size_t i;

    memset(out, 0, sizeof(*out));
    if (len < 2) {
        return FY_MQTT_NEED_MORE;
    }
    out->type = p[0] >> 4;
    out->flags = p[0] & 0x0f;
    if (out->type == 0) {
        return mqtt_fail(why, "reserved packet type 0", FY_MQTT_RC_MALFORMED);
    }
    if (!mqtt_flags_ok(out->type, out->flags)) {
        return mqtt_fail(why,
                         out->type == FY_MQTT_PUBLISH ? "PUBLISH with QoS 3"
                                                      : "reserved fixed header flags",
                         FY_MQTT_RC_MALFORMED);
    }
    for (i = 0; i < 4; i++) {
        if (1 + i >= len) {
            return FY_MQTT_NEED_MORE;
        }
        rem |= (uint32_t)(p[1 + i] & 0x7f) << (7 * i);
        if (!(p[1 + i] & 0x80)) {
            break;
        }
    }
    if (i == 4) {
        return mqtt_fail(why, "remaining length longer than 4 bytes", FY_MQTT_RC_MALFORMED);
    }
    if (i > 0 && p[1 + i] == 0) {
        return mqtt_fail(why, "remaining length not minimally encoded", FY_MQTT_RC_MALFORMED);
    }
    out->hdr_len = (uint8_t)(2 + i);
    out->remaining = rem;
    if (max_packet != 0 && (uint64_t)out->hdr_len + rem > max_packet) {
        return mqtt_fail(why, "packet larger than the maximum packet size",
                         FY_MQTT_RC_PACKET_TOO_LARGE);
    }
    if (len - out->hdr_len < rem) {
        return FY_MQTT_NEED_MORE;
    }
    out->body.p = p + out->hdr_len;
    out->body.len = rem;
    return FY_MQTT_OK;
}

/* ---- Primitives --------------------------------------------------------------------------- */

bool fy_mqtt_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t need;
        uint32_t cp;
        uint32_t min;

        if (c < 0x80) {
            if (c == 0) {
                return false;
            }
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            need = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < need) {
            return false;
        }
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = p[i + k];
            if ((cc & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += need + 1;
    }
    return true;
}

int fy_mqtt_get_vbi(fy_rd *r, uint32_t *v)
{
    uint32_t val = 0;

    for (int i = 0; i < 4; i++) {
        uint8_t b = fy_rd_u8(r);
        if (r->bad) {
            *v = 0;
            return FY_MQTT_RC_MALFORMED;
        }
        val |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            if (i > 0 && b == 0) {
                *v = 0;
                return FY_MQTT_RC_MALFORMED; /* not the minimal encoding */
            }
            *v = val;
            return FY_MQTT_OK;
        }
    }
    *v = 0;
    return FY_MQTT_RC_MALFORMED;
}

int fy_mqtt_get_bin(fy_rd *r, fy_slice *s)
{
    uint16_t n = fy_rd_u16(r);
    const uint8_t *p = fy_rd_take(r, n);

    if (r->bad) {
        s->p = NULL;
        s->len = 0;
        return FY_MQTT_RC_MALFORMED;
    }
    s->p = p;
    s->len = n;
    return FY_MQTT_OK;
}

int fy_mqtt_get_str(fy_rd *r, fy_slice *s)
{
    if (fy_mqtt_get_bin(r, s) != FY_MQTT_OK || !fy_mqtt_utf8_valid(s->p, s->len)) {
        return FY_MQTT_RC_MALFORMED;
    }
    return FY_MQTT_OK;
}

size_t fy_mqtt_vbi_size(uint32_t v)
{
    if (v < 128) {
        return 1;
    }
    if (v < 16384) {
        return 2;
    }
    if (v < 2097152) {
        return 3;
    }
    return 4;
}

/* Writes the varint v at p (room for 4 bytes) and returns its length. */
static size_t mqtt_vbi_write(uint8_t *p, uint32_t v)
{
    size_t n = 0;

    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if (v) {
            b |= 0x80;
        }
        p[n++] = b;
    } while (v && n < 4);
    return n;
}

void fy_mqtt_put_vbi(fy_buf *out, uint32_t v)
{
    uint8_t *p = fy_buf_reserve(out, 4);

    out->len += mqtt_vbi_write(p, v);
}

void fy_mqtt_put_str(fy_buf *out, fy_slice s)
{
    fy_buf_put_u16(out, (uint16_t)s.len);
    if (s.len > 0) {
        fy_buf_append(out, s.p, s.len);
    }
}

/* ---- Packet begin / end -------------------------------------------------------------------- */

/* Room for the largest fixed header; fy_mqtt_pkt_end moves the body down to meet the real one. */
#define MQTT_HDR_MAX 5

size_t fy_mqtt_pkt_begin(fy_buf *out)
{
    size_t start = out->len;

    fy_buf_reserve(out, MQTT_HDR_MAX);
    memset(out->data + start, 0, MQTT_HDR_MAX);
    out->len += MQTT_HDR_MAX;
    return start;
}

int fy_mqtt_pkt_end(fy_buf *out, size_t start, uint8_t b0, size_t extra, uint32_t max_packet)
{
    size_t body = out->len - start - MQTT_HDR_MAX;
    uint8_t hdr[MQTT_HDR_MAX];
    size_t hl;

    if (extra > FY_MQTT_MAX_REMAINING || body > FY_MQTT_MAX_REMAINING - extra) {
        out->len = start;
        return -FY_EINVAL;
    }
    hdr[0] = b0;
    hl = 1 + mqtt_vbi_write(hdr + 1, (uint32_t)(body + extra));
    if (max_packet != 0 && hl + body + extra > max_packet) {
        out->len = start;
        return -FY_ETOOBIG;
    }
    memmove(out->data + start + hl, out->data + start + MQTT_HDR_MAX, body);
    memcpy(out->data + start, hdr, hl);
    out->len = start + hl + body;
    return FY_OK;
}
