// Interoperability with implementations nobody here wrote, both directions,
// text and binary, with and without permessage-deflate:
// - `ws`: what test/interop-ws.test.ts does not cover (deflate disabled on
//   one side only, negotiated window/takeover parameters, fragmented
//   messages from ws, closes and pings started by our side);
// - Python `websockets`: its client against our server, our client against
//   its server (scripts in test/peers/);
// - headless Chromium: a page served on loopback talks to our server.
// A missing Python or Chromium skips its suite with the reason and the
// install command; with IXWS_REQUIRE_PEERS=1 (CI) it fails instead
// (test/support/peers.ts).
import { spawn } from 'child_process';
import type * as http from 'http';
import * as fs from 'fs';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import { websocketClientSend, websocketClientStart, websocketClientStop, websocketServerSend } from '../lib/index';
import type { EventMethod, ServerOptions } from '../lib/index';
import { binding } from '../lib/binding';
import { Collector, Started, bytes, defer, header, newClient, runCleanup, startServer, text, until } from './support';
import { servePage, runPage } from './support/browser';
import { makeTestCa } from './support/certs';
import { describeWithPeers, peerEnv, peers } from './support/peers';

afterEach(runCleanup);

const PEERS = path.join(__dirname, 'peers');

/** Our server, echoing every message with its type; `greet` messages are sent on open. */
function echoServer(options: ServerOptions = {}, greet: Array<string | Buffer> = []): Started & { log: Collector } {
  const log = new Collector();
  let ref = 0;
  const method: EventMethod = (server, client, type, ctx, worker, window, process) => {
    log.method(server, client, type, ctx, worker, window, process);
    if (type === 'open') for (const g of greet) websocketServerSend({ ref, clients: [client] }, g);
    if (type === 'message') websocketServerSend({ ref, clients: [client] }, ctx.data);
  };
  const s = startServer({ ...options, method });
  ref = s.server.ref;
  return { ...s, events: log, log };
}

/** Our client (no reconnection) with an event log. */
async function ourClient(url: string, options: Record<string, unknown> = {}) {
  const events = new Collector();
  const c = newClient({ url, enableAutomaticReconnection: false, method: events.method, ...options });
  const st = await websocketClientStart({ ref: c.ref, timeout: 10 });
  return { c, events, st };
}

const wsOpen = (ws: WebSocket) =>
  new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });

function wsCollect(ws: WebSocket): Array<{ data: Buffer; isBinary: boolean }> {
  const got: Array<{ data: Buffer; isBinary: boolean }> = [];
  ws.on('message', (data, isBinary) => got.push({ data: Buffer.from(data as Buffer), isBinary }));
  return got;
}

async function wsServer(options: ConstructorParameters<typeof WsServer>[0] = {}) {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, ...options });
  defer(() => new Promise((r) => wss.close(() => r(undefined))));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as AddressInfo).port;
  const conn = new Promise<{ ws: WebSocket; req: http.IncomingMessage }>((resolve) =>
    wss.once('connection', (ws, req) => {
      defer(() => ws.terminate());
      resolve({ ws, req });
    }),
  );
  return { wss, port, conn };
}

// ------------------------------------------------------------------ ws

