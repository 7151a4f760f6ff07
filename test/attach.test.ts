// Attaching to an existing Node HTTP server (noServer + handleUpgrade): one
// port, one plain `http.Server`, two ix-websocket servers routed by path and
// an HTTP route beside them. Clients of every kind the interop suites use
// (ws, our client, Node's own WebSocket, Python websockets, Chromium) connect
// through it; bytes the client sent with the request are not lost; Node's
// socket is released without a FIN; no descriptor leaks; an https server's
// sockets, pipes and sockets without a descriptor get the documented refusal.
import { spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import WebSocket from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import {
  WebSocketServer,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServer,
  websocketServerClients,
  websocketServerHandleUpgrade,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
} from '../lib/index';
import type { EventMethod, ServerObject, UpgradeStatus } from '../lib/index';
import { root } from '../lib/binding';
import { compilePackage, readmeSample } from './support/compile';
import { issueCert } from './support/x509';
import { describeWithPeers, peerEnv, peers } from './support/peers';
import { Collector, OP, RawPeer, acceptKey, bytes, decodeFrame, defer, delay, encodeFrame, header, newClient, newServer, runCleanup, text, until, upgradeRequest } from './support';

afterEach(runCleanup);

const PEERS = path.join(__dirname, 'peers');

/** Open descriptors of this process (one test file per process: vitest forks). */
const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

/** Waits (bounded) until the descriptor count is back to `baseline`. */
async function fdsBackTo(baseline: number, what: string): Promise<void> {
  await until(() => (fdCount() <= baseline ? true : undefined), 5000, `${what}: descriptors back to ${baseline} (now ${fdCount()})`);
  expect(fdCount()).toBe(baseline);
}

interface Upgrade {
  url: string;
  head: Buffer;
  status?: UpgradeStatus;
  error?: unknown;
  /** Node's socket emitted 'end' (the peer's FIN) */
  nodeSawEnd: boolean;
  nodeSocketClosed: boolean;
}

interface Shared {
  http: http.Server;
  port: number;
  /** the class form, on /chat (and /browser for the Chromium page) */
  chat: WebSocketServer;
  chatLog: Collector;
  /** the command form, on /feed */
  feed: ServerObject;
  feedLog: Collector;
  upgrades: Upgrade[];
  httpRequests: string[];
  /** resolves with what the Chromium page POSTs to /result */
  pageResult: Promise<any>;
  /** makes the 'upgrade' handler wait this long before handleUpgrade */
  delayUpgradeMs: number;
}

/**
 * Greets a new connection (its server's name; a text and a binary greeting
 * for the browser page, which expects both) and echoes every message.
 */
function echoMethod(name: string, log: Collector, send: (client: number, data: string | Buffer) => void): EventMethod {
  return (server, client, type, ctx, worker, window, process) => {
    log.method(server, client, type, ctx, worker, window, process);
    if (type === 'open') {
      if (String(ctx.uri).startsWith('/browser')) {
        send(client, 'welcome, browser ✓');
        send(client, Buffer.from([0, 1, 2, 253, 254, 255]));
      } else if (!String(ctx.uri).includes('quiet')) {
        send(client, `welcome to ${name}`);
      }
    }
    if (type === 'message') send(client, ctx.data);
  };
}

/** The shared port: an http.Server with /health, the browser page and two ix-websocket servers. */
async function sharedPort(options: { chat?: Record<string, unknown>; feed?: Record<string, unknown> } = {}): Promise<Shared> {
  const chatLog = new Collector();
  const feedLog = new Collector();
  // The class form, with its method given afterwards (the echo needs the instance).
  const chat = new WebSocketServer({ noServer: true, ...options.chat });
  defer(() => chat.clear());
  chat.start({ method: echoMethod('chat', chatLog, (c, d) => chat.send(d, { clients: [c] })) });
  let feedRef = 0;
  const feed = newServer({ noServer: true, method: echoMethod('feed', feedLog, (c, d) => websocketServerSend({ ref: feedRef, clients: [c] }, d)), ...options.feed });
  feedRef = feed.ref;
  const st = websocketServerStart(feed);
  expect(st).toMatchObject({ success: true });

  const page = fs.readFileSync(path.join(PEERS, 'browser_page.html'));
  let deliver: (r: unknown) => void = () => undefined;
  const pageResult = new Promise<any>((r) => (deliver = r));
  const httpRequests: string[] = [];
  const server = http.createServer((req, res) => {
    httpRequests.push(`${req.method} ${req.url}`);
    if (req.url === '/health') {
      res.end('ok');
    } else if (req.method === 'GET' && req.url?.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
    } else if (req.method === 'POST' && req.url === '/result') {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        res.end('ok');
        try {
          deliver(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          deliver({ ok: false, error: `unreadable result: ${e}` });
        }
      });
    } else {
      res.writeHead(404);
      res.end('not here');
    }
  });
  const shared: Shared = { http: server, port: 0, chat, chatLog, feed, feedLog, upgrades: [], httpRequests, pageResult, delayUpgradeMs: 0 };
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const u: Upgrade = { url: req.url ?? '', head: Buffer.from(head), nodeSawEnd: false, nodeSocketClosed: false };
    shared.upgrades.push(u);
    socket.on('end', () => (u.nodeSawEnd = true));
    socket.on('close', () => (u.nodeSocketClosed = true));
    socket.on('error', () => undefined);
    const route = () => {
      const pathname = new URL(req.url ?? '/', 'http://x').pathname;
      try {
        if (pathname === '/chat' || pathname === '/browser') u.status = chat.handleUpgrade(req, socket, head);
        else if (pathname === '/feed') u.status = websocketServerHandleUpgrade({ ref: feed.ref }, req, socket, head);
        else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      } catch (e) {
        u.error = e;
        socket.destroy();
      }
    };
    if (shared.delayUpgradeMs > 0) setTimeout(route, shared.delayUpgradeMs);
    else route();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  defer(() => new Promise((r) => server.close(() => r(undefined))));
  defer(() => server.closeAllConnections());
  shared.port = (server.address() as AddressInfo).port;
  return shared;
}

