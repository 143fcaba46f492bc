#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: MQTT over TLS with require_certificate and use_identity_as_username, checked
# against an ACL. The client certificate's CN (without a CN, its DNS subject alternative name)
# is the user name whatever CONNECT says:
# mosquitto_pub with alice's certificate and `-u bob` publishes as alice (alice's topics get
# through, bob's are dropped by the ACL), mosquitto_sub with bob's certificate reads as bob, and
# paho (tls_set with a certificate) connects too. Refused at the handshake: a client without a
# certificate, one with an expired certificate, one whose certificate a CA outside cafile
# signed. The broker stays up and the plain port is unaffected.
# interop: ferry-only, own-broker
import subprocess
import threading

import paho.mqtt.client as mqtt

import sec
import tlsutil
from sec import check, eq

DEADLINE = 10

ACL = """user alice
topic readwrite alice/#

user carol.devices.example
topic write alice/carol

user bob
topic read alice/#
topic readwrite bob/#
"""


def mosq(tool, port, args):
    return subprocess.run([tool, "-h", "127.0.0.1", "-p", str(port)] + args, capture_output=True,
                          text=True, timeout=DEADLINE + 5)


def test(d):
    pki = tlsutil.Pki(d)
    acl = d + "/acl"
    sec.write(acl, ACL)
    f = tlsutil.TlsFerry(d, "acl_file %s\n" % acl + tlsutil.tls_conf(pki, require=True,
                                                                     identity=True))
    port = f.tls_ports["mqtt"]
    alice = ["--cafile", pki.ca, "--cert", pki.client("alice")[0], "--key",
             pki.client("alice")[1]]
    bob = ["--cafile", pki.ca, "--cert", pki.client("bob")[0], "--key", pki.client("bob")[1]]

    # bob subscribes to his topics and alice's; alice publishes claiming to be bob.
    sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                            "-v", "-q", "1", "-t", "alice/#", "-t", "bob/#", "-W", "8",
                            "-i", "bob-sub"] + bob,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    f.wait_log(r"topic=bob id=\d+ queues=\d+ msg=\"topic created|member joined", 0,
               "bob's subscription")
    for topic, body in (("bob/secret", "forged"), ("alice/1", "one"), ("alice/2", "two")):
        r = mosq("mosquitto_pub", port, alice + ["-u", "bob", "-P", "x", "-q", "1", "-t", topic,
                                                 "-m", body])
        eq(r.returncode, 0, "mosquitto_pub as alice to %s (stderr %s)" % (topic, r.stderr))
    # A certificate without a CN: its DNS subject alternative name is the user.
    carol = ["--cafile", pki.ca, "--cert", pki.client("carol")[0], "--key",
             pki.client("carol")[1]]
    for topic, body in (("alice/4", "not carol's"), ("alice/carol", "from carol")):
        r = mosq("mosquitto_pub", port, carol + ["-q", "1", "-t", topic, "-m", body])
        eq(r.returncode, 0, "mosquitto_pub as carol to %s (stderr %s)" % (topic, r.stderr))
    out, err = sub.communicate(timeout=DEADLINE + 5)
    got = sorted(out.splitlines())
    eq(got, ["alice/1 one", "alice/2 two", "alice/carol from carol"],
       "what bob received (stderr %s)" % err)

    # paho with a client certificate.
    done = threading.Event()
    c = mqtt.Client("paho-cert", protocol=mqtt.MQTTv311)
    c.tls_set(ca_certs=pki.ca, certfile=pki.client("bob")[0], keyfile=pki.client("bob")[1])
    c.on_connect = lambda cl, u, fl, rc: (rc == 0) and done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    check(done.wait(DEADLINE), "paho with bob's certificate connected")
    c.disconnect()
    c.loop_stop()

    # Refused: no certificate, an expired one, one from an untrusted CA.
    for what, args, cert in (
            ("no client certificate", ["--cafile", pki.ca], None),
            ("an expired certificate", ["--cafile", pki.ca, "--cert", pki.p("expired.crt"),
                                        "--key", pki.p("expired.key")], pki.client("expired")),
            ("a certificate from an untrusted CA",
             ["--cafile", pki.ca, "--cert", pki.p("rogue.crt"), "--key", pki.p("rogue.key")],
             pki.client("rogue"))):
        r = mosq("mosquitto_pub", port, args + ["-t", "alice/x", "-m", "no"])
        check(r.returncode != 0, "mosquitto_pub with %s published" % what)
        why = tlsutil.handshake(port, cafile=pki.ca, cert=cert)
        check(why is not None, "a TLS handshake with %s succeeded" % what)
    log = f.log()
    check("peer did not return a certificate" in log, "log names the missing certificate")
    check("certificate expired" in log or "certificate has expired" in log,
          "log names the expired certificate")
    check("certificate verify failed" in log or "unknown ca" in log.lower(),
          "log names the untrusted certificate")

    # Still up: plain port and TLS port.
    r = mosq("mosquitto_pub", f.b.mqtt_port, ["-t", "alice/plain", "-m", "x"])
    eq(r.returncode, 0, "plain publish")
    r = mosq("mosquitto_pub", port, alice + ["-t", "alice/3", "-m", "x"])
    eq(r.returncode, 0, "TLS publish with a certificate")
    f.close()


if __name__ == "__main__":
    sec.main(test)
