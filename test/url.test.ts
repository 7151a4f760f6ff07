// Client urls mean what WHATWG URL (Node's URL) says they mean. The facade
// normalises every url entering a client command with Node's URL; the
// engine's own parser (used when the binding is called directly) reads what
// it accepts as WHATWG does and refuses the rest. Checked on the audit's
// allow-list bypass (a backslash that WHATWG reads as '/'), end to end, and
// on a list of tricky urls: for each, the engine's reading (as given, and
// after the facade's normalisation) agrees with `new URL()` on scheme, host,
// port and request target, or the url is refused.
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import { binding } from '../lib/binding';
import {
  WebSocketClient,
  websocketClient,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
} from '../lib/index';
import { whatwgHref } from '../lib/url';
import { defer, newClient, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

/** A TCP listener that only counts the connections it gets. */
async function listener(host: string): Promise<{ port: number; accepted: () => number }> {
  let n = 0;
  const srv = net.createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  defer(() => new Promise((r) => srv.close(r)));
  return { port: (srv.address() as net.AddressInfo).port, accepted: () => n };
}

/** The parts of `u` as WHATWG reads them, in the engine's terms; undefined if it does not parse. */
function whatwg(u: string): { secure: boolean; host: string; port: number; target: string } | undefined {
  let w: URL;
  try {
    w = new URL(u);
  } catch {
    return undefined;
  }
  const secure = w.protocol === 'wss:' || w.protocol === 'https:';
  const host = w.hostname.startsWith('[') ? w.hostname.slice(1, -1) : w.hostname;
  return { secure, host, port: w.port === '' ? (secure ? 443 : 80) : Number(w.port), target: w.pathname + w.search };
}

describe("the audit's allow-list bypass: ws://A\\@B/x", () => {
  test('through the facade the client connects to A, the host new URL() names', async () => {
    // A: our server on 127.0.0.1; B: a listener on 127.0.0.2 that must get nothing.
    const a = startServer();
    const b = await listener('127.0.0.2');
    const url = `ws://127.0.0.1:${a.port}\\@127.0.0.2:${b.port}/x`;
    expect(new URL(url).host).toBe(`127.0.0.1:${a.port}`);
    const c = newClient({ url, enableAutomaticReconnection: false });
    expect(c.url).toBe(`ws://127.0.0.1:${a.port}/@127.0.0.2:${b.port}/x`);
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st).toMatchObject({ success: true, uri: c.url });
    const open = await a.events.waitType('open');
    expect(open.ctx.uri).toBe(`/@127.0.0.2:${b.port}/x`);
    expect(b.accepted()).toBe(0);
  });

  test('the binding called directly refuses the url (the engine never reads another host)', async () => {
    const a = await listener('127.0.0.1');
    const b = await listener('127.0.0.2');
    const c = binding.websocketClient({ url: `ws://127.0.0.1:${a.port}\\@127.0.0.2:${b.port}/x`, enableAutomaticReconnection: false });
    defer(() => binding.websocketClientClear({ ref: c.ref }));
    const st = await binding.websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st.success).toBe(false);
    expect(st.errorStr).toMatch(/^Invalid URL .*backslash/);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.accepted() + b.accepted()).toBe(0);
  });

  test('the example as filed: WHATWG says allowed.example.com, and so do we', () => {
    const url = 'ws://allowed.example.com\\@127.0.0.1:9/x';
    expect(new URL(url).hostname).toBe('allowed.example.com');
    expect(binding.parseClientUrl(url)).toEqual({ error: expect.stringMatching(/backslash/) });
    expect(binding.parseClientUrl(whatwgHref(url))).toEqual({
      secure: false,
      host: 'allowed.example.com',
      port: 80,
      target: '/@127.0.0.1:9/x',
    });
  });
});

