#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Acceptance tests of the broker's model (broker/core.h) over the native protocol, against a real
# ferryd: clustering delivery exactly once and in sharding-key order at volume, broadcast, members
# leaving and joining mid-stream, SIGKILL under flush=sync, and an offline backlog that is read
# from the store rather than held in memory. Many connections are driven by one selector loop.
# Usage: model_test.py PATH_TO_FERRYD SOURCE_DIR [ModelTest.test_NAME ...]
import collections
import os
import selectors
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferryd_test  # noqa: E402  (the Ferryd process helper)
from nativeproto import (  # noqa: E402  (the byte-level codec)
    ACK, BROADCAST, CLUSTERING, CREDIT, DELIVER, FRAME_HEADER, GROUP_DESCRIBE, MSG_GET, NOREPLY,
    PING, RESPONSE, SEND, START_FIRST, SUB_CLOSED, SUBSCRIBE, TOPIC_CREATE, TOPIC_DESCRIBE, Conn,
    ack_payload, credit_payload, frame, parse_deliver, parse_group_describe, parse_record,
    parse_response, parse_send_results, parse_topic_describe, record, s16, send_payload,
    subscribe_payload)

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def sanitized(path):
    """True when ferryd was built with FERRY_SANITIZE (its binary carries the ASan runtime)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def say(fmt, *args):
    sys.stderr.write("    " + (fmt % args) + "\n")
    sys.stderr.flush()


# ---- A selector loop driving many non-blocking connections ------------------------------------


class Loop:
    """Runs peers until a condition holds, failing at a deadline or when a connection is lost
    that was not expected to be."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.peers = []
        self.error = None

    def add(self, peer):
        self.peers.append(peer)
        self.sel.register(peer.sock, selectors.EVENT_READ, peer)

    def fail(self, why):
        if self.error is None:
            self.error = why

    def run(self, until, timeout, what):
        """Pumps every peer until until() is true; what() describes the state on failure."""
        deadline = time.monotonic() + timeout
        while True:
            for p in list(self.peers):
                if not p.closed:
                    p.tick()
                    p.flush()
            if self.error:
                raise AssertionError("%s (state: %s)" % (self.error, what()))
            if until():
                return
            if time.monotonic() > deadline:
                raise AssertionError("not done within %ds: %s" % (timeout, what()))
            for key, mask in self.sel.select(0.02):
                p = key.data
                if mask & selectors.EVENT_READ:
                    p.readable()
                if mask & selectors.EVENT_WRITE and not p.closed:
                    p.flush()

    def close(self):
        for p in self.peers:
            p.close()
        self.sel.close()


