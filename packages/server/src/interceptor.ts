import { onAbort } from '@ffnet/common';
import { errorFromCode, FfnetError, InvalidArgError, type Metadata, type PayloadSchemas, StatusCode, TimeoutError } from '@ffnet/serde';
import type { ServerHandler, ServerInterceptor } from '@ffnet/worker';
import type { CallOptions } from './call-options.js';

export type { ServerHandler, ServerInterceptor };

/**
 * One call as client interceptors see it. `request`, `metadata` and `timeoutMs` may be changed before calling
 * `next`; `responseMetadata` is filled in when a response (value or error) arrives.
 */
export interface ClientCall {
  /** Service name (`Echo`; the id as text for callRaw). */
  readonly service: string;
  /** Method name (`echo`; the id as text for callRaw). */
  readonly method: string;
  readonly serviceId: number;
  readonly methodId: number;
  /** The address called, `tcp://host:port` or `unix:///path`. */
  readonly peer: string;
  /** The request value sent by the next `next()`. */
  request: unknown;
  /** Request metadata (the caller's `metadata` option, or empty): interceptors add a token or a trace context here. */
  metadata: Metadata;
  /** The response's metadata, replaced on every attempt (empty until one answers). */
  responseMetadata: Metadata;
  /** performance.now() after which the call has failed; Infinity without a deadline. */
  readonly deadline: number;
  /** The caller's signal, if it passed one. */
  readonly signal: AbortSignal | undefined;
  /** Whether the caller marked the method safe to run twice (CallOptions.idempotent). */
  readonly idempotent: boolean;
  /** Attempts sent so far (next() calls that reached the core). */
  readonly attempts: number;
  /** The caller's options, as passed. */
  readonly options: CallOptions | undefined;
}

/** The rest of the chain: sends the call (after any inner interceptors) and settles with the response value. */
export type ClientNext = (call: ClientCall) => Promise<unknown>;

/** `(next) => async (call) => { ...; return next(call); }`: composed once per Client, the first outermost. */
export type ClientInterceptor = (next: ClientNext) => ClientNext;

/** @internal The object behind ClientCall; the client core counts attempts on it. */
export class ClientCallState implements ClientCall {
  request: unknown;
  metadata: Metadata;
  responseMetadata: Metadata;
  attempts = 0;
  /** @internal the method's schemas, for the 3fs envelope and for checking the request */
  schemas: PayloadSchemas | undefined = undefined;
  constructor(
    readonly service: string,
    readonly method: string,
    readonly serviceId: number,
    readonly methodId: number,
    readonly peer: string,
    readonly label: string,
    request: unknown,
    readonly deadline: number,
    readonly signal: AbortSignal | undefined,
    readonly options: CallOptions | undefined,
  ) {
    this.request = request;
    this.metadata = options?.metadata !== undefined ? new Map(options.metadata) : new Map();
    this.responseMetadata = options?.responseMetadata ?? new Map();
    this.idempotent = options?.idempotent === true;
  }
  readonly idempotent: boolean;
}

/** The interceptors around `core`, the first outermost. */
export function composeClientInterceptors(list: readonly ClientInterceptor[], core: ClientNext): ClientNext {
  let next = core;
  for (let i = list.length - 1; i >= 0; i--) {
    const wrap = list[i]!;
    if (typeof wrap !== 'function') throw new InvalidArgError(`interceptor ${i} is not a function`);
    next = wrap(next);
    if (typeof next !== 'function') throw new InvalidArgError(`interceptor ${i} did not return a function`);
  }
  return next;
}

/** What an interceptor (or the encoder) threw, as the typed error the caller gets, naming the peer. */
export function interceptorError(e: unknown, peer: string): FfnetError {
  if (FfnetError.is(e)) return e.peer === undefined ? errorFromCode(e.code, e.reason, { peer, cause: e.cause ?? e }) : e;
  const message = e instanceof Error ? e.message : String(e);
  return errorFromCode(StatusCode.Unknown, message, { peer, cause: e });
}

export interface RetryOptions {
  /** Attempts after the first (default 2). */
  maxRetries?: number;
  /** Wait before the first retry in ms, doubling each time up to 1 s (default 10). */
  backoffMs?: number;
  /**
   * Methods whose request may safely run twice (`Service.method` names, or a predicate), besides calls marked
   * `idempotent` in their CallOptions. Only these are retried after a failure that may have reached the handler.
   */
  idempotent?: readonly string[] | ((call: ClientCall) => boolean);
}

/**
 * Failures that prove the handler never ran: the request could not be sent (SendFailed, ConnectFailed) or the
 * server refused it before dispatch (RequestRefused: stopping or overloaded). Always safe to send again.
 */
export const RETRY_SAFE_CODES: ReadonlySet<number> = new Set([StatusCode.SendFailed, StatusCode.ConnectFailed, StatusCode.RequestRefused]);

/**
 * Failures after which the request may or may not have reached the handler: the deadline passed or the
 * connection died with the request on it. Retried only for idempotent methods.
 */
export const RETRY_IF_IDEMPOTENT_CODES: ReadonlySet<number> = new Set([StatusCode.Timeout, StatusCode.SocketClosed, StatusCode.SocketError]);

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      off();
      resolve(true);
    }, ms);
    const off = onAbort(signal, () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/**
 * A client interceptor that sends a failed call again, within the call's own deadline and signal. Every error
 * in RETRY_SAFE_CODES is retried; one in RETRY_IF_IDEMPOTENT_CODES only when the method is idempotent (a
 * Timeout or a lost connection does not say whether the handler ran). Anything else, a Cancelled call included,
 * is final. The last error is what the caller gets.
 */
export function retry(opts: RetryOptions = {}): ClientInterceptor {
  const maxRetries = opts.maxRetries ?? 2;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) throw new InvalidArgError(`retry: maxRetries must be a non-negative integer, got ${maxRetries}`);
  const backoff = opts.backoffMs ?? 10;
  if (!(backoff >= 0)) throw new InvalidArgError(`retry: backoffMs must be a non-negative number, got ${backoff}`);
  const list = opts.idempotent;
  const names = Array.isArray(list) ? new Set(list) : undefined;
  const pred = typeof list === 'function' ? list : undefined;
  const isIdempotent = (call: ClientCall): boolean => call.idempotent || names?.has(`${call.service}.${call.method}`) === true || pred?.(call) === true;
  return (next) => async (call) => {
    for (let retries = 0; ; retries++) {
      try {
        return await next(call);
      } catch (e) {
        if (retries >= maxRetries || !FfnetError.is(e)) throw e;
        const safe = RETRY_SAFE_CODES.has(e.code) || (RETRY_IF_IDEMPOTENT_CODES.has(e.code) && isIdempotent(call));
        if (!safe) throw e;
        const wait = Math.min(backoff * 2 ** retries, 1000);
        // No time left for another attempt: the caller gets what the last one failed with.
        if (performance.now() + wait >= call.deadline) throw e;
        if (wait > 0 && !(await sleep(wait, call.signal))) throw e;
      }
    }
  };
}

/** Fails a retried attempt that starts after the call's deadline. */
export function deadlinePassed(label: string, peer: string): TimeoutError {
  return new TimeoutError(`${label}: the deadline passed before the attempt was sent`, { peer });
}