describe('ws (additions to interop-ws.test.ts)', () => {
  test('ws offers permessage-deflate, our server has it disabled: declined, messages plain', async () => {
    const srv = echoServer({ disablePerMessageDeflate: true });
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: true });
    defer(() => ws.terminate());
    const got = wsCollect(ws);
    await wsOpen(ws);
    expect(ws.extensions).toBe('');
    const open = await srv.log.waitType('open');
    expect(String(header(open.ctx.headers, 'sec-websocket-extensions'))).toMatch(/permessage-deflate/);
    const t = text(50000, 9);
    const b = bytes(50000, 9);
    ws.send(t);
    ws.send(b);
    await until(() => (got.length >= 2 ? true : undefined), 5000, 'echoes');
    expect(got[0].isBinary).toBe(false);
    expect(got[0].data.toString() === t).toBe(true);
    expect(got[1].isBinary).toBe(true);
    expect(got[1].data.equals(b)).toBe(true);
    const ms = srv.log.of('message');
    expect(ms[0].ctx.wireSize).toBe(Buffer.byteLength(t));
  });

  test('our client with deflate disabled ↔ ws server with deflate on: nothing offered, messages plain', async () => {
    const { port, conn } = await wsServer({ perMessageDeflate: true });
    const { c, events, st } = await ourClient(`ws://127.0.0.1:${port}/`, { disablePerMessageDeflate: true });
    expect(st.success).toBe(true);
    const { ws, req } = await conn;
    expect(req.headers['sec-websocket-extensions']).toBeUndefined();
    expect(ws.extensions).toBe('');
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
    const b = bytes(40000, 2);
    websocketClientSend(c, 'plain ✓');
    websocketClientSend(c, b);
    const ms = await events.waitCount((e) => e.type === 'message', 2, 5000, 'echoes from ws');
    expect(ms[0].ctx).toEqual({ data: 'plain ✓', binary: false, wireSize: Buffer.byteLength('plain ✓') });
    expect(ms[1].ctx.binary).toBe(true);
    expect(b.equals(ms[1].ctx.data)).toBe(true);
    expect(ms[1].ctx.wireSize).toBe(40000);
  });

  // Repeated messages: with no context takeover each must inflate alone,
  // with 9-bit windows every back-reference must stay within 512 bytes.
  const params = { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 9, clientMaxWindowBits: 9, threshold: 0 };
  test('ws client with no-context-takeover and 9-bit windows ↔ our server', async () => {
    const srv = echoServer({ perMessageDeflate: { enabled: true, threshold: 0 } });
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: params });
    defer(() => ws.terminate());
    // ws.extensions lists names only: read our server's answer itself
    const answer = new Promise<string>((r) => ws.once('upgrade', (res) => r(String(res.headers['sec-websocket-extensions']))));
    const got = wsCollect(ws);
    await wsOpen(ws);
    expect(await answer).toMatch(/server_no_context_takeover/);
    expect(await answer).toMatch(/client_no_context_takeover/);
    expect(await answer).toMatch(/server_max_window_bits=9/);
    expect(await answer).toMatch(/client_max_window_bits=9/);
    const block = bytes(700, 5);
    const m = Buffer.concat([block, block, block, block]);
    for (let i = 0; i < 3; i++) ws.send(m);
    ws.send(text(30000, 4));
    await until(() => (got.length >= 4 ? true : undefined), 5000, 'echoes');
    for (let i = 0; i < 3; i++) expect(got[i].data.equals(m)).toBe(true);
    expect(got[3].data.toString() === text(30000, 4)).toBe(true);
    expect(srv.log.of('error')).toEqual([]);
  });

  test('our client ↔ ws server with no-context-takeover and 9-bit windows', async () => {
    const { wss, port, conn } = await wsServer({ perMessageDeflate: params });
    const answer = new Promise<string>((r) => wss.once('headers', (h) => r(h.join('\n'))));
    const { c, events, st } = await ourClient(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { enabled: true, threshold: 0 } });
    expect(st.success).toBe(true);
    const { ws } = await conn;
    expect(await answer).toMatch(/Sec-WebSocket-Extensions: permessage-deflate;.*client_max_window_bits=9/);
    expect(await answer).toMatch(/server_no_context_takeover/);
    const got = wsCollect(ws);
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
    const block = bytes(700, 6);
    const m = Buffer.concat([block, block, block, block]);
    for (let i = 0; i < 3; i++) expect(websocketClientSend(c, m).success).toBe(true);
    const ms = await events.waitCount((e) => e.type === 'message', 3, 5000, 'echoes');
    for (const e of ms) expect(m.equals(e.ctx.data)).toBe(true);
    // ws inflated our messages with a 512-byte window and fresh context each
    for (let i = 0; i < 3; i++) expect(got[i].data.equals(m)).toBe(true);
    expect(events.of('error')).toEqual([]);
  });

  for (const deflate of [true, false]) {
    test(`fragmented messages from ws reach our server and client whole (deflate ${deflate ? 'on' : 'off'})`, async () => {
      const srv = echoServer();
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: deflate });
      defer(() => ws.terminate());
      const got = wsCollect(ws);
      await wsOpen(ws);
      const parts = ['ein ', 'zwei ', 'drei ✓'];
      parts.forEach((p, i) => ws.send(p, { fin: i === parts.length - 1 }));
      const bin = bytes(90000, 8);
      ws.send(bin.subarray(0, 30000), { binary: true, fin: false });
      ws.send(bin.subarray(30000), { binary: true, fin: true });
      await until(() => (got.length >= 2 ? true : undefined), 5000, 'echoes');
      expect(got[0]).toEqual({ data: Buffer.from(parts.join('')), isBinary: false });
      expect(got[1].isBinary).toBe(true);
      expect(got[1].data.equals(bin)).toBe(true);
      const open = await srv.log.waitType('open');
      expect(srv.log.of('fragment', open.client).length).toBe(3);

      // and towards our client
      const w = await wsServer({ perMessageDeflate: deflate });
      const { events } = await ourClient(`ws://127.0.0.1:${w.port}/`);
      const { ws: peer } = await w.conn;
      parts.forEach((p, i) => peer.send(p, { fin: i === parts.length - 1 }));
      peer.send(bin.subarray(0, 30000), { binary: true, fin: false });
      peer.send(bin.subarray(30000), { binary: true, fin: true });
      const ms = await events.waitCount((e) => e.type === 'message', 2, 5000, 'messages');
      expect(ms[0].ctx.data).toBe(parts.join(''));
      expect(bin.equals(ms[1].ctx.data)).toBe(true);
      expect(events.of('fragment').length).toBe(3);
    });
  }

  test('closes and pings started by our side', async () => {
    // our server closes one connection with a code and reason
    const srv = echoServer();
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`);
    defer(() => ws.terminate());
    const closed = new Promise<[number, string]>((r) => ws.once('close', (code, reason) => r([code, reason.toString()])));
    await wsOpen(ws);
    const open = await srv.log.waitType('open');
    // a ping from ws: our server answers it and reports it
    ws.ping(Buffer.from('from ws'));
    const ping = await srv.log.waitType('ping', open.client);
    expect(ping.ctx).toEqual({ data: 'from ws', binary: false, wireSize: 7 });
    expect(binding.websocketServerCloseClient({ ref: srv.server.ref }, open.client, 4010, 'server closes ✓')).toBe(true);
    expect(await closed).toEqual([4010, 'server closes ✓']);
    const sc = await srv.log.waitType('close', open.client);
    expect(sc.ctx).toEqual({ code: 4010, reason: 'server closes ✓', remote: false });

    // our client stops: ws sees 1000 "Normal closure"
    const w = await wsServer();
    const { c, events } = await ourClient(`ws://127.0.0.1:${w.port}/`, { pingInterval: 1 });
    const { ws: peer } = await w.conn;
    const pong = await events.waitType('pong', undefined, 4000);
    expect(pong.ctx.data).toBe('ixwebsocket::heartbeat');
    const peerClosed = new Promise<[number, string]>((r) => peer.once('close', (code, reason) => r([code, reason.toString()])));
    websocketClientStop(c);
    expect(await peerClosed).toEqual([1000, 'Normal closure']);
    const cc = await events.waitType('close');
    expect(cc.ctx).toMatchObject({ code: 1000, remote: false });
  });
});

