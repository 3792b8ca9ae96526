import type { Logger } from '@ffnet/common';
import { type FfnetError, NotImplementedError } from '@ffnet/serde';
import type { Address, Scheme } from './address.js';
import type { ConnectionAuthenticator, Credentials, PeerCertificate, PeerCredentials, Principal } from './identity.js';

// Defined beside the rest of the identity contract (identity.ts), so that file imports nothing from this one.
export type { PeerCertificate, PeerCredentials } from './identity.js';

/** What a backend socket reports to its owner (a Transport). Set once; sockets stay paused until then. */
export interface BackendHandlers {
  /** Bytes received, in order. The backend never reuses a chunk's memory after handing it over. */
  data(chunk: Buffer): void;
  /**
   * Where the next received bytes should land, when the owner has a place for them (the rest of a large frame's
   * body): a backend that can read into caller memory reads at most that many bytes into it and hands them to
   * data() as a view of it. Undefined: the backend's own memory. Backends may ignore it.
   *
   * `pending`: bytes the backend already holds in memory of its own and will hand over next (a shared-memory
   * ring's extent). The owner may count them toward a body's share and so offer a place sooner. A backend that
   * reads from the kernel does not know what is coming and passes nothing.
   */
  readInto?(pending?: number): Buffer | undefined;
  /**
   * For a backend whose received bytes sit in memory the peer may still change (a shared-memory ring): the owner
   * copies up to `end - start` bytes of `src[start..)` into memory of its own, checksumming them in the same
   * pass, and takes them as received, as data() would. It calls `copied(n)` once they are copied, before acting
   * on them. Returns how many it took; 0 when it has no place for them, and the backend then copies them into a
   * chunk of its own and hands that to data(). Backends may ignore it.
   */
  copyIn?(src: Uint8Array, start: number, end: number, copied: (n: number) => void): number;
  /** After write() returned false: the backend can take more. */
  drain(): void;
  /** Once per write() call, in call order, when all of that call's buffers have been handed to the OS or NIC. */
  written(): void;
  /** Exactly once, when the socket is fully closed. `err` is undefined for a clean EOF, end() or destroy(). */
  close(err?: FfnetError): void;
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
  /** tls (and rdma whose handshake ran over tls): the peer's certificate, once verified. Undefined when it sent none. */
  peerCertificate?(): PeerCertificate | undefined;
  /**
   * Who the backend itself authenticated during its own handshake (rdma runs ListenOptions.authenticate on the
   * IBConnect request), so the server does not authenticate the connection again. Undefined for the others.
   */
  principal?(): Principal | undefined;
  /** What the connection can do; a plain stream (STREAM_CAPABILITIES) when absent. */
  readonly capabilities?: BackendCapabilities;
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
  /**
   * What the caller proves itself with, for backends that authenticate in their own handshake (rdma sends it as
   * the IBConnect request's metadata). Stream backends ignore it: their calls carry it.
   */
  credentials?: Credentials;
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
  /**
   * rdma only: run on each IBConnect request before a queue pair is made; a rejection refuses the handshake with
   * UnauthenticatedError and closes it. Its result is the accepted socket's principal(). Stream backends ignore it
   * (the server authenticates their first call).
   */
  authenticate?: ConnectionAuthenticator;
  signal?: AbortSignal;
  /**
   * The root logger (the backend scopes it to its component): refused handshakes (tls, rdma IBConnect) at warn,
   * accept errors at debug. Default: the process-wide logger.
   */
  logger?: Logger;
}

/**
 * One kind of connection, made by a factory (`tcp()`, `unix()`, `rdma()` from @ffnet/rdma) and handed to whatever
 * dials or listens: Transport.connect, TransportPool, IOWorker, Listener, Client and Server take `backends`.
 * Nothing is registered globally, so two clients with different backends do not see each other's.
 */
export interface Backend {
  readonly scheme: Scheme;
  /**
   * Whether it can be used here. When not, `error` (if given) is what a connect fails with at once, e.g. rdma's
   * IBDeviceNotInitializedError; otherwise a NotImplementedError with `reason`.
   */
  available(): { ok: true } | { ok: false; reason: string; error?: FfnetError };
  /** Connect timeout when the caller gives none (tcp and unix 1000 ms, 3FS tcp_connect_timeout). */
  readonly connectTimeoutMs?: number;
  /** What its connections can do; a plain stream when absent. Sockets may state their own. */
  readonly capabilities?: BackendCapabilities;
  connect(addr: Address, opts?: ConnectOptions): Promise<BackendSocket>;
  listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener>;
}

/**
 * What a connection of a backend can do beyond a byte stream. The generic layers (worker, server) ask these
 * instead of testing for a scheme, so a backend brings its own behaviour along.
 */
export interface BackendCapabilities {
  /** One-sided operations (RDMA read/write into the peer's registered memory) are possible on the connection. */
  readonly oneSided: boolean;
  /**
   * A call on the connection that times out leaves it untrusted: it is closed so the next call reconnects
   * (3FS closes an RDMA connection after kTimeout). Stream sockets keep the connection.
   */
  readonly closeOnCallTimeout: boolean;
}

/** What a backend or socket that states none can do: a plain byte stream. */
export const STREAM_CAPABILITIES: BackendCapabilities = Object.freeze({ oneSided: false, closeOnCallTimeout: false });

/** An address whose scheme has no backend in the list it was dialled or served with. */
export function noBackendError(scheme: string, backends: readonly Backend[]): NotImplementedError {
  const have = backends.map((b) => b.scheme).join(', ') || 'none';
  const hint = scheme === 'rdma' ? "pass rdma() from '@ffnet/rdma' in `backends`" : `pass a backend for '${scheme}' in \`backends\``;
  return new NotImplementedError(`no backend for scheme '${scheme}' (backends: ${have}): ${hint}`);
}

/** The backend of `scheme` in `backends`; NotImplementedError naming the scheme and what to pass when there is none. */
export function findBackend(backends: readonly Backend[], scheme: Scheme | string): Backend {
  for (const b of backends) if (b.scheme === scheme) return b;
  throw noBackendError(scheme, backends);
}
