/* SPDX-License-Identifier: Apache-2.0 */
/* The native protocol's frame codec (docs/protocol.md): frame splitting, encoders that append
 * whole frames to an fy_buf (length patched at the end), decoders built on the bounds-checked
 * reader that accept a payload only when it is consumed exactly, and message id helpers. */
#include "common/wire.h"

#include "ferry/errors.h"

#include <assert.h>
#include <limits.h>

/* ---- Frames -------------------------------------------------------------------------------- */

long fy_wire_frame_parse(const void *p, size_t n, size_t max_frame, fy_frame *f)
{
    const uint8_t *b = p;
    uint32_t len;

    if (n < 4) {
        return 0;
    }
    len = fy_be32_get(b);
    if (len < FY_WIRE_MIN_FRAME) {
        return -FY_EPROTO;
    }
    if (len > max_frame) {
        return -FY_ETOOBIG;
    }
#if LONG_MAX < 0xffffffffLL + 4
    /* Keeps the total representable in a 32-bit long. */
    if (len > (unsigned long)LONG_MAX - 4) {
        return -FY_ETOOBIG;
    }
#endif
    if (n - 4 < len) {
        return 0;
    }
    f->type = b[4];
    f->flags = b[5];
    f->id = fy_be32_get(b + 6);
    f->payload.p = b + FY_WIRE_HEADER_LEN;
    f->payload.len = len - FY_WIRE_MIN_FRAME;
    return (long)len + 4;
}

size_t fy_wire_frame_begin(fy_buf *out, uint8_t type, uint8_t flags, uint32_t id)
{
    size_t start = out->len;
    uint8_t *p = fy_buf_reserve(out, FY_WIRE_HEADER_LEN);

    fy_be32_put(p, 0);
    p[4] = type;
    p[5] = flags;
    fy_be32_put(p + 6, id);
    out->len += FY_WIRE_HEADER_LEN;
    return start;
}

void fy_wire_frame_end(fy_buf *out, size_t start)
{
    size_t len = out->len - start - 4;

    assert(start + FY_WIRE_HEADER_LEN <= out->len && len <= UINT32_MAX);
    fy_be32_put(out->data + start, (uint32_t)len);
}

/* ---- Strings ------------------------------------------------------------------------------- */

/* Bytes a string takes on the wire (longer strings are cut, see fy_wire_put_slice). */
static size_t wire_str_size(size_t len)
{
    return 2 + (len > UINT16_MAX ? UINT16_MAX : len);
}

static size_t wire_cstr_size(const char *s)
{
    return wire_str_size(s ? strlen(s) : 0);
}

void fy_wire_put_slice(fy_buf *out, fy_slice s)
{
    size_t len = s.len > UINT16_MAX ? UINT16_MAX : s.len;

    fy_buf_put_u16(out, (uint16_t)len);
    if (len > 0) {
        fy_buf_append(out, s.p, len);
    }
}

void fy_wire_put_str(fy_buf *out, const char *s)
{
    fy_wire_put_slice(out, fy_slice_str(s));
}

fy_slice fy_wire_get_str(fy_rd *r)
{
    fy_slice s = {NULL, 0};
    uint16_t len = fy_rd_u16(r);
    const uint8_t *p = fy_rd_take(r, len);

    if (!r->bad) {
        s.p = p;
        s.len = len;
    }
    return s;
}

/* A u32 length and that many bytes (a record). */
static fy_slice wire_get_blob(fy_rd *r)
{
    fy_slice s = {NULL, 0};
    uint32_t len = fy_rd_u32(r);
    const uint8_t *p = fy_rd_take(r, len);

    if (!r->bad) {
        s.p = p;
        s.len = len;
    }
    return s;
}

/* The end of every decoder: nothing short, nothing left over. */
static int wire_rd_done(const fy_rd *r)
{
    return r->bad || r->left != 0 ? -FY_EPROTO : FY_OK;
}

static fy_rd wire_rd(const fy_frame *f)
{
    return fy_rd_make(f->payload.p, f->payload.len);
}

/* ---- Encoders ------------------------------------------------------------------------------ */

