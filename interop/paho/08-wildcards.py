#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks topic filter matching (4.7): `+` matches exactly one level (also an empty one), `#`
# matches the parent level and everything below; filters whose first level is a wildcard do not
# match topics starting with `$` [MQTT-4.7.2-1], while `$x/#` does. Each filter has its own 3.1.1
# client; every topic is published at QoS 1 once; each client must get exactly the topics its
# filter matches (the extra ones are listened for QUIET seconds after the expected ones arrived).
import mqttc
from mqttc import V311, eq

P = mqttc.PREFIX
TOPICS = ["a", "a/b", "a/b/c", "a//c", "a/x/c", "b/b", "$S" + P + "/a", "$" + P + "/a/b"]
FILTERS = {
    "#": ["a", "a/b", "a/b/c", "a//c", "a/x/c", "b/b"],
    "+": ["a"],
    "a/#": ["a", "a/b", "a/b/c", "a//c", "a/x/c"],
    "a/+": ["a/b"],
    "a/+/c": ["a/b/c", "a//c", "a/x/c"],
    "+/b": ["a/b", "b/b"],
    "+/+": ["a/b", "b/b"],
    "a/b/c/#": ["a/b/c"],
    "$S" + P + "/#": ["$S" + P + "/a"],
    "$" + P + "/+/b": ["$" + P + "/a/b"],
    "+/" + P + "/a": [],
}


def test():
    # Plain topic names: run.py gives each test its own broker. (mosquitto drops what clients
    # publish under $SYS, so the `$` topics here are other ones.)
    clients = {}
    for i, f in enumerate(FILTERS):
        c = mqttc.Client("%s-f%d" % (P, i), V311)
        c.connect()
        eq(c.subscribe(f, 1), [1], "SUBACK for %r" % f)
        clients[f] = c
    pub = mqttc.Client(P + "-pub", V311)
    pub.connect()
    for t in TOPICS:
        pub.publish(t, t.encode(), 1)
    for f, want in FILTERS.items():
        c = clients[f]
        c.wait_messages(len(want), "%d message(s) for %r" % (len(want), f))
    quiet = True
    for f, want in FILTERS.items():
        c = clients[f]
        c.expect_no_more(len(want), "filter %r" % f, wait=quiet)
        quiet = False
        eq(sorted(m.topic for m in c.messages), sorted(want), "topics matched by %r" % f)
        for m in c.messages:
            eq(m.payload, m.topic.encode(), "payload")
    for c in list(clients.values()) + [pub]:
        c.disconnect()


mqttc.main(test)
