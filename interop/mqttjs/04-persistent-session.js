// SPDX-License-Identifier: Apache-2.0
// Checks a persistent session with MQTT.js: 3.1.1 clean=false and 5.0 clean=false with session
// expiry 300 s; QoS 1 and 2 messages published while the client is offline arrive when it
// reconnects (session present), each once, in order; the subscription is kept.
'use strict';
const { PREFIX, connect, end, eq, quiet, waitUntil, main } = require('./lib');

const N = 20;

main(async () => {
    for (const v of [4, 5]) {
        const id = `${PREFIX}-sess${v}`;
        const t = `${PREFIX}/sess/${v}`;
        const opts = { protocolVersion: v, clientId: id, clean: false };
        if (v === 5) {
            opts.properties = { sessionExpiryInterval: 300 };
        }
        const s = await connect(opts);
        await s.client.subscribeAsync(t + '/+', { qos: 2 });
        await end(s);
        const p = await connect({ protocolVersion: v, clientId: `${PREFIX}-pub${v}` });
        for (const qos of [1, 2]) {
            for (let i = 0; i < N; i++) {
                await p.client.publishAsync(`${t}/${qos}`, `q${qos}-${i}`, { qos });
            }
        }
        const s2 = await connect(opts);
        eq(s2.connack.sessionPresent, true, `v${v} session present`);
        await waitUntil(() => s2.messages.length >= 2 * N, `v${v}: ${2 * N} queued messages`);
        await p.client.publishAsync(`${t}/1`, 'live', { qos: 1 });
        await waitUntil(() => s2.messages.length >= 2 * N + 1, 'the live message');
        await quiet();
        eq(s2.messages.length, 2 * N + 1, `v${v}: no duplicates`);
        for (const qos of [1, 2]) {
            const want = [];
            for (let i = 0; i < N; i++) {
                want.push(`q${qos}-${i}`);
            }
            if (qos === 1) {
                want.push('live');
            }
            eq(s2.messages.filter((m) => m.topic === `${t}/${qos}`).map((m) => m.payload), want,
               `v${v} QoS ${qos} messages`);
        }
        await end(s2);
        await end(p);
    }
});
