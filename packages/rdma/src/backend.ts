/**
 * The verbs backend: `rdma://host:port` connections are IBSockets (@ffnet/connect), set up by the IBConnect
 * handshake (service 11: `query`, then `connect`) carried in ordinary serde frames over a stream connection (the
 * channel: tcp() by default, or tls()) to the same host:port. The listener side listens with the channel on that
 * port and answers those frames with IBConnectServer, after the authenticator (if any) has accepted the peer;
 * with `acceptTcp`, a connection whose first frame is anything else is handed up as a plain channel socket (with
 * the bytes already read replayed), so one port serves rdma:// and tcp:// (or tls://) callers as an RDMA group
 * does in 3FS.
 */

import { componentLogger, defaults, type Logger, type Metrics, onAbort, Semaphore } from '@ffnet/common';
import { IBAcceptBudget, type IBConnectCall, IBConnectServer, IBConnectService, IBSocket, type IBSocketConfig } from '@ffnet/connect';
import { IBManager, verbsAvailable } from '@ffnet/device';
import {
  ConnectFailedError,
  decodeMessage,
  encodeMessage,
  errorFromCode,
  errResult,
  FfnetError,
  FrameDecoder,
  IBDeviceNotInitializedError,
  InvalidArgError,
  MessageFlags,
  type MessagePacket,
  type Metadata,
  okResult,
  type Result,
  SocketClosedError,
  StatusCode,
  TimeoutError,
} from '@ffnet/serde';
import type { Service } from '@ffnet/server';
import {
  type Address,
  type AuthRequest,
  type Backend,
  type BackendCapabilities,
  type BackendHandlers,
  type BackendListener,
  type BackendSocket,
  type ConnectionAuthenticator,
  type ConnectOptions,
  type Credentials,
  formatAddress,
  type ListenOptions,
  type PeerCertificate,
  type Principal,
  rdmaAddress,
  type Scheme,
  tcp,
  tcpAddress,
  tlsAddress,
} from '@ffnet/transport';
import { BackendSocketBase, isPrincipal, principalFresh } from '@ffnet/transport/internal';
import type { Waiter } from '@ffnet/worker';
import { type RDMAControlOptions, rdmaControlService, TransmissionLimiter } from './control.js';
import { feedRdmaMetrics } from './metrics.js';

export interface VerbsBackendOptions {
  /**
   * The stream backend the IBConnect handshake runs over, dialled and listened on at the rdma:// address's host
   * and port: `tcp()` (the default, as 3FS) or `tls({ key, cert, ca, ... })`. Over tls the client verifies the
   * server's certificate against the rdma:// host, mTLS works as with tls() alone, and accepted sockets report the
   * peer's certificate. TLS protects the handshake (QPNs, GIDs, buffer layout), not the RDMA traffic itself.
   */
  channel?: Backend;
  /** Client side: what connects prove themselves with when their ConnectOptions give no `credentials`. */
  credentials?: Credentials;
  /** Listener side: the handshake authenticator when the ListenOptions give no `authenticate`. */
  authenticate?: ConnectionAuthenticator;
  /**
   * Listener side: where refused and failed IBConnect handshakes are logged (warn, component `rdma`) when the
   * ListenOptions give no `logger` (a Server passes its own). Default: the process-wide logger.
   */
  logger?: Logger;
  /** IBSocket config of outgoing connections (the server adopts the client's). Default: 3FS defaults. */
  config?: Partial<IBSocketConfig>;
  /**
   * Client side: opt into RDMAControl (3FS enable_rdma_control). A Client dialling with this backend marks its
   * requests ControlRDMA and answers RDMAControl.apply, so servers RDMA-write into its memory for at most
   * `maxConcurrentTransmission` calls at once (default 64). Default off, as 3FS.
   */
  control?: RDMAControlOptions | boolean;
  /** Connect timeout when the caller gives none (default 5000 ms, 3FS rdma_connect_timeout). */
  connectTimeoutMs?: number;
  /**
   * Record the process's RDMA work requests (send, recv, one-sided) and credit stalls here, read at collection
   * (`ffnet_rdma_work_requests_total`, `ffnet_rdma_credit_stalls_total`); default none.
   */
  metrics?: Metrics;
  /** Connects in flight per address; more wait their turn (default 4, 3FS connect_concurrency_limiter). */
  maxConnectsPerAddress?: number;
  /** An accepted socket that has not seen the client's probe by then fails (default 15000, rdma_accept_timeout). */
  acceptTimeoutMs?: number;
  /**
   * Listener side: from TCP accept to a READY queue pair (default 5000 ms, HANDSHAKE_TIMEOUT_MS). A connection
   * that has not got there (sent nothing, stalled mid-handshake, never sent the probe) is closed and its QP
   * destroyed. With acceptTcp it also bounds how long a connection may take to send its first frame.
   */
  handshakeTimeoutMs?: number;
  /**
   * Listener side, across this backend's listeners: connections still in their handshake (default 64). Past it,
   * a new connection's IBConnect requests get ResourceExhaustedError and the connection is closed (a plain tcp://
   * caller on an acceptTcp port is not affected).
   */
  maxPendingHandshakes?: number;
  /** Listener side: QPs one handshake connection may ask for (default 1; each rdma:// connect uses its own). */
  maxQpsPerConnection?: number;
  /** Listener side, across this backend's listeners: QPs of accepted sockets alive at once (default 1024). */
  maxQps?: number;
  /** Listener side, across this backend's listeners: registered buffer bytes of accepted sockets (default 1 GiB). */
  maxPinnedBytes?: number;
  /** Listener side: one accepted socket's registered buffer block, from the client's config (default 64 MiB). */
  maxBufferBytes?: number;
  /** Listener side: largest sendBufCnt / maxRdmaWr a client's config may ask for (default 4096). */
  maxWorkRequests?: number;
}