// ------------------------------------------------------------------ python

/** A child process whose stdout lines are kept; killed (by pid) after the test. */
function child(exe: string, args: string[], options: { detached?: boolean } = {}) {
  const p = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached, env: peerEnv() });
  const lines: string[] = [];
  let err = '';
  let partial = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  p.stderr!.setEncoding('utf8');
  p.stderr!.on('data', (d: string) => (err = (err + d).slice(-4000)));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r((exitCode = code))));
  const kill = () => {
    if (exitCode !== undefined || p.pid === undefined) return;
    try {
      // detached: the whole group we started (a browser's helper processes)
      process.kill(options.detached ? -p.pid : p.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  };
  defer(async () => {
    kill();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
  });
  return {
    p,
    lines,
    exited,
    kill,
    stderr: () => err,
    waitLine: (re: RegExp, timeoutMs: number) =>
      until(() => {
        const l = lines.find((x) => re.test(x));
        if (l === undefined && exitCode !== undefined) throw new Error(`${path.basename(args[0])} exited (${exitCode}) before "${re}": ${err}`);
        return l;
      }, timeoutMs, `"${re}" from ${path.basename(args[0])} (stdout: ${lines.join(' | ')})`),
  };
}

describeWithPeers([peers.python()], 'Python websockets', (found) => {
  const python = () => found.python!;

  const variants = [
    { name: 'deflate on both sides', py: 'on', ours: true },
    { name: 'python without deflate', py: 'off', ours: true },
    { name: 'our side without deflate', py: 'on', ours: false },
  ] as const;

  for (const v of variants) {
    test(`python client ↔ our server (${v.name})`, async () => {
      const srv = echoServer(v.ours ? {} : { disablePerMessageDeflate: true }, ['welcome from ix ✓']);
      const py = child(python().exe, [
        path.join(PEERS, 'py_client.py'),
        `ws://127.0.0.1:${srv.port}/py?side=client`,
        '--compression', v.py,
        '--close-code', '4003',
        '--close-reason', 'py says bye ✓',
        '--expect-greeting',
      ]);
      const code = await Promise.race([py.exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 40000))]);
      const line = py.lines.find((l) => l.startsWith('{'));
      expect(line, `py_client output: ${py.lines.join('\n')} ${py.stderr()}`).toBeDefined();
      const r = JSON.parse(line!);
      expect(r, py.stderr()).toMatchObject({ ok: true, greeting: 'welcome from ix ✓', pong: true, close_code: 4003 });
      expect(code).toBe(0);
      expect(/permessage-deflate/.test(r.extensions)).toBe(v.py === 'on' && v.ours);

      const open = await srv.log.waitType('open');
      expect(open.ctx.uri).toBe('/py?side=client');
      const ms = srv.log.of('message', open.client);
      expect(ms.map((m) => m.ctx.binary)).toEqual([false, false, true, true]);
      expect(ms[0].ctx.data).toBe('hello from python ✓');
      expect(ms[2].ctx.data.length).toBe(70000);
      expect(ms[3].ctx.data.length).toBe(0);
      const ping = await srv.log.waitType('ping', open.client);
      expect(ping.ctx.data).toBe('py-client-ping');
      const close = await srv.log.waitType('close', open.client);
      expect(close.ctx).toEqual({ code: 4003, reason: 'py says bye ✓', remote: true });
    }, 60000);

    test(`our client ↔ python server (${v.name})`, async () => {
      const py = child(python().exe, [path.join(PEERS, 'py_echo_server.py'), '--compression', v.py, '--lifetime', '60']);
      const port = Number((await py.waitLine(/^PORT \d+$/, 15000)).split(' ')[1]);
      const { c, events, st } = await ourClient(`ws://127.0.0.1:${port}/from-ix?x=1`, v.ours ? { perMessageDeflate: { enabled: true, threshold: 0 } } : { disablePerMessageDeflate: true });
      expect(st).toMatchObject({ success: true, http_status: 101 });
      const opened = await py.waitLine(/^OPEN /, 5000);
      expect(opened).toMatch(/^OPEN \/from-ix\?x=1 /);
      expect(/accepted=permessage-deflate/.test(opened)).toBe(v.py === 'on' && v.ours);
      expect(/offer=permessage-deflate/.test(opened)).toBe(v.ours);

      const t = text(100000, 12);
      const b = bytes(100000, 12);
      for (const d of ['hi python ✓', t, b, Buffer.alloc(0)]) expect(websocketClientSend(c, d).success).toBe(true);
      const ms = await events.waitCount((e) => e.type === 'message', 4, 10000, 'echoes from python');
      expect(ms[0].ctx).toMatchObject({ data: 'hi python ✓', binary: false });
      expect(ms[1].ctx.binary).toBe(false);
      expect(ms[1].ctx.data === t).toBe(true);
      expect(ms[2].ctx.binary).toBe(true);
      expect(b.equals(ms[2].ctx.data)).toBe(true);
      expect(ms[3].ctx).toMatchObject({ binary: true, wireSize: v.py === 'on' && v.ours ? expect.any(Number) : 0 });
      expect(ms[3].ctx.data.length).toBe(0);
      if (v.py === 'on' && v.ours) expect(ms[1].ctx.wireSize).toBeLessThan(Buffer.byteLength(t));

      // python pings us: we answer (enablePong) and report the ping
      websocketClientSend(c, 'ping-me');
      await py.waitLine(/^PONG$/, 5000);
      const ping = await events.waitType('ping');
      expect(ping.ctx.data).toBe('py-ping');

      // python closes with a code and reason: our close event reports them
      websocketClientSend(c, 'close-me');
      const close = await events.waitType('close', undefined, 8000);
      expect(close.ctx).toEqual({ code: 4002, reason: 'py bye', remote: true });
      // python's close_reason is that of our answer, which repeats the code only
      expect(await py.waitLine(/^CLOSED /, 5000)).toMatch(/^CLOSED 4002\b/);

      // and the other way: our client stops, python sees 1000 "Normal closure"
      const second = await ourClient(`ws://127.0.0.1:${port}/second`, v.ours ? {} : { disablePerMessageDeflate: true });
      expect(second.st.success).toBe(true);
      await py.waitLine(/^OPEN \/second /, 5000);
      websocketClientStop(second.c);
      await until(() => (py.lines.filter((l) => l.startsWith('CLOSED')).length >= 2 ? true : undefined), 8000, 'python to see the second close');
      expect(py.lines.filter((l) => l.startsWith('CLOSED'))[1]).toBe('CLOSED 1000 Normal closure');
    }, 60000);
  }

  describe('over TLS', () => {
    test('our client ↔ python server over TLS: the close ends as soon as the closing handshake does', async () => {
      // asyncio ends TLS with close_notify and closes TCP only after the
      // client's close_notify: a client that does not answer it waits out its
      // 2 s close deadline for a FIN that does not come.
      const ca = makeTestCa();
      defer(() => ca.remove());
      const leaf = ca.leaf('py', ['DNS:localhost', 'IP:127.0.0.1']);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-pytls-'));
      defer(() => fs.rmSync(dir, { recursive: true, force: true }));
      fs.writeFileSync(path.join(dir, 'cert.pem'), leaf.cert);
      fs.writeFileSync(path.join(dir, 'key.pem'), leaf.key);
      const py = child(python().exe, [
        path.join(PEERS, 'py_echo_server.py'), '--lifetime', '60',
        '--cert', path.join(dir, 'cert.pem'), '--key', path.join(dir, 'key.pem'),
      ]);
      const port = Number((await py.waitLine(/^PORT \d+$/, 15000)).split(' ')[1]);
      const { c, events, st } = await ourClient(`wss://localhost:${port}/tls`, { tls: { ca: ca.ca } });
      expect(st).toMatchObject({ success: true, http_status: 101 });
      expect(websocketClientSend(c, 'over tls ✓').success).toBe(true);
      expect((await events.waitType('message')).ctx.data).toBe('over tls ✓');
      const at = performance.now();
      websocketClientSend(c, 'close-me');
      const close = await events.waitType('close', undefined, 8000);
      expect(close.ctx).toEqual({ code: 4002, reason: 'py bye', remote: true });
      expect(performance.now() - at).toBeLessThan(1500);
      expect(await py.waitLine(/^CLOSED /, 5000)).toMatch(/^CLOSED 4002\b/);
    }, 60000);
  });
});

