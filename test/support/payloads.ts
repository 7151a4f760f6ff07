// Payloads whose contents can be checked: deterministic bytes and text.

/** Deterministic bytes (xorshift32) so that contents can be checked. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Valid UTF-8 text of exactly n bytes, mixing 1-, 2- and 3-byte characters. */
export function text(n: number, seed = 1): string {
  const unit = 'abcdefghij-é€ KLMNOPQRS\u00fc\u4e2d';
  let rep = '';
  while (Buffer.byteLength(rep) < 4096) rep += unit;
  const repBytes = Buffer.byteLength(rep);
  let s = '';
  let have = 0;
  // Whole repetitions, then ASCII to reach the exact byte length.
  const parts: string[] = [];
  while (have + repBytes <= n) {
    parts.push(rep);
    have += repBytes;
  }
  s = parts.join('');
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let tail = '';
  for (let i = 0; have < n; i++, have++) tail += alpha[(i + seed) % 26];
  s += tail;
  return s;
}
