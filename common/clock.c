/* SPDX-License-Identifier: Apache-2.0 */
/* Monotonic and wall clocks. */
#include "common/clock.h"

#include <time.h>

uint64_t fy_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t fy_mono_ms(void)
{
    return fy_mono_ns() / 1000000u;
}

uint64_t fy_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
