/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's client: options, the TCP connection (non-blocking socket, poll() with deadlines,
 * no threads), HELLO and reconnection with back-off, the output and input buffers, frame
 * dispatch, and the request table that matches RESPONSE frames to synchronous waiters and to
 * async sends. Callbacks of async sends run only at safe points (cl_run_completions), never from
 * inside frame dispatch. */
#include "ferry/client.h"

#include "client/private.h"
#include "common/clock.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CL_READ_CHUNK (64u << 10)
#define CL_BACKOFF_MIN_MS 50
#define CL_BACKOFF_MAX_MS 1000
#define CL_FREE_FLUSH_MS 1000

_Static_assert((int)FY_CONSUME_CLUSTERING == (int)FY_SUB_CLUSTERING &&
                   (int)FY_CONSUME_BROADCAST == (int)FY_SUB_BROADCAST,
               "public consume modes are the wire's");
_Static_assert((int)FY_FROM_LAST == (int)FY_START_LAST &&
                   (int)FY_FROM_FIRST == (int)FY_START_FIRST &&
                   (int)FY_FROM_TIME == (int)FY_START_TIME,
               "public start positions are the wire's");
_Static_assert(FY_MESSAGE_ID_LEN == FY_MSGID_HEX_LEN, "message id text length");

const char *fy_version(void)
{
    return FERRY_VERSION;
}

/* ---- Small helpers ------------------------------------------------------------------------- */

int cl_buf_reserve(fy_buf *b, size_t more)
{
    size_t need, cap;
    uint8_t *p;

    if (b->cap - b->len >= more) {
        return FY_OK;
    }
    need = b->len + more;
    if (need < b->len) {
        return -FY_ENOMEM;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        return -FY_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return FY_OK;
}

int64_t cl_now(void)
{
    return (int64_t)fy_mono_ms();
}

int64_t cl_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? CL_NO_DEADLINE : cl_now() + timeout_ms;
}

int cl_fail(fy_client *c, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return err;
}

static char *cl_strdup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);

    if (d) {
        memcpy(d, s, n + 1);
    }
    return d;
}

static char *cl_strndup(const void *p, size_t n)
{
    char *d = malloc(n + 1);

    if (d) {
        if (n) {
            memcpy(d, p, n);
        }
        d[n] = '\0';
    }
    return d;
}

/* ---- Options and lifetime ------------------------------------------------------------------ */

/* Frees a password after overwriting it (explicit_bzero is not optimized away). */
static void cl_free_secret(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void fy_client_opts_init(fy_client_opts *o)
{
    if (!o) {
        return;
    }
    memset(o, 0, sizeof(*o));
    o->connect_timeout_ms = CL_DEFAULT_CONNECT_TIMEOUT_MS;
    o->request_timeout_ms = CL_DEFAULT_REQUEST_TIMEOUT_MS;
    o->reconnect = true;
    o->max_inflight = CL_DEFAULT_MAX_INFLIGHT;
}

/* Splits "host:port", "host", "[v6]:port" or a bare IPv6 literal. FY_OK, -FY_EINVAL, -ENOMEM. */
static int cl_parse_broker(const char *s, char **host, char **port)
{
    const char *h = s, *p = NULL, *colon;
    size_t hlen;
    char buf[8];

    *host = *port = NULL;
    if (!s || !*s) {
        return -FY_EINVAL;
    }
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end == s + 1) {
            return -FY_EINVAL;
        }
        h = s + 1;
        hlen = (size_t)(end - h);
        if (end[1] == ':') {
            p = end + 2;
        } else if (end[1] != '\0') {
            return -FY_EINVAL;
        }
    } else if ((colon = strchr(s, ':')) && !strchr(colon + 1, ':')) {
        hlen = (size_t)(colon - s);
        p = colon + 1;
    } else {
        hlen = strlen(s); /* no port, or an IPv6 literal without brackets */
    }
    if (hlen == 0) {
        return -FY_EINVAL;
    }
    if (p) {
        char *end;
        long v;
        if (!*p || *p < '0' || *p > '9') {
            return -FY_EINVAL;
        }
        errno = 0;
        v = strtol(p, &end, 10);
        if (*end || errno || v < 1 || v > 65535) {
            return -FY_EINVAL;
        }
    } else {
        snprintf(buf, sizeof(buf), "%d", CL_DEFAULT_PORT);
        p = buf;
    }
    *host = cl_strndup(h, hlen);
    *port = cl_strdup(p);
    if (!*host || !*port) {
        free(*host);
        free(*port);
        *host = *port = NULL;
        return -FY_ENOMEM;
    }
    return FY_OK;
}

/* ---- TLS ----------------------------------------------------------------------------------- */

/* The client context of opts: TLS 1.2 at least, the broker verified against tls_cafile (or the
 * system's CAs), an optional client certificate. FY_OK, -FY_EINVAL (a file that does not load)
 * or -FY_ENOMEM. */
