// The message `ixws send` sends and `ixws receive` checks: one binary
// WebSocket message carrying a file's name, size and SHA-256 before its bytes.
//
//   offset 0      4 bytes  "IXWF" (magic)
//   offset 4      4 bytes  J: length of the JSON header, uint32 big-endian (1..65536)
//   offset 8      J bytes  JSON header, UTF-8:
//                          {"version":1,"name":"photo.jpg","size":1234,"sha256":"<64 lowercase hex>"}
//   offset 8+J    size bytes: the file's content
//
// The receiver answers with one text message, JSON:
//   {"ok":true,"name":"<name saved as>","size":1234,"sha256":"<hex>"}   file checked and saved
//   {"ok":false,"error":"<why>"}                                       file rejected
//
// The name is a plain file name (no directory part): the receiver never
// writes outside its directory, whatever the sender claims.
import { createHash } from 'crypto';

export const MAGIC = Buffer.from('IXWF', 'latin1');
export const VERSION = 1;
export const MAX_HEADER = 65536;
const PREFIX = 8;

export interface FileHeader {
  version: number;
  name: string;
  size: number;
  sha256: string;
}

/** A message that is not a well-formed file message, or whose content does not match. */
export class FileMessageError extends Error {}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Why `name` cannot be a file name in the receiver's directory, or undefined when it can. */
export function badName(name: string): string | undefined {
  if (name.length === 0) return 'the file name is empty';
  if (name === '.' || name === '..') return `'${name}' is not a file name`;
  if (/[/\\]/.test(name)) return 'the file name has a directory part';
  // C0 and C1 controls: the name is printed on the receiver's terminal.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'the file name has control characters';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'the file name is longer than 255 bytes';
  return undefined;
}

/** The message for `content` under `name`, and the header it carries. */
export function encodeFileMessage(name: string, content: Buffer): { message: Buffer; header: FileHeader } {
  const why = badName(name);
  if (why) throw new FileMessageError(why);
  const header: FileHeader = { version: VERSION, name, size: content.length, sha256: sha256(content) };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(json.length, 4);
  return { message: Buffer.concat([prefix, json, content]), header };
}

/**
 * Checks a received message: layout, header fields, size and SHA-256 of the
 * content. Returns the header and the content (a view into `msg`).
 */
export function decodeFileMessage(msg: Buffer): { header: FileHeader; content: Buffer } {
  if (msg.length < PREFIX || !msg.subarray(0, 4).equals(MAGIC)) {
    throw new FileMessageError('not an ixws file message (no IXWF magic)');
  }
  const j = msg.readUInt32BE(4);
  if (j === 0 || j > MAX_HEADER) throw new FileMessageError(`bad header length ${j}`);
  if (PREFIX + j > msg.length) throw new FileMessageError('truncated header');
  let parsed: unknown;
  try {
    parsed = JSON.parse(msg.toString('utf8', PREFIX, PREFIX + j));
  } catch {
    throw new FileMessageError('the header is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new FileMessageError('the header is not a JSON object');
  const h = parsed as Record<string, unknown>;
  if (h.version !== VERSION) throw new FileMessageError(`unsupported version ${JSON.stringify(h.version)}`);
  if (typeof h.name !== 'string') throw new FileMessageError('the header has no name');
  const why = badName(h.name);
  if (why) throw new FileMessageError(why);
  if (typeof h.size !== 'number' || !Number.isSafeInteger(h.size) || h.size < 0) throw new FileMessageError('the header has no valid size');
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) throw new FileMessageError('the header has no valid sha256');
  const content = msg.subarray(PREFIX + j);
  if (content.length !== h.size) {
    throw new FileMessageError(`size mismatch: the header says ${h.size} bytes, the message carries ${content.length}`);
  }
  const actual = sha256(content);
  if (actual !== h.sha256) throw new FileMessageError(`sha256 mismatch: the header says ${h.sha256}, the content hashes to ${actual}`);
  return { header: { version: VERSION, name: h.name, size: h.size, sha256: h.sha256 }, content };
}

/** The receiver's answer. */
export type Verdict = { ok: true; name: string; size: number; sha256: string } | { ok: false; error: string };

export function parseVerdict(text: string): Verdict | undefined {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (v && v.ok === true && typeof v.name === 'string' && typeof v.size === 'number' && typeof v.sha256 === 'string') {
      return { ok: true, name: v.name, size: v.size, sha256: v.sha256 };
    }
    if (v && v.ok === false && typeof v.error === 'string') return { ok: false, error: v.error };
  } catch {
    // not JSON: not a verdict
  }
  return undefined;
}
