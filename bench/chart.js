'use strict';
// Writes the benchmark chart as a hand-made SVG: one horizontal bar per
// scenario showing how many times better ix-websocket is than ws (ix/ws for
// rates, ws/ix for memory and latency), on a log scale centred on 1x, with
// the issue's target marked on each row.
const fs = require('fs');

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function writeChart(file, report) {
  const rows = report.scenarios.filter((r) => r.advantage !== null);
  const W = 900;
  const left = 260; // labels
  const right = 120; // values
  const top = 70;
  const rowH = 34;
  const H = top + rows.length * rowH + 60;
  const plotW = W - left - right;
  const minX = 0.125;
  const maxX = 16;
  const lx = (v) => left + ((Math.log2(Math.min(Math.max(v, minX), maxX)) - Math.log2(minX)) / (Math.log2(maxX) - Math.log2(minX))) * plotW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">ix-websocket vs ws ${esc(report.machine.ws)}: times better (log scale; 1x = same)</text>`);
  const m = report.machine;
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${esc(`${m.cpu}, ${m.cores} cores, node ${m.node}, ${report.rounds} rounds, ${report.date.slice(0, 10)}; bars: median ratio, tick: target`)}</text>`);
  for (const t of [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]) {
    const x = lx(t);
    out.push(`<line x1="${x}" y1="${top - 8}" x2="${x}" y2="${top + rows.length * rowH}" stroke="${t === 1 ? '#333' : '#ddd'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${x}" y="${top + rows.length * rowH + 18}" text-anchor="middle" fill="#555">${t}x</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const a = r.advantage;
    const x1 = lx(1);
    const x2 = lx(a);
    const targetAdv = r.target === null ? null : r.better === 'higher' ? r.target : 1 / r.target;
    const color = r.pass === null ? '#7f8c8d' : r.pass ? '#2e8b57' : '#c0392b';
    const label = `${r.id}${r.better === 'lower' ? ` (${r.metric === 'rss_per_conn' ? 'memory' : r.metric})` : ''}`;
    out.push(`<text x="${left - 10}" y="${y + rowH / 2 + 4}" text-anchor="end">${esc(label)}</text>`);
    out.push(`<rect x="${Math.min(x1, x2)}" y="${y + 7}" width="${Math.max(1, Math.abs(x2 - x1))}" height="${rowH - 14}" fill="${color}"/>`);
    if (targetAdv !== null) {
      const tx = lx(targetAdv);
      out.push(`<line x1="${tx}" y1="${y + 3}" x2="${tx}" y2="${y + rowH - 3}" stroke="#000" stroke-width="2.5" stroke-dasharray="4 2"/>`);
    }
    const txt = `${a.toFixed(2)}x` + (targetAdv !== null ? ` (target ${targetAdv}x)` : '');
    out.push(`<text x="${W - right + 8}" y="${y + rowH / 2 + 4}">${esc(txt)}</text>`);
  });
  out.push(`<text x="${left}" y="${H - 14}" fill="#555">green: target met, red: missed, grey: no target. memory and latency bars are ws/ix.</text>`);
  out.push('</svg>');
  fs.writeFileSync(file, out.join('\n') + '\n');
}

module.exports = { writeChart };
