// ixws send URL FILE / ixws receive: one file as one binary message
// (format in file-message.ts), checked by SHA-256 on arrival.
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { WebSocketClient, WebSocketServer } from '../lib/index';
import type { CloseContext, DataContext, ErrorContext } from '../lib/index';
import { RunError, UsageError, bytes, oneLine, parse, readableFile, timerSeconds, visible, writableDir, wsUrl } from './args';
import { CERT_FLAGS, SERVER_FLAGS, cliMessage, clientOptions, failure, listenUrl, ignoreGoneOutput, logConnections, watchSignals, serverOptions, stopServer } from './common';
import { FileMessageError, badName, decodeFileMessage, encodeFileMessage, parseVerdict } from './file-message';
import type { Verdict } from './file-message';
import { COMMANDS } from './help';
import { ProgressBar } from './progress';

const MiB = 1024 * 1024;
/** Files this large get a progress bar when standard error is a terminal. */
const BAR_FROM = MiB;
const CLOSE_BOUND_MS = 5000;
/** The library's default send queue bound; a larger file raises it for its one message. */
const DEFAULT_SEND_HIGH_WATER = 128 * MiB;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ send

const SEND_OPTIONS = {
  header: { type: 'string', multiple: true, short: 'H' },
  ca: { type: 'string' },
  'no-check': { type: 'boolean' },
  ...CERT_FLAGS,
  deflate: { type: 'boolean' },
  progress: { type: 'boolean' },
  'no-progress': { type: 'boolean' },
  timeout: { type: 'string' },
} as const;

