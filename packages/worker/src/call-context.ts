import type { TimerHandle, TimerTarget } from '@ffnet/event';
import { type FfnetError, type MessagePacket, type Timestamps, TimeoutError } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { Connection } from './connection.js';
import type { Processor } from './processor.js';
import type { MethodBinding, ServiceBinding } from './service.js';

/**
 * The server side of one call, handed to the handler as `ctx`.
 *
 * `signal` is created only when a handler reads it: most handlers never do, and an AbortController per call
 * is a measurable cost on the hot path. Reading it arms the deadline the client sent (`timeoutMs`); it also
 * aborts when the client cancels the call (a cancel notice on the wire) or the connection dies.
 */
export class CallContext implements TimerTarget {
  readonly uuid: number;
  readonly serviceId: number;
  readonly methodId: number;
  /** The connection the request came in on; the response goes back on it. */
  readonly transport: Transport;
  /** The request envelope's timestamps, when the client asked for them (server hops are filled in). */
  readonly timestamps: Timestamps | undefined;
  /** The caller's deadline in ms from when the request arrived; 0 = none. */
  readonly timeoutMs: number;
  /** performance.now() when the request was decoded. */
  readonly receivedAt: number;
  readonly service: ServiceBinding;
  readonly method: MethodBinding;
  /** @internal request flags and version, echoed into the response */
  readonly flags: number;
  /** @internal */
  readonly version: number;
  /** @internal the payload, until the handler runs */
  payload: unknown;
  /** @internal */
  readonly processor: Processor;
  /** @internal */
  readonly conn: Connection;
  /** @internal neighbours in the connection's list of calls in flight */
  prev: CallContext | undefined = undefined;
  /** @internal */
  next: CallContext | undefined = undefined;
  /** @internal the response has been produced (or dropped) */
  done = false;
  #ac: AbortController | undefined = undefined;
  #reason: FfnetError | undefined = undefined;
  #timer: TimerHandle | undefined = undefined;

  constructor(processor: Processor, conn: Connection, transport: Transport, pkt: MessagePacket, service: ServiceBinding, method: MethodBinding, now: number) {
    this.uuid = pkt.uuid;
    this.serviceId = pkt.serviceId;
    this.methodId = pkt.methodId;
    this.flags = pkt.flags;
    this.version = pkt.version;
    this.timeoutMs = pkt.timeoutMs;
    this.timestamps = pkt.timestamps;
    this.payload = pkt.payload;
    this.transport = transport;
    this.receivedAt = now;
    this.service = service;
    this.method = method;
    this.processor = processor;
    this.conn = conn;
  }

  /** Who called: the peer address of the connection. */
  get peer(): string {
    return this.transport.peer;
  }

  /** performance.now() after which the caller has given up (Infinity when it sent no deadline). */
  get deadline(): number {
    return this.timeoutMs > 0 ? this.receivedAt + this.timeoutMs : Number.POSITIVE_INFINITY;
  }

  /** Aborted when the caller cancels, its deadline passes, or the connection dies; `reason` says which. */
  get signal(): AbortSignal {
    let ac = this.#ac;
    if (ac === undefined) {
      ac = new AbortController();
      this.#ac = ac;
      if (this.#reason !== undefined) ac.abort(this.#reason);
      else if (!this.done && this.timeoutMs > 0) this.#timer = this.processor.wheel.schedule(this.receivedAt + this.timeoutMs, this);
    }
    return ac.signal;
  }

  /** Whether the call was cancelled, ran out of time or lost its connection. */
  get aborted(): boolean {
    if (this.#reason === undefined && this.timeoutMs > 0 && this.#ac === undefined && performance.now() >= this.deadline) {
      this.abort(new TimeoutError(`deadline of ${this.timeoutMs} ms passed`, { peer: this.peer }));
    }
    return this.#reason !== undefined;
  }

  /** Throws the abort reason, if any. */
  throwIfAborted(): void {
    if (this.aborted) throw this.#reason;
  }

  /** @internal */
  abort(reason: FfnetError): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#clearTimer();
    this.#ac?.abort(reason);
  }

  /** @internal the abort reason */
  get abortReason(): FfnetError | undefined {
    return this.#reason;
  }

  /** @internal TimerTarget: the caller's deadline passed. */
  onTimeout(): void {
    this.#timer = undefined;
    if (!this.done) this.abort(new TimeoutError(`the caller's deadline of ${this.timeoutMs} ms passed`, { peer: this.peer }));
  }

  /** @internal */
  release(): void {
    this.done = true;
    this.payload = undefined;
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.processor.wheel.cancel(this.#timer);
      this.#timer = undefined;
    }
  }
}
