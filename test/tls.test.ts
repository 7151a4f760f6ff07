// TLS (wss://): certificates made at test time with Node's crypto
// (support/x509.ts) in a temp directory (no private key lives in the repo). Our client ↔ our server, our
// client ↔ ws over Node's https, ws over Node's tls ↔ our server; failures
// with readable errorStr (wrong host name, untrusted CA, expired certificate);
// verifyPeer off; client certificates required by the server.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import * as fs from 'fs';
import * as crypto from 'crypto';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import * as tls from 'tls';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import type { AddressInfo } from 'net';
import {
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerClear,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
} from '../lib/index';
import type { ClientOptions, TlsOptions } from '../lib/index';
import {
  Collector,
  bytes,
  collect,
  defer,
  newClient,
  runCleanup,
  startServer,
  text,
  until,
  upgradeRequest,
} from './support';
import { writePair, type CertFiles } from './support/certs';
import { issueCert, type CertSpec, type IssuedCert } from './support/x509';

afterEach(runCleanup);

// ------------------------------------------------------------ certificates

type Pair = CertFiles;

let dir = '';
let ca: { cert: string; certFile: string };
let server: Pair; // localhost + 127.0.0.1, signed by ca
let otherName: Pair; // other.example only, signed by ca
let expired: Pair; // localhost + 127.0.0.1, signed by ca, valid in 2020 only
let stranger: Pair; // localhost + 127.0.0.1, signed by an unknown CA
let clientCert: Pair; // client authentication, signed by ca
let rogueClient: Pair; // client authentication, signed by the unknown CA

const SERVER = { altNames: ['DNS:localhost', 'IP:127.0.0.1'], extKeyUsage: ['serverAuth' as const] };

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-tls-'));
  const caCert = issueCert({ cn: 'ca test CA', ca: true });
  const rogueCa = issueCert({ cn: 'rogue test CA', ca: true });
  writePair(dir, 'rogue', rogueCa.cert, rogueCa.key);
  const leaf = (name: string, spec: CertSpec): Pair => {
    const c = issueCert(spec);
    return writePair(dir, name, c.cert, c.key);
  };
  ca = { cert: caCert.cert, certFile: writePair(dir, 'ca', caCert.cert, caCert.key).certFile };
  server = leaf('server', { cn: 'localhost', issuer: caCert, ...SERVER });
  otherName = leaf('other', { cn: 'other.example', issuer: caCert, altNames: ['DNS:other.example'] });
  stranger = leaf('stranger', { cn: 'localhost', issuer: rogueCa, ...SERVER });
  clientCert = leaf('client', { cn: 'test client', issuer: caCert, extKeyUsage: ['clientAuth'] });
  rogueClient = leaf('rogueclient', { cn: 'rogue client', issuer: rogueCa, extKeyUsage: ['clientAuth'] });
  expired = leaf('expired', {
    cn: 'localhost',
    issuer: caCert,
    ...SERVER,
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2020-01-02T00:00:00Z'),
  });
}, 60_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------ helpers

function tlsServer(tls: TlsOptions, extra: Record<string, unknown> = {}) {
  return startServer({ tls, ...extra });
}

/** Starts our client; resolves with the start status and its events. */
async function tlsClient(url: string, tls?: TlsOptions, extra: ClientOptions = {}) {
  const events = new Collector();
  const client = newClient({
    url,
    enableAutomaticReconnection: false,
    method: events.method,
    ...(tls ? { tls } : {}),
    ...extra,
  });
  const status = await websocketClientStart({ ref: client.ref, timeout: 5 });
  return { client, events, status };
}



/** A failed start: success false, errorStr matching `re`, said once (no
 * "TLS ...: TLS ...:" stacking of prefixes). */
function expectTlsFailure(status: { success: boolean; errorStr: string }, re: RegExp): void {
  expect(status.success).toBe(false);
  expect(status.errorStr).toMatch(re);
  expect(status.errorStr.match(/TLS/g)?.length).toBe(1);
}

const T = text(50000, 21);
const B = bytes(50000, 22);

// ------------------------------------------------------------ success paths

