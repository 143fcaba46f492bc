/* SPDX-License-Identifier: Apache-2.0 */
/* MQTT topic names and filters: validation, shared subscription parsing, matching and the
 * first level. Level by level scans over borrowed bytes, no allocation. */
#include "adapters/mqtt/mqtt_topic.h"

#include "adapters/mqtt/mqtt_codec.h"

#include <string.h>

bool fy_mqtt_topic_name_valid(fy_slice t)
{
    if (t.len == 0 || t.len > UINT16_MAX) {
        return false;
    }
    if (memchr(t.p, '+', t.len) || memchr(t.p, '#', t.len)) {
        return false;
    }
    return fy_mqtt_utf8_valid(t.p, t.len);
}

bool fy_mqtt_filter_valid(fy_slice f)
{
    if (f.len == 0 || f.len > UINT16_MAX || !fy_mqtt_utf8_valid(f.p, f.len)) {
        return false;
    }
    for (size_t i = 0; i < f.len; i++) {
        bool level_start = i == 0 || f.p[i - 1] == '/';
        bool level_end = i + 1 == f.len || f.p[i + 1] == '/';
        if (f.p[i] == '+' && !(level_start && level_end)) {
            return false;
        }
        if (f.p[i] == '#' && !(level_start && i + 1 == f.len)) {
            return false;
        }
    }
    return true;
}

int fy_mqtt_share_parse(fy_slice f, fy_slice *group, fy_slice *rest)
{
    static const char prefix[] = "$share/";
    const size_t plen = sizeof(prefix) - 1;
    const uint8_t *slash;
    fy_slice g, r;

    if (f.len < plen || memcmp(f.p, prefix, plen) != 0) {
        return FY_MQTT_SHARE_NONE;
    }
    slash = memchr(f.p + plen, '/', f.len - plen);
    if (!slash) {
        return FY_MQTT_SHARE_INVALID;
    }
    g.p = f.p + plen;
    g.len = (size_t)(slash - g.p);
    r.p = slash + 1;
    r.len = f.len - plen - g.len - 1;
    if (g.len == 0 || memchr(g.p, '+', g.len) || memchr(g.p, '#', g.len) ||
        !fy_mqtt_filter_valid(r)) {
        return FY_MQTT_SHARE_INVALID;
    }
    *group = g;
    *rest = r;
    return FY_MQTT_SHARE_OK;
}

/* End of the level starting at i: the index of the next '/' or s.len. */
static size_t mqtt_level_end(fy_slice s, size_t i)
{
    while (i < s.len && s.p[i] != '/') {
        i++;
    }
    return i;
}

bool fy_mqtt_match(fy_slice f, fy_slice t)
{
    size_t fi = 0, ti = 0;
    bool topic_done = false;

    if (t.len > 0 && t.p[0] == '$' && f.len > 0 && (f.p[0] == '+' || f.p[0] == '#')) {
        return false;
    }
    for (;;) {
        size_t fe = mqtt_level_end(f, fi);
        size_t flen = fe - fi;
        size_t te;
        bool plus = flen == 1 && f.p[fi] == '+';

        if (flen == 1 && f.p[fi] == '#') {
            return true; /* the rest of the topic, or nothing ("sport/#" matches "sport") */
        }
        if (topic_done) {
            return false; /* the filter has more levels than the topic */
        }
        te = mqtt_level_end(t, ti);
        if (!plus && (flen != te - ti || (flen > 0 && memcmp(f.p + fi, t.p + ti, flen) != 0))) {
            return false;
        }
        if (fe >= f.len) {
            return te >= t.len;
        }
        fi = fe + 1;
        if (te >= t.len) {
            topic_done = true;
        } else {
            ti = te + 1;
        }
    }
}

fy_slice fy_mqtt_first_level(fy_slice t)
{
    fy_slice s = {t.p, mqtt_level_end(t, 0)};
    return s;
}
