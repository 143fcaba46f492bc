# SPDX-License-Identifier: Apache-2.0
# A byte-level client of ferryd's native protocol for the integration tests, written from
# docs/protocol.md and independent of libferry: frame and record encoders, payload decoders, and
# a blocking connection for request / response exchanges.
import socket
import struct
import time

DEADLINE_S = 10

HELLO, PING = 0x01, 0x02
TOPIC_CREATE, TOPIC_DELETE, TOPIC_LIST, TOPIC_DESCRIBE = 0x10, 0x11, 0x12, 0x13
SEND = 0x20
SUBSCRIBE, CREDIT, ACK, NACK, UNSUBSCRIBE = 0x30, 0x31, 0x32, 0x33, 0x34
MSG_GET = 0x40
GROUP_LIST, GROUP_DESCRIBE, GROUP_RESET = 0x50, 0x51, 0x52
RESPONSE, DELIVER, SUB_CLOSED = 0x80, 0x81, 0x82
NOREPLY = 0x01
CLUSTERING, BROADCAST = 0, 1
START_LAST, START_FIRST, START_TIME = 0, 1, 2
RECORD_HEADER = struct.Struct(">BBHIQQQII")  # magic .. body length: 40 bytes
FRAME_HEADER = struct.Struct(">IBBI")


def s16(b):
    return struct.pack(">H", len(b)) + b


def record(topic, body, tag=b"", keys=(), props=()):
    head = struct.pack(">BBHIQQQII", 0xF7, 1, 0, 0, 0, int(time.time() * 1000), 0, 0, len(body))
    out = head + s16(topic) + s16(tag) + s16(b"it")
    out += struct.pack(">H", len(keys)) + b"".join(s16(k) for k in keys)
    out += struct.pack(">H", len(props))
    for k, v in props:
        out += s16(k) + struct.pack(">I", len(v)) + v
    return out + body


def frame(ftype, rid, payload=b"", flags=0):
    return struct.pack(">IBBI", 6 + len(payload), ftype, flags, rid) + payload


# ---- Request payloads ------------------------------------------------------------------------


def send_payload(msgs):
    """SEND payload of [(sharding_key, record), ...]."""
    return struct.pack(">H", len(msgs)) + b"".join(
        s16(k) + struct.pack(">I", len(r)) + r for k, r in msgs)


def subscribe_payload(sub_id, group, topic, mode, start, credit, filt=b"*", start_ms=0,
                      filter_type=0, flags=0):
    return (struct.pack(">I", sub_id) + s16(group) + s16(topic) + s16(filt) +
            struct.pack(">BBQIBB", mode, start, start_ms, credit, filter_type, flags))


def credit_payload(sub_id, n):
    return struct.pack(">II", sub_id, n)


def ack_payload(sub_id, delivery_ids):
    return struct.pack(">IBH%dQ" % len(delivery_ids), sub_id, 0, len(delivery_ids),
                       *delivery_ids)


# ---- Answer and push decoders ------------------------------------------------------------------


def parse_response(payload):
    """RESPONSE payload -> (status, message, body)."""
    status, mlen = struct.unpack_from(">HH", payload)
    return status, bytes(payload[4:4 + mlen]).decode(), payload[4 + mlen:]


def parse_send_results(body):
    """SEND answer body -> [(queue_id, offset, store_ms, msgid hex), ...]."""
    n = struct.unpack_from(">H", body)[0]
    assert len(body) == 2 + 36 * n, (n, len(body))
    out = []
    for i in range(n):
        q, off, ms = struct.unpack_from(">IQQ", body, 2 + 36 * i)
        out.append((q, off, ms, bytes(body[22 + 36 * i:38 + 36 * i]).hex()))
    return out


def parse_deliver(payload):
    """DELIVER payload -> (sub_id, delivery_id, record bytes, message id as hex)."""
    sub_id, did = struct.unpack_from(">IQ", payload)
    msgid = bytes(payload[12:28]).hex()
    rlen = struct.unpack_from(">I", payload, 28)[0]
    assert len(payload) == 32 + rlen, (rlen, len(payload))
    return sub_id, did, payload[32:], msgid


def parse_record(rec):
    """Record -> (queue_id, offset, store_ms, reconsume, body)."""
    magic, _, _, q, off, _, store_ms, reconsume, blen = RECORD_HEADER.unpack_from(rec)
    assert magic == 0xF7, magic
    return q, off, store_ms, reconsume, bytes(rec[len(rec) - blen:])


def _str(b, pos):
    n = struct.unpack_from(">H", b, pos)[0]
    return bytes(b[pos + 2:pos + 2 + n]).decode(), pos + 2 + n


def parse_topic_describe(body):
    """TOPIC_DESCRIBE answer -> (name, topic_id, [(min_offset, max_offset) per queue])."""
    name, pos = _str(body, 0)
    tid, nq = struct.unpack_from(">II", body, pos)
    pos += 8
    ranges = [struct.unpack_from(">QQ", body, pos + 16 * i) for i in range(nq)]
    return name, tid, ranges


def parse_group_describe(body):
    """GROUP_DESCRIBE answer -> (name, mode, members, queues); members are dicts (member_id,
    client_id, topic, filter, credit, inflight), queues dicts (topic, queue_id, committed,
    max_offset, owner)."""
    name, pos = _str(body, 0)
    mode, nm = struct.unpack_from(">BI", body, pos)
    pos += 5
    members = []
    for _ in range(nm):
        mid = struct.unpack_from(">I", body, pos)[0]
        client, pos = _str(body, pos + 4)
        topic, pos = _str(body, pos)
        filt, pos = _str(body, pos)
        credit, inflight = struct.unpack_from(">II", body, pos)
        pos += 8
        members.append(dict(member_id=mid, client_id=client, topic=topic, filter=filt,
                            credit=credit, inflight=inflight))
    nq = struct.unpack_from(">I", body, pos)[0]
    pos += 4
    queues = []
    for _ in range(nq):
        topic, pos = _str(body, pos)
        qid, committed, max_offset, owner = struct.unpack_from(">IQQI", body, pos)
        pos += 24
        queues.append(dict(topic=topic, queue_id=qid, committed=committed, max_offset=max_offset,
                           owner=owner))
    assert pos == len(body), (pos, len(body))
    return name, mode, members, queues


# ---- A blocking connection -------------------------------------------------------------------


class Conn:
    def __init__(self, port, timeout=DEADLINE_S):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_frame(self):
        """Returns (type, flags, id, payload), or None when the broker closed the connection."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    f = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    t, fl, rid = struct.unpack(">BBI", f[:6])
                    return t, fl, rid, f[6:]
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def request(self, ftype, rid, payload=b""):
        self.send(frame(ftype, rid, payload))
        f = self.read_frame()
        assert f is not None, "connection closed"
        t, _, got_id, body = f
        assert t == RESPONSE and got_id == rid, (t, got_id)
        return parse_response(body)

    def hello(self, client_id=b"py"):
        status, _, body = self.request(HELLO, 1, struct.pack(">H", 1) + s16(client_id) + s16(b"it"))
        assert status == 0
        return struct.unpack(">HHI", body[:8])

    def close(self):
        self.sock.close()
