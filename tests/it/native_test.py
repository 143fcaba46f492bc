#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Integration tests of ferryd's native protocol at the byte level (docs/protocol.md), with the
# small encoder of nativeproto.py, independent of libferry: handshake, send and
# responses, subscribe / credit / deliver / ack, and hostile input — a malformed or oversized
# frame closes only its own connection, with a log line, and the broker keeps serving others.
# Usage: native_test.py PATH_TO_FERRYD SOURCE_DIR
import os
import shutil
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferryd_test  # noqa: E402  (the Ferryd process helper)
from nativeproto import (  # noqa: E402  (the byte-level codec, shared with model_test.py)
    ACK, DELIVER, MSG_GET, PING, RESPONSE, SEND, SUBSCRIBE, TOPIC_CREATE, TOPIC_DESCRIBE, Conn,
    frame, parse_deliver, parse_topic_describe, record, s16)

DEADLINE_S = 10


class NativeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-native-")
        self.f = ferryd_test.Ferryd(os.path.join(self.tmp, "data"))
        self.f.wait_ready(component="native")
        self.port = self.f.ports["native"]
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.f.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def conn(self):
        c = Conn(self.port)
        self.conns.append(c)
        return c

    def test_hello_and_ping(self):
        c = self.conn()
        version, broker_id, max_frame = c.hello()
        self.assertEqual(version, 1)
        self.assertGreaterEqual(max_frame, 4 << 20)
        self.assertEqual(c.request(PING, 7)[0], 0)

    def test_request_before_hello_closes(self):
        c = self.conn()
        c.send(frame(PING, 1))
        self.assertIsNone(c.read_frame())

    def test_send_subscribe_deliver_ack(self):
        c = self.conn()
        c.hello()
        status, msg, _ = c.request(TOPIC_CREATE, 2, s16(b"orders") + struct.pack(">I", 2))
        self.assertEqual((status, msg), (0, ""))
        sub = (struct.pack(">I", 9) + s16(b"billing") + s16(b"orders") + s16(b"*") +
               struct.pack(">BBQIBB", 0, 1, 0, 100, 0, 0))
        self.assertEqual(c.request(SUBSCRIBE, 3, sub)[0], 0)
        payload = struct.pack(">H", 2)
        for body in (b"one", b"two"):
            rec = record(b"orders", body, keys=(b"k-" + body,))
            payload += s16(b"") + struct.pack(">I", len(rec)) + rec
        c.send(frame(SEND, 4, payload))
        got, result = [], None
        while result is None or len(got) < 2:
            t, _, rid, body = c.read_frame()
            if t == RESPONSE:
                self.assertEqual(rid, 4)
                self.assertEqual(struct.unpack(">H", body[:2])[0], 0)
                result = body[4:]
            else:
                self.assertEqual(t, DELIVER)
                sub_id, did, rec, deliver_msgid = parse_deliver(body)
                self.assertEqual(sub_id, 9)
                blen = struct.unpack(">I", rec[36:40])[0]
                got.append((did, rec[-blen:], deliver_msgid))
        self.assertEqual(sorted(b for _, b, _ in got), [b"one", b"two"])
        n = struct.unpack(">H", result[:2])[0]
        self.assertEqual(n, 2)
        queue0, off0, _ = struct.unpack(">IQQ", result[2:22])
        msgid = result[22:38].hex()
        # a delivery carries the same message id the producer got
        self.assertIn(msgid, [m for _, b, m in got if b == b"one"])
        # get by id: one read, the same record
        status, _, body = c.request(MSG_GET, 5, s16(msgid.encode()))
        self.assertEqual(status, 0)
        self.assertTrue(body.endswith(b"one"))
        ack = struct.pack(">IBH", 9, 0, 2) + b"".join(struct.pack(">Q", d) for d, _, _ in got)
        self.assertEqual(c.request(ACK, 6, ack)[0], 0)
        # describe shows both messages stored
        status, _, body = c.request(TOPIC_DESCRIBE, 7, s16(b"orders"))
        self.assertEqual(status, 0)

    def test_errors_are_responses_not_closes(self):
        c = self.conn()
        c.hello()
        status, msg, _ = c.request(TOPIC_DESCRIBE, 2, s16(b"nope"))
        self.assertEqual(status, 6)  # ENOTFOUND
        self.assertIn("no such topic", msg)
        status, msg, _ = c.request(TOPIC_CREATE, 3, s16(b"bad name") + struct.pack(">I", 1))
        self.assertEqual(status, 16)  # EBADNAME
        rec = record(b"big", b"x" * ((4 << 20) + 1))
        status, msg, _ = c.request(SEND, 4, struct.pack(">H", 1) + s16(b"") +
                                   struct.pack(">I", len(rec)) + rec)
        self.assertEqual(status, 10)  # ETOOBIG
        status, msg, _ = c.request(MSG_GET, 5, s16(b"zz"))
        self.assertEqual(status, 2)  # EINVAL
        self.assertEqual(c.request(PING, 6)[0], 0)  # still connected

    def test_malformed_frames_close_only_that_connection(self):
        good = self.conn()
        good.hello()
        cases = [
            frame(SEND, 2, b"\x00"),                           # truncated payload
            frame(0x7F, 3),                                    # unknown type
            struct.pack(">I", 3) + b"abc",                     # shorter than a header
            struct.pack(">I", 512 << 20) + b"\x20\x00",        # larger than max_frame
            frame(SUBSCRIBE, 4, struct.pack(">I", 1) + s16(b"g") + s16(b"t") + s16(b"") +
                  struct.pack(">BBQIBB", 7, 0, 0, 0, 0, 0)),   # bad mode
        ]
        for data in cases:
            bad = self.conn()
            bad.hello()
            bad.send(data)
            self.assertIsNone(bad.read_frame(), data[:12])
            self.assertEqual(good.request(PING, 9)[0], 0)
        deadline = time.monotonic() + DEADLINE_S
        while self.f.output().count("msg=\"closing:") < len(cases):
            self.assertLess(time.monotonic(), deadline, self.f.output())
            time.sleep(0.05)


