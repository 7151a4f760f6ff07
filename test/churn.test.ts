// The light version of bench/churn.js: connect/exchange/close cycles against
// one server must leave file descriptors, threads and refs as they were.
import { createRequire } from 'module';
import { describe, expect, it } from 'vitest';

const { churn } = createRequire(__filename)('../bench/churn.js') as {
  churn: (o: { cycles: number; concurrency: number; settleMs: number; twice?: boolean }) => Promise<any>;
};

describe('connect/disconnect churn', () => {
  it('2,000 cycles: fds back to baseline, same threads, no ref growth', async () => {
    const r = await churn({ cycles: 2000, concurrency: 8, settleMs: 1000, twice: true });
    const mib = (n: number) => (n / 1048576).toFixed(1);
    console.log(
      `churn ${r.cycles} x2 in ${r.elapsedMs} ms: fds ${r.before.fds}/${r.after.fds}/${r.again.fds}, ` +
        `threads ${r.before.threads}/${r.after.threads}/${r.again.threads}, ` +
        `rss ${mib(r.before.rss)}/${mib(r.after.rss)}/${mib(r.again.rss)} MiB`,
    );
    expect(r.pendingCycles).toBe(0);
    expect(Math.abs(r.after.fds - r.before.fds)).toBeLessThanOrEqual(3);
    expect(Math.abs(r.again.fds - r.before.fds)).toBeLessThanOrEqual(3);
    expect(r.after.threads).toBe(r.before.threads);
    expect(r.again.threads).toBe(r.before.threads);
    // Every connection ref was released and client refs start over at 1.
    expect(r.clientsLeft).toEqual([]);
    expect(r.nextClientRef).toBe(1);
    // The second run adds (next to) nothing: what a leak would keep adding.
    expect(r.again.rss - r.after.rss).toBeLessThan(16 * 1048576);
  }, 120_000);
});
