/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration parser (key tables, `key value` files, command-line overrides, the
 * canonical text of values) and the broker's own key tables. A load is staged: every line is
 * parsed and checked first, and the values are stored only if the whole text is good. */
#include "broker/config.h"

#include "broker/limits.h"
#include "common/alloc.h"
#include "common/log.h"
#include "store/store.h"

#include "ferry/errors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Files larger than this are refused rather than read (a config file is a few KiB). */
#define CFG_MAX_FILE (16u * 1024 * 1024)
/* Longest excerpt of a bad value or name quoted in an error message. */
#define CFG_QUOTE_MAX 64

struct fy_config {
    fy_config_section *sections;
    size_t nsections;
    size_t cap;
};

/* A parsed value before it is stored into a section's struct. */
typedef union cfg_value {
    bool b;
    uint64_t u;
    int e;
    char *s; /* owned until stored */
} cfg_value;

/* Where errors go and how they are prefixed: "origin:line: " when origin is set. */
typedef struct cfg_ctx {
    const char *origin;
    size_t line;
    char *err;
    size_t errlen;
} cfg_ctx;

/* A value parsed from a file, waiting for the rest of the file to be checked. */
typedef struct cfg_pending {
    size_t sec;
    size_t key;
    size_t line;
    cfg_value v;
} cfg_pending;

typedef struct cfg_stage {
    cfg_pending *v;
    size_t n;
    size_t cap;
} cfg_stage;

typedef struct cfg_unit {
    const char *name;
    uint64_t mult;
} cfg_unit;

/* Sizes: a bare number is bytes. Format picks the largest exact unit of the *iB forms. */
static const cfg_unit size_units[] = {
    {"B", 1},      {"K", FY_KiB},   {"KiB", FY_KiB},      {"M", FY_MiB},          {"MiB", FY_MiB},
    {"G", FY_GiB}, {"GiB", FY_GiB}, {"T", FY_GiB * 1024}, {"TiB", FY_GiB * 1024},
};
static const cfg_unit size_fmt_units[] = {
    {"TiB", FY_GiB * 1024}, {"GiB", FY_GiB}, {"MiB", FY_MiB}, {"KiB", FY_KiB}, {"B", 1}};

/* Durations, in milliseconds. A bare number is allowed only for 0. */
static const cfg_unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
};
static const cfg_unit duration_fmt_units[] = {
    {"d", 86400 * 1000}, {"h", 3600 * 1000}, {"m", 60 * 1000}, {"s", 1000}, {"ms", 1}};

static const char *const bool_true[] = {"true", "yes", "on"};
static const char *const bool_false[] = {"false", "no", "off"};

#define CFG_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Small helpers ----------------------------------------------------------------------- */

