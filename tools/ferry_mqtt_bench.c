/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-mqtt-bench: an MQTT load generator over libmosquitto's non-threaded API, the same for any
 * broker (`make bench-mqtt` drives mosquitto and ferryd with it). `pubsub` polls publishers and
 * subscribers in one process; each payload carries publisher, sequence number and send time
 * (CLOCK_MONOTONIC ns), so loss, duplicates and latency are exact. `idle` holds many subscribed
 * clients in a few processes and reports the broker's RSS per client. `connect` opens and closes
 * connections one after another in a few processes (TLS handshakes per second with --cafile).
 * --cafile (and --cert/--key) run every mode over TLS (mosquitto_tls_set). */
#include "tools/bench_util.h"

#include <mosquitto.h>
#include <openssl/ssl.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAGIC 0x46594d42u /* "FYMB" */
#define HDR_SIZE 24             /* magic u32, publisher u32, sequence u64, send time u64 */
#define LAT_SUB 512             /* histogram sub-buckets per power of two (0.2% resolution) */
#define LAT_MAXEXP 50
#define LAT_BUCKETS (1024 + (LAT_MAXEXP - 9) * LAT_SUB)

typedef struct opts {
    const char *host;
    int port;
    const char *prefix; /* topic prefix: publisher i publishes to PREFIX/i */
    const char *filter; /* subscribers' filter; default PREFIX/+ */
    int pubs, subs;
    int qos_pub, qos_sub;
    uint64_t count;  /* messages published in total */
    uint64_t window; /* QoS 1: PUBACKs outstanding per publisher; QoS 0: messages a subscriber
                        may lag behind the publishers (0 = only socket back-pressure) */
    uint64_t rate;   /* messages per second over all publishers; 0 = as fast as possible */
    size_t size;
    int broker_pid;
    int timeout_s;
    int drain_ms; /* end when no subscriber progressed for this long after the last publish */
    int pause_ms; /* subscribers read nothing for this long after the start (a slow consumer) */
    /* idle */
    int clients, procs, settle_ms;
    const char *id_prefix;
} opts;

/* TLS for every client (--cafile, --cert, --key); NULL = plain TCP. */
static const char *tls_cafile, *tls_certfile, *tls_keyfile;

/* Broker resident set size in KiB (VmRSS from /proc/PID/status); -1 if unknown. */
static long broker_rss_kib(int pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "ferry-mqtt-bench: out of memory\n");
        exit(1);
    }
    return p;
}

/* Latency histogram in ns: exact below 1024 ns, then LAT_SUB buckets per power of two. */
static size_t lat_bucket(uint64_t ns)
{
    int e;
    if (ns < 1024) {
        return (size_t)ns;
    }
    e = 63 - __builtin_clzll(ns);
    if (e > LAT_MAXEXP) {
        return LAT_BUCKETS - 1;
    }
    return 1024 + (size_t)(e - 10) * LAT_SUB + (size_t)((ns >> (e - 9)) & (LAT_SUB - 1));
}

static uint64_t lat_value(size_t b)
{
    size_t e, sub;
    if (b < 1024) {
        return b;
    }
    e = 10 + (b - 1024) / LAT_SUB;
    sub = (b - 1024) % LAT_SUB;
    return ((uint64_t)1 << e) + ((uint64_t)sub << (e - 9));
}

/* The latency in µs below which fraction q of the n samples in hist lie. */
static double lat_quantile(const uint64_t *hist, uint64_t n, double q)
{
    uint64_t want = (uint64_t)((double)n * q), seen = 0;
    if (!n) {
        return 0;
    }
    if (want >= n) {
        want = n - 1;
    }
    for (size_t b = 0; b < LAT_BUCKETS; b++) {
        seen += hist[b];
        if (seen > want) {
            return (double)lat_value(b) / 1000.0;
        }
    }
    return 0;
}

typedef struct bench bench;

typedef struct bclient {
    struct mosquitto *m;
    bench *b;
    int idx;
    bool is_pub;
    bool connected, subscribed, dead;
    /* publisher */
    char topic[160];
    uint64_t n, sent, acked;
    uint64_t *mid_seq; /* sequence number by packet id (QoS 1) */
    uint8_t *acked_bits;
    /* subscriber */
    uint64_t recv, dups, bad, written_off;
    uint8_t **seen; /* per publisher: bitmap of sequence numbers received */
} bclient;

struct bench {
    const opts *o;
    bclient *cl;
    int ncl;
    uint64_t *hist;
    uint64_t nlat;
    uint64_t last_recv_ns, first_recv_ns;
    uint64_t total_recv;
    bool failed;
    int granted_bad;
};

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
    bclient *c = arg;
    if (rc != 0) {
        fprintf(stderr, "ferry-mqtt-bench: CONNACK refused: %s\n", mosquitto_connack_string(rc));
        c->b->failed = true;
        return;
    }
    c->connected = true;
    if (!c->is_pub) {
        const char *f = c->b->o->filter;
        if (mosquitto_subscribe(m, NULL, f, c->b->o->qos_sub) != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "ferry-mqtt-bench: subscribe failed\n");
            c->b->failed = true;
        }
    }
}

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
    bclient *c = arg;
    if (n < 1 || granted[0] > 2) {
        c->b->granted_bad++;
        c->b->failed = true;
        fprintf(stderr, "ferry-mqtt-bench: subscription refused\n");
    }
    c->subscribed = true;
}