function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('GET timed out')));
    req.on('error', reject);
  });
}

/** A ws client with its messages recorded and a close promise. */
async function wsClient(url: string, options: WebSocket.ClientOptions = {}) {
  const ws = new WebSocket(url, options);
  defer(() => ws.terminate());
  const got: Array<{ data: Buffer; isBinary: boolean }> = [];
  ws.on('message', (data, isBinary) => got.push({ data: Buffer.from(data as Buffer), isBinary }));
  const closed = new Promise<[number, string]>((r) => ws.once('close', (code, reason) => r([code, reason.toString()])));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, got, closed, waitGot: (n: number) => until(() => (got.length >= n ? got : undefined), 5000, `${n} messages from the server`) };
}

// ------------------------------------------------------------------ ws, our client, HTTP

describe('two servers and an HTTP route on one http.Server', () => {
  test('ws clients reach the server of their path, with deflate; HTTP keeps serving; send to all; stop', async () => {
    const s = await sharedPort();
    expect(await get(s.port, '/health')).toEqual({ status: 200, body: 'ok' });

    const a1 = await wsClient(`ws://127.0.0.1:${s.port}/chat?n=1`, { perMessageDeflate: { threshold: 0 } });
    const a2 = await wsClient(`ws://127.0.0.1:${s.port}/chat?n=2`);
    const b = await wsClient(`ws://127.0.0.1:${s.port}/feed`);
    // permessage-deflate negotiated by the engine from the request Node parsed
    expect(a1.ws.extensions).toMatch(/permessage-deflate/);
    for (const c of [a1, a2]) expect((await c.waitGot(1))[0].data.toString()).toBe('welcome to chat');
    expect((await b.waitGot(1))[0].data.toString()).toBe('welcome to feed');

    // HTTP on the same port while WebSocket connections are open
    expect(await get(s.port, '/health')).toEqual({ status: 200, body: 'ok' });
    expect((await get(s.port, '/nothing')).status).toBe(404);

    // each server has its own connections, with the events of accepted ones
    await until(() => (s.chat.clients().length === 2 ? true : undefined), 5000, 'two chat connections');
    expect(websocketServerClients({ ref: s.feed.ref })).toHaveLength(1);
    const opens = s.chatLog.of('open');
    expect(opens.map((e) => e.ctx.uri).sort()).toEqual(['/chat?n=1', '/chat?n=2']);
    expect(String(header(opens[0].ctx.headers, 'sec-websocket-key'))).toMatch(/==$/);
    expect(s.feedLog.of('open').map((e) => e.ctx.uri)).toEqual(['/feed']);

    // echo, text and binary, large and compressed
    const t = text(60000, 3);
    const bin = bytes(70000, 4);
    a1.ws.send(t);
    a1.ws.send(bin);
    b.ws.send('to the feed ✓');
    const echoes = await a1.waitGot(3);
    expect(echoes[1].data.toString() === t && !echoes[1].isBinary).toBe(true);
    expect(echoes[2].data.equals(bin) && echoes[2].isBinary).toBe(true);
    expect((await b.waitGot(2))[1].data.toString()).toBe('to the feed ✓');
    const firstMsg = (await s.chatLog.waitType('message')).ctx;
    expect(firstMsg.wireSize).toBeLessThan(Buffer.byteLength(t));  // came compressed

    // send to every connection of one server
    const sent = s.chat.send('to all chat');
    expect(sent.map((r) => r.success)).toEqual([true, true]);
    for (const c of [a1, a2]) await until(() => (c.got.some((g) => g.data.toString() === 'to all chat') ? true : undefined), 5000, 'broadcast');
    expect(b.got.some((g) => g.data.toString() === 'to all chat')).toBe(false);

    // Node released every socket without a FIN: its sockets are closed, ours are open
    for (const u of s.upgrades) {
      expect(u.status).toMatchObject({ success: true });
      expect(u.nodeSocketClosed).toBe(true);
      expect(u.nodeSawEnd).toBe(false);
    }

    // stop closes the chat connections with 1001; the feed and HTTP go on
    s.chat.stop();
    expect((await a1.closed)[0]).toBe(1001);
    expect((await a2.closed)[0]).toBe(1001);
    b.ws.send('still here');
    expect((await b.waitGot(3))[2].data.toString()).toBe('still here');
    expect(await get(s.port, '/health')).toEqual({ status: 200, body: 'ok' });
    // a stopped server refuses new connections with 503 (the peer is told why)
    const refused = new WebSocket(`ws://127.0.0.1:${s.port}/chat`);
    defer(() => refused.terminate());
    const status = await new Promise<number>((r) => {
      refused.once('unexpected-response', (_req, res) => r(res.statusCode ?? 0));
      refused.once('error', () => r(-1));
    });
    expect(status).toBe(503);
    const last = s.upgrades[s.upgrades.length - 1];
    expect(last.status).toMatchObject({ success: false, message: expect.stringMatching(/not started/) });
    // Node reads that socket again: once the peer goes, it closes (not only at the 5 s guard)
    refused.terminate();
    await until(() => (last.nodeSocketClosed ? true : undefined), 2000, "Node's refused socket to close");
    // started again: served again
    expect(s.chat.start()).toMatchObject({ success: true });
    const again = await wsClient(`ws://127.0.0.1:${s.port}/chat`);
    expect((await again.waitGot(1))[0].data.toString()).toBe('welcome to chat');
  });

  test('our client on both paths', async () => {
    const s = await sharedPort();
    for (const p of ['chat', 'feed']) {
      const events = new Collector();
      const c = newClient({ url: `ws://127.0.0.1:${s.port}/${p}`, enableAutomaticReconnection: false, method: events.method });
      const st = await websocketClientStart({ ref: c.ref, timeout: 10 });
      expect(st).toMatchObject({ success: true, http_status: 101 });
      expect((await events.waitType('message')).ctx.data).toBe(`welcome to ${p}`);
      expect(websocketClientSend(c, bytes(100000, 7)).success).toBe(true);
      const echo = await events.waitCount((e) => e.type === 'message', 2, 5000, 'the echo');
      expect(bytes(100000, 7).equals(echo[1].ctx.data)).toBe(true);
      websocketClientStop(c);
      expect((await events.waitType('close')).ctx).toMatchObject({ code: 1000, remote: false });
    }
    const chatClose = await s.chatLog.waitType('close');
    expect(chatClose.ctx).toMatchObject({ code: 1000, remote: true });
    expect((await s.feedLog.waitType('close')).ctx).toMatchObject({ code: 1000, remote: true });
  });

  test("Node's built-in WebSocket (--experimental-websocket, in a child process)", async () => {
    const s = await sharedPort();
    const script = `
      const ws = new WebSocket(process.argv[1]);
      ws.binaryType = 'arraybuffer';
      const got = [];
      ws.onmessage = (e) => {
        got.push(typeof e.data === 'string' ? e.data : [...new Uint8Array(e.data)]);
        if (got.length === 1) { ws.send('from node ✓'); ws.send(new Uint8Array([9, 8, 7])); }
        if (got.length === 3) ws.close(4005, 'node bye');
      };
      ws.onclose = (e) => { console.log(JSON.stringify({ got, code: e.code, wasClean: e.wasClean })); process.exit(0); };
      ws.onerror = (e) => { console.log(JSON.stringify({ error: String(e.message || e.type) })); process.exit(1); };
      setTimeout(() => { console.log(JSON.stringify({ error: 'timeout', got })); process.exit(1); }, 10000);
    `;
    const out = await new Promise<string>((resolve) => {
      const p = spawn(process.execPath, ['--no-warnings', '--experimental-websocket', '-e', script, `ws://127.0.0.1:${s.port}/feed?from=node`], { stdio: ['ignore', 'pipe', 'pipe'] });
      defer(() => p.kill('SIGKILL'));
      let o = '';
      p.stdout.on('data', (d) => (o += d));
      p.stderr.on('data', (d) => (o += d));
      p.on('exit', () => resolve(o));
    });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    expect(r).toEqual({ got: ['welcome to feed', 'from node ✓', [9, 8, 7]], code: 4005, wasClean: true });
    const open = await s.feedLog.waitType('open');
    expect(open.ctx.uri).toBe('/feed?from=node');
    expect((await s.feedLog.waitType('close')).ctx).toEqual({ code: 4005, reason: 'node bye', remote: true });
  });
});

