/* SPDX-License-Identifier: Apache-2.0 */
/* The server side of SASL through proton's plugin interface: Debian's proton is built without
 * Cyrus SASL, so its own server offers only ANONYMOUS and EXTERNAL. This plugin offers ANONYMOUS
 * (when allowed), PLAIN (checked through the auth hook; on plain TCP only with [amqp]
 * sasl_plain) and, on TLS with a verified client certificate, EXTERNAL (the certificate's
 * identity is the user). With use_identity_as_username a TLS client must use EXTERNAL. It owns
 * the user name it reports. A PLAIN check the hook answers later leaves the outcome open: the
 * connection holds its input meanwhile (amqp_conn.c) and the outcome is set when the answer
 * comes; too many checks pending is the outcome sys-temp. */
#include "adapters/amqp/private.h"
#include "common/alloc.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <openssl/crypto.h>
#include <proton/sasl.h>
#include <proton/sasl_plugin.h>
#include <proton/transport.h>

#include <stdio.h>
#include <string.h>

typedef struct sasl_ctx {
    amqp_conn *c;
    char *user;
    char *plain_user; /* PLAIN's user while its check is pending */
    char mechs[32];
    char ident[256]; /* the verified client certificate's identity; "" = none */
} sasl_ctx;

/* PLAIN's outcome for x->plain_user, from the check's result; the outcome goes out with the
 * connection's next output. */
static void plain_outcome(sasl_ctx *x, pn_transport_t *t, int result)
{
    if (result == FY_OK) {
        x->user = x->plain_user;
        x->plain_user = NULL;
        fy_free(x->c->user);
        x->c->user = fy_strdup(x->user);
        pnx_sasl_set_succeeded(t, x->user, NULL);
    } else if (result == -FY_EAGAIN || result == -FY_ECANCELED) {
        fy_log(INFO, "amqp", "conn=%llu peer=%s msg=\"SASL PLAIN refused: server busy\"",
               (unsigned long long)x->c->id, x->c->peer);
        pn_sasl_done(pn_sasl(t), PN_SASL_TEMP); /* sys-temp: try again later */
    } else {
        fy_log(INFO, "amqp", "conn=%llu peer=%s msg=\"SASL PLAIN refused\"",
               (unsigned long long)x->c->id, x->c->peer);
        pnx_sasl_set_failed(t);
    }
    fy_free(x->plain_user);
    x->plain_user = NULL;
    pnx_sasl_set_desired_state(t, SASL_POSTED_OUTCOME);
}

/* The answer to a pending PLAIN check (an fy_auth_done_fn over the connection, which cancels
 * the check if it ends first). */
static void plain_checked(void *arg, int result)
{
    amqp_conn *c = arg;
    pn_transport_t *t = c->driver.transport;
    c->auth_job = NULL;
    plain_outcome(pnx_sasl_get_context(t), t, result);
    amqp_conn_auth_resume(c);
}

/* Checks user and password through the broker's authentication hook (adapters/adapter.h),
 * shared with MQTT; without one (no authentication configured) everyone may. The outcome is set
 * now, or once the hook answers (c->auth_job). */
static void plain_check(sasl_ctx *x, pn_transport_t *t, const char *user, const char *password)
{
    amqp_conn *c = x->c;
    const fy_adapter_env *env = &c->srv->env;
    fy_auth_request ar = {
        "amqp", "", c->peer, true, fy_slice_str(user), true, fy_slice_str(password)};
    int rc = FY_OK;
    x->plain_user = fy_strdup(user);
    if (env->authenticate) {
        rc = env->authenticate(env->auth_arg, &ar, plain_checked, c, &c->auth_job);
    }
    if (rc == FY_AUTH_PENDING) {
        amqp_conn_auth_wait(c);
    } else {
        plain_outcome(x, t, rc);
    }
}

static void sasl_free(pn_transport_t *t)
{
    sasl_ctx *x = pnx_sasl_get_context(t);
    if (x) {
        fy_free(x->user);
        fy_free(x->plain_user);
        fy_free(x);
    }
}

/* ANONYMOUS needs both [amqp] allow_anonymous and the broker's allow_anonymous. */
static bool anonymous_ok(const amqp_conn *c)
{
    return c->srv->cfg->allow_anonymous && c->srv->env.allow_anonymous;
}

/* TLS with use_identity_as_username: the certificate is the only credential. */
static bool identity_only(const amqp_conn *c)
{
    return c->tls && fy_tls_identity_is_username(c->srv->env.tls);
}

/* PLAIN: always on TLS (the password is encrypted), on plain TCP only with [amqp] sasl_plain. */
static bool plain_ok(const amqp_conn *c)
{
    return (c->tls || c->srv->cfg->sasl_plain) && !identity_only(c);
}

static const char *sasl_list_mechs(pn_transport_t *t)
{
    sasl_ctx *x = pnx_sasl_get_context(t);
    /* Called once the client's first bytes are in: on TLS the handshake is over. */
    if (x->c->tls && fy_tls_peer_identity(x->c->bev, x->ident, sizeof(x->ident)) != FY_OK) {
        x->ident[0] = '\0';
    }
    snprintf(x->mechs, sizeof(x->mechs), "%s%s%s", x->ident[0] ? "EXTERNAL " : "",
             plain_ok(x->c) ? "PLAIN " : "",
             anonymous_ok(x->c) && !identity_only(x->c) ? "ANONYMOUS" : "");
    return x->mechs;
}

