/* SPDX-License-Identifier: Apache-2.0 */
/* LD_PRELOAD fault injection for tests/torture/disk_full.py where mount(2) is not allowed (and to
 * test that path as well): while the file named by FERRY_ENOSPC_FLAG exists, write(2), pwrite(2),
 * writev(2), fsync(2) and fdatasync(2) on files under the directory FERRY_ENOSPC_DIR fail with
 * ENOSPC, as on a full disk. Test use only: it looks at the flag and the descriptor's path on every
 * call. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t writev(int fd, const struct iovec *iov, int cnt);
int fsync(int fd);
int fdatasync(int fd);

static int disk_full_for(int fd)
{
    const char *flag = getenv("FERRY_ENOSPC_FLAG");
    const char *dir = getenv("FERRY_ENOSPC_DIR");
    char link[64], path[4096];
    ssize_t n;
    if (!flag || !dir || access(flag, F_OK) != 0) {
        return 0;
    }
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);
    if (n < 0) {
        return 0;
    }
    path[n] = '\0';
    return strncmp(path, dir, strlen(dir)) == 0;
}

/* The next definition of a symbol (libc's), as a function pointer: POSIX's dlsym idiom. */
#define REAL(fp, name)                                                                             \
    do {                                                                                           \
        if (!(fp)) {                                                                               \
            void *sym = dlsym(RTLD_NEXT, name);                                                    \
            memcpy(&(fp), &sym, sizeof(sym));                                                      \
        }                                                                                          \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    static ssize_t (*real)(int, const void *, size_t);
    REAL(real, "write");
    return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    static ssize_t (*real)(int, const void *, size_t, off_t);
    REAL(real, "pwrite");
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    static ssize_t (*real)(int, const void *, size_t, off_t);
    REAL(real, "pwrite64");
    return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    static ssize_t (*real)(int, const struct iovec *, int);
    REAL(real, "writev");
    return real(fd, iov, cnt);
}

int fsync(int fd)
{
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    static int (*real)(int);
    REAL(real, "fsync");
    return real(fd);
}

int fdatasync(int fd)
{
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    static int (*real)(int);
    REAL(real, "fdatasync");
    return real(fd);
}
