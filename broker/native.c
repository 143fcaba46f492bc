/* SPDX-License-Identifier: Apache-2.0 */
/* Native protocol connections on bufferevents: frame parsing, one handler per request type,
 * responses after the core's completions, and DELIVER frames pushed under credit. A malformed
 * frame closes only its own connection, with a log line saying why. */
#include "broker/native.h"

#include "adapters/adapter.h"
#include "broker/auth.h"
#include "broker/limits.h"
#include "broker/listener.h"
#include "broker/tls.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/wire.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_PENDING 1024           /* requests waiting for the store before we stop reading */
#define OUT_HIGH_WATER (64u << 20) /* stop reading requests while this much output is queued */
#define CREDIT_CHUNK 256           /* credit a subscription holds in the core at most */
/* Input held while HELLO's password check runs: reading stops beyond this much (reading on below
 * it notices a client that goes away, which cancels the check). */
#define AUTH_HOLD_MAX (64u << 10)

typedef struct nconn nconn;

typedef struct nsub {
    uint32_t sub_id;
    fy_sub *sub;
    nconn *conn;
    /* The client's credit reaches the core in chunks, and only while the socket keeps up
     * (max_queued_bytes): a client that never reads holds little in broker memory. */
    uint64_t held;        /* granted by the client, not yet given to the core */
    uint32_t core_credit; /* given to the core, not yet used by a delivery */
} nsub;

/* This connection answers check-backs for a producer group. */
typedef struct nchecker {
    char *group;
    fy_tx_checker *k;
    nconn *conn;
} nchecker;

struct nconn {
    fy_native *srv;
    struct bufferevent *bev;
    uint64_t id;
    char peer[64];
    char *client_id;
    char *user; /* authenticated user name; NULL: anonymous */
    bool hello;
    bool tls;            /* accepted on the TLS listener */
    bool close_on_drain; /* refused: close once the answer is written */
    bool closed;         /* socket gone; waiting for pending completions before the free */
    bool read_paused;
    fy_limit_verdict verdict; /* from fy_limits_accept: REFUSE answers HELLO with ELIMIT */
    struct event *hello_ev;   /* closes the connection if HELLO has not come in time */
    uint64_t hello_deadline;  /* mono ms; moved on by the time HELLO's password check waited */
    uint64_t hello_paused_at; /* mono ms: when HELLO's pending password check began */
    uint32_t pending;         /* requests waiting for a core completion */
    /* HELLO's password check, while it runs off the loop: no further request is handled. */
    fy_auth_job *auth_job;
    bool input_ended; /* the client's input ended meanwhile: it closes after what came before */
    uint32_t auth_id; /* the HELLO's request id */
    char *auth_user;  /* the user it names; NULL: anonymous */
    nsub **subs;
    size_t nsubs, capsubs;
    nchecker **checkers;
    size_t ncheckers, capcheckers;
    fy_buf out;
    nconn *next, *prev;
};

struct fy_native {
    struct event_base *base;
    fy_core *core;
    fy_auth *auth; /* NULL: everyone may do anything */
    uint16_t broker_id;
    size_t max_frame;
    struct evconnlistener *listener;
    uint16_t port;
    struct evconnlistener *tls_listener; /* NULL without [tls] certfile */
    uint16_t tls_port;
    fy_tls *tls;
    uint64_t next_conn_id;
    nconn *conns;
    fy_limits *limits;         /* NULL: none */
    uint64_t hello_timeout_ms; /* 0: none */
};

/* Decoding scratch: large fixed arrays, used only on the loop thread, one request at a time. */
static fy_w_send send_scratch;
static fy_w_ack ack_scratch;
static fy_produce_msg produce_scratch[FY_WIRE_MAX_BATCH];

static void conn_close(nconn *c, const char *why);

/* ---- Output -------------------------------------------------------------------------------- */

static void flush_out(nconn *c)
{
    if (!c->closed && c->out.len > 0) {
        bufferevent_write(c->bev, c->out.data, c->out.len);
    }
    fy_buf_reset(&c->out);
}

static void reply_error(nconn *c, uint32_t id, int err, const char *msg)
{
    fy_wire_enc_error(&c->out, id, err < 0 ? -err : err, msg ? msg : fy_strerror(err));
    flush_out(c);
}

static void reply_ok_empty(nconn *c, uint32_t id)
{
    size_t start = fy_wire_ok_begin(&c->out, id);
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
}

/* ---- Pending completions ------------------------------------------------------------------- */

typedef struct req_ctx {
    nconn *c;
    uint32_t id;
    bool noreply; /* the request asked for no answer */
} req_ctx;

static void conn_free(nconn *c)
{
    fy_buf_free(&c->out);
    fy_free(c->subs);
    fy_free(c->checkers);
    fy_free(c->client_id);
    fy_free(c->user);
    fy_free(c->auth_user);
    fy_free(c);
}

static void maybe_resume_reading(nconn *c);

/* Ends a pending request: returns false if the connection is gone (and frees it when this was
 * the last thing it waited for). */
static bool req_finish(req_ctx *x)
{
    nconn *c = x->c;
    c->pending--;
    if (c->closed) {
        if (c->pending == 0) {
            conn_free(c);
        }
        return false;
    }
    maybe_resume_reading(c);
    return true;
}

static req_ctx *req_new(nconn *c, uint32_t id)
{
    req_ctx *x = FY_NEW(req_ctx);
    x->c = c;
    x->id = id;
    c->pending++;
    return x;
}

static void req_done_empty(void *arg, int status)
{
    req_ctx *x = arg;
    if (req_finish(x)) {
        if (status == FY_OK) {
            reply_ok_empty(x->c, x->id);
        } else {
            reply_error(x->c, x->id, status, NULL);
        }
    }
    fy_free(x);
}

/* ---- Handlers ------------------------------------------------------------------------------ */

/* Copies a wire string into a NUL-terminated buffer; false if it does not fit or holds NUL. */
static bool slice_cstr(fy_slice s, char *buf, size_t n)
{
    if (s.len >= n || memchr(s.p, 0, s.len)) {
        return false;
    }
    memcpy(buf, s.p, s.len);
    buf[s.len] = '\0';
    return true;
}

/* Whether this connection's user may do op on name (a topic or group); answers -FY_EPERM with
 * what was refused when not. */
static bool allowed(nconn *c, uint32_t id, fy_acl_op op, fy_slice name)
{
    static const char *const what[] = {"", "read topic", "write to topic",
                                       "", "use group",  "administer topics and groups"};
    char msg[200];
    if (!c->srv->auth ||
        fy_auth_authorize(c->srv->auth, c->user, c->client_id, "native", op, name) == FY_OK) {
        return true;
    }
    snprintf(msg, sizeof(msg), "not authorized to %s%s%.*s", what[op],
             op == FY_ACL_ADMIN ? "" : " ",
             op == FY_ACL_ADMIN ? 0 : (int)(name.len > 127 ? 127 : name.len),
             name.p ? (const char *)name.p : "");
    fy_log(INFO, "native", "conn=%llu peer=%s user=%s msg=\"refused: %s\"",
           (unsigned long long)c->id, c->peer, c->user ? c->user : "(anonymous)", msg);
    reply_error(c, id, -FY_EPERM, msg);
    return false;
}

/* The topic of an encoded record, for the ACL; an undecodable record is refused later by the
 * core. */
