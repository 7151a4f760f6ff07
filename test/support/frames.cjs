'use strict';
// Frame and close-payload encoding (RFC 6455 §5.2, §5.5.1) in plain CommonJS,
// so that scripts run by node itself (test/fuzz/make-corpus.js) build their
// bytes with the same code as the suites (wire.ts re-exports it, typed).
const crypto = require('crypto');

/** A payload given as a string (UTF-8) or bytes, as a Buffer. */
function toBuf(p) {
  if (p === undefined) return Buffer.alloc(0);
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

/**
 * One frame of spec { opcode, payload, fin (default true), rsv (bits
 * 0x40/0x20/0x10) }; `mask` (default spec.mask, else true: clients mask,
 * §5.3) with `key`, four random bytes unless given (a fixed key makes the
 * bytes reproducible).
 */
function encodeFrame(spec, mask = spec.mask ?? true, key = undefined) {
  const payload = toBuf(spec.payload);
  const len = payload.length;
  const hl = (len < 126 ? 2 : len < 65536 ? 4 : 10) + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(hl + len);
  out[0] = ((spec.fin ?? true) ? 0x80 : 0) | (spec.rsv ?? 0) | (spec.opcode & 0x0f);
  const m = mask ? 0x80 : 0;
  let at = 2;
  if (len < 126) {
    out[1] = m | len;
  } else if (len < 65536) {
    out[1] = m | 126;
    out.writeUInt16BE(len, 2);
    at = 4;
  } else {
    out[1] = m | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
    at = 10;
  }
  if (!mask) {
    payload.copy(out, at);
    return out;
  }
  const k = key ?? crypto.randomBytes(4);
  for (let i = 0; i < 4; i++) out[at + i] = k[i];
  at += 4;
  for (let i = 0; i < len; i++) out[at + i] = payload[i] ^ k[i & 3];
  return out;
}

/** A close frame's payload: the code, then the reason's UTF-8. */
function closePayload(code, reason = '') {
  const r = toBuf(reason);
  const b = Buffer.allocUnsafe(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

module.exports = { toBuf, encodeFrame, closePayload };
