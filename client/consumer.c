/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's consumers: SUBSCRIBE (again at each reconnection), the local queue of DELIVER
 * frames, credit topped up as messages are handed to the application, acks batched into one ACK
 * frame, nacks, pull (fy_consumer_poll) and callback (fy_client_poll) modes, SUB_CLOSED. ACK,
 * NACK and CREDIT are sent with NOREPLY: nothing waits for them. */
#include "client/private.h"

#include "ferry/client.h"

#include <stdlib.h>
#include <string.h>

void fy_consumer_opts_init(fy_consumer_opts *o)
{
    if (!o) {
        return;
    }
    memset(o, 0, sizeof(*o));
    o->mode = FY_CONSUME_CLUSTERING;
    o->from = FY_FROM_LAST;
    o->window = CL_DEFAULT_WINDOW;
}

fy_client *fy_consumer_client(const fy_consumer *cons)
{
    return cons ? cons->c : NULL;
}

static fy_consumer *cons_find(fy_client *c, uint32_t sub_id)
{
    for (fy_consumer *cons = c->cons_head; cons; cons = cons->next) {
        if (cons->sub_id == sub_id) {
            return cons;
        }
    }
    return NULL;
}

/* True when the consumer is subscribed on the live connection. */
static bool cons_live(const fy_consumer *cons)
{
    return cons->c->ready && cons->gen == cons->c->gen && !cons->closed;
}

static void cons_drop_queue(fy_consumer *cons)
{
    fy_message *m;

    while ((m = cons->qhead)) {
        cons->qhead = m->next;
        fy_message_free(m);
    }
    cons->qtail = NULL;
    cons->queued = 0;
}

void cl_consumer_destroy(fy_consumer *cons)
{
    if (!cons) {
        return;
    }
    cons_drop_queue(cons);
    free(cons->group);
    free(cons->topic);
    free(cons->filter);
    free(cons->closed_why);
    free(cons->acks);
    free(cons);
}

static void cons_unlink(fy_consumer *cons)
{
    fy_client *c = cons->c;

    if (cons->prev) {
        cons->prev->next = cons->next;
    } else if (c->cons_head == cons) {
        c->cons_head = cons->next;
    }
    if (cons->next) {
        cons->next->prev = cons->prev;
    }
    cons->prev = cons->next = NULL;
}

/* ---- Subscribing --------------------------------------------------------------------------- */

int cl_consumer_subscribe_start(fy_consumer *cons, cl_req *req)
{
    fy_client *c = cons->c;
    fy_w_subscribe s;
    size_t size;
    uint32_t id;
    int rc;

    size = 2 * FY_WIRE_HEADER_LEN + 4 + 3 * 2 + strlen(cons->group) + strlen(cons->topic) +
           strlen(cons->filter) + 1 + 1 + 8 + 4 + 1 + 1;
    rc = cl_out_reserve(c, size);
    if (rc != FY_OK) {
        return cl_fail(c, rc, "subscribe: out of memory");
    }
    s.sub_id = cons->sub_id;
    s.group = fy_slice_str(cons->group);
    s.topic = fy_slice_str(cons->topic);
    s.filter = fy_slice_str(cons->filter);
    s.filter_type = cons->filter_sql ? FY_FILTER_SQL92 : FY_FILTER_TAG;
    s.sub_flags = cons->orderly ? FY_SUB_F_ORDERLY : 0;
    s.mode = (uint8_t)cons->mode;
    s.start = (uint8_t)cons->from;
    s.start_ms = cons->from_ms;
    s.credit = cons->window;
    cons->gen = c->gen;
    cons->credit_owed = 0;
    cons->acks->n = 0;
    cons_drop_queue(cons);
    id = cl_next_id(c);
    fy_wire_enc_subscribe(&c->out, id, &s);
    cl_req_start(c, req, CL_REQ_SYNC, FY_W_SUBSCRIBE, id);
    return FY_OK;
}

