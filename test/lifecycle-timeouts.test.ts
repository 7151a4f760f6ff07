// Timeouts: the server drops a client whose opening handshake is too slow while
// others keep working; the client start `timeout` bounds a connect to a peer
// that accepts TCP and never answers the upgrade.
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import { websocketClientSend, websocketClientStart, websocketServerSend } from '../lib/index';
import { Collector, RawPeer, connectClient, defer, delay, newClient, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

/** A TCP listener that accepts and then never writes a byte. */
async function blackHole(): Promise<{ port: number; accepted: () => number; closed: () => number }> {
  let accepted = 0;
  let closed = 0;
  const srv = net.createServer((s) => {
    accepted++;
    s.on('close', () => closed++);
    s.on('error', () => {});
    s.resume();
    defer(() => s.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  defer(() => new Promise((r) => srv.close(r)));
  return { port: (srv.address() as net.AddressInfo).port, accepted: () => accepted, closed: () => closed };
}

describe('server handshake timeout', () => {
  test('a client sending its request slowly is dropped after handshakeTimeout; others keep working', async () => {
    const srv = startServer({ handshakeTimeout: 1 });
    // The deadline is armed at accept: after t0, and possibly before the
    // connect is seen here, so t0 is taken before connecting (a lower bound).
    const t0 = Date.now();
    const slow = await RawPeer.connect(srv.port);
    // A valid request, one line every 150 ms: never complete within 1 s.
    const lines = [
      'GET / HTTP/1.1\r\n',
      'Host: localhost\r\n',
      'Upgrade: websocket\r\n',
      'Connection: Upgrade\r\n',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
      'Sec-WebSocket-Version: 13\r\n',
      'X-Slow-1: a\r\n',
      'X-Slow-2: b\r\n',
      'X-Slow-3: c\r\n',
      'X-Slow-4: d\r\n',
      'X-Slow-5: e\r\n',
      'X-Slow-6: f\r\n',
    ];
    let i = 0;
    const trickle = setInterval(() => {
      if (i < lines.length && !slow.ended) slow.write(lines[i++]);
    }, 150);
    defer(() => clearInterval(trickle));

    // Meanwhile a normal client connects and exchanges messages.
    const ok = await connectClient(srv);
    expect(websocketClientSend(ok.client, 'during slow handshake').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'during slow handshake', 3000);

    await slow.waitEnd(3000);
    const ms = Date.now() - t0;
    clearInterval(trickle);
    console.log(`slow handshake dropped after ${ms} ms (handshakeTimeout 1 s), ${i} of ${lines.length} lines sent`);
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(1000 + 600);
    expect(i).toBeLessThan(lines.length);
    // The slow peer never became a connection.
    expect(srv.events.of('open')).toHaveLength(1);
    // The normal client is unaffected.
    websocketServerSend(srv.server, 'still serving');
    await ok.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'still serving', 3000);
    expect(ok.events.of('close')).toHaveLength(0);
  });

  test('a client that connects and sends nothing is dropped too', async () => {
    const srv = startServer({ handshakeTimeout: 0.5 });
    const t0 = Date.now();  // before the accept that arms the deadline
    const idle = await RawPeer.connect(srv.port);
    await idle.waitEnd(3000);
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(ms).toBeLessThan(500 + 600);
    // The port still serves full handshakes.
    const peer = await RawPeer.connect(srv.port);
    await peer.upgrade();
    await srv.events.waitType('open');
  });

  test('a handshake completed within the timeout is not affected by it', async () => {
    const srv = startServer({ handshakeTimeout: 0.5 });
    const c = await connectClient(srv);
    await delay(900);
    expect(c.events.of('close')).toHaveLength(0);
    expect(websocketClientSend(c.client, 'later').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'later', 3000);
  });
});

describe('client start timeout', () => {
  test('a black hole: success false, errorStr names the timeout, resolved within timeout + margin', async () => {
    const hole = await blackHole();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${hole.port}/`,
      enableAutomaticReconnection: false,
      method: ev.method,
    });
    const t0 = Date.now();
    const st = await websocketClientStart({ ref: client.ref, timeout: 0.8 });
    const ms = Date.now() - t0;
    console.log(`client start against a black hole resolved after ${ms} ms (timeout 0.8 s): ${st.errorStr}`);
    expect(st.success).toBe(false);
    expect(st.errorStr).toMatch(/time(d)? ?out/i);
    expect(st.http_status).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(750);
    expect(ms).toBeLessThan(800 + 500);
    expect(hole.accepted()).toBe(1);
    // One error event, and the half-open TCP connection is released.
    const err = await ev.waitType('error');
    expect(err.ctx.reason).toMatch(/time(d)? ?out/i);
    expect(err.ctx.retries).toBe(1);
    await until(() => (hole.closed() === 1 ? true : undefined), 2000, 'the black-holed socket to close');
    await delay(300);
    expect(ev.of('error')).toHaveLength(1);
  });

  test('with reconnection on, the first attempt resolves at the timeout and the next attempts keep the bound', async () => {
    const hole = await blackHole();
    const ev = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${hole.port}/`,
      minWaitBetweenReconnectionRetries: 10,
      timeout: 0.4,
      method: ev.method,
    });
    const t0 = Date.now();
    const st = await websocketClientStart(client);
    expect(st.success).toBe(false);
    expect(Date.now() - t0).toBeLessThan(400 + 500);
    const errors = await ev.waitCount((e) => e.type === 'error', 3, 4000, 'error events');
    expect(errors.map((e) => e.ctx.retries).slice(0, 3)).toEqual([1, 2, 3]);
    for (const e of errors) expect(e.ctx.reason).toMatch(/time(d)? ?out/i);
    expect(hole.accepted()).toBeGreaterThanOrEqual(3);
  });

  test('the default timeout is 20 s and the object carries a changed one', async () => {
    const c = newClient({ url: 'ws://127.0.0.1:1/' });
    expect(c.timeout).toBe(20);
    const c2 = newClient({ url: 'ws://127.0.0.1:1/', timeout: 3.5 });
    expect(c2.timeout).toBe(3.5);
  });
});