// ------------------------------------------------------------------ bytes sent with the request

describe('the bytes Node read', () => {
  test('frames in the same TCP write as the request reach the server (head), the peer is never sent a FIN by Node', async () => {
    const s = await sharedPort();
    const peer = await RawPeer.connect(s.port);
    const key = crypto.randomBytes(16).toString('base64');
    const frames = [
      encodeFrame({ opcode: OP.text, payload: 'with the request ✓' }),
      encodeFrame({ opcode: OP.binary, payload: bytes(3000, 1) }),
      encodeFrame({ opcode: OP.text, payload: 'part one, ', fin: false }),
    ];
    const tail = encodeFrame({ opcode: OP.cont, payload: 'part two' });
    // one write: request, two messages and the start of a third (cut inside a frame)
    peer.write(Buffer.concat([Buffer.from(upgradeRequest('/chat?quiet', key)), ...frames, tail.subarray(0, 3)]));
    const head = await peer.readHead();
    expect(head.status).toBe(101);
    expect(head.headers['sec-websocket-accept']).toBe(acceptKey(key));
    peer.write(tail.subarray(3));
    const echoes = [await peer.readFrame(), await peer.readFrame(), await peer.readFrame()];
    expect(echoes[0].payload.toString()).toBe('with the request ✓');
    expect(echoes[1].payload.equals(bytes(3000, 1))).toBe(true);
    expect(echoes[2].payload.toString()).toBe('part one, part two');
    // Node did read them: they came to the engine as head
    const u = s.upgrades[0];
    expect(u.head.length).toBe(Buffer.concat(frames).length + 3);

    // Node's socket is gone; the connection stays up, with no FIN, and serves on
    expect(u.nodeSocketClosed).toBe(true);
    await delay(300);
    expect(peer.ended).toBe(false);
    peer.send({ opcode: OP.text, payload: 'later' });
    expect((await peer.readFrame()).payload.toString()).toBe('later');
    peer.send({ opcode: OP.close, payload: Buffer.from([0x03, 0xe8]) });
    const close = await peer.readFrame();
    expect(close.opcode).toBe(OP.close);
    await peer.waitEnd();
    expect((await s.chatLog.waitType('close')).ctx).toMatchObject({ code: 1000, remote: true });
  });

  test('an upgrade handled later (after an await): what Node buffered meanwhile is not lost', async () => {
    const s = await sharedPort();
    s.delayUpgradeMs = 150;
    const peer = await RawPeer.connect(s.port);
    const key = crypto.randomBytes(16).toString('base64');
    peer.write(Buffer.concat([Buffer.from(upgradeRequest('/feed?quiet', key)), encodeFrame({ opcode: OP.text, payload: 'one' })]));
    await delay(40);
    // sent before the handler runs: Node reads it into the socket's buffer
    peer.write(encodeFrame({ opcode: OP.text, payload: 'two' }));
    peer.write(encodeFrame({ opcode: OP.binary, payload: bytes(20000, 2) }));
    expect((await peer.readHead()).status).toBe(101);
    const got = [await peer.readFrame(), await peer.readFrame(), await peer.readFrame()];
    expect(got.map((f) => f.payload.length)).toEqual([3, 3, 20000]);
    expect(got[0].payload.toString()).toBe('one');
    expect(got[1].payload.toString()).toBe('two');
    expect(got[2].payload.equals(bytes(20000, 2))).toBe(true);
    expect(s.upgrades[0].status).toMatchObject({ success: true });
  });
});