int cl_consumer_subscribe_finish(fy_consumer *cons, cl_req *req)
{
    int rc = cl_req_wait(cons->c, req);
    cl_req_clear(req);
    if (rc != FY_OK) {
        cons->gen = 0;
    }
    return rc;
}

fy_consumer *fy_consumer_new(fy_client *c, const fy_consumer_opts *opts, int *err)
{
    fy_consumer *cons = NULL;
    cl_req req;
    int rc;

    if (!c) {
        rc = -FY_EINVAL;
        goto fail;
    }
    if (!opts || !opts->group || !*opts->group || !opts->topic || !*opts->topic) {
        rc = cl_fail(c, -FY_EINVAL, "consumer: group and topic are required");
        goto fail;
    }
    if ((unsigned)opts->mode > FY_CONSUME_BROADCAST || (unsigned)opts->from > FY_FROM_TIME) {
        rc = cl_fail(c, -FY_EINVAL, "consumer: bad mode or start position");
        goto fail;
    }
    if (strlen(opts->group) > UINT16_MAX || strlen(opts->topic) > UINT16_MAX ||
        (opts->filter && strlen(opts->filter) > UINT16_MAX)) {
        rc = cl_fail(c, -FY_EINVAL, "consumer: name too long");
        goto fail;
    }
    cons = calloc(1, sizeof(*cons));
    if (!cons || !(cons->acks = calloc(1, sizeof(*cons->acks)))) {
        rc = cl_fail(c, -FY_ENOMEM, "consumer: out of memory");
        goto fail;
    }
    cons->c = c;
    cons->group = strdup(opts->group);
    cons->topic = strdup(opts->topic);
    cons->filter = strdup(opts->filter ? opts->filter : "");
    if (!cons->group || !cons->topic || !cons->filter) {
        rc = cl_fail(c, -FY_ENOMEM, "consumer: out of memory");
        goto fail;
    }
    cons->mode = opts->mode;
    cons->from = opts->from;
    cons->filter_sql = opts->filter_sql;
    cons->orderly = opts->orderly;
    cons->from_ms = opts->from_ms;
    cons->window = opts->window ? opts->window : CL_DEFAULT_WINDOW;
    cons->cb = opts->callback;
    cons->cb_arg = opts->callback_arg;
    cons->sub_id = c->next_sub_id++;

    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto fail;
    }
    /* Linked before the first pump: deliveries may follow the answer in the same read. */
    cons->next = c->cons_head;
    if (c->cons_head) {
        c->cons_head->prev = cons;
    }
    c->cons_head = cons;
    rc = cl_consumer_subscribe_start(cons, &req);
    if (rc == FY_OK) {
        cl_write_now(c);
        rc = cl_consumer_subscribe_finish(cons, &req);
    }
    if (rc != FY_OK) {
        cons_unlink(cons);
        goto fail;
    }
    cl_run_completions(c);
    if (err) {
        *err = FY_OK;
    }
    return cons;
fail:
    cl_consumer_destroy(cons);
    if (c) {
        cl_run_completions(c);
    }
    if (err) {
        *err = rc;
    }
    return NULL;
}

/* Leaves the group on the broker: pending acks, then UNSUBSCRIBE, waited for. */
static void cons_unsubscribe(fy_consumer *cons)
{
    fy_client *c = cons->c;
    cl_req req;
    uint32_t id;

    if (!cons_live(cons)) {
        return;
    }
    cl_consumers_emit(c);
    if (cl_out_reserve(c, FY_WIRE_HEADER_LEN + 4) != FY_OK) {
        return; /* closing the connection would do the same */
    }
    id = cl_next_id(c);
    {
        size_t start = fy_wire_frame_begin(&c->out, FY_W_UNSUBSCRIBE, 0, id);
        fy_buf_put_u32(&c->out, cons->sub_id);
        fy_wire_frame_end(&c->out, start);
    }
    memset(&req, 0, sizeof(req));
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_UNSUBSCRIBE, id);
    cl_write_now(c);
    cl_req_wait(c, &req);
    cl_req_clear(&req);
    cons->gen = 0;
}

