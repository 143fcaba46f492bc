/* SPDX-License-Identifier: Apache-2.0 */
/* TLS through OpenSSL: the [tls] section, the server context (TLS 1.2 at least, optional
 * required client certificates), bufferevents for accepted sockets and the identity of a
 * client certificate. A context that fails to build leaves nothing behind; a reload that fails
 * keeps the old one. */
#include "broker/tls.h"

#include "broker/config.h"
#include "common/alloc.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

struct fy_tls {
    const fy_tls_config *cfg;
    SSL_CTX *ctx;
};

static const char *const tls_version_choices[] = {"tlsv1.2", "tlsv1.3", NULL};

#define TC fy_tls_config
static const fy_config_key tls_keys[] = {
    FY_CONFIG_KEY_STRING("cafile", TC, cafile, "none",
                         "PEM file of the CAs that sign client certificates; none = no client "
                         "certificates."),
    FY_CONFIG_KEY_STRING("certfile", TC, certfile, "none",
                         "PEM server certificate (chain); TLS listeners open only when set."),
    FY_CONFIG_KEY_STRING("keyfile", TC, keyfile, "none", "PEM private key of certfile."),
    FY_CONFIG_KEY_BOOL("require_certificate", TC, require_certificate, "false",
                       "TLS clients must present a certificate signed by a CA of cafile."),
    FY_CONFIG_KEY_BOOL("use_identity_as_username", TC, use_identity_as_username, "false",
                       "The client certificate's CN (or SAN) is the user name; no password."),
    FY_CONFIG_KEY_ENUM("tls_version", TC, tls_version, "tlsv1.2", tls_version_choices,
                       "Lowest TLS version accepted: tlsv1.2 or tlsv1.3."),
    FY_CONFIG_KEY_STRING("ciphers", TC, ciphers, "default",
                         "OpenSSL cipher list for TLS 1.2; default = OpenSSL's (system policy)."),
};
#undef TC

int fy_tls_config_register(struct fy_config *cfg, fy_tls_config *tc)
{
    return fy_config_add_section(cfg, "tls", tls_keys, sizeof(tls_keys) / sizeof(tls_keys[0]), tc);
}

static bool is_set(const char *s)
{
    return s && s[0] && strcmp(s, "none") != 0;
}

bool fy_tls_configured(const fy_tls_config *cfg)
{
    return is_set(cfg->certfile);
}

/* The first OpenSSL error of the queue as text (and the queue cleared), for a message. */
static const char *ssl_why(char *buf, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, n, "unknown OpenSSL error");
    } else {
        ERR_error_string_n(e, buf, n);
    }
    ERR_clear_error();
    return buf;
}

/* A file the broker must read: a clear message (key, path, errno) when it cannot. */
static bool readable(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "[tls] %s %s: cannot read it: %s", key, path, strerror(errno));
        return false;
    }
    fclose(f);
    return true;
}

