// ixws: dispatches to a command and turns its outcome into an exit code
// (0 success, 1 failure, 2 bad command line) with one-line errors on stderr.
import * as fs from 'fs';
import * as path from 'path';
import { RunError, UsageError, oneLine } from './args';
import { COMMANDS, MAIN } from './help';

// The commands' modules load the engine (the native binding); they are
// loaded only when a command runs, so that the help, the version and the
// usage errors work, and a binding that cannot load is a one-line error.
const RUN: Record<string, (args: string[]) => Promise<number>> = {
  connect: async (args) => (await import('./connect')).connect(args),
  'echo-server': async (args) => (await import('./serve')).serve('echo-server', args),
  'broadcast-server': async (args) => (await import('./serve')).serve('broadcast-server', args),
  send: async (args) => (await import('./transfer')).send(args),
  receive: async (args) => (await import('./transfer')).receive(args),
};

/** `COMMAND --help` / `-h` anywhere among its arguments (what parse() would answer). */
function asksHelp(args: string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

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
  if (asksHelp(rest) && COMMANDS[first]) {
    process.stdout.write(COMMANDS[first]);
    return 0;
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
