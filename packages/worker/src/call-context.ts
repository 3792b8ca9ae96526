import type { TimerHandle, TimerTarget, TimerWheel } from '@ffnet/event';
import {
  type FfnetError,
  InvalidArgError,
  type MessagePacket,
  type Metadata,
  type MetadataValue,
  type Schema,
  TimeoutError,
  type Timestamps,
} from '@ffnet/serde';
import type { PeerCertificate, PeerCredentials, Principal, Scheme, Transport } from '@ffnet/transport';
import type { Connection, InFlightCall } from './connection.js';
import type { Waiter } from './waiter.js';

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
  /** Run at most this many at once, queueing the rest (a MethodPool); undefined runs every request inline on arrival. */
  readonly pool?: CallQueue | undefined;
  /** Requests dispatched to this method (the Processor counts them). */
  calls: number;
  /** Error responses this method produced. */
  errors: number;
  /** Sees the handling time of every call that ran (ms from decoding to the reply); the server's latency histogram. */
  recordLatency?(durationMs: number): void;
  /**
   * The method's request and response schemas (defineService with schemas), or undefined. The 3fs envelope
   * decodes and encodes payloads with them; under ffnet a request and a response are checked against them.
   */
  readonly request?: Schema | undefined;
  readonly response?: Schema | undefined;
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

/** A method's bounded concurrency as the Processor drives it; MethodPool is the implementation. */
export interface CallQueue {
  readonly limit: number;
  running: number;
  /** Set while the Processor starts queued calls, so a synchronous handler cannot recurse into it. */
  draining: boolean;
  push(ctx: CallContext): void;
  take(): CallContext | undefined;
}

/** What a call needs of the Processor that runs it: the deadline wheel, and the Waiter for calls back (RDMAControl). */
export interface CallHost {
  readonly wheel: TimerWheel;
  readonly waiter: Waiter | undefined;
}

/** What runs a request: the method's handler, or an interceptor in front of it. Returns the response or a promise of it. */
export type ServerHandler = (ctx: CallContext, req: unknown) => unknown;

/**
 * Wraps the handler of every call of a Processor: `(next) => (ctx, req) => ...`. It sees the call through
 * `ctx` (service and method, `metadata`, `deadline`, `signal`, `peer`) and may set `ctx.responseMetadata`,
 * answer itself (return a value, or throw an error the caller receives typed) or call `next` once or more.
 * Composed once when the Processor is built, the first interceptor outermost.
 */
export type ServerInterceptor = (next: ServerHandler) => ServerHandler;

/**
 * Who is at the other end of a call's connection, as far as the server can tell: what the channel proved
 * (a verified TLS client certificate, the unix peer's SO_PEERCRED) and who an authenticator said it is.
 */
export interface PeerIdentity {
  readonly scheme: Scheme;
  /** The peer's address, for messages. */
  readonly peer: string;
  /** tls with a client certificate (mTLS), and rdma whose handshake ran over tls. */
  readonly certificate?: PeerCertificate | undefined;
  /** unix: the peer process as the kernel recorded it; undefined when unreadable. */
  readonly credentials?: PeerCredentials | undefined;
  /** What the server's authenticator (or an rdma handshake's) returned for this call; undefined when none ran. */
  readonly principal?: Principal | undefined;
}

// The Processor's side of a CallContext, keyed by symbols the package does not export.
/** The request payload, handed over once (to the handler). */
export const TAKE_PAYLOAD: unique symbol = Symbol('CallContext.takePayload');
/** The response has been produced or dropped: free what the call holds. */
export const RELEASE: unique symbol = Symbol('CallContext.release');
/** The response metadata if any was set, without creating it. */
export const RESPONSE_METADATA: unique symbol = Symbol('CallContext.responseMetadata');
/** The principal the server's authentication found for this call (server package only). */
export const SET_PRINCIPAL: unique symbol = Symbol('CallContext.setPrincipal');

/** The request metadata of a call that sent none: shared, so it refuses writes. */
class NoMetadata extends Map<string, MetadataValue> {
  override set(): this {
    throw new InvalidArgError('request metadata is read-only; set ctx.responseMetadata instead');
  }
}
const NO_METADATA: ReadonlyMap<string, MetadataValue> = new NoMetadata();

/**
 * The server side of one call, handed to the handler as `ctx`.
 *
 * `signal` is created only when a handler reads it: most handlers never do, and an AbortController per call
 * is a measurable cost on the hot path. Reading it arms the deadline the client sent (`timeoutMs`); it also
 * aborts when the client cancels the call (a cancel notice on the wire) or the connection dies.
 */
