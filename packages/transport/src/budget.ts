import { InvalidArgError, Semaphore, type SemaphoreWaiter } from '@ffnet/common';

/** Something waiting for a ByteBudget to have room again. */
export interface BudgetWaiter {
  /** Bytes were released: try again. True = satisfied (forgotten); false = still waiting. */
  onBudget(): boolean;
}

export interface ByteBudgetStats {
  readonly limit: number;
  readonly used: number;
  /** Highest `used` seen. */
  readonly peak: number;
  /** Waiters (connections with reading paused) waiting for room. */
  readonly waiting: number;
}

/**
 * A count of bytes against a cap, shared by the transports of a Server: each takes what it holds
 * (tryAcquire) and gives it back (release). A transport that cannot get bytes waits (wait()); releases wake
 * the waiters, oldest first, once per event-loop turn rather than once per release, and outside the
 * releasing call, so a frame completing on one connection does not run another connection's reads inside it.
 *
 * The counting and waking are @ffnet/common's Semaphore (its callback-waiter form, so no promise per wait); this
 * class keeps the byte-budget vocabulary and its lenient edges: non-positive amounts are no-ops and a release
 * past zero stops at zero.
 */
export class ByteBudget {
  readonly limit: number;
  readonly name: string;
  readonly #sem: Semaphore;
  /** One adapter per waiter, made on its first wait, so waiting again allocates nothing. */
  readonly #adapters = new WeakMap<BudgetWaiter, SemaphoreWaiter>();

  constructor(limit: number, name = 'byte budget') {
    if (!(Number.isSafeInteger(limit) && limit > 0)) throw new InvalidArgError(`${name} must be a positive integer number of bytes, got ${limit}`);
    this.limit = limit;
    this.name = name;
    this.#sem = new Semaphore(limit, { name });
  }

  get used(): number {
    return this.#sem.used;
  }

  get stats(): ByteBudgetStats {
    const s = this.#sem;
    return { limit: this.limit, used: s.used, peak: s.stats.peak, waiting: s.waiting };
  }

  /** Takes n bytes if they fit under the limit; false (nothing taken) otherwise. */
  tryAcquire(n: number): boolean {
    return n <= 0 || this.#sem.tryAcquire(n);
  }

  /** Takes n bytes even past the limit (for what must go through; callers bound how often). */
  force(n: number): void {
    if (n > 0) this.#sem.force(n);
  }

  release(n: number): void {
    const k = Math.min(n, this.#sem.used);
    if (k > 0) this.#sem.release(k);
  }

  /** Calls w.onBudget() after releases until it returns true or cancel(w). Idempotent. */
  wait(w: BudgetWaiter): void {
    let a = this.#adapters.get(w);
    if (a === undefined) {
      a = { onAvailable: () => w.onBudget() };
      this.#adapters.set(w, a);
    }
    this.#sem.wait(a);
  }

  cancel(w: BudgetWaiter): void {
    const a = this.#adapters.get(w);
    if (a !== undefined) this.#sem.cancel(a);
  }
}
