#!/usr/bin/env node
// Writes the seed corpora of the fuzz targets to test/fuzz/corpus/<target>/.
// Each file starts with the target's config bytes (see the fuzz_*.cc header
// comments) followed by the data. Deterministic: rerunning it rewrites the
// same files. Usage: node test/fuzz/make-corpus.js
'use strict';
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { encodeFrame, closePayload } = require('../support/frames.cjs');

const root = path.join(__dirname, 'corpus');
const KEY = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);

function write(target, name, ...parts) {
  const dir = path.join(root, target);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), Buffer.concat(parts.map((p) => Buffer.from(p))));
}

// One frame (test/support's encoder), masked with the fixed KEY so that the
// corpus comes out the same each time.
function frame(opcode, payload, { fin = true, rsv1 = false, masked = false } = {}) {
  return encodeFrame({ opcode, payload, fin, rsv: rsv1 ? 0x40 : 0 }, masked, KEY);
}

// Raw deflate of one message as permessage-deflate sends it (§7.2.1).
function deflateMessage(data, windowBits = 15) {
  const out = zlib.deflateRawSync(Buffer.from(data), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
    windowBits,
  });
  return out.subarray(0, out.length - 4);  // drop 00 00 ff ff
}

const text = (n) => Buffer.from('é€😀abc'.repeat(Math.ceil(n / 12))).subarray(0, n);

// ---- fuzz_frame: [cfg, seed, wire]. cfg bit 0: server role (masked input),
// bit 1: RSV1 allowed, bits 2-3: limit index, bits 4-5: pause, bit 6: tiny chunks.
for (const masked of [false, true]) {
  const role = masked ? 'server' : 'client';
  const cfg = (extra = 0) => Buffer.from([(masked ? 1 : 0) | extra, 0x5a]);
  const o = { masked };
  write('fuzz_frame', `${role}-text-7bit`, cfg(), frame(0x1, 'Hello', o));
  write('fuzz_frame', `${role}-binary-16bit`, cfg(0x10), frame(0x2, Buffer.alloc(300, 7), o));
  write('fuzz_frame', `${role}-text-64bit`, cfg(0x40), frame(0x1, text(65536), o));
  write('fuzz_frame', `${role}-empty`, cfg(0x20), frame(0x1, '', o), frame(0x2, '', o));
  write('fuzz_frame', `${role}-fragmented`, cfg(0x30),
    frame(0x1, text(10), { ...o, fin: false }), frame(0x9, 'ping', o),
    frame(0x0, text(20).subarray(10), { ...o, fin: false }), frame(0x0, 'end', o));
  write('fuzz_frame', `${role}-control`, cfg(), frame(0x9, 'p', o), frame(0xa, 'q', o),
    frame(0x8, closePayload(1000, 'bye'), o));
  write('fuzz_frame', `${role}-rsv1-deflate`, cfg(0x02),
    frame(0x1, deflateMessage('compressed text'), { ...o, rsv1: true }));
  write('fuzz_frame', `${role}-limit-125`, cfg(0x08), frame(0x2, Buffer.alloc(125, 1), o),
    frame(0x2, Buffer.alloc(126, 2), o));
  write('fuzz_frame', `${role}-bad-utf8`, cfg(), frame(0x1, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80]), o));
  write('fuzz_frame', `${role}-utf8-split`, cfg(0x40),
    frame(0x1, Buffer.from([0xf0, 0x9f]), { ...o, fin: false }), frame(0x0, Buffer.from([0x98, 0x80]), o));
}

// ---- fuzz_http_request / fuzz_http_response: [limits, bytes]. 0x00: no limits.
const request = (extra = '') =>
  'GET /chat?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n' +
  'Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;
write('fuzz_http_request', 'valid', [0x00], request());
write('fuzz_http_request', 'valid-deflate', [0x02], request('Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n'));
write('fuzz_http_request', 'valid-trailing-frame', [0x03], request(), frame(0x1, 'hi', { masked: true }));
write('fuzz_http_request', 'version-8', [0x00], request().replace('Version: 13', 'Version: 8'));
write('fuzz_http_request', 'post', [0x00], request().replace('GET', 'POST'));
write('fuzz_http_request', 'many-headers', [0x0e], request('A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n'));
write('fuzz_http_request', 'bare-lf', [0x00], 'GET / HTTP/1.1\nHost: a\n\n');

