export interface Slots {
  /** How many may hold a slot at once. */
  readonly size: number;
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Take a slot for longer than one call (a guest that serves several jobs); call the returned function to give it back. */
  acquire(): Promise<() => void>;
  /** A slot now if one is free (none waiting before), else undefined. */
  tryAcquire(): (() => void) | undefined;
}

/** For a single command: every guest runs at once. */
export const NO_LIMIT: Slots = { size: Infinity, run: <T>(fn: () => Promise<T>): Promise<T> => fn(), acquire: async () => () => {}, tryAcquire: () => () => {} };

/** A counting semaphore: at most `size` holders at once, served in arrival order. */
export class Limiter implements Slots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`limiter size must be a positive integer, not ${size}`);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async acquire(): Promise<() => void> {
    if (this.active >= this.size) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    return this.releaser();
  }

  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.size) return undefined;
    this.active++;
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the next waiter, or free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    };
  }
}

/** fn over items, at most `n` at once, results in the items' order. */
export async function mapConcurrent<T, R>(items: readonly T[], n: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  return results;
}
