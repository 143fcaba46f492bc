/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of libferry's client against a fake broker: a thread in this process that speaks
 * the native protocol with the wire codec (common/wire.h) on a loopback port. It checks option
 * validation, connection refusal, HELLO, the records a send puts on the wire, pipelined async
 * sends (the fake answers only once several are in flight), batches in one frame, broker errors
 * and their text, request timeouts, a connection dropped mid-request (-FY_ECLOSED, then a
 * reconnect), consumers in pull and callback mode (credit topped up, acks batched, nacks, message
 * ids built from the topic id), re-subscription after a drop, SUB_CLOSED, and the decoding of
 * admin answers, including malformed ones (message lookup by key: arguments checked before
 * sending, the window and limit on the wire, ids taken from the answer). */
#include "common/buf.h"
#include "common/record.h"
#include "common/wire.h"

#include "ferry/client.h"
#include "ferry/errors.h"
#include "ferry/message.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

#define FAKE_TOPIC_ID 7
#define FAKE_BROKER_ID 3
#define FAKE_MAX_RECS 256
#define WAIT_MS 5000

/* ---- The fake broker ----------------------------------------------------------------------- */

typedef struct fake {
    int lfd;
    uint16_t port;
    pthread_t thread;
    pthread_mutex_t mu;
    int conn; /* the current connection, -1 when none */
    bool stop;

    /* Behaviour. */
    int hold_sends;      /* answer SENDs only once this many are waiting (pipelining check) */
    bool drop_next;      /* close the connection instead of answering the next request */
    bool malformed_list; /* answer TOPIC_LIST with a count larger than the body */
    int malformed_find;  /* MSG_FIND: 1 = one entry more than the limit, 2 = count over body */

    /* What it saw. */
    int accepts, hellos, subscribes, unsubscribes, send_frames, credits_total;
    int max_send_batch;
    fy_buf recs[FAKE_MAX_RECS]; /* stored records (location set) */
    char sharding[FAKE_MAX_RECS][32];
    int nrecs;
    uint64_t acked[FAKE_MAX_RECS];
    int n_acked;
    uint64_t nack_ids[FAKE_MAX_RECS];
    uint8_t nack_how[FAKE_MAX_RECS];
    int n_nacked;
    char last_client_id[64];
    int finds; /* MSG_FIND requests, and the last one's fields */
    char find_topic[32], find_key[32];
    uint64_t find_from, find_to;
    uint32_t find_limit;

    /* The subscription of the current connection. */
    uint32_t sub_id;
    uint32_t credit;
    int next_deliver;
    bool subscribed;
    bool close_sub; /* send SUB_CLOSED at the next chance */

    fy_buf held; /* held SEND answers */
    int nheld;
} fake;

/* The fake runs in its own thread, where cmocka's asserts (longjmp) must not be used. */
#define FAKE_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fake broker: check failed at line %d: %s\n", __LINE__, #cond);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void fake_lock(fake *f)
{
    pthread_mutex_lock(&f->mu);
}

static void fake_unlock(fake *f)
{
    pthread_mutex_unlock(&f->mu);
}

static bool write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
        b += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_all(int fd, void *p, size_t n)
{
    uint8_t *b = p;

    while (n > 0) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
        b += r;
        n -= (size_t)r;
    }
    return true;
}

static void fake_ok_empty(fy_buf *out, uint32_t id)
{
    size_t start = fy_wire_ok_begin(out, id);
    fy_wire_frame_end(out, start);
}

/* Pushes deliveries while the subscription has credit. Called with the lock held. */
static void fake_deliver(fake *f, fy_buf *out)
{
    while (f->subscribed && f->credit > 0 && f->next_deliver < f->nrecs) {
        fy_buf *r = &f->recs[f->next_deliver];
        uint8_t id[FY_MSGID_LEN];
        fy_msgid_make(id, FAKE_BROKER_ID, FAKE_TOPIC_ID, 0, (uint64_t)f->next_deliver);
        fy_wire_enc_deliver(out, f->sub_id, 1000 + (uint64_t)f->next_deliver, id, r->data, r->len);
        f->next_deliver++;
        f->credit--;
    }
    if (f->subscribed && f->close_sub) {
        fy_w_sub_closed sc = {f->sub_id, FY_ENOTFOUND, fy_slice_str("topic deleted")};
        fy_wire_enc_sub_closed(out, &sc);
        f->subscribed = false;
        f->close_sub = false;
    }
}