describe('wss:// our client ↔ our server', () => {
  for (const via of ['PEM strings', 'files'] as const) {
    test(`text and binary both ways (certificates as ${via})`, async () => {
      const srv = tlsServer(via === 'files' ? { certFile: server.certFile, keyFile: server.keyFile } : { cert: server.cert, key: server.key });
      const c = await tlsClient(`wss://localhost:${srv.port}/secure?q=1`, via === 'files' ? { caFile: ca.certFile } : { ca: ca.cert });
      expect(c.status).toMatchObject({ success: true, http_status: 101, errorStr: '' });
      await c.events.waitType('open');
      const open = await srv.events.waitType('open');
      expect(open.ctx.uri).toBe('/secure?q=1');

      expect(websocketClientSend(c.client, 'hello ✓').success).toBe(true);
      expect(websocketClientSend(c.client, T).success).toBe(true);
      expect(websocketClientSend(c.client, B).success).toBe(true);
      const ms = await srv.events.waitCount((e) => e.type === 'message', 3, 5000, 'messages over TLS');
      expect(ms[0].ctx).toMatchObject({ data: 'hello ✓', binary: false });
      expect(ms[1].ctx.data === T).toBe(true);
      expect(ms[2].ctx.binary).toBe(true);
      expect(B.equals(ms[2].ctx.data)).toBe(true);

      expect(websocketServerSend(srv.server, 'back ✓')[0].success).toBe(true);
      expect(websocketServerSend(srv.server, T)[0].success).toBe(true);
      expect(websocketServerSend(srv.server, B)[0].success).toBe(true);
      const back = await c.events.waitCount((e) => e.type === 'message', 3, 5000, 'replies over TLS');
      expect(back[0].ctx).toMatchObject({ data: 'back ✓', binary: false });
      expect(back[1].ctx.data === T).toBe(true);
      expect(B.equals(back[2].ctx.data)).toBe(true);
    });
  }

  test('an IP address url is verified against the IP SAN', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    const c = await tlsClient(`wss://127.0.0.1:${srv.port}/`, { ca: ca.cert });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
    expect(websocketClientSend(c.client, 'by ip').success).toBe(true);
    expect((await srv.events.waitType('message')).ctx.data).toBe('by ip');
  });

  test('servername chooses the name sent (SNI) and verified', async () => {
    const srv = tlsServer({ cert: otherName.cert, key: otherName.key });
    const c = await tlsClient(`wss://127.0.0.1:${srv.port}/`, { ca: ca.cert, servername: 'other.example' });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
  });

  test('a plain ws:// client cannot talk to a TLS server', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    const c = await tlsClient(`ws://127.0.0.1:${srv.port}/`);
    expect(c.status.success).toBe(false);
    expect(srv.events.of('open')).toEqual([]);
  });
});

