// The 3fs envelope against the kit's MessagePacket vectors (packet.*): every packet encodes to exactly 3FS's bytes and
// decodes to its fields, with the payload decoded by the method's schema (fromNeutral of the vector's own type).
import { describe, expect, it } from 'vitest';
import {
  crc32c,
  decodeMessage3fs,
  decodeRequest3fs,
  decodeResult3fs,
  encode3fs,
  encodeMessage3fs,
  encodeMessageParts,
  envelopeNamed,
  errResult,
  FRAME_HEADER_SIZE,
  type FrameParts,
  fromJson,
  fromNeutral,
  InvalidArgError,
  InvalidConfigError,
  InvalidFormatError,
  MessageFlags,
  type MessagePacket,
  nowMicros,
  okResult,
  type Schema,
  s,
  threefsEnvelope,
  VerifyRequestFailedError,
} from '../src/index.js';
import { hexBytes, loadVectors, type NeutralStruct, type NeutralType, type Vector } from './fixtures/kit.js';

const packets = loadVectors().filter((v) => v.name.startsWith('packet.'));

/** The vector's MessagePacket fields, by name. */
function fieldsOf(v: Vector): Record<string, NeutralType> {
  const t = v.type as NeutralStruct;
  return Object.fromEntries(t.levels.flat().map((f) => [f.name, f.type]));
}

/** The schema of the packet's payload: the request, or for a response the T of its Result<T>. */
function payloadSchema(v: Vector): { schema: Schema; isResult: boolean } {
  const payload = fieldsOf(v).payload as { kind: 'payload'; of: NeutralType };
  const of = payload.of;
  // Everything's `bin` is not UTF-8: its strings are bytes.
  const opts = { strings: v.name.includes('conformance') ? ('bytes' as const) : ('string' as const) };
  if (typeof of === 'object' && of.kind === 'result') return { schema: fromNeutral(of.of, {}, opts), isResult: true };
  return { schema: fromNeutral(of, {}, opts), isResult: false };
}

function one(frame: FrameParts): Buffer {
  return Buffer.concat(Array.isArray(frame) ? frame : [frame]);
}

interface JsonPacket {
  uuid: string;
  serviceId: number;
  methodId: number;
  flags: number;
  version: { major: number; minor: number; patch: number; hash: number };
  payload: unknown;
  timestamp: Record<string, string> | null;
}

const TS_KEYS = ['clientCalled', 'clientSerialized', 'serverReceived', 'serverWaked', 'serverProcessed', 'serverSerialized', 'clientReceived', 'clientWaked'];