static void on_disconnect(struct mosquitto *m, void *arg, int rc)
{
    bclient *c = arg;
    c->dead = true;
    if (rc != 0) {
        fprintf(stderr, "ferry-mqtt-bench: %s %d lost its connection: %s\n",
                c->is_pub ? "publisher" : "subscriber", c->idx, mosquitto_strerror(rc));
        c->b->failed = true;
    }
}

static void on_publish(struct mosquitto *m, void *arg, int mid)
{
    bclient *c = arg;
    uint64_t seq;
    /* libmosquitto also calls this for QoS 0 once the packet is written: count PUBACKs only. */
    if (c->b->o->qos_pub == 0) {
        return;
    }
    seq = c->mid_seq[(uint16_t)mid];
    if (seq < c->n && !(c->acked_bits[seq / 8] & (1u << (seq % 8)))) {
        c->acked_bits[seq / 8] |= (uint8_t)(1u << (seq % 8));
        c->acked++;
    }
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
    bclient *c = arg;
    bench *b = c->b;
    uint32_t magic, pub;
    uint64_t seq, sent_ns, t = bench_now_ns();
    if (msg->payloadlen < HDR_SIZE) {
        c->bad++;
        return;
    }
    memcpy(&magic, msg->payload, 4);
    memcpy(&pub, (const char *)msg->payload + 4, 4);
    memcpy(&seq, (const char *)msg->payload + 8, 8);
    memcpy(&sent_ns, (const char *)msg->payload + 16, 8);
    if (magic != BENCH_MAGIC || pub >= (uint32_t)b->o->pubs || seq >= b->cl[pub].n) {
        c->bad++;
        return;
    }
    if (c->seen[pub][seq / 8] & (1u << (seq % 8))) {
        c->dups++;
        return;
    }
    c->seen[pub][seq / 8] |= (uint8_t)(1u << (seq % 8));
    c->recv++;
    b->total_recv++;
    if (!b->first_recv_ns) {
        b->first_recv_ns = t;
    }
    b->last_recv_ns = t;
    b->hist[lat_bucket(t > sent_ns ? t - sent_ns : 0)]++;
    b->nlat++;
}

static struct mosquitto *client_new(const char *id, void *arg)
{
    struct mosquitto *m = mosquitto_new(id, true, arg);
    if (!m) {
        fprintf(stderr, "ferry-mqtt-bench: mosquitto_new: %s\n", strerror(errno));
        exit(1);
    }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    /* The window is ours: let libmosquitto put every QoS 1 publish on the wire at once. */
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, 65535);
    if (tls_cafile) {
        int rc = mosquitto_tls_set(m, tls_cafile, NULL, tls_certfile, tls_keyfile, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "ferry-mqtt-bench: mosquitto_tls_set: %s\n", mosquitto_strerror(rc));
            exit(1);
        }
    }
    return m;
}

/* Reads what the socket has (bounded), so one poll wake-up serves many packets. Returns false
 * when the connection is gone. */
static bool client_read(struct mosquitto *m)
{
    for (int i = 0; i < 512; i++) {
        int rc;
        errno = 0;
        rc = mosquitto_loop_read(m, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            return false;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* TLS: decrypted bytes OpenSSL holds are not seen by poll(); read them now. */
            SSL *ssl = tls_cafile ? mosquitto_ssl_get(m) : NULL;
            if (!ssl || SSL_pending(ssl) == 0) {
                break;
            }
        }
    }
    return true;
}

/* Services the sockets of n clients for at most timeout_ns (0 = do not wait). Returns false when
 * a connection is gone. */
static bool service(struct mosquitto **ms, struct pollfd *pfd, int n, uint64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
    bool ok = true;
    int k = 0;
    for (int i = 0; i < n; i++) {
        pfd[i].fd = mosquitto_socket(ms[i]);
        pfd[i].events = (short)(POLLIN | (mosquitto_want_write(ms[i]) ? POLLOUT : 0));
        pfd[i].revents = 0;
    }
    k = ppoll(pfd, (nfds_t)n, &ts, NULL);
    if (k < 0 && errno != EINTR) {
        perror("ferry-mqtt-bench: poll");
        exit(1);
    }
    for (int i = 0; i < n && k > 0; i++) {
        if (!pfd[i].revents) {
            continue;
        }
        k--;
        if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
            ok = client_read(ms[i]) && ok;
        }
        if ((pfd[i].revents & POLLOUT) && mosquitto_socket(ms[i]) >= 0 &&
            mosquitto_loop_write(ms[i], 1) != MOSQ_ERR_SUCCESS) {
            ok = false;
        }
    }
    return ok;
}

