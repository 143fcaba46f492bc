// SPDX-License-Identifier: Apache-2.0
// Checks retained messages with MQTT.js (3.1.1 and 5.0): a new subscriber gets the retained message
// with the retain flag set; an empty retained publish clears it, so the next subscriber's first
// message is a live one with the retain flag clear.
'use strict';
const { PREFIX, connect, end, eq, waitUntil, main } = require('./lib');

main(async () => {
    for (const v of [4, 5]) {
        const t = `${PREFIX}/ret/${v}`;
        const p = await connect({ protocolVersion: v, clientId: `${PREFIX}-p${v}` });
        await p.client.publishAsync(t, 'kept', { qos: 1, retain: true });
        const s = await connect({ protocolVersion: v, clientId: `${PREFIX}-s${v}` });
        await s.client.subscribeAsync(t, { qos: 1 });
        await waitUntil(() => s.messages.length >= 1, 'the retained message');
        eq([s.messages[0].payload, s.messages[0].retain], ['kept', true], `v${v} retained`);
        await p.client.publishAsync(t, '', { qos: 1, retain: true });
        await waitUntil(() => s.messages.length >= 2, 'the clearing message');
        eq([s.messages[1].payload, s.messages[1].retain], ['', false], `v${v} clearing message`);
        const s2 = await connect({ protocolVersion: v, clientId: `${PREFIX}-s2${v}` });
        await s2.client.subscribeAsync(t, { qos: 1 });
        await p.client.publishAsync(t, 'live', { qos: 1 });
        await waitUntil(() => s2.messages.length >= 1, 'the live message');
        eq([s2.messages[0].payload, s2.messages[0].retain], ['live', false],
           `v${v} first message after the clear`);
        for (const c of [p, s, s2]) {
            await end(c);
        }
    }
});
