// The eleven commands of the 4D "WebSocket" plugin, as thin typed wrappers
// over the native module: argument checking, refs and statuses all happen in
// native code, so these and the classes share one code path.
import { binding } from './binding';
import { withWhatwgUrl } from './url';
import './verify'; // runs verifyClient hooks for the native side
import type {
  ClientObject,
  ClientOptions,
  ClientStartStatus,
  ClientArg,
  ServerArg,
  RefStatus,
  SendData,
  SendStatus,
  ServerObject,
  ServerOptions,
  ServerSendStatus,
  ServerStartStatus,
} from './types';

/** Creates a server object: the configuration plus `ref` (-1, -2, … lowest free). */
export function websocketServer(options?: ServerOptions): ServerObject {
  // Forward "no argument" as such so the native side sees the real arity.
  return options === undefined ? binding.websocketServer() : binding.websocketServer(options);
}

/** Creates a client object: the configuration plus `ref` (1, 2, … lowest free).
 *  A `url` here or in any client command is read as WHATWG URL reads it (see url.ts). */
export function websocketClient(options?: ClientOptions): ClientObject {
  return options === undefined ? binding.websocketClient() : binding.websocketClient(withWhatwgUrl(options));
}

/** Binds and listens; `port` in the status is the port listened on. */
export function websocketServerStart(server: ServerArg): ServerStartStatus {
  return binding.websocketServerStart(server);
}

/** Connects (never blocking the thread); resolves with the first attempt's outcome. */
export function websocketClientStart(client: ClientArg): Promise<ClientStartStatus> {
  return binding.websocketClientStart(withWhatwgUrl(client));
}

/** Closes every connection (1001) and releases the port; returns the updated object. */
export function websocketServerStop(server: ServerArg): ServerObject | RefStatus {
  return binding.websocketServerStop(server);
}

/** Closes the connection (1000) and stops reconnecting; returns the updated object. */
export function websocketClientStop(client: ClientArg): ClientObject | RefStatus {
  return binding.websocketClientStop(withWhatwgUrl(client));
}

/** Sends to every connection, or to `server.clients`; one status per target. */
export function websocketServerSend(server: ServerArg, data: SendData): ServerSendStatus[] {
  return binding.websocketServerSend(server, data);
}

/** Sends to the server: strings as text, bytes as binary (unless `binary: false`). */
export function websocketClientSend(client: ClientArg, data: SendData): SendStatus {
  return binding.websocketClientSend(withWhatwgUrl(client), data);
}

/** Disposes a server at once (connections dropped) and frees its ref. */
export function websocketServerClear(server: ServerArg): {} | RefStatus {
  return binding.websocketServerClear(server);
}

/** Disposes a client at once and frees its ref. */
export function websocketClientClear(client: ClientArg): {} | RefStatus {
  return binding.websocketClientClear(withWhatwgUrl(client));
}

/**
 * Sends a ping to one connection (`data`: at most 125 bytes, else TypeError);
 * its pong arrives as a `pong` event. False when the connection is not open.
 */
export function websocketServerPing(server: ServerArg, client: number, data?: SendData): boolean {
  return data === undefined ? binding.websocketServerPing(server, client) : binding.websocketServerPing(server, client, data);
}

/**
 * Sends a ping to the server (`data`: at most 125 bytes, else TypeError); its
 * pong arrives as a `pong` event. False when not open.
 */
export function websocketClientPing(client: ClientArg, data?: SendData): boolean {
  const arg = withWhatwgUrl(client);
  return data === undefined ? binding.websocketClientPing(arg) : binding.websocketClientPing(arg, data);
}

/** Refs of the server's open connections. */
export function websocketServerClients(server: ServerArg): number[] {
  return binding.websocketServerClients(server);
}
