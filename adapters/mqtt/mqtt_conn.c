/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT connections: framing, the one packet switch, keep-alive, output and the close path.
 * Plain TCP connections are "lean" (a socket and one event; input read into the server's buffer
 * and only an incomplete packet kept; output written straight from `out`); TLS and WebSocket
 * connections run on bufferevents. A bad packet closes only its own connection, with a reason code
 * (MQTT 5) and a log line; a connection is freed only once no core completion refers to it. */
#include "adapters/mqtt/private.h"
#include "broker/listener.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PENDING 4096 /* publishes waiting for the store before reading pauses */
/* Input held while CONNECT's password check runs: reading stops beyond this much (reading on
 * below it notices a client that goes away, which cancels the check). */
#define AUTH_HOLD_MAX MQTT_RBUF

static void free_alias_key(void *arg, const char *key, void *val)
{
    fy_free((void *)key);
}

static void conn_free(mqtt_conn *c)
{
    mqtt_server *srv = c->srv;
    if (c->prev) {
        c->prev->next = c->next;
    } else if (srv->conns == c) {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    for (uint16_t i = 0; i < c->nalias; i++) {
        fy_free(c->aliases[i]);
    }
    fy_free(c->aliases);
    fy_free(c->user);
    fy_strmap_each(&c->out_alias, free_alias_key, NULL);
    fy_strmap_free(&c->out_alias);
    fy_buf_free(&c->will_rec);
    fy_buf_free(&c->out);
    fy_buf_free(&c->in);
    if (c->flush_listed) {
        for (size_t i = 0; i < srv->nflush; i++) {
            if (srv->flushq[i] == c) {
                srv->flushq[i] = NULL;
            }
        }
    }
    if (c->connect_timer) {
        event_free(c->connect_timer);
    }
    fy_limits_release(srv->env.limits, c->verdict);
    mqtt_ws_free(c->ws);
    fy_free(c);
}

static bool sock_alive(const mqtt_conn *c)
{
    return c->bev || c->fd >= 0;
}

/* Frees c once its socket is gone and nothing refers to it. */
static void conn_maybe_free(mqtt_conn *c)
{
    if (c->closing && !sock_alive(c) && c->pending == 0 && !c->in_read) {
        conn_free(c);
    }
}

/* ---- Lean sockets (plain TCP) ------------------------------------------------------------ */

static void lean_on_event(evutil_socket_t fd, short what, void *arg);

/* Closes a lean connection's socket (its output is written or given up). */
static void lean_close_sock(mqtt_conn *c)
{
    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->ev_what = 0;
}

/* Arms the event for what c waits for now: input (unless paused or closing), the socket taking
 * output (while some waits), and the idle timeout (5 s to drain when closing). force: re-add
 * even if that is unchanged (a new timeout). */
static void lean_arm(mqtt_conn *c, bool force)
{
    short what = EV_PERSIST;
    struct timeval tv;
    uint32_t ms = c->closing ? 5000 : c->read_paused ? 0 : c->timeout_ms;
    if (c->fd < 0) {
        return;
    }
    if (!c->closing && !c->read_paused && !c->input_ended &&
        !(c->auth_job && c->in.len >= AUTH_HOLD_MAX)) {
        what |= EV_READ;
    }
    if (c->out.len > 0 || (c->sock_dead && !c->closing)) {
        what |= EV_WRITE;
    }
    if (what == c->ev_what && !force) {
        return;
    }
    event_del(c->ev);
    event_assign(c->ev, c->srv->env.base, c->fd, what, lean_on_event, c);
    c->ev_what = what;
    if (what & (EV_READ | EV_WRITE)) {
        tv = fy_ms_timeval(ms);
        event_add(c->ev, ms ? &tv : NULL);
    }
}

/* Writes what the socket takes of c->out; the rest waits for EV_WRITE. A failure is handled
 * from the event (callers may be deep in a handler), never here. */
static void lean_write(mqtt_conn *c)
{
    ssize_t n;
    if (c->sock_dead) {
        fy_buf_reset(&c->out);
        return;
    }
    while (c->out.len > 0) {
        n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            fy_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        c->sock_dead = true; /* the event closes it */
        fy_buf_reset(&c->out);
        if (c->ev) {
            event_active(c->ev, EV_WRITE, 0);
        }
        return;
    }
    if (c->out.len == 0 && c->out.cap > 4096) {
        fy_buf_free(&c->out); /* an idle connection keeps no large buffer */
    }
}

static void bev_gone(mqtt_conn *c)
{
    if (c->bev) {
        fy_tls_bev_free(c->bev);
        c->bev = NULL;
    }
    conn_maybe_free(c);
}

static void on_drained_close(struct bufferevent *bev, void *arg)
{
    mqtt_conn *c = arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        bev_gone(c);
    }
}

