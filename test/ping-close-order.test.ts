// Manual pings, and the order of replies and the close handshake.
//
// Close order: a peer that sends messages and then its close frame must get
// the replies the application sends from those messages' handlers before our
// close reply (after which nothing may be sent, RFC 6455 §5.5.1). The engine
// reads the close on its IO thread long before JavaScript has run the
// handlers; the reply waits until delivery has handled the events before the
// close (at most the close timeout). A CLI run found 6 of 40 echoes reaching
// the peer where `ws` sends all 40.
import WebSocket from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import {
  WebSocketClient,
  WebSocketServer,
  websocketClientPing,
  websocketClientSend,
  websocketClientStart,
  websocketServerPing,
} from '../lib/index';
import type * as net from 'net';
import { Collector, OP, RawPeer, closePayload, connectClient, decodeFrames, defer, encodeFrame, newClient, rawServer, runCleanup, startEchoServer, until } from './support';
import type { RawFrame } from './support';

afterEach(runCleanup);

const echoServer = () => startEchoServer();

/** Calls onFrame with each frame our client writes on `sock` (unmasked). */
function onClientFrames(sock: net.Socket, onFrame: (f: RawFrame) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    const { frames, rest } = decodeFrames(Buffer.concat([buf, d]));
    buf = rest;
    frames.forEach(onFrame);
  });
}

describe('close reply after the replies to the messages before the close', () => {
  test('40 messages and a close in one write: all 40 echoes precede our close reply (raw client)', async () => {
    const srv = echoServer();
    const p = await RawPeer.connect(srv.port);
    await p.upgrade('/');
    const frames: Buffer[] = [];
    for (let i = 0; i < 40; i++) frames.push(encodeFrame({ opcode: OP.text, payload: `m${i}` }));
    frames.push(encodeFrame({ opcode: OP.close, payload: closePayload(1000, 'done') }));
    p.write(Buffer.concat(frames));
    const { before, code } = await p.readUntilClose(5000);
    expect(code).toBe(1000);
    expect(before.map((f) => f.payload.toString())).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`));
    await p.waitEnd(5000);
    // the close event comes after every message event
    const close = await srv.events.waitType('close');
    expect(close.ctx).toEqual({ code: 1000, reason: 'done', remote: true });
    expect(srv.events.events.map((e) => e.type)).toEqual(['open', ...Array(40).fill('message'), 'close']);
  });

  test('a ws client sending 40 messages then closing gets 40 echoes', async () => {
    const srv = echoServer();
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`);
    defer(() => ws.terminate());
    const got: string[] = [];
    ws.on('message', (d) => got.push(String(d)));
    await new Promise<void>((r, j) => {
      ws.once('open', () => r());
      ws.once('error', j);
    });
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    for (let i = 0; i < 40; i++) ws.send(`w${i}`);
    ws.close(1000);
    expect(await closed).toBe(1000);
    expect(got).toHaveLength(40);
    expect(got[39]).toBe('w39');
  });

  test('our client answers messages then a close from the server: its replies precede its close reply', async () => {
    const seen: Buffer[] = [];
    let done: (v: number) => void = () => undefined;
    const closeCode = new Promise<number>((r) => (done = r));
    const { port } = await rawServer((sock) => {
      const frames: Buffer[] = [];
      for (let i = 0; i < 30; i++) frames.push(encodeFrame({ opcode: OP.text, payload: `s${i}`, mask: false }));
      frames.push(encodeFrame({ opcode: OP.close, payload: closePayload(4000, 'bye'), mask: false }));
      sock.write(Buffer.concat(frames));
      onClientFrames(sock, (f) => {
        if (f.opcode === OP.close) {
          done(f.payload.readUInt16BE(0));
          sock.end();
        } else seen.push(f.payload);
      });
    });
    let ref = 0;
    const events = new Collector();
    const c = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      disablePerMessageDeflate: true,
      method: (server, client, type, ctx, ...rest) => {
        events.method(server, client, type, ctx, ...rest);
        if (type === 'message') websocketClientSend({ ref }, `re:${ctx.data}`);
      },
    });
    ref = c.ref;
    expect((await websocketClientStart({ ref, timeout: 5 })).success).toBe(true);
    expect(await closeCode).toBe(4000);
    expect(seen.map(String)).toEqual(Array.from({ length: 30 }, (_, i) => `re:s${i}`));
    expect((await events.waitType('close')).ctx).toMatchObject({ code: 4000, remote: true });
  });
});

