/* SPDX-License-Identifier: Apache-2.0 */
/* The SQL92 message selector: a one-pass recursive-descent compiler from the selector text to a
 * small stack bytecode (with static type checks and jumps for AND / OR short-circuits), and an
 * evaluator that runs it over a decoded record with SQL three-valued logic, without allocating
 * and without recursion. Grammar and semantics for users: docs/selectors.md. */
#include "broker/selector.h"

#include "common/alloc.h"
#include "common/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Values on the evaluation stack. SQL's NULL and the logical UNKNOWN are both V_NULL. */
enum { V_NULL, V_BOOL, V_INT, V_DBL, V_STR };

typedef struct sel_val {
    uint8_t t;
    uint32_t len; /* V_STR: the record caps values at 2^32 - 1 bytes */
    union {
        bool b;
        int64_t i;
        double d;
        const uint8_t *p;
    } u;
} sel_val;

/* Instructions. Each names its effect on the stack depth. */
enum {
    OP_END,     /* stop; the result is the only value left */
    OP_CONST,   /* +1: consts[arg] */
    OP_PROP,    /* +1: the property names[arg], a string or NULL */
    OP_TAG,     /* +1: the tag, a string or NULL when empty */
    OP_TOBOOL,  /*  0: a string "true" / "false" to a boolean, anything else to NULL */
    OP_TONUM,   /*  0: a string that is a number to that number, anything else to NULL */
    OP_NOT,     /*  0 */
    OP_JF,      /*  0: jump to arg when the top is FALSE (AND short-circuit) */
    OP_JT,      /*  0: jump to arg when the top is TRUE (OR short-circuit) */
    OP_AND,     /* -1 */
    OP_OR,      /* -1 */
    OP_EQ,      /* -1: comparisons, in this order (sel_cmp) */
    OP_NE,      /* -1 */
    OP_LT,      /* -1 */
    OP_LE,      /* -1 */
    OP_GT,      /* -1 */
    OP_GE,      /* -1 */
    OP_ADD,     /* -1: arithmetic */
    OP_SUB,     /* -1 */
    OP_MUL,     /* -1 */
    OP_DIV,     /* -1 */
    OP_NEG,     /*  0 */
    OP_BETWEEN, /* -2: x lo hi; neg = NOT BETWEEN */
    OP_IN,      /*  0: lists[arg]; neg = NOT IN */
    OP_LIKE,    /*  0: pats[arg]; neg = NOT LIKE */
    OP_ISNULL,  /*  0: neg = IS NOT NULL */
    OP_PCMP     /* +1: property names[arg] (or the tag) compared with consts[arg2], the most
                 * common condition, fused from OP_PROP / OP_TAG, OP_CONST, OP_EQ .. OP_GE */
};

typedef struct sel_insn {
    uint8_t op;
    uint8_t neg; /* OP_PCMP: the comparison, OP_EQ .. OP_GE */
    uint32_t arg;
    uint32_t arg2; /* OP_PCMP: the constant */
} sel_insn;

#define SEL_ARG_TAG UINT32_MAX /* OP_PCMP: the tag instead of a property */

typedef struct sel_name {
    const uint8_t *p;
    uint32_t len;
} sel_name;

/* A run of entries in another array: IN lists (consts), LIKE patterns (pat). */
typedef struct sel_range {
    uint32_t first;
    uint32_t n;
} sel_range;

/* LIKE patterns are compiled to 16-bit units: a literal byte, or one of these. */
#define SEL_PAT_ONE 256u /* '_': one character */
#define SEL_PAT_ANY 257u /* '%': any run of characters */

/* Values on the evaluation stack. One nesting level holds at most 6 pending values (OR, AND,
 * BETWEEN's operand and lower bound, '+', '*'), so 6 * (FY_SELECTOR_MAX_DEPTH + 1) always fit. */
#define SEL_STACK_MAX 400u
#define SEL_CACHE 32u    /* the first property names have their lookups cached per match */
#define SEL_NUM_MAX 255u /* longest text parsed as a number (stack buffer for strtod) */
#define SEL_NO_JUMP UINT32_MAX

struct fy_selector {
    sel_insn *code;
    uint32_t ncode, capcode;
    sel_val *consts;
    uint32_t nconsts, capconsts;
    sel_name *names;
    uint32_t nnames, capnames;
    sel_range *lists;
    uint32_t nlists, caplists;
    sel_range *pats;
    uint32_t npats, cappats;
    uint16_t *pat;
    uint32_t npat, cappat;
    uint8_t *pool; /* string literals and names, unescaped; never longer than the text */
    size_t npool;
    uint32_t cached;     /* bit i: names[i] is resolved by sel_props_load */
    uint32_t first[256]; /* by first byte: the cached names that start with it */
};

/* Makes room in a growable array for one more entry at index n (aborts on OOM, as fy_realloc). */
#define SEL_GROW(arr, n, cap)                                                                      \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 8;                                                         \
            (arr) = fy_realloc((arr), (size_t)(cap) * sizeof(*(arr)));                             \
        }                                                                                          \
    } while (0)

/* ---- Values ---------------------------------------------------------------------------------- */

static const sel_val sel_null = {V_NULL, 0, {.i = 0}};

static sel_val sel_bool(bool b)
{
    sel_val v = {V_BOOL, 0, {.b = b}};
    return v;
}

static sel_val sel_int(int64_t i)
{
    sel_val v = {V_INT, 0, {.i = i}};
    return v;
}

/* NaN (inf - inf, 0 * inf) is no number: it becomes NULL, so comparisons with it are UNKNOWN. */
static sel_val sel_dbl(double d)
{
    sel_val v = {V_DBL, 0, {.d = d}};
    return isnan(d) ? sel_null : v;
}

static bool sel_is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Length of the number at the start of the n bytes at p: [+-] when sign, then digits [. digits]
 * or . digits, then an optional exponent e [+-] digits. 0 if there is none. *exact is set
 * when there is neither a fraction nor an exponent. */
