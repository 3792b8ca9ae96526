import { componentLogger, defaults, type Logger, onAbort } from '@ffnet/common';
import type { TimerWheel } from '@ffnet/event';
import {
  CancelledError,
  DEFAULT_MAX_MESSAGE_SIZE,
  decodeMessage,
  decodeMessage3fs,
  type EncodeOptions,
  type EnvelopeName,
  encodeMessage3fs,
  envelopeNamed,
  FfnetError,
  FRAME_HEADER_SIZE,
  type FrameParts,
  InvalidArgError,
  InvalidMethodIDError,
  MessageFlags,
  type MessagePacket,
  MessageTooLargeError,
  type Metadata,
  type MetadataLimits,
  nowMicros,
  RequestRefusedError,
  ResourceExhaustedError,
  type Result,
  StatusCode,
  type Timestamps,
} from '@ffnet/serde';
import { encodeMessageUnsealed } from '@ffnet/serde/internal';
import type { Transport } from '@ffnet/transport';
import {
  CallContext,
  type CallQueue,
  RELEASE,
  RESPONSE_METADATA,
  type RequestInfo,
  type ServerHandler,
  type ServerInterceptor,
  type ServiceBinding,
  type ServiceLookup,
  TAKE_PAYLOAD,
} from './call-context.js';
import { CANCEL_SERVICE_ID } from './cancel.js';
import type { Connection } from './connection.js';
import { connectionLostError, type HandlerErrorHook, HandlerErrors, toFfnetError } from './errors.js';
import { frameBodySize, frameMessageSize } from './limits.js';
import type { CallObserver } from './observer.js';
import { checkResponse, HeaderSchemas, takeRequest } from './payload.js';
import { sharedTimerWheel } from './timers.js';
import type { Waiter } from './waiter.js';

export interface ProcessorOptions {
  /** Where requests go. Without one every request is answered InvalidMethodID. */
  lookup?: ServiceLookup;
  /** Where responses go (a client's Waiter). Without one responses are dropped and counted. */
  waiter?: Waiter;
  /** Requests being processed (running or queued in a method pool) above which new ones get RequestRefused. Default 4096. */
  maxProcessingRequests?: number;
  /** zstd level for responses to clients that use compression (default 1, as 3FS). */
  responseCompressionLevel?: number;
  /** Compress such responses from this many bytes (default 128 KiB, as 3FS). */
  responseCompressionThreshold?: number;
  /** For the deadlines behind `ctx.signal`; default the process-wide wheel. */
  wheel?: TimerWheel;
  /**
   * Sees every handler failure that was masked (anything but an FfnetError, in a service without exposeErrors;
   * the caller got 999 "internal error"), with what was thrown. Default: none; the last 16 are kept in
   * `handlerErrors.recent()` either way.
   */
  onHandlerError?: HandlerErrorHook;
  /** Wrap every handler, the first outermost (see ServerInterceptor). Default none. */
  interceptors?: readonly ServerInterceptor[];
  /** Limits of request metadata received and response metadata sent (default DEFAULT_METADATA_LIMITS). */
  metadataLimits?: MetadataLimits;
  /** Sees calls, bytes and connections (diagnostics_channel, metrics); default none. */
  observer?: CallObserver;
  /**
   * The envelope of every frame on this processor's connections (default 'ffnet'). '3fs' is 3FS's MessagePacket:
   * every method needs request and response schemas, and there is no metadata or deadline field.
   */
  envelope?: EnvelopeName;
  /**
   * The root logger (scoped to component `worker`): undecodable frames, refused and dropped requests, masked
   * handler failures, slow calls. Default: the process-wide logger (silent unless FFNET_DEBUG).
   */
  logger?: Logger;
  /**
   * A call whose handler takes longer than this (from the request's decoding to its reply) is logged at warn with
   * service, method, peer, duration and where the time went (3FS's logLongRunningThreshold). Default 0: off.
   */
  slowCallMs?: number;
}