// Each one is a way for two URL parsers to disagree.
const TRICKY = [
  // backslashes, userinfo and '@'
  'ws://allowed.example.com\\@127.0.0.1:9/x', 'ws://h\\x', 'ws://h/a\\b', 'ws:\\\\h/', 'ws://a@b@c/', 'ws://host:80@evil/',
  'ws://user:p@ss@h/', 'ws://@h/', 'ws://u@/x', 'ws://a#b@c/', 'ws://a?b@c/', 'ws://[::1]@h/', 'ws://h:1@127.0.0.1:2/',
  // tabs, newlines, spaces, controls
  'ws://h/p\tq', 'ws://h\n/', 'ws://h/x ', ' ws://h/', 'ws://h/a b', 'ws://ex ample/', 'ws://h/\x01', 'ws://h/\x7f', 'ws://h\r/',
  // IPv4 notations
  'ws://127.1/', 'ws://0x7f.1/', 'ws://0x7f.0.0.1/', 'ws://2130706433/', 'ws://010.0.0.1/', 'ws://127.0.0.1./', 'ws://0x/',
  'ws://example.123/', 'ws://example.0x1f/', 'ws://1.2.3.example/', 'ws://1.2.3.4.5/', 'ws://256.0.0.1/', 'ws://0.0.0.0/',
  'ws://127.0.0.1/', 'ws://127.000.0.1/', 'ws://0177.0.0.1/', 'ws://1.2.3/', 'ws://4294967295/', 'ws://4294967296/',
  // hosts WHATWG decodes, maps or refuses
  'ws://%31%32%37.0.0.1/', 'ws://b\u00fccher.example/', 'ws://BÜCHER.example/', 'ws://xn--bcher-kva.example/',
  'ws://XN--BCHER-KVA.example/', 'ws://xn--a.com/', 'ws://xn--/', 'ws://xn--b/', 'ws://xn--abc-.example/', 'ws://Example.COM/',
  'ws://example.com./', 'ws://a..b/', 'ws://my_host~x/', 'ws://-a.com/', 'ws://a!b/', 'ws://a$b/', 'ws://a*b/', 'ws://a^b/',
  'ws://a|b/', 'ws://\uff21.example/', 'ws://ex%41mple/', 'ws://h%2f/', 'ws://./', 'ws://../',
  // IPv6
  'ws://[::1]/', 'ws://[0:0::1]/', 'ws://[::ffff:1.2.3.4]/', 'ws://[::ffff:192.0.2.1]:81/', 'ws://[2001:DB8:0:0:1:0:0:1]/',
  'ws://[fe80::1%25eth0]/', 'ws://[fe80::1%eth0]/', 'ws://[::1.2.3]/', 'ws://[::01.2.3.4]/', 'ws://[1:2:3:4:5:6:7:8:9]/',
  'ws://[1::2::3]/', 'ws://[12345::]/', 'ws://[::1]x/', 'ws://[::1', 'ws://[]/', 'ws://[::]/', 'ws://[1:0:0:0:0:0:0:0]/',
  // ports
  'ws://h:0/', 'ws://h:0080/', 'ws://h:000080/', 'ws://h:65535/', 'ws://h:65536/', 'ws://h:/', 'ws://h:8o/', 'ws://h:-1/',
  'ws://h:80:81/', 'wss://a.b:443/', 'ws://a.b:443/', 'ws://h: 80/',
  // paths and queries
  'ws://h/a/../b', 'ws://h/a/%2e%2E/b', 'ws://h/a/./b', 'ws://h/..', 'ws://h/.%2E', 'ws://h/%2e/', 'ws://h/a/.',
  'ws://h/ x"<>`{}|^\'', 'ws://h/?q x"<>`{}\'', 'ws://h/%zz', 'ws://h/é?é', 'ws://h?q', 'ws://h#f', 'ws://h/p?q#f?g',
  'ws://h/a%2fb', 'ws://h/.a/a./..a', 'ws://h/?/../', 'ws://h//x//',
  // schemes
  'wS://h', 'WSS://h/', 'http://h/', 'https://h:8443/', 'ws:h/', 'ws:/h/', 'ws:///h/', 'ftp://h/', 'wsx://h/', 'nope', '',
];