static void cfg_error(const cfg_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cfg_error(const cfg_ctx *c, const char *fmt, ...)
{
    if (!c->err || c->errlen == 0) {
        return;
    }
    size_t off = 0;
    if (c->origin) {
        int n = snprintf(c->err, c->errlen, "%s:%zu: ", c->origin, c->line);
        off = n < 0 ? 0 : (size_t)n;
        if (off >= c->errlen) {
            return;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + off, c->errlen - off, fmt, ap);
    va_end(ap);
}

static bool cfg_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

static bool cfg_is_control(unsigned char ch)
{
    return (ch < 0x20 && ch != '\t') || ch == 0x7f;
}

/* Trims spaces, tabs and CRs at both ends of p[0..*n). */
static const char *cfg_trim(const char *p, size_t *n)
{
    while (*n > 0 && cfg_is_space(p[0])) {
        p++;
        (*n)--;
    }
    while (*n > 0 && cfg_is_space(p[*n - 1])) {
        (*n)--;
    }
    return p;
}

/* Copies p[0..n) into q for an error message: control bytes become '?', and text longer than
 * CFG_QUOTE_MAX is cut (at a UTF-8 character boundary) and ends with "...". */
static const char *cfg_quote(char q[CFG_QUOTE_MAX + 4], const char *p, size_t n)
{
    size_t take = n;
    if (take > CFG_QUOTE_MAX) {
        take = CFG_QUOTE_MAX;
        while (take > 0 && ((unsigned char)p[take] & 0xC0) == 0x80) {
            take--;
        }
    }
    for (size_t i = 0; i < take; i++) {
        q[i] = cfg_is_control((unsigned char)p[i]) || p[i] == '\t' ? '?' : p[i];
    }
    if (take < n) {
        memcpy(q + take, "...", 3);
        take += 3;
    }
    q[take] = '\0';
    return q;
}

static bool cfg_eq(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

/* " in section [x]" or " at top level", for messages. */
static void cfg_where(char *out, size_t n, const char *sec)
{
    if (sec[0] == '\0') {
        snprintf(out, n, "at top level");
    } else {
        char q[CFG_QUOTE_MAX + 4];
        snprintf(out, n, "in section [%s]", cfg_quote(q, sec, strlen(sec)));
    }
}

static size_t cfg_find_section(const fy_config *cfg, const char *p, size_t n)
{
    for (size_t i = 0; i < cfg->nsections; i++) {
        if (cfg_eq(p, n, cfg->sections[i].name)) {
            return i;
        }
    }
    return SIZE_MAX;
}

static size_t cfg_find_key(const fy_config_section *s, const char *p, size_t n)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        if (cfg_eq(p, n, s->keys[i].name)) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* ---- Values ------------------------------------------------------------------------------ */

/* Formats v of a numeric key as text that parses back to v (largest exact unit). */
static void cfg_fmt_number(fy_config_type type, uint64_t v, char *out, size_t n)
{
    const cfg_unit *units = NULL;
    size_t nunits = 0;
    if (type == FY_CONFIG_T_SIZE) {
        units = size_fmt_units;
        nunits = CFG_COUNT(size_fmt_units);
    } else if (type == FY_CONFIG_T_DURATION) {
        units = duration_fmt_units;
        nunits = CFG_COUNT(duration_fmt_units);
    }
    if (v == 0 || nunits == 0) {
        snprintf(out, n, "%" PRIu64, v);
        return;
    }
    for (size_t i = 0; i < nunits; i++) {
        if (v % units[i].mult == 0) {
            snprintf(out, n, "%" PRIu64 "%s", v / units[i].mult, units[i].name);
            return;
        }
    }
}

/* Reads the decimal digits at the start of p[0..n) into *out. Returns how many were read (0 if
 * none); *overflow is set if the number does not fit in 64 bits. */
static size_t cfg_digits(const char *p, size_t n, uint64_t *out, bool *overflow)
{
    uint64_t v = 0;
    size_t i = 0;
    *overflow = false;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            *overflow = true;
        } else {
            v = v * 10 + d;
        }
    }
    *out = v;
    return i;
}

static const char *cfg_kind(fy_config_type type)
{
    switch (type) {
    case FY_CONFIG_T_SIZE:
        return "size";
    case FY_CONFIG_T_DURATION:
        return "duration";
    case FY_CONFIG_T_UINT:
        return "number";
    default:
        return "value";
    }
}

/* Parses a number with an optional unit (UINT: none; SIZE, DURATION: their tables). */
static int cfg_parse_number(const fy_config_key *k, const char *p, size_t n, uint64_t *out,
                            const cfg_ctx *c)
{
    char q[CFG_QUOTE_MAX + 4];
    const char *kind = cfg_kind(k->type);
    uint64_t v;
    bool overflow;
    size_t i = cfg_digits(p, n, &v, &overflow);
    if (i == 0) {
        goto bad;
    }
    size_t u = i;
    while (u < n && (p[u] == ' ' || p[u] == '\t')) {
        u++;
    }
    const cfg_unit *units = NULL;
    size_t nunits = 0;
    if (k->type == FY_CONFIG_T_SIZE) {
        units = size_units;
        nunits = CFG_COUNT(size_units);
    } else if (k->type == FY_CONFIG_T_DURATION) {
        units = duration_units;
        nunits = CFG_COUNT(duration_units);
    }
    uint64_t mult = 1;
    if (u < n) {
        size_t j = 0;
        while (j < nunits && !cfg_eq(p + u, n - u, units[j].name)) {
            j++;
        }
        if (j == nunits) {
            goto bad;
        }
        mult = units[j].mult;
    } else if (i != n) {
        goto bad; /* trailing spaces cannot remain after trimming; be safe */
    } else if (k->type == FY_CONFIG_T_DURATION && v != 0) {
        cfg_error(c, "bad duration '%s' for key '%s': missing unit (ms, s, m, h or d)",
                  cfg_quote(q, p, n), k->name);
        return -FY_EINVAL;
    }
    if (overflow || v > UINT64_MAX / mult) {
        cfg_error(c, "bad %s '%s' for key '%s': too large", kind, cfg_quote(q, p, n), k->name);
        return -FY_EINVAL;
    }
    v *= mult;
    if (v < k->min || v > k->max) {
        char lo[32], hi[32];
        cfg_fmt_number(k->type, k->min, lo, sizeof(lo));
        cfg_fmt_number(k->type, k->max, hi, sizeof(hi));
        if (k->max == UINT64_MAX) {
            cfg_error(c, "bad value '%s' for key '%s': expected at least %s", cfg_quote(q, p, n),
                      k->name, lo);
        } else {
            cfg_error(c, "bad value '%s' for key '%s': expected %s..%s", cfg_quote(q, p, n),
                      k->name, lo, hi);
        }
        return -FY_EINVAL;
    }
    *out = v;
    return FY_OK;
bad:
    cfg_error(c, "bad %s '%s' for key '%s'", kind, cfg_quote(q, p, n), k->name);
    return -FY_EINVAL;
}

/* Writes "a, b, c" (the choices of an enum or the words of a bool) to out. */
static void cfg_list(char *out, size_t n, const char *const *words, size_t nwords)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < nwords && words[i] && off < n; i++) {
        int w = snprintf(out + off, n - off, "%s%s", i ? ", " : "", words[i]);
        off += w < 0 ? 0 : (size_t)w;
    }
}

