// Every event type with every context field of the seed, on both sides.
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServerSend,
} from '../lib/index';
import { binding } from '../lib/binding';
import {
  Collector,
  RawPeer,
  closedPort,
  closePayload,
  connectClient,
  defer,
  delay,
  header,
  newClient,
  runCleanup,
  startServer,
} from './support';

afterEach(runCleanup);

function expectDataContext(ctx: any, data: string | Buffer, wireSize?: number) {
  expect(Object.keys(ctx).sort()).toEqual(expect.arrayContaining(['binary', 'data', 'wireSize']));
  expect(typeof ctx.wireSize).toBe('number');
  if (typeof data === 'string') {
    expect(ctx.binary).toBe(false);
    expect(typeof ctx.data).toBe('string');
    expect(ctx.data).toBe(data);
  } else {
    expect(ctx.binary).toBe(true);
    expect(Buffer.isBuffer(ctx.data)).toBe(true);
    expect(Buffer.compare(ctx.data, data)).toBe(0);
  }
  if (wireSize !== undefined) expect(ctx.wireSize).toBe(wireSize);
}

describe('open', () => {
  test('server side: uri is the request target; request headers as headers and as pairs', async () => {
    const srv = startServer();
    const conn = await connectClient(srv, { headers: { 'X-Test-Header': 'hello 1' } }, '/chat/room?id=7');
    const ev = srv.events.of('open')[0];
    expect(ev.server).toBe(srv.server.ref);
    expect(ev.client).toBe(conn.conn);
    expect(ev.ctx.uri).toBe('/chat/room?id=7');
    expect(typeof ev.ctx.headers).toBe('object');
    expect(header(ev.ctx.headers, 'x-test-header')).toBe('hello 1');
    expect(header(ev.ctx.headers, 'sec-websocket-version')).toBe('13');
    expect(String(header(ev.ctx.headers, 'upgrade'))).toMatch(/^websocket$/i);
    // the seed: "Headers are added as key value pair" on the context itself
    expect(header(ev.ctx, 'x-test-header')).toBe('hello 1');
  });

  test('client side: uri is the url; response headers', async () => {
    const srv = startServer();
    const conn = await connectClient(srv, {}, '/p?x=y');
    const ev = conn.events.of('open')[0];
    expect(ev.server).toBe(0);
    expect(ev.client).toBe(conn.client.ref);
    expect(ev.ctx.uri).toBe(`ws://127.0.0.1:${srv.port}/p?x=y`);
    expect(String(header(ev.ctx.headers, 'upgrade'))).toMatch(/^websocket$/i);
    expect(typeof header(ev.ctx.headers, 'sec-websocket-accept')).toBe('string');
    expect(header(ev.ctx, 'sec-websocket-accept')).toBe(header(ev.ctx.headers, 'sec-websocket-accept'));
  });
});

describe('message', () => {
  test('text and binary in both directions with wireSize, binary, data', async () => {
    const srv = startServer();
    const conn = await connectClient(srv);
    const bin = Buffer.from([0, 1, 2, 250, 255]);
    expect(websocketClientSend(conn.client, 'client text ✓').success).toBe(true);
    expect(websocketClientSend(conn.client, bin).success).toBe(true);
    const [m1, m2] = await srv.events.waitCount((e) => e.type === 'message', 2);
    expectDataContext(m1.ctx, 'client text ✓', Buffer.byteLength('client text ✓'));
    expectDataContext(m2.ctx, bin, 5);
    expect(m1.client).toBe(conn.conn);

    websocketServerSend(srv.server, 'server text ✓');
    websocketServerSend(srv.server, bin);
    const [c1, c2] = await conn.events.waitCount((e) => e.type === 'message', 2);
    expectDataContext(c1.ctx, 'server text ✓', Buffer.byteLength('server text ✓'));
    expectDataContext(c2.ctx, bin, 5);
  });

  test('wireSize is the compressed size with permessage-deflate and the full size without', async () => {
    const big = 'compressible '.repeat(1000);
    const srv = startServer();
    const deflated = await connectClient(srv);
    const st = websocketClientSend(deflated.client, big);
    expect(st.payloadSize).toBe(big.length);
    expect(st.wireSize).toBeLessThan(big.length / 4);
    const m = await srv.events.waitFor((e) => e.type === 'message' && e.client === deflated.conn);
    expectDataContext(m.ctx, big);
    expect(m.ctx.wireSize).toBe(st.wireSize);

    const plain = await connectClient(srv, { disablePerMessageDeflate: true });
    const st2 = websocketClientSend(plain.client, big);
    expect(st2).toMatchObject({ payloadSize: big.length, wireSize: big.length });
    const m2 = await srv.events.waitFor((e) => e.type === 'message' && e.client === plain.conn);
    expectDataContext(m2.ctx, big, big.length);
  });
});

