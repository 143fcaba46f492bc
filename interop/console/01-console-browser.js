// SPDX-License-Identifier: Apache-2.0
// The web console in a real browser: Debian's Chromium, headless, driven by puppeteer-core.
// Starts ferryd (with a password file: the console sits behind the API's Basic authentication),
// makes real traffic with ferryctl and mosquitto_pub, then opens the console and checks that
//   - / and its files need credentials, and come with their Content-Type and caching headers;
//     a POST from another site's page (a foreign Origin) is refused;
//   - the overview's numbers are the API's (counts, totals, connections) and its live rate moves
//     while a producer runs;
//   - topics: the per-topic totals and rates match the API; a topic created in the form exists;
//   - groups: lag matches the API; "reset to earliest" in the form moves the group's offsets;
//   - connections: an MQTT client shows up and "Kick" closes it;
//   - messages: lookup by id and by key show the stored messages;
//   - dead letters: the group's dead letters are listed and "Resend" sends them to their topic;
// and saves a screenshot of each view, each checked to be a rendered page (size, colours).
// interop: ferry-only, own-broker
'use strict';

const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const png = require('./png');

const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 10000;
const USER = 'ops';
const PASSWORD = 'console-pw-7';

let puppeteer;
try {
    puppeteer = require('puppeteer-core');
} catch (e) {
    console.log('SKIP: puppeteer-core is not installed (scripts/interop-deps.sh: npm ci in interop/console)');
    process.exit(77);
}
if (!fs.existsSync(CHROMIUM)) {
    console.log(`SKIP: ${CHROMIUM} is not installed (scripts/deps.sh installs chromium)`);
    process.exit(77);
}
for (const v of ['FERRY_BROKER_BIN', 'FERRYCTL']) {
    if (!process.env[v]) {
        console.error(`${v} is not set: run through interop/run.py`);
        process.exit(2);
    }
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-console-'));
const shots = process.env.FERRY_CONSOLE_SHOTS || path.join(os.tmpdir(), 'ferry-console-shots');
const children = [];
let broker = null;
let ports = {};
let browser = null;

function fail(what) {
    throw new Error(what);
}

function eq(got, want, what) {
    if (JSON.stringify(got) !== JSON.stringify(want)) {
        fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
}

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

// Waits until fn() returns a truthy value (awaited), returns it; fails after ms with what.
async function until(fn, what, ms = DEADLINE_MS) {
    const end = Date.now() + ms;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) {
                return last;
            }
        } catch (e) {
            last = e.message;
        }
        if (Date.now() > end) {
            fail(`timed out after ${ms} ms: ${what} (last: ${JSON.stringify(last)})`);
        }
        await sleep(100);
    }
}

// ---- the broker and clients ------------------------------------------------------------------

function startBroker() {
    const pw = path.join(work, 'passwd');
    const r = spawnSync(process.env.FERRYCTL, ['passwd', pw, USER], { input: PASSWORD + '\n', timeout: DEADLINE_MS });
    eq(r.status, 0, 'ferryctl passwd: ' + String(r.stderr));
    const conf = path.join(work, 'ferry.conf');
    fs.writeFileSync(conf, `password_file ${pw}\n`);
    const log = fs.openSync(path.join(work, 'ferryd.log'), 'a');
    broker = spawn(process.env.FERRY_BROKER_BIN, ['-c', conf, '--data-dir', path.join(work, 'data'),
        '--admin-port', '0', '--port', '0', '--mqtt-port', '0', '--amqp-port', '0'],
    { stdio: ['ignore', log, log] });
    return until(() => {
        const out = fs.readFileSync(path.join(work, 'ferryd.log'), 'utf8');
        if (broker.exitCode !== null) {
            fail('ferryd exited: ' + out);
        }
        if (!out.includes('msg="ready"')) {
            return null;
        }
        for (const m of out.matchAll(/INFO (\w+) addr=\S+ port=(\d+) msg="[\w ]*listening"/g)) {
            ports[m[1]] = Number(m[2]);
        }
        return ports.admin && ports.mqtt && ports.native;
    }, 'ferryd ready');
}

