// ixws connect URL: standard input to messages, messages to standard output.
import { EventEmitter } from 'events';
import * as readline from 'readline';
import { WebSocketClient } from '../lib/index';
import type { CloseContext, DataContext, ErrorContext } from '../lib/index';
import { RunError, UsageError, oneLine, parse, seconds, wsUrl } from './args';
import { CERT_FLAGS, NORMAL_CLOSE, clientOptions, drained, failure, watchSignals } from './common';
import { COMMANDS } from './help';

const OPTIONS = {
  header: { type: 'string', multiple: true, short: 'H' },
  protocol: { type: 'string', multiple: true },
  ca: { type: 'string' },
  'no-check': { type: 'boolean' },
  ...CERT_FLAGS,
  binary: { type: 'boolean' },
  hex: { type: 'boolean' },
  base64: { type: 'boolean' },
  'no-deflate': { type: 'boolean' },
  timeout: { type: 'string' },
  wait: { type: 'string' },
} as const;

/** Stop reading standard input while this much is queued for sending; resume below LOW_WATER. */
const HIGH_WATER = 8 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;
/** What a send answers once the connection is closing or closed (the engine's words). */
const NOT_OPEN = 'Not connected';
/** How long the close handshake may take once we sent our close (the engine's own bound is 2 s). */
const CLOSE_BOUND_MS = 5000;
/** Once input has ended, how long the send queue may stay stuck before ixws closes anyway. */
const DRAIN_STALL_MS = 10000;

export async function connect(args: string[]): Promise<number> {
  const { values, positionals, help } = parse('connect', args, OPTIONS, ['URL']);
  if (help) {
    process.stdout.write(COMMANDS.connect);
    return 0;
  }
  const url = wsUrl(positionals[0], 'connect');
  // Each --protocol is one subprotocol offered in Sec-WebSocket-Protocol, in
  // order of preference; an HTTP token (RFC 6455 4.1, RFC 7230 3.2.6), so a
  // typo is a usage error here rather than a TypeError from the client.
  const protocols = values.protocol ?? [];
  for (const p of protocols) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(p)) {
      throw new UsageError(`--protocol: expected a token (letters, digits, !#$%&'*+-.^_\`|~), got '${p}'`);
    }
  }
  if (new Set(protocols).size !== protocols.length) throw new UsageError('--protocol: the same subprotocol offered twice');
  if (values.hex && values.base64) throw new UsageError('connect: --hex and --base64 exclude each other');
  const opts = clientOptions('connect', url, values);
  if (protocols.length > 0) opts.protocols = protocols;
  if (values['no-deflate']) opts.disablePerMessageDeflate = true;
  const waitMs = seconds(values.wait, 1, '--wait', true) * 1000;
  return session(url.href, new WebSocketClient(opts), values.base64 ? 'base64' : 'hex', values.binary === true, waitMs);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Piped input's lines as bytes, for --binary: readline decodes UTF-8 (a byte
 * that is not became U+FFFD) and also ends a line at a lone CR. Here a line
 * ends at LF only, a CR right before it is dropped (CRLF), and the bytes are
 * sent as they came. Emits 'line' (a Buffer) and 'close', as readline does,
 * a last line without LF included.
 */
class ByteLines extends EventEmitter {
  private rest: Buffer[] = [];
  private closed = false;

  constructor(private readonly input: NodeJS.ReadStream) {
    super();
    input.on('data', this.onData);
    input.once('end', this.finish);
    input.once('close', this.finish);
  }

  private readonly onData = (chunk: Buffer): void => {
    let from = 0;
    for (let i = chunk.indexOf(0x0a); i >= 0 && !this.closed; i = chunk.indexOf(0x0a, from)) {
      this.rest.push(chunk.subarray(from, i));
      from = i + 1;
      let line = this.rest.length === 1 ? this.rest[0] : Buffer.concat(this.rest);
      this.rest = [];
      if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
      this.emit('line', line);
    }
    if (!this.closed && from < chunk.length) this.rest.push(chunk.subarray(from));
  };