static bool sasl_init_server(pn_transport_t *t)
{
    pnx_sasl_set_desired_state(t, SASL_POSTED_MECHANISMS);
    return true;
}

static bool sasl_init_client(pn_transport_t *t)
{
    return false;
}

static void sasl_prepare(pn_transport_t *t)
{
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616). */
static bool plain_parse(const pn_bytes_t *b, char *user, size_t ulen, char *pass, size_t plen)
{
    const char *p = b->start, *end, *n1, *n2;
    if (!p) {
        return false; /* no initial response (and no pointer to add its size to) */
    }
    end = p + b->size;
    n1 = memchr(p, 0, b->size);
    if (!n1) {
        return false;
    }
    n2 = memchr(n1 + 1, 0, (size_t)(end - n1 - 1));
    if (!n2 || (size_t)(n2 - n1 - 1) >= ulen || (size_t)(end - n2 - 1) >= plen || n2 == n1 + 1) {
        return false;
    }
    memcpy(user, n1 + 1, (size_t)(n2 - n1 - 1));
    user[n2 - n1 - 1] = '\0';
    memcpy(pass, n2 + 1, (size_t)(end - n2 - 1));
    pass[end - n2 - 1] = '\0';
    return true;
}

static void sasl_process_init(pn_transport_t *t, const char *mech, const pn_bytes_t *recv)
{
    sasl_ctx *x = pnx_sasl_get_context(t);
    if (!mech) {
        mech = ""; /* a sasl-init without its mandatory mechanism: refused below */
    }
    if (strcmp(mech, "EXTERNAL") == 0 && x->ident[0]) {
        /* An authorization identity, if given, must be the certificate's. */
        if (recv && recv->size > 0 &&
            (recv->size != strlen(x->ident) || memcmp(recv->start, x->ident, recv->size) != 0)) {
            fy_log(INFO, "amqp",
                   "conn=%llu peer=%s user=%s msg=\"SASL EXTERNAL refused: "
                   "authorization identity is not the certificate's\"",
                   (unsigned long long)x->c->id, x->c->peer, x->ident);
            pnx_sasl_set_failed(t);
        } else {
            x->user = fy_strdup(x->ident);
            fy_free(x->c->user);
            x->c->user = fy_strdup(x->ident);
            fy_log(DEBUG, "amqp", "conn=%llu peer=%s user=%s msg=\"SASL EXTERNAL\"",
                   (unsigned long long)x->c->id, x->c->peer, x->ident);
            pnx_sasl_set_succeeded(t, x->user, NULL);
        }
    } else if (strcmp(mech, "ANONYMOUS") == 0 && anonymous_ok(x->c) && !identity_only(x->c)) {
        x->user = fy_strdup("anonymous");
        pnx_sasl_set_succeeded(t, x->user, NULL);
    } else if (strcmp(mech, "PLAIN") == 0 && plain_ok(x->c)) {
        char user[256], pass[256];
        bool parsed = recv && plain_parse(recv, user, sizeof(user), pass, sizeof(pass));
        if (parsed) {
            plain_check(x, t, user, pass); /* sets the outcome, now or later */
        } else {
            plain_outcome(x, t, -FY_EPERM);
        }
        OPENSSL_cleanse(pass, sizeof(pass));
        return;
    } else {
        fy_log(INFO, "amqp", "conn=%llu peer=%s mech=%s msg=\"SASL mechanism refused\"",
               (unsigned long long)x->c->id, x->c->peer, mech);
        pnx_sasl_set_failed(t);
    }
    pnx_sasl_set_desired_state(t, SASL_POSTED_OUTCOME);
}

static void sasl_process_response(pn_transport_t *t, const pn_bytes_t *recv)
{
}

static bool sasl_process_mechanisms(pn_transport_t *t, const char *mechs)
{
    return false;
}

static void sasl_process_challenge(pn_transport_t *t, const pn_bytes_t *recv)
{
}

static void sasl_process_outcome(pn_transport_t *t, const pn_bytes_t *recv)
{
}

static bool sasl_can_encrypt(pn_transport_t *t)
{
    return false;
}

static ssize_t sasl_max_encrypt_size(pn_transport_t *t)
{
    return 0;
}

static ssize_t sasl_encode(pn_transport_t *t, pn_bytes_t in, pn_bytes_t *out)
{
    return 0;
}

static ssize_t sasl_decode(pn_transport_t *t, pn_bytes_t in, pn_bytes_t *out)
{
    return 0;
}

static const pnx_sasl_implementation ferry_sasl = {
    sasl_free,
    sasl_list_mechs,
    sasl_init_server,
    sasl_init_client,
    sasl_prepare,
    sasl_process_init,
    sasl_process_response,
    sasl_process_mechanisms,
    sasl_process_challenge,
    sasl_process_outcome,
    sasl_can_encrypt,
    sasl_max_encrypt_size,
    sasl_encode,
    sasl_decode,
};

void amqp_sasl_setup(amqp_conn *c, pn_transport_t *t)
{
    sasl_ctx *x = FY_NEW(sasl_ctx);
    pn_sasl_t *sasl = pn_sasl(t);
    x->c = c;
    pn_sasl_set_allow_insecure_mechs(sasl, true);
    pnx_sasl_set_implementation(t, &ferry_sasl, x);
}
