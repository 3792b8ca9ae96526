// Where a request's payload meets its method's schemas (issue 14): under the 3fs envelope the payload arrives as
// bytes and is decoded here once the method is known; under ffnet a method with schemas has its request and
// response checked, and a method without pays one property read.
import { decodeRequest3fs, FfnetError, fromMsgpack, InvalidArgError, type MessagePacket, type Schema, VerifyRequestFailedError, validate } from '@ffnet/serde';
import type { MethodBinding } from './call-context.js';

/**
 * Replaces `pkt.payload` with the request its method takes: decoded with the request schema (3fs; what does not
 * decode is 2002 VerifyRequestFailed, as in 3FS), or checked against it (ffnet; InvalidArg naming the field).
 * Returns the error to answer with instead of running the handler, or undefined.
 */
export function takeRequest(pkt: MessagePacket, method: MethodBinding, threefs: boolean, peer: string): FfnetError | undefined {
  const schema = method.request;
  if (threefs) {
    if (schema === undefined) return new VerifyRequestFailedError(`${method.name} has no request schema to decode a 3fs request with`, { peer });
    try {
      pkt.payload = decodeRequest3fs(schema, pkt.payload as Uint8Array, method.name, peer);
    } catch (e) {
      return e as FfnetError;
    }
    return undefined;
  }
  if (schema === undefined) return undefined;
  // msgpack delivers safe 64-bit integers as numbers and maps as objects: back to the schema's shape first.
  pkt.payload = fromMsgpack(schema, pkt.payload);
  return mismatch(schema, pkt.payload, 'request', method.name, peer);
}

/** The response of a method with a response schema, checked: the InvalidArg naming the field, or undefined. */
export function checkResponse(method: MethodBinding, value: unknown, peer: string): FfnetError | undefined {
  const schema = method.response;
  return schema === undefined ? undefined : mismatch(schema, value, 'response', method.name, peer);
}

function mismatch(schema: Schema, value: unknown, what: 'request' | 'response', name: string, peer: string): FfnetError | undefined {
  try {
    validate(schema, value, what);
    return undefined;
  } catch (e) {
    const why = FfnetError.is(e) ? e.reason : String(e);
    return new InvalidArgError(`${name} ${what} does not fit its schema: ${why}`, { peer, cause: e });
  }
}
