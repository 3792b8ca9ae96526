import { componentLogger, defaults, type Logger, METRICS, type Metrics, onAbort } from '@ffnet/common';
import type { TimerWheel } from '@ffnet/event';
import {
  CancelledError,
  compressionReady,
  DEFAULT_MAX_MESSAGE_SIZE,
  decodeResult3fs,
  type EncodeOptions,
  type EnvelopeName,
  encodeMessage3fs,
  envelopeNamed,
  errorFromCode,
  FfnetError,
  FRAME_HEADER_SIZE,
  type FrameParts,
  fromMsgpack,
  InvalidArgError,
  InvalidConfigError,
  initCompression,
  MessageFlags,
  type MessagePacket,
  MessageTooLargeError,
  type Metadata,
  type MetadataLimits,
  type MethodNames,
  nowMicros,
  type PayloadSchemas,
  type RequestOf,
  type ResponseOf,
  type Result,
  type Schema,
  type ServiceDef,
  SocketClosedError,
  StatusCode,
  TimeoutError,
  type Timestamps,
  validate,
} from '@ffnet/serde';
import { encodeMessageUnsealed } from '@ffnet/serde/internal';
import { type Backend, type Credentials, DEFAULT_BACKENDS, formatAddress, parseAddress, type Transport } from '@ffnet/transport';
import { IOWorker, type IOWorkerOptions, PendingCall, Processor, type ProcessorOptions, Waiter } from '@ffnet/worker';
import { encodeCancelNotice, frameBodySize, frameMessageSize, nonNegativeMsOption, StopControl } from '@ffnet/worker/internal';
import { AUTHORIZATION_KEY } from './auth.js';
import type { CallOptions, CompressionOptions } from './call-options.js';
import { ClientCallState, type ClientInterceptor, type ClientNext, composeClientInterceptors, deadlinePassed, interceptorError } from './interceptor.js';
import { ClientCallObserver, Observer } from './observe.js';
import { clientExtensionOf } from './plugin.js';
import { type Service, ServiceRegistry } from './service.js';
import { SlowCallLog } from './slow-call.js';

export type { CallOptions, CompressionOptions };

export interface ClientOptions {
  /** Default deadline per call, ms (default 1000). */
  timeoutMs?: number;
  /** Default retries of a request that could not be sent (default 1). */
  sendRetryTimes?: number;
  compression?: CompressionOptions;
  ioWorker?: Omit<IOWorkerOptions, 'processor' | 'sendRetryTimes' | 'backends'>;
  processor?: Omit<ProcessorOptions, 'waiter' | 'lookup' | 'wheel'>;
  /** Services this client answers on its own connections (server-to-client calls). */
  services?: readonly Service[];
  /**
   * What addresses are dialled with (default `[tcp(), unix()]`). rdma:// needs `rdma()` from @ffnet/rdma, which
   * also brings RDMAControl when asked (`rdma({ control: { maxConcurrentTransmission } })`). A call to a scheme
   * with no backend here fails with SendFailedError whose cause says what to pass.
   */
  backends?: readonly Backend[];
  /** For call deadlines; default the process-wide wheel. */
  wheel?: TimerWheel;
  /**
   * How long stop() may take in all (flushing and closing connections, waiting for handlers of `services`) before
   * the connections are destroyed and it resolves; default 10000 ms.
   */
  stopTimeoutMs?: number;
  /** Wrap every call, the first outermost (see ClientInterceptor). Default none. */
  interceptors?: readonly ClientInterceptor[];
  /** Limits of request metadata sent and response metadata received (default DEFAULT_METADATA_LIMITS). */
  metadataLimits?: MetadataLimits;
  /**
   * Who this client is (`staticToken`, `tokenCredentials`, or your own): its metadata goes with every call,
   * merged under the call's own (a call that sets `authorization` itself, in its options or in an interceptor,
   * sends that one and no credentials). Also handed to every connect (rdma sends it in its handshake). When the
   * server answers UnauthenticatedError to a call that carried them, the client calls `invalidate()` and sends
   * the call once more (its handler never ran), within the call's deadline. Default none.
   */
  credentials?: Credentials;
  /**
   * Record this client's calls (latency and errors per service.method), bytes per peer, connections and
   * reconnects here (see @ffnet/common Metrics); default none: calls then pay nothing for it.
   */
  metrics?: Metrics;
  /**
   * How messages are written (default 'ffnet', msgpack). '3fs' speaks 3FS's own MessagePacket, to call 3FS
   * processes (or ffnet groups with `envelope: '3fs'`): every call needs a definition whose methods carry
   * schemas, and there is no metadata (so no `credentials`), no deadline sent to the server and no cancel notice.
   */
  envelope?: EnvelopeName;
  /**
   * Where this client logs (its connections, dropped frames, cancel notices that could not be sent, slow calls);
   * each layer binds its `component`. Default: the process-wide logger (setDefaultLogger), silent unless
   * FFNET_DEBUG is set. `ioWorker.logger` / `processor.logger` win for their part.
   */
  logger?: Logger;
  /**
   * Calls slower than this are logged at warn with service, method, peer, duration and where the time went; while
   * set, every call carries timestamps (3FS's logLongRunningThreshold, whose client default is 0). Default 0: off.
   */
  slowCallMs?: number;
}