static void connect_or_die(struct mosquitto *m, const opts *o)
{
    int rc = mosquitto_connect(m, o->host, o->port, 600);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "ferry-mqtt-bench: cannot connect to %s:%d: %s\n", o->host, o->port,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        exit(3);
    }
}

/* Smallest progress of any subscriber (messages received or written off as lost). */
static uint64_t slowest_sub(const bench *b)
{
    uint64_t min = UINT64_MAX;
    for (int i = b->o->pubs; i < b->ncl; i++) {
        uint64_t v = b->cl[i].recv + b->cl[i].written_off;
        min = v < min ? v : min;
    }
    return min;
}

_Noreturn static void usage(void);

static int run_pubsub(const opts *o)
{
    bench b = {.o = o};
    struct mosquitto **ms;
    struct pollfd *pfd;
    char id[96], *payload;
    uint64_t t_start, t_end, t_pub_done = 0, t_last_progress, total_sent = 0, last_total_recv = 0;
    uint64_t gap = 0, deadline, stalls = 0, expected = 0, lost = 0, dups = 0, bad = 0, acked = 0;
    uint64_t unacked = 0, last_misc;
    double cpu0, cpu1, gen0;
    bench_cpu_ticks ticks0, ticks1;
    bool timed_out = false, paused;
    int rc = 0;

    b.ncl = o->pubs + o->subs;
    b.cl = xcalloc((size_t)b.ncl, sizeof(*b.cl));
    b.hist = xcalloc(LAT_BUCKETS, sizeof(*b.hist));
    ms = xcalloc((size_t)b.ncl, sizeof(*ms));
    pfd = xcalloc((size_t)b.ncl, sizeof(*pfd));
    payload = xcalloc(1, o->size);
    for (int i = 0; i < b.ncl; i++) {
        bclient *c = &b.cl[i];
        c->b = &b;
        c->is_pub = i < o->pubs;
        c->idx = c->is_pub ? i : i - o->pubs;
        snprintf(id, sizeof(id), "fmb-%d-%s-%d", (int)getpid(), c->is_pub ? "p" : "s", c->idx);
        if (c->is_pub) {
            c->n = o->count / (uint64_t)o->pubs + ((uint64_t)i < o->count % (uint64_t)o->pubs);
            snprintf(c->topic, sizeof(c->topic), "%s/%d", o->prefix, i);
            c->mid_seq = xcalloc(65536, sizeof(*c->mid_seq));
            c->acked_bits = xcalloc(c->n / 8 + 1, 1);
        } else {
            c->seen = xcalloc((size_t)o->pubs, sizeof(*c->seen));
        }
        c->m = ms[i] = client_new(id, c);
        mosquitto_connect_callback_set(c->m, on_connect);
        mosquitto_subscribe_callback_set(c->m, on_subscribe);
        mosquitto_disconnect_callback_set(c->m, on_disconnect);
        mosquitto_publish_callback_set(c->m, on_publish);
        mosquitto_message_callback_set(c->m, on_message);
    }
    for (int i = o->pubs; i < b.ncl; i++) {
        for (int p = 0; p < o->pubs; p++) {
            b.cl[i].seen[p] = xcalloc(b.cl[p].n / 8 + 1, 1);
        }
    }

    /* Subscribers first, so nothing published is missed. */
    deadline = bench_now_ns() + 30 * 1000000000ull;
    for (int i = b.ncl - 1; i >= 0; i--) {
        connect_or_die(ms[i], o);
    }
    for (;;) {
        int ready = 0;
        for (int i = 0; i < b.ncl; i++) {
            ready += b.cl[i].is_pub ? b.cl[i].connected : b.cl[i].subscribed;
        }
        if (ready == b.ncl) {
            break;
        }
        if (b.failed || bench_now_ns() > deadline) {
            fprintf(stderr, "ferry-mqtt-bench: only %d of %d clients ready\n", ready, b.ncl);
            return 3;
        }
        service(ms, pfd, b.ncl, 10000000);
    }

    cpu0 = bench_broker_cpu_s(o->broker_pid);
    ticks0 = bench_cpu_ticks_now();
    gen0 = self_cpu_s();
    t_start = bench_now_ns();
    t_last_progress = last_misc = t_start;
    deadline = t_start + (uint64_t)o->timeout_s * 1000000000ull;
    if (o->rate) {
        gap = 1000000000ull * (uint64_t)o->pubs / o->rate;
    }
    for (;;) {
        uint64_t t = bench_now_ns(), wait_ns = 10000000, slow = 0;
        bool all_sent = true;
        if (o->qos_pub == 0 && o->window) {
            slow = slowest_sub(&b);
        }
        for (int i = 0; i < o->pubs; i++) {
            bclient *c = &b.cl[i];
            /* Bounded so that reading is not starved by a fast publisher. */
            for (int k = 0; k < 64 && c->sent < c->n; k++) {
                uint32_t magic = BENCH_MAGIC, pub = (uint32_t)i;
                uint64_t seq = c->sent, ts;
                int mid = 0;
                if (mosquitto_want_write(c->m)) {
                    break; /* the socket is full: the broker is not reading */
                }
                if (o->qos_pub > 0 && o->window && c->sent - c->acked >= o->window) {
                    break;
                }
                if (o->qos_pub == 0 && o->window && total_sent - slow >= o->window) {
                    if (t - b.last_recv_ns > 500000000ull && t - t_last_progress > 500000000ull) {
                        /* Nothing arrived for 0.5 s with the window full: the broker dropped
                         * what is outstanding; stop waiting for it (counted as lost below). */
                        for (int s = o->pubs; s < b.ncl; s++) {
                            b.cl[s].written_off = total_sent - b.cl[s].recv;
                        }
                        stalls++;
                        t_last_progress = t;
                    }
                    break;
                }
                if (gap) {
                    /* Paced in 1 ms ticks: the messages due within a tick go out together. */
                    uint64_t due = t_start + (seq * gap) / 1000000u * 1000000u;
                    if (t < due) {
                        wait_ns = due - t < wait_ns ? due - t : wait_ns;
                        break;
                    }
                }
                ts = bench_now_ns();
                memcpy(payload, &magic, 4);
                memcpy(payload + 4, &pub, 4);
                memcpy(payload + 8, &seq, 8);
                memcpy(payload + 16, &ts, 8);
                rc = mosquitto_publish(c->m, &mid, c->topic, (int)o->size, payload, o->qos_pub,
                                       false);
                if (rc != MOSQ_ERR_SUCCESS) {
                    fprintf(stderr, "ferry-mqtt-bench: publish: %s\n", mosquitto_strerror(rc));
                    b.failed = true;
                    break;
                }
                c->mid_seq[(uint16_t)mid] = seq;
                c->sent++;
                total_sent++;
            }
            if (c->sent < c->n || (o->qos_pub > 0 && c->acked < c->n)) {
                all_sent = false;
            }
            if (c->sent < c->n && !gap) {
                wait_ns = 0; /* more to send: only look at the sockets */
            }
        }
        if (b.failed) {
            rc = 1;
            break;
        }
        /* While paused only the publishers (the first clients) are polled. */
        paused = bench_now_ns() - t_start < (uint64_t)o->pause_ms * 1000000u;
        if (!service(ms, pfd, paused ? o->pubs : b.ncl, wait_ns)) {
            rc = 1;
            break;
        }
        t = bench_now_ns();
        if (b.total_recv != last_total_recv) {
            last_total_recv = b.total_recv;
            t_last_progress = t;
        }
        if (t - last_misc > 1000000000ull) {
            for (int i = 0; i < b.ncl; i++) {
                mosquitto_loop_misc(ms[i]);
            }
            last_misc = t;
        }
        if (all_sent && !t_pub_done) {
            t_pub_done = t;
            t_last_progress = t > t_last_progress ? t : t_last_progress;
        }
        if (all_sent && !paused) {
            bool done = true;
            for (int i = o->pubs; i < b.ncl; i++) {
                done = done && b.cl[i].recv >= total_sent;
            }
            if (done || t - t_last_progress > (uint64_t)o->drain_ms * 1000000u) {
                break;
            }
        }
        if (t > deadline) {
            fprintf(stderr, "ferry-mqtt-bench: timed out after %d s\n", o->timeout_s);
            timed_out = true;
            break;
        }
    }
    t_end = bench_now_ns();
    cpu1 = bench_broker_cpu_s(o->broker_pid);
    ticks1 = bench_cpu_ticks_now();

    /* Loss: for QoS 1 every acknowledged message a subscriber never saw; for QoS 0 every message
     * sent that it never saw. */
    for (int p = 0; p < o->pubs; p++) {
        acked += b.cl[p].acked;
        unacked += b.cl[p].sent - b.cl[p].acked;
    }
    for (int i = o->pubs; i < b.ncl; i++) {
        bclient *c = &b.cl[i];
        dups += c->dups;
        bad += c->bad;
        for (int p = 0; p < o->pubs; p++) {
            const bclient *pc = &b.cl[p];
            expected += o->qos_pub ? pc->acked : pc->sent;
            for (uint64_t s = 0; s < pc->sent; s++) {
                bool want = o->qos_pub ? (pc->acked_bits[s / 8] >> (s % 8)) & 1 : true;
                if (want && !((c->seen[p][s / 8] >> (s % 8)) & 1)) {
                    lost++;
                }
            }
        }
    }
    {
        uint64_t t_last = b.last_recv_ns ? b.last_recv_ns : t_end;
        double secs = (double)(t_last - t_start) / 1e9;
        double pub_secs = (double)((t_pub_done ? t_pub_done : t_end) - t_start) / 1e9;
        double cpu = cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1;
        printf("{\"mode\":\"pubsub\",\"pubs\":%d,\"subs\":%d,\"qos_pub\":%d,\"qos_sub\":%d,"
               "\"size\":%zu,\"rate\":%" PRIu64 ",\"window\":%" PRIu64 ",\"sent\":%" PRIu64
               ",\"acked\":%" PRIu64 ",\"unacked\":%" PRIu64 ",\"delivered\":%" PRIu64
               ",\"expected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"dups\":%" PRIu64
               ",\"bad\":%" PRIu64 ",\"stalls\":%" PRIu64 ",\"timed_out\":%s,\"seconds\":%.3f,"
               "\"pub_msgs_per_s\":%.0f,\"msgs_per_s\":%.0f,\"broker_cpu_s\":%.2f,"
               "\"broker_cpu_s_per_million\":%.2f,\"gen_cpu_s\":%.2f,\"steal_pct\":%.1f,"
               "\"p50\":%.1f,"
               "\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}\n",
               o->pubs, o->subs, o->qos_pub, o->qos_sub, o->size, o->rate, o->window, total_sent,
               acked, unacked, b.total_recv, expected, lost, dups, bad, stalls,
               timed_out ? "true" : "false", secs, pub_secs > 0 ? (double)total_sent / pub_secs : 0,
               secs > 0 ? (double)b.total_recv / secs : 0, cpu,
               cpu >= 0 && b.total_recv ? cpu * 1e6 / (double)b.total_recv : -1,
               self_cpu_s() - gen0, bench_steal_pct(ticks0, ticks1),
               lat_quantile(b.hist, b.nlat, 0.5), lat_quantile(b.hist, b.nlat, 0.99),
               lat_quantile(b.hist, b.nlat, 0.999), lat_quantile(b.hist, b.nlat, 1.0));
    }
    for (int i = 0; i < b.ncl; i++) {
        if (!b.cl[i].dead) {
            mosquitto_disconnect(ms[i]);
        }
    }
    /* Let the DISCONNECTs reach the wire before the sockets close. */
    for (int k = 0; k < 10; k++) {
        bool pending = false;
        for (int i = 0; i < b.ncl; i++) {
            pending = pending || (mosquitto_socket(ms[i]) >= 0 && mosquitto_want_write(ms[i]));
        }
        if (!pending) {
            break;
        }
        service(ms, pfd, b.ncl, 10000000);
    }
    for (int i = 0; i < b.ncl; i++) {
        mosquitto_destroy(ms[i]);
    }
    return rc ? rc : (timed_out ? 4 : 0);
}

