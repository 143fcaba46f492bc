/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT over WebSocket (RFC 6455, subprotocol `mqtt`): the [mqtt] ws_port and wss_port (TLS,
 * broker/tls.h) listeners, the HTTP/1.1
 * Upgrade handshake (libevent's evbuffer, OpenSSL's SHA-1 and base64) and the transport under an
 * mqtt_conn: binary frames in and out through wslay, which also answers pings and does the close
 * handshake. The packet code above sees MQTT bytes only. Everything runs on the loop thread. */
#include "adapters/mqtt/private.h"
#include "broker/listener.h"
#include "broker/tls.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <wslay/wslay.h>

#define WS_MAX_HEAD 8192 /* bytes of request line and headers */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* The transport state of one WebSocket connection (c->ws). */
struct mqtt_ws {
    mqtt_conn *c; /* NULL once lingering (the close handshake outlives it) */
    mqtt_server *srv;
    struct bufferevent *bev;     /* the connection's, shared with c until it lingers */
    wslay_event_context_ptr ev;  /* frames in, pongs and the close handshake */
    struct evbuffer *in;         /* MQTT bytes taken from binary frames, not yet a packet */
    struct evbuffer *src;        /* the socket's input while wslay reads */
    uint8_t msg_opcode;          /* the data message being received (0: none yet) */
    bool ctrl;                   /* the frame being received is a control frame */
    const char *why;             /* the WebSocket has ended: why (NULL while open) */
    struct mqtt_ws *next, *prev; /* in srv->ws_closing while lingering */
};

/* A connection still in its HTTP handshake (or being refused). */
typedef struct ws_hs {
    mqtt_server *srv;
    struct bufferevent *bev;
    struct event *deadline; /* the whole handshake, even from a client trickling bytes */
    bool tls;               /* accepted on wss_port */
    char peer[64];
    struct ws_hs *next, *prev;
    fy_limit_verdict verdict; /* fy_limits_accept's, handed to the MQTT connection */
} ws_hs;

/* ---- the handshake ------------------------------------------------------------------------- */

/* Is tok one of the comma-separated tokens of list (case-insensitive, spaces ignored)? */
static bool has_token(const char *list, const char *tok, bool icase)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        const char *s, *e;
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        s = p;
        while (*p && *p != ',') {
            p++;
        }
        e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if ((size_t)(e - s) == tl && (icase ? strncasecmp(s, tok, tl) : strncmp(s, tok, tl)) == 0) {
            return true;
        }
    }
    return false;
}

/* Is origin allowed by the space-separated list ("*" = any)? */
static bool origin_allowed(const char *list, const char *origin)
{
    size_t ol = strlen(origin);
    const char *p = list;
    if (strcmp(list, "*") == 0) {
        return true;
    }
    while (*p) {
        const char *s;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        s = p;
        while (*p && *p != ' ' && *p != '\t') {
            p++;
        }
        if ((size_t)(p - s) == ol && ol > 0 && strncasecmp(s, origin, ol) == 0) {
            return true;
        }
    }
    return false;
}

/* Sec-WebSocket-Accept: base64(SHA-1(key GUID)), 28 characters and a NUL. */
static int ws_accept_value(const char *key, char out[32])
{
    char buf[128];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(buf, sizeof(buf), "%s%s", key, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof(buf) ||
        EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) {
        return -FY_EINVAL;
    }
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return FY_OK;
}

/* A valid Sec-WebSocket-Key is the base64 of 16 bytes: 24 characters ending in "==". */
static bool key_valid(const char *key)
{
    unsigned char raw[24];
    size_t n = strlen(key);
    if (n != 24 || key[22] != '=' || key[23] != '=') {
        return false;
    }
    return EVP_DecodeBlock(raw, (const unsigned char *)key, 24) == 18;
}

