/* SPDX-License-Identifier: Apache-2.0 */
/* The fy_malloc family: abort on OOM instead of returning NULL. */
#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    /* No allocation here: the log formatter might need memory we do not have. */
    fprintf(stderr, "FATAL alloc msg=\"out of memory\" bytes=%zu\n", n);
    abort();
}

void *fy_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        oom(n);
    }
    return p;
}

void *fy_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p) {
        oom(nmemb * size);
    }
    return p;
}

void *fy_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        oom(n);
    }
    return q;
}

char *fy_strdup(const char *s)
{
    return fy_strndup(s, strlen(s));
}

char *fy_strndup(const char *s, size_t n)
{
    char *d = fy_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void fy_free(void *p)
{
    free(p);
}