/* idle: one client, subscribed to dev/<i>/cmd (QoS 1, clean session). */
typedef struct idle_client {
    int i;
    bool subscribed, failed;
} idle_client;

static void idle_on_connect(struct mosquitto *m, void *arg, int rc)
{
    idle_client *c = arg;
    char topic[64];
    if (rc != 0) {
        fprintf(stderr, "ferry-mqtt-bench: idle: CONNACK refused: %s\n",
                mosquitto_connack_string(rc));
        c->failed = true;
        return;
    }
    snprintf(topic, sizeof(topic), "dev/%d/cmd", c->i);
    if (mosquitto_subscribe(m, NULL, topic, 1) != MOSQ_ERR_SUCCESS) {
        c->failed = true;
    }
}

static void idle_on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
    idle_client *c = arg;
    if (n < 1 || granted[0] > 2) {
        fprintf(stderr, "ferry-mqtt-bench: idle: subscription refused\n");
        c->failed = true;
    }
    c->subscribed = true;
}

static void idle_on_disconnect(struct mosquitto *m, void *arg, int rc)
{
    idle_client *c = arg;
    if (rc != 0) {
        c->failed = true;
    }
}

/* A child of `idle`: clients [first, first + n) connect and subscribe, then hold (answering
 * keep-alives) until go_fd reaches end of file. Writes 'R' (ready) or 'F' (failed) on ready_fd. */
