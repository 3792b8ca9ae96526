import { isIP, type Socket as NetSocketType, type OnReadOpts } from 'node:net';
import * as nodeTls from 'node:tls';
import { componentLogger, type Disposer, defaults, onAbort } from '@ffnet/common';
import {
  ConnectFailedError,
  type FfnetError,
  InvalidArgError,
  ListenFailedError,
  PermissionDeniedError,
  TimeoutError,
  UnauthenticatedError,
} from '@ffnet/serde';
import { type Address, formatAddress, tlsAddress } from './address.js';
import type { Backend, BackendListener, BackendSocket, ConnectOptions, ListenOptions, PeerCertificate } from './backend.js';
import { abortReason, DEFAULT_TCP_CONNECT_TIMEOUT_MS, DirectReads, describe, type Errno, NetSocket, socketError } from './net-backend.js';

/** The ALPN protocol both ends must negotiate: a TLS peer that is not ffnet is refused before any frame. */
export const TLS_ALPN_PROTOCOL = 'ffnet';

type Pem = string | Buffer | ReadonlyArray<string | Buffer>;

/** Certificates and key of a tls() backend; what reload() replaces. */
export interface TlsCredentials {
  /** Private key (PEM). Server: required. Client: with `cert`, for mTLS. */
  key?: string | Buffer;
  /** Certificate chain (PEM). Server: required. Client: with `key`, for mTLS. */
  cert?: string | Buffer;
  /** CAs trusted for the peer's certificate. Absent: Node's bundled public roots (client) / none (server). */
  ca?: Pem;
}

/** Options of tls(). */
export interface TlsBackendOptions extends TlsCredentials {
  /** Server: ask clients for a certificate (verified against `ca` when sent). Default false. */
  requestCert?: boolean;
  /** Server: refuse clients without a certificate signed by `ca` (mTLS). Implies requestCert. Default false. */
  requireClientCert?: boolean;
  /** Client: the name the server's certificate must carry (and SNI). Default the address's host. */
  servername?: string;
  /** Lowest protocol accepted; TLS 1.3 is negotiated when both ends have it. Default 'TLSv1.2'. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** TCP connect timeout when the caller gives none (default 1000 ms, as tcp()); 0 = none. */
  connectTimeoutMs?: number;
  /** From TCP connected (or accepted) to a finished handshake (default defaults.TLS_HANDSHAKE_TIMEOUT_MS, 5 s). */
  handshakeTimeoutMs?: number;
  /** Client: sessions kept for resumption, one per address and name (default 256); 0 = no resumption. */
  sessionCacheSize?: number;
}

/** A connected tls() socket: a BackendSocket that also tells who the peer is and whether the session resumed. */
export interface TlsBackendSocket extends BackendSocket {
  peerCertificate(): PeerCertificate | undefined;
  /** The handshake resumed an earlier session (abbreviated handshake). */
  isSessionReused(): boolean;
}

/** The tls() backend, which also reloads its credentials. */
export interface TlsBackend extends Backend {
  readonly scheme: 'tls';
  /**
   * New key, certificate or CA for connections made or accepted from now on; open connections keep theirs.
   * Fields not given stay as they were. Cached client sessions are dropped, so no connection resumes a
   * session negotiated under the old credentials.
   */
  reload(creds: TlsCredentials): void;
}

/** Node's X.509 verification codes, by what a message should call them. */
const CERT_REASONS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate signed by an unknown issuer',
  UNABLE_TO_GET_ISSUER_CERT: 'certificate signed by an unknown issuer',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'certificate signed by an unknown issuer',
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate signed by an unknown issuer (self-signed in chain)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
  CERT_REVOKED: 'certificate revoked',
  CERT_SIGNATURE_FAILURE: 'certificate signature invalid',
  ERR_TLS_CERT_ALTNAME_INVALID: 'host name mismatch',
};

/** Alerts a server sends when it refuses this client's certificate (or the lack of one). */
function refusedClientCert(code: string | undefined): string | undefined {
  if (code === undefined) return undefined;
  if (code.endsWith('ALERT_CERTIFICATE_REQUIRED')) return 'the server requires a client certificate';
  if (code.endsWith('ALERT_UNKNOWN_CA')) return 'the server does not trust the client certificate (unknown issuer)';
  if (code.endsWith('ALERT_BAD_CERTIFICATE')) return 'the server refused the client certificate';
  if (code.endsWith('ALERT_CERTIFICATE_EXPIRED')) return 'the server refused the client certificate (expired)';
  return undefined;
}

