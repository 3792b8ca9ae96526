import { InvalidArgError } from '@ffnet/common';

/** An object woken at its deadline: lets a caller schedule without allocating a closure per deadline. */
export interface TimerTarget<A = undefined> {
  onTimeout(arg: A): void;
}

export type TimerCallback<A = undefined> = (arg: A) => void;

/** What schedule() returns: pass it to cancel(). */
export interface TimerHandle {
  /** The absolute deadline, in performance.now() milliseconds. */
  readonly deadline: number;
  /** Still waiting: neither fired, cancelled nor dropped by close(). */
  readonly pending: boolean;
}

export interface TimerWheelOptions {
  /** Keep the process alive while deadlines are pending (default false: a timeout alone shouldn't). */
  ref?: boolean;
}

// setTimeout's ceiling; a farther deadline just takes more than one wake-up.
const MAX_DELAY = 0x7fff_ffff;

class Entry implements TimerHandle {
  /** Position in the heap, -1 once fired or cancelled: cancel() finds the entry in O(1) and sifts in O(log n). */
  index = -1;
  constructor(
    readonly deadline: number,
    readonly seq: number,
    public target: TimerTarget<unknown> | TimerCallback<unknown> | undefined,
    public arg: unknown,
  ) {}
  get pending(): boolean {
    return this.index >= 0;
  }
}

// The sequence number breaks ties, so equal deadlines fire in the order they were scheduled.
function before(a: Entry, b: Entry): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

/**
 * Many deadlines on one Node timer. Pending entries sit in a binary min-heap keyed by (deadline, schedule order),
 * and a single setTimeout is armed for the earliest one. schedule and cancel are O(log n); firing pops due entries
 * in deadline order. Deadlines are absolute performance.now() milliseconds (monotonic; per thread, so don't pass
 * them between workers).
 *
 * An entry never fires before its deadline: Node's timer may wake a little early (its clock is the loop's cached,
 * whole-millisecond time), and then the wheel just re-arms. The name is kept from the API sketch this fills; see
 * the README for why a heap rather than a hashed wheel.
 */
export class TimerWheel {
  readonly #heap: Entry[] = [];
  #seq = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The deadline the armed timer was set for: a later schedule leaves it alone, an earlier one re-arms it. */
  #armedFor = Number.POSITIVE_INFINITY;
  #ref: boolean;
  #closed = false;
  readonly #onTimer = (): void => this.#expire();

  constructor(options: TimerWheelOptions = {}) {
    this.#ref = options.ref ?? false;
  }

  /** Pending deadlines. */
  get size(): number {
    return this.#heap.length;
  }