static int cl_tls_ctx(fy_client *c, const fy_client_opts *opts)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        return -FY_ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* Writes may complete in parts, from a buffer that moves (c->out grows). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if ((opts->tls_cafile ? SSL_CTX_load_verify_locations(ctx, opts->tls_cafile, NULL)
                          : SSL_CTX_set_default_verify_paths(ctx)) != 1 ||
        (opts->tls_certfile && (SSL_CTX_use_certificate_chain_file(ctx, opts->tls_certfile) != 1 ||
                                SSL_CTX_use_PrivateKey_file(
                                    ctx, opts->tls_keyfile ? opts->tls_keyfile : opts->tls_certfile,
                                    SSL_FILETYPE_PEM) != 1 ||
                                SSL_CTX_check_private_key(ctx) != 1))) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return -FY_EINVAL;
    }
    c->ssl_ctx = ctx;
    return FY_OK;
}

/* The TLS handshake on the connected socket fd, before deadline. FY_OK (c->ssl set), or
 * -FY_ECLOSED / -FY_ETIMEDOUT / -FY_ENOMEM with the reason in c->err. */
static int cl_tls_handshake(fy_client *c, int fd, int64_t deadline)
{
    struct in6_addr a6;
    struct in_addr a4;
    SSL *ssl = SSL_new(c->ssl_ctx);
    bool ip = inet_pton(AF_INET, c->host, &a4) == 1 || inet_pton(AF_INET6, c->host, &a6) == 1;
    if (!ssl) {
        return cl_fail(c, -FY_ENOMEM, "connect %s: out of memory for TLS", c->broker);
    }
    SSL_set_fd(ssl, fd);
    /* The broker's certificate must name the host we dialled. */
    if (ip) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->host);
    } else {
        SSL_set_tlsext_host_name(ssl, c->host);
        SSL_set1_host(ssl, c->host);
    }
    for (;;) {
        int r = SSL_connect(ssl), e;
        struct pollfd pfd = {fd, 0, 0};
        int64_t now;
        if (r == 1) {
            c->ssl = ssl;
            return FY_OK;
        }
        e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            now = cl_now();
            if (now >= deadline) {
                SSL_free(ssl);
                return cl_fail(c, -FY_ETIMEDOUT, "connect %s: TLS handshake timed out", c->broker);
            }
            pfd.events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
            if (poll(&pfd, 1, deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now)) < 0 &&
                errno != EINTR) {
                SSL_free(ssl);
                return cl_fail(c, -FY_ECLOSED, "connect %s: poll: %s", c->broker, strerror(errno));
            }
            continue;
        }
        {
            char why[200] = "the broker closed the connection";
            unsigned long err = ERR_peek_last_error();
            long vr = SSL_get_verify_result(ssl);
            if (vr != X509_V_OK) {
                snprintf(why, sizeof(why), "certificate verify failed: %s",
                         X509_verify_cert_error_string(vr));
            } else if (err) {
                ERR_error_string_n(err, why, sizeof(why));
            }
            ERR_clear_error();
            SSL_free(ssl);
            return cl_fail(c, -FY_ECLOSED, "connect %s: TLS handshake failed: %s", c->broker, why);
        }
    }
}

fy_client *fy_client_new(const fy_client_opts *opts, int *err)
{
    fy_client_opts dflt;
    fy_client *c = NULL;
    char idbuf[300], hostname[256];
    int rc;

    if (!opts) {
        fy_client_opts_init(&dflt);
        opts = &dflt;
    }
    if (opts->connect_timeout_ms < 0 || opts->request_timeout_ms < 0) {
        rc = -FY_EINVAL;
        goto fail;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        rc = -FY_ENOMEM;
        goto fail;
    }
    c->fd = -1;
    c->next_id = 1;
    c->next_sub_id = 1;
    c->max_frame = FY_WIRE_DEFAULT_MAX_FRAME;
    c->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : CL_DEFAULT_CONNECT_TIMEOUT_MS;
    c->request_timeout_ms =
        opts->request_timeout_ms ? opts->request_timeout_ms : CL_DEFAULT_REQUEST_TIMEOUT_MS;
    c->reconnect = opts->reconnect;
    c->max_inflight = opts->max_inflight ? opts->max_inflight : CL_DEFAULT_MAX_INFLIGHT;
    rc =
        cl_parse_broker(opts->broker ? opts->broker : CL_DEFAULT_HOST ":10911", &c->host, &c->port);
    if (rc != FY_OK) {
        goto fail;
    }
    c->broker = malloc(strlen(c->host) + strlen(c->port) + 4);
    if (!c->broker) {
        rc = -FY_ENOMEM;
        goto fail;
    }
    sprintf(c->broker, strchr(c->host, ':') ? "[%s]:%s" : "%s:%s", c->host, c->port);
    if (opts->client_id && *opts->client_id) {
        c->client_id = cl_strdup(opts->client_id);
    } else {
        if (gethostname(hostname, sizeof(hostname)) != 0) {
            strcpy(hostname, "localhost");
        }
        hostname[sizeof(hostname) - 1] = '\0';
        snprintf(idbuf, sizeof(idbuf), "%s-%ld", hostname, (long)getpid());
        c->client_id = cl_strdup(idbuf);
    }
    c->client_name =
        cl_strdup(opts->client_name && *opts->client_name ? opts->client_name : "libferry");
    if (!c->client_id || !c->client_name) {
        rc = -FY_ENOMEM;
        goto fail;
    }
    if (opts->username) {
        c->username = cl_strdup(opts->username);
        c->password = cl_strdup(opts->password ? opts->password : "");
        if (!c->username || !c->password) {
            rc = -FY_ENOMEM;
            goto fail;
        }
        if (strlen(c->username) > UINT16_MAX || strlen(c->password) > UINT16_MAX) {
            rc = -FY_EINVAL;
            goto fail;
        }
    }
    if (strlen(c->client_id) > UINT16_MAX || strlen(c->client_name) > UINT16_MAX) {
        rc = -FY_EINVAL;
        goto fail;
    }
    if (opts->tls) {
        rc = cl_tls_ctx(c, opts);
        if (rc != FY_OK) {
            goto fail;
        }
    }
    if (err) {
        *err = FY_OK;
    }
    return c;
fail:
    if (c) {
        SSL_CTX_free(c->ssl_ctx);
        free(c->host);
        free(c->port);
        free(c->broker);
        free(c->client_id);
        free(c->client_name);
        cl_free_secret(c->password);
        free(c->username);
        free(c);
    }
    if (err) {
        *err = rc;
    }
    return NULL;
}

