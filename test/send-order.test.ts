// The order of a handler's sends on the wire, seen by a raw client. Small
// frames (up to 16 KiB) to one connection are appended to its queued bytes
// while a batch is delivered (corked); larger ones, pings and the close are
// frames of their own. Whatever the mix, the peer must read them in the
// order the handler made them, whole, with the statuses saying what was
// sent (payloadSize and wireSize the message's bytes).
import { afterEach, describe, expect, test } from 'vitest';
import { websocketServerPing, websocketServerSend } from '../lib/index';
import { OP, RawPeer, closePayload, encodeFrame, runCleanup, startServer } from './support';

afterEach(runCleanup);

// Sizes around the small/large threshold (16 KiB) and the header's length
// steps (125/126 bytes, 64 KiB).
const SIZES = [1, 125, 126, 1000, 16 * 1024, 16 * 1024 + 1, 40, 65536, 2, 3000, 70000, 7];

function body(i: number, n: number): Buffer {
  const b = Buffer.alloc(n, 97 + (i % 26));
  b.write(`#${i}:`.slice(0, n));  // sizes are distinct: the length names the frame
  return b;
}

describe('a handler mixing small, large, text, ping frames', () => {
  test('the raw peer reads every frame in the order sent, then the close reply', async () => {
    const statuses: { payloadSize: number; wireSize: number; success: boolean }[] = [];
    let ref = 0;
    let pinged = false;
    let received = '';
    const srv = startServer({
      method: (_server, client, type, ctx) => {
        if (type !== 'message') return;
        SIZES.forEach((n, i) => {
          if (i === 4) pinged = websocketServerPing({ ref }, client, 'mid');
          if (i === 8) statuses.push(...websocketServerSend({ ref, clients: [client] }, `text ${i}`));
          statuses.push(...websocketServerSend({ ref, clients: [client] }, body(i, n)));
        });
        received = String((ctx as { data: unknown }).data);
      },
    });
    ref = srv.server.ref;
    const p = await RawPeer.connect(srv.port);
    await p.upgrade('/');
    p.write(
      Buffer.concat([
        encodeFrame({ opcode: OP.text, payload: 'go' }),
        encodeFrame({ opcode: OP.close, payload: closePayload(1000, 'done') }),
      ]),
    );
    const { before, code } = await p.readUntilClose(10000);
    expect(code).toBe(1000);
    expect(received).toBe('go');
    expect(pinged).toBe(true);
    const want: string[] = [];
    SIZES.forEach((n, i) => {
      if (i === 4) want.push('ping:mid');
      if (i === 8) want.push(`text:text ${i}`);
      want.push(`binary:${n}`);
    });
    const got = before.map((f) => {
      if (f.opcode === OP.ping) return `ping:${f.payload.toString()}`;
      if (f.opcode === OP.text) return `text:${f.payload.toString()}`;
      return `binary:${f.payload.length}`;
    });
    expect(got).toEqual(want);
    before.forEach((f, i) => {
      if (f.opcode !== OP.binary) return;
      const n = f.payload.length;
      const idx = SIZES.indexOf(n);
      expect(f.payload.equals(body(idx, n)), `frame ${i}`).toBe(true);
    });
    expect(statuses).toHaveLength(SIZES.length + 1);
    for (const s of statuses) {
      expect(s.success).toBe(true);
      expect(s.wireSize).toBe(s.payloadSize);
    }
    expect(statuses.map((s) => s.payloadSize)).toEqual([...SIZES.slice(0, 8), 'text 8'.length, ...SIZES.slice(8)]);
    await p.waitEnd(5000);
  });
});
