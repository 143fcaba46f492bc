/* SPDX-License-Identifier: Apache-2.0 */
/* Configuration as data: each section (the top level, [native], [mqtt], ...) is a static table
 * of keys {name, type, offset, default, doc} over a struct. Defaults and the file's values go
 * through one parser; unknown sections and keys, duplicates and bad values are errors with file
 * and line. The broker registers its sections here; each protocol adapter registers its own. */
#ifndef FERRY_BROKER_CONFIG_H
#define FERRY_BROKER_CONFIG_H

#include "broker/tls.h"
#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How a value is written and where it is stored (the field at `offset` in the section's struct).
 * Every integer is stored as uint64_t; the FY_CONFIG_KEY_* macros check the field's type. */
typedef enum fy_config_type {
    FY_CONFIG_T_BOOL,     /* bool: true/false, yes/no, on/off */
    FY_CONFIG_T_UINT,     /* uint64_t: decimal, min..max */
    FY_CONFIG_T_SIZE,     /* uint64_t bytes: 512, 512B, 4K, 4KiB, M, MiB, G, GiB, T, TiB (x1024) */
    FY_CONFIG_T_DURATION, /* uint64_t milliseconds: 250ms, 30s, 5m, 72h, 40d; a bare 0 only */
    FY_CONFIG_T_STRING,   /* char *, owned by the config (freed by fy_config_free) */
    FY_CONFIG_T_ENUM      /* int: index of the value in `choices` */
} fy_config_type;

/* One key of a section. Tables are static and outlive every fy_config that uses them. */
typedef struct fy_config_key {
    const char *name;
    fy_config_type type;
    size_t offset;              /* of the field in the section's struct */
    const char *dflt;           /* default, in the file's syntax; parsed like a file value */
    const char *doc;            /* one line: what the key does (the comment in ferry.conf) */
    const char *const *choices; /* ENUM only: the allowed values, NULL-terminated */
    uint64_t min, max;          /* UINT, SIZE, DURATION: inclusive range (bytes, ms) */
} fy_config_key;

/* A registered section. name "" is the top level (keys before any [section] header). */
typedef struct fy_config_section {
    const char *name;
    const fy_config_key *keys;
    size_t nkeys;
    void *base; /* the struct the keys' offsets point into */
} fy_config_section;

/* Offset of T.field, failing to compile ("negative array size") unless field has type ctype. */
#define FY_CONFIG_FIELD_(T, field, ctype)                                                          \
    (offsetof(T, field) + 0 * sizeof(char[_Generic(((T *)0)->field, ctype : 1, default : -1)]))

/* Table entries: FY_CONFIG_KEY_UINT("port", fy_listen_config, port, "1883", 0, 65535, "..."). */
#define FY_CONFIG_KEY_BOOL(name, T, field, dflt, doc)                                              \
    {                                                                                              \
        name, FY_CONFIG_T_BOOL, FY_CONFIG_FIELD_(T, field, bool), dflt, doc, NULL, 0, 0            \
    }
#define FY_CONFIG_KEY_UINT(name, T, field, dflt, min, max, doc)                                    \
    {                                                                                              \
        name, FY_CONFIG_T_UINT, FY_CONFIG_FIELD_(T, field, uint64_t), dflt, doc, NULL, min, max    \
    }
#define FY_CONFIG_KEY_SIZE(name, T, field, dflt, min, max, doc)                                    \
    {                                                                                              \
        name, FY_CONFIG_T_SIZE, FY_CONFIG_FIELD_(T, field, uint64_t), dflt, doc, NULL, min, max    \
    }
#define FY_CONFIG_KEY_DURATION(name, T, field, dflt, min, max, doc)                                \
    {                                                                                              \
        name, FY_CONFIG_T_DURATION, FY_CONFIG_FIELD_(T, field, uint64_t), dflt, doc, NULL, min,    \
            max                                                                                    \
    }
#define FY_CONFIG_KEY_STRING(name, T, field, dflt, doc)                                            \
    {                                                                                              \
        name, FY_CONFIG_T_STRING, FY_CONFIG_FIELD_(T, field, char *), dflt, doc, NULL, 0, 0        \
    }
#define FY_CONFIG_KEY_ENUM(name, T, field, dflt, choices, doc)                                     \
    {                                                                                              \
        name, FY_CONFIG_T_ENUM, FY_CONFIG_FIELD_(T, field, int), dflt, doc, choices, 0, 0          \
    }

#define FY_KiB ((uint64_t)1024)
#define FY_MiB (FY_KiB * 1024)
#define FY_GiB (FY_MiB * 1024)

typedef struct fy_config fy_config;

/* An empty configuration (no sections). Aborts on OOM. */
fy_config *fy_config_new(void);

/* Frees cfg and every string value it stored into the registered structs (those fields are
 * set to NULL). The structs themselves belong to the caller and may be freed afterwards.
 * NULL-safe. */
void fy_config_free(fy_config *cfg);

/* Registers a section: `name` ("" = top level), its key table and the struct the keys point
 * into. Applies every default to `base` now (its previous contents are overwritten, not freed).
 * name, keys and base are borrowed and must outlive cfg. Returns FY_OK, -FY_EEXIST if a
 * section of that name is registered, or -FY_EINVAL for a bad table (bad or duplicate key
 * name, missing default or doc, default that does not parse or is out of range); the reason
 * is logged and nothing is applied. */
int fy_config_add_section(fy_config *cfg, const char *name, const fy_config_key *keys, size_t n,
                          void *base);

