/* SPDX-License-Identifier: Apache-2.0 */
/* ferry-bench: a load generator over libferry. `produce` pipelines sends from one producer;
 * `e2e` adds a consumer process (a clustering group) and reports throughput and end-to-end
 * latency percentiles, at full speed or at a fixed rate. With --broker-pid it also reports the
 * broker's CPU seconds per million messages. */
#include "tools/bench_util.h"

#include "ferry/client.h"
#include "ferry/errors.h"
#include "ferry/message.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
    const char *broker;
    const char *topic;
    size_t size;
    uint32_t queues;
    uint64_t count;
    uint32_t inflight;
    uint64_t rate; /* messages per second; 0 = as fast as possible */
    int broker_pid;
    bool json;
    const char *filter; /* consumer filter (tag expression, or SQL92 with sql) */
    bool sql;
    uint64_t max_delay_ms; /* delayed: each message due within this many ms */
} opts;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static fy_client *connect_or_die(const opts *o, uint32_t max_inflight)
{
    fy_client_opts co;
    int err = 0;
    fy_client *c;
    fy_client_opts_init(&co);
    co.broker = o->broker;
    co.client_name = "ferry-bench";
    co.max_inflight = max_inflight;
    c = fy_client_new(&co, &err);
    if (!c || fy_client_connect(c) != FY_OK) {
        fprintf(stderr, "ferry-bench: cannot connect to %s: %s\n", o->broker,
                c ? fy_client_last_error(c) : fy_strerror(err));
        exit(3);
    }
    return c;
}

typedef struct prod_state {
    uint64_t done;
    uint64_t failed;
    int first_error;
} prod_state;

static void on_sent(void *arg, int status, const fy_send_result *r)
{
    (void)r;
    prod_state *p = arg;
    p->done++;
    if (status != FY_OK) {
        if (!p->failed) {
            p->first_error = status;
        }
        p->failed++;
    }
}

/* Sends o->count messages; the first 8 body bytes carry the send time (monotonic ns), so that
 * a consumer on this machine can compute latency. Returns elapsed seconds. */
