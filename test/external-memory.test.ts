// What V8 is told about the memory behind a received large binary message.
// A Buffer of 64 KiB or more aliases the engine's payload bytes (an external
// Buffer). V8 already counts every ArrayBuffer's backing store as external
// memory (its ArrayBufferSweeper does, for external ones too), and decides
// when to collect from that count: a payload counted twice (once more through
// napi_adjust_external_memory) made V8 run a full collection every ~32 MiB
// of received messages instead of every ~64 MiB, 10-20 % of a large-message
// echo server's CPU. Each payload must count, and once.
import * as v8 from 'v8';
import * as vm from 'vm';
import { afterEach, expect, test } from 'vitest';
import { binding } from '../lib/binding';
import { RawPeer, runCleanup, startServer } from './support';
import { majorsForMiBStream } from './support/gc';
import { encodeFrame } from './support/wire';

afterEach(runCleanup);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const MiB = 1024 * 1024;

test('held 1 MiB binary messages count as V8 external memory, by their size (what makes a flood drive collections)', async () => {
  const srv = startServer({ disablePerMessageDeflate: true });
  const raw = await RawPeer.connect(srv.port);
  await raw.upgrade('/external');
  await srv.events.waitType('open');
  const count = 8;
  // Built before the baseline; written as is (a socket write keeps no copy
  // in JavaScript memory).
  const frame = encodeFrame({ opcode: 0x2, payload: Buffer.alloc(MiB, 0x5a) });
  gc();
  await new Promise((r) => setImmediate(r));
  const before = process.memoryUsage().external;
  for (let i = 0; i < count; i++) raw.write(frame);
  // The collector holds every message's context, so every payload stays alive.
  const msgs = await srv.events.waitCount((e) => e.type === 'message', count, 10000, 'large messages');
  for (const m of msgs) {
    const data = m.ctx.data as Buffer;
    expect(Buffer.isBuffer(data)).toBe(true);
    expect(data.length).toBe(MiB);
    expect(data[0]).toBe(0x5a);
    expect(data[MiB - 1]).toBe(0x5a);
  }
  const grown = process.memoryUsage().external - before;
  // V8 sees the payloads (backing-store bytes, what memoryUsage reports;
  // the rest of the test allocates a few KiB of external memory). A payload
  // also reported through napi_adjust_external_memory does not show here
  // (seen: the defect re-introduced passes this test); the next test, on
  // the collection rate, is the one that catches it.
  expect(grown).toBeGreaterThanOrEqual(count * MiB * 0.95);
  expect(grown).toBeLessThan(count * MiB * 1.5);
});

test('a stream of 1 MiB binary messages: about one full collection per 64 MiB received, not per 32 MiB', async () => {
  // V8's soft limit for external memory is 64 MiB over what the last full
  // collection left. With external Buffers, counted once, 1 GiB of dropped
  // payloads takes about 16 full collections (15 measured, Node 20); counted
  // twice, about 30. Where payloads are copied into V8-owned Buffers (the
  // Electron profile, binding.externalBuffers false) the count varies more,
  // 0-27 measured; it stays bounded.
  const n = 1024;
  const bound = Math.round((n / 64) * (binding.externalBuffers ? 1.25 : 2));
  const { major, got } = await majorsForMiBStream({}, n);
  expect(got).toBe(n);
  // External payloads do drive full collections; copies may all die young
  // (0 measured when another process had the second core).
  if (binding.externalBuffers) expect(major).toBeGreaterThan(0);
  expect(major, `${major} full collections for ${n} MiB received (external Buffers: ${binding.externalBuffers})`).toBeLessThanOrEqual(bound);
}, 60000);
