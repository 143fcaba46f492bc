/* SPDX-License-Identifier: Apache-2.0 */
/* The message record codec (layout in common/record.h): size, encode into one reserved block,
 * a decoder that validates every length with the bounds-checked reader and never allocates,
 * iterators over the validated key and property regions, and in-place location patching. */
#include "common/record.h"

#include "ferry/errors.h"

#include <assert.h>

/* Adds n to *total; false if the sum no longer fits a size_t. */
static bool record_size_add(size_t *total, size_t n)
{
    if (n > SIZE_MAX - *total) {
        return false;
    }
    *total += n;
    return true;
}

/* A slice with bytes but no pointer cannot be encoded. */
static bool record_slice_ok(fy_slice s, size_t min, size_t max)
{
    return s.len >= min && s.len <= max && (s.p != NULL || s.len == 0);
}

size_t fy_record_size(const fy_record *r)
{
    size_t total = FY_RECORD_HEADER_LEN;

    if (!record_slice_ok(r->topic, 1, FY_RECORD_MAX_NAME) ||
        !record_slice_ok(r->tag, 0, FY_RECORD_MAX_NAME) ||
        !record_slice_ok(r->born_host, 0, FY_RECORD_MAX_NAME) ||
        !record_slice_ok(r->body, 0, FY_RECORD_MAX_BODY)) {
        return 0;
    }
    if ((r->nkeys > 0 && !r->keys) || (r->nprops > 0 && !r->props)) {
        return 0;
    }
    /* Fixed parts: three u16-prefixed names, two u16 counts, then the body. */
    if (!record_size_add(&total, 2 + r->topic.len) || !record_size_add(&total, 2 + r->tag.len) ||
        !record_size_add(&total, 2 + r->born_host.len) || !record_size_add(&total, 2 + 2) ||
        !record_size_add(&total, r->body.len)) {
        return 0;
    }
    for (size_t i = 0; i < r->nkeys; i++) {
        if (!record_slice_ok(r->keys[i], 1, FY_RECORD_MAX_NAME) ||
            !record_size_add(&total, 2 + r->keys[i].len)) {
            return 0;
        }
    }
    for (size_t i = 0; i < r->nprops; i++) {
        fy_slice name = r->props[2 * i], value = r->props[2 * i + 1];
        if (!record_slice_ok(name, 1, UINT16_MAX) || !record_slice_ok(value, 0, UINT32_MAX) ||
            !record_size_add(&total, 2 + name.len) || !record_size_add(&total, 4) ||
            !record_size_add(&total, value.len)) {
            return 0;
        }
    }
    return total;
}

/* Copies s to p and returns the position after it; memcpy with a NULL source is undefined even
 * for zero bytes, and empty slices may carry one. */
static uint8_t *record_put_bytes(uint8_t *p, fy_slice s)
{
    if (s.len > 0) {
        memcpy(p, s.p, s.len);
    }
    return p + s.len;
}

static uint8_t *record_put_name(uint8_t *p, fy_slice s)
{
    fy_be16_put(p, (uint16_t)s.len);
    return record_put_bytes(p + 2, s);
}

int fy_record_encode(const fy_record *r, fy_buf *out)
{
    size_t n = fy_record_size(r);
    uint8_t *start, *p;

    if (n == 0) {
        return -FY_EINVAL;
    }
    start = fy_buf_reserve(out, n);
    p = start;
    p[0] = FY_RECORD_MAGIC;
    p[1] = FY_RECORD_VERSION;
    fy_be16_put(p + 2, r->flags);
    fy_be32_put(p + FY_RECORD_OFF_QUEUE_ID, r->queue_id);
    fy_be64_put(p + FY_RECORD_OFF_QUEUE_OFFSET, r->queue_offset);
    fy_be64_put(p + 16, r->born_ms);
    fy_be64_put(p + FY_RECORD_OFF_STORE_MS, r->store_ms);
    fy_be32_put(p + 32, r->reconsume);
    fy_be32_put(p + 36, (uint32_t)r->body.len);
    p += FY_RECORD_HEADER_LEN;

    p = record_put_name(p, r->topic);
    p = record_put_name(p, r->tag);
    p = record_put_name(p, r->born_host);
    fy_be16_put(p, r->nkeys);
    p += 2;
    for (size_t i = 0; i < r->nkeys; i++) {
        p = record_put_name(p, r->keys[i]);
    }
    fy_be16_put(p, r->nprops);
    p += 2;
    for (size_t i = 0; i < r->nprops; i++) {
        p = record_put_name(p, r->props[2 * i]);
        fy_be32_put(p, (uint32_t)r->props[2 * i + 1].len);
        p = record_put_bytes(p + 4, r->props[2 * i + 1]);
    }
    p = record_put_bytes(p, r->body);
    assert((size_t)(p - start) == n);
    out->len += n;
    return FY_OK;
}

/* Reads a u16-prefixed name into *s; false if it is shorter than min or runs past the end. */
static bool record_rd_name(fy_rd *rd, size_t min, fy_slice *s)
{
    uint16_t len = fy_rd_u16(rd);
    const uint8_t *p = fy_rd_take(rd, len);
    if (rd->bad || len < min) {
        return false;
    }
    s->p = p;
    s->len = len;
    return true;
}

