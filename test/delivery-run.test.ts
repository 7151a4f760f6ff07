// Small data events of a delivered batch reach their methods through one
// JavaScript call per run of them (native/delivery.cc, deliverRun) instead of
// one call each. What a method does in the middle of such a run must have the
// effect it has between two separately delivered events:
// - a throw surfaces as 'uncaughtException' before the next event, and every
//   later event of the batch is still delivered, once, in order;
// - clearing a server drops its later events (another server's still arrive);
// - stopping a server leaves its later events (already read) delivered.
// Each case runs in a child process (its uncaught exceptions are the point):
// two servers S and T, a client to each; the clients send a mix of text,
// small binary (slab slices), a 5,000-byte binary (delivered on its own) and
// the trigger, then the JS thread blocks for 300 ms so the IO thread reads
// all of it and it is delivered in one batch (in inline mode the loop reads
// both sockets in one poll phase after the block). The log records each
// event with the number of the batch it came in (a microtask counts batches:
// none runs inside one).
import { spawnSync } from 'child_process';
import { describe, expect, it } from 'vitest';
import { root } from '../lib/binding';

const script = `
const path = require('path');
const b = process.env.IXWS_BINARY ? require(path.resolve(process.env.IXWS_BINARY)) : require('node-gyp-build')(${JSON.stringify(root)});
const mode = process.argv[1];
const log = [];
let batch = 0, queued = false;
function mark() {
  if (!queued) { queued = true; queueMicrotask(() => { queued = false; batch++; }); }
  return batch;
}
process.on('uncaughtException', (e) => log.push(['uncaught', e.message, batch]));
const label = (ctx) => (ctx.binary ? 'bin' + ctx.data.length + ':' + ctx.data[0] : ctx.data);
let S, T, c1, c2, opens = 0;
const srvMethod = (name) => (srv, conn, type, ctx) => {
  if (type === 'open' || type === 'close') { log.push([name, type, mark()]); return; }
  if (type !== 'message') return;
  const l = label(ctx);
  log.push([name, l, mark()]);
  if (mode === 'throw' && (l.startsWith('boom') || l === 'bin2:9')) throw new Error(l);
  if (mode === 'clear' && l === 'clear') b.websocketServerClear(S);
  if (mode === 'stop' && l === 'stop') b.websocketServerStop(S);
};
S = b.websocketServer({ port: 0, method: srvMethod('S') });
T = b.websocketServer({ port: 0, method: srvMethod('T') });
const ps = b.websocketServerStart(S).port, pt = b.websocketServerStart(T).port;
const cm = (srv, conn, type) => { if (type === 'open' && ++opens === 2) setTimeout(go, 20); };
c1 = b.websocketClient({ url: 'ws://127.0.0.1:' + ps + '/', enableAutomaticReconnection: false, method: cm });
c2 = b.websocketClient({ url: 'ws://127.0.0.1:' + pt + '/', enableAutomaticReconnection: false, method: cm });
b.websocketClientStart(c1);
b.websocketClientStart(c2);
function go() {
  const seq = mode === 'throw'
    ? [[c1, 'a'], [c1, Buffer.from([1, 1])], [c1, 'boom1'], [c2, 'y1'], [c1, Buffer.from([9, 9])],
       [c1, Buffer.alloc(5000, 7)], [c1, 'boom2'], [c1, 'b'], [c2, 'y2'], [c1, Buffer.from([3, 3, 3])]]
    : [[c1, 'x1'], [c1, Buffer.from([1, 1])], [c2, 'y1'], [c1, mode], [c2, 'y2'], [c1, 'x3'],
       [c1, Buffer.from([3, 3, 3])], [c2, 'y3']];
  for (const [c, m] of seq) b.websocketClientSend(c, m);
  setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300), 0);
  setTimeout(() => {
    console.log(JSON.stringify(log));
    b.websocketServerClear(S); b.websocketServerClear(T);
    b.websocketClientClear(c1); b.websocketClientClear(c2);
  }, 800);
}
setTimeout(() => { console.log('timeout'); process.exit(3); }, 10000).unref();
`;

type Entry = [string, string, number];

function run(mode: string): Entry[] {
  const r = spawnSync(process.execPath, ['-e', script, mode], { encoding: 'utf8', timeout: 20_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Entry[];
}

const of = (log: Entry[], who: string) => log.filter((e) => e[0] === who).map((e) => e[1]);

describe('a run of events delivered by one call', () => {
  it('a method that throws mid-batch: uncaughtException before the next event, every later event once, in order', () => {
    const log = run('throw');
    expect(of(log, 'S')).toEqual(['open', 'a', 'bin2:1', 'boom1', 'bin2:9', 'bin5000:7', 'boom2', 'b', 'bin3:3']);
    expect(of(log, 'T')).toEqual(['open', 'y1', 'y2']);
    // Each throw's uncaughtException comes right after the event that threw,
    // in the same batch (before any other event is delivered).
    for (const thrown of ['boom1', 'bin2:9', 'boom2']) {
      const at = log.findIndex((e) => e[0] === 'S' && e[1] === thrown);
      expect(log[at + 1]).toEqual(['uncaught', thrown, log[at][2]]);
    }
    expect(log.filter((e) => e[0] === 'uncaught')).toHaveLength(3);
    // The throws happened inside a batch: the events after 'boom1' that the
    // client sent before the block came in the same batch as it.
    const batchOf = (l: string) => log.find((e) => e[0] === 'S' && e[1] === l)![2];
    expect(batchOf('bin2:9')).toBe(batchOf('boom1'));
  });

  it('a method that clears its server mid-batch: the server\'s later events are dropped, another server\'s arrive', () => {
    const log = run('clear');
    expect(of(log, 'S')).toEqual(['open', 'x1', 'bin2:1', 'clear']);
    expect(of(log, 'T')).toEqual(['open', 'y1', 'y2', 'y3']);
  });

  it('a method that stops its server mid-batch: the events already read still arrive once, then close', () => {
    const log = run('stop');
    expect(of(log, 'S')).toEqual(['open', 'x1', 'bin2:1', 'stop', 'x3', 'bin3:3', 'close']);
    expect(of(log, 'T')).toEqual(['open', 'y1', 'y2', 'y3']);
  });
});
