'use strict';
// Scale-out scenarios of `npm run bench` (ix-websocket only: they measure
// what a second process adds, not a comparison with other libraries):
//   reuseport-echo-1k  echo 1 KiB, 100 conns x 8 in flight, against one
//                      process, then two processes sharing the port with
//                      reusePort (the kernel spreads the connections)
//   publish-2proc      1,000 clients, each subscribed to one topic, get 50 x
//                      1 KiB published by one process: all in one process,
//                      then spread over two processes (reusePort) with the
//                      Redis bus carrying the publishes to the second
// Reported as median [min-max] per setup and the ratio two/one; no target yet.
// Needs redis-server for publish-2proc (skipped with the reason otherwise).
const { fork, spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const SCALE_IDS = ['reuseport-echo-1k', 'publish-2proc'];
const SERVER = path.join(__dirname, 'servers', 'ix-scale-server.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let msgId = 0;
function startScaleServer(ixEntry, role, args) {
  const child = fork(SERVER, [role, ...args], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, IXWS_BENCH_IX: ixEntry },
  });
  const waiters = [];
  child.on('message', (m) => {
    const i = waiters.findIndex((w) => w.match(m));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
  });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const wait = (match, ms, what) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`ix-scale-server ${role}: no ${what} within ${ms} ms`)), ms);
      exited.then((code) => reject(new Error(`ix-scale-server ${role} exited (${code}) waiting for ${what}`)));
      waiters.push({ match, resolve: (m) => (clearTimeout(t), resolve(m)) });
    });
  const request = (cmd, type) => {
    const id = ++msgId;
    const p = wait((m) => m.id === id && m.type === type, 20000, cmd);
    child.send({ cmd, id });
    return p;
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.send({ cmd: 'stop' });
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  return { child, pid: child.pid, wait, request, stop };
}

/** Starts n servers on one port (reusePort when n > 1); resolves with them and the port. */
async function startGroup(ixEntry, role, n, extra) {
  const servers = [];
  try {
    const first = startScaleServer(ixEntry, role, ['--port', '0', ...(n > 1 ? ['--reuse-port'] : []), ...extra]);
    servers.push(first);
    const { port } = await first.wait((m) => m.type === 'listening', 15000, 'listening');
    for (let i = 1; i < n; i++) {
      const s = startScaleServer(ixEntry, role, ['--port', String(port), '--reuse-port', ...extra]);
      servers.push(s);
      await s.wait((m) => m.type === 'listening', 15000, 'listening');
    }
    return { servers, port };
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    throw e;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const l = net.createServer();
    l.once('error', reject);
    l.listen(0, '127.0.0.1', () => {
      const { port } = l.address();
      l.close(() => resolve(port));
    });
  });
}