int mqtt_ws_parse_request(struct evbuffer *in, const char *path, const char *origins,
                          mqtt_ws_request *r)
{
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    char *line = NULL, *sp1, *sp2, *q;
    bool upgrade = false, connection = false, have_host = false, first = true;
    char *key = NULL, *version = NULL, *origin = NULL, *protos = NULL;
    int status = 400;

    memset(r, 0, sizeof(*r));
    r->why = "bad request";
    if (end.pos < 0) {
        if (evbuffer_get_length(in) > WS_MAX_HEAD) {
            r->why = "request header too large";
            return 431;
        }
        return 0;
    }
    if ((size_t)end.pos + 4 > WS_MAX_HEAD) {
        r->why = "request header too large";
        return 431;
    }
    for (;;) {
        size_t n = 0;
        free(line); /* evbuffer_readln's, from malloc */
        line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF_STRICT);
        if (!line || n == 0) {
            break; /* the blank line ending the head (it was searched for above) */
        }
        if (memchr(line, '\0', n)) {
            r->why = "NUL in the request";
            goto out;
        }
        if (first) {
            first = false;
            sp1 = strchr(line, ' ');
            sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
            if (!sp1 || !sp2) {
                r->why = "malformed request line";
                goto out;
            }
            *sp1 = *sp2 = '\0';
            if (strcmp(line, "GET") != 0) {
                r->why = "method is not GET";
                status = 405;
                goto out;
            }
            if (strcmp(sp2 + 1, "HTTP/1.1") != 0) {
                r->why = "not HTTP/1.1";
                goto out;
            }
            q = strchr(sp1 + 1, '?');
            if (q) {
                *q = '\0';
            }
            if (strcmp(path, "*") != 0 && strcmp(sp1 + 1, path) != 0) {
                r->why = "no WebSocket at this path";
                status = 404;
                goto out;
            }
            continue;
        }
        {
            char *colon = strchr(line, ':'), *v;
            size_t vl;
            if (!colon || colon == line) {
                r->why = "malformed header line";
                goto out;
            }
            *colon = '\0';
            v = colon + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            vl = strlen(v);
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
                v[--vl] = '\0';
            }
            if (strcasecmp(line, "Host") == 0) {
                have_host = true;
            } else if (strcasecmp(line, "Upgrade") == 0) {
                upgrade = upgrade || has_token(v, "websocket", true);
            } else if (strcasecmp(line, "Connection") == 0) {
                connection = connection || has_token(v, "upgrade", true);
            } else if (strcasecmp(line, "Sec-WebSocket-Key") == 0) {
                if (key) {
                    r->why = "two Sec-WebSocket-Key headers";
                    goto out;
                }
                key = fy_strdup(v);
            } else if (strcasecmp(line, "Sec-WebSocket-Version") == 0) {
                fy_free(version);
                version = fy_strdup(v);
            } else if (strcasecmp(line, "Origin") == 0) {
                fy_free(origin);
                origin = fy_strdup(v);
            } else if (strcasecmp(line, "Sec-WebSocket-Protocol") == 0) {
                /* the header may be repeated: the lists add up */
                size_t ol = protos ? strlen(protos) : 0;
                protos = fy_realloc(protos, ol + vl + 2);
                if (ol) {
                    protos[ol++] = ',';
                }
                memcpy(protos + ol, v, vl + 1);
            }
        }
    }
    if (first) {
        r->why = "empty request";
        goto out;
    }
    if (!upgrade || !connection) {
        r->why = "not a WebSocket upgrade (Upgrade: websocket, Connection: Upgrade)";
        status = 426;
        goto out;
    }
    if (!have_host) {
        r->why = "no Host header";
        goto out;
    }
    if (!version || strcmp(version, "13") != 0) {
        r->why = "WebSocket version is not 13";
        status = 426;
        goto out;
    }
    if (!key || !key_valid(key)) {
        r->why = "bad Sec-WebSocket-Key";
        goto out;
    }
    if (origin && !origin_allowed(origins, origin)) {
        r->why = "origin not allowed";
        status = 403;
        goto out;
    }
    /* MQTT 3.1.1 section 6: the client offers "mqtt"; older clients offered "mqttv3.1". */
    if (protos && has_token(protos, "mqtt", false)) {
        r->protocol = "mqtt";
    } else if (protos && has_token(protos, "mqttv3.1", false)) {
        r->protocol = "mqttv3.1";
    } else {
        r->why = "no mqtt subprotocol offered (Sec-WebSocket-Protocol: mqtt)";
        goto out;
    }
    if (ws_accept_value(key, r->accept) != FY_OK) {
        goto out;
    }
    r->why = NULL;
    status = 101;
