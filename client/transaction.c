/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's transactional producer: TX_REGISTER per producer group (again after each
 * reconnection), fy_tx_send (TX_HALF, the local transaction, TX_END), check-backs queued from
 * TX_CHECK frames and answered from fy_client_poll, and the low-level calls ferryctl uses
 * (send a half, end by id, list pending). */
#include "client/private.h"
#include "common/clock.h"

#include "ferry/client.h"

#include <stdlib.h>
#include <string.h>

static char *tx_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) {
        memcpy(d, s, n);
    }
    return d;
}

/* A request whose payload is one string, waited for; the answer body is dropped. */
static int tx_call_str(fy_client *c, uint8_t type, const char *s)
{
    cl_req req;
    int rc = cl_call_simple(c, type, s, &req);
    cl_req_clear(&req);
    return rc;
}

/* ---- Producers ----------------------------------------------------------------------------- */

void fy_tx_producer_opts_init(fy_tx_producer_opts *o)
{
    memset(o, 0, sizeof(*o));
}

fy_tx_producer *fy_tx_producer_new(fy_client *c, const fy_tx_producer_opts *opts, int *err)
{
    fy_tx_producer *p = NULL;
    int rc;

    if (!c) {
        rc = -FY_EINVAL;
        goto out;
    }
    if (!opts || !opts->group || !*opts->group) {
        rc = cl_fail(c, -FY_EINVAL, "transactional producer: a producer group is required");
        goto out;
    }
    p = calloc(1, sizeof(*p));
    if (!p || !(p->group = tx_strdup(opts->group))) {
        rc = cl_fail(c, -FY_ENOMEM, "out of memory");
        goto out;
    }
    p->c = c;
    p->check = opts->check;
    p->check_arg = opts->check_arg;
    /* Linked first: a connection made by this very call registers it already. */
    p->next = c->txp_head;
    c->txp_head = p;
    rc = c->ready ? tx_call_str(c, FY_W_TX_REGISTER, p->group) : cl_ready(c);
    if (rc != FY_OK) {
        c->txp_head = p->next;
    }
out:
    if (c) {
        cl_run_completions(c);
    }
    if (err) {
        *err = rc;
    }
    if (rc != FY_OK && p) {
        free(p->group);
        free(p);
        p = NULL;
    }
    return p;
}

void fy_tx_producer_free(fy_tx_producer *p)
{
    fy_client *c;
    if (!p) {
        return;
    }
    c = p->c;
    for (fy_tx_producer **pp = &c->txp_head; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    /* The registration is the group's: it ends with the last producer of the group. */
    for (fy_tx_producer *q = c->txp_head; q; q = q->next) {
        if (strcmp(q->group, p->group) == 0) {
            goto done;
        }
    }
    if (c->ready) {
        tx_call_str(c, FY_W_TX_UNREGISTER, p->group);
        cl_run_completions(c);
    }
done:
    free(p->group);
    free(p);
}

int cl_tx_reregister(fy_client *c)
{
    for (fy_tx_producer *p = c->txp_head; p; p = p->next) {
        /* Producers of one group share the registration. */
        bool seen = false;
        for (fy_tx_producer *q = c->txp_head; q != p && !seen; q = q->next) {
            seen = strcmp(q->group, p->group) == 0;
        }
        if (!seen) {
            int rc = tx_call_str(c, FY_W_TX_REGISTER, p->group);
            if (rc != FY_OK) {
                return rc;
            }
        }
    }
    return FY_OK;
}

/* ---- Check-backs --------------------------------------------------------------------------- */

void cl_tx_on_check(fy_client *c, const fy_w_tx_check *m)
{
    cl_tx_check *chk = calloc(1, sizeof(*chk));
    if (!chk) {
        return; /* the broker asks again at its next round */
    }
    chk->tx_id = m->tx_id;
    chk->group = malloc(m->group.len + 1);
    if (!chk->group || cl_message_from_record(m->record.p, m->record.len, &chk->msg) != FY_OK) {
        free(chk->group);
        free(chk);
        return;
    }
    memcpy(chk->group, m->group.p, m->group.len);
    chk->group[m->group.len] = '\0';
    fy_msgid_to_hex(m->msgid, chk->msg->msgid);
    if (c->chk_tail) {
        c->chk_tail->next = chk;
    } else {
        c->chk_head = chk;
    }
    c->chk_tail = chk;
}

static void chk_free(cl_tx_check *chk)
{
    fy_message_free(chk->msg);
    free(chk->group);
    free(chk);
}

/* Queues a TX_END without reply. FY_OK or an error (nothing queued). */
static int tx_end_noreply(fy_client *c, uint64_t tx_id, fy_tx_state state)
{
    fy_w_tx_end m = {tx_id, (uint8_t)state};
    int rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 9);
    if (rc != FY_OK) {
        return rc;
    }
    fy_wire_enc_tx_end(&c->out, cl_next_id(c), FY_WIRE_F_NOREPLY, &m);
    return FY_OK;
}

