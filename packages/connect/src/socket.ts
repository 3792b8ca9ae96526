/**
 * IBSocket (3FS §4.3–4.7): one RC queue pair carrying a byte stream over SEND/RECV with credits, plus one-sided
 * RDMA READ/WRITE on the same QP.
 *
 * This class is the verbs shell around IBSocketCore (socket-core.ts), which holds the protocol itself (credits,
 * ACK batching, signalling, the RDMA semaphore, close and drain) with no I/O. The shell does the handshake and
 * the QP transitions, owns the device resources, turns CQ completions into core inputs and the core's work
 * requests into ibv_post_send / ibv_post_recv, runs the core's timers, and turns its events into handler calls
 * and promises.
 *
 * Everything runs on Node's loop: the completion channel fd is watched through @ffnet/event, and each wake-up
 * reads the CQ events, re-arms the CQ, then polls it dry in batches of 16 (re-arming before the polls closes the
 * race with completions arriving in between).
 */
import { hostname } from 'node:os';
import { type Disposer, defaults, onAbort, Semaphore } from '@ffnet/common';
import {
  Access,
  type CompletionChannel,
  type CompletionQueue,
  type IBDevice,
  IBManager,
  type IBPortInfo,
  type MemoryWindow,
  type QueuePair,
  RDMABuf,
  RDMARemoteBuf,
  RecvWorkRequests,
  SendFlags,
  SendWorkRequests,
  WcArray,
  type WcError,
  WcStatus,
  WrOpcode,
} from '@ffnet/device';
import { type FdWatcher, watchFd } from '@ffnet/event';
import {
  CancelledError,
  ConnectFailedError,
  FfnetError,
  IBDeviceNotFoundError,
  InvalidArgError,
  SocketClosedError,
  SocketError,
  TimeoutError,
} from '@ffnet/serde';
import { checkIBSocketConfig, connectConfigOf, type IBSocketConfig, type IBSocketSizes, ibSocketSizes, resolveIBSocketConfig } from './config.js';
import { type IBConnectInfo, type IBConnectMethod, type IBConnectReq, type IBConnectRequests, parseConnectRsp, parseQueryRsp } from './messages.js';
import { bindRdmaPost, type RDMAPostOptions, RDMAReqBatch, type RdmaContext } from './rdma.js';
import { localPortCandidates, type SelectOptions, selectDevice } from './select.js';
import { asFfnet, CHECK_ID, type CoreTimer, type IBCoreOutput, IBSocketCore, IBSocketState, type RdmaWork } from './socket-core.js';
import { WrType, wrId, wrIdType, wrIdValue } from './wire.js';

export { IBSocketState } from './socket-core.js';

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
   * end()/destroy()/close(), SocketClosedError when the peer closed, SocketError when the QP failed, TimeoutError
   * when end() reached drainTimeoutMs with written data still waiting for credits.
   */
  close(err?: FfnetError): void;
}

/** What a peer may do through an exposed window: RDMA READ from it, RDMA WRITE into it, or both. */
export type RDMAExposeAccess = 'read' | 'write' | 'readwrite';

export interface RDMAExposeOptions {
  /** Default 'readwrite'. Give only what the call needs: 'write' when the peer fills the buffer, 'read' when it reads it. */
  access?: RDMAExposeAccess;
  /** While waiting for a window (all maxWindows in use). */
  signal?: AbortSignal;
}

/**
 * Local memory exposed to this socket's peer through a type-2 memory window bound to its QP (IBSocket.expose).
 * Send `remote` in the request; once the call has settled (response, error, timeout, abort), `revoke()` and wait
 * for it before reusing or releasing the buffer. The rkey works on this connection only: the window is bound to
 * this QP, and the memory's own registration carries no remote rights.
 */
