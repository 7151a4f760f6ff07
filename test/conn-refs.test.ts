// Connection refs through the addon (native/registry.h's ConnRefs, the engine
// conn id <-> ref table): many connections closing out of order, each event
// still carrying its own connection's ref and each send by ref reaching that
// connection; stale refs refused; freed refs reused lowest first; a stop with
// connections open frees every ref. (test/registry.test.ts checks the table
// alone against a model.)
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClientSend,
  websocketClientStop,
  websocketServerClients,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
} from '../lib/index';
import { connectClient, runCleanup, startServer } from './support';
import type { Connected } from './support';

afterEach(runCleanup);

describe('connection refs', () => {
  test('out-of-order closes: events and sends still map to the right connection; lowest free refs reused', async () => {
    const srv = startServer();
    const peers: Connected[] = [];
    for (let i = 0; i < 24; i++) peers.push(await connectClient(srv));
    expect(peers.map((p) => p.conn)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));

    const closing = [5, 17, 2, 23, 9, 1, 12, 20, 24];
    for (const ref of closing) websocketClientStop(peers[ref - 1].client);
    for (const ref of closing) await srv.events.waitType('close', ref);
    const left = peers.filter((p) => !closing.includes(p.conn));
    expect(websocketServerClients(srv.server)).toEqual(left.map((p) => p.conn));

    // Stale refs: nothing to send to.
    const stale = websocketServerSend({ ref: srv.server.ref, clients: closing }, 'stale');
    expect(stale.map((s) => s.success)).toEqual(closing.map(() => false));

    // Each remaining connection's message carries its own ref ...
    for (const p of left) expect(websocketClientSend(p.client, `up-${p.conn}`).success).toBe(true);
    for (const p of left) {
      const m = await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === `up-${p.conn}`);
      expect(m.client).toBe(p.conn);
    }
    // ... and a send by ref reaches exactly that connection.
    const statuses = websocketServerSend({ ref: srv.server.ref, clients: left.map((p) => p.conn) }, 'all');
    expect(statuses.map((s) => [s.client, s.success])).toEqual(left.map((p) => [p.conn, true]));
    for (const p of left) {
      websocketServerSend({ ref: srv.server.ref, clients: [p.conn] }, `down-${p.conn}`);
      const m = await p.events.waitFor((e) => e.type === 'message' && String(e.ctx.data).startsWith('down-'));
      expect(m.ctx.data).toBe(`down-${p.conn}`);
    }

    // New connections take the freed refs, lowest first (24, the highest,
    // went with 23 behind it: the next after the reused ones is 23).
    const again: number[] = [];
    for (let i = 0; i < 9; i++) again.push((await connectClient(srv)).conn);
    expect(again).toEqual([1, 2, 5, 9, 12, 17, 20, 23, 24]);
    expect(websocketServerClients(srv.server)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  }, 60_000);

  test('a stop with connections open frees every ref; after a restart refs start at 1', async () => {
    const srv = startServer();
    const peers: Connected[] = [];
    for (let i = 0; i < 6; i++) peers.push(await connectClient(srv));
    websocketClientStop(peers[2].client);
    await srv.events.waitType('close', 3);
    websocketServerStop(srv.server);
    await srv.events.waitCount((e) => e.type === 'close', 6, 10_000);
    expect(websocketServerClients(srv.server)).toEqual([]);
    expect(websocketServerSend({ ref: srv.server.ref, clients: [1, 2] }, 'gone').map((s) => s.success)).toEqual([
      false,
      false,
    ]);
    const st = websocketServerStart({ ...srv.server, port: 0 });
    expect(st.success).toBe(true);
    const restarted = { ...srv, port: st.port as number };
    const a = await connectClient(restarted);
    const b = await connectClient(restarted);
    expect([a.conn, b.conn]).toEqual([1, 2]);
  }, 60_000);
});
