/* SPDX-License-Identifier: Apache-2.0 */
/* AMQP 1.0 message <-> Ferry record (docs/mapping.md). Sections are delimited by a small scanner
 * of the AMQP type encoding (no allocation per value, so a large body costs one pass); the small
 * sections Ferry reads (properties, application-properties, message-annotations) are decoded
 * with proton's codec. The bare message of an AMQP producer is kept byte for byte. */
#include "adapters/amqp/amqp_map.h"

#include "common/alloc.h"

#include "ferry/errors.h"

#include <proton/codec.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define SEC_HEADER 0x70
#define SEC_DELIVERY_ANN 0x71
#define SEC_MESSAGE_ANN 0x72
#define SEC_PROPERTIES 0x73
#define SEC_APP_PROPS 0x74
#define SEC_DATA 0x75
#define SEC_SEQUENCE 0x76
#define SEC_VALUE 0x77
#define SEC_FOOTER 0x78

#define MAX_PROPS 60000 /* record properties (the format's limit is 65535) */

const char *fy_amqp_map_condition(fy_amqp_map_err e)
{
    switch (e) {
    case FY_AMQP_MAP_OK:
        return "";
    case FY_AMQP_MAP_DECODE:
        return "amqp:decode-error";
    case FY_AMQP_MAP_FIELD:
        return "amqp:invalid-field";
    case FY_AMQP_MAP_NOTFOUND:
        return "amqp:not-found";
    case FY_AMQP_MAP_TOO_LARGE:
        return "amqp:resource-limit-exceeded";
    }
    return "amqp:internal-error";
}

void fy_amqp_in_free(fy_amqp_in *in)
{
    if (in) {
        fy_buf_free(&in->record);
        fy_buf_free(&in->sharding_key);
    }
}

/* ---- The type scanner ------------------------------------------------------------------------ */

size_t fy_amqp_value_len(const uint8_t *p, size_t len, unsigned depth)
{
    size_t n;
    if (len < 1) {
        return 0;
    }
    if (p[0] == 0x00) {
        size_t d, v;
        if (depth == 0) {
            return 0;
        }
        d = fy_amqp_value_len(p + 1, len - 1, depth - 1);
        if (d == 0) {
            return 0;
        }
        v = fy_amqp_value_len(p + 1 + d, len - 1 - d, depth - 1);
        return v == 0 ? 0 : 1 + d + v;
    }
    switch (p[0] >> 4) {
    case 0x4:
        n = 0;
        break;
    case 0x5:
        n = 1;
        break;
    case 0x6:
        n = 2;
        break;
    case 0x7:
        n = 4;
        break;
    case 0x8:
        n = 8;
        break;
    case 0x9:
        n = 16;
        break;
    case 0xA:
    case 0xC:
    case 0xE:
        if (len < 2) {
            return 0;
        }
        n = 1 + (size_t)p[1];
        break;
    case 0xB:
    case 0xD:
    case 0xF:
        if (len < 5) {
            return 0;
        }
        n = 4 + (size_t)fy_be32_get(p + 1);
        break;
    default:
        return 0;
    }
    return n > len - 1 ? 0 : 1 + n;
}

static const struct {
    const char *name;
    int code;
} section_names[] = {
    {"amqp:header:list", SEC_HEADER},
    {"amqp:delivery-annotations:map", SEC_DELIVERY_ANN},
    {"amqp:message-annotations:map", SEC_MESSAGE_ANN},
    {"amqp:properties:list", SEC_PROPERTIES},
    {"amqp:application-properties:map", SEC_APP_PROPS},
    {"amqp:data:binary", SEC_DATA},
    {"amqp:amqp-sequence:list", SEC_SEQUENCE},
    {"amqp:amqp-value:*", SEC_VALUE},
    {"amqp:footer:map", SEC_FOOTER},
};

/* The section code of the described value at p (n bytes, already scanned), and where its value
 * starts. -1 if it is not a section. */
