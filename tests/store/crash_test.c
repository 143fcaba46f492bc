/* SPDX-License-Identifier: Apache-2.0 */
/* Crash test of the store: a child process appends under flush=sync with many batches in
 * flight and reports every acknowledged message through a pipe; the parent kills it with
 * SIGKILL at a random moment, reopens the store and checks that every acknowledged message is
 * there, intact, at its offset, that offsets are dense and store times never go back. */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/u64map.h"
#include "store/store.h"
#include "tests/testutil.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CRASH_TOPIC_ID 7u
#define CRASH_TOPIC "crash"
#define CRASH_QUEUES 4u
#define CRASH_INFLIGHT 64
#define CRASH_MAX_PER_BATCH 4
#define CRASH_MIN_BODY 10u
#define CRASH_MAX_BODY 2000u
#define CRASH_NKEYS 7u
#define CRASH_ID_LEN 6 /* the id is stored as 48 bits: round << 32 | sequence */
#define CRASH_SUM_LEN 4

#define HELLO_DEADLINE_MS 30000 /* open + recovery of the child */
#define DRAIN_DEADLINE_MS 10000 /* pipe EOF and reaping after SIGKILL */

/* One report from the child, written to the pipe. Every write() holds whole records and is
 * at most PIPE_BUF bytes, so it is atomic: a kill never leaves half a record. */
enum { REC_HELLO = 1, REC_ACK = 2 };
typedef struct crash_rec {
    uint32_t kind;
    uint32_t queue;
    uint64_t offset; /* ACK: where the store put it; HELLO: the queue's max at open */
    uint64_t id;
    uint32_t len; /* body length */
    uint32_t pad;
} crash_rec;

/* ---- Message bodies: derivable from their id, with a checksum of themselves ------------- */

/* A checksum of the body, eight bytes at a time (FNV-1a's multiply over 64-bit words, folded
 * to 32 bits): the parent checks hundreds of megabytes per round. */
static uint32_t body_sum(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return (uint32_t)(h ^ h >> 32);
}

/* Writes a body of len bytes (>= CRASH_MIN_BODY): id (48 bits), filler derived from the id,
 * a checksum of the rest. */
static void body_make(uint8_t *p, size_t len, uint64_t id)
{
    uint8_t pat[8];
    fy_be64_put(pat, id * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < len - CRASH_SUM_LEN; i += 8) {
        size_t n = len - CRASH_SUM_LEN - i;
        memcpy(p + i, pat, n < 8 ? n : 8);
        pat[0]++; /* no two 8-byte blocks of a body alike */
    }
    for (int i = 0; i < CRASH_ID_LEN; i++) {
        p[i] = (uint8_t)(id >> (8 * (CRASH_ID_LEN - 1 - i)));
    }
    fy_be32_put(p + len - CRASH_SUM_LEN, body_sum(p, len - CRASH_SUM_LEN));
}

/* Returns the id of an intact body, or 0 if the body is too short or its checksum is wrong. */
static uint64_t body_check(const uint8_t *p, size_t len)
{
    uint64_t id = 0;
    if (len < CRASH_MIN_BODY || len > CRASH_MAX_BODY) {
        return 0;
    }
    if (fy_be32_get(p + len - CRASH_SUM_LEN) != body_sum(p, len - CRASH_SUM_LEN)) {
        return 0;
    }
    for (int i = 0; i < CRASH_ID_LEN; i++) {
        id = id << 8 | p[i];
    }
    return id;
}

/* A third of the messages carry one key, "key-<id mod 7>". */
static bool id_key(uint64_t id, char *out, size_t n)
{
    if (id % 3 != 0) {
        return false;
    }
    snprintf(out, n, "key-%u", (unsigned)(id % CRASH_NKEYS));
    return true;
}

/* ---- The child: appends until it is killed ------------------------------------------------ */

typedef struct child child;

typedef struct slot {
    child *c;
    int n;
    uint32_t queue[CRASH_MAX_PER_BATCH];
    uint64_t id[CRASH_MAX_PER_BATCH];
    uint32_t len[CRASH_MAX_PER_BATCH];
} slot;

