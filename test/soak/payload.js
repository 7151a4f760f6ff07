// The soak's message format. Every message a client sends is numbered and
// its body is a pure function of (client id, number), so whoever receives it
// can check every byte; the server's echo adds its own connection id and a
// per-connection number, so the client can check the other direction too.
//
// client -> server   binary: 0xB5, u32le client, u32le g, body bytes
//                    big:    0xB6, the same header, a body of 64-72 KiB
//                    text:   "T<client>:<g>:" + body text
// server -> client   binary: 0xE5, u32le sid, u32le seq, the client's message
//                    text:   "E<sid>:<seq>:" + the client's message
// g:   the client's number of the message, counting only sends that the
//      engine accepted (so the accepted sends of one client are 0, 1, 2, ...)
// sid: the server's id of the connection (unique for the server process)
// seq: the server's number of the echo on that connection, from 0
'use strict';

const C2S = 0xb5;
const C2S_BIG = 0xb6;
const S2C = 0xe5;
const HEADER = 9;

// xorshift32; the seed mixes client and number so bodies differ everywhere.
function rng(client, g) {
  let x = (Math.imul(client + 1, 0x9e3779b1) ^ Math.imul(g + 1, 0x85ebca6b) ^ 0x27d4eb2f) >>> 0;
  if (x === 0) x = 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

// Mostly small messages (the slab path), some of a few KiB (deflated past
// the 1024 B threshold), a few above 8 KiB (several TCP segments, and many
// single-byte writes when the proxy slices).
function bodyLength(r) {
  const k = r() % 100;
  if (k < 2) return 8192 + (r() % 12000);
  if (k < 20) return 1024 + (r() % 3000);
  return r() % 600;
}

// Every third message is text, with multi-byte characters so that sliced
// writes split UTF-8 sequences across reads.
function isText(g) {
  return g % 3 === 0;
}

const TEXT_PIECES = ['a', 'b', 'c', 'x', 'y', 'z', ' ', '0', '9', '\u00e9', '\u20ac', '\u{1f600}', 'soak'];

// A big body fills a connection's deflate window (64 KiB of input) and takes
// the engine's large-payload path (32 KiB and up).
function bigLength(r) {
  return 65536 + (r() % 8192);
}

function body(client, g, big) {
  const r = rng(client, g);
  const n = big ? bigLength(r) : bodyLength(r);
  if (!big && isText(g)) {
    let s = '';
    while (s.length < n) s += TEXT_PIECES[r() % TEXT_PIECES.length];
    return s;
  }
  const b = Buffer.allocUnsafe(n);
  // Half of the binary bodies are runs (compressible), half are noise.
  if (big || r() & 1) {
    let i = 0;
    while (i < n) {
      const v = r() & 0xff;
      const run = 1 + (r() % 64);
      for (let j = 0; j < run && i < n; j++) b[i++] = v;
    }
  } else {
    for (let i = 0; i < n; i++) b[i] = r() & 0xff;
  }
  return b;
}

/** The message client `client` sends as its g-th accepted send (`big`: a big one). */
function clientMessage(client, g, big = false) {
  const bd = body(client, g, big);
  if (typeof bd === 'string') return `T${client}:${g}:${bd}`;
  const m = Buffer.allocUnsafe(HEADER + bd.length);
  m[0] = big ? C2S_BIG : C2S;
  m.writeUInt32LE(client, 1);
  m.writeUInt32LE(g, 5);
  bd.copy(m, HEADER);
  return m;
}

function sameBody(client, g, big, got) {
  const want = body(client, g, big);
  if (typeof want === 'string') return typeof got === 'string' && got === want;
  return Buffer.isBuffer(got) && got.equals(want);
}

/**
 * Parses a client message: { client, g, ok } where ok says the whole message
 * (type, header, every body byte) is exactly what client `client` sends as g;
 * null when it is not a client message at all.
 */
function parseClientMessage(data) {
  if (typeof data === 'string') {
    const m = /^T(\d+):(\d+):/.exec(data);
    if (!m) return null;
    const client = Number(m[1]);
    const g = Number(m[2]);
    return { client, g, ok: isText(g) && sameBody(client, g, false, data.slice(m[0].length)) };
  }
  if (!Buffer.isBuffer(data) || data.length < HEADER || (data[0] !== C2S && data[0] !== C2S_BIG)) return null;
  const client = data.readUInt32LE(1);
  const g = data.readUInt32LE(5);
  const big = data[0] === C2S_BIG;
  return { client, g, ok: (big || !isText(g)) && sameBody(client, g, big, data.subarray(HEADER)) };
}

/** The server's echo of `msg` (as received) as echo number `seq` of connection `sid`. */
function echoMessage(sid, seq, msg) {
  if (typeof msg === 'string') return `E${sid}:${seq}:${msg}`;
  const out = Buffer.allocUnsafe(HEADER + msg.length);
  out[0] = S2C;
  out.writeUInt32LE(sid, 1);
  out.writeUInt32LE(seq, 5);
  msg.copy(out, HEADER);
  return out;
}

/** { sid, seq, inner } of an echo, inner parsed as a client message; null if malformed. */
function parseEcho(data) {
  if (typeof data === 'string') {
    const m = /^E(\d+):(\d+):/.exec(data);
    if (!m) return null;
    return { sid: Number(m[1]), seq: Number(m[2]), inner: parseClientMessage(data.slice(m[0].length)) };
  }
  if (!Buffer.isBuffer(data) || data.length < HEADER || data[0] !== S2C) return null;
  return {
    sid: data.readUInt32LE(1),
    seq: data.readUInt32LE(5),
    inner: parseClientMessage(data.subarray(HEADER)),
  };
}

module.exports = { clientMessage, parseClientMessage, echoMessage, parseEcho, isText };
