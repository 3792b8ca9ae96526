import { CancelledError, InvalidArgError, ResourceExhaustedError } from './errors.js';

/**
 * Something waiting for a Semaphore to have room, without a promise: for paths that run per message, where a
 * promise and its closures per wait would cost more than the work. It is called after releases, and takes what
 * it needs itself (tryAcquire).
 */
export interface SemaphoreWaiter {
  /** Units were released: try again. True = satisfied (forgotten); false = still waiting, keep my place. */
  onAvailable(): boolean;
}

export interface SemaphoreOptions {
  /** Names the semaphore in error messages (default `"semaphore"`). */
  name?: string;
  /**
   * Most waiters queued at once, promise and callback forms together (default: unbounded). Past it,
   * `acquire` rejects and `wait` throws ResourceExhaustedError, so a flood of callers cannot grow memory.
   */
  maxWaiters?: number;
}

export interface AcquireOptions {
  /** Aborting it while waiting rejects with its reason (or CancelledError) and takes nothing. */
  signal?: AbortSignal;
  /** The remote end the wait is for, named in errors. */
  peer?: string;
}

export interface SemaphoreStats {
  readonly limit: number;
  /** Units held now (may exceed limit after force()). */
  readonly used: number;
  /** Highest `used` seen. */
  readonly peak: number;
  /** Waiters queued now (acquire and wait together). */
  readonly waiting: number;
  /** acquire/tryAcquire calls that got their units, since creation. */
  readonly granted: number;
}

/** One queued acquire(). A doubly linked node, so an abort unlinks it in O(1). */
class Pending {
  prev: Pending | null = null;
  next: Pending | null = null;
  readonly n: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly sem: Semaphore;
  constructor(sem: Semaphore, n: number, resolve: () => void, reject: (e: unknown) => void, signal: AbortSignal | undefined) {
    this.sem = sem;
    this.n = n;
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
  }
  /** The signal's abort listener (an object listener: no closure per wait). */
  handleEvent(): void {
    abandon(this);
  }
}

/** Set by Semaphore's static block: reaches its private queue without making the method public. */
let abandon: (p: Pending) => void;

const RESOLVED: Promise<void> = Promise.resolve();

function units(name: string, n: number): number {
  if (!(Number.isSafeInteger(n) && n >= 0)) throw new InvalidArgError(`${name}: units must be a non-negative integer, got ${n}`);
  return n;
}

function aborted(signal: AbortSignal, name: string): unknown {
  return signal.reason ?? new CancelledError(`${name}: acquire aborted`);
}

/**
 * A counting semaphore of `limit` units (slots, bytes, queue pairs): one implementation for every cap in ffnet.
 *
 * - `tryAcquire(n)` takes n units now or nothing; it does not overtake queued `acquire` calls.
 * - `acquire(n, {signal})` waits FIFO: a large request at the head is not starved by small ones behind it.
 * - `wait(w)` is the callback form: `w.onAvailable()` runs after releases, oldest first, once per event-loop turn
 *   and never inside the releasing call (a release on one connection does not run another's reads inside it).
 * - `release(n)` gives units back; giving back more than is held is a bug and throws.
 */
export class Semaphore {
  readonly name: string;
  readonly maxWaiters: number;
  #limit: number;
  #used = 0;
  #peak = 0;
  #granted = 0;
  #head: Pending | null = null;
  #tail: Pending | null = null;
  #queued = 0;
  readonly #callbacks = new Set<SemaphoreWaiter>();
  #wakeScheduled = false;

  constructor(limit: number, options: SemaphoreOptions = {}) {
    this.name = options.name ?? 'semaphore';
    this.#limit = Semaphore.#checkLimit(this.name, limit);
    const mw = options.maxWaiters ?? Number.POSITIVE_INFINITY;
    if (!(mw === Number.POSITIVE_INFINITY || (Number.isSafeInteger(mw) && mw >= 0))) {
      throw new InvalidArgError(`${this.name}: maxWaiters must be a non-negative integer, got ${mw}`);
    }
    this.maxWaiters = mw;
  }

