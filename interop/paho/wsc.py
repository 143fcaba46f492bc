# SPDX-License-Identifier: Apache-2.0
# Helpers for the MQTT-over-WebSocket interop tests (imported, not run): a raw WebSocket client
# over a plain socket (RFC 6455, standard library only) for what real clients will not send: bad
# handshakes, text, unmasked or fragmented frames, several MQTT packets in one frame. Every wait
# has a deadline. Reads FERRY_MQTT_HOST / FERRY_WS_PORT (interop/run.py, `interop: ws`).
import base64
import hashlib
import os
import socket
import struct
import time

import mqttc
from mqttc import DEADLINE, check, eq

WS_PORT = int(os.environ.get("FERRY_WS_PORT", "0"))
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def request(path="/mqtt", protocol="mqtt", key=None, version="13", upgrade=True, method="GET",
            extra=()):
    """The bytes of a WebSocket upgrade request; None drops a header."""
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1:%d" % WS_PORT]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: " + version)
    if protocol is not None:
        lines.append("Sec-WebSocket-Protocol: " + protocol)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def http_exchange(data, timeout=DEADLINE):
    """Sends data to the WebSocket port; returns (status, headers dict (lower-case names), rest
    of the stream until the server closes it). Fails if the server does not close in time."""
    s = socket.create_connection((mqttc.HOST, WS_PORT), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            check(left > 0, "server did not close the connection within %.0fs (got %r)" %
                  (timeout, buf[:200]))
            s.settimeout(left)
            try:
                d = s.recv(65536)
            except ConnectionResetError:
                d = b""
            if not d:
                break
            buf += d
    finally:
        s.close()
    return parse_response(buf)


def http_exchange_upgrade(origin, timeout=DEADLINE):
    """Sends a proper upgrade request with this Origin; returns (status, headers, rest) as soon as
    the response head is in (an accepted WebSocket stays open), and closes."""
    s = socket.create_connection((mqttc.HOST, WS_PORT), timeout=timeout)
    try:
        s.sendall(request(key=new_key(), extra=["Origin: " + origin]))
        buf = b""
        end = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            left = end - time.monotonic()
            check(left > 0, "no response head within %.0fs" % timeout)
            s.settimeout(left)
            d = s.recv(65536)
            check(d, "closed before a response head: %r" % buf)
            buf += d
    finally:
        s.close()
    return parse_response(buf)


def parse_response(buf):
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    check(lines and lines[0].startswith("HTTP/1.1 "), "not an HTTP response: %r" % buf[:200])
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None):
    """One frame as a client sends it (masked unless mask=False); length overrides the length
    field (to announce more than is sent)."""
    n = len(payload) if length is None else length
    out = bytearray([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        out.append(mbit | n)
    elif n < 65536:
        out.append(mbit | 126)
        out += struct.pack("!H", n)
    else:
        out.append(mbit | 127)
        out += struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        out += key
        out += bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return bytes(out)


class Ws:
    """A raw WebSocket connection with subprotocol mqtt: frames out, frames and MQTT packets in."""

    def __init__(self, protocol="mqtt", version=4, path="/mqtt"):
        self.version = version
        self.sock = socket.create_connection((mqttc.HOST, WS_PORT), timeout=DEADLINE)
        key = new_key()
        self.sock.sendall(request(path=path, key=key, protocol=protocol))
        buf = b""
        end = time.monotonic() + DEADLINE
        while b"\r\n\r\n" not in buf:
            check(time.monotonic() < end, "no handshake response")
            d = self.sock.recv(4096)
            check(d, "connection closed during the handshake: %r" % buf)
            buf += d
        head, _, self.buf = buf.partition(b"\r\n\r\n")
        self.buf = bytearray(self.buf)
        status, self.headers, _ = parse_response(head + b"\r\n\r\n")
        eq(status, 101, "handshake status")
        eq(self.headers.get("sec-websocket-accept"), accept_for(key), "Sec-WebSocket-Accept")
        self.mqtt = bytearray()  # payload of binary frames not yet read as packets
        self.eof = False
        self.pongs = []
        self.close = None  # (code, reason) of the server's close frame

    def send(self, data):
        self.sock.sendall(data)

    def send_binary(self, payload):
        self.send(frame(BINARY, payload))

    def _fill(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.eof = True
        self.buf += d

    def read_frame(self, timeout=DEADLINE):
        """(fin, opcode, payload) of the next server frame, or None (end of stream or timeout).
        Server frames must not be masked."""
        end = time.monotonic() + timeout
        while True:
            b = self.buf
            if len(b) >= 2:
                check(not b[1] & 0x80, "a server frame is masked")
                n, i = b[1] & 0x7F, 2
                if n == 126 and len(b) >= 4:
                    n, i = struct.unpack("!H", bytes(b[2:4]))[0], 4
                elif n == 127 and len(b) >= 10:
                    n, i = struct.unpack("!Q", bytes(b[2:10]))[0], 10
                if n < 126 or i > 2:
                    if len(b) >= i + n:
                        f = (bool(b[0] & 0x80), b[0] & 0x0F, bytes(b[i:i + n]))
                        del b[:i + n]
                        return f
            if self.eof:
                return None
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def read(self, timeout=DEADLINE):
        """The next MQTT packet carried in binary frames (answering nothing), or None. Pongs and
        the close frame are recorded on the way."""
        end = time.monotonic() + timeout
        while True:
            if len(self.mqtt) >= 2:
                try:
                    ln, i = mqttc.dec_varint(self.mqtt, 1)
                    if len(self.mqtt) >= i + ln:
                        t, f = self.mqtt[0] >> 4, self.mqtt[0] & 15
                        body = bytes(self.mqtt[i:i + ln])
                        del self.mqtt[:i + ln]
                        return mqttc.Packet(t, f, body, self.version)
                except IndexError:
                    pass
            fr = self.read_frame(max(end - time.monotonic(), 0))
            if fr is None:
                return None
            fin, op, payload = fr
            if op in (BINARY, CONT):
                self.mqtt += payload
            elif op == PONG:
                self.pongs.append(payload)
            elif op == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close = (code, payload[2:].decode("utf-8", "replace"))
            else:
                raise mqttc.TestFailure("unexpected frame opcode %d from the server" % op)

    def expect(self, ptype, timeout=DEADLINE):
        p = self.read(timeout)
        check(p is not None and p.type == ptype, "want %s, got %r" %
              (mqttc.NAMES[ptype], p if p is not None else "nothing (eof=%s, close=%r)" %
               (self.eof, self.close)))
        return p

    def wait_closed(self, timeout=DEADLINE):
        """Reads until the server closes the TCP connection; returns (close frame (code,
        reason) or None, MQTT packets received meanwhile). Fails if it stays open."""
        got = []
        end = time.monotonic() + timeout
        while not self.eof:
            left = end - time.monotonic()
            check(left > 0, "server did not close the connection within %.0fs" % timeout)
            p = self.read(left)
            if p is not None:
                got.append(p)
        return self.close, got

    def connect(self, client_id, **kw):
        self.send_binary(mqttc.connect_packet(client_id, self.version, **kw))
        p = self.expect(mqttc.CONNACK)
        eq(p.reason, 0, "CONNACK reason")
        return p

    def close_sock(self):
        try:
            self.sock.close()
        except OSError:
            pass