static double produce(const opts *o, fy_client *c)
{
    fy_message *m = fy_message_new(o->topic);
    size_t blen = o->size < 16 ? 16 : o->size;
    char *body = calloc(1, blen);
    if (o->filter) {
        /* Messages both kinds of filter select: tag "a", region = 'eu', amount = 150. */
        fy_message_set_tag(m, "a");
        fy_message_set_property(m, "region", "eu");
        fy_message_set_property(m, "amount", "150");
    }
    prod_state ps = {0};
    uint64_t t0 = bench_now_ns(), gap = o->rate ? 1000000000u / o->rate : 0;
    for (uint64_t i = 0; i < o->count; i++) {
        uint64_t t;
        if (gap) {
            /* Paced in ticks of 1 ms: sleep (not spin) until the message is due, rounded down
             * to the tick, so the bench wakes 1,000 times a second rather than once per message
             * and leaves the CPU to the broker. Latency is still measured per message from the
             * moment it is sent. Completions are read on the way. */
            uint64_t due = t0 + (i * gap) / 1000000u * 1000000u;
            t = bench_now_ns();
            if (t < due) {
                struct timespec ts = {0, (long)(due - t)};
                fy_client_poll(c, 0);
                nanosleep(&ts, NULL);
            }
        }
        t = bench_now_ns();
        memcpy(body, &t, 8);
        if (o->max_delay_ms) {
            /* Due at a random time within max_delay_ms; the body carries the due time. */
            uint64_t due = wall_ms() + (uint64_t)rand() % o->max_delay_ms;
            memcpy(body + 8, &due, 8);
            fy_message_set_deliver_at(m, due);
        }
        fy_message_set_body(m, body, blen);
        if (fy_send_async(c, m, on_sent, &ps) != FY_OK) {
            fprintf(stderr, "ferry-bench: send: %s\n", fy_client_last_error(c));
            exit(1);
        }
    }
    if (fy_client_flush(c, 60000) != FY_OK) {
        fprintf(stderr, "ferry-bench: flush: %s\n", fy_client_last_error(c));
        exit(1);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (ps.failed) {
        fprintf(stderr, "ferry-bench: %llu sends failed (first: %s)\n",
                (unsigned long long)ps.failed, fy_strerror(ps.first_error));
        exit(1);
    }
    fy_message_free(m);
    free(body);
    return secs;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The consumer side of e2e, in a child process: reports "received seconds p50 p99 p999 max"
 * (latencies in microseconds) on fd. */
static void consume_child(const opts *o, const char *group, int ready_fd, int result_fd)
{
    fy_client *c = connect_or_die(o, 0);
    fy_consumer_opts co;
    fy_consumer *cons;
    uint64_t *lat = malloc(o->count * sizeof(*lat));
    uint64_t n = 0, t0 = 0, t_last = 0;
    int err = 0;
    char line[256];
    fy_consumer_opts_init(&co);
    co.group = group;
    co.topic = o->topic;
    co.window = 2048;
    co.filter = o->filter;
    co.filter_sql = o->sql;
    cons = fy_consumer_new(c, &co, &err);
    if (!cons) {
        fprintf(stderr, "ferry-bench: subscribe: %s\n", fy_client_last_error(c));
        exit(1);
    }
    if (write(ready_fd, "r", 1) != 1) {
        exit(1);
    }
    while (n < o->count) {
        fy_message *m = NULL;
        int rc = fy_consumer_poll(cons, 30000, &m);
        size_t len;
        const uint8_t *body;
        uint64_t sent, now;
        if (rc != FY_OK) {
            fprintf(stderr, "ferry-bench: consumer: %s after %llu messages\n",
                    fy_client_last_error(c), (unsigned long long)n);
            exit(1);
        }
        now = bench_now_ns();
        body = fy_message_body(m, &len);
        if (o->max_delay_ms && len >= 16) {
            /* Delayed: how late after its due time (ms resolution, in ns units). */
            uint64_t due, w = wall_ms();
            memcpy(&due, body + 8, 8);
            lat[n] = w > due ? (w - due) * 1000000u : 0;
        } else if (len >= 8) {
            memcpy(&sent, body, 8);
            lat[n] = now > sent ? now - sent : 0;
        } else {
            lat[n] = 0;
        }
        if (n == 0) {
            t0 = now;
        }
        t_last = now;
        n++;
        fy_consumer_ack(cons, m);
        fy_message_free(m);
    }
    fy_client_flush(c, 5000);
    qsort(lat, n, sizeof(*lat), cmp_u64);
    snprintf(line, sizeof(line), "%llu %.6f %.1f %.1f %.1f %.1f\n", (unsigned long long)n,
             (double)(t_last - t0) / 1e9, (double)lat[n / 2] / 1e3,
             (double)lat[(size_t)((double)n * 0.99)] / 1e3,
             (double)lat[(size_t)((double)n * 0.999)] / 1e3, (double)lat[n - 1] / 1e3);
    if (write(result_fd, line, strlen(line)) < 0) {
        exit(1);
    }
    fy_consumer_free(cons);
    fy_client_free(c);
    free(lat);
    exit(0);
}

static void ensure_topic(const opts *o, fy_client *c)
{
    int rc = fy_topic_create(c, o->topic, o->queues);
    if (rc != FY_OK && rc != -FY_EEXIST) {
        fprintf(stderr, "ferry-bench: topic create: %s\n", fy_client_last_error(c));
        exit(1);
    }
}

static bench_result result_of(const opts *o, const char *mode)
{
    bench_result r = {
        .mode = mode, .count = o->count, .rate = o->rate, .size = o->size, .inflight = o->inflight};
    return r;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ferry-bench [options] produce|e2e\n"
               "  --broker HOST:PORT   (default 127.0.0.1:10911)\n"
               "  --topic NAME         (default bench)\n"
               "  --queues N           queues of the topic if it is created (default 8)\n"
               "  --size BYTES         message body size (default 100)\n"
               "  --count N            messages (default 1000000)\n"
               "  --inflight N         sends in flight (default 1024)\n"
               "  --rate N             messages per second (default: as fast as possible)\n"
               "  --broker-pid PID     report the broker's CPU seconds per million messages\n"
               "  --json               one JSON object per run\n"
               "  --filter EXPR        e2e: the consumer's tag filter (messages get tag a and\n"
               "                       properties region=eu, amount=150)\n"
               "  --sql EXPR           e2e: the consumer's SQL92 filter, same messages\n"
               "  --max-delay-ms N     e2e: each message is delayed to a random time within N ms;\n"
               "                       the latency reported is how late after that time\n");
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"size", required_argument, NULL, 's'},
        {"queues", required_argument, NULL, 'q'},
        {"count", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'i'},
        {"rate", required_argument, NULL, 'r'},
        {"broker-pid", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"filter", required_argument, NULL, 'f'},
        {"sql", required_argument, NULL, 'S'},
        {"max-delay-ms", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    opts o = {"127.0.0.1:10911", "bench", 100, 8, 1000000, 1024, 0, 0, false, NULL, false, 0};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (ch) {
        case 'b':
            o.broker = optarg;
            break;
        case 't':
            o.topic = optarg;
            break;
        case 's':
            o.size = strtoul(optarg, NULL, 10);
            break;
        case 'q':
            o.queues = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            o.count = strtoull(optarg, NULL, 10);
            break;
        case 'i':
            o.inflight = (uint32_t)strtoul(optarg, NULL, 10);
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
        case 'f':
            o.filter = optarg;
            break;
        case 'S':
            o.filter = optarg;
            o.sql = true;
            break;
        case 'D':
            o.max_delay_ms = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc || o.count == 0 || o.inflight == 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    if (strcmp(argv[optind], "produce") == 0) {
        fy_client *c = connect_or_die(&o, o.inflight);
        bench_result r = result_of(&o, "produce");
        bench_mark m;
        ensure_topic(&o, c);
        m = bench_mark_now(o.broker_pid);
        r.secs = produce(&o, c);
        bench_report(&r, m, o.json);
        fy_client_free(c);
        return 0;
    }
    if (strcmp(argv[optind], "e2e") == 0) {
        int ready[2], result[2], status;
        char group[64], buf[256] = "";
        bench_result r = result_of(&o, "e2e");
        bench_mark m;
        ssize_t got, total = 0;
        fy_client *c = connect_or_die(&o, o.inflight);
        pid_t pid;
        ensure_topic(&o, c);
        snprintf(group, sizeof(group), "bench-%d", (int)getpid());
        if (pipe(ready) != 0 || pipe(result) != 0) {
            perror("pipe");
            return 1;
        }
        pid = fork();
        if (pid == 0) {
            close(ready[0]);
            close(result[0]);
            consume_child(&o, group, ready[1], result[1]);
        }
        close(ready[1]);
        close(result[1]);
        if (read(ready[0], buf, 1) != 1) {
            fprintf(stderr, "ferry-bench: the consumer did not start\n");
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return 1;
        }
        m = bench_mark_now(o.broker_pid);
        produce(&o, c);
        while ((got = read(result[0], buf + total, sizeof(buf) - 1 - (size_t)total)) > 0) {
            total += got;
        }
        waitpid(pid, &status, 0);
        buf[total] = '\0';
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !bench_parse_receiver(buf, &r)) {
            fprintf(stderr, "ferry-bench: the consumer failed\n");
            return 1;
        }
        bench_report(&r, m, o.json);
        fy_client_free(c);
        return 0;
    }
    usage(stderr);
    return 2;
}