describe('tricky urls: the engine agrees with new URL() or refuses', () => {
  test.each(TRICKY.map((u) => [JSON.stringify(u), u]))('%s', (_name, u) => {
    const want = whatwg(u);
    // The engine given the url as it is (the binding called directly).
    const direct = binding.parseClientUrl(u);
    if (direct.error === undefined) {
      expect(want, `the engine accepts ${JSON.stringify(u)}, which new URL() refuses`).toBeDefined();
      expect(direct).toEqual(want);
    } else {
      expect(direct.error).toMatch(/^Invalid URL /);
    }
    // Through the facade: the url normalised by new URL() first.
    const href = whatwgHref(u);
    if (want === undefined) expect(href).toBe(u);
    const viaFacade = binding.parseClientUrl(href);
    if (viaFacade.error === undefined) {
      expect(want).toBeDefined();
      expect(viaFacade).toEqual(want);
    }
  });

  test('the facade makes usable what WHATWG reads unambiguously', () => {
    const usable = TRICKY.filter((u) => {
      const w = whatwg(u);
      return w !== undefined && /^(wss?|https?):$/.test(new URL(u).protocol) && w.port !== 0 && !/[!$*]/.test(w.host);
    });
    const refused = usable.filter((u) => binding.parseClientUrl(whatwgHref(u)).error !== undefined);
    expect(refused).toEqual([]);
    // ... and the engine alone refuses a good part of the list.
    const directlyRefused = TRICKY.filter((u) => binding.parseClientUrl(u).error !== undefined);
    expect(directlyRefused.length).toBeGreaterThan(60);
  });

  test('parseClientUrl wants a string', () => {
    expect(() => (binding.parseClientUrl as (u: unknown) => unknown)(5)).toThrow(new TypeError('url must be a string'));
  });
});

describe('every command and class that takes a url normalises it', () => {
  test('websocketClient, start, stop and send carry the WHATWG form', async () => {
    const srv = startServer();
    const c = newClient({ url: `WS://127.1:${srv.port}/a/../b?x y`, enableAutomaticReconnection: false });
    expect(c.url).toBe(`ws://127.0.0.1:${srv.port}/b?x%20y`);
    const st = await websocketClientStart({ ref: c.ref, url: `ws://0x7f.0.0.1:${srv.port}/c/./d`, timeout: 5 });
    expect(st).toMatchObject({ success: true, uri: `ws://127.0.0.1:${srv.port}/c/d` });
    const open = await srv.events.waitType('open');
    expect(open.ctx.uri).toBe('/c/d');
    // A url carried by send or stop updates the configuration, normalised.
    expect(websocketClientSend({ ref: c.ref, url: 'ws://2130706433:1/e\\f' }, 'x').success).toBe(true);
    const stopped = websocketClientStop({ ref: c.ref });
    expect(stopped).toMatchObject({ url: 'ws://127.0.0.1:1/e/f' });
    expect(websocketClientStop({ ref: c.ref, url: 'ws://[0:0::1]:2/' })).toMatchObject({ url: 'ws://[::1]:2/' });
    // A string URL cannot parse is kept as it is and refused at start.
    expect(websocketClient({ url: 'ws://127.1:1/x y\\z' }).url).toBe('ws://127.0.0.1:1/x%20y/z');
    const bad = newClient({ url: 'ws://[fe80::1%25eth0]/', enableAutomaticReconnection: false });
    expect(bad.url).toBe('ws://[fe80::1%25eth0]/');
    const bst = await websocketClientStart({ ref: bad.ref, timeout: 5 });
    expect(bst.success).toBe(false);
    expect(bst.errorStr).toMatch(/zone/);
  });

  test('WebSocketClient: constructor (string or options) and start', async () => {
    const srv = startServer();
    const b = await listener('127.0.0.2');
    const cls = new WebSocketClient(`ws://127.0.0.1:${srv.port}\\@127.0.0.2:${b.port}/y`);
    defer(() => cls.clear());
    expect(cls.url).toBe(`ws://127.0.0.1:${srv.port}/@127.0.0.2:${b.port}/y`);
    const cls2 = new WebSocketClient({ url: 'ws://127.1:1/', enableAutomaticReconnection: false });
    defer(() => cls2.clear());
    expect(cls2.url).toBe('ws://127.0.0.1:1/');
    const st = await cls2.start({ url: `ws://127.0.0.1:${srv.port}\\@127.0.0.2:${b.port}/z`, timeout: 5 });
    expect(st.success).toBe(true);
    expect(cls2.url).toBe(`ws://127.0.0.1:${srv.port}/@127.0.0.2:${b.port}/z`);
    const open = await srv.events.waitType('open');
    expect(open.ctx.uri).toBe(`/@127.0.0.2:${b.port}/z`);
    await until(() => (srv.events.of('open').length >= 1 ? true : undefined), 1000, 'open');
    expect(b.accepted()).toBe(0);
  });
});
