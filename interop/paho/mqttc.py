# SPDX-License-Identifier: Apache-2.0
# Helpers for the paho interop tests (imported, not run): a paho client wrapper whose every wait has
# a deadline, and a raw MQTT client over a plain socket for what paho will not send (bad packets,
# chosen packet ids, withheld acks). Reads FERRY_MQTT_HOST / FERRY_MQTT_PORT (interop/run.py).
import os
import socket
import struct
import sys
import threading
import time

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes  # noqa: F401 (for the tests)
    from paho.mqtt.properties import Properties
except ImportError:
    print("SKIP: paho-mqtt is not installed for /usr/bin/python3 (apt-get install python3-paho-mqtt)")
    sys.exit(77)

HOST = os.environ.get("FERRY_MQTT_HOST", "127.0.0.1")
PORT = int(os.environ.get("FERRY_MQTT_PORT", "0"))
KIND = os.environ.get("FERRY_BROKER_KIND", "")
DEADLINE = 10.0  # seconds, for every wait
QUIET = 0.5  # seconds a negative check ("nothing more arrives") listens for
PREFIX = "it%d" % os.getpid()  # keeps this run's topics apart

V31, V311, V5 = mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5


def mosquitto_deviates(what):
    """True when the broker is mosquitto, which deviates from the spec on `what` (noted in the
    test): the test then skips that one assertion, which stays in force for ferryd."""
    if KIND == "mosquitto":
        print("NOTE: mosquitto 2.0.11 deviates from the spec here, assertion skipped: %s" % what)
        return True
    return False


class TestFailure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise TestFailure(what)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def wait_until(pred, what, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.01)
    raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))


def props(packet_type, **kw):
    """Properties(PacketTypes.X) with attributes set: props(PacketTypes.PUBLISH, ContentType=...)."""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class Msg:
    def __init__(self, m):
        self.topic = m.topic
        self.payload = m.payload
        self.qos = m.qos
        self.retain = bool(m.retain)
        self.mid = m.mid
        self.dup = bool(m.dup)
        self.props = getattr(m, "properties", None)

    def prop(self, name, default=None):
        return getattr(self.props, name, default) if self.props is not None else default

    def __repr__(self):
        return "Msg(%s, %r, q%d%s)" % (self.topic, self.payload, self.qos, ", r" if self.retain else "")


