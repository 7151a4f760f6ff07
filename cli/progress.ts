// A one-line progress bar redrawn in place on stderr (carriage return, no
// newline until done).

const MiB = 1024 * 1024;

/** `[##########----------]  50%  32.0/64.0 MiB  12.5 MiB/s` for `done` of `total` bytes after `ms`. */
export function renderBar(done: number, total: number, ms: number, width = 30): string {
  const frac = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const filled = Math.round(frac * width);
  const pct = `${Math.floor(frac * 100)}`.padStart(3);
  const rate = ms > 0 ? done / MiB / (ms / 1000) : 0;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}%  ${(done / MiB).toFixed(1)}/${(total / MiB).toFixed(1)} MiB  ${rate.toFixed(1)} MiB/s`;
}

export class ProgressBar {
  private readonly t0 = Date.now();
  private last = '';

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly total: number,
  ) {}

  update(done: number): void {
    const line = renderBar(done, this.total, Date.now() - this.t0);
    if (line === this.last) return;
    this.last = line;
    this.out.write(`\r${line}`);
  }

  /** Draws the final state and ends the line. */
  finish(done: number): void {
    this.update(done);
    this.out.write('\n');
  }
}
