import { defaults, type Logger } from '@ffnet/common';
import { errorFromCode, type FfnetError, InvalidArgError, SendFailedError, SocketClosedError, StatusCode } from '@ffnet/serde';
import {
  type Address,
  type Backend,
  type BackendSocket,
  type Credentials,
  DEFAULT_BACKENDS,
  formatAddress,
  Transport,
  type TransportConnectOptions,
  type TransportOptions,
  TransportPool,
} from '@ffnet/transport';
import { Connection } from './connection.js';
import { toFfnetError } from './errors.js';
import { ATTEMPT, BIND, PendingCall } from './pending-call.js';
import type { Processor } from './processor.js';
import { StopControl } from './stop-control.js';

export interface IOWorkerOptions {
  /** Gets every frame that arrives on this worker's connections. */
  processor: Processor;
  /**
   * What addresses are dialled with (default `[tcp(), unix()]`); rdma:// needs rdma() from @ffnet/rdma. A call to
   * a scheme with none fails with SendFailedError whose cause says what to pass.
   */
  backends?: readonly Backend[];
  /**
   * Connect timeout for every scheme. Default: each backend's own (tcp and unix 1000 ms, 3FS tcp_connect_timeout;
   * rdma 5000 ms, rdma_connect_timeout).
   */
  connectTimeoutMs?: number;
  /** Retries of a request whose frame could not be sent, unless the call sets its own (default 1: two attempts). */
  sendRetryTimes?: number;
  /** Pause before a retry (default 100 ms, 3FS wait_to_retry_send). */
  waitToRetryMs?: number;
  /** Outgoing connections per address (default 1). */
  connectionsPerAddress?: number;
  /**
   * Connections idle (no read or write) this long are closed by the periodic check with TimeoutError; 0 = never
   * (default 5 minutes; 3FS's connection_expiration_time is a day).
   */
  idleTimeoutMs?: number;
  /**
   * A frame must be complete this long after its first byte arrived, plus one second per `frameMinBytesPerSec`
   * bytes of it that have arrived (what a header claims buys no time), or its connection is closed by the periodic check with TimeoutError (ResourceExhaustedError
   * when it was waiting for the receive budget). 0 = no limit (default 30 s).
   */
  frameTimeoutMs?: number;
  /** The slowest rate a large frame may arrive at, in bytes per second (default 1 MiB/s); 0 = frameTimeoutMs alone. */
  frameMinBytesPerSec?: number;
  /**
   * How often connections are checked (default 1 s, or frameTimeoutMs / 10 when that is shorter, at least 10 ms;
   * 0 = only on checkConnections()).
   */
  checkIntervalMs?: number;
  /** Passed to every Transport. */
  transport?: TransportOptions;
  /**
   * Handed to every connect (ConnectOptions.credentials), for backends that authenticate in their own handshake
   * (rdma's IBConnect). Calls carry their own: see the client's `credentials`.
   */
  credentials?: Credentials;
  /**
   * The root logger, passed to every Transport (connections opened/closed, dropped frames). Default: the
   * process-wide logger; `transport.logger` wins when both are set.
   */
  logger?: Logger;
}

export type IOWorkerState = 'idle' | 'running' | 'stopping' | 'stopped';

export interface IOWorkerStats {
  readonly connections: number;
  readonly connects: number;
  readonly accepted: number;
  readonly retries: number;
  readonly sendFailures: number;
}

/**
 * A call whose address cannot be dialled at all (no backend, RDMA unusable here) fails with SendFailedError
 * carrying the reason, as 3FS gives kSendFailed; a malformed address keeps its InvalidAddrError.
 */
function unreachable(call: PendingCall, address: Address | string, err: FfnetError): FfnetError {
  if (err.code === StatusCode.InvalidAddr) return err;
  const peer = typeof address === 'string' ? address : formatAddress(address);
  // The inner error's reason, not its message: this error names the peer itself.
  return new SendFailedError(`${call.label}: cannot send to ${peer}: ${err.reason}`, { peer, cause: err });
}