out:
    free(line);
    fy_free(key);
    fy_free(version);
    fy_free(origin);
    fy_free(protos);
    return status;
}

static const char *status_text(int status)
{
    switch (status) {
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Bad Request";
    }
}

static void hs_free(ws_hs *h)
{
    mqtt_server *srv = h->srv;
    if (h->prev) {
        h->prev->next = h->next;
    } else if (srv->ws_pending == h) {
        srv->ws_pending = h->next;
    }
    if (h->next) {
        h->next->prev = h->prev;
    }
    if (h->bev) {
        bufferevent_free(h->bev);
        fy_limits_release(srv->env.limits, h->verdict); /* it never became an MQTT connection */
    }
    if (h->deadline) {
        event_free(h->deadline);
    }
    fy_free(h);
}

static void hs_on_drained(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        hs_free(arg);
    }
}

static void hs_on_event_close(struct bufferevent *bev, short what, void *arg)
{
    if (what != BEV_EVENT_CONNECTED) {
        hs_free(arg);
    }
}

/* Answers a refused handshake with its HTTP status and closes once that is written. */
static void hs_refuse(ws_hs *h, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(h->bev);
    struct timeval tv = {5, 0};
    fy_log(INFO, "ws", "peer=%s status=%d msg=\"handshake refused: %s\"", h->peer, status, why);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n",
                        status, status_text(status), strlen(why) + 1);
    if (status == 426) {
        evbuffer_add_printf(out, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    } else if (status == 405) {
        evbuffer_add_printf(out, "Allow: GET\r\n");
    }
    evbuffer_add_printf(out, "Connection: close\r\n\r\n%s\n", why);
    bufferevent_disable(h->bev, EV_READ);
    bufferevent_setwatermark(h->bev, EV_WRITE, 0, 0);
    bufferevent_setcb(h->bev, NULL, hs_on_drained, hs_on_event_close, h);
    bufferevent_set_timeouts(h->bev, NULL, &tv);
}

static mqtt_ws *ws_new(mqtt_conn *c);

static void hs_on_read(struct bufferevent *bev, void *arg)
{
    ws_hs *h = arg;
    mqtt_server *srv = h->srv;
    mqtt_ws_request r;
    mqtt_conn *c;
    char peer[64];
    fy_limit_verdict verdict;
    bool h_tls;
    int status = mqtt_ws_parse_request(bufferevent_get_input(bev), srv->cfg->ws_path,
                                       srv->cfg->ws_origins, &r);
    if (status == 0) {
        return;
    }
    if (status != 101) {
        hs_refuse(h, status, r.why);
        return;
    }
    evbuffer_add_printf(bufferevent_get_output(bev),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                        "Sec-WebSocket-Protocol: %s\r\n\r\n",
                        r.accept, r.protocol);
    /* The bufferevent moves to an MQTT connection: the handshake lets go of it. */
    memcpy(peer, h->peer, sizeof(peer));
    verdict = h->verdict;
    h_tls = h->tls;
    h->bev = NULL;
    hs_free(h);
    c = mqtt_conn_start(srv, bev, peer, verdict, h_tls);
    c->ws = ws_new(c);
    fy_log(DEBUG, "ws", "conn=%llu peer=%s protocol=%s msg=\"upgraded\"", (unsigned long long)c->id,
           peer, r.protocol);
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
        /* frames sent right behind the request */
        bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

static void hs_on_event(struct bufferevent *bev, short what, void *arg)
{
    ws_hs *h = arg;
    if (what == BEV_EVENT_CONNECTED) {
        return; /* the TLS handshake is done; the HTTP one follows */
    }
    if (what & BEV_EVENT_TIMEOUT) {
        fy_log(INFO, "ws", "peer=%s msg=\"handshake timed out\"", h->peer);
    } else if (h->tls && (what & BEV_EVENT_ERROR) && fy_tls_bev_error(bev)) {
        fy_log(INFO, "ws", "peer=%s msg=\"closed: TLS: %s\"", h->peer, fy_tls_bev_error(bev));
    }
    hs_free(h);
}

static void hs_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    ws_hs *h = arg;
    fy_log(INFO, "ws", "peer=%s msg=\"handshake not done within connect_timeout\"", h->peer);
    hs_free(h);
}

