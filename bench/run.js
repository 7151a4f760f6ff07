#!/usr/bin/env node
'use strict';
// npm run bench: every scenario against ix-websocket, ws and uWebSockets.js in
// one run, alternating them, several rounds each. Load comes from the native
// load generator (bench/loadgen), a separate process identical for all
// servers. Prints two tables (the scenario's metric, and CPU per message, each
// as median [min-max] per server with the ratios ix/ws and ix/uWS against the
// targets) and writes bench/results/latest.json and latest.svg (a --quick or
// --only run writes partial.json and partial.svg instead).
const { spawn, spawnSync, fork } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const preflight = require('./preflight');
const { IMPLS, NAMES, summarize, mainTable, cpuTable, targetSummary, fmt, cell, windowLimit, limitNotes } = require('./report');
const { writeChart } = require('./chart');
const { measureUndisturbed, LIMIT: DISTURB_LIMIT } = require('./clean');

const ROOT = preflight.ROOT;
const RESULTS = path.join(__dirname, 'results');

// ---- command line ---------------------------------------------------------------
const SCENARIO_IDS = ['echo-32', 'echo-1k', 'echo-64k', 'echo-1m', 'echo-64k-few', 'echo-1m-few', 'echo-1k-deflate',
  'broadcast-1k', 'broadcast-timer-1k', 'idle-10k', 'flood-client', 'latency-p99', 'loadgen-check'];
// The scale-out scenarios (ix-websocket alone, 1 process vs 2): bench/scale.js.
const scale = require('./scale');
SCENARIO_IDS.push(...scale.SCALE_IDS);
const USAGE = `usage: npm run bench [-- options]    (node bench/run.js [options])
  --quick          one round, short windows, 2,000 idle connections, no loadgen-check: a first look in under a minute
  --only A,B,...   run only these scenarios
  --rounds N       rounds per scenario (default 3; 1 with --quick)
  --no-uws         leave uWebSockets.js out (it ships binaries for Node 16, 18 and 20 only)
  --build-only     check what the harness needs and build the load generator, then stop
scenarios: ${SCENARIO_IDS.join(', ')}`;

function parseCli(argv) {
  const o = { rounds: null, only: null, quick: false, uws: true, buildOnly: false };
  const value = (i, name) => {
    if (i >= argv.length || argv[i].startsWith('--')) usageError(`${name} needs a value`);
    return argv[i];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--rounds') {
      o.rounds = Number(value(++i, a));
      if (!Number.isInteger(o.rounds) || o.rounds < 1) usageError('--rounds needs a whole number >= 1');
    } else if (a === '--only') {
      o.only = value(++i, a).split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = o.only.filter((s) => !SCENARIO_IDS.includes(s));
      if (unknown.length) usageError(`unknown scenario ${unknown.join(', ')} (scenarios: ${SCENARIO_IDS.join(', ')})`);
    } else if (a === '--quick') o.quick = true;
    else if (a === '--no-uws') o.uws = false;
    else if (a === '--build-only') o.buildOnly = true;
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else usageError(`unknown option ${a}`);
  }
  if (o.rounds === null) o.rounds = o.quick ? 1 : 3;
  return o;
}
function usageError(msg) {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(64);
}
const cli = parseCli(process.argv.slice(2));

// Everything the run needs, before any work.
const problems = preflight.check({ uws: cli.uws, build: true });
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(2);
}

const SERVERS = cli.uws ? IMPLS : IMPLS.filter((i) => i !== 'uws');
// ix-borrowed runs only where a scenario asks for it (the large-message
// echoes); every other server runs everywhere.
const EVERYWHERE = SERVERS.filter((i) => i !== 'ix-borrowed');
const DURATION = cli.quick ? 0.5 : 2; // seconds measured per echo run
const WARMUP = cli.quick ? 0.25 : 0.5;
const LATENCY_SECONDS = cli.quick ? 1 : 3;
const PAUSE_MS = cli.quick ? 100 : 200; // between two load generator runs
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
const IDLE_WANTED = cli.quick ? 2000 : 10000;
const limits = nofile();
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
// The checkout is shared with engineers who rebuild the addon at any time: the
// run uses a private copy of dist/ and the .node file, checked to load first.
function snapshotIx() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bench-'));
  for (let attempt = 0; ; attempt++) {
    const binary = require('node-gyp-build').path(ROOT);
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
      return { dir, entry, binary, binaryMtime: st.mtime.toISOString(), binarySize: st.size };
    }
    if (attempt >= 20) throw new Error(`ix-websocket does not load: ${r.stderr}`);
    log('ix-websocket binary not loadable yet (being rebuilt?), retrying in 3 s');
    spawnSync('sleep', ['3']);
  }
}
let IX = null;
let LOADGEN_ADDON = null;