static void on_event_close(struct bufferevent *bev, short what, void *arg)
{
    if (what != BEV_EVENT_CONNECTED) {
        bev_gone(arg);
    }
}

/* Writes the output of the lean connections that have some, once per turn of the loop. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    mqtt_server *srv = arg;
    srv->flush_armed = false;
    for (size_t i = 0; i < srv->nflush; i++) {
        mqtt_conn *c = srv->flushq[i];
        if (!c) {
            continue; /* freed since */
        }
        c->flush_listed = false;
        if (c->fd >= 0 && !c->closing) {
            lean_write(c);
            lean_arm(c, false);
            if (!c->sock_dead && c->s &&
                c->out.len <= fy_limits_max_queued_bytes(srv->env.limits) / 4) {
                mqtt_session_drained(c->s); /* as a bufferevent's write callback: room again */
            }
        }
    }
    srv->nflush = 0;
}

void mqtt_conn_flush(mqtt_conn *c)
{
    mqtt_server *srv = c->srv;
    if (c->lean) {
        if (c->fd < 0) {
            fy_buf_reset(&c->out);
        } else if (!c->closing && c->out.len > 0 && !c->flush_listed) {
            if (srv->nflush == srv->capflush) {
                srv->capflush = srv->capflush ? srv->capflush * 2 : 64;
                srv->flushq = fy_realloc(srv->flushq, srv->capflush * sizeof(*srv->flushq));
            }
            srv->flushq[srv->nflush++] = c;
            c->flush_listed = true;
            if (!srv->flush_armed) {
                if (!srv->flush_ev) {
                    srv->flush_ev = event_new(srv->env.base, -1, 0, on_flush, srv);
                }
                srv->flush_armed = true;
                event_active(srv->flush_ev, EV_WRITE, 0);
            }
        }
        return;
    }
    if (c->out.len > 0 && c->bev && !c->closing) {
        if (c->ws) {
            mqtt_ws_write(c, c->out.data, c->out.len);
        } else {
            bufferevent_write(c->bev, c->out.data, c->out.len);
        }
    }
    fy_buf_reset(&c->out);
}

/* Output queued above [limits] max_queued_bytes: credits are held back until it drains below
 * a quarter of that (the write low watermark, then on_write). */
bool mqtt_conn_slow(const mqtt_conn *c)
{
    if (c->lean) {
        return c->fd < 0 || c->out.len > fy_limits_max_queued_bytes(c->srv->env.limits);
    }
    return !c->bev || evbuffer_get_length(bufferevent_get_output(c->bev)) >
                          fy_limits_max_queued_bytes(c->srv->env.limits);
}