export interface ProcessorStats {
  /** Requests running or queued now. */
  readonly processing: number;
  /** Requests dispatched to a handler. */
  readonly requests: number;
  readonly responses: number;
  /** Answered RequestRefused (over the limit, or stopping). */
  readonly refused: number;
  /** Answered InvalidMethodID. */
  readonly invalidMethod: number;
  /** Dropped unanswered while frozen. */
  readonly dropped: number;
  readonly cancelNotices: number;
  /** Frames that failed to decode; each closed its connection. */
  readonly badFrames: number;
  /** Responses that arrived with no Waiter to take them. */
  readonly unexpectedResponses: number;
}

/** What an error response is addressed with: a CallContext or a request packet. */
interface ReplyTo {
  readonly uuid: number;
  readonly serviceId: number;
  readonly methodId: number;
  readonly flags: number;
  readonly version: number;
  readonly timestamps?: Timestamps | undefined;
  readonly echo?: Uint8Array | undefined;
}

const DEFAULT_MAX_PROCESSING = defaults.MAX_PROCESSING;

/** The innermost step of an interceptor chain. */
function runHandler(ctx: CallContext, req: unknown): unknown {
  return ctx.method.handler(ctx, req);
}

/** The interceptors around runHandler, the first outermost; undefined without any, so a call pays nothing. */
export function composeServerInterceptors(list: readonly ServerInterceptor[] | undefined): ServerHandler | undefined {
  if (list === undefined || list.length === 0) return undefined;
  let next: ServerHandler = runHandler;
  for (let i = list.length - 1; i >= 0; i--) {
    const wrap = list[i]!;
    if (typeof wrap !== 'function') throw new InvalidArgError(`interceptor ${i} is not a function`);
    next = wrap(next);
    if (typeof next !== 'function') throw new InvalidArgError(`interceptor ${i} did not return a handler function`);
  }
  return next;
}

/** Milliseconds to 0.01 ms, enough for a log line. */
function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return v instanceof Promise || (v !== null && typeof v === 'object' && typeof (v as PromiseLike<unknown>).then === 'function');
}

function replyRefused(t: Transport, frame: FrameParts, e: unknown): ResourceExhaustedError {
  const size = frameBodySize(frame) + FRAME_HEADER_SIZE;
  const why = e instanceof FfnetError ? e.reason : String(e);
  return new ResourceExhaustedError(`a ${size}-byte reply cannot be queued: ${why}`, { peer: t.peer, cause: e });
}

/** Status codes travel as u16; anything else is reported as Unknown. */
function wireCode(code: number): number {
  return Number.isInteger(code) && code > 0 && code <= 0xffff ? code : StatusCode.Unknown;
}

/**
 * Frames in, calls out. Decodes each frame (the transport has checked its CRC), routes requests to services
 * and responses to the Waiter, and writes responses back on the connection the request came in on.
 *
 * Per request: frozen → dropped unanswered (the caller times out, as in 3FS); stopping or more than
 * maxProcessingRequests in progress → RequestRefused; an unknown service or method → InvalidMethodID; a
 * handler that throws → an error response with its code, never a crash. A method runs inline on arrival
 * unless it has a MethodPool bounding how many run at once.
 *
 * A frame that does not decode closes only its own connection.
 */