static fy_slice record_topic(fy_slice rec)
{
    fy_record_view v;
    if (fy_record_decode(rec.p, rec.len, &v) != FY_OK) {
        return (fy_slice){NULL, 0};
    }
    return v.topic;
}

/* Refuses HELLO: the answer goes out, then the connection closes. */
static void hello_refuse(nconn *c, uint32_t id, int err, const char *why)
{
    reply_error(c, id, err, why);
    c->close_on_drain = true;
    bufferevent_disable(c->bev, EV_READ);
}

/* HELLO accepted: c->user is the user (NULL: anonymous). */
static void hello_ok(nconn *c, uint32_t id)
{
    fy_w_hello_ok ok;
    c->hello = true;
    if (c->hello_ev) {
        /* The hello timeout is over: freed, so that a later HELLO whose check is pending does
         * not start it again (hello_pause and hello_resume do nothing without it). */
        event_free(c->hello_ev);
        c->hello_ev = NULL;
    }
    ok.version = FY_WIRE_VERSION;
    ok.broker_id = c->srv->broker_id;
    ok.max_frame = (uint32_t)c->srv->max_frame;
    ok.broker_version = fy_slice_str(FERRY_VERSION);
    fy_wire_enc_hello_ok(&c->out, id, &ok);
    flush_out(c);
}

/* The credentials of HELLO id are judged (result of the authentication hook): user (owned, NULL:
 * anonymous) is in, or HELLO is refused. */
static void hello_judged(nconn *c, uint32_t id, int result, char *user)
{
    if (result == FY_OK) {
        fy_free(c->user);
        c->user = user;
        hello_ok(c, id);
        return;
    }
    if (result == -FY_EAGAIN || result == -FY_ECANCELED) {
        hello_refuse(c, id, -FY_EAGAIN, "server busy: too many password checks pending");
    } else {
        hello_refuse(c, id, -FY_EPERM,
                     user ? "bad user name or password" : "anonymous clients are not allowed");
    }
    fy_free(user);
}

static void on_read(struct bufferevent *bev, void *arg);

/* HELLO's password check is pending: hello_timeout stands still until hello_resume. The client
 * sent HELLO in time; its check may wait behind auth_max_pending others. */
static void hello_pause(nconn *c)
{
    if (c->hello_ev) {
        event_del(c->hello_ev);
        c->hello_paused_at = fy_mono_ms();
    }
}

/* The check answered: hello_timeout runs again with what was left of it (a refused client must
 * still take its answer in that time). */
static void hello_resume(nconn *c)
{
    uint64_t now = fy_mono_ms();
    struct timeval tv;
    if (!c->hello_ev) {
        return;
    }
    c->hello_deadline += now - c->hello_paused_at;
    tv = fy_ms_timeval(c->hello_deadline > now ? c->hello_deadline - now : 0);
    evtimer_add(c->hello_ev, &tv);
}

/* The answer to HELLO's pending password check; the requests that came after it are handled
 * now. */
static void hello_checked(void *arg, int result)
{
    nconn *c = arg; /* not closed: a connection that closes cancels its check */
    char *user = c->auth_user;
    c->auth_job = NULL;
    c->auth_user = NULL;
    hello_resume(c);
    hello_judged(c, c->auth_id, result, user);
    if (!c->close_on_drain) {
        if (!c->read_paused && !c->input_ended) {
            bufferevent_enable(c->bev, EV_READ);
        }
        on_read(c->bev, c); /* closes c at the end of the input that came meanwhile */
    }
}

