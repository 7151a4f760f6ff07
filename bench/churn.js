#!/usr/bin/env node
// Connect/exchange/close churn against one server, to show that nothing
// leaks across connections: open file descriptors, threads, RSS and refs are
// measured before and after (after a settle time).
//
//   node --expose-gc bench/churn.js [cycles=20000] [concurrency=16]
//
// V8 sizes its young generation by allocation rate, which alone moves RSS by
// ~10 MiB over a run; add --max-semi-space-size=1 to hold it still and see
// only native growth (the V8 heap total is printed either way).
//
// Each cycle creates a client, connects, exchanges one message each way and
// ends the connection in one of three ways (client stop, client clear without
// a close handshake, the server closing it), then clears the client. Also
// usable as a module: churn({ cycles, concurrency, settleMs }).
'use strict';

const fs = require('fs');
const path = require('path');

function packageRoot(dir) {
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('no package.json above ' + __dirname);
    dir = up;
  }
  return dir;
}

const b = require('node-gyp-build')(packageRoot(__dirname));

function sample() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  return {
    fds: fs.readdirSync('/proc/self/fd').length,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)[1]),
    rss: process.memoryUsage().rss,
    // V8 grows its young generation under allocation pressure (up to 16 MiB
    // per semi-space by default): RSS minus this is what native code holds.
    heapTotal: process.memoryUsage().heapTotal,
  };
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function churn({ cycles = 20000, concurrency = 16, warmup, settleMs = 2000, twice = false, log = () => {} } = {}) {
  // Server side: conn ref -> cycle waiting for that connection's close.
  const byConn = new Map();
  const waiting = new Map(); // cycle id -> { conn, closed }
  let serverRef = 0;
  const server = b.websocketServer({
    port: 0,
    maxConnections: concurrency * 4,
    method: (_s, conn, type, ctx) => {
      if (type === 'message') {
        const id = Number(String(ctx.data).slice(6)); // "hello:<id>"
        const w = waiting.get(id);
        if (!w) return;
        byConn.set(conn, id);
        w.conn = conn;
        b.websocketServerSend({ ref: serverRef, clients: [conn] }, 'hi:' + id);
      } else if (type === 'close') {
        const id = byConn.get(conn);
        byConn.delete(conn);
        const w = id === undefined ? undefined : waiting.get(id);
        if (w) w.closed();
      }
    },
  });
  serverRef = server.ref;
  const st = b.websocketServerStart(server);
  if (!st.success) throw new Error('server start failed: ' + st.message);
  const url = `ws://127.0.0.1:${st.port}/`;

  function cycle(id) {
    return new Promise((resolve, reject) => {
      let ref = 0;
      const timer = setTimeout(() => reject(new Error(`cycle ${id} timed out`)), 15000);
      const mode = id % 3; // 0: stop, 1: clear at once, 2: the server closes it
      const entry = { conn: 0, closed: null };
      entry.closed = () => {
        clearTimeout(timer);
        waiting.delete(id);
        if (mode === 0 || mode === 2) b.websocketClientClear({ ref });
        resolve();
      };
      waiting.set(id, entry);
      const c = b.websocketClient({
        url,
        enableAutomaticReconnection: false,
        disablePerMessageDeflate: id % 2 === 0,
        method: (_s, _c, type, ctx) => {
          if (type === 'open') {
            b.websocketClientSend({ ref }, 'hello:' + id);
          } else if (type === 'message' && ctx.data === 'hi:' + id) {
            if (mode === 0) b.websocketClientStop({ ref });
            else if (mode === 1) b.websocketClientClear({ ref });
            else b.websocketServerCloseClient({ ref: serverRef }, entry.conn, 4000, 'churn');
          } else if (type === 'error' || (type === 'close' && entry.conn === 0)) {
            clearTimeout(timer);
            reject(new Error(`cycle ${id}: ${type} ${JSON.stringify(ctx)}`));
          }
        },
      });
      ref = c.ref;
      b.websocketClientStart(c).then((r) => {
        if (!r.success) {
          clearTimeout(timer);
          reject(new Error(`cycle ${id}: start failed: ${r.errorStr}`));
        }
      });
    });
  }

  async function run(n, offset) {
    let next = 0;
    const workers = [];
    for (let w = 0; w < concurrency; w++) {
      workers.push(
        (async () => {
          while (next < n) {
            const id = offset + next++;
            await cycle(id);
            if ((id + 1 - offset) % 5000 === 0) log(`  ${id + 1 - offset} cycles`);
          }
        })(),
      );
    }
    await Promise.all(workers);
  }

  // Warm up first: IO threads, TLS/zlib tables and allocator arenas are
  // created on first use and are not what is being measured.
  await run(warmup === undefined ? Math.min(200, cycles) : warmup, 0);
  await delay(settleMs);
  if (global.gc) global.gc();
  const before = sample();
  const t0 = Date.now();
  await run(cycles, 1000000);
  const elapsedMs = Date.now() - t0;
  await delay(settleMs);
  if (global.gc) global.gc();
  const after = sample();
  // Optionally the same again: growth between the two runs is what would keep
  // going (a leak); growth in the first also holds allocator/V8 warm-up.
  let again;
  if (twice) {
    await run(cycles, 2000000);
    await delay(settleMs);
    if (global.gc) global.gc();
    again = sample();
  }

  const clientsLeft = b.websocketServerClients({ ref: serverRef });
  const probe = b.websocketClient({ url });
  const nextClientRef = probe.ref;
  b.websocketClientClear(probe);
  b.websocketServerClear({ ref: serverRef });
  return { cycles, concurrency, elapsedMs, before, after, again, clientsLeft, nextClientRef, pendingCycles: waiting.size };
}

module.exports = { churn, sample };

if (require.main === module) {
  const cycles = Number(process.argv[2] || 20000);
  const concurrency = Number(process.argv[3] || 16);
  // Warm-up cycles before the first sample (default 200): V8's heap and the
  // allocator's arenas grow to their working size during the first thousands.
  const warmup = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
  const mib = (n) => (n / 1048576).toFixed(1) + ' MiB';
  churn({ cycles, concurrency, warmup, twice: true, log: (m) => console.log(m) })
    .then((r) => {
      const pct = (a, z) => ((100 * (z - a)) / a).toFixed(1) + '%';
      console.log(`${r.cycles} cycles, ${r.concurrency} at a time, ${(r.elapsedMs / 1000).toFixed(1)} s ` +
        `(${Math.round((r.cycles * 1000) / r.elapsedMs)} cycles/s); then ${r.cycles} more`);
      const line = (name, f, fmt) =>
        console.log(`${name.padEnd(12)} ${fmt(f(r.before))} -> ${fmt(f(r.after))} (${pct(f(r.before), f(r.after))})` +
          ` -> ${fmt(f(r.again))} (${pct(f(r.after), f(r.again))})`);
      line('fds', (x) => x.fds, String);
      line('threads', (x) => x.threads, String);
      line('rss', (x) => x.rss, mib);
      line('V8 heapTotal', (x) => x.heapTotal, mib);
      console.log(`server clients left: ${JSON.stringify(r.clientsLeft)}; next client ref: ${r.nextClientRef}`);
      process.exit(0);
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
}
