// Event delivery must leave the event loop its turns: while a flood of
// events is being delivered to a Node client, the application's timers still
// fire on time (delivery goes in slices with the loop's other phases in
// between, instead of one slice after another inside one callback).
import { spawn } from 'child_process';
import * as path from 'path';
import { afterEach, describe, expect, it } from 'vitest';
import { websocketClientStart } from '../lib/index';
import { defer, newClient, runCleanup, until } from './support';

afterEach(runCleanup);

// A raw WebSocket server in a child process: answers one upgrade, then
// writes `count` small unmasked binary frames as fast as its socket takes
// them (prebuilt chunks, so the producer is never the slow side), each frame
// carrying its sequence number in its first 4 bytes.
const floodServer = `
const net = require('net');
const { requestKey, switchingProtocols } = require(${JSON.stringify(path.join(__dirname, 'support', 'handshake.cjs'))});
const [count, size] = process.argv.slice(1).map(Number);
const srv = net.createServer((s) => {
  s.on('error', () => {});
  let head = '';
  s.on('data', function onData(d) {
    head += d.toString('latin1');
    if (!head.includes('\\r\\n\\r\\n')) return;
    s.off('data', onData);
    s.write(switchingProtocols(requestKey(head)));
    flood(s);
  });
});
function flood(s) {
  const per = 512;
  const frameLen = 2 + size;
  let seq = 0;
  const next = () => {
    while (seq < count) {
      const n = Math.min(per, count - seq);
      const b = Buffer.alloc(n * frameLen, 0x62);
      for (let i = 0; i < n; i++) {
        const o = i * frameLen;
        b[o] = 0x82; b[o + 1] = size;
        b.writeUInt32BE(seq++, o + 2);
      }
      if (!s.write(b)) return s.once('drain', next);
    }
    console.log('written');
  };
  next();
}
srv.listen(0, '127.0.0.1', () => console.log('port ' + srv.address().port));
process.stdin.on('data', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
`;

describe('fair delivery', () => {
  it('a timer fires on time while a flood of events is delivered to a client', async () => {
    // Enough that the flood outlasts the timer by far even at ~1.5M events/s.
    const count = 2_000_000;
    const size = 32;
    const child = spawn(process.execPath, ['-e', floodServer, String(count), String(size)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    defer(() => child.kill());
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const port = await until(() => /port (\d+)/.exec(out)?.[1], 10_000, 'the flood server port');

    let received = 0;
    let firstAt = 0;
    let expected = 0;
    let outOfOrder = 0;
    let timerSetAt = 0;
    let atTimerSet = 0;
    const timer = { firedAt: 0, receivedThen: 0 };
    const timeoutMs = 500;
    const c = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      method: (_s, _c, type, ctx) => {
        if (type !== 'message') return;
        const seq = (ctx.data as Buffer).readUInt32BE(0);
        if (seq !== expected) outOfOrder++;
        expected = seq + 1;
        if (received++ === 0) firstAt = Date.now();
        // Arm the timer once the flood is well under way (from inside
        // delivery, as an application reacting to a message would).
        if (received === 20_000) {
          timerSetAt = Date.now();
          atTimerSet = received;
          setTimeout(() => {
            timer.firedAt = Date.now();
            timer.receivedThen = received;
          }, timeoutMs);
        }
      },
    });
    const st = await websocketClientStart(c);
    expect(st.success).toBe(true);

    await until(() => (received >= count || outOfOrder > 0 ? true : undefined), 60_000, `${count} messages (got ${received})`);
    const allMs = Date.now() - firstAt;
    await until(() => (timer.firedAt > 0 ? true : undefined), 10_000, 'the timer');
    child.stdin.write('x');

    const late = timer.firedAt - timerSetAt - timeoutMs;
    const during = timer.receivedThen - atTimerSet;
    console.log(
      `fair delivery: ${count} x ${size} B; timer of ${timeoutMs} ms fired ${late} ms late, ` +
        `${during} messages delivered while it was pending, ${count - timer.receivedThen} after; all in ~${allMs} ms`,
    );
    expect(outOfOrder).toBe(0);
    expect(received).toBe(count);
    // The flood was still being delivered when the timer fired: the loop
    // really was busy with events the whole time (otherwise this proves
    // nothing), and most of the flood (> 200k events) came after.
    expect(late).toBeLessThan(300);
    expect(during).toBeGreaterThan(10_000);
    expect(count - timer.receivedThen).toBeGreaterThan(200_000);
  }, 120_000);
});