struct child {
    fy_store *s;
    int fd;
    uint32_t round;
    uint32_t seq;
    uint64_t rng;
    uint8_t body[CRASH_MAX_BODY];
    slot slots[CRASH_INFLIGHT];
};

static uint64_t xorshift64(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void child_die(const char *what, int rc)
{
    fprintf(stderr, "crash.store child: %s: %s\n", what, fy_strerror(rc));
    _exit(3);
}

/* Writes whole records in one write() (<= PIPE_BUF bytes: atomic). */
static void child_send(child *c, const crash_rec *r, size_t n)
{
    ssize_t w;
    do {
        w = write(c->fd, r, n * sizeof(*r));
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)(n * sizeof(*r))) {
        child_die("pipe write", -FY_EIO);
    }
}

static void child_submit(slot *sl);

static void child_done(void *arg, int status, fy_wbatch *b)
{
    slot *sl = arg;
    crash_rec recs[CRASH_MAX_PER_BATCH];
    if (status != FY_OK) {
        child_die("append failed", status);
    }
    if (fy_wbatch_appends(b) != (size_t)sl->n) {
        child_die("wrong number of results", -FY_EINVAL);
    }
    for (int i = 0; i < sl->n; i++) {
        uint32_t q;
        uint64_t off, ms;
        fy_wbatch_result(b, (size_t)i, &q, &off, &ms);
        recs[i] = (crash_rec){REC_ACK, q, off, sl->id[i], sl->len[i], 0};
    }
    /* Acknowledged: only now does the parent learn of these messages. */
    child_send(sl->c, recs, (size_t)sl->n);
    child_submit(sl);
}

static void child_submit(slot *sl)
{
    child *c = sl->c;
    fy_wbatch *b = fy_wbatch_new();
    sl->n = 1 + (int)(xorshift64(&c->rng) % CRASH_MAX_PER_BATCH);
    for (int i = 0; i < sl->n; i++) {
        uint64_t id = (uint64_t)c->round << 32 | ++c->seq;
        uint32_t len = CRASH_MIN_BODY +
                       (uint32_t)(xorshift64(&c->rng) % (CRASH_MAX_BODY - CRASH_MIN_BODY + 1));
        uint32_t q = (uint32_t)(xorshift64(&c->rng) % CRASH_QUEUES);
        char key[32];
        fy_slice keys[1];
        fy_record r = {0};
        int rc;
        body_make(c->body, len, id);
        r.born_ms = fy_wall_ms();
        r.topic = fy_slice_str(CRASH_TOPIC);
        r.tag = fy_slice_str("t");
        r.born_host = fy_slice_str("crash-child");
        if (id_key(id, key, sizeof(key))) {
            keys[0] = fy_slice_str(key);
            r.keys = keys;
            r.nkeys = 1;
        }
        r.body = (fy_slice){c->body, len};
        rc = fy_wbatch_append(b, CRASH_TOPIC_ID, q, &r);
        if (rc != i) {
            child_die("fy_wbatch_append", rc < 0 ? rc : -FY_EINVAL);
        }
        sl->queue[i] = q;
        sl->id[i] = id;
        sl->len[i] = len;
    }
    fy_store_submit(c->s, b, child_done, sl);
}

