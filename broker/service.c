/* SPDX-License-Identifier: Apache-2.0 */
/* sd_notify by hand (a datagram to $NOTIFY_SOCKET) and the log reopen of a SIGHUP. */
#include "broker/service.h"

#include "common/log.h"

#include "ferry/errors.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void fy_service_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t len;
    int fd;
    if (!path || (path[0] != '/' && path[0] != '@')) {
        return;
    }
    len = strlen(path);
    if (len >= sizeof(sa.sun_path)) {
        return;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@') {
        sa.sun_path[0] = '\0'; /* the abstract namespace */
    }
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return;
    }
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
        fy_log(WARN, "ferryd", "errno=%d msg=\"cannot notify the service manager\"", errno);
    }
    close(fd);
}

void fy_service_reload(void)
{
    if (fy_log_reopen() != FY_OK) {
        fy_log(ERROR, "ferryd",
               "errno=%d msg=\"cannot reopen the log file; still writing to "
               "the old one\"",
               errno);
        return;
    }
    fy_log(INFO, "ferryd", "msg=\"log file reopened\"");
}
