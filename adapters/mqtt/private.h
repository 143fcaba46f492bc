/* SPDX-License-Identifier: Apache-2.0 */
/* The MQTT adapter's private declarations: the server, connections, sessions and their
 * subscriptions. Everything runs on the broker's loop thread. */
#ifndef FERRY_ADAPTERS_MQTT_PRIVATE_H
#define FERRY_ADAPTERS_MQTT_PRIVATE_H

#include "adapters/adapter.h"
#include "adapters/mqtt/mqtt_codec.h"
#include "common/buf.h"
#include "common/strmap.h"
#include "common/u64map.h"

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct evconnlistener;
struct event;
struct evbuffer;
struct ws_hs;

/* [mqtt] */
typedef struct fy_mqtt_config {
    bool enabled;
    char *listen;
    uint64_t port;
    char *fallback_topic;     /* native topic of MQTT topics whose first level is not a name */
    char *topic_map;          /* "prefix=topic ..." */
    uint64_t max_inflight;    /* QoS 1/2 messages in flight to a client (capped by its maximum) */
    uint64_t receive_maximum; /* QoS 1/2 publishes a client may have unacknowledged */
    uint64_t max_keepalive;   /* seconds; larger keep-alives are lowered (v5) */
    uint64_t topic_alias_maximum;
    uint64_t max_packet_size;       /* bytes; 0 = max_message_size plus room for headers */
    uint64_t connect_timeout_ms;    /* CONNECT must arrive within this */
    uint64_t session_expiry_max_ms; /* cap on session expiry (and 3.1.1 persistent sessions) */
    uint64_t sys_interval_ms;       /* $SYS topics published this often; 0 = off */
    uint64_t tls_port;              /* MQTT over TLS, when [tls] certfile is set */
    uint64_t ws_port;               /* MQTT over WebSocket; 0 = off */
    uint64_t wss_port;              /* MQTT over WebSocket over TLS; 0 = off */
    char *ws_path;                  /* the WebSocket's request path; "*" = any */
    char *ws_origins;               /* Origin values allowed, space-separated; "*" = any */
} fy_mqtt_config;

typedef struct mqtt_server mqtt_server;
typedef struct mqtt_conn mqtt_conn;
typedef struct mqtt_session mqtt_session;
typedef struct mqtt_pub_batch mqtt_pub_batch;
typedef struct mqtt_sys mqtt_sys;
typedef struct mqtt_ws mqtt_ws;

/* One subscription of a session, as the client gave it. */
typedef struct msub {
    char *filter; /* without $share/<group>/ */
    char *share;  /* the share group, or NULL */
    uint8_t qos;
    bool no_local;
    bool rap; /* retain as published */
    uint8_t rh;
    uint32_t sub_id; /* 0 = none */
    uint64_t created_ms;
    bool wildcard_first; /* the first level is + or #: every native topic */
} msub;

/* One member of the core a session holds while connected: (group, native topic). */
typedef struct mcsub {
    mqtt_session *s;
    fy_sub *sub;
    char *topic;   /* native topic */
    char *share;   /* NULL = the session's own group */
    uint32_t owed; /* credits held back while the socket is slow */
    bool mark;     /* scratch while reconciling */
    bool light;    /* the durable session's light queue (topic = its group name) */
} mcsub;

/* A message on its way to the client: queued, or sent and not yet acknowledged (QoS 1/2). */
typedef struct outmsg {
    uint16_t pid;
    uint8_t qos;
    uint8_t state; /* OUT_QUEUED, OUT_WAIT_ACK (PUBACK/PUBREC), OUT_WAIT_COMP */
    bool retain;   /* the RETAIN flag it goes with */
    bool dup;
    bool only; /* a retained message sent for one subscription */
    bool has_msgid;
    bool restored;     /* in flight since before a restart (loaded from the store) */
    bool persisted;    /* a "p" record of it is in the store (or on its way there) */
    bool unsent;       /* QoS 2: waiting for its "p" record to be stored before it is sent */
    bool acking;       /* its light-queue delivery is settled; the stored offset past it awaited */
    bool durable;      /* the group's stored offset is past it: a restart will not deliver it */
    uint32_t queue_id; /* of the light-queue delivery (durable sessions' QoS 2) */
    uint64_t offset;
    mcsub *cs; /* NULL: nothing to settle in the core */
    uint64_t delivery_id;
    uint64_t seq; /* send order, to re-send in order */
    uint8_t msgid[FY_MSGID_LEN];
    fy_buf pkt;          /* the record while queued, or when it has no id to be read back by */
    struct outmsg *next; /* queue order */
} outmsg;