static int child_main(const char *dir, uint32_t round, int fd, pid_t parent, uint64_t seed)
{
    static child c;
    struct event_base *base;
    fy_store_opts o = {.dir = dir, .flush = FY_FLUSH_SYNC};
    crash_rec hello[CRASH_QUEUES];
    char err[256];
    int rc;

    /* Never outlive the parent, whatever happens to it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(4);
    }
    alarm(120);
    fy_log_set_level(FY_LOG_WARN);

    c.fd = fd;
    c.round = round;
    c.rng = seed * 0x9E3779B97F4A7C15ull + round;
    if (c.rng == 0) {
        c.rng = 1;
    }
    base = event_base_new();
    if (!base) {
        child_die("event_base_new", -FY_ENOMEM);
    }
    rc = fy_store_open(&o, base, &c.s, err, sizeof(err));
    if (rc != FY_OK) {
        fprintf(stderr, "crash.store child: open: %s\n", err);
        _exit(3);
    }
    for (uint32_t q = 0; q < CRASH_QUEUES; q++) {
        uint64_t min, max;
        fy_store_queue_range(c.s, CRASH_TOPIC_ID, q, &min, &max);
        hello[q] = (crash_rec){REC_HELLO, q, max, 0, 0, 0};
    }
    child_send(&c, hello, CRASH_QUEUES);
    for (int i = 0; i < CRASH_INFLIGHT; i++) {
        c.slots[i].c = &c;
        child_submit(&c.slots[i]);
    }
    event_base_dispatch(base);
    child_die("event loop ended", -FY_EINVAL);
    return 3;
}

/* ---- The parent: kills, reopens, verifies ------------------------------------------------- */

typedef struct expect {
    uint64_t id; /* 0: nothing acknowledged at this offset */
    uint32_t len;
} expect;

typedef struct queue_state {
    expect *acked; /* indexed by offset */
    size_t cap;
    uint64_t verified_max;           /* max offset (exclusive) seen by the last verification */
    uint64_t verified_ms;            /* store time of the message at verified_max - 1 */
    uint64_t key_count[CRASH_NKEYS]; /* keyed messages in [0, verified_max) */
    uint64_t next_ack;               /* next offset the child must report for this queue */
} queue_state;

typedef struct crash {
    const char *dir;
    char self[PATH_MAX];
    uint32_t seed;
    uint32_t round;
    queue_state q[CRASH_QUEUES];
    uint64_t acked_total;
    fy_u64map ids;   /* id -> queue << 48 | offset of every message verified */
    uint64_t lost;   /* acknowledged messages missing or damaged */
    uint64_t errors; /* every other broken expectation */
} crash;

/* Counts a broken expectation; the first few are described. */
#define FAIL(cr, ...)                                                                              \
    do {                                                                                           \
        if ((cr)->errors < 20) {                                                                   \
            fprintf(stderr, "crash.store FAIL round=%u: ", (cr)->round);                           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
        (cr)->errors++;                                                                            \
    } while (0)

static void expect_set(queue_state *qs, uint64_t off, uint64_t id, uint32_t len)
{
    if (off >= qs->cap) {
        size_t cap = qs->cap ? qs->cap : 1024;
        while (cap <= off) {
            cap *= 2;
        }
        qs->acked = fy_realloc(qs->acked, cap * sizeof(*qs->acked));
        memset(qs->acked + qs->cap, 0, (cap - qs->cap) * sizeof(*qs->acked));
        qs->cap = cap;
    }
    qs->acked[off] = (expect){id, len};
}

/* Kills the child and reaps it, waiting at most DRAIN_DEADLINE_MS. Returns the wait status,
 * or -1 if it could not be reaped. */
static int reap(pid_t pid)
{
    uint64_t deadline = fy_mono_ms() + DRAIN_DEADLINE_MS;
    int st;
    kill(pid, SIGKILL); /* harmless if it is already dead: it is our unreaped child */
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return st;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (fy_mono_ms() >= deadline) {
            kill(pid, SIGKILL);
            return -1;
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

static void on_record(crash *cr, const crash_rec *r, bool *hello_seen, int *hellos, uint64_t *acked)
{
    if (r->queue >= CRASH_QUEUES) {
        FAIL(cr, "child reported queue %u", r->queue);
        return;
    }
    queue_state *qs = &cr->q[r->queue];
    if (r->kind == REC_HELLO) {
        /* The child must see everything the last verification saw, and nothing more. */
        if (r->offset != qs->verified_max) {
            FAIL(cr, "queue %u reopened with max %" PRIu64 ", verified max was %" PRIu64, r->queue,
                 r->offset, qs->verified_max);
        }
        qs->next_ack = r->offset;
        if (++*hellos == (int)CRASH_QUEUES) {
            *hello_seen = true;
        }
        return;
    }
    if (r->kind != REC_ACK || !*hello_seen) {
        FAIL(cr, "unexpected record kind %u", r->kind);
        return;
    }
    /* Completions run in submit order and offsets are given in write order: the acks of a
     * queue are consecutive. */
    if (r->offset != qs->next_ack) {
        FAIL(cr, "queue %u acked offset %" PRIu64 ", expected %" PRIu64, r->queue, r->offset,
             qs->next_ack);
    }
    qs->next_ack = r->offset + 1;
    expect_set(qs, r->offset, r->id, r->len);
    (*acked)++;
}

/* Runs one child: fork + exec (LevelDB's background compaction thread, started by the
 * parent's earlier verifications, would not exist in a merely forked child), read its acks,
 * kill it after delay_ms counted from its hello, drain the pipe, reap it. */
static int run_child(crash *cr, unsigned delay_ms, uint64_t *acked)
{
    int p[2];
    pid_t pid;
    char a_round[16], a_fd[16], a_parent[16], a_seed[16];
    uint8_t buf[8192];
    size_t have = 0;
    bool hello_seen = false, killed = false, eof = false;
    int hellos = 0, st;
    uint64_t start = fy_mono_ms(), kill_at = 0, deadline = start + HELLO_DEADLINE_MS;
    uint64_t errors0 = cr->errors;

    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("pipe2");
        return -1;
    }
    snprintf(a_round, sizeof(a_round), "%u", cr->round);
    snprintf(a_fd, sizeof(a_fd), "%d", p[1]);
    snprintf(a_parent, sizeof(a_parent), "%d", (int)getpid());
    snprintf(a_seed, sizeof(a_seed), "%u", cr->seed);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. */
        char *argv[] = {cr->self, (char *)"--child", (char *)cr->dir, a_round,
                        a_fd,     a_parent,          a_seed,          NULL};
        fcntl(p[1], F_SETFD, 0);
        execv(cr->self, argv);
        _exit(127);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);

    while (!eof) {
        uint64_t now = fy_mono_ms();
        int timeout;
        struct pollfd pfd = {p[0], POLLIN, 0};
        if (hello_seen && !killed && kill_at == 0) {
            kill_at = now + delay_ms;
        }
        if (!killed && kill_at && now >= kill_at) {
            kill(pid, SIGKILL);
            killed = true;
            deadline = now + DRAIN_DEADLINE_MS;
        }
        if (now >= deadline) {
            FAIL(cr, "%s after %" PRIu64 " ms",
                 killed ? "no EOF from the killed child" : "no hello from the child", now - start);
            break;
        }
        timeout = (int)(deadline - now);
        if (!killed && kill_at && kill_at - now < (uint64_t)timeout) {
            timeout = (int)(kill_at - now);
        }
        if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
            perror("poll");
            break;
        }
        for (;;) {
            ssize_t r = read(p[0], buf + have, sizeof(buf) - have);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r < 0) {
                break; /* EAGAIN: nothing more for now */
            }
            if (r == 0) {
                eof = true;
                break;
            }
            have += (size_t)r;
            size_t used = 0;
            while (have - used >= sizeof(crash_rec)) {
                crash_rec rec;
                memcpy(&rec, buf + used, sizeof(rec));
                on_record(cr, &rec, &hello_seen, &hellos, acked);
                used += sizeof(rec);
            }
            memmove(buf, buf + used, have - used);
            have -= used;
        }
        if (eof && !killed) {
            FAIL(cr, "the child exited before it was killed (see its stderr)");
        }
    }
    close(p[0]);
    if (have != 0) {
        FAIL(cr, "%zu bytes of a partial record in the pipe", have);
    }
    st = reap(pid);
    if (st == -1) {
        FAIL(cr, "child %d could not be reaped", (int)pid);
    } else if (killed && !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
        FAIL(cr, "child status %#x, expected death by SIGKILL", st);
    } else if (!killed && WIFEXITED(st)) {
        FAIL(cr, "child exit code %d", WEXITSTATUS(st));
    }
    return cr->errors == errors0 ? 0 : -1;
}