/** A typed client for one service at one address: a method per method of the definition. */
export type Stub<D extends ServiceDef> = {
  readonly [M in MethodNames<D>]: (req: RequestOf<D, M>, opts?: CallOptions) => Promise<ResponseOf<D, M>>;
};

/** The resolve/reject pair of a new promise, captured without a closure per call. */
let capturedResolve: (v: unknown) => void = () => {};
let capturedReject: (e: unknown) => void = () => {};
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** A call sent with the client's credentials: what it takes to send it once more after UnauthenticatedError. */
interface CredentialState {
  /** The credentials' metadata for this attempt. */
  md: Metadata | undefined;
  /** This is the second attempt: no third. */
  readonly retried: boolean;
  /** performance.now() after which the call has failed (Infinity: none); the second attempt gets what is left. */
  readonly deadline: number;
}

/** The arguments of a call's first attempt, kept for its one retry after UnauthenticatedError. */
class CredentialRetry {
  constructor(
    readonly resend: (r: CredentialRetry) => Promise<unknown>,
    readonly address: string,
    readonly serviceId: number,
    readonly methodId: number,
    readonly label: string,
    readonly req: unknown,
    readonly opts: CallOptions | undefined,
    readonly via: ClientCallState | undefined,
    readonly deadline: number,
    readonly schemas: PayloadSchemas | undefined,
  ) {}
}

/** One call in flight: the Waiter entry and send tag, settling the caller's promise. */
class RpcCall extends PendingCall {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  /** Set when the call carried the client's credentials and may be sent once more if they are refused. */
  retry: CredentialRetry | undefined = undefined;
  timestamps: Timestamps | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  /** Where the response's metadata goes (the caller's responseMetadata or the interceptors' ClientCall). */
  responseMetadata: Metadata | undefined = undefined;
  /** The call went out in the 3fs envelope: the payload is `Result<Rsp>` bytes, and there is no cancel notice. */
  threefs = false;
  /** The client's slow-call log, when its threshold is on. */
  slow: SlowCallLog | undefined = undefined;
  log: Logger | undefined = undefined;

  constructor(label: string, maxRetries: number | undefined, resolve: (v: unknown) => void, reject: (e: unknown) => void) {
    super(label, maxRetries);
    this.resolve = resolve;
    this.reject = reject;
  }