/**
 * A TLS error as a typed ffnet error: the server's certificate not verified → UnauthenticatedError; this client's
 * certificate refused → PermissionDeniedError; anything else → `other`. Messages carry Node's code and reason,
 * never key material.
 */
function tlsError(err: Errno, peer: string, other: () => FfnetError): FfnetError {
  const cert = err.code === undefined ? undefined : CERT_REASONS[err.code];
  if (cert !== undefined) return new UnauthenticatedError(`TLS: server not authenticated: ${cert} (${err.code})`, { peer, cause: err });
  const refused = refusedClientCert(err.code);
  if (refused !== undefined) return new PermissionDeniedError(`TLS: ${refused} (${err.code})`, { peer, cause: err });
  return other();
}

function hostString(host: string | undefined, port: number | undefined): string {
  if (host === undefined) return 'tls://?';
  return host.includes(':') ? `tls://[${host}]:${port}` : `tls://${host}:${port}`;
}

function identityOf(sock: nodeTls.TLSSocket): PeerCertificate | undefined {
  const c = sock.getPeerCertificate();
  if (c === null || c === undefined || Object.keys(c).length === 0) return undefined;
  const subject = Object.entries(c.subject ?? {})
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ');
  const subjectAltNames = c.subjectaltname ? c.subjectaltname.split(', ') : [];
  return Object.freeze({ subject, subjectAltNames: Object.freeze(subjectAltNames), fingerprint256: c.fingerprint256 });
}

class TlsSocket extends NetSocket implements TlsBackendSocket {
  /** Read once: the certificate cannot change after the handshake. null = not read yet. */
  private identity: PeerCertificate | undefined | null = null;

  peerCertificate(): PeerCertificate | undefined {
    if (this.identity === null) this.identity = identityOf(this.sock as nodeTls.TLSSocket);
    return this.identity;
  }

  isSessionReused(): boolean {
    return (this.sock as nodeTls.TLSSocket).isSessionReused();
  }

  // Under TLS 1.3 a client finishes its handshake before the server has checked the client's certificate, so a
  // refusal arrives as an alert on the open socket: it is named here rather than as a plain socket error.
  protected override closeError(err: Errno): FfnetError {
    return tlsError(err, this.peer, () => socketError(err, this.peer));
  }
}

/**
 * node:tls honours `onread` only for sockets it dials itself (an accepted TLSSocket is built around an existing
 * socket, and Node then drops the option), so a server would get every decrypted 16 KiB record in a fresh buffer
 * and copy it into the frame's body. The stream machinery behind `onread` is the same for both, keyed by three
 * symbols on the socket: found by their names on a throw-away dialled socket, set on the accepted one, and the
 * TLS handle told to read into the first buffer. If this Node lays its sockets out otherwise, accepted sockets
 * keep the 'data' path, which is slower but the same bytes.
 */
interface ReadSymbols {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}
let readSymbols: ReadSymbols | null | undefined;

function findReadSymbols(): ReadSymbols | null {
  if (readSymbols === undefined) {
    readSymbols = null;
    const probe = new nodeTls.TLSSocket(
      null as unknown as NetSocketType,
      { onread: { buffer: Buffer.alloc(1), callback: () => true } } as nodeTls.TLSSocketOptions,
    );
    const named = new Map(Object.getOwnPropertySymbols(probe).map((k) => [k.description, k] as const));
    const buffer = named.get('kBuffer');
    const callback = named.get('kBufferCb');
    const generator = named.get('kBufferGen');
    const own = probe as unknown as Record<symbol, unknown>;
    if (buffer !== undefined && callback !== undefined && generator !== undefined && typeof own[callback] === 'function') {
      readSymbols = { buffer, callback, generator };
    }
    probe.destroy();
  }
  return readSymbols;
}

