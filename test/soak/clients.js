// The soak's clients (a child of soak.js): many ix-websocket WebSocketClients
// with automatic reconnection and heartbeat, each sending numbered messages
// (payload.js) and checking the server's echoes.
//
// A client's incarnation is what lies between one 'open' event and the next
// 'close' (events reach JavaScript in order, so the boundary is exact). Per
// incarnation it checks, for every echo:
// - it is well formed, echoes this client's own message, every byte exact;
// - all echoes of the incarnation come from one server connection (sid), the
//   first with the server's echo number 0 and then 1, 2, 3, ... (a gap is a
//   lost echo, a repeat or step back a duplicate or reordering);
// - the client's message numbers inside the echoes are consecutive too, and
//   never one the client did not send.
// The numbers g count accepted sends only, so a client's accepted sends are
// exactly 0, 1, 2, ...; which connection carried a send is the engine's
// business (a send can reach a new connection before its 'open' event is
// seen), so client->server ordering is checked by the server per connection.
'use strict';

const pkg = require('../fixtures/pkg.js');
const rpc = require('./rpc.js');
const { clientMessage, parseEcho } = require('./payload.js');

const cfg = JSON.parse(process.argv[2]);
const MAX_VIOLATIONS = 40;
const TICK_MS = 20;
const SLOTS = 50; // each client sends once per TICK_MS * SLOTS = 1 s

const clients = [];
const violations = [];
let violationCount = 0;
const closeCodes = {};
const refusedReasons = {};
const totals = { opens: 0, closes: 0, errors: 0, sendOk: 0, sendRefused: 0, echoes: 0 };
let sending = false;
let tick = 0;

function violation(st, text) {
  violationCount++;
  if (violations.length < MAX_VIOLATIONS) violations.push(`client ${st.id} incarnation ${st.inc}: ${text}`);
}

function newIncarnation(startG) {
  return { sid: -1, nextSeq: 0, firstG: -1, lastG: -1, echoes: 0, startG };
}

function makeClient(id) {
  const url = id < cfg.direct ? `${cfg.directUrl}/c/${id}` : `${cfg.proxyUrl}/c/${id}`;
  const cl = new pkg.WebSocketClient({ url, ...cfg.clientOptions });
  const st = {
    id,
    cl,
    direct: id < cfg.direct,
    g: 0, // next message number; accepted sends so far
    open: false,
    inc: 0,
    cur: null,
    incs: [], // closed incarnations: [sid, echoes, firstG, lastG, closeCode]
    closes: 0,
  };
  cl.on('open', () => {
    totals.opens++;
    if (st.open) violation(st, 'open event while already open');
    st.open = true;
    st.inc++;
    st.cur = newIncarnation(st.g);
  });
  cl.on('message', (ctx) => {
    totals.echoes++;
    if (!st.open) {
      violation(st, 'message outside an open connection');
      return;
    }
    const cur = st.cur;
    const e = parseEcho(ctx.data);
    if (!e || !e.inner) {
      violation(st, `malformed echo (${typeof ctx.data}, ${ctx.data.length} long)`);
      return;
    }
    const m = e.inner;
    if (m.client !== st.id) violation(st, `echo of client ${m.client}'s message g ${m.g}`);
    if (!m.ok) violation(st, `echo of g ${m.g} has wrong bytes`);
    if (m.g >= st.g) violation(st, `echo of g ${m.g}, never sent (next is ${st.g})`);
    if (cur.sid === -1) {
      if (e.seq !== 0) violation(st, `first echo of the connection has server seq ${e.seq}: ${e.seq} lost`);
      cur.sid = e.sid;
    } else if (e.sid !== cur.sid) {
      violation(st, `echo from server connection ${e.sid} inside connection ${cur.sid}`);
    } else if (e.seq !== cur.nextSeq) {
      violation(
        st,
        e.seq > cur.nextSeq
          ? `lost: server seq ${cur.nextSeq}..${e.seq - 1} missing (sid ${cur.sid})`
          : `duplicated or reordered: server seq ${e.seq} after ${cur.nextSeq - 1} (sid ${cur.sid})`,
      );
    }
    if (cur.lastG >= 0 && m.g !== cur.lastG + 1)
      violation(st, `echoed g ${m.g} after g ${cur.lastG} in one connection (sid ${cur.sid})`);
    cur.nextSeq = e.seq + 1;
    if (cur.firstG < 0) cur.firstG = m.g;
    cur.lastG = m.g;
    cur.echoes++;
  });
  cl.on('close', (ctx) => {
    totals.closes++;
    closeCodes[ctx.code] = (closeCodes[ctx.code] || 0) + 1;
    if (!st.open) {
      violation(st, 'close event while not open');
      return;
    }
    st.open = false;
    st.closes++;
    const c = st.cur;
    st.incs.push([c.sid, c.echoes, c.firstG, c.lastG, ctx.code]);
    st.cur = null;
  });
  cl.on('error', () => {
    totals.errors++;
  });
  return st;
}

