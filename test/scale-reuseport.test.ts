// reusePort across processes: two server processes (test/fixtures/topic-node.js
// on the compiled package) listen on one port and the kernel gives each some
// of the connections; a third without reusePort cannot take the port, and
// says why in its start status.
import * as path from 'path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage } from './support/compile';
import { until } from './support/events';
import { ServerNode, startNode } from './support/nodes';

const outDir = path.join(root, 'build-scale-reuseport');
const pkg = path.join(outDir, 'lib', 'index.js');

describe('reusePort: several processes on one port', () => {
  const nodes: ServerNode[] = [];
  const sockets: WebSocket[] = [];

  beforeAll(() => compilePackage(outDir), 120_000);
  afterAll(async () => {
    for (const s of sockets) s.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
  });

  test('two processes share the port and both receive connections; an exclusive server cannot join', async () => {
    const a = await startNode(pkg, 'A', { port: 0, reusePort: true });
    nodes.push(a);
    const port = a.of('started')[0]?.port;
    expect(port, a.tail()).toBeGreaterThan(0);
    const b = await startNode(pkg, 'B', { port, reusePort: true });
    nodes.push(b);
    expect(b.of('started')[0]?.port, b.tail()).toBe(port);

    const c = await startNode(pkg, 'C', { port });
    nodes.push(c);
    expect(c.of('started')).toEqual([]);
    expect(c.of('startFailed')[0].message).toMatch(/address already in use/);

    const n = 40;
    for (let i = 0; i < n; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?i=${i}`);
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    }
    await until(() => (a.of('open').length + b.of('open').length === n ? true : undefined), 10000, `${n} opens over A and B`);
    const uris = [...a.of('open'), ...b.of('open')].map((o) => o.uri).sort();
    expect(uris).toEqual(Array.from({ length: n }, (_, i) => `/?i=${i}`).sort());
    // Both got some (all 40 on one of two sockets: odds 2^-39).
    expect(a.of('open').length).toBeGreaterThan(0);
    expect(b.of('open').length).toBeGreaterThan(0);
  }, 60_000);
});
