// The exact shape of what the native module (build/Release/ix_websocket.node)
// exports. The types it takes and returns, with their documentation, are
// lib/types.ts's (one place for both layers); lib/ re-exports the commands
// with the same semantics.
import type {
  BufferPoolStats,
  ClientArg,
  PublishStatus,
  TopicInfo,
  TopicStatus,
  ClientObject,
  ClientOptions,
  ClientStartStatus,
  RefStatus,
  SendData,
  SendStatus,
  ServerArg,
  ServerObject,
  ServerOptions,
  ServerSendStatus,
  ServerStartStatus,
  VerifyClient,
  VerifyClientAnswer,
  VerifyClientInfo,
  UpgradeStatus,
} from './lib/types';

/**
 * The native module's exports: the plugin's commands as lib/commands.ts wraps them (see there for
 * their documentation), and what the facade classes and tests use beyond them.
 */
export interface Binding {
  /** creates a server object (nothing listens until start) */
  websocketServer(options?: ServerOptions): ServerObject;
  /** creates a client object (nothing connects until start) */
  websocketClient(options?: ClientOptions): ClientObject;
  /** listens (or, with `noServer`, gets ready for adopted sockets) */
  websocketServerStart(server: ServerArg): ServerStartStatus;
  /** connects; resolves with the first attempt's outcome */
  websocketClientStart(client: ClientArg): Promise<ClientStartStatus>;
  /** the updated copy of the object, or a RefStatus for an unknown ref */
  websocketServerStop(server: ServerArg): ServerObject | RefStatus;
  /** the updated copy of the object (after a bounded close), or a RefStatus for an unknown ref */
  websocketClientStop(client: ClientArg): ClientObject | RefStatus;
  /** one status per target; [] for an unknown ref */
  websocketServerSend(server: ServerArg, data: SendData): ServerSendStatus[];
  /**
   * The facade's fast path of websocketServerSend for `{ ref, clients: [client], binary? }`
   * (nothing else set): out receives success, compressionError, payloadSize, wireSize,
   * bufferedAmount (1/0 for the booleans); returns undefined, the status's message, or null
   * when nothing was sent and websocketServerSend must answer.
   */
  websocketServerSendTo(ref: number, client: number, binary: boolean | undefined, data: SendData, out: Float64Array): string | undefined | null;
  /** Large received payloads alias native bytes (true) or are copied (false: built with NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED, the Electron profile). */
  readonly externalBuffers: boolean;
  /** Whether an object carries a top-level key other than ref, clients and binary. */
  hasConfigKeys(o: object): boolean;
  /** one message to the server */
  websocketClientSend(client: ClientArg, data: SendData): SendStatus;
  /** {} on success; a RefStatus for an unknown ref */
  websocketServerClear(server: ServerArg): {} | RefStatus;
  /** {} on success; a RefStatus for an unknown ref */
  websocketClientClear(client: ClientArg): {} | RefStatus;
  /** [] for an unknown ref */
  websocketServerClients(server: ServerArg): number[];
  /** adds an open connection to a topic's subscribers */
  websocketServerSubscribe(server: ServerArg, client: number, topic: string): TopicStatus;
  /** removes a connection from a topic's subscribers */
  websocketServerUnsubscribe(server: ServerArg, client: number, topic: string): TopicStatus;
  /** one message to a topic's subscribers (and the bus's other processes) */
  websocketServerPublish(server: ServerArg & { topic?: string }, data: SendData): PublishStatus;
  /** the topics with subscribers on this server; [] for an unknown ref */
  websocketServerTopics(server: ServerArg): TopicInfo[];
  /** each topic's local subscribers (0 for one nobody is in, or an unknown server); lib/bus.ts asks after closes */
  topicSubscribers(ref: number, topics: string[]): number[];

  // Beyond the 4D plugin's commands: used by the facade classes, and what the
  // engine reports about itself.
  /** whether a started object keeps the event loop alive (like net.Server ref/unref) */
  setKeepAlive(ref: number, keepAlive: boolean): boolean;
  /** bytes queued for sending: a client's, or one server connection's */
  bufferedAmount(ref: number, client?: number): number;
  /** close one server-side connection with a code (1000-1003, 1007-1014, 3000-4999) and reason */
  websocketServerCloseClient(server: ServerArg, client: number, code?: number, reason?: string): boolean;
  /** a ping (payload at most 125 bytes) to one connection; false when it is not open */
  websocketServerPing(server: ServerArg, client: number, data?: SendData): boolean;
  /** a ping (payload at most 125 bytes); false when not open */
  websocketClientPing(client: ClientArg, data?: SendData): boolean;
  /**
   * the verdict on a connection waiting in verifyClient (`token` and `owner`
   * as the verify handler got them); false for an unknown server or one that
   * is not `owner` (the ref was cleared and given to another server)
   */
  websocketServerAnswerVerify(server: ServerArg, token: number, answer: VerifyClientAnswer, owner: number): boolean;
  /**
   * sets the function native delivery calls for each connection awaiting
   * verifyClient: (hook, info, server ref, token, owner: the server's engine).
   * lib/verify.ts sets it when the facade loads; without it, connections to a
   * server with verifyClient are refused with 500.
   */
  setVerifyHandler(
    handler: (hook: VerifyClient, info: VerifyClientInfo, server: number, token: number, owner: number) => void,
  ): void;
  /** number of IO threads (set IXWS_IO_THREADS before loading to change) */
  ioThreads(): number;
  /** the engine's pool of recycled large message buffers (process-wide) */
  bufferPoolStats(): BufferPoolStats;
  /**
   * This environment's spare payload strings (small received payloads given
   * back to the IO threads for the next messages, at most 256 held): held
   * now; since the environment loaded, handed to IO threads (given), taken
   * back after delivery (kept), freed instead because the list was full.
   * For tests and diagnostics.
   */
  payloadSpareStats(): {
    /** strings held now */
    held: number;
    /** handed to IO threads since the environment loaded */
    given: number;
    /** taken back after delivery */
    kept: number;
    /** freed because the list was full */
    freed: number;
  };
  /**
   * How the engine reads a client url when it is given as is (the facade
   * first normalises it with Node's URL): the parts, or `error` for a url a
   * start would refuse (including every url WHATWG URL would read another way).
   */
  parseClientUrl(url: string): ParsedClientUrl;
  /**
   * Hands a connected TCP socket's descriptor (duplicated here; the caller
   * keeps and closes its own) and the bytes already read from it (the
   * upgrade request, whole, and what followed) to a started noServer server.
   * lib/attach.ts is the one caller (handleUpgrade).
   */
  websocketServerAdopt(server: ServerArg, fd: number, received: Buffer): UpgradeStatus | RefStatus;
}

/** How the engine reads a client url: its parts, or why a start would refuse it. */
export type ParsedClientUrl =
  | {
      /** wss:// */
      secure: boolean;
      /** the host name or address (an IPv6 address without brackets) */
      host: string;
      /** the port (the scheme's default when none is given) */
      port: number;
      /** the request target: path and query */
      target: string;
      /** absent: the url is good */
      error?: undefined;
    }
  | {
      /** why a start would refuse the url */
      error: string;
    };

/** The loaded native module. */
declare const binding: Binding;
export default binding;
