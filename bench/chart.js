'use strict';
// Writes the benchmark chart as a hand-made SVG: for each scenario, one bar
// per other server (ws, uWebSockets.js) showing how many times better
// ix-websocket is (ix/other for rates, other/ix for memory, latency and CPU per
// message), on a log scale centred on 1x, with the target marked on each bar;
// a second block does the same for CPU per message.
const fs = require('fs');

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const OTHER_NAMES = { ws: 'ws', uws: 'uWS' };

// Bars of one block: { label, vs, advantage, targetAdvantage, pass }.
function bars(report) {
  const main = [];
  const cpu = [];
  for (const r of report.scenarios) {
    for (const vs of ['ws', 'uws']) {
      const ratio = r.ratios && r.ratios[vs];
      if (ratio === null || ratio === undefined) continue;
      const check = r.checks.find((c) => c.vs === vs && c.what !== 'server_us_per_msg');
      const label = `${r.id}${r.better === 'lower' ? ` (${r.metric === 'rss_per_conn' ? 'memory' : r.metric})` : ''}`;
      main.push({
        label, vs, advantage: r.better === 'higher' ? ratio : 1 / ratio,
        targetAdvantage: check ? (check.op === '>=' ? check.target : 1 / check.target) : null, pass: check ? check.pass : null,
      });
    }
    for (const vs of ['ws', 'uws']) {
      const ratio = r.cpuRatios && r.cpuRatios[vs];
      if (ratio === null || ratio === undefined) continue;
      const check = r.checks.find((c) => c.vs === vs && c.what === 'server_us_per_msg');
      cpu.push({
        label: `${r.id}${r.cpuOf === 'client' ? ' (client)' : ''}`, vs, advantage: 1 / ratio,
        targetAdvantage: check ? 1 / check.target : null, pass: check ? check.pass : null,
      });
    }
  }
  return { main, cpu };
}

function writeChart(file, report) {
  const { main, cpu } = bars(report);
  const W = 960;
  const left = 250; // labels
  const right = 150; // values
  const barH = 16;
  const gap = 6;
  const blockTitle = 34;
  const plotW = W - left - right;
  const minX = 1 / 16;
  const maxX = 32;
  const ticks = [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16, 32];
  const lx = (v) => left + ((Math.log2(Math.min(Math.max(v, minX), maxX)) - Math.log2(minX)) / (Math.log2(maxX) - Math.log2(minX))) * plotW;
  const blockH = (n) => blockTitle + n * (barH + gap) + 24;
  const top = 64;
  const H = top + blockH(main.length) + (cpu.length ? blockH(cpu.length) : 0) + 40;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  const m = report.machine;
  const others = report.servers.filter((s) => s === 'ws' || s === 'uws').map((s) => (s === 'ws' ? `ws ${m.ws}` : 'uWebSockets.js 20.30')).join(' and ');
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${esc(`ix-websocket vs ${others}: times better (log scale; 1x = same)`)}</text>`);
  out.push(`<text x="${W / 2}" y="42" text-anchor="middle" fill="#555">${esc(`${m.cpu}, ${m.nproc || m.cores} cores, Linux ${m.kernel || ''}, node ${m.node}, ${report.rounds} round(s), ${report.date.slice(0, 16).replace('T', ' ')} UTC; bar: ratio of medians, dashed tick: target`)}</text>`);

  const block = (y0, title, rows) => {
    out.push(`<text x="${left}" y="${y0 + 20}" font-size="14" font-weight="bold">${esc(title)}</text>`);
    const y1 = y0 + blockTitle;
    const yEnd = y1 + rows.length * (barH + gap);
    for (const t of ticks) {
      const x = lx(t);
      out.push(`<line x1="${x}" y1="${y1 - 4}" x2="${x}" y2="${yEnd}" stroke="${t === 1 ? '#333' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
      out.push(`<text x="${x}" y="${yEnd + 14}" text-anchor="middle" fill="#555">${t < 1 ? `1/${1 / t}` : t}x</text>`);
    }
    rows.forEach((b, i) => {
      const y = y1 + i * (barH + gap);
      const x1 = lx(1);
      const x2 = lx(b.advantage);
      const color = b.pass === null ? (b.vs === 'ws' ? '#95a5a6' : '#7f8c8d') : b.pass ? '#2e8b57' : '#c0392b';
      const first = i === 0 || rows[i - 1].label !== b.label;
      if (first) out.push(`<text x="${left - 54}" y="${y + barH - 3}" text-anchor="end">${esc(b.label)}</text>`);
      out.push(`<text x="${left - 8}" y="${y + barH - 3}" text-anchor="end" fill="#555">${esc(`vs ${OTHER_NAMES[b.vs]}`)}</text>`);
      out.push(`<rect x="${Math.min(x1, x2)}" y="${y}" width="${Math.max(1, Math.abs(x2 - x1))}" height="${barH}" fill="${color}"${b.vs === 'uws' ? ' fill-opacity="0.75"' : ''}/>`);
      if (b.targetAdvantage !== null) {
        const tx = lx(b.targetAdvantage);
        out.push(`<line x1="${tx}" y1="${y - 2}" x2="${tx}" y2="${y + barH + 2}" stroke="#000" stroke-width="2.5" stroke-dasharray="4 2"/>`);
      }
      const txt = `${b.advantage.toFixed(2)}x` + (b.targetAdvantage !== null ? ` (target ${+b.targetAdvantage.toFixed(2)}x)` : '');
      out.push(`<text x="${W - right + 8}" y="${y + barH - 3}">${esc(txt)}</text>`);
    });
    return y0 + blockH(rows.length);
  };
  let y = block(top, 'throughput, memory, latency (ix/other; memory and latency: other/ix)', main);
  if (cpu.length) y = block(y, 'CPU per message (other/ix: how many times less CPU ix uses)', cpu);
  out.push(`<text x="${left}" y="${H - 14}" fill="#555">green: target met, red: missed, grey: no target. ${esc(report.partial ? 'partial run (--quick or --only).' : '')}</text>`);
  out.push('</svg>');
  fs.writeFileSync(file, out.join('\n') + '\n');
}

module.exports = { writeChart };
