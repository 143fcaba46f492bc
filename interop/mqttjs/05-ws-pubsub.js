// SPDX-License-Identifier: Apache-2.0
// Checks MQTT.js over WebSocket (ws://host:ws_port/mqtt, subprotocol mqtt): 3.1.1 and 5.0
// clients connect over ws, subscribe and publish at QoS 0, 1 and 2; every subscriber (over ws
// and over plain TCP) gets each message exactly once, in order, at min(published, granted) QoS,
// whichever transport published it; a 1 MiB payload (many TCP segments, one WebSocket message)
// arrives intact over ws and over TCP; the subprotocol negotiated is mqtt (mqttv3.1 for an MQTT
// 3.1 client); clients end without an error (the close handshake completes).
// interop: ws
'use strict';
const { PREFIX, connect, end, eq, quiet, waitUntil, main, fail } = require('./lib');

const WebSocket = require('ws'); // MQTT.js's own WebSocket library
const WS_PORT = Number(process.env.FERRY_WS_PORT || 0);
const N = 10;
const sockets = {}; // client id -> its WebSocket, to read the negotiated subprotocol

function overWs(opts) {
    return {
        protocol: 'ws', port: WS_PORT, path: '/mqtt', ...opts,
        createWebsocket: (url, protocols) => {
            const s = new WebSocket(url, protocols);
            sockets[opts.clientId] = s;
            return s;
        },
    };
}

main(async () => {
    if (!WS_PORT) {
        fail('FERRY_WS_PORT is not set (the test needs `interop: ws`)');
    }
    const t = PREFIX + '/ws';
    const w4 = await connect(overWs({ protocolVersion: 4, clientId: PREFIX + '-w4' }));
    const w5 = await connect(overWs({ protocolVersion: 5, clientId: PREFIX + '-w5' }));
    const tcp = await connect({ protocolVersion: 4, clientId: PREFIX + '-tcp' });
    eq(sockets[PREFIX + '-w4'].protocol, 'mqtt', 'subprotocol negotiated with a 3.1.1 client');
    // MQTT 3.1 clients ask for the old subprotocol name.
    const w3 = await connect(overWs({ protocolId: 'MQIsdp', protocolVersion: 3,
                                      clientId: PREFIX + '-w3' }));
    eq(sockets[PREFIX + '-w3'].protocol, 'mqttv3.1', 'subprotocol negotiated with a 3.1 client');
    await end(w3);
    eq((await w4.client.subscribeAsync(t + '/#', { qos: 2 })).map((g) => g.qos), [2], 'ws v4 SUBACK');
    eq((await w5.client.subscribeAsync(t + '/#', { qos: 1 })).map((g) => g.qos), [1], 'ws v5 SUBACK');
    eq((await tcp.client.subscribeAsync(t + '/#', { qos: 2 })).map((g) => g.qos), [2], 'tcp SUBACK');
    const p4 = await connect(overWs({ protocolVersion: 4, clientId: PREFIX + '-p4' }));
    const p5 = await connect(overWs({ protocolVersion: 5, clientId: PREFIX + '-p5' }));
    const pt = await connect({ protocolVersion: 5, clientId: PREFIX + '-pt' });
    const want = [];
    for (const [p, name] of [[p4, 'ws4'], [p5, 'ws5'], [pt, 'tcp']]) {
        for (const qos of [0, 1, 2]) {
            for (let i = 0; i < N; i++) {
                const topic = `${t}/${name}/${qos}`;
                const payload = `${name}-q${qos}-${i}`;
                await p.client.publishAsync(topic, payload, { qos });
                want.push({ topic, payload, qos });
            }
        }
    }
    await waitUntil(() => [w4, w5, tcp].every((s) => s.messages.length >= want.length),
                    `${want.length} messages at every subscriber`);
    await quiet();
    for (const [s, granted, what] of [[w4, 2, 'ws v4'], [w5, 1, 'ws v5'], [tcp, 2, 'tcp']]) {
        const got = s.messages.map((m) => ({ topic: m.topic, payload: m.payload, qos: m.qos }));
        const exp = want.map((w) => ({ ...w, qos: Math.min(w.qos, granted) }));
        const key = (m) => `${m.topic}|${m.payload}|${m.qos}`;
        eq(got.map(key).sort(), exp.map(key).sort(), `messages at the ${what} subscriber`);
        for (const topic of new Set(want.map((w) => w.topic))) {
            eq(got.filter((m) => m.topic === topic).map((m) => m.payload),
               want.filter((w) => w.topic === topic).map((w) => w.payload), `order on ${topic} (${what})`);
        }
        s.messages.length = 0;
    }

    // 1 MiB: far more than one TCP segment or one read of the broker.
    let big = '';
    for (let i = 0; big.length < (1 << 20); i++) {
        big += `${i}:0123456789abcdef;`;
    }
    await p5.client.publishAsync(t + '/big', big, { qos: 1 });
    await waitUntil(() => [w4, w5, tcp].every((s) => s.messages.length >= 1), 'the 1 MiB message');
    for (const [s, what] of [[w4, 'ws v4'], [w5, 'ws v5'], [tcp, 'tcp']]) {
        eq(s.messages.length, 1, `one big message at ${what}`);
        if (s.messages[0].payload !== big) {
            fail(`the 1 MiB payload at ${what} differs (length ${s.messages[0].payload.length})`);
        }
    }
    const errors = [];
    for (const c of [w4, w5, p4, p5]) {
        c.client.on('error', (e) => errors.push(e.message));
    }
    for (const c of [w4, w5, tcp, p4, p5, pt]) {
        await end(c);
    }
    await quiet();
    eq(errors, [], 'errors on the ws clients while they end (close handshake)');
});
