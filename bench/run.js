#!/usr/bin/env node
'use strict';
// npm run bench: every scenario against ix-websocket and ws in one run,
// alternating the two, several rounds each. Load comes from the native load
// generator (bench/loadgen), a separate process identical for both servers.
// Prints a table (median [min-max] of each, ratio ix/ws, target) and writes
// bench/results/latest.json and bench/results/latest.svg.
//
//   node bench/run.js [--rounds 3] [--only echo-32,idle-10k] [--quick]
const { spawn, spawnSync, fork } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { writeChart } = require('./chart');

const ROOT = path.resolve(__dirname, '..');
const LOADGEN = path.join(ROOT, 'build-loadgen', 'loadgen');
const RESULTS = path.join(__dirname, 'results');
const IMPLS = ['ix', 'ws'];
const NAMES = { ix: 'ix-websocket', ws: 'ws' };

function parseCli(argv) {
  const o = { rounds: 3, only: null, quick: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--rounds') o.rounds = Number(argv[++i]);
    else if (argv[i] === '--only') o.only = argv[++i].split(',');
    else if (argv[i] === '--quick') o.quick = true;
  }
  if (o.quick) o.rounds = Math.min(o.rounds, 1);
  return o;
}
const cli = parseCli(process.argv.slice(2));
const DURATION = cli.quick ? 1 : 2; // seconds measured per echo run
const WARMUP = 0.5;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => process.stderr.write(a.join(' ') + '\n');

// ---- file descriptors ------------------------------------------------------
// 10,000 idle connections need ~10,000 descriptors in the server and in the
// load generator (separate processes). Raise the soft limit to the hard one
// through a shell if needed (Node has no setrlimit).
function nofile() {
  const r = spawnSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' });
  const [soft, hard] = r.stdout.trim().split('\n').map((s) => (s === 'unlimited' ? Infinity : Number(s)));
  return { soft, hard };
}
const IDLE_WANTED = 10000;
let limits = nofile();
if (limits.soft < IDLE_WANTED + 500 && limits.hard > limits.soft && !process.env.IXWS_BENCH_RAISED) {
  const target = Math.min(limits.hard, 65536);
  log(`RLIMIT_NOFILE soft ${limits.soft} < ${IDLE_WANTED + 500}: re-running with ulimit -n ${target}`);
  const r = spawnSync('sh', ['-c', `ulimit -n ${target} && exec "$0" "$@"`, process.execPath, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, IXWS_BENCH_RAISED: '1' },
  });
  process.exit(r.status === null ? 1 : r.status);
}
const IDLE_CONNS = Math.min(IDLE_WANTED, limits.soft - 500);

// ---- processes ---------------------------------------------------------------
function buildLoadgen() {
  const steps = [
    ['cmake', ['-S', path.join(__dirname, 'loadgen'), '-B', path.join(ROOT, 'build-loadgen'), '-G', 'Ninja']],
    ['cmake', ['--build', path.join(ROOT, 'build-loadgen'), '-j2']],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  }
}

// The checkout is shared with engineers who rebuild the addon at any time: the
// run uses a private copy of dist/ and the .node file, checked to load first.
function snapshotIx() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bench-'));
  const binary = path.join(ROOT, 'build', 'Release', 'ix_websocket.node');
  for (let attempt = 0; ; attempt++) {
    fs.rmSync(path.join(dir, 'dist'), { recursive: true, force: true });
    fs.cpSync(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(binary, path.join(dir, 'build', 'Release', 'ix_websocket.node'));
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    if (!fs.existsSync(path.join(dir, 'node_modules'))) fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    const entry = path.join(dir, 'dist', 'lib', 'index.js');
    const r = spawnSync(process.execPath, ['-e', `const ix=require(${JSON.stringify(entry)}); if (typeof ix.websocketServer !== 'function') process.exit(3)`], { encoding: 'utf8' });
    if (r.status === 0) {
      const st = fs.statSync(binary);
      return { dir, entry, binaryMtime: st.mtime.toISOString(), binarySize: st.size };
    }
    if (attempt >= 20) throw new Error(`ix-websocket does not load: ${r.stderr}`);
    log('ix-websocket binary not loadable yet (being rebuilt?), retrying in 3 s');
    spawnSync('sleep', ['3']);
  }
}
let IX = null;