/* Handles one request; appends answers to out. Returns false to close the connection. */
static bool fake_handle(fake *f, const fy_frame *fr, fy_buf *out)
{
    if (fr->type != FY_W_HELLO && f->drop_next) {
        f->drop_next = false;
        return false;
    }
    switch (fr->type) {
    case FY_W_HELLO: {
        fy_w_hello h;
        fy_w_hello_ok ok = {1, FAKE_BROKER_ID, 1u << 20, fy_slice_str("fake-1")};
        FAKE_CHECK((fy_wire_dec_hello(fr, &h)) == (FY_OK));
        FAKE_CHECK((h.version) == (1));
        snprintf(f->last_client_id, sizeof(f->last_client_id), "%.*s", (int)h.client_id.len,
                 (const char *)h.client_id.p);
        f->hellos++;
        fy_wire_enc_hello_ok(out, fr->id, &ok);
        break;
    }
    case FY_W_PING:
        fake_ok_empty(out, fr->id);
        break;
    case FY_W_SEND: {
        fy_w_send *s = malloc(sizeof(*s));
        fy_buf ans = FY_BUF_INIT;
        size_t start;
        FAKE_CHECK((s) != NULL);
        FAKE_CHECK((fy_wire_dec_send(fr, s)) == (FY_OK));
        f->send_frames++;
        if (s->n > f->max_send_batch) {
            f->max_send_batch = s->n;
        }
        for (int i = 0; i < s->n; i++) {
            fy_record_view v;
            FAKE_CHECK((fy_record_decode(s->msgs[i].record.p, s->msgs[i].record.len, &v)) ==
                       (FY_OK));
            if (v.topic.len == 3 && memcmp(v.topic.p, "bad", 3) == 0) {
                fy_wire_enc_error(out, fr->id, FY_EBADNAME, "topic name 'bad' is reserved");
                free(s);
                return true;
            }
            if (v.topic.len == 4 && memcmp(v.topic.p, "slow", 4) == 0) {
                free(s);
                return true; /* never answered */
            }
        }
        start = fy_wire_ok_begin(&ans, fr->id);
        fy_buf_put_u16(&ans, s->n);
        for (int i = 0; i < s->n && f->nrecs < FAKE_MAX_RECS; i++) {
            fy_buf *r = &f->recs[f->nrecs];
            uint8_t id[FY_MSGID_LEN];
            fy_buf_reset(r);
            fy_buf_append(r, s->msgs[i].record.p, s->msgs[i].record.len);
            fy_record_set_location(r->data, r->len, 0, (uint64_t)f->nrecs, 1700000000000ull);
            snprintf(f->sharding[f->nrecs], sizeof(f->sharding[0]), "%.*s",
                     (int)s->msgs[i].sharding_key.len, (const char *)s->msgs[i].sharding_key.p);
            fy_msgid_make(id, FAKE_BROKER_ID, FAKE_TOPIC_ID, 0, (uint64_t)f->nrecs);
            fy_buf_put_u32(&ans, 0);
            fy_buf_put_u64(&ans, (uint64_t)f->nrecs);
            fy_buf_put_u64(&ans, 1700000000000ull);
            fy_buf_append(&ans, id, sizeof(id));
            f->nrecs++;
        }
        fy_wire_frame_end(&ans, start);
        free(s);
        /* Hold answers until hold_sends requests are in: a client that waits for each answer
         * before sending the next never gets one. */
        fy_buf_append(&f->held, ans.data, ans.len);
        fy_buf_free(&ans);
        if (++f->nheld >= f->hold_sends) {
            fy_buf_append(out, f->held.data, f->held.len);
            fy_buf_reset(&f->held);
            f->nheld = 0;
        }
        break;
    }
    case FY_W_SUBSCRIBE: {
        fy_w_subscribe s;
        FAKE_CHECK((fy_wire_dec_subscribe(fr, &s)) == (FY_OK));
        f->subscribes++;
        f->sub_id = s.sub_id;
        f->credit = s.credit;
        f->subscribed = true;
        /* Redelivery from the start of what was not acknowledged: keep it simple, start over
         * after the acked prefix. */
        f->next_deliver = f->n_acked;
        fake_ok_empty(out, fr->id);
        break;
    }
    case FY_W_TOPIC_DESCRIBE: {
        fy_slice name;
        size_t start;
        FAKE_CHECK((fy_wire_dec_str(fr, &name)) == (FY_OK));
        if (name.len == 7 && memcmp(name.p, "missing", 7) == 0) {
            fy_wire_enc_error(out, fr->id, FY_ENOTFOUND, "topic 'missing' not found");
            break;
        }
        start = fy_wire_ok_begin(out, fr->id);
        fy_wire_put_slice(out, name);
        fy_buf_put_u32(out, FAKE_TOPIC_ID);
        fy_buf_put_u32(out, 2);
        fy_buf_put_u64(out, 0);
        fy_buf_put_u64(out, (uint64_t)f->nrecs);
        fy_buf_put_u64(out, 5);
        fy_buf_put_u64(out, 9);
        fy_wire_frame_end(out, start);
        break;
    }
    case FY_W_TOPIC_LIST: {
        size_t start = fy_wire_ok_begin(out, fr->id);
        fy_buf_put_u32(out, f->malformed_list ? 1000 : 2);
        fy_wire_put_str(out, "alpha");
        fy_buf_put_u32(out, 1);
        fy_buf_put_u32(out, 8);
        fy_wire_put_str(out, "beta");
        fy_buf_put_u32(out, 2);
        fy_buf_put_u32(out, 4);
        fy_wire_frame_end(out, start);
        break;
    }
    case FY_W_GROUP_DESCRIBE: {
        size_t start = fy_wire_ok_begin(out, fr->id);
        fy_wire_put_str(out, "g1");
        fy_buf_put_u8(out, 0);
        fy_buf_put_u32(out, 1);
        fy_buf_put_u32(out, 11);
        fy_wire_put_str(out, "c-1");
        fy_wire_put_str(out, "orders");
        fy_wire_put_str(out, "*");
        fy_buf_put_u32(out, 250);
        fy_buf_put_u32(out, 6);
        fy_buf_put_u32(out, 2);
        fy_wire_put_str(out, "orders");
        fy_buf_put_u32(out, 0);
        fy_buf_put_u64(out, 10);
        fy_buf_put_u64(out, 15);
        fy_buf_put_u32(out, 11);
        fy_wire_put_str(out, "orders");
        fy_buf_put_u32(out, 1);
        fy_buf_put_u64(out, 4);
        fy_buf_put_u64(out, 4);
        fy_buf_put_u32(out, 0);
        fy_wire_frame_end(out, start);
        break;
    }
    case FY_W_GROUP_RESET: {
        fy_w_group_reset r;
        size_t start;
        FAKE_CHECK((fy_wire_dec_group_reset(fr, &r)) == (FY_OK));
        start = fy_wire_ok_begin(out, fr->id);
        fy_buf_put_u32(out, 2);
        fy_buf_put_u32(out, 0);
        fy_buf_put_u64(out, r.ts_ms % 100);
        fy_buf_put_u32(out, 1);
        fy_buf_put_u64(out, 3);
        fy_wire_frame_end(out, start);
        break;
    }
    case FY_W_GROUP_CONFIG: {
        /* Echoes the request: a set value becomes the group's own, in force; a read answers
         * "the broker's default, 16"; group "bc" is broadcast. */
        fy_w_group_config r;
        fy_w_group_config_info a;
        FAKE_CHECK((fy_wire_dec_group_config(fr, &r)) == (FY_OK));
        a.group = r.group;
        a.mode = r.group.len == 2 && memcmp(r.group.p, "bc", 2) == 0 ? FY_SUB_BROADCAST
                                                                     : FY_SUB_CLUSTERING;
        a.max_reconsume = r.set ? r.max_reconsume : FY_WIRE_RECONSUME_DEFAULT;
        a.effective = a.max_reconsume == FY_WIRE_RECONSUME_DEFAULT ? 16 : a.max_reconsume;
        fy_wire_enc_group_config_info(out, fr->id, &a);
        break;
    }
    case FY_W_MSG_GET: {
        fy_slice hex;
        uint8_t id[FY_MSGID_LEN];
        uint16_t b, q;
        uint32_t t;
        uint64_t off;
        size_t start;
        FAKE_CHECK((fy_wire_dec_str(fr, &hex)) == (FY_OK));
        FAKE_CHECK((fy_msgid_from_hex((const char *)hex.p, hex.len, id)) == (FY_OK));
        fy_msgid_parse(id, &b, &t, &q, &off);
        if (off >= (uint64_t)f->nrecs) {
            fy_wire_enc_error(out, fr->id, FY_ENOTFOUND, "no such message");
            break;
        }
        start = fy_wire_ok_begin(out, fr->id);
        fy_buf_put_u32(out, (uint32_t)f->recs[off].len);
        fy_buf_append(out, f->recs[off].data, f->recs[off].len);
        fy_wire_frame_end(out, start);
        break;
    }
    case FY_W_MSG_FIND: {
        fy_w_msg_find m;
        size_t start, count_at;
        uint32_t n = 0;
        FAKE_CHECK((fy_wire_dec_msg_find(fr, &m)) == (FY_OK));
        f->finds++;
        snprintf(f->find_topic, sizeof(f->find_topic), "%.*s", (int)m.topic.len,
                 (const char *)m.topic.p);
        snprintf(f->find_key, sizeof(f->find_key), "%.*s", (int)m.key.len, (const char *)m.key.p);
        f->find_from = m.from_ms;
        f->find_to = m.to_ms;
        f->find_limit = m.limit;
        if (strcmp(f->find_topic, "missing") == 0) {
            fy_wire_enc_error(out, fr->id, FY_ENOTFOUND, "no such topic");
            break;
        }
        /* Every stored record carrying the key, in store order; the id names queue 1 and an
         * offset of 100 + index, unlike the record's own location, so a client that takes the
         * id from the answer can be told from one that rebuilds it. */
        start = fy_wire_ok_begin(out, fr->id);
        count_at = out->len;
        fy_buf_put_u32(out, 0);
        for (int i = 0; i < f->nrecs; i++) {
            fy_record_view v;
            fy_record_iter it;
            fy_slice k;
            bool match = false;
            FAKE_CHECK(fy_record_decode(f->recs[i].data, f->recs[i].len, &v) == FY_OK);
            it = fy_record_keys(&v);
            while (fy_record_key_next(&it, &k)) {
                match = match || (k.len == m.key.len && memcmp(k.p, m.key.p, k.len) == 0);
            }
            if (!match || n >= m.limit + (f->malformed_find == 1)) {
                continue;
            }
            uint8_t id[FY_MSGID_LEN];
            fy_msgid_make(id, FAKE_BROKER_ID, FAKE_TOPIC_ID, 1, 100 + (uint64_t)i);
            fy_buf_append(out, id, sizeof(id));
            fy_buf_put_u32(out, (uint32_t)f->recs[i].len);
            fy_buf_append(out, f->recs[i].data, f->recs[i].len);
            n++;
        }
        fy_be32_put(out->data + count_at, n + (f->malformed_find == 2 ? 1 : 0));
        fy_wire_frame_end(out, start);
        break;
    }
    case FY_W_CREDIT: {
        fy_w_credit cr;
        FAKE_CHECK((fy_wire_dec_credit(fr, &cr)) == (FY_OK));
        FAKE_CHECK(fr->flags & FY_WIRE_F_NOREPLY);
        FAKE_CHECK((cr.sub_id) == (f->sub_id));
        f->credit += cr.credit;
        f->credits_total += (int)cr.credit;
        break;
    }
    case FY_W_ACK:
    case FY_W_NACK: {
        fy_w_ack *a = malloc(sizeof(*a));
        FAKE_CHECK((a) != NULL);
        FAKE_CHECK((fy_wire_dec_ack(fr, a)) == (FY_OK));
        FAKE_CHECK(fr->flags & FY_WIRE_F_NOREPLY);
        for (int i = 0; i < a->n; i++) {
            if (fr->type == FY_W_ACK && f->n_acked < FAKE_MAX_RECS) {
                f->acked[f->n_acked++] = a->ids[i];
            } else if (fr->type == FY_W_NACK && f->n_nacked < FAKE_MAX_RECS) {
                f->nack_how[f->n_nacked] = a->how;
                f->nack_ids[f->n_nacked++] = a->ids[i];
            }
        }
        free(a);
        break;
    }
    case FY_W_UNSUBSCRIBE:
        f->unsubscribes++;
        f->subscribed = false;
        fake_ok_empty(out, fr->id);
        break;
    default:
        fy_wire_enc_error(out, fr->id, FY_ENOTSUP, "not in the fake");
        break;
    }
    return true;
}

