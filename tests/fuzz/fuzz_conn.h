/* SPDX-License-Identifier: Apache-2.0 */
/* What the stateful connection targets (mqtt_conn, mqtt_ws, amqp_conn) share: pumping the loop,
 * and playing one input as a client's byte stream. Header-only: each target is one file. */
#ifndef FERRY_TESTS_FUZZ_CONN_H
#define FERRY_TESTS_FUZZ_CONN_H

#include <event2/event.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

/* Runs `rounds` non-blocking passes of the loop. */
static inline void fuzz_run_loop(struct event_base *base, int rounds)
{
    for (int i = 0; i < rounds; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
}

/* Plays data[1..size) into client, the peer end of a socketpair whose other end the adapter
 * accepted, in pieces of data[0] % 64 + 1 bytes (0x3f: 64), pumping the loop and draining what
 * the broker answers after each; then EOF, and the socket is closed. */
static inline void fuzz_play(struct event_base *base, int client, const uint8_t *data, size_t size)
{
    size_t piece = size > 0 ? (size_t)data[0] % 64 + 1 : 1, off = 1;
    char sink[4096];
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        if (write(client, data + off, n) < 0) {
            break;
        }
        off += n;
        fuzz_run_loop(base, 2);
        while (read(client, sink, sizeof(sink)) > 0) {
        }
    }
    shutdown(client, SHUT_WR);
    fuzz_run_loop(base, 20);
    while (read(client, sink, sizeof(sink)) > 0) {
    }
    close(client);
    fuzz_run_loop(base, 20);
}

#endif
