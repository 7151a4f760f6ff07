// Type-checks the suites, lib/ and test/types/consumer.ts (the public API as
// a TypeScript user writes it, with the misuse it must refuse) with tsc in
// strict mode (tsconfig.test.json). vitest strips types without checking
// them, so without this a wrong signature in the published typings, or a
// suite calling the API in a way TypeScript refuses, would go unnoticed.
import { spawnSync } from 'child_process';
import * as path from 'path';
import { expect, test } from 'vitest';
import { root } from '../lib/binding';

test('tsc --noEmit over lib/ and test/ (tsconfig.test.json) reports no error', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.test.json'), '--pretty', 'false'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 110_000,
  });
  const errors = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /error TS\d+/.test(l));
  expect(errors).toEqual([]);
  expect(r.status).toBe(0);
}, 120_000);