static int handle_hello(nconn *c, const fy_frame *f)
{
    fy_w_hello m;
    if (fy_wire_dec_hello(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (m.version < 1) {
        reply_error(c, f->id, -FY_EVERSION, "protocol version 1 required");
        return -FY_EVERSION;
    }
    fy_free(c->client_id);
    c->client_id = fy_strndup((const char *)m.client_id.p, m.client_id.len);
    if (c->verdict == FY_LIMIT_REFUSE) {
        char why[96];
        snprintf(why, sizeof(why), "too many connections (max_connections %llu)",
                 (unsigned long long)fy_limits_max_connections(c->srv->limits));
        hello_refuse(c, f->id, -FY_ELIMIT, why);
        return FY_OK;
    }
    if (c->tls && fy_tls_identity_is_username(c->srv->tls)) {
        /* use_identity_as_username: the verified certificate is the credential. */
        char ident[256];
        if (fy_tls_peer_identity(c->bev, ident, sizeof(ident)) != FY_OK) {
            hello_refuse(c, f->id, -FY_EPERM, "no client certificate identity");
            return FY_OK;
        }
        fy_free(c->user);
        c->user = fy_strdup(ident);
    } else if (c->srv->auth) {
        bool named = m.has_credentials && m.username.len > 0;
        fy_auth_request ar = {"native",   c->client_id, c->peer,   named,
                              m.username, named,        m.password};
        char *user = named ? fy_strndup((const char *)m.username.p, m.username.len) : NULL;
        int rc = named && memchr(m.username.p, 0, m.username.len)
                     ? -FY_EPERM
                     : fy_auth_start(c->srv->auth, &ar, hello_checked, c, &c->auth_job);
        if (rc == FY_AUTH_PENDING) {
            /* Nothing more is handled until the answer (on_read stops while auth_job). */
            c->auth_id = f->id;
            c->auth_user = user;
            hello_pause(c);
            return FY_OK;
        }
        hello_judged(c, f->id, rc, user);
        return FY_OK;
    }
    hello_ok(c, f->id);
    return FY_OK;
}

static int handle_topic_create(nconn *c, const fy_frame *f)
{
    fy_w_topic m;
    char name[128];
    req_ctx *x;
    int rc;
    if (fy_wire_dec_topic(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(m.name, name, sizeof(name))) {
        reply_error(c, f->id, -FY_EBADNAME, "bad topic name");
        return FY_OK;
    }
    if (!allowed(c, f->id, FY_ACL_ADMIN, m.name)) {
        return FY_OK;
    }
    x = req_new(c, f->id);
    rc = fy_core_topic_create(c->srv->core, name, m.queues, req_done_empty, x);
    if (rc != FY_OK) {
        req_finish(x);
        fy_free(x);
        reply_error(c, f->id, rc, rc == -FY_EINVAL ? "queues must be 1..1024" : NULL);
    }
    return FY_OK;
}

static int handle_topic_delete(nconn *c, const fy_frame *f)
{
    fy_slice s;
    char name[128];
    req_ctx *x;
    int rc;
    if (fy_wire_dec_str(f, &s) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(s, name, sizeof(name))) {
        reply_error(c, f->id, -FY_ENOTFOUND, "no such topic");
        return FY_OK;
    }
    if (!allowed(c, f->id, FY_ACL_ADMIN, s)) {
        return FY_OK;
    }
    x = req_new(c, f->id);
    rc = fy_core_topic_delete(c->srv->core, name, req_done_empty, x);
    if (rc != FY_OK) {
        req_finish(x);
        fy_free(x);
        reply_error(c, f->id, rc, rc == -FY_ENOTFOUND ? "no such topic" : NULL);
    }
    return FY_OK;
}

typedef struct list_ctx {
    fy_buf *out;
    uint32_t n;
} list_ctx;

static void put_topic(void *arg, const fy_topic_info *t)
{
    list_ctx *l = arg;
    fy_wire_put_str(l->out, t->name);
    fy_buf_put_u32(l->out, t->topic_id);
    fy_buf_put_u32(l->out, t->queues);
    l->n++;
}

static int handle_topic_list(nconn *c, const fy_frame *f)
{
    size_t start = fy_wire_ok_begin(&c->out, f->id);
    size_t count_at;
    list_ctx l = {&c->out, 0};
    if (f->payload.len != 0) {
        return -FY_EPROTO;
    }
    count_at = c->out.len;
    fy_buf_put_u32(&c->out, 0);
    fy_core_topic_each(c->srv->core, put_topic, &l);
    fy_be32_put(c->out.data + count_at, l.n);
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
    return FY_OK;
}

static int handle_topic_describe(nconn *c, const fy_frame *f)
{
    fy_slice s;
    char name[128];
    fy_topic_info t;
    size_t start;
    if (fy_wire_dec_str(f, &s) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(s, name, sizeof(name)) || fy_core_topic_get(c->srv->core, name, &t) != FY_OK) {
        reply_error(c, f->id, -FY_ENOTFOUND, "no such topic");
        return FY_OK;
    }
    start = fy_wire_ok_begin(&c->out, f->id);
    fy_wire_put_str(&c->out, t.name);
    fy_buf_put_u32(&c->out, t.topic_id);
    fy_buf_put_u32(&c->out, t.queues);
    for (uint32_t q = 0; q < t.queues; q++) {
        uint64_t min, max;
        fy_core_queue_range(c->srv->core, t.topic_id, q, &min, &max);
        fy_buf_put_u64(&c->out, min);
        fy_buf_put_u64(&c->out, max);
    }
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
    return FY_OK;
}

static void send_done(void *arg, int status, const fy_produce_result *res, size_t n)
{
    req_ctx *x = arg;
    if (req_finish(x) && !x->noreply) {
        nconn *c = x->c;
        if (status != FY_OK) {
            reply_error(c, x->id, status, NULL);
        } else {
            size_t start = fy_wire_ok_begin(&c->out, x->id);
            fy_buf_put_u16(&c->out, (uint16_t)n);
            for (size_t i = 0; i < n; i++) {
                fy_w_send_result r;
                r.queue_id = res[i].queue_id;
                r.offset = res[i].offset;
                r.store_ms = res[i].store_ms;
                memcpy(r.msgid, res[i].msgid, FY_MSGID_LEN);
                fy_wire_put_send_result(&c->out, &r);
            }
            fy_wire_frame_end(&c->out, start);
            flush_out(c);
        }
    }
    fy_free(x);
}

static int handle_send(nconn *c, const fy_frame *f)
{
    fy_w_send *m = &send_scratch;
    req_ctx *x;
    size_t bad = 0;
    int rc;
    if (fy_wire_dec_send(f, m) != FY_OK) {
        return -FY_EPROTO;
    }
    for (uint16_t i = 0; i < m->n; i++) {
        produce_scratch[i].record = m->msgs[i].record;
        produce_scratch[i].sharding_key = m->msgs[i].sharding_key;
        produce_scratch[i].proto = FY_PROTO_NATIVE;
        if (fy_auth_has_acl(c->srv->auth)) {
            fy_slice t = record_topic(m->msgs[i].record);
            if (t.p && !allowed(c, f->id, FY_ACL_WRITE, t)) {
                return FY_OK; /* none of the batch is stored */
            }
        }
    }
    x = req_new(c, f->id);
    rc = fy_core_produce(c->srv->core, produce_scratch, m->n, send_done, x, &bad);
    if (rc != FY_OK) {
        char msg[160];
        req_finish(x);
        fy_free(x);
        snprintf(msg, sizeof(msg), "message %zu: %s", bad, fy_strerror(rc));
        reply_error(c, f->id, rc, msg);
    }
    return FY_OK;
}

static nsub *find_sub(nconn *c, uint32_t sub_id, size_t *index)
{
    for (size_t i = 0; i < c->nsubs; i++) {
        if (c->subs[i]->sub_id == sub_id) {
            if (index) {
                *index = i;
            }
            return c->subs[i];
        }
    }
    return NULL;
}

static size_t out_len(const nconn *c)
{
    return c->closed ? 0 : evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Gives the core some of the client's credit, unless the socket is behind. */
static void credit_top_up(nsub *ns)
{
    nconn *c = ns->conn;
    uint64_t give;
    if (c->closed || ns->held == 0 || ns->core_credit > CREDIT_CHUNK / 2 ||
        out_len(c) >= fy_limits_max_queued_bytes(c->srv->limits)) {
        return;
    }
    give = CREDIT_CHUNK - ns->core_credit;
    if (give > ns->held) {
        give = ns->held;
    }
    ns->held -= give;
    ns->core_credit += (uint32_t)give;
    fy_sub_credit(ns->sub, (uint32_t)give);
}

/* Writes a DELIVER frame: header and record go straight into the socket's output buffer. */
static void on_deliver(void *owner, fy_sub *sub, const fy_delivery *d)
{
    nsub *ns = owner;
    nconn *c = ns->conn;
    uint8_t h[FY_WIRE_HEADER_LEN + 4 + 8 + FY_MSGID_LEN + 4];
    size_t total = sizeof(h) + d->len;
    fy_be32_put(h, (uint32_t)(total - 4));
    h[4] = FY_W_DELIVER;
    h[5] = 0;
    fy_be32_put(h + 6, 0);
    fy_be32_put(h + 10, ns->sub_id);
    fy_be64_put(h + 14, d->id);
    memcpy(h + 22, d->msgid, FY_MSGID_LEN);
    fy_be32_put(h + 38, (uint32_t)d->len);
    if (!c->closed) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        evbuffer_add(out, h, sizeof(h));
        evbuffer_add(out, d->record, d->len);
    }
    if (ns->core_credit > 0) {
        ns->core_credit--;
    }
    credit_top_up(ns);
}

static void remove_nsub(nconn *c, nsub *ns)
{
    size_t i;
    if (find_sub(c, ns->sub_id, &i)) {
        c->subs[i] = c->subs[--c->nsubs];
    }
    fy_free(ns);
}

static void on_sub_closed(void *owner, fy_sub *sub, int status, const char *reason)
{
    nsub *ns = owner;
    nconn *c = ns->conn;
    fy_w_sub_closed m = {ns->sub_id, (uint16_t)(status < 0 ? -status : status),
                         fy_slice_str(reason)};
    if (!c->closed) {
        fy_wire_enc_sub_closed(&c->out, &m);
        flush_out(c);
    }
    remove_nsub(c, ns);
}

static const fy_sub_ops native_sub_ops = {on_deliver, on_sub_closed};

static int handle_subscribe(nconn *c, const fy_frame *f)
{
    fy_w_subscribe m;
    char group[128], topic[128], filter[1024];
    fy_sub_spec spec;
    char why[256] = "";
    nsub *ns;
    int err = FY_OK;
    if (fy_wire_dec_subscribe(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (find_sub(c, m.sub_id, NULL)) {
        reply_error(c, f->id, -FY_EEXIST, "subscription id already in use on this connection");
        return FY_OK;
    }
    if (!slice_cstr(m.group, group, sizeof(group)) || !slice_cstr(m.topic, topic, sizeof(topic))) {
        reply_error(c, f->id, -FY_EBADNAME, "bad group or topic name");
        return FY_OK;
    }
    if (!slice_cstr(m.filter, filter, sizeof(filter))) {
        reply_error(c, f->id, -FY_EINVAL, "filter too long");
        return FY_OK;
    }
    if (!allowed(c, f->id, FY_ACL_READ, m.topic) || !allowed(c, f->id, FY_ACL_GROUP, m.group)) {
        return FY_OK;
    }
    spec = (fy_sub_spec){.group = group,
                         .topic = topic,
                         .filter = filter,
                         .mode = (fy_sub_mode)m.mode,
                         .start = (fy_sub_start)m.start,
                         .start_ms = m.start_ms,
                         .client_id = c->client_id,
                         .proto = FY_PROTO_NATIVE,
                         .filter_type = (fy_filter_type)m.filter_type,
                         .errbuf = why,
                         .errbuf_len = sizeof(why),
                         .orderly = (m.sub_flags & FY_SUB_F_ORDERLY) != 0};
    if (fy_limits_max_subscriptions(c->srv->limits) > 0 &&
        c->nsubs >= fy_limits_max_subscriptions(c->srv->limits)) {
        snprintf(why, sizeof(why),
                 "too many subscriptions on this connection (max_subscriptions %u)",
                 (unsigned)fy_limits_max_subscriptions(c->srv->limits));
        fy_limits_count_subscription_refused(c->srv->limits, FY_LIMIT_NATIVE);
        reply_error(c, f->id, -FY_ELIMIT, why);
        return FY_OK;
    }
    ns = FY_NEW(nsub);
    ns->sub_id = m.sub_id;
    ns->conn = c;
    ns->sub = fy_core_subscribe(c->srv->core, &spec, &native_sub_ops, ns, &err);
    if (!ns->sub) {
        fy_free(ns);
        reply_error(c, f->id, err,
                    why[0]                ? why
                    : err == -FY_EBADNAME ? "bad group or topic name"
                                          : NULL);
        return FY_OK;
    }

    if (c->nsubs == c->capsubs) {
        c->capsubs = c->capsubs ? c->capsubs * 2 : 4;
        c->subs = fy_realloc(c->subs, c->capsubs * sizeof(*c->subs));
    }
    c->subs[c->nsubs++] = ns;
    reply_ok_empty(c, f->id);
    ns->held = m.credit;
    credit_top_up(ns);
    return FY_OK;
}

static int handle_credit(nconn *c, const fy_frame *f)
{
    fy_w_credit m;
    nsub *ns;
    if (fy_wire_dec_credit(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    ns = find_sub(c, m.sub_id, NULL);
    if (!ns) {
        if (!(f->flags & FY_WIRE_F_NOREPLY)) {
            reply_error(c, f->id, -FY_ENOTFOUND, "no such subscription");
        }
        return FY_OK;
    }
    ns->held += m.credit;
    credit_top_up(ns);
    if (!(f->flags & FY_WIRE_F_NOREPLY)) {
        reply_ok_empty(c, f->id);
    }
    return FY_OK;
}

static int handle_ack(nconn *c, const fy_frame *f)
{
    fy_w_ack *m = &ack_scratch;
    nsub *ns;
    if (fy_wire_dec_ack(f, m) != FY_OK) {
        return -FY_EPROTO;
    }
    ns = find_sub(c, m->sub_id, NULL);
    if (!ns) {
        if (!(f->flags & FY_WIRE_F_NOREPLY)) {
            reply_error(c, f->id, -FY_ENOTFOUND, "no such subscription");
        }
        return FY_OK;
    }
    for (uint16_t i = 0; i < m->n; i++) {
        if (f->type == FY_W_ACK) {
            fy_sub_ack(ns->sub, m->ids[i]);
        } else {
            fy_sub_nack(ns->sub, m->ids[i], (fy_nack_how)m->how);
        }
    }
    if (!(f->flags & FY_WIRE_F_NOREPLY)) {
        reply_ok_empty(c, f->id);
    }
    return FY_OK;
}

static int handle_unsubscribe(nconn *c, const fy_frame *f)
{
    fy_w_credit m; /* UNSUBSCRIBE is a bare u32 sub_id */
    fy_rd r = fy_rd_make(f->payload.p, f->payload.len);
    nsub *ns;
    m.sub_id = fy_rd_u32(&r);
    if (r.bad || r.left != 0) {
        return -FY_EPROTO;
    }
    ns = find_sub(c, m.sub_id, NULL);
    if (!ns) {
        reply_error(c, f->id, -FY_ENOTFOUND, "no such subscription");
        return FY_OK;
    }
    fy_sub_close(ns->sub);
    remove_nsub(c, ns);
    reply_ok_empty(c, f->id);
    return FY_OK;
}

static int handle_msg_get(nconn *c, const fy_frame *f)
{
    fy_slice s;
    uint8_t id[FY_MSGID_LEN];
    fy_buf rec = FY_BUF_INIT;
    int rc;
    if (fy_wire_dec_str(f, &s) != FY_OK) {
        return -FY_EPROTO;
    }
    if (fy_msgid_from_hex((const char *)s.p, s.len, id) != FY_OK) {
        reply_error(c, f->id, -FY_EINVAL, "a message id is 32 hex characters");
        return FY_OK;
    }
    rc = fy_core_message_get(c->srv->core, id, &rec);
    if (rc == FY_OK && fy_auth_has_acl(c->srv->auth) &&
        !allowed(c, f->id, FY_ACL_READ, record_topic((fy_slice){rec.data, rec.len}))) {
        fy_buf_free(&rec);
        return FY_OK;
    }
    if (rc != FY_OK) {
        reply_error(c, f->id, rc, rc == -FY_ENOTFOUND ? "no such message" : NULL);
    } else {
        size_t start = fy_wire_ok_begin(&c->out, f->id);
        fy_buf_put_u32(&c->out, (uint32_t)rec.len);
        fy_buf_append(&c->out, rec.data, rec.len);
        fy_wire_frame_end(&c->out, start);
        flush_out(c);
    }
    fy_buf_free(&rec);
    return FY_OK;
}

typedef struct find_out {
    fy_buf *out;
    uint32_t n;
    size_t end; /* the answer must stay a frame the client accepts */
    bool full;
} find_out;

static void put_found(void *arg, const uint8_t msgid[FY_MSGID_LEN], const uint8_t *rec, size_t len)
{
    find_out *x = arg;
    if (x->full || x->out->len + FY_MSGID_LEN + 4 + len > x->end) {
        x->full = true; /* the oldest that fit; the client can ask again from a later time */
        return;
    }
    fy_buf_append(x->out, msgid, FY_MSGID_LEN);
    fy_buf_put_u32(x->out, (uint32_t)len);
    fy_buf_append(x->out, rec, len);
    x->n++;
}

static int handle_msg_find(nconn *c, const fy_frame *f)
{
    fy_w_msg_find m;
    char topic[128], key[1024];
    size_t start, count_at;
    find_out x = {&c->out, 0, 0, false};
    int rc;
    if (fy_wire_dec_msg_find(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(m.topic, topic, sizeof(topic)) || !slice_cstr(m.key, key, sizeof(key))) {
        reply_error(c, f->id, -FY_EINVAL, "topic name or key too long");
        return FY_OK;
    }
    if (!allowed(c, f->id, FY_ACL_READ, m.topic)) {
        return FY_OK;
    }
    start = fy_wire_ok_begin(&c->out, f->id);
    count_at = c->out.len;
    fy_buf_put_u32(&c->out, 0);
    x.end = start + c->srv->max_frame;
    rc = fy_core_find_by_key(c->srv->core, topic, key, m.from_ms, m.to_ms, m.limit, put_found, &x);
    if (rc != FY_OK) {
        c->out.len = start; /* drop the half-built answer */
        reply_error(c, f->id, rc, rc == -FY_ENOTFOUND ? "no such topic" : NULL);
        return FY_OK;
    }
    fy_be32_put(c->out.data + count_at, x.n);
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
    return FY_OK;
}

static void put_group(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    list_ctx *l = arg;
    fy_wire_put_str(l->out, name);
    fy_buf_put_u8(l->out, (uint8_t)mode);
    fy_buf_put_u32(l->out, members);
    l->n++;
}

static int handle_group_list(nconn *c, const fy_frame *f)
{
    size_t start, count_at;
    list_ctx l = {&c->out, 0};
    if (f->payload.len != 0) {
        return -FY_EPROTO;
    }
    start = fy_wire_ok_begin(&c->out, f->id);
    count_at = c->out.len;
    fy_buf_put_u32(&c->out, 0);
    fy_core_group_each(c->srv->core, put_group, &l);
    fy_be32_put(c->out.data + count_at, l.n);
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
    return FY_OK;
}

/* GROUP_DESCRIBE is built in two lists (members, queues) that are joined at the end. */
typedef struct describe_ctx {
    fy_buf members;
    fy_buf queues;
    uint32_t nmembers, nqueues;
} describe_ctx;

static void put_member(void *arg, const fy_group_member_info *m)
{
    describe_ctx *d = arg;
    fy_buf_put_u32(&d->members, m->member_id);
    fy_wire_put_str(&d->members, m->client_id);
    fy_wire_put_str(&d->members, m->topic);
    fy_wire_put_str(&d->members, m->filter);
    fy_buf_put_u32(&d->members, m->credit);
    fy_buf_put_u32(&d->members, m->inflight);
    d->nmembers++;
}

static void put_queue(void *arg, const fy_group_queue_info *q)
{
    describe_ctx *d = arg;
    fy_wire_put_str(&d->queues, q->topic);
    fy_buf_put_u32(&d->queues, q->queue_id);
    fy_buf_put_u64(&d->queues, q->committed);
    fy_buf_put_u64(&d->queues, q->max_offset);
    fy_buf_put_u32(&d->queues, q->owner);
    d->nqueues++;
}

static int handle_group_describe(nconn *c, const fy_frame *f)
{
    fy_slice s;
    char name[128];
    describe_ctx d = {FY_BUF_INIT, FY_BUF_INIT, 0, 0};
    fy_sub_mode mode;
    size_t start;
    if (fy_wire_dec_str(f, &s) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(s, name, sizeof(name)) ||
        fy_core_group_describe(c->srv->core, name, &mode, put_member, put_queue, &d) != FY_OK) {
        reply_error(c, f->id, -FY_ENOTFOUND, "no such group");
        return FY_OK;
    }
    start = fy_wire_ok_begin(&c->out, f->id);
    fy_wire_put_str(&c->out, name);
    fy_buf_put_u8(&c->out, (uint8_t)mode);
    fy_buf_put_u32(&c->out, d.nmembers);
    fy_buf_append(&c->out, d.members.data, d.members.len);
    fy_buf_put_u32(&c->out, d.nqueues);
    fy_buf_append(&c->out, d.queues.data, d.queues.len);
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
    fy_buf_free(&d.members);
    fy_buf_free(&d.queues);
    return FY_OK;
}

typedef struct reset_ctx {
    req_ctx *x;
    fy_buf body;
    uint32_t n;
} reset_ctx;

static void put_reset(void *arg, uint32_t queue_id, uint64_t offset)
{
    reset_ctx *r = arg;
    fy_buf_put_u32(&r->body, queue_id);
    fy_buf_put_u64(&r->body, offset);
    r->n++;
}

static void reset_done(void *arg, int status)
{
    reset_ctx *r = arg;
    if (req_finish(r->x)) {
        nconn *c = r->x->c;
        if (status != FY_OK) {
            reply_error(c, r->x->id, status, NULL);
        } else {
            size_t start = fy_wire_ok_begin(&c->out, r->x->id);
            fy_buf_put_u32(&c->out, r->n);
            fy_buf_append(&c->out, r->body.data, r->body.len);
            fy_wire_frame_end(&c->out, start);
            flush_out(c);
        }
    }
    fy_free(r->x);
    fy_buf_free(&r->body);
    fy_free(r);
}

static int handle_group_reset(nconn *c, const fy_frame *f)
{
    fy_w_group_reset m;
    char group[128], topic[128];
    reset_ctx *r;
    int rc;
    if (fy_wire_dec_group_reset(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(m.group, group, sizeof(group)) || !slice_cstr(m.topic, topic, sizeof(topic))) {
        reply_error(c, f->id, -FY_ENOTFOUND, "no such group or topic");
        return FY_OK;
    }
    if (!allowed(c, f->id, FY_ACL_ADMIN, m.group)) {
        return FY_OK;
    }
    r = FY_NEW(reset_ctx);
    r->x = req_new(c, f->id);
    rc = fy_core_group_reset(c->srv->core, group, topic, m.ts_ms, put_reset, reset_done, r);
    if (rc != FY_OK) {
        req_finish(r->x);
        fy_free(r->x);
        fy_buf_free(&r->body);
        fy_free(r);
        reply_error(c, f->id, rc,
                    rc == -FY_ENOTSUP ? "broadcast groups keep positions in their members"
                                      : "no such group or topic");
    }
    return FY_OK;
}

static void reply_group_config(nconn *c, uint32_t id, const char *name, const fy_group_config *gc)
{
    fy_w_group_config_info m;
    m.group = fy_slice_str(name);
    m.mode = (uint8_t)gc->mode;
    m.max_reconsume = gc->max_reconsume == FY_GROUP_MAX_RECONSUME_DEFAULT
                          ? FY_WIRE_RECONSUME_DEFAULT
                          : (uint8_t)gc->max_reconsume;
    m.effective = (uint8_t)gc->max_reconsume_effective;
    fy_wire_enc_group_config_info(&c->out, id, &m);
    flush_out(c);
}

/* A GROUP_CONFIG that changes something is answered once the group's record is stored, with the
 * settings as they are then. */
typedef struct gconf_ctx {
    req_ctx *x;
    char group[128];
} gconf_ctx;

static void gconf_done(void *arg, int status)
{
    gconf_ctx *g = arg;
    if (req_finish(g->x)) {
        nconn *c = g->x->c;
        fy_group_config gc;
        if (status != FY_OK) {
            reply_error(c, g->x->id, status, NULL);
        } else if (fy_core_group_config_get(c->srv->core, g->group, &gc) != FY_OK) {
            reply_error(c, g->x->id, -FY_ENOTFOUND, "the group was deleted meanwhile");
        } else {
            reply_group_config(c, g->x->id, g->group, &gc);
        }
    }
    fy_free(g->x);
    fy_free(g);
}

static int handle_group_config(nconn *c, const fy_frame *f)
{
    fy_w_group_config m;
    char group[128];
    fy_group_config gc;
    gconf_ctx *g;
    int rc, max;
    if (fy_wire_dec_group_config(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(m.group, group, sizeof(group)) || !fy_core_name_valid(group, strlen(group))) {
        reply_error(c, f->id, -FY_EBADNAME, "bad group name");
        return FY_OK;
    }
    if (m.set == 0) {
        if (fy_core_group_config_get(c->srv->core, group, &gc) != FY_OK) {
            reply_error(c, f->id, -FY_ENOTFOUND, "no such group");
        } else {
            reply_group_config(c, f->id, group, &gc);
        }
        return FY_OK;
    }
    if (!allowed(c, f->id, FY_ACL_ADMIN, m.group)) {
        return FY_OK;
    }
    max = m.max_reconsume == FY_WIRE_RECONSUME_DEFAULT ? FY_GROUP_MAX_RECONSUME_DEFAULT
                                                       : m.max_reconsume;
    g = FY_NEW(gconf_ctx);
    g->x = req_new(c, f->id);
    memcpy(g->group, group, sizeof(group));
    rc = fy_core_group_set_max_reconsume(c->srv->core, group, max, NULL, gconf_done, g);
    if (rc != FY_OK) {
        req_finish(g->x);
        fy_free(g->x);
        fy_free(g);
        reply_error(c, f->id, rc,
                    rc == -FY_ENOTSUP ? "broadcast groups have no retry topic: a failed message "
                                        "is delivered again at once, never dead-lettered"
                                      : NULL);
    }
    return FY_OK;
}

/* ---- Transactions -------------------------------------------------------------------------- */

static int handle_tx_half(nconn *c, const fy_frame *f)
{
    fy_w_tx_half m;
    fy_produce_msg pm;
    char group[128];
    req_ctx *x;
    int rc;
    if (fy_wire_dec_tx_half(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(m.group, group, sizeof(group))) {
        reply_error(c, f->id, -FY_EBADNAME, "bad producer group name");
        return FY_OK;
    }
    if (fy_auth_has_acl(c->srv->auth)) {
        fy_slice t = record_topic(m.record);
        if (t.p && !allowed(c, f->id, FY_ACL_WRITE, t)) {
            return FY_OK;
        }
    }
    pm.record = m.record;
    pm.sharding_key = m.sharding_key;
    pm.proto = FY_PROTO_NATIVE;
    x = req_new(c, f->id);
    rc = fy_core_tx_half(c->srv->core, &pm, group, send_done, x);
    if (rc != FY_OK) {
        req_finish(x);
        fy_free(x);
        reply_error(c, f->id, rc, NULL);
    }
    return FY_OK;
}

static int handle_tx_end(nconn *c, const fy_frame *f)
{
    fy_w_tx_end m;
    req_ctx *x;
    bool noreply = (f->flags & FY_WIRE_F_NOREPLY) != 0;
    int rc;
    if (fy_wire_dec_tx_end(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    x = req_new(c, f->id);
    x->noreply = noreply;
    rc = fy_core_tx_end(c->srv->core, m.tx_id, (fy_tx_end_how)m.state, send_done, x);
    if (rc != FY_OK || m.state == FY_TXE_UNKNOWN) {
        req_finish(x);
        fy_free(x);
        if (rc != FY_OK) {
            fy_log(DEBUG, "native", "conn=%llu tx=%llu err=%s msg=\"transaction end refused\"",
                   (unsigned long long)c->id, (unsigned long long)m.tx_id, fy_errname(rc));
        }
        if (noreply) {
            return FY_OK;
        }
        if (rc == FY_OK) {
            size_t start = fy_wire_ok_begin(&c->out, f->id);
            fy_buf_put_u16(&c->out, 0);
            fy_wire_frame_end(&c->out, start);
            flush_out(c);
        } else {
            reply_error(c, f->id, rc,
                        rc == -FY_ENOTFOUND ? "no such pending transaction (or its topic is gone)"
                        : rc == -FY_EAGAIN  ? "this transaction is being ended already"
                                            : NULL);
        }
    }
    return FY_OK;
}

/* Pushes a TX_CHECK to the producer; it answers with TX_END. */
static void on_tx_check(void *owner, fy_tx_checker *k, const fy_tx_check *chk)
{
    nchecker *nk = owner;
    nconn *c = nk->conn;
    fy_w_tx_check m;
    if (c->closed) {
        return;
    }
    m.tx_id = chk->tx_id;
    m.group = fy_slice_str(chk->group);
    m.checks = chk->checks;
    memcpy(m.msgid, chk->msgid, FY_MSGID_LEN);
    m.record = (fy_slice){chk->record, chk->len};
    fy_wire_enc_tx_check(&c->out, &m);
    flush_out(c);
}

static const fy_tx_checker_ops native_checker_ops = {on_tx_check};

static nchecker *find_checker(nconn *c, const char *group, size_t *index)
{
    for (size_t i = 0; i < c->ncheckers; i++) {
        if (strcmp(c->checkers[i]->group, group) == 0) {
            if (index) {
                *index = i;
            }
            return c->checkers[i];
        }
    }
    return NULL;
}

static void remove_checker(nconn *c, size_t i)
{
    nchecker *nk = c->checkers[i];
    fy_core_tx_checker_remove(nk->k);
    c->checkers[i] = c->checkers[--c->ncheckers];
    fy_free(nk->group);
    fy_free(nk);
}

static int handle_tx_register(nconn *c, const fy_frame *f)
{
    fy_slice s;
    char group[128];
    nchecker *nk;
    size_t i;
    int err = FY_OK;
    if (fy_wire_dec_str(f, &s) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!slice_cstr(s, group, sizeof(group))) {
        reply_error(c, f->id, -FY_EBADNAME, "bad producer group name");
        return FY_OK;
    }
    if (f->type == FY_W_TX_UNREGISTER) {
        if (!find_checker(c, group, &i)) {
            reply_error(c, f->id, -FY_ENOTFOUND, "not registered for this producer group");
            return FY_OK;
        }
        remove_checker(c, i);
        reply_ok_empty(c, f->id);
        return FY_OK;
    }
    if (find_checker(c, group, NULL)) {
        reply_ok_empty(c, f->id); /* already registered: nothing changes */
        return FY_OK;
    }
    nk = FY_NEW(nchecker);
    nk->conn = c;
    nk->group = fy_strdup(group);
    nk->k = fy_core_tx_checker_add(c->srv->core, group, &native_checker_ops, nk, &err);
    if (!nk->k) {
        fy_free(nk->group);
        fy_free(nk);
        reply_error(c, f->id, err, "bad producer group name");
        return FY_OK;
    }
    if (c->ncheckers == c->capcheckers) {
        c->capcheckers = c->capcheckers ? c->capcheckers * 2 : 4;
        c->checkers = fy_realloc(c->checkers, c->capcheckers * sizeof(*c->checkers));
    }
    c->checkers[c->ncheckers++] = nk;
    reply_ok_empty(c, f->id);
    return FY_OK;
}

typedef struct txlist_out {
    fy_buf *out;
    uint32_t n;
    size_t end;
    bool full;
} txlist_out;

static void put_tx(void *arg, const fy_tx_info *t)
{
    txlist_out *x = arg;
    size_t need = 8 + 2 + strlen(t->group) + 8 + 4 + FY_MSGID_LEN + 4 + t->len;
    if (x->full || x->out->len + need > x->end) {
        x->full = true;
        return;
    }
    fy_buf_put_u64(x->out, t->tx_id);
    fy_wire_put_str(x->out, t->group);
    fy_buf_put_u64(x->out, t->stored_ms);
    fy_buf_put_u32(x->out, t->checks);
    fy_buf_append(x->out, t->msgid, FY_MSGID_LEN);
    fy_buf_put_u32(x->out, (uint32_t)t->len);
    fy_buf_append(x->out, t->record, t->len);
    x->n++;
}

static int handle_tx_list(nconn *c, const fy_frame *f)
{
    fy_w_tx_list m;
    size_t start, count_at;
    txlist_out x = {&c->out, 0, 0, false};
    int rc;
    if (fy_wire_dec_tx_list(f, &m) != FY_OK) {
        return -FY_EPROTO;
    }
    if (!allowed(c, f->id, FY_ACL_ADMIN, (fy_slice){NULL, 0})) {
        return FY_OK;
    }
    start = fy_wire_ok_begin(&c->out, f->id);
    count_at = c->out.len;
    fy_buf_put_u32(&c->out, 0);
    x.end = start + c->srv->max_frame;
    rc = fy_core_tx_list(c->srv->core, m.from_id, m.limit, put_tx, &x);
    if (rc != FY_OK) {
        c->out.len = start;
        reply_error(c, f->id, rc, NULL);
        return FY_OK;
    }
    fy_be32_put(c->out.data + count_at, x.n);
    fy_wire_frame_end(&c->out, start);
    flush_out(c);
    return FY_OK;
}

/* One frame. Returns FY_OK, or a negative code that closes the connection. */
static int handle_frame(nconn *c, const fy_frame *f)
{
    if (!c->hello && f->type != FY_W_HELLO) {
        return -FY_EPROTO;
    }
    switch (f->type) {
    case FY_W_HELLO:
        return handle_hello(c, f);
    case FY_W_PING:
        if (f->payload.len != 0) {
            return -FY_EPROTO;
        }
        reply_ok_empty(c, f->id);
        return FY_OK;
    case FY_W_TOPIC_CREATE:
        return handle_topic_create(c, f);
    case FY_W_TOPIC_DELETE:
        return handle_topic_delete(c, f);
    case FY_W_TOPIC_LIST:
        return handle_topic_list(c, f);
    case FY_W_TOPIC_DESCRIBE:
        return handle_topic_describe(c, f);
    case FY_W_SEND:
        return handle_send(c, f);
    case FY_W_SUBSCRIBE:
        return handle_subscribe(c, f);
    case FY_W_CREDIT:
        return handle_credit(c, f);
    case FY_W_ACK:
    case FY_W_NACK:
        return handle_ack(c, f);
    case FY_W_UNSUBSCRIBE:
        return handle_unsubscribe(c, f);
    case FY_W_MSG_GET:
        return handle_msg_get(c, f);
    case FY_W_MSG_FIND:
        return handle_msg_find(c, f);
    case FY_W_GROUP_LIST:
        return handle_group_list(c, f);
    case FY_W_GROUP_DESCRIBE:
        return handle_group_describe(c, f);
    case FY_W_GROUP_RESET:
        return handle_group_reset(c, f);
    case FY_W_GROUP_CONFIG:
        return handle_group_config(c, f);
    case FY_W_TX_HALF:
        return handle_tx_half(c, f);
    case FY_W_TX_END:
        return handle_tx_end(c, f);
    case FY_W_TX_REGISTER:
    case FY_W_TX_UNREGISTER:
        return handle_tx_register(c, f);
    case FY_W_TX_LIST:
        return handle_tx_list(c, f);
    default:
        return -FY_EPROTO;
    }
}

/* ---- Connection I/O ------------------------------------------------------------------------ */

static void maybe_resume_reading(nconn *c)
{
    if (c->read_paused && c->pending < MAX_PENDING / 2 &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) < OUT_HIGH_WATER / 2) {
        c->read_paused = false;
        if (!c->input_ended) {
            bufferevent_enable(c->bev, EV_READ);
        }
        /* Frames may already wait in the input buffer: no new bytes would wake us for them. */
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

/* The client's input ended while HELLO's check was pending (c->input_ended): once the frames
 * that came before the end are handled, c closes as it would have then. */
static void input_end_maybe(nconn *c)
{
    if (c->input_ended && !c->auth_job) {
        conn_close(c, NULL);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    nconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        uint8_t hdr[4];
        size_t avail = evbuffer_get_length(in), total;
        const uint8_t *p;
        fy_frame f;
        long n;
        int rc;
        if (c->closed || c->close_on_drain) {
            return;
        }
        if (avail < 4) {
            input_end_maybe(c);
            return;
        }
        if (c->auth_job) {
            if (avail >= AUTH_HOLD_MAX) {
                bufferevent_disable(bev, EV_READ); /* until the check answers (hello_checked) */
            }
            return;
        }
        if (c->pending >= MAX_PENDING ||
            evbuffer_get_length(bufferevent_get_output(bev)) >= OUT_HIGH_WATER) {
            c->read_paused = true;
            bufferevent_disable(bev, EV_READ);
            return;
        }
        evbuffer_copyout(in, hdr, 4);
        total = (size_t)fy_be32_get(hdr) + 4;
        if (total - 4 > c->srv->max_frame) {
            conn_close(c, "frame larger than max_frame");
            return;
        }
        if (avail < total) {
            input_end_maybe(c);
            return;
        }
        p = evbuffer_pullup(in, (ev_ssize_t)total);
        n = fy_wire_frame_parse(p, total, c->srv->max_frame, &f);
        if (n <= 0) {
            conn_close(c, n == -FY_ETOOBIG ? "frame larger than max_frame" : "malformed frame");
            return;
        }
        rc = handle_frame(c, &f);
        evbuffer_drain(in, total);
        if (rc != FY_OK) {
            char why[64];
            snprintf(why, sizeof(why), "bad request type=0x%02x", f.type);
            conn_close(c, rc == -FY_EVERSION ? "unsupported protocol version" : why);
            return;
        }
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    nconn *c = arg;
    if (c->close_on_drain) {
        if (out_len(c) > 0) {
            bufferevent_setwatermark(bev, EV_WRITE, 0, 0); /* called again once it is empty */
            return;
        }
        conn_close(c, c->verdict == FY_LIMIT_REFUSE ? "refused: max_connections"
                                                    : "authentication failed");
        return;
    }
    for (size_t i = 0; i < c->nsubs && !c->closed; i++) {
        credit_top_up(c->subs[i]);
    }
    maybe_resume_reading(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    nconn *c = arg;
    if (what == BEV_EVENT_CONNECTED) {
        return; /* the TLS handshake is done */
    }
    if ((what & BEV_EVENT_EOF) && c->auth_job) {
        /* What came before the end waits for HELLO's password check (hello_checked). */
        c->input_ended = true;
    } else if (what & BEV_EVENT_EOF) {
        conn_close(c, NULL);
    } else if (what & BEV_EVENT_ERROR) {
        const char *why = c->tls ? fy_tls_bev_error(bev) : NULL;
        conn_close(c, why ? why : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

/* Closes the socket and leaves every group now; the struct lives on until the store has
 * answered every request still pending. */
static void conn_close(nconn *c, const char *why)
{
    fy_native *n = c->srv;
    if (c->closed) {
        return;
    }
    if (why) {
        fy_log(WARN, "native", "conn=%llu peer=%s client=%s msg=\"closing: %s\"",
               (unsigned long long)c->id, c->peer, c->client_id ? c->client_id : "", why);
    } else {
        fy_log(DEBUG, "native", "conn=%llu peer=%s msg=\"closed by peer\"",
               (unsigned long long)c->id, c->peer);
    }
    while (c->nsubs > 0) {
        nsub *ns = c->subs[c->nsubs - 1];
        fy_sub_close(ns->sub);
        remove_nsub(c, ns);
    }
    while (c->ncheckers > 0) {
        remove_checker(c, c->ncheckers - 1);
    }
    if (c->auth_job) {
        /* Gone before its password check answered: the answer is not wanted. */
        fy_auth_cancel(n->auth, c->auth_job);
        c->auth_job = NULL;
    }
    c->closed = true;
    fy_limits_release(n->limits, c->verdict);
    if (c->hello_ev) {
        event_free(c->hello_ev);
        c->hello_ev = NULL;
    }
    fy_tls_bev_free(c->bev);
    c->bev = NULL;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        n->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    if (c->pending == 0) {
        conn_free(c);
    }
}

static void on_hello_timeout(evutil_socket_t fd, short what, void *arg)
{
    nconn *c = arg;
    /* A refused HELLO's answer the client did not take in time is not a missing HELLO. */
    conn_close(c, c->close_on_drain ? "refused, and the answer not read within hello_timeout"
                                    : "no HELLO within hello_timeout");
}

/* Starts a connection on fd: plain TCP, or TLS when tls is set; max_connections and the
 * connect rate count both. */
static void conn_accept(fy_native *n, evutil_socket_t fd, struct sockaddr *sa, fy_tls *tls)
{
    nconn *c;
    struct bufferevent *bev;
    char peer[sizeof(c->peer)];
    fy_limit_verdict v;
    if (!fy_listener_admit(n->limits, FY_LIMIT_NATIVE, fd, sa, &v, peer, sizeof(peer))) {
        return;
    }
    bev = fy_listener_bev(n->base, fd, tls, n->limits, v);
    if (!bev) {
        return;
    }
    c = FY_NEW(nconn);
    c->verdict = v;
    c->srv = n;
    c->id = ++n->next_conn_id;
    c->tls = tls != NULL;
    memcpy(c->peer, peer, sizeof(c->peer));
    c->bev = bev;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* on_write runs once output is down to half of max_queued_bytes: credit flows again */
    bufferevent_setwatermark(c->bev, EV_WRITE, fy_limits_max_queued_bytes(n->limits) / 2, 0);
    if (n->hello_timeout_ms > 0) {
        /* A deadline, not an idle timeout: a client sending a byte a second must not hold it. */
        struct timeval tv = fy_ms_timeval(n->hello_timeout_ms);
        c->hello_deadline = fy_mono_ms() + n->hello_timeout_ms;
        c->hello_ev = evtimer_new(n->base, on_hello_timeout, c);
        evtimer_add(c->hello_ev, &tv);
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = n->conns;
    if (n->conns) {
        n->conns->prev = c;
    }
    n->conns = c;
    fy_log(DEBUG, "native", "conn=%llu peer=%s tls=%s msg=\"accepted\"", (unsigned long long)c->id,
           c->peer, tls ? "true" : "false");
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    conn_accept(arg, fd, sa, NULL);
}

static void on_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int len, void *arg)
{
    fy_native *n = arg;
    conn_accept(n, fd, sa, n->tls);
}

int fy_native_listen_tls(fy_native *n, fy_tls *tls, const char *addr, uint16_t port, char *err,
                         size_t errlen)
{
    int rc;
    n->tls = tls;
    rc = fy_listener_open(n->base, "the native protocol over TLS", addr, port, on_accept_tls, n,
                          &n->tls_listener, &n->tls_port, err, errlen);
    if (rc == FY_OK) {
        fy_log(INFO, "native", "addr=%s tls_port=%u msg=\"TLS listening\"", addr, n->tls_port);
    }
    return rc;
}

uint16_t fy_native_tls_port(const fy_native *n)
{
    return n->tls_port;
}

int fy_native_start(struct event_base *base, fy_core *core, uint16_t broker_id, size_t max_frame,
                    const char *addr, uint16_t port, fy_auth *auth, fy_native **out, char *err,
                    size_t errlen)
{
    fy_native *n = FY_NEW(fy_native);
    n->auth = auth;
    struct sockaddr_in sin;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    n->base = base;
    n->core = core;
    n->broker_id = broker_id;
    n->max_frame = max_frame;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        snprintf(err, errlen, "native listen address '%s' is not an IPv4 address", addr);
        fy_free(n);
        return -FY_EINVAL;
    }
    n->listener =
        evconnlistener_new_bind(base, on_accept, n, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
                                (struct sockaddr *)&sin, sizeof(sin));
    if (!n->listener) {
        snprintf(err, errlen, "cannot listen on %s:%u for the native protocol: %s", addr, port,
                 strerror(errno));
        fy_free(n);
        return -FY_EIO;
    }
    if (getsockname(evconnlistener_get_fd(n->listener), (struct sockaddr *)&ss, &sl) == 0 &&
        ss.ss_family == AF_INET) {
        n->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    fy_log(INFO, "native", "addr=%s port=%u msg=\"native listening\"", addr, n->port);
    *out = n;
    return FY_OK;
}

void fy_native_set_limits(fy_native *n, fy_limits *limits, uint64_t hello_timeout_ms)
{
    n->limits = limits;
    n->hello_timeout_ms = hello_timeout_ms;
}

uint16_t fy_native_port(const fy_native *n)
{
    return n->port;
}

void fy_native_stop(fy_native *n)
{
    if (!n) {
        return;
    }
    evconnlistener_free(n->listener);
    if (n->tls_listener) {
        evconnlistener_free(n->tls_listener);
    }
    while (n->conns) {
        conn_close(n->conns, NULL);
    }
    fy_free(n);
}

void fy_native_each_connection(fy_native *n, void (*fn)(void *arg, const struct fy_conn_info *ci),
                               void *arg)
{
    for (nconn *c = n ? n->conns : NULL; c; c = c->next) {
        fy_conn_info ci = {0};
        if (c->closed) {
            continue;
        }
        ci.id = c->id;
        ci.client_id = c->client_id ? c->client_id : "";
        ci.peer = c->peer;
        ci.user = c->user;
        ci.subscriptions = (uint32_t)c->nsubs;
        for (size_t i = 0; i < c->nsubs; i++) {
            ci.inflight += fy_sub_inflight(c->subs[i]->sub);
        }
        fn(arg, &ci);
    }
}

int fy_native_kick(fy_native *n, uint64_t id)
{
    for (nconn *c = n ? n->conns : NULL; c; c = c->next) {
        if (c->id == id && !c->closed) {
            conn_close(c, "kicked by an administrator");
            return FY_OK;
        }
    }
    return -FY_ENOTFOUND;
}
