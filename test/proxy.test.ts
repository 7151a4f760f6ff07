// The client through real HTTP CONNECT proxies (tinyproxy and squid, each
// started by its suite on a free loopback port; skipped with the reason and
// the install command when absent, failing under IXWS_REQUIRE_PEERS=1):
// ws:// and wss:// with and without Basic credentials, the proxies' refusals
// (407, 403, 503) as start statuses, an unreachable proxy, proxy: "env" with
// NO_PROXY, a redirect through a proxy, and the option's validation (which
// needs no proxy).
import * as net from 'net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerClear,
  websocketServerSend,
  websocketServerStart,
} from '../lib/index';
import type { ClientOptions, ServerOptions } from '../lib/index';
import { Collector, closedPort, newClient, runCleanup, type Started } from './support';
import { makeTestCa, type TestCa } from './support/certs';
import { describeWithPeers, peers } from './support/peers';
import { startSquid, startTinyproxy, type RunningProxy } from './support/proxy';

afterEach(runCleanup);

async function start(url: string, extra: ClientOptions = {}) {
  const events = new Collector();
  const client = newClient({ url, enableAutomaticReconnection: false, method: events.method, ...extra });
  const status = await websocketClientStart({ ref: client.ref, timeout: 10 });
  return { client, events, status };
}

/** A message each way between a started client and the server. */
async function exchange(c: Awaited<ReturnType<typeof start>>, srv: Started, tag: string): Promise<void> {
  expect(websocketClientSend(c.client, `up ${tag}`).success).toBe(true);
  await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === `up ${tag}`, 5000, `up ${tag}`);
  const open = srv.events.of('open').at(-1)!;
  expect(websocketServerSend({ ...srv.server, clients: [open.client] }, `down ${tag}`)[0]!.success).toBe(true);
  await c.events.waitFor((e) => e.type === 'message' && e.ctx.data === `down ${tag}`, 5000, `down ${tag}`);
}

/** A started server that lives for the whole suite (helpers' startServer
 * clears its servers after each test). */
function suiteServer(options: ServerOptions = {}): Started {
  const events = new Collector();
  const server = websocketServer({ host: '127.0.0.1', port: 0, method: events.method, ...options });
  const st = websocketServerStart(server);
  if (!st.success || typeof st.port !== 'number') throw new Error(`server start failed: ${JSON.stringify(st)}`);
  return { server, port: st.port, events };
}

describe('the proxy option is checked', () => {
  for (const bad of ['https://127.0.0.1:3128', 'socks5://127.0.0.1:1080', 'garbage', 'http://', 'http://h:70000', 'http://h:1/path']) {
    test(`proxy ${JSON.stringify(bad)} throws a TypeError naming proxy`, () => {
      expect(() => newClient({ url: 'ws://127.0.0.1:1/', proxy: bad })).toThrow(TypeError);
      expect(() => newClient({ url: 'ws://127.0.0.1:1/', proxy: bad })).toThrow(/proxy/);
    });
  }
  test('a non-string proxy throws a TypeError naming proxy', () => {
    expect(() => newClient({ url: 'ws://127.0.0.1:1/', proxy: 3128 as unknown as string })).toThrow(/proxy/);
  });
  test('valid values are kept in the object', () => {
    expect(newClient({ url: 'ws://127.0.0.1:1/', proxy: 'http://u:p@127.0.0.1:3128' }).proxy).toBe('http://u:p@127.0.0.1:3128');
    expect(newClient({ url: 'ws://127.0.0.1:1/', proxy: 'env' }).proxy).toBe('env');
    expect(newClient({ url: 'ws://127.0.0.1:1/' }).proxy).toBe('');
  });
});

test('an unreachable proxy fails the start with a clear errorStr', async () => {
  const port = await closedPort();
  const c = await start('ws://127.0.0.1:9/', { proxy: `http://127.0.0.1:${port}` });
  expect(c.status.success).toBe(false);
  expect(c.status.http_status).toBe(0);
  expect(c.status.errorStr).toMatch(new RegExp(`proxy 127\\.0\\.0\\.1:${port}`, 'i'));
  expect(c.status.errorStr).toMatch(/refused/i);
});

