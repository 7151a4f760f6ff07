// The soak's server (a child of soak.js, inside the test's network namespace
// when there is one): an ix-websocket WebSocketServer that echoes every
// message on the connection it came from, numbering its echoes per
// connection, and checks what each connection delivers.
//
// Per connection (one TCP connection = one server-side record) it checks:
// - every message parses and its every byte is what its client sends as that
//   number, and it comes from the client the connection's URL names;
// - the numbers (g) of the messages are consecutive: g, g+1, g+2, ... A gap
//   is a message lost inside the connection, a repeat or a step back a
//   duplicate or a reordering. (A connection may start past 0, and the
//   messages a client queued just before a connection died may be missing at
//   its end: those were never delivered by that connection.)
// - once an echo is refused on a connection (it is closing), none is accepted
//   after it (else the client would see a gap that is the server's doing).
'use strict';

const pkg = require('../fixtures/pkg.js');
const rpc = require('./rpc.js');
const { parseClientMessage, echoMessage } = require('./payload.js');

const [host, portArg] = process.argv.slice(2);
const MAX_VIOLATIONS = 40;

// Bounds far above the soak's load: the soak tests faults, not the limits.
const srv = new pkg.WebSocketServer({
  host,
  port: Number(portArg),
  backlog: 1024,
  maxConnections: 8192,
  // Dead peers (partition, blackholed proxy connections) are found by the
  // server's own heartbeat: a ping every 2 s, closed after 6 s of silence.
  pingInterval: 2,
  pingTimeout: 6,
  handshakeTimeout: 10,
});

let nextSid = 1;
const live = new Map(); // ref -> record
const closed = []; // [sid, client, firstG, lastG, recv, echoOk, echoFail, closeCode]
const lastOpenAt = new Map(); // client id -> Date.now() of its latest open
const violations = [];
let violationCount = 0;
const totals = { opens: 0, closes: 0, recv: 0, echoOk: 0, echoFail: 0, handshakeErrors: 0 };
const closeCodes = {};
const echoFailReasons = {};

function violation(rec, text) {
  violationCount++;
  if (violations.length < MAX_VIOLATIONS)
    violations.push(`server sid ${rec ? rec.sid : '-'} client ${rec ? rec.client : '-'}: ${text}`);
}

srv.on('open', (ref, ctx) => {
  totals.opens++;
  const m = /^\/c\/(\d+)$/.exec(ctx.uri);
  const client = m ? Number(m[1]) : -1;
  const rec = { sid: nextSid++, client, firstG: -1, lastG: -1, recv: 0, echoOk: 0, echoFail: 0 };
  if (live.has(ref)) violation(rec, `open for ref ${ref} while ref ${ref} is still open (sid ${live.get(ref).sid})`);
  live.set(ref, rec);
  if (client < 0) violation(rec, `unexpected request target ${JSON.stringify(ctx.uri)}`);
  else lastOpenAt.set(client, Date.now());
});

srv.on('message', (ref, ctx) => {
  const rec = live.get(ref);
  if (!rec) {
    violation(null, `message on ref ${ref} that has no open connection`);
    return;
  }
  totals.recv++;
  rec.recv++;
  const p = parseClientMessage(ctx.data);
  if (!p) {
    violation(rec, `malformed message (${typeof ctx.data}, ${ctx.data.length} long)`);
    return;
  }
  if (p.client !== rec.client) violation(rec, `message of client ${p.client} (g ${p.g})`);
  if (!p.ok) violation(rec, `message g ${p.g} has wrong bytes`);
  if (rec.lastG >= 0 && p.g !== rec.lastG + 1) {
    violation(
      rec,
      p.g > rec.lastG + 1
        ? `lost: g ${rec.lastG + 1}..${p.g - 1} missing before g ${p.g}`
        : `duplicated or reordered: g ${p.g} after g ${rec.lastG}`,
    );
  }
  if (rec.firstG < 0) rec.firstG = p.g;
  rec.lastG = p.g;
  const st = srv.send(echoMessage(rec.sid, rec.echoOk, ctx.data), { clients: [ref] })[0];
  if (st && st.success) {
    if (rec.echoFail > 0) violation(rec, `echo accepted after ${rec.echoFail} refused on the same connection`);
    rec.echoOk++;
    totals.echoOk++;
  } else {
    rec.echoFail++;
    totals.echoFail++;
    const why = (st && st.message) || 'no status';
    echoFailReasons[why] = (echoFailReasons[why] || 0) + 1;
  }
});

srv.on('close', (ref, ctx) => {
  totals.closes++;
  closeCodes[ctx.code] = (closeCodes[ctx.code] || 0) + 1;
  const rec = live.get(ref);
  if (!rec) {
    violation(null, `close on ref ${ref} that has no open connection`);
    return;
  }
  live.delete(ref);
  closed.push([rec.sid, rec.client, rec.firstG, rec.lastG, rec.recv, rec.echoOk, rec.echoFail, ctx.code]);
});

srv.on('error', () => {
  totals.handshakeErrors++;
});

let port = 0;
function start() {
  const st = srv.start(port ? { port } : undefined);
  if (!st.success) throw new Error(`server start failed: ${st.message}`);
  port = srv.port;
  return { port, message: st.message };
}

rpc.serve({
  pid: () => process.pid,
  start,
  stop: () => {
    const r = srv.stop();
    if (r && r.success === false) throw new Error(`server stop failed: ${r.message}`);
    return { open: srv.clients().length };
  },
  gc: () => {
    if (global.gc) {
      global.gc();
      global.gc();
    }
    return { ...process.memoryUsage(), pool: pkg.bufferPoolStats() };
  },
  stats: () => ({
    clients: srv.clients().length,
    live: live.size,
    totals,
    violations: violationCount,
    closeCodes,
    echoFailReasons,
  }),
  liveSids: () => [...live.values()].map((r) => r.sid),
  stillOpen: ({ sids }) => {
    const want = new Set(sids);
    return [...live.values()].filter((r) => want.has(r.sid)).map((r) => r.sid);
  },
  // Client ids that opened a connection at or after `since` (ms since epoch).
  openedSince: ({ since }) => {
    const out = [];
    for (const [c, t] of lastOpenAt) if (t >= since) out.push(c);
    return out;
  },
  report: () => ({
    closed,
    live: [...live.values()].map((r) => [r.sid, r.client, r.firstG, r.lastG, r.recv, r.echoOk, r.echoFail, 0]),
    violations,
    violationCount,
  }),
  clear: () => {
    srv.clear();
    return true;
  },
});
