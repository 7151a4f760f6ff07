// 14: what the server's 101 may name (RFC 6455 §4.1, client side). A
// subprotocol or an extension our client did not ask for fails the
// connection: no open event, the start status says why, and the TCP
// connection goes (a close frame is optional when failing, §7.1.7).
import { addCase as add, txt } from './cases';
import { closeClean, expectEchoes, textMsg } from './expect';
import { Case, Fail, Link } from './runner';
import { OP } from '../support/wire';

/** Our client must refuse the 101; errorStr must match `why`. */
async function expectRefused(l: Link, why: RegExp): Promise<void> {
  const st = await l.startStatus!;
  if (st.success) throw new Fail('our client accepted the handshake');
  if (!why.test(st.errorStr)) throw new Fail(`errorStr "${st.errorStr}" does not say ${why}`);
  const f = await l.next(3000);
  if (f === 'timeout') throw new Fail('our client kept the TCP connection open');
  if (f !== 'end' && f.opcode !== OP.close) throw new Fail(`frame ${f.opcode} after a refused handshake`);
  if (l.events().some((e) => e.type === 'open')) throw new Fail('open event for a refused handshake');
}

const cases: Case[] = [
  {
    id: '14.1',
    title: 'unrequested subprotocol: the 101 names one our client did not offer (it offered "chat")',
    side: 'client',
    handshake: true,
    clientOptions: { protocols: ['chat'] },
    responseHeaders: ['Sec-WebSocket-Protocol: superchat'],
    run: (l) => expectRefused(l, /subprotocol that was not offered: superchat/),
  },
  {
    id: '14.2',
    title: 'unrequested subprotocol: the 101 names one although our client offered none',
    side: 'client',
    handshake: true,
    responseHeaders: ['Sec-WebSocket-Protocol: chat'],
    run: (l) => expectRefused(l, /none was offered: chat/),
  },
  {
    id: '14.3',
    title: 'unrequested subprotocol: the 101 names two (it may choose one only)',
    side: 'client',
    handshake: true,
    clientOptions: { protocols: ['a', 'b'] },
    responseHeaders: ['Sec-WebSocket-Protocol: a', 'Sec-WebSocket-Protocol: b'],
    run: (l) => expectRefused(l, /not offered: a, b/),
  },
  {
    id: '14.4',
    title: 'unrequested extension: the 101 names x-never-offered',
    side: 'client',
    handshake: true,
    respond: () => 'x-never-offered',
    run: (l) => expectRefused(l, /x-never-offered/),
  },
  {
    id: '14.5',
    title: 'the 101 names the offered subprotocol: open, with it in the start status and the open event',
    side: 'client',
    clientOptions: { protocols: ['v2.chat', 'v1.chat'] },
    responseHeaders: ['Sec-WebSocket-Protocol: v1.chat'],
    async run(l) {
      if (l.headers['sec-websocket-protocol'] !== 'v2.chat, v1.chat')
        throw new Fail(`request offered "${l.headers['sec-websocket-protocol']}"`);
      const st = await l.startStatus!;
      if (st.protocol !== 'v1.chat') throw new Fail(`start status protocol "${st.protocol}"`);
      const open = l.events().find((e) => e.type === 'open');
      if (!open || open.ctx.protocol !== 'v1.chat') throw new Fail(`open event protocol "${open?.ctx.protocol}"`);
      await l.send({ opcode: OP.text, payload: txt(20) });
      await expectEchoes(l, [textMsg(txt(20))], []);
      await closeClean(l, 1000);
    },
  },
  {
    id: '14.6',
    title: 'no subprotocol in the 101 to an offer: open with protocol ""',
    side: 'client',
    clientOptions: { protocols: ['chat'] },
    async run(l) {
      const st = await l.startStatus!;
      if (st.protocol !== '') throw new Fail(`start status protocol "${st.protocol}"`);
      await closeClean(l, 1000);
    },
  },
];
for (const c of cases) add(c);