/* Builds a server context from cfg; NULL with err on failure. */
static SSL_CTX *ctx_build(const fy_tls_config *cfg, char *err, size_t errlen)
{
    static const unsigned char sid[] = "ferry";
    char why[256];
    SSL_CTX *ctx = NULL;
    bool ca = is_set(cfg->cafile);

    ERR_clear_error();
    if (!is_set(cfg->keyfile)) {
        snprintf(err, errlen, "[tls] certfile is set but keyfile is not");
        return NULL;
    }
    if (cfg->require_certificate && !ca) {
        snprintf(err, errlen, "[tls] require_certificate true needs a cafile to verify clients");
        return NULL;
    }
    if (cfg->use_identity_as_username && !cfg->require_certificate) {
        snprintf(err, errlen, "[tls] use_identity_as_username true needs require_certificate true");
        return NULL;
    }
    if (!readable("certfile", cfg->certfile, err, errlen) ||
        !readable("keyfile", cfg->keyfile, err, errlen) ||
        (ca && !readable("cafile", cfg->cafile, err, errlen))) {
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "[tls] cannot create an OpenSSL context: %s",
                 ssl_why(why, sizeof(why)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, cfg->tls_version == FY_TLS_V1_3 ? TLS1_3_VERSION
                                                                       : TLS1_2_VERSION);
    /* A client that closes without close_notify (most MQTT clients after DISCONNECT) is an
     * end of file, not an error. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1) {
        snprintf(err, errlen, "[tls] certfile %s: not a PEM certificate: %s", cfg->certfile,
                 ssl_why(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen,
                 "[tls] keyfile %s: not a PEM private key, or not the key of certfile %s: %s",
                 cfg->keyfile, cfg->certfile, ssl_why(why, sizeof(why)));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "[tls] keyfile %s does not match certfile %s: %s", cfg->keyfile,
                 cfg->certfile, ssl_why(why, sizeof(why)));
        goto fail;
    }
    if (ca) {
        STACK_OF(X509_NAME) * names;
        if (SSL_CTX_load_verify_locations(ctx, cfg->cafile, NULL) != 1) {
            snprintf(err, errlen, "[tls] cafile %s: no PEM certificate: %s", cfg->cafile,
                     ssl_why(why, sizeof(why)));
            goto fail;
        }
        names = SSL_load_client_CA_file(cfg->cafile);
        if (names) {
            SSL_CTX_set_client_CA_list(ctx, names);
        }
    }
    if (strcmp(cfg->ciphers, "default") != 0 && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) {
        snprintf(err, errlen, "[tls] ciphers '%s': no usable cipher: %s", cfg->ciphers,
                 ssl_why(why, sizeof(why)));
        goto fail;
    }
    SSL_CTX_set_verify(ctx,
                       cfg->require_certificate ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                                                : SSL_VERIFY_NONE,
                       NULL);
    {
        X509 *cert = SSL_CTX_get0_certificate(ctx);
        if (cert && X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
            fy_log(WARN, "tls", "certfile=%s msg=\"the server certificate has expired\"",
                   cfg->certfile);
        }
    }
    ERR_clear_error();
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int fy_tls_new(const fy_tls_config *cfg, fy_tls **out, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    *out = NULL;
    if (!fy_tls_configured(cfg)) {
        return FY_OK;
    }
    ctx = ctx_build(cfg, err, errlen);
    if (!ctx) {
        return -FY_EINVAL;
    }
    *out = FY_NEW(fy_tls);
    (*out)->cfg = cfg;
    (*out)->ctx = ctx;
    fy_log(INFO, "tls",
           "certfile=%s cafile=%s require_certificate=%s min_version=%s msg=\"TLS on\"",
           cfg->certfile, cfg->cafile, cfg->require_certificate ? "true" : "false",
           tls_version_choices[cfg->tls_version == FY_TLS_V1_3]);
    return FY_OK;
}

int fy_tls_reload(fy_tls *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = ctx_build(t->cfg, err, errlen);
    if (!ctx) {
        return -FY_EINVAL;
    }
    /* Connections open hold their own reference to the old context. */
    SSL_CTX_free(t->ctx);
    t->ctx = ctx;
    return FY_OK;
}

void fy_tls_free(fy_tls *t)
{
    if (!t) {
        return;
    }
    SSL_CTX_free(t->ctx);
    fy_free(t);
}

bool fy_tls_identity_is_username(const fy_tls *t)
{
    return t && t->cfg->use_identity_as_username;
}

struct bufferevent *fy_tls_bev_new(fy_tls *t, struct event_base *base, int fd)
{
    struct bufferevent *bev, *under;
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) {
        ERR_clear_error();
        if (fd >= 0) {
            evutil_closesocket(fd);
        }
        return NULL;
    }
    if (fd < 0) {
        /* The socket comes later (evhttp's bufferevent_setfd): directly on it. */
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev) {
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        }
        /* NULL: only out of memory; whether libevent freed ssl is not said, so leave it. */
        return bev;
    }
    /* A filter over a socket bufferevent: libevent then decrypts every record one socket read
     * brought in. Directly on the socket it decrypts at most two records per wake-up, and
     * clients that write a record per packet (libmosquitto) would have their publishes taken
     * one or two per loop turn, each its own store batch. Deferred callbacks: a read that ends
     * in close_notify reports the data before the end of file (libevent runs a deferred read
     * callback before the event callback), so a DISCONNECT just before it is not lost. */
    under = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!under) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        return NULL;
    }
    bev = bufferevent_openssl_filter_new(base, under, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!bev) {
        SSL_free(ssl);
        bufferevent_free(under); /* closes fd */
        return NULL;
    }
    /* The filter moves output into the socket bufferevent only up to this much: the rest stays
     * in the filter's output, where the adapters see a slow reader (their back-pressure). */
    bufferevent_setwatermark(under, EV_WRITE, 0, 64 * 1024);
    /* With BEV_OPT_CLOSE_ON_FREE the filter frees ssl and the socket bufferevent. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

void fy_tls_bev_free(struct bufferevent *bev)
{
    struct bufferevent *under = bev ? bufferevent_get_underlying(bev) : NULL;
    if (under && fy_tls_bev_is_tls(bev) && bufferevent_getfd(under) >= 0) {
        /* What TLS encrypted last (the packets before a close, the alert refusing a handshake)
         * waits in the socket bufferevent, whose output libevent keeps frozen: write a copy
         * now, once, without waiting (evbuffer_iovec is laid out as struct iovec). */
        struct evbuffer_iovec v[16];
        int n = evbuffer_peek(bufferevent_get_output(under), -1, NULL, v, 16);
        if (n > 0) {
            ssize_t w = writev(bufferevent_getfd(under), (const struct iovec *)v, n < 16 ? n : 16);
            (void)w; /* best effort: the connection ends either way */
        }
    }
    if (bev) {
        bufferevent_free(bev);
    }
}

