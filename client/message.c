/* SPDX-License-Identifier: Apache-2.0 */
/* libferry's message object: owned copies of every field, the setters and getters of
 * include/ferry/message.h, and the conversions to and from the record codec (common/record.h).
 * Plain malloc throughout: out of memory is -FY_ENOMEM, never an abort. */
#include "ferry/message.h"

#include "client/private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies n bytes of s and adds a NUL; NULL when out of memory. */
static char *msg_strndup(const void *s, size_t n)
{
    char *d = malloc(n + 1);

    if (!d) {
        return NULL;
    }
    if (n > 0) {
        memcpy(d, s, n);
    }
    d[n] = '\0';
    return d;
}

/* Replaces *slot with a copy of s (NULL or "" clears it when allow_clear). */
static int msg_set_str(char **slot, const char *s, bool allow_clear)
{
    char *copy = NULL;

    if (!s || !*s) {
        if (!allow_clear) {
            return -FY_EINVAL;
        }
    } else {
        size_t n = strlen(s);
        if (n > FY_RECORD_MAX_NAME) {
            return -FY_EINVAL;
        }
        copy = msg_strndup(s, n);
        if (!copy) {
            return -FY_ENOMEM;
        }
    }
    free(*slot);
    *slot = copy;
    return FY_OK;
}

fy_message *fy_message_new(const char *topic)
{
    fy_message *m = calloc(1, sizeof(*m));

    if (!m) {
        return NULL;
    }
    m->queue_id = -1;
    m->queue_offset = -1;
    if (topic && *topic && msg_set_str(&m->topic, topic, false) != FY_OK) {
        free(m);
        return NULL;
    }
    return m;
}

void fy_message_free(fy_message *m)
{
    if (!m) {
        return;
    }
    free(m->topic);
    free(m->tag);
    free(m->sharding_key);
    free(m->born_host);
    for (size_t i = 0; i < m->nkeys; i++) {
        free(m->keys[i]);
    }
    free(m->keys);
    for (size_t i = 0; i < m->nprops; i++) {
        free(m->props[i].name);
        free(m->props[i].value);
    }
    free(m->props);
    free(m->body);
    free(m);
}

static int msg_dup_opt(char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return FY_OK;
    }
    *dst = msg_strndup(src, strlen(src));
    return *dst ? FY_OK : -FY_ENOMEM;
}

fy_message *fy_message_dup(const fy_message *src)
{
    fy_message *m;

    if (!src || !(m = calloc(1, sizeof(*m)))) {
        return NULL;
    }
    *m = *src;
    m->topic = m->tag = m->sharding_key = m->born_host = NULL;
    m->keys = NULL;
    m->nkeys = m->capkeys = 0;
    m->props = NULL;
    m->nprops = m->capprops = 0;
    m->body = NULL;
    m->body_len = 0;
    m->next = NULL;
    if (msg_dup_opt(&m->topic, src->topic) || msg_dup_opt(&m->tag, src->tag) ||
        msg_dup_opt(&m->sharding_key, src->sharding_key) ||
        msg_dup_opt(&m->born_host, src->born_host) ||
        fy_message_set_body(m, src->body, src->body_len)) {
        goto fail;
    }
    for (size_t i = 0; i < src->nkeys; i++) {
        if (fy_message_add_key(m, src->keys[i]) != FY_OK) {
            goto fail;
        }
    }
    for (size_t i = 0; i < src->nprops; i++) {
        if (fy_message_set_property(m, src->props[i].name, src->props[i].value) != FY_OK) {
            goto fail;
        }
    }
    return m;
fail:
    fy_message_free(m);
    return NULL;
}

int fy_message_set_topic(fy_message *m, const char *topic)
{
    return m ? msg_set_str(&m->topic, topic, false) : -FY_EINVAL;
}

int fy_message_set_tag(fy_message *m, const char *tag)
{
    return m ? msg_set_str(&m->tag, tag, true) : -FY_EINVAL;
}

int fy_message_set_sharding_key(fy_message *m, const char *key)
{
    return m ? msg_set_str(&m->sharding_key, key, true) : -FY_EINVAL;
}

