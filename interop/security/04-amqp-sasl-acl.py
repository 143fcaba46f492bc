#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: AMQP 1.0 with a password file and an ACL (qpid-proton). SASL PLAIN with the right
# password connects, a wrong one and ANONYMOUS (not offered any more) fail, and so does a client
# that skips SASL. Attaching a sender or receiver to a topic the user may not write or read, or a
# receiver to a consumer group the user may not use, is refused with amqp:unauthorized-access;
# allowed links work and the connection survives the refusals. A message relayed (sender without
# a target) to a topic the user may not write is rejected with amqp:unauthorized-access; one to a
# dynamic source's reply address is accepted without a rule (request/reply).
# interop: ferry-only, own-broker
import os
import sys

import sec
from sec import check, eq

sys.path.insert(0, os.path.join(sec.INTEROP, "proton"))
import amqpc  # noqa: E402
from amqpc import Message  # noqa: E402
from proton import Delivery  # noqa: E402
from proton.utils import LinkDetached  # noqa: E402

ACL = """
user alice
ntopic readwrite ok*
ntopic read feed
group billing
"""


def refused(what, fn, want="amqp:unauthorized-access"):
    try:
        fn()
    except LinkDetached as e:
        cond = e.link.remote_condition
        eq(cond.name if cond else None, want, "condition for %s" % what)
        return
    raise sec.TestFailure("%s was not refused" % what)


def cannot_connect(what, **kw):
    try:
        c = amqpc.connect(**kw)
    except Exception:
        return
    c.close()
    raise sec.TestFailure("%s connected" % what)


def test(d):
    pw = os.path.join(d, "passwd")
    sec.passwd(pw, "alice", "pw-alice")
    sec.write(os.path.join(d, "acl"), ACL)
    f = sec.Ferry(d, "password_file %s\nacl_file %s\n" % (pw, os.path.join(d, "acl")))

    cannot_connect("wrong password", user="alice", password="nope", allowed_mechs="PLAIN")
    cannot_connect("unknown user", user="mallory", password="pw-alice", allowed_mechs="PLAIN")
    cannot_connect("ANONYMOUS", allowed_mechs="ANONYMOUS")
    cannot_connect("no SASL", sasl_enabled=False)

    c = amqpc.connect(user="alice", password="pw-alice", allowed_mechs="PLAIN")
    refused("sender to secret", lambda: c.create_sender("secret", name="s1"))
    refused("receiver from secret", lambda: c.create_receiver("secret", name="r1"))
    refused("sender to feed (read only)", lambda: c.create_sender("feed", name="s2"))
    refused("receiver in group other", lambda: c.create_receiver("ok1/subscriptions/other",
                                                                 name="r2"))
    rcv = c.create_receiver("ok1/subscriptions/billing", credit=5)
    snd = c.create_sender("ok1")
    d1 = snd.send(Message(body="allowed"))
    eq(d1.remote_state, Delivery.ACCEPTED, "send to ok1")
    eq(rcv.receive(timeout=amqpc.DEADLINE).body, "allowed", "received from ok1")
    rcv.accept()
    relay = c.create_sender(None, name="relay")
    d2 = relay.send(Message(address="secret", body="no"), error_states=[])
    eq(d2.remote_state, Delivery.REJECTED, "relay to secret")
    eq(d2.remote.condition.name if d2.remote.condition else None, "amqp:unauthorized-access",
       "condition of relay to secret")
    d3 = relay.send(Message(address="ok2", body="yes"))
    eq(d3.remote_state, Delivery.ACCEPTED, "relay to ok2")
    # Request/reply: a dynamic source's temporary topic may be answered to without a rule.
    reply = c.create_receiver(None, dynamic=True, credit=5, name="replies")
    addr = reply.link.remote_source.address
    check(addr, "dynamic source address")
    d4 = relay.send(Message(address=addr, body="answer"))
    eq(d4.remote_state, Delivery.ACCEPTED, "relay to the reply address")
    eq(reply.receive(timeout=amqpc.DEADLINE).body, "answer", "the reply")
    reply.accept()
    check(c.conn.state & c.conn.REMOTE_ACTIVE, "connection still open")
    c.close()
    f.close()


sec.main(test)
