/* SPDX-License-Identifier: Apache-2.0 */
/* `ferryctl passwd FILE USER`: adds a user to a password file, or changes their password, in
 * mosquitto's format (PBKDF2-SHA512, 210,000 rounds, a random salt) so that ferryd and
 * mosquitto both read it. The password comes from stdin, or from a prompt without echo on a
 * terminal. The file is replaced atomically and created with mode 0600. */
#include "tools/ferryctl_passwd.h"

#include "common/buf.h"
#include "common/passwd.h"

#include "ferry/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

const char ferryctl_passwd_help[] =
    "Usage: ferryctl passwd [-D] FILE USER\n"
    "\n"
    "Adds USER to the password file FILE (created if missing), or sets their password;\n"
    "-D deletes USER instead. The password is read from stdin (first line), or asked\n"
    "twice without echo when stdin is a terminal. Lines are mosquitto's format\n"
    "(user:$7$210000$salt$hash, PBKDF2-SHA512): mosquitto reads the file too. Send ferryd\n"
    "SIGHUP to load it.\n";

/* Reads one line into buf (without its newline); echo off on a terminal. */
static int read_secret(const char *prompt, char *buf, size_t n)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    size_t len;
    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    if (!fgets(buf, (int)n, stdin)) {
        buf[0] = '\0';
        if (tty) {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fputc('\n', stderr);
        }
        return -1;
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }
    return tty ? 1 : 0;
}

int ferryctl_ask_password(char *buf, unsigned long n)
{
    return read_secret("Password: ", buf, n) < 0 ? -1 : 0;
}

/* The file's lines except USER's (kept as they are), appended to out. */
static int keep_others(const char *path, const char *user, fy_buf *out, bool *found)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t ulen = strlen(user);
    if (!f) {
        return errno == ENOENT ? FY_OK : -FY_EIO;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, user, ulen) == 0 && line[ulen] == ':') {
            *found = true;
            continue;
        }
        fy_buf_append(out, line, strlen(line));
        if (out->len > 0 && out->data[out->len - 1] != '\n') {
            fy_buf_put_u8(out, '\n');
        }
    }
    fclose(f);
    return FY_OK;
}

int ferryctl_passwd(int argc, char **argv)
{
    const char *path, *user;
    char pw[1024], again[1024], tmp[4096];
    fy_buf out = FY_BUF_INIT;
    bool del = false, found = false;
    int rc = 1, fd = -1, tty;
    if (argc > 0 && strcmp(argv[0], "-D") == 0) {
        del = true;
        argc--;
        argv++;
    }
    if (argc != 2) {
        fputs(ferryctl_passwd_help, stderr);
        return 2;
    }
    path = argv[0];
    user = argv[1];
    if (!user[0] || strchr(user, ':') || strlen(user) > 1000) {
        fprintf(stderr, "ferryctl passwd: a user name is 1..1000 bytes without ':'\n");
        return 2;
    }
    if (keep_others(path, user, &out, &found) != FY_OK) {
        fprintf(stderr, "ferryctl passwd: cannot read %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (del) {
        if (!found) {
            fprintf(stderr, "ferryctl passwd: no user '%s' in %s\n", user, path);
            goto out;
        }
    } else {
        tty = read_secret("Password: ", pw, sizeof(pw));
        if (tty < 0 || !pw[0]) {
            fprintf(stderr, "ferryctl passwd: no password given\n");
            goto out;
        }
        if (tty == 1 && (read_secret("Reenter password: ", again, sizeof(again)) < 0 ||
                         strcmp(pw, again) != 0)) {
            fprintf(stderr, "ferryctl passwd: the passwords do not match\n");
            goto out;
        }
        if (fy_passwd_format(&out, user, pw, FY_PASSWD_ITERATIONS) != FY_OK) {
            fprintf(stderr, "ferryctl passwd: cannot hash the password (OpenSSL)\n");
            goto out;
        }
    }
    snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0 || fchmod(fd, 0600) != 0 || write(fd, out.data, out.len) != (ssize_t)out.len ||
        fsync(fd) != 0) {
        fprintf(stderr, "ferryctl passwd: cannot write %s: %s\n", tmp, strerror(errno));
        if (fd >= 0) {
            unlink(tmp);
        }
        goto out;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "ferryctl passwd: cannot replace %s: %s\n", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    explicit_bzero(pw, sizeof(pw));
    explicit_bzero(again, sizeof(again));
    if (out.data) {
        explicit_bzero(out.data, out.cap);
    }
    fy_buf_free(&out);
    return rc;
}
