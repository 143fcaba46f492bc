/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the AMQP mapping: arbitrary bytes as the payload of a transfer go through
 * fy_amqp_map_in (to a fixed topic, and through the anonymous relay); whatever maps must be a
 * valid record, map back out with fy_amqp_map_out, and that message must map in again to a
 * record with the same tag and body. Aborts on any mismatch. */
#include "adapters/amqp/amqp_map.h"
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
        fprintf(stderr, "amqp_map_fuzz: %s\n", what);
        abort();
    }
}

static bool slice_eq(fy_slice a, fy_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fy_amqp_in in = {FY_BUF_INIT, FY_BUF_INIT, ""}, again = {FY_BUF_INIT, FY_BUF_INIT, ""};
    fy_buf out = FY_BUF_INIT;
    uint8_t msgid[16] = {0};
    fy_record_view v, w;
    fy_amqp_map_in(data, size, NULL, "fuzz", 1, &in);
    if (fy_amqp_map_in(data, size, "t", "fuzz", 1, &in) == FY_AMQP_MAP_OK) {
        fuzz_check(fy_record_decode(in.record.data, in.record.len, &v) == FY_OK,
                   "mapped record does not decode");
        fuzz_check(fy_amqp_map_out(&v, msgid, 1, &out) == FY_OK, "record does not map out");
        fuzz_check(fy_amqp_map_in(out.data, out.len, "t", "fuzz", 1, &again) == FY_AMQP_MAP_OK,
                   "mapped-out message does not map in");
        fuzz_check(fy_record_decode(again.record.data, again.record.len, &w) == FY_OK,
                   "second record does not decode");
        fuzz_check(slice_eq(v.tag, w.tag), "tag changed");
        fuzz_check(slice_eq(v.body, w.body), "body changed");
    }
    fy_amqp_in_free(&in);
    fy_amqp_in_free(&again);
    fy_buf_free(&out);
    return 0;
}
