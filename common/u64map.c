/* SPDX-License-Identifier: Apache-2.0 */
/* Open-addressing uint64 -> uint64 map. */
#include "common/u64map.h"

#include "common/alloc.h"

static size_t slot_of(uint64_t key, size_t cap)
{
    /* Fibonacci hashing: the top bits of the product, the only ones every bit of the key
     * reaches. (Bits 17.. of it, as before, depend on the key's low 32 bits only: every
     * (topic << 32 | queue) key of one queue number had the same home slot.) */
    unsigned bits = (unsigned)__builtin_ctzll((unsigned long long)cap);
    return bits ? (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - bits)) : 0;
}

uint64_t *fy_u64map_find(const fy_u64map *m, uint64_t key)
{
    if (m->cap == 0) {
        return NULL;
    }
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i]) {
            return NULL;
        }
        if (m->keys[i] == key) {
            return &m->vals[i];
        }
    }
}

static void grow(fy_u64map *m)
{
    fy_u64map bigger = FY_U64MAP_INIT;
    bigger.cap = m->cap ? m->cap * 2 : 16;
    bigger.keys = fy_calloc(bigger.cap, sizeof(uint64_t));
    bigger.vals = fy_calloc(bigger.cap, sizeof(uint64_t));
    bigger.used = fy_calloc(bigger.cap, 1);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->used[i]) {
            *fy_u64map_upsert(&bigger, m->keys[i], 0) = m->vals[i];
        }
    }
    fy_u64map_free(m);
    *m = bigger;
}

uint64_t *fy_u64map_upsert(fy_u64map *m, uint64_t key, uint64_t dflt)
{
    if ((m->n + 1) * 4 > m->cap * 3) {
        grow(m);
    }
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->used[i]) {
            m->used[i] = 1;
            m->keys[i] = key;
            m->vals[i] = dflt;
            m->n++;
            return &m->vals[i];
        }
        if (m->keys[i] == key) {
            return &m->vals[i];
        }
    }
}

bool fy_u64map_del(fy_u64map *m, uint64_t key)
{
    size_t i, j, mask = m->cap - 1;
    if (m->cap == 0) {
        return false;
    }
    for (i = slot_of(key, m->cap);; i = (i + 1) & mask) {
        if (!m->used[i]) {
            return false;
        }
        if (m->keys[i] == key) {
            break;
        }
    }
    /* Backward-shift deletion: move later entries of the probe run into the hole when their
     * home slot does not lie cyclically in (hole, their position]. */
    m->used[i] = 0;
    m->n--;
    for (j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->used[i] = 1;
            m->used[j] = 0;
            i = j;
        }
    }
    return true;
}

size_t fy_u64map_del_if(fy_u64map *m, bool (*fn)(void *arg, uint64_t key, uint64_t val), void *arg)
{
    uint64_t *gone = NULL;
    size_t n = 0, cap = 0;
    /* Deleting moves later entries back: decide on all of them first. */
    for (size_t i = 0; i < m->cap; i++) {
        if (m->used[i] && fn(arg, m->keys[i], m->vals[i])) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;
                gone = fy_realloc(gone, cap * sizeof(*gone));
            }
            gone[n++] = m->keys[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        fy_u64map_del(m, gone[i]);
    }
    fy_free(gone);
    return n;
}

void fy_u64map_each(const fy_u64map *m, void (*fn)(void *arg, uint64_t key, uint64_t val),
                    void *arg)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->used[i]) {
            fn(arg, m->keys[i], m->vals[i]);
        }
    }
}

void fy_u64map_free(fy_u64map *m)
{
    fy_free(m->keys);
    fy_free(m->vals);
    fy_free(m->used);
    m->keys = m->vals = NULL;
    m->used = NULL;
    m->cap = m->n = 0;
}
