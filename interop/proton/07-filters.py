#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only: a source filter `apache.org:selector-filter:string` (python's Selector) is the
# SQL92 selector over application properties and the subject (tag); `ferry:tag-filter` is a tag
# expression. The broker echoes exactly the filters it applied in its attach; a bad selector is
# refused with amqp:invalid-field.
# interop: ferry-only
import amqpc
from amqpc import Message, check, eq
from proton import Described, symbol
from proton.reactor import Filter, Selector
from proton.utils import LinkDetached


def filters(rcv):
    d = rcv.link.remote_source.filter
    d.rewind()
    return d.get_object() if d.next() else {}


def test():
    t = amqpc.PREFIX + "-07"
    c = amqpc.connect()
    sel = c.create_receiver(t, name="sel", credit=20,
                            options=Selector("color = 'red' AND n > 5"))
    filt = filters(sel)
    check(filt and symbol("selector") in filt, "selector echoed in the attach: %r" % filt)
    tags = c.create_receiver(t, name="tags", credit=20, options=Filter({
        symbol("ferry:tag-filter"): Described(symbol("ferry:tag-filter"), "TagA || TagB")}))
    check(symbol("ferry:tag-filter") in filters(tags),
          "tag filter echoed")
    other = c.create_receiver(t, name="other", credit=20, options=Filter({
        symbol("unknown"): Described(symbol("x-unknown"), "whatever")}))
    check(not filters(other), "an unknown filter is not echoed: %r" % filters(other))

    snd = c.create_sender(t)
    msgs = [("red", 9, "TagA"), ("red", 2, "TagB"), ("blue", 9, "TagC"), ("red", 7, None)]
    for color, n, tag in msgs:
        snd.send(Message(body="%s-%d" % (color, n), subject=tag,
                         properties={"color": color, "n": n}))
    got = sorted(m.body for m in amqpc.receive_n(sel, 2, "selector"))
    eq(got, ["red-7", "red-9"], "selector color = 'red' AND n > 5")
    amqpc.expect_none(sel, "selector: nothing else")
    got = sorted(m.body for m in amqpc.receive_n(tags, 2, "tag filter"))
    eq(got, ["red-2", "red-9"], "tag filter TagA || TagB")
    amqpc.expect_none(tags, "tag filter: nothing else")
    eq(len(amqpc.receive_n(other, 4, "no filter")), 4, "an unknown filter filters nothing")

    try:
        c.create_receiver(t, name="bad", options=Selector("color = = 'x'"))
        raise amqpc.TestFailure("a bad selector was accepted")
    except LinkDetached as e:
        eq(e.link.remote_condition.name, "amqp:invalid-field", "condition of a bad selector")
    c.close()


amqpc.main(test)