  static #checkLimit(name: string, limit: number): number {
    if (!(Number.isSafeInteger(limit) && limit > 0)) throw new InvalidArgError(`${name} must be a positive integer limit, got ${limit}`);
    return limit;
  }

  get limit(): number {
    return this.#limit;
  }

  /**
   * A new limit takes effect at once: raising it grants queued waiters that now fit; lowering it takes nothing
   * back, and queued acquires larger than the new limit fail with InvalidArgError (they could never be granted).
   */
  set limit(v: number) {
    this.#limit = Semaphore.#checkLimit(this.name, v);
    for (let p = this.#head; p !== null; ) {
      const next = p.next;
      if (p.n > v) {
        this.#unlink(p);
        p.reject(new InvalidArgError(`${this.name}: ${p.n} units can never fit the new limit of ${v}`));
      }
      p = next;
    }
    this.#grant();
  }

  get used(): number {
    return this.#used;
  }

  /** Units free now (negative after force() past the limit). */
  get available(): number {
    return this.#limit - this.#used;
  }

  get waiting(): number {
    return this.#queued + this.#callbacks.size;
  }

  get stats(): SemaphoreStats {
    return { limit: this.#limit, used: this.#used, peak: this.#peak, waiting: this.waiting, granted: this.#granted };
  }

  /** Takes n units if they fit and no acquire() is queued ahead; false (nothing taken) otherwise. */
  tryAcquire(n = 1): boolean {
    if (!(Number.isSafeInteger(n) && n > 0)) return units(this.name, n) === 0;
    const used = this.#used + n;
    if (used > this.#limit || this.#head !== null) return false;
    this.#take(used);
    return true;
  }

  /** Takes n units even past the limit, for what must go through; callers bound how often. */
  force(n: number): void {
    units(this.name, n);
    this.#take(this.#used + n);
  }

  /**
   * Resolves once n units are taken, FIFO behind earlier acquires. Rejects with InvalidArgError if n exceeds the
   * limit, ResourceExhaustedError if maxWaiters are already queued, and the signal's reason (or CancelledError) if
   * it aborts first, in which case nothing is taken.
   */
  acquire(n = 1, options: AcquireOptions = {}): Promise<void> {
    try {
      units(this.name, n);
    } catch (e) {
      return Promise.reject(e);
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(aborted(signal, this.name));
    if (this.tryAcquire(n)) return RESOLVED;
    if (n > this.#limit) {
      return Promise.reject(new InvalidArgError(`${this.name}: ${n} units can never fit the limit of ${this.#limit}`));
    }
    if (this.waiting >= this.maxWaiters) {
      return Promise.reject(
        new ResourceExhaustedError(`${this.name}: ${this.waiting} callers already waiting, the cap (maxWaiters) is ${this.maxWaiters}`, {
          peer: options.peer,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const p = new Pending(this, n, resolve, reject, signal);
      if (this.#tail === null) this.#head = p;
      else {
        this.#tail.next = p;
        p.prev = this.#tail;
      }
      this.#tail = p;
      this.#queued++;
      signal?.addEventListener('abort', p, { once: true });
    });
  }

  /** Gives back n units: grants queued acquires that now fit, then wakes callback waiters on a later turn. */
  release(n = 1): void {
    units(this.name, n);
    if (n > this.#used) throw new InvalidArgError(`${this.name}: release of ${n} units, but only ${this.#used} are held`);
    this.#used -= n;
    if (this.#head !== null) this.#grant();
    if (this.#callbacks.size > 0 && !this.#wakeScheduled) {
      this.#wakeScheduled = true;
      setImmediate(this.#wake);
    }
  }

  /**
   * Calls w.onAvailable() after releases until it returns true or cancel(w). Idempotent for a waiter already
   * waiting; throws ResourceExhaustedError past maxWaiters.
   */
  wait(w: SemaphoreWaiter): void {
    if (this.#callbacks.has(w)) return;
    if (this.waiting >= this.maxWaiters) {
      throw new ResourceExhaustedError(`${this.name}: ${this.waiting} callers already waiting, the cap (maxWaiters) is ${this.maxWaiters}`);
    }
    this.#callbacks.add(w);
  }

  cancel(w: SemaphoreWaiter): void {
    this.#callbacks.delete(w);
  }

  static {
    abandon = (p) => p.sem.#abandon(p);
  }

  /** An acquire's signal aborted: it leaves the queue, and those behind it may now fit. */
  #abandon(p: Pending): void {
    if (p.prev === null && this.#head !== p) return; // already granted or removed
    this.#unlink(p);
    p.reject(aborted(p.signal!, this.name));
    this.#grant();
  }

  #take(used: number): void {
    this.#used = used;
    if (used > this.#peak) this.#peak = used;
    this.#granted++;
  }

  #unlink(p: Pending): void {
    if (p.prev === null) this.#head = p.next;
    else p.prev.next = p.next;
    if (p.next === null) this.#tail = p.prev;
    else p.next.prev = p.prev;
    p.prev = p.next = null;
    this.#queued--;
    p.signal?.removeEventListener('abort', p);
  }

  #grant(): void {
    for (let p = this.#head; p !== null && this.#used + p.n <= this.#limit; p = this.#head) {
      this.#unlink(p);
      this.#take(this.#used + p.n);
      p.resolve();
    }
  }

  readonly #wake = (): void => {
    this.#wakeScheduled = false;
    for (const w of this.#callbacks) {
      if (this.#used >= this.#limit) break;
      if (w.onAvailable()) this.#callbacks.delete(w);
    }
  };
}