/** 5 minutes: long enough for a quiet client between bursts, short enough that abandoned sockets go. */
export const DEFAULT_IDLE_TIMEOUT_MS = defaults.IDLE_TIMEOUT_MS;
export const DEFAULT_FRAME_TIMEOUT_MS = defaults.FRAME_TIMEOUT_MS;
export const DEFAULT_FRAME_MIN_BYTES_PER_SEC = defaults.FRAME_MIN_BYTES_PER_SEC;
const DEFAULT_CHECK_INTERVAL_MS = 1000;

function nonNegative(name: string, v: number): number {
  if (!(Number.isFinite(v) && v >= 0)) throw new InvalidArgError(`IOWorker ${name} must be a non-negative number, got ${v}`);
  return v;
}

/**
 * Owns the connections of one side (a client, or a server's service group): dials on demand through a
 * TransportPool, adopts sockets a Listener accepted, feeds every frame to the Processor, retries requests
 * whose frames could not be sent, and closes idle connections.
 *
 * Delivery of a request: sendAsync() picks (or dials) the transport for the address; frames sent while it
 * connects wait in its queue. If the connection fails before a frame was handed to the OS, the request goes
 * out again after waitToRetryMs while retries remain, possibly on a new connection, and otherwise fails with
 * SendFailedError. A request that was written is never resent: if its connection then dies, the Waiter fails
 * it at once with SocketClosed/SocketError. Responses are never retried.
 */
export class IOWorker {
  readonly processor: Processor;
  /** Undefined: each backend's own connect timeout. */
  readonly connectTimeoutMs: number | undefined;
  readonly backends: readonly Backend[];
  readonly sendRetryTimes: number;
  readonly waitToRetryMs: number;
  readonly idleTimeoutMs: number;
  readonly frameTimeoutMs: number;
  readonly frameMinBytesPerSec: number;
  readonly checkIntervalMs: number;
  readonly maxMessageSize: number | undefined;
  readonly #transportOptions: TransportConnectOptions;
  readonly #pool: TransportPool;
  /** Calls sleeping before a retry, with their timers. */
  readonly #retrying = new Map<PendingCall, ReturnType<typeof setTimeout>>();
  #state: IOWorkerState = 'idle';
  #stopping: Promise<void> | undefined;
  /** The stop in progress: later stop() calls link their signals to it. */
  #stopControl: StopControl | undefined;
  /** Open connections, for abortCalls(). One entry per connection, none per call. */
  readonly #conns = new Set<Connection>();
  #checkTimer: ReturnType<typeof setInterval> | undefined;
  readonly #frameCheck: { timeoutMs: number; minBytesPerSec: number } | undefined;
  #connects = 0;
  #accepted = 0;
  #retries = 0;
  #sendFailures = 0;