/* OUT_COMPLETE: PUBCOMP'd, but its "p" record (and packet id) stay until the group's offset
 * past it is stored. Not in flight any more (not in s->inflight). */
enum { OUT_QUEUED = 0, OUT_WAIT_ACK = 1, OUT_WAIT_COMP = 2, OUT_COMPLETE = 3 };

struct mqtt_session {
    mqtt_server *srv;
    size_t durable_ix; /* in srv->durables, when s->group */
    /* The router's index of a durable session's own subscriptions (mqtt_session_reindex). */
    char **route_keys; /* exact filters it is listed under in srv->route_exact */
    size_t nroute_keys;
    bool in_wild; /* listed in srv->route_wild (it has a wildcard filter) */
    size_t wild_ix;
    bool any_no_local;  /* some subscription has No Local */
    uint64_t route_gen; /* the message it was last routed (once per message) */
    char *client_id;
    char *group;        /* durable sessions: the clustering group; NULL: broadcast members */
    bool durable;       /* kept after disconnect until expiry */
    bool stored;        /* its record is in the store */
    uint64_t expiry_ms; /* after disconnect; UINT64_MAX = never */
    uint64_t expire_at; /* mono ms, while offline */
    mqtt_conn *conn;    /* NULL while offline */
    /* Wall ms of the disconnect, kept in its record so that expiry counts from it across
     * restarts; 0 while connected. undated: loaded without one, the time it was given (at
     * start-up) is still to be stored. */
    uint64_t disconnected_ms;
    bool undated;
    msub *subs;
    size_t nsubs, capsubs;
    mcsub **cs;
    size_t ncs, capcs;
    /* The core closed the member of its light queue (the %LQ% topic was deleted): opened again
     * at the next tick. */
    bool light_lost;
    fy_u64map out;         /* packet id -> outmsg* in flight */
    outmsg *qhead, *qtail; /* waiting for room in the window */
    size_t nqueued;
    uint32_t inflight;
    uint16_t next_pid;
    fy_u64map q2in;   /* QoS 2 packet ids received, PUBREL not yet seen */
    uint64_t out_seq; /* sends so far (orders re-sends) */
    uint32_t
        restored_waits; /* outmsgs with `restored`: redeliveries must be checked against them */
    /* Retained messages still to go out for new subscriptions: sent while the socket keeps up
     * (max_queued_bytes), so a SUBSCRIBE to `#` does not copy every retained message at once. */
    struct ret_pending *ret_head, *ret_tail;
    /* A will waiting for its delay (v5), published at will_at unless the client is back. Kept
     * in a durable session's record (will_delay_ms after disconnected_ms), so that it waits on
     * across restarts. */
    fy_buf will_rec;
    uint8_t will_qos;
    bool will_retain;
    bool will_pending;
    uint64_t will_at;       /* mono ms */
    uint64_t will_delay_ms; /* after the disconnect */
};

