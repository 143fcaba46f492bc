/* SPDX-License-Identifier: Apache-2.0 */
/* Admin HTTP on evhttp: /health, /metrics (broker/metrics.c) and the JSON API under /api/v1
 * (docs/admin-api.md). Every reply but /metrics is JSON, errors included ({"status": N,
 * "error": "..."}). Loop thread only. Operations that wait for the store keep their request in
 * an admin_op until the core's completion; a client that goes away, or the listener stopping,
 * leaves the op orphaned and the completion only frees it. */
#include "broker/admin.h"

#include "adapters/adapter.h"
#include "broker/auth.h"
#include "broker/console.h"
#include "broker/core.h"
#include "broker/metrics.h"
#include "broker/native.h"
#include "broker/tls.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/passwd.h"
#include "common/strmap.h"
#include "common/u64map.h"
#include "common/wire.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define API "/api/v1/"
#define MAX_JSON_BODY (64 * 1024) /* request bodies of the API; evhttp caps anything at 1 MiB */
#define MAX_SEGS 6
#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000
#define TICK_MS 250
#define RATE_SLOTS 21 /* samples of 250 ms: rates over the last 5 s */
#define SEC_SLOTS 6   /* per-topic and per-group samples, one a second: rates over the last 5 s */
#define TICKS_PER_SEC (1000 / TICK_MS)

typedef struct admin_op admin_op;
typedef struct auth_wait auth_wait;

/* A topic's message counters (all protocols), one sample a second. */
typedef struct topic_rate {
    uint64_t seen; /* the second it was last sampled */
    uint64_t in[SEC_SLOTS], out[SEC_SLOTS];
} topic_rate;

/* A group's committed offsets summed over its queues, one sample a second. */
typedef struct group_rate {
    char *name;
    uint64_t seen; /* the second it was last sampled */
    uint64_t committed[SEC_SLOTS];
} group_rate;

struct fy_admin {
    fy_broker *b;
    struct evhttp *http;
    uint16_t port;
    admin_op *ops;         /* waiting for a core completion */
    auth_wait *auth_waits; /* requests waiting for their password check */
    struct event *tick_ev;
    uint64_t tick_expected_ns;
    double lag_s, lag_max_s;
    /* totals of every topic's counters, one sample per tick, for the overview's rates */
    uint64_t in_samples[RATE_SLOTS], out_samples[RATE_SLOTS];
    size_t nsamples, sample_at;
    /* per-topic and per-group rates (topics and groups pages, ferryctl top) */
    unsigned ticks;
    uint64_t secs; /* seconds sampled so far */
    size_t sec_at;
    fy_u64map topic_rates;        /* topic id -> topic_rate *, of the topics that exist */
    fy_strmap group_rates;        /* name -> group_rate */
    uint64_t groups_wanted_until; /* mono ms: groups are sampled only while someone looks */
};

/* ---- Replies ------------------------------------------------------------------------------- */

static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = json_dumps(body, JSON_COMPACT);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    evhttp_send_reply(req, code, code < 300 ? "OK" : "Error", out);
    evbuffer_free(out);
    free(text);
    json_decref(body);
}

static void reply_error(struct evhttp_request *req, int code, const char *msg)
{
    reply_json(req, code, json_pack("{s:i, s:s}", "status", code, "error", msg));
}

/* The status code of a core error. */
static int http_status(int err)
{
    switch (-err) {
    case FY_EINVAL:
    case FY_EBADNAME:
    case FY_ECORRUPT:
    case FY_ETOOBIG:
        return 400;
    case FY_ENOTFOUND:
        return 404;
    case FY_EEXIST:
    case FY_EBUSY:
    case FY_ENOTSUP:
        return 409;
    case FY_EUNHEALTHY:
    case FY_ECANCELED:
        return 503;
    default:
        return 500;
    }
}

static void reply_core_error(struct evhttp_request *req, int err, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "%s: %s", what, fy_strerror(err));
    reply_error(req, http_status(err), msg);
}

/* ---- Requests ------------------------------------------------------------------------------ */

typedef struct route_req {
    fy_admin *a;
    struct evhttp_request *req;
    enum evhttp_cmd_type cmd;
    char *segs[MAX_SEGS]; /* decoded path segments after /api/v1/ */
    size_t nsegs;
    struct evkeyvalq query;
    bool has_query;
} route_req;

static const char *query_get(route_req *r, const char *name)
{
    return r->has_query ? evhttp_find_header(&r->query, name) : NULL;
}

/* Parses an unsigned decimal query parameter; false (and a 400 sent) if it is malformed. */
static bool query_u64(route_req *r, const char *name, uint64_t dflt, uint64_t *out)
{
    const char *v = query_get(r, name);
    char *end;
    char msg[160];
    if (!v || !*v) {
        *out = dflt;
        return true;
    }
    errno = 0;
    *out = strtoull(v, &end, 10);
    if (*end || errno || v[0] == '-') {
        snprintf(msg, sizeof(msg), "query parameter '%s' must be an unsigned integer", name);
        reply_error(r->req, 400, msg);
        return false;
    }
    return true;
}

static bool query_limit(route_req *r, uint64_t *limit)
{
    if (!query_u64(r, "limit", LIST_LIMIT_DEFAULT, limit)) {
        return false;
    }
    if (*limit == 0 || *limit > LIST_LIMIT_MAX) {
        reply_error(r->req, 400, "limit must be 1..1000");
        return false;
    }
    return true;
}

