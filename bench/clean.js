'use strict';
// Windows measured while something else used the machine.
//
// The bench shares its machine: other processes (a build, a test suite) may
// run while a window is measured, and on a virtual machine the hypervisor may
// take CPU away (steal time). Either leaves the server and the load generator
// less than the machine, and not by the same amount for every server: when a
// server and its generator together need more CPU than is left, they end up
// sharing what is left, and the rate falls to 1 / (server + generator CPU per
// message). That hides most of a fast server's lead (uWebSockets.js: ~3 us of
// server CPU per echo plus ~2 us of generator CPU) and little of a slow one's.
// So every window's result carries what the rest of the machine did
// (`other_cpu`: the machine's busy time minus the server's and the
// generator's; `machine_steal`), and a window where either passed `limit` of
// a core is measured again after a pause (pauseMs, then twice that, ...: a
// build outlasts a short wait), up to `tries` times in all. When no try is
// clean, the least disturbed one is kept and marked.

const LIMIT = 0.15; // of one core
// IXWS_BENCH_TRIES=1 takes every window as it comes (the harness before this).
const TRIES = Math.max(1, Number.parseInt(process.env.IXWS_BENCH_TRIES || '', 10) || 3);
const PAUSE_MS = 2000;

// How much of a core the rest of the machine took during a result's window,
// or null when the result does not say (an old load generator, no /proc).
function disturbance(r) {
  if (!r || typeof r !== 'object') return null;
  const parts = [r.other_cpu, r.machine_steal].filter((x) => typeof x === 'number' && Number.isFinite(x));
  return parts.length ? Math.max(...parts) : null;
}

// attempt(): Promise of one result. Returns the first result whose
// disturbance is within limit (or unknown), with `attempts` (how many windows
// were measured) and `disturbances` (each window's, in order); when none is,
// the least disturbed, also marked `disturbed: true`.
async function measureUndisturbed(attempt, { tries = TRIES, limit = LIMIT, pauseMs = PAUSE_MS, sleep, onRetry } = {}) {
  const wait = sleep || ((ms) => new Promise((r) => setTimeout(r, ms)));
  const seen = [];
  let best = null;
  let bestD = Infinity;
  for (let i = 0; i < tries; i++) {
    const r = await attempt();
    const d = disturbance(r);
    seen.push(d);
    if (d === null || d <= limit) return Object.assign(r, { attempts: i + 1, disturbances: seen });
    if (d < bestD) {
      best = r;
      bestD = d;
    }
    if (i + 1 < tries) {
      if (onRetry) onRetry(d, i + 1);
      await wait(pauseMs * (i + 1));
    }
  }
  return Object.assign(best, { attempts: tries, disturbances: seen, disturbed: true });
}

module.exports = { LIMIT, TRIES, PAUSE_MS, disturbance, measureUndisturbed };
