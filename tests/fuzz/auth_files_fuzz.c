/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the password file and ACL parsers (broker/auth.h): arbitrary text never
 * crashes either; an ACL that parses answers questions about any user, client id and topic
 * taken from the input; a password file that parses answers a check for its first user (with
 * at most a few PBKDF2 rounds: the input's iteration counts are capped first). */
#include "broker/auth.h"
#include "common/log.h"
#include "common/passwd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    char err[256];
    fy_acl *acl;
    fy_passwd_db *db;
    fy_log_set_level(FY_LOG_OFF);

    acl = fy_acl_parse(text, size, "fuzz", err, sizeof(err));
    if (acl) {
        static const char *const protos[] = {"mqtt", "native", "amqp"};
        for (int op = FY_ACL_READ; op <= FY_ACL_ADMIN; op++) {
            for (size_t p = 0; p < 3; p++) {
                size_t half = size / 2;
                fy_slice topic = {data + half, size - half};
                fy_acl_allows(acl, "alice", "cid", protos[p], (fy_acl_op)op, topic);
                fy_acl_allows(acl, NULL, "c/+", protos[p], (fy_acl_op)op, topic);
            }
        }
        fy_acl_free(acl);
    }

    /* The line parser on every line; the database only when every count is small. */
    for (size_t i = 0, start = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            fy_passwd_entry e;
            const char *why = "";
            if (fy_passwd_parse_line(text + start, i - start, &e, &why) == 1 &&
                (e.type == 6 || e.iterations <= 8)) {
                fy_passwd_check(&e, "password", 8);
            }
            start = i + 1;
        }
    }
    if (size < 4096 && !memmem(data, size, "$7$", 3)) {
        db = fy_passwd_db_parse(text, size, "fuzz", err, sizeof(err));
        if (db) {
            fy_passwd_db_check(db, fy_slice_str("alice"), fy_slice_str("pw"));
        }
        fy_passwd_db_free(db);
    }
    return 0;
}
