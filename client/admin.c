/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's admin calls: topics (create, delete, list, describe), message lookup by id or by
 * key, groups (list, describe, reset to a time, settings). Each is one synchronous request; each
 * answer is decoded into one heap block (structure, arrays and strings together), so its _free is
 * one free() — except a message list, whose messages are ordinary fy_message objects. Counts are
 * checked against the answer's size before anything is allocated. */
#include "client/private.h"

#include "ferry/client.h"

#include <stdlib.h>
#include <string.h>

/* One allocation carved into the answer's parts. */
typedef struct arena {
    uint8_t *p;
    size_t cap, used;
} arena;

#define ARENA_ALIGN 8

static int arena_init(arena *a, size_t cap)
{
    a->p = malloc(cap ? cap : 1);
    a->cap = cap;
    a->used = 0;
    return a->p ? FY_OK : -FY_ENOMEM;
}

static void *arena_take(arena *a, size_t n)
{
    size_t off = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

    if (off > a->cap || a->cap - off < n) {
        return NULL; /* cannot happen when the capacity was computed as below */
    }
    a->used = off + n;
    memset(a->p + off, 0, n);
    return a->p + off;
}

/* Room for the strings of an answer: at most its size, plus a NUL and alignment per string. */
static size_t arena_strings(size_t body_len, size_t nstrings)
{
    return body_len + nstrings * (ARENA_ALIGN + 1);
}

static const char *arena_str(arena *a, fy_slice s)
{
    char *d = arena_take(a, s.len + 1);

    if (d && s.len) {
        memcpy(d, s.p, s.len);
    }
    return d ? d : "";
}

static int admin_malformed(fy_client *c, const char *what)
{
    return cl_fail(c, -FY_EPROTO, "%s: malformed answer from the broker", what);
}

/* ---- Topics -------------------------------------------------------------------------------- */

int fy_topic_create(fy_client *c, const char *name, uint32_t queues)
{
    fy_w_topic t;
    cl_req req;
    uint32_t id;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    if (!name || !*name || strlen(name) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "topic create: a name is required");
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 2 + strlen(name) + 4);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    t.name = fy_slice_str(name);
    t.queues = queues;
    id = cl_next_id(c);
    fy_wire_enc_topic(&c->out, FY_W_TOPIC_CREATE, id, &t);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_TOPIC_CREATE, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    cl_req_clear(&req);
out:
    cl_run_completions(c);
    return rc;
}

