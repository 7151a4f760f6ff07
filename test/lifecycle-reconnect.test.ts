// Automatic reconnection seen from JavaScript: a server that goes away (stopped,
// or its process killed) and comes back on the same port; backoff reported in
// the error events; reconnection off; stop cancels retries.
import { spawn, type ChildProcess } from 'child_process';
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServerStart,
  websocketServerStop,
  type ServerArg,
} from '../lib/index';
import { Collector, defer, delay, newClient, runCleanup, startServer, until } from './support';
import { closedPort } from './support/ports';

afterEach(runCleanup);

/** Stops the server and returns its object, for a restart; a failed stop fails the test. */
function stopServer(server: ServerArg) {
  const r = websocketServerStop(server);
  if (!('ref' in r)) throw new Error(`stop failed: ${r.message}`);
  return r;
}

// A stop returns without waiting for any close handshake (the close wait is
// 2 s): an eighth of that leaves room for a preempted call on a loaded machine
// and under the sanitizer build.
const STOP_RETURNS_MS = 250;

describe('reconnectionJitter', () => {
  // Against a port where nothing listens: every attempt fails at once, and
  // its error event announces the wait before the next one.
  async function waits(port: number, jitter: number, n: number): Promise<number[]> {
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      minWaitBetweenReconnectionRetries: 20,
      maxWaitBetweenReconnectionRetries: 160,
      reconnectionJitter: jitter,
      method: ev.method,
    });
    defer(() => websocketClientStop(client));
    await websocketClientStart(client);
    const errors = await ev.waitCount((e) => e.type === 'error', n, 10000, 'error events');
    return errors.slice(0, n).map((e) => e.ctx.wait_time as number);
  }
  const exact = [20, 40, 80, 160, 160, 160, 160, 160];

  test('each wait is drawn from [wait × (1 − jitter), wait]; 0 keeps the exact sequence', async () => {
    const port = await closedPort();
    expect(await waits(port, 0, 8)).toEqual(exact);
    const half = await waits(port, 0.5, 8);
    half.forEach((w, i) => {
      expect(w).toBeGreaterThanOrEqual(exact[i] * 0.5);
      expect(w).toBeLessThanOrEqual(exact[i]);
    });
    // Drawn, not fixed: all eight at the bound would be a 2^-256 chance.
    expect(half.filter((w, i) => w !== exact[i]).length).toBeGreaterThan(0);
  });

  test('clients cut off together spread out: 20 clients with jitter 1, their capped waits far apart', async () => {
    const port = await closedPort();
    const all = await Promise.all(Array.from({ length: 20 }, () => waits(port, 1, 5)));
    // The fifth wait is capped (160 ms) for everyone: without jitter all 20
    // would be equal; drawn from [0, 160] their range is wide (a range under
    // 40 ms has a chance of about 20 × (1/4)^19).
    const fifth = all.map((w) => w[4]);
    for (const w of fifth) {
      expect(w).toBeGreaterThanOrEqual(0);
      expect(w).toBeLessThanOrEqual(160);
    }
    expect(Math.max(...fifth) - Math.min(...fifth)).toBeGreaterThan(40);
  });
});