function ferryctl(args, input) {
    const r = spawnSync(process.env.FERRYCTL, ['--broker', `127.0.0.1:${ports.native}`, '--user', USER,
        '--timeout', '5000', ...args], { input: input || '', timeout: DEADLINE_MS,
        env: { ...process.env, FERRY_PASSWORD: PASSWORD } });
    if (r.status !== 0) {
        fail(`ferryctl ${args.join(' ')} exited with ${r.status}: ${r.stderr}`);
    }
    return String(r.stdout);
}

function mqttArgs() {
    return ['-h', '127.0.0.1', '-p', String(ports.mqtt), '-u', USER, '-P', PASSWORD];
}

// HTTP request to the admin listener: {status, headers, body}.
function request(method, p, { auth = true, body, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const h = { ...headers };
        if (auth) {
            h.Authorization = 'Basic ' + Buffer.from(`${USER}:${PASSWORD}`).toString('base64');
        }
        const req = http.request({ host: '127.0.0.1', port: ports.admin, method, path: p, headers: h,
            timeout: DEADLINE_MS }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
                                          body: Buffer.concat(chunks).toString('utf8') }));
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${p} timed out`)));
        req.on('error', reject);
        if (body !== undefined) {
            req.write(JSON.stringify(body));
        }
        req.end();
    });
}

async function apiGet(p) {
    const r = await request('GET', '/api/v1' + p);
    eq(r.status, 200, `GET ${p}: ${r.body}`);
    return JSON.parse(r.body);
}

// ---- the page --------------------------------------------------------------------------------

function num(text) {
    return Number(String(text).replace(/[,\s]/g, ''));
}

// The text of the first element matching selector, or null.
async function text(page, selector) {
    return page.$eval(selector, (el) => el.textContent).catch(() => null);
}

async function screenshot(page, name) {
    const file = path.join(shots, name + '.png');
    await page.screenshot({ path: file, fullPage: false });
    const st = png.stats(fs.readFileSync(file));
    eq([st.width, st.height], [1280, 900], `${name}.png size`);
    // A blank or unstyled page has a handful of colours; a rendered one (text antialiasing,
    // header, cards, tables) has hundreds.
    if (st.colours < 64 || st.top > 0.97) {
        fail(`${name}.png does not look rendered: ${st.colours} colours, commonest ${(st.top * 100).toFixed(1)}%`);
    }
    console.log(`screenshot ${file}: ${st.colours} colours`);
}

async function nav(page, view) {
    await page.click(`#nav a[data-view="${view}"]`);
    await until(() => page.$eval('#main', (m) => m.dataset.view).catch(() => null).then((v) => v === view),
        `view ${view} shown`);
}

// ---- the test --------------------------------------------------------------------------------