const char *fy_client_last_error(const fy_client *c)
{
    return c ? c->err : "";
}

bool fy_client_is_connected(const fy_client *c)
{
    return c && c->ready;
}

const char *fy_client_broker_version(const fy_client *c)
{
    return c ? c->broker_version : "";
}

size_t fy_client_inflight(const fy_client *c)
{
    return c ? c->inflight : 0;
}

/* ---- Requests ------------------------------------------------------------------------------ */

uint32_t cl_next_id(fy_client *c)
{
    uint32_t id = c->next_id++;

    if (c->next_id == 0) {
        c->next_id = 1;
    }
    return id;
}

int cl_out_reserve(fy_client *c, size_t size)
{
    if (c->out_off == c->out.len) {
        c->out.len = 0;
        c->out_off = 0;
    }
    return cl_buf_reserve(&c->out, size);
}

static void cl_req_finish(fy_client *c, cl_req *req, int status);

static void cl_req_link(fy_client *c, cl_req *req)
{
    req->next = NULL;
    req->prev = c->pend_tail;
    if (c->pend_tail) {
        c->pend_tail->next = req;
    } else {
        c->pend_head = req;
    }
    c->pend_tail = req;
}

static void cl_req_unlink(fy_client *c, cl_req *req)
{
    if (req->prev) {
        req->prev->next = req->next;
    } else {
        c->pend_head = req->next;
    }
    if (req->next) {
        req->next->prev = req->prev;
    } else {
        c->pend_tail = req->prev;
    }
    req->prev = req->next = NULL;
}

void cl_req_start(fy_client *c, cl_req *req, cl_req_kind kind, uint8_t type, uint32_t id)
{
    req->kind = kind;
    req->type = type;
    req->id = id;
    req->done = false;
    req->status = FY_OK;
    req->errmsg = NULL;
    if (kind == CL_REQ_SYNC) {
        req->body.data = NULL;
        req->body.len = req->body.cap = 0;
    }
    req->deadline = cl_now() + c->request_timeout_ms;
    if (c->fd < 0) {
        cl_req_finish(c, req, -FY_ECLOSED); /* nothing can answer it */
        return;
    }
    cl_req_link(c, req);
}

void cl_req_clear(cl_req *req)
{
    free(req->errmsg);
    req->errmsg = NULL;
    free(req->body.data);
    req->body.data = NULL;
    req->body.len = req->body.cap = 0;
}

/* A request is finished (answered, failed, timed out): hand it to whoever waits for it. It has
 * already been unlinked from the pending list. */
static void cl_req_finish(fy_client *c, cl_req *req, int status)
{
    req->status = status;
    req->done = true;
    switch (req->kind) {
    case CL_REQ_SYNC:
        break;
    case CL_REQ_SEND:
        req->next = NULL;
        req->prev = c->done_tail;
        if (c->done_tail) {
            c->done_tail->next = req;
        } else {
            c->done_head = req;
        }
        c->done_tail = req;
        break;
    case CL_REQ_IGNORE:
        free(req->errmsg);
        free(req);
        break;
    }
}

/* Fails every pending request with status (the connection is gone). */
static void cl_fail_pending(fy_client *c, int status)
{
    cl_req *req;

    while ((req = c->pend_head)) {
        cl_req_unlink(c, req);
        cl_req_finish(c, req, status);
    }
}

/* Times out async requests whose deadline has passed (synchronous ones time out in their
 * waiter). */
