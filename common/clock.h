/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks: monotonic for intervals and deadlines, wall for timestamps stored in messages. */
#ifndef FERRY_COMMON_CLOCK_H
#define FERRY_COMMON_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC); only differences are meaningful. */
uint64_t fy_mono_ns(void);
/* Monotonic time in milliseconds. */
uint64_t fy_mono_ms(void);
/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t fy_wall_ms(void);

/* ms as a struct timeval (libevent's timeouts). */
static inline struct timeval fy_ms_timeval(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

#endif
