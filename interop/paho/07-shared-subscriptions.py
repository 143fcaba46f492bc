#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks shared subscriptions $share/<group>/<filter> (5.0, 4.8.2): each message published to a
# matching topic goes to exactly one member of the group (no loss, no duplicate); two groups on
# the same filter each get every message; a plain subscriber of the filter gets every message; the
# topic a member sees is the published topic. Both members get some of the 40 messages: the spec
# allows any distribution, but a group that sends everything to one member balances nothing
# (a choice Ferry makes with its clustering groups; mosquitto round-robins).
import mqttc
from mqttc import V5, check, eq

P = mqttc.PREFIX
N = 40


def test():
    flt = P + "/sh/+/x"
    members = []
    for i in range(2):
        c = mqttc.Client("%s-m%d" % (P, i), V5)
        c.connect()
        eq(c.subscribe("$share/g1/" + flt, 1), [1], "SUBACK for a shared subscription")
        members.append(c)
    other = mqttc.Client(P + "-g2", V5)
    other.connect()
    other.subscribe("$share/g2/" + flt, 1)
    plain = mqttc.Client(P + "-plain", V5)
    plain.connect()
    plain.subscribe(flt, 1)

    pub = mqttc.Client(P + "-pub", V5)
    pub.connect()
    for i in range(N):
        pub.publish("%s/sh/%d/x" % (P, i % 4), b"%d" % i, 1)

    plain.wait_messages(N)
    other.wait_messages(N)
    mqttc.wait_until(lambda: sum(len(m.messages) for m in members) >= N, "%d messages in g1" % N)
    members[0].expect_no_more(len(members[0].messages), "duplicates")
    for c in members[1:] + [other, plain]:
        c.expect_no_more(len(c.messages), "duplicates", wait=False)
    got = [m for c in members for m in c.messages]
    eq(sorted(int(m.payload) for m in got), list(range(N)), "g1: each message exactly once")
    for m in got:
        eq(m.topic, "%s/sh/%d/x" % (P, int(m.payload) % 4), "topic seen by a member")
    eq(sorted(int(m.payload) for m in other.messages), list(range(N)), "g2 gets every message")
    eq(sorted(int(m.payload) for m in plain.messages), list(range(N)), "plain subscriber")
    for t in range(4):  # order is kept per topic
        eq([int(m.payload) for m in plain.messages if int(m.payload) % 4 == t],
           list(range(t, N, 4)), "plain subscriber: order on topic %d" % t)
    counts = [len(c.messages) for c in members]
    check(all(counts), "one member got every message: %r" % counts)
    print("g1 distribution: %r" % counts)
    for c in members + [other, plain, pub]:
        c.disconnect()


mqttc.main(test)
