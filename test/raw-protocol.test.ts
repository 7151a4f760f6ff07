// The server seen from a raw TCP socket: fragmentation with an interleaved
// ping, opening-handshake validation, and protocol violations that must fail
// the connection with the right close code while the server keeps serving.
import * as crypto from 'crypto';
import { afterEach, describe, expect, test } from 'vitest';
import { websocketClientSend, websocketServerClients } from '../lib/index';
import { RawPeer, Started, connectClient, runCleanup, startServer, upgradeRequest } from './support';

afterEach(runCleanup);

describe('fragmentation', () => {
  test('text in 3 frames with a ping between: fragment events, one message, ping event and pong', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/frag');
    const open = await srv.events.waitType('open');
    const parts = ['Hello, ', 'fragmented ', 'wörld'];
    raw.send({ opcode: 0x1, fin: false, payload: parts[0] });
    raw.send({ opcode: 0x9, payload: 'mid-ping' });
    raw.send({ opcode: 0x0, fin: false, payload: parts[1] });
    raw.send({ opcode: 0x0, fin: true, payload: parts[2] });

    const pong = await raw.readFrame();
    expect(pong.opcode).toBe(0xa);
    expect(pong.payload.toString()).toBe('mid-ping');

    const whole = parts.join('');
    const msg = await srv.events.waitType('message', open.client);
    expect(msg.ctx).toEqual({ data: whole, binary: false, wireSize: Buffer.byteLength(whole) });
    expect(srv.events.of('message')).toHaveLength(1);

    const ping = await srv.events.waitType('ping', open.client);
    expect(ping.ctx).toEqual({ data: 'mid-ping', binary: false, wireSize: 8 });

    // one fragment event per frame that does not complete the message,
    // carrying that frame's bytes
    const frags = srv.events.of('fragment', open.client);
    expect(frags.map((f) => f.ctx)).toEqual([
      { data: parts[0], binary: false, wireSize: Buffer.byteLength(parts[0]) },
      { data: parts[1], binary: false, wireSize: Buffer.byteLength(parts[1]) },
    ]);
    // order: fragments before the message, the ping between the first two frames
    const order = srv.events.events.filter((e) => e.client === open.client && e.type !== 'open').map((e) => e.type);
    expect(order).toEqual(['fragment', 'ping', 'fragment', 'message']);
  });

  test('binary in fragments is reassembled', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade();
    const open = await srv.events.waitType('open');
    const all = crypto.randomBytes(70000);
    raw.send({ opcode: 0x2, fin: false, payload: all.subarray(0, 100) });
    raw.send({ opcode: 0x0, fin: false, payload: all.subarray(100, 66000) });
    raw.send({ opcode: 0x0, fin: true, payload: all.subarray(66000) });
    const msg = await srv.events.waitType('message', open.client);
    expect(msg.ctx.binary).toBe(true);
    expect(all.equals(msg.ctx.data)).toBe(true);
    expect(msg.ctx.wireSize).toBe(70000);
  });
});

