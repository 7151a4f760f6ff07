// What a test started, stopped after it: suites call runCleanup in afterEach.

const disposers: Array<() => unknown> = [];

/** Registers work for runCleanup() (run in afterEach), last registered first. */
export function defer(fn: () => unknown): void {
  disposers.push(fn);
}

export async function runCleanup(): Promise<void> {
  while (disposers.length) {
    const fn = disposers.pop()!;
    try {
      await fn();
    } catch {
      // cleanup of an already-gone object is fine
    }
  }
}
