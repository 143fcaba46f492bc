#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Starts and stops the broker under test for the interop tests: ferryd (the broker being built) or
# mosquitto (to validate the tests themselves), on free 127.0.0.1 ports in a temporary directory,
# always stopped by PID. A broker can be restarted (SIGTERM or SIGKILL, then started again on the
# same data directory and the same ports). Every wait has a deadline. Standard library only.
#
#   b = Broker("mosquitto", "/usr/sbin/mosquitto"); b.start()
#   ... b.mqtt_port ...; b.restart(kill=True); ...; b.close()
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DEADLINE_S = 15
HOST = "127.0.0.1"
KINDS = ("ferryd", "mosquitto")


class BrokerError(Exception):
    pass


def free_port():
    """A port that was free a moment ago (mosquitto cannot bind port 0 and tell us)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_accepts(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Broker:
    """One broker process of KIND in its own work directory.

    Attributes after start(): mqtt_port (both kinds), native_port, admin_port and amqp_port
    (ferryd only), pid, log_path. The data directory and ports survive stop()/start() and restart()."""

    def __init__(self, kind, binary, extra=(), workdir=None, ws=False, ws_conf=""):
        if kind not in KINDS:
            raise BrokerError("unknown broker kind %r (want one of %s)" % (kind, ", ".join(KINDS)))
        self.kind = kind
        self.binary = os.path.abspath(binary)
        self.extra = list(extra)
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="ferry-interop-%s-" % kind)
        self.data_dir = os.path.join(self.workdir, "data")
        self.log_path = os.path.join(self.workdir, "broker.log")
        self.proc = None
        self.log = None
        self.host = HOST
        self.mqtt_port = None
        self.native_port = None
        self.admin_port = None
        self.amqp_port = None
        self.ws = ws  # ferryd: also serve MQTT over WebSocket ([mqtt] ws_port) on ws_port
        self.ws_conf = ws_conf  # more [mqtt] lines with ws (ws_path, ws_origins)
        self.ws_port = None
        self.starts = 0

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self):
        """Starts the broker and waits (bounded) until it serves MQTT. Raises BrokerError."""
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError("broker already running (pid %d)" % self.proc.pid)
        self.starts += 1
        self.log = open(self.log_path, "a")
        self.log.write("---- start %d ----\n" % self.starts)
        self.log.flush()
        self._log_offset = self.log.tell()
        if self.kind == "ferryd":
            self._start_ferryd()
        else:
            self._start_mosquitto()
        return self

    def stop(self, sig=signal.SIGTERM):
        """Sends sig to the broker and waits for it to exit; returns the exit code (None if it was
        not running). A broker that does not exit within the deadline is killed and an error
        raised."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise BrokerError("%s (pid %d) did not stop within %ds after %s" %
                              (self.kind, proc.pid, DEADLINE_S, signal.Signals(sig).name))
        finally:
            if self.log:
                self.log.close()
                self.log = None
        return rc

    def kill(self):
        """SIGKILL: the broker gets no chance to save anything."""
        return self.stop(signal.SIGKILL)

    def restart(self, kill=False):
        """Stops (SIGTERM, or SIGKILL with kill=True) and starts again on the same data and ports."""
        self.stop(signal.SIGKILL if kill else signal.SIGTERM)
        self.start()

    def close(self):
        """Kills the broker if it still runs and removes the work directory (if we made it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        if self.own_workdir and not os.environ.get("FERRY_INTEROP_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def output(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def env(self):
        """The environment variables a test reads to find this broker."""
        e = {"FERRY_BROKER_KIND": self.kind, "FERRY_MQTT_HOST": self.host,
             "FERRY_MQTT_PORT": str(self.mqtt_port)}
        if self.kind == "ferryd":
            e["FERRY_NATIVE_PORT"] = str(self.native_port)
            e["FERRY_ADMIN_PORT"] = str(self.admin_port)
            if self.amqp_port:
                e["FERRY_AMQP_PORT"] = str(self.amqp_port)
            if self.ws_port:
                e["FERRY_WS_PORT"] = str(self.ws_port)
        return e

    # ---- ferryd ---------------------------------------------------------------------------------

    def _start_ferryd(self):
        if not self.ws:
            return self._start_ferryd_once([])
        # ws_port 0 means off, so the WebSocket port is probed free first (and on a restart kept);
        # it may be taken between the probe and ferryd's bind: try a few.
        tries = 1 if self.ws_port else 5
        for i in range(tries):
            port = self.ws_port or free_port()
            conf = os.path.join(self.workdir, "ws.conf")
            with open(conf, "w") as f:
                f.write("# written by interop/broker.py\n[mqtt]\nws_port %d\n%s" % (port, self.ws_conf))
            try:
                self._start_ferryd_once(["-c", conf])
                self.ws_port = port
                return
            except BrokerError:
                if i == tries - 1 or "cannot listen for MQTT over WebSocket" not in \
                        self._this_run_output():
                    raise

    def _start_ferryd_once(self, conf_args):
        # First start: port 0 everywhere and read the bound ports from the log. A restart asks for
        # the same ports again so that clients reconnect to the same address.
        def port(p):
            return str(p) if p else "0"

        args = [self.binary, "--data-dir", self.data_dir, "--admin-port", port(self.admin_port),
                "--port", port(self.native_port), "--mqtt-port", port(self.mqtt_port),
                "--amqp-port", port(self.amqp_port)] + conf_args + self.extra
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            out = self._this_run_output()
            if 'msg="ready"' in out:
                ports = {m.group(1): int(m.group(2)) for m in re.finditer(
                    r'INFO (\w+) addr=\S+ port=(\d+) msg="[\w ]*listening"', out)}
                if "mqtt" not in ports:
                    self.close_proc()
                    raise BrokerError("ferryd is ready but has no MQTT listener:\n" + out)
                self.mqtt_port = ports["mqtt"]
                self.native_port = ports.get("native")
                self.admin_port = ports.get("admin")
                self.amqp_port = ports.get("amqp")
                return
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise BrokerError("ferryd exited with %d before ready:\n%s" % (rc, out))
            time.sleep(0.02)
        self.close_proc()
        raise BrokerError("ferryd not ready within %ds:\n%s" % (DEADLINE_S, self._this_run_output()))

    def _this_run_output(self):
        with open(self.log_path, errors="replace") as f:
            f.seek(self._log_offset)
            return f.read()

    def close_proc(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    # ---- mosquitto ------------------------------------------------------------------------------

    def _start_mosquitto(self):
        os.makedirs(self.data_dir, exist_ok=True)
        # A free port may be taken between our probe and mosquitto's bind: try a few.
        tries = 1 if self.mqtt_port else 5
        for _ in range(tries):
            port = self.mqtt_port or free_port()
            conf = os.path.join(self.workdir, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write("# written by interop/broker.py\n"
                        "listener %d %s\n"
                        "allow_anonymous true\n"
                        "persistence true\n"
                        "persistence_location %s/\n"
                        # as root mosquitto would switch to user "mosquitto", who cannot write
                        # our temporary directory: stay who we are
                        "user %s\n"
                        "log_dest stderr\n"
                        "log_type all\n"
                        "connection_messages true\n"
                        % (port, HOST, self.data_dir, pwd.getpwuid(os.getuid()).pw_name))
            self.proc = subprocess.Popen([self.binary, "-c", conf] + self.extra, stdout=self.log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if port_accepts(port):
                    self.mqtt_port = port
                    return
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.close_proc()
                raise BrokerError("mosquitto not accepting on port %d within %ds:\n%s" %
                                  (port, DEADLINE_S, self._this_run_output()))
            self.proc = None
        raise BrokerError("mosquitto failed to start:\n%s" % self._this_run_output())


def from_env(extra=()):
    """The broker a test that manages its own broker should start: FERRY_BROKER_KIND and
    FERRY_BROKER_BIN, as set by run.py."""
    kind = os.environ.get("FERRY_BROKER_KIND")
    binary = os.environ.get("FERRY_BROKER_BIN")
    if not kind or not binary:
        raise BrokerError("FERRY_BROKER_KIND and FERRY_BROKER_BIN must be set (run through run.py)")
    return Broker(kind, binary, extra=extra)