/* Starts the handshake on fd, admitted (or to be refused) per verdict, over TLS when tls is set
 * (its handshake runs first, inside the bufferevent, under the same deadline). */
static void ws_accept(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict,
                      fy_tls *tls)
{
    ws_hs *h;
    struct timeval tv;
    struct bufferevent *bev = fy_listener_bev(srv->env.base, fd, tls, srv->env.limits, verdict);
    if (!bev) {
        return;
    }
    h = FY_NEW(ws_hs);
    h->srv = srv;
    h->bev = bev;
    h->tls = tls != NULL;
    h->verdict = verdict;
    snprintf(h->peer, sizeof(h->peer), "%s", peer);
    h->next = srv->ws_pending;
    if (h->next) {
        h->next->prev = h;
    }
    srv->ws_pending = h;
    bufferevent_setcb(h->bev, hs_on_read, NULL, hs_on_event, h);
    tv = fy_ms_timeval(srv->cfg->connect_timeout_ms);
    bufferevent_set_timeouts(h->bev, &tv, NULL);
    h->deadline = evtimer_new(srv->env.base, hs_on_deadline, h);
    evtimer_add(h->deadline, &tv);
    bufferevent_enable(h->bev, EV_READ | EV_WRITE);
}

void mqtt_ws_accept(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict)
{
    ws_accept(srv, fd, peer, verdict, NULL);
}

/* ---- frames -------------------------------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *arg)
{
    mqtt_ws *ws = arg;
    int n = ws->src ? evbuffer_remove(ws->src, buf, len) : 0;
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

/* Control frames (wslay's) and data frames (ours) go whole into the socket's output: they never
 * interleave. */
static ssize_t ws_write(mqtt_ws *ws, const uint8_t *data, size_t len)
{
    if (ws->bev) {
        bufferevent_write(ws->bev, data, len);
    }
    return (ssize_t)len;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                          void *arg)
{
    return ws_write(arg, data, len);
}

static void ws_on_frame_start(wslay_event_context_ptr ctx,
                              const struct wslay_event_on_frame_recv_start_arg *a, void *arg)
{
    mqtt_ws *ws = arg;
    ws->ctrl = wslay_is_ctrl_frame(a->opcode);
    if (ws->ctrl) {
        return;
    }
    if (a->opcode != WSLAY_CONTINUATION_FRAME) {
        ws->msg_opcode = a->opcode;
    }
    if (ws->msg_opcode != WSLAY_BINARY_FRAME && !ws->why) {
        static const char reason[] = "MQTT is carried in binary frames";
        ws->why = "text frame (MQTT needs binary frames)";
        wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, (const uint8_t *)reason,
                                sizeof(reason) - 1);
        wslay_event_shutdown_read(ctx);
    }
}

