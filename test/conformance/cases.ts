// The cases, numbered after the Autobahn|Testsuite categories: 1 framing, 2
// ping/pong, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close,
// 9 large messages, 12/13 permessage-deflate. Every case is written once for
// both sides; the Link masks or not and checks the direction's mask bit.
import { bytes, text } from '../support';
import { closeClean, expectCloseEcho, expectEchoes, expectFailure, expectSilence, binMsg, Msg, textMsg } from './expect';
import { Case, Fail, Link } from './runner';
import { FrameSpec, OP, RSV1, RSV2, RSV3, closePayload, toBuf } from '../support/wire';

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

const frame = (opcode: number, payload?: Buffer | string, fin = true, rsv = 0): FrameSpec => ({ opcode, payload, fin, rsv });
const txt = (n: number, seed = 1) => Buffer.from(text(n, seed));

/** Splits data into frames of `size` bytes (the first carries the opcode). */
function fragments(opcode: number, data: Buffer, size: number): FrameSpec[] {
  const out: FrameSpec[] = [];
  if (data.length === 0) return [frame(opcode, data)];
  for (let i = 0; i < data.length; i += size) {
    out.push(frame(i === 0 ? opcode : OP.cont, data.subarray(i, i + size), i + size >= data.length));
  }
  return out;
}

/** Sends, expects the echoes (and pongs), then a clean close. */
function echoCase(id: string, title: string, frames: FrameSpec[], want: Msg[], opts: { chop?: number; pongs?: Buffer[]; timeoutMs?: number } = {}): Case {
  return {
    id,
    title,
    timeoutMs: opts.timeoutMs,
    async run(l) {
      await l.send(frames, opts.chop);
      await expectEchoes(l, want, opts.pongs ?? []);
      await closeClean(l, 1000);
    },
  };
}

/** Sends, expects the connection to fail with `code` (after optional echoes). */
function failCase(id: string, title: string, frames: FrameSpec[], code: number, opts: { before?: Msg[]; pongsBefore?: Buffer[]; chop?: number; side?: 'server' | 'client'; deflate?: boolean } = {}): Case {
  return {
    id,
    title,
    side: opts.side,
    deflate: opts.deflate,
    async run(l) {
      await l.send(frames, opts.chop);
      await expectFailure(l, code, opts);
    },
  };
}

// ------------------------------------------------------------ 1 framing

const LENGTHS = [0, 1, 2, 16, 124, 125, 126, 127, 128, 255, 256, 1024, 4096, 16384, 65534, 65535, 65536];
for (const [k, kind] of [[1, 'text'], [2, 'binary']] as const) {
  const op = kind === 'text' ? OP.text : OP.binary;
  const mk = (n: number) => (kind === 'text' ? txt(n, n) : bytes(n, n + 7));
  const msg = (b: Buffer) => ({ opcode: op, data: b });
  LENGTHS.forEach((n, i) => {
    const d = mk(n);
    add(echoCase(`1.${k}.${i + 1}`, `${kind} message, payload ${n} bytes`, [frame(op, d)], [msg(d)]));
  });
  // The length forms split byte by byte: 7-bit, 16-bit and 64-bit lengths.
  [0, 1, 125, 126, 127, 128, 300].forEach((n, i) => {
    const d = mk(n);
    add(echoCase(`1.${k}.${20 + i}`, `${kind} message, payload ${n} bytes, written 1 byte at a time`, [frame(op, d)], [msg(d)], { chop: 1 }));
  });
  [65535, 65536].forEach((n, i) => {
    const d = mk(n);
    add(echoCase(`1.${k}.${30 + i}`, `${kind} message, payload ${n} bytes, written in 997-byte chops`, [frame(op, d)], [msg(d)], { chop: 997 }));
  });
}
{
  const ms = Array.from({ length: 100 }, (_, i) => (i % 2 ? bytes(i * 7, i + 1) : txt(i * 5, i + 1)));
  add(echoCase('1.3.1', '100 messages of 0..700 bytes in one write, echoed in order',
    ms.map((d, i) => frame(i % 2 ? OP.binary : OP.text, d)), ms.map((d, i) => (i % 2 ? binMsg(d) : textMsg(d)))));
}
add({
  id: '1.3.2',
  title: 'unmasked frame from a client fails with 1002',
  side: 'server',
  async run(l) {
    const f = Buffer.concat([Buffer.from([0x81, 5]), Buffer.from('hello')]);
    await l.write(f);
    await expectFailure(l, 1002);
  },
});
add({
  id: '1.3.3',
  title: 'masked frame from a server fails with 1002',
  side: 'client',
  async run(l) {
    const key = Buffer.from([1, 2, 3, 4]);
    const body = Buffer.from('hello').map((b, i) => b ^ key[i & 3]);
    await l.write(Buffer.concat([Buffer.from([0x81, 0x80 | 5]), key, Buffer.from(body)]));
    await expectFailure(l, 1002);
  },
});
add({
  id: '1.3.4',
  title: '64-bit payload length with the most significant bit set fails with 1002',
  async run(l) {
    const mask = l.side === 'server';
    const head = Buffer.from([0x82, (mask ? 0x80 : 0) | 127, 0x80, 0, 0, 0, 0, 0, 0, 1]);
    await l.write(mask ? Buffer.concat([head, Buffer.from([9, 9, 9, 9])]) : head);
    await expectFailure(l, 1002);
  },
});

