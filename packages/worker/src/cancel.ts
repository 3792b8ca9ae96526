import { encodeMessage, MessageFlags } from '@ffnet/serde';

/**
 * Cancel notices (an ffnet extension; 3FS has none). When a caller aborts a call, the client sends a request
 * envelope to this reserved service with the *cancelled call's* uuid and no payload. The server's Processor
 * intercepts it before any service lookup, aborts the `ctx.signal` of the matching call in flight on the same
 * connection, and sends no reply. A peer that does not know the notice answers InvalidMethodID for that uuid,
 * which the client drops as a late response, so the extension is harmless against 3FS-style servers.
 */
export const CANCEL_SERVICE_ID = 0xffff;
export const CANCEL_METHOD_ID = 1;

export function encodeCancelNotice(uuid: number): Buffer {
  return encodeMessage({
    uuid,
    serviceId: CANCEL_SERVICE_ID,
    methodId: CANCEL_METHOD_ID,
    flags: MessageFlags.IsReq,
    version: 0,
    timeoutMs: 0,
    payload: undefined,
  });
}
