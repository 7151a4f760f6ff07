// How many full (mark-compact) collections V8 makes while something runs.
import { PerformanceObserver, constants } from 'perf_hooks';
import * as v8 from 'v8';
import * as vm from 'vm';
import type { ServerOptions } from '../../lib/index';
import { startServer } from './objects';
import { RawPeer } from './raw';
import { encodeFrame } from './wire';

v8.setFlagsFromString('--expose-gc');
// A full collection now. (Kept to this module: called through an imported
// binding, the vitest transform's namespace object is its receiver, and a
// suite's baseline after such a call read 10 % off.)
const gc = vm.runInNewContext('gc') as () => void;

/** Full (mark-compact) collections while `run` runs (after one forced first). */
export async function majorsDuring(run: () => Promise<void>): Promise<number> {
  gc();
  await new Promise((r) => setImmediate(r));
  let major = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    await run();
    await new Promise((r) => setTimeout(r, 20)); // gc entries are queued
  } finally {
    obs.disconnect();
  }
  return major;
}

/**
 * Full collections while a server started with `options` receives `n`
 * binary messages of 1 MiB from a hand-made peer (every 16th write waits a
 * millisecond, so that the socket drains), and how many it got.
 */
export async function majorsForMiBStream(options: ServerOptions, n: number): Promise<{ major: number; got: number }> {
  let got = 0;
  const srv = startServer({
    disablePerMessageDeflate: true,
    ...options,
    method: (_s, _c, type) => {
      if (type === 'message') got++;
    },
  });
  const raw = await RawPeer.connect(srv.port);
  await raw.upgrade('/stream');
  const frame = encodeFrame({ opcode: 0x2, payload: Buffer.alloc(1024 * 1024, 0x5a) });
  const major = await majorsDuring(async () => {
    for (let i = 0; i < n; i++) {
      raw.write(frame);
      if (i % 16 === 15) await new Promise((r) => setTimeout(r, 1));
    }
    const t0 = Date.now();
    while (got < n && Date.now() - t0 < 20000) await new Promise((r) => setTimeout(r, 5));
  });
  return { major, got };
}
