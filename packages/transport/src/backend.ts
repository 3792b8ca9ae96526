import { type FfnetError, IBDeviceNotInitializedError, InvalidArgError, NotImplementedError } from '@ffnet/serde';
import type { Address, Scheme } from './address.js';
import { tcpBackend, unixBackend } from './net-backend.js';
import { verbsBackend } from './verbs-backend.js';

/** What a backend socket reports to its owner (a Transport). Set once; sockets stay paused until then. */
export interface BackendHandlers {
  /** Bytes received, in order. The backend never reuses a chunk's memory after handing it over. */
  data(chunk: Buffer): void;
  /**
   * Where the next received bytes should land, when the owner has a place for them (the rest of a large frame's
   * body): a backend that can read into caller memory reads at most that many bytes into it and hands them to
   * data() as a view of it. Undefined: the backend's own memory. Backends may ignore it.
   */
  readInto?(): Buffer | undefined;
  /** After write() returned false: the backend can take more. */
  drain(): void;
  /** Once per write() call, in call order, when all of that call's buffers have been handed to the OS or NIC. */
  written(): void;
  /** Exactly once, when the socket is fully closed. `err` is undefined for a clean EOF, end() or destroy(). */
  close(err?: FfnetError): void;
}

/** The process at the other end of a Unix socket, as the kernel recorded it at connect() time. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** A connected byte-stream socket of one backend. Frames are the Transport's business, not the backend's. */
export interface BackendSocket {
  readonly scheme: Scheme;
  /** The dialled address; for accepted sockets the peer (tcp) or the listening path (unix). */
  readonly remote: Address;
  /** Human-readable remote end for messages. */
  readonly peer: string;
  readonly local: string;
  /** All buffers in one batched write; false = above the backend's high water (data still taken), wait for drain. */
  write(bufs: readonly Uint8Array[]): boolean;
  setHandlers(h: BackendHandlers): void;
  pause(): void;
  resume(): void;
  /** Flush what was written, then close. */
  end(): void;
  /** Close now, dropping unwritten data. */
  destroy(): void;
  /**
   * Unix sockets: the peer process's pid, uid and gid (SO_PEERCRED). Undefined when the backend has none or they
   * cannot be read; treat that as an unknown peer.
   */
  peerCredentials?(): PeerCredentials | undefined;
}

export interface BackendListener {
  /** The bound address, with the port resolved when 0 was asked for. */
  readonly address: Address;
  /** Stop accepting; idempotent. Accepted sockets stay open. */
  close(): Promise<void>;
}

export interface ConnectOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /**
   * unix only: the uid the server must run as. The socket file and its directory are checked before connecting
   * and the listening process's credentials (SO_PEERCRED) after; a mismatch fails with PermissionDeniedError.
   * Other backends ignore it.
   */
  ownerUid?: number;
}

export interface ListenOptions {
  backlog?: number;
  reusePort?: boolean;
  /** unix only: file mode of the socket (chmod after bind). */
  mode?: number;
  /**
   * rdma only: TCP connections whose first frame is not an IBConnect request are handed to onSocket as tcp
   * sockets, so the port also serves tcp:// callers (as a 3FS RDMA group does). Default false.
   */
  acceptTcp?: boolean;
  signal?: AbortSignal;
}

export interface Backend {
  readonly scheme: Scheme;
  available(): { ok: true } | { ok: false; reason: string };
  connect(addr: Address, opts?: ConnectOptions): Promise<BackendSocket>;
  listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener>;
}

/**
 * tcp, unix and rdma (verbs) are built in, so no import side effect is needed and the package stays
 * sideEffects-free. Importing never loads native code: the verbs backend probes libibverbs only when used.
 */
const backends = new Map<string, Backend>([
  ['tcp', tcpBackend],
  ['unix', unixBackend],
  ['rdma', verbsBackend],
]);

export function registerBackend(b: Backend, opts: { replace?: boolean } = {}): void {
  if (backends.has(b.scheme) && !opts.replace) {
    throw new InvalidArgError(`a backend for scheme '${b.scheme}' is already registered (pass { replace: true } to swap it)`);
  }
  backends.set(b.scheme, b);
}

export function hasBackend(scheme: string): boolean {
  return backends.has(scheme);
}

/**
 * The backend for `scheme`. 'rdma' is only handed out while RDMA can be used here: otherwise it throws
 * IBDeviceNotInitializedError saying why (no-library / no-kernel-support / no-devices, with the detail).
 */
export function getBackend(scheme: Scheme | string): Backend {
  const b = backends.get(scheme);
  if (b) {
    if (scheme !== 'rdma') return b;
    const a = b.available();
    if (a.ok) return b;
    throw new IBDeviceNotInitializedError(`rdma:// cannot be used: ${a.reason}. Use tcp:// or unix:// instead`);
  }
  throw new NotImplementedError(`no backend registered for scheme '${scheme}' (registered: ${[...backends.keys()].join(', ') || 'none'})`);
}