// RFC 6455 §5.5.1: an endpoint that receives a close frame MUST send one
// back. A peer may send its close frame and its FIN in one go (a half-close:
// it still reads); the reply used to wait for JavaScript, and the FIN closed
// the socket first: the peer got nothing.
describe('a close frame followed at once by the FIN still gets its reply', () => {
  test('our client: the reply goes out on the half-closed socket', async () => {
    let done: (v: number) => void = () => undefined;
    const replied = new Promise<number>((r) => (done = r));
    const { port } = await rawServer((sock) => {
      // One write: 20 messages, the close frame, then the FIN.
      const frames: Buffer[] = [];
      for (let i = 0; i < 20; i++) frames.push(encodeFrame({ opcode: OP.text, payload: `s${i}`, mask: false }));
      frames.push(encodeFrame({ opcode: OP.close, payload: closePayload(4001, 'ending'), mask: false }));
      sock.end(Buffer.concat(frames));
      onClientFrames(sock, (f) => {
        if (f.opcode === OP.close) done(f.payload.readUInt16BE(0));
      });
      sock.on('end', () => done(-1));
    });
    const events = new Collector();
    const c = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false, method: events.method });
    expect((await websocketClientStart({ ref: c.ref, timeout: 5 })).success).toBe(true);
    expect(await replied).toBe(4001);
    expect((await events.waitType('close')).ctx).toMatchObject({ code: 4001, reason: 'ending', remote: true });
    expect(events.events.filter((e) => e.type === 'message')).toHaveLength(20);
  });

  test('our server: the same from a raw client', async () => {
    const srv = echoServer();
    const p = await RawPeer.connect(srv.port);
    await p.upgrade('/');
    p.socket.end(encodeFrame({ opcode: OP.close, payload: closePayload(1000, 'bye') }));
    const { code } = await p.readUntilClose(5000);
    expect(code).toBe(1000);
    await p.waitEnd(5000);
    expect((await srv.events.waitType('close')).ctx).toEqual({ code: 1000, reason: 'bye', remote: true });
  });
});

describe('manual ping', () => {
  test('client ping: the server sees the ping, the client the pong (class and function API)', async () => {
    const srv = echoServer();
    const client = new WebSocketClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false });
    defer(() => client.clear());
    const pongs: Array<{ data: unknown; binary: boolean }> = [];
    client.on('pong', (ctx) => pongs.push(ctx));
    expect(client.ping()).toBe(false); // not started
    expect((await client.start()).success).toBe(true);
    expect(client.ping('are you there')).toBe(true);
    expect(client.ping()).toBe(true);
    expect(websocketClientPing({ ref: client.handle }, Buffer.from([0xff, 0x00]))).toBe(true);
    await until(() => (pongs.length === 3 ? true : undefined), 3000, 'three pongs');
    expect(pongs[0]).toMatchObject({ data: 'are you there', binary: false });
    expect(pongs[1]).toMatchObject({ data: '', binary: false });
    expect(pongs[2].binary).toBe(true);
    expect(Buffer.from(pongs[2].data as Buffer)).toEqual(Buffer.from([0xff, 0x00]));
    const pings = await srv.events.waitCount((e) => e.type === 'ping', 3);
    expect(pings[0].ctx.data).toBe('are you there');
    expect(() => client.ping('x'.repeat(126))).toThrow(TypeError);
    expect(() => client.ping('x'.repeat(126))).toThrow(/^data must be at most 125 bytes \(a ping's payload\), got 126$/);
    expect(() => client.ping(42 as never)).toThrow(/data must be a string, Buffer/);
    expect(client.ping('y'.repeat(125))).toBe(true);
    client.stop();
    expect(client.ping('late')).toBe(false);
  });

  test('server ping to one connection: its pong arrives as the server pong event; ws answers too', async () => {
    const server = new WebSocketServer({ port: 0 });
    defer(() => server.clear());
    const pongs: Array<[number, unknown]> = [];
    server.on('pong', (c, ctx) => pongs.push([c, ctx.data]));
    expect(server.start().success).toBe(true);
    const srv = { server: server.object, port: server.port, events: new Collector() };
    server.on('open', (c, ctx) => srv.events.method(server.handle, c, 'open', ctx, undefined, undefined, undefined));
    const a = await connectClient(srv as never);
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    defer(() => ws.terminate());
    const wsPing = new Promise<string>((r) => ws.once('ping', (d) => r(String(d))));
    await until(() => (server.clients().length === 2 ? true : undefined), 3000, 'two connections');
    const b = server.clients().find((x) => x !== a.conn)!;
    expect(server.ping(a.conn, 'to a')).toBe(true);
    expect(websocketServerPing({ ref: server.handle }, b, 'to ws')).toBe(true);
    expect(await wsPing).toBe('to ws');
    await until(() => (pongs.length === 2 ? true : undefined), 3000, 'two pongs');
    expect(pongs).toContainEqual([a.conn, 'to a']);
    expect(pongs).toContainEqual([b, 'to ws']);
    expect((await a.events.waitType('ping')).ctx.data).toBe('to a');
    expect(server.ping(99, 'nobody')).toBe(false);
    expect(() => server.ping(a.conn, Buffer.alloc(126))).toThrow(/at most 125 bytes/);
    expect(() => server.ping('1' as never)).toThrow(/client must be an integer/);
  });
});

