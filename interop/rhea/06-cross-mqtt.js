// SPDX-License-Identifier: Apache-2.0
// Ferry only (cross-protocol): a message rhea sends to topic `t` reaches an MQTT 5 subscriber of
// `t/#` (mosquitto_sub) under MQTT topic `t`, its data body as the payload and its application
// properties as MQTT user properties.
// interop: ferry-only
'use strict';
const { spawn } = require('child_process');
const { PREFIX, close, connect, eq, fail, main, sender, waitUntil } = require('./lib');

main(async () => {
    const t = `${PREFIX}-06`;
    const port = process.env.FERRY_MQTT_PORT;
    // stdbuf: mosquitto_sub's -d lines (SUBACK) must not wait in a pipe's buffer
    const sub = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', process.env.FERRY_MQTT_HOST || '127.0.0.1',
                                        '-p', port, '-V', 'mqttv5', '-q', '1', '-t', `${t}/#`,
                                        '-C', '1', '-W', '10', '-d', '-F', '%t|%p|%P'],
                      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let exited = null;
    sub.stdout.on('data', (d) => { out += d; });
    sub.stderr.on('data', (d) => { out += d; });
    sub.on('error', (e) => fail(`mosquitto_sub: ${e.message}`));
    sub.on('exit', (code) => { exited = code; });
    try {
        await waitUntil(() => /received SUBACK/.test(out) || exited !== null, 'SUBACK');
        if (exited !== null) {
            fail(`mosquitto_sub exited with ${exited}: ${out}`);
        }
        const c = await connect();
        const s = await sender(c, t);
        const body = Buffer.from('from rhea');
        eq(await s.send({ body: require('./lib').rhea.message.data_section(body),
                          application_properties: { k: 'v' } }), 'accepted', 'send');
        await waitUntil(() => exited !== null, 'mosquitto_sub to get the message and exit');
        eq(exited, 0, `mosquitto_sub exit code (output: ${out})`);
        const line = out.split('\n').find((l) => l.startsWith(`${t}|`));
        eq(line, `${t}|from rhea|k:v`, 'topic, payload and user property seen by MQTT');
        await close(c);
    } finally {
        if (exited === null) {
            sub.kill('SIGKILL');
        }
    }
});
