/* SPDX-License-Identifier: Apache-2.0 */
/* ferryctl: the command-line tool for Ferry — topics, groups, message lookup (by id or by key),
 * send and consume — over libferry's public API only. Human-readable output by default; --json
 * prints JSON Lines (one compact JSON document per line: one per command, or one per message for
 * send and consume). Exit codes: 0 ok, 1 the broker refused or a request failed, 2 usage error,
 * 3 cannot connect (or the connection was lost), 130 interrupted. */
#include "tools/ferryctl_passwd.h"

#include "ferry/client.h"
#include "ferry/errors.h"
#include "ferry/message.h"

#include <jansson.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_CONN 3
#define EXIT_INTR 130

#define MAX_POS 8
#define MAX_OPTS 256

static const char usage_text[] =
    "Usage: ferryctl [--broker HOST:PORT] [--user U] [--json] [--timeout MS] COMMAND ...\n"
    "\n"
    "Commands:\n"
    "  topic create NAME [--queues N]   create a topic (N queues; default: the broker's)\n"
    "  topic list                       list topics\n"
    "  topic describe NAME              show a topic and the offsets of its queues\n"
    "  topic delete NAME                delete a topic and its messages\n"
    "  send TOPIC [OPTIONS] [BODY]      send BODY, or each line of stdin as one message\n"
    "  consume TOPIC --group G [...]    consume and acknowledge messages, print their bodies\n"
    "  group list                       list consumer groups\n"
    "  group describe GROUP             members, and committed offset and lag per queue\n"
    "  group reset GROUP --topic T --to TIME\n"
    "                                   move a group's position in T to a time\n"
    "  group config GROUP [--max-reconsume N|default]\n"
    "                                   show or set a group's own settings\n"
    "  message get ID                   show a stored message by id\n"
    "  message find --topic T --key K [--since TIME] [--until TIME] [--limit N]\n"
    "                                   list the messages of T with key K, oldest first\n"
    "  dlq list GROUP                   count the dead letters of a consumer group\n"
    "  dlq consume GROUP [...]          print (and acknowledge) a group's dead letters\n"
    "  dlq resend GROUP [...]           send a group's dead letters to their topics again\n"
    "  tx send TOPIC BODY [--group G]   store a half message (a transaction), print its id\n"
    "  tx commit ID | tx rollback ID    end a transaction\n"
    "  tx list                          list open transactions\n"
    "  passwd [-D] FILE USER            add or change (-D: delete) a user in a password file\n"
    "  status                           the broker's overview, from its admin HTTP API\n"
    "  top [--interval D] [--once | --iterations N] [--internal]\n"
    "                                   live rates per topic and group (admin HTTP API)\n"
    "\n"
    "Options:\n"
    "  --broker HOST:PORT  broker address (default $FERRY_BROKER, else 127.0.0.1:10911)\n"
    "  --admin HOST:PORT   admin HTTP address, for status and top (default $FERRY_ADMIN, else\n"
    "                      127.0.0.1:8081)\n"
    "  --user U            user name (default $FERRY_USER; password: $FERRY_PASSWORD,\n"
    "                      else asked without echo on a terminal)\n"
    "  --tls               connect with TLS (the broker's [native] tls_port, 10912)\n"
    "  --cafile FILE       PEM CAs that sign the broker's certificate (implies --tls;\n"
    "                      default: the system's CAs)\n"
    "  --cert FILE         PEM client certificate, --key FILE its key (implies --tls)\n"
    "  --json              print JSON Lines: one JSON document per line\n"
    "  --timeout MS        request timeout in milliseconds (default 10000)\n"
    "  -h, --help          this help; `ferryctl COMMAND --help` for a command's\n"
    "  --version           print the version\n"
    "\n"
    "TIME is milliseconds since the epoch or ISO 8601 (2026-11-25T14:00:00Z,\n"
    "2026-11-25T15:00:00.250+01:00, 2026-11-25).\n"
    "Exit codes: 0 ok, 1 request failed, 2 usage error, 3 cannot connect, 130 interrupted.\n";

static const char help_topic[] =
    "Usage: ferryctl topic create NAME [--queues N]\n"
    "       ferryctl topic list\n"
    "       ferryctl topic describe NAME\n"
    "       ferryctl topic delete NAME\n"
    "\n"
    "Topic names: 1 to 127 of A-Z a-z 0-9 _ . % -. `describe` shows each queue's first kept\n"
    "offset (min) and next offset to be written (max).\n";

static const char help_send[] =
    "Usage: ferryctl send TOPIC [--tag T] [--key K]... [--prop NAME=VALUE]...\n"
    "                     [--sharding-key S] [--delay DURATION | --deliver-at TIME] [BODY]\n"
    "\n"
    "Sends BODY as one message, or without BODY each line of standard input as one message\n"
    "(pipelined). Prints one line per message: message id, queue and offset.\n"
    "  --tag T            the message's tag (matched by consumer filters)\n"
    "  --key K            a key (repeatable)\n"
    "  --prop NAME=VALUE  a property (repeatable)\n"
    "  --sharding-key S   messages with the same key go to the same queue, in order\n"
    "  --delay D          deliver after D (e.g. 500ms, 10s, 5m, 2h, 1d)\n"
    "  --deliver-at TIME  deliver at TIME (ms since the epoch or ISO 8601)\n"
    "A delayed message prints its id and 'scheduled' with its due time instead of a queue.\n";

static const char help_consume[] =
    "Usage: ferryctl consume TOPIC --group G [--from first|last|TIME] [--count N]\n"
    "                        [--filter EXPR | --sql EXPR] [--broadcast] [--orderly] [--timeout "
    "MS]\n"
    "                        [--nack | --reject]\n"
    "\n"
    "Joins consumer group G and prints each message's body on a line (with --json, the whole\n"
    "message as a JSON object, with its reconsume count), acknowledging it once printed.\n"
    "  --from P       where a group without a committed offset starts: last (default),\n"
    "                 first, or TIME (ms since the epoch or ISO 8601)\n"
    "  --count N      exit after N messages\n"
    "  --filter EXPR  tag filter: * (default) or TagA || TagB\n"
    "  --sql EXPR     SQL92 filter on properties and TAGS, e.g. \"region = 'eu' AND n > 5\"\n"
    "  --orderly      one message at a time per queue, in order (with --sharding-key on send)\n"
    "  --broadcast    broadcast mode (every member gets every message)\n"
    "  --timeout MS   exit after MS milliseconds without a message (default: wait forever)\n"
    "  --nack         fail each message instead (retry later): in a clustering group it\n"
    "                 comes back after the broker's retry_delays with reconsume + 1, and\n"
    "                 goes to the dead-letter queue after max_reconsume failures\n"
    "  --reject       fail each message for good: straight to the dead-letter queue\n";

static const char help_tx[] =
    "Usage: ferryctl tx send TOPIC BODY [--group G] [--tag TAG] [--key KEY]... [--prop N=V]...\n"
    "                                   [--sharding-key K]\n"
    "       ferryctl tx commit ID\n"
    "       ferryctl tx rollback ID\n"
    "       ferryctl tx list [--from ID] [--limit N]\n"
    "\n"
    "Transactional (half) messages by hand. `send` stores BODY as a half message of producer\n"
    "group G (default ferryctl-tx): kept, but invisible to consumers. It prints the transaction\n"
    "id (and, with --json, the half's message id). `commit` makes the message visible (appended\n"
    "to its topic exactly once) and prints where it went; `rollback` deletes it. A transaction\n"
    "left open is checked back with a connected producer of its group after tx_check_after,\n"
    "every tx_check_interval, and rolled back after tx_max_checks checks (ferryctl answers no\n"
    "checks). `list` shows the open transactions, oldest first: id, group, checks so far,\n"
    "stored time, topic and body size.\n";

static const char help_dlq[] =
    "Usage: ferryctl dlq list GROUP\n"
    "       ferryctl dlq consume GROUP [--count N] [--timeout MS]\n"
    "       ferryctl dlq resend GROUP [--count N] [--timeout MS]\n"
    "\n"
    "The dead-letter queue of consumer group GROUP is the topic %DLQ%GROUP: the messages the\n"
    "group failed more than max_reconsume times, or rejected. Each keeps its original topic\n"
    "and its reconsume count.\n"
    "`list` shows how many dead letters are kept and their offsets (\"no dead-letter queue\"\n"
    "when the group never had one).\n"
    "`consume` prints each dead letter's body (with --json, the whole message) and\n"
    "acknowledges it in group GROUP-dlq-inspect, which starts at the first dead letter: a\n"
    "later run shows only newer ones (`group reset GROUP-dlq-inspect --topic %DLQ%GROUP\n"
    "--to 0` shows them all again).\n"
    "`resend` sends each dead letter again to its original topic (tag, keys, properties and\n"
    "body kept; delay properties dropped) and acknowledges it in group GROUP-dlq-resend once\n"
    "sent: one line per message, the new message id and the topic. Every group of that topic\n"
    "receives it again. Exits 1 when a send fails (that dead letter stays).\n"
    "  --count N     stop after N dead letters\n"
    "  --timeout MS  stop after MS milliseconds without one (default 1000)\n";

static const char help_group[] =
    "Usage: ferryctl group list\n"
    "       ferryctl group describe GROUP\n"
    "       ferryctl group reset GROUP --topic T --to TIME\n"
    "       ferryctl group config GROUP [--max-reconsume N|default]\n"
    "\n"
    "`describe` lists the members and, per queue, the committed offset (lowest not yet\n"
    "acknowledged), the max offset, the lag (max - committed) and the member that owns it.\n"
    "`reset` moves the group's position in topic T to the first message stored at or after\n"
    "TIME (ms since the epoch or ISO 8601) in every queue.\n"
    "`config` shows the group's own settings, or changes them:\n"
    "  --max-reconsume N   failures of a message (0..64) before it goes to the group's\n"
    "                      dead-letter queue %DLQ%GROUP, instead of the broker's\n"
    "                      max_reconsume; `default` follows the broker's again. A group that\n"
    "                      does not exist yet is created (clustering, no members), so it can\n"
    "                      be set up before its consumers start.\n";

static const char help_message[] =
    "Usage: ferryctl message get ID\n"
    "       ferryctl message find --topic T --key K [--since TIME] [--until TIME] [--limit N]\n"
    "\n"
    "`get` shows the stored message with id ID (32 hex digits, as printed by send).\n"
    "`find` lists the messages of topic T that carry key K (send --key), oldest first, one\n"
    "line each: message id, queue, offset, store time and the body (shortened).\n"
    "  --since TIME  only messages stored at or after TIME (ms since the epoch or ISO 8601)\n"
    "  --until TIME  only messages stored at or before TIME (default: no limit)\n"
    "  --limit N     at most N messages, 1 to 1024 (default 100)\n";

/* ---- Global state -------------------------------------------------------------------------- */

static bool json_out;
static const char *cmd_name = "ferryctl";
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int usage_error(const char *help, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int usage_error(const char *help, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "ferryctl: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", help ? help : usage_text);
    return EXIT_USAGE;
}

