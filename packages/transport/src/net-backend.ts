import { chmod } from 'node:fs/promises';
import * as net from 'node:net';
import { componentLogger, type Disposer, type Logger, onAbort } from '@ffnet/common';
import {
  ConnectFailedError,
  type FfnetError,
  InvalidArgError,
  ListenFailedError,
  PermissionDeniedError,
  SocketClosedError,
  SocketError,
  TimeoutError,
} from '@ffnet/serde';
import { type Address, formatAddress, type Scheme, tcpAddress } from './address.js';
import type { Backend, BackendHandlers, BackendListener, BackendSocket, ConnectOptions, ListenOptions, PeerCredentials } from './backend.js';
import { libc } from './libc.js';
import { BackendSocketBase } from './socket-base.js';
import { checkUnixOwner } from './unix-owner.js';

export type Errno = Error & { code?: string };

/** Errors that mean the peer went away rather than that the socket broke. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

export function describe(err: Errno): string {
  return err.code ? `${err.code} (${err.message})` : err.message;
}

export function socketError(err: Errno, peer: string): FfnetError {
  if (err.code && PEER_GONE.has(err.code)) return new SocketClosedError(`connection closed by peer: ${describe(err)}`, { peer, cause: err });
  return new SocketError(`socket error: ${describe(err)}`, { peer, cause: err });
}

export function tcpString(host: string | undefined, port: number | undefined): string {
  if (host === undefined) return 'tcp://?';
  return host.includes(':') ? `tcp://[${host}]:${port}` : `tcp://${host}:${port}`;
}

/** Memory for reads that have no caller-given place: never reused, so the chunks handed out stay valid. */
const ARENA_BYTES = 64 * 1024;
/** Below this much room left, a new arena: smaller reads would cost more syscalls than the memory saved. */
const MIN_READ = 8 * 1024;

/**
 * Reads of a dialled socket through node:net's `onread`, so that the bytes of a large frame's body go straight
 * from the kernel into that body (BackendHandlers.readInto) instead of into a fresh 64 KiB chunk and then a copy.
 * Node offers `onread` only to sockets it connects itself, not to accepted ones, which keep the 'data' path.
 * tls.connect() honours it too: the TLS layer then decrypts into these buffers instead of fresh ones.
 */
export class DirectReads {
  handlers: BackendHandlers | undefined;
  /** Chunks read before the owner attached its handlers (the socket is paused meanwhile). */
  early: Buffer[] | undefined;
  /** Allocated at the first read, not with the socket: a connection that never sends costs no arena. */
  private arena: Buffer | undefined;
  private used = 0;

  readonly next = (): Buffer => {
    const into = this.handlers?.readInto?.();
    if (into !== undefined) return into;
    let arena = this.arena;
    if (arena === undefined || ARENA_BYTES - this.used < MIN_READ) {
      arena = this.arena = Buffer.allocUnsafe(ARENA_BYTES);
      this.used = 0;
    }
    return arena.subarray(this.used);
  };

  /** False pauses the socket (node:net's onread contract): until the owner is there to take the bytes. */
  readonly got = (n: number, buf: Uint8Array): boolean => {
    // `buf` is what next() returned for this read: a view of the arena or of the owner's memory.
    const chunk = (buf as Buffer).subarray(0, n);
    if (buf.buffer === this.arena?.buffer) this.used += n;
    const h = this.handlers;
    if (h === undefined) {
      if (this.early === undefined) this.early = [chunk];
      else this.early.push(chunk);
      return false;
    }
    h.data(chunk);
    return true;
  };
}

interface FdCalls {
  dup(fd: number): number;
  close(fd: number): number;
  /** getsockopt(fd, SOL_SOCKET, SO_PEERCRED) into a 12-byte `struct ucred`; 0 on success. */
  peerCred(fd: number, ucred: Buffer, len: Buffer): number;
  /** setsockopt(fd, SOL_SOCKET, SO_SNDBUF) with a 4-byte int; 0 on success. */
  setSendBuffer(fd: number, value: Buffer): number;
  /** getsockopt(fd, SOL_SOCKET, SO_SNDBUF) into a 4-byte int; 0 on success. */
  getSendBuffer(fd: number, value: Buffer, len: Buffer): number;
}
let fdState: FdCalls | null | undefined;
/** Why fdCalls() is null, for errors that must say why a check could not be made. */
let fdMissing = '';

