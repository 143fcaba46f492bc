/* SPDX-License-Identifier: Apache-2.0 */
/* A string-keyed hash map (open addressing, tombstones on removal) from NUL-terminated names to
 * pointers. Keys are borrowed: the caller keeps each key alive while it is in the map (usually
 * the key is a field of the value). Not thread-safe. */
#ifndef FERRY_COMMON_STRMAP_H
#define FERRY_COMMON_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fy_strmap_slot {
    const char *key; /* NULL = empty; FY_STRMAP_TOMB = removed */
    void *val;
    uint64_t hash;
} fy_strmap_slot;

typedef struct fy_strmap {
    fy_strmap_slot *slots;
    size_t cap;  /* power of two, or 0 */
    size_t n;    /* live entries */
    size_t used; /* live + tombstones */
} fy_strmap;

#define FY_STRMAP_INIT                                                                             \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* FNV-1a over n bytes; also used to pick a queue from a sharding key. */
uint64_t fy_hash64(const void *p, size_t n);

/* The value for key (len bytes, need not be NUL-terminated), or NULL. */
void *fy_strmap_get(const fy_strmap *m, const char *key, size_t len);
/* Inserts or replaces key -> val. Aborts on OOM. */
void fy_strmap_put(fy_strmap *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *fy_strmap_del(fy_strmap *m, const char *key);
/* Calls fn for each entry, in no particular order. fn must not change the map. */
void fy_strmap_each(const fy_strmap *m, void (*fn)(void *arg, const char *key, void *val),
                    void *arg);
void fy_strmap_free(fy_strmap *m);

#endif