void mqtt_conn_close(mqtt_conn *c, uint8_t reason, const char *why)
{
    bool will;
    if (c->closing) {
        return;
    }
    if (c->auth_job) {
        /* Gone before its password check answered: the answer is not wanted. */
        c->srv->env.auth_cancel(c->srv->env.auth_arg, c->auth_job);
        c->auth_job = NULL;
    }
    /* What the client published before it went (a QoS 0 publish then DISCONNECT) is stored.
     * The flush may close c itself (a 3.1.1 publish the store refused at once): in_read keeps
     * that inner close from freeing c under us. */
    {
        bool was_in_read = c->in_read;
        c->in_read = true;
        mqtt_publish_flush(c);
        c->in_read = was_in_read;
    }
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (reason >= 0x80 && reason != FY_MQTT_RC_SERVER_SHUTTING_DOWN) {
        fy_log(INFO, "mqtt", "conn=%llu peer=%s client=%s reason=0x%02x msg=\"closed: %s\"",
               (unsigned long long)c->id, c->peer, c->s ? c->s->client_id : "-", reason, why);
    } else {
        fy_log(DEBUG, "mqtt", "conn=%llu peer=%s client=%s reason=0x%02x msg=\"closed: %s\"",
               (unsigned long long)c->id, c->peer, c->s ? c->s->client_id : "-", reason, why);
    }
    if (c->connected && c->version == FY_MQTT_V5 && reason >= 0x80 && sock_alive(c)) {
        fy_mqtt_disconnect d = {0};
        d.reason = reason;
        if (c->problem_info && why) {
            d.props.present |= FY_MQTT_PBIT(FY_MQTT_P_REASON_STRING);
            d.props.reason_string = fy_slice_str(why); /* dropped if over the client's maximum */
        }
        fy_mqtt_enc_disconnect(&c->out, c->version, &d, c->peer_max_packet);
    }
    mqtt_conn_flush(c);
    if (c->ws && c->bev) {
        mqtt_ws_close(c, reason, why); /* the WebSocket close frame goes after the last packet */
    }
    c->closing = true;
    if (c->connected) {
        c->srv->stats.connections--;
    }
    /* The will goes out on every end but a normal DISCONNECT (which cleared it). */
    will = c->has_will;
    mqtt_conn_ended(c, will);
    if (c->ws && c->bev && reason < 0x80 && !c->srv->stopping) {
        mqtt_ws_linger(c); /* a normal end: the close handshake goes on without c */
    }
    if (c->lean && c->fd >= 0) {
        if (c->out.len == 0 || c->srv->stopping || c->sock_dead) {
            lean_close_sock(c);
            conn_maybe_free(c);
            return;
        }
        lean_arm(c, true); /* the last packets go out (at most 5 s), then the socket closes */
        return;
    }
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 || c->srv->stopping ||
            c->sock_dead) {
            bev_gone(c);
            return;
        }
        /* Let the last packets (CONNACK, DISCONNECT) go out, then close. */
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_setcb(c->bev, NULL, on_drained_close, on_event_close, c);
        {
            struct timeval tv = {5, 0};
            bufferevent_set_timeouts(c->bev, NULL, &tv);
        }
        return;
    }
    conn_maybe_free(c);
}

/* Called when a core completion that held c finishes. */
static int dispatch(mqtt_conn *c, const fy_mqtt_frame_hdr *h, const char **why)
{
    if (!c->connected) {
        if (h->type != FY_MQTT_CONNECT) {
            *why = "first packet is not CONNECT";
            return FY_MQTT_RC_PROTOCOL_ERROR;
        }
        return mqtt_handle_connect(c, h);
    }
    switch (h->type) {
    case FY_MQTT_PUBLISH:
        return mqtt_handle_publish(c, h);
    case FY_MQTT_PUBACK:
    case FY_MQTT_PUBREC:
    case FY_MQTT_PUBREL:
    case FY_MQTT_PUBCOMP:
        return mqtt_handle_ack(c, h);
    case FY_MQTT_SUBSCRIBE:
        return mqtt_handle_subscribe(c, h);
    case FY_MQTT_UNSUBSCRIBE:
        return mqtt_handle_unsubscribe(c, h);
    case FY_MQTT_PINGREQ: {
        int rc = fy_mqtt_decode_ping(h, why);
        if (rc == 0) {
            fy_mqtt_enc_pingresp(&c->out);
        }
        return rc;
    }
    case FY_MQTT_DISCONNECT:
        return mqtt_handle_disconnect(c, h);
    case FY_MQTT_CONNECT:
        *why = "second CONNECT";
        return FY_MQTT_RC_PROTOCOL_ERROR;
    case FY_MQTT_AUTH:
        *why = c->version == FY_MQTT_V5 ? "AUTH without an authentication method"
                                        : "AUTH is not a 3.1.1 packet";
        return FY_MQTT_RC_PROTOCOL_ERROR;
    default:
        *why = "a packet only a server sends";
        return FY_MQTT_RC_PROTOCOL_ERROR;
    }
}

/* Closes c for a packet it could not take (rc from framing or a handler). */
static void packet_error(mqtt_conn *c, int rc, const char *why)
{
    if (rc == MQTT_CLOSE_QUIET) {
        /* Already answered and logged (a refused CONNECT). */
        mqtt_conn_close(c, FY_MQTT_RC_PROTOCOL_ERROR, "CONNECT refused");
    } else if (rc == FY_MQTT_RC_PACKET_TOO_LARGE || rc == FY_MQTT_RC_MALFORMED ||
               rc == FY_MQTT_RC_PROTOCOL_ERROR || rc >= 0x80) {
        mqtt_conn_close(c, (uint8_t)rc, why);
    } else {
        mqtt_conn_close(c, FY_MQTT_RC_MALFORMED, why);
    }
}