/* Reports a failed call and returns the exit code for it. */
static int report(fy_client *c, int rc)
{
    const char *text = c ? fy_client_last_error(c) : "";

    fprintf(stderr, "ferryctl: %s: %s\n", cmd_name, *text ? text : fy_strerror(rc));
    return rc == -FY_ECLOSED ? EXIT_CONN : EXIT_FAIL;
}

/* Connects once the command's arguments are known to be good (a usage error must not depend on
 * the broker). Returns -1 when connected, else the exit code (message printed). */
static int need_broker(fy_client *c)
{
    int rc = fy_client_connect(c);

    if (rc == FY_OK) {
        return -1;
    }
    fprintf(stderr, "ferryctl: cannot connect: %s\n", fy_client_last_error(c));
    return EXIT_CONN;
}

#define NEED_BROKER(c)                                                                             \
    do {                                                                                           \
        int need_ = need_broker(c);                                                                \
        if (need_ >= 0) {                                                                          \
            return need_;                                                                          \
        }                                                                                          \
    } while (0)

/* Prints a JSON value as one compact line and releases it. */
static void json_print(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
    json_decref(v);
}

/* ---- Argument parsing ---------------------------------------------------------------------- */

typedef struct opt_spec {
    const char *name;
    bool has_arg;
} opt_spec;

typedef struct parsed {
    const char *pos[MAX_POS];
    int npos;
    struct {
        const char *name;
        const char *val;
    } opts[MAX_OPTS];
    int nopts;
} parsed;

/* Splits a command's arguments into positionals and options of spec ("--name value" or
 * "--name=value"; "--" ends the options). Returns -1 (ok), EXIT_OK for --help (printed), or
 * EXIT_USAGE (printed). */
static int parse_args(int argc, char **argv, const opt_spec *spec, const char *help, parsed *p)
{
    bool opts_done = false;

    memset(p, 0, sizeof(*p));
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            fputs(help, stdout);
            return EXIT_OK;
        }
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const opt_spec *s = spec;
            for (; s && s->name; s++) {
                if (strlen(s->name) == len && strncmp(s->name, name, len) == 0) {
                    break;
                }
            }
            if (!s || !s->name) {
                return usage_error(help, "unknown option '%s'", a);
            }
            if (p->nopts == MAX_OPTS) {
                return usage_error(help, "too many options");
            }
            p->opts[p->nopts].name = s->name;
            if (s->has_arg) {
                if (eq) {
                    p->opts[p->nopts].val = eq + 1;
                } else if (i + 1 < argc) {
                    p->opts[p->nopts].val = argv[++i];
                } else {
                    return usage_error(help, "option '--%s' needs a value", s->name);
                }
            } else if (eq) {
                return usage_error(help, "option '--%s' takes no value", s->name);
            }
            p->nopts++;
            continue;
        }
        if (p->npos == MAX_POS) {
            return usage_error(help, "too many arguments");
        }
        p->pos[p->npos++] = a;
    }
    return -1;
}

/* The last value of option name, or NULL. */
static const char *opt_get(const parsed *p, const char *name)
{
    const char *v = NULL;

    for (int i = 0; i < p->nopts; i++) {
        if (strcmp(p->opts[i].name, name) == 0) {
            v = p->opts[i].val ? p->opts[i].val : "";
        }
    }
    return v;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !isdigit((unsigned char)*s)) {
        return false;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end) {
        return false;
    }
    *out = v;
    return true;
}

/* Reads exactly n digits. */
static bool digits(const char **s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i])) {
            return false;
        }
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* TIME: ms since the epoch, or ISO 8601: YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM|+HHMM].
 * Without a zone the time is UTC. */
/* A duration: digits and a unit ms, s, m, h or d (a bare number is milliseconds). */
static bool parse_duration(const char *s, uint64_t *ms)
{
    char *end;
    unsigned long long n;
    uint64_t unit;
    if (!s || *s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno) {
        return false;
    }
    if (strcmp(end, "ms") == 0 || *end == '\0') {
        unit = 1;
    } else if (strcmp(end, "s") == 0) {
        unit = 1000;
    } else if (strcmp(end, "m") == 0) {
        unit = 60000;
    } else if (strcmp(end, "h") == 0) {
        unit = 3600000;
    } else if (strcmp(end, "d") == 0) {
        unit = 86400000;
    } else {
        return false;
    }
    if (n > UINT64_MAX / unit) {
        return false;
    }
    *ms = n * unit;
    return true;
}

static bool parse_time(const char *s, uint64_t *ms)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, oh = 0, om = 0, sign = 0;
    time_t t;

    if (!s) {
        return false;
    }
    if (parse_u64(s, ms)) {
        return true;
    }
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d)) {
        return false;
    }
    if (*s == 'T' || *s == 't' || *s == ' ') {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi)) {
            return false;
        }
        if (*s == ':') {
            s++;
            if (!digits(&s, 2, &sec)) {
                return false;
            }
            if (*s == '.' || *s == ',') {
                int scale = 100;
                s++;
                if (!isdigit((unsigned char)*s)) {
                    return false;
                }
                for (; isdigit((unsigned char)*s); s++) {
                    frac += (*s - '0') * scale;
                    scale /= 10;
                }
            }
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s++ == '-' ? -1 : 1;
        if (!digits(&s, 2, &oh)) {
            return false;
        }
        if (*s == ':') {
            s++;
        }
        if (!digits(&s, 2, &om)) {
            return false;
        }
    }
    if (*s || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || oh > 23 ||
        om > 59) {
        return false;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    t -= (time_t)sign * (oh * 3600 + om * 60);
    if (t < 0) {
        return false;
    }
    *ms = (uint64_t)t * 1000 + (uint64_t)frac;
    return true;
}

/* Formats ms since the epoch as ISO 8601 UTC with milliseconds. */
static const char *fmt_time(uint64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms == 0 || !gmtime_r(&t, &tm)) {
        snprintf(buf, n, "-");
        return buf;
    }
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
    return buf;
}

/* ---- Message output ------------------------------------------------------------------------ */

static char *base64(const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;

    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = tbl[v >> 18 & 63];
        *o++ = tbl[v >> 12 & 63];
        *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* A message as a JSON object: body as a string when it is UTF-8, else body_base64. */
static json_t *message_json(const fy_message *m)
{
    json_t *o = json_object(), *keys = json_array(), *props = json_object(), *body;
    size_t len;
    const void *p = fy_message_body(m, &len);

    json_object_set_new(o, "msgid", json_string(fy_message_id(m)));
    json_object_set_new(o, "topic", json_string(fy_message_topic(m)));
    json_object_set_new(o, "tag", json_string(fy_message_tag(m)));
    for (size_t i = 0; i < fy_message_key_count(m); i++) {
        json_array_append_new(keys, json_string(fy_message_key_at(m, i)));
    }
    json_object_set_new(o, "keys", keys);
    for (size_t i = 0; i < fy_message_property_count(m); i++) {
        const char *name, *value;
        fy_message_property_at(m, i, &name, &value);
        json_object_set_new(props, name, json_string(value));
    }
    json_object_set_new(o, "properties", props);
    json_object_set_new(o, "queue", json_integer(fy_message_queue_id(m)));
    json_object_set_new(o, "offset", json_integer(fy_message_queue_offset(m)));
    json_object_set_new(o, "born_ms", json_integer((json_int_t)fy_message_born_ms(m)));
    json_object_set_new(o, "store_ms", json_integer((json_int_t)fy_message_store_ms(m)));
    json_object_set_new(o, "born_host", json_string(fy_message_born_host(m)));
    json_object_set_new(o, "reconsume", json_integer(fy_message_reconsume_count(m)));
    body = json_stringn(p ? p : "", len);
    if (body) {
        json_object_set_new(o, "body", body);
    } else {
        char *b64 = base64(p, len);
        json_object_set_new(o, "body_base64", json_string(b64 ? b64 : ""));
        free(b64);
    }
    return o;
}

/* True if the body can be shown as text (valid UTF-8 without control characters but \t). */
static bool printable(const void *p, size_t n)
{
    json_t *s;
    const unsigned char *b = p;

    for (size_t i = 0; i < n; i++) {
        if (b[i] < 0x20 && b[i] != '\t') {
            return false;
        }
    }
    s = json_stringn(p ? p : "", n);
    json_decref(s);
    return s != NULL;
}

static void message_print_human(const fy_message *m)
{
    char t1[96];
    size_t len;
    const void *p = fy_message_body(m, &len);

    printf("msgid:      %s\n", fy_message_id(m));
    printf("topic:      %s\n", fy_message_topic(m));
    printf("tag:        %s\n", fy_message_tag(m));
    printf("keys:      ");
    for (size_t i = 0; i < fy_message_key_count(m); i++) {
        printf(" %s", fy_message_key_at(m, i));
    }
    printf("\n");
    printf("queue:      %" PRId64 "\n", fy_message_queue_id(m));
    printf("offset:     %" PRId64 "\n", fy_message_queue_offset(m));
    printf("born:       %s\n", fmt_time(fy_message_born_ms(m), t1, sizeof(t1)));
    printf("stored:     %s\n", fmt_time(fy_message_store_ms(m), t1, sizeof(t1)));
    printf("born host:  %s\n", fy_message_born_host(m));
    printf("reconsume:  %u\n", fy_message_reconsume_count(m));
    for (size_t i = 0; i < fy_message_property_count(m); i++) {
        const char *name, *value;
        fy_message_property_at(m, i, &name, &value);
        printf("property:   %s=%s\n", name, value);
    }
    if (printable(p, len)) {
        printf("body:       %.*s\n", (int)len, p ? (const char *)p : "");
    } else {
        printf("body:       <%zu bytes of binary data; use --json>\n", len);
    }
}

/* ---- topic --------------------------------------------------------------------------------- */

static int cmd_topic(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {{"queues", true}, {NULL, false}};
    const char *sub;
    parsed p;
    int rc;

    rc = parse_args(argc, argv, spec, help_topic, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos < 1) {
        return usage_error(help_topic, "topic: missing subcommand");
    }
    sub = p.pos[0];
    if (strcmp(sub, "create") == 0) {
        uint64_t queues = 0;
        const char *q = opt_get(&p, "queues");
        cmd_name = "topic create";
        if (p.npos != 2) {
            return usage_error(help_topic, "topic create: one NAME expected");
        }
        if (q && (!parse_u64(q, &queues) || queues == 0 || queues > UINT32_MAX)) {
            return usage_error(help_topic, "topic create: --queues needs a positive number");
        }
        NEED_BROKER(c);
        rc = fy_topic_create(c, p.pos[1], (uint32_t)queues);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_print(json_pack("{s:s, s:b}", "topic", p.pos[1], "created", 1));
        } else {
            printf("topic %s created\n", p.pos[1]);
        }
        return EXIT_OK;
    }
    if (p.nopts > 0) {
        return usage_error(help_topic, "topic %s: --queues is for topic create", sub);
    }
    if (strcmp(sub, "list") == 0) {
        fy_topics *list;
        cmd_name = "topic list";
        if (p.npos != 1) {
            return usage_error(help_topic, "topic list: no arguments expected");
        }
        NEED_BROKER(c);
        rc = fy_topic_list(c, &list);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_t *arr = json_array();
            for (size_t i = 0; i < list->n; i++) {
                json_array_append_new(arr,
                                      json_pack("{s:s, s:I, s:I}", "name", list->topics[i].name,
                                                "id", (json_int_t)list->topics[i].topic_id,
                                                "queues", (json_int_t)list->topics[i].queues));
            }
            json_print(json_pack("{s:o}", "topics", arr));
        } else {
            printf("%-32s %8s %8s\n", "NAME", "ID", "QUEUES");
            for (size_t i = 0; i < list->n; i++) {
                printf("%-32s %8u %8u\n", list->topics[i].name, list->topics[i].topic_id,
                       list->topics[i].queues);
            }
        }
        fy_topics_free(list);
        return EXIT_OK;
    }
    if (strcmp(sub, "describe") == 0) {
        fy_topic_info *t;
        cmd_name = "topic describe";
        if (p.npos != 2) {
            return usage_error(help_topic, "topic describe: one NAME expected");
        }
        NEED_BROKER(c);
        rc = fy_topic_describe(c, p.pos[1], &t);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_t *arr = json_array();
            for (uint32_t i = 0; i < t->queues; i++) {
                json_array_append_new(arr,
                                      json_pack("{s:I, s:I, s:I}", "queue", (json_int_t)i,
                                                "min_offset", (json_int_t)t->ranges[i].min_offset,
                                                "max_offset", (json_int_t)t->ranges[i].max_offset));
            }
            json_print(json_pack("{s:s, s:I, s:I, s:o}", "name", t->name, "id",
                                 (json_int_t)t->topic_id, "queues", (json_int_t)t->queues, "ranges",
                                 arr));
        } else {
            uint64_t total = 0;
            printf("topic:   %s\nid:      %u\nqueues:  %u\n\n", t->name, t->topic_id, t->queues);
            printf("%6s %14s %14s %14s\n", "QUEUE", "MIN", "MAX", "MESSAGES");
            for (uint32_t i = 0; i < t->queues; i++) {
                uint64_t n = t->ranges[i].max_offset - t->ranges[i].min_offset;
                total += n;
                printf("%6u %14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", i,
                       t->ranges[i].min_offset, t->ranges[i].max_offset, n);
            }
            printf("%6s %14s %14s %14" PRIu64 "\n", "total", "", "", total);
        }
        fy_topic_info_free(t);
        return EXIT_OK;
    }
    if (strcmp(sub, "delete") == 0) {
        cmd_name = "topic delete";
        if (p.npos != 2) {
            return usage_error(help_topic, "topic delete: one NAME expected");
        }
        NEED_BROKER(c);
        rc = fy_topic_delete(c, p.pos[1]);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_print(json_pack("{s:s, s:b}", "topic", p.pos[1], "deleted", 1));
        } else {
            printf("topic %s deleted\n", p.pos[1]);
        }
        return EXIT_OK;
    }
    return usage_error(help_topic, "topic: unknown subcommand '%s'", sub);
}

