// SPDX-License-Identifier: Apache-2.0
// Ferry only: a rhea receiver with a selector (rhea.filter.selector: key `jms-selector`,
// descriptor code 0x0000468C00000004) gets only the messages whose application properties and
// subject match the SQL92 expression, and the broker echoes the filter in its attach; a bad
// selector is refused with amqp:invalid-field.
// interop: ferry-only
'use strict';
const { PREFIX, check, close, connect, eq, fail, main, quiet, receiveN, receiver, rhea, sender } =
    require('./lib');

main(async () => {
    const t = `${PREFIX}-04`;
    const c = await connect();
    const sel = "color = 'red' AND n > 1";
    const r = await receiver(c, { address: t, filter: rhea.filter.selector(sel) });
    const echoed = r.link.remote.attach.source.filter;
    check(echoed && echoed['jms-selector'], `selector echoed in the attach: ${JSON.stringify(echoed)}`);
    const all = await receiver(c, t);
    const s = await sender(c, t);
    const msgs = [['red', 1], ['red', 2], ['blue', 3], ['red', 4], ['green', 5]];
    for (const [color, n] of msgs) {
        eq(await s.send({ body: `${color}${n}`, application_properties: { color, n } }), 'accepted',
           `send ${color}${n}`);
    }
    await receiveN(all, msgs.length, 'unfiltered receiver');
    eq((await receiveN(r, 2, 'selector receiver')).sort(), ['red2', 'red4'], 'selected');
    await quiet();
    eq(r.messages.length, 2, 'nothing else passes the selector');
    try {
        await receiver(c, { address: t, filter: rhea.filter.selector('color = = red') });
        fail('a bad selector was accepted');
    } catch (e) {
        check(/amqp:invalid-field/.test(e.message), `bad selector refused: ${e.message}`);
    }
    await close(c);
});
