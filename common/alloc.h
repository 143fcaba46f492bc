/* SPDX-License-Identifier: Apache-2.0 */
/* Allocation for ferryd and the tools: the fy_malloc family aborts with a log line on
 * out-of-memory, so callers never check for NULL. libferry uses the plain allocator and
 * returns -FY_ENOMEM instead. */
#ifndef FERRY_COMMON_ALLOC_H
#define FERRY_COMMON_ALLOC_H

#include <stddef.h>

/* Each returns memory or aborts the process (after logging) when the system has none. */
void *fy_malloc(size_t n);
void *fy_calloc(size_t nmemb, size_t size);
void *fy_realloc(void *p, size_t n);
char *fy_strdup(const char *s);
char *fy_strndup(const char *s, size_t n);
/* Frees p; NULL-safe. */
void fy_free(void *p);

#define FY_NEW(type) ((type *)fy_calloc(1, sizeof(type)))

#endif