static int msg_set_u64_prop(fy_message *m, const char *name, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
    return fy_message_set_property(m, name, buf);
}

int fy_message_set_deliver_at(fy_message *m, uint64_t ms)
{
    return m ? msg_set_u64_prop(m, "TIMER_DELIVER_MS", ms) : -FY_EINVAL;
}

int fy_message_set_delay(fy_message *m, uint64_t ms)
{
    return m ? msg_set_u64_prop(m, "TIMER_DELAY_MS", ms) : -FY_EINVAL;
}

int fy_message_set_delay_level(fy_message *m, uint32_t level)
{
    return m ? msg_set_u64_prop(m, "DELAY", level) : -FY_EINVAL;
}

/* Makes room for one more element in a growable array. */
static int msg_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    void *p;
    size_t ncap;

    if (n < *cap) {
        return FY_OK;
    }
    ncap = *cap ? *cap * 2 : 4;
    p = realloc(*arr, ncap * elem);
    if (!p) {
        return -FY_ENOMEM;
    }
    *arr = p;
    *cap = ncap;
    return FY_OK;
}

int fy_message_add_key(fy_message *m, const char *key)
{
    char *copy = NULL;
    int rc;

    if (!m || !key || !*key || m->nkeys >= UINT16_MAX) {
        return -FY_EINVAL;
    }
    rc = msg_set_str(&copy, key, false);
    if (rc != FY_OK) {
        return rc;
    }
    if (msg_grow((void **)&m->keys, &m->capkeys, m->nkeys, sizeof(*m->keys)) != FY_OK) {
        free(copy);
        return -FY_ENOMEM;
    }
    m->keys[m->nkeys++] = copy;
    return FY_OK;
}

int fy_message_clear_keys(fy_message *m)
{
    if (!m) {
        return -FY_EINVAL;
    }
    for (size_t i = 0; i < m->nkeys; i++) {
        free(m->keys[i]);
    }
    m->nkeys = 0;
    return FY_OK;
}

static cl_prop *msg_prop_find(const fy_message *m, const char *name)
{
    for (size_t i = 0; i < m->nprops; i++) {
        if (strcmp(m->props[i].name, name) == 0) {
            return &m->props[i];
        }
    }
    return NULL;
}

int fy_message_set_property(fy_message *m, const char *name, const char *value)
{
    cl_prop *p;
    char *n = NULL, *v = NULL;

    if (!m || !name || !*name || strlen(name) > FY_RECORD_MAX_NAME) {
        return -FY_EINVAL;
    }
    p = msg_prop_find(m, name);
    if (!value) {
        if (p) {
            size_t i = (size_t)(p - m->props);
            free(p->name);
            free(p->value);
            memmove(p, p + 1, (m->nprops - i - 1) * sizeof(*p));
            m->nprops--;
        }
        return FY_OK;
    }
    if (strlen(value) > UINT32_MAX) {
        return -FY_EINVAL;
    }
    v = msg_strndup(value, strlen(value));
    if (!v) {
        return -FY_ENOMEM;
    }
    if (p) {
        free(p->value);
        p->value = v;
        return FY_OK;
    }
    if (m->nprops >= UINT16_MAX) {
        free(v);
        return -FY_EINVAL;
    }
    n = msg_strndup(name, strlen(name));
    if (!n || msg_grow((void **)&m->props, &m->capprops, m->nprops, sizeof(*m->props))) {
        free(n);
        free(v);
        return -FY_ENOMEM;
    }
    m->props[m->nprops].name = n;
    m->props[m->nprops].value = v;
    m->nprops++;
    return FY_OK;
}

int fy_message_set_body(fy_message *m, const void *body, size_t len)
{
    uint8_t *copy = NULL;

    if (!m || (len > 0 && !body) || len > FY_RECORD_MAX_BODY) {
        return -FY_EINVAL;
    }
    if (len > 0) {
        copy = malloc(len);
        if (!copy) {
            return -FY_ENOMEM;
        }
        memcpy(copy, body, len);
    }
    free(m->body);
    m->body = copy;
    m->body_len = len;
    return FY_OK;
}

/* ---- Getters ------------------------------------------------------------------------------- */

