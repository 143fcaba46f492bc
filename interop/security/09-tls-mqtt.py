#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: MQTT over TLS ([tls] certfile/keyfile, [mqtt] tls_port) with certificates made by
# the openssl CLI. mosquitto_sub and mosquitto_pub with --cafile exchange a message over TLS,
# and paho (tls_set) does too, across TLS and plain TCP; the plain port still serves plain
# clients. Refused: a client that does not trust the server's CA, a plain MQTT client on the
# TLS port (closed cleanly, the broker stays up), TLS 1.1 (the server's protocol_version alert).
# SIGHUP reloads the certificate: a bad new key is logged and the old certificate stays in use;
# a good new one is served to new connections.
# interop: ferry-only, own-broker
import shutil
import socket
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

import sec
import tlsutil
from sec import check, eq

DEADLINE = 10


def mosq(tool, port, args):
    return subprocess.run([tool, "-h", "127.0.0.1", "-p", str(port)] + args, capture_output=True,
                          text=True, timeout=DEADLINE + 5)


def sub_start(port, topic, args):
    """mosquitto_sub -d for one message; returns (process, lines) once its SUBACK arrived. A
    thread reads its output into the list lines."""
    p = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p",
                          str(port), "-t", topic, "-C", "1", "-W", str(DEADLINE), "-q", "1"] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    suback = threading.Event()

    def reader():
        for line in p.stdout:
            lines.append(line.rstrip("\n"))
            if "SUBACK" in line:
                suback.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    if not suback.wait(DEADLINE):
        p.kill()
        p.wait()
        raise sec.TestFailure("mosquitto_sub did not subscribe: %r %s" % (lines, p.stderr.read()))
    return p, lines, t


def paho_client(cid, ca):
    c = mqtt.Client(cid, protocol=mqtt.MQTTv311)
    if ca:
        c.tls_set(ca_certs=ca)
    return c


def paho_roundtrip(sub_port, sub_ca, pub_port, pub_ca, topic, body):
    """paho subscriber on sub_port, paho publisher on pub_port (each over TLS when given a CA);
    returns the payload received."""
    got = []
    ready = threading.Event()
    done = threading.Event()
    s = paho_client("paho-sub", sub_ca)
    s.on_subscribe = lambda *a: ready.set()
    s.on_message = lambda c, u, m: (got.append(m.payload), done.set())
    s.connect("127.0.0.1", sub_port)
    s.loop_start()
    s.subscribe(topic, 1)
    check(ready.wait(DEADLINE), "paho subscribed")
    p = paho_client("paho-pub", pub_ca)
    p.connect("127.0.0.1", pub_port)
    p.loop_start()
    p.publish(topic, body, qos=1).wait_for_publish(DEADLINE)
    check(done.wait(DEADLINE), "paho received the message")
    for c in (s, p):
        c.disconnect()
        c.loop_stop()
    return got[0]


def test(d):
    pki = tlsutil.Pki(d)
    f = tlsutil.TlsFerry(d, tlsutil.tls_conf(pki))
    port = f.tls_ports["mqtt"]
    check(port and port != f.b.mqtt_port, "an MQTT TLS port apart from the plain one")

    # mosquitto_sub and mosquitto_pub over TLS, verifying the server against the CA.
    sub, lines, reader = sub_start(port, "tls/a", ["--cafile", pki.ca, "-i", "msub"])
    r = mosq("mosquitto_pub", port, ["--cafile", pki.ca, "-t", "tls/a", "-m", "over tls",
                                     "-q", "1"])
    eq(r.returncode, 0, "mosquitto_pub --cafile (stderr %s)" % r.stderr)
    try:
        sub.wait(timeout=DEADLINE + 5)
    except subprocess.TimeoutExpired:
        sub.kill()
        sub.wait()
    reader.join(DEADLINE)
    eq(sub.returncode, 0, "mosquitto_sub --cafile (stderr %s)" % sub.stderr.read())
    check("over tls" in lines, "message received over TLS: %r" % lines)

    # paho: TLS subscriber, plain publisher; then TLS publisher.
    eq(paho_roundtrip(port, pki.ca, f.b.mqtt_port, None, "tls/b", b"plain to tls"),
       b"plain to tls", "paho plain -> TLS")
    eq(paho_roundtrip(port, pki.ca, port, pki.ca, "tls/c", b"tls to tls"), b"tls to tls",
       "paho TLS -> TLS")

    # A client that does not trust the server's CA refuses it.
    r = mosq("mosquitto_pub", port, ["--cafile", pki.other_ca, "-t", "tls/x", "-m", "no"])
    check(r.returncode != 0, "mosquitto_pub trusting another CA connected")
    check(tlsutil.handshake(port, cafile=pki.other_ca) is not None,
          "python ssl trusting another CA completed the handshake")

    # A plain MQTT client on the TLS port: refused, the broker stays up.
    off = len(f.log())
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as s:
        s.sendall(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 0]))
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
    check(not data.startswith(b"\x20"), "a plain client got a CONNACK on the TLS port")
    f.wait_log(r'msg="closed: TLS: [^"]+"', off, "the log line of the refused plain client")
    r = mosq("mosquitto_pub", f.b.mqtt_port, ["-t", "tls/y", "-m", "still up"])
    eq(r.returncode, 0, "plain publish after the plain client on the TLS port")
    r = mosq("mosquitto_pub", port, ["--cafile", pki.ca, "-t", "tls/y", "-m", "still up"])
    eq(r.returncode, 0, "TLS publish after the plain client on the TLS port")

    # TLS 1.1 is refused by the server (protocol_version alert); 1.2 and 1.3 are accepted.
    why = tlsutil.handshake(port, maxv=ssl.TLSVersion.TLSv1_1, minv=ssl.TLSVersion.TLSv1_1,
                            seclevel0=True)
    check(why is not None, "a TLS 1.1 handshake succeeded")
    check("PROTOCOL_VERSION" in why.upper() or "UNSUPPORTED" in why.upper() or
          "NO PROTOCOLS" in why.upper(), "TLS 1.1 refusal: %s" % why)
    eq(tlsutil.handshake(port, cafile=pki.ca, maxv=ssl.TLSVersion.TLSv1_2), None, "TLS 1.2")
    eq(tlsutil.handshake(port, cafile=pki.ca, minv=ssl.TLSVersion.TLSv1_3), None, "TLS 1.3")

    # SIGHUP: a key that does not match keeps the old certificate in use...
    shutil.copy(pki.p("alice.key"), pki.server_key + ".new")
    orig_key = open(pki.server_key, "rb").read()
    shutil.copy(pki.p("alice.key"), pki.server_key)
    off = f.hup()
    f.wait_log(r'msg="TLS reload failed, keeping the certificate in use: [^"]*(mismatch|does not match)',
               off, "the failed TLS reload")
    eq(tlsutil.handshake(port, cafile=pki.ca), None, "handshake after a failed reload")
    # ... and a good new certificate (from the other CA) is served to new connections.
    with open(pki.server_key, "wb") as fh:
        fh.write(orig_key)
    shutil.copy(pki.p("other-server.crt"), pki.server_crt)
    shutil.copy(pki.p("other-server.key"), pki.server_key)
    off = f.hup()
    f.wait_log(r'msg="TLS certificate and key reloaded"', off, "the TLS reload")
    eq(tlsutil.handshake(port, cafile=pki.other_ca), None, "the reloaded certificate is served")
    check(tlsutil.handshake(port, cafile=pki.ca) is not None,
          "the old certificate is still served after the reload")
    f.close()


if __name__ == "__main__":
    sec.main(test)