static int section_code(const uint8_t *p, size_t n, size_t *value_off)
{
    size_t d;
    uint64_t code;
    if (n < 2 || p[0] != 0x00) {
        return -1;
    }
    d = fy_amqp_value_len(p + 1, n - 1, 0);
    if (d == 0) {
        return -1;
    }
    *value_off = 1 + d;
    switch (p[1]) {
    case 0x53: /* smallulong */
        code = p[2];
        break;
    case 0x80: /* ulong */
        code = fy_be64_get(p + 2);
        break;
    case 0x44: /* ulong0 */
        code = 0;
        break;
    case 0xa3:
    case 0xb3: { /* symbol */
        size_t hl = p[1] == 0xa3 ? 2 : 5;
        size_t sl = d - hl;
        for (size_t i = 0; i < sizeof(section_names) / sizeof(section_names[0]); i++) {
            if (strlen(section_names[i].name) == sl &&
                memcmp(section_names[i].name, p + 1 + hl, sl) == 0) {
                return section_names[i].code;
            }
        }
        return -1;
    }
    default:
        return -1;
    }
    return code >= SEC_HEADER && code <= SEC_FOOTER ? (int)code : -1;
}

/* Where the payload of a binary or string value at p starts, and its length. */
static bool vbin_payload(const uint8_t *p, size_t n, uint8_t small, uint8_t large, fy_slice *out)
{
    if (n >= 2 && p[0] == small) {
        *out = (fy_slice){p + 2, n - 2};
        return true;
    }
    if (n >= 5 && p[0] == large) {
        *out = (fy_slice){p + 5, n - 5};
        return true;
    }
    return false;
}

/* The encoding proton (and most encoders) give a data or string section of this length. */
static size_t canonical_head(uint8_t code, uint8_t small, uint8_t large, size_t len, uint8_t *h)
{
    h[0] = 0x00;
    h[1] = 0x53;
    h[2] = code;
    if (len <= 255) {
        h[3] = small;
        h[4] = (uint8_t)len;
        return 5;
    }
    h[3] = large;
    fy_be32_put(h + 4, (uint32_t)len);
    return 8;
}

static bool is_canonical(const uint8_t *sec, size_t n, uint8_t code, uint8_t small, uint8_t large,
                         size_t payload)
{
    uint8_t h[8];
    size_t hl = canonical_head(code, small, large, payload, h);
    return n == hl + payload && memcmp(sec, h, hl) == 0;
}

/* ---- Properties collected for the record ----------------------------------------------------- */

typedef struct pent {
    size_t noff, nlen, voff, vlen; /* in the arena */
} pent;

typedef struct collect {
    fy_buf arena;
    pent *v;
    size_t n, cap;
} collect;

static void add_prop(collect *c, const char *name, size_t nlen, const void *val, size_t vlen)
{
    pent *e;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->v = fy_realloc(c->v, c->cap * sizeof(*c->v));
    }
    e = &c->v[c->n++];
    e->noff = c->arena.len;
    e->nlen = nlen;
    fy_buf_append(&c->arena, name, nlen);
    e->voff = c->arena.len;
    e->vlen = vlen;
    fy_buf_append(&c->arena, val, vlen);
}

static void add_prop_str(collect *c, const char *name, const char *val)
{
    add_prop(c, name, strlen(name), val, strlen(val));
}

static void add_prop_u64(collect *c, const char *name, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRIu64, v);
    add_prop_str(c, name, num);
}

/* The text of a simple AMQP value (a property value, an id). False for lists, maps, arrays,
 * described values and nulls: those are not properties. */
