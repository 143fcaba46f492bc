// SPDX-License-Identifier: Apache-2.0
// Checks MQTT.js publish/subscribe at QoS 0, 1 and 2 with MQTT 3.1.1 and 5.0 clients (both
// directions between the versions): SUBACK grants the requested QoS, each subscriber gets every
// message exactly once, payloads exact and in order, delivered QoS = min(published, granted);
// v5 user properties reach the v5 subscriber.
'use strict';
const { PREFIX, connect, end, eq, quiet, waitUntil, main } = require('./lib');

const N = 30;

main(async () => {
    const s4 = await connect({ protocolVersion: 4, clientId: PREFIX + '-s4' });
    const s5 = await connect({ protocolVersion: 5, clientId: PREFIX + '-s5' });
    const t = PREFIX + '/q';
    eq((await s4.client.subscribeAsync(t + '/#', { qos: 2 })).map((g) => g.qos), [2], 'v4 SUBACK');
    eq((await s5.client.subscribeAsync(t + '/#', { qos: 1 })).map((g) => g.qos), [1], 'v5 SUBACK');
    const p4 = await connect({ protocolVersion: 4, clientId: PREFIX + '-p4' });
    const p5 = await connect({ protocolVersion: 5, clientId: PREFIX + '-p5' });
    const want = [];
    for (const [p, v] of [[p4, 4], [p5, 5]]) {
        for (const qos of [0, 1, 2]) {
            for (let i = 0; i < N; i++) {
                const topic = `${t}/${v}/${qos}`;
                const payload = `v${v}-q${qos}-${i}`;
                const opts = { qos };
                if (v === 5) {
                    opts.properties = { userProperties: { k: 'v' + i } };
                }
                await p.client.publishAsync(topic, payload, opts);
                want.push({ topic, payload, qos });
            }
        }
    }
    await waitUntil(() => s4.messages.length >= want.length && s5.messages.length >= want.length,
                    `${want.length} messages at both subscribers`);
    await quiet();
    for (const [s, granted] of [[s4, 2], [s5, 1]]) {
        const got = s.messages.map((m) => ({ topic: m.topic, payload: m.payload, qos: m.qos }));
        const exp = want.map((w) => ({ ...w, qos: Math.min(w.qos, granted) }));
        const key = (m) => `${m.topic}|${m.payload}|${m.qos}`;
        eq(got.map(key).sort(), exp.map(key).sort(), `messages at the QoS ${granted} subscriber`);
        for (const topic of new Set(want.map((w) => w.topic))) {
            eq(got.filter((m) => m.topic === topic).map((m) => m.payload),
               want.filter((w) => w.topic === topic).map((w) => w.payload), 'order on ' + topic);
        }
    }
    const withProps = s5.messages.filter((m) => m.topic.startsWith(`${t}/5/`));
    for (const m of withProps) {
        const i = m.payload.split('-')[2];
        eq(m.properties && m.properties.userProperties, { k: 'v' + i }, 'v5 user property');
    }
    for (const c of [s4, s5, p4, p5]) {
        await end(c);
    }
});
