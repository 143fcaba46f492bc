/* SPDX-License-Identifier: Apache-2.0 */
/* Connection counting, per-address connect-rate buckets and the [limits] section. The buckets
 * live in one open-addressing map keyed by the address (IPv4 as is, IPv6 folded to 64 bits);
 * a bucket is one uint64: the last refill time (32 bits of mono ms) and the tokens left (in
 * thousandths). Full buckets are swept when the map grows, so it stays as small as the set of
 * addresses connecting right now. */
#include "broker/limits.h"

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/u64map.h"

#include "ferry/errors.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define LOG_INTERVAL_MS 10000 /* refusals are summed up in one log line this often */
#define SWEEP_AT 4096         /* buckets before full ones are swept (at least) */

#define C fy_limits_config
static const fy_config_key limits_keys[] = {
    FY_CONFIG_KEY_UINT("max_connections", C, max_connections, "0", 0, 10000000,
                       "Open connections, all protocols together; 0 = the descriptor limit less "
                       "1100 kept for the store."),
    FY_CONFIG_KEY_UINT("max_connect_rate", C, max_connect_rate, "100", 0, 1000000,
                       "New connections per second from one source address; 0 = no limit."),
    FY_CONFIG_KEY_UINT("connect_burst", C, connect_burst, "200", 1, 1000000,
                       "Connections one address may open at once before max_connect_rate "
                       "applies."),
    FY_CONFIG_KEY_UINT("max_subscriptions", C, max_subscriptions, "1000", 0, 10000000,
                       "Subscriptions one MQTT session or native connection may hold; 0 = no "
                       "limit."),
    FY_CONFIG_KEY_SIZE("max_queued_bytes", C, max_queued_bytes, "1MiB", 64 * 1024, 1ULL << 40,
                       "Output queued for a client that does not read before deliveries to it "
                       "pause."),
};
#undef C

int fy_limits_config_register(fy_config *cfg, fy_limits_config *lc)
{
    return fy_config_add_section(cfg, "limits", limits_keys,
                                 sizeof(limits_keys) / sizeof(limits_keys[0]), lc);
}

struct fy_limits {
    const fy_limits_config *cfg;
    uint64_t max_connections;
    uint64_t open;
    uint64_t refusing;
    fy_u64map buckets;
    size_t sweep_at; /* the next sweep: twice what the last one left, so sweeps stay amortized */
    uint64_t burst_milli; /* a full bucket */
    /* refusals since the last log line */
    uint64_t log_at;
    uint64_t since_conns, since_rate;
    char last_peer[64];
    fy_limits_stats stats;
};

uint64_t fy_limits_raise_nofile(void)
{
    struct rlimit rl;
    rlim_t was;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = was;
        }
    }
    fy_log(INFO, "limits", "nofile_soft=%llu nofile_hard=%llu was=%llu msg=\"descriptor limit\"",
           (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
           (unsigned long long)was);
    return (uint64_t)rl.rlim_cur;
}

fy_limits *fy_limits_new(const fy_limits_config *cfg, uint64_t nofile)
{
    fy_limits *l = FY_NEW(fy_limits);
    l->cfg = cfg;
    l->max_connections = cfg->max_connections;
    if (l->max_connections == 0) {
        l->max_connections = nofile > FY_LIMITS_FD_RESERVE + 16 ? nofile - FY_LIMITS_FD_RESERVE
                             : nofile > 32                      ? nofile / 2
                                                                : 16;
    }
    l->burst_milli = cfg->connect_burst * 1000;
    l->sweep_at = SWEEP_AT;
    l->stats.max_connections = l->max_connections;
    fy_log(INFO, "limits",
           "max_connections=%llu max_connect_rate=%llu connect_burst=%llu max_subscriptions=%llu "
           "max_queued_bytes=%llu msg=\"limits\"",
           (unsigned long long)l->max_connections, (unsigned long long)cfg->max_connect_rate,
           (unsigned long long)cfg->connect_burst, (unsigned long long)cfg->max_subscriptions,
           (unsigned long long)cfg->max_queued_bytes);
    return l;
}

void fy_limits_free(fy_limits *l)
{
    if (!l) {
        return;
    }
    fy_u64map_free(&l->buckets);
    fy_free(l);
}

static uint64_t addr_key(const struct sockaddr *sa, char *peer, size_t peerlen)
{
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        uint32_t a = ntohl(in->sin_addr.s_addr);
        snprintf(peer, peerlen, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
        return a;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        uint64_t hi, lo;
        memcpy(&hi, in6->sin6_addr.s6_addr, 8);
        memcpy(&lo, in6->sin6_addr.s6_addr + 8, 8);
        snprintf(peer, peerlen, "ipv6");
        /* FNV-style fold; the top bit keeps it apart from IPv4 keys */
        return ((hi * 0x100000001b3ULL) ^ lo) | (1ULL << 63);
    }
    snprintf(peer, peerlen, "?");
    return UINT64_MAX;
}