/* State of the scan of one queue. */
typedef struct verify {
    crash *cr;
    uint32_t queue;
    uint64_t next;     /* the offset the next record must have */
    uint64_t last_ms;  /* store time of the previous record */
    uint64_t verified; /* acknowledged messages found intact */
    uint64_t key_count[CRASH_NKEYS];

} verify;

static int verify_one(void *arg, uint64_t offset, const uint8_t *rec, size_t len)
{
    verify *v = arg;
    crash *cr = v->cr;
    queue_state *qs = &cr->q[v->queue];
    const expect *ex = offset < qs->cap && qs->acked[offset].id ? &qs->acked[offset] : NULL;
    fy_record_view rv;
    uint64_t id = 0;
    char key[32];
    fy_slice k;
    bool ok = true;

    if (offset != v->next) {
        FAIL(cr, "queue %u: offset %" PRIu64 " follows %" PRIu64 " (not dense)", v->queue, offset,
             v->next - 1);
        ok = false;
        /* Acknowledged messages in the gap are lost. */
        for (uint64_t o = v->next; o < offset && o < qs->cap; o++) {
            if (qs->acked[o].id) {
                cr->lost++;
            }
        }
    }
    v->next = offset + 1;
    if (fy_record_decode(rec, len, &rv) != FY_OK) {
        FAIL(cr, "queue %u offset %" PRIu64 ": record does not decode", v->queue, offset);
        ok = false;
    } else {
        id = body_check(rv.body.p, rv.body.len);
        if (id == 0) {
            FAIL(cr, "queue %u offset %" PRIu64 ": body of %zu bytes fails its checksum", v->queue,
                 offset, rv.body.len);
            ok = false;
        }
        if (rv.queue_id != v->queue || rv.queue_offset != offset) {
            FAIL(cr, "queue %u offset %" PRIu64 ": record says queue %u offset %" PRIu64, v->queue,
                 offset, rv.queue_id, rv.queue_offset);
            ok = false;
        }
        if (rv.topic.len != strlen(CRASH_TOPIC) ||
            memcmp(rv.topic.p, CRASH_TOPIC, rv.topic.len) != 0) {
            FAIL(cr, "queue %u offset %" PRIu64 ": wrong topic", v->queue, offset);
            ok = false;
        }
        if (rv.store_ms < v->last_ms) {
            FAIL(cr, "queue %u offset %" PRIu64 ": store time %" PRIu64 " < previous %" PRIu64,
                 v->queue, offset, rv.store_ms, v->last_ms);
        }
        v->last_ms = rv.store_ms;
        if (id != 0) {
            fy_record_iter it = fy_record_keys(&rv);
            bool has = id_key(id, key, sizeof(key));
            bool got = fy_record_key_next(&it, &k);
            if (has != got || (has && (k.len != strlen(key) || memcmp(k.p, key, k.len) != 0))) {
                FAIL(cr, "queue %u offset %" PRIu64 ": keys do not match id %#" PRIx64, v->queue,
                     offset, id);
            } else if (has) {
                v->key_count[id % CRASH_NKEYS]++;
            }
            if ((uint32_t)(id >> 32) > cr->round || (uint32_t)id == 0) {
                FAIL(cr, "queue %u offset %" PRIu64 ": impossible id %#" PRIx64, v->queue, offset,
                     id);
            }
            /* A full scan meets verified messages again, at the same place. */
            uint64_t where = (uint64_t)v->queue << 48 | offset;
            uint64_t *seen = fy_u64map_upsert(&cr->ids, id, where);
            if (*seen != where) {
                FAIL(cr,
                     "id %#" PRIx64 " stored twice: queue %u offset %" PRIu64 " and queue %u "
                     "offset %" PRIu64,
                     id, (unsigned)(*seen >> 48), (uint64_t)(*seen & 0xffffffffffffu), v->queue,
                     offset);
            }
        }
    }
    if (ex) {
        if (ok && id == ex->id && rv.body.len == ex->len) {
            v->verified++;
        } else {
            FAIL(cr,
                 "queue %u offset %" PRIu64 ": acknowledged id %#" PRIx64 " (%u bytes) not found",
                 v->queue, offset, ex->id, ex->len);
            cr->lost++;
        }
    }
    return 0;
}

