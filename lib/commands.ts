// The eleven commands of the 4D "WebSocket" plugin, as thin typed wrappers
// over the native module: argument checking, refs and statuses all happen in
// native code, so these and the classes share one code path.
import type { IncomingMessage } from 'http';
import type { Duplex } from 'stream';
import { handleUpgrade } from './attach';
import { binding } from './binding';
import * as bus from './bus';
import { refCleared } from './endpoint';
import { withWhatwgUrl } from './url';
import './verify'; // runs verifyClient hooks for the native side
import type {
  PublishStatus,
  TopicInfo,
  TopicStatus,
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
  UpgradeStatus,
} from './types';

/** Creates a server object: the configuration plus `ref` (-1, -2, … lowest free). */
export function websocketServer(options?: ServerOptions): ServerObject {
  // Forward "no argument" as such so the native side sees the real arity.
  if (options === undefined) return binding.websocketServer();
  if (options === null || typeof options !== 'object' || options.bus === undefined) return binding.websocketServer(options);
  // With a bus: the native side gets everything else, and a method that
  // also tells the bus about closed connections (see bus.ts).
  const { bus: given, ...rest } = options;
  const b = bus.checkBus(given, 'options.bus');
  bus.checkFree(b, 'options.bus'); // before the native server exists: a refusal leaves nothing behind
  const created = binding.websocketServer({ ...rest, method: bus.observingMethod(options.method) });
  bus.attach(created.ref, b, options.method, options as Record<string, unknown>);
  // `method` stays the wrapper, so that the object given back to a command
  // keeps it.
  return { ...created, bus: b } as ServerObject;
}

/** Creates a client object: the configuration plus `ref` (1, 2, … lowest free).
 *  A `url` here or in any client command is read as WHATWG URL reads it (see url.ts). */
export function websocketClient(options?: ClientOptions): ClientObject {
  return options === undefined ? binding.websocketClient() : binding.websocketClient(withWhatwgUrl(options));
}

/** Binds and listens; `port` in the status is the port listened on. */
export function websocketServerStart(server: ServerArg): ServerStartStatus {
  if (server !== null && typeof server === 'object') bus.checkCarried(server as { ref: number; bus?: unknown });
  if (server === null || typeof server !== 'object' || !bus.hasBus(server.ref)) return binding.websocketServerStart(server);
  // A server with a bus: the bus opens first; one that cannot open stops the start.
  const arg = bus.nativeArg(server);
  const { error, openedNow } = bus.beforeStart(server.ref);
  if (error !== undefined) return { success: false, message: error };
  const status = binding.websocketServerStart(arg);
  if (!status.success && openedNow) bus.stopped(server.ref, false);
  return status;
}

/** Connects (never blocking the thread); resolves with the first attempt's outcome. */
export function websocketClientStart(client: ClientArg): Promise<ClientStartStatus> {
  return binding.websocketClientStart(withWhatwgUrl(client));
}

/** Closes every connection (1001) and releases the port; returns the updated object. */
export function websocketServerStop(server: ServerArg): ServerObject | RefStatus {
  if (server !== null && typeof server === 'object') bus.checkCarried(server as { ref: number; bus?: unknown });
  const result = binding.websocketServerStop(bus.nativeArg(server));
  if ('ref' in result) {
    bus.stopped(result.ref, false);
    const b = bus.busOf(result.ref);
    if (b) return { ...result, bus: b };
  }
  return result;
}

/** Closes the connection (1000) and stops reconnecting; returns the updated object. */
export function websocketClientStop(client: ClientArg): ClientObject | RefStatus {
  return binding.websocketClientStop(withWhatwgUrl(client));
}

// The send fast path's result numbers (see websocketServerSendTo in binding.d.ts).
const sendOut = new Float64Array(5);
const hasConfigKeys = binding.hasConfigKeys;

