/* SPDX-License-Identifier: Apache-2.0 */
/* AMQP connections: a proton connection driver on the broker's loop (no proactor, no second
 * loop). On plain TCP the socket is read straight into proton's input buffer and written straight
 * from its output buffer, with one event per connection; TLS goes through an OpenSSL bufferevent.
 * The driver loop: hand proton what was read, process every event, write until the socket would
 * block (the rest waits in proton), then re-arm the tick timer (idle timeout, heartbeats).
 * A protocol error closes only its own connection, with an AMQP condition; a connection is freed
 * only once no store completion refers to it. */
#include "adapters/amqp/private.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/event.h>
#include <proton/session.h>
#include <proton/transport.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SESSION_COUNTED ((void *)1)
#define LEAN_READS 4        /* socket reads per readiness event, at most (fairness) */
#define CLOSE_DRAIN_MS 5000 /* a closed connection's last output gets this long to go out */
/* The shortest idle-time-out a client may ask for. proton sends it an empty frame every half of
 * it: under 2 ms that is "now" again after every frame, and the loop never slept again. AMQP
 * lets a peer close a connection whose idle timeout it cannot support (1.0, 2.4.5). */
#define MIN_REMOTE_IDLE_MS 100
/* Input held while a SASL outcome is pending: reading stops beyond this much (reading on below
 * it notices a client that goes away, which cancels the check). */
#define AUTH_HOLD_MAX 65536