  constructor(opts: IOWorkerOptions) {
    this.processor = opts.processor;
    this.connectTimeoutMs = opts.connectTimeoutMs === undefined ? undefined : nonNegative('connectTimeoutMs', opts.connectTimeoutMs);
    this.backends = opts.backends ?? DEFAULT_BACKENDS;
    this.sendRetryTimes = nonNegative('sendRetryTimes', opts.sendRetryTimes ?? 1);
    this.waitToRetryMs = nonNegative('waitToRetryMs', opts.waitToRetryMs ?? 100);
    this.idleTimeoutMs = nonNegative('idleTimeoutMs', opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    this.frameTimeoutMs = nonNegative('frameTimeoutMs', opts.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS);
    this.frameMinBytesPerSec = nonNegative('frameMinBytesPerSec', opts.frameMinBytesPerSec ?? DEFAULT_FRAME_MIN_BYTES_PER_SEC);
    // The frame deadline is only as sharp as the check: a tenth of it, so a frame is closed within 1.1x.
    const interval =
      this.frameTimeoutMs > 0 ? Math.max(10, Math.min(DEFAULT_CHECK_INTERVAL_MS, Math.floor(this.frameTimeoutMs / 10))) : DEFAULT_CHECK_INTERVAL_MS;
    this.checkIntervalMs = nonNegative('checkIntervalMs', opts.checkIntervalMs ?? interval);
    this.#frameCheck = this.frameTimeoutMs > 0 ? { timeoutMs: this.frameTimeoutMs, minBytesPerSec: this.frameMinBytesPerSec } : undefined;
    this.#transportOptions = {
      ...(opts.logger === undefined ? {} : { logger: opts.logger }),
      ...opts.transport,
      backends: this.backends,
      ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
    };
    this.maxMessageSize = opts.transport?.maxMessageSize;
    this.#pool = new TransportPool({
      connectionsPerAddress: opts.connectionsPerAddress ?? 1,
      create: (addr) => this.#dial(addr),
    });
  }

  get state(): IOWorkerState {
    return this.#state;
  }

  /** Open connections, outgoing and accepted. */
  get connections(): number {
    return this.#pool.size;
  }

  get stats(): IOWorkerStats {
    return {
      connections: this.#pool.size,
      connects: this.#connects,
      accepted: this.#accepted,
      retries: this.#retries,
      sendFailures: this.#sendFailures,
    };
  }

  /** A snapshot of the open transports. */
  transports(): Transport[] {
    return this.#pool.all();
  }

  /** Starts taking work and the periodic connection check. Idempotent; a stopped worker can start again. */
  start(): void {
    if (this.#state === 'running') return;
    this.#state = 'running';
    if (this.checkIntervalMs > 0) {
      this.#checkTimer = setInterval(() => this.checkConnections(), this.checkIntervalMs);
      this.#checkTimer.unref();
    }
  }

  /**
   * Stops taking work: requests waiting to be retried fail with SendFailedError, and every connection is
   * closed gracefully (queued frames are flushed first; connects in flight finish or time out before their
   * transport closes). Resolves when all are closed; an aborted `signal` closes the rest at once (unwritten
   * frames are dropped), also when it is passed to a later stop() while this one is pending. Idempotent.
   */
  stop(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'stopping') {
      // A later caller in a hurry cuts the pending stop short: its signal closes what is left at once.
      this.#stopControl!.link(opts.signal);
      return this.#stopping!;
    }
    if (this.#state !== 'running') return Promise.resolve();
    this.#state = 'stopping';
    const control = new StopControl();
    control.link(opts.signal);
    this.#stopControl = control;
    if (this.#checkTimer !== undefined) {
      clearInterval(this.#checkTimer);
      this.#checkTimer = undefined;
    }
    for (const [call, timer] of this.#retrying) {
      clearTimeout(timer);
      this.#sendFailures++;
      call.fail(new SendFailedError(`${call.label}: the IO worker stopped before the retry`, { peer: call.address }));
    }
    this.#retrying.clear();
    this.#stopping = this.#pool.close({ signal: control.signal }).then(() => {
      control.dispose();
      this.#stopControl = undefined;
      this.#stopping = undefined;
      if (this.#state === 'stopping') this.#state = 'stopped';
    });
    return this.#stopping;
  }

  /**
   * Queues `frame` (one buffer or its parts, as Transport.send) for `address`, dialling if no connection
   * exists. With `item` (a request), the frame is retried as described on the class and every failure settles
   * the item; without one (a response or a notice), a failure throws here or is dropped later. `alone`: see
   * Transport.send (the caller's only request in flight is written at once).
   */
  sendAsync(address: Address | string, frame: Uint8Array | readonly Uint8Array[], item?: PendingCall, alone = false): void {
    if (item !== undefined) {
      if (item.settled) return;
      item[ATTEMPT](typeof address === 'string' ? address : formatAddress(address), frame);
    }
    if (this.#state !== 'running') {
      const err = new SendFailedError(`cannot send: the IO worker is ${this.#state}`, {
        peer: typeof address === 'string' ? address : formatAddress(address),
      });
      if (item === undefined) throw err;
      this.#sendFailures++;
      item.fail(err);
      return;
    }
    let t: Transport;
    try {
      // With a factory the pool always yields a transport; a bad address or a missing backend throws.
      t = this.#pool.get(address)!;
    } catch (e) {
      if (item === undefined) throw e;
      this.#sendFailures++;
      item.fail(unreachable(item, address, toFfnetError(e)));
      return;
    }
    if (item === undefined) {
      t.send(frame);
      return;
    }
    item[BIND](t);
    try {
      t.send(frame, item, alone);
    } catch (e) {
      item[BIND](undefined);
      this.#retry(item, toFfnetError(e));
    }
  }

  /**
   * Aborts the `ctx.signal` of every request being handled on this worker's connections with `reason` (a server
   * stopping past its grace period). Handlers that ignore their signal run on; the connections stay open.
   */
  abortCalls(reason: FfnetError): void {
    for (const conn of this.#conns) for (let c = conn.head; c !== undefined; c = c.next) c.abort(reason);
  }

  /** Takes over a socket a listener accepted. Returns its transport, or undefined (socket destroyed) when not running. */
  adopt(socket: BackendSocket): Transport | undefined {
    if (this.#state !== 'running') {
      socket.destroy();
      return undefined;
    }
    const conn = new Connection(this);
    this.#conns.add(conn);
    const t = Transport.adopt(socket, conn, this.#transportOptions);
    this.#pool.add(t);
    this.#accepted++;
    this.processor.onConnectionOpened(conn, t);
    return t;
  }

  /**
   * Closes connections at once (calls on them fail with SocketClosed): those to `address`, or every
   * outgoing one; `incoming: true` adds the accepted ones. Returns how many were dropped.
   */
  dropConnections(opts: { address?: Address | string; incoming?: boolean } = {}): number {
    return this.#pool.drop(opts.address, { incoming: opts.incoming ?? false });
  }

  /**
   * Closes connections idle for idleTimeoutMs or with a frame overdue (frameTimeoutMs), and forgets closed ones;
   * returns how many were closed.
   */
  checkConnections(now?: number): number {
    return this.#pool.check(this.idleTimeoutMs, now, this.#frameCheck);
  }

  /** @internal */
  onConnectionClosed(conn: Connection, t: Transport, err: FfnetError | undefined, unsent: readonly unknown[]): void {
    if (unsent.length > 0) {
      const cause = err ?? new SocketClosedError('connection closed before the frame was written', { peer: t.peer });
      // Unbind first, so the Waiter below fails only the calls whose frames did leave.
      for (const tag of unsent) {
        if (tag instanceof PendingCall && tag.transport === t) {
          tag[BIND](undefined);
          this.#retry(tag, cause);
        }
      }
    }
    this.#conns.delete(conn);
    this.processor.onConnectionClosed(conn, t, err);
  }

  #dial(addr: Address): Transport {
    this.#connects++;
    const conn = new Connection(this);
    // Added once connect() returned: one that throws (no backend for the scheme) never reports a close.
    const t = Transport.connect(
      addr,
      conn,
      this.connectTimeoutMs === undefined ? this.#transportOptions : { ...this.#transportOptions, timeoutMs: this.connectTimeoutMs },
    );
    this.#conns.add(conn);
    this.processor.onConnectionOpened(conn, t);
    return t;
  }

  #retry(call: PendingCall, cause: FfnetError): void {
    if (call.settled) return;
    if (cause.code === StatusCode.Unauthenticated || cause.code === StatusCode.PermissionDenied) {
      // The peer refused who we are (an rdma handshake's authenticator, a TLS certificate): the same credentials
      // get the same answer, so the caller learns that at once, by its code, instead of a SendFailed after retries.
      this.#sendFailures++;
      call.fail(errorFromCode(cause.code, `${call.label}: ${cause.message}`, { peer: call.address, cause }));
      return;
    }
    const max = call.maxRetries ?? this.sendRetryTimes;
    if (call.attempts > max || this.#state !== 'running') {
      this.#sendFailures++;
      const why = this.#state !== 'running' ? `the IO worker is ${this.#state}` : `${call.attempts} attempt(s)`;
      call.fail(new SendFailedError(`${call.label}: send failed after ${why}: ${cause.reason}`, { peer: call.address, cause }));
      return;
    }
    this.#retries++;
    this.#retrying.set(call, setTimeout(this.#resend, this.waitToRetryMs, call));
  }

  readonly #resend = (call: PendingCall): void => {
    this.#retrying.delete(call);
    const frame = call.frame;
    if (!call.settled && frame !== undefined) this.sendAsync(call.address, frame, call);
  };
}
