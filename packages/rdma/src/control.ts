/**
 * The client half of RDMAControl (3FS RDMAControlImpl, §6): a server about to RDMA-write a response into this
 * client's memory first calls `RDMAControl.apply{uuid}` back on the same connection; the answer waits for one of
 * `maxConcurrentTransmission` slots, and the slot stays taken until that call's response or error arrives.
 */
import { defaults } from '@ffnet/common';
import { CancelledError, InvalidArgError } from '@ffnet/serde';
import { type Service, implement } from '@ffnet/server';
import type { PendingCall, Waiter } from '@ffnet/worker';
import { RDMAControlService } from './service.js';

export interface RDMAControlOptions {
  /** Server-initiated RDMA writes into this client's memory allowed at once (default 64, 3FS max_concurrent_transmission). */
  maxConcurrentTransmission?: number;
}

export const DEFAULT_MAX_CONCURRENT_TRANSMISSION = defaults.MAX_CONCURRENT_TRANSMISSION;

interface Waiting {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** A FIFO counting semaphore of transmission slots. `max` may be changed at any time (3FS: hot-updatable). */
export class TransmissionLimiter {
  #max: number;
  #active = 0;
  #granted = 0;
  readonly #queue: Waiting[] = [];

  constructor(max: number = DEFAULT_MAX_CONCURRENT_TRANSMISSION) {
    this.#max = TransmissionLimiter.#check(max);
  }

  static #check(max: number): number {
    if (!Number.isSafeInteger(max) || max < 1) throw new InvalidArgError(`maxConcurrentTransmission must be a positive integer, got ${max}`);
    return max;
  }

  get max(): number {
    return this.#max;
  }

  set max(v: number) {
    this.#max = TransmissionLimiter.#check(v);
    this.#wake();
  }

  /** Slots taken now. */
  get active(): number {
    return this.#active;
  }

  /** Applies waiting for a slot. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Slots handed out so far. */
  get granted(): number {
    return this.#granted;
  }

  /** Resolves with a slot taken; an aborted signal rejects with its reason (or CancelledError) and takes none. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new CancelledError('acquire aborted'));
    if (this.#active < this.#max && this.#queue.length === 0) {
      this.#active++;
      this.#granted++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiting = { resolve, reject, signal, onAbort: undefined };
      if (signal !== undefined) {
        w.onAbort = () => {
          const i = this.#queue.indexOf(w);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason ?? new CancelledError('acquire aborted'));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#queue.push(w);
    });
  }

  release(): void {
    if (this.#active === 0) return;
    this.#active--;
    this.#wake();
  }

  #wake(): void {
    while (this.#active < this.#max && this.#queue.length > 0) {
      const w = this.#queue.shift()!;
      if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
      this.#active++;
      this.#granted++;
      w.resolve();
    }
  }
}

/** A pending call that can hold a transmission slot until it settles (the Client's calls are: CallResource). */
export interface TransmissionHolder {
  transmission: { release(): void } | undefined;
}

function holder(call: PendingCall | undefined): (PendingCall & TransmissionHolder) | undefined {
  return call !== undefined && !call.settled && 'transmission' in call ? (call as PendingCall & TransmissionHolder) : undefined;
}

/** The RDMAControl service a client serves on its own connections when it opts in. */
export function rdmaControlService(waiter: Waiter, limiter: TransmissionLimiter): Service<typeof RDMAControlService> {
  return implement(RDMAControlService, {
    async apply(ctx, req) {
      const uuid = (req as { uuid?: unknown } | undefined)?.uuid;
      if (typeof uuid !== 'number' || !Number.isSafeInteger(uuid)) throw new InvalidArgError(`RDMAControl.apply: bad uuid ${String(uuid)}`);
      // The call already has its answer (or gave up): nothing will be written for it.
      if (holder(waiter.get(uuid)) === undefined) return {};
      await limiter.acquire(ctx.signal);
      const call = holder(waiter.get(uuid));
      if (call === undefined || call.transmission !== undefined) limiter.release();
      else call.transmission = limiter;
      return {};
    },
  });
}
