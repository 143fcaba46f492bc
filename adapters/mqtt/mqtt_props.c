/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT 5 properties: one table of identifier -> data type and the packets that allow it, a
 * decoder that checks placement, duplicates, ranges and UTF-8, one walker that both sizes and
 * writes a block (so the size can never disagree with the encoding), and the iterators over the
 * repeatable properties of a decoded block. */
#include "adapters/mqtt/mqtt_codec.h"

#include "ferry/errors.h"

#include <string.h>

enum mqtt_ptype {
    MQTT_PT_NONE,
    MQTT_PT_BYTE,
    MQTT_PT_U16,
    MQTT_PT_U32,
    MQTT_PT_VBI,
    MQTT_PT_STR,
    MQTT_PT_BIN,
    MQTT_PT_PAIR
};

#define C(x) (1u << FY_MQTT_PCTX_##x)
#define PUB (C(PUBLISH_C2S) | C(PUBLISH_S2C))
#define ALL ((1u << FY_MQTT_PCTX_COUNT_) - 1)

typedef struct mqtt_pdef {
    uint8_t type;
    uint16_t ctx; /* bit per fy_mqtt_pctx where the property is allowed */
} mqtt_pdef;

/* MQTT 5 section 2.2.2.2, table 2-4. A client's PUBLISH is listed for Subscription Identifier
 * so that the decoder can answer it with a Protocol Error (MQTT-3.3.4-6) rather than
 * Malformed. */
static const mqtt_pdef mqtt_pdefs[] = {
    [FY_MQTT_P_PAYLOAD_FORMAT] = {MQTT_PT_BYTE, PUB | C(WILL)},
    [FY_MQTT_P_MESSAGE_EXPIRY] = {MQTT_PT_U32, PUB | C(WILL)},
    [FY_MQTT_P_CONTENT_TYPE] = {MQTT_PT_STR, PUB | C(WILL)},
    [FY_MQTT_P_RESPONSE_TOPIC] = {MQTT_PT_STR, PUB | C(WILL)},
    [FY_MQTT_P_CORRELATION_DATA] = {MQTT_PT_BIN, PUB | C(WILL)},
    [FY_MQTT_P_SUBSCRIPTION_ID] = {MQTT_PT_VBI, PUB | C(SUBSCRIBE)},
    [FY_MQTT_P_SESSION_EXPIRY] = {MQTT_PT_U32, C(CONNECT) | C(CONNACK) | C(DISCONNECT)},
    [FY_MQTT_P_ASSIGNED_CLIENT_ID] = {MQTT_PT_STR, C(CONNACK)},
    [FY_MQTT_P_SERVER_KEEP_ALIVE] = {MQTT_PT_U16, C(CONNACK)},
    [FY_MQTT_P_AUTH_METHOD] = {MQTT_PT_STR, C(CONNECT) | C(CONNACK) | C(AUTH)},
    [FY_MQTT_P_AUTH_DATA] = {MQTT_PT_BIN, C(CONNECT) | C(CONNACK) | C(AUTH)},
    [FY_MQTT_P_REQUEST_PROBLEM_INFO] = {MQTT_PT_BYTE, C(CONNECT)},
    [FY_MQTT_P_WILL_DELAY] = {MQTT_PT_U32, C(WILL)},
    [FY_MQTT_P_REQUEST_RESPONSE_INFO] = {MQTT_PT_BYTE, C(CONNECT)},
    [FY_MQTT_P_RESPONSE_INFO] = {MQTT_PT_STR, C(CONNACK)},
    [FY_MQTT_P_SERVER_REFERENCE] = {MQTT_PT_STR, C(CONNACK) | C(DISCONNECT)},
    [FY_MQTT_P_REASON_STRING] = {MQTT_PT_STR, C(CONNACK) | C(ACK) | C(SUBACK) | C(UNSUBACK) |
                                                  C(DISCONNECT) | C(AUTH)},
    [FY_MQTT_P_RECEIVE_MAXIMUM] = {MQTT_PT_U16, C(CONNECT) | C(CONNACK)},
    [FY_MQTT_P_TOPIC_ALIAS_MAXIMUM] = {MQTT_PT_U16, C(CONNECT) | C(CONNACK)},
    [FY_MQTT_P_TOPIC_ALIAS] = {MQTT_PT_U16, PUB},
    [FY_MQTT_P_MAXIMUM_QOS] = {MQTT_PT_BYTE, C(CONNACK)},
    [FY_MQTT_P_RETAIN_AVAILABLE] = {MQTT_PT_BYTE, C(CONNACK)},
    [FY_MQTT_P_USER_PROPERTY] = {MQTT_PT_PAIR, ALL},
    [FY_MQTT_P_MAXIMUM_PACKET_SIZE] = {MQTT_PT_U32, C(CONNECT) | C(CONNACK)},
    [FY_MQTT_P_WILDCARD_SUB_AVAILABLE] = {MQTT_PT_BYTE, C(CONNACK)},
    [FY_MQTT_P_SUB_ID_AVAILABLE] = {MQTT_PT_BYTE, C(CONNACK)},
    [FY_MQTT_P_SHARED_SUB_AVAILABLE] = {MQTT_PT_BYTE, C(CONNACK)},
};