bool fy_tls_bev_is_tls(struct bufferevent *bev)
{
    return bev && bufferevent_openssl_get_ssl(bev) != NULL;
}

/* Copies an ASN1 string as UTF-8 into out when it is printable text that fits. */
static bool copy_name(const ASN1_STRING *s, char *out, size_t outlen)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, s);
    bool ok = n > 0 && (size_t)n < outlen;
    for (int i = 0; ok && i < n; i++) {
        if (u[i] < 0x20 || u[i] == 0x7f) {
            ok = false;
        }
    }
    if (ok) {
        memcpy(out, u, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(u);
    return ok;
}

int fy_tls_peer_identity(struct bufferevent *bev, char *out, size_t outlen)
{
    SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
    X509 *cert;
    int ix;
    bool found = false;
    if (!ssl || outlen == 0) {
        return -FY_ENOTFOUND;
    }
    cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) {
        return -FY_ENOTFOUND;
    }
    ix = X509_NAME_get_index_by_NID(X509_get_subject_name(cert), NID_commonName, -1);
    if (ix >= 0) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(X509_get_subject_name(cert), ix);
        found = copy_name(X509_NAME_ENTRY_get_data(e), out, outlen);
    }
    if (!found) {
        GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
        for (int i = 0; sans && !found && i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS || g->type == GEN_EMAIL) {
                found = copy_name(g->d.ia5, out, outlen);
            }
        }
        GENERAL_NAMES_free(sans);
    }
    return found ? FY_OK : -FY_ENOTFOUND;
}

const char *fy_tls_bev_error(struct bufferevent *bev)
{
    static char buf[256];
    unsigned long e = 0, last;
    if (!fy_tls_bev_is_tls(bev)) {
        return NULL;
    }
    /* libevent queues OpenSSL's errors and, apart, SSL_get_error's small code: keep the first
     * error that names a library. */
    while ((last = bufferevent_get_openssl_error(bev)) != 0) {
        if (e == 0 || (ERR_GET_LIB(e) == 0 && ERR_GET_LIB(last) != 0)) {
            e = last;
        }
    }
    if (e == 0) {
        return NULL;
    }
    {
        const char *r = ERR_reason_error_string(e);
        long vr = X509_V_OK;
        if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            vr = SSL_get_verify_result(bufferevent_openssl_get_ssl(bev));
        }
        if (r && vr != X509_V_OK) {
            /* Which check the client certificate failed: expired, unknown CA... */
            snprintf(buf, sizeof(buf), "TLS: %s: %s", r, X509_verify_cert_error_string(vr));
        } else if (r) {
            snprintf(buf, sizeof(buf), "TLS: %s", r);
        } else {
            char full[200];
            ERR_error_string_n(e, full, sizeof(full));
            snprintf(buf, sizeof(buf), "TLS: %s", full);
        }
    }
    return buf;
}