describe('3fs envelope: the kit MessagePacket vectors', () => {
  it('has the packet vectors to check', () => {
    expect(packets.length).toBeGreaterThanOrEqual(10);
  });

  for (const v of packets) {
    const value = v.value as JsonPacket;
    const bytes = hexBytes(v.hex);

    it(`${v.name}: decodes to its fields and payload`, () => {
      const pkt = decodeMessage3fs(Buffer.from(bytes), false);
      expect(BigInt(pkt.uuid) === BigInt(value.uuid) || pkt.echo !== undefined).toBe(true);
      expect(pkt.serviceId).toBe(value.serviceId);
      expect(pkt.methodId).toBe(value.methodId);
      expect(pkt.flags).toBe(value.flags);
      expect(pkt.version).toBe(value.version.hash);
      expect(pkt.timeoutMs).toBe(0);
      const big = BigInt(value.uuid) > BigInt(Number.MAX_SAFE_INTEGER);
      const release = value.version.major + value.version.minor + value.version.patch > 0;
      if (big || release) {
        const e = Buffer.from(pkt.echo!);
        expect(e.readBigUInt64LE(0)).toBe(BigInt(value.uuid));
        expect([e[8], e[9], e[10], e.readUInt32LE(11)]).toEqual([value.version.major, value.version.minor, value.version.patch, value.version.hash]);
      } else {
        expect(pkt.uuid).toBe(Number(value.uuid));
        expect(pkt.echo).toBeUndefined();
      }
      if (value.timestamp === null) expect(pkt.timestamps).toBeUndefined();
      else for (const k of TS_KEYS) expect((pkt.timestamps as unknown as Record<string, number>)[k]).toBe(Number(value.timestamp[k]));
      const { schema, isResult } = payloadSchema(v);
      const raw = pkt.payload as Uint8Array;
      if (isResult) {
        const r = decodeResult3fs(schema, raw, v.name);
        const want = value.payload as { ok?: unknown; error?: { code: number; message: string } };
        if ('ok' in want) expect(r).toEqual({ ok: true, value: fromJson(schema, want.ok) });
        else expect(r).toEqual({ ok: false, code: want.error!.code, message: want.error!.message });
      } else {
        expect(decodeRequest3fs(schema, raw, v.name)).toEqual(fromJson(schema, value.payload));
      }
    });

    it(`${v.name}: encodes to exactly 3FS's bytes`, () => {
      const decoded = decodeMessage3fs(Buffer.from(bytes), false);
      const { schema, isResult } = payloadSchema(v);
      const want = value.payload as { ok?: unknown; error?: { code: number; message: string } };
      const pkt: MessagePacket = {
        uuid: decoded.uuid,
        serviceId: value.serviceId,
        methodId: value.methodId,
        flags: value.flags,
        version: value.version.hash,
        timeoutMs: 0,
        payload: !isResult
          ? fromJson(schema, value.payload)
          : 'ok' in want
            ? okResult(fromJson(schema, want.ok))
            : errResult(want.error!.code, want.error!.message),
        echo: decoded.echo,
        timestamps: decoded.timestamps,
      };
      const before = nowMicros();
      const frame = one(encodeMessage3fs(pkt, schema, undefined));
      const after = nowMicros();
      const body = frame.subarray(FRAME_HEADER_SIZE);
      // The frame header is 3FS's: CRC-32C (init 0, no final xor) with the magic byte, then the body size.
      expect(frame.readUInt32LE(4)).toBe(body.length);
      expect(frame.readUInt32LE(0)).toBe(((crc32c(body) & ~0xff) | 0x86) >>> 0);
      if (value.timestamp === null) {
        expect(body.toString('hex')).toBe(v.hex);
        return;
      }
      // The sender stamps its own "serialized" hop as it writes (clientSerialized for a request, serverSerialized
      // for a response): those 8 bytes are now, everything else is the vector's.
      const stampIndex = (value.flags & MessageFlags.IsReq) !== 0 ? 1 : 5;
      const at = body.length - 64 + stampIndex * 8;
      const stamp = Number(body.readBigInt64LE(at));
      expect(stamp).toBeGreaterThanOrEqual(before);
      expect(stamp).toBeLessThanOrEqual(after);
      const expected = Buffer.from(bytes);
      expect(Buffer.concat([body.subarray(0, at), body.subarray(at + 8)]).toString('hex')).toBe(
        Buffer.concat([expected.subarray(0, at), expected.subarray(at + 8)]).toString('hex'),
      );
    });
  }

  it('compat.packet.truncated: a table cut after methodId decodes with defaults', () => {
    const v = loadVectors().find((x) => x.name === 'compat.packet.truncated')!;
    const pkt = decodeMessage3fs(Buffer.from(hexBytes(v.hex)), false);
    expect(pkt).toMatchObject({ uuid: 7, serviceId: 10000, methodId: 1, flags: 0, version: 0, timeoutMs: 0 });
    expect((pkt.payload as Uint8Array).length).toBe(0);
    expect(pkt.timestamps).toBeUndefined();
  });
});

const Msg = s.struct('hf3fs::serde::echo::Message', { str: s.string });

function req(payload: unknown, extra: Partial<MessagePacket> = {}): MessagePacket {
  return { uuid: 9, serviceId: 10000, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload, ...extra };
}

