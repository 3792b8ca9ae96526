/**
 * IBSocket (3FS §4.3–4.7): one RC queue pair carrying a byte stream over SEND/RECV with credits, plus one-sided
 * RDMA READ/WRITE on the same QP. Everything runs on Node's loop: the socket's completion channel fd is watched
 * through @ffnet/event, and each wake-up reads the CQ events, re-arms the CQ, then polls it dry in batches of 16
 * (re-arming before the polls closes the race with completions arriving in between).
 *
 * Credits. Each side has `sendBufCnt` send buffers and posts as many receive buffers for data (plus room for
 * immediates). A send buffer is reused only once its SEND has completed locally (signaled every
 * `bufSignalBatch`-th, the wr_id carrying how many sends it covers) AND the peer has acknowledged it: the
 * receiver copies data out, re-posts the receive buffer, and after every `bufAckBatch` consumed buffers sends an
 * ACK immediate (0 bytes). ACK sends are themselves limited to `qpAckBufs` in flight, since each uses one of the
 * peer's receive buffers. So the receiver never runs out of posted receives (RNR cannot happen), and a reader
 * that stops consuming (pause()) stops the writer.
 */
import { hostname } from 'node:os';
import {
  Access,
  IBManager,
  type IBDevice,
  type IBPortInfo,
  RDMABuf,
  type RDMARemoteBuf,
  RecvWorkRequests,
  SendFlags,
  SendWorkRequests,
  WcArray,
  WcStatus,
  WrOpcode,
  type CompletionChannel,
  type CompletionQueue,
  type QueuePair,
} from '@ffnet/device';
import { type FdWatcher, watchFd } from '@ffnet/event';
import {
  CancelledError,
  ConnectFailedError,
  FfnetError,
  IBDeviceNotFoundError,
  InvalidArgError,
  RDMAError,
  SocketClosedError,
  SocketError,
  TimeoutError,
} from '@ffnet/serde';
import { type IBSocketConfig, type IBSocketSizes, checkIBSocketConfig, connectConfigOf, ibSocketSizes, resolveIBSocketConfig } from './config.js';
import { type IBConnectInfo, type IBConnectReq, type IBConnectRequests, type IBConnectMethod, parseConnectRsp, parseQueryRsp } from './messages.js';
import { type SelectOptions, localPortCandidates, selectDevice } from './select.js';
import { RDMAReqBatch, type RdmaContext, bindRdmaPost } from './rdma.js';
import { ImmType, WrType, encodeImm, immType, immValue, wrId, wrIdType, wrIdValue } from './wire.js';

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

/** Shaped like @ffnet/transport's BackendHandlers, so a backend can pass its handlers straight through. */
export interface IBSocketHandlers {
  /** Bytes received, in order; a fresh copy each time (the receive buffers are re-posted right after). */
  data(chunk: Buffer): void;
  /** After write() returned false: everything queued has been posted. */
  drain?(): void;
  /** Once per write() call, in call order, when all its bytes have been copied into posted send buffers. */
  written?(): void;
  /**
   * Exactly once, when the socket is fully closed and its resources freed. `err` is undefined after a local
   * end()/destroy()/close(), SocketClosedError when the peer closed, SocketError when the QP failed.
   */
  close(err?: FfnetError): void;
}

export interface IBSocketOptions {
  config?: Partial<IBSocketConfig>;
  /** Names the remote end in messages (e.g. `rdma://10.0.0.2:8000`). */
  peer?: string;
}

/** What the client needs to reach the peer's IBConnect service: an RPC call, injected. */
export type IBConnectCall = <M extends IBConnectMethod>(method: M, req: IBConnectRequests[M], opts: { signal: AbortSignal }) => Promise<unknown>;

export interface IBConnectOptions extends SelectOptions {
  /** Local devices to choose from (default: those opened by IBManager). */
  devices?: readonly IBDevice[];
  signal?: AbortSignal;
  /** The whole handshake, query to ready (default 5000 ms, 3FS rdma_connect_timeout). */
  timeoutMs?: number;
  /** Round-robin position among matching port pairs; keep one per address (default: random). */
  counter?: number;
}

/** @internal what the server side passes when accepting. */
export interface AcceptOptions {
  acceptTimeoutMs: number;
  drainTimeoutMs?: number;
  peer?: string;
}

interface PendingWrite {
  bufs: readonly Uint8Array[];
  i: number;
  off: number;
}

interface Resources {
  readonly dev: IBDevice;
  readonly port: IBPortInfo;
  readonly channel: CompletionChannel;
  readonly cq: CompletionQueue;
  readonly qp: QueuePair;
  readonly buf: RDMABuf;
  readonly mem: Buffer;
  readonly lkey: number;
  readonly sendAddr: readonly bigint[];
  readonly recvAddr: readonly bigint[];
  readonly sendWrs: SendWorkRequests;
  readonly recvWrs: RecvWorkRequests;
  readonly rdmaWrs: SendWorkRequests;
  readonly wcs: WcArray;
  watcher: FdWatcher | null;
}

interface BatchState {
  pending: number;
  error: FfnetError | null;
  resolve(): void;
  reject(e: FfnetError): void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

interface RdmaChunk {
  readonly req: RDMAReqBatch;
  readonly batch: BatchState;
  readonly start: number;
  readonly count: number;
  readonly id: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: FfnetError): void;
}

