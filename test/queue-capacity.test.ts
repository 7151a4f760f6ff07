// The event queue's budget (64 MiB per environment, then the connections
// that push stop being read) counts the memory an event holds, not the size
// of its message. A peer with permessage-deflate can send messages that
// inflate to nothing yet were assembled in a 16 KiB string (800 empty stored
// blocks: 4 KB on the wire); counted at their size (0), a flood of them was
// read on and on while JavaScript was busy (the review's repro held 2.8 GiB).
// Here the JavaScript thread sleeps for 3 s inside the first message's
// handler while another process floods 150 MB of them: with the budget
// holding, the server stops reading after ~4,000 messages (64 MiB of
// strings) and the flooder's writes stall at ~20 MB; counted by size, all
// 150 MB (37,000 strings of 16 KiB, 600 MiB) were taken in.
import { spawn } from 'child_process';
import * as path from 'path';
import { afterEach, expect, test } from 'vitest';
import { defer, runCleanup, startServer } from './support';

afterEach(runCleanup);

const FLOODER = `
const net = require('net');
const crypto = require('crypto');
const { encodeFrame } = require(${JSON.stringify(path.join(__dirname, 'support', 'frames.cjs'))});
const [port, mb] = [Number(process.argv[1]), Number(process.argv[2])];
const s = net.connect(port, '127.0.0.1', () => {
  const key = crypto.randomBytes(16).toString('base64');
  s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
    'Sec-WebSocket-Key: ' + key + '\\r\\nSec-WebSocket-Version: 13\\r\\n' +
    'Sec-WebSocket-Extensions: permessage-deflate\\r\\n\\r\\n');
});
let head = '';
s.on('data', function onHead(d) {
  head += d.toString('latin1');
  if (!head.includes('\\r\\n\\r\\n')) return;
  s.off('data', onHead);
  if (!/^HTTP\\/1\\.1 101/.test(head) || !/permessage-deflate/i.test(head)) { console.log('no deflate'); process.exit(2); }
  const stored = [];
  for (let i = 0; i < 800; i++) stored.push(Buffer.from([0, 0, 0, 0xff, 0xff]));
  stored.push(Buffer.from([0]));
  const one = encodeFrame({ opcode: 2, rsv: 0x40, payload: Buffer.concat(stored) });
  const chunk = Buffer.concat(Array(64).fill(one));
  let sent = 0;
  const total = mb * 1048576;
  const write = () => {
    while (sent < total) {
      sent += chunk.length;
      if (!s.write(chunk)) return void s.once('drain', write);
    }
    console.log('sent ' + sent);
  };
  console.log('flooding');
  setInterval(() => console.log('progress ' + Date.now() + ' ' + sent), 100);
  write();
});
s.on('error', () => {});
setTimeout(() => process.exit(0), 20000);
`;

test('tiny compressed messages queued behind a busy JavaScript thread stay within the queue budget', async () => {
  let delivered = 0;
  let wokeAt = 0;
  const srv = startServer({
    method: (_s, _c, type) => {
      if (type !== 'message') return;
      if (delivered++ === 0) {
        // The JavaScript thread sleeps; the IO thread reads until the queue
        // is over its budget.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000);
        wokeAt = Date.now();
      }
    },
  });
  const child = spawn(process.execPath, ['-e', FLOODER, String(srv.port), '150'], { stdio: ['ignore', 'pipe', 'inherit'] });
  defer(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const t0 = Date.now();
  while ((wokeAt === 0 || delivered < 5000) && !out.includes('no deflate') && Date.now() - t0 < 30000) {
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(out).not.toContain('no deflate');
  expect(wokeAt).toBeGreaterThan(0);
  // What the flooder had written when JavaScript woke up (its progress lines).
  const progress = out
    .split('\n')
    .filter((l) => l.startsWith('progress '))
    .map((l) => l.split(' ').map(Number));
  const sent = Math.max(0, ...progress.filter((p) => p[1] <= wokeAt).map((p) => p[2]));
  const MB = 1048576;
  expect(sent, `${(sent / MB).toFixed(1)} MB taken in while JavaScript slept`).toBeLessThan(60 * MB);
  // Then the flood is delivered, the connection read again.
  expect(delivered).toBeGreaterThanOrEqual(5000);
}, 60000);