/** Switches an accepted, not yet flowing TLS socket to reads into `direct`'s buffers; false leaves it as it was. */
function adoptDirectReads(sock: nodeTls.TLSSocket, direct: DirectReads): boolean {
  const syms = findReadSymbols();
  const handle = (sock as unknown as { _handle?: { useUserBuffer?: (b: Uint8Array) => void } })._handle;
  if (syms === null || typeof handle?.useUserBuffer !== 'function' || sock.readableFlowing === true) return false;
  // Records decrypted before now sit in the stream's buffer: they come first, ahead of anything read after.
  const early: Buffer[] = [];
  for (let c: unknown = sock.read(); c !== null; c = sock.read()) early.push(c as Buffer);
  if (early.length > 0) direct.early = early;
  const first = direct.next();
  const own = sock as unknown as Record<symbol, unknown>;
  own[syms.buffer] = first;
  own[syms.generator] = direct.next;
  own[syms.callback] = direct.got;
  handle.useUserBuffer(first);
  return true;
}

function checkMs(what: string, t: number): number {
  if (!(Number.isFinite(t) && t >= 0)) throw new InvalidArgError(`tls() ${what} must be a non-negative number, got ${t}`);
  return t;
}

class TlsBackendImpl implements TlsBackend {
  readonly scheme = 'tls' as const;
  readonly connectTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly opts: TlsBackendOptions;
  private creds: TlsCredentials;
  /** Client sessions by address and name, in use order (Map order; oldest first) so the cache stays bounded. */
  private readonly sessions = new Map<string, Buffer>();
  private readonly sessionCacheSize: number;
  private readonly servers = new Set<nodeTls.Server>();

  constructor(opts: TlsBackendOptions) {
    this.opts = opts;
    this.creds = { key: opts.key, cert: opts.cert, ca: opts.ca };
    this.connectTimeoutMs = checkMs('connectTimeoutMs', opts.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS);
    this.handshakeTimeoutMs = checkMs('handshakeTimeoutMs', opts.handshakeTimeoutMs ?? defaults.TLS_HANDSHAKE_TIMEOUT_MS);
    const n = opts.sessionCacheSize ?? defaults.TLS_SESSION_CACHE_SIZE;
    if (!(Number.isInteger(n) && n >= 0)) throw new InvalidArgError(`tls() sessionCacheSize must be a non-negative integer, got ${n}`);
    this.sessionCacheSize = n;
    const min = opts.minVersion ?? 'TLSv1.2';
    if (min !== 'TLSv1.2' && min !== 'TLSv1.3') throw new InvalidArgError(`tls() minVersion must be 'TLSv1.2' or 'TLSv1.3', got '${String(min)}'`);
    if ((opts.key === undefined) !== (opts.cert === undefined)) throw new InvalidArgError('tls() needs key and cert together');
  }

  available(): { ok: true } {
    return { ok: true };
  }

  reload(creds: TlsCredentials): void {
    const next: TlsCredentials = { ...this.creds };
    if (creds.key !== undefined) next.key = creds.key;
    if (creds.cert !== undefined) next.cert = creds.cert;
    if (creds.ca !== undefined) next.ca = creds.ca;
    // Built first, so bad PEM throws here and leaves the running credentials alone.
    const ctx = this.contextOptions(next);
    nodeTls.createSecureContext(ctx);
    for (const server of this.servers) server.setSecureContext(ctx);
    this.creds = next;
    this.sessions.clear();
  }

  private contextOptions(c: TlsCredentials): nodeTls.SecureContextOptions {
    return {
      ...(c.key === undefined ? {} : { key: c.key }),
      ...(c.cert === undefined ? {} : { cert: c.cert }),
      ...(c.ca === undefined ? {} : { ca: c.ca as string | Buffer | Array<string | Buffer> }),
      minVersion: this.opts.minVersion ?? 'TLSv1.2',
    };
  }

  private remember(key: string, session: Buffer): void {
    if (this.sessionCacheSize === 0) return;
    this.sessions.delete(key);
    this.sessions.set(key, session);
    if (this.sessions.size > this.sessionCacheSize) this.sessions.delete(this.sessions.keys().next().value as string);
  }