static void fake_serve(fake *f, int fd)
{
    fy_buf in = FY_BUF_INIT, out = FY_BUF_INIT;
    uint8_t hdr[4];

    for (;;) {
        fy_frame fr;
        uint32_t len;
        bool keep;
        if (!read_all(fd, hdr, 4)) {
            break;
        }
        len = fy_be32_get(hdr);
        fy_buf_reset(&in);
        fy_buf_append(&in, hdr, 4);
        fy_buf_reserve(&in, len);
        if (!read_all(fd, in.data + 4, len)) {
            break;
        }
        in.len += len;
        FAKE_CHECK(fy_wire_frame_parse(in.data, in.len, FY_WIRE_DEFAULT_MAX_FRAME, &fr) > 0);
        fake_lock(f);
        fy_buf_reset(&out);
        keep = fake_handle(f, &fr, &out);
        if (keep) {
            fake_deliver(f, &out);
        }
        fake_unlock(f);
        if (!keep || !write_all(fd, out.data, out.len)) {
            break;
        }
    }
    fy_buf_free(&in);
    fy_buf_free(&out);
}

static void *fake_main(void *arg)
{
    fake *f = arg;

    for (;;) {
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0) {
            break;
        }
        fake_lock(f);
        if (f->stop) {
            fake_unlock(f);
            close(fd);
            break;
        }
        f->conn = fd;
        f->accepts++;
        f->subscribed = false;
        fy_buf_reset(&f->held);
        f->nheld = 0;
        fake_unlock(f);
        fake_serve(f, fd);
        fake_lock(f);
        f->conn = -1;
        fake_unlock(f);
        close(fd);
    }
    return NULL;
}

