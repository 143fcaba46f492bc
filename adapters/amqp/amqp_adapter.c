/* SPDX-License-Identifier: Apache-2.0 */
/* The AMQP 1.0 adapter: its [amqp] section, the listener, start-up and shutdown. Connections
 * live in amqp_conn.c, links in amqp_link.c, the message mapping in amqp_map.c. */
#include "adapters/amqp/private.h"
#include "broker/listener.h"
#include "common/alloc.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define C fy_amqp_config
static const fy_config_key amqp_keys[] = {
    FY_CONFIG_KEY_BOOL("enabled", C, enabled, "true", "Accept AMQP 1.0 clients."),
    FY_CONFIG_KEY_STRING("listen", C, listen, "127.0.0.1", "Address AMQP listens on."),
    FY_CONFIG_KEY_UINT("port", C, port, "5672", 0, 65535,
                       "TCP port of AMQP; 0 = pick a free port."),
    FY_CONFIG_KEY_SIZE("max_frame_size", C, max_frame_size, "64KiB", 512, 4294967295ULL,
                       "Largest AMQP frame the broker accepts (offered in open)."),
    FY_CONFIG_KEY_DURATION("idle_timeout", C, idle_timeout_ms, "60s", 0, 4294967295ULL,
                           "A connection silent this long is closed (offered in open); 0 = never."),
    FY_CONFIG_KEY_UINT("max_sessions", C, max_sessions, "256", 1, 65536,
                       "Sessions one connection may begin."),
    FY_CONFIG_KEY_UINT("max_links", C, max_links, "1024", 1, 1000000,
                       "Links one connection may attach (all sessions together)."),
    FY_CONFIG_KEY_SIZE("max_message_size", C, max_message_size, "0", 0, 4294967295ULL,
                       "Largest AMQP message (all sections); 0 = max_message_size plus 64KiB."),
    FY_CONFIG_KEY_UINT("link_credit", C, link_credit, "256", 1, 65535,
                       "Credit the broker gives a client's sender link (messages in flight)."),
    FY_CONFIG_KEY_UINT("max_prefetch", C, max_prefetch, "1000", 1, 1000000,
                       "Messages read ahead for one receiving link, whatever its credit."),
    FY_CONFIG_KEY_BOOL("allow_anonymous", C, allow_anonymous, "true",
                       "Accept SASL ANONYMOUS and clients that skip SASL."),
    FY_CONFIG_KEY_BOOL(
        "sasl_plain", C, sasl_plain, "true",
        "Offer SASL PLAIN on plain TCP too (TLS connections are always offered it)."),
    FY_CONFIG_KEY_DURATION(
        "open_timeout", C, open_timeout_ms, "10s", 100, 3600000,
        "SASL and open must be done within this time, a pending password check not counted."),
    FY_CONFIG_KEY_UINT(
        "tls_port", C, tls_port, "5671", 0, 65535,
        "TLS port of AMQP (amqps), open when [tls] certfile is set; 0 = a free port."),
};
#undef C

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int slen,
                      void *arg)
{
    amqp_server *srv = arg;
    char peer[64];
    fy_limit_verdict v;
    if (fy_listener_admit(srv->env.limits, FY_LIMIT_AMQP, fd, sa, &v, peer, sizeof(peer))) {
        amqp_conn_accept(srv, fd, peer, v);
    }
}

static void on_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int slen, void *arg)
{
    amqp_server *srv = arg;
    char peer[64];
    fy_limit_verdict v;
    if (fy_listener_admit(srv->env.limits, FY_LIMIT_AMQP, fd, sa, &v, peer, sizeof(peer))) {
        amqp_conn_accept_tls(srv, fd, peer, v);
    }
}