/* ---- send ---------------------------------------------------------------------------------- */

static void print_send_result(const fy_send_result *r)
{
    if (json_out) {
        json_print(json_pack("{s:s, s:I, s:I, s:I}", "msgid", r->msgid, "queue",
                             (json_int_t)r->queue_id, "offset", (json_int_t)r->queue_offset,
                             "store_ms", (json_int_t)r->store_ms));
    } else if (r->queue_id == FY_QUEUE_SCHEDULED) {
        char due[40];
        printf("%s scheduled %s\n", r->msgid, fmt_time(r->store_ms, due, sizeof(due)));
    } else {
        printf("%s %u %" PRIu64 "\n", r->msgid, r->queue_id, r->queue_offset);
    }
}

/* One line of stdin in flight; results are printed in input order. */
typedef struct pending {
    struct pending *next;
    size_t line;
    bool done;
    int status;
    char err[256];
    fy_send_result r;
    fy_client *c;
} pending;

typedef struct send_state {
    pending *head, *tail;
    int failed;     /* messages that failed */
    bool conn_lost; /* a failure was a lost connection */
} send_state;

static void on_sent(void *arg, int status, const fy_send_result *r)
{
    pending *p = arg;

    p->done = true;
    p->status = status;
    if (status == FY_OK) {
        p->r = *r;
    } else {
        snprintf(p->err, sizeof(p->err), "%s", fy_client_last_error(p->c));
    }
}

/* Prints (and frees) the completed prefix of the pending list. */
static void drain_printed(send_state *st)
{
    pending *p;

    while ((p = st->head) && p->done) {
        st->head = p->next;
        if (!st->head) {
            st->tail = NULL;
        }
        if (p->status == FY_OK) {
            print_send_result(&p->r);
        } else {
            fprintf(stderr, "ferryctl: send: line %zu: %s\n", p->line,
                    *p->err ? p->err : fy_strerror(p->status));
            st->failed++;
            st->conn_lost |= p->status == -FY_ECLOSED;
        }
        free(p);
    }
    fflush(stdout);
}

static int cmd_send(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {{"tag", true},          {"key", true},   {"prop", true},
                                    {"sharding-key", true}, {"delay", true}, {"deliver-at", true},
                                    {NULL, false}};
    send_state st = {NULL, NULL, 0, false};
    fy_message *m = NULL;
    fy_send_result r;
    parsed p;
    int rc;

    cmd_name = "send";
    rc = parse_args(argc, argv, spec, help_send, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos < 1 || p.npos > 2) {
        return usage_error(help_send, "send: TOPIC and at most one BODY expected");
    }
    m = fy_message_new(p.pos[0]);
    if (!m) {
        fprintf(stderr, "ferryctl: send: out of memory\n");
        return EXIT_FAIL;
    }
    for (int i = 0; i < p.nopts; i++) {
        const char *name = p.opts[i].name, *val = p.opts[i].val;
        if (strcmp(name, "tag") == 0) {
            rc = fy_message_set_tag(m, val);
        } else if (strcmp(name, "key") == 0) {
            rc = fy_message_add_key(m, val);
        } else if (strcmp(name, "sharding-key") == 0) {
            rc = fy_message_set_sharding_key(m, val);
        } else if (strcmp(name, "delay") == 0) {
            uint64_t ms;
            rc = parse_duration(val, &ms) ? fy_message_set_delay(m, ms) : -FY_EINVAL;
        } else if (strcmp(name, "deliver-at") == 0) {
            uint64_t ms;
            rc = parse_time(val, &ms) ? fy_message_set_deliver_at(m, ms) : -FY_EINVAL;
        } else {
            const char *eq = strchr(val, '=');
            char *k;
            if (!eq || eq == val) {
                fy_message_free(m);
                return usage_error(help_send, "send: --prop needs NAME=VALUE, got '%s'", val);
            }
            k = strndup(val, (size_t)(eq - val));
            rc = k ? fy_message_set_property(m, k, eq + 1) : -FY_ENOMEM;
            free(k);
        }
        if (rc != FY_OK) {
            fy_message_free(m);
            return usage_error(help_send, "send: bad --%s '%s': %s", name, val, fy_strerror(rc));
        }
    }
    rc = need_broker(c);
    if (rc >= 0) {
        fy_message_free(m);
        return rc;
    }
    if (p.npos == 2) {
        rc = fy_message_set_body(m, p.pos[1], strlen(p.pos[1]));
        if (rc == FY_OK) {
            rc = fy_send(c, m, &r);
        }
        fy_message_free(m);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        print_send_result(&r);
        return EXIT_OK;
    }

    /* One message per line of stdin: pipelined when stdin is not a terminal; at a terminal
     * each line is sent and its result shown before the next is read. */
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    while (!interrupted && (n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n') {
            line[--n] = '\0';
            if (n > 0 && line[n - 1] == '\r') {
                line[--n] = '\0';
            }
        }
        rc = fy_message_set_body(m, line, (size_t)n);
        if (rc == FY_OK && tty) {
            rc = fy_send(c, m, &r);
            if (rc == FY_OK) {
                print_send_result(&r);
                fflush(stdout);
                continue;
            }
        } else if (rc == FY_OK) {
            pending *pd = calloc(1, sizeof(*pd));
            if (!pd) {
                rc = -FY_ENOMEM;
            } else {
                pd->line = lineno;
                pd->c = c;
                rc = fy_send_async(c, m, on_sent, pd);
                if (rc == FY_OK) {
                    if (st.tail) {
                        st.tail->next = pd;
                    } else {
                        st.head = pd;
                    }
                    st.tail = pd;
                    drain_printed(&st);
                    continue;
                }
                free(pd);
            }
        }
        fprintf(stderr, "ferryctl: send: line %zu: %s\n", lineno,
                *fy_client_last_error(c) ? fy_client_last_error(c) : fy_strerror(rc));
        st.failed++;
        st.conn_lost |= rc == -FY_ECLOSED;
    }
    free(line);
    fy_message_free(m);
    while (st.head) {
        rc = fy_client_flush(c, 1000);
        drain_printed(&st);
        if (interrupted && rc == -FY_ETIMEDOUT) {
            break;
        }
    }
    if (interrupted) {
        return EXIT_INTR;
    }
    if (st.failed) {
        return st.conn_lost ? EXIT_CONN : EXIT_FAIL;
    }
    return EXIT_OK;
}

/* ---- consume ------------------------------------------------------------------------------- */

/* What a consume loop does with each delivery: returns -1 to go on, or an exit code to stop.
 * It must not free m (the loop does). */
typedef int (*settle_fn)(void *arg, fy_client *c, fy_consumer *cons, fy_message *m);

/* Polls cons and passes each delivery to settle, until count messages (0 = no limit), idle_ms
 * without one (negative = wait forever), an error or Ctrl-C. Returns the exit code. */
static int consume_loop(fy_client *c, fy_consumer *cons, uint64_t count, int64_t idle_ms,
                        settle_fn settle, void *arg)
{
    uint64_t got = 0;
    int64_t idle_left = idle_ms;
    int rc, exit_code = EXIT_OK;

    while (!interrupted && (count == 0 || got < count)) {
        fy_message *m;
        /* Short slices so that Ctrl-C is noticed; the idle budget restarts with each message. */
        int slice = idle_left < 0 || idle_left > 200 ? 200 : (int)idle_left;
        rc = fy_consumer_poll(cons, slice, &m);
        if (rc == -FY_ETIMEDOUT) {
            if (idle_left >= 0) {
                idle_left -= slice;
                if (idle_left <= 0) {
                    break;
                }
            }
            continue;
        }
        if (rc != FY_OK) {
            exit_code = report(c, rc);
            break;
        }
        rc = settle(arg, c, cons, m);
        fy_message_free(m);
        if (rc >= 0) {
            exit_code = rc;
            break;
        }
        got++;
        idle_left = idle_ms;
    }
    if (interrupted && exit_code == EXIT_OK) {
        exit_code = EXIT_INTR;
    }
    return exit_code;
}

