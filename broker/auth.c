/* SPDX-License-Identifier: Apache-2.0 */
/* The password file and the ACL file: parsers (pure, fuzzed), the rules' matcher, loading and
 * reloading (SIGHUP) with the old files kept when the new ones are bad, and the two hooks the
 * protocols call. */
#include "broker/auth.h"

#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/passwd.h"

#include "ferry/errors.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define AUTH_MAX_FILE (16u * 1024 * 1024)
#define FAST_LEN 32

/* ---- Errors with origin:line -------------------------------------------------------------- */

static void line_error(char *err, size_t errlen, const char *origin, size_t line, const char *fmt,
                       ...) __attribute__((format(printf, 5, 6)));

static void line_error(char *err, size_t errlen, const char *origin, size_t line, const char *fmt,
                       ...)
{
    int n;
    va_list ap;
    if (!err || errlen == 0) {
        return;
    }
    n = snprintf(err, errlen, "%s:%zu: ", origin ? origin : "<string>", line);
    if (n < 0 || (size_t)n >= errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

/* Calls fn for each line of text (without its newline); stops at the first error. */
typedef int (*line_fn)(void *arg, const char *p, size_t n, size_t lineno);

static int each_line(const char *text, size_t len, line_fn fn, void *arg)
{
    size_t lineno = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        int rc = fn(arg, p, n, ++lineno);
        if (rc != FY_OK) {
            return rc;
        }
        p += n + (nl != NULL);
    }
    return FY_OK;
}

/* ---- Password file -------------------------------------------------------------------------- */

typedef struct pw_user {
    char *name;
    fy_passwd_entry e;
    bool cached; /* fast holds the keyed hash of the last password that passed PBKDF2 */
    uint8_t fast[FAST_LEN];
} pw_user;

struct fy_passwd_db {
    pw_user *users;
    size_t n, cap;
    size_t costliest; /* the user whose check costs the most: what unknown users are hashed as */
    uint32_t fewest;  /* the fewest iterations of any user ($6$: 0) */
};

/* What checking e costs, in PBKDF2 iterations: $6$ (one SHA-512) counts as none. */
static uint32_t pw_cost(const fy_passwd_entry *e)
{
    return e->type == 7 ? e->iterations : 0;
}

typedef struct pw_parse {
    fy_passwd_db *db;
    const char *origin;
    char *err;
    size_t errlen;
} pw_parse;

static int pw_line(void *arg, const char *p, size_t n, size_t lineno)
{
    pw_parse *x = arg;
    fy_passwd_entry e;
    const char *why = "";
    int rc = fy_passwd_parse_line(p, n, &e, &why);
    if (rc == 0) {
        return FY_OK;
    }
    if (rc < 0 || memchr(p, '\0', n)) {
        line_error(x->err, x->errlen, x->origin, lineno, "%s", rc < 0 ? why : "NUL byte");
        return -FY_EINVAL;
    }
    for (size_t i = 0; i < x->db->n; i++) {
        if (strlen(x->db->users[i].name) == e.user.len &&
            memcmp(x->db->users[i].name, e.user.p, e.user.len) == 0) {
            line_error(x->err, x->errlen, x->origin, lineno, "user '%.*s' appears twice",
                       (int)(e.user.len > 64 ? 64 : e.user.len), (const char *)e.user.p);
            return -FY_EINVAL;
        }
    }
    if (x->db->n == x->db->cap) {
        x->db->cap = x->db->cap ? 2 * x->db->cap : 8;
        x->db->users = fy_realloc(x->db->users, x->db->cap * sizeof(*x->db->users));
    }
    memset(&x->db->users[x->db->n], 0, sizeof(pw_user));
    x->db->users[x->db->n].name = fy_strndup((const char *)e.user.p, e.user.len);
    x->db->users[x->db->n].e = e;
    x->db->users[x->db->n].e.user = fy_slice_str(x->db->users[x->db->n].name);
    if (x->db->n == 0 || pw_cost(&e) > pw_cost(&x->db->users[x->db->costliest].e)) {
        x->db->costliest = x->db->n;
    }
    if (x->db->n == 0 || pw_cost(&e) < x->db->fewest) {
        x->db->fewest = pw_cost(&e);
    }
    x->db->n++;
    return FY_OK;
}

fy_passwd_db *fy_passwd_db_parse(const char *text, size_t len, const char *origin, char *err,
                                 size_t errlen)
{
    fy_passwd_db *db = FY_NEW(fy_passwd_db);
    pw_parse x = {db, origin, err, errlen};
    if (each_line(text, len, pw_line, &x) != FY_OK) {
        fy_passwd_db_free(db);
        return NULL;
    }
    return db;
}

/* A per-process random key for the cache of accepted passwords. */
static const uint8_t *fast_key(void)
{
    static uint8_t key[32];
    static bool have;
    if (!have) {
        if (RAND_bytes(key, sizeof(key)) != 1) {
            return NULL;
        }
        have = true;
    }
    return key;
}

static bool fast_hash(fy_slice password, uint8_t out[FAST_LEN])
{
    const uint8_t *key = fast_key();
    unsigned int olen = 0;
    return key && HMAC(EVP_sha256(), key, 32, password.p, password.len, out, &olen) != NULL &&
           olen == FAST_LEN;
}

static pw_user *pw_find(fy_passwd_db *db, fy_slice user)
{
    for (size_t i = 0; db && i < db->n; i++) {
        if (strlen(db->users[i].name) == user.len &&
            memcmp(db->users[i].name, user.p, user.len) == 0) {
            return &db->users[i];
        }
    }
    return NULL;
}

/* Whether password is the one of u that passed the full check last (a keyed fast hash). */
static bool pw_cached(const pw_user *u, fy_slice password)
{
    uint8_t fast[FAST_LEN];
    bool hit =
        u->cached && fast_hash(password, fast) && CRYPTO_memcmp(fast, u->fast, FAST_LEN) == 0;
    OPENSSL_cleanse(fast, sizeof(fast));
    return hit;
}

static void pw_remember(pw_user *u, fy_slice password)
{
    u->cached = fast_hash(password, u->fast);
}

/* Whether two entries check passwords alike: hash type, iterations, salt and hash (the user
 * name is compared by the caller). */
static bool pw_entry_same(const fy_passwd_entry *x, const fy_passwd_entry *y)
{
    return x->type == y->type && x->iterations == y->iterations && x->salt_len == y->salt_len &&
           memcmp(x->salt, y->salt, x->salt_len) == 0 &&
           memcmp(x->hash, y->hash, sizeof(x->hash)) == 0;
}

/* A reload: each user of to whose entry is the same in from keeps the password from remembered
 * (it would pass the full check of the new file just the same); a changed entry or a new user
 * starts with none. */
static void pw_carry(fy_passwd_db *to, fy_passwd_db *from)
{
    for (size_t i = 0; to && from && i < to->n; i++) {
        pw_user *u = &to->users[i];
        const pw_user *old = pw_find(from, u->e.user);
        if (old && old->cached && pw_entry_same(&old->e, &u->e)) {
            u->cached = true;
            memcpy(u->fast, old->fast, FAST_LEN);
        }
    }
}

/* What an unknown user's password is hashed against, so that its refusal takes as long as a
 * wrong password: the parameters of the user whose check costs the most (the result is thrown
 * away), or the defaults without users. In a file mixing iteration counts no user's wrong
 * password then takes longer than an unknown name; users with fewer iterations are still refused
 * sooner (auth_load warns). */
static void pw_dummy(const fy_passwd_db *db, fy_passwd_entry *e)
{
    if (db && db->n > 0) {
        *e = db->users[db->costliest].e;
        return;
    }
    memset(e, 0, sizeof(*e));
    e->type = 7;
    e->iterations = FY_PASSWD_ITERATIONS;
    e->salt_len = FY_PASSWD_SALT_LEN;
}

bool fy_passwd_db_check(fy_passwd_db *db, fy_slice user, fy_slice password)
{
    pw_user *u = pw_find(db, user);
    fy_passwd_entry dummy;
    bool ok;
    if (!u) {
        pw_dummy(db, &dummy);
        fy_passwd_check(&dummy, (const char *)password.p, password.len);
        return false;
    }
    /* PBKDF2 with 210,000 rounds costs ~0.1 s: a password that passed once is checked again by
     * a keyed hash instead (a wrong one always pays the full price). */
    if (pw_cached(u, password)) {
        return true;
    }
    ok = fy_passwd_check(&u->e, (const char *)password.p, password.len);
    if (ok) {
        pw_remember(u, password);
    }
    return ok;
}

size_t fy_passwd_db_count(const fy_passwd_db *db)
{
    return db ? db->n : 0;
}

uint32_t fy_passwd_db_unknown_iterations(const fy_passwd_db *db, uint32_t *fewest)
{
    fy_passwd_entry e;
    pw_dummy(db, &e);
    if (fewest) {
        *fewest = db && db->n > 0 ? db->fewest : pw_cost(&e);
    }
    return pw_cost(&e);
}

void fy_passwd_db_free(fy_passwd_db *db)
{
    if (!db) {
        return;
    }
    for (size_t i = 0; i < db->n; i++) {
        fy_free(db->users[i].name);
        OPENSSL_cleanse(&db->users[i], sizeof(db->users[i]));
    }
    fy_free(db->users);
    fy_free(db);
}

/* ---- MQTT topic matching -------------------------------------------------------------------- */

typedef struct lvl_it {
    const uint8_t *p;
    size_t n, i;
    bool done;
} lvl_it;

static bool lvl_next(lvl_it *it, fy_slice *out)
{
    const uint8_t *s, *sl;
    size_t rest;
    if (it->done) {
        return false;
    }
    s = it->p + it->i;
    rest = it->n - it->i;
    sl = rest ? memchr(s, '/', rest) : NULL;
    if (sl) {
        *out = (fy_slice){s, (size_t)(sl - s)};
        it->i += (size_t)(sl - s) + 1;
    } else {
        *out = (fy_slice){s, rest};
        it->done = true;
    }
    return true;
}

static bool lvl_is(fy_slice l, char c)
{
    return l.len == 1 && l.p[0] == c;
}

static bool starts_wild(fy_slice f)
{
    return f.len > 0 && (f.p[0] == '+' || f.p[0] == '#');
}

static bool starts_sys(fy_slice t)
{
    return t.len > 0 && t.p[0] == '$';
}

bool fy_acl_topic_matches(fy_slice filter, fy_slice topic)
{
    lvl_it fi = {filter.p, filter.len, 0, false}, ti = {topic.p, topic.len, 0, false};
    if (starts_sys(topic) && starts_wild(filter)) {
        return false;
    }
    for (;;) {
        fy_slice fl, tl;
        bool hf = lvl_next(&fi, &fl), ht = lvl_next(&ti, &tl);
        if (hf && lvl_is(fl, '#')) {
            return true;
        }
        if (!hf || !ht) {
            return !hf && !ht;
        }
        if (lvl_is(fl, '+')) {
            continue;
        }
        if (fl.len != tl.len || memcmp(fl.p, tl.p, fl.len) != 0) {
            return false;
        }
    }
}

bool fy_acl_filters_overlap(fy_slice a, fy_slice b)
{
    lvl_it ai = {a.p, a.len, 0, false}, bi = {b.p, b.len, 0, false};
    if ((starts_sys(a) && starts_wild(b)) || (starts_sys(b) && starts_wild(a))) {
        return false;
    }
    for (;;) {
        fy_slice al, bl;
        bool ha = lvl_next(&ai, &al), hb = lvl_next(&bi, &bl);
        if ((ha && lvl_is(al, '#')) || (hb && lvl_is(bl, '#'))) {
            return true;
        }
        if (!ha || !hb) {
            return !ha && !hb;
        }
        if (lvl_is(al, '+') || lvl_is(bl, '+')) {
            continue;
        }
        if (al.len != bl.len || memcmp(al.p, bl.p, al.len) != 0) {
            return false;
        }
    }
}

/* Whether s is a valid MQTT topic filter: '#' only as the last level, wildcards alone in their
 * level. */
static bool filter_valid(const char *s)
{
    fy_slice l;
    lvl_it it = {(const uint8_t *)s, strlen(s), 0, false};
    if (!*s) {
        return false;
    }
    while (lvl_next(&it, &l)) {
        for (size_t i = 0; i < l.len; i++) {
            if ((l.p[i] == '+' || l.p[i] == '#') && l.len != 1) {
                return false;
            }
        }
        if (lvl_is(l, '#') && !it.done) {
            return false;
        }
    }
    return true;
}

/* ---- ACL file ------------------------------------------------------------------------------- */

enum { ACC_READ = 1, ACC_WRITE = 2, ACC_DENY = 4 };
enum { RULE_TOPIC, RULE_PATTERN, RULE_NTOPIC, RULE_GROUP, RULE_ADMIN };

typedef struct acl_rule {
    int kind;
    int access;
    char *arg;
} acl_rule;

typedef struct acl_section {
    char *user; /* NULL: anonymous clients */
    acl_rule *rules;
    size_t n, cap;
} acl_section;

struct fy_acl {
    acl_section anon;
    acl_section *users;
    size_t nusers, capusers;
    acl_section patterns; /* `pattern` lines, for every client wherever they appear */
};

typedef struct acl_parse {
    fy_acl *acl;
    acl_section *cur;
    const char *origin;
    char *err;
    size_t errlen;
} acl_parse;

static void section_add(acl_section *s, int kind, int access, const char *arg, size_t n)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->rules = fy_realloc(s->rules, s->cap * sizeof(*s->rules));
    }
    s->rules[s->n].kind = kind;
    s->rules[s->n].access = access;
    s->rules[s->n].arg = fy_strndup(arg, n);
    s->n++;
}

