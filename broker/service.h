/* SPDX-License-Identifier: Apache-2.0 */
/* Running ferryd as a service: readiness notification to systemd (Type=notify) and the
 * operations part of a SIGHUP reload (reopening the log file after rotation). */
#ifndef FERRY_BROKER_SERVICE_H
#define FERRY_BROKER_SERVICE_H

/* Sends state ("READY=1", "STOPPING=1", "RELOADING=1", "STATUS=...") to the service manager: one
 * datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace), the protocol of sd_notify(3) without libsystemd. Does nothing when the variable is
 * unset; errors are ignored, as sd_notify's callers do. */
void fy_service_notify(const char *state);

/* The operations steps of a SIGHUP: reopens the log file (logrotate renamed it). Logs what it
 * did. Loop thread. */
void fy_service_reload(void);

#endif
