// What the ixws commands share: building client and server options from the
// command line, waiting for signals, and stopping a server cleanly. Only the
// package's public API is used (../lib/index, which is dist/lib/index.js,
// the package's entry, once compiled).
import { WebSocketClient, WebSocketServer } from '../lib/index';
import type { ClientOptions, ClientStartStatus, CloseContext, ErrorContext, OpenContext, ServerOptions } from '../lib/index';
import { UsageError, headers, oneLine, passphraseFile, port, readableFile, seconds } from './args';

/** Close codes after which a session ended normally (RFC 6455 §7.4.1). */
export const NORMAL_CLOSE = new Set([1000, 1001, 1005]);

/** --cert/--key/--passphrase-file: a server's certificate, or a client's own. */
export interface CertFlags {
  cert?: string;
  key?: string;
  'passphrase-file'?: string;
}

export interface ClientFlags extends CertFlags {
  header?: string[];
  ca?: string;
  'no-check'?: boolean;
  timeout?: string;
}

/** The flags of a certificate and its key, on a client (its own certificate) and on a server. */
export const CERT_FLAGS = {
  cert: { type: 'string' },
  key: { type: 'string' },
  'passphrase-file': { type: 'string' },
} as const;

/**
 * --cert FILE --key FILE [--passphrase-file FILE] as TLS options: both files
 * or neither, and a passphrase only for a key. Undefined when none is given.
 */
function certOptions(command: string, flags: CertFlags) {
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new UsageError(`${command}: --cert and --key go together`);
  }
  if (flags['passphrase-file'] !== undefined && flags.key === undefined) {
    throw new UsageError(`${command}: --passphrase-file is the passphrase of --key: give --cert and --key too`);
  }
  if (flags.cert === undefined || flags.key === undefined) return undefined;
  const tls: { certFile: string; keyFile: string; passphrase?: string } = {
    certFile: readableFile(flags.cert, '--cert'),
    keyFile: readableFile(flags.key, '--key'),
  };
  if (flags['passphrase-file'] !== undefined) tls.passphrase = passphraseFile(flags['passphrase-file'], '--passphrase-file');
  return tls;
}

/**
 * An engine message as the command line should say it: the engine names the
 * API option (tls.passphrase) where ixws takes a flag.
 */
export function cliMessage(message: string): string {
  return message.replace('(tls.passphrase)', '(--passphrase-file)');
}

/** Client options from the flags connect and send share. */
export function clientOptions(command: string, url: URL, flags: ClientFlags): ClientOptions {
  const opts: ClientOptions = {
    url: url.href,
    // A command-line session reports a lost connection instead of hiding it behind retries.
    enableAutomaticReconnection: false,
    timeout: seconds(flags.timeout, 20, '--timeout'),
  };
  const h = headers(flags.header);
  if (h) opts.headers = h;
  // The first TLS flag given, if any: each needs a wss:// URL.
  const tlsFlag = (['ca', 'no-check', 'cert', 'key', 'passphrase-file'] as const).find((f) => flags[f] !== undefined);
  if (tlsFlag !== undefined) {
    if (url.protocol !== 'wss:') throw new UsageError(`${command}: --${tlsFlag} needs a wss:// URL`);
    // connect's standard input carries the messages: reading a passphrase from
    // it would take them all.
    const pass = flags['passphrase-file'];
    if (command === 'connect' && pass !== undefined && ['/dev/stdin', '/dev/fd/0', '/proc/self/fd/0'].includes(pass)) {
      throw new UsageError('connect: --passphrase-file cannot be standard input, which carries the messages');
    }
    opts.tls = { ...certOptions(command, flags) };
    if (flags.ca !== undefined) opts.tls.caFile = readableFile(flags.ca, '--ca');
    if (flags['no-check']) {
      opts.tls.verifyPeer = false;
      opts.tls.disableHostnameValidation = true;
    }
  }
  return opts;
}

/** Why a connection attempt failed, in one phrase. */
export function failure(status: ClientStartStatus): string {
  const reason = cliMessage(status.errorStr || 'unknown error');
  return status.http_status && !reason.includes(String(status.http_status)) ? `${reason} (HTTP ${status.http_status})` : reason;
}

export interface ServerFlags extends CertFlags {
  port?: string;
  host?: string;
  deflate?: boolean;
  'no-deflate'?: boolean;
}

export const SERVER_FLAGS = {
  port: { type: 'string', short: 'p' },
  host: { type: 'string' },
  ...CERT_FLAGS,
} as const;

/** Server options from --port, --host, --cert/--key/--passphrase-file, --deflate/--no-deflate. */
export function serverOptions(command: string, flags: ServerFlags): ServerOptions {
  const opts: ServerOptions = { port: port(flags.port, 8080), host: flags.host ?? '127.0.0.1' };
  if (flags.host !== undefined && flags.host.trim() === '') throw new UsageError('--host: empty');
  const tls = certOptions(command, flags);
  if (tls) opts.tls = tls;
  if (flags.deflate && flags['no-deflate']) throw new UsageError(`${command}: --deflate and --no-deflate exclude each other`);
  if (flags['no-deflate']) opts.disablePerMessageDeflate = true;
  return opts;
}

