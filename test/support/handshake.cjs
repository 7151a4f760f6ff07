'use strict';
// The opening handshake's server side (RFC 6455 §4.2.2), in plain CommonJS
// so that child processes started from a test's script text can require it
// too (wire.ts re-exports it for the suites).
const crypto = require('crypto');

/** The GUID RFC 6455 §1.3 appends to the client's key. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
function acceptKey(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

/** The Sec-WebSocket-Key of an HTTP request head ('' when there is none). */
function requestKey(head) {
  const m = /sec-websocket-key:\s*(\S+)/i.exec(head);
  return m ? m[1] : '';
}

/**
 * The 101 answer to a request with this key; `extra` are more header lines
 * (e.g. { 'Sec-WebSocket-Extensions': 'permessage-deflate' }).
 */
function switchingProtocols(key, extra = {}) {
  let res = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
  for (const [k, v] of Object.entries(extra)) res += `${k}: ${v}\r\n`;
  return res + '\r\n';
}

module.exports = { GUID, acceptKey, requestKey, switchingProtocols };