/* The request body as a JSON object; NULL (and a 400 or 413 sent) otherwise. */
static json_t *body_object(route_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    json_error_t jerr;
    json_t *j;
    char msg[300];
    if (len > MAX_JSON_BODY) {
        reply_error(r->req, 413, "request body over 64 KiB");
        return NULL;
    }
    if (len == 0) {
        reply_error(r->req, 400, "a JSON object body is required");
        return NULL;
    }
    j = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        snprintf(msg, sizeof(msg), "bad JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        reply_error(r->req, 400, msg);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        reply_error(r->req, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

static bool method_is(route_req *r, enum evhttp_cmd_type cmd)
{
    if (r->cmd == cmd) {
        return true;
    }
    reply_error(r->req, 405, "method not allowed");
    return false;
}

/* Writes need a healthy store: answer 503 at once rather than queue a doomed batch. */
static bool store_writable(route_req *r)
{
    if (fy_store_healthy(r->a->b->store)) {
        return true;
    }
    reply_error(r->req, 503, "the store is unhealthy: writes are refused");
    return false;
}

/* ---- Operations waiting for the core ------------------------------------------------------- */

struct admin_op {
    fy_admin *a;                /* NULL once the listener stopped */
    struct evhttp_request *req; /* NULL once orphaned */
    struct evhttp_connection *conn;
    json_t *body; /* the reply being built (e.g. reset offsets) */
    admin_op *next, *prev;
};

static void op_conn_closed(struct evhttp_connection *conn, void *arg);

static admin_op *op_new(route_req *r, json_t *body)
{
    admin_op *op = FY_NEW(admin_op);
    op->a = r->a;
    op->req = r->req;
    op->conn = evhttp_request_get_connection(r->req);
    op->body = body;
    op->next = r->a->ops;
    if (op->next) {
        op->next->prev = op;
    }
    r->a->ops = op;
    if (op->conn) {
        evhttp_connection_set_closecb(op->conn, op_conn_closed, op);
    }
    return op;
}

static void op_unlink(admin_op *op)
{
    if (op->a) {
        if (op->prev) {
            op->prev->next = op->next;
        } else {
            op->a->ops = op->next;
        }
        if (op->next) {
            op->next->prev = op->prev;
        }
    }
    if (op->req && op->conn) {
        evhttp_connection_set_closecb(op->conn, NULL, NULL);
    }
    op->a = NULL;
    op->next = op->prev = NULL;
}

static void op_conn_closed(struct evhttp_connection *conn, void *arg)
{
    admin_op *op = arg;
    op->req = NULL; /* evhttp frees the request with its connection */
}

/* Ends an op from its completion: replies (unless orphaned) and frees it. */
static void op_finish(admin_op *op, int code, json_t *reply)
{
    struct evhttp_request *req = op->req;
    op_unlink(op);
    if (req) {
        reply_json(req, code, reply);
    } else {
        json_decref(reply);
    }
    json_decref(op->body);
    fy_free(op);
}

static void op_done_simple(void *arg, int status)
{
    admin_op *op = arg;
    if (status != FY_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "not stored: %s", fy_strerror(status));
        op_finish(op, http_status(status),
                  json_pack("{s:i, s:s}", "status", http_status(status), "error", msg));
        return;
    }
    op_finish(op, 200, json_incref(op->body));
}

/* ---- JSON of messages ---------------------------------------------------------------------- */

static char *base64(const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = fy_malloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

static json_t *slice_json(fy_slice s)
{
    json_t *j = json_stringn(s.p ? (const char *)s.p : "", s.len);
    return j ? j : json_string("");
}

/* A stored record as JSON, in ferryctl's shape: body as a string when it is UTF-8, else
 * body_base64. NULL if it does not decode. */
static json_t *record_json(const uint8_t msgid[FY_MSGID_LEN], const uint8_t *rec, size_t len)
{
    fy_record_view v;
    fy_record_iter it;
    fy_slice k, n, val;
    char hex[FY_MSGID_HEX_LEN + 1];
    json_t *o, *keys, *props, *body;
    if (fy_record_decode(rec, len, &v) != FY_OK) {
        return NULL;
    }
    fy_msgid_to_hex(msgid, hex);
    keys = json_array();
    it = fy_record_keys(&v);
    while (fy_record_key_next(&it, &k)) {
        json_array_append_new(keys, slice_json(k));
    }
    props = json_object();
    it = fy_record_props(&v);
    while (fy_record_prop_next(&it, &n, &val)) {
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(n.len < 255 ? n.len : 255), (const char *)n.p);
        json_object_set_new(props, name, slice_json(val));
    }
    o = json_pack("{s:s, s:o, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:o, s:I, s:I}", "msgid", hex,
                  "topic", slice_json(v.topic), "tag", slice_json(v.tag), "keys", keys,
                  "properties", props, "queue", (json_int_t)v.queue_id, "offset",
                  (json_int_t)v.queue_offset, "born_ms", (json_int_t)v.born_ms, "store_ms",
                  (json_int_t)v.store_ms, "born_host", slice_json(v.born_host), "reconsume",
                  (json_int_t)v.reconsume, "size", (json_int_t)v.body.len);
    body = json_stringn(v.body.p ? (const char *)v.body.p : "", v.body.len);
    if (body) {
        json_object_set_new(o, "body", body);
    } else {
        char *b64 = base64(v.body.p, v.body.len);
        json_object_set_new(o, "body_base64", json_string(b64));
        fy_free(b64);
    }
    return o;
}

/* ---- Authentication ------------------------------------------------------------------------ */

/* What a request does once it may use the admin API. */
typedef void (*admin_then)(struct evhttp_request *req, fy_admin *a);

/* A request whose password check runs off the loop: its reply waits. */
struct auth_wait {
    fy_admin *a;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    fy_auth_job *job;
    admin_then then;
    char user[256];
    auth_wait *next, *prev;
};

static void auth_wait_unlink(auth_wait *w)
{
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        w->a->auth_waits = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    if (w->conn) {
        evhttp_connection_set_closecb(w->conn, NULL, NULL);
    }
}

static void ask_credentials(struct evhttp_request *req, const char *why)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Basic realm=\"ferry\", charset=\"UTF-8\"");
    reply_error(req, 401, why);
}

/* The verdict on user's credentials (the authentication hook's result): true when the request
 * may go on; otherwise it is answered: 503 (busy), 401, or 403 without the `admin` rule. */
static bool admin_judged(struct evhttp_request *req, fy_admin *a, const char *user, int result)
{
    if (result == -FY_EAGAIN || result == -FY_ECANCELED) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        reply_error(req, 503, "server busy: too many password checks pending");
        return false;
    }
    if (result != FY_OK) {
        ask_credentials(req, "bad user name or password");
        return false;
    }
    if (fy_auth_authorize(a->b->auth, user, "", "admin", FY_ACL_ADMIN, (fy_slice){NULL, 0}) !=
        FY_OK) {
        reply_error(req, 403, "not authorized to use the admin API");
        return false;
    }
    return true;
}

static void auth_wait_done(void *arg, int result)
{
    auth_wait *w = arg; /* the connection is open: its close cancels the check */
    auth_wait_unlink(w);
    if (admin_judged(w->req, w->a, w->user, result)) {
        w->then(w->req, w->a);
    }
    fy_free(w);
}

static void auth_wait_closed(struct evhttp_connection *conn, void *arg)
{
    auth_wait *w = arg; /* evhttp frees the request with its connection */
    fy_auth_cancel(w->a->b->auth, w->job);
    w->conn = NULL;
    auth_wait_unlink(w);
    fy_free(w);
}

/* Whether the request may use the admin API: with a password file, HTTP Basic credentials of a
 * user it holds, who also needs an `admin` rule when there is an ACL file. Answers 401 (asking
 * for credentials) or 403 when not. A check that runs off the loop (the first login, a wrong
 * password) defers the reply: false, and then(req, a) is called once it says yes. /health stays
 * open: probes need no secret, and it shows counters only. */
static bool admin_allowed(struct evhttp_request *req, fy_admin *a, admin_then then)
{
    fy_auth *auth = a->b->auth;
    const char *h;
    uint8_t dec[512];
    long n;
    const uint8_t *colon;
    char peer[64] = "-";
    fy_auth_request ar = {"admin", "", peer, true, {NULL, 0}, true, {NULL, 0}};
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    auth_wait *w;
    int rc;
    if (!auth || !fy_auth_has_passwords(auth)) {
        return true;
    }
    if (conn) {
        const char *host = NULL;
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(conn, (char **)&host, &port);
        snprintf(peer, sizeof(peer), "%s:%u", host ? host : "?", port);
    }
    h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h || strncasecmp(h, "Basic ", 6) != 0 ||
        (n = fy_base64_decode(h + 6, strlen(h + 6), dec, sizeof(dec) - 1)) < 0 ||
        !(colon = memchr(dec, ':', (size_t)n)) || (size_t)(colon - dec) >= sizeof(w->user) ||
        memchr(dec, 0, (size_t)n)) {
        ask_credentials(req, "authentication required");
        return false;
    }
    ar.username = (fy_slice){dec, (size_t)(colon - dec)};
    ar.password = (fy_slice){colon + 1, (size_t)(n - (colon + 1 - dec))};
    w = FY_NEW(auth_wait);
    w->a = a;
    w->req = req;
    w->conn = conn;
    w->then = then;
    memcpy(w->user, dec, ar.username.len);
    w->user[ar.username.len] = '\0';
    rc = fy_auth_start(auth, &ar, auth_wait_done, w, &w->job);
    OPENSSL_cleanse(dec, sizeof(dec));
    if (rc == FY_AUTH_PENDING) {
        w->next = a->auth_waits;
        if (w->next) {
            w->next->prev = w;
        }
        a->auth_waits = w;
        if (conn) {
            evhttp_connection_set_closecb(conn, auth_wait_closed, w);
        }
        return false;
    }
    if (admin_judged(req, a, w->user, rc)) {
        fy_free(w);
        return true;
    }
    fy_free(w);
    return false;
}

/* ---- /health ------------------------------------------------------------------------------- */

static void adapter_stats(void *arg, const char *name, const fy_adapter_stats *st)
{
    json_object_set_new(arg, name,
                        json_pack("{s:I, s:I, s:I, s:I}", "connections",
                                  (json_int_t)st->connections, "sessions", (json_int_t)st->sessions,
                                  "messages_in", (json_int_t)st->messages_in, "messages_out",
                                  (json_int_t)st->messages_out));
}

