// SPDX-License-Identifier: Apache-2.0
// Ferry's web console: a hash-routed page per view (overview, topics, groups, connections,
// messages, dead letters) over the JSON API under /api/v1 (docs/admin-api.md). No framework, no
// build step. Every text from the broker goes into the page as text (textContent), never as HTML.
'use strict';

const API = '/api/v1';
const OVERVIEW_MS = 1000; // the overview's refresh period
const LIST_MS = 2000;     // the other views' refresh period
const HISTORY = 120;      // rate samples kept for the chart (2 minutes at 1 s)

const state = { timer: null, view: null, gen: 0, history: [], refresh: () => {} };

// ---- helpers ---------------------------------------------------------------------------------

// h('td', {class: 'num'}, 'text', childNode, ...): an element with attributes and children.
function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === undefined || v === null || v === false) {
            continue;
        }
        if (k.startsWith('on')) {
            el.addEventListener(k.slice(2), v);
        } else if (k === 'class') {
            el.className = v;
        } else {
            el.setAttribute(k, v === true ? '' : String(v));
        }
    }
    for (const c of children.flat()) {
        if (c === undefined || c === null || c === false) {
            continue;
        }
        el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
}

function fmtInt(n) {
    return Number(n || 0).toLocaleString('en-US');
}

function fmtRate(r) {
    const v = Number(r || 0);
    return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

function fmtBytes(n) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = Number(n || 0);
    let i = 0;
    while (v >= 1024 && i < u.length - 1) {
        v /= 1024;
        i++;
    }
    return (i ? v.toFixed(1) : v.toFixed(0)) + ' ' + u[i];
}

function fmtUptime(s) {
    const d = Math.floor(s / 86400);
    const hh = String(Math.floor(s / 3600) % 24).padStart(2, '0');
    const mm = String(Math.floor(s / 60) % 60).padStart(2, '0');
    const ss = String(s % 60).padStart(2, '0');
    return (d ? d + 'd ' : '') + hh + ':' + mm + ':' + ss;
}

function fmtTime(ms) {
    return ms ? new Date(Number(ms)).toISOString().replace('T', ' ').replace('Z', ' UTC') : '';
}

function enc(name) {
    return encodeURIComponent(name);
}

class ApiError extends Error {
    constructor(status, message) {
        super(message);
        this.status = status;
    }
}

// api('GET', '/topics') -> the parsed JSON; throws ApiError with the API's message otherwise.
async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, cache: 'no-store' };
    if (body !== undefined) {
        opts.body = JSON.stringify(body);
        opts.headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
        res = await fetch(API + path, opts);
    } catch (e) {
        setStatus(false, 'broker unreachable');
        throw new ApiError(0, 'the broker is unreachable: ' + e.message);
    }
    let json = null;
    try {
        json = await res.json();
    } catch (e) {
        json = null;
    }
    if (!res.ok) {
        throw new ApiError(res.status, (json && json.error) || res.status + ' ' + res.statusText);
    }
    setStatus(true);
    return json;
}

function setStatus(ok, text) {
    const el = document.getElementById('status');
    el.className = 'status' + (ok ? '' : ' bad');
    el.textContent = ok ? 'live · ' + new Date().toLocaleTimeString('en-GB') : text;
}

function note(container, ok, text) {
    container.replaceChildren(h('div', { class: 'msg ' + (ok ? 'ok' : 'err'), role: 'status' }, text));
}

function table(columns, rows, emptyText, attrs) {
    if (!rows.length) {
        return h('div', { class: 'empty' }, emptyText);
    }
    return h('table', attrs || {},
        h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.title)))),
        h('tbody', {}, rows));
}

function card(label, value, field, cls, sub) {
    return h('div', { class: 'card' },
        h('div', { class: 'label' }, label),
        h('div', { class: 'value' + (cls ? ' ' + cls : ''), 'data-field': field }, value),
        sub ? h('div', { class: 'sub' }, sub) : null);
}

// ---- routing ---------------------------------------------------------------------------------

const views = {};

