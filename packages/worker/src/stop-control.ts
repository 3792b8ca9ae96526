import { type Disposer, onAbort } from '@ffnet/common';

/**
 * One stop in progress, as one AbortSignal: aborted by any caller's signal linked to it (the first stop's, and those
 * of later stop() calls, which may only shorten it), or by expire() at the stop's own deadline. dispose() unhooks
 * the callers' signals, so a long-lived signal does not keep the stop alive.
 */
export class StopControl {
  readonly #ac = new AbortController();
  readonly #links: Disposer[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;

  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  get aborted(): boolean {
    return this.#ac.signal.aborted;
  }

  /** Aborts this stop when `signal` does (at once if it already has). */
  link(signal: AbortSignal | undefined): void {
    if (signal === undefined || this.#ac.signal.aborted) return;
    // An already-aborted signal aborts this stop at once, and registers nothing.
    this.#links.push(onAbort(signal, (reason) => this.abort(reason)));
  }

  /** Aborts after `ms` with `reason()`; no timer for Infinity or a delay setTimeout cannot express. */
  expireAfter(ms: number, reason: () => unknown): void {
    if (!(ms < 2 ** 31 - 1) || this.#ac.signal.aborted) return;
    this.#timer = setTimeout(() => this.abort(reason()), Math.max(0, ms));
  }

  abort(reason: unknown): void {
    this.#ac.abort(reason);
  }

  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const off of this.#links) off();
    this.#links.length = 0;
  }
}
