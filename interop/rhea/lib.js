// SPDX-License-Identifier: Apache-2.0
// Helpers for the rhea (AMQP 1.0) interop tests (required, not run): connections, senders and
// receivers as promises with deadlines, outcomes per delivery, waits with deadlines; every
// connection is closed at the end. Exits 77 when rhea is not installed (scripts/interop-deps.sh
// runs npm ci in interop/rhea). Reads FERRY_MQTT_HOST (the host) and FERRY_AMQP_PORT.
'use strict';

let rhea;
try {
    rhea = require('rhea');
} catch (e) {
    console.log('SKIP: rhea is not installed (scripts/interop-deps.sh: npm ci in interop/rhea)');
    process.exit(77);
}

const HOST = process.env.FERRY_MQTT_HOST || '127.0.0.1';
const PORT = Number(process.env.FERRY_AMQP_PORT || 0);
const DEADLINE_MS = 10000;
const QUIET_MS = 500;
const PREFIX = 'rh' + process.pid;
const conns = [];

function fail(what) {
    throw new Error(what);
}

function check(cond, what) {
    if (!cond) {
        fail(what);
    }
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
        await sleep(5);
    }
}

function withDeadline(promise, what, ms = DEADLINE_MS) {
    let timer;
    const t = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function condOf(ctx, endpoint) {
    const e = (endpoint && endpoint.error) || (ctx && ctx.error);
    return e ? `${e.condition}: ${e.description}` : 'no condition';
}

// connect(opts) -> an open rhea connection. opts go to container.connect: `username` and
// `password` select SASL PLAIN, `username` alone SASL ANONYMOUS, neither no SASL at all.
function connect(opts = {}, id = undefined) {
    const container = rhea.create_container({ id: id || `${PREFIX}-${conns.length}` });
    const conn = container.connect({ host: HOST, port: PORT, reconnect: false, ...opts });
    conns.push(conn);
    return withDeadline(new Promise((resolve, reject) => {
        conn.once('connection_open', () => resolve(conn));
        conn.once('connection_error', (ctx) => reject(new Error('connection refused: ' +
                                                                condOf(ctx, ctx.connection))));
        conn.once('disconnected', (ctx) => reject(new Error('disconnected: ' +
                                                            (ctx.error || 'closed'))));
    }), 'connection open');
}

// receiver(conn, source, opts) -> {link, messages}: opens a receiver (source: an address or a
// source object) and collects what arrives in `messages` ({message, delivery}). By default
// rhea gives a credit window of 100 and accepts each message (autoaccept).
function receiver(conn, source, opts = {}) {
    const link = conn.open_receiver({ source, ...opts });
    const r = { link, messages: [] };
    link.on('message', (ctx) => r.messages.push({ message: ctx.message, delivery: ctx.delivery }));
    return withDeadline(new Promise((resolve, reject) => {
        // A refusal is an attach with a null source and a detach with the condition, written
        // together: rhea reports both in one tick, so an open stands once a moment has passed.
        link.once('receiver_open', () => setTimeout(() => resolve(r), 20));
        link.once('receiver_error', (ctx) => reject(new Error('receiver refused: ' +
                                                              condOf(ctx, ctx.receiver))));
        link.once('receiver_close', () => reject(new Error('receiver detached')));
    }), `receiver from ${JSON.stringify(source)}`);
}

// sender(conn, target) -> {link, send(msg) -> Promise<outcome>}: an unsettled sender (target
// undefined: the anonymous relay). send waits for credit, then for the outcome: 'accepted',
// 'rejected <condition>', 'released' or 'modified'.
function sender(conn, target, opts = {}) {
    const link = conn.open_sender({ target: target === undefined ? {} : target, ...opts });
    const waiting = new Map();
    const settle = (what) => (ctx) => {
        const done = waiting.get(ctx.delivery);
        if (done) {
            waiting.delete(ctx.delivery);
            const err = ctx.delivery.remote_state && ctx.delivery.remote_state.error;
            done(what === 'rejected' && err ? `rejected ${err.condition}` : what);
        }
    };
    link.on('accepted', settle('accepted'));
    link.on('rejected', settle('rejected'));
    link.on('released', settle('released'));
    link.on('modified', settle('modified'));
    const s = {
        link,
        async send(msg) {
            await waitUntil(() => link.sendable(), 'link credit');
            return withDeadline(new Promise((resolve) => {
                waiting.set(link.send(msg), resolve);
            }), 'outcome of a transfer');
        },
    };
    return withDeadline(new Promise((resolve, reject) => {
        // a refusal: as for receivers
        link.once('sender_open', () => setTimeout(() => resolve(s), 20));
        link.once('sender_error', (ctx) => reject(new Error('sender refused: ' +
                                                            condOf(ctx, ctx.sender))));
        link.once('sender_close', () => reject(new Error('sender detached')));
    }), `sender to ${JSON.stringify(target)}`);
}

// Waits until r has n messages; returns their bodies.
async function receiveN(r, n, what, ms = DEADLINE_MS) {
    await waitUntil(() => r.messages.length >= n, `${what}: ${n} messages ` +
                    `(have ${r.messages.length})`, ms);
    return r.messages.map((m) => m.message.body);
}

async function quiet() {
    await sleep(QUIET_MS);
}

function close(conn) {
    return withDeadline(new Promise((resolve) => {
        if (!conn.is_open()) {
            resolve();
            return;
        }
        conn.once('connection_close', resolve);
        conn.once('disconnected', resolve);
        conn.close();
    }), 'connection close');
}

function main(test) {
    if (!PORT) {
        console.error('FERRY_AMQP_PORT is not set: run through interop/run.py against ferryd');
        process.exit(2);
    }
    const start = Date.now();
    withDeadline(test(), 'the whole test', 40000).then(() => {
        console.log(`ok (${((Date.now() - start) / 1000).toFixed(1)}s)`);
        return 0;
    }, (err) => {
        console.error('FAIL: ' + (err && err.stack ? err.stack : err));
        return 1;
    }).then((rc) => {
        for (const c of conns) {
            if (c.socket) {
                c.socket.destroy();
            }
        }
        process.exit(rc);
    });
}

module.exports = { rhea, HOST, PORT, PREFIX, DEADLINE_MS, fail, check, eq, sleep, waitUntil,
                   withDeadline, connect, receiver, sender, receiveN, quiet, close, main };
