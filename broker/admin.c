/* SPDX-License-Identifier: Apache-2.0 */
/* Admin HTTP on evhttp: routes and JSON replies. Every reply is JSON, errors included
 * ({"error": "...", "status": N}). */
#include "broker/admin.h"

#include "adapters/adapter.h"
#include "broker/auth.h"
#include "broker/core.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/passwd.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct fy_admin {
    fy_broker *b;
    struct evhttp *http;
    uint16_t port;
};

static void reply_json(struct evhttp_request *req, int code, json_t *body)
{
    struct evbuffer *out = evbuffer_new();
    char *text = json_dumps(body, JSON_COMPACT);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, text, strlen(text));
    evbuffer_add(out, "\n", 1);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
    free(text);
    json_decref(body);
}

static void reply_error(struct evhttp_request *req, int code, const char *msg)
{
    reply_json(req, code, json_pack("{s:s, s:i}", "error", msg, "status", code));
}

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
    if (!healthy) {
        json_object_set_new(store, "error", json_string(fy_store_last_error(b->store)));
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

/* Whether the request may use the admin API: with a password file, HTTP Basic credentials of a
 * user it holds, who also needs an `admin` rule when there is an ACL file. Answers 401 (asking
 * for credentials) or 403 when not. /health stays open: probes need no secret, and it shows
 * counters only. */
static bool admin_allowed(struct evhttp_request *req, fy_admin *a)
{
    fy_auth *auth = a->b->auth;
    const char *h;
    uint8_t dec[512];
    long n;
    const uint8_t *colon;
    char user[256], peer[64] = "-";
    fy_auth_request ar = {"admin", "", peer, true, {NULL, 0}, true, {NULL, 0}};
    struct evhttp_connection *conn = evhttp_request_get_connection(req);
    bool ok;
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
        !(colon = memchr(dec, ':', (size_t)n)) || (size_t)(colon - dec) >= sizeof(user) ||
        memchr(dec, 0, (size_t)n)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"ferry\", charset=\"UTF-8\"");
        reply_error(req, 401, "authentication required");
        return false;
    }
    ar.username = (fy_slice){dec, (size_t)(colon - dec)};
    ar.password = (fy_slice){colon + 1, (size_t)(n - (colon + 1 - dec))};
    ok = fy_auth_authenticate(auth, &ar) == FY_OK;
    memcpy(user, dec, ar.username.len);
    user[ar.username.len] = '\0';
    memset(dec, 0, sizeof(dec));
    if (!ok) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Basic realm=\"ferry\", charset=\"UTF-8\"");
        reply_error(req, 401, "bad user name or password");
        return false;
    }
    if (fy_auth_authorize(auth, user, "", "admin", FY_ACL_ADMIN, (fy_slice){NULL, 0}) != FY_OK) {
        reply_error(req, 403, "not authorized to use the admin API");
        return false;
    }
    return true;
}

static void handle_other(struct evhttp_request *req, void *arg)
{
    if (!admin_allowed(req, arg)) {
        return;
    }
    reply_error(req, 404, "no such route");
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
    evhttp_set_gencb(a->http, handle_other, a);
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
    fy_log(INFO, "admin", "addr=%s port=%u msg=\"admin HTTP listening\"", addr, a->port);
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
    if (a->http) {
        evhttp_free(a->http);
    }
    fy_free(a);
}
