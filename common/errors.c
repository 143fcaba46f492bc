/* SPDX-License-Identifier: Apache-2.0 */
/* Names and texts of the FY_E* error codes. */
#include "ferry/errors.h"

#include <limits.h>

static const struct {
    const char *name;
    const char *text;
} errors[FY_ERROR_MAX_] = {
    [FY_OK] = {"OK", "success"},
    [FY_ENOMEM] = {"ENOMEM", "out of memory"},
    [FY_EINVAL] = {"EINVAL", "invalid argument"},
    [FY_EIO] = {"EIO", "I/O error in the store"},
    [FY_ENOSPC] = {"ENOSPC", "no space left on device"},
    [FY_ECORRUPT] = {"ECORRUPT", "stored data is corrupt"},
    [FY_ENOTFOUND] = {"ENOTFOUND", "not found"},
    [FY_EEXIST] = {"EEXIST", "already exists"},
    [FY_ELOCKED] = {"ELOCKED", "data directory is in use by another process"},
    [FY_ECANCELED] = {"ECANCELED", "operation cancelled"},
    [FY_ETOOBIG] = {"ETOOBIG", "too large"},
    [FY_EPROTO] = {"EPROTO", "protocol error"},
    [FY_ETIMEDOUT] = {"ETIMEDOUT", "timed out"},
    [FY_ECLOSED] = {"ECLOSED", "closed"},
    [FY_EAGAIN] = {"EAGAIN", "try again"},
    [FY_EPERM] = {"EPERM", "not authorized"},
    [FY_EBADNAME] = {"EBADNAME", "bad name"},
    [FY_ENOTSUP] = {"ENOTSUP", "not supported"},
    [FY_EUNHEALTHY] = {"EUNHEALTHY", "the store refuses writes after a failed write (disk full?)"},
    [FY_EVERSION] = {"EVERSION", "unsupported version"},
    [FY_EBUSY] = {"EBUSY", "in use"},
    [FY_ELIMIT] = {"ELIMIT", "a limit of the broker was reached"},
};

static int index_of(int err)
{
    if (err == INT_MIN) {
        return -1;
    }
    if (err < 0) {
        err = -err;
    }
    if (err >= FY_ERROR_MAX_ || !errors[err].name) {
        return -1;
    }
    return err;
}

const char *fy_strerror(int err)
{
    int i = index_of(err);
    return i < 0 ? "unknown error" : errors[i].text;
}

const char *fy_errname(int err)
{
    int i = index_of(err);
    return i < 0 ? "EUNKNOWN" : errors[i].name;
}
