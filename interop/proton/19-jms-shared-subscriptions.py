#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: JMS 2.0 shared subscriptions the way Qpid JMS makes them (the source of a receiver
# on topic address `t` has the capability "shared", and "global" for a subscription without a
# client id; the subscription is the link name up to its first '|'; the broker offers
# SHARED-SUBS on open). Each message of t reaches one link of a shared subscription; a
# container-scoped subscription of the same name in another container is another subscription;
# a shared durable subscription keeps what arrives while no link is attached; a shared volatile
# one does not.
# interop: ferry-only
import amqpc
from amqpc import Message, check, eq
from proton import Data, symbol
from proton.reactor import DurableSubscription, ReceiverOption


class Caps(ReceiverOption):
    def __init__(self, *caps):
        self.caps = caps

    def apply(self, receiver):
        d = receiver.source.capabilities
        d.put_array(False, Data.SYMBOL)
        d.enter()
        for c in self.caps:
            d.put_symbol(symbol(c))
        d.exit()


def drain(rcvs, want, what):
    """Receives from the links until want messages came (in all), then checks nothing more."""
    got = {i: [] for i in range(len(rcvs))}
    n = 0
    import time
    deadline = time.monotonic() + amqpc.DEADLINE
    while n < want:
        check(time.monotonic() < deadline, "%s: %d of %d messages" % (what, n, want))
        for i, r in enumerate(rcvs):
            try:
                m = r.receive(timeout=0.05)
            except Exception as e:
                if type(e).__name__ == "Timeout":
                    continue
                raise
            r.accept()
            got[i].append(m.body)
            n += 1
    for r in rcvs:
        amqpc.expect_none(r, what + ": nothing more")
    return got


def send(snd, bodies):
    for b in bodies:
        snd.send(Message(body=b))


def test():
    t = amqpc.PREFIX + "-19"
    a = amqpc.connect(container_id="jms-a")
    caps = a.conn.remote_offered_capabilities
    check(caps is not None and symbol("SHARED-SUBS") in list(caps),
          "SHARED-SUBS offered on open (%r)" % (caps,))
    b = amqpc.connect(container_id="jms-b")
    c = amqpc.connect(container_id="jms-c")
    snd = amqpc.connect().create_sender(t, name="pub")

    # Global shared durable: one subscription across containers.
    g1 = a.create_receiver(t, name="gsub|global", credit=100,
                           options=[DurableSubscription(), Caps("topic", "shared", "global")])
    g2 = b.create_receiver(t, name="gsub|global", credit=100,
                           options=[DurableSubscription(), Caps("topic", "shared", "global")])
    # Container-scoped shared durable: two links of one subscription in jms-a, and a
    # subscription of the same name in jms-c, which is another one.
    s1 = a.create_receiver(t, name="sub", credit=100,
                           options=[DurableSubscription(), Caps("topic", "shared")])
    s2 = a.create_receiver(t, name="sub|2", credit=100,
                           options=[DurableSubscription(), Caps("topic", "shared")])
    s3 = c.create_receiver(t, name="sub", credit=100,
                           options=[DurableSubscription(), Caps("topic", "shared")])
    # Shared volatile in jms-b.
    v1 = b.create_receiver(t, name="vsub|volatile1", credit=100, options=[Caps("topic", "shared")])
    v2 = b.create_receiver(t, name="vsub|volatile2", credit=100, options=[Caps("topic", "shared")])
    bodies = ["m%d" % i for i in range(40)]
    send(snd, bodies)
    for what, links in (("global shared durable", [g1, g2]), ("shared durable in jms-a", [s1, s2]),
                        ("shared volatile", [v1, v2])):
        got = drain(links, 40, what)
        eq(sorted(got[0] + got[1]), sorted(bodies), what + ": every message once")
        check(got[0] and got[1], what + ": both links got some (%d, %d)"
              % (len(got[0]), len(got[1])))
    eq(sorted(drain([s3], 40, "sub in jms-c")[0]), sorted(bodies),
       "the same name in another container is another subscription")

    # Links detached, not closed (their connections close, as when a JMS application stops):
    # the durable subscriptions keep what comes meanwhile, the volatile one does not (its
    # group goes with its last link).
    a.close()
    b.close()
    send(snd, ["later-%d" % i for i in range(5)])
    g3 = c.create_receiver(t, name="gsub|global", credit=100,
                           options=[DurableSubscription(), Caps("topic", "shared", "global")])
    eq(sorted(drain([g3], 5, "global shared durable after detach")[0]),
       ["later-%d" % i for i in range(5)], "kept for the global shared durable subscription")
    b = amqpc.connect(container_id="jms-b")
    v3 = b.create_receiver(t, name="vsub|volatile1", credit=100, options=[Caps("topic", "shared")])
    amqpc.expect_none(v3, "a shared volatile subscription keeps nothing without links")
    send(snd, ["new"])
    eq(drain([v3], 1, "volatile again")[0], ["new"], "then it gets what comes")
    for conn in (b, c):
        conn.close()


if __name__ == "__main__":
    amqpc.main(test)