// ------------------------------------------------------------ 2 ping/pong

{
  const bin = Buffer.from(Array.from({ length: 10 }, (_, i) => [0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff, 0x80, 0x7f][i]));
  const p125 = bytes(125, 21);
  const pingCase = (id: string, title: string, payload: Buffer, chop?: number): Case => ({
    id,
    title,
    async run(l) {
      await l.send(frame(OP.ping, payload), chop);
      await expectEchoes(l, [], [payload]);
      await closeClean(l, 1000);
    },
  });
  add(pingCase('2.1', 'ping without payload gets a pong without payload', Buffer.alloc(0)));
  add(pingCase('2.2', 'ping with a text payload gets a pong with it', Buffer.from('Hello, world!')));
  add(pingCase('2.3', 'ping with a binary payload gets a pong with it', bin));
  add(pingCase('2.4', 'ping with a 125-byte payload gets a pong with it', p125));
  add(failCase('2.5', 'ping with a 126-byte payload fails with 1002', [frame(OP.ping, bytes(126, 22))], 1002));
  add(pingCase('2.6', 'ping with a 125-byte payload written 1 byte at a time', p125, 1));
  add({
    id: '2.7',
    title: 'unsolicited pong without payload is ignored',
    async run(l) {
      await l.send([frame(OP.pong), frame(OP.text, 'after pong')]);
      await expectEchoes(l, [textMsg('after pong')]);
      await closeClean(l, 1000);
    },
  });
  add({
    id: '2.8',
    title: 'unsolicited pong with payload is ignored',
    async run(l) {
      await l.send([frame(OP.pong, 'unsolicited pong payload'), frame(OP.binary, bin)]);
      await expectEchoes(l, [binMsg(bin)]);
      await closeClean(l, 1000);
    },
  });
  add({
    id: '2.9',
    title: 'unsolicited pong, then ping: only the ping is answered',
    async run(l) {
      await l.send([frame(OP.pong, 'unsolicited'), frame(OP.ping, 'solicited')]);
      await expectEchoes(l, [], [Buffer.from('solicited')]);
      await closeClean(l, 1000);
    },
  });
  const tenPings = Array.from({ length: 10 }, (_, i) => Buffer.from(`payload-${i}`));
  add({
    id: '2.10',
    title: '10 pings in one write get 10 pongs in order',
    async run(l) {
      await l.send(tenPings.map((p) => frame(OP.ping, p)));
      await expectEchoes(l, [], tenPings);
      await closeClean(l, 1000);
    },
  });
  add({
    id: '2.11',
    title: '10 pings written 1 byte at a time get 10 pongs in order',
    async run(l) {
      await l.send(tenPings.map((p) => frame(OP.ping, p)), 1);
      await expectEchoes(l, [], tenPings);
      await closeClean(l, 1000);
    },
  });
}