static bool atom_text(pn_data_t *d, char *tmp, size_t tmplen, fy_slice *out)
{
    pn_bytes_t b;
    int n = -1;
    switch (pn_data_type(d)) {
    case PN_STRING:
        b = pn_data_get_string(d);
        *out = (fy_slice){(const uint8_t *)b.start, b.size};
        return true;
    case PN_SYMBOL:
        b = pn_data_get_symbol(d);
        *out = (fy_slice){(const uint8_t *)b.start, b.size};
        return true;
    case PN_BINARY:
        b = pn_data_get_binary(d);
        *out = (fy_slice){(const uint8_t *)b.start, b.size};
        return true;
    case PN_BOOL:
        n = snprintf(tmp, tmplen, "%s", pn_data_get_bool(d) ? "true" : "false");
        break;
    case PN_UBYTE:
        n = snprintf(tmp, tmplen, "%u", (unsigned)pn_data_get_ubyte(d));
        break;
    case PN_BYTE:
        n = snprintf(tmp, tmplen, "%d", (int)pn_data_get_byte(d));
        break;
    case PN_USHORT:
        n = snprintf(tmp, tmplen, "%u", (unsigned)pn_data_get_ushort(d));
        break;
    case PN_SHORT:
        n = snprintf(tmp, tmplen, "%d", (int)pn_data_get_short(d));
        break;
    case PN_UINT:
        n = snprintf(tmp, tmplen, "%" PRIu32, pn_data_get_uint(d));
        break;
    case PN_INT:
        n = snprintf(tmp, tmplen, "%" PRId32, pn_data_get_int(d));
        break;
    case PN_CHAR: {
        uint32_t ch = pn_data_get_char(d);
        n = snprintf(tmp, tmplen, "U+%04" PRIX32, ch);
        break;
    }
    case PN_ULONG:
        n = snprintf(tmp, tmplen, "%" PRIu64, pn_data_get_ulong(d));
        break;
    case PN_LONG:
        n = snprintf(tmp, tmplen, "%" PRId64, pn_data_get_long(d));
        break;
    case PN_TIMESTAMP:
        n = snprintf(tmp, tmplen, "%" PRId64, (int64_t)pn_data_get_timestamp(d));
        break;
    case PN_FLOAT:
        n = snprintf(tmp, tmplen, "%.9g", (double)pn_data_get_float(d));
        break;
    case PN_DOUBLE:
        n = snprintf(tmp, tmplen, "%.17g", pn_data_get_double(d));
        break;
    case PN_UUID: {
        pn_uuid_t u = pn_data_get_uuid(d);
        const uint8_t *x = (const uint8_t *)u.bytes;
        n = snprintf(tmp, tmplen,
                     "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", x[0],
                     x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12],
                     x[13], x[14], x[15]);
        break;
    }
    default:
        return false;
    }
    if (n < 0 || (size_t)n >= tmplen) {
        return false;
    }
    *out = (fy_slice){(const uint8_t *)tmp, (size_t)n};
    return true;
}

/* Decodes one section [p, p + n) into d and leaves d on its value. */
static bool decode_section(pn_data_t *d, const uint8_t *p, size_t n)
{
    ssize_t used;
    pn_data_clear(d);
    used = pn_data_decode(d, (const char *)p, n);
    if (used != (ssize_t)n) {
        return false;
    }
    pn_data_rewind(d);
    return pn_data_next(d) && pn_data_type(d) == PN_DESCRIBED && pn_data_enter(d) &&
           pn_data_next(d) && pn_data_next(d);
}

typedef struct in_state {
    collect *c;
    fy_amqp_in *in;
    const char *to; /* properties.to, into the arena's copy below */
    fy_buf to_buf;
    fy_buf subject;
    bool has_subject;
} in_state;

static const char *const property_names[] = {
    "amqp.message-id",       "amqp.user-id",        "amqp.to",           NULL /* subject */,
    "amqp.reply-to",         "amqp.correlation-id", "amqp.content-type", "amqp.content-encoding",
    "amqp.absolute-expiry",  "amqp.creation-time",  "amqp.group-id",     "amqp.group-sequence",
    "amqp.reply-to-group-id"};

