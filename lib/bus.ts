// A server's bus (types.ts, Bus): what ties the topics of the native server
// (one process) to a broker that reaches the servers of other processes.
//
// The engine knows the local subscriptions and ends them with their
// connections; this file follows it: the bus subscribes to a topic when it
// gets its first local subscriber and unsubscribes when the topic has none
// left (after an unsubscribe, after close events, or when a message comes
// in for a topic nobody here listens to any more). It remembers which topics
// each connection subscribed to, so that after a close it asks the engine
// about those topics only, never lists every topic of the server. Local delivery happens
// first, in the native publish; the bus is told afterwards and never waited
// on. What arrives from the bus is published locally only.
import { types as utilTypes } from 'util';
import { binding } from './binding';
import type { Bus, BusHandler, EventMethod, PublishStatus, SendData, TopicStatus } from './types';

interface Link {
  ref: number;
  bus: Bus;
  /** Topics this server asked the bus for. */
  topics: Set<string>;
  /** Between start and stop: the bus is open. */
  open: boolean;
  /** The method given at creation (the class's dispatcher or the user's), for bus errors. */
  method: EventMethod | undefined;
  worker: unknown;
  window: unknown;
  process: unknown;
  reconcileQueued: boolean;
  /** Each open connection's topics, as its subscribes and unsubscribes left them. */
  byClient: Map<number, Set<string>>;
  /** Topics of this server's that may have lost their last local subscriber (closes, a message nobody got). */
  candidates: Set<string>;
  /** Topics the bus brought a message for that this server no longer asked for (an unsubscribe the broker missed). */
  stray: Set<string>;
  /** Counts the opens: a failure from before a stop concerns no topic of the next start. */
  session: number;
  /** The class listens to the bus's state here. */
  onState?: (connected: boolean) => void;
}

const links = new Map<number, Link>();
/** Every bus ever tied to a server. */
const attachedOnce = new WeakSet<Bus>();
const BUS_METHODS = ['open', 'subscribe', 'unsubscribe', 'publish', 'flush', 'close'] as const;

/** A bus option as given; throws a TypeError naming `name` when it is not a Bus. */
export function checkBus(value: unknown, name: string): Bus {
  const missing =
    value === null || typeof value !== 'object'
      ? BUS_METHODS
      : BUS_METHODS.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function');
  if (missing.length > 0)
    throw new TypeError(`${name} must be a bus (an object with ${BUS_METHODS.join(', ')}); missing: ${missing.join(', ')}`);
  return value as Bus;
}

/**
 * The method a server with a bus is created with: it reports each close to
 * the bus link (a closed connection's topics may have lost their last local
 * subscriber), then calls the given method.
 */
export function observingMethod(method: EventMethod | undefined): EventMethod {
  const m: EventMethod = (server, client, type, context, worker, window, process) => {
    if (type === 'close') closed(server, client);
    if (method) method(server, client, type, context, worker, window, process);
  };
  observing.add(m);
  return m;
}

/** Throws a TypeError naming `name` when `bus` already serves a server (one bus serves one server). */
export function checkFree(bus: Bus, name: string): void {
  for (const l of links.values()) {
    if (l.bus === bus) throw new TypeError(`${name} is already used by another server (one bus serves one server)`);
  }
}

/**
 * A `bus` carried by a command's server argument (start, stop): the server's
 * own is accepted (the objects the commands give back carry it); anything else
 * is a TypeError, since a bus is tied to a server when it is created.
 */
export function checkCarried(server: { ref: number; bus?: unknown }): void {
  if (server.bus === undefined) return;
  const b = checkBus(server.bus, 'server.bus');
  const current = links.get(server.ref);
  if (current?.bus === b) return;
  if (current) throw new TypeError('server.bus cannot be replaced: clear the server and create another');
  // The bus of a server cleared since: the native command answers for the ref.
  if (attachedOnce.has(b)) return;
  throw new TypeError('server.bus is given when the server is created (websocketServer({ bus }) or new WebSocketServer({ bus })), not to a command');
}

/** Ties `bus` to the server `ref` (once: a bus serves one server; checkFree first). */
export function attach(ref: number, bus: Bus, method: EventMethod | undefined, given: Record<string, unknown>): void {
  const current = links.get(ref);
  if (current?.bus === bus) return;
  if (current) throw new TypeError('server.bus cannot be replaced: clear the server and create another');
  checkFree(bus, 'options.bus');
  attachedOnce.add(bus);
  links.set(ref, {
    ref,
    bus,
    topics: new Set(),
    open: false,
    method,
    worker: given.worker,
    window: given.window,
    process: given.process,
    reconcileQueued: false,
    byClient: new Map(),
    candidates: new Set(),
    stray: new Set(),
    session: 0,
  });
}

