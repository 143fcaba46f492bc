/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the message record decoder: decodes arbitrary bytes and, when they
 * decode, walks every key and property, re-encodes the view and checks that decoding the
 * re-encoding gives the same fields and the same bytes. Aborts on any mismatch. */
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
        fprintf(stderr, "record_fuzz: %s\n", what);
        abort();
    }
}

static bool fuzz_slice_eq(fy_slice a, fy_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Fills keys and props (2 * nprops) from v; false if the iterators yield other counts. */
static bool fuzz_collect(const fy_record_view *v, fy_slice *keys, fy_slice *props)
{
    fy_record_iter it = fy_record_keys(v);
    size_t n = 0;

    while (fy_record_key_next(&it, &keys[n])) {
        fuzz_check(keys[n].len > 0, "decoded an empty key");
        if (++n > v->nkeys) {
            return false;
        }
    }
    if (n != v->nkeys) {
        return false;
    }
    it = fy_record_props(v);
    n = 0;
    while (fy_record_prop_next(&it, &props[2 * n], &props[2 * n + 1])) {
        fuzz_check(props[2 * n].len > 0, "decoded an empty property name");
        if (++n > v->nprops) {
            return false;
        }
    }
    return n == v->nprops;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fy_record_view v, w;
    fy_record r = {0};
    fy_buf out = FY_BUF_INIT;
    fy_slice *keys = NULL, *props = NULL, a, b;
    fy_record_iter it;
    int rc;

    rc = fy_record_decode(data, size, &v);
    if (rc != FY_OK) {
        fuzz_check(rc == -FY_ECORRUPT || rc == -FY_EVERSION, "unexpected decode error");
        return 0;
    }
    fuzz_check(v.topic.len > 0, "decoded an empty topic");

    /* One spare slot each, so an iterator that runs long is caught, not written past. */
    keys = calloc((size_t)v.nkeys + 1, sizeof(*keys));
    props = calloc(2 * ((size_t)v.nprops + 1), sizeof(*props));
    fuzz_check(keys && props, "out of memory");
    fuzz_check(fuzz_collect(&v, keys, props), "iterators disagree with the counts");

    r.flags = v.flags;
    r.queue_id = v.queue_id;
    r.queue_offset = v.queue_offset;
    r.born_ms = v.born_ms;
    r.store_ms = v.store_ms;
    r.reconsume = v.reconsume;
    r.topic = v.topic;
    r.tag = v.tag;
    r.born_host = v.born_host;
    r.keys = keys;
    r.nkeys = v.nkeys;
    r.props = props;
    r.nprops = v.nprops;
    r.body = v.body;

    /* The encoding is canonical: what decodes re-encodes to the very same bytes. */
    fuzz_check(fy_record_size(&r) == size, "size of the re-encoding differs");
    fuzz_check(fy_record_encode(&r, &out) == FY_OK, "re-encoding refused");
    fuzz_check(out.len == size && memcmp(out.data, data, size) == 0, "re-encoding differs");

    fuzz_check(fy_record_decode(out.data, out.len, &w) == FY_OK, "re-encoding does not decode");
    fuzz_check(w.version == v.version && w.flags == v.flags && w.queue_id == v.queue_id &&
                   w.queue_offset == v.queue_offset && w.born_ms == v.born_ms &&
                   w.store_ms == v.store_ms && w.reconsume == v.reconsume && w.nkeys == v.nkeys &&
                   w.nprops == v.nprops,
               "fixed fields differ");
    fuzz_check(fuzz_slice_eq(w.topic, v.topic) && fuzz_slice_eq(w.tag, v.tag) &&
                   fuzz_slice_eq(w.born_host, v.born_host) && fuzz_slice_eq(w.body, v.body),
               "names or body differ");

    it = fy_record_keys(&w);
    for (size_t i = 0; i < w.nkeys; i++) {
        fuzz_check(fy_record_key_next(&it, &a) && fuzz_slice_eq(a, keys[i]), "keys differ");
    }
    fuzz_check(!fy_record_key_next(&it, &a), "extra key");
    it = fy_record_props(&w);
    for (size_t i = 0; i < w.nprops; i++) {
        fuzz_check(fy_record_prop_next(&it, &a, &b) && fuzz_slice_eq(a, props[2 * i]) &&
                       fuzz_slice_eq(b, props[2 * i + 1]),
                   "properties differ");
    }
    fuzz_check(!fy_record_prop_next(&it, &a, &b), "extra property");

    /* prop_get finds the first property of each name (names with a NUL cannot be asked for). */
    for (size_t i = 0; i < w.nprops && i < 8; i++) {
        char name[64];
        fy_slice got, want = props[2 * i + 1];
        if (props[2 * i].len >= sizeof(name) || memchr(props[2 * i].p, 0, props[2 * i].len)) {
            continue;
        }
        memcpy(name, props[2 * i].p, props[2 * i].len);
        name[props[2 * i].len] = '\0';
        for (size_t j = 0; j < i; j++) {
            if (fuzz_slice_eq(props[2 * j], props[2 * i])) {
                want = props[2 * j + 1];
                break;
            }
        }
        fuzz_check(fy_record_prop_get(&w, name, &got) && fuzz_slice_eq(got, want),
                   "prop_get differs");
    }

    /* Location patching and peeking agree with the decoder. */
    uint64_t ms;
    fuzz_check(fy_record_peek_store_ms(out.data, out.len, &ms) == FY_OK && ms == v.store_ms,
               "peek differs");
    fuzz_check(fy_record_set_location(out.data, out.len, ~v.queue_id, ~v.queue_offset,
                                      ~v.store_ms) == FY_OK,
               "set_location refused");
    fuzz_check(fy_record_decode(out.data, out.len, &w) == FY_OK && w.queue_id == ~v.queue_id &&
                   w.queue_offset == ~v.queue_offset && w.store_ms == ~v.store_ms &&
                   fuzz_slice_eq(w.body, v.body),
               "set_location broke the record");

    fy_buf_free(&out);
    free(keys);
    free(props);
    return 0;
}
