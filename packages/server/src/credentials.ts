import { InvalidArgError, type Metadata, UnauthenticatedError } from '@ffnet/serde';
import type { Credentials } from '@ffnet/transport';
import { AUTHORIZATION_KEY } from './auth.js';

/** Credentials that send the same `authorization` value on every call. The value is sent as given (add `Bearer ` yourself). */
export function staticToken(token: string): Credentials {
  if (typeof token !== 'string' || token === '') throw new InvalidArgError('staticToken needs a non-empty string');
  const md: Metadata = new Map([[AUTHORIZATION_KEY, token]]);
  return { metadata: () => md };
}

/** A token and when it stops being valid. */
export interface FetchedToken {
  /** Sent as the `authorization` metadata value, as given. */
  readonly token: string;
  /** Date.now() at which it expires; undefined: it does not (until the server refuses it). */
  readonly expiresAt?: number;
}

export interface TokenCredentialsOptions {
  /** Gets a new token (from an identity provider, a file...). Called once at a time, however many calls wait. */
  fetch(opts: { signal?: AbortSignal }): Promise<FetchedToken> | FetchedToken;
  /**
   * Refresh this long before `expiresAt` (default 30000 ms): calls keep the cached token meanwhile, so none waits
   * for the refresh. Past `expiresAt`, calls wait for the new one.
   */
  refreshBeforeMs?: number;
}

/**
 * Credentials that fetch a token, cache it, and refresh it before it expires. While the cached token is fresh,
 * metadata() answers synchronously (no promise per call); one fetch is in flight at a time, shared by every call
 * that needs it. `invalidate()` (what the client calls when the server answers UnauthenticatedError) drops the
 * cached token, so the next call fetches a new one. A failed fetch fails the calls waiting on it with
 * UnauthenticatedError, whose message never holds a token (the fetch's error is its cause).
 */
export function tokenCredentials(opts: TokenCredentialsOptions): Credentials {
  return new TokenCredentials(opts);
}

class TokenCredentials implements Credentials {
  readonly #fetch: TokenCredentialsOptions['fetch'];
  readonly #refreshBeforeMs: number;
  #md: Metadata | undefined = undefined;
  #expiresAt = Number.POSITIVE_INFINITY;
  #inflight: Promise<Metadata> | undefined = undefined;

  constructor(opts: TokenCredentialsOptions) {
    if (typeof opts?.fetch !== 'function') throw new InvalidArgError('tokenCredentials needs a fetch function');
    const before = opts.refreshBeforeMs ?? 30_000;
    if (!(before >= 0 && Number.isFinite(before))) throw new InvalidArgError(`refreshBeforeMs must be a non-negative number, got ${before}`);
    this.#fetch = opts.fetch;
    this.#refreshBeforeMs = before;
  }

  metadata(): Metadata | Promise<Metadata> {
    const md = this.#md;
    if (md !== undefined) {
      const now = Date.now();
      if (now < this.#expiresAt) {
        // Refreshed in the background: this call, and the ones until the new token lands, use the cached one.
        // A failed early refresh is not lost: the next call tries again, and past expiry a call fails with it.
        if (this.#inflight === undefined && now >= this.#expiresAt - this.#refreshBeforeMs) this.#refresh().catch(() => undefined);
        return md;
      }
    }
    return this.#refresh();
  }

  invalidate(): void {
    this.#md = undefined;
    this.#expiresAt = Number.POSITIVE_INFINITY;
  }

  #refresh(): Promise<Metadata> {
    this.#inflight ??= this.#get().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #get(): Promise<Metadata> {
    let got: FetchedToken;
    try {
      got = await this.#fetch({});
    } catch (e) {
      throw new UnauthenticatedError('credentials: fetching a token failed', { cause: e });
    }
    if (got === null || typeof got !== 'object' || typeof got.token !== 'string' || got.token === '') {
      throw new UnauthenticatedError('credentials: fetch returned no token (expected { token: string, expiresAt?: number })');
    }
    const expiresAt = got.expiresAt ?? Number.POSITIVE_INFINITY;
    if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt))
      throw new UnauthenticatedError('credentials: fetch returned an expiresAt that is not a number');
    const md: Metadata = new Map([[AUTHORIZATION_KEY, got.token]]);
    this.#md = md;
    this.#expiresAt = expiresAt;
    return md;
  }
}
