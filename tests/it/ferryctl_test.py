#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Integration tests of ferryctl (and so of libferry) against a real ferryd on free ports: topic
# create / list / describe / delete, send from arguments and from stdin (pipelined, results in
# input order), consume with --count and --from first, group describe showing committed offsets
# and lag 0 after consuming, group reset to a time and consuming again from there, message get
# by an id printed by send, message find by key (exactly the messages with the key, oldest first,
# --since / --until / --limit, long bodies shortened, unknown topic), message ids of deliveries
# equal to those send printed, --json output that parses, and the exit codes (1 request failed,
# 2 usage, 3 cannot connect). DeadLetterTest (a ferryd with retry_delays 200ms, max_reconsume 2):
# consume --nack sees a message come back with reconsume 0, 1, 2 after the back-off, then it is
# in the group's dead-letter queue (dlq list, dlq consume with its original topic and reconsume
# 3), dlq resend sends it to its topic again (exactly one new copy, tag and properties kept) once
# only, and consume --reject sends messages straight to the dead-letter queue. TransactionTest
# (a ferryd with tx_check_after 2s, tx_max_checks 1): tx send prints an id and the message stays
# invisible and listed until tx commit (delivered once; a second commit fails), tx rollback
# deletes it, a half nobody answers for is rolled back by the broker after its checks, and tx
# usage errors exit 2. GroupConfigTest: group config --max-reconsume creates a group before its
# consumers, survives a restart, shows in group describe, dead-letters at the first failure with
# 0 while a group on the broker's default (2) retries, and goes back to the default.
# Usage: ferryctl_test.py PATH_TO_FERRYD PATH_TO_FERRYCTL SOURCE_DIR
import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ferryd_test  # noqa: E402  (the Ferryd process helper)

FERRYCTL = None
DEADLINE_S = 30
MSGID = re.compile(r"^[0-9a-f]{32}$")


class FerryctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-ctl-")
        cls.f = ferryd_test.Ferryd(os.path.join(cls.tmp, "data"))
        cls.f.wait_ready(component="native")
        cls.broker = "127.0.0.1:%d" % cls.f.ports["native"]

    @classmethod
    def tearDownClass(cls):
        cls.f.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def ctl(self, *args, stdin=None, broker=None, check=None):
        """Runs ferryctl; returns (exit code, stdout, stderr). check=N asserts the exit code."""
        cmd = [FERRYCTL, "--broker", broker or self.broker] + list(args)
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=DEADLINE_S)
        if check is not None:
            self.assertEqual(r.returncode, check, "%s\nstdout: %s\nstderr: %s\nferryd:\n%s" % (
                cmd, r.stdout, r.stderr, self.f.output()[-3000:]))
        return r.returncode, r.stdout, r.stderr

    def ok(self, *args, stdin=None):
        return self.ctl(*args, stdin=stdin, check=0)[1]

    def json_lines(self, out):
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def send_lines(self, topic, bodies, *opts):
        """Sends bodies through stdin; returns [(msgid, queue, offset)] in input order."""
        out = self.ok("send", topic, *opts, stdin="".join(b + "\n" for b in bodies))
        rows = [line.split() for line in out.splitlines()]
        self.assertEqual(len(rows), len(bodies), out)
        for r in rows:
            self.assertEqual(len(r), 3, out)
            self.assertRegex(r[0], MSGID)
        return [(r[0], int(r[1]), int(r[2])) for r in rows]

    # ---- topics ----------------------------------------------------------------------------

    def test_topic_create_list_describe_delete(self):
        out = self.ok("topic", "create", "t_admin", "--queues", "3")
        self.assertIn("t_admin", out)
        self.assertIn("t_admin", self.ok("topic", "list"))
        topics = self.json_lines(self.ok("--json", "topic", "list"))[0]["topics"]
        mine = [t for t in topics if t["name"] == "t_admin"]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["queues"], 3)
        desc = self.json_lines(self.ok("--json", "topic", "describe", "t_admin"))[0]
        self.assertEqual(desc["name"], "t_admin")
        self.assertEqual(desc["queues"], 3)
        self.assertEqual([r["queue"] for r in desc["ranges"]], [0, 1, 2])
        self.assertTrue(all(r["max_offset"] == 0 for r in desc["ranges"]))
        human = self.ok("topic", "describe", "t_admin")
        self.assertRegex(human, r"queues:\s+3")
        # Creating it again is refused by the broker: exit 1 with the reason.
        code, _, err = self.ctl("topic", "create", "t_admin")
        self.assertEqual(code, 1)
        self.assertIn("topic create", err)
        self.ok("topic", "delete", "t_admin")
        code, out, err = self.ctl("topic", "describe", "t_admin")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("ENOTFOUND", err)

    # ---- send and consume ------------------------------------------------------------------

    def test_send_args_and_stdin_then_consume_from_first(self):
        self.ok("topic", "create", "t_sc", "--queues", "1")
        out = self.ok("send", "t_sc", "--tag", "TagA", "--key", "k1", "--key", "k2",
                      "--prop", "color=red", "--prop", "size=XL", "first body")
        msgid, queue, offset = out.split()
        self.assertRegex(msgid, MSGID)
        self.assertEqual((int(queue), int(offset)), (0, 0))
        rows = self.send_lines("t_sc", ["line one", "line two", "line three"])
        self.assertEqual([r[2] for r in rows], [1, 2, 3])
        out = self.ok("consume", "t_sc", "--group", "g_sc", "--from", "first", "--count", "4")
        self.assertEqual(out.splitlines(), ["first body", "line one", "line two", "line three"])
        # The group has it all now: another run finds nothing new and exits after the idle
        # timeout, successfully.
        t0 = time.monotonic()
        out = self.ok("consume", "t_sc", "--group", "g_sc", "--timeout", "300")
        self.assertEqual(out, "")
        self.assertLess(time.monotonic() - t0, 10)

    def test_consume_with_sql92_and_tag_filters(self):
        self.ok("topic", "create", "t_sql", "--queues", "2")
        for amount, region, tag in ((50, "eu", "a"), (150, "eu", "a"), (300, "us", "a"),
                                    (200, "eu", "b"), (120, "eu", "a")):
            self.ok("send", "t_sql", "--tag", tag, "--prop", "amount=%d" % amount,
                    "--prop", "region=" + region, "%s-%d" % (region, amount))
        out = self.ok("consume", "t_sql", "--group", "g_sql", "--from", "first", "--timeout",
                      "500", "--sql", "region = 'eu' AND amount > 100 AND TAGS IN ('a')")
        self.assertEqual(sorted(out.splitlines()), ["eu-120", "eu-150"])
        out = self.ok("consume", "t_sql", "--group", "g_tag", "--from", "first", "--timeout",
                      "500", "--filter", "b")
        self.assertEqual(out.splitlines(), ["eu-200"])
        # A selector that does not parse: exit 1, and the broker says where.
        code, _, err = self.ctl("consume", "t_sql", "--group", "g_bad", "--sql", "amount >")
        self.assertEqual(code, 1, err)
        self.assertIn("position", err)
        code, _, err = self.ctl("consume", "t_sql", "--group", "g_bad", "--sql", "a = 1",
                                "--filter", "x")
        self.assertEqual(code, 2, err)

    def test_orderly_consume_keeps_sharding_key_order(self):
        self.ok("topic", "create", "t_ord", "--queues", "4")
        lines = ["%s-%d" % (k, i) for i in range(20) for k in ("a", "b", "c")]
        for k in ("a", "b", "c"):
            self.send_lines("t_ord", [l for l in lines if l.startswith(k)], "--sharding-key", k)
        out = self.ok("consume", "t_ord", "--group", "g_ord", "--orderly", "--from", "first",
                      "--count", str(len(lines)))
        got = out.splitlines()
        self.assertEqual(sorted(got), sorted(lines))
        for k in ("a", "b", "c"):
            self.assertEqual([l for l in got if l.startswith(k)], ["%s-%d" % (k, i) for i in range(20)])
        # The group is orderly: a concurrent member is refused, with the reason.
        code, _, err = self.ctl("consume", "t_ord", "--group", "g_ord", "--timeout", "100")
        self.assertEqual(code, 1, err)
        self.assertIn("orderly", err)

    def test_consume_json_carries_the_ids_send_printed(self):
        self.ok("topic", "create", "t_json", "--queues", "2")
        sent = self.send_lines("t_json", ["a", "b", "c", "d"], "--tag", "T1", "--key", "kk")
        out = self.ok("--json", "consume", "t_json", "--group", "g_json", "--from", "first",
                      "--count", "4")
        got = self.json_lines(out)
        self.assertEqual(len(got), 4)
        self.assertEqual(sorted(m["body"] for m in got), ["a", "b", "c", "d"])
        by_body = {m["body"]: m for m in got}
        for body, (msgid, queue, offset) in zip(["a", "b", "c", "d"], sent):
            m = by_body[body]
            self.assertEqual(m["msgid"], msgid)
            self.assertEqual((m["queue"], m["offset"]), (queue, offset))
            self.assertEqual(m["topic"], "t_json")
            self.assertEqual(m["tag"], "T1")
            self.assertEqual(m["keys"], ["kk"])
            self.assertGreater(m["store_ms"], 0)
            self.assertEqual(m["reconsume"], 0)

    def test_send_many_lines_pipelined_in_order(self):
        self.ok("topic", "create", "t_many", "--queues", "1")
        bodies = ["msg-%04d" % i for i in range(500)]
        rows = self.send_lines("t_many", bodies)
        self.assertEqual([r[2] for r in rows], list(range(500)))
        self.assertEqual(len({r[0] for r in rows}), 500)
        out = self.ok("consume", "t_many", "--group", "g_many", "--from", "first",
                      "--count", "500")
        self.assertEqual(out.splitlines(), bodies)

    def test_send_json_output(self):
        out = self.ok("--json", "send", "t_sendjson", "hello")
        r = self.json_lines(out)[0]
        self.assertRegex(r["msgid"], MSGID)
        self.assertIn("queue", r)
        self.assertIn("offset", r)
        self.assertGreater(r["store_ms"], 0)

    # ---- groups ----------------------------------------------------------------------------

    def test_group_describe_shows_committed_and_no_lag_after_consuming(self):
        self.ok("topic", "create", "t_lag", "--queues", "2")
        self.send_lines("t_lag", ["x%d" % i for i in range(6)])
        self.ok("consume", "t_lag", "--group", "g_lag", "--from", "first", "--count", "6")
        g = self.json_lines(self.ok("--json", "group", "describe", "g_lag"))[0]
        self.assertEqual(g["name"], "g_lag")
        self.assertEqual(g["mode"], "clustering")
        queues = [q for q in g["queues"] if q["topic"] == "t_lag"]
        self.assertEqual(sorted(q["queue"] for q in queues), [0, 1])
        self.assertEqual(sum(q["max_offset"] for q in queues), 6)
        for q in queues:
            self.assertEqual(q["committed"], q["max_offset"], g)
            self.assertEqual(q["lag"], 0, g)
        human = self.ok("group", "describe", "g_lag")
        self.assertIn("COMMITTED", human)
        self.assertIn("t_lag", human)
        names = [x["name"] for x in self.json_lines(self.ok("--json", "group", "list"))[0]["groups"]]
        self.assertIn("g_lag", names)
        self.assertIn("g_lag", self.ok("group", "list"))
        # Unconsumed messages show as lag.
        self.send_lines("t_lag", ["y"])
        g = self.json_lines(self.ok("--json", "group", "describe", "g_lag"))[0]
        self.assertEqual(sum(q["lag"] for q in g["queues"] if q["topic"] == "t_lag"), 1)

    def test_group_reset_to_time_then_consume_again(self):
        self.ok("topic", "create", "t_reset", "--queues", "2")
        self.send_lines("t_reset", ["old-%d" % i for i in range(4)])
        time.sleep(0.05)
        cut = datetime.datetime.now(datetime.timezone.utc)
        time.sleep(0.05)
        self.send_lines("t_reset", ["new-%d" % i for i in range(3)])
        out = self.ok("consume", "t_reset", "--group", "g_reset", "--from", "first",
                      "--count", "7")
        self.assertEqual(len(out.splitlines()), 7)
        # ISO 8601 with milliseconds, as a user would type it.
        iso = cut.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (cut.microsecond // 1000)
        out = self.ok("group", "reset", "g_reset", "--topic", "t_reset", "--to", iso)
        self.assertIn("OFFSET", out)
        out = self.ok("consume", "t_reset", "--group", "g_reset", "--count", "3",
                      "--timeout", "5000")
        self.assertEqual(sorted(out.splitlines()), ["new-0", "new-1", "new-2"])
        # Nothing older comes back.
        self.assertEqual(self.ok("consume", "t_reset", "--group", "g_reset", "--timeout", "300"),
                         "")
        # Reset to 0 (ms since the epoch): everything again; --json lists each queue.
        res = self.json_lines(self.ok("--json", "group", "reset", "g_reset", "--topic",
                                      "t_reset", "--to", "0"))[0]
        self.assertEqual(sorted(q["queue"] for q in res["queues"]), [0, 1])
        self.assertTrue(all(q["offset"] == 0 for q in res["queues"]))
        out = self.ok("consume", "t_reset", "--group", "g_reset", "--count", "7",
                      "--timeout", "5000")
        self.assertEqual(len(out.splitlines()), 7)

    # ---- message get -----------------------------------------------------------------------

    def test_message_get_by_printed_id(self):
        out = self.ok("send", "t_get", "--tag", "TG", "--key", "order-9", "--prop", "a=1",
                      "payload 42")
        msgid = out.split()[0]
        human = self.ok("message", "get", msgid)
        self.assertIn("payload 42", human)
        self.assertIn("order-9", human)
        self.assertIn(msgid, human)
        m = self.json_lines(self.ok("--json", "message", "get", msgid))[0]
        self.assertEqual(m["msgid"], msgid)
        self.assertEqual(m["body"], "payload 42")
        self.assertEqual(m["tag"], "TG")
        self.assertEqual(m["keys"], ["order-9"])
        self.assertEqual(m["properties"], {"a": "1"})
        self.assertEqual(m["topic"], "t_get")
        self.assertRegex(m["born_host"], r"^127\.0\.0\.1:\d+$")
        # An id of a message that does not exist: the broker's refusal, exit 1.
        missing = msgid[:16] + "00000000ffffffff"
        code, _, err = self.ctl("message", "get", missing)
        self.assertEqual(code, 1, err)

    # ---- message find ----------------------------------------------------------------------

    @staticmethod
    def iso_ms(ms):
        t = datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)

    def send_find_fixture(self):
        """Topic t_find (3 queues): five messages with key order-1, each stored in a later
        millisecond than the one before, with messages of other keys (one a longer key with the
        same prefix) and without keys in between. Returns the --json send results of the five."""
        self.ok("topic", "create", "t_find", "--queues", "3")
        sent = []
        for i in range(5):
            keys = ["--key", "order-1"] if i != 3 else ["--key", "other", "--key", "order-1"]
            r = self.json_lines(self.ok("--json", "send", "t_find", *keys, "k1-%d" % i))[0]
            sent.append(r)
            self.ok("send", "t_find", "--key", "order-2", "k2-%d" % i)
            self.ok("send", "t_find", "--key", "order-10", "k10-%d" % i)
            self.ok("send", "t_find", "nokey-%d" % i)
            deadline = time.monotonic() + DEADLINE_S
            while time.time() * 1000 <= r["store_ms"]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.001)
        stores = [r["store_ms"] for r in sent]
        self.assertEqual(stores, sorted(set(stores)))
        return sent

    def find_ids(self, *args):
        """Runs `message find` (human output); returns its lines split into their 5 fields."""
        out = self.ok("message", "find", *args)
        rows = [line.split(" ", 4) for line in out.splitlines()]
        for r in rows:
            self.assertEqual(len(r), 5, out)
        return rows

    def test_message_find_by_key(self):
        sent = self.send_find_fixture()
        ids = [r["msgid"] for r in sent]

        # Exactly the five, oldest first, each line: id, queue, offset, store time, body.
        rows = self.find_ids("--topic", "t_find", "--key", "order-1")
        self.assertEqual([r[0] for r in rows], ids)
        for i, (row, r) in enumerate(zip(rows, sent)):
            self.assertEqual((int(row[1]), int(row[2])), (r["queue"], r["offset"]))
            self.assertEqual(row[3], self.iso_ms(r["store_ms"]))
            self.assertEqual(row[4], "k1-%d" % i)
        self.assertGreater(len({r["queue"] for r in sent}), 1)  # spread over queues

        # --json: one document with the messages, as `message get --json` shows them.
        doc = self.json_lines(self.ok("--json", "message", "find", "--topic", "t_find",
                                      "--key", "order-1"))
        self.assertEqual(len(doc), 1)
        self.assertEqual((doc[0]["topic"], doc[0]["key"]), ("t_find", "order-1"))
        msgs = doc[0]["messages"]
        self.assertEqual([m["msgid"] for m in msgs], ids)
        self.assertEqual([m["body"] for m in msgs], ["k1-%d" % i for i in range(5)])
        self.assertEqual([m["store_ms"] for m in msgs], [r["store_ms"] for r in sent])
        self.assertEqual(msgs[3]["keys"], ["other", "order-1"])
        self.assertTrue(all(m["topic"] == "t_find" for m in msgs))

        # --since (ISO 8601) drops the earlier ones; the bound is inclusive.
        rows = self.find_ids("--topic", "t_find", "--key", "order-1",
                             "--since", self.iso_ms(sent[2]["store_ms"]))
        self.assertEqual([r[0] for r in rows], ids[2:])
        # --until (ms since the epoch), inclusive too; with --since, a window.
        rows = self.find_ids("--topic", "t_find", "--key", "order-1",
                             "--until", str(sent[1]["store_ms"]))
        self.assertEqual([r[0] for r in rows], ids[:2])
        rows = self.find_ids("--topic", "t_find", "--key", "order-1",
                             "--since", str(sent[1]["store_ms"] + 1),
                             "--until", str(sent[3]["store_ms"]))
        self.assertEqual([r[0] for r in rows], ids[2:4])
        # --limit keeps the oldest.
        rows = self.find_ids("--topic", "t_find", "--key", "order-1", "--limit", "2")
        self.assertEqual([r[0] for r in rows], ids[:2])
        rows = self.find_ids("--topic", "t_find", "--key", "order-1", "--limit", "1",
                             "--since", str(sent[4]["store_ms"]))
        self.assertEqual([r[0] for r in rows], ids[4:])

        # The other keys find their own messages; a prefix of a key finds nothing.
        rows = self.find_ids("--topic", "t_find", "--key", "other")
        self.assertEqual([r[0] for r in rows], [ids[3]])
        rows = self.find_ids("--topic", "t_find", "--key", "order-2")
        self.assertEqual([r[4] for r in rows], ["k2-%d" % i for i in range(5)])
        self.assertEqual(self.ok("message", "find", "--topic", "t_find", "--key", "order-"), "")
        doc = self.json_lines(self.ok("--json", "message", "find", "--topic", "t_find",
                                      "--key", "nobody"))[0]
        self.assertEqual(doc["messages"], [])

    def test_message_find_shortens_long_bodies(self):
        body = "x" * 50 + "é" * 40  # 130 bytes, multi-byte characters across the cut
        self.ok("send", "t_find_long", "--key", "long", body)
        rows = self.find_ids("--topic", "t_find_long", "--key", "long")
        self.assertEqual(len(rows), 1)
        shown = rows[0][4]
        self.assertTrue(shown.endswith("..."), shown)
        self.assertTrue(body.startswith(shown[:-3]), shown)
        self.assertLess(len(shown[:-3].encode()), len(body.encode()))
        self.assertGreater(len(shown[:-3]), 50)
        # --json carries the whole body.
        doc = self.json_lines(self.ok("--json", "message", "find", "--topic", "t_find_long",
                                      "--key", "long"))[0]
        self.assertEqual(doc["messages"][0]["body"], body)

    def test_message_find_unknown_topic_and_usage(self):
        code, out, err = self.ctl("message", "find", "--topic", "t_find_none", "--key", "k")
        self.assertEqual(code, 1, err)
        self.assertEqual(out, "")
        self.assertIn("message find", err)
        self.assertIn("ENOTFOUND", err)
        # Bad arguments are usage errors, found before connecting.
        dead = self.dead_broker()
        for args in (["--key", "k"], ["--topic", "t"],
                     ["--topic", "t", "--key", "k", "--limit", "0"],
                     ["--topic", "t", "--key", "k", "--limit", "1025"],
                     ["--topic", "t", "--key", "k", "--since", "yesterday"],
                     ["--topic", "t", "--key", "k", "--since", "2000", "--until", "1000"],
                     ["--topic", "t", "--key", "k", "extra"]):
            code, _, err = self.ctl("message", "find", *args, broker=dead)
            self.assertEqual(code, 2, "%s: %s" % (args, err))
            self.assertIn("Usage", err)
        code, out, _ = self.ctl("message", "--help", broker=dead)
        self.assertEqual(code, 0)
        self.assertIn("message find --topic T --key K", out)
        # The largest limit is accepted.
        self.ok("send", "t_find_lim", "--key", "k", "one")
        rows = self.find_ids("--topic", "t_find_lim", "--key", "k", "--limit", "1024")
        self.assertEqual([r[4] for r in rows], ["one"])

    # ---- exit codes ------------------------------------------------------------------------

    def test_usage_errors_exit_2_without_a_broker(self):
        dead = self.dead_broker()
        for args in (["bogus"], [], ["topic"], ["topic", "create"], ["consume", "t"],
                     ["consume", "t", "--group", "g", "--from", "yesterday"],
                     ["group", "reset", "g", "--topic", "t"], ["message", "get", "xyz"],
                     ["send"], ["send", "t", "--prop", "novalue", "b"], ["--nope", "topic"],
                     ["topic", "list", "--queues", "2"]):
            code, out, err = self.ctl(*args, broker=dead)
            self.assertEqual(code, 2, "%s: %s" % (args, err))
            self.assertIn("Usage", err)
        for args in (["--help"], ["topic", "--help"], ["send", "--help"], ["help", "consume"]):
            code, out, _ = self.ctl(*args, broker=dead)
            self.assertEqual(code, 0, args)
            self.assertIn("Usage", out)

    def dead_broker(self):
        """An address where nothing listens (a port that was just free)."""
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return "127.0.0.1:%d" % port

    def test_unreachable_broker_exits_3(self):
        dead = self.dead_broker()
        for args in (["topic", "list"], ["send", "t", "x"], ["consume", "t", "--group", "g"]):
            code, _, err = self.ctl(*args, broker=dead)
            self.assertEqual(code, 3, "%s: %s" % (args, err))
            self.assertIn("cannot connect", err)

    def test_unknown_topic_exits_1(self):
        code, out, err = self.ctl("topic", "describe", "no_such_topic")
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("topic describe", err)
        code, _, err = self.ctl("topic", "delete", "no_such_topic")
        self.assertEqual(code, 1)
        code, _, err = self.ctl("group", "describe", "no_such_group")
        self.assertEqual(code, 1)