int fy_record_decode(const void *p, size_t n, fy_record_view *v)
{
    fy_rd rd = fy_rd_make(p, n);
    fy_slice s;
    uint32_t body_len;

    if (fy_rd_u8(&rd) != FY_RECORD_MAGIC) {
        return -FY_ECORRUPT; /* also a short read: it yields 0 */
    }
    v->version = fy_rd_u8(&rd);
    if (rd.bad) {
        return -FY_ECORRUPT;
    }
    if (v->version != FY_RECORD_VERSION) {
        return -FY_EVERSION;
    }
    v->flags = fy_rd_u16(&rd);
    v->queue_id = fy_rd_u32(&rd);
    v->queue_offset = fy_rd_u64(&rd);
    v->born_ms = fy_rd_u64(&rd);
    v->store_ms = fy_rd_u64(&rd);
    v->reconsume = fy_rd_u32(&rd);
    body_len = fy_rd_u32(&rd);
    if (rd.bad || body_len > FY_RECORD_MAX_BODY) {
        return -FY_ECORRUPT;
    }

    if (!record_rd_name(&rd, 1, &v->topic) || !record_rd_name(&rd, 0, &v->tag) ||
        !record_rd_name(&rd, 0, &v->born_host)) {
        return -FY_ECORRUPT;
    }

    v->nkeys = fy_rd_u16(&rd);
    v->keys_raw.p = rd.p;
    for (uint16_t i = 0; i < v->nkeys; i++) {
        if (!record_rd_name(&rd, 1, &s)) {
            return -FY_ECORRUPT;
        }
    }
    if (rd.bad) {
        return -FY_ECORRUPT;
    }
    v->keys_raw.len = (size_t)(rd.p - v->keys_raw.p);

    v->nprops = fy_rd_u16(&rd);
    v->props_raw.p = rd.p;
    for (uint16_t i = 0; i < v->nprops; i++) {
        if (!record_rd_name(&rd, 1, &s)) {
            return -FY_ECORRUPT;
        }
        fy_rd_take(&rd, fy_rd_u32(&rd));
        if (rd.bad) {
            return -FY_ECORRUPT;
        }
    }
    if (rd.bad) {
        return -FY_ECORRUPT;
    }
    v->props_raw.len = (size_t)(rd.p - v->props_raw.p);

    v->body.p = fy_rd_take(&rd, body_len);
    v->body.len = body_len;
    if (rd.bad || rd.left != 0) {
        return -FY_ECORRUPT;
    }
    return FY_OK;
}

fy_record_iter fy_record_keys(const fy_record_view *v)
{
    fy_record_iter it = {fy_rd_make(v->keys_raw.p, v->keys_raw.len), v->nkeys};
    return it;
}

bool fy_record_key_next(fy_record_iter *it, fy_slice *key)
{
    if (it->left == 0) {
        return false;
    }
    /* The region was validated by the decoder; a hand-made view still cannot over-read. */
    if (!record_rd_name(&it->rd, 0, key)) {
        it->left = 0;
        return false;
    }
    it->left--;
    return true;
}

fy_record_iter fy_record_props(const fy_record_view *v)
{
    fy_record_iter it = {fy_rd_make(v->props_raw.p, v->props_raw.len), v->nprops};
    return it;
}

bool fy_record_prop_next(fy_record_iter *it, fy_slice *name, fy_slice *value)
{
    fy_slice n;
    uint32_t len;
    const uint8_t *p;

    if (it->left == 0) {
        return false;
    }
    if (!record_rd_name(&it->rd, 0, &n)) {
        goto fail;
    }
    len = fy_rd_u32(&it->rd);
    p = fy_rd_take(&it->rd, len);
    if (it->rd.bad) {
        goto fail;
    }
    *name = n;
    value->p = p;
    value->len = len;
    it->left--;
    return true;

fail:
    it->left = 0;
    return false;
}

bool fy_record_prop_get(const fy_record_view *v, const char *name, fy_slice *value)
{
    fy_record_iter it = fy_record_props(v);
    fy_slice n, val;
    size_t len;

    if (!name) {
        return false;
    }
    len = strlen(name);
    while (fy_record_prop_next(&it, &n, &val)) {
        if (n.len == len && memcmp(n.p, name, len) == 0) {
            *value = val;
            return true;
        }
    }
    return false;
}

/* True if the n bytes at p start with the fixed header of a record this codec understands. */
static bool record_header_ok(const uint8_t *p, size_t n)
{
    return p && n >= FY_RECORD_HEADER_LEN && p[0] == FY_RECORD_MAGIC && p[1] == FY_RECORD_VERSION;
}

int fy_record_set_location(uint8_t *rec, size_t n, uint32_t queue_id, uint64_t queue_offset,
                           uint64_t store_ms)
{
    if (!record_header_ok(rec, n)) {
        return -FY_ECORRUPT;
    }
    fy_be32_put(rec + FY_RECORD_OFF_QUEUE_ID, queue_id);
    fy_be64_put(rec + FY_RECORD_OFF_QUEUE_OFFSET, queue_offset);
    fy_be64_put(rec + FY_RECORD_OFF_STORE_MS, store_ms);
    return FY_OK;
}

int fy_record_peek_store_ms(const void *p, size_t n, uint64_t *store_ms)
{
    const uint8_t *b = p;

    if (!record_header_ok(b, n)) {
        return -FY_ECORRUPT;
    }
    *store_ms = fy_be64_get(b + FY_RECORD_OFF_STORE_MS);
    return FY_OK;
}
