#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Integration tests of ferryd as a process: start-up on free ports, GET /health, clean shutdown
# on SIGTERM and SIGINT, refusal of a second ferryd on the same data directory, configuration
# errors naming file and line, a corrupt store refused at start-up, --help and --version.
# Usage: ferryd_test.py PATH_TO_FERRYD SOURCE_DIR
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

FERRYD = None
SOURCE = None
DEADLINE_S = 15


class Ferryd:
    """A ferryd child on free ports in its own data directory; always stopped by PID."""

    def __init__(self, data_dir, extra=(), conf=None):
        self.data_dir = data_dir
        args = [FERRYD, "--data-dir", data_dir, "--admin-port", "0", "--port", "0",
                "--mqtt-port", "0", "--amqp-port", "0"]
        if conf:
            args += ["-c", conf]
        self.log_path = os.path.join(os.path.dirname(data_dir), "ferryd-%d.log" % time.monotonic_ns())
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args + list(extra), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.admin_port = None
        self.ports = {}

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, component=None):
        """Waits for the "ready" line and records the bound ports (self.ports by listener)."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            out = self.output()
            if 'msg="ready"' in out:
                self.ports = {m.group(1): int(m.group(2)) for m in re.finditer(
                    r'INFO (\w+) addr=\S+ port=(\d+) msg="[\w ]*listening"', out)}
                self.admin_port = self.ports["admin"]
                if component:
                    assert component in self.ports, out
                return
            if self.proc.poll() is not None:
                raise AssertionError("ferryd exited with %d:\n%s" % (self.proc.returncode, out))
            time.sleep(0.02)
        raise AssertionError("ferryd not ready within %ds:\n%s" % (DEADLINE_S, self.output()))

    def get(self, path):
        url = "http://127.0.0.1:%d%s" % (self.admin_port, path)
        try:
            with urllib.request.urlopen(url, timeout=DEADLINE_S) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self, sig=signal.SIGTERM):
        """Sends sig and returns the exit code (kills and fails if it does not exit in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("ferryd did not stop within %ds" % DEADLINE_S)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def run_ferryd(args, timeout=DEADLINE_S):
    return subprocess.run([FERRYD] + args, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


class FerrydTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-it-")
        self.data = os.path.join(self.tmp, "data")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, **kw):
        f = Ferryd(self.data, **kw)
        self.procs.append(f)
        f.wait_ready()
        return f

    def test_health_reports_ok(self):
        f = self.start()
        status, body = f.get("/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertRegex(body["version"], r"^\d+\.\d+\.\d+$")
        self.assertIsInstance(body["uptime_s"], int)
        self.assertEqual(body["store"]["state"], "ok")
        self.assertEqual(body["store"]["flush"], "async")
        self.assertEqual(body["core"]["transactions"]["pending"], 0)
        self.assertEqual(body["core"]["transactions"]["commits"], 0)
        self.assertEqual(body["adapters"]["mqtt"],
                         {"connections": 0, "sessions": 0, "messages_in": 0, "messages_out": 0})

    def test_health_counts_mqtt_traffic(self):
        # One MQTT 3.1.1 client over a raw socket: CONNECT, PUBLISH QoS 1, and /health counts it.
        import socket
        f = self.start()
        s = socket.create_connection(("127.0.0.1", f.ports["mqtt"]), timeout=DEADLINE_S)
        try:
            body = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x02c1"
            s.sendall(bytes([0x10, len(body)]) + body)
            self.assertEqual(s.recv(4), b"\x20\x02\x00\x00")  # CONNACK accepted
            pub = b"\x00\x03a/b\x00\x07hi"
            s.sendall(bytes([0x32, len(pub)]) + pub)
            self.assertEqual(s.recv(4), b"\x40\x02\x00\x07")  # PUBACK 7, after the store
            mqtt = f.get("/health")[1]["adapters"]["mqtt"]
            self.assertEqual(mqtt["connections"], 1)
            self.assertEqual(mqtt["sessions"], 1)
            self.assertEqual(mqtt["messages_in"], 1)
        finally:
            s.close()

    def test_unknown_route_is_json_404(self):
        f = self.start()
        status, body = f.get("/nope")
        self.assertEqual(status, 404)
        self.assertEqual(body["status"], 404)
        self.assertIn("error", body)

    def test_sigterm_stops_cleanly(self):
        f = self.start()
        self.assertEqual(f.stop(signal.SIGTERM), 0)
        out = f.output()
        self.assertEqual(len(re.findall(r'msg="stopped cleanly', out)), 1, out)

    def test_sigint_stops_cleanly(self):
        f = self.start(extra=["--flush", "sync"])
        self.assertEqual(f.get("/health")[1]["store"]["flush"], "sync")
        self.assertEqual(f.stop(signal.SIGINT), 0)
        self.assertIn('msg="stopped cleanly', f.output())

    def test_second_ferryd_on_same_data_dir_is_refused(self):
        self.start()
        second = Ferryd(self.data)
        self.procs.append(second)
        code = second.proc.wait(timeout=DEADLINE_S)
        self.assertNotEqual(code, 0)
        self.assertIn("in use by another ferryd", second.output())

    def test_unknown_key_names_file_and_line(self):
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("# comment\nflush sync\n\n[mqtt]\nport 1883\nbogus_key 1\n")
        r = run_ferryd(["-c", conf, "--data-dir", self.data])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:6:" % conf, r.stderr)
        self.assertIn("bogus_key", r.stderr)

    def test_bad_value_names_file_and_line(self):
        conf = os.path.join(self.tmp, "bad.conf")
        with open(conf, "w") as f:
            f.write("flush sometimes\n")
        r = run_ferryd(["-c", conf, "--data-dir", self.data])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:1:" % conf, r.stderr)
        self.assertIn("flush", r.stderr)

    def test_bad_mqtt_topic_map_is_refused(self):
        conf = os.path.join(self.tmp, "map.conf")
        with open(conf, "w") as f:
            f.write("[mqtt]\ntopic_map devices/#=x\n")
        r = run_ferryd(["-c", conf, "--data-dir", self.data, "--port", "0", "--admin-port", "0",
                        "--mqtt-port", "0", "--amqp-port", "0"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("topic_map: bad entry 'devices/#=x'", r.stderr)

    def test_bad_command_line_value_is_refused(self):
        r = run_ferryd(["--admin-port", "70000", "--data-dir", self.data])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("port", r.stderr)

    def test_shipped_config_starts(self):
        f = self.start(conf=os.path.join(SOURCE, "conf", "ferry.conf"))
        self.assertEqual(f.get("/health")[0], 200)

    def test_corrupt_store_is_refused_not_reset(self):
        f = self.start()
        self.assertEqual(f.stop(), 0)
        current = os.path.join(self.data, "CURRENT")
        with open(current, "w") as fh:
            fh.write("garbage")
        bad = Ferryd(self.data)
        self.procs.append(bad)
        code = bad.proc.wait(timeout=DEADLINE_S)
        self.assertNotEqual(code, 0)
        self.assertIn("cannot open the store", bad.output())
        with open(current) as fh:
            self.assertEqual(fh.read(), "garbage")

    def test_help_and_version(self):
        r = run_ferryd(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--data-dir", r.stdout)
        r = run_ferryd(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^ferryd \d+\.\d+\.\d+")
        r = run_ferryd(["--no-such-option"])
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    FERRYD = os.path.abspath(sys.argv[1])
    SOURCE = os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], "-v"])
