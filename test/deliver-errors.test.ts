// An event that cannot be converted to a JavaScript value is skipped and
// reported alone: the rest of its delivered batch (another connection's close
// included) still arrives, and that connection's ref is released.
//
// The failure is a real one: a text message one byte longer than V8's longest
// string (buffer.constants.MAX_STRING_LENGTH, 2^29 - 24 on 64-bit) cannot
// become a string. Two connections from a peer in a worker thread: X sends a
// small binary message, that text message and more; once the server has
// stopped reading X (the queue is over its budget with the text message in
// it), Y sends a close frame. This thread is blocked meanwhile (until Y's socket has
// closed), so all of it is delivered in one batch, the failing event first.
// (X's later events cannot share that batch: the 512 MiB event puts the
// queue over its budget, and X's reading pauses until it drains.)
import { constants } from 'buffer';
import { Worker } from 'worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import { websocketServerClients } from '../lib/index';
import { RawPeer, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

const HUGE = constants.MAX_STRING_LENGTH + 1;
const FILLER = 32 << 20;

// The peer. Frames are masked with a zero key, which leaves payloads as they are.
const PEER = `
const { parentPort, workerData } = require('worker_threads');
const net = require('net');
const { port, flag, huge, filler } = workerData;
const signal = new Int32Array(flag);
const done = () => { Atomics.store(signal, 0, 1); Atomics.notify(signal, 0); };
function connect() {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let head = '';
    const onData = (d) => {
      head += d.toString('latin1');
      if (!head.includes('\\r\\n\\r\\n')) return;
      s.off('data', onData);
      s.resume();
      resolve(s);
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write('GET / HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n');
  });
}
function frame(opcode, payload) {
  const len = payload.length;
  const head = Buffer.alloc(len < 126 ? 2 : len < 65536 ? 4 : 10);
  head[0] = 0x80 | opcode;
  if (len < 126) head[1] = 0x80 | len;
  else if (len < 65536) { head[1] = 0x80 | 126; head.writeUInt16BE(len, 2); }
  else { head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(len), 2); }
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
(async () => {
  const x = await connect();
  await sleep(100); // X gets ref 1, Y ref 2
  const y = await connect();
  y.on('close', done);
  y.on('error', done);
  parentPort.postMessage('open');
  await new Promise((r) => parentPort.once('message', r));
  const write = (b) => new Promise((r) => (x.write(b) ? r() : x.once('drain', r)));
  await write(frame(2, Buffer.from('before')));
  // The text message: its header, then its bytes in chunks.
  const head = Buffer.alloc(14);
  head[0] = 0x81; head[1] = 0x80 | 127; head.writeBigUInt64BE(BigInt(huge), 2);
  await write(head);
  const chunk = Buffer.alloc(4 << 20, 0x61);
  for (let left = huge; left > 0; ) {
    const n = Math.min(left, chunk.length);
    await write(n === chunk.length ? chunk : chunk.subarray(0, n));
    left -= n;
  }
  // More for X, more than the kernel buffers hold: once the server has
  // queued the text message, the queue is over its budget and X is no longer
  // read, so these writes stop making progress. That stall is the sign that
  // the event is queued.
  x.write(Buffer.concat([frame(2, Buffer.from('after')), frame(1, Buffer.from('after too'))]));
  x.write(frame(2, Buffer.alloc(filler, 0x62)));
  let pending = -1;
  let since = Date.now();
  let stalled = false;
  for (const t0 = since; !stalled && Date.now() - t0 < 30000; ) {
    await sleep(50);
    if (x.writableLength !== pending) {
      pending = x.writableLength;
      since = Date.now();
    } else {
      stalled = pending > 0 && Date.now() - since > 1500;
    }
  }
  parentPort.postMessage(stalled ? 'stalled' : 'no stall');
  const close = Buffer.alloc(5);
  close.writeUInt16BE(1000, 0);
  close.write('bye', 2);
  y.write(frame(8, close));
})().catch((e) => { parentPort.postMessage(String(e)); done(); });
`;

describe('an event that cannot be converted', () => {
  test('is skipped and reported; the rest of the batch, a close included, still arrives', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const flag = new SharedArrayBuffer(4);
    // No budget for unfinished messages (its default, 256 MiB, is below the text message).
    // IO threads even under IXWS_INLINE=1: this thread blocks below until the
    // server has read and queued the peer's traffic, which only an engine on
    // its own thread can do meanwhile (an inline one would wait for the block).
    const srv = startServer({ maxPayload: HUGE + 1024, maxUnfinishedBytes: 0, inlineLoop: false });
    const peer = new Worker(PEER, { eval: true, workerData: { port: srv.port, flag, huge: HUGE, filler: FILLER } });
    try {
      const said: unknown[] = [];
      peer.on('message', (m) => said.push(m));
      peer.on('error', (e) => said.push(e));
      await until(() => (said.length > 0 ? true : undefined), 5000, 'the peer connected');
      expect(said).toEqual(['open']);
      await srv.events.waitCount((e) => e.type === 'open', 2);
      expect(srv.events.of('open').map((e) => e.client)).toEqual([1, 2]);
      peer.postMessage('go');
      // No delivery on this thread until Y's socket has closed, plus a moment
      // for the server to queue Y's close event.
      expect(Atomics.wait(new Int32Array(flag), 0, 0, 60_000)).not.toBe('timed-out');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      // The server had stopped reading X before Y closed: the text message
      // was queued first, and Y's close after it, in the same batch.
      await until(() => (said.length > 1 ? true : undefined), 5000, "the peer's report");
      expect(said).toEqual(['open', 'stalled']);

      const close = await srv.events.waitType('close', 2, 10_000);
      expect(close.ctx).toMatchObject({ code: 1000, reason: 'bye', remote: true });
      // X's events after the failed one arrive (once the queue has drained).
      const xs = await srv.events.waitCount((e) => e.client === 1 && e.type === 'message', 4, 20_000);
      const data = xs.map((e) => (Buffer.isBuffer(e.ctx.data) ? `binary:${e.ctx.data.length}` : `text:${e.ctx.data}`));
      expect(data).toEqual(['binary:6', 'binary:5', 'text:after too', `binary:${FILLER}`]);
      expect(srv.events.events.filter((e) => e.client === 1).map((e) => e.type)).toEqual([
        'open', 'message', 'message', 'message', 'message']);
      // Y's ref is free again: the server lists X alone, and the next
      // connection gets ref 2.
      expect(websocketServerClients(srv.server)).toEqual([1]);
      const next = await RawPeer.connect(srv.port);
      await next.upgrade();
      const open3 = await srv.events.waitCount((e) => e.type === 'open', 3);
      expect(open3[2].client).toBe(2);
      // Reported once, naming the event, its size, the connection and why.
      await until(() => (warnings.length > 0 ? true : undefined), 2000, 'the warning');
      expect(warnings).toHaveLength(1);
      const w = warnings[0] as Error & { code?: string };
      expect(w.name).toBe('IxWebSocketWarning');
      expect(w.code).toBe('IXWS_EVENT_DROPPED');
      expect(w.message).toContain(`'message' event of ${HUGE} bytes for connection 1 of server ${srv.server.ref}`);
      expect(w.message).toContain('MAX_STRING_LENGTH');
    } finally {
      process.off('warning', onWarning);
      await peer.terminate();
    }
  }, 60_000);
});
