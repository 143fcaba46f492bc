/* SPDX-License-Identifier: Apache-2.0 */
/* The mapping between an encoded AMQP 1.0 message (the payload of a transfer) and a Ferry
 * record (docs/mapping.md, "AMQP 1.0"). Pure functions over buffers: no sockets, no globals, no
 * proton engine objects, so that a fuzz target links them alone. Never asserts on input. */
#ifndef FERRY_ADAPTERS_AMQP_AMQP_MAP_H
#define FERRY_ADAPTERS_AMQP_AMQP_MAP_H

#include "common/buf.h"
#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record properties the adapter writes for a message that came in over AMQP. */
#define FY_AMQP_PROP_HEAD "amqp.head"               /* properties + application-properties, raw */
#define FY_AMQP_PROP_ANNOTATIONS "amqp.annotations" /* message-annotations section, raw */
#define FY_AMQP_PROP_BODY "amqp.body" /* absent: one data section; "string"; "sections" */

/* Why a message was refused, as an AMQP error condition. */
typedef enum fy_amqp_map_err {
    FY_AMQP_MAP_OK = 0,
    FY_AMQP_MAP_DECODE = 1,    /* amqp:decode-error: not a well-formed AMQP message */
    FY_AMQP_MAP_FIELD = 2,     /* amqp:invalid-field: a field Ferry needs has a bad value */
    FY_AMQP_MAP_NOTFOUND = 3,  /* amqp:not-found: no topic (anonymous relay without `to`) */
    FY_AMQP_MAP_TOO_LARGE = 4, /* amqp:resource-limit-exceeded: over the record format */
} fy_amqp_map_err;

/* The AMQP condition name of a mapping error. */
const char *fy_amqp_map_condition(fy_amqp_map_err e);

/* What map_in makes of a message. */
typedef struct fy_amqp_in {
    fy_buf record;       /* the encoded record (fy_record_encode) */
    fy_buf sharding_key; /* x-opt-partition-key, or empty */
    char why[160];       /* the reason when refused */
} fy_amqp_in;

void fy_amqp_in_free(fy_amqp_in *in);

/* Maps the encoded message [msg, msg + len) to a record of `topic` (NUL-terminated); topic NULL
 * takes the topic from properties.to (anonymous relay). born_host and now_ms fill the record's
 * born fields. Returns FY_AMQP_MAP_OK with in->record and in->sharding_key filled (replacing
 * their contents), or an error with in->why set. The topic name itself is not validated here
 * (the core does that). */
fy_amqp_map_err fy_amqp_map_in(const uint8_t *msg, size_t len, const char *topic,
                               const char *born_host, uint64_t now_ms, fy_amqp_in *in);

/* Encodes record v as an AMQP message into out (replacing its contents): a header (durable,
 * delivery-count), the message annotations and bare message kept from an AMQP producer byte for
 * byte, or for other records properties and application-properties built from the record and
 * its body as one data section. msgid is the record's Ferry message id (the message-id of
 * records that have none). Returns FY_OK or -FY_EINVAL (a property too large to encode). */
int fy_amqp_map_out(const fy_record_view *v, const uint8_t msgid[16], uint32_t delivery_count,
                    fy_buf *out);

/* Length of the one AMQP-encoded value at [p, p + len), 0 if it is malformed or cut short.
 * depth bounds the nesting of descriptors. */
size_t fy_amqp_value_len(const uint8_t *p, size_t len, unsigned depth);

#endif
