#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Checks MQTT 5 subscription options (3.8.3.1):
# - No Local: a client does not get its own publications on that subscription [MQTT-3.8.3-3],
#   but gets other clients' ones.
# - Retain As Published: 1 forwards a live retained publish with RETAIN 1, 0 with RETAIN 0
#   [MQTT-3.3.1-12, -13].
# - Retain Handling 0: retained messages sent at every subscribe, also when re-subscribing;
#   1: sent only if the subscription did not exist [MQTT-3.3.1-10]; 2: never sent [MQTT-3.3.1-11].
# Absences are checked by publishing a live marker on the same topic after the SUBACK: the first
# message the subscription delivers must then be the marker.
import mqttc
from mqttc import V5, eq, mqtt

P = mqttc.PREFIX
SO = mqtt.SubscribeOptions


def first_payload(c, what):
    return c.wait_messages(1, what)[0].payload


def test():
    pub = mqttc.Client(P + "-pub", V5)
    pub.connect()

    # No Local.
    c = mqttc.Client(P + "-nl", V5)
    c.connect()
    c.subscribe(P + "/nl", options=SO(qos=1, noLocal=True))
    c.publish(P + "/nl", b"mine", 1)
    pub.publish(P + "/nl", b"theirs", 1)
    eq(first_payload(c, "the other client's message"), b"theirs", "no local: first message")
    c.expect_no_more(1, "no local")
    c.disconnect()

    # Retain As Published.
    rap1 = mqttc.Client(P + "-rap1", V5)
    rap1.connect()
    rap1.subscribe(P + "/rap", options=SO(qos=1, retainAsPublished=True))
    rap0 = mqttc.Client(P + "-rap0", V5)
    rap0.connect()
    rap0.subscribe(P + "/rap", options=SO(qos=1, retainAsPublished=False))
    pub.publish(P + "/rap", b"r", 1, retain=True)
    eq(rap1.wait_messages(1)[0].retain, True, "retain as published 1: RETAIN flag")
    eq(rap0.wait_messages(1)[0].retain, False, "retain as published 0: RETAIN flag")
    rap1.disconnect()
    rap0.disconnect()

    # Retain Handling.
    t = P + "/rh"
    pub.publish(t, b"retained", 1, retain=True)
    for rh, want_first, want_again in ((0, b"retained", b"retained"), (1, b"retained", b"live"),
                                       (2, b"live", b"live")):
        c = mqttc.Client("%s-rh%d" % (P, rh), V5)
        c.connect()
        c.subscribe(t, options=SO(qos=1, retainHandling=rh))
        pub.publish(t, b"live", 1)
        got = c.wait_messages(1)
        eq(got[0].payload, want_first, "retain handling %d: first message after subscribing" % rh)
        if want_first == b"retained":
            eq(got[0].retain, True, "retain handling %d: RETAIN flag" % rh)
            eq(c.wait_messages(2)[1].payload, b"live", "then the live message")
        c.settle()
        # The same subscription again.
        c.subscribe(t, options=SO(qos=1, retainHandling=rh))
        pub.publish(t, b"live", 1)
        eq(c.wait_messages(1)[0].payload, want_again,
           "retain handling %d: first message after re-subscribing" % rh)
        c.settle()
        c.disconnect()
    pub.disconnect()


mqttc.main(test)