static void handle_health(struct evhttp_request *req, void *arg)
{
    fy_admin *a = arg;
    fy_broker *b = a->b;
    fy_store_stats st;
    fy_store_counts counts;
    bool healthy = fy_store_healthy(b->store);

    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        reply_error(req, 405, "method not allowed");
        return;
    }
    fy_store_get_stats(b->store, &st);
    json_t *store = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "state", healthy ? "ok" : "unhealthy", "flush",
        b->cfg->flush == FY_FLUSH_SYNC ? "sync" : "async", "appends", (json_int_t)st.appends,
        "commits", (json_int_t)st.commits, "inline_commits", (json_int_t)st.inline_commits,
        "pending", (json_int_t)st.pending, "failed", (json_int_t)st.failed);
    json_object_set_new(store, "inline_slow", json_integer((json_int_t)st.inline_slow));
    json_object_set_new(store, "inline_paused", json_integer((json_int_t)st.inline_paused));
    json_object_set_new(store, "write_errors", json_integer((json_int_t)st.write_errors));
    json_object_set_new(store, "recoveries", json_integer((json_int_t)st.recoveries));
    fy_store_get_counts(b->store, &counts);
    json_object_set_new(store, "queues", json_integer((json_int_t)counts.queues));
    json_object_set_new(store, "erasing_topics", json_integer((json_int_t)counts.erasing));
    if (!healthy) {
        uint64_t since = fy_store_unhealthy_since(b->store);
        json_object_set_new(store, "error", json_string(fy_store_last_error(b->store)));
        if (since) {
            json_object_set_new(store, "unhealthy_for_ms",
                                json_integer((json_int_t)(fy_wall_ms() - since)));
        }
    }
    fy_core_stats cs;
    fy_core_get_stats(b->core, &cs);
    json_t *core =
        json_pack("{s:I, s:I, s:I, s:I}", "topics", (json_int_t)cs.topics, "groups",
                  (json_int_t)cs.groups, "retention_deleted", (json_int_t)cs.retention_deleted,
                  "retention_skipped", (json_int_t)cs.retention_skipped);
    json_object_set_new(core, "transactions",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "pending",
                                  (json_int_t)cs.tx_pending, "halves", (json_int_t)cs.tx_halves,
                                  "commits", (json_int_t)cs.tx_commits, "rollbacks",
                                  (json_int_t)cs.tx_rollbacks, "checks", (json_int_t)cs.tx_checks,
                                  "expired", (json_int_t)cs.tx_expired));
    json_t *adapters = json_object();
    fy_adapters_each_stats(b->adapters, adapter_stats, adapters);
    json_t *body = json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "status",
                             healthy ? "ok" : "degraded", "version", FERRY_VERSION, "uptime_s",
                             (json_int_t)((fy_mono_ms() - b->started_mono_ms) / 1000), "store",
                             store, "core", core, "adapters", adapters);
    reply_json(req, healthy ? 200 : 503, body);
}

/* ---- /metrics ------------------------------------------------------------------------------ */

static void metrics_serve(struct evhttp_request *req, fy_admin *a)
{
    struct evbuffer *out;
    fy_metrics_loop loop = {a->lag_s, a->lag_max_s};
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        reply_error(req, 405, "method not allowed");
        return;
    }
    out = evbuffer_new();
    fy_metrics_render(a->b, &loop, out);
    a->lag_max_s = a->lag_s;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void handle_metrics(struct evhttp_request *req, void *arg)
{
    fy_admin *a = arg;
    if (admin_allowed(req, a, metrics_serve)) {
        metrics_serve(req, a);
    }
}

/* ---- Loop tick: lag and rates -------------------------------------------------------------- */

typedef struct totals {
    uint64_t in, out;
} totals;

static void add_topic_totals(void *arg, const fy_topic_info *t)
{
    totals *s = arg;
    for (int p = 0; p < FY_PROTO_COUNT; p++) {
        s->in += t->counters->msgs_in[p];
        s->out += t->counters->msgs_out[p];
    }
}

static void arm_tick(fy_admin *a)
{
    struct timeval tv = {0, TICK_MS * 1000};
    a->tick_expected_ns = fy_mono_ns() + (uint64_t)TICK_MS * 1000000;
    event_add(a->tick_ev, &tv);
}

static void sample_topic(void *arg, const fy_topic_info *t)
{
    fy_admin *a = arg;
    uint64_t *slot = fy_u64map_upsert(&a->topic_rates, t->topic_id, 0);
    topic_rate *r = (topic_rate *)(uintptr_t)*slot;
    if (!r) {
        r = FY_NEW(topic_rate);
        *slot = (uint64_t)(uintptr_t)r;
    }
    r->seen = a->secs;
    r->in[a->sec_at] = r->out[a->sec_at] = 0;
    for (int p = 0; p < FY_PROTO_COUNT; p++) {
        r->in[a->sec_at] += t->counters->msgs_in[p];
        r->out[a->sec_at] += t->counters->msgs_out[p];
    }
}

static void no_member(void *arg, const fy_group_member_info *m)
{
}

static void sum_committed(void *arg, const fy_group_queue_info *q)
{
    *(uint64_t *)arg += q->committed;
}

static void sample_group(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    fy_admin *a = arg;
    group_rate *g = fy_strmap_get(&a->group_rates, name, strlen(name));
    uint64_t committed = 0;
    fy_sub_mode m;
    fy_core_group_describe(a->b->core, name, &m, no_member, sum_committed, &committed);
    if (!g) {
        /* first seen: the whole window holds today's value, so no jump from 0 shows as a rate */
        g = FY_NEW(group_rate);
        g->name = fy_strdup(name);
        for (size_t i = 0; i < SEC_SLOTS; i++) {
            g->committed[i] = committed;
        }
        fy_strmap_put(&a->group_rates, g->name, g);
    }
    g->committed[a->sec_at] = committed;
    g->seen = a->secs;
}

/* A topic not sampled in second *secs is gone (deleted): its samples go with it. */
static bool topic_gone(void *arg, uint64_t id, uint64_t val)
{
    topic_rate *r = (topic_rate *)(uintptr_t)val;
    if (r->seen == *(const uint64_t *)arg) {
        return false;
    }
    fy_free(r);
    return true;
}

typedef struct gone_groups {
    uint64_t secs;
    group_rate **list;
    size_t n;
} gone_groups;

static void find_gone(void *arg, const char *key, void *val)
{
    gone_groups *x = arg;
    group_rate *g = val;
    if (g->seen != x->secs) {
        x->list = fy_realloc(x->list, (x->n + 1) * sizeof(*x->list));
        x->list[x->n++] = g;
    }
}

static void group_rate_free(group_rate *g)
{
    fy_free(g->name);
    fy_free(g);
}

/* Once a second: every topic's counters and, while the groups' rates were asked for in the last
 * minute, every group's committed offsets (describing an offline group reads the store, and
 * MQTT's durable sessions are groups: thousands of them must not be read every second for
 * nobody). */
static void sample_second(fy_admin *a)
{
    gone_groups gone = {0};
    a->secs++;
    a->sec_at = (size_t)(a->secs % SEC_SLOTS);
    fy_core_topic_each(a->b->core, sample_topic, a);
    fy_u64map_del_if(&a->topic_rates, topic_gone, &a->secs);
    if (fy_mono_ms() < a->groups_wanted_until) {
        fy_core_group_each(a->b->core, sample_group, a);
    }
    gone.secs = a->secs;
    fy_strmap_each(&a->group_rates, find_gone, &gone);
    for (size_t i = 0; i < gone.n; i++) {
        fy_strmap_del(&a->group_rates, gone.list[i]->name);
        group_rate_free(gone.list[i]);
    }
    fy_free(gone.list);
}

/* Per second over the samples kept: newest minus oldest (never below 0: a reset moves committed
 * offsets back), over the seconds between them. */
static double sec_rate(const fy_admin *a, const uint64_t *samples)
{
    uint64_t span, newest, oldest;
    if (a->secs < 2) {
        return 0;
    }
    span = a->secs < SEC_SLOTS ? a->secs - 1 : SEC_SLOTS - 1;
    newest = samples[a->sec_at];
    oldest = samples[(a->secs - span) % SEC_SLOTS];
    if (newest <= oldest) {
        return 0;
    }
    return (double)(newest - oldest) / (double)span;
}

static void topic_rates(const fy_admin *a, uint32_t topic_id, double *in, double *out)
{
    uint64_t *slot = fy_u64map_find(&a->topic_rates, topic_id);
    *in = *out = 0;
    if (slot) {
        const topic_rate *r = (const topic_rate *)(uintptr_t)*slot;
        *in = sec_rate(a, r->in);
        *out = sec_rate(a, r->out);
    }
}

