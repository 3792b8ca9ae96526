import { CancelledError, FfnetError, InvalidArgError, TimeoutError } from './errors.js';

/** Undoes a registration; calling it again does nothing. */
export type Disposer = () => void;

const noop: Disposer = () => {};

/**
 * The FfnetError an aborted signal stands for, so every layer reports an abort the same way:
 * - an FfnetError reason is kept as it is (a deadline set by linkSignal is already a TimeoutError);
 * - a DOMException `TimeoutError` (from `AbortSignal.timeout()`) becomes a TimeoutError with it as the cause;
 * - anything else (an `abort()` with no reason, a user's own reason) becomes a CancelledError with it as the cause.
 */
export function abortError(signal: AbortSignal, peer?: string): FfnetError {
  const r: unknown = signal.reason;
  if (FfnetError.is(r)) return r;
  if (r instanceof Error && r.name === 'TimeoutError') return new TimeoutError('the caller’s signal timed out', { cause: r, peer });
  return new CancelledError('cancelled by the caller’s signal', { cause: r, peer });
}

/** Throws abortError(signal, peer) if the signal has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, peer?: string): void {
  if (signal?.aborted) throw abortError(signal, peer);
}

/**
 * Runs fn(reason) once when the signal aborts, and returns what undoes it. An already-aborted signal runs fn now
 * (synchronously) and returns a no-op, so callers need no separate "already aborted" branch. No signal: no-op.
 */
export function onAbort(signal: AbortSignal | undefined, fn: (reason: unknown) => void): Disposer {
  if (signal === undefined) return noop;
  if (signal.aborted) {
    fn(signal.reason);
    return noop;
  }
  const listener = (): void => fn(signal.reason);
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

export interface LinkSignalOptions {
  /** Abort with a TimeoutError after this many milliseconds. */
  timeoutMs?: number;
  /** Abort with a TimeoutError at this time (`Date.now()` milliseconds). With timeoutMs too, the earlier wins. */
  deadline?: number;
  /** Named in the TimeoutError. */
  peer?: string;
  /** What timed out, for the message (default `"operation"`). */
  what?: string;
}

/**
 * A signal that aborts when the parent does (with the parent's reason), when its deadline passes (with a
 * TimeoutError), or when abort() is called. dispose() detaches it from the parent and clears the timer: call it
 * when the operation ends, so a long-lived parent signal does not collect listeners.
 */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  readonly aborted: boolean;
  /** Why it aborted; undefined while it has not. */
  readonly reason: unknown;
  /** Milliseconds left before the deadline (Infinity without one, 0 once passed). */
  remainingMs(): number;
  abort(reason?: unknown): void;
  dispose(): void;
}

class Link implements LinkedSignal {
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal | undefined;
  readonly #deadline: number;
  readonly #peer: string | undefined;
  /** The TimeoutError's message. */
  readonly #what: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(parent: AbortSignal | undefined, deadline: number, peer: string | undefined, what: string) {
    this.#parent = parent;
    this.#deadline = deadline;
    this.#peer = peer;
    this.#what = what;
    if (parent?.aborted) {
      this.#controller.abort(parent.reason);
      return;
    }
    if (deadline !== Number.POSITIVE_INFINITY) {
      const ms = deadline - Date.now();
      if (ms <= 0) {
        this.#timeout();
        return;
      }
      this.#timer = setTimeout(this.#timeout, ms);
    }
    parent?.addEventListener('abort', this, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#controller.signal.aborted;
  }

  get reason(): unknown {
    const s = this.#controller.signal;
    return s.aborted ? s.reason : undefined;
  }

  remainingMs(): number {
    if (this.#deadline === Number.POSITIVE_INFINITY) return this.#deadline;
    return Math.max(0, this.#deadline - Date.now());
  }

  /** The parent's abort listener (this object, so no closure is made per link). */
  handleEvent(): void {
    this.abort(this.#parent!.reason);
  }

  abort(reason?: unknown): void {
    if (this.#controller.signal.aborted) return;
    this.dispose();
    this.#controller.abort(reason);
  }

  dispose(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#parent?.removeEventListener('abort', this);
  }

  readonly #timeout = (): void => {
    this.#timer = undefined;
    this.abort(new TimeoutError(this.#what, { peer: this.#peer }));
  };
}

function finiteMs(name: string, v: number): number {
  if (!(typeof v === 'number' && !Number.isNaN(v) && v >= 0)) throw new InvalidArgError(`${name} must be a non-negative number of milliseconds, got ${v}`);
  return v;
}

/**
 * Links an optional parent signal with an optional timeout or deadline into one signal. Throws InvalidArgError
 * for a negative or NaN timeout/deadline.
 */
export function linkSignal(parent?: AbortSignal, options: LinkSignalOptions = {}): LinkedSignal {
  let deadline = Number.POSITIVE_INFINITY;
  if (options.timeoutMs !== undefined) deadline = Date.now() + finiteMs('timeoutMs', options.timeoutMs);
  if (options.deadline !== undefined) deadline = Math.min(deadline, finiteMs('deadline', options.deadline));
  const what = options.what ?? 'operation';
  const message =
    options.timeoutMs !== undefined && Date.now() + options.timeoutMs <= deadline + 1
      ? `${what} timed out after ${options.timeoutMs} ms`
      : `${what} passed its deadline`;
  return new Link(parent, deadline, options.peer, message);
}