/* After the packets of one read: the publishes they made go to the store together; c may be
 * freed (returns false). */
static bool read_done(mqtt_conn *c)
{
    if (!c->closing) {
        mqtt_publish_flush(c); /* may close c (a refused 3.1.1 publish): not freed while in_read */
    }
    c->in_read = false;
    if (c->closing) {
        conn_maybe_free(c);
        return false;
    }
    return true;
}

/* The peer's input ended while CONNECT's check was pending (c->input_ended): once the check
 * has answered and what came before the end is handled, c closes as it would have then. Called
 * with c->in_read set (c is not freed here). */
static void input_end_maybe(mqtt_conn *c)
{
    if (c->input_ended && !c->closing && !c->auth_job && !c->read_paused) {
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "peer closed the connection");
    }
}

/* CONNECT came and waits for its password check (MQTT_AUTH_WAIT): the CONNECT deadline is met.
 * No timeout runs while the check is pending, however long it waits for the auth worker (at most
 * auth_max_pending checks ahead of it): then CONNACK starts keep-alive, or a refusal closes. */
static void connect_came(mqtt_conn *c)
{
    if (c->connect_timer) {
        event_free(c->connect_timer);
        c->connect_timer = NULL;
    }
    if (c->lean) {
        c->timeout_ms = 0;
        lean_arm(c, true);
    } else if (c->bev) {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    mqtt_conn *c = arg;
    /* Over WebSocket the MQTT bytes are what the frames carried so far. */
    struct evbuffer *in = c->ws ? mqtt_ws_read(c) : bufferevent_get_input(bev);
    /* Handlers may close c (and free its bufferevent): c is freed after this returns. */
    c->in_read = true;
    while (!c->closing && !c->read_paused && !c->auth_job) {
        uint8_t head[5];
        size_t avail = evbuffer_get_length(in), got;
        fy_mqtt_frame_hdr h;
        const char *why = "malformed packet";
        int rc;
        if (avail == 0) {
            break;
        }
        got = evbuffer_copyout(in, head, avail < sizeof(head) ? avail : sizeof(head)) > 0
                  ? (avail < sizeof(head) ? avail : sizeof(head))
                  : 0;
        rc = fy_mqtt_frame(head, got, c->srv->max_packet, &h, &why);
        if (rc == FY_MQTT_NEED_MORE && h.hdr_len > 0 && avail >= h.hdr_len + (size_t)h.remaining) {
            rc = 0; /* the body is in the buffer, beyond the peeked bytes */
        }
        if (rc == FY_MQTT_NEED_MORE) {
            if (h.hdr_len > 0 && avail < h.hdr_len + (size_t)h.remaining) {
                break; /* header known, body not complete */
            }
            if (got < sizeof(head)) {
                break;
            }
        }
        if (rc == 0) {
            size_t total = h.hdr_len + (size_t)h.remaining;
            const uint8_t *p = evbuffer_pullup(in, (ssize_t)total);
            rc = fy_mqtt_frame(p, total, c->srv->max_packet, &h, &why);
            if (rc == 0) {
                rc = dispatch(c, &h, &why);
            }
            if (rc == MQTT_AUTH_WAIT) {
                connect_came(c);
                break; /* the CONNECT stays in `in` until its check answers */
            }
            if (!c->closing) {
                evbuffer_drain(in, total);
            }
        }
        if (rc != 0) {
            packet_error(c, rc, why);
            break;
        }
    }
    if (c->ws && !c->closing && mqtt_ws_ended(c)) {
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, mqtt_ws_ended(c));
    }
    input_end_maybe(c);
    if (!read_done(c)) {
        return;
    }
    if (c->pending > MAX_PENDING && !c->read_paused) {
        c->read_paused = true;
        bufferevent_disable(bev, EV_READ);
    }
    if (c->auth_job && evbuffer_get_length(in) >= AUTH_HOLD_MAX) {
        bufferevent_disable(bev, EV_READ); /* until the check answers (resume_input) */
    }
    mqtt_conn_flush(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    mqtt_conn *c = arg;
    if (c->s && !c->closing) {
        mqtt_session_drained(c->s);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    mqtt_conn *c = arg;
    if (what == BEV_EVENT_CONNECTED) {
        return; /* the TLS handshake is done */
    }
    if (what & BEV_EVENT_TIMEOUT) {
        mqtt_conn_close(c, c->connected ? FY_MQTT_RC_KEEP_ALIVE_TIMEOUT : FY_MQTT_RC_MALFORMED,
                        c->connected ? "keep-alive expired" : "no CONNECT in time");
    } else if (what & BEV_EVENT_EOF) {
        if (c->auth_job && !c->closing) {
            /* What came before the end waits for CONNECT's check (input_end_maybe). */
            c->input_ended = true;
            return;
        }
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "peer closed the connection");
    } else {
        /* Nothing more can be written: waiting for the output to drain would keep the socket
         * (libevent has disabled writing after a write error) for ever. */
        const char *why = c->tls ? fy_tls_bev_error(bev) : NULL;
        c->sock_dead = true;
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, why ? why : "socket error");
    }
}

