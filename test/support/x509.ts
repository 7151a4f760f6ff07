// X.509 test certificates made with Node's crypto alone, so the TLS suites
// need no openssl command-line tool (`npm test` must pass on a machine with
// only Node and a compiler). Keys come from crypto.generateKeyPairSync; the
// certificate is DER written here (RFC 5280 §4.1, ITU-T X.690 DER) and
// signed with crypto.sign. Only what the tests need: one CN, validity,
// basicConstraints, keyUsage, extKeyUsage, subjectAltName (DNS and IP), and
// the key identifiers that let OpenSSL build chains.
//
// Usage:
//   const ca = issueCert({ cn: 'test CA', ca: true });
//   const leaf = issueCert({ cn: 'localhost', issuer: ca, altNames: ['DNS:localhost', 'IP:127.0.0.1'], extKeyUsage: ['serverAuth'] });
//   tls: { cert: leaf.cert, key: leaf.key }, client: { ca: ca.cert }
import * as crypto from 'crypto';
import { isIP } from 'net';

// ---------------------------------------------------------------- DER ----

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const nul = (): Buffer => Buffer.from([0x05, 0x00]);
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

/** INTEGER from unsigned big-endian bytes (a 0 byte keeps it positive). */
function uint(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0 && bytes[i + 1] < 0x80) i++;
  const b = bytes.subarray(i);
  return tlv(0x02, b[0] >= 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0] * 40 + parts[1]];
  for (const p of parts.slice(2)) {
    const base128: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) base128.unshift(0x80 | (v & 0x7f));
    out.push(...base128);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING of whole bytes (no unused bits): keys, signatures. */
const bits = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);

/** BIT STRING of named bits (bit 0 is the first), trailing zero bits dropped
 * as DER requires for named-bit lists (X.690 §11.2.2). */
function namedBits(set: number[]): Buffer {
  const top = Math.max(...set);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const b of set) bytes[b >> 3] |= 0x80 >> (b & 7);
  const unused = 7 - (top & 7);
  return tlv(0x03, Buffer.from([unused]), bytes);
}

/** UTCTime through 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-12-07T05:32:08.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20261207053208
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'ascii'));
  return tlv(0x18, Buffer.from(`${digits}Z`, 'ascii'));
}

// ------------------------------------------------------- certificate ----

const OID = {
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
};

// keyUsage bit numbers (RFC 5280 §4.2.1.3).
const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

export interface CertSpec {
  /** The subject's common name. */
  cn: string;
  /** The CA that signs it; absent: self-signed. */
  issuer?: IssuedCert;
  /** A CA certificate (basicConstraints CA:TRUE, keyCertSign). */
  ca?: boolean;
  /** subjectAltName entries: 'DNS:name' or 'IP:address' (v4 or v6). */
  altNames?: string[];
  extKeyUsage?: Array<'serverAuth' | 'clientAuth'>;
  /** Default: an hour ago. */
  notBefore?: Date;
  /** Default: two days from now. */
  notAfter?: Date;
  /** Default 'ec' (P-256: quick to make, accepted everywhere); 'rsa' is 2048-bit. */
  keyType?: 'ec' | 'rsa';
}

export interface IssuedCert {
  /** The certificate, PEM. */
  cert: string;
  /** Its private key, PKCS#8 PEM. */
  key: string;
  privateKey: crypto.KeyObject;
  /** The subject Name, DER (the issuer Name of the certificates it signs). */
  subjectName: Buffer;
  /** SHA-1 of the public key bits (RFC 5280 §4.2.1.2 method 1). */
  keyId: Buffer;
}

