/* SPDX-License-Identifier: Apache-2.0 */
/* ferryd: reads the configuration, opens the store, starts the listeners on one libevent loop,
 * and on SIGINT/SIGTERM stops accepting, flushes the store and exits 0. */
#include "adapters/adapter.h"
#include "broker/admin.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/core.h"
#include "broker/limits.h"
#include "broker/native.h"
#include "broker/service.h"
#include "broker/tls.h"
#include "common/clock.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ferryd [options]\n"
               "\n"
               "Ferry message broker: RocketMQ's model on an embedded LevelDB store, spoken over\n"
               "MQTT, AMQP 1.0 and Ferry's native protocol.\n"
               "\n"
               "options (each overrides the configuration file):\n"
               "  -c, --config FILE     configuration file (default: built-in defaults)\n"
               "  -d, --data-dir DIR    store directory (key data_dir)\n"
               "  -p, --port N          native protocol port ([native] port)\n"
               "      --mqtt-port N     MQTT port ([mqtt] port)\n"
               "      --amqp-port N     AMQP port ([amqp] port)\n"
               "      --admin-port N    admin HTTP port ([admin] port)\n"
               "      --flush MODE      async or sync (key flush)\n"
               "      --log-level L     debug, info, warn or error (key log_level)\n"
               "      --check-config    load and validate the configuration, then exit: 0 if\n"
               "                        it is valid, 1 with the file and line of an error\n"
               "  -h, --help            show this help and exit\n"
               "  -V, --version         show the version and exit\n"
               "\n"
               "Port 0 picks a free port; the bound port is logged.\n");
}

enum { OPT_MQTT = 256, OPT_AMQP, OPT_ADMIN, OPT_FLUSH, OPT_LOG, OPT_CHECK };

/* An override from the command line, applied after the file. */
typedef struct override {
    const char *section;
    const char *key;
    const char *value;
} override;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    fy_broker *b = arg;
    fy_log(INFO, "ferryd", "signal=%s msg=\"shutting down\"", sig == SIGINT ? "INT" : "TERM");
    fy_service_notify("STOPPING=1");
    event_base_loopexit(b->base, NULL);
}

/* The security step of a SIGHUP: reads the password and ACL files again; bad new files leave the
 * old ones in use. */
static void reload_auth(fy_broker *b)
{
    char err[512];
    if (!b->auth) {
        return;
    }
    if (fy_auth_reload(b->auth, err, sizeof(err)) == FY_OK) {
        fy_log(INFO, "ferryd", "signal=HUP msg=\"password and ACL files reloaded\"");
    } else {
        fy_log(ERROR, "ferryd", "signal=HUP msg=\"reload failed, keeping the files in use: %s\"",
               err);
    }
}

/* The TLS step of a SIGHUP: reads the certificate, key and CA files again; bad new files leave
 * the old ones in use. Connections open keep the context they began with. */
static void reload_tls(fy_broker *b)
{
    char err[512];
    if (!b->tls) {
        return;
    }
    if (fy_tls_reload(b->tls, err, sizeof(err)) == FY_OK) {
        fy_log(INFO, "ferryd", "signal=HUP msg=\"TLS certificate and key reloaded\"");
    } else {
        fy_log(ERROR, "ferryd",
               "signal=HUP msg=\"TLS reload failed, keeping the certificate in use: %s\"", err);
    }
}