static fake *fake_start(void)
{
    fake *f = calloc(1, sizeof(*f));
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int one = 1;

    assert_non_null(f);
    pthread_mutex_init(&f->mu, NULL);
    f->conn = -1;
    f->hold_sends = 1;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &len), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(fake *f)
{
    fake_lock(f);
    f->stop = true;
    if (f->conn >= 0) {
        shutdown(f->conn, SHUT_RDWR);
    }
    fake_unlock(f);
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    for (int i = 0; i < FAKE_MAX_RECS; i++) {
        fy_buf_free(&f->recs[i]);
    }
    fy_buf_free(&f->held);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* Reads a counter of the fake under its lock. */
static int fake_get(fake *f, const int *field)
{
    int v;

    fake_lock(f);
    v = *field;
    fake_unlock(f);
    return v;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the fake's counter reaches want (NOREPLY frames have no answer to wait for). */
static void wait_count(fake *f, int *field, int want)
{
    int64_t until = mono_ms() + WAIT_MS;

    for (;;) {
        fake_lock(f);
        int v = *field;
        fake_unlock(f);
        if (v >= want) {
            return;
        }
        if (mono_ms() > until) {
            fail_msg("waited %d ms for a count of %d, have %d", WAIT_MS, want, v);
        }
        sleep_ms(2);
    }
}

static fy_client *client_for(fake *f, int request_timeout_ms)
{
    fy_client_opts o;
    char addr[64];
    fy_client *c;
    int err;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
    fy_client_opts_init(&o);
    o.broker = addr;
    o.client_id = "unit-client";
    o.request_timeout_ms = request_timeout_ms;
    o.connect_timeout_ms = 2000;
    c = fy_client_new(&o, &err);
    assert_non_null(c);
    assert_int_equal(err, FY_OK);
    return c;
}

static fy_message *msg_make(const char *topic, const char *body)
{
    fy_message *m = fy_message_new(topic);
    assert_non_null(m);
    assert_int_equal(fy_message_set_body(m, body, strlen(body)), FY_OK);
    return m;
}

/* ---- Tests --------------------------------------------------------------------------------- */

static void test_client_opts_validation(void **state)
{
    static const char *bad[] = {"",         ":10911", "host:", "host:0", "host:65536",
                                "host:12x", "[::1",   "[]:1",  "[::1]x", "host:-1"};
    static const char *good[] = {"localhost",   "127.0.0.1:1", "host:65535",
                                 "[::1]:10911", "::1",         "[::1]"};
    fy_client_opts o;
    fy_client *c;
    int err;

    fy_client_opts_init(&o);
    assert_int_equal(o.connect_timeout_ms, 5000);
    assert_int_equal(o.request_timeout_ms, 10000);
    assert_true(o.reconnect);
    assert_null(o.broker);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.broker = bad[i];
        err = 0;
        assert_null(fy_client_new(&o, &err));
        assert_int_equal(err, -FY_EINVAL);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        o.broker = good[i];
        c = fy_client_new(&o, &err);
        assert_non_null(c);
        assert_int_equal(err, FY_OK);
        assert_false(fy_client_is_connected(c));
        assert_string_equal(fy_client_last_error(c), "");
        fy_client_free(c);
    }
    fy_client_opts_init(&o);
    o.request_timeout_ms = -1;
    assert_null(fy_client_new(&o, &err));
    assert_int_equal(err, -FY_EINVAL);
    /* NULL options: every default; no connection is made yet. */
    c = fy_client_new(NULL, NULL);
    assert_non_null(c);
    assert_int_equal(fy_client_inflight(c), 0);
    fy_client_free(c);
    fy_client_free(NULL);
}

static void test_client_connect_refused(void **state)
{
    fy_client_opts o;
    fy_client *c;
    char addr[64];
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int64_t t0;

    /* A port that was just free: bound, not listening. */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
    fy_client_opts_init(&o);
    o.broker = addr;
    c = fy_client_new(&o, NULL);
    t0 = mono_ms();
    assert_int_equal(fy_client_connect(c), -FY_ECLOSED);
    assert_non_null(strstr(fy_client_last_error(c), "connect"));
    /* Every call that needs the broker fails the same way, fast (no retry loop before a first
     * connection). */
    assert_int_equal(fy_topic_create(c, "t", 0), -FY_ECLOSED);
    assert_true(mono_ms() - t0 < 2000);
    fy_client_free(c);
    close(fd);
}

static void test_client_send_puts_record_on_wire(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_message *m = msg_make("orders", "hello");
    fy_send_result r;
    fy_record_view v;
    fy_slice s;
    char want[FY_MESSAGE_ID_LEN + 1];
    uint8_t id[FY_MSGID_LEN];

    fy_message_set_tag(m, "TagA");
    fy_message_add_key(m, "k1");
    fy_message_add_key(m, "k2");
    fy_message_set_property(m, "color", "red");
    fy_message_set_sharding_key(m, "user-7");
    assert_int_equal(fy_client_connect(c), FY_OK);
    assert_true(fy_client_is_connected(c));
    assert_string_equal(fy_client_broker_version(c), "fake-1");
    fake_lock(f);
    assert_string_equal(f->last_client_id, "unit-client");
    fake_unlock(f);
    assert_int_equal(fy_client_ping(c), FY_OK);
    assert_int_equal(fy_send(c, m, &r), FY_OK);
    assert_int_equal(r.queue_id, 0);
    assert_int_equal(r.queue_offset, 0);
    assert_int_equal(r.store_ms, 1700000000000ull);
    fy_msgid_make(id, FAKE_BROKER_ID, FAKE_TOPIC_ID, 0, 0);
    fy_msgid_to_hex(id, want);
    assert_string_equal(r.msgid, want);
    /* The message itself is not changed by sending. */
    assert_int_equal(fy_message_queue_id(m), -1);

    fake_lock(f);
    assert_int_equal(f->nrecs, 1);
    assert_int_equal(fy_record_decode(f->recs[0].data, f->recs[0].len, &v), FY_OK);
    assert_int_equal(v.topic.len, 6);
    assert_memory_equal(v.topic.p, "orders", 6);
    assert_memory_equal(v.tag.p, "TagA", 4);
    assert_int_equal(v.nkeys, 2);
    assert_true(fy_record_prop_get(&v, "color", &s));
    assert_memory_equal(s.p, "red", 3);
    assert_int_equal(v.body.len, 5);
    assert_memory_equal(v.body.p, "hello", 5);
    /* Born time and host are filled in by the client. */
    assert_true(v.born_ms > 1600000000000ull);
    assert_true(v.born_host.len > 10);
    assert_memory_equal(v.born_host.p, "127.0.0.1:", 10);
    assert_string_equal(f->sharding[0], "user-7");
    fake_unlock(f);

    /* A message without a topic is refused before anything is sent. */
    fy_message *none = fy_message_new(NULL);
    assert_int_equal(fy_send(c, none, NULL), -FY_EINVAL);
    fy_message_free(none);
    fy_message_free(m);
    fy_client_free(c);
    fake_stop(f);
}

static int cb_count;
static int cb_order_ok;
static int64_t cb_last_offset;

static void count_cb(void *arg, int status, const fy_send_result *r)
{
    int *seen = arg;
    assert_int_equal(status, FY_OK);
    assert_non_null(r);
    (*seen)++;
    cb_count++;
    if ((int64_t)r->queue_offset == cb_last_offset + 1) {
        cb_order_ok++;
    }
    cb_last_offset = (int64_t)r->queue_offset;
}

static void test_client_async_sends_are_pipelined(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    int seen[40] = {0};

    /* The fake answers only once 8 SENDs wait: a client that does not pipeline stalls. */
    f->hold_sends = 8;
    cb_count = cb_order_ok = 0;
    cb_last_offset = -1;
    for (int i = 0; i < 40; i++) {
        char body[16];
        snprintf(body, sizeof(body), "m%d", i);
        fy_message *m = msg_make("orders", body);
        assert_int_equal(fy_send_async(c, m, count_cb, &seen[i]), FY_OK);
        fy_message_free(m); /* encoded during the call */
    }
    assert_int_equal(fy_client_flush(c, WAIT_MS), FY_OK);
    assert_int_equal(cb_count, 40);
    assert_int_equal(cb_order_ok, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(seen[i], 1); /* exactly once each */
    }
    assert_int_equal(fy_client_inflight(c), 0);
    assert_int_equal(fake_get(f, &f->send_frames), 40);
    fy_client_free(c);
    fake_stop(f);
}

static void test_client_batch_is_one_frame(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_message *m[3] = {msg_make("a", "1"), msg_make("b", "2"), msg_make("a", "3")};
    fy_send_result r[3];

    assert_int_equal(fy_send_batch(c, (const fy_message *const *)m, 3, r), FY_OK);
    assert_int_equal(r[0].queue_offset, 0);
    assert_int_equal(r[2].queue_offset, 2);
    assert_int_equal(fake_get(f, &f->send_frames), 1);
    assert_int_equal(fake_get(f, &f->max_send_batch), 3);
    assert_int_equal(fy_send_batch(c, (const fy_message *const *)m, 0, r), -FY_EINVAL);
    for (int i = 0; i < 3; i++) {
        fy_message_free(m[i]);
    }
    fy_client_free(c);
    fake_stop(f);
}

static void test_client_broker_error_and_timeout(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 300);
    fy_message *bad = msg_make("bad", "x"), *slow = msg_make("slow", "x");
    fy_message *ok = msg_make("orders", "x");
    int64_t t0;

    assert_int_equal(fy_send(c, bad, NULL), -FY_EBADNAME);
    assert_non_null(strstr(fy_client_last_error(c), "topic name 'bad' is reserved"));
    t0 = mono_ms();
    assert_int_equal(fy_send(c, slow, NULL), -FY_ETIMEDOUT);
    assert_true(mono_ms() - t0 >= 290);
    assert_non_null(strstr(fy_client_last_error(c), "no answer"));
    /* The connection is still usable; the late answer (never, here) would be ignored. */
    assert_int_equal(fy_send(c, ok, NULL), FY_OK);
    fy_message_free(bad);
    fy_message_free(slow);
    fy_message_free(ok);
    fy_client_free(c);
    fake_stop(f);
}

