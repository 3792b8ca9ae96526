import { type Logger, noopLogger } from '@ffnet/common';
import { errorFromCode, FfnetError, SocketClosedError, SocketError, StatusCode } from '@ffnet/serde';

/**
 * What a call learns when the connection it went out on dies: SocketClosed or SocketError, never the
 * transport's other codes (an idle-check Timeout, a corrupt frame...), which stay available as the cause.
 */
export function connectionLostError(peer: string, err: FfnetError | undefined): FfnetError {
  if (err === undefined) return new SocketClosedError('connection closed before the response arrived', { peer });
  if (err.code === StatusCode.SocketClosed || err.code === StatusCode.SocketError) return err;
  return new SocketError(`connection failed (${err.codeName}) before the response arrived`, { peer, cause: err });
}

/** Any thrown value as an FfnetError: ours keep their code, anything else becomes 999 Unknown with its message. */
export function toFfnetError(e: unknown, peer?: string): FfnetError {
  if (FfnetError.is(e)) return e;
  const message = e instanceof Error ? e.message : String(e);
  return errorFromCode(StatusCode.Unknown, message, { cause: e, ...(peer ? { peer } : {}) });
}

/** What an onHandlerError hook learns about the call whose failure was masked. */
export interface HandlerErrorInfo {
  /** The service's name. */
  readonly service: string;
  /** `Service.method` (`Service#id` for an unknown method). */
  readonly method: string;
  /** The caller's address. */
  readonly peer: string;
  /** The request id. */
  readonly uuid: number;
}

/** Sees each handler failure that was masked, with the original thrown value. Must not throw (a throw is ignored). */
export type HandlerErrorHook = (err: unknown, info: HandlerErrorInfo) => void;

/** A masked failure as kept by HandlerErrors.recent(). */
export interface MaskedHandlerError extends HandlerErrorInfo {
  /** What the handler threw. */
  readonly error: unknown;
  /** When, in ms since the epoch. */
  readonly at: number;
}

/** What a caller is told, with code 999, when a handler fails with anything but an FfnetError. */
export const INTERNAL_ERROR_MESSAGE = 'internal error';

/** How many masked failures HandlerErrors keeps for recent(). */
export const RECENT_HANDLER_ERRORS = 16;

/**
 * The one place a handler's failure becomes what its caller is told. An FfnetError is the service's API (its
 * code and reason go out as they are). Anything else (a plain Error, a thrown string, a response that does
 * not encode) can carry paths, hosts or data, so the caller gets 999 "internal error" and the original stays
 * local: as the masked error's `cause` (which never crosses the wire), in the hook, and among the last
 * RECENT_HANDLER_ERRORS failures. A service with `exposeErrors` gets the old behaviour: 999 with the message.
 */
export class HandlerErrors {
  readonly #hook: HandlerErrorHook | undefined;
  readonly #log: Logger;
  readonly #recent: MaskedHandlerError[] = [];
  #next = 0;
  #count = 0;

  constructor(hook?: HandlerErrorHook, logger: Logger = noopLogger) {
    this.#hook = hook;
    this.#log = logger;
  }

  /** Masked failures so far. */
  get count(): number {
    return this.#count;
  }

  /** The last RECENT_HANDLER_ERRORS masked failures, oldest first. */
  recent(): MaskedHandlerError[] {
    return [...this.#recent.slice(this.#next), ...this.#recent.slice(0, this.#next)];
  }

  /**
   * What the caller of `info` is told for `e`. `intended` is false for failures that are never the service's
   * API even when typed (the response did not encode: the message quotes the value's own error).
   */
  toResponse(e: unknown, exposeErrors: boolean | undefined, info: HandlerErrorInfo, intended: boolean): FfnetError {
    if (intended && FfnetError.is(e)) return e;
    if (exposeErrors === true) return toFfnetError(e, info.peer);
    this.#count++;
    const kept: MaskedHandlerError = { ...info, error: e, at: Date.now() };
    if (this.#recent.length < RECENT_HANDLER_ERRORS) this.#recent.push(kept);
    else this.#recent[this.#next] = kept;
    this.#next = (this.#next + 1) % RECENT_HANDLER_ERRORS;
    // The detail stays local: here, in the hook, in recent(); the caller is told 999 "internal error".
    if (this.#log.isLevelEnabled('warn'))
      this.#log.warn({ service: info.service, method: info.method, peer: info.peer, uuid: info.uuid, err: e }, 'handler failed (masked)');
    if (this.#hook !== undefined) {
      try {
        this.#hook(e, info);
      } catch (hookErr) {
        // A hook is for looking; the caller is answered regardless, and the hook's own bug is not lost.
        if (this.#log.isLevelEnabled('warn'))
          this.#log.warn({ service: info.service, method: info.method, peer: info.peer, err: hookErr }, 'onHandlerError hook threw');
      }
    }
    return errorFromCode(StatusCode.Unknown, INTERNAL_ERROR_MESSAGE, { cause: e, peer: info.peer });
  }
}