#define MQTT_NPDEFS (sizeof(mqtt_pdefs) / sizeof(mqtt_pdefs[0]))

static int mqtt_perr(const char **why, const char *text, int rc)
{
    if (why) {
        *why = text;
    }
    return rc;
}

/* A property value of any type, as read. */
typedef struct mqtt_pval {
    uint32_t num;
    fy_slice s1, s2;
} mqtt_pval;

/* Reads the value of a property of type t. Returns 0 or FY_MQTT_RC_MALFORMED. */
static int mqtt_prop_read(fy_rd *r, uint8_t t, mqtt_pval *v)
{
    switch (t) {
    case MQTT_PT_BYTE:
        v->num = fy_rd_u8(r);
        return r->bad ? FY_MQTT_RC_MALFORMED : FY_MQTT_OK;
    case MQTT_PT_U16:
        v->num = fy_rd_u16(r);
        return r->bad ? FY_MQTT_RC_MALFORMED : FY_MQTT_OK;
    case MQTT_PT_U32:
        v->num = fy_rd_u32(r);
        return r->bad ? FY_MQTT_RC_MALFORMED : FY_MQTT_OK;
    case MQTT_PT_VBI:
        return fy_mqtt_get_vbi(r, &v->num);
    case MQTT_PT_STR:
        return fy_mqtt_get_str(r, &v->s1);
    case MQTT_PT_BIN:
        return fy_mqtt_get_bin(r, &v->s1);
    case MQTT_PT_PAIR:
        if (fy_mqtt_get_str(r, &v->s1) != FY_MQTT_OK) {
            return FY_MQTT_RC_MALFORMED;
        }
        return fy_mqtt_get_str(r, &v->s2);
    default:
        return FY_MQTT_RC_MALFORMED;
    }
}

/* Stores a checked value in its field. Returns 0 or FY_MQTT_RC_PROTOCOL_ERROR for a value out
 * of range. */