/** Default VerbsBackendOptions.connectTimeoutMs: 3FS rdma_connect_timeout. */
export const DEFAULT_RDMA_CONNECT_TIMEOUT_MS = defaults.RDMA_CONNECT_TIMEOUT_MS;
/** What an rdma connection can do: one-sided RDMA, and it is not trusted after a call on it timed out (3FS closeIB). */
export const RDMA_CAPABILITIES: BackendCapabilities = Object.freeze({ oneSided: true, closeOnCallTimeout: true });

/** Default VerbsBackendOptions.handshakeTimeoutMs: TCP accept to a READY queue pair. */
export const HANDSHAKE_TIMEOUT_MS = defaults.RDMA_HANDSHAKE_TIMEOUT_MS;
/** Default VerbsBackendOptions.maxPendingHandshakes. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = defaults.RDMA_MAX_PENDING_HANDSHAKES;
/**
 * Largest frame a handshake connection may carry: IBConnect messages are a few hundred bytes. A larger first
 * frame on an acceptTcp port marks an ordinary TCP connection at once, so a sniffed connection holds at most this.
 */
const HANDSHAKE_MAX_MESSAGE = 64 * 1024;

/** What the listener side of a VerbsBackend has accepted and refused, across its listeners. */
export interface VerbsAcceptStats {
  /** Connections still in their handshake (counted against maxPendingHandshakes). */
  readonly pendingHandshakes: number;
  /** QPs of accepted sockets alive now. */
  readonly qps: number;
  /** Registered buffer bytes of those sockets. */
  readonly pinnedBytes: number;
  /** IBConnect requests refused with ResourceExhaustedError (a cap was reached), since the backend was made. */
  readonly refused: number;
  /** Handshake connections closed at the handshake deadline, since the backend was made. */
  readonly timedOut: number;
  /** Handshakes the authenticator refused (UnauthenticatedError, no QP made), since the backend was made. */
  readonly unauthenticated: number;
}

/** Shared by the handshake connections of one VerbsBackend's listeners. */
interface AcceptState {
  readonly budget: IBAcceptBudget;
  readonly acceptTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  readonly maxQpsPerConnection: number;
  readonly maxBufferBytes: number | undefined;
  readonly maxWorkRequests: number | undefined;
  pending: number;
  refused: number;
  timedOut: number;
  unauthenticated: number;
}

function positiveInt(name: string, v: number): number {
  if (!(Number.isSafeInteger(v) && v > 0)) throw new InvalidArgError(`VerbsBackend ${name} must be a positive integer, got ${v}`);
  return v;
}

const noop = (): void => {};

function reasonText(r: unknown): string {
  return r instanceof Error ? r.message : String(r);
}

/** The rdma:// name of a channel peer (`tcp://h:p` or `tls://h:p`). */
function rdmaString(channel: string): string {
  return channel.replace(/^(tcp|tls):/, 'rdma:');
}

/**
 * Whether this process can use RDMA now, and why not. Once IBManager has started, its devices decide;
 * before, libibverbs is probed (nothing is opened).
 */
function availability(): { ok: true } | { ok: false; reason: string } {
  if (IBManager.started) {
    return IBManager.devices.length > 0 ? { ok: true } : { ok: false, reason: 'no-devices: IBManager started without any usable RDMA device' };
  }
  const a = verbsAvailable();
  return a.available ? { ok: true } : { ok: false, reason: `${a.reason}: ${a.detail}` };
}

/** Opens the devices with IBManager's defaults if nobody started it; IBDeviceNotInitializedError when none is usable. */
function ensureDevices(what: string): void {
  const a = availability();
  if (!a.ok) throw new IBDeviceNotInitializedError(`${what}: RDMA is not available here (${a.reason})`);
  if (!IBManager.started) {
    try {
      IBManager.start();
    } catch (e) {
      throw new IBDeviceNotInitializedError(`${what}: opening the RDMA devices failed: ${reasonText(e)}`, { cause: e });
    }
  }
  if (IBManager.devices.length === 0) throw new IBDeviceNotInitializedError(`${what}: IBManager has no usable RDMA device`);
}

/**
 * Why an IBSocket was closed by us because its peer is gone (see watchPeer): reported instead of a clean close.
 */
const lostReasons = new WeakMap<IBSocket, FfnetError>();
/** The BackendSocket wrapping each IBSocket, so that watchPeer can report a lost peer at once. */
const adapters = new WeakMap<IBSocket, VerbsSocket>();

/** Grace after the handshake connection closes for the peer's CLOSE immediate (already in our CQ) to be seen. */
const PEER_GONE_GRACE_MS = 20;

/**
 * The handshake's TCP connection stays open for the IBSocket's lifetime as a liveness signal: a peer whose
 * process dies takes its QP with it silently (RC retries would only notice on our next send, after seconds), but
 * the kernel closes its TCP socket. A graceful close sends the CLOSE immediate before the TCP connection goes,
 * so a socket still READY shortly after the TCP close has lost its peer.
 */
