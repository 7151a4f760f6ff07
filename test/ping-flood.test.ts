// Issue 11, defect 4: a peer that floods pings and never reads used to grow
// the server's send queue without bound (one queued pong per ping, past
// sendHighWaterMark: 300k pings queued 33.8 MB with the mark at 1 MiB). Now
// a connection holds at most one unsent pong (the latest ping's, RFC 6455
// §5.5.3), and a connection whose send queue is over its high-water mark is
// not read until it drains. Once the peer reads again it gets the pong for
// its latest ping and the connection works as before.
import { afterEach, describe, expect, test } from 'vitest';
import { binding } from '../lib/binding';
import { websocketServerSend } from '../lib/index';
import type { EventMethod } from '../lib/index';
import { RawPeer, delay, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

const KiB = 1024;
const MiB = 1024 * 1024;
const PINGS = 300_000;

/** A masked ping frame (mask key 0: the payload goes as is): `p<i>`, padded with '.' to `size` bytes. */
function ping(i: number, size = 0): Buffer {
  const id = `p${i}`;
  const payload = Buffer.from(id.padEnd(Math.max(size, id.length), '.'));
  return Buffer.concat([Buffer.from([0x89, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

/** The server frame header length for a payload of n bytes. */
const headerLen = (n: number) => (n < 126 ? 2 : n < 65536 ? 4 : 10);

describe('ping flood from a peer that never reads', () => {
  test('the audit case: 300k pings of 125 bytes, sendHighWaterMark 1 MiB: the queue holds a few pongs, not 300k', async () => {
    let pings = 0;
    const method: EventMethod = (_s, _c, type) => {
      if (type === 'ping') pings++;
    };
    const srv = startServer({ sendHighWaterMark: MiB, method });
    const peer = await RawPeer.connect(srv.port);
    await peer.upgrade();
    const conn = await until(() => binding.websocketServerClients(srv.server)[0], 3000, 'the connection');
    peer.socket.pause();
    const per = 5000;
    for (let i = 0; i < PINGS; i += per) {
      const parts: Buffer[] = [];
      for (let k = i; k < Math.min(PINGS, i + per); k++) parts.push(ping(k, 125));
      peer.socket.write(Buffer.concat(parts));
    }
    // Nothing is over the mark here: the server reads every ping.
    await until(() => (pings === PINGS ? true : undefined), 20_000, `all pings read (at ${pings})`);
    const queued = binding.bufferedAmount(srv.server.ref, conn);
    console.log(`audit case: ${PINGS} pings read, bufferedAmount ${queued}`);
    // A few pongs at most (127 bytes each): the write the full socket holds
    // (the tail of a pong the socket took in part, and a pong), and the one
    // waiting in the queue that every newer ping replaces.
    expect(queued).toBeLessThanOrEqual(3 * 127);
    peer.socket.resume();
    let lastPong = '';
    const deadline = Date.now() + 20_000;
    while (lastPong !== `p${PINGS - 1}`) {
      const f = await peer.readFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === 0xa) lastPong = f.payload.toString().replace(/\.+$/, '');
    }
  }, 60_000);

  test('at most one pending pong, reading paused over sendHighWaterMark; the latest pong and the connection survive', async () => {
    let pings = 0;
    let lastPing = '';
    const messages: string[] = [];
    const method: EventMethod = (_s, _c, type, ctx) => {
      if (type === 'ping') {
        pings++;
        lastPing = String(ctx.data);
      } else if (type === 'message') {
        messages.push(String(ctx.data));
      }
    };
    const mark = MiB;
    const srv = startServer({ sendHighWaterMark: mark, method });
    const peer = await RawPeer.connect(srv.port);
    await peer.upgrade();
    const conn = await until(() => binding.websocketServerClients(srv.server)[0], 3000, 'the connection');
    peer.socket.pause(); // never reads from here on

    // Fill the send queue exactly to the mark (the kernel's buffers first).
    const chunk = Buffer.alloc(64 * KiB, 0x42);
    let sent = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2000; i++) {
        const [st] = websocketServerSend({ ref: srv.server.ref, clients: [conn] }, chunk);
        if (!st.success) break;
        sent += chunk.length;
      }
      await delay(100);
    }
    for (let i = 0; i < 10; i++) {
      const room = mark - binding.bufferedAmount(srv.server.ref, conn);
      if (room <= 0) break;
      let p = room - 2;
      if (p >= 126) p = room - 4;
      if (p >= 65536) p = room - 10;
      if (p < 0 || p + headerLen(p) !== room) break;
      const [st] = websocketServerSend({ ref: srv.server.ref, clients: [conn] }, Buffer.alloc(p, 0x43));
      expect(st.success).toBe(true);
      sent += p;
    }
    expect(binding.bufferedAmount(srv.server.ref, conn)).toBe(mark);

    const rss0 = process.memoryUsage().rss;
    // The flood, in large writes; the peer's own socket buffers what the server does not take.
    const per = 5000;
    for (let i = 0; i < PINGS; i += per) {
      const parts: Buffer[] = [];
      for (let k = i; k < Math.min(PINGS, i + per); k++) parts.push(ping(k));
      peer.socket.write(Buffer.concat(parts));
    }
    // Let the server take what it will.
    let seen = -1;
    for (let i = 0; i < 100 && seen !== pings; i++) {
      seen = pings;
      await delay(100);
    }
    const queued = binding.bufferedAmount(srv.server.ref, conn);
    const grown = process.memoryUsage().rss - rss0;
    console.log(
      `ping flood: ${pings} of ${PINGS} pings read while the peer did not read; bufferedAmount ${queued} (mark ${mark}); RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    // One pong beyond the mark at most: a pong frame is at most 127 bytes.
    expect(queued).toBeLessThanOrEqual(mark + 127);
    // Over the mark, the connection is not read: most pings wait in the kernel.
    expect(pings).toBeLessThan(PINGS);
    expect(grown).toBeLessThan(64 * MiB);

    // The peer reads again: everything queued arrives, the server reads the
    // remaining pings, and the last pong answers the last ping.
    peer.socket.resume();
    await until(() => (pings === PINGS ? true : undefined), 20_000, `all ${PINGS} pings read (at ${pings})`);
    expect(lastPing).toBe(`p${PINGS - 1}`);
    let binaryBytes = 0;
    let pongs = 0;
    let lastPong = '';
    const deadline = Date.now() + 20_000;
    while (lastPong !== `p${PINGS - 1}`) {
      const f = await peer.readFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === 0x2) binaryBytes += f.payload.length;
      else if (f.opcode === 0xa) {
        pongs++;
        lastPong = f.payload.toString();
      } else throw new Error(`unexpected opcode ${f.opcode}`);
    }
    expect(binaryBytes).toBe(sent);
    console.log(`ping flood: ${pongs} pongs for ${PINGS} pings`);

    // The connection still works both ways.
    peer.send({ opcode: 0x1, payload: 'still here' });
    await until(() => (messages.includes('still here') ? true : undefined), 5000, 'the message');
    const [st] = websocketServerSend({ ref: srv.server.ref, clients: [conn] }, 'and back');
    expect(st.success).toBe(true);
    for (;;) {
      const f = await peer.readFrame(5000);
      if (f.opcode === 0x1) {
        expect(f.payload.toString()).toBe('and back');
        break;
      }
    }
  }, 60_000);
});