/* Loads a file of `key value` lines, `[section]` headers and `#` comment lines. Either every
 * value is applied or, on error, none is. Returns FY_OK; -FY_EIO if the file cannot be read;
 * -FY_EINVAL for a bad line. On error one line is written to err (if errlen > 0), e.g.
 * "ferry.conf:12: unknown key 'foo' in section [mqtt]". */
int fy_config_load_file(fy_config *cfg, const char *path, char *err, size_t errlen);

/* Same as fy_config_load_file on `len` bytes of text (which may hold NUL bytes: an error) or on
 * a NUL-terminated string; `origin` names it in error messages (NULL = "<string>"). */
int fy_config_load_mem(fy_config *cfg, const char *text, size_t len, const char *origin, char *err,
                       size_t errlen);
int fy_config_load_string(fy_config *cfg, const char *text, const char *origin, char *err,
                          size_t errlen);

/* Sets one key (section NULL or "" = top level) from text in the file's syntax, e.g. a command
 * line override. Returns FY_OK or -FY_EINVAL with one line in err (no file:line prefix),
 * e.g. "bad value '70000' for key 'port': expected 0..65535"; on error nothing changes. */
int fy_config_set(fy_config *cfg, const char *section, const char *key, const char *value,
                  char *err, size_t errlen);

/* Appends the canonical text of one value to out (4MiB, 3d, true, async, ./data); loading that
 * text gives the same value. Returns FY_OK or -FY_ENOTFOUND. */
int fy_config_get(const fy_config *cfg, const char *section, const char *key, fy_buf *out);

/* Appends the effective configuration to out as `key value` lines, the top level first, then a
 * `[name]` header per section in registration order. The text loads back to the same values.
 * Returns FY_OK. */
int fy_config_format(const fy_config *cfg, fy_buf *out);

/* Registered sections, in registration order; section_at returns NULL past the end. The
 * pointer is valid until the next fy_config_add_section. */
size_t fy_config_section_count(const fy_config *cfg);
const fy_config_section *fy_config_section_at(const fy_config *cfg, size_t i);

/* ---- The broker's own sections --------------------------------------------------------- */

/* [native] and [admin]: a TCP listener. */
typedef struct fy_listen_config {
    char *listen;              /* address to listen on */
    uint64_t port;             /* 0..65535; 0 = pick a free port */
    uint64_t hello_timeout_ms; /* [native] only: HELLO must arrive within this */
    uint64_t tls_port;         /* [native] only: its TLS listener, when [tls] certfile is set */
    bool tls;                  /* [admin] only: HTTPS instead of HTTP, when [tls] certfile is set */
} fy_listen_config;

/* [limits] (broker/limits.h): what one client, or one address, may take from the broker. */
typedef struct fy_limits_config {
    uint64_t max_connections;   /* all protocols together; 0 = automatic (descriptor limit) */
    uint64_t max_connect_rate;  /* new connections per second per source address; 0 = no limit */
    uint64_t connect_burst;     /* connections an address may open at once (bucket size) */
    uint64_t max_subscriptions; /* per client (MQTT session, native connection); 0 = no limit */
    uint64_t max_queued_bytes;  /* output held for one client before its deliveries pause */
} fy_limits_config;

/* allow_anonymous: auto allows anonymous clients only when every listener binds a loopback
 * address and no password_file is set; a non-loopback listener without a password_file then
 * refuses to start (broker/main.c). */
typedef enum fy_anon { FY_ANON_AUTO = 0, FY_ANON_TRUE = 1, FY_ANON_FALSE = 2 } fy_anon;

typedef struct fy_broker_config {
    char *data_dir;
    int flush;      /* an fy_flush (store/store.h): FY_FLUSH_ASYNC or FY_FLUSH_SYNC */
    int log_level;  /* an fy_log_level (common/log.h): FY_LOG_DEBUG .. FY_LOG_ERROR */
    char *log_file; /* "stderr" or a path */
    bool auto_create_topics;
    uint64_t default_queues;   /* 1..1024 */
    uint64_t max_message_size; /* bytes, 1KiB..256MiB */
    uint64_t retention_ms;     /* 0 = keep forever */
    uint64_t retention_bytes;  /* 0 = unlimited */
    uint64_t retention_interval_ms;
    uint64_t ack_timeout_ms;
    uint64_t max_reconsume; /* 0..64 */
    uint64_t max_delay_ms;
    char *delay_levels; /* "1s 5s ... 2h": parsed by the core */
    char *retry_delays; /* "10s 30s ... 2h": parsed by the core */
    uint64_t orderly_suspend_ms;
    uint64_t tx_check_after_ms;
    uint64_t tx_check_interval_ms;
    uint64_t tx_max_checks;
    uint64_t store_cache_size;   /* bytes */
    uint64_t store_write_buffer; /* bytes */
    uint64_t store_max_commit;   /* bytes */
    char *password_file;         /* "none" = no users */
    char *acl_file;              /* "none" = no rules */
    int allow_anonymous;         /* an fy_anon */
    uint64_t auth_max_pending;   /* password checks queued or running on the worker */
    uint64_t broker_id;          /* 0..65535 */
    fy_listen_config native;
    fy_listen_config admin;
    fy_limits_config limits;
    fy_tls_config tls; /* [tls] (broker/tls.h) */
} fy_broker_config;

/* Registers the broker's sections (top level, [native], [admin], [tls]) over bc and
 * applies their defaults. bc must outlive cfg; its strings are freed by fy_config_free.
 * Returns FY_OK, or the error of fy_config_add_section (a section already registered). */
int fy_broker_config_register(fy_config *cfg, fy_broker_config *bc);

#endif