static int closed_seen;

static void closed_cb(void *arg, int status, const fy_send_result *r)
{
    assert_int_equal(status, -FY_ECLOSED);
    assert_null(r);
    closed_seen++;
}

static void test_client_drop_fails_inflight_then_reconnects(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_message *m = msg_make("orders", "x");

    assert_int_equal(fy_client_connect(c), FY_OK);
    fake_lock(f);
    f->drop_next = true;
    fake_unlock(f);
    assert_int_equal(fy_send(c, m, NULL), -FY_ECLOSED);
    assert_non_null(strstr(fy_client_last_error(c), "outcome unknown"));
    assert_false(fy_client_is_connected(c));
    /* The next call reconnects and says HELLO again. */
    assert_int_equal(fy_send(c, m, NULL), FY_OK);
    assert_int_equal(fake_get(f, &f->hellos), 2);

    /* Async sends in flight complete with -FY_ECLOSED, exactly once. */
    closed_seen = 0;
    fake_lock(f);
    f->drop_next = true;
    fake_unlock(f);
    assert_int_equal(fy_send_async(c, m, closed_cb, NULL), FY_OK);
    assert_int_equal(fy_client_flush(c, WAIT_MS), -FY_ECLOSED);
    assert_int_equal(closed_seen, 1);
    fy_message_free(m);
    fy_client_free(c);
    fake_stop(f);
}

static void test_client_no_reconnect_when_off(void **state)
{
    fake *f = fake_start();
    fy_client_opts o;
    char addr[64];
    fy_client *c;

    snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
    fy_client_opts_init(&o);
    o.broker = addr;
    o.reconnect = false;
    c = fy_client_new(&o, NULL);
    assert_int_equal(fy_client_ping(c), FY_OK);
    fake_lock(f);
    f->drop_next = true;
    fake_unlock(f);
    assert_int_equal(fy_client_ping(c), -FY_ECLOSED);
    assert_int_equal(fy_client_ping(c), -FY_ECLOSED);
    assert_non_null(strstr(fy_client_last_error(c), "reconnect is off"));
    /* An explicit connect still works. */
    assert_int_equal(fy_client_connect(c), FY_OK);
    assert_int_equal(fy_client_ping(c), FY_OK);
    fy_client_free(c);
    fake_stop(f);
}

static void send_n(fy_client *c, int n)
{
    for (int i = 0; i < n; i++) {
        char body[16];
        snprintf(body, sizeof(body), "m%d", i);
        fy_message *m = msg_make("orders", body);
        assert_int_equal(fy_send(c, m, NULL), FY_OK);
        fy_message_free(m);
    }
}