void fy_wire_enc_hello(fy_buf *out, uint32_t id, const fy_w_hello *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 2 + wire_str_size(m->client_id.len) +
                            wire_str_size(m->client_name.len) + wire_str_size(m->username.len) +
                            wire_str_size(m->password.len));
    start = fy_wire_frame_begin(out, FY_W_HELLO, 0, id);
    fy_buf_put_u16(out, m->version);
    fy_wire_put_slice(out, m->client_id);
    fy_wire_put_slice(out, m->client_name);
    if (m->has_credentials) {
        fy_wire_put_slice(out, m->username);
        fy_wire_put_slice(out, m->password);
    }
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_hello_ok(fy_buf *out, uint32_t id, const fy_w_hello_ok *m)
{
    size_t start;

    fy_buf_reserve(out,
                   FY_WIRE_HEADER_LEN + 2 + 2 + 2 + 2 + 4 + wire_str_size(m->broker_version.len));
    start = fy_wire_ok_begin(out, id);
    fy_buf_put_u16(out, m->version);
    fy_buf_put_u16(out, m->broker_id);
    fy_buf_put_u32(out, m->max_frame);
    fy_wire_put_slice(out, m->broker_version);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_topic(fy_buf *out, uint8_t type, uint32_t id, const fy_w_topic *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + wire_str_size(m->name.len) + 4);
    start = fy_wire_frame_begin(out, type, 0, id);
    fy_wire_put_slice(out, m->name);
    if (type == FY_W_TOPIC_CREATE) {
        fy_buf_put_u32(out, m->queues);
    }
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_subscribe(fy_buf *out, uint32_t id, const fy_w_subscribe *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 4 + wire_str_size(m->group.len) +
                            wire_str_size(m->topic.len) + wire_str_size(m->filter.len) + 1 + 1 + 8 +
                            4 + 1 + 1);
    start = fy_wire_frame_begin(out, FY_W_SUBSCRIBE, 0, id);
    fy_buf_put_u32(out, m->sub_id);
    fy_wire_put_slice(out, m->group);
    fy_wire_put_slice(out, m->topic);
    fy_wire_put_slice(out, m->filter);
    fy_buf_put_u8(out, m->mode);
    fy_buf_put_u8(out, m->start);
    fy_buf_put_u64(out, m->start_ms);
    fy_buf_put_u32(out, m->credit);
    fy_buf_put_u8(out, m->filter_type);
    fy_buf_put_u8(out, m->sub_flags);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_credit(fy_buf *out, uint32_t id, uint8_t flags, const fy_w_credit *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 4 + 4);
    start = fy_wire_frame_begin(out, FY_W_CREDIT, flags, id);
    fy_buf_put_u32(out, m->sub_id);
    fy_buf_put_u32(out, m->credit);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_ack(fy_buf *out, uint8_t type, uint32_t id, uint8_t flags, const fy_w_ack *m)
{
    size_t start;
    uint8_t *p;

    assert(m->n <= FY_WIRE_MAX_BATCH);
    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 4 + 1 + 2 + 8 * (size_t)m->n);
    start = fy_wire_frame_begin(out, type, flags, id);
    fy_buf_put_u32(out, m->sub_id);
    fy_buf_put_u8(out, type == FY_W_NACK ? m->how : 0);
    fy_buf_put_u16(out, m->n);
    p = fy_buf_reserve(out, 8 * (size_t)m->n);
    for (size_t i = 0; i < m->n; i++) {
        fy_be64_put(p + 8 * i, m->ids[i]);
    }
    out->len += 8 * (size_t)m->n;
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_deliver(fy_buf *out, uint32_t sub_id, uint64_t delivery_id,
                         const uint8_t msgid[FY_MSGID_LEN], const void *rec, size_t len)
{
    size_t start;

    assert(len <= UINT32_MAX);
    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 4 + 8 + FY_MSGID_LEN + 4 + len);
    start = fy_wire_frame_begin(out, FY_W_DELIVER, 0, 0);
    fy_buf_put_u32(out, sub_id);
    fy_buf_put_u64(out, delivery_id);
    fy_buf_append(out, msgid, FY_MSGID_LEN);
    fy_buf_put_u32(out, (uint32_t)len);
    fy_buf_append(out, rec, len);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_sub_closed(fy_buf *out, const fy_w_sub_closed *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 4 + 2 + wire_str_size(m->reason.len));
    start = fy_wire_frame_begin(out, FY_W_SUB_CLOSED, 0, 0);
    fy_buf_put_u32(out, m->sub_id);
    fy_buf_put_u16(out, m->status);
    fy_wire_put_slice(out, m->reason);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_group_reset(fy_buf *out, uint32_t id, const fy_w_group_reset *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + wire_str_size(m->group.len) +
                            wire_str_size(m->topic.len) + 8);
    start = fy_wire_frame_begin(out, FY_W_GROUP_RESET, 0, id);
    fy_wire_put_slice(out, m->group);
    fy_wire_put_slice(out, m->topic);
    fy_buf_put_u64(out, m->ts_ms);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_msg_find(fy_buf *out, uint32_t id, const fy_w_msg_find *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + wire_str_size(m->topic.len) +
                            wire_str_size(m->key.len) + 8 + 8 + 4);
    start = fy_wire_frame_begin(out, FY_W_MSG_FIND, 0, id);
    fy_wire_put_slice(out, m->topic);
    fy_wire_put_slice(out, m->key);
    fy_buf_put_u64(out, m->from_ms);
    fy_buf_put_u64(out, m->to_ms);
    fy_buf_put_u32(out, m->limit);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_tx_half(fy_buf *out, uint32_t id, const fy_w_tx_half *m)
{
    size_t start;

    assert(m->record.len <= UINT32_MAX);
    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + wire_str_size(m->group.len) +
                            wire_str_size(m->sharding_key.len) + 4 + m->record.len);
    start = fy_wire_frame_begin(out, FY_W_TX_HALF, 0, id);
    fy_wire_put_slice(out, m->group);
    fy_wire_put_slice(out, m->sharding_key);
    fy_buf_put_u32(out, (uint32_t)m->record.len);
    fy_buf_append(out, m->record.p, m->record.len);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_tx_end(fy_buf *out, uint32_t id, uint8_t flags, const fy_w_tx_end *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 8 + 1);
    start = fy_wire_frame_begin(out, FY_W_TX_END, flags, id);
    fy_buf_put_u64(out, m->tx_id);
    fy_buf_put_u8(out, m->state);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_group_config(fy_buf *out, uint32_t id, const fy_w_group_config *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + wire_str_size(m->group.len) + 2);
    start = fy_wire_frame_begin(out, FY_W_GROUP_CONFIG, 0, id);
    fy_wire_put_slice(out, m->group);
    fy_buf_put_u8(out, m->set);
    fy_buf_put_u8(out, m->max_reconsume);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_group_config_info(fy_buf *out, uint32_t id, const fy_w_group_config_info *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 2 + 2 + wire_str_size(m->group.len) + 3);
    start = fy_wire_ok_begin(out, id);
    fy_wire_put_slice(out, m->group);
    fy_buf_put_u8(out, m->mode);
    fy_buf_put_u8(out, m->max_reconsume);
    fy_buf_put_u8(out, m->effective);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_tx_list(fy_buf *out, uint32_t id, const fy_w_tx_list *m)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 8 + 4);
    start = fy_wire_frame_begin(out, FY_W_TX_LIST, 0, id);
    fy_buf_put_u64(out, m->from_id);
    fy_buf_put_u32(out, m->limit);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_tx_check(fy_buf *out, const fy_w_tx_check *m)
{
    size_t start;

    assert(m->record.len <= UINT32_MAX);
    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 8 + wire_str_size(m->group.len) + 4 + FY_MSGID_LEN +
                            4 + m->record.len);
    start = fy_wire_frame_begin(out, FY_W_TX_CHECK, 0, 0);
    fy_buf_put_u64(out, m->tx_id);
    fy_wire_put_slice(out, m->group);
    fy_buf_put_u32(out, m->checks);
    fy_buf_append(out, m->msgid, FY_MSGID_LEN);
    fy_buf_put_u32(out, (uint32_t)m->record.len);
    fy_buf_append(out, m->record.p, m->record.len);
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_simple(fy_buf *out, uint8_t type, uint32_t id, const char *s)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + (s ? wire_cstr_size(s) : 0));
    start = fy_wire_frame_begin(out, type, 0, id);
    if (s) {
        fy_wire_put_str(out, s);
    }
    fy_wire_frame_end(out, start);
}

