// SPDX-License-Identifier: Apache-2.0
// Helpers for the MQTT.js interop tests (required, not run): connect with a deadline, collect
// messages, wait for conditions with deadlines, end every client. Exits 77 when MQTT.js is not
// installed (scripts/interop-deps.sh installs it with npm ci).
'use strict';

let mqtt;
try {
    mqtt = require('mqtt');
} catch (e) {
    console.log('SKIP: MQTT.js is not installed (scripts/interop-deps.sh: npm ci in interop/mqttjs)');
    process.exit(77);
}

const HOST = process.env.FERRY_MQTT_HOST || '127.0.0.1';
const PORT = Number(process.env.FERRY_MQTT_PORT || 0);
const DEADLINE_MS = 10000;
const QUIET_MS = 500;
const PREFIX = 'js' + process.pid;
const clients = [];

function fail(what) {
    throw new Error(what);
}

function eq(got, want, what) {
    const g = JSON.stringify(got);
    const w = JSON.stringify(want);
    if (g !== w) {
        fail(`${what}: got ${g}, want ${w}`);
    }
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitUntil(pred, what, ms = DEADLINE_MS) {
    const end = Date.now() + ms;
    while (!pred()) {
        if (Date.now() > end) {
            fail(`timed out after ${ms} ms waiting for ${what}`);
        }
        await sleep(10);
    }
}

function withDeadline(promise, what, ms = DEADLINE_MS) {
    let timer;
    const t = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// connect(opts) -> {client, connack, messages}: waits for CONNACK. opts go to mqtt.connect
// (protocolVersion, clientId, clean, properties, ...); automatic reconnection is off.
async function connect(opts) {
    const client = mqtt.connect({
        host: HOST, port: PORT, protocol: 'mqtt', reconnectPeriod: 0, connectTimeout: DEADLINE_MS,
        ...opts,
    });
    clients.push(client);
    const c = { client, messages: [], connack: null };
    client.on('message', (topic, payload, packet) => {
        c.messages.push({ topic, payload: payload.toString(), qos: packet.qos,
                          retain: packet.retain, properties: packet.properties });
    });
    c.connack = await withDeadline(new Promise((resolve, reject) => {
        client.once('connect', resolve);
        client.once('error', reject);
    }), `CONNACK for ${opts.clientId || '(no id)'}`);
    return c;
}

async function end(c) {
    await withDeadline(c.client.endAsync(), 'client end');
}

async function quiet() {
    await sleep(QUIET_MS);
}

function main(test) {
    if (!PORT) {
        console.error('FERRY_MQTT_PORT is not set: run through interop/run.py');
        process.exit(2);
    }
    const start = Date.now();
    withDeadline(test(), 'the whole test', 25000).then(() => {
        console.log(`ok (${((Date.now() - start) / 1000).toFixed(1)}s)`);
        return 0;
    }, (err) => {
        console.error('FAIL: ' + (err && err.stack ? err.stack : err));
        return 1;
    }).then((rc) => {
        for (const c of clients) {
            c.end(true);
        }
        process.exit(rc);
    });
}

module.exports = { mqtt, HOST, PORT, PREFIX, DEADLINE_MS, fail, eq, sleep, waitUntil, withDeadline,
                   connect, end, quiet, main };
