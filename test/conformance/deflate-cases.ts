// Categories 12 and 13: permessage-deflate (RFC 7692) negotiation and
// compressed messages. The suite deflates with node's zlib (sync flush, tail
// removed) and inflates our endpoint's echoes with the agreed window and
// takeover rule, so an endpoint that overreaches its window or keeps context
// it promised to drop fails the inflate.
import * as zlib from 'zlib';
import { bytes } from '../support';
import { addCase as add, frame, txt } from './cases';
import { Msg, closeClean, expectEchoes, expectFailure } from './expect';
import { Case, Fail, Link } from './runner';
import { FrameSpec, OP, RSV1 } from '../support/wire';
import { Pmd } from './wire';

/** Our endpoint's sending window under the agreement. */
const ourBits = (l: Link, p: Pmd) => (l.side === 'server' ? p.serverMaxWindowBits : p.clientMaxWindowBits);

/** Compressed frames for one message; split into `parts` frames (RSV1 on the first only). */
async function compressed(l: Link, opcode: number, data: Buffer, parts = 1): Promise<FrameSpec[]> {
  const c = await l.compress(data);
  if (parts <= 1 || c.length < parts) return [frame(opcode, c, true, RSV1)];
  const size = Math.ceil(c.length / parts);
  const out: FrameSpec[] = [];
  for (let i = 0; i < c.length; i += size) {
    out.push(frame(i === 0 ? opcode : OP.cont, c.subarray(i, i + size), i + size >= c.length, i === 0 ? RSV1 : 0));
  }
  return out;
}

/**
 * Exchanges messages that reveal a broken agreement: a text, a binary whose
 * repeats lie just beyond our endpoint's window, the same binary again (only
 * decodable with context when the endpoint kept it), an uncompressed text
 * and an empty message.
 */
async function exercise(l: Link): Promise<void> {
  const p = l.pmd!;
  const block = bytes((1 << ourBits(l, p)) + 100, 31);
  const rep = Buffer.concat([block, block, block]);
  const hello = Buffer.from('Hello, compressed wörld ✓ '.repeat(8));
  const frames = [
    ...(await compressed(l, OP.text, hello)),
    ...(await compressed(l, OP.binary, rep)),
    ...(await compressed(l, OP.binary, rep, 3)),
    frame(OP.text, 'not compressed'),
    ...(await compressed(l, OP.binary, Buffer.alloc(0))),
  ];
  await l.send(frames);
  await expectEchoes(l, [
    { opcode: OP.text, data: hello },
    { opcode: OP.binary, data: rep },
    { opcode: OP.binary, data: rep },
    { opcode: OP.text, data: Buffer.from('not compressed') },
    { opcode: OP.binary, data: Buffer.alloc(0) },
  ]);
  await closeClean(l, 1000);
}

// ------------------------------------------------------------ 12.1 server: offers

interface OfferCase {
  offer: string;
  /** what an accepting server's response must satisfy (throws Fail) */
  check?: (p: Pmd, raw: string) => void;
  /** the offer must be declined */
  decline?: boolean;
}

const hasParam = (raw: string, name: string) => new RegExp(`(^|;)\\s*${name}\\s*(=|;|$)`, 'i').test(raw);

