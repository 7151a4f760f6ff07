// Random JavaScript misuse of the commands (test/fixtures/api-fuzz.js): values
// of every kind, getters and Proxies that throw or clear, stop and restart the
// object being read, buffers detached or shrunk mid-call, commands from inside
// event methods, beside real servers, clients and traffic on loopback. Each
// seed runs in a child process of its own, which must report no contract
// violation (every throw a TypeError/RangeError with a message or the
// script's own exception, every failed status with a message), must not
// crash, and must exit by itself once it has cleared everything.
//
// IXWS_API_FUZZ_SEEDS=a-b runs other seeds (a longer campaign); the default
// set is fixed, so a failure here reproduces with the same seed:
//   IXWS_PKG=$PWD/build-api-fuzz/lib/index.js node test/fixtures/api-fuzz.js SEED 3000
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { beforeAll, describe, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage } from './support/compile';

const outDir = path.join(root, 'build-api-fuzz');
const pkg = path.join(outDir, 'lib', 'index.js');
const script = path.join(__dirname, 'fixtures', 'api-fuzz.js');
const ITERATIONS = 3000;
// A child that has not exited this long after it started is hung (a seed
// takes 2-5 s here; ASan builds several times that).
const DEADLINE_MS = 90_000;

function seeds(): number[] {
  const m = /^(\d+)-(\d+)$/.exec(process.env.IXWS_API_FUZZ_SEEDS ?? '');
  if (!m) return [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const out: number[] = [];
  for (let s = Number(m[1]); s <= Number(m[2]); s++) out.push(s);
  return out;
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  hung: boolean;
  violations: unknown[];
  done?: { calls: number; threw: number; failedStatus: number; events: number; violations: number };
  stderr: string;
}

function runSeed(seed: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, String(seed), String(ITERATIONS)], {
      env: { ...process.env, IXWS_PKG: pkg },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let hung = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, DEADLINE_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l.startsWith('{'));
      const parsed = lines.map((l) => JSON.parse(l));
      resolve({
        code,
        signal,
        hung,
        violations: parsed.filter((p) => p.violation),
        done: parsed.find((p) => p.done),
        stderr: err.slice(-2000),
      });
    });
  });
}

beforeAll(() => {
  compilePackage(outDir);
  if (!fs.existsSync(pkg)) throw new Error(`no ${pkg} after tsc`);
}, 120_000);

describe('random misuse of the commands (api-fuzz)', () => {
  const list = seeds();
  // Two children at a time: the machine has two cores and the seeds start servers.
  for (let i = 0; i < list.length; i += 2) {
    const pair = list.slice(i, i + 2);
    test(`seeds ${pair.join(', ')}: no violation, no crash, exits by itself`, async () => {
      const results = await Promise.all(pair.map(runSeed));
      results.forEach((r, k) => {
        const what = `seed ${pair[k]}: ${r.stderr}`;
        expect(r.hung, `${what} (still running after ${DEADLINE_MS} ms)`).toBe(false);
        expect(r.violations, what).toEqual([]);
        expect([r.code, r.signal], what).toEqual([0, null]);
        // The seed did what it is for: many calls, many refused, real traffic.
        expect(r.done?.calls, what).toBeGreaterThanOrEqual(ITERATIONS);
        expect(r.done?.threw, what).toBeGreaterThan(ITERATIONS / 10);
        expect(r.done?.failedStatus, what).toBeGreaterThan(ITERATIONS / 20);
        expect(r.done?.events, what).toBeGreaterThan(0);
      });
    }, DEADLINE_MS + 10_000);
  }
});