struct mqtt_conn {
    mqtt_server *srv;
    /* The socket: a bufferevent for TLS and WebSocket; plain TCP is "lean" (fd and one event,
     * input read into the server's buffer, output written from `out`), a kilobyte less per
     * connection. */
    struct bufferevent *bev;
    int fd;              /* lean: the socket, -1 once closed */
    struct event *ev;    /* lean: read (and write while output waits) */
    short ev_what;       /* lean: what ev is armed for (0: not added) */
    bool lean;           /* plain TCP without a bufferevent */
    bool flush_listed;   /* lean: in srv->flushq */
    uint32_t timeout_ms; /* lean: idle read timeout (CONNECT; none while its password check is
                          * pending; then 1.5 x keep-alive), 0: none */
    fy_buf in;           /* lean: an incomplete packet (or packets read while paused) */
    mqtt_ws *ws;         /* NULL: plain TCP; else MQTT bytes travel in WebSocket frames */
    uint64_t id;
    char peer[64];
    uint8_t version;
    bool connected; /* CONNECT accepted */
    bool closing;   /* socket gone or going; freed when pending reaches 0 */
    bool read_paused;
    bool in_read;             /* inside on_read: not freed until it returns */
    bool sock_dead;           /* the socket failed: closing frees it without draining the output */
    fy_limit_verdict verdict; /* fy_limits_accept's: REFUSE answers CONNECT with 0x97 */
    bool tls;                 /* accepted on the TLS listener */
    uint32_t pending;         /* core completions outstanding */
    /* CONNECT's password check, while it runs off the loop: input waits (the CONNECT itself
     * stays unconsumed, handled again once auth_answered). */
    fy_auth_job *auth_job;
    int auth_result;
    bool auth_answered;
    /* The peer ended its input while the check was pending: what came before it is handled
     * once the check answers, then c closes as for any end of input. */
    bool input_ended;
    uint32_t in_unacked; /* QoS 1/2 publishes not yet answered */
    mqtt_session *s;
    uint16_t keepalive;
    uint32_t peer_max_packet; /* the client's Maximum Packet Size (0 = none) */
    uint16_t peer_receive_max;
    uint32_t window; /* min(peer receive maximum, max_inflight) */
    bool problem_info;
    char *user;     /* the user name it connected with, for the ACL; NULL: anonymous */
    char **aliases; /* client -> server topic aliases, 1-based */
    uint16_t nalias;
    uint16_t out_alias_max; /* the client's Topic Alias Maximum (server -> client) */
    uint16_t out_aliases;   /* aliases given out so far (never reassigned) */
    fy_strmap out_alias;    /* topic -> alias number (value cast), keys owned */
    /* the will, published on an abnormal end */
    bool has_will;
    fy_buf will_rec;
    uint8_t will_qos;
    bool will_retain;
    uint32_t will_delay_s;
    fy_buf out; /* packets built while handling input, written once per read; lean: also what
                 * the socket has not taken yet */
    mqtt_pub_batch *batch;       /* publishes of this read, produced together */
    struct event *connect_timer; /* the CONNECT deadline, until CONNECT comes */
    mqtt_conn *next, *prev;
};

/* A retained message: the map's key is its topic. */
typedef struct mqtt_retained {
    char *topic;
    fy_buf rec;
} mqtt_retained;

/* One [mqtt] topic_map entry: MQTT topics `prefix` and `prefix/...` live in native `topic`. */
typedef struct mqtt_tmap {
    char *prefix;
    size_t plen;
    char *topic;
} mqtt_tmap;

/* Outlives the server while store completions that refer to it are pending (srv NULL once the
 * adapter stopped). */
typedef struct mqtt_live {
    mqtt_server *srv;
    uint32_t refs;
} mqtt_live;

struct mqtt_server {
    fy_adapter_env env;
    mqtt_live *live;
    mqtt_tmap *tmap; /* longest prefix first */
    size_t ntmap;
    const fy_mqtt_config *cfg;
    struct evconnlistener *listener;
    uint16_t port;
    struct evconnlistener *tls_listener; /* NULL without [tls] certfile */
    uint16_t tls_port;
    struct evconnlistener *ws_listener; /* ws_port, or NULL */
    uint16_t ws_port;
    struct evconnlistener *wss_listener; /* wss_port, or NULL */
    uint16_t wss_port;
    struct ws_hs *ws_pending; /* connections in their WebSocket handshake */
    mqtt_ws *ws_closing;      /* WebSockets waiting for the client's close frame */
    uint32_t max_packet;
    uint64_t next_conn_id;
    mqtt_conn *conns;
    fy_strmap sessions;      /* client id -> mqtt_session */
    mqtt_session **durables; /* sessions with a light queue */
    size_t ndurables, capdurables;
    fy_strmap route_exact;     /* exact filter -> route_list of durable sessions */
    mqtt_session **route_wild; /* durable sessions with a wildcard filter */
    size_t nwild, capwild;
    uint64_t route_gen;
    fy_strmap retained; /* MQTT topic -> mqtt_retained */
    struct event *tick_ev;
    bool alive_written;  /* the alive record was written in this run (mqtt_session_alive) */
    uint64_t alive_mono; /* when, mono ms */
    /* Wills published whose store completion is still to come (it refers to srv: mqtt_stop
     * waits for them). */
    uint32_t wills_pending;
    fy_buf scratch;
    fy_adapter_stats stats;
    mqtt_sys *sys; /* the $SYS topics (mqtt_sys.c); NULL when sys_interval is 0 */
    uint8_t *rbuf; /* lean connections read into this (MQTT_RBUF bytes) */
    /* Lean connections with output to write, written once per turn of the loop (one send for
     * all the packets of that turn) by flush_ev. */
    mqtt_conn **flushq;
    size_t nflush, capflush;
    struct event *flush_ev;
    bool flush_armed;
    bool stopping;
};

