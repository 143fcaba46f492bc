#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (fan-out at scale, docs/mapping.md): a durable session reads its own light queue,
# not the whole native topic. A 3.1.1 session with clean session 0 subscribes to fan/dev7/#
# and goes away; 300 messages go to fan/other/x and 3 to fan/dev7/cmd. `ferryctl group describe
# mqtt%interop-24` shows the session's group reading only %LQ%mqtt%interop-24, 3 entries; on
# reconnect it gets exactly those 3, in order. A second session's durable subscription to fan/#
# is indexed the other messages too (each message indexed per matching session), and a session
# whose exact and wildcard subscriptions both match gets each message once.
# interop: ferry-only
import json
import os
import subprocess

import mqttc
from mqttc import V311, eq, check


def describe(group):
    r = subprocess.run([os.environ["FERRYCTL"], "--broker",
                        "127.0.0.1:%s" % os.environ["FERRY_NATIVE_PORT"], "--json", "group",
                        "describe", group], capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, "ferryctl group describe %s (stderr: %s)" % (group, r.stderr))
    return json.loads(r.stdout)


def test():
    dev = mqttc.Client("interop-24", V311, clean_session=False)
    dev.connect()
    dev.subscribe("fan/dev7/#", 1)
    dev.disconnect()
    allc = mqttc.Client("interop-24-all", V311, clean_session=False)
    allc.connect()
    allc.subscribe("fan/#", 1)
    allc.disconnect()
    both = mqttc.Client("interop-24-both", V311, clean_session=False)
    both.connect()
    both.subscribe("fan/dev7/cmd", 1)
    both.subscribe("fan/+/cmd", 1)
    both.disconnect()
    p = mqttc.Client("interop-24-pub", V311)
    p.connect()
    for i in range(300):
        p.publish("fan/other/x", b"o%d" % i, 1, wait=False)
    for i in range(3):
        p.publish("fan/dev7/cmd", b"m%d" % i, 1)
    p.disconnect()
    d = describe("mqtt%interop-24")
    eq(sorted({q["topic"] for q in d["queues"]}), ["%LQ%mqtt%interop-24"],
       "topics the durable session's group reads: %s" % d)
    eq(sum(q["max_offset"] - q["committed"] for q in d["queues"]), 3, "entries waiting: %s" % d)
    d = describe("mqtt%interop-24-all")
    eq(sum(q["max_offset"] - q["committed"] for q in d["queues"]), 303, "entries for fan/#: %s" % d)
    dev = mqttc.Client("interop-24", V311, clean_session=False)
    dev.connect()
    got = dev.wait_messages(3, "the session's own backlog")
    eq([m.payload for m in got], [b"m0", b"m1", b"m2"], "backlog in order")
    dev.expect_no_more(3, "nothing but its own messages")
    check(all(m.topic == "fan/dev7/cmd" for m in got), "topics: %r" % got)
    d = describe("mqtt%interop-24-both")
    eq(sum(q["max_offset"] - q["committed"] for q in d["queues"]), 3,
       "one entry per message for two matching subscriptions: %s" % d)


if __name__ == "__main__":
    mqttc.main(test)