int fy_topic_delete(fy_client *c, const char *name)
{
    cl_req req;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    if (!name || !*name) {
        return cl_fail(c, -FY_EINVAL, "topic delete: a name is required");
    }
    rc = cl_call_simple(c, FY_W_TOPIC_DELETE, name, &req);
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

int fy_topic_list(fy_client *c, fy_topics **out)
{
    fy_topics *list;
    fy_topic_info *items;
    cl_req req;
    fy_rd rd;
    arena a;
    uint32_t n;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c || !out) {
        return -FY_EINVAL;
    }
    rc = cl_call_simple(c, FY_W_TOPIC_LIST, NULL, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    n = fy_rd_u32(&rd);
    if (rd.bad || n > rd.left / 10) {
        rc = admin_malformed(c, "topic list");
        goto out;
    }
    rc = arena_init(&a, sizeof(*list) + ARENA_ALIGN + n * sizeof(*items) + ARENA_ALIGN +
                            arena_strings(req.body.len, n));
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    list = arena_take(&a, sizeof(*list));
    items = arena_take(&a, n * sizeof(*items));
    for (uint32_t i = 0; i < n; i++) {
        items[i].name = arena_str(&a, fy_wire_get_str(&rd));
        items[i].topic_id = fy_rd_u32(&rd);
        items[i].queues = fy_rd_u32(&rd);
    }
    if (rd.bad || rd.left) {
        free(a.p);
        rc = admin_malformed(c, "topic list");
        goto out;
    }
    list->n = n;
    list->topics = items;
    *out = list;
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

void fy_topics_free(fy_topics *list)
{
    free(list);
}

int fy_topic_describe(fy_client *c, const char *name, fy_topic_info **out)
{
    fy_topic_info *t;
    fy_queue_range *ranges;
    fy_slice tname;
    cl_req req;
    fy_rd rd;
    arena a;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c || !out) {
        return -FY_EINVAL;
    }
    if (!name || !*name) {
        return cl_fail(c, -FY_EINVAL, "topic describe: a name is required");
    }
    rc = cl_call_simple(c, FY_W_TOPIC_DESCRIBE, name, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    tname = fy_wire_get_str(&rd);
    uint32_t topic_id = fy_rd_u32(&rd);
    uint32_t queues = fy_rd_u32(&rd);
    if (rd.bad || queues != rd.left / 16 || rd.left % 16) {
        rc = admin_malformed(c, "topic describe");
        goto out;
    }
    rc = arena_init(&a, sizeof(*t) + ARENA_ALIGN + queues * sizeof(*ranges) + ARENA_ALIGN +
                            arena_strings(tname.len, 1));
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    t = arena_take(&a, sizeof(*t));
    ranges = arena_take(&a, queues * sizeof(*ranges));
    t->name = arena_str(&a, tname);
    t->topic_id = topic_id;
    t->queues = queues;
    for (uint32_t i = 0; i < queues; i++) {
        ranges[i].min_offset = fy_rd_u64(&rd);
        ranges[i].max_offset = fy_rd_u64(&rd);
    }
    t->ranges = queues ? ranges : NULL;
    *out = t;
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

void fy_topic_info_free(fy_topic_info *info)
{
    free(info);
}

/* ---- Messages ------------------------------------------------------------------------------ */

int fy_message_get_by_id(fy_client *c, const char *msgid, fy_message **out)
{
    uint8_t raw[FY_MSGID_LEN];
    cl_req req;
    fy_rd rd;
    uint32_t len;
    const uint8_t *rec;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c || !out) {
        return -FY_EINVAL;
    }
    if (!msgid || fy_msgid_from_hex(msgid, strlen(msgid), raw) != FY_OK) {
        return cl_fail(c, -FY_EINVAL, "message get: '%s' is not a message id (32 hex digits)",
                       msgid ? msgid : "");
    }
    rc = cl_call_simple(c, FY_W_MSG_GET, msgid, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    len = fy_rd_u32(&rd);
    rec = fy_rd_take(&rd, len);
    if (!rec || rd.left) {
        rc = admin_malformed(c, "message get");
        goto out;
    }
    rc = cl_message_from_record(rec, len, out);
    if (rc == -FY_EPROTO) {
        rc = admin_malformed(c, "message get");
    } else if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
    } else {
        fy_msgid_to_hex(raw, (*out)->msgid);
    }
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

/* Payload of a MSG_FIND answer entry before its record: 16-byte message id, u32 length. */
#define FIND_ENTRY_MIN (FY_MSGID_LEN + 4)

int fy_message_find(fy_client *c, const char *topic, const char *key, uint64_t from_ms,
                    uint64_t to_ms, size_t limit, fy_message_list **out)
{
    fy_message_list *list = NULL;
    fy_w_msg_find m;
    cl_req req;
    fy_rd rd;
    uint32_t n, id;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c || !out) {
        return -FY_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    if (!topic || !*topic || strlen(topic) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "message find: a topic is required");
    }
    if (!key || !*key || strlen(key) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "message find: a key is required");
    }
    if (limit < 1 || limit > FY_WIRE_MAX_BATCH) {
        return cl_fail(c, -FY_EINVAL, "message find: the limit is 1 to %d, not %zu",
                       FY_WIRE_MAX_BATCH, limit);
    }
    if (to_ms != 0 && to_ms < from_ms) {
        return cl_fail(c, -FY_EINVAL, "message find: to_ms %llu is before from_ms %llu",
                       (unsigned long long)to_ms, (unsigned long long)from_ms);
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 2 + strlen(topic) + 2 + strlen(key) + 8 + 8 + 4);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    m.topic = fy_slice_str(topic);
    m.key = fy_slice_str(key);
    m.from_ms = from_ms;
    /* The broker's window is closed at both ends: "no upper bound" is the largest time. */
    m.to_ms = to_ms ? to_ms : UINT64_MAX;
    m.limit = (uint32_t)limit;
    id = cl_next_id(c);
    fy_wire_enc_msg_find(&c->out, id, &m);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_MSG_FIND, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    n = fy_rd_u32(&rd);
    if (rd.bad || n > limit || n > rd.left / FIND_ENTRY_MIN) {
        rc = admin_malformed(c, "message find");
        goto out;
    }
    /* The list and its array of pointers in one block; the messages apart (each is a normal
     * fy_message that a caller may take over). */
    list = calloc(1, sizeof(*list) + (size_t)n * sizeof(*list->messages));
    if (!list) {
        rc = cl_fail(c, -FY_ENOMEM, "out of memory");
        goto out;
    }
    list->messages = n ? (fy_message **)(list + 1) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *raw = fy_rd_take(&rd, FY_MSGID_LEN);
        uint32_t len = fy_rd_u32(&rd);
        const uint8_t *rec = fy_rd_take(&rd, len);
        if (!raw || !rec) {
            rc = admin_malformed(c, "message find");
            goto out;
        }
        rc = cl_message_from_record(rec, len, &list->messages[i]);
        if (rc == -FY_EPROTO) {
            rc = admin_malformed(c, "message find");
            goto out;
        }
        if (rc != FY_OK) {
            rc = cl_fail(c, rc, "out of memory");
            goto out;
        }
        list->n++;
        fy_msgid_to_hex(raw, list->messages[i]->msgid);
    }
    if (rd.left) {
        rc = admin_malformed(c, "message find");
        goto out;
    }
    *out = list;
    list = NULL;
out:
    fy_message_list_free(list);
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

void fy_message_list_free(fy_message_list *list)
{
    if (!list) {
        return;
    }
    for (size_t i = 0; i < list->n; i++) {
        fy_message_free(list->messages[i]);
    }
    free(list);
}

/* ---- Groups -------------------------------------------------------------------------------- */

int fy_group_list(fy_client *c, fy_groups **out)
{
    fy_groups *list;
    fy_group_summary *items;
    cl_req req;
    fy_rd rd;
    arena a;
    uint32_t n;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c || !out) {
        return -FY_EINVAL;
    }
    rc = cl_call_simple(c, FY_W_GROUP_LIST, NULL, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    n = fy_rd_u32(&rd);
    if (rd.bad || n > rd.left / 7) {
        rc = admin_malformed(c, "group list");
        goto out;
    }
    rc = arena_init(&a, sizeof(*list) + ARENA_ALIGN + n * sizeof(*items) + ARENA_ALIGN +
                            arena_strings(req.body.len, n));
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    list = arena_take(&a, sizeof(*list));
    items = arena_take(&a, n * sizeof(*items));
    for (uint32_t i = 0; i < n; i++) {
        items[i].name = arena_str(&a, fy_wire_get_str(&rd));
        items[i].mode = fy_rd_u8(&rd) ? FY_CONSUME_BROADCAST : FY_CONSUME_CLUSTERING;
        items[i].members = fy_rd_u32(&rd);
    }
    if (rd.bad || rd.left) {
        free(a.p);
        rc = admin_malformed(c, "group list");
        goto out;
    }
    list->n = n;
    list->groups = items;
    *out = list;
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

void fy_groups_free(fy_groups *list)
{
    free(list);
}

int fy_group_describe(fy_client *c, const char *group, fy_group_info **out)
{
    fy_group_info *g;
    fy_group_member *members;
    fy_group_queue *queues;
    fy_slice name;
    uint8_t mode;
    uint32_t nm, nq;
    fy_rd rd, qrd;
    cl_req req;
    arena a;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c || !out) {
        return -FY_EINVAL;
    }
    if (!group || !*group) {
        return cl_fail(c, -FY_EINVAL, "group describe: a name is required");
    }
    rc = cl_call_simple(c, FY_W_GROUP_DESCRIBE, group, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    name = fy_wire_get_str(&rd);
    mode = fy_rd_u8(&rd);
    nm = fy_rd_u32(&rd);
    if (rd.bad || nm > rd.left / 18) {
        rc = admin_malformed(c, "group describe");
        goto out;
    }
    /* Skip the members once to find the queue count. */
    qrd = rd;
    for (uint32_t i = 0; i < nm; i++) {
        fy_rd_u32(&qrd);
        fy_wire_get_str(&qrd);
        fy_wire_get_str(&qrd);
        fy_wire_get_str(&qrd);
        fy_rd_u32(&qrd);
        fy_rd_u32(&qrd);
    }
    nq = fy_rd_u32(&qrd);
    if (qrd.bad || nq > qrd.left / 26) {
        rc = admin_malformed(c, "group describe");
        goto out;
    }
    rc = arena_init(&a, sizeof(*g) + ARENA_ALIGN + nm * sizeof(*members) + ARENA_ALIGN +
                            nq * sizeof(*queues) + ARENA_ALIGN +
                            arena_strings(req.body.len, 1 + 3 * (size_t)nm + nq));
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    g = arena_take(&a, sizeof(*g));
    members = arena_take(&a, nm * sizeof(*members));
    queues = arena_take(&a, nq * sizeof(*queues));
    g->name = arena_str(&a, name);
    g->mode = mode ? FY_CONSUME_BROADCAST : FY_CONSUME_CLUSTERING;
    for (uint32_t i = 0; i < nm; i++) {
        members[i].member_id = fy_rd_u32(&rd);
        members[i].client_id = arena_str(&a, fy_wire_get_str(&rd));
        members[i].topic = arena_str(&a, fy_wire_get_str(&rd));
        members[i].filter = arena_str(&a, fy_wire_get_str(&rd));
        members[i].credit = fy_rd_u32(&rd);
        members[i].inflight = fy_rd_u32(&rd);
    }
    fy_rd_u32(&rd);
    for (uint32_t i = 0; i < nq; i++) {
        queues[i].topic = arena_str(&a, fy_wire_get_str(&rd));
        queues[i].queue_id = fy_rd_u32(&rd);
        queues[i].committed = fy_rd_u64(&rd);
        queues[i].max_offset = fy_rd_u64(&rd);
        queues[i].owner = fy_rd_u32(&rd);
        queues[i].lag = queues[i].max_offset > queues[i].committed
                            ? queues[i].max_offset - queues[i].committed
                            : 0;
    }
    if (rd.bad || rd.left) {
        free(a.p);
        rc = admin_malformed(c, "group describe");
        goto out;
    }
    g->nmembers = nm;
    g->members = nm ? members : NULL;
    g->nqueues = nq;
    g->queues = nq ? queues : NULL;
    *out = g;
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

void fy_group_info_free(fy_group_info *info)
{
    free(info);
}

int fy_group_reset(fy_client *c, const char *group, const char *topic, uint64_t ts_ms,
                   fy_group_offsets **out)
{
    fy_group_offsets *res;
    fy_w_group_reset m;
    uint32_t *qids;
    uint64_t *offs;
    cl_req req;
    fy_rd rd;
    arena a;
    uint32_t n, id;
    int rc;

    if (out) {
        *out = NULL;
    }
    if (!c) {
        return -FY_EINVAL;
    }
    memset(&req, 0, sizeof(req));
    if (!group || !*group || !topic || !*topic || strlen(group) > UINT16_MAX ||
        strlen(topic) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "group reset: a group and a topic are required");
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 4 + strlen(group) + strlen(topic) + 8);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    m.group = fy_slice_str(group);
    m.topic = fy_slice_str(topic);
    m.ts_ms = ts_ms;
    id = cl_next_id(c);
    fy_wire_enc_group_reset(&c->out, id, &m);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_GROUP_RESET, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc != FY_OK) {
        goto out;
    }
    rd = fy_rd_make(req.body.data, req.body.len);
    n = fy_rd_u32(&rd);
    if (rd.bad || rd.left != 12 * (size_t)n) {
        rc = admin_malformed(c, "group reset");
        goto out;
    }
    if (!out) {
        goto out;
    }
    rc = arena_init(&a, sizeof(*res) + ARENA_ALIGN + n * sizeof(*qids) + ARENA_ALIGN +
                            n * sizeof(*offs) + ARENA_ALIGN);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    res = arena_take(&a, sizeof(*res));
    qids = arena_take(&a, n * sizeof(*qids));
    offs = arena_take(&a, n * sizeof(*offs));
    for (uint32_t i = 0; i < n; i++) {
        qids[i] = fy_rd_u32(&rd);
        offs[i] = fy_rd_u64(&rd);
    }
    res->n = n;
    res->queue_ids = qids;
    res->offsets = offs;
    *out = res;
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

void fy_group_offsets_free(fy_group_offsets *offsets)
{
    free(offsets);
}

/* GROUP_CONFIG: set = 0 reads, FY_GROUP_CFG_MAX_RECONSUME sets max_reconsume (a wire value). */
static int group_config_call(fy_client *c, const char *what, const char *group, uint8_t set,
                             uint8_t max_reconsume, fy_group_config **out)
{
    fy_group_config *res;
    fy_w_group_config m;
    fy_w_group_config_info info;
    cl_req req;
    arena a;
    uint32_t id;
    int rc;

    memset(&req, 0, sizeof(req));
    rc = cl_ready(c);
    if (rc != FY_OK) {
        goto out;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 2 + strlen(group) + 2);
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    m.group = fy_slice_str(group);
    m.set = set;
    m.max_reconsume = max_reconsume;
    id = cl_next_id(c);
    fy_wire_enc_group_config(&c->out, id, &m);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_GROUP_CONFIG, id);
    cl_write_now(c);
    rc = cl_req_wait(c, &req);
    if (rc != FY_OK) {
        goto out;
    }
    if (fy_wire_dec_group_config_info((fy_slice){req.body.data, req.body.len}, &info) != FY_OK) {
        rc = admin_malformed(c, what);
        goto out;
    }
    if (!out) {
        goto out;
    }
    rc = arena_init(&a, sizeof(*res) + ARENA_ALIGN + arena_strings(req.body.len, 1));
    if (rc != FY_OK) {
        rc = cl_fail(c, rc, "out of memory");
        goto out;
    }
    res = arena_take(&a, sizeof(*res));
    res->name = arena_str(&a, info.group);
    res->mode = info.mode == FY_SUB_BROADCAST ? FY_CONSUME_BROADCAST : FY_CONSUME_CLUSTERING;
    res->max_reconsume = info.max_reconsume == FY_WIRE_RECONSUME_DEFAULT ? FY_MAX_RECONSUME_DEFAULT
                                                                         : info.max_reconsume;
    res->max_reconsume_effective = info.effective;
    *out = res;
out:
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

int fy_group_config_get(fy_client *c, const char *group, fy_group_config **out)
{
    if (out) {
        *out = NULL;
    }
    if (!c) {
        return -FY_EINVAL;
    }
    if (!group || !*group || strlen(group) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "group config: a group is required");
    }
    return group_config_call(c, "group config", group, 0, 0, out);
}

int fy_group_set_max_reconsume(fy_client *c, const char *group, int max_reconsume,
                               fy_group_config **out)
{
    if (out) {
        *out = NULL;
    }
    if (!c) {
        return -FY_EINVAL;
    }
    if (!group || !*group || strlen(group) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "group config: a group is required");
    }
    if (max_reconsume != FY_MAX_RECONSUME_DEFAULT &&
        (max_reconsume < 0 || max_reconsume > FY_WIRE_RECONSUME_MAX)) {
        return cl_fail(c, -FY_EINVAL, "group config: max_reconsume must be 0..64 or the default");
    }
    return group_config_call(c, "group config", group, FY_GROUP_CFG_MAX_RECONSUME,
                             max_reconsume == FY_MAX_RECONSUME_DEFAULT ? FY_WIRE_RECONSUME_DEFAULT
                                                                       : (uint8_t)max_reconsume,
                             out);
}

void fy_group_config_free(fy_group_config *cfg)
{
    free(cfg);
}
