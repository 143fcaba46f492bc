/* SPDX-License-Identifier: Apache-2.0 */
/* String-keyed open-addressing hash map. */
#include "common/strmap.h"

#include "common/alloc.h"

#include <string.h>

static const char tomb_key[1];
#define TOMB (tomb_key)

uint64_t fy_hash64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static fy_strmap_slot *find(const fy_strmap *m, const char *key, size_t len, uint64_t h)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        fy_strmap_slot *s = &m->slots[i];
        if (!s->key) {
            return NULL;
        }
        if (s->key != TOMB && s->hash == h && strncmp(s->key, key, len) == 0 &&
            s->key[len] == '\0') {
            return s;
        }
    }
}

void *fy_strmap_get(const fy_strmap *m, const char *key, size_t len)
{
    fy_strmap_slot *s = find(m, key, len, fy_hash64(key, len));
    return s ? s->val : NULL;
}

static void insert_new(fy_strmap *m, const char *key, void *val, uint64_t h)
{
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        fy_strmap_slot *s = &m->slots[i];
        if (!s->key || s->key == TOMB) {
            if (!s->key) {
                m->used++;
            }
            s->key = key;
            s->val = val;
            s->hash = h;
            m->n++;
            return;
        }
    }
}

static void rehash(fy_strmap *m, size_t cap)
{
    fy_strmap old = *m;
    m->slots = fy_calloc(cap, sizeof(*m->slots));
    m->cap = cap;
    m->n = m->used = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key && old.slots[i].key != TOMB) {
            insert_new(m, old.slots[i].key, old.slots[i].val, old.slots[i].hash);
        }
    }
    fy_free(old.slots);
}

void fy_strmap_put(fy_strmap *m, const char *key, void *val)
{
    size_t len = strlen(key);
    uint64_t h = fy_hash64(key, len);
    fy_strmap_slot *s = find(m, key, len, h);
    if (s) {
        s->key = key;
        s->val = val;
        return;
    }
    if ((m->used + 1) * 4 > m->cap * 3) {
        rehash(m, m->cap == 0 ? 16 : (m->n + 1) * 4 > m->cap * 2 ? m->cap * 2 : m->cap);
    }
    insert_new(m, key, val, h);
}

void *fy_strmap_del(fy_strmap *m, const char *key)
{
    size_t len = strlen(key);
    fy_strmap_slot *s = find(m, key, len, fy_hash64(key, len));
    void *val;
    if (!s) {
        return NULL;
    }
    val = s->val;
    s->key = TOMB;
    s->val = NULL;
    m->n--;
    return val;
}

void fy_strmap_each(const fy_strmap *m, void (*fn)(void *arg, const char *key, void *val),
                    void *arg)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key && m->slots[i].key != TOMB) {
            fn(arg, m->slots[i].key, m->slots[i].val);
        }
    }
}

void fy_strmap_free(fy_strmap *m)
{
    fy_free(m->slots);
    m->slots = NULL;
    m->cap = m->n = m->used = 0;
}
