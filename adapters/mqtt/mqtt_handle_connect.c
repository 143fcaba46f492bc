/* SPDX-License-Identifier: Apache-2.0 */
/* CONNECT (client identifiers, clean start and session expiry, keep-alive, takeover, wills),
 * DISCONNECT, and what happens to a session and its will when a connection ends. */
#include "adapters/mqtt/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <stdio.h>
#include <string.h>

static void connack(mqtt_conn *c, int version, bool present, uint8_t reason,
                    const fy_mqtt_props *props)
{
    fy_mqtt_connack a = {0};
    a.session_present = present;
    a.reason = reason;
    if (props) {
        a.props = *props;
    }
    fy_mqtt_enc_connack(&c->out, version, &a, c->peer_max_packet);
}

/* How long a session outlives its connection, in ms (UINT64_MAX = for ever), capped by
 * session_expiry_max. */
static uint64_t session_expiry(const mqtt_server *srv, const fy_mqtt_connect *k)
{
    uint64_t ms = UINT64_MAX;
    if (k->version == FY_MQTT_V5) {
        uint32_t e =
            fy_mqtt_props_has(&k->props, FY_MQTT_P_SESSION_EXPIRY) ? k->props.session_expiry : 0;
        ms = e == UINT32_MAX ? UINT64_MAX : (uint64_t)e * 1000;
    } else if (k->clean) {
        ms = 0;
    }
    if (srv->cfg->session_expiry_max_ms > 0 && ms > srv->cfg->session_expiry_max_ms) {
        ms = srv->cfg->session_expiry_max_ms;
    }
    return ms;
}

/* Refuses a CONNECT (client_id is freed): logged, CONNACK with reason, then the connection
 * closes. */
static int refuse(mqtt_conn *c, uint8_t version, char *client_id, uint8_t reason, const char *why)
{
    fy_log(INFO, "mqtt", "conn=%llu peer=%s client=%s msg=\"refused: %s\"",
           (unsigned long long)c->id, c->peer, client_id, why);
    fy_free(client_id);
    connack(c, version, false, reason, NULL);
    mqtt_conn_flush(c);
    return MQTT_CLOSE_QUIET;
}