static int amqp_start(const fy_adapter_env *env, const void *conf, void **state, char *err,
                      size_t errlen)
{
    const fy_amqp_config *cfg = conf;
    amqp_server *srv;
    struct in_addr listen_addr;
    int rc;

    *state = NULL;
    if (!cfg->enabled) {
        fy_log(INFO, "amqp", "msg=\"disabled\"");
        return FY_OK;
    }
    if (inet_pton(AF_INET, cfg->listen, &listen_addr) != 1) {
        snprintf(err, errlen, "[amqp] listen: '%s' is not an IPv4 address", cfg->listen);
        return -FY_EINVAL;
    }
    srv = FY_NEW(amqp_server);
    srv->env = *env;
    srv->cfg = cfg;
    srv->max_msg = cfg->max_message_size ? cfg->max_message_size : env->max_message_size + 65536;
    rc = fy_listener_open(env->base, "AMQP", cfg->listen, (uint16_t)cfg->port, on_accept, srv,
                          &srv->listener, &srv->port, err, errlen);
    if (rc == FY_OK && env->tls) {
        rc = fy_listener_open(env->base, "AMQP over TLS", cfg->listen, (uint16_t)cfg->tls_port,
                              on_accept_tls, srv, &srv->tls_listener, &srv->tls_port, err, errlen);
    }
    if (rc != FY_OK) {
        if (srv->listener) {
            evconnlistener_free(srv->listener);
        }
        fy_free(srv);
        return rc;
    }
    amqp_tmp_cleanup(srv);
    fy_log(INFO, "amqp", "addr=%s port=%u msg=\"listening\"", cfg->listen, (unsigned)srv->port);
    if (srv->tls_listener) {
        fy_log(INFO, "amqp", "addr=%s tls_port=%u msg=\"TLS listening\"", cfg->listen,
               (unsigned)srv->tls_port);
    }
    *state = srv;
    return FY_OK;
}

static void amqp_stop(void *state)
{
    amqp_server *srv = state;
    if (!srv) {
        return;
    }
    srv->stopping = true;
    evconnlistener_free(srv->listener);
    if (srv->tls_listener) {
        evconnlistener_free(srv->tls_listener);
    }
    amqp_conn_close_all(srv);
    fy_buf_free(&srv->scratch);
    fy_free(srv);
}

static void amqp_stats(void *state, fy_adapter_stats *out)
{
    amqp_server *srv = state;
    *out = srv->stats;
    out->sessions = 0;
    for (const amqp_conn *c = srv->conns; c; c = c->next) {
        out->sessions += c->nsessions; /* AMQP sessions begun now */
    }
}

static void amqp_each_connection(void *state, fy_conn_info_fn fn, void *arg)
{
    amqp_server *srv = state;
    for (const amqp_conn *c = srv->conns; c; c = c->next) {
        fy_conn_info ci = {0};
        if (c->closing) {
            continue;
        }
        ci.id = c->id;
        ci.client_id = c->container;
        ci.peer = c->peer;
        for (const alink *l = c->links; l; l = l->next) {
            if (l->consumer && l->sub && !l->closed) {
                ci.subscriptions++;
                ci.inflight += fy_sub_inflight(l->sub);
            }
        }
        fn(arg, &ci);
    }
}

static int amqp_kick(void *state, uint64_t id)
{
    amqp_server *srv = state;
    for (amqp_conn *c = srv->conns; c; c = c->next) {
        if (c->id == id && !c->closing) {
            amqp_conn_kick(c);
            return FY_OK;
        }
    }
    return -FY_ENOTFOUND;
}

const fy_adapter fy_amqp_adapter = {
    .abi = FY_ADAPTER_ABI,
    .name = "amqp",
    .keys = amqp_keys,
    .nkeys = sizeof(amqp_keys) / sizeof(amqp_keys[0]),
    .conf_size = sizeof(fy_amqp_config),
    .start = amqp_start,
    .stop = amqp_stop,
    .stats = amqp_stats,
    .each_connection = amqp_each_connection,
    .kick = amqp_kick,
};