export async function send(args: string[]): Promise<number> {
  const { values, positionals, help } = parse('send', args, SEND_OPTIONS, ['URL', 'FILE']);
  if (help) {
    process.stdout.write(COMMANDS.send);
    return 0;
  }
  ignoreGoneOutput();
  const url = wsUrl(positionals[0], 'send');
  const file = readableFile(positionals[1], 'send');
  if (values.progress && values['no-progress']) throw new UsageError('send: --progress and --no-progress exclude each other');
  const name = path.basename(file);
  const bad = badName(name);
  if (bad) throw new UsageError(`send: cannot send '${file}': ${bad}`);
  const opts = clientOptions('send', url, values);
  const waitSeconds = timerSeconds(values.timeout, 20, '--timeout');
  if (!values.deflate) opts.disablePerMessageDeflate = true;

  let content: Buffer;
  try {
    content = fs.readFileSync(file);
  } catch (e) {
    throw new RunError(`cannot read '${file}': ${(e as Error).message}`);
  }
  const { message, header } = encodeFileMessage(name, content);
  opts.sendHighWaterMark = Math.max(DEFAULT_SEND_HIGH_WATER, message.length + MiB);

  const client = new WebSocketClient(opts);
  let opened = false;
  let verdict: Verdict | undefined;
  /** What a peer that is not an ixws receiver answered instead (an echo server echoes the file). */
  let stray: string | undefined;
  let closeCtx: CloseContext | undefined;
  let wake: () => void = () => {};
  const settled = () => verdict !== undefined || stray !== undefined || closeCtx !== undefined;
  client.on('message', (ctx: DataContext) => {
    if (verdict || stray) return;
    verdict = ctx.binary ? undefined : parseVerdict(ctx.data as string);
    if (!verdict) stray = ctx.binary ? `a binary message of ${(ctx.data as Buffer).length} bytes` : 'a text message that is not a verdict';
    wake();
  });
  client.on('close', (ctx: CloseContext) => {
    if (!opened || closeCtx) return;
    closeCtx = ctx;
    wake();
  });
  client.on('error', (ctx: ErrorContext) => {
    if (opened) process.stderr.write(`error: ${oneLine(ctx.reason)}\n`);
  });

  const status = await client.start();
  if (!status.success) {
    client.clear();
    throw new RunError(`cannot connect to ${url.href}: ${oneLine(failure(status))}`);
  }
  opened = true;

  const st = client.send(message);
  if (!st.success) {
    client.clear();
    throw new RunError(`cannot send '${file}': ${oneLine(st.message ?? 'unknown error')}`);
  }

  // What has left the send queue is what the progress bar shows.
  const total = st.wireSize > 0 ? st.wireSize : message.length;
  const showBar = values.progress === true || (!values['no-progress'] && process.stderr.isTTY === true && content.length >= BAR_FROM);
  const bar = showBar ? new ProgressBar(process.stderr, total) : undefined;
  const sent = () => total - Math.min(total, client.bufferedAmount);
  // A receiver that stops reading keeps the queue full: --timeout without any
  // progress ends the wait (and the command) instead of waiting for ever.
  let left = client.bufferedAmount;
  let movedAt = Date.now();
  while (!settled() && client.bufferedAmount > 0) {
    bar?.update(sent());
    await sleep(100);
    if (client.bufferedAmount !== left) {
      left = client.bufferedAmount;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > waitSeconds * 1000) {
      bar?.finish(sent());
      client.clear();
      throw new RunError(`the receiver took nothing for ${waitSeconds} s: ${left} bytes of '${file}' were still to send`);
    }
  }
  bar?.finish(sent());

  // The receiver's verdict, within --timeout once the bytes are out.
  let timedOut = false;
  if (!settled()) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timedOut = true;
        resolve();
      }, waitSeconds * 1000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  if (!closeCtx) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_BOUND_MS);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
      client.stop();
    });
  }
  client.clear();

  const v = verdict as Verdict | undefined;
  if (!v && stray) throw new RunError(`${url.href} is not an ixws receiver: it answered with ${stray}`);
  if (!v) {
    if (timedOut) throw new RunError(`no answer from the receiver within ${waitSeconds} s after sending '${file}'`);
    const c = closeCtx as CloseContext | undefined;
    throw new RunError(
      `the connection closed before the receiver answered${c ? `: ${c.code}${c.reason ? ` ${oneLine(c.reason)}` : ''}` : ''}`,
    );
  }
  if (!v.ok) throw new RunError(`the receiver rejected '${file}': ${oneLine(v.error)}`);
  if (v.sha256 !== header.sha256 || v.size !== header.size) {
    throw new RunError(
      `the receiver saved '${visible(v.name)}' with size ${v.size} and sha256 ${v.sha256}, expected ${header.size} and ${header.sha256}`,
    );
  }
  process.stdout.write(`sent ${name} (${header.size} bytes, sha256 ${header.sha256}): saved as ${visible(v.name)}\n`);
  return 0;
}

// --------------------------------------------------------------- receive

const RECEIVE_OPTIONS = {
  ...SERVER_FLAGS,
  dir: { type: 'string', short: 'd' },
  once: { type: 'boolean' },
  'max-size': { type: 'string' },
} as const;

/** Writes `content` as `name` in `dir`, never over an existing file: name, name.1, name.2, … */
/** `name` with `.i` appended (i > 0), cut short by whole characters so that it fits in 255 bytes. */
function numbered(name: string, i: number): string {
  if (i === 0) return name;
  const suffix = `.${i}`;
  let base = name;
  while (Buffer.byteLength(base + suffix) > 255) base = Array.from(base).slice(0, -1).join('');
  return base + suffix;
}

/**
 * Writes `content` under `name` in `dir`, or name.1, name.2, … when taken:
 * never over an existing entry (a symbolic link included). The bytes go to a
 * hidden temporary file first, which then gets its final name with link(2)
 * (which fails on any existing entry, as O_EXCL does): a receiver killed while
 * writing leaves `.ixws-part-*`, never a truncated file under the real name.
 * Where hard links are not supported, the name is reserved with O_EXCL and
 * the finished file renamed over that empty reservation.
 */