int mqtt_handle_connect(mqtt_conn *c, const fy_mqtt_frame_hdr *h)
{
    mqtt_server *srv = c->srv;
    fy_mqtt_connect k;
    const char *why = "bad CONNECT";
    fy_mqtt_props ack = {0};
    char assigned[40];
    char response_info[256 + 16];
    char *client_id;
    mqtt_session *s;
    bool present = false, durable;
    uint64_t expiry;
    uint16_t keepalive;
    int rc = fy_mqtt_decode_connect(h, &k, &why);

    if (rc != 0) {
        if (k.version == 0) {
            fy_log(INFO, "mqtt", "conn=%llu peer=%s msg=\"refused: %s\"", (unsigned long long)c->id,
                   c->peer, why);
            return MQTT_CLOSE_QUIET;
        }
        fy_mqtt_props why_props = {0};
        why_props.present = FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING);
        why_props.reason_string = fy_slice_str(why);
        connack(c, k.version == FY_MQTT_V5 ? FY_MQTT_V5 : FY_MQTT_V311, false, (uint8_t)rc,
                &why_props);
        fy_log(INFO, "mqtt", "conn=%llu peer=%s version=%u reason=0x%02x msg=\"refused: %s\"",
               (unsigned long long)c->id, c->peer, k.version, rc, why);
        mqtt_conn_flush(c);
        return MQTT_CLOSE_QUIET;
    }
    if (c->verdict == FY_LIMIT_REFUSE) {
        /* Over max_connections: the client learns why (3.1.1: 0x03 server unavailable). */
        fy_mqtt_props lp = {0};
        lp.present = FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING);
        lp.reason_string = fy_slice_str("too many connections (max_connections)");
        connack(c, k.version, false, FY_MQTT_RC_QUOTA_EXCEEDED, &lp);
        mqtt_conn_flush(c);
        return MQTT_CLOSE_QUIET;
    }
    c->version = k.version;
    if (k.version == FY_MQTT_V5) {
        c->peer_max_packet = fy_mqtt_props_has(&k.props, FY_MQTT_P_MAXIMUM_PACKET_SIZE)
                                 ? k.props.maximum_packet_size
                                 : 0;
        c->out_alias_max = fy_mqtt_props_has(&k.props, FY_MQTT_P_TOPIC_ALIAS_MAXIMUM)
                               ? k.props.topic_alias_maximum
                               : 0;
        c->peer_receive_max = fy_mqtt_props_has(&k.props, FY_MQTT_P_RECEIVE_MAXIMUM)
                                  ? k.props.receive_maximum
                                  : 65535;
        c->problem_info = !fy_mqtt_props_has(&k.props, FY_MQTT_P_REQUEST_PROBLEM_INFO) ||
                          k.props.request_problem_info == 1;
    } else {
        c->peer_receive_max = 65535;
        c->problem_info = true;
    }
    c->window = c->peer_receive_max < srv->cfg->max_inflight ? c->peer_receive_max
                                                             : (uint32_t)srv->cfg->max_inflight;

    if (k.client_id.len == 0) {
        /* 3.1.1 with clean session and 5.0: the server makes one up (3.1 and 3.1.1 without
         * clean session were refused by the decoder). */
        snprintf(assigned, sizeof(assigned), "ferry-%llx-%llx", (unsigned long long)fy_wall_ms(),
                 (unsigned long long)c->id);
        client_id = fy_strdup(assigned);
        if (k.version == FY_MQTT_V5) {
            ack.present |= FY_MQTT_PBIT(FY_MQTT_P_ASSIGNED_CLIENT_ID); /* set below */
        }
    } else {
        client_id = fy_strndup((const char *)k.client_id.p, k.client_id.len);
        if (memchr(k.client_id.p, '\0', k.client_id.len)) {
            fy_free(client_id);
            connack(c, k.version, false, FY_MQTT_RC_CLIENT_ID_INVALID, NULL);
            return MQTT_CLOSE_QUIET;
        }
    }

    if (c->tls && fy_tls_identity_is_username(srv->env.tls)) {
        /* use_identity_as_username (as mosquitto): the verified certificate is the credential
         * and its identity the user name, whatever CONNECT says. */
        char ident[256];
        if (fy_tls_peer_identity(c->bev, ident, sizeof(ident)) != FY_OK) {
            return refuse(c, k.version, client_id, FY_MQTT_RC_NOT_AUTHORIZED, "no identity");
        }
        c->user = fy_strdup(ident);
    } else if (srv->env.authenticate) {
        int arc;
        if (c->auth_answered) {
            /* This CONNECT again: its password check has answered (mqtt_conn_auth_done). */
            arc = c->auth_result;
            c->auth_answered = false;
        } else if (k.has_username && memchr(k.username.p, 0, k.username.len)) {
            arc = -FY_EPERM;
        } else {
            fy_auth_request ar = {"mqtt",     client_id,      c->peer,   k.has_username,
                                  k.username, k.has_password, k.password};
            arc =
                srv->env.authenticate(srv->env.auth_arg, &ar, mqtt_conn_auth_done, c, &c->auth_job);
            if (arc == FY_AUTH_PENDING) {
                fy_free(client_id);
                return MQTT_AUTH_WAIT;
            }
        }
        if (arc == -FY_EAGAIN || arc == -FY_ECANCELED) {
            return refuse(c, k.version, client_id, FY_MQTT_RC_SERVER_BUSY,
                          "server busy: too many password checks pending");
        }
        if (arc != FY_OK) {
            return refuse(c, k.version, client_id,
                          k.has_username ? FY_MQTT_RC_BAD_USER_PASS : FY_MQTT_RC_NOT_AUTHORIZED,
                          "not authorized");
        }
    }
    if (!c->user) {
        c->user = k.has_username ? fy_strndup((const char *)k.username.p, k.username.len) : NULL;
    }
    if (k.will && srv->env.authorize &&
        srv->env.authorize(srv->env.auth_arg, c->user, client_id, "mqtt", FY_ACL_WRITE,
                           k.will_topic) != FY_OK) {
        /* As mosquitto: a will the client may not publish refuses the connection. */
        return refuse(c, k.version, client_id, FY_MQTT_RC_NOT_AUTHORIZED, "will topic not allowed");
    }
    keepalive = k.keepalive;
    if (srv->cfg->max_keepalive < 65535 &&
        (keepalive > srv->cfg->max_keepalive || keepalive == 0) && k.version == FY_MQTT_V5) {
        keepalive = (uint16_t)srv->cfg->max_keepalive;
        ack.present |= FY_MQTT_PBIT(FY_MQTT_P_SERVER_KEEP_ALIVE);
        ack.server_keep_alive = keepalive;
    }
    c->keepalive = keepalive;

    expiry = session_expiry(srv, &k);
    durable = expiry > 0;
    s = fy_strmap_get(&srv->sessions, client_id, strlen(client_id));
    if (s && !s->conn && s->expire_at <= fy_mono_ms()) {
        /* Its expiry passed since the last tick (once a second): it ends now, as the tick ends
         * it (its will first, if one waits), and this client starts a new one. */
        mqtt_session_tick(srv);
        s = fy_strmap_get(&srv->sessions, client_id, strlen(client_id));
    }
    if (s && s->conn) {
        /* Takeover: the old connection goes (its will too), the session stays. */
        mqtt_conn *old = s->conn;
        mqtt_conn_close(old, FY_MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
        s = fy_strmap_get(&srv->sessions, client_id, strlen(client_id));
    }
    if (s && k.clean) {
        mqtt_session_end(s);
        s = NULL;
    }
    if (s) {
        present = true;
        s->durable = durable;
        s->expiry_ms = expiry;
        if (s->will_pending) {
            /* Back within the will delay: the will is not sent. */
            s->will_pending = false;
            fy_buf_reset(&s->will_rec);
        }
    } else {
        s = mqtt_session_new(srv, client_id, durable);
        s->expiry_ms = expiry;
    }
    fy_free(client_id);
    ack.assigned_client_id = fy_slice_str(s->client_id);
    /* Connected: should the broker be killed, its alive time dates the disconnect. */
    s->disconnected_ms = 0;
    if (s->durable) {
        mqtt_session_store(s, NULL, NULL);
    }

    if (k.will) {
        c->has_will = true;
        c->will_qos = k.will_qos;
        c->will_retain = k.will_retain;
        c->will_delay_s =
            fy_mqtt_props_has(&k.will_props, FY_MQTT_P_WILL_DELAY) ? k.will_props.will_delay : 0;
        mqtt_build_record(srv, &c->will_rec, s->client_id, k.will_topic, k.will_qos, k.will_retain,
                          k.version == FY_MQTT_V5 ? &k.will_props : NULL, k.will_payload);
    }

    if (k.version == FY_MQTT_V5 && fy_mqtt_props_has(&k.props, FY_MQTT_P_REQUEST_RESPONSE_INFO) &&
        k.props.request_response_info == 1 && !strpbrk(s->client_id, "+#") &&
        strlen(s->client_id) <= 256) {
        /* A topic prefix the client may use for responses (MQTT 5 4.10). */
        snprintf(response_info, sizeof(response_info), "response/%s", s->client_id);
        ack.present |= FY_MQTT_PBIT(FY_MQTT_P_RESPONSE_INFO);
        ack.response_info = fy_slice_str(response_info);
    }
    if (k.version == FY_MQTT_V5) {
        ack.present |=
            FY_MQTT_PBIT(FY_MQTT_P_RECEIVE_MAXIMUM) | FY_MQTT_PBIT(FY_MQTT_P_MAXIMUM_PACKET_SIZE);
        ack.receive_maximum = (uint16_t)srv->cfg->receive_maximum;
        ack.maximum_packet_size = srv->max_packet;
        if (srv->cfg->topic_alias_maximum > 0) {
            ack.present |= FY_MQTT_PBIT(FY_MQTT_P_TOPIC_ALIAS_MAXIMUM);
            ack.topic_alias_maximum = (uint16_t)srv->cfg->topic_alias_maximum;
        }
        c->nalias = (uint16_t)srv->cfg->topic_alias_maximum;
        c->aliases = c->nalias ? fy_calloc(c->nalias, sizeof(*c->aliases)) : NULL;
    }
    connack(c, k.version, present, FY_MQTT_RC_SUCCESS, &ack);
    c->connected = true;
    srv->stats.connections++;
    mqtt_conn_keepalive(c, keepalive);
    fy_log(DEBUG, "mqtt",
           "conn=%llu peer=%s client=%s version=%u clean=%d keepalive=%u present=%d "
           "msg=\"connected\"",
           (unsigned long long)c->id, c->peer, s->client_id, k.version, k.clean, keepalive,
           present);
    mqtt_session_attach(s, c, present);
    return 0;
}

