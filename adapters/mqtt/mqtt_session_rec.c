/* SPDX-License-Identifier: Apache-2.0 */
/* The stored record of a durable MQTT session and the broker's "alive" record: encoding,
 * decoding, and the expiry of a session loaded at start-up (mqtt_session_rec.h). */
#include "adapters/mqtt/mqtt_session_rec.h"

#include "ferry/errors.h"

#include <string.h>

#define SUB_FIXED (1 + 4 + 8) /* options, identifier, created_ms after the filter */

void fy_mqtt_srec_begin(fy_buf *out, uint64_t expiry_ms, uint16_t nsubs)
{
    fy_buf_put_u8(out, FY_MQTT_SREC_VERSION);
    fy_buf_put_u64(out, expiry_ms);
    fy_buf_put_u16(out, nsubs);
}

void fy_mqtt_srec_put_sub(fy_buf *out, const fy_mqtt_srec_sub *sub)
{
    fy_buf_put_u16(out, (uint16_t)sub->filter.len);
    fy_buf_append(out, sub->filter.p, sub->filter.len);
    fy_buf_put_u8(out, (uint8_t)((sub->qos & 3) | (sub->no_local << 2) | (sub->rap << 3) |
                                 ((sub->rh & 3) << 4)));
    fy_buf_put_u32(out, sub->sub_id);
    fy_buf_put_u64(out, sub->created_ms);
}

void fy_mqtt_srec_end(fy_buf *out, uint64_t disconnected_ms)
{
    fy_buf_put_u64(out, disconnected_ms);
}

void fy_mqtt_srec_put_will(fy_buf *out, const fy_mqtt_srec_will *will)
{
    fy_buf_put_u64(out, will->delay_ms);
    fy_buf_put_u8(out, (uint8_t)((will->qos & 3) | (will->retain << 2)));
    fy_buf_put_u32(out, (uint32_t)will->rec.len);
    fy_buf_append(out, will->rec.p, will->rec.len);
}

/* The will after disconnected_ms, if one is there (an empty one is none). */
static void read_will(fy_rd *rd, fy_mqtt_srec *r)
{
    uint64_t delay;
    uint8_t o;
    uint32_t n;
    const uint8_t *p;
    if (rd->left == 0) {
        return;
    }
    delay = fy_rd_u64(rd);
    o = fy_rd_u8(rd);
    n = fy_rd_u32(rd);
    p = fy_rd_take(rd, n);
    if (rd->bad) {
        r->will_cut = true;
        return;
    }
    if (n == 0) {
        return;
    }
    r->has_will = true;
    r->will.delay_ms = delay;
    r->will.qos = o & 3;
    r->will.retain = (o >> 2) & 1;
    r->will.rec = (fy_slice){p, n};
}

/* Skips one subscription; false (r->bad) if the record ends inside it. */
static bool skip_sub(fy_rd *r)
{
    uint16_t flen = fy_rd_u16(r);
    fy_rd_take(r, flen);
    fy_rd_take(r, SUB_FIXED);
    return !r->bad;
}

int fy_mqtt_srec_decode(const uint8_t *val, size_t len, fy_mqtt_srec *r)
{
    fy_rd rd = fy_rd_make(val, len);
    fy_rd walk;
    uint16_t n, whole = 0;
    memset(r, 0, sizeof(*r));
    if (len < 1 || val[0] != FY_MQTT_SREC_VERSION) {
        return -FY_EVERSION;
    }
    fy_rd_u8(&rd);
    r->expiry_ms = fy_rd_u64(&rd);
    n = fy_rd_u16(&rd);
    if (rd.bad) {
        r->cut = true; /* what could be read (expiry_ms, else 0) and no subscription */
        return FY_OK;
    }
    /* One pass to find where the subscriptions end: disconnected_ms follows them. */
    walk = rd;
    while (whole < n && skip_sub(&walk)) {
        whole++;
    }
    r->next = rd;
    r->nsubs = whole;
    r->left = whole;
    r->cut = whole < n;
    if (!r->cut && walk.left >= 8) {
        r->dated = true;
        r->disconnected_ms = fy_rd_u64(&walk);
        read_will(&walk, r);
    }
    return FY_OK;
}

bool fy_mqtt_srec_next_sub(fy_mqtt_srec *r, fy_mqtt_srec_sub *sub)
{
    uint8_t o;
    if (r->left == 0) {
        return false;
    }
    r->left--;
    sub->filter.len = fy_rd_u16(&r->next);
    sub->filter.p = fy_rd_take(&r->next, sub->filter.len);
    o = fy_rd_u8(&r->next);
    sub->qos = o & 3;
    sub->no_local = (o >> 2) & 1;
    sub->rap = (o >> 3) & 1;
    sub->rh = (o >> 4) & 3;
    sub->sub_id = fy_rd_u32(&r->next);
    sub->created_ms = fy_rd_u64(&r->next);
    return !r->next.bad; /* decode counted only whole subscriptions: never bad here */
}

bool fy_mqtt_alive_due(bool written, uint64_t last_mono, uint64_t now_mono)
{
    /* The ninth tick after the write is 9000 ms later give or take the two ticks' lateness;
     * the eighth at most 8500 while ticks are less than 500 ms late. */
    return !written || now_mono < last_mono ||
           now_mono - last_mono >= FY_MQTT_ALIVE_EVERY_MS - 1500;
}

void fy_mqtt_alive_encode(fy_buf *out, uint64_t wall_ms)
{
    fy_buf_put_u64(out, wall_ms);
}

int fy_mqtt_alive_decode(const uint8_t *val, size_t len, uint64_t *wall_ms)
{
    if (len < 8) {
        return -FY_ECORRUPT;
    }
    *wall_ms = fy_be64_get(val);
    return FY_OK;
}

uint64_t fy_mqtt_srec_disconnected_at(const fy_mqtt_srec *r, uint64_t alive_ms, uint64_t now_wall)
{
    uint64_t at = now_wall;
    if (r->dated && r->disconnected_ms != 0) {
        at = r->disconnected_ms;
    } else if (r->dated && alive_ms != 0) {
        at = alive_ms > UINT64_MAX - FY_MQTT_ALIVE_EVERY_MS ? UINT64_MAX
                                                            : alive_ms + FY_MQTT_ALIVE_EVERY_MS;
    }
    return at < now_wall ? at : now_wall;
}

uint64_t fy_mqtt_session_expire_at(uint64_t expiry_ms, uint64_t disconnected_ms, uint64_t now_wall,
                                   uint64_t now_mono)
{
    uint64_t gone;
    if (expiry_ms == UINT64_MAX) {
        return UINT64_MAX;
    }
    if (disconnected_ms > now_wall) {
        disconnected_ms = now_wall;
    }
    gone = now_wall - disconnected_ms;
    if (gone >= expiry_ms) {
        return now_mono;
    }
    /* now_mono is far from the top of the range (ms since boot), and expiry_ms below
     * UINT64_MAX; saturate all the same. */
    return now_mono > UINT64_MAX - (expiry_ms - gone) ? UINT64_MAX - 1
                                                      : now_mono + (expiry_ms - gone);
}