static int idle_child(const opts *o, int first, int n, int ready_fd, int go_fd)
{
    struct mosquitto **ms = xcalloc((size_t)n, sizeof(*ms));
    struct pollfd *pfd = xcalloc((size_t)n, sizeof(*pfd));
    idle_client *cl = xcalloc((size_t)n, sizeof(*cl));
    uint64_t deadline = bench_now_ns() + (uint64_t)o->timeout_s * 1000000000ull,
             last_misc = bench_now_ns();
    int next = 0, subscribed = 0, lo = 0, rc = 1;
    char id[96], status = 'F';

    while (subscribed < n) {
        /* At most 64 clients between TCP connect and SUBACK at a time, so the broker's accept
         * queue never overflows (that would cost a 1 s SYN retransmission). */
        while (next < n && next - subscribed < 64) {
            cl[next].i = first + next;
            snprintf(id, sizeof(id), "%s-%d", o->id_prefix, first + next);
            ms[next] = client_new(id, &cl[next]);
            mosquitto_connect_callback_set(ms[next], idle_on_connect);
            mosquitto_subscribe_callback_set(ms[next], idle_on_subscribe);
            mosquitto_disconnect_callback_set(ms[next], idle_on_disconnect);
            connect_or_die(ms[next], o);
            next++;
        }
        /* Only clients from the first one still in its handshake on need polling. */
        while (lo < next && cl[lo].subscribed) {
            lo++;
        }
        service(ms + lo, pfd, next - lo, 20000000);
        subscribed = 0;
        for (int i = 0; i < next; i++) {
            if (cl[i].failed) {
                goto out;
            }
            subscribed += cl[i].subscribed;
        }
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "ferry-mqtt-bench: idle: %d of %d clients subscribed\n", subscribed, n);
            goto out;
        }
    }
    status = 'R';
    if (write(ready_fd, &status, 1) != 1) {
        goto out;
    }
    status = 0;
    /* Hold: answer keep-alives until the parent closes go_fd. */
    for (;;) {
        struct pollfd g = {.fd = go_fd, .events = POLLIN};
        char x;
        if (!service(ms, pfd, n, 0)) {
            fprintf(stderr, "ferry-mqtt-bench: idle: a client lost its connection\n");
            goto out;
        }
        if (poll(&g, 1, 100) > 0 && read(go_fd, &x, 1) <= 0) {
            break;
        }
        if (bench_now_ns() - last_misc > 1000000000ull) {
            for (int i = 0; i < n; i++) {
                mosquitto_loop_misc(ms[i]);
            }
            last_misc = bench_now_ns();
        }
    }
    for (int i = 0; i < n; i++) {
        mosquitto_disconnect(ms[i]);
    }
    rc = 0;