static const char *msg_or_empty(const char *s)
{
    return s ? s : "";
}

const char *fy_message_topic(const fy_message *m)
{
    return m ? msg_or_empty(m->topic) : "";
}

const char *fy_message_tag(const fy_message *m)
{
    return m ? msg_or_empty(m->tag) : "";
}

size_t fy_message_key_count(const fy_message *m)
{
    return m ? m->nkeys : 0;
}

const char *fy_message_key_at(const fy_message *m, size_t i)
{
    return m && i < m->nkeys ? m->keys[i] : NULL;
}

const char *fy_message_property(const fy_message *m, const char *name)
{
    const cl_prop *p = m && name ? msg_prop_find(m, name) : NULL;

    return p ? p->value : NULL;
}

size_t fy_message_property_count(const fy_message *m)
{
    return m ? m->nprops : 0;
}

int fy_message_property_at(const fy_message *m, size_t i, const char **name, const char **value)
{
    if (!m || i >= m->nprops) {
        return -FY_EINVAL;
    }
    if (name) {
        *name = m->props[i].name;
    }
    if (value) {
        *value = m->props[i].value;
    }
    return FY_OK;
}

const void *fy_message_body(const fy_message *m, size_t *len)
{
    if (len) {
        *len = m ? m->body_len : 0;
    }
    return m && m->body_len ? m->body : NULL;
}

const char *fy_message_sharding_key(const fy_message *m)
{
    return m ? msg_or_empty(m->sharding_key) : "";
}

const char *fy_message_born_host(const fy_message *m)
{
    return m ? msg_or_empty(m->born_host) : "";
}

uint64_t fy_message_born_ms(const fy_message *m)
{
    return m ? m->born_ms : 0;
}

uint64_t fy_message_store_ms(const fy_message *m)
{
    return m ? m->store_ms : 0;
}

int64_t fy_message_queue_id(const fy_message *m)
{
    return m ? m->queue_id : -1;
}

int64_t fy_message_queue_offset(const fy_message *m)
{
    return m ? m->queue_offset : -1;
}

uint32_t fy_message_reconsume_count(const fy_message *m)
{
    return m ? m->reconsume : 0;
}

const char *fy_message_id(const fy_message *m)
{
    return m ? m->msgid : "";
}

int fy_message_id_parse(const char *id, uint16_t *broker_id, uint32_t *topic_id, uint32_t *queue_id,
                        uint64_t *queue_offset)
{
    uint8_t raw[FY_MSGID_LEN];
    uint16_t b, q;
    uint32_t t;
    uint64_t o;

    if (!id || fy_msgid_from_hex(id, strlen(id), raw) != FY_OK) {
        return -FY_EINVAL;
    }
    fy_msgid_parse(raw, &b, &t, &q, &o);
    if (broker_id) {
        *broker_id = b;
    }
    if (topic_id) {
        *topic_id = t;
    }
    if (queue_id) {
        *queue_id = q;
    }
    if (queue_offset) {
        *queue_offset = o;
    }
    return FY_OK;
}

/* ---- Records ------------------------------------------------------------------------------- */

/* Fills r with slices over msg. keys and props must have room for msg's keys and 2 * props;
 * they are allocated by the caller. */
static void msg_to_record(const fy_message *m, uint64_t born_ms, const char *born_host,
                          fy_slice *keys, fy_slice *props, fy_record *r)
{
    memset(r, 0, sizeof(*r));
    r->born_ms = born_ms;
    r->topic = fy_slice_str(m->topic);
    r->tag = fy_slice_str(m->tag);
    r->born_host = fy_slice_str(born_host);
    for (size_t i = 0; i < m->nkeys; i++) {
        keys[i] = fy_slice_str(m->keys[i]);
    }
    for (size_t i = 0; i < m->nprops; i++) {
        props[2 * i] = fy_slice_str(m->props[i].name);
        props[2 * i + 1] = fy_slice_str(m->props[i].value);
    }
    r->keys = m->nkeys ? keys : NULL;
    r->nkeys = (uint16_t)m->nkeys;
    r->props = m->nprops ? props : NULL;
    r->nprops = (uint16_t)m->nprops;
    r->body.p = m->body;
    r->body.len = m->body_len;
}