describe('reconnection after the server goes away', () => {
  test('server stopped and restarted on the same port: close, growing waits, counted retries, open again', async () => {
    const srv = startServer();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      minWaitBetweenReconnectionRetries: 40,
      maxWaitBetweenReconnectionRetries: 320,
      method: ev.method,
    });
    const st = await websocketClientStart(client);
    expect(st.success).toBe(true);
    await ev.waitType('open');

    const stopped = stopServer(srv.server);
    expect('ref' in stopped && stopped.port).toBe(srv.port);
    const close = await ev.waitType('close');
    expect(close.ctx.code).toBe(1001);
    expect(close.ctx.remote).toBe(true);

    // Five failed attempts: 40, 80, 160, 320, 320 ms (capped).
    const errors = await ev.waitCount((e) => e.type === 'error', 5, 8000, 'error events');
    const first5 = errors.slice(0, 5);
    expect(first5.map((e) => e.ctx.retries)).toEqual([1, 2, 3, 4, 5]);
    expect(first5.map((e) => e.ctx.wait_time)).toEqual([40, 80, 160, 320, 320]);
    for (const e of first5) {
      expect(e.ctx.http_status).toBe(0);
      expect(typeof e.ctx.reason).toBe('string');
      expect(e.ctx.reason.length).toBeGreaterThan(0);
    }
    // The gaps between attempts follow the announced waits (timer slack
    // allowed): four more attempts at the capped wait, timed as their error
    // events reached JavaScript. Over four gaps a late delivery of the first
    // or last event moves the mean by a quarter of its delay.
    const more = await ev.waitCount((e) => e.type === 'error', 10, 8000, 'error events');
    expect(more.slice(5).map((e) => e.ctx.wait_time)).toEqual([320, 320, 320, 320, 320]);
    const at = ev.events.flatMap((e, i) => (e.type === 'error' ? [ev.times[i]] : []));
    const span = at[9] - at[5];
    expect(span).toBeGreaterThanOrEqual(4 * (320 - 30));
    expect(span).toBeLessThan(4 * 320 + 600);  // 150 ms of timer slack per gap

    // Back on the same port: the client reconnects by itself and opens again.
    const before = ev.events.length;
    const restarted = websocketServerStart(stopped);
    expect(restarted).toMatchObject({ success: true, port: srv.port });
    const reopened = await until(
      () => ev.events.slice(before).find((e) => e.type === 'open'),
      3000,
      `open after restart (seen: ${ev.summary()})`,
    );
    expect(reopened.ctx.uri).toBe(`ws://127.0.0.1:${srv.port}/`);
    // ... and works: a message reaches the restarted server.
    const sent = websocketClientSend(client, 'after reconnect');
    expect(sent.success).toBe(true);
    const msg = await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'after reconnect', 3000);
    expect(msg.ctx.data).toBe('after reconnect');
    // Retries restart from zero after a success.
    websocketServerStop(srv.server);
    await until(() => ev.events.slice(before).find((e) => e.type === 'error'), 3000, 'error after second stop');
    const again = ev.events.slice(before).filter((e) => e.type === 'error');
    expect(again[0].ctx.retries).toBe(1);
    expect(again[0].ctx.wait_time).toBe(40);
  });

  test('server process killed (SIGKILL) and respawned on the same port: the client comes back', async () => {
    const port = await closedPort();
    const script = `
      const { WebSocketServer } = require('ws');
      const wss = new WebSocketServer({ host: '127.0.0.1', port: ${port} });
      wss.on('listening', () => console.log('listening'));
      wss.on('connection', (s) => { s.on('message', (m) => s.send('echo:' + m)); });`;
    const children: ChildProcess[] = [];
    defer(() => children.forEach((c) => c.kill('SIGKILL')));
    const spawnServer = async () => {
      const child = spawn(process.execPath, ['-e', script], { cwd: __dirname, stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      await until(() => (out.includes('listening') ? true : undefined), 8000, 'child ws server listening');
      return child;
    };

    let child = await spawnServer();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      minWaitBetweenReconnectionRetries: 20,
      maxWaitBetweenReconnectionRetries: 200,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    await ev.waitType('open');
    websocketClientSend(client, 'one');
    await ev.waitFor((e) => e.type === 'message' && e.ctx.data === 'echo:one', 3000);

    // The peer vanishes without a close frame: abnormal closure, then retries.
    child.kill('SIGKILL');
    const close = await ev.waitType('close', undefined, 3000);
    expect(close.ctx.code).toBe(1006);
    const errors = await ev.waitCount((e) => e.type === 'error', 3, 5000, 'error events');
    expect(errors.map((e) => e.ctx.retries).slice(0, 3)).toEqual([1, 2, 3]);
    expect(errors[1].ctx.wait_time).toBeGreaterThan(errors[0].ctx.wait_time);
    expect(errors[2].ctx.wait_time).toBeGreaterThan(errors[1].ctx.wait_time);

    const before = ev.events.length;
    child = await spawnServer();
    await until(() => ev.events.slice(before).find((e) => e.type === 'open'), 4000, `open after respawn (seen: ${ev.summary()})`);
    websocketClientSend(client, 'two');
    await ev.waitFor((e) => e.type === 'message' && e.ctx.data === 'echo:two', 3000);
  });
});