static void conn_free(amqp_conn *c)
{
    amqp_server *srv = c->srv;
    if (c->prev) {
        c->prev->next = c->next;
    } else if (srv->conns == c) {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    if (c->tick_ev) {
        event_free(c->tick_ev);
    }
    if (c->work_ev) {
        event_free(c->work_ev);
    }
    if (c->io_ev) {
        event_free(c->io_ev);
    }
    pn_connection_driver_destroy(&c->driver);
    fy_limits_release(srv->env.limits, c->verdict);
    fy_buf_free(&c->held);
    fy_free(c->user);
    fy_free(c);
}

/* Frees c once its socket is gone and nothing refers to it. */
static void conn_maybe_free(amqp_conn *c)
{
    if (c->closing && !c->bev && c->fd < 0 && c->pending == 0 && !c->in_process) {
        conn_free(c);
    }
}

/* ---- Plain TCP: proton's buffers are the socket's ------------------------------------------ */

static void lean_on_event(evutil_socket_t fd, short what, void *arg);

static void lean_close(amqp_conn *c)
{
    if (c->io_ev) {
        event_free(c->io_ev);
        c->io_ev = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->io_what = 0;
}

/* Arms io_ev for what c waits for: input (until closing), the socket taking output (while some
 * waits) and, once closing, CLOSE_DRAIN_MS for that output. */
static void lean_arm(amqp_conn *c)
{
    short what = EV_PERSIST;
    if (c->fd < 0) {
        return;
    }
    if (!c->closing && !c->input_ended && !(c->auth_job && c->held.len >= AUTH_HOLD_MAX)) {
        what |= EV_READ;
    }
    if (c->out_waiting > 0) {
        what |= EV_WRITE;
    }
    if (what == c->io_what) {
        return;
    }
    event_del(c->io_ev);
    event_assign(c->io_ev, c->srv->env.base, c->fd, what, lean_on_event, c);
    c->io_what = what;
    if (what & (EV_READ | EV_WRITE)) {
        struct timeval tv = fy_ms_timeval(CLOSE_DRAIN_MS);
        event_add(c->io_ev, c->closing ? &tv : NULL);
    }
}

/* Writes proton's output until the socket would block; what is left stays in proton
 * (out_waiting says how much). Returns the bytes written, or -1 if the socket failed. */
static ssize_t lean_write(amqp_conn *c)
{
    ssize_t total = 0;
    pn_bytes_t w;
    c->out_waiting = 0;
    while ((w = pn_connection_driver_write_buffer(&c->driver)).size > 0) {
        ssize_t n = send(c->fd, w.start, w.size, MSG_NOSIGNAL);
        if (n > 0) {
            pn_connection_driver_write_done(&c->driver, (size_t)n);
            total += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->out_waiting = w.size;
            break;
        } else {
            return -1;
        }
    }
    return total;
}

/* The socket failed under a write: the connection ends from its event, not deep in a handler. */
static void lean_failed(amqp_conn *c)
{
    c->sock_dead = true;
    c->out_waiting = 0;
    event_active(c->io_ev, EV_WRITE, 0);
}

/* Output down to half of max_queued_bytes (as the bufferevent's write low watermark): the
 * consumers held back by amqp_conn_out_blocked get core credit again. */
static void lean_out_resume(amqp_conn *c)
{
    if (c->out_blocked && c->fd >= 0 && !c->closing &&
        c->out_waiting <= fy_limits_max_queued_bytes(c->srv->env.limits) / 2) {
        c->out_blocked = false;
        amqp_links_out_resume(c);
        amqp_conn_schedule(c);
    }
}

/* ---- TLS: an OpenSSL bufferevent ------------------------------------------------------------- */

static void bev_gone(amqp_conn *c)
{
    if (c->bev) {
        fy_tls_bev_free(c->bev);
        c->bev = NULL;
    }
    conn_maybe_free(c);
}

static void on_drained_close(struct bufferevent *bev, void *arg)
{
    amqp_conn *c = arg;
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

/* The connection is over (closed by either side, or the socket failed): core members go, the
 * last bytes are written, then the socket is closed. */
static void conn_end(amqp_conn *c, const char *why)
{
    pn_condition_t *cond;
    if (c->closing) {
        return;
    }
    c->closing = true;
    if (c->auth_job) {
        /* Gone before its password check answered: the answer is not wanted. */
        c->srv->env.auth_cancel(c->srv->env.auth_arg, c->auth_job);
        c->auth_job = NULL;
    }
    cond = pn_transport_condition(c->driver.transport);
    if (pn_condition_is_set(cond)) {
        fy_log(INFO, "amqp", "conn=%llu peer=%s container=%s cond=%s msg=\"closed: %s: %s\"",
               (unsigned long long)c->id, c->peer, c->container[0] ? c->container : "-",
               pn_condition_get_name(cond),
               pn_condition_get_description(cond) ? pn_condition_get_description(cond) : "", why);
    } else {
        fy_log(DEBUG, "amqp", "conn=%llu peer=%s container=%s msg=\"closed: %s\"",
               (unsigned long long)c->id, c->peer, c->container[0] ? c->container : "-", why);
    }
    if (c->opened) {
        c->srv->stats.connections--;
    }
    amqp_links_close_all(c);
    if (c->tick_ev) {
        event_del(c->tick_ev);
    }
    if (c->work_ev) {
        event_del(c->work_ev);
    }
    if (c->fd >= 0) {
        /* The last output (a close frame) goes out unless the socket failed or we stop. */
        if (!c->sock_dead && !c->srv->stopping && lean_write(c) >= 0 && c->out_waiting > 0) {
            lean_arm(c);
            return;
        }
        lean_close(c);
        conn_maybe_free(c);
        return;
    }
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 || c->srv->stopping ||
            c->sock_dead) {
            bev_gone(c);
            return;
        }
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_setcb(c->bev, NULL, on_drained_close, on_event_close, c);
        {
            struct timeval tv = {5, 0};
            bufferevent_set_timeouts(c->bev, NULL, &tv);
        }
    }
}

/* ---- Connection and session events ----------------------------------------------------------- */

static void on_remote_open(amqp_conn *c, pn_connection_t *pc)
{
    const char *container = pn_connection_remote_container(pc);
    pn_data_t *caps = pn_connection_offered_capabilities(pc);
    pn_data_t *props = pn_connection_properties(pc);
    pn_millis_t idle = pn_transport_get_remote_idle_timeout(c->driver.transport);
    snprintf(c->container, sizeof(c->container), "%s", container ? container : "");
    pn_connection_set_container(pc, "ferry");
    pn_data_clear(caps);
    pn_data_put_array(caps, false, PN_SYMBOL);
    pn_data_enter(caps);
    pn_data_put_symbol(caps, pn_bytes(15, "ANONYMOUS-RELAY"));
    pn_data_put_symbol(caps, pn_bytes(11, "SHARED-SUBS")); /* JMS 2.0 shared subscriptions */
    pn_data_exit(caps);
    pn_data_clear(props);
    pn_data_put_map(props);
    pn_data_enter(props);
    pn_data_put_symbol(props, pn_bytes(7, "product"));
    pn_data_put_string(props, pn_bytes(5, "ferry"));
    pn_data_put_symbol(props, pn_bytes(7, "version"));
    pn_data_put_string(props, pn_bytes(strlen(FERRY_VERSION), FERRY_VERSION));
    pn_data_exit(props);
    pn_connection_open(pc);
    if (c->verdict == FY_LIMIT_REFUSE) {
        /* Over max_connections: open (AMQP wants an open before a close), then close. */
        pn_condition_format(pn_connection_condition(pc), "amqp:resource-limit-exceeded",
                            "too many connections (max_connections %llu)",
                            (unsigned long long)fy_limits_max_connections(c->srv->env.limits));
        pn_connection_close(pc);
        return;
    }
    if (idle > 0 && idle < MIN_REMOTE_IDLE_MS) {
        fy_log(INFO, "amqp",
               "conn=%llu peer=%s idle_timeout_ms=%u msg=\"refused: idle-time-out too short\"",
               (unsigned long long)c->id, c->peer, (unsigned)idle);
        pn_condition_format(pn_connection_condition(pc), "amqp:invalid-field",
                            "idle-time-out %u ms is under the broker's minimum of %u ms",
                            (unsigned)idle, (unsigned)MIN_REMOTE_IDLE_MS);
        pn_connection_close(pc);
        return;
    }
    if (!c->opened) {
        c->opened = true;
        c->srv->stats.connections++;
    }
    fy_log(DEBUG, "amqp", "conn=%llu peer=%s container=%s user=%s msg=\"opened\"",
           (unsigned long long)c->id, c->peer, c->container,
           pn_transport_get_user(c->driver.transport) ? pn_transport_get_user(c->driver.transport)
                                                      : "-");
}

static void on_session_open(amqp_conn *c, pn_session_t *s)
{
    if (pn_session_state(s) & PN_LOCAL_UNINIT) {
        pn_session_open(s);
        if (c->nsessions >= c->srv->cfg->max_sessions) {
            pn_condition_format(pn_session_condition(s), "amqp:resource-limit-exceeded",
                                "at most %u sessions per connection",
                                (unsigned)c->srv->cfg->max_sessions);
            pn_session_close(s);
            return;
        }
        c->nsessions++;
        pn_session_set_context(s, SESSION_COUNTED);
    }
}

static void on_session_close(amqp_conn *c, pn_session_t *s)
{
    /* Ending a session detaches its links: their members leave the core. */
    amqp_links_session_end(c, s);
    if (pn_session_get_context(s) == SESSION_COUNTED) {
        pn_session_set_context(s, NULL);
        c->nsessions--;
    }
    if (!(pn_session_state(s) & PN_LOCAL_CLOSED)) {
        pn_session_close(s);
    }
    pn_session_free(s); /* with its links, once proton no longer needs them */
}

static void handle(amqp_conn *c, pn_event_t *e)
{
    switch (pn_event_type(e)) {
    case PN_CONNECTION_REMOTE_OPEN:
        on_remote_open(c, pn_event_connection(e));
        break;
    case PN_CONNECTION_REMOTE_CLOSE: {
        pn_connection_t *pc = pn_event_connection(e);
        pn_condition_t *rc = pn_connection_remote_condition(pc);
        if (pn_condition_is_set(rc)) {
            fy_log(INFO, "amqp", "conn=%llu peer=%s container=%s cond=%s msg=\"client closed: %s\"",
                   (unsigned long long)c->id, c->peer, c->container, pn_condition_get_name(rc),
                   pn_condition_get_description(rc) ? pn_condition_get_description(rc) : "");
        }
        pn_connection_close(pc);
        break;
    }
    case PN_SESSION_REMOTE_OPEN:
        on_session_open(c, pn_event_session(e));
        break;
    case PN_SESSION_REMOTE_CLOSE:
        on_session_close(c, pn_event_session(e));
        break;
    case PN_LINK_REMOTE_OPEN:
    case PN_LINK_REMOTE_CLOSE:
    case PN_LINK_REMOTE_DETACH:
    case PN_LINK_FLOW:
    case PN_DELIVERY:
        amqp_link_event(c, e);
        break;
    case PN_TRANSPORT_ERROR: {
        pn_condition_t *tc = pn_transport_condition(pn_event_transport(e));
        fy_log(INFO, "amqp", "conn=%llu peer=%s cond=%s msg=\"%s\"", (unsigned long long)c->id,
               c->peer, pn_condition_get_name(tc) ? pn_condition_get_name(tc) : "-",
               pn_condition_get_description(tc) ? pn_condition_get_description(tc)
                                                : "transport error");
        break;
    }
    default:
        break;
    }
}

/* ---- The driver loop ------------------------------------------------------------------------- */

static void arm_tick(amqp_conn *c)
{
    uint64_t now = fy_mono_ms();
    int64_t next = pn_transport_tick(c->driver.transport, (int64_t)now);
    if (!c->opened && !c->open_paused && (next <= 0 || (uint64_t)next > c->open_deadline)) {
        next = (int64_t)c->open_deadline; /* the open timeout runs until the connection opens */
    }
    if (next > 0) {
        uint64_t ms = (uint64_t)next > now ? (uint64_t)next - now : 0;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        event_add(c->tick_ev, &tv);
    } else {
        event_del(c->tick_ev);
    }
}

void amqp_conn_process(amqp_conn *c)
{
    bool was = c->in_process;
    if (c->closing) {
        return;
    }
    c->in_process = true;
    for (;;) {
        pn_event_t *e;
        pn_bytes_t w;
        bool wrote = false;
        while (!c->closing && (e = pn_connection_driver_next_event(&c->driver)) != NULL) {
            handle(c, e);
        }
        /* The transfers of this read go to the store together. */
        amqp_links_flush(c);
        if (c->closing) {
            break;
        }
        if (c->fd >= 0 && !c->sock_dead) {
            ssize_t n = lean_write(c);
            if (n < 0) {
                lean_failed(c);
            }
            wrote = n > 0;
        }
        while (c->bev && (w = pn_connection_driver_write_buffer(&c->driver)).size > 0) {
            bufferevent_write(c->bev, w.start, w.size);
            pn_connection_driver_write_done(&c->driver, w.size);
            wrote = true;
        }
        c->out_added = 0; /* now in out_waiting or the bufferevent's output */
        if (!wrote && !pn_connection_driver_has_event(&c->driver)) {
            break;
        }
    }
    if (!c->closing) {
        lean_arm(c);
        lean_out_resume(c);
        arm_tick(c);
        if (pn_connection_driver_finished(&c->driver)) {
            conn_end(c, "connection closed");
        }
    }
    c->in_process = was;
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    amqp_conn *c = arg;
    amqp_conn_process(c);
    conn_maybe_free(c);
}

void amqp_conn_schedule(amqp_conn *c)
{
    if (!c->closing && c->work_ev) {
        event_active(c->work_ev, EV_WRITE, 0);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    amqp_conn *c = arg;
    if (!c->opened && !c->open_paused && fy_mono_ms() >= c->open_deadline) {
        if (c->open_waited_ms > 0) {
            pn_connection_driver_errorf(
                &c->driver, "amqp:resource-limit-exceeded",
                "no open within %llu ms (not counting the %llu ms its password check took)",
                (unsigned long long)c->srv->cfg->open_timeout_ms,
                (unsigned long long)c->open_waited_ms);
        } else {
            pn_connection_driver_errorf(&c->driver, "amqp:resource-limit-exceeded",
                                        "no open within %llu ms",
                                        (unsigned long long)c->srv->cfg->open_timeout_ms);
        }
        pn_connection_driver_close(&c->driver);
    }
    amqp_conn_process(c);
    conn_maybe_free(c);
}

/* Where frames_check stopped. */
enum { FRAMES_ALL, FRAMES_SASL_END, FRAMES_REFUSED };

/* Proton dispatches a SASL frame (type 1) that follows the AMQP protocol header as it would
 * one before it: a sasl-init there runs the SASL plugin again, and proton leaks its copy of the
 * mechanism (of a size the client chooses) each time. So the adapter follows the frame
 * boundaries of the n bytes at p, which it is about to hand proton, and returns how many come
 * before the first SASL frame after the AMQP header (*stop FRAMES_REFUSED). It also stops at
 * the end of each SASL frame of the SASL exchange (FRAMES_SASL_END): the plugin may leave the
 * outcome pending (a password check off the loop), and what follows must wait for it, proton
 * taking anything before the outcome for more SASL frames. Otherwise it returns n (FRAMES_ALL).
 * A frame proton refuses (size under 8, over max_frame_size) closes the connection anyway,
 * before the next is looked at. */
static size_t frames_check(amqp_conn *c, const uint8_t *p, size_t n, int *stop)
{
    size_t i = 0;
    *stop = FRAMES_ALL;
    while (i < n) {
        if (c->fskip > 0) {
            size_t k = n - i < c->fskip ? n - i : c->fskip;
            c->fskip -= (uint32_t)k;
            i += k;
            if (c->fskip == 0 && c->fsasl) {
                c->fsasl = false;
                *stop = FRAMES_SASL_END;
                return i;
            }
            continue;
        }
        c->fhead[c->fhead_len++] = p[i++];
        if (c->fhead_len < sizeof(c->fhead)) {
            continue;
        }
        c->fhead_len = 0;
        if (memcmp(c->fhead, "AMQP", 4) == 0) {
            /* a protocol header: "AMQP" id major minor revision, id 3 SASL, 0 AMQP */
            c->famqp = c->famqp || c->fhead[4] == 0;
            continue;
        }
        if (c->famqp && c->fhead[5] != 0) {
            *stop = FRAMES_REFUSED;
            return i >= sizeof(c->fhead) ? i - sizeof(c->fhead) : 0;
        }
        c->fskip = fy_be32_get(c->fhead) > 8 ? fy_be32_get(c->fhead) - 8 : 0;
        if (!c->famqp && c->fhead[5] == 1) {
            if (c->fskip == 0) {
                *stop = FRAMES_SASL_END;
                return i;
            }
            c->fsasl = true;
        }
    }
    return n;
}

/* A SASL frame after the AMQP header: the connection is closed with a framing error and ends
 * (conn_end), and what the client sent from that frame on is ignored. */
static void sasl_frame_refused(amqp_conn *c)
{
    pn_connection_t *pc = c->driver.connection;
    fy_log(INFO, "amqp", "conn=%llu peer=%s msg=\"closed: a SASL frame after the AMQP header\"",
           (unsigned long long)c->id, c->peer);
    pn_condition_set_name(pn_connection_condition(pc), "amqp:connection:framing-error");
    pn_condition_set_description(pn_connection_condition(pc), "a SASL frame after the AMQP header");
    pn_connection_close(pc);
    amqp_conn_process(c); /* the close goes out */
    pn_connection_driver_read_close(&c->driver);
    amqp_conn_process(c);
    conn_end(c, "a SASL frame after the AMQP header");
}

/* Proton has taken ok of the n bytes at p (its read buffer) that frames_check looked at, which
 * stopped there (stop): they are processed. What follows the end of a SASL frame is kept in held
 * (proton reuses its buffer) for feed_held; a SASL frame after the AMQP header ends c. */
static void input_taken(amqp_conn *c, const uint8_t *p, size_t n, size_t ok, int stop,
                        bool keep_rest)
{
    if (keep_rest && stop == FRAMES_SASL_END && ok < n) {
        fy_buf_append(&c->held, p + ok, n - ok);
    }
    pn_connection_driver_read_done(&c->driver, ok);
    amqp_conn_process(c);
    if (stop == FRAMES_REFUSED && !c->closing) {
        sasl_frame_refused(c); /* the connection ends: what follows is ignored */
    }
}

/* Hands proton what waits in held (the client's bytes after a SASL frame), unless a SASL
 * outcome is pending (c->auth_job). */
static void feed_held(amqp_conn *c)
{
    while (!c->closing && !c->auth_job && c->held.len > 0) {
        pn_rwbytes_t rb = pn_connection_driver_read_buffer(&c->driver);
        size_t n = c->held.len < rb.size ? c->held.len : rb.size, ok;
        int stop;
        if (rb.size == 0) {
            fy_buf_reset(&c->held); /* proton takes no more input (it is closing) */
            break;
        }
        memcpy(rb.start, c->held.data, n);
        ok = frames_check(c, (const uint8_t *)rb.start, n, &stop);
        fy_buf_consume(&c->held, ok);
        input_taken(c, (const uint8_t *)rb.start, n, ok, stop, false);
    }
    if (c->held.len == 0 && c->held.cap > 0) {
        fy_buf_free(&c->held);
    }
}

/* n bytes the client sent are at proton's read buffer p: proton takes them up to the first stop
 * of frames_check, and what waits behind a SASL frame follows when no outcome is pending. */
static void input_take(amqp_conn *c, const uint8_t *p, size_t n)
{
    int stop;
    size_t ok = frames_check(c, p, n, &stop);
    input_taken(c, p, n, ok, stop, true);
    feed_held(c);
}

/* Whether input is held back now: a SASL outcome is pending, or bytes wait before it. */
static bool input_held(const amqp_conn *c)
{
    return c->auth_job || c->held.len > 0;
}

/* The client's input ended: proton hears it, says what it still has to, and c ends. */
static void input_end(amqp_conn *c)
{
    pn_connection_driver_read_close(&c->driver);
    amqp_conn_process(c);
    /* Nobody reads what proton still has to say: the socket is half closed at best. */
    conn_end(c, "peer closed the connection");
}

/* The end of the client's input came while input was held (a SASL outcome pending): it is
 * only remembered (c->input_ended), so that what the client sent before it (an AMQP header,
 * an open, ... pipelined behind sasl-init) is handled first. Once nothing is held any more, the
 * end follows. */
static void input_end_maybe(amqp_conn *c)
{
    if (c->input_ended && !c->closing && !input_held(c)) {
        c->input_ended = false;
        input_end(c);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    amqp_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->in_process = true;
    while (!c->closing && !input_held(c) && evbuffer_get_length(in) > 0) {
        pn_rwbytes_t rb = pn_connection_driver_read_buffer(&c->driver);
        size_t n = evbuffer_get_length(in);
        if (rb.size == 0) {
            /* proton takes no more input (it is closing): what follows is ignored */
            evbuffer_drain(in, n);
            break;
        }
        if (n > rb.size) {
            n = rb.size;
        }
        evbuffer_remove(in, rb.start, n);
        /* in may be gone with the bufferevent after this (the connection ended) */
        input_take(c, (const uint8_t *)rb.start, n);
    }
    if (c->auth_job && !c->closing && evbuffer_get_length(in) >= AUTH_HOLD_MAX) {
        bufferevent_disable(bev, EV_READ); /* until the outcome is set (amqp_conn_auth_resume) */
    }
    if (!c->closing && evbuffer_get_length(in) == 0) {
        input_end_maybe(c);
    }
    c->in_process = false;
    amqp_conn_process(c);
    conn_maybe_free(c);
}

/* Plain TCP, readable: up to LEAN_READS reads straight into proton's input buffer, each
 * processed at once. */
static void lean_read(amqp_conn *c)
{
    for (int i = 0; i < LEAN_READS && !c->closing; i++) {
        /* While input is held it is read into held (up to AUTH_HOLD_MAX, see lean_arm). */
        bool hold = input_held(c);
        pn_rwbytes_t rb = {0, NULL};
        char sink[512];
        /* proton takes no more input (it is closing): what follows is read and ignored */
        bool discard;
        size_t want;
        char *to;
        ssize_t n;
        if (hold && c->held.len >= AUTH_HOLD_MAX) {
            break;
        }
        if (!hold) {
            rb = pn_connection_driver_read_buffer(&c->driver);
        }
        discard = !hold && rb.size == 0;
        want = hold ? 4096 : discard ? sizeof(sink) : rb.size;
        to = hold ? (char *)fy_buf_reserve(&c->held, want) : discard ? sink : rb.start;
        n = recv(c->fd, to, want, 0);
        if (n > 0) {
            if (hold) {
                c->held.len += (size_t)n;
                feed_held(c); /* if the outcome came meanwhile */
                lean_arm(c);  /* reading stops at AUTH_HOLD_MAX */
            } else if (!discard) {
                input_take(c, (const uint8_t *)rb.start, (size_t)n);
            }
            if ((size_t)n < want) {
                break; /* the socket had no more: no read just to hear EAGAIN */
            }
        } else if (n < 0 && errno == EINTR) {
            i--;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else if (n == 0 && input_held(c)) {
            c->input_ended = true; /* after what is held (input_end_maybe) */
            lean_arm(c);
            break;
        } else if (n == 0) {
            input_end(c);
        } else {
            c->sock_dead = true;
            conn_end(c, "socket error");
        }
    }
}

static void lean_on_event(evutil_socket_t fd, short what, void *arg)
{
    amqp_conn *c = arg;
    c->in_process = true; /* c is freed once, by the last line */
    if (c->closing) {
        /* the last output: gone out, given up after CLOSE_DRAIN_MS, or the socket failed */
        if ((what & EV_TIMEOUT) || c->sock_dead || lean_write(c) < 0 || c->out_waiting == 0) {
            lean_close(c);
        }
    } else if (c->sock_dead) {
        conn_end(c, "socket error");
    } else {
        if (what & EV_WRITE) {
            if (lean_write(c) < 0) {
                c->sock_dead = true;
                conn_end(c, "socket error");
            } else {
                lean_arm(c);
                lean_out_resume(c);
            }
        }
        if ((what & EV_READ) && !c->closing) {
            lean_read(c);
        }
    }
    c->in_process = false;
    conn_maybe_free(c);
}

/* Whether the client's output is over max_queued_bytes: what the socket did not take at the
 * last write, plus the deliveries given to proton since (a dispatch pass of the core hands over
 * many at once, each asking here before the next: this keeps the pass within the limit). */
bool amqp_conn_out_blocked(amqp_conn *c)
{
    size_t queued = c->out_added + (c->fd >= 0 ? c->out_waiting
                                    : c->bev   ? evbuffer_get_length(bufferevent_get_output(c->bev))
                                               : 0);
    if (!c->out_blocked && queued >= fy_limits_max_queued_bytes(c->srv->env.limits)) {
        c->out_blocked = true;
    }
    return c->out_blocked;
}

/* Output is down to half of max_queued_bytes (the write low watermark). */
static void on_write(struct bufferevent *bev, void *arg)
{
    amqp_conn *c = arg;
    if (c->out_blocked && !c->closing) {
        c->out_blocked = false;
        amqp_links_out_resume(c);
        amqp_conn_schedule(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    amqp_conn *c = arg;
    if (what == BEV_EVENT_CONNECTED) {
        return; /* the TLS handshake is done */
    }
    /* c is freed once, by the last line: conn_end may let go of the socket, not of c. */
    c->in_process = true;
    if ((what & BEV_EVENT_EOF) && input_held(c) && !c->closing) {
        c->input_ended = true; /* after what is held (on_read, input_end_maybe) */
    } else if (what & BEV_EVENT_EOF) {
        input_end(c);
    } else {
        const char *why = c->tls ? fy_tls_bev_error(bev) : NULL;
        if (why) {
            fy_log(INFO, "amqp", "conn=%llu peer=%s msg=\"closed: %s\"", (unsigned long long)c->id,
                   c->peer, why);
        }
        c->sock_dead = true; /* nothing more can be written: do not wait for the output to drain */
        conn_end(c, why ? why : "socket error");
    }
    c->in_process = false;
    conn_maybe_free(c);
}

void amqp_conn_auth_wait(amqp_conn *c)
{
    if (!c->open_paused) {
        c->open_paused = true;
        c->open_paused_at = fy_mono_ms();
    }
}

void amqp_conn_auth_resume(amqp_conn *c)
{
    if (c->open_paused) {
        uint64_t waited = fy_mono_ms() - c->open_paused_at;
        c->open_paused = false;
        c->open_deadline += waited; /* what was left of open_timeout, from now */
        c->open_waited_ms += waited;
    }
    c->in_process = true;
    amqp_conn_process(c); /* the outcome goes out */
    feed_held(c);
    if (!c->bev) {
        input_end_maybe(c); /* a bufferevent's input is taken first (on_read) */
    }
    c->in_process = false;
    if (c->bev && !c->closing) {
        bufferevent_enable(c->bev, EV_READ);
        on_read(c->bev, c); /* what waits in the bufferevent; frees c if it ended */
        return;
    }
    lean_arm(c);
    conn_maybe_free(c);
}

void amqp_conn_pending_done(amqp_conn *c)
{
    c->pending--;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    amqp_conn_schedule(c);
}

static void conn_accept(amqp_server *srv, int fd, const char *peer, fy_limit_verdict verdict,
                        fy_tls *tls)
{
    amqp_conn *c = FY_NEW(amqp_conn);
    const fy_amqp_config *cfg = srv->cfg;
    pn_transport_t *t;
    int one = 1;
    struct timeval tv;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = -1;
    c->srv = srv;
    c->id = ++srv->next_conn_id;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    if (pn_connection_driver_init(&c->driver, NULL, NULL) != 0) {
        evutil_closesocket(fd);
        fy_limits_release(srv->env.limits, verdict);
        fy_free(c);
        return;
    }
    c->tls = tls != NULL;
    if (tls) {
        c->bev = fy_tls_bev_new(tls, srv->env.base, fd); /* closes fd if it fails */
    } else {
        c->io_ev = event_new(srv->env.base, fd, EV_READ | EV_PERSIST, lean_on_event, c);
        if (c->io_ev && event_add(c->io_ev, NULL) == 0) {
            c->fd = fd;
            c->io_what = EV_READ | EV_PERSIST;
        } else {
            evutil_closesocket(fd);
        }
    }
    if (!c->bev && c->fd < 0) {
        if (c->io_ev) {
            event_free(c->io_ev);
        }
        pn_connection_driver_destroy(&c->driver);
        fy_limits_release(srv->env.limits, verdict);
        fy_free(c);
        return;
    }
    c->verdict = verdict;
    t = c->driver.transport;
    pn_transport_set_server(t);
    pn_transport_set_max_frame(t, (uint32_t)cfg->max_frame_size);
    pn_transport_set_channel_max(t, (uint16_t)(cfg->max_sessions - 1));
    pn_transport_set_idle_timeout(t, (pn_millis_t)cfg->idle_timeout_ms);
    pn_transport_require_auth(t, !cfg->allow_anonymous || !srv->env.allow_anonymous ||
                                     (tls && fy_tls_identity_is_username(tls)));
    amqp_sasl_setup(c, t);
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    c->tick_ev = event_new(srv->env.base, -1, 0, on_tick, c);
    c->work_ev = event_new(srv->env.base, -1, 0, on_work, c);
    c->open_deadline = fy_mono_ms() + cfg->open_timeout_ms;
    tv = fy_ms_timeval(cfg->open_timeout_ms);
    event_add(c->tick_ev, &tv);
    if (c->bev) {
        bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
        bufferevent_setwatermark(c->bev, EV_WRITE, fy_limits_max_queued_bytes(srv->env.limits) / 2,
                                 0);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    }
    fy_log(DEBUG, "amqp", "conn=%llu peer=%s tls=%s msg=\"accepted\"", (unsigned long long)c->id,
           peer, tls ? "true" : "false");
    /* On TLS proton speaks first only once the client's bytes arrive, i.e. after the
     * handshake: the SASL mechanisms it offers then depend on the client certificate. */
    if (!tls) {
        amqp_conn_process(c);
    }
}

void amqp_conn_accept(amqp_server *srv, int fd, const char *peer, fy_limit_verdict verdict)
{
    conn_accept(srv, fd, peer, verdict, NULL);
}

void amqp_conn_accept_tls(amqp_server *srv, int fd, const char *peer, fy_limit_verdict verdict)
{
    conn_accept(srv, fd, peer, verdict, srv->env.tls);
}

void amqp_conn_kick(amqp_conn *c)
{
    pn_connection_t *pc = c->driver.connection;
    pn_condition_set_name(pn_connection_condition(pc), "amqp:connection:forced");
    pn_condition_set_description(pn_connection_condition(pc), "kicked by an administrator");
    pn_connection_close(pc);
    amqp_conn_process(c);
    conn_end(c, "kicked by an administrator");
}

/* Closes every connection at shutdown and waits for their store completions. */
void amqp_conn_close_all(amqp_server *srv)
{
    /* conn_end may free c (nothing pending while stopping): read the next one first. */
    for (amqp_conn *c = srv->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing) {
            pn_connection_t *pc = c->driver.connection;
            pn_condition_set_name(pn_connection_condition(pc), "amqp:connection:forced");
            pn_condition_set_description(pn_connection_condition(pc), "broker shutting down");
            pn_connection_close(pc);
            amqp_conn_process(c);
            conn_end(c, "broker shutting down");
        }
    }
    while (srv->conns) {
        bool waiting = false;
        for (amqp_conn *c = srv->conns, *next; c; c = next) {
            next = c->next;
            if (c->bev) {
                fy_tls_bev_free(c->bev);
                c->bev = NULL;
            }
            lean_close(c);
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
