// verifyClient and allowedOrigins: the server decides about a connection
// before its 101 is written. The handshake waits on its IO thread while
// JavaScript answers (bounded by handshakeTimeout); a refused connection
// gets its status and nothing of it reaches the application (no event, not
// even the frames it sent behind its request); an accepted one carries the
// hook's headers and subprotocol. allowedOrigins refuses other origins with
// 403 on the IO thread, without asking JavaScript.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { afterEach, describe, expect, test } from 'vitest';
import {
  WebSocketServer,
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerStart,
} from '../lib/index';
import type { ServerOptions, VerifyClient, VerifyClientAnswer, VerifyClientInfo } from '../lib/index';
import { Collector, RawPeer, connectClient, defer, delay, encodeFrame, newClient, newServer, roundTrip, runCleanup, startEchoServer, until, upgradeRequest } from './support';
import { runPage, servePage } from './support/browser';
import { selfSigned } from './support/certs';
import { describeWithPeers, peers } from './support/peers';

afterEach(runCleanup);

/** Sends a raw upgrade request (and optional bytes right behind it); resolves with all the server wrote until it closed. */
function rawRequest(port: number, extra: Record<string, string> = {}, behind?: Buffer, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    defer(() => s.destroy());
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no end from the server; got ${Buffer.concat(chunks).toString('latin1')}`));
    }, 8000);
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.on('error', () => undefined);
    s.once('connect', () => {
      const key = crypto.randomBytes(16).toString('base64');
      s.write(upgradeRequest(path, key, extra));
      if (behind) s.write(behind);
    });
  });
}

/** Collects process warnings of code `code` for the test. */
function warnings(code: string): Error[] {
  const got: Error[] = [];
  const on = (w: Error) => {
    if ((w as Error & { code?: string }).code === code) got.push(w);
  };
  process.on('warning', on);
  defer(() => process.off('warning', on));
  return got;
}

/** An echo server with this hook (undefined: none). */
const verifyingServer = (verifyClient: VerifyClient | undefined, options: ServerOptions = {}) =>
  startEchoServer({ verifyClient, ...options });

describe('verifyClient', () => {
  test('info says who asks: uri, headers, origin, address and port, secure, offered protocols', async () => {
    const infos: VerifyClientInfo[] = [];
    const srv = verifyingServer((info) => {
      infos.push(info);
      return true;
    });
    const p = await RawPeer.connect(srv.port);
    await p.upgrade('/chat?room=1', { Origin: 'https://app.example', 'Sec-WebSocket-Protocol': 'b, a', 'X-Token': 't0k' });
    expect(infos).toHaveLength(1);
    const info = infos[0];
    expect(info).toMatchObject({
      uri: '/chat?room=1',
      origin: 'https://app.example',
      remoteAddress: '127.0.0.1',
      remotePort: p.socket.localPort,
      secure: false,
      protocols: ['b', 'a'],
    });
    expect(info.headers['X-Token']).toBe('t0k');
    expect(Object.keys(info).sort()).toEqual(['headers', 'origin', 'protocols', 'remoteAddress', 'remotePort', 'secure', 'tls', 'uri']);
    const open = await srv.events.waitType('open');
    expect(open.ctx.remotePort).toBe(p.socket.localPort);
    // without an Origin header: ""
    const q = await RawPeer.connect(srv.port);
    await q.upgrade('/');
    expect(infos[1].origin).toBe('');
    expect(infos[1].protocols).toEqual([]);
  });

  test('false refuses with 401; nothing of the connection reaches the application, not even frames sent behind the request', async () => {
    let calls = 0;
    const srv = verifyingServer(() => {
      calls++;
      return false;
    });
    const behind = encodeFrame({ opcode: 0x1, payload: 'sneaked in' });
    const res = await rawRequest(srv.port, {}, behind);
    expect(res).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/);
    expect(res).not.toMatch(/101/);
    expect(calls).toBe(1);
    // our client: the start status carries the status
    const c = newClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st).toMatchObject({ success: false, http_status: 401 });
    await delay(100);
    expect(srv.events.events).toEqual([]);
  });

  test('{ accept: false, status, message, headers } is the refusal sent', async () => {
    const srv = verifyingServer((info) => ({
      accept: false,
      status: 403,
      message: `not you, ${info.uri}`,
      headers: { 'WWW-Authenticate': 'Bearer realm="ix"', 'X-Reason': 'test' },
    }));
    const res = await rawRequest(srv.port, {}, undefined, '/who');
    const [head, body] = res.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(head).toMatch(/\r\nWWW-Authenticate: Bearer realm="ix"(\r\n|$)/);
    expect(head).toMatch(/\r\nX-Reason: test(\r\n|$)/);
    expect(head).toMatch(/\r\nConnection: close(\r\n|$)/);
    expect(body).toBe('not you, /who');
    // our client: the refusal's headers are in the start status
    const c = newClient({ url: `ws://127.0.0.1:${srv.port}/who`, enableAutomaticReconnection: false });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st).toMatchObject({ success: false, http_status: 403 });
    expect(st.headers).toMatchObject({ 'WWW-Authenticate': 'Bearer realm="ix"', 'X-Reason': 'test' });
    expect(srv.events.events).toEqual([]);
  });

  test('a header answered as undefined is left out (what a TypeScript answer with optional headers builds); __proto__ stays a header', async () => {
    const srv = verifyingServer((info) =>
      info.uri === '/in'
        ? { accept: true, headers: { 'Set-Cookie': undefined, 'X-Kept': 'yes', ['__proto__']: 'p' } }
        : { accept: false, status: 401, headers: { 'WWW-Authenticate': 'Cookie', 'Set-Cookie': undefined } },
    );
    const refused = await rawRequest(srv.port, {}, undefined, '/out');
    expect(refused).toMatch(/^HTTP\/1\.1 401 Unauthorized\r\n/); // not 500
    expect(refused).toMatch(/\r\nWWW-Authenticate: Cookie\r\n/);
    expect(refused).not.toMatch(/Set-Cookie/i);
    const p = await RawPeer.connect(srv.port);
    p.write(upgradeRequest('/in', crypto.randomBytes(16).toString('base64')));
    const head = await p.readHead();
    expect(head.status).toBe(101);
    expect(head.headers['x-kept']).toBe('yes');
    expect(head.raw).toMatch(/\r\n__proto__: p(\r\n|$)/);
    expect(head.headers['set-cookie']).toBeUndefined();
    // An array is not an object of headers: refused (500), as before undefined values were left out.
    const arr = verifyingServer(() => ({ accept: true, headers: ['Set-Cookie: a=b'] as unknown as Record<string, string> }));
    const r = await rawRequest(arr.port, {}, undefined, '/arr');
    expect(r).toMatch(/^HTTP\/1\.1 500 /);
    expect(r).not.toMatch(/\r\n0: /);
  });

  test('a refusal with any status has its reason phrase and that as its default body; a Content-Type given replaces text/plain', async () => {
    const srv = verifyingServer((info) => ({
      accept: false,
      status: Number(info.uri.slice(1)),
      headers: { 'Content-Type': 'application/problem+json', 'Retry-After': '5' },
    }));
    const phrases: Record<number, string> = { 402: 'Payment Required', 409: 'Conflict', 410: 'Gone', 413: 'Content Too Large', 418: 'Client Error', 422: 'Unprocessable Content', 451: 'Unavailable For Legal Reasons', 502: 'Bad Gateway', 504: 'Gateway Timeout' };
    for (const [status, phrase] of Object.entries(phrases)) {
      const [head, body] = (await rawRequest(srv.port, {}, undefined, `/${status}`)).split('\r\n\r\n');
      expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} ${phrase}\r\n`));
      expect(body).toBe(phrase);
      expect(head.match(/\r\nContent-Type: /gi)).toHaveLength(1);
      expect(head).toMatch(/\r\nContent-Type: application\/problem\+json(\r\n|$)/);
      expect(head).toMatch(/\r\nRetry-After: 5(\r\n|$)/);
    }
  });

  test('answer headers the server writes itself (a second Content-Length, Sec-WebSocket-Accept...) refuse with 500 and a warning', async () => {
    const seen = warnings('IXWS_VERIFY_CLIENT_FAILED');
    const srv = verifyingServer((info): VerifyClientAnswer =>
      info.uri === '/length'
        ? { accept: false, status: 403, headers: { 'content-length': '0' } }
        : { accept: true, headers: { 'Sec-WebSocket-Accept': 'forged' } },
    );
    for (const p of ['/length', '/accept']) {
      const res = await rawRequest(srv.port, {}, undefined, p);
      expect(res, p).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
      expect(res.match(/\r\nContent-Length: /gi), p).toHaveLength(1);
    }
    await until(() => (seen.length >= 2 ? true : undefined), 2000, 'two warnings');
    const text = seen.map((w) => w.message).join('\n');
    expect(text).toMatch(/answer\.headers\.content-length is written by ix-websocket itself/);
    expect(text).toMatch(/answer\.headers\.Sec-WebSocket-Accept is written by ix-websocket itself/);
    expect(srv.events.events).toEqual([]);
  });

  test('accepted with extra headers (Set-Cookie) and a chosen subprotocol; both sides see it', async () => {
    const srv = verifyingServer(
      (info) => ({ accept: true, headers: { 'Set-Cookie': 'sid=42; HttpOnly' }, protocol: info.protocols[1] }),
      { protocols: ['a', 'b'] },
    );
    const events = new Collector();
    const c = newClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false, protocols: ['a', 'b'], method: events.method });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st).toMatchObject({ success: true, http_status: 101, protocol: 'b' });
    expect(st.headers['Set-Cookie']).toBe('sid=42; HttpOnly');
    const open = await srv.events.waitType('open');
    expect(open.ctx.protocol).toBe('b');
    // frames right behind the request wait with it and are delivered after the open
    const p = await RawPeer.connect(srv.port);
    const key = crypto.randomBytes(16).toString('base64');
    p.write(Buffer.concat([Buffer.from(upgradeRequest('/', key)), encodeFrame({ opcode: 0x1, payload: 'behind the head' })]));
    const head = await p.readHead();
    expect(head.status).toBe(101);
    expect(head.headers['set-cookie']).toBe('sid=42; HttpOnly');
    expect(head.headers['sec-websocket-protocol']).toBeUndefined(); // offered none
    const echo = await p.readFrame();
    expect(echo.payload.toString()).toBe('behind the head');
    expect(websocketClientSend(c, 'after').success).toBe(true);
    expect((await events.waitType('message')).ctx.data).toBe('after');
  });

  test('an async hook taking 200 ms holds only its own connection: others keep exchanging meanwhile', async () => {
    let pending = 0;
    // The hook answers after 200 ms and after four round trips went through
    // meanwhile (on a loaded machine four trips can take longer than 200 ms:
    // what matters is that they go through while the hook waits).
    let tripsDone: () => void = () => undefined;
    const fourTrips = new Promise<void>((r) => (tripsDone = r));
    const srv = verifyingServer(async (info) => {
      if (info.uri !== '/slow') return true;
      pending++;
      await Promise.all([delay(200), fourTrips]);
      pending--;
      return true;
    });
    const good = await connectClient(srv);
    const started = Date.now();
    const slow = newClient({ url: `ws://127.0.0.1:${srv.port}/slow`, enableAutomaticReconnection: false });
    const slowStart = websocketClientStart({ ref: slow.ref, timeout: 5 });
    await until(() => (pending === 1 ? true : undefined), 2000, 'the slow hook to be running');
    // while it waits, round trips on the open connection go through
    let trips = 0;
    while (pending === 1 && trips < 1000) {
      await roundTrip(srv, good, `during-${trips}`, 2000);
      trips++;
      if (trips === 4) tripsDone();
    }
    const st = await slowStart;
    expect(st.success).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(trips).toBeGreaterThanOrEqual(4);
  });

  test('a hook that never settles ends at handshakeTimeout; its late answer is ignored; the server keeps serving', async () => {
    let release: (v: boolean) => void = () => undefined;
    const srv = verifyingServer(
      (info) => (info.uri === '/hang' ? new Promise<boolean>((r) => (release = r)) : true),
      { handshakeTimeout: 0.6 },
    );
    const started = Date.now();
    const c = newClient({ url: `ws://127.0.0.1:${srv.port}/hang`, enableAutomaticReconnection: false });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    const took = Date.now() - started;
    expect(st.success).toBe(false);
    expect(st.http_status).toBe(0);
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(3000);
    release(true); // too late: nothing happens
    await delay(100);
    expect(srv.events.of('open')).toEqual([]);
    const ok = await connectClient(srv);
    expect(ok.conn).toBe(1);
  });

  // Connection ids start at 1 in every server, and a cleared server's ref is
  // the next server's: an answer addressed by ref and connection id alone
  // let a client of the second server in past its own hook.
  test("a late answer of a cleared server's hook never reaches the server that took its ref", async () => {
    let releaseA: (v: boolean) => void = () => undefined;
    let askedA = false;
    const a = new WebSocketServer({
      port: 0,
      verifyClient: () =>
        new Promise<boolean>((r) => {
          askedA = true;
          releaseA = r;
        }),
    });
    a.start();
    const x = newClient({ url: `ws://127.0.0.1:${a.port}/`, enableAutomaticReconnection: false, timeout: 5 });
    const px = websocketClientStart(x);
    await until(() => (askedA ? true : undefined), 3000, "A's hook asked");
    a.clear();
    let askedB = false;
    const b = new WebSocketServer({
      port: 0,
      verifyClient: () => {
        askedB = true;
        return new Promise<boolean>((r) => setTimeout(() => r(false), 500));
      },
    });
    defer(() => b.clear());
    expect(b.handle).toBe(a.handle);  // the ref was given again
    const opens: unknown[] = [];
    b.on('open', (c) => opens.push(c));
    b.start();
    const y = newClient({ url: `ws://127.0.0.1:${b.port}/private`, enableAutomaticReconnection: false, timeout: 5 });
    const py = websocketClientStart(y);
    await until(() => (askedB ? true : undefined), 3000, "B's hook asked");
    releaseA(true);  // A's answer, for A's connection 1; B's first connection is 1 too
    const st = await py;
    expect(st).toMatchObject({ success: false, http_status: 401 });
    expect(opens).toEqual([]);
    expect((await px).success).toBe(false);
  });

  test('a throwing, rejecting or malformed hook refuses with 500 and raises an IxWebSocketWarning', async () => {
    const seen = warnings('IXWS_VERIFY_CLIENT_FAILED');
    const hooks: Record<string, VerifyClient> = {
      '/throw': () => {
        throw new Error('boom');
      },
      '/reject': () => Promise.reject(new Error('async boom')),
      '/garbage': () => 'yes' as never,
      '/protocol': () => ({ accept: true, protocol: 'never-offered' }),
      '/status': () => ({ accept: false, status: 200 }),
    };
    const srv = verifyingServer((info) => hooks[info.uri](info));
    for (const p of Object.keys(hooks)) {
      const res = await rawRequest(srv.port, {}, undefined, p);
      expect(res, p).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    }
    await until(() => (seen.length >= 5 ? true : undefined), 2000, 'five warnings');
    const text = seen.map((w) => w.message).join('\n');
    expect(text).toMatch(/verifyClient of server -\d+ failed \(boom\)/);
    expect(text).toMatch(/\(async boom\)/);
    expect(text).toMatch(/must return \(or resolve to\) true, false or/);
    expect(text).toMatch(/protocol "never-offered" was not offered by the client/);
    expect(text).toMatch(/verifyClient result: status must be an integer between 400 and 599/);
    expect(seen.every((w) => w.name === 'IxWebSocketWarning')).toBe(true);
    expect(srv.events.events).toEqual([]);
    expect((await connectClient(verifyingServer(() => true))).conn).toBe(1);
  });

  test('on a TLS server: info.secure, and the refusal and the 101 with its headers go through TLS', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-verify-tls-'));
    defer(() => fs.rmSync(dir, { recursive: true, force: true }));
    // RSA here (the other TLS suites use P-256 keys).
    const { certFile: cert, keyFile: key } = selfSigned(dir, 'self', 'rsa');
    const infos: VerifyClientInfo[] = [];
    const srv = verifyingServer(
      (info) => {
        infos.push(info);
        return info.uri === '/in' ? { accept: true, headers: { 'X-Verified': 'yes' } } : { accept: false, status: 451 };
      },
      { tls: { certFile: cert, keyFile: key } },
    );
    const ca = fs.readFileSync(cert, 'utf8');
    const start = async (p: string) => {
      const c = newClient({ url: `wss://127.0.0.1:${srv.port}${p}`, enableAutomaticReconnection: false, tls: { ca } });
      return websocketClientStart({ ref: c.ref, timeout: 5 });
    };
    const ok = await start('/in');
    expect(ok).toMatchObject({ success: true, http_status: 101 });
    expect(ok.headers['X-Verified']).toBe('yes');
    expect(infos[0].secure).toBe(true);
    const no = await start('/out');
    expect(no).toMatchObject({ success: false, http_status: 451 });
    expect(srv.events.of('open')).toHaveLength(1);
  });

  test('class API: verifyClient on WebSocketServer, set to null again', async () => {
    const server = new WebSocketServer({ port: 0, verifyClient: (info) => info.uri === '/in' });
    defer(() => server.clear());
    const opens: number[] = [];
    server.on('open', (c) => {
      opens.push(c);
    });
    expect(server.start().success).toBe(true);
    expect(typeof server.object.verifyClient).toBe('function');
    expect(await rawRequest(server.port, {}, undefined, '/out')).toMatch(/^HTTP\/1\.1 401 /);
    const p = await RawPeer.connect(server.port);
    expect((await p.upgrade('/in')).status).toBe(101);
    await until(() => (opens.length === 1 ? true : undefined), 2000, 'open');
    // without the hook after a restart: everyone may connect
    server.stop({ verifyClient: null });
    expect(server.object.verifyClient).toBeUndefined();
    expect(server.start().success).toBe(true);
    const q = await RawPeer.connect(server.port);
    expect((await q.upgrade('/out')).status).toBe(101);
    expect(() => new WebSocketServer({ verifyClient: 'yes' as never })).toThrow(/options\.verifyClient must be a function or null/);
  });
});