/* Handles the complete packets at p[0..n) of a lean connection: returns the bytes used (it
 * stops at an incomplete packet, when reading pauses, or when c closes). */
static size_t lean_packets(mqtt_conn *c, const uint8_t *p, size_t n)
{
    size_t used = 0;
    while (!c->closing && !c->read_paused && !c->auth_job && used < n) {
        fy_mqtt_frame_hdr h;
        const char *why = "malformed packet";
        int rc = fy_mqtt_frame(p + used, n - used, c->srv->max_packet, &h, &why);
        if (rc == FY_MQTT_NEED_MORE) {
            break;
        }
        if (rc == 0) {
            rc = dispatch(c, &h, &why);
            if (rc == MQTT_AUTH_WAIT) {
                connect_came(c);
                break; /* the CONNECT is kept (in c->in) until its check answers */
            }
            used += h.hdr_len + (size_t)h.remaining;
        }
        if (rc != 0) {
            packet_error(c, rc, why);
            break;
        }
    }
    return used;
}

/* Handles what c->in holds (bytes of an earlier read), keeping what is left for later. */
static void lean_take_in(mqtt_conn *c)
{
    size_t used = lean_packets(c, c->in.data, c->in.len);
    if (!c->closing) {
        fy_buf_consume(&c->in, used);
        if (c->in.len == 0) {
            fy_buf_free(&c->in);
        }
    }
}

/* One read of a lean connection: into the server's buffer, packets handled from there; only an
 * incomplete packet (or what came while reading is paused) is copied into c->in. */
static void lean_read(mqtt_conn *c)
{
    mqtt_server *srv = c->srv;
    ssize_t n;
    c->in_read = true;
    if (c->in.len > 0) {
        /* Room for what the packet still lacks (at least 4 KiB, at most MQTT_RBUF): a client
         * that stops in the middle of a packet holds no more than that. */
        fy_mqtt_frame_hdr h;
        const char *why;
        size_t want = 4096;
        if (fy_mqtt_frame(c->in.data, c->in.len, srv->max_packet, &h, &why) == FY_MQTT_NEED_MORE &&
            h.hdr_len > 0 && h.hdr_len + (size_t)h.remaining - c->in.len > want) {
            want = h.hdr_len + (size_t)h.remaining - c->in.len;
        }
        want = want < MQTT_RBUF ? want : MQTT_RBUF;
        fy_buf_reserve(&c->in, want);
        n = recv(c->fd, c->in.data + c->in.len, want, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            lean_take_in(c);
        }
    } else {
        n = recv(c->fd, srv->rbuf, MQTT_RBUF, 0);
        if (n > 0) {
            size_t used = lean_packets(c, srv->rbuf, (size_t)n);
            if (!c->closing && used < (size_t)n) {
                fy_buf_append(&c->in, srv->rbuf + used, (size_t)n - used);
            }
        }
    }
    if (n == 0 && c->auth_job && !c->closing) {
        c->input_ended = true; /* what came before waits for CONNECT's check (resume_input) */
    } else if (n == 0) {
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "peer closed the connection");
    } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->sock_dead = true;
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "socket error");
    }
    if (!read_done(c)) {
        return;
    }
    if (c->pending > MAX_PENDING && !c->read_paused) {
        c->read_paused = true;
    }
    mqtt_conn_flush(c);
    lean_arm(c, false);
}