class Peer:
    """One native connection: HELLO (and any setup) blocking, then non-blocking under a Loop."""

    def __init__(self, loop, port, name):
        self.loop = loop
        self.name = name
        self.conn = Conn(port)
        self.conn.hello(name)
        self.next_rid = 100
        self.pending = {}  # request id -> callback(status, message, body)
        self.lost_ok = False
        self.closed = False

    def start(self):
        """Leaves blocking mode and joins the loop."""
        self.sock = self.conn.sock
        self.sock.setblocking(False)
        self.inbuf = bytearray(self.conn.buf)
        self.out = bytearray()
        self.mask = selectors.EVENT_READ
        self.loop.add(self)
        self.parse()

    def rid(self):
        self.next_rid += 1
        return self.next_rid

    def request(self, ftype, payload, cb):
        rid = self.rid()
        self.pending[rid] = cb
        self.out += frame(ftype, rid, payload)

    def readable(self):
        try:
            data = self.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.lost("closed by the broker")
            return
        self.inbuf += data
        self.parse()

    def parse(self):
        buf, pos, end = self.inbuf, 0, len(self.inbuf)
        while end - pos >= FRAME_HEADER.size and not self.closed:
            n, t, fl, rid = FRAME_HEADER.unpack_from(buf, pos)
            if end - pos - 4 < n:
                break
            payload = bytes(buf[pos + 10:pos + 4 + n])
            pos += 4 + n
            self.on_frame(t, fl, rid, payload)
        del buf[:pos]

    def on_frame(self, t, fl, rid, payload):
        if t == RESPONSE and rid in self.pending:
            self.pending.pop(rid)(*parse_response(payload))
        elif t == DELIVER:
            self.on_deliver(payload)
        elif t == SUB_CLOSED:
            self.loop.fail("%s: SUB_CLOSED %r" % (self.name, payload))
        else:
            self.loop.fail("%s: unexpected frame type=0x%02x id=%d" % (self.name, t, rid))

    def on_deliver(self, payload):
        self.loop.fail("%s: unexpected DELIVER" % self.name)

    def tick(self):
        pass

    def flush(self):
        while self.out and not self.closed:
            try:
                n = self.sock.send(self.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.lost("send failed")
                return
            del self.out[:n]
        if not self.closed:
            mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
            if mask != self.mask:
                self.loop.sel.modify(self.sock, mask, self)
                self.mask = mask

    def lost(self, why):
        if not self.lost_ok:
            self.loop.fail("%s: connection lost: %s" % (self.name, why))
        self.close()

    def abort(self):
        """Closes abruptly: a TCP reset, unsent output discarded."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        if hasattr(self, "sock"):
            self.loop.sel.unregister(self.sock)
        self.conn.close()


class Producer(Peer):
    """Pipelines SEND frames from `batches` (an iterator of (bodies, payload)), `window` in
    flight, at most `rate` messages a second if given; records what the answers acknowledged:
    acked[body] = (queue, offset, msgid) when `keep`, else only the count."""

    def __init__(self, loop, port, name, batches, window=4, rate=None, keep=True):
        super().__init__(loop, port, name)
        self.batches = iter(batches)
        self.window = window
        self.rate = rate
        self.keep = keep
        self.acked = {}
        self.acked_n = 0
        self.sent_n = 0
        self.inflight = 0
        self.exhausted = False
        self.t0 = None
        self.start()

    @property
    def done(self):
        return self.exhausted and self.inflight == 0

    def tick(self):
        if self.t0 is None:
            self.t0 = time.monotonic()
        while not self.exhausted and self.inflight < self.window:
            if self.rate and self.sent_n >= self.rate * (time.monotonic() - self.t0):
                break
            try:
                bodies, payload = next(self.batches)
            except StopIteration:
                self.exhausted = True
                break
            self.inflight += 1
            self.sent_n += len(bodies)
            self.request(SEND, payload, lambda st, msg, body, b=bodies: self.answered(b, st, msg,
                                                                                     body))

    def answered(self, bodies, status, msg, body):
        self.inflight -= 1
        if status != 0:
            self.loop.fail("%s: SEND failed: status %d %s" % (self.name, status, msg))
            return
        res = parse_send_results(body)
        if len(res) != len(bodies):
            self.loop.fail("%s: SEND answered %d results for %d" % (self.name, len(res),
                                                                    len(bodies)))
            return
        self.acked_n += len(res)
        if self.keep:
            for b, (q, off, _, msgid) in zip(bodies, res):
                self.acked[b] = (q, off, msgid)


class Consumer(Peer):
    """One subscription (sub id 1): credit `credit`, topped up when half is used (until `limit`
    deliveries, at most `rate` a second if given), every delivery acknowledged in one ACK per
    loop round while `acking`. Records deliveries in `got` as (body, queue, offset, reconsume)
    when `keep`; counts them in `n` always."""

    def __init__(self, loop, port, name, group, topic, mode=CLUSTERING, start=START_FIRST,
                 credit=500, keep=True, limit=None, rate=None):
        super().__init__(loop, port, name)
        status, msg, _ = self.conn.request(
            SUBSCRIBE, 2, subscribe_payload(1, group, topic, mode, start, 0))
        assert status == 0, (name, status, msg)
        self.credit = credit
        self.keep = keep
        self.limit = limit  # stop topping up credit after this many deliveries
        self.rate = rate
        self.t0 = None
        self.got = []
        self.n = 0
        self.used = 0
        self.granted = False
        self.acking = True
        self.to_ack = []  # (delivery id, body, queue, offset)
        self.acked = []  # (body, queue, offset) of every delivery put in an ACK frame
        self.held = []  # bodies received while not acking
        self.synced = False
        self.start()

    def on_deliver(self, payload):
        sub_id, did, rec, _ = parse_deliver(payload)
        q, off, _, reconsume, body = parse_record(rec)
        if sub_id != 1:
            self.loop.fail("%s: delivery for sub %d" % (self.name, sub_id))
        self.n += 1
        self.used += 1
        if self.keep:
            self.got.append((body, q, off, reconsume))
        if self.acking:
            self.to_ack.append((did, body, q, off))
        else:
            self.held.append(body)

    def tick(self):
        if not self.granted:
            self.granted = True
            self.t0 = time.monotonic()
            self.out += frame(CREDIT, self.rid(), credit_payload(1, self.credit), NOREPLY)
        self.send_acks()
        if (self.used >= max(1, self.credit // 2) and (self.limit is None or self.n < self.limit)
                and (self.rate is None or self.n < self.rate * (time.monotonic() - self.t0))):
            self.out += frame(CREDIT, self.rid(), credit_payload(1, self.used), NOREPLY)
            self.used = 0

    def send_acks(self):
        while self.to_ack:
            chunk, self.to_ack = self.to_ack[:1024], self.to_ack[1024:]
            self.out += frame(ACK, self.rid(), ack_payload(1, [d for d, _, _, _ in chunk]),
                              NOREPLY)
            if self.keep:
                self.acked.extend((b, q, off) for _, b, q, off in chunk)

    def stop_acking(self):
        """Acknowledges what it has, then stops; `synced` once a PING answer proves the broker
        has processed those ACKs (frames of a connection are handled in order)."""
        self.send_acks()
        self.acking = False
        self.request(PING, b"", lambda st, msg, body: setattr(self, "synced", st == 0))


class Getter(Peer):
    """MSG_GET for every (msgid, body, queue, offset) of `wanted`, `window` in flight; records
    the ids whose answer is not that message in `bad`."""

    def __init__(self, loop, port, wanted, window=256):
        super().__init__(loop, port, b"getter")
        self.wanted = iter(wanted)
        self.window = window
        self.inflight = 0
        self.ok = 0
        self.bad = []
        self.exhausted = False
        self.start()

    @property
    def done(self):
        return self.exhausted and self.inflight == 0

    def tick(self):
        while not self.exhausted and self.inflight < self.window:
            try:
                w = next(self.wanted)
            except StopIteration:
                self.exhausted = True
                break
            self.inflight += 1
            self.request(MSG_GET, s16(w[0].encode()), lambda st, m, b, w=w: self.answered(w, st,
                                                                                          m, b))

    def answered(self, w, status, msg, body):
        self.inflight -= 1
        if status != 0:
            self.bad.append((w, "status %d %s" % (status, msg)))
            return
        rlen = struct.unpack_from(">I", body)[0]
        q, off, _, _, got_body = parse_record(body[4:4 + rlen])
        if (got_body, q, off) != (w[1], w[2], w[3]):
            self.bad.append((w, (got_body, q, off)))
        else:
            self.ok += 1


# ---- Tests ---------------------------------------------------------------------------------------


def describe_group(admin, group):
    """GROUP_DESCRIBE, without the group's retry topic (%RETRY%<group>, listed by the broker
    next to the topics the group consumes; these tests never fail a message)."""
    status, msg, body = admin.request(GROUP_DESCRIBE, 50, s16(group))
    assert status == 0, (status, msg)
    name, mode, members, queues = parse_group_describe(body)
    return name, mode, members, [q for q in queues if not q["topic"].startswith("%RETRY%")]


def lags(queues):
    return [q["max_offset"] - q["committed"] for q in queues]


def keyed_batches(topic, keys, count, per_batch=100):
    """SEND batches of `count` messages cycling through `keys`, body b"key:seq" with seq counted
    per key, the key as sharding key."""
    seq = collections.Counter()
    for start in range(0, count, per_batch):
        bodies, msgs = [], []
        for i in range(start, min(count, start + per_batch)):
            k = keys[i % len(keys)]
            body = b"%s:%d" % (k, seq[k])
            seq[k] += 1
            bodies.append(body)
            msgs.append((k, record(topic, body)))
        yield bodies, send_payload(msgs)


def numbered_batches(topic, prefix, count, per_batch=100):
    """SEND batches of `count` messages without sharding key, body b"prefix:i"."""
    for start in range(0, count, per_batch):
        bodies = [b"%s:%d" % (prefix, i) for i in range(start, min(count, start + per_batch))]
        yield bodies, send_payload([(b"", record(topic, b)) for b in bodies])


def rss_kib(pid):
    """(VmRSS, RssAnon, RssFile) of a process in KiB. RssFile is the store's sstables as LevelDB
    maps them for reading (page cache, growing with what was read); RssAnon is the memory the
    process owns: heap, LevelDB's block cache and memtables."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out["VmRSS"], out["RssAnon"], out["RssFile"]