static size_t sel_num_len(const uint8_t *p, size_t n, bool sign, bool *exact)
{
    size_t i = 0, digits = 0;

    *exact = true;
    if (sign && i < n && (p[i] == '+' || p[i] == '-')) {
        i++;
    }
    while (i < n && sel_is_digit(p[i])) {
        i++;
        digits++;
    }
    if (i < n && p[i] == '.') {
        *exact = false;
        i++;
        while (i < n && sel_is_digit(p[i])) {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t j = i + 1, exp_digits = 0;
        if (j < n && (p[j] == '+' || p[j] == '-')) {
            j++;
        }
        while (j < n && sel_is_digit(p[j])) {
            j++;
            exp_digits++;
        }
        if (exp_digits > 0) {
            *exact = false;
            i = j;
        }
    }
    return i;
}

/* sel_parse_num past its fast path. */
__attribute__((noinline)) static bool sel_parse_num_slow(const uint8_t *p, size_t n, bool sign,
                                                         sel_val *out)
{
    bool exact;
    char buf[SEL_NUM_MAX + 1];

    if (n == 0 || n > SEL_NUM_MAX || sel_num_len(p, n, sign, &exact) != n) {
        return false;
    }
    if (exact) {
        size_t i = 0;
        bool negative = false, overflow = false;
        int64_t acc = 0; /* accumulated negatively so that INT64_MIN fits */

        if (p[0] == '+' || p[0] == '-') {
            negative = p[0] == '-';
            i++;
        }
        for (; i < n; i++) {
            int d = p[i] - '0';
            if (acc < (INT64_MIN + d) / 10) {
                overflow = true;
                break;
            }
            acc = acc * 10 - d;
        }
        if (!overflow && (negative || acc != INT64_MIN)) {
            *out = sel_int(negative ? acc : -acc);
            return true;
        }
    }
    /* Validated above: plain decimal text only, never hex, "inf" or "nan". */
    memcpy(buf, p, n);
    buf[n] = '\0';
    *out = sel_dbl(strtod(buf, NULL));
    return out->t == V_DBL;
}

/* Parses exactly the n bytes at p as a number (optionally signed). An integer that fits
 * int64_t becomes V_INT; anything else (fraction, exponent, too large) V_DBL. False if the
 * bytes are not entirely one number, or are longer than SEL_NUM_MAX. Does not allocate. */
static inline bool sel_parse_num(const uint8_t *p, size_t n, bool sign, sel_val *out)
{
    size_t i = 0;
    bool negative = false;
    int64_t acc = 0;

    /* Fast path: a plain integer of up to 18 digits, which cannot overflow. */
    if (sign && n > 0 && (p[0] == '+' || p[0] == '-')) {
        negative = p[0] == '-';
        i = 1;
    }
    if (n > i && n - i <= 18) {
        for (; i < n && sel_is_digit(p[i]); i++) {
            acc = acc * 10 + (p[i] - '0');
        }
        if (i == n) {
            *out = sel_int(negative ? -acc : acc);
            return true;
        }
    }
    return sel_parse_num_slow(p, n, sign, out);
}

static bool sel_ascii_ieq(const uint8_t *p, size_t n, const char *word)
{
    size_t i;

    for (i = 0; i < n && word[i]; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z') {
            c = (uint8_t)(c - 'A' + 'a');
        }
        if (c != (uint8_t)word[i]) {
            return false;
        }
    }
    return i == n && word[i] == '\0';
}

/* A value as a number: numbers as they are, strings that are entirely a number as that number. */
static bool sel_to_num(sel_val v, sel_val *out)
{
    if (v.t == V_INT || v.t == V_DBL) {
        *out = v;
        return true;
    }
    return v.t == V_STR && sel_parse_num(v.u.p, v.len, true, out);
}

/* A value as a boolean: booleans as they are, "true" / "false" in any case. */
static bool sel_to_bool(sel_val v, bool *out)
{
    if (v.t == V_BOOL) {
        *out = v.u.b;
        return true;
    }
    if (v.t == V_STR && sel_ascii_ieq(v.u.p, v.len, "true")) {
        *out = true;
        return true;
    }
    if (v.t == V_STR && sel_ascii_ieq(v.u.p, v.len, "false")) {
        *out = false;
        return true;
    }
    return false;
}

static double sel_as_dbl(sel_val v)
{
    return v.t == V_INT ? (double)v.u.i : v.u.d;
}

static int sel_bytes_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    return (na > nb) - (na < nb);
}

/* Whether a three-way comparison result c (<0, 0, >0) satisfies op (OP_EQ .. OP_GE). */
static inline bool sel_cmp_is(uint8_t op, int c)
{
    /* per op, bit 0: holds when c < 0, bit 1: when c == 0, bit 2: when c > 0 */
    static const uint8_t holds[] = {2, 5, 1, 3, 4, 6};

    return (holds[op - OP_EQ] >> ((c > 0) - (c < 0) + 1)) & 1;
}

/* Three-way comparison of two numbers: exact for two integers, in double otherwise. */
static inline int sel_num_cmp(sel_val a, sel_val b)
{
    double x, y;

    if (a.t == V_INT && b.t == V_INT) {
        return (a.u.i > b.u.i) - (a.u.i < b.u.i);
    }
    x = sel_as_dbl(a);
    y = sel_as_dbl(b);
    return (x > y) - (x < y);
}

/* Compares l and r under op (OP_EQ .. OP_GE): TRUE, FALSE, or NULL (UNKNOWN) when either side
 * is NULL or a string cannot be read as the other side's type. */
static sel_val sel_cmp(uint8_t op, sel_val l, sel_val r)
{
    int c;

    if (l.t == V_NULL || r.t == V_NULL) {
        return sel_null;
    }
    if (l.t == V_STR && r.t == V_STR) {
        c = sel_bytes_cmp(l.u.p, l.len, r.u.p, r.len);
    } else if (l.t == V_BOOL || r.t == V_BOOL) {
        bool a, b;
        if (!sel_to_bool(l, &a) || !sel_to_bool(r, &b)) {
            return sel_null; /* a non-boolean string, or a number (the compiler rejects it) */
        }
        c = (int)a - (int)b;
    } else {
        sel_val a, b;
        if (!sel_to_num(l, &a) || !sel_to_num(r, &b)) {
            return sel_null;
        }
        c = sel_num_cmp(a, b);
    }
    return sel_bool(sel_cmp_is(op, c));
}

/* Integer arithmetic stays integer (division truncates, as in Java and RocketMQ) until it would
 * overflow, then it is done in double. Division by zero is NULL. */
static sel_val sel_arith(uint8_t op, sel_val l, sel_val r)
{
    sel_val a, b;
    int64_t res;
    double x, y;

    if (!sel_to_num(l, &a) || !sel_to_num(r, &b)) {
        return sel_null;
    }
    if (a.t == V_INT && b.t == V_INT) {
        switch (op) {
        case OP_ADD:
            if (!__builtin_add_overflow(a.u.i, b.u.i, &res)) {
                return sel_int(res);
            }
            break;
        case OP_SUB:
            if (!__builtin_sub_overflow(a.u.i, b.u.i, &res)) {
                return sel_int(res);
            }
            break;
        case OP_MUL:
            if (!__builtin_mul_overflow(a.u.i, b.u.i, &res)) {
                return sel_int(res);
            }
            break;
        default:
            if (b.u.i == 0) {
                return sel_null;
            }
            if (a.u.i != INT64_MIN || b.u.i != -1) {
                return sel_int(a.u.i / b.u.i);
            }
            break;
        }
    }
    x = sel_as_dbl(a);
    y = sel_as_dbl(b);
    switch (op) {
    case OP_ADD:
        return sel_dbl(x + y);
    case OP_SUB:
        return sel_dbl(x - y);
    case OP_MUL:
        return sel_dbl(x * y);
    default:
        return y == 0 ? sel_null : sel_dbl(x / y);
    }
}