static void section_free(acl_section *s)
{
    for (size_t i = 0; i < s->n; i++) {
        fy_free(s->rules[i].arg);
    }
    fy_free(s->rules);
    fy_free(s->user);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* The next word of [*p, end), skipping spaces before it. */
static size_t next_word(const char **p, const char *end, const char **w)
{
    while (*p < end && is_space(**p)) {
        (*p)++;
    }
    *w = *p;
    while (*p < end && !is_space(**p)) {
        (*p)++;
    }
    return (size_t)(*p - *w);
}

static bool word_is(const char *w, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* A name of a native topic or group: [A-Za-z0-9_.%-]{1,127}, optionally ending in '*' (a
 * prefix), or '*' alone. */
static bool nname_valid(const char *s, size_t n)
{
    if (n == 0 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '%' || c == '-' || (c == '*' && i == n - 1);
        if (!ok) {
            return false;
        }
    }
    return true;
}

static int acl_line(void *arg, const char *line, size_t len, size_t lineno)
{
    acl_parse *x = arg;
    const char *p = line, *end = line + len, *w, *rest;
    size_t n, rn;
    int access = ACC_READ | ACC_WRITE, kind;
    if (memchr(line, '\0', len)) {
        line_error(x->err, x->errlen, x->origin, lineno, "NUL byte");
        return -FY_EINVAL;
    }
    n = next_word(&p, end, &w);
    if (n == 0 || w[0] == '#') {
        return FY_OK;
    }
    /* The rest of the line, trimmed: a user name or filter may hold spaces. */
    while (p < end && is_space(*p)) {
        p++;
    }
    while (end > p && is_space(end[-1])) {
        end--;
    }
    if (word_is(w, n, "user")) {
        if (p == end) {
            line_error(x->err, x->errlen, x->origin, lineno, "user needs a name");
            return -FY_EINVAL;
        }
        for (size_t i = 0; i < x->acl->nusers; i++) {
            if (word_is(p, (size_t)(end - p), x->acl->users[i].user)) {
                /* A second section of the same user continues the first. */
                x->cur = &x->acl->users[i];
                return FY_OK;
            }
        }
        if (x->acl->nusers == x->acl->capusers) {
            x->acl->capusers = x->acl->capusers ? 2 * x->acl->capusers : 8;
            x->acl->users = fy_realloc(x->acl->users, x->acl->capusers * sizeof(*x->acl->users));
        }
        x->cur = &x->acl->users[x->acl->nusers++];
        memset(x->cur, 0, sizeof(*x->cur));
        x->cur->user = fy_strndup(p, (size_t)(end - p));
        return FY_OK;
    }
    if (word_is(w, n, "admin")) {
        if (p != end) {
            line_error(x->err, x->errlen, x->origin, lineno, "admin takes no argument");
            return -FY_EINVAL;
        }
        section_add(x->cur, RULE_ADMIN, ACC_READ | ACC_WRITE, "", 0);
        return FY_OK;
    }
    if (word_is(w, n, "topic")) {
        kind = RULE_TOPIC;
    } else if (word_is(w, n, "pattern")) {
        kind = RULE_PATTERN;
    } else if (word_is(w, n, "ntopic")) {
        kind = RULE_NTOPIC;
    } else if (word_is(w, n, "group")) {
        kind = RULE_GROUP;
    } else {
        line_error(x->err, x->errlen, x->origin, lineno,
                   "unknown rule '%.*s': expected user, topic, pattern, ntopic, group or admin",
                   (int)(n > 32 ? 32 : n), w);
        return -FY_EINVAL;
    }
    if (kind != RULE_GROUP) {
        const char *save = p, *aw;
        size_t an = next_word(&p, end, &aw);
        if (word_is(aw, an, "read")) {
            access = ACC_READ;
        } else if (word_is(aw, an, "write")) {
            access = ACC_WRITE;
        } else if (word_is(aw, an, "readwrite")) {
            access = ACC_READ | ACC_WRITE;
        } else if (word_is(aw, an, "deny")) {
            access = ACC_DENY;
        } else {
            p = save;
        }
        while (p < end && is_space(*p)) {
            p++;
        }
    }
    rest = p;
    rn = (size_t)(end - p);
    if (rn == 0) {
        line_error(x->err, x->errlen, x->origin, lineno, "'%.*s' needs a %s", (int)n, w,
                   kind == RULE_TOPIC || kind == RULE_PATTERN ? "topic filter" : "name");
        return -FY_EINVAL;
    }
    if (kind == RULE_TOPIC || kind == RULE_PATTERN) {
        char *f = fy_strndup(rest, rn);
        bool ok = filter_valid(f);
        fy_free(f);
        if (!ok) {
            line_error(x->err, x->errlen, x->origin, lineno, "bad topic filter '%.*s'",
                       (int)(rn > 64 ? 64 : rn), rest);
            return -FY_EINVAL;
        }
    } else if (!nname_valid(rest, rn)) {
        line_error(x->err, x->errlen, x->origin, lineno,
                   "bad name '%.*s': a topic or group name, NAME* or *", (int)(rn > 64 ? 64 : rn),
                   rest);
        return -FY_EINVAL;
    }
    section_add(kind == RULE_PATTERN ? &x->acl->patterns : x->cur, kind, access, rest, rn);
    return FY_OK;
}

fy_acl *fy_acl_parse(const char *text, size_t len, const char *origin, char *err, size_t errlen)
{
    fy_acl *acl = FY_NEW(fy_acl);
    acl_parse x = {acl, &acl->anon, origin, err, errlen};
    if (each_line(text, len, acl_line, &x) != FY_OK) {
        fy_acl_free(acl);
        return NULL;
    }
    return acl;
}

void fy_acl_free(fy_acl *acl)
{
    if (!acl) {
        return;
    }
    section_free(&acl->anon);
    section_free(&acl->patterns);
    for (size_t i = 0; i < acl->nusers; i++) {
        section_free(&acl->users[i]);
    }
    fy_free(acl->users);
    fy_free(acl);
}

static bool name_matches(const char *rule, fy_slice name)
{
    size_t n = strlen(rule);
    if (n > 0 && rule[n - 1] == '*') {
        return name.len >= n - 1 && memcmp(rule, name.p, n - 1) == 0;
    }
    return name.len == n && memcmp(rule, name.p, n) == 0;
}

/* A pattern with %u and %c replaced; false when it cannot apply (an anonymous client for %u, a
 * value holding a wildcard or a '/'). */
static bool pattern_expand(const char *pat, const char *user, const char *client_id, char *out,
                           size_t cap)
{
    size_t o = 0;
    for (const char *p = pat; *p; p++) {
        const char *v = NULL;
        if (p[0] == '%' && (p[1] == 'u' || p[1] == 'c')) {
            v = p[1] == 'u' ? user : client_id;
            if (!v || !v[0] || strpbrk(v, "+#/")) {
                return false;
            }
            p++;
        }
        if (v) {
            size_t n = strlen(v);
            if (o + n >= cap) {
                return false;
            }
            memcpy(out + o, v, n);
            o += n;
        } else {
            if (o + 1 >= cap) {
                return false;
            }
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return true;
}

/* Whether a rule of kind applies to topic for op; *deny set when it is a deny rule. */
static bool rule_applies(const acl_rule *r, const char *user, const char *client_id, fy_acl_op op,
                         fy_slice topic)
{
    char buf[1024];
    const char *f = r->arg;
    if (r->kind == RULE_PATTERN) {
        if (!pattern_expand(r->arg, user, client_id, buf, sizeof(buf))) {
            return false;
        }
        f = buf;
    }
    switch (r->kind) {
    case RULE_TOPIC:
    case RULE_PATTERN:
        return op == FY_ACL_SUBSCRIBE ? fy_acl_filters_overlap(fy_slice_str(f), topic)
                                      : fy_acl_topic_matches(fy_slice_str(f), topic);
    case RULE_NTOPIC:
    case RULE_GROUP:
        return name_matches(f, topic);
    default:
        return true;
    }
}

/* Scans a section: -1 denied, 1 allowed, 0 nothing said. */
static int section_says(const acl_section *s, bool mqtt, const char *user, const char *client_id,
                        fy_acl_op op, fy_slice topic)
{
    int need = op == FY_ACL_WRITE ? ACC_WRITE : ACC_READ;
    int said = 0;
    for (size_t i = 0; i < s->n; i++) {
        const acl_rule *r = &s->rules[i];
        bool topic_rule = r->kind == RULE_TOPIC || r->kind == RULE_PATTERN;
        if (topic_rule != mqtt) {
            continue;
        }
        if ((op == FY_ACL_GROUP) != (r->kind == RULE_GROUP) ||
            (op == FY_ACL_ADMIN) != (r->kind == RULE_ADMIN)) {
            continue;
        }
        if (r->access & ACC_DENY) {
            /* A deny rule refuses reads and writes of the topics it matches; a subscription
             * is still taken (other topics under the filter may be allowed). */
            if (op != FY_ACL_SUBSCRIBE && rule_applies(r, user, client_id, op, topic)) {
                return -1;
            }
            continue;
        }
        if (said == 0 && (op == FY_ACL_GROUP || op == FY_ACL_ADMIN || (r->access & need)) &&
            rule_applies(r, user, client_id, op, topic)) {
            said = 1;
        }
    }
    return said;
}

bool fy_acl_allows(const fy_acl *acl, const char *user, const char *client_id, const char *protocol,
                   fy_acl_op op, fy_slice topic)
{
    const acl_section *s = NULL;
    bool mqtt = protocol && strcmp(protocol, "mqtt") == 0;
    int a, b;
    if (!acl) {
        return true;
    }
    if (!user) {
        s = &acl->anon;
    } else {
        for (size_t i = 0; i < acl->nusers; i++) {
            if (strcmp(acl->users[i].user, user) == 0) {
                s = &acl->users[i];
                break;
            }
        }
    }
    a = s ? section_says(s, mqtt, user, client_id, op, topic) : 0;
    b = mqtt ? section_says(&acl->patterns, mqtt, user, client_id, op, topic) : 0;
    if (a < 0 || b < 0) {
        return false;
    }
    return a > 0 || b > 0;
}

/* ---- The broker's state --------------------------------------------------------------------- */

/* A slow check, from fy_auth_start to its completion on the loop. It owns copies of what it
 * needs: the request's strings are the caller's, and a reload may free the password file. */
struct fy_auth_job {
    fy_auth *a;
    fy_auth_job *next, *prev; /* in the queue, then in the list of finished checks */
    fy_auth_done_fn done;
    void *done_arg;
    bool queued;       /* in the queue, not yet taken by the worker (under mu) */
    bool canceled;     /* the caller went away: freed without a call (loop only) */
    bool known;        /* the user is in the file (else a dummy hash, refused) */
    bool ok;           /* the worker's verdict */
    fy_passwd_entry e; /* what it was checked against (user cleared) */
    char *user;        /* NUL-terminated copy of the user name */
    size_t ulen;
    uint8_t *password;
    size_t plen;
    char protocol[16];
    char peer[64];
};

struct fy_auth {
    char *pw_path;
    char *acl_path;
    bool anon;
    fy_passwd_db *pw;
    fy_acl *acl;
    /* The worker (fy_auth_use_loop). Loop only: base, max_pending, npending, done_ev. */
    struct event_base *base;
    uint32_t max_pending;
    uint32_t npending; /* jobs not yet freed: queued, running, or finished and not delivered */
    uint64_t busy;     /* refusals for max_pending */
    uint64_t checks;   /* full checks (PBKDF2) done: by the worker, or here without a loop */
    uint64_t busy_logged_ms;
    uint64_t busy_unlogged;
    int efd; /* eventfd: the worker's "jobs finished" */
    struct event *done_ev;
    pthread_t worker;
    bool worker_started;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;
    fy_auth_job *q_head, *q_tail;       /* waiting for the worker */
    fy_auth_job *done_head, *done_tail; /* checked, waiting for the loop */
    bool stopping;
};

static bool path_set(const char *p)
{
    return p && p[0] && strcmp(p, "none") != 0;
}

/* Reads a whole file; NULL with "path: reason" in err. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    fy_buf b = FY_BUF_INIT;
    char chunk[8192];
    size_t n;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        fy_buf_append(&b, chunk, n);
        if (b.len > AUTH_MAX_FILE) {
            snprintf(err, errlen, "%s: larger than 16MiB", path);
            fclose(f);
            fy_buf_free(&b);
            return NULL;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        fy_buf_free(&b);
        return NULL;
    }
    fclose(f);
    fy_buf_put_u8(&b, 0);
    *len = b.len - 1;
    return (char *)b.data;
}

/* Loads the two files; on success replaces *pw and *acl (freeing the old ones). */
static int auth_load(const fy_auth *a, fy_passwd_db **pw, fy_acl **acl, char *err, size_t errlen)
{
    fy_passwd_db *npw = NULL;
    fy_acl *nacl = NULL;
    char *text;
    size_t len;
    if (path_set(a->pw_path)) {
        if (!(text = read_file(a->pw_path, &len, err, errlen))) {
            return -FY_EIO;
        }
        npw = fy_passwd_db_parse(text, len, a->pw_path, err, errlen);
        fy_free(text);
        if (!npw) {
            return -FY_EINVAL;
        }
    }
    if (path_set(a->acl_path)) {
        if (!(text = read_file(a->acl_path, &len, err, errlen))) {
            fy_passwd_db_free(npw);
            return -FY_EIO;
        }
        nacl = fy_acl_parse(text, len, a->acl_path, err, errlen);
        fy_free(text);
        if (!nacl) {
            fy_passwd_db_free(npw);
            return -FY_EINVAL;
        }
    }
    pw_carry(npw, *pw);
    fy_passwd_db_free(*pw);
    fy_acl_free(*acl);
    *pw = npw;
    *acl = nacl;
    if (npw) {
        uint32_t fewest, most = fy_passwd_db_unknown_iterations(npw, &fewest);
        if (fewest != most) {
            fy_log(WARN, "auth",
                   "file=%s iterations_fewest=%u iterations_most=%u msg=\"the password file mixes "
                   "hash costs: an unknown user name takes as long as %u iterations to refuse, a "
                   "user hashed with fewer is refused sooner, which tells that the user exists; "
                   "rehash every line with one iteration count (ferryctl passwd) to remove the "
                   "difference\"",
                   a->pw_path, fewest, most, most);
        }
    }
    return FY_OK;
}

int fy_auth_new(const char *password_file, const char *acl_file, bool allow_anonymous,
                fy_auth **out, char *err, size_t errlen)
{
    fy_auth *a = FY_NEW(fy_auth);
    int rc;
    a->efd = -1;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->pw_path = path_set(password_file) ? fy_strdup(password_file) : NULL;
    a->acl_path = path_set(acl_file) ? fy_strdup(acl_file) : NULL;
    a->anon = allow_anonymous;
    rc = auth_load(a, &a->pw, &a->acl, err, errlen);
    if (rc != FY_OK) {
        fy_auth_free(a);
        return rc;
    }
    *out = a;
    return FY_OK;
}

int fy_auth_reload(fy_auth *a, char *err, size_t errlen)
{
    return auth_load(a, &a->pw, &a->acl, err, errlen);
}

bool fy_auth_has_passwords(const fy_auth *a)
{
    return a && a->pw;
}

bool fy_auth_has_acl(const fy_auth *a)
{
    return a && a->acl;
}

bool fy_auth_allows_anonymous(const fy_auth *a)
{
    return !a || a->anon;
}

uint32_t fy_auth_pending(const fy_auth *a)
{
    return a ? a->npending : 0;
}

uint64_t fy_auth_busy_refusals(const fy_auth *a)
{
    return a ? a->busy : 0;
}

uint64_t fy_auth_checks(const fy_auth *a)
{
    return a ? a->checks : 0;
}

/* A user name fit for a log line: printable ASCII without quotes, at most 64 bytes. */
static const char *log_name(fy_slice s, char out[72])
{
    size_t n = s.len > 64 ? 64 : s.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s.p[i];
        out[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

static void log_refusal(const char *protocol, const char *peer, const fy_slice *user,
                        const char *why)
{
    char name[72];
    fy_log(INFO, "auth", "protocol=%s peer=%s user=\"%s\" msg=\"refused: %s\"", protocol,
           peer ? peer : "-", user ? log_name(*user, name) : "", why);
}

/* ---- The worker ---------------------------------------------------------------------------- */

static void job_free(fy_auth_job *j)
{
    j->a->npending--;
    if (j->password) {
        OPENSSL_cleanse(j->password, j->plen);
        fy_free(j->password);
    }
    fy_free(j->user);
    OPENSSL_cleanse(&j->e, sizeof(j->e));
    fy_free(j);
}

static void list_push(fy_auth_job **head, fy_auth_job **tail, fy_auth_job *j)
{
    j->next = NULL;
    j->prev = *tail;
    if (*tail) {
        (*tail)->next = j;
    } else {
        *head = j;
    }
    *tail = j;
}

static void list_unlink(fy_auth_job **head, fy_auth_job **tail, fy_auth_job *j)
{
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        *head = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    } else {
        *tail = j->prev;
    }
    j->next = j->prev = NULL;
}

/* The worker thread: takes jobs in order, hashes, hands them back to the loop. A job's
 * fields other than ok are not written while it runs: the loop only reads its flags. */
static void *worker_main_wt(void *arg)
{
    fy_auth *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        fy_auth_job *j;
        bool ok, wake;
        while (!a->q_head && !a->stopping) {
            pthread_cond_wait(&a->cv, &a->mu);
        }
        if (a->stopping) {
            break;
        }
        j = a->q_head;
        list_unlink(&a->q_head, &a->q_tail, j);
        j->queued = false;
        pthread_mutex_unlock(&a->mu);
        ok = fy_passwd_check(&j->e, (const char *)j->password, j->plen) && j->known;
        pthread_mutex_lock(&a->mu);
        j->ok = ok;
        wake = a->done_head == NULL;
        list_push(&a->done_head, &a->done_tail, j);
        if (wake) {
            uint64_t one = 1;
            ssize_t w = write(a->efd, &one, sizeof(one));
            (void)w; /* the counter cannot overflow; a failure leaves it readable anyway */
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* A finished job on the loop: the caller hears the verdict, and an accepted password is
 * remembered for the fast check when the user's entry in the file now in use is the one it was
 * checked against (a reload meanwhile may have changed or removed it). A cancelled job only
 * goes. */
static void job_finish(fy_auth_job *j)
{
    fy_auth *a = j->a;
    fy_slice user = {(const uint8_t *)j->user, j->ulen};
    fy_slice password = {j->password, j->plen};
    fy_auth_done_fn done;
    void *done_arg;
    int result;
    a->checks++; /* hashed, whether still wanted or not */
    if (j->canceled) {
        job_free(j);
        return;
    }
    if (j->ok) {
        pw_user *u = pw_find(a->pw, user);
        if (u && pw_entry_same(&u->e, &j->e)) {
            pw_remember(u, password);
        }
    }
    if (!j->ok) {
        log_refusal(j->protocol, j->peer, &user, "bad user name or password");
    }
    done = j->done;
    done_arg = j->done_arg;
    result = j->ok ? FY_OK : -FY_EPERM;
    job_free(j); /* first: the caller may start another check at once */
    done(done_arg, result);
}

static void on_jobs_done(evutil_socket_t fd, short what, void *arg)
{
    fy_auth *a = arg;
    fy_auth_job *list;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r; /* EAGAIN: another wake-up consumed it; the list is checked regardless */
    pthread_mutex_lock(&a->mu);
    list = a->done_head;
    a->done_head = a->done_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    while (list) {
        fy_auth_job *j = list;
        list = j->next;
        job_finish(j);
    }
}

int fy_auth_use_loop(fy_auth *a, struct event_base *base, uint32_t max_pending)
{
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0) {
        return -FY_EIO;
    }
    a->done_ev = event_new(base, a->efd, EV_READ | EV_PERSIST, on_jobs_done, a);
    if (!a->done_ev || event_add(a->done_ev, NULL) != 0) {
        return -FY_EIO;
    }
    a->base = base;
    a->max_pending = max_pending > 0 ? max_pending : 1;
    return FY_OK;
}

/* Starts the worker the first time a check needs it. */
static bool worker_ready(fy_auth *a)
{
    if (!a->worker_started) {
        if (pthread_create(&a->worker, NULL, worker_main_wt, a) != 0) {
            fy_log(ERROR, "auth", "msg=\"cannot start the password worker thread\"");
            return false;
        }
        a->worker_started = true;
    }
    return true;
}

/* A refusal for max_pending: counted, and logged at most once per 10 s (a flood is one line). */
static int busy_refusal(fy_auth *a, const fy_auth_request *req)
{
    uint64_t now = fy_mono_ms();
    a->busy++;
    a->busy_unlogged++;
    if (now - a->busy_logged_ms >= 10000 || a->busy_logged_ms == 0) {
        fy_log(WARN, "auth",
               "protocol=%s peer=%s refused=%llu pending=%u msg=\"server busy: too many password "
               "checks pending (auth_max_pending)\"",
               req->protocol, req->peer ? req->peer : "-", (unsigned long long)a->busy_unlogged,
               a->npending);
        a->busy_logged_ms = now;
        a->busy_unlogged = 0;
    }
    return -FY_EAGAIN;
}

static fy_auth_job *job_new(fy_auth *a, const fy_auth_request *req, const pw_user *u)
{
    fy_auth_job *j = FY_NEW(fy_auth_job);
    j->a = a;
    j->known = u != NULL;
    if (u) {
        j->e = u->e;
    } else {
        pw_dummy(a->pw, &j->e);
    }
    j->e.user = (fy_slice){NULL, 0}; /* it pointed into the file, which a reload may free */
    j->user = fy_strndup((const char *)req->username.p, req->username.len);
    j->ulen = req->username.len;
    j->plen = req->password.len;
    j->password = fy_malloc(j->plen ? j->plen : 1);
    if (j->plen) {
        memcpy(j->password, req->password.p, j->plen);
    }
    snprintf(j->protocol, sizeof(j->protocol), "%s", req->protocol ? req->protocol : "-");
    snprintf(j->peer, sizeof(j->peer), "%s", req->peer ? req->peer : "-");
    a->npending++;
    return j;
}

int fy_auth_start(void *arg, const fy_auth_request *req, fy_auth_done_fn done, void *done_arg,
                  fy_auth_job **job)
{
    fy_auth *a = arg;
    const char *why;
    pw_user *u = NULL;
    fy_auth_job *j;
    *job = NULL;
    if (!req->has_username) {
        if (a->anon) {
            return FY_OK;
        }
        why = "anonymous clients are not allowed";
    } else if (!a->pw) {
        if (a->anon) {
            return FY_OK;
        }
        why = "no password file and anonymous clients are not allowed";
    } else if (!req->has_password) {
        why = "bad user name or password";
    } else if ((u = pw_find(a->pw, req->username)) && pw_cached(u, req->password)) {
        return FY_OK;
    } else if (!a->base || !worker_ready(a)) {
        /* No loop to come back to (tools, tests): the check runs here. */
        a->checks++;
        if (fy_passwd_db_check(a->pw, req->username, req->password)) {
            return FY_OK;
        }
        why = "bad user name or password";
    } else if (a->npending >= a->max_pending) {
        return busy_refusal(a, req);
    } else {
        j = job_new(a, req, u);
        j->done = done;
        j->done_arg = done_arg;
        pthread_mutex_lock(&a->mu);
        j->queued = true;
        list_push(&a->q_head, &a->q_tail, j);
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        *job = j;
        return FY_AUTH_PENDING;
    }
    log_refusal(req->protocol, req->peer, req->has_username ? &req->username : NULL, why);
    return -FY_EPERM;
}

void fy_auth_cancel(void *arg, fy_auth_job *j)
{
    fy_auth *a = arg;
    bool queued;
    if (!j) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    queued = j->queued;
    if (queued) {
        list_unlink(&a->q_head, &a->q_tail, j);
        j->queued = false;
    }
    pthread_mutex_unlock(&a->mu);
    if (queued) {
        job_free(j); /* never hashed: the worker's time goes to the next client */
    } else {
        j->canceled = true; /* running or finished: freed when it comes back */
    }
}

/* Frees the jobs of a list at shutdown: their callers hear -FY_ECANCELED. */
static void jobs_cancel_all(fy_auth_job *list)
{
    while (list) {
        fy_auth_job *j = list;
        list = j->next;
        if (!j->canceled) {
            j->done(j->done_arg, -FY_ECANCELED);
        }
        job_free(j);
    }
}

void fy_auth_free(fy_auth *a)
{
    if (!a) {
        return;
    }
    if (a->worker_started) {
        pthread_mutex_lock(&a->mu);
        a->stopping = true;
        pthread_cond_signal(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->worker, NULL);
    }
    jobs_cancel_all(a->q_head);
    jobs_cancel_all(a->done_head);
    if (a->done_ev) {
        event_free(a->done_ev);
    }
    if (a->efd >= 0) {
        close(a->efd);
    }
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    fy_passwd_db_free(a->pw);
    fy_acl_free(a->acl);
    fy_free(a->pw_path);
    fy_free(a->acl_path);
    fy_free(a);
}

int fy_auth_authorize(void *arg, const char *user, const char *client_id, const char *protocol,
                      fy_acl_op op, fy_slice topic)
{
    fy_auth *a = arg;
    if (!a || !a->acl) {
        return FY_OK;
    }
    return fy_acl_allows(a->acl, user, client_id, protocol, op, topic) ? FY_OK : -FY_EPERM;
}
