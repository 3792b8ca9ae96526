import { MessageFlags } from '../src/index.js';

/** A request to service 7, method 1 whose payload is `{ data }`, the shape of the bench's calls. */
export const dataRequest = (uuid: number, data: unknown = Buffer.alloc(64, uuid)) => ({
  uuid,
  serviceId: 7,
  methodId: 1,
  flags: MessageFlags.IsReq,
  version: 0,
  timeoutMs: 1000,
  payload: { data },
});
