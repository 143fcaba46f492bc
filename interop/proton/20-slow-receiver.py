#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a receiver that stops reading its socket holds at most about max_queued_bytes of
# output in the broker (plus what the kernel's socket buffers took and max_prefetch messages):
# with credit for all 256 messages of 64 KiB waiting in its group, it gets fewer sent (the rest
# stay in the store) until it reads again, and then every one arrives, in order.
# Regression: the limit was checked against the socket's buffered output only, which grows when
# output is written, not while one dispatch pass of the core hands a link message after message
# (each topping the core's credit up again): all 256 went into proton's buffer at once.
# Also covers the plain-TCP socket handling: output left in proton while the socket is full,
# consumers held back above the limit and given credit again once it drains.
# interop: ferry-only, own-broker
import os
import subprocess
import sys
import time

import amqpc
from amqpc import Message, check, eq

N = 256
BODY = 64 * 1024

CHILD = r'''
import os, sys
sys.path.insert(0, os.environ["FERRY_INTEROP_DIR"] + "/proton")
import amqpc
c = amqpc.connect()
rcv = c.create_receiver(sys.argv[1], credit=1000)
print("attached", flush=True)
sys.stdin.readline()  # meanwhile nothing reads the socket
got = []
for _ in range(int(sys.argv[2])):
    m = rcv.receive(timeout=amqpc.DEADLINE)
    got.append(int(bytes(m.body[:8])))
    rcv.accept()
print("got", len(got), "ordered" if got == sorted(got) else "unordered", flush=True)
c.close()
'''


def member_inflight(group):
    d = amqpc.ferryctl_json("group", "describe", group)[0]
    return sum(m["inflight"] for m in d["members"])


def group_lag(group):
    return amqpc.ferryctl_json("group", "describe", group)[0]["queues"][0]["lag"]


def test():
    b = amqpc.own_broker("default_queues 1\n[limits]\nmax_queued_bytes 256KiB\n"
                        "[amqp]\nmax_prefetch 16\n")
    child = None
    try:
        t = amqpc.PREFIX + "-20"
        src = t + "/subscriptions/g"
        c = amqpc.connect()
        c.create_receiver(src, name="init", credit=0).close()  # the group starts here
        snd = c.create_sender(t)
        for i in range(N):
            snd.send(Message(body=b"%08d" % i + b"x" * (BODY - 8)))
        child = subprocess.Popen([sys.executable, "-c", CHILD, src, str(N)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env=dict(os.environ))
        eq(child.stdout.readline().strip(), "attached", "the slow receiver attached")
        # The broker sends until the socket and max_queued_bytes are full, then stops.
        last, stable_since = -1, time.monotonic()
        end = time.monotonic() + amqpc.DEADLINE
        while time.monotonic() < end:
            n = member_inflight("g")
            if n != last:
                last, stable_since = n, time.monotonic()
            elif n > 0 and time.monotonic() - stable_since >= 1.0:
                break
            time.sleep(0.1)
        check(0 < last < N, "deliveries sent to a receiver that reads nothing: %d of %d "
              "(the broker should stop near max_queued_bytes)" % (last, N))
        child.stdin.write("go\n")
        child.stdin.flush()
        out, _ = child.communicate(timeout=60)
        eq(out.strip(), "got %d ordered" % N, "what the receiver got once it read again")
        amqpc.wait_until(lambda: group_lag("g") == 0, "every message acknowledged")
        c.close()
    finally:
        if child and child.poll() is None:
            child.kill()
            child.wait()
        b.close()


amqpc.main(test)
