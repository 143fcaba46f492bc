#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only ([mqtt] topic_map): with `topic_map devices/eu=eudev`, a publish to devices/eu/7/t is
# stored in native topic eudev (ferryctl consume eudev sees it, with mqtt.topic), devices/us/1/t
# stays in native topic devices, and MQTT subscribers of devices/#, devices/+/7/t and # get both
# kinds, each message once.
# interop: ferry-only own-broker
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import broker  # noqa: E402
import mqttc  # noqa: E402
from mqttc import V311, eq  # noqa: E402


def consume(b, topic, n):
    r = subprocess.run([os.environ["FERRYCTL"], "--broker", "127.0.0.1:%d" % b.native_port,
                        "--json", "consume", topic, "--group", "interop-23", "--from", "first",
                        "--count", str(n), "--timeout", "10000"],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, "ferryctl consume %s (stderr: %s)" % (topic, r.stderr))
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test():
    workdir_conf = os.path.join(os.environ.get("TMPDIR", "/tmp"), "interop-23-%d.conf" % os.getpid())
    with open(workdir_conf, "w") as f:
        f.write("[mqtt]\ntopic_map devices/eu=eudev other/x=ox\n")
    b = broker.from_env(extra=["-c", workdir_conf])
    try:
        b.start()
        mqttc.PORT = b.mqtt_port
        subs = {}
        for flt in ("devices/#", "devices/+/7/t", "#"):
            c = mqttc.Client("interop-23-" + flt.replace("/", "_").replace("#", "H").replace(
                "+", "P"), V311)
            c.connect()
            c.subscribe(flt, 1)
            subs[flt] = c
        p = mqttc.Client("interop-23-pub", V311)
        p.connect()
        p.publish("devices/eu/7/t", b"eu", 1)
        p.publish("devices/us/7/t", b"us", 1)
        p.publish("devices/eu", b"eu-root", 1)
        want = {"devices/#": {b"eu", b"us", b"eu-root"}, "devices/+/7/t": {b"eu", b"us"},
                "#": {b"eu", b"us", b"eu-root"}}
        for flt, c in subs.items():
            got = c.wait_messages(len(want[flt]), "messages on %s" % flt)
            eq(sorted(m.payload for m in got), sorted(want[flt]), "payloads on %s" % flt)
            c.expect_no_more(len(want[flt]), "no duplicate on %s" % flt)
        eu = consume(b, "eudev", 2)
        eq(sorted(m["properties"]["mqtt.topic"] for m in eu), ["devices/eu", "devices/eu/7/t"],
           "MQTT topics stored in native topic eudev")
        us = consume(b, "devices", 1)
        eq(us[0]["properties"]["mqtt.topic"], "devices/us/7/t", "unmapped topic in `devices`")
    finally:
        b.close()
        os.unlink(workdir_conf)


if __name__ == "__main__":
    mqttc.main(test, own_broker=True)
