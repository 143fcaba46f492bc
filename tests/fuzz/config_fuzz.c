/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the configuration parser: arbitrary text loaded over the broker's key
 * tables never crashes, and a successful load formats to text that loads back. */
#include "broker/config.h"
#include "common/log.h"

#include "ferry/errors.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fy_config *cfg = fy_config_new();
    fy_broker_config bc;
    char err[256];
    fy_log_set_level(FY_LOG_OFF);
    if (fy_broker_config_register(cfg, &bc) != FY_OK) {
        abort();
    }
    if (fy_config_load_mem(cfg, (const char *)data, size, "fuzz", err, sizeof(err)) == FY_OK) {
        fy_buf text = FY_BUF_INIT;
        fy_config *again = fy_config_new();
        fy_broker_config bc2;
        fy_config_format(cfg, &text);
        if (fy_broker_config_register(again, &bc2) != FY_OK ||
            fy_config_load_mem(again, (const char *)text.data, text.len, "formatted", err,
                               sizeof(err)) != FY_OK) {
            abort(); /* what we print must load back */
        }
        fy_config_free(again);
        fy_buf_free(&text);
    }
    fy_config_free(cfg);
    return 0;
}