static fy_amqp_map_err read_properties(pn_data_t *d, in_state *st)
{
    size_t count;
    char tmp[64];
    if (pn_data_type(d) != PN_LIST) {
        snprintf(st->in->why, sizeof(st->in->why), "properties section is not a list");
        return FY_AMQP_MAP_DECODE;
    }
    count = pn_data_get_list(d);
    pn_data_enter(d);
    for (size_t i = 0; i < count && pn_data_next(d); i++) {
        fy_slice v;
        if (i >= sizeof(property_names) / sizeof(property_names[0])) {
            break;
        }
        if (pn_data_type(d) == PN_NULL) {
            continue;
        }
        if (i == 3) { /* subject: the tag */
            if (pn_data_type(d) != PN_STRING) {
                snprintf(st->in->why, sizeof(st->in->why), "properties.subject is not a string");
                return FY_AMQP_MAP_FIELD;
            }
            pn_bytes_t b = pn_data_get_string(d);
            fy_buf_append(&st->subject, b.start, b.size);
            st->has_subject = true;
            continue;
        }
        if (i == 8 || i == 9) { /* absolute-expiry-time, creation-time: ms */
            if (pn_data_type(d) == PN_TIMESTAMP) {
                int64_t t = pn_data_get_timestamp(d);
                add_prop_u64(st->c, property_names[i], t < 0 ? 0 : (uint64_t)t);
            }
            continue;
        }
        if (!atom_text(d, tmp, sizeof(tmp), &v)) {
            continue;
        }
        if (i == 2) {
            fy_buf_reset(&st->to_buf);
            fy_buf_append(&st->to_buf, v.p, v.len);
            fy_buf_put_u8(&st->to_buf, 0);
            st->to = (const char *)st->to_buf.data;
        }
        add_prop(st->c, property_names[i], strlen(property_names[i]), v.p, v.len);
    }
    pn_data_exit(d);
    return FY_AMQP_MAP_OK;
}

static fy_amqp_map_err read_app_props(pn_data_t *d, in_state *st)
{
    size_t count;
    char tmp[64];
    if (pn_data_type(d) != PN_MAP) {
        snprintf(st->in->why, sizeof(st->in->why), "application-properties is not a map");
        return FY_AMQP_MAP_DECODE;
    }
    count = pn_data_get_map(d) / 2;
    if (count > MAX_PROPS) {
        snprintf(st->in->why, sizeof(st->in->why), "more than %d application properties",
                 MAX_PROPS);
        return FY_AMQP_MAP_TOO_LARGE;
    }
    pn_data_enter(d);
    for (size_t i = 0; i < count; i++) {
        pn_bytes_t key;
        fy_slice v;
        if (!pn_data_next(d)) {
            break;
        }
        if (pn_data_type(d) == PN_STRING) {
            key = pn_data_get_string(d);
        } else if (pn_data_type(d) == PN_SYMBOL) {
            key = pn_data_get_symbol(d);
        } else {
            snprintf(st->in->why, sizeof(st->in->why), "application property key is not a string");
            return FY_AMQP_MAP_FIELD;
        }
        if (!pn_data_next(d)) {
            break;
        }
        /* Names under amqp. are the adapter's own; empty names cannot be record properties. */
        if (key.size == 0 || (key.size >= 5 && memcmp(key.start, "amqp.", 5) == 0)) {
            continue;
        }
        if (atom_text(d, tmp, sizeof(tmp), &v)) {
            add_prop(st->c, key.start, key.size, v.p, v.len);
        }
    }
    pn_data_exit(d);
    return FY_AMQP_MAP_OK;
}

static bool annotation_ms(pn_data_t *d, uint64_t *ms)
{
    int64_t v;
    switch (pn_data_type(d)) {
    case PN_TIMESTAMP:
        v = pn_data_get_timestamp(d);
        break;
    case PN_LONG:
        v = pn_data_get_long(d);
        break;
    case PN_ULONG:
        *ms = pn_data_get_ulong(d);
        return true;
    case PN_INT:
        v = pn_data_get_int(d);
        break;
    case PN_UINT:
        v = pn_data_get_uint(d);
        break;
    default:
        return false;
    }
    *ms = v < 0 ? 0 : (uint64_t)v;
    return true;
}

static bool key_is(pn_bytes_t k, const char *name)
{
    return k.size == strlen(name) && memcmp(k.start, name, k.size) == 0;
}

