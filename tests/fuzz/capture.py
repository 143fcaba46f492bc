#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Seeds the fuzz corpora with real traffic: starts ferryd, puts a recording TCP proxy in front of
# its MQTT, native and AMQP ports, runs interop tests (paho, mosquitto clients, proton, ferryctl)
# through the proxies, and writes what the clients and the broker sent as seeds:
#   mqtt_conn/cap-*   one client connection's bytes, after a first byte 0x3f (the target then
#                     writes it in pieces of 64 bytes; byte by byte, a 2 KiB seed takes a second)
#   amqp_conn/cap-*   the same for AMQP: what the client sent from its protocol header on
#   mqtt_codec/cap-*  MQTT packets each way
#   wire/cap-*        native frames each way
#   amqp_map/cap-*    the payload of AMQP transfers (an encoded message), cut out of the frames
# Seeds are cut to MAX_SEED bytes, deduplicated, and at most PER_TARGET per target are kept
# (the longest first), so the committed corpus stays small. Run by hand after the protocol
# changes; the result is committed under tests/fuzz/seeds/. Captured bytes differ from run to
# run (ids, times, ports): --only rewrites the seeds of the named targets and leaves the others.
#
# Usage: capture.py [--only TARGET,...] FERRYD FERRYCTL [TEST...]   (tests: paths under interop/)
import argparse
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "interop"))
import broker  # noqa: E402

MAX_SEED = 2048  # bytes: larger inputs slow the targets down more than they add
PER_TARGET = 12
DEFAULT_TESTS = [
    "paho/04-qos-packet-ids.py", "paho/09-v5-overlap-subid.py", "paho/11-v5-topic-alias.py",
    "paho/13-v5-request-response.py", "paho/20-cross-mqtt-to-native.py",
    "mosquitto_clients/02-pubsub-qos.sh", "mosquitto_clients/04-will.sh",
    "mosquitto_clients/05-v5-properties.sh", "proton/02-send-receive-types.py",
    "proton/07-filters.py", "proton/11-cross-amqp-to-native.py", "proton/12-cross-native-to-amqp.py",
    "proton/05-credit-drain.py", "proton/10-bad-address.py", "proton/16-dynamic-reply.py",
    "proton/19-jms-shared-subscriptions.py",
]
TARGETS = ("mqtt_conn", "mqtt_codec", "wire", "amqp_map", "amqp_conn")


class Proxy:
    """Forwards 127.0.0.1:port to the broker's port; keeps each connection's bytes each way."""

    def __init__(self, target_port):
        self.target = target_port
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.conns = []  # [client bytes, broker bytes]
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            rec = [bytearray(), bytearray()]
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self.pump, args=(c, u, rec[0]), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, rec[1]), daemon=True).start()

    @staticmethod
    def pump(src, dst, buf):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                buf += d
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def amqp_payloads(stream):
    """The payloads of the transfer frames of one AMQP connection's bytes (after the headers)."""
    out, i = [], 0
    while i + 8 <= len(stream):
        if stream[i:i + 4] == b"AMQP":  # protocol header (SASL or AMQP)
            i += 8
            continue
        size, doff, ftype = struct.unpack(">IBB", stream[i:i + 6])
        if size < 8 or i + size > len(stream):
            break
        body = stream[i + doff * 4:i + size]
        i += size
        if ftype != 0 or body[:3] != b"\x00\x53\x14":  # not an AMQP transfer
            continue
        t = body[3]
        if t == 0xC0:
            end = 5 + body[4]
        elif t == 0xD0:
            end = 8 + struct.unpack(">I", body[4:8])[0]
        elif t == 0x45:
            end = 4
        else:
            continue
        if body[end:]:
            out.append(bytes(body[end:]))
    return out


def main():
    ap = argparse.ArgumentParser(description="Captures real traffic as fuzz seeds.")
    ap.add_argument("--only", metavar="TARGET,...", default=",".join(TARGETS),
                    help="rewrite only these targets' seeds (default: all)")
    ap.add_argument("ferryd")
    ap.add_argument("ferryctl")
    ap.add_argument("tests", nargs="*", metavar="TEST", help="paths under interop/")
    opts = ap.parse_args()
    only = [t for t in opts.only.split(",") if t]
    if not only or any(t not in TARGETS for t in only):
        ap.error("--only: targets are %s" % ",".join(TARGETS))
    ferryd, ferryctl = opts.ferryd, os.path.abspath(opts.ferryctl)
    tests = opts.tests or DEFAULT_TESTS
    b = broker.Broker("ferryd", ferryd)
    b.start()
    px = {"mqtt": Proxy(b.mqtt_port), "native": Proxy(b.native_port), "amqp": Proxy(b.amqp_port)}
    env = dict(os.environ, FERRY_BROKER_KIND="ferryd", FERRY_BROKER_BIN=os.path.abspath(ferryd),
               FERRY_MQTT_HOST="127.0.0.1", FERRY_MQTT_PORT=str(px["mqtt"].port),
               FERRY_NATIVE_PORT=str(px["native"].port), FERRY_AMQP_PORT=str(px["amqp"].port),
               FERRY_ADMIN_PORT=str(b.admin_port), FERRYCTL=ferryctl,
               FERRY_INTEROP_DIR=os.path.join(SRC, "interop"))
    try:
        for t in tests:
            path = os.path.join(SRC, "interop", t)
            cmd = ["bash", path] if t.endswith(".sh") else ["/usr/bin/python3", path]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            print("capture: %s -> %d" % (t, r.returncode))
    finally:
        b.close()

    seeds = {t: [] for t in TARGETS}
    for cli, srv in px["mqtt"].conns:
        if cli:
            seeds["mqtt_conn"].append(b"\x3f" + bytes(cli))
            seeds["mqtt_codec"] += [bytes(cli), bytes(srv)]
    for cli, srv in px["native"].conns:
        seeds["wire"] += [bytes(cli), bytes(srv)]
    for cli, srv in px["amqp"].conns:
        seeds["amqp_map"] += amqp_payloads(bytes(cli)) + amqp_payloads(bytes(srv))
        if cli:
            seeds["amqp_conn"].append(b"\x3f" + bytes(cli))
    for target in only:
        blobs = seeds[target]
        d = os.path.join(HERE, "seeds", target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.startswith("cap-"):
                os.unlink(os.path.join(d, f))
        uniq = {}
        for blob in blobs:
            blob = blob[:MAX_SEED]
            if blob:
                uniq[hashlib.sha1(blob).hexdigest()[:12]] = blob
        kept = sorted(uniq.items(), key=lambda kv: -len(kv[1]))[:PER_TARGET]
        for h, blob in kept:
            with open(os.path.join(d, "cap-" + h), "wb") as f:
                f.write(blob)
        print("capture: %s: %d seeds (%d bytes)" % (target, len(kept), sum(len(x) for _, x in kept)))


if __name__ == "__main__":
    main()
