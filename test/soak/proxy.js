// The soak's fault-injecting TCP proxy (a child of soak.js). Every accepted
// connection is forwarded to the server; soak.js tells it which faults to
// apply, to which share of the current (and, for a while, of new)
// connections, for how long:
//   latency  each chunk held back `delay` ms plus up to `jitter` ms (order kept)
//   rate     at most `bps` bytes per second per direction
//   slice    every byte its own write(2) (Nagle off), one per event-loop turn
//   stall    nothing forwarded in one or both directions for the duration
//   reset    TCP RST (socket.resetAndDestroy()) to the client, the server or both
// Data keeps its order in every mode; the proxy never drops, duplicates or
// reorders bytes, so any such effect seen by the endpoints is the engine's.
'use strict';

const net = require('net');
const rpc = require('./rpc.js');

const [listenHost, upHost, upPortArg] = process.argv.slice(2);
let upPort = Number(upPortArg);
const HIGH_WATER = 1 << 20; // bytes queued per direction before reading pauses
const CONNECT_TIMEOUT_MS = 10000;

const conns = new Map(); // id -> Conn
let nextId = 1;
const newRules = []; // { kind, params, prob, until }
const counters = {
  accepted: 0,
  upstreamFailed: 0,
  bytes: 0,
  applied: { latency: 0, rate: 0, slice: 0, stall: 0, reset: 0 },
  resets: { client: 0, server: 0, both: 0 },
};

class Pipe {
  constructor(conn, src, dst, dir) {
    this.conn = conn;
    this.src = src;
    this.dst = dst;
    this.dir = dir; // 'up' (client -> server) or 'down'
    this.q = [];
    this.qBytes = 0;
    this.lastAt = 0;
    this.timer = null;
    this.waitDrain = false;
    this.writing = false; // a sliced byte is on its way
    this.srcEnded = false;
    this.tokens = 0;
    this.tokensAt = Date.now();
    src.on('data', (chunk) => this.push(chunk));
    src.on('end', () => {
      this.srcEnded = true;
      this.pump();
    });
  }

  push(chunk) {
    const f = this.conn.f;
    const now = Date.now();
    let at = now;
    if (f.latencyUntil > now) at = now + f.delay + Math.random() * f.jitter;
    if (at < this.lastAt) at = this.lastAt; // jitter never reorders
    this.lastAt = at;
    this.q.push({ chunk, at, off: 0 });
    this.qBytes += chunk.length;
    if (this.qBytes > HIGH_WATER) this.src.pause();
    this.pump();
  }