let msgId = 0;
// A benchmark server (or flood client) process with the IPC channel.
function startProc(impl, role, args = []) {
  const script = path.join(__dirname, 'servers', `${impl}-server.js`);
  const child = fork(script, [role, ...args], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, IXWS_BENCH_IX: IX.entry },
  });
  const waiters = [];
  child.on('message', (m) => {
    const i = waiters.findIndex((w) => w.match(m));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
  });
  const exited = new Promise((r) => child.on('exit', (code) => r(code)));
  const wait = (match, ms, what) =>
    new Promise((resolve, reject) => {
      const w = { match, resolve };
      waiters.push(w);
      const t = setTimeout(() => reject(new Error(`${impl} ${role}: no ${what} within ${ms} ms`)), ms);
      exited.then((code) => reject(new Error(`${impl} ${role} exited (${code}) waiting for ${what}`)));
      const done = w.resolve;
      w.resolve = (m) => {
        clearTimeout(t);
        done(m);
      };
    });
  const request = (cmd) => {
    const id = ++msgId;
    const p = wait((m) => m.id === id, 15000, cmd);
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
  return { child, wait, request, stop, exited };
}

async function startServer(impl, role, args) {
  const p = startProc(impl, role, args);
  p.info = await p.wait((m) => m.type === 'listening', 15000, 'listening');
  p.port = p.info.port;
  return p;
}

// Runs the load generator; resolves with its JSON lines (the last is the result).
function loadgen(args, { timeoutMs = 60000, onLine } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(LOADGEN, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = [];
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const obj = JSON.parse(line);
        lines.push(obj);
        if (onLine) onLine(obj, child);
      }
    });
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      if (!lines.length) return reject(new Error(`loadgen ${args.join(' ')} gave no result (exit ${code} ${signal || ''})`));
      resolve({ lines, result: lines[lines.length - 1], code });
    });
  });
}

// Problems a run must not hide: a sample with any of these is reported and dropped.
function runErrors(r) {
  const e = [];
  for (const k of ['failed', 'lost', 'content_errors', 'len_errors', 'missing']) if (r[k]) e.push(`${k}=${r[k]}`);
  if (r.error) e.push(r.error);
  if (r.opened !== undefined && r.opened < r.conns) e.push(`opened ${r.opened}/${r.conns}`);
  return e;
}

function cpuDelta(a, b) {
  return (b.user - a.user + b.system - a.system) / 1e6 / (b.t - a.t);
}

// ---- scenarios -----------------------------------------------------------------
const url = (port) => `ws://127.0.0.1:${port}/`;

function echoScenario(id, title, size, conns, inflight, { deflate = false, metric = 'msgs_per_s', target }) {
  return {
    id, title, role: 'echo', serverArgs: deflate ? ['--deflate'] : [], metric, unit: metric === 'msgs_per_s' ? 'msg/s' : 'MB/s',
    better: 'higher', target,
    scale: metric === 'bytes_per_s' ? 1e-6 : 1,
    loadgenArgs: (port) => ['--mode', 'echo', '--url', url(port), '--conns', conns, '--size', size, '--inflight', inflight,
      '--duration', DURATION, '--warmup', WARMUP, ...(deflate ? ['--deflate', '--text'] : [])].map(String),
    extra: (r) => ({ msgs_per_s: r.msgs_per_s, bytes_per_s: r.bytes_per_s, loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu, wire_size: r.wire_size }),
  };
}