static size_t cfg_nchoices(const fy_config_key *k)
{
    size_t n = 0;
    while (k->choices && k->choices[n]) {
        n++;
    }
    return n;
}

/* Parses p[0..n) (trimmed, not empty) as a value of k. On error writes err and returns
 * -FY_EINVAL; on success *out holds the value (a string is allocated). */
static int cfg_parse_value(const fy_config_key *k, const char *p, size_t n, cfg_value *out,
                           const cfg_ctx *c)
{
    char q[CFG_QUOTE_MAX + 4];
    char list[256];
    for (size_t i = 0; i < n; i++) {
        if (cfg_is_control((unsigned char)p[i])) {
            cfg_error(c, "bad value '%s' for key '%s': control character", cfg_quote(q, p, n),
                      k->name);
            return -FY_EINVAL;
        }
    }
    switch (k->type) {
    case FY_CONFIG_T_BOOL:
        for (size_t i = 0; i < CFG_COUNT(bool_true); i++) {
            if (cfg_eq(p, n, bool_true[i]) || cfg_eq(p, n, bool_false[i])) {
                out->b = cfg_eq(p, n, bool_true[i]);
                return FY_OK;
            }
        }
        cfg_error(c, "bad value '%s' for key '%s': expected one of true, false, yes, no, on, off",
                  cfg_quote(q, p, n), k->name);
        return -FY_EINVAL;
    case FY_CONFIG_T_UINT:
    case FY_CONFIG_T_SIZE:
    case FY_CONFIG_T_DURATION:
        return cfg_parse_number(k, p, n, &out->u, c);
    case FY_CONFIG_T_STRING:
        out->s = fy_strndup(p, n);
        return FY_OK;
    case FY_CONFIG_T_ENUM: {
        size_t nch = cfg_nchoices(k);
        for (size_t i = 0; i < nch; i++) {
            if (cfg_eq(p, n, k->choices[i])) {
                out->e = (int)i;
                return FY_OK;
            }
        }
        cfg_list(list, sizeof(list), k->choices, nch);
        cfg_error(c, "bad value '%s' for key '%s': expected one of %s", cfg_quote(q, p, n), k->name,
                  list);
        return -FY_EINVAL;
    }
    }
    cfg_error(c, "key '%s' has an unknown type", k->name);
    return -FY_EINVAL;
}

static void cfg_value_free(const fy_config_key *k, cfg_value *v)
{
    if (k->type == FY_CONFIG_T_STRING) {
        fy_free(v->s);
        v->s = NULL;
    }
}

/* Stores v into the field of k in s->base (taking a string). free_old: the field holds a
 * string this config owns. */
static void cfg_store(const fy_config_section *s, const fy_config_key *k, cfg_value v,
                      bool free_old)
{
    char *field = (char *)s->base + k->offset;
    switch (k->type) {
    case FY_CONFIG_T_BOOL:
        *(bool *)field = v.b;
        break;
    case FY_CONFIG_T_UINT:
    case FY_CONFIG_T_SIZE:
    case FY_CONFIG_T_DURATION:
        *(uint64_t *)field = v.u;
        break;
    case FY_CONFIG_T_STRING:
        if (free_old) {
            fy_free(*(char **)field);
        }
        *(char **)field = v.s;
        break;
    case FY_CONFIG_T_ENUM:
        *(int *)field = v.e;
        break;
    }
}