/* Prints a delivery: its body on a line, or with --json the whole message. */
static void print_delivery(const fy_message *m)
{
    if (json_out) {
        json_print(message_json(m));
    } else {
        size_t len;
        const void *body = fy_message_body(m, &len);
        if (len) {
            fwrite(body, 1, len, stdout);
        }
        fputc('\n', stdout);
    }
    fflush(stdout);
}

/* consume: print, then ack (how = FY_CONSUME_SUCCESS) or nack with how. */
static int settle_print(void *arg, fy_client *c, fy_consumer *cons, fy_message *m)
{
    fy_consume_status how = *(const fy_consume_status *)arg;
    int rc;

    print_delivery(m);
    rc = how == FY_CONSUME_SUCCESS ? fy_consumer_ack(cons, m) : fy_consumer_nack(cons, m, how);
    /* -FY_ECLOSED: delivered on a connection that dropped; the broker delivers it again. */
    if (rc != FY_OK && rc != -FY_ECLOSED) {
        return report(c, rc);
    }
    return -1;
}

static int cmd_consume(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {{"group", true},    {"from", true},       {"count", true},
                                    {"filter", true},   {"broadcast", false}, {"timeout", true},
                                    {"sql", true},      {"nack", false},      {"reject", false},
                                    {"orderly", false}, {NULL, false}};
    fy_consumer_opts o;
    fy_consumer *cons;
    fy_consume_status how = FY_CONSUME_SUCCESS;
    const char *from, *v;
    uint64_t count = 0, idle_ms = 0;
    parsed p;
    int rc, exit_code;

    cmd_name = "consume";
    rc = parse_args(argc, argv, spec, help_consume, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos != 1) {
        return usage_error(help_consume, "consume: one TOPIC expected");
    }
    fy_consumer_opts_init(&o);
    o.topic = p.pos[0];
    o.group = opt_get(&p, "group");
    if (!o.group || !*o.group) {
        return usage_error(help_consume, "consume: --group is required");
    }
    from = opt_get(&p, "from");
    if (!from || strcmp(from, "last") == 0) {
        o.from = FY_FROM_LAST;
    } else if (strcmp(from, "first") == 0) {
        o.from = FY_FROM_FIRST;
    } else if (parse_time(from, &o.from_ms)) {
        o.from = FY_FROM_TIME;
    } else {
        return usage_error(help_consume, "consume: --from must be first, last or a TIME");
    }
    if ((v = opt_get(&p, "count")) && (!parse_u64(v, &count) || count == 0)) {
        return usage_error(help_consume, "consume: --count needs a positive number");
    }
    if ((v = opt_get(&p, "timeout")) && (!parse_u64(v, &idle_ms) || idle_ms > INT32_MAX)) {
        return usage_error(help_consume, "consume: --timeout needs milliseconds");
    }
    o.filter = opt_get(&p, "filter");
    if ((v = opt_get(&p, "sql"))) {
        if (o.filter) {
            return usage_error(help_consume, "consume: --filter and --sql exclude each other");
        }
        o.filter = v;
        o.filter_sql = true;
    }
    o.orderly = opt_get(&p, "orderly") != NULL;
    if (opt_get(&p, "nack") && opt_get(&p, "reject")) {
        return usage_error(help_consume, "consume: --nack and --reject exclude each other");
    }
    if (opt_get(&p, "nack")) {
        how = FY_CONSUME_RETRY_LATER;
    } else if (opt_get(&p, "reject")) {
        how = FY_CONSUME_REJECT;
    }
    o.mode = opt_get(&p, "broadcast") ? FY_CONSUME_BROADCAST : FY_CONSUME_CLUSTERING;
    /* Take no more than we will print: the rest stays with the group. */
    o.window = count && count < 256 ? (uint32_t)count : 256;
    NEED_BROKER(c);
    cons = fy_consumer_new(c, &o, &rc);
    if (!cons) {
        return report(c, rc);
    }
    exit_code = consume_loop(c, cons, count, opt_get(&p, "timeout") ? (int64_t)idle_ms : -1,
                             settle_print, &how);
    fy_consumer_free(cons); /* writes the last acks and leaves the group */
    return exit_code;
}

/* ---- dlq ----------------------------------------------------------------------------------- */

#define DLQ_DEFAULT_IDLE_MS 1000

/* A group's dead-letter queue: "%DLQ%<group>". */
static void dlq_topic(const char *group, char *buf, size_t n)
{
    snprintf(buf, n, "%%DLQ%%%s", group);
}

/* Sums the messages kept in topic (max - min of each queue). Sets *exists to false, with FY_OK,
 * when the topic does not exist. */
static int dlq_size(fy_client *c, const char *topic, bool *exists, uint64_t *n, uint64_t *min,
                    uint64_t *max)
{
    fy_topic_info *t;
    int rc = fy_topic_describe(c, topic, &t);

    *n = *min = *max = 0;
    *exists = rc == FY_OK;
    if (rc == -FY_ENOTFOUND) {
        return FY_OK;
    }
    if (rc != FY_OK) {
        return rc;
    }
    for (uint32_t i = 0; i < t->queues; i++) {
        *n += t->ranges[i].max_offset - t->ranges[i].min_offset;
    }
    /* The broker gives a DLQ one queue: its range is the one to show. */
    if (t->queues > 0) {
        *min = t->ranges[0].min_offset;
        *max = t->ranges[0].max_offset;
    }
    fy_topic_info_free(t);
    return FY_OK;
}

static void print_no_dlq(const char *group, const char *topic)
{
    if (json_out) {
        json_print(json_pack("{s:s, s:s, s:b, s:I}", "group", group, "topic", topic, "exists", 0,
                             "messages", (json_int_t)0));
    } else {
        printf("group %s: no dead-letter queue\n", group);
    }
}

/* dlq consume: print, then ack. */
static int settle_inspect(void *arg, fy_client *c, fy_consumer *cons, fy_message *m)
{
    fy_consume_status how = FY_CONSUME_SUCCESS;

    return settle_print(&how, c, cons, m);
}

/* Properties the broker acts on when a message is sent (delays) or that it sets itself: a
 * resent dead letter goes out now, whatever delayed it the first time. */
static const char *const resend_dropped_props[] = {"TIMER_DELIVER_MS", "TIMER_DELAY_MS", "DELAY",
                                                   "REAL_TOPIC"};

/* dlq resend: send a copy of the dead letter to its original topic (the message's topic field),
 * then ack the dead letter; an ack only after the send, so a failure leaves it in the DLQ. */
static int settle_resend(void *arg, fy_client *c, fy_consumer *cons, fy_message *m)
{
    fy_message *copy = fy_message_dup(m); /* topic, tag, keys, properties, body */
    fy_send_result r;
    int rc;

    (void)arg;
    if (!copy) {
        return report(c, -FY_ENOMEM);
    }
    for (size_t i = 0; i < sizeof(resend_dropped_props) / sizeof(resend_dropped_props[0]); i++) {
        fy_message_set_property(copy, resend_dropped_props[i], NULL);
    }
    rc = fy_send(c, copy, &r);
    fy_message_free(copy);
    if (rc != FY_OK) {
        fprintf(stderr, "ferryctl: dlq resend: dead letter %s to %s: %s\n", fy_message_id(m),
                fy_message_topic(m),
                *fy_client_last_error(c) ? fy_client_last_error(c) : fy_strerror(rc));
        return rc == -FY_ECLOSED ? EXIT_CONN : EXIT_FAIL;
    }
    if (json_out) {
        json_print(json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "msgid", r.msgid, "topic",
                             fy_message_topic(m), "queue", (json_int_t)r.queue_id, "offset",
                             (json_int_t)r.queue_offset, "dead_letter", fy_message_id(m),
                             "reconsume", (json_int_t)fy_message_reconsume_count(m)));
    } else {
        printf("%s %s\n", r.msgid, fy_message_topic(m));
    }
    fflush(stdout);
    rc = fy_consumer_ack(cons, m);
    if (rc != FY_OK) {
        /* Resent but not acknowledged: the next resend sends it once more. */
        fprintf(stderr,
                "ferryctl: dlq resend: dead letter %s resent as %s but not acknowledged: "
                "%s\n",
                fy_message_id(m), r.msgid, fy_strerror(rc));
        return rc == -FY_ECLOSED ? EXIT_CONN : EXIT_FAIL;
    }
    return -1;
}

static int cmd_dlq(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {{"count", true}, {"timeout", true}, {NULL, false}};
    char topic[320], group[160];
    uint64_t count = 0, idle_ms = DLQ_DEFAULT_IDLE_MS, n, min, max;
    bool exists, resend;
    const char *sub, *v;
    fy_consumer_opts o;
    fy_consumer *cons;
    parsed p;
    int rc;

    rc = parse_args(argc, argv, spec, help_dlq, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos < 1) {
        return usage_error(help_dlq, "dlq: missing subcommand");
    }
    sub = p.pos[0];
    if (strcmp(sub, "list") == 0) {
        cmd_name = "dlq list";
    } else if (strcmp(sub, "consume") == 0) {
        cmd_name = "dlq consume";
    } else if (strcmp(sub, "resend") == 0) {
        cmd_name = "dlq resend";
    } else {
        return usage_error(help_dlq, "dlq: unknown subcommand '%s'", sub);
    }
    if (p.npos != 2 || !*p.pos[1]) {
        return usage_error(help_dlq, "%s: one GROUP expected", cmd_name);
    }
    if (strlen(p.pos[1]) > 127) {
        return usage_error(help_dlq, "%s: GROUP is longer than 127 bytes", cmd_name);
    }
    dlq_topic(p.pos[1], topic, sizeof(topic));
    if (strcmp(sub, "list") == 0) {
        if (p.nopts > 0) {
            return usage_error(help_dlq, "dlq list: --count and --timeout are for consume and "
                                         "resend");
        }
        NEED_BROKER(c);
        rc = dlq_size(c, topic, &exists, &n, &min, &max);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (!exists) {
            print_no_dlq(p.pos[1], topic);
        } else if (json_out) {
            json_print(json_pack("{s:s, s:s, s:b, s:I, s:I, s:I}", "group", p.pos[1], "topic",
                                 topic, "exists", 1, "messages", (json_int_t)n, "min_offset",
                                 (json_int_t)min, "max_offset", (json_int_t)max));
        } else {
            printf("group %s: %" PRIu64 " dead letter%s in %s", p.pos[1], n, n == 1 ? "" : "s",
                   topic);
            if (n > 0) {
                printf(" (offsets %" PRIu64 " to %" PRIu64 ")", min, max - 1);
            }
            printf("\n");
        }
        return EXIT_OK;
    }
    if ((v = opt_get(&p, "count")) && (!parse_u64(v, &count) || count == 0)) {
        return usage_error(help_dlq, "%s: --count needs a positive number", cmd_name);
    }
    if ((v = opt_get(&p, "timeout")) && (!parse_u64(v, &idle_ms) || idle_ms > INT32_MAX)) {
        return usage_error(help_dlq, "%s: --timeout needs milliseconds", cmd_name);
    }
    resend = strcmp(sub, "resend") == 0;
    snprintf(group, sizeof(group), "%s-dlq-%s", p.pos[1], resend ? "resend" : "inspect");
    NEED_BROKER(c);
    /* Subscribing would create the topic (auto_create_topics): look first. */
    rc = dlq_size(c, topic, &exists, &n, &min, &max);
    if (rc != FY_OK) {
        return report(c, rc);
    }
    if (!exists) {
        /* stderr: stdout has only dead letters. */
        fprintf(stderr, "ferryctl: %s: group %s has no dead-letter queue\n", cmd_name, p.pos[1]);
        return EXIT_OK;
    }
    fy_consumer_opts_init(&o);
    o.topic = topic;
    o.group = group;
    o.from = FY_FROM_FIRST;
    o.window = count && count < 256 ? (uint32_t)count : 256;
    cons = fy_consumer_new(c, &o, &rc);
    if (!cons) {
        return report(c, rc);
    }
    rc = consume_loop(c, cons, count, (int64_t)idle_ms, resend ? settle_resend : settle_inspect,
                      NULL);
    fy_consumer_free(cons); /* writes the last acks and leaves the group */
    return rc;
}

