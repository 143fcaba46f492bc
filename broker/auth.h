/* SPDX-License-Identifier: Apache-2.0 */
/* Users and what they may do: the password file (mosquitto's format), the ACL file
 * (mosquitto-like, plus rules for native topics, consumer groups and administration) and
 * allow_anonymous. The broker owns them; protocol adapters ask through the hooks of
 * adapters/adapter.h, which are fy_auth_start, fy_auth_cancel and fy_auth_authorize over an
 * fy_auth. Everything runs on the loop thread but the password hashing itself (PBKDF2), which a
 * worker thread does. docs/security.md describes the files. */
#ifndef FERRY_BROKER_AUTH_H
#define FERRY_BROKER_AUTH_H

#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* Credentials a client presented (MQTT CONNECT, AMQP SASL PLAIN, native HELLO, admin HTTP
 * Basic), borrowed for the call. */
typedef struct fy_auth_request {
    const char *protocol; /* "mqtt", "amqp", "native", "admin" */
    const char *client_id;
    const char *peer; /* address:port */
    bool has_username;
    fy_slice username;
    bool has_password;
    fy_slice password;
} fy_auth_request;

/* fy_auth_start's answer when the check goes on off the loop (not an error). */
#define FY_AUTH_PENDING 1

/* A check that is pending: the caller's ticket, for fy_auth_cancel. */
typedef struct fy_auth_job fy_auth_job;

/* The outcome of a pending check, on the loop thread: FY_OK, -FY_EPERM, or -FY_ECANCELED when
 * the fy_auth is freed first. */
typedef void (*fy_auth_done_fn)(void *arg, int result);

/* The one authentication hook every adapter asks. Answers at once FY_OK (allowed), -FY_EPERM
 * (refused) or -FY_EAGAIN (too many checks pending: the server is busy), or FY_AUTH_PENDING with
 * *job: done(done_arg, result) is then called once, later, on the loop thread, unless the
 * caller cancels job first. req is borrowed for the call only. While a check is pending the
 * caller handles no further input of that client. */
typedef int (*fy_auth_fn)(void *arg, const fy_auth_request *req, fy_auth_done_fn done,
                          void *done_arg, fy_auth_job **job);
/* Forgets a pending check (its client went away): done is never called for it. NULL-safe. */
typedef void (*fy_auth_cancel_fn)(void *arg, fy_auth_job *job);

/* What a client asks to do with a topic (or group). */
typedef enum fy_acl_op {
    FY_ACL_READ = 1,      /* receive the messages of a topic (MQTT: per message topic) */
    FY_ACL_WRITE = 2,     /* publish to a topic */
    FY_ACL_SUBSCRIBE = 3, /* MQTT: subscribe to a filter (some topic under it is readable) */
    FY_ACL_GROUP = 4,     /* consume as a member of the consumer group named by topic */
    FY_ACL_ADMIN = 5      /* create or delete topics, reset or configure groups (topic unused) */
} fy_acl_op;

/* The authorization hook: FY_OK or -FY_EPERM. user NULL = an anonymous client. protocol "mqtt"
 * checks `topic`/`pattern` rules against an MQTT topic (or filter); any other protocol checks
 * `ntopic`/`group`/`admin` rules against a native topic or group name. */
typedef int (*fy_authz_fn)(void *arg, const char *user, const char *client_id, const char *protocol,
                           fy_acl_op op, fy_slice topic);

/* ---- Parsed files (pure: no I/O; fuzzed) ------------------------------------------------- */

typedef struct fy_passwd_db fy_passwd_db;
typedef struct fy_acl fy_acl;

/* Parses a password file's text. NULL on error with "origin:line: reason" in err. A duplicate
 * user is an error. */
fy_passwd_db *fy_passwd_db_parse(const char *text, size_t len, const char *origin, char *err,
                                 size_t errlen);
/* Whether user exists and password is theirs (PBKDF2 on the first success, then a keyed
 * fast hash of the password that was accepted). An unknown user costs a PBKDF2 too, with the
 * iterations of the file's costliest user (fy_passwd_db_unknown_iterations). Runs the
 * hash on the calling thread: the broker goes through fy_auth_start instead. */
bool fy_passwd_db_check(fy_passwd_db *db, fy_slice user, fy_slice password);
size_t fy_passwd_db_count(const fy_passwd_db *db);
/* The PBKDF2 iterations an unknown user's refusal costs: the most of any user in the file ($6$
 * lines count as 0), FY_PASSWD_ITERATIONS for an empty or NULL db. *fewest (unless NULL) gets the
 * least of any user; when the two differ, a wrong password of a user with fewer is refused
 * sooner than an unknown name, which tells that the user exists (the broker warns at load). */
