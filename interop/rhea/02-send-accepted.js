// SPDX-License-Identifier: Apache-2.0
// Ferry only: rhea sends 1,000 unsettled messages to a topic as fast as link credit allows; each
// is settled `accepted` (stored), and a receiver attached before gets all 1,000, in order per
// queue, with bodies, subjects and application properties intact. A message to a name that is
// not a topic through the anonymous relay is rejected with amqp:not-found.
// interop: ferry-only
'use strict';
const { PREFIX, check, close, connect, eq, main, receiveN, receiver, sender, waitUntil } =
    require('./lib');

main(async () => {
    const t = `${PREFIX}-02`;
    const n = 1000;
    const c = await connect();
    const r = await receiver(c, t, { credit_window: 200 });
    const s = await sender(c, t);
    const outcomes = [];
    const pending = [];
    for (let i = 0; i < n; i++) {
        await waitUntil(() => s.link.sendable(), `credit for message ${i}`);
        const msg = { body: `m${i}`, subject: 'T', application_properties: { i },
                      message_annotations: { 'x-opt-partition-key': 'k' } };
        pending.push(s.send(msg).then((o) => outcomes.push(o)));
    }
    await Promise.all(pending);
    eq(outcomes.length, n, 'outcomes');
    eq(outcomes.filter((o) => o !== 'accepted'), [], 'every transfer accepted');
    const bodies = await receiveN(r, n, 'receiver');
    eq(bodies.length, n, 'received count');
    // one partition key: one queue, in order
    eq(bodies, Array.from({ length: n }, (_, i) => `m${i}`), 'bodies in order');
    const m = r.messages[7].message;
    eq(m.subject, 'T', 'subject');
    eq(m.application_properties && m.application_properties.i, 7, 'application property');

    const relay = await sender(c, undefined);
    eq(await relay.send({ to: t, body: 'relayed' }), 'accepted', 'relay to the topic');
    eq(await relay.send({ to: 'not a topic!', body: 'x' }), 'rejected amqp:not-found',
       'relay to a bad name');
    await waitUntil(() => r.messages.length === n + 1, 'the relayed message');
    check(r.messages[n].message.body === 'relayed', 'relayed body');
    await close(c);
});