static void test_consumer_pull_credit_and_acks(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_consumer_opts o;
    fy_consumer *cons;
    fy_message *m;
    int err;
    char want[FY_MESSAGE_ID_LEN + 1];
    uint8_t id[FY_MSGID_LEN];

    send_n(c, 10);
    fy_consumer_opts_init(&o);
    assert_int_equal(o.window, 256);
    o.topic = "orders";
    assert_null(fy_consumer_new(c, &o, &err)); /* no group */
    assert_int_equal(err, -FY_EINVAL);
    o.group = "g1";
    o.window = 3; /* far fewer than the backlog: only credit lets the rest through */
    cons = fy_consumer_new(c, &o, &err);
    assert_non_null(cons);
    assert_int_equal(err, FY_OK);
    assert_ptr_equal(fy_consumer_client(cons), c);
    for (int i = 0; i < 10; i++) {
        char body[16];
        const void *p;
        size_t len;
        assert_int_equal(fy_consumer_poll(cons, WAIT_MS, &m), FY_OK);
        snprintf(body, sizeof(body), "m%d", i);
        p = fy_message_body(m, &len);
        assert_int_equal(len, strlen(body));
        assert_memory_equal(p, body, len);
        assert_string_equal(fy_message_topic(m), "orders");
        assert_int_equal(fy_message_queue_id(m), 0);
        assert_int_equal(fy_message_queue_offset(m), i);
        assert_int_equal(fy_message_store_ms(m), 1700000000000ull);
        fy_msgid_make(id, FAKE_BROKER_ID, FAKE_TOPIC_ID, 0, (uint64_t)i);
        fy_msgid_to_hex(id, want);
        assert_string_equal(fy_message_id(m), want);
        assert_int_equal(fy_consumer_ack(cons, m), FY_OK);
        fy_message_free(m);
    }
    assert_int_equal(fy_consumer_poll(cons, 50, &m), -FY_ETIMEDOUT);
    assert_null(m);
    wait_count(f, &f->n_acked, 10);
    fake_lock(f);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(f->acked[i], 1000 + (uint64_t)i);
    }
    /* Credit came back for every message handed out (7 needed to get all 10 with window 3). */
    assert_true(f->credits_total >= 7);
    fake_unlock(f);

    /* A message from elsewhere cannot be acknowledged here. */
    m = msg_make("orders", "x");
    assert_int_equal(fy_consumer_ack(cons, m), -FY_EINVAL);
    assert_int_equal(fy_consumer_nack(cons, m, FY_CONSUME_SUCCESS), -FY_EINVAL);
    fy_message_free(m);
    fy_consumer_free(cons);
    assert_int_equal(fake_get(f, &f->unsubscribes), 1);
    fy_client_free(c);
    fake_stop(f);
}

static int cb_calls;

static fy_consume_status consume_cb(void *arg, fy_consumer *cons, const fy_message *m)
{
    cb_calls++;
    /* The third delivery is handed back; the rest are processed. */
    return fy_message_queue_offset(m) == 2 ? FY_CONSUME_RETRY_LATER : FY_CONSUME_SUCCESS;
}

static void test_consumer_callback_mode(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_consumer_opts o;
    fy_consumer *cons;
    fy_message *m;
    int64_t until = mono_ms() + WAIT_MS;

    send_n(c, 5);
    fy_consumer_opts_init(&o);
    o.topic = "orders";
    o.group = "g2";
    o.callback = consume_cb;
    cons = fy_consumer_new(c, &o, NULL);
    assert_non_null(cons);
    assert_int_equal(fy_consumer_poll(cons, 0, &m), -FY_EINVAL);
    cb_calls = 0;
    while (cb_calls < 5 && mono_ms() < until) {
        assert_true(fy_client_poll(c, 100) >= 0);
    }
    assert_int_equal(cb_calls, 5);
    wait_count(f, &f->n_acked, 4);
    wait_count(f, &f->n_nacked, 1);
    fake_lock(f);
    assert_int_equal(f->nack_ids[0], 1002);
    assert_int_equal(f->nack_how[0], FY_NACK_RETRY);
    fake_unlock(f);
    /* Nothing more: poll times out with 0 callbacks. */
    assert_int_equal(fy_client_poll(c, 20), 0);
    fy_consumer_free(cons);
    fy_client_free(c);
    fake_stop(f);
}

static void test_consumer_resubscribes_after_drop(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_consumer_opts o;
    fy_consumer *cons;
    fy_message *m, *old;

    send_n(c, 3);
    fy_consumer_opts_init(&o);
    o.topic = "orders";
    o.group = "g3";
    cons = fy_consumer_new(c, &o, NULL);
    assert_non_null(cons);
    assert_int_equal(fy_consumer_poll(cons, WAIT_MS, &old), FY_OK);
    /* The connection drops before the ack. */
    fake_lock(f);
    f->drop_next = true;
    fake_unlock(f);
    assert_int_equal(fy_client_ping(c), -FY_ECLOSED);
    /* The delivery belongs to the dead connection: the broker will deliver it again. */
    assert_int_equal(fy_consumer_ack(cons, old), -FY_ECLOSED);
    fy_message_free(old);
    /* The next poll reconnects, subscribes again and gets the backlog from the start. */
    assert_int_equal(fy_consumer_poll(cons, WAIT_MS, &m), FY_OK);
    assert_int_equal(fake_get(f, &f->subscribes), 2);
    assert_int_equal(fake_get(f, &f->hellos), 2);
    assert_int_equal(fy_message_queue_offset(m), 0);
    assert_int_equal(fy_consumer_ack(cons, m), FY_OK);
    fy_message_free(m);
    fy_consumer_free(cons);
    fy_client_free(c);
    fake_stop(f);
}

static void test_consumer_sub_closed(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_consumer_opts o;
    fy_consumer *cons;
    fy_message *m;

    fy_consumer_opts_init(&o);
    o.topic = "orders";
    o.group = "g4";
    cons = fy_consumer_new(c, &o, NULL);
    assert_non_null(cons);
    fake_lock(f);
    f->close_sub = true;
    fake_unlock(f);
    assert_int_equal(fy_client_ping(c), FY_OK); /* carries SUB_CLOSED back */
    assert_int_equal(fy_consumer_poll(cons, 100, &m), -FY_ECLOSED);
    assert_non_null(strstr(fy_client_last_error(c), "topic deleted"));
    fy_consumer_free(cons);
    /* No UNSUBSCRIBE for a subscription the broker already ended. */
    assert_int_equal(fake_get(f, &f->unsubscribes), 0);
    fy_client_free(c);
    fake_stop(f);
}

