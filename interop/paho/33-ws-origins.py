#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (MQTT over WebSocket options): with `ws_origins https://app.example
# http://localhost:8080` a handshake from a page of either origin is accepted and one from
# https://evil.example is refused with 403 (and logged); a client sending no Origin (not a
# browser) is accepted. With `ws_path *` any path is accepted (like mosquitto), and MQTT works
# over such a connection. With `connect_timeout 1s` a client trickling its request a byte every
# 0.2 s is cut off after about a second (an absolute deadline, not an idle timeout). With
# [limits] max_connections 1, a WebSocket client is counted with the TCP ones: while a TCP
# client is connected, a ws client's CONNECT gets CONNACK 3 (server unavailable); once it has
# gone, the ws client connects.
# interop: ferry-only, own-broker
import os
import socket
import sys
import time

import mqttc
import wsc
from mqttc import CONNACK, check, eq

sys.path.insert(0, os.environ["FERRY_INTEROP_DIR"])
import broker  # noqa: E402


def test():
    b = broker.Broker("ferryd", os.environ["FERRY_BROKER_BIN"], ws=True,
                      ws_conf="ws_path *\nws_origins https://app.example http://localhost:8080\n"
                      "connect_timeout 1s\n")
    try:
        b.start()
        wsc.WS_PORT = b.ws_port
        for origin in ("https://app.example", "http://localhost:8080"):
            status, headers, _ = wsc.http_exchange_upgrade(origin)
            eq(status, 101, "status for Origin " + origin)
        status, _, body = wsc.http_exchange(wsc.request(key=wsc.new_key(),
                                                        extra=["Origin: https://evil.example"]))
        eq(status, 403, "status for Origin https://evil.example")
        check(b"origin" in body, "the refusal says why: %r" % body)
        check('status=403 msg="handshake refused: origin not allowed"' in b.output(),
              "the refusal is logged")
        ws = wsc.Ws()  # no Origin, path /mqtt
        ws.connect("ws33-a")
        ws.close_sock()
        ws = wsc.Ws(path="/any/where?x=1")
        ws.send_binary(mqttc.connect_packet("ws33-b"))
        eq(ws.expect(CONNACK).reason, 0, "CONNACK over a WebSocket at another path")
        ws.close_sock()

        s = socket.create_connection((mqttc.HOST, b.ws_port), timeout=5)
        start, closed = time.monotonic(), False
        for ch in wsc.request(key=wsc.new_key()):
            try:
                s.sendall(bytes([ch]))
                s.settimeout(0.2)
                if s.recv(100) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
            if time.monotonic() - start > 5:
                break
        s.close()
        took = time.monotonic() - start
        check(closed and 0.8 < took < 3, "trickling client closed after ~1s (closed=%s, %.1fs)" %
              (closed, took))
        check("handshake not done within connect_timeout" in b.output(), "the cut is logged")
    finally:
        b.close()

    b = broker.Broker("ferryd", os.environ["FERRY_BROKER_BIN"], ws=True,
                      ws_conf="[limits]\nmax_connections 1\n")
    try:
        b.start()
        wsc.WS_PORT = b.ws_port
        mqttc.PORT = b.mqtt_port
        t = mqttc.Raw()
        t.connect("ws33-tcp")
        ws = wsc.Ws()
        ws.send_binary(mqttc.connect_packet("ws33-over"))
        eq(ws.expect(CONNACK).reason, 3, "CONNACK over max_connections, over ws")
        ws.wait_closed()
        ws.close_sock()
        t.close()
        end = time.monotonic() + 10
        while True:  # the TCP client's slot is freed once the broker saw it go
            ws = wsc.Ws()
            ws.send_binary(mqttc.connect_packet("ws33-in"))
            p = ws.expect(CONNACK)
            ws.close_sock()
            if p.reason == 0 or time.monotonic() > end:
                break
            time.sleep(0.1)
        eq(p.reason, 0, "ws CONNACK once the TCP client has gone")
    finally:
        b.close()


mqttc.main(test, own_broker=True)