export function hasBus(ref: number): boolean {
  return links.has(ref);
}

export function busOf(ref: number): Bus | undefined {
  return links.get(ref)?.bus;
}

export function onBusState(ref: number, fn: (connected: boolean) => void): void {
  const l = links.get(ref);
  if (l) l.onState = fn;
}

/**
 * Calls one of the bus's asynchronous methods and lets `failed` hear of any
 * failure: a promise that rejects, a method that throws, or one that returns
 * no promise at all (a bus written for a synchronous broker) — the bus is the
 * application's code, and a mistake in it must not become an unhandled
 * rejection or an exception thrown from a later turn.
 */
function busCall(call: () => unknown, failed: (e: unknown) => void): void {
  let result: unknown;
  try {
    result = call();
  } catch (e) {
    failed(e);
    return;
  }
  if (result !== null && typeof result === 'object' && typeof (result as Promise<unknown>).then === 'function') {
    Promise.resolve(result).catch(failed);
  }
  // Anything else: a synchronous bus that finished (its errors are thrown).
}

function report(l: Link, error: unknown, topic?: string): void {
  // Errors that come after the stop (a broker client rejecting the commands
  // it still had queued) or for a server cleared since (its ref may already
  // be another server's) are not this server's to hear.
  if (!l.open || links.get(l.ref) !== l) return;
  const reason = `bus: ${error instanceof Error ? error.message : String(error)}`;
  const context = {
    decompressionError: false,
    reason,
    http_status: 0,
    wait_time: 0,
    retries: 0,
    ...(topic !== undefined ? { topic } : {}),
  };
  if (l.method) l.method(l.ref, 0, 'error', context, l.worker, l.window, l.process);
}

/**
 * A command's server argument as the native side must get it: a `method` it
 * carries for a server with a bus is wrapped like the first one (the bus
 * keeps hearing about closes) and becomes the method bus errors go to.
 */
export function nativeArg<T extends { ref: number; method?: EventMethod }>(server: T): T {
  if (links.size === 0 || server === null || typeof server !== 'object' || typeof server.method !== 'function') return server;
  const l = links.get(server.ref);
  if (!l || isObserving(server.method)) return server;
  l.method = server.method;
  return { ...server, method: observingMethod(server.method) };
}

const observing = new WeakSet<EventMethod>();
function isObserving(m: EventMethod): boolean {
  return observing.has(m);
}

/**
 * Before the server starts: opens its bus. Returns an error message when the
 * bus cannot open (then the server must not start), and whether it opened
 * now (a failed native start closes it again).
 */
export function beforeStart(ref: number): { error?: string; openedNow: boolean } {
  const l = links.get(ref);
  if (!l || l.open) return { openedNow: false };
  try {
    open(l);
  } catch (e) {
    l.open = false;
    return { error: `bus: ${e instanceof Error ? e.message : String(e)}`, openedNow: false };
  }
  return { openedNow: true };
}

function open(l: Link): void {
  const ref = l.ref;
  l.open = true;
  l.session++;
  l.stray.clear();
  const handler: BusHandler = {
    message: (topic, data, binary) => {
      if (!l.open || links.get(ref) !== l) return;
      let status: PublishStatus;
      try {
        status = binding.websocketServerPublish({ ref, topic, binary }, data);
      } catch (e) {
        report(l, new Error(`a message from the bus for "${topic}" was not delivered: ${e instanceof Error ? e.message : String(e)}`), topic);
        return;
      }
      if (!status.success) report(l, new Error(`a message from the bus for "${topic}" was not delivered: ${status.message}`), topic);
      else if (status.subscribers === 0) {
        if (l.topics.has(status.topic)) l.candidates.add(status.topic);
        else l.stray.add(status.topic);
        queueReconcile(ref);
      }
    },
    error: (error, topic) => {
      if (l.open) report(l, error, topic);
    },
    state: (connected) => {
      if (l.open && l.onState) l.onState(connected);
    },
  };
  l.bus.open(handler);
}

/** The server stopped or was cleared: the bus disconnects. */
export function stopped(ref: number, forget: boolean): void {
  const l = links.get(ref);
  if (!l) return;
  if (forget) links.delete(ref);
  if (!l.open) return;
  l.open = false;
  l.topics.clear();
  l.byClient.clear();
  l.candidates.clear();
  busCall(() => l.bus.close(), () => {});
}

