import { InvalidArgError } from '@ffnet/serde';
import type { CallContext, CallQueue } from './call-context.js';

export type { MethodBinding, RequestInfo, ServiceBinding, ServiceLookup } from './call-context.js';

/**
 * A bounded concurrency pool for one method, the counterpart of 3FS's per-method coroutine pools: at most
 * `limit` handlers run at once and later requests wait in FIFO order. Queued requests count towards the
 * Processor's maxProcessingRequests, so the queue is bounded by it.
 */
export class MethodPool implements CallQueue {
  readonly limit: number;
  /** @internal */
  running = 0;
  /** FIFO as array + head index: shift() would be O(n). */
  #queue: CallContext[] = [];
  #head = 0;
  /** @internal set while the Processor starts queued calls, so a synchronous handler cannot recurse into it */
  draining = false;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new InvalidArgError(`MethodPool limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.#queue.length - this.#head;
  }

  /** @internal queue a call for when a slot frees */
  push(ctx: CallContext): void {
    this.#queue.push(ctx);
  }

  /** @internal */
  take(): CallContext | undefined {
    if (this.#head === this.#queue.length) return undefined;
    const ctx = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined as unknown as CallContext;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return ctx;
  }
}