static int count_key(void *arg, uint32_t queue_id, uint64_t offset, uint64_t store_ms)
{
    (*(uint64_t *)arg)++;
    return 0;
}

/* Reopens the store and checks it against what was acknowledged: all of it when `full`,
 * otherwise what was written since the last verification (plus point reads of a sample of all
 * acknowledged messages), so that the rounds do not cost more and more. */
static int verify_store(crash *cr, bool full, uint64_t round_acked, uint64_t *total_msgs)
{
    struct event_base *base = event_base_new();
    fy_store *s = NULL;
    fy_store_opts o = {.dir = cr->dir, .flush = FY_FLUSH_SYNC};
    uint64_t key_count[CRASH_NKEYS] = {0};
    uint64_t errors0 = cr->errors, lost0 = cr->lost;
    fy_buf got = FY_BUF_INIT;
    char err[256];
    int rc;

    *total_msgs = 0;
    rc = fy_store_open(&o, base, &s, err, sizeof(err));
    if (rc != FY_OK) {
        FAIL(cr, "reopen: %s (%s)", err, fy_strerror(rc));
        goto out;
    }
    printf(" acked=%-6" PRIu64 " max=[", round_acked);
    for (uint32_t q = 0; q < CRASH_QUEUES; q++) {
        queue_state *qs = &cr->q[q];
        verify v = {.cr = cr, .queue = q};
        uint64_t min, max, from;
        fy_store_queue_range(s, CRASH_TOPIC_ID, q, &min, &max);
        printf("%s%" PRIu64, q ? " " : "", max);
        if (min != 0) {
            FAIL(cr, "queue %u starts at %" PRIu64 " (nothing was trimmed)", q, min);
        }
        if (max < qs->verified_max || max < qs->next_ack) {
            FAIL(cr, "queue %u max %" PRIu64 " below verified %" PRIu64 " / acked %" PRIu64, q, max,
                 qs->verified_max, qs->next_ack);
        }
        from = full ? min : qs->verified_max;
        if (from != min) {
            v.last_ms = qs->verified_ms;
            memcpy(v.key_count, qs->key_count, sizeof(v.key_count));
        }
        v.next = from;
        rc = fy_store_scan(s, CRASH_TOPIC_ID, q, from, SIZE_MAX, 0, verify_one, &v);
        if (rc != 0) {
            FAIL(cr, "scan of queue %u: %s", q, fy_strerror(rc));
        }
        if (v.next != max) {
            FAIL(cr, "queue %u: scan ended at %" PRIu64 ", range max is %" PRIu64, q, v.next, max);
        }
        for (uint64_t off = v.next; off < qs->next_ack && off < qs->cap; off++) {
            if (qs->acked[off].id) {
                FAIL(cr, "queue %u offset %" PRIu64 ": acknowledged message missing", q, off);
                cr->lost++;
            }
        }
        for (unsigned k = 0; k < CRASH_NKEYS; k++) {
            key_count[k] += v.key_count[k];
        }
        *total_msgs += max - min;
        qs->verified_max = max;
        qs->verified_ms = v.last_ms;
        memcpy(qs->key_count, v.key_count, sizeof(v.key_count));
    }
    printf("]");

    /* The key index is written in the same WriteBatch as the messages: same counts. */
    for (unsigned k = 0; k < CRASH_NKEYS; k++) {
        char key[32];
        uint64_t n = 0;
        snprintf(key, sizeof(key), "key-%u", k);
        rc = fy_store_query_key(s, CRASH_TOPIC_ID, key, 0, UINT64_MAX, SIZE_MAX, count_key, &n);
        if (rc < 0 || n != key_count[k]) {
            FAIL(cr, "key index %s: %" PRIu64 " entries for %" PRIu64 " messages (rc %d)", key, n,
                 key_count[k], rc);
        }
    }

    /* Point reads of a sample of the acknowledged messages take the other read path. */
    for (uint32_t q = 0; q < CRASH_QUEUES; q++) {
        queue_state *qs = &cr->q[q];
        for (uint64_t off = 0; off < qs->next_ack && off < qs->cap; off += 61) {
            fy_record_view rv;
            if (!qs->acked[off].id) {
                continue;
            }
            rc = fy_store_get(s, CRASH_TOPIC_ID, q, off, &got);
            if (rc != FY_OK || fy_record_decode(got.data, got.len, &rv) != FY_OK ||
                body_check(rv.body.p, rv.body.len) != qs->acked[off].id) {
                FAIL(cr, "get queue %u offset %" PRIu64 ": %s", q, off,
                     rc ? fy_strerror(rc) : "wrong record");
            }
        }
    }
    printf(" stored=%" PRIu64, *total_msgs);
out:
    fy_buf_free(&got);
    fy_store_close(s);
    event_base_free(base);
    return cr->errors == errors0 && cr->lost == lost0 ? 0 : -1;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [ROUNDS] [--seed N] [--keep]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    static crash cr;
    unsigned rounds = 20;
    bool keep = false, seeded = false, full;
    uint64_t t0 = fy_mono_ms(), t_verify, total_msgs = 0;
    int rc = 0;

    if (argc == 7 && strcmp(argv[1], "--child") == 0) {
        return child_main(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), atoi(argv[4]),
                          (pid_t)atoi(argv[5]), strtoull(argv[6], NULL, 10));
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            cr.seed = (uint32_t)strtoul(argv[++i], NULL, 10);
            seeded = true;
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (argv[i][0] != '-' && atoi(argv[i]) > 0) {
            rounds = (unsigned)atoi(argv[i]);
        } else {
            return usage(argv[0]);
        }
    }
    if (!seeded) {
        cr.seed = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
    }
    if (readlink("/proc/self/exe", cr.self, sizeof(cr.self) - 1) < 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    /* A child writing to a pipe whose reader is gone must fail its write, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    fy_log_set_level(FY_LOG_WARN);
    srand(cr.seed);
    cr.dir = fy_strdup(fy_test_tmpdir("crash"));
    printf("crash.store seed=%u rounds=%u inflight=%d queues=%u dir=%s\n", cr.seed, rounds,
           CRASH_INFLIGHT, CRASH_QUEUES, cr.dir);

    for (cr.round = 1; cr.round <= rounds; cr.round++) {
        unsigned delay = 100 + (unsigned)(rand() % 701);
        uint64_t acked = 0;
        printf("  round %2u: kill=%3ums", cr.round, delay);
        fflush(stdout);
        if (run_child(&cr, delay, &acked) != 0) {
            rc = 1;
        }
        cr.acked_total += acked;
        t_verify = fy_mono_ms();
        /* Everything every fifth round and at the end; what is new in between. */
        full = cr.round % 5 == 0 || cr.round == rounds;
        if (verify_store(&cr, full, acked, &total_msgs) != 0) {
            rc = 1;
        }
        printf(" verify=%s/%" PRIu64 "ms %s\n", full ? "all" : "new", fy_mono_ms() - t_verify,
               rc ? "FAILED" : "ok");
        fflush(stdout);
        if (rc != 0) {
            break;
        }
    }
    printf("crash.store rounds=%u acked=%" PRIu64 " lost=%" PRIu64 " stored=%" PRIu64
           " errors=%" PRIu64 " seed=%u time=%.1fs\n",
           rc ? cr.round : rounds, cr.acked_total, cr.lost, total_msgs, cr.errors, cr.seed,
           (double)(fy_mono_ms() - t0) / 1000.0);
    if (rc == 0 && cr.lost == 0 && cr.errors == 0 && !keep) {
        fy_test_rmrf(cr.dir);
    } else {
        printf("crash.store data kept in %s\n", cr.dir);
    }
    for (unsigned q = 0; q < CRASH_QUEUES; q++) {
        fy_free(cr.q[q].acked);
    }
    fy_u64map_free(&cr.ids);
    fy_free((void *)cr.dir);
    return rc != 0 || cr.lost != 0 || cr.errors != 0 ? 1 : 0;
}