function watchPeer(tcp: BackendSocket, ib: IBSocket, onTcpClose: (cb: () => void) => void): void {
  void ib.closed.then(() => tcp.destroy());
  onTcpClose(() => {
    setTimeout(() => {
      const st = ib.state;
      if (st === 'READY' || st === 'ACCEPTED' || st === 'CONNECTING') {
        const err = new SocketClosedError('the peer is gone (its connection for the RDMA handshake closed without an RDMA close)', { peer: ib.peer });
        lostReasons.set(ib, err);
        // The CLOSE sent by destroy() reaches no one: report now rather than after the drain timeout.
        adapters.get(ib)?.lost(err);
        ib.destroy();
      }
    }, PEER_GONE_GRACE_MS).unref();
  });
}

/** maxConnectsPerAddress: one FIFO Semaphore per address with connects running or waiting. */
class ConnectLimiter {
  readonly #max: number;
  /** Only addresses with a connect running or waiting have an entry, so the map is bounded by the connects. */
  readonly #slots = new Map<string, Semaphore>();
  constructor(max: number) {
    this.#max = max;
  }

  acquire(key: string, signal: AbortSignal): Promise<void> {
    let s = this.#slots.get(key);
    if (s === undefined) {
      s = new Semaphore(this.#max, { name: `connects to ${key}` });
      this.#slots.set(key, s);
    }
    const sem = s;
    return sem.acquire(1, { signal, peer: key }).catch((e: unknown) => {
      this.#forget(key, sem);
      throw e;
    });
  }

  release(key: string): void {
    const s = this.#slots.get(key)!;
    s.release(1);
    this.#forget(key, s);
  }

  #forget(key: string, s: Semaphore): void {
    if (s.used === 0 && s.waiting === 0 && this.#slots.get(key) === s) this.#slots.delete(key);
  }
}

/**
 * An IBSocket behind the BackendSocket contract. Two differences are bridged here: a peer's CLOSE reaches the
 * IBSocket as SocketClosedError but is a clean EOF for the Transport (which then says whether it cut a frame),
 * and IBSocket.write throws once closing while the backend contract drops the data (the close report follows).
 */
class VerbsSocket extends BackendSocketBase {
  readonly scheme = 'rdma' as const;
  readonly capabilities = RDMA_CAPABILITIES;
  /** The underlying socket, for one-sided RDMA on this connection. */
  readonly ib: IBSocket;
  private readonly certificate: PeerCertificate | undefined;
  private readonly authenticated: Principal | undefined;

  /** `certificate`: what the handshake channel verified of the peer; `principal`: what the authenticator returned. */
  constructor(ib: IBSocket, remote: Address, peer: string, local: string, certificate?: PeerCertificate, principal?: Principal) {
    super(remote, peer, local);
    this.ib = ib;
    this.certificate = certificate;
    this.authenticated = principal;
    adapters.set(ib, this);
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.certificate;
  }

  principal(): Principal | undefined {
    return this.authenticated;
  }

  protected attach(h: BackendHandlers): boolean {
    this.ib.setHandlers({ data: h.data, drain: h.drain, written: h.written, close: this.#onClose });
    // An IBSocket reads by itself once it has handlers; a pause() before this already reached it.
    return false;
  }

  /** The peer is gone: report the close now; the IBSocket's own close (after its teardown) is then ignored. */
  lost(err: FfnetError): void {
    if (this.handlers !== undefined) this.reportClose(err);
  }

  readonly #onClose = (err?: FfnetError): void => {
    this.reportClose(err?.code === StatusCode.SocketClosed ? undefined : (err ?? lostReasons.get(this.ib)));
  };

  write(bufs: readonly Uint8Array[]): boolean {
    if (bufs.length === 0) throw new InvalidArgError('write() needs at least one buffer');
    try {
      return this.ib.write(bufs);
    } catch {
      // Only a socket that is closing or closed throws here, and its close (with the reason) reaches the Transport
      // through #onClose; false holds further writes until then.
      return false;
    }
  }

  protected pauseSource(): void {
    this.ib.pause();
  }

  protected resumeSource(): void {
    this.ib.resume();
  }

  end(): void {
    this.ib.end();
  }

  destroy(): void {
    this.ib.destroy();
  }
}

/**
 * The client half of the handshake: `call` over one channel socket, serde frames both ways. `metadata` (the
 * caller's credentials) goes with every request, so the listener can authenticate whichever it sees first.
 */
export class HandshakeClient {
  readonly #sock: BackendSocket;
  readonly #peer: string;
  readonly #metadata: Metadata | undefined;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  readonly #decoder: FrameDecoder;
  #uuid = 0;
  #error: FfnetError | undefined;
  #onClosed: (() => void) | undefined;
  #closed = false;

  /** Runs `cb` once the TCP connection has closed (now, if it already has). */
  onClose = (cb: () => void): void => {
    if (this.#closed) cb();
    else this.#onClosed = cb;
  };

  constructor(sock: BackendSocket, peer: string, metadata?: Metadata) {
    this.#sock = sock;
    this.#peer = peer;
    this.#metadata = metadata;
    this.#decoder = new FrameDecoder(this.#onFrame, { peer });
    sock.setHandlers({
      data: (chunk) => {
        try {
          this.#decoder.push(chunk);
        } catch (e) {
          this.#failAll(e as FfnetError);
          sock.destroy();
        }
      },
      drain: noop,
      written: noop,
      close: (err) => {
        this.#closed = true;
        this.#failAll(err ?? new ConnectFailedError('the server closed the handshake connection', { peer }));
        this.#onClosed?.();
      },
    });
  }

  readonly call: IBConnectCall = (method, req, opts) => {
    if (this.#error) return Promise.reject(this.#error);
    const uuid = ++this.#uuid;
    const pkt: MessagePacket = {
      uuid,
      serviceId: IBConnectService.id,
      methodId: IBConnectService.methods[method].id,
      flags: MessageFlags.IsReq,
      version: 0,
      timeoutMs: 0,
      payload: req,
      metadata: this.#metadata,
    };
    return new Promise<unknown>((resolve, reject) => {
      if (opts.signal.aborted) return reject(opts.signal.reason);
      const off = onAbort(opts.signal, (reason) => {
        this.#waiting.delete(uuid);
        reject(reason);
      });
      this.#waiting.set(uuid, {
        resolve: (v) => {
          off();
          resolve(v);
        },
        reject: (e) => {
          off();
          reject(e);
        },
      });
      this.#sock.write([encodeMessage(pkt)]);
    });
  };