  private readonly finish = (): void => {
    if (this.closed) return;
    const last = Buffer.concat(this.rest);
    this.rest = [];
    if (last.length > 0) this.emit('line', last);
    this.close();
  };

  pause(): void {
    this.input.pause();
  }

  resume(): void {
    this.input.resume();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.off('data', this.onData);
    this.emit('close');
  }
}

async function session(
  url: string,
  client: WebSocketClient,
  encoding: 'hex' | 'base64',
  binary: boolean,
  waitMs: number,
): Promise<number> {
  const stdin = process.stdin;
  const out = process.stdout;
  const err = process.stderr;
  const interactive = stdin.isTTY === true && out.isTTY === true;
  let rl: readline.Interface | ByteLines | undefined;
  let opened = false;
  let closeCtx: CloseContext | undefined;
  let closeTimedOut = false;
  let outputGone = false;
  let sendFailures = 0;
  /** Bytes still queued when the close began (a peer that stopped reading). */
  let unsent = 0;
  let ending = false;
  /** Close without waiting for the peer to fall quiet (a signal, Ctrl-C, Ctrl-D, output gone). */
  let hurry = false;
  let lastActivity = 0;
  let closeTimer: NodeJS.Timeout | undefined;
  let onClosed!: () => void;
  const closed = new Promise<void>((resolve) => (onClosed = resolve));

  // In a terminal, a line printed while the user types goes above the prompt.
  // After the input ends, the prompt left on the screen is wiped instead.
  const above = (stream: NodeJS.WriteStream, line: string) => {
    if (rl instanceof readline.Interface && interactive) {
      readline.clearLine(stream, 0);
      readline.cursorTo(stream, 0);
      stream.write(`${line}\n`);
      if (!ending) rl.prompt(true);
    } else {
      stream.write(`${line}\n`);
    }
  };
  const print = (line: string) => {
    if (!outputGone) above(out, line);
  };
  const note = (line: string) => above(err, line);

  // A reader that went away (`ixws connect … | head -1`) ends the session quietly.
  out.on('error', () => {
    outputGone = true;
    void endInput(false);
  });

  client.on('message', (ctx: DataContext) => {
    lastActivity = Date.now();
    if (ctx.binary) {
      const text = (ctx.data as Buffer).toString(encoding);
      print(interactive ? `< (binary) ${text}` : text);
    } else {
      print(interactive ? `< ${ctx.data as string}` : (ctx.data as string));
    }
  });
  client.on('error', (ctx: ErrorContext) => {
    if (opened) note(`error: ${oneLine(ctx.reason)}`);
  });
  client.on('close', (ctx: CloseContext) => {
    if (!opened || closeCtx) return;
    closeCtx = ctx;
    onClosed();
  });

  // Signals are handled from here on (watchSignals: a copy of the same
  // Ctrl-C is absorbed, a second one later exits at once): a signal while
  // connecting gives up the attempt, one after the connection is open closes
  // it (endInput).
  let interrupted: NodeJS.Signals | undefined;
  const signals = watchSignals();
  void signals.first.then((sig) => {
    if (opened) void endInput(false);
    else {
      interrupted = sig;
      client.stop();
    }
  });

  const status = await client.start();
  if (!status.success || interrupted) {
    client.clear();
    await signals.settled();
    if (interrupted) throw new RunError(`${interrupted} while connecting to ${url}`);
    throw new RunError(`cannot connect to ${url}: ${oneLine(failure(status))}`);
  }
  opened = true;
  const chosen = status.protocol ? ` (subprotocol ${status.protocol})` : '';
  note(`connected to ${url}${chosen}${interactive ? ' (Ctrl-D or Ctrl-C closes)' : ''}`);

  // Input ended, or the user asked to quit: send what is queued (the close
  // frame goes after the queued messages, and the engine's close timer starts
  // with it, so the queue is drained first). When piped input ends, keep
  // printing what arrives until the peer has been quiet for --wait seconds:
  // a server may answer the last messages after it has already replied to
  // our close (ix-websocket's own server answers a close from its IO thread,
  // before its JavaScript has seen the messages that came just before), and
  // the answers would be lost.
  let lastQueued = -1;
  let lastMove = 0;
  const stalled = () => {
    const q = client.bufferedAmount;
    if (q !== lastQueued) {
      lastQueued = q;
      lastMove = Date.now();
      return false;
    }
    return Date.now() - lastMove > DRAIN_STALL_MS;
  };
  async function endInput(linger: boolean): Promise<void> {
    if (!linger) hurry = true;
    if (ending) return;
    ending = true;
    rl?.close();
    // A signal (hurry) stops waiting for the queue: a peer that does not read
    // would otherwise keep it full for ever; the close then gets CLOSE_BOUND_MS.
    // Piped input that ended waits while the queue keeps moving, not longer
    // than DRAIN_STALL_MS without progress.
    await drained(client, () => closeCtx !== undefined || hurry || stalled());
    // What the peer never took is input lost: said at the end, and exit 1.
    if (!closeCtx) unsent = client.bufferedAmount;
    lastActivity = Math.max(lastActivity, Date.now());
    while (!hurry && !closeCtx) {
      const left = lastActivity + waitMs - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(left, 50));
    }
    if (closeCtx) return;
    client.stop();
    closeTimer = setTimeout(() => {
      closeTimedOut = true;
      onClosed();
    }, CLOSE_BOUND_MS);
  }

  if (!closeCtx) {
    const lines = (rl =
      binary && !interactive
        ? new ByteLines(stdin)
        : readline.createInterface({
            input: stdin,
            output: interactive ? out : undefined,
            terminal: interactive,
            prompt: '> ',
            crlfDelay: Infinity,
          }));
    const prompt = () => {
      if (interactive && lines instanceof readline.Interface) lines.prompt();
    };
    let paused = false;
    lines.on('line', (line: string | Buffer) => {
      if (ending || closeCtx) return;
      const st = client.send(binary && typeof line === 'string' ? Buffer.from(line, 'utf8') : line);
      if (!st.success && st.message === NOT_OPEN) {
        // The connection is closing (its close event is on the way): like a
        // line after the close, not a failure of this line; read no more.
        lines.pause();
        return;
      }
      if (!st.success) {
        sendFailures++;
        note(`ixws: send failed: ${oneLine(st.message ?? 'unknown error')}`);
      }
      if (client.bufferedAmount > HIGH_WATER && !paused) {
        paused = true;
        rl?.pause();
        const wait = () => {
          if (closeCtx || client.bufferedAmount < LOW_WATER) {
            paused = false;
            rl?.resume();
          } else setTimeout(wait, 10);
        };
        setTimeout(wait, 10);
      }
      prompt();
    });
    // End of piped input waits for the peer to fall quiet; Ctrl-D in a terminal does not.
    lines.on('close', () => void endInput(!interactive));
    // Ctrl-C at the prompt (readline handles it in raw mode) closes like Ctrl-D.
    lines.on('SIGINT', () => void endInput(false));
    prompt();
  }

  await closed;
  if (closeTimer) clearTimeout(closeTimer);
  ending = true;
  rl?.close();
  // Standard input may still be open (the peer closed first): let it go, so
  // that nothing keeps the process alive.
  stdin.pause();
  if (!stdin.isTTY) stdin.destroy();
  client.clear();

  if (closeTimedOut) {
    await signals.settled();
    throw new RunError(`the close handshake did not complete within ${CLOSE_BOUND_MS / 1000} s`);
  }
  const ctx = closeCtx as CloseContext;
  const who = ctx.remote ? 'closed by the peer' : 'closed';
  note(`${who}: ${ctx.code}${ctx.reason ? ` ${oneLine(ctx.reason)}` : ''}`);
  await signals.settled();
  if (sendFailures > 0) {
    throw new RunError(`${sendFailures} message${sendFailures === 1 ? '' : 's'} could not be sent`);
  }
  // The close frame goes after everything queued: a close the peer answered
  // proves it read it all. Only one that never completed (1006) leaves the
  // queued bytes unread.
  if (unsent > 0 && ctx.code === 1006) {
    throw new RunError(`the peer did not take the last ${unsent} bytes queued for it before the close`);
  }
  return NORMAL_CLOSE.has(ctx.code) ? 0 : 1;
}
