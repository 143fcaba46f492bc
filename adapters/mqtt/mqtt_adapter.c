/* SPDX-License-Identifier: Apache-2.0 */
/* The MQTT adapter: its [mqtt] section, the listener, start-up (sessions and retained messages
 * loaded from the store) and shutdown. Connections live in mqtt_conn.c. */
#include "adapters/mqtt/private.h"
#include "broker/listener.h"
#include "common/alloc.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/event.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define C fy_mqtt_config
static const fy_config_key mqtt_keys[] = {
    FY_CONFIG_KEY_BOOL("enabled", C, enabled, "true", "Accept MQTT 3.1, 3.1.1 and 5.0 clients."),
    FY_CONFIG_KEY_STRING("listen", C, listen, "127.0.0.1", "Address MQTT listens on."),
    FY_CONFIG_KEY_UINT("port", C, port, "1883", 0, 65535,
                       "TCP port of MQTT; 0 = pick a free port."),
    FY_CONFIG_KEY_STRING("fallback_topic", C, fallback_topic, "mqtt",
                         "Native topic for MQTT topics whose first level is not a topic name."),
    FY_CONFIG_KEY_STRING("topic_map", C, topic_map, "none",
                         "MQTT topic prefixes kept in other native topics: PREFIX=TOPIC ..."),
    FY_CONFIG_KEY_UINT("max_inflight", C, max_inflight, "64", 1, 65535,
                       "QoS 1 and 2 messages in flight to one client (lowered to its maximum)."),
    FY_CONFIG_KEY_UINT("receive_maximum", C, receive_maximum, "1024", 1, 65535,
                       "QoS 1 and 2 publishes a client may leave unacknowledged (MQTT 5)."),
    FY_CONFIG_KEY_UINT("max_keepalive", C, max_keepalive, "65535", 0, 65535,
                       "Largest keep-alive in seconds; MQTT 5 clients asking more are lowered."),
    FY_CONFIG_KEY_UINT("topic_alias_maximum", C, topic_alias_maximum, "10", 0, 65535,
                       "Topic aliases a client may set up (MQTT 5); 0 = none."),
    FY_CONFIG_KEY_SIZE("max_packet_size", C, max_packet_size, "0", 0, 268435460,
                       "Largest packet accepted; 0 = max_message_size plus 64KiB of headers."),
    FY_CONFIG_KEY_DURATION("connect_timeout", C, connect_timeout_ms, "10s", 100, 3600000,
                           "A connection must send CONNECT within this time."),
    FY_CONFIG_KEY_DURATION("session_expiry_max", C, session_expiry_max_ms, "0", 0, UINT64_MAX / 2,
                           "Cap on how long an offline session is kept; 0 = no cap."),
    FY_CONFIG_KEY_DURATION("sys_interval", C, sys_interval_ms, "10s", 0, 86400000,
                           "Publish the $SYS/broker/... topics this often; 0 = off."),
    FY_CONFIG_KEY_UINT("tls_port", C, tls_port, "8883", 0, 65535,
                       "TLS port of MQTT, open when [tls] certfile is set; 0 = a free port."),
    FY_CONFIG_KEY_UINT("ws_port", C, ws_port, "0", 0, 65535,
                       "TCP port of MQTT over WebSocket (subprotocol mqtt), on the listen "
                       "address; 0 = off."),
    FY_CONFIG_KEY_UINT("wss_port", C, wss_port, "0", 0, 65535,
                       "TLS port of MQTT over WebSocket (needs [tls] certfile); 0 = off."),
    FY_CONFIG_KEY_STRING("ws_path", C, ws_path, "/mqtt",
                         "Request path of the WebSocket; * = any path."),
    FY_CONFIG_KEY_STRING("ws_origins", C, ws_origins, "*",
                         "Origin headers a WebSocket handshake may carry, space-separated; "
                         "* = any."),
};
#undef C

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int slen,
                      void *arg)
{
    mqtt_server *srv = arg;
    char peer[64];
    fy_limit_verdict v;
    if (fy_listener_admit(srv->env.limits, FY_LIMIT_MQTT, fd, sa, &v, peer, sizeof(peer))) {
        mqtt_conn_accept(srv, fd, peer, v);
    }
}