const response = (extra = '') =>
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  `Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n${extra}\r\n`;
write('fuzz_http_response', 'valid', [0x00], response());
write('fuzz_http_response', 'valid-deflate', [0x02], response('Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n'));
write('fuzz_http_response', 'valid-trailing-frame', [0x03], response(), frame(0x1, 'hi'));
write('fuzz_http_response', 'not-found', [0x00], 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
write('fuzz_http_response', 'no-reason', [0x00], 'HTTP/1.1 101\r\nUpgrade: websocket\r\n\r\n');
write('fuzz_http_response', 'wrong-accept', [0x00], response().replace('xOo=', 'xOq='));

// ---- fuzz_deflate_header: [serverOpts, clientOpts, header]; 0x1c = defaults.
const headers = {
  plain: 'permessage-deflate',
  'client-bits': 'permessage-deflate; client_max_window_bits',
  'all-params': 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
  'two-offers': 'permessage-deflate; server_max_window_bits=8, permessage-deflate',
  'other-ext': 'x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9',
  quoted: 'permessage-deflate; client_max_window_bits="10"',
  'bad-bits': 'permessage-deflate; server_max_window_bits=16',
  duplicate: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
  'empty-elements': ' , permessage-deflate ,, ',
};
for (const [name, value] of Object.entries(headers)) {
  write('fuzz_deflate_header', name, [0x1c, 0x1c], value);
}
write('fuzz_deflate_header', 'limited-server', [0x0b, 0x1c], headers['client-bits']);
write('fuzz_deflate_header', 'limited-client', [0x1c, 0x06], headers['all-params']);

// ---- fuzz_inflate: [bits/takeover, limit/level, seed, stream].
// bits index 7 = window 15; limit index 6 = 65536.
write('fuzz_inflate', 'text', [0x07, 0x0e, 0x11], deflateMessage('Hello, hello, hello, hello!'));
write('fuzz_inflate', 'empty', [0x07, 0x0e, 0x00], Buffer.from([0x00]));
write('fuzz_inflate', 'bomb', [0x07, 0x04, 0x21], deflateMessage(Buffer.alloc(200000, 0x61)));
write('fuzz_inflate', 'window-9', [0x01, 0x0e, 0x31], deflateMessage(text(3000), 9));
write('fuzz_inflate', 'no-takeover', [0x0f, 0x0e, 0x41], deflateMessage(text(500)), deflateMessage(text(500)));
write('fuzz_inflate', 'final-block', [0x07, 0x0e, 0x51], zlib.deflateRawSync(Buffer.from('final')));
write('fuzz_inflate', 'stored', [0x07, 0x0e, 0x61], deflateMessage(Buffer.alloc(100, 0x41).fill(0x42, 50)), Buffer.from([0x01, 0x00]));
write('fuzz_inflate', 'binary', [0x05, 0x1e, 0x71], deflateMessage(Buffer.from([...Array(256).keys()])));

// ---- fuzz_proxy: [mode, param], then fields split at '\n' (fuzz_proxy.cc).
write('fuzz_proxy', 'url', [0x00, 0x00], 'http://user:p%40ss@proxy.example:3128/');
write('fuzz_proxy', 'url-ipv6', [0x00, 0x00], 'http://[::1]:8080');
write('fuzz_proxy', 'no-proxy', [0x01, 0x4f], '.example.com, 10.0.0.0/8,[::1]:80,host:81 *.x\na.example.com');
write('fuzz_proxy', 'no-proxy-ip', [0x01, 0x00], 'fe80::/10,127.0.0.1:1\nfe80::1');
write('fuzz_proxy', 'env', [0x02, 0x01], 'http://a:1\n\nb:2\n\nexample.com\n*\nexample.com');
write('fuzz_proxy', 'reply-ok', [0x03, 0x02], 'HTTP/1.1 200 Connection established\r\n\r\n');
write('fuzz_proxy', 'reply-407', [0x03, 0x0b], 'HTTP/1.0 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\n\r\n');

// ---- fuzz_redirect: [followed (low nibble) | 0x10: no Location], "base\nlocation".
write('fuzz_redirect', 'relative', [0x00], 'ws://h.example:8080/a/b/c?x=1\n../d/./e?y=2#f');
write('fuzz_redirect', 'absolute', [0x01], 'wss://h.example/\nhttps://o.example:444/p');
write('fuzz_redirect', 'downgrade', [0x00], 'wss://h.example/\nws://h.example/');
write('fuzz_redirect', 'scheme-relative', [0x02], 'ws://u:p@h/\n//o.example/%2e%2e/x');
write('fuzz_redirect', 'no-location', [0x10], 'ws://h/\n');

// ---- fuzz_receiver: [cfg0, cfg1, seed, wire] (fuzz_receiver.cc).
// cfg0: bit 0 server (masked input), bit 1 inflate, bits 2-4 window bits - 8,
// bit 5 no context takeover, bit 6 stop at a ping/pong, bit 7 discard().
// cfg1: bits 0-2 maxPayload index (0: 1, 2: 125, 3: 1000, 5: 70000, 7: 4 MiB),
// bits 3-5 budget index (0: none, 2: 4096, 5: 300000, 7: 200000 with 150000
// used), bit 6 keep fragment holds, bit 7 tiny chunks.
{
  const RX = 'fuzz_receiver';
  const INFLATE = 0x02 | (7 << 2);  // window bits 15
  const bits = (b) => 0x02 | ((b - 8) << 2);
  const MAX_4M = 7;
  const MAX_70K = 5;
  const budget = (i) => i << 3;
  const euro = Buffer.from('€'); // e2 82 ac
  const smile = Buffer.from('😀'); // f0 9f 98 80
  for (const masked of [false, true]) {
    const role = masked ? 'server' : 'client';
    const o = { masked };
    const f = (opcode, payload, opts = {}) => frame(opcode, payload, { ...o, ...opts });
    const seed = (c0, c1, s = 0x33) => Buffer.from([(masked ? 1 : 0) | c0, c1, s]);
    const w = (name, c0, c1, ...frames) => write(RX, `${role}-${name}`, seed(c0, c1), ...frames);

    w('text', 0, MAX_4M, f(0x1, 'Hello'), f(0x2, Buffer.from([0, 1, 2, 0xff])));
    w('empty-messages', 0, MAX_4M, f(0x1, ''), f(0x2, ''), f(0x1, '', { fin: false }), f(0x0, ''));
    // Multi-byte code points cut by frame boundaries, pings in between (§5.4).
    w('utf8-split-pings', 0, MAX_4M | 0x80,
      f(0x1, Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]), { fin: false }),
      f(0x9, 'ping-1'),
      f(0x0, Buffer.concat([euro.subarray(1), smile.subarray(0, 3)]), { fin: false }),
      f(0xa, Buffer.from([0xff, 0xfe])),
      f(0x0, smile.subarray(3), { fin: false }),
      f(0x0, text(36)));  // 36 = 3 x 12: whole code points
    w('binary-fragments-holds', 0, MAX_4M | budget(2) | 0x40,
      f(0x2, Buffer.alloc(100, 1), { fin: false }), f(0x9, ''), f(0x0, Buffer.alloc(200, 2), { fin: false }),
      f(0x0, Buffer.alloc(50, 3)));
    // Large frames: 32 KiB or more are read in place (kPooledMin).
    w('large-binary', 0, MAX_70K, f(0x2, Buffer.alloc(40000, 0x5a)), f(0x1, 'after'));
    const big = text(33012);  // a multiple of 12: whole code points; 'é' cut below
    w('large-text-fragmented', 0, MAX_70K | budget(7),
      f(0x1, big.subarray(0, 33001), { fin: false }), f(0x0, big.subarray(33001)));
    w('large-over-max', 0, 4 /* 8192 */, f(0x2, Buffer.alloc(9000, 1)));
    w('max-125', 0, 2, f(0x1, text(125)), f(0x1, text(126)));
    w('max-fragments', 0, 2, f(0x2, Buffer.alloc(100), { fin: false }), f(0x0, Buffer.alloc(26)));
    // Close frames (§5.5.1, §7.4).
    w('close-reason', 0, MAX_4M, f(0x1, 'x'), f(0x8, closePayload(1000, 'bye é')), f(0x1, 'ignored'));
    w('close-empty', 0, MAX_4M, f(0x8, ''));
    w('close-4999', 0, MAX_4M, f(0x8, closePayload(4999, text(120))));
    w('close-bad-code', 0, MAX_4M, f(0x8, closePayload(1005)));
    w('close-one-byte', 0, MAX_4M, f(0x8, Buffer.from([0x03])));
    w('close-bad-utf8', 0, MAX_4M, f(0x8, Buffer.concat([closePayload(1001), Buffer.from([0xc0, 0x80])])));
    // Protocol errors (§5.2, §5.4, §5.5, §8.1).
    w('bad-utf8', 0, MAX_4M, f(0x1, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xed, 0xa0, 0x80])));
    w('bad-utf8-split', 0, MAX_4M, f(0x1, Buffer.from([0xf4]), { fin: false }), f(0x0, Buffer.from([0x90, 0x80, 0x80])));
    w('truncated-utf8', 0, MAX_4M, f(0x1, Buffer.from([0x61, 0xe2, 0x82])));
    w('reserved-opcode', 0, MAX_4M, f(0x3, 'x'));
    w('orphan-continuation', 0, MAX_4M, f(0x0, 'x'));
    w('data-inside-fragments', 0, MAX_4M, f(0x1, 'a', { fin: false }), f(0x1, 'b'));
    w('fragmented-ping', 0, MAX_4M, f(0x9, 'a', { fin: false }));
    w('long-ping', 0, MAX_4M, f(0x9, Buffer.alloc(126)));
    w('rsv1-without-inflate', 0, MAX_4M, f(0x1, 'x', { rsv1: true }));
    w('wrong-masking', 0, MAX_4M, frame(0x1, 'x', { masked: !masked }));
    w('stop-at-ping', 0x40, MAX_4M, f(0x1, 'a', { fin: false }), f(0x9, 'p'), f(0x0, 'b'));
    w('discard-in-progress', 0x80, MAX_70K | budget(2), f(0x2, Buffer.alloc(3000), { fin: false }),
      f(0x0, Buffer.alloc(40000, 7), { fin: false }));
    // permessage-deflate (RFC 7692 §7.2): RSV1 on the first frame only.
    w('deflate-text', INFLATE, MAX_4M, f(0x1, deflateMessage('Hello, hello, hello!'), { rsv1: true }));
    const z = deflateMessage(text(600));
    w('deflate-fragments-pings', INFLATE, MAX_4M | 0x40 | budget(3),
      f(0x1, z.subarray(0, 7), { rsv1: true, fin: false }), f(0x9, 'p'),
      f(0x0, z.subarray(7, 20), { fin: false }), f(0x0, z.subarray(20)));
    // Two messages compressed each on its own, then an uncompressed one.
    const m1 = deflateMessage('the same words again and again');
    w('deflate-two-messages', INFLATE, MAX_4M, f(0x1, m1, { rsv1: true }), f(0x2, deflateMessage(Buffer.alloc(300, 9)), { rsv1: true }), f(0x1, 'plain'));
    // The second message compressed with the first as its history (what
    // context takeover lets a sender do, RFC 7692 §7.2.3.2): it refers back
    // into the first, so a receiver that lost its window fails it.
    const hist = Buffer.from('context takeover: the window carries over to the next message');
    const m2 = zlib.deflateRawSync(hist, { finishFlush: zlib.constants.Z_SYNC_FLUSH, dictionary: hist });
    w('deflate-context-takeover', INFLATE, MAX_4M,
      f(0x1, deflateMessage(hist), { rsv1: true }), f(0x1, m2.subarray(0, m2.length - 4), { rsv1: true }));
    w('deflate-no-takeover', INFLATE | 0x20, MAX_4M, f(0x1, m1, { rsv1: true }), f(0x1, m1, { rsv1: true }));
    w('deflate-window-9', bits(9), MAX_4M, f(0x1, deflateMessage(text(3000), 9), { rsv1: true }));
    // zlib has no raw window of 8 (it makes 9); runs of one byte stay within 256.
    w('deflate-window-8', bits(8) | 0x20, MAX_4M, f(0x2, deflateMessage(Buffer.alloc(2000, 0x41), 9), { rsv1: true }));
    w('deflate-bomb-max', INFLATE, 3, f(0x2, deflateMessage(Buffer.alloc(200000, 0x61)), { rsv1: true }));
    w('deflate-bomb-budget', INFLATE, MAX_4M | budget(2), f(0x2, deflateMessage(Buffer.alloc(300000, 0x61)), { rsv1: true }));
    w('deflate-bomb-budget-used', INFLATE, MAX_4M | budget(7) | 0x40,
      f(0x2, deflateMessage(Buffer.alloc(120000, 0x62)).subarray(0, 30), { rsv1: true, fin: false }),
      f(0x0, deflateMessage(Buffer.alloc(120000, 0x62)).subarray(30)));
    w('deflate-bad-utf8', INFLATE, MAX_4M, f(0x1, deflateMessage(Buffer.from([0x61, 0xff, 0x62])), { rsv1: true }));
    w('deflate-corrupt', INFLATE, MAX_4M, f(0x1, Buffer.from([0xff, 0xff, 0xff, 0x00]), { rsv1: true }));
    w('deflate-final-block', INFLATE, MAX_4M, f(0x1, zlib.deflateRawSync(Buffer.from('final')), { rsv1: true }), f(0x1, deflateMessage('next'), { rsv1: true }));
    w('deflate-rsv1-continuation', INFLATE, MAX_4M, f(0x1, 'a', { fin: false }), f(0x0, 'b', { rsv1: true }));
    w('deflate-rsv1-ping', INFLATE, MAX_4M, f(0x9, 'a', { rsv1: true }));
  }
}
