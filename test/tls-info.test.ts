// What a connection's TLS session says, in the open context (both sides)
// and in verifyClient's info: protocol, cipher, resumed, and the peer's
// certificate. A server with verifyPeer learns from it which client
// connected (and can refuse one before the 101 by its certificate); a
// client sees the server's leaf (for pinning). Plain ws:// has tls: null.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { X509Certificate } from 'crypto';
import * as tls from 'tls';
import * as net from 'net';
import { websocketClientStart } from '../lib/index';
import type { TlsInfo, VerifyClientInfo } from '../lib/index';
import { Collector, defer, newClient, runCleanup, startServer, upgradeRequest } from './support';
import { makeTestCa, type CertPair, type TestCa } from './support/certs';
import { issueCert, type IssuedCert } from './support/x509';

afterEach(runCleanup);

let ca: TestCa;
let leaf: CertPair;
let alice: IssuedCert;
let bob: IssuedCert;
let clientCa: IssuedCert;

beforeAll(() => {
  ca = makeTestCa('tls-info test CA');
  leaf = ca.leaf('localhost', ['DNS:localhost', 'IP:127.0.0.1']);
  clientCa = issueCert({ cn: 'clients CA', ca: true });
  alice = issueCert({ cn: 'alice', issuer: clientCa, extKeyUsage: ['clientAuth'] });
  bob = issueCert({ cn: 'bob', issuer: clientCa, extKeyUsage: ['clientAuth'] });
});
afterAll(() => ca?.remove());

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

async function ourClient(port: number, cert?: IssuedCert) {
  const events = new Collector();
  const client = newClient({
    url: `wss://localhost:${port}/`,
    enableAutomaticReconnection: false,
    method: events.method,
    tls: { ca: ca.ca, ...(cert ? { cert: cert.cert, key: cert.key } : {}) },
  });
  const status = await websocketClientStart({ ref: client.ref, timeout: 5 });
  return { client, events, status };
}

describe('the open context', () => {
  test('server with verifyPeer: the client certificate; client: the server leaf; protocol and cipher on both', async () => {
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key, ca: clientCa.cert, verifyPeer: true } });
    const c = await ourClient(srv.port, alice);
    expect(c.status.success).toBe(true);
    const serverSide = (await srv.events.waitType('open')).ctx.tls as TlsInfo;
    const clientSide = (await c.events.waitType('open')).ctx.tls as TlsInfo;
    expect(serverSide).toMatchObject({ protocol: 'TLSv1.3', resumed: false });
    expect(clientSide).toMatchObject({ protocol: 'TLSv1.3', resumed: false });
    expect(serverSide.cipher).toMatch(/^TLS_/);
    expect(clientSide.cipher).toBe(serverSide.cipher);
    expect(fingerprint(serverSide.peerCertificate)).toBe(fingerprint(alice.cert));
    expect(new X509Certificate(serverSide.peerCertificate).subject).toBe('CN=alice');
    expect(fingerprint(clientSide.peerCertificate)).toBe(fingerprint(leaf.cert));
  });

  test('server without verifyPeer: no client certificate (""); TLS 1.2 is reported as such', async () => {
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key } });
    const s = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: ca.ca, maxVersion: 'TLSv1.2' });
    defer(() => s.destroy());
    await new Promise<void>((r) => s.once('secureConnect', () => r()));
    s.write(upgradeRequest('/', 'dGhlIHNhbXBsZSBub25jZQ=='));
    const ctx = (await srv.events.waitType('open')).ctx;
    expect(ctx.tls).toMatchObject({ protocol: 'TLSv1.2', resumed: false, peerCertificate: '' });
    expect(ctx.tls.cipher).toBe(s.getCipher().name); // OpenSSL's name, e.g. ECDHE-ECDSA-AES256-GCM-SHA384
  });

  test('plain ws://: tls is null; a request header named "tls" does not replace it', async () => {
    const srv = startServer();
    const s = net.connect(srv.port, '127.0.0.1');
    defer(() => s.destroy());
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(upgradeRequest('/', 'dGhlIHNhbXBsZSBub25jZQ==', { tls: 'forged' }));
    const ctx = (await srv.events.waitType('open')).ctx;
    expect(ctx.tls).toBeNull();
    expect(ctx.headers.tls).toBe('forged');
  });

  test("a resumed session: resumed true, and the client certificate is still known (from the session)", async () => {
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key, ca: clientCa.cert, verifyPeer: true } });
    const connect = (session?: Buffer) =>
      new Promise<{ socket: tls.TLSSocket; session?: Buffer }>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: ca.ca, cert: bob.cert, key: bob.key, session });
        defer(() => s.destroy());
        let got: Buffer | undefined;
        s.on('session', (b: Buffer) => {
          got = b;
        });
        s.once('error', reject);
        s.once('secureConnect', () => {
          s.write(upgradeRequest('/', 'dGhlIHNhbXBsZSBub25jZQ=='));
          // The 101, and with it (or before it) the session ticket.
          s.once('data', () => setTimeout(() => resolve({ socket: s, session: got }), 50));
        });
      });
    const first = await connect();
    expect(first.session).toBeDefined();
    first.socket.destroy();
    const second = await connect(first.session);
    expect(second.socket.isSessionReused()).toBe(true);
    const opens = await srv.events.waitCount((e) => e.type === 'open', 2, 5000, 'two opens');
    expect(opens.map((e) => e.ctx.tls.resumed)).toEqual([false, true]);
    for (const e of opens) expect(fingerprint(e.ctx.tls.peerCertificate)).toBe(fingerprint(bob.cert));
  });
});

describe('verifyClient', () => {
  test('sees the client certificate before the 101 and refuses one client by it (403), accepts the other', async () => {
    const infos: VerifyClientInfo[] = [];
    const srv = startServer({
      tls: { cert: leaf.cert, key: leaf.key, ca: clientCa.cert, verifyPeer: true },
      verifyClient: (info: VerifyClientInfo) => {
        infos.push(info);
        const who = info.tls?.peerCertificate ? new X509Certificate(info.tls.peerCertificate).subject : '';
        return who === 'CN=alice' ? true : { accept: false, status: 403, message: `not you, ${who}` };
      },
    });
    const a = await ourClient(srv.port, alice);
    expect(a.status).toMatchObject({ success: true, http_status: 101 });
    const b = await ourClient(srv.port, bob);
    expect(b.status).toMatchObject({ success: false, http_status: 403 });
    expect(infos.map((i) => i.secure)).toEqual([true, true]);
    expect(infos.map((i) => i.tls?.protocol)).toEqual(['TLSv1.3', 'TLSv1.3']);
    expect(infos.map((i) => fingerprint(i.tls!.peerCertificate))).toEqual([fingerprint(alice.cert), fingerprint(bob.cert)]);
    expect(srv.events.of('open')).toHaveLength(1);
  });

  test('on a plain server: info.tls is null', async () => {
    const infos: VerifyClientInfo[] = [];
    const srv = startServer({
      verifyClient: (info: VerifyClientInfo) => {
        infos.push(info);
        return true;
      },
    });
    const c = newClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false });
    expect((await websocketClientStart({ ref: c.ref, timeout: 5 })).success).toBe(true);
    expect(infos).toHaveLength(1);
    expect(infos[0].secure).toBe(false);
    expect(infos[0].tls).toBeNull();
  });
});
