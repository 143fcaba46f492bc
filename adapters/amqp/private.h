/* SPDX-License-Identifier: Apache-2.0 */
/* The AMQP adapter's private declarations: the server, connections (a proton connection driver
 * on a socket of the broker's loop: its own event on plain TCP, a bufferevent on TLS) and links
 * (producers into the core, consumers as core members). Everything runs on the broker's loop
 * thread. */
#ifndef FERRY_ADAPTERS_AMQP_PRIVATE_H
#define FERRY_ADAPTERS_AMQP_PRIVATE_H

#include "adapters/adapter.h"
#include "adapters/amqp/amqp_map.h"
#include "common/buf.h"

#include <proton/connection_driver.h>

#include <stdbool.h>
#include <stdint.h>

struct bufferevent;
struct evconnlistener;
struct event;

/* [amqp] */
typedef struct fy_amqp_config {
    bool enabled;
    char *listen;
    uint64_t port;
    uint64_t max_frame_size;   /* bytes, offered in open */
    uint64_t idle_timeout_ms;  /* offered in open; 0 = none */
    uint64_t max_sessions;     /* per connection (channel-max + 1) */
    uint64_t max_links;        /* per connection */
    uint64_t max_message_size; /* encoded message; 0 = broker's max_message_size + 64KiB */
    uint64_t link_credit;      /* credit given to a client's sender link */
    uint64_t max_prefetch;     /* core credit of one receiving link, at most */
    bool allow_anonymous;      /* SASL ANONYMOUS, and clients that skip SASL */
    bool sasl_plain;           /* offer SASL PLAIN on plain TCP (TLS connections always may) */
    uint64_t open_timeout_ms;  /* a connection must be open within this */
    uint64_t tls_port;         /* AMQP over TLS (amqps), when [tls] certfile is set */
} fy_amqp_config;

typedef struct amqp_server amqp_server;
typedef struct amqp_conn amqp_conn;
typedef struct alink alink;
typedef struct in_batch in_batch;

/* One attached link, either direction. */
struct alink {
    amqp_conn *c;
    pn_link_t *link; /* NULL once released */
    bool consumer;   /* the broker sends (the client's receiver) */
    /* producing (the client's sender) */
    char *topic;         /* NULL: anonymous relay (per-message `to`) */
    uint32_t in_pending; /* transfers waiting for the store */
    fy_buf rx;           /* the delivery being received */
    in_batch *batch;     /* complete transfers not yet handed to the core */
    /* consuming */
    fy_sub *sub;
    char *group;
    bool broadcast;
    bool durable;         /* a durable subscription (its group is deleted on close) */
    bool volatile_shared; /* a shared non-durable subscription: its group goes with its last link */
    bool presettled;      /* the client asked for settled deliveries (at most once) */
    char *tmp_topic;      /* a dynamic source's temporary topic (deleted when the link ends) */
    uint32_t core_credit;
    uint64_t next_tag;
    struct event *drain_ev;
    bool closed;   /* closed locally: released when nothing refers to it */
    uint32_t refs; /* store completions referring to it */
    alink *next, *prev;
};

struct amqp_conn {
    amqp_server *srv;
    /* The socket: plain TCP is read straight into proton's input buffer and written straight
     * from its output buffer (fd, io_ev); TLS goes through an OpenSSL bufferevent (bev). */
    int fd;              /* plain TCP; -1 once closed (or on TLS) */
    struct event *io_ev; /* fd: readable (unless closing), writable while output waits */
    short io_what;       /* what io_ev is armed for */
    size_t out_waiting;  /* fd: output proton still held when the socket last took no more */
    size_t out_added;    /* deliveries' bytes given to proton since output was last written */
    struct bufferevent *bev;
    pn_connection_driver_t driver;
    uint64_t id;
    char peer[64];
    char container[128];
    char *user; /* SASL PLAIN's user, for the ACL; NULL: anonymous */
    bool tls;   /* accepted on the TLS listener */
    struct event *tick_ev;
    struct event *work_ev; /* deferred: process proton events and write */
    bool opened;
    bool out_blocked;         /* output above max_queued_bytes: consumers get no core credit */
    fy_limit_verdict verdict; /* fy_limits_accept's: REFUSE closes at open (resource-limit) */
    bool closing;             /* socket gone or going */
    bool sock_dead;           /* the socket failed: conn_end frees it without draining */
    bool in_process;          /* inside process(): not freed until it returns */
    uint64_t open_deadline;   /* mono ms; moved on by the time a password check waited */
    uint64_t open_paused_at;  /* mono ms: when the pending password check began */
    uint64_t open_waited_ms;  /* time open_timeout stood still for password checks */
    bool open_paused;         /* a password check is pending: open_timeout does not run */
    uint32_t pending;         /* store completions outstanding */
    uint32_t nsessions, nlinks;
    alink *links;
    /* Frame boundaries of the bytes handed to proton (frames_check in amqp_conn.c). */
    uint8_t fhead[8]; /* the protocol or frame header being read */
    uint8_t fhead_len;
    uint32_t fskip; /* bytes of the current frame's body still to come */
    bool famqp;     /* past the AMQP protocol header: SASL frames are refused */
    bool fsasl;     /* the current frame is a SASL frame: proton takes it alone */
    /* SASL PLAIN's password check, while it runs off the loop (amqp_sasl.c): proton gets no
     * input until its outcome is set; what the client sent meanwhile waits in held. */
    fy_auth_job *auth_job;
    fy_buf held;
    bool input_ended; /* the client's input ended while held: the end follows once it is taken */
    amqp_conn *next, *prev;
};