/** ws://host:port as a client would write it (IPv6 literals in brackets). */
export function listenUrl(opts: ServerOptions, port: number): string {
  const host = opts.host ?? '127.0.0.1';
  return `${opts.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Server logs: connections and closes on stdout, errors on stderr. */
export function logConnections(server: WebSocketServer): void {
  ignoreGoneOutput();
  server.on('open', (client: number, ctx: OpenContext) => process.stdout.write(`client ${client} connected (${ctx.uri})\n`));
  server.on('close', (client: number, ctx: CloseContext) =>
    process.stdout.write(`client ${client} disconnected: ${ctx.code}${ctx.reason ? ` ${oneLine(ctx.reason)}` : ''}\n`),
  );
  server.on('error', (client: number, ctx: ErrorContext) =>
    process.stderr.write(`${client ? `client ${client}: ` : ''}error: ${oneLine(ctx.reason)}\n`),
  );
}

/**
 * A reader of standard output that went away (`ixws echo-server | head -1`)
 * must not crash a server in the middle of its clients' sessions: later log
 * lines are dropped instead (EPIPE is reported as an 'error' event, which
 * without a listener is an uncaught exception).
 */
export function ignoreGoneOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listenerCount('error') === 0) stream.on('error', () => {});
  }
}

/**
 * A signal that arrives this soon after the first is taken as the same one
 * delivered twice, not as a second Ctrl-C: a terminal's Ctrl-C reaches the whole
 * foreground process group, and `npm run`/`npx` forward it to their child as well;
 * GNU `timeout` sends the signal it receives both to its child and to its group.
 */
export const REPEAT_WINDOW_MS = 500;

export interface SignalWatch {
  /** Resolves with the first SIGINT, SIGTERM or SIGHUP. */
  readonly first: Promise<NodeJS.Signals>;
  /**
   * Resolves once a repeat of the first signal can no longer be on its way
   * (REPEAT_WINDOW_MS after it); at once when no signal came.
   */
  settled(): Promise<void>;
}

/**
 * Watches SIGINT, SIGTERM and SIGHUP (the terminal closed: a server started
 * from it still closes its connections with 1001) for the rest of the
 * command. The first one resolves `first`; a repeat within REPEAT_WINDOW_MS
 * is ignored; a later one exits at once (130 / 143 / 129), as a user pressing
 * Ctrl-C twice expects.
 *
 * The listeners stay for the life of the process. Taking the last listener
 * off hands the signal back to its default action, so a repeat landing between
 * an off() and an on() killed the process; and a process that ends while a
 * repeat is still on its way dies of it in its teardown (a fast stop takes
 * about 3 ms, and `timeout` sends its second copy up to a few ms after the
 * first when it is preempted): a command that stopped on a signal waits for
 * `settled()` before it ends.
 */
export function watchSignals(): SignalWatch {
  let firstAt = -1;
  let resolveFirst!: (sig: NodeJS.Signals) => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (resolveFirst = resolve));
  const on = (sig: NodeJS.Signals) => {
    const now = performance.now();
    if (firstAt < 0) {
      firstAt = now;
      resolveFirst(sig);
    } else if (now - firstAt >= REPEAT_WINDOW_MS) {
      process.exit(sig === 'SIGINT' ? 130 : sig === 'SIGHUP' ? 129 : 143);
    }
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  process.on('SIGHUP', on);
  return {
    first,
    settled: () => {
      const left = firstAt < 0 ? 0 : firstAt + REPEAT_WINDOW_MS - performance.now();
      return left > 0 ? new Promise((resolve) => setTimeout(resolve, left)) : Promise.resolve();
    },
  };
}

/**
 * Stops a server: every connection gets 1001 and its close handshake (each
 * bounded by the engine's close timeout); waits for their close events up to
 * `boundMs`, then clears the server so that nothing keeps the process alive.
 */
export async function stopServer(server: WebSocketServer, boundMs = 3000): Promise<void> {
  const open = new Set(server.clients());
  if (open.size > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, boundMs);
      server.on('close', (client: number, _ctx: CloseContext) => {
        open.delete(client);
        if (open.size === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.stop();
    });
  } else {
    server.stop();
  }
  server.clear();
}

/**
 * Resolves when nothing is queued for sending on the client any more, or
 * when `gone()` says the connection is over; polls (the API has no drain event).
 */
export function drained(client: WebSocketClient, gone: () => boolean, everyMs = 10): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (gone() || client.bufferedAmount === 0) resolve();
      else setTimeout(check, everyMs);
    };
    check();
  });
}