class DelayedTest(unittest.TestCase):
    """Delayed messages through ferryctl, across a restart of ferryd."""

    def test_delay_and_deliver_at_survive_a_restart(self):
        tmp = tempfile.mkdtemp(prefix="ferry-delay-")
        data = os.path.join(tmp, "data")
        f = ferryd_test.Ferryd(data)
        try:
            f.wait_ready(component="native")
            broker = "127.0.0.1:%d" % f.ports["native"]

            def ctl(*args, check=0):
                r = subprocess.run([FERRYCTL, "--broker", broker] + list(args),
                                   capture_output=True, text=True, timeout=DEADLINE_S)
                self.assertEqual(r.returncode, check, r.stderr)
                return r.stdout

            ctl("topic", "create", "t_delay", "--queues", "1")
            t0 = time.time()
            out = ctl("send", "t_delay", "--delay", "3000ms", "in-3s")
            msgid, word, _ = out.split(" ", 2)
            self.assertRegex(msgid, MSGID)
            self.assertEqual(word, "scheduled")
            at = int((t0 + 4) * 1000)
            ctl("send", "t_delay", "--deliver-at", str(at), "at-4s")
            ctl("send", "t_delay", "now")
            # Only the undelayed one is there at first.
            out = ctl("consume", "t_delay", "--group", "g", "--from", "first", "--timeout", "300")
            self.assertEqual(out.splitlines(), ["now"])
            # (That check means something only if the delayed ones were not yet due.)
            self.assertLess(time.time() - t0, 3.0)
            # Restart while both are pending: they come after it, each in its time.
            self.assertEqual(f.stop(), 0)
            f.close()
            f = ferryd_test.Ferryd(data)
            f.wait_ready(component="native")
            broker = "127.0.0.1:%d" % f.ports["native"]
            out = ctl("consume", "t_delay", "--group", "g", "--count", "2", "--timeout", "10000")
            self.assertEqual(out.splitlines(), ["in-3s", "at-4s"])
            self.assertGreaterEqual(time.time() - t0, 4)
            # Bad values are refused by ferryctl (2) or the broker (1).
            ctl("send", "t_delay", "--delay", "soon", "x", check=2)
            ctl("send", "t_delay", "--delay", "365d", "x", check=1)
        finally:
            f.close()
            shutil.rmtree(tmp, ignore_errors=True)