describe('allowedOrigins', () => {
  test('other origins get 403 on the IO thread (verifyClient is not asked); listed ones (any case) and requests without Origin pass', async () => {
    let asked = 0;
    const srv = verifyingServer(
      () => {
        asked++;
        return true;
      },
      { allowedOrigins: ['https://app.example', 'http://localhost:3000'] },
    );
    const res = await rawRequest(srv.port, { Origin: 'https://evil.example' }, encodeFrame({ opcode: 0x1, payload: 'x' }));
    expect(res).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
    expect(await rawRequest(srv.port, { Origin: 'null' })).toMatch(/^HTTP\/1\.1 403 /);
    expect(await rawRequest(srv.port, { Origin: 'https://app.example:443' })).toMatch(/^HTTP\/1\.1 403 /);
    expect(asked).toBe(0);
    expect(srv.events.events).toEqual([]);
    for (const origin of ['https://app.example', 'HTTP://LOCALHOST:3000', undefined]) {
      const p = await RawPeer.connect(srv.port);
      expect((await p.upgrade('/', origin ? { Origin: origin } : {})).status).toBe(101);
    }
    expect(asked).toBe(3);
  });

  test('values are checked: an array of non-empty origins without separators', () => {
    expect(() => websocketServer({ allowedOrigins: 'https://a.example' as never })).toThrow(/options\.allowedOrigins must be an array/);
    expect(() => websocketServer({ allowedOrigins: ['https://a.example, https://b.example'] })).toThrow(/options\.allowedOrigins\[0\]/);
    expect(() => websocketServer({ allowedOrigins: [''] })).toThrow(/options\.allowedOrigins\[0\]/);
    const s = newServer({ allowedOrigins: ['https://a.example'] });
    expect(s.allowedOrigins).toEqual(['https://a.example']);
    expect(websocketServerStart({ ref: s.ref, port: 0 }).success).toBe(true);
  });
});

