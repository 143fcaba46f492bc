/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's producer calls: fy_send, fy_send_batch (one SEND frame, waited for) and
 * fy_send_async (pipelined: the frame is written at once, the answer completes later through
 * the client's done list). Records are encoded straight into the output buffer, which is sized
 * first so that nothing allocates mid-frame. */
#include "client/private.h"
#include "common/clock.h"

#include "ferry/client.h"

#include <stdlib.h>
#include <string.h>

/* Appends one SEND frame for msgs to c->out with request id `id`. FY_OK, or an error with
 * c->out unchanged and c->err set. */
static int send_encode(fy_client *c, const fy_message *const *msgs, size_t n, uint32_t id)
{
    uint64_t born = fy_wall_ms();
    size_t total = FY_WIRE_HEADER_LEN + 2, start;
    int rc;

    for (size_t i = 0; i < n; i++) {
        const fy_message *m = msgs[i];
        size_t rec;
        if (!m) {
            return cl_fail(c, -FY_EINVAL, "send: message %zu is NULL", i);
        }
        if (!m->topic) {
            return cl_fail(c, -FY_EINVAL, "send: message %zu has no topic", i);
        }
        rec = cl_message_record_size(m, born, c->born_host);
        if (rec == 0) {
            return cl_fail(c, -FY_EINVAL, "send: message %zu breaks a limit of the format", i);
        }
        total += 2 + (m->sharding_key ? strlen(m->sharding_key) : 0) + 4 + rec;
    }
    if (total - 4 > c->max_frame) {
        return cl_fail(c, -FY_ETOOBIG, "send: %zu bytes is over the broker's frame limit of %u",
                       total, c->max_frame);
    }
    rc = cl_out_reserve(c, total);
    if (rc != FY_OK) {
        return cl_fail(c, rc, "send: out of memory");
    }
    start = fy_wire_send_begin(&c->out, id);
    for (size_t i = 0; i < n; i++) {
        size_t at;
        fy_wire_put_str(&c->out, msgs[i]->sharding_key);
        at = c->out.len;
        fy_buf_put_u32(&c->out, 0);
        rc = cl_message_encode(msgs[i], born, c->born_host, &c->out);
        if (rc != FY_OK) {
            c->out.len = start; /* drop the partial frame */
            return cl_fail(c, rc, "send: message %zu cannot be encoded", i);
        }
        fy_be32_put(c->out.data + at, (uint32_t)(c->out.len - at - 4));
    }
    fy_wire_send_end(&c->out, start, (uint16_t)n);
    return FY_OK;
}

/* Decodes a SEND answer for n messages into results (may be NULL). */
static int send_decode(fy_client *c, const fy_buf *body, size_t n, fy_send_result *results)
{
    fy_rd rd = fy_rd_make(body->data, body->len);
    uint16_t got = fy_rd_u16(&rd);

    if (rd.bad || got != n || rd.left != 36 * n) {
        return cl_fail(c, -FY_EPROTO, "send: malformed answer from the broker");
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = fy_rd_take(&rd, 36);
        if (results) {
            results[i].queue_id = fy_be32_get(p);
            results[i].queue_offset = fy_be64_get(p + 4);
            results[i].store_ms = fy_be64_get(p + 12);
            fy_msgid_to_hex(p + 20, results[i].msgid);
        }
    }
    return FY_OK;
}

int fy_send_batch(fy_client *c, const fy_message *const *msgs, size_t n, fy_send_result *results)
{
    cl_req req;
    uint32_t id;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    if (!msgs || n == 0 || n > FY_WIRE_MAX_BATCH) {
        return cl_fail(c, -FY_EINVAL, "send: between 1 and %d messages per batch",
                       FY_WIRE_MAX_BATCH);
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    id = cl_next_id(c);
    rc = send_encode(c, msgs, n, id);
    if (rc != FY_OK) {
        goto out;
    }
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_SEND, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc == FY_OK) {
        rc = send_decode(c, &req.body, n, results);
    } else if (rc == -FY_ECLOSED) {
        cl_fail(c, rc, "send: connection to %s lost, outcome unknown", c->broker);
    }
    cl_req_clear(&req);
out:
    cl_run_completions(c);
    return rc;
}

int fy_send(fy_client *c, const fy_message *msg, fy_send_result *result)
{
    if (!c) {
        return -FY_EINVAL;
    }
    if (!msg) {
        return cl_fail(c, -FY_EINVAL, "send: no message");
    }
    return fy_send_batch(c, &msg, 1, result);
}

int fy_send_async(fy_client *c, const fy_message *msg, fy_send_cb cb, void *arg)
{
    cl_req *req;
    uint32_t id;
    int64_t deadline;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    if (!msg) {
        return cl_fail(c, -FY_EINVAL, "send: no message");
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        return rc;
    }
    /* Take in the answers that have arrived and run their callbacks (older sends only), then
     * wait while the window of requests in flight is full. */
    cl_pump(c, 0);
    cl_run_completions(c);
    deadline = cl_deadline(c->request_timeout_ms);
    while (c->inflight >= c->max_inflight) {
        if (cl_now() >= deadline) {
            return cl_fail(c, -FY_ETIMEDOUT, "send: %u sends still in flight after %d ms",
                           c->max_inflight, c->request_timeout_ms);
        }
        rc = cl_pump(c, deadline);
        cl_run_completions(c);
        if (rc == -FY_ECLOSED || rc == -FY_ENOMEM) {
            if (rc == -FY_ENOMEM || (rc = cl_ready(c)) != FY_OK) {
                return rc;
            }
        }
    }
    if (!c->ready && (rc = cl_ready(c)) != FY_OK) {
        return rc;
    }
    req = calloc(1, sizeof(*req));
    if (!req) {
        return cl_fail(c, -FY_ENOMEM, "send: out of memory");
    }
    id = cl_next_id(c);
    rc = send_encode(c, &msg, 1, id);
    if (rc != FY_OK) {
        free(req);
        return rc;
    }
    req->cb = cb;
    req->arg = arg;
    c->inflight++;
    cl_req_start(c, req, CL_REQ_SEND, FY_W_SEND, id);
    cl_write_now(c);
    return FY_OK;
}