static double group_consume_rate(fy_admin *a, const char *name)
{
    const group_rate *g;
    a->groups_wanted_until = fy_mono_ms() + 60000;
    g = fy_strmap_get(&a->group_rates, name, strlen(name));
    return g ? sec_rate(a, g->committed) : 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    fy_admin *a = arg;
    uint64_t now = fy_mono_ns();
    totals t = {0, 0};
    a->lag_s = now > a->tick_expected_ns ? (double)(now - a->tick_expected_ns) / 1e9 : 0;
    if (a->lag_s > a->lag_max_s) {
        a->lag_max_s = a->lag_s;
    }
    fy_core_topic_each(a->b->core, add_topic_totals, &t);
    a->in_samples[a->sample_at] = t.in;
    a->out_samples[a->sample_at] = t.out;
    a->sample_at = (a->sample_at + 1) % RATE_SLOTS;
    if (a->nsamples < RATE_SLOTS) {
        a->nsamples++;
    }
    if (++a->ticks % TICKS_PER_SEC == 0) {
        sample_second(a);
    }
    arm_tick(a);
}

/* Messages per second over the samples kept (0 until two exist). */
static double rate_of(const fy_admin *a, const uint64_t *samples)
{
    size_t newest = (a->sample_at + RATE_SLOTS - 1) % RATE_SLOTS;
    size_t oldest = a->nsamples < RATE_SLOTS ? 0 : a->sample_at;
    if (a->nsamples < 2) {
        return 0;
    }
    return (double)(samples[newest] - samples[oldest]) /
           ((double)(a->nsamples - 1) * TICK_MS / 1000.0);
}

/* ---- /api/v1/overview ---------------------------------------------------------------------- */

static void count_native(void *arg, const fy_conn_info *ci)
{
    (*(json_int_t *)arg)++;
}

static void overview_adapter(void *arg, const char *name, const fy_adapter_stats *st)
{
    json_object_set_new(arg, name, json_integer((json_int_t)st->connections));
}

static void api_overview(route_req *r)
{
    fy_broker *b = r->a->b;
    fy_core_stats cs;
    fy_store_stats st;
    totals t = {0, 0};
    json_int_t native = 0;
    json_t *conns;
    if (!method_is(r, EVHTTP_REQ_GET)) {
        return;
    }
    conns = json_object();
    fy_core_get_stats(b->core, &cs);
    fy_store_get_stats(b->store, &st);
    fy_core_topic_each(b->core, add_topic_totals, &t);
    fy_native_each_connection(b->native, count_native, &native);
    json_object_set_new(conns, "native", json_integer(native));
    fy_adapters_each_stats(b->adapters, overview_adapter, conns);
    reply_json(r->req, 200,
               json_pack("{s:s, s:I, s:I, s:I, s:s, s:b, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}, "
                         "s:{s:I, s:I, s:f, s:f}, s:I}",
                         "version", FERRY_VERSION, "broker_id", (json_int_t)b->cfg->broker_id,
                         "uptime_s", (json_int_t)((fy_mono_ms() - b->started_mono_ms) / 1000),
                         "started_ms", (json_int_t)b->started_wall_ms, "flush",
                         b->cfg->flush == FY_FLUSH_SYNC ? "sync" : "async", "store_healthy",
                         fy_store_healthy(b->store), "connections", conns, "counts", "topics",
                         (json_int_t)cs.topics, "groups", (json_int_t)cs.groups, "delayed_pending",
                         (json_int_t)cs.delayed_pending, "half_pending", (json_int_t)cs.tx_pending,
                         "retries", (json_int_t)cs.retries, "dead_letters",
                         (json_int_t)cs.dead_letters, "messages", "in", (json_int_t)t.in, "out",
                         (json_int_t)t.out, "in_per_s", rate_of(r->a, r->a->in_samples),
                         "out_per_s", rate_of(r->a, r->a->out_samples), "resident_memory_bytes",
                         (json_int_t)fy_metrics_rss_bytes()));
}

/* ---- /api/v1/topics ------------------------------------------------------------------------ */

static bool internal_name(const char *name)
{
    return name[0] == '%'; /* %RETRY%, %DLQ%, %LQ% */
}

static json_t *counters_json(const fy_topic_counters *c)
{
    json_t *o = json_object();
    for (int p = 0; p < FY_PROTO_COUNT; p++) {
        if (c->msgs_in[p] || c->msgs_out[p]) {
            json_object_set_new(
                o, fy_proto_name((fy_proto)p),
                json_pack("{s:I, s:I, s:I, s:I}", "messages_in", (json_int_t)c->msgs_in[p],
                          "bytes_in", (json_int_t)c->bytes_in[p], "messages_out",
                          (json_int_t)c->msgs_out[p], "bytes_out", (json_int_t)c->bytes_out[p]));
        }
    }
    return o;
}

typedef struct topic_list {
    fy_admin *a;
    fy_core *core;
    json_t *arr;
    bool internal;
} topic_list;

static void list_topic(void *arg, const fy_topic_info *t)
{
    topic_list *l = arg;
    uint64_t msgs = 0, in = 0, out = 0;
    double in_rate, out_rate;
    json_t *o;
    if (!l->internal && internal_name(t->name)) {
        return;
    }
    for (uint32_t q = 0; q < t->queues; q++) {
        uint64_t min, max;
        fy_core_queue_range(l->core, t->topic_id, q, &min, &max);
        msgs += max - min;
    }
    for (int p = 0; p < FY_PROTO_COUNT; p++) {
        in += t->counters->msgs_in[p];
        out += t->counters->msgs_out[p];
    }
    topic_rates(l->a, t->topic_id, &in_rate, &out_rate);
    o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f}", "name", t->name, "id",
                  (json_int_t)t->topic_id, "queues", (json_int_t)t->queues, "messages",
                  (json_int_t)msgs, "messages_in", (json_int_t)in, "messages_out", (json_int_t)out,
                  "in_per_s", in_rate, "out_per_s", out_rate);
    json_array_append_new(l->arr, o);
}

static void topic_create_done(void *arg, int status)
{
    admin_op *op = arg;
    if (status == FY_OK) {
        op_finish(op, 201, json_incref(op->body));
        return;
    }
    op_done_simple(arg, status);
}

static void api_topics(route_req *r)
{
    fy_core *core = r->a->b->core;
    if (r->cmd == EVHTTP_REQ_GET) {
        const char *internal = query_get(r, "internal");
        topic_list l = {r->a, core, json_array(),
                        internal && (strcmp(internal, "true") == 0 || strcmp(internal, "1") == 0)};
        fy_core_topic_each(core, list_topic, &l);
        reply_json(r->req, 200, json_pack("{s:o}", "topics", l.arr));
        return;
    }
    if (r->cmd == EVHTTP_REQ_POST) {
        json_t *body = body_object(r), *jn, *jq;
        json_int_t queues = 0;
        const char *name;
        admin_op *op;
        int rc;
        if (!body) {
            return;
        }
        jn = json_object_get(body, "name");
        jq = json_object_get(body, "queues");
        if (!json_is_string(jn) || (jq && !json_is_integer(jq))) {
            json_decref(body);
            reply_error(r->req, 400, "expected {\"name\": string, \"queues\": integer}");
            return;
        }
        name = json_string_value(jn);
        queues = jq ? json_integer_value(jq) : 0;
        if (queues < 0 || queues > 1024) {
            json_decref(body);
            reply_error(r->req, 400, "queues must be 0..1024 (0: default_queues)");
            return;
        }
        if (!store_writable(r)) {
            json_decref(body);
            return;
        }
        op = op_new(r, NULL);
        rc = fy_core_topic_create(core, name, (uint32_t)queues, topic_create_done, op);
        if (rc != FY_OK) {
            op_unlink(op);
            fy_free(op);
            reply_core_error(r->req, rc, "cannot create the topic");
        } else {
            fy_topic_info ti;
            fy_core_topic_get(core, name, &ti);
            op->body = json_pack("{s:s, s:I, s:I}", "name", name, "id", (json_int_t)ti.topic_id,
                                 "queues", (json_int_t)ti.queues);
        }
        json_decref(body);
        return;
    }
    reply_error(r->req, 405, "method not allowed");
}

