// borrowedPayloads (issue 15): a binary payload is lent to its event, as
// uWebSockets.js lends its own. One of 64 KiB or more is a Buffer over the
// engine's bytes; when the method returns its ArrayBuffer is detached and the
// bytes go back to the engine's pool at once, instead of when V8 collects the
// Buffer. What must hold: the data is whole during the event (and can be sent
// back from it), reads as empty afterwards, the next message reusing the
// memory is whole too, the pool gets the bytes back without a collection, V8
// stops counting them (no full collections driven by received payloads), a
// Buffer the method handed on elsewhere keeps its bytes, and the default keeps
// every payload for as long as it is referenced.
import * as v8 from 'v8';
import * as vm from 'vm';
import { afterEach, describe, expect, test } from 'vitest';
import {
  bufferPoolStats,
  websocketClient,
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerSend,
} from '../lib/index';
import type { EventContext } from '../lib/index';
import { binding } from '../lib/binding';
import { Collector, RawPeer, bytes, connectClient, newClient, runCleanup, startServer, until } from './support';
import { majorsForMiBStream } from './support/gc';
import { encodeFrame } from './support/wire';

afterEach(runCleanup);


const KiB = 1024;
const MiB = 1024 * KiB;

interface Seen {
  type: string;
  kept: Buffer;
  copy: Buffer;
  lengthInside: number;
}

/** A method that keeps each binary data Buffer and a copy made inside the event. */
function keeper(seen: Seen[], also?: (client: number, data: Buffer) => void) {
  return (_s: number, client: number, type: string, ctx: EventContext) => {
    const data = (ctx as { data?: unknown }).data;
    if (!Buffer.isBuffer(data)) return;
    seen.push({ type, kept: data, copy: Buffer.from(data), lengthInside: data.length });
    if (also) also(client, data);
  };
}

const tick = () => new Promise((r) => setImmediate(r));

/** A server with borrowedPayloads whose events are collected and given to `keep`. */
function lendingServer(keep: ReturnType<typeof keeper>) {
  const events = new Collector();
  return {
    ...startServer({
      disablePerMessageDeflate: true,
      borrowedPayloads: true,
      method: (s, c, type, ctx, ...rest) => {
        events.method(s, c, type, ctx, ...rest);
        keep(s, c, type, ctx);
      },
    }),
    events,
  };
}

// Where external buffers are not allowed (the Electron profile) every payload
// is a V8-owned copy: nothing is lent, and a kept Buffer stays whole.
const lends = binding.externalBuffers;
/** What a kept Buffer of a large payload reads as after its event. */
const lengthAfter = (size: number) => (lends ? 0 : size);

describe('the borrowedPayloads option', () => {
  test('default false; a given boolean is kept and written back; anything else is a TypeError naming it', () => {
    expect(websocketServer({ port: 0 }).borrowedPayloads).toBe(false);
    expect(websocketClient({ url: 'ws://127.0.0.1:1' }).borrowedPayloads).toBe(false);
    expect(websocketServer({ port: 0, borrowedPayloads: true }).borrowedPayloads).toBe(true);
    expect(websocketClient({ url: 'ws://127.0.0.1:1', borrowedPayloads: true }).borrowedPayloads).toBe(true);
    for (const bad of [1, 'yes', null, {}]) {
      expect(() => websocketServer({ borrowedPayloads: bad as unknown as boolean })).toThrow(TypeError);
      expect(() => websocketServer({ borrowedPayloads: bad as unknown as boolean })).toThrow(/borrowedPayloads/);
      expect(() => websocketClient({ url: 'ws://a', borrowedPayloads: bad as unknown as boolean })).toThrow(/borrowedPayloads/);
    }
  });
});