/* ---- group --------------------------------------------------------------------------------- */

static const char *mode_name(fy_consume_mode m)
{
    return m == FY_CONSUME_BROADCAST ? "broadcast" : "clustering";
}

/* "16 (the broker's default)" or "3 (set for the group)". */
static void print_max_reconsume(const char *label, const fy_group_config *gc)
{
    printf("%s%d (%s)\n", label, gc->max_reconsume_effective,
           gc->max_reconsume == FY_MAX_RECONSUME_DEFAULT ? "the broker's default"
                                                         : "set for the group");
}

static json_t *group_config_json(const fy_group_config *gc)
{
    return json_pack("{s:s, s:s, s:i, s:b}", "group", gc->name, "mode", mode_name(gc->mode),
                     "max_reconsume", gc->max_reconsume_effective, "max_reconsume_default",
                     gc->max_reconsume == FY_MAX_RECONSUME_DEFAULT);
}

static int cmd_group_config(fy_client *c, const parsed *p)
{
    const char *mr = opt_get(p, "max-reconsume");
    fy_group_config *gc;
    int rc, max = FY_MAX_RECONSUME_DEFAULT;

    cmd_name = "group config";
    if (p->npos != 2) {
        return usage_error(help_group, "group config: one GROUP expected");
    }
    for (int i = 0; i < p->nopts; i++) {
        if (strcmp(p->opts[i].name, "max-reconsume") != 0) {
            return usage_error(help_group, "group config: --%s is for group reset",
                               p->opts[i].name);
        }
    }
    if (mr && strcmp(mr, "default") != 0) {
        uint64_t v;
        if (!parse_u64(mr, &v) || v > 64) {
            return usage_error(
                help_group, "group config: --max-reconsume must be 0..64 or default, not '%s'", mr);
        }
        max = (int)v;
    }
    NEED_BROKER(c);
    rc = mr ? fy_group_set_max_reconsume(c, p->pos[1], max, &gc)
            : fy_group_config_get(c, p->pos[1], &gc);
    if (rc != FY_OK) {
        return report(c, rc);
    }
    if (json_out) {
        json_print(group_config_json(gc));
    } else {
        printf("group:          %s\nmode:           %s\n", gc->name, mode_name(gc->mode));
        print_max_reconsume("max_reconsume:  ", gc);
    }
    fy_group_config_free(gc);
    return EXIT_OK;
}

static int cmd_group(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {
        {"topic", true}, {"to", true}, {"max-reconsume", true}, {NULL, false}};
    const char *sub;
    parsed p;
    int rc;

    rc = parse_args(argc, argv, spec, help_group, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos < 1) {
        return usage_error(help_group, "group: missing subcommand");
    }
    sub = p.pos[0];
    if (strcmp(sub, "config") == 0) {
        return cmd_group_config(c, &p);
    }
    if (strcmp(sub, "reset") == 0) {
        const char *topic = opt_get(&p, "topic"), *to = opt_get(&p, "to");
        fy_group_offsets *res;
        uint64_t ts;
        cmd_name = "group reset";
        if (p.npos != 2) {
            return usage_error(help_group, "group reset: one GROUP expected");
        }
        if (!topic || !*topic || !to) {
            return usage_error(help_group, "group reset: --topic and --to are required");
        }
        if (opt_get(&p, "max-reconsume")) {
            return usage_error(help_group, "group reset: --max-reconsume is for group config");
        }
        if (!parse_time(to, &ts)) {
            return usage_error(help_group, "group reset: bad TIME '%s'", to);
        }
        NEED_BROKER(c);
        rc = fy_group_reset(c, p.pos[1], topic, ts, &res);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_t *arr = json_array();
            for (size_t i = 0; i < res->n; i++) {
                json_array_append_new(arr, json_pack("{s:I, s:I}", "queue",
                                                     (json_int_t)res->queue_ids[i], "offset",
                                                     (json_int_t)res->offsets[i]));
            }
            json_print(json_pack("{s:s, s:s, s:I, s:o}", "group", p.pos[1], "topic", topic, "ts_ms",
                                 (json_int_t)ts, "queues", arr));
        } else {
            char tbuf[96];
            printf("group %s reset in %s to %s\n", p.pos[1], topic,
                   fmt_time(ts, tbuf, sizeof(tbuf)));
            printf("%6s %14s\n", "QUEUE", "OFFSET");
            for (size_t i = 0; i < res->n; i++) {
                printf("%6u %14" PRIu64 "\n", res->queue_ids[i], res->offsets[i]);
            }
        }
        fy_group_offsets_free(res);
        return EXIT_OK;
    }
    if (p.nopts > 0) {
        return usage_error(help_group, "group %s: --%s is for group %s", sub, p.opts[0].name,
                           strcmp(p.opts[0].name, "max-reconsume") == 0 ? "config" : "reset");
    }
    if (strcmp(sub, "list") == 0) {
        fy_groups *list;
        cmd_name = "group list";
        if (p.npos != 1) {
            return usage_error(help_group, "group list: no arguments expected");
        }
        NEED_BROKER(c);
        rc = fy_group_list(c, &list);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_t *arr = json_array();
            for (size_t i = 0; i < list->n; i++) {
                json_array_append_new(arr,
                                      json_pack("{s:s, s:s, s:I}", "name", list->groups[i].name,
                                                "mode", mode_name(list->groups[i].mode), "members",
                                                (json_int_t)list->groups[i].members));
            }
            json_print(json_pack("{s:o}", "groups", arr));
        } else {
            printf("%-32s %-10s %8s\n", "NAME", "MODE", "MEMBERS");
            for (size_t i = 0; i < list->n; i++) {
                printf("%-32s %-10s %8u\n", list->groups[i].name, mode_name(list->groups[i].mode),
                       list->groups[i].members);
            }
        }
        fy_groups_free(list);
        return EXIT_OK;
    }
    if (strcmp(sub, "describe") == 0) {
        fy_group_info *g;
        fy_group_config *gc = NULL;
        cmd_name = "group describe";
        if (p.npos != 2) {
            return usage_error(help_group, "group describe: one GROUP expected");
        }
        NEED_BROKER(c);
        rc = fy_group_describe(c, p.pos[1], &g);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        rc = fy_group_config_get(c, p.pos[1], &gc);
        if (rc != FY_OK) {
            fy_group_info_free(g);
            return report(c, rc);
        }
        if (json_out) {
            json_t *mem = json_array(), *qs = json_array();
            for (size_t i = 0; i < g->nmembers; i++) {
                const fy_group_member *x = &g->members[i];
                json_array_append_new(mem, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I}", "member_id",
                                                     (json_int_t)x->member_id, "client_id",
                                                     x->client_id, "topic", x->topic, "filter",
                                                     x->filter, "credit", (json_int_t)x->credit,
                                                     "inflight", (json_int_t)x->inflight));
            }
            for (size_t i = 0; i < g->nqueues; i++) {
                const fy_group_queue *q = &g->queues[i];
                json_array_append_new(
                    qs, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "topic", q->topic, "queue",
                                  (json_int_t)q->queue_id, "committed", (json_int_t)q->committed,
                                  "max_offset", (json_int_t)q->max_offset, "lag",
                                  (json_int_t)q->lag, "owner", (json_int_t)q->owner));
            }
            json_print(json_pack(
                "{s:s, s:s, s:i, s:b, s:o, s:o}", "name", g->name, "mode", mode_name(g->mode),
                "max_reconsume", gc->max_reconsume_effective, "max_reconsume_default",
                gc->max_reconsume == FY_MAX_RECONSUME_DEFAULT, "members", mem, "queues", qs));
        } else {
            uint64_t lag = 0;
            printf("group:          %s\nmode:           %s\n", g->name, mode_name(g->mode));
            print_max_reconsume("max_reconsume:  ", gc);
            printf("members:        %zu\n\n", g->nmembers);
            if (g->nmembers) {
                printf("%8s %-24s %-20s %-16s %8s %8s\n", "MEMBER", "CLIENT", "TOPIC", "FILTER",
                       "CREDIT", "INFLIGHT");
                for (size_t i = 0; i < g->nmembers; i++) {
                    const fy_group_member *x = &g->members[i];
                    printf("%8u %-24s %-20s %-16s %8u %8u\n", x->member_id, x->client_id, x->topic,
                           *x->filter ? x->filter : "*", x->credit, x->inflight);
                }
                printf("\n");
            }
            printf("%-20s %6s %14s %14s %10s %8s\n", "TOPIC", "QUEUE", "COMMITTED", "MAX", "LAG",
                   "OWNER");
            for (size_t i = 0; i < g->nqueues; i++) {
                const fy_group_queue *q = &g->queues[i];
                char owner[16];
                snprintf(owner, sizeof(owner), "%u", q->owner);
                lag += q->lag;
                printf("%-20s %6u %14" PRIu64 " %14" PRIu64 " %10" PRIu64 " %8s\n", q->topic,
                       q->queue_id, q->committed, q->max_offset, q->lag, q->owner ? owner : "-");
            }
            printf("%-20s %6s %14s %14s %10" PRIu64 "\n", "total", "", "", "", lag);
        }
        fy_group_info_free(g);
        fy_group_config_free(gc);
        return EXIT_OK;
    }
    return usage_error(help_group, "group: unknown subcommand '%s'", sub);
}

/* ---- message ------------------------------------------------------------------------------- */

#define FIND_DEFAULT_LIMIT 100
#define FIND_BODY_SHOWN 60 /* bytes of a body shown by `message find` */

/* One `message find` line: id, queue, offset, store time, and the body cut to FIND_BODY_SHOWN
 * bytes (at a character boundary) or a note when it is not text. */