class Client:
    """A paho client on its own network thread; events are recorded and waited for with deadlines.

    Client(id, V5) then .connect(...). Received messages are in .messages (Msg)."""

    _all = []

    def __init__(self, client_id="", protocol=V311, clean_session=None, **kw):
        self.protocol = protocol
        if protocol != V5 and clean_session is None:
            clean_session = True
        self.c = mqtt.Client(client_id=client_id, protocol=protocol,
                             clean_session=None if protocol == V5 else clean_session, **kw)
        self.lock = threading.Condition()
        self.messages = []
        self.connack = None  # (flags, rc, properties)
        self.disconnected = None  # rc once disconnected
        self.subacks = {}
        self.unsubacks = {}
        self.published = set()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.started = False
        Client._all.append(self)

    # callbacks (network thread)
    def _on_connect(self, c, u, flags, rc, properties=None):
        with self.lock:
            self.connack = (flags, rc, properties)
            self.disconnected = None
            self.lock.notify_all()

    def _on_disconnect(self, c, u, rc, properties=None):
        with self.lock:
            self.disconnected = rc
            self.lock.notify_all()

    def _on_message(self, c, u, m):
        with self.lock:
            self.messages.append(Msg(m))
            self.lock.notify_all()

    def _on_subscribe(self, c, u, mid, granted, properties=None):
        with self.lock:
            self.subacks[mid] = granted
            self.lock.notify_all()

    def _on_unsubscribe(self, c, u, mid, properties=None, reasons=None):
        with self.lock:
            self.unsubacks[mid] = reasons
            self.lock.notify_all()

    def _on_publish(self, c, u, mid):
        with self.lock:
            self.published.add(mid)
            self.lock.notify_all()

    def _wait(self, pred, what, timeout=DEADLINE):
        end = time.monotonic() + timeout
        with self.lock:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    raise TestFailure("%s: timed out after %.1fs waiting for %s" %
                                      (self.c._client_id.decode(), timeout, what))
                self.lock.wait(left)

    # actions
    def connect(self, keepalive=60, clean_start=None, properties=None, expect_rc=0, will=None):
        """Connects and waits for CONNACK; returns (flags, rc, properties). will=(topic, payload,
        qos, retain[, properties])."""
        if will:
            self.c.will_set(*will)
        kw = {}
        if self.protocol == V5:
            kw["clean_start"] = True if clean_start is None else clean_start
            kw["properties"] = properties
        with self.lock:
            self.connack = None
        self.c.connect(HOST, PORT, keepalive, **kw)
        if not self.started:
            self.c.loop_start()
            self.started = True
        self._wait(lambda: self.connack is not None or self.disconnected is not None, "CONNACK")
        check(self.connack is not None, "connection closed before CONNACK")
        if expect_rc is not None:
            rc = self.connack[1]
            rc = rc.value if hasattr(rc, "value") else rc
            eq(rc, expect_rc, "CONNACK reason")
        return self.connack

    def subscribe(self, topic, qos=0, options=None, properties=None):
        """Subscribes and waits for SUBACK; returns the granted QoS / reason codes (a list)."""
        if options is not None:
            rc, mid = self.c.subscribe(topic, options=options, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos, properties=properties)
        eq(rc, mqtt.MQTT_ERR_SUCCESS, "subscribe(%r) call" % (topic,))
        self._wait(lambda: mid in self.subacks, "SUBACK %d" % mid)
        return [g.value if hasattr(g, "value") else g for g in self.subacks[mid]]

    def unsubscribe(self, topic, properties=None):
        rc, mid = self.c.unsubscribe(topic, properties=properties)
        eq(rc, mqtt.MQTT_ERR_SUCCESS, "unsubscribe call")
        self._wait(lambda: mid in self.unsubacks, "UNSUBACK %d" % mid)
        r = self.unsubacks[mid]
        if r is None:
            return None
        r = r if isinstance(r, list) else [r]
        return [x.value if hasattr(x, "value") else x for x in r]

    def publish(self, topic, payload, qos=0, retain=False, properties=None, wait=True):
        """Publishes; with wait (QoS > 0) waits for the PUBACK / PUBCOMP."""
        info = self.c.publish(topic, payload, qos, retain, properties)
        eq(info.rc, mqtt.MQTT_ERR_SUCCESS, "publish(%r) call" % (topic,))
        if wait and qos > 0:
            self._wait(lambda: info.mid in self.published, "ack of publish %d" % info.mid)
        return info.mid

    def wait_messages(self, n, what=None, timeout=DEADLINE):
        """Waits until at least n messages were received; returns a copy of them all."""
        self._wait(lambda: len(self.messages) >= n, what or "%d message(s)" % n, timeout)
        with self.lock:
            return list(self.messages)

    def expect_no_more(self, n, what="no further message", wait=True):
        """Negative check: after QUIET seconds (none with wait=False: the caller already waited),
        still exactly n messages."""
        end = time.monotonic() + (QUIET if wait else 0)
        while time.monotonic() < end:
            time.sleep(0.02)
        with self.lock:
            got = list(self.messages)
        if len(got) != n:
            raise TestFailure("%s: want %d message(s), got %d: %r" % (what, n, len(got), got))

    def settle(self):
        """Waits QUIET seconds for stragglers, then takes every message received so far."""
        end = time.monotonic() + QUIET
        while time.monotonic() < end:
            time.sleep(0.02)
        return self.take()

    def wait_disconnected(self, what="disconnection", timeout=DEADLINE):
        self._wait(lambda: self.disconnected is not None, what, timeout)
        return self.disconnected

    def take(self):
        with self.lock:
            m, self.messages = self.messages, []
            return m

    def disconnect(self):
        if self.connack is not None and self.disconnected is None:
            self.c.disconnect()
            try:
                self._wait(lambda: self.disconnected is not None, "disconnect", 5)
            except TestFailure:
                pass
        self.stop()

    def stop(self):
        if self.started:
            self.c.loop_stop()
            self.started = False
        try:
            self.c.socket() and self.c.socket().close()
        except Exception:
            pass

    @classmethod
    def stop_all(cls):
        for c in cls._all:
            try:
                c.stop()
            except Exception:
                pass


