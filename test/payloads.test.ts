// Payload sizes across every frame-length encoding (7-bit, 16-bit, 64-bit
// boundaries) up to 16 MiB, text and binary, both directions, with and
// without permessage-deflate; contents compared byte for byte.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { websocketClientSend, websocketServerSend } from '../lib/index';
import { Connected, Started, bytes, connectClient, runCleanup, startServer, text } from './support';

const SIZES = [0, 125, 126, 127, 65535, 65536, 16 * 1024 * 1024];

for (const deflate of [true, false]) {
  describe(`payloads, permessage-deflate ${deflate ? 'on' : 'off'}`, () => {
    let srv: Started;
    let conn: Connected;
    let seen = 0;

    beforeAll(async () => {
      srv = startServer({ maxPayload: 32 * 1024 * 1024 });
      conn = await connectClient(srv, { disablePerMessageDeflate: !deflate, maxPayload: 32 * 1024 * 1024 });
    });
    afterAll(runCleanup);

    // Messages arrive in order on each side, so the n-th message is this test's.
    async function nextServerMessage() {
      const n = ++seen;
      const all = await srv.events.waitCount((e) => e.type === 'message', n, 15000, 'server messages');
      return all[n - 1];
    }
    let clientSeen = 0;
    async function nextClientMessage() {
      const n = ++clientSeen;
      const all = await conn.events.waitCount((e) => e.type === 'message', n, 15000, 'client messages');
      return all[n - 1];
    }

    for (const size of SIZES) {
      test(`${size} bytes of text, client to server`, async () => {
        const data = text(size, size);
        const st = websocketClientSend(conn.client, data);
        expect(st.success).toBe(true);
        expect(st.payloadSize).toBe(size);
        if (!deflate || size < 1024) expect(st.wireSize).toBe(size);
        const m = await nextServerMessage();
        expect(m.ctx.binary).toBe(false);
        expect(typeof m.ctx.data).toBe('string');
        expect(m.ctx.data.length).toBe(data.length);
        expect(m.ctx.data === data).toBe(true);
        expect(m.ctx.wireSize).toBe(st.wireSize);
      });

      test(`${size} bytes of binary, client to server`, async () => {
        const data = bytes(size, size + 1);
        const st = websocketClientSend(conn.client, data);
        expect(st.success).toBe(true);
        expect(st.payloadSize).toBe(size);
        const m = await nextServerMessage();
        expect(m.ctx.binary).toBe(true);
        expect(Buffer.isBuffer(m.ctx.data)).toBe(true);
        expect(m.ctx.data.length).toBe(size);
        expect(data.equals(m.ctx.data)).toBe(true);
        expect(m.ctx.wireSize).toBe(st.wireSize);
      });

      test(`${size} bytes of text, server to client`, async () => {
        const data = text(size, size + 2);
        const [st] = websocketServerSend(srv.server, data);
        expect(st).toMatchObject({ success: true, payloadSize: size, client: conn.conn });
        if (!deflate || size < 1024) expect(st.wireSize).toBe(size);
        const m = await nextClientMessage();
        expect(m.ctx.binary).toBe(false);
        expect(m.ctx.data.length).toBe(data.length);
        expect(m.ctx.data === data).toBe(true);
        expect(m.ctx.wireSize).toBe(st.wireSize);
      });

      test(`${size} bytes of binary, server to client`, async () => {
        const data = bytes(size, size + 3);
        const [st] = websocketServerSend(srv.server, data);
        expect(st).toMatchObject({ success: true, payloadSize: size });
        const m = await nextClientMessage();
        expect(m.ctx.binary).toBe(true);
        expect(m.ctx.data.length).toBe(size);
        expect(data.equals(m.ctx.data)).toBe(true);
        expect(m.ctx.wireSize).toBe(st.wireSize);
      });
    }
  });
}

describe('maxPayload', () => {
  afterAll(runCleanup);
  test('a message over the receiver\'s maxPayload fails the connection with 1009', async () => {
    const srv = startServer({ maxPayload: 1000 });
    const conn = await connectClient(srv, { disablePerMessageDeflate: true });
    expect(websocketClientSend(conn.client, Buffer.alloc(1001)).success).toBe(true);
    const sc = await srv.events.waitType('close', conn.conn);
    expect(sc.ctx.code).toBe(1009);
    const cc = await conn.events.waitType('close');
    expect(cc.ctx.code).toBe(1009);
    expect(srv.events.of('message')).toEqual([]);
  });
});