describe('reconnection off', () => {
  test('a failed connect gives exactly one attempt: one error event, nothing after', async () => {
    const port = await closedPort();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      minWaitBetweenReconnectionRetries: 10,
      method: ev.method,
    });
    const st = await websocketClientStart(client);
    expect(st.success).toBe(false);
    expect(st.errorStr.length).toBeGreaterThan(0);
    await ev.waitType('error');
    // With retries on, 10 ms waits would give many attempts in this time.
    await delay(600);
    expect(ev.of('error')).toHaveLength(1);
    expect(ev.of('error')[0].ctx.retries).toBe(1);
    expect(ev.of('open')).toHaveLength(0);
    // A server appearing later is not noticed.
    const l = net.createServer((s) => s.destroy());
    defer(() => new Promise((r) => l.close(r)));
    let accepted = 0;
    l.on('connection', () => accepted++);
    await new Promise<void>((r) => l.listen(port, '127.0.0.1', r));
    await delay(300);
    expect(accepted).toBe(0);
    expect(ev.events).toHaveLength(1);
  });

  test('a connected client whose server stops gets a close and never retries', async () => {
    const srv = startServer();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      minWaitBetweenReconnectionRetries: 10,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    await ev.waitType('open');
    const stopped = stopServer(srv.server);
    const close = await ev.waitType('close');
    expect(close.ctx.code).toBe(1001);
    expect(websocketServerStart(stopped).success).toBe(true);
    await delay(500);
    expect(ev.events.map((e) => e.type)).toEqual(['open', 'close']);
    expect(srv.events.of('open')).toHaveLength(1);
  });
});

describe('stop cancels retrying', () => {
  test('websocketClientStop while retrying: no further events, no further attempts', async () => {
    const port = await closedPort();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      minWaitBetweenReconnectionRetries: 20,
      maxWaitBetweenReconnectionRetries: 40,
      method: ev.method,
    });
    const st = await websocketClientStart(client);
    expect(st.success).toBe(false);
    await ev.waitCount((e) => e.type === 'error', 3, 3000, 'error events');
    const t0 = Date.now();
    const stopped = websocketClientStop(client);
    expect(Date.now() - t0).toBeLessThan(STOP_RETURNS_MS);
    expect('ref' in stopped && stopped.ref).toBe(client.ref);
    const n = ev.events.length;
    await delay(100);
    // A listener appears: a stopped client must not find it.
    let accepted = 0;
    const l = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    defer(() => new Promise((r) => l.close(r)));
    await new Promise<void>((r) => l.listen(port, '127.0.0.1', r));
    await delay(500);
    // One attempt may have been in flight when stop was posted to the IO thread: its error
    // event may still come, however late the event loop delivers it; nothing else may.
    const after = ev.events.slice(n).map((e) => e.type);
    expect(after.length, after.join()).toBeLessThanOrEqual(1);
    expect(after.every((t) => t === 'error'), after.join()).toBe(true);
    expect(accepted).toBe(0);
  });

  test('websocketClientStop on a connected client: one terminal close, no reconnection', async () => {
    const srv = startServer();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      minWaitBetweenReconnectionRetries: 10,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    await ev.waitType('open');
    websocketClientStop(client);
    const close = await ev.waitType('close');
    expect(close.ctx.code).toBe(1000);
    expect(close.ctx.remote).toBe(false);
    await srv.events.waitType('close');
    await delay(400);
    expect(ev.events.map((e) => e.type)).toEqual(['open', 'close']);
    expect(srv.events.of('open')).toHaveLength(1);
  });
});
