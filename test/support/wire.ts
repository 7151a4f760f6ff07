// WebSocket bytes as the suites write and read them by hand (RFC 6455): the
// opening handshake's keys and heads, frames encoded with or without a mask,
// frames decoded from the front of a buffer, close payloads. Pure functions:
// nothing here opens a socket.
import * as frames from './frames.cjs';
import { GUID, acceptKey, requestKey, switchingProtocols } from './handshake.cjs';

export { GUID, acceptKey, requestKey, switchingProtocols };

export const OP = { cont: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
export const RSV1 = 0x40;
export const RSV2 = 0x20;
export const RSV3 = 0x10;

/** A decoded frame (payload unmasked). */
export interface Frame {
  fin: boolean;
  /** the RSV bits as they sit in byte 0 (0x70 mask) */
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** default true */
  fin?: boolean;
  /** RSV1..3 as bits 0x40/0x20/0x10 */
  rsv?: number;
  /** default true: clients mask (RFC 6455 §5.3) */
  mask?: boolean;
}

export function toBuf(p: Buffer | string | undefined): Buffer {
  return frames.toBuf(p);
}

/** One frame; `mask` (default spec.mask, else true) with a random key, or `key` when given. */
export function encodeFrame(spec: FrameSpec, mask: boolean = spec.mask ?? true, key?: Buffer): Buffer {
  return frames.encodeFrame(spec, mask, key);
}

/** A close frame's payload: the code, then the reason's UTF-8. */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  return frames.closePayload(code, reason);
}

/**
 * The sizes of the frame at the front of `b`: its header (mask key included)
 * and its payload; undefined while the header is incomplete. A length beyond
 * 2^40 throws (no test sends one that it expects read back).
 */
export function frameHead(b: Buffer): { headLen: number; payloadLen: number } | undefined {
  if (b.length < 2) return undefined;
  const masked = (b[1] & 0x80) !== 0;
  const len7 = b[1] & 0x7f;
  const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  const headLen = 2 + ext + (masked ? 4 : 0);
  if (b.length < headLen) return undefined;
  let payloadLen = len7;
  if (len7 === 126) payloadLen = b.readUInt16BE(2);
  else if (len7 === 127) {
    const big = b.readBigUInt64BE(2);
    if (big > 1n << 40n) throw new Error(`absurd frame length ${big}`);
    payloadLen = Number(big);
  }
  return { headLen, payloadLen };
}

/** The frame at the front of `b` and the bytes it takes; undefined while incomplete. */
export function decodeFrame(b: Buffer): { frame: Frame; size: number } | undefined {
  const h = frameHead(b);
  if (!h || b.length < h.headLen + h.payloadLen) return undefined;
  const masked = (b[1] & 0x80) !== 0;
  const payload = Buffer.from(b.subarray(h.headLen, h.headLen + h.payloadLen));
  if (masked) {
    const key = b.subarray(h.headLen - 4, h.headLen);
    for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
  }
  return {
    frame: { fin: (b[0] & 0x80) !== 0, rsv: b[0] & 0x70, opcode: b[0] & 0x0f, masked, payload },
    size: h.headLen + h.payloadLen,
  };
}

/** Every complete frame at the front of `b`, and what follows them. */
export function decodeFrames(b: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  for (let d = decodeFrame(b); d; d = decodeFrame(b)) {
    frames.push(d.frame);
    b = b.subarray(d.size);
  }
  return { frames, rest: b };
}

/** A client's opening request for `path` with this key; `extra` headers added or replaced. */
export function upgradeRequest(path: string, key: string, extra: Record<string, string> = {}): string {
  const h: Record<string, string> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

/** An HTTP head: its first line and its headers (names lower-cased, repeats joined with ", "). */
export function parseHead(raw: string): { line: string; headers: Record<string, string> } {
  const [line, ...rest] = raw.replace(/\r\n\r\n$/, '').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of rest) {
    const i = l.indexOf(':');
    if (i <= 0) continue;
    const k = l.slice(0, i).trim().toLowerCase();
    const v = l.slice(i + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  return { line, headers };
}

/** Case-insensitive lookup in a headers object. */
export function header(h: Record<string, unknown>, name: string): unknown {
  const k = Object.keys(h).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : h[k];
}
