import { componentLogger, type Logger, onAbort } from '@ffnet/common';
import { InvalidConfigError, type Metadata, type MetadataValue, PermissionDeniedError, TimeoutError, UnauthenticatedError } from '@ffnet/serde';
import type { AuthRequest, ConnectionAuthenticator, Principal, Transport } from '@ffnet/transport';
import { isPrincipal, principalFresh } from '@ffnet/transport/internal';
import type { CallContext, PeerIdentity, ServerHandler, ServerInterceptor } from '@ffnet/worker';
import { SET_PRINCIPAL } from '@ffnet/worker/internal';

/** The metadata key tokens travel under, in calls and in rdma's IBConnect request. */
export const AUTHORIZATION_KEY = 'authorization';

/** What an authorizer is asked about one call. */
export interface AuthorizeCall {
  /** The service's name, e.g. `Core`. */
  readonly service: string;
  /** The method's name, e.g. `shutdown`. */
  readonly method: string;
  /** Who called (built when first read). */
  readonly identity: PeerIdentity;
  /** The call's request metadata. */
  readonly metadata: ReadonlyMap<string, MetadataValue>;
}

/**
 * Runs per call, after authentication and before interceptors and the handler (Core's methods included).
 * false, or a throw, refuses the call with PermissionDeniedError naming only `Service.method`.
 */
export type Authorizer = (call: AuthorizeCall, opts: { signal: AbortSignal }) => boolean | Promise<boolean>;

/** What the onAuthError hook learns about a refusal. The caller was told none of it. */
export interface AuthErrorInfo {
  /** 'unauthenticated': the authenticator refused the connection; 'denied': the authorizer refused a call. */
  readonly kind: 'unauthenticated' | 'denied';
  readonly peer: string;
  /** `Service.method` of the call that met the refusal. */
  readonly method: string;
  /** What the authenticator or authorizer threw (a TimeoutError past authTimeoutMs); undefined when it said no. */
  readonly error: unknown;
}

/** Sees every refusal with its detail, the place to log it. Must not throw (a throw is ignored). */
export type AuthErrorHook = (info: AuthErrorInfo) => void;

/** The security options of a server, or of one group (which then replace the server's). */
export interface AuthOptions {
  /**
   * Who is calling, decided once per connection on its first call (again when a call's `authorization` differs
   * from the one that authenticated the connection, or the principal's `expiresAt` passed). It sees the scheme,
   * the TLS client certificate, the unix peer's credentials and that call's metadata. Its principal is what
   * `ctx.peerIdentity.principal` holds; a refusal (throw, or undefined) fails the call with
   * UnauthenticatedError, without detail. Default none: every peer is let in unauthenticated.
   */
  authenticate?: ConnectionAuthenticator;
  /** Per call: may this identity call this method (see Authorizer)? Default none: every call is allowed. */
  authorize?: Authorizer;
  /** How long an authentication may take before it counts as a refusal (default 5000 ms). */
  authTimeoutMs?: number;
  /**
   * Refused authentications on one connection (in all, successes between them notwithstanding) after which it
   * is closed (default 3): no guessing on one socket.
   */
  maxAuthFailures?: number;
  /** Sees each refusal with its detail (the caller is told nothing). */
  onAuthError?: AuthErrorHook;
}

/** Counters of one group's authentication and authorization (in GroupStats and ServerStats). */
export interface AuthStats {
  /** Authenticator runs that produced a principal. */
  readonly authenticated: number;
  /** Authenticator runs that refused (an undefined result, a throw, or past authTimeoutMs). */
  readonly refused: number;
  /** Calls the authorizer refused. */
  readonly denied: number;
  /** Connections closed after maxAuthFailures refusals. */
  readonly closed: number;
}

export const DEFAULT_AUTH_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_AUTH_FAILURES = 3;

/** What a refused caller is told: nothing about the token or why. */
const UNAUTHENTICATED_MESSAGE = 'unauthenticated';

/** One connection's authentication. */
class ConnAuth {
  /** The `authorization` value that authenticated the connection (undefined: none was sent). */
  token: MetadataValue | undefined = undefined;
  principal: Principal | undefined = undefined;
  /** The authentication in flight, and the token it is for. */
  pending: Promise<Principal> | undefined = undefined;
  pendingToken: MetadataValue | undefined = undefined;
  failures = 0;
}

function sameToken(a: MetadataValue | undefined, b: MetadataValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || typeof a === 'string' || typeof b === 'string') return false;
  return Buffer.compare(a, b) === 0;
}

function isPromiseLike<T>(v: unknown): v is PromiseLike<T> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<T>).then === 'function';
}

/**
 * Why an authenticator or authorizer refused, for the log: the kind of error only. Its message is the user's
 * code's words and may quote the token it was given.
 */
function refusalCause(error: unknown): { cause?: string } {
  if (error === undefined) return {};
  return { cause: error instanceof Error ? error.name : typeof error };
}

/** `Core.shutdown` → `shutdown`. */
function shortName(ctx: CallContext): string {
  const full = ctx.method.name;
  const svc = ctx.service.name;
  return full.length > svc.length && full.startsWith(svc) && full[svc.length] === '.' ? full.slice(svc.length + 1) : full;
}