/* Appends the canonical text of k's value in s->base to out. */
static void cfg_format_value(const fy_config_section *s, const fy_config_key *k, fy_buf *out)
{
    const char *field = (const char *)s->base + k->offset;
    char num[32];
    const char *text = "";
    switch (k->type) {
    case FY_CONFIG_T_BOOL:
        text = *(const bool *)field ? "true" : "false";
        break;
    case FY_CONFIG_T_UINT:
    case FY_CONFIG_T_SIZE:
    case FY_CONFIG_T_DURATION:
        cfg_fmt_number(k->type, *(const uint64_t *)field, num, sizeof(num));
        text = num;
        break;
    case FY_CONFIG_T_STRING:
        text = *(char *const *)field ? *(char *const *)field : "";
        break;
    case FY_CONFIG_T_ENUM: {
        int e = *(const int *)field;
        text = e >= 0 && (size_t)e < cfg_nchoices(k) ? k->choices[e] : "";
        break;
    }
    }
    fy_buf_append(out, text, strlen(text));
}

/* ---- Sections ------------------------------------------------------------------------------ */

fy_config *fy_config_new(void)
{
    return FY_NEW(fy_config);
}

void fy_config_free(fy_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->nsections; i++) {
        const fy_config_section *s = &cfg->sections[i];
        for (size_t j = 0; j < s->nkeys; j++) {
            if (s->keys[j].type == FY_CONFIG_T_STRING) {
                char **field = (char **)((char *)s->base + s->keys[j].offset);
                fy_free(*field);
                *field = NULL;
            }
        }
    }
    fy_free(cfg->sections);
    fy_free(cfg);
}

/* A section or key name: letters, digits, '_', '-', '.'. */
static bool cfg_valid_name(const char *s)
{
    if (!s || !*s) {
        return false;
    }
    for (; *s; s++) {
        char ch = *s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.')) {
            return false;
        }
    }
    return true;
}

/* Checks one key of a table (not its default); logs and returns false if it is bad. */
static bool cfg_check_key(const char *sec, const fy_config_key *keys, size_t i)
{
    const fy_config_key *k = &keys[i];
    const char *why = NULL;
    if (!cfg_valid_name(k->name)) {
        why = "bad name";
    } else if (!k->dflt) {
        why = "no default";
    } else if (!k->doc || !*k->doc || strchr(k->doc, '\n')) {
        why = "doc must be one line";
    } else if (k->type > FY_CONFIG_T_ENUM) {
        why = "unknown type";
    } else if (k->type == FY_CONFIG_T_ENUM && cfg_nchoices(k) == 0) {
        why = "enum without choices";
    } else if (k->min > k->max && (k->type == FY_CONFIG_T_UINT || k->type == FY_CONFIG_T_SIZE ||
                                   k->type == FY_CONFIG_T_DURATION)) {
        why = "min > max";
    } else {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(keys[j].name, k->name) == 0) {
                why = "duplicate key";
            }
        }
    }
    if (why) {
        fy_log(ERROR, "config", "section=\"%s\" key=\"%s\" msg=\"bad key table: %s\"", sec,
               k->name ? k->name : "(null)", why);
        return false;
    }
    return true;
}

