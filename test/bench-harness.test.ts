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
