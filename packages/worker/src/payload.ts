// Where a request's payload meets its method's schemas (issue 14): under the 3fs envelope the payload arrives as
// bytes and is decoded here once the method is known; under ffnet a method with schemas has its request and
// response checked, and a method without pays one property read.
import {
  decodeRequest3fs,
  FfnetError,
  fromMsgpack,
  type HeaderSchemas3fs,
  InvalidArgError,
  type MessagePacket,
  type Schema,
  VerifyRequestFailedError,
  validate,
} from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import type { MethodBinding, ServiceLookup } from './call-context.js';
import type { Waiter } from './waiter.js';

/**
 * The schemas a 3fs frame's header points at, for decodeMessage3fs to decode the payload in its pass over the frame:
 * a request's method as #request will find it (same lookup, same transport, same tick), a response's call by uuid.
 * One per Processor, pointed at the frame's transport before each decode.
 */
export class HeaderSchemas implements HeaderSchemas3fs {
  #t: Transport | undefined = undefined;
  readonly #host: { readonly lookup: ServiceLookup | undefined; readonly waiter: Waiter | undefined };

  constructor(host: { readonly lookup: ServiceLookup | undefined; readonly waiter: Waiter | undefined }) {
    this.#host = host;
  }

  at(t: Transport): this {
    this.#t = t;
    return this;
  }

  requestSchema(serviceId: number, methodId: number): Schema | undefined {
    const t = this.#t;
    return t === undefined ? undefined : this.#host.lookup?.service(serviceId, t)?.method(methodId)?.request;
  }

  responseSchema(uuid: number): Schema | undefined {
    return this.#host.waiter?.get(uuid)?.responseSchema;
  }
}

/**
 * Replaces `pkt.payload` with the request its method takes: decoded with the request schema (3fs; what does not
 * decode is 2002 VerifyRequestFailed, as in 3FS), or checked against it (ffnet; InvalidArg naming the field).
 * Returns the error to answer with instead of running the handler, or undefined.
 */
export function takeRequest(pkt: MessagePacket, method: MethodBinding, threefs: boolean, peer: string): FfnetError | undefined {
  const schema = method.request;
  if (threefs) {
    // Bytes unless decodeMessage3fs decoded it in the header pass (HeaderSchemas): then it is the request already.
    if (!(pkt.payload instanceof Uint8Array)) return undefined;
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