  readonly #onFrame = (body: Buffer, compressed: boolean): void => {
    const pkt = decodeMessage(body, compressed, { peer: this.#peer });
    const w = this.#waiting.get(pkt.uuid);
    if (!w) return;
    this.#waiting.delete(pkt.uuid);
    const r = pkt.payload as Result<unknown>;
    if (r.ok) w.resolve(r.value);
    else w.reject(errorFromCode(r.code, `IBConnect ${pkt.methodId === 1 ? 'query' : 'connect'} refused: ${r.message}`, { peer: this.#peer }));
  };

  #failAll(err: FfnetError): void {
    this.#error ??= err;
    for (const w of this.#waiting.values()) w.reject(err);
    this.#waiting.clear();
  }
}

/**
 * A channel connection (tcp, or tls with its certificate) handed up after its first bytes were read to tell it
 * apart from a handshake: replays them, then passes the socket's own events through. A close that comes during
 * the replay is reported after it.
 */
class ReplaySocket extends BackendSocketBase {
  readonly scheme: Scheme;
  readonly #inner: BackendSocket;
  #chunks: Buffer[];
  #replaying = true;

  constructor(inner: BackendSocket, chunks: Buffer[]) {
    super(inner.remote, inner.peer, inner.local);
    this.scheme = inner.scheme;
    this.#inner = inner;
    this.#chunks = chunks;
    // Nothing new is read until the replay is done, so chunks stay in order.
    inner.pause();
  }

  protected attach(): boolean {
    process.nextTick(this.#replay);
    return false;
  }

  protected override holdClose(): boolean {
    return this.#replaying;
  }

  peerCertificate(): PeerCertificate | undefined {
    return this.#inner.peerCertificate?.();
  }

  readonly #replay = (): void => {
    const h = this.handlers!;
    while (this.#chunks.length > 0 && !this.paused) h.data(this.#chunks.shift()!);
    if (this.#chunks.length > 0) return;
    this.#replaying = false;
    if (this.closeKnown) this.flushClose();
    else if (!this.paused) this.#inner.resume();
  };

  // Events of the inner socket, routed here by the Incoming that owns its handlers.
  data(chunk: Buffer): void {
    this.handlers!.data(chunk);
  }
  drain(): void {
    this.handlers?.drain();
  }
  written(): void {
    this.handlers?.written();
  }
  close(err: FfnetError | undefined): void {
    this.reportClose(err);
  }

  write(bufs: readonly Uint8Array[]): boolean {
    return this.#inner.write(bufs);
  }

  protected pauseSource(): void {
    this.#inner.pause();
  }

  protected resumeSource(): void {
    if (this.#replaying) process.nextTick(this.#replay);
    else this.#inner.resume();
  }

  end(): void {
    this.#inner.end();
  }

  destroy(): void {
    this.#inner.destroy();
  }
}

/**
 * One channel connection to an rdma listener: a handshake, or (with acceptTcp) an ordinary connection. A
 * handshake holds a pending slot and runs against a deadline until its QP is READY; it may create at most
 * maxQpsPerConnection QPs, within the backend's budget, every cap checked before anything is allocated. With an
 * authenticator, its first IBConnect request (query or connect) waits for the authenticator's verdict, which
 * covers the connection: no query is answered and no QP made for a peer it has not accepted.
 */
class Incoming {
  readonly #sock: BackendSocket;
  readonly #server: IBConnectServer;
  readonly #state: AcceptState;
  readonly #acceptTcp: boolean;
  #tcpClosed: (() => void) | undefined;
  readonly #onTcp: (s: BackendSocket) => void;
  #mode: 'sniff' | 'ib' | 'tcp' = 'sniff';
  #chunks: Buffer[] = [];
  #replay: ReplaySocket | undefined;
  readonly #decoder: FrameDecoder;
  /** Holds one of the maxPendingHandshakes slots (until the handshake is done). */
  #counted: boolean;
  /** Arrived with every pending slot taken: its IBConnect requests are refused. */
  readonly #overCap: boolean;
  #deadline: NodeJS.Timeout | undefined;
  /** The QP accepted on this connection, until it is READY. */
  #accepting: IBSocket | undefined;
  /** Reading was paused because the peer does not read our answers. */
  #writeBlocked = false;
  readonly #authenticate: ConnectionAuthenticator | undefined;
  /** none: not asked yet; pending: the authenticator runs (requests wait); refused: nothing more is answered. */
  #auth: 'none' | 'pending' | 'ok' | 'refused';
  /** Requests that arrived while the authenticator ran, answered in order once it accepted. */
  #held: MessagePacket[] = [];
  #authAbort: AbortController | undefined;
  #principal: Principal | undefined;
  /** Read once: the channel's verified peer certificate (tls), shown to the authenticator and the socket. */
  readonly #certificate: PeerCertificate | undefined;
  #gone = false;
  readonly #log: Logger;

  constructor(
    sock: BackendSocket,
    state: AcceptState,
    acceptTcp: boolean,
    authenticate: ConnectionAuthenticator | undefined,
    onTcp: (s: BackendSocket) => void,
    onIB: (ib: IBSocket, certificate: PeerCertificate | undefined, principal: Principal | undefined) => void,
    log: Logger,
  ) {
    this.#sock = sock;
    this.#log = log;
    this.#state = state;
    this.#authenticate = authenticate;
    this.#auth = authenticate === undefined ? 'ok' : 'none';
    this.#certificate = sock.peerCertificate?.();
    this.#counted = state.pending < state.maxPendingHandshakes;
    this.#overCap = !this.#counted;
    if (this.#counted) state.pending++;
    // One per connection, so the accepted IBSocket is tied to this channel connection (its liveness signal).
    this.#server = new IBConnectServer({
      acceptTimeoutMs: state.acceptTimeoutMs,
      budget: state.budget,
      maxQps: state.maxQpsPerConnection,
      ...(state.maxBufferBytes === undefined ? {} : { maxBufferBytes: state.maxBufferBytes }),
      ...(state.maxWorkRequests === undefined ? {} : { maxWorkRequests: state.maxWorkRequests }),
      onSocket: (ib) => {
        watchPeer(sock, ib, (cb) => {
          this.#tcpClosed = cb;
        });
        if (this.#accepting === undefined) {
          this.#accepting = ib;
          ib.ready.then(this.#handshakeDone, noop);
        }
        onIB(ib, this.#certificate, this.#principal);
      },
    });
    this.#acceptTcp = acceptTcp;
    this.#onTcp = onTcp;
    this.#decoder = new FrameDecoder(this.#onFrame, { peer: sock.peer, maxMessageSize: HANDSHAKE_MAX_MESSAGE });
    this.#deadline = setTimeout(this.#onDeadline, state.handshakeTimeoutMs);
    this.#deadline.unref?.();
    sock.setHandlers({
      data: this.#onData,
      drain: () => {
        if (this.#writeBlocked) {
          this.#writeBlocked = false;
          if (this.#auth !== 'pending') sock.resume();
        }
        this.#replay?.drain();
      },
      written: () => this.#replay?.written(),
      close: (err) => {
        this.#gone = true;
        this.#authAbort?.abort(new SocketClosedError('the handshake connection closed', { peer: sock.peer }));
        this.#handshakeDone();
        this.#replay?.close(err);
        this.#tcpClosed?.();
      },
    });
  }

  /** Connected (READY), handed up as TCP, or closed: the pending slot and the deadline are released. */
  readonly #handshakeDone = (): void => {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    this.#accepting = undefined;
    if (this.#counted) {
      this.#counted = false;
      this.#state.pending--;
    }
  };

  readonly #onDeadline = (): void => {
    if (this.#deadline === undefined) return;
    // A refused connection that is still open only waits for its peer to take the answer: not a timeout.
    if (this.#auth !== 'refused') {
      this.#state.timedOut++;
      if (this.#log.isLevelEnabled('warn')) {
        this.#log.warn(
          { peer: this.#sock.peer, timeoutMs: this.#state.handshakeTimeoutMs, stage: this.#auth === 'pending' ? 'authenticating' : this.#mode },
          'rdma handshake timed out, closing',
        );
      }
    }
    this.#gone = true;
    this.#authAbort?.abort(new TimeoutError(`the RDMA handshake deadline (${this.#state.handshakeTimeoutMs} ms) passed`, { peer: this.#sock.peer }));
    const ib = this.#accepting;
    this.#handshakeDone();
    // Not READY by now: its QP and buffers go, and so does the connection (the peer sees it close).
    ib?.destroy();
    this.#sock.destroy();
  };

  readonly #onData = (chunk: Buffer): void => {
    if (this.#replay) {
      this.#replay.data(chunk);
      return;
    }
    if (this.#mode === 'sniff' && this.#acceptTcp) this.#chunks.push(chunk);
    try {
      this.#decoder.push(chunk);
    } catch (e) {
      // Not a well-formed handshake. A TCP caller's Transport re-reads the same bytes and reports the error itself.
      if (this.#mode === 'sniff' && this.#acceptTcp) this.#mode = 'tcp';
      else {
        if (this.#log.isLevelEnabled('warn')) this.#log.warn({ peer: this.#sock.peer, err: e }, 'rdma handshake: malformed frame, closing');
        this.#sock.destroy();
      }
    }
    if (this.#mode === 'tcp' && !this.#replay) {
      this.#handshakeDone();
      this.#replay = new ReplaySocket(this.#sock, this.#chunks);
      this.#chunks = [];
      this.#onTcp(this.#replay);
    }
  };

  readonly #onFrame = (body: Buffer, compressed: boolean): void => {
    if (this.#mode === 'tcp' || this.#auth === 'refused') return;
    const pkt = decodeMessage(body, compressed, { peer: this.#sock.peer });
    const isHandshake = pkt.serviceId === IBConnectService.id && (pkt.flags & MessageFlags.IsReq) !== 0;
    if (this.#mode === 'sniff') {
      if (!isHandshake && this.#acceptTcp) {
        this.#mode = 'tcp';
        return;
      }
      this.#mode = 'ib';
      this.#chunks = [];
    }
    if (this.#auth === 'ok' || this.#overCap) {
      this.#answer(pkt);
    } else if (this.#auth === 'pending') {
      // Reading is paused, so only what the last chunk already held lands here; a peer that keeps pipelining
      // past a few requests is not running our handshake.
      if (this.#held.length >= 4) {
        if (this.#log.isLevelEnabled('warn')) this.#log.warn({ peer: this.#sock.peer }, 'rdma handshake: requests pipelined during authentication, closing');
        this.#sock.destroy();
      } else this.#held.push(pkt);
    } else {
      this.#authenticateFirst(pkt);
    }
  };

  /** Runs the authenticator on the first request's metadata and the channel's certificate; requests wait meanwhile. */
  #authenticateFirst(first: MessagePacket): void {
    this.#auth = 'pending';
    this.#held.push(first);
    this.#sock.pause();
    const ac = new AbortController();
    this.#authAbort = ac;
    const req: AuthRequest = {
      scheme: 'rdma',
      peer: rdmaString(this.#sock.peer),
      ...(this.#certificate === undefined ? {} : { certificate: this.#certificate }),
      ...(first.metadata === undefined ? {} : { metadata: first.metadata }),
    };
    let verdict: Principal | undefined | Promise<Principal | undefined>;
    try {
      verdict = this.#authenticate!(req, { signal: ac.signal });
    } catch (e) {
      // A throw is a refusal (#authDone logs it); its kind only, as its message may quote the token.
      this.#refusedBy(e);
      verdict = undefined;
    }
    Promise.resolve(verdict).then(this.#authDone, (e: unknown) => {
      this.#refusedBy(e);
      this.#authDone(undefined);
    });
  }

  #refusedBy(e: unknown): void {
    if (this.#log.isLevelEnabled('debug'))
      this.#log.debug({ peer: this.#sock.peer, cause: e instanceof Error ? e.name : typeof e }, 'rdma handshake authenticator threw');
  }

  readonly #authDone = (p: Principal | undefined): void => {
    this.#authAbort = undefined;
    if (this.#gone) return;
    const held = this.#held;
    this.#held = [];
    // A principal already past its expiry cannot be re-checked on this connection later: refused now.
    if (!isPrincipal(p) || !principalFresh(p)) {
      this.#auth = 'refused';
      this.#state.unauthenticated++;
      // Its slot goes now; the deadline stays, for a peer that does not take the answer and close.
      if (this.#counted) {
        this.#counted = false;
        this.#state.pending--;
      }
      // No detail: what the authenticator disliked is not the peer's business. Then the connection closes.
      if (this.#log.isLevelEnabled('warn'))
        this.#log.warn({ peer: this.#sock.peer, code: StatusCode.Unauthenticated }, 'rdma handshake refused: unauthenticated');
      const first = held[0]!;
      this.#sock.write([this.#response(first, errResult(StatusCode.Unauthenticated, 'unauthenticated'))]);
      this.#sock.end();
      return;
    }
    this.#principal = p;
    this.#auth = 'ok';
    for (const pkt of held) {
      if (this.#gone || this.#auth !== 'ok') return;
      this.#answer(pkt);
    }
    if (!this.#writeBlocked && !this.#gone) this.#sock.resume();
  };

  #response(pkt: MessagePacket, result: Result<unknown>): Buffer {
    return encodeMessage({ uuid: pkt.uuid, serviceId: pkt.serviceId, methodId: pkt.methodId, flags: 0, version: pkt.version, timeoutMs: 0, payload: result });
  }

  #answer(pkt: MessagePacket): void {
    const isHandshake = pkt.serviceId === IBConnectService.id && (pkt.flags & MessageFlags.IsReq) !== 0;
    let result: Result<unknown>;
    let last = false;
    if (!isHandshake) {
      result = errResult(StatusCode.InvalidMethodID, `this connection carries only IBConnect (service ${IBConnectService.id}) requests`);
    } else if (this.#overCap) {
      // Closed once the answer is out: it holds no slot, so it must not linger.
      this.#state.refused++;
      const max = this.#state.maxPendingHandshakes;
      if (this.#log.isLevelEnabled('warn')) this.#log.warn({ peer: this.#sock.peer, maxPendingHandshakes: max }, 'rdma handshake refused: too many pending');
      result = errResult(StatusCode.ResourceExhausted, `${max} RDMA handshakes are pending, the server-wide cap (maxPendingHandshakes) is ${max}`);
      last = true;
    } else {
      try {
        if (pkt.methodId === IBConnectService.methods.query.id) result = okResult(this.#server.query());
        else if (pkt.methodId === IBConnectService.methods.connect.id)
          result = okResult(this.#server.connect(pkt.payload, { peer: rdmaString(this.#sock.peer) }));
        else result = errResult(StatusCode.InvalidMethodID, `IBConnect has no method ${pkt.methodId}`);
      } catch (e) {
        // The reason, not the message: the dialling side names the peer itself when it rebuilds the error.
        const code = (e as { code?: unknown }).code;
        if (code === StatusCode.ResourceExhausted) this.#state.refused++;
        if (this.#log.isLevelEnabled('warn')) this.#log.warn({ peer: this.#sock.peer, method: pkt.methodId, err: e }, 'rdma handshake request failed');
        result = errResult(typeof code === 'number' && code > 0 ? code : StatusCode.Unknown, FfnetError.is(e) ? e.reason : reasonText(e));
      }
    }
    const more = this.#sock.write([this.#response(pkt, result)]);
    if (last) {
      this.#sock.end();
    } else if (!more && !this.#writeBlocked) {
      // A peer that sends requests without reading the answers stops being read: our queue stays bounded.
      this.#writeBlocked = true;
      this.#sock.pause();
    }
  }
}

/**
 * For host tests only (not exported by the package): listen() without opening RDMA devices, so the handshake's
 * channel, authentication and framing can be exercised where no device exists (a connect request then fails at
 * the device lookup, after authentication).
 */
export let listenWithoutDevices: (b: VerbsBackend, addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void) => Promise<BackendListener>;

/**
 * The verbs backend. Make one with rdma(opts) and pass it in `backends` (Client, Server, IOWorker, Listener,
 * Transport.connect). It is also what a Client asks for its RDMAControl half (`requestFlags`, `clientServices`),
 * so server and worker never import this package.
 */
export class VerbsBackend implements Backend {
  readonly scheme = 'rdma' as const;
  readonly capabilities = RDMA_CAPABILITIES;
  readonly connectTimeoutMs: number;
  /** RDMAControl slots of the Clients using this backend, when `control` was asked for (shared by those Clients). */
  readonly transmissions: TransmissionLimiter | undefined;
  /** ControlRDMA on every request of a Client using this backend, when `control` was asked for. */
  readonly requestFlags: number;
  readonly #config: Partial<IBSocketConfig> | undefined;
  /** Where the handshake runs; its own connect timeout is not used (the rdma connect's timer bounds it). */
  readonly #channel: Backend;
  readonly #credentials: Credentials | undefined;
  readonly #authenticate: ConnectionAuthenticator | undefined;
  readonly #logger: Logger | undefined;
  readonly #limiter: ConnectLimiter;
  readonly #counters = new Map<string, number>();
  readonly #accept: AcceptState;

  static {
    listenWithoutDevices = (b, addr, opts, onSocket) => b.#listen(addr, opts, onSocket);
  }

  constructor(opts: VerbsBackendOptions = {}) {
    this.#config = opts.config;
    if (opts.metrics !== undefined) feedRdmaMetrics(opts.metrics);
    const ch = opts.channel ?? tcp({ connectTimeoutMs: 0 });
    if (ch.scheme !== 'tcp' && ch.scheme !== 'tls') {
      throw new InvalidArgError(`VerbsBackend channel must be a tcp() or tls() backend, got a '${ch.scheme}' backend`);
    }
    this.#channel = ch;
    this.#credentials = opts.credentials;
    this.#authenticate = opts.authenticate;
    this.#logger = opts.logger;
    this.connectTimeoutMs = positiveInt('connectTimeoutMs', opts.connectTimeoutMs ?? DEFAULT_RDMA_CONNECT_TIMEOUT_MS);
    const rc = opts.control;
    this.transmissions = rc === undefined || rc === false ? undefined : new TransmissionLimiter(rc === true ? undefined : rc.maxConcurrentTransmission);
    this.requestFlags = this.transmissions === undefined ? 0 : MessageFlags.ControlRDMA;
    this.#limiter = new ConnectLimiter(opts.maxConnectsPerAddress ?? 4);
    this.#accept = {
      budget: new IBAcceptBudget({
        ...(opts.maxQps === undefined ? {} : { maxQps: opts.maxQps }),
        ...(opts.maxPinnedBytes === undefined ? {} : { maxPinnedBytes: opts.maxPinnedBytes }),
      }),
      acceptTimeoutMs: opts.acceptTimeoutMs ?? defaults.RDMA_ACCEPT_TIMEOUT_MS,
      handshakeTimeoutMs: positiveInt('handshakeTimeoutMs', opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS),
      maxPendingHandshakes: positiveInt('maxPendingHandshakes', opts.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES),
      maxQpsPerConnection: positiveInt('maxQpsPerConnection', opts.maxQpsPerConnection ?? 1),
      maxBufferBytes: opts.maxBufferBytes,
      maxWorkRequests: opts.maxWorkRequests,
      pending: 0,
      refused: 0,
      timedOut: 0,
      unauthenticated: 0,
    };
  }

  /** The listener side's caps in use and what they refused (across every listener of this backend). */
  acceptStats(): VerbsAcceptStats {
    const a = this.#accept;
    return {
      pendingHandshakes: a.pending,
      qps: a.budget.qps,
      pinnedBytes: a.budget.pinnedBytes,
      refused: a.refused,
      timedOut: a.timedOut,
      unauthenticated: a.unauthenticated,
    };
  }

  available(): { ok: true } | { ok: false; reason: string; error: FfnetError } {
    const a = availability();
    if (a.ok) return a;
    return { ...a, error: new IBDeviceNotInitializedError(`rdma:// cannot be used: ${a.reason}. Use tcp:// or unix:// instead`) };
  }

  /** ClientExtension (@ffnet/server): the RDMAControl service a Client answers when `control` is on. */
  clientServices(client: { readonly waiter: Waiter }): readonly Service[] {
    return this.transmissions === undefined ? [] : [rdmaControlService(client.waiter, this.transmissions)];
  }

  async connect(addr: Address, opts: ConnectOptions = {}): Promise<BackendSocket> {
    const peer = formatAddress(addr);
    const user = opts.signal;
    if (user?.aborted) throw new ConnectFailedError(`connect aborted: ${reasonText(user.reason)}`, { peer, cause: user.reason });
    ensureDevices(`connect to ${peer}`);
    const ac = new AbortController();
    const offUser = onAbort(user, (cause) => ac.abort(new ConnectFailedError(`connect aborted: ${reasonText(cause)}`, { peer, cause })));
    let timer: NodeJS.Timeout | undefined;
    let acquired = false;
    let tcp: BackendSocket | undefined;
    const creds = opts.credentials ?? this.#credentials;
    try {
      await this.#limiter.acquire(peer, ac.signal);
      acquired = true;
      // The timeout covers the connect itself, not the wait for a slot (which other connects' timeouts bound).
      const timeoutMs = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? opts.timeoutMs : this.connectTimeoutMs;
      timer = setTimeout(() => ac.abort(new TimeoutError(`connect timed out after ${timeoutMs} ms`, { peer })), timeoutMs);
      // Before the channel: no connection is held open while a token is fetched.
      const metadata = creds === undefined ? undefined : await credentialsMetadata(creds, peer, ac.signal);
      tcp = await this.#channel.connect(channelAddress(this.#channel.scheme, addr), { signal: ac.signal, timeoutMs: 0 }).catch((e: unknown) => {
        throw channelError(e, peer);
      });
      const hs = new HandshakeClient(tcp, peer, metadata);
      const counter = (this.#counters.get(peer) ?? Math.floor(Math.random() * 0x7fff_ffff)) + 1;
      this.#counters.set(peer, counter & 0x7fff_ffff);
      const ib = new IBSocket({ config: this.#config, peer });
      // The IBSocket's own timer is a backstop only: ours (above) decides, so both errors name the same limit.
      await ib.connect(hs.call, { signal: ac.signal, timeoutMs: timeoutMs + 1000, counter });
      const sock = new VerbsSocket(ib, addr, peer, rdmaString(tcp.local), tcp.peerCertificate?.());
      watchPeer(tcp, ib, hs.onClose);
      tcp = undefined;
      return sock;
    } catch (e) {
      if (ac.signal.aborted) throw ac.signal.reason;
      const err = e as FfnetError;
      // The server refused what we sent (the channel itself was fine): a cached token must not be offered again.
      if (err.code === StatusCode.Unauthenticated && tcp !== undefined) creds?.invalidate?.();
      if (err.code === StatusCode.ConnectFailed || err.code === StatusCode.Timeout) {
        throw new ConnectFailedError(`connect failed: ${FfnetError.is(e) ? e.reason : err.message}`, { peer, cause: e });
      }
      // Under TLS 1.3 a refused client certificate shows up as the channel closing mid-handshake.
      throw channelError(e, peer);
    } finally {
      clearTimeout(timer);
      offUser();
      tcp?.destroy();
      if (acquired) this.#limiter.release(peer);
    }
  }

  async listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener> {
    ensureDevices(`listen on ${formatAddress(addr)}`);
    return this.#listen(addr, opts, onSocket);
  }

  async #listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener> {
    const acceptTcp = opts.acceptTcp ?? false;
    const authenticate = opts.authenticate ?? this.#authenticate;
    const state = this.#accept;
    const accepted = (ib: IBSocket, certificate: PeerCertificate | undefined, principal: Principal | undefined): void => {
      const [host, port] = splitPeer(ib.peer);
      // Handed up only once READY: before that the socket can neither send nor close towards the peer.
      ib.ready.then(
        () => onSocket(new VerbsSocket(ib, rdmaAddress(host, port), ib.peer, formatAddress(bound), certificate, principal)),
        noop, // failed before READY (accept timeout, peer gone): it has closed itself
      );
    };
    // The channel authenticates nothing itself: the handshake's authenticator is ours to run.
    const { acceptTcp: _, authenticate: _a, ...channelOpts } = opts;
    const log = componentLogger('rdma', opts.logger ?? this.#logger);
    const listener = await this.#channel.listen(channelAddress(this.#channel.scheme, addr), channelOpts, (sock) => {
      new Incoming(sock, state, acceptTcp, authenticate, onSocket, accepted, log);
    });
    const bound = rdmaAddress(addr.host, listener.address.port);
    return { address: bound, close: () => listener.close() };
  }
}

/** The credentials' metadata; a provider that fails with something untyped fails the connect, naming it. */
async function credentialsMetadata(creds: Credentials, peer: string, signal: AbortSignal): Promise<Metadata> {
  try {
    return await creds.metadata({ peer, signal });
  } catch (e) {
    if (FfnetError.is(e) || signal.aborted) throw e;
    throw new ConnectFailedError(`the credentials provider failed: ${reasonText(e)}`, { peer, cause: e });
  }
}

/** The channel's address for an rdma:// one: same host and port. */
function channelAddress(scheme: string, addr: Address): Address {
  return scheme === 'tls' ? tlsAddress(addr.host, addr.port) : tcpAddress(addr.host, addr.port);
}

/**
 * A channel connect failure as the rdma connect reports it: a TLS verdict (server not authenticated, client
 * certificate refused) keeps its class and names the rdma:// peer; the rest is handled as any connect failure.
 */
function channelError(e: unknown, peer: string): unknown {
  if (!FfnetError.is(e) || e.peer === peer) return e;
  if (e.code !== StatusCode.Unauthenticated && e.code !== StatusCode.PermissionDenied) return e;
  return errorFromCode(e.code, `handshake channel: ${e.reason}`, { peer, cause: e });
}

/** The IBSocket under an rdma BackendSocket (for one-sided RDMA on that connection), else undefined. */
export function ibSocketOf(sock: BackendSocket): IBSocket | undefined {
  return sock instanceof VerbsSocket ? sock.ib : undefined;
}

/** Host and port of a 'rdma://host:port' / 'rdma://[v6]:port' peer string. */
function splitPeer(peer: string): [string, number] {
  const m = /^[a-z]+:\/\/\[?([^\]]*?)\]?:(\d+)/.exec(peer);
  return m ? [m[1]!, Number(m[2])] : ['0.0.0.0', 0];
}

/**
 * A verbs backend for rdma:// (3FS defaults unless `opts` say otherwise). Each call makes a new one with its own
 * connect limiter, handshake caps and RDMAControl slots: pass the same one to whatever should share them.
 */
export function rdma(opts: VerbsBackendOptions = {}): VerbsBackend {
  return new VerbsBackend(opts);
}