describe('a close the peer never answers (RFC 6455 7.1.5: no close frame received is 1006)', () => {
  test('client: stop() against a server that stopped reading reports 1006 "Close handshake timed out", not the code it sent', async () => {
    const { port } = await rawServer((sock) => sock.pause()); // answers the upgrade, then reads nothing
    const cli = new WebSocketClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false });
    defer(() => cli.clear());
    expect((await cli.start()).success).toBe(true);
    const closes: Array<{ code: number; reason: string; remote: boolean }> = [];
    cli.on('close', (ctx) => closes.push(ctx));
    for (let i = 0; i < 16; i++) cli.send(Buffer.alloc(1 << 20)); // more than the socket buffers take
    cli.stop();
    await until(() => (closes.length === 1 ? true : undefined), 10_000, 'the close');
    expect(closes[0]).toEqual({ code: 1006, reason: 'Close handshake timed out', remote: false });
  }, 20_000);

  test('server: a close to a client that stopped reading reports 1006 too; one the peer answered keeps its code', async () => {
    const server = new WebSocketServer({ port: 0 });
    defer(() => server.clear());
    expect(server.start().success).toBe(true);
    const opens: number[] = [];
    const closes = new Map<number, { code: number; reason: string; remote: boolean }>();
    server.on('open', (client) => opens.push(client));
    server.on('close', (client, ctx) => closes.set(client, ctx));
    const deaf = await RawPeer.connect(server.port);
    await deaf.upgrade('/');
    deaf.socket.pause();
    await until(() => (opens.length === 1 ? true : undefined), 5000, 'the open');
    for (let i = 0; i < 16; i++) server.send(Buffer.alloc(1 << 20), { clients: [opens[0]] });
    expect(server.close(opens[0], 4000, 'bye')).toBe(true);
    await until(() => closes.get(opens[0]), 10_000, 'the close');
    expect(closes.get(opens[0])).toEqual({ code: 1006, reason: 'Close handshake timed out', remote: false });
    // A peer that reads answers, and the close keeps the code sent (refs are reused: 1 again).
    closes.clear();
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    defer(() => ws.terminate());
    await until(() => (opens.length === 2 ? true : undefined), 5000, 'the second open');
    expect(server.close(opens[1], 4001, 'bye')).toBe(true);
    await until(() => closes.get(opens[1]), 10_000, 'the second close');
    expect(closes.get(opens[1])).toMatchObject({ code: 4001, remote: false });
  }, 20_000);
});