function route() {
    const parts = (location.hash.replace(/^#\/?/, '') || 'overview').split('/').map(decodeURIComponent);
    const name = views[parts[0]] ? parts[0] : 'overview';
    for (const a of document.querySelectorAll('#nav a')) {
        a.classList.toggle('active', a.dataset.view === name);
    }
    clearTimeout(state.timer);
    state.gen++;
    state.view = name;
    const main = document.getElementById('main');
    main.replaceChildren();
    main.dataset.view = name;
    views[name](main, parts.slice(1), state.gen);
}

// Runs refresh() now and every ms while the view is still the one shown; state.refresh() runs
// it again at once (after a change made from the page).
function every(ms, gen, refresh) {
    const tick = async () => {
        if (gen !== state.gen) {
            return;
        }
        clearTimeout(state.timer);
        try {
            await refresh();
        } catch (e) {
            if (e instanceof ApiError) {
                setStatus(false, e.message); // e.g. a group that is gone: said in the header
            } else {
                console.error(e);
            }
        }
        if (gen === state.gen) {
            clearTimeout(state.timer);
            state.timer = setTimeout(tick, ms);
        }
    };
    state.refresh = tick;
    tick();
}

// ---- overview --------------------------------------------------------------------------------

function drawChart(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const hgt = canvas.clientHeight;
    canvas.width = w * dpr;
    canvas.height = hgt * dpr;
    const g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, w, hgt);
    const pts = state.history;
    let max = 1;
    for (const p of pts) {
        max = Math.max(max, p.in, p.out);
    }
    g.strokeStyle = '#e3e8ee';
    g.lineWidth = 1;
    g.fillStyle = '#6b7785';
    g.font = '11px sans-serif';
    for (let i = 0; i <= 4; i++) {
        const y = 8 + (hgt - 24) * i / 4;
        g.beginPath();
        g.moveTo(40, y);
        g.lineTo(w - 4, y);
        g.stroke();
        g.fillText(fmtRate(max * (4 - i) / 4), 2, y + 4);
    }
    const line = (key, color) => {
        g.strokeStyle = color;
        g.lineWidth = 2;
        g.beginPath();
        pts.forEach((p, i) => {
            const x = 40 + (w - 44) * (HISTORY - pts.length + i) / (HISTORY - 1);
            const y = 8 + (hgt - 24) * (1 - p[key] / max);
            if (i === 0) {
                g.moveTo(x, y);
            } else {
                g.lineTo(x, y);
            }
        });
        g.stroke();
    };
    line('in', '#0a6ebd');
    line('out', '#e8710a');
}

views.overview = (main, args, gen) => {
    const cards = h('div', { class: 'cards', id: 'overview-cards' });
    const canvas = h('canvas', { class: 'chart', id: 'rate-chart' });
    const conns = h('div', { id: 'overview-connections' });
    main.append(h('h1', {}, 'Overview'), cards,
        h('div', { class: 'panel' },
            h('div', { class: 'legend' },
                h('span', {}, h('i', { class: 'swatch-in' }), 'messages in / s'),
                h('span', {}, h('i', { class: 'swatch-out' }), 'messages out / s')),
            canvas),
        h('h2', {}, 'Connections'), conns);
    every(OVERVIEW_MS, gen, async () => {
        const o = await api('GET', '/overview');
        if (gen !== state.gen) {
            return;
        }
        const m = o.messages || {};
        const c = o.counts || {};
        state.history.push({ in: m.in_per_s || 0, out: m.out_per_s || 0 });
        if (state.history.length > HISTORY) {
            state.history.shift();
        }
        cards.replaceChildren(
            card('Messages in / s', fmtRate(m.in_per_s), 'in_per_s'),
            card('Messages out / s', fmtRate(m.out_per_s), 'out_per_s'),
            card('Messages in', fmtInt(m.in), 'messages_in'),
            card('Messages out', fmtInt(m.out), 'messages_out'),
            card('Topics', fmtInt(c.topics), 'topics'),
            card('Groups', fmtInt(c.groups), 'groups'),
            card('Store', o.store_healthy ? 'ok' : 'UNHEALTHY', 'store',
                o.store_healthy ? 'ok' : 'bad', 'flush ' + o.flush),
            card('Delayed', fmtInt(c.delayed_pending), 'delayed_pending'),
            card('Half messages', fmtInt(c.half_pending), 'half_pending'),
            card('Retries', fmtInt(c.retries), 'retries'),
            card('Dead letters', fmtInt(c.dead_letters), 'dead_letters'),
            card('Memory', fmtBytes(o.resident_memory_bytes), 'memory'),
            card('Uptime', fmtUptime(o.uptime_s || 0), 'uptime', null, 'version ' + o.version));
        conns.replaceChildren(h('div', { class: 'cards' },
            Object.entries(o.connections || {}).map(([p, n]) => card(p, fmtInt(n), 'conn_' + p))));
        drawChart(canvas);
        document.getElementById('footer').textContent =
            'Ferry ' + o.version + ' · broker ' + o.broker_id + ' · started ' + fmtTime(o.started_ms);
    });
};

// ---- topics ----------------------------------------------------------------------------------

views.topics = (main, args, gen) => {
    if (args.length && args[0]) {
        return topicDetail(main, args[0], gen);
    }
    const list = h('div', { class: 'panel', id: 'topics-list' });
    const out = h('div');
    const internal = h('input', { type: 'checkbox', id: 'show-internal' });
    const name = h('input', { name: 'name', placeholder: 'topic name', required: true, pattern: '[A-Za-z0-9_.%\\-]{1,127}' });
    const queues = h('input', { name: 'queues', type: 'number', min: 0, max: 1024, placeholder: 'queues (default)' });
    const form = h('form', { class: 'inline', id: 'create-topic', onsubmit: async (ev) => {
        ev.preventDefault();
        try {
            const r = await api('POST', '/topics', { name: name.value, queues: Number(queues.value || 0) });
            note(out, true, `Created topic ${r.name} with ${r.queues} queues.`);
            name.value = '';
            state.refresh();
        } catch (e) {
            note(out, false, e.message);
        }
    } }, name, queues, h('button', { type: 'submit' }, 'Create topic'));
    main.append(h('h1', {}, 'Topics'), form, out,
        h('label', {}, internal, ' show internal topics (%RETRY%, %DLQ%, %LQ%)'), list);
    internal.addEventListener('change', () => route());
    every(LIST_MS, gen, async () => {
        const r = await api('GET', '/topics' + (internal.checked ? '?internal=true' : ''));
        if (gen !== state.gen) {
            return;
        }
        const rows = r.topics.sort((a, b) => a.name.localeCompare(b.name)).map((t) =>
            h('tr', { 'data-topic': t.name },
                h('td', {}, h('a', { href: '#/topics/' + enc(t.name) }, t.name)),
                h('td', { class: 'num' }, t.queues),
                h('td', { class: 'num', 'data-field': 'messages' }, fmtInt(t.messages)),
                h('td', { class: 'num', 'data-field': 'messages_in' }, fmtInt(t.messages_in)),
                h('td', { class: 'num', 'data-field': 'messages_out' }, fmtInt(t.messages_out)),
                h('td', { class: 'num', 'data-field': 'in_per_s' }, fmtRate(t.in_per_s)),
                h('td', { class: 'num', 'data-field': 'out_per_s' }, fmtRate(t.out_per_s))));
        list.replaceChildren(table([{ title: 'Topic' }, { title: 'Queues', num: 1 },
            { title: 'Stored', num: 1 }, { title: 'In', num: 1 }, { title: 'Out', num: 1 },
            { title: 'In / s', num: 1 }, { title: 'Out / s', num: 1 }], rows, 'No topics yet.',
            { id: 'topics-table' }));
    });
};

function topicDetail(main, name, gen) {
    const head = h('div', { class: 'cards' });
    const queues = h('div', { class: 'panel' });
    const counters = h('div', { class: 'panel' });
    const out = h('div');
    const del = h('button', { class: 'danger', id: 'delete-topic', onclick: async () => {
        if (!confirm(`Delete topic ${name} and all its messages?`)) {
            return;
        }
        try {
            await api('DELETE', '/topics/' + enc(name));
            location.hash = '#/topics';
        } catch (e) {
            note(out, false, e.message);
        }
    } }, 'Delete topic');
    main.append(h('h1', {}, 'Topic ', h('span', { class: 'mono', id: 'topic-name' }, name)), head,
        h('h2', {}, 'Queues'), queues, h('h2', {}, 'By protocol'), counters,
        h('h2', {}, 'Danger zone'), del, out);
    every(LIST_MS, gen, async () => {
        let t;
        try {
            t = await api('GET', '/topics/' + enc(name));
        } catch (e) {
            note(out, false, e.message);
            return;
        }
        if (gen !== state.gen) {
            return;
        }
        head.replaceChildren(card('Stored', fmtInt(t.messages), 'messages'),
            card('Queues', t.queues.length, 'queues'), card('In / s', fmtRate(t.in_per_s), 'in_per_s'),
            card('Out / s', fmtRate(t.out_per_s), 'out_per_s'));
        queues.replaceChildren(table([{ title: 'Queue' }, { title: 'Min offset', num: 1 },
            { title: 'Max offset', num: 1 }, { title: 'Messages', num: 1 }],
        t.queues.map((q) => h('tr', {}, h('td', {}, q.queue), h('td', { class: 'num' }, fmtInt(q.min_offset)),
            h('td', { class: 'num' }, fmtInt(q.max_offset)), h('td', { class: 'num' }, fmtInt(q.messages)))),
        'No queues.', { id: 'queues-table' }));
        counters.replaceChildren(table([{ title: 'Protocol' }, { title: 'Messages in', num: 1 },
            { title: 'Bytes in', num: 1 }, { title: 'Messages out', num: 1 }, { title: 'Bytes out', num: 1 }],
        Object.entries(t.counters).map(([p, c]) => h('tr', { 'data-protocol': p }, h('td', {}, p),
            h('td', { class: 'num', 'data-field': 'messages_in' }, fmtInt(c.messages_in)),
            h('td', { class: 'num' }, fmtBytes(c.bytes_in)),
            h('td', { class: 'num', 'data-field': 'messages_out' }, fmtInt(c.messages_out)),
            h('td', { class: 'num' }, fmtBytes(c.bytes_out)))),
        'No traffic since the broker started.'));
    });
}

// ---- groups ----------------------------------------------------------------------------------

views.groups = (main, args, gen) => {
    if (args.length && args[0]) {
        return groupDetail(main, args[0], gen);
    }
    const list = h('div', { class: 'panel', id: 'groups-list' });
    main.append(h('h1', {}, 'Consumer groups'), list);
    every(LIST_MS, gen, async () => {
        const r = await api('GET', '/groups');
        if (gen !== state.gen) {
            return;
        }
        const rows = r.groups.sort((a, b) => a.name.localeCompare(b.name)).map((g) =>
            h('tr', { 'data-group': g.name },
                h('td', {}, h('a', { href: '#/groups/' + enc(g.name) }, g.name)),
                h('td', {}, h('span', { class: 'pill' }, g.mode)),
                h('td', { class: 'num', 'data-field': 'members' }, g.members),
                h('td', { class: 'num' + (g.lag ? ' lag' : ''), 'data-field': 'lag' }, fmtInt(g.lag)),
                h('td', { class: 'num', 'data-field': 'consumed_per_s' }, fmtRate(g.consumed_per_s))));
        list.replaceChildren(table([{ title: 'Group' }, { title: 'Mode' }, { title: 'Members', num: 1 },
            { title: 'Lag', num: 1 }, { title: 'Consumed / s', num: 1 }], rows, 'No consumer groups yet.',
        { id: 'groups-table' }));
    });
};

function groupDetail(main, name, gen) {
    const head = h('div', { class: 'cards' });
    const members = h('div', { class: 'panel' });
    const queues = h('div', { class: 'panel' });
    const out = h('div', { id: 'reset-result' });
    const topic = h('select', { name: 'topic', id: 'reset-topic' });
    const when = h('select', { name: 'to', id: 'reset-to' },
        h('option', { value: 'time' }, 'to a time'), h('option', { value: 'earliest' }, 'to the earliest'),
        h('option', { value: 'latest' }, 'to the latest'));
    const time = h('input', { type: 'datetime-local', step: 1, id: 'reset-time' });
    const form = h('form', { class: 'inline', id: 'reset-form', onsubmit: async (ev) => {
        ev.preventDefault();
        let to = when.value;
        if (to === 'time') {
            if (!time.value) {
                note(out, false, 'Choose a time.');
                return;
            }
            to = new Date(time.value).getTime(); // the browser's local time
        }
        if (!confirm(`Reset group ${name} in topic ${topic.value}? Deliveries in flight are forgotten.`)) {
            return;
        }
        try {
            const r = await api('POST', '/groups/' + enc(name) + '/reset', { topic: topic.value, to });
            note(out, true, `Reset ${r.group} in ${r.topic}: ` +
                r.queues.map((q) => `queue ${q.queue} → ${q.offset}`).join(', '));
            state.refresh();
        } catch (e) {
            note(out, false, e.message);
        }
    } }, 'Reset offsets in', topic, when, time, h('button', { type: 'submit' }, 'Reset'));
    main.append(h('h1', {}, 'Group ', h('span', { class: 'mono', id: 'group-name' }, name)), head,
        h('h2', {}, 'Members'), members, h('h2', {}, 'Queues'), queues,
        h('h2', {}, 'Reset by time'), form, out,
        h('p', {}, h('a', { href: '#/dlq/' + enc(name) }, 'Dead letters of this group →')));
    let topicsShown = '';
    every(LIST_MS, gen, async () => {
        const g = await api('GET', '/groups/' + enc(name));
        if (gen !== state.gen) {
            return;
        }
        head.replaceChildren(card('Mode', g.mode, 'mode'), card('Lag', fmtInt(g.lag), 'lag', g.lag ? 'lag' : null),
            card('Consumed / s', fmtRate(g.consumed_per_s), 'consumed_per_s'),
            card('Members', g.members.length, 'members'),
            card('Max reconsume', g.config ? g.config.max_reconsume_effective : '', 'max_reconsume'));
        members.replaceChildren(table([{ title: 'Member' }, { title: 'Client' }, { title: 'Topic' },
            { title: 'Filter' }, { title: 'Credit', num: 1 }, { title: 'In flight', num: 1 }],
        g.members.map((m) => h('tr', {}, h('td', {}, m.member_id), h('td', {}, m.client_id), h('td', {}, m.topic),
            h('td', { class: 'mono' }, m.filter), h('td', { class: 'num' }, m.credit), h('td', { class: 'num' }, m.inflight))),
        'No member online.'));
        queues.replaceChildren(table([{ title: 'Topic' }, { title: 'Queue', num: 1 }, { title: 'Committed', num: 1 },
            { title: 'Max offset', num: 1 }, { title: 'Lag', num: 1 }, { title: 'Owner', num: 1 }],
        g.queues.map((q) => h('tr', { 'data-topic': q.topic, 'data-queue': q.queue }, h('td', {}, q.topic),
            h('td', { class: 'num' }, q.queue), h('td', { class: 'num', 'data-field': 'committed' }, fmtInt(q.committed)),
            h('td', { class: 'num' }, fmtInt(q.max_offset)),
            h('td', { class: 'num' + (q.lag ? ' lag' : ''), 'data-field': 'lag' }, fmtInt(q.lag)),
            h('td', { class: 'num' }, q.owner || ''))),
        'No queues consumed yet.', { id: 'group-queues' }));
        const names = [...new Set(g.queues.map((q) => q.topic).filter((t) => !t.startsWith('%')))].sort();
        if (names.join('\n') !== topicsShown) {
            topicsShown = names.join('\n');
            const keep = topic.value;
            topic.replaceChildren(...names.map((t) => h('option', { value: t, selected: t === keep }, t)));
        }
    });
}

// ---- connections -----------------------------------------------------------------------------

views.connections = (main, args, gen) => {
    const out = h('div');
    const lists = h('div', { id: 'connections-list' });
    main.append(h('h1', {}, 'Connections'), out, lists);
    every(LIST_MS, gen, async () => {
        const r = await api('GET', '/connections');
        if (gen !== state.gen) {
            return;
        }
        lists.replaceChildren(...Object.entries(r.connections).map(([proto, conns]) => h('div', {},
            h('h2', {}, proto + ' ', h('span', { class: 'pill', 'data-field': 'count_' + proto }, conns.length)),
            h('div', { class: 'panel' }, table([{ title: 'Id', num: 1 }, { title: 'Client id' }, { title: 'User' },
                { title: 'Remote' }, { title: 'Subscriptions', num: 1 }, { title: 'In flight', num: 1 }, { title: '' }],
            conns.map((c) => h('tr', { 'data-protocol': proto, 'data-client': c.client_id, 'data-id': c.id },
                h('td', { class: 'num' }, c.id), h('td', { class: 'mono' }, c.client_id),
                h('td', {}, c.user === null ? '—' : c.user), h('td', { class: 'mono' }, c.remote),
                h('td', { class: 'num' }, c.subscriptions), h('td', { class: 'num' }, c.inflight),
                h('td', {}, h('button', { class: 'danger kick', onclick: async () => {
                    if (!confirm(`Close ${proto} connection ${c.id} (${c.client_id})?`)) {
                        return;
                    }
                    try {
                        await api('DELETE', `/connections/${proto}/${c.id}`);
                        note(out, true, `Kicked ${proto} connection ${c.id} (${c.client_id}).`);
                        state.refresh();
                    } catch (e) {
                        note(out, false, e.message);
                    }
                } }, 'Kick')))),
            'No open connection.')))));
    });
};

// ---- messages --------------------------------------------------------------------------------

function messageView(m) {
    const body = m.body !== undefined ? m.body : '(binary, base64) ' + m.body_base64;
    return h('div', { class: 'panel message', 'data-msgid': m.msgid },
        h('dl', { class: 'kv' },
            h('dt', {}, 'id'), h('dd', { 'data-field': 'msgid' }, m.msgid),
            h('dt', {}, 'topic'), h('dd', { 'data-field': 'topic' }, m.topic),
            h('dt', {}, 'queue / offset'), h('dd', {}, m.queue + ' / ' + m.offset),
            h('dt', {}, 'tag'), h('dd', { 'data-field': 'tag' }, m.tag),
            h('dt', {}, 'keys'), h('dd', { 'data-field': 'keys' }, m.keys.join(' ')),
            h('dt', {}, 'stored'), h('dd', {}, fmtTime(m.store_ms)),
            h('dt', {}, 'born'), h('dd', {}, fmtTime(m.born_ms) + ' at ' + m.born_host),
            h('dt', {}, 'reconsumed'), h('dd', {}, m.reconsume),
            h('dt', {}, 'size'), h('dd', {}, fmtBytes(m.size)),
            ...Object.entries(m.properties).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
        h('pre', { class: 'body', 'data-field': 'body' }, body));
}

views.messages = (main, args, gen) => {
    const out = h('div', { id: 'lookup-result' });
    const id = h('input', { name: 'msgid', id: 'lookup-id', placeholder: 'message id (32 hex digits)', size: 36 });
    const topic = h('input', { name: 'topic', id: 'lookup-topic', placeholder: 'topic' });
    const key = h('input', { name: 'key', id: 'lookup-key', placeholder: 'key' });
    const byId = h('form', { class: 'inline', id: 'lookup-by-id', onsubmit: async (ev) => {
        ev.preventDefault();
        try {
            note(out, true, 'Found.');
            out.append(messageView(await api('GET', '/messages/' + enc(id.value.trim()))));
        } catch (e) {
            note(out, false, e.message);
        }
    } }, id, h('button', { type: 'submit' }, 'Find by id'));
    const byKey = h('form', { class: 'inline', id: 'lookup-by-key', onsubmit: async (ev) => {
        ev.preventDefault();
        try {
            const r = await api('GET', `/messages?topic=${enc(topic.value.trim())}&key=${enc(key.value.trim())}`);
            note(out, true, `${r.messages.length} message(s) with key ${r.key} in ${r.topic}.`);
            out.append(...r.messages.map(messageView));
        } catch (e) {
            note(out, false, e.message);
        }
    } }, topic, key, h('button', { type: 'submit' }, 'Find by key'));
    main.append(h('h1', {}, 'Message lookup'), byId, byKey, out);
};

// ---- dead letters ----------------------------------------------------------------------------

views.dlq = (main, args, gen) => {
    const out = h('div', { id: 'dlq-result' });
    const list = h('div', { id: 'dlq-list' });
    const group = h('select', { id: 'dlq-group', onchange: () => { location.hash = '#/dlq/' + enc(group.value); } });
    main.append(h('h1', {}, 'Dead letters'), h('form', { class: 'inline' }, 'Group', group), out, list);
    const chosen = args[0] || '';
    (async () => {
        const r = await api('GET', '/groups');
        if (gen !== state.gen) {
            return;
        }
        const names = r.groups.map((g) => g.name).sort();
        if (chosen && !names.includes(chosen)) {
            names.unshift(chosen);
        }
        group.replaceChildren(h('option', { value: '' }, '— choose a group —'),
            ...names.map((n) => h('option', { value: n, selected: n === chosen }, n)));
    })().catch((e) => note(out, false, e.message));
    if (!chosen) {
        return;
    }
    const load = async () => {
        const r = await api('GET', '/groups/' + enc(chosen) + '/dlq?limit=100');
        if (gen !== state.gen) {
            return;
        }
        if (!r.exists || !r.messages.length) {
            list.replaceChildren(h('div', { class: 'panel empty', 'data-field': 'dlq-empty' },
                `No dead letters for ${chosen}.`));
            return;
        }
        const boxes = [];
        const rows = r.messages.map((m) => {
            const box = h('input', { type: 'checkbox', value: m.msgid, class: 'dlq-pick' });
            boxes.push(box);
            return h('tr', { 'data-msgid': m.msgid }, h('td', {}, box), h('td', { class: 'mono' }, m.msgid),
                h('td', {}, m.topic), h('td', {}, m.tag), h('td', { class: 'num' }, m.reconsume),
                h('td', {}, fmtTime(m.store_ms)),
                h('td', { class: 'mono' }, (m.body !== undefined ? m.body : '(binary)').slice(0, 60)));
        });
        const resend = h('button', { id: 'dlq-resend', onclick: async () => {
            const ids = boxes.filter((b) => b.checked).map((b) => b.value);
            if (!ids.length) {
                note(out, false, 'Choose the dead letters to resend.');
                return;
            }
            try {
                const res = await api('POST', '/groups/' + enc(chosen) + '/dlq/resend', { msgids: ids });
                note(out, true, `Resent ${res.resent.length} message(s): ` +
                    res.resent.map((x) => x.new_msgid).join(' '));
            } catch (e) {
                note(out, false, e.message);
            }
        } }, 'Resend selected');
        const all = h('button', { class: 'secondary', type: 'button', onclick: () => boxes.forEach((b) => { b.checked = true; }) }, 'Select all');
        list.replaceChildren(h('p', {}, `${r.max_offset - r.min_offset} dead letter(s) in ${r.topic}. `, all, ' ', resend),
            h('div', { class: 'panel' }, table([{ title: '' }, { title: 'Id' }, { title: 'Topic' }, { title: 'Tag' },
                { title: 'Tries', num: 1 }, { title: 'Stored' }, { title: 'Body' }], rows, '', { id: 'dlq-table' })));
    };
    load().catch((e) => note(out, false, e.message));
};

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', route);