/** Sends to every connection, or to `server.clients`; one status per target. */
export function websocketServerSend(server: ServerArg, data: SendData): ServerSendStatus[] {
  // A reply to one connection, `{ ref, clients: [client] }` (binary
  // allowed): read here, where the loads are inline-cached, sent with
  // positional arguments, and the status built here. Everything else (and
  // whatever the native side declines: unknown refs, a stopped server) takes
  // the general path, which also makes every TypeError.
  if (typeof server === 'object' && server !== null) {
    const clients = server.clients;
    const ref = server.ref;
    const binary = server.binary;
    if (
      Array.isArray(clients) &&
      clients.length === 1 &&
      typeof ref === 'number' &&
      (binary === undefined || typeof binary === 'boolean') &&
      !hasConfigKeys(server)
    ) {
      const client = clients[0];
      if (typeof client === 'number' && Number.isInteger(client)) {
        const m = binding.websocketServerSendTo(ref, client, binary, data, sendOut);
        if (m !== null) {
          const o = sendOut;
          return [
            m === undefined
              ? { success: o[0] === 1, compressionError: o[1] === 1, payloadSize: o[2], wireSize: o[3], bufferedAmount: o[4], client }
              : { success: o[0] === 1, compressionError: o[1] === 1, payloadSize: o[2], wireSize: o[3], bufferedAmount: o[4], message: m, client },
          ];
        }
      }
    }
  }
  return binding.websocketServerSend(bus.nativeArg(server), data);
}

/** Sends to the server: strings as text, bytes as binary (unless `binary: false`). */
export function websocketClientSend(client: ClientArg, data: SendData): SendStatus {
  return binding.websocketClientSend(withWhatwgUrl(client), data);
}

/** Disposes a server at once (connections dropped) and frees its ref. */
export function websocketServerClear(server: ServerArg): {} | RefStatus {
  const result = binding.websocketServerClear(server);
  if (!('success' in result)) {
    bus.stopped(server.ref, true);
    refCleared(server.ref);
  }
  return result;
}

/** Disposes a client at once and frees its ref. */
export function websocketClientClear(client: ClientArg): {} | RefStatus {
  const result = binding.websocketClientClear(withWhatwgUrl(client));
  if (!('success' in result)) refCleared(client.ref);
  return result;
}

/**
 * Sends a ping to one connection (`data`: at most 125 bytes, else TypeError);
 * its pong arrives as a `pong` event. False when the connection is not open.
 */
export function websocketServerPing(server: ServerArg, client: number, data?: SendData): boolean {
  // A method it carries is wrapped, as with every command (a bus hears the closes).
  const arg = bus.nativeArg(server);
  return data === undefined ? binding.websocketServerPing(arg, client) : binding.websocketServerPing(arg, client, data);
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
  return binding.websocketServerClients(bus.nativeArg(server));
}

/**
 * Subscribes one open connection to a topic (a non-empty string); its
 * subscriptions end when it closes. With a bus, the first local subscriber of
 * a topic subscribes the bus to it.
 */
export function websocketServerSubscribe(server: ServerArg, client: number, topic: string): TopicStatus {
  const status = binding.websocketServerSubscribe(bus.nativeArg(server), client, topic);
  if (status.success) bus.afterSubscribe(server.ref, status);
  return status;
}

/** Ends one connection's subscription to a topic (the bus's too when it was the last one here). */
export function websocketServerUnsubscribe(server: ServerArg, client: number, topic: string): TopicStatus {
  const status = binding.websocketServerUnsubscribe(bus.nativeArg(server), client, topic);
  if (status.success) bus.afterUnsubscribe(server.ref, status);
  return status;
}

/**
 * Publishes to the subscribers of `server.topic`: on this server at once (the
 * frame built once, like a send to several connections), and through the bus,
 * if the server has one, to the subscribers of every other process. A string
 * goes as text and bytes as binary, unless `server.binary` says otherwise.
 */
export function websocketServerPublish(server: ServerArg & { topic?: string }, data: SendData): PublishStatus {
  const status = binding.websocketServerPublish(bus.nativeArg(server), data);
  if (status.success) bus.afterPublish(server.ref, status.topic, data, server.binary, status);
  return status;
}

/** The topics with subscribers on this server, with their counts. */
export function websocketServerTopics(server: ServerArg): TopicInfo[] {
  return binding.websocketServerTopics(bus.nativeArg(server));
}

/**
 * Hands the connection of an `http.Server` 'upgrade' event (`req`, `socket`,
 * `head`) to a started server created with `noServer: true`; served from then
 * on like a connection it accepted itself. See lib/attach.ts and the README
 * ("Attach to an existing server").
 */
export function websocketServerHandleUpgrade(server: ServerArg, req: IncomingMessage, socket: Duplex, head: Buffer): UpgradeStatus {
  return handleUpgrade(server, req, socket, head);
}
