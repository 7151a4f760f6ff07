// What WebSocketServer and WebSocketClient share: the one native ref each
// owns, keep-alive (ref/unref), disposal, and how the options of an
// operation reach the commands without ever replacing the event dispatcher.
import { EventEmitter } from 'events';
import { binding } from './binding';
import type { EventMethod, RefStatus } from './types';

/** Refs are never 0, so 0 makes a cleared instance's commands fail cleanly. */
const NO_REF = 0;

/**
 * The object that owns each ref a WebSocketServer or WebSocketClient made. A
 * ref is given to the next object made once it is cleared, whichever way:
 * `websocketServerClear({ ref: server.handle })` as well as `server.clear()`.
 * The commands' clear reports here, so the object stops using the ref and
 * never stops, sends on or clears the ref's next owner.
 */
const owners = new Map<number, () => void>();

/** A ref was cleared (lib/commands.ts): its object, if one owns it, lets it go. */
export function refCleared(ref: number): void {
  const letGo = owners.get(ref);
  if (letGo === undefined) return;
  owners.delete(ref);
  letGo();
}

/**
 * The commands name a bad field of their argument as the command form spells
 * it (`server.topic`, `client.binary`); a class method's caller wrote
 * `publish(topic, ...)` or `send(data, { binary })`. Returns the TypeError
 * said again in the caller's words (`rename` maps the field), else `e`.
 */
export function inCallerTerms(e: unknown, rename: (field: string) => string = (f) => `options.${f}`): unknown {
  if (!(e instanceof TypeError)) return e;
  const m = /^(?:server|client)\.(\w+)/.exec(e.message);
  if (!m) return e;
  const said = new TypeError(rename(m[1]) + e.message.slice(m[0].length));
  Error.captureStackTrace(said, inCallerTerms);
  return said;
}

// Events maps each event name to its listener's arguments. The map is given
// to EventEmitter as it is: intersected with Record<keyof Events, any[]>, each
// argument list became `[client, context] & any[]`, whose fixed length made
// every listener that takes fewer arguments (`(client) => ...`) a type error.
export abstract class Endpoint<Events extends Record<keyof Events, any[]>> extends EventEmitter<Events> {
  /** The 4D plugin's `ref` of this object. Freed, and reusable by others, after clear(). */
  readonly handle: number;
  protected userMethod: EventMethod | undefined;
  private cleared = false;

  /** `create` makes the native object with the dispatcher as its method. */
  protected constructor(userMethod: EventMethod | undefined, create: (method: EventMethod) => number) {
    super();
    this.userMethod = userMethod;
    this.handle = create((server, client, type, context, worker, window, process) => {
      if (this.userMethod) this.userMethod(server, client, type, context, worker, window, process);
      // Errors are informational; an unheard 'error' must not throw.
      if (type === 'error' && (this as EventEmitter).listenerCount('error') === 0) return;
      this.dispatch(type, client, context);
    });
    owners.set(this.handle, () => {
      this.cleared = true;
    });
  }

  protected abstract dispatch(type: string, client: number, context: unknown): void;
  protected abstract clearNative(arg: { ref: number }): {} | RefStatus;

  /** Disposes the object at once and frees its ref. */
  clear(): {} | RefStatus {
    const result = this.clearNative({ ref: this.ref_() });
    this.cleared = true;
    return result;
  }

  /** A started object keeps the process alive (the default), like Node's sockets. */
  ref(): this {
    binding.setKeepAlive(this.ref_(), true);
    return this;
  }

  /** Lets the process exit while this object is started. */
  unref(): this {
    binding.setKeepAlive(this.ref_(), false);
    return this;
  }

  /** `using x = new WebSocketServer(...)` clears it at scope exit. */
  [Symbol.dispose](): void {
    if (!this.cleared) this.clear();
  }

  protected ref_(): number {
    return this.cleared ? NO_REF : this.handle;
  }

  /** The command argument: `ref` plus option updates; a `method` given here
   *  replaces the user's callback, never the dispatcher. */
  protected arg<O extends object>(options?: O): Omit<O, 'method'> & { ref: number } {
    if (options === undefined) return { ref: this.ref_() } as Omit<O, 'method'> & { ref: number };
    const { method, ...rest } = options as O & { method?: EventMethod };
    if (method !== undefined) this.userMethod = method;
    return { ...rest, ref: this.ref_() };
  }
}
