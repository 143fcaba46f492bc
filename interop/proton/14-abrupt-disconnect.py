#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a receiver of group g that holds 3 unsettled deliveries and dies without closing
# anything (its process exits, the socket just closes) gives them back to the group: another
# member of g gets all 3, with delivery-count >= 1.
# interop: ferry-only
import subprocess
import sys

import amqpc
from amqpc import Message, check, eq

CHILD = r'''
import os, sys
sys.path.insert(0, os.environ["FERRY_INTEROP_DIR"] + "/proton")
import amqpc
c = amqpc.connect()
rcv = c.create_receiver(sys.argv[1], credit=10)
for _ in range(3):
    rcv.receive(timeout=amqpc.DEADLINE)  # never settled
print("holding", flush=True)
os._exit(0)
'''


def test():
    t = amqpc.PREFIX + "-14"
    src = t + "/subscriptions/g"
    c = amqpc.connect()
    c.create_receiver(src, name="init", credit=0).close()  # the group starts here
    snd = c.create_sender(t)
    for i in range(3):
        snd.send(Message(body="u%d" % i))
    r = subprocess.run([sys.executable, "-c", CHILD, src], capture_output=True, text=True,
                       timeout=30)
    eq(r.stdout.strip(), "holding", "the dying receiver got 3 (stderr: %s)" % r.stderr)
    rcv = c.create_receiver(src, name="second", credit=10)
    got = amqpc.receive_n(rcv, 3, "deliveries given back")
    eq(sorted(m.body for m in got), ["u0", "u1", "u2"], "bodies given back")
    check(all(m.delivery_count >= 1 for m in got),
          "delivery-count of redeliveries: %r" % [m.delivery_count for m in got])
    c.close()


amqpc.main(test)
