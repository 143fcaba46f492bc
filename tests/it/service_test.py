#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# ferryd as a service: `cmake --install` into a temporary prefix puts the binaries, libferry
# (headers, libferry.pc), ferry.conf, the systemd unit and the docs in place, and a tiny client
# builds against the installed libferry with pkg-config; `ferryd --check-config` accepts a good
# file and names file:line of a bad one; READY=1 and STOPPING=1 reach a NOTIFY_SOCKET the test
# binds; SIGHUP reopens log_file after a rename (logrotate's way); `ferryctl status`, with HTTP
# Basic credentials when the broker has a password file.
# Usage: service_test.py FERRYD FERRYCTL SOURCE_DIR BUILD_DIR
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

FERRYD = FERRYCTL = SOURCE = BUILD = None
DEADLINE_S = 15


def wait_for(cond, what, timeout=DEADLINE_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


class ServiceTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-svc-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ferryd(self, *args, env=None, log=None):
        out = open(log or os.path.join(self.tmp, "stderr.log"), "w")
        p = subprocess.Popen([FERRYD, "--data-dir", os.path.join(self.tmp, "data"), "--port", "0",
                              "--admin-port", "0", "--mqtt-port", "0", "--amqp-port", "0"]
                             + list(args), stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        out.close()
        self.procs.append(p)
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("ferryd did not stop in time")

    def test_install_into_prefix_and_build_a_client_with_pkg_config(self):
        prefix = os.path.join(self.tmp, "prefix")
        r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        for rel in ("bin/ferryd", "bin/ferryctl", "bin/ferry-bench"):
            self.assertTrue(os.access(os.path.join(prefix, rel), os.X_OK), rel)
        for rel in ("include/ferry/client.h", "include/ferry/message.h", "include/ferry/errors.h",
                    "lib/pkgconfig/libferry.pc", "lib/libferry.so", "lib/libferry.a",
                    "etc/ferry/ferry.conf", "lib/systemd/system/ferryd.service",
                    "share/doc/ferry/operations.md", "share/doc/ferry/admin-api.md",
                    "share/doc/ferry/grafana-ferry.json"):
            self.assertTrue(os.path.exists(os.path.join(prefix, rel)), rel)
        unit = read(os.path.join(prefix, "lib/systemd/system/ferryd.service"))
        self.assertIn("ExecStart=%s/bin/ferryd -c %s/etc/ferry/ferry.conf" % (prefix, prefix),
                      unit)
        for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID",
                     "ProtectSystem=strict", "NoNewPrivileges=true", "PrivateTmp=true",
                     "ProtectHome=true", "ReadWritePaths=/var/lib/ferry /var/log/ferry"):
            self.assertIn(line + "\n", unit)
        # The installed configuration is valid for the installed ferryd.
        r = subprocess.run([os.path.join(prefix, "bin/ferryd"), "--check-config", "-c",
                            os.path.join(prefix, "etc/ferry/ferry.conf")], capture_output=True,
                           text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        # A tiny client, built with what pkg-config says and nothing else.
        src = os.path.join(self.tmp, "tiny.c")
        with open(src, "w") as f:
            f.write('#include <ferry/client.h>\n#include <ferry/errors.h>\n#include <stdio.h>\n'
                    'int main(void) { printf("%s\\n", fy_strerror(-FY_ENOTFOUND)); return 0; }\n')
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib/pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libferry"], env=env,
                               capture_output=True, text=True, check=True).stdout.split()
        self.assertIn("-I%s/include" % prefix, [os.path.normpath(f) if f.startswith("-I") else f
                                                for f in flags] + flags)
        exe = os.path.join(self.tmp, "tiny")
        # A sanitized build's libferry needs the sanitizer runtimes in the program too.
        san = "FERRY_SANITIZE:BOOL=ON" in read(os.path.join(BUILD, "CMakeCache.txt"))
        extra = ["-fsanitize=address,undefined"] if san else []
        r = subprocess.run(["cc", "-o", exe, src] + flags + extra, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        libdir = os.path.join(prefix, "lib")
        r = subprocess.run([exe], env=dict(os.environ, LD_LIBRARY_PATH=libdir),
                           capture_output=True, text=True, timeout=DEADLINE_S)
        self.assertEqual((r.returncode, r.stdout.strip() != ""), (0, True), r.stderr)

    def test_check_config(self):
        good = os.path.join(self.tmp, "good.conf")
        with open(good, "w") as f:
            f.write("flush sync\n[mqtt]\nport 1884\n")
        r = subprocess.run([FERRYD, "--check-config", "-c", good], capture_output=True, text=True,
                           timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("valid", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")))  # nothing opened
        bad = os.path.join(self.tmp, "bad.conf")
        with open(bad, "w") as f:
            f.write("flush sync\n\n[mqtt]\nprot 1884\n")
        r = subprocess.run([FERRYD, "--check-config", "-c", bad], capture_output=True, text=True,
                           timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.conf:4:", r.stderr)
        r = subprocess.run([FERRYD, "--check-config", "-c", os.path.join(self.tmp, "none.conf")],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 1)
        # The shipped configuration is valid.
        r = subprocess.run([FERRYD, "--check-config", "-c",
                            os.path.join(SOURCE, "conf/ferry.conf")], capture_output=True,
                           text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_sd_notify_ready_and_stopping(self):
        path = os.path.join(self.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(DEADLINE_S)
        try:
            p = self.ferryd(env=dict(os.environ, NOTIFY_SOCKET=path))
            self.assertEqual(s.recv(4096), b"READY=1")
            log = read(os.path.join(self.tmp, "stderr.log"))
            self.assertIn('msg="ready"', log)  # READY only once everything listens
            p.send_signal(signal.SIGHUP)
            self.assertEqual(s.recv(4096), b"RELOADING=1")
            self.assertEqual(s.recv(4096), b"READY=1")
            self.assertEqual(self.stop(p), 0)
            self.assertEqual(s.recv(4096), b"STOPPING=1")
        finally:
            s.close()

    def test_log_file_reopened_on_sighup(self):
        logf = os.path.join(self.tmp, "ferryd.log")
        conf = os.path.join(self.tmp, "f.conf")
        with open(conf, "w") as f:
            f.write("log_file %s\n" % logf)
        p = self.ferryd("-c", conf)
        wait_for(lambda: 'msg="ready"' in read(logf), "ready in the log file")
        self.assertNotIn('msg="ready"', read(os.path.join(self.tmp, "stderr.log")))
        os.rename(logf, logf + ".1")
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: 'msg="log file reopened"' in read(logf), "the new log file")
        self.assertIn("signal=HUP", read(logf + ".1"))  # the line before the reopen
        self.assertEqual(self.stop(p), 0)
        self.assertIn("stopped cleanly", read(logf))
        self.assertNotIn("stopped cleanly", read(logf + ".1"))

    def test_log_file_that_cannot_be_opened(self):
        p = self.ferryd("-c", self._conf("log_file %s/no/such/dir/x.log\n" % self.tmp))
        self.assertEqual(p.wait(timeout=DEADLINE_S), 1)
        self.assertIn("cannot open log_file", read(os.path.join(self.tmp, "stderr.log")))

    def _conf(self, text):
        path = os.path.join(self.tmp, "c%d.conf" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_ferryctl_status(self):
        p = self.ferryd()
        log = os.path.join(self.tmp, "stderr.log")
        wait_for(lambda: 'msg="ready"' in read(log), "ready")
        ports = {m.group(1): int(m.group(2)) for m in re.finditer(
            r'INFO (\w+) addr=\S+ port=(\d+) msg="[\w ]*listening"', read(log))}
        broker = "127.0.0.1:%d" % ports["native"]
        admin = "127.0.0.1:%d" % ports["admin"]
        r = subprocess.run([FERRYCTL, "--broker", broker, "send", "st", "hello"],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run([FERRYCTL, "--admin", admin, "--json", "status"], capture_output=True,
                           text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc["version"], subprocess.run(
            [FERRYD, "--version"], capture_output=True, text=True).stdout.split()[1])
        self.assertGreaterEqual(doc["messages"]["in"], 1)
        r = subprocess.run([FERRYCTL, "--admin", admin, "status"], capture_output=True, text=True,
                           timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"version:\s+\d+\.\d+\.\d+")
        self.assertRegex(r.stdout, r"topics:\s+\d+")
        self.assertEqual(self.stop(p), 0)
        # No broker there: exit code 3 (cannot connect).
        r = subprocess.run([FERRYCTL, "--admin", admin, "status"], capture_output=True, text=True,
                           timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)


class ServiceAuthTest(unittest.TestCase):
    """With authentication (docs/security.md): ferryctl status sends Basic credentials;
    --check-config refuses what a start would."""
    setUp, tearDown = ServiceTest.setUp, ServiceTest.tearDown
    ferryd, stop, _conf = ServiceTest.ferryd, ServiceTest.stop, ServiceTest._conf

    def test_status_and_api_behind_basic_auth(self):
        pw = os.path.join(self.tmp, "passwd")
        r = subprocess.run([FERRYCTL, "passwd", pw, "ops"], input="s3cret\n", text=True,
                           capture_output=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = self.ferryd("-c", self._conf("password_file %s\n" % pw))
        log = os.path.join(self.tmp, "stderr.log")
        wait_for(lambda: 'msg="ready"' in read(log), "ready")
        admin = "127.0.0.1:%d" % int(re.search(
            r'INFO admin addr=\S+ port=(\d+)', read(log)).group(1))
        env = dict(os.environ, FERRY_PASSWORD="s3cret")
        r = subprocess.run([FERRYCTL, "--admin", admin, "--user", "ops", "--json", "status"],
                           capture_output=True, text=True, timeout=DEADLINE_S, env=env,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("version", json.loads(r.stdout))
        r = subprocess.run([FERRYCTL, "--admin", admin, "status"], capture_output=True, text=True,
                           timeout=DEADLINE_S, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        self.assertIn("401", r.stderr)
        r = subprocess.run([FERRYCTL, "--admin", admin, "--user", "ops", "status"],
                           capture_output=True, text=True, timeout=DEADLINE_S,
                           env=dict(os.environ, FERRY_PASSWORD="wrong"), stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(self.stop(p), 0)

    def test_check_config_checks_security(self):
        r = subprocess.run([FERRYD, "--check-config", "-c",
                            self._conf("password_file %s/missing\n" % self.tmp)],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 1, r.stdout)
        r = subprocess.run([FERRYD, "--check-config", "-c",
                            self._conf("[mqtt]\nlisten 0.0.0.0\n")],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("not a loopback address", r.stderr)


def main():
    global FERRYD, FERRYCTL, SOURCE, BUILD
    if len(sys.argv) < 5:
        sys.exit("usage: service_test.py FERRYD FERRYCTL SOURCE_DIR BUILD_DIR [TEST...]")
    FERRYD, FERRYCTL, SOURCE, BUILD = sys.argv[1:5]
    unittest.main(argv=sys.argv[:1] + sys.argv[5:], verbosity=2)


if __name__ == "__main__":
    main()