describe('against ws over Node TLS', () => {
  test('our client ↔ ws on https.createServer (with permessage-deflate)', async () => {
    const hs = https.createServer({ cert: server.cert, key: server.key });
    const wss = new WsServer({ server: hs, perMessageDeflate: true });
    defer(() => new Promise((r) => hs.close(() => r(undefined))));
    defer(() => new Promise((r) => wss.close(() => r(undefined))));
    const servername = new Promise<string | false>((r) =>
      hs.once('secureConnection', (s) => r((s as unknown as { servername: string | false }).servername)),
    );
    await new Promise<void>((r) => hs.listen(0, '127.0.0.1', () => r()));
    const port = (hs.address() as AddressInfo).port;
    const peer = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));

    const c = await tlsClient(`wss://localhost:${port}/node`, { ca: ca.cert });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
    expect(await servername).toBe('localhost');
    const ws = await peer;
    defer(() => ws.terminate());
    const got = collect(ws);

    // permessage-deflate runs inside TLS too
    expect(ws.extensions).toBe('permessage-deflate');
    expect(websocketClientSend(c.client, 'to node ✓').success).toBe(true);
    const sentT = websocketClientSend(c.client, T);
    expect(sentT.success).toBe(true);
    expect(sentT.wireSize).toBeLessThan(sentT.payloadSize / 4);
    expect(websocketClientSend(c.client, B).success).toBe(true);
    await until(() => (got.length >= 3 ? true : undefined), 5000, 'ws to receive 3 messages');
    expect(got[0]).toEqual({ data: Buffer.from('to node ✓'), isBinary: false });
    expect(got[1].data.toString() === T).toBe(true);
    expect(got[2].isBinary).toBe(true);
    expect(B.equals(got[2].data)).toBe(true);

    ws.send('from node ✓');
    ws.send(T);
    ws.send(B);
    const ms = await c.events.waitCount((e) => e.type === 'message', 3, 5000, 'messages from ws');
    expect(ms[0].ctx).toMatchObject({ data: 'from node ✓', binary: false });
    expect(ms[1].ctx.data === T).toBe(true);
    expect(ms[1].ctx.wireSize).toBeLessThan(Buffer.byteLength(T) / 4);
    expect(B.equals(ms[2].ctx.data)).toBe(true);

    ws.close(4001, 'tls bye');
    const close = await c.events.waitType('close');
    expect(close.ctx).toMatchObject({ code: 4001, reason: 'tls bye', remote: true });
  });

  test('ws client (with ca) ↔ our TLS server', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    const ws = new WebSocket(`wss://localhost:${srv.port}/from-ws`, { ca: ca.cert });
    defer(() => ws.terminate());
    const got = collect(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const open = await srv.events.waitType('open');
    expect(open.ctx.uri).toBe('/from-ws');

    ws.send('ws over tls ✓');
    ws.send(T);
    ws.send(B);
    const ms = await srv.events.waitCount((e) => e.type === 'message', 3, 5000, 'messages from ws');
    expect(ms[0].ctx).toMatchObject({ data: 'ws over tls ✓', binary: false });
    expect(ms[1].ctx.data === T).toBe(true);
    expect(ms[2].ctx.binary).toBe(true);
    expect(B.equals(ms[2].ctx.data)).toBe(true);

    websocketServerSend(srv.server, 'server ✓');
    websocketServerSend(srv.server, T);
    websocketServerSend(srv.server, B);
    await until(() => (got.length >= 3 ? true : undefined), 5000, 'ws to receive 3 messages');
    expect(got[0]).toEqual({ data: Buffer.from('server ✓'), isBinary: false });
    expect(got[1].data.toString() === T).toBe(true);
    expect(B.equals(got[2].data)).toBe(true);

    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.close(4002, 'ws leaves');
    expect(await closed).toBe(4002);
    expect((await srv.events.waitType('close', open.client)).ctx).toEqual({ code: 4002, reason: 'ws leaves', remote: true });
  });
});

// ------------------------------------------------------------ failures