static void test_admin_answers_decode(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_topics *tl;
    fy_topic_info *ti;
    fy_group_info *gi;
    fy_group_offsets *go;
    fy_message *m;
    fy_send_result r;

    assert_int_equal(fy_topic_list(c, &tl), FY_OK);
    assert_int_equal(tl->n, 2);
    assert_string_equal(tl->topics[0].name, "alpha");
    assert_int_equal(tl->topics[0].queues, 8);
    assert_string_equal(tl->topics[1].name, "beta");
    assert_int_equal(tl->topics[1].topic_id, 2);
    assert_null(tl->topics[1].ranges);
    fy_topics_free(tl);

    assert_int_equal(fy_topic_describe(c, "orders", &ti), FY_OK);
    assert_string_equal(ti->name, "orders");
    assert_int_equal(ti->topic_id, FAKE_TOPIC_ID);
    assert_int_equal(ti->queues, 2);
    assert_int_equal(ti->ranges[1].min_offset, 5);
    assert_int_equal(ti->ranges[1].max_offset, 9);
    fy_topic_info_free(ti);
    assert_int_equal(fy_topic_describe(c, "missing", &ti), -FY_ENOTFOUND);
    assert_null(ti);
    assert_non_null(strstr(fy_client_last_error(c), "topic 'missing' not found"));

    assert_int_equal(fy_group_describe(c, "g1", &gi), FY_OK);
    assert_string_equal(gi->name, "g1");
    assert_int_equal(gi->mode, FY_CONSUME_CLUSTERING);
    assert_int_equal(gi->nmembers, 1);
    assert_int_equal(gi->members[0].member_id, 11);
    assert_string_equal(gi->members[0].client_id, "c-1");
    assert_string_equal(gi->members[0].filter, "*");
    assert_int_equal(gi->members[0].inflight, 6);
    assert_int_equal(gi->nqueues, 2);
    assert_int_equal(gi->queues[0].committed, 10);
    assert_int_equal(gi->queues[0].lag, 5);
    assert_int_equal(gi->queues[0].owner, 11);
    assert_int_equal(gi->queues[1].lag, 0);
    fy_group_info_free(gi);

    assert_int_equal(fy_group_reset(c, "g1", "orders", 1234, &go), FY_OK);
    assert_int_equal(go->n, 2);
    assert_int_equal(go->offsets[0], 34);
    assert_int_equal(go->queue_ids[1], 1);
    assert_int_equal(go->offsets[1], 3);
    fy_group_offsets_free(go);
    assert_int_equal(fy_group_reset(c, "g1", "orders", 1234, NULL), FY_OK);

    /* Group settings: values checked before sending, the default as -1 both ways. */
    fy_group_config *gc;
    assert_int_equal(fy_group_config_get(c, "g1", &gc), FY_OK);
    assert_string_equal(gc->name, "g1");
    assert_int_equal(gc->mode, FY_CONSUME_CLUSTERING);
    assert_int_equal(gc->max_reconsume, FY_MAX_RECONSUME_DEFAULT);
    assert_int_equal(gc->max_reconsume_effective, 16);
    fy_group_config_free(gc);
    assert_int_equal(fy_group_set_max_reconsume(c, "g1", 3, &gc), FY_OK);
    assert_int_equal(gc->max_reconsume, 3);
    assert_int_equal(gc->max_reconsume_effective, 3);
    fy_group_config_free(gc);
    assert_int_equal(fy_group_set_max_reconsume(c, "bc", 0, &gc), FY_OK);
    assert_int_equal(gc->mode, FY_CONSUME_BROADCAST);
    assert_int_equal(gc->max_reconsume, 0);
    fy_group_config_free(gc);
    assert_int_equal(fy_group_set_max_reconsume(c, "g1", FY_MAX_RECONSUME_DEFAULT, NULL), FY_OK);
    assert_int_equal(fy_group_set_max_reconsume(c, "g1", 65, &gc), -FY_EINVAL);
    assert_null(gc);
    assert_int_equal(fy_group_set_max_reconsume(c, "g1", -2, NULL), -FY_EINVAL);
    assert_int_equal(fy_group_config_get(c, "", &gc), -FY_EINVAL);

    /* Message lookup: malformed ids are refused locally, known ones decode. */
    assert_int_equal(fy_message_get_by_id(c, "xyz", &m), -FY_EINVAL);
    m = msg_make("orders", "stored");
    fy_message_set_tag(m, "T");
    assert_int_equal(fy_send(c, m, &r), FY_OK);
    fy_message_free(m);
    assert_int_equal(fy_message_get_by_id(c, r.msgid, &m), FY_OK);
    assert_string_equal(fy_message_id(m), r.msgid);
    assert_string_equal(fy_message_tag(m), "T");
    assert_memory_equal(fy_message_body(m, NULL), "stored", 6);
    assert_int_equal(fy_message_queue_offset(m), 0);
    fy_message_free(m);

    /* A count larger than the answer is a protocol error, not a huge allocation. */
    fake_lock(f);
    f->malformed_list = true;
    fake_unlock(f);
    assert_int_equal(fy_topic_list(c, &tl), -FY_EPROTO);
    assert_null(tl);
    /* Unsupported request types come back as the broker's error. */
    fy_groups *gl;
    assert_int_equal(fy_group_list(c, &gl), -FY_ENOTSUP);
    fy_client_free(c);
    fake_stop(f);
}

