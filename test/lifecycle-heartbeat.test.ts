// Heartbeat seen from JavaScript: pingInterval sends pings, pingTimeout closes a
// connection whose peer stops answering (1011 "Ping timeout"), a live peer is
// kept, and enablePong: false is visible from a `ws` peer. Client and server.
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { websocketClientSend, websocketClientStart } from '../lib/index';
import {
  Collector,
  RawPeer,
  decodeFrames,
  defer,
  delay,
  encodeFrame,
  newClient,
  rawServer,
  runCleanup,
  startServer,
  until,
} from './support';

afterEach(runCleanup);

/**
 * A raw server that completes the opening handshake and then never writes
 * again (no pong, no close reply): a peer that has stopped answering.
 */
async function silentServer(): Promise<{ port: number; pings: () => number; conns: () => number; ended: () => number }> {
  let pings = 0;
  let conns = 0;
  let ended = 0;
  const { port, server } = await rawServer((s, rest) => {
    let buf = rest;
    const count = () => {
      const { frames, rest: left } = decodeFrames(buf);
      buf = left;
      for (const f of frames) if (f.opcode === 0x9 && f.payload.toString() === 'ixwebsocket::heartbeat') pings++;
    };
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      count();
    });
    count();
  });
  server.on('connection', (s: net.Socket) => {
    conns++;
    s.on('close', () => ended++);
  });
  return { port, pings: () => pings, conns: () => conns, ended: () => ended };
}

async function wsServer(opts: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<{ wss: WebSocketServer; port: number }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...opts });
  await new Promise<void>((r) => wss.once('listening', r));
  defer(() => {
    for (const c of wss.clients) c.terminate();
    return new Promise((r) => wss.close(() => r(undefined)));
  });
  return { wss, port: (wss.address() as net.AddressInfo).port };
}