int cl_tx_dispatch(fy_client *c)
{
    int n = 0;
    cl_tx_check *chk;
    while ((chk = c->chk_head)) {
        fy_tx_producer *p;
        fy_tx_state st;
        c->chk_head = chk->next;
        if (!c->chk_head) {
            c->chk_tail = NULL;
        }
        for (p = c->txp_head; p; p = p->next) {
            if (strcmp(p->group, chk->group) == 0 && p->check) {
                break;
            }
        }
        if (p) {
            st = p->check(p->check_arg, chk->msg);
            n++;
            /* Unknown is an answer too: the broker asks again at its next round. */
            if ((st == FY_TX_COMMIT || st == FY_TX_ROLLBACK) && c->ready) {
                tx_end_noreply(c, chk->tx_id, st);
            }
        }
        chk_free(chk);
    }
    if (n > 0 && c->ready) {
        cl_write_now(c);
    }
    return n;
}

void cl_tx_destroy(fy_client *c)
{
    while (c->txp_head) {
        fy_tx_producer *p = c->txp_head;
        c->txp_head = p->next;
        free(p->group);
        free(p);
    }
    while (c->chk_head) {
        cl_tx_check *chk = c->chk_head;
        c->chk_head = chk->next;
        chk_free(chk);
    }
    c->chk_tail = NULL;
}

/* ---- Sending and ending -------------------------------------------------------------------- */

/* Decodes "u16 n, n x 36-byte result" with n == want (0 or 1). */
static int tx_decode_result(fy_client *c, const fy_buf *body, size_t want, fy_send_result *r,
                            const char *what)
{
    fy_rd rd = fy_rd_make(body->data, body->len);
    uint16_t n = fy_rd_u16(&rd);
    const uint8_t *p;
    if (rd.bad || n != want || rd.left != FY_WIRE_SEND_RESULT_LEN * want) {
        return cl_fail(c, -FY_EPROTO, "%s: malformed answer from the broker", what);
    }
    if (want == 1) {
        p = fy_rd_take(&rd, FY_WIRE_SEND_RESULT_LEN);
        if (r) {
            r->queue_id = fy_be32_get(p);
            r->queue_offset = fy_be64_get(p + 4);
            r->store_ms = fy_be64_get(p + 12);
            fy_msgid_to_hex(p + 20, r->msgid);
        }
    }
    return FY_OK;
}

int fy_tx_send_half(fy_client *c, const char *group, const fy_message *msg, uint64_t *tx_id,
                    fy_send_result *half)
{
    fy_w_tx_half m;
    fy_buf rec = FY_BUF_INIT;
    fy_send_result r;
    cl_req req;
    uint64_t born = fy_wall_ms();
    size_t size;
    uint32_t id;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    if (!group || !*group || strlen(group) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "send half: a producer group is required");
    }
    if (!msg || !msg->topic) {
        return cl_fail(c, -FY_EINVAL, "send half: the message has no topic");
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    size = cl_message_record_size(msg, born, c->born_host);
    if (size == 0) {
        rc = cl_fail(c, -FY_EINVAL, "send half: the message breaks a limit of the format");
        goto out;
    }
    if (cl_buf_reserve(&rec, size) != FY_OK) {
        rc = cl_fail(c, -FY_ENOMEM, "out of memory");
        goto out;
    }
    rc = cl_message_encode(msg, born, c->born_host, &rec);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "send half: the message cannot be encoded");
        goto out;
    }
    m.group = fy_slice_str(group);
    m.sharding_key = fy_slice_str(msg->sharding_key);
    m.record = (fy_slice){rec.data, rec.len};
    size = FY_WIRE_HEADER_LEN + 2 + strlen(group) + 2 + m.sharding_key.len + 4 + rec.len;
    if (size - 4 > c->max_frame) {
        rc = cl_fail(c, -FY_ETOOBIG, "send half: %zu bytes is over the broker's frame limit of %u",
                     size, c->max_frame);
        goto out;
    }
    rc = cl_out_reserve(c, size);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    id = cl_next_id(c);
    fy_wire_enc_tx_half(&c->out, id, &m);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_TX_HALF, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc == FY_OK) {
        rc = tx_decode_result(c, &req.body, 1, &r, "send half");
    } else if (rc == -FY_ECLOSED) {
        cl_fail(c, rc, "send half: connection to %s lost, outcome unknown", c->broker);
    }
    if (rc == FY_OK) {
        if (tx_id) {
            *tx_id = r.queue_offset;
        }
        if (half) {
            *half = r;
        }
    }
out:
    cl_req_clear(&req);
    fy_buf_free(&rec);
    cl_run_completions(c);
    return rc;
}

int fy_tx_end(fy_client *c, uint64_t tx_id, fy_tx_state state, fy_send_result *result)
{
    fy_w_tx_end m = {tx_id, (uint8_t)state};
    cl_req req;
    uint32_t id;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    if (state != FY_TX_COMMIT && state != FY_TX_ROLLBACK && state != FY_TX_UNKNOWN) {
        return cl_fail(c, -FY_EINVAL, "end transaction: bad state %d", (int)state);
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 9);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    id = cl_next_id(c);
    fy_wire_enc_tx_end(&c->out, id, 0, &m);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_TX_END, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc == FY_OK) {
        rc = tx_decode_result(c, &req.body, state == FY_TX_COMMIT ? 1 : 0, result,
                              "end transaction");
    }
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

