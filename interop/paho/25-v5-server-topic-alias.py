#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (mosquitto never assigns aliases; MQTT 5 lets a server choose): a client announcing
# Topic Alias Maximum 2 gets its first two topics with an alias each (topic and alias 1, 2); later
# messages on those topics carry the alias and an empty topic; a third topic always goes in full.
# A client announcing no maximum never gets an alias. (paho-mqtt 1.6 does not resolve aliases a
# server sends, so a raw client checks the packets.)
# interop: ferry-only
import mqttc
from mqttc import V5, Raw, eq


def test():
    r = Raw(V5)
    r.connect("interop-25", props=[(0x22, 2)])
    r.subscribe(1, [("alias25/#", 0)])
    plain = Raw(V5)
    plain.connect("interop-25-plain")
    plain.subscribe(1, [("alias25/#", 0)])
    pub = mqttc.Client("interop-25-pub", V5)
    pub.connect()
    seq = ["alias25/a", "alias25/b", "alias25/c", "alias25/a", "alias25/b", "alias25/c"]
    for t in seq:
        pub.publish(t, t.encode(), 0)
    got = [r.expect(mqttc.PUBLISH) for _ in seq]
    by_topic = {}
    for p in got:  # the payload names the topic
        by_topic.setdefault(p.payload.decode(), []).append((p.topic, p.prop(0x23)))
    aliases = {}
    for t, sends in by_topic.items():
        eq(len(sends), 2, "messages on %s" % t)
        first, second = sends
        eq(first[0], t, "first send of %s carries the topic" % t)
        if first[1] is None:
            eq(second, (t, None), "a topic without alias goes in full")
        else:
            eq(second, ("", first[1]), "the alias alone the second time (%s)" % t)
            aliases[t] = first[1]
    eq(sorted(aliases.values()), [1, 2], "two aliases, 1 and 2: %r" % by_topic)
    got = [plain.expect(mqttc.PUBLISH) for _ in seq]
    eq(sorted((p.topic, p.prop(0x23) or 0) for p in got), sorted((t, 0) for t in seq),
       "no alias unasked")
    r.close()
    plain.close()


if __name__ == "__main__":
    mqttc.main(test)
