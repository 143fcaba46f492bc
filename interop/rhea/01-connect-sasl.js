// SPDX-License-Identifier: Apache-2.0
// Ferry only: rhea connects with SASL PLAIN (user name and password; every user is allowed until
// authentication lands), with SASL ANONYMOUS (a user name without password) and without SASL;
// the broker's open names it (container id `ferry`, property product=ferry, the ANONYMOUS-RELAY
// capability), and a message goes round on each connection.
// interop: ferry-only
'use strict';
const { PREFIX, check, close, connect, eq, main, receiveN, receiver, sender } = require('./lib');

main(async () => {
    const cases = [
        ['PLAIN', { username: 'alice', password: 'secret' }],
        ['ANONYMOUS', { username: 'anonymous' }],
        ['no SASL', {}],
    ];
    for (const [what, opts] of cases) {
        const c = await connect(opts);
        const open = c.remote.open;
        eq(open.container_id, 'ferry', `${what}: broker container id`);
        eq(open.properties && open.properties.product, 'ferry', `${what}: product property`);
        const caps = [].concat(open.offered_capabilities || []).map(String);
        check(caps.includes('ANONYMOUS-RELAY'), `${what}: ANONYMOUS-RELAY offered (${caps})`);
        if (opts.username) {
            eq(c.sasl_transport && c.sasl_transport.mechanism_name, what,
               `${what}: SASL mechanism used`);
        }
        const t = `${PREFIX}-01`;
        const r = await receiver(c, t);
        const s = await sender(c, t);
        eq(await s.send({ body: `hello ${what}` }), 'accepted', `${what}: outcome`);
        eq(await receiveN(r, 1, what), [`hello ${what}`], `${what}: body`);
        await close(c);
    }
});
