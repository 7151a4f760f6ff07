// Compiles the package (tsconfig.json: lib/, cli/) into a build-* folder of
// its own, as `npm pack` would ship it under dist/, for suites that run the
// compiled output in child processes. build-* is ignored by git and sits in
// the package root, so the compiled lib/binding.js still finds package.json
// and build/Release above it.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { root } from '../../lib/binding';

/** Runs tsc into `outDir` (no declarations, no source maps); throws with tsc's output on failure. */
export function compilePackage(outDir: string): void {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(
    process.execPath,
    [tsc, '-p', path.join(root, 'tsconfig.json'), '--outDir', outDir, '--declaration', 'false', '--sourceMap', 'false'],
    { cwd: root, encoding: 'utf8', timeout: 110_000 },
  );
  if (r.status !== 0) throw new Error(`tsc failed (${r.status ?? r.signal}): ${r.stdout}${r.stderr}`);
}

/**
 * The first code block fenced as `lang` in the README section whose heading
 * is `## <title>`; throws when the section or the block is missing (a test
 * that runs a README sample fails then, rather than running nothing).
 */
export function readmeSample(title: string, lang: 'js' | 'ts'): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith(title));
  if (section === undefined) throw new Error(`README has no section "${title}"`);
  const code = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section)?.[1];
  if (code === undefined) throw new Error(`README section "${title}" has no \`\`\`${lang} block`);
  return code;
}