describe('client heartbeat', () => {
  test('a peer that stops answering is detected within pingInterval + pingTimeout (1011 Ping timeout)', async () => {
    const peer = await silentServer();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${peer.port}/`,
      enableAutomaticReconnection: false,
      pingInterval: 1,
      pingTimeout: 1,
      method: ev.method,
    });
    // The heartbeat starts at the open, after tStart and before the open
    // reaches JavaScript (t0): tStart bounds the wait from below, t0 from above.
    const tStart = Date.now();
    expect((await websocketClientStart(client)).success).toBe(true);
    await ev.waitType('open');
    const t0 = Date.now();
    const close = await ev.waitType('close', undefined, 5000);
    const ms = Date.now() - t0;
    console.log(`client ping timeout detected after ${ms} ms (interval 1 s + timeout 1 s)`);
    expect(close.ctx.code).toBe(1011);
    expect(close.ctx.reason).toBe('Ping timeout');
    expect(close.ctx.remote).toBe(false);
    expect(Date.now() - tStart).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(2000 + 600);
    expect(peer.pings()).toBe(1);
    // The socket is gone too.
    await until(() => (peer.ended() === 1 ? true : undefined), 2000, 'the TCP connection to close');
  });

  test('with reconnection on, a ping timeout is followed by a new connection', async () => {
    const peer = await silentServer();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${peer.port}/`,
      pingInterval: 1,
      pingTimeout: 1,
      minWaitBetweenReconnectionRetries: 10,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    await ev.waitType('open');
    await ev.waitType('close', undefined, 5000);
    const opens = await ev.waitCount((e) => e.type === 'open', 2, 3000, 'opens');
    expect(opens).toHaveLength(2);
    expect(peer.conns()).toBe(2);
  });

  test('a ws server without autoPong is detected; with autoPong the connection is kept', async () => {
    const mute = await wsServer({ autoPong: false });
    const talk = await wsServer();
    let pingsSeen = 0;
    mute.wss.on('connection', (s) => s.on('ping', () => pingsSeen++));
    const evMute = new Collector();
    const evTalk = new Collector();
    const common = { enableAutomaticReconnection: false, pingInterval: 1, pingTimeout: 1 };
    const cMute = newClient({ url: `ws://127.0.0.1:${mute.port}/`, ...common, method: evMute.method });
    const cTalk = newClient({ url: `ws://127.0.0.1:${talk.port}/`, ...common, method: evTalk.method });
    expect((await websocketClientStart(cMute)).success).toBe(true);
    expect((await websocketClientStart(cTalk)).success).toBe(true);
    const t0 = Date.now();
    const close = await evMute.waitType('close', undefined, 5000);
    const ms = Date.now() - t0;
    console.log(`ping timeout against ws {autoPong:false} after ${ms} ms`);
    expect(close.ctx.code).toBe(1011);
    expect(close.ctx.reason).toBe('Ping timeout');
    expect(ms).toBeLessThan(2000 + 600);
    expect(pingsSeen).toBe(1);
    // The answering peer: several intervals later still open, pongs received.
    await delay(1500);
    expect(evTalk.of('close').map((e) => e.ctx)).toEqual([]);
    expect(evTalk.of('pong').length).toBeGreaterThanOrEqual(2);
    expect(evTalk.of('pong')[0].ctx.data).toBe('ixwebsocket::heartbeat');
    expect(websocketClientSend(cTalk, 'still here').success).toBe(true);
  });

  test('pingTimeout longer than pingInterval: the oldest unanswered ping is timed, answered pings keep it open', async () => {
    const silent = await silentServer();
    const talk = await wsServer();
    const evSilent = new Collector();
    const evTalk = new Collector();
    const common = { enableAutomaticReconnection: false, pingInterval: 1, pingTimeout: 2 };
    const cSilent = newClient({ url: `ws://127.0.0.1:${silent.port}/`, ...common, method: evSilent.method });
    const cTalk = newClient({ url: `ws://127.0.0.1:${talk.port}/`, ...common, method: evTalk.method });
    // cSilent's heartbeat starts at its open, after tStart (the lower bound)
    // and before t0 (the upper bound; cTalk's start comes in between).
    const tStart = Date.now();
    expect((await websocketClientStart(cSilent)).success).toBe(true);
    expect((await websocketClientStart(cTalk)).success).toBe(true);
    const t0 = Date.now();
    const close = await evSilent.waitType('close', undefined, 6000);
    const ms = Date.now() - t0;
    console.log(`interval 1 s, timeout 2 s: silent peer detected after ${ms} ms`);
    expect(close.ctx.code).toBe(1011);
    // first ping at 1 s, unanswered until 1 + 2 s; later pings must not extend it
    expect(Date.now() - tStart).toBeGreaterThanOrEqual(2900);
    expect(ms).toBeLessThan(3000 + 600);
    expect(silent.pings()).toBeGreaterThanOrEqual(2);
    await delay(1000);
    expect(evTalk.of('close').map((e) => e.ctx)).toEqual([]);
    expect(evTalk.of('pong').length).toBeGreaterThanOrEqual(3);
  });

  test('incoming data counts as traffic: a peer that sends messages but no pongs is kept', async () => {
    const { wss, port } = await wsServer({ autoPong: false });
    wss.on('connection', (s) => {
      const t = setInterval(() => s.send('tick'), 200);
      s.on('close', () => clearInterval(t));
    });
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      pingInterval: 1,
      pingTimeout: 1,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    await delay(3200);
    expect(ev.of('close')).toHaveLength(0);
    expect(ev.of('pong')).toHaveLength(0);
    expect(ev.of('message').length).toBeGreaterThan(8);
  });
});