void fy_consumer_free(fy_consumer *cons)
{
    fy_client *c;

    if (!cons) {
        return;
    }
    c = cons->c;
    if (c->dispatching) {
        /* Inside a consume callback: finish the dispatch first (cl_consumers_dispatch). */
        cons->doomed = true;
        return;
    }
    cons_unsubscribe(cons);
    cons_unlink(cons);
    cl_consumer_destroy(cons);
    cl_run_completions(c);
}

/* ---- Deliveries ---------------------------------------------------------------------------- */

/* Appends a NACK of one delivery (NOREPLY). */
static int cons_emit_nack(fy_consumer *cons, uint64_t delivery_id, uint8_t how)
{
    fy_client *c = cons->c;
    fy_w_ack one;
    int rc;

    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 4 + 1 + 2 + 8);
    if (rc != FY_OK) {
        return rc;
    }
    one.sub_id = cons->sub_id;
    one.how = how;
    one.n = 1;
    one.ids[0] = delivery_id;
    fy_wire_enc_ack(&c->out, FY_W_NACK, cl_next_id(c), FY_WIRE_F_NOREPLY, &one);
    return FY_OK;
}

void cl_consumer_on_deliver(fy_client *c, const fy_w_deliver *d)
{
    fy_consumer *cons = cons_find(c, d->sub_id);
    fy_message *m;
    int rc;

    if (!cons || cons->gen != c->gen || cons->closed || cons->doomed) {
        return; /* not ours any more: the broker gives it back when the subscription ends */
    }
    rc = cl_message_from_record(d->record.p, d->record.len, &m);
    if (rc != FY_OK) {
        /* A record we cannot decode would come back forever if released: dead-letter it. Out
         * of memory: hand it back for now. Either way its credit is ours again. */
        cl_fail(c, rc, "consumer: %s delivery %llu",
                rc == -FY_EPROTO ? "rejected an undecodable" : "out of memory for",
                (unsigned long long)d->delivery_id);
        cons_emit_nack(cons, d->delivery_id, rc == -FY_EPROTO ? FY_NACK_REJECT : FY_NACK_RELEASE);
        cons->credit_owed++;
        return;
    }
    m->delivered = true;
    m->client = c;
    m->sub_id = cons->sub_id;
    m->conn_gen = c->gen;
    m->delivery_id = d->delivery_id;
    fy_msgid_to_hex(d->msgid, m->msgid);
    if (cons->qtail) {
        cons->qtail->next = m;
    } else {
        cons->qhead = m;
    }
    cons->qtail = m;
    cons->queued++;
}

void cl_consumer_on_closed(fy_client *c, const fy_w_sub_closed *sc)
{
    fy_consumer *cons = cons_find(c, sc->sub_id);

    if (!cons || cons->gen != c->gen) {
        return;
    }
    cons->closed = sc->status ? -(int)sc->status : -FY_ECLOSED;
    free(cons->closed_why);
    cons->closed_why = malloc(sc->reason.len + 1);
    if (cons->closed_why) {
        if (sc->reason.len) {
            memcpy(cons->closed_why, sc->reason.p, sc->reason.len);
        }
        cons->closed_why[sc->reason.len] = '\0';
    }
    /* No ack can reach a subscription that has ended: what is queued will be redelivered. */
    cons_drop_queue(cons);
    cons->acks->n = 0;
    cons->credit_owed = 0;
    cons->gen = 0;
}

void cl_consumer_on_disconnect(fy_consumer *cons)
{
    cons_drop_queue(cons);
    cons->acks->n = 0;
    cons->credit_owed = 0;
    cons->gen = 0;
}

