// ixws echo-server / ixws broadcast-server.
import { WebSocketServer } from '../lib/index';
import type { DataContext } from '../lib/index';
import { RunError, oneLine, parse } from './args';
import { SERVER_FLAGS, cliMessage, listenUrl, logConnections, watchSignals, serverOptions, stopServer } from './common';
import { COMMANDS } from './help';

const OPTIONS = {
  ...SERVER_FLAGS,
  deflate: { type: 'boolean' },
  'no-deflate': { type: 'boolean' },
} as const;

export type ServerKind = 'echo-server' | 'broadcast-server';

export async function serve(kind: ServerKind, args: string[]): Promise<number> {
  const { values, help } = parse(kind, args, OPTIONS);
  if (help) {
    process.stdout.write(COMMANDS[kind]);
    return 0;
  }
  const opts = serverOptions(kind, values);
  const server = new WebSocketServer(opts);
  const log = (line: string) => process.stdout.write(`${line}\n`);

  logConnections(server);
  if (kind === 'echo-server') {
    // Text comes back as text, binary as binary (a string or a Buffer).
    server.on('message', (client: number, ctx: DataContext) => server.send(ctx.data, { clients: [client] }));
  } else {
    server.on('message', (_client: number, ctx: DataContext) => server.send(ctx.data));
  }

  // Listening for signals before the address is printed: whoever reads it may signal at once.
  const signals = watchSignals();
  const status = server.start();
  if (!status.success) {
    server.clear();
    throw new RunError(`cannot listen on ${opts.host}:${opts.port}: ${oneLine(cliMessage(status.message))}`);
  }
  log(`${kind} listening on ${listenUrl(opts, server.port)}`);

  const sig = await signals.first;
  log(`${sig}: stopping`);
  await stopServer(server);
  log('stopped');
  await signals.settled();
  return 0;
}