export class Processor {
  readonly lookup: ServiceLookup | undefined;
  readonly waiter: Waiter | undefined;
  readonly maxProcessingRequests: number;
  readonly wheel: TimerWheel;
  /** Handler failures masked from callers: count, the most recent ones, the hook. */
  readonly handlerErrors: HandlerErrors;
  readonly #compress: EncodeOptions;
  /** Response encoding without compression; undefined unless metadata limits were configured. */
  readonly #plain: EncodeOptions | undefined;
  /** The interceptors around the handlers, or undefined. */
  readonly #chain: ServerHandler | undefined;
  readonly metadataLimits: MetadataLimits | undefined;
  readonly observer: CallObserver | undefined;
  /** The observer, when it counts bytes: checked per frame. */
  readonly #bytes: CallObserver | undefined;
  readonly envelope: EnvelopeName;
  /** The 3fs envelope: payloads are bytes until their method is known. */
  readonly #threefs: boolean;
  /** 3fs only: lets the frame decoder decode a payload in its pass over the header. */
  readonly #headerSchemas: HeaderSchemas | undefined;
  /** 0: slow calls are not measured. */
  readonly slowCallMs: number;
  readonly #log: Logger;
  #frozen = false;
  #stopping = false;
  #processing = 0;
  #drained: Promise<void> | undefined;
  #resolveDrained: (() => void) | undefined;
  #requests = 0;
  #responses = 0;
  #refused = 0;
  #invalidMethod = 0;
  #dropped = 0;
  #cancelNotices = 0;
  #badFrames = 0;
  #unexpected = 0;
  // One response packet and two Results reused for every reply: the encoder is synchronous and keeps no
  // reference, so the hot path allocates neither.
  readonly #ok: { ok: true; value: unknown } = { ok: true, value: undefined };
  readonly #err: { ok: false; code: number; message: string } = { ok: false, code: 0, message: '' };
  readonly #rsp: MessagePacket = { uuid: 0, serviceId: 0, methodId: 0, flags: 0, version: 0, timeoutMs: 0, payload: undefined };
  // The clock read for the last read's requests (receivedAt): every frame of one read arrived at once, so a batch
  // of pipelined requests pays for one performance.now() instead of one each.
  #clockTransport: Transport | undefined = undefined;
  #clockRead = -1;
  #clockAt = 0;

  constructor(opts: ProcessorOptions = {}) {
    const max = opts.maxProcessingRequests ?? DEFAULT_MAX_PROCESSING;
    if (!Number.isInteger(max) || max < 1) throw new InvalidArgError(`maxProcessingRequests must be a positive integer, got ${max}`);
    this.lookup = opts.lookup;
    this.waiter = opts.waiter;
    this.maxProcessingRequests = max;
    this.wheel = opts.wheel ?? sharedTimerWheel();
    const slow = opts.slowCallMs ?? 0;
    if (!(Number.isFinite(slow) && slow >= 0)) throw new InvalidArgError(`slowCallMs must be a non-negative number, got ${slow}`);
    this.slowCallMs = slow;
    this.#log = componentLogger('worker', opts.logger);
    this.handlerErrors = new HandlerErrors(opts.onHandlerError, this.#log);
    this.metadataLimits = opts.metadataLimits;
    this.observer = opts.observer;
    this.#bytes = opts.observer?.countBytes === true ? opts.observer : undefined;
    this.#compress = {
      compressionLevel: opts.responseCompressionLevel ?? 1,
      compressionThreshold: opts.responseCompressionThreshold ?? defaults.COMPRESSION_THRESHOLD_BYTES,
      ...(opts.metadataLimits ? { metadataLimits: opts.metadataLimits } : {}),
    };
    this.#plain = opts.metadataLimits ? { metadataLimits: opts.metadataLimits } : undefined;
    this.#chain = composeServerInterceptors(opts.interceptors);
    this.envelope = envelopeNamed(opts.envelope, 'processor envelope').name;
    this.#threefs = this.envelope === '3fs';
    this.#headerSchemas = this.#threefs ? new HeaderSchemas(this) : undefined;
  }

  /** Requests running or queued now. */
  get processing(): number {
    return this.#processing;
  }

  get frozen(): boolean {
    return this.#frozen;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get stats(): ProcessorStats {
    return {
      processing: this.#processing,
      requests: this.#requests,
      responses: this.#responses,
      refused: this.#refused,
      invalidMethod: this.#invalidMethod,
      dropped: this.#dropped,
      cancelNotices: this.#cancelNotices,
      badFrames: this.#badFrames,
      unexpectedResponses: this.#unexpected,
    };
  }

  /** Frozen: requests are dropped without an answer (callers time out). Unfreezing takes requests again. */
  setFrozen(frozen: boolean): void {
    this.#frozen = frozen;
  }

  /** Takes requests again after stop(). Idempotent. */
  start(): void {
    this.#stopping = false;
  }