int fy_config_add_section(fy_config *cfg, const char *name, const fy_config_key *keys, size_t n,
                          void *base)
{
    if (!cfg || !name || (name[0] && !cfg_valid_name(name)) || (n > 0 && (!keys || !base))) {
        fy_log(ERROR, "config", "section=\"%s\" msg=\"bad section registration\"",
               name ? name : "(null)");
        return -FY_EINVAL;
    }
    if (cfg_find_section(cfg, name, strlen(name)) != SIZE_MAX) {
        fy_log(ERROR, "config", "section=\"%s\" msg=\"section registered twice\"", name);
        return -FY_EEXIST;
    }
    for (size_t i = 0; i < n; i++) {
        if (!cfg_check_key(name, keys, i)) {
            return -FY_EINVAL;
        }
    }

    /* Parse every default before storing any, so a bad table changes nothing. */
    fy_config_section s = {name, keys, n, base};
    cfg_value *vals = fy_calloc(n ? n : 1, sizeof(*vals));
    char err[256];
    cfg_ctx c = {NULL, 0, err, sizeof(err)};
    int rc = FY_OK;
    size_t parsed = 0;
    for (; parsed < n; parsed++) {
        const fy_config_key *k = &keys[parsed];
        size_t len = strlen(k->dflt);
        const char *p = cfg_trim(k->dflt, &len);
        if (len != strlen(k->dflt) || len == 0) {
            snprintf(err, sizeof(err), "default '%s' is empty or has spaces around it", k->dflt);
            rc = -FY_EINVAL;
        } else {
            rc = cfg_parse_value(k, p, len, &vals[parsed], &c);
        }
        if (rc != FY_OK) {
            fy_log(ERROR, "config", "section=\"%s\" key=\"%s\" msg=\"bad default: %s\"", name,
                   k->name, err);
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        cfg_store(&s, &keys[i], vals[i], false);
    }
    parsed = 0; /* the strings now belong to base */
    if (cfg->nsections == cfg->cap) {
        cfg->cap = cfg->cap ? cfg->cap * 2 : 8;
        cfg->sections = fy_realloc(cfg->sections, cfg->cap * sizeof(*cfg->sections));
    }
    cfg->sections[cfg->nsections++] = s;
out:
    for (size_t i = 0; i < parsed; i++) {
        cfg_value_free(&keys[i], &vals[i]);
    }
    fy_free(vals);
    return rc;
}

size_t fy_config_section_count(const fy_config *cfg)
{
    return cfg->nsections;
}

const fy_config_section *fy_config_section_at(const fy_config *cfg, size_t i)
{
    return i < cfg->nsections ? &cfg->sections[i] : NULL;
}

/* ---- Loading ------------------------------------------------------------------------------- */

/* Parser state across the lines of one text. */
typedef struct cfg_parse {
    fy_config *cfg;
    cfg_ctx c;
    size_t sec;          /* current section, SIZE_MAX when the top level is not registered */
    const char *secname; /* its name, for messages */
    cfg_stage stage;
} cfg_parse;

static int cfg_parse_header(cfg_parse *ps, const char *p, size_t n)
{
    char q[CFG_QUOTE_MAX + 4];
    if (n < 2 || p[n - 1] != ']') {
        goto bad;
    }
    size_t len = n - 2;
    const char *name = cfg_trim(p + 1, &len);
    if (len == 0 || memchr(name, '[', len) || memchr(name, ']', len)) {
        goto bad;
    }
    size_t i = cfg_find_section(ps->cfg, name, len);
    if (i == SIZE_MAX || ps->cfg->sections[i].name[0] == '\0') {
        cfg_error(&ps->c, "unknown section [%s]", cfg_quote(q, name, len));
        return -FY_EINVAL;
    }
    ps->sec = i;
    ps->secname = ps->cfg->sections[i].name;
    return FY_OK;
bad:
    cfg_error(&ps->c, "bad section header '%s'", cfg_quote(q, p, n));
    return -FY_EINVAL;
}

static int cfg_parse_key_line(cfg_parse *ps, const char *p, size_t n)
{
    char q[CFG_QUOTE_MAX + 4];
    char where[CFG_QUOTE_MAX + 32];
    size_t klen = 0;
    while (klen < n && p[klen] != ' ' && p[klen] != '\t') {
        klen++;
    }
    size_t vlen = n - klen;
    const char *v = cfg_trim(p + klen, &vlen);

    const fy_config_section *s = ps->sec == SIZE_MAX ? NULL : &ps->cfg->sections[ps->sec];
    size_t ki = s ? cfg_find_key(s, p, klen) : SIZE_MAX;
    if (ki == SIZE_MAX) {
        cfg_where(where, sizeof(where), ps->secname);
        cfg_error(&ps->c, "unknown key '%s' %s", cfg_quote(q, p, klen), where);
        return -FY_EINVAL;
    }
    const fy_config_key *k = &s->keys[ki];
    if (vlen == 0) {
        cfg_error(&ps->c, "missing value for key '%s'", k->name);
        return -FY_EINVAL;
    }
    cfg_stage *st = &ps->stage;
    for (size_t i = 0; i < st->n; i++) {
        if (st->v[i].sec == ps->sec && st->v[i].key == ki) {
            cfg_where(where, sizeof(where), ps->secname);
            cfg_error(&ps->c, "duplicate key '%s' %s (first at line %zu)", k->name, where,
                      st->v[i].line);
            return -FY_EINVAL;
        }
    }
    cfg_value val;
    int rc = cfg_parse_value(k, v, vlen, &val, &ps->c);
    if (rc != FY_OK) {
        return rc;
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->v = fy_realloc(st->v, st->cap * sizeof(*st->v));
    }
    st->v[st->n++] = (cfg_pending){ps->sec, ki, ps->c.line, val};
    return FY_OK;
}

static int cfg_parse_line(cfg_parse *ps, const char *p, size_t n)
{
    p = cfg_trim(p, &n);
    for (size_t i = 0; i < n; i++) {
        if (cfg_is_control((unsigned char)p[i])) {
            cfg_error(&ps->c, "control character 0x%02x in line", (unsigned char)p[i]);
            return -FY_EINVAL;
        }
    }
    if (n == 0 || p[0] == '#') {
        return FY_OK;
    }
    if (p[0] == '[') {
        return cfg_parse_header(ps, p, n);
    }
    return cfg_parse_key_line(ps, p, n);
}

int fy_config_load_mem(fy_config *cfg, const char *text, size_t len, const char *origin, char *err,
                       size_t errlen)
{
    cfg_parse ps = {cfg, {origin ? origin : "<string>", 0, err, errlen}, SIZE_MAX, "", {0}};
    ps.sec = cfg_find_section(cfg, "", 0);
    int rc = FY_OK;
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        pos = 3; /* a UTF-8 byte order mark, as some editors write */
    }
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        ps.c.line++;
        rc = cfg_parse_line(&ps, line, n);
        if (rc != FY_OK) {
            goto out;
        }
    }
    for (size_t i = 0; i < ps.stage.n; i++) {
        cfg_pending *pd = &ps.stage.v[i];
        const fy_config_section *s = &cfg->sections[pd->sec];
        cfg_store(s, &s->keys[pd->key], pd->v, true);
    }
    ps.stage.n = 0; /* stored: nothing left to free */