static int mqtt_prop_store(fy_mqtt_props *p, uint32_t id, const mqtt_pval *v, const char **why)
{
    bool bool_ok = v->num <= 1;

    switch (id) {
    case FY_MQTT_P_PAYLOAD_FORMAT:
        if (!bool_ok) {
            return mqtt_perr(why, "payload format indicator not 0 or 1", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->payload_format = (uint8_t)v->num;
        break;
    case FY_MQTT_P_MESSAGE_EXPIRY:
        p->message_expiry = v->num;
        break;
    case FY_MQTT_P_CONTENT_TYPE:
        p->content_type = v->s1;
        break;
    case FY_MQTT_P_RESPONSE_TOPIC:
        p->response_topic = v->s1;
        break;
    case FY_MQTT_P_CORRELATION_DATA:
        p->correlation_data = v->s1;
        break;
    case FY_MQTT_P_SUBSCRIPTION_ID:
        if (v->num == 0) {
            return mqtt_perr(why, "subscription identifier 0", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        if (p->n_sub_ids == 0) {
            p->sub_id = v->num;
        }
        p->n_sub_ids++;
        break;
    case FY_MQTT_P_SESSION_EXPIRY:
        p->session_expiry = v->num;
        break;
    case FY_MQTT_P_ASSIGNED_CLIENT_ID:
        p->assigned_client_id = v->s1;
        break;
    case FY_MQTT_P_SERVER_KEEP_ALIVE:
        p->server_keep_alive = (uint16_t)v->num;
        break;
    case FY_MQTT_P_AUTH_METHOD:
        p->auth_method = v->s1;
        break;
    case FY_MQTT_P_AUTH_DATA:
        p->auth_data = v->s1;
        break;
    case FY_MQTT_P_REQUEST_PROBLEM_INFO:
        if (!bool_ok) {
            return mqtt_perr(why, "request problem information not 0 or 1",
                             FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->request_problem_info = (uint8_t)v->num;
        break;
    case FY_MQTT_P_WILL_DELAY:
        p->will_delay = v->num;
        break;
    case FY_MQTT_P_REQUEST_RESPONSE_INFO:
        if (!bool_ok) {
            return mqtt_perr(why, "request response information not 0 or 1",
                             FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->request_response_info = (uint8_t)v->num;
        break;
    case FY_MQTT_P_RESPONSE_INFO:
        p->response_info = v->s1;
        break;
    case FY_MQTT_P_SERVER_REFERENCE:
        p->server_reference = v->s1;
        break;
    case FY_MQTT_P_REASON_STRING:
        p->reason_string = v->s1;
        break;
    case FY_MQTT_P_RECEIVE_MAXIMUM:
        if (v->num == 0) {
            return mqtt_perr(why, "receive maximum 0", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->receive_maximum = (uint16_t)v->num;
        break;
    case FY_MQTT_P_TOPIC_ALIAS_MAXIMUM:
        p->topic_alias_maximum = (uint16_t)v->num;
        break;
    case FY_MQTT_P_TOPIC_ALIAS:
        if (v->num == 0) {
            return mqtt_perr(why, "topic alias 0", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->topic_alias = (uint16_t)v->num;
        break;
    case FY_MQTT_P_MAXIMUM_QOS:
        if (!bool_ok) {
            return mqtt_perr(why, "maximum QoS not 0 or 1", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->maximum_qos = (uint8_t)v->num;
        break;
    case FY_MQTT_P_RETAIN_AVAILABLE:
        if (!bool_ok) {
            return mqtt_perr(why, "retain available not 0 or 1", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->retain_available = (uint8_t)v->num;
        break;
    case FY_MQTT_P_USER_PROPERTY:
        p->n_user_props++;
        break;
    case FY_MQTT_P_MAXIMUM_PACKET_SIZE:
        if (v->num == 0) {
            return mqtt_perr(why, "maximum packet size 0", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->maximum_packet_size = v->num;
        break;
    case FY_MQTT_P_WILDCARD_SUB_AVAILABLE:
        if (!bool_ok) {
            return mqtt_perr(why, "wildcard subscription available not 0 or 1",
                             FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->wildcard_sub_available = (uint8_t)v->num;
        break;
    case FY_MQTT_P_SUB_ID_AVAILABLE:
        if (!bool_ok) {
            return mqtt_perr(why, "subscription identifier available not 0 or 1",
                             FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->sub_id_available = (uint8_t)v->num;
        break;
    case FY_MQTT_P_SHARED_SUB_AVAILABLE:
        if (!bool_ok) {
            return mqtt_perr(why, "shared subscription available not 0 or 1",
                             FY_MQTT_RC_PROTOCOL_ERROR);
        }
        p->shared_sub_available = (uint8_t)v->num;
        break;
    default:
        break;
    }
    return FY_MQTT_OK;
}

int fy_mqtt_props_decode(fy_rd *r, fy_mqtt_pctx ctx, fy_mqtt_props *out, const char **why)
{
    uint32_t len;
    const uint8_t *p;
    fy_rd pr;
    int rc;

    memset(out, 0, sizeof(*out));
    if (fy_mqtt_get_vbi(r, &len) != FY_MQTT_OK) {
        return mqtt_perr(why, "bad property length", FY_MQTT_RC_MALFORMED);
    }
    p = fy_rd_take(r, len);
    if (!p) {
        return mqtt_perr(why, "property length overruns the packet", FY_MQTT_RC_MALFORMED);
    }
    out->raw.p = p;
    out->raw.len = len;
    pr = fy_rd_make(p, len);
    while (pr.left > 0) {
        uint32_t id;
        mqtt_pval v = {0};

        if (fy_mqtt_get_vbi(&pr, &id) != FY_MQTT_OK) {
            return mqtt_perr(why, "bad property identifier", FY_MQTT_RC_MALFORMED);
        }
        if (id >= MQTT_NPDEFS || mqtt_pdefs[id].type == MQTT_PT_NONE) {
            return mqtt_perr(why, "unknown property", FY_MQTT_RC_MALFORMED);
        }
        if (!(mqtt_pdefs[id].ctx & (1u << ctx))) {
            return mqtt_perr(why, "property not allowed in this packet", FY_MQTT_RC_MALFORMED);
        }
        if (ctx == FY_MQTT_PCTX_PUBLISH_C2S && id == FY_MQTT_P_SUBSCRIPTION_ID) {
            return mqtt_perr(why, "subscription identifier in a client's PUBLISH",
                             FY_MQTT_RC_PROTOCOL_ERROR);
        }
        rc = mqtt_prop_read(&pr, mqtt_pdefs[id].type, &v);
        if (rc != FY_MQTT_OK) {
            return mqtt_perr(why, "property value cut short or not UTF-8", rc);
        }
        if ((out->present & FY_MQTT_PBIT(id)) && id != FY_MQTT_P_USER_PROPERTY &&
            !(id == FY_MQTT_P_SUBSCRIPTION_ID && ctx == FY_MQTT_PCTX_PUBLISH_S2C)) {
            return mqtt_perr(why, "property given twice", FY_MQTT_RC_PROTOCOL_ERROR);
        }
        rc = mqtt_prop_store(out, id, &v, why);
        if (rc != FY_MQTT_OK) {
            return rc;
        }
        out->present |= FY_MQTT_PBIT(id);
    }
    if ((out->present & FY_MQTT_PBIT(FY_MQTT_P_AUTH_DATA)) &&
        !(out->present & FY_MQTT_PBIT(FY_MQTT_P_AUTH_METHOD))) {
        return mqtt_perr(why, "authentication data without a method", FY_MQTT_RC_PROTOCOL_ERROR);
    }
    return FY_MQTT_OK;
}

/* ---- Iterators ----------------------------------------------------------------------------- */

/* Advances to the next property with identifier want in a validated block. */
static bool mqtt_iter_find(fy_mqtt_prop_iter *it, uint32_t want, mqtt_pval *v)
{
    while (it->rd.left > 0 && !it->rd.bad) {
        uint32_t id;
        if (fy_mqtt_get_vbi(&it->rd, &id) != FY_MQTT_OK || id >= MQTT_NPDEFS) {
            return false;
        }
        memset(v, 0, sizeof(*v));
        if (mqtt_prop_read(&it->rd, mqtt_pdefs[id].type, v) != FY_MQTT_OK) {
            return false;
        }
        if (id == want) {
            return true;
        }
    }
    return false;
}

fy_mqtt_prop_iter fy_mqtt_user_props(const fy_mqtt_props *p)
{
    fy_mqtt_prop_iter it = {fy_rd_make(p->raw.p, p->raw.len)};
    return it;
}

bool fy_mqtt_user_prop_next(fy_mqtt_prop_iter *it, fy_slice *name, fy_slice *value)
{
    mqtt_pval v;

    if (!mqtt_iter_find(it, FY_MQTT_P_USER_PROPERTY, &v)) {
        return false;
    }
    *name = v.s1;
    *value = v.s2;
    return true;
}

fy_mqtt_prop_iter fy_mqtt_sub_ids(const fy_mqtt_props *p)
{
    return fy_mqtt_user_props(p);
}

bool fy_mqtt_sub_id_next(fy_mqtt_prop_iter *it, uint32_t *id)
{
    mqtt_pval v;

    if (!mqtt_iter_find(it, FY_MQTT_P_SUBSCRIPTION_ID, &v)) {
        return false;
    }
    *id = v.num;
    return true;
}

/* ---- Encoding ------------------------------------------------------------------------------ */

/* Sizes (out NULL) or writes one property block body, without the length prefix. Returns the
 * size, or SIZE_MAX if a value cannot be encoded. Both uses share this one walk. */
static size_t mqtt_props_walk(const fy_mqtt_props *p, fy_buf *out)
{
    size_t n = 0;

    if (!p) {
        return 0;
    }
    for (uint32_t id = 1; id < MQTT_NPDEFS; id++) {
        uint8_t t = mqtt_pdefs[id].type;
        mqtt_pval v = {0};

        if (t == MQTT_PT_NONE || !(p->present & FY_MQTT_PBIT(id)) ||
            id == FY_MQTT_P_USER_PROPERTY || id == FY_MQTT_P_SUBSCRIPTION_ID) {
            continue;
        }
        switch (id) {
        case FY_MQTT_P_PAYLOAD_FORMAT:
            v.num = p->payload_format;
            break;
        case FY_MQTT_P_MESSAGE_EXPIRY:
            v.num = p->message_expiry;
            break;
        case FY_MQTT_P_CONTENT_TYPE:
            v.s1 = p->content_type;
            break;
        case FY_MQTT_P_RESPONSE_TOPIC:
            v.s1 = p->response_topic;
            break;
        case FY_MQTT_P_CORRELATION_DATA:
            v.s1 = p->correlation_data;
            break;
        case FY_MQTT_P_SESSION_EXPIRY:
            v.num = p->session_expiry;
            break;
        case FY_MQTT_P_ASSIGNED_CLIENT_ID:
            v.s1 = p->assigned_client_id;
            break;
        case FY_MQTT_P_SERVER_KEEP_ALIVE:
            v.num = p->server_keep_alive;
            break;
        case FY_MQTT_P_AUTH_METHOD:
            v.s1 = p->auth_method;
            break;
        case FY_MQTT_P_AUTH_DATA:
            v.s1 = p->auth_data;
            break;
        case FY_MQTT_P_REQUEST_PROBLEM_INFO:
            v.num = p->request_problem_info;
            break;
        case FY_MQTT_P_WILL_DELAY:
            v.num = p->will_delay;
            break;
        case FY_MQTT_P_REQUEST_RESPONSE_INFO:
            v.num = p->request_response_info;
            break;
        case FY_MQTT_P_RESPONSE_INFO:
            v.s1 = p->response_info;
            break;
        case FY_MQTT_P_SERVER_REFERENCE:
            v.s1 = p->server_reference;
            break;
        case FY_MQTT_P_REASON_STRING:
            v.s1 = p->reason_string;
            break;
        case FY_MQTT_P_RECEIVE_MAXIMUM:
            v.num = p->receive_maximum;
            break;
        case FY_MQTT_P_TOPIC_ALIAS_MAXIMUM:
            v.num = p->topic_alias_maximum;
            break;
        case FY_MQTT_P_TOPIC_ALIAS:
            v.num = p->topic_alias;
            break;
        case FY_MQTT_P_MAXIMUM_QOS:
            v.num = p->maximum_qos;
            break;
        case FY_MQTT_P_RETAIN_AVAILABLE:
            v.num = p->retain_available;
            break;
        case FY_MQTT_P_MAXIMUM_PACKET_SIZE:
            v.num = p->maximum_packet_size;
            break;
        case FY_MQTT_P_WILDCARD_SUB_AVAILABLE:
            v.num = p->wildcard_sub_available;
            break;
        case FY_MQTT_P_SUB_ID_AVAILABLE:
            v.num = p->sub_id_available;
            break;
        case FY_MQTT_P_SHARED_SUB_AVAILABLE:
            v.num = p->shared_sub_available;
            break;
        default:
            break;
        }
        n += 1;
        switch (t) {
        case MQTT_PT_BYTE:
            n += 1;
            if (out) {
                fy_buf_put_u8(out, (uint8_t)id);
                fy_buf_put_u8(out, (uint8_t)v.num);
            }
            break;
        case MQTT_PT_U16:
            n += 2;
            if (out) {
                fy_buf_put_u8(out, (uint8_t)id);
                fy_buf_put_u16(out, (uint16_t)v.num);
            }
            break;
        case MQTT_PT_U32:
            n += 4;
            if (out) {
                fy_buf_put_u8(out, (uint8_t)id);
                fy_buf_put_u32(out, v.num);
            }
            break;
        default: /* STR, BIN */
            if (v.s1.len > UINT16_MAX) {
                return SIZE_MAX;
            }
            n += 2 + v.s1.len;
            if (out) {
                fy_buf_put_u8(out, (uint8_t)id);
                fy_mqtt_put_str(out, v.s1);
            }
            break;
        }
    }

    if (p->present & FY_MQTT_PBIT(FY_MQTT_P_SUBSCRIPTION_ID)) {
        if (p->sub_ids) {
            for (uint32_t i = 0; i < p->n_sub_ids; i++) {
                if (p->sub_ids[i] > FY_MQTT_MAX_VBI) {
                    return SIZE_MAX;
                }
                n += 1 + fy_mqtt_vbi_size(p->sub_ids[i]);
                if (out) {
                    fy_buf_put_u8(out, FY_MQTT_P_SUBSCRIPTION_ID);
                    fy_mqtt_put_vbi(out, p->sub_ids[i]);
                }
            }
        } else if (p->n_sub_ids > 1 && p->raw.len > 0) {
            fy_mqtt_prop_iter it = fy_mqtt_sub_ids(p);
            uint32_t sid;
            while (fy_mqtt_sub_id_next(&it, &sid)) {
                n += 1 + fy_mqtt_vbi_size(sid);
                if (out) {
                    fy_buf_put_u8(out, FY_MQTT_P_SUBSCRIPTION_ID);
                    fy_mqtt_put_vbi(out, sid);
                }
            }
        } else {
            if (p->sub_id > FY_MQTT_MAX_VBI) {
                return SIZE_MAX;
            }
            n += 1 + fy_mqtt_vbi_size(p->sub_id);
            if (out) {
                fy_buf_put_u8(out, FY_MQTT_P_SUBSCRIPTION_ID);
                fy_mqtt_put_vbi(out, p->sub_id);
            }
        }
    }

    if (p->present & FY_MQTT_PBIT(FY_MQTT_P_USER_PROPERTY)) {
        if (p->user_props) {
            for (uint32_t i = 0; i < p->n_user_props; i++) {
                fy_slice k = p->user_props[2 * i], v = p->user_props[2 * i + 1];
                if (k.len > UINT16_MAX || v.len > UINT16_MAX) {
                    return SIZE_MAX;
                }
                n += 5 + k.len + v.len;
                if (out) {
                    fy_buf_put_u8(out, FY_MQTT_P_USER_PROPERTY);
                    fy_mqtt_put_str(out, k);
                    fy_mqtt_put_str(out, v);
                }
            }
        } else {
            fy_mqtt_prop_iter it = fy_mqtt_user_props(p);
            fy_slice k, v;
            while (fy_mqtt_user_prop_next(&it, &k, &v)) {
                n += 5 + k.len + v.len;
                if (out) {
                    fy_buf_put_u8(out, FY_MQTT_P_USER_PROPERTY);
                    fy_mqtt_put_str(out, k);
                    fy_mqtt_put_str(out, v);
                }
            }
        }
    }
    return n > FY_MQTT_MAX_VBI ? SIZE_MAX : n;
}

size_t fy_mqtt_props_size(const fy_mqtt_props *p)
{
    return mqtt_props_walk(p, NULL);
}

size_t fy_mqtt_props_block_size(const fy_mqtt_props *p)
{
    size_t n = mqtt_props_walk(p, NULL);

    return n == SIZE_MAX ? SIZE_MAX : n + fy_mqtt_vbi_size((uint32_t)n);
}

int fy_mqtt_props_encode(fy_buf *out, const fy_mqtt_props *p)
{
    size_t n = mqtt_props_walk(p, NULL);

    if (n == SIZE_MAX) {
        return -FY_EINVAL;
    }
    fy_mqtt_put_vbi(out, (uint32_t)n);
    mqtt_props_walk(p, out);
    return FY_OK;
}

void fy_mqtt_props_drop_optional(fy_mqtt_props *p)
{
    p->present &= ~(FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING) | FY_MQTT_PBIT(FY_MQTT_P_USER_PROPERTY));
    p->reason_string.p = NULL;
    p->reason_string.len = 0;
    p->n_user_props = 0;
    p->user_props = NULL;
}