describe('certificate failures', () => {
  test('wrong host name', async () => {
    const srv = tlsServer({ cert: otherName.cert, key: otherName.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert });
    expectTlsFailure(c.status, /hostname|mismatch/i);
    expect(srv.events.of('open')).toEqual([]);
  });

  test('wrong IP address', async () => {
    const srv = tlsServer({ cert: otherName.cert, key: otherName.key });
    const c = await tlsClient(`wss://127.0.0.1:${srv.port}/`, { ca: ca.cert });
    expectTlsFailure(c.status, /mismatch/i);
  });

  test('untrusted CA (no ca given)', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`);
    expectTlsFailure(c.status, /issuer|self.signed|unable/i);
  });

  test('untrusted CA (signed by another CA than the one given)', async () => {
    const srv = tlsServer({ cert: stranger.cert, key: stranger.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert });
    expectTlsFailure(c.status, /issuer|self.signed|unable/i);
  });

  test('expired certificate', async () => {
    const srv = tlsServer({ cert: expired.cert, key: expired.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert });
    expectTlsFailure(c.status, /expired/i);
  });

  test('verifyPeer false connects despite an untrusted CA', async () => {
    const srv = tlsServer({ cert: stranger.cert, key: stranger.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { verifyPeer: false });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
    expect(websocketClientSend(c.client, 'unverified').success).toBe(true);
    expect((await srv.events.waitType('message')).ctx.data).toBe('unverified');
  });

  test('disableHostnameValidation connects to a certificate for another name', async () => {
    const srv = tlsServer({ cert: otherName.cert, key: otherName.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert, disableHostnameValidation: true });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
  });

  test('a bad cipher list fails the client start and the server start', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert, ciphers: 'NO-SUCH-CIPHER' });
    expect(c.status.success).toBe(false);
    expect(c.status.errorStr).toMatch(/cipher/i);

    const s = websocketServer({ port: 0, tls: { cert: server.cert, key: server.key, ciphers: 'NO-SUCH-CIPHER' } });
    defer(() => websocketServerClear({ ref: s.ref }));
    const st = websocketServerStart(s);
    expect(st.success).toBe(false);
    expect(st.message).toMatch(/cipher/i);
  });

  test('a server given tls without a key does not start', async () => {
    const s = websocketServer({ port: 0, tls: { cert: server.cert } });
    defer(() => websocketServerClear({ ref: s.ref }));
    const st = websocketServerStart(s);
    expect(st.success).toBe(false);
    expect(st.message).toMatch(/key/i);
  });
});

describe('encrypted private keys (passphrase) and TLS versions', () => {
  let vca: IssuedCert;
  let leafCert: IssuedCert;
  let clientLeaf: IssuedCert;
  beforeAll(() => {
    vca = issueCert({ cn: 'versions test CA', ca: true });
    leafCert = issueCert({ cn: 'localhost', issuer: vca, ...SERVER });
    clientLeaf = issueCert({ cn: 'encrypted client', issuer: vca, extKeyUsage: ['clientAuth'] });
  });
  const encrypted = (c: IssuedCert, type: 'pkcs8' | 'sec1', passphrase = 'open sesame') =>
    c.privateKey.export({ type, format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
  const start = (tls: TlsOptions) => {
    const s = websocketServer({ port: 0, host: '127.0.0.1', tls });
    defer(() => websocketServerClear({ ref: s.ref }));
    return { s, st: websocketServerStart(s) };
  };

  test('a server key encrypted (PKCS#8 and traditional PEM) starts with its passphrase and serves', async () => {
    for (const type of ['pkcs8', 'sec1'] as const) {
      const key = encrypted(leafCert, type);
      expect(key).toMatch(type === 'pkcs8' ? /BEGIN ENCRYPTED PRIVATE KEY/ : /Proc-Type: 4,ENCRYPTED/);
      const { st } = start({ cert: leafCert.cert, key, passphrase: 'open sesame' });
      expect(st, type).toMatchObject({ success: true });
      const c = await tlsClient(`wss://localhost:${st.port}/`, { ca: vca.cert });
      expect(c.status, type).toMatchObject({ success: true, http_status: 101 });
    }
  });

  test('without the passphrase, or with a wrong one, the start fails saying so (and nothing prompts)', () => {
    const key = encrypted(leafCert, 'pkcs8');
    const none = start({ cert: leafCert.cert, key }).st;
    expect(none.success).toBe(false);
    expect(none.message).toBe('TLS: the private key is encrypted: give its passphrase (tls.passphrase)');
    const wrong = start({ cert: leafCert.cert, key, passphrase: 'guess' }).st;
    expect(wrong.success).toBe(false);
    expect(wrong.message).toMatch(/^TLS: cannot load private key \(wrong passphrase\?\): /);
    const sec1 = start({ cert: leafCert.cert, key: encrypted(leafCert, 'sec1') }).st;
    expect(sec1.message).toBe('TLS: the private key is encrypted: give its passphrase (tls.passphrase)');
  });

  test('a client certificate with an encrypted key (from a file) is accepted by a server with verifyPeer', async () => {
    const srv = tlsServer({ cert: leafCert.cert, key: leafCert.key, ca: vca.cert, verifyPeer: true });
    const keyFile = path.join(dir, 'encrypted-client.key');
    fs.writeFileSync(keyFile, encrypted(clientLeaf, 'pkcs8', 'client pass'), { mode: 0o600 });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: vca.cert, cert: clientLeaf.cert, keyFile, passphrase: 'client pass' });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
    const open = await srv.events.waitType('open');
    expect(new crypto.X509Certificate(open.ctx.tls.peerCertificate).subject).toBe('CN=encrypted client');
    const without = await tlsClient(`wss://localhost:${srv.port}/`, { ca: vca.cert, cert: clientLeaf.cert, keyFile });
    expect(without.status.success).toBe(false);
    expect(without.status.errorStr).toBe('TLS: the private key is encrypted: give its passphrase (tls.passphrase)');
  });

  test('minVersion TLSv1.3 on a server refuses a TLS 1.2 client; maxVersion TLSv1.2 on a client gets TLS 1.2', async () => {
    const strict = tlsServer({ cert: leafCert.cert, key: leafCert.key, minVersion: 'TLSv1.3' });
    const old = tls.connect({ host: '127.0.0.1', port: strict.port, servername: 'localhost', ca: vca.cert, maxVersion: 'TLSv1.2' });
    defer(() => old.destroy());
    const refused = await new Promise<string>((r) => {
      old.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? e.message));
      old.once('secureConnect', () => r('connected'));
    });
    expect(refused).toMatch(/PROTOCOL_VERSION|ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
    const ours13 = await tlsClient(`wss://localhost:${strict.port}/`, { ca: vca.cert });
    expect(ours13.status.success).toBe(true);
    expect((await ours13.events.waitType('open')).ctx.tls.protocol).toBe('TLSv1.3');

    const open = tlsServer({ cert: leafCert.cert, key: leafCert.key });
    const ours12 = await tlsClient(`wss://localhost:${open.port}/`, { ca: vca.cert, maxVersion: 'TLSv1.2' });
    expect(ours12.status.success).toBe(true);
    expect((await ours12.events.waitType('open')).ctx.tls.protocol).toBe('TLSv1.2');
    expect((await open.events.waitType('open')).ctx.tls.protocol).toBe('TLSv1.2');
    // A client that wants 1.3 only, against a server capped at 1.2: refused.
    const capped = tlsServer({ cert: leafCert.cert, key: leafCert.key, maxVersion: 'TLSv1.2' });
    const mismatch = await tlsClient(`wss://localhost:${capped.port}/`, { ca: vca.cert, minVersion: 'TLSv1.3' });
    expect(mismatch.status.success).toBe(false);
    expect(mismatch.status.errorStr).toMatch(/^TLS handshake failed: .*(protocol version|unsupported protocol)/i);
  });

  test('versions: anything but "TLSv1.2" / "TLSv1.3" is a TypeError; minVersion above maxVersion fails the start', () => {
    for (const bad of ['TLSv1.1', 'tlsv1.3', '', 1.3, null]) {
      expect(() => websocketServer({ tls: { minVersion: bad as never } })).toThrow(
        new TypeError('options.tls.minVersion must be "TLSv1.2" or "TLSv1.3"'),
      );
      expect(() => newClient({ tls: { maxVersion: bad as never } })).toThrow(
        new TypeError('options.tls.maxVersion must be "TLSv1.2" or "TLSv1.3"'),
      );
    }
    const { st } = start({ cert: leafCert.cert, key: leafCert.key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' });
    expect(st).toMatchObject({ success: false, message: 'TLS: minVersion TLSv1.3 is above maxVersion TLSv1.2' });
  });
});

