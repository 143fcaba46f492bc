#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Ferry only (cross-protocol): an AMQP message to topic t reaches a native consumer group
# (`ferryctl consume t --group G --from first --json`) with its subject as the tag, application
# properties as message properties, message-id, correlation-id, content-type and reply-to as
# amqp.* properties, a data section as the body, and a string body as its text.
# interop: ferry-only
import amqpc
from amqpc import Message, eq


def test():
    t = amqpc.PREFIX + "-11"
    c = amqpc.connect()
    snd = c.create_sender(t)
    snd.send(Message(id="mid-1", correlation_id="corr", content_type="application/json",
                     reply_to="answers", subject="TagA", body=b'{"v": 1}', inferred=True,
                     properties={"unit": "C", "n": 7, "ok": True}))
    snd.send(Message(body="plain text"))
    c.close()
    msgs = amqpc.ferryctl_json("consume", t, "--group", "native", "--from", "first", "--count",
                               "2", "--timeout", "10000")
    eq(len(msgs), 2, "messages consumed natively")
    by = {m["tag"]: m for m in msgs}
    m = by["TagA"]
    eq(m["topic"], t, "native topic")
    eq(m.get("body"), '{"v": 1}', "data section as the body")
    p = m["properties"]
    for k, v in (("unit", "C"), ("n", "7"), ("ok", "true"), ("amqp.message-id", "mid-1"),
                 ("amqp.correlation-id", "corr"), ("amqp.content-type", "application/json"),
                 ("amqp.reply-to", "answers")):
        eq(p.get(k), v, "property %s" % k)
    eq(by[""].get("body"), "plain text", "a string body as its text")


amqpc.main(test)
