#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (MQTT over WebSocket handshake): a proper upgrade gets 101 with the right
# Sec-WebSocket-Accept and subprotocol mqtt (chosen among several offered; mqttv3.1 for an old
# client). Refused with an HTTP status and the connection closed: no Upgrade (426), wrong or no
# subprotocol (400), a key that is not 16 bytes of base64 (400), version 8 (426, advertising 13),
# another path (404), POST (405), a header block over 8 KiB (431), garbage (400). The broker stays
# up: paho connects over ws and over TCP afterwards.
# interop: ferry-only, ws
import mqttc
import wsc
from mqttc import V311, check, eq


def refused(data, want, what):
    status, headers, body = wsc.http_exchange(data)
    eq(status, want, "status for " + what)
    check(body.strip(), "a refusal says why (%s)" % what)
    return headers


def test():
    check(wsc.WS_PORT, "FERRY_WS_PORT is set")
    for offered, chosen in (("mqtt", "mqtt"), ("chat, mqtt", "mqtt"), ("mqttv3.1", "mqttv3.1")):
        ws = wsc.Ws(protocol=offered)  # checks 101 and Sec-WebSocket-Accept
        eq(ws.headers.get("sec-websocket-protocol"), chosen, "subprotocol for %r" % offered)
        eq(ws.headers.get("upgrade", "").lower(), "websocket", "Upgrade header")
        ws.close_sock()
    # RFC 6455's own example key and accept value
    eq(wsc.accept_for("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC example")

    refused(wsc.request(key=wsc.new_key(), upgrade=False), 426, "no Upgrade")
    refused(wsc.request(key=wsc.new_key(), protocol="chat"), 400, "wrong subprotocol")
    refused(wsc.request(key=wsc.new_key(), protocol=None), 400, "no subprotocol")
    refused(wsc.request(key="abc"), 400, "short key")
    refused(wsc.request(key=None), 400, "no key")
    h = refused(wsc.request(key=wsc.new_key(), version="8"), 426, "version 8")
    eq(h.get("sec-websocket-version"), "13", "version advertised")
    refused(wsc.request(key=wsc.new_key(), path="/other"), 404, "another path")
    h = refused(wsc.request(key=wsc.new_key(), method="POST"), 405, "POST")
    eq(h.get("allow"), "GET", "Allow header")
    refused(wsc.request(key=wsc.new_key(), extra=["X-Pad: " + "a" * 9000]), 431, "huge header")
    refused(b"hello there\r\n\r\n", 400, "garbage")

    # still serving, over both transports
    c = mqttc.Client("ws31-after", V311, transport="websockets")
    saved, mqttc.PORT = mqttc.PORT, wsc.WS_PORT
    try:
        c.connect()
    finally:
        mqttc.PORT = saved
    c.disconnect()
    t = mqttc.Client("ws31-tcp", V311)
    t.connect()
    t.disconnect()


mqttc.main(test)