static void api_topic(route_req *r)
{
    fy_core *core = r->a->b->core;
    const char *name = r->segs[1];
    fy_topic_info t;
    if (fy_core_topic_get(core, name, &t) != FY_OK) {
        reply_error(r->req, 404, "no such topic");
        return;
    }
    if (r->cmd == EVHTTP_REQ_GET) {
        json_t *queues = json_array(), *o;
        uint64_t total = 0;
        double in_rate, out_rate;
        for (uint32_t q = 0; q < t.queues; q++) {
            uint64_t min, max;
            fy_core_queue_range(core, t.topic_id, q, &min, &max);
            total += max - min;
            json_array_append_new(queues,
                                  json_pack("{s:I, s:I, s:I, s:I}", "queue", (json_int_t)q,
                                            "min_offset", (json_int_t)min, "max_offset",
                                            (json_int_t)max, "messages", (json_int_t)(max - min)));
        }
        topic_rates(r->a, t.topic_id, &in_rate, &out_rate);
        o = json_pack("{s:s, s:I, s:b, s:I, s:f, s:f, s:o, s:o}", "name", t.name, "id",
                      (json_int_t)t.topic_id, "internal", internal_name(t.name), "messages",
                      (json_int_t)total, "in_per_s", in_rate, "out_per_s", out_rate, "queues",
                      queues, "counters", counters_json(t.counters));
        reply_json(r->req, 200, o);
        return;
    }
    if (r->cmd == EVHTTP_REQ_DELETE) {
        admin_op *op;
        int rc;
        if (!store_writable(r)) {
            return;
        }
        op = op_new(r, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
        rc = fy_core_topic_delete(core, name, op_done_simple, op);
        if (rc != FY_OK) {
            op_unlink(op);
            json_decref(op->body);
            fy_free(op);
            reply_core_error(r->req, rc, "cannot delete the topic");
        }
        return;
    }
    reply_error(r->req, 405, "method not allowed");
}

/* ---- /api/v1/groups ------------------------------------------------------------------------ */

static const char *mode_name(fy_sub_mode m)
{
    return m == FY_SUB_BROADCAST ? "broadcast" : "clustering";
}

typedef struct group_desc {
    json_t *members, *queues;
    uint64_t lag;
} group_desc;

static void desc_member(void *arg, const fy_group_member_info *m)
{
    group_desc *d = arg;
    if (!d->members) {
        return;
    }
    json_array_append_new(
        d->members,
        json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "member_id", (json_int_t)m->member_id,
                  "client_id", m->client_id ? m->client_id : "", "topic", m->topic ? m->topic : "",
                  "filter", m->filter ? m->filter : "", "credit", (json_int_t)m->credit, "inflight",
                  (json_int_t)m->inflight));
}

static void desc_queue(void *arg, const fy_group_queue_info *q)
{
    group_desc *d = arg;
    uint64_t lag = q->max_offset > q->committed ? q->max_offset - q->committed : 0;
    d->lag += lag;
    if (!d->queues) {
        return;
    }
    json_array_append_new(d->queues,
                          json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "topic", q->topic, "queue",
                                    (json_int_t)q->queue_id, "committed", (json_int_t)q->committed,
                                    "max_offset", (json_int_t)q->max_offset, "lag", (json_int_t)lag,
                                    "owner", (json_int_t)q->owner));
}

typedef struct group_list {
    fy_admin *a;
    fy_core *core;
    json_t *arr;
} group_list;

static void list_group(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    group_list *l = arg;
    group_desc d = {NULL, NULL, 0};
    fy_sub_mode m;
    fy_core_group_describe(l->core, name, &m, desc_member, desc_queue, &d);
    json_array_append_new(l->arr, json_pack("{s:s, s:s, s:I, s:I, s:f}", "name", name, "mode",
                                            mode_name(mode), "members", (json_int_t)members, "lag",
                                            (json_int_t)d.lag, "consumed_per_s",
                                            group_consume_rate(l->a, name)));
}

static void group_get(route_req *r, const char *name)
{
    fy_core *core = r->a->b->core;
    group_desc d = {json_array(), json_array(), 0};
    fy_sub_mode mode;
    fy_group_config gc;
    json_t *o;
    if (fy_core_group_describe(core, name, &mode, desc_member, desc_queue, &d) != FY_OK) {
        json_decref(d.members);
        json_decref(d.queues);
        reply_error(r->req, 404, "no such group");
        return;
    }
    o = json_pack("{s:s, s:s, s:I, s:f, s:o, s:o}", "name", name, "mode", mode_name(mode), "lag",
                  (json_int_t)d.lag, "consumed_per_s", group_consume_rate(r->a, name), "members",
                  d.members, "queues", d.queues);
    if (fy_core_group_config_get(core, name, &gc) == FY_OK) {
        json_object_set_new(o, "config",
                            json_pack("{s:o, s:I}", "max_reconsume",
                                      gc.max_reconsume == FY_GROUP_MAX_RECONSUME_DEFAULT
                                          ? json_null()
                                          : json_integer(gc.max_reconsume),
                                      "max_reconsume_effective",
                                      (json_int_t)gc.max_reconsume_effective));
    }
    reply_json(r->req, 200, o);
}

static void reset_queue(void *arg, uint32_t queue_id, uint64_t offset)
{
    admin_op *op = arg;
    json_array_append_new(
        json_object_get(op->body, "queues"),
        json_pack("{s:I, s:I}", "queue", (json_int_t)queue_id, "offset", (json_int_t)offset));
}

static void group_reset(route_req *r, const char *name)
{
    json_t *body = body_object(r), *jt, *jto;
    uint64_t ts;
    admin_op *op;
    int rc;
    if (!body) {
        return;
    }
    jt = json_object_get(body, "topic");
    jto = json_object_get(body, "to");
    if (!json_is_string(jt) || !jto) {
        json_decref(body);
        reply_error(r->req, 400,
                    "expected {\"topic\": string, \"to\": ms since the epoch | \"earliest\" | "
                    "\"latest\"}");
        return;
    }
    if (json_is_integer(jto) && json_integer_value(jto) >= 0) {
        ts = (uint64_t)json_integer_value(jto);
    } else if (json_is_string(jto) && strcmp(json_string_value(jto), "earliest") == 0) {
        ts = 0;
    } else if (json_is_string(jto) && strcmp(json_string_value(jto), "latest") == 0) {
        ts = UINT64_MAX;
    } else {
        json_decref(body);
        reply_error(r->req, 400, "'to' must be ms since the epoch, \"earliest\" or \"latest\"");
        return;
    }
    if (!store_writable(r)) {
        json_decref(body);
        return;
    }
    op = op_new(r,
                json_pack("{s:s, s:s, s:I, s:[]}", "group", name, "topic", json_string_value(jt),
                          "to_ms", (json_int_t)(ts == UINT64_MAX ? -1 : (json_int_t)ts), "queues"));
    rc = fy_core_group_reset(r->a->b->core, name, json_string_value(jt), ts, reset_queue,
                             op_done_simple, op);
    if (rc != FY_OK) {
        op_unlink(op);
        json_decref(op->body);
        fy_free(op);
        reply_core_error(r->req, rc, "cannot reset the group");
    }
    json_decref(body);
}

