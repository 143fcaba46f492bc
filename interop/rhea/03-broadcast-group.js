// SPDX-License-Identifier: Apache-2.0
// Ferry only: two rhea receivers from source `t` are broadcast members and each gets every
// message; two receivers from `t/subscriptions/g` compete in clustering group g: together they
// get each message once, and both get some (the topic's queues are shared out between them).
// interop: ferry-only
'use strict';
const { PREFIX, check, close, connect, eq, main, quiet, receiveN, receiver, sender, waitUntil } =
    require('./lib');

main(async () => {
    const t = `${PREFIX}-03`;
    const n = 40;
    const c1 = await connect();
    const c2 = await connect();
    const b1 = await receiver(c1, t);
    const b2 = await receiver(c2, t);
    const g1 = await receiver(c1, `${t}/subscriptions/g`);
    const g2 = await receiver(c2, `${t}/subscriptions/g`);
    const s = await sender(c1, t);
    for (let i = 0; i < n; i++) {
        // distinct partition keys spread the messages over the queues
        eq(await s.send({ body: `m${i}`, message_annotations: { 'x-opt-partition-key': `k${i}` } }),
           'accepted', `message ${i}`);
    }
    const want = Array.from({ length: n }, (_, i) => `m${i}`).sort();
    eq((await receiveN(b1, n, 'broadcast b1')).sort(), want, 'b1 gets all');
    eq((await receiveN(b2, n, 'broadcast b2')).sort(), want, 'b2 gets all');
    await waitUntil(() => g1.messages.length + g2.messages.length >= n, 'group g: all messages');
    await quiet();
    const got = g1.messages.concat(g2.messages).map((m) => m.message.body).sort();
    eq(got, want, 'group g gets each message once');
    check(g1.messages.length > 0 && g2.messages.length > 0,
          `both members of g got some (${g1.messages.length} and ${g2.messages.length})`);
    await close(c1);
    await close(c2);
});