  onResponse(pkt: MessagePacket, t: Transport): void {
    if (this.signal !== undefined) this.#detach();
    let r = pkt.payload as Result<unknown>;
    if (this.threefs || this.responseSchema !== undefined) {
      try {
        r = responseResult(this, pkt, t.peer);
      } catch (e) {
        this.reject(e);
        return;
      }
    }
    const md = this.responseMetadata;
    if (md !== undefined && pkt.metadata !== undefined) for (const [k, v] of pkt.metadata) md.set(k, v);
    const slow = this.slow;
    if (slow !== undefined && this.timestamps !== undefined) slow.check(this.label, t.peer, this.timestamps, pkt.timestamps, r.ok ? 0 : r.code);
    if (!r.ok && r.code === StatusCode.Unauthenticated && this.retry !== undefined) {
      // Refused before dispatch, so the handler never ran: safe to send again with fresh credentials.
      const retry = this.retry;
      this.retry = undefined;
      retry.resend(retry).then(this.resolve, this.reject);
      return;
    }
    if (r.ok) {
      const ts = this.timestamps;
      if (ts !== undefined && pkt.timestamps !== undefined) {
        Object.assign(ts, pkt.timestamps);
        ts.clientWaked = nowMicros();
      }
      this.resolve(r.value);
    } else {
      this.reject(errorFromCode(r.code, r.message, { peer: t.peer }));
    }
  }

  onError(err: FfnetError): void {
    if (this.signal !== undefined) this.#detach();
    this.reject(err);
  }

  /** The caller's signal aborted (an EventListener object, so no closure per call). */
  handleEvent(): void {
    const t = this.transport;
    const uuid = this.uuid;
    const reason: unknown = this.signal?.reason;
    if (!this.fail(new CancelledError(`${this.label} was cancelled by the caller`, { peer: this.address, cause: reason }))) return;
    // 3FS's MessagePacket has no cancel notice: the server runs the call to its end.
    if (this.threefs) return;
    // Only a call whose frame is queued or sent on a live connection has anything for the server to stop.
    if (t !== undefined && (t.state === 'ready' || t.state === 'connecting')) {
      try {
        t.send(encodeCancelNotice(uuid));
      } catch (e) {
        // The connection is closing; the server aborts the handler when it sees it close.
        const log = this.log;
        if (log?.isLevelEnabled('debug')) log.debug({ peer: t.peer, call: this.label, err: e }, 'cancel notice not sent');
      }
    }
  }

  #detach(): void {
    this.signal!.removeEventListener('abort', this);
    this.signal = undefined;
  }
}

/** A response as a Result: 3fs bytes decoded with the response schema, an ffnet value checked against it. */
function responseResult(call: RpcCall, pkt: MessagePacket, peer: string): Result<unknown> {
  if (call.threefs) {
    // Decoded by the Processor in the pass over the frame's header (PendingCall.responseSchema), else still bytes.
    const p = pkt.payload;
    return p instanceof Uint8Array ? decodeResult3fs(call.responseSchema, p, call.label, peer) : (p as Result<unknown>);
  }
  const r = pkt.payload as Result<unknown>;
  if (r.ok) {
    const schema = call.responseSchema!;
    r.value = fromMsgpack(schema, r.value);
    try {
      validate(schema, r.value, 'response');
    } catch (e) {
      throw new InvalidArgError(`${call.label} response does not fit its schema: ${FfnetError.is(e) ? e.reason : String(e)}`, { peer, cause: e });
    }
  }
  return r;
}

/** A request checked against its schema: the InvalidArg naming the field, or undefined. */
function requestMismatch(schema: Schema, req: unknown, label: string, peer: string): FfnetError | undefined {
  try {
    validate(schema, req, 'request');
    return undefined;
  } catch (e) {
    return new InvalidArgError(`${label} request does not fit its schema: ${FfnetError.is(e) ? e.reason : String(e)}`, { peer, cause: e });
  }
}

const DEFAULT_COMPRESSION_THRESHOLD = defaults.COMPRESSION_THRESHOLD_BYTES;