describe('ping and pong', () => {
  test('heartbeat: server pings, the client gets ping and answers, the server gets the pong', async () => {
    const srv = startServer({ pingInterval: 1 });
    const conn = await connectClient(srv);
    const ping = await conn.events.waitType('ping', undefined, 4000);
    const pong = await srv.events.waitType('pong', conn.conn, 4000);
    expect(ping.server).toBe(0);
    expect(pong.server).toBe(srv.server.ref);
    expectDataContext(ping.ctx, ping.ctx.data, Buffer.byteLength(ping.ctx.data));
    // a pong carries the ping's application data back
    expectDataContext(pong.ctx, ping.ctx.data, ping.ctx.wireSize);
  });

  test('a raw ping gets a ping event and a pong with the same payload; a raw pong gets a pong event', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/raw');
    const open = await srv.events.waitType('open');
    raw.send({ opcode: 0x9, payload: 'are you there' });
    const pongFrame = await raw.readFrame();
    expect(pongFrame).toMatchObject({ opcode: 0xa, fin: true, masked: false });
    expect(pongFrame.payload.toString()).toBe('are you there');
    const ping = await srv.events.waitType('ping', open.client);
    expectDataContext(ping.ctx, 'are you there', 13);

    raw.send({ opcode: 0xa, payload: 'unsolicited' });
    const pong = await srv.events.waitType('pong', open.client);
    expectDataContext(pong.ctx, 'unsolicited', 11);
  });

  test('a ping or pong whose payload is not UTF-8 comes as a Buffer flagged binary; text fragments hold whole code points', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/raw');
    const open = await srv.events.waitType('open');
    const notUtf8 = Buffer.from([0xff, 0x00, 0xc3]);
    raw.send({ opcode: 0x9, payload: notUtf8 });
    raw.send({ opcode: 0xa, payload: notUtf8 });
    const ping = await srv.events.waitType('ping', open.client);
    const pong = await srv.events.waitType('pong', open.client);
    for (const ev of [ping, pong]) {
      expect(ev.ctx.binary).toBe(true);
      expect(Buffer.isBuffer(ev.ctx.data) && notUtf8.equals(ev.ctx.data)).toBe(true);
    }
    // "€" (e2 82 ac) cut after its first two bytes: the first fragment holds
    // "a" only, the next frame completes the character.
    raw.send({ opcode: 0x1, fin: false, payload: Buffer.from([0x61, 0xe2, 0x82]) });
    raw.send({ opcode: 0x0, fin: false, payload: Buffer.from([0xac, 0x62]) });
    raw.send({ opcode: 0x0, fin: true, payload: 'c' });
    await srv.events.waitType('message', open.client);
    expect(srv.events.of('fragment', open.client).map((f) => f.ctx.data)).toEqual(['a', '€b']);
    expect(srv.events.of('fragment', open.client).every((f) => f.ctx.binary === false)).toBe(true);
  });

  test('enablePong: false suppresses the automatic pong', async () => {
    const srv = startServer({ pingInterval: 1 });
    const conn = await connectClient(srv, { enablePong: false });
    await conn.events.waitType('ping', undefined, 4000);
    await delay(300);
    expect(srv.events.of('pong', conn.conn)).toEqual([]);
  });
});

