#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (ferryctl, admin API): MQTT subscriptions outlive the deletion of their native topic.
# Subscribers of every kind — clean and durable sessions, 3.1.1 and 5.0, plain and shared
# ($share/...), exact, `T/#` and wildcard-first (`+/x`) filters — are connected while native topic
# T is deleted and made again, and get each message published after it:
# 1. `ferryctl topic delete T`, then a publish to T/x creates T again (auto_create_topics);
# 2. DELETE /api/v1/topics/T (admin API), then `ferryctl topic create T`, then a publish;
# 3. DELETE of a durable session's own light queue (%LQ%mqtt%<client id>, which the admin API
#    lists as an internal topic): its next message still reaches it.
# A durable session with a shared subscription, offline through rounds 1 and 2, gets the message
# published to T since round 2 made it when it comes back. Every subscriber gets every message once.
# Before, a clean session's or a shared subscription's member closed by the deletion was never
# opened again: those subscribers got nothing from T until their session ended (durable
# sessions' own subscriptions, read through their light queue, did get the messages; after
# round 3 not even those).
# interop: ferry-only
import os
import subprocess
import time
import urllib.parse
import urllib.request

import mqttc
from mqttc import V5, V311, check, eq, props, PacketTypes

P = mqttc.PREFIX
T = P + "rt"  # the native topic (the first level of T/x)


def ferryctl(*args):
    r = subprocess.run([os.environ["FERRYCTL"], "--broker",
                        "127.0.0.1:%s" % os.environ["FERRY_NATIVE_PORT"]] + list(args),
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    eq(r.returncode, 0, "ferryctl %s exit code (stderr: %s)" % (" ".join(args), r.stderr))


def admin_delete(topic):
    url = "http://127.0.0.1:%s/api/v1/topics/%s" % (os.environ["FERRY_ADMIN_PORT"],
                                                    urllib.parse.quote(topic, safe=""))
    req = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(req, timeout=mqttc.DEADLINE) as r:
        eq(r.status, 200, "DELETE %s" % url)


def session(name, proto, durable, flt):
    """A connected subscriber of flt: clean, or durable (3.1.1 clean session 0, 5.0 expiry 600)."""
    c = mqttc.Client(P + "-" + name, proto, clean_session=not durable if proto == V311 else None)
    exp = props(PacketTypes.CONNECT, SessionExpiryInterval=600) if proto == V5 and durable \
        else None
    c.connect(clean_start=True, properties=exp)
    eq(c.subscribe(flt, 1), [1], name + ": SUBACK")
    return c


def test():
    subs = {
        "clean5-wild": session("clean5-wild", V5, False, "+/x"),
        "clean311-exact": session("clean311-exact", V311, False, T + "/x"),
        "clean311-multi": session("clean311-multi", V311, False, T + "/#"),
        "clean5-share": session("clean5-share", V5, False, "$share/%sg1/+/x" % P),
        "durable5-own": session("durable5-own", V5, True, T + "/x"),
        "durable311-wild": session("durable311-wild", V311, True, "+/x"),
        "durable5-share": session("durable5-share", V5, True, "$share/%sg2/%s/x" % (P, T)),
        "durable311-share": session("durable311-share", V311, True, "$share/%sg3/+/x" % P),
    }
    away = session("away", V5, True, "$share/%sg4/%s/x" % (P, T))
    pub = mqttc.Client(P + "-pub", V311)
    pub.connect()

    want = []

    def publish_and_expect(payload):
        """Publishes to T/x; every subscriber must have got it within one deadline (the failure
        names all that did not)."""
        pub.publish(T + "/x", payload, 1)
        want.append(payload)
        end = time.monotonic() + mqttc.DEADLINE
        lacking = []
        for name, c in subs.items():
            try:
                c.wait_messages(len(want), payload, max(end - time.monotonic(), 0.01))
            except mqttc.TestFailure:
                pass
            got = [m.payload for m in c.messages]
            if got != want:
                lacking.append("%s got %r" % (name, got))
        check(not lacking, "after %r: %s" % (payload, "; ".join(lacking)))

    publish_and_expect(b"before")
    eq([m.payload for m in away.wait_messages(1, "away: before")], [b"before"], "away: before")
    away.disconnect()

    # 1. ferryctl deletes T; the next publish creates it again.
    ferryctl("topic", "delete", T)
    publish_and_expect(b"after-ferryctl-delete")

    # 2. The admin API deletes T; ferryctl creates it; then a publish.
    admin_delete(T)
    ferryctl("topic", "create", T)
    publish_and_expect(b"after-admin-delete")

    # The durable session that was away gets what came to T since it was made again (the message
    # of round 1 went with the topic in round 2).
    away = mqttc.Client(P + "-away", V5)
    flags, _, _ = away.connect(clean_start=False,
                               properties=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    eq(flags["session present"], 1, "away: session present")
    got = away.wait_messages(1, "away: the message of round 2")
    eq([m.payload for m in got], [b"after-admin-delete"], "away: messages")
    away.expect_no_more(1, "away: nothing more")

    # 3. A durable session's own light queue is deleted: the session reads the new one.
    admin_delete("%LQ%mqtt%" + P + "-durable5-own")
    publish_and_expect(b"after-light-delete")

    for name, c in subs.items():
        c.expect_no_more(len(want), name + ": each message once", wait=name == "clean5-wild")
        check(all(m.topic == T + "/x" for m in c.messages), name + ": topics %r" % c.messages)
        c.disconnect()
    pub.disconnect()


if __name__ == "__main__":
    mqttc.main(test)