const SCENARIOS = [
  echoScenario('echo-32', 'echo 32 B, 100 conns x 8 in flight', 32, 100, 8, { target: 2 }),
  echoScenario('echo-1k', 'echo 1 KiB, 100 conns x 8 in flight', 1024, 100, 8, { target: 2 }),
  echoScenario('echo-64k', 'echo 64 KiB, 100 conns x 2 in flight', 65536, 100, 2, { metric: 'bytes_per_s', target: 1.5 }),
  echoScenario('echo-1m', 'echo 1 MiB, 20 conns x 2 in flight', 1 << 20, 20, 2, { metric: 'bytes_per_s', target: 1.5 }),
  echoScenario('echo-1k-deflate', 'echo 1 KiB JSON text, permessage-deflate, 100 x 8', 1024, 100, 8, { deflate: true, target: 3 }),
  {
    id: 'broadcast-1k', title: 'broadcast 50 x 1 KiB to 1,000 clients', role: 'broadcast', serverArgs: [],
    metric: 'deliveries_per_s', unit: 'msg/s', better: 'higher', target: 3, scale: 1,
    loadgenArgs: (port) => ['--mode', 'broadcast', '--url', url(port), '--conns', '1000', '--count', '50', '--size', '1024', '--timeout', '60'],
    extra: (r) => ({ completion_ms: r.completion_ms, completion_ms_min: r.completion_ms_min, completion_ms_max: r.completion_ms_max, loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu }),
  },
  {
    id: 'idle-10k', title: `${IDLE_CONNS} idle connections: server RSS per conn`, kind: 'idle', role: 'idle', serverArgs: [],
    metric: 'rss_per_conn', unit: 'B/conn', better: 'lower', target: 0.5, scale: 1,
    extra: (r) => ({ heap_per_conn: r.heap_per_conn, external_per_conn: r.external_per_conn, open_seconds: r.open_seconds }),
  },
  {
    id: 'flood-client', title: 'client receives a flood of 1 KiB (native server)', kind: 'flood', metric: 'msgs_per_s', unit: 'msg/s',
    better: 'higher', target: null, scale: 1,
    extra: (r) => ({ bytes_per_s: r.bytes_per_s, client_cpu: r.cpu, loadgen_cpu: r.loadgen_cpu }),
  },
  {
    id: 'latency-p99', title: 'RTT p99, 64 B at 5,000 msg/s over 10 conns', role: 'echo', serverArgs: [],
    metric: 'p99_us', unit: 'us', better: 'lower', target: 1, scale: 1, also: 'p50_us',
    loadgenArgs: (port) => ['--mode', 'latency', '--url', url(port), '--conns', '10', '--rate', '5000', '--size', '64',
      '--duration', String(cli.quick ? 1.5 : 3), '--warmup', String(WARMUP)],
    extra: (r) => ({ p50_us: r.p50_us, p90_us: r.p90_us, p999_us: r.p999_us, max_us: r.max_us, loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu }),
  },
];

// One server process per implementation, kept across the rounds; the load
// generator runs against them in alternating order.
async function runServed(sc) {
  const servers = {};
  const samples = { ix: [], ws: [] };
  try {
    for (const impl of IMPLS) servers[impl] = await startServer(impl, sc.role, sc.serverArgs);
    for (let round = 0; round < cli.rounds; round++) {
      const order = round % 2 === 0 ? IMPLS : [...IMPLS].reverse();
      for (const impl of order) {
        const srv = servers[impl];
        const c0 = await srv.request('cpu');
        const { result } = await loadgen(sc.loadgenArgs(srv.port), { timeoutMs: 90000 });
        const c1 = await srv.request('cpu');
        result.server_cpu = cpuDelta(c0, c1);
        samples[impl].push(result);
        await sleep(200);
      }
    }
  } finally {
    for (const impl of IMPLS) if (servers[impl]) await servers[impl].stop();
  }
  return samples;
}

// A fresh server per round: memory before, open N connections, memory after.
async function runIdle() {
  const samples = { ix: [], ws: [] };
  for (let round = 0; round < cli.rounds; round++) {
    const order = round % 2 === 0 ? IMPLS : [...IMPLS].reverse();
    for (const impl of order) {
      const srv = await startServer(impl, 'idle', []);
      try {
        await sleep(300);
        const before = await srv.request('mem');
        let ready = null;
        let after = null;
        const run = loadgen(['--mode', 'idle', '--url', url(srv.port), '--conns', String(IDLE_CONNS), '--duration', '60',
          '--timeout', '60', '--connect-concurrency', '200'], {
          timeoutMs: 90000,
          onLine: (obj, child) => {
            if (obj.event !== 'ready') return;
            ready = obj;
            // Let the server finish its open events before reading memory.
            sleep(1000).then(() => srv.request('mem')).then((m) => {
              after = m;
              child.kill('SIGTERM');
            }, () => child.kill('SIGTERM'));
          },
        });
        const { result } = await run;
        if (!ready || !after) throw new Error(`idle ${impl}: no ready/memory (${JSON.stringify(result)})`);
        const n = ready.opened;
        result.conns = IDLE_CONNS;
        result.opened = n;
        result.failed = ready.failed;
        result.rss_per_conn = (after.rss - before.rss) / n;
        result.heap_per_conn = (after.heapUsed - before.heapUsed) / n;
        result.external_per_conn = (after.external - before.external) / n;
        result.rss_before = before.rss;
        result.rss_after = after.rss;
        samples[impl].push(result);
      } finally {
        await srv.stop();
      }
    }
  }
  return samples;
}