// Linux values (SO_PEERCRED differs on ppc and mips); fdCalls() is null elsewhere.
const SOL_SOCKET = 1;
const SO_PEERCRED = process.arch === 'ppc64' || process.arch === 'ppc' ? 21 : process.arch === 'mips' || process.arch === 'mipsel' ? 18 : 17;
const SO_SNDBUF = process.arch === 'mips' || process.arch === 'mipsel' ? 0x1001 : 7;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; }: three 32-bit integers. */
const UCRED_BYTES = 12;

/** libc's dup(), close() and getsockopt() through koffi, or null without them. Loaded on first use, never at import. */
function fdCalls(): FdCalls | null {
  if (fdState === undefined) {
    fdState = null;
    const c = libc();
    if (typeof c === 'string') {
      // Without koffi (or its binary for this platform) accepted sockets keep the 'data' path and have no peer
      // credentials, which every check treats as an unknown peer.
      fdMissing = c;
    } else {
      const dup = c.lib.func('int dup(int oldfd)');
      const close = c.lib.func('int close(int fd)');
      const getsockopt = c.lib.func('int getsockopt(int sockfd, int level, int optname, void *optval, void *optlen)');
      const setsockopt = c.lib.func('int setsockopt(int sockfd, int level, int optname, void *optval, uint32_t optlen)');
      fdState = {
        dup: (fd) => dup(fd) as number,
        close: (fd) => close(fd) as number,
        peerCred: (fd, ucred, len) => getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred, len) as number,
        setSendBuffer: (fd, value) => setsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, value.length) as number,
        getSendBuffer: (fd, value, len) => getsockopt(fd, SOL_SOCKET, SO_SNDBUF, value, len) as number,
      };
    }
  }
  return fdState;
}

/**
 * SO_PEERCRED of a connected Unix socket, or undefined when it cannot be read (no koffi, not Linux, no fd, the
 * call failing). Callers deciding trust must treat undefined as "unknown peer", never as "local".
 */
function readPeerCredentials(sock: net.Socket): PeerCredentials | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  const calls = fdCalls();
  if (calls === null) return undefined;
  const ucred = Buffer.alloc(UCRED_BYTES);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(UCRED_BYTES, 0);
  if (calls.peerCred(fd, ucred, len) !== 0 || len.readUInt32LE(0) !== UCRED_BYTES) return undefined;
  return Object.freeze({ pid: ucred.readInt32LE(0), uid: ucred.readUInt32LE(4), gid: ucred.readUInt32LE(8) });
}

/**
 * Asks the kernel for a send buffer of `bytes` (SO_SNDBUF; Linux doubles the value for its bookkeeping and caps
 * it at net.core.wmem_max). Returns false, leaving the socket as it is, when it cannot be set (no koffi, no fd).
 */
export function setSendBufferSize(sock: net.Socket, bytes: number): boolean {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return false;
  const calls = fdCalls();
  if (calls === null) return false;
  const v = Buffer.alloc(4);
  v.writeInt32LE(bytes, 0);
  return calls.setSendBuffer(fd, v) === 0;
}

/** SO_SNDBUF as the kernel reports it (twice what was asked, see setSendBufferSize), or undefined. */
export function sendBufferSize(sock: net.Socket): number | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  const calls = fdCalls();
  if (calls === null) return undefined;
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  return calls.getSendBuffer(fd, v, len) === 0 ? v.readInt32LE(0) : undefined;
}

/**
 * Node gives `onread` only to sockets it connects itself. An accepted socket gets it by being reopened: a new
 * net.Socket on a dup() of its fd, made before it has read a byte (pauseOnConnect), after which the original is
 * destroyed (closing one of two fds leaves the connection alone). When that is not possible (no koffi, no fd,
 * dup failing), the accepted socket is used as it is, with the 'data' path.
 */
