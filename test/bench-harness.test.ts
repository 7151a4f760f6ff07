// The benchmark harness's own logic, without measuring anything: what
// `npm run bench` says when something it needs is missing (issue 19: one line
// per missing piece, what and how to get it, before any work), its command
// line, and how bench/report.js turns runs into ratios and target verdicts.
// The measurements themselves are never asserted here (speed is bench/'s job).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { createRequire } from 'module';
import * as os from 'os';
import * as path from 'path';
import { afterAll, describe, expect, test } from 'vitest';

const ROOT = path.resolve(__dirname, '..');
const RUN = path.join(ROOT, 'bench', 'run.js');
const requireCjs = createRequire(__filename);
const report = requireCjs(path.join(ROOT, 'bench', 'report.js'));

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

// The runner with a PATH that holds node and nothing else: no cmake, no
// compiler, no ninja or make.
function runWithBarePath(args: string[]) {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bench-path-'));
  tmpDirs.push(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: bin };
  delete env.CXX;
  return spawnSync(process.execPath, [RUN, ...args], { env, encoding: 'utf8', timeout: 30_000 });
}

describe('bench/run.js before any work', () => {
  test('missing tools: exit 2, one line each saying what is missing and how to get it, nothing run', () => {
    const r = runWithBarePath(['--quick']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    // Exactly the three missing tools, each on a line of its own.
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(/^bench: .+: .*(install|apt-get)/);
    expect(lines[0]).toMatch(/^bench: cmake not found on PATH: install CMake/);
    expect(lines[1]).toMatch(/^bench: no C\+\+ compiler found .*: install one/);
    expect(lines[2]).toMatch(/^bench: no build tool for CMake \(ninja or make\)/);
    // Nothing was built or measured.
    expect(r.stderr).not.toMatch(/built the load generator|machine:/);
  });

  test('--build-only with the same missing tools stops the same way', () => {
    const r = runWithBarePath(['--build-only']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bench: cmake not found on PATH/m);
    expect(r.stdout).not.toMatch(/load generator built/);
  });

  test('an IXWS_NODE_INCLUDE without Node\'s headers is reported, not replaced by another folder', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bench-inc-'));
    tmpDirs.push(empty);
    const r = spawnSync(process.execPath, [RUN, '--build-only'], {
      env: { ...process.env, IXWS_NODE_INCLUDE: empty }, encoding: 'utf8', timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      `bench: IXWS_NODE_INCLUDE=${empty} lacks node_api.h, uv.h, zlib.h, openssl/sha.h, openssl/evp.h: ` +
        "point it at the include/node folder of a Node installation, or unset it to use the running node's own",
    ]);
  });

  test('an unknown scenario in --only is named, with the list, exit 64', () => {
    const r = spawnSync(process.execPath, [RUN, '--only', 'echo-32,echo-2k'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/^bench: unknown scenario echo-2k \(scenarios: echo-32, /);
  });

  test('--rounds needs a whole number', () => {
    const r = spawnSync(process.execPath, [RUN, '--rounds', '0'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/^bench: --rounds needs a whole number >= 1/);
  });
});

// A scenario as bench/run.js declares one, reduced to what summarize() reads.
function scenario(over: Record<string, unknown> = {}) {
  return {
    id: 'echo-x', title: 'echo', metric: 'msgs_per_s', unit: 'msg/s', better: 'higher', scale: 1,
    targets: { ws: 2, uws: 1 }, cpuTargets: { uws: 1.25 },
    extra: () => ({}),
    ...over,
  };
}
const run = (msgs: number, us: number, more: Record<string, unknown> = {}) => ({ msgs_per_s: msgs, us_per_msg: us, ...more });

describe('bench/report.js ratios and verdicts', () => {
  test('ratio of medians decides; the round-by-round ratios give the spread', () => {
    const row = report.summarize(scenario(), {
      ix: [run(200, 4), run(100, 5), run(300, 3)],
      ws: [run(100, 20), run(100, 20), run(100, 20)],
      uws: [run(250, 2), run(100, 2), run(150, 4)],
    });
    // Medians: ix 200, ws 100, uws 150.
    expect(row.ratios.ws).toBeCloseTo(2);
    expect(row.ratios.uws).toBeCloseTo(200 / 150);
    // CPU per message, medians: ix 4, uws 2.
    expect(row.cpuRatios.uws).toBeCloseTo(2);
    const ws = row.checks.find((c: { vs: string; what: string }) => c.vs === 'ws' && c.what === 'msgs_per_s');
    expect(ws.pass).toBe(true); // 2.0 >= 2
    expect(ws.rounds.map((x: number) => +x.toFixed(3))).toEqual([2, 1, 3]);
    expect(ws.roundsMet).toBe(2);
    const uws = row.checks.find((c: { vs: string; what: string }) => c.vs === 'uws' && c.what === 'msgs_per_s');
    expect(uws.pass).toBe(true);
    expect(uws.rounds.map((x: number) => +x.toFixed(3))).toEqual([0.8, 1, 2]);
    expect(uws.roundsMet).toBe(2);
    const cpu = row.checks.find((c: { what: string }) => c.what === 'server_us_per_msg');
    expect(cpu.op).toBe('<=');
    expect(cpu.pass).toBe(false); // 2.0 > 1.25
    expect(cpu.rounds.map((x: number) => +x.toFixed(3))).toEqual([2, 2.5, 0.75]);
    expect(cpu.roundsMet).toBe(1);
    const text = report.targetSummary([row]).text;
    expect(text).toMatch(/^targets met: 2 of 3$/m);
    expect(text).toMatch(/MISSED {2}echo-x server CPU\/msg ix\/uWS 2\.00x \(target <= 1\.25x; by round 0\.75x-2\.50x, met in 1 of 3\)/);
  });

  test('lower is better: memory and latency targets compare with <=', () => {
    const row = report.summarize(scenario({ metric: 'rss_per_conn', unit: 'B/conn', better: 'lower', targets: { ws: 0.5, uws: 1 }, cpuTargets: undefined }), {
      ix: [{ rss_per_conn: 3000 }],
      ws: [{ rss_per_conn: 8000 }],
      uws: [{ rss_per_conn: 700 }],
    });
    const byVs = Object.fromEntries(row.checks.map((c: { vs: string }) => [c.vs, c]));
    expect(byVs.ws.op).toBe('<=');
    expect(byVs.ws.pass).toBe(true); // 0.375 <= 0.5
    expect(byVs.uws.pass).toBe(false); // 4.3 > 1
  });

  test('a run with lost messages or failed connections is dropped and reported, never averaged in', () => {
    const row = report.summarize(scenario(), {
      ix: [run(1000, 1, { lost: 3 }), run(200, 4)],
      ws: [run(100, 20), run(100, 20)],
      uws: [run(200, 4), run(200, 4, { failed: 1 })],
    });
    expect(row.ix.stats.n).toBe(1);
    expect(row.ix.stats.median).toBe(200);
    expect(row.uws.stats.n).toBe(1);
    expect(row.errors).toEqual(['ix-websocket: lost=3', 'uWS: failed=1']);
    // Round 0 has a failed ix run, round 1 a failed uWS run: no pair left.
    const uws = row.checks.find((c: { vs: string; what: string }) => c.vs === 'uws' && c.what === 'msgs_per_s');
    expect(uws.rounds).toEqual([]);
    const ws = row.checks.find((c: { vs: string; what: string }) => c.vs === 'ws' && c.what === 'msgs_per_s');
    expect(ws.rounds).toEqual([2]);
  });

  test('without a valid run on one side the verdict is unknown, not met', () => {
    const row = report.summarize(scenario(), {
      ix: [run(200, 4)],
      ws: [run(100, 20, { content_errors: 1 })],
      uws: [run(100, 2)],
    });
    const ws = row.checks.find((c: { vs: string; what: string }) => c.vs === 'ws' && c.what === 'msgs_per_s');
    expect(ws.ratio).toBeNull();
    expect(ws.pass).toBeNull();
    expect(report.targetSummary([row]).text).toMatch(/\(1 without a valid measurement\)/);
  });
});

// A window measured while other processes use the machine (a build beside the
// bench, steal on a VM) gives the server and its load generator less than the
// machine; a fast server and its generator then share what is left and its
// lead shrinks (the "uWS is 1.81x faster with two generators" of the
// 2026-12-03 run: in that run's echo windows the server and the generator
// used exactly one core between them). bench/clean.js measures such a window
// again; the load generator says how much the rest of the machine took.
describe('bench/clean.js: windows disturbed by other processes are measured again', () => {
  const clean = requireCjs(path.join(ROOT, 'bench', 'clean.js'));
  const noSleep = async () => {};

  test('disturbance is the larger of other processes\' CPU and steal; unknown when neither is given', () => {
    expect(clean.disturbance({ other_cpu: 0.05, machine_steal: 0.3 })).toBe(0.3);
    expect(clean.disturbance({ other_cpu: 0.9, machine_steal: 0 })).toBe(0.9);
    expect(clean.disturbance({ msgs_per_s: 5 })).toBeNull();
  });

  test('a clean first window is kept as it is', async () => {
    let calls = 0;
    const r = await clean.measureUndisturbed(async () => ({ v: ++calls, other_cpu: 0.02, machine_steal: 0 }), { sleep: noSleep });
    expect(calls).toBe(1);
    expect(r).toMatchObject({ v: 1, attempts: 1, disturbances: [0.02] });
    expect(r.disturbed).toBeUndefined();
  });

  test('a disturbed window is measured again, after a pause, and the clean one is kept', async () => {
    const seq = [{ v: 1, other_cpu: 0.95 }, { v: 2, other_cpu: 0.4, machine_steal: 0.01 }, { v: 3, other_cpu: 0.03 }];
    const pauses: number[] = [];
    const retries: number[] = [];
    const r = await clean.measureUndisturbed(async () => seq.shift(), {
      tries: 3, limit: 0.15, pauseMs: 10, sleep: async (ms: number) => { pauses.push(ms); }, onRetry: (d: number) => retries.push(d),
    });
    expect(r).toMatchObject({ v: 3, attempts: 3, disturbances: [0.95, 0.4, 0.03] });
    expect(r.disturbed).toBeUndefined();
    expect(retries).toEqual([0.95, 0.4]);
    expect(pauses).toEqual([10, 20]);
  });

  test('when every try is disturbed the least disturbed is kept and marked', async () => {
    const seq = [{ v: 1, other_cpu: 0.9 }, { v: 2, other_cpu: 0.3 }, { v: 3, machine_steal: 0.5 }];
    const r = await clean.measureUndisturbed(async () => seq.shift(), { tries: 3, sleep: noSleep });
    expect(r).toMatchObject({ v: 2, attempts: 3, disturbed: true, disturbances: [0.9, 0.3, 0.5] });
  });

  test('a result that says nothing about the machine is taken at once', async () => {
    let calls = 0;
    const r = await clean.measureUndisturbed(async () => ({ v: ++calls }), { sleep: noSleep });
    expect(calls).toBe(1);
    expect(r.attempts).toBe(1);
  });

  test('summarize keeps each run\'s machine readings in the results', () => {
    const row = report.summarize(scenario(), {
      ix: [run(200, 4, { other_cpu: 0.01, machine_steal: 0, machine_busy: 1.6, attempts: 2, disturbances: [0.8, 0.01] })],
      ws: [run(100, 20, { other_cpu: 0.5, attempts: 3, disturbed: true })],
    });
    expect(row.ix.runs[0]).toMatchObject({ other_cpu: 0.01, machine_steal: 0, machine_busy: 1.6, attempts: 2, disturbances: [0.8, 0.01] });
    expect(row.ws.runs[0]).toMatchObject({ other_cpu: 0.5, attempts: 3, disturbed: true });
  });
});

// The load generator itself: a process spinning beside the server under test
// shows up in the window's other_cpu (it is neither the server nor the
// generator). Real processes on loopback: the generator is built first.
describe('the load generator reports what other processes used', () => {
  test('a busy loop beside a lightly loaded ws server is >= half a core of other_cpu', async () => {
    const build = spawnSync(process.execPath, [RUN, '--build-only'], { encoding: 'utf8', timeout: 180_000 });
    expect(build.status, build.stderr).toBe(0);
    const { spawn } = await import('child_process');
    const server = spawn(process.execPath, [path.join(ROOT, 'bench', 'servers', 'ws-server.js'), 'echo'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const burner = spawn(process.execPath, ['-e', 'const end = Date.now() + 15000; while (Date.now() < end);'], { stdio: 'ignore' });
    try {
      const port: number = await new Promise((resolve, reject) => {
        server.stdout!.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]).port));
        server.once('exit', (code) => reject(new Error(`ws-server exited ${code}`)));
      });
      const lg = spawnSync(process.execPath, [path.join(ROOT, 'bench', 'loadgen', 'loadgen.js'), '--mode', 'echo',
        '--url', `ws://127.0.0.1:${port}/`, '--conns', '4', '--inflight', '1', '--size', '64', '--duration', '1', '--warmup', '0.3',
        '--server-pid', String(server.pid)], { encoding: 'utf8', timeout: 30_000 });
      expect(lg.status, lg.stderr).toBe(0);
      const r = JSON.parse(lg.stdout.trim().split('\n').pop()!);
      expect(r.msgs).toBeGreaterThan(0);
      expect(typeof r.machine_busy).toBe('number');
      expect(typeof r.machine_steal).toBe('number');
      // The spinning process takes a core whenever it can; others' work on the
      // machine can only add to it.
      expect(r.other_cpu).toBeGreaterThanOrEqual(0.5);
    } finally {
      burner.kill('SIGKILL');
      server.kill('SIGKILL');
    }
  }, 240_000);
});

// Windows where the server did not set the rate: a saturated generator, or a
// machine with no idle CPU left (the 2026-12-03 run's uWS echo windows: the
// server and the generator shared one core while other processes held the
// other, so uWS's rate came out at 1 / (server + generator us per message)).
describe('bench/report.js says which windows the server did not limit', () => {
  test('generator-bound at >= 0.9 of a core; machine-bound at < 0.25 of a core idle; otherwise nothing', () => {
    expect(report.windowLimit({ loadgen_cpu: 0.95, machine_busy: 1.2 }, 2)).toBe('generator');
    expect(report.windowLimit({ loadgen_cpu: 0.4, machine_busy: 1.9, machine_steal: 0 }, 2)).toBe('machine');
    // steal counts as time the machine did not give.
    expect(report.windowLimit({ loadgen_cpu: 0.4, machine_busy: 1.6, machine_steal: 0.2 }, 2)).toBe('machine');
    expect(report.windowLimit({ loadgen_cpu: 0.4, machine_busy: 1.6, machine_steal: 0 }, 2)).toBeNull();
    expect(report.windowLimit({ loadgen_cpu: 0.4, machine_busy: 1.9 }, 4)).toBeNull();
    // No machine reading, or no generator reading: nothing is claimed.
    expect(report.windowLimit({ loadgen_cpu: 0.4 }, 2)).toBeNull();
    expect(report.windowLimit({ loadgen_cpu: 0.4, machine_busy: 1.99 }, 0)).toBeNull();
    expect(report.windowLimit({ msgs_per_s: 5 }, 2)).toBeNull();
  });

  test('summarize counts them per server and the report names them', () => {
    const row = report.summarize(scenario(), {
      ix: [run(100, 8, { loadgen_cpu: 0.2, machine_busy: 1.2 }), run(100, 8, { loadgen_cpu: 0.2, machine_busy: 1.3 })],
      uws: [run(180, 3, { loadgen_cpu: 0.4, machine_busy: 1.95 }), run(300, 3, { loadgen_cpu: 0.95, machine_busy: 1.7 })],
    }, 2);
    expect(row.ix.limited).toEqual({ generator: 0, machine: 0, of: 2 });
    expect(row.uws.limited).toEqual({ generator: 1, machine: 1, of: 2 });
    expect(row.uws.runs.map((x: { limit: string | null }) => x.limit)).toEqual(['machine', 'generator']);
    const notes = report.limitNotes([row]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^ {2}echo-x uWS: 1 load-generator-bound .*1 machine-bound .* of 2 windows: its rate is a floor/);
    // Without the machine's size nothing is called machine-bound.
    expect(report.summarize(scenario(), { ix: [run(100, 8)], uws: [run(180, 3, { loadgen_cpu: 0.4, machine_busy: 1.95 })] }).uws.limited.machine).toBe(0);
  });
});
