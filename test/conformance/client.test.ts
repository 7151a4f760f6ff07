// The conformance cases against our client: a fake server on `net` answers
// the handshake itself, then writes exact frames; our client echoes. Run with
// permessage-deflate offered (the fake server accepts it) and not offered.
import { expect, test } from 'vitest';
import { baseCases } from './cases';
import './deflate-cases';
import './handshake-cases';
import { clientTarget, report, runCases } from './runner';

for (const deflate of [true, false]) {
  test(`our client, permessage-deflate ${deflate ? 'offered' : 'not offered'}`, async () => {
    const target = clientTarget(deflate);
    try {
      const results = await runCases(target, baseCases, { side: 'client', deflate });
      report(deflate ? 'client (deflate)' : 'client', results, (r) => r.id.startsWith('9.'));
      expect(results.filter((r) => r.verdict === 'FAILED').map((r) => `${r.id} ${r.title}: ${r.why.join('; ')}`)).toEqual([]);
    } finally {
      await target.dispose();
    }
  }, 900_000);
}