const POLL_BATCH = 16;
const EMPTY: readonly Uint8Array[] = [];
const ACK_PROBE_IMM = encodeImm(ImmType.ACK, 0);
const CLOSE_IMM = encodeImm(ImmType.CLOSE, 0);
const PROBE_ID = wrId(WrType.ACK, 0);
const SEND_UNSIGNALED_ID = wrId(WrType.SEND, 0);
const CLOSE_ID = wrId(WrType.CLOSE, 0);
const CHECK_ID = wrId(WrType.CHECK, 0);
const MAX_POST_ID = 2 ** 48 - 1;
const noop = () => {};

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: FfnetError) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(noop);
  return { promise, resolve, reject };
}

function asFfnet(e: unknown, wrap: (cause: unknown) => FfnetError): FfnetError {
  return FfnetError.is(e) ? e : wrap(e);
}

/** Rejects with the signal's reason once it aborts; the original promise's later rejection is swallowed. */
function race<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(noop);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

// Entry points into IBSocket's private state for this module only (set by its static block), so that
// process.nextTick callbacks need no closure and the server hook stays off the public surface.
let acceptImpl: (req: IBConnectReq, dev: IBDevice, opts: AcceptOptions) => IBSocket;
let emitWrites: (s: IBSocket) => void;
let emitClose: (s: IBSocket) => void;
let pollTick: (s: IBSocket) => void;

export class IBSocket {
  readonly config: IBSocketConfig;
  readonly sizes: IBSocketSizes;
  readonly closed: Promise<FfnetError | undefined>;
  /** Resolves on READY; rejects with the close reason if the socket closes first (never unhandled). */
  readonly ready: Promise<void>;
  readonly #readyD: Deferred;
  #resolveClosed!: (e: FfnetError | undefined) => void;
  #peer: string;
  readonly #peerNamed: boolean;
  #state: IBSocketState = IBSocketState.INIT;
  #r: Resources | null = null;
  #localInfo: IBConnectInfo | null = null;
  #peerInfo: IBConnectInfo | null = null;
  #rts = false;
  #connecting = false;
  #acceptDeadline = 0;

  // Lifecycle: #closing = no new writes; #finished = the close reason is decided; #torn = resources freed.
  #closing = false;
  #ending = false;
  #closeSent = false;
  #finished = false;
  #torn = false;
  #result: FfnetError | undefined;
  #inPoll = false;
  #acceptTimer: NodeJS.Timeout | undefined;
  #closeTimer: NodeJS.Timeout | undefined;
  #h: IBSocketHandlers | null = null;
  #paused = true;

  // Send side.
  #sendIdx = 0;
  #sendLen = 0;
  #sendFree = 0;
  #sendUnsignaled = 0;
  #sendSignaled = 0;
  #sendAcked = 0;
  #pend: (PendingWrite | undefined)[] = [];
  #pendHead = 0;
  readonly #cursor: PendingWrite = { bufs: EMPTY, i: 0, off: 0 };
  #needDrain = false;
  #drainOwed = false;
  #writtenOwed = 0;
  #emitScheduled = false;

  // Receive side: data buffers completed and not yet consumed, in arrival order.
  readonly #rqIdx: Int32Array;
  readonly #rqLen: Int32Array;
  #rqCount = 0;
  #reposts = 0;
  #consumed = 0;
  #ackAvail = 0;
  readonly #ackImm: number;
  #remoteClosed = false;

  // One-sided RDMA.
  #rdmaTokens = 0;
  #rdmaQueue: RdmaChunk[] = [];
  readonly #rdmaInFlight = new Map<number, RdmaChunk>();
  #nextPostId = 1;
  #check: Deferred | null = null;