# ---- raw MQTT over a socket ------------------------------------------------------------------

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)
NAMES = {1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
         7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
         12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH"}

# property id -> kind
PROP_KINDS = {0x01: "b", 0x02: "i", 0x03: "s", 0x08: "s", 0x09: "d", 0x0B: "v", 0x11: "i",
              0x12: "s", 0x13: "h", 0x15: "s", 0x16: "d", 0x17: "b", 0x18: "i", 0x19: "b",
              0x1A: "s", 0x1C: "s", 0x1F: "s", 0x21: "h", 0x22: "h", 0x23: "h", 0x24: "b",
              0x25: "b", 0x26: "p", 0x27: "i", 0x28: "b", 0x29: "b", 0x2A: "b"}


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def s16(b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return struct.pack("!H", len(b)) + b


def enc_props(plist):
    """plist: [(id, value)], value per PROP_KINDS (user property: (k, v))."""
    out = bytearray()
    for pid, v in plist:
        kind = PROP_KINDS[pid]
        out += varint(pid)
        if kind == "b":
            out += bytes([v])
        elif kind == "h":
            out += struct.pack("!H", v)
        elif kind == "i":
            out += struct.pack("!I", v)
        elif kind == "v":
            out += varint(v)
        elif kind in "sd":
            out += s16(v)
        elif kind == "p":
            out += s16(v[0]) + s16(v[1])
    return varint(len(out)) + bytes(out)


def dec_varint(buf, i):
    mult, val = 1, 0
    for k in range(4):
        b = buf[i + k]
        val += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return val, i + k + 1
    raise TestFailure("bad variable byte integer from the broker")


def dec_props(buf, i):
    n, i = dec_varint(buf, i)
    end = i + n
    out = []
    while i < end:
        pid, i = dec_varint(buf, i)
        kind = PROP_KINDS.get(pid)
        if kind == "b":
            v = buf[i]
            i += 1
        elif kind == "h":
            v = struct.unpack_from("!H", buf, i)[0]
            i += 2
        elif kind == "i":
            v = struct.unpack_from("!I", buf, i)[0]
            i += 4
        elif kind == "v":
            v, i = dec_varint(buf, i)
        elif kind in ("s", "d"):
            ln = struct.unpack_from("!H", buf, i)[0]
            v = bytes(buf[i + 2:i + 2 + ln])
            i += 2 + ln
            if kind == "s":
                v = v.decode("utf-8")
        elif kind == "p":
            ln = struct.unpack_from("!H", buf, i)[0]
            k = bytes(buf[i + 2:i + 2 + ln]).decode()
            i += 2 + ln
            ln = struct.unpack_from("!H", buf, i)[0]
            v = (k, bytes(buf[i + 2:i + 2 + ln]).decode())
            i += 2 + ln
        else:
            raise TestFailure("unknown property 0x%02x from the broker" % pid)
        out.append((pid, v))
    return out, end


def packet(ptype, flags, body):
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


def connect_packet(client_id, version=4, clean=True, keepalive=60, props=None, will=None,
                   username=None, password=None):
    """will = (topic, payload, qos, retain[, will_props])"""
    name = b"MQIsdp" if version == 3 else b"MQTT"
    flags = 0x02 if clean else 0
    payload = s16(client_id)
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
        if version == 5:
            payload += enc_props(will[4] if len(will) > 4 else [])
        payload += s16(will[0]) + s16(will[1])
    if username is not None:
        flags |= 0x80
        payload += s16(username)
    if password is not None:
        flags |= 0x40
        payload += s16(password)
    vh = s16(name) + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        vh += enc_props(props or [])
    return packet(CONNECT, 0, vh + payload)


def publish_packet(topic, payload, qos=0, pid=None, retain=False, dup=False, version=4, props=None):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = s16(topic) if not isinstance(topic, bytes) else struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", pid)
    if version == 5:
        body += enc_props(props or [])
    if isinstance(payload, str):
        payload = payload.encode()
    return packet(PUBLISH, flags, body + payload)


def subscribe_packet(pid, filters, version=4, props=None):
    """filters: [(filter, options_byte)]"""
    body = struct.pack("!H", pid)
    if version == 5:
        body += enc_props(props or [])
    for f, o in filters:
        body += s16(f) + bytes([o])
    return packet(SUBSCRIBE, 2, body)


def ack_packet(ptype, pid, reason=None, version=4):
    body = struct.pack("!H", pid)
    if version == 5 and reason is not None:
        body += bytes([reason])
    return packet(ptype, 2 if ptype == PUBREL else 0, body)


class Packet:
    def __init__(self, ptype, flags, body, version):
        self.type, self.flags, self.body = ptype, flags, body
        self.props = []
        self.reason = None
        self.pid = None
        if ptype == PUBLISH:
            self.qos = (flags >> 1) & 3
            self.dup = bool(flags & 8)
            self.retain = bool(flags & 1)
            ln = struct.unpack_from("!H", body, 0)[0]
            self.topic = bytes(body[2:2 + ln]).decode("utf-8")
            i = 2 + ln
            if self.qos:
                self.pid = struct.unpack_from("!H", body, i)[0]
                i += 2
            if version == 5:
                self.props, i = dec_props(body, i)
            self.payload = bytes(body[i:])
        elif ptype == CONNACK:
            self.session_present = bool(body[0] & 1)
            self.reason = body[1]
            if version == 5 and len(body) > 2:
                self.props, _ = dec_props(body, 2)
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, SUBACK):
            self.pid = struct.unpack_from("!H", body, 0)[0]
            i = 2
            if ptype in (SUBACK, UNSUBACK):
                if version == 5:
                    self.props, i = dec_props(body, i)
                self.reasons = list(body[i:])
            else:
                self.reason = body[2] if len(body) > 2 else 0
                if version == 5 and len(body) > 3:
                    self.props, _ = dec_props(body, 3)
        elif ptype == DISCONNECT:
            self.reason = body[0] if body else 0
            if len(body) > 1:
                self.props, _ = dec_props(body, 1)

    def prop(self, pid, default=None):
        for k, v in self.props:
            if k == pid:
                return v
        return default

    def props_all(self, pid):
        return [v for k, v in self.props if k == pid]

    def __repr__(self):
        extra = ""
        if self.type == PUBLISH:
            extra = " %s q%d pid=%s dup=%d r=%d %r" % (self.topic, self.qos, self.pid, self.dup,
                                                       self.retain, self.payload[:40])
        elif self.pid is not None:
            extra = " pid=%d" % self.pid
        if self.reason is not None:
            extra += " reason=0x%02x" % self.reason
        if self.props:
            extra += " props=%r" % (self.props,)
        return "<%s%s>" % (NAMES.get(self.type, self.type), extra)


class Raw:
    """A raw MQTT connection: send bytes, read whole packets with a deadline."""

    def __init__(self, version=4):
        self.version = version
        self.sock = socket.create_connection((HOST, PORT), timeout=DEADLINE)
        self.buf = bytearray()
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def connect(self, client_id, clean=True, keepalive=60, props=None, will=None, expect=0):
        self.send(connect_packet(client_id, self.version, clean, keepalive, props, will))
        p = self.read(timeout=DEADLINE)
        check(p is not None and p.type == CONNACK, "want CONNACK, got %r" % (p,))
        if expect is not None:
            eq(p.reason, expect, "CONNACK reason")
        return p

    def _fill(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read(self, timeout=DEADLINE):
        """The next packet, or None at end of stream or when nothing arrives within timeout."""
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 2:
                try:
                    ln, i = dec_varint(self.buf, 1)
                    if len(self.buf) >= i + ln:
                        t, f = self.buf[0] >> 4, self.buf[0] & 15
                        body = bytes(self.buf[i:i + ln])
                        del self.buf[:i + ln]
                        return Packet(t, f, body, self.version)
                except IndexError:
                    pass
            if self.eof:
                return None
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def expect(self, ptype, timeout=DEADLINE):
        p = self.read(timeout)
        check(p is not None and p.type == ptype,
              "want %s, got %r" % (NAMES[ptype], p if p is not None else "nothing (eof=%s)" % self.eof))
        return p

    def read_until_closed(self, timeout=DEADLINE):
        """Reads until the broker closes the connection; returns the packets it sent meanwhile.
        Fails if it is still open after timeout."""
        got = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = self.read(end - time.monotonic())
            if p is None:
                if self.eof:
                    return got
                continue
            got.append(p)
        raise TestFailure("connection still open after %.1fs (got %r)" % (timeout, got))

    def subscribe(self, pid, filters, props=None):
        self.send(subscribe_packet(pid, filters, self.version, props))
        p = self.expect(SUBACK)
        eq(p.pid, pid, "SUBACK packet id")
        return p.reasons

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def main(test, own_broker=False):
    """Runs test() and turns the outcome into an exit code; stops every paho client. An own_broker
    test sets mqttc.PORT itself once its broker runs."""
    if not PORT and not own_broker:
        print("FERRY_MQTT_PORT is not set: run through interop/run.py", file=sys.stderr)
        sys.exit(2)
    start = time.monotonic()
    rc = 0
    try:
        test()
        print("ok (%.1fs)" % (time.monotonic() - start))
    except TestFailure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        rc = 1
    except Exception:
        import traceback
        traceback.print_exc()
        rc = 1
    finally:
        Client.stop_all()
    sys.exit(rc)