describeWithPeers([peers.tinyproxy()], 'through tinyproxy (HTTP CONNECT)', (found) => {
  let certs: TestCa;
  let plain: Started;
  let secure: Started;
  let open: RunningProxy;
  let authed: RunningProxy;
  const saved: Record<string, string | undefined> = {};
  const ENV = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'];

  beforeAll(async () => {
    certs = makeTestCa();
    // localhost only: a client that checked the certificate against the
    // proxy's address (127.0.0.1) instead of the target would fail.
    const tls = certs.leaf('target', ['DNS:localhost']);
    plain = suiteServer();
    secure = suiteServer({ tls });
    const ports = [plain.port, secure.port];
    open = await startTinyproxy(found.tinyproxy!.exe, { connectPorts: ports });
    authed = await startTinyproxy(found.tinyproxy!.exe, { connectPorts: ports, auth: { user: 'alice', pass: 's3cret_pw' } });
    for (const k of ENV) saved[k] = process.env[k];
  }, 60_000);

  afterAll(async () => {
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await open?.stop();
    await authed?.stop();
    if (plain) websocketServerClear(plain.server);
    if (secure) websocketServerClear(secure.server);
    certs?.remove();
  });

  afterEach(() => {
    for (const k of ENV) delete process.env[k];
  });

  test('ws:// through the proxy', async () => {
    const before = open.connects().length;
    const c = await start(`ws://127.0.0.1:${plain.port}/p?x=1`, { proxy: open.url });
    expect(c.status).toMatchObject({ success: true, http_status: 101, errorStr: '' });
    expect(open.connects().slice(before)).toEqual([`127.0.0.1:${plain.port}`]);
    await exchange(c, plain, 'ws');
    expect(plain.events.of('open').at(-1)!.ctx.uri).toBe('/p?x=1');
  });

  test('wss:// through the proxy: TLS inside the tunnel, verified against the target host', async () => {
    const before = open.connects().length;
    const c = await start(`wss://localhost:${secure.port}/s`, { proxy: open.url, tls: { ca: certs.ca } });
    expect(c.status).toMatchObject({ success: true, http_status: 101, errorStr: '' });
    expect(open.connects().slice(before)).toEqual([`localhost:${secure.port}`]);
    await exchange(c, secure, 'wss');
    // The same through the proxy without the CA: the target's certificate is refused.
    const bad = await start(`wss://localhost:${secure.port}/s`, { proxy: open.url });
    expect(bad.status.success).toBe(false);
    expect(bad.status.errorStr).toMatch(/TLS/);
  });

  test('ws:// and wss:// with Basic credentials', async () => {
    const before = authed.connects().length;
    const c1 = await start(`ws://127.0.0.1:${plain.port}/a`, { proxy: authed.url });
    expect(c1.status).toMatchObject({ success: true, http_status: 101 });
    await exchange(c1, plain, 'auth ws');
    const c2 = await start(`wss://localhost:${secure.port}/a`, { proxy: authed.url, tls: { ca: certs.ca } });
    expect(c2.status).toMatchObject({ success: true, http_status: 101 });
    await exchange(c2, secure, 'auth wss');
    expect(authed.connects().slice(before)).toEqual([`127.0.0.1:${plain.port}`, `localhost:${secure.port}`]);
  });

  test('missing credentials: 407; wrong ones: the status the proxy gives (tinyproxy: 401)', async () => {
    const none = await start(`wss://localhost:${secure.port}/`, { proxy: `http://127.0.0.1:${authed.port}`, tls: { ca: certs.ca } });
    expect(none.status).toMatchObject({
      success: false,
      http_status: 407,
      errorStr: 'proxy refused CONNECT: 407 Proxy Authentication Required',
    });
    // the refusal's headers: the scheme the proxy asks for
    const asked = Object.entries(none.status.headers).find(([k]) => k.toLowerCase() === 'proxy-authenticate')?.[1];
    expect(asked).toMatch(/^Basic realm=/);
    const err = await none.events.waitType('error');
    expect(err.ctx).toMatchObject({ http_status: 407, reason: 'proxy refused CONNECT: 407 Proxy Authentication Required' });
    // tinyproxy 1.11 answers a wrong password with "401 Unauthorized" (squid
    // with 407): whichever it is, the start reports it as given.
    const wrong = await start(`ws://127.0.0.1:${plain.port}/`, { proxy: `http://alice:wrong@127.0.0.1:${authed.port}` });
    expect(wrong.status.success).toBe(false);
    expect([401, 407]).toContain(wrong.status.http_status);
    expect(wrong.status.errorStr).toMatch(/^proxy refused CONNECT: (401 Unauthorized|407 Proxy Authentication Required)$/);
    expect(plain.events.of('open').filter((e) => e.ctx.uri === '/')).toHaveLength(0);
  });

  test('a port the proxy does not allow: the start fails with 403', async () => {
    const port = await closedPort();
    const c = await start(`ws://127.0.0.1:${port}/`, { proxy: open.url });
    expect(c.status.success).toBe(false);
    expect(c.status.http_status).toBe(403);
    expect(c.status.errorStr).toMatch(/^proxy refused CONNECT: 403/);
  });

  test('proxy "env": http_proxy for ws://, HTTPS_PROXY for wss://, NO_PROXY bypasses', async () => {
    process.env.HTTP_PROXY = open.url;
    process.env.HTTPS_PROXY = authed.url;
    let before = open.connects().length;
    const c1 = await start(`ws://127.0.0.1:${plain.port}/e1`, { proxy: 'env' });
    expect(c1.status.success).toBe(true);
    expect(open.connects().slice(before)).toEqual([`127.0.0.1:${plain.port}`]);
    const beforeAuthed = authed.connects().length;
    const c2 = await start(`wss://localhost:${secure.port}/e2`, { proxy: 'env', tls: { ca: certs.ca } });
    expect(c2.status.success).toBe(true);
    expect(authed.connects().slice(beforeAuthed)).toEqual([`localhost:${secure.port}`]);

    // NO_PROXY: the host, or a suffix with a leading dot, or host:port.
    for (const noProxy of ['127.0.0.1', `example.com, 127.0.0.1:${plain.port}`, '*']) {
      process.env.NO_PROXY = noProxy;
      before = open.connects().length;
      const direct = await start(`ws://127.0.0.1:${plain.port}/direct`, { proxy: 'env' });
      expect(direct.status.success).toBe(true);
      expect(open.connects().slice(before)).toEqual([]);
    }
    process.env.NO_PROXY = '.localhost';
    const b = authed.connects().length;
    const direct2 = await start(`wss://localhost:${secure.port}/direct`, { proxy: 'env', tls: { ca: certs.ca } });
    expect(direct2.status.success).toBe(true);
    expect(authed.connects().slice(b)).toEqual([]);
    // A list that does not name the host leaves the proxy in use.
    process.env.NO_PROXY = `127.0.0.2,127.0.0.1:1,notlocalhost`;
    before = open.connects().length;
    const via = await start(`ws://127.0.0.1:${plain.port}/via`, { proxy: 'env' });
    expect(via.status.success).toBe(true);
    expect(open.connects().slice(before)).toEqual([`127.0.0.1:${plain.port}`]);
  });

  test('proxy "env" with the variables unset connects directly; a bad one fails the start and names it', async () => {
    const before = open.connects().length;
    const c = await start(`ws://127.0.0.1:${plain.port}/none`, { proxy: 'env' });
    expect(c.status.success).toBe(true);
    expect(open.connects().slice(before)).toEqual([]);
    process.env.http_proxy = 'socks5://127.0.0.1:1080';
    const bad = await start(`ws://127.0.0.1:${plain.port}/none`, { proxy: 'env' });
    expect(bad.status.success).toBe(false);
    expect(bad.status.errorStr).toMatch(/http_proxy/);
    expect(bad.status.errorStr).toMatch(/socks5/);
  });

  test('a redirect through the proxy: each hop gets its own CONNECT', async () => {
    // The plain server answers nothing but WebSocket; a redirect needs a
    // server of its own, reachable through the proxy: a second proxy run
    // allows any port.
    const { createServer } = await import('http');
    const srv = createServer();
    srv.on('upgrade', (_req, socket) => {
      socket.end(`HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:${plain.port}/landed\r\nContent-Length: 0\r\n\r\n`);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const rport = (srv.address() as net.AddressInfo).port;
    const any = await startTinyproxy(found.tinyproxy!.exe);
    try {
      const c = await start(`ws://127.0.0.1:${rport}/from`, { proxy: any.url, followRedirects: true });
      expect(c.status).toMatchObject({ success: true, redirects: 1, uri: `ws://127.0.0.1:${plain.port}/landed` });
      expect(any.connects()).toEqual([`127.0.0.1:${rport}`, `127.0.0.1:${plain.port}`]);
    } finally {
      await any.stop();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describeWithPeers([peers.squid()], 'through squid (HTTP CONNECT with Basic credentials)', (found) => {
  let certs: TestCa;
  let secure: Started;
  let squid: RunningProxy;
  let deadPort = 0;

  beforeAll(async () => {
    certs = makeTestCa();
    secure = suiteServer({ tls: certs.leaf('target', ['DNS:localhost']) });
    deadPort = await closedPort();
    squid = await startSquid(found.squid!.exe, { connectPorts: [secure.port, deadPort], auth: { user: 'alice', pass: 's3cret_pw' } });
  }, 60_000);

  afterAll(async () => {
    await squid?.stop();
    if (secure) websocketServerClear(secure.server);
    certs?.remove();
  });

  test('wss:// with the right credentials', async () => {
    const c = await start(`wss://localhost:${secure.port}/sq`, { proxy: squid.url, tls: { ca: certs.ca } });
    expect(c.status).toMatchObject({ success: true, http_status: 101, errorStr: '' });
    await exchange(c, secure, 'squid');
  });

  test('wrong and missing credentials: 407', async () => {
    for (const proxy of [`http://alice:wrong@127.0.0.1:${squid.port}`, `http://127.0.0.1:${squid.port}`]) {
      const c = await start(`wss://localhost:${secure.port}/`, { proxy, tls: { ca: certs.ca } });
      expect(c.status).toMatchObject({
        success: false,
        http_status: 407,
        errorStr: 'proxy refused CONNECT: 407 Proxy Authentication Required',
      });
      const asked = Object.entries(c.status.headers).find(([k]) => k.toLowerCase() === 'proxy-authenticate')?.[1];
      expect(asked).toMatch(/^Basic realm=/);
    }
  });

  test('a port it does not allow: 403; a target it cannot reach: 503', async () => {
    const other = await closedPort();
    const forbidden = await start(`ws://127.0.0.1:${other}/`, { proxy: squid.url });
    expect(forbidden.status).toMatchObject({ success: false, http_status: 403, errorStr: 'proxy refused CONNECT: 403 Forbidden' });
    const dead = await start(`ws://127.0.0.1:${deadPort}/`, { proxy: squid.url });
    expect(dead.status).toMatchObject({ success: false, http_status: 503, errorStr: 'proxy refused CONNECT: 503 Service Unavailable' });
  });
});