function reopenWithDirectReads(accepted: net.Socket, direct: DirectReads): net.Socket {
  const fd = (accepted as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  const calls = typeof fd === 'number' && fd >= 0 ? fdCalls() : null;
  if (calls === null) return accepted;
  const copy = calls.dup(fd as number);
  if (copy < 0) return accepted; // EMFILE and the like: this connection keeps the 'data' path
  // `onread` is honoured by the Socket constructor itself (that is how net.connect passes it); @types/node only
  // declares it for connect options.
  const opts = { fd: copy, readable: true, writable: true, allowHalfOpen: false, onread: { buffer: direct.next, callback: direct.got } };
  let sock: net.Socket;
  try {
    sock = new net.Socket(opts as net.SocketConstructorOpts);
  } catch {
    // Direct reads are an optimisation: the accepted socket still works through the 'data' path.
    calls.close(copy);
    return accepted;
  }
  accepted.destroy();
  return sock;
}

/**
 * One node:net socket behind the BackendSocket interface. TCP and Unix sockets differ only in how their
 * addresses are named, so both backends share this class; tls() uses it too, a TLSSocket being a net.Socket.
 */
export class NetSocket extends BackendSocketBase {
  readonly scheme: Scheme;
  protected readonly sock: net.Socket;
  private error: Errno | undefined;
  private readonly direct: DirectReads | undefined;
  /** null: not read yet. The kernel fixes the credentials at connect(), so one read serves the socket's life. */
  private creds: PeerCredentials | undefined | null = null;

  constructor(scheme: Scheme, sock: net.Socket, remote: Address, peer: string, local: string, direct?: DirectReads) {
    super(remote, peer, local);
    this.scheme = scheme;
    this.sock = sock;
    this.direct = direct;
    // Only the first error explains the close; later ones are consequences of it.
    sock.on('error', (err: Errno) => {
      this.error ??= err;
    });
    sock.on('close', () => this.reportClose(this.error ? this.closeError(this.error) : undefined));
  }

  /** The node:net socket, for sibling packages that need its fd (netSocketFd). */
  get rawSocket(): net.Socket {
    return this.sock;
  }

  /** The error a close is reported with; tls() names certificate refusals here. */
  protected closeError(err: Errno): FfnetError {
    return socketError(err, this.peer);
  }

  /** Shared by every write: a single function per socket instead of a closure per write. */
  private readonly onWritten = (err?: Error | null): void => {
    // Callbacks of writes that never reached the kernel fire with an error on destroy: those stay unwritten.
    if (!err && !this.closeKnown) this.handlers?.written();
  };

  protected attach(h: BackendHandlers): boolean {
    const direct = this.direct;
    if (direct !== undefined) {
      // Bytes that arrived before the owner did come first, even when the socket has closed since.
      direct.handlers = h;
      const early = direct.early;
      direct.early = undefined;
      if (early !== undefined) for (const chunk of early) h.data(chunk);
    }
    if (this.closeKnown) return false;
    this.sock.on('drain', () => h.drain());
    if (direct === undefined) this.sock.on('data', (chunk: Buffer) => h.data(chunk));
    // Accepted sockets start paused (pauseOnConnect), and a 'data' listener alone does not restart them.
    return true;
  }

  write(bufs: readonly Uint8Array[]): boolean {
    const s = this.sock;
    const n = bufs.length;
    if (n === 0) throw new InvalidArgError('write() needs at least one buffer');
    if (n === 1) return s.write(bufs[0]!, this.onWritten);
    // Corked writes are handed to libuv as one writev when uncorked (or as soon as the write in progress
    // finishes); libuv then deals with partial writes. Only the last write carries the completion callback.
    s.cork();
    for (let i = 0; i < n - 1; i++) s.write(bufs[i]!);
    const ok = s.write(bufs[n - 1]!, this.onWritten);
    s.uncork();
    return ok;
  }

  override peerCredentials(): PeerCredentials | undefined {
    if (this.creds === null) this.creds = this.scheme === 'unix' && !this.closeKnown ? readPeerCredentials(this.sock) : undefined;
    return this.creds;
  }

  protected pauseSource(): void {
    this.sock.pause();
  }

  protected resumeSource(): void {
    this.sock.resume();
  }

  end(): void {
    this.sock.end();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/**
 * An accepted socket (from a server made with pauseOnConnect, nothing read yet) as a NetSocket with direct reads
 * where possible. Exported for @ffnet/shm, whose listener reads its hello with recvmsg before handing over.
 */
export function acceptedNetSocket(scheme: Scheme, accepted: net.Socket, remote: Address, peer: string, local: string, sendBufferBytes = 0): NetSocket {
  const direct = new DirectReads();
  const sock = reopenWithDirectReads(accepted, direct);
  sock.setNoDelay(true);
  if (sendBufferBytes > 0) setSendBufferSize(sock, sendBufferBytes);
  return new NetSocket(scheme, sock, remote, peer, local, sock === accepted ? undefined : direct);
}

/** The OS file descriptor under a NetSocket (for @ffnet/shm's sendmsg before any libuv write), if it has one. */
export function netSocketFd(s: BackendSocket): number | undefined {
  if (!(s instanceof NetSocket)) return undefined;
  const fd = (s.rawSocket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r);
}

/** The two things that differ between TCP and Unix: how to reach an address and how to name a socket. */
interface Naming {
  readonly scheme: 'tcp' | 'unix';
  connectTarget(addr: Address): net.NetConnectOpts;
  listenTarget(addr: Address): net.ListenOptions;
  /** The bound address once listening. */
  bound(addr: Address, server: net.Server): Address;
  /** Remote and peer string of an accepted socket. */
  accepted(sock: net.Socket, listening: Address): { remote: Address; peer: string };
  localName(sock: net.Socket, fallback: Address): string;
}

/** Options of tcp() and unix(). */
export interface NetBackendOptions {
  /** Connect timeout when the caller gives none (default 1000 ms, 3FS tcp_connect_timeout); 0 = none. */
  connectTimeoutMs?: number;
  /**
   * SO_SNDBUF asked for every socket, dialled and accepted, in bytes; 0 leaves the kernel's default. Default: 0 for
   * tcp (Linux grows a TCP send buffer by itself, up to net.ipv4.tcp_wmem's maximum) and DEFAULT_UNIX_SEND_BUFFER_BYTES
   * for unix, whose sockets never grow past net.core.wmem_default (~208 KiB): a 1 MiB frame then leaves in five or
   * more writes, each a wake-up of the receiver, and arrives in as many reads. The kernel caps the value at
   * net.core.wmem_max; it bounds the kernel memory a connection's unread bytes can hold.
   */
  sendBufferBytes?: number;
}

/**
 * Default SO_SNDBUF of unix sockets: 1 MiB (the kernel accounts twice that, including its own overhead), so that
 * a 1 MiB frame goes out in about one write and is read in about one read. See NetBackendOptions.sendBufferBytes.
 */
export const DEFAULT_UNIX_SEND_BUFFER_BYTES = 1024 * 1024;

/** 3FS tcp_connect_timeout. */
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 1000;

class NetBackend implements Backend {
  readonly scheme: Scheme;
  readonly connectTimeoutMs: number;
  /** SO_SNDBUF asked for each socket; 0 = the kernel's default. */
  readonly sendBufferBytes: number;
  private readonly naming: Naming;

  constructor(naming: Naming, opts: NetBackendOptions) {
    this.naming = naming;
    this.scheme = naming.scheme;
    const t = opts.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS;
    if (!(Number.isFinite(t) && t >= 0)) throw new InvalidArgError(`${naming.scheme}() connectTimeoutMs must be a non-negative number, got ${t}`);
    this.connectTimeoutMs = t;
    const b = opts.sendBufferBytes ?? (naming.scheme === 'unix' ? DEFAULT_UNIX_SEND_BUFFER_BYTES : 0);
    // setsockopt takes an int, and the kernel doubles it.
    if (!(Number.isSafeInteger(b) && b >= 0 && b <= 0x3fffffff)) {
      throw new InvalidArgError(`${naming.scheme}() sendBufferBytes must be an integer from 0 to ${0x3fffffff}, got ${b}`);
    }
    this.sendBufferBytes = b;
  }

  available(): { ok: true } {
    return { ok: true };
  }

  connect(addr: Address, opts: ConnectOptions = {}): Promise<BackendSocket> {
    const owner = opts.ownerUid;
    if (owner !== undefined && this.scheme === 'unix') return checkUnixOwner(addr.path, owner).then(() => this.dial(addr, opts, owner));
    return this.dial(addr, opts, undefined);
  }

  private dial(addr: Address, opts: ConnectOptions, ownerUid: number | undefined): Promise<BackendSocket> {
    const peer = formatAddress(addr);
    const signal = opts.signal;
    const timeoutMs = opts.timeoutMs ?? this.connectTimeoutMs;
    return new Promise<BackendSocket>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ConnectFailedError(`connect aborted: ${abortReason(signal)}`, { peer, cause: signal.reason }));
        return;
      }
      const direct = new DirectReads();
      const sock = net.connect({ ...this.naming.connectTarget(addr), onread: { buffer: direct.next, callback: direct.got } });
      let timer: NodeJS.Timeout | undefined;
      let offAbort: Disposer | undefined;
      const settle = (): void => {
        if (timer) clearTimeout(timer);
        offAbort?.();
        sock.removeListener('error', onError);
        sock.removeListener('connect', onConnect);
      };
      const fail = (e: FfnetError): void => {
        settle();
        // An 'error' listener must stay: destroy() may still surface one.
        sock.on('error', () => {});
        sock.destroy();
        reject(e);
      };
      const onError = (err: Errno): void => {
        fail(new ConnectFailedError(`connect failed: ${describe(err)}`, { peer, cause: err }));
      };
      const onConnect = (): void => {
        if (ownerUid !== undefined) {
          // The file's owner was checked before connecting; this is the listening process itself, which a file
          // swapped in between the check and the connect cannot fake.
          const creds = readPeerCredentials(sock);
          if (creds?.uid !== ownerUid) {
            const why =
              creds === undefined
                ? `its credentials (SO_PEERCRED) cannot be read here${fdCalls() === null ? `: ${fdMissing}` : ''}`
                : `it runs as uid ${creds.uid}`;
            fail(new PermissionDeniedError(`the process listening on ${addr.path} is not uid ${ownerUid}: ${why}`, { peer }));
            return;
          }
        }
        settle();
        sock.setNoDelay(true);
        if (this.sendBufferBytes > 0) setSendBufferSize(sock, this.sendBufferBytes);
        resolve(new NetSocket(this.scheme, sock, addr, peer, this.naming.localName(sock, addr), direct));
      };
      sock.once('error', onError);
      sock.once('connect', onConnect);
      offAbort = onAbort(signal, (cause) => fail(new ConnectFailedError(`connect aborted: ${abortReason(signal!)}`, { peer, cause })));
      if (timeoutMs !== undefined && timeoutMs > 0) {
        timer = setTimeout(() => fail(new TimeoutError(`connect timed out after ${timeoutMs} ms`, { peer })), timeoutMs);
      }
    });
  }

  listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener> {
    const naming = this.naming;
    const scheme = this.scheme;
    return listenPaused({
      where: formatAddress(addr),
      target: { ...naming.listenTarget(addr), ...(opts.reusePort ? { reusePort: true } : {}) },
      ...(scheme === 'unix' && addr.scheme === 'unix' ? { path: addr.path } : {}),
      addr,
      bound: (server) => naming.bound(addr, server),
      opts,
      log: componentLogger('transport', opts.logger),
      onConnection: (accepted, bound) => {
        const { remote, peer } = naming.accepted(accepted, bound);
        onSocket(acceptedNetSocket(scheme, accepted, remote, peer, naming.localName(accepted, bound), this.sendBufferBytes));
      },
    });
  }
}

