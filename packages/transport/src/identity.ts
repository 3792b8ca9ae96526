import type { Metadata } from '@ffnet/serde';
import type { Scheme } from './address.js';

/** The process at the other end of a Unix socket, as the kernel recorded it at connect() time. */
export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** The certificate a TLS peer presented (and the handshake verified). */
export interface PeerCertificate {
  /** Subject as `CN=…, O=…` (RFC 4514 order is not promised). */
  readonly subject: string;
  /** subjectAltName entries as OpenSSL prints them, e.g. `DNS:localhost`, `IP Address:127.0.0.1`. */
  readonly subjectAltNames: readonly string[];
  /** SHA-256 of the DER certificate, upper-case hex pairs joined by ':' (as node:tls gives it). */
  readonly fingerprint256: string;
}

/**
 * Who an authenticator decided the peer is. `id` names it in logs and authorization; `roles` are what
 * authorizers and the built-in admin checks look at (Core's admin methods want the role `admin`).
 */
export interface Principal {
  readonly id: string;
  readonly roles?: readonly string[];
  /** Anything else the authenticator wants handlers to see (tenant, scopes…). Never sent to the peer. */
  readonly claims?: Readonly<Record<string, unknown>>;
  /** Date.now() after which the server authenticates the connection again (a token's expiry). */
  readonly expiresAt?: number;
}

/** What the channel proved about the peer before any call, and what an authenticator is shown. */
export interface AuthRequest {
  readonly scheme: Scheme;
  /** The peer's address, for messages. */
  readonly peer: string;
  /** tls: the verified client certificate (mTLS). */
  readonly certificate?: PeerCertificate;
  /** unix: the peer process (SO_PEERCRED); undefined when unreadable. */
  readonly credentials?: PeerCredentials;
  /** The first call's metadata (or the IBConnect request's); tokens travel as `authorization`. */
  readonly metadata?: Metadata;
}

/**
 * Runs once per connection (again when the token changes or the principal expires). Resolves to the principal;
 * rejects, or resolves undefined, to refuse: the peer then gets UnauthenticatedError with no detail.
 */
export type ConnectionAuthenticator = (req: AuthRequest, opts: { signal: AbortSignal }) => Principal | undefined | Promise<Principal | undefined>;

/**
 * A client's proof of who it is, attached to calls (and to rdma's IBConnect request) as metadata. `metadata()`
 * should answer from a cache without a promise when it can: it runs per call.
 */
export interface Credentials {
  metadata(opts: { peer: string; signal?: AbortSignal }): Metadata | Promise<Metadata>;
  /** The peer refused what was sent (UnauthenticatedError): drop any cached token before the one retry. */
  invalidate?(): void;
}

/** Whether an authenticator's answer is a principal at all (anything else is a refusal). */
export function isPrincipal(p: unknown): p is Principal {
  return p !== null && typeof p === 'object' && typeof (p as Principal).id === 'string';
}

/** Whether `p` is still good at `now`: no expiry, or one still ahead (NaN counts as expired). */
export function principalFresh(p: Principal, now: number = Date.now()): boolean {
  return p.expiresAt === undefined || now < p.expiresAt;
}