static void group_config(route_req *r, const char *name)
{
    json_t *body = body_object(r), *jm;
    int mr;
    fy_group_config gc;
    admin_op *op;
    int rc;
    if (!body) {
        return;
    }
    jm = json_object_get(body, "max_reconsume");
    if (json_is_integer(jm) && json_integer_value(jm) >= 0 &&
        json_integer_value(jm) <= FY_GROUP_MAX_RECONSUME_MAX) {
        mr = (int)json_integer_value(jm);
    } else if (json_is_null(jm) ||
               (json_is_string(jm) && strcmp(json_string_value(jm), "default") == 0)) {
        mr = FY_GROUP_MAX_RECONSUME_DEFAULT;
    } else {
        json_decref(body);
        reply_error(r->req, 400, "expected {\"max_reconsume\": 0..64 | null | \"default\"}");
        return;
    }
    json_decref(body);
    if (!store_writable(r)) {
        return;
    }
    op = op_new(r, NULL);
    rc = fy_core_group_set_max_reconsume(r->a->b->core, name, mr, &gc, op_done_simple, op);
    if (rc != FY_OK) {
        op_unlink(op);
        fy_free(op);
        reply_core_error(r->req, rc, "cannot configure the group");
        return;
    }
    op->body = json_pack(
        "{s:s, s:s, s:o, s:I}", "group", name, "mode", mode_name(gc.mode), "max_reconsume",
        gc.max_reconsume == FY_GROUP_MAX_RECONSUME_DEFAULT ? json_null()
                                                           : json_integer(gc.max_reconsume),
        "max_reconsume_effective", (json_int_t)gc.max_reconsume_effective);
}

/* ---- Dead letters -------------------------------------------------------------------------- */

typedef struct dlq_scan {
    fy_broker *b;
    uint32_t topic_id;
    json_t *arr;
} dlq_scan;

static int dlq_one(void *arg, uint64_t offset, const uint8_t *rec, size_t len)
{
    dlq_scan *s = arg;
    uint8_t id[FY_MSGID_LEN];
    json_t *m;
    fy_msgid_make(id, (uint16_t)s->b->cfg->broker_id, s->topic_id, 0, offset);
    m = record_json(id, rec, len);
    if (m) {
        json_array_append_new(s->arr, m);
    }
    return 0;
}

static void dlq_list(route_req *r, const char *group)
{
    fy_broker *b = r->a->b;
    char topic[FY_INTERNAL_NAME_MAX + 1];
    fy_topic_info t;
    uint64_t min, max, from, limit;
    fy_sub_mode mode;
    dlq_scan s;
    snprintf(topic, sizeof(topic), "%s%s", FY_DLQ_PREFIX, group);
    if (fy_core_topic_get(b->core, topic, &t) != FY_OK) {
        group_desc d = {NULL, NULL, 0};
        if (fy_core_group_describe(b->core, group, &mode, desc_member, desc_queue, &d) != FY_OK) {
            reply_error(r->req, 404, "no such group");
            return;
        }
        reply_json(r->req, 200,
                   json_pack("{s:s, s:s, s:b, s:I, s:I, s:[]}", "group", group, "topic", topic,
                             "exists", 0, "min_offset", (json_int_t)0, "max_offset", (json_int_t)0,
                             "messages"));
        return;
    }
    fy_core_queue_range(b->core, t.topic_id, 0, &min, &max);
    if (!query_u64(r, "from", min, &from) || !query_limit(r, &limit)) {
        return;
    }
    if (from < min) {
        from = min;
    }
    s = (dlq_scan){b, t.topic_id, json_array()};
    fy_store_scan(b->store, t.topic_id, 0, from, (size_t)limit, 0, dlq_one, &s);
    reply_json(r->req, 200,
               json_pack("{s:s, s:s, s:b, s:I, s:I, s:o}", "group", group, "topic", topic, "exists",
                         1, "min_offset", (json_int_t)min, "max_offset", (json_int_t)max,
                         "messages", s.arr));
}

/* Resent copies drop what would delay them again and the broker's routing property. */
static bool resend_drops(fy_slice name)
{
    static const char *const dropped[] = {FY_PROP_DELIVER_MS, FY_PROP_DELAY_MS, FY_PROP_DELAY_LEVEL,
                                          FY_PROP_REAL_TOPIC};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        if (name.len == strlen(dropped[i]) && memcmp(name.p, dropped[i], name.len) == 0) {
            return true;
        }
    }
    return false;
}

/* A dead letter as a new message for its original topic (the record's topic field): tag, keys,
 * properties and body kept, reconsume count and flags cleared. */
static int resend_record(const uint8_t *rec, size_t len, fy_buf *out)
{
    fy_record_view v;
    fy_record r = {0};
    fy_record_iter it;
    fy_slice *keys = NULL, *props = NULL, k, n, val;
    size_t nk = 0, np = 0;
    int rc;
    if (fy_record_decode(rec, len, &v) != FY_OK) {
        return -FY_ECORRUPT;
    }
    keys = fy_malloc((v.nkeys + 1) * sizeof(*keys));
    props = fy_malloc((2 * (size_t)v.nprops + 1) * sizeof(*props));
    it = fy_record_keys(&v);
    while (fy_record_key_next(&it, &k)) {
        keys[nk++] = k;
    }
    it = fy_record_props(&v);
    while (fy_record_prop_next(&it, &n, &val)) {
        if (!resend_drops(n)) {
            props[2 * np] = n;
            props[2 * np + 1] = val;
            np++;
        }
    }
    r.born_ms = v.born_ms;
    r.topic = v.topic;
    r.tag = v.tag;
    r.born_host = v.born_host;
    r.keys = keys;
    r.nkeys = (uint16_t)nk;
    r.props = props;
    r.nprops = (uint16_t)np;
    r.body = v.body;
    rc = fy_record_encode(&r, out);
    fy_free(keys);
    fy_free(props);
    return rc;
}

static void resend_done(void *arg, int status, const fy_produce_result *res, size_t n)
{
    admin_op *op = arg;
    json_t *arr;
    if (status != FY_OK) {
        op_done_simple(op, status);
        return;
    }
    arr = json_object_get(op->body, "resent");
    for (size_t i = 0; i < n && i < json_array_size(arr); i++) {
        char hex[FY_MSGID_HEX_LEN + 1];
        fy_msgid_to_hex(res[i].msgid, hex);
        json_object_set_new(json_array_get(arr, i), "new_msgid", json_string(hex));
    }
    op_finish(op, 200, json_incref(op->body));
}

static void dlq_resend(route_req *r, const char *group)
{
    fy_broker *b = r->a->b;
    char topic[FY_INTERNAL_NAME_MAX + 1];
    fy_topic_info t;
    json_t *body = body_object(r), *ids, *resent = NULL;
    fy_buf *recs = NULL;
    fy_produce_msg *msgs = NULL;
    size_t n = 0, bad = 0;
    admin_op *op;
    int rc;
    if (!body) {
        return;
    }
    ids = json_object_get(body, "msgids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > LIST_LIMIT_MAX) {
        reply_error(r->req, 400, "expected {\"msgids\": [1..1000 message ids of the DLQ]}");
        goto out;
    }
    snprintf(topic, sizeof(topic), "%s%s", FY_DLQ_PREFIX, group);
    if (fy_core_topic_get(b->core, topic, &t) != FY_OK) {
        reply_error(r->req, 404, "the group has no dead-letter queue");
        goto out;
    }
    n = json_array_size(ids);
    recs = fy_calloc(n, sizeof(*recs));
    msgs = fy_calloc(n, sizeof(*msgs));
    resent = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *ji = json_array_get(ids, i);
        uint8_t id[FY_MSGID_LEN];
        uint16_t bid, qid;
        uint32_t tid;
        uint64_t off;
        fy_buf rec = FY_BUF_INIT;
        char msg[400];
        if (!json_is_string(ji) ||
            fy_msgid_from_hex(json_string_value(ji), json_string_length(ji), id) != FY_OK) {
            reply_error(r->req, 400, "msgids must be 32 hex digits each");
            goto out;
        }
        fy_msgid_parse(id, &bid, &tid, &qid, &off);
        if (tid != t.topic_id || fy_core_message_get(b->core, id, &rec) != FY_OK) {
            fy_buf_free(&rec);
            snprintf(msg, sizeof(msg), "%s is not a message of %s", json_string_value(ji), topic);
            reply_error(r->req, 404, msg);
            goto out;
        }
        rc = resend_record(rec.data, rec.len, &recs[i]);
        fy_buf_free(&rec);
        if (rc != FY_OK) {
            reply_core_error(r->req, rc, "cannot read the dead letter");
            goto out;
        }
        msgs[i].record = (fy_slice){recs[i].data, recs[i].len};
        msgs[i].proto = FY_PROTO_INTERNAL;
        json_array_append_new(resent, json_pack("{s:O}", "msgid", ji));
    }
    if (!store_writable(r)) {
        goto out;
    }
    op = op_new(r, json_pack("{s:s, s:o}", "group", group, "resent", resent));
    resent = NULL;
    rc = fy_core_produce(b->core, msgs, n, resend_done, op, &bad);
    if (rc != FY_OK) {
        op_unlink(op);
        json_decref(op->body);
        fy_free(op);
        reply_core_error(r->req, rc, "cannot resend");
    }