async function test() {
    fs.mkdirSync(shots, { recursive: true });
    await startBroker();

    // The console's files: authentication, types, caching.
    let r = await request('GET', '/', { auth: false });
    eq(r.status, 401, 'GET / without credentials');
    if (!/^Basic /.test(r.headers['www-authenticate'] || '')) {
        fail('401 without a Basic challenge: ' + r.headers['www-authenticate']);
    }
    r = await request('GET', '/');
    eq(r.status, 200, 'GET / with credentials');
    eq(r.headers['content-type'], 'text/html; charset=utf-8', 'Content-Type of /');
    if (!r.body.includes('console.js')) {
        fail('/ is not the console page');
    }
    const js = await request('GET', '/console.js');
    eq(js.headers['content-type'], 'text/javascript; charset=utf-8', 'Content-Type of console.js');
    eq((await request('GET', '/console.css')).headers['content-type'], 'text/css; charset=utf-8', 'Content-Type of console.css');
    eq(js.headers['cache-control'], 'no-cache', 'Cache-Control of console.js');
    if (!/^"[0-9a-f]{16}"$/.test(js.headers.etag || '')) {
        fail('console.js has no strong ETag: ' + js.headers.etag);
    }
    eq((await request('GET', '/console.js', { headers: { 'If-None-Match': js.headers.etag } })).status, 304,
        'GET console.js with its ETag');
    const head = await request('HEAD', '/console.js');
    eq([head.status, head.headers['content-length'], head.body], [200, String(Buffer.byteLength(js.body)), ''],
        'HEAD /console.js: status, length of the GET body, no body');
    eq((await request('POST', '/index.html', { body: {} })).status, 405, 'POST /index.html');
    eq((await request('GET', '/nope.html')).status, 404, 'GET /nope.html');
    // Another site's page cannot use the browser's credentials to change the broker.
    r = await request('POST', '/api/v1/topics', { body: { name: 'csrf' }, headers: { Origin: 'http://evil.example' } });
    eq(r.status, 403, 'POST with a foreign Origin: ' + r.body);
    eq((await request('GET', '/api/v1/topics/csrf')).status, 404, 'topic of the refused cross-origin POST');
    r = await request('POST', '/api/v1/topics', { body: { name: 'same-origin' },
        headers: { Origin: `http://127.0.0.1:${ports.admin}` } });
    eq(r.status, 201, 'POST with the listener\'s own Origin: ' + r.body);

    // Traffic: 20 keyed messages on orders (native), 5 MQTT messages on sensors, a group with lag
    // and two dead letters.
    const sent = ferryctl(['--json', 'send', 'orders', '--key', 'k-odd'],
        Array.from({ length: 10 }, (_, i) => `order ${2 * i + 1}`).join('\n') + '\n')
        .trim().split('\n').map((l) => JSON.parse(l));
    eq(sent.length, 10, 'messages sent with key k-odd');
    ferryctl(['send', 'orders', '--key', 'k-even'],
        Array.from({ length: 10 }, (_, i) => `order ${2 * i + 2}`).join('\n') + '\n');
    for (let i = 0; i < 5; i++) {
        const p = spawnSync('mosquitto_pub', [...mqttArgs(), '-q', '1', '-t', `sensors/t${i}`, '-m', `${20 + i}.5`],
            { timeout: DEADLINE_MS });
        eq(p.status, 0, 'mosquitto_pub: ' + String(p.stderr));
    }
    ferryctl(['consume', 'orders', '--group', 'billing', '--from', 'first', '--count', '2', '--reject']);
    ferryctl(['consume', 'orders', '--group', 'billing', '--from', 'first', '--count', '5']);
    await until(async () => (await apiGet('/overview')).counts.dead_letters === 2, 'two dead letters');

    // An MQTT client that stays connected (to be kicked), and a steady producer (for the rates).
    const sub = spawn('mosquitto_sub', [...mqttArgs(), '-i', 'console-sub', '-t', 'sensors/#', '-q', '1'],
        { stdio: 'ignore' });
    children.push(sub);
    const feed = spawn('mosquitto_pub', [...mqttArgs(), '-i', 'console-feed', '-t', 'ticks/a', '-q', '0', '-l'],
        { stdio: ['pipe', 'ignore', 'ignore'] });
    children.push(feed);
    let fed = 0;
    const feeder = setInterval(() => feed.stdin.write(`tick ${++fed}\n`), 25);

    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
               '--font-render-hinting=none'] });
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    page.on('console', (m) => {
        if (m.type() === 'error') {
            errors.push('console error: ' + m.text());
        }
    });
    page.on('dialog', (d) => d.accept());
    await page.setViewport({ width: 1280, height: 900 });
    await page.authenticate({ username: USER, password: PASSWORD });
    await page.goto(`http://127.0.0.1:${ports.admin}/`, { waitUntil: 'load', timeout: DEADLINE_MS });

    // Overview: counts and connections as the API says; totals between two API reads; live rate.
    await until(() => text(page, '[data-field="topics"]'), 'overview cards');
    await until(async () => {
        const o = await apiGet('/overview');
        return num(await text(page, '[data-field="topics"]')) === o.counts.topics &&
            num(await text(page, '[data-field="groups"]')) === o.counts.groups &&
            num(await text(page, '[data-field="dead_letters"]')) === o.counts.dead_letters &&
            num(await text(page, '[data-field="conn_mqtt"]')) === o.connections.mqtt &&
            o.connections.mqtt === 2;
    }, 'overview counts and connections equal to the API');
    await until(async () => {
        const before = (await apiGet('/overview')).messages.in;
        await sleep(1200); // one refresh of the page
        const shown = num(await text(page, '[data-field="messages_in"]'));
        const after = (await apiGet('/overview')).messages.in;
        return shown >= before && shown <= after;
    }, 'overview messages in between two API reads');
    await until(async () => num(await text(page, '[data-field="in_per_s"]')) >= 5,
        'overview rate of messages in while the producer runs');
    await sleep(2500); // let the chart draw a line
    await screenshot(page, '1-overview');

    // Topics: the table against the API, rates included; then create one with the form.
    await nav(page, 'topics');
    await until(async () => {
        const api = (await apiGet('/topics')).topics.find((t) => t.name === 'orders');
        const row = '#topics-table tr[data-topic="orders"]';
        return api && num(await text(page, `${row} [data-field="messages"]`)) === api.messages &&
            num(await text(page, `${row} [data-field="messages_in"]`)) === api.messages_in &&
            num(await text(page, `${row} [data-field="messages_out"]`)) === api.messages_out &&
            api.messages === 20 && api.messages_in === 20;
    }, 'topic orders as the API shows it');
    await until(async () => {
        const api = (await apiGet('/topics')).topics.find((t) => t.name === 'ticks');
        const shown = num(await text(page, '#topics-table tr[data-topic="ticks"] [data-field="in_per_s"]'));
        return api && api.in_per_s > 5 && shown > 5 && Math.abs(shown - api.in_per_s) <= api.in_per_s * 0.5 + 2;
    }, 'rate of topic ticks shown close to the API');
    await page.type('#create-topic input[name="name"]', 'made-in-console');
    await page.type('#create-topic input[name="queues"]', '3');
    await page.click('#create-topic button[type="submit"]');
    await until(async () => ((await text(page, '.msg.ok')) || '').includes('made-in-console'), 'topic created note');
    eq((await apiGet('/topics/made-in-console')).queues.length, 3, 'queues of the topic made in the console');
    await screenshot(page, '2-topics');
    await page.click('#topics-table tr[data-topic="orders"] a');
    await until(async () => (await page.$$('#queues-table tbody tr')).length === 8, 'the 8 queues of orders');
    const shownStored = await page.$$eval('#queues-table tbody tr td:nth-child(4)',
        (tds) => tds.reduce((s, td) => s + Number(td.textContent.replace(/,/g, '')), 0));
    eq(shownStored, (await apiGet('/topics/orders')).messages, 'messages of orders summed over the queues shown');

    // Groups: lag as the API says; reset to earliest with the form.
    await nav(page, 'groups');
    await until(async () => {
        const g = (await apiGet('/groups')).groups.find((x) => x.name === 'billing');
        return g && g.lag > 0 && num(await text(page, '#groups-table tr[data-group="billing"] [data-field="lag"]')) === g.lag;
    }, 'lag of group billing as the API shows it');
    await page.click('#groups-table tr[data-group="billing"] a');
    await until(async () => (await page.$$('#group-queues tbody tr')).length > 0, 'queues of billing');
    await until(async () => (await page.$$eval('#reset-topic option', (os) => os.map((o) => o.value))).includes('orders'),
        'orders offered for the reset');
    await page.select('#reset-topic', 'orders');
    await page.select('#reset-to', 'earliest');
    await page.click('#reset-form button[type="submit"]');
    await until(async () => ((await text(page, '#reset-result .msg.ok')) || '').includes('Reset billing in orders'),
        'reset result note');
    const lagAfter = (await apiGet('/groups/billing')).queues.filter((q) => q.topic === 'orders')
        .reduce((s, q) => s + q.lag, 0);
    eq(lagAfter, 20, 'lag of billing in orders after the reset to the earliest');
    await until(async () => num(await text(page, '.cards [data-field="lag"]')) === (await apiGet('/groups/billing')).lag,
        'group page lag after the reset');
    await screenshot(page, '3-group');

    // Connections: the MQTT subscriber is listed; Kick closes it.
    await nav(page, 'connections');
    const subRow = 'tr[data-protocol="mqtt"][data-client="console-sub"]';
    await until(() => page.$(subRow), 'console-sub listed');
    await screenshot(page, '4-connections');
    // mosquitto_sub connects again after a while: the kicked connection is the one to be gone.
    const kickedId = await page.$eval(subRow, (tr) => tr.dataset.id);
    await page.click(`${subRow} button.kick`);
    await until(async () => ((await text(page, '.msg.ok')) || '').includes(`Kicked mqtt connection ${kickedId}`),
        'kick note');
    await until(async () => !(await apiGet('/connections/mqtt')).connections.some((c) => String(c.id) === kickedId),
        'the kicked connection gone from the API');
    await until(async () => !(await page.$(`tr[data-protocol="mqtt"][data-id="${kickedId}"]`)),
        'the kicked connection gone from the page');

    // Messages: by id, then by key.
    await nav(page, 'messages');
    await page.type('#lookup-id', sent[3].msgid);
    await page.click('#lookup-by-id button');
    await until(async () => (await text(page, `#lookup-result [data-msgid="${sent[3].msgid}"] [data-field="body"]`)) === 'order 7',
        'message found by id with its body');
    await page.type('#lookup-topic', 'orders');
    await page.type('#lookup-key', 'k-odd');
    await page.click('#lookup-by-key button');
    const byKey = await apiGet('/messages?topic=orders&key=k-odd');
    eq(byKey.messages.length, 10, 'messages with key k-odd in the API');
    await until(async () => (await page.$$('#lookup-result .message')).length === 10, 'ten messages found by key');
    await screenshot(page, '5-messages');

    // Dead letters: listed, resent to orders.
    await page.goto(`http://127.0.0.1:${ports.admin}/#/dlq/billing`, { waitUntil: 'load', timeout: DEADLINE_MS });
    await until(async () => (await page.$$('#dlq-table tbody tr')).length === 2, 'two dead letters listed');
    const dlq = await apiGet('/groups/billing/dlq');
    eq((await page.$$eval('#dlq-table tbody tr', (trs) => trs.map((t) => t.dataset.msgid))).sort(),
        dlq.messages.map((m) => m.msgid).sort(), 'dead letters shown');
    await page.click('#dlq-list button.secondary'); // select all
    await page.click('#dlq-resend');
    const note = await until(async () => text(page, '#dlq-result .msg.ok'), 'resend note');
    const newIds = note.match(/[0-9a-f]{32}/g) || [];
    eq(newIds.length, 2, 'new message ids in the resend note');
    for (const id of newIds) {
        eq((await apiGet('/messages/' + id)).topic, 'orders', `resent message ${id} is in orders`);
    }
    eq((await apiGet('/topics/orders')).messages, 22, 'orders after the resend');
    await screenshot(page, '6-dlq');

    clearInterval(feeder);
    if (errors.length) {
        fail('the page reported errors:\n' + errors.join('\n'));
    }
}

