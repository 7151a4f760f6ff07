// Every limit hit by a hostile raw peer, each while a well-behaved client on
// the same server keeps exchanging messages: the limit ends only the
// offending connection, with the right close code or HTTP status.
import * as crypto from 'crypto';
import * as net from 'net';
import * as zlib from 'zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { websocketClientStart, websocketServerClients } from '../lib/index';
import {
  Collector,
  RawPeer,
  connectClient,
  decodeFrame,
  defer,
  delay,
  encodeFrame,
  newClient,
  rawServer,
  runCleanup,
  startServer,
  roundTrip,
  until,
  upgradeRequest,
  whileGoodExchanges,
} from './support';

afterEach(runCleanup);

const KiB = 1024;
const MiB = 1024 * 1024;

/** 64-bit length frame header with an arbitrary announced length (masked, no payload). */
function hugeHeader(opcode: number, len: bigint, fin = true): Buffer {
  const b = Buffer.alloc(14);
  b[0] = (fin ? 0x80 : 0) | opcode;
  b[1] = 0x80 | 127;
  b.writeBigUInt64BE(len, 2);
  crypto.randomBytes(4).copy(b, 10);
  return b;
}

const rss = () => process.memoryUsage().rss;

describe('message size limit (server side)', () => {
  it('a frame header announcing 1 TiB closes with 1009 and allocates nothing', async () => {
    // Default maxPayload (100 MiB): the announced length alone must be refused.
    const srv = startServer();
    const good = await connectClient(srv);
    const before = rss();
    const code = await whileGoodExchanges(srv, good, async () => {
      const raw = await RawPeer.connect(srv.port);
      await raw.upgrade();
      raw.write(hugeHeader(0x2, 1n << 40n));
      // A few payload bytes after it: they must not be buffered toward 1 TiB.
      raw.write(crypto.randomBytes(64 * KiB));
      const { code } = await raw.readUntilClose();
      await raw.waitEnd();
      return code;
    });
    expect(code).toBe(1009);
    const close = await srv.events.waitFor((e) => e.type === 'close' && e.client !== good.conn, 5000, 'close');
    expect(close.ctx.code).toBe(1009);
    expect(close.ctx.remote).toBe(false);
    // Nothing close to the announced size (or even to maxPayload) was touched.
    expect(rss() - before).toBeLessThan(48 * MiB);
  });

  it('the largest 63-bit length is refused the same way, and a set top bit is a protocol error', async () => {
    const srv = startServer({ maxPayload: 64 * KiB });
    const good = await connectClient(srv);
    await whileGoodExchanges(srv, good, async () => {
      const a = await RawPeer.connect(srv.port);
      await a.upgrade();
      a.write(hugeHeader(0x1, (1n << 63n) - 1n));
      expect((await a.readUntilClose()).code).toBe(1009);
      const b = await RawPeer.connect(srv.port);
      await b.upgrade();
      // RFC 6455 §5.2: the most significant bit of a 64-bit length must be 0.
      b.write(hugeHeader(0x2, 1n << 63n));
      expect((await b.readUntilClose()).code).toBe(1002);
    });
  });

  it('a message over maxPayload across fragments (each under it) closes with 1009', async () => {
    const limit = 64 * KiB;
    const srv = startServer({ maxPayload: limit });
    const good = await connectClient(srv);
    const code = await whileGoodExchanges(srv, good, async () => {
      const raw = await RawPeer.connect(srv.port);
      await raw.upgrade();
      const part = 24 * KiB; // three parts: 72 KiB > 64 KiB, each well under
      raw.send({ opcode: 0x2, fin: false, payload: crypto.randomBytes(part) });
      raw.send({ opcode: 0x0, fin: false, payload: crypto.randomBytes(part) });
      raw.send({ opcode: 0x0, fin: true, payload: crypto.randomBytes(part) });
      return (await raw.readUntilClose()).code;
    });
    expect(code).toBe(1009);
    const rawRef = srv.events.events.find((e) => e.type === 'open' && e.client !== good.conn)!.client;
    // The two fragments under the limit were delivered; no message was.
    expect(srv.events.of('fragment', rawRef).length).toBe(2);
    expect(srv.events.of('message', rawRef).length).toBe(0);
    const close = await srv.events.waitType('close', rawRef);
    expect(close.ctx.code).toBe(1009);
  });

  it('a message of exactly maxPayload across fragments is accepted', async () => {
    const limit = 64 * KiB;
    const srv = startServer({ maxPayload: limit });
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade();
    const body = crypto.randomBytes(limit);
    raw.send({ opcode: 0x2, fin: false, payload: body.subarray(0, 40 * KiB) });
    raw.send({ opcode: 0x0, fin: true, payload: body.subarray(40 * KiB) });
    const m = await srv.events.waitType('message');
    expect(Buffer.compare(m.ctx.data, body)).toBe(0);
  });

  it('a compressed message that inflates past maxPayload closes with 1009', async () => {
    const limit = 64 * KiB;
    const srv = startServer({ maxPayload: limit });
    const good = await connectClient(srv);
    const code = await whileGoodExchanges(srv, good, async () => {
      const raw = await RawPeer.connect(srv.port);
      const head = await raw.upgrade('/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      expect(head.headers['sec-websocket-extensions']).toMatch(/permessage-deflate/);
      // 4 MiB of zeros deflate to a few KiB: small on the wire, huge inflated.
      const z = zlib.deflateRawSync(Buffer.alloc(4 * MiB), { level: 9 });
      expect(z.length).toBeLessThan(limit);
      raw.send({ opcode: 0x2, rsv: 0x40, payload: z });
      return (await raw.readUntilClose()).code;
    });
    expect(code).toBe(1009);
  });
});

describe('HTTP head limits', () => {
  it('a header block over maxHeaderSize is answered 431', async () => {
    const srv = startServer({ maxHeaderSize: 4096 });
    const good = await connectClient(srv);
    const head = await whileGoodExchanges(srv, good, async () => {
      const raw = await RawPeer.connect(srv.port);
      raw.write(upgradeRequest('/', crypto.randomBytes(16).toString('base64'), { 'X-Big': 'a'.repeat(8192) }));
      const h = await raw.readHead();
      await raw.waitEnd();
      return h;
    });
    expect(head.status).toBe(431);
  });

  it('an endless head without a blank line is cut off at the default 16 KiB with 431', async () => {
    const srv = startServer();
    const good = await connectClient(srv);
    const head = await whileGoodExchanges(srv, good, async () => {
      const raw = await RawPeer.connect(srv.port);
      raw.write('GET / HTTP/1.1\r\n');
      // Header lines in small writes, never ending the head: 64 KiB in all.
      for (let i = 0; i < 64 && !raw.ended; i++) {
        raw.write(`X-Filler-${i}: ${'b'.repeat(1000)}\r\n`);
        await delay(1);
      }
      const h = await raw.readHead();
      await raw.waitEnd();
      return h;
    });
    expect(head.status).toBe(431);
  });

  it('more headers than maxHeaders is refused (431 or 400)', async () => {
    const srv = startServer({ maxHeaders: 20 });
    const good = await connectClient(srv);
    const head = await whileGoodExchanges(srv, good, async () => {
      const raw = await RawPeer.connect(srv.port);
      const extra: Record<string, string> = {};
      for (let i = 0; i < 40; i++) extra[`X-H${i}`] = String(i);
      raw.write(upgradeRequest('/', crypto.randomBytes(16).toString('base64'), extra));
      const h = await raw.readHead();
      await raw.waitEnd();
      return h;
    });
    expect([431, 400]).toContain(head.status);
    // Exactly at the limit is fine (5 standard headers + 15 extra).
    const ok = await RawPeer.connect(srv.port);
    const extra: Record<string, string> = {};
    for (let i = 0; i < 15; i++) extra[`X-H${i}`] = String(i);
    await ok.upgrade('/', extra);
  });
});

describe('connection limits', () => {
  it('connections over maxConnections get HTTP 503; a freed slot is reusable', async () => {
    const srv = startServer({ maxConnections: 2 });
    const good = await connectClient(srv);
    const second = await RawPeer.connect(srv.port);
    await second.upgrade();
    const heads = await whileGoodExchanges(srv, good, async () => {
      const out = [];
      for (let i = 0; i < 3; i++) {
        const raw = await RawPeer.connect(srv.port);
        raw.write(upgradeRequest('/', crypto.randomBytes(16).toString('base64')));
        out.push(await raw.readHead());
        await raw.waitEnd();
      }
      return out;
    });
    expect(heads.map((h) => h.status)).toEqual([503, 503, 503]);
    // Close the second connection; once the server has seen it go, a new one fits.
    second.send({ opcode: 0x8, payload: Buffer.from([0x03, 0xe8]) });
    await second.readUntilClose();
    await until(() => (websocketServerClients(srv.server).length === 1 ? true : undefined), 5000, 'one client left');
    const third = await RawPeer.connect(srv.port);
    await third.upgrade();
    await roundTrip(srv, good, 'after-reuse');
  });

  it('a handshake not finished within handshakeTimeout is dropped (also when trickled)', async () => {
    const srv = startServer({ handshakeTimeout: 0.5 });
    const good = await connectClient(srv);
    const [silent, trickled] = await whileGoodExchanges(srv, good, async () => {
      const t0 = Date.now();
      const a = await RawPeer.connect(srv.port);
      a.write('GET / HTTP/1.1\r\nHost: x\r\n');
      const b = await RawPeer.connect(srv.port);
      // Slowloris: a byte now and then keeps it busy but never finishes.
      const trickle = setInterval(() => {
        if (!b.ended) b.write('X');
      }, 50);
      defer(() => clearInterval(trickle));
      await a.waitEnd(5000);
      const ta = Date.now() - t0;
      await b.waitEnd(5000);
      const tb = Date.now() - t0;
      clearInterval(trickle);
      return [ta, tb];
    });
    expect(silent).toBeGreaterThanOrEqual(400);
    expect(silent).toBeLessThan(3000);
    expect(trickled).toBeGreaterThanOrEqual(400);
    expect(trickled).toBeLessThan(3000);
    // Neither ever became a connection.
    expect(websocketServerClients(srv.server)).toEqual([good.conn]);
  });

  it('an open connection is not subject to the handshake timeout', async () => {
    const srv = startServer({ handshakeTimeout: 0.3 });
    const good = await connectClient(srv);
    await delay(700);
    await roundTrip(srv, good, 'late');
  });
});

describe('message size limit (client side)', () => {
  /** A fake server: answers the upgrade, then runs `then` with the socket; got() is what the client sent since. */
  async function fakeServer(then: (s: net.Socket) => void): Promise<{ port: number; got: () => Buffer }> {
    let got: Buffer = Buffer.alloc(0);
    const { port } = await rawServer((sock, rest) => {
      got = rest;
      sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
      then(sock);
    });
    return { port, got: () => got };
  }

  /** The code of the client's first frame once it is a whole close frame. */
  function closeCodeOf(b: Buffer): number | undefined {
    const d = decodeFrame(b);
    if (!d || d.frame.opcode !== 0x8 || d.frame.payload.length < 2) return undefined;
    return d.frame.payload.readUInt16BE(0);
  }

  it("a frame over the client's maxPayload closes it with 1009", async () => {
    const fake = await fakeServer((s) => s.write(encodeFrame({ opcode: 0x2, payload: crypto.randomBytes(2 * KiB), mask: false })));
    const events = new Collector();
    const c = newClient({
      url: `ws://127.0.0.1:${fake.port}/`,
      enableAutomaticReconnection: false,
      disablePerMessageDeflate: true,
      maxPayload: KiB,
      method: events.method,
    });
    expect((await websocketClientStart(c)).success).toBe(true);
    const close = await events.waitType('close');
    expect(close.ctx.code).toBe(1009);
    expect(close.ctx.remote).toBe(false);
    expect(events.of('message').length).toBe(0);
    expect(await until(() => closeCodeOf(fake.got()), 5000, 'the client close frame')).toBe(1009);
  });

  it('a 1 TiB frame header from a server closes the client with 1009', async () => {
    const fake = await fakeServer((s) => {
      const b = Buffer.alloc(10);
      b[0] = 0x82;
      b[1] = 127;
      b.writeBigUInt64BE(1n << 40n, 2);
      s.write(b);
      s.write(crypto.randomBytes(16 * KiB));
    });
    const events = new Collector();
    const before = rss();
    const c = newClient({ url: `ws://127.0.0.1:${fake.port}/`, enableAutomaticReconnection: false, method: events.method });
    expect((await websocketClientStart(c)).success).toBe(true);
    const close = await events.waitType('close');
    expect(close.ctx.code).toBe(1009);
    expect(rss() - before).toBeLessThan(48 * MiB);
  });
});