out:
    for (size_t i = 0; recs && i < n; i++) {
        fy_buf_free(&recs[i]);
    }
    fy_free(recs);
    fy_free(msgs);
    json_decref(resent);
    json_decref(body);
}

static void api_group(route_req *r)
{
    const char *name = r->segs[1];
    if (r->nsegs == 2) {
        if (method_is(r, EVHTTP_REQ_GET)) {
            group_get(r, name);
        }
    } else if (r->nsegs == 3 && strcmp(r->segs[2], "reset") == 0) {
        if (method_is(r, EVHTTP_REQ_POST)) {
            group_reset(r, name);
        }
    } else if (r->nsegs == 3 && strcmp(r->segs[2], "config") == 0) {
        if (method_is(r, EVHTTP_REQ_PUT)) {
            group_config(r, name);
        }
    } else if (r->nsegs == 3 && strcmp(r->segs[2], "dlq") == 0) {
        if (method_is(r, EVHTTP_REQ_GET)) {
            dlq_list(r, name);
        }
    } else if (r->nsegs == 4 && strcmp(r->segs[2], "dlq") == 0 &&
               strcmp(r->segs[3], "resend") == 0) {
        if (method_is(r, EVHTTP_REQ_POST)) {
            dlq_resend(r, name);
        }
    } else {
        reply_error(r->req, 404, "no such route");
    }
}

/* ---- /api/v1/connections ------------------------------------------------------------------- */

static void conn_json(void *arg, const fy_conn_info *ci)
{
    json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:I}", "id", (json_int_t)ci->id, "client_id",
                          ci->client_id ? ci->client_id : "", "remote", ci->peer ? ci->peer : "",
                          "subscriptions", (json_int_t)ci->subscriptions, "inflight",
                          (json_int_t)ci->inflight);
    json_object_set_new(o, "user", ci->user ? json_string(ci->user) : json_null());
    json_array_append_new(arg, o);
}

static const char *const protocols[] = {"native", "mqtt", "amqp"};

/* Lists one protocol's connections into arr: FY_OK, -FY_ENOTFOUND (not enabled), -FY_ENOTSUP. */
static int list_conns(fy_broker *b, const char *proto, json_t *arr)
{
    if (strcmp(proto, "native") == 0) {
        fy_native_each_connection(b->native, conn_json, arr);
        return FY_OK;
    }
    return fy_adapters_each_connection(b->adapters, proto, conn_json, arr);
}

static bool known_protocol(const char *p)
{
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
        if (strcmp(protocols[i], p) == 0) {
            return true;
        }
    }
    return false;
}

static void api_connections(route_req *r)
{
    fy_broker *b = r->a->b;
    if (r->nsegs == 1) {
        json_t *o = json_object();
        if (!method_is(r, EVHTTP_REQ_GET)) {
            json_decref(o);
            return;
        }
        for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
            json_t *arr = json_array();
            if (list_conns(b, protocols[i], arr) == FY_OK) {
                json_object_set_new(o, protocols[i], arr);
            } else {
                json_decref(arr);
            }
        }
        reply_json(r->req, 200, json_pack("{s:o}", "connections", o));
        return;
    }
    if (!known_protocol(r->segs[1])) {
        reply_error(r->req, 404, "no such protocol (native, mqtt, amqp)");
        return;
    }
    if (r->nsegs == 2) {
        json_t *arr = json_array();
        int rc;
        if (!method_is(r, EVHTTP_REQ_GET)) {
            json_decref(arr);
            return;
        }
        rc = list_conns(b, r->segs[1], arr);
        if (rc != FY_OK) {
            json_decref(arr);
            reply_error(r->req, 404, "protocol not enabled");
            return;
        }
        reply_json(r->req, 200,
                   json_pack("{s:s, s:o}", "protocol", r->segs[1], "connections", arr));
        return;
    }
    if (r->nsegs == 3) {
        char *end;
        uint64_t id;
        int rc;
        if (!method_is(r, EVHTTP_REQ_DELETE)) {
            return;
        }
        errno = 0;
        id = strtoull(r->segs[2], &end, 10);
        if (*end || errno || !r->segs[2][0]) {
            reply_error(r->req, 400, "a connection id is a decimal number");
            return;
        }
        rc = strcmp(r->segs[1], "native") == 0 ? fy_native_kick(b->native, id)
                                               : fy_adapters_kick(b->adapters, r->segs[1], id);
        if (rc != FY_OK) {
            reply_core_error(r->req, rc, "cannot kick");
            return;
        }
        fy_log(INFO, "admin", "protocol=%s conn=%llu msg=\"connection kicked\"", r->segs[1],
               (unsigned long long)id);
        reply_json(r->req, 200,
                   json_pack("{s:s, s:I, s:b}", "protocol", r->segs[1], "id", (json_int_t)id,
                             "kicked", 1));
        return;
    }
    reply_error(r->req, 404, "no such route");
}

/* ---- /api/v1/messages ---------------------------------------------------------------------- */

static void found_by_key(void *arg, const uint8_t msgid[FY_MSGID_LEN], const uint8_t *rec,
                         size_t len)
{
    json_t *m = record_json(msgid, rec, len);
    if (m) {
        json_array_append_new(arg, m);
    }
}

static void api_messages(route_req *r)
{
    fy_core *core = r->a->b->core;
    if (!method_is(r, EVHTTP_REQ_GET)) {
        return;
    }
    if (r->nsegs == 2) {
        uint8_t id[FY_MSGID_LEN];
        fy_buf rec = FY_BUF_INIT;
        json_t *m;
        int rc;
        if (fy_msgid_from_hex(r->segs[1], strlen(r->segs[1]), id) != FY_OK) {
            reply_error(r->req, 400, "a message id is 32 hex digits");
            return;
        }
        rc = fy_core_message_get(core, id, &rec);
        if (rc != FY_OK) {
            fy_buf_free(&rec);
            reply_core_error(r->req, rc == -FY_EINVAL ? -FY_ENOTFOUND : rc, "no such message");
            return;
        }
        m = record_json(id, rec.data, rec.len);
        fy_buf_free(&rec);
        if (!m) {
            reply_error(r->req, 500, "the stored record does not decode");
            return;
        }
        reply_json(r->req, 200, m);
        return;
    }
    if (r->nsegs == 1) {
        const char *topic = query_get(r, "topic"), *key = query_get(r, "key");
        uint64_t since, until, limit;
        json_t *arr;
        int rc;
        if (!topic || !*topic || !key || !*key) {
            reply_error(r->req, 400, "query parameters topic and key are required");
            return;
        }
        if (!query_u64(r, "since", 0, &since) || !query_u64(r, "until", UINT64_MAX, &until) ||
            !query_limit(r, &limit)) {
            return;
        }
        arr = json_array();
        rc = fy_core_find_by_key(core, topic, key, since, until, (size_t)limit, found_by_key, arr);
        if (rc != FY_OK) {
            json_decref(arr);
            reply_core_error(r->req, rc, "cannot look up");
            return;
        }
        reply_json(r->req, 200,
                   json_pack("{s:s, s:s, s:o}", "topic", topic, "key", key, "messages", arr));
        return;
    }
    reply_error(r->req, 404, "no such route");
}

/* ---- /api/v1/config ------------------------------------------------------------------------ */