let msgId = 0;
// A benchmark server (or flood client) process with the IPC channel.
function startProc(impl, role, args = []) {
  // ix-inline: the same server script, told to start in inline mode (and
  // the ix column never is, whatever the runner's environment says);
  // ix-borrowed: the same script with borrowedPayloads.
  const inline = impl === 'ix-inline';
  const borrowed = impl === 'ix-borrowed';
  const script = path.join(__dirname, 'servers', `${inline || borrowed ? 'ix' : impl}-server.js`);
  const env = { ...process.env, IXWS_BENCH_IX: IX.entry };
  delete env.IXWS_INLINE;
  const child = fork(script, [role, ...args, ...(inline ? ['--inline'] : []), ...(borrowed ? ['--borrowed'] : [])], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env,
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
  return { child, pid: child.pid, wait, request, stop, exited };
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
    const child = spawn(process.execPath, [preflight.LOADGEN_JS, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, IXWS_LOADGEN: LOADGEN_ADDON },
    });
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

// Round r starts with a different server each time, so that none is always
// measured first (or right after the same neighbour).
const orderFor = (impls, round) => impls.map((_, i) => impls[(i + round) % impls.length]);

// ---- scenarios -----------------------------------------------------------------
const url = (port) => `ws://127.0.0.1:${port}/`;

// targets: { ws: x, uws: y } for the scenario's metric (ix/other, >= for
// rates, <= for lower-is-better metrics); cpuTargets: { uws: z } for server
// CPU per message (ix/other <= z).
function echoScenario(id, title, size, conns, inflight, { deflate = false, metric = 'msgs_per_s', targets, cpuTargets }) {
  return {
    id, title, role: 'echo', impls: size >= 65536 && !deflate ? IMPLS : undefined, serverArgs: deflate ? ['--deflate'] : [], metric, unit: metric === 'msgs_per_s' ? 'msg/s' : 'MB/s',
    better: 'higher', targets, cpuTargets,
    scale: metric === 'bytes_per_s' ? 1e-6 : 1,
    loadgenArgs: (port) => ['--mode', 'echo', '--url', url(port), '--conns', conns, '--size', size, '--inflight', inflight,
      '--duration', DURATION, '--warmup', WARMUP, ...(deflate ? ['--deflate', '--text'] : [])].map(String),
    extra: (r) => ({ msgs_per_s: r.msgs_per_s, bytes_per_s: r.bytes_per_s, loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu,
      wire_size: r.wire_size, reply_wire_size: r.reply_wire_size }),
  };
}

const SCENARIOS = [
  echoScenario('echo-32', 'echo 32 B, 100 conns x 8 in flight', 32, 100, 8, { targets: { ws: 2, uws: 1 }, cpuTargets: { uws: 1.25 } }),
  echoScenario('echo-1k', 'echo 1 KiB, 100 conns x 8 in flight', 1024, 100, 8, { targets: { ws: 2, uws: 1 }, cpuTargets: { uws: 1.25 } }),
  echoScenario('echo-64k', 'echo 64 KiB, 100 conns x 2 in flight', 65536, 100, 2,
    { metric: 'bytes_per_s', targets: { ws: 1.5, uws: 1 }, cpuTargets: { uws: 1.25 } }),
  echoScenario('echo-1m', 'echo 1 MiB, 20 conns x 2 in flight', 1 << 20, 20, 2, { metric: 'bytes_per_s', targets: { ws: 1.5, uws: 1 } }),
  echoScenario('echo-64k-few', 'echo 64 KiB, 4 conns x 2 in flight', 65536, 4, 2, { metric: 'bytes_per_s', targets: { ws: 1.5 } }),
  echoScenario('echo-1m-few', 'echo 1 MiB, 1 conn x 2 in flight', 1 << 20, 1, 2, { metric: 'bytes_per_s', targets: { ws: 1.5 } }),
  echoScenario('echo-1k-deflate', 'echo 1 KiB JSON text, permessage-deflate, 100 x 8', 1024, 100, 8, { deflate: true, targets: { ws: 3 } }),
  {
    id: 'broadcast-1k', title: 'broadcast 50 x 1 KiB to 1,000 clients', role: 'broadcast', serverArgs: [],
    metric: 'deliveries_per_s', unit: 'msg/s', better: 'higher', targets: { ws: 3, uws: 1 }, scale: 1,
    loadgenArgs: (port) => ['--mode', 'broadcast', '--url', url(port), '--conns', '1000', '--count', '50', '--size', '1024',
      '--bursts', cli.quick ? '1' : '3', '--timeout', '60'],
    extra: (r) => ({ completion_ms: r.completion_ms, completion_ms_min: r.completion_ms_min, completion_ms_max: r.completion_ms_max,
      loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu }),
  },
  {
    // The same burst sent from a timer (setTimeout 0 after the trigger), not
    // from inside the trigger's message event: ix-websocket corks it per
    // JavaScript task (native/send_scope.h) rather than per delivered batch.
    id: 'broadcast-timer-1k', title: 'broadcast 50 x 1 KiB to 1,000 clients from a timer', role: 'broadcast', serverArgs: ['--timer'],
    metric: 'deliveries_per_s', unit: 'msg/s', better: 'higher', targets: {}, scale: 1,
    loadgenArgs: (port) => ['--mode', 'broadcast', '--url', url(port), '--conns', '1000', '--count', '50', '--size', '1024',
      '--bursts', cli.quick ? '1' : '3', '--timeout', '60'],
    extra: (r) => ({ completion_ms: r.completion_ms, completion_ms_min: r.completion_ms_min, completion_ms_max: r.completion_ms_max,
      loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu }),
  },
  {
    id: 'idle-10k', title: `${IDLE_CONNS} idle connections: server RSS per conn`, kind: 'idle', role: 'idle', serverArgs: [],
    metric: 'rss_per_conn', unit: 'B/conn', better: 'lower', targets: { ws: 0.5, uws: 1 }, scale: 1,
    extra: (r) => ({ heap_per_conn: r.heap_per_conn, external_per_conn: r.external_per_conn, open_seconds: r.open_seconds }),
  },
  {
    id: 'flood-client', title: 'a Node client receives a flood of 1 KiB (native server); uWS has no client', kind: 'flood',
    impls: ['ix', 'ix-inline', 'ws'], metric: 'msgs_per_s', unit: 'msg/s', better: 'higher', targets: { ws: 1 }, scale: 1, cpuOf: 'client',
    extra: (r) => ({ bytes_per_s: r.bytes_per_s, client_cpu: r.cpu, loadgen_cpu: r.loadgen_cpu }),
  },
  {
    id: 'latency-p99', title: 'RTT p99 at a moderate rate: 64 B at 5,000 msg/s over 10 conns', role: 'echo', serverArgs: [],
    metric: 'p99_us', unit: 'us', better: 'lower', targets: { ws: 1 }, scale: 1, also: 'p50_us',
    loadgenArgs: (port) => ['--mode', 'latency', '--url', url(port), '--conns', '10', '--rate', '5000', '--size', '64',
      '--duration', String(LATENCY_SECONDS), '--warmup', String(WARMUP)],
    extra: (r) => ({ p50_us: r.p50_us, p90_us: r.p90_us, p999_us: r.p999_us, max_us: r.max_us, loadgen_cpu: r.loadgen_cpu, server_cpu: r.server_cpu }),
  },
];
for (const sc of SCENARIOS) sc.impls = (sc.impls || EVERYWHERE).filter((i) => SERVERS.includes(i));

// Server CPU per message, measured by the load generator over its own window
// (--server-pid): the server process's threads' run time from /proc.
function withCpu(result) {
  if (typeof result.server_us_per_msg === 'number') result.us_per_msg = result.server_us_per_msg;
  return result;
}

// One server process per implementation, kept across the rounds; the load
// generator runs against them in rotating order.
async function runServed(sc) {
  const servers = {};
  const samples = Object.fromEntries(sc.impls.map((i) => [i, []]));
  try {
    await Promise.all(sc.impls.map(async (impl) => {
      servers[impl] = await startServer(impl, sc.role, sc.serverArgs);
    }));
    for (let round = 0; round < cli.rounds; round++) {
      for (const impl of orderFor(sc.impls, round)) {
        const srv = servers[impl];
        // Measured again when other processes used the machine meanwhile (clean.js).
        const result = await measureUndisturbed(
          async () => (await loadgen([...sc.loadgenArgs(srv.port), '--server-pid', String(srv.pid)], { timeoutMs: 90000 })).result,
          { onRetry: (d) => log(`  ${impl}: other processes used ${(d * 100).toFixed(0)}% of a core during the window: measuring it again`) });
        samples[impl].push(withCpu(result));
        await sleep(PAUSE_MS);
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map((srv) => srv.stop()));
  }
  return samples;
}

// A fresh server per round: memory before, open N connections, memory after.
async function runIdle(sc) {
  const samples = Object.fromEntries(sc.impls.map((i) => [i, []]));
  for (let round = 0; round < cli.rounds; round++) {
    for (const impl of orderFor(sc.impls, round)) {
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
            sleep(cli.quick ? 500 : 1000).then(() => srv.request('mem')).then((m) => {
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
async function runFlood(sc) {
  const samples = Object.fromEntries(sc.impls.map((i) => [i, []]));
  for (let round = 0; round < cli.rounds; round++) {
    for (const impl of orderFor(sc.impls, round)) {
      const once = async () => {
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
        // The client's own CPU over its measured window, per message received.
        const us = r.msgs > 0 ? (r.cpu * r.seconds * 1e6) / r.msgs : undefined;
        // The generator's CPU is its average over its whole run: close enough
        // to tell a busy machine (clean.js) from a quiet one.
        const other = typeof r.machine_busy === 'number' && typeof result.loadgen_cpu === 'number'
          ? r.machine_busy - r.cpu - result.loadgen_cpu : undefined;
        return { ...r, us_per_msg: us, loadgen_cpu: result.loadgen_cpu, server_end: result.end, other_cpu: other };
      };
      samples[impl].push(await measureUndisturbed(once, {
        onRetry: (d) => log(`  ${impl}: other processes used ${(d * 100).toFixed(0)}% of a core during the window: measuring it again`),
      }));
    }
  }
  return samples;
}

// The load generator must not be the limit: with the same total connections
// split over two generator processes, the server's rate should not rise.
async function loadgenCheck() {
  const out = {};
  for (const impl of EVERYWHERE) {
    const srv = await startServer(impl, 'echo', []);
    try {
      const args = (conns) => ['--mode', 'echo', '--url', url(srv.port), '--conns', String(conns), '--size', '1024',
        '--inflight', '8', '--duration', String(DURATION), '--warmup', String(WARMUP)];
      const pid = ['--server-pid', String(srv.pid)];
      const one = await measureUndisturbed(async () => (await loadgen([...args(100), ...pid])).result);
      // Two generators: each one's other_cpu counts the other generator, so
      // the window's disturbance is what neither generator nor the server used.
      const two = await measureUndisturbed(async () => {
        const rs = (await Promise.all([loadgen([...args(50), ...pid]), loadgen([...args(50), ...pid])])).map((x) => x.result);
        const lg = rs.reduce((s, x) => s + x.loadgen_cpu, 0);
        const other = rs.every((x) => typeof x.other_cpu === 'number') ? Math.min(...rs.map((x) => x.other_cpu + x.loadgen_cpu)) - lg : undefined;
        return { msgs_per_s: rs.reduce((s, x) => s + x.msgs_per_s, 0), loadgen_cpu: lg, server_cpu: rs[0].server_cpu,
          other_cpu: other, machine_busy: rs[0].machine_busy, machine_steal: rs[0].machine_steal };
      });
      out[impl] = {
        one_process_msgs_per_s: one.msgs_per_s,
        one_process_loadgen_cpu: one.loadgen_cpu,
        one_process_server_cpu: one.server_cpu,
        one_process_other_cpu: one.other_cpu,
        one_process_disturbed: Boolean(one.disturbed),
        one_process_machine_busy: one.machine_busy,
        one_process_limit: windowLimit(one, os.cpus().length),
        two_processes_msgs_per_s: two.msgs_per_s,
        two_processes_loadgen_cpu: two.loadgen_cpu,
        two_processes_server_cpu: two.server_cpu,
        two_processes_other_cpu: two.other_cpu,
        two_processes_disturbed: Boolean(two.disturbed),
        two_processes_machine_busy: two.machine_busy,
        gain: two.msgs_per_s / one.msgs_per_s,
      };
    } finally {
      await srv.stop();
    }
  }
  return out;
}

// ---- the machine ------------------------------------------------------------------
function machine() {
  const version = (m) => {
    try {
      return require(require.resolve(`${m}/package.json`, { paths: [ROOT] })).version;
    } catch (_) {
      return null;
    }
  };
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' });
  const model = lscpu.status === 0 ? (/^Model name:\s*(.*)$/m.exec(lscpu.stdout) || [])[1] : null;
  return {
    cpu: model || os.cpus()[0].model, cores: os.cpus().length,
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1), kernel: os.release(),
    os: `${os.type()} ${os.release()} ${os.arch()}`, node: process.version, ws: version('ws'),
    bufferutil: version('bufferutil'), utf8Validate: version('utf-8-validate'),
    uws: cli.uws ? `${preflight.UWS_PACKAGE} ${version(preflight.UWS_PACKAGE)}` : null, commit: git,
    rlimitNofile: limits, idleConns: IDLE_CONNS,
  };
}

async function main() {
  const t0 = Date.now();
  LOADGEN_ADDON = preflight.buildLoadgen({ log });
  if (cli.buildOnly) {
    console.log(`load generator built: ${path.relative(ROOT, LOADGEN_ADDON)} (run it with node bench/loadgen/loadgen.js)`);
    return;
  }
  IX = snapshotIx();
  process.on('exit', () => fs.rmSync(IX.dir, { recursive: true, force: true }));
  const info = machine();
  info.ixBinary = { file: path.relative(ROOT, IX.binary), mtime: IX.binaryMtime, size: IX.binarySize };
  log(`machine: ${info.cpu}, ${info.nproc} cores, ${info.memGiB} GiB, ${info.os}, node ${info.node}, ws ${info.ws}${info.uws ? `, ${info.uws}` : ''}`);
  log(`RLIMIT_NOFILE soft ${limits.soft} hard ${limits.hard}; idle scenario uses ${IDLE_CONNS} connections; ${cli.rounds} round(s)${cli.quick ? ', quick' : ''}`);
  const load0 = os.loadavg();
  const rows = [];
  const raw = {};
  for (const sc of SCENARIOS) {
    if (cli.only && !cli.only.includes(sc.id)) continue;
    const s0 = Date.now();
    log(`${sc.id}: ${sc.title} ...`);
    const samples = sc.kind === 'idle' ? await runIdle(sc) : sc.kind === 'flood' ? await runFlood(sc) : await runServed(sc);
    raw[sc.id] = samples;
    // Machine-wide readings (/proc/stat) cover every CPU: os.cpus(), not the
    // process's affinity.
    const row = summarize(sc, samples, info.cores);
    rows.push(row);
    const parts = sc.impls.map((i) => `${i} ${cell(row[i].stats)}`);
    log(`  ${parts.join('  ')}  (${((Date.now() - s0) / 1000).toFixed(1)} s)`);
    for (const e of row.errors) log(`  run problem: ${e}`);
  }
  const scaleIds = scale.SCALE_IDS.filter((id) => !cli.only || cli.only.includes(id));
  const scaleRows = scaleIds.length
    ? await scale.runScale({ ids: scaleIds, rounds: cli.rounds, quick: cli.quick, loadgen, ixEntry: IX.entry, log, duration: DURATION, warmup: WARMUP })
    : [];
  let check = null;
  if (cli.only ? cli.only.includes('loadgen-check') : !cli.quick) {
    log('loadgen-check: echo 1 KiB, 1 generator x 100 conns vs 2 x 50 ...');
    check = await loadgenCheck();
  }
  const seconds = (Date.now() - t0) / 1000;
  const summary = targetSummary(rows);
  const partial = Boolean(cli.quick || cli.only);
  const report = {
    date: new Date().toISOString(), seconds, rounds: cli.rounds, quick: cli.quick, only: cli.only, partial, servers: SERVERS,
    machine: info, loadAverage: { before: load0, after: os.loadavg() },
    targets: { met: summary.met, total: summary.total, checks: rows.flatMap((r) => r.checks) },
    scenarios: rows, loadgenCheck: check, raw, scale: scaleRows,
  };
  const base = partial ? 'partial' : 'latest';
  fs.mkdirSync(RESULTS, { recursive: true });
  fs.writeFileSync(path.join(RESULTS, `${base}.json`), JSON.stringify(report, null, 2) + '\n');
  writeChart(path.join(RESULTS, `${base}.svg`), report);

  const versions = `ws ${info.ws} (bufferutil ${info.bufferutil}, utf-8-validate ${info.utf8Validate})` + (info.uws ? `, uWebSockets.js from ${info.uws}` : '');
  console.log(`\nix-websocket vs ${versions}; ${cli.rounds} round(s), rotating order${cli.quick ? ', --quick (short windows: a first look, not a result)' : ''}`);
  console.log(`${info.cpu}, ${info.nproc} cores, Linux ${info.kernel}, node ${info.node}; load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start\n`);
  console.log(mainTable(rows));
  if (rows.some((r) => r.ix && r.ix.cpu)) {
    console.log('\nCPU per message of the process under test (echo: one in + one out; broadcast: one delivery), same window:\n');
    console.log(cpuTable(rows));
  }
  console.log('\n' + summary.text);
  if (scaleRows.length) console.log(`\nscale-out, ix-websocket only (no target yet): median [min-max] over ${cli.rounds} round(s)\n\n${scale.scaleTable(scaleRows)}`);
  if (check) {
    console.log('\nload generator check (echo 1 KiB): 1 process x 100 conns vs 2 processes x 50 conns');
    for (const impl of EVERYWHERE) {
      const c = check[impl];
      const pct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(0)}%` : '?');
      console.log(`  ${NAMES[impl]}: ${fmt(c.one_process_msgs_per_s)} msg/s (server CPU ${pct(c.one_process_server_cpu)}, loadgen ${pct(c.one_process_loadgen_cpu)}, other processes ${pct(c.one_process_other_cpu)}${c.one_process_disturbed ? ', DISTURBED' : ''}${c.one_process_limit ? `, ${c.one_process_limit}-bound` : ''})` +
        ` vs ${fmt(c.two_processes_msgs_per_s)} msg/s with two (server ${pct(c.two_processes_server_cpu)}, loadgens ${pct(c.two_processes_loadgen_cpu)}, other ${pct(c.two_processes_other_cpu)}${c.two_processes_disturbed ? ', DISTURBED' : ''}): x${c.gain.toFixed(2)}`);
    }
  }
  const bound = limitNotes(rows);
  if (bound.length) console.log(`\nwindows where something besides the server set the rate:\n${bound.join('\n')}`);
  const lg = rows.flatMap((r) => r.impls.flatMap((i) => r[i].runs.map((x) => x.loadgen_cpu))).filter((x) => typeof x === 'number');
  if (lg.length) console.log(`load generator CPU over the measured windows: max ${(Math.max(...lg) * 100).toFixed(0)}% of one core`);
  // Windows measured again because other processes used the machine (clean.js).
  const allRuns = rows.flatMap((r) => r.impls.flatMap((i) => r[i].runs.map((x) => ({ id: r.id, impl: i, ...x }))));
  const retried = allRuns.filter((x) => x.attempts > 1);
  const disturbed = allRuns.filter((x) => x.disturbed);
  const known = allRuns.filter((x) => typeof x.other_cpu === 'number');
  if (known.length) {
    console.log(`windows disturbed by other processes or steal (> ${(DISTURB_LIMIT * 100).toFixed(0)}% of a core): ${retried.length} of ${allRuns.length} measured again` +
      (disturbed.length ? `; still disturbed after ${disturbed[0].attempts} tries, kept and marked: ${disturbed.map((x) => `${x.id} ${NAMES[x.impl]} (${(Math.max(x.other_cpu || 0, x.machine_steal || 0) * 100).toFixed(0)}%)`).join(', ')}` : ''));
  }
  const problemsSeen = rows.flatMap((r) => r.errors.map((e) => `${r.id}: ${e}`));
  if (problemsSeen.length) console.log(`\nruns dropped for errors:\n  ${problemsSeen.join('\n  ')}`);
  console.log(`\nwrote bench/results/${base}.json and bench/results/${base}.svg in ${seconds.toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