class RetentionTest(unittest.TestCase):
    """Retention through a real ferryd: old messages go, /health counts them."""

    def test_old_messages_are_deleted_in_the_background(self):
        tmp = tempfile.mkdtemp(prefix="ferry-retention-")
        conf = os.path.join(tmp, "ferry.conf")
        with open(conf, "w") as f:
            f.write("retention 500ms\nretention_interval 100ms\n")
        ferryd = ferryd_test.Ferryd(os.path.join(tmp, "data"), conf=conf)
        try:
            ferryd.wait_ready(component="native")
            c = Conn(ferryd.ports["native"])
            c.hello()
            self.assertEqual(c.request(TOPIC_CREATE, 2, s16(b"logs") + struct.pack(">I", 1))[0], 0)
            payload = struct.pack(">H", 20) + b"".join(
                s16(b"") + struct.pack(">I", len(r)) + r
                for r in [record(b"logs", b"line", keys=(b"k",)) for _ in range(20)])
            self.assertEqual(c.request(SEND, 3, payload)[0], 0)
            deadline = time.monotonic() + DEADLINE_S
            while True:
                status, _, body = c.request(TOPIC_DESCRIBE, 4, s16(b"logs"))
                self.assertEqual(status, 0)
                ranges = parse_topic_describe(body)[2]
                if ranges[0] == (20, 20):
                    break
                self.assertLess(time.monotonic(), deadline, ranges)
                time.sleep(0.05)
            health = ferryd.get("/health")[1]
            self.assertEqual(health["core"]["retention_deleted"], 20)
            c.close()
        finally:
            ferryd.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ferryd_test.FERRYD = os.path.abspath(sys.argv[1])
    ferryd_test.SOURCE = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"])
