// ix-websocket: WebSocket server and client with a native engine on its own
// IO threads, driven through the command set of the 4D "WebSocket" plugin,
// plus EventEmitter classes built on the same commands.
export {
  websocketServer,
  websocketClient,
  websocketServerStart,
  websocketClientStart,
  websocketServerStop,
  websocketClientStop,
  websocketServerSend,
  websocketClientSend,
  websocketServerClear,
  websocketClientClear,
  websocketServerClients,
  websocketServerPing,
  websocketClientPing,
  websocketServerSubscribe,
  websocketServerUnsubscribe,
  websocketServerPublish,
  websocketServerTopics,
  websocketServerHandleUpgrade,
} from './commands';
export { WebSocketServer } from './server';
export type { ServerEvents, ServerSendOptions, PublishOptions } from './server';
export { WebSocketClient } from './client';
export type { ClientEvents, ClientSendOptions } from './client';
export type * from './types';

import { binding } from './binding';
import type { BufferPoolStats } from './types';
/** Number of IO threads serving every connection (set IXWS_IO_THREADS before loading to change). */
export function ioThreads(): number {
  return binding.ioThreads();
}
/** The engine's pool of recycled large message buffers (process-wide; diagnostics). */
export function bufferPoolStats(): BufferPoolStats {
  return binding.bufferPoolStats();
}
