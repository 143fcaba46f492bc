/* SPDX-License-Identifier: Apache-2.0 */
/* The stored record of a durable MQTT session (key "s" + client id in the adapter's namespace:
 * its Session Expiry Interval and its subscriptions). Pure functions over borrowed bytes: no
 * I/O. docs/store.md. */
#ifndef FERRY_ADAPTERS_MQTT_MQTT_SESSION_REC_H
#define FERRY_ADAPTERS_MQTT_MQTT_SESSION_REC_H

#include "common/buf.h"
#include "common/record.h"

#include <stdbool.h>
#include <stdint.h>

#define FY_MQTT_SREC_VERSION 1

/* One subscription as stored. */
typedef struct fy_mqtt_srec_sub {
    fy_slice filter; /* as the client gave it, "$share/<group>/" included */
    uint8_t qos;
    bool no_local;
    bool rap; /* retain as published */
    uint8_t rh;
    uint32_t sub_id; /* 0 = none */
    uint64_t created_ms;
} fy_mqtt_srec_sub;

/* A session record: version (1), expiry_ms (8), the number of subscriptions (2), each
 * subscription (filter length (2), filter, options (1), identifier (4), created_ms (8)). Bytes
 * after the subscriptions are left for later fields and ignored. Writing is begin, then put_sub
 * per subscription (exactly nsubs of them). */
void fy_mqtt_srec_begin(fy_buf *out, uint64_t expiry_ms, uint16_t nsubs);
void fy_mqtt_srec_put_sub(fy_buf *out, const fy_mqtt_srec_sub *sub);

/* A decoded record; the subscriptions are read with fy_mqtt_srec_next_sub. */
typedef struct fy_mqtt_srec {
    uint64_t expiry_ms; /* after the disconnect; UINT64_MAX = never */
    uint16_t nsubs;     /* subscriptions that can be read (all unless cut) */
    bool cut;           /* the record ends early: the subscriptions before the cut are there */
    fy_rd next;         /* the next subscription */
    uint16_t left;      /* subscriptions still to read */
} fy_mqtt_srec;

/* Decodes the record val (borrowed; r points into it). FY_OK, or -FY_EVERSION for a version
 * other than FY_MQTT_SREC_VERSION (a newer ferryd's record) or none (an empty value). A record
 * cut short after its version decodes too, with r->cut: the whole subscriptions before the cut
 * are there, and expiry_ms is 0 if the record ends before it. */
int fy_mqtt_srec_decode(const uint8_t *val, size_t len, fy_mqtt_srec *r);
/* The next subscription of r (pointing into the record): false once there is none left. */
bool fy_mqtt_srec_next_sub(fy_mqtt_srec *r, fy_mqtt_srec_sub *sub);

#endif