async function save(dir: string, name: string, content: Buffer): Promise<string> {
  const part = path.join(dir, `.ixws-part-${randomBytes(8).toString('hex')}`);
  const fh = await fs.promises.open(part, 'wx');
  try {
    await fh.writeFile(content);
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.promises.unlink(part).catch(() => {});
    throw e;
  }
  try {
    for (let i = 0; i < 1000; i++) {
      const candidate = path.join(dir, numbered(name, i));
      try {
        await fs.promises.link(part, candidate);
        return candidate;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw e;
      }
      // No hard links here: reserve the name, then move the file onto it.
      try {
        await (await fs.promises.open(candidate, 'wx')).close();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw e;
      }
      try {
        await fs.promises.rename(part, candidate);
      } catch (e) {
        await fs.promises.unlink(candidate).catch(() => {}); // the empty reservation
        throw e;
      }
      return candidate;
    }
    throw new Error(`'${name}' and ${name}.1 to ${name}.999 all exist`);
  } finally {
    await fs.promises.unlink(part).catch(() => {});
  }
}

export async function receive(args: string[]): Promise<number> {
  const { values, help } = parse('receive', args, RECEIVE_OPTIONS);
  if (help) {
    process.stdout.write(COMMANDS.receive);
    return 0;
  }
  const opts = serverOptions('receive', values);
  const dir = writableDir(values.dir ?? '.', '--dir');
  const maxSize = bytes(values['max-size'], '--max-size');
  if (maxSize !== undefined) opts.maxPayload = maxSize;

  const server = new WebSocketServer(opts);
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const warn = (line: string) => process.stderr.write(`${line}\n`);
  logConnections(server);

  let firstSaved: () => void = () => {};
  const saved = new Promise<'saved'>((resolve) => (firstSaved = () => resolve('saved')));
  const answer = (client: number, v: Verdict) => server.send(JSON.stringify(v), { clients: [client] });

  /** Saves under way: their senders get their verdict before the server stops. */
  const pending = new Set<Promise<void>>();
  let stopping = false;
  server.on('message', (client: number, ctx: DataContext) => {
    if (stopping) {
      answer(client, { ok: false, error: 'the receiver is stopping' });
      return;
    }
    if (!ctx.binary) {
      warn(`client ${client}: rejected a text message (expected a file)`);
      answer(client, { ok: false, error: 'expected a file: one binary message in the ixws file format' });
      return;
    }
    let decoded: ReturnType<typeof decodeFileMessage>;
    try {
      decoded = decodeFileMessage(ctx.data as Buffer);
    } catch (e) {
      if (!(e instanceof FileMessageError)) throw e;
      warn(`client ${client}: rejected a file: ${e.message}`);
      answer(client, { ok: false, error: e.message });
      return;
    }
    const { header, content } = decoded;
    const job = save(dir, header.name, content).then(
      (where) => {
        log(`client ${client}: received ${visible(header.name)} (${header.size} bytes, sha256 ${header.sha256} verified), saved as ${visible(where)}`);
        answer(client, { ok: true, name: path.basename(where), size: header.size, sha256: header.sha256 });
        if (values.once) firstSaved();
      },
      (e: Error) => {
        warn(`client ${client}: cannot save ${visible(header.name)}: ${oneLine(e.message)}`);
        // The sender hears the reason, not the receiver's paths.
        const code = (e as NodeJS.ErrnoException).code;
        answer(client, { ok: false, error: `cannot save: ${code ?? oneLine(e.message)}` });
      },
    );
    pending.add(job);
    void job.finally(() => pending.delete(job));
  });

  const signals = watchSignals();
  const status = server.start();
  if (!status.success) {
    server.clear();
    throw new RunError(`cannot listen on ${opts.host}:${opts.port}: ${oneLine(cliMessage(status.message))}`);
  }
  log(`receive listening on ${listenUrl(opts, server.port)}, saving into ${path.resolve(dir)}`);

  const why = await Promise.race([signals.first, saved]);
  if (why !== 'saved') log(`${why}: stopping`);
  // No new file from here on; those being written are finished and answered
  // (a second signal still exits at once).
  stopping = true;
  while (pending.size > 0) await Promise.all([...pending]);
  await stopServer(server);
  log('stopped');
  await signals.settled();
  return 0;
}
