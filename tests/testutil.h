/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the unit tests: temporary directories and source-tree paths. */
#ifndef FERRY_TESTS_TESTUTIL_H
#define FERRY_TESTS_TESTUTIL_H

#include <stddef.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) and returns its path (static storage per
 * call; copy it if you need several). Aborts the test program if it cannot. */
const char *fy_test_tmpdir(const char *tag);
/* Removes a directory tree (used at teardown). */
void fy_test_rmrf(const char *path);
/* Path of a file in the source tree, from $FERRY_SOURCE_DIR; written into buf. */
const char *fy_test_source_path(const char *rel, char *buf, size_t n);

#endif
