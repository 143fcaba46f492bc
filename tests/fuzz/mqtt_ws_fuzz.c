/* SPDX-License-Identifier: Apache-2.0 */
/* Stateful libFuzzer target for MQTT over WebSocket: each input is the byte stream of one client
 * connection on the WebSocket port (fed in pieces through a socketpair into a real adapter on a
 * real core and store), from the first byte of the HTTP upgrade request through the frames to
 * EOF: the handshake parser (ours), wslay's frame decoding and the MQTT connection above it.
 * Whatever it holds, the broker must not crash, leak or hang; sessions it leaves behind are ended
 * before the next input. The first byte of the input chooses how the rest is cut into writes.
 * The harness is mqtt_conn_fuzz.c's, accepting on the WebSocket side. */
#define FUZZ_MQTT_WS 1
#include "mqtt_conn_fuzz.c"
