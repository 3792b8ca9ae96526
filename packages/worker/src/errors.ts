import { FfnetError, SocketClosedError, SocketError, StatusCode, errorFromCode } from '@ffnet/serde';

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