  constructor(options: IBSocketOptions = {}) {
    this.config = resolveIBSocketConfig(options.config);
    this.sizes = ibSocketSizes(this.config);
    this.#peerNamed = options.peer !== undefined;
    this.#peer = options.peer ?? 'RDMA peer';
    this.#rqIdx = new Int32Array(this.sizes.maxRecvWr);
    this.#rqLen = new Int32Array(this.sizes.maxRecvWr);
    this.#ackImm = encodeImm(ImmType.ACK, this.config.bufAckBatch);
    this.#readyD = deferred();
    this.ready = this.#readyD.promise;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  static {
    acceptImpl = (req, dev, opts) => {
      const s = new IBSocket({ config: { ...req.config, drainTimeoutMs: opts.drainTimeoutMs }, peer: opts.peer });
      s.#accept(req, dev, opts.acceptTimeoutMs);
      return s;
    };
    bindRdmaPost((sock, req, opts) => (sock as IBSocket).#postRdma(req, opts));
    emitWrites = (s) => s.#emitWrites();
    emitClose = (s) => s.#emitClose();
    pollTick = (s) => s.#poll(false);
  }

  get state(): IBSocketState {
    return this.#state;
  }

  get peer(): string {
    return this.#peer;
  }

  /** This end: device, port, QP number and address (null before the QP exists). */
  get localInfo(): IBConnectInfo | null {
    return this.#localInfo;
  }

  get peerInfo(): IBConnectInfo | null {
    return this.#peerInfo;
  }

  /** The device the QP lives on (null before connect/accept or after close). */
  get device(): IBDevice | null {
    return this.#r?.dev ?? null;
  }

  /** Counters of the credit and RDMA machinery, for diagnostics. */
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

  describe(): string {
    const l = this.#localInfo;
    const p = this.#peerInfo;
    const end = (i: IBConnectInfo | null) => (i ? `${i.devName}:${i.port}/qp${i.qpNum}` : '?');
    return `IBSocket(${end(l)} <-> ${end(p)} ${this.#peer}, ${this.#state})`;
  }

  // ───────────────────────────── handshake ─────────────────────────────

  /**
   * Client side of the IBConnect handshake (§4.2): query the server's ports, pick a pair, create the QP (INIT),
   * send our info and config, move to RTR and RTS with the answer, post the connect probe, and resolve when it
   * completes (READY). Failures close the socket and reject with the typed error: TimeoutError,
   * ConnectFailedError (aborted), IBDeviceNotFoundError (no matching port), InvalidConfigError, the server's
   * error as `call` reports it, SocketClosedError if the socket is closed meanwhile.
   */
  async connect(call: IBConnectCall, opts: IBConnectOptions = {}): Promise<void> {
    if (this.#closing) throw new SocketClosedError('connect on a closed IBSocket', { peer: this.#peer });
    if (this.#connecting || this.#state !== IBSocketState.INIT) throw new InvalidArgError(`IBSocket.connect called twice (state ${this.#state})`);
    this.#connecting = true;
    const timeoutMs = opts.timeoutMs ?? 5000;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new TimeoutError(`RDMA connect timed out after ${timeoutMs} ms`, { peer: this.#peer })), timeoutMs);
    const outer = opts.signal;
    const onAbort = () => ac.abort(new ConnectFailedError('RDMA connect aborted', { peer: this.#peer, cause: outer?.reason }));
    if (outer?.aborted) onAbort();
    else outer?.addEventListener('abort', onAbort, { once: true });
    try {
      const query = parseQueryRsp(await race(call('query', {}, { signal: ac.signal }), ac.signal));
      this.#checkOpen();
      const devices = opts.devices ?? IBManager.devices;
      const local = localPortCandidates(devices);
      const sel = selectDevice(local, query.devices, opts.counter ?? Math.floor(Math.random() * 0x7fff_ffff), opts);
      if (!sel) {
        const l = local.map((p) => `${p.devName}:${p.port}(link ${p.linkLayer}, zones ${p.zones.join('|')})`).join(', ') || 'none';
        const r = query.devices.flatMap((d) => d.ports.map((p) => `${d.devName}:${p.port}(link ${p.linkLayer}, zones ${p.zones.join('|')})`)).join(', ') || 'none';
        throw new IBDeviceNotFoundError(`no local RDMA port can reach the server's ports: local [${l}], remote [${r}]`, { peer: this.#peer });
      }
      const dev = devices.find((d) => d.id === sel.local.dev)!;
      this.#setup(dev, sel.local.port);
      this.#state = IBSocketState.CONNECTING;
      const req: IBConnectReq = {
        ...this.#localInfo!,
        targetDev: sel.remote.dev,
        targetDevName: sel.remote.devName,
        targetPort: sel.remote.port,
        config: connectConfigOf(this.config),
      };
      const rsp = parseConnectRsp(await race(call('connect', req, { signal: ac.signal }), ac.signal));
      this.#checkOpen();
      this.#peerInfo = rsp;
      this.#toRtr();
      this.#toRts();
      const r = this.#r!;
      r.sendWrs.sendWithImm(PROBE_ID, ACK_PROBE_IMM, SendFlags.SIGNALED);
      r.sendWrs.post(r.qp);
      await race(this.ready, ac.signal);
      this.#checkOpen();
    } catch (e) {
      // The socket itself failed (e.g. the probe's completion was an error): that is the reason to report.
      if (this.#finished && this.#result) throw this.#result;
      if (this.#closing) {
        // close() was called meanwhile: that close proceeds (or is done), the connect just reports it.
        this.destroy();
        throw new SocketClosedError('IBSocket closed while connecting', { peer: this.#peer });
      }
      const err = asFfnet(e, (cause) => new ConnectFailedError(`RDMA connect failed: ${String(cause)}`, { peer: this.#peer, cause }));
      this.#fail(err);
      throw err;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    }
  }

  #checkOpen(): void {
    if (this.#closing) throw new SocketClosedError('IBSocket closed while connecting', { peer: this.#peer });
  }

  /** Server side (§4.2 step 4): adopt the client's config, create the QP, INIT, RTR, ACCEPTED. */
  #accept(req: IBConnectReq, dev: IBDevice, acceptTimeoutMs: number): void {
    this.#setup(dev, req.targetPort);
    try {
      this.#peerInfo = req;
      this.#toRtr();
    } catch (e) {
      this.#fail(asFfnet(e, (cause) => new SocketError('accept failed', { peer: this.#peer, cause })));
      throw e;
    }
    this.#state = IBSocketState.ACCEPTED;
    this.#acceptDeadline = performance.now() + acceptTimeoutMs;
    this.#acceptTimer = setTimeout(() => {
      if (this.#state === IBSocketState.ACCEPTED) {
        const cause = new TimeoutError(`no connect probe within ${acceptTimeoutMs} ms of accepting`);
        this.#fail(new SocketError('RDMA accept timed out', { peer: this.#peer, cause }));
      }
    }, acceptTimeoutMs);
    this.#acceptTimer.unref();
  }

  /** Opens the port, checks the config against the device, creates channel, CQ, QP (INIT) and buffers. */
  #setup(dev: IBDevice, portNum: number): void {
    const port = dev.openPort(portNum);
    checkIBSocketConfig(this.config, dev.attr, dev.name);
    const c = this.config;
    const s = this.sizes;
    const S = c.sendBufCnt;
    const undo: (() => void)[] = [];
    try {
      // The stream buffers' rkey is never shared, so they carry no remote rights (3FS registers them the same way).
      const buf = RDMABuf.allocate(s.bufferBytes, { devices: [dev], access: Access.LOCAL_WRITE | Access.RELAXED_ORDERING });
      undo.push(() => buf.release());
      const lkey = buf.lkey(dev.id)!;
      const channel = dev.context.createCompChannel();
      undo.push(() => channel.destroy());
      const cq = dev.context.createCq({ cqe: s.cqEntries, channel, eventAckBatch: c.eventAckBatch });
      undo.push(() => cq.destroy());
      const qp = dev.pd.createQp({
        sendCq: cq,
        maxSendWr: s.maxSendWr,
        maxRecvWr: s.maxRecvWr,
        maxSendSge: c.maxSge,
        maxRecvSge: 1,
        maxInlineData: 0,
      });
      undo.push(() => qp.destroy());
      const wrMem: { free(): void }[] = [];
      undo.push(() => {
        for (const w of wrMem) w.free();
      });
      const sendWrs = new SendWorkRequests(S + s.qpAckBufs + 2, 1);
      wrMem.push(sendWrs);
      const recvWrs = new RecvWorkRequests(s.maxRecvWr, 1);
      wrMem.push(recvWrs);
      const rdmaWrs = new SendWorkRequests(c.maxRdmaWrPerPost, c.maxSge);
      wrMem.push(rdmaWrs);
      const wcs = new WcArray(POLL_BATCH);
      wrMem.push(wcs);
      const sendAddr: bigint[] = [];
      const recvAddr: bigint[] = [];
      for (let i = 0; i < S; i++) sendAddr.push(buf.address + BigInt(i * c.bufSize));
      for (let i = 0; i < s.maxRecvWr; i++) recvAddr.push(buf.address + BigInt((S + i) * c.bufSize));
      qp.modifyToInit({ portNum, pkeyIndex: c.pkeyIndex });
      // Every receive buffer is posted before the peer can send (RTR comes later on both sides).
      for (let i = 0; i < s.maxRecvWr; i++) recvWrs.add(wrId(WrType.RECV, i)).sge(recvAddr[i]!, c.bufSize, lkey);
      recvWrs.post(qp);
      cq.requestNotify();
      const r: Resources = { dev, port, channel, cq, qp, buf, mem: buf.buffer, lkey, sendAddr, recvAddr, sendWrs, recvWrs, rdmaWrs, wcs, watcher: null };
      r.watcher = watchFd(channel.fd, this.#onReadable, {
        label: `completion channel of ${this.#peer}`,
        onError: (e) => this.#fail(new SocketError('completion channel failed', { peer: this.#peer, cause: e })),
      });
      this.#r = r;
    } catch (e) {
      for (const u of undo.reverse()) {
        try {
          u();
        } catch {
          // Best effort: the first error is the one to report.
        }
      }
      throw e;
    }
    this.#localInfo = {
      hostname: hostname(),
      dev: dev.id,
      devName: dev.name,
      port: portNum,
      mtu: port.attr.activeMtu,
      qpNum: this.#r.qp.qpNum,
      link: port.isRoCE ? { kind: 'roce', gid: Buffer.from(port.gid!.gid) } : { kind: 'ib', lid: port.attr.lid },
    };
  }

  #toRtr(): void {
    const r = this.#r!;
    const p = this.#peerInfo!;
    const c = this.config;
    if (!this.#peerNamed) this.#peer = `${p.hostname} ${p.devName}:${p.port} qp ${p.qpNum}`;
    if (r.port.isRoCE !== (p.link.kind === 'roce')) {
      throw new InvalidArgError(`link layer mismatch: local ${r.dev.name}:${r.port.portNum} is ${r.port.isRoCE ? 'RoCE' : 'InfiniBand'}, the peer is not`, {
        peer: this.#peer,
      });
    }
    r.qp.modifyToRtr({
      pathMtu: Math.min(r.port.attr.activeMtu, p.mtu),
      destQpNum: p.qpNum,
      rqPsn: c.startPsn,
      maxDestRdAtomic: c.maxRdAtomic,
      minRnrTimer: c.minRnrTimer,
      portNum: r.port.portNum,
      sl: c.sl,
      ...(p.link.kind === 'roce'
        ? { dgid: p.link.gid, sgidIndex: r.port.gid!.index, hopLimit: 255, trafficClass: c.trafficClass }
        : { dlid: p.link.lid }),
    });
  }

  #toRts(): void {
    const c = this.config;
    this.#r!.qp.modifyToRts({ sqPsn: c.startPsn, timeout: c.timeout, retryCnt: c.retryCnt, rnrRetry: c.rnrRetry, maxRdAtomic: c.maxRdAtomic });
    this.#rts = true;
    this.#sendFree = c.sendBufCnt;
    this.#rdmaTokens = c.maxRdmaWr;
    this.#ackAvail = this.sizes.qpAckBufs;
  }

  #becomeReady(): void {
    this.#state = IBSocketState.READY;
    clearTimeout(this.#acceptTimer);
    this.#readyD.resolve();
  }

  // ───────────────────────────── stream API ─────────────────────────────

  /** Attaching handlers starts the flow of received data (a socket is paused until then). */
  setHandlers(h: IBSocketHandlers): void {
    this.#h = h;
    if (this.#torn) {
      process.nextTick(emitClose, this);
      return;
    }
    this.resume();
  }

  /** Stops consuming received buffers: no ACKs go out, so the peer runs out of credits and stops. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused || this.#h === null) return;
    this.#paused = false;
    if (this.#rqCount > 0 || this.#remoteClosed) process.nextTick(pollTick, this);
  }

  /**
   * Copies `bufs` into send buffers and posts them, as far as credits allow; the rest is kept (by reference: do
   * not modify it) and sent as the peer acknowledges. Returns false when something is left over: wait for
   * drain(). Throws SocketClosedError / SocketError once closing or closed.
   */
  write(bufs: readonly Uint8Array[]): boolean {
    if (this.#closing || this.#state === IBSocketState.CLOSE) throw this.#stateError('write');
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
      const r = this.#r!;
      r.sendWrs.post(r.qp);
    } catch (e) {
      c.bufs = EMPTY;
      this.#fail(asFfnet(e, (cause) => new SocketError('send failed', { peer: this.#peer, cause })));
      return false;
    }
    if (complete) {
      c.bufs = EMPTY;
      this.#owe(1);
      return true;
    }
    this.#pend.push({ bufs, i: c.i, off: c.off });
    c.bufs = EMPTY;
    this.#needDrain = true;
    return false;
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
   * Graceful close: what was written is still sent, then a CLOSE immediate; resources are freed when it completes
   * (or after drainTimeoutMs), and the close handler gets no error. Idempotent.
   */
  end(): void {
    if (this.#closing) return;
    this.#closing = true;
    if (!this.#canSendClose()) {
      this.#finish(undefined, IBSocketState.CLOSE);
      return;
    }
    this.#armCloseTimer();
    if (this.#pendHead < this.#pend.length) this.#ending = true;
    else this.#sendClose();
  }

  /** Close now: unsent data is dropped; the peer is told with a CLOSE immediate when the QP can still send. */
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
      this.#armCloseTimer();
    }
    this.#sendClose();
  }

  /** end(), then wait until the socket is closed. */
  async close(): Promise<void> {
    this.end();
    await this.closed;
  }

  /** A CLOSE needs a QP in RTS and a peer that has not closed (3FS: READY or CONNECTING). */
  #canSendClose(): boolean {
    return this.#rts && (this.#state === IBSocketState.READY || this.#state === IBSocketState.CONNECTING);
  }

  #armCloseTimer(): void {
    this.#closeTimer = setTimeout(() => this.#finish(undefined, IBSocketState.CLOSE), this.config.drainTimeoutMs);
    this.#closeTimer.unref();
  }

  #sendClose(): void {
    if (this.#closeSent || this.#finished) return;
    this.#closeSent = true;
    const r = this.#r!;
    try {
      r.sendWrs.writeWithImm(CLOSE_ID, 0n, 0, CLOSE_IMM, SendFlags.SIGNALED | SendFlags.INLINE);
      r.sendWrs.post(r.qp);
    } catch {
      this.#finish(undefined, IBSocketState.CLOSE);
    }
  }

  #stateError(what: string): FfnetError {
    if (this.#state === IBSocketState.ERROR) {
      return new SocketError(`${what} on a failed IBSocket`, { peer: this.#peer, cause: this.#result });
    }
    return new SocketClosedError(`${what} on a closed IBSocket`, { peer: this.#peer });
  }

  // ───────────────────────────── send path ─────────────────────────────

  /** Copies from `e` into send buffers while any is free; true when all of `e` is copied. */
  #fill(e: PendingWrite): boolean {
    const r = this.#r!;
    const size = this.config.bufSize;
    const bufs = e.bufs;
    while (e.i < bufs.length) {
      const b = bufs[e.i]!;
      while (e.off < b.length) {
        if (this.#sendFree === 0) return false;
        const n = Math.min(size - this.#sendLen, b.length - e.off);
        r.mem.set(n === b.length ? b : b.subarray(e.off, e.off + n), this.#sendIdx * size + this.#sendLen);
        this.#sendLen += n;
        e.off += n;
        if (this.#sendLen === size) this.#queueSend();
      }
      e.i++;
      e.off = 0;
    }
    return true;
  }

  /** Adds a SEND of the current buffer to the batch (posted by the caller). */
  #queueSend(): void {
    const r = this.#r!;
    let flags = 0;
    let id = SEND_UNSIGNALED_ID;
    if (++this.#sendUnsignaled >= this.config.bufSignalBatch) {
      flags = SendFlags.SIGNALED;
      id = wrId(WrType.SEND, this.#sendUnsignaled);
      this.#sendUnsignaled = 0;
    }
    r.sendWrs.send(id, flags).sge(r.sendAddr[this.#sendIdx]!, this.#sendLen, r.lkey);
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
    const r = this.#r!;
    r.sendWrs.post(r.qp);
    if (this.#pendHead === this.#pend.length) {
      this.#pend.length = 0;
      this.#pendHead = 0;
      if (this.#needDrain) {
        this.#needDrain = false;
        this.#drainOwed = true;
        this.#scheduleEmit();
      }
      if (this.#ending) this.#sendClose();
    }
    if (done > 0) this.#owe(done);
  }

  #owe(n: number): void {
    this.#writtenOwed += n;
    this.#scheduleEmit();
  }

  #scheduleEmit(): void {
    if (this.#emitScheduled) return;
    this.#emitScheduled = true;
    process.nextTick(emitWrites, this);
  }

  #emitWrites(): void {
    this.#emitScheduled = false;
    const h = this.#h;
    let n = this.#writtenOwed;
    this.#writtenOwed = 0;
    if (h?.written) while (n-- > 0) h.written();
    if (this.#drainOwed) {
      this.#drainOwed = false;
      h?.drain?.();
    }
  }

  #emitClose(): void {
    const h = this.#h;
    this.#h = null;
    h?.close(this.#result);
  }

  // ───────────────────────────── completions ─────────────────────────────

  readonly #onReadable = (): void => {
    this.#poll(true);
  };

  #poll(fromEvent: boolean): void {
    const r = this.#r;
    if (r === null || this.#finished) return;
    this.#inPoll = true;
    try {
      if (fromEvent) r.cq.consumeEvents();
      for (;;) {
        const n = r.cq.poll(r.wcs, POLL_BATCH);
        for (let i = 0; i < n && !this.#finished; i++) this.#completion(r.wcs, i);
        if (n < POLL_BATCH || this.#finished) break;
      }
      if (!this.#finished) this.#progress();
    } catch (e) {
      this.#fail(asFfnet(e, (cause) => new SocketError('completion handling failed', { peer: this.#peer, cause })));
    } finally {
      this.#inPoll = false;
    }
    if (this.#finished && !this.#torn) this.#teardown();
  }

  #completion(wcs: WcArray, i: number): void {
    const id = wcs.wrId(i);
    const type = wrIdType(id);
    const value = wrIdValue(id);
    if (wcs.status(i) !== WcStatus.SUCCESS) {
      this.#completionFailed(wcs, i, type, value);
      return;
    }
    switch (type) {
      case WrType.RECV:
        this.#received(wcs, i, value);
        break;
      case WrType.SEND:
        this.#sendSignaled += value;
        break;
      case WrType.ACK:
        if (value !== 0) this.#ackAvail++;
        else if (this.#state === IBSocketState.CONNECTING) this.#becomeReady();
        break;
      case WrType.RDMA_LAST:
        this.#rdmaDone(value, null);
        break;
      case WrType.CLOSE:
        // Our CLOSE reached the peer: everything posted before it did too.
        this.#finish(undefined, IBSocketState.CLOSE);
        break;
      case WrType.CHECK:
        this.#checkDone(null);
        break;
      default:
        this.#fail(new SocketError(`completion with unknown wr_id ${id}`, { peer: this.#peer }));
    }
  }

  #completionFailed(wcs: WcArray, i: number, type: number, value: number): void {
    if (this.#closeSent) {
      // Closing: the peer may be gone or the QP flushed; either way there is nothing left to wait for.
      this.#finish(undefined, IBSocketState.CLOSE);
      return;
    }
    const wcErr = wcs.error(i, { peer: this.#peer });
    const what = ['SEND', 'RECV', 'ACK', 'RDMA', 'RDMA', 'CLOSE', 'CHECK'][type] ?? 'unknown';
    if (type === WrType.RDMA || type === WrType.RDMA_LAST) {
      // The request's promise rejects with the completion's own error when the teardown settles it.
      const c = this.#rdmaInFlight.get(value);
      if (c) c.batch.error ??= wcErr;
    }
    this.#fail(new SocketError(`${what} work request failed: ${wcErr.statusName}`, { peer: this.#peer, cause: wcErr }));
  }

  #received(wcs: WcArray, i: number, idx: number): void {
    if (this.#state === IBSocketState.ACCEPTED) {
      // The first message (the client's probe) says the client is in RTS: the server can send now.
      this.#toRts();
      this.#becomeReady();
    }
    if (!wcs.hasImm(i)) {
      this.#rqIdx[this.#rqCount] = idx;
      this.#rqLen[this.#rqCount++] = wcs.byteLen(i);
      return;
    }
    const imm = wcs.imm(i);
    if (wcs.byteLen(i) !== 0) {
      this.#fail(new SocketError(`immediate 0x${imm.toString(16)} arrived with ${wcs.byteLen(i)} bytes of data`, { peer: this.#peer }));
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
      this.#fail(new SocketError(`unknown immediate type ${t} (0x${imm.toString(16)})`, { peer: this.#peer }));
    }
  }

  #repost(idx: number): void {
    const r = this.#r!;
    r.recvWrs.add(wrId(WrType.RECV, idx)).sge(r.recvAddr[idx]!, this.config.bufSize, r.lkey);
    this.#reposts++;
  }

  /** After a poll round: free send buffers, consume received data, re-post, ACK, send more, deliver. */
  #progress(): void {
    const r = this.#r!;
    const freed = Math.min(this.#sendSignaled, this.#sendAcked);
    if (freed > 0) {
      this.#sendFree += freed;
      this.#sendSignaled -= freed;
      this.#sendAcked -= freed;
    }
    const chunk = !this.#paused && this.#rqCount > 0 ? this.#consume() : null;
    if (this.#reposts > 0) {
      // Receives go back before the ACK that lets the peer use them.
      r.recvWrs.post(r.qp);
      this.#reposts = 0;
    }
    this.#sendAcks();
    this.#pump();
    if (chunk !== null && chunk.length > 0) this.#h!.data(chunk);
    if (this.#finished) return;
    if (this.#remoteClosed && this.#rqCount === 0) {
      this.#finish(this.#closing ? undefined : new SocketClosedError('connection closed by peer', { peer: this.#peer }), IBSocketState.CLOSE);
    }
  }

  /** Copies every queued data buffer into one new Buffer and queues their receives for re-posting. */
  #consume(): Buffer {
    const r = this.#r!;
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
      if (len > 0) off += r.mem.copy(chunk, off, start, start + len);
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
    const r = this.#r!;
    const id = wrId(WrType.ACK, batch);
    while (this.#consumed >= batch && this.#ackAvail > 0) {
      r.sendWrs.sendWithImm(id, this.#ackImm, SendFlags.SIGNALED);
      this.#consumed -= batch;
      this.#ackAvail--;
    }
    r.sendWrs.post(r.qp);
  }

  // ───────────────────────────── close and teardown ─────────────────────────────

  #fail(err: FfnetError): void {
    this.#finish(err, IBSocketState.ERROR);
  }

  /** Decides the close reason once; frees everything now, or at the end of the poll round when inside one. */
  #finish(err: FfnetError | undefined, state: IBSocketState): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closing = true;
    this.#result = err;
    this.#state = state;
    clearTimeout(this.#acceptTimer);
    clearTimeout(this.#closeTimer);
    if (!this.#inPoll) this.#teardown();
  }

  #teardown(): void {
    this.#torn = true;
    const err = this.#result;
    const reason = err ?? new SocketClosedError('IBSocket closed', { peer: this.#peer });
    this.#readyD.reject(reason);
    this.#checkDone(reason);
    for (const c of this.#rdmaQueue) this.#chunkDone(c, reason);
    this.#rdmaQueue = [];
    for (const c of this.#rdmaInFlight.values()) {
      this.#chunkDone(c, new RDMAError('RDMA request not completed: the socket closed', { peer: this.#peer, cause: reason }));
    }
    this.#rdmaInFlight.clear();
    this.#pend = [];
    this.#pendHead = 0;
    this.#release();
    this.#resolveClosed(err);
    process.nextTick(emitClose, this);
  }

  #release(): void {
    const r = this.#r;
    if (r === null) return;
    this.#r = null;
    r.watcher?.close();
    let qpGone = true;
    try {
      r.qp.modifyToError();
    } catch {
      // Destroying it below is what matters.
    }
    try {
      r.qp.destroy();
    } catch {
      qpGone = false;
    }
    for (const free of [() => r.cq.destroy(), () => r.channel.destroy()]) {
      try {
        free();
      } catch {
        // A CQ that could not go keeps its channel; nothing else depends on them.
      }
    }
    // The device may still write into buffers of a QP it refused to destroy: leak them rather than free.
    if (qpGone) r.buf.release();
    r.sendWrs.free();
    r.recvWrs.free();
    r.rdmaWrs.free();
    r.wcs.free();
  }

  // ───────────────────────────── liveness ─────────────────────────────

  /**
   * Liveness (§4.4): in READY posts a 0-byte RDMA WRITE (no peer receive used) and resolves when it completes;
   * a dead peer or broken QP fails it (and the socket) with SocketError. Concurrent calls share one probe.
   * CLOSE gives SocketClosedError, ERROR SocketError, ACCEPTED past the accept deadline SocketError; states
   * before READY otherwise resolve at once.
   */
  check(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#finished || this.#closing) return Promise.reject(this.#stateError('check'));
    if (this.#state === IBSocketState.ACCEPTED && performance.now() > this.#acceptDeadline) {
      return Promise.reject(new SocketError('IBSocket still not connected after the accept timeout', { peer: this.#peer }));
    }
    if (this.#state !== IBSocketState.READY) return Promise.resolve();
    if (this.#check === null) {
      const d = deferred();
      const r = this.#r!;
      try {
        r.sendWrs.write(CHECK_ID, 0n, 0, SendFlags.SIGNALED | SendFlags.INLINE);
        r.sendWrs.post(r.qp);
      } catch (e) {
        const err = new SocketError('check failed to post', { peer: this.#peer, cause: e });
        this.#fail(err);
        return Promise.reject(err);
      }
      this.#check = d;
    }
    return opts.signal ? race(this.#check.promise, opts.signal).catch((e) => Promise.reject(abortError(e, 'check'))) : this.#check.promise;
  }

  #checkDone(err: FfnetError | null): void {
    const d = this.#check;
    if (d === null) return;
    this.#check = null;
    if (err) d.reject(err);
    else d.resolve();
  }

  // ───────────────────────────── one-sided RDMA ─────────────────────────────

  /** A batch of RDMA READs from the peer's memory into local buffers. */
  rdmaReadBatch(): RDMAReqBatch {
    return new RDMAReqBatch(this, false, this.#rdmaContext());
  }

  /** A batch of RDMA WRITEs from local buffers into the peer's memory. */
  rdmaWriteBatch(): RDMAReqBatch {
    return new RDMAReqBatch(this, true, this.#rdmaContext());
  }

  /** Reads `remote` into `local` (one buffer, or several filling consecutive parts of `remote`). */
  rdmaRead(remote: RDMARemoteBuf, local: RDMABuf | readonly RDMABuf[], opts?: { signal?: AbortSignal }): Promise<void> {
    return this.rdmaReadBatch().add(remote, local).post(opts);
  }

  /** Writes `local` (one buffer, or several, back to back) into `remote`. */
  rdmaWrite(remote: RDMARemoteBuf, local: RDMABuf | readonly RDMABuf[], opts?: { signal?: AbortSignal }): Promise<void> {
    return this.rdmaWriteBatch().add(remote, local).post(opts);
  }

  #rdmaContext(): RdmaContext {
    const r = this.#r;
    const p = this.#peerInfo;
    if (r === null || p === null || this.#finished) throw this.#finished ? this.#stateError('RDMA') : new SocketError('RDMA on an unconnected IBSocket', { peer: this.#peer });
    return { devId: r.dev.id, peerDev: p.dev, maxSge: this.config.maxSge, maxMsgSz: r.port.attr.maxMsgSz };
  }

  #postRdma(req: RDMAReqBatch, opts: { signal?: AbortSignal }): Promise<void> {
    if (this.#closing || this.#state !== IBSocketState.READY) return Promise.reject(this.#closing ? this.#stateError('RDMA') : new SocketError(`RDMA in state ${this.#state}`, { peer: this.#peer }));
    const n = req.wrCount;
    if (n === 0) return Promise.resolve();
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal.reason, 'RDMA'));
    const per = this.config.maxRdmaWrPerPost;
    return new Promise<void>((resolve, reject) => {
      const batch: BatchState = { pending: Math.ceil(n / per), error: null, resolve, reject, signal, onAbort: null };
      const chunks: RdmaChunk[] = [];
      for (let start = 0; start < n; start += per) {
        const id = this.#nextPostId;
        this.#nextPostId = id === MAX_POST_ID ? 1 : id + 1;
        chunks.push({ req, batch, start, count: Math.min(per, n - start), id });
      }
      if (signal) {
        batch.onAbort = () => {
          // Requests already posted cannot be recalled; the ones still waiting for the semaphore are dropped.
          const err = abortError(signal.reason, 'RDMA');
          const waiting = this.#rdmaQueue.filter((c) => c.batch === batch);
          this.#rdmaQueue = this.#rdmaQueue.filter((c) => c.batch !== batch);
          for (const c of waiting) this.#chunkDone(c, err);
        };
        signal.addEventListener('abort', batch.onAbort, { once: true });
      }
      for (const c of chunks) this.#rdmaQueue.push(c);
      this.#startRdma();
    });
  }

  /** Posts waiting chunks, in order, while the semaphore (maxRdmaWr work requests in flight) allows. */
  #startRdma(): void {
    while (this.#rdmaQueue.length > 0 && !this.#finished) {
      const c = this.#rdmaQueue[0]!;
      if (this.#rdmaTokens < c.count) return;
      this.#rdmaQueue.shift();
      this.#postChunk(c);
    }
  }

  #postChunk(c: RdmaChunk): void {
    const r = this.#r!;
    const wrs = r.rdmaWrs;
    const q = c.req;
    const op = q.isWrite ? WrOpcode.RDMA_WRITE : WrOpcode.RDMA_READ;
    const end = c.start + c.count;
    for (let k = c.start; k < end; k++) {
      const last = k === end - 1;
      wrs.add(op, wrId(last ? WrType.RDMA_LAST : WrType.RDMA, c.id), last ? SendFlags.SIGNALED : 0).rdma(q.remoteAddr[k]!, q.rkey[k]!);
      for (let g = k === 0 ? 0 : q.sgeEnd[k - 1]!; g < q.sgeEnd[k]!; g++) wrs.sge(q.sgeAddr[g]!, q.sgeLen[g]!, q.sgeLkey[g]!);
    }
    try {
      wrs.post(r.qp);
    } catch (e) {
      const posted = (e as { posted?: number }).posted ?? 0;
      const err = asFfnet(e, (cause) => new RDMAError('ibv_post_send failed', { peer: this.#peer, cause }));
      if (posted > 0) {
        // Part of the chain is on the wire without its signaled tail: only moving the QP to error recovers it.
        this.#rdmaInFlight.set(c.id, c);
        c.batch.error ??= err;
        this.#fail(new SocketError('RDMA post partly failed', { peer: this.#peer, cause: err }));
      } else {
        this.#chunkDone(c, err);
      }
      return;
    }
    this.#rdmaTokens -= c.count;
    this.#rdmaInFlight.set(c.id, c);
  }

  #rdmaDone(id: number, err: FfnetError | null): void {
    const c = this.#rdmaInFlight.get(id);
    if (!c) return;
    this.#rdmaInFlight.delete(id);
    this.#rdmaTokens += c.count;
    this.#chunkDone(c, err);
    this.#startRdma();
  }

  #chunkDone(c: RdmaChunk, err: FfnetError | null): void {
    const b = c.batch;
    if (err) b.error ??= err;
    if (--b.pending > 0) return;
    if (b.onAbort) b.signal?.removeEventListener('abort', b.onAbort);
    if (b.error) b.reject(b.error);
    else b.resolve();
  }
}

function abortError(reason: unknown, what: string): FfnetError {
  return FfnetError.is(reason) ? reason : new CancelledError(`${what} aborted`, { cause: reason });
}

/** @internal the server's accept step (IBConnectServer). */
export function acceptIBSocket(req: IBConnectReq, dev: IBDevice, opts: AcceptOptions): IBSocket {
  return acceptImpl(req, dev, opts);
}