out:
    if (status && write(ready_fd, &status, 1) != 1) {
        rc = 1;
    }
    for (int i = 0; i < next; i++) {
        mosquitto_destroy(ms[i]);
    }
    return rc;
}

/* Reads one status byte from each of the n fds, waiting until deadline; returns how many 'R'. */
static int idle_wait_ready(const int *fds, int n, uint64_t deadline)
{
    int ready = 0, answered = 0;
    bool *got = xcalloc((size_t)n, sizeof(*got));
    while (answered < n && bench_now_ns() < deadline) {
        for (int i = 0; i < n; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            char x;
            if (got[i] || poll(&p, 1, 10) <= 0) {
                continue;
            }
            got[i] = true;
            answered++;
            ready += read(fds[i], &x, 1) == 1 && x == 'R';
        }
    }
    free(got);
    return ready;
}

/* idle: o->clients clients over o->procs child processes; reports the broker's RSS growth. */
static int run_idle(const opts *o)
{
    pid_t *pids = xcalloc((size_t)o->procs, sizeof(*pids));
    int *ready_fds = xcalloc((size_t)o->procs, sizeof(*ready_fds));
    int *go_fds = xcalloc((size_t)o->procs, sizeof(*go_fds));
    long rss0 = broker_rss_kib(o->broker_pid), rss1 = -1, rss2 = -1;
    uint64_t t0 = bench_now_ns(), t_ready = 0, deadline;
    int ready, rc = 0;

    if (rss0 < 0) {
        fprintf(stderr, "ferry-mqtt-bench: idle: no VmRSS for pid %d\n", o->broker_pid);
        return 2;
    }
    fflush(stdout);
    for (int k = 0; k < o->procs; k++) {
        int rp[2], gp[2];
        int first = (int)((long)o->clients * k / o->procs);
        int last = (int)((long)o->clients * (k + 1) / o->procs);
        if (pipe(rp) != 0 || pipe(gp) != 0) {
            perror("ferry-mqtt-bench: pipe");
            exit(1);
        }
        pids[k] = fork();
        if (pids[k] < 0) {
            perror("ferry-mqtt-bench: fork");
            exit(1);
        }
        if (pids[k] == 0) {
            close(rp[0]);
            close(gp[1]);
            for (int j = 0; j < k; j++) {
                close(ready_fds[j]);
                close(go_fds[j]);
            }
            _exit(idle_child(o, first, last - first, rp[1], gp[0]));
        }
        close(rp[1]);
        close(gp[0]);
        ready_fds[k] = rp[0];
        go_fds[k] = gp[1];
    }
    deadline = t0 + (uint64_t)o->timeout_s * 1000000000ull;
    ready = idle_wait_ready(ready_fds, o->procs, deadline);
    t_ready = bench_now_ns();
    if (ready == o->procs) {
        /* Let the broker finish what the last SUBSCRIBEs started (store writes, allocations). */
        usleep((useconds_t)o->settle_ms * 1000u);
        rss1 = broker_rss_kib(o->broker_pid);
    } else {
        fprintf(stderr, "ferry-mqtt-bench: idle: %d of %d processes ready\n", ready, o->procs);
        rc = 1;
    }
    for (int k = 0; k < o->procs; k++) {
        close(go_fds[k]);
    }
    /* Children exit once go_fd closes; those that do not within 10 s are killed. */
    deadline = bench_now_ns() + 10 * 1000000000ull;
    for (int k = 0; k < o->procs; k++) {
        int st = 0;
        while (waitpid(pids[k], &st, WNOHANG) == 0) {
            if (bench_now_ns() > deadline) {
                kill(pids[k], SIGKILL);
                waitpid(pids[k], &st, 0);
                rc = 1;
                break;
            }
            usleep(10000);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            rc = 1;
        }
        close(ready_fds[k]);
    }
    usleep((useconds_t)o->settle_ms * 1000u);
    rss2 = broker_rss_kib(o->broker_pid);
    printf("{\"mode\":\"idle\",\"clients\":%d,\"procs\":%d,\"ready\":%s,\"connect_s\":%.2f,"
           "\"rss_before_kib\":%ld,\"rss_subscribed_kib\":%ld,\"rss_after_disconnect_kib\":%ld,"
           "\"bytes_per_client\":%.0f}\n",
           o->clients, o->procs, ready == o->procs ? "true" : "false", (double)(t_ready - t0) / 1e9,
           rss0, rss1, rss2, rss1 >= 0 ? (double)(rss1 - rss0) * 1024.0 / o->clients : -1);
    free(pids);
    free(ready_fds);
    free(go_fds);
    return rc;
}

