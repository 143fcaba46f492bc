/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffers, big-endian integer helpers and a bounds-checked reader. The reader
 * never reads past its end: a short read sets `bad` and yields zeros, so decoders check once. */
#ifndef FERRY_COMMON_BUF_H
#define FERRY_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fy_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} fy_buf;

#define FY_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes room for `more` bytes past len (aborts on OOM) and returns a pointer to them. */
uint8_t *fy_buf_reserve(fy_buf *b, size_t more);
/* Appends n bytes. */
void fy_buf_append(fy_buf *b, const void *p, size_t n);
void fy_buf_put_u8(fy_buf *b, uint8_t v);
void fy_buf_put_u16(fy_buf *b, uint16_t v);
void fy_buf_put_u32(fy_buf *b, uint32_t v);
void fy_buf_put_u64(fy_buf *b, uint64_t v);
/* Sets len to 0, keeping the memory. */
static inline void fy_buf_reset(fy_buf *b)
{
    b->len = 0;
}
/* Drops the first n bytes (n <= len), moving the rest to the front. */
static inline void fy_buf_consume(fy_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
/* Releases the memory; b is empty and reusable afterwards. */
void fy_buf_free(fy_buf *b);

static inline void fy_be16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void fy_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline void fy_be64_put(uint8_t *p, uint64_t v)
{
    fy_be32_put(p, (uint32_t)(v >> 32));
    fy_be32_put(p + 4, (uint32_t)v);
}
static inline uint16_t fy_be16_get(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t fy_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t fy_be64_get(const uint8_t *p)
{
    return ((uint64_t)fy_be32_get(p) << 32) | fy_be32_get(p + 4);
}

/* A bounds-checked cursor over borrowed bytes. */
typedef struct fy_rd {
    const uint8_t *p;
    size_t left;
    bool bad; /* set by the first read that would pass the end; sticky */
} fy_rd;

static inline fy_rd fy_rd_make(const void *p, size_t n)
{
    fy_rd r = {(const uint8_t *)p, n, false};
    return r;
}
/* Returns a pointer to the next n bytes and skips them, or NULL (and sets bad) if fewer remain. */
static inline const uint8_t *fy_rd_take(fy_rd *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}
static inline uint8_t fy_rd_u8(fy_rd *r)
{
    const uint8_t *p = fy_rd_take(r, 1);
    return p ? p[0] : 0;
}
static inline uint16_t fy_rd_u16(fy_rd *r)
{
    const uint8_t *p = fy_rd_take(r, 2);
    return p ? fy_be16_get(p) : 0;
}
static inline uint32_t fy_rd_u32(fy_rd *r)
{
    const uint8_t *p = fy_rd_take(r, 4);
    return p ? fy_be32_get(p) : 0;
}
static inline uint64_t fy_rd_u64(fy_rd *r)
{
    const uint8_t *p = fy_rd_take(r, 8);
    return p ? fy_be64_get(p) : 0;
}

#endif