  schedule(ms) {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, Math.max(1, Math.ceil(ms)));
  }

  pump() {
    const c = this.conn;
    if (c.dead || this.waitDrain || this.writing) return;
    const f = c.f;
    while (this.q.length) {
      const now = Date.now();
      const stallUntil = this.dir === 'up' ? f.stallUpUntil : f.stallDownUntil;
      if (stallUntil > now) return this.schedule(stallUntil - now);
      const head = this.q[0];
      if (head.at > now) return this.schedule(head.at - now);
      let n = head.chunk.length - head.off;
      if (f.rateUntil > now) {
        this.tokens = Math.min(f.bps, this.tokens + ((now - this.tokensAt) * f.bps) / 1000);
        this.tokensAt = now;
        if (this.tokens < 1) return this.schedule(((1 - this.tokens) * 1000) / f.bps);
        n = Math.min(n, Math.floor(this.tokens));
        this.tokens -= n;
      } else {
        this.tokensAt = now;
        this.tokens = 0;
      }
      const slice = f.sliceUntil > now;
      if (slice) n = 1;
      const piece = head.off === 0 && n === head.chunk.length ? head.chunk : head.chunk.subarray(head.off, head.off + n);
      head.off += n;
      if (head.off === head.chunk.length) this.q.shift();
      this.qBytes -= n;
      counters.bytes += n;
      if (this.qBytes <= HIGH_WATER / 2 && this.src.isPaused()) this.src.resume();
      if (slice) {
        // One byte, and the next only after it was written and the loop
        // turned: Node would coalesce writes queued in the same turn.
        this.writing = true;
        this.dst.write(piece, () => {
          setImmediate(() => {
            this.writing = false;
            this.pump();
          });
        });
        return;
      }
      if (!this.dst.write(piece)) {
        this.waitDrain = true;
        this.dst.once('drain', () => {
          this.waitDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.srcEnded && !this.endSent) {
      this.endSent = true;
      this.dst.end();
    }
  }

  stop() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.q = [];
  }
}

class Conn {
  constructor(down) {
    this.id = nextId++;
    this.down = down;
    this.dead = false;
    this.f = {
      latencyUntil: 0, delay: 0, jitter: 0,
      rateUntil: 0, bps: 0,
      sliceUntil: 0,
      stallUpUntil: 0, stallDownUntil: 0,
    };
    this.graceTimer = null;
    this.up = net.connect({ host: upHost, port: upPort, allowHalfOpen: true });
    this.up.setTimeout(CONNECT_TIMEOUT_MS, () => this.up.destroy(new Error('upstream connect timeout')));
    this.up.once('connect', () => {
      this.up.setTimeout(0);
      this.up.setNoDelay(true);
    });
    down.setNoDelay(true);
    this.pipes = [new Pipe(this, down, this.up, 'up'), new Pipe(this, this.up, down, 'down')];
    const onClose = (side) => (hadError) => this.closed(side, hadError);
    down.on('error', () => {});
    this.up.on('error', () => {
      if (!this.up.remoteAddress && !this.dead) counters.upstreamFailed++;
    });
    down.on('close', onClose('down'));
    this.up.on('close', onClose('up'));
    const now = Date.now();
    for (const r of newRules) if (r.until > now && Math.random() < r.prob) this.apply(r.kind, r.params, r.until - now);
  }

  // One side is gone. An error (RST, timeout, refused) is passed on as a
  // reset. After a clean close (FIN both ways on that side) the other side
  // finishes its own halves (the pipes forward FIN once their queue is
  // flushed), within a bounded time.
  closed(side, hadError) {
    const other = side === 'down' ? this.up : this.down;
    if (hadError) {
      this.kill();
      if (!other.destroyed) other.resetAndDestroy();
      return;
    }
    if (other.destroyed) {
      this.kill();
      return;
    }
    if (!this.graceTimer) {
      this.graceTimer = setTimeout(() => {
        this.kill();
        other.destroy();
      }, 30000);
    }
  }

  kill() {
    if (this.dead) return;
    this.dead = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    for (const p of this.pipes) p.stop();
    conns.delete(this.id);
  }

  apply(kind, params, ms) {
    const until = Date.now() + ms;
    const f = this.f;
    counters.applied[kind]++;
    switch (kind) {
      case 'latency':
        f.latencyUntil = until;
        f.delay = params.delay;
        f.jitter = params.jitter;
        break;
      case 'rate':
        f.rateUntil = until;
        f.bps = params.bps;
        break;
      case 'slice':
        f.sliceUntil = until;
        break;
      case 'stall':
        if (params.dir !== 'down') f.stallUpUntil = until;
        if (params.dir !== 'up') f.stallDownUntil = until;
        break;
      case 'reset':
        counters.resets[params.side]++;
        this.kill();
        if (params.side !== 'server') this.down.resetAndDestroy();
        else this.down.destroy();
        if (params.side !== 'client') this.up.resetAndDestroy();
        else this.up.destroy();
        return;
      default:
        throw new Error(`unknown fault ${kind}`);
    }
    // Wake the pipes when the fault ends (a stall or a delay in progress).
    for (const p of this.pipes) {
      p.pump();
      setTimeout(() => p.pump(), ms + 1).unref();
    }
  }
}

// Half-open on both sides: a FIN is forwarded as a FIN only after the data
// queued before it, and the other direction keeps flowing.
const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (down) => {
  counters.accepted++;
  const c = new Conn(down);
  conns.set(c.id, c);
});
server.on('error', (e) => {
  console.error(`proxy: ${e.message}`);
  process.exit(2);
});

function pick(fraction) {
  const out = [];
  for (const c of conns.values()) if (Math.random() < fraction) out.push(c);
  return out;
}

rpc.serve({
  pid: () => process.pid,
  listen: () =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listenHost, port: 0, backlog: 1024 }, () => resolve(server.address().port));
    }),
  setUpstreamPort: ({ port }) => {
    upPort = port;
    return true;
  },
  // Applies a fault to about `fraction` of the current connections for `ms`
  // (a reset is immediate) and, with `newProb`, to new connections until then.
  fault: ({ kind, params, fraction, ms, newProb }) => {
    const now = Date.now();
    for (let i = newRules.length - 1; i >= 0; i--) if (newRules[i].until <= now) newRules.splice(i, 1);
    const targets = pick(fraction);
    for (const c of targets) c.apply(kind, params || {}, ms || 0);
    if (newProb > 0 && kind !== 'reset') newRules.push({ kind, params, prob: newProb, until: Date.now() + ms });
    return targets.length;
  },
  // Ends every fault now.
  heal: () => {
    newRules.length = 0;
    for (const c of conns.values()) {
      const f = c.f;
      f.latencyUntil = f.rateUntil = f.sliceUntil = f.stallUpUntil = f.stallDownUntil = 0;
      for (const p of c.pipes) p.pump();
    }
    return conns.size;
  },
  stats: () => ({ live: conns.size, ...counters }),
});