export class CallContext implements TimerTarget, InFlightCall {
  readonly uuid: number;
  readonly serviceId: number;
  readonly methodId: number;
  /** The connection the request came in on; the response goes back on it. */
  readonly transport: Transport;
  /** The request envelope's timestamps, when the client asked for them (server hops are filled in). */
  readonly timestamps: Timestamps | undefined;
  /** The caller's deadline in ms from when the request arrived; 0 = none. */
  readonly timeoutMs: number;
  /** performance.now() when the read that brought the request was handled (one clock read per read). */
  readonly receivedAt: number;
  /** performance.now() when the handler was started; set only when the processor measures slow calls. */
  invokedAt = 0;
  readonly service: ServiceBinding;
  readonly method: MethodBinding;
  /** The request's metadata (empty when it sent none). */
  readonly metadata: ReadonlyMap<string, MetadataValue>;
  /** The request's envelope flags (MessageFlags) and version, echoed into the response. */
  readonly flags: number;
  readonly version: number;
  /** @internal 3fs envelope: the uuid and Version to echo when they do not fit `uuid` and `version`. */
  readonly echo: Uint8Array | undefined;
  /** The payload, until the handler runs. */
  #payload: unknown;
  /** @internal */
  readonly processor: CallHost;
  /** @internal */
  readonly conn: Connection;
  /** @internal neighbours in the connection's list of calls in flight */
  prev: InFlightCall | undefined = undefined;
  /** @internal */
  next: InFlightCall | undefined = undefined;
  #done = false;
  #responseMetadata: Metadata | undefined = undefined;
  #ac: AbortController | undefined = undefined;
  #reason: FfnetError | undefined = undefined;
  #timer: TimerHandle | undefined = undefined;
  #principal: Principal | undefined = undefined;
  #identity: PeerIdentity | undefined = undefined;

  constructor(processor: CallHost, conn: Connection, transport: Transport, pkt: MessagePacket, service: ServiceBinding, method: MethodBinding, now: number) {
    this.uuid = pkt.uuid;
    this.serviceId = pkt.serviceId;
    this.methodId = pkt.methodId;
    this.flags = pkt.flags;
    this.version = pkt.version;
    this.echo = pkt.echo;
    this.timeoutMs = pkt.timeoutMs;
    this.timestamps = pkt.timestamps;
    this.#payload = pkt.payload;
    this.metadata = pkt.metadata ?? NO_METADATA;
    this.transport = transport;
    this.receivedAt = now;
    this.service = service;
    this.method = method;
    this.processor = processor;
    this.conn = conn;
  }

  /**
   * Metadata sent back with the response (also with an error response), created on first use. Limits as for
   * requests: over them the caller gets MessageTooLargeError instead of the value.
   */
  get responseMetadata(): Metadata {
    this.#responseMetadata ??= new Map();
    return this.#responseMetadata;
  }

  set responseMetadata(md: Metadata) {
    this.#responseMetadata = md;
  }

  /** Whether the response has been produced (or dropped). */
  get done(): boolean {
    return this.#done;
  }

  [RESPONSE_METADATA](): Metadata | undefined {
    return this.#responseMetadata;
  }

  [TAKE_PAYLOAD](): unknown {
    const p = this.#payload;
    this.#payload = undefined;
    return p;
  }

  /** Service and method names, e.g. `Echo.echo`. */
  get name(): string {
    return this.method.name;
  }

  /** Who called: the peer address of the connection. */
  get peer(): string {
    return this.transport.peer;
  }

  /**
   * Who called, built on first read (calls that never look pay nothing): the scheme, the verified TLS
   * certificate, the unix peer's credentials, and the principal the server's authenticator returned for this
   * call (else the one the connection's own handshake established, rdma's).
   */
  get peerIdentity(): PeerIdentity {
    let id = this.#identity;
    if (id === undefined) {
      const t = this.transport;
      // Per call, not per connection: a later call with another token may re-authenticate the connection
      // while this one runs, and this handler must keep seeing the principal that let it in.
      const principal = this.#principal ?? t.principal;
      id = Object.freeze({
        scheme: t.address.scheme,
        peer: t.peer,
        certificate: t.peerCertificate(),
        credentials: t.peerCredentials(),
        principal,
      });
      this.#identity = id;
    }
    return id;
  }

  [SET_PRINCIPAL](p: Principal | undefined): void {
    this.#principal = p;
    this.#identity = undefined;
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

  /** Why the call was aborted, if it was. */
  get abortReason(): FfnetError | undefined {
    return this.#reason;
  }

  /** @internal TimerTarget: the caller's deadline passed. */
  onTimeout(): void {
    this.#timer = undefined;
    if (!this.done) this.abort(new TimeoutError(`the caller's deadline of ${this.timeoutMs} ms passed`, { peer: this.peer }));
  }

  [RELEASE](): void {
    this.#done = true;
    this.#payload = undefined;
    this.#clearTimer();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.processor.wheel.cancel(this.#timer);
      this.#timer = undefined;
    }
  }
}