describe('opening handshake validation', () => {
  async function answer(srv: Started, request: string) {
    const raw = await RawPeer.connect(srv.port);
    raw.write(request);
    return raw.readHead();
  }
  const key = () => crypto.randomBytes(16).toString('base64');

  test('a key that is not 16 bytes base64 gets 400', async () => {
    const srv = startServer();
    const head = await answer(srv, upgradeRequest('/', 'c2hvcnQ='));
    expect(head.status).toBe(400);
    expect(srv.events.of('open')).toEqual([]);
  });

  test('a request without Upgrade: websocket gets 400 or 426', async () => {
    const srv = startServer();
    const head = await answer(srv, `GET / HTTP/1.1\r\nHost: localhost\r\nSec-WebSocket-Key: ${key()}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    // RFC 6455 §4.2.1 leaves this between a plain 400 and 426 Upgrade Required
    expect([400, 426]).toContain(head.status);
  });

  test('garbage instead of HTTP gets 400', async () => {
    const srv = startServer();
    const head = await answer(srv, 'HELLO THERE\r\n\r\n');
    expect(head.status).toBe(400);
  });

  test('a wrong version gets 426 with Sec-WebSocket-Version: 13', async () => {
    const srv = startServer();
    const head = await answer(srv, upgradeRequest('/', key(), { 'Sec-WebSocket-Version': '8' }));
    expect(head.status).toBe(426);
    expect(head.headers['sec-websocket-version']).toBe('13');
  });

  test('a POST gets 405', async () => {
    const srv = startServer();
    const head = await answer(srv, upgradeRequest('/', key()).replace(/^GET/, 'POST'));
    expect(head.status).toBe(405);
  });

  test('a head over maxHeaderSize is refused', async () => {
    const srv = startServer({ maxHeaderSize: 2048 });
    const head = await answer(srv, upgradeRequest('/', key(), { 'X-Big': 'x'.repeat(4096) }));
    expect([400, 431]).toContain(head.status);
    expect(srv.events.of('open')).toEqual([]);
  });
});

describe('protocol violations fail the connection with the right code', () => {
  const cases: Array<{ name: string; code: number; frames: Parameters<RawPeer['send']>[0][] }> = [
    { name: 'unmasked client frame', code: 1002, frames: [{ opcode: 0x1, payload: 'plain', mask: false }] },
    { name: 'invalid UTF-8 text', code: 1007, frames: [{ opcode: 0x1, payload: Buffer.from([0x61, 0xff, 0xfe]) }] },
    {
      name: 'invalid UTF-8 split across fragments',
      code: 1007,
      frames: [
        { opcode: 0x1, fin: false, payload: Buffer.from([0xe2, 0x82]) },
        { opcode: 0x0, fin: true, payload: Buffer.from([0x41]) },
      ],
    },
    { name: 'reserved opcode 0x3', code: 1002, frames: [{ opcode: 0x3, payload: 'x' }] },
    { name: 'reserved control opcode 0xB', code: 1002, frames: [{ opcode: 0xb }] },
    { name: 'RSV2 set', code: 1002, frames: [{ opcode: 0x1, rsv: 0x20, payload: 'x' }] },
    { name: 'RSV1 without permessage-deflate', code: 1002, frames: [{ opcode: 0x1, rsv: 0x40, payload: 'x' }] },
    { name: 'control frame over 125 bytes', code: 1002, frames: [{ opcode: 0x9, payload: Buffer.alloc(126, 0x61) }] },
    { name: 'fragmented control frame', code: 1002, frames: [{ opcode: 0x9, fin: false, payload: 'p' }] },
    { name: 'continuation without a message', code: 1002, frames: [{ opcode: 0x0, payload: 'x' }] },
    {
      name: 'new data frame inside a fragmented message',
      code: 1002,
      frames: [
        { opcode: 0x1, fin: false, payload: 'a' },
        { opcode: 0x1, fin: true, payload: 'b' },
      ],
    },
    { name: 'close with invalid code 1005', code: 1002, frames: [{ opcode: 0x8, payload: Buffer.from([0x03, 0xed]) }] },
    { name: 'close with a 1-byte payload', code: 1002, frames: [{ opcode: 0x8, payload: Buffer.from([0x03]) }] },
  ];

  for (const c of cases) {
    test(`${c.name} → ${c.code}`, async () => {
      const srv = startServer();
      const good = await connectClient(srv);
      const raw = await RawPeer.connect(srv.port);
      await raw.upgrade();
      const open = await srv.events.waitFor((e) => e.type === 'open' && e.client !== good.conn, 5000, 'raw open');
      for (const f of c.frames) raw.send(f);
      const { code, before } = await raw.readUntilClose();
      expect(code).toBe(c.code);
      expect(before.filter((f) => f.opcode !== 0xa)).toEqual([]);
      const sc = await srv.events.waitType('close', open.client);
      expect(sc.ctx.code).toBe(c.code);
      expect(sc.ctx.remote).toBe(false);
      await raw.waitEnd();
      expect(srv.events.of('message', open.client)).toEqual([]);
      // everything else keeps serving
      expect(websocketServerClients(srv.server)).toEqual([good.conn]);
      expect(websocketClientSend(good.client, 'still fine').success).toBe(true);
      const m = await srv.events.waitType('message', good.conn);
      expect(m.ctx.data).toBe('still fine');
    });
  }
});
