'use strict';
// Statistics, ratios, targets and the printed tables of a benchmark run.
//
// Every ratio is ix-websocket / other on the scenario's own metric (rates:
// higher is better; memory, latency and CPU per message: lower is better), so
// a target reads "ix/ws >= 2x" or "ix/uWS <= 1.25x".

// The variants of ix-websocket, each with its own column and ratios beside
// ix's; the targets are judged on ix (the default mode):
// - ix-inline: inline mode (the engine on the JavaScript thread's loop,
//   IXWS_INLINE=1), in every scenario;
// - ix-borrowed: the default mode with borrowedPayloads (large binary
//   payloads lent to their event, as uWebSockets.js lends them), in the
//   large-message echoes only (it changes nothing below 64 KiB).
const IMPLS = ['ix', 'ix-inline', 'ix-borrowed', 'ws', 'uws'];
const NAMES = { ix: 'ix-websocket', 'ix-inline': 'ix-inline', 'ix-borrowed': 'ix-borrowed', ws: 'ws', uws: 'uWS' };
const OTHERS = ['ws', 'uws'];
const VARIANTS = [
  { impl: 'ix-inline', short: 'inline' },
  { impl: 'ix-borrowed', short: 'borrowed' },
];

function stats(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const q = (p) => {
    const pos = p * (v.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, v.length - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
  };
  return { median: q(0.5), min: v[0], max: v[v.length - 1], q1: q(0.25), q3: q(0.75), n: v.length };
}

// Problems a run must not hide: a sample with any of these is reported and dropped.
function runErrors(r) {
  const e = [];
  for (const k of ['failed', 'lost', 'content_errors', 'len_errors', 'missing']) if (r[k]) e.push(`${k}=${r[k]}`);
  if (r.error) e.push(r.error);
  if (r.server_cpu_error) e.push(r.server_cpu_error);
  if (r.opened !== undefined && r.opened < r.conns) e.push(`opened ${r.opened}/${r.conns}`);
  return e;
}

// What the rest of the machine did during a run's window (bench/clean.js).
function machineOf(s) {
  const o = {};
  for (const k of ['other_cpu', 'machine_busy', 'machine_steal', 'attempts', 'disturbances', 'disturbed']) if (s[k] !== undefined) o[k] = s[k];
  return o;
}

// What else than the server may have set a window's rate, from the load
// generator's readings (null when none, or when they are missing):
// - 'generator': the one generator process used >= 0.9 of a core: it could
//   not offer more load.
// - 'machine': the machine had < 0.25 of a core idle (busy + steal of all
//   `cores`): the server and the generator shared what the rest left them.
//   Then the rate is about 1 / (server + generator CPU per message) times the
//   CPU they got, so the generator's own cost (~2.4 us per 1 KiB echo) hides
//   most of a cheap server's lead and little of a dear one's: uWS at ~3 us
//   per echo is understated far more than ix-websocket at ~8 us. Compare CPU
//   per message there, not the rate.
const GENERATOR_BOUND = 0.9;
const MACHINE_IDLE_MIN = 0.25;
function windowLimit(r, cores) {
  if (!r || typeof r.loadgen_cpu !== 'number') return null;
  if (r.loadgen_cpu >= GENERATOR_BOUND) return 'generator';
  if (cores > 0 && typeof r.machine_busy === 'number' && cores - r.machine_busy - (r.machine_steal || 0) < MACHINE_IDLE_MIN) return 'machine';
  return null;
}

// One line per scenario and server with limited windows, or [].
function limitNotes(rows) {
  const lines = [];
  for (const r of rows) {
    for (const impl of r.impls) {
      const l = r[impl] && r[impl].limited;
      if (!l || (!l.generator && !l.machine)) continue;
      const parts = [];
      if (l.generator) parts.push(`${l.generator} load-generator-bound (the generator used a whole core)`);
      if (l.machine) parts.push(`${l.machine} machine-bound (under ${MACHINE_IDLE_MIN} of a core idle: server and generator shared what other processes left)`);
      lines.push(`  ${r.id} ${NAMES[impl]}: ${parts.join(', ')} of ${l.of} windows: its rate is a floor; its CPU per message still holds`);
    }
  }
  return lines;
}

function passes(ratio, op, target) {
  if (ratio === null || target === null || target === undefined) return null;
  return op === '>=' ? ratio >= target : ratio <= target;
}

// sc: the scenario; samples: { impl: [loadgen or client results] } for the
// implementations that ran it.
// cores: the machine's CPUs (for windowLimit; 0 = unknown).
function summarize(sc, samples, cores = 0) {
  const out = {
    id: sc.id, title: sc.title, metric: sc.metric, unit: sc.unit, better: sc.better, also: sc.also, cpuOf: sc.cpuOf,
    impls: Object.keys(samples),
    errors: [], checks: [],
  };
  const good = {};
  for (const impl of Object.keys(samples)) {
    good[impl] = [];
    for (const s of samples[impl]) {
      const e = runErrors(s);
      if (e.length) out.errors.push(`${NAMES[impl]}: ${e.join(', ')}`);
      else if (typeof s[sc.metric] === 'number') good[impl].push(s);
    }
    out[impl] = {
      stats: stats(good[impl].map((s) => s[sc.metric] * sc.scale)),
      also: sc.also ? stats(good[impl].map((s) => s[sc.also])) : undefined,
      cpu: stats(good[impl].map((s) => s.us_per_msg)),
      runs: samples[impl].map((s) => ({ value: s[sc.metric] * sc.scale, us_per_msg: s.us_per_msg, ...sc.extra(s), ...machineOf(s), limit: windowLimit(s, cores), errors: runErrors(s) })),
    };
    const lim = out[impl].runs.map((x) => x.limit);
    out[impl].limited = { generator: lim.filter((x) => x === 'generator').length, machine: lim.filter((x) => x === 'machine').length, of: lim.length };
  }
  const ratio = (a, b) => (a && b && b.median ? a.median / b.median : null);
  out.ratios = {};
  out.cpuRatios = {};
  out.alsoRatios = {};
  for (const other of OTHERS) {
    if (!out[other] || !out.ix) continue;
    out.ratios[other] = ratio(out.ix.stats, out[other].stats);
    out.cpuRatios[other] = ratio(out.ix.cpu, out[other].cpu);
    if (sc.also) out.alsoRatios[other] = ratio(out.ix.also, out[other].also);
  }
  // variant / other, the same three ratios (no targets): inlineRatios,
  // inlineCpuRatios, inlineAlsoRatios, and borrowed... alike.
  for (const { impl, short } of VARIANTS) {
    const r = (out[`${short}Ratios`] = {});
    const c = (out[`${short}CpuRatios`] = {});
    const a = (out[`${short}AlsoRatios`] = {});
    const v = out[impl];
    for (const other of OTHERS) {
      if (!out[other] || !v) continue;
      r[other] = ratio(v.stats, out[other].stats);
      c[other] = ratio(v.cpu, out[other].cpu);
      if (sc.also) a[other] = ratio(v.also, out[other].also);
    }
  }
  // Kept for readers of older results: the ix/ws ratio of the main metric.
  out.ratio = out.ratios.ws === undefined ? null : out.ratios.ws;
  const op = sc.better === 'higher' ? '>=' : '<=';
  for (const other of OTHERS) {
    const t = sc.targets && sc.targets[other];
    if (t !== undefined && out[other]) {
      const r = out.ratios[other];
      const rounds = roundRatios(out.ix.runs, out[other].runs, 'value');
      out.checks.push({ scenario: sc.id, vs: other, what: sc.metric, unit: sc.unit, op, target: t, ratio: r, pass: passes(r, op, t),
        rounds, roundsMet: rounds.filter((x) => passes(x, op, t)).length });
    }
    const c = sc.cpuTargets && sc.cpuTargets[other];
    if (c !== undefined && out[other]) {
      const r = out.cpuRatios[other];
      const rounds = roundRatios(out.ix.runs, out[other].runs, 'us_per_msg');
      out.checks.push({ scenario: sc.id, vs: other, what: 'server_us_per_msg', unit: 'us/msg', op: '<=', target: c, ratio: r, pass: passes(r, '<=', c),
        rounds, roundsMet: rounds.filter((x) => passes(x, '<=', c)).length });
    }
  }
  return out;
}

// The ratio round by round: the runner measures every server once per round,
// next to each other, so ix's run i pairs with the other's run i. Pairs with
// a failed or missing run are left out. This is the spread a target's verdict
// has within the run, beside the ratio of the medians that decides it.
function roundRatios(ixRuns, otherRuns, key) {
  const out = [];
  for (let i = 0; i < Math.min(ixRuns.length, otherRuns.length); i++) {
    const a = ixRuns[i];
    const b = otherRuns[i];
    if (a.errors.length || b.errors.length) continue;
    if (typeof a[key] !== 'number' || typeof b[key] !== 'number' || !Number.isFinite(a[key]) || !(b[key] > 0)) continue;
    out.push(a[key] / b[key]);
  }
  return out;
}

function fmt(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1e6) return (x / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (x / 1e3).toFixed(1) + 'k';
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
const cell = (s, ran = true) => (!ran ? 'n/a' : s ? `${fmt(s.median)} [${fmt(s.min)}-${fmt(s.max)}]` : 'no valid run');
const rx = (r) => (r === null || r === undefined ? '-' : r.toFixed(2) + 'x');

function checkCells(row, vs, what) {
  const c = row.checks.find((k) => k.vs === vs && (what === 'cpu' ? k.what === 'server_us_per_msg' : k.what !== 'server_us_per_msg'));
  if (!c) return ['', ''];
  return [`${c.op} ${c.target}x`, c.pass === null ? '?' : c.pass ? 'yes' : 'NO'];
}

function table(head, body) {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cols) => cols.map((c, i) => String(c).padEnd(w[i])).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

// The variants any row has a column for.
const variantsIn = (rows) => VARIANTS.filter(({ impl }) => rows.some((r) => r[impl]));

// The main table: the scenario's metric per server, ix/ws and ix/uWS with
// targets; then, per variant any row has (ix-inline, ix-borrowed), its median
// after ix's and its ratios to ws and uWS at the end.
function mainTable(rows) {
  const vs = variantsIn(rows);
  const head = ['scenario', 'metric', 'ix-websocket median [min-max]', ...vs.map((v) => `${v.impl} median [min-max]`),
    'ws median [min-max]', 'uWS median [min-max]', 'ix/ws', 'target', 'ok', 'ix/uWS', 'target', 'ok',
    ...vs.flatMap((v) => [`${v.short}/ws`, `${v.short}/uWS`])];
  const body = [];
  for (const r of rows) {
    const ratiosOf = (v, kind) => r[`${v.short}${kind}`] || {};
    body.push([r.id, r.unit + (r.better === 'lower' ? ' (lower)' : ''), cell(r.ix && r.ix.stats), ...vs.map((v) => cell(r[v.impl] && r[v.impl].stats, !!r[v.impl])),
      cell(r.ws && r.ws.stats, !!r.ws), cell(r.uws && r.uws.stats, !!r.uws), rx(r.ratios.ws), ...checkCells(r, 'ws', 'main'),
      rx(r.ratios.uws), ...checkCells(r, 'uws', 'main'), ...vs.flatMap((v) => [rx(ratiosOf(v, 'Ratios').ws), rx(ratiosOf(v, 'Ratios').uws)])]);
    if (r.alsoRatios && Object.keys(r.alsoRatios).length) {
      body.push([`  (${r.also})`, r.unit + ' (lower)', cell(r.ix.also), ...vs.map((v) => cell(r[v.impl] && r[v.impl].also, !!r[v.impl])),
        cell(r.ws && r.ws.also, !!r.ws), cell(r.uws && r.uws.also, !!r.uws),
        rx(r.alsoRatios.ws), '', '', rx(r.alsoRatios.uws), '', '',
        ...vs.flatMap((v) => [rx(ratiosOf(v, 'AlsoRatios').ws), rx(ratiosOf(v, 'AlsoRatios').uws)])]);
    }
  }
  return table(head, body);
}

// CPU per message of the process under test (the server; the Node client in
// flood-client), over the same measured window as the main metric.
function cpuTable(rows) {
  const vs = variantsIn(rows);
  const head = ['scenario', 'CPU us/msg (lower)', 'ix-websocket', ...vs.map((v) => v.impl), 'ws', 'uWS', 'ix/ws', 'ix/uWS', 'target', 'ok',
    ...vs.flatMap((v) => [`${v.short}/ws`, `${v.short}/uWS`])];
  const body = [];
  for (const r of rows) {
    if (!r.ix || !r.ix.cpu) continue;
    body.push([r.id, r.cpuOf || 'server', cell(r.ix.cpu), ...vs.map((v) => cell(r[v.impl] && r[v.impl].cpu, !!r[v.impl])), cell(r.ws && r.ws.cpu, !!r.ws),
      cell(r.uws && r.uws.cpu, !!r.uws), rx(r.cpuRatios.ws), rx(r.cpuRatios.uws), ...checkCells(r, 'uws', 'cpu'),
      ...vs.flatMap((v) => [rx((r[`${v.short}CpuRatios`] || {}).ws), rx((r[`${v.short}CpuRatios`] || {}).uws)])]);
  }
  return table(head, body);
}

function targetSummary(rows) {
  const checks = rows.flatMap((r) => r.checks);
  const judged = checks.filter((c) => c.pass !== null);
  const met = judged.filter((c) => c.pass);
  const lines = [`targets met: ${met.length} of ${checks.length}` + (judged.length < checks.length ? ` (${checks.length - judged.length} without a valid measurement)` : '')];
  for (const c of checks) {
    const what = c.what === 'server_us_per_msg' ? 'server CPU/msg' : c.unit;
    const spread = c.rounds && c.rounds.length > 1
      ? `; by round ${rx(Math.min(...c.rounds))}-${rx(Math.max(...c.rounds))}, met in ${c.roundsMet} of ${c.rounds.length}` : '';
    lines.push(`  ${c.pass === null ? '?  ' : c.pass ? 'met' : 'MISSED'}  ${c.scenario} ${what} ix/${NAMES[c.vs]} ${rx(c.ratio)} (target ${c.op} ${c.target}x${spread})`);
  }
  return { text: lines.join('\n'), met: met.length, total: checks.length };
}

module.exports = { IMPLS, NAMES, OTHERS, VARIANTS, stats, runErrors, windowLimit, limitNotes, summarize, mainTable, cpuTable, targetSummary, fmt, cell };