  /**
   * Refuses new requests (RequestRefused) and resolves once every request in progress has been answered.
   * An aborted `signal` stops the waiting, not the requests. Idempotent.
   */
  stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.#stopping = true;
    if (this.#processing === 0) return Promise.resolve();
    this.#drained ??= new Promise<void>((resolve) => {
      this.#resolveDrained = resolve;
    });
    const signal = opts.signal;
    if (!signal) return this.#drained;
    if (signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const off = onAbort(signal, () => resolve());
      this.#drained!.then(() => {
        off();
        resolve();
      });
    });
  }

  /** A verified frame from `conn` (FrameSink, called by the Connection). */
  onFrame(conn: Connection, t: Transport, body: Buffer, compressed: boolean): void {
    if (this.#bytes !== undefined) this.#bytes.bytesIn(conn, t, body.byteLength + FRAME_HEADER_SIZE);
    let pkt: MessagePacket;
    try {
      pkt =
        this.#headerSchemas !== undefined
          ? decodeMessage3fs(body, compressed, conn.decodeOptions(t), this.#headerSchemas.at(t))
          : decodeMessage(body, compressed, conn.decodeOptions(t));
    } catch (e) {
      this.#badFrames++;
      const err = toFfnetError(e, t.peer);
      if (this.#log.isLevelEnabled('warn'))
        this.#log.warn({ peer: t.peer, code: err.code, reason: err.reason, err }, 'frame dropped: message does not decode, closing connection');
      t.invalidate(err);
      return;
    }
    if ((pkt.flags & MessageFlags.IsReq) !== 0) {
      this.#request(conn, t, pkt);
      return;
    }
    const waiter = this.waiter;
    if (waiter === undefined) {
      this.#unexpected++;
      if (this.#log.isLevelEnabled('debug')) this.#log.debug({ peer: t.peer, uuid: pkt.uuid }, 'response dropped: nothing here makes calls');
      return;
    }
    if (pkt.timestamps !== undefined) pkt.timestamps.clientReceived = nowMicros();
    waiter.post(pkt, t);
  }

  /** A connection was dialled or accepted (called by the IOWorker). */
  onConnectionOpened(conn: Connection, t: Transport): void {
    this.observer?.connectionOpened(conn, t);
  }

  /** The connection died: abort its handlers' signals and fail the calls waiting on it (called by the IOWorker). */
  onConnectionClosed(conn: Connection, t: Transport, err: FfnetError | undefined): void {
    if (t === this.#clockTransport) this.#clockTransport = undefined;
    this.observer?.connectionClosed(conn, t, err);
    const lost = connectionLostError(t.peer, err);
    for (let c = conn.head; c !== undefined; c = c.next) c.abort(lost);
    this.waiter?.failTransport(t, lost);
  }

  #request(conn: Connection, t: Transport, pkt: MessagePacket): void {
    if (pkt.serviceId === CANCEL_SERVICE_ID) {
      this.#cancel(conn, t, pkt.uuid);
      return;
    }
    if (this.#frozen) {
      this.#dropped++;
      if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug({ peer: t.peer, uuid: pkt.uuid, serviceId: pkt.serviceId, methodId: pkt.methodId }, 'request dropped unanswered: frozen');
      }
      return;
    }
    const ts = pkt.timestamps;
    if (ts !== undefined) ts.serverReceived = nowMicros();
    const service = this.lookup?.service(pkt.serviceId, t);
    const method = service?.method(pkt.methodId);
    if (this.#stopping || this.#processing >= this.maxProcessingRequests) {
      this.#refused++;
      if (method !== undefined) method.errors++;
      const why = this.#stopping ? 'the server is stopping' : `${this.#processing} requests in progress (max ${this.maxProcessingRequests})`;
      const level = this.#stopping ? 'debug' : 'warn';
      if (this.#log.isLevelEnabled(level)) {
        this.#log[level]({ peer: t.peer, service: service?.name ?? pkt.serviceId, method: method?.name ?? pkt.methodId, reason: why }, 'request refused');
      }
      const refused = new RequestRefusedError(`request refused: ${why}`);
      this.observer?.callRefused(t, service, method, refused);
      this.#sendError(conn, t, pkt, service, refused);
      return;
    }
    if (method === undefined) {
      this.#invalidMethod++;
      const what = service === undefined ? `service ${pkt.serviceId}` : `method ${pkt.methodId} of service ${service.name} (${pkt.serviceId})`;
      if (this.#log.isLevelEnabled('debug')) this.#log.debug({ peer: t.peer, reason: `no such method: ${what}` }, 'request refused');
      this.#sendError(conn, t, pkt, service, new InvalidMethodIDError(`no such method: ${what}`));
      return;
    }
    if (this.#threefs || method.request !== undefined) {
      const refused = takeRequest(pkt, method, this.#threefs, t.peer);
      if (refused !== undefined) {
        method.errors++;
        this.#sendError(conn, t, pkt, service, refused);
        return;
      }
    }
    const ctx = new CallContext(this, conn, t, pkt, service!, method, this.#receivedAt(t));
    this.#processing++;
    this.#requests++;
    method.calls++;
    conn.link(ctx);
    if (this.observer !== undefined) this.observer.callStart(ctx);
    const pool = method.pool;
    if (pool === undefined) this.#invoke(ctx);
    else if (pool.running < pool.limit) {
      pool.running++;
      this.#invoke(ctx);
    } else pool.push(ctx);
  }

  /** When the read that brought this request was handled (performance.now()), read once per read. */
  #receivedAt(t: Transport): number {
    const read = t.readCount;
    if (t === this.#clockTransport && read === this.#clockRead) return this.#clockAt;
    const now = performance.now();
    this.#clockTransport = t;
    // A transport without a count (a stand-in) reads the clock every time.
    this.#clockRead = read ?? -1;
    this.#clockAt = now;
    return now;
  }

  #invoke(ctx: CallContext): void {
    const ts = ctx.timestamps;
    if (ts !== undefined) ts.serverWaked = nowMicros();
    if (this.slowCallMs > 0) ctx.invokedAt = performance.now();
    const req = ctx[TAKE_PAYLOAD]();
    let r: unknown;
    const chain = this.#chain;
    try {
      r = chain === undefined ? ctx.method.handler(ctx, req) : chain(ctx, req);
    } catch (e) {
      this.#completeError(ctx, e);
      return;
    }
    if (isPromiseLike(r)) void Processor.#settleLater(this, ctx, r);
    else this.#completeOk(ctx, r);
  }

  /**
   * One promise per asynchronous handler (the one `await` needs), and no closures: a handler's outcome comes
   * back here and goes straight to the Processor.
   */
  static async #settleLater(p: Processor, ctx: CallContext, pending: PromiseLike<unknown>): Promise<void> {
    let value: unknown;
    try {
      value = await pending;
    } catch (e) {
      p.#completeError(ctx, e);
      return;
    }
    p.#completeOk(ctx, value);
  }

  /** A handler returned `value`. */
  #completeOk(ctx: CallContext, value: unknown): void {
    if (ctx.done) return;
    const ts = ctx.timestamps;
    if (ts !== undefined) ts.serverProcessed = nowMicros();
    this.#finish(ctx);
    if (ctx.conn.closed) {
      this.#ended(ctx, connectionLostError(ctx.peer, undefined));
      return;
    }
    // Under 3fs the encoder itself refuses a response that does not fit, naming the field.
    if (ctx.method.response !== undefined && !this.#threefs) {
      const bad = checkResponse(ctx.method, value, ctx.peer);
      if (bad !== undefined) {
        ctx.method.errors++;
        this.#ended(ctx, bad);
        this.#sendError(ctx.conn, ctx.transport, ctx, ctx.service, bad);
        return;
      }
    }
    const ok = this.#ok;
    ok.value = value;
    let frame: FrameParts;
    try {
      frame = this.#encode(ctx, ok, ctx[RESPONSE_METADATA]());
    } catch (e) {
      // An unencodable response is the handler's failure, and the encoder's message quotes the value's.
      ok.value = undefined;
      ctx.method.errors++;
      // Response metadata over its limits is reported as such; other encoder failures are masked like a throw.
      const intended = e instanceof MessageTooLargeError || (this.#threefs && e instanceof InvalidArgError);
      const failure = this.#handlerFailure(ctx, e, intended);
      this.#ended(ctx, failure);
      this.#sendError(ctx.conn, ctx.transport, ctx, ctx.service, failure);
      return;
    }
    ok.value = undefined;
    // The peer's decoder would drop the whole connection over it, failing every other call on it: answer this one
    // with an error instead, before anything is queued.
    const size = frameMessageSize(frame);
    const limit = ctx.conn.worker.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    if (size >= limit) {
      ctx.method.errors++;
      const err = new MessageTooLargeError(`the response of ${ctx.method.name} is ${size} bytes, at or above the limit of ${limit} bytes (maxMessageSize)`, {
        peer: ctx.peer,
      });
      this.#ended(ctx, err);
      this.#sendError(ctx.conn, ctx.transport, ctx, ctx.service, err);
      return;
    }
    this.#ended(ctx, undefined);
    this.#send(ctx.conn, ctx.transport, frame);
  }

  /** One call is over: the method's latency, then the observer. */
  #ended(ctx: CallContext, error: FfnetError | undefined): void {
    const ms = performance.now() - ctx.receivedAt;
    const m = ctx.method;
    if (m.recordLatency !== undefined) m.recordLatency(ms);
    if (this.observer !== undefined) this.observer.callEnd(ctx, ms, error);
  }

  /** A handler threw or rejected with `e`. */
  #completeError(ctx: CallContext, e: unknown): void {
    if (ctx.done) return;
    const ts = ctx.timestamps;
    if (ts !== undefined) ts.serverProcessed = nowMicros();
    this.#finish(ctx);
    ctx.method.errors++;
    if (ctx.conn.closed) {
      this.#ended(ctx, connectionLostError(ctx.peer, undefined));
      return;
    }
    const failure = this.#handlerFailure(ctx, e, true);
    this.#ended(ctx, failure);
    this.#sendError(ctx.conn, ctx.transport, ctx, ctx.service, failure);
  }

  #handlerFailure(ctx: CallContext, e: unknown, intended: boolean): FfnetError {
    const info = { service: ctx.service.name, method: ctx.method.name, peer: ctx.peer, uuid: ctx.uuid };
    return this.handlerErrors.toResponse(e, ctx.service.exposeErrors, info, intended);
  }

  #finish(ctx: CallContext): void {
    if (this.slowCallMs > 0) this.#checkSlow(ctx);
    ctx[RELEASE]();
    ctx.conn.unlink(ctx);
    this.#processing--;
    const pool = ctx.method.pool;
    if (pool !== undefined) {
      pool.running--;
      this.#runQueued(pool);
    }
    if (this.#processing === 0 && this.#resolveDrained !== undefined) {
      const resolve = this.#resolveDrained;
      this.#resolveDrained = undefined;
      this.#drained = undefined;
      resolve();
    }
  }

  /** 3FS's logLongRunningThreshold, on the server's side: where the time of a slow call went. */
  #checkSlow(ctx: CallContext): void {
    const now = performance.now();
    const durationMs = now - ctx.receivedAt;
    if (durationMs <= this.slowCallMs || !this.#log.isLevelEnabled('warn')) return;
    const invoked = ctx.invokedAt > 0 ? ctx.invokedAt : now;
    this.#log.warn(
      {
        service: ctx.service.name,
        method: ctx.method.name,
        peer: ctx.peer,
        uuid: ctx.uuid,
        durationMs: round(durationMs),
        thresholdMs: this.slowCallMs,
        // Waiting for a MethodPool slot, then the handler (interceptors included).
        breakdown: { queueMs: round(invoked - ctx.receivedAt), handlerMs: round(now - invoked) },
      },
      'slow call',
    );
  }

  #runQueued(pool: CallQueue): void {
    // A synchronous handler finishes inside #invoke and lands back here; the outer loop keeps going instead.
    if (pool.draining) return;
    pool.draining = true;
    try {
      while (pool.running < pool.limit) {
        const next = pool.take();
        if (next === undefined) break;
        pool.running++;
        this.#invoke(next);
      }
    } finally {
      pool.draining = false;
    }
  }

  #cancel(conn: Connection, t: Transport, uuid: number): void {
    this.#cancelNotices++;
    for (let c = conn.head; c !== undefined; c = c.next) {
      if (c.uuid === uuid) {
        c.abort(new CancelledError('the caller cancelled the call', { peer: t.peer }));
        return;
      }
    }
  }

  #sendError(conn: Connection, t: Transport, to: ReplyTo, service: ServiceBinding | undefined, err: FfnetError): void {
    if (service?.onError !== undefined) {
      const info: RequestInfo = to instanceof CallContext ? to : { uuid: to.uuid, serviceId: to.serviceId, methodId: to.methodId, peer: t.peer };
      try {
        const replaced = service.onError(err, info);
        if (replaced !== undefined) err = replaced;
      } catch (e) {
        // The hook's own failure is masked like a handler's.
        const method = to instanceof CallContext ? to.method.name : (service.method(to.methodId)?.name ?? `${service.name}#${to.methodId}`);
        err = this.handlerErrors.toResponse(e, service.exposeErrors, { service: service.name, method, peer: t.peer, uuid: to.uuid }, true);
      }
    }
    const r = this.#err;
    r.code = wireCode(err.code);
    // The reason, not the message: the caller adds its own view of the peer when it rebuilds the error.
    r.message = err.reason;
    let frame: FrameParts;
    const md = to instanceof CallContext ? to[RESPONSE_METADATA]() : undefined;
    try {
      frame = this.#encode(to, r, md);
    } catch (e) {
      // Only metadata over its limits can fail here: the error goes back without it.
      if (md === undefined) throw e;
      frame = this.#encode(to, r, undefined);
    }
    r.message = '';
    this.#send(conn, t, frame);
  }

  #encode(to: ReplyTo, payload: Result<unknown>, metadata: Metadata | undefined): FrameParts {
    const rsp = this.#rsp;
    rsp.metadata = metadata;
    rsp.uuid = to.uuid;
    rsp.serviceId = to.serviceId;
    rsp.methodId = to.methodId;
    rsp.version = to.version;
    rsp.payload = payload;
    rsp.timestamps = to.timestamps;
    const opts = (to.flags & MessageFlags.UseCompress) !== 0 ? this.#compress : this.#plain;
    try {
      // Unsealed: the Transport checksums a write's replies in one call before it writes them (Transport.send).
      if (!this.#threefs) return encodeMessageUnsealed(rsp, opts);
      rsp.echo = to.echo;
      return encodeMessage3fs(rsp, to instanceof CallContext ? to.method.response : undefined, opts);
    } finally {
      rsp.payload = undefined;
      rsp.metadata = undefined;
      rsp.timestamps = undefined;
      rsp.echo = undefined;
    }
  }

  #send(conn: Connection, t: Transport, frame: FrameParts): void {
    let below: boolean;
    try {
      below = t.send(frame);
    } catch (e) {
      // Closed under us: the caller learns that from its own side, and responses are never retried. Refused
      // (an output cap): never drop a reply silently, close the connection saying why.
      if (t.state === 'ready') {
        const err = replyRefused(t, frame, e);
        if (this.#log.isLevelEnabled('warn')) this.#log.warn({ peer: t.peer, reason: err.reason, err }, 'reply refused, closing connection');
        t.invalidate(err);
      } else if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug({ peer: t.peer, state: t.state, err: e }, 'reply dropped: connection closed');
      }
      return;
    }
    this.#responses++;
    if (this.#bytes !== undefined) this.#bytes.bytesOut(conn, t, frameBodySize(frame) + FRAME_HEADER_SIZE);
    if (!below && !conn.paused) {
      // Replies are piling up faster than the peer reads them: stop taking requests from it until they drain.
      conn.paused = true;
      t.pause();
    }
  }
}
