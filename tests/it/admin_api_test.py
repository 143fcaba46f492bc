#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# The admin HTTP API (docs/admin-api.md) and /metrics against a real ferryd on free ports, with
# real traffic: ferryctl (native protocol) for sends, consumes and dead letters, paho for MQTT,
# tests/it/nativeproto.py for a bare native connection. Every route is called, with its errors
# (400 bad input, 404 unknown, 405 method, 409 exists, 413 body too large); malformed bodies
# never take the broker down. /metrics is parsed by a small Prometheus text-format parser and
# its values are checked against the traffic the test made.
# Usage: admin_api_test.py PATH_TO_FERRYD PATH_TO_FERRYCTL SOURCE_DIR, with FERRY_FILL_STORE the
# path of tests/torture/fill_store (a store made through the store API).
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

FERRYD = FERRYCTL = SOURCE = None
DEADLINE_S = 15


def wait_for(cond, what, timeout=DEADLINE_S):
    """Polls cond() until it returns a true value; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# ---- Prometheus text format 0.0.4 ------------------------------------------------------------

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise ValueError("bad labels: " + text)
        labels[m.group(1)] = (m.group(2).replace('\\n', '\n').replace('\\"', '"')
                              .replace('\\\\', '\\'))
        pos = m.end()
    return labels


def parse_prometheus(text):
    """Returns (types, samples): types maps a family to its TYPE, samples is a list of
    (name, labels, value). Raises ValueError on any line that breaks the format."""
    types, helps, samples = {}, set(), []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            helps.add(line.split(" ", 3)[2])
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            if typ not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError("bad type: " + line)
            if name in types:
                raise ValueError("TYPE twice: " + line)
            types[name] = typ
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise ValueError("bad sample line: " + line)
        v = m.group(4)
        value = math.inf if v == "+Inf" else float(v)
        samples.append((m.group(1), parse_labels(m.group(3) or ""), value))
    for name, _, _ in samples:
        fam = re.sub(r'_(bucket|sum|count)$', '', name) if name not in types else name
        if fam not in types:
            raise ValueError("sample without TYPE: " + name)
        if fam not in helps:
            raise ValueError("family without HELP: " + fam)
    return types, samples


def value(samples, name, **labels):
    found = [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]
    return sum(found) if found else None


# ---- ferryd ----------------------------------------------------------------------------------


class Ferryd:
    """A ferryd child on free ports in its own data directory; always stopped by PID."""

    def __init__(self, tmp, extra=()):
        self.log_path = os.path.join(tmp, "ferryd.log")
        self.log = open(self.log_path, "w+")
        args = [FERRYD, "--data-dir", os.path.join(tmp, "data"), "--admin-port", "0", "--port",
                "0", "--mqtt-port", "0", "--amqp-port", "0"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        out = wait_for(self._ready, "ferryd ready")
        self.ports = {m.group(1): int(m.group(2)) for m in re.finditer(
            r'INFO (\w+) addr=\S+ port=(\d+) msg="[\w ]*listening"', out)}

    def _ready(self):
        with open(self.log_path) as f:
            out = f.read()
        if self.proc.poll() is not None:
            raise AssertionError("ferryd exited with %d:\n%s" % (self.proc.returncode, out))
        return out if 'msg="ready"' in out else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("ferryd did not stop in time")
        self.log.close()
        return self.proc.returncode


class AdminApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-admin-")
        cls.f = Ferryd(cls.tmp)
        cls.base = "http://127.0.0.1:%d" % cls.f.ports["admin"]
        cls.broker = "127.0.0.1:%d" % cls.f.ports["native"]

    @classmethod
    def tearDownClass(cls):
        rc = cls.f.stop()
        with open(cls.f.log_path) as f:
            log = f.read()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, "ferryd exited with %d:\n%s" % (rc, log[-20000:])

    # -- helpers --

    def http(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=DEADLINE_S) as r:
                text = r.read()
                status, ctype = r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            text, status, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        if path == "/metrics":
            return status, text.decode()
        self.assertEqual(ctype, "application/json", (method, path, text))
        doc = json.loads(text)
        if status >= 400:
            # Every error is {status, error} with the status of the reply.
            self.assertEqual(doc["status"], status)
            self.assertIsInstance(doc["error"], str)
            self.assertTrue(doc["error"])
        return status, doc

    def get(self, path):
        return self.http("GET", path)

    def ctl(self, *args, stdin=None):
        r = subprocess.run([FERRYCTL, "--broker", self.broker] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=DEADLINE_S * 2)
        self.assertEqual(r.returncode, 0, (args, r.stdout, r.stderr))
        return r.stdout

    def send(self, topic, n, key=None, prefix="m"):
        """Sends n messages; returns their ids (ferryctl --json)."""
        args = ["--json", "send", topic] + (["--key", key] if key else [])
        out = self.ctl(*args, stdin="".join("%s%d\n" % (prefix, i) for i in range(n)))
        return [json.loads(l)["msgid"] for l in out.splitlines()]

    def metrics(self):
        status, text = self.http("GET", "/metrics")
        self.assertEqual(status, 200)
        return parse_prometheus(text)

    # -- overview, config, health --

    def test_overview(self):
        self.send("ov", 3)
        status, o = self.get("/api/v1/overview")
        self.assertEqual(status, 200)
        self.assertRegex(o["version"], r"^\d+\.\d+\.\d+$")
        self.assertGreaterEqual(o["uptime_s"], 0)
        self.assertTrue(o["store_healthy"])
        self.assertEqual(o["flush"], "async")
        self.assertGreaterEqual(o["counts"]["topics"], 1)
        self.assertGreaterEqual(o["messages"]["in"], 3)
        self.assertEqual(set(o["connections"]), {"native", "mqtt", "amqp"})
        self.assertGreater(o["resident_memory_bytes"], 0)
        # Rates come from samples every 250 ms: after a burst, the in rate becomes non-zero.
        self.send("ov", 50)
        wait_for(lambda: self.get("/api/v1/overview")[1]["messages"]["in_per_s"] > 0, "a rate")
        self.assertEqual(self.http("POST", "/api/v1/overview", {})[0], 405)

    def test_config(self):
        status, c = self.get("/api/v1/config")
        self.assertEqual(status, 200)
        self.assertEqual(c["sections"][""]["flush"], "async")
        self.assertEqual(c["sections"]["mqtt"]["port"], "0")
        self.assertIn("[admin]", c["text"])
        self.assertIn("log_file stderr", c["text"])
        self.assertEqual(self.http("DELETE", "/api/v1/config")[0], 405)

    def test_unknown_routes_and_methods(self):
        for path in ("/api/v1/nope", "/api/v1/", "/api/v2/topics", "/nope",
                     "/api/v1/topics/a/b/c", "/api/v1/groups/g/nope"):
            self.assertEqual(self.get(path)[0], 404, path)
        self.assertEqual(self.http("PUT", "/api/v1/topics", {})[0], 405)
        self.assertEqual(self.http("DELETE", "/api/v1/groups")[0], 405)
        self.assertEqual(self.http("POST", "/health", {})[0], 405)

    # -- topics --

    def test_topics_create_list_describe_delete(self):
        status, t = self.http("POST", "/api/v1/topics", {"name": "crud", "queues": 3})
        self.assertEqual(status, 201)
        self.assertEqual((t["name"], t["queues"]), ("crud", 3))
        self.assertEqual(self.http("POST", "/api/v1/topics", {"name": "crud", "queues": 3})[0], 409)
        names = [x["name"] for x in self.get("/api/v1/topics")[1]["topics"]]
        self.assertIn("crud", names)
        status, d = self.get("/api/v1/topics/crud")
        self.assertEqual(status, 200)
        self.assertEqual([(q["queue"], q["min_offset"], q["max_offset"]) for q in d["queues"]],
                         [(0, 0, 0), (1, 0, 0), (2, 0, 0)])
        self.assertEqual(self.http("DELETE", "/api/v1/topics/crud")[0], 200)
        self.assertEqual(self.get("/api/v1/topics/crud")[0], 404)
        self.assertEqual(self.http("DELETE", "/api/v1/topics/crud")[0], 404)
        self.assertEqual(self.http("PUT", "/api/v1/topics/ov", {})[0], 405)

    def test_topics_bad_input(self):
        cases = [
            ({"name": "bad name!"}, 400),
            ({"name": "x" * 200}, 400),
            ({"queues": 2}, 400),
            ({"name": "q", "queues": 5000}, 400),
            ({"name": "q", "queues": -1}, 400),
            ({"name": "q", "queues": "8"}, 400),
            ({"name": 5}, 400),
            ([1, 2], 400),
        ]
        for body, code in cases:
            self.assertEqual(self.http("POST", "/api/v1/topics", body)[0], code, body)
        for raw in (b"", b"{", b"nul", b"{\"name\": \"a\", \"name\": \"b\"}", b"\xff\xfe",
                    b"[" * 5000, b"{\"name\": \"\\ud800\"}"):
            self.assertEqual(self.http("POST", "/api/v1/topics", raw=raw)[0], 400, raw)
        # Over the API's 64 KiB body limit.
        big = json.dumps({"name": "big", "pad": "x" * 70000}).encode()
        self.assertEqual(self.http("POST", "/api/v1/topics", raw=big)[0], 413)
        self.assertEqual(self.get("/api/v1/topics/big")[0], 404)
        self.assertEqual(self.get("/health")[0], 200)

    def test_topic_offsets_and_counters_follow_traffic(self):
        self.http("POST", "/api/v1/topics", {"name": "offs", "queues": 1})
        self.send("offs", 7)
        d = self.get("/api/v1/topics/offs")[1]
        self.assertEqual(d["queues"], [{"queue": 0, "min_offset": 0, "max_offset": 7,
                                        "messages": 7}])
        self.assertEqual(d["messages"], 7)
        self.assertEqual(d["counters"]["native"]["messages_in"], 7)
        self.assertEqual(d["counters"]["native"]["messages_out"], 0)
        listed = {x["name"]: x for x in self.get("/api/v1/topics")[1]["topics"]}
        self.assertEqual(listed["offs"]["messages"], 7)

    def test_topic_names_are_url_decoded(self):
        self.send("dlqname", 1)
        self.ctl("consume", "dlqname", "--group", "gname", "--from", "first", "--count", "1",
                 "--reject")
        wait_for(lambda: self.get("/api/v1/topics/%25DLQ%25gname")[0] == 200, "the DLQ topic")
        internal = [x["name"] for x in self.get("/api/v1/topics?internal=true")[1]["topics"]]
        self.assertIn("%DLQ%gname", internal)
        self.assertNotIn("%DLQ%gname",
                         [x["name"] for x in self.get("/api/v1/topics")[1]["topics"]])

    # -- groups --

    def test_groups_describe_lag_config_reset(self):
        self.http("POST", "/api/v1/topics", {"name": "gt", "queues": 2})
        self.send("gt", 6)
        self.ctl("consume", "gt", "--group", "gg", "--from", "first", "--count", "6")
        wait_for(lambda: self.get("/api/v1/groups/gg")[1].get("lag") == 0, "lag 0")
        self.send("gt", 4)
        status, g = self.get("/api/v1/groups/gg")
        self.assertEqual(status, 200)
        self.assertEqual(g["mode"], "clustering")
        self.assertEqual(g["members"], [])
        self.assertEqual(g["lag"], 4)
        gt = [q for q in g["queues"] if q["topic"] == "gt"]
        self.assertEqual(sum(q["committed"] for q in gt), 6)
        self.assertEqual(sum(q["max_offset"] for q in gt), 10)
        self.assertEqual(sum(q["lag"] for q in gt), 4)
        listed = {x["name"]: x for x in self.get("/api/v1/groups")[1]["groups"]}
        self.assertEqual(listed["gg"]["lag"], 4)
        self.assertEqual(listed["gg"]["members"], 0)

        # config: own value, out of range, back to the broker's
        status, c = self.http("PUT", "/api/v1/groups/gg/config", {"max_reconsume": 3})
        self.assertEqual((status, c["max_reconsume"], c["max_reconsume_effective"]), (200, 3, 3))
        self.assertEqual(self.get("/api/v1/groups/gg")[1]["config"]["max_reconsume"], 3)
        self.assertEqual(self.http("PUT", "/api/v1/groups/gg/config", {"max_reconsume": 65})[0],
                         400)
        self.assertEqual(self.http("PUT", "/api/v1/groups/gg/config", {"other": 1})[0], 400)
        self.assertEqual(self.http("PUT", "/api/v1/groups/gg/config", raw=b"{x")[0], 400)
        self.assertEqual(self.http("PUT", "/api/v1/groups/bad!/config",
                                   {"max_reconsume": 1})[0], 400)
        status, c = self.http("PUT", "/api/v1/groups/gg/config", {"max_reconsume": "default"})
        self.assertEqual((status, c["max_reconsume"]), (200, None))
        self.assertEqual(self.http("POST", "/api/v1/groups/gg/config", {})[0], 405)

        # reset to the earliest message: lag = everything stored
        status, r = self.http("POST", "/api/v1/groups/gg/reset", {"topic": "gt", "to": "earliest"})
        self.assertEqual(status, 200)
        self.assertEqual(sorted((q["queue"], q["offset"]) for q in r["queues"]), [(0, 0), (1, 0)])
        self.assertEqual(self.get("/api/v1/groups/gg")[1]["lag"], 10)
        status, r = self.http("POST", "/api/v1/groups/gg/reset",
                              {"topic": "gt", "to": int(time.time() * 1000) + 60000})
        self.assertEqual(status, 200)
        self.assertEqual(self.get("/api/v1/groups/gg")[1]["lag"], 0)
        for body in ({"topic": "gt"}, {"to": 0}, {"topic": "gt", "to": -5},
                     {"topic": "gt", "to": "yesterday"}):
            self.assertEqual(self.http("POST", "/api/v1/groups/gg/reset", body)[0], 400, body)
        self.assertEqual(self.http("POST", "/api/v1/groups/nogroup/reset",
                                   {"topic": "gt", "to": 0})[0], 404)
        self.assertEqual(self.http("POST", "/api/v1/groups/gg/reset",
                                   {"topic": "nosuchtopic", "to": 0})[0], 404)
        self.assertEqual(self.http("GET", "/api/v1/groups/gg/reset")[0], 405)
        self.assertEqual(self.get("/api/v1/groups/nogroup")[0], 404)
        self.assertEqual(self.http("DELETE", "/api/v1/groups/gg")[0], 405)

    # -- messages --

    def test_messages_by_id_and_key(self):
        ids = self.send("keyed", 3, key="order-7", prefix="body")
        self.send("keyed", 2, key="order-8")
        status, m = self.get("/api/v1/messages/" + ids[1])
        self.assertEqual(status, 200)
        self.assertEqual((m["msgid"], m["topic"], m["body"], m["keys"]),
                         (ids[1], "keyed", "body1", ["order-7"]))
        status, found = self.get("/api/v1/messages?topic=keyed&key=order-7")
        self.assertEqual(status, 200)
        self.assertEqual([x["msgid"] for x in found["messages"]], ids)
        self.assertEqual(len(self.get("/api/v1/messages?topic=keyed&key=order-7&limit=2")[1]
                             ["messages"]), 2)
        since = m["store_ms"]
        self.assertTrue(all(x["store_ms"] >= since for x in self.get(
            "/api/v1/messages?topic=keyed&key=order-7&since=%d" % since)[1]["messages"]))
        self.assertEqual(self.get("/api/v1/messages?topic=keyed&key=order-7&until=1")[1]
                         ["messages"], [])
        self.assertEqual(self.get("/api/v1/messages/xyz")[0], 400)
        self.assertEqual(self.get("/api/v1/messages/" + "0" * 31 + "f")[0], 404)
        self.assertEqual(self.get("/api/v1/messages/00000000ffff00000000000000000000")[0], 404)
        self.assertEqual(self.get("/api/v1/messages?topic=keyed")[0], 400)
        self.assertEqual(self.get("/api/v1/messages?topic=nosuch&key=k")[0], 404)
        self.assertEqual(self.get("/api/v1/messages?topic=keyed&key=k&limit=0")[0], 400)
        self.assertEqual(self.get("/api/v1/messages?topic=keyed&key=k&limit=x")[0], 400)
        self.assertEqual(self.get("/api/v1/messages?topic=keyed&key=k&since=-1")[0], 400)
        self.assertEqual(self.http("DELETE", "/api/v1/messages/" + ids[0])[0], 405)

    # -- dead letters --

    def test_dlq_list_and_resend(self):
        ids = self.send("work", 2, prefix="job")
        self.ctl("consume", "work", "--group", "wg", "--from", "first", "--count", "2", "--reject")
        dlq = wait_for(lambda: (lambda d: d if len(d["messages"]) == 2 else None)(
            self.get("/api/v1/groups/wg/dlq")[1]), "two dead letters")
        self.assertEqual((dlq["topic"], dlq["exists"], dlq["min_offset"], dlq["max_offset"]),
                         ("%DLQ%wg", True, 0, 2))
        self.assertEqual(sorted(m["body"] for m in dlq["messages"]), ["job0", "job1"])
        self.assertTrue(all(m["topic"] == "work" and m["reconsume"] == 1
                            for m in dlq["messages"]))
        self.assertEqual(len(self.get("/api/v1/groups/wg/dlq?from=1&limit=5")[1]["messages"]), 1)
        before = self.get("/api/v1/topics/work")[1]["messages"]
        dead = dlq["messages"][0]
        status, r = self.http("POST", "/api/v1/groups/wg/dlq/resend", {"msgids": [dead["msgid"]]})
        self.assertEqual(status, 200)
        self.assertEqual(r["resent"][0]["msgid"], dead["msgid"])
        new = self.get("/api/v1/messages/" + r["resent"][0]["new_msgid"])[1]
        self.assertEqual((new["topic"], new["body"], new["reconsume"]), ("work", dead["body"], 0))
        self.assertEqual(self.get("/api/v1/topics/work")[1]["messages"], before + 1)
        # errors
        self.assertEqual(self.http("POST", "/api/v1/groups/wg/dlq/resend", {"msgids": []})[0], 400)
        self.assertEqual(self.http("POST", "/api/v1/groups/wg/dlq/resend", {"msgids": ["zz"]})[0],
                         400)
        self.assertEqual(self.http("POST", "/api/v1/groups/wg/dlq/resend", {"msgids": ids})[0],
                         404)  # ids of the topic, not of the DLQ
        self.assertEqual(self.http("POST", "/api/v1/groups/nogroup/dlq/resend",
                                   {"msgids": [dead["msgid"]]})[0], 404)
        self.assertEqual(self.get("/api/v1/groups/nogroup/dlq")[0], 404)
        self.assertEqual(self.get("/api/v1/groups/wg/dlq?limit=100000")[0], 400)
        self.assertEqual(self.http("DELETE", "/api/v1/groups/wg/dlq")[0], 405)
        self.assertEqual(self.get("/api/v1/groups/wg/dlq/resend")[0], 405)
        # a group without dead letters: an empty list
        self.send("fine", 1)
        self.ctl("consume", "fine", "--group", "okg", "--from", "first", "--count", "1")
        status, d = self.get("/api/v1/groups/okg/dlq")
        self.assertEqual((status, d["exists"], d["messages"]), (200, False, []))

    # -- connections --

    def test_connections_mqtt_list_and_kick(self):
        import paho.mqtt.client as mqtt
        got = threading.Event()
        gone = threading.Event()
        c = mqtt.Client(client_id="dev-42", protocol=mqtt.MQTTv5)
        c.on_subscribe = lambda *a: got.set()
        reasons = []
        c.on_disconnect = lambda client, userdata, rc, props=None: (reasons.append(rc), gone.set())
        c.connect("127.0.0.1", self.f.ports["mqtt"])
        c.loop_start()
        try:
            c.subscribe("sensors/#", qos=1)
            self.assertTrue(got.wait(DEADLINE_S))
            conns = self.get("/api/v1/connections/mqtt")[1]["connections"]
            mine = [x for x in conns if x["client_id"] == "dev-42"]
            self.assertEqual(len(mine), 1, conns)
            self.assertEqual(mine[0]["subscriptions"], 1)
            self.assertEqual(mine[0]["inflight"], 0)
            self.assertRegex(mine[0]["remote"], r"^127\.0\.0\.1:\d+$")
            everything = self.get("/api/v1/connections")[1]["connections"]
            self.assertIn("dev-42", [x["client_id"] for x in everything["mqtt"]])
            self.assertEqual(set(everything), {"native", "mqtt", "amqp"})
            status, k = self.http("DELETE", "/api/v1/connections/mqtt/%d" % mine[0]["id"])
            self.assertEqual((status, k["kicked"]), (200, True))
            self.assertTrue(gone.wait(DEADLINE_S), "the client saw its connection closed")
            self.assertEqual(int(getattr(reasons[0], "value", reasons[0])), 0x98)  # admin action
            wait_for(lambda: "dev-42" not in [x["client_id"] for x in self.get(
                "/api/v1/connections/mqtt")[1]["connections"]], "the kicked client gone")
        finally:
            c.disconnect()
            c.loop_stop()
        self.assertEqual(self.http("DELETE", "/api/v1/connections/mqtt/999999")[0], 404)
        self.assertEqual(self.http("DELETE", "/api/v1/connections/mqtt/x1")[0], 400)
        self.assertEqual(self.get("/api/v1/connections/smtp")[0], 404)
        self.assertEqual(self.http("POST", "/api/v1/connections/mqtt", {})[0], 405)
        self.assertEqual(self.http("GET", "/api/v1/connections/mqtt/1")[0], 405)

    def test_connections_amqp_list_and_kick(self):
        from proton.utils import BlockingConnection
        conn = BlockingConnection("amqp://127.0.0.1:%d" % self.f.ports["amqp"], timeout=DEADLINE_S)
        try:
            rcv = conn.create_receiver("amqpk", credit=10)
            conns = wait_for(lambda: [x for x in self.get("/api/v1/connections/amqp")[1]
                                      ["connections"] if x["subscriptions"] == 1],
                             "the AMQP receiver listed")
            self.assertEqual(len(conns), 1, conns)
            self.assertTrue(conns[0]["client_id"])  # the container id
            self.assertEqual(self.http("DELETE", "/api/v1/connections/amqp/%d" %
                                       conns[0]["id"])[0], 200)
            with self.assertRaises(Exception):  # closed by the broker: amqp:connection:forced
                rcv.receive(timeout=DEADLINE_S)
            wait_for(lambda: self.get("/api/v1/connections/amqp")[1]["connections"] == [],
                     "the kicked AMQP connection gone")
        finally:
            try:
                conn.close()
            except Exception:
                pass
        self.assertEqual(self.http("DELETE", "/api/v1/connections/amqp/999999")[0], 404)

    def test_connections_native_list_and_kick(self):
        sys.path.insert(0, os.path.join(SOURCE, "tests", "it"))
        import nativeproto
        conn = nativeproto.Conn(self.f.ports["native"])
        try:
            conn.hello(b"native-tool")
            conns = self.get("/api/v1/connections/native")[1]["connections"]
            mine = [x for x in conns if x["client_id"] == "native-tool"]
            self.assertEqual(len(mine), 1, conns)
            self.assertEqual(self.http("DELETE", "/api/v1/connections/native/%d" %
                                       mine[0]["id"])[0], 200)
            conn.sock.settimeout(DEADLINE_S)
            self.assertEqual(conn.sock.recv(1), b"", "the socket is closed by the broker")
        finally:
            conn.close()

    # -- metrics --

    def test_metrics_match_traffic(self):
        import paho.mqtt.client as mqtt
        self.http("POST", "/api/v1/topics", {"name": "mt", "queues": 1})
        self.send("mt", 5, prefix="x")
        self.ctl("consume", "mt", "--group", "mg", "--from", "first", "--count", "5")
        wait_for(lambda: self.get("/api/v1/groups/mg")[1]["lag"] == 0, "mg consumed all")
        self.send("mt", 2, prefix="y")  # not consumed: lag 2
        # MQTT: 4 QoS 1 publishes to native topic "mqm" (first level), waited for their PUBACK.
        c = mqtt.Client(client_id="metrics-pub", protocol=mqtt.MQTTv311)
        c.connect("127.0.0.1", self.f.ports["mqtt"])
        c.loop_start()
        try:
            infos = [c.publish("mqm/a", b"hello", qos=1) for _ in range(4)]
            for i in infos:
                i.wait_for_publish(DEADLINE_S)
                self.assertTrue(i.is_published())
            types, s = self.metrics()
            self.assertGreaterEqual(value(s, "ferry_connections", protocol="mqtt"), 1)
        finally:
            c.disconnect()
            c.loop_stop()

        self.assertEqual(types["ferry_messages_in_total"], "counter")
        self.assertEqual(types["ferry_store_commit_seconds"], "histogram")
        self.assertEqual(value(s, "ferry_messages_in_total", topic="mt", protocol="native"), 7)
        self.assertEqual(value(s, "ferry_messages_out_total", topic="mt", protocol="native"), 5)
        self.assertEqual(value(s, "ferry_messages_in_total", topic="mqm", protocol="mqtt"), 4)
        self.assertIsNone(value(s, "ferry_messages_in_total", topic="mqm", protocol="native"))
        rec = self.get("/api/v1/topics/mt")[1]["counters"]["native"]
        self.assertEqual(value(s, "ferry_bytes_in_total", topic="mt", protocol="native"),
                         rec["bytes_in"])
        self.assertGreater(rec["bytes_in"], 7 * len("x0"))
        self.assertEqual(value(s, "ferry_group_lag", group="mg", topic="mt"), 2)
        self.assertEqual(value(s, "ferry_group_members", group="mg"), 0)
        # histograms: cumulative buckets, +Inf = _count, batch sum = messages written
        for h in ("ferry_store_commit_seconds", "ferry_store_commit_batch_messages",
                  "ferry_store_fsync_seconds"):
            buckets = [(float(l["le"]), v) for n, l, v in s if n == h + "_bucket"]
            self.assertEqual(buckets[-1][0], math.inf)
            self.assertEqual([b[0] for b in buckets], sorted(b[0] for b in buckets))
            self.assertEqual([b[1] for b in buckets], sorted(b[1] for b in buckets))
            self.assertEqual(buckets[-1][1], value(s, h + "_count"))
        self.assertGreater(value(s, "ferry_store_commit_seconds_count"), 0)
        self.assertEqual(value(s, "ferry_store_fsync_seconds_count"), 0)  # flush=async
        self.assertEqual(value(s, "ferry_store_commit_batch_messages_sum"),
                         value(s, "ferry_store_appends_total"))
        self.assertEqual(value(s, "ferry_store_commit_batch_messages_count"),
                         value(s, "ferry_store_commits_total"))
        self.assertEqual(value(s, "ferry_store_healthy"), 1)
        # flush=async with an idle writer: the loop wrote some commits itself
        inline = value(s, "ferry_store_inline_commits_total")
        self.assertGreater(inline, 0)
        self.assertLessEqual(inline, value(s, "ferry_store_commits_total"))
        self.assertLessEqual(value(s, "ferry_store_inline_paused_total"),
                             value(s, "ferry_store_inline_slow_total"))
        self.assertLessEqual(value(s, "ferry_store_inline_slow_total"), inline)
        self.assertGreater(value(s, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreaterEqual(value(s, "ferry_event_loop_lag_seconds"), 0)
        self.assertLess(value(s, "ferry_event_loop_lag_max_seconds"), 5)
        for name in ("ferry_delayed_messages_pending", "ferry_half_messages_pending",
                     "ferry_retries_total", "ferry_dead_letters_total", "ferry_uptime_seconds"):
            self.assertIsNotNone(value(s, name), name)
        # Deleting a topic deletes its record and its 3 messages: the store's deletes go up by at
        # least those 4 once the deletion is answered (it is answered after its write).
        self.assertEqual(types["ferry_store_deletes_total"], "counter")
        self.http("POST", "/api/v1/topics", {"name": "mdel", "queues": 1})
        self.send("mdel", 3)
        before = value(self.metrics()[1], "ferry_store_deletes_total")
        self.assertIsNotNone(before)
        self.assertEqual(self.http("DELETE", "/api/v1/topics/mdel")[0], 200)
        self.assertGreaterEqual(value(self.metrics()[1], "ferry_store_deletes_total"), before + 4)

    def test_metrics_delayed_retries_dead_letters(self):
        before = self.metrics()[1]
        # A message delayed an hour stays pending; a nacked one goes to %RETRY% (a retry pending
        # in the time index); a rejected one goes to the DLQ.
        self.ctl("send", "later", "--delay", "1h", "in an hour")
        self.send("fail", 2)
        self.ctl("consume", "fail", "--group", "fg1", "--from", "first", "--count", "2", "--nack")
        self.send("rej", 1)
        self.ctl("consume", "rej", "--group", "fg2", "--from", "first", "--count", "1", "--reject")

        def grew():
            s = self.metrics()[1]
            d = {n: value(s, n) - value(before, n) for n in (
                "ferry_delayed_messages_pending", "ferry_retries_total",
                "ferry_dead_letters_total")}
            return d if d["ferry_retries_total"] == 2 and d["ferry_dead_letters_total"] == 1 \
                else None
        d = wait_for(grew, "retries and dead letters counted")
        self.assertEqual(d["ferry_delayed_messages_pending"], 3)  # 1 delayed + 2 retries

    def test_metrics_label_escaping(self):
        # Names cannot hold quotes, but the parser is checked on an escaped value anyway.
        self.assertEqual(parse_labels(r'a="x\"y\\z",b="n\nl"'), {"a": 'x"y\\z', "b": "n\nl"})
        self.assertEqual(self.http("POST", "/metrics", {})[0], 405)


class TopicDeleteQueuesAboveCountTest(unittest.TestCase):
    """A topic whose record names fewer queues than the store has of it (tests/torture/fill_store
    run twice: 8 queues, then 4, as a topic that once had more): deleting it through the API
    leaves none of its queues in /metrics ferry_store_queues, then or after a restart."""

    def test_delete_forgets_every_queue(self):
        fill = os.environ.get("FERRY_FILL_STORE")
        self.assertTrue(fill and os.access(fill, os.X_OK), "FERRY_FILL_STORE: the fill_store tool")
        tmp = tempfile.mkdtemp(prefix="ferry-admin-wide-")
        data = os.path.join(tmp, "data")
        try:
            for count, queues in ((80, 8), (8, 4)):
                subprocess.run([fill, data, "wide", str(count), str(queues), "10"], check=True,
                               timeout=DEADLINE_S * 2, capture_output=True)
            f = Ferryd(tmp)
            try:
                base = "http://127.0.0.1:%d" % f.ports["admin"]
                self.assertEqual(self.store_gauges(base), (8, 0))
                with urllib.request.urlopen(base + "/api/v1/topics/wide", timeout=DEADLINE_S) as r:
                    self.assertEqual(len(json.loads(r.read())["queues"]), 4)
                req = urllib.request.Request(base + "/api/v1/topics/wide", method="DELETE")
                with urllib.request.urlopen(req, timeout=DEADLINE_S) as r:
                    self.assertEqual(r.status, 200)
                wait_for(lambda: self.store_gauges(base) == (0, 0), "no queue of the topic left")
            finally:
                self.assertEqual(f.stop(), 0)
            f = Ferryd(tmp)
            try:
                base = "http://127.0.0.1:%d" % f.ports["admin"]
                self.assertEqual(self.store_gauges(base), (0, 0))
            finally:
                self.assertEqual(f.stop(), 0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def store_gauges(base):
        """(ferry_store_queues, ferry_store_erasing_topics) from /metrics."""
        with urllib.request.urlopen(base + "/metrics", timeout=DEADLINE_S) as r:
            _, samples = parse_prometheus(r.read().decode())
        return (value(samples, "ferry_store_queues"), value(samples, "ferry_store_erasing_topics"))


def main():
    global FERRYD, FERRYCTL, SOURCE
    if len(sys.argv) < 4:
        sys.exit("usage: admin_api_test.py FERRYD FERRYCTL SOURCE_DIR [TEST...]")
    FERRYD, FERRYCTL, SOURCE = sys.argv[1:4]
    unittest.main(argv=sys.argv[:1] + sys.argv[4:], verbosity=2)


if __name__ == "__main__":
    main()