static bool addr_is_loopback(const char *addr)
{
    struct in_addr a;
    if (strcmp(addr, "localhost") == 0 || strcmp(addr, "::1") == 0) {
        return true;
    }
    return inet_pton(AF_INET, addr, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* The first listener (section name) bound to a non-loopback address, or NULL. Adapters' sections
 * are read through the configuration: [mqtt] and [amqp] count when enabled. */
static const char *public_listener(const fy_config *conf, const fy_broker_config *cfg, char *addr,
                                   size_t addrlen)
{
    static const char *const adapters[] = {"mqtt", "amqp"};
    if (!addr_is_loopback(cfg->native.listen)) {
        snprintf(addr, addrlen, "%s", cfg->native.listen);
        return "native";
    }
    if (!addr_is_loopback(cfg->admin.listen)) {
        snprintf(addr, addrlen, "%s", cfg->admin.listen);
        return "admin";
    }
    for (size_t i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++) {
        fy_buf en = FY_BUF_INIT, la = FY_BUF_INIT;
        bool pub = false;
        if (fy_config_get(conf, adapters[i], "enabled", &en) == FY_OK &&
            fy_config_get(conf, adapters[i], "listen", &la) == FY_OK) {
            fy_buf_put_u8(&en, 0);
            fy_buf_put_u8(&la, 0);
            pub = strcmp((char *)en.data, "true") == 0 && !addr_is_loopback((char *)la.data);
            snprintf(addr, addrlen, "%s", (char *)la.data);
        }
        fy_buf_free(&en);
        fy_buf_free(&la);
        if (pub) {
            return adapters[i];
        }
    }
    return NULL;
}

/* Decides allow_anonymous and loads the password and ACL files; refuses (false, err) a
 * non-loopback listener with no authentication configured unless allow_anonymous is true. */
static bool auth_setup(fy_broker *b, char *err, size_t errlen)
{
    const fy_broker_config *cfg = b->cfg;
    char addr[128] = "";
    const char *pub = public_listener(b->conf, cfg, addr, sizeof(addr));
    bool has_pw = strcmp(cfg->password_file, "none") != 0 && cfg->password_file[0];
    bool anon;
    if (cfg->allow_anonymous == FY_ANON_AUTO && pub && !has_pw) {
        snprintf(err, errlen,
                 "[%s] listen %s is not a loopback address and no authentication is configured: "
                 "set password_file (ferryctl passwd), or allow_anonymous true to accept "
                 "anyone on the network",
                 pub, addr);
        return false;
    }
    anon =
        cfg->allow_anonymous == FY_ANON_TRUE || (cfg->allow_anonymous == FY_ANON_AUTO && !has_pw);
    if (fy_auth_new(cfg->password_file, cfg->acl_file, anon, &b->auth, err, errlen) != FY_OK) {
        return false;
    }
    fy_log(INFO, "ferryd", "password_file=%s acl_file=%s allow_anonymous=%s msg=\"security\"",
           cfg->password_file, cfg->acl_file, anon ? "true" : "false");
    if (!has_pw && strcmp(cfg->acl_file, "none") != 0 && cfg->acl_file[0]) {
        fy_log(WARN, "ferryd",
               "msg=\"acl_file without password_file: user names are not checked, any client "
               "may claim any user's rules\"");
    }
    if (!anon && !has_pw) {
        fy_log(WARN, "ferryd",
               "msg=\"allow_anonymous is false and there is no password_file: nobody can "
               "connect\"");
    }
    return true;
}

/* Builds the TLS context when [tls] certfile is set; refuses (false, err) bad TLS files and
 * [admin] tls without a certificate. */
static bool tls_setup(fy_broker *b, char *err, size_t errlen)
{
    if (fy_tls_new(&b->cfg->tls, &b->tls, err, errlen) != FY_OK) {
        return false;
    }
    if (b->cfg->admin.tls && !b->tls) {
        snprintf(err, errlen, "[admin] tls true needs [tls] certfile and keyfile");
        return false;
    }
    return true;
}

/* SIGHUP reloads what can change without a restart. Each step is one call here, in order. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    fy_log(INFO, "ferryd", "signal=HUP msg=\"reloading\"");
    fy_service_notify("RELOADING=1");
    fy_service_reload(); /* the log file, after rotation */
    reload_auth(arg);    /* password and ACL files */
    reload_tls(arg);     /* certificate, key and CA files */
    fy_service_notify("READY=1");
}

static int parse_args(int argc, char **argv, const char **conf_path, override *ov, int *nov,
                      bool *check_only)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"port", required_argument, NULL, 'p'},
        {"mqtt-port", required_argument, NULL, OPT_MQTT},
        {"amqp-port", required_argument, NULL, OPT_AMQP},
        {"admin-port", required_argument, NULL, OPT_ADMIN},
        {"flush", required_argument, NULL, OPT_FLUSH},
        {"log-level", required_argument, NULL, OPT_LOG},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:d:p:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            *conf_path = optarg;
            break;
        case 'd':
            ov[(*nov)++] = (override){"", "data_dir", optarg};
            break;
        case 'p':
            ov[(*nov)++] = (override){"native", "port", optarg};
            break;
        case OPT_MQTT:
            ov[(*nov)++] = (override){"mqtt", "port", optarg};
            break;
        case OPT_AMQP:
            ov[(*nov)++] = (override){"amqp", "port", optarg};
            break;
        case OPT_ADMIN:
            ov[(*nov)++] = (override){"admin", "port", optarg};
            break;
        case OPT_FLUSH:
            ov[(*nov)++] = (override){"", "flush", optarg};
            break;
        case OPT_LOG:
            ov[(*nov)++] = (override){"", "log_level", optarg};
            break;
        case OPT_CHECK:
            *check_only = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("ferryd %s\n", FERRY_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (*nov >= 16) {
            fprintf(stderr, "ferryd: too many options\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ferryd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    fy_broker b = {0};
    fy_broker_config cfg;
    const char *conf_path = NULL;
    override ov[16];
    int nov = 0, rc = 1;
    char err[512];
    struct event *sigint = NULL, *sigterm = NULL, *sighup = NULL;
    fy_adapters *adapters = NULL;
    bool check_only = false;

    if (!getenv("MALLOC_ARENA_MAX")) {
        /* glibc gives each thread that allocates (the loop, the store writer, LevelDB's
         * compaction) arenas of its own and keeps what is freed in them: a long run's RSS grows
         * in steps with a flat live heap (docs/reliability.md, soak). Two arenas suffice. */
        mallopt(M_ARENA_MAX, 2);
    }
    if (parse_args(argc, argv, &conf_path, ov, &nov, &check_only) != 0) {
        return 2;
    }
    b.started_mono_ms = fy_mono_ms();
    b.started_wall_ms = fy_wall_ms();
    b.cfg = &cfg;
    b.conf = fy_config_new();
    if (fy_broker_config_register(b.conf, &cfg) != FY_OK) {
        fprintf(stderr, "ferryd: internal error registering the configuration\n");
        goto out;
    }
    adapters = fy_adapters_new(b.conf);
    b.adapters = adapters;
    if (conf_path && fy_config_load_file(b.conf, conf_path, err, sizeof(err)) != FY_OK) {
        fprintf(stderr, "ferryd: %s\n", err);
        goto out;
    }
    for (int i = 0; i < nov; i++) {
        if (fy_config_set(b.conf, ov[i].section, ov[i].key, ov[i].value, err, sizeof(err)) !=
            FY_OK) {
            fprintf(stderr, "ferryd: command line: %s\n", err);
            goto out;
        }
    }
    if (check_only) {
        /* The security files and rules too: a start would refuse what they refuse. */
        if (!auth_setup(&b, err, sizeof(err)) || !tls_setup(&b, err, sizeof(err))) {
            fprintf(stderr, "ferryd: %s\n", err);
            goto out;
        }
        printf("ferryd: configuration %s is valid\n", conf_path ? conf_path : "(defaults)");
        rc = 0;
        goto out;
    }
    fy_log_set_level((fy_log_level)cfg.log_level);
    if (strcmp(cfg.log_file, "stderr") != 0 && fy_log_open(cfg.log_file) != FY_OK) {
        fprintf(stderr, "ferryd: cannot open log_file %s: %s\n", cfg.log_file, strerror(errno));
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);

    b.base = event_base_new();
    if (!b.base) {
        fprintf(stderr, "ferryd: cannot create the event loop\n");
        goto out;
    }
    fy_log(INFO, "ferryd", "version=%s config=%s data_dir=%s msg=\"starting\"", FERRY_VERSION,
           conf_path ? conf_path : "(defaults)", cfg.data_dir);
    if (!auth_setup(&b, err, sizeof(err))) {
        fy_log(FATAL, "ferryd", "msg=\"%s\"", err);
        fprintf(stderr, "ferryd: %s\n", err);
        goto out;
    }
    /* Password hashing (PBKDF2) runs on a worker thread, off the loop. */
    if (fy_auth_use_loop(b.auth, b.base, (uint32_t)cfg.auth_max_pending) != FY_OK) {
        fy_log(FATAL, "ferryd", "msg=\"cannot set up the password checks' worker\"");
        fprintf(stderr, "ferryd: cannot set up the password checks' worker\n");
        goto out;
    }
    if (!tls_setup(&b, err, sizeof(err))) {
        fy_log(FATAL, "ferryd", "msg=\"%s\"", err);
        fprintf(stderr, "ferryd: %s\n", err);
        goto out;
    }
    /* Every connection is a descriptor: use all the process may have (the store's too). */
    b.limits = fy_limits_new(&cfg.limits, fy_limits_raise_nofile());

    fy_store_opts so = {
        .dir = cfg.data_dir,
        .flush = cfg.flush == 1 ? FY_FLUSH_SYNC : FY_FLUSH_ASYNC,
        .cache_bytes = cfg.store_cache_size,
        .write_buffer = cfg.store_write_buffer,
        .max_commit_bytes = cfg.store_max_commit,
    };
    rc = fy_store_open(&so, b.base, &b.store, err, sizeof(err));
    if (rc != FY_OK) {
        fy_log(FATAL, "ferryd", "err=%s msg=\"cannot open the store: %s\"", fy_errname(rc), err);
        fprintf(stderr, "ferryd: cannot open the store: %s\n", err);
        rc = 1;
        goto out;
    }
    rc = 1;
    b.core = fy_core_new(b.base, b.store, &cfg, err, sizeof(err));
    if (!b.core) {
        fy_log(FATAL, "ferryd", "msg=\"%s\"", err);
        fprintf(stderr, "ferryd: %s\n", err);
        goto out;
    }
    if (fy_native_start(b.base, b.core, (uint16_t)cfg.broker_id,
                        (size_t)cfg.max_message_size + FY_NATIVE_FRAME_SLACK, cfg.native.listen,
                        (uint16_t)cfg.native.port, b.auth, &b.native, err, sizeof(err)) != FY_OK ||
        (b.tls && fy_native_listen_tls(b.native, b.tls, cfg.native.listen,
                                       (uint16_t)cfg.native.tls_port, err, sizeof(err)) != FY_OK)) {
        fy_log(FATAL, "ferryd", "msg=\"%s\"", err);
        fprintf(stderr, "ferryd: %s\n", err);
        goto out;
    }
    fy_native_set_limits(b.native, b.limits, cfg.native.hello_timeout_ms);
    {
        fy_adapter_env env = {b.base,
                              b.core,
                              cfg.max_message_size,
                              (uint16_t)cfg.broker_id,
                              fy_auth_start,
                              fy_auth_cancel,
                              b.auth,
                              fy_auth_authorize,
                              fy_auth_allows_anonymous(b.auth),
                              b.limits,
                              b.tls};
        if (fy_adapters_start(adapters, &env, err, sizeof(err)) != FY_OK) {
            fy_log(FATAL, "ferryd", "msg=\"%s\"", err);
            fprintf(stderr, "ferryd: %s\n", err);
            goto out;
        }
    }
    if (fy_admin_start(&b, cfg.admin.listen, (uint16_t)cfg.admin.port, &b.admin, err,
                       sizeof(err)) != FY_OK) {
        fy_log(FATAL, "ferryd", "msg=\"%s\"", err);
        fprintf(stderr, "ferryd: %s\n", err);
        goto out;
    }

    sigint = evsignal_new(b.base, SIGINT, on_signal, &b);
    sigterm = evsignal_new(b.base, SIGTERM, on_signal, &b);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    sighup = evsignal_new(b.base, SIGHUP, on_sighup, &b);
    evsignal_add(sighup, NULL);
    fy_log(INFO, "ferryd", "msg=\"ready\"");
    fy_service_notify("READY=1");

    event_base_dispatch(b.base);

    /* Stop accepting and close connections first, then persist consumer offsets, then let the
     * store write what is queued and flush it. */
    fy_native_stop(b.native);
    b.native = NULL;
    fy_adapters_stop(adapters);
    fy_admin_stop(b.admin);
    b.admin = NULL;
    fy_core_free(b.core);
    b.core = NULL;
    fy_store_close(b.store);
    b.store = NULL;
    fy_log(INFO, "ferryd", "uptime_s=%llu msg=\"stopped cleanly: listeners closed, store flushed\"",
           (unsigned long long)((fy_mono_ms() - b.started_mono_ms) / 1000));
    rc = 0;
out:
    if (sigint) {
        event_free(sigint);
    }
    if (sigterm) {
        event_free(sigterm);
    }
    if (sighup) {
        event_free(sighup);
    }
    fy_native_stop(b.native);
    fy_adapters_stop(adapters);
    fy_admin_stop(b.admin);
    fy_core_free(b.core);
    fy_store_close(b.store);
    fy_limits_free(b.limits);
    fy_auth_free(b.auth); /* its worker's event is on the loop */
    if (b.base) {
        event_base_free(b.base);
    }
    fy_config_free(b.conf);
    fy_adapters_free(adapters);
    fy_tls_free(b.tls);
    fy_log_close();
    return rc;
}