// ------------------------------------------------------------ 3 reserved bits

{
  const good = textMsg('before');
  // RSV1 on data frames is only a violation without permessage-deflate.
  add(failCase('3.1', 'text with RSV1 (no extension) fails with 1002', [frame(OP.text, 'hello', true, RSV1)], 1002, { deflate: false }));
  add(failCase('3.2', 'text, text with RSV2, ping: echo, then 1002 and no pong',
    [frame(OP.text, 'before'), frame(OP.text, 'hello', true, RSV2), frame(OP.ping, 'p')], 1002, { before: [good] }));
  add(failCase('3.3', 'same, written 1 byte at a time',
    [frame(OP.text, 'before'), frame(OP.text, 'hello', true, RSV2 | RSV1), frame(OP.ping, 'p')], 1002, { before: [good], chop: 1 }));
  add(failCase('3.4', 'binary with RSV3 fails with 1002', [frame(OP.binary, bytes(8, 3), true, RSV3)], 1002));
  add(failCase('3.5', 'binary with RSV1|RSV2|RSV3 fails with 1002', [frame(OP.binary, bytes(8, 4), true, RSV1 | RSV2 | RSV3)], 1002));
  add(failCase('3.6', 'ping with RSV1 fails with 1002', [frame(OP.ping, 'p', true, RSV1)], 1002));
  add(failCase('3.7', 'ping with RSV2 fails with 1002', [frame(OP.ping, 'p', true, RSV2)], 1002));
  add(failCase('3.8', 'close with RSV3 fails with 1002', [frame(OP.close, closePayload(1000), true, RSV3)], 1002));
  add(failCase('3.9', 'continuation with RSV2 fails with 1002', [frame(OP.text, 'frag', false), frame(OP.cont, 'ment', true, RSV2)], 1002));
  add(failCase('3.10', 'continuation with RSV1 fails with 1002', [frame(OP.text, 'frag', false), frame(OP.cont, 'ment', true, RSV1)], 1002));
}

// ------------------------------------------------------------ 4 opcodes

[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].forEach((op, i) => {
  const kind = op < 8 ? 'data' : 'control';
  add(failCase(`4.${op < 8 ? 1 : 2}.${i % 5 + 1}`, `reserved ${kind} opcode ${op} fails with 1002`, [frame(op)], 1002));
  add(failCase(`4.${op < 8 ? 1 : 2}.${i % 5 + 6}`, `text, reserved opcode ${op} with payload, ping: echo, 1002, no pong`,
    [frame(OP.text, 'before'), frame(op, 'reserved'), frame(OP.ping, 'p')], 1002, { before: [textMsg('before')] }));
});

// ------------------------------------------------------------ 5 fragmentation

