/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of authentication and authorization: mosquitto password lines (a line written by
 * mosquitto_passwd 2.0.11, our writer's output read back, every malformed form with its reason),
 * the password database (duplicates, cached checks), MQTT topic matching and filter overlap, the
 * ACL file (users, patterns with %u and %c, deny, native topics, groups, admin, errors with
 * file:line), and fy_auth (allow_anonymous, reload keeping the old files). */
#include "broker/auth.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/passwd.h"
#include "tests/testutil.h"

#include "ferry/errors.h"

#include <event2/event.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the system headers above; this comment keeps clang-format from hoisting it. */
#include <cmocka.h>

/* Written by `mosquitto_passwd -b f bob hunter2` (mosquitto 2.0.11): 101 rounds. */
static const char mosq_line[] = "bob:$7$101$cUwZAT8hdYuCD95/$QdNygI082aQZicgpRVtHAVAI6v5j1u4tu9Y/"
                                "N7bylulQTdHaS5PGSUVkgcCd32TP2jtwUc53DAjMF9IA0uCS7A==";

static fy_slice S(const char *s)
{
    return fy_slice_str(s);
}

/* ---- Password lines ---------------------------------------------------------------------- */

static void test_auth_passwd_mosquitto_line(void **state)
{
    fy_passwd_entry e;
    const char *why = NULL;
    assert_int_equal(fy_passwd_parse_line(mosq_line, strlen(mosq_line), &e, &why), 1);
    assert_int_equal(e.type, 7);
    assert_int_equal(e.iterations, 101);
    assert_int_equal(e.salt_len, 12);
    assert_int_equal(e.user.len, 3);
    assert_memory_equal(e.user.p, "bob", 3);
    assert_true(fy_passwd_check(&e, "hunter2", 7));
    assert_false(fy_passwd_check(&e, "hunter3", 7));
    assert_false(fy_passwd_check(&e, "hunter", 6));
    assert_false(fy_passwd_check(&e, "", 0));
}

static void test_auth_passwd_writer_round_trip(void **state)
{
    fy_buf b = FY_BUF_INIT, b2 = FY_BUF_INIT;
    fy_passwd_entry e, e2;
    const char *why = NULL;
    assert_int_equal(fy_passwd_format(&b, "alice", "wonder land", 1000), FY_OK);
    assert_true(b.len > 0 && b.data[b.len - 1] == '\n');
    assert_int_equal(fy_passwd_parse_line((const char *)b.data, b.len - 1, &e, &why), 1);
    assert_int_equal(e.type, 7);
    assert_int_equal(e.iterations, 1000);
    assert_int_equal(e.salt_len, FY_PASSWD_SALT_LEN);
    assert_true(fy_passwd_check(&e, "wonder land", 11));
    assert_false(fy_passwd_check(&e, "wonder lane", 11));
    /* A fresh salt each time: the same password hashes differently. */
    assert_int_equal(fy_passwd_format(&b2, "alice", "wonder land", 1000), FY_OK);
    assert_int_equal(fy_passwd_parse_line((const char *)b2.data, b2.len - 1, &e2, &why), 1);
    assert_memory_not_equal(e.salt, e2.salt, FY_PASSWD_SALT_LEN);
    assert_memory_not_equal(e.hash, e2.hash, FY_PASSWD_HASH_LEN);
    /* The default writes at least 210,000 rounds. */
    assert_true(FY_PASSWD_ITERATIONS >= 210000);
    assert_int_equal(fy_passwd_format(&b, "a:b", "x", 1000), -FY_EINVAL);
    assert_int_equal(fy_passwd_format(&b, "", "x", 1000), -FY_EINVAL);
    assert_int_equal(fy_passwd_format(&b, "tab\tname", "x", 1000), -FY_EINVAL);
    fy_buf_free(&b);
    fy_buf_free(&b2);
}

static void test_auth_passwd_sha512_v6(void **state)
{
    /* mosquitto 1.x: $6$salt$SHA512(password || salt). This line logs in to mosquitto 2.0.11
     * with password "pw" (checked by hand when written). */
    fy_passwd_entry e;
    const char *why = NULL;
    static const char line[] =
        "old:$6$c2FsdDEyMzQ1Njc4$"
        "HB2ZT/zfCHtx2pvx3OJZZzRDUbs7NG6mV6xXbVio6vEbSbBzjl0GrjMUc0fQjOQk4v/5KPnqbslWwrOutKOkTg==";
    assert_int_equal(fy_passwd_parse_line(line, strlen(line), &e, &why), 1);
    assert_int_equal(e.type, 6);
    assert_int_equal(e.salt_len, 12);
    assert_true(fy_passwd_check(&e, "pw", 2));
    assert_false(fy_passwd_check(&e, "px", 2));
}

static void test_auth_passwd_malformed(void **state)
{
    static const struct {
        const char *line;
        const char *why;
    } bad[] = {
        {"alice", "expected user:"},
        {":$7$1$c2FsdA==$x", "expected user:"},
        {"alice:secret", "not a hashed password"},
        {"alice:$5$abc$def", "not a hashed password"},
        {"alice:$7$$c2FsdA==$x", "bad iteration count"},
        {"alice:$7$12a$c2FsdA==$x", "bad iteration count"},
        {"alice:$7$0$c2FsdA==$x", "iteration count out of range"},
        {"alice:$7$99999999999$c2FsdA==$x", "bad iteration count"},
        {"alice:$7$100$c2Fs!A==$x", "bad salt"},
        {"alice:$7$100$c2FsdA=$x", "bad salt"},
        {"alice:$7$100$c2FsdA==$c2FsdA==", "bad hash"},
        {"alice:$7$100$c2FsdA==", "bad salt"},
        {"al\x01ice:$7$100$c2FsdA==$x", "control character"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fy_passwd_entry e;
        const char *why = "";
        int rc = fy_passwd_parse_line(bad[i].line, strlen(bad[i].line), &e, &why);
        if (rc != -FY_EINVAL || !strstr(why, bad[i].why)) {
            fail_msg("line %zu '%s': rc %d why '%s', want '%s'", i, bad[i].line, rc, why,
                     bad[i].why);
        }
    }
    fy_passwd_entry e;
    const char *why = "";
    assert_int_equal(fy_passwd_parse_line("", 0, &e, &why), 0);
    assert_int_equal(fy_passwd_parse_line("  # comment", 11, &e, &why), 0);
    assert_int_equal(fy_passwd_parse_line(" \r", 2, &e, &why), 0);
}

static void test_auth_base64(void **state)
{
    fy_buf b = FY_BUF_INIT;
    uint8_t out[16];
    fy_base64_encode(&b, (const uint8_t *)"fo", 2);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "Zm8=", 4);
    assert_int_equal(fy_base64_decode("Zm8=", 4, out, sizeof(out)), 2);
    assert_memory_equal(out, "fo", 2);
    assert_int_equal(fy_base64_decode("Zm9v", 4, out, sizeof(out)), 3);
    assert_int_equal(fy_base64_decode("Zm9", 3, out, sizeof(out)), -1);
    assert_int_equal(fy_base64_decode("Z=9v", 4, out, sizeof(out)), -1);
    assert_int_equal(fy_base64_decode("Zm9vZm9v", 8, out, 5), -1);
    fy_buf_free(&b);
}

/* ---- Password database --------------------------------------------------------------------- */

static void test_auth_passwd_db(void **state)
{
    fy_buf text = FY_BUF_INIT;
    char err[256];
    fy_passwd_db *db;
    fy_buf_append(&text, "# users\n", 8);
    assert_int_equal(fy_passwd_format(&text, "alice", "a-pw", 1000), FY_OK);
    fy_buf_append(&text, mosq_line, strlen(mosq_line));
    fy_buf_append(&text, "\r\n\n", 3);
    db = fy_passwd_db_parse((const char *)text.data, text.len, "pw", err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(fy_passwd_db_count(db), 2);
    for (int round = 0; round < 2; round++) { /* the second round uses the cached check */
        assert_true(fy_passwd_db_check(db, S("alice"), S("a-pw")));
        assert_true(fy_passwd_db_check(db, S("bob"), S("hunter2")));
        assert_false(fy_passwd_db_check(db, S("alice"), S("hunter2")));
        assert_false(fy_passwd_db_check(db, S("alic"), S("a-pw")));
        assert_false(fy_passwd_db_check(db, S("carol"), S("")));
    }
    fy_passwd_db_free(db);

    /* A duplicate user and a bad line are errors with file:line. */
    fy_buf_append(&text, mosq_line, strlen(mosq_line));
    assert_null(fy_passwd_db_parse((const char *)text.data, text.len, "pw", err, sizeof(err)));
    assert_string_equal(err, "pw:5: user 'bob' appears twice");
    assert_null(fy_passwd_db_parse("a:$7$1$c2FsdA==$x\n", 19, "f", err, sizeof(err)));
    assert_string_equal(err, "f:1: bad hash (base64 of 64 bytes)");
    assert_null(fy_passwd_db_parse("\n\nx:y\0z", 7, "f", err, sizeof(err)));
    assert_true(strncmp(err, "f:3: ", 5) == 0);
    fy_buf_free(&text);
}

/* ---- Topic matching ------------------------------------------------------------------------ */

static void test_auth_topic_matches(void **state)
{
    static const struct {
        const char *f, *t;
        bool m;
    } cases[] = {
        {"a/b", "a/b", true},       {"a/b", "a/c", false},   {"a/+", "a/b", true},
        {"a/+", "a/b/c", false},    {"a/#", "a", true},      {"a/#", "a/b/c", true},
        {"#", "a/b", true},         {"#", "$SYS/x", false},  {"+/x", "$SYS/x", false},
        {"$SYS/#", "$SYS/x", true}, {"a/+/c", "a//c", true}, {"+", "", true},
        {"a", "a/", false},         {"a/+", "a/", true},     {"+/+", "/x", true},
        {"a/b/#", "a/b", true},     {"a/b/#", "a/c", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (fy_acl_topic_matches(S(cases[i].f), S(cases[i].t)) != cases[i].m) {
            fail_msg("filter '%s' topic '%s': want %d", cases[i].f, cases[i].t, cases[i].m);
        }
    }
}

static void test_auth_filters_overlap(void **state)
{
    static const struct {
        const char *a, *b;
        bool o;
    } cases[] = {
        {"#", "a/b", true},
        {"a/#", "a", true},
        {"a/#", "b/#", false},
        {"a/+", "+/b", true},
        {"a/+", "a/b/c", false},
        {"a/+/#", "a/x", true},
        {"secret/alice/#", "secret/bob/#", false},
        {"secret/+/x", "secret/bob/#", true},
        {"#", "$SYS/#", false},
        {"$SYS/#", "$SYS/a", true},
        {"a/b", "a/b", true},
        {"a/b", "a/c", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (fy_acl_filters_overlap(S(cases[i].a), S(cases[i].b)) != cases[i].o ||
            fy_acl_filters_overlap(S(cases[i].b), S(cases[i].a)) != cases[i].o) {
            fail_msg("'%s' and '%s': want %d", cases[i].a, cases[i].b, cases[i].o);
        }
    }
}

/* ---- ACL file ------------------------------------------------------------------------------ */

static const char acl_text[] = "# anonymous clients\n"
                               "topic read public/#\n"
                               "ntopic read news\n"
                               "pattern readwrite clients/%c/#\n"
                               "pattern read users/%u/#\n"
                               "\n"
                               "user alice\n"
                               "  topic readwrite a/#\n"
                               "  topic write in/+\n"
                               "  topic deny a/secret\n"
                               "  topic b/c\n"
                               "  ntopic readwrite orders\n"
                               "  ntopic read logs*\n"
                               "  group billing\n"
                               "user root\n"
                               "admin\n"
                               "ntopic readwrite *\n"
                               "group *\n"
                               "user alice\n"
                               "topic read more/#\n";

static bool A(const fy_acl *acl, const char *user, const char *proto, fy_acl_op op,
              const char *topic)
{
    return fy_acl_allows(acl, user, "cid-1", proto, op, S(topic));
}

static void test_auth_acl_rules(void **state)
{
    char err[256];
    fy_acl *acl = fy_acl_parse(acl_text, strlen(acl_text), "acl", err, sizeof(err));
    assert_non_null(acl);
    /* alice, MQTT */
    assert_true(A(acl, "alice", "mqtt", FY_ACL_READ, "a/x"));
    assert_true(A(acl, "alice", "mqtt", FY_ACL_WRITE, "a/x/y"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_READ, "a/secret"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_WRITE, "a/secret"));
    assert_true(A(acl, "alice", "mqtt", FY_ACL_WRITE, "in/x"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_READ, "in/x"));
    assert_true(A(acl, "alice", "mqtt", FY_ACL_READ, "b/c"));       /* no access word: readwrite */
    assert_true(A(acl, "alice", "mqtt", FY_ACL_READ, "more/x"));    /* second section continues */
    assert_false(A(acl, "alice", "mqtt", FY_ACL_READ, "public/x")); /* anonymous rules only */
    /* patterns apply to every client */
    assert_true(A(acl, "alice", "mqtt", FY_ACL_WRITE, "clients/cid-1/x"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_WRITE, "clients/cid-2/x"));
    assert_true(A(acl, "alice", "mqtt", FY_ACL_READ, "users/alice/x"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_WRITE, "users/alice/x"));
    assert_false(A(acl, "bob", "mqtt", FY_ACL_READ, "users/alice/x"));
    assert_true(A(acl, "bob", "mqtt", FY_ACL_READ, "users/bob/x"));
    /* a user name with a wildcard or slash never expands a pattern */
    assert_false(A(acl, "x/y", "mqtt", FY_ACL_READ, "users/x/y/z"));
    assert_false(A(acl, "+", "mqtt", FY_ACL_READ, "users/+/z"));
    /* subscriptions: allowed when some readable topic is under the filter */
    assert_true(A(acl, "alice", "mqtt", FY_ACL_SUBSCRIBE, "#"));
    assert_true(A(acl, "alice", "mqtt", FY_ACL_SUBSCRIBE, "a/secret"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_SUBSCRIBE, "in/x"));
    assert_false(A(acl, "alice", "mqtt", FY_ACL_SUBSCRIBE, "zzz/#"));
    /* anonymous */
    assert_true(A(acl, NULL, "mqtt", FY_ACL_READ, "public/x"));
    assert_false(A(acl, NULL, "mqtt", FY_ACL_WRITE, "public/x"));
    assert_false(A(acl, NULL, "mqtt", FY_ACL_READ, "users/x"));
    assert_true(A(acl, NULL, "mqtt", FY_ACL_READ, "clients/cid-1/q"));
    assert_true(A(acl, NULL, "native", FY_ACL_READ, "news"));
    assert_false(A(acl, NULL, "native", FY_ACL_WRITE, "news"));
    /* native and AMQP: ntopic, group and admin rules; MQTT rules do not count */
    assert_true(A(acl, "alice", "native", FY_ACL_WRITE, "orders"));
    assert_true(A(acl, "alice", "amqp", FY_ACL_READ, "logs-2026"));
    assert_false(A(acl, "alice", "amqp", FY_ACL_WRITE, "logs-2026"));
    assert_false(A(acl, "alice", "native", FY_ACL_READ, "a"));
    assert_true(A(acl, "alice", "native", FY_ACL_GROUP, "billing"));
    assert_false(A(acl, "alice", "native", FY_ACL_GROUP, "billing2"));
    assert_false(A(acl, "alice", "native", FY_ACL_ADMIN, ""));
    assert_true(A(acl, "root", "native", FY_ACL_ADMIN, ""));
    assert_true(A(acl, "root", "admin", FY_ACL_ADMIN, ""));
    assert_true(A(acl, "root", "native", FY_ACL_WRITE, "anything"));
    assert_true(A(acl, "root", "native", FY_ACL_GROUP, "any"));
    assert_false(A(acl, "root", "mqtt", FY_ACL_READ, "a/x"));
    /* no ACL: everything */
    assert_true(fy_acl_allows(NULL, NULL, "", "mqtt", FY_ACL_WRITE, S("x")));
    fy_acl_free(acl);
}

static void test_auth_acl_errors(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        {"user alice\nfrobnicate x\n", "acl:2: unknown rule 'frobnicate'"},
        {"user\n", "acl:1: user needs a name"},
        {"topic read\n", "acl:1: 'topic' needs a topic filter"},
        {"\n\ntopic read a/#/b\n", "acl:3: bad topic filter 'a/#/b'"},
        {"topic read a+\n", "acl:1: bad topic filter 'a+'"},
        {"ntopic read bad name\n", "acl:1: bad name 'bad name'"},
        {"group a*b\n", "acl:1: bad name 'a*b'"},
        {"admin now\n", "acl:1: admin takes no argument"},
        {"pattern write\n", "acl:1: 'pattern' needs a topic filter"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fy_acl *acl = fy_acl_parse(bad[i].text, strlen(bad[i].text), "acl", err, sizeof(err));
        if (acl || strncmp(err, bad[i].err, strlen(bad[i].err)) != 0) {
            fail_msg("case %zu: got '%s', want '%s'", i, acl ? "(parsed)" : err, bad[i].err);
        }
    }
    assert_null(fy_acl_parse("topic a\0b\n", 10, "acl", err, sizeof(err)));
    assert_string_equal(err, "acl:1: NUL byte");
}

/* ---- fy_auth --------------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static fy_auth_request req(const char *user, const char *pw)
{
    fy_auth_request r = {"mqtt", "c", "127.0.0.1:1", user != NULL, S(user), pw != NULL, S(pw)};
    return r;
}

/* fy_auth_start without a loop (fy_auth_use_loop not called): answered at once. */
static int authn(fy_auth *a, const fy_auth_request *r)
{
    fy_auth_job *job = NULL;
    int rc = fy_auth_start(a, r, NULL, NULL, &job);
    assert_true(rc != FY_AUTH_PENDING);
    assert_null(job);
    return rc;
}

static void test_auth_state(void **state)
{
    char dir[] = "/tmp/ferry-auth-XXXXXX", pw[128], acl[128], err[512];
    fy_buf line = FY_BUF_INIT;
    fy_auth *a = NULL;
    fy_auth_request r;
    assert_non_null(mkdtemp(dir));
    snprintf(pw, sizeof(pw), "%s/pw", dir);
    snprintf(acl, sizeof(acl), "%s/acl", dir);
    assert_int_equal(fy_passwd_format(&line, "alice", "one", 1000), FY_OK);
    fy_buf_put_u8(&line, 0);
    write_file(pw, (const char *)line.data);
    write_file(acl, "user alice\ntopic read a/#\n");

    /* No files: anonymous decides. */
    assert_int_equal(fy_auth_new(NULL, "none", true, &a, err, sizeof(err)), FY_OK);
    r = req(NULL, NULL);
    assert_int_equal(authn(a, &r), FY_OK);
    r = req("who", "ever");
    assert_int_equal(authn(a, &r), FY_OK);
    assert_int_equal(fy_auth_authorize(a, NULL, "c", "mqtt", FY_ACL_WRITE, S("x")), FY_OK);
    fy_auth_free(a);
    assert_int_equal(fy_auth_new(NULL, NULL, false, &a, err, sizeof(err)), FY_OK);
    r = req(NULL, NULL);
    assert_int_equal(authn(a, &r), -FY_EPERM);
    fy_auth_free(a);

    /* Both files. */
    assert_int_equal(fy_auth_new(pw, acl, false, &a, err, sizeof(err)), FY_OK);
    assert_true(fy_auth_has_passwords(a));
    r = req("alice", "one");
    assert_int_equal(authn(a, &r), FY_OK);
    r = req("alice", "two");
    assert_int_equal(authn(a, &r), -FY_EPERM);
    r = req("alice", NULL);
    assert_int_equal(authn(a, &r), -FY_EPERM);
    r = req(NULL, NULL);
    assert_int_equal(authn(a, &r), -FY_EPERM);
    assert_int_equal(fy_auth_authorize(a, "alice", "c", "mqtt", FY_ACL_READ, S("a/1")), FY_OK);
    assert_int_equal(fy_auth_authorize(a, "alice", "c", "mqtt", FY_ACL_READ, S("b/1")), -FY_EPERM);

    /* A bad ACL on reload: refused with file:line, the old rules stay. */
    write_file(acl, "user alice\ntopic read b/#\nbogus\n");
    assert_int_equal(fy_auth_reload(a, err, sizeof(err)), -FY_EINVAL);
    assert_true(strstr(err, "/acl:3: unknown rule") != NULL);
    assert_int_equal(fy_auth_authorize(a, "alice", "c", "mqtt", FY_ACL_READ, S("a/1")), FY_OK);
    /* A missing password file on reload: the same. */
    unlink(pw);
    write_file(acl, "user alice\ntopic read b/#\n");
    assert_int_equal(fy_auth_reload(a, err, sizeof(err)), -FY_EIO);
    assert_true(strstr(err, "/pw: cannot open") != NULL);
    r = req("alice", "one");
    assert_int_equal(authn(a, &r), FY_OK);
    /* Good files again: in use. */
    write_file(pw, (const char *)line.data);
    assert_int_equal(fy_auth_reload(a, err, sizeof(err)), FY_OK);
    assert_int_equal(fy_auth_authorize(a, "alice", "c", "mqtt", FY_ACL_READ, S("b/1")), FY_OK);
    assert_int_equal(fy_auth_authorize(a, "alice", "c", "mqtt", FY_ACL_READ, S("a/1")), -FY_EPERM);
    fy_auth_free(a);

    /* Start-up fails closed. */
    write_file(pw, "alice:plain\n");
    assert_int_equal(fy_auth_new(pw, NULL, false, &a, err, sizeof(err)), -FY_EINVAL);
    assert_true(strstr(err, "/pw:1: not a hashed password") != NULL);
    unlink(pw);
    unlink(acl);
    rmdir(dir);
    fy_buf_free(&line);
}

/* Reads what the log file f holds now (from its start). */
static void read_log(FILE *f, char *out, size_t cap)
{
    size_t n;
    fflush(f);
    rewind(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
}

/* An unknown user is hashed with the costliest user's parameters, wherever that user stands (the
 * first user here has the fewest iterations); the fewest are reported too. A file mixing costs
 * is logged once at load, with both counts and what to do; a file with one count is not. */
static void test_auth_passwd_unknown_cost(void **state)
{
    static const char v6[] = "old:$6$c2FsdDEyMzQ1Njc4$"
                             "HB2ZT/zfCHtx2pvx3OJZZzRDUbs7NG6mV6xXbVio6vEbSbBzjl0GrjMUc0fQjOQk4v/"
                             "5KPnqbslWwrOutKOkTg==\n";
    char dir[] = "/tmp/ferry-auth-XXXXXX", pw[64], err[256], log[4096];
    fy_buf text = FY_BUF_INIT;
    fy_passwd_db *db;
    fy_auth *a = NULL;
    uint32_t fewest = 1;
    int saved = fy_log_level_min;
    FILE *f = tmpfile();

    assert_int_equal(fy_passwd_format(&text, "alice", "a", 1000), FY_OK);
    assert_int_equal(fy_passwd_format(&text, "bob", "b", 5000), FY_OK);
    assert_int_equal(fy_passwd_format(&text, "carol", "c", 2000), FY_OK);
    db = fy_passwd_db_parse((const char *)text.data, text.len, "pw", err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(fy_passwd_db_unknown_iterations(db, &fewest), 5000);
    assert_int_equal(fewest, 1000);
    assert_false(fy_passwd_db_check(db, S("dave"), S("b"))); /* still refused */
    fy_passwd_db_free(db);

    /* A $6$ line (one SHA-512) costs least; the unknown user takes the $7$ line's count. */
    fy_buf_reset(&text);
    fy_buf_append(&text, v6, strlen(v6));
    assert_int_equal(fy_passwd_format(&text, "alice", "a", 1500), FY_OK);
    db = fy_passwd_db_parse((const char *)text.data, text.len, "pw", err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(fy_passwd_db_unknown_iterations(db, &fewest), 1500);
    assert_int_equal(fewest, 0);
    fy_passwd_db_free(db);

    /* One count: nothing to tell apart. No users: the default count. */
    fy_buf_reset(&text);
    assert_int_equal(fy_passwd_format(&text, "alice", "a", 3000), FY_OK);
    assert_int_equal(fy_passwd_format(&text, "bob", "b", 3000), FY_OK);
    db = fy_passwd_db_parse((const char *)text.data, text.len, "pw", err, sizeof(err));
    assert_non_null(db);
    assert_int_equal(fy_passwd_db_unknown_iterations(db, &fewest), 3000);
    assert_int_equal(fewest, 3000);
    fy_passwd_db_free(db);
    assert_int_equal(fy_passwd_db_unknown_iterations(NULL, &fewest), FY_PASSWD_ITERATIONS);
    assert_int_equal(fewest, FY_PASSWD_ITERATIONS);

    /* Loading: one WARN for the mixed file, none for the uniform one. */
    assert_non_null(f);
    assert_non_null(mkdtemp(dir));
    snprintf(pw, sizeof(pw), "%s/pw", dir);
    fy_log_set_file(f);
    fy_log_set_level(FY_LOG_INFO);
    fy_buf_put_u8(&text, 0);
    write_file(pw, (const char *)text.data);
    assert_int_equal(fy_auth_new(pw, NULL, false, &a, err, sizeof(err)), FY_OK);
    read_log(f, log, sizeof(log));
    assert_null(strstr(log, "WARN"));
    fy_buf_reset(&text);
    assert_int_equal(fy_passwd_format(&text, "alice", "a", 1000), FY_OK);
    assert_int_equal(fy_passwd_format(&text, "bob", "b", 5000), FY_OK);
    fy_buf_put_u8(&text, 0);
    write_file(pw, (const char *)text.data);
    assert_int_equal(fy_auth_reload(a, err, sizeof(err)), FY_OK);
    read_log(f, log, sizeof(log));
    fy_log_set_file(NULL);
    fy_log_set_level((fy_log_level)saved);
    assert_non_null(strstr(log, " WARN auth file="));
    assert_non_null(strstr(log, "iterations_fewest=1000 iterations_most=5000"));
    assert_non_null(strstr(log, "an unknown user name takes as long as 5000 iterations"));
    assert_non_null(strstr(log, "rehash every line with one iteration count"));
    assert_null(strchr(strchr(log, '\n') + 1, '\n')); /* one line */
    fy_auth_free(a);
    fclose(f);
    unlink(pw);
    rmdir(dir);
    fy_buf_free(&text);
}

/* ---- Checks on the worker thread ------------------------------------------------------------ */

#define DEADLINE_MS 20000
#define NO_ANSWER 12345

/* One check's answer, as the done callback saw it. */
typedef struct answer {
    int result; /* NO_ANSWER until called */
    int calls;
} answer;

static void on_answer(void *arg, int result)
{
    answer *x = arg;
    x->result = result;
    x->calls++;
}

static void on_nap(evutil_socket_t fd, short what, void *arg)
{
}

/* A broker's fy_auth with a loop: alice (password "one", `rounds` PBKDF2 rounds) in a password
 * file of a fresh directory. */
typedef struct async_env {
    char dir[32];
    char pw[64];
    struct event_base *base;
    fy_auth *a;
} async_env;

static void async_open(async_env *e, uint32_t rounds, uint32_t max_pending, bool anon)
{
    char err[512];
    fy_buf line = FY_BUF_INIT;
    snprintf(e->dir, sizeof(e->dir), "/tmp/ferry-auth-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->pw, sizeof(e->pw), "%s/pw", e->dir);
    assert_int_equal(fy_passwd_format(&line, "alice", "one", rounds), FY_OK);
    fy_buf_put_u8(&line, 0);
    write_file(e->pw, (const char *)line.data);
    fy_buf_free(&line);
    e->base = event_base_new();
    assert_int_equal(fy_auth_new(e->pw, NULL, anon, &e->a, err, sizeof(err)), FY_OK);
    assert_int_equal(fy_auth_use_loop(e->a, e->base, max_pending), FY_OK);
}

/* Frees the fy_auth (unless the test did: e->a NULL), the loop and the directory. */
static void async_close(async_env *e)
{
    fy_auth_free(e->a);
    event_base_free(e->base);
    unlink(e->pw);
    rmdir(e->dir);
}

/* Runs the loop until *flag is set (or, with flag NULL, no check is pending), at most
 * DEADLINE_MS: a check that never answers fails the test instead of hanging it. */
static void pump_until(async_env *e, const int *flag)
{
    struct event *nap = evtimer_new(e->base, on_nap, NULL);
    uint64_t end = fy_mono_ms() + DEADLINE_MS;
    while (flag ? *flag == 0 : fy_auth_pending(e->a) > 0) {
        struct timeval tv = {0, 5000};
        assert_true(fy_mono_ms() < end);
        evtimer_add(nap, &tv);
        event_base_loop(e->base, EVLOOP_ONCE);
    }
    event_free(nap);
}

/* Starts a check that must be pending; its answer goes to x. */
static fy_auth_job *start_pending(fy_auth *a, const char *user, const char *password, answer *x)
{
    fy_auth_request r = req(user, password);
    fy_auth_job *job = NULL;
    x->result = NO_ANSWER;
    x->calls = 0;
    assert_int_equal(fy_auth_start(a, &r, on_answer, x, &job), FY_AUTH_PENDING);
    assert_non_null(job);
    return job;
}

/* Wrong passwords, unknown users and first logins are pending and answered on the loop; a
 * password that passed is then answered at once (the fast check); anonymous clients and
 * requests without a password never wait. */
static void test_auth_async_pending(void **state)
{
    async_env e;
    fy_auth_request r;
    answer wrong, unknown, right;
    async_open(&e, 20000, 8, false);
    start_pending(e.a, "alice", "two", &wrong);
    start_pending(e.a, "mallory", "one", &unknown);
    start_pending(e.a, "alice", "one", &right);
    assert_int_equal(fy_auth_pending(e.a), 3);
    assert_int_equal(wrong.calls + unknown.calls + right.calls, 0); /* never before the loop */
    pump_until(&e, NULL);
    assert_int_equal(wrong.calls, 1);
    assert_int_equal(wrong.result, -FY_EPERM);
    assert_int_equal(unknown.calls, 1);
    assert_int_equal(unknown.result, -FY_EPERM);
    assert_int_equal(right.calls, 1);
    assert_int_equal(right.result, FY_OK);
    assert_int_equal(fy_auth_checks(e.a), 3);

    /* Answered at once now: the accepted password, and what needs no hashing. */
    r = req("alice", "one");
    assert_int_equal(authn(e.a, &r), FY_OK);
    r = req("alice", NULL);
    assert_int_equal(authn(e.a, &r), -FY_EPERM);
    r = req(NULL, NULL);
    assert_int_equal(authn(e.a, &r), -FY_EPERM);
    assert_int_equal(fy_auth_checks(e.a), 3); /* none of these was a full check */
    /* A wrong password still waits, even after the right one passed. */
    start_pending(e.a, "alice", "onE", &wrong);
    pump_until(&e, &wrong.calls);
    assert_int_equal(wrong.result, -FY_EPERM);
    async_close(&e);
}

/* A cancelled check never calls back, whether it was waiting for the worker or running; the
 * worker's queue empties and nothing leaks (ASan). */
static void test_auth_async_cancel(void **state)
{
    async_env e;
    answer x[4], after;
    fy_auth_job *jobs[4];
    async_open(&e, 200000, 8, false);
    for (int i = 0; i < 4; i++) {
        jobs[i] = start_pending(e.a, "alice", i == 3 ? "one" : "bad", &x[i]);
    }
    /* The first is running (or about to), the others wait: cancel three of them. */
    fy_auth_cancel(e.a, jobs[1]);
    fy_auth_cancel(e.a, jobs[0]);
    fy_auth_cancel(e.a, jobs[3]);
    fy_auth_cancel(e.a, NULL);
    pump_until(&e, &x[2].calls);
    assert_int_equal(x[2].result, -FY_EPERM);
    pump_until(&e, NULL);
    assert_int_equal(x[0].calls + x[1].calls + x[3].calls, 0);
    assert_int_equal(fy_auth_pending(e.a), 0);
    /* The right password was cancelled: it is not remembered, so it waits again. */
    start_pending(e.a, "alice", "one", &after);
    pump_until(&e, &after.calls);
    assert_int_equal(after.result, FY_OK);
    async_close(&e);
}

/* A reload while a check runs: it is answered against the file it started with, and a password
 * it accepted is not remembered for the new file. */
static void test_auth_async_reload(void **state)
{
    async_env e;
    char err[512];
    fy_auth_request r;
    answer old, fresh;
    fy_buf line = FY_BUF_INIT;
    async_open(&e, 50000, 8, false);
    start_pending(e.a, "alice", "one", &old);
    /* alice's password becomes "two" while the check of "one" is pending. */
    assert_int_equal(fy_passwd_format(&line, "alice", "two", 1000), FY_OK);
    fy_buf_put_u8(&line, 0);
    write_file(e.pw, (const char *)line.data);
    fy_buf_free(&line);
    assert_int_equal(fy_auth_reload(e.a, err, sizeof(err)), FY_OK);
    pump_until(&e, &old.calls);
    assert_int_equal(old.result, FY_OK); /* right for the file it was checked against */
    /* "one" was not remembered for the new file: it is checked again, and refused. */
    start_pending(e.a, "alice", "one", &old);
    pump_until(&e, &old.calls);
    assert_int_equal(old.result, -FY_EPERM);
    start_pending(e.a, "alice", "two", &fresh);
    pump_until(&e, &fresh.calls);
    assert_int_equal(fresh.result, FY_OK);
    r = req("alice", "two");
    assert_int_equal(authn(e.a, &r), FY_OK); /* remembered: the file did not change since */
    async_close(&e);
}

/* A password file line for user with password (rounds PBKDF2 rounds, a fresh salt), appended
 * to text. */
static void add_user(fy_buf *text, const char *user, const char *password, uint32_t rounds)
{
    assert_int_equal(fy_passwd_format(text, user, password, rounds), FY_OK);
}

/* Writes the lines of the given buffers (NULL-terminated list) as the password file. */
static void write_users(const char *path, const fy_buf *const *lines)
{
    fy_buf all = FY_BUF_INIT;
    for (; *lines; lines++) {
        fy_buf_append(&all, (*lines)->data, (*lines)->len);
    }
    fy_buf_put_u8(&all, 0);
    write_file(path, (const char *)all.data);
    fy_buf_free(&all);
}

/* A reload keeps each remembered password whose user's entry (type, iterations, salt, hash) is
 * the same in the new file, so a SIGHUP for the ACL costs no full checks; a changed entry (a new
 * password, or the same one hashed again) or a removed user forgets it, and the old password no
 * longer passes. A check pending across a reload that left its entry as it was is remembered. */
static void test_auth_reload_remembered(void **state)
{
    async_env e;
    char acl[80], err[512];
    fy_buf alice = FY_BUF_INIT, bob = FY_BUF_INIT, bob2 = FY_BUF_INIT, alice2 = FY_BUF_INIT;
    const fy_buf *both[] = {&alice, &bob, NULL}, *changed[] = {&alice, &bob2, NULL},
                 *rehashed[] = {&alice2, &bob2, NULL}, *bob_only[] = {&bob2, NULL};
    fy_auth_request r;
    answer x, y;

    snprintf(e.dir, sizeof(e.dir), "/tmp/ferry-auth-XXXXXX");
    assert_non_null(mkdtemp(e.dir));
    snprintf(e.pw, sizeof(e.pw), "%s/pw", e.dir);
    snprintf(acl, sizeof(acl), "%s/acl", e.dir);
    add_user(&alice, "alice", "one", 20000);
    add_user(&bob, "bob", "b-pw", 20000);
    add_user(&bob2, "bob", "b-new", 20000);
    add_user(&alice2, "alice", "one", 20000); /* the same password, another salt */
    write_users(e.pw, both);
    write_file(acl, "user alice\ntopic read a/#\n");
    e.base = event_base_new();
    assert_int_equal(fy_auth_new(e.pw, acl, false, &e.a, err, sizeof(err)), FY_OK);
    assert_int_equal(fy_auth_use_loop(e.a, e.base, 8), FY_OK);

    /* alice's first login is pending when the ACL changes: her entry is the same, so the
     * password it accepts is remembered for the new files. */
    start_pending(e.a, "alice", "one", &x);
    start_pending(e.a, "bob", "b-pw", &y);
    write_file(acl, "user alice\ntopic read b/#\n");
    assert_int_equal(fy_auth_reload(e.a, err, sizeof(err)), FY_OK);
    pump_until(&e, NULL);
    assert_int_equal(x.result, FY_OK);
    assert_int_equal(y.result, FY_OK);
    assert_int_equal(fy_auth_checks(e.a), 2);
    r = req("alice", "one");
    assert_int_equal(authn(e.a, &r), FY_OK);

    /* Only the ACL changes again: both stay remembered, no full check. */
    write_file(acl, "user alice\ntopic read c/#\nuser bob\ntopic read c/#\n");
    assert_int_equal(fy_auth_reload(e.a, err, sizeof(err)), FY_OK);
    assert_int_equal(fy_auth_authorize(e.a, "bob", "c", "mqtt", FY_ACL_READ, S("c/1")), FY_OK);
    r = req("alice", "one");
    assert_int_equal(authn(e.a, &r), FY_OK);
    r = req("bob", "b-pw");
    assert_int_equal(authn(e.a, &r), FY_OK);
    assert_int_equal(fy_auth_checks(e.a), 2);

    /* bob's password changes: his old one is refused (a full check), the new one passes; alice's
     * line is as it was and she stays remembered. */
    write_users(e.pw, changed);
    assert_int_equal(fy_auth_reload(e.a, err, sizeof(err)), FY_OK);
    r = req("alice", "one");
    assert_int_equal(authn(e.a, &r), FY_OK);
    start_pending(e.a, "bob", "b-pw", &y);
    pump_until(&e, &y.calls);
    assert_int_equal(y.result, -FY_EPERM);
    start_pending(e.a, "bob", "b-new", &y);
    pump_until(&e, &y.calls);
    assert_int_equal(y.result, FY_OK);
    r = req("bob", "b-new");
    assert_int_equal(authn(e.a, &r), FY_OK);
    assert_int_equal(fy_auth_checks(e.a), 4);

    /* alice's line is rewritten with the same password and a new salt: forgotten, checked again
     * (and still right). */
    write_users(e.pw, rehashed);
    assert_int_equal(fy_auth_reload(e.a, err, sizeof(err)), FY_OK);
    start_pending(e.a, "alice", "one", &x);
    pump_until(&e, &x.calls);
    assert_int_equal(x.result, FY_OK);
    assert_int_equal(fy_auth_checks(e.a), 5);

    /* alice is removed: her remembered password does not let her in. */
    write_users(e.pw, bob_only);
    assert_int_equal(fy_auth_reload(e.a, err, sizeof(err)), FY_OK);
    start_pending(e.a, "alice", "one", &x);
    pump_until(&e, &x.calls);
    assert_int_equal(x.result, -FY_EPERM);
    r = req("bob", "b-new");
    assert_int_equal(authn(e.a, &r), FY_OK);
    assert_int_equal(fy_auth_checks(e.a), 6);

    unlink(acl);
    async_close(&e);
    fy_buf_free(&alice);
    fy_buf_free(&bob);
    fy_buf_free(&bob2);
    fy_buf_free(&alice2);
}

/* At most max_pending checks: beyond, -FY_EAGAIN at once (counted); answers that need no
 * hashing still come at once; a cancelled queued check frees its place. */
static void test_auth_async_busy(void **state)
{
    async_env e;
    fy_auth_request r;
    fy_auth_job *job = (fy_auth_job *)&job, *second;
    answer x[3], warm;
    async_open(&e, 50000, 2, true);
    start_pending(e.a, "alice", "one", &warm);
    pump_until(&e, &warm.calls);
    assert_int_equal(warm.result, FY_OK);

    start_pending(e.a, "alice", "x", &x[0]);
    second = start_pending(e.a, "bob", "y", &x[1]);
    r = req("alice", "z");
    assert_int_equal(fy_auth_start(e.a, &r, on_answer, &x[2], &job), -FY_EAGAIN);
    assert_null(job);
    assert_int_equal(fy_auth_busy_refusals(e.a), 1);
    r = req("alice", "one");
    assert_int_equal(authn(e.a, &r), FY_OK); /* the fast check is not queued */
    r = req(NULL, NULL);
    assert_int_equal(authn(e.a, &r), FY_OK); /* anonymous (allowed here) neither */
    fy_auth_cancel(e.a, second);
    start_pending(e.a, "carol", "z", &x[2]);
    pump_until(&e, NULL);
    assert_int_equal(x[0].result, -FY_EPERM);
    assert_int_equal(x[1].calls, 0);
    assert_int_equal(x[2].result, -FY_EPERM);
    assert_int_equal(fy_auth_busy_refusals(e.a), 1);
    async_close(&e);
}

/* fy_auth_free with checks pending: each one not cancelled hears -FY_ECANCELED, once. */
static void test_auth_async_free_pending(void **state)
{
    async_env e;
    answer x[3];
    fy_auth_job *mid;
    async_open(&e, 50000, 8, false);
    start_pending(e.a, "alice", "a", &x[0]);
    mid = start_pending(e.a, "alice", "b", &x[1]);
    start_pending(e.a, "alice", "c", &x[2]);
    fy_auth_cancel(e.a, mid);
    fy_auth_free(e.a);
    e.a = NULL;
    assert_int_equal(x[0].calls, 1);
    assert_int_equal(x[0].result, -FY_ECANCELED);
    assert_int_equal(x[1].calls, 0);
    assert_int_equal(x[2].calls, 1);
    assert_int_equal(x[2].result, -FY_ECANCELED);
    async_close(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_passwd_mosquitto_line),
        cmocka_unit_test(test_auth_passwd_writer_round_trip),
        cmocka_unit_test(test_auth_passwd_sha512_v6),
        cmocka_unit_test(test_auth_passwd_malformed),
        cmocka_unit_test(test_auth_base64),
        cmocka_unit_test(test_auth_passwd_db),
        cmocka_unit_test(test_auth_passwd_unknown_cost),
        cmocka_unit_test(test_auth_topic_matches),
        cmocka_unit_test(test_auth_filters_overlap),
        cmocka_unit_test(test_auth_acl_rules),
        cmocka_unit_test(test_auth_acl_errors),
        cmocka_unit_test(test_auth_state),
        cmocka_unit_test(test_auth_async_pending),
        cmocka_unit_test(test_auth_async_cancel),
        cmocka_unit_test(test_auth_async_reload),
        cmocka_unit_test(test_auth_reload_remembered),
        cmocka_unit_test(test_auth_async_busy),
        cmocka_unit_test(test_auth_async_free_pending),
    };
    fy_log_set_level(FY_LOG_OFF);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
