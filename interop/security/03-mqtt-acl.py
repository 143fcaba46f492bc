#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: an ACL file decides what each MQTT user may publish, subscribe to and receive.
# MQTT 5: a denied QoS 1 publish gets PUBACK 0x87 and a QoS 2 one PUBREC 0x87; a denied filter
# SUBACK 0x87 (3.1.1: 0x80) while the other filters of the same SUBSCRIBE are granted. 3.1.1: a
# denied publish is dropped without a word (QoS 0) or acknowledged and dropped (QoS 1), as
# mosquitto does, and the connection stays up. A `#` subscriber receives only the topics it may
# read (`topic read`, a `pattern` with %u and %c, minus `topic deny`), and a will on a topic the
# user may not write refuses the CONNECT with 0x87.
# interop: ferry-only, own-broker
import os
import sys

import sec
from sec import check, eq

sys.path.insert(0, os.path.join(sec.INTEROP, "paho"))
import mqttc  # noqa: E402
from mqttc import CONNACK, PUBACK, PUBREC, PUBLISH  # noqa: E402

ACL = """
# Rules before any user: anonymous clients (none here: there is a password file).
pattern readwrite clients/%c/#

user alice
topic readwrite public/#
topic read secret/alice/#
topic write in/#

user bob
topic readwrite #

user carol
topic read #
topic deny public/hidden
"""


def raw(version, cid, user, password, expect=0, will=None):
    r = mqttc.Raw(version)
    r.send(mqttc.connect_packet(cid, version, will=will, username=user, password=password))
    p = r.read()
    check(p is not None and p.type == CONNACK, "want CONNACK, got %r" % (p,))
    eq(p.reason, expect, "CONNACK reason for %s" % user)
    return r


def paho(cid, user, proto=mqttc.V311):
    c = mqttc.Client(cid, protocol=proto)
    c.c.username_pw_set(user, "pw-" + user)
    c.connect()
    return c


def test(d):
    pw = os.path.join(d, "passwd")
    for u in ("alice", "bob", "carol"):
        sec.passwd(pw, u, "pw-" + u)
    sec.write(os.path.join(d, "acl"), ACL)
    f = sec.Ferry(d, "password_file %s\nacl_file %s\n" % (pw, os.path.join(d, "acl")))
    mqttc.PORT = f.b.mqtt_port

    # MQTT 5 refusals with their reason codes.
    a5 = raw(5, "a5", "alice", "pw-alice")
    a5.send(mqttc.publish_packet("secret/x", "no", qos=1, pid=1, version=5))
    p = a5.expect(PUBACK)
    eq((p.pid, p.reason), (1, 0x87), "PUBACK of a denied QoS 1 publish (5.0)")
    a5.send(mqttc.publish_packet("secret/x", "no", qos=2, pid=2, version=5))
    p = a5.expect(PUBREC)
    eq((p.pid, p.reason), (2, 0x87), "PUBREC of a denied QoS 2 publish (5.0)")
    a5.send(mqttc.publish_packet("public/a", "yes", qos=1, pid=3, version=5))
    p = a5.expect(PUBACK)
    eq((p.pid, p.reason), (3, 0), "PUBACK of an allowed publish")
    reasons = a5.subscribe(4, [("secret/bob/#", 1), ("public/#", 1), ("other", 0),
                               ("secret/alice/x", 0)])
    eq(reasons, [0x87, 1, 0x87, 0], "SUBACK reasons (5.0)")
    a5.close()

    a3 = raw(4, "a3", "alice", "pw-alice")
    eq(a3.subscribe(1, [("secret/bob/#", 0), ("public/b", 0)]), [0x80, 0], "SUBACK (3.1.1)")
    a3.close()

    # Who receives what: carol and alice subscribe to everything.
    carol = paho("carol-1", "carol")
    eq(carol.subscribe("#", 0), [0], "carol subscribes to #")
    alice = paho("alice-1", "alice")
    eq(alice.subscribe("#", 0), [0], "alice subscribes to # (some topics readable)")
    bob = paho("bob-1", "bob")
    for t in ("public/a", "secret/alice/1", "secret/bob/1", "other/x", "public/hidden",
              "clients/alice-1/inbox", "clients/bob-1/inbox", "done/marker"):
        bob.publish(t, t, qos=1)
    carol.wait_messages(7, "carol's 7 messages (all but public/hidden)")
    got = sorted(m.topic for m in carol.settle())
    eq(got, sorted(["public/a", "secret/alice/1", "secret/bob/1", "other/x",
                    "clients/alice-1/inbox", "clients/bob-1/inbox", "done/marker"]),
       "carol (read #, deny public/hidden) received")
    alice.wait_messages(4, "alice's 4 messages")
    got = sorted(m.topic for m in alice.settle())
    eq(got, ["clients/alice-1/inbox", "public/a", "public/hidden", "secret/alice/1"],
       "alice (# subscription) received only what she may read")

    # 3.1.1: a denied publish is dropped; the connection stays up.
    a3 = paho("alice-2", "alice")
    a3.publish("secret/alice/2", "denied q0", qos=0)
    a3.publish("secret/alice/3", "denied q1", qos=1)
    a3.publish("in/ok", "allowed", qos=1)
    carol.wait_messages(1, "the allowed publish after the denied ones")
    got = [m.topic for m in carol.settle()]
    eq(got, ["in/ok"], "carol sees only alice's allowed publish (3.1.1 denials dropped)")
    check(a3.disconnected is None, "alice's 3.1.1 connection was closed")

    # A will on a topic the user may not write refuses the connection.
    r = raw(5, "a-will", "alice", "pw-alice", expect=0x87, will=("secret/will", "w", 0, False))
    r.close()
    r = raw(4, "a-will3", "alice", "pw-alice", expect=5, will=("secret/will", "w", 0, False))
    r.close()
    mqttc.Client.stop_all()
    f.close()


sec.main(test)