static void ws_on_chunk(wslay_event_context_ptr ctx,
                        const struct wslay_event_on_frame_recv_chunk_arg *a, void *arg)
{
    mqtt_ws *ws = arg;
    if (!ws->ctrl && ws->msg_opcode == WSLAY_BINARY_FRAME && !ws->why && ws->c &&
        a->data_length > 0) {
        evbuffer_add(ws->in, a->data, a->data_length);
    }
}

static mqtt_ws *ws_new(mqtt_conn *c)
{
    static const struct wslay_event_callbacks cbs = {
        ws_recv_cb, ws_send_cb, NULL, ws_on_frame_start, ws_on_chunk, NULL, NULL,
    };
    mqtt_ws *ws = FY_NEW(mqtt_ws);
    ws->c = c;
    ws->srv = c->srv;
    ws->bev = c->bev;
    ws->in = evbuffer_new();
    if (!ws->in || wslay_event_context_server_init(&ws->ev, &cbs, ws) != 0) {
        fy_log(ERROR, "ws", "msg=\"out of memory\"");
        abort();
    }
    /* Payload goes straight into ws->in; control frames alone are buffered by wslay. */
    wslay_event_config_set_no_buffering(ws->ev, 1);
    /* A frame is at most one packet of the largest size and its fixed header. */
    wslay_event_config_set_max_recv_msg_length(ws->ev, (uint64_t)c->srv->max_packet + 5);
    return ws;
}

void mqtt_ws_free(mqtt_ws *ws)
{
    if (!ws) {
        return;
    }
    wslay_event_context_free(ws->ev);
    evbuffer_free(ws->in);
    fy_free(ws);
}

struct evbuffer *mqtt_ws_read(mqtt_conn *c)
{
    mqtt_ws *ws = c->ws;
    struct evbuffer *src = c->bev ? bufferevent_get_input(c->bev) : NULL;
    if (src && wslay_event_get_read_enabled(ws->ev)) {
        ws->src = src;
        if (wslay_event_recv(ws->ev) != 0 && !ws->why) {
            ws->why = "WebSocket read failed";
        }
        ws->src = NULL;
    }
    if (!wslay_event_get_read_enabled(ws->ev)) {
        if (src) {
            evbuffer_drain(src, evbuffer_get_length(src)); /* nothing more is read */
        }
        if (!ws->why) {
            uint16_t sent = wslay_event_get_status_code_sent(ws->ev);
            if (wslay_event_get_close_received(ws->ev)) {
                ws->why = "WebSocket closed by the peer";
            } else if (sent == WSLAY_CODE_MESSAGE_TOO_BIG) {
                ws->why = "WebSocket frame too large";
            } else if (sent == WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA) {
                ws->why = "invalid UTF-8 in a WebSocket frame";
            } else {
                ws->why = "WebSocket protocol error (unmasked, reserved bits or bad opcode)";
            }
        }
    }
    wslay_event_send(ws->ev); /* pongs, and the close frame */
    return ws->in;
}

const char *mqtt_ws_ended(const mqtt_conn *c)
{
    return c->ws->why;
}

/* Sends data as one binary frame. The header of an unmasked server frame is written here (RFC
 * 6455 5.2: FIN and opcode, then the length in 7, 7+16 or 7+64 bits): a second wslay context
 * just for it would cost 4 KiB per connection. Decoding, where the rules are, stays wslay's. */
void mqtt_ws_write(mqtt_conn *c, const uint8_t *data, size_t len)
{
    mqtt_ws *ws = c->ws;
    uint8_t h[10];
    size_t hl;
    if (len == 0 || wslay_event_get_close_sent(ws->ev) || !wslay_event_get_write_enabled(ws->ev)) {
        return;
    }
    h[0] = 0x80 | WSLAY_BINARY_FRAME;
    if (len < 126) {
        h[1] = (uint8_t)len;
        hl = 2;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) {
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        }
        hl = 10;
    }
    ws_write(ws, h, hl);
    ws_write(ws, data, len);
}