/* connect: one connection at a time (TCP, TLS handshake with --cafile, CONNECT, CONNACK,
 * DISCONNECT), n of them; returns how many succeeded. */
static void connect_on_connect(struct mosquitto *m, void *arg, int rc)
{
    *(int *)arg = rc == 0 ? 1 : -1;
}

static int connect_child(const opts *o, int n, int child)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char id[64];
        int state = 0;
        struct mosquitto *m;
        uint64_t deadline = bench_now_ns() + 10000000000u;
        snprintf(id, sizeof(id), "%s-%d-%d", o->id_prefix, child, i);
        m = client_new(id, &state);
        mosquitto_connect_callback_set(m, connect_on_connect);
        if (mosquitto_connect(m, o->host, o->port, 60) == MOSQ_ERR_SUCCESS) {
            while (state == 0 && bench_now_ns() < deadline &&
                   mosquitto_loop(m, 100, 1) == MOSQ_ERR_SUCCESS) {
            }
            if (state == 1) {
                ok++;
                mosquitto_disconnect(m);
                mosquitto_loop(m, 10, 1);
            }
        }
        mosquitto_destroy(m);
    }
    return ok;
}

static int run_connect(const opts *o)
{
    int per = o->clients / o->procs, total = 0;
    int fds[64][2];
    pid_t pids[64];
    double cpu0 = bench_broker_cpu_s(o->broker_pid), cpu1;
    uint64_t t0 = bench_now_ns(), t1;
    if (o->procs > 64) {
        usage();
    }
    for (int k = 0; k < o->procs; k++) {
        if (pipe(fds[k]) != 0) {
            perror("ferry-mqtt-bench: pipe");
            return 1;
        }
        pids[k] = fork();
        if (pids[k] == 0) {
            int ok = connect_child(o, per, k);
            if (write(fds[k][1], &ok, sizeof(ok)) != (ssize_t)sizeof(ok)) {
                _exit(1);
            }
            _exit(0);
        }
        close(fds[k][1]);
    }
    for (int k = 0; k < o->procs; k++) {
        int ok = 0;
        if (read(fds[k][0], &ok, sizeof(ok)) == (ssize_t)sizeof(ok)) {
            total += ok;
        }
        close(fds[k][0]);
        waitpid(pids[k], NULL, 0);
    }
    t1 = bench_now_ns();
    cpu1 = bench_broker_cpu_s(o->broker_pid);
    printf("{\"mode\":\"connect\",\"tls\":%s,\"procs\":%d,\"attempted\":%d,"
           "\"connected\":%d,\"seconds\":%.3f,\"connects_per_s\":%.0f,\"broker_cpu_s\":%.2f,"
           "\"broker_cpu_ms_per_connect\":%.3f}\n",
           tls_cafile ? "true" : "false", o->procs, per * o->procs, total, (double)(t1 - t0) / 1e9,
           total ? total / ((double)(t1 - t0) / 1e9) : 0, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1,
           cpu0 >= 0 && cpu1 >= 0 && total ? (cpu1 - cpu0) * 1e3 / total : -1);
    return total == per * o->procs ? 0 : 3;
}

