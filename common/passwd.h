/* SPDX-License-Identifier: Apache-2.0 */
/* Password file lines in mosquitto's format: `user:$7$<iterations>$<salt b64>$<hash b64>`
 * (PBKDF2-HMAC-SHA512, mosquitto_passwd 2.x) and the older `user:$6$<salt b64>$<hash b64>`
 * (one SHA-512 of password then salt). The line parser is a pure function (fuzzed); hashing
 * and checking go through OpenSSL. Shared by ferryd (broker/auth.c) and `ferryctl passwd`. */
#ifndef FERRY_COMMON_PASSWD_H
#define FERRY_COMMON_PASSWD_H

#include "common/buf.h"
#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FY_PASSWD_HASH_LEN 64       /* SHA-512 output */
#define FY_PASSWD_SALT_MAX 64       /* longest salt accepted in a file */
#define FY_PASSWD_SALT_LEN 12       /* salt written by fy_passwd_format (as mosquitto_passwd) */
#define FY_PASSWD_ITERATIONS 210000 /* written by fy_passwd_format (OWASP 2023, SHA-512) */
#define FY_PASSWD_MAX_ITERATIONS 10000000u

/* One parsed line. user borrows the line. */
typedef struct fy_passwd_entry {
    fy_slice user;
    int type;            /* 6 or 7 */
    uint32_t iterations; /* type 7 */
    uint8_t salt[FY_PASSWD_SALT_MAX];
    size_t salt_len;
    uint8_t hash[FY_PASSWD_HASH_LEN];
} fy_passwd_entry;

/* Parses one line (without its newline; a trailing CR is ignored). Returns 1 and fills e for an
 * entry, 0 for a blank or `#` comment line, or -FY_EINVAL with a reason in *why (a static
 * string) for anything else: a plain-text password, an unknown hash type, bad base64, a salt
 * or hash of the wrong size. Pure: no allocation, no I/O. */
int fy_passwd_parse_line(const char *line, size_t len, fy_passwd_entry *e, const char **why);

/* Whether password matches e, in time independent of where they differ (CRYPTO_memcmp). */
bool fy_passwd_check(const fy_passwd_entry *e, const char *password, size_t plen);

/* Appends `user:$7$210000$<salt>$<hash>\n` for password with a fresh random salt (RAND_bytes).
 * Returns FY_OK, -FY_EINVAL for a user name holding ':' or a control character, or -FY_EIO
 * when OpenSSL fails. */
int fy_passwd_format(fy_buf *out, const char *user, const char *password, uint32_t iterations);

/* Base64 (RFC 4648, with padding) used by the format; decode returns the byte count or -1. */
void fy_base64_encode(fy_buf *out, const uint8_t *p, size_t n);
long fy_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap);

#endif