static void cl_expire(fy_client *c)
{
    int64_t now = cl_now();
    cl_req *req = c->pend_head, *next;

    for (; req; req = next) {
        next = req->next;
        if (req->kind == CL_REQ_SYNC) {
            continue;
        }
        if (req->deadline > now) {
            break; /* async deadlines are in send order */
        }
        cl_req_unlink(c, req);
        cl_req_finish(c, req, -FY_ETIMEDOUT);
    }
}

int cl_run_completions(fy_client *c)
{
    char saved[CL_ERR_LEN];
    cl_req *req;
    int n = 0;

    while ((req = c->done_head)) {
        c->done_head = req->next;
        if (!c->done_head) {
            c->done_tail = NULL;
        }
        c->inflight--;
        if (req->cb) {
            if (req->status != FY_OK) {
                /* The callback may read fy_client_last_error(); the caller's text comes back
                 * afterwards. */
                memcpy(saved, c->err, sizeof(saved));
                if (req->status == -FY_ETIMEDOUT) {
                    cl_fail(c, req->status, "send: no answer from %s within %d ms", c->broker,
                            c->request_timeout_ms);
                } else if (req->errmsg && *req->errmsg) {
                    cl_fail(c, req->status, "send: %s (%s)", req->errmsg, fy_errname(req->status));
                } else if (req->status == -FY_ECLOSED) {
                    cl_fail(c, req->status, "send: connection to %s lost, outcome unknown",
                            c->broker);
                } else {
                    cl_fail(c, req->status, "send: %s", fy_strerror(req->status));
                }
                req->cb(req->arg, req->status, NULL);
                memcpy(c->err, saved, sizeof(saved));
            } else {
                req->cb(req->arg, FY_OK, &req->result);
            }
        }
        free(req->errmsg);
        free(req);
        n++;
    }
    return n;
}

/* ---- Connection ---------------------------------------------------------------------------- */

/* The connection is gone (or being closed): fail what was in flight with status and forget
 * what the old connection carried. */
static void cl_disconnect(fy_client *c, int status)
{
    if (c->ssl) {
        SSL_free(c->ssl); /* no close_notify: the socket may be gone */
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->ready = false;
    c->out.len = c->out_off = 0;
    c->in.len = c->in_off = 0;
    if (c->out.cap > (1u << 20)) {
        fy_buf_free(&c->out);
    }
    if (c->in.cap > (1u << 20)) {
        fy_buf_free(&c->in);
    }
    cl_fail_pending(c, status);
    for (fy_consumer *cons = c->cons_head; cons; cons = cons->next) {
        cl_consumer_on_disconnect(cons);
    }
}

/* The connection dropped unexpectedly: everything in flight fails with -FY_ECLOSED. */
static int cl_drop(fy_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cl_drop(fy_client *c, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    cl_disconnect(c, -FY_ECLOSED);
    return cl_fail(c, -FY_ECLOSED, "connection to %s lost: %s", c->broker, why);
}

int cl_write_now(fy_client *c)
{
    if (c->fd < 0) {
        return -FY_ECLOSED;
    }
    while (c->out_off < c->out.len) {
        ssize_t n;
        if (c->ssl) {
            size_t len = c->out.len - c->out_off;
            int r = SSL_write(c->ssl, c->out.data + c->out_off, len > INT_MAX ? INT_MAX : (int)len);
            if (r > 0) {
                c->out_off += (size_t)r;
                continue;
            }
            r = SSL_get_error(c->ssl, r);
            if (r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ) {
                break;
            }
            ERR_clear_error();
            return cl_drop(c, "TLS write failed");
        }
        n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return cl_drop(c, "write: %s", n < 0 ? strerror(errno) : "no progress");
        }
    }
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
    }
    return FY_OK;
}

static void cl_on_response(fy_client *c, const fy_frame *f)
{
    fy_w_response r;
    cl_req *req;
    int status;

    if (fy_wire_dec_response(f, &r) != FY_OK) {
        cl_drop(c, "malformed RESPONSE from the broker");
        return;
    }
    for (req = c->pend_head; req; req = req->next) {
        if (req->id == f->id) {
            break;
        }
    }
    if (!req) {
        return; /* the answer to a request that timed out meanwhile */
    }
    cl_req_unlink(c, req);
    status = r.status ? -(int)r.status : FY_OK;
    if (r.status && r.message.len) {
        req->errmsg = cl_strndup(r.message.p, r.message.len);
    }
    if (status == FY_OK && req->kind == CL_REQ_SYNC && r.body.len) {
        if (cl_buf_reserve(&req->body, r.body.len) == FY_OK) {
            fy_buf_append(&req->body, r.body.p, r.body.len);
        } else {
            status = -FY_ENOMEM;
        }
    }
    if (status == FY_OK && req->kind == CL_REQ_SEND) {
        fy_rd rd = fy_rd_make(r.body.p, r.body.len);
        uint16_t n = fy_rd_u16(&rd);
        const uint8_t *p = fy_rd_take(&rd, 36);
        if (n != 1 || !p || rd.left != 0) {
            status = -FY_EPROTO;
            req->errmsg = cl_strdup("malformed SEND answer from the broker");
        } else {
            req->result.queue_id = fy_be32_get(p);
            req->result.queue_offset = fy_be64_get(p + 4);
            req->result.store_ms = fy_be64_get(p + 12);
            fy_msgid_to_hex(p + 20, req->result.msgid);
        }
    }
    cl_req_finish(c, req, status);
}