/* Refills bucket *v to now; returns its tokens in thousandths. */
static uint64_t refill(const fy_limits *l, uint64_t *v, uint32_t now)
{
    uint32_t last = (uint32_t)(*v >> 32);
    uint64_t tokens = *v & 0xffffffffULL;
    uint64_t add = (uint64_t)(uint32_t)(now - last) * l->cfg->max_connect_rate; /* ms * rate */
    tokens = tokens + add >= l->burst_milli ? l->burst_milli : tokens + add;
    *v = ((uint64_t)now << 32) | tokens;
    return tokens;
}

typedef struct sweep_ctx {
    const fy_limits *l;
    uint32_t now;
} sweep_ctx;

static bool is_full(void *arg, uint64_t key, uint64_t val)
{
    sweep_ctx *x = arg;
    return refill(x->l, &val, x->now) >= x->l->burst_milli;
}

/* Forgets the addresses whose bucket has filled up again: they look like new ones. */
static void sweep(fy_limits *l, uint32_t now)
{
    sweep_ctx x = {l, now};
    fy_u64map_del_if(&l->buckets, is_full, &x);
    l->sweep_at = l->buckets.n * 2 > SWEEP_AT ? l->buckets.n * 2 : SWEEP_AT;
}

/* Takes a token from the address's bucket: false if it has none. */
static bool rate_take(fy_limits *l, uint64_t key)
{
    uint32_t now = (uint32_t)fy_mono_ms();
    uint64_t *v;
    if (l->cfg->max_connect_rate == 0 || key == UINT64_MAX) {
        return true;
    }
    if (l->buckets.n >= l->sweep_at && fy_u64map_find(&l->buckets, key) == NULL) {
        sweep(l, now);
    }
    v = fy_u64map_upsert(&l->buckets, key, ((uint64_t)now << 32) | l->burst_milli);
    if (refill(l, v, now) < 1000) {
        return false;
    }
    *v -= 1000;
    return true;
}

static void log_refusal(fy_limits *l, const char *peer)
{
    uint64_t now = fy_mono_ms();
    snprintf(l->last_peer, sizeof(l->last_peer), "%s", peer);
    if (l->log_at != 0 && now < l->log_at) {
        return;
    }
    fy_log(WARN, "limits",
           "refused_max_connections=%llu refused_connect_rate=%llu last_peer=%s open=%llu "
           "max_connections=%llu max_connect_rate=%llu msg=\"connections refused (logged once "
           "per 10 s)\"",
           (unsigned long long)l->since_conns, (unsigned long long)l->since_rate, l->last_peer,
           (unsigned long long)l->open, (unsigned long long)l->max_connections,
           (unsigned long long)l->cfg->max_connect_rate);
    l->since_conns = l->since_rate = 0;
    l->log_at = now + LOG_INTERVAL_MS;
}

fy_limit_verdict fy_limits_accept(fy_limits *l, fy_limit_proto proto, const struct sockaddr *sa)
{
    char peer[64];
    uint64_t key;
    if (!l) {
        return FY_LIMIT_ADMIT;
    }
    key = addr_key(sa, peer, sizeof(peer));
    if (!rate_take(l, key)) {
        l->stats.refused_rate[proto]++;
        l->since_rate++;
        log_refusal(l, peer);
        return FY_LIMIT_DROP;
    }
    if (l->open >= l->max_connections) {
        l->stats.refused_connections[proto]++;
        l->since_conns++;
        log_refusal(l, peer);
        if (l->refusing >= FY_LIMITS_MAX_REFUSING) {
            return FY_LIMIT_DROP;
        }
        l->refusing++;
        return FY_LIMIT_REFUSE;
    }
    l->open++;
    return FY_LIMIT_ADMIT;
}

void fy_limits_release(fy_limits *l, fy_limit_verdict v)
{
    if (!l) {
        return;
    }
    if (v == FY_LIMIT_ADMIT && l->open > 0) {
        l->open--;
    } else if (v == FY_LIMIT_REFUSE && l->refusing > 0) {
        l->refusing--;
    }
}

uint32_t fy_limits_max_subscriptions(const fy_limits *l)
{
    return l ? (uint32_t)l->cfg->max_subscriptions : 0;
}

uint64_t fy_limits_max_queued_bytes(const fy_limits *l)
{
    return l ? l->cfg->max_queued_bytes : (1u << 20);
}

uint64_t fy_limits_max_connections(const fy_limits *l)
{
    return l ? l->max_connections : 0;
}

void fy_limits_count_subscription_refused(fy_limits *l, fy_limit_proto proto)
{
    if (l) {
        l->stats.refused_subscriptions[proto]++;
    }
}

void fy_limits_get_stats(const fy_limits *l, fy_limits_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!l) {
        return;
    }
    *out = l->stats;
    out->open = l->open;
    out->rate_addresses = l->buckets.n;
}
