import { componentLogger, type Disposer, defaults, type Logger, onAbort } from '@ffnet/common';
import {
  ConnectFailedError,
  DEFAULT_MAX_MESSAGE_SIZE,
  errorFromCode,
  FfnetError,
  FrameDecoder,
  NotImplementedError,
  ResourceExhaustedError,
  SendFailedError,
  SocketClosedError,
  StatusCode,
  TimeoutError,
} from '@ffnet/serde';
import { sealPendingFrames } from '@ffnet/serde/internal';
import { type Address, formatAddress, toAddress } from './address.js';
import { autoTuneAllocator } from './allocator.js';
import {
  type Backend,
  type BackendCapabilities,
  type BackendSocket,
  findBackend,
  type PeerCertificate,
  type PeerCredentials,
  STREAM_CAPABILITIES,
} from './backend.js';
import type { BudgetWaiter, ByteBudget } from './budget.js';
import { DEFAULT_BACKENDS } from './defaults.js';
import type { Credentials, Principal } from './identity.js';

export type TransportState = 'connecting' | 'ready' | 'closing' | 'closed';

export interface TransportHandler {
  /** A complete frame whose CRC has been verified. `body` is a view of received memory (no copy). */
  onFrame(t: Transport, body: Buffer, compressed: boolean): void;
  /**
   * Called exactly once. `error` is undefined only after a clean local close(). `unsent` holds the tags of
   * frames not confirmed as handed to the OS, in send order (a write batch is confirmed as a whole, so a
   * frame listed here may still have reached the peer).
   */
  onClose(t: Transport, error: FfnetError | undefined, unsent: readonly unknown[]): void;
  /** After send() returned false, once queuedBytes has fallen to half the high-water mark. */
  onDrain?(t: Transport): void;
}

export interface TransportOptions {
  /** Inbound frames of this size or larger kill the connection (default 512 MiB, as 3FS). */
  maxMessageSize?: number;
  /**
   * How much of a large inbound body (64 KiB or more) must have arrived before its buffer is allocated and the
   * rest is read straight into it: serde's FrameDecoderOptions.allocateLargeBodyAt (default 1/8; 1 = only once
   * complete, at the cost of a copy of the whole body).
   */
  allocateLargeBodyAt?: number;
  /** send() returns false while more than this many bytes are queued (default 8 MiB). */
  highWaterMark?: number;
  /**
   * Hard cap: a frame that would take the queue past it is refused (SendFailedError), unless the queue is empty
   * (default 64 MiB).
   */
  maxQueuedBytes?: number;
  /**
   * Shared with other transports (a Server's): bytes held in partially received frames, a large body counted at
   * its full size from its allocation on. A connection holding less than 64 KiB takes none of it, so small frames
   * never wait. One that cannot get what it holds stops reading until a release makes room; a frame that cannot
   * fit even an empty budget closes the connection with ResourceExhaustedError.
   */
  receiveBudget?: ByteBudget;
  /**
   * Shared with other transports (a Server's): bytes queued for sending. A frame that does not fit is refused
   * (SendFailedError) unless this transport's queue is empty, so every connection can always queue one frame.
   */
  outputBudget?: ByteBudget;
  /** A graceful close that has not finished after this long destroys the socket (default 5000 ms). */
  closeTimeoutMs?: number;
  /**
   * Frames queued in one turn are written together at its end, or as soon as they reach this many bytes
   * (default 4 KiB): the peer then starts on the first ones while the rest are still being produced.
   */
  batchBytes?: number;
  /**
   * unix:// connects only: the uid the server must run as (checked on the socket file, its directory and the
   * listening process's SO_PEERCRED); otherwise the connect fails with PermissionDeniedError. Default: unchecked.
   */
  unixOwnerUid?: number;
  /**
   * Where connection opened/closed (debug) and dropped frames (warn: corrupt, oversized, over budget, overdue) are
   * logged, scoped to component `transport`. Default: the process-wide logger (silent unless FFNET_DEBUG).
   */
  logger?: Logger;
}