static void lean_on_event(evutil_socket_t fd, short what, void *arg)
{
    mqtt_conn *c = arg;
    if (c->closing) {
        /* Draining the last packets: closed once written, failed or after 5 s. */
        if (!(what & EV_TIMEOUT) && !c->sock_dead) {
            lean_write(c);
        }
        if (c->out.len == 0 || c->sock_dead || (what & EV_TIMEOUT)) {
            lean_close_sock(c);
            conn_maybe_free(c);
        }
        return;
    }
    if (c->sock_dead) {
        mqtt_conn_close(c, FY_MQTT_RC_UNSPECIFIED, "socket error");
        return;
    }
    if (what & EV_TIMEOUT) {
        mqtt_conn_close(c, c->connected ? FY_MQTT_RC_KEEP_ALIVE_TIMEOUT : FY_MQTT_RC_MALFORMED,
                        c->connected ? "keep-alive expired" : "no CONNECT in time");
        return;
    }
    if (what & EV_WRITE) {
        size_t low = fy_limits_max_queued_bytes(c->srv->env.limits) / 4;
        lean_write(c);
        if (c->sock_dead) {
            return; /* the event comes again and closes c */
        }
        lean_arm(c, false);
        if (c->out.len <= low && c->s) {
            mqtt_session_drained(c->s); /* room again: held-back credit goes back */
        }
        if (c->closing) {
            return;
        }
    }
    if (what & EV_READ) {
        lean_read(c);
    }
}

/* Input may be handled again: what was read meanwhile first, then reading again. */
static void resume_input(mqtt_conn *c)
{
    if (c->lean) {
        c->in_read = true;
        lean_take_in(c);
        input_end_maybe(c);
        if (!read_done(c)) {
            return;
        }
        if (c->pending > MAX_PENDING) {
            c->read_paused = true;
        }
        mqtt_conn_flush(c);
        lean_arm(c, true);
        return;
    }
    if (!c->read_paused) {
        bufferevent_enable(c->bev, EV_READ);
    }
    on_read(c->bev, c); /* what is already buffered */
}

/* Resumes reading once the store has caught up (called by the publish path). */
void mqtt_conn_pending_done(mqtt_conn *c)
{
    c->pending--;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    if (c->read_paused && c->pending < MAX_PENDING / 4) {
        c->read_paused = false;
        resume_input(c);
    }
}

void mqtt_conn_auth_done(void *arg, int result)
{
    mqtt_conn *c = arg; /* not closing: a connection that closes cancels its check */
    c->auth_job = NULL;
    c->auth_result = result;
    c->auth_answered = true;
    resume_input(c); /* CONNECT is handled again, now with its answer */
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    mqtt_conn *c = arg;
    if (!c->connected && !c->closing) {
        mqtt_conn_close(c, FY_MQTT_RC_MALFORMED, "no CONNECT in time");
    }
}

static mqtt_conn *conn_new(mqtt_server *srv, const char *peer, fy_limit_verdict verdict)
{
    mqtt_conn *c = FY_NEW(mqtt_conn);
    c->srv = srv;
    c->fd = -1;
    c->verdict = verdict;
    c->id = ++srv->next_conn_id;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    return c;
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg);

/* The CONNECT deadline: absolute (a client sending a byte a second must meet it too). */
static void connect_deadline(mqtt_conn *c)
{
    struct timeval tv;
    tv = fy_ms_timeval(c->srv->cfg->connect_timeout_ms);
    c->connect_timer = evtimer_new(c->srv->env.base, on_connect_timeout, c);
    evtimer_add(c->connect_timer, &tv);
}

/* A plain TCP connection without a bufferevent (see struct mqtt_conn). */
static void lean_start(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict)
{
    mqtt_conn *c;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    evutil_make_socket_nonblocking(fd);
    c = conn_new(srv, peer, verdict);
    c->lean = true;
    c->fd = fd;
    c->ev = event_new(srv->env.base, fd, EV_READ | EV_PERSIST, lean_on_event, c);
    c->timeout_ms = (uint32_t)srv->cfg->connect_timeout_ms;
    connect_deadline(c);
    lean_arm(c, true);
    fy_log(DEBUG, "mqtt", "conn=%llu peer=%s msg=\"accepted\"", (unsigned long long)c->id, peer);
}

