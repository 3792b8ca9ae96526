/**
 * IBSocketCore: the IBSocket protocol (3FS §4.4–4.7) as a state machine with no verbs I/O, in the sans-I/O style.
 *
 * Events go in as method calls: write(), completed() / completionFailed() for work completions, timerFired(),
 * end() / destroy(), pause() / resume(). Effects come out through an IBCoreOutput the owner supplies: work
 * requests to add to the send or receive chain and when to post them, timers to arm, data to deliver, state
 * changes. The core owns credits, ACK batching, the signal-every-N rule, the RDMA semaphore, close and drain; it
 * touches no device, reads no clock and sets no timer of its own, so the host tests drive it deterministically.
 *
 * The only memory it touches is the socket's buffer block (`attach(mem)`): send buffers first, then one receive
 * buffer per receive work request, each `bufSize` bytes. Data is copied in and out there, as the verbs shell's
 * registered memory would be.
 *
 * Outputs are method calls on one long-lived object, not returned descriptors, so the per-message path allocates
 * nothing beyond the delivered chunk.
 */
import { FfnetError, InvalidArgError, RDMAError, SocketClosedError, SocketError, TimeoutError } from '@ffnet/serde';
import type { IBSocketConfig, IBSocketSizes } from './config.js';
import { encodeImm, ImmType, immType, immValue, WrType, wrId, wrIdType, wrIdValue } from './wire.js';

export const IBSocketState = {
  INIT: 'INIT',
  /** Client: QP created and in INIT, handshake under way (RTS once the server answered, READY when the probe completes). */
  CONNECTING: 'CONNECTING',
  /** Server: QP in RTR, waiting for the client's probe. */
  ACCEPTED: 'ACCEPTED',
  READY: 'READY',
  CLOSE: 'CLOSE',
  ERROR: 'ERROR',
} as const;
export type IBSocketState = (typeof IBSocketState)[keyof typeof IBSocketState];

/** The timers the core asks its owner for. */
export const CoreTimer = { ACCEPT: 0, CLOSE: 1 } as const;
export type CoreTimer = (typeof CoreTimer)[keyof typeof CoreTimer];

/** One post of one-sided work requests: `count` of them, the last signaled with RDMA_LAST(`id`). */
export interface RdmaWork {
  readonly id: number;
  readonly count: number;
}

/** A failed work completion; the verbs shell's WcError carries the status name. */
export type CompletionError = FfnetError & { readonly statusName?: string };

/**
 * What the core asks of its owner. Chain methods (sendBuf, sendImm, writeImm, recv) only queue a work request;
 * postSends / postRecvs hand the chain to the device and may throw (the core then fails the socket).
 */
export interface IBCoreOutput<W extends RdmaWork = RdmaWork> {
  /** SEND of `len` bytes from send buffer `idx`. */
  sendBuf(id: number, idx: number, len: number, signaled: boolean): void;
  /** 0-byte SEND_WITH_IMM, signaled (ACKs and the connect probe). */
  sendImm(id: number, imm: number): void;
  /** 0-byte RDMA_WRITE_WITH_IMM, signaled and inline (CLOSE: uses one peer receive, no data). */
  writeImm(id: number, imm: number): void;
  postSends(): void;
  /** RECV into receive buffer `idx`. */
  recv(id: number, idx: number): void;
  postRecvs(): void;
  /** Posts one chain of one-sided requests; throws with `posted` = how many went out when the post fails. */
  postRdma(work: W): void;
  /** Moves the QP to RTS (the server does so when the client's probe arrives). */
  moveToRts(): void;
  setTimer(kind: CoreTimer, ms: number): void;
  clearTimer(kind: CoreTimer): void;
  ready(): void;
  /** The close reason is decided (core.result); free the resources. Called once. */
  finished(): void;
  /** Received bytes, in order, a fresh copy. */
  data(chunk: Buffer): void;
  /** `n` more write() calls are fully copied into posted send buffers. */
  written(n: number): void;
  /** Everything queued by write() has been posted. */
  drain(): void;
  /** A one-sided post completed (err null) or will never complete. Called once per submitted work. */
  rdmaSettled(work: W, err: FfnetError | null): void;
  /** The liveness probe (CHECK) completed. */
  checked(): void;
}