export interface TransportConnectOptions extends TransportOptions {
  /** Aborts the connect phase only. */
  signal?: AbortSignal;
  /** Connect timeout; default the backend's own (tcp and unix 1000 ms, rdma 5000 ms). */
  timeoutMs?: number;
  /** Where the address's scheme finds its backend (default `[tcp(), unix()]`; rdma:// needs rdma() from @ffnet/rdma). */
  backends?: readonly Backend[];
  /** Passed to the backend's connect (ConnectOptions.credentials): rdma sends it in its IBConnect request. */
  credentials?: Credentials;
}

/** The backend socket under a transport, for sibling packages (the `./internal` subpath), not the public API. */
export let socketOf: (t: Transport) => BackendSocket | undefined;

const DEFAULT_HIGH_WATER_MARK = defaults.HIGH_WATER_MARK_BYTES;
const DEFAULT_MAX_QUEUED_BYTES = defaults.MAX_QUEUED_BYTES;
/** Below this many held bytes a connection takes nothing from the receive budget (see TransportOptions). */
export const RECEIVE_ALLOWANCE = 64 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = defaults.CLOSE_TIMEOUT_MS;
const NO_TAGS: unknown[] = [];
const DEFAULT_BATCH_BYTES = 4096;
const noop = (): void => {};

let nextId = 1;

/**
 * Frames encoded one after another lie back to back in the encoder's output slab: each such run becomes one
 * buffer, so the backend writes a few iovecs instead of one per frame. The bytes are the same.
 */
function coalesce(frames: Uint8Array[]): Uint8Array[] {
  let out: Uint8Array[] | undefined;
  let first = frames[0]!;
  let end = first.byteOffset + first.length;
  let merged = false;
  for (let i = 1; i < frames.length; i++) {
    const f = frames[i]!;
    // The offset first: it differs for a frame that is not next in the slab, and buffer is the dearer getter.
    if (f.byteOffset === end && f.length > 0 && f.buffer === first.buffer) {
      end += f.length;
      merged = true;
      continue;
    }
    out ??= [];
    out.push(merged ? new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset) : first);
    first = f;
    end = f.byteOffset + f.length;
    merged = false;
  }
  if (out === undefined && !merged) return frames;
  const last = merged ? new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset) : first;
  if (out === undefined) return [last];
  out.push(last);
  return out;
}

/** Frames handed to the backend in one write(), waiting for its written() confirmation. */
interface Batch {
  readonly tags: unknown[];
  readonly bytes: number;
}

/**
 * One connection: frames out through a batching write queue, frames in through a FrameDecoder.
 *
 * Writes: send() appends to the queue; the first send of a turn schedules one flush with process.nextTick.
 * nextTick (not queueMicrotask) because a tick queued from inside a promise continuation runs only after the
 * whole microtask queue has drained, so replies produced by many continuations in the same turn leave in one
 * write; a microtask would flush after the first continuation and split them. The flush hands the whole queue
 * to the backend as one write (cork → writev). While the backend reports itself full, frames stay queued and
 * go out together at its drain. Two exceptions keep latency and batches short: frames sent while a read is
 * being handled (replies of synchronous handlers) go out when that read has been handled, without waiting
 * for the tick; and a queue that reaches `batchBytes` is written at once, so the peer can start on it while
 * the rest of the turn's frames are produced.
 */
export class Transport {
  readonly id: number;
  readonly address: Address;
  readonly peer: string;
  readonly incoming: boolean;
  /** What the connection can do beyond a byte stream, as its backend states it. */
  readonly capabilities: BackendCapabilities;
  readonly ready: Promise<void>;
  readonly closed: Promise<FfnetError | undefined>;

  private _state: TransportState;
  private _lastActiveAt: number;
  private _principal: Principal | undefined = undefined;
  private readySettled = false;
  private sock: BackendSocket | undefined;
  private readonly handler: TransportHandler;
  private readonly decoder: FrameDecoder;
  private readonly highWaterMark: number;
  private readonly maxQueuedBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly batchBytes: number;
  private readonly rxBudget: ByteBudget | undefined;
  private readonly txBudget: ByteBudget | undefined;
  private readonly log: Logger;
  /** Bytes taken from rxBudget for what the decoder holds. */
  private rxCharged = 0;
  /** Reading stopped until rxBudget has room (independent of pause()). */
  private budgetWait = false;
  /** Date.now() when the frame being received started arriving (0: none), and the decoder's count then. */
  private frameStart = 0;
  private framesSeen = 0;

