// What the cases expect of our endpoint on the wire: echoes (inflated when
// compressed), pongs, a clean closing handshake, or a failed connection with
// a given close code. FAILED is a thrown Fail; NON-STRICT is a note.
import { Fail, Link } from './runner';
import { OP, RSV1, RSV2, RSV3, closePayload, toBuf } from '../support/wire';

export interface Msg {
  opcode: number;
  data: Buffer;
}

export const textMsg = (d: Buffer | string): Msg => ({ opcode: OP.text, data: toBuf(d) });
export const binMsg = (d: Buffer | string): Msg => ({ opcode: OP.binary, data: toBuf(d) });

function describe(b: Buffer): string {
  if (b.length <= 24) return `<${b.toString('hex')}>`;
  return `<${b.length} bytes ${b.subarray(0, 12).toString('hex')}…>`;
}

function diff(want: Buffer, got: Buffer): string {
  if (want.length !== got.length) return `length ${got.length}, expected ${want.length}`;
  for (let i = 0; i < want.length; i++) if (want[i] !== got[i]) return `differs at byte ${i}`;
  return 'equal';
}

function isValidUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

interface Collected {
  msgs: Msg[];
  pongs: Buffer[];
}

/** Assembles one data message from our endpoint; `first` is its first frame. */
async function readData(l: Link, first: { fin: boolean; rsv: number; opcode: number; payload: Buffer }, timeoutMs: number, pongs: Buffer[]): Promise<Msg> {
  if (first.opcode === OP.cont) throw new Fail('our endpoint sent a continuation frame without a message');
  if (first.rsv & (RSV2 | RSV3)) throw new Fail(`our endpoint set RSV2/RSV3 (0x${first.rsv.toString(16)})`);
  const compressed = (first.rsv & RSV1) !== 0;
  if (compressed && !l.pmd) throw new Fail('our endpoint set RSV1 without a negotiated extension');
  const parts = [first.payload];
  let f = first;
  while (!f.fin) {
    const n = await l.next(timeoutMs);
    if (n === 'end' || n === 'timeout') throw new Fail(`fragmented message from our endpoint unfinished (${n})`);
    if (n.opcode === OP.pong) {
      pongs.push(n.payload);
      continue;
    }
    if (n.opcode >= 0x8) throw new Fail(`control opcode ${n.opcode} inside our endpoint's fragmented message`);
    if (n.opcode !== OP.cont) throw new Fail('our endpoint started a new message inside a fragmented one');
    if (n.rsv) throw new Fail('our endpoint set RSV bits on a continuation frame');
    parts.push(n.payload);
    f = n;
  }
  let data: Buffer = Buffer.concat(parts);
  if (compressed) data = await l.inflate(data);
  return { opcode: first.opcode, data };
}

/**
 * Reads until `want` echoes and `wantPongs` pongs have arrived; anything
 * else (a close, an unexpected frame, the end) fails the case.
 */
export async function expectEchoes(l: Link, want: Msg[], wantPongs: Buffer[] = [], timeoutMs = 3000): Promise<void> {
  const got: Collected = { msgs: [], pongs: [] };
  while (got.msgs.length < want.length || got.pongs.length < wantPongs.length) {
    const f = await l.next(timeoutMs);
    const state = `${got.msgs.length}/${want.length} echoes, ${got.pongs.length}/${wantPongs.length} pongs`;
    if (f === 'timeout') throw new Fail(`timed out with ${state}`);
    if (f === 'end') throw new Fail(`connection ended with ${state}`);
    if (f.opcode === OP.pong) {
      if (f.rsv) throw new Fail('RSV bits on a pong');
      got.pongs.push(f.payload);
    } else if (f.opcode === OP.close) {
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
      throw new Fail(`unexpected close ${code} "${f.payload.subarray(2).toString()}" with ${state}`);
    } else if (f.opcode === OP.ping) {
      throw new Fail('unexpected ping from our endpoint');
    } else {
      got.msgs.push(await readData(l, f, timeoutMs, got.pongs));
    }
  }
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    const g = got.msgs[i];
    if (g.opcode !== w.opcode) throw new Fail(`echo ${i}: opcode ${g.opcode}, expected ${w.opcode}`);
    if (!g.data.equals(w.data)) throw new Fail(`echo ${i}: ${diff(w.data, g.data)} (got ${describe(g.data)})`);
  }
  for (let i = 0; i < wantPongs.length; i++) {
    if (!got.pongs[i].equals(wantPongs[i])) throw new Fail(`pong ${i}: ${describe(got.pongs[i])}, expected ${describe(wantPongs[i])}`);
  }
}

/** After our endpoint has closed (or failed): its FIN, with no frame before it. */
async function expectEnd(l: Link, after: string): Promise<void> {
  if (l.side === 'client') {
    // The server closes the TCP connection first (§7.1.1): we are the server here.
    l.sock.end();
  }
  const f = await l.next(3000);
  if (f === 'timeout') {
    throw new Fail(l.side === 'server' ? `our server did not close the TCP connection after ${after}` : `our client did not close its side after ${after} and our FIN`);
  }
  if (f !== 'end') throw new Fail(`frame (opcode ${f.opcode}) after ${after}`);
}

/**
 * The suite starts a closing handshake (no payload when code is undefined)
 * and expects the echo, the TCP close and our endpoint's close event.
 */