/* One frame from the broker. May drop the connection (protocol error). */
static void cl_dispatch(fy_client *c, const fy_frame *f)
{
    switch (f->type) {
    case FY_W_RESPONSE:
        cl_on_response(c, f);
        break;
    case FY_W_DELIVER: {
        fy_w_deliver d;
        if (fy_wire_dec_deliver(f, &d) != FY_OK) {
            cl_drop(c, "malformed DELIVER from the broker");
            return;
        }
        cl_consumer_on_deliver(c, &d);
        break;
    }
    case FY_W_TX_CHECK: {
        fy_w_tx_check m;
        if (fy_wire_dec_tx_check(f, &m) != FY_OK) {
            cl_drop(c, "malformed TX_CHECK from the broker");
            return;
        }
        cl_tx_on_check(c, &m);
        break;
    }
    case FY_W_SUB_CLOSED: {
        fy_w_sub_closed m;
        if (fy_wire_dec_sub_closed(f, &m) != FY_OK) {
            cl_drop(c, "malformed SUB_CLOSED from the broker");
            return;
        }
        cl_consumer_on_closed(c, &m);
        break;
    }
    default:
        cl_drop(c, "unexpected frame type 0x%02x from the broker", f->type);
        break;
    }
}

/* Reads what the socket has and dispatches every complete frame. */
static int cl_read(fy_client *c)
{
    for (int rounds = 0; rounds < 4 && c->fd >= 0; rounds++) {
        size_t want;
        ssize_t n;
        if (c->in_off == c->in.len) {
            c->in.len = c->in_off = 0;
        } else if (c->in_off > 0 && c->in_off >= c->in.len / 2) {
            memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
            c->in.len -= c->in_off;
            c->in_off = 0;
        }
        if (cl_buf_reserve(&c->in, CL_READ_CHUNK) != FY_OK) {
            return cl_fail(c, -FY_ENOMEM, "out of memory reading from %s", c->broker);
        }
        want = c->in.cap - c->in.len;
        if (c->ssl) {
            int r = SSL_read(c->ssl, c->in.data + c->in.len, want > INT_MAX ? INT_MAX : (int)want);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    break;
                }
                ERR_clear_error();
                return cl_drop(c, e == SSL_ERROR_ZERO_RETURN ? "closed by the broker"
                                                             : "TLS read failed");
            }
            n = r;
        } else {
            n = recv(c->fd, c->in.data + c->in.len, want, 0);
        }
        if (n == 0) {
            return cl_drop(c, "closed by the broker");
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return cl_drop(c, "read: %s", strerror(errno));
        }
        c->in.len += (size_t)n;
        while (c->fd >= 0) {
            fy_frame f;
            long len = fy_wire_frame_parse(c->in.data + c->in_off, c->in.len - c->in_off,
                                           c->max_frame, &f);
            if (len == 0) {
                break;
            }
            if (len < 0) {
                return cl_drop(c, "bad frame from the broker (%s)", fy_errname((int)len));
            }
            c->in_off += (size_t)len;
            cl_dispatch(c, &f);
        }
        if ((size_t)n < want && !(c->ssl && SSL_pending(c->ssl) > 0)) {
            break; /* the socket had less than we asked for: drained */
        }
    }
    return c->fd >= 0 ? FY_OK : -FY_ECLOSED;
}

int cl_pump(fy_client *c, int64_t deadline)
{
    struct pollfd pfd;
    int64_t until = deadline, now;
    int timeout, n;

    if (c->fd < 0) {
        return -FY_ECLOSED;
    }
    /* Acks and credit owed go out with any I/O, whatever the call. */
    if (c->ready) {
        cl_consumers_emit(c);
    }
    for (cl_req *r = c->pend_head; r; r = r->next) {
        if (r->kind != CL_REQ_SYNC) {
            if (r->deadline < until) {
                until = r->deadline;
            }
            break;
        }
    }
    now = cl_now();
    if (until == CL_NO_DEADLINE) {
        timeout = -1;
    } else if (until <= now) {
        timeout = 0;
    } else {
        timeout = until - now > INT_MAX ? INT_MAX : (int)(until - now);
    }
    pfd.fd = c->fd;
    pfd.events = POLLIN | (c->out_off < c->out.len ? POLLOUT : 0);
    pfd.revents = 0;
    if (c->ssl && SSL_pending(c->ssl) > 0) {
        timeout = 0; /* TLS holds decrypted bytes the socket no longer shows */
    }
    n = poll(&pfd, 1, timeout);
    if (n == 0 && c->ssl && SSL_pending(c->ssl) > 0) {
        pfd.revents = POLLIN;
        n = 1;
    }
    if (n < 0 && errno != EINTR) {
        return cl_drop(c, "poll: %s", strerror(errno));
    }
    if (n > 0) {
        if ((pfd.revents & POLLOUT) && cl_write_now(c) != FY_OK) {
            return -FY_ECLOSED;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            int rc = cl_read(c);
            if (rc != FY_OK) {
                return rc;
            }
        }
    }
    cl_expire(c);
    return FY_OK;
}

