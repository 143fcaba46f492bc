/* SPDX-License-Identifier: Apache-2.0 */
/* Clocks: monotonic for intervals and deadlines, wall for timestamps stored in messages. */
#ifndef FERRY_COMMON_CLOCK_H
#define FERRY_COMMON_CLOCK_H

#include <stdint.h>

/* Monotonic time in nanoseconds (CLOCK_MONOTONIC); only differences are meaningful. */
uint64_t fy_mono_ns(void);
/* Monotonic time in milliseconds. */
uint64_t fy_mono_ms(void);
/* Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t fy_wall_ms(void);

#endif
