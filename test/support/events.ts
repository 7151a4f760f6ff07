// Waiting with a bound, and a recorder of the events a `method` receives.
import type { EventMethod, EventType } from '../../lib/index';

/** Resolves when check() returns a value other than undefined; rejects after timeoutMs. */
export function until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      let v: T | undefined;
      try {
        v = check();
      } catch (e) {
        reject(e);
        return;
      }
      if (v !== undefined) return resolve(v);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Ev {
  server: number;
  client: number;
  type: EventType;
  ctx: any;
  worker: unknown;
  window: unknown;
  process: unknown;
}

/** Records every event given to its `method`; waitFor looks at past and future events. */
export class Collector {
  readonly events: Ev[] = [];
  /** When each event reached the method (performance.now()), same index as events. */
  readonly times: number[] = [];
  readonly method: EventMethod = (server, client, type, ctx, worker, window, process) => {
    this.events.push({ server, client, type, ctx, worker, window, process });
    this.times.push(performance.now());
  };

  of(type: EventType, client?: number): Ev[] {
    return this.events.filter((e) => e.type === type && (client === undefined || e.client === client));
  }

  waitFor(pred: (e: Ev) => boolean, timeoutMs = 5000, what = 'an event'): Promise<Ev> {
    return until(() => this.events.find(pred), timeoutMs, `${what} (seen: ${this.summary()})`);
  }

  waitType(type: EventType, client?: number, timeoutMs = 5000): Promise<Ev> {
    return this.waitFor(
      (e) => e.type === type && (client === undefined || e.client === client),
      timeoutMs,
      `'${type}'${client === undefined ? '' : ` from ${client}`}`,
    );
  }

  /** Waits until n events match and returns them in order. */
  waitCount(pred: (e: Ev) => boolean, n: number, timeoutMs = 5000, what = 'events'): Promise<Ev[]> {
    return until(
      () => {
        const m = this.events.filter(pred);
        return m.length >= n ? m : undefined;
      },
      timeoutMs,
      `${n} ${what} (seen: ${this.summary()})`,
    );
  }

  summary(): string {
    return this.events.map((e) => `${e.type}@${e.client}`).join(', ') || 'none';
  }
}