interface PendingWrite {
  bufs: readonly Uint8Array[];
  i: number;
  off: number;
}

const EMPTY: readonly Uint8Array[] = [];
const ACK_PROBE_IMM = encodeImm(ImmType.ACK, 0);
const CLOSE_IMM = encodeImm(ImmType.CLOSE, 0);
export const PROBE_ID = wrId(WrType.ACK, 0);
export const CLOSE_ID = wrId(WrType.CLOSE, 0);
export const CHECK_ID = wrId(WrType.CHECK, 0);
const SEND_UNSIGNALED_ID = wrId(WrType.SEND, 0);
const MAX_POST_ID = 2 ** 48 - 1;
const WR_NAMES = ['SEND', 'RECV', 'ACK', 'RDMA', 'RDMA', 'CLOSE', 'CHECK', 'memory window'];

export function asFfnet(e: unknown, wrap: (cause: unknown) => FfnetError): FfnetError {
  return FfnetError.is(e) ? e : wrap(e);
}

/** The counters of every IBSocketCore in the process, for metrics (`ibSocketTotals()`). */
const TOTALS = { sendWrs: 0, recvWrs: 0, rdmaWrs: 0, creditStalls: 0 };

/** Work requests and credit stalls of every IBSocket this process has had (see IBSocketCore.counters), a copy. */
export function ibSocketTotals(): { sendWrs: number; recvWrs: number; rdmaWrs: number; creditStalls: number } {
  return { ...TOTALS };
}

export class IBSocketCore<W extends RdmaWork = RdmaWork> {
  readonly config: IBSocketConfig;
  readonly sizes: IBSocketSizes;
  /** Names the remote end in every error. */
  peer: string;
  readonly #out: IBCoreOutput<W>;
  #mem: Buffer | null = null;
  #state: IBSocketState = IBSocketState.INIT;
  #rts = false;
  #acceptTimeoutMs = 0;

  // Lifecycle: #closing = no new writes; #finished = the close reason is decided.
  #closing = false;
  #ending = false;
  #closeSent = false;
  #finished = false;
  #result: FfnetError | undefined;
  #paused = true;

  // Send side.
  #sendIdx = 0;
  #sendLen = 0;
  #sendFree = 0;
  /** Work requests handed to the QP, and writes that found no free send buffer (see `counters`). */
  readonly #counters = { sendWrs: 0, recvWrs: 0, rdmaWrs: 0, creditStalls: 0 };
  #sendUnsignaled = 0;
  #sendSignaled = 0;
  #sendAcked = 0;
  #pend: (PendingWrite | undefined)[] = [];
  #pendHead = 0;
  readonly #cursor: PendingWrite = { bufs: EMPTY, i: 0, off: 0 };
  #needDrain = false;

  // Receive side: data buffers completed and not yet consumed, in arrival order.
  readonly #rqIdx: Int32Array;
  readonly #rqLen: Int32Array;
  #rqCount = 0;
  #reposts = 0;
  #consumed = 0;
  #ackAvail = 0;
  readonly #ackImm: number;
  #remoteClosed = false;

  // One-sided RDMA: a semaphore of maxRdmaWr work requests in flight.
  #rdmaTokens = 0;
  #rdmaQueue: W[] = [];
  readonly #rdmaInFlight = new Map<number, W>();
  #nextPostId = 1;

  constructor(config: IBSocketConfig, sizes: IBSocketSizes, out: IBCoreOutput<W>, peer: string) {
    this.config = config;
    this.sizes = sizes;
    this.#out = out;
    this.peer = peer;
    this.#rqIdx = new Int32Array(sizes.maxRecvWr);
    this.#rqLen = new Int32Array(sizes.maxRecvWr);
    this.#ackImm = encodeImm(ImmType.ACK, config.bufAckBatch);
  }

  get state(): IBSocketState {
    return this.#state;
  }
  get closing(): boolean {
    return this.#closing;
  }
  get finished(): boolean {
    return this.#finished;
  }
  /** The close reason once finished: undefined for a clean close. */
  get result(): FfnetError | undefined {
    return this.#result;
  }
  get paused(): boolean {
    return this.#paused;
  }