uint64_t fy_tx_id_of(const fy_message *msg)
{
    uint16_t broker;
    uint32_t topic, queue;
    uint64_t offset;
    if (!msg || fy_message_id_parse(msg->msgid, &broker, &topic, &queue, &offset) != FY_OK ||
        queue != 0xFFFE) {
        return 0;
    }
    return offset;
}

int fy_tx_send(fy_tx_producer *p, const fy_message *msg, fy_tx_cb execute, void *arg,
               fy_tx_result *out)
{
    fy_tx_result res;
    fy_send_result half;
    fy_message *copy;
    fy_client *c;
    int rc;

    if (!p) {
        return -FY_EINVAL;
    }
    c = p->c;
    memset(&res, 0, sizeof(res));
    res.state = FY_TX_UNKNOWN;
    if (!execute) {
        return cl_fail(c, -FY_EINVAL, "transaction: no execute callback");
    }
    rc = fy_tx_send_half(c, p->group, msg, &res.tx_id, &half);
    if (rc != FY_OK) {
        goto out;
    }
    memcpy(res.half_id, half.msgid, sizeof(res.half_id));
    /* The local transaction sees the message with the half's id. */
    copy = fy_message_dup(msg);
    if (!copy) {
        rc = cl_fail(c, -FY_ENOMEM, "out of memory");
        goto out; /* the half stays open: the broker will check back */
    }
    memcpy(copy->msgid, half.msgid, sizeof(copy->msgid));
    res.state = execute(arg, copy);
    fy_message_free(copy);
    if (res.state == FY_TX_COMMIT || res.state == FY_TX_ROLLBACK) {
        rc = fy_tx_end(c, res.tx_id, res.state, &res.result);
    } else {
        res.state = FY_TX_UNKNOWN;
    }
out:
    if (out) {
        *out = res;
    }
    return rc;
}

/* ---- Listing ------------------------------------------------------------------------------- */

void fy_tx_pending_list_free(fy_tx_pending_list *list)
{
    if (!list) {
        return;
    }
    for (size_t i = 0; i < list->n; i++) {
        fy_message_free(list->txs[i].message);
        free((char *)list->txs[i].group);
    }
    free(list->txs);
    free(list);
}

int fy_tx_list(fy_client *c, uint64_t from_id, size_t limit, fy_tx_pending_list **out)
{
    fy_w_tx_list m = {from_id, (uint32_t)limit};
    fy_tx_pending_list *list = NULL;
    cl_req req;
    fy_rd rd;
    uint32_t id, n;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    if (out) {
        *out = NULL;
    }
    if (!out || limit == 0 || limit > FY_WIRE_MAX_BATCH) {
        return cl_fail(c, -FY_EINVAL, "transaction list: limit must be 1..%d", FY_WIRE_MAX_BATCH);
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 12);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    id = cl_next_id(c);
    fy_wire_enc_tx_list(&c->out, id, &m);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_TX_LIST, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    n = fy_rd_u32(&rd);
    /* An entry takes at least 8 + 2 + 8 + 4 + 16 + 4 bytes. */
    if (rd.bad || n > limit || n > rd.left / 42) {
        rc = cl_fail(c, -FY_EPROTO, "transaction list: malformed answer from the broker");
        goto out;
    }
    list = calloc(1, sizeof(*list));
    if (!list || (n && !(list->txs = calloc(n, sizeof(*list->txs))))) {
        rc = cl_fail(c, -FY_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        fy_tx_pending *t = &list->txs[i];
        fy_slice group;
        const uint8_t *raw, *rec;
        uint32_t len;
        char *g;
        t->tx_id = fy_rd_u64(&rd);
        group = fy_wire_get_str(&rd);
        t->stored_ms = fy_rd_u64(&rd);
        t->checks = fy_rd_u32(&rd);
        raw = fy_rd_take(&rd, FY_MSGID_LEN);
        len = fy_rd_u32(&rd);
        rec = fy_rd_take(&rd, len);
        if (rd.bad || !raw || !rec) {
            rc = cl_fail(c, -FY_EPROTO, "transaction list: malformed answer from the broker");
            goto out;
        }
        g = malloc(group.len + 1);
        if (!g) {
            rc = cl_fail(c, -FY_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(g, group.p, group.len);
        g[group.len] = '\0';
        t->group = g;
        list->n++;
        rc = cl_message_from_record(rec, len, &t->message);
        if (rc != FY_OK) {
            rc = cl_fail(c, rc == -FY_EPROTO ? rc : -FY_ENOMEM,
                         "transaction list: cannot read a half message");
            goto out;
        }
        fy_msgid_to_hex(raw, t->message->msgid);
    }
    if (rd.left) {
        rc = cl_fail(c, -FY_EPROTO, "transaction list: malformed answer from the broker");
        goto out;
    }
    *out = list;
    list = NULL;
out:
    fy_tx_pending_list_free(list);
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}
