#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (cross-protocol): `ferryctl send t --tag X --prop k=v BODY` reaches an AMQP receiver
# of t as a data section with subject X, application property k=v, a message-id (the Ferry
# message id, 32 hex digits) and a creation time.
# interop: ferry-only
import re

import amqpc
from amqpc import check, eq


def test():
    t = amqpc.PREFIX + "-12"
    c = amqpc.connect()
    rcv = c.create_receiver(t, credit=5)
    r = amqpc.ferryctl("send", t, "--tag", "X", "--prop", "k=v", "--key", "K1", "from native")
    eq(r.returncode, 0, "ferryctl send (stderr: %s)" % r.stderr)
    m = rcv.receive(timeout=amqpc.DEADLINE)
    rcv.accept()
    eq(bytes(m.body), b"from native", "body as a data section")
    eq(m.subject, "X", "tag as subject")
    eq(m.properties.get("k"), "v", "property as application property")
    check(re.fullmatch(r"[0-9A-F]{32}", str(m.id)), "message-id is the Ferry id: %r" % m.id)
    check(m.creation_time > 0, "creation time set")
    c.close()


amqpc.main(test)
