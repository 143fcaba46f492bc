/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus text format 0.0.4: `# HELP`, `# TYPE`, then `name{label="v"} value` lines. Names
 * follow the conventions: `ferry_` prefix, `_total` on counters, base units in names (seconds,
 * bytes). Per-topic series appear once a topic has traffic of that protocol. */
#include "broker/metrics.h"

#include "adapters/adapter.h"
#include "broker/auth.h"
#include "broker/core.h"
#include "broker/limits.h"
#include "broker/native.h"
#include "common/clock.h"

#include <event2/buffer.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Writes s as a label value: backslash, double quote and newline escaped. */
static void put_label(struct evbuffer *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            evbuffer_add_printf(out, "\\%c", *s);
        } else if (*s == '\n') {
            evbuffer_add(out, "\\n", 2);
        } else {
            evbuffer_add(out, s, 1);
        }
    }
}

static void head(struct evbuffer *out, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(struct evbuffer *out, const char *name, const char *help, double v)
{
    head(out, name, "gauge", help);
    evbuffer_add_printf(out, "%s %.15g\n", name, v);
}

static void counter(struct evbuffer *out, const char *name, const char *help, uint64_t v)
{
    head(out, name, "counter", help);
    evbuffer_add_printf(out, "%s %" PRIu64 "\n", name, v);
}

/* ---- Per-topic traffic ---------------------------------------------------------------------- */

typedef struct topic_pass {
    struct evbuffer *out;
    int which; /* 0 msgs_in, 1 msgs_out, 2 bytes_in, 3 bytes_out */
} topic_pass;

static void topic_series(void *arg, const fy_topic_info *t)
{
    topic_pass *p = arg;
    static const char *const names[] = {"ferry_messages_in_total", "ferry_messages_out_total",
                                        "ferry_bytes_in_total", "ferry_bytes_out_total"};
    for (int pr = 0; pr < FY_PROTO_COUNT; pr++) {
        const uint64_t *arr = p->which == 0   ? t->counters->msgs_in
                              : p->which == 1 ? t->counters->msgs_out
                              : p->which == 2 ? t->counters->bytes_in
                                              : t->counters->bytes_out;
        if (arr[pr] == 0) {
            continue;
        }
        evbuffer_add_printf(p->out, "%s{topic=\"", names[p->which]);
        put_label(p->out, t->name);
        evbuffer_add_printf(p->out, "\",protocol=\"%s\"} %" PRIu64 "\n",
                            fy_proto_name((fy_proto)pr), arr[pr]);
    }
}

static void render_topics(fy_broker *b, struct evbuffer *out)
{
    static const char *const helps[][2] = {
        {"ferry_messages_in_total", "Messages accepted from producers, by topic and protocol."},
        {"ferry_messages_out_total",
         "Messages delivered to consumers (redeliveries included), by topic and protocol."},
        {"ferry_bytes_in_total", "Bytes of the encoded records accepted, by topic and protocol."},
        {"ferry_bytes_out_total", "Bytes of the encoded records delivered, by topic and protocol."},
    };
    for (int w = 0; w < 4; w++) {
        topic_pass p = {out, w};
        head(out, helps[w][0], "counter", helps[w][1]);
        fy_core_topic_each(b->core, topic_series, &p);
    }
}

/* ---- Connections ---------------------------------------------------------------------------- */

static void count_conn(void *arg, const fy_conn_info *ci)
{
    (*(uint64_t *)arg)++;
}

static void adapter_conns(void *arg, const char *name, const fy_adapter_stats *st)
{
    evbuffer_add_printf(arg, "ferry_connections{protocol=\"%s\"} %" PRIu64 "\n", name,
                        st->connections);
}

static void adapter_sessions(void *arg, const char *name, const fy_adapter_stats *st)
{
    evbuffer_add_printf(arg, "ferry_sessions{protocol=\"%s\"} %" PRIu64 "\n", name, st->sessions);
}

static void render_connections(fy_broker *b, struct evbuffer *out)
{
    uint64_t native = 0;
    fy_native_each_connection(b->native, count_conn, &native);
    head(out, "ferry_connections", "gauge", "Open client connections, by protocol.");
    evbuffer_add_printf(out, "ferry_connections{protocol=\"native\"} %" PRIu64 "\n", native);
    fy_adapters_each_stats(b->adapters, adapter_conns, out);
    head(out, "ferry_sessions", "gauge",
         "Sessions known to a protocol adapter (MQTT: online or not; AMQP: begun).");
    fy_adapters_each_stats(b->adapters, adapter_sessions, out);
}

/* [limits]: refusals by reason and protocol (broker/limits.h). */
static void render_limits(fy_broker *b, struct evbuffer *out)
{
    static const char *const protos[FY_LIMIT_NPROTO] = {"mqtt", "amqp", "native"};
    fy_limits_stats st;
    fy_limits_get_stats(b->limits, &st);
    gauge(out, "ferry_limits_max_connections",
          "Connections allowed open at once (max_connections, automatic resolved).",
          (double)st.max_connections);
    gauge(out, "ferry_limits_open_connections",
          "Connections counted against max_connections, all protocols.", (double)st.open);
    head(out, "ferry_limits_refused_total", "counter",
         "Connections and subscriptions refused by a limit, by reason and protocol.");
    for (int p = 0; p < FY_LIMIT_NPROTO; p++) {
        evbuffer_add_printf(
            out,
            "ferry_limits_refused_total{reason=\"max_connections\",protocol=\"%s\"} "
            "%" PRIu64 "\n",
            protos[p], st.refused_connections[p]);
        evbuffer_add_printf(
            out,
            "ferry_limits_refused_total{reason=\"max_connect_rate\",protocol=\"%s\"} "
            "%" PRIu64 "\n",
            protos[p], st.refused_rate[p]);
        evbuffer_add_printf(
            out,
            "ferry_limits_refused_total{reason=\"max_subscriptions\",protocol=\"%s\"} %" PRIu64
            "\n",
            protos[p], st.refused_subscriptions[p]);
    }
}

/* ---- Groups --------------------------------------------------------------------------------- */

typedef struct lag_acc {
    const char *topics[64]; /* the topics of one group, with their summed lag */
    uint64_t lag[64];
    size_t n;
} lag_acc;

static void lag_member(void *arg, const fy_group_member_info *m)
{
}

static void lag_queue(void *arg, const fy_group_queue_info *q)
{
    lag_acc *a = arg;
    uint64_t lag = q->max_offset > q->committed ? q->max_offset - q->committed : 0;
    size_t i;
    for (i = 0; i < a->n; i++) {
        if (strcmp(a->topics[i], q->topic) == 0) {
            break;
        }
    }
    if (i == a->n) {
        if (a->n == 64) {
            return; /* a group on more topics than that is not shown in full */
        }
        a->topics[a->n] = q->topic;
        a->lag[a->n++] = 0;
    }
    a->lag[i] += lag;
}

typedef struct group_pass {
    fy_broker *b;
    struct evbuffer *out;
    bool members;
} group_pass;

static void group_series(void *arg, const char *name, fy_sub_mode mode, uint32_t members)
{
    group_pass *p = arg;
    lag_acc a;
    fy_sub_mode m;
    if (p->members) {
        evbuffer_add(p->out, "ferry_group_members{group=\"", 27);
        put_label(p->out, name);
        evbuffer_add_printf(p->out, "\"} %u\n", members);
        return;
    }
    a.n = 0;
    if (fy_core_group_describe(p->b->core, name, &m, lag_member, lag_queue, &a) != 0) {
        return;
    }
    for (size_t i = 0; i < a.n; i++) {
        evbuffer_add(p->out, "ferry_group_lag{group=\"", 23);
        put_label(p->out, name);
        evbuffer_add(p->out, "\",topic=\"", 9);
        put_label(p->out, a.topics[i]);
        evbuffer_add_printf(p->out, "\"} %" PRIu64 "\n", a.lag[i]);
    }
}

static void render_groups(fy_broker *b, struct evbuffer *out)
{
    group_pass p = {b, out, false};
    head(out, "ferry_group_lag", "gauge",
         "Messages stored and not yet committed by a consumer group, summed over a topic's "
         "queues.");
    fy_core_group_each(b->core, group_series, &p);
    p.members = true;
    head(out, "ferry_group_members", "gauge", "Members of a consumer group online now.");
    fy_core_group_each(b->core, group_series, &p);
}

/* ---- Store ---------------------------------------------------------------------------------- */

/* A histogram from per-bucket counts (the last past the highest bound); bounds scaled by div
 * (microseconds to seconds: 1e6). */
static void histogram(struct evbuffer *out, const char *name, const char *help,
                      const uint64_t *bounds, const uint64_t *counts, size_t n, double div,
                      double sum)
{
    uint64_t cum = 0;
    head(out, name, "histogram", help);
    for (size_t i = 0; i < n; i++) {
        cum += counts[i];
        evbuffer_add_printf(out, "%s_bucket{le=\"%.6g\"} %" PRIu64 "\n", name,
                            (double)bounds[i] / div, cum);
    }
    cum += counts[n];
    evbuffer_add_printf(out, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
    evbuffer_add_printf(out, "%s_sum %.17g\n%s_count %" PRIu64 "\n", name, sum, name, cum);
}

static void render_store(fy_broker *b, struct evbuffer *out)
{
    static const uint64_t lat[] = FY_STORE_LAT_BOUNDS_US;
    static const uint64_t batch[] = FY_STORE_BATCH_BOUNDS;
    fy_store_stats st;
    fy_store_counts counts;
    uint64_t commit_count = 0;
    fy_store_get_stats(b->store, &st);
    for (size_t i = 0; i <= FY_STORE_LAT_BUCKETS; i++) {
        commit_count += st.commit_us[i];
    }
    histogram(out, "ferry_store_commit_seconds",
              "Time of one store commit (a LevelDB write of a group of batches).", lat,
              st.commit_us, FY_STORE_LAT_BUCKETS, 1e6,
              commit_count ? (double)st.commit_ns_total / 1e9 : 0);
    histogram(out, "ferry_store_commit_batch_messages",
              "Messages appended per store commit (group commit).", batch, st.batch_msgs,
              FY_STORE_BATCH_BUCKETS, 1, (double)st.appends);
    histogram(out, "ferry_store_fsync_seconds",
              "Time of a synced store commit (flush=sync only; empty under flush=async).", lat,
              st.fsync_us, FY_STORE_LAT_BUCKETS, 1e6, (double)st.fsync_ns_total / 1e9);
    counter(out, "ferry_store_commits_total", "Store commits (LevelDB writes).", st.commits);
    counter(out, "ferry_store_inline_commits_total",
            "Store commits written on the event loop while the writer thread was idle.",
            st.inline_commits);
    counter(out, "ferry_store_inline_slow_total", "Inline store commits that took over 500 us.",
            st.inline_slow);
    counter(out, "ferry_store_inline_paused_total",
            "Slow inline commits that slept in LevelDB or the disk; each leaves writes to the "
            "writer thread for a second.",
            st.inline_paused);
    counter(out, "ferry_store_appends_total", "Messages written to the store.", st.appends);
    counter(out, "ferry_store_written_bytes_total", "Bytes written to the store.", st.bytes);
    counter(out, "ferry_store_failed_batches_total", "Store batches that failed.", st.failed);
    counter(out, "ferry_store_deletes_total",
            "Keys deleted by completed store writes (LevelDB tombstones, kept until compacted).",
            st.deletes);
    gauge(out, "ferry_store_pending_batches", "Store batches queued or being written.",
          (double)st.pending);
    fy_store_get_counts(b->store, &counts);
    gauge(out, "ferry_store_queues",
          "Queues the store keeps an offset range for in memory (each topic's queues written to).",
          (double)counts.queues);
    gauge(
        out, "ferry_store_erasing_topics",
        "Deleted topics whose messages the store is still deleting (in chunks, in the background).",
        (double)counts.erasing);
    gauge(out, "ferry_store_healthy", "1 while the store accepts writes, 0 after a failure.",
          fy_store_healthy(b->store) ? 1 : 0);
    counter(out, "ferry_store_write_errors_total",
            "Store writes that failed (disk full, I/O error); each makes the store unhealthy.",
            st.write_errors);
    counter(out, "ferry_store_recoveries_total",
            "Times the store reopened its database after a failed write and took writes again.",
            st.recoveries);
}

/* ---- Core and process ----------------------------------------------------------------------- */

uint64_t fy_metrics_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, rss = 0;
    if (!f) {
        return 0;
    }
    if (fscanf(f, "%llu %llu", &size, &rss) != 2) {
        rss = 0;
    }
    fclose(f);
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void render_core(fy_broker *b, struct evbuffer *out)
{
    fy_core_stats cs;
    fy_core_get_stats(b->core, &cs);
    gauge(out, "ferry_topics", "Topics, internal ones (%RETRY%, %DLQ%, %LQ%) included.",
          (double)cs.topics);
    gauge(out, "ferry_groups", "Consumer groups known.", (double)cs.groups);
    gauge(out, "ferry_delayed_messages_pending",
          "Messages waiting for their time (delayed messages and retries).",
          (double)cs.delayed_pending);
    gauge(out, "ferry_half_messages_pending",
          "Transactional half messages waiting for commit or rollback.", (double)cs.tx_pending);
    counter(out, "ferry_retries_total", "Failed deliveries sent to a %RETRY% topic.", cs.retries);
    counter(out, "ferry_dead_letters_total", "Messages sent to a %DLQ% topic.", cs.dead_letters);
    counter(out, "ferry_transactions_committed_total", "Transactions committed.", cs.tx_commits);
    counter(out, "ferry_transactions_rolled_back_total", "Transactions rolled back.",
            cs.tx_rollbacks);
    counter(out, "ferry_retention_deleted_messages_total", "Messages deleted by retention.",
            cs.retention_deleted);
}

void fy_metrics_render(fy_broker *b, const fy_metrics_loop *loop, struct evbuffer *out)
{
    head(out, "ferry_build_info", "gauge", "Always 1; the version as a label.");
    evbuffer_add_printf(out, "ferry_build_info{version=\"%s\"} 1\n", FERRY_VERSION);
    gauge(out, "ferry_uptime_seconds", "Seconds since ferryd started.",
          (double)(fy_mono_ms() - b->started_mono_ms) / 1000.0);
    render_topics(b, out);
    render_connections(b, out);
    render_limits(b, out);
    gauge(out, "ferry_auth_pending",
          "Password checks waiting for or running on the auth worker thread (auth_max_pending).",
          (double)fy_auth_pending(b->auth));
    counter(out, "ferry_auth_busy_total",
            "Logins refused as server busy: auth_max_pending checks were pending.",
            fy_auth_busy_refusals(b->auth));
    counter(out, "ferry_auth_checks_total",
            "Full password checks (PBKDF2) done; remembered passwords need none.",
            fy_auth_checks(b->auth));
    render_groups(b, out);
    render_core(b, out);
    render_store(b, out);
    gauge(out, "ferry_event_loop_lag_seconds",
          "How late the last 250 ms timer of the event loop fired.", loop->lag_s);
    gauge(out, "ferry_event_loop_lag_max_seconds",
          "The latest a 250 ms timer of the event loop fired since the previous scrape.",
          loop->lag_max_s);
    gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
          (double)fy_metrics_rss_bytes());
    gauge(out, "process_start_time_seconds", "Start time of the process since the epoch.",
          (double)b->started_wall_ms / 1000.0);
}