static sel_val sel_neg(sel_val v)
{
    sel_val n;

    if (!sel_to_num(v, &n)) {
        return sel_null;
    }
    if (n.t == V_DBL) {
        return sel_dbl(-n.u.d);
    }
    return n.u.i == INT64_MIN ? sel_dbl(-(double)n.u.i) : sel_int(-n.u.i);
}

static bool sel_is_false(sel_val v)
{
    return v.t == V_BOOL && !v.u.b;
}

static bool sel_is_true(sel_val v)
{
    return v.t == V_BOOL && v.u.b;
}

/* Three-valued AND / OR / NOT over operands that are booleans or NULL (UNKNOWN). */
static sel_val sel_and(sel_val a, sel_val b)
{
    if (sel_is_false(a) || sel_is_false(b)) {
        return sel_bool(false);
    }
    return sel_is_true(a) && sel_is_true(b) ? sel_bool(true) : sel_null;
}

static sel_val sel_or(sel_val a, sel_val b)
{
    if (sel_is_true(a) || sel_is_true(b)) {
        return sel_bool(true);
    }
    return sel_is_false(a) && sel_is_false(b) ? sel_bool(false) : sel_null;
}

static sel_val sel_not(sel_val v)
{
    return v.t == V_BOOL ? sel_bool(!v.u.b) : sel_null;
}

/* Start of the character after the one at i: one byte and its UTF-8 continuation bytes. */
static size_t sel_next_char(const uint8_t *t, size_t i, size_t n)
{
    i++;
    while (i < n && (t[i] & 0xC0) == 0x80) {
        i++;
    }
    return i;
}

/* SQL LIKE over a compiled pattern: iterative, backtracking only to the last '%' seen (enough,
 * since '%' matches any run), so no recursion and no allocation; O(n * m) at worst. */
static bool sel_like(const uint16_t *pat, size_t m, const uint8_t *t, size_t n)
{
    size_t pi = 0, ti = 0, star_p = SIZE_MAX, star_t = 0;

    while (ti < n) {
        if (pi < m && pat[pi] == SEL_PAT_ONE) {
            ti = sel_next_char(t, ti, n);
            pi++;
        } else if (pi < m && pat[pi] == SEL_PAT_ANY) {
            star_p = pi++;
            star_t = ti;
        } else if (pi < m && pat[pi] == t[ti]) {
            ti++;
            pi++;
        } else if (star_p != SIZE_MAX) {
            /* Let the last '%' swallow one more character and retry from there. */
            pi = star_p + 1;
            star_t = sel_next_char(t, star_t, n);
            ti = star_t;
        } else {
            return false;
        }
    }
    while (pi < m && pat[pi] == SEL_PAT_ANY) {
        pi++;
    }
    return pi == m;
}

/* ---- Evaluation ------------------------------------------------------------------------------ */

/* Property values of one match. The first SEL_CACHE names are resolved together, in one pass
 * over the properties when the first of them is needed; later names are looked up each time. */
typedef struct sel_props {
    bool loaded;
    uint32_t found;
    fy_slice v[SEL_CACHE];
} sel_props;

/* Walks a properties region: u16 name length, name, u32 value length, value (common/record.h).
 * Done inline here rather than through fy_record_prop_next, whose call per property was most of
 * the cost of a match. Bounds-checked like the iterator: a short region ends the walk. */
typedef struct sel_walk {
    const uint8_t *p;
    size_t left;
    uint32_t n; /* properties not yet read */
} sel_walk;

static sel_walk sel_walk_make(const fy_record_view *msg)
{
    sel_walk w = {msg->props_raw.p, msg->props_raw.len, msg->nprops};
    return w;
}

static inline bool sel_walk_next(sel_walk *w, fy_slice *name, fy_slice *value)
{
    size_t nl, vl;

    if (w->n == 0 || w->left < 2) {
        return false;
    }
    nl = fy_be16_get(w->p);
    if (w->left - 2 < nl + 4) {
        return false;
    }
    vl = fy_be32_get(w->p + 2 + nl);
    if (w->left - 2 - nl - 4 < vl) {
        return false;
    }
    name->p = w->p + 2;
    name->len = nl;
    value->p = w->p + 2 + nl + 4;
    value->len = vl;
    w->p += 2 + nl + 4 + vl;
    w->left -= 2 + nl + 4 + vl;
    w->n--;
    return true;
}

static inline bool sel_name_eq(const sel_name *nm, fy_slice name)
{
    return nm->len == name.len && memcmp(nm->p, name.p, name.len) == 0;
}

/* Keeps value for the first of the candidate names m that is name; returns the names still
 * wanted. Apart from the walk so that the walk's loop stays small. */
static uint32_t sel_props_take(const fy_selector *s, sel_props *c, uint32_t m, uint32_t want,
                               fy_slice name, fy_slice value)
{
    for (; m != 0; m &= m - 1) {
        uint32_t idx = (uint32_t)__builtin_ctz(m);
        const sel_name *nm = &s->names[idx];
        if (nm->len == name.len &&
            (name.len == 1 || memcmp(nm->p + 1, name.p + 1, name.len - 1) == 0)) {
            /* The first property of that name wins, as with fy_record_prop_get. */
            c->found |= (uint32_t)1 << idx;
            c->v[idx] = value;
            return want & ~((uint32_t)1 << idx);
        }
    }
    return want;
}

static void sel_props_load(const fy_selector *s, const fy_record_view *msg, sel_props *c)
{
    sel_walk w = sel_walk_make(msg);
    uint32_t want = s->cached; /* names not found yet */
    fy_slice name, value;

    c->loaded = true;
    while (want != 0 && sel_walk_next(&w, &name, &value)) {
        /* Most properties are not named in the selector: their first byte already says so.
         * (A name is never empty in a decoded record; in a hand-made view an empty name's
         * p[0] is its value's length field, still inside the region, and matches no name.) */
        uint32_t m = want & s->first[name.p[0]];
        if (m != 0) {
            want = sel_props_take(s, c, m, want, name, value);
        }
    }
}

/* A name past the cache: looked up on each use. */
static sel_val sel_prop_uncached(const fy_selector *s, const fy_record_view *msg, uint32_t idx)
{
    sel_walk w = sel_walk_make(msg);
    sel_val v = {V_STR, 0, {.i = 0}};
    fy_slice name, value;

    while (sel_walk_next(&w, &name, &value)) {
        if (sel_name_eq(&s->names[idx], name)) {
            v.u.p = value.p;
            v.len = (uint32_t)value.len;
            return v;
        }
    }
    return sel_null;
}