/* Builds the record of msg over temporary slice arrays, then reports its size (size) and/or
 * appends its encoding to out (out, which must have room for it). */
static int msg_with_record(const fy_message *m, uint64_t born_ms, const char *born_host,
                           fy_buf *out, size_t *size)
{
    fy_slice small[16];
    fy_slice *slices = small;
    size_t need = m->nkeys + 2 * m->nprops;
    fy_record r;
    int rc = FY_OK;

    if (need > sizeof(small) / sizeof(small[0])) {
        slices = malloc(need * sizeof(*slices));
        if (!slices) {
            return -FY_ENOMEM;
        }
    }
    msg_to_record(m, born_ms, born_host, slices, slices + m->nkeys, &r);
    if (size) {
        *size = fy_record_size(&r);
    }
    if (out) {
        size_t n = fy_record_size(&r);
        if (n == 0) {
            rc = -FY_EINVAL;
        } else if (out->cap - out->len < n) {
            rc = cl_buf_reserve(out, n);
        }
        if (rc == FY_OK) {
            rc = fy_record_encode(&r, out);
        }
    }
    if (slices != small) {
        free(slices);
    }
    return rc;
}

size_t cl_message_record_size(const fy_message *m, uint64_t born_ms, const char *born_host)
{
    size_t n = 0;

    if (!m->topic) {
        return 0;
    }
    if (msg_with_record(m, born_ms, born_host, NULL, &n) != FY_OK) {
        return 0;
    }
    return n;
}

int cl_message_encode(const fy_message *m, uint64_t born_ms, const char *born_host, fy_buf *out)
{
    if (!m->topic) {
        return -FY_EINVAL;
    }
    return msg_with_record(m, born_ms, born_host, out, NULL);
}

int cl_message_from_record(const void *rec, size_t len, fy_message **out)
{
    fy_record_view v;
    fy_record_iter it;
    fy_slice k, name, value;
    fy_message *m;

    *out = NULL;
    if (fy_record_decode(rec, len, &v) != FY_OK) {
        return -FY_EPROTO;
    }
    m = fy_message_new(NULL);
    if (!m) {
        return -FY_ENOMEM;
    }
    m->flags = v.flags;
    m->queue_id = v.queue_id;
    m->queue_offset = (int64_t)v.queue_offset;
    m->born_ms = v.born_ms;
    m->store_ms = v.store_ms;
    m->reconsume = v.reconsume;
    if (!(m->topic = msg_strndup(v.topic.p, v.topic.len))) {
        goto oom;
    }
    if (v.tag.len && !(m->tag = msg_strndup(v.tag.p, v.tag.len))) {
        goto oom;
    }
    if (v.born_host.len && !(m->born_host = msg_strndup(v.born_host.p, v.born_host.len))) {
        goto oom;
    }
    if (v.nkeys) {
        m->keys = calloc(v.nkeys, sizeof(*m->keys));
        if (!m->keys) {
            goto oom;
        }
        m->capkeys = v.nkeys;
        it = fy_record_keys(&v);
        while (fy_record_key_next(&it, &k)) {
            if (!(m->keys[m->nkeys] = msg_strndup(k.p, k.len))) {
                goto oom;
            }
            m->nkeys++;
        }
    }
    if (v.nprops) {
        m->props = calloc(v.nprops, sizeof(*m->props));
        if (!m->props) {
            goto oom;
        }
        m->capprops = v.nprops;
        it = fy_record_props(&v);
        while (fy_record_prop_next(&it, &name, &value)) {
            cl_prop *p = &m->props[m->nprops];
            p->name = msg_strndup(name.p, name.len);
            p->value = msg_strndup(value.p, value.len);
            if (!p->name || !p->value) {
                free(p->name);
                free(p->value);
                goto oom;
            }
            m->nprops++;
        }
    }
    if (v.body.len) {
        m->body = malloc(v.body.len);
        if (!m->body) {
            goto oom;
        }
        memcpy(m->body, v.body.p, v.body.len);
        m->body_len = v.body.len;
    }
    *out = m;
    return FY_OK;
oom:
    fy_message_free(m);
    return -FY_ENOMEM;
}
