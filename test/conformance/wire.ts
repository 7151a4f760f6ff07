// Byte-level tools of the conformance suite beyond test/support/wire.ts: a
// socket reader that parses frames without re-copying its buffer (16 MiB
// messages pass through it), and raw-deflate streams that follow RFC 7692
// framing (sync flush, trailing 00 00 ff ff removed / re-added).
import type * as net from 'net';
import * as zlib from 'zlib';
import { decodeFrame, frameHead } from '../support/wire';
import type { Frame } from '../support/wire';

export type ReadResult = Frame | 'end' | 'timeout';

/**
 * Collects a socket's bytes as a list of chunks and parses frames or an HTTP
 * head from the front, joining chunks only as far as one item needs.
 */
export class Reader {
  private chunks: Buffer[] = [];
  private have = 0;
  private wake: (() => void) | undefined;
  ended = false;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      this.kick();
    });
    const end = () => {
      this.ended = true;
      this.kick();
    };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
  }

  get buffered(): number {
    return this.have;
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Resolves when new bytes or the end arrive, or at the deadline. */
  private wait(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, Math.max(0, deadline - Date.now()));
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** Makes the first n bytes one contiguous chunk (n <= have). */
  private front(n: number): Buffer {
    if (this.chunks[0].length < n) {
      let got = 0;
      let k = 0;
      while (got < n) got += this.chunks[k++].length;
      const joined = Buffer.concat(this.chunks.slice(0, k), got);
      this.chunks.splice(0, k, joined);
    }
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const f = this.front(n);
    const out = f.subarray(0, n);
    if (f.length === n) this.chunks.shift();
    else this.chunks[0] = f.subarray(n);
    this.have -= n;
    return out;
  }

  /** The HTTP head up to the blank line (the bytes after it stay buffered). */
  async head(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.have > 0) {
        const all = this.front(this.have);
        const end = all.indexOf('\r\n\r\n');
        if (end >= 0) return this.take(end + 4).toString('latin1');
      }
      if (this.ended) throw new Error(`connection ended before an HTTP head (${this.have} bytes)`);
      if (Date.now() >= deadline) throw new Error('timed out waiting for an HTTP head');
      await this.wait(deadline);
    }
  }

  private tryFrame(): Frame | undefined {
    if (this.have < 2) return undefined;
    const h = frameHead(this.front(Math.min(this.have, 14)));
    if (!h || this.have < h.headLen + h.payloadLen) return undefined;
    return decodeFrame(this.take(h.headLen + h.payloadLen))!.frame;
  }

  /** The next frame, or 'end' once the peer closed and nothing is left, or 'timeout'. */
  async frame(timeoutMs: number): Promise<ReadResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.tryFrame();
      if (f) return f;
      if (this.ended) return 'end';
      if (Date.now() >= deadline) return 'timeout';
      await this.wait(deadline);
    }
  }
}

// ------------------------------------------------------------ deflate

const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** A zlib raw stream driven message by message with Z_SYNC_FLUSH. */
class ZStream {
  private out: Buffer[] = [];
  private err: Error | undefined;
  private failWaiter: ((e: Error) => void) | undefined;

  constructor(private readonly z: zlib.DeflateRaw | zlib.InflateRaw) {
    z.on('data', (c: Buffer) => this.out.push(c));
    z.on('error', (e: Error) => {
      this.err = e;
      this.failWaiter?.(e);
    });
  }

  run(input: Buffer): Promise<Buffer> {
    if (this.err) return Promise.reject(this.err);
    return new Promise((resolve, reject) => {
      this.failWaiter = reject;
      if (input.length) this.z.write(input);
      this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.failWaiter = undefined;
        if (this.err) return reject(this.err);
        const b = Buffer.concat(this.out);
        this.out = [];
        resolve(b);
      });
    });
  }

  close(): void {
    this.z.close();
  }
}

/** Compresses messages as a permessage-deflate sender with the given window. */
export class MessageDeflater {
  private s: ZStream | undefined;
  constructor(
    private readonly windowBits: number,
    private readonly noContextTakeover: boolean,
  ) {}

  async compress(data: Buffer): Promise<Buffer> {
    // An empty message is the empty stored block minus its tail (§7.2.3.6);
    // zlib would refuse a second empty sync flush on a kept stream.
    if (data.length === 0) return Buffer.from([0x00]);
    if (!this.s || this.noContextTakeover) {
      this.s?.close();
      this.s = new ZStream(zlib.createDeflateRaw({ windowBits: this.windowBits }));
    }
    const b = await this.s.run(data);
    if (b.length < 4 || !b.subarray(b.length - 4).equals(TAIL)) throw new Error('deflate output lacks the sync flush tail');
    return b.subarray(0, b.length - 4);
  }

  close(): void {
    this.s?.close();
  }
}

/** Inflates a peer's compressed messages; a fresh window per message when it promised no takeover. */
export class MessageInflater {
  private s: ZStream | undefined;
  constructor(
    private readonly windowBits: number,
    private readonly noContextTakeover: boolean,
  ) {}

  async inflate(payload: Buffer): Promise<Buffer> {
    if (!this.s || this.noContextTakeover) {
      this.s?.close();
      // zlib only enforces the window on references that reach back past
      // the current output buffer: small output chunks make it check them all.
      const chunkSize = this.windowBits < 15 ? 64 : undefined;
      this.s = new ZStream(zlib.createInflateRaw({ windowBits: this.windowBits, chunkSize }));
    }
    return this.s.run(Buffer.concat([payload, TAIL]));
  }

  close(): void {
    this.s?.close();
  }
}

// ------------------------------------------------------------ negotiation

export interface Pmd {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientMaxWindowBits: number;
}

/**
 * Reads an accepted permessage-deflate response value (one extension, its
 * params). Returns undefined when the value holds no permessage-deflate.
 * Throws on anything a client must refuse (RFC 7692 §5, §7.1).
 */
export function parsePmdResponse(value: string | undefined): Pmd | undefined {
  if (!value || !value.trim()) return undefined;
  const exts = value.split(',').map((e) => e.trim());
  if (exts.length !== 1) throw new Error(`more than one extension accepted: ${value}`);
  const [name, ...params] = exts[0].split(';').map((p) => p.trim());
  if (name.toLowerCase() !== 'permessage-deflate') throw new Error(`unexpected extension ${name}`);
  const p: Pmd = { serverNoContextTakeover: false, clientNoContextTakeover: false, serverMaxWindowBits: 15, clientMaxWindowBits: 15 };
  const seen = new Set<string>();
  for (const raw of params) {
    const [k, v] = raw.split('=').map((x) => x.trim());
    const key = k.toLowerCase();
    if (seen.has(key)) throw new Error(`duplicate parameter ${key}`);
    seen.add(key);
    const bits = () => {
      const n = Number(v?.replace(/^"|"$/g, ''));
      if (!Number.isInteger(n) || n < 8 || n > 15) throw new Error(`bad ${key} value ${v}`);
      return n;
    };
    if (key === 'server_no_context_takeover' && v === undefined) p.serverNoContextTakeover = true;
    else if (key === 'client_no_context_takeover' && v === undefined) p.clientNoContextTakeover = true;
    else if (key === 'server_max_window_bits') p.serverMaxWindowBits = bits();
    else if (key === 'client_max_window_bits') p.clientMaxWindowBits = bits();
    else throw new Error(`unknown or malformed parameter ${raw}`);
  }
  return p;
}
