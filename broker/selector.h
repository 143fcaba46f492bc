/* SPDX-License-Identifier: Apache-2.0 */
/* The SQL92 message selector (RocketMQ's SQL92 filter, the JMS 2.0 message selector, AMQP's
 * apache.org:selector-filter:string): compiled once per subscription, evaluated by the broker
 * for each message over its properties and tag. Grammar and semantics: docs/selectors.md.
 *
 * Threads: a compiled selector is immutable; fy_selector_match may run on any thread, on the
 * same selector from several threads at once. */
#ifndef FERRY_BROKER_SELECTOR_H
#define FERRY_BROKER_SELECTOR_H

#include "common/record.h"

#include <stdbool.h>
#include <stddef.h>

#define FY_SELECTOR_MAX_LEN 65536u /* bytes of selector text */
#define FY_SELECTOR_MAX_DEPTH 64u  /* nested '(', NOT, unary '-' / '+' */

typedef struct fy_selector fy_selector;

/* Compiles the len bytes at expr (need not be NUL-terminated) into a selector. Empty or
 * all-blank text is no selector: it compiles to one that matches every message (JMS).
 * Returns NULL on an error in the text -- bad syntax, a type mismatch such as `a + 'x'`,
 * nesting deeper than FY_SELECTOR_MAX_DEPTH, text longer than FY_SELECTOR_MAX_LEN -- and then
 * writes a one-line reason to err (at most errlen bytes, NUL-terminated; err may be NULL),
 * e.g. "position 7: expected a value after '>'", and the 1-based position of the offending
 * character (counting UTF-8 characters) to *errpos (errpos may be NULL). On success err is
 * set to "" and *errpos to 0. Never crashes on any input. The broker aborts on OOM. */
fy_selector *fy_selector_compile(const char *expr, size_t len, char *err, size_t errlen,
                                 size_t *errpos);

/* True when msg matches s; a selector that evaluates to UNKNOWN (SQL NULL) or FALSE does not
 * match. Pure: no allocation, no global state; reads msg's tag and properties only. */
bool fy_selector_match(const fy_selector *s, const fy_record_view *msg);

/* Frees a selector. NULL-safe. */
void fy_selector_free(fy_selector *s);

#endif