  connect(addr: Address, opts: ConnectOptions = {}): Promise<BackendSocket> {
    const peer = formatAddress(addr);
    const signal = opts.signal;
    const timeoutMs = opts.timeoutMs ?? this.connectTimeoutMs;
    const handshakeMs = this.handshakeTimeoutMs;
    const servername = this.opts.servername ?? (isIP(addr.host) === 0 ? addr.host : undefined);
    const cacheKey = `${peer}|${servername ?? ''}`;
    return new Promise<BackendSocket>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ConnectFailedError(`connect aborted: ${abortReason(signal)}`, { peer, cause: signal.reason }));
        return;
      }
      const session = this.sessions.get(cacheKey);
      // Decrypted bytes land where the transport asks (a large body in place, else an arena) rather than in a
      // fresh buffer per TLS record that the frame decoder then copies, as on tcp.
      const direct = new DirectReads();
      // tls.connect passes `onread` to its socket (Node's docs list it); @types/node declares it only for net.
      const connectOpts: nodeTls.ConnectionOptions & { onread: OnReadOpts } = {
        host: addr.host,
        port: addr.port,
        ...this.contextOptions(this.creds),
        ...(servername === undefined ? {} : { servername }),
        ...(session === undefined ? {} : { session }),
        ALPNProtocols: [TLS_ALPN_PROTOCOL],
        rejectUnauthorized: true,
        onread: { buffer: direct.next, callback: direct.got },
      };
      const sock = nodeTls.connect(connectOpts);
      // TLS 1.3 sends tickets after the handshake, so sessions are taken whenever they come, for the next connect.
      sock.on('session', (s: Buffer) => this.remember(cacheKey, s));
      let timer: NodeJS.Timeout | undefined;
      let offAbort: Disposer | undefined;
      const settle = (): void => {
        if (timer) clearTimeout(timer);
        offAbort?.();
        sock.removeListener('error', onError);
        sock.removeListener('connect', onTcp);
        sock.removeListener('secureConnect', onSecure);
      };
      const fail = (e: FfnetError): void => {
        settle();
        sock.on('error', () => {});
        sock.destroy();
        reject(e);
      };
      let tcpUp = false;
      const onError = (err: Errno): void => {
        fail(
          tlsError(err, peer, () =>
            tcpUp
              ? new ConnectFailedError(`TLS handshake failed: ${describe(err)}`, { peer, cause: err })
              : new ConnectFailedError(`connect failed: ${describe(err)}`, { peer, cause: err }),
          ),
        );
      };
      const onTcp = (): void => {
        tcpUp = true;
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (handshakeMs > 0) timer = setTimeout(() => fail(new TimeoutError(`TLS handshake timed out after ${handshakeMs} ms`, { peer })), handshakeMs);
      };
      const onSecure = (): void => {
        if (sock.alpnProtocol !== TLS_ALPN_PROTOCOL) {
          fail(new ConnectFailedError(`TLS: the server did not negotiate ALPN '${TLS_ALPN_PROTOCOL}' (not an ffnet tls endpoint)`, { peer }));
          return;
        }
        settle();
        sock.setNoDelay(true);
        resolve(new TlsSocket('tls', sock, addr, peer, hostString(sock.localAddress, sock.localPort), direct));
      };
      sock.once('error', onError);
      sock.once('connect', onTcp);
      sock.once('secureConnect', onSecure);
      offAbort = onAbort(signal, (cause) => fail(new ConnectFailedError(`connect aborted: ${abortReason(signal!)}`, { peer, cause })));
      if (timeoutMs > 0) timer = setTimeout(() => fail(new TimeoutError(`connect timed out after ${timeoutMs} ms`, { peer })), timeoutMs);
    });
  }

  listen(addr: Address, opts: ListenOptions, onSocket: (s: BackendSocket) => void): Promise<BackendListener> {
    const where = formatAddress(addr);
    const { signal } = opts;
    if (this.creds.key === undefined || this.creds.cert === undefined) {
      return Promise.reject(new ListenFailedError(`listen on ${where}: tls() needs key and cert to serve`));
    }
    const mustCert = this.opts.requireClientCert ?? false;
    return new Promise<BackendListener>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new ListenFailedError(`listen on ${where} aborted: ${abortReason(signal)}`, { cause: signal.reason }));
        return;
      }
      const server = nodeTls.createServer({
        ...this.contextOptions(this.creds),
        requestCert: mustCert || (this.opts.requestCert ?? false),
        rejectUnauthorized: mustCert,
        ALPNProtocols: [TLS_ALPN_PROTOCOL],
        // Node's own: a socket whose handshake has not finished by then is destroyed (tlsClientError).
        handshakeTimeout: this.handshakeTimeoutMs > 0 ? this.handshakeTimeoutMs : 2 ** 31 - 1,
        allowHalfOpen: false,
      });
      let listening = false;
      let offAbort: Disposer | undefined;
      const fail = (e: FfnetError): void => {
        offAbort?.();
        this.servers.delete(server);
        server.close();
        reject(e);
      };
      const log = componentLogger('transport', opts.logger);
      server.on('error', (err: Errno) => {
        if (listening) {
          // accept() failures are transient: libuv keeps accepting.
          if (log.isLevelEnabled('debug')) log.debug({ listener: where, err }, 'accept failed');
          return;
        }
        fail(new ListenFailedError(`listen on ${where} failed: ${describe(err)}`, { cause: err }));
      });
      // Failed handshakes (wrong CA, no client certificate, plain tcp): Node has destroyed the socket already;
      // nothing reached the owner, so the log is all that is left of it.
      server.on('tlsClientError', (err: Error, raw: nodeTls.TLSSocket) => {
        if (log.isLevelEnabled('warn'))
          log.warn({ listener: where, peer: hostString(raw.remoteAddress ?? '0.0.0.0', raw.remotePort ?? 0), err }, 'tls handshake failed');
      });
      // Node's handshakeTimeout does not fire for a peer that connects and never sends a byte, so the handshake
      // has its own timer, from accept to secureConnection. Keyed by the remote end, which the TLS socket shares
      // with the raw one and which is unique among a listener's live connections.
      const handshaking = new Map<string, NodeJS.Timeout>();
      const hsMs = this.handshakeTimeoutMs;
      if (hsMs > 0) {
        server.on('connection', (raw: NetSocketType) => {
          const key = `${raw.remoteAddress}|${raw.remotePort}`;
          handshaking.set(
            key,
            setTimeout(() => {
              handshaking.delete(key);
              if (log.isLevelEnabled('warn'))
                log.warn(
                  { listener: where, peer: hostString(raw.remoteAddress ?? '0.0.0.0', raw.remotePort ?? 0), timeoutMs: hsMs },
                  'tls handshake timed out',
                );
              raw.destroy();
            }, hsMs),
          );
          raw.once('close', () => {
            clearTimeout(handshaking.get(key));
            handshaking.delete(key);
          });
        });
      }
      server.on('secureConnection', (sock: nodeTls.TLSSocket) => {
        const key = `${sock.remoteAddress}|${sock.remotePort}`;
        clearTimeout(handshaking.get(key));
        handshaking.delete(key);
        // A client that offered no ALPN passes Node's check (one offering other protocols does not): refused here.
        if (sock.alpnProtocol !== TLS_ALPN_PROTOCOL) {
          if (log.isLevelEnabled('warn')) {
            log.warn(
              { listener: where, peer: hostString(sock.remoteAddress ?? '0.0.0.0', sock.remotePort ?? 0), alpn: sock.alpnProtocol || null },
              'tls peer refused: not ffnet (ALPN)',
            );
          }
          sock.destroy();
          return;
        }
        sock.setNoDelay(true);
        const host = sock.remoteAddress ?? '0.0.0.0';
        const port = sock.remotePort ?? 0;
        const peer = hostString(host, port);
        const direct = new DirectReads();
        const reads = adoptDirectReads(sock, direct) ? direct : undefined;
        onSocket(new TlsSocket('tls', sock, tlsAddress(host, port), peer, hostString(sock.localAddress, sock.localPort), reads));
      });
      offAbort = onAbort(signal, (cause) => fail(new ListenFailedError(`listen on ${where} aborted: ${abortReason(signal!)}`, { cause })));
      this.servers.add(server);
      server.listen({ host: addr.host, port: addr.port, backlog: opts.backlog ?? 511, ...(opts.reusePort ? { reusePort: true } : {}) }, () => {
        offAbort?.();
        listening = true;
        const bound = tlsAddress(addr.host, (server.address() as { port: number }).port);
        let closing: Promise<void> | undefined;
        resolve({
          address: bound,
          close: (): Promise<void> => {
            if (!closing) {
              this.servers.delete(server);
              server.close();
              closing = Promise.resolve();
            }
            return closing;
          },
        });
      });
    });
  }
}

/**
 * A TLS-over-TCP backend (`tls://host:port`) on node:tls: server certificates verified, mTLS with
 * `requireClientCert`, ALPN 'ffnet' on both sides, TLS 1.2 minimum, client sessions resumed, credentials
 * reloadable with reload(). Each call makes a new one.
 */
export function tls(opts: TlsBackendOptions = {}): TlsBackend {
  return new TlsBackendImpl(opts);
}