/** What listenPaused needs to know about one listener. */
export interface PausedListen {
  /** The address as messages name it. */
  readonly where: string;
  readonly target: net.ListenOptions;
  /** A socket path: EADDRINUSE gets the stale-file hint, and opts.mode is applied to it. */
  readonly path?: string;
  /** The address asked for; what connections see as the bound address until listening has resolved it. */
  readonly addr: Address;
  readonly bound: (server: net.Server) => Address;
  readonly opts: ListenOptions;
  readonly log: Logger;
  readonly onConnection: (accepted: net.Socket, bound: Address) => void;
}

/**
 * A node:net listener made with pauseOnConnect (accepted sockets read nothing until their owner says so), behind
 * BackendListener: abortable, typed failures naming the address, socket-file mode, and a close that releases the
 * listening fd at once. Shared by tcp(), unix() and @ffnet/shm, which differ only in what they do per connection.
 */
export function listenPaused(o: PausedListen): Promise<BackendListener> {
  const { where, opts, log } = o;
  const { signal } = opts;
  return new Promise<BackendListener>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ListenFailedError(`listen on ${where} aborted: ${abortReason(signal)}`, { cause: signal.reason }));
      return;
    }
    const server = net.createServer({ allowHalfOpen: false, pauseOnConnect: true });
    let listening = false;
    let bound = o.addr;
    let offAbort: Disposer | undefined;
    const fail = (e: FfnetError): void => {
      offAbort?.();
      server.close();
      reject(e);
    };
    server.on('error', (err: Errno) => {
      if (listening) {
        // accept() failures (EMFILE…) are transient; libuv keeps accepting.
        if (log.isLevelEnabled('debug')) log.debug({ listener: where, err }, 'accept failed');
        return;
      }
      const hint = err.code === 'EADDRINUSE' && o.path !== undefined ? ' (a stale socket file? remove it first)' : '';
      fail(new ListenFailedError(`listen on ${where} failed: ${describe(err)}${hint}`, { cause: err }));
    });
    server.on('connection', (accepted: net.Socket) => o.onConnection(accepted, bound));
    offAbort = onAbort(signal, (cause) => fail(new ListenFailedError(`listen on ${where} aborted: ${abortReason(signal!)}`, { cause })));
    server.listen({ ...o.target, backlog: opts.backlog ?? 511 }, () => {
      offAbort?.();
      listening = true;
      bound = o.bound(server);
      const done = (): void => {
        let closing: Promise<void> | undefined;
        resolve({
          address: bound,
          close(): Promise<void> {
            // server.close() releases the listening fd (and unlinks a unix path) synchronously; its callback
            // would wait for every accepted socket, which the listener does not own.
            if (!closing) {
              server.close();
              closing = Promise.resolve();
            }
            return closing;
          },
        });
      };
      if (o.path !== undefined && opts.mode !== undefined) {
        chmod(o.path, opts.mode).then(done, (err: Errno) => {
          listening = false;
          fail(new ListenFailedError(`chmod ${opts.mode!.toString(8)} of ${where} failed: ${describe(err)}`, { cause: err }));
        });
      } else {
        done();
      }
    });
  });
}

