// The conformance cases against our server, with permessage-deflate enabled
// (every case negotiates it, echoes come back compressed) and disabled
// (every offer must be declined).
import { expect, test } from 'vitest';
import { baseCases } from './cases';
import './deflate-cases';
import { report, runCases, serverTarget } from './runner';

for (const deflate of [true, false]) {
  test(`our server, permessage-deflate ${deflate ? 'enabled' : 'disabled'}`, async () => {
    const target = serverTarget(deflate);
    try {
      const results = await runCases(target, baseCases, { side: 'server', deflate });
      report(deflate ? 'server (deflate)' : 'server', results, (r) => r.id.startsWith('9.'));
      expect(results.filter((r) => r.verdict === 'FAILED').map((r) => `${r.id} ${r.title}: ${r.why.join('; ')}`)).toEqual([]);
    } finally {
      await target.dispose();
    }
  }, 900_000);
}