uint32_t fy_passwd_db_unknown_iterations(const fy_passwd_db *db, uint32_t *fewest);
void fy_passwd_db_free(fy_passwd_db *db);

/* Parses an ACL file's text. NULL on error with "origin:line: reason" in err. */
fy_acl *fy_acl_parse(const char *text, size_t len, const char *origin, char *err, size_t errlen);
/* Whether the rules let user (NULL: anonymous) do op on topic; see fy_authz_fn. */
bool fy_acl_allows(const fy_acl *acl, const char *user, const char *client_id, const char *protocol,
                   fy_acl_op op, fy_slice topic);
void fy_acl_free(fy_acl *acl);

/* MQTT topic matching used by the rules (exposed for tests): whether topic matches filter, and
 * whether two filters have a topic in common. Topics starting with '$' are not matched by a
 * first-level wildcard. */
bool fy_acl_topic_matches(fy_slice filter, fy_slice topic);
bool fy_acl_filters_overlap(fy_slice a, fy_slice b);

/* ---- The broker's state --------------------------------------------------------------------- */

typedef struct fy_auth fy_auth;

/* Loads password_file and acl_file (either NULL or "none" = not used). Returns FY_OK and *out,
 * or -FY_EIO/-FY_EINVAL with "file:line: reason" in err (the broker refuses to start). */
int fy_auth_new(const char *password_file, const char *acl_file, bool allow_anonymous,
                fy_auth **out, char *err, size_t errlen);
/* Moves the slow checks (PBKDF2: every first login, every wrong password, every unknown user)
 * to a worker thread, started at the first one; their results come back to base's loop. At
 * most max_pending checks wait or run at a time: fy_auth_start answers -FY_EAGAIN beyond. Until
 * this is called (tools, tests) fy_auth_start checks on the calling thread. FY_OK or -FY_EIO. */
int fy_auth_use_loop(fy_auth *a, struct event_base *base, uint32_t max_pending);
/* Reads both files again (SIGHUP). FY_OK when both are good and now in use; otherwise the old
 * ones stay in use and err says why. A user whose entry (hash type, iterations, salt, hash) is
 * byte for byte the same in the new file keeps the password remembered for the fast check; a
 * changed or removed entry forgets it. Pending checks finish against the entry they started
 * with; the password they accept is remembered only if the file now in use has that entry. */
int fy_auth_reload(fy_auth *a, char *err, size_t errlen);
/* Stops the worker (after the check it is running, if any) and frees everything; pending checks
 * not cancelled get -FY_ECANCELED. Before event_base_free of the loop given to
 * fy_auth_use_loop. NULL-safe. */
void fy_auth_free(fy_auth *a);

/* Whether a password file is in use (clients then need a user name and password). */
bool fy_auth_has_passwords(const fy_auth *a);
bool fy_auth_allows_anonymous(const fy_auth *a);
/* Whether an ACL file is in use (without one, fy_auth_authorize allows everything). */
bool fy_auth_has_acl(const fy_auth *a);

/* Checks pending now (waiting for the worker or running), for /metrics. */
uint32_t fy_auth_pending(const fy_auth *a);
/* Checks refused with -FY_EAGAIN (auth_max_pending reached) since start. */
uint64_t fy_auth_busy_refusals(const fy_auth *a);
/* Full password checks (PBKDF2: first logins, wrong passwords, unknown users) done since start,
 * for /metrics; a login with a remembered password is not one. Loop thread. */
uint64_t fy_auth_checks(const fy_auth *a);

/* The hooks (arg is the fy_auth). fy_auth_start is an fy_auth_fn: a request without a user name
 * is an anonymous client, allowed when allow_anonymous; with a user name, the password file must
 * hold it with that password (without a password file the user name is taken as given when
 * anonymous clients are allowed, as mosquitto does). Answered at once: anonymous clients, no
 * password file, no password, a password that passed the full check before (the fast check);
 * anything else is pending (an unknown user as long as a wrong password). fy_auth_cancel is an
 * fy_auth_cancel_fn. authorize: without an ACL file everything is allowed. Refusals are logged
 * at INFO. */
int fy_auth_start(void *arg, const fy_auth_request *req, fy_auth_done_fn done, void *done_arg,
                  fy_auth_job **job);
void fy_auth_cancel(void *arg, fy_auth_job *job);
int fy_auth_authorize(void *arg, const char *user, const char *client_id, const char *protocol,
                      fy_acl_op op, fy_slice topic);

#endif
