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
import { WebSocketServer } from '../lib/index';
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
    // The close announces the first attempt, 40 ms on.
    expect(close.ctx.wait_time).toBe(40);
    expect(close.ctx.retries).toBe(1);

    // Five failed attempts: 80, 160, 320, 320, 320 ms (capped).
    const errors = await ev.waitCount((e) => e.type === 'error', 5, 8000, 'error events');
    const first5 = errors.slice(0, 5);
    expect(first5.map((e) => e.ctx.retries)).toEqual([2, 3, 4, 5, 6]);
    expect(first5.map((e) => e.ctx.wait_time)).toEqual([80, 160, 320, 320, 320]);
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
    // Open for less than 5 s: its close continues the backoff (capped), it
    // does not start again from 40 ms (the next test has the reset).
    const retriesBefore = ev.events.filter((e) => e.type === 'error').at(-1)!.ctx.retries as number;
    websocketServerStop(srv.server);
    const second = await until(() => ev.events.slice(before).find((e) => e.type === 'close'), 3000, 'close after second stop');
    expect(second.ctx.wait_time).toBe(320);
    expect(second.ctx.retries).toBeGreaterThan(retriesBefore);
  });

  // A server that accepts and closes at once used to be retried after the
  // minimum wait every time (the open reset the backoff): ~700 connections a
  // second with the default 1 ms.
  test('a server that accepts and closes at once meets growing waits; a connection open 5 s starts them again', async () => {
    const server = new WebSocketServer({ port: 0 });
    defer(() => server.clear());
    let opens = 0;
    let holdNext = false;
    server.on('open', (c) => {
      opens++;
      if (holdNext) setTimeout(() => server.close(c, 1008, 'late'), 5200);
      else server.close(c, 1008, 'go away');
    });
    server.start();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${server.port}/`,
      minWaitBetweenReconnectionRetries: 10,
      maxWaitBetweenReconnectionRetries: 80,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    const closes = await ev.waitCount((e) => e.type === 'close', 6, 5000, 'close events');
    expect(closes.slice(0, 6).map((e) => e.ctx.wait_time)).toEqual([10, 20, 40, 80, 80, 80]);
    expect(closes.slice(0, 6).map((e) => e.ctx.retries)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const c of closes.slice(0, 6)) expect(c).toMatchObject({ ctx: { code: 1008, remote: true } });
    // Over the next second at most 1000 / 80 more connections (+1 of slack), not hundreds.
    const seen = opens;
    await delay(1000);
    expect(opens - seen).toBeLessThanOrEqual(14);

    // The next connection stays open 5.2 s: the close after it starts the
    // backoff again from the minimum.
    holdNext = true;
    const late = await ev.waitFor((e) => e.type === 'close' && e.ctx.reason === 'late', 9000, "the 'late' close");
    expect(late.ctx).toMatchObject({ code: 1008, wait_time: 10, retries: 1 });
  }, 20_000);

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
    expect(close.ctx).toMatchObject({ wait_time: 20, retries: 1 });
    const errors = await ev.waitCount((e) => e.type === 'error', 3, 5000, 'error events');
    expect(errors.map((e) => e.ctx.retries).slice(0, 3)).toEqual([2, 3, 4]);
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