export async function closeClean(l: Link, code?: number, reason = ''): Promise<void> {
  await l.send({ opcode: OP.close, payload: code === undefined ? Buffer.alloc(0) : closePayload(code, reason) });
  await expectCloseEcho(l, code);
  await expectEnd(l, 'the closing handshake');
  const ev = await l.closeEvent();
  if (!ev) throw new Fail('no close event on our side');
  const want = code ?? 1005;
  if (ev.code !== want || ev.remote !== true || ev.reason !== reason) {
    throw new Fail(`our close event ${JSON.stringify(ev)}, expected code ${want} reason "${reason}" remote true`);
  }
}

/** Reads our endpoint's answer to the suite's close frame. */
export async function expectCloseEcho(l: Link, code: number | undefined, allowDataBefore = false): Promise<void> {
  for (;;) {
    const f = await l.next(3000);
    if (f === 'timeout') throw new Fail('no close frame in answer to ours');
    if (f === 'end') throw new Fail('connection ended without answering our close frame');
    if (f.opcode !== OP.close) {
      if (allowDataBefore && f.opcode !== OP.pong) {
        if (!f.fin) throw new Fail('fragmented data while closing');
        continue;
      }
      throw new Fail(`frame (opcode ${f.opcode}) instead of the close echo`);
    }
    if (f.rsv) throw new Fail('RSV bits on the close frame');
    const p = f.payload;
    if (p.length === 1) throw new Fail('1-byte close payload from our endpoint');
    if (p.length >= 2 && !isValidUtf8(p.subarray(2))) throw new Fail('close reason from our endpoint is not UTF-8');
    const got = p.length >= 2 ? p.readUInt16BE(0) : undefined;
    if (got === code) return;
    if (code === undefined) l.note(`answered a close without status with code ${got}`);
    else if (got === undefined) l.note(`answered close ${code} with a close without status`);
    else if (got === 1000) l.note(`answered close ${code} with 1000`);
    else throw new Fail(`answered close ${code} with ${got}`);
    return;
  }
}

const ERROR_CODES = new Set([1002, 1003, 1007, 1008, 1009, 1010, 1011]);

export interface FailureOptions {
  /** echoes that may (and must) arrive before the close */
  before?: Msg[];
  pongsBefore?: Buffer[];
  timeoutMs?: number;
}

/**
 * Our endpoint must fail the connection: optional echoes of what preceded
 * the violation, then a close frame with `code`, then the TCP close.
 */
export async function expectFailure(l: Link, code: number, opts: FailureOptions = {}): Promise<void> {
  const before = opts.before ?? [];
  const pongsBefore = opts.pongsBefore ?? [];
  const got: Collected = { msgs: [], pongs: [] };
  const timeoutMs = opts.timeoutMs ?? 3000;
  let closeCode: number | undefined;
  for (;;) {
    const f = await l.next(timeoutMs);
    if (f === 'timeout') throw new Fail(`connection not failed within ${timeoutMs} ms (expected close ${code})`);
    if (f === 'end') {
      l.note(`dropped the TCP connection without a close frame (expected ${code})`);
      break;
    }
    if (f.opcode === OP.close) {
      const p = f.payload;
      closeCode = p.length >= 2 ? p.readUInt16BE(0) : 1005;
      if (p.length >= 2 && !isValidUtf8(p.subarray(2))) throw new Fail('close reason is not UTF-8');
      if (closeCode !== code) {
        if (ERROR_CODES.has(closeCode)) l.note(`failed with close ${closeCode}, ${code} is the stricter code`);
        else throw new Fail(`closed with ${closeCode} "${p.subarray(2).toString()}", expected ${code}`);
      }
      break;
    }
    if (f.opcode === OP.pong) got.pongs.push(f.payload);
    else if (f.opcode === OP.ping) throw new Fail('unexpected ping');
    else got.msgs.push(await readData(l, f, timeoutMs, got.pongs));
  }
  if (got.msgs.length > before.length) throw new Fail(`${got.msgs.length} echoes before failing, expected ${before.length}`);
  if (got.msgs.length < before.length) {
    // Our echo runs in JavaScript after the message event; when the violation
    // came in the same read, the engine failed the connection first and the
    // late echo was refused (the connection is no longer open). The message
    // events reach JavaScript after the close frame reached the wire: count
    // them once the close event (delivered after them) has arrived.
    await l.closeEvent(timeoutMs);
    const delivered = l.events().filter((e) => e.type === 'message').length;
    if (delivered !== before.length) throw new Fail(`${delivered} message events for ${before.length} valid messages before the violation`);
    l.note(`${before.length - got.msgs.length} of ${before.length} echoes of the valid message(s) before the violation missing: the violation in the same read failed the connection before the application's echo was sent`);
  }
  for (let i = 0; i < got.msgs.length; i++) {
    if (got.msgs[i].opcode !== before[i].opcode || !got.msgs[i].data.equals(before[i].data)) {
      throw new Fail(`echo ${i} before failing: ${describe(got.msgs[i].data)}`);
    }
  }
  if (got.pongs.length !== pongsBefore.length) throw new Fail(`${got.pongs.length} pongs before failing, expected ${pongsBefore.length}`);
  if (closeCode !== undefined) await expectEnd(l, `failing with ${closeCode}`);
  const ev = await l.closeEvent();
  if (!ev) throw new Fail('no close event on our side');
  if (closeCode !== undefined && (ev.code !== closeCode || ev.remote !== false)) {
    throw new Fail(`our close event ${JSON.stringify(ev)} after failing with ${closeCode}`);
  }
}

/** Nothing may arrive for ms (our endpoint must ignore what the suite sent). */
export async function expectSilence(l: Link, ms: number): Promise<void> {
  const f = await l.next(ms);
  if (f !== 'timeout') throw new Fail(f === 'end' ? 'connection ended' : `unexpected frame (opcode ${f.opcode})`);
}