out:
    for (size_t i = 0; i < ps.stage.n; i++) {
        cfg_pending *pd = &ps.stage.v[i];
        cfg_value_free(&cfg->sections[pd->sec].keys[pd->key], &pd->v);
    }
    fy_free(ps.stage.v);
    return rc;
}

int fy_config_load_string(fy_config *cfg, const char *text, const char *origin, char *err,
                          size_t errlen)
{
    return fy_config_load_mem(cfg, text, strlen(text), origin, err, errlen);
}

int fy_config_load_file(fy_config *cfg, const char *path, char *err, size_t errlen)
{
    cfg_ctx c = {NULL, 0, err, errlen};
    fy_buf text = FY_BUF_INIT;
    int rc = FY_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        cfg_error(&c, "%s: cannot open: %s", path, strerror(errno));
        return -FY_EIO;
    }
    for (;;) {
        uint8_t *p = fy_buf_reserve(&text, 64 * 1024);
        size_t got = fread(p, 1, text.cap - text.len, f);
        text.len += got;
        if (text.len > CFG_MAX_FILE) {
            cfg_error(&c, "%s: file too large (more than %u bytes)", path, CFG_MAX_FILE);
            rc = -FY_EINVAL;
            goto out;
        }
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        cfg_error(&c, "%s: cannot read: %s", path, strerror(errno));
        rc = -FY_EIO;
        goto out;
    }
    rc = fy_config_load_mem(cfg, (const char *)text.data, text.len, path, err, errlen);
out:
    fclose(f);
    fy_buf_free(&text);
    return rc;
}

int fy_config_set(fy_config *cfg, const char *section, const char *key, const char *value,
                  char *err, size_t errlen)
{
    char q[CFG_QUOTE_MAX + 4];
    char where[CFG_QUOTE_MAX + 32];
    cfg_ctx c = {NULL, 0, err, errlen};
    if (!section) {
        section = "";
    }
    size_t si = cfg_find_section(cfg, section, strlen(section));
    if (si == SIZE_MAX && section[0] != '\0') {
        cfg_error(&c, "unknown section [%s]", cfg_quote(q, section, strlen(section)));
        return -FY_EINVAL;
    }
    const fy_config_section *s = si == SIZE_MAX ? NULL : &cfg->sections[si];
    size_t ki = s ? cfg_find_key(s, key, strlen(key)) : SIZE_MAX;
    if (ki == SIZE_MAX) {
        cfg_where(where, sizeof(where), section);
        cfg_error(&c, "unknown key '%s' %s", cfg_quote(q, key, strlen(key)), where);
        return -FY_EINVAL;
    }
    size_t n = value ? strlen(value) : 0;
    const char *v = value ? cfg_trim(value, &n) : "";
    if (n == 0) {
        cfg_error(&c, "missing value for key '%s'", s->keys[ki].name);
        return -FY_EINVAL;
    }
    cfg_value val;
    int rc = cfg_parse_value(&s->keys[ki], v, n, &val, &c);
    if (rc == FY_OK) {
        cfg_store(s, &s->keys[ki], val, true);
    }
    return rc;
}

/* ---- Output -------------------------------------------------------------------------------- */

int fy_config_get(const fy_config *cfg, const char *section, const char *key, fy_buf *out)
{
    if (!section) {
        section = "";
    }
    size_t si = cfg_find_section(cfg, section, strlen(section));
    if (si == SIZE_MAX) {
        return -FY_ENOTFOUND;
    }
    const fy_config_section *s = &cfg->sections[si];
    size_t ki = cfg_find_key(s, key, strlen(key));
    if (ki == SIZE_MAX) {
        return -FY_ENOTFOUND;
    }
    cfg_format_value(s, &s->keys[ki], out);
    return FY_OK;
}