static void message_print_line(const fy_message *m)
{
    char t1[96];
    size_t len, shown;
    const unsigned char *p = fy_message_body(m, &len);

    printf("%s %" PRId64 " %" PRId64 " %s ", fy_message_id(m), fy_message_queue_id(m),
           fy_message_queue_offset(m), fmt_time(fy_message_store_ms(m), t1, sizeof(t1)));
    if (!printable(p, len)) {
        printf("<%zu bytes of binary data>\n", len);
        return;
    }
    shown = len;
    if (len > FIND_BODY_SHOWN) {
        shown = FIND_BODY_SHOWN;
        while (shown > 0 && (p[shown] & 0xc0) == 0x80) {
            shown--; /* do not cut a UTF-8 sequence */
        }
    }
    printf("%.*s%s\n", (int)shown, p ? (const char *)p : "", shown < len ? "..." : "");
}

static int cmd_message_get(fy_client *c, const parsed *p)
{
    fy_message *m;
    int rc;

    cmd_name = "message get";
    if (p->nopts > 0) {
        return usage_error(help_message, "message get: options are for message find");
    }
    if (p->npos != 2) {
        return usage_error(help_message, "message get: one ID expected");
    }
    if (fy_message_id_parse(p->pos[1], NULL, NULL, NULL, NULL) != FY_OK) {
        return usage_error(help_message, "message get: '%s' is not a message id (32 hex digits)",
                           p->pos[1]);
    }
    NEED_BROKER(c);
    rc = fy_message_get_by_id(c, p->pos[1], &m);
    if (rc != FY_OK) {
        return report(c, rc);
    }
    if (json_out) {
        json_print(message_json(m));
    } else {
        message_print_human(m);
    }
    fy_message_free(m);
    return EXIT_OK;
}

static int cmd_message_find(fy_client *c, const parsed *p)
{
    const char *topic = opt_get(p, "topic"), *key = opt_get(p, "key"), *v;
    uint64_t since = 0, until = 0, limit = FIND_DEFAULT_LIMIT;
    fy_message_list *list;
    int rc;

    cmd_name = "message find";
    if (p->npos != 1) {
        return usage_error(help_message, "message find: no arguments expected besides options");
    }
    if (!topic || !*topic || !key || !*key) {
        return usage_error(help_message, "message find: --topic and --key are required");
    }
    if ((v = opt_get(p, "since")) && !parse_time(v, &since)) {
        return usage_error(help_message, "message find: bad TIME '%s' for --since", v);
    }
    /* The library reads an upper bound of 0 as "none": the epoch itself is not a useful one. */
    if ((v = opt_get(p, "until")) && (!parse_time(v, &until) || until == 0)) {
        return usage_error(help_message, "message find: bad TIME '%s' for --until", v);
    }
    if (until != 0 && until < since) {
        return usage_error(help_message, "message find: --until is before --since");
    }
    if ((v = opt_get(p, "limit")) && (!parse_u64(v, &limit) || limit < 1 || limit > 1024)) {
        return usage_error(help_message, "message find: --limit needs a number from 1 to 1024");
    }
    NEED_BROKER(c);
    rc = fy_message_find(c, topic, key, since, until, (size_t)limit, &list);
    if (rc != FY_OK) {
        return report(c, rc);
    }
    if (json_out) {
        json_t *arr = json_array();
        for (size_t i = 0; i < list->n; i++) {
            json_array_append_new(arr, message_json(list->messages[i]));
        }
        json_print(json_pack("{s:s, s:s, s:o}", "topic", topic, "key", key, "messages", arr));
    } else {
        for (size_t i = 0; i < list->n; i++) {
            message_print_line(list->messages[i]);
        }
    }
    fy_message_list_free(list);
    return EXIT_OK;
}

static int cmd_message(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {{"topic", true}, {"key", true},   {"since", true},
                                    {"until", true}, {"limit", true}, {NULL, false}};
    parsed p;
    int rc;

    rc = parse_args(argc, argv, spec, help_message, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos >= 1 && strcmp(p.pos[0], "get") == 0) {
        return cmd_message_get(c, &p);
    }
    if (p.npos >= 1 && strcmp(p.pos[0], "find") == 0) {
        return cmd_message_find(c, &p);
    }
    return usage_error(help_message, "message: the subcommand is get or find");
}

/* ---- main ---------------------------------------------------------------------------------- */

typedef struct command {
    const char *name;
    int (*run)(fy_client *c, int argc, char **argv);
    const char *help;
} command;

/* ---- tx ------------------------------------------------------------------------------------ */

#define TX_DEFAULT_GROUP "ferryctl-tx"

static int cmd_tx(fy_client *c, int argc, char **argv)
{
    static const opt_spec spec[] = {{"group", true},        {"tag", true},  {"key", true},
                                    {"prop", true},         {"from", true}, {"limit", true},
                                    {"sharding-key", true}, {NULL, false}};
    const char *sub;
    parsed p;
    int rc;

    cmd_name = "tx";
    rc = parse_args(argc, argv, spec, help_tx, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos < 1) {
        return usage_error(help_tx, "tx: missing subcommand");
    }
    sub = p.pos[0];
    if (strcmp(sub, "send") == 0) {
        const char *group = opt_get(&p, "group");
        fy_send_result half;
        uint64_t tx_id = 0;
        fy_message *m;
        cmd_name = "tx send";
        if (p.npos != 3) {
            return usage_error(help_tx, "tx send: TOPIC and BODY expected");
        }
        if (opt_get(&p, "from") || opt_get(&p, "limit")) {
            return usage_error(help_tx, "tx send: --from and --limit are for tx list");
        }
        m = fy_message_new(p.pos[1]);
        if (!m) {
            fprintf(stderr, "ferryctl: tx send: out of memory\n");
            return EXIT_FAIL;
        }
        rc = fy_message_set_body(m, p.pos[2], strlen(p.pos[2]));
        for (int i = 0; i < p.nopts && rc == FY_OK; i++) {
            const char *name = p.opts[i].name, *val = p.opts[i].val;
            if (strcmp(name, "tag") == 0) {
                rc = fy_message_set_tag(m, val);
            } else if (strcmp(name, "key") == 0) {
                rc = fy_message_add_key(m, val);
            } else if (strcmp(name, "sharding-key") == 0) {
                rc = fy_message_set_sharding_key(m, val);
            } else if (strcmp(name, "prop") == 0) {
                const char *eq = strchr(val, '=');
                char *k;
                if (!eq || eq == val) {
                    fy_message_free(m);
                    return usage_error(help_tx, "tx send: --prop needs NAME=VALUE, got '%s'", val);
                }
                k = strndup(val, (size_t)(eq - val));
                rc = k ? fy_message_set_property(m, k, eq + 1) : -FY_ENOMEM;
                free(k);
            }
        }
        if (rc != FY_OK) {
            fy_message_free(m);
            return usage_error(help_tx, "tx send: bad message option: %s", fy_strerror(rc));
        }
        rc = need_broker(c);
        if (rc >= 0) {
            fy_message_free(m);
            return rc;
        }
        rc = fy_tx_send_half(c, group ? group : TX_DEFAULT_GROUP, m, &tx_id, &half);
        fy_message_free(m);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (json_out) {
            json_print(json_pack("{s:I, s:s, s:s, s:I}", "tx_id", (json_int_t)tx_id, "half_id",
                                 half.msgid, "group", group ? group : TX_DEFAULT_GROUP, "store_ms",
                                 (json_int_t)half.store_ms));
        } else {
            printf("%" PRIu64 "\n", tx_id);
        }
        return EXIT_OK;
    }
    if (strcmp(sub, "commit") == 0 || strcmp(sub, "rollback") == 0) {
        bool commit = sub[0] == 'c';
        fy_send_result r;
        uint64_t tx_id;
        cmd_name = commit ? "tx commit" : "tx rollback";
        if (p.npos != 2 || !parse_u64(p.pos[1], &tx_id)) {
            return usage_error(help_tx, "%s: one transaction ID (a number) expected", cmd_name);
        }
        if (p.nopts > 0) {
            return usage_error(help_tx, "%s: no options expected", cmd_name);
        }
        NEED_BROKER(c);
        rc = fy_tx_end(c, tx_id, commit ? FY_TX_COMMIT : FY_TX_ROLLBACK, &r);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        if (commit) {
            print_send_result(&r);
        } else if (json_out) {
            json_print(json_pack("{s:I, s:s}", "tx_id", (json_int_t)tx_id, "state", "rolled back"));
        } else {
            printf("%" PRIu64 " rolled back\n", tx_id);
        }
        return EXIT_OK;
    }
    if (strcmp(sub, "list") == 0) {
        uint64_t from = 0, limit = 1024;
        const char *v;
        fy_tx_pending_list *l;
        cmd_name = "tx list";
        if (p.npos != 1) {
            return usage_error(help_tx, "tx list: no arguments expected besides options");
        }
        if ((v = opt_get(&p, "from")) && !parse_u64(v, &from)) {
            return usage_error(help_tx, "tx list: --from needs a transaction id");
        }
        if ((v = opt_get(&p, "limit")) && (!parse_u64(v, &limit) || limit == 0 || limit > 1024)) {
            return usage_error(help_tx, "tx list: --limit needs 1..1024");
        }
        NEED_BROKER(c);
        rc = fy_tx_list(c, from, (size_t)limit, &l);
        if (rc != FY_OK) {
            return report(c, rc);
        }
        for (size_t i = 0; i < l->n; i++) {
            const fy_tx_pending *t = &l->txs[i];
            size_t len;
            char at[40];
            fy_message_body(t->message, &len);
            if (json_out) {
                json_print(json_pack("{s:I, s:s, s:s, s:I, s:I, s:s, s:I}", "tx_id",
                                     (json_int_t)t->tx_id, "half_id", fy_message_id(t->message),
                                     "group", t->group, "checks", (json_int_t)t->checks,
                                     "stored_ms", (json_int_t)t->stored_ms, "topic",
                                     fy_message_topic(t->message), "size", (json_int_t)len));
            } else {
                printf("%" PRIu64 " group=%s checks=%u stored=%s topic=%s size=%zu\n", t->tx_id,
                       t->group, t->checks, fmt_time(t->stored_ms, at, sizeof(at)),
                       fy_message_topic(t->message), len);
            }
        }
        fy_tx_pending_list_free(l);
        return EXIT_OK;
    }
    return usage_error(help_tx, "tx: unknown subcommand '%s'", sub);
}

static const command commands[] = {
    {"topic", cmd_topic, help_topic},
    {"send", cmd_send, help_send},
    {"consume", cmd_consume, help_consume},
    {"group", cmd_group, help_group},
    {"message", cmd_message, help_message},
    {"dlq", cmd_dlq, help_dlq},
    {"tx", cmd_tx, help_tx},
};

/* ---- status (admin HTTP API) ---------------------------------------------------------------- */

static const char help_status[] =
    "Usage: ferryctl [--admin HOST:PORT] [--user U] status\n"
    "\n"
    "Shows the broker's overview (GET /api/v1/overview on the admin listener): version,\n"
    "uptime, store state, topic and group counts, connections per protocol, messages in and\n"
    "out with their rates over the last seconds, pending delayed and half messages, retries,\n"
    "dead letters and resident memory. --json prints the overview document as it is.\n"
    "With --user, the request carries HTTP Basic credentials (the admin API asks for them when\n"
    "the broker has a password_file).\n";