export function afterSubscribe(ref: number, status: TopicStatus): void {
  const l = links.get(ref);
  if (!l || !l.open || !status.success) return;
  let mine = l.byClient.get(status.client);
  if (!mine) l.byClient.set(status.client, (mine = new Set()));
  mine.add(status.topic);
  if (l.topics.has(status.topic)) return;
  const topic = status.topic;
  const session = l.session;
  l.topics.add(topic);
  busCall(
    () => l.bus.subscribe(topic),
    (e) => {
      // Not subscribed after all: the next local subscriber asks again.
      if (links.get(ref) === l && l.session === session) l.topics.delete(topic);
      report(l, e, topic);
    },
  );
}

export function afterUnsubscribe(ref: number, status: TopicStatus): void {
  const l = links.get(ref);
  if (!l || !l.open || !status.success) return;
  l.byClient.get(status.client)?.delete(status.topic);
  if (status.subscribers > 0 || !l.topics.has(status.topic)) return;
  l.topics.delete(status.topic);
  busCall(() => l.bus.unsubscribe(status.topic), (e) => report(l, e, status.topic));
}

/** Hands a locally published message to the bus (never waiting on it); adds its answer to the status. */
export function afterPublish(ref: number, topic: string, data: SendData, binaryOption: unknown, status: PublishStatus): void {
  const l = links.get(ref);
  if (!l || !status.success) return;
  if (!l.open) {
    status.bus = { success: false, message: 'The bus is not open' };
    return;
  }
  // The frame type the native publish chose (args.h, sendsBinary).
  const binary = typeof data === 'string' ? binaryOption === true : binaryOption !== false;
  // A copy, never a view: the caller's bytes may change or vanish once this
  // returns (a payload lent by borrowedPayloads is detached then), and a bus
  // may keep what it is given.
  let bytes: Buffer;
  if (typeof data === 'string') bytes = Buffer.from(data, 'utf8');
  // (An ArrayBuffer of another realm, a vm context's or an Electron
  // context's, is not `instanceof ArrayBuffer` here.)
  else if (utilTypes.isAnyArrayBuffer(data)) bytes = Buffer.from(new Uint8Array(data as ArrayBuffer));
  else bytes = Buffer.from(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  let answer: unknown;
  try {
    answer = l.bus.publish(topic, bytes, binary);
  } catch (e) {
    status.bus = { success: false, message: e instanceof Error ? e.message : String(e) };
    return;
  }
  if (answer !== null && typeof answer === 'object' && typeof (answer as Promise<unknown>).then === 'function') {
    // A bus whose publish is async (against the contract): its failure is an error event, never an unhandled rejection.
    Promise.resolve(answer).catch((e) => report(l, e, topic));
    // Taken as handed over; a later failure comes as an error event.
    status.bus = { success: true, message: '' };
  } else if (answer === null || typeof answer !== 'object' || typeof (answer as { success?: unknown }).success !== 'boolean') {
    status.bus = { success: false, message: "the bus's publish returned no status ({ success, message })" };
  } else {
    status.bus = answer as { success: boolean; message: string };
  }
}

/** A connection closed: the engine ended its subscriptions; its topics may have lost their last one. */
function closed(ref: number, client: number): void {
  const l = links.get(ref);
  if (!l || !l.open) return;
  const mine = l.byClient.get(client);
  if (!mine) return;
  l.byClient.delete(client);
  for (const topic of mine) if (l.topics.has(topic)) l.candidates.add(topic);
  if (l.candidates.size > 0) queueReconcile(ref);
}

/**
 * Unsubscribes the bus from the candidate topics that have no local
 * subscriber left, and from stray ones (once per turn, for every close of
 * that turn). The engine is asked about those topics only: a close costs the
 * closed connection's topics, not every topic of the server.
 */
function queueReconcile(ref: number): void {
  const l = links.get(ref);
  if (!l || !l.open || l.reconcileQueued) return;
  l.reconcileQueued = true;
  setImmediate(() => {
    l.reconcileQueued = false;
    if (!l.open || links.get(ref) !== l) return;
    const asked = [...new Set([...l.candidates, ...l.stray])];
    const stray = l.stray;
    l.candidates = new Set();
    l.stray = new Set();
    if (asked.length === 0) return;
    const counts = binding.topicSubscribers(ref, asked);
    asked.forEach((topic, i) => {
      if (counts[i] > 0) return;
      if (l.topics.has(topic)) l.topics.delete(topic);
      else if (!stray.has(topic)) return; // not the bus's (its subscribe failed): nothing to end
      busCall(() => l.bus.unsubscribe(topic), (e) => report(l, e, topic));
    });
  });
}
