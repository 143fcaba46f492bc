/* SPDX-License-Identifier: Apache-2.0 */
/* Listener set-up shared by the accept paths (broker/listener.h). */
#include "broker/listener.h"

#include "ferry/errors.h"

#include <event2/bufferevent.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int fy_listener_open(struct event_base *base, const char *what, const char *addr, uint16_t port,
                     evconnlistener_cb cb, void *arg, struct evconnlistener **out, uint16_t *bound,
                     char *err, size_t errlen)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    *out = NULL;
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        snprintf(err, errlen, "%s listen address '%s' is not an IPv4 address", what, addr);
        return -FY_EINVAL;
    }
    *out = evconnlistener_new_bind(base, cb, arg, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                   (struct sockaddr *)&sin, sizeof(sin));
    if (!*out) {
        snprintf(err, errlen, "cannot listen for %s on %s:%u: %s", what, addr, (unsigned)port,
                 strerror(errno));
        return -FY_EIO;
    }
    *bound = port;
    if (getsockname(evconnlistener_get_fd(*out), (struct sockaddr *)&sin, &slen) == 0) {
        *bound = ntohs(sin.sin_port);
    }
    return FY_OK;
}

void fy_listener_peer(const struct sockaddr *sa, char *out, size_t n)
{
    char a[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof(a));
        snprintf(out, n, "%s:%u", a, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in->sin6_addr, a, sizeof(a));
        snprintf(out, n, "[%s]:%u", a, ntohs(in->sin6_port));
    } else {
        snprintf(out, n, "?");
    }
}

bool fy_listener_admit(fy_limits *limits, fy_limit_proto proto, evutil_socket_t fd,
                       const struct sockaddr *sa, fy_limit_verdict *v, char *peer, size_t n)
{
    *v = fy_limits_accept(limits, proto, sa);
    if (*v == FY_LIMIT_DROP) {
        evutil_closesocket(fd); /* as cheap as possible */
        return false;
    }
    fy_listener_peer(sa, peer, n);
    return true;
}

struct bufferevent *fy_listener_bev(struct event_base *base, evutil_socket_t fd, fy_tls *tls,
                                    fy_limits *limits, fy_limit_verdict v)
{
    int one = 1;
    struct bufferevent *bev;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bev = tls ? fy_tls_bev_new(tls, base, fd)
              : bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        if (!tls) {
            evutil_closesocket(fd); /* fy_tls_bev_new closes it itself */
        }
        fy_limits_release(limits, v);
    }
    return bev;
}
