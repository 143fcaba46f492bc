/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-amqp-bench: an AMQP 1.0 load generator on qpid-proton's proactor, for any AMQP 1.0
 * broker. `produce` sends unsettled transfers (a window of outstanding ones) and counts them
 * settled `accepted`; `e2e` adds a receiver (a second process, or with --one-process a second
 * connection on the sender's proactor) with link credit and reports throughput and
 * send-to-receive latency percentiles, at full speed or at a fixed rate. With --broker-pid it
 * also reports the broker's CPU seconds per million messages; every run reports the machine's
 * steal. */
#include "tools/bench_util.h"

#include <proton/condition.h>
#include <proton/connection.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/event.h>
#include <proton/link.h>
#include <proton/message.h>
#include <proton/proactor.h>
#include <proton/sasl.h>
#include <proton/session.h>
#include <proton/terminus.h>
#include <proton/transport.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x46455252594245ULL /* "FERRYBE": marks a body whose first 8 bytes are a time */
#define STALL_MS 30000            /* no progress this long: the run failed */

typedef struct opts {
    const char *broker; /* host:port */
    const char *target; /* sender target address */
    const char *source; /* receiver source address */
    const char *user, *password;
    size_t size;
    uint64_t count;
    uint32_t inflight; /* unsettled transfers outstanding, at most */
    uint32_t credit;   /* receiver link credit window */
    uint64_t rate;     /* messages per second; 0 = as fast as possible */
    int broker_pid;
    bool json;
    bool one_process;        /* e2e: sender and receiver on one proactor in one thread */
    const char *latency_log; /* e2e: every latency, in arrival order, written here */
} opts;

typedef struct bench {
    const opts *o;
    pn_proactor_t *p;
    pn_connection_t *conn;
    pn_link_t *link;
    bool sender;
    int ready_fd;        /* receiver: written once the link is attached and has credit out */
    struct bench *start; /* receiver, one process: the sender it starts once attached */
    bench_mark mark;     /* sender: the broker's CPU and the machine's steal at its start */
    /* sender */
    char *enc; /* the encoded message; its body (the last o->size bytes) carries the time */
    size_t enc_len;
    uint64_t sent, accepted, rejected;
    uint64_t t0;
    /* receiver */
    char *rbuf;
    size_t rcap;
    uint64_t received, tr0, tr_last;
    uint64_t *lat;
    uint64_t *sent_at; /* --latency-log: each message's send time (CLOCK_MONOTONIC ns) */
    /* both */
    uint64_t last_progress;
    bool finished;
    int failed;
} bench;

/* Encodes one message with a data body of o->size bytes; the body is the end of the encoding
 * (no footer), so each send patches the time in place instead of encoding again. */
static void encode_message(bench *b)
{
    const opts *o = b->o;
    pn_message_t *m = pn_message();
    size_t blen = o->size < 16 ? 16 : o->size, cap = blen + 1024;
    char *body = calloc(1, blen);
    uint64_t magic = MAGIC;
    int rc;
    memcpy(body + 8, &magic, 8);
    pn_message_set_durable(m, true);
    pn_data_put_binary(pn_message_body(m), pn_bytes(blen, body));
    b->enc = malloc(cap);
    b->enc_len = cap;
    rc = pn_message_encode(m, b->enc, &b->enc_len);
    if (rc != 0 || b->enc_len < blen || memcmp(b->enc + b->enc_len - blen, body, blen) != 0) {
        fprintf(stderr, "ferry-amqp-bench: cannot encode the message\n");
        exit(1);
    }
    pn_message_free(m);
    free(body);
}

/* Message i is due at t0 + i / rate, rounded down to a 1 ms tick (as ferry-bench paces). */
static bool due(const bench *b, uint64_t now)
{
    uint64_t gap;
    if (!b->o->rate) {
        return true;
    }
    gap = 1000000000u / b->o->rate;
    return now >= b->t0 + (b->sent * gap) / 1000000u * 1000000u;
}

static void send_some(bench *b)
{
    const opts *o = b->o;
    size_t blen = o->size < 16 ? 16 : o->size;
    while (b->sent < o->count && pn_link_credit(b->link) > 0 &&
           b->sent - b->accepted - b->rejected < o->inflight) {
        uint64_t t = bench_now_ns(), tag = b->sent;
        pn_delivery_t *d;
        if (!due(b, t)) {
            break;
        }
        memcpy(b->enc + b->enc_len - blen, &t, 8);
        d = pn_delivery(b->link, pn_dtag((const char *)&tag, sizeof(tag)));
        (void)d;
        pn_link_send(b->link, b->enc, b->enc_len);
        pn_link_advance(b->link);
        b->sent++;
    }
}

static void on_sender_delivery(bench *b, pn_delivery_t *d)
{
    if (!pn_delivery_updated(d) || !pn_delivery_settled(d)) {
        return;
    }
    if (pn_delivery_remote_state(d) == PN_ACCEPTED) {
        b->accepted++;
    } else {
        if (!b->rejected) {
            pn_condition_t *c = pn_disposition_condition(pn_delivery_remote(d));
            fprintf(stderr, "ferry-amqp-bench: transfer not accepted (state %llu): %s %s\n",
                    (unsigned long long)pn_delivery_remote_state(d),
                    pn_condition_get_name(c) ? pn_condition_get_name(c) : "",
                    pn_condition_get_description(c) ? pn_condition_get_description(c) : "");
        }
        b->rejected++;
    }
    pn_delivery_settle(d);
    b->last_progress = bench_now_ns();
    if (b->accepted + b->rejected == b->o->count) {
        b->finished = true;
        pn_connection_close(b->conn);
        return;
    }
    send_some(b);
}

static void on_receiver_delivery(bench *b, pn_delivery_t *d)
{
    const opts *o = b->o;
    size_t blen = o->size < 16 ? 16 : o->size;
    size_t pending;
    ssize_t n;
    uint64_t now, sent, magic;
    if (!pn_delivery_readable(d) || pn_delivery_partial(d)) {
        return;
    }
    pending = pn_delivery_pending(d);
    if (pending > b->rcap) {
        b->rcap = pending * 2;
        b->rbuf = realloc(b->rbuf, b->rcap);
    }
    n = pn_link_recv(b->link, b->rbuf, pending);
    pn_link_advance(b->link);
    now = bench_now_ns();
    sent = 0;
    b->lat[b->received] = 0;
    if (n >= (ssize_t)blen) {
        /* the body is the end of the message when no footer follows; else decode it */
        const char *body = b->rbuf + n - blen;
        memcpy(&magic, body + 8, 8);
        if (magic != MAGIC) {
            pn_message_t *m = pn_message();
            body = NULL;
            if (pn_message_decode(m, b->rbuf, (size_t)n) == 0) {
                pn_data_t *bd = pn_message_body(m);
                pn_data_rewind(bd);
                if (pn_data_next(bd) && pn_data_type(bd) == PN_BINARY &&
                    pn_data_get_binary(bd).size >= 16) {
                    memcpy(&sent, pn_data_get_binary(bd).start, 8);
                    b->lat[b->received] = now > sent ? now - sent : 0;
                }
            }
            pn_message_free(m);
        } else {
            memcpy(&sent, body, 8);
            b->lat[b->received] = now > sent ? now - sent : 0;
        }
    }
    if (b->sent_at) {
        b->sent_at[b->received] = sent;
    }
    pn_delivery_update(d, PN_ACCEPTED);
    pn_delivery_settle(d);
    if (b->received == 0) {
        b->tr0 = now;
    }
    b->tr_last = now;
    b->last_progress = now;
    b->received++;
    if (b->received == o->count) {
        b->finished = true;
        pn_connection_close(b->conn);
        return;
    }
    if ((uint32_t)pn_link_credit(b->link) < o->credit / 2) {
        pn_link_flow(b->link, (int)o->credit - pn_link_credit(b->link));
    }
}

static void connect_side(bench *b, pn_proactor_t *p);

static void on_event(bench *b, pn_event_t *e)
{
    switch (pn_event_type(e)) {
    case PN_CONNECTION_INIT: {
        pn_session_t *s;
        char name[64];
        snprintf(name, sizeof(name), "ferry-amqp-bench-%d", (int)getpid());
        pn_connection_set_container(b->conn, name);
        pn_connection_open(b->conn);
        s = pn_session(b->conn);
        pn_session_set_incoming_capacity(s, 64u * 1024 * 1024);
        pn_session_open(s);
        if (b->sender) {
            b->link = pn_sender(s, "bench-sender");
            pn_terminus_set_address(pn_link_target(b->link), b->o->target);
            pn_link_set_snd_settle_mode(b->link, PN_SND_UNSETTLED);
        } else {
            b->link = pn_receiver(s, "bench-receiver");
            pn_terminus_set_address(pn_link_source(b->link), b->o->source);
            pn_link_set_rcv_settle_mode(b->link, PN_RCV_FIRST);
        }
        pn_link_open(b->link);
        if (!b->sender) {
            pn_link_flow(b->link, (int)b->o->credit);
        }
        break;
    }
    case PN_LINK_REMOTE_OPEN:
        if (pn_terminus_get_type(b->sender ? pn_link_remote_target(b->link)
                                           : pn_link_remote_source(b->link)) == PN_UNSPECIFIED) {
            break; /* refused: the detach follows */
        }
        if (!b->sender && b->ready_fd >= 0) {
            if (write(b->ready_fd, "r", 1) != 1) {
                exit(1);
            }
            close(b->ready_fd);
            b->ready_fd = -1;
        }
        if (!b->sender && b->start) {
            connect_side(b->start, b->p);
            b->start = NULL;
        }
        break;
    case PN_LINK_REMOTE_CLOSE:
    case PN_LINK_REMOTE_DETACH: {
        pn_condition_t *c = pn_link_remote_condition(pn_event_link(e));
        fprintf(stderr, "ferry-amqp-bench: link detached: %s %s\n",
                pn_condition_get_name(c) ? pn_condition_get_name(c) : "",
                pn_condition_get_description(c) ? pn_condition_get_description(c) : "");
        b->failed = 1;
        pn_connection_close(b->conn);
        break;
    }
    case PN_CONNECTION_WAKE:
        if (b->sender && b->link && b->t0) {
            send_some(b);
        }
        break;
    case PN_LINK_FLOW:
        if (b->sender) {
            if (b->t0 == 0) {
                b->t0 = bench_now_ns();
            }
            send_some(b);
        }
        break;
    case PN_DELIVERY:
        if (b->sender) {
            on_sender_delivery(b, pn_event_delivery(e));
        } else {
            on_receiver_delivery(b, pn_event_delivery(e));
        }
        break;
    case PN_TRANSPORT_CLOSED: {
        pn_condition_t *c = pn_transport_condition(pn_event_transport(e));
        if (!b->finished) {
            fprintf(stderr, "ferry-amqp-bench: connection lost: %s %s\n",
                    pn_condition_get_name(c) ? pn_condition_get_name(c) : "",
                    pn_condition_get_description(c) ? pn_condition_get_description(c) : "");
            b->failed = 1;
        }
        break;
    }
    case PN_CONNECTION_REMOTE_CLOSE:
        pn_connection_close(b->conn);
        break;
    default:
        break;
    }
}

static void connect_side(bench *b, pn_proactor_t *p)
{
    const opts *o = b->o;
    pn_transport_t *t = pn_transport();
    b->p = p;
    b->conn = pn_connection();
    if (o->user) {
        pn_connection_set_user(b->conn, o->user);
        pn_connection_set_password(b->conn, o->password ? o->password : "");
        pn_sasl_set_allow_insecure_mechs(pn_sasl(t), true);
    } else {
        pn_sasl_allowed_mechs(pn_sasl(t), "ANONYMOUS");
    }
    b->last_progress = bench_now_ns();
    if (b->sender) {
        b->mark = bench_mark_now(o->broker_pid);
    }
    pn_proactor_connect2(p, b->conn, t, o->broker);
}

/* Once a millisecond while pacing (else once a second): a side without progress for STALL_MS
 * failed; a paced sender sends the next tick's messages. */
static void on_timeout(bench *b)
{
    if (!b->conn || b->finished || b->failed) {
        return;
    }
    if (bench_now_ns() - b->last_progress > (uint64_t)STALL_MS * 1000000u) {
        fprintf(stderr,
                "ferry-amqp-bench: no progress for %d s (%s: %llu sent, %llu settled, "
                "%llu received)\n",
                STALL_MS / 1000, b->sender ? "sender" : "receiver", (unsigned long long)b->sent,
                (unsigned long long)(b->accepted + b->rejected), (unsigned long long)b->received);
        b->failed = 1;
        pn_connection_close(b->conn);
        return;
    }
    if (b->sender && b->o->rate && b->t0) {
        pn_connection_wake(b->conn); /* the next tick's messages, in the connection's batch */
    }
}

/* Runs the sides on one proactor until every connection is closed: the first is connected
 * now, the other (one process e2e: the sender) by the first once its link is attached. */
static int run(bench *sides, int n)
{
    pn_proactor_t *p = pn_proactor();
    int closed = 0, failed = 0;
    bool paced = false;
    for (int i = 0; i < n; i++) {
        paced = paced || (sides[i].sender && sides[i].o->rate);
    }
    connect_side(&sides[0], p);
    pn_proactor_set_timeout(p, paced ? 1 : 1000);
    while (closed < n) {
        pn_event_batch_t *batch = pn_proactor_wait(p);
        pn_event_t *e;
        while ((e = pn_event_batch_next(batch)) != NULL) {
            pn_connection_t *c = pn_event_connection(e);
            bench *b = &sides[0];
            for (int i = 1; i < n; i++) {
                b = c && c == sides[i].conn ? &sides[i] : b;
            }
            switch (pn_event_type(e)) {
            case PN_PROACTOR_INACTIVE:
                closed = n;
                break;
            case PN_PROACTOR_TIMEOUT:
                for (int i = 0; i < n; i++) {
                    on_timeout(&sides[i]);
                }
                pn_proactor_set_timeout(p, paced ? 1 : 1000);
                break;
            case PN_TRANSPORT_CLOSED:
                on_event(b, e);
                closed++;
                if (b->failed || !b->finished) {
                    /* one side is gone for good: the other cannot finish */
                    for (int i = 0; i < n; i++) {
                        if (sides[i].conn && &sides[i] != b && !sides[i].finished) {
                            sides[i].failed = 1;
                            pn_connection_close(sides[i].conn);
                        }
                    }
                    if (n > 1 && !sides[1].conn) {
                        closed = n; /* the sender never started */
                    }
                }
                break;
            default:
                on_event(b, e);
                break;
            }
        }
        pn_proactor_done(p, batch);
    }
    pn_proactor_free(p);
    for (int i = 0; i < n; i++) {
        failed = failed || sides[i].failed || (sides[i].sender && sides[i].rejected);
    }
    return failed ? 1 : 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* --latency-log: one line per message in the order they arrived, "latency-us send-ms" (send-ms:
 * CLOCK_MONOTONIC, the clock of ferry-pausemeter's log). At a fixed rate stalls show as runs of
 * high values. */
static void write_latency_log(const bench *b)
{
    FILE *f = fopen(b->o->latency_log, "w");
    if (!f) {
        fprintf(stderr, "ferry-amqp-bench: %s: %s\n", b->o->latency_log, strerror(errno));
        return;
    }
    for (uint64_t i = 0; i < b->received; i++) {
        fprintf(f, "%.1f %.3f\n", (double)b->lat[i] / 1e3, (double)b->sent_at[i] / 1e6);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "ferry-amqp-bench: %s: %s\n", b->o->latency_log, strerror(errno));
    }
}

/* The receiver's result, "received seconds p50 p99 p999 max" (latencies in µs). */
static void receiver_line(bench *b, char *line, size_t size)
{
    uint64_t n = b->received;
    if (b->o->latency_log) {
        write_latency_log(b);
    }
    qsort(b->lat, n, sizeof(*b->lat), cmp_u64);
    snprintf(line, size, "%llu %.6f %.1f %.1f %.1f %.1f\n", (unsigned long long)n,
             (double)(b->tr_last - b->tr0) / 1e9, (double)b->lat[n / 2] / 1e3,
             (double)b->lat[(size_t)((double)n * 0.99)] / 1e3,
             (double)b->lat[(size_t)((double)n * 0.999)] / 1e3, (double)b->lat[n - 1] / 1e3);
}

/* The receiving side of e2e, in a child process: writes its result line on result_fd. */
static void receive_child(const opts *o, int ready_fd, int result_fd)
{
    bench b = {0};
    char line[256];
    b.o = o;
    b.ready_fd = ready_fd;
    b.lat = malloc(o->count * sizeof(*b.lat));
    b.sent_at = o->latency_log ? calloc(o->count, sizeof(*b.sent_at)) : NULL;
    if (run(&b, 1) != 0 || b.received != o->count) {
        exit(1);
    }
    receiver_line(&b, line, sizeof(line));
    if (write(result_fd, line, strlen(line)) < 0) {
        exit(1);
    }
    free(b.lat);
    free(b.sent_at);
    free(b.rbuf);
    exit(0);
}

/* e2e in one process: the receiver, then the sender on the same proactor and thread. */
static int e2e_one_process(const opts *o, bench *snd, bench_result *r)
{
    bench sides[2] = {{0}};
    char line[256];
    int rc;
    sides[0].o = o;
    sides[0].ready_fd = -1;
    sides[0].lat = malloc(o->count * sizeof(*sides[0].lat));
    sides[0].sent_at = o->latency_log ? calloc(o->count, sizeof(*sides[0].sent_at)) : NULL;
    sides[1] = *snd;
    sides[0].start = &sides[1];
    rc = run(sides, 2);
    *snd = sides[1];
    if (rc != 0 || sides[0].received != o->count) {
        fprintf(stderr, "ferry-amqp-bench: %s failed (%llu received)\n",
                sides[1].failed || sides[1].rejected ? "the sender" : "the receiver",
                (unsigned long long)sides[0].received);
        rc = 1;
    } else {
        receiver_line(&sides[0], line, sizeof(line));
        rc = bench_parse_receiver(line, r) ? 0 : 1;
    }
    free(sides[0].lat);
    free(sides[0].sent_at);
    free(sides[0].rbuf);
    return rc;
}

static bench_result result_of(const opts *o, const char *mode)
{
    bench_result r = {
        .mode = mode, .count = o->count, .rate = o->rate, .size = o->size, .inflight = o->inflight};
    return r;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-amqp-bench [options] produce|e2e\n"
               "  --broker HOST:PORT   (default 127.0.0.1:5672)\n"
               "  --target ADDRESS     the sender's target (default bench)\n"
               "  --source ADDRESS     e2e: the receiver's source (default\n"
               "                       <target>/subscriptions/bench, Ferry's clustering group)\n"
               "  --user U --password P  SASL PLAIN (default: SASL ANONYMOUS)\n"
               "  --size BYTES         message body size (default 100)\n"
               "  --count N            messages (default 1000000)\n"
               "  --inflight N         unsettled transfers outstanding, at most (default 1024)\n"
               "  --credit N           e2e: the receiver's link credit window (default 1000)\n"
               "  --rate N             messages per second (default: as fast as possible)\n"
               "  --broker-pid PID     report the broker's CPU seconds per million messages\n"
               "  --one-process        e2e: the receiver in the sender's thread, not a second\n"
               "                       process (on 2 CPUs, two generator processes and the\n"
               "                       broker compete for them: a tail that is the generator's)\n"
               "  --latency-log FILE   e2e: every message's latency (us) and send time\n"
               "                       (CLOCK_MONOTONIC ms), one line each in arrival order\n"
               "                       (scripts/latency-stalls.py reads it)\n"
               "  --json               one JSON object per run\n");
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"target", required_argument, NULL, 't'},
        {"source", required_argument, NULL, 'S'},
        {"user", required_argument, NULL, 'u'},
        {"password", required_argument, NULL, 'P'},
        {"size", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'i'},
        {"credit", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"broker-pid", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"one-process", no_argument, NULL, '1'},
        {"latency-log", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.broker = "127.0.0.1:5672",
              .target = "bench",
              .size = 100,
              .count = 1000000,
              .inflight = 1024,
              .credit = 1000};
    char source[300];
    bench b = {0};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            o.broker = optarg;
            break;
        case 't':
            o.target = optarg;
            break;
        case 'S':
            o.source = optarg;
            break;
        case 'u':
            o.user = optarg;
            break;
        case 'P':
            o.password = optarg;
            break;
        case 's':
            o.size = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            o.count = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            o.inflight = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o.credit = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            o.rate = strtoull(optarg, NULL, 10);
            break;
        case 'p':
            o.broker_pid = atoi(optarg);
            break;
        case 'j':
            o.json = true;
            break;
        case '1':
            o.one_process = true;
            break;
        case 'L':
            o.latency_log = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || o.count == 0 || o.inflight == 0 || o.credit == 0) {
        usage(stderr);
        return 2;
    }
    if (!o.source) {
        snprintf(source, sizeof(source), "%s/subscriptions/bench", o.target);
        o.source = source;
    }
    signal(SIGPIPE, SIG_IGN);
    b.o = &o;
    b.sender = true;
    b.ready_fd = -1;
    encode_message(&b);

    if (strcmp(argv[optind], "produce") == 0) {
        bench_result r = result_of(&o, "produce");
        if (run(&b, 1) != 0 || b.accepted != o.count) {
            fprintf(stderr, "ferry-amqp-bench: %llu of %llu accepted\n",
                    (unsigned long long)b.accepted, (unsigned long long)o.count);
            return 1;
        }
        r.secs = (double)(bench_now_ns() - b.t0) / 1e9;
        bench_report(&r, b.mark, o.json);
        free(b.enc);
        return 0;
    }
    if (strcmp(argv[optind], "e2e") == 0) {
        int ready[2], result[2], status;
        char buf[256] = "";
        bench_result r = result_of(&o, "e2e");
        ssize_t got, total = 0;
        pid_t pid;
        int rc;
        if (o.one_process) {
            rc = e2e_one_process(&o, &b, &r);
            if (rc == 0) {
                bench_report(&r, b.mark, o.json);
            }
            free(b.enc);
            return rc;
        }
        if (pipe(ready) != 0 || pipe(result) != 0) {
            perror("pipe");
            return 1;
        }
        pid = fork();
        if (pid == 0) {
            close(ready[0]);
            close(result[0]);
            receive_child(&o, ready[1], result[1]);
        }
        close(ready[1]);
        close(result[1]);
        if (read(ready[0], buf, 1) != 1) {
            fprintf(stderr, "ferry-amqp-bench: the receiver did not attach\n");
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
        rc = run(&b, 1);
        if (rc != 0) {
            kill(pid, SIGKILL);
        }
        while ((got = read(result[0], buf + total, sizeof(buf) - 1 - (size_t)total)) > 0) {
            total += got;
        }
        waitpid(pid, &status, 0);
        buf[total] = '\0';
        if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
            !bench_parse_receiver(buf, &r)) {
            fprintf(stderr, "ferry-amqp-bench: the %s failed\n", rc ? "sender" : "receiver");
            return 1;
        }
        bench_report(&r, b.mark, o.json);
        free(b.enc);
        return 0;
    }
    usage(stderr);
    return 2;
}
