// Argument handling shared by the ixws commands: Node's own util.parseArgs
// does the parsing; this file turns its errors and our value checks into
// one-line usage errors (exit code 2), and holds the few value validators
// the commands share.
import * as fs from 'fs';
import { parseArgs } from 'util';

/** A mistake in the command line: one line on stderr, exit code 2. */
export class UsageError extends Error {}

/** A failure while running (connection refused, receiver rejected the file, …): exit code 1. */
export class RunError extends Error {}

type OptionSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string };
export type Options = Record<string, OptionSpec>;

type Values<O extends Options> = {
  [K in keyof O]?: O[K]['type'] extends 'string'
    ? O[K]['multiple'] extends true
      ? string[]
      : string
    : O[K]['multiple'] extends true
      ? boolean[]
      : boolean;
};

export interface Parsed<O extends Options> {
  values: Values<O>;
  positionals: string[];
}

/**
 * Parses `args` for `command` (strict: unknown flags, missing values and
 * surplus positionals are usage errors). `positionals` names the positional
 * arguments the command requires, in order. `--help` / `-h` is added to every
 * command; when present, the positional checks are skipped.
 */
export function parse<O extends Options>(command: string, args: string[], options: O, positionals: string[] = []): Parsed<O> & { help: boolean } {
  let r;
  try {
    r = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      // Node's message goes on about '--' and positionals; the option is what matters.
      const m = /'([^']+)'/.exec(err.message);
      throw new UsageError(`${command}: unknown option ${m ? `'${m[1]}'` : ''}`.trimEnd());
    }
    if (typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) throw new UsageError(`${command}: ${err.message}`);
    throw e;
  }
  const values = r.values as Values<O> & { help?: boolean };
  const help = values.help === true;
  if (!help) {
    if (r.positionals.length < positionals.length) {
      throw new UsageError(`${command}: missing ${positionals[r.positionals.length]}`);
    }
    if (r.positionals.length > positionals.length) {
      throw new UsageError(`${command}: unexpected argument '${r.positionals[positionals.length]}'`);
    }
  }
  return { values, positionals: r.positionals, help };
}

/** A TCP port: an integer 0..65535 (0: the system picks one). */
export function port(value: string | undefined, fallback: number, flag = '--port'): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new UsageError(`${flag}: expected a port number 0..65535, got '${value}'`);
  }
  return Number(value);
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** A positive number of seconds (fractions allowed; zero too with `zero`). */
export function seconds(value: string | undefined, fallback: number, flag: string, zero = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (n === 0 && !zero)) {
    throw new UsageError(`${flag}: expected a ${zero ? 'non-negative' : 'positive'} number of seconds, got '${value}'`);
  }
  return n;
}

/** seconds() for a wait ixws times with a Node timer: at most 2^31-1 ms (about 24.8 days); a longer one would fire at once. */
export function timerSeconds(value: string | undefined, fallback: number, flag: string): number {
  const n = seconds(value, fallback, flag);
  if (n * 1000 > MAX_TIMER_MS) throw new UsageError(`${flag}: at most ${Math.floor(MAX_TIMER_MS / 1000)} seconds, got '${value}'`);
  return n;
}

/** A positive integer number of bytes. */
export function bytes(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`${flag}: expected a positive whole number of bytes, got '${value}'`);
  }
  return Number(value);
}

/** `value` if it names an existing file of the right kind that this process may use (`mode`: R_OK, W_OK). */
function usablePath(value: string, what: string, mode: number, kind: 'file' | 'dir'): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(value);
    fs.accessSync(value, mode);
  } catch (e) {
    const verb = kind === 'file' ? 'read' : 'write into';
    throw new UsageError(`${what}: cannot ${verb} '${value}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (kind === 'file' && !st.isFile()) throw new UsageError(`${what}: '${value}' is not a regular file`);
  if (kind === 'dir' && !st.isDirectory()) throw new UsageError(`${what}: '${value}' is not a directory`);
  return value;
}

/** A path to a regular file this process can read (the path is returned as given). */
export function readableFile(value: string, what: string): string {
  return usablePath(value, what, fs.constants.R_OK, 'file');
}

/** A directory this process can write into. */
export function writableDir(value: string, what: string): string {
  // Search (x) too: without it nothing in the directory can be created.
  return usablePath(value, what, fs.constants.W_OK | fs.constants.X_OK, 'dir');
}

/**
 * The passphrase in FILE: its first line, without the line ending (as
 * `openssl -passin file:`). A file, not a command-line value, because any
 * user of the machine can read another's arguments (ps, /proc/PID/cmdline).
 * FILE may be a pipe: /dev/stdin, or a shell's <(printf %s "$PASS").
 */
export function passphraseFile(value: string, flag: string): string {
  let text: string;
  try {
    if (fs.statSync(value).isDirectory()) throw new UsageError(`${flag}: '${value}' is a directory`);
    text = fs.readFileSync(value, 'utf8');
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${flag}: cannot read '${value}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const line = text.split(/\r?\n/, 1)[0];
  if (line === '') throw new UsageError(`${flag}: the first line of '${value}' is empty`);
  return line;
}

/** A ws:// or wss:// URL (WHATWG URL parsing). */
export function wsUrl(value: string, command: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`${command}: invalid URL '${value}'`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new UsageError(`${command}: the URL must start with ws:// or wss:// (got '${u.protocol}//')`);
  }
  return u;
}

// RFC 9110 token characters: what a header field name may contain.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** `--header K:V` values as a headers object (the name is checked, the value trimmed). */
export function headers(values: string[] | undefined): Record<string, string> | undefined {
  if (!values || values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const h of values) {
    const colon = h.indexOf(':');
    const name = colon < 0 ? '' : h.slice(0, colon).trim();
    const value = colon < 0 ? '' : h.slice(colon + 1).trim();
    if (colon < 0 || !TOKEN.test(name)) throw new UsageError(`--header: expected NAME:VALUE with a valid header name, got '${h}'`);
    if (/[\r\n\0]/.test(value)) throw new UsageError(`--header: the value of '${name}' contains a line break or NUL`);
    out[name] = value;
  }
  return out;
}

/** Exactly one line: errors from the engine or the OS never spill over several lines. */
export function oneLine(s: string): string {
  return visible(s.replace(/\s*[\r\n]+\s*/g, ' ').trim());
}

/**
 * Text a peer chose (a close reason, a receiver's verdict), made safe to print
 * on a terminal: control characters (C0, DEL, C1), line and paragraph
 * separators and bidirectional overrides are shown as \u{…} escapes instead
 * of being obeyed (an ESC sequence could retitle the window, recolour or move
 * the cursor; U+202E reverses what follows).
 */
export function visible(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}