const OFFERS: OfferCase[] = [
  { offer: 'permessage-deflate', check: (_p, raw) => { if (hasParam(raw, 'client_max_window_bits')) throw new Fail('client_max_window_bits in the response to an offer without it (§7.1.2.2)'); } },
  { offer: 'permessage-deflate; client_max_window_bits' },
  { offer: 'permessage-deflate; server_no_context_takeover', check: (p) => { if (!p.serverNoContextTakeover) throw new Fail('server_no_context_takeover not in the response (§7.1.1.1)'); } },
  { offer: 'permessage-deflate; client_no_context_takeover' },
  { offer: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover', check: (p) => { if (!p.serverNoContextTakeover) throw new Fail('server_no_context_takeover dropped'); } },
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((n) => ({
    offer: `permessage-deflate; server_max_window_bits=${n}; client_max_window_bits`,
    check: (p: Pmd, raw: string) => {
      if (!hasParam(raw, 'server_max_window_bits')) throw new Fail('server_max_window_bits not in the response (§7.1.2.1)');
      if (p.serverMaxWindowBits > n) throw new Fail(`server_max_window_bits=${p.serverMaxWindowBits} above the offered ${n}`);
    },
  })),
  ...[9, 10, 11, 12, 13, 14, 15].map((n) => ({
    offer: `permessage-deflate; client_max_window_bits=${n}`,
    check: (p: Pmd) => {
      if (p.clientMaxWindowBits > n) throw new Fail(`client_max_window_bits=${p.clientMaxWindowBits} above the offered ${n}`);
    },
  })),
  { offer: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9' },
  { offer: 'PerMessage-Deflate; Client_Max_Window_Bits; Server_Max_Window_Bits="12"', check: (p) => { if (p.serverMaxWindowBits > 12) throw new Fail('quoted server_max_window_bits ignored'); } },
  {
    offer: 'x-webkit-deflate-frame, permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=10',
    check: (p) => { if (p.serverMaxWindowBits > 10) throw new Fail('did not pick the third (first acceptable) offer'); },
  },
  { offer: 'permessage-deflate; server_max_window_bits=7', decline: true },
  { offer: 'permessage-deflate; server_max_window_bits=16', decline: true },
  { offer: 'permessage-deflate; server_max_window_bits', decline: true },
  { offer: 'permessage-deflate; client_max_window_bits=7', decline: true },
  { offer: 'permessage-deflate; client_max_window_bits=0x0f', decline: true },
  { offer: 'permessage-deflate; server_no_context_takeover=1', decline: true },
  { offer: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', decline: true },
  { offer: 'permessage-deflate; unknown_parameter', decline: true },
  { offer: 'x-unknown-extension; a=1', decline: true },
];

OFFERS.forEach((o, i) => {
  add({
    id: `12.1.${i + 1}`,
    title: `offer "${o.offer}"`,
    side: 'server',
    offer: o.offer,
    handshake: true,
    async run(l) {
      if (l.status !== 101) throw new Fail(`handshake refused with ${l.status}`);
      const raw = l.headers['sec-websocket-extensions'] ?? '';
      if (!l.ourDeflate || o.decline) {
        if (l.pmd) throw new Fail(`accepted: ${raw}`);
        await l.send([frame(OP.text, 'plain'), frame(OP.binary, 'plain')]);
        await expectEchoes(l, [{ opcode: OP.text, data: Buffer.from('plain') }, { opcode: OP.binary, data: Buffer.from('plain') }]);
        await closeClean(l, 1000);
        return;
      }
      if (!l.pmd) throw new Fail('offer declined');
      o.check?.(l.pmd, raw);
      await exercise(l);
    },
  });
});
add({
  id: '12.1.40',
  title: 'a syntactically broken extension header: declined or refused with 400',
  side: 'server',
  offer: 'permessage-deflate;; =x',
  handshake: true,
  async run(l) {
    if (l.status === 400) return;
    if (l.status !== 101) throw new Fail(`status ${l.status}`);
    if (l.pmd) throw new Fail('accepted a broken header');
    await closeClean(l, 1000);
  },
});

// ------------------------------------------------------------ 12.2 client: responses

const RESPONSES: Array<[string, (p: Pmd) => void]> = [
  ['permessage-deflate', () => undefined],
  ['permessage-deflate; server_no_context_takeover', () => undefined],
  ['permessage-deflate; client_no_context_takeover', (p) => { if (!p.clientNoContextTakeover) throw new Fail('parse'); }],
  ['permessage-deflate; server_no_context_takeover; client_no_context_takeover', () => undefined],
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((n): [string, (p: Pmd) => void] => [`permessage-deflate; client_max_window_bits=${n}`, () => undefined]),
  ...[9, 10, 11, 12, 13, 14, 15].map((n): [string, (p: Pmd) => void] => [`permessage-deflate; server_max_window_bits=${n}`, () => undefined]),
  ['permessage-deflate; server_max_window_bits=9; client_max_window_bits=8; server_no_context_takeover; client_no_context_takeover', () => undefined],
];
RESPONSES.forEach(([resp], i) => {
  add({
    id: `12.2.${i + 1}`,
    title: `server answers "${resp}"`,
    side: 'client',
    deflate: true,
    respond: () => resp,
    async run(l) {
      if (!l.pmd) throw new Fail('no agreement');
      await exercise(l);
    },
  });
});

const REFUSE: string[] = [
  'permessage-deflate; unknown_parameter=1',
  'permessage-deflate; client_max_window_bits=16',
  'permessage-deflate; client_max_window_bits=7',
  'permessage-deflate; server_max_window_bits=7',
  'permessage-deflate; server_max_window_bits',
  'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
  'permessage-deflate, permessage-deflate',
  'x-never-offered',
];
const refuseCase = (id: string, resp: string, deflate: boolean): Case => ({
  id,
  title: `our client refuses the answer "${resp}"${deflate ? '' : ' (nothing offered)'}`,
  side: 'client',
  deflate,
  handshake: true,
  respond: () => resp,
  async run(l) {
    const st = await l.startStatus!;
    if (st.success) throw new Fail(`our client accepted "${resp}"`);
    // Failing the connection: close the TCP connection, a close frame is optional (§7.1.7).
    const f = await l.next(3000);
    if (f === 'timeout') throw new Fail('our client kept the TCP connection open');
    if (f !== 'end' && f.opcode !== OP.close) throw new Fail(`frame ${f.opcode} after a refused handshake`);
    if (l.events().some((e) => e.type === 'open')) throw new Fail('open event for a refused handshake');
  },
});
REFUSE.forEach((r, i) => add(refuseCase(`12.3.${i + 1}`, r, true)));
add(refuseCase('12.3.20', 'permessage-deflate', false));

// ------------------------------------------------------------ 13 compressed messages

const SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 65536, 131072, 262144];
const negotiated: Array<[string, string | undefined]> = [
  ['default agreement', undefined],
  ['no context takeover both ways', 'permessage-deflate; server_no_context_takeover; client_no_context_takeover'],
];
negotiated.forEach(([name, ext], k) => {
  for (const [kind, op] of [['text', OP.text], ['binary', OP.binary]] as const) {
    for (const parts of [1, 4]) {
      SIZES.forEach((n, i) => {
        const base = 1 + k * 4 + (kind === 'text' ? 0 : 1) * 2 + (parts === 1 ? 0 : 1);
        add({
          id: `13.${base}.${i + 1}`,
          title: `${name}: ${kind} of ${n} bytes, compressed${parts > 1 ? ` in ${parts} frames` : ''}, sent 3 times`,
          deflate: true,
          ...(ext ? { offer: ext, respond: () => ext } : {}),
          async run(l) {
            if (!l.pmd) throw new Fail('no agreement');
            if (ext && !(l.pmd.serverNoContextTakeover && l.pmd.clientNoContextTakeover)) throw new Fail(`agreement ${JSON.stringify(l.pmd)}`);
            const d = kind === 'text' ? txt(n, n) : bytes(n, n);
            const frames: FrameSpec[] = [];
            for (let r = 0; r < 3; r++) frames.push(...(await compressed(l, op, d, parts)));
            await l.send(frames);
            const m: Msg = { opcode: op, data: d };
            await expectEchoes(l, [m, m, m]);
            await closeClean(l, 1000);
          },
        });
      });
    }
  }
});
[9, 10, 11, 12, 13, 14, 15].forEach((n, i) => {
  const ext = `permessage-deflate; server_max_window_bits=${n}; client_max_window_bits=${n}`;
  add({
    id: `13.9.${i + 1}`,
    title: `window bits ${n} both ways: messages with repeats beyond the window`,
    deflate: true,
    offer: ext,
    respond: () => ext,
    async run(l) {
      if (!l.pmd) throw new Fail('no agreement');
      await exercise(l);
    },
  });
});

// A sender may end a message's DEFLATE data with a final block (§7.2.3.4).
add({
  id: '13.10.1',
  title: 'messages compressed to a final (BFINAL) block, twice',
  deflate: true,
  async run(l) {
    const d1 = txt(3000, 2);
    const d2 = txt(3000, 3);
    const w = l.side === 'server' ? l.pmd!.clientMaxWindowBits : l.pmd!.serverMaxWindowBits;
    const c1 = zlib.deflateRawSync(d1, { windowBits: Math.max(9, w) });
    const c2 = zlib.deflateRawSync(d2, { windowBits: Math.max(9, w) });
    await l.send([frame(OP.text, c1, true, RSV1), frame(OP.text, c2, true, RSV1)]);
    await expectEchoes(l, [{ opcode: OP.text, data: d1 }, { opcode: OP.text, data: d2 }]);
    await closeClean(l, 1000);
  },
});
add({
  id: '13.10.2',
  title: 'compressed message with an empty payload (RSV1, 0 bytes)',
  deflate: true,
  async run(l) {
    await l.send([frame(OP.binary, Buffer.alloc(0), true, RSV1), frame(OP.text, 'next')]);
    await expectEchoes(l, [{ opcode: OP.binary, data: Buffer.alloc(0) }, { opcode: OP.text, data: Buffer.from('next') }]);
    await closeClean(l, 1000);
  },
});
add({
  id: '13.11.1',
  title: 'invalid compressed data fails with 1007',
  deflate: true,
  async run(l) {
    await l.send(frame(OP.binary, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x13, 0x37]), true, RSV1));
    await expectFailure(l, 1007);
    const err = l.events().find((e) => e.type === 'error');
    if (!err?.ctx.decompressionError) throw new Fail(`no error event with decompressionError: ${JSON.stringify(err?.ctx)}`);
  },
});
add({
  id: '13.11.2',
  title: 'compressed text that inflates to invalid UTF-8 fails with 1007',
  deflate: true,
  async run(l) {
    await l.send(frame(OP.text, await l.compress(Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62])), true, RSV1));
    await expectFailure(l, 1007);
  },
});
add({
  id: '13.11.3',
  title: 'RSV1 on the continuation of a compressed message fails with 1002',
  deflate: true,
  async run(l) {
    const c = await l.compress(txt(500, 4));
    await l.send([frame(OP.text, c.subarray(0, 10), false, RSV1), frame(OP.cont, c.subarray(10), true, RSV1)]);
    await expectFailure(l, 1002);
  },
});
add({
  id: '13.11.4',
  title: 'invalid compressed data in the first fragment fails before the message ends',
  deflate: true,
  async run(l) {
    await l.send(frame(OP.binary, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x13, 0x37]), false, RSV1));
    await expectFailure(l, 1007);
  },
});
