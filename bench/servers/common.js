'use strict';
// Shared plumbing of the benchmark servers: arguments, and the IPC channel
// the runner uses to ask for memory and CPU figures. Each server script is
// started by bench/run.js as its own process (fork), once per implementation.

function parseArgs(argv) {
  const args = { role: argv[0] };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) continue;
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) args[key] = true;
    else {
      args[key] = next;
      i++;
    }
  }
  return args;
}

function send(msg) {
  if (process.send) process.send(msg);
  else console.log(JSON.stringify(msg));
}

function memory() {
  // Twice: the first pass can leave weak/finalizable objects for the second.
  if (global.gc) {
    global.gc();
    global.gc();
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

// Answers the runner's requests; `stop` is the server's own shutdown.
function serveIpc(stop, extra = {}) {
  process.on('message', (msg) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.cmd === 'mem') send({ type: 'mem', id: msg.id, ...memory(), ...(extra.mem ? extra.mem() : {}) });
    else if (msg.cmd === 'cpu') send({ type: 'cpu', id: msg.id, ...process.cpuUsage(), t: Number(process.hrtime.bigint()) / 1e9 });
    else if (msg.cmd === 'stop') {
      stop();
      setTimeout(() => process.exit(0), 200).unref();
    }
  });
  // The runner went away: do not linger.
  process.on('disconnect', () => process.exit(0));
}

// The machine's busy and steal CPU seconds so far (first line of /proc/stat,
// USER_HZ = 100 on Linux), or null.
function machineCpu() {
  try {
    const f = require('fs').readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    if (f[0] !== 'cpu' || f.length < 9) return null;
    const v = f.slice(1, 9).map(Number);
    return { busy: (v[0] + v[1] + v[2] + v[5] + v[6]) / 100, steal: v[7] / 100 };
  } catch (_) {
    return null;
  }
}

// A flood receiver's measurement: counts from the first message, skips
// `warmup` seconds, then measures `duration` seconds and reports.
function floodMeter(args, done) {
  const warmup = Number(args.warmup || 0.5);
  const duration = Number(args.duration || 2);
  let msgs = 0;
  let bytes = 0;
  let started = false;
  return {
    onMessage(len) {
      msgs++;
      bytes += len;
      if (started) return;
      started = true;
      setTimeout(() => {
        const m0 = msgs, b0 = bytes, c0 = process.cpuUsage(), t0 = process.hrtime.bigint(), k0 = machineCpu();
        setTimeout(() => {
          const secs = Number(process.hrtime.bigint() - t0) / 1e9;
          const c = process.cpuUsage(c0);
          const k1 = machineCpu();
          done({
            type: 'flood', seconds: secs, msgs: msgs - m0, msgs_per_s: (msgs - m0) / secs,
            bytes_per_s: (bytes - b0) / secs, cpu: (c.user + c.system) / 1e6 / secs,
            ...(k0 && k1 ? { machine_busy: (k1.busy - k0.busy) / secs, machine_steal: (k1.steal - k0.steal) / secs } : {}),
          });
        }, duration * 1000);
      }, warmup * 1000);
    },
  };
}

module.exports = { parseArgs, send, memory, serveIpc, floodMeter, machineCpu };
