// HeaderSchemas: how the Processor lets decodeMessage3fs decode a 3fs payload in its pass over the header (the
// server's method by ids, the client's waiting call by uuid), and takeRequest leaving such a request alone while
// still decoding (and refusing) one that arrived as bytes.
import {
  decodeMessage3fs,
  encodeMessage3fs,
  FRAME_HEADER_SIZE,
  type FrameParts,
  MessageFlags,
  type MessagePacket,
  okResult,
  s,
  VerifyRequestFailedError,
} from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { describe, expect, it } from 'vitest';
import type { MethodBinding, ServiceLookup } from '../src/call-context.js';
import { HeaderSchemas, takeRequest } from '../src/payload.js';
import type { Waiter } from '../src/waiter.js';

const Req = s.struct('t::Req', { name: s.string, n: s.u32 });
const Rsp = s.struct('t::Rsp', { sum: s.u64 });

function body(frame: FrameParts): Buffer {
  return Buffer.concat(Array.isArray(frame) ? frame : [frame]).subarray(FRAME_HEADER_SIZE);
}

const method = { name: 'T.m', request: Req, response: Rsp, calls: 0, errors: 0, handler: () => undefined } as unknown as MethodBinding;
const seen: Transport[] = [];
const lookup: ServiceLookup = {
  service: (serviceId, t) => {
    seen.push(t);
    return serviceId === 7 ? ({ name: 'T', method: (id: number) => (id === 1 ? method : undefined) } as never) : undefined;
  },
};
const waiter = { get: (uuid: number) => (uuid === 41 ? { responseSchema: Rsp } : undefined) } as unknown as Waiter;
const t = { peer: 'tcp://peer:1' } as Transport;

function request(serviceId: number, payload: unknown): Buffer {
  const pkt: MessagePacket = { uuid: 9, serviceId, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload };
  return body(encodeMessage3fs(pkt, Req));
}

describe('HeaderSchemas', () => {
  const hs = new HeaderSchemas({ lookup, waiter });

  it("a request to a known method arrives decoded, looked up on the frame's transport", () => {
    seen.length = 0;
    const pkt = decodeMessage3fs(request(7, { name: 'a', n: 3 }), false, undefined, hs.at(t));
    expect(pkt.payload).toEqual({ name: 'a', n: 3 });
    expect(seen).toEqual([t]);
    // takeRequest leaves it as it is.
    expect(takeRequest(pkt, method, true, t.peer)).toBeUndefined();
    expect(pkt.payload).toEqual({ name: 'a', n: 3 });
  });

  it('a request to an unknown service stays bytes', () => {
    const pkt = decodeMessage3fs(request(8, { name: 'a', n: 3 }), false, undefined, hs.at(t));
    expect(pkt.payload).toBeInstanceOf(Uint8Array);
  });

  it('a response for a waiting call arrives as its decoded Result; for no call it stays bytes', () => {
    const rsp = (uuid: number) =>
      body(encodeMessage3fs({ uuid, serviceId: 7, methodId: 1, flags: 0, version: 0, timeoutMs: 0, payload: okResult({ sum: 2n ** 60n }) }, Rsp));
    expect(decodeMessage3fs(rsp(41), false, undefined, hs.at(t)).payload).toEqual({ ok: true, value: { sum: 2n ** 60n } });
    expect(decodeMessage3fs(rsp(42), false, undefined, hs.at(t)).payload).toBeInstanceOf(Uint8Array);
  });

  it('a request left as bytes is still decoded by takeRequest, and refused with 2002 when it does not decode', () => {
    const ok = decodeMessage3fs(request(7, { name: 'b', n: 4 }), false);
    expect(takeRequest(ok, method, true, t.peer)).toBeUndefined();
    expect(ok.payload).toEqual({ name: 'b', n: 4 });
    const bad = decodeMessage3fs(request(7, { name: 'b', n: 4 }), false);
    bad.payload = (bad.payload as Uint8Array).subarray(0, 3);
    expect(takeRequest(bad, method, true, t.peer)).toBeInstanceOf(VerifyRequestFailedError);
  });
});