  private frames: Uint8Array[] = [];
  private tags: unknown[] = NO_TAGS;
  private pendingBytes = 0;
  private readonly batches: Batch[] = [];
  private inflightBytes = 0;
  private flushScheduled = false;
  private backendBlocked = false;
  private needDrain = false;
  private paused = false;
  /** Inside onData: sends wait for its end instead of scheduling a flush tick. */
  private reading = false;
  /** Bumped per read and per resume(): see readCount. */
  private reads = 0;
  /** end() was called on the socket: a clean close from here on is ours, not the peer's. */
  private ending = false;
  private connectAbort: AbortController | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  /** Undoes close()'s registration on its signal. */
  private offCloseSignal: Disposer | undefined;
  private resolveReady: () => void = noop;
  private rejectReady: (e: FfnetError) => void = noop;
  private resolveClosed: (e: FfnetError | undefined) => void = noop;

  static {
    socketOf = (t) => t.sock;
  }

  private constructor(address: Address, peer: string, incoming: boolean, capabilities: BackendCapabilities, handler: TransportHandler, opts: TransportOptions) {
    // Large frames arrive in fresh allocations: the first connection keeps freed memory in the process (allocator.ts).
    autoTuneAllocator();
    this.id = nextId++;
    this.address = address;
    this.peer = peer;
    this.incoming = incoming;
    this.capabilities = capabilities;
    this.handler = handler;
    this._state = incoming ? 'ready' : 'connecting';
    this._lastActiveAt = Date.now();
    this.highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.rxBudget = opts.receiveBudget;
    this.txBudget = opts.outputBudget;
    this.log = componentLogger('transport', opts.logger);
    this.decoder = new FrameDecoder(this.onDecodedFrame, {
      maxMessageSize: opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      peer,
      ...(opts.allocateLargeBodyAt === undefined ? {} : { allocateLargeBodyAt: opts.allocateLargeBodyAt }),
      ...(opts.receiveBudget === undefined ? {} : { reserve: this.reserveReceive }),
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody has to await ready: its failure is also reported through onClose.
    this.ready.catch(noop);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /**
   * Starts connecting and returns at once in 'connecting'; frames sent meanwhile wait in the queue. A bad
   * address (InvalidAddrError), a scheme with no backend in `opts.backends` (NotImplementedError saying what to
   * pass) or a backend unusable here (its own error, e.g. IBDeviceNotInitializedError) throws here; connect
   * failures arrive through onClose (ConnectFailedError or TimeoutError) and the `ready` rejection.
   */
  static connect(addr: Address | string, handler: TransportHandler, opts: TransportConnectOptions = {}): Transport {
    const address = toAddress(addr);
    const backend = findBackend(opts.backends ?? DEFAULT_BACKENDS, address.scheme);
    const a = backend.available();
    if (!a.ok) throw a.error ?? new NotImplementedError(`${address.scheme}:// cannot be used here: ${a.reason}`, { peer: formatAddress(address) });
    const t = new Transport(address, formatAddress(address), false, backend.capabilities ?? STREAM_CAPABILITIES, handler, opts);
    t.startConnect(backend, opts);
    return t;
  }

  /** Wraps an accepted socket; the transport is 'ready' at once. */
  static adopt(sock: BackendSocket, handler: TransportHandler, opts: TransportOptions = {}): Transport {
    const t = new Transport(sock.remote, sock.peer, true, sock.capabilities ?? STREAM_CAPABILITIES, handler, opts);
    t.attach(sock);
    t.readySettled = true;
    t.resolveReady();
    t.logOpened();
    return t;
  }

  get state(): TransportState {
    return this._state;
  }

  /**
   * A call on this connection got no answer in time. Backends whose connections are not to be trusted after that
   * (capabilities.closeOnCallTimeout: rdma, as 3FS) close it with `reason`, so the next call reconnects; stream
   * connections stay. Returns whether it closed the connection.
   */
  callTimedOut(reason: FfnetError): boolean {
    if (!this.capabilities.closeOnCallTimeout || this._state === 'closed') return false;
    this.finish(reason);
    return true;
  }

  /**
   * The peer process's credentials on a unix:// connection (SO_PEERCRED), else undefined, as when they cannot be
   * read: code that grants trust by them must treat undefined as an unknown peer.
   */
  peerCredentials(): PeerCredentials | undefined {
    return this.sock?.peerCredentials?.();
  }

  /** tls (and rdma over tls): the certificate the peer presented and the handshake verified, else undefined. */
  peerCertificate(): PeerCertificate | undefined {
    return this.sock?.peerCertificate?.();
  }

  /**
   * Who the connection was authenticated as: set by the backend's own handshake (rdma) or by the server's
   * authenticator after the first call. Undefined until then, and on connections nobody authenticated.
   */
  get principal(): Principal | undefined {
    return this._principal ?? this.sock?.principal?.();
  }

  set principal(p: Principal | undefined) {
    this._principal = p;
  }

  /** Date.now() of the last read or write: what TransportPool.check() measures idleness by. */
  get lastActiveAt(): number {
    return this._lastActiveAt;
  }

  /**
   * Bumped before each read's frames (and frames held by pause()) are delivered: frames delivered under the same
   * count arrived together, so a handler can read the clock once per read instead of once per frame.
   */
  get readCount(): number {
    return this.reads;
  }

  /** Bytes accepted by send() and not yet confirmed as handed to the OS. */
  get queuedBytes(): number {
    return this.pendingBytes + this.inflightBytes;
  }

  /** Bytes held for frames received but not yet delivered (see FrameDecoder.heldBytes). */
  get receivedHeldBytes(): number {
    return this.decoder.heldBytes;
  }

  /** Bytes taken from the receive budget now. */
  get receiveBudgetBytes(): number {
    return this.rxCharged;
  }

  /** Reading is stopped: by pause(), or while waiting for the receive budget. */
  get readingPaused(): boolean {
    return this.paused || this.budgetWait;
  }

  /**
   * Queues a whole frame (header and body) for the next batched write: one buffer, or its parts in order
   * (encodeMessageParts sends large payloads that way, without copying them). The buffers must not change
   * afterwards. Returns false when the queue is above the high-water mark (the frame is still queued):
   * the caller should wait for onDrain. `alone`: the caller knows no other frame will join this one in the
   * current turn (a client's only call in flight), so the queue is written now instead of at the end of the
   * turn; it goes out earlier and in the same order, and the tick is not scheduled at all.
   *
   * A frame from serde's encodeMessageUnsealed() may be sent before its checksum is written: every write first
   * seals what the encoder left unsealed, all frames in one native call, and so does a refused send and a close
   * that reports frames unsent. The bytes of any other frame are never touched.
   */
  send(frame: Uint8Array | readonly Uint8Array[], tag?: unknown, alone = false): boolean {
    try {
      return this.enqueue(frame, tag, alone);
    } catch (e) {
      // A refused frame goes back to its caller, who may send it elsewhere: whole, if the encoder left it unsealed.
      sealPendingFrames();
      throw e;
    }
  }

  private enqueue(frame: Uint8Array | readonly Uint8Array[], tag: unknown, alone: boolean): boolean {
    const state = this._state;
    if (state === 'closing' || state === 'closed') throw new SocketClosedError(`send on a ${state} transport`, { peer: this.peer });
    let size = 0;
    // length, not byteLength: the same for Uint8Arrays, and inlined where byteLength is a call.
    if (frame instanceof Uint8Array) size = frame.length;
    else for (const part of frame) size += part.length;
    const queued = this.pendingBytes + this.inflightBytes;
    const after = queued + size;
    if (queued > 0 && after > this.maxQueuedBytes) {
      throw new SendFailedError(`send queue full: ${queued} bytes queued, a ${size}-byte frame would pass the ${this.maxQueuedBytes}-byte limit`, {
        peer: this.peer,
      });
    }
    const tx = this.txBudget;
    if (tx !== undefined && !tx.tryAcquire(size)) {
      if (queued > 0) {
        throw new SendFailedError(
          `${tx.name} full: ${tx.used} of ${tx.limit} bytes queued across connections, ${queued} here; a ${size}-byte frame does not fit`,
          { peer: this.peer },
        );
      }
      // An empty queue may always take one frame, so no connection is starved by the others.
      tx.force(size);
    }
    if (frame instanceof Uint8Array) this.frames.push(frame);
    else for (const part of frame) this.frames.push(part);
    if (tag !== undefined) {
      if (this.tags === NO_TAGS) this.tags = [];
      this.tags.push(tag);
    }
    this.pendingBytes += size;
    if (state === 'ready' && !this.backendBlocked) {
      if (alone || this.pendingBytes >= this.batchBytes) this.flush();
      else if (!this.flushScheduled && !this.reading) {
        this.flushScheduled = true;
        process.nextTick(this.flushTick);
      }
    }
    if (after > this.highWaterMark) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Closes at once; queued frames fail with `reason`, their tags reported by onClose. Idempotent. */
  invalidate(reason: FfnetError): void {
    this.finish(reason);
  }

  /**
   * Graceful close: no more sends, flush the queue, end the stream, wait for the socket to close. Gives up
   * and destroys after closeTimeoutMs or when `signal` aborts (the promise still resolves; frames that were
   * never written are reported through onClose). Idempotent.
   */
  close(opts: { signal?: AbortSignal } = {}): Promise<void> {
    const done = this.closed.then(noop);
    if (this._state === 'closed') return done;
    if (this._state !== 'closing') {
      this._state = 'closing';
      this.closeTimer = setTimeout(this.forceClose, this.closeTimeoutMs);
      if (this.sock) {
        this.flush();
        this.maybeEnd();
      }
    }
    const signal = opts.signal;
    if (signal) {
      if (signal.aborted) this.forceClose();
      else this.offCloseSignal ??= onAbort(signal, this.forceClose);
    }
    return done;
  }

  /**
   * Stop reading (the peer is then held back by TCP flow control or credits) and delivering: frames already
   * decoded from the last read but not yet delivered are kept, in order, for resume().
   */
  pause(): void {
    this.paused = true;
    this.decoder.hold();
    this.sock?.pause();
  }

  /** Delivers the frames pause() held back, then reads again (unless waiting for the receive budget). */
  resume(): void {
    this.paused = false;
    if (this._state === 'closed') return;
    const nested = this.reading;
    this.reading = true;
    this.reads++;
    try {
      this.decoder.resume();
    } catch (e) {
      this.reading = nested;
      this.finish(FfnetError.is(e) ? e : errorFromCode(StatusCode.Unknown, `frame decoding failed: ${String(e)}`, { peer: this.peer, cause: e }));
      return;
    }
    this.reading = nested;
    if (!nested) {
      if (this.frames.length > 0 && (this._state === 'ready' || this._state === 'closing')) this.flush();
      this.afterRead();
    }
    if (!this.paused && !this.budgetWait) this.sock?.resume();
  }

  /**
   * Closes the connection when the frame being received is overdue: not complete `timeoutMs` after its first
   * byte, plus one second per `minBytesPerSec` bytes that have arrived of it. The extension is earned by bytes
   * received, not by the size the header claims: a header claiming 512 MiB buys no time by itself. A connection we stopped reading with pause()
   * (replies piling up) is left alone: the wait is ours. Returns whether it closed the connection.
   */
  checkFrame(now: number, timeoutMs: number, minBytesPerSec: number): boolean {
    const start = this.frameStart;
    if (start === 0 || timeoutMs <= 0 || this.paused || this._state === 'closed') return false;
    const d = this.decoder;
    const size = d.partialFrameSize;
    const limit = timeoutMs + (minBytesPerSec > 0 ? Math.ceil((d.bufferedBytes * 1000) / minBytesPerSec) : 0);
    const age = now - start;
    if (age < limit) return false;
    const have = d.heldBytes;
    const frame = size === 0 ? 'a frame (header incomplete)' : `a ${size}-byte frame`;
    const rx = this.rxBudget;
    const err =
      this.budgetWait && rx !== undefined
        ? new ResourceExhaustedError(
            `${rx.name} full: ${frame} waited ${age} ms (limit ${limit} ms) with ${have} bytes received; ${rx.used} of ${rx.limit} bytes in use`,
            { peer: this.peer },
          )
        : new TimeoutError(`${frame} not complete after ${age} ms (limit ${limit} ms): ${have} bytes received`, { peer: this.peer });
    this.logDropped(err);
    this.finish(err);
    return true;
  }

  private startConnect(backend: Backend, opts: TransportConnectOptions): void {
    const ac = new AbortController();
    this.connectAbort = ac;
    const user = opts.signal;
    const offUser = onAbort(user, (reason) => ac.abort(reason));
    backend
      .connect(this.address, {
        signal: ac.signal,
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        ownerUid: opts.unixOwnerUid,
        ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
      })
      .then(
        (sock) => {
          offUser();
          this.connectAbort = undefined;
          if (this._state === 'closed') {
            sock.destroy();
            return;
          }
          this.attach(sock);
          if (this._state === 'connecting') this._state = 'ready';
          this.readySettled = true;
          this.resolveReady();
          this.logOpened();
          if (this._state === 'closing') {
            this.flush();
            this.maybeEnd();
          } else if (this.frames.length > 0 && !this.flushScheduled) {
            this.flushScheduled = true;
            process.nextTick(this.flushTick);
          }
        },
        (err: unknown) => {
          offUser();
          this.connectAbort = undefined;
          this.finish(FfnetError.is(err) ? err : new ConnectFailedError(`connect failed: ${String(err)}`, { peer: this.peer, cause: err }));
        },
      );
  }

  private attach(sock: BackendSocket): void {
    this.sock = sock;
    if (this.paused || this.budgetWait) sock.pause();
    sock.setHandlers({
      data: this.onData,
      readInto: this.readInto,
      copyIn: this.copyIn,
      drain: this.onBackendDrain,
      written: this.onWritten,
      close: this.onSocketClose,
    });
  }

  private readonly flushTick = (): void => {
    this.flushScheduled = false;
    if (this._state === 'ready' || this._state === 'closing') this.flush();
  };

  /** Hands every queued frame to the backend in one write; `stamped`: lastActiveAt was just set by the read. */
  private flush(stamped = false): void {
    const sock = this.sock;
    if (!sock || this.backendBlocked || this.frames.length === 0) return;
    const frames = this.frames;
    const bytes = this.pendingBytes;
    this.batches.push({ tags: this.tags, bytes });
    this.inflightBytes += bytes;
    this.frames = [];
    this.tags = NO_TAGS;
    this.pendingBytes = 0;
    if (!stamped) this._lastActiveAt = Date.now();
    // Frames serde's encodeMessageUnsealed() left for the write that carries them: all in one call (a no-op when none).
    sealPendingFrames();
    if (!sock.write(frames.length > 1 ? coalesce(frames) : frames)) this.backendBlocked = true;
  }

  private readonly onBackendDrain = (): void => {
    this.backendBlocked = false;
    if (this._state === 'ready' || this._state === 'closing') this.flush();
  };

  private readonly onWritten = (): void => {
    const b = this.batches.shift();
    if (!b) return;
    this.inflightBytes -= b.bytes;
    this.txBudget?.release(b.bytes);
    if (this._state === 'closing') {
      this.maybeEnd();
    } else if (this.needDrain && this.pendingBytes + this.inflightBytes <= this.highWaterMark / 2 && this._state === 'ready') {
      this.needDrain = false;
      this.handler.onDrain?.(this);
    }
  };

  private maybeEnd(): void {
    if (this.ending || !this.sock || this.frames.length > 0 || this.batches.length > 0) return;
    this.ending = true;
    this.sock.end();
  }

  private readonly readInto = (pending?: number): Buffer | undefined => (this._state === 'closed' ? undefined : this.decoder.readTarget(pending));

  private readonly onData = (chunk: Buffer): void => {
    if (this._state === 'closed') return;
    this.startRead();
    try {
      this.decoder.push(chunk);
    } catch (e) {
      this.decodeFailed(e);
      return;
    }
    this.decoded();
  };

  /** BackendHandlers.copyIn: the decoder copies and checksums in one pass, straight into the body it offers. */
  private readonly copyIn = (src: Uint8Array, start: number, end: number, copied: (n: number) => void): number => {
    if (this._state === 'closed') return 0;
    // Before the copy, as for data(): a frame it completes is delivered inside it, and readers of readCount
    // (the Processor's clock per read) must see this read, not the one before. A copy that takes nothing
    // just bumps the count once more.
    this.startRead();
    let n: number;
    try {
      n = this.decoder.copyIn(src, start, end, copied);
    } catch (e) {
      this.decodeFailed(e);
      return 0;
    }
    if (n === 0) {
      this.reading = false;
      return 0;
    }
    this.decoded();
    return n;
  };

  /** A read begins: the clock reading that stands for it, and a new readCount. */
  private startRead(): void {
    this._lastActiveAt = Date.now();
    this.reading = true;
    this.reads++;
  }

  private decodeFailed(e: unknown): void {
    // Bad magic, CRC mismatch or oversize: only this connection is affected.
    this.reading = false;
    const err = FfnetError.is(e) ? e : errorFromCode(StatusCode.Unknown, `frame decoding failed: ${String(e)}`, { peer: this.peer, cause: e });
    this.logDropped(err);
    this.finish(err);
  }

  private decoded(): void {
    this.reading = false;
    // Replies made while the frames were handled (synchronous handlers) leave now, in one write, rather
    // than after the read callback has unwound and the tick queue has run. The read's own clock reading stands
    // for the write's: one Date.now() per round trip fewer on the one-in-flight path.
    if (this.frames.length > 0 && (this._state === 'ready' || this._state === 'closing')) this.flush(true);
    this.afterRead();
  }

  /** Once per read: when the frame in progress started, and what it holds of the receive budget. */
  private afterRead(): void {
    if (this._state === 'closed') return;
    const d = this.decoder;
    if (d.heldBytes === 0) {
      this.frameStart = 0;
    } else {
      const delivered = d.framesDelivered;
      if (this.frameStart === 0 || delivered !== this.framesSeen) {
        this.frameStart = this._lastActiveAt;
        this.framesSeen = delivered;
      }
    }
    if (this.rxBudget !== undefined) this.chargeReceive();
  }

  /** Brings what this connection holds of the receive budget in line with what its decoder holds. */
  private chargeReceive(): void {
    const budget = this.rxBudget!;
    const d = this.decoder;
    const held = d.heldBytes + d.pendingAllocation;
    const want = held < RECEIVE_ALLOWANCE ? 0 : held;
    const have = this.rxCharged;
    if (want <= have) {
      if (want < have) {
        this.rxCharged = want;
        budget.release(have - want);
      }
    } else if (budget.tryAcquire(want - have)) {
      this.rxCharged = want;
    } else {
      if (want > budget.limit) {
        const err = this.tooLarge(want);
        this.logDropped(err);
        this.finish(err);
        return;
      }
      if (!this.budgetWait) {
        this.budgetWait = true;
        budget.wait(this.budgetWaiter);
        this.sock?.pause();
      }
      return;
    }
    if (this.budgetWait) {
      this.budgetWait = false;
      budget.cancel(this.budgetWaiter);
      if (!this.paused) this.sock?.resume();
    }
  }

  private tooLarge(bytes: number): ResourceExhaustedError {
    const b = this.rxBudget!;
    return new ResourceExhaustedError(`a frame needing ${bytes} bytes cannot fit the ${b.limit}-byte ${b.name}`, { peer: this.peer });
  }

  private readonly budgetWaiter: BudgetWaiter = {
    onBudget: (): boolean => {
      if (this._state === 'closed') return true;
      this.chargeReceive();
      return !this.budgetWait;
    },
  };

  /** FrameDecoderOptions.reserve: a large body is allocated only once the budget covers it. */
  private readonly reserveReceive = (bytes: number): boolean => {
    const budget = this.rxBudget!;
    const want = this.decoder.heldBytes + bytes;
    if (want > budget.limit) throw this.tooLarge(want);
    if (want <= this.rxCharged) return true;
    if (!budget.tryAcquire(want - this.rxCharged)) return false;
    this.rxCharged = want;
    return true;
  };

  private readonly onDecodedFrame = (body: Buffer, compressed: boolean): void => {
    if (this._state === 'closed') return;
    try {
      this.handler.onFrame(this, body, compressed);
    } catch (e) {
      // Surfaces as this connection's close error rather than a process crash; the decoder stops here.
      throw errorFromCode(StatusCode.FoundBug, `onFrame handler threw: ${e instanceof Error ? e.message : String(e)}`, { peer: this.peer, cause: e });
    }
  };

  private readonly onSocketClose = (err?: FfnetError): void => {
    if (this._state === 'closed') return;
    let error = err;
    if (!error) {
      const partial = this.decoder.bufferedBytes;
      if (partial > 0) {
        error = new SocketClosedError(`connection closed by peer mid-frame (${partial} bytes of an incomplete frame received)`, { peer: this.peer });
      } else if (!this.ending) {
        error = new SocketClosedError('connection closed by peer', { peer: this.peer });
      }
    }
    this.finish(error);
  };

  private readonly forceClose = (): void => {
    if (this._state === 'closed') return;
    const left = this.pendingBytes + this.inflightBytes;
    this.finish(left > 0 ? new SocketClosedError(`graceful close gave up with ${left} bytes not yet written`, { peer: this.peer }) : undefined);
  };

  private logOpened(): void {
    if (this.log.isLevelEnabled('debug'))
      this.log.debug({ peer: this.peer, id: this.id, incoming: this.incoming, scheme: this.address.scheme }, 'connection opened');
  }

  /** A frame this connection will never deliver: the peer, why, and that the connection goes with it. */
  private logDropped(err: FfnetError): void {
    if (this.log.isLevelEnabled('warn'))
      this.log.warn({ peer: this.peer, id: this.id, code: err.code, reason: err.reason, err }, 'frame dropped, closing connection');
  }

  /** The one way into 'closed': release the socket, then report exactly once. */
  private finish(error: FfnetError | undefined): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.offCloseSignal?.();
    this.connectAbort?.abort(error);
    this.sock?.destroy();

    // Whoever gets an unsent frame back (a request retried on another connection) gets it sealed.
    sealPendingFrames();
    const unsent: unknown[] = [];
    for (const b of this.batches) for (const tag of b.tags) unsent.push(tag);
    for (const tag of this.tags) unsent.push(tag);
    this.batches.length = 0;
    this.frames = [];
    this.tags = NO_TAGS;
    this.txBudget?.release(this.pendingBytes + this.inflightBytes);
    this.pendingBytes = 0;
    this.inflightBytes = 0;
    if (this.rxBudget !== undefined) {
      this.rxBudget.cancel(this.budgetWaiter);
      this.rxBudget.release(this.rxCharged);
      this.rxCharged = 0;
    }

    const opened = this.readySettled;
    if (!this.readySettled) this.rejectReady(error ?? new SocketClosedError('closed before the connection was established', { peer: this.peer }));
    if (this.log.isLevelEnabled('debug')) {
      this.log.debug(
        { peer: this.peer, id: this.id, incoming: this.incoming, ...(error === undefined ? {} : { reason: error.reason, code: error.code, err: error }) },
        opened ? 'connection closed' : 'connect failed',
      );
    }
    this.resolveClosed(error);
    this.handler.onClose(this, error, unsent);
  }
}