static void cfg_format_section(const fy_config_section *s, fy_buf *out)
{
    if (s->name[0]) {
        fy_buf_append(out, "[", 1);
        fy_buf_append(out, s->name, strlen(s->name));
        fy_buf_append(out, "]\n", 2);
    }
    for (size_t i = 0; i < s->nkeys; i++) {
        fy_buf_append(out, s->keys[i].name, strlen(s->keys[i].name));
        fy_buf_append(out, " ", 1);
        cfg_format_value(s, &s->keys[i], out);
        fy_buf_append(out, "\n", 1);
    }
}

int fy_config_format(const fy_config *cfg, fy_buf *out)
{
    bool first = true;
    size_t top = cfg_find_section(cfg, "", 0);
    if (top != SIZE_MAX) {
        cfg_format_section(&cfg->sections[top], out);
        first = false;
    }
    for (size_t i = 0; i < cfg->nsections; i++) {
        if (i == top) {
            continue;
        }
        if (!first) {
            fy_buf_append(out, "\n", 1);
        }
        cfg_format_section(&cfg->sections[i], out);
        first = false;
    }
    return FY_OK;
}

/* ---- The broker's sections ----------------------------------------------------------------- */

_Static_assert(FY_FLUSH_ASYNC == 0 && FY_FLUSH_SYNC == 1, "flush choices follow enum fy_flush");
_Static_assert(FY_LOG_DEBUG == 0 && FY_LOG_INFO == 1 && FY_LOG_WARN == 2 && FY_LOG_ERROR == 3,
               "log_level choices follow enum fy_log_level");

static const char *const flush_choices[] = {"async", "sync", NULL};
static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};
_Static_assert(FY_ANON_AUTO == 0 && FY_ANON_TRUE == 1 && FY_ANON_FALSE == 2,
               "allow_anonymous choices follow enum fy_anon");
static const char *const anon_choices[] = {"auto", "true", "false", NULL};

#define BC fy_broker_config
static const fy_config_key broker_keys[] = {
    FY_CONFIG_KEY_STRING("data_dir", BC, data_dir, "./data",
                         "Directory of the LevelDB store (messages, offsets, topics); created if "
                         "missing."),
    FY_CONFIG_KEY_ENUM("flush", BC, flush, "async", flush_choices,
                       "When a write is acknowledged: async = written to the OS, sync = fsync'ed "
                       "to disk."),
    FY_CONFIG_KEY_ENUM("log_level", BC, log_level, "info", log_level_choices,
                       "Least severe log lines written: debug, info, warn or error."),
    FY_CONFIG_KEY_STRING("log_file", BC, log_file, "stderr",
                         "Where log lines go: stderr, or a file appended to and reopened on "
                         "SIGHUP (rotation)."),
    FY_CONFIG_KEY_BOOL("auto_create_topics", BC, auto_create_topics, "true",
                       "Create a topic when it is first produced to or subscribed to."),
    FY_CONFIG_KEY_UINT("default_queues", BC, default_queues, "8", 1, 1024,
                       "Number of queues of an automatically created topic (1..1024)."),
    FY_CONFIG_KEY_SIZE("max_message_size", BC, max_message_size, "4MiB", FY_KiB, 256 * FY_MiB,
                       "Largest message accepted, body and properties (1KiB..256MiB)."),
    FY_CONFIG_KEY_DURATION("retention", BC, retention_ms, "72h", 0, UINT64_MAX,
                           "Delete messages older than this; 0 = keep them forever."),
    FY_CONFIG_KEY_SIZE("retention_bytes", BC, retention_bytes, "0", 0, UINT64_MAX,
                       "Delete the oldest messages when the store holds more; 0 = unlimited."),
    FY_CONFIG_KEY_DURATION("retention_interval", BC, retention_interval_ms, "1m", 10, UINT64_MAX,
                           "How often retention looks for messages to delete."),
    FY_CONFIG_KEY_DURATION("ack_timeout", BC, ack_timeout_ms, "30s", 1, UINT64_MAX,
                           "Redeliver a message its consumer has not acknowledged within this "
                           "time."),
    FY_CONFIG_KEY_UINT("max_reconsume", BC, max_reconsume, "16", 0, 64,
                       "Redeliveries of a failed message before it goes to the dead-letter "
                       "queue (0..64); default for groups without their own (ferryctl group "
                       "config)."),
    FY_CONFIG_KEY_DURATION("orderly_suspend", BC, orderly_suspend_ms, "1s", 0, UINT64_MAX,
                           "Pause of an orderly queue before a failed message is tried again."),
    FY_CONFIG_KEY_STRING("retry_delays", BC, retry_delays,
                         "10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
                         "Back-off before each redelivery of a failed message (the last one "
                         "repeats)."),
    FY_CONFIG_KEY_DURATION("max_delay", BC, max_delay_ms, "40d", 0, UINT64_MAX,
                           "Longest delivery delay a producer may ask for."),
    FY_CONFIG_KEY_STRING("delay_levels", BC, delay_levels,
                         "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h",
                         "Delays of the message property DELAY=1, 2, ... (RocketMQ's levels)."),
    FY_CONFIG_KEY_DURATION("tx_check_after", BC, tx_check_after_ms, "6s", 0, UINT64_MAX,
                           "Ask a producer of its group about a transaction still open after this "
                           "time."),
    FY_CONFIG_KEY_DURATION(
        "tx_check_interval", BC, tx_check_interval_ms, "60s", 1, UINT64_MAX,
        "Time between two check rounds, i.e. between two checks of the same open "
        "transaction."),
    FY_CONFIG_KEY_UINT("tx_max_checks", BC, tx_max_checks, "15", 0, UINT32_MAX,
                       "Roll back an open transaction after this many checks (a round with no "
                       "producer of its group connected counts too)."),
    FY_CONFIG_KEY_SIZE("store_cache_size", BC, store_cache_size, "64MiB", FY_MiB, UINT64_MAX,
                       "LevelDB block cache for reads (at least 1MiB)."),
    FY_CONFIG_KEY_SIZE("store_write_buffer", BC, store_write_buffer, "64MiB", FY_MiB, UINT64_MAX,
                       "LevelDB write buffer, the memtable (at least 1MiB)."),
    FY_CONFIG_KEY_SIZE("store_max_commit", BC, store_max_commit, "16MiB", 64 * FY_KiB, UINT64_MAX,
                       "Most bytes written in one group commit (at least 64KiB)."),
    FY_CONFIG_KEY_STRING(
        "password_file", BC, password_file, "none",
        "Users and PBKDF2-SHA512 hashes in mosquitto's format (ferryctl passwd); none = no users."),
    FY_CONFIG_KEY_STRING(
        "acl_file", BC, acl_file, "none",
        "Who may read and write which topics (docs/security.md); none = everyone may do anything."),
    FY_CONFIG_KEY_ENUM("allow_anonymous", BC, allow_anonymous, "auto", anon_choices,
                       "Clients without a user name: auto = allowed only when every listener is "
                       "loopback and there is no password_file."),
    FY_CONFIG_KEY_UINT("auth_max_pending", BC, auth_max_pending, "32", 1, 65536,
                       "Password checks waiting for or running on the auth worker thread at "
                       "once (1..65536); more are refused as server busy."),
    FY_CONFIG_KEY_UINT("broker_id", BC, broker_id, "0", 0, 65535,
                       "Number of this broker (0..65535), written into message ids."),
};
#undef BC

