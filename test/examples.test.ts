// The README's "Scaling" examples (examples/*.js) run as a user runs them:
// `require('ix-websocket')` and `require('ix-websocket/redis')` resolve to
// the package compiled into a staged node_modules (package.json with its
// "exports", dist/ from tsc, the addon build linked), each example ends by
// itself with exit 0 and prints what it shows.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage } from './support/compile';
import { describeWithPeers, peers } from './support/peers';
import { closedPort } from './support/ports';
import { RedisServer } from './support/redis';

const stage = path.join(root, 'build-scale-examples');
const pkgDir = path.join(stage, 'node_modules', 'ix-websocket');

function run(example: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(stage, 'examples', example)], {
      cwd: stage,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

beforeAll(() => {
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(pkgDir, { recursive: true });
  compilePackage(path.join(pkgDir, 'dist'));
  fs.copyFileSync(path.join(root, 'package.json'), path.join(pkgDir, 'package.json'));
  fs.symlinkSync(path.join(root, 'build'), path.join(pkgDir, 'build'));
  fs.cpSync(path.join(root, 'examples'), path.join(stage, 'examples'), { recursive: true });
}, 120_000);

describe('examples', () => {
  test('one process: one publish reaches 100 subscribers', async () => {
    const r = await run('scaling-one-process.js', { PORT: String(await closedPort()) });
    expect(r.out).toMatch(/published once, sent to 100 subscribers, 100 received/);
    expect(r.code, r.out).toBe(0);
  }, 40_000);

  test('reusePort: two cluster workers on one port both serve connections', async () => {
    const r = await run('scaling-reuse-port.js', { PORT: String(await closedPort()) });
    expect(r.code, r.out).toBe(0);
    const m = /connections per worker: (\{.*\})/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    const per = JSON.parse(m![1]) as Record<string, number>;
    expect(Object.values(per).reduce((a, b) => a + b, 0)).toBe(20);
    expect(Object.keys(per).sort()).toEqual(['worker 1', 'worker 2']); // both (odds of not: 2^-19)
  }, 40_000);
});

describeWithPeers([peers.redis()], 'examples with Redis', (found) => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start(found.redis!.exe);
  });
  afterAll(() => redis?.stop());

  test('Redis: a message said on one server is heard by the clients of both', async () => {
    const r = await run('scaling-redis.js', { PORT: String(await closedPort()), REDIS_URL: redis.url });
    expect(r.code, r.out).toBe(0);
    const heard = r.out.split('\n').filter((l) => l.includes('heard "hello from a client of the first server"'));
    expect(heard).toHaveLength(4);
    expect(heard.filter((l) => /server on (\d+)/.exec(l)![1] !== /server on (\d+)/.exec(heard[0])![1])).toHaveLength(2);
  }, 40_000);
});