describeWithPeers([peers.chromium()], 'headless Chromium', (found) => {
  test('a page from an allowed origin connects; other origins and refused hooks fail in the browser with no server event', async () => {
    const web = await servePage(path.join(__dirname, 'peers', 'browser_handshake.html'));
    const allowed = verifyingServer(undefined, { allowedOrigins: [web.origin] });
    const other = verifyingServer(undefined, { allowedOrigins: ['https://elsewhere.example'] });
    const seenOrigins: string[] = [];
    const hooked = verifyingServer((info) => {
      seenOrigins.push(info.origin);
      return info.uri === '/yes' ? { accept: true, protocol: 'p2' } : { accept: false, status: 403 };
    });
    const attempts = [
      { url: `ws://127.0.0.1:${allowed.port}/`, protocols: [] },
      { url: `ws://127.0.0.1:${other.port}/`, protocols: [] },
      { url: `ws://127.0.0.1:${hooked.port}/no`, protocols: [] },
      { url: `ws://127.0.0.1:${hooked.port}/yes`, protocols: ['p1', 'p2'] },
    ];
    const r = await runPage(found.chromium!.exe, web, `attempts=${encodeURIComponent(JSON.stringify(attempts))}`);
    expect(r.error).toBeUndefined();
    expect(r.outcomes.map((o: { opened: boolean }) => o.opened)).toEqual([true, false, false, true]);
    expect(r.outcomes[3]).toMatchObject({ protocol: 'p2', echo: 'hi' });
    expect(allowed.events.of('open')).toHaveLength(1);
    expect(other.events.events).toEqual([]);
    expect(seenOrigins).toEqual([web.origin, web.origin]);
    expect(hooked.events.of('open')).toHaveLength(1);
    expect(hooked.events.of('open')[0].ctx.protocol).toBe('p2');
  }, 60000);
});