static void on_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int slen, void *arg)
{
    mqtt_server *srv = arg;
    char peer[64];
    fy_limit_verdict v;
    if (fy_listener_admit(srv->env.limits, FY_LIMIT_MQTT, fd, sa, &v, peer, sizeof(peer))) {
        mqtt_conn_accept_tls(srv, fd, peer, v);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    mqtt_session_tick(arg);
    mqtt_session_alive(arg);
    mqtt_conn_trim(arg);
}

static void mqtt_stop(void *state);

static int mqtt_start(const fy_adapter_env *env, const void *conf, void **state, char *err,
                      size_t errlen)
{
    const fy_mqtt_config *cfg = conf;
    mqtt_server *srv;
    struct in_addr listen_addr;
    struct timeval tick = {1, 0};
    int rc;

    *state = NULL;
    if (!cfg->enabled) {
        fy_log(INFO, "mqtt", "msg=\"disabled\"");
        return FY_OK;
    }
    if (inet_pton(AF_INET, cfg->listen, &listen_addr) != 1) {
        snprintf(err, errlen, "[mqtt] listen: '%s' is not an IPv4 address", cfg->listen);
        return -FY_EINVAL;
    }
    if (cfg->sys_interval_ms > 0 && cfg->sys_interval_ms < 100) {
        snprintf(err, errlen, "[mqtt] sys_interval: 0 (off) or at least 100ms");
        return -FY_EINVAL;
    }
    if (!fy_core_name_valid(cfg->fallback_topic, strlen(cfg->fallback_topic))) {
        snprintf(err, errlen, "[mqtt] fallback_topic: '%s' is not a valid topic name",
                 cfg->fallback_topic);
        return -FY_EINVAL;
    }
    srv = FY_NEW(mqtt_server);
    srv->live = FY_NEW(mqtt_live);
    srv->live->srv = srv;
    srv->env = *env;
    srv->rbuf = fy_malloc(MQTT_RBUF);
    srv->cfg = cfg;
    srv->max_packet = cfg->max_packet_size ? (uint32_t)cfg->max_packet_size
                                           : (uint32_t)(env->max_message_size + 65536);
    rc = mqtt_topic_map_parse(srv, cfg->topic_map, err, errlen);
    if (rc == FY_OK) {
        rc = fy_listener_open(env->base, "MQTT", cfg->listen, (uint16_t)cfg->port, on_accept, srv,
                              &srv->listener, &srv->port, err, errlen);
    }
    if (rc == FY_OK && env->tls) {
        rc = fy_listener_open(env->base, "MQTT over TLS", cfg->listen, (uint16_t)cfg->tls_port,
                              on_accept_tls, srv, &srv->tls_listener, &srv->tls_port, err, errlen);
    }
    if (rc == FY_OK) {
        rc = mqtt_ws_listen(srv, err, errlen);
    }
    if (rc != FY_OK) {
        if (srv->listener) {
            evconnlistener_free(srv->listener);
        }
        if (srv->tls_listener) {
            evconnlistener_free(srv->tls_listener);
        }
        mqtt_topic_map_free(srv);
        fy_free(srv->live);
        fy_free(srv->rbuf);
        fy_free(srv);
        return rc;
    }
    mqtt_retained_load(srv);
    /* The router first: wills due at start-up are published while the sessions load, and reach
     * the durable sessions subscribed to them. */
    fy_core_set_router(env->core, mqtt_session_route, srv);
    mqtt_session_load_all(srv);
    fy_core_watch_topics(env->core, mqtt_session_on_topic, srv);
    srv->tick_ev = event_new(env->base, -1, EV_PERSIST, on_tick, srv);
    event_add(srv->tick_ev, &tick);
    mqtt_sys_start(srv);
    fy_log(INFO, "mqtt", "addr=%s port=%u msg=\"listening\"", cfg->listen, (unsigned)srv->port);
    if (srv->tls_listener) {
        fy_log(INFO, "mqtt", "addr=%s tls_port=%u msg=\"TLS listening\"", cfg->listen,
               (unsigned)srv->tls_port);
    }
    *state = srv;
    return FY_OK;
}

static void free_session(void *arg, const char *key, void *val)
{
    mqtt_session_free(val);
}

static void mqtt_stop(void *state)
{
    mqtt_server *srv = state;
    if (!srv) {
        return;
    }
    srv->stopping = true;
    srv->live->srv = NULL; /* store completions still to come do nothing */
    if (srv->live->refs == 0) {
        fy_free(srv->live);
    }
    mqtt_sys_stop(srv);
    evconnlistener_free(srv->listener);
    if (srv->tls_listener) {
        evconnlistener_free(srv->tls_listener);
    }
    mqtt_ws_stop(srv);
    /* The router goes after the connections: the wills their closing publishes (the clients
     * of sessions that end with them) reach the durable sessions subscribed to them. Their
     * completions refer to srv: they are waited for, as the connections' are. The topic watch
     * goes then (a will may make a topic): the core reports creations from a deferred event,
     * which may run once srv is gone. */
    mqtt_conn_close_all(srv);
    while (srv->wills_pending > 0) {
        event_base_loop(srv->env.base, EVLOOP_ONCE);
    }
    fy_core_set_router(srv->env.core, NULL, NULL);
    fy_core_unwatch_topics(srv->env.core, mqtt_session_on_topic, srv);
    fy_strmap_each(&srv->sessions, free_session, NULL);
    fy_strmap_free(&srv->sessions);
    mqtt_route_free(srv);
    mqtt_retained_free(srv);
    if (srv->tick_ev) {
        event_free(srv->tick_ev);
    }
    fy_buf_free(&srv->scratch);
    mqtt_topic_map_free(srv);
    fy_free(srv->durables);
    mqtt_conn_flush_free(srv);
    fy_free(srv->rbuf);
    fy_free(srv);
}

static void mqtt_stats(void *state, fy_adapter_stats *out)
{
    mqtt_server *srv = state;
    *out = srv->stats;
    out->sessions = srv->sessions.n;
}

static void mqtt_each_connection(void *state, fy_conn_info_fn fn, void *arg)
{
    mqtt_server *srv = state;
    for (mqtt_conn *c = srv->conns; c; c = c->next) {
        fy_conn_info ci = {0};
        if (c->closing) {
            continue;
        }
        ci.id = c->id;
        ci.client_id = c->s ? c->s->client_id : "";
        ci.peer = c->peer;
        ci.subscriptions = c->s ? (uint32_t)c->s->nsubs : 0;
        ci.inflight = c->s ? c->s->inflight : 0;
        fn(arg, &ci);
    }
}

static int mqtt_kick(void *state, uint64_t id)
{
    mqtt_server *srv = state;
    for (mqtt_conn *c = srv->conns; c; c = c->next) {
        if (c->id == id && !c->closing) {
            mqtt_conn_close(c, FY_MQTT_RC_ADMIN_ACTION, "kicked by an administrator");
            return FY_OK;
        }
    }
    return -FY_ENOTFOUND;
}

const fy_adapter fy_mqtt_adapter = {
    .abi = FY_ADAPTER_ABI,
    .name = "mqtt",
    .keys = mqtt_keys,
    .nkeys = sizeof(mqtt_keys) / sizeof(mqtt_keys[0]),
    .conf_size = sizeof(fy_mqtt_config),
    .start = mqtt_start,
    .stop = mqtt_stop,
    .stats = mqtt_stats,
    .each_connection = mqtt_each_connection,
    .kick = mqtt_kick,
};