describe('options', () => {
  test('tls options come back in the created objects; null turns TLS off', () => {
    const t = { certFile: '/x/c.pem', keyFile: '/x/k.pem', caFile: '/x/ca.pem', ciphers: 'TLS_AES_128_GCM_SHA256', verifyPeer: true };
    const s = websocketServer({ port: 0, tls: t });
    defer(() => websocketServerClear({ ref: s.ref }));
    expect(s.tls).toEqual(t);
    const c = newClient({ url: 'wss://localhost:1/', tls: { ca: 'PEM', servername: 'n.example', disableHostnameValidation: true, verifyPeer: false } });
    expect(c.tls).toEqual({ ca: 'PEM', servername: 'n.example', disableHostnameValidation: true, verifyPeer: false });
    expect(() => newClient({ tls: { verifyPeer: 'yes' as unknown as boolean } })).toThrow(TypeError);
    expect(() => newClient({ tls: { cert: 5 as unknown as string } })).toThrow(TypeError);
  });

  test('restarted with tls: null, a TLS server serves plain ws', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    const plain = await tlsClient(`ws://127.0.0.1:${srv.port}/`);
    expect(plain.status.success).toBe(false);
    websocketServerStop(srv.server);
    const st = websocketServerStart({ ref: srv.server.ref, port: 0, tls: null as unknown as TlsOptions });
    expect(st.success).toBe(true);
    const again = await tlsClient(`ws://127.0.0.1:${st.port}/`);
    expect(again.status).toMatchObject({ success: true, http_status: 101 });
  });

  test("tls given again after null has the server's defaults: no client certificate asked for", async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key });
    websocketServerStop(srv.server);
    expect(websocketServerStart({ ref: srv.server.ref, port: 0, tls: null as unknown as TlsOptions }).success).toBe(true);
    websocketServerStop(srv.server);
    // (null used to reset tls to the client's defaults: verifyPeer on, so
    // this start failed for want of a ca to check client certificates with.)
    const st = websocketServerStart({ ref: srv.server.ref, port: 0, tls: { cert: server.cert, key: server.key } });
    expect(st).toMatchObject({ success: true });
    const c = await tlsClient(`wss://localhost:${st.port}/`, { ca: ca.cert });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });
  });
});