static inline sel_val sel_prop(const fy_selector *s, const fy_record_view *msg, sel_props *c,
                               uint32_t idx)
{
    sel_val v = {V_STR, 0, {.i = 0}};

    if (idx >= SEL_CACHE) {
        return sel_prop_uncached(s, msg, idx);
    }
    if (!c->loaded) {
        sel_props_load(s, msg, c);
    }
    if (!(c->found & ((uint32_t)1 << idx))) {
        return sel_null;
    }
    v.u.p = c->v[idx].p;
    v.len = (uint32_t)c->v[idx].len;
    return v;
}

/* The tag as a value: an empty tag is NULL. */
static sel_val sel_tag(const fy_record_view *msg)
{
    sel_val v = {V_STR, (uint32_t)msg->tag.len, {.p = msg->tag.p}};

    return msg->tag.len == 0 ? sel_null : v;
}

/* OP_PCMP: a property (or the tag; a string or NULL) compared with a constant. The same result
 * as sel_cmp, with the usual cases -- a string or integer constant -- done without its
 * general dispatch. */
static inline sel_val sel_pcmp(uint8_t op, sel_val l, const sel_val *k)
{
    sel_val n;

    if (l.t == V_NULL) {
        return sel_null;
    }
    if (k->t == V_STR) {
        return sel_bool(sel_cmp_is(op, sel_bytes_cmp(l.u.p, l.len, k->u.p, k->len)));
    }
    if (k->t == V_INT || k->t == V_DBL) {
        return sel_parse_num(l.u.p, l.len, true, &n) ? sel_bool(sel_cmp_is(op, sel_num_cmp(n, *k)))
                                                     : sel_null;
    }
    return sel_cmp(op, l, *k);
}

bool fy_selector_match(const fy_selector *s, const fy_record_view *msg)
{
    sel_val st[SEL_STACK_MAX];
    sel_val *sp = st; /* the next free slot: the top is sp[-1] */
    const sel_insn *in = s->code;
    sel_props props;

    props.loaded = false;
    props.found = 0;
    for (;; in++) {
        switch (in->op) {
        case OP_END:
            return sp == st + 1 && sel_is_true(st[0]);
        case OP_CONST:
            *sp++ = s->consts[in->arg];
            break;
        case OP_PROP:
            *sp++ = sel_prop(s, msg, &props, in->arg);
            break;
        case OP_TAG:
            *sp++ = sel_tag(msg);
            break;
        case OP_PCMP:
            *sp++ = sel_pcmp(
                in->neg, in->arg == SEL_ARG_TAG ? sel_tag(msg) : sel_prop(s, msg, &props, in->arg),
                &s->consts[in->arg2]);
            break;
        case OP_TOBOOL: {
            bool b;
            sp[-1] = sel_to_bool(sp[-1], &b) ? sel_bool(b) : sel_null;
            break;
        }
        case OP_TONUM: {
            sel_val n;
            sp[-1] = sel_to_num(sp[-1], &n) ? n : sel_null;
            break;
        }
        case OP_NOT:
            sp[-1] = sel_not(sp[-1]);
            break;
        case OP_JF:
            if (sel_is_false(sp[-1])) {
                in = s->code + in->arg - 1;
            }
            break;
        case OP_JT:
            if (sel_is_true(sp[-1])) {
                in = s->code + in->arg - 1;
            }
            break;
        case OP_AND:
            sp[-2] = sel_and(sp[-2], sp[-1]);
            sp--;
            break;
        case OP_OR:
            sp[-2] = sel_or(sp[-2], sp[-1]);
            sp--;
            break;
        case OP_EQ:
        case OP_NE:
        case OP_LT:
        case OP_LE:
        case OP_GT:
        case OP_GE:
            sp[-2] = sel_cmp(in->op, sp[-2], sp[-1]);
            sp--;
            break;
        case OP_ADD:
        case OP_SUB:
        case OP_MUL:
        case OP_DIV:
            sp[-2] = sel_arith(in->op, sp[-2], sp[-1]);
            sp--;
            break;
        case OP_NEG:
            sp[-1] = sel_neg(sp[-1]);
            break;
        case OP_BETWEEN: {
            sel_val r = sel_and(sel_cmp(OP_GE, sp[-3], sp[-2]), sel_cmp(OP_LE, sp[-3], sp[-1]));
            sp[-3] = in->neg ? sel_not(r) : r;
            sp -= 2;
            break;
        }
        case OP_IN: {
            const sel_range *l = &s->lists[in->arg];
            bool found = false;
            if (sp[-1].t != V_STR) {
                sp[-1] = sel_null;
                break;
            }
            for (uint32_t i = 0; i < l->n && !found; i++) {
                const sel_val *c = &s->consts[l->first + i];
                found = c->len == sp[-1].len &&
                        sel_bytes_cmp(c->u.p, c->len, sp[-1].u.p, sp[-1].len) == 0;
            }
            sp[-1] = sel_bool(found != (in->neg != 0));
            break;
        }
        case OP_LIKE: {
            const sel_range *p = &s->pats[in->arg];
            if (sp[-1].t != V_STR) {
                sp[-1] = sel_null;
                break;
            }
            sp[-1] = sel_bool(sel_like(s->pat + p->first, p->n, sp[-1].u.p, sp[-1].len) !=
                              (in->neg != 0));
            break;
        }
        default: /* OP_ISNULL */
            sp[-1] = sel_bool((sp[-1].t == V_NULL) != (in->neg != 0));
            break;
        }
    }
}

void fy_selector_free(fy_selector *s)
{
    if (!s) {
        return;
    }
    fy_free(s->code);
    fy_free(s->consts);
    fy_free(s->names);
    fy_free(s->lists);
    fy_free(s->pats);
    fy_free(s->pat);
    fy_free(s->pool);
    fy_free(s);
}

/* ---- Lexer ----------------------------------------------------------------------------------- */

enum {
    T_EOF,
    T_NUM,
    T_STR,
    T_IDENT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_LP,
    T_RP,
    T_COMMA,
    K_AND, /* keywords, in the order of sel_keywords */
    K_OR,
    K_NOT,
    K_BETWEEN,
    K_IN,
    K_IS,
    K_NULL,
    K_LIKE,
    K_ESCAPE,
    K_TRUE,
    K_FALSE
};

static const char *const sel_keywords[] = {"and",  "or",   "not",    "between", "in",   "is",
                                           "null", "like", "escape", "true",    "false"};

typedef struct sel_tok {
    int kind;
    size_t off, end; /* bytes of the token in the text */
    sel_val num;     /* T_NUM */
} sel_tok;

/* Static types of subexpressions, checked while compiling. A property is a string or NULL at run
 * time and takes the type its context asks for. */
typedef enum sel_type { S_ERR = -1, S_BOOL, S_NUM, S_STR, S_PROP, S_NULL } sel_type;

typedef struct sel_cc {
    const uint8_t *src;
    size_t len;
    size_t pos; /* lexer cursor */
    sel_tok tok, prev;
    fy_selector *s;
    unsigned depth;
    uint32_t sp, sp_max;
    bool failed;
    char *err;
    size_t errlen;
    size_t errpos;
} sel_cc;