static fy_amqp_map_err read_annotations(pn_data_t *d, in_state *st)
{
    size_t count;
    if (pn_data_type(d) != PN_MAP) {
        snprintf(st->in->why, sizeof(st->in->why), "message-annotations is not a map");
        return FY_AMQP_MAP_DECODE;
    }
    count = pn_data_get_map(d) / 2;
    pn_data_enter(d);
    for (size_t i = 0; i < count; i++) {
        pn_bytes_t key = {0, NULL};
        uint64_t ms;
        if (!pn_data_next(d)) {
            break;
        }
        if (pn_data_type(d) == PN_SYMBOL) {
            key = pn_data_get_symbol(d);
        } else if (pn_data_type(d) == PN_STRING) {
            key = pn_data_get_string(d);
        }
        if (!pn_data_next(d)) {
            break;
        }
        if (key_is(key, "x-opt-partition-key")) {
            pn_bytes_t v;
            if (pn_data_type(d) == PN_STRING) {
                v = pn_data_get_string(d);
            } else if (pn_data_type(d) == PN_SYMBOL) {
                v = pn_data_get_symbol(d);
            } else {
                snprintf(st->in->why, sizeof(st->in->why), "x-opt-partition-key is not a string");
                return FY_AMQP_MAP_FIELD;
            }
            fy_buf_reset(&st->in->sharding_key);
            fy_buf_append(&st->in->sharding_key, v.start, v.size);
        } else if (key_is(key, "x-opt-delivery-time") ||
                   key_is(key, "x-opt-scheduled-enqueue-time")) {
            if (!annotation_ms(d, &ms)) {
                snprintf(st->in->why, sizeof(st->in->why), "%.*s is not a time in ms",
                         (int)key.size, key.start);
                return FY_AMQP_MAP_FIELD;
            }
            add_prop_u64(st->c, "TIMER_DELIVER_MS", ms);
        } else if (key_is(key, "x-opt-delivery-delay")) {
            if (!annotation_ms(d, &ms)) {
                snprintf(st->in->why, sizeof(st->in->why), "x-opt-delivery-delay is not ms");
                return FY_AMQP_MAP_FIELD;
            }
            add_prop_u64(st->c, "TIMER_DELAY_MS", ms);
        }
    }
    pn_data_exit(d);
    return FY_AMQP_MAP_OK;
}

