/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffers. */
#include "common/buf.h"

#include "common/alloc.h"

uint8_t *fy_buf_reserve(fy_buf *b, size_t more)
{
    if (b->cap - b->len < more) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < more) {
            cap *= 2;
        }
        b->data = fy_realloc(b->data, cap);
        b->cap = cap;
    }
    return b->data + b->len;
}

void fy_buf_append(fy_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    memcpy(fy_buf_reserve(b, n), p, n);
    b->len += n;
}

void fy_buf_put_u8(fy_buf *b, uint8_t v)
{
    *fy_buf_reserve(b, 1) = v;
    b->len += 1;
}

void fy_buf_put_u16(fy_buf *b, uint16_t v)
{
    fy_be16_put(fy_buf_reserve(b, 2), v);
    b->len += 2;
}

void fy_buf_put_u32(fy_buf *b, uint32_t v)
{
    fy_be32_put(fy_buf_reserve(b, 4), v);
    b->len += 4;
}

void fy_buf_put_u64(fy_buf *b, uint64_t v)
{
    fy_be64_put(fy_buf_reserve(b, 8), v);
    b->len += 8;
}

void fy_buf_free(fy_buf *b)
{
    fy_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
