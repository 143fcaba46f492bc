/* SPDX-License-Identifier: Apache-2.0 */
/* Structured logging: one logfmt line per event,
 *   2026-11-24T19:57:01.123Z INFO mqtt conn=42 client=dev7 msg="session resumed"
 * The level is tested before anything is formatted. Safe to call from any thread. */
#ifndef FERRY_COMMON_LOG_H
#define FERRY_COMMON_LOG_H

#include <stdio.h>

typedef enum fy_log_level {
    FY_LOG_DEBUG = 0,
    FY_LOG_INFO = 1,
    FY_LOG_WARN = 2,
    FY_LOG_ERROR = 3,
    FY_LOG_FATAL = 4,
    FY_LOG_OFF = 5
} fy_log_level;

extern int fy_log_level_min; /* lines below this level are dropped; default INFO */

/* Sets the minimum level. */
void fy_log_set_level(fy_log_level level);
/* Parses "debug", "info", "warn", "error", "fatal" or "off"; returns 0 or -FY_EINVAL. */
int fy_log_parse_level(const char *s, fy_log_level *out);
/* Directs log lines to f (default stderr). The caller keeps ownership of f. */
void fy_log_set_file(FILE *f);
/* Appends log lines to the file at path (created 0640 if missing) from now on. Returns FY_OK or
 * -FY_EIO (errno set; logging is unchanged). Call before other threads log. */
int fy_log_open(const char *path);
/* Reopens the file of fy_log_open at its path (after a rename by logrotate): the new file
 * replaces the old one under the same descriptor, so a line written meanwhile by another thread
 * goes to one or the other, never nowhere. FY_OK, or -FY_EIO (the old file stays in use). A
 * no-op without fy_log_open. */
int fy_log_reopen(void);
/* Closes the file of fy_log_open; lines go to stderr again. Call after other threads stopped. */
void fy_log_close(void);

/* Writes one line. fmt is the logfmt body after the module, e.g. "conn=%d msg=\"hello\"". */
void fy_log_write(fy_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define fy_log(level, module, ...)                                                                 \
    do {                                                                                           \
        if ((int)(FY_LOG_##level) >= fy_log_level_min) {                                           \
            fy_log_write(FY_LOG_##level, module, __VA_ARGS__);                                     \
        }                                                                                          \
    } while (0)

#endif