  /** The earliest pending deadline, if any. */
  get nextDeadline(): number | undefined {
    return this.#heap[0]?.deadline;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Calls `target(arg)`, or `target.onTimeout(arg)`, once performance.now() >= `deadline`. A deadline already
   * past fires on the next timer turn. Throws InvalidArgError for a non-finite deadline, a bad target or a closed
   * wheel.
   */
  schedule(deadline: number, target: TimerTarget | TimerCallback): TimerHandle;
  schedule<A>(deadline: number, target: TimerTarget<A> | TimerCallback<A>, arg: A): TimerHandle;
  schedule(deadline: number, target: TimerTarget<unknown> | TimerCallback<unknown>, arg?: unknown): TimerHandle {
    if (this.#closed) throw new InvalidArgError('TimerWheel.schedule on a closed wheel');
    if (!Number.isFinite(deadline)) throw new InvalidArgError(`TimerWheel deadline must be a finite number, got ${deadline}`);
    if (typeof target !== 'function' && typeof target?.onTimeout !== 'function') {
      throw new InvalidArgError('TimerWheel target must be a function or an object with onTimeout()');
    }
    const entry = new Entry(deadline, this.#seq++, target, arg);
    const heap = this.#heap;
    heap.push(entry);
    this.#up(heap.length - 1);
    if (entry.index === 0) this.#arm(deadline);
    return entry;
  }

  /** schedule(performance.now() + delayMs, ...). */
  scheduleAfter(delayMs: number, target: TimerTarget | TimerCallback): TimerHandle;
  scheduleAfter<A>(delayMs: number, target: TimerTarget<A> | TimerCallback<A>, arg: A): TimerHandle;
  scheduleAfter(delayMs: number, target: TimerTarget<unknown> | TimerCallback<unknown>, arg?: unknown): TimerHandle {
    return this.schedule(performance.now() + delayMs, target, arg);
  }

  /**
   * Removes a pending entry so it never fires. Returns false (and does nothing) for one that already fired, was
   * cancelled, or belongs to another wheel.
   */
  cancel(handle: TimerHandle): boolean {
    const entry = handle as Entry;
    if (this.#heap[entry.index] !== entry) return false;
    this.#removeAt(entry.index);
    return true;
  }

  /** Keeps the process alive while deadlines are pending. */
  ref(): this {
    this.#ref = true;
    // An unref'd wheel may have left its timer armed with nothing pending (see #removeAt); that one must not hold.
    if (this.#heap.length === 0) this.#disarm();
    else this.#timer?.ref();
    return this;
  }

  /** Lets the process exit with deadlines pending (the default). */
  unref(): this {
    this.#ref = false;
    this.#timer?.unref();
    return this;
  }

  /** Drops every pending entry unfired and stops the timer. Idempotent; schedule() throws afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#disarm();
    for (const entry of this.#heap) release(entry);
    this.#heap.length = 0;
  }

  #expire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const heap = this.#heap;
    // Entries scheduled by the callbacks below wait for the next turn, even if already due, so a callback that
    // keeps rescheduling itself in the past cannot hold the loop in this batch.
    const seqLimit = this.#seq;
    let now = performance.now();
    try {
      while (heap.length > 0) {
        const entry = heap[0] as Entry;
        if (entry.deadline > now) {
          now = performance.now();
          if (entry.deadline > now) break;
        }
        if (entry.seq >= seqLimit) break;
        const target = entry.target as TimerTarget<unknown> | TimerCallback<unknown>;
        const arg = entry.arg;
        this.#removeAt(0);
        if (typeof target === 'function') target(arg);
        else target.onTimeout(arg);
      }
    } finally {
      // Also reached when a callback throws: the exception goes on to Node as any timer's would, and the
      // remaining entries stay scheduled.
      const head = heap[0];
      if (head !== undefined) this.#arm(head.deadline);
    }
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined) {
      if (this.#armedFor <= deadline) return;
      clearTimeout(this.#timer);
    }
    const delay = Math.min(MAX_DELAY, Math.max(1, Math.ceil(deadline - performance.now())));
    this.#timer = setTimeout(this.#onTimer, delay);
    if (!this.#ref) this.#timer.unref();
    this.#armedFor = deadline;
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #removeAt(i: number): void {
    const heap = this.#heap;
    const entry = heap[i] as Entry;
    const last = heap.pop() as Entry;
    if (last !== entry) {
      heap[i] = last;
      last.index = i;
      if (i > 0 && before(last, heap[(i - 1) >> 1] as Entry)) this.#up(i);
      else this.#down(i);
    }
    release(entry);
    // A timer armed for an earlier head that is gone is left to wake and re-arm. An empty heap drops it only when
    // ref'd, so a cancelled deadline never holds the process open; an unref'd wheel keeps it, since with one
    // deadline at a time (one call in flight) clearTimeout plus setTimeout on every call cost more than the one
    // spare wake-up.
    if (heap.length === 0 && this.#ref) this.#disarm();
  }

  #up(i: number): void {
    const heap = this.#heap;
    const entry = heap[i] as Entry;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p] as Entry;
      if (!before(entry, parent)) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = entry;
    entry.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i] as Entry;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && before(heap[c + 1] as Entry, heap[c] as Entry)) c++;
      const child = heap[c] as Entry;
      if (!before(child, entry)) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = entry;
    entry.index = i;
  }
}

// Drops the references a fired or cancelled handle would otherwise keep alive for as long as the caller holds it.
function release(entry: Entry): void {
  entry.index = -1;
  entry.target = undefined;
  entry.arg = undefined;
}
