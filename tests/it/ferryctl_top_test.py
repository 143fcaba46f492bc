#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Integration tests of `ferryctl top` and of --json on every ferryctl command, against a real
# ferryd on free ports. top --json prints one document per screen with the API's overview,
# topics and groups: a topic fed during the run shows a rate, a group's lag is the API's, and a
# group that consumes while top runs shows a consume rate; the screen (without --json) has the
# topic and group tables; --once and --iterations exclude each other, bad values exit 2, an
# admin port nobody listens on exits 3. Every command with --json prints only lines that are
# JSON documents (topic, send, consume, group, message, dlq, tx, status, top, passwd).
# Usage: ferryctl_top_test.py PATH_TO_FERRYD PATH_TO_FERRYCTL SOURCE_DIR
import json
import os
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


class TopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-top-")
        cls.f = ferryd_test.Ferryd(os.path.join(cls.tmp, "data"))
        cls.f.wait_ready(component="native")
        cls.broker = "127.0.0.1:%d" % cls.f.ports["native"]
        cls.admin = "127.0.0.1:%d" % cls.f.admin_port
        cls.bg = []

    @classmethod
    def tearDownClass(cls):
        for p in cls.bg:
            if p.poll() is None:
                p.kill()
            p.wait()
        code = cls.f.stop()  # SIGTERM: 0 unless something went wrong (a sanitizer report)
        out = cls.f.output()
        cls.f.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if code != 0:
            raise AssertionError("ferryd exited with %s after SIGTERM:\n%s" % (code, out[-4000:]))

    def ctl(self, *args, stdin=None, check=0):
        cmd = [FERRYCTL, "--broker", self.broker, "--admin", self.admin] + list(args)
        r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=DEADLINE_S)
        if check is not None:
            self.assertEqual(r.returncode, check, "%s\nstdout: %s\nstderr: %s" %
                             (" ".join(cmd), r.stdout, r.stderr))
        return r

    def json_lines(self, out, what):
        docs = []
        for line in out.splitlines():
            try:
                docs.append(json.loads(line))
            except ValueError:
                self.fail("%s: not a JSON line: %r" % (what, line))
        return docs

    def api(self, path):
        status, body = self.f.get(path)
        self.assertEqual(status, 200, body)
        return body

    def feeder(self, topic, n, period_s):
        """ferryctl send TOPIC reading one line every period_s, n lines: a steady producer."""
        p = subprocess.Popen([FERRYCTL, "--broker", self.broker, "send", topic],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.bg.append(p)
        return p

    def test_top_json_rates_and_lag(self):
        self.ctl("send", "t_top", stdin="".join("m%d\n" % i for i in range(30)))
        self.ctl("consume", "t_top", "--group", "g_top", "--from", "first", "--count", "10")
        top = subprocess.Popen([FERRYCTL, "--admin", self.admin, "--json", "top", "--iterations",
                                "5", "--interval", "1s"], stdout=subprocess.PIPE, text=True)
        self.bg.append(top)
        feed = self.feeder("t_feed", 0, 0)
        # ~40 messages a second on t_feed for the whole run; the group consumes 20 at ~1.5 s.
        end = time.monotonic() + 4.5
        consumed = False
        i = 0
        while time.monotonic() < end:
            feed.stdin.write("tick %d\n" % i)
            feed.stdin.flush()
            i += 1
            if not consumed and time.monotonic() > end - 3.0:
                self.ctl("consume", "t_top", "--group", "g_top", "--count", "20")
                consumed = True
            time.sleep(0.025)
        out, _ = top.communicate(timeout=DEADLINE_S)
        self.assertEqual(top.returncode, 0)
        feed.stdin.close()
        feed.wait(timeout=DEADLINE_S)
        frames = self.json_lines(out, "top --json")
        self.assertEqual(len(frames), 5, out)
        for fr in frames:
            self.assertEqual(set(fr), {"time_ms", "overview", "topics", "groups"})
            self.assertIn("in_per_s", fr["overview"]["messages"])
        last = frames[-1]
        feed_rates = [t["in_per_s"] for fr in frames for t in fr["topics"] if t["name"] == "t_feed"]
        self.assertTrue(feed_rates and max(feed_rates) > 10, feed_rates)
        t_top = [t for t in last["topics"] if t["name"] == "t_top"][0]
        self.assertEqual((t_top["messages"], t_top["messages_in"]), (30, 30))
        g = [x for x in last["groups"] if x["name"] == "g_top"][0]
        self.assertEqual(g["lag"], self.api("/api/v1/groups/g_top")["lag"])
        self.assertEqual(g["lag"], 0)
        rates = [x["consumed_per_s"] for fr in frames for x in fr["groups"] if x["name"] == "g_top"]
        self.assertTrue(max(rates) > 0, "g_top consumed 20 while top ran: %r" % rates)
        self.assertFalse(any(t["name"].startswith("%") for t in last["topics"]))

    def test_top_screen(self):
        self.ctl("send", "t_screen", "x")
        self.ctl("consume", "t_screen", "--group", "g_screen", "--from", "first", "--count", "1")
        out = self.ctl("top", "--once").stdout
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("ferry "), out)
        self.assertTrue(any(l.split()[:1] == ["TOPIC"] for l in lines), out)
        self.assertTrue(any(l.split()[:1] == ["GROUP"] for l in lines), out)
        row = [l.split() for l in lines if l.split()[:1] == ["t_screen"]]
        self.assertEqual(row[0][1:3], ["8", "1"], out)  # queues, stored
        grow = [l.split() for l in lines if l.split()[:1] == ["g_screen"]]
        self.assertEqual(grow[0][1:4], ["clustering", "0", "0"], out)  # mode, members, lag
        self.assertNotIn("\033[", out, "no terminal control codes when stdout is not a terminal")
        internal = self.ctl("top", "--once", "--internal").stdout
        self.assertIn("%RETRY%g_screen", internal)
        limited = self.ctl("top", "--once", "--internal", "--limit", "1").stdout
        self.assertIn("more topics", limited)

    def test_top_usage_and_connection_errors(self):
        for args in (["help", "top"], ["top", "--help"]):
            out = self.ctl(*args).stdout
            self.assertIn("--iterations N", out, args)
        for args in (["top", "--once", "--iterations", "2"], ["top", "--interval", "5ms"],
                     ["top", "--iterations", "0"], ["top", "extra"], ["top", "--frob"],
                     ["top", "--limit", "x"]):
            r = self.ctl(*args, check=None)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        r = subprocess.run([FERRYCTL, "--admin", "127.0.0.1:%d" % port, "top", "--once"],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 3, r.stderr)

    def test_json_on_every_command(self):
        sent = self.json_lines(self.ctl("--json", "send", "t_all", "--key", "ka", "body").stdout,
                               "send")
        msgid = sent[0]["msgid"]
        pw = os.path.join(self.tmp, "passwd")
        cmds = [
            ["topic", "create", "t_all2", "--queues", "2"],
            ["topic", "list"],
            ["topic", "describe", "t_all2"],
            ["consume", "t_all", "--group", "g_all", "--from", "first", "--count", "1"],
            ["send", "t_all", "--key", "kb", "second"],
            ["consume", "t_all", "--group", "g_all", "--count", "1", "--reject"],
            ["group", "list"],
            ["group", "describe", "g_all"],
            ["group", "config", "g_all", "--max-reconsume", "3"],
            ["group", "reset", "g_all", "--topic", "t_all", "--to", "0"],
            ["message", "get", msgid],
            ["message", "find", "--topic", "t_all", "--key", "ka"],
            ["dlq", "list", "g_all"],
            ["dlq", "consume", "g_all", "--count", "1", "--timeout", "5000"],
            ["dlq", "resend", "g_all", "--count", "1", "--timeout", "5000"],
            ["tx", "send", "t_all", "half"],
            ["tx", "list"],
            ["status"],
            ["top", "--once"],
            ["topic", "delete", "t_all2"],
        ]
        for c in cmds:
            r = self.ctl("--json", *c)
            docs = self.json_lines(r.stdout, " ".join(c))
            self.assertTrue(docs, "%s printed nothing" % c)
        tx = self.json_lines(self.ctl("--json", "tx", "send", "t_all", "h2").stdout, "tx send")[0]
        self.json_lines(self.ctl("--json", "tx", "commit", str(tx["tx_id"])).stdout, "tx commit")
        tx = self.json_lines(self.ctl("--json", "tx", "send", "t_all", "h3").stdout, "tx send")[0]
        self.json_lines(self.ctl("--json", "tx", "rollback", str(tx["tx_id"])).stdout,
                        "tx rollback")
        r = self.ctl("--json", "passwd", pw, "u1", stdin="secret\n")
        self.assertEqual(self.json_lines(r.stdout, "passwd"),
                         [{"file": pw, "user": "u1", "deleted": False}])
        r = self.ctl("--json", "passwd", "-D", pw, "u1")
        self.assertEqual(self.json_lines(r.stdout, "passwd -D"),
                         [{"file": pw, "user": "u1", "deleted": True}])


if __name__ == "__main__":
    ferryd_test.FERRYD = os.path.abspath(sys.argv[1])
    ferryd_test.SOURCE = os.path.abspath(sys.argv[3])
    FERRYCTL = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"])