describe('client certificates', () => {
  test('a server with verifyPeer rejects a client without a certificate and accepts one with', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key, ca: ca.cert, verifyPeer: true });

    const without = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert });
    expectTlsFailure(without.status, /certificate required/i);
    expect(srv.events.of('open')).toEqual([]);

    const withCert = await tlsClient(`wss://localhost:${srv.port}/`, {
      ca: ca.cert,
      cert: clientCert.cert,
      key: clientCert.key,
    });
    expect(withCert.status).toMatchObject({ success: true, http_status: 101 });
    await srv.events.waitType('open');
    expect(websocketClientSend(withCert.client, 'mutual').success).toBe(true);
    expect((await srv.events.waitType('message')).ctx.data).toBe('mutual');
  });

  test('a client certificate from files; ws with a certificate is accepted too', async () => {
    const srv = tlsServer({ certFile: server.certFile, keyFile: server.keyFile, caFile: ca.certFile, verifyPeer: true });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, {
      caFile: ca.certFile,
      certFile: clientCert.certFile,
      keyFile: clientCert.keyFile,
    });
    expect(c.status).toMatchObject({ success: true, http_status: 101 });

    const ws = new WebSocket(`wss://localhost:${srv.port}/`, { ca: ca.cert, cert: clientCert.cert, key: clientCert.key });
    defer(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await srv.events.waitCount((e) => e.type === 'open', 2, 5000, 'both opens');
  });

  test('a client certificate from an unknown CA is rejected', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key, ca: ca.cert, verifyPeer: true });
    const c = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert, cert: rogueClient.cert, key: rogueClient.key });
    expect(c.status.success).toBe(false);
    expect(srv.events.of('open')).toEqual([]);
  });
});

// ------------------------------------------------------------ issue 11, defect 9

/** A TLS connection (trusting `ca`) to the server; resolves once the TLS handshake is done. */
function tlsRaw(port: number): Promise<{ socket: tls.TLSSocket; received: () => string; ended: () => boolean; errors: Error[] }> {
  return new Promise((resolve, reject) => {
    let got = '';
    let done = false;
    const errors: Error[] = [];
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: ca.cert });
    defer(() => socket.destroy());
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('close', () => (done = true));
    socket.on('error', (e) => {
      errors.push(e);
      done = true;
      reject(e);
    });
    socket.once('secureConnect', () => resolve({ socket, received: () => got, ended: () => done, errors }));
  });
}

