// Test certificates made at test time with the openssl CLI in a temp folder
// (no private key lives in the repository): one CA and leaves it signs.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { peers } from './peers';

export interface CertPair {
  cert: string;
  key: string;
}

export interface TestCa {
  /** The CA's certificate (PEM), for a client's `tls.ca`. */
  ca: string;
  /** A server leaf signed by the CA for the given subjectAltName entries (e.g. ['DNS:localhost', 'IP:127.0.0.1']). */
  leaf(name: string, altNames: string[]): CertPair;
  /** Removes the folder. */
  remove(): void;
}

// P-256 keys: quick to generate and accepted everywhere.
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function makeTestCa(): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-certs-'));
  const openssl = (args: string[]) => execFileSync(peers.openssl().exe ?? 'openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl([
    'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=ixws test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return {
    ca: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
    leaf(name, altNames) {
      openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      fs.writeFileSync(
        path.join(dir, `${name}.ext`),
        `subjectAltName=${altNames.join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
      );
      openssl([
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
        '-out', `${name}.crt`, '-days', '2', '-sha256', '-extfile', `${name}.ext`,
      ]);
      return {
        cert: fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8'),
        key: fs.readFileSync(path.join(dir, `${name}.key`), 'utf8'),
      };
    },
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
