// Test certificates made at test time with Node's crypto (support/x509.ts;
// no private key lives in the repository, no openssl CLI is needed): one CA
// and leaves it signs, and self-signed pairs written to a folder for the
// options that take file paths.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { issueCert } from './x509';

export interface CertPair {
  cert: string;
  key: string;
}

/** A pair also written to files (for `certFile` / `keyFile`). */
export interface CertFiles extends CertPair {
  certFile: string;
  keyFile: string;
}

export interface TestCa {
  /** The CA's certificate (PEM), for a client's `tls.ca`. */
  ca: string;
  /** The same, as a file. */
  caFile: string;
  /** A server leaf signed by the CA for the given subjectAltName entries (e.g. ['DNS:localhost', 'IP:127.0.0.1']). */
  leaf(name: string, altNames: string[]): CertPair;
  /** A client leaf signed by the CA (extendedKeyUsage clientAuth), for servers that verify clients. */
  client(name: string): CertPair;
  /** Removes the folder. */
  remove(): void;
}

export function makeTestCa(cn = 'ixws test CA'): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-certs-'));
  const ca = issueCert({ cn, ca: true });
  const caFile = path.join(dir, 'ca.crt');
  fs.writeFileSync(caFile, ca.cert);
  return {
    ca: ca.cert,
    caFile,
    leaf(name, altNames) {
      const leaf = issueCert({ cn: name, issuer: ca, altNames, extKeyUsage: ['serverAuth'] });
      return { cert: leaf.cert, key: leaf.key };
    },
    client(name) {
      const leaf = issueCert({ cn: name, issuer: ca, extKeyUsage: ['clientAuth'] });
      return { cert: leaf.cert, key: leaf.key };
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Writes `name.crt` and `name.key` (0600) into `dir`. */
export function writePair(dir: string, name: string, cert: string, key: string): CertFiles {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  fs.writeFileSync(certFile, cert);
  fs.writeFileSync(keyFile, key, { mode: 0o600 });
  return { cert, key, certFile, keyFile };
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 (a client trusts it
 * with `tls.ca` set to the certificate itself), written to `dir` as
 * `name.crt` / `name.key`.
 */
export function selfSigned(dir: string, name = 'self', keyType: 'ec' | 'rsa' = 'ec'): CertFiles {
  const c = issueCert({ cn: 'localhost', altNames: ['DNS:localhost', 'IP:127.0.0.1'], keyType });
  return writePair(dir, name, c.cert, c.key);
}
