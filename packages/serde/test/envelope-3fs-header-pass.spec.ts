// decodeMessage3fs with HeaderSchemas3fs: the payload decoded in the pass over the header (request value, ok
// Result), and left as bytes whenever the later decode must decide (no schema, error Result, bad payload, a request
// value that could itself be bytes), so that the errors stay those of decodeRequest3fs / decodeResult3fs.
import { describe, expect, it } from 'vitest';
import {
  decodeMessage3fs,
  decodeRequest3fs,
  encode3fs,
  encodeMessage3fs,
  errResult,
  FRAME_HEADER_SIZE,
  type FrameParts,
  type HeaderSchemas3fs,
  MessageFlags,
  type MessagePacket,
  okResult,
  type Schema,
  s,
  VerifyRequestFailedError,
} from '../src/index.js';
import { loadVectors } from './fixtures/kit.js';

const Req = s.struct('t::Req', { id: s.u64, name: s.string, data: s.bytes });
const Rsp = s.struct('t::Rsp', { n: s.u32 });

function body(frame: FrameParts): Buffer {
  return Buffer.concat(Array.isArray(frame) ? frame : [frame]).subarray(FRAME_HEADER_SIZE);
}

function request(payload: unknown, schema: Schema = Req, serviceId = 3, methodId = 4): Buffer {
  const pkt: MessagePacket = { uuid: 77, serviceId, methodId, flags: MessageFlags.IsReq, version: 1, timeoutMs: 0, payload };
  return body(encodeMessage3fs(pkt, schema));
}

function response(payload: unknown, schema: Schema | undefined = Rsp): Buffer {
  const pkt: MessagePacket = { uuid: 78, serviceId: 3, methodId: 4, flags: 0, version: 1, timeoutMs: 0, payload, timestamps: undefined };
  return body(encodeMessage3fs(pkt, schema));
}

/** Records what decodeMessage3fs asked for. */
function schemas(req: Schema | undefined, rsp: Schema | undefined): HeaderSchemas3fs & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    requestSchema: (serviceId, methodId) => {
      asked.push(`req ${serviceId}.${methodId}`);
      return req;
    },
    responseSchema: (uuid) => {
      asked.push(`rsp ${uuid}`);
      return rsp;
    },
  };
}

describe('decodeMessage3fs in one pass', () => {
  const value = { id: 1n << 60n, name: 'x', data: new Uint8Array([1, 2, 3]) };

  it('decodes a request with the schema of the method its header names', () => {
    const hs = schemas(Req, undefined);
    const pkt = decodeMessage3fs(request(value), false, undefined, hs);
    expect(hs.asked).toEqual(['req 3.4']);
    expect(pkt.payload).toEqual(value);
    // A copy, not a view of the frame: the frame buffer is reused after the call.
    expect((pkt.payload as typeof value).data.buffer.byteLength).toBe(3);
    expect(pkt.uuid).toBe(77);
  });

  it('decodes an ok response into its Result with the waiting call’s schema', () => {
    const hs = schemas(undefined, Rsp);
    const pkt = decodeMessage3fs(response(okResult({ n: 9 })), false, undefined, hs);
    expect(hs.asked).toEqual(['rsp 78']);
    expect(pkt.payload).toEqual({ ok: true, value: { n: 9 } });
  });

  it('leaves the payload as bytes without a schema, for an error Result, and for a value that may be bytes', () => {
    expect(decodeMessage3fs(request(value), false, undefined, schemas(undefined, undefined)).payload).toBeInstanceOf(Uint8Array);
    const err = decodeMessage3fs(response(errResult(2002, 'no')), false, undefined, schemas(undefined, Rsp));
    expect(err.payload).toBeInstanceOf(Uint8Array);
    expect((err.payload as Uint8Array)[0]).toBe(0);
    const Raw = s.optional(s.bytes);
    const raw = decodeMessage3fs(request(new Uint8Array([5]), Raw), false, undefined, schemas(Raw, undefined));
    expect(raw.payload).toBeInstanceOf(Uint8Array);
    expect(Array.from(raw.payload as Uint8Array)).toEqual([1, 1, 5]);
  });

  it('leaves a payload that does not decode as bytes, so that the later decode makes the error it always made', () => {
    const Other = s.struct('t::Other', { a: s.u8 });
    const frame = request({ a: 1 }, Other);
    // The same bytes read as Req: a one-byte table where a u64 starts.
    const pkt = decodeMessage3fs(frame, false, undefined, schemas(Req, undefined));
    expect(pkt.payload).toBeInstanceOf(Uint8Array);
    expect(() => decodeRequest3fs(Req, pkt.payload as Uint8Array, 'T.m')).toThrow(VerifyRequestFailedError);
  });

  it('gives the same values as the two-pass decode for every kit packet', () => {
    let decoded = 0;
    for (const v of loadVectors().filter((x) => x.name.startsWith('packet.req.') || x.name.startsWith('packet.rsp.'))) {
      const b = Buffer.from(v.hex, 'hex');
      const two = decodeMessage3fs(b, false);
      const isReq = (two.flags & MessageFlags.IsReq) !== 0;
      // Reads the first byte of any table (or keeps its default), so every ok payload decodes with it.
      const Any = s.struct('t::Loose', { first: s.u8 });
      const one = decodeMessage3fs(b, false, undefined, schemas(isReq ? Any : undefined, isReq ? undefined : Any));
      expect({ ...one, payload: undefined }, v.name).toEqual({ ...two, payload: undefined });
      if (!(one.payload instanceof Uint8Array)) decoded++;
    }
    expect(decoded).toBeGreaterThan(0);
  });
});

describe('encodeMessage3fs takes the payload straight from the codec scratch', () => {
  const Blob = s.struct('t::Blob', { data: s.bytes });
  for (const size of [0, 10, 62, 63, 200, 70_000]) {
    it(`a ${size}-byte payload: the frame carries exactly encode3fs's bytes and decodes back`, () => {
      const data = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 0xff);
      const pkt: MessagePacket = { uuid: 5, serviceId: 1, methodId: 2, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: { data } };
      const frame = encodeMessage3fs(pkt, Blob);
      // From 64 KiB on the payload is a part of its own (zero copy), not copied into the head.
      expect(Array.isArray(frame)).toBe(size >= 64 * 1024);
      const b = body(frame);
      const raw = decodeMessage3fs(b, false);
      expect(Buffer.from(raw.payload as Uint8Array)).toEqual(Buffer.from(encode3fs(Blob, { data })));
      // The scratch is reused by the next encode: the frame must not change with it.
      encodeMessage3fs({ ...pkt, payload: { data: new Uint8Array(size).fill(0xff) } }, Blob);
      expect(decodeMessage3fs(b, false, undefined, schemas(Blob, undefined)).payload).toEqual({ data });
      expect(Buffer.from(body(frame))).toEqual(b);
    });
  }
});