export class RDMAWindow {
  /** The descriptor for the peer: the buffer's address and length, with the window's rkey for this socket's device. */
  readonly remote: RDMARemoteBuf;
  /** @internal */ readonly mw: MemoryWindow;
  /** @internal */ readonly id: number;
  /** @internal */ revoking: Deferred | null = null;
  readonly #sock: IBSocket;

  /** @internal */
  constructor(sock: IBSocket, mw: MemoryWindow, id: number, remote: RDMARemoteBuf) {
    this.#sock = sock;
    this.mw = mw;
    this.id = id;
    this.remote = remote;
  }

  /** True once revoke() has been called. */
  get revoked(): boolean {
    return this.revoking !== null;
  }

  /**
   * Invalidates the window (LOCAL_INV on the QP) and resolves when the device has done it: from then on the rkey gets
   * a remote access error. If the socket closes meanwhile it resolves too (a window dies with its QP). Never rejects;
   * idempotent.
   */
  revoke(): Promise<void> {
    return revokeWindow(this.#sock, this);
  }
}

export interface IBSocketOptions {
  config?: Partial<IBSocketConfig>;
  /**
   * Memory windows this socket may have bound or being invalidated at once (default 64, as maxConcurrentTransmission):
   * expose() waits for one beyond that. The send queue and CQ get room for two work requests per window.
   */
  maxWindows?: number;
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

interface Resources {
  readonly dev: IBDevice;
  readonly port: IBPortInfo;
  readonly channel: CompletionChannel;
  readonly cq: CompletionQueue;
  readonly qp: QueuePair;
  readonly buf: RDMABuf;
  readonly lkey: number;
  readonly sendAddr: readonly bigint[];
  readonly recvAddr: readonly bigint[];
  readonly sendWrs: SendWorkRequests;
  readonly recvWrs: RecvWorkRequests;
  readonly rdmaWrs: SendWorkRequests;
  /** One BIND_MW or LOCAL_INV at a time. */
  readonly winWrs: SendWorkRequests;
  readonly wcs: WcArray;
  watcher: FdWatcher | null;
}

interface BatchState {
  pending: number;
  /** Posts not yet handed to ibv_post_send; with `until: 'posted'` the promise resolves when this reaches 0. */
  unposted: number;
  readonly untilPosted: boolean;
  error: FfnetError | null;
  resolve(): void;
  reject(e: FfnetError): void;
  /** Undoes the abort registration once nothing is left to drop (all posted, or settled). */
  offAbort: Disposer | null;
  readonly onCompleted: ((err: FfnetError | null) => void) | undefined;
}

interface RdmaChunk extends RdmaWork {
  readonly req: RDMAReqBatch;
  readonly batch: BatchState;
  readonly start: number;
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(e: FfnetError): void;
}

const POLL_BATCH = 16;
const noop = () => {};

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: FfnetError) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Marks the rejection handled so one nobody awaits does not crash the process; whoever awaits `promise` gets it.
  promise.catch(noop);
  return { promise, resolve, reject };
}