int cl_req_wait(fy_client *c, cl_req *req)
{
    while (!req->done) {
        if (c->fd < 0) {
            /* Cannot happen (a disconnect fails every pending request), but never spin. */
            for (cl_req *r = c->pend_head; r; r = r->next) {
                if (r == req) {
                    cl_req_unlink(c, req);
                    break;
                }
            }
            req->status = -FY_ECLOSED;
            req->done = true;
            break;
        }
        if (cl_now() >= req->deadline) {
            cl_req_unlink(c, req);
            req->status = -FY_ETIMEDOUT;
            req->done = true;
            return cl_fail(c, -FY_ETIMEDOUT, "no answer from %s within %d ms", c->broker,
                           c->request_timeout_ms);
        }
        if (cl_pump(c, req->deadline) == -FY_ENOMEM) {
            /* Reading failed for lack of memory: the answer cannot be taken in. */
            cl_req_unlink(c, req);
            req->status = -FY_ENOMEM;
            req->done = true;
            cl_disconnect(c, -FY_ECLOSED);
            return -FY_ENOMEM;
        }
    }
    if (req->status != FY_OK && req->status != -FY_ECLOSED) {
        if (req->errmsg && *req->errmsg) {
            cl_fail(c, req->status, "%s (%s)", req->errmsg, fy_errname(req->status));
        } else {
            cl_fail(c, req->status, "%s", fy_strerror(req->status));
        }
    }
    return req->status;
}

/* Formats the local address of fd as "ip:port". */
static void cl_local_addr(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];

    out[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, n, "%s:%u", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
}

/* Opens a TCP connection to one address before deadline. Returns the socket, or -1 with
 * *err / c->err set. */
