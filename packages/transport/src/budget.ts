import { InvalidArgError } from '@ffnet/serde';

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
 */
export class ByteBudget {
  readonly limit: number;
  readonly name: string;
  #used = 0;
  #peak = 0;
  readonly #waiters = new Set<BudgetWaiter>();
  #wakeScheduled = false;

  constructor(limit: number, name = 'byte budget') {
    if (!(Number.isSafeInteger(limit) && limit > 0)) throw new InvalidArgError(`${name} must be a positive integer number of bytes, got ${limit}`);
    this.limit = limit;
    this.name = name;
  }

  get used(): number {
    return this.#used;
  }

  get stats(): ByteBudgetStats {
    return { limit: this.limit, used: this.#used, peak: this.#peak, waiting: this.#waiters.size };
  }

  /** Takes n bytes if they fit under the limit; false (nothing taken) otherwise. */
  tryAcquire(n: number): boolean {
    if (n <= 0) return true;
    const used = this.#used + n;
    if (used > this.limit) return false;
    this.#used = used;
    if (used > this.#peak) this.#peak = used;
    return true;
  }

  /** Takes n bytes even past the limit (for what must go through; callers bound how often). */
  force(n: number): void {
    this.#used += n;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }

  release(n: number): void {
    if (n <= 0) return;
    this.#used -= n;
    if (this.#used < 0) this.#used = 0;
    if (this.#waiters.size > 0 && !this.#wakeScheduled) {
      this.#wakeScheduled = true;
      setImmediate(this.#wake);
    }
  }

  /** Calls w.onBudget() after releases until it returns true or cancel(w). Idempotent. */
  wait(w: BudgetWaiter): void {
    this.#waiters.add(w);
  }

  cancel(w: BudgetWaiter): void {
    this.#waiters.delete(w);
  }

  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    for (const w of this.#waiters) {
      if (this.#used >= this.limit) break;
      if (w.onBudget()) this.#waiters.delete(w);
    }
  };
}
