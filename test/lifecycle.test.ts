// Process and environment lifetime: keep-alive like Node's sockets, teardown
// of remaining objects at exit, and per-environment refs in worker threads.
import { spawn } from 'child_process';
import { Worker } from 'worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { runCleanup, startServer } from './support';

afterEach(runCleanup);

const preamble = `const b = (process.env.IXWS_BINARY ? require(require('path').resolve(process.env.IXWS_BINARY)) : require('node-gyp-build')(${JSON.stringify(root)}));`;

/** Runs a script in a fresh node; resolves with its exit code and duration, or 'alive' at the deadline. */
interface NodeRun {
  code: number | null;
  ms: number;
  alive: boolean;
  out: string;
  /** ms from the child printing "exiting" to the child process ending */
  teardownMs: number;
}

function runNode(script: string, deadlineMs: number): Promise<NodeRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['-e', preamble + script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let exitingAt = 0;
    child.stdout.on('data', (d) => {
      out += d;
      if (!exitingAt && out.includes('exiting')) exitingAt = Date.now();
    });
    child.stderr.on('data', (d) => (out += d));
    let alive = false;
    const timer = setTimeout(() => {
      alive = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const now = Date.now();
      resolve({ code, ms: now - t0, alive, out, teardownMs: exitingAt ? now - exitingAt : NaN });
    });
  });
}

describe('keep-alive', () => {
  test('a started server keeps the process alive', async () => {
    const r = await runNode(`const s = b.websocketServer({ port: 0 }); console.log(b.websocketServerStart(s).success);`, 1500);
    expect(r.out).toContain('true');
    expect(r.alive).toBe(true);
  });

  test("an unref'd, a stopped or a cleared server does not", async () => {
    for (const tail of [
      'b.setKeepAlive(s.ref, false);',
      'b.websocketServerStop(s);',
      'b.websocketServerClear(s);',
    ]) {
      const r = await runNode(`const s = b.websocketServer({ port: 0 }); b.websocketServerStart(s); ${tail}`, 5000);
      expect(r.alive, tail).toBe(false);
      expect(r.code, r.out).toBe(0);
    }
  });

  test('at exit, remaining servers and connected clients are cleared well under a second', async () => {
    const script = `
      const s = b.websocketServer({ port: 0, method() {} });
      const st = b.websocketServerStart(s);
      const c = b.websocketClient({ url: 'ws://127.0.0.1:' + st.port + '/', enableAutomaticReconnection: false, method() {} });
      b.websocketClientStart(c).then((r) => {
        if (!r.success) { console.log('connect failed'); process.exitCode = 3; }
        b.setKeepAlive(s.ref, false);
        b.setKeepAlive(c.ref, false);
        // the loop is now empty: what follows is the environment's teardown
        process.on('exit', () => process.stdout.write('exiting\\n'));
      });`;
    const r = await runNode(script, 8000);
    expect(r.alive).toBe(false);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('exiting');
    expect(r.teardownMs).toBeLessThan(1000);
  });
});

describe('worker threads', () => {
  test('the addon loads in a worker with its own refs and works there', async () => {
    const main = startServer();
    expect(main.server.ref).toBe(-1);
    const code = `
      const { parentPort } = require('worker_threads');
      const b = (process.env.IXWS_BINARY ? require(require('path').resolve(process.env.IXWS_BINARY)) : require('node-gyp-build')(${JSON.stringify(root)}));
      const s = b.websocketServer({ port: 0, method(server, client, type, ctx) {
        if (type === 'message') parentPort.postMessage({ ref: s.ref, data: ctx.data });
      } });
      const st = b.websocketServerStart(s);
      const c = b.websocketClient({ url: 'ws://127.0.0.1:' + st.port + '/', enableAutomaticReconnection: false, method() {} });
      b.websocketClientStart(c).then((r) => { b.websocketClientSend(c, 'in worker ' + c.ref); });
    `;
    const w = new Worker(code, { eval: true });
    const msg = await new Promise<{ ref: number; data: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no message from worker')), 8000);
      w.once('message', (m) => {
        clearTimeout(t);
        resolve(m);
      });
      w.once('error', reject);
    });
    expect(msg).toEqual({ ref: -1, data: 'in worker 1' });
    // ending the worker clears its objects promptly
    const t0 = Date.now();
    await w.terminate();
    expect(Date.now() - t0).toBeLessThan(1000);
    // the main environment's server is untouched
    expect(main.server.ref).toBe(-1);
  });
});