/** When a call sent now must have been answered: its interceptor chain's deadline, else its own timeout. */
function callDeadline(timeoutMs: number, via: ClientCallState | undefined): number {
  if (via !== undefined) return via.deadline;
  return timeoutMs > 0 && Number.isFinite(timeoutMs) ? performance.now() + timeoutMs : Number.POSITIVE_INFINITY;
}

/** The credentials' metadata with the call's own on top; no copy when the call has none. */
function withCredentials(creds: Metadata, own: Metadata | undefined): Metadata {
  if (own === undefined || own.size === 0) return creds;
  const md = new Map(creds);
  for (const [k, v] of own) md.set(k, v);
  return md;
}

/** Credentials still being fetched: the call waits for them, but no longer than its deadline or its signal. */
function waitForCredentials(pending: PromiseLike<Metadata>, deadline: number, signal: AbortSignal | undefined, label: string, peer: string): Promise<Metadata> {
  return new Promise<Metadata>((resolve, reject) => {
    const wait = deadline - performance.now();
    const timer =
      wait < 2 ** 31 - 1
        ? setTimeout(() => reject(new TimeoutError(`${label}: the deadline passed while the credentials were being fetched`, { peer })), Math.max(0, wait))
        : undefined;
    const off = onAbort(signal, (reason) => reject(new CancelledError(`${label} was cancelled before it was sent`, { peer, cause: reason })));
    pending.then(
      (md) => {
        if (timer !== undefined) clearTimeout(timer);
        off();
        if (md instanceof Map) resolve(md);
        else reject(new InvalidArgError(`${label}: credentials.metadata() did not give a Map`, { peer }));
      },
      (e: unknown) => {
        if (timer !== undefined) clearTimeout(timer);
        off();
        reject(interceptorError(e, peer));
      },
    );
  });
}

/**
 * Calls services on ffnet servers. One client owns its connections (an IOWorker), its pending calls (a
 * Waiter) and its frame processor; it is cheap to keep and should be shared rather than created per call.
 *
 * ```ts
 * const client = new Client();
 * const echo = client.stub(EchoService, 'tcp://127.0.0.1:8000');
 * const { str } = await echo.echo({ str: 'hi' }, { timeoutMs: 500 });
 * await client.stop();
 * ```
 *
 * Failures are FfnetErrors with the RPC code: the server's own error (its code and message), or locally
 * Timeout, SendFailed (retries exhausted), SocketClosed/SocketError (the connection died after the request
 * left, reported at once), InvalidAddr, or Cancelled (the caller's signal).
 */
