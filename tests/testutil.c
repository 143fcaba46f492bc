/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the unit tests. */
#include "tests/testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const char *fy_test_tmpdir(const char *tag)
{
    static char path[4096];
    const char *base = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/ferry-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(path)) {
        perror("mkdtemp");
        abort();
    }
    return path;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void fy_test_rmrf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fy_test_source_path(const char *rel, char *buf, size_t n)
{
    const char *src = getenv("FERRY_SOURCE_DIR");
    snprintf(buf, n, "%s/%s", src && *src ? src : ".", rel);
    return buf;
}