class DeadLetterTest(unittest.TestCase):
    """consume --nack / --reject and the dlq commands, against a ferryd with short retries."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-dlq-")
        conf = os.path.join(cls.tmp, "ferry.conf")
        with open(conf, "w") as fh:
            fh.write("retry_delays 200ms\nmax_reconsume 2\n")
        cls.f = ferryd_test.Ferryd(os.path.join(cls.tmp, "data"), conf=conf)
        cls.f.wait_ready(component="native")
        cls.broker = "127.0.0.1:%d" % cls.f.ports["native"]

    @classmethod
    def tearDownClass(cls):
        cls.f.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    ctl = FerryctlTest.ctl
    ok = FerryctlTest.ok
    json_lines = FerryctlTest.json_lines
    dead_broker = FerryctlTest.dead_broker

    def dlq_count(self, group):
        doc = self.json_lines(self.ok("--json", "dlq", "list", group))
        self.assertEqual(len(doc), 1)
        self.assertEqual(doc[0]["group"], group)
        self.assertEqual(doc[0]["topic"], "%DLQ%" + group)
        return doc[0]["messages"]

    def wait_dlq_count(self, group, n):
        """The dead letter is written after the last nack: wait for it, with a deadline."""
        deadline = time.monotonic() + DEADLINE_S
        while self.dlq_count(group) != n:
            self.assertLess(time.monotonic(), deadline, "dlq of %s never held %d" % (group, n))
            time.sleep(0.05)

    def test_nack_retries_dead_letter_and_resend(self):
        self.ok("topic", "create", "t_dlq", "--queues", "1")
        # No dead-letter queue yet: said so, exit 0, and looking does not create one.
        doc = self.json_lines(self.ok("--json", "dlq", "list", "g_dlq"))[0]
        self.assertEqual((doc["exists"], doc["messages"]), (False, 0))
        self.assertIn("no dead-letter queue", self.ok("dlq", "list", "g_dlq"))
        code, out, err = self.ctl("dlq", "consume", "g_dlq", check=0)
        self.assertEqual(out, "")
        self.assertIn("no dead-letter queue", err)
        self.assertEqual(self.ok("dlq", "resend", "g_dlq"), "")
        self.assertNotIn("%DLQ%g_dlq", self.ok("topic", "list"))

        orig = self.ok("send", "t_dlq", "--tag", "TD", "--prop", "color=red", "poison").split()[0]
        # Failed three times: it comes back after the back-off with a growing reconsume count.
        t0 = time.monotonic()
        got = self.json_lines(self.ok("--json", "consume", "t_dlq", "--group", "g_dlq",
                                      "--from", "first", "--nack", "--count", "3",
                                      "--timeout", "10000"))
        self.assertGreaterEqual(time.monotonic() - t0, 0.4)  # two retries of 200 ms
        self.assertEqual([m["reconsume"] for m in got], [0, 1, 2])
        self.assertEqual([m["body"] for m in got], ["poison"] * 3)
        self.assertEqual([m["topic"] for m in got], ["t_dlq"] * 3)
        self.assertEqual([m["tag"] for m in got], ["TD"] * 3)
        self.assertEqual([m["properties"].get("color") for m in got], ["red"] * 3)
        self.assertEqual(got[0]["msgid"], orig)

        # The third failure passed max_reconsume 2: it is a dead letter, and not retried again.
        self.wait_dlq_count("g_dlq", 1)
        self.assertIn("1 dead letter in %DLQ%g_dlq (offsets 0 to 0)",
                      self.ok("dlq", "list", "g_dlq"))
        self.assertEqual(self.ok("consume", "t_dlq", "--group", "g_dlq", "--timeout", "700"), "")

        # dlq consume shows it with its original topic and reconsume 3, once.
        dead = self.json_lines(self.ok("--json", "dlq", "consume", "g_dlq", "--timeout", "5000"))
        self.assertEqual(len(dead), 1, dead)
        self.assertEqual((dead[0]["topic"], dead[0]["body"], dead[0]["reconsume"]),
                         ("t_dlq", "poison", 3))
        self.assertEqual((dead[0]["tag"], dead[0]["properties"]), ("TD", {"color": "red"}))
        self.assertEqual(self.ok("dlq", "consume", "g_dlq", "--timeout", "300"), "")
        self.assertEqual(self.dlq_count("g_dlq"), 1)  # inspecting does not remove it

        # dlq resend: one line, the new id and the original topic; only that copy is new.
        before_ms = int(time.time() * 1000)
        out = self.ok("dlq", "resend", "g_dlq", "--timeout", "5000")
        rows = [line.split() for line in out.splitlines()]
        self.assertEqual(len(rows), 1, out)
        new_id, topic = rows[0]
        self.assertRegex(new_id, MSGID)
        self.assertNotEqual(new_id, orig)
        self.assertEqual(topic, "t_dlq")
        fresh = self.json_lines(self.ok("--json", "consume", "t_dlq", "--group", "g_after",
                                        "--from", str(before_ms), "--count", "1",
                                        "--timeout", "5000"))
        self.assertEqual(len(fresh), 1)
        m = fresh[0]
        self.assertEqual((m["msgid"], m["topic"], m["body"]), (new_id, "t_dlq", "poison"))
        self.assertEqual((m["tag"], m["properties"], m["reconsume"]), ("TD", {"color": "red"}, 0))
        self.assertEqual(self.ok("consume", "t_dlq", "--group", "g_after", "--timeout", "500"), "")
        everything = self.json_lines(self.ok("--json", "consume", "t_dlq", "--group", "g_all",
                                             "--from", "first", "--count", "2",
                                             "--timeout", "5000"))
        self.assertEqual([x["msgid"] for x in everything], [orig, new_id])
        # Resent dead letters were acknowledged: a second resend sends nothing.
        self.assertEqual(self.ok("dlq", "resend", "g_dlq", "--timeout", "500"), "")

        # --reject: straight to the dead-letter queue, no retry. g_dlq gets the resent copy
        # and a new message.
        self.ok("send", "t_dlq", "poison-2")
        out = self.json_lines(self.ok("--json", "consume", "t_dlq", "--group", "g_dlq",
                                      "--reject", "--count", "2", "--timeout", "5000"))
        self.assertEqual([(x["body"], x["reconsume"]) for x in out],
                         [("poison", 0), ("poison-2", 0)])
        self.wait_dlq_count("g_dlq", 3)
        self.assertEqual(self.ok("consume", "t_dlq", "--group", "g_dlq", "--timeout", "700"), "")
        # The inspection group goes on after the letter it has seen.
        dead = self.json_lines(self.ok("--json", "dlq", "consume", "g_dlq", "--count", "2",
                                       "--timeout", "5000"))
        self.assertEqual([(x["body"], x["topic"], x["reconsume"]) for x in dead],
                         [("poison", "t_dlq", 1), ("poison-2", "t_dlq", 1)])
        self.assertEqual(self.ok("dlq", "consume", "g_dlq", "--timeout", "300"), "")

    def test_dlq_usage_errors_exit_2(self):
        dead = self.dead_broker()
        for args in (["dlq"], ["dlq", "list"], ["dlq", "bogus", "g"], ["dlq", "list", "g", "h"],
                     ["dlq", "list", "g", "--count", "1"], ["dlq", "consume", "g", "--count", "0"],
                     ["dlq", "resend", "g", "--timeout", "soon"], ["dlq", "consume", "g", "--nack"],
                     ["consume", "t", "--group", "g", "--nack", "--reject"],
                     ["consume", "t", "--group", "g", "--nack=1"]):
            code, _, err = self.ctl(*args, broker=dead)
            self.assertEqual(code, 2, "%s: %s" % (args, err))
            self.assertIn("Usage", err)
        code, out, _ = self.ctl("dlq", "--help", broker=dead)
        self.assertEqual(code, 0)
        self.assertIn("GROUP-dlq-inspect", out)
        self.assertIn("--reject", self.ctl("help", "consume", broker=dead)[1])
        self.assertIn("dlq resend", self.ctl("--help", broker=dead)[1])
        code, _, err = self.ctl("dlq", "list", "g", broker=dead)
        self.assertEqual(code, 3, err)



class GroupConfigTest(unittest.TestCase):
    """group config --max-reconsume, against a ferryd with retry_delays 200ms, max_reconsume 2,
    across a restart."""

    def test_max_reconsume_per_group_survives_a_restart(self):
        tmp = tempfile.mkdtemp(prefix="ferry-gconf-")
        data = os.path.join(tmp, "data")
        conf = os.path.join(tmp, "ferry.conf")
        with open(conf, "w") as fh:
            fh.write("retry_delays 200ms\nmax_reconsume 2\n")
        f = ferryd_test.Ferryd(data, conf=conf)
        try:
            f.wait_ready(component="native")
            broker = ["127.0.0.1:%d" % f.ports["native"]]

            def ctl(*args, check=0):
                r = subprocess.run([FERRYCTL, "--broker", broker[0]] + list(args),
                                   capture_output=True, text=True, timeout=DEADLINE_S)
                self.assertEqual(r.returncode, check, "%s: %s %s" % (args, r.stdout, r.stderr))
                return r.stdout

            def doc(*args):
                return json.loads(ctl("--json", *args).splitlines()[0])

            def dlq_count(group):
                return doc("dlq", "list", group)["messages"]

            # Unknown group: shown as not found; set on it: created, clustering, no members.
            ctl("group", "config", "g_strict", check=1)
            d = doc("group", "config", "g_strict", "--max-reconsume", "0")
            self.assertEqual(d, {"group": "g_strict", "mode": "clustering", "max_reconsume": 0,
                                 "max_reconsume_default": False})
            groups = doc("group", "list")["groups"]
            self.assertIn({"name": "g_strict", "mode": "clustering", "members": 0}, groups)
            out = ctl("group", "config", "g_strict")
            self.assertRegex(out, r"max_reconsume:\s+0 \(set for the group\)")
            # A group never configured follows the broker's default.
            ctl("topic", "create", "t_gc", "--queues", "1")
            ctl("send", "t_gc", "poison")
            ctl("consume", "t_gc", "--group", "g_loose", "--from", "first", "--count", "1")
            d = doc("group", "config", "g_loose")
            self.assertEqual((d["max_reconsume"], d["max_reconsume_default"]), (2, True))

            # Restart: the setting is kept.
            self.assertEqual(f.stop(), 0)
            f.close()
            f = ferryd_test.Ferryd(data, conf=conf)
            f.wait_ready(component="native")
            broker[0] = "127.0.0.1:%d" % f.ports["native"]
            d = doc("group", "describe", "g_strict")
            self.assertEqual((d["max_reconsume"], d["max_reconsume_default"]), (0, False))
            self.assertRegex(ctl("group", "describe", "g_strict"),
                             r"max_reconsume:\s+0 \(set for the group\)")

            # max_reconsume 0: the first failure is a dead letter, no retry; g_loose (the
            # broker's 2) gets it back twice.
            ctl("consume", "t_gc", "--group", "g_strict", "--from", "first", "--nack",
                "--count", "1")
            deadline = time.monotonic() + DEADLINE_S
            while dlq_count("g_strict") != 1:
                self.assertLess(time.monotonic(), deadline, "no dead letter for g_strict")
                time.sleep(0.05)
            self.assertEqual(ctl("consume", "t_gc", "--group", "g_strict", "--timeout", "700"),
                             "")
            got = [json.loads(x) for x in ctl(
                "--json", "consume", "t_gc", "--group", "g_loose2", "--from", "first",
                "--nack", "--count", "3", "--timeout", "10000").splitlines()]
            self.assertEqual([m["reconsume"] for m in got], [0, 1, 2])

            # Back to the broker's default.
            d = doc("group", "config", "g_strict", "--max-reconsume", "default")
            self.assertEqual((d["max_reconsume"], d["max_reconsume_default"]), (2, True))
            self.assertRegex(ctl("group", "config", "g_strict"),
                             r"max_reconsume:\s+2 \(the broker's default\)")

            # Usage errors exit 2, before any request.
            for args in (["group", "config"], ["group", "config", "g", "--max-reconsume", "65"],
                         ["group", "config", "g", "--max-reconsume", "-1"],
                         ["group", "config", "g", "--max-reconsume", "lots"],
                         ["group", "config", "g", "--topic", "t"],
                         ["group", "describe", "g", "--max-reconsume", "3"]):
                ctl(*args, check=2)
            # Bad names are the broker's refusal.
            ctl("group", "config", "bad name", "--max-reconsume", "3", check=1)
        finally:
            f.close()
            shutil.rmtree(tmp, ignore_errors=True)


class TransactionTest(unittest.TestCase):
    """tx send / commit / rollback / list, against a ferryd with short check-backs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-tx-")
        conf = os.path.join(cls.tmp, "ferry.conf")
        with open(conf, "w") as fh:
            fh.write("tx_check_after 2s\ntx_check_interval 200ms\ntx_max_checks 1\n")
        cls.f = ferryd_test.Ferryd(os.path.join(cls.tmp, "data"), conf=conf)
        cls.f.wait_ready(component="native")
        cls.broker = "127.0.0.1:%d" % cls.f.ports["native"]

    @classmethod
    def tearDownClass(cls):
        cls.f.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    ctl = FerryctlTest.ctl
    ok = FerryctlTest.ok
    json_lines = FerryctlTest.json_lines

    def pending(self):
        return {d["tx_id"]: d for d in self.json_lines(self.ok("--json", "tx", "list"))}

    def consume(self, topic, group):
        return self.ok("consume", topic, "--group", group, "--from", "first",
                       "--timeout", "300").splitlines()

    def test_send_commit_delivers_once(self):
        self.ok("topic", "create", "t_tx", "--queues", "1")
        out = self.ok("tx", "send", "t_tx", "paid", "--group", "pg_tx", "--tag", "TagT",
                      "--key", "order-1")
        tx_id = int(out.strip())
        self.assertIn(tx_id, self.pending())
        doc = self.pending()[tx_id]
        self.assertEqual((doc["group"], doc["topic"], doc["size"]), ("pg_tx", "t_tx", 4))
        self.assertRegex(doc["half_id"], MSGID)
        # A half message is not delivered.
        self.assertEqual(self.consume("t_tx", "g_tx"), [])
        out = self.ok("tx", "commit", str(tx_id))
        msgid, queue, offset = out.split()
        self.assertRegex(msgid, MSGID)
        self.assertEqual((int(queue), int(offset)), (0, 0))
        self.assertNotIn(tx_id, self.pending())
        self.assertEqual(self.consume("t_tx", "g_tx"), ["paid"])
        # Ended once: a second commit or a rollback finds nothing.
        code, _, err = self.ctl("tx", "commit", str(tx_id))
        self.assertEqual(code, 1, err)
        self.assertIn("no such pending transaction", err)
        self.assertEqual(self.ctl("tx", "rollback", str(tx_id))[0], 1)
        self.assertEqual(self.consume("t_tx", "g_tx"), [])
        # The key index has it, like any message.
        self.assertIn("paid", self.ok("message", "find", "--topic", "t_tx", "--key", "order-1"))

    def test_rollback_deletes(self):
        self.ok("topic", "create", "t_txr", "--queues", "1")
        doc = self.json_lines(self.ok("--json", "tx", "send", "t_txr", "undone"))[0]
        self.assertEqual(doc["group"], "ferryctl-tx")
        out = self.ok("tx", "rollback", str(doc["tx_id"]))
        self.assertIn("rolled back", out)
        self.assertNotIn(doc["tx_id"], self.pending())
        self.assertEqual(self.consume("t_txr", "g_txr"), [])

    def test_unanswered_half_is_rolled_back_by_the_broker(self):
        tx_id = int(self.ok("tx", "send", "t_txe", "forgotten", "--group", "nobody").strip())
        self.assertIn(tx_id, self.pending())
        deadline = time.monotonic() + DEADLINE_S
        while tx_id in self.pending():
            self.assertLess(time.monotonic(), deadline, "half never rolled back")
            time.sleep(0.1)
        self.assertIn("rolled back", self.f.output())
        self.assertEqual(self.consume("t_txe", "g_txe"), [])

    def test_tx_usage_errors_exit_2(self):
        for args in (["tx"], ["tx", "frob"], ["tx", "commit"], ["tx", "commit", "abc"],
                     ["tx", "send", "t_tx"], ["tx", "list", "--limit", "0"],
                     ["tx", "rollback", "1", "--group", "g"]):
            code, _, err = self.ctl(*args)
            self.assertEqual(code, 2, "%s: %s" % (args, err))


if __name__ == "__main__":
    ferryd_test.FERRYD = os.path.abspath(sys.argv[1])
    ferryd_test.SOURCE = os.path.abspath(sys.argv[3])
    FERRYCTL = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"])