void fy_wire_enc_error(fy_buf *out, uint32_t id, int status, const char *message)
{
    size_t start;

    if (status < 0) {
        status = -status;
    }
    assert(status > 0 && status <= UINT16_MAX);
    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 2 + wire_cstr_size(message));
    start = fy_wire_frame_begin(out, FY_W_RESPONSE, 0, id);
    fy_buf_put_u16(out, (uint16_t)status);
    fy_wire_put_str(out, message);
    fy_wire_frame_end(out, start);
}

size_t fy_wire_send_begin(fy_buf *out, uint32_t id)
{
    size_t start = fy_wire_frame_begin(out, FY_W_SEND, 0, id);

    fy_buf_put_u16(out, 0); /* the count, set by fy_wire_send_end */
    return start;
}

void fy_wire_send_add(fy_buf *out, const char *sharding_key, const void *rec, size_t len)
{
    assert(len <= UINT32_MAX);
    fy_buf_reserve(out, wire_cstr_size(sharding_key) + 4 + len);
    fy_wire_put_str(out, sharding_key);
    fy_buf_put_u32(out, (uint32_t)len);
    fy_buf_append(out, rec, len);
}

void fy_wire_send_end(fy_buf *out, size_t start, uint16_t n)
{
    fy_be16_put(out->data + start + FY_WIRE_HEADER_LEN, n);
    fy_wire_frame_end(out, start);
}