struct amqp_server {
    fy_adapter_env env;
    const fy_amqp_config *cfg;
    struct evconnlistener *listener;
    uint16_t port;
    struct evconnlistener *tls_listener; /* NULL without [tls] certfile */
    uint16_t tls_port;
    uint64_t max_msg; /* bytes of an encoded message */
    uint64_t next_conn_id;
    uint64_t next_tmp; /* numbers the temporary topics of dynamic sources */
    amqp_conn *conns;
    fy_adapter_stats stats;
    fy_buf scratch;
    bool stopping;
};

/* amqp_conn.c */
void amqp_conn_accept(amqp_server *srv, int fd, const char *peer, fy_limit_verdict verdict);
/* Whether c's socket is behind (output above max_queued_bytes): consumers wait for on_write. */
bool amqp_conn_out_blocked(amqp_conn *c);
/* The same on the TLS listener: proton sees the plaintext; SASL EXTERNAL takes the client
 * certificate's identity. */
void amqp_conn_accept_tls(amqp_server *srv, int fd, const char *peer, fy_limit_verdict verdict);
/* Processes proton's events and writes what it produced, now or from a deferred event. */
void amqp_conn_process(amqp_conn *c);
void amqp_conn_schedule(amqp_conn *c);
void amqp_conn_close_all(amqp_server *srv);
/* Closes c with amqp:connection:forced (an administrator's action); freed later. */
void amqp_conn_kick(amqp_conn *c);
void amqp_conn_pending_done(amqp_conn *c);
/* SASL PLAIN's password check is pending (c->auth_job): open_timeout stands still until
 * amqp_conn_auth_resume. The client has sent what it owed so far; its check may wait behind
 * auth_max_pending others. */
void amqp_conn_auth_wait(amqp_conn *c);
/* The SASL outcome that was pending is set: open_timeout runs again with what was left of it,
 * the outcome goes out, then the input held meanwhile goes to proton. c may be freed by the time
 * this returns. */
void amqp_conn_auth_resume(amqp_conn *c);

/* amqp_sasl.c: sets up the server side of SASL on t (ANONYMOUS and PLAIN through the auth hook,
 * EXTERNAL with a verified client certificate on TLS). */
void amqp_sasl_setup(amqp_conn *c, pn_transport_t *t);

/* amqp_link.c */
/* Temporary topics of dynamic sources: AMQP_TMP_PREFIX<conn id>-<n>. The core's reserved '%'
 * prefix keeps them apart from user topics and from MQTT wildcards. */
#define AMQP_TMP_PREFIX "%TMP%amqp-"
/* Deletes the temporary topics a previous run left behind (a crash, a shutdown). */
void amqp_tmp_cleanup(amqp_server *srv);
void amqp_link_event(amqp_conn *c, pn_event_t *e);
/* The connection is ending: every link's core member is closed (its unsettled deliveries go
 * back to the group); links still referred to by store completions stay until those finish. */
void amqp_links_close_all(amqp_conn *c);
/* A store completion referring to l finished. */
void amqp_link_unref(alink *l);
/* Hands every link's complete transfers to the core, one produce per link (called once
 * proton's events of a read are handled). */
void amqp_links_flush(amqp_conn *c);
/* Session s ended: its links end with it. */
void amqp_links_session_end(amqp_conn *c, pn_session_t *s);
/* The socket caught up: consumers take core credit again. */
void amqp_links_out_resume(amqp_conn *c);

#endif