static int cl_tcp_connect(fy_client *c, const struct addrinfo *ai, int64_t deadline, int *err)
{
    int fd, one = 1, soerr = 0;
    socklen_t len = sizeof(soerr);

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        *err = errno == ENOMEM || errno == ENOBUFS ? -FY_ENOMEM : -FY_ECLOSED;
        cl_fail(c, *err, "connect %s: socket: %s", c->broker, strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            soerr = errno;
        } else {
            for (;;) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                int64_t now = cl_now();
                int t = deadline <= now            ? 0
                        : deadline - now > INT_MAX ? INT_MAX
                                                   : (int)(deadline - now);
                int n = poll(&pfd, 1, t);
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                if (n == 0) {
                    close(fd);
                    *err = -FY_ETIMEDOUT;
                    cl_fail(c, *err, "connect %s: timed out", c->broker);
                    return -1;
                }
                if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) {
                    soerr = errno;
                }
                break;
            }
        }
    }
    if (soerr) {
        close(fd);
        *err = -FY_ECLOSED;
        cl_fail(c, *err, "connect %s: %s", c->broker, strerror(soerr));
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Subscribes every consumer again on a fresh connection: all SUBSCRIBEs pipelined, then every
 * answer awaited. */
static int cl_resubscribe(fy_client *c)
{
    size_t n = 0, started = 0;
    fy_consumer **list;
    cl_req *reqs;
    int rc = FY_OK;

    for (fy_consumer *cons = c->cons_head; cons; cons = cons->next) {
        n += !cons->closed && !cons->doomed;
    }
    if (n == 0) {
        return FY_OK;
    }
    reqs = calloc(n, sizeof(*reqs));
    list = calloc(n, sizeof(*list));
    if (!reqs || !list) {
        free(reqs);
        free(list);
        return cl_fail(c, -FY_ENOMEM, "out of memory subscribing again");
    }
    for (fy_consumer *cons = c->cons_head; cons && started < n; cons = cons->next) {
        if (cons->closed || cons->doomed) {
            continue;
        }
        rc = cl_consumer_subscribe_start(cons, &reqs[started]);
        if (rc != FY_OK) {
            break;
        }
        list[started++] = cons;
    }
    cl_write_now(c);
    /* Every started request must be waited for, whatever happens to the others. */
    for (size_t i = 0; i < started; i++) {
        fy_consumer *cons = list[i];
        int r = cl_consumer_subscribe_finish(cons, &reqs[i]);
        if (r == -FY_ECLOSED || r == -FY_ETIMEDOUT || r == -FY_ENOMEM) {
            rc = rc == FY_OK ? r : rc;
        } else if (r != FY_OK) {
            /* The broker refuses this subscription now (topic deleted...): it ends here. */
            cons->closed = r;
            free(cons->closed_why);
            cons->closed_why = cl_strdup(c->err);
        }
    }
    free(reqs);
    free(list);
    return rc;
}

/* One connection attempt (every resolved address) and HELLO, before deadline. */
static int cl_connect_attempt(fy_client *c, int64_t deadline)
{
    struct addrinfo hints, *res = NULL;
    fy_w_hello hello;
    fy_w_hello_ok ok;
    cl_req req;
    uint32_t id;
    int rc = -FY_ECLOSED, gai, fd = -1;

    if (c->fd >= 0) {
        cl_disconnect(c, -FY_ECLOSED);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    gai = getaddrinfo(c->host, c->port, &hints, &res);
    if (gai != 0) {
        rc = gai == EAI_MEMORY ? -FY_ENOMEM : gai == EAI_AGAIN ? -FY_ECLOSED : -FY_EINVAL;
        return cl_fail(c, rc, "connect %s: %s", c->broker, gai_strerror(gai));
    }
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = cl_tcp_connect(c, ai, deadline, &rc);
        if (rc == -FY_ETIMEDOUT || rc == -FY_ENOMEM) {
            break;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        return rc;
    }
    if (c->ssl_ctx) {
        rc = cl_tls_handshake(c, fd, deadline);
        if (rc != FY_OK) {
            close(fd);
            return rc;
        }
    }
    c->fd = fd;
    c->out.len = c->out_off = 0;
    c->in.len = c->in_off = 0;
    c->max_frame = FY_WIRE_DEFAULT_MAX_FRAME;
    cl_local_addr(fd, c->born_host, sizeof(c->born_host));

    hello.version = FY_WIRE_VERSION;
    hello.client_id = fy_slice_str(c->client_id);
    hello.client_name = fy_slice_str(c->client_name);
    hello.has_credentials = c->username != NULL;
    hello.username = fy_slice_str(c->username);
    hello.password = fy_slice_str(c->password);
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 2 + 8 + strlen(c->client_id) +
                               strlen(c->client_name) + hello.username.len + hello.password.len);
    if (rc != FY_OK) {
        cl_disconnect(c, -FY_ECLOSED);
        return cl_fail(c, rc, "out of memory");
    }
    id = cl_next_id(c);
    fy_wire_enc_hello(&c->out, id, &hello);
    cl_req_start(c, &req, CL_REQ_SYNC, FY_W_HELLO, id);
    req.deadline = deadline;
    rc = cl_write_now(c);
    if (rc == FY_OK) {
        rc = cl_req_wait(c, &req);
    }
    if (rc == FY_OK) {
        fy_slice body = {req.body.data, req.body.len};
        if (fy_wire_dec_hello_ok(body, &ok) != FY_OK) {
            rc = cl_fail(c, -FY_EPROTO, "connect %s: malformed HELLO answer", c->broker);
        } else if (ok.version != FY_WIRE_VERSION) {
            rc = cl_fail(c, -FY_EVERSION, "connect %s: the broker speaks protocol version %u",
                         c->broker, ok.version);
        } else {
            c->broker_id = ok.broker_id;
            c->max_frame =
                ok.max_frame >= FY_WIRE_MIN_FRAME ? ok.max_frame : FY_WIRE_DEFAULT_MAX_FRAME;
            snprintf(c->broker_version, sizeof(c->broker_version), "%.*s",
                     (int)ok.broker_version.len, (const char *)ok.broker_version.p);
        }
    } else if (rc == -FY_ETIMEDOUT) {
        cl_fail(c, rc, "connect %s: no HELLO answer in time", c->broker);
    } else if (rc != -FY_ECLOSED) {
        char why[CL_ERR_LEN];
        memcpy(why, c->err, sizeof(why));
        cl_fail(c, rc, "connect %s: HELLO refused: %s", c->broker, why);
    }
    cl_req_clear(&req);
    if (rc != FY_OK) {
        if (c->fd >= 0) {
            cl_disconnect(c, -FY_ECLOSED);
        }
        return rc;
    }
    c->ready = true;
    c->ever_ready = true;
    c->gen++;
    rc = cl_resubscribe(c);
    if (rc == FY_OK) {
        rc = cl_tx_reregister(c);
    }
    if (rc != FY_OK && c->fd >= 0) {
        cl_disconnect(c, -FY_ECLOSED);
    }
    return rc;
}

static void cl_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int cl_ready(fy_client *c)
{
    int64_t until;
    int backoff = CL_BACKOFF_MIN_MS, rc;

    if (c->ready) {
        return FY_OK;
    }
    if (!c->ever_ready) {
        return cl_connect_attempt(c, cl_deadline(c->connect_timeout_ms));
    }
    if (!c->reconnect) {
        return cl_fail(c, -FY_ECLOSED, "not connected to %s (reconnect is off)", c->broker);
    }
    until = cl_deadline(c->connect_timeout_ms);
    for (;;) {
        int64_t now;
        rc = cl_connect_attempt(c, until);
        if (rc == FY_OK || rc == -FY_ENOMEM || rc == -FY_EVERSION || rc == -FY_EINVAL) {
            return rc;
        }
        now = cl_now();
        if (now >= until) {
            return rc;
        }
        cl_sleep_ms(until - now < backoff ? until - now : backoff);
        backoff = backoff * 2 > CL_BACKOFF_MAX_MS ? CL_BACKOFF_MAX_MS : backoff * 2;
    }
}

int fy_client_connect(fy_client *c)
{
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    if (c->ready) {
        return FY_OK;
    }
    /* An explicit connect makes one attempt even when automatic reconnection is off. */
    rc = cl_connect_attempt(c, cl_deadline(c->connect_timeout_ms));
    cl_run_completions(c);
    return rc;
}

int cl_call_simple(fy_client *c, uint8_t type, const char *s, cl_req *req)
{
    uint32_t id;
    int rc;

    memset(req, 0, sizeof(*req));
    if (s && strlen(s) > UINT16_MAX) {
        return cl_fail(c, -FY_EINVAL, "name too long");
    }
    rc = cl_ready(c);
    if (rc != FY_OK) {
        return rc;
    }
    rc = cl_out_reserve(c, FY_WIRE_HEADER_LEN + 2 + (s ? strlen(s) : 0));
    if (rc != FY_OK) {
        return cl_fail(c, rc, "out of memory");
    }
    id = cl_next_id(c);
    fy_wire_enc_simple(&c->out, type, id, s);
    cl_req_start(c, req, CL_REQ_SYNC, type, id);
    cl_write_now(c);
    return cl_req_wait(c, req);
}

int fy_client_ping(fy_client *c)
{
    cl_req req;
    int rc;

    if (!c) {
        return -FY_EINVAL;
    }
    rc = cl_call_simple(c, FY_W_PING, NULL, &req);
    cl_req_clear(&req);
    cl_run_completions(c);
    return rc;
}

int fy_client_poll(fy_client *c, int timeout_ms)
{
    int64_t deadline = cl_deadline(timeout_ms);
    int n = 0, rc;

    if (!c) {
        return -FY_EINVAL;
    }
    for (;;) {
        n += cl_run_completions(c);
        rc = cl_consumers_dispatch(c);
        if (rc > 0) {
            n += rc;
        }
        n += cl_tx_dispatch(c);
        if (n > 0) {
            return n;
        }
        if (!c->ready) {
            if (!c->cons_head && !c->txp_head) {
                return 0; /* nothing can arrive without a connection */
            }
            rc = cl_ready(c);
            if (rc != FY_OK) {
                return rc;
            }
            continue;
        }
        cl_consumers_emit(c);
        cl_write_now(c);
        if (c->fd < 0) {
            continue;
        }
        rc = cl_pump(c, deadline);
        if (rc == -FY_ENOMEM) {
            return rc;
        }
        if (rc == FY_OK && cl_now() >= deadline && !c->done_head) {
            rc = cl_consumers_dispatch(c);
            rc = (rc > 0 ? rc : 0) + cl_tx_dispatch(c);
            return rc;
        }
    }
}

int fy_client_flush(fy_client *c, int timeout_ms)
{
    int64_t deadline = cl_deadline(timeout_ms);
    int rc = FY_OK;

    if (!c) {
        return -FY_EINVAL;
    }
    if (c->ready) {
        cl_consumers_emit(c);
        cl_write_now(c);
    }
    while (c->fd >= 0 && (c->inflight > 0 || c->out_off < c->out.len)) {
        bool waiting = c->out_off < c->out.len;
        for (cl_req *r = c->pend_head; r && !waiting; r = r->next) {
            waiting = r->kind == CL_REQ_SEND;
        }
        if (!waiting) {
            break; /* the rest is answered and waits in the done list */
        }
        if (cl_now() >= deadline) {
            rc = cl_fail(c, -FY_ETIMEDOUT, "flush: sends still in flight after %d ms", timeout_ms);
            break;
        }
        rc = cl_pump(c, deadline);
        if (rc != FY_OK) {
            break;
        }
    }
    cl_run_completions(c);
    return rc;
}

void fy_client_free(fy_client *c)
{
    int64_t deadline;

    if (!c) {
        return;
    }
    /* Acks not yet written would make the broker redeliver: give them a moment. */
    if (c->ready) {
        cl_consumers_emit(c);
        deadline = cl_deadline(CL_FREE_FLUSH_MS);
        while (c->fd >= 0 && c->out_off < c->out.len && cl_now() < deadline) {
            if (cl_pump(c, deadline) != FY_OK) {
                break;
            }
        }
    }
    while (c->cons_head) {
        fy_consumer *cons = c->cons_head;
        c->cons_head = cons->next;
        cl_consumer_destroy(cons);
    }
    cl_tx_destroy(c);
    cl_disconnect(c, -FY_ECANCELED);
    cl_run_completions(c);
    fy_buf_free(&c->out);
    fy_buf_free(&c->in);
    free(c->host);
    free(c->port);
    free(c->broker);
    free(c->client_id);
    free(c->client_name);
    cl_free_secret(c->password);
    free(c->username);
    SSL_CTX_free(c->ssl_ctx);
    free(c);
}