{
  const parts = ['fragment1', 'fragment2', 'fragment3'];
  const whole = parts.join('');
  add(failCase('5.1', 'fragmented ping fails with 1002', [frame(OP.ping, 'frag', false), frame(OP.cont, 'ment')], 1002));
  add(failCase('5.2', 'fragmented pong fails with 1002', [frame(OP.pong, 'frag', false), frame(OP.cont, 'ment')], 1002));
  add(failCase('5.3', 'fragmented close fails with 1002', [frame(OP.close, closePayload(1000), false), frame(OP.cont, '')], 1002));
  add(echoCase('5.4', 'text in 2 fragments', [frame(OP.text, 'fragment1', false), frame(OP.cont, 'fragment2')], [textMsg('fragment1fragment2')]));
  add(echoCase('5.5', 'text in 2 fragments, 1 byte at a time', [frame(OP.text, 'fragment1', false), frame(OP.cont, 'fragment2')], [textMsg('fragment1fragment2')], { chop: 1 }));
  add(echoCase('5.6', 'text in 3 fragments with a ping between each',
    [frame(OP.text, parts[0], false), frame(OP.ping, 'p1'), frame(OP.cont, parts[1], false), frame(OP.ping, 'p2'), frame(OP.cont, parts[2])],
    [textMsg(whole)], { pongs: [Buffer.from('p1'), Buffer.from('p2')] }));
  add(echoCase('5.7', 'same, 1 byte at a time',
    [frame(OP.text, parts[0], false), frame(OP.ping, 'p1'), frame(OP.cont, parts[1], false), frame(OP.ping, 'p2'), frame(OP.cont, parts[2])],
    [textMsg(whole)], { pongs: [Buffer.from('p1'), Buffer.from('p2')], chop: 1 }));
  {
    const t = txt(300, 5);
    const fs = fragments(OP.text, t, 1);
    fs.splice(100, 0, frame(OP.ping, 'a'));
    fs.splice(201, 0, frame(OP.pong, 'unsolicited'));
    add(echoCase('5.8', 'text of 300 bytes in 1-byte fragments with a ping and a pong between', fs, [textMsg(t)], { pongs: [Buffer.from('a')] }));
  }
  {
    const b = bytes(3000, 6);
    add(echoCase('5.9', 'binary with empty first, middle and last fragments',
      [frame(OP.binary, Buffer.alloc(0), false), frame(OP.cont, b.subarray(0, 1000), false), frame(OP.cont, Buffer.alloc(0), false),
        frame(OP.cont, b.subarray(1000), false), frame(OP.cont, Buffer.alloc(0))], [binMsg(b)]));
    add(echoCase('5.10', 'text of empty fragments only', [frame(OP.text, '', false), frame(OP.cont, '', false), frame(OP.cont, '')], [textMsg('')]));
  }
  add(failCase('5.11', 'continuation (fin) without a message fails with 1002', [frame(OP.cont, 'orphan')], 1002));
  add(failCase('5.12', 'continuation (not fin) without a message fails with 1002', [frame(OP.cont, 'orphan', false)], 1002));
  add(failCase('5.13', 'continuation after a complete message fails with 1002',
    [frame(OP.text, 'done'), frame(OP.cont, 'orphan')], 1002, { before: [textMsg('done')] }));
  add(failCase('5.14', 'continuation chain without a start, 1 byte at a time', [frame(OP.cont, 'a', false), frame(OP.cont, 'b', false), frame(OP.cont, 'c')], 1002, { chop: 1 }));
  add(failCase('5.15', 'text frame inside a fragmented text message fails with 1002',
    [frame(OP.text, 'fragment1', false), frame(OP.text, 'fragment2', false), frame(OP.cont, 'fragment3')], 1002));
  add(failCase('5.16', 'binary frame (fin) inside a fragmented text message fails with 1002',
    [frame(OP.text, 'fragment1', false), frame(OP.binary, 'fragment2')], 1002));
  add(failCase('5.17', 'text frame (fin) inside a fragmented binary message fails with 1002',
    [frame(OP.binary, 'fragment1', false), frame(OP.ping, 'ok'), frame(OP.text, 'fragment2')], 1002, { pongsBefore: [Buffer.from('ok')] }));
  add(echoCase('5.18', 'two fragmented messages in a row',
    [frame(OP.text, 'one-', false), frame(OP.cont, 'two'), frame(OP.binary, 'three-', false), frame(OP.cont, 'four')],
    [textMsg('one-two'), binMsg('three-four')]));
  add({
    id: '5.19',
    title: 'close in the middle of a fragmented message: close echo, no message',
    async run(l) {
      await l.send([frame(OP.text, 'fragment1', false), frame(OP.close, closePayload(1000, 'mid')), frame(OP.cont, 'fragment2')]);
      await expectCloseEcho(l, 1000);
      if (l.side === 'client') l.sock.end();
      const f = await l.next(3000);
      if (f !== 'end') throw new Fail(typeof f === 'string' ? 'our endpoint did not close the TCP connection' : `frame ${f.opcode} after close`);
      const ev = await l.closeEvent();
      if (ev?.code !== 1000 || ev.remote !== true) throw new Fail(`close event ${JSON.stringify(ev)}`);
      if (l.events().some((e) => e.type === 'message')) throw new Fail('a message event for an unfinished message');
    },
  });
}