describe('3fs envelope: encoder and decoder', () => {
  it('extra trailing bytes in the packet table and in Version are ignored, as in 3FS', () => {
    const frame = one(encodeMessage3fs(req({ str: 'hi' }, { echo: Uint8Array.from([9, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0]) }), Msg));
    const body = frame.subarray(FRAME_HEADER_SIZE);
    // Version table 07 → 09 with two more bytes, and two more bytes at the end of the packet table.
    const v = body.indexOf(7, 1 + 8 + 6);
    const grown = Buffer.concat([
      Buffer.from([body[0]! + 4]),
      body.subarray(1, v),
      Buffer.from([9]),
      body.subarray(v + 1, v + 8),
      Buffer.from([0xaa, 0xbb]),
      body.subarray(v + 8),
      Buffer.from([0xcc, 0xdd]),
    ]);
    const pkt = decodeMessage3fs(grown, false);
    expect(pkt.uuid).toBe(9);
    expect(Array.from(pkt.echo!.subarray(8, 11))).toEqual([1, 2, 3]);
    expect(decodeRequest3fs(Msg, pkt.payload as Uint8Array, 'Echo.echo')).toEqual({ str: 'hi' });
  });

  it('refuses lengths beyond the body and fields cut short with InvalidFormatError, never a RangeError', () => {
    const body = one(encodeMessage3fs(req({ str: 'hello' }), Msg)).subarray(FRAME_HEADER_SIZE);
    for (let n = 0; n < body.length; n++) {
      const cut = Buffer.from(body.subarray(0, n));
      try {
        decodeMessage3fs(cut, false);
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidFormatError);
      }
    }
    // The outer table claims more than there is.
    const lying = Buffer.from(body);
    lying[0] = 0x7f;
    expect(() => decodeMessage3fs(lying, false)).toThrow(InvalidFormatError);
    // uuid started but cut: 3 bytes of a u64 within the table.
    expect(() => decodeMessage3fs(Buffer.from([3, 1, 2, 3]), false)).toThrow(/uuid needs 8 bytes/);
  });

  it('a payload that does not decode with its schema is VerifyRequestFailed (2002)', () => {
    const e = (() => {
      try {
        decodeRequest3fs(Msg, Uint8Array.from([5, 9]), 'Echo.echo', 'tcp://127.0.0.1:1');
      } catch (err) {
        return err as VerifyRequestFailedError;
      }
    })();
    expect(e).toBeInstanceOf(VerifyRequestFailedError);
    expect(e?.code).toBe(2002);
    expect(e?.peer).toBe('tcp://127.0.0.1:1');
  });

  it('error Results round-trip with and without a message; an empty message is absent on the wire', () => {
    for (const message of ['', 'no such thing']) {
      const rsp: MessagePacket = { uuid: 3, serviceId: 1, methodId: 2, flags: 0, version: 0, timeoutMs: 0, payload: errResult(2009, message) };
      const frame = one(encodeMessage3fs(rsp, undefined));
      const pkt = decodeMessage3fs(frame.subarray(FRAME_HEADER_SIZE), false);
      const raw = pkt.payload as Uint8Array;
      expect(raw[0]).toBe(0);
      expect(raw.length).toBe(message === '' ? 4 : 4 + 1 + message.length);
      expect(decodeResult3fs(undefined, raw, 'x')).toEqual({ ok: false, code: 2009, message });
    }
  });

  it('refuses metadata (3FS has none) and a request or ok response without a schema', () => {
    expect(() => encodeMessage3fs(req({ str: 'x' }, { metadata: new Map([['k', 'v']]) }), Msg)).toThrow(/carries no metadata/);
    expect(() => encodeMessage3fs(req({ str: 'x' }), undefined)).toThrow(InvalidArgError);
    const ok: MessagePacket = { uuid: 1, serviceId: 1, methodId: 1, flags: 0, version: 0, timeoutMs: 0, payload: okResult({ str: 'x' }) };
    expect(() => encodeMessage3fs(ok, undefined)).toThrow(/response schema/);
  });

  it('a request that does not fit its schema is refused with InvalidArg naming the field', () => {
    expect(() => encodeMessage3fs(req({ str: 5 }), Msg)).toThrow(InvalidArgError);
    expect(() => encodeMessage3fs(req({ str: 5 }), Msg)).toThrow(/str/);
  });

  it('large payloads go out by reference, the CRC computed across the parts', () => {
    const Blob = s.struct('Blob', { data: s.bytes });
    const data = new Uint8Array(200_000).map((_, i) => i & 0xff);
    const frame = encodeMessage3fs(
      req(
        { data },
        {
          timestamps: {
            clientCalled: 1,
            clientSerialized: 0,
            serverReceived: 0,
            serverWaked: 0,
            serverProcessed: 0,
            serverSerialized: 0,
            clientReceived: 0,
            clientWaked: 0,
          },
        },
      ),
      Blob,
    );
    expect(Array.isArray(frame)).toBe(true);
    const whole = one(frame);
    const body = whole.subarray(FRAME_HEADER_SIZE);
    expect(whole.readUInt32LE(0)).toBe(((crc32c(body) & ~0xff) | 0x86) >>> 0);
    expect(whole.readUInt32LE(4)).toBe(body.length);
    const pkt = decodeMessage3fs(body, false);
    expect(pkt.timestamps?.clientCalled).toBe(1);
    const back = decodeRequest3fs(Blob, pkt.payload as Uint8Array, 'Blob') as { data: Uint8Array };
    expect(Buffer.from(back.data).equals(Buffer.from(data))).toBe(true);
  });

  it('compresses a body at or above compressionThreshold and the decoder reads it back', async () => {
    const { initCompression } = await import('../src/index.js');
    await initCompression();
    const frame = one(encodeMessage3fs(req({ str: 'z'.repeat(10_000) }), Msg, { compressionThreshold: 1000 }));
    expect(frame[0]! & 1).toBe(1);
    expect(frame.length).toBeLessThan(2000);
    const pkt = decodeMessage3fs(frame.subarray(FRAME_HEADER_SIZE), true);
    expect(decodeRequest3fs(Msg, pkt.payload as Uint8Array, 'Echo.echo')).toEqual({ str: 'z'.repeat(10_000) });
  });

  it('envelopeNamed picks ffnet by default and 3fs by name, anything else is InvalidConfig', () => {
    expect(envelopeNamed(undefined).name).toBe('ffnet');
    expect(envelopeNamed('3fs')).toBe(threefsEnvelope);
    expect(() => envelopeNamed('json', 'ClientOptions.envelope')).toThrow(InvalidConfigError);
    expect(() => envelopeNamed('json', 'ClientOptions.envelope')).toThrow(/ClientOptions.envelope/);
  });

  it('consecutive small frames of both envelopes lie back to back in one slab, so a batch is one write', () => {
    // Each frame written alone is a writev of one piece per frame: the transport merges only adjacent views.
    const single = (f: FrameParts): Uint8Array => {
      if (Array.isArray(f)) throw new Error('a small frame came out in parts');
      return f;
    };
    const frames = [
      single(encodeMessage3fs(req({ str: 'a' }), Msg)),
      single(encodeMessage3fs(req({ str: 'bcd' }, { uuid: 10 }), Msg)),
      single(encodeMessageParts(req({ str: 'ffnet' }, { uuid: 11 }))),
      single(encodeMessage3fs(req({ str: 'efghi' }, { uuid: 12 }), Msg)),
    ];
    for (let i = 1; i < frames.length; i++) {
      expect(frames[i]!.buffer).toBe(frames[0]!.buffer);
      expect(frames[i]!.byteOffset).toBe(frames[i - 1]!.byteOffset + frames[i - 1]!.byteLength);
    }
    expect(decodeMessage3fs(Buffer.from(frames[3]!.subarray(FRAME_HEADER_SIZE)), false).uuid).toBe(12);
  });

  it('reads a full timestamp table, and a shorter one with the missing fields as 0', () => {
    const ts = {
      clientCalled: 1,
      clientSerialized: 2,
      serverReceived: 3,
      serverWaked: 4,
      serverProcessed: 5,
      serverSerialized: 6,
      clientReceived: 7,
      clientWaked: 8,
    };
    const body = Buffer.from(one(encodeMessage3fs(req({ str: 'x' }, { timestamps: ts }), Msg)).subarray(FRAME_HEADER_SIZE));
    const full = decodeMessage3fs(body, false).timestamps!;
    // The sender stamps clientSerialized as it encodes; the rest travel as given.
    expect({ ...full, clientSerialized: 2 }).toEqual(ts);
    // Drop the last two i64s: the table and the packet shrink by 16 bytes.
    const tsAt = body.length - 64 - 2;
    expect(body[tsAt]).toBe(1);
    expect(body[tsAt + 1]).toBe(64);
    const short = Buffer.concat([Buffer.from([body[0]! - 16]), body.subarray(1, tsAt + 1), Buffer.from([48]), body.subarray(tsAt + 2, body.length - 16)]);
    const got = decodeMessage3fs(short, false).timestamps!;
    expect(got.clientReceived).toBe(0);
    expect(got.clientWaked).toBe(0);
    expect(got.serverSerialized).toBe(6);
    // A field cut short is refused.
    const cut = Buffer.concat([Buffer.from([body[0]! - 12]), body.subarray(1, tsAt + 1), Buffer.from([52]), body.subarray(tsAt + 2, body.length - 12)]);
    expect(() => decodeMessage3fs(cut, false)).toThrow(InvalidFormatError);
  });

  it('encode3fs of the payload is what lands after the length prefix', () => {
    const frame = one(encodeMessage3fs(req({ str: 'abc' }), Msg)).subarray(FRAME_HEADER_SIZE);
    const payload = Buffer.from(encode3fs(Msg, { str: 'abc' }));
    expect(frame.subarray(1 + 8 + 6 + 8 + 1, 1 + 8 + 6 + 8 + 1 + payload.length).equals(payload)).toBe(true);
    expect(frame[1 + 8 + 6 + 8]).toBe(payload.length);
  });
});