#define LC fy_listen_config
static const fy_config_key native_keys[] = {
    FY_CONFIG_KEY_STRING("listen", LC, listen, "127.0.0.1",
                         "Address the native protocol listens on."),
    FY_CONFIG_KEY_UINT("port", LC, port, "10911", 0, 65535,
                       "TCP port of the native protocol; 0 = pick a free port."),
    FY_CONFIG_KEY_DURATION("hello_timeout", LC, hello_timeout_ms, "10s", 100, 3600000,
                           "A native connection must send HELLO within this time."),
    FY_CONFIG_KEY_UINT(
        "tls_port", LC, tls_port, "10912", 0, 65535,
        "TLS port of the native protocol, open when [tls] certfile is set; 0 = a free port."),
};
static const fy_config_key admin_keys[] = {
    FY_CONFIG_KEY_STRING("listen", LC, listen, "127.0.0.1",
                         "Address the admin HTTP API (/health, /metrics) listens on."),
    FY_CONFIG_KEY_UINT("port", LC, port, "8081", 0, 65535,
                       "TCP port of the admin HTTP API; 0 = pick a free port."),
    FY_CONFIG_KEY_BOOL("tls", LC, tls, "false",
                       "Serve HTTPS instead of HTTP on the admin port (needs [tls] certfile)."),
};
#undef LC

int fy_broker_config_register(fy_config *cfg, fy_broker_config *bc)
{
    int rc = fy_config_add_section(cfg, "", broker_keys, CFG_COUNT(broker_keys), bc);
    if (rc == FY_OK) {
        rc = fy_config_add_section(cfg, "native", native_keys, CFG_COUNT(native_keys), &bc->native);
    }
    if (rc == FY_OK) {
        rc = fy_config_add_section(cfg, "admin", admin_keys, CFG_COUNT(admin_keys), &bc->admin);
    }
    if (rc == FY_OK) {
        rc = fy_limits_config_register(cfg, &bc->limits);
    }
    if (rc == FY_OK) {
        rc = fy_tls_config_register(cfg, &bc->tls);
    }
    return rc;
}