/* 1-based character position of byte off: UTF-8 continuation bytes do not count. */
static size_t sel_charpos(const uint8_t *src, size_t off)
{
    size_t n = 1;

    for (size_t i = 0; i < off; i++) {
        n += (src[i] & 0xC0) != 0x80;
    }
    return n;
}

static sel_type sel_fail(sel_cc *cc, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error: "position N: <reason>". Always returns S_ERR. */
static sel_type sel_fail(sel_cc *cc, size_t off, const char *fmt, ...)
{
    va_list ap;
    char reason[200];

    if (cc->failed) {
        return S_ERR;
    }
    cc->failed = true;
    cc->errpos = sel_charpos(cc->src, off);
    if (cc->err && cc->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        snprintf(cc->err, cc->errlen, "position %zu: %s", cc->errpos, reason);
    }
    return S_ERR;
}

/* The token as quoted text for a message: 'abc', 'a long identif...', or "the end". */
static const char *sel_tok_text(const sel_cc *cc, const sel_tok *t, char *buf, size_t n)
{
    size_t len = t->end - t->off;

    if (t->kind == T_EOF) {
        return "the end";
    }
    if (t->kind == T_STR) {
        return "a string";
    }
    if (len > 24) {
        snprintf(buf, n, "'%.*s...'", 20, (const char *)cc->src + t->off);
    } else {
        snprintf(buf, n, "'%.*s'", (int)len, (const char *)cc->src + t->off);
    }
    return buf;
}

static bool sel_is_ident_start(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static bool sel_is_ident(uint8_t c)
{
    return sel_is_ident_start(c) || sel_is_digit(c) || c == '.';
}

/* Reads the next token into cc->tok (the current one moves to cc->prev). False on a lexical
 * error, which is recorded. */
static bool sel_next(sel_cc *cc)
{
    const uint8_t *p = cc->src;
    size_t i = cc->pos, n = cc->len;
    sel_tok t = {T_EOF, 0, 0, {V_NULL, 0, {.i = 0}}};

    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r' || p[i] == '\f' ||
                     p[i] == '\v')) {
        i++;
    }
    t.off = i;
    if (i == n) {
        t.end = i;
    } else if (p[i] == '\'') {
        for (i++;; i++) {
            if (i == n) {
                sel_fail(cc, t.off, "unterminated string");
                return false;
            }
            if (p[i] == '\'') {
                if (i + 1 < n && p[i + 1] == '\'') {
                    i++; /* '' is a quote */
                    continue;
                }
                break;
            }
        }
        t.kind = T_STR;
        t.end = i + 1;
    } else if (sel_is_digit(p[i]) || (p[i] == '.' && i + 1 < n && sel_is_digit(p[i + 1]))) {
        bool exact;
        size_t len = sel_num_len(p + i, n - i, false, &exact);
        if (i + len < n && sel_is_ident(p[i + len])) {
            sel_fail(cc, i + len, "malformed number");
            return false;
        }
        if (!sel_parse_num(p + i, len, false, &t.num)) {
            sel_fail(cc, i, "number too long or out of range");
            return false;
        }
        t.kind = T_NUM;
        t.end = i + len;
    } else if (sel_is_ident_start(p[i])) {
        while (i < n && sel_is_ident(p[i])) {
            i++;
        }
        t.kind = T_IDENT;
        t.end = i;
        for (size_t k = 0; k < sizeof(sel_keywords) / sizeof(sel_keywords[0]); k++) {
            if (sel_ascii_ieq(p + t.off, t.end - t.off, sel_keywords[k])) {
                t.kind = K_AND + (int)k;
                break;
            }
        }
    } else {
        static const struct {
            char text[3];
            int kind;
        } ops[] = {{"<>", T_NE}, {"<=", T_LE},  {">=", T_GE},   {"=", T_EQ},   {"<", T_LT},
                   {">", T_GT},  {"+", T_PLUS}, {"-", T_MINUS}, {"*", T_STAR}, {"/", T_SLASH},
                   {"(", T_LP},  {")", T_RP},   {",", T_COMMA}};
        for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
            size_t l = strlen(ops[k].text);
            if (n - i >= l && memcmp(p + i, ops[k].text, l) == 0) {
                t.kind = ops[k].kind;
                t.end = i + l;
                break;
            }
        }
        if (t.end == 0) {
            if (p[i] == '!' && i + 1 < n && p[i + 1] == '=') {
                sel_fail(cc, i, "'!=' is not an operator; use '<>'");
            } else if (p[i] == '"') {
                sel_fail(cc, i, "unexpected '\"': strings are in single quotes");
            } else if (p[i] >= 0x21 && p[i] < 0x7F) {
                sel_fail(cc, i, "unexpected character '%c'", p[i]);
            } else {
                sel_fail(cc, i, "unexpected byte 0x%02X", p[i]);
            }
            return false;
        }
    }
    cc->prev = cc->tok;
    cc->tok = t;
    cc->pos = t.end;
    return true;
}

/* ---- Code generation ------------------------------------------------------------------------- */

static uint32_t sel_emit(sel_cc *cc, uint8_t op, bool neg, uint32_t arg, int delta)
{
    fy_selector *s = cc->s;

    SEL_GROW(s->code, s->ncode, s->capcode);
    s->code[s->ncode].op = op;
    s->code[s->ncode].neg = neg;
    s->code[s->ncode].arg = arg;
    s->code[s->ncode].arg2 = 0;
    cc->sp = (uint32_t)((int64_t)cc->sp + delta);
    if (cc->sp > cc->sp_max) {
        cc->sp_max = cc->sp;
    }
    return s->ncode++;
}

static uint32_t sel_add_const(sel_cc *cc, sel_val v)
{
    fy_selector *s = cc->s;

    SEL_GROW(s->consts, s->nconsts, s->capconsts);
    s->consts[s->nconsts] = v;
    return s->nconsts++;
}

/* Copies the string literal of token t, unescaping '', into the pool. */
static sel_val sel_string(sel_cc *cc, const sel_tok *t)
{
    sel_val v = {V_STR, 0, {.p = cc->s->pool + cc->s->npool}};

    for (size_t i = t->off + 1; i + 1 < t->end; i++) {
        cc->s->pool[cc->s->npool++] = cc->src[i];
        if (cc->src[i] == '\'') {
            i++; /* the second quote of '' */
        }
    }
    v.len = (uint32_t)(cc->s->pool + cc->s->npool - v.u.p);
    return v;
}

/* Index of the property name of token t, reusing the slot of an earlier mention when it is one
 * of the cached names. */