describe('enablePong', () => {
  test('enablePong: false — a ws peer pings, gets no pong; the ping event still arrives', async () => {
    const { wss, port } = await wsServer();
    const pongs: string[] = [];
    const peerReady = new Promise<WebSocket>((r) => wss.once('connection', r));
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      enablePong: false,
      method: ev.method,
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    const peer = await peerReady;
    peer.on('pong', (d) => pongs.push(d.toString()));
    peer.ping('are you there');
    const ping = await ev.waitType('ping', undefined, 3000);
    expect(ping.ctx.data).toBe('are you there');
    // A round trip after the ping: anything a pong would have preceded is here.
    const echoed = new Promise<string>((r) => peer.once('message', (m) => r(m.toString())));
    websocketClientSend(client, 'after ping');
    expect(await echoed).toBe('after ping');
    await delay(300);
    expect(pongs).toEqual([]);
  });

  test('enablePong default — the same ping is answered with its payload', async () => {
    const { wss, port } = await wsServer();
    const peerReady = new Promise<WebSocket>((r) => wss.once('connection', r));
    const ev = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false, method: ev.method });
    expect((await websocketClientStart(client)).success).toBe(true);
    const peer = await peerReady;
    const pong = new Promise<string>((r) => peer.once('pong', (d) => r(d.toString())));
    peer.ping('are you there');
    expect(await pong).toBe('are you there');
    expect((await ev.waitType('ping')).ctx.data).toBe('are you there');
  });

  test('server enablePong: false — a ws client pings, gets no pong; the server sees the ping', async () => {
    const srv = startServer({ enablePong: false });
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`);
    defer(() => ws.terminate());
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    const pongs: string[] = [];
    ws.on('pong', (d) => pongs.push(d.toString()));
    ws.ping('server?');
    const ping = await srv.events.waitType('ping', undefined, 3000);
    expect(ping.ctx.data).toBe('server?');
    const echoed = new Promise<string>((r) => ws.once('message', (m) => r(m.toString())));
    // A round trip through the server proves the ping was read long ago.
    const { websocketServerSend } = await import('../lib/index');
    websocketServerSend(srv.server, 'hello');
    expect(await echoed).toBe('hello');
    await delay(300);
    expect(pongs).toEqual([]);
  });
});

describe('server heartbeat', () => {
  test('a raw client that stops answering is closed by the server within pingInterval + pingTimeout', async () => {
    const srv = startServer({ pingInterval: 1, pingTimeout: 1 });
    const peer = await RawPeer.connect(srv.port);
    // The heartbeat starts when the server answers the upgrade: after tStart
    // (lower bounds), before the open reaches JavaScript (t0, upper bound).
    const tStart = Date.now();
    await peer.upgrade();
    const open = await srv.events.waitType('open');
    const t0 = Date.now();
    const ping = await peer.readFrame(3000);
    const tPing = Date.now();
    expect(ping.opcode).toBe(0x9);
    expect(ping.masked).toBe(false);
    expect(ping.payload.toString()).toBe('ixwebsocket::heartbeat');
    const close = await srv.events.waitType('close', open.client, 4000);
    const ms = Date.now() - t0;
    console.log(`server ping timeout detected ${ms} ms after open, ${Date.now() - tPing} ms after the ping`);
    expect(close.ctx.code).toBe(1011);
    expect(close.ctx.reason).toBe('Ping timeout');
    expect(tPing - tStart).toBeGreaterThanOrEqual(900);
    expect(Date.now() - tStart).toBeGreaterThanOrEqual(1900);
    expect(ms).toBeLessThan(2000 + 600);
    await peer.waitEnd(2000);
  });

  test('a raw client that answers with pongs is kept', async () => {
    const srv = startServer({ pingInterval: 1, pingTimeout: 1 });
    const peer = await RawPeer.connect(srv.port);
    await peer.upgrade();
    const open = await srv.events.waitType('open');
    for (let i = 0; i < 3; i++) {
      const ping = await peer.readFrame(3000);
      expect(ping.opcode).toBe(0x9);
      peer.write(encodeFrame({ opcode: 0xa, payload: ping.payload }));
    }
    // The third pong is read on the server's IO thread: wait for its event.
    await srv.events.waitCount((e) => e.type === 'pong' && e.client === open.client, 3, 3000, 'pongs');
    await delay(200);
    expect(srv.events.of('close', open.client)).toHaveLength(0);
    expect(srv.events.of('pong', open.client).length).toBe(3);
    expect(peer.ended).toBe(false);
  });
});