size_t fy_wire_ok_begin(fy_buf *out, uint32_t id)
{
    size_t start;

    fy_buf_reserve(out, FY_WIRE_HEADER_LEN + 2 + 2);
    start = fy_wire_frame_begin(out, FY_W_RESPONSE, 0, id);
    fy_buf_put_u16(out, 0); /* status OK */
    fy_buf_put_u16(out, 0); /* empty message */
    return start;
}

void fy_wire_put_send_result(fy_buf *out, const fy_w_send_result *m)
{
    uint8_t *p = fy_buf_reserve(out, FY_WIRE_SEND_RESULT_LEN);

    fy_be32_put(p, m->queue_id);
    fy_be64_put(p + 4, m->offset);
    fy_be64_put(p + 12, m->store_ms);
    memcpy(p + 20, m->msgid, FY_MSGID_LEN);
    out->len += FY_WIRE_SEND_RESULT_LEN;
}

void fy_wire_get_send_result(fy_rd *r, fy_w_send_result *m)
{
    const uint8_t *p = fy_rd_take(r, FY_WIRE_SEND_RESULT_LEN);

    if (!p) {
        memset(m, 0, sizeof(*m));
        return;
    }
    m->queue_id = fy_be32_get(p);
    m->offset = fy_be64_get(p + 4);
    m->store_ms = fy_be64_get(p + 12);
    memcpy(m->msgid, p + 20, FY_MSGID_LEN);
}

/* ---- Decoders ------------------------------------------------------------------------------ */