// ------------------------------------------------------------ 6 UTF-8

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const VALID: Array<[string, Buffer]> = [
  ['mixed Latin-1 text', Buffer.from('Hello-µ@ßöäüàá-UTF-8!!')],
  ['Greek κόσμε', Buffer.from('κόσμε')],
  ['U+0000', hex('00')],
  ['U+007F', hex('7f')],
  ['U+0080 (first 2-byte)', hex('c280')],
  ['U+07FF (last 2-byte)', hex('dfbf')],
  ['U+0800 (first 3-byte)', hex('e0a080')],
  ['U+D7FF (before surrogates)', hex('ed9fbf')],
  ['U+E000 (after surrogates)', hex('ee8080')],
  ['U+FFFD', hex('efbfbd')],
  ['U+FFFE (noncharacter, valid)', hex('efbfbe')],
  ['U+FFFF (last 3-byte)', hex('efbfbf')],
  ['U+10000 (first 4-byte)', hex('f0908080')],
  ['U+1F600 emoji', hex('f09f9880')],
  ['U+10FFFF (last code point)', hex('f48fbfbf')],
  ['all of the above in a row', Buffer.concat([hex('c280 dfbf e0a080 ed9fbf ee8080 efbfbf f0908080 f48fbfbf'), Buffer.from('κόσμε')])],
];
const INVALID: Array<[string, Buffer]> = [
  ['lone continuation 0x80', hex('80')],
  ['lone continuation 0xbf', hex('bf')],
  ['continuations 80 bf 80 bf', hex('80bf80bf')],
  ['2-byte lead alone at the end', hex('41c2')],
  ['2-byte lead before ASCII', hex('c241')],
  ['3-byte sequence missing its last byte', hex('e0a0')],
  ['3-byte sequence cut by ASCII', hex('e18041')],
  ['4-byte sequence missing its last byte', hex('f09080')],
  ['overlong "/" (c0 af)', hex('c0af')],
  ['overlong c1 bf', hex('c1bf')],
  ['overlong 3-byte e0 80 af', hex('e080af')],
  ['overlong 3-byte e0 9f bf', hex('e09fbf')],
  ['overlong 4-byte f0 80 80 af', hex('f08080af')],
  ['overlong 4-byte f0 8f bf bf', hex('f08fbfbf')],
  ['5-byte form f8 88 80 80 80', hex('f888808080')],
  ['6-byte form fc 80 80 80 80 af', hex('fc80808080af')],
  ['above U+10FFFF (f4 90 80 80)', hex('f4908080')],
  ['lead byte f5', hex('f5808080')],
  ['lead byte f7 bf bf bf', hex('f7bfbfbf')],
  ['byte fe', hex('fe')],
  ['byte ff', hex('ff')],
  ['bytes fe fe ff ff', hex('fefeffff')],
  ['surrogate U+D800', hex('eda080')],
  ['surrogate U+DB7F', hex('edadbf')],
  ['surrogate U+DC00', hex('edb080')],
  ['surrogate U+DFFF', hex('edbfbf')],
  ['surrogate pair U+D800 U+DC00', hex('eda080edb080')],
  ['κόσμε + surrogate + text', Buffer.concat([Buffer.from('κόσμε'), hex('eda080'), Buffer.from('edited')])],
];
VALID.forEach(([name, d], i) => {
  add(echoCase(`6.1.${i + 1}`, `valid UTF-8 in one frame: ${name}`, [frame(OP.text, d)], [textMsg(d)]));
  add(echoCase(`6.2.${i + 1}`, `valid UTF-8 in 1-byte fragments: ${name}`, fragments(OP.text, d, 1), [textMsg(d)]));
  add(echoCase(`6.3.${i + 1}`, `valid UTF-8 written 1 byte at a time: ${name}`, [frame(OP.text, d)], [textMsg(d)], { chop: 1 }));
});
INVALID.forEach(([name, d], i) => {
  add(failCase(`6.4.${i + 1}`, `invalid UTF-8 in one frame fails with 1007: ${name}`, [frame(OP.text, d)], 1007));
  add(failCase(`6.5.${i + 1}`, `invalid UTF-8 in 1-byte fragments fails with 1007: ${name}`, fragments(OP.text, d, 1), 1007));
});
{
  // Fail fast: the message never ends, the close must come anyway.
  const ff = (id: string, title: string, first: Buffer): Case => ({
    id,
    title,
    async run(l) {
      await l.send(frame(OP.text, first, false));
      await expectFailure(l, 1007);
    },
  });
  add(ff('6.6.1', 'fail fast: invalid byte in the first fragment, the message never finished', Buffer.concat([Buffer.from('Hello'), hex('ff')])));
  add(ff('6.6.2', 'fail fast: surrogate in the first fragment, never finished', Buffer.concat([Buffer.from('κόσμε'), hex('eda080')])));
  add(ff('6.6.3', 'fail fast: overlong in the first fragment, never finished', hex('c0af')));
  add(ff('6.6.4', 'fail fast: bad continuation byte after a valid lead, never finished', hex('e0a041')));
  add({
    id: '6.6.5',
    title: 'fail fast: invalid byte in the second fragment, never finished',
    async run(l) {
      await l.send([frame(OP.text, 'valid start ', false), frame(OP.cont, Buffer.concat([Buffer.from('then '), hex('f5')]), false)]);
      await expectFailure(l, 1007);
    },
  });
  // Fail fast inside one frame: the invalid bytes arrive, the frame's end does not (yet).
  const within = (id: string, title: string, bad: Buffer): Case => ({
    id,
    title,
    async run(l) {
      const payload = Buffer.concat([Buffer.from('Hello-'), bad, Buffer.alloc(200, 0x61)]);
      const wire = l.encode(frame(OP.text, payload));
      const cut = wire.length - 150;
      await l.write(wire.subarray(0, cut));
      const f = await l.next(800);
      if (f === 'timeout') {
        await l.write(wire.subarray(cut));
        l.note('invalid UTF-8 detected only once the frame was complete');
        await expectFailure(l, 1007);
        return;
      }
      if (f === 'end') throw new Fail('connection ended without a close frame');
      if (f.opcode !== OP.close || f.payload.readUInt16BE(0) !== 1007) throw new Fail(`frame ${f.opcode} (${f.payload.subarray(0, 2).toString('hex')}) instead of close 1007`);
      if (l.side === 'client') l.sock.end();
      if ((await l.next(3000)) !== 'end') throw new Fail('no TCP close after failing');
      const ev = await l.closeEvent();
      if (ev?.code !== 1007 || ev.remote !== false) throw new Fail(`close event ${JSON.stringify(ev)}`);
    },
  });
  add(within('6.7.1', 'fail fast within a frame: byte ff, rest of the frame not sent', hex('ff')));
  add(within('6.7.2', 'fail fast within a frame: surrogate, rest of the frame not sent', hex('edb080')));
  add(within('6.7.3', 'fail fast within a frame: 5-byte form, rest of the frame not sent', hex('f888808080')));
  // Sequences split across fragment boundaries.
  const four = hex('f09f9880');
  [1, 2, 3].forEach((at, i) => {
    add(echoCase(`6.8.${i + 1}`, `valid 4-byte code point split ${at}|${4 - at} across fragments`,
      [frame(OP.text, Buffer.concat([Buffer.from('ab'), four.subarray(0, at)]), false), frame(OP.cont, Buffer.concat([four.subarray(at), Buffer.from('cd')]))],
      [textMsg(Buffer.concat([Buffer.from('ab'), four, Buffer.from('cd')]))]));
  });
  add(echoCase('6.8.4', '3-byte code point split over 3 fragments with a ping between',
    [frame(OP.text, hex('e2'), false), frame(OP.ping, 'x'), frame(OP.cont, hex('82'), false), frame(OP.cont, hex('ac'))],
    [textMsg(hex('e282ac'))], { pongs: [Buffer.from('x')] }));
  add(failCase('6.9.1', 'lead byte ending fragment 1, ASCII starting fragment 2: 1007',
    [frame(OP.text, Buffer.concat([Buffer.from('κό'), hex('cf')]), false), frame(OP.cont, 'A')], 1007));
  add(failCase('6.9.2', 'surrogate split e d | a0 80 across fragments: 1007',
    [frame(OP.text, hex('ed'), false), frame(OP.cont, hex('a080'))], 1007));
  add(failCase('6.9.3', 'overlong split e0 | 80 af across fragments: 1007',
    [frame(OP.text, hex('e0'), false), frame(OP.cont, hex('80af'))], 1007));
  add(failCase('6.9.4', 'above U+10FFFF split f4 | 90 80 80: 1007',
    [frame(OP.text, hex('f4'), false), frame(OP.cont, hex('908080'))], 1007));
  add(failCase('6.9.5', 'message ends inside a code point (f0 9f | 98, fin): 1007',
    [frame(OP.text, hex('f09f'), false), frame(OP.cont, hex('98'))], 1007));
  add(failCase('6.9.6', 'single frame ends inside a code point: 1007', [frame(OP.text, Buffer.concat([Buffer.from('abc'), hex('e282')]))], 1007));
  add({
    id: '6.9.7',
    title: 'fail fast across fragments: bad continuation in fragment 2, never finished',
    async run(l) {
      await l.send([frame(OP.text, Buffer.concat([Buffer.from('x'), hex('f0')]), false), frame(OP.cont, hex('41'), false)]);
      await expectFailure(l, 1007);
    },
  });
  add(echoCase('6.10.1', 'binary messages are not UTF-8 checked', [frame(OP.binary, hex('fffe c0af eda080'))], [binMsg(hex('fffec0afeda080'))]));
}