// The native flood server sends to one Node client (ix or ws) that counts.
async function runFlood() {
  const samples = { ix: [], ws: [] };
  for (let round = 0; round < cli.rounds; round++) {
    const order = round % 2 === 0 ? IMPLS : [...IMPLS].reverse();
    for (const impl of order) {
      let client = null;
      let got = null;
      const server = loadgen(['--mode', 'flood-server', '--port', '0', '--size', '1024', '--timeout', '30'], {
        timeoutMs: 40000,
        onLine: (obj) => {
          if (obj.event !== 'listening') return;
          client = startProc(impl, 'flood-client', ['--url', url(obj.port), '--warmup', String(WARMUP), '--duration', String(DURATION)]);
          got = client.wait((m) => m.type === 'flood', 30000, 'flood result');
        },
      });
      const { result } = await server;
      if (!got) throw new Error('flood server never listened');
      const r = await got;
      await client.exited;
      samples[impl].push({ ...r, loadgen_cpu: result.loadgen_cpu, server_end: result.end });
    }
  }
  return samples;
}

// The load generator must not be the limit: with the same total connections
// split over two generator processes, the server's rate should not rise.
async function loadgenCheck() {
  const out = {};
  for (const impl of IMPLS) {
    const srv = await startServer(impl, 'echo', []);
    try {
      const args = (conns) => ['--mode', 'echo', '--url', url(srv.port), '--conns', String(conns), '--size', '1024',
        '--inflight', '8', '--duration', String(DURATION), '--warmup', String(WARMUP)];
      const one = (await loadgen(args(100))).result;
      const two = await Promise.all([loadgen(args(50)), loadgen(args(50))]);
      const twoRate = two.reduce((s, x) => s + x.result.msgs_per_s, 0);
      out[impl] = {
        one_process_msgs_per_s: one.msgs_per_s,
        one_process_loadgen_cpu: one.loadgen_cpu,
        two_processes_msgs_per_s: twoRate,
        gain: twoRate / one.msgs_per_s,
      };
    } finally {
      await srv.stop();
    }
  }
  return out;
}

// ---- statistics and output ---------------------------------------------------
function stats(values) {
  const v = [...values].sort((a, b) => a - b);
  if (!v.length) return null;
  const q = (p) => {
    const pos = p * (v.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, v.length - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
  };
  return { median: q(0.5), min: v[0], max: v[v.length - 1], q1: q(0.25), q3: q(0.75), n: v.length };
}

function summarize(sc, samples) {
  const out = { id: sc.id, title: sc.title, metric: sc.metric, unit: sc.unit, better: sc.better, target: sc.target, errors: [] };
  for (const impl of IMPLS) {
    const good = [];
    for (const s of samples[impl]) {
      const e = runErrors(s);
      if (e.length) out.errors.push(`${impl}: ${e.join(', ')}`);
      else if (typeof s[sc.metric] === 'number') good.push(s);
    }
    out[impl] = {
      stats: stats(good.map((s) => s[sc.metric] * sc.scale)),
      also: sc.also ? stats(good.map((s) => s[sc.also])) : undefined,
      runs: samples[impl].map((s) => ({ value: s[sc.metric] * sc.scale, ...sc.extra(s), errors: runErrors(s) })),
    };
  }
  const a = out.ix.stats, b = out.ws.stats;
  out.ratio = a && b && b.median ? a.median / b.median : null;
  // "advantage": how many times better ix is (ws/ix when lower is better).
  out.advantage = out.ratio === null ? null : sc.better === 'higher' ? out.ratio : 1 / out.ratio;
  out.pass = out.ratio === null || sc.target === null ? null : sc.better === 'higher' ? out.ratio >= sc.target : out.ratio <= sc.target;
  if (sc.also && out.ix.also && out.ws.also) out.alsoRatio = { metric: sc.also, ratio: out.ix.also.median / out.ws.also.median };
  return out;
}

function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1e6) return (x / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  if (a >= 100) return x.toFixed(0);
  return x.toFixed(2);
}
const cell = (s) => (s ? `${fmt(s.median)} [${fmt(s.min)}-${fmt(s.max)}]` : 'no valid run');

