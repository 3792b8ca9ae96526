import { type FfnetError, InvalidArgError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { CallContext } from './call-context.js';

/** What a service's onError hook learns about the failed request. CallContext has this shape too. */
export interface RequestInfo {
  readonly uuid: number;
  readonly serviceId: number;
  readonly methodId: number;
  readonly peer: string;
}

/**
 * A method the Processor can run. `handler` may return the response or a promise of it; a throw or a
 * rejection becomes an error response: an FfnetError's code and reason, anything else 999 "internal error"
 * (see ServiceBinding.exposeErrors).
 */
export interface MethodBinding {
  /** `Service.method`, for messages and stats. */
  readonly name: string;
  // Method syntax, so a handler typed for its own request (`(ctx, n: number) => ...`) fits.
  handler(ctx: CallContext, req: unknown): unknown;
  /** Run at most this many at once, queueing the rest; undefined runs every request inline on arrival. */
  readonly pool?: MethodPool | undefined;
  /** Requests dispatched to this method (the Processor counts them). */
  calls: number;
  /** Error responses this method produced. */
  errors: number;
}

/** A service as the Processor sees it: methods by wire id, plus an optional error hook. */
export interface ServiceBinding {
  readonly id: number;
  readonly name: string;
  method(methodId: number): MethodBinding | undefined;
  /**
   * Sees every error response of the service before it is sent (handler failures, RequestRefused, unknown
   * methods) and may return a replacement, like 3FS's `onError(Status)`.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that only observes returns nothing
  onError?(err: FfnetError, req: RequestInfo): FfnetError | undefined | void;
  /**
   * Send the message of a failure that is not an FfnetError to the caller (999 with that message). Default
   * false: the caller gets 999 "internal error" and the detail stays local (Processor.handlerErrors).
   */
  readonly exposeErrors?: boolean | undefined;
}

/** Finds the service for a request; `transport` lets a registry answer differently for RDMA and TCP. */
export interface ServiceLookup {
  service(serviceId: number, transport: Transport): ServiceBinding | undefined;
}

/**
 * A bounded concurrency pool for one method, the counterpart of 3FS's per-method coroutine pools: at most
 * `limit` handlers run at once and later requests wait in FIFO order. Queued requests count towards the
 * Processor's maxProcessingRequests, so the queue is bounded by it.
 */
export class MethodPool {
  readonly limit: number;
  /** @internal */
  running = 0;
  /** @internal FIFO as array + head index: shift() would be O(n). */
  queue: CallContext[] = [];
  /** @internal */
  head = 0;
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
    return this.queue.length - this.head;
  }

  /** @internal */
  take(): CallContext | undefined {
    if (this.head === this.queue.length) return undefined;
    const ctx = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as CallContext;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return ctx;
  }
}