static uint32_t sel_add_name(sel_cc *cc, const sel_tok *t)
{
    fy_selector *s = cc->s;
    const uint8_t *p = cc->src + t->off;
    uint32_t len = (uint32_t)(t->end - t->off);

    for (uint32_t i = 0; i < s->nnames && i < SEL_CACHE; i++) {
        if (s->names[i].len == len && memcmp(s->names[i].p, p, len) == 0) {
            return i;
        }
    }
    SEL_GROW(s->names, s->nnames, s->capnames);
    s->names[s->nnames].p = s->pool + s->npool;
    s->names[s->nnames].len = len;
    memcpy(s->pool + s->npool, p, len);
    s->npool += len;
    if (s->nnames < SEL_CACHE) {
        s->cached |= (uint32_t)1 << s->nnames;
        s->first[p[0]] |= (uint32_t)1 << s->nnames;
    }
    return s->nnames++;
}

/* Emits comparison op over the two operands compiled from code index lcode on. When they are
 * one property (or the tag) and one constant, the three instructions become one OP_PCMP; a
 * constant on the left swaps the sides (5 < a is a > 5). */
static void sel_emit_cmp(sel_cc *cc, uint8_t op, uint32_t lcode)
{
    static const uint8_t swapped[] = {OP_EQ, OP_NE, OP_GT, OP_GE, OP_LT, OP_LE};
    sel_insn *l = &cc->s->code[lcode], *r = l + 1;

    if (cc->s->ncode == lcode + 2) {
        if (l->op == OP_CONST && (r->op == OP_PROP || r->op == OP_TAG)) {
            sel_insn t = *l;
            *l = *r;
            *r = t;
            op = swapped[op - OP_EQ];
        }
        if ((l->op == OP_PROP || l->op == OP_TAG) && r->op == OP_CONST) {
            l->arg2 = r->arg;
            l->arg = l->op == OP_TAG ? SEL_ARG_TAG : l->arg;
            l->op = OP_PCMP;
            l->neg = op;
            cc->s->ncode--;
            cc->sp--;
            return;
        }
    }
    sel_emit(cc, op, false, 0, -1);
}

/* Jumps of an AND / OR chain are linked through their arg until the chain's end is known. */
static void sel_patch(sel_cc *cc, uint32_t jumps)
{
    while (jumps != SEL_NO_JUMP) {
        uint32_t next = cc->s->code[jumps].arg;
        cc->s->code[jumps].arg = cc->s->ncode;
        jumps = next;
    }
}

/* ---- Parser ---------------------------------------------------------------------------------- */

static const char *sel_type_name(sel_type t)
{
    switch (t) {
    case S_BOOL:
        return "a condition";
    case S_NUM:
        return "a number";
    case S_STR:
        return "a string";
    default:
        return "a value";
    }
}

/* Makes the value of type t (starting at byte off) a condition for AND, OR, NOT or the whole
 * selector: a property is read as a boolean; numbers and strings are type errors. */
static bool sel_cond(sel_cc *cc, sel_type t, size_t off)
{
    if (t == S_NUM || t == S_STR) {
        sel_fail(cc, off, "expected a condition, found %s", sel_type_name(t));
        return false;
    }
    if (t == S_PROP) {
        sel_emit(cc, OP_TOBOOL, false, 0, 0);
    }
    return true;
}

/* Whether values of types l and r can be compared (ordered when order is set). */
static bool sel_comparable(sel_cc *cc, sel_type l, sel_type r, bool order, size_t off)
{
    if (l == S_NULL || r == S_NULL || (l == S_PROP && r == S_PROP)) {
        return true;
    }
    if (order && (l == S_BOOL || r == S_BOOL)) {
        sel_fail(cc, off, "conditions compare only with = and <>");
        return false;
    }
    if (l == S_PROP || r == S_PROP || l == r) {
        return true;
    }
    sel_fail(cc, off, "cannot compare %s with %s", sel_type_name(l), sel_type_name(r));
    return false;
}

static bool sel_numeric(sel_cc *cc, sel_type t, size_t off, const char *op)
{
    if (t == S_NUM || t == S_PROP || t == S_NULL) {
        return true;
    }
    sel_fail(cc, off, "'%s' needs numbers, found %s", op, sel_type_name(t));
    return false;
}

static bool sel_stringish(sel_cc *cc, sel_type t, size_t off, const char *op)
{
    if (t == S_STR || t == S_PROP || t == S_NULL) {
        return true;
    }
    sel_fail(cc, off, "%s needs a string or a property on its left, found %s", op,
             sel_type_name(t));
    return false;
}

/* Counts one level of nesting ('(', NOT, unary sign); false past FY_SELECTOR_MAX_DEPTH. */
static bool sel_enter(sel_cc *cc)
{
    if (++cc->depth > FY_SELECTOR_MAX_DEPTH) {
        sel_fail(cc, cc->tok.off, "nesting deeper than %u levels", FY_SELECTOR_MAX_DEPTH);
        return false;
    }
    return true;
}

static sel_type sel_parse_or(sel_cc *cc);

