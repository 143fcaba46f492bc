#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (cross-protocol): `ferryctl send t BODY` reaches paho subscribers of `t`, `t/#` and
# `#` (3.1.1 and 5.0) under MQTT topic `t`; a message sent with property mqtt.topic=t/x/y reaches
# the `t/#` and `#` subscribers under `t/x/y` and not the `t` subscriber. The subscribers
# subscribe before topic t exists (a `#` filter spans topics created later).
# SPDX-License-Identifier: Apache-2.0
# interop: ferry-only
import os
import subprocess

import mqttc
from mqttc import V5, V311, eq


def send(*args):
    r = subprocess.run([os.environ["FERRYCTL"], "--broker",
                        "127.0.0.1:%s" % os.environ["FERRY_NATIVE_PORT"], "send"] + list(args),
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, "ferryctl send exit code (stderr: %s)" % r.stderr)


def test():
    subs = {}
    for f in ("t", "t/#", "#"):
        for proto in (V311, V5):
            c = mqttc.Client("interop-21-%s-%d" % (f.replace("#", "all").replace("/", "_"), proto),
                             proto)
            c.connect()
            c.subscribe(f, 1)
            subs[(f, proto)] = c
    send("t", "from native")
    send("t", "--prop", "mqtt.topic=t/x/y", "deeper")
    for (f, proto), c in subs.items():
        want = [("t", b"from native")]
        if f != "t":
            want.append(("t/x/y", b"deeper"))
        got = c.wait_messages(len(want), "%d message(s) for %r" % (len(want), f))
        eq(sorted((m.topic, m.payload) for m in got), sorted(want),
           "filter %r, MQTT %d" % (f, proto))
    subs[("t", V311)].expect_no_more(1, "t/x/y to a subscriber of t")
    for c in subs.values():
        c.disconnect()


mqttc.main(test)
