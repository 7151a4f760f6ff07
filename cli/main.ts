// ixws: dispatches to a command and turns its outcome into an exit code
// (0 success, 1 failure, 2 bad command line) with one-line errors on stderr.
import * as fs from 'fs';
import * as path from 'path';
import { RunError, UsageError, oneLine } from './args';
import { connect } from './connect';
import { COMMANDS, MAIN } from './help';
import { serve } from './serve';
import { receive, send } from './transfer';

const RUN: Record<string, (args: string[]) => Promise<number>> = {
  connect,
  'echo-server': (args) => serve('echo-server', args),
  'broadcast-server': (args) => serve('broadcast-server', args),
  send,
  receive,
};

/** The package's version, from the package.json above this file (dist/cli/ → ../../). */
function version(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const p = path.join(dir, 'package.json');
    if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version?: string }).version ?? 'unknown';
    dir = path.dirname(dir);
  }
  return 'unknown';
}

async function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stderr.write(MAIN);
    return 2;
  }
  if (first === '--help' || first === '-h') {
    process.stdout.write(MAIN);
    return 0;
  }
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (first === 'help') {
    if (rest.length === 0) {
      process.stdout.write(MAIN);
      return 0;
    }
    const text = COMMANDS[rest[0]];
    if (!text || rest.length > 1) throw new UsageError(`help: unknown command '${rest.join(' ')}'`);
    process.stdout.write(text);
    return 0;
  }
  const run = RUN[first];
  if (!run) {
    throw new UsageError(first.startsWith('-') ? `unknown option '${first}'` : `unknown command '${first}'`);
  }
  return run(rest);
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      const where = argv[0] !== undefined && RUN[argv[0]] ? `ixws ${argv[0]} --help` : 'ixws --help';
      process.stderr.write(`ixws: ${oneLine(e.message)} (see '${where}')\n`);
      return 2;
    }
    if (e instanceof RunError) {
      process.stderr.write(`ixws: ${oneLine(e.message)}\n`);
      return 1;
    }
    process.stderr.write(`ixws: ${oneLine(e instanceof Error ? e.message : String(e))}\n`);
    return 1;
  }
}
