#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: MQTT over secure WebSocket ([mqtt] wss_port with the [tls] certificate). paho with
# transport="websockets" and tls_set(CA) publishes at QoS 1 over wss to a paho subscriber over
# wss and one over plain TCP, and back; MQTT.js connects to wss://127.0.0.1:PORT/mqtt trusting
# the CA and round-trips a message. With require_certificate and use_identity_as_username a wss
# client's certificate CN is its user name (the ACL lets alice write only alice/#). A plain ws
# client on the wss port is refused (TLS error logged), a client trusting another CA refuses the
# server; the broker stays up. wss_port without [tls] certfile refuses to start.
# interop: ferry-only, own-broker
import os
import shutil
import socket
import subprocess
import threading

import paho.mqtt.client as mqtt

import sec
import tlsutil
from sec import check, eq

DEADLINE = 10
MQTTJS = os.path.join(sec.INTEROP, "mqttjs")


def client(cid, ws, ca=None, cert=None):
    c = mqtt.Client(cid, protocol=mqtt.MQTTv311, transport="websockets" if ws else "tcp")
    if ca:
        c.tls_set(ca_certs=ca, certfile=cert[0] if cert else None,
                  keyfile=cert[1] if cert else None)
    return c


def roundtrip(sub, sub_port, pub, pub_port, topic, body):
    """sub subscribes to topic on sub_port, pub publishes body at QoS 1 on pub_port; returns
    what sub received."""
    got, ready, done = [], threading.Event(), threading.Event()
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = lambda c, u, m: (got.append(m.payload), done.set())
    sub.connect("127.0.0.1", sub_port)
    sub.loop_start()
    sub.subscribe(topic, 1)
    check(ready.wait(DEADLINE), "subscribed to %s" % topic)
    pub.connect("127.0.0.1", pub_port)
    pub.loop_start()
    pub.publish(topic, body, qos=1).wait_for_publish(DEADLINE)
    check(done.wait(DEADLINE), "message on %s received" % topic)
    for c in (sub, pub):
        c.disconnect()
        c.loop_stop()
    return got[0]


def mqttjs_roundtrip(port, ca):
    """MQTT.js over wss: subscribe, publish to itself, print the payload."""
    script = """
const mqtt = require('mqtt'); const fs = require('fs');
const c = mqtt.connect('wss://127.0.0.1:%d/mqtt', { ca: fs.readFileSync(%r), reconnectPeriod: 0,
                                                     clientId: 'js-wss' });
const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, %d);
c.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
c.on('connect', async () => {
  await c.subscribeAsync('wss/js', { qos: 1 });
  c.on('message', (topic, payload) => { console.log('got ' + payload); c.end(() => process.exit(0)); });
  await c.publishAsync('wss/js', 'from mqtt.js', { qos: 1 });
});
""" % (port, ca, DEADLINE * 1000)
    r = subprocess.run(["node", "-e", script], cwd=MQTTJS, capture_output=True, text=True,
                       timeout=DEADLINE + 10)
    return r.stdout.strip() + r.stderr.strip()


def test(d):
    pki = tlsutil.Pki(d)
    wss = sec.broker.free_port()
    acl = os.path.join(d, "acl")
    sec.write(acl, "user alice\ntopic readwrite alice/#\n")
    f = tlsutil.TlsFerry(d, tlsutil.tls_conf(pki) + "[mqtt]\nwss_port %d\n" % wss)
    check(('wss_port=%d msg="TLS listening"' % wss) in f.log(), "wss listening on %d" % wss)

    eq(roundtrip(client("w-sub", True, pki.ca), wss, client("w-pub", True, pki.ca), wss,
                 "wss/a", b"wss to wss"), b"wss to wss", "paho wss -> wss")
    eq(roundtrip(client("t-sub", False), f.b.mqtt_port, client("w-pub2", True, pki.ca), wss,
                 "wss/b", b"wss to tcp"), b"wss to tcp", "paho wss -> tcp")
    eq(roundtrip(client("w-sub3", True, pki.ca), wss, client("t-pub", False), f.b.mqtt_port,
                 "wss/c", b"tcp to wss"), b"tcp to wss", "paho tcp -> wss")

    if shutil.which("node") and os.path.isdir(os.path.join(MQTTJS, "node_modules", "mqtt")):
        eq(mqttjs_roundtrip(wss, pki.ca), "got from mqtt.js", "MQTT.js over wss")
    else:
        print("NOTE: MQTT.js not installed (scripts/interop-deps.sh): its wss step not run")

    # A plain WebSocket client on the wss port: the TLS handshake fails, logged; still up.
    off = len(f.log())
    with socket.create_connection(("127.0.0.1", wss), timeout=DEADLINE) as s:
        s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\n\r\n")
        s.settimeout(DEADLINE)
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    check(b"101" not in data, "a plain client got a WebSocket on the wss port: %r" % data)
    f.wait_log(r'ws peer=\S+ msg="closed: TLS: [^"]+"', off, "the log line of the plain client")
    check(tlsutil.handshake(wss, cafile=pki.other_ca) is not None,
          "a client trusting another CA completed the handshake")
    eq(roundtrip(client("w-sub4", True, pki.ca), wss, client("w-pub4", True, pki.ca), wss,
                 "wss/d", b"still up"), b"still up", "wss after the refused clients")
    f.close()

    # Client certificates as user names over wss.
    g = tlsutil.TlsFerry(d, "acl_file %s\n" % acl +
                         tlsutil.tls_conf(pki, require=True, identity=True) +
                         "[mqtt]\nwss_port %d\n" % wss)
    alice = pki.client("alice")
    eq(roundtrip(client("a-sub", True, pki.ca, alice), wss, client("a-pub", True, pki.ca, alice),
                 wss, "alice/x", b"mine"), b"mine", "alice over wss with her certificate")
    off = len(g.log())
    p = client("a-deny", True, pki.ca, alice)
    p.connect("127.0.0.1", wss)
    p.loop_start()
    p.publish("bob/x", b"not mine", qos=1).wait_for_publish(DEADLINE)
    p.disconnect()
    p.loop_stop()
    g.wait_log(r'client=a-deny topic=bob/x msg="publish refused: not authorized"', off,
               "alice's publish to bob/x refused by the ACL")
    g.close()

    err = sec.refused_start("[mqtt]\nwss_port %d\n" % wss, d)
    check("wss_port" in err and "certfile" in err, "refusal names wss_port and certfile: %s" % err)


sec.main(test)