export class Client {
  readonly waiter: Waiter;
  readonly processor: Processor;
  readonly ioWorker: IOWorker;
  readonly services: ServiceRegistry;
  readonly timeoutMs: number;
  readonly sendRetryTimes: number;
  /**
   * Requests whose encoded body reaches this many bytes fail locally with MessageTooLargeError; it is also the
   * largest response accepted. `ioWorker.transport.maxMessageSize`, default 512 MiB as on the server: both ends
   * should agree.
   */
  readonly maxMessageSize: number;
  readonly #compression: EncodeOptions | undefined;
  readonly #compressionLevel: number;
  /** Encoding without compression; undefined unless metadata limits were configured. */
  readonly #plain: EncodeOptions | undefined;
  readonly #metadataLimits: MetadataLimits | undefined;
  /** The interceptors around #core, composed once; undefined without any, so a call pays nothing for them. */
  readonly #chain: ClientNext | undefined;
  /** Watches calls when metrics are set or a client call channel has subscribers. */
  readonly #watch: ClientCallObserver;
  /** The processor's observer when it records metrics: it also counts the bytes of requests sent. */
  readonly #bytes: Observer | undefined;
  #uncollect: (() => void) | undefined;
  /** Reused for every request: the encoder is synchronous and keeps no reference. */
  readonly #req: MessagePacket = { uuid: 0, serviceId: 0, methodId: 0, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: undefined };
  #reqFlags: number = MessageFlags.IsReq;
  #stopped = false;
  readonly #credentials: Credentials | undefined;
  readonly #resend = (r: CredentialRetry): Promise<unknown> => {
    this.#credentials?.invalidate?.();
    return this.#send(r.address, r.serviceId, r.methodId, r.label, r.req, r.opts, r.via, { md: undefined, retried: true, deadline: r.deadline }, r.schemas);
  };
  readonly stopTimeoutMs: number;
  /** The envelope of this client's messages. */
  readonly envelope: EnvelopeName;
  readonly #threefs: boolean;
  /** 0: off. */
  readonly slowCallMs: number;
  readonly #slow: SlowCallLog | undefined;
  readonly #log: Logger;
  /** The stop in progress, which a later stop() can cut short. */
  #stopControl: StopControl | undefined;

  constructor(opts: ClientOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.stopTimeoutMs = nonNegativeMsOption('stopTimeoutMs', opts.stopTimeoutMs, defaults.STOP_TIMEOUT_MS);
    this.sendRetryTimes = opts.sendRetryTimes ?? 1;
    this.envelope = envelopeNamed(opts.envelope, 'ClientOptions.envelope').name;
    this.#threefs = this.envelope === '3fs';
    if (this.#threefs && opts.credentials !== undefined) {
      throw new InvalidConfigError("ClientOptions.credentials travel as metadata, which envelope '3fs' does not have");
    }
    this.slowCallMs = nonNegativeMsOption('slowCallMs', opts.slowCallMs, 0);
    this.#log = componentLogger('server', opts.logger);
    this.#slow = this.slowCallMs > 0 ? new SlowCallLog(this.#log, this.slowCallMs) : undefined;
    const level = opts.compression?.level ?? 0;
    this.#compressionLevel = level;
    const limits = opts.metadataLimits;
    this.#metadataLimits = limits;
    this.#plain = limits ? { metadataLimits: limits } : undefined;
    this.#compression =
      level > 0
        ? {
            compressionLevel: level,
            compressionThreshold: opts.compression?.threshold ?? DEFAULT_COMPRESSION_THRESHOLD,
            ...(limits ? { metadataLimits: limits } : {}),
          }
        : this.#plain;
    this.waiter = new Waiter(opts.wheel ? { wheel: opts.wheel } : {});
    this.services = new ServiceRegistry(this.envelope);
    for (const s of opts.services ?? []) this.services.add(s);
    const backends = opts.backends ?? DEFAULT_BACKENDS;
    for (const b of backends) {
      const ext = clientExtensionOf(b);
      if (ext === undefined) continue;
      for (const s of ext.clientServices?.(this) ?? []) this.services.add(s);
      this.#reqFlags |= ext.requestFlags ?? 0;
    }
    const observer = new Observer('client', opts.metrics);
    this.#bytes = opts.metrics === undefined ? undefined : observer;
    this.#watch = new ClientCallObserver(opts.metrics);
    this.processor = new Processor({
      observer,
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      ...opts.processor,
      waiter: this.waiter,
      lookup: this.services,
      envelope: this.envelope,
      ...(opts.wheel ? { wheel: opts.wheel } : {}),
      ...(limits && !opts.processor?.metadataLimits ? { metadataLimits: limits } : {}),
    });
    const list = opts.interceptors ?? [];
    this.#chain = list.length > 0 ? composeClientInterceptors(list, (call) => this.#core(call as ClientCallState)) : undefined;
    this.#credentials = opts.credentials;
    this.ioWorker = new IOWorker({
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      ...opts.ioWorker,
      backends,
      processor: this.processor,
      sendRetryTimes: this.sendRetryTimes,
      ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
    });
    this.maxMessageSize = this.ioWorker.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.ioWorker.start();
    const m = opts.metrics;
    if (m !== undefined) {
      const inFlight = m.gauge(METRICS.clientInFlight).labels();
      const connections = m.gauge(METRICS.connections).labels('client');
      this.#uncollect = m.onCollect(() => {
        inFlight.set(this.waiter.size);
        connections.set(this.ioWorker.connections);
      });
    }
    // Peers may send compressed frames; loading zstd early means they decode. Failure shows up at use, where the
    // call that needs zstd fails with the reason; here it is only worth a debug line.
    initCompression().catch(this.#zstdFailed);
  }

  /** A typed stub for `def` at `address` (`tcp://host:port`, `unix:///path`). Throws InvalidAddrError for a bad address. */
  stub<D extends ServiceDef>(def: D, address: string): Stub<D> {
    const target = formatAddress(parseAddress(address));
    const stub: Record<string, (req: unknown, opts?: CallOptions) => Promise<unknown>> = {};
    for (const [name, info] of Object.entries(def.methods as Record<string, { id: number } & PayloadSchemas>)) {
      const label = `${def.name}.${name}`;
      const methodId = info.id;
      stub[name] = (req, opts) => this.#call(target, def.id, methodId, label, req, opts, def.name, name, info);
    }
    return Object.freeze(stub) as Stub<D>;
  }

  /** One call by method name, without a stub. */
  call<D extends ServiceDef, M extends MethodNames<D>>(
    address: string,
    def: D,
    method: M,
    req: RequestOf<D, M>,
    opts?: CallOptions,
  ): Promise<ResponseOf<D, M>> {
    const info = (def.methods as Record<string, ({ id: number } & PayloadSchemas) | undefined>)[method];
    if (info === undefined) return Promise.reject(new InvalidArgError(`service ${def.name} has no method ${method}`));
    return this.#call(address, def.id, info.id, `${def.name}.${method}`, req, opts, def.name, method, info) as Promise<ResponseOf<D, M>>;
  }

  /** One call by wire ids, for generic tools that have no definition at hand. */
  callRaw(address: string, serviceId: number, methodId: number, req: unknown, opts?: CallOptions): Promise<unknown> {
    return this.#call(address, serviceId, methodId, `${serviceId}.${methodId}`, req, opts, String(serviceId), String(methodId));
  }

  /** Open connections. */
  get connections(): number {
    return this.ioWorker.connections;
  }

  /**
   * Fails every pending call with SocketClosed and closes the connections gracefully (frames already queued are
   * flushed). Bounded by `stopTimeoutMs`, after which the connections are destroyed; an aborted `signal`, also one
   * passed to a later stop() while this one is pending, destroys them at once. Idempotent.
   */
  async stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#uncollect?.();
      this.#uncollect = undefined;
      this.waiter.failAll(new SocketClosedError('the client stopped before the response arrived'));
    }
    let control = this.#stopControl;
    const own = control === undefined;
    if (control === undefined) {
      control = new StopControl();
      this.#stopControl = control;
      const bound = this.stopTimeoutMs;
      control.expireAfter(bound, () => new TimeoutError(`the client did not stop within stopTimeoutMs (${bound} ms)`));
    }
    control.link(opts.signal);
    try {
      await this.ioWorker.stop({ signal: control.signal });
      await this.processor.stop({ signal: control.signal });
    } finally {
      if (own) {
        control.dispose();
        this.#stopControl = undefined;
      }
    }
  }

  readonly #zstdFailed = (e: unknown): void => {
    if (this.#log.isLevelEnabled('debug')) this.#log.debug({ err: e }, 'zstd did not load; compressed frames will fail');
  };

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #call(
    address: string,
    serviceId: number,
    methodId: number,
    label: string,
    req: unknown,
    opts: CallOptions | undefined,
    service: string,
    method: string,
    schemas?: PayloadSchemas,
  ): Promise<unknown> {
    const watch = this.#watch;
    if (watch.active) {
      const w = watch.start(service, method, address);
      return watch.watch(this.#callNow(address, serviceId, methodId, label, req, opts, service, method, schemas), w);
    }
    return this.#callNow(address, serviceId, methodId, label, req, opts, service, method, schemas);
  }

  #callNow(
    address: string,
    serviceId: number,
    methodId: number,
    label: string,
    req: unknown,
    opts: CallOptions | undefined,
    service: string,
    method: string,
    schemas: PayloadSchemas | undefined,
  ): Promise<unknown> {
    const chain = this.#chain;
    if (chain === undefined) return this.#send(address, serviceId, methodId, label, req, opts, undefined, undefined, schemas);
    const timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
    const deadline = timeoutMs > 0 && Number.isFinite(timeoutMs) ? performance.now() + timeoutMs : Number.POSITIVE_INFINITY;
    const call = new ClientCallState(service, method, serviceId, methodId, address, label, req, deadline, opts?.signal, opts);
    call.schemas = schemas;
    let p: Promise<unknown>;
    try {
      p = chain(call);
    } catch (e) {
      return Promise.reject(interceptorError(e, address));
    }
    return p.catch((e: unknown) => {
      throw interceptorError(e, address);
    });
  }

  /** The innermost step of the interceptor chain: one attempt, within what is left of the call's deadline. */
  #core(call: ClientCallState): Promise<unknown> {
    call.attempts++;
    return this.#send(call.peer, call.serviceId, call.methodId, call.label, call.request, call.options, call, undefined, call.schemas);
  }

  /** One request on the wire: compression, timestamps and metadata are plain options here. */
  #send(
    address: string,
    serviceId: number,
    methodId: number,
    label: string,
    req: unknown,
    opts: CallOptions | undefined,
    via: ClientCallState | undefined,
    cred?: CredentialState,
    schemas?: PayloadSchemas,
  ): Promise<unknown> {
    const creds = this.#credentials;
    if (creds !== undefined && cred?.md === undefined) {
      const own = via !== undefined ? via.metadata : opts?.metadata;
      // A call that brings its own `authorization` is sent as it is, and not retried with ours.
      if (own?.has(AUTHORIZATION_KEY) !== true) {
        const deadline = cred?.deadline ?? callDeadline(opts?.timeoutMs ?? this.timeoutMs, via);
        let md: Metadata | Promise<Metadata>;
        try {
          md = creds.metadata({ peer: address, ...(opts?.signal === undefined ? {} : { signal: opts.signal }) });
        } catch (e) {
          return Promise.reject(interceptorError(e, address));
        }
        const retried = cred?.retried ?? false;
        if (!(md instanceof Map)) {
          return waitForCredentials(md, deadline, opts?.signal, label, address).then((m) =>
            this.#send(address, serviceId, methodId, label, req, opts, via, { md: m, retried, deadline }, schemas),
          );
        }
        cred = { md, retried, deadline };
      }
    }
    let encode = this.#compression;
    let level = this.#compressionLevel;
    const c = opts?.compression;
    if (c !== undefined) {
      level = c.level ?? level;
      const limits = this.#metadataLimits;
      encode =
        level > 0
          ? {
              compressionLevel: level,
              compressionThreshold: c.threshold ?? encode?.compressionThreshold ?? DEFAULT_COMPRESSION_THRESHOLD,
              ...(limits ? { metadataLimits: limits } : {}),
            }
          : this.#plain;
    }
    if (level > 0 && !compressionReady()) {
      return initCompression().then(() => this.#send(address, serviceId, methodId, label, req, opts, via, cred, schemas));
    }

    const promise = new Promise<unknown>(capture);
    const call = new RpcCall(label, opts?.sendRetryTimes, capturedResolve, capturedReject);
    let timeoutMs = opts?.timeoutMs ?? this.timeoutMs;
    if (cred !== undefined && via === undefined && cred.deadline !== Number.POSITIVE_INFINITY) {
      // Time spent fetching credentials, and a first attempt the server refused, come out of the call's deadline.
      timeoutMs = cred.deadline - performance.now();
      if (timeoutMs <= 0) {
        call.fail(deadlinePassed(label, address));
        return promise;
      }
    }
    if (!(timeoutMs >= 0)) {
      call.fail(new InvalidArgError(`${label}: timeoutMs must be a non-negative number, got ${timeoutMs}`));
      return promise;
    }
    let metadata = opts?.metadata;
    if (via !== undefined) {
      // An attempt gets what is left of the call's deadline, so retries never extend it.
      if (via.deadline !== Number.POSITIVE_INFINITY) {
        timeoutMs = via.deadline - performance.now();
        if (timeoutMs <= 0) {
          call.fail(deadlinePassed(label, address));
          return promise;
        }
      }
      metadata = via.metadata;
      const mine = opts?.responseMetadata;
      mine?.clear();
      via.responseMetadata = mine ?? new Map();
      call.responseMetadata = via.responseMetadata;
    } else {
      call.responseMetadata = opts?.responseMetadata;
    }
    if (cred?.md !== undefined) {
      metadata = withCredentials(cred.md, metadata);
      if (!cred.retried) call.retry = new CredentialRetry(this.#resend, address, serviceId, methodId, label, req, opts, via, cred.deadline, schemas);
    }
    const threefs = this.#threefs;
    if (threefs) {
      if (schemas?.request === undefined || schemas.response === undefined) {
        call.fail(new InvalidArgError(`${label}: the 3fs envelope needs a definition whose method has request and response schemas`, { peer: address }));
        return promise;
      }
      call.threefs = true;
      call.responseSchema = schemas.response;
    } else if (schemas?.request !== undefined) {
      const bad = requestMismatch(schemas.request, req, label, address);
      if (bad !== undefined) {
        call.fail(bad);
        return promise;
      }
      call.responseSchema = schemas.response;
    }
    const signal = opts?.signal;
    if (signal?.aborted) {
      call.fail(new CancelledError(`${label} was cancelled before it was sent`, { peer: address, cause: signal.reason }));
      return promise;
    }
    this.waiter.register(call, timeoutMs);

    const pkt = this.#req;
    pkt.uuid = call.uuid;
    pkt.serviceId = serviceId;
    pkt.methodId = methodId;
    pkt.flags = level > 0 ? this.#reqFlags | MessageFlags.UseCompress : this.#reqFlags;
    pkt.timeoutMs = Number.isFinite(timeoutMs) ? timeoutMs : 0;
    pkt.payload = req;
    pkt.metadata = metadata;
    const slow = this.#slow;
    const ts = opts?.timestamps ?? slow?.timestamps();
    if (slow !== undefined) call.slow = slow;
    call.log = this.#log;
    if (ts !== undefined) {
      ts.clientCalled = nowMicros();
      call.timestamps = ts;
      pkt.timestamps = ts;
    }
    let frame: FrameParts;
    try {
      frame = threefs ? encodeMessage3fs(pkt, schemas!.request, encode) : encodeMessageUnsealed(pkt, encode);
    } catch (e) {
      call.fail(interceptorError(e, address));
      return promise;
    } finally {
      pkt.payload = undefined;
      pkt.timestamps = undefined;
      pkt.metadata = undefined;
    }
    // The server's decoder would drop the connection over it, and every other call on it with it.
    const size = frameMessageSize(frame);
    if (size >= this.maxMessageSize) {
      call.fail(
        new MessageTooLargeError(`${label}: the request is ${size} bytes, at or above the limit of ${this.maxMessageSize} bytes (maxMessageSize)`, {
          peer: address,
        }),
      );
      return promise;
    }
    if (signal !== undefined) {
      call.signal = signal;
      // The call is its own listener (handleEvent): no closure per call on the hot path.
      signal.addEventListener('abort', call);
    }
    if (this.#bytes !== undefined) this.#bytes.requestBytes(address, frameBodySize(frame) + FRAME_HEADER_SIZE);
    // The only call in flight has nothing to wait for: written at once, without the flush tick (W1's latency).
    // Unsealed (encodeMessageUnsealed): the transport checksums the frames of one write in one call (Transport.send).
    this.ioWorker.sendAsync(address, frame, call, this.waiter.size === 1);
    return promise;
  }
}