static void test_admin_message_find(void **state)
{
    fake *f = fake_start();
    fy_client *c = client_for(f, 5000);
    fy_message_list *l = NULL;
    fy_send_result sent[4];
    char want[FY_MESSAGE_ID_LEN + 1];
    uint8_t raw[FY_MSGID_LEN];

    /* Bad arguments are refused before anything is sent. */
    static fy_message_list stale;
    l = &stale; /* any non-NULL value: it must be reset */
    assert_int_equal(fy_message_find(c, "orders", "k", 0, 0, 0, &l), -FY_EINVAL);
    assert_null(l);
    assert_non_null(strstr(fy_client_last_error(c), "limit"));
    assert_int_equal(fy_message_find(c, "orders", "k", 0, 0, 1025, &l), -FY_EINVAL);
    assert_int_equal(fy_message_find(c, NULL, "k", 0, 0, 10, &l), -FY_EINVAL);
    assert_int_equal(fy_message_find(c, "", "k", 0, 0, 10, &l), -FY_EINVAL);
    assert_int_equal(fy_message_find(c, "orders", NULL, 0, 0, 10, &l), -FY_EINVAL);
    assert_int_equal(fy_message_find(c, "orders", "", 0, 0, 10, &l), -FY_EINVAL);
    assert_int_equal(fy_message_find(c, "orders", "k", 20, 10, 10, &l), -FY_EINVAL);
    assert_int_equal(fy_message_find(c, "orders", "k", 0, 0, 10, NULL), -FY_EINVAL);
    assert_int_equal(fy_message_find(NULL, "orders", "k", 0, 0, 10, &l), -FY_EINVAL);
    assert_int_equal(fake_get(f, &f->finds), 0);

    /* Three messages with key "order-1" (one among other keys), one without. */
    for (int i = 0; i < 4; i++) {
        char body[16];
        fy_message *m;
        snprintf(body, sizeof(body), "body-%d", i);
        m = msg_make("orders", body);
        if (i == 1) {
            assert_int_equal(fy_message_add_key(m, "other"), FY_OK);
        }
        if (i != 2) {
            assert_int_equal(fy_message_add_key(m, "order-1"), FY_OK);
        }
        assert_int_equal(fy_send(c, m, &sent[i]), FY_OK);
        fy_message_free(m);
    }

    /* to_ms 0 goes out as "no upper bound"; the other fields as given. */
    assert_int_equal(fy_message_find(c, "orders", "order-1", 17, 0, 1024, &l), FY_OK);
    fake_lock(f);
    assert_string_equal(f->find_topic, "orders");
    assert_string_equal(f->find_key, "order-1");
    assert_int_equal(f->find_from, 17);
    assert_int_equal(f->find_to, UINT64_MAX);
    assert_int_equal(f->find_limit, 1024);
    fake_unlock(f);
    assert_non_null(l);
    assert_int_equal(l->n, 3);
    for (size_t i = 0; i < l->n; i++) {
        static const int idx[] = {0, 1, 3};
        char body[16];
        size_t len;
        const void *p = fy_message_body(l->messages[i], &len);
        snprintf(body, sizeof(body), "body-%d", idx[i]);
        assert_int_equal(len, strlen(body));
        assert_memory_equal(p, body, len);
        assert_string_equal(fy_message_topic(l->messages[i]), "orders");
        /* The id is the answer's, not the record's location (queue 0, offset idx). */
        fy_msgid_make(raw, FAKE_BROKER_ID, FAKE_TOPIC_ID, 1, 100 + (uint64_t)idx[i]);
        fy_msgid_to_hex(raw, want);
        assert_string_equal(fy_message_id(l->messages[i]), want);
        assert_int_equal(fy_message_queue_offset(l->messages[i]), idx[i]);
        assert_int_equal(fy_message_store_ms(l->messages[i]), 1700000000000ull);
    }
    assert_int_equal(fy_message_key_count(l->messages[1]), 2);
    assert_string_equal(fy_message_key_at(l->messages[1], 1), "order-1");
    /* A message taken over from the list outlives it. */
    fy_message *kept = l->messages[2];
    l->messages[2] = NULL;
    fy_message_list_free(l);
    assert_memory_equal(fy_message_body(kept, NULL), "body-3", 6);
    fy_message_free(kept);
    fy_message_list_free(NULL);

    /* A closed window and a limit go out unchanged; the answer respects the limit. */
    assert_int_equal(fy_message_find(c, "orders", "order-1", 5, 6, 2, &l), FY_OK);
    fake_lock(f);
    assert_int_equal(f->find_from, 5);
    assert_int_equal(f->find_to, 6);
    assert_int_equal(f->find_limit, 2);
    fake_unlock(f);
    assert_int_equal(l->n, 2);
    fy_message_list_free(l);

    /* Nothing matches: FY_OK and an empty list. */
    assert_int_equal(fy_message_find(c, "orders", "nope", 0, 0, 10, &l), FY_OK);
    assert_non_null(l);
    assert_int_equal(l->n, 0);
    assert_null(l->messages);
    fy_message_list_free(l);

    /* The broker's refusal. */
    assert_int_equal(fy_message_find(c, "missing", "order-1", 0, 0, 10, &l), -FY_ENOTFOUND);
    assert_null(l);
    assert_non_null(strstr(fy_client_last_error(c), "no such topic"));

    /* More entries than asked for, or a count over the body: malformed, nothing returned. */
    fake_lock(f);
    f->malformed_find = 1;
    fake_unlock(f);
    assert_int_equal(fy_message_find(c, "orders", "order-1", 0, 0, 2, &l), -FY_EPROTO);
    assert_null(l);
    fake_lock(f);
    f->malformed_find = 2;
    fake_unlock(f);
    assert_int_equal(fy_message_find(c, "orders", "order-1", 0, 0, 10, &l), -FY_EPROTO);
    assert_null(l);
    fake_lock(f);
    f->malformed_find = 0;
    fake_unlock(f);
    /* The connection is still good. */
    assert_int_equal(fy_message_find(c, "orders", "order-1", 0, 0, 10, &l), FY_OK);
    assert_int_equal(l->n, 3);
    fy_message_list_free(l);
    assert_int_equal(fake_get(f, &f->finds), 7);
    fy_client_free(c);
    fake_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_opts_validation),
        cmocka_unit_test(test_client_connect_refused),
        cmocka_unit_test(test_client_send_puts_record_on_wire),
        cmocka_unit_test(test_client_async_sends_are_pipelined),
        cmocka_unit_test(test_client_batch_is_one_frame),
        cmocka_unit_test(test_client_broker_error_and_timeout),
        cmocka_unit_test(test_client_drop_fails_inflight_then_reconnects),
        cmocka_unit_test(test_client_no_reconnect_when_off),
        cmocka_unit_test(test_consumer_pull_credit_and_acks),
        cmocka_unit_test(test_consumer_callback_mode),
        cmocka_unit_test(test_consumer_resubscribes_after_drop),
        cmocka_unit_test(test_consumer_sub_closed),
        cmocka_unit_test(test_admin_answers_decode),
        cmocka_unit_test(test_admin_message_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