/** The call as an authorizer sees it, with its second argument folded in: identity and signal are made on first read. */
class AuthorizeArgs implements AuthorizeCall {
  readonly service: string;
  readonly method: string;
  constructor(readonly ctx: CallContext) {
    this.service = ctx.service.name;
    this.method = shortName(ctx);
  }
  get identity(): PeerIdentity {
    return this.ctx.peerIdentity;
  }
  get metadata(): ReadonlyMap<string, MetadataValue> {
    return this.ctx.metadata;
  }
  get signal(): AbortSignal {
    return this.ctx.signal;
  }
}

function positiveInteger(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < 1) throw new InvalidConfigError(`${name} must be a positive integer, got ${String(v)}`);
  return n;
}

/**
 * A group's authentication and authorization, run as the outermost step of every call: authenticate (per
 * connection, cached), authorize (per call), then the interceptors and the handler. A call on an authenticated
 * connection whose token has not changed costs a map lookup and a compare, and no promise unless the authorizer
 * returns one.
 */
export class ConnectionAuth {
  readonly #authenticate: ConnectionAuthenticator | undefined;
  readonly #authorize: Authorizer | undefined;
  readonly #timeoutMs: number;
  readonly #maxFailures: number;
  readonly #hook: AuthErrorHook | undefined;
  readonly #log: Logger;
  readonly #conns = new WeakMap<Transport, ConnAuth>();
  #authenticated = 0;
  #refused = 0;
  #denied = 0;
  #closed = 0;

  /** `logger`: the root logger (scoped to `server`); refusals are logged at warn, never a token or the authenticator's words. */
  constructor(opts: AuthOptions, logger?: Logger) {
    this.#log = componentLogger('server', logger);
    if (opts.authenticate !== undefined && typeof opts.authenticate !== 'function') throw new InvalidConfigError('authenticate must be a function');
    if (opts.authorize !== undefined && typeof opts.authorize !== 'function') throw new InvalidConfigError('authorize must be a function');
    this.#authenticate = opts.authenticate;
    this.#authorize = opts.authorize;
    this.#timeoutMs = positiveInteger('authTimeoutMs', opts.authTimeoutMs, DEFAULT_AUTH_TIMEOUT_MS);
    this.#maxFailures = positiveInteger('maxAuthFailures', opts.maxAuthFailures, DEFAULT_MAX_AUTH_FAILURES);
    this.#hook = opts.onAuthError;
  }

  /** Whether `opts` asks for anything: without, no step is added and calls cost what they did. */
  static wanted(opts: AuthOptions): boolean {
    return opts.authenticate !== undefined || opts.authorize !== undefined;
  }

  get stats(): AuthStats {
    return { authenticated: this.#authenticated, refused: this.#refused, denied: this.#denied, closed: this.#closed };
  }

  /** The step in front of the group's interceptors. */
  readonly interceptor: ServerInterceptor = (next) => (ctx, req) => {
    if (this.#authenticate === undefined) return this.#authorized(ctx, req, next);
    const p = this.#cached(ctx);
    if (p === undefined) return this.#slow(ctx, req, next);
    ctx[SET_PRINCIPAL](p);
    return this.#authorized(ctx, req, next);
  };

  /** The principal of the connection when no authentication has to run for this call. */
  #cached(ctx: CallContext): Principal | undefined {
    const t = ctx.transport;
    const token = ctx.metadata.get(AUTHORIZATION_KEY);
    const st = this.#conns.get(t);
    if (st === undefined) {
      // Authenticated by the backend's own handshake (rdma): taken as is. The token a credentialed client sends
      // on every call is the one its handshake carried, so the first one seen is recorded rather than re-checked.
      const own = t.principal;
      if (own === undefined || !principalFresh(own)) return undefined;
      const fromHandshake = new ConnAuth();
      fromHandshake.token = token;
      fromHandshake.principal = own;
      this.#conns.set(t, fromHandshake);
      return own;
    }
    const p = st.principal;
    if (p === undefined || st.pending !== undefined || !sameToken(st.token, token) || !principalFresh(p)) return undefined;
    return p;
  }

  async #slow(ctx: CallContext, req: unknown, next: ServerHandler): Promise<unknown> {
    const p = await this.#principalFor(ctx);
    ctx[SET_PRINCIPAL](p);
    return this.#authorized(ctx, req, next);
  }

  /** Authenticates the call's connection, sharing a run with concurrent calls that bring the same token. */
  async #principalFor(ctx: CallContext): Promise<Principal> {
    const t = ctx.transport;
    const token = ctx.metadata.get(AUTHORIZATION_KEY);
    let st = this.#conns.get(t);
    if (st === undefined) {
      st = new ConnAuth();
      this.#conns.set(t, st);
    }
    for (;;) {
      const pending = st.pending;
      if (pending === undefined) break;
      if (sameToken(st.pendingToken, token)) return pending;
      // Another token is being checked: one run at a time per connection, then look again.
      await pending.then(
        () => undefined,
        () => undefined,
      );
      const p = st.principal;
      if (st.pending === undefined && p !== undefined && sameToken(st.token, token) && principalFresh(p)) return p;
    }
    if (st.failures >= this.#maxFailures) throw this.#refusal(ctx);
    const run = this.#run(ctx, st, token);
    st.pending = run;
    st.pendingToken = token;
    try {
      return await run;
    } finally {
      if (st.pending === run) {
        st.pending = undefined;
        st.pendingToken = undefined;
      }
    }
  }

