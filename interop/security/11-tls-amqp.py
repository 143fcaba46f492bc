#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: AMQP 1.0 over TLS (amqps, [amqp] tls_port) with qpid-proton's SSLDomain. With
# require_certificate and [amqp] sasl_plain false: on TLS, SASL PLAIN (password file) and SASL
# EXTERNAL (the client certificate's CN is the user) both work and the ACL applies to that user;
# on plain TCP PLAIN is not offered; a TLS client without a certificate, or with one from an
# untrusted CA, is refused, and a plain AMQP client on the TLS port too. With
# use_identity_as_username only EXTERNAL is offered on TLS.
# interop: ferry-only, own-broker
import os
import sys

import sec
import tlsutil
from sec import check, eq

sys.path.insert(0, os.path.join(sec.INTEROP, "proton"))
import amqpc  # noqa: E402
from amqpc import Message  # noqa: E402
from proton import Delivery, SSLDomain  # noqa: E402
from proton.utils import BlockingConnection, LinkDetached  # noqa: E402

ACL = """user alice
ntopic readwrite alice*
group g

user bob
ntopic readwrite bob*
group g
"""


def domain(pki, cert=None, ca=None):
    dom = SSLDomain(SSLDomain.MODE_CLIENT)
    dom.set_trusted_ca_db(ca or pki.ca)
    dom.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    if cert:
        dom.set_credentials(cert[0], cert[1], None)
    return dom


def amqps(port, dom, **kw):
    return BlockingConnection("amqps://127.0.0.1:%d" % port, timeout=amqpc.DEADLINE,
                              ssl_domain=dom, sni="localhost", **kw)


def cannot_connect(what, fn):
    try:
        c = fn()
    except Exception:
        return
    c.close()
    raise sec.TestFailure("%s connected" % what)


def roundtrip(c, topic, body):
    rcv = c.create_receiver(topic + "/subscriptions/g", credit=5)
    snd = c.create_sender(topic)
    dl = snd.send(Message(body=body))
    eq(dl.remote_state, Delivery.ACCEPTED, "send to %s" % topic)
    eq(rcv.receive(timeout=amqpc.DEADLINE).body, body, "received from %s" % topic)
    rcv.accept()


def refused_sender(c, topic):
    try:
        c.create_sender(topic, name="no-" + topic)
    except LinkDetached as e:
        cond = e.link.remote_condition
        eq(cond.name if cond else None, "amqp:unauthorized-access", "sender to %s" % topic)
        return
    raise sec.TestFailure("sender to %s was not refused" % topic)


def test(d):
    pki = tlsutil.Pki(d)
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "alice", "pw-alice")
    acl = os.path.join(d, "acl")
    sec.write(acl, ACL)
    base = "password_file %s\nacl_file %s\n" % (pw, acl)
    f = tlsutil.TlsFerry(d, base + tlsutil.tls_conf(pki, require=True,
                                                    extra="[amqp]\nsasl_plain false\n"))
    port = f.tls_ports["amqp"]
    bob = pki.client("bob")

    # TLS + PLAIN (alice by password; the certificate only opens the TLS session).
    c = amqps(port, domain(pki, bob), user="alice", password="pw-alice", allowed_mechs="PLAIN")
    roundtrip(c, "alice1", "plain over tls")
    refused_sender(c, "bob1")
    c.close()
    # TLS + EXTERNAL: bob, from his certificate.
    c = amqps(port, domain(pki, bob), allowed_mechs="EXTERNAL")
    roundtrip(c, "bob1", "external")
    refused_sender(c, "alice1")
    c.close()

    # Plain TCP: PLAIN is not offered (sasl_plain false), nor ANONYMOUS (password file).
    cannot_connect("PLAIN on plain TCP", lambda: amqpc.connect(
        port=f.b.amqp_port, user="alice", password="pw-alice", allowed_mechs="PLAIN"))
    # TLS refusals: no certificate, an untrusted one, a wrong password, a plain client.
    cannot_connect("amqps without a certificate", lambda: amqps(
        port, domain(pki), user="alice", password="pw-alice", allowed_mechs="PLAIN"))
    cannot_connect("amqps with a certificate of an untrusted CA", lambda: amqps(
        port, domain(pki, pki.client("rogue")), allowed_mechs="EXTERNAL"))
    cannot_connect("amqps with a wrong password", lambda: amqps(
        port, domain(pki, bob), user="alice", password="nope", allowed_mechs="PLAIN"))
    cannot_connect("plain AMQP on the TLS port", lambda: amqpc.connect(
        port=port, user="alice", password="pw-alice", allowed_mechs="PLAIN"))
    check("TLS: " in f.log(), "the log names the TLS failures")
    f.close()

    # use_identity_as_username: EXTERNAL only, on TLS.
    d2 = os.path.join(d, "identity")
    os.makedirs(d2)
    f = tlsutil.TlsFerry(d2, base + tlsutil.tls_conf(pki, require=True, identity=True))
    port = f.tls_ports["amqp"]
    cannot_connect("PLAIN over TLS with use_identity_as_username", lambda: amqps(
        port, domain(pki, bob), user="alice", password="pw-alice", allowed_mechs="PLAIN"))
    c = amqps(port, domain(pki, bob), allowed_mechs="EXTERNAL")
    roundtrip(c, "bob2", "identity")
    refused_sender(c, "alice2")
    c.close()
    # Plain TCP keeps PLAIN (sasl_plain true by default).
    c = amqpc.connect(port=f.b.amqp_port, user="alice", password="pw-alice",
                      allowed_mechs="PLAIN")
    roundtrip(c, "alice2", "plain tcp")
    c.close()
    f.close()


if __name__ == "__main__":
    sec.main(test)