static sel_type sel_parse_primary(sel_cc *cc)
{
    sel_tok t = cc->tok;
    sel_type type;
    char buf[40], buf2[64];

    switch (t.kind) {
    case T_NUM:
        sel_emit(cc, OP_CONST, false, sel_add_const(cc, t.num), 1);
        return sel_next(cc) ? S_NUM : S_ERR;
    case T_STR:
        sel_emit(cc, OP_CONST, false, sel_add_const(cc, sel_string(cc, &t)), 1);
        return sel_next(cc) ? S_STR : S_ERR;
    case K_TRUE:
    case K_FALSE:
        sel_emit(cc, OP_CONST, false, sel_add_const(cc, sel_bool(t.kind == K_TRUE)), 1);
        return sel_next(cc) ? S_BOOL : S_ERR;
    case K_NULL:
        sel_emit(cc, OP_CONST, false, sel_add_const(cc, sel_null), 1);
        return sel_next(cc) ? S_NULL : S_ERR;
    case T_IDENT:
        if (t.end - t.off == 4 && memcmp(cc->src + t.off, "TAGS", 4) == 0) {
            sel_emit(cc, OP_TAG, false, 0, 1);
        } else {
            sel_emit(cc, OP_PROP, false, sel_add_name(cc, &t), 1);
        }
        return sel_next(cc) ? S_PROP : S_ERR;
    case T_LP:
        if (!sel_enter(cc) || !sel_next(cc)) {
            return S_ERR;
        }
        type = sel_parse_or(cc);
        if (type == S_ERR) {
            return S_ERR;
        }
        if (cc->tok.kind != T_RP) {
            return sel_fail(
                cc, cc->tok.off, "expected ')' to close the '(' at position %zu, found %s",
                sel_charpos(cc->src, t.off), sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
        }
        cc->depth--;
        return sel_next(cc) ? type : S_ERR;
    default:
        /* "expected a value after '>'" [", found ')'"]: the end needs no naming. */
        snprintf(buf2, sizeof(buf2), ", found %s", sel_tok_text(cc, &t, buf, sizeof(buf)));
        if (cc->prev.end > 0) {
            return sel_fail(cc, t.off, "expected a value after %s%s",
                            sel_tok_text(cc, &cc->prev, buf, sizeof(buf)),
                            t.kind == T_EOF ? "" : buf2);
        }
        return sel_fail(cc, t.off, "expected a value%s", t.kind == T_EOF ? "" : buf2);
    }
}

static sel_type sel_parse_unary(sel_cc *cc)
{
    sel_tok op = cc->tok;
    uint32_t at;
    sel_type t;

    if (op.kind != T_PLUS && op.kind != T_MINUS) {
        return sel_parse_primary(cc);
    }
    if (!sel_enter(cc) || !sel_next(cc)) {
        return S_ERR;
    }
    at = cc->s->ncode;
    t = sel_parse_unary(cc);
    if (t == S_ERR || !sel_numeric(cc, t, op.off, op.kind == T_PLUS ? "+" : "-")) {
        return S_ERR;
    }
    cc->depth--;
    if (op.kind == T_PLUS) {
        if (t == S_PROP) {
            sel_emit(cc, OP_TONUM, false, 0, 0);
        }
    } else if (t == S_NUM && cc->s->ncode == at + 1 && cc->s->code[at].op == OP_CONST) {
        sel_val *c = &cc->s->consts[cc->s->code[at].arg];
        *c = sel_neg(*c); /* a negative literal: no instruction */
    } else {
        sel_emit(cc, OP_NEG, false, 0, 0);
    }
    return t == S_NULL ? S_NULL : S_NUM;
}

static sel_type sel_parse_binary(sel_cc *cc, bool sum)
{
    sel_type t = sum ? sel_parse_binary(cc, false) : sel_parse_unary(cc);

    for (;;) {
        sel_tok op = cc->tok;
        uint8_t code;
        const char *text;
        sel_type r;

        if (sum && (op.kind == T_PLUS || op.kind == T_MINUS)) {
            code = op.kind == T_PLUS ? OP_ADD : OP_SUB;
            text = op.kind == T_PLUS ? "+" : "-";
        } else if (!sum && (op.kind == T_STAR || op.kind == T_SLASH)) {
            code = op.kind == T_STAR ? OP_MUL : OP_DIV;
            text = op.kind == T_STAR ? "*" : "/";
        } else {
            return t;
        }
        if (t == S_ERR || !sel_numeric(cc, t, op.off, text) || !sel_next(cc)) {
            return S_ERR;
        }
        r = sum ? sel_parse_binary(cc, false) : sel_parse_unary(cc);
        if (r == S_ERR || !sel_numeric(cc, r, op.off, text)) {
            return S_ERR;
        }
        sel_emit(cc, code, false, 0, -1);
        t = S_NUM;
    }
}

/* LIKE 'pattern' [ESCAPE 'c'], the current token being the pattern. */
static bool sel_parse_like(sel_cc *cc, bool neg)
{
    fy_selector *s = cc->s;
    sel_tok pt = cc->tok;
    sel_val pv;
    int esc = -1;
    sel_range r;

    if (pt.kind != T_STR) {
        sel_fail(cc, pt.off, "expected a string pattern after LIKE");
        return false;
    }
    if (!sel_next(cc)) {
        return false;
    }
    if (cc->tok.kind == K_ESCAPE) {
        sel_val ev;
        if (!sel_next(cc)) {
            return false;
        }
        if (cc->tok.kind != T_STR) {
            sel_fail(cc, cc->tok.off, "expected a one-character string after ESCAPE");
            return false;
        }
        ev = sel_string(cc, &cc->tok);
        if (ev.len != 1) {
            sel_fail(cc, cc->tok.off, "the ESCAPE string must be exactly one character");
            return false;
        }
        esc = ev.u.p[0];
        if (!sel_next(cc)) {
            return false;
        }
    }
    pv = sel_string(cc, &pt);
    /* Room for one unit even for an empty pattern: s->pat must not stay NULL (NULL + 0). */
    SEL_GROW(s->pat, s->npat, s->cappat);
    r.first = s->npat;
    for (uint32_t i = 0; i < pv.len; i++) {
        uint16_t unit = pv.u.p[i];
        if (esc >= 0 && pv.u.p[i] == esc) {
            if (i + 1 == pv.len ||
                (pv.u.p[i + 1] != '%' && pv.u.p[i + 1] != '_' && pv.u.p[i + 1] != esc)) {
                sel_fail(cc, pt.off,
                         "in the LIKE pattern the escape character must be followed by '%%', "
                         "'_' or itself");
                return false;
            }
            unit = pv.u.p[++i];
        } else if (unit == '_') {
            unit = SEL_PAT_ONE;
        } else if (unit == '%') {
            unit = SEL_PAT_ANY;
            if (s->npat > r.first && s->pat[s->npat - 1] == SEL_PAT_ANY) {
                continue; /* '%%' is '%' */
            }
        }
        SEL_GROW(s->pat, s->npat, s->cappat);
        s->pat[s->npat++] = unit;
    }
    r.n = s->npat - r.first;
    SEL_GROW(s->pats, s->npats, s->cappats);
    s->pats[s->npats] = r;
    sel_emit(cc, OP_LIKE, neg, s->npats++, 0);
    return true;
}

/* IN ('a', 'b', ...), the current token being '('. */
static bool sel_parse_in(sel_cc *cc, bool neg)
{
    fy_selector *s = cc->s;
    sel_range r;
    char buf[40];

    if (cc->tok.kind != T_LP) {
        sel_fail(cc, cc->tok.off, "expected '(' after IN, found %s",
                 sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
        return false;
    }
    r.first = s->nconsts;
    for (;;) {
        if (!sel_next(cc)) {
            return false;
        }
        if (cc->tok.kind != T_STR) {
            sel_fail(cc, cc->tok.off, "expected a string in the IN list, found %s",
                     sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
            return false;
        }
        sel_add_const(cc, sel_string(cc, &cc->tok));
        if (!sel_next(cc)) {
            return false;
        }
        if (cc->tok.kind == T_RP) {
            break;
        }
        if (cc->tok.kind != T_COMMA) {
            sel_fail(cc, cc->tok.off, "expected ',' or ')' in the IN list, found %s",
                     sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
            return false;
        }
    }
    r.n = s->nconsts - r.first;
    SEL_GROW(s->lists, s->nlists, s->caplists);
    s->lists[s->nlists] = r;
    sel_emit(cc, OP_IN, neg, s->nlists++, 0);
    return sel_next(cc);
}

/* sum [ cmp-op sum | [NOT] BETWEEN sum AND sum | [NOT] IN (...) | [NOT] LIKE 'p' [ESCAPE 'c']
 *     | IS [NOT] NULL ] -- comparisons do not chain. */
static sel_type sel_parse_cmp(sel_cc *cc)
{
    size_t start = cc->tok.off;
    uint32_t lcode = cc->s->ncode;
    sel_type l = sel_parse_binary(cc, true), r, hi;
    sel_tok op = cc->tok;
    bool neg = false;
    char buf[40];

    if (l == S_ERR) {
        return S_ERR;
    }
    if (op.kind >= T_EQ && op.kind <= T_GE) {
        if (!sel_next(cc) || (r = sel_parse_binary(cc, true)) == S_ERR ||
            !sel_comparable(cc, l, r, op.kind != T_EQ && op.kind != T_NE, op.off)) {
            return S_ERR;
        }
        sel_emit_cmp(cc, (uint8_t)(OP_EQ + (op.kind - T_EQ)), lcode);
        return S_BOOL;
    }
    if (op.kind == K_NOT) {
        if (!sel_next(cc)) {
            return S_ERR;
        }
        if (cc->tok.kind != K_BETWEEN && cc->tok.kind != K_IN && cc->tok.kind != K_LIKE) {
            return sel_fail(cc, cc->tok.off, "expected BETWEEN, IN or LIKE after NOT, found %s",
                            sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
        }
        neg = true;
        op = cc->tok;
    }
    switch (op.kind) {
    case K_BETWEEN:
        if (!sel_next(cc) || (r = sel_parse_binary(cc, true)) == S_ERR ||
            !sel_comparable(cc, l, r, true, op.off)) {
            return S_ERR;
        }
        if (cc->tok.kind != K_AND) {
            return sel_fail(cc, cc->tok.off, "expected AND in BETWEEN, found %s",
                            sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
        }
        if (!sel_next(cc) || (hi = sel_parse_binary(cc, true)) == S_ERR ||
            !sel_comparable(cc, l, hi, true, op.off) || !sel_comparable(cc, r, hi, true, op.off)) {
            return S_ERR;
        }
        sel_emit(cc, OP_BETWEEN, neg, 0, -2);
        return S_BOOL;
    case K_IN:
        if (!sel_stringish(cc, l, start, "IN") || !sel_next(cc) || !sel_parse_in(cc, neg)) {
            return S_ERR;
        }
        return S_BOOL;
    case K_LIKE:
        if (!sel_stringish(cc, l, start, "LIKE") || !sel_next(cc) || !sel_parse_like(cc, neg)) {
            return S_ERR;
        }
        return S_BOOL;
    case K_IS:
        if (!sel_next(cc)) {
            return S_ERR;
        }
        if (cc->tok.kind == K_NOT) {
            neg = true;
            if (!sel_next(cc)) {
                return S_ERR;
            }
        }
        if (cc->tok.kind != K_NULL) {
            return sel_fail(cc, cc->tok.off, "expected NULL after IS%s, found %s",
                            neg ? " NOT" : "", sel_tok_text(cc, &cc->tok, buf, sizeof(buf)));
        }
        sel_emit(cc, OP_ISNULL, neg, 0, 0);
        return sel_next(cc) ? S_BOOL : S_ERR;
    default:
        return l;
    }
}

static sel_type sel_parse_not(sel_cc *cc)
{
    size_t start;
    sel_type t;

    if (cc->tok.kind != K_NOT) {
        return sel_parse_cmp(cc);
    }
    if (!sel_enter(cc) || !sel_next(cc)) {
        return S_ERR;
    }
    start = cc->tok.off;
    t = sel_parse_not(cc);
    if (t == S_ERR || !sel_cond(cc, t, start)) {
        return S_ERR;
    }
    cc->depth--;
    sel_emit(cc, OP_NOT, false, 0, 0);
    return S_BOOL;
}

/* AND chains (and_chain) or OR chains: each operand becomes a condition; a FALSE (TRUE) operand
 * jumps to the end of the chain with the result on the stack. */
static sel_type sel_parse_chain(sel_cc *cc, bool and_chain)
{
    size_t start = cc->tok.off;
    int kind = and_chain ? K_AND : K_OR;
    sel_type t = and_chain ? sel_parse_not(cc) : sel_parse_chain(cc, true);
    uint32_t jumps = SEL_NO_JUMP;

    if (t == S_ERR || cc->tok.kind != kind) {
        return t;
    }
    if (!sel_cond(cc, t, start)) {
        return S_ERR;
    }
    while (cc->tok.kind == kind) {
        jumps = sel_emit(cc, and_chain ? OP_JF : OP_JT, false, jumps, 0);
        if (!sel_next(cc)) {
            return S_ERR;
        }
        start = cc->tok.off;
        t = and_chain ? sel_parse_not(cc) : sel_parse_chain(cc, true);
        if (t == S_ERR || !sel_cond(cc, t, start)) {
            return S_ERR;
        }
        sel_emit(cc, and_chain ? OP_AND : OP_OR, false, 0, -1);
    }
    sel_patch(cc, jumps);
    return S_BOOL;
}

static sel_type sel_parse_or(sel_cc *cc)
{
    return sel_parse_chain(cc, false);
}

fy_selector *fy_selector_compile(const char *expr, size_t len, char *err, size_t errlen,
                                 size_t *errpos)
{
    sel_cc cc;
    sel_type t;
    char buf[40];

    memset(&cc, 0, sizeof(cc));
    cc.src = (const uint8_t *)expr;
    cc.len = len;
    cc.err = err;
    cc.errlen = errlen;
    if (err && errlen > 0) {
        err[0] = '\0';
    }
    if (!expr && len > 0) {
        sel_fail(&cc, 0, "no selector text");
        goto fail;
    }
    if (len > FY_SELECTOR_MAX_LEN) {
        sel_fail(&cc, FY_SELECTOR_MAX_LEN, "selector longer than %u bytes", FY_SELECTOR_MAX_LEN);
        goto fail;
    }
    cc.s = FY_NEW(fy_selector);
    cc.s->pool = fy_malloc(len + 1); /* literals and names only shrink when copied */
    if (!sel_next(&cc)) {
        goto fail;
    }
    if (cc.tok.kind == T_EOF) {
        /* No selector (JMS): every message matches. */
        sel_emit(&cc, OP_CONST, false, sel_add_const(&cc, sel_bool(true)), 1);
    } else {
        t = sel_parse_or(&cc);
        if (t == S_ERR) {
            goto fail;
        }
        if (cc.tok.kind != T_EOF) {
            if (cc.tok.kind == T_RP) {
                sel_fail(&cc, cc.tok.off, "unexpected ')' without a matching '('");
            } else {
                sel_fail(&cc, cc.tok.off, "unexpected %s: expected AND, OR or the end",
                         sel_tok_text(&cc, &cc.tok, buf, sizeof(buf)));
            }
            goto fail;
        }
        if (!sel_cond(&cc, t, 0)) {
            goto fail;
        }
    }
    sel_emit(&cc, OP_END, false, 0, 0);
    if (cc.sp != 1 || cc.sp_max > SEL_STACK_MAX) {
        sel_fail(&cc, 0, "selector too complex");
        goto fail;
    }
    if (errpos) {
        *errpos = 0;
    }
    return cc.s;

fail:
    if (errpos) {
        *errpos = cc.errpos;
    }
    fy_selector_free(cc.s);
    return NULL;
}
