/* SPDX-License-Identifier: Apache-2.0 */
/* TLS for every listener (MQTT, AMQP, native, admin HTTPS) through OpenSSL and libevent's
 * bufferevent_openssl: one server context built from the [tls] section (mosquitto's keys), a
 * bufferevent for each accepted socket, and the identity of a verified client certificate.
 * SIGHUP reloads the certificate and key (connections open keep the context they began with).
 * Everything runs on the loop thread. */
#ifndef FERRY_BROKER_TLS_H
#define FERRY_BROKER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;

/* [tls]: mosquitto's key names and meanings. Strings "none" = not set. */
typedef struct fy_tls_config {
    char *cafile;   /* PEM CAs that sign client certificates (require_certificate) */
    char *certfile; /* PEM server certificate (chain); TLS listeners open only when set */
    char *keyfile;  /* PEM private key of certfile */
    bool require_certificate;
    bool use_identity_as_username; /* the client certificate's CN (or SAN) is the user name */
    int tls_version;               /* an fy_tls_version: the lowest version accepted */
    char *ciphers;                 /* OpenSSL cipher list for TLS 1.2; "default" = OpenSSL's */
} fy_tls_config;

typedef enum fy_tls_version { FY_TLS_V1_2 = 0, FY_TLS_V1_3 = 1 } fy_tls_version;

typedef struct fy_tls fy_tls;

/* Registers the [tls] section over tc (config.c calls it for the broker). */
struct fy_config;
int fy_tls_config_register(struct fy_config *cfg, fy_tls_config *tc);

/* Whether cfg asks for TLS listeners (a certfile is set). */
bool fy_tls_configured(const fy_tls_config *cfg);

/* Builds the server context from cfg (borrowed: its strings must outlive the fy_tls). Returns
 * FY_OK and *out (NULL when no certfile is set: TLS is off), or -FY_EINVAL / -FY_EIO with a
 * message naming the key and file in err (missing or unreadable certificate or key, a key that
 * does not match, a bad CA file or cipher list, use_identity_as_username without
 * require_certificate). */
int fy_tls_new(const fy_tls_config *cfg, fy_tls **out, char *err, size_t errlen);

/* Reads certfile, keyfile and cafile again (SIGHUP). FY_OK: new connections use them; on error
 * the old context stays in use and err says why. */
int fy_tls_reload(fy_tls *t, char *err, size_t errlen);

void fy_tls_free(fy_tls *t);

/* A server-side TLS bufferevent on an accepted socket (the handshake runs as the peer talks),
 * owning fd (BEV_OPT_CLOSE_ON_FREE), with deferred callbacks. Free it with fy_tls_bev_free. fd may
 * be -1 when the socket is attached later with bufferevent_setfd (evhttp_set_bevcb). NULL on
 * failure (fd closed). A peer that closes without close_notify is an EOF, not an error. */
struct bufferevent *fy_tls_bev_new(fy_tls *t, struct event_base *base, int fd);

/* Frees any bufferevent; for a TLS one, first writes (once, without blocking) what TLS already
 * encrypted for the socket: the last packets before a close, or the alert refusing a
 * handshake. Use it instead of bufferevent_free on bufferevents fy_tls_bev_new may have made.
 * NULL-safe. */
void fy_tls_bev_free(struct bufferevent *bev);

/* Whether bev is a TLS bufferevent made by fy_tls_bev_new. */
bool fy_tls_bev_is_tls(struct bufferevent *bev);

/* The identity of bev's verified client certificate: its subject CN, or else its first DNS or
 * e-mail subject alternative name, copied into out. FY_OK, or -FY_ENOTFOUND (no certificate,
 * not verified, no usable name, or one with control bytes or too long for out). */
int fy_tls_peer_identity(struct bufferevent *bev, char *out, size_t outlen);

/* Why a TLS bufferevent failed (the OpenSSL reason of its last error), or NULL when none was
 * recorded. Static or bev-owned text, valid until the next call. */
const char *fy_tls_bev_error(struct bufferevent *bev);

/* The configuration's use_identity_as_username. */
bool fy_tls_identity_is_username(const fy_tls *t);

#endif