  async #run(ctx: CallContext, st: ConnAuth, token: MetadataValue | undefined): Promise<Principal> {
    const t = ctx.transport;
    const request: AuthRequest = {
      scheme: t.address.scheme,
      peer: t.peer,
      certificate: t.peerCertificate(),
      credentials: t.peerCredentials(),
      metadata: new Map(ctx.metadata) as Metadata,
    };
    const ac = new AbortController();
    const limit = this.#timeoutMs;
    const timer = setTimeout(() => ac.abort(new TimeoutError(`the authenticator did not answer within ${limit} ms`, { peer: t.peer })), limit);
    let principal: Principal | undefined;
    let error: unknown;
    try {
      const r = this.#authenticate!(request, { signal: ac.signal });
      const got = isPromiseLike<Principal | undefined>(r) ? await untilAborted(r, ac.signal) : r;
      if (got !== undefined && !isPrincipal(got)) throw new TypeError('the authenticator returned something other than a principal ({ id: string })');
      principal = got;
    } catch (e) {
      error = e;
    } finally {
      clearTimeout(timer);
    }
    if (principal !== undefined) {
      // Refusals are never forgiven on a connection: a valid token between guesses must not reset the count.
      this.#authenticated++;
      st.token = token;
      st.principal = principal;
      t.principal = principal;
      return principal;
    }
    this.#refused++;
    st.failures++;
    this.#report({ kind: 'unauthenticated', peer: t.peer, method: ctx.method.name, error });
    const closing = st.failures >= this.#maxFailures && t.state === 'ready';
    if (this.#log.isLevelEnabled('warn')) {
      this.#log.warn(
        { peer: t.peer, method: ctx.method.name, failures: st.failures, closing, ...refusalCause(error) },
        closing ? `call refused: unauthenticated; closing the connection after ${st.failures} refusals` : 'call refused: unauthenticated',
      );
    }
    if (closing) {
      this.#closed++;
      // After this refusal has been answered: the reply is queued before the graceful close flushes.
      setImmediate(() => void t.close());
    }
    throw this.#refusal(ctx);
  }

  #refusal(ctx: CallContext): UnauthenticatedError {
    return new UnauthenticatedError(UNAUTHENTICATED_MESSAGE, { peer: ctx.peer });
  }

  #authorized(ctx: CallContext, req: unknown, next: ServerHandler): unknown {
    const authorize = this.#authorize;
    if (authorize === undefined) return next(ctx, req);
    const args = new AuthorizeArgs(ctx);
    let ok: boolean | Promise<boolean>;
    try {
      ok = authorize(args, args);
    } catch (e) {
      throw this.#denial(ctx, e);
    }
    if (isPromiseLike<boolean>(ok)) return this.#authorizedLater(ctx, req, next, ok);
    if (ok !== true) throw this.#denial(ctx, undefined);
    return next(ctx, req);
  }

  async #authorizedLater(ctx: CallContext, req: unknown, next: ServerHandler, pending: PromiseLike<boolean>): Promise<unknown> {
    let ok: boolean;
    try {
      ok = await pending;
    } catch (e) {
      throw this.#denial(ctx, e);
    }
    if (ok !== true) throw this.#denial(ctx, undefined);
    return next(ctx, req);
  }

  #denial(ctx: CallContext, error: unknown): PermissionDeniedError {
    this.#denied++;
    this.#report({ kind: 'denied', peer: ctx.peer, method: ctx.method.name, error });
    if (this.#log.isLevelEnabled('warn')) {
      this.#log.warn(
        { peer: ctx.peer, method: ctx.method.name, principal: ctx.peerIdentity.principal?.id, ...refusalCause(error) },
        'call refused: permission denied',
      );
    }
    // The reply names the method only: not the principal, not the authorizer's reason.
    return new PermissionDeniedError(`${ctx.method.name} is not allowed`, { peer: ctx.peer });
  }

  #report(info: AuthErrorInfo): void {
    if (this.#hook === undefined) return;
    try {
      this.#hook(info);
    } catch (e) {
      // A hook is for looking; the caller is answered regardless, and the hook's own bug is not lost.
      if (this.#log.isLevelEnabled('warn')) this.#log.warn({ peer: info.peer, method: info.method, err: e }, 'onAuthError hook threw');
    }
  }
}

/** `p`, or a rejection with the signal's reason once it aborts. */
function untilAborted<T>(p: PromiseLike<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const off = onAbort(signal, (reason) => reject(reason));
    p.then(
      (v) => {
        off();
        resolve(v);
      },
      (e: unknown) => {
        off();
        reject(e);
      },
    );
  });
}
