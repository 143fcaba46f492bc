/* SPDX-License-Identifier: Apache-2.0 */
/* The stored record of a durable MQTT session (key "s" + client id in the adapter's namespace:
 * its Session Expiry Interval, its subscriptions, when it was disconnected and the will waiting
 * for its delay), the broker's
 * "alive" record, and when a session loaded at start-up expires. Pure functions over borrowed
 * bytes: no I/O, no clocks of their own (the caller passes the times). docs/store.md. */
#ifndef FERRY_ADAPTERS_MQTT_MQTT_SESSION_REC_H
#define FERRY_ADAPTERS_MQTT_MQTT_SESSION_REC_H

#include "common/buf.h"
#include "common/record.h"

#include <stdbool.h>
#include <stdint.h>

#define FY_MQTT_SREC_VERSION 1

/* How far behind the broker's "alive" record may be: it is rewritten at least this often (ms)
 * while the MQTT adapter runs, so a crash comes at most this long after the time it holds. */
#define FY_MQTT_ALIVE_EVERY_MS 10000

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

/* An MQTT 5 will waiting out its Will Delay Interval, kept with its (disconnected) session. */
typedef struct fy_mqtt_srec_will {
    uint64_t delay_ms; /* due this long after the disconnect (already capped by the expiry) */
    uint8_t qos;
    bool retain;
    fy_slice rec; /* the will's message record (common/record.h), as it will be published */
} fy_mqtt_srec_will;

/* A session record: version (1), expiry_ms (8), the number of subscriptions (2), each
 * subscription (filter length (2), filter, options (1), identifier (4), created_ms (8)), then
 * disconnected_ms (8), the wall-clock time (ms since the epoch) the session lost its connection,
 * 0 while it has one; then, only while a will waits, the will: delay_ms (8), options (1: QoS in
 * bits 0-1, retain bit 2), record length (4), record. Records of older ferryd versions end after
 * the subscriptions, or after disconnected_ms; bytes after the will are left for later fields
 * and ignored (a later field without a will comes after an empty one: length 0), so an older
 * ferryd reads a newer record as it reads its own (version 1, what it knows; one that knows no
 * will loads the session without it). Writing is begin, put_sub per subscription (exactly nsubs
 * of them), end, and put_will if a will waits. */
void fy_mqtt_srec_begin(fy_buf *out, uint64_t expiry_ms, uint16_t nsubs);
void fy_mqtt_srec_put_sub(fy_buf *out, const fy_mqtt_srec_sub *sub);
void fy_mqtt_srec_end(fy_buf *out, uint64_t disconnected_ms);
void fy_mqtt_srec_put_will(fy_buf *out, const fy_mqtt_srec_will *will);

/* A decoded record; the subscriptions are read with fy_mqtt_srec_next_sub. */
typedef struct fy_mqtt_srec {
    uint64_t expiry_ms; /* after the disconnect; UINT64_MAX = never */
    uint16_t nsubs;     /* subscriptions that can be read (all unless cut) */
    bool cut;           /* the record ends early: the subscriptions before the cut are there */
    bool dated;         /* it holds disconnected_ms (not a record of an older ferryd, not cut) */
    uint64_t disconnected_ms; /* when dated: wall ms of the disconnect, 0 = it was connected */
    bool has_will;            /* a will waits (r->will; its record points into the value) */
    bool will_cut;            /* the record ends inside the will: it is lost (has_will false) */
    fy_mqtt_srec_will will;
    fy_rd next;    /* the next subscription */
    uint16_t left; /* subscriptions still to read */
} fy_mqtt_srec;

/* Decodes the record val (borrowed; r points into it). FY_OK, or -FY_EVERSION for a version
 * other than FY_MQTT_SREC_VERSION (a newer ferryd's record) or none (an empty value). A record
 * cut short after its version decodes too, with r->cut: the whole subscriptions before the cut
 * are there, and expiry_ms is 0 if the record ends before it. */
int fy_mqtt_srec_decode(const uint8_t *val, size_t len, fy_mqtt_srec *r);
/* The next subscription of r (pointing into the record): false once there is none left. */
bool fy_mqtt_srec_next_sub(fy_mqtt_srec *r, fy_mqtt_srec_sub *sub);

/* Whether the "alive" record is to be written at now_mono (ms), the adapter's one-second tick
 * asking: at the first call (written false), then at the tick nominally 9 s after the last write.
 * Ticks come late by the clock (the loop was busy), some more than others. Measured against a
 * bare 9000 ms, a ninth tick a little less late than the last write's would put the write off to
 * the tenth, itself perhaps later: more than FY_MQTT_ALIVE_EVERY_MS after the last. With ticks
 * less than half a second late, the ninth writes, within FY_MQTT_ALIVE_EVERY_MS of the last write
 * as fy_mqtt_srec_disconnected_at assumes. */
bool fy_mqtt_alive_due(bool written, uint64_t last_mono, uint64_t now_mono);

/* The "alive" record: the wall-clock time (ms) the broker was last known to run, u64. */
void fy_mqtt_alive_encode(fy_buf *out, uint64_t wall_ms);
/* FY_OK with *wall_ms, or -FY_ECORRUPT if val is shorter than 8 bytes (longer: later fields). */
int fy_mqtt_alive_decode(const uint8_t *val, size_t len, uint64_t *wall_ms);

/* When (wall ms) a session loaded at start-up counts as disconnected, now_wall being the time of
 * the start-up and alive_ms the broker's last "alive" time (0 = none stored):
 * - the record's disconnected_ms: the session was offline (or the broker stopped cleanly);
 * - alive_ms + FY_MQTT_ALIVE_EVERY_MS if the record says it was connected: the broker was
 *   killed, some time after alive_ms but not more than FY_MQTT_ALIVE_EVERY_MS after it. The late
 *   end is taken so that a session never expires before its interval has passed since the crash
 *   (it may live up to FY_MQTT_ALIVE_EVERY_MS more);
 * - now_wall when neither is known (a record of an older ferryd, or no alive time): the expiry
 *   clock starts at start-up, as older versions did.
 * A time after now_wall (the wall clock was set back since) counts as now_wall. */
uint64_t fy_mqtt_srec_disconnected_at(const fy_mqtt_srec *r, uint64_t alive_ms, uint64_t now_wall);

/* When, on the monotonic clock, a session disconnected at wall time disconnected_ms with an
 * expiry of expiry_ms (UINT64_MAX = never) expires, now_wall and now_mono being the same moment
 * on both clocks: UINT64_MAX for never, now_mono if it has already expired. A disconnect time
 * after now_wall counts as now_wall. The same for a will due delay_ms after the disconnect (its
 * delay is capped by the expiry, so the will is due by the time the session expires). */
uint64_t fy_mqtt_session_expire_at(uint64_t expiry_ms, uint64_t disconnected_ms, uint64_t now_wall,
                                   uint64_t now_mono);

#endif
