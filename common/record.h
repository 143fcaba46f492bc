/* SPDX-License-Identifier: Apache-2.0 */
/* The message record codec: one versioned binary encoding of a stored message. Pure functions
 * over buffers (no I/O, no globals), so the decoder can be fuzzed on its own. Decoding never
 * allocates: the view points into the caller's bytes.
 *
 * Layout, version 1 (integers big-endian):
 *   off len  field
 *     0   1  magic 0xF7
 *     1   1  version (1)
 *     2   2  flags (FY_RECORD_F_*)
 *     4   4  queue id            } patched in place by the store when it assigns the location
 *     8   8  queue offset        }
 *    16   8  born timestamp, ms since the epoch
 *    24   8  store timestamp, ms  (patched by the store)
 *    32   4  reconsume count
 *    36   4  body length B
 *    40      topic      u16 length + bytes (1..FY_RECORD_MAX_NAME)
 *            tag        u16 length + bytes (0..FY_RECORD_MAX_NAME)
 *            born host  u16 length + bytes (0..FY_RECORD_MAX_NAME)
 *            keys       u16 count, then per key: u16 length + bytes (1..FY_RECORD_MAX_NAME)
 *            properties u16 count, then per property: u16 name length + bytes (1..65535),
 *                                                     u32 value length + bytes
 *            body       B bytes
 * A record is exactly this long: trailing bytes are corruption. */
#ifndef FERRY_COMMON_RECORD_H
#define FERRY_COMMON_RECORD_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_RECORD_MAGIC 0xF7
#define FY_RECORD_VERSION 1
#define FY_RECORD_HEADER_LEN 40
#define FY_RECORD_OFF_QUEUE_ID 4
#define FY_RECORD_OFF_QUEUE_OFFSET 8
#define FY_RECORD_OFF_STORE_MS 24
#define FY_RECORD_OFF_RECONSUME 32
#define FY_RECORD_MAX_NAME 65535u      /* topic, tag, host, key length limit of the codec */
#define FY_RECORD_MAX_BODY 0x7fffffffu /* the broker's max_message_size is far lower */

/* Flags (bits of the flags field); unknown bits are preserved, not rejected. */
#define FY_RECORD_F_DELAYED 0x0001u /* was held back until a deliver-at time */
#define FY_RECORD_F_TX 0x0002u      /* produced through a transaction (half message) */
#define FY_RECORD_F_RETRY 0x0004u   /* a redelivery through a retry topic */

/* Borrowed bytes. */
typedef struct fy_slice {
    const uint8_t *p;
    size_t len;
} fy_slice;

/* A message to encode. Every slice is borrowed for the call. props holds 2 * nprops slices:
 * name0, value0, name1, value1, ... */
typedef struct fy_record {
    uint16_t flags;
    uint32_t queue_id;
    uint64_t queue_offset;
    uint64_t born_ms;
    uint64_t store_ms;
    uint32_t reconsume;
    fy_slice topic;
    fy_slice tag;
    fy_slice born_host;
    const fy_slice *keys;
    uint16_t nkeys;
    const fy_slice *props;
    uint16_t nprops;
    fy_slice body;
} fy_record;

/* A decoded record: every slice points into the decoded bytes. Keys and properties are
 * reached with the iterators below over their validated regions. */
typedef struct fy_record_view {
    uint8_t version;
    uint16_t flags;
    uint32_t queue_id;
    uint64_t queue_offset;
    uint64_t born_ms;
    uint64_t store_ms;
    uint32_t reconsume;
    fy_slice topic;
    fy_slice tag;
    fy_slice born_host;
    uint16_t nkeys;
    fy_slice keys_raw;
    uint16_t nprops;
    fy_slice props_raw;
    fy_slice body;
} fy_record_view;

typedef struct fy_record_iter {
    fy_rd rd;
    uint16_t left;
} fy_record_iter;

/* Exact encoded size of r in bytes, or 0 if r breaks a limit of the format (empty topic,
 * a name over FY_RECORD_MAX_NAME, an empty key or property name, a body over FY_RECORD_MAX_BODY,
 * a non-empty slice with a NULL pointer, a non-zero count with a NULL array). */
size_t fy_record_size(const fy_record *r);

/* Appends the encoding of r to out. Returns FY_OK, or -FY_EINVAL (out unchanged) if r breaks a
 * limit of the format. */
int fy_record_encode(const fy_record *r, fy_buf *out);

/* Decodes the n bytes at p into v, validating every length. Returns FY_OK, -FY_EVERSION for an
 * unknown version, or -FY_ECORRUPT for anything malformed (v is then unspecified). Never reads
 * outside [p, p + n). */
int fy_record_decode(const void *p, size_t n, fy_record_view *v);

/* Iterates the keys of a decoded view: `it = fy_record_keys(v); while (fy_record_key_next(&it,
 * &key)) ...`. */
fy_record_iter fy_record_keys(const fy_record_view *v);
bool fy_record_key_next(fy_record_iter *it, fy_slice *key);

/* Iterates the properties of a decoded view, in encoded order. */
fy_record_iter fy_record_props(const fy_record_view *v);
bool fy_record_prop_next(fy_record_iter *it, fy_slice *name, fy_slice *value);

/* Finds the first property called name (NUL-terminated); returns true and sets *value if found. */
bool fy_record_prop_get(const fy_record_view *v, const char *name, fy_slice *value);

/* Writes the location fields (queue id, queue offset, store timestamp) into an encoded record
 * in place. Returns FY_OK, or -FY_ECORRUPT if rec is shorter than FY_RECORD_HEADER_LEN or is
 * not a record of a version this code knows (the field offsets could differ). */
int fy_record_set_location(uint8_t *rec, size_t n, uint32_t queue_id, uint64_t queue_offset,
                           uint64_t store_ms);

/* Reads the store timestamp of an encoded record without decoding it all. Returns FY_OK or
 * -FY_ECORRUPT if the bytes are too short or not a record of a known version. */
int fy_record_peek_store_ms(const void *p, size_t n, uint64_t *store_ms);

/* A slice over a NUL-terminated string. */
static inline fy_slice fy_slice_str(const char *s)
{
    fy_slice sl = {(const uint8_t *)s, s ? strlen(s) : 0};
    return sl;
}

#endif