/** Rejects with the signal's reason once it aborts; the original promise's later rejection is swallowed. */
function race<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(noop);
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, reject);
    p.then(
      (v) => {
        off();
        resolve(v);
      },
      (e) => {
        off();
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
let revokeWindow: (s: IBSocket, w: RDMAWindow) => Promise<void>;

const WINDOW_READ = Access.REMOTE_READ;
const WINDOW_WRITE = Access.REMOTE_WRITE;
const WINDOW_ACCESS: Record<RDMAExposeAccess, number> = { read: WINDOW_READ, write: WINDOW_WRITE, readwrite: WINDOW_READ | WINDOW_WRITE };
const DEFAULT_MAX_WINDOWS = defaults.MAX_CONCURRENT_TRANSMISSION;

export class IBSocket {
  readonly config: IBSocketConfig;
  readonly sizes: IBSocketSizes;
  readonly closed: Promise<FfnetError | undefined>;
  /** Resolves on READY; rejects with the close reason if the socket closes first (never unhandled). */
  readonly ready: Promise<void>;
  readonly #readyD: Deferred;
  #resolveClosed!: (e: FfnetError | undefined) => void;
  readonly #peerNamed: boolean;
  readonly #core: IBSocketCore<RdmaChunk>;
  #r: Resources | null = null;
  #localInfo: IBConnectInfo | null = null;
  #peerInfo: IBConnectInfo | null = null;
  #connecting = false;
  #acceptDeadline = 0;
  #torn = false;
  #inPoll = false;
  readonly #timers: (NodeJS.Timeout | undefined)[] = [undefined, undefined];
  #h: IBSocketHandlers | null = null;
  #drainOwed = false;
  #writtenOwed = 0;
  #emitScheduled = false;
  #check: Deferred | null = null;
  /** Bound windows and those being invalidated, by id (wr_id value). */
  readonly #windows = new Map<number, RDMAWindow>();
  /** Invalidated windows of this socket, ready to bind again. */
  readonly #idleWindows: MemoryWindow[] = [];
  readonly #windowSlots: Semaphore;
  /** Aborted at teardown: expose() calls waiting for a window fail with the close reason. */
  readonly #teardownAc = new AbortController();
  #nextWindowId = 1;
  readonly maxWindows: number;

  constructor(options: IBSocketOptions = {}) {
    const maxWindows = options.maxWindows ?? DEFAULT_MAX_WINDOWS;
    if (!Number.isSafeInteger(maxWindows) || maxWindows < 1) throw new InvalidArgError(`IBSocket: maxWindows must be a positive integer, got ${maxWindows}`);
    this.maxWindows = maxWindows;
    this.#windowSlots = new Semaphore(maxWindows, { name: 'IBSocket.maxWindows' });
    this.config = resolveIBSocketConfig(options.config);
    this.sizes = ibSocketSizes(this.config);
    this.#peerNamed = options.peer !== undefined;
    this.#core = new IBSocketCore(this.config, this.sizes, this.#output(), options.peer ?? 'RDMA peer');
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
    revokeWindow = (s, w) => s.#revoke(w);
  }

  /** The core's outputs as verbs calls: one object per socket, so the per-message path allocates nothing here. */
  #output(): IBCoreOutput<RdmaChunk> {
    return {
      sendBuf: (id, idx, len, signaled) => {
        const r = this.#r!;
        r.sendWrs.send(id, signaled ? SendFlags.SIGNALED : 0).sge(r.sendAddr[idx]!, len, r.lkey);
      },
      sendImm: (id, imm) => {
        this.#r!.sendWrs.sendWithImm(id, imm, SendFlags.SIGNALED);
      },
      writeImm: (id, imm) => {
        this.#r!.sendWrs.writeWithImm(id, 0n, 0, imm, SendFlags.SIGNALED | SendFlags.INLINE);
      },
      postSends: () => {
        const r = this.#r!;
        r.sendWrs.post(r.qp);
      },
      recv: (id, idx) => {
        const r = this.#r!;
        r.recvWrs.add(id).sge(r.recvAddr[idx]!, this.config.bufSize, r.lkey);
      },
      postRecvs: () => {
        const r = this.#r!;
        r.recvWrs.post(r.qp);
      },
      postRdma: (c) => this.#postChunk(c),
      moveToRts: () => this.#toRts(),
      setTimer: (kind, ms) => {
        clearTimeout(this.#timers[kind]);
        const t = setTimeout(this.#onTimer, ms, kind);
        t.unref();
        this.#timers[kind] = t;
      },
      clearTimer: (kind) => {
        clearTimeout(this.#timers[kind]);
        this.#timers[kind] = undefined;
      },
      ready: () => this.#readyD.resolve(),
      finished: () => {
        // Inside a poll round the teardown waits for its end, so no completion is read from a freed CQ.
        if (!this.#inPoll) this.#teardown();
      },
      data: (chunk) => this.#h!.data(chunk),
      written: (n) => {
        this.#writtenOwed += n;
        this.#scheduleEmit();
      },
      drain: () => {
        this.#drainOwed = true;
        this.#scheduleEmit();
      },
      rdmaSettled: (c, err) => this.#chunkDone(c, err),
      checked: () => this.#checkDone(null),
    };
  }

  readonly #onTimer = (kind: CoreTimer): void => {
    this.#timers[kind] = undefined;
    this.#core.timerFired(kind);
  };

  get state(): IBSocketState {
    return this.#core.state;
  }

  get peer(): string {
    return this.#core.peer;
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
    return this.#core.diagnostics();
  }

  describe(): string {
    const l = this.#localInfo;
    const p = this.#peerInfo;
    const end = (i: IBConnectInfo | null) => (i ? `${i.devName}:${i.port}/qp${i.qpNum}` : '?');
    return `IBSocket(${end(l)} <-> ${end(p)} ${this.peer}, ${this.state})`;
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
    if (this.#core.closing) throw new SocketClosedError('connect on a closed IBSocket', { peer: this.peer });
    if (this.#connecting || this.state !== IBSocketState.INIT) throw new InvalidArgError(`IBSocket.connect called twice (state ${this.state})`);
    this.#connecting = true;
    const timeoutMs = opts.timeoutMs ?? defaults.RDMA_CONNECT_TIMEOUT_MS;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(new TimeoutError(`RDMA connect timed out after ${timeoutMs} ms`, { peer: this.peer })), timeoutMs);
    const outer = opts.signal;
    const offOuter = onAbort(outer, (cause) => ac.abort(new ConnectFailedError('RDMA connect aborted', { peer: this.peer, cause })));
    try {
      const query = parseQueryRsp(await race(call('query', {}, { signal: ac.signal }), ac.signal));
      this.#checkOpen();
      const devices = opts.devices ?? IBManager.devices;
      const local = localPortCandidates(devices);
      const sel = selectDevice(local, query.devices, opts.counter ?? Math.floor(Math.random() * 0x7fff_ffff), opts);
      if (!sel) {
        const l = local.map((p) => `${p.devName}:${p.port}(link ${p.linkLayer}, zones ${p.zones.join('|')})`).join(', ') || 'none';
        const r =
          query.devices.flatMap((d) => d.ports.map((p) => `${d.devName}:${p.port}(link ${p.linkLayer}, zones ${p.zones.join('|')})`)).join(', ') || 'none';
        throw new IBDeviceNotFoundError(`no local RDMA port can reach the server's ports: local [${l}], remote [${r}]`, { peer: this.peer });
      }
      const dev = devices.find((d) => d.id === sel.local.dev)!;
      this.#setup(dev, sel.local.port);
      this.#core.connecting();
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
      this.#core.rts();
      this.#core.probe();
      await race(this.ready, ac.signal);
      this.#checkOpen();
    } catch (e) {
      // The socket itself failed (e.g. the probe's completion was an error): that is the reason to report.
      if (this.#core.finished && this.#core.result) throw this.#core.result;
      if (this.#core.closing) {
        // close() was called meanwhile: that close proceeds (or is done), the connect just reports it.
        this.destroy();
        throw new SocketClosedError('IBSocket closed while connecting', { peer: this.peer });
      }
      const err = asFfnet(e, (cause) => new ConnectFailedError(`RDMA connect failed: ${String(cause)}`, { peer: this.peer, cause }));
      this.#core.fail(err);
      throw err;
    } finally {
      clearTimeout(timer);
      offOuter();
    }
  }

  #checkOpen(): void {
    if (this.#core.closing) throw new SocketClosedError('IBSocket closed while connecting', { peer: this.peer });
  }

  /** Server side (§4.2 step 4): adopt the client's config, create the QP, INIT, RTR, ACCEPTED. */
  #accept(req: IBConnectReq, dev: IBDevice, acceptTimeoutMs: number): void {
    this.#setup(dev, req.targetPort);
    try {
      this.#peerInfo = req;
      this.#toRtr();
    } catch (e) {
      this.#core.fail(asFfnet(e, (cause) => new SocketError('accept failed', { peer: this.peer, cause })));
      throw e;
    }
    this.#acceptDeadline = performance.now() + acceptTimeoutMs;
    this.#core.accepted(acceptTimeoutMs);
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
      // Each window may hold two send WRs (its bind and its invalidation) and produce two completions.
      const windowWrs = Math.min(2 * this.maxWindows, Math.max(0, dev.attr.maxQpWr - s.maxSendWr));
      const cq = dev.context.createCq({ cqe: Math.min(s.cqEntries + windowWrs, dev.attr.maxCqe), channel, eventAckBatch: c.eventAckBatch });
      undo.push(() => cq.destroy());
      const qp = dev.pd.createQp({
        sendCq: cq,
        maxSendWr: s.maxSendWr + windowWrs,
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
      const windowWrsBatch = new SendWorkRequests(1, 1);
      wrMem.push(windowWrsBatch);
      const sendAddr: bigint[] = [];
      const recvAddr: bigint[] = [];
      for (let i = 0; i < S; i++) sendAddr.push(buf.address + BigInt(i * c.bufSize));
      for (let i = 0; i < s.maxRecvWr; i++) recvAddr.push(buf.address + BigInt((S + i) * c.bufSize));
      qp.modifyToInit({ portNum, pkeyIndex: c.pkeyIndex });
      this.#r = { dev, port, channel, cq, qp, buf, lkey, sendAddr, recvAddr, sendWrs, recvWrs, rdmaWrs, winWrs: windowWrsBatch, wcs, watcher: null };
      // The core posts every receive buffer now, before the peer can send (RTR comes later on both sides).
      this.#core.attach(buf.buffer);
      cq.requestNotify();
      this.#r.watcher = watchFd(channel.fd, this.#onReadable, {
        label: `completion channel of ${this.peer}`,
        onError: (e) => this.#core.fail(new SocketError('completion channel failed', { peer: this.peer, cause: e })),
      });
    } catch (e) {
      this.#r = null;
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
    if (!this.#peerNamed) this.#core.peer = `${p.hostname} ${p.devName}:${p.port} qp ${p.qpNum}`;
    if (r.port.isRoCE !== (p.link.kind === 'roce')) {
      throw new InvalidArgError(`link layer mismatch: local ${r.dev.name}:${r.port.portNum} is ${r.port.isRoCE ? 'RoCE' : 'InfiniBand'}, the peer is not`, {
        peer: this.peer,
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
      ...(p.link.kind === 'roce' ? { dgid: p.link.gid, sgidIndex: r.port.gid!.index, hopLimit: 255, trafficClass: c.trafficClass } : { dlid: p.link.lid }),
    });
  }

  #toRts(): void {
    const c = this.config;
    this.#r!.qp.modifyToRts({ sqPsn: c.startPsn, timeout: c.timeout, retryCnt: c.retryCnt, rnrRetry: c.rnrRetry, maxRdAtomic: c.maxRdAtomic });
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
    this.#core.pause();
  }

  resume(): void {
    if (this.#h === null) return;
    if (this.#core.resume()) process.nextTick(pollTick, this);
  }

  /**
   * Copies `bufs` into send buffers and posts them, as far as credits allow; the rest is kept (by reference: do
   * not modify it) and sent as the peer acknowledges. Returns false when something is left over: wait for
   * drain(). Throws SocketClosedError / SocketError once closing or closed.
   */
  write(bufs: readonly Uint8Array[]): boolean {
    return this.#core.write(bufs);
  }

  /** Bytes accepted by write() but not yet copied into send buffers. */
  get pendingBytes(): number {
    return this.#core.pendingBytes;
  }

  /**
   * Graceful close: what was written is still sent, then a CLOSE immediate; resources are freed when it completes
   * (or after drainTimeoutMs), and the close handler gets no error, unless written data was still waiting for
   * credits at the drain deadline: then TimeoutError naming the peer. Idempotent.
   */
  end(): void {
    this.#core.end();
  }

  /** Close now: unsent data is dropped; the peer is told with a CLOSE immediate when the QP can still send. */
  destroy(): void {
    this.#core.destroy();
  }

  /** end(), then wait until the socket is closed. */
  async close(): Promise<void> {
    this.end();
    await this.closed;
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
    h?.close(this.#core.result);
  }

  // ───────────────────────────── completions ─────────────────────────────

  readonly #onReadable = (): void => {
    this.#poll(true);
  };

  #poll(fromEvent: boolean): void {
    const r = this.#r;
    const core = this.#core;
    if (r === null || core.finished) return;
    this.#inPoll = true;
    try {
      if (fromEvent) r.cq.consumeEvents();
      const wcs = r.wcs;
      for (;;) {
        const n = r.cq.poll(wcs, POLL_BATCH);
        for (let i = 0; i < n && !core.finished; i++) {
          const id = wcs.wrId(i);
          const type = wrIdType(id);
          if (type === WrType.WINDOW) this.#windowCompleted(id, wcs.status(i) === WcStatus.SUCCESS ? null : wcs.error(i, { peer: this.peer }));
          else if (wcs.status(i) !== WcStatus.SUCCESS) core.completionFailed(id, wcs.error(i, { peer: this.peer }));
          else if (type === WrType.RECV) core.completed(id, wcs.byteLen(i), wcs.hasImm(i) ? wcs.imm(i) : -1);
          else core.completed(id, 0, -1);
        }
        if (n < POLL_BATCH || core.finished) break;
      }
      core.progress();
    } catch (e) {
      core.fail(asFfnet(e, (cause) => new SocketError('completion handling failed', { peer: this.peer, cause })));
    } finally {
      this.#inPoll = false;
    }
    if (core.finished && !this.#torn) this.#teardown();
  }

  // ───────────────────────────── teardown ─────────────────────────────

  #teardown(): void {
    this.#torn = true;
    const err = this.#core.result;
    const reason = err ?? new SocketClosedError('IBSocket closed', { peer: this.peer });
    this.#readyD.reject(reason);
    this.#checkDone(reason);
    this.#core.settle(reason);
    this.#teardownAc.abort(reason);
    this.#release();
    this.#resolveClosed(err);
    process.nextTick(emitClose, this);
  }

  #release(): void {
    const r = this.#r;
    if (r === null) return;
    this.#r = null;
    r.watcher?.close();
    // Windows first: a bound type-2 window holds a reference on its QP. Dealloc also invalidates a bound one.
    for (const w of this.#windows.values()) {
      w.mw.dealloc();
      w.revoking?.resolve();
    }
    this.#windows.clear();
    for (const mw of this.#idleWindows.splice(0)) mw.dealloc();
    let qpGone = true;
    try {
      r.qp.modifyToError();
    } catch {
      // Destroying it below is what matters.
    }
    try {
      r.qp.destroy();
    } catch {
      // Recorded in qpGone: its buffers are then leaked on purpose below.
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
    r.winWrs.free();
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
    const core = this.#core;
    if (core.finished || core.closing) return Promise.reject(core.stateError('check'));
    if (core.state === IBSocketState.ACCEPTED && performance.now() > this.#acceptDeadline) {
      return Promise.reject(new SocketError('IBSocket still not connected after the accept timeout', { peer: this.peer }));
    }
    if (core.state !== IBSocketState.READY) return Promise.resolve();
    if (this.#check === null) {
      const d = deferred();
      const r = this.#r!;
      try {
        r.sendWrs.write(CHECK_ID, 0n, 0, SendFlags.SIGNALED | SendFlags.INLINE);
        r.sendWrs.post(r.qp);
      } catch (e) {
        const err = new SocketError('check failed to post', { peer: this.peer, cause: e });
        core.fail(err);
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

  // ───────────────────────────── exposed memory ─────────────────────────────

  /**
   * Exposes `buf` (its current range) to this socket's peer for one call: binds a type-2 memory window over it to
   * this QP, posted before anything written afterwards, so the request carrying `window.remote` can follow at once.
   * The buffer must be registered on this socket's device (RDMABuf memory is, once IBManager runs). Waits while
   * maxWindows windows are in use; SocketClosedError/SocketError once the socket is closing or closed.
   */
  async expose(buf: RDMABuf, opts: RDMAExposeOptions = {}): Promise<RDMAWindow> {
    const now = this.tryExpose(buf, opts.access);
    if (now !== null) return now;
    const closing = this.#teardownAc.signal;
    await this.#windowSlots.acquire(1, { signal: opts.signal ? AbortSignal.any([opts.signal, closing]) : closing });
    try {
      return this.#bind(buf, opts.access);
    } catch (e) {
      this.#windowSlots.release(1);
      throw e;
    }
  }

  /** expose() without waiting: null when all maxWindows windows are in use. */
  tryExpose(buf: RDMABuf, access: RDMAExposeAccess = 'readwrite'): RDMAWindow | null {
    this.#exposable(buf, access);
    if (!this.#windowSlots.tryAcquire(1)) return null;
    try {
      return this.#bind(buf, access);
    } catch (e) {
      this.#windowSlots.release(1);
      throw e;
    }
  }

  /** Windows bound or being invalidated now. */
  get windowsInUse(): number {
    return this.#windows.size;
  }

  #exposable(buf: RDMABuf, access: RDMAExposeAccess): void {
    const core = this.#core;
    if (core.closing || core.finished) throw core.stateError('expose');
    if (core.state !== IBSocketState.READY) throw new SocketError(`expose in state ${core.state}`, { peer: this.peer });
    if (WINDOW_ACCESS[access] === undefined) throw new InvalidArgError(`expose: access must be 'read', 'write' or 'readwrite', got ${String(access)}`);
    if (buf.length === 0) throw new InvalidArgError('expose: the buffer range is empty', { peer: this.peer });
    if (buf.mrPtr(this.#r!.dev.id) === undefined) {
      throw new InvalidArgError(`expose: the buffer is not registered on ${this.#r!.dev.name} (start IBManager before allocating it)`, { peer: this.peer });
    }
  }

  #bind(buf: RDMABuf, access: RDMAExposeAccess = 'readwrite'): RDMAWindow {
    this.#exposable(buf, access);
    const r = this.#r!;
    const mw = this.#idleWindows.pop() ?? r.dev.pd.allocMw();
    const id = this.#nextWindowId++;
    const rkey = mw.nextRkey();
    try {
      // Unsignaled: the SEND of the request follows on the same queue, and a failed bind still completes (in error).
      r.winWrs.bindMw(wrId(WrType.WINDOW, id), mw.ptr, rkey, buf.mrPtr(r.dev.id)!, buf.address, buf.length, WINDOW_ACCESS[access], 0).post(r.qp);
    } catch (e) {
      this.#idleWindows.push(mw);
      throw asFfnet(e, (cause) => new SocketError('binding a memory window failed', { peer: this.peer, cause }));
    }
    mw.rebound(rkey);
    const w = new RDMAWindow(this, mw, id, new RDMARemoteBuf(buf.address, buf.length, [{ rkey, devId: r.dev.id }]));
    this.#windows.set(id, w);
    return w;
  }

  #revoke(w: RDMAWindow): Promise<void> {
    if (w.revoking !== null) return w.revoking.promise;
    const d = deferred();
    w.revoking = d;
    const r = this.#r;
    if (r === null || this.#core.finished || !this.#windows.has(w.id)) {
      // The QP is gone (or going): teardown deallocated the window with it.
      d.resolve();
      return d.promise;
    }
    try {
      r.winWrs.localInv(wrId(WrType.WINDOW, w.id), w.mw.rkey, SendFlags.SIGNALED).post(r.qp);
    } catch (e) {
      // A queue that refuses work is broken: failing the socket tears the QP down, and the window with it.
      this.#core.fail(asFfnet(e, (cause) => new SocketError('invalidating a memory window failed', { peer: this.peer, cause })));
    }
    return d.promise;
  }

  /** A window's BIND_MW (only when it failed: binds are unsignaled) or LOCAL_INV completed. */
  #windowCompleted(id: number, err: WcError | null): void {
    if (err !== null) {
      // The QP is in error now (or being flushed by a close): the core decides which, and the teardown that follows
      // deallocates every window and settles their revokes.
      this.#core.completionFailed(id, err);
      return;
    }
    const w = this.#windows.get(wrIdValue(id));
    if (w === undefined || w.revoking === null) return;
    this.#windows.delete(w.id);
    this.#idleWindows.push(w.mw);
    this.#windowSlots.release(1);
    w.revoking.resolve();
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
    if (r === null || p === null || this.#core.finished)
      throw this.#core.finished ? this.#core.stateError('RDMA') : new SocketError('RDMA on an unconnected IBSocket', { peer: this.peer });
    return { devId: r.dev.id, peerDev: p.dev, maxSge: this.config.maxSge, maxMsgSz: r.port.attr.maxMsgSz };
  }

  #postRdma(req: RDMAReqBatch, opts: RDMAPostOptions): Promise<void> {
    const core = this.#core;
    if (core.closing || core.state !== IBSocketState.READY)
      return Promise.reject(core.closing ? core.stateError('RDMA') : new SocketError(`RDMA in state ${core.state}`, { peer: this.peer }));
    const n = req.wrCount;
    if (n === 0) return Promise.resolve();
    const signal = opts.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal.reason, 'RDMA'));
    const per = this.config.maxRdmaWrPerPost;
    return new Promise<void>((resolve, reject) => {
      const posts = Math.ceil(n / per);
      const batch: BatchState = {
        pending: posts,
        unposted: posts,
        untilPosted: opts.until === 'posted',
        error: null,
        resolve,
        reject,
        offAbort: null,
        onCompleted: opts.onCompleted,
      };
      const chunks: RdmaChunk[] = [];
      for (let start = 0; start < n; start += per) {
        chunks.push({ req, batch, start, count: Math.min(per, n - start), id: core.nextRdmaId() });
      }
      if (signal) {
        // Requests already posted cannot be recalled; the ones still waiting for the semaphore are dropped.
        batch.offAbort = onAbort(signal, (reason) => core.cancelRdma((c) => c.batch === batch, abortError(reason, 'RDMA')));
      }
      core.submitRdma(chunks);
    });
  }

  /** One post: a chain of `count` WRITEs or READs, only the last signaled (RDMA_LAST carries the post id). */
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
    // A refused post throws (the device layer sets `posted`); the core settles the chunk and decides what follows.
    wrs.post(r.qp);
    const b = c.batch;
    if (--b.unposted === 0 && b.untilPosted && b.error === null) {
      // Everything is on the send queue: work posted after this on the QP executes behind it (RC order). A failed
      // completion still fails the socket, which is what the peer sees instead of anything posted behind it.
      b.offAbort?.();
      b.offAbort = null;
      b.resolve();
    }
  }

  #chunkDone(c: RdmaChunk, err: FfnetError | null): void {
    const b = c.batch;
    if (err) b.error ??= err;
    if (--b.pending > 0) return;
    b.offAbort?.();
    b.onCompleted?.(b.error);
    // With `until: 'posted'` the promise may have resolved already; settling it again is a no-op.
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