describe('close', () => {
  test('server closes a connection: remote false on the server, true on the client', async () => {
    const srv = startServer();
    const conn = await connectClient(srv);
    expect(binding.websocketServerCloseClient({ ref: srv.server.ref }, conn.conn, 4001, 'bye now')).toBe(true);
    const sc = await srv.events.waitType('close', conn.conn);
    const cc = await conn.events.waitType('close');
    expect(sc.ctx).toEqual({ code: 4001, reason: 'bye now', remote: false });
    expect(cc.ctx).toEqual({ code: 4001, reason: 'bye now', remote: true });
    expect(cc.server).toBe(0);
  });

  test('client stops: remote false on the client, true on the server', async () => {
    const srv = startServer();
    const conn = await connectClient(srv);
    websocketClientStop(conn.client);
    const cc = await conn.events.waitType('close');
    const sc = await srv.events.waitType('close', conn.conn);
    expect(cc.ctx.code).toBe(1000);
    expect(cc.ctx.remote).toBe(false);
    expect(typeof cc.ctx.reason).toBe('string');
    expect(sc.ctx.code).toBe(1000);
    expect(sc.ctx.remote).toBe(true);
    expect(sc.ctx.reason).toBe(cc.ctx.reason);
  });

  test('a raw peer closes with a code and reason: echoed, remote true', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade();
    const open = await srv.events.waitType('open');
    raw.send({ opcode: 0x8, payload: closePayload(4002, 'raw bye') });
    const echo = await raw.readUntilClose();
    expect(echo.code).toBe(4002);
    const sc = await srv.events.waitType('close', open.client);
    expect(sc.ctx).toEqual({ code: 4002, reason: 'raw bye', remote: true });
    await raw.waitEnd();
  });

  test('a dropped TCP connection closes with 1006, remote true', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade();
    const open = await srv.events.waitType('open');
    raw.socket.destroy();
    const sc = await srv.events.waitType('close', open.client);
    expect(sc.ctx.code).toBe(1006);
    expect(sc.ctx.remote).toBe(true);
    expect(typeof sc.ctx.reason).toBe('string');
  });
});

describe('error', () => {
  function expectErrorContext(ctx: any) {
    expect(typeof ctx.decompressionError).toBe('boolean');
    expect(typeof ctx.reason).toBe('string');
    expect(ctx.reason.length).toBeGreaterThan(0);
    expect(Number.isInteger(ctx.http_status)).toBe(true);
    expect(typeof ctx.wait_time).toBe('number');
    expect(Number.isInteger(ctx.retries)).toBe(true);
  }

  test('client start against a closed port, reconnection off', async () => {
    const port = await closedPort();
    const events = new Collector();
    const c = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false, method: events.method });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st.success).toBe(false);
    const err = await events.waitType('error');
    expect(err.server).toBe(0);
    expect(err.client).toBe(c.ref);
    expectErrorContext(err.ctx);
    expect(err.ctx.decompressionError).toBe(false);
    expect(err.ctx.http_status).toBe(0);
    // no reconnection: one error only
    await delay(200);
    expect(events.of('error')).toHaveLength(1);
  });

  test('a refused handshake reports its HTTP status', async () => {
    const http404 = net.createServer((s) => {
      s.once('data', () => s.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => http404.listen(0, '127.0.0.1', () => r()));
    defer(() => new Promise((r) => http404.close(r)));
    const port = (http404.address() as net.AddressInfo).port;
    const events = new Collector();
    const c = newClient({ url: `ws://127.0.0.1:${port}/nope`, enableAutomaticReconnection: false, method: events.method });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st.success).toBe(false);
    expect(st.http_status).toBe(404);
    const err = await events.waitType('error');
    expectErrorContext(err.ctx);
    expect(err.ctx.http_status).toBe(404);
  });

  test('with reconnection on: growing retries and wait_time until stop', async () => {
    const port = await closedPort();
    const events = new Collector();
    const c = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: true,
      minWaitBetweenReconnectionRetries: 5,
      maxWaitBetweenReconnectionRetries: 40,
      method: events.method,
    });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st.success).toBe(false);
    const errs = await events.waitCount((e) => e.type === 'error', 4, 5000, 'error events');
    for (const e of errs) expectErrorContext(e.ctx);
    const retries = errs.map((e) => e.ctx.retries);
    for (let i = 1; i < retries.length; i++) expect(retries[i]).toBeGreaterThan(retries[i - 1]);
    for (const e of errs) {
      expect(e.ctx.wait_time).toBeGreaterThan(0);
      expect(e.ctx.wait_time).toBeLessThanOrEqual(40);
    }
    websocketClientStop(c);
    await delay(100);
    const n = events.of('error').length;
    await delay(300);
    expect(events.of('error').length).toBe(n);
  });
});