fy_amqp_map_err fy_amqp_map_in(const uint8_t *msg, size_t len, const char *topic,
                               const char *born_host, uint64_t now_ms, fy_amqp_in *in)
{
    collect c = {FY_BUF_INIT, NULL, 0, 0};
    in_state st = {&c, in, NULL, FY_BUF_INIT, FY_BUF_INIT, false};
    pn_data_t *d = pn_data(16);
    fy_amqp_map_err rc = FY_AMQP_MAP_OK;
    size_t off = 0, head_start = 0, head_end = 0, body_start = 0, body_end = 0, nbody = 0;
    int last = 0, body_kind = 0;
    fy_slice first_payload = {NULL, 0};
    const uint8_t *first_sec = NULL;
    size_t first_len = 0;
    fy_slice *pv = NULL;
    fy_record r = {0};
    const char *body_prop = NULL;

    static const uint8_t nothing[1] = {0};
    if (!msg) {
        msg = nothing; /* no arithmetic on NULL below */
        len = 0;
    }
    fy_buf_reset(&in->record);
    fy_buf_reset(&in->sharding_key);
    in->why[0] = '\0';
    while (off < len) {
        size_t n = fy_amqp_value_len(msg + off, len - off, 4), voff = 0;
        int code = n ? section_code(msg + off, n, &voff) : -1;
        const uint8_t *sec = msg + off;
        if (code < 0) {
            snprintf(in->why, sizeof(in->why), "no message section at byte %zu", off);
            rc = FY_AMQP_MAP_DECODE;
            goto out;
        }
        if (code < last || (code == last && code != SEC_DATA && code != SEC_SEQUENCE) ||
            (last >= SEC_DATA && last <= SEC_VALUE && code <= SEC_VALUE && code != last)) {
            snprintf(in->why, sizeof(in->why), "section 0x%02x out of order at byte %zu", code,
                     off);
            rc = FY_AMQP_MAP_DECODE;
            goto out;
        }
        last = code;
        switch (code) {
        case SEC_MESSAGE_ANN:
            if (!decode_section(d, sec, n)) {
                snprintf(in->why, sizeof(in->why), "message-annotations do not decode");
                rc = FY_AMQP_MAP_DECODE;
                goto out;
            }
            rc = read_annotations(d, &st);
            if (rc != FY_AMQP_MAP_OK) {
                goto out;
            }
            add_prop(&c, FY_AMQP_PROP_ANNOTATIONS, strlen(FY_AMQP_PROP_ANNOTATIONS), sec, n);
            break;
        case SEC_PROPERTIES:
        case SEC_APP_PROPS:
            if (head_end == 0) {
                head_start = off;
            }
            head_end = off + n;
            if (!decode_section(d, sec, n)) {
                snprintf(in->why, sizeof(in->why), "%s do not decode",
                         code == SEC_PROPERTIES ? "properties" : "application-properties");
                rc = FY_AMQP_MAP_DECODE;
                goto out;
            }
            rc = code == SEC_PROPERTIES ? read_properties(d, &st) : read_app_props(d, &st);
            if (rc != FY_AMQP_MAP_OK) {
                goto out;
            }
            break;
        case SEC_DATA:
        case SEC_SEQUENCE:
        case SEC_VALUE: {
            fy_slice payload = {NULL, 0};
            if (nbody == 0) {
                body_start = off;
                body_kind = code;
                first_sec = sec;
                first_len = n;
            }
            body_end = off + n;
            if (code == SEC_DATA) {
                if (!vbin_payload(sec + voff, n - voff, 0xa0, 0xb0, &payload)) {
                    snprintf(in->why, sizeof(in->why), "data section is not binary");
                    rc = FY_AMQP_MAP_DECODE;
                    goto out;
                }
                if (nbody == 0) {
                    first_payload = payload;
                }
            } else if (code == SEC_VALUE && nbody == 0) {
                if (vbin_payload(sec + voff, n - voff, 0xa1, 0xb1, &payload)) {
                    first_payload = payload;
                } else {
                    first_payload.p = NULL;
                }
            }
            nbody++;
            break;
        }
        default: /* header, delivery annotations (per hop), footer */
            break;
        }
        off += n;
    }

    /* The body Ferry's other protocols see, and how to give AMQP consumers the same sections. */
    if (nbody == 1 && body_kind == SEC_DATA &&
        is_canonical(first_sec, first_len, SEC_DATA, 0xa0, 0xb0, first_payload.len)) {
        r.body = first_payload;
    } else if (nbody == 1 && body_kind == SEC_VALUE && first_payload.p &&
               is_canonical(first_sec, first_len, SEC_VALUE, 0xa1, 0xb1, first_payload.len)) {
        r.body = first_payload;
        body_prop = "string";
    } else {
        r.body = (fy_slice){msg + body_start, body_end - body_start};
        body_prop = "sections";
    }
    add_prop(&c, FY_AMQP_PROP_HEAD, strlen(FY_AMQP_PROP_HEAD), msg + head_start,
             head_end - head_start);
    if (body_prop) {
        add_prop_str(&c, FY_AMQP_PROP_BODY, body_prop);
    }

    if (!topic) {
        topic = st.to;
        if (!topic || !topic[0]) {
            snprintf(in->why, sizeof(in->why),
                     "no topic: the link has no target address and the message no `to`");
            rc = FY_AMQP_MAP_NOTFOUND;
            goto out;
        }
    }
    if (c.n > MAX_PROPS) {
        snprintf(in->why, sizeof(in->why), "too many properties");
        rc = FY_AMQP_MAP_TOO_LARGE;
        goto out;
    }
    pv = fy_malloc((c.n ? c.n : 1) * 2 * sizeof(*pv));
    for (size_t i = 0; i < c.n; i++) {
        pv[2 * i] = (fy_slice){c.arena.data + c.v[i].noff, c.v[i].nlen};
        pv[2 * i + 1] = (fy_slice){c.arena.data + c.v[i].voff, c.v[i].vlen};
    }
    r.topic = fy_slice_str(topic);
    r.tag = st.has_subject ? (fy_slice){st.subject.data, st.subject.len} : (fy_slice){NULL, 0};
    r.born_host = fy_slice_str(born_host);
    r.born_ms = now_ms;
    r.props = pv;
    r.nprops = (uint16_t)c.n;
    if (r.tag.len > FY_RECORD_MAX_NAME || r.born_host.len > FY_RECORD_MAX_NAME) {
        snprintf(in->why, sizeof(in->why), "subject longer than %u bytes", FY_RECORD_MAX_NAME);
        rc = FY_AMQP_MAP_TOO_LARGE;
        goto out;
    }
    if (r.topic.len == 0 || r.topic.len > FY_RECORD_MAX_NAME) {
        snprintf(in->why, sizeof(in->why), "bad topic");
        rc = FY_AMQP_MAP_NOTFOUND;
        goto out;
    }
    if (fy_record_encode(&r, &in->record) != FY_OK) {
        snprintf(in->why, sizeof(in->why), "the message does not fit a record");
        rc = FY_AMQP_MAP_TOO_LARGE;
        goto out;
    }
out:
    if (rc != FY_AMQP_MAP_OK) {
        fy_buf_reset(&in->record);
        fy_buf_reset(&in->sharding_key);
    }
    fy_free(pv);
    fy_buf_free(&c.arena);
    fy_free(c.v);
    fy_buf_free(&st.to_buf);
    fy_buf_free(&st.subject);
    pn_data_free(d);
    return rc;
}