/* GET path over HTTP/1.0 from host:port; the body of a 200 reply into *body (malloc'ed).
 * EXIT_OK, EXIT_CONN (cannot connect) or EXIT_FAIL (a reply other than 200). */
static int http_get(const char *addr, const char *path, const char *user, const char *password,
                    int timeout_ms, char **body)
{
    char host[256], req[2048], auth[1200] = "", *colon, *p;
    struct addrinfo hints = {0}, *ai = NULL;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    int fd = -1, rc = EXIT_CONN, status = 0;
    ssize_t n;

    snprintf(host, sizeof(host), "%s", addr);
    colon = strrchr(host, ':');
    if (!colon || colon == host || !colon[1]) {
        fprintf(stderr, "ferryctl: bad admin address '%s' (HOST:PORT)\n", addr);
        return EXIT_USAGE;
    }
    *colon = '\0';
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
        fprintf(stderr, "ferryctl: cannot resolve %s\n", addr);
        goto out;
    }
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        goto out;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() too */
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        fprintf(stderr, "ferryctl: cannot connect to the admin API at %s: %s\n", addr,
                strerror(errno));
        goto out;
    }
    if (user) {
        /* HTTP Basic: base64 of user:password, when the admin API has a password file. */
        char cred[768];
        char *b64;
        snprintf(cred, sizeof(cred), "%s:%s", user, password);
        b64 = base64((const uint8_t *)cred, strlen(cred));
        explicit_bzero(cred, sizeof(cred));
        if (b64) {
            snprintf(auth, sizeof(auth), "Authorization: Basic %s\r\n", b64);
            explicit_bzero(b64, strlen(b64));
            free(b64);
        }
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: application/json\r\n%s\r\n",
             path, addr, auth);
    explicit_bzero(auth, sizeof(auth));
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
        fprintf(stderr, "ferryctl: cannot send to %s: %s\n", addr, strerror(errno));
        goto out;
    }
    rc = EXIT_FAIL;
    buf = malloc(cap);
    while (buf) {
        if (len + 1 == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                fprintf(stderr, "ferryctl: reply from %s too large\n", addr);
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        n = recv(fd, buf + len, cap - len - 1, 0);
        if (n < 0) {
            fprintf(stderr, "ferryctl: reading from %s: %s\n", addr, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    if (!buf) {
        goto out;
    }
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1 || !(p = strstr(buf, "\r\n\r\n"))) {
        fprintf(stderr, "ferryctl: not an HTTP reply from %s\n", addr);
        goto out;
    }
    if (status != 200) {
        fprintf(stderr, "ferryctl: %s answered %d: %s", addr, status, p + 4);
        goto out;
    }
    *body = strdup(p + 4);
    rc = *body ? EXIT_OK : EXIT_FAIL;
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    if (ai) {
        freeaddrinfo(ai);
    }
    return rc;
}

static json_int_t jint(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2) {
        v = json_object_get(v, path2);
    }
    return json_integer_value(v);
}

static int cmd_status(const char *admin, const char *user, const char *password, int timeout_ms,
                      int argc, char **argv)
{
    char *text = NULL;
    json_t *o, *conns, *v;
    json_error_t jerr;
    const char *name;
    json_int_t up;
    bool first = true;
    int rc;
    if (argc > 0) {
        return usage_error(help_status, "status takes no arguments");
    }
    rc = http_get(admin, "/api/v1/overview", user, password, timeout_ms, &text);
    if (rc != EXIT_OK) {
        return rc;
    }
    o = json_loads(text, 0, &jerr);
    if (!json_is_object(o)) {
        fprintf(stderr, "ferryctl: the overview is not a JSON object: %s\n", jerr.text);
        json_decref(o);
        free(text);
        return EXIT_FAIL;
    }
    if (json_out) {
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        goto out;
    }
    up = jint(o, "uptime_s", NULL);
    printf("version:       %s\n", json_string_value(json_object_get(o, "version")));
    printf("uptime:        %lldd %02lld:%02lld:%02lld\n", (long long)(up / 86400),
           (long long)(up / 3600 % 24), (long long)(up / 60 % 60), (long long)(up % 60));
    printf("store:         %s (flush %s)\n",
           json_is_true(json_object_get(o, "store_healthy")) ? "ok" : "UNHEALTHY",
           json_string_value(json_object_get(o, "flush")));
    printf("topics:        %lld\n", (long long)jint(o, "counts", "topics"));
    printf("groups:        %lld\n", (long long)jint(o, "counts", "groups"));
    printf("connections:  ");
    conns = json_object_get(o, "connections");
    json_object_foreach(conns, name, v)
    {
        printf("%s %s %lld", first ? "" : ",", name, (long long)json_integer_value(v));
        first = false;
    }
    printf("\n");
    printf("messages in:   %lld (%.1f/s)\n", (long long)jint(o, "messages", "in"),
           json_real_value(json_object_get(json_object_get(o, "messages"), "in_per_s")));
    printf("messages out:  %lld (%.1f/s)\n", (long long)jint(o, "messages", "out"),
           json_real_value(json_object_get(json_object_get(o, "messages"), "out_per_s")));
    printf("delayed:       %lld pending\n", (long long)jint(o, "counts", "delayed_pending"));
    printf("transactions:  %lld half messages pending\n",
           (long long)jint(o, "counts", "half_pending"));
    printf("retries:       %lld\n", (long long)jint(o, "counts", "retries"));
    printf("dead letters:  %lld\n", (long long)jint(o, "counts", "dead_letters"));
    printf("memory:        %.1f MiB resident\n",
           (double)jint(o, "resident_memory_bytes", NULL) / (1024.0 * 1024.0));
out:
    json_decref(o);
    free(text);
    return EXIT_OK;
}

/* ---- top (admin HTTP API) ------------------------------------------------------------------- */

static const char help_top[] =
    "Usage: ferryctl [--admin HOST:PORT] [--user U] [--json] top [--interval D] [--once |\n"
    "                --iterations N] [--internal] [--limit N]\n"
    "\n"
    "Shows the broker's live rates, refreshed every interval until Ctrl-C: messages in and out\n"
    "per second overall and per topic (busiest first), and per consumer group its lag and the\n"
    "messages it consumed per second (most lag first). Rates are the broker's, over its last\n"
    "5 seconds; a group's rate is measured while someone asks for it, so the first screen may\n"
    "show 0 for groups. On a terminal each screen replaces the last one.\n"
    "  --interval D     time between screens (default 2s; e.g. 500ms, 1s)\n"
    "  --once           one screen, then exit (same as --iterations 1)\n"
    "  --iterations N   N screens, then exit\n"
    "  --internal       list internal topics too (%RETRY%, %DLQ%, %LQ%)\n"
    "  --limit N        at most N topics and N groups (default: what fits the terminal, else all)\n"
    "--json prints one JSON document per screen: {\"time_ms\", \"overview\", \"topics\",\n"
    "\"groups\"} with the API's documents (GET /api/v1/overview, /topics, /groups).\n";

static json_t *get_json(const char *admin, const char *path, const char *user, const char *password,
                        int timeout_ms, int *rc)
{
    char *text = NULL;
    json_error_t jerr;
    json_t *o;
    *rc = http_get(admin, path, user, password, timeout_ms, &text);
    if (*rc != EXIT_OK) {
        return NULL;
    }
    o = json_loads(text, 0, &jerr);
    free(text);
    if (!json_is_object(o)) {
        fprintf(stderr, "ferryctl: %s is not a JSON object: %s\n", path, jerr.text);
        json_decref(o);
        *rc = EXIT_FAIL;
        return NULL;
    }
    return o;
}

static double jreal(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_number(v) ? json_number_value(v) : 0;
}

static int by_in_rate(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    double rx = jreal(x, "in_per_s") + jreal(x, "out_per_s");
    double ry = jreal(y, "in_per_s") + jreal(y, "out_per_s");
    if (rx != ry) {
        return rx < ry ? 1 : -1;
    }
    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

static int by_lag(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t lx = json_integer_value(json_object_get(x, "lag"));
    json_int_t ly = json_integer_value(json_object_get(y, "lag"));
    if (lx != ly) {
        return lx < ly ? 1 : -1;
    }
    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

/* The array's elements sorted by cmp, in a new array of borrowed pointers (free() it). */
static json_t **sorted(json_t *arr, int (*cmp)(const void *, const void *), size_t *n)
{
    json_t **v;
    *n = json_array_size(arr);
    v = calloc(*n ? *n : 1, sizeof(*v));
    if (!v) {
        *n = 0;
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        v[i] = json_array_get(arr, i);
    }
    qsort(v, *n, sizeof(*v), cmp);
    return v;
}

static void top_print(json_t *ov, json_t *topics, json_t *groups, size_t limit, bool tty)
{
    json_t *msgs = json_object_get(ov, "messages"), *conns = json_object_get(ov, "connections");
    json_t *v, **tv, **gv;
    const char *name;
    json_int_t up = jint(ov, "uptime_s", NULL);
    size_t nt, ng;
    bool first = true;
    char now[32];
    time_t t = time(NULL);
    struct tm tm;
    strftime(now, sizeof(now), "%H:%M:%S", localtime_r(&t, &tm));
    if (tty) {
        fputs("\033[H\033[2J", stdout); /* home, clear: each screen replaces the last */
    }
    printf("ferry %s  up %lldd %02lld:%02lld:%02lld  store %s  connections",
           json_string_value(json_object_get(ov, "version")), (long long)(up / 86400),
           (long long)(up / 3600 % 24), (long long)(up / 60 % 60), (long long)(up % 60),
           json_is_true(json_object_get(ov, "store_healthy")) ? "ok" : "UNHEALTHY");
    json_object_foreach(conns, name, v)
    {
        printf("%s %s %lld", first ? "" : ",", name, (long long)json_integer_value(v));
        first = false;
    }
    printf("  %s\n", now);
    printf("messages in %lld (%.1f/s)  out %lld (%.1f/s)  topics %lld  groups %lld\n\n",
           (long long)jint(ov, "messages", "in"), jreal(msgs, "in_per_s"),
           (long long)jint(ov, "messages", "out"), jreal(msgs, "out_per_s"),
           (long long)jint(ov, "counts", "topics"), (long long)jint(ov, "counts", "groups"));
    tv = sorted(json_object_get(topics, "topics"), by_in_rate, &nt);
    printf("%-32s %6s %12s %10s %10s %12s %12s\n", "TOPIC", "QUEUES", "STORED", "IN/S", "OUT/S",
           "IN", "OUT");
    for (size_t i = 0; i < nt && i < limit; i++) {
        printf("%-32s %6lld %12lld %10.1f %10.1f %12lld %12lld\n",
               json_string_value(json_object_get(tv[i], "name")),
               (long long)jint(tv[i], "queues", NULL), (long long)jint(tv[i], "messages", NULL),
               jreal(tv[i], "in_per_s"), jreal(tv[i], "out_per_s"),
               (long long)jint(tv[i], "messages_in", NULL),
               (long long)jint(tv[i], "messages_out", NULL));
    }
    if (nt > limit) {
        printf("... %zu more topics\n", nt - limit);
    }
    gv = sorted(json_object_get(groups, "groups"), by_lag, &ng);
    printf("\n%-32s %-10s %8s %12s %11s\n", "GROUP", "MODE", "MEMBERS", "LAG", "CONSUMED/S");
    for (size_t i = 0; i < ng && i < limit; i++) {
        printf("%-32s %-10s %8lld %12lld %11.1f\n",
               json_string_value(json_object_get(gv[i], "name")),
               json_string_value(json_object_get(gv[i], "mode")),
               (long long)jint(gv[i], "members", NULL), (long long)jint(gv[i], "lag", NULL),
               jreal(gv[i], "consumed_per_s"));
    }
    if (ng > limit) {
        printf("... %zu more groups\n", ng - limit);
    }
    free(tv);
    free(gv);
    fflush(stdout);
}

/* Sleeps ms, or less if a signal (Ctrl-C) comes. */
static void nap(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (!interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmd_top(const char *admin, const char *user, const char *password, int timeout_ms,
                   int argc, char **argv)
{
    static const opt_spec spec[] = {{"interval", true},  {"once", false}, {"iterations", true},
                                    {"internal", false}, {"limit", true}, {NULL, false}};
    parsed p;
    uint64_t interval = 2000, iterations = 0, limit = 0;
    const char *v;
    bool tty = isatty(STDOUT_FILENO) && !json_out;
    int rc = parse_args(argc, argv, spec, help_top, &p);
    if (rc >= 0) {
        return rc;
    }
    if (p.npos > 0) {
        return usage_error(help_top, "top: no arguments expected besides options");
    }
    if ((v = opt_get(&p, "interval")) && (!parse_duration(v, &interval) || interval < 100)) {
        return usage_error(help_top, "top: --interval needs a duration of at least 100ms");
    }
    if ((v = opt_get(&p, "iterations")) && (!parse_u64(v, &iterations) || iterations == 0)) {
        return usage_error(help_top, "top: --iterations needs a positive number");
    }
    if (opt_get(&p, "once")) {
        if (opt_get(&p, "iterations") && iterations != 1) {
            return usage_error(help_top, "top: --once and --iterations exclude each other");
        }
        iterations = 1;
    }
    if ((v = opt_get(&p, "limit")) && (!parse_u64(v, &limit) || limit == 0)) {
        return usage_error(help_top, "top: --limit needs a positive number");
    }
    if (!limit) {
        struct winsize ws;
        limit = SIZE_MAX;
        if (tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 16) {
            limit = (size_t)(ws.ws_row - 9) / 2; /* both tables and the headers fit */
        }
    }
    for (uint64_t i = 0; !interrupted && (iterations == 0 || i < iterations); i++) {
        json_t *ov, *topics = NULL, *groups = NULL;
        if (i > 0) {
            nap(interval);
            if (interrupted) {
                break;
            }
        }
        ov = get_json(admin, "/api/v1/overview", user, password, timeout_ms, &rc);
        if (ov) {
            topics = get_json(
                admin, opt_get(&p, "internal") ? "/api/v1/topics?internal=true" : "/api/v1/topics",
                user, password, timeout_ms, &rc);
        }
        if (topics) {
            groups = get_json(admin, "/api/v1/groups", user, password, timeout_ms, &rc);
        }
        if (!groups) {
            json_decref(ov);
            json_decref(topics);
            return rc;
        }
        if (json_out) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            json_print(json_pack("{s:I, s:o, s:o, s:o}", "time_ms",
                                 (json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, "overview",
                                 ov, "topics", json_incref(json_object_get(topics, "topics")),
                                 "groups", json_incref(json_object_get(groups, "groups"))));
            fflush(stdout);
        } else {
            top_print(ov, topics, groups, (size_t)limit, tty);
            json_decref(ov);
        }
        json_decref(topics);
        json_decref(groups);
    }
    return interrupted ? EXIT_INTR : EXIT_OK;
}

int main(int argc, char **argv)
{
    const char *broker = getenv("FERRY_BROKER");
    const char *user = getenv("FERRY_USER");
    const char *password = getenv("FERRY_PASSWORD");
    char asked[1024];
    const char *admin = getenv("FERRY_ADMIN");
    const command *cmd = NULL;
    const char *cafile = NULL, *certfile = NULL, *keyfile = NULL;
    bool tls = false;
    uint64_t timeout = 0;
    fy_client_opts o;
    fy_client *c;
    struct sigaction sa;
    int i, rc, err;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0) {
            if (strcmp(a, "help") == 0 && i + 1 < argc) {
                if (strcmp(argv[i + 1], "top") == 0 || strcmp(argv[i + 1], "status") == 0) {
                    fputs(argv[i + 1][0] == 't' ? help_top : help_status, stdout);
                    return EXIT_OK;
                }
                for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
                    if (strcmp(commands[k].name, argv[i + 1]) == 0) {
                        fputs(commands[k].help, stdout);
                        return EXIT_OK;
                    }
                }
            }
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("ferryctl %s\n", fy_version());
            return EXIT_OK;
        }
        if (strcmp(a, "--json") == 0) {
            json_out = true;
            continue;
        }
        if (strcmp(a, "--tls") == 0) {
            tls = true;
            continue;
        }
        if (strcmp(a, "--cafile") == 0 || strcmp(a, "--cert") == 0 || strcmp(a, "--key") == 0) {
            if (i + 1 >= argc) {
                return usage_error(NULL, "option '%s' needs a file", a);
            }
            if (strcmp(a, "--cafile") == 0) {
                cafile = argv[++i];
            } else if (strcmp(a, "--cert") == 0) {
                certfile = argv[++i];
            } else {
                keyfile = argv[++i];
            }
            tls = true;
            continue;
        }
        if (strncmp(a, "--broker", 8) == 0 || strncmp(a, "--timeout", 9) == 0 ||
            strncmp(a, "--user", 6) == 0 || strncmp(a, "--admin", 7) == 0) {
            const char *name = a[2] == 'b'   ? "broker"
                               : a[2] == 'u' ? "user"
                               : a[2] == 'a' ? "admin"
                                             : "timeout";
            size_t nlen = strlen(name) + 2;
            if (a[nlen] == '=') {
                val = a + nlen + 1;
            } else if (a[nlen] == '\0' && i + 1 < argc) {
                val = argv[++i];
            } else if (a[nlen] == '\0') {
                return usage_error(NULL, "option '--%s' needs a value", name);
            } else {
                return usage_error(NULL, "unknown option '%s'", a);
            }
            if (name[0] == 'b') {
                broker = val;
            } else if (name[0] == 'u') {
                user = val;
            } else if (name[0] == 'a') {
                admin = val;
            } else if (!parse_u64(val, &timeout) || timeout == 0 || timeout > INT32_MAX) {
                return usage_error(NULL, "--timeout needs a positive number of milliseconds");
            }
            continue;
        }
        if (a[0] == '-') {
            return usage_error(NULL, "unknown option '%s'", a);
        }
        break;
    }
    if (i == argc) {
        return usage_error(NULL, "no command given");
    }
    if (strcmp(argv[i], "passwd") == 0) {
        if (i + 1 < argc &&
            (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0)) {
            fputs(ferryctl_passwd_help, stdout);
            return EXIT_OK;
        }
        rc = ferryctl_passwd(argc - i - 1, argv + i + 1);
        if (rc == EXIT_OK && json_out) {
            /* passwd [-D] FILE USER: what was done, for scripts */
            bool del = argc - i - 1 == 3 && strcmp(argv[i + 1], "-D") == 0;
            json_print(json_pack("{s:s, s:s, s:b}", "file", argv[argc - 2], "user", argv[argc - 1],
                                 "deleted", del));
        }
        return rc;
    }
    if (strcmp(argv[i], "status") == 0 || strcmp(argv[i], "top") == 0) {
        const char *pw = NULL;
        bool top = argv[i][0] == 't';
        for (int k = i + 1; k < argc; k++) {
            if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
                fputs(top ? help_top : help_status, stdout);
                return EXIT_OK;
            }
        }
        signal(SIGPIPE, SIG_IGN);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        if (user && *user) {
            pw = password;
            if (!pw && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
                pw = ferryctl_ask_password(asked, sizeof(asked)) == 0 ? asked : "";
            }
        }
        rc = (top ? cmd_top : cmd_status)(
            admin && *admin ? admin : "127.0.0.1:8081", user && *user ? user : NULL, pw ? pw : "",
            timeout ? (int)timeout : 10000, argc - i - 1, argv + i + 1);
        explicit_bzero(asked, sizeof(asked));
        return rc;
    }
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
        if (strcmp(commands[k].name, argv[i]) == 0) {
            cmd = &commands[k];
        }
    }
    if (!cmd) {
        return usage_error(NULL, "unknown command '%s'", argv[i]);
    }
    /* Help needs no broker. */
    for (int k = i + 1; k < argc && strcmp(argv[k], "--") != 0; k++) {
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            fputs(cmd->help, stdout);
            return EXIT_OK;
        }
    }

    fy_client_opts_init(&o);
    o.broker = broker && *broker ? broker : NULL;
    o.client_name = "ferryctl";
    if (user && *user) {
        o.username = user;
        if (!password && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
            password = ferryctl_ask_password(asked, sizeof(asked)) == 0 ? asked : "";
        }
        o.password = password ? password : "";
    }
    if (timeout) {
        o.request_timeout_ms = (int)timeout;
        o.connect_timeout_ms = (int)(timeout < 5000 ? timeout : 5000);
    }
    o.tls = tls;
    o.tls_cafile = cafile;
    o.tls_certfile = certfile;
    o.tls_keyfile = keyfile;
    c = fy_client_new(&o, &err);
    if (!c) {
        if (err == -FY_EINVAL && tls) {
            const char *files[] = {cafile, certfile, keyfile};
            for (size_t k = 0; k < 3; k++) {
                FILE *fh = files[k] ? fopen(files[k], "r") : NULL;
                if (files[k] && !fh) {
                    fprintf(stderr, "ferryctl: cannot read %s: %s\n", files[k], strerror(errno));
                    return EXIT_USAGE;
                }
                if (fh) {
                    fclose(fh);
                }
            }
            fprintf(stderr,
                    "ferryctl: bad broker address '%s', or TLS files that do not load (not PEM, "
                    "or a key that is not the certificate's)\n",
                    broker ? broker : "");
            return EXIT_USAGE;
        }
        if (err == -FY_EINVAL) {
            return usage_error(NULL, "bad broker address '%s' (HOST:PORT)", broker);
        }
        fprintf(stderr, "ferryctl: %s\n", fy_strerror(err));
        return EXIT_FAIL;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    explicit_bzero(asked, sizeof(asked));
    rc = cmd->run(c, argc - i - 1, argv + i + 1);
    fy_client_free(c);
    return rc;
}