/* Pops the next queued delivery; it counts as handed out (its credit is owed back). */
static fy_message *cons_take(fy_consumer *cons)
{
    fy_message *m = cons->qhead;

    if (!m) {
        return NULL;
    }
    cons->qhead = m->next;
    if (!cons->qhead) {
        cons->qtail = NULL;
    }
    m->next = NULL;
    cons->queued--;
    cons->credit_owed++;
    return m;
}

/* Writes the consumer's pending acks and owed credit into c->out (not yet to the socket). */
static int cons_emit(fy_consumer *cons, bool credit)
{
    fy_client *c = cons->c;
    int rc;

    if (!cons_live(cons)) {
        return FY_OK;
    }
    if (cons->acks->n > 0) {
        rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 4 + 1 + 2 + 8 * (size_t)cons->acks->n);
        if (rc != FY_OK) {
            return rc;
        }
        cons->acks->sub_id = cons->sub_id;
        cons->acks->how = 0;
        fy_wire_enc_ack(&c->out, FY_W_ACK, cl_next_id(c), FY_WIRE_F_NOREPLY, cons->acks);
        cons->acks->n = 0;
    }
    if (credit && cons->credit_owed > 0 && !cons->doomed) {
        fy_w_credit cr = {cons->sub_id, cons->credit_owed};
        rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 8);
        if (rc != FY_OK) {
            return rc;
        }
        fy_wire_enc_credit(&c->out, cl_next_id(c), FY_WIRE_F_NOREPLY, &cr);
        cons->credit_owed = 0;
    }
    return FY_OK;
}

/* Credit goes back in batches of a quarter window, or all at once when the local queue is empty
 * (about to wait for more). */
static bool cons_credit_due(const fy_consumer *cons)
{
    return cons->credit_owed > 0 && (!cons->qhead || cons->credit_owed >= (cons->window + 3) / 4);
}

int cl_consumers_emit(fy_client *c)
{
    int rc = FY_OK;

    for (fy_consumer *cons = c->cons_head; cons; cons = cons->next) {
        int r = cons_emit(cons, true);
        rc = rc == FY_OK ? r : rc;
    }
    return rc;
}

/* Validates that msg is a delivery of cons that can still be settled. */
static int cons_check(fy_consumer *cons, const fy_message *m)
{
    fy_client *c = cons->c;

    if (!m->delivered || m->client != c || m->sub_id != cons->sub_id) {
        return cl_fail(c, -FY_EINVAL, "ack: the message was not delivered by this consumer");
    }
    if (!cons_live(cons) || m->conn_gen != cons->gen) {
        return cl_fail(c, -FY_ECLOSED,
                       "ack: the delivery came on a connection or subscription that has ended; "
                       "the broker delivers it again");
    }
    return FY_OK;
}

int fy_consumer_ack(fy_consumer *cons, const fy_message *m)
{
    int rc;

    if (!cons || !m) {
        return -FY_EINVAL;
    }
    rc = cons_check(cons, m);
    if (rc != FY_OK) {
        return rc;
    }
    cons->acks->ids[cons->acks->n++] = m->delivery_id;
    /* Batch while more deliveries wait locally (the application is busy); write at once when it
     * has caught up, so an idle consumer's acks do not linger. */
    if (cons->acks->n == FY_WIRE_MAX_BATCH || (!cons->qhead && !cons->c->dispatching)) {
        rc = cons_emit(cons, cons_credit_due(cons));
        if (rc != FY_OK) {
            return cl_fail(cons->c, rc, "ack: out of memory");
        }
        cl_write_now(cons->c);
    }
    return FY_OK;
}