int mqtt_handle_disconnect(mqtt_conn *c, const fy_mqtt_frame_hdr *h)
{
    fy_mqtt_disconnect d;
    const char *why = "bad DISCONNECT";
    int rc = fy_mqtt_decode_disconnect(h, c->version, &d, &why);
    if (rc != 0) {
        return rc;
    }
    if (c->version == FY_MQTT_V5 && fy_mqtt_props_has(&d.props, FY_MQTT_P_SESSION_EXPIRY)) {
        if (c->s && c->s->expiry_ms == 0 && d.props.session_expiry != 0) {
            return FY_MQTT_RC_PROTOCOL_ERROR; /* 3.14.2.2.2: not after 0 in CONNECT */
        }
        if (c->s) {
            uint64_t e = d.props.session_expiry;
            c->s->expiry_ms = e == UINT32_MAX ? UINT64_MAX : e * 1000;
        }
    }
    if (d.reason != FY_MQTT_RC_DISCONNECT_WITH_WILL) {
        c->has_will = false; /* a normal disconnect discards the will */
    }
    mqtt_conn_close(c, FY_MQTT_RC_SUCCESS, "client disconnected");
    return 0;
}

void mqtt_conn_ended(mqtt_conn *c, bool publish_will)
{
    mqtt_session *s = c->s;
    mqtt_server *srv = c->srv;
    if (!s) {
        return;
    }
    if (publish_will && c->has_will) {
        bool session_lives = s->expiry_ms > 0;
        if (c->will_delay_s > 0 && session_lives) {
            uint64_t delay = (uint64_t)c->will_delay_s * 1000;
            if (s->expiry_ms < delay) {
                delay = s->expiry_ms;
            }
            fy_buf_reset(&s->will_rec);
            fy_buf_append(&s->will_rec, c->will_rec.data, c->will_rec.len);
            s->will_qos = c->will_qos;
            s->will_retain = c->will_retain;
            s->will_pending = true;
            s->will_at = fy_mono_ms() + delay;
            s->will_delay_ms = delay; /* stored with the session by mqtt_session_detach */
        } else {
            mqtt_publish_will(srv, &c->will_rec, c->will_qos, c->will_retain);
        }
    }
    c->has_will = false;
    mqtt_session_detach(s);
    c->s = NULL;
}