describe('a server with borrowedPayloads', () => {
  test('large payloads are whole during the event, sent back from it intact, empty afterwards; the next ones reuse the memory and are whole', async () => {
    const seen: Seen[] = [];
    let ref = 0;
    const srv = lendingServer(keeper(seen, (client, data) => websocketServerSend({ ref, clients: [client] }, data)));
    ref = srv.server.ref;
    const cli = await connectClient(srv);
    const sizes = [64 * KiB, 200 * KiB, 200 * KiB, MiB, 70 * KiB];
    const sent = sizes.map((n, i) => bytes(n, i + 7));
    for (const b of sent) websocketClientSend({ ref: cli.client.ref, binary: true }, b);
    const echoes = await cli.events.waitCount((e) => e.type === 'message', sent.length, 10000, 'echoes');
    expect(seen.length).toBe(sent.length);
    for (let i = 0; i < sent.length; i++) {
      expect(seen[i].lengthInside).toBe(sent[i].length);
      expect(seen[i].copy.equals(sent[i])).toBe(true);
      expect(Buffer.from(echoes[i].ctx.data as Buffer).equals(sent[i]), `echo ${i}`).toBe(true);
      // lent: detached once the method returned
      expect(seen[i].kept.length).toBe(lengthAfter(sent[i].length));
      if (lends) expect(seen[i].kept.buffer.byteLength).toBe(0);
    }
  });

  test('sending a lent payload after its event is a TypeError saying why, never an empty message', async () => {
    const seen: Seen[] = [];
    const srv = lendingServer(keeper(seen));
    const cli = await connectClient(srv);
    websocketClientSend({ ref: cli.client.ref, binary: true }, bytes(100 * KiB, 3));
    await until(() => seen.length === 1 || undefined, 5000, 'the message');
    await tick();
    const client = srv.events.of('open')[0].client;
    const late = seen[0].kept;
    if (!lends) {
      // A V8-owned copy: still whole, and sent as such.
      expect(late.length).toBe(100 * KiB);
      return;
    }
    const send = () => websocketServerSend({ ref: srv.server.ref, clients: [client] }, late);
    expect(send).toThrow(TypeError);
    expect(send).toThrow(/detached.*borrowedPayloads.*Buffer\.from/);
    expect(() => websocketServerSend({ ref: srv.server.ref, clients: [client] }, late.buffer as ArrayBuffer)).toThrow(/detached/);
    expect(() => websocketClientSend({ ref: cli.client.ref }, new DataView(late.buffer))).toThrow(/detached/);
    // A real empty message is still one.
    expect(websocketServerSend({ ref: srv.server.ref, clients: [client] }, Buffer.alloc(0))[0].success).toBe(true);
    const got = await cli.events.waitType('message');
    expect((got.ctx.data as Buffer).length).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(cli.events.of('message').length).toBe(1);
  });

  test('the bytes go back to the pool when the method returns, without a collection', async () => {
    for (const borrowed of [false, true]) {
      const seen: Seen[] = [];
      const srv = startServer({ disablePerMessageDeflate: true, borrowedPayloads: borrowed, method: keeper(seen) });
      const raw = await RawPeer.connect(srv.port);
      await raw.upgrade('/pool');
      const n = 6;
      const frame = encodeFrame({ opcode: 0x2, payload: Buffer.alloc(256 * KiB, 0x33) });
      const before = bufferPoolStats();
      // One at a time: each message's bytes are back (or not) before the next is read.
      for (let i = 0; i < n; i++) {
        raw.write(frame);
        await until(() => (seen.length === i + 1 ? true : undefined), 5000, `message ${i}`);
        await tick();
      }
      const after = bufferPoolStats();
      // Every payload is still referenced (seen[]): without the loan none can
      // have gone back, and each needed a fresh buffer or an older spare.
      if (borrowed && lends) {
        expect(after.hits - before.hits, 'pool hits with borrowed payloads').toBeGreaterThanOrEqual(n - 1);
        for (const s of seen) expect(s.kept.length).toBe(0);
      } else {
        // (Copies, in the Electron profile, give the engine's bytes back at once.)
        if (lends) expect(after.hits - before.hits, 'pool hits with kept payloads').toBeLessThan(n - 1);
        for (const s of seen) expect(s.kept.equals(s.copy)).toBe(true);
      }
      for (const s of seen) expect(s.copy.equals(Buffer.alloc(256 * KiB, 0x33))).toBe(true);
      raw.socket.destroy();
    }
  });

  test('a payload the method moved elsewhere (ArrayBuffer.prototype.transfer) keeps its bytes while later messages reuse the pool', async () => {
    // Node 20 has transfer() behind a flag; a context made after setting it
    // has the builtin, which works on this context's ArrayBuffers too. It
    // moves the memory (no copy) and detaches the Buffer the method got.
    v8.setFlagsFromString('--harmony-rab-gsab-transfer');
    const transfer = vm.runInNewContext('ArrayBuffer.prototype.transfer') as (this: ArrayBuffer) => ArrayBuffer;
    expect(typeof transfer).toBe('function');
    let moved: ArrayBuffer | undefined;
    const seen: Seen[] = [];
    const srv = startServer({
      disablePerMessageDeflate: true,
      borrowedPayloads: true,
      method: keeper(seen, (_client, data) => {
        if (moved === undefined) moved = transfer.call(data.buffer as ArrayBuffer);
      }),
    });
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/moved');
    const first = bytes(128 * KiB, 3);
    raw.write(encodeFrame({ opcode: 0x2, payload: first }));
    await until(() => (seen.length === 1 ? true : undefined), 5000, 'first message');
    await tick();
    expect(moved!.byteLength).toBe(first.length);
    // One at a time, so that each could take a buffer the pool got back.
    const before = bufferPoolStats();
    for (let i = 0; i < 8; i++) {
      raw.write(encodeFrame({ opcode: 0x2, payload: Buffer.alloc(128 * KiB, i) }));
      await until(() => (seen.length === i + 2 ? true : undefined), 5000, `message ${i + 2}`);
      await tick();
    }
    if (lends) expect(bufferPoolStats().hits - before.hits).toBeGreaterThanOrEqual(7); // the later ones did reuse memory
    // The moved memory was not given to the pool: no later message wrote over it.
    expect(Buffer.from(moved!).equals(first)).toBe(true);
    for (let i = 1; i < 9; i++) expect(seen[i].copy.equals(Buffer.alloc(128 * KiB, i - 1))).toBe(true);
  });

  test('a method that throws: the payload is still given back (and the next message whole)', async () => {
    const seen: Seen[] = [];
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onError);
    try {
      const srv = startServer({
        disablePerMessageDeflate: true,
        borrowedPayloads: true,
        method: keeper(seen, () => {
          throw new Error('handler failed');
        }),
      });
      const raw = await RawPeer.connect(srv.port);
      await raw.upgrade('/throws');
      raw.write(encodeFrame({ opcode: 0x2, payload: Buffer.alloc(100 * KiB, 1) }));
      raw.write(encodeFrame({ opcode: 0x2, payload: Buffer.alloc(100 * KiB, 2) }));
      await until(() => (seen.length === 2 && errors.length === 2 ? true : undefined), 5000, 'two messages, two errors');
      expect(seen[0].kept.length).toBe(lengthAfter(100 * KiB));
      expect(seen[1].kept.length).toBe(lengthAfter(100 * KiB));
      expect(seen[1].copy.equals(Buffer.alloc(100 * KiB, 2))).toBe(true);
    } finally {
      process.off('uncaughtException', onError);
    }
  });

  test('small payloads are unaffected (copied into memory of their own, as always)', async () => {
    const seen: Seen[] = [];
    const srv = startServer({ disablePerMessageDeflate: true, borrowedPayloads: true, method: keeper(seen) });
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/small');
    raw.write(encodeFrame({ opcode: 0x2, payload: bytes(1000, 5) }));
    raw.write(encodeFrame({ opcode: 0x2, payload: bytes(60 * KiB, 6) }));
    await until(() => (seen.length === 2 ? true : undefined), 5000, 'small messages');
    await tick();
    expect(seen[0].kept.equals(bytes(1000, 5))).toBe(true);
    expect(seen[1].kept.equals(bytes(60 * KiB, 6))).toBe(true);
  });

  test('a stream of 1 MiB messages drives no full collections (V8 stops counting a payload once it is given back)', async () => {
    if (!lends) return; // payloads are V8's own copies there: nothing is lent (the collection rate: external-memory.test.ts)
    const n = 512;
    const { major, got } = await majorsForMiBStream({ borrowedPayloads: true }, n);
    expect(got).toBe(n);
    // Kept payloads: about one per 64 MiB received, 8 here (external-memory.test.ts).
    expect(major, `${major} full collections for ${n} MiB received`).toBeLessThanOrEqual(2);
  }, 60000);
});

describe('a client with borrowedPayloads', () => {
  test('large messages are whole during the event and empty afterwards; the next ones are whole', async () => {
    const srv = startServer({ disablePerMessageDeflate: true });
    const seen: Seen[] = [];
    const events = new Collector();
    const record = keeper(seen);
    const client = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      borrowedPayloads: true,
      method: (s, c, type, ctx, ...rest) => {
        events.method(s, c, type, ctx, ...rest);
        record(s, c, type, ctx);
      },
    });
    expect((await websocketClientStart(client)).success).toBe(true);
    await events.waitType('open');
    const conn = (await srv.events.waitType('open')).client;
    const payloads = [bytes(300 * KiB, 9), bytes(300 * KiB, 10), bytes(MiB, 11)];
    for (const p of payloads) websocketServerSend({ ref: srv.server.ref, clients: [conn] }, p);
    await until(() => (seen.length === payloads.length ? true : undefined), 5000, 'messages');
    await tick();
    for (let i = 0; i < payloads.length; i++) {
      expect(seen[i].copy.equals(payloads[i])).toBe(true);
      expect(seen[i].kept.length).toBe(lengthAfter(payloads[i].length));
    }
  });
});