_Noreturn static void usage(void)
{
    fprintf(stderr,
            "usage: ferry-mqtt-bench [options] pubsub|idle|connect\n"
            "  --broker HOST:PORT     MQTT broker (127.0.0.1:1883)\n"
            "  --cafile F             MQTT over TLS, the broker verified against CAs of F\n"
            "  --cert F --key F       client certificate and key (TLS)\n"
            "  --broker-pid PID       report the broker's CPU (pubsub) or RSS (idle)\n"
            "  --timeout S            give up after S seconds (120)\n"
            "pubsub: publishers -> subscribers; one JSON line (latencies in us)\n"
            "  --pubs N --subs N      clients of each kind (1, 1)\n"
            "  --qos-pub Q --qos-sub Q QoS of the publishes and the subscriptions (0, 0)\n"
            "  --count N              messages published in total (100000)\n"
            "  --window N             QoS 1: PUBACKs outstanding per publisher; QoS 0: messages\n"
            "                         the slowest subscriber may lag; 0 = no window (1000)\n"
            "  --rate R               messages per second in all, sent in 1 ms ticks (0 = max)\n"
            "  --size B               payload bytes, at least 24 (100)\n"
            "  --prefix P             publisher i publishes to P/i (bench)\n"
            "  --filter F             subscribers' filter (P/+)\n"
            "  --drain-ms MS          end after MS without progress once all is sent (2000)\n"
            "  --pause-ms MS          subscribers read nothing for the first MS (0)\n"
            "idle: clients subscribed to dev/<i>/cmd (QoS 1, clean session), holding\n"
            "  --clients N --procs K  clients, over K processes (10000, 4)\n"
            "  --id-prefix S          client ids S-<i> (idle)\n"
            "  --settle-ms MS         wait before reading RSS (1000)\n"
            "connect: --clients N connections opened and closed one at a time in each of --procs\n"
            "  K processes; one JSON line with connections per second\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"broker-pid", required_argument, NULL, 'P'},
        {"timeout", required_argument, NULL, 'T'},
        {"pubs", required_argument, NULL, 'p'},
        {"subs", required_argument, NULL, 's'},
        {"qos-pub", required_argument, NULL, 'q'},
        {"qos-sub", required_argument, NULL, 'Q'},
        {"count", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"size", required_argument, NULL, 'z'},
        {"prefix", required_argument, NULL, 'x'},
        {"filter", required_argument, NULL, 'f'},
        {"drain-ms", required_argument, NULL, 'd'},
        {"clients", required_argument, NULL, 'c'},
        {"procs", required_argument, NULL, 'k'},
        {"id-prefix", required_argument, NULL, 'i'},
        {"settle-ms", required_argument, NULL, 'S'},
        {"pause-ms", required_argument, NULL, 'D'},
        {"cafile", required_argument, NULL, 'A'},
        {"cert", required_argument, NULL, 'C'},
        {"key", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.host = "127.0.0.1",
              .port = 1883,
              .prefix = "bench",
              .pubs = 1,
              .subs = 1,
              .count = 100000,
              .window = 1000,
              .size = 100,
              .timeout_s = 120,
              .drain_ms = 2000,
              .clients = 10000,
              .procs = 4,
              .settle_ms = 1000,
              .id_prefix = "idle"};
    char filter[200], *colon;
    const char *mode;
    int c, rc;

    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            colon = strrchr(optarg, ':');
            if (!colon) {
                usage();
            }
            *colon = '\0';
            o.host = optarg;
            o.port = atoi(colon + 1);
            break;
        case 'P':
            o.broker_pid = atoi(optarg);
            break;
        case 'T':
            o.timeout_s = atoi(optarg);
            break;
        case 'p':
            o.pubs = atoi(optarg);
            break;
        case 's':
            o.subs = atoi(optarg);
            break;
        case 'q':
            o.qos_pub = atoi(optarg);
            break;
        case 'Q':
            o.qos_sub = atoi(optarg);
            break;
        case 'n':
            o.count = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            o.window = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o.rate = strtoull(optarg, NULL, 10);
            break;
        case 'z':
            o.size = strtoull(optarg, NULL, 10);
            break;
        case 'x':
            o.prefix = optarg;
            break;
        case 'f':
            o.filter = optarg;
            break;
        case 'd':
            o.drain_ms = atoi(optarg);
            break;
        case 'c':
            o.clients = atoi(optarg);
            break;
        case 'k':
            o.procs = atoi(optarg);
            break;
        case 'i':
            o.id_prefix = optarg;
            break;
        case 'S':
            o.settle_ms = atoi(optarg);
            break;
        case 'D':
            o.pause_ms = atoi(optarg);
            break;
        case 'A':
            tls_cafile = optarg;
            break;
        case 'C':
            tls_certfile = optarg;
            break;
        case 'K':
            tls_keyfile = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind != argc - 1 || o.pubs < 1 || o.subs < 1 || o.size < HDR_SIZE || o.qos_pub < 0 ||
        o.qos_pub > 1 || o.qos_sub < 0 || o.qos_sub > 1 || o.procs < 1 || o.clients < o.procs ||
        o.timeout_s < 1) {
        usage();
    }
    mode = argv[optind];
    if (!o.filter) {
        snprintf(filter, sizeof(filter), "%s/+", o.prefix);
        o.filter = filter;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    mosquitto_lib_init();
    if (strcmp(mode, "pubsub") == 0) {
        rc = run_pubsub(&o);
    } else if (strcmp(mode, "idle") == 0) {
        if (o.broker_pid <= 0) {
            usage();
        }
        rc = run_idle(&o);
    } else if (strcmp(mode, "connect") == 0) {
        rc = run_connect(&o);
    } else {
        usage();
    }
    mosquitto_lib_cleanup();
    return rc;
}
