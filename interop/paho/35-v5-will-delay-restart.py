#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: an MQTT 5 will waiting out its Will Delay Interval outlives a broker restart. The
# server publishes it when the delay has passed or the session ends, whichever is first
# (MQTT 5 3.1.2.5, 3.1.3.2.2), and not if the client is back first; the delay counts from the
# disconnect on the wall clock, as the session's expiry does (docs/mapping.md).
# 1. SIGTERM, the broker back within a second:
#    - `a` (session expiry 600, will delay 4 s) closed its socket without DISCONNECT before the
#      restart: a subscriber connected after the restart gets the will ~4 s after that close, not
#      at the restart and not never;
#    - `d`, the same, still connected when the broker stopped (the clean stop closes it): its will
#      comes ~4 s after the stop;
#    - `c`, the same as `a`, connects again 1.5 s after its close: its will never comes;
#    - `e`, session expiry 0, still connected at the stop: its session ends with the connection,
#      and its will is published at the stop, as before.
#    A durable subscriber, offline through it all, gets a, d and e, not c.
# 2. `b` (session expiry 2 s, will delay 30 s, retained) closes its socket; the broker is down
#    until its expiry has passed: the will is published at start-up (a subscriber that connects
#    then gets it, retained; the durable subscriber too), and b's session is gone.
# Before, a delayed will lived in memory only: a, d and b were never published.
# (mosquitto 2.0.11 is no reference: after a restart it did not bring back an MQTT 5 session made
# with clean start 1, and lost the delayed will of one made with clean start 0.)
# interop: ferry-only own-broker
import os
import sys
import time

sys.path.insert(0, os.environ.get("FERRY_INTEROP_DIR", os.path.join(os.path.dirname(__file__), "..")))
import broker  # noqa: E402
import mqttc  # noqa: E402
from mqttc import PacketTypes, Raw, V5, check, eq, props  # noqa: E402

P = mqttc.PREFIX
SESSION_EXPIRY = 0x11
WILL_DELAY = 0x18
DELAY_S = 4
SLACK_S = 2.5  # the will goes at the broker's next one-second tick after its time, then travels
EARLY_S = 0.1  # the broker's disconnect comes after our close; its clock reads in whole ms


def will_client(name, expiry, delay, retain=False):
    """A raw MQTT 5 connection with a will to P/will/<name> after delay seconds."""
    r = Raw(5)
    p = r.connect(P + "-" + name, clean=True, props=[(SESSION_EXPIRY, expiry)],
                  will=(P + "/will/" + name, name.encode(), 1, retain, [(WILL_DELAY, delay)]))
    eq(p.session_present, False, name + ": new session")
    return r


def durable_watcher():
    w = mqttc.Client(P + "-dwatch", V5)
    flags, _, _ = w.connect(clean_start=False,
                            properties=props(PacketTypes.CONNECT, SessionExpiryInterval=600))
    return w, flags["session present"]


def payloads(w, n):
    """The payloads w has once it has n messages, or after the deadline (sorted)."""
    try:
        w.wait_messages(n)
    except mqttc.TestFailure:
        pass
    with w.lock:
        return sorted(m.payload for m in w.messages)


def sleep_until(t):
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


def restart_within_a_second(b):
    stopped = time.monotonic()
    eq(b.stop(), 0, "broker exit code")
    b.start()
    mqttc.PORT = b.mqtt_port
    check(time.monotonic() - stopped < 1.0, "restarted in %.2fs" % (time.monotonic() - stopped))
    return stopped


def arrival(w, name, earliest, latest):
    """Waits for the will of `name` at watcher w; fails if it comes before `earliest` or not by
    `latest` (monotonic times)."""
    def have():
        return any(m.topic == P + "/will/" + name for m in w.messages)
    w._wait(lambda: have() or time.monotonic() >= latest, "will of " + name,
            max(latest - time.monotonic(), 0.01) + 0.5)
    now = time.monotonic()
    check(have(), "%s: no will by %.1fs after its disconnect" %
          (name, latest - earliest + DELAY_S - EARLY_S))
    check(now >= earliest, "%s: will %.2fs early" % (name, earliest - now))
    print("%s: will %.2fs after its disconnect" % (name, now - earliest + DELAY_S - EARLY_S))


def sigterm_case(b):
    w, _ = durable_watcher()
    eq(w.subscribe(P + "/will/#", 1), [1], "dwatch: SUBACK")
    w.disconnect()

    a = will_client("a", 600, DELAY_S)
    c = will_client("c", 600, DELAY_S)
    d = will_client("d", 600, DELAY_S)
    e = will_client("e", 0, DELAY_S)
    a.close()
    c.close()
    closed = time.monotonic()
    stopped = restart_within_a_second(b)
    d.close()
    e.close()

    watch = mqttc.Client(P + "-watch", V5)
    watch.connect()
    eq(watch.subscribe(P + "/will/#", 1), [1], "watch: SUBACK")
    sleep_until(closed + 1.5)
    c = Raw(5)
    p = c.connect(P + "-c", clean=False, props=[(SESSION_EXPIRY, 600)])
    eq(p.session_present, True, "c: session present after the restart")

    arrival(watch, "a", closed + DELAY_S - EARLY_S, closed + DELAY_S + SLACK_S)
    arrival(watch, "d", stopped + DELAY_S - EARLY_S, stopped + DELAY_S + SLACK_S)
    sleep_until(max(closed, stopped) + DELAY_S + SLACK_S)
    eq(sorted(m.topic for m in watch.messages), [P + "/will/a", P + "/will/d"],
       "wills after the restart (c came back in time; e's went at the stop)")
    c.send(mqttc.packet(mqttc.DISCONNECT, 0, b"\x00"))
    c.close()
    watch.disconnect()

    w, present = durable_watcher()
    eq(present, 1, "dwatch: session present")
    eq(payloads(w, 3), [b"a", b"d", b"e"], "dwatch: the wills that came while it was away")
    w.expect_no_more(3, "dwatch: c's will")
    w.disconnect()


def expired_at_startup_case(b):
    bc = will_client("b", 2, 30, retain=True)
    bc.close()
    closed = time.monotonic()
    eq(b.stop(), 0, "broker exit code")
    sleep_until(closed + 2 + 1.5)
    b.start()
    mqttc.PORT = b.mqtt_port

    fresh = mqttc.Client(P + "-fresh", V5)
    fresh.connect()
    eq(fresh.subscribe(P + "/will/b", 1), [1], "fresh: SUBACK")
    got = fresh.wait_messages(1, "b's will, retained since the start-up")
    eq([(m.payload, m.retain) for m in got], [(b"b", True)], "fresh: b's will")
    fresh.disconnect()
    w, present = durable_watcher()
    eq(present, 1, "dwatch: session present")
    eq(payloads(w, 1), [b"b"], "dwatch: b's will")
    w.expect_no_more(1, "dwatch: nothing but b's will")
    w.disconnect()
    r = Raw(5)
    p = r.connect(P + "-b", clean=False, props=[(SESSION_EXPIRY, 2)])
    eq(p.session_present, False, "b: session present after its expiry")
    r.close()


def test():
    b = broker.from_env()
    try:
        b.start()
        mqttc.PORT = b.mqtt_port
        sigterm_case(b)
        expired_at_startup_case(b)
        mqttc.Client.stop_all()
        eq(b.stop(), 0, "broker exit code")
    finally:
        b.close()


mqttc.main(test, own_broker=True)
