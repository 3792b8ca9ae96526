import {
  ConnectFailedError,
  DEFAULT_MAX_MESSAGE_SIZE,
  errorFromCode,
  FfnetError,
  FrameDecoder,
  SendFailedError,
  SocketClosedError,
  StatusCode,
} from '@ffnet/serde';
import { type Address, formatAddress, toAddress } from './address.js';
import { type Backend, type BackendSocket, getBackend } from './backend.js';
import { ibSocketOf } from './verbs-backend.js';

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
  /** send() returns false while more than this many bytes are queued (default 4 MiB). */
  highWaterMark?: number;
  /** Hard cap: a frame that would take the queue past it is refused, unless the queue is empty (default 1 GiB). */
  maxQueuedBytes?: number;
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
}

export interface TransportConnectOptions extends TransportOptions {
  /** Aborts the connect phase only. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

const DEFAULT_HIGH_WATER_MARK = 4 * 1024 * 1024;
const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
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
  let end = first.byteOffset + first.byteLength;
  let merged = false;
  for (let i = 1; i < frames.length; i++) {
    const f = frames[i]!;
    if (f.buffer === first.buffer && f.byteOffset === end && f.byteLength > 0) {
      end += f.byteLength;
      merged = true;
      continue;
    }
    out ??= [];
    out.push(merged ? new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset) : first);
    first = f;
    end = f.byteOffset + f.byteLength;
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
  readonly isRDMA: boolean;
  readonly ready: Promise<void>;
  readonly closed: Promise<FfnetError | undefined>;

  private _state: TransportState;
  private _lastActiveAt: number;
  private readySettled = false;
  private sock: BackendSocket | undefined;
  private readonly handler: TransportHandler;
  private readonly decoder: FrameDecoder;
  private readonly highWaterMark: number;
  private readonly maxQueuedBytes: number;
  private readonly closeTimeoutMs: number;
  private readonly batchBytes: number;

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
  /** end() was called on the socket: a clean close from here on is ours, not the peer's. */
  private ending = false;
  private connectAbort: AbortController | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private closeSignal: AbortSignal | undefined;
  private resolveReady: () => void = noop;
  private rejectReady: (e: FfnetError) => void = noop;
  private resolveClosed: (e: FfnetError | undefined) => void = noop;