function findRedis() {
  for (const exe of [process.env.IXWS_REDIS_SERVER, 'redis-server', '/usr/bin/redis-server', '/usr/sbin/redis-server'].filter(Boolean)) {
    const r = spawnSync(exe, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return { exe, version: r.stdout.trim() };
  }
  return null;
}

async function startRedis(exe) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bench-redis-'));
  const child = spawn(exe, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 10000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => s.write('PING\r\n'));
      s.on('data', (d) => (s.destroy(), resolve(d.toString().startsWith('+PONG'))));
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('redis-server did not start');
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stats(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return { median: v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2, min: v[0], max: v[v.length - 1], n: v.length };
}

/**
 * Runs the selected scale scenarios. ctx: { ids, rounds, quick, loadgen (run.js's
 * runner), ixEntry, log, duration, warmup }. Returns rows for the report.
 */
async function runScale(ctx) {
  const rows = [];
  const { rounds, log } = ctx;
  const order = (round) => (round % 2 === 0 ? [1, 2] : [2, 1]);

  if (ctx.ids.includes('reuseport-echo-1k')) {
    log('reuseport-echo-1k: echo 1 KiB, 100 conns x 8 in flight: 1 process vs 2 processes on one port ...');
    const samples = { 1: [], 2: [] };
    for (let round = 0; round < rounds; round++) {
      for (const n of order(round)) {
        const g = await startGroup(ctx.ixEntry, 'echo', n, []);
        try {
          const { result } = await ctx.loadgen(['--mode', 'echo', '--url', `ws://127.0.0.1:${g.port}/`, '--conns', '100', '--size', '1024',
            '--inflight', '8', '--duration', String(ctx.duration), '--warmup', String(ctx.warmup)], { timeoutMs: 90000 });
          samples[n].push(result.msgs_per_s);
        } finally {
          await Promise.all(g.servers.map((s) => s.stop()));
        }
        await sleep(200);
      }
    }
    rows.push({ id: 'reuseport-echo-1k', title: 'echo 1 KiB, 100 conns x 8 in flight', unit: 'msg/s', one: stats(samples[1]),
      two: stats(samples[2]), raw: samples });
  }

  if (ctx.ids.includes('publish-2proc')) {
    const redisExe = findRedis();
    const title = 'publish 50 x 1 KiB to 1,000 subscribers (one topic)';
    if (!redisExe) {
      log('publish-2proc: skipped: redis-server not found (apt-get install redis-server, or set IXWS_REDIS_SERVER)');
      rows.push({ id: 'publish-2proc', title, unit: 'deliveries/s', skipped: 'redis-server not found (apt-get install redis-server)' });
    } else {
      log(`publish-2proc: ${title}: 1 process vs 2 processes + Redis (${redisExe.version.split(' ').slice(0, 3).join(' ')}) ...`);
      const redis = await startRedis(redisExe.exe);
      const samples = { 1: [], 2: [] };
        const completion = { 1: [], 2: [] };
      try {
        for (let round = 0; round < rounds; round++) {
          for (const n of order(round)) {
            const g = await startGroup(ctx.ixEntry, 'publish', n, n > 1 ? ['--redis', redis.url] : []);
            try {
              const { result } = await ctx.loadgen(['--mode', 'broadcast', '--url', `ws://127.0.0.1:${g.port}/`, '--conns', '1000',
                '--count', '50', '--size', '1024', '--bursts', ctx.quick ? '1' : '3', '--timeout', '60'], { timeoutMs: 90000 });
              if (result.receivers !== 1000 || result.len_errors) throw new Error(`publish-2proc: ${JSON.stringify(result)}`);
              samples[n].push(result.deliveries_per_s);
              completion[n].push(result.completion_ms);
                } finally {
              await Promise.all(g.servers.map((s) => s.stop()));
            }
            await sleep(200);
          }
        }
      } finally {
        await redis.stop();
      }
      rows.push({ id: 'publish-2proc', title, unit: 'deliveries/s', one: stats(samples[1]), two: stats(samples[2]), raw: samples,
        completionMs: { one: stats(completion[1]), two: stats(completion[2]) }, redis: redisExe.version });
    }
  }
  return rows;
}

function fmtNum(x) {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}
const cellOf = (s) => (s ? `${fmtNum(s.median)} [${fmtNum(s.min)}-${fmtNum(s.max)}]` : '-');

/** The table printed after the main ones. */
function scaleTable(rows) {
  const lines = ['scenario            | 1 process               | 2 processes             | 2/1   | unit', '--------------------|-------------------------|-------------------------|-------|-----'];
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`${r.id.padEnd(19)} | skipped: ${r.skipped}`);
      continue;
    }
    const ratio = r.one && r.two ? (r.two.median / r.one.median).toFixed(2) : '-';
    lines.push(`${r.id.padEnd(19)} | ${cellOf(r.one).padEnd(23)} | ${cellOf(r.two).padEnd(23)} | ${ratio.padEnd(5)} | ${r.unit}`);
  }
  return lines.join('\n');
}

module.exports = { SCALE_IDS, runScale, scaleTable };