  /** Bytes accepted by write() but not yet copied into send buffers. */
  get pendingBytes(): number {
    let n = 0;
    for (let k = this.#pendHead; k < this.#pend.length; k++) {
      const e = this.#pend[k]!;
      for (let i = e.i; i < e.bufs.length; i++) n += e.bufs[i]!.length;
      n -= e.off;
    }
    return n;
  }

  /**
   * Totals since creation, for metrics: SEND work requests (data, ACKs, probe, CLOSE), RECV work requests,
   * one-sided work requests (each request of a chain), and credit stalls (a write found every send buffer taken
   * and waits for the peer's ACK; counted each time it finds so).
   */
  get counters(): Readonly<{ sendWrs: number; recvWrs: number; rdmaWrs: number; creditStalls: number }> {
    return this.#counters;
  }

  diagnostics(): Record<string, number | string | boolean> {
    return {
      state: this.#state,
      paused: this.#paused,
      sendFree: this.#sendFree,
      sendSignaled: this.#sendSignaled,
      sendAcked: this.#sendAcked,
      sendUnsignaled: this.#sendUnsignaled,
      pendingWrites: this.#pend.length - this.#pendHead,
      receivedUnconsumed: this.#rqCount,
      consumedUnacked: this.#consumed,
      ackAvail: this.#ackAvail,
      rdmaTokens: this.#rdmaTokens,
      rdmaInFlight: this.#rdmaInFlight.size,
      rdmaWaiting: this.#rdmaQueue.length,
    };
  }

  // ───────────────────────────── handshake ─────────────────────────────

  /**
   * The buffer block exists (QP in INIT): every receive buffer goes on the receive queue before the peer can send
   * (RTR comes later on both sides).
   */
  attach(mem: Buffer): void {
    if (mem.length < (this.config.sendBufCnt + this.sizes.maxRecvWr) * this.config.bufSize) {
      throw new InvalidArgError(`IBSocketCore buffer block of ${mem.length} bytes is smaller than ${this.sizes.bufferBytes}`);
    }
    this.#mem = mem;
    for (let i = 0; i < this.sizes.maxRecvWr; i++) this.#out.recv(wrId(WrType.RECV, i), i);
    this.#counters.recvWrs += this.sizes.maxRecvWr;
    TOTALS.recvWrs += this.sizes.maxRecvWr;
    this.#out.postRecvs();
  }

  /** Client: the QP is in INIT and the connect request is on its way. */
  connecting(): void {
    this.#state = IBSocketState.CONNECTING;
  }

  /** Server: the QP is in RTR; the client's probe must arrive within `acceptTimeoutMs`. */
  accepted(acceptTimeoutMs: number): void {
    this.#state = IBSocketState.ACCEPTED;
    this.#acceptTimeoutMs = acceptTimeoutMs;
    this.#out.setTimer(CoreTimer.ACCEPT, acceptTimeoutMs);
  }

  /** The QP is in RTS: all send buffers are free, and the ACK and RDMA budgets are full (3FS §4.3). */
  rts(): void {
    this.#rts = true;
    this.#sendFree = this.config.sendBufCnt;
    this.#rdmaTokens = this.config.maxRdmaWr;
    this.#ackAvail = this.sizes.qpAckBufs;
  }

  /** Client: posts the connect probe, ACK(0); its completion makes the socket READY. */
  probe(): void {
    this.#out.sendImm(PROBE_ID, ACK_PROBE_IMM);
    this.#counters.sendWrs++;
    TOTALS.sendWrs++;
    this.#out.postSends();
  }