static void api_config(route_req *r)
{
    fy_buf text = FY_BUF_INIT;
    json_t *sections = json_object(), *cur;
    char *line, *save = NULL, *copy;
    if (!method_is(r, EVHTTP_REQ_GET)) {
        json_decref(sections);
        return;
    }
    fy_config_format(r->a->b->conf, &text);
    copy = fy_malloc(text.len + 1);
    memcpy(copy, text.data, text.len);
    copy[text.len] = '\0';
    cur = json_object();
    json_object_set_new(sections, "", cur);
    /* The text is `key value` lines and `[section]` headers (broker/config.h). */
    for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sp;
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        if (line[0] == '[') {
            char *end = strchr(line, ']');
            if (end) {
                *end = '\0';
            }
            cur = json_object();
            json_object_set_new(sections, line + 1, cur);
            continue;
        }
        sp = strchr(line, ' ');
        if (sp) {
            *sp = '\0';
            json_object_set_new(cur, line, json_string(sp + 1));
        } else {
            json_object_set_new(cur, line, json_string(""));
        }
    }
    reply_json(
        r->req, 200,
        json_pack("{s:o, s:s%}", "sections", sections, "text", (const char *)text.data, text.len));
    fy_free(copy);
    fy_buf_free(&text);
}

/* ---- Routing ------------------------------------------------------------------------------- */

static void api_dispatch(route_req *r)
{
    const char *s0 = r->segs[0];
    if (strcmp(s0, "overview") == 0 && r->nsegs == 1) {
        api_overview(r);
    } else if (strcmp(s0, "topics") == 0 && r->nsegs == 1) {
        api_topics(r);
    } else if (strcmp(s0, "topics") == 0 && r->nsegs == 2) {
        api_topic(r);
    } else if (strcmp(s0, "groups") == 0 && r->nsegs == 1) {
        if (method_is(r, EVHTTP_REQ_GET)) {
            group_list l = {r->a, r->a->b->core, json_array()};
            fy_core_group_each(r->a->b->core, list_group, &l);
            reply_json(r->req, 200, json_pack("{s:o}", "groups", l.arr));
        }
    } else if (strcmp(s0, "groups") == 0) {
        api_group(r);
    } else if (strcmp(s0, "connections") == 0) {
        api_connections(r);
    } else if (strcmp(s0, "messages") == 0) {
        api_messages(r);
    } else if (strcmp(s0, "config") == 0 && r->nsegs == 1) {
        api_config(r);
    } else {
        reply_error(r->req, 404, "no such route");
    }
}

/* A browser that holds the console's credentials must not let another site's page change the
 * broker (cross-site request forgery: an HTML form can POST text/plain to any address). Browsers
 * send Origin with every POST, PUT and DELETE; a request whose Origin is not this listener's own
 * (its Host) is refused. Clients that are not browsers (curl, ferryctl) send no Origin. */
static bool same_origin(struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *origin = evhttp_find_header(in, "Origin");
    const char *host = evhttp_find_header(in, "Host");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD || !origin) {
        return true;
    }
    if (strncmp(origin, "http://", 7) == 0) {
        origin += 7;
    } else if (strncmp(origin, "https://", 8) == 0) {
        origin += 8;
    } else {
        return false; /* "null" (a sandboxed or file: page) and anything else */
    }
    return host && strcasecmp(origin, host) == 0;
}

static void request_serve(struct evhttp_request *req, fy_admin *a)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    route_req r = {0};
    char *copy = NULL, *seg, *save = NULL;

    if (!same_origin(req)) {
        reply_error(req, 403, "cross-origin request refused (Origin is not this listener)");
        return;
    }
    r.a = a;
    r.req = req;
    r.cmd = evhttp_request_get_command(req);
    if (path && strncmp(path, API, strlen(API)) != 0 && fy_console_find(path)) {
        fy_console_serve(req, fy_console_find(path));
        return;
    }
    if (!path || strncmp(path, API, strlen(API)) != 0) {
        reply_error(req, 404, "no such route");
        return;
    }
    if (query) {
        if (evhttp_parse_query_str(query, &r.query) != 0) {
            evhttp_clear_headers(&r.query);
            reply_error(req, 400, "malformed query string");
            return;
        }
        r.has_query = true;
    }
    copy = fy_strdup(path + strlen(API));
    for (seg = strtok_r(copy, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (r.nsegs == MAX_SEGS) {
            reply_error(req, 404, "no such route");
            goto out;
        }
        r.segs[r.nsegs] = evhttp_uridecode(seg, 0, NULL);
        if (!r.segs[r.nsegs]) {
            reply_error(req, 400, "malformed path");
            goto out;
        }
        r.nsegs++;
    }
    if (r.nsegs == 0) {
        reply_error(req, 404, "no such route");
        goto out;
    }
    api_dispatch(&r);
out:
    for (size_t i = 0; i < r.nsegs; i++) {
        free(r.segs[i]);
    }
    if (r.has_query) {
        evhttp_clear_headers(&r.query);
    }
    fy_free(copy);
}

static void handle_request(struct evhttp_request *req, void *arg)
{
    fy_admin *a = arg;
    if (admin_allowed(req, a, request_serve)) {
        request_serve(req, a);
    }
}

/* HTTPS ([admin] tls): evhttp takes a TLS bufferevent for each accepted socket (the socket is
 * attached by evhttp afterwards, which starts the handshake). */
static struct bufferevent *admin_tls_bev(struct event_base *base, void *arg)
{
    fy_admin *a = arg;
    return fy_tls_bev_new(a->b->tls, base, -1);
}

int fy_admin_start(fy_broker *b, const char *addr, uint16_t port, fy_admin **out, char *err,
                   size_t errlen)
{
    fy_admin *a = FY_NEW(fy_admin);
    struct evhttp_bound_socket *sock;
    a->b = b;
    a->http = evhttp_new(b->base);
    if (!a->http) {
        snprintf(err, errlen, "cannot create the admin HTTP server");
        goto fail;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_max_body_size(a->http, 1 << 20);
    evhttp_set_max_headers_size(a->http, 64 << 10);
    evhttp_set_timeout(a->http, 30);
    evhttp_set_cb(a->http, "/health", handle_health, a);
    evhttp_set_cb(a->http, "/metrics", handle_metrics, a);
    evhttp_set_gencb(a->http, handle_request, a);
    if (b->cfg->admin.tls && b->tls) {
        evhttp_set_bevcb(a->http, admin_tls_bev, a);
    }
    sock = evhttp_bind_socket_with_handle(a->http, addr, port);
    if (!sock) {
        snprintf(err, errlen, "cannot listen on %s:%u for admin HTTP: %s", addr, port,
                 strerror(errno));
        goto fail;
    }
    {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        evutil_socket_t fd = evhttp_bound_socket_get_fd(sock);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
            if (ss.ss_family == AF_INET) {
                a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            } else if (ss.ss_family == AF_INET6) {
                a->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            }
        }
    }
    a->tick_ev = event_new(b->base, -1, 0, on_tick, a);
    arm_tick(a);
    fy_log(INFO, "admin", "addr=%s port=%u msg=\"admin %s listening\"", addr, a->port,
           b->cfg->admin.tls && b->tls ? "HTTPS" : "HTTP");
    *out = a;
    return FY_OK;
fail:
    fy_admin_stop(a);
    return -FY_EIO;
}

uint16_t fy_admin_port(const fy_admin *a)
{
    return a->port;
}

void fy_admin_stop(fy_admin *a)
{
    if (!a) {
        return;
    }
    /* Operations still waiting for the core are answered to nobody: their completions (at the
     * latest -FY_ECANCELED when the core closes) only free them. */
    while (a->ops) {
        admin_op *op = a->ops;
        op_unlink(op);
        op->req = NULL;
    }
    /* Requests waiting for their password check are never answered: evhttp_free drops them. */
    while (a->auth_waits) {
        auth_wait *w = a->auth_waits;
        fy_auth_cancel(a->b->auth, w->job);
        auth_wait_unlink(w);
        fy_free(w);
    }
    if (a->tick_ev) {
        event_free(a->tick_ev);
    }
    {
        gone_groups all = {UINT64_MAX, NULL, 0};
        fy_strmap_each(&a->group_rates, find_gone, &all);
        for (size_t i = 0; i < all.n; i++) {
            group_rate_free(all.list[i]);
        }
        fy_free(all.list);
        fy_strmap_free(&a->group_rates);
        uint64_t never = UINT64_MAX; /* every topic: gone */
        fy_u64map_del_if(&a->topic_rates, topic_gone, &never);
        fy_u64map_free(&a->topic_rates);
    }
    if (a->http) {
        evhttp_free(a->http);
    }
    fy_free(a);
}
