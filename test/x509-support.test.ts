// The test certificates (support/x509.ts) and the proxy password hash
// (support/md5crypt.ts) are made with Node's crypto alone. Every TLS suite
// stands on them, so they are checked here on their own: parsed back by
// Node's X509Certificate, used by Node's TLS on both ends (accepted when
// they should be, refused with the right OpenSSL error when not), and, where
// the openssl command-line tool is installed, verified and hashed by it too.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execFileSync } from 'child_process';
import { X509Certificate } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tls from 'tls';
import type { AddressInfo } from 'net';
import { md5crypt } from './support/md5crypt';
import { describeWithPeers, peers } from './support/peers';
import { issueCert, type IssuedCert } from './support/x509';

let ca: IssuedCert;
let rogue: IssuedCert;
let leaf: IssuedCert;
let expired: IssuedCert;
let client: IssuedCert;

beforeAll(() => {
  ca = issueCert({ cn: 'x509 test CA', ca: true });
  rogue = issueCert({ cn: 'x509 rogue CA', ca: true });
  leaf = issueCert({ cn: 'localhost', issuer: ca, altNames: ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'], extKeyUsage: ['serverAuth'] });
  expired = issueCert({
    cn: 'localhost',
    issuer: ca,
    altNames: ['DNS:localhost'],
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2020-01-02T00:00:00Z'),
  });
  client = issueCert({ cn: 'x509 client', issuer: ca, extKeyUsage: ['clientAuth'] });
});

describe('certificates read back by X509Certificate', () => {
  test('a CA and a leaf it signs: names, extensions, validity, signature', () => {
    const c = new X509Certificate(ca.cert);
    const l = new X509Certificate(leaf.cert);
    expect(c.subject).toBe('CN=x509 test CA');
    expect(c.issuer).toBe('CN=x509 test CA');
    expect(c.ca).toBe(true);
    expect(c.verify(c.publicKey)).toBe(true); // self-signed
    expect(l.subject).toBe('CN=localhost');
    expect(l.issuer).toBe('CN=x509 test CA');
    expect(l.ca).toBe(false);
    expect(l.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(l.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(l.checkHost('localhost')).toBe('localhost');
    expect(l.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(l.checkIP('::1')).toBe('::1');
    expect(l.checkHost('other.example')).toBeUndefined();
    expect(l.checkIssued(c)).toBe(true);
    expect(l.verify(c.publicKey)).toBe(true);
    expect(l.verify(new X509Certificate(rogue.cert).publicKey)).toBe(false);
    expect(l.checkPrivateKey(leaf.privateKey)).toBe(true);
    expect(l.checkPrivateKey(ca.privateKey)).toBe(false);
    const from = Date.parse(l.validFrom);
    const to = Date.parse(l.validTo);
    expect(from).toBeLessThan(Date.now());
    expect(to).toBeGreaterThan(Date.now() + 86400_000);
  });

  test('explicit dates, before and after 2050 (UTCTime / GeneralizedTime)', () => {
    const e = new X509Certificate(expired.cert);
    expect(new Date(e.validFrom).toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect(new Date(e.validTo).toISOString()).toBe('2020-01-02T00:00:00.000Z');
    const far = new X509Certificate(issueCert({ cn: 'far', notBefore: new Date('2049-12-31T23:59:59Z'), notAfter: new Date('2061-06-01T12:00:00Z') }).cert);
    expect(new Date(far.validFrom).toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(new Date(far.validTo).toISOString()).toBe('2061-06-01T12:00:00.000Z');
  });

  test('serial numbers are positive and differ; RSA keys sign too', () => {
    const serials = new Set([ca, rogue, leaf, expired, client].map((c) => new X509Certificate(c.cert).serialNumber));
    expect(serials.size).toBe(5);
    for (const s of serials) expect(parseInt(s.slice(0, 2), 16)).toBeLessThan(0x80);
    const r = issueCert({ cn: 'rsa', keyType: 'rsa', issuer: ca });
    const x = new X509Certificate(r.cert);
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    expect(x.verify(new X509Certificate(ca.cert).publicKey)).toBe(true);
    const byRsa = new X509Certificate(issueCert({ cn: 'by rsa', issuer: r }).cert);
    expect(byRsa.verify(x.publicKey)).toBe(true); // sha256WithRSAEncryption
  });

  test('misuse: an altName that is neither DNS: nor IP:, or a bad address, is a TypeError', () => {
    expect(() => issueCert({ cn: 'x', altNames: ['URI:http://x'] })).toThrow(TypeError);
    expect(() => issueCert({ cn: 'x', altNames: ['IP:300.1.1.1'] })).toThrow(/not an IP address/);
  });
});

// -------------------------------------------------- Node's TLS on both ends

interface Outcome {
  authorized: boolean;
  error?: string;
  serverSawClient?: string;
}

async function handshake(server: tls.TlsOptions, clientOptions: tls.ConnectionOptions): Promise<Outcome> {
  let serverSawClient: string | undefined;
  const srv = tls.createServer(server, (s) => {
    const peer = s.getPeerCertificate();
    serverSawClient = peer && peer.subject ? String(peer.subject.CN) : undefined;
    s.end();
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  try {
    return await new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => resolve({ authorized: false, error: 'timeout' }), 5000);
      const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ...clientOptions }, () => {
        clearTimeout(timer);
        const out: Outcome = { authorized: s.authorized, error: s.authorizationError ? String(s.authorizationError) : undefined };
        s.on('close', () => resolve({ ...out, serverSawClient }));
        s.on('error', () => resolve({ ...out, serverSawClient }));
      });
      s.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({ authorized: false, error: e.code ?? e.message });
      });
    });
  } finally {
    srv.close();
  }
}

describe("Node's TLS with these certificates", () => {
  test('a server leaf is accepted by a client that trusts its CA', async () => {
    const r = await handshake({ cert: leaf.cert, key: leaf.key }, { ca: ca.cert });
    expect(r).toMatchObject({ authorized: true, error: undefined });
  });

  test('refused for an unknown CA, an expired leaf, a name not in it', async () => {
    expect((await handshake({ cert: leaf.cert, key: leaf.key }, { ca: rogue.cert })).error).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect((await handshake({ cert: expired.cert, key: expired.key }, { ca: ca.cert })).error).toBe('CERT_HAS_EXPIRED');
    expect((await handshake({ cert: leaf.cert, key: leaf.key }, { ca: ca.cert, servername: 'other.example' })).error).toBe(
      'ERR_TLS_CERT_ALTNAME_INVALID',
    );
  });

  test('a client certificate signed by the CA is verified by a server that requires one', async () => {
    const server = { cert: leaf.cert, key: leaf.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true };
    const ok = await handshake(server, { ca: ca.cert, cert: client.cert, key: client.key });
    expect(ok.authorized).toBe(true);
    expect(ok.serverSawClient).toBe('x509 client');
    const strange = issueCert({ cn: 'stranger', issuer: rogue, extKeyUsage: ['clientAuth'] });
    const refused = await handshake(server, { ca: ca.cert, cert: strange.cert, key: strange.key });
    expect(refused.serverSawClient).toBeUndefined();
  });
});

// -------------------------------------------------------------- md5crypt

describe('md5crypt ($apr1$, $1$)', () => {
  test('a known value, the salt cut at 8 characters, a random salt when none is given', () => {
    // Value produced by `openssl passwd -apr1 -salt abcdefgh secret` (OpenSSL 3.0).
    expect(md5crypt('secret', 'abcdefgh')).toBe('$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/');
    expect(md5crypt('secret', 'abcdefghijk')).toBe('$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/');
    const a = md5crypt('secret');
    const b = md5crypt('secret');
    expect(a).toMatch(/^\$apr1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}$/);
    expect(a).not.toBe(b);
    expect(md5crypt('secret', 'abcdefgh', '$1$')).not.toBe(md5crypt('secret', 'abcdefgh'));
  });
});

// ------------------------------------------- cross-checked with openssl

describeWithPeers([peers.openssl()], 'checked by the openssl command-line tool', (found) => {
  const openssl = (args: string[], input?: string): string =>
    execFileSync(found.openssl!.exe!, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  let dir = '';
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-x509-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };

  test('openssl verify -x509_strict accepts the chain, and refuses the expired leaf and the rogue CA', () => {
    const caFile = file('ca.pem', ca.cert);
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslserver', '-CAfile', caFile, file('leaf.pem', leaf.cert)])).toMatch(/: OK$/m);
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', caFile, file('client.pem', client.cert)])).toMatch(/: OK$/m);
    expect(() => openssl(['verify', '-CAfile', caFile, file('expired.pem', expired.cert)])).toThrow(/certificate has expired/);
    expect(() => openssl(['verify', '-CAfile', file('rogue.pem', rogue.cert), file('leaf2.pem', leaf.cert)])).toThrow(/unable to get local issuer/);
  });

  test('openssl x509 -text reads the extensions as written', () => {
    const caText = openssl(['x509', '-noout', '-text', '-in', file('ca2.pem', ca.cert)]);
    expect(caText).toMatch(/X509v3 Basic Constraints: critical\s+CA:TRUE/);
    expect(caText).toMatch(/X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign/);
    const leafText = openssl(['x509', '-noout', '-text', '-in', file('leaf3.pem', leaf.cert)]);
    expect(leafText).toMatch(/Version: 3 \(0x2\)/);
    expect(leafText).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(leafText).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(leafText).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    expect(leafText).toMatch(/DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    const rsaText = openssl(['x509', '-noout', '-text', '-in', file('rsa.pem', issueCert({ cn: 'r', keyType: 'rsa' }).cert)]);
    expect(rsaText).toMatch(/Signature Algorithm: sha256WithRSAEncryption/);
    expect(rsaText).toMatch(/Digital Signature, Key Encipherment/);
  });

  test('openssl passwd -apr1 / -1 give the same hashes', () => {
    const cases: Array<[string, string]> = [['secret', 'abcdefgh'], ['p', 'xy'], ['a password longer than sixteen bytes', 'Zz./09aB'], ['ünïcødé', 's4lt']];
    for (const [pw, salt] of cases) {
      expect(md5crypt(pw, salt)).toBe(openssl(['passwd', '-apr1', '-salt', salt, '-stdin'], pw).trim());
      expect(md5crypt(pw, salt, '$1$')).toBe(openssl(['passwd', '-1', '-salt', salt, '-stdin'], pw).trim());
    }
  });
});