/* mqtt_conn.c */
#define MQTT_RBUF 65536
void mqtt_conn_accept(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict);
/* The same on the TLS listener (srv->env.tls). */
void mqtt_conn_accept_tls(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict);
/* Makes an MQTT connection of bev (then owned, as the verdict of fy_limits_accept is); tls:
 * it is a TLS bufferevent. */
mqtt_conn *mqtt_conn_start(mqtt_server *srv, struct bufferevent *bev, const char *peer,
                           fy_limit_verdict verdict, bool tls);
void mqtt_conn_close(mqtt_conn *c, uint8_t reason, const char *why);
void mqtt_conn_flush(mqtt_conn *c);
bool mqtt_conn_slow(const mqtt_conn *c);
void mqtt_conn_pending_done(mqtt_conn *c);
void mqtt_conn_keepalive(mqtt_conn *c, uint16_t secs);
void mqtt_conn_close_all(mqtt_server *srv);
/* Once a second: idle connections give back their output buffer. */
void mqtt_conn_trim(mqtt_server *srv);
/* Frees the flush queue (at stop, after every connection is gone). */
void mqtt_conn_flush_free(mqtt_server *srv);
#define MQTT_CLOSE_QUIET (-2) /* a handler already answered (CONNACK): just close */
/* CONNECT waits for its password check (c->auth_job): the packet stays in the input, which is
 * not handled further until mqtt_conn_auth_done. */
#define MQTT_AUTH_WAIT (-3)
/* The authentication hook's answer to a pending check (an fy_auth_done_fn over c): CONNECT and
 * what followed it are handled now. */
void mqtt_conn_auth_done(void *arg, int result);

/* mqtt_ws.c: MQTT over WebSocket. A connection with c->ws reads its MQTT bytes from
 * mqtt_ws_read() instead of the socket and writes them through mqtt_ws_write(). */
typedef struct mqtt_ws_request {
    const char *protocol; /* the subprotocol chosen: "mqtt" or "mqttv3.1" */
    char accept[32];      /* Sec-WebSocket-Accept */
    const char *why;      /* why it was refused */
} mqtt_ws_request;
/* Parses an HTTP/1.1 WebSocket upgrade request from in (consuming its head once complete):
 * 0 = incomplete, 101 = accepted (r->protocol, r->accept), else the HTTP status refusing it. */
int mqtt_ws_parse_request(struct evbuffer *in, const char *path, const char *origins,
                          mqtt_ws_request *r);
int mqtt_ws_listen(mqtt_server *srv, char *err, size_t errlen);
void mqtt_ws_stop(mqtt_server *srv);
/* Starts the handshake on fd, admitted (or to be refused) per verdict (fy_limits_accept). */
void mqtt_ws_accept(mqtt_server *srv, int fd, const char *peer, fy_limit_verdict verdict);
struct evbuffer *mqtt_ws_read(mqtt_conn *c);
const char *mqtt_ws_ended(const mqtt_conn *c); /* why the WebSocket ended, or NULL */
void mqtt_ws_write(mqtt_conn *c, const uint8_t *data, size_t len);
void mqtt_ws_close(mqtt_conn *c, uint8_t reason, const char *why);
/* Hands c's bufferevent and WebSocket over for the rest of the close handshake (the client's
 * close frame, at most 5 s), leaving c without them. For normal ends: after an error the
 * connection is closed right after the close frame, as over TCP. */
void mqtt_ws_linger(mqtt_conn *c);
void mqtt_ws_free(mqtt_ws *ws);

/* mqtt_handle_connect.c */
int mqtt_handle_connect(mqtt_conn *c, const fy_mqtt_frame_hdr *h);
int mqtt_handle_disconnect(mqtt_conn *c, const fy_mqtt_frame_hdr *h);
void mqtt_conn_ended(mqtt_conn *c, bool publish_will);