function printTable(rows) {
  const head = ['scenario', 'metric', 'ix-websocket median [min-max]', 'ws median [min-max]', 'ix/ws', 'target', 'ok'];
  const body = rows.map((r) => [
    r.id, r.unit + (r.better === 'lower' ? ' (lower)' : ''), cell(r.ix.stats), cell(r.ws.stats),
    r.ratio === null ? '-' : r.ratio.toFixed(2) + 'x',
    r.target === null ? '-' : (r.better === 'higher' ? '>= ' : '<= ') + r.target + 'x',
    r.pass === null ? '' : r.pass ? 'yes' : 'NO',
  ]);
  for (const r of rows) {
    if (r.alsoRatio) {
      body.push([`  (${r.alsoRatio.metric})`, r.unit + ' (lower)', cell(r.ix.also), cell(r.ws.also), r.alsoRatio.ratio.toFixed(2) + 'x', '', '']);
    }
  }
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => c.padEnd(w[i])).join('  ');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) console.log(line(b));
}

function machine() {
  const version = (m) => {
    try {
      return require(path.join(ROOT, 'node_modules', m, 'package.json')).version;
    } catch (_) {
      return null;
    }
  };
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  return {
    cpu: os.cpus()[0].model, cores: os.cpus().length, memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`, node: process.version, ws: version('ws'),
    bufferutil: version('bufferutil'), utf8Validate: version('utf-8-validate'), commit: git,
    rlimitNofile: limits, idleConns: IDLE_CONNS,
  };
}

async function main() {
  const t0 = Date.now();
  if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'index.js'))) throw new Error('dist/lib/index.js missing: run npm run build:ts');
  buildLoadgen();
  IX = snapshotIx();
  process.on('exit', () => fs.rmSync(IX.dir, { recursive: true, force: true }));
  const info = machine();
  info.ixBinary = { mtime: IX.binaryMtime, size: IX.binarySize };
  log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memGiB} GiB, ${info.os}, node ${info.node}, ws ${info.ws}`);
  log(`RLIMIT_NOFILE soft ${limits.soft} hard ${limits.hard}; idle scenario uses ${IDLE_CONNS} connections`);
  const load0 = os.loadavg();
  const rows = [];
  const raw = {};
  for (const sc of SCENARIOS) {
    if (cli.only && !cli.only.includes(sc.id)) continue;
    const s0 = Date.now();
    log(`${sc.id}: ${sc.title} ...`);
    const samples = sc.kind === 'idle' ? await runIdle() : sc.kind === 'flood' ? await runFlood() : await runServed(sc);
    raw[sc.id] = samples;
    const row = summarize(sc, samples);
    rows.push(row);
    log(`  ix ${cell(row.ix.stats)}  ws ${cell(row.ws.stats)}  ratio ${row.ratio === null ? '-' : row.ratio.toFixed(2)}  (${((Date.now() - s0) / 1000).toFixed(1)} s)`);
    for (const e of row.errors) log(`  run problem: ${e}`);
  }
  let check = null;
  if (!cli.only || cli.only.includes('loadgen-check')) {
    log('loadgen-check: echo 1 KiB, 1 generator x 100 conns vs 2 x 50 ...');
    check = await loadgenCheck();
  }
  const seconds = (Date.now() - t0) / 1000;
  const report = {
    date: new Date().toISOString(), seconds, rounds: cli.rounds, machine: info,
    loadAverage: { before: load0, after: os.loadavg() }, scenarios: rows, loadgenCheck: check, raw,
  };
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  writeChart(path.join(RESULTS, 'latest.svg'), report);

  console.log(`\nix-websocket vs ws ${info.ws} (bufferutil ${info.bufferutil}, utf-8-validate ${info.utf8Validate}); ${cli.rounds} round(s), alternating`);
  console.log(`${info.cpu}, ${info.cores} cores, node ${info.node}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start\n`);
  printTable(rows);
  if (check) {
    console.log('\nload generator check (echo 1 KiB): 1 process x 100 conns vs 2 processes x 50 conns');
    for (const impl of IMPLS) {
      const c = check[impl];
      console.log(`  ${NAMES[impl]}: ${fmt(c.one_process_msgs_per_s)} msg/s (loadgen CPU ${(c.one_process_loadgen_cpu * 100).toFixed(0)}% of one core) vs ${fmt(c.two_processes_msgs_per_s)} msg/s with two: x${c.gain.toFixed(2)}`);
    }
  }
  const lg = rows.flatMap((r) => IMPLS.flatMap((i) => r[i].runs.map((x) => x.loadgen_cpu))).filter((x) => typeof x === 'number');
  if (lg.length) console.log(`load generator CPU over the measured windows: max ${(Math.max(...lg) * 100).toFixed(0)}% of one core`);
  console.log(`\nwrote bench/results/latest.json and bench/results/latest.svg in ${seconds.toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
