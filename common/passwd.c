/* SPDX-License-Identifier: Apache-2.0 */
/* mosquitto password file lines: parsing (pure), PBKDF2-HMAC-SHA512 checking and writing through
 * OpenSSL, and the base64 the format uses. */
#include "common/passwd.h"

#include "ferry/errors.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdio.h>
#include <string.h>

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void fy_base64_encode(fy_buf *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t left = n - i;
        if (left > 1) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (left > 2) {
            v |= p[i + 2];
        }
        fy_buf_put_u8(out, (uint8_t)b64chars[(v >> 18) & 63]);
        fy_buf_put_u8(out, (uint8_t)b64chars[(v >> 12) & 63]);
        fy_buf_put_u8(out, left > 1 ? (uint8_t)b64chars[(v >> 6) & 63] : '=');
        fy_buf_put_u8(out, left > 2 ? (uint8_t)b64chars[v & 63] : '=');
    }
}

static int b64val(char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

long fy_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t o = 0, pad = 0;
    if (n % 4 != 0) {
        return -1;
    }
    while (pad < 2 && pad < n && s[n - 1 - pad] == '=') {
        pad++;
    }
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        size_t take = i + 4 == n ? 3 - pad : 3;
        for (size_t k = 0; k < 4; k++) {
            int d = (i + k >= n - pad) ? 0 : b64val(s[i + k]);
            if (d < 0) {
                return -1;
            }
            v = (v << 6) | (uint32_t)d;
        }
        if (o + take > cap) {
            return -1;
        }
        for (size_t k = 0; k < take; k++) {
            out[o++] = (uint8_t)(v >> (16 - 8 * k));
        }
    }
    return (long)o;
}

/* The next '$'-terminated field of [*p, end), or to the end when last. */
static bool next_field(const char **p, const char *end, bool last, const char **f, size_t *n)
{
    const char *d = last ? end : memchr(*p, '$', (size_t)(end - *p));
    if (!d) {
        return false;
    }
    *f = *p;
    *n = (size_t)(d - *p);
    *p = d + (d < end);
    return *n > 0;
}

int fy_passwd_parse_line(const char *line, size_t len, fy_passwd_entry *e, const char **why)
{
    const char *end = line + len, *colon, *p, *f;
    size_t n, skip = 0;
    long got;
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) {
        len--;
    }
    end = line + len;
    while (skip < len && (line[skip] == ' ' || line[skip] == '\t')) {
        skip++;
    }
    if (skip == len || line[skip] == '#') {
        return 0;
    }
    memset(e, 0, sizeof(*e));
    colon = memchr(line, ':', len);
    if (!colon || colon == line) {
        *why = "expected user:$7$iterations$salt$hash";
        return -FY_EINVAL;
    }
    for (const char *q = line; q < end; q++) {
        if ((unsigned char)*q < 0x20 || *q == 0x7f) {
            *why = "control character in the line";
            return -FY_EINVAL;
        }
    }
    e->user = (fy_slice){(const uint8_t *)line, (size_t)(colon - line)};
    p = colon + 1;
    if (end - p < 3 || p[0] != '$' || (p[1] != '6' && p[1] != '7') || p[2] != '$') {
        *why = "not a hashed password ($6$ or $7$): hash the file with mosquitto_passwd -U or "
               "ferryctl passwd";
        return -FY_EINVAL;
    }
    e->type = p[1] - '0';
    p += 3;
    if (e->type == 7) {
        uint64_t it = 0;
        if (!next_field(&p, end, false, &f, &n) || n > 10) {
            *why = "bad iteration count";
            return -FY_EINVAL;
        }
        for (size_t i = 0; i < n; i++) {
            if (f[i] < '0' || f[i] > '9') {
                *why = "bad iteration count";
                return -FY_EINVAL;
            }
            it = it * 10 + (uint64_t)(f[i] - '0');
        }
        if (it < 1 || it > FY_PASSWD_MAX_ITERATIONS) {
            *why = "iteration count out of range (1..10000000)";
            return -FY_EINVAL;
        }
        e->iterations = (uint32_t)it;
    }
    if (!next_field(&p, end, false, &f, &n) ||
        (got = fy_base64_decode(f, n, e->salt, sizeof(e->salt))) < 1) {
        *why = "bad salt (base64)";
        return -FY_EINVAL;
    }
    e->salt_len = (size_t)got;
    if (!next_field(&p, end, true, &f, &n) ||
        fy_base64_decode(f, n, e->hash, sizeof(e->hash)) != FY_PASSWD_HASH_LEN) {
        *why = "bad hash (base64 of 64 bytes)";
        return -FY_EINVAL;
    }
    return 1;
}

static bool passwd_hash(int type, const uint8_t *salt, size_t salt_len, uint32_t iterations,
                        const char *password, size_t plen, uint8_t out[FY_PASSWD_HASH_LEN])
{
    if (type == 7) {
        return PKCS5_PBKDF2_HMAC(password, (int)plen, salt, (int)salt_len, (int)iterations,
                                 EVP_sha512(), FY_PASSWD_HASH_LEN, out) == 1;
    }
    /* $6$: mosquitto 1.x, one SHA-512 over the password then the salt. */
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int olen = 0;
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, password, plen) == 1 &&
              EVP_DigestUpdate(ctx, salt, salt_len) == 1 &&
              EVP_DigestFinal_ex(ctx, out, &olen) == 1 && olen == FY_PASSWD_HASH_LEN;
    EVP_MD_CTX_free(ctx);
    return ok;
}

bool fy_passwd_check(const fy_passwd_entry *e, const char *password, size_t plen)
{
    uint8_t h[FY_PASSWD_HASH_LEN];
    bool ok;
    if (plen > 65535 ||
        !passwd_hash(e->type, e->salt, e->salt_len, e->iterations, password, plen, h)) {
        return false;
    }
    ok = CRYPTO_memcmp(h, e->hash, sizeof(h)) == 0;
    OPENSSL_cleanse(h, sizeof(h));
    return ok;
}

int fy_passwd_format(fy_buf *out, const char *user, const char *password, uint32_t iterations)
{
    uint8_t salt[FY_PASSWD_SALT_LEN], h[FY_PASSWD_HASH_LEN];
    char num[16];
    if (!user[0]) {
        return -FY_EINVAL;
    }
    for (const char *q = user; *q; q++) {
        if (*q == ':' || (unsigned char)*q < 0x20 || *q == 0x7f) {
            return -FY_EINVAL;
        }
    }
    if (RAND_bytes(salt, sizeof(salt)) != 1 ||
        !passwd_hash(7, salt, sizeof(salt), iterations, password, strlen(password), h)) {
        return -FY_EIO;
    }
    fy_buf_append(out, user, strlen(user));
    snprintf(num, sizeof(num), "%u", iterations);
    fy_buf_append(out, ":$7$", 4);
    fy_buf_append(out, num, strlen(num));
    fy_buf_put_u8(out, '$');
    fy_base64_encode(out, salt, sizeof(salt));
    fy_buf_put_u8(out, '$');
    fy_base64_encode(out, h, sizeof(h));
    fy_buf_put_u8(out, '\n');
    OPENSSL_cleanse(h, sizeof(h));
    return FY_OK;
}