/* ---- Record -> message ------------------------------------------------------------------------
 */

static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k) {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}

static bool prop(const fy_record_view *v, const char *name, fy_slice *out)
{
    return fy_record_prop_get(v, name, out) && out->len > 0;
}

static bool prop_u64(const fy_record_view *v, const char *name, uint64_t *out)
{
    fy_slice s;
    uint64_t x = 0;
    if (!prop(v, name, &s) || s.len > 19) {
        return false;
    }
    for (size_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            return false;
        }
        x = x * 10 + (uint64_t)(s.p[i] - '0');
    }
    *out = x;
    return true;
}

static pn_bytes_t pb(fy_slice s)
{
    return pn_bytes(s.len, (const char *)s.p);
}

static int encode_data(pn_data_t *d, fy_buf *out)
{
    ssize_t n = pn_data_encoded_size(d);
    uint8_t *p;
    if (n < 0) {
        return -FY_EINVAL;
    }
    p = fy_buf_reserve(out, (size_t)n);
    if (pn_data_encode(d, (char *)p, (size_t)n) != n) {
        return -FY_EINVAL;
    }
    out->len += (size_t)n;
    return FY_OK;
}

/* properties and application-properties of a record that did not come from AMQP. */
static int build_head(pn_data_t *d, const fy_record_view *v, const uint8_t msgid[16], fy_buf *out)
{
    fy_slice s, name, val;
    char hex[33];
    uint64_t ms;
    fy_record_iter it;
    int rc;

    pn_data_clear(d);
    pn_data_put_described(d);
    pn_data_enter(d);
    pn_data_put_ulong(d, SEC_PROPERTIES);
    pn_data_put_list(d);
    pn_data_enter(d);
    if (prop(v, "amqp.message-id", &s)) { /* 0 message-id */
        pn_data_put_string(d, pb(s));
    } else {
        for (int i = 0; i < 16; i++) {
            snprintf(hex + 2 * i, 3, "%02X", msgid[i]);
        }
        pn_data_put_string(d, pn_bytes(32, hex));
    }
    pn_data_put_null(d);          /* 1 user-id */
    if (prop(v, "amqp.to", &s)) { /* 2 to */
        pn_data_put_string(d, pb(s));
    } else {
        pn_data_put_null(d);
    }
    if (v->tag.len > 0) { /* 3 subject */
        pn_data_put_string(d, pb(v->tag));
    } else {
        pn_data_put_null(d);
    }
    if (prop(v, "amqp.reply-to", &s) || prop(v, "mqtt.response_topic", &s)) { /* 4 reply-to */
        pn_data_put_string(d, pb(s));
    } else {
        pn_data_put_null(d);
    }
    if (prop(v, "amqp.correlation-id", &s)) { /* 5 correlation-id */
        pn_data_put_string(d, pb(s));
    } else if (prop(v, "mqtt.correlation_data", &s)) {
        pn_data_put_binary(d, pb(s));
    } else {
        pn_data_put_null(d);
    }
    if (prop(v, "amqp.content-type", &s) || prop(v, "mqtt.content_type", &s)) { /* 6 */
        pn_data_put_symbol(d, pb(s));
    } else {
        pn_data_put_null(d);
    }
    pn_data_put_null(d); /* 7 content-encoding */
    if (prop_u64(v, "amqp.absolute-expiry", &ms) || prop_u64(v, "mqtt.expiry_ms", &ms)) {
        pn_data_put_timestamp(d, (pn_timestamp_t)ms); /* 8 absolute-expiry-time */
    } else {
        pn_data_put_null(d);
    }
    pn_data_put_timestamp(d, (pn_timestamp_t)v->born_ms); /* 9 creation-time */
    pn_data_exit(d);
    pn_data_exit(d);
    rc = encode_data(d, out);
    if (rc != FY_OK || v->nprops == 0) {
        return rc;
    }

    pn_data_clear(d);
    pn_data_put_described(d);
    pn_data_enter(d);
    pn_data_put_ulong(d, SEC_APP_PROPS);
    pn_data_put_map(d);
    pn_data_enter(d);
    it = fy_record_props(v);
    while (fy_record_prop_next(&it, &name, &val)) {
        if (name.len >= 5 && memcmp(name.p, "amqp.", 5) == 0) {
            continue;
        }
        if (!utf8_valid(name.p, name.len)) {
            continue;
        }
        pn_data_put_string(d, pb(name));
        if (utf8_valid(val.p, val.len)) {
            pn_data_put_string(d, pb(val));
        } else {
            pn_data_put_binary(d, pb(val));
        }
    }
    pn_data_exit(d);
    pn_data_exit(d);
    return encode_data(d, out);
}