/* mqtt_handle_publish.c */
int mqtt_handle_publish(mqtt_conn *c, const fy_mqtt_frame_hdr *h);
int mqtt_handle_ack(mqtt_conn *c, const fy_mqtt_frame_hdr *h);
void mqtt_publish_flush(mqtt_conn *c);
int mqtt_produce_record(mqtt_server *srv, mqtt_conn *c, const fy_buf *rec, const char *mqtt_topic,
                        bool retain, uint8_t qos);
void mqtt_build_record(mqtt_server *srv, fy_buf *out, const char *client_id, fy_slice topic,
                       uint8_t qos, bool retain, const fy_mqtt_props *props, fy_slice payload);
void mqtt_retained_load(mqtt_server *srv);
void mqtt_retained_free(mqtt_server *srv);
const char *mqtt_native_topic(mqtt_server *srv, fy_slice topic, size_t *len);
void mqtt_filter_topics(mqtt_server *srv, const char *filter,
                        void (*fn)(void *arg, const char *topic, size_t len), void *arg);
int mqtt_topic_map_parse(mqtt_server *srv, const char *text, char *err, size_t errlen);
void mqtt_topic_map_free(mqtt_server *srv);

/* mqtt_handle_subscribe.c */
int mqtt_handle_subscribe(mqtt_conn *c, const fy_mqtt_frame_hdr *h);
int mqtt_handle_unsubscribe(mqtt_conn *c, const fy_mqtt_frame_hdr *h);

/* mqtt_session.c */
mqtt_session *mqtt_session_new(mqtt_server *srv, const char *client_id, bool durable);
void mqtt_session_end(mqtt_session *s);
void mqtt_session_free(mqtt_session *s);
void mqtt_session_attach(mqtt_session *s, mqtt_conn *c, bool resumed);
void mqtt_session_detach(mqtt_session *s);
void mqtt_session_reconcile(mqtt_session *s);
int mqtt_session_store(mqtt_session *s, fy_core_done_cb done, void *arg);
/* Loads the durable sessions at start-up; those whose expiry passed while the broker was down
 * end at once (as mqtt_session_tick ends them), before any client can connect, and the wills
 * whose delay passed meanwhile are published then (the router must be set: they reach durable
 * sessions). */
void mqtt_session_load_all(mqtt_server *srv);
/* Writes the broker's alive time (the wall clock) into its record when FY_MQTT_ALIVE_EVERY_MS
 * may otherwise pass without it (and at the first call): called by the adapter's tick. After a
 * crash, sessions that were connected count as disconnected from it (mqtt_session_rec.h). */
void mqtt_session_alive(mqtt_server *srv);
void mqtt_session_on_topic(void *arg, const fy_topic_info *t);
void mqtt_session_tick(mqtt_server *srv);
void mqtt_session_route(void *arg, const fy_record_view *v, fy_route_emit emit, void *ctx);
void mqtt_session_reindex(mqtt_session *s);
void mqtt_route_free(mqtt_server *srv);
void mqtt_session_send_retained(mqtt_session *s, const msub *m);
void mqtt_session_puback(mqtt_session *s, uint16_t pid, uint8_t type);
void mqtt_session_drained(mqtt_session *s);
void mqtt_q2in_key(fy_buf *k, const char *client_id, uint16_t pid);
msub *mqtt_session_add_sub(mqtt_session *s, fy_slice filter, fy_slice share, uint8_t qos,
                           bool no_local, bool rap, uint8_t rh, uint32_t sub_id, uint64_t created,
                           bool *existed);
bool mqtt_session_del_sub(mqtt_session *s, fy_slice full);
void mqtt_publish_will(mqtt_server *srv, const fy_buf *rec, uint8_t qos, bool retain);
/* Sends (or queues) a record that is not in the core, such as a $SYS message, to s: to every
 * subscription it matches, or with `only` to that one as a retained message. Nothing to settle. */
void mqtt_session_send_record(mqtt_session *s, const uint8_t *rec, size_t len, const msub *only);

/* mqtt_sys.c: the $SYS topics */
/* Starts publishing every [mqtt] sys_interval (nothing when 0; mqtt_start refused 1..99 ms). */
void mqtt_sys_start(mqtt_server *srv);
/* Stops and frees; NULL-safe on srv->sys. */
void mqtt_sys_stop(mqtt_server *srv);
/* A subscription m of s was made (SUBACK sent, retained messages due): sends it the current
 * $SYS values it matches, with RETAIN set. */
void mqtt_sys_subscribed(mqtt_session *s, const msub *m);

#endif