// ------------------------------------------------------------------ the engine's handshake

describe("the engine's own handshake rules apply", () => {
  test('a request the engine refuses gets its HTTP error; maxConnections; maxHeaders', async () => {
    const s = await sharedPort({ feed: { maxConnections: 1, maxHeaders: 20 } });
    // no Sec-WebSocket-Key: Node passes any Upgrade request on, the engine answers 400
    const bad = await RawPeer.connect(s.port);
    bad.write('GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n');
    expect((await bad.readHead()).status).toBe(400);
    await bad.waitEnd();

    // maxConnections: 1 on the feed
    const first = await wsClient(`ws://127.0.0.1:${s.port}/feed`);
    const second = new WebSocket(`ws://127.0.0.1:${s.port}/feed`);
    defer(() => second.terminate());
    const st = await new Promise<number>((r) => {
      second.once('unexpected-response', (_q, res) => r(res.statusCode ?? 0));
      second.once('error', () => r(-1));
    });
    expect(st).toBe(503);
    expect((await first.waitGot(1))[0].data.toString()).toBe('welcome to feed');

    // the engine's maxHeaders (20) is below Node's (2000): the engine's limit answers
    const many: Record<string, string> = {};
    for (let i = 0; i < 30; i++) many[`X-Extra-${i}`] = String(i);
    const big = await RawPeer.connect(s.port);
    big.write(upgradeRequest('/feed', crypto.randomBytes(16).toString('base64'), many));
    expect((await big.readHead()).status).toBe(431);
  });
  test('verifyClient and subprotocols decide adopted connections as they do accepted ones', async () => {
    const seen: Array<{ uri: string; origin: string; remoteAddress: string; secure: boolean; protocols: string[] }> = [];
    const s = await sharedPort({
      chat: {
        protocols: ['chat.v2', 'chat.v1'],
        verifyClient: async (info: { uri: string; origin: string; remoteAddress: string; secure: boolean; protocols: string[]; headers: Record<string, string> }) => {
          seen.push({ uri: info.uri, origin: info.origin, remoteAddress: info.remoteAddress, secure: info.secure, protocols: info.protocols });
          await delay(20);  // an answer that takes a while: the adopted handshake waits for it
          if (header(info.headers, 'x-token') !== 'let-me-in') return { accept: false, status: 403, message: 'no token' };
          return { accept: true, headers: { 'X-Verified': 'yes' } };
        },
      },
    });
    const refused = await refusal(`ws://127.0.0.1:${s.port}/chat?who=nobody`);
    expect(refused).toEqual({ status: 403, body: 'no token' });
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/chat?who=me`, ['chat.v1', 'chat.v2'], { headers: { 'X-Token': 'let-me-in' } });
    defer(() => ws.terminate());
    const upgraded = new Promise<string>((r) => ws.once('upgrade', (res) => r(String(res.headers['x-verified']))));
    const got = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('chat.v1');  // the first of the client's offer that the server speaks
    expect(await upgraded).toBe('yes');
    expect(await got).toBe('welcome to chat');
    expect(seen).toEqual([
      { uri: '/chat?who=nobody', origin: '', remoteAddress: '127.0.0.1', secure: false, protocols: [] },
      { uri: '/chat?who=me', origin: '', remoteAddress: '127.0.0.1', secure: false, protocols: ['chat.v1', 'chat.v2'] },
    ]);
    expect(s.chatLog.of('open')).toHaveLength(1);
    expect(s.chatLog.of('open')[0].ctx.protocol).toBe('chat.v1');
  });
  test('maxConnectionsPerAddress counts adopted connections by their peer address', async () => {
    const s = await sharedPort({ feed: { maxConnectionsPerAddress: 1 } });
    const first = await wsClient(`ws://127.0.0.1:${s.port}/feed`);
    expect((await first.waitGot(1))[0].data.toString()).toBe('welcome to feed');
    // a second one from 127.0.0.1: over the limit of its address
    expect((await refusal(`ws://127.0.0.1:${s.port}/feed`)).status).toBe(429);
    // another address (loopback answers all of 127/8) has its own count
    const other = await wsClient(`ws://127.0.0.1:${s.port}/feed`, { localAddress: '127.0.0.2' });
    expect((await other.waitGot(1))[0].data.toString()).toBe('welcome to feed');
    expect(s.feedLog.of('open')).toHaveLength(2);
  });
});