static void put_section(fy_buf *out, uint8_t code, uint8_t small, uint8_t large, fy_slice payload)
{
    uint8_t h[8];
    size_t hl = canonical_head(code, small, large, payload.len, h);
    fy_buf_append(out, h, hl);
    fy_buf_append(out, payload.p, payload.len);
}

int fy_amqp_map_out(const fy_record_view *v, const uint8_t msgid[16], uint32_t delivery_count,
                    fy_buf *out)
{
    pn_data_t *d = pn_data(16);
    fy_slice head, ann, body_kind;
    int rc;

    fy_buf_reset(out);
    if (v->body.len > UINT32_MAX) {
        pn_data_free(d);
        return -FY_EINVAL;
    }
    /* header: durable, and the delivery count of a redelivered message */
    pn_data_put_described(d);
    pn_data_enter(d);
    pn_data_put_ulong(d, SEC_HEADER);
    pn_data_put_list(d);
    pn_data_enter(d);
    pn_data_put_bool(d, true);
    if (delivery_count > 0) {
        pn_data_put_null(d);        /* priority */
        pn_data_put_null(d);        /* ttl */
        pn_data_put_bool(d, false); /* first-acquirer */
        pn_data_put_uint(d, delivery_count);
    }
    pn_data_exit(d);
    pn_data_exit(d);
    rc = encode_data(d, out);
    if (rc != FY_OK) {
        goto out;
    }
    if (fy_record_prop_get(v, FY_AMQP_PROP_ANNOTATIONS, &ann)) {
        fy_buf_append(out, ann.p, ann.len);
    }
    if (fy_record_prop_get(v, FY_AMQP_PROP_HEAD, &head)) {
        fy_buf_append(out, head.p, head.len);
    } else {
        rc = build_head(d, v, msgid, out);
        if (rc != FY_OK) {
            goto out;
        }
    }
    if (!fy_record_prop_get(v, FY_AMQP_PROP_BODY, &body_kind)) {
        put_section(out, SEC_DATA, 0xa0, 0xb0, v->body);
    } else if (body_kind.len == 6 && memcmp(body_kind.p, "string", 6) == 0) {
        put_section(out, SEC_VALUE, 0xa1, 0xb1, v->body);
    } else {
        fy_buf_append(out, v->body.p, v->body.len); /* "sections": kept as sent */
    }
out:
    pn_data_free(d);
    return rc;
}