// ------------------------------------------------------------ 7 close

add({
  id: '7.1.1',
  title: 'close without payload: echoed without payload, TCP closed by the server',
  async run(l) {
    await closeClean(l);
  },
});
add({
  id: '7.1.2',
  title: 'text message then close: echo, then close echo',
  async run(l) {
    await l.send(frame(OP.text, 'Hello World!'));
    await expectEchoes(l, [textMsg('Hello World!')]);
    await closeClean(l, 1000, 'done');
  },
});
add({
  id: '7.1.3',
  title: 'close, then text: the text is ignored',
  async run(l) {
    await l.send([frame(OP.close, closePayload(1000)), frame(OP.text, 'after close')]);
    await expectCloseEcho(l, 1000);
    if (l.side === 'client') {
      await expectSilence(l, 150);
      l.sock.end();
    }
    const f = await l.next(3000);
    if (f !== 'end') throw new Fail(typeof f === 'string' ? 'no TCP close' : `frame ${f.opcode} after close`);
    if (l.events().some((e) => e.type === 'message')) throw new Fail('a message event after the close');
  },
});
add({
  id: '7.1.4',
  title: 'close, then ping: no pong',
  async run(l) {
    await l.send([frame(OP.close, closePayload(1000)), frame(OP.ping, 'after close')]);
    await expectCloseEcho(l, 1000);
    if (l.side === 'client') {
      await expectSilence(l, 150);
      l.sock.end();
    }
    const f = await l.next(3000);
    if (f !== 'end') throw new Fail(typeof f === 'string' ? 'no TCP close' : `frame ${f.opcode} after close`);
  },
});
add({
  id: '7.1.5',
  title: 'close twice: the second is ignored',
  async run(l) {
    await l.send([frame(OP.close, closePayload(1000)), frame(OP.close, closePayload(1001))]);
    await expectCloseEcho(l, 1000);
    if (l.side === 'client') {
      await expectSilence(l, 150);
      l.sock.end();
    }
    const f = await l.next(3000);
    if (f !== 'end') throw new Fail(typeof f === 'string' ? 'no TCP close' : `frame ${f.opcode} after close`);
    const ev = await l.closeEvent();
    if (ev?.code !== 1000) throw new Fail(`close event ${JSON.stringify(ev)}`);
  },
});
add({
  id: '7.1.6',
  title: '256 KiB message, close, ping in one write: clean close (the echo may or may not precede it)',
  async run(l) {
    const big = bytes(256 * 1024, 76);
    await l.send([frame(OP.binary, big), frame(OP.close, closePayload(1000)), frame(OP.ping, 'late')]);
    await expectCloseEcho(l, 1000, true);
    if (l.side === 'client') l.sock.end();
    const f = await l.next(3000);
    if (f !== 'end') throw new Fail(typeof f === 'string' ? 'no TCP close' : `frame ${f.opcode} after close`);
  },
});
add({
  id: '7.2.1',
  title: 'the server closes the TCP connection after the closing handshake without the client closing',
  side: 'server',
  async run(l) {
    await l.send(frame(OP.close, closePayload(1000)));
    await expectCloseEcho(l, 1000);
    // The suite keeps its side open: the server must not wait for our FIN.
    const f = await l.next(3000);
    if (f !== 'end') throw new Fail(typeof f === 'string' ? 'our server did not close the TCP connection' : `frame ${f.opcode}`);
  },
});
add({
  id: '7.2.2',
  title: 'our client closes its side once the server closed the TCP connection',
  side: 'client',
  async run(l) {
    await l.send(frame(OP.close, closePayload(1000)));
    await expectCloseEcho(l, 1000);
    l.sock.end();
    const f = await l.next(3000);
    if (f !== 'end') throw new Fail(typeof f === 'string' ? 'our client did not close its side' : `frame ${f.opcode}`);
    const ev = await l.closeEvent();
    if (ev?.code !== 1000 || ev.remote !== true) throw new Fail(`close event ${JSON.stringify(ev)}`);
  },
});
add(failCase('7.3.1', 'close with a 1-byte payload fails with 1002', [frame(OP.close, Buffer.from([0x03]))], 1002));
add({
  id: '7.3.2',
  title: 'close 1000 with a 123-byte reason (125 bytes in all) is echoed',
  async run(l) {
    await closeClean(l, 1000, 'r'.repeat(123));
  },
});
add(failCase('7.3.3', 'close with a 124-byte reason (126 bytes in all) fails with 1002', [frame(OP.close, closePayload(1000, 'r'.repeat(124)))], 1002));
add(failCase('7.5.1', 'close reason that is not UTF-8 fails with 1007', [frame(OP.close, closePayload(1000, hex('cebae1bdb9cf83cebcceb5eda080656469746564')))], 1007));
add({
  id: '7.5.2',
  title: 'close reason with multi-byte UTF-8 is echoed and reported',
  async run(l) {
    await closeClean(l, 1000, 'κόσμε ✓ 😀');
  },
});
[1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4001, 4999].forEach((code, i) => {
  add({
    id: `7.7.${i + 1}`,
    title: `valid close code ${code} is echoed and reported`,
    async run(l) {
      await closeClean(l, code, `code ${code}`);
    },
  });
});
[0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535].forEach((code, i) => {
  add(failCase(`7.9.${i + 1}`, `invalid close code ${code} fails with 1002`, [frame(OP.close, closePayload(code, 'bad'))], 1002));
});