describe('HTTP error answers on a TLS server go through TLS', () => {
  for (const [what, request, status] of [
    ['a bad upgrade request', 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n', 400],
    ['a request head over maxHeaderSize', `GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'x'.repeat(3000)}\r\n\r\n`, 431],
  ] as const) {
    test(`${what}: a TLS-wrapped ${status}`, async () => {
      const srv = tlsServer({ cert: server.cert, key: server.key }, { maxHeaderSize: 1024 });
      const c = await tlsRaw(srv.port);
      c.socket.write(request);
      const text = await until(() => (c.received().includes('\r\n\r\n') ? c.received() : undefined), 5000, 'the answer');
      expect(text.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      await until(() => (c.ended() ? true : undefined), 5000, 'the close');
      expect(c.errors).toEqual([]);
    });
  }

  test('over maxConnections: a TLS-wrapped 503 (the count is taken after the TLS handshake)', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key }, { maxConnections: 1 });
    const first = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert });
    expect(first.status.success).toBe(true);
    const c = await tlsRaw(srv.port);
    c.socket.write(upgradeRequest('/', crypto.randomBytes(16).toString('base64')));
    const text = await until(() => (c.received().includes('\r\n\r\n') ? c.received() : undefined), 5000, 'the answer');
    expect(text.startsWith('HTTP/1.1 503 ')).toBe(true);
    // And our client sees the status too.
    const second = await tlsClient(`wss://localhost:${srv.port}/`, { ca: ca.cert });
    expect(second.status).toMatchObject({ success: false, http_status: 503 });
    expect(websocketClientSend(first.client, 'first still works').success).toBe(true);
    expect((await srv.events.waitType('message')).ctx.data).toBe('first still works');
  });

  test('refused before the TLS handshake (per-address cap): closed without a plaintext byte', async () => {
    const srv = tlsServer({ cert: server.cert, key: server.key }, { maxConnectionsPerAddress: 1, firstByteTimeout: 30 });
    const hold = await tlsRaw(srv.port);
    expect(hold.ended()).toBe(false);
    const got: Buffer[] = [];
    const plain = net.connect({ port: srv.port, host: '127.0.0.1' });
    defer(() => plain.destroy());
    plain.on('data', (d: Buffer) => got.push(d));
    plain.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not closed within 3 s')), 3000);
      plain.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    expect(Buffer.concat(got).length).toBe(0);
  });
});

describe('CA handling', () => {
  test('a server with verifyPeer and no ca/caFile does not start (it would trust any public client certificate)', () => {
    const s = websocketServer({ port: 0, tls: { cert: server.cert, key: server.key, verifyPeer: true } });
    defer(() => websocketServerClear({ ref: s.ref }));
    const st = websocketServerStart(s);
    expect(st.success).toBe(false);
    expect(st.message).toMatch(/verifyPeer.*(ca|caFile)/);
  });

  test("a client's ca replaces the system store (as Node's tls does)", async () => {
    // The "system store" is SSL_CERT_FILE: the test CA (CA-A).
    const saved = process.env.SSL_CERT_FILE;
    process.env.SSL_CERT_FILE = ca.certFile;
    defer(() => {
      if (saved === undefined) delete process.env.SSL_CERT_FILE;
      else process.env.SSL_CERT_FILE = saved;
    });
    const rogueCa = fs.readFileSync(path.join(dir, 'rogue.crt'), 'utf8'); // CA-B
    const fromA = tlsServer({ cert: server.cert, key: server.key });
    const fromB = tlsServer({ cert: stranger.cert, key: stranger.key });

    // Without ca: the system store, which holds CA-A.
    const sys = await tlsClient(`wss://localhost:${fromA.port}/`);
    expect(sys.status).toMatchObject({ success: true, http_status: 101 });
    // ca: CA-B only: a certificate from CA-A (in the system store) is refused...
    const a = await tlsClient(`wss://localhost:${fromA.port}/`, { ca: rogueCa });
    expectTlsFailure(a.status, /issuer|unable|self.signed/i);
    // ...and one from CA-B accepted.
    const b = await tlsClient(`wss://localhost:${fromB.port}/`, { ca: rogueCa });
    expect(b.status).toMatchObject({ success: true, http_status: 101 });
  });
});
