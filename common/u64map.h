/* SPDX-License-Identifier: Apache-2.0 */
/* A small open-addressing hash map from uint64_t keys to uint64_t values (linear probing,
 * power-of-two capacity, backward-shift deletion). Used for per-queue offset tables. Not
 * thread-safe. */
#ifndef FERRY_COMMON_U64MAP_H
#define FERRY_COMMON_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fy_u64map {
    uint64_t *keys;
    uint64_t *vals;
    uint8_t *used;
    size_t cap; /* power of two, or 0 */
    size_t n;
} fy_u64map;

#define FY_U64MAP_INIT                                                                             \
    {                                                                                              \
        NULL, NULL, NULL, 0, 0                                                                     \
    }

/* Returns a pointer to the value for key, or NULL if absent. Valid until the next insert. */
uint64_t *fy_u64map_find(const fy_u64map *m, uint64_t key);
/* Returns a pointer to the value for key, inserting `dflt` if absent. Aborts on OOM. */
uint64_t *fy_u64map_upsert(fy_u64map *m, uint64_t key, uint64_t dflt);
/* Removes key; returns whether it was there. Pointers from find/upsert become invalid. */
bool fy_u64map_del(fy_u64map *m, uint64_t key);
/* Removes every entry for which fn returns true (fn may release what val refers to then; it
 * must not change the map). Returns how many went. */
size_t fy_u64map_del_if(fy_u64map *m, bool (*fn)(void *arg, uint64_t key, uint64_t val), void *arg);
/* Calls fn for every entry, in no particular order. */
void fy_u64map_each(const fy_u64map *m, void (*fn)(void *arg, uint64_t key, uint64_t val),
                    void *arg);
void fy_u64map_free(fy_u64map *m);

#endif