// ------------------------------------------------------------ 9 large messages

{
  const MiB = 1024 * 1024;
  const n = { text: 0, binary: 0 };
  for (const size of [1, 4, 16]) {
    for (const kind of ['text', 'binary'] as const) {
      for (const frameSize of [0, 16 * 1024]) {
        const k = ++n[kind];
        const op = kind === 'text' ? OP.text : OP.binary;
        add({
          id: `9.${kind === 'text' ? 1 : 2}.${k}`,
          title: `${kind} message of ${size} MiB ${frameSize ? `in ${frameSize / 1024} KiB frames` : 'in one frame'}`,
          timeoutMs: 60000,
          async run(l) {
            const d = kind === 'text' ? txt(size * MiB, size) : bytes(size * MiB, size);
            await l.send(frameSize ? fragments(op, d, frameSize) : [frame(op, d)]);
            await expectEchoes(l, [{ opcode: op, data: d }], [], 50000);
            await closeClean(l, 1000);
          },
        });
      }
    }
  }
  add({
    id: '9.3.1',
    title: 'binary message of 1 MiB written in 1 KiB chops',
    timeoutMs: 60000,
    async run(l) {
      const d = bytes(MiB, 93);
      await l.send(frame(OP.binary, d), 1024);
      await expectEchoes(l, [binMsg(d)], [], 50000);
      await closeClean(l, 1000);
    },
  });
}

export { cases as baseCases, add as addCase, frame, fragments, txt, hex };
