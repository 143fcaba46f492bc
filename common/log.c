/* SPDX-License-Identifier: Apache-2.0 */
/* logfmt line writer: timestamp, level, module, body — formatted into one buffer and written
 * with a single fwrite so lines from the loop and the store writer never interleave. */
#include "common/log.h"

#include "ferry/errors.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int fy_log_level_min = FY_LOG_INFO;
static FILE *log_file;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"};

void fy_log_set_level(fy_log_level level)
{
    fy_log_level_min = (int)level;
}

int fy_log_parse_level(const char *s, fy_log_level *out)
{
    static const char *const lower[] = {"debug", "info", "warn", "error", "fatal", "off"};
    for (int i = 0; i <= FY_LOG_OFF; i++) {
        if (strcasecmp(s, lower[i]) == 0) {
            *out = (fy_log_level)i;
            return FY_OK;
        }
    }
    return -FY_EINVAL;
}

void fy_log_set_file(FILE *f)
{
    log_file = f;
}

static FILE *opened;
static char *opened_path;

static int open_append(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int fy_log_open(const char *path)
{
    int fd = open_append(path);
    FILE *f;
    if (fd < 0) {
        return -FY_EIO;
    }
    f = fdopen(fd, "a");
    if (!f) {
        close(fd);
        return -FY_EIO;
    }
    fy_log_close();
    opened = f;
    opened_path = strdup(path);
    log_file = f;
    return FY_OK;
}

int fy_log_reopen(void)
{
    int fd;
    if (!opened) {
        return FY_OK;
    }
    fd = open_append(opened_path);
    if (fd < 0) {
        return -FY_EIO;
    }
    fflush(opened);
    /* dup2 swaps the file under the descriptor atomically; the FILE stays valid. */
    if (dup2(fd, fileno(opened)) < 0) {
        close(fd);
        return -FY_EIO;
    }
    close(fd);
    return FY_OK;
}

void fy_log_close(void)
{
    if (!opened) {
        return;
    }
    if (log_file == opened) {
        log_file = NULL;
    }
    fclose(opened);
    opened = NULL;
    free(opened_path);
    opened_path = NULL;
}

void fy_log_write(fy_log_level level, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;
    int r;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s %s ", ts.tv_nsec / 1000000,
                 level_names[level], module);
    n += (size_t)r;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (r < 0) {
        r = 0;
    }
    n += (size_t)r;
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2; /* truncated: still one line */
    }
    line[n++] = '\n';
    FILE *f = log_file ? log_file : stderr;
    fwrite(line, 1, n, f);
    fflush(f);
}