function sendOne(st, big = false) {
  const r = st.cl.send(clientMessage(st.id, st.g, big));
  if (r.success) {
    st.g++;
    totals.sendOk++;
  } else {
    totals.sendRefused++;
    const why = r.message || 'no message';
    refusedReasons[why] = (refusedReasons[why] || 0) + 1;
  }
}

// Each client sends about once a second; now and then a burst of 8, so that
// several frames are in flight (and in one TCP segment) at once.
setInterval(() => {
  tick++;
  if (!sending) return;
  const slot = tick % SLOTS;
  for (let i = slot; i < clients.length; i += SLOTS) {
    const st = clients[i];
    if (!st.open) continue;
    const n = Math.random() < 1 / 40 ? 8 : 1;
    for (let k = 0; k < n; k++) sendOne(st);
  }
}, TICK_MS);

function openCount() {
  let n = 0;
  for (const st of clients) if (st.open) n++;
  return n;
}

rpc.serve({
  pid: () => process.pid,
  startAll: async () => {
    for (let i = 0; i < cfg.n; i++) clients.push(makeClient(i));
    // Staggered, so the first connect is not one SYN storm.
    for (let i = 0; i < clients.length; i += 50) {
      for (const st of clients.slice(i, i + 50)) st.cl.start().catch(() => {});
      await new Promise((r) => setTimeout(r, 50));
    }
    return clients.length;
  },
  // One big message from every open client: fills the deflate windows of its
  // connection both ways (memory then measures steady state, not warm-up).
  sendBig: () => {
    let n = 0;
    for (const st of clients) {
      if (!st.open) continue;
      sendOne(st, true);
      n++;
    }
    return n;
  },
  setSending: ({ on }) => {
    sending = !!on;
    return sending;
  },
  gc: () => {
    if (global.gc) {
      global.gc();
      global.gc();
    }
    return { ...process.memoryUsage(), pool: pkg.bufferPoolStats() };
  },
  stats: () => ({
    open: openCount(),
    totals,
    violations: violationCount,
    closeCodes,
    refusedReasons,
  }),
  // Remembers each client's state; `changedSinceMark` reports against it.
  mark: () => {
    for (const st of clients) {
      st.markOpen = st.open;
      st.markInc = st.inc;
      st.markCloses = st.closes;
      st.markG = st.g;
    }
    return openCount();
  },
  // Clients that were open at the mark and have not been closed since.
  notClosedSinceMark: () => clients.filter((st) => st.markOpen && st.closes === st.markCloses).map((st) => st.id),
  // For the final window: per client, whether it stayed in the incarnation it
  // had at the mark and every message accepted since then was echoed in it.
  finalWindow: () => {
    const res = { checked: 0, reconnected: [], incomplete: [], sentNothing: [], sent: 0 };
    for (const st of clients) {
      res.checked++;
      if (!st.markOpen || !st.open || st.inc !== st.markInc) {
        res.reconnected.push(st.id);
        continue;
      }
      if (st.g === st.markG) res.sentNothing.push(st.id);
      res.sent += st.g - st.markG;
      if (st.g > st.markG && st.cur.lastG !== st.g - 1) res.incomplete.push(`${st.id} (echoed up to ${st.cur.lastG}, sent up to ${st.g - 1})`);
    }
    return res;
  },
  // True when every open client has had all its accepted sends echoed in its current incarnation.
  drained: () => clients.every((st) => !st.open || st.g === st.cur.startG || st.cur.lastG === st.g - 1),
  report: () => ({
    incarnations: clients.map((st) => [
      st.id,
      st.g,
      st.incs,
      st.cur ? [st.cur.sid, st.cur.echoes, st.cur.firstG, st.cur.lastG, 0] : null,
    ]),
    violations,
    violationCount,
  }),
  clearAll: () => {
    for (const st of clients) st.cl.clear();
    return true;
  },
});
