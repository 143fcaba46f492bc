// SPDX-License-Identifier: Apache-2.0
// Ferry only: request/reply with rhea. A receiver with a dynamic source gets a broker-made
// address (%TMP%amqp-...) in the attach reply; a service reading requests from
// `t/subscriptions/svc` answers each to its reply-to through the anonymous relay, with the
// correlation id; the replies reach the dynamic receiver only. Once it detaches, a reply to that
// address is rejected with amqp:not-found.
// interop: ferry-only
'use strict';
const { PREFIX, check, close, connect, eq, main, quiet, receiveN, receiver, sender, waitUntil } =
    require('./lib');

main(async () => {
    const t = `${PREFIX}-05`;
    const svc = await connect();
    const requests = await receiver(svc, `${t}/subscriptions/svc`);
    const relay = await sender(svc, undefined);

    const cli = await connect();
    const replies = await receiver(cli, { dynamic: true });
    const addr = replies.link.remote.attach.source.address;
    check(typeof addr === 'string' && addr.startsWith('%TMP%amqp-'), `dynamic address ${addr}`);
    const other = await receiver(cli, { dynamic: true });
    check(other.link.remote.attach.source.address !== addr, 'two dynamic sources, two addresses');

    const req = await sender(cli, t);
    const n = 5;
    for (let i = 0; i < n; i++) {
        eq(await req.send({ body: `q${i}`, reply_to: addr, correlation_id: `c${i}` }), 'accepted',
           `request ${i}`);
    }
    await receiveN(requests, n, 'requests');
    for (const { message } of requests.messages) {
        eq(message.reply_to, addr, 'reply-to of a request');
        eq(await relay.send({ to: message.reply_to, correlation_id: message.correlation_id,
                              body: 'a' + message.body.slice(1) }), 'accepted', 'reply');
    }
    await receiveN(replies, n, 'replies');
    eq(replies.messages.map((m) => [m.message.correlation_id, m.message.body]).sort(),
       Array.from({ length: n }, (_, i) => [`c${i}`, `a${i}`]), 'replies with correlation ids');
    await quiet();
    eq(other.messages.length, 0, 'the other dynamic receiver gets nothing');

    const detached = new Promise((resolve) => replies.link.once('receiver_close', resolve));
    replies.link.close();
    await detached;
    await waitUntil(() => true, 'detach');
    eq(await relay.send({ to: addr, body: 'late' }), 'rejected amqp:not-found',
       'reply to a closed dynamic address');
    await close(cli);
    await close(svc);
});