function name(cn: string): Buffer {
  return seq(set(seq(oid(OID.commonName), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}

function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) throw new TypeError(`x509: not an IP address: ${ip}`);
  // Expand '::' and any embedded IPv4 tail into eight 16-bit groups.
  let text = ip;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function generalNames(entries: string[]): Buffer {
  return seq(
    ...entries.map((e) => {
      const m = /^(DNS|IP):(.+)$/.exec(e);
      if (!m) throw new TypeError(`x509: altNames entries are 'DNS:…' or 'IP:…', got ${e}`);
      // Implicit context tags: dNSName [2] IA5String, iPAddress [7] OCTET STRING.
      return m[1] === 'DNS' ? tlv(0x82, Buffer.from(m[2], 'ascii')) : tlv(0x87, ipBytes(m[2]));
    }),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

/** Makes a key pair and a certificate for it, signed by `spec.issuer` (or itself). */
export function issueCert(spec: CertSpec): IssuedCert {
  const { publicKey, privateKey } =
    spec.keyType === 'rsa'
      ? crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
      : crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm, BIT STRING }: the key
  // identifier hashes the BIT STRING's contents, which end the SPKI.
  const bitString = spki.subarray(spkiBitsOffset(spki));
  const keyId = crypto.createHash('sha1').update(bitString).digest();

  const subjectName = name(spec.cn);
  const signer = spec.issuer?.privateKey ?? privateKey;
  const issuerName = spec.issuer?.subjectName ?? subjectName;
  const authorityKeyId = spec.issuer?.keyId ?? keyId;
  const rsaSigner = signer.asymmetricKeyType === 'rsa';
  const sigAlg = rsaSigner ? seq(oid(OID.sha256WithRsa), nul()) : seq(oid(OID.ecdsaWithSha256));

  const serial = crypto.randomBytes(16);
  serial[0] &= 0x7f;
  serial[0] |= 0x01; // positive and never zero (RFC 5280 §4.1.2.2)
  const notBefore = spec.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = spec.notAfter ?? new Date(Date.now() + 2 * 86400_000);

  const exts: Buffer[] = [];
  if (spec.ca) {
    exts.push(extension(OID.basicConstraints, true, seq(bool(true))));
    exts.push(extension(OID.keyUsage, true, namedBits([KU.keyCertSign, KU.cRLSign])));
  } else {
    exts.push(extension(OID.basicConstraints, false, seq())); // CA:FALSE
    const usage = publicKey.asymmetricKeyType === 'rsa' ? [KU.digitalSignature, KU.keyEncipherment] : [KU.digitalSignature];
    exts.push(extension(OID.keyUsage, true, namedBits(usage)));
  }
  if (spec.extKeyUsage?.length) exts.push(extension(OID.extKeyUsage, false, seq(...spec.extKeyUsage.map((u) => oid(OID[u])))));
  if (spec.altNames?.length) exts.push(extension(OID.subjectAltName, false, generalNames(spec.altNames)));
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyId)));
  exts.push(extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, authorityKeyId))));

  const tbs = seq(
    explicit(0, uint(Buffer.from([2]))), // v3
    uint(serial),
    sigAlg,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    subjectName,
    spki,
    explicit(3, seq(...exts)),
  );
  // ECDSA: crypto.sign's default DER Ecdsa-Sig-Value is what X.509 carries;
  // RSA: PKCS#1 v1.5, the default padding.
  const signature = crypto.sign('sha256', tbs, signer);
  const der = seq(tbs, sigAlg, bits(signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return {
    cert: `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`,
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    privateKey,
    subjectName,
    keyId,
  };
}

/** Offset of the subjectPublicKey BIT STRING's key bytes (after its tag,
 * length and unused-bits byte) inside a DER SubjectPublicKeyInfo. */
function spkiBitsOffset(spki: Buffer): number {
  let i = headerLength(spki, 0); // into the outer SEQUENCE
  i += headerLength(spki, i) + contentLength(spki, i); // skip AlgorithmIdentifier
  if (spki[i] !== 0x03) throw new Error('x509: SubjectPublicKeyInfo without a BIT STRING');
  return i + headerLength(spki, i) + 1;
}

function headerLength(der: Buffer, at: number): number {
  const first = der[at + 1];
  return first < 0x80 ? 2 : 2 + (first & 0x7f);
}

function contentLength(der: Buffer, at: number): number {
  const first = der[at + 1];
  if (first < 0x80) return first;
  let n = 0;
  for (let k = 0; k < (first & 0x7f); k++) n = n * 256 + der[at + 2 + k];
  return n;
}
