/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the SQL92 message selector: compiles arbitrary bytes and, when they
 * compile, evaluates the selector against a few fixed records. Compiling never crashes; a
 * failure has a NUL-terminated reason and a position inside the text (or just past it), and
 * matching gives the same answer twice. Aborts on any breach. */
#include "broker/selector.h"
#include "common/buf.h"
#include "common/record.h"

#include "ferry/errors.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "selector_fuzz: %s\n", what);
        abort();
    }
}

#define FUZZ_NRECS 3

static fy_buf fuzz_bufs[FUZZ_NRECS];
static fy_record_view fuzz_views[FUZZ_NRECS];

static void fuzz_make(int i, const char *tag, const char *const *kv)
{
    fy_slice props[32];
    fy_record r;
    uint16_t n = 0;

    memset(&r, 0, sizeof(r));
    while (kv[2 * n]) {
        props[2 * n] = fy_slice_str(kv[2 * n]);
        props[2 * n + 1] = fy_slice_str(kv[2 * n + 1]);
        n++;
    }
    r.topic = fy_slice_str("T");
    r.tag = fy_slice_str(tag);
    r.props = props;
    r.nprops = n;
    fuzz_check(fy_record_encode(&r, &fuzz_bufs[i]) == FY_OK, "encode");
    fuzz_check(fy_record_decode(fuzz_bufs[i].data, fuzz_bufs[i].len, &fuzz_views[i]) == FY_OK,
               "decode");
}

/* Records whose properties carry the names the seeds use, with numeric, boolean, empty,
 * non-numeric and UTF-8 values. */
static void fuzz_init(void)
{
    static const char *const r0[] = {
        "a",    "7",    "b",      "x",     "price",      "12.5", "flag",
        "true", "name", "a%_b!c", "empty", "",           "big",  "9223372036854775807",
        "neg",  "-3",   "e",      "1e308", "mqtt.topic", "s/1",  NULL};
    static const char *const r1[] = {"a",    "abc",    "b",    "-0.5e-3", "c",
                                     "it's", "region", "eu-1", "u",       "h\xC3\xA9llo",
                                     "x",    "FALSE",  NULL};
    static const char *const r2[] = {NULL};

    fuzz_make(0, "TagA", r0);
    fuzz_make(1, "TagB", r1);
    fuzz_make(2, "", r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    char err[128];
    size_t pos = 0;
    fy_selector *s;

    if (!ready) {
        fuzz_init();
        ready = true;
    }
    memset(err, 'x', sizeof(err));
    s = fy_selector_compile((const char *)data, size, err, sizeof(err), &pos);
    fuzz_check(memchr(err, '\0', sizeof(err)) != NULL, "err not terminated");
    if (!s) {
        fuzz_check(pos >= 1 && pos <= size + 1, "error position outside the text");
        fuzz_check(strncmp(err, "position ", 9) == 0, "error without a position");
        return 0;
    }
    fuzz_check(pos == 0 && err[0] == '\0', "success with an error");
    for (int i = 0; i < FUZZ_NRECS; i++) {
        bool m = fy_selector_match(s, &fuzz_views[i]);
        fuzz_check(fy_selector_match(s, &fuzz_views[i]) == m, "match is not deterministic");
    }
    fy_selector_free(s);
    return 0;
}