  #becomeReady(): void {
    this.#state = IBSocketState.READY;
    this.#out.clearTimer(CoreTimer.ACCEPT);
    this.#out.ready();
  }

  timerFired(kind: CoreTimer): void {
    if (this.#finished) return;
    if (kind === CoreTimer.ACCEPT) {
      if (this.#state !== IBSocketState.ACCEPTED) return;
      const cause = new TimeoutError(`no connect probe within ${this.#acceptTimeoutMs} ms of accepting`, { peer: this.peer });
      this.fail(new SocketError('RDMA accept timed out', { peer: this.peer, cause }));
      return;
    }
    // The drain deadline: whatever end() could not get onto the wire by now is lost, and the caller must know.
    const unsent = this.pendingBytes + this.#sendLen;
    if (this.#ending && unsent > 0) {
      const what = `${unsent} bytes written before end() still waited for the peer's credits after ${this.config.drainTimeoutMs} ms`;
      this.#finish(new TimeoutError(`IBSocket close: ${what}; the peer stopped acknowledging`, { peer: this.peer }), IBSocketState.CLOSE);
      return;
    }
    this.#finish(undefined, IBSocketState.CLOSE);
  }

  // ───────────────────────────── stream API ─────────────────────────────

  /** Stops consuming received buffers: no ACKs go out, so the peer runs out of credits and stops. */
  pause(): void {
    this.#paused = true;
  }

  /** True when received data or a remote close is waiting, so the owner should run progress() soon. */
  resume(): boolean {
    if (!this.#paused) return false;
    this.#paused = false;
    return this.#rqCount > 0 || this.#remoteClosed;
  }

  /**
   * Copies `bufs` into send buffers and posts them, as far as credits allow; the rest is kept (by reference) and
   * sent as the peer acknowledges. False when something is left over. Throws once closing or closed.
   */
  write(bufs: readonly Uint8Array[]): boolean {
    if (this.#closing || this.#state === IBSocketState.CLOSE) throw this.stateError('write');
    if (this.#pendHead < this.#pend.length || this.#state !== IBSocketState.READY) {
      this.#pend.push({ bufs, i: 0, off: 0 });
      this.#needDrain = true;
      return false;
    }
    const c = this.#cursor;
    c.bufs = bufs;
    c.i = 0;
    c.off = 0;
    let complete: boolean;
    try {
      complete = this.#fill(c);
      if (this.#sendLen > 0) this.#queueSend();
      this.#out.postSends();
    } catch (e) {
      c.bufs = EMPTY;
      this.fail(asFfnet(e, (cause) => new SocketError('send failed', { peer: this.peer, cause })));
      return false;
    }
    if (complete) {
      c.bufs = EMPTY;
      this.#out.written(1);
      return true;
    }
    this.#pend.push({ bufs, i: c.i, off: c.off });
    c.bufs = EMPTY;
    this.#needDrain = true;
    return false;
  }

  /**
   * Graceful close: what was written is still sent, then a CLOSE immediate; finished when it completes (or at the
   * drain timer). Idempotent.
   */
  end(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (!this.#canSendClose()) {
      this.#finish(undefined, IBSocketState.CLOSE);
      return;
    }
    this.#out.setTimer(CoreTimer.CLOSE, this.config.drainTimeoutMs);
    if (this.#pendHead < this.#pend.length) this.#ending = true;
    else this.#sendClose();
  }

  /** Close now: unsent data is dropped on purpose; the peer is told with a CLOSE immediate when the QP can still send. */
  destroy(): void {
    if (this.#finished) return;
    this.#pend = [];
    this.#pendHead = 0;
    this.#ending = false;
    if (this.#closeSent || !this.#canSendClose()) {
      this.#closing = true;
      this.#finish(undefined, IBSocketState.CLOSE);
      return;
    }
    if (!this.#closing) {
      this.#closing = true;
      this.#out.setTimer(CoreTimer.CLOSE, this.config.drainTimeoutMs);
    }
    this.#sendClose();
  }

  /** A CLOSE needs a QP in RTS and a peer that has not closed (3FS: READY or CONNECTING). */
  #canSendClose(): boolean {
    return this.#rts && (this.#state === IBSocketState.READY || this.#state === IBSocketState.CONNECTING);
  }

  #sendClose(): void {
    if (this.#closeSent || this.#finished) return;
    this.#closeSent = true;
    try {
      this.#out.writeImm(CLOSE_ID, CLOSE_IMM);
      this.#counters.sendWrs++;
      TOTALS.sendWrs++;
      this.#out.postSends();
    } catch {
      // The CLOSE could not be posted (the QP is already in error): the peer learns from the QP, we finish now.
      this.#finish(undefined, IBSocketState.CLOSE);
    }
  }

  stateError(what: string): FfnetError {
    if (this.#state === IBSocketState.ERROR) {
      return new SocketError(`${what} on a failed IBSocket`, { peer: this.peer, cause: this.#result });
    }
    return new SocketClosedError(`${what} on a closed IBSocket`, { peer: this.peer });
  }

  // ───────────────────────────── send path ─────────────────────────────

  /** Copies from `e` into send buffers while any is free; true when all of `e` is copied. */
  #fill(e: PendingWrite): boolean {
    const mem = this.#mem!;
    const size = this.config.bufSize;
    const bufs = e.bufs;
    while (e.i < bufs.length) {
      const b = bufs[e.i]!;
      while (e.off < b.length) {
        if (this.#sendFree === 0) {
          this.#counters.creditStalls++;
          TOTALS.creditStalls++;
          return false;
        }
        const n = Math.min(size - this.#sendLen, b.length - e.off);
        mem.set(n === b.length ? b : b.subarray(e.off, e.off + n), this.#sendIdx * size + this.#sendLen);
        this.#sendLen += n;
        e.off += n;
        if (this.#sendLen === size) this.#queueSend();
      }
      e.i++;
      e.off = 0;
    }
    return true;
  }

  /** Adds a SEND of the current buffer to the chain; every bufSignalBatch-th is signaled and counts the ones it covers. */
  #queueSend(): void {
    let signaled = false;
    let id = SEND_UNSIGNALED_ID;
    if (++this.#sendUnsignaled >= this.config.bufSignalBatch) {
      signaled = true;
      id = wrId(WrType.SEND, this.#sendUnsignaled);
      this.#sendUnsignaled = 0;
    }
    this.#out.sendBuf(id, this.#sendIdx, this.#sendLen, signaled);
    this.#counters.sendWrs++;
    TOTALS.sendWrs++;
    this.#sendFree--;
    this.#sendLen = 0;
    if (++this.#sendIdx === this.config.sendBufCnt) this.#sendIdx = 0;
  }

  /** Sends queued writes as far as credits allow. */
  #pump(): void {
    if (this.#state !== IBSocketState.READY || this.#closeSent) return;
    let done = 0;
    while (this.#pendHead < this.#pend.length) {
      if (!this.#fill(this.#pend[this.#pendHead]!)) break;
      this.#pend[this.#pendHead++] = undefined;
      done++;
    }
    if (this.#sendLen > 0) this.#queueSend();
    this.#out.postSends();
    if (this.#pendHead === this.#pend.length) {
      this.#pend.length = 0;
      this.#pendHead = 0;
      if (this.#needDrain) {
        this.#needDrain = false;
        this.#out.drain();
      }
      if (this.#ending) this.#sendClose();
    }
    if (done > 0) this.#out.written(done);
  }

  // ───────────────────────────── completions ─────────────────────────────

  /** A successful work completion. `imm` is the immediate (host order), or -1 when there is none. */
  completed(id: number, byteLen: number, imm: number): void {
    if (this.#finished) return;
    const value = wrIdValue(id);
    switch (wrIdType(id)) {
      case WrType.RECV:
        this.#received(value, byteLen, imm);
        break;
      case WrType.SEND:
        this.#sendSignaled += value;
        break;
      case WrType.ACK:
        if (value !== 0) this.#ackAvail++;
        else if (this.#state === IBSocketState.CONNECTING) this.#becomeReady();
        break;
      case WrType.RDMA_LAST:
        this.#rdmaDone(value);
        break;
      case WrType.CLOSE:
        // Our CLOSE reached the peer: everything posted before it did too.
        this.#finish(undefined, IBSocketState.CLOSE);
        break;
      case WrType.CHECK:
        this.#out.checked();
        break;
      default:
        this.fail(new SocketError(`completion with unknown wr_id ${id}`, { peer: this.peer }));
    }
  }

  /** A work completion with an error status: fails the socket, unless it is closing anyway. */
  completionFailed(id: number, err: CompletionError): void {
    if (this.#finished) return;
    if (this.#closeSent) {
      // Closing: the peer may be gone or the QP flushed; either way there is nothing left to wait for.
      this.#finish(undefined, IBSocketState.CLOSE);
      return;
    }
    const type = wrIdType(id);
    if (type === WrType.RDMA || type === WrType.RDMA_LAST) {
      // The request settles with the completion's own error, not the socket's.
      const w = this.#rdmaInFlight.get(wrIdValue(id));
      if (w) {
        this.#rdmaInFlight.delete(w.id);
        this.#out.rdmaSettled(w, err);
      }
    }
    const what = WR_NAMES[type] ?? 'unknown';
    this.fail(new SocketError(`${what} work request failed: ${err.statusName ?? err.message}`, { peer: this.peer, cause: err }));
  }

  #received(idx: number, byteLen: number, imm: number): void {
    if (this.#state === IBSocketState.ACCEPTED) {
      // The first message (the client's probe) says the client is in RTS: the server can send now.
      this.#out.moveToRts();
      this.rts();
      this.#becomeReady();
    }
    if (imm < 0) {
      this.#rqIdx[this.#rqCount] = idx;
      this.#rqLen[this.#rqCount++] = byteLen;
      return;
    }
    if (byteLen !== 0) {
      this.fail(new SocketError(`immediate 0x${imm.toString(16)} arrived with ${byteLen} bytes of data`, { peer: this.peer }));
      return;
    }
    this.#repost(idx);
    const t = immType(imm);
    if (t === ImmType.ACK) {
      this.#sendAcked += immValue(imm);
    } else if (t === ImmType.CLOSE) {
      this.#remoteClosed = true;
      if (this.#state === IBSocketState.READY || this.#state === IBSocketState.CONNECTING) this.#state = IBSocketState.CLOSE;
    } else {
      this.fail(new SocketError(`unknown immediate type ${t} (0x${imm.toString(16)})`, { peer: this.peer }));
    }
  }

  #repost(idx: number): void {
    this.#out.recv(wrId(WrType.RECV, idx), idx);
    this.#counters.recvWrs++;
    TOTALS.recvWrs++;
    this.#reposts++;
  }

  /** After a round of completions: free send buffers, consume received data, re-post, ACK, send more, deliver. */
  progress(): void {
    if (this.#finished) return;
    const freed = Math.min(this.#sendSignaled, this.#sendAcked);
    if (freed > 0) {
      this.#sendFree += freed;
      this.#sendSignaled -= freed;
      this.#sendAcked -= freed;
    }
    const chunk = !this.#paused && this.#rqCount > 0 ? this.#consume() : null;
    if (this.#reposts > 0) {
      // Receives go back before the ACK that lets the peer use them.
      this.#out.postRecvs();
      this.#reposts = 0;
    }
    this.#sendAcks();
    this.#pump();
    if (chunk !== null && chunk.length > 0) this.#out.data(chunk);
    if (this.#finished) return;
    if (this.#remoteClosed && this.#rqCount === 0) {
      this.#finish(this.#closing ? undefined : new SocketClosedError('connection closed by peer', { peer: this.peer }), IBSocketState.CLOSE);
    }
  }

  /** Copies every queued data buffer into one new Buffer and queues their receives for re-posting. */
  #consume(): Buffer {
    const mem = this.#mem!;
    const n = this.#rqCount;
    const size = this.config.bufSize;
    const base = this.config.sendBufCnt;
    let total = 0;
    for (let k = 0; k < n; k++) total += this.#rqLen[k]!;
    const chunk = Buffer.allocUnsafe(total);
    let off = 0;
    for (let k = 0; k < n; k++) {
      const idx = this.#rqIdx[k]!;
      const len = this.#rqLen[k]!;
      const start = (base + idx) * size;
      if (len > 0) off += mem.copy(chunk, off, start, start + len);
      this.#repost(idx);
    }
    this.#rqCount = 0;
    this.#consumed += n;
    return chunk;
  }

  #sendAcks(): void {
    if (!this.#rts || this.#closeSent) return;
    const batch = this.config.bufAckBatch;
    if (this.#consumed < batch || this.#ackAvail === 0) return;
    const id = wrId(WrType.ACK, batch);
    while (this.#consumed >= batch && this.#ackAvail > 0) {
      this.#out.sendImm(id, this.#ackImm);
      this.#counters.sendWrs++;
      TOTALS.sendWrs++;
      this.#consumed -= batch;
      this.#ackAvail--;
    }
    this.#out.postSends();
  }

  // ───────────────────────────── close ─────────────────────────────

  fail(err: FfnetError): void {
    this.#finish(err, IBSocketState.ERROR);
  }

  /** Decides the close reason once and tells the owner, which frees the resources and then calls settle(). */
  #finish(err: FfnetError | undefined, state: IBSocketState): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closing = true;
    this.#result = err;
    this.#state = state;
    this.#out.clearTimer(CoreTimer.ACCEPT);
    this.#out.clearTimer(CoreTimer.CLOSE);
    this.#out.finished();
  }

  /**
   * After finishing: everything still owed settles with `reason`. Queued RDMA work was never posted; posted work
   * will not complete any more. Unsent writes were already reported through the close reason.
   */
  settle(reason: FfnetError): void {
    const queued = this.#rdmaQueue;
    this.#rdmaQueue = [];
    for (const w of queued) this.#out.rdmaSettled(w, reason);
    const inFlight = [...this.#rdmaInFlight.values()];
    this.#rdmaInFlight.clear();
    for (const w of inFlight) this.#out.rdmaSettled(w, new RDMAError('RDMA request not completed: the socket closed', { peer: this.peer, cause: reason }));
    this.#pend = [];
    this.#pendHead = 0;
  }

  // ───────────────────────────── one-sided RDMA ─────────────────────────────

  /** A fresh 48-bit id for one post (wraps, skipping 0). */
  nextRdmaId(): number {
    const id = this.#nextPostId;
    this.#nextPostId = id === MAX_POST_ID ? 1 : id + 1;
    return id;
  }

  /** Queues posts; each goes out, in order, once the semaphore has `count` tokens. */
  submitRdma(works: readonly W[]): void {
    for (const w of works) this.#rdmaQueue.push(w);
    this.#startRdma();
  }

  /** Drops queued (not yet posted) work matching `match`, settling it with `err`; posted work cannot be recalled. */
  cancelRdma(match: (w: W) => boolean, err: FfnetError): void {
    const dropped = this.#rdmaQueue.filter(match);
    if (dropped.length === 0) return;
    this.#rdmaQueue = this.#rdmaQueue.filter((w) => !match(w));
    for (const w of dropped) this.#out.rdmaSettled(w, err);
  }

  #startRdma(): void {
    while (this.#rdmaQueue.length > 0 && !this.#finished) {
      const w = this.#rdmaQueue[0]!;
      if (this.#rdmaTokens < w.count) return;
      this.#rdmaQueue.shift();
      this.#postRdma(w);
    }
  }

  #postRdma(w: W): void {
    try {
      this.#out.postRdma(w);
      this.#counters.rdmaWrs += w.count;
      TOTALS.rdmaWrs += w.count;
    } catch (e) {
      const posted = (e as { posted?: number }).posted ?? 0;
      const err = asFfnet(e, (cause) => new RDMAError('ibv_post_send failed', { peer: this.peer, cause }));
      this.#out.rdmaSettled(w, err);
      // Part of the chain is on the wire without its signaled tail: only moving the QP to error recovers it.
      if (posted > 0) this.fail(new SocketError('RDMA post partly failed', { peer: this.peer, cause: err }));
      return;
    }
    this.#rdmaTokens -= w.count;
    this.#rdmaInFlight.set(w.id, w);
  }

  #rdmaDone(id: number): void {
    const w = this.#rdmaInFlight.get(id);
    if (!w) return;
    this.#rdmaInFlight.delete(id);
    this.#rdmaTokens += w.count;
    this.#out.rdmaSettled(w, null);
    this.#startRdma();
  }
}
