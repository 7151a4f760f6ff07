// The MD5-based crypt(3) scheme ("$1$", and Apache's "$apr1$", the same
// algorithm under another magic string), for the squid proxy's password
// file (basic_ncsa_auth reads it) without the openssl command-line tool.
// Written from the scheme's description: an MD5 of password, magic and
// salt, 1000 rounds mixing password, salt and the previous digest, and the
// digest's bytes in a fixed order as "./0-9A-Za-z" base-64. Test use only:
// MD5 crypt is not a password hash to store real secrets with.
import { createHash, randomBytes } from 'crypto';

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

const md5 = (...parts: Buffer[]): Buffer => {
  const h = createHash('md5');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `magic` + salt + '$' + 22 characters, as `openssl passwd -apr1 -salt salt`. */
export function md5crypt(password: string, salt?: string, magic: '$apr1$' | '$1$' = '$apr1$'): string {
  const pw = Buffer.from(password, 'utf8');
  const s = Buffer.from(
    (salt ?? Array.from(randomBytes(8), (b) => ITOA64[b & 0x3f]).join('')).slice(0, 8),
    'utf8',
  );
  const alternate = md5(pw, s, pw);
  const parts: Buffer[] = [pw, Buffer.from(magic, 'utf8'), s];
  for (let left = pw.length; left > 0; left -= 16) parts.push(alternate.subarray(0, Math.min(left, 16)));
  // One byte per bit of the password's length: NUL for a set bit, the
  // password's first byte for a clear one.
  for (let n = pw.length; n > 0; n >>= 1) parts.push(n & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  let digest = md5(...parts);
  for (let i = 0; i < 1000; i++) {
    const round: Buffer[] = [i & 1 ? pw : digest];
    if (i % 3) round.push(s);
    if (i % 7) round.push(pw);
    round.push(i & 1 ? digest : pw);
    digest = md5(...round);
  }
  let out = '';
  const put = (v: number, chars: number): void => {
    for (let k = 0; k < chars; k++, v >>= 6) out += ITOA64[v & 0x3f];
  };
  for (const [a, b, c] of [[0, 6, 12], [1, 7, 13], [2, 8, 14], [3, 9, 15], [4, 10, 5]]) {
    put((digest[a] << 16) | (digest[b] << 8) | digest[c], 4);
  }
  put(digest[11], 2);
  return `${magic}${s.toString('utf8')}$${out}`;
}