/* ---- the close handshake ----------------------------------------------------------------- */

#define WS_LINGER_S 5 /* how long a client has to answer our close frame */

static void linger_free(mqtt_ws *ws)
{
    mqtt_server *srv = ws->srv;
    if (ws->prev) {
        ws->prev->next = ws->next;
    } else if (srv->ws_closing == ws) {
        srv->ws_closing = ws->next;
    }
    if (ws->next) {
        ws->next->prev = ws->prev;
    }
    if (ws->bev) {
        bufferevent_free(ws->bev);
        ws->bev = NULL;
    }
    mqtt_ws_free(ws);
}

static void linger_on_drained(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        linger_free(arg);
    }
}

static void linger_on_event(struct bufferevent *bev, short what, void *arg)
{
    if (what != BEV_EVENT_CONNECTED) {
        linger_free(arg); /* the peer went, or did not answer (or read) in time */
    }
}

/* Both close frames have crossed (or reading is over): the server closes TCP first. */
static void linger_done(mqtt_ws *ws)
{
    struct timeval tv = {WS_LINGER_S, 0};
    bufferevent_disable(ws->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0) {
        linger_free(ws);
        return;
    }
    bufferevent_setcb(ws->bev, NULL, linger_on_drained, linger_on_event, ws);
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    bufferevent_set_timeouts(ws->bev, NULL, &tv);
}

static void linger_on_read(struct bufferevent *bev, void *arg)
{
    mqtt_ws *ws = arg;
    struct evbuffer *src = bufferevent_get_input(bev);
    if (wslay_event_get_read_enabled(ws->ev)) {
        ws->src = src;
        wslay_event_recv(ws->ev); /* data frames after our close are dropped (no ws->c) */
        ws->src = NULL;
    }
    evbuffer_drain(ws->in, evbuffer_get_length(ws->in));
    if (!wslay_event_get_read_enabled(ws->ev)) {
        evbuffer_drain(src, evbuffer_get_length(src));
        linger_done(ws);
    }
}

void mqtt_ws_linger(mqtt_conn *c)
{
    mqtt_ws *ws = c->ws;
    mqtt_server *srv = c->srv;
    struct timeval tv = {WS_LINGER_S, 0};
    c->ws = NULL;
    c->bev = NULL;
    ws->c = NULL;
    ws->next = srv->ws_closing;
    if (ws->next) {
        ws->next->prev = ws;
    }
    srv->ws_closing = ws;
    if (wslay_event_get_close_received(ws->ev) || !wslay_event_get_read_enabled(ws->ev) ||
        !wslay_event_get_close_sent(ws->ev)) {
        linger_done(ws); /* nothing to wait for: the client closed first, or it cannot answer */
        return;
    }
    bufferevent_setcb(ws->bev, linger_on_read, NULL, linger_on_event, ws);
    bufferevent_set_timeouts(ws->bev, &tv, &tv);
    bufferevent_enable(ws->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_input(ws->bev)) > 0) {
        linger_on_read(ws->bev, ws);
    }
}

void mqtt_ws_close(mqtt_conn *c, uint8_t reason, const char *why)
{
    mqtt_ws *ws = c->ws;
    uint16_t code;
    if (wslay_event_get_close_sent(ws->ev) || !wslay_event_get_write_enabled(ws->ev)) {
        return;
    }
    switch (reason) {
    case FY_MQTT_RC_MALFORMED:
    case FY_MQTT_RC_PROTOCOL_ERROR:
        code = WSLAY_CODE_PROTOCOL_ERROR;
        break;
    case FY_MQTT_RC_PACKET_TOO_LARGE:
        code = WSLAY_CODE_MESSAGE_TOO_BIG;
        break;
    case FY_MQTT_RC_SERVER_SHUTTING_DOWN:
        code = WSLAY_CODE_GOING_AWAY;
        break;
    default:
        code = reason < 0x80 ? WSLAY_CODE_NORMAL_CLOSURE : WSLAY_CODE_POLICY_VIOLATION;
        break;
    }
    /* A close reason is at most 123 bytes; ours are ASCII. */
    wslay_event_queue_close(ws->ev, code, (const uint8_t *)why, why ? strnlen(why, 123) : 0);
    wslay_event_send(ws->ev);
}

