/* SPDX-License-Identifier: Apache-2.0 */
/* A TCP listener on the loop (an IPv4 address and a port, 0 = a free one) and the "ip:port"
 * text of a peer: what every accept path (MQTT, AMQP, native, each plain or TLS) shares. */
#ifndef FERRY_BROKER_LISTENER_H
#define FERRY_BROKER_LISTENER_H

#include "broker/limits.h"
#include "broker/tls.h"

#include <event2/listener.h>

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Listens on addr:port with cb(arg) for each accepted socket. Returns FY_OK with *out and the
 * port bound in *bound, or -FY_EINVAL (addr is not an IPv4 address) / -FY_EIO with
 * "cannot listen for WHAT on addr:port: reason" in err. */
int fy_listener_open(struct event_base *base, const char *what, const char *addr, uint16_t port,
                     evconnlistener_cb cb, void *arg, struct evconnlistener **out, uint16_t *bound,
                     char *err, size_t errlen);

/* "ip:port" of sa into out ("?" for what is not IPv4 or IPv6). */
void fy_listener_peer(const struct sockaddr *sa, char *out, size_t n);

/* The first step of every accept path: the [limits] verdict for proto. Over the connect rate
 * (FY_LIMIT_DROP) fd is closed at once, before any TLS work, and it returns false; else *v and
 * peer ("ip:port") are set. */
bool fy_listener_admit(fy_limits *limits, fy_limit_proto proto, evutil_socket_t fd,
                       const struct sockaddr *sa, fy_limit_verdict *v, char *peer, size_t n);

/* A bufferevent for an accepted socket, TCP_NODELAY, TLS when tls is set. NULL when it cannot
 * be made: then the socket is closed and verdict v released. */
struct bufferevent *fy_listener_bev(struct event_base *base, evutil_socket_t fd, fy_tls *tls,
                                    fy_limits *limits, fy_limit_verdict v);

#endif