int fy_wire_dec_hello(const fy_frame *f, fy_w_hello *m)
{
    fy_rd r = wire_rd(f);

    m->version = fy_rd_u16(&r);
    m->client_id = fy_wire_get_str(&r);
    m->client_name = fy_wire_get_str(&r);
    m->has_credentials = !r.bad && r.left > 0;
    m->username = m->password = (fy_slice){NULL, 0};
    if (m->has_credentials) {
        m->username = fy_wire_get_str(&r);
        m->password = fy_wire_get_str(&r);
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_hello_ok(fy_slice body, fy_w_hello_ok *m)
{
    fy_rd r = fy_rd_make(body.p, body.len);

    m->version = fy_rd_u16(&r);
    m->broker_id = fy_rd_u16(&r);
    m->max_frame = fy_rd_u32(&r);
    m->broker_version = fy_wire_get_str(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_topic(const fy_frame *f, fy_w_topic *m)
{
    fy_rd r = wire_rd(f);

    if (f->type != FY_W_TOPIC_CREATE && f->type != FY_W_TOPIC_DELETE &&
        f->type != FY_W_TOPIC_DESCRIBE) {
        return -FY_EPROTO;
    }
    m->name = fy_wire_get_str(&r);
    m->queues = f->type == FY_W_TOPIC_CREATE ? fy_rd_u32(&r) : 0;
    return wire_rd_done(&r);
}

int fy_wire_dec_send(const fy_frame *f, fy_w_send *m)
{
    fy_rd r = wire_rd(f);

    m->n = fy_rd_u16(&r);
    if (r.bad || m->n == 0 || m->n > FY_WIRE_MAX_BATCH) {
        return -FY_EPROTO;
    }
    for (size_t i = 0; i < m->n && !r.bad; i++) {
        m->msgs[i].sharding_key = fy_wire_get_str(&r);
        m->msgs[i].record = wire_get_blob(&r);
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_subscribe(const fy_frame *f, fy_w_subscribe *m)
{
    fy_rd r = wire_rd(f);

    m->sub_id = fy_rd_u32(&r);
    m->group = fy_wire_get_str(&r);
    m->topic = fy_wire_get_str(&r);
    m->filter = fy_wire_get_str(&r);
    m->mode = fy_rd_u8(&r);
    m->start = fy_rd_u8(&r);
    m->start_ms = fy_rd_u64(&r);
    m->credit = fy_rd_u32(&r);
    m->filter_type = fy_rd_u8(&r);
    m->sub_flags = fy_rd_u8(&r);
    if (m->mode > FY_SUB_BROADCAST || m->start > FY_START_TIME ||
        m->filter_type > FY_FILTER_SQL92 || (m->sub_flags & ~FY_SUB_F_ALL)) {
        return -FY_EPROTO;
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_credit(const fy_frame *f, fy_w_credit *m)
{
    fy_rd r = wire_rd(f);

    m->sub_id = fy_rd_u32(&r);
    m->credit = fy_rd_u32(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_ack(const fy_frame *f, fy_w_ack *m)
{
    fy_rd r = wire_rd(f);
    const uint8_t *p;

    if (f->type != FY_W_ACK && f->type != FY_W_NACK) {
        return -FY_EPROTO;
    }
    m->sub_id = fy_rd_u32(&r);
    m->how = fy_rd_u8(&r);
    m->n = fy_rd_u16(&r);
    if (r.bad || m->n == 0 || m->n > FY_WIRE_MAX_BATCH) {
        return -FY_EPROTO;
    }
    /* ACK's second field is reserved and must be 0. */
    if (f->type == FY_W_ACK ? m->how != 0 : m->how > FY_NACK_REJECT) {
        return -FY_EPROTO;
    }
    p = fy_rd_take(&r, 8 * (size_t)m->n);
    if (!p) {
        return -FY_EPROTO;
    }
    for (size_t i = 0; i < m->n; i++) {
        m->ids[i] = fy_be64_get(p + 8 * i);
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_deliver(const fy_frame *f, fy_w_deliver *m)
{
    fy_rd r = wire_rd(f);

    const uint8_t *id;

    m->sub_id = fy_rd_u32(&r);
    m->delivery_id = fy_rd_u64(&r);
    id = fy_rd_take(&r, FY_MSGID_LEN);
    if (id) {
        memcpy(m->msgid, id, FY_MSGID_LEN);
    }
    m->record = wire_get_blob(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_sub_closed(const fy_frame *f, fy_w_sub_closed *m)
{
    fy_rd r = wire_rd(f);

    m->sub_id = fy_rd_u32(&r);
    m->status = fy_rd_u16(&r);
    m->reason = fy_wire_get_str(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_group_reset(const fy_frame *f, fy_w_group_reset *m)
{
    fy_rd r = wire_rd(f);

    m->group = fy_wire_get_str(&r);
    m->topic = fy_wire_get_str(&r);
    m->ts_ms = fy_rd_u64(&r);
    return wire_rd_done(&r);
}

static bool reconsume_valid(uint8_t v)
{
    return v <= FY_WIRE_RECONSUME_MAX || v == FY_WIRE_RECONSUME_DEFAULT;
}

int fy_wire_dec_group_config(const fy_frame *f, fy_w_group_config *m)
{
    fy_rd r = wire_rd(f);

    m->group = fy_wire_get_str(&r);
    m->set = fy_rd_u8(&r);
    m->max_reconsume = fy_rd_u8(&r);
    if ((m->set & ~FY_GROUP_CFG_ALL) != 0) {
        return -FY_EPROTO;
    }
    if ((m->set & FY_GROUP_CFG_MAX_RECONSUME) ? !reconsume_valid(m->max_reconsume)
                                              : m->max_reconsume != 0) {
        return -FY_EPROTO;
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_group_config_info(fy_slice body, fy_w_group_config_info *m)
{
    fy_rd r = fy_rd_make(body.p, body.len);

    m->group = fy_wire_get_str(&r);
    m->mode = fy_rd_u8(&r);
    m->max_reconsume = fy_rd_u8(&r);
    m->effective = fy_rd_u8(&r);
    if (m->mode > FY_SUB_BROADCAST || !reconsume_valid(m->max_reconsume) ||
        m->effective > FY_WIRE_RECONSUME_MAX) {
        return -FY_EPROTO;
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_msg_find(const fy_frame *f, fy_w_msg_find *m)
{
    fy_rd r = wire_rd(f);

    m->topic = fy_wire_get_str(&r);
    m->key = fy_wire_get_str(&r);
    m->from_ms = fy_rd_u64(&r);
    m->to_ms = fy_rd_u64(&r);
    m->limit = fy_rd_u32(&r);
    if (m->limit == 0 || m->limit > FY_WIRE_MAX_BATCH) {
        return -FY_EPROTO;
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_tx_half(const fy_frame *f, fy_w_tx_half *m)
{
    fy_rd r = wire_rd(f);

    m->group = fy_wire_get_str(&r);
    m->sharding_key = fy_wire_get_str(&r);
    m->record = wire_get_blob(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_tx_end(const fy_frame *f, fy_w_tx_end *m)
{
    fy_rd r = wire_rd(f);

    m->tx_id = fy_rd_u64(&r);
    m->state = fy_rd_u8(&r);
    if (m->state > FY_TXE_UNKNOWN) {
        return -FY_EPROTO;
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_tx_list(const fy_frame *f, fy_w_tx_list *m)
{
    fy_rd r = wire_rd(f);

    m->from_id = fy_rd_u64(&r);
    m->limit = fy_rd_u32(&r);
    if (m->limit == 0 || m->limit > FY_WIRE_MAX_BATCH) {
        return -FY_EPROTO;
    }
    return wire_rd_done(&r);
}

int fy_wire_dec_tx_check(const fy_frame *f, fy_w_tx_check *m)
{
    fy_rd r = wire_rd(f);
    const uint8_t *id;

    m->tx_id = fy_rd_u64(&r);
    m->group = fy_wire_get_str(&r);
    m->checks = fy_rd_u32(&r);
    id = fy_rd_take(&r, FY_MSGID_LEN);
    if (id) {
        memcpy(m->msgid, id, FY_MSGID_LEN);
    }
    m->record = wire_get_blob(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_str(const fy_frame *f, fy_slice *s)
{
    fy_rd r = wire_rd(f);

    *s = fy_wire_get_str(&r);
    return wire_rd_done(&r);
}

int fy_wire_dec_response(const fy_frame *f, fy_w_response *m)
{
    fy_rd r = wire_rd(f);

    m->status = fy_rd_u16(&r);
    m->message = fy_wire_get_str(&r);
    if (r.bad) {
        return -FY_EPROTO;
    }
    m->body.p = r.p;
    m->body.len = r.left;
    /* An OK carries no message and an error no body (docs/protocol.md, RESPONSE). */
    if (m->status == 0 ? m->message.len != 0 : m->body.len != 0) {
        return -FY_EPROTO;
    }
    return FY_OK;
}

/* ---- Message ids --------------------------------------------------------------------------- */

void fy_msgid_make(uint8_t id[FY_MSGID_LEN], uint16_t broker_id, uint32_t topic_id,
                   uint16_t queue_id, uint64_t offset)
{
    fy_be16_put(id, broker_id);
    fy_be32_put(id + 2, topic_id);
    fy_be16_put(id + 6, queue_id);
    fy_be64_put(id + 8, offset);
}

void fy_msgid_parse(const uint8_t id[FY_MSGID_LEN], uint16_t *broker_id, uint32_t *topic_id,
                    uint16_t *queue_id, uint64_t *offset)
{
    *broker_id = fy_be16_get(id);
    *topic_id = fy_be32_get(id + 2);
    *queue_id = fy_be16_get(id + 6);
    *offset = fy_be64_get(id + 8);
}

void fy_msgid_to_hex(const uint8_t id[FY_MSGID_LEN], char hex[FY_MSGID_HEX_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < FY_MSGID_LEN; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 0x0f];
    }
    hex[FY_MSGID_HEX_LEN] = '\0';
}

/* The value of one hex digit, or -1. */
static int wire_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int fy_msgid_from_hex(const char *hex, size_t len, uint8_t id[FY_MSGID_LEN])
{
    uint8_t tmp[FY_MSGID_LEN];

    if (!hex || len != FY_MSGID_HEX_LEN) {
        return -FY_EINVAL;
    }
    for (size_t i = 0; i < FY_MSGID_LEN; i++) {
        int hi = wire_hex_digit(hex[2 * i]), lo = wire_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -FY_EINVAL;
        }
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(id, tmp, FY_MSGID_LEN);
    return FY_OK;
}