int fy_consumer_nack(fy_consumer *cons, const fy_message *m, fy_consume_status how)
{
    uint8_t wire_how;
    int rc;

    if (!cons || !m) {
        return -FY_EINVAL;
    }
    switch (how) {
    case FY_CONSUME_RETRY_LATER:
        wire_how = FY_NACK_RETRY;
        break;
    case FY_CONSUME_RELEASE:
        wire_how = FY_NACK_RELEASE;
        break;
    case FY_CONSUME_REJECT:
        wire_how = FY_NACK_REJECT;
        break;
    default:
        return cl_fail(cons->c, -FY_EINVAL, "nack: bad disposition %d", (int)how);
    }
    rc = cons_check(cons, m);
    if (rc != FY_OK) {
        return rc;
    }
    rc = cons_emit_nack(cons, m->delivery_id, wire_how);
    if (rc != FY_OK) {
        return cl_fail(cons->c, rc, "nack: out of memory");
    }
    if (!cons->c->dispatching) {
        cl_write_now(cons->c);
    }
    return FY_OK;
}

int fy_consumer_poll(fy_consumer *cons, int timeout_ms, fy_message **out)
{
    fy_client *c;
    int64_t deadline;
    bool pumped = false;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!cons || !out) {
        return -FY_EINVAL;
    }
    c = cons->c;
    if (cons->cb || cons->doomed) {
        return cl_fail(c, -FY_EINVAL,
                       "poll: a callback consumer gets its messages from "
                       "fy_client_poll()");
    }
    deadline = cl_deadline(timeout_ms);
    for (;;) {
        if (cons->qhead) {
            *out = cons_take(cons);
            if (cons_credit_due(cons)) {
                cons_emit(cons, true);
                cl_write_now(c);
            }
            cl_run_completions(c);
            return FY_OK;
        }
        if (cons->closed) {
            cl_run_completions(c);
            return cl_fail(c, -FY_ECLOSED, "subscription to %s closed by the broker: %s (%s)",
                           cons->topic, cons->closed_why ? cons->closed_why : "",
                           fy_errname(cons->closed));
        }
        if (!c->ready) {
            rc = cl_ready(c);
            cl_run_completions(c);
            if (rc != FY_OK) {
                return rc;
            }
            continue;
        }
        cl_consumers_emit(c);
        cl_write_now(c);
        if (pumped && cl_now() >= deadline) {
            cl_run_completions(c);
            return -FY_ETIMEDOUT;
        }
        rc = cl_pump(c, deadline);
        pumped = true;
        cl_run_completions(c);
        if (rc == -FY_ENOMEM) {
            return rc;
        }
    }
}

/* ---- Callback consumers -------------------------------------------------------------------- */

int cl_consumers_dispatch(fy_client *c)
{
    fy_consumer *cons, *next;
    int n = 0;

    if (c->dispatching) {
        return 0; /* fy_client_poll from inside a callback: deliveries keep their order */
    }
    c->dispatching++;
    for (cons = c->cons_head; cons; cons = cons->next) {
        if (!cons->cb) {
            continue;
        }
        while (cons->qhead && !cons->doomed && cons_live(cons)) {
            fy_message *m = cons_take(cons);
            fy_consume_status st;
            cons->in_callback = true;
            st = cons->cb(cons->cb_arg, cons, m);
            cons->in_callback = false;
            if (st == FY_CONSUME_SUCCESS) {
                fy_consumer_ack(cons, m);
            } else {
                if (st != FY_CONSUME_RELEASE && st != FY_CONSUME_REJECT) {
                    st = FY_CONSUME_RETRY_LATER;
                }
                fy_consumer_nack(cons, m, st);
            }
            fy_message_free(m);
            n++;
            if (cons_credit_due(cons)) {
                cons_emit(cons, true);
            }
        }
    }
    c->dispatching--;
    /* Consumers freed from callbacks leave now, after their last delivery was settled. */
    for (cons = c->cons_head; cons; cons = next) {
        next = cons->next;
        if (cons->doomed) {
            fy_consumer_free(cons);
            next = c->cons_head; /* the list may have changed while waiting: start over */
        }
    }
    if (c->ready) {
        cl_consumers_emit(c);
        cl_write_now(c);
    }
    return n;
}