async function cleanup() {
    if (browser) {
        await browser.close().catch(() => {});
    }
    for (const c of children) {
        if (c.exitCode === null && c.signalCode === null) {
            c.kill('SIGKILL');
        }
    }
    if (broker && broker.exitCode === null) {
        broker.kill('SIGTERM');
        await until(() => broker.exitCode !== null, 'ferryd stopped', 10000).catch(() => broker.kill('SIGKILL'));
    }
}

const started = Date.now();
const timer = setTimeout(() => {
    console.error('FAIL: the whole test took over 50 s');
    cleanup().finally(() => process.exit(1));
}, 50000);
test().then(() => 0, (err) => {
    console.error('FAIL: ' + (err && err.stack ? err.stack : err));
    try {
        const log = fs.readFileSync(path.join(work, 'ferryd.log'), 'utf8').split('\n');
        console.error('---- ferryd log (last 40 lines) ----\n' + log.slice(-40).join('\n'));
    } catch (e) {
        // no log
    }
    return 1;
}).then(async (rc) => {
    clearTimeout(timer);
    await cleanup();
    if (rc === 0 && broker && broker.exitCode !== 0) {
        // a clean SIGTERM exits 0; anything else (a sanitizer report, a crash) fails the test
        console.error(`FAIL: ferryd exited with ${broker.exitCode} (signal ${broker.signalCode}) after SIGTERM`);
        console.error(fs.readFileSync(path.join(work, 'ferryd.log'), 'utf8').split('\n').slice(-40).join('\n'));
        rc = 1;
    }
    if (!process.env.FERRY_INTEROP_KEEP) {
        fs.rmSync(work, { recursive: true, force: true });
    }
    if (rc === 0) {
        console.log(`ok (${((Date.now() - started) / 1000).toFixed(1)}s); screenshots in ${shots}`);
    }
    process.exit(rc);
});