// ------------------------------------------------------------------ descriptors

describe('descriptors', () => {
  test('closing either side leaks no descriptor (Node, engine, client sockets all counted)', async () => {
    const s = await sharedPort();
    // warm up: IO threads, lazily opened things
    const w = await wsClient(`ws://127.0.0.1:${s.port}/chat`);
    await w.waitGot(1);
    w.ws.close();
    await w.closed;
    await until(() => (s.chat.clients().length === 0 ? true : undefined), 5000, 'warm-up closed');
    await delay(100);
    const baseline = fdCount();

    // clients close
    const clients = [];
    for (let i = 0; i < 6; i++) clients.push(await wsClient(`ws://127.0.0.1:${s.port}/${i % 2 ? 'chat' : 'feed'}`));
    for (const c of clients) await c.waitGot(1);
    const peak = fdCount();
    console.log(`[attach] descriptors: ${baseline} before, ${peak} with 6 connections open`);
    // a ws client socket and the engine's duplicate each: Node's own descriptor is closed
    expect(peak).toBe(baseline + 12);
    for (const c of clients) c.ws.close(1000);
    for (const c of clients) await c.closed;
    await until(() => (s.chat.clients().length + websocketServerClients({ ref: s.feed.ref }).length === 0 ? true : undefined), 5000, 'all closed');
    await fdsBackTo(baseline, 'after the clients closed');

    // the servers close (close one, stop the other)
    const more = [];
    for (let i = 0; i < 6; i++) more.push(await wsClient(`ws://127.0.0.1:${s.port}/${i % 2 ? 'chat' : 'feed'}`));
    for (const c of more) await c.waitGot(1);
    await until(() => (s.chat.clients().length === 3 ? true : undefined), 5000, 'three chat connections');
    for (const ref of s.chat.clients()) expect(s.chat.close(ref, 4000, 'server closes')).toBe(true);
    websocketServerStop({ ref: s.feed.ref });
    for (const c of more) expect((await c.closed)[0]).toBeGreaterThanOrEqual(1000);
    await fdsBackTo(baseline, 'after the servers closed');

    // a peer that vanishes without a close frame
    const raws = [];
    for (let i = 0; i < 4; i++) {
      const p = await RawPeer.connect(s.port);
      await p.upgrade('/chat?quiet');
      raws.push(p);
    }
    await until(() => (s.chat.clients().length === 4 ? true : undefined), 5000, 'four raw connections');
    for (const p of raws) p.socket.destroy();
    await until(() => (s.chat.clients().length === 0 ? true : undefined), 5000, 'raw connections gone');
    await fdsBackTo(baseline, 'after peers vanished');
  });
});