/* ---- the listener -------------------------------------------------------------------------- */

static void ws_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                         int slen, void *arg)
{
    mqtt_server *srv = arg;
    char peer[64];
    fy_limit_verdict v;
    /* the MQTT limits: a WebSocket connection is an MQTT connection */
    if (fy_listener_admit(srv->env.limits, FY_LIMIT_MQTT, fd, sa, &v, peer, sizeof(peer))) {
        ws_accept(srv, fd, peer, v, NULL);
    }
}

static void wss_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int slen, void *arg)
{
    mqtt_server *srv = arg;
    char peer[64];
    fy_limit_verdict v;
    if (fy_listener_admit(srv->env.limits, FY_LIMIT_MQTT, fd, sa, &v, peer, sizeof(peer))) {
        ws_accept(srv, fd, peer, v, srv->env.tls);
    }
}

int mqtt_ws_listen(mqtt_server *srv, char *err, size_t errlen)
{
    const fy_mqtt_config *cfg = srv->cfg;
    int rc;
    if (cfg->ws_port == 0 && cfg->wss_port == 0) {
        return FY_OK;
    }
    if (strcmp(cfg->ws_path, "*") != 0 && cfg->ws_path[0] != '/') {
        snprintf(err, errlen, "[mqtt] ws_path: '%s' must start with / (or be * for any path)",
                 cfg->ws_path);
        return -FY_EINVAL;
    }
    if (cfg->wss_port != 0 && !srv->env.tls) {
        /* fail closed: a wss port asked for must not quietly stay shut */
        snprintf(err, errlen, "[mqtt] wss_port %u needs TLS: set [tls] certfile and keyfile",
                 (unsigned)cfg->wss_port);
        return -FY_EINVAL;
    }
    if (cfg->ws_port != 0) {
        rc = fy_listener_open(srv->env.base, "MQTT over WebSocket", cfg->listen,
                              (uint16_t)cfg->ws_port, ws_on_accept, srv, &srv->ws_listener,
                              &srv->ws_port, err, errlen);
        if (rc != FY_OK) {
            return rc;
        }
        fy_log(INFO, "ws", "addr=%s port=%u msg=\"listening\" path=%s", cfg->listen,
               (unsigned)srv->ws_port, cfg->ws_path);
    }
    if (cfg->wss_port != 0) {
        rc = fy_listener_open(srv->env.base, "MQTT over secure WebSocket", cfg->listen,
                              (uint16_t)cfg->wss_port, wss_on_accept, srv, &srv->wss_listener,
                              &srv->wss_port, err, errlen);
        if (rc != FY_OK) {
            mqtt_ws_stop(srv);
            return rc;
        }
        fy_log(INFO, "ws", "addr=%s wss_port=%u msg=\"TLS listening\" path=%s", cfg->listen,
               (unsigned)srv->wss_port, cfg->ws_path);
    }
    return FY_OK;
}

void mqtt_ws_stop(mqtt_server *srv)
{
    if (srv->ws_listener) {
        evconnlistener_free(srv->ws_listener);
        srv->ws_listener = NULL;
    }
    if (srv->wss_listener) {
        evconnlistener_free(srv->wss_listener);
        srv->wss_listener = NULL;
    }
    while (srv->ws_pending) {
        hs_free(srv->ws_pending);
    }
    while (srv->ws_closing) {
        linger_free(srv->ws_closing);
    }
}