const tcpNaming: Naming = {
  scheme: 'tcp',
  connectTarget: (a) => ({ host: a.host, port: a.port, noDelay: true }),
  listenTarget: (a) => ({ host: a.host, port: a.port }),
  bound: (a, server) => tcpAddress(a.host, (server.address() as net.AddressInfo).port),
  accepted(sock) {
    const host = sock.remoteAddress ?? '0.0.0.0';
    const port = sock.remotePort ?? 0;
    return { remote: tcpAddress(host, port), peer: tcpString(host, port) };
  },
  localName: (sock) => tcpString(sock.localAddress, sock.localPort),
};

const unixNaming: Naming = {
  scheme: 'unix',
  connectTarget: (a) => ({ path: a.path }),
  listenTarget: (a) => ({ path: a.path }),
  bound: (a) => a,
  // Unix clients are normally unnamed, so an accepted socket is known by the path it came in on.
  accepted: (_sock, listening) => ({ remote: listening, peer: formatAddress(listening) }),
  localName: (_sock, a) => formatAddress(a),
};

/** A TCP backend (`tcp://host:port`). Each call makes a new one; nothing is shared between them. */
export function tcp(opts: NetBackendOptions = {}): Backend {
  return new NetBackend(tcpNaming, opts);
}

/** A Unix-socket backend (`unix:///path`). Each call makes a new one. */
export function unix(opts: NetBackendOptions = {}): Backend {
  return new NetBackend(unixNaming, opts);
}
