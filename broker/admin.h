/* SPDX-License-Identifier: Apache-2.0 */
/* The admin HTTP listener (libevent evhttp) on the loop: `GET /health` for now; the JSON admin
 * API, /metrics and the web console grow here. */
#ifndef FERRY_BROKER_ADMIN_H
#define FERRY_BROKER_ADMIN_H

#include "broker/broker.h"

#include <stdint.h>

/* Binds the admin listener on addr:port (port 0 picks a free port) and serves on b->base.
 * Returns FY_OK and *out, or -FY_EIO with a reason in err. */
int fy_admin_start(fy_broker *b, const char *addr, uint16_t port, fy_admin **out, char *err,
                   size_t errlen);
/* The port actually bound. */
uint16_t fy_admin_port(const fy_admin *a);
/* Stops listening and closes open admin connections. NULL-safe. */
void fy_admin_stop(fy_admin *a);

#endif