  private constructor(address: Address, peer: string, incoming: boolean, handler: TransportHandler, opts: TransportOptions) {
    this.id = nextId++;
    this.address = address;
    this.peer = peer;
    this.incoming = incoming;
    this.isRDMA = address.scheme === 'rdma';
    this.handler = handler;
    this._state = incoming ? 'ready' : 'connecting';
    this._lastActiveAt = Date.now();
    this.highWaterMark = opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.batchBytes = opts.batchBytes ?? DEFAULT_BATCH_BYTES;
    this.decoder = new FrameDecoder(this.onDecodedFrame, {
      maxMessageSize: opts.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      peer,
      ...(opts.allocateLargeBodyAt === undefined ? {} : { allocateLargeBodyAt: opts.allocateLargeBodyAt }),
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
   * address (InvalidAddrError) or a scheme with no backend (NotImplementedError) throws here; connect
   * failures arrive through onClose (ConnectFailedError or TimeoutError) and the `ready` rejection.
   */
  static connect(addr: Address | string, handler: TransportHandler, opts: TransportConnectOptions = {}): Transport {
    const address = toAddress(addr);
    const backend = getBackend(address.scheme);
    const t = new Transport(address, formatAddress(address), false, handler, opts);
    t.startConnect(backend, opts);
    return t;
  }

  /** Wraps an accepted socket; the transport is 'ready' at once. */
  static adopt(sock: BackendSocket, handler: TransportHandler, opts: TransportOptions = {}): Transport {
    const t = new Transport(sock.remote, sock.peer, true, handler, opts);
    t.attach(sock);
    t.readySettled = true;
    t.resolveReady();
    return t;
  }

  get state(): TransportState {
    return this._state;
  }

  /** The IBSocket of an rdma:// transport while it is open (for one-sided RDMA on this connection), else undefined. */
  get ibSocket(): ReturnType<typeof ibSocketOf> {
    return this.sock === undefined ? undefined : ibSocketOf(this.sock);
  }

  /** Date.now() of the last read or write: what TransportPool.check() measures idleness by. */
  get lastActiveAt(): number {
    return this._lastActiveAt;
  }

  /** Bytes accepted by send() and not yet confirmed as handed to the OS. */
  get queuedBytes(): number {
    return this.pendingBytes + this.inflightBytes;
  }

  /**
   * Queues a whole frame (header and body) for the next batched write: one buffer, or its parts in order
   * (encodeMessageParts sends large payloads that way, without copying them). The buffers must not change
   * afterwards. Returns false when the queue is above the high-water mark (the frame is still queued):
   * the caller should wait for onDrain.
   */
  send(frame: Uint8Array | readonly Uint8Array[], tag?: unknown): boolean {
    const state = this._state;
    if (state === 'closing' || state === 'closed') throw new SocketClosedError(`send on a ${state} transport`, { peer: this.peer });
    let size = 0;
    if (frame instanceof Uint8Array) size = frame.byteLength;
    else for (const part of frame) size += part.byteLength;
    const queued = this.pendingBytes + this.inflightBytes;
    const after = queued + size;
    if (queued > 0 && after > this.maxQueuedBytes) {
      throw new SendFailedError(`send queue full: ${queued} bytes queued, a ${size}-byte frame would pass the ${this.maxQueuedBytes}-byte limit`, {
        peer: this.peer,
      });
    }
    if (frame instanceof Uint8Array) this.frames.push(frame);
    else for (const part of frame) this.frames.push(part);
    if (tag !== undefined) {
      if (this.tags === NO_TAGS) this.tags = [];
      this.tags.push(tag);
    }
    this.pendingBytes += size;
    if (state === 'ready' && !this.backendBlocked) {
      if (this.pendingBytes >= this.batchBytes) this.flush();
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
      else if (!this.closeSignal) {
        this.closeSignal = signal;
        signal.addEventListener('abort', this.forceClose, { once: true });
      }
    }
    return done;
  }

  /** Stop reading (the peer is then held back by TCP flow control or credits). */
  pause(): void {
    this.paused = true;
    this.sock?.pause();
  }

  resume(): void {
    this.paused = false;
    this.sock?.resume();
  }

  private startConnect(backend: Backend, opts: TransportConnectOptions): void {
    const ac = new AbortController();
    this.connectAbort = ac;
    const user = opts.signal;
    const onUserAbort = (): void => ac.abort(user?.reason);
    if (user) {
      if (user.aborted) ac.abort(user.reason);
      else user.addEventListener('abort', onUserAbort, { once: true });
    }
    backend.connect(this.address, { signal: ac.signal, timeoutMs: opts.timeoutMs, ownerUid: opts.unixOwnerUid }).then(
      (sock) => {
        user?.removeEventListener('abort', onUserAbort);
        this.connectAbort = undefined;
        if (this._state === 'closed') {
          sock.destroy();
          return;
        }
        this.attach(sock);
        if (this._state === 'connecting') this._state = 'ready';
        this.readySettled = true;
        this.resolveReady();
        if (this._state === 'closing') {
          this.flush();
          this.maybeEnd();
        } else if (this.frames.length > 0 && !this.flushScheduled) {
          this.flushScheduled = true;
          process.nextTick(this.flushTick);
        }
      },
      (err: unknown) => {
        user?.removeEventListener('abort', onUserAbort);
        this.connectAbort = undefined;
        this.finish(FfnetError.is(err) ? err : new ConnectFailedError(`connect failed: ${String(err)}`, { peer: this.peer, cause: err }));
      },
    );
  }

  private attach(sock: BackendSocket): void {
    this.sock = sock;
    if (this.paused) sock.pause();
    sock.setHandlers({ data: this.onData, readInto: this.readInto, drain: this.onBackendDrain, written: this.onWritten, close: this.onSocketClose });
  }

  private readonly flushTick = (): void => {
    this.flushScheduled = false;
    if (this._state === 'ready' || this._state === 'closing') this.flush();
  };

  /** Hands every queued frame to the backend in one write. */
  private flush(): void {
    const sock = this.sock;
    if (!sock || this.backendBlocked || this.frames.length === 0) return;
    const frames = this.frames;
    const bytes = this.pendingBytes;
    this.batches.push({ tags: this.tags, bytes });
    this.inflightBytes += bytes;
    this.frames = [];
    this.tags = NO_TAGS;
    this.pendingBytes = 0;
    this._lastActiveAt = Date.now();
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

  private readonly readInto = (): Buffer | undefined => (this._state === 'closed' ? undefined : this.decoder.readTarget());

  private readonly onData = (chunk: Buffer): void => {
    if (this._state === 'closed') return;
    this._lastActiveAt = Date.now();
    this.reading = true;
    try {
      this.decoder.push(chunk);
    } catch (e) {
      // Bad magic, CRC mismatch or oversize: only this connection is affected.
      this.reading = false;
      this.finish(FfnetError.is(e) ? e : errorFromCode(StatusCode.Unknown, `frame decoding failed: ${String(e)}`, { peer: this.peer, cause: e }));
      return;
    }
    this.reading = false;
    // Replies made while the frames were handled (synchronous handlers) leave now, in one write, rather
    // than after the read callback has unwound and the tick queue has run.
    if (this.frames.length > 0 && (this._state === 'ready' || this._state === 'closing')) this.flush();
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

  /** The one way into 'closed': release the socket, then report exactly once. */
  private finish(error: FfnetError | undefined): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.closeSignal?.removeEventListener('abort', this.forceClose);
    this.connectAbort?.abort(error);
    this.sock?.destroy();

    const unsent: unknown[] = [];
    for (const b of this.batches) for (const tag of b.tags) unsent.push(tag);
    for (const tag of this.tags) unsent.push(tag);
    this.batches.length = 0;
    this.frames = [];
    this.tags = NO_TAGS;
    this.pendingBytes = 0;
    this.inflightBytes = 0;

    if (!this.readySettled) this.rejectReady(error ?? new SocketClosedError('closed before the connection was established', { peer: this.peer }));
    this.resolveClosed(error);
    this.handler.onClose(this, error, unsent);
  }
}