def settled_rss_kib(pid, timeout=20):
    """rss_kib() once three samples of RssAnon 0.5 s apart agree within 256 KiB (background
    compactions come and go); after `timeout` the last sample."""
    samples = [rss_kib(pid)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        samples.append(rss_kib(pid))
        last = [s[1] for s in samples[-3:]]
        if len(last) == 3 and max(last) - min(last) < 256:
            break
    return samples[-1]


class ModelTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-model-")
        self.data = os.path.join(self.tmp, "data")
        self.procs = []
        self.loops = []
        self.conns = []
        self.slow = 4 if SANITIZED else 1  # deadlines scale under ASan and UBSan
        self.t_start = time.monotonic()

    def tearDown(self):
        for loop in self.loops:
            loop.close()
        for c in self.conns:
            c.close()
        for f in self.procs:
            f.close()
        say("%s: %.1fs", self._testMethodName, time.monotonic() - self.t_start)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, extra=(), conf=None):
        f = ferryd_test.Ferryd(self.data, extra=extra, conf=conf)
        self.procs.append(f)
        f.wait_ready(component="native")
        self.port = f.ports["native"]
        return f

    def admin(self):
        c = Conn(self.port, timeout=10 * self.slow)
        c.hello(b"admin")
        self.conns.append(c)
        return c

    def loop(self):
        loop = Loop()
        self.loops.append(loop)
        return loop

    def create_topic(self, admin, name, queues):
        status, msg, _ = admin.request(TOPIC_CREATE, 10, s16(name) + struct.pack(">I", queues))
        self.assertEqual((status, msg), (0, ""))

    def wait_lag_zero(self, loop, admin, group, timeout):
        """Runs the loop until GROUP_DESCRIBE shows lag 0 on every queue (polled every 0.2 s)."""
        last = {"t": 0.0, "queues": None}

        def until():
            if time.monotonic() - last["t"] < 0.2:
                return False
            last["t"] = time.monotonic()
            last["queues"] = describe_group(admin, group)[3]
            return last["queues"] and not any(lags(last["queues"]))

        loop.run(until, timeout, lambda: "group %s queues %r" % (group, last["queues"]))
        return last["queues"]

    def stop_clean(self, f):
        """SIGTERM by PID: exit 0 and no sanitizer report in the log."""
        self.assertEqual(f.stop(signal.SIGTERM), 0, f.output()[-4000:])
        self.assert_log_clean(f)

    def assert_log_clean(self, f):
        out = f.output()
        for mark in SANITIZER_MARKS:
            self.assertNotIn(mark, out, out[-8000:])

    def test_1_clustering_100k_exactly_once_in_key_order(self):
        """100,000 messages from 4 producers (pipelined SENDs of 100, 50 sharding keys, body
        key:seq) into an 8-queue topic, consumed by a clustering group of 3 members (credit 500,
        batched ACKs): every message is delivered exactly once, at the queue and offset its SEND
        answer gave, each key stays on one queue and arrives in seq order, and the group's
        committed offsets reach the end of every queue (lag 0)."""
        f = self.start()
        admin = self.admin()
        self.create_topic(admin, b"orders", 8)
        loop = self.loop()
        # Every member joins before the first message, so no queue changes hands mid-stream.
        cons = [Consumer(loop, self.port, b"c%d" % i, b"billing", b"orders") for i in range(3)]
        keys = [b"key%02d" % k for k in range(50)]
        prods = [Producer(loop, self.port, b"p%d" % p,
                          keyed_batches(b"orders", keys[p::4], 25000)) for p in range(4)]
        total = 100000
        t0 = time.monotonic()
        loop.run(lambda: all(p.done for p in prods) and sum(c.n for c in cons) >= total,
                 90 * self.slow, lambda: "acked %d delivered %s" % (
                     sum(p.acked_n for p in prods), [c.n for c in cons]))
        elapsed = time.monotonic() - t0
        queues = self.wait_lag_zero(loop, admin, b"billing", 30 * self.slow)

        acked = {}
        for p in prods:
            acked.update(p.acked)
        self.assertEqual(len(acked), total)
        got = [g for c in cons for g in c.got]
        self.assertEqual(len(got), total, "deliveries (duplicates?)")
        self.assertEqual({g[0] for g in got}, set(acked), "delivered set != produced set")
        wrong = [(b, q, off, acked[b]) for b, q, off, _ in got if acked[b][:2] != (q, off)]
        self.assertEqual(wrong[:5], [], "delivered at another queue/offset than SEND answered")
        self.assertEqual([g for g in got if g[3] != 0][:5], [], "reconsume count set")
        # Same key, same queue; per key, seq in order (each key is read by one member only).
        key_queues = collections.defaultdict(set)
        for b, (q, _, _) in acked.items():
            key_queues[b.split(b":")[0]].add(q)
        self.assertEqual([k for k, qs in key_queues.items() if len(qs) != 1], [])
        for c in cons:
            seqs = collections.defaultdict(list)
            for b, _, _, _ in c.got:
                k, s = b.split(b":")
                seqs[k].append(int(s))
            for k, s in seqs.items():
                self.assertEqual(s, list(range(len(s))), "%s: key %s out of order" % (c.name, k))
        self.assertEqual(sorted(k for c in cons for k in {b.split(b":")[0] for b, _, _, _ in
                                                          c.got}), sorted(keys),
                         "a key read by two members")
        self.assertTrue(all(c.n > 0 for c in cons), [c.n for c in cons])
        self.assertEqual(len(queues), 8)
        self.assertEqual(sum(q["max_offset"] for q in queues), total)
        say("100,000 messages in %.1fs (%.0f msg/s); per member %s", elapsed, total / elapsed,
            [c.n for c in cons])
        loop.close()
        self.stop_clean(f)

    def test_2_broadcast_every_member_gets_every_message(self):
        """A broadcast group of 3 members (3 connections): each member receives each of 3,000
        messages exactly once, and each member's position reaches the end of every queue."""
        f = self.start()
        admin = self.admin()
        self.create_topic(admin, b"news", 4)
        loop = self.loop()
        cons = [Consumer(loop, self.port, b"b%d" % i, b"readers", b"news", mode=BROADCAST)
                for i in range(3)]
        prod = Producer(loop, self.port, b"p", numbered_batches(b"news", b"n", 3000))
        loop.run(lambda: prod.done and all(c.n >= 3000 for c in cons), 60 * self.slow,
                 lambda: "acked %d delivered %s" % (prod.acked_n, [c.n for c in cons]))
        queues = self.wait_lag_zero(loop, admin, b"readers", 30 * self.slow)
        name, mode, members, _ = describe_group(admin, b"readers")
        self.assertEqual((mode, len(members)), (BROADCAST, 3))
        self.assertEqual(len(queues), 3 * 4, "one position per member and queue")
        for c in cons:
            self.assertEqual(sorted(b for b, _, _, _ in c.got), sorted(prod.acked),
                             "%s: not every message exactly once" % c.name)
            self.assertEqual([(b, q, off) for b, q, off, _ in c.got
                              if prod.acked[b][:2] != (q, off)][:5], [])
        say("3 members x %d messages", len(prod.acked))
        loop.close()
        self.stop_clean(f)

    def test_3_member_leaves_and_joins_mid_stream(self):
        """3 clustering members consume a stream of 30,000 messages (10,000 msg/s). One member
        stops acknowledging, then its connection is reset; later a new member joins. Everything
        the reset member held unacknowledged is delivered to the others; every message is
        delivered at least once; duplicates are only messages that member held; the new member
        takes a share; the group's lag reaches 0."""
        f = self.start()
        admin = self.admin()
        self.create_topic(admin, b"stream", 8)
        loop = self.loop()
        cons = [Consumer(loop, self.port, b"m%d" % i, b"workers", b"stream") for i in range(3)]
        victim = cons[1]
        total = 30000
        prod = Producer(loop, self.port, b"p", numbered_batches(b"stream", b"s", total),
                        rate=10000)
        st = {"phase": 0, "newcomer": None}

        def step():
            if st["phase"] == 0 and prod.acked_n >= 8000:
                victim.stop_acking()
                st["phase"] = 1
            elif st["phase"] == 1 and victim.synced and len(victim.held) >= 100:
                victim.abort()
                st["phase"], st["closed_at"] = 2, prod.acked_n
            elif st["phase"] == 2 and prod.acked_n >= 20000:
                st["newcomer"] = Consumer(loop, self.port, b"m3", b"workers", b"stream")
                cons.append(st["newcomer"])
                st["phase"] = 3
            return st["phase"] == 3 and prod.done and len({g[0] for c in cons
                                                           for g in c.got}) >= total

        loop.run(step, 90 * self.slow, lambda: "phase %d acked %d delivered %s held %d" % (
            st["phase"], prod.acked_n, [c.n for c in cons], len(victim.held)))
        self.wait_lag_zero(loop, admin, b"workers", 30 * self.slow)
        _, _, members, _ = describe_group(admin, b"workers")

        count = collections.Counter(g[0] for c in cons for g in c.got)
        self.assertEqual(set(count), set(prod.acked), "delivered set != produced set")
        held = set(victim.held)
        others = {g[0] for c in cons if c is not victim for g in c.got}
        self.assertEqual(sorted(held - others)[:5], [],
                         "unacknowledged deliveries of the reset member not redelivered")
        dups = {b for b, n in count.items() if n > 1}
        self.assertEqual(sorted(dups - held)[:5], [], "duplicates of acknowledged messages")
        self.assertEqual(len(members), 3, members)
        self.assertGreater(st["newcomer"].n, 0, "the new member got no share")
        say("reset member held %d unacknowledged (at %d produced); duplicates %d; "
            "deliveries %s", len(held), st["closed_at"], len(dups), [c.n for c in cons])
        loop.close()
        self.stop_clean(f)

    def test_4_sigkill_under_flush_sync(self):
        """Under --flush sync, 2 producers pipeline SENDs (30,000 msg/s each) and a clustering
        consumer acknowledges what it gets (20,000 msg/s, so a backlog builds up); ferryd is
        killed with SIGKILL after 1.5 s of traffic and restarted on the same data directory.
        Every message a SEND answer acknowledged is there (MSG_GET returns it at its queue and
        offset); the group's stored offsets cover only what it acknowledged; it resumes there,
        and what it acknowledged before plus what it receives after cover every acknowledged
        message."""
        f = self.start(extra=["--flush", "sync"])
        self.assertEqual(f.get("/health")[1]["store"]["flush"], "sync")
        admin = self.admin()
        self.create_topic(admin, b"ledger", 4)
        loop = self.loop()
        cons = Consumer(loop, self.port, b"c", b"auditors", b"ledger", rate=20000)
        prods = [Producer(loop, self.port, b"p%d" % p,
                          numbered_batches(b"ledger", b"p%d" % p, 10 ** 7), rate=30000)
                 for p in range(2)]
        st = {"t0": None, "killed": False}

        def kill_after_traffic():
            if st["t0"] is None and any(p.acked_n for p in prods):
                st["t0"] = time.monotonic()
            if not st["killed"] and st["t0"] and time.monotonic() - st["t0"] >= 1.5:
                for p in loop.peers:
                    p.lost_ok = True
                f.proc.kill()  # SIGKILL, by PID
                f.proc.wait(timeout=10)
                st["killed"] = True
            return st["killed"] and all(p.closed for p in loop.peers)

        loop.run(kill_after_traffic, 60 * self.slow, lambda: "acked %s delivered %d" % (
            [p.acked_n for p in prods], cons.n))
        self.assert_log_clean(f)
        loop.close()
        self.conns.remove(admin)
        admin.close()
        acked = {}
        for p in prods:
            acked.update(p.acked)
        acked_before = {b for b, _, _ in cons.acked}
        self.assertGreater(len(acked), 1000, "too little traffic before the kill")

        f = self.start(extra=["--flush", "sync"])
        admin = self.admin()
        # (a) every acknowledged message is stored, where its answer said.
        status, _, body = admin.request(TOPIC_DESCRIBE, 11, s16(b"ledger"))
        self.assertEqual(status, 0)
        ranges = parse_topic_describe(body)[2]
        loop = self.loop()
        getter = Getter(loop, self.port, [(m, b, q, off) for b, (q, off, m) in acked.items()])
        loop.run(lambda: getter.done, 60 * self.slow, lambda: "got %d of %d" % (getter.ok,
                                                                                 len(acked)))
        self.assertEqual(getter.bad[:5], [], "acknowledged messages lost or wrong")
        self.assertEqual(getter.ok, len(acked))
        for b, (q, off, _) in acked.items():
            self.assertLess(off, ranges[q][1], "max offset below an acknowledged message")
        # (b) the stored offsets never pass a message the group had not acknowledged ...
        _, _, _, queues = describe_group(admin, b"auditors")
        committed = {q["queue_id"]: q["committed"] for q in queues}
        self.assertEqual(sorted(committed), [0, 1, 2, 3], queues)
        acked_offsets = collections.defaultdict(set)
        for _, q, off in cons.acked:
            acked_offsets[q].add(off)
        for q, c in committed.items():
            missing = [o for o in range(c) if o not in acked_offsets[q]]
            self.assertEqual(missing[:5], [], "queue %d committed at %d past unacked" % (q, c))
        self.assertGreater(sum(committed.values()), 0, "no committed offset was stored")
        # ... and the group resumes from them, losing nothing.
        again = Consumer(loop, self.port, b"c2", b"auditors", b"ledger")
        self.wait_lag_zero(loop, admin, b"auditors", 60 * self.slow)
        first = {}
        for b, q, off, _ in again.got:
            first.setdefault(q, off)
        for q, c in committed.items():
            if c < ranges[q][1]:
                self.assertEqual(first.get(q), c, "queue %d did not resume at %d" % (q, c))
        after = {g[0] for g in again.got}
        lost = set(acked) - acked_before - after
        self.assertEqual(sorted(lost)[:5], [], "acknowledged messages never consumed")
        say("SEND acknowledged %d; the group acknowledged %d before the kill, received %d after "
            "the restart (%d again); stored offsets %s", len(acked), len(acked_before), len(after),
            len(after & acked_before), [committed[q] for q in range(4)])
        loop.close()
        self.stop_clean(f)

    def test_5_offline_backlog_costs_disk_not_memory(self):
        """With store_write_buffer 4MiB and store_cache_size 8MiB, a clustering group that
        subscribed then disconnected falls 1,000,000 messages behind; reconnected with credit
        100, it consumes 200,000 of them in offset order. ferryd's own memory (RssAnon) after
        that is less than 8 MiB above what it was once the produce settled, and flat between
        100,000 and 200,000 consumed: the backlog is read from the store, not held in memory.
        VmRSS also counts the sstable pages LevelDB maps to read them (RssFile, page cache that
        grows with what was read): printed, not bounded."""
        conf = os.path.join(self.tmp, "ferry.conf")
        with open(conf, "w") as fh:
            fh.write("store_write_buffer 4MiB\nstore_cache_size 8MiB\n")
        f = self.start(conf=conf)
        admin = self.admin()
        self.create_topic(admin, b"bulk", 8)
        c = Conn(self.port)
        c.hello(b"early")
        status, msg, _ = c.request(SUBSCRIBE, 2, subscribe_payload(1, b"late", b"bulk",
                                                                   CLUSTERING, START_FIRST, 100))
        self.assertEqual((status, msg), (0, ""))
        c.close()
        queues = self.wait_lag_zero(self.loop(), admin, b"late", 10 * self.slow)
        self.assertEqual(len(queues), 8, "the group has no positions")
        rss0 = rss_kib(f.proc.pid)

        total, per = 1000000, 1000
        body_len = 20
        head = record(b"bulk", b"x" * body_len)[:-body_len]
        item = s16(b"") + struct.pack(">I", len(head) + body_len) + head

        def batches(p):
            for start in range(p * total // 2, (p + 1) * total // 2, per):
                yield range(per), struct.pack(">H", per) + b"".join(
                    item + b"%020d" % i for i in range(start, start + per))

        loop = self.loop()
        prods = [Producer(loop, self.port, b"p%d" % p, batches(p), keep=False) for p in range(2)]
        t0 = time.monotonic()
        loop.run(lambda: all(p.done for p in prods), 100 * self.slow,
                 lambda: "acked %s" % [p.acked_n for p in prods])
        t_produce = time.monotonic() - t0
        self.assertEqual(sum(p.acked_n for p in prods), total)
        rss1 = settled_rss_kib(f.proc.pid)

        want = 200000
        cons = Consumer(loop, self.port, b"late", b"late", b"bulk", credit=100, keep=False,
                        limit=want // 2)
        expect = [0] * 8
        bad = []
        deliver = cons.on_deliver

        def in_order(payload):  # each queue is read from its start, in offset order
            q, off = parse_record(parse_deliver(payload)[2])[:2]
            if off != expect[q] and len(bad) < 5:
                bad.append((q, off, expect[q]))
            expect[q] = off + 1
            deliver(payload)

        cons.on_deliver = in_order
        t0 = time.monotonic()
        loop.run(lambda: cons.n >= want // 2, 60 * self.slow, lambda: "consumed %d" % cons.n)
        rss_half = settled_rss_kib(f.proc.pid)  # no credit left: the broker is idle
        cons.limit = want
        loop.run(lambda: cons.n >= want, 60 * self.slow, lambda: "consumed %d" % cons.n)
        t_consume = time.monotonic() - t0
        self.assertEqual(bad, [], "backlog not read in offset order")
        rss2 = settled_rss_kib(f.proc.pid)
        say("produced %d in %.1fs, consumed %d in %.1fs", total, t_produce, cons.n, t_consume)
        for what, r in (("before produce", rss0), ("after produce", rss1),
                        ("after consuming %d" % (want // 2), rss_half),
                        ("after consuming %d" % want, rss2)):
            say("%-24s VmRSS %6d KiB  RssAnon %6d KiB  RssFile %6d KiB", what, *r)
        say("consuming %d: VmRSS %+d KiB, RssAnon %+d KiB, RssFile %+d KiB", want,
            rss2[0] - rss1[0], rss2[1] - rss1[1], rss2[2] - rss1[2])
        loop.close()
        self.stop_clean(f)
        if SANITIZED:
            self.skipTest("memory bound not checked under ASan (shadow memory, quarantine)")
        self.assertLess(rss2[1] - rss1[1], 8 * 1024, "reading the backlog grew RssAnon by %d KiB"
                        % (rss2[1] - rss1[1]))
        self.assertLess(rss2[1] - rss_half[1], 1024, "RssAnon grows with the backlog read")


SANITIZED = False

if __name__ == "__main__":
    ferryd_test.FERRYD = os.path.abspath(sys.argv[1])
    ferryd_test.SOURCE = os.path.abspath(sys.argv[2])
    SANITIZED = sanitized(ferryd_test.FERRYD)
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[3:])  # optional test names after the two
