/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes shared by ferryd, libferry and the tools. Functions return FY_OK (0) or a
 * negative FY_E* code; fy_strerror() names it. The numbers are part of the native wire
 * protocol: never renumber, only append. */
#ifndef FERRY_ERRORS_H
#define FERRY_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. Returned negated (-FY_EINVAL); FY_OK is success. */
enum fy_error {
    FY_OK = 0,
    FY_ENOMEM = 1,      /**< out of memory */
    FY_EINVAL = 2,      /**< invalid argument or value */
    FY_EIO = 3,         /**< I/O error in the store */
    FY_ENOSPC = 4,      /**< no space left on the device */
    FY_ECORRUPT = 5,    /**< stored data is corrupt */
    FY_ENOTFOUND = 6,   /**< no such topic, group, message or key */
    FY_EEXIST = 7,      /**< already exists */
    FY_ELOCKED = 8,     /**< the data directory is in use by another process */
    FY_ECANCELED = 9,   /**< the operation was cancelled (shutdown) */
    FY_ETOOBIG = 10,    /**< message or frame larger than allowed */
    FY_EPROTO = 11,     /**< protocol violation or malformed input */
    FY_ETIMEDOUT = 12,  /**< the operation timed out */
    FY_ECLOSED = 13,    /**< the connection or object is closed */
    FY_EAGAIN = 14,     /**< try again later */
    FY_EPERM = 15,      /**< not authorized */
    FY_EBADNAME = 16,   /**< a topic or group name breaks the naming rules */
    FY_ENOTSUP = 17,    /**< not supported */
    FY_EUNHEALTHY = 18, /**< the store refuses writes after an earlier failure */
    FY_EVERSION = 19,   /**< unsupported format or protocol version */
    FY_EBUSY = 20,      /**< in use (a group with members online) */
    FY_ELIMIT = 21,     /**< a limit of the broker was reached (max_connections, ...) */
    FY_ERROR_MAX_ = 22
};

/** Human-readable text for an error code (positive or negative). Never NULL. */
const char *fy_strerror(int err);

/** Short stable name of an error code, e.g. "ENOSPC" (positive or negative). Never NULL. */
const char *fy_errname(int err);

#ifdef __cplusplus
}
#endif

#endif
