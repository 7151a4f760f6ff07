// Client redirects (followRedirects, maxRedirects): a small Node http(s)
// server answers the upgrade with 301/302/303/307/308 and a Location, and
// can also accept the upgrade itself (ws, for hops that stay on its host);
// our own server is the end of the other chains. What each server received
// (paths and headers) is asserted where it counts: credentials reach the
// original host only.
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import type { Duplex } from 'stream';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { WebSocketServer as WsServer } from 'ws';
import { websocketClientStart, websocketClientStop } from '../lib/index';
import type { ClientOptions } from '../lib/index';
import { Collector, defer, newClient, runCleanup, startServer, until } from './support';
import { makeTestCa, type TestCa } from './support/certs';

afterEach(runCleanup);

let certs: TestCa;
beforeAll(() => {
  certs = makeTestCa();
}, 60_000);
afterAll(() => certs?.remove());

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The header lines as sent (duplicates not joined). */
  raw: string[];
}

/**
 * An http(s) server whose upgrade requests are answered by `route`: a
 * redirect ({ status, location }) or 'accept' (a WebSocket opened by ws).
 * Every upgrade request is recorded in `seen`.
 */
async function redirector(
  route: (path: string) => { status: number; location?: string } | 'accept',
  tls?: { cert: string; key: string },
) {
  const seen: Seen[] = [];
  const wss = new WsServer({ noServer: true });
  const server = tls ? https.createServer(tls) : http.createServer();
  const sockets = new Set<Duplex>();
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const path = req.url ?? '';
    seen.push({ path, headers: req.headers, raw: req.rawHeaders });
    const r = route(path);
    if (r === 'accept') {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
      return;
    }
    socket.end(
      `HTTP/1.1 ${r.status} Moved\r\n${r.location !== undefined ? `Location: ${r.location}\r\n` : ''}` +
        'Content-Length: 0\r\nConnection: close\r\n\r\n',
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  defer(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port, seen, wss };
}

async function start(url: string, extra: ClientOptions = {}) {
  const events = new Collector();
  const client = newClient({ url, enableAutomaticReconnection: false, method: events.method, ...extra });
  const status = await websocketClientStart({ ref: client.ref, timeout: 5 });
  return { client, events, status };
}

describe('followRedirects', () => {
  test('301, 302, 303, 307 and 308 are followed to our server; the status gives the final url and the count', async () => {
    const final = startServer();
    const finalUrl = `ws://127.0.0.1:${final.port}/end?x=1`;
    const r = await redirector((p) => {
      const m = /^\/r(\d+)$/.exec(p);
      const chain: Record<string, string> = { '301': '/r302', '302': '/r303', '303': '/r307', '307': '/r308', '308': finalUrl };
      return m ? { status: Number(m[1]), location: chain[m[1]!] } : { status: 404 };
    });
    const c = await start(`ws://127.0.0.1:${r.port}/r301`, { followRedirects: true });
    expect(c.status).toMatchObject({ success: true, http_status: 101, errorStr: '', uri: finalUrl, redirects: 5 });
    expect(r.seen.map((s) => s.path)).toEqual(['/r301', '/r302', '/r303', '/r307', '/r308']);
    const open = await final.events.waitType('open');
    expect(open.ctx.uri).toBe('/end?x=1');
    const clientOpen = await c.events.waitType('open');
    expect(clientOpen.ctx.uri).toBe(finalUrl);
  });

  test('a relative Location is resolved against the url that got it (path, dot segments, query, scheme-relative)', async () => {
    const final = startServer();
    const r = await redirector((p) => {
      if (p === '/a/b/start') return { status: 302, location: '../c/./next?q=2' };
      if (p === '/a/c/next?q=2') return { status: 307, location: `//127.0.0.1:${final.port}/rel` };
      return { status: 404 };
    });
    const c = await start(`ws://127.0.0.1:${r.port}/a/b/start`, { followRedirects: true });
    expect(c.status).toMatchObject({ success: true, uri: `ws://127.0.0.1:${final.port}/rel`, redirects: 2 });
    expect(r.seen.map((s) => s.path)).toEqual(['/a/b/start', '/a/c/next?q=2']);
    expect((await final.events.waitType('open')).ctx.uri).toBe('/rel');
  });

  test('an http:// Location is read as ws:// (and https:// as wss://)', async () => {
    const final = startServer();
    const r = await redirector(() => ({ status: 301, location: `http://127.0.0.1:${final.port}/h` }));
    const c = await start(`ws://127.0.0.1:${r.port}/`, { followRedirects: true });
    expect(c.status).toMatchObject({ success: true, redirects: 1 });
    expect((await final.events.waitType('open')).ctx.uri).toBe('/h');
  });

  test('more redirects than maxRedirects fail the start with a clear errorStr', async () => {
    const r = await redirector(() => ({ status: 302, location: '/loop' }));
    const c = await start(`ws://127.0.0.1:${r.port}/loop`, { followRedirects: true, maxRedirects: 3 });
    expect(c.status.success).toBe(false);
    expect(c.status.http_status).toBe(302);
    expect(c.status.errorStr).toBe('Too many redirects (maxRedirects 3)');
    expect(c.status.uri).toBe(`ws://127.0.0.1:${r.port}/loop`);
    // The first request and three followed.
    expect(r.seen.length).toBe(4);
    const err = await c.events.waitType('error');
    expect(err.ctx).toMatchObject({ http_status: 302, reason: 'Too many redirects (maxRedirects 3)' });
  });

  test('the default maxRedirects is 10', async () => {
    const r = await redirector(() => ({ status: 301, location: '/again' }));
    const c = await start(`ws://127.0.0.1:${r.port}/again`, { followRedirects: true });
    expect(c.status.errorStr).toBe('Too many redirects (maxRedirects 10)');
    expect(r.seen.length).toBe(11);
    expect(c.client.maxRedirects).toBe(10);
    expect(c.client.followRedirects).toBe(true);
  });

  test('a redirect without Location, or to another scheme, fails the start', async () => {
    const r = await redirector((p) => (p === '/none' ? { status: 302 } : { status: 302, location: 'ftp://127.0.0.1/x' }));
    const none = await start(`ws://127.0.0.1:${r.port}/none`, { followRedirects: true });
    expect(none.status).toMatchObject({ success: false, http_status: 302 });
    expect(none.status.errorStr).toMatch(/without a Location/);
    const ftp = await start(`ws://127.0.0.1:${r.port}/ftp`, { followRedirects: true });
    expect(ftp.status).toMatchObject({ success: false, http_status: 302 });
    expect(ftp.status.errorStr).toMatch(/unsupported scheme 'ftp'/);
  });

  test('wss:// to ws:// is refused; the insecure server is never contacted', async () => {
    const final = startServer();
    const tls = certs.leaf('redirector', ['DNS:localhost', 'IP:127.0.0.1']);
    const r = await redirector(() => ({ status: 302, location: `ws://127.0.0.1:${final.port}/plain` }), tls);
    const c = await start(`wss://localhost:${r.port}/secure`, { followRedirects: true, tls: { ca: certs.ca } });
    expect(c.status.success).toBe(false);
    expect(c.status.http_status).toBe(302);
    expect(c.status.errorStr).toBe(`Redirect from a secure url (wss://) to an insecure one refused: ws://127.0.0.1:${final.port}/plain`);
    expect(r.seen.map((s) => s.path)).toEqual(['/secure']);
    await new Promise((res) => setTimeout(res, 100));
    expect(final.events.of('open')).toHaveLength(0);
  });

  test('ws:// to wss:// is followed, and TLS is verified for the new host', async () => {
    const tls = certs.leaf('final-tls', ['DNS:localhost']);
    const final = startServer({ tls });
    const r = await redirector(() => ({ status: 308, location: `wss://localhost:${final.port}/up` }));
    const c = await start(`ws://127.0.0.1:${r.port}/`, { followRedirects: true, tls: { ca: certs.ca } });
    expect(c.status).toMatchObject({ success: true, uri: `wss://localhost:${final.port}/up`, redirects: 1 });
    expect((await final.events.waitType('open')).ctx.uri).toBe('/up');
    // Same chain without the CA: the redirect is followed, the certificate refused.
    const bad = await start(`ws://127.0.0.1:${r.port}/`, { followRedirects: true });
    expect(bad.status.success).toBe(false);
    expect(bad.status.errorStr).toMatch(/TLS/);
  });

  test('credentials (Authorization, Cookie, the url userinfo) go to the original host only', async () => {
    const other = startServer();
    const r = await redirector((p) => {
      if (p === '/same') return { status: 302, location: '/final' };
      if (p === '/elsewhere') return { status: 302, location: `ws://localhost:${other.port}/there` };
      return 'accept';
    });
    const headers = { Authorization: 'Bearer secret', Cookie: 'session=1', 'X-Trace': 'abc' };
    // The same host and port: everything kept.
    const same = await start(`ws://127.0.0.1:${r.port}/same`, { followRedirects: true, headers });
    expect(same.status).toMatchObject({ success: true, redirects: 1 });
    const atFinal = r.seen.find((s) => s.path === '/final')!;
    expect(atFinal.headers).toMatchObject({ authorization: 'Bearer secret', cookie: 'session=1', 'x-trace': 'abc' });
    // Another host: only the harmless header arrives.
    const away = await start(`ws://127.0.0.1:${r.port}/elsewhere`, { followRedirects: true, headers });
    expect(away.status).toMatchObject({ success: true, uri: `ws://localhost:${other.port}/there` });
    const open = await other.events.waitType('open');
    const got = Object.fromEntries(Object.entries(open.ctx.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    expect(got['x-trace']).toBe('abc');
    expect(got.authorization).toBeUndefined();
    expect(got.cookie).toBeUndefined();
    // The original request did carry them.
    expect(r.seen.find((s) => s.path === '/elsewhere')!.headers.authorization).toBe('Bearer secret');

    // Userinfo: Basic auth on the original host, none elsewhere.
    await websocketClientStop(same.client);
    await websocketClientStop(away.client);
    const n = r.seen.length;
    const user = await start(`ws://me:p%40ss@127.0.0.1:${r.port}/same`, { followRedirects: true });
    expect(user.status.success).toBe(true);
    const basic = `Basic ${Buffer.from('me:p@ss').toString('base64')}`;
    expect(r.seen.slice(n).map((s) => s.headers.authorization)).toEqual([basic, basic]);
    const userAway = await start(`ws://me:pw@127.0.0.1:${r.port}/elsewhere`, { followRedirects: true });
    expect(userAway.status.success).toBe(true);
    const open2 = await other.events.waitCount((e) => e.type === 'open', 2);
    const got2 = Object.keys(open2[1]!.ctx.headers as Record<string, string>).map((k) => k.toLowerCase());
    expect(got2).not.toContain('authorization');
  });

  test('once a chain has left the original host, credentials never come back: A -> B -> A gets none at the path B chose', async () => {
    const a = await redirector((p) => (p === '/start' ? { status: 302, location: `ws://localhost:${b.port}/b` } : 'accept'));
    const b = await redirector(() => ({ status: 302, location: `ws://127.0.0.1:${a.port}/chosen-by-b` }));
    const headers = { Authorization: 'Bearer secret', Cookie: 'session=1', 'X-Trace': 'abc' };
    const c = await start(`ws://127.0.0.1:${a.port}/start`, { followRedirects: true, headers });
    expect(c.status).toMatchObject({ success: true, redirects: 2, uri: `ws://127.0.0.1:${a.port}/chosen-by-b` });
    expect(a.seen.map((x) => x.path)).toEqual(['/start', '/chosen-by-b']);
    expect(a.seen[0]!.headers).toMatchObject({ authorization: 'Bearer secret', cookie: 'session=1' });
    expect(a.seen[1]!.headers['x-trace']).toBe('abc');
    expect(a.seen[1]!.headers.authorization).toBeUndefined();
    expect(a.seen[1]!.headers.cookie).toBeUndefined();
    expect(b.seen[0]!.headers.authorization).toBeUndefined();
    // The url's userinfo as well.
    const user = await start(`ws://me:pw@127.0.0.1:${a.port}/start`, { followRedirects: true });
    expect(user.status.success).toBe(true);
    expect(a.seen[2]!.headers.authorization).toBe(`Basic ${Buffer.from('me:pw').toString('base64')}`);
    expect(a.seen[3]!.path).toBe('/chosen-by-b');
    expect(a.seen[3]!.headers.authorization).toBeUndefined();
  });

  test('a Host header given replaces the url host on its own host (sent once) and is dropped on another', async () => {
    const other = startServer();
    const r = await redirector((p) => (p === '/elsewhere' ? { status: 302, location: `ws://localhost:${other.port}/there` } : 'accept'));
    const headers = { Host: 'virtual.example', 'User-Agent': 'probe/1' };
    const here = await start(`ws://127.0.0.1:${r.port}/here`, { headers });
    expect(here.status.success).toBe(true);
    const raw = r.seen[0]!.raw;
    const named = (n: string) => raw.filter((_, i) => i % 2 === 0 && raw[i]!.toLowerCase() === n).map((_, i) => i);
    expect(named('host')).toHaveLength(1);
    expect(r.seen[0]!.headers.host).toBe('virtual.example');
    expect(named('user-agent')).toHaveLength(1);
    expect(r.seen[0]!.headers['user-agent']).toBe('probe/1');
    const away = await start(`ws://127.0.0.1:${r.port}/elsewhere`, { followRedirects: true, headers });
    expect(away.status.success).toBe(true);
    const open = await other.events.waitType('open');
    const got = Object.fromEntries(Object.entries(open.ctx.headers as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    expect(got.host).toBe(`localhost:${other.port}`);
    expect(got['user-agent']).toBe('probe/1');
  });

  test('tls.servername is for the url host only: a redirect to another host is verified against its own name', async () => {
    const first = certs.leaf('named', ['DNS:ws.example.test']);
    const tls = certs.leaf('final-tls', ['DNS:localhost']);
    const final = startServer({ tls });
    const r = await redirector(() => ({ status: 307, location: `wss://localhost:${final.port}/named` }), first);
    const c = await start(`wss://127.0.0.1:${r.port}/`, { followRedirects: true, tls: { ca: certs.ca, servername: 'ws.example.test' } });
    expect(c.status, c.status.errorStr).toMatchObject({ success: true, uri: `wss://localhost:${final.port}/named`, redirects: 1 });
    expect((await final.events.waitType('open')).ctx.uri).toBe('/named');
  });

  test('not followed by default: a 3xx fails the start with its http_status', async () => {
    const final = startServer();
    const r = await redirector(() => ({ status: 302, location: `ws://127.0.0.1:${final.port}/` }));
    const c = await start(`ws://127.0.0.1:${r.port}/`);
    expect(c.status.success).toBe(false);
    expect(c.status.http_status).toBe(302);
    expect(c.status.errorStr).toMatch(/302/);
    expect(c.status.errorStr).toMatch(/followRedirects/);
    expect(c.status.uri).toBe(`ws://127.0.0.1:${r.port}/`);
    expect(c.client.followRedirects).toBe(false);
    expect(c.status.redirects).toBe(0);
    await new Promise((res) => setTimeout(res, 100));
    expect(final.events.of('open')).toHaveLength(0);
  });

  test('automatic reconnection starts again from the original url', async () => {
    const r = await redirector((p) => (p === '/orig' ? { status: 307, location: '/landing' } : 'accept'));
    const events = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${r.port}/orig`,
      followRedirects: true,
      method: events.method,
      minWaitBetweenReconnectionRetries: 10,
      maxWaitBetweenReconnectionRetries: 50,
    });
    const status = await websocketClientStart({ ref: client.ref, timeout: 5 });
    expect(status).toMatchObject({ success: true, redirects: 1 });
    expect(r.seen.map((s) => s.path)).toEqual(['/orig', '/landing']);
    // The server drops the connection: the client reconnects through /orig.
    for (const ws of r.wss.clients) ws.terminate();
    await until(() => (r.seen.length >= 4 ? true : undefined), 5000, 'the reconnection');
    expect(r.seen.map((s) => s.path)).toEqual(['/orig', '/landing', '/orig', '/landing']);
    await events.waitCount((e) => e.type === 'open', 2);
    await websocketClientStop(client);
  });

  test('options are checked: followRedirects a boolean, maxRedirects a non-negative integer', () => {
    expect(() => newClient({ url: 'ws://127.0.0.1:1/', followRedirects: 'yes' as unknown as boolean })).toThrow(/followRedirects/);
    expect(() => newClient({ url: 'ws://127.0.0.1:1/', maxRedirects: -1 })).toThrow(/maxRedirects/);
    expect(() => newClient({ url: 'ws://127.0.0.1:1/', maxRedirects: 1.5 })).toThrow(/maxRedirects/);
  });
});
