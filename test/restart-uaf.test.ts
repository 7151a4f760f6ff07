// Issue 11, defect 1: stop() then start() at once used to leave the new
// listener without the hold that keeps its server alive (the old listener's
// close callback dropped the one shared hold), so the clear() that followed
// freed the server before the new listener's close callback ran: a use after
// free. The sequence runs in a child process with glibc's per-thread cache
// off and freed memory overwritten (MALLOC_PERTURB_), where the bug crashes
// (SIGSEGV) every run; fixed, the child exits 0.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { describe, expect, test } from 'vitest';
import { root } from '../lib/binding';

const fixture = path.join(__dirname, 'fixtures', 'restart-stop-start.js');

describe('server stop + start + clear', () => {
  test('100 rounds of stop, immediate start, clear leave the process alive and exit 0', () => {
    for (let run = 0; run < 3; run++) {
      const r = spawnSync(process.execPath, [fixture, root, '100'], {
        cwd: root,
        env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0', MALLOC_PERTURB_: '65' },
        encoding: 'utf8',
        timeout: 15_000,
      });
      expect({ run, signal: r.signal, status: r.status, stderr: r.stderr }).toEqual({
        run,
        signal: null,
        status: 0,
        stderr: '',
      });
      expect(r.stdout).toContain('rounds done 100');
    }
  }, 60_000);
});