/* Starts a connection on fd: plain TCP, or TLS when tls is set (the handshake runs inside the
 * bufferevent, under the CONNECT timeout). */
static void conn_accept(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict,
                        fy_tls *tls)
{
    struct bufferevent *bev;
    if (!tls) {
        lean_start(srv, fd, peer, verdict);
        return;
    }
    bev = fy_listener_bev(srv->env.base, fd, tls, srv->env.limits, verdict);
    if (bev) {
        mqtt_conn_start(srv, bev, peer, verdict, true);
    }
}

/* Makes an MQTT connection of a connected bufferevent (which it then owns, as it does the
 * verdict of fy_limits_accept): plain TCP, or TLS (tls: its handshake runs inside the
 * bufferevent); CONNECT must come within connect_timeout. */
mqtt_conn *mqtt_conn_start(mqtt_server *srv, struct bufferevent *bev, const char *peer,
                           fy_limit_verdict verdict, bool tls)
{
    mqtt_conn *c = conn_new(srv, peer, verdict);
    struct timeval tv;
    c->tls = tls;
    c->bev = bev;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, fy_limits_max_queued_bytes(srv->env.limits) / 4, 0);
    tv = fy_ms_timeval(srv->cfg->connect_timeout_ms);
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    /* The read timeout is an idle timeout; a client sending a byte a second would never meet
     * it, so CONNECT also has a deadline. */
    connect_deadline(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    fy_log(DEBUG, "mqtt", "conn=%llu peer=%s tls=%s msg=\"accepted\"", (unsigned long long)c->id,
           peer, tls ? "true" : "false");
    return c;
}

void mqtt_conn_accept(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict)
{
    conn_accept(srv, fd, peer, verdict, NULL);
}

void mqtt_conn_accept_tls(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict)
{
    conn_accept(srv, fd, peer, verdict, srv->env.tls);
}

/* Sets the keep-alive read timeout: 1.5 times the keep-alive, none for 0. */
void mqtt_conn_keepalive(mqtt_conn *c, uint16_t secs)
{
    if (c->connect_timer) {
        event_free(c->connect_timer); /* CONNECT came: an idle connection keeps no timer */
        c->connect_timer = NULL;
    }
    if (c->lean) {
        c->timeout_ms = (uint32_t)((uint64_t)secs * 1500);
        lean_arm(c, true);
        return;
    }
    if (secs == 0) {
        bufferevent_set_timeouts(c->bev, NULL, NULL);
    } else {
        uint64_t ms = (uint64_t)secs * 1500;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        bufferevent_set_timeouts(c->bev, &tv, NULL);
    }
}

void mqtt_conn_flush_free(mqtt_server *srv)
{
    if (srv->flush_ev) {
        event_free(srv->flush_ev);
        srv->flush_ev = NULL;
    }
    fy_free(srv->flushq);
    srv->flushq = NULL;
    srv->nflush = srv->capflush = 0;
}

void mqtt_conn_trim(mqtt_server *srv)
{
    for (mqtt_conn *c = srv->conns; c; c = c->next) {
        if (c->out.len == 0 && c->out.cap > 0) {
            fy_buf_free(&c->out); /* about 80 bytes of each idle connection */
        }
    }
}

/* Closes every connection at shutdown and waits for their store completions. */
void mqtt_conn_close_all(mqtt_server *srv)
{
    for (mqtt_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing) {
            mqtt_conn_close(c, FY_MQTT_RC_SERVER_SHUTTING_DOWN, "broker shutting down");
        }
    }
    /* Completions refer to their connection: let the store finish them. */
    while (srv->conns) {
        bool waiting = false;
        for (mqtt_conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            if (c->bev) {
                fy_tls_bev_free(c->bev);
                c->bev = NULL;
            }
            lean_close_sock(c);
            if (c->pending == 0) {
                conn_free(c);
            } else {
                waiting = true;
            }
        }
        if (waiting) {
            event_base_loop(srv->env.base, EVLOOP_ONCE);
        }
    }
}