// ------------------------------------------------------------------ chromium

interface PageResult {
  ok: boolean;
  error?: string;
  extensions?: string;
  greeting?: string;
  greetingBinary?: number[];
  checks?: Array<{ i: number; same: boolean; type: string }>;
  close?: { code: number; reason: string; wasClean: boolean };
}

describeWithPeers([peers.chromium()], 'headless Chromium', (found) => {
  const chromium = () => found.chromium!.exe;

  for (const deflate of [true, false]) {
    test(`browser WebSocket ↔ our server (permessage-deflate ${deflate ? 'enabled' : 'disabled'} on our server)`, async () => {
      const bin = Buffer.from([0, 1, 2, 253, 254, 255]);
      const srv = echoServer(deflate ? { perMessageDeflate: { enabled: true, threshold: 0 } } : { disablePerMessageDeflate: true }, ['welcome, browser ✓', bin]);
      const web = await servePage(path.join(PEERS, 'browser_page.html'));
      const started = Date.now();
      const r: PageResult = await runPage(chromium(), web, `port=${srv.port}`);
      console.log(`[interop] chromium round trip (deflate ${deflate ? 'on' : 'off'}): ${Date.now() - started} ms`);
      expect(r.error).toBeUndefined();
      expect(r.ok).toBe(true);
      expect(r.checks?.map((c) => c.type)).toEqual(['text', 'text', 'binary', 'binary']);
      expect(r.greeting).toBe('welcome, browser ✓');
      expect(r.greetingBinary).toEqual([...bin]);
      // Chromium offers permessage-deflate; it is in use only if our server accepts it
      expect(/permessage-deflate/.test(r.extensions ?? '')).toBe(deflate);
      // our server echoes the close code (the reason is optional in the answer)
      expect(r.close).toMatchObject({ code: 4001, wasClean: true });

      const open = await srv.log.waitType('open');
      expect(open.ctx.uri).toBe('/browser?from=chromium');
      expect(String(header(open.ctx.headers, 'user-agent'))).toMatch(/HeadlessChrome/);
      expect(String(header(open.ctx.headers, 'origin'))).toBe(`http://127.0.0.1:${web.port}`);
      expect(String(header(open.ctx.headers, 'sec-websocket-extensions'))).toMatch(/permessage-deflate/);
      const ms = srv.log.of('message', open.client);
      expect(ms.map((m) => m.ctx.binary)).toEqual([false, false, true, true]);
      expect(ms[0].ctx.data).toBe('hello from chromium ✓ 😀');
      expect(ms[2].ctx.data.length).toBe(70000);
      if (deflate) expect(ms[1].ctx.wireSize).toBeLessThan(Buffer.byteLength(ms[1].ctx.data));
      else expect(ms[1].ctx.wireSize).toBe(Buffer.byteLength(ms[1].ctx.data));
      const close = await srv.log.waitType('close', open.client);
      expect(close.ctx).toEqual({ code: 4001, reason: 'browser bye ✓', remote: true });
    }, 60000);
  }
});
