/* SPDX-License-Identifier: Apache-2.0 */
/* The protocol adapters ferryd runs, one line each, and their life cycle. */
#include "adapters/adapter.h"
#include "common/alloc.h"

#include "ferry/errors.h"

#include <stdio.h>
#include <string.h>

extern const fy_adapter fy_mqtt_adapter;
extern const fy_adapter fy_amqp_adapter;

static const fy_adapter *const all[] = {
    &fy_mqtt_adapter,
    &fy_amqp_adapter,
};

#define NADAPTERS (sizeof(all) / sizeof(all[0]))

struct fy_adapters {
    void *conf[NADAPTERS];
    void *state[NADAPTERS];
    bool started[NADAPTERS];
};

fy_adapters *fy_adapters_new(fy_config *cfg)
{
    fy_adapters *a = FY_NEW(fy_adapters);
    for (size_t i = 0; i < NADAPTERS; i++) {
        a->conf[i] = fy_calloc(1, all[i]->conf_size);
        if (fy_config_add_section(cfg, all[i]->name, all[i]->keys, all[i]->nkeys, a->conf[i]) !=
            FY_OK) {
            fprintf(stderr, "ferryd: internal error registering [%s]\n", all[i]->name);
        }
    }
    return a;
}

int fy_adapters_start(fy_adapters *a, const fy_adapter_env *env, char *err, size_t errlen)
{
    for (size_t i = 0; i < NADAPTERS; i++) {
        int rc;
        if (all[i]->abi != FY_ADAPTER_ABI) {
            snprintf(err, errlen, "adapter %s: ABI %u, expected %u", all[i]->name,
                     (unsigned)all[i]->abi, (unsigned)FY_ADAPTER_ABI);
            fy_adapters_stop(a);
            return -FY_EVERSION;
        }
        rc = all[i]->start(env, a->conf[i], &a->state[i], err, errlen);
        if (rc != FY_OK) {
            fy_adapters_stop(a);
            return rc;
        }
        a->started[i] = true;
    }
    return FY_OK;
}

void fy_adapters_stop(fy_adapters *a)
{
    if (!a) {
        return;
    }
    for (size_t i = NADAPTERS; i-- > 0;) {
        if (a->started[i]) {
            all[i]->stop(a->state[i]);
            a->started[i] = false;
            a->state[i] = NULL;
        }
    }
}

void fy_adapters_each_stats(fy_adapters *a,
                            void (*fn)(void *arg, const char *name, const fy_adapter_stats *s),
                            void *arg)
{
    for (size_t i = 0; a && i < NADAPTERS; i++) {
        fy_adapter_stats st = {0};
        if (!a->started[i] || !a->state[i]) {
            continue;
        }
        if (all[i]->stats) {
            all[i]->stats(a->state[i], &st);
        }
        fn(arg, all[i]->name, &st);
    }
}

static int find_started(fy_adapters *a, const char *name)
{
    for (size_t i = 0; a && i < NADAPTERS; i++) {
        if (a->started[i] && a->state[i] && strcmp(all[i]->name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int fy_adapters_each_connection(fy_adapters *a, const char *name, fy_conn_info_fn fn, void *arg)
{
    int i = find_started(a, name);
    if (i < 0) {
        return -FY_ENOTFOUND;
    }
    if (!all[i]->each_connection) {
        return -FY_ENOTSUP;
    }
    all[i]->each_connection(a->state[i], fn, arg);
    return FY_OK;
}

int fy_adapters_kick(fy_adapters *a, const char *name, uint64_t id)
{
    int i = find_started(a, name);
    if (i < 0) {
        return -FY_ENOTFOUND;
    }
    if (!all[i]->kick) {
        return -FY_ENOTSUP;
    }
    return all[i]->kick(a->state[i], id);
}

void fy_adapters_free(fy_adapters *a)
{
    if (!a) {
        return;
    }
    fy_adapters_stop(a);
    for (size_t i = 0; i < NADAPTERS; i++) {
        fy_free(a->conf[i]);
    }
    fy_free(a);
}
