/**
 * The client half of RDMAControl (3FS RDMAControlImpl, §6): a server about to RDMA-write a response into this
 * client's memory first calls `RDMAControl.apply{uuid}` back on the same connection; the answer waits for one of
 * `maxConcurrentTransmission` slots, and the slot stays taken until that call's response or error arrives.
 */
import { defaults, Semaphore } from '@ffnet/common';
import { InvalidArgError } from '@ffnet/serde';
import { implement, type Service } from '@ffnet/server';
import type { Waiter } from '@ffnet/worker';
import { RDMAControlService } from './service.js';

export interface RDMAControlOptions {
  /** Server-initiated RDMA writes into this client's memory allowed at once (default 64, 3FS max_concurrent_transmission). */
  maxConcurrentTransmission?: number;
}

export const DEFAULT_MAX_CONCURRENT_TRANSMISSION = defaults.MAX_CONCURRENT_TRANSMISSION;

/**
 * The transmission slots, over the one Semaphore: `max` may be changed at any time (3FS: hot-updatable), and a
 * release with nothing held is ignored, because a slot is given back from either end of a call that may race.
 */
export class TransmissionLimiter {
  readonly #sem: Semaphore;

  constructor(max: number = DEFAULT_MAX_CONCURRENT_TRANSMISSION) {
    this.#sem = new Semaphore(max, { name: 'maxConcurrentTransmission' });
  }

  get max(): number {
    return this.#sem.limit;
  }

  set max(v: number) {
    this.#sem.limit = v;
  }

  /** Slots taken now. */
  get active(): number {
    return this.#sem.used;
  }

  /** Applies waiting for a slot. */
  get waiting(): number {
    return this.#sem.waiting;
  }

  /** Slots handed out so far. */
  get granted(): number {
    return this.#sem.stats.granted;
  }

  /** Resolves with a slot taken; an aborted signal rejects with its reason (or CancelledError) and takes none. */
  acquire(signal?: AbortSignal): Promise<void> {
    return this.#sem.acquire(1, { signal });
  }

  release(): void {
    if (this.#sem.used > 0) this.#sem.release(1);
  }
}

/** The RDMAControl service a client serves on its own connections when it opts in. */
export function rdmaControlService(waiter: Waiter, limiter: TransmissionLimiter): Service<typeof RDMAControlService> {
  return implement(RDMAControlService, {
    async apply(ctx, req) {
      const uuid = (req as { uuid?: unknown } | undefined)?.uuid;
      if (typeof uuid !== 'number' || !Number.isSafeInteger(uuid)) throw new InvalidArgError(`RDMAControl.apply: bad uuid ${String(uuid)}`);
      // The call already has its answer (or gave up): nothing will be written for it.
      if (!waiter.has(uuid)) return {};
      await limiter.acquire(ctx.signal);
      // The Waiter frees the slot when the call settles; a call that settled meanwhile (or holds one) gets none.
      if (!waiter.hold(uuid, limiter)) limiter.release();
      return {};
    },
  });
}