// ------------------------------------------------------------------ refusals and misuse

function selfSigned(): { key: string; cert: string } {
  const c = issueCert({ cn: 'localhost', altNames: ['DNS:localhost', 'IP:127.0.0.1'] });
  return { key: c.key, cert: c.cert };
}

/** The status code and body a ws client gets when the upgrade is refused. */
function refusal(url: string, options: WebSocket.ClientOptions = {}): Promise<{ status: number; body: string }> {
  const ws = new WebSocket(url, options);
  defer(() => ws.terminate());
  return new Promise((resolve) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('open', () => resolve({ status: 101, body: '' }));
    ws.once('error', (e) => resolve({ status: -1, body: String(e) }));
  });
}

describe('refusals', () => {
  test('an https.Server socket: success false with what to do instead; the peer gets 501 and the message', async () => {
    const wss = new WebSocketServer({ noServer: true });
    defer(() => wss.clear());
    expect(wss.start()).toMatchObject({ success: true });
    const server = https.createServer(selfSigned());
    const statuses: UpgradeStatus[] = [];
    server.on('upgrade', (req, socket, head) => statuses.push(wss.handleUpgrade(req, socket as net.Socket, head)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    defer(() => new Promise((r) => server.close(() => r(undefined))));
    defer(() => server.closeAllConnections());
    const port = (server.address() as AddressInfo).port;
    const before = fdCount();
    const r = await refusal(`wss://127.0.0.1:${port}/`, { rejectUnauthorized: false });
    expect(r.status).toBe(501);
    expect(statuses).toHaveLength(1);
    expect(statuses[0].success).toBe(false);
    expect(statuses[0].message).toMatch(/encrypted by Node's TLS/);
    expect(statuses[0].message).toMatch(/Terminate TLS in front of Node/);
    expect(statuses[0].message).toMatch(/wss:\/\/ itself on a port of its own/);
    expect(r.body).toContain(statuses[0].message);
    expect(wss.clients()).toEqual([]);
    await fdsBackTo(before, 'after the refused TLS socket');
  });

  test('a pipe (http.Server on a Unix socket) and a socket without a descriptor: success false, 501', async () => {
    const wss = new WebSocketServer({ noServer: true });
    defer(() => wss.clear());
    wss.start();
    const statuses: UpgradeStatus[] = [];
    const onUpgrade = (hideFd: boolean) => (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      // as on a platform whose handles have no descriptor (Windows reports -1)
      if (hideFd) Object.defineProperty((socket as any)._handle, 'fd', { value: -1 });
      statuses.push(wss.handleUpgrade(req, socket, head));
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-attach-'));
    defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    const sock = path.join(dir, 's');
    const pipeServer = http.createServer().on('upgrade', onUpgrade(false));
    await new Promise<void>((r) => pipeServer.listen(sock, () => r()));
    defer(() => new Promise((r) => pipeServer.close(() => r(undefined))));
    const r1 = await refusal('ws+unix://' + sock + ':/chat');
    expect(r1.status).toBe(501);
    expect(statuses[0]).toMatchObject({ success: false, message: expect.stringMatching(/not a TCP socket \(its handle is Pipe\)/) });

    const tcpServer = http.createServer().on('upgrade', onUpgrade(true));
    await new Promise<void>((r) => tcpServer.listen(0, '127.0.0.1', () => r()));
    defer(() => new Promise((r) => tcpServer.close(() => r(undefined))));
    const r2 = await refusal(`ws://127.0.0.1:${(tcpServer.address() as AddressInfo).port}/`);
    expect(r2.status).toBe(501);
    expect(statuses[1]).toMatchObject({ success: false, message: expect.stringMatching(/no file descriptor/) });
    expect(r2.body).toContain('Let ix-websocket listen on a port of its own');
  });

  test('misuse: TypeErrors name the argument; a listening server is refused and the socket stays usable', async () => {
    const listening = new WebSocketServer({ port: 0 });
    defer(() => listening.clear());
    listening.start();
    const wss = new WebSocketServer({ noServer: true });
    defer(() => wss.clear());
    wss.start();
    const errors: unknown[] = [];
    const server = http.createServer();
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      for (const call of [
        () => listening.handleUpgrade(req, socket, head),
        () => wss.handleUpgrade(req, {} as net.Socket, head),
        () => wss.handleUpgrade({} as http.IncomingMessage, socket, head),
        () => wss.handleUpgrade(req, socket, 'head' as unknown as Buffer),
        () => websocketServerHandleUpgrade(null as unknown as ServerObject, req, socket, head),
      ]) {
        try {
          call();
          errors.push('no error');
        } catch (e) {
          errors.push(e);
        }
      }
      // after all that, the socket is still Node's and works
      socket.end('HTTP/1.1 418 I am a teapot\r\nContent-Length: 0\r\n\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    defer(() => new Promise((r) => server.close(() => r(undefined))));
    defer(() => server.closeAllConnections());
    const r = await refusal(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    expect(r.status).toBe(418);
    expect(errors.map((e) => (e instanceof TypeError ? e.message : `not a TypeError: ${e}`))).toEqual([
      expect.stringMatching(/^server: handleUpgrade needs a server created with noServer: true/),
      expect.stringMatching(/^socket must be/),
      expect.stringMatching(/^req must be/),
      expect.stringMatching(/^head must be/),
      expect.stringMatching(/^server must be/),
    ]);
  });

  test('noServer with tls is refused at start; a noServer start binds nothing', async () => {
    const s = websocketServer({ noServer: true, port: 0, tls: { cert: 'x', key: 'y' } });
    defer(() => newServer().ref);
    const st = websocketServerStart(s);
    expect(st.success).toBe(false);
    expect(st.message).toMatch(/tls does not apply/);
    const ok = newServer({ noServer: true, port: 0 });
    expect(websocketServerStart(ok)).toMatchObject({ success: true, port: 0 });
    expect(websocketServerStart(ok)).toMatchObject({ success: false, message: 'Server is already running' });
  });
});

// ------------------------------------------------------------------ the README example

describe('README', () => {
  test('"Attach to an existing server": the example runs as written', async () => {
    const code = readmeSample('Attach to an existing server', 'js');
    expect(code).toContain("require('ix-websocket')");
    const out = path.join(root, 'build-attach-readme');
    compilePackage(out);
    const file = path.join(out, 'example.js');
    fs.writeFileSync(file, code.replace("require('ix-websocket')", `require(${JSON.stringify(path.join(out, 'lib', 'index.js'))})`));
    const p = spawn(process.execPath, [file], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    defer(() => p.kill('SIGKILL'));
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    const port = Number((await until(() => /listening on port (\d+)/.exec(output)?.[1], 10000, `the example's port (output: ${output})`)));
    expect((await get(port, '/')).body).toBe('hello over HTTP\n');
    const c = await wsClient(`ws://127.0.0.1:${port}/chat`);
    expect((await c.waitGot(1))[0].data.toString()).toBe('welcome to /chat');
    c.ws.send('hi all');
    expect((await c.waitGot(2))[1].data.toString()).toBe('hi all');
    expect((await refusal(`ws://127.0.0.1:${port}/elsewhere`)).status).toBe(404);
  }, 120_000);
});

// ------------------------------------------------------------------ Python and Chromium

describeWithPeers([peers.python()], 'Python websockets through the shared port', (found) => {
  test('python client ↔ /chat and /feed', async () => {
    const s = await sharedPort();
    for (const p of ['chat', 'feed']) {
      const out = await new Promise<{ code: number | null; lines: string[]; err: string }>((resolve) => {
        const py = spawn(found.python!.exe, [path.join(PEERS, 'py_client.py'), `ws://127.0.0.1:${s.port}/${p}?side=py`, '--compression', 'on', '--close-code', '4003', '--close-reason', 'py bye', '--expect-greeting'], { stdio: ['ignore', 'pipe', 'pipe'], env: peerEnv() });
        defer(() => py.kill('SIGKILL'));
        let o = '';
        let e = '';
        py.stdout.on('data', (d) => (o += d));
        py.stderr.on('data', (d) => (e += d));
        py.on('exit', (code) => resolve({ code, lines: o.split('\n'), err: e }));
      });
      const line = out.lines.find((l) => l.startsWith('{'));
      expect(line, out.err).toBeDefined();
      expect(JSON.parse(line!), out.err).toMatchObject({ ok: true, greeting: `welcome to ${p}`, pong: true, close_code: 4003 });
      expect(JSON.parse(line!).extensions).toMatch(/permessage-deflate/);
      expect(out.code).toBe(0);
    }
    expect((await s.chatLog.waitType('close')).ctx).toEqual({ code: 4003, reason: 'py bye', remote: true });
    expect((await s.feedLog.waitType('close')).ctx).toEqual({ code: 4003, reason: 'py bye', remote: true });
    expect(s.chatLog.of('message').map((m) => m.ctx.binary)).toEqual([false, false, true, true]);
  }, 60000);
});

describeWithPeers([peers.chromium()], 'Chromium through the shared port', (found) => {
  test('the page and its WebSocket on one port', async () => {
    const s = await sharedPort();
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-chromium-'));
    defer(() => fs.rmSync(profile, { recursive: true, force: true }));
    // the page comes from the HTTP route; it opens ws://127.0.0.1:<same port>/browser
    const browser = spawn(found.chromium!.exe, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic',
      `--user-data-dir=${profile}`, `http://127.0.0.1:${s.port}/?port=${s.port}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: peerEnv() });
    let stderr = '';
    browser.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
    const exited = new Promise<number | null>((r) => browser.once('exit', (code) => r(code)));
    defer(async () => {
      try {
        process.kill(-browser.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      await Promise.race([exited, delay(3000)]);
    });
    const r = await Promise.race([
      s.pageResult,
      exited.then((code) => ({ ok: false, error: `chromium exited (${code}) first: ${stderr}` })),
      delay(45000).then(() => ({ ok: false, error: `no result within 45 s: ${stderr}` })),
    ]);
    expect(r.error).toBeUndefined();
    expect(r).toMatchObject({ ok: true, greeting: 'welcome, browser ✓', greetingBinary: [0, 1, 2, 253, 254, 255], close: { code: 4001, wasClean: true } });
    expect(r.extensions).toMatch(/permessage-deflate/);
    // the page and its result went to the HTTP route (and perhaps a favicon); the upgrade did not
    expect(s.httpRequests).toEqual(expect.arrayContaining([`GET /?port=${s.port}`, 'POST /result']));
    expect(s.httpRequests.filter((r) => r.includes('/browser'))).toEqual([]);
    const open = await s.chatLog.waitType('open');
    expect(open.ctx.uri).toBe('/browser?from=chromium');
    expect(String(header(open.ctx.headers, 'origin'))).toBe(`http://127.0.0.1:${s.port}`);
    expect((await s.chatLog.waitType('close')).ctx).toEqual({ code: 4001, reason: 'browser bye ✓', remote: true });
  }, 60000);
});
