import { type FfnetError, InvalidArgError } from '@ffnet/common';
import { type FdWatcher, watchFd } from '@ffnet/event';
import type { CompletionQueue } from './verbs.js';
import { WcArray } from './work.js';

export interface CompletionPollerOptions {
  /** Completions read per poll_cq call (default 16, as 3FS). */
  batch?: number;
  /** Keep the process alive while watching (default true). */
  ref?: boolean;
  /** The fd watcher failed (poll error on the channel fd); the poller is closed by then. */
  onError?: (error: FfnetError) => void;
}

/**
 * Event-driven completion handling for a CQ with a completion channel: the channel fd is watched on Node's
 * loop (@ffnet/event, no thread, no busy polling); each wake-up reads and acks the channel events, re-arms
 * the CQ, then drains it in batches into one preallocated WcArray handed to `onCompletions(wcs, n)`.
 * Re-arming before draining means a completion racing the drain raises a new event instead of being missed.
 */
export class CompletionPoller {
  readonly cq: CompletionQueue;
  readonly wcs: WcArray;
  /** Wake-ups that found channel events (for diagnostics and tests). */
  events = 0;
  readonly #onCompletions: (wcs: WcArray, n: number) => void;
  readonly #watcher: FdWatcher;
  #closed = false;

  constructor(cq: CompletionQueue, onCompletions: (wcs: WcArray, n: number) => void, options: CompletionPollerOptions = {}) {
    if (!cq.channel) throw new InvalidArgError('CompletionPoller needs a CQ created with a completion channel');
    this.cq = cq;
    this.wcs = new WcArray(options.batch ?? 16);
    this.#onCompletions = onCompletions;
    cq.requestNotify();
    this.#watcher = watchFd(cq.channel.fd, () => this.#wake(), {
      ref: options.ref ?? true,
      label: `completion channel of ${cq.context.name}`,
      onError: (e) => {
        this.close();
        if (options.onError) options.onError(e);
        else throw e;
      },
    });
  }

  /** Drains the CQ now (without waiting for an event); returns how many completions were handled. */
  drain(): number {
    let total = 0;
    const { wcs } = this;
    for (;;) {
      const n = this.cq.poll(wcs);
      if (n > 0) {
        total += n;
        this.#onCompletions(wcs, n);
      }
      if (n < wcs.capacity || this.#closed) return total;
    }
  }

  /** Stops watching (before the channel is destroyed) and frees the WcArray. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    this.wcs.free();
  }

  #wake(): void {
    if (this.#closed) return;
    if (this.cq.consumeEvents() > 0) this.events++;
    this.drain();
  }
}
