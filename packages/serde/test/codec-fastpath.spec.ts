import { describe, expect, it } from 'vitest';
import { packr } from '../src/codec.js';
import {
  crc32c,
  DEFAULT_ZERO_COPY_THRESHOLD,
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  errResult,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  MessageFlags,
  type MessagePacket,
  okResult,
  registerExtension,
} from '../src/index.js';

// encodeMessage writes common payloads itself and decodeMessage reads them itself; both fall back to msgpackr
// for everything else. These tests hold the fast paths to msgpackr's own bytes and values.

const base = { uuid: 77, serviceId: 9, methodId: 3, version: 0, timeoutMs: 0 };
const req = (payload: unknown): MessagePacket => ({ ...base, flags: MessageFlags.IsReq, payload });

/** The envelope prefix of a request without timestamps: fixarray(8) uuid sid mid flags ver timeout nil. */
const PREFIX = 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1;

function payloadBytes(frame: Buffer): Buffer {
  return frame.subarray(FRAME_HEADER_SIZE + PREFIX);
}

function decodeFrames(frames: Uint8Array[]): MessagePacket[] {
  const out: MessagePacket[] = [];
  const dec = new FrameDecoder((b, c) => out.push(decodeMessage(b, c)));
  for (const f of frames) dec.push(Buffer.from(f.buffer, f.byteOffset, f.byteLength));
  return out;
}

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}
registerExtension<Point>({
  type: 17,
  Class: Point,
  write: (p) => Buffer.from([p.x, p.y]),
  read: (b) => new Point(b[0]!, b[1]!),
});

const ints = [
  0,
  1,
  31,
  32,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53 - 1,
  -1,
  -31,
  -32,
  -33,
  -127,
  -128,
  -129,
  -32767,
  -32768,
  -32769,
  -(2 ** 31),
  -(2 ** 31) - 1,
  -(2 ** 53),
];
const floats = [0.5, -0.25, 1e300, -1e-300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 123.456];
const strings = [
  '',
  'a',
  'x'.repeat(31),
  'x'.repeat(32),
  'x'.repeat(63),
  'x'.repeat(64),
  'x'.repeat(255),
  'x'.repeat(256),
  'x'.repeat(70_000),
  'é'.repeat(15), // 30 bytes: still fixstr
  'é'.repeat(16), // 32 bytes from 16 chars: the header grows from fixstr to str8
  '€'.repeat(63), // 189 bytes, JS path
  '€'.repeat(100), // 300 bytes from 100 chars: str8 header becomes str16
  '€'.repeat(30_000), // 90 000 bytes from 30 000 chars: str16 header becomes str32
  '😀 emoji pair',
  'lone \ud800 surrogate', // short: msgpackr's JS path writes the 3-byte form
  `${'y'.repeat(70)}\udc00`, // long: the native path writes U+FFFD
  'ключ',
];
const bytes = [0, 1, 255, 256, 65535, 65536].map((n) => Buffer.alloc(n, n & 0xff));

const values: unknown[] = [
  null,
  true,
  false,
  undefined,
  ...ints,
  ...floats,
  ...strings,
  ...bytes,
  new Uint8Array([1, 2, 3]),
  [],
  [1, 'two', null, [3]],
  Array.from({ length: 15 }, (_, i) => i),
  Array.from({ length: 16 }, (_, i) => i),
  Array.from({ length: 70_000 }, (_, i) => i & 7),
  {},
  { a: 1 },
  { data: Buffer.alloc(64, 7) },
  { nested: { deeper: { list: [{ k: 'v' }, { k: undefined }] } }, n: -5, f: 0.1 },
  Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`key${i}`, i])),
  { 1: 'numeric-looking key', b: 2 },
  { point: new Point(3, 4), list: [new Point(5, 6)] },
  // Other views: ext 0x74 from both writers (the msgpackr side through ffnet's view extension).
  new Float64Array([1.5, -2]),
  { i16: new Int16Array([1, -2, 3]), c: new Uint8ClampedArray([0, 255]), b: new BigInt64Array([-1n]) },
  new Float32Array(70_000).fill(0.25),
  new DataView(Uint8Array.from([1, 2, 3, 4]).buffer, 1, 2),
  new Uint32Array(new ArrayBuffer(64), 8, 4),
  // Types left to msgpackr: the frame must still be msgpackr's bytes.
  new Date(1_700_000_000_000),
  new Map([['k', 1]]),
  { big: 2n ** 40n },
  { set: new Set([1, 2]) },
  Object.assign(Object.create(null), { np: 1 }),
  { own: 1, hasOwnProperty: () => false },
];

describe('encodeMessage writes what msgpackr writes', () => {
  // A request payload of undefined means no payload at all (7 fields), so it is checked inside values only.
  it.each(values.filter((v) => v !== undefined).map((v, i) => [i, v]))('value #%i', (_i, v) => {
    const frame = encodeMessage(req(v));
    expect(payloadBytes(frame)).toEqual(packr.pack(v));
  });

  it('a response Result around each value, and error Results', () => {
    for (const v of values) {
      const frame = encodeMessage({ ...base, flags: 0, payload: okResult(v) });
      const body = frame.subarray(FRAME_HEADER_SIZE);
      // [0, value] / [0] after the 7 fields.
      expect(body.subarray(PREFIX, PREFIX + 2)).toEqual(Buffer.from(v === undefined ? [0x91, 0x00] : [0x92, 0x00]));
      if (v !== undefined) expect(body.subarray(PREFIX + 2)).toEqual(packr.pack(v));
    }
    const err = encodeMessage({ ...base, flags: 0, payload: errResult(2009, 'naïve message') });
    expect(err.subarray(FRAME_HEADER_SIZE + PREFIX + 4)).toEqual(packr.pack('naïve message'));
  });

  it('a payload that outgrows the output slab is written whole (the frame restarts in a bigger slab)', () => {
    const big = { s: 'z'.repeat(200_000), arr: Array.from({ length: 5000 }, (_, i) => ({ i, t: `item${i}` })), tail: true };
    const frames: Buffer[] = [];
    for (let i = 0; i < 40; i++) frames.push(encodeMessage(req({ i, pad: 'p'.repeat(i * 50) })));
    frames.push(encodeMessage(req(big)));
    frames.push(encodeMessage(req({ after: 1 })));
    expect(payloadBytes(frames[40]!)).toEqual(packr.pack(big));
    const got = decodeFrames(frames);
    expect(got).toHaveLength(42);
    for (let i = 0; i < 40; i++) expect(got[i]!.payload).toEqual({ i, pad: 'p'.repeat(i * 50) });
    expect(got[40]!.payload).toEqual(big);
    expect(got[41]!.payload).toEqual({ after: 1 });
  });
});

describe('decodeMessage reads what msgpackr reads', () => {
  it.each(values.map((v, i) => [i, v]))('value #%i round-trips to msgpackr’s own value', (_i, v) => {
    const [pkt] = decodeFrames([encodeMessage(req(v))]);
    expect(pkt!.payload).toEqual(packr.unpack(packr.pack(v)));
  });

  it('reads encodings other writers use (fixmap, str8 keys, int8/16/32, float64) as msgpackr does', () => {
    const bodies = [
      // {"a": 1, "b": [-1, 200]} with a fixmap
      [0x82, 0xa1, 0x61, 0x01, 0xa1, 0x62, 0x92, 0xff, 0xcc, 0xc8],
      // map16 with a str8 key, int8/int16/int32
      [0xde, 0x00, 0x01, 0xd9, 0x03, 0x6b, 0x65, 0x79, 0x93, 0xd0, 0x80, 0xd1, 0x80, 0x00, 0xd2, 0x80, 0x00, 0x00, 0x00],
      // float64 1.5, uint32, uint16
      [0x93, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xce, 0xff, 0xff, 0xff, 0xff, 0xcd, 0x01, 0x00],
      // __proto__ as a key becomes a harmless own key
      [0x81, 0xa9, ...Buffer.from('__proto__'), 0xc3],
      // bin8 inside an array16, str16 value
      [0xdc, 0x00, 0x02, 0xc4, 0x02, 0x09, 0x08, 0xda, 0x00, 0x02, 0x68, 0x69],
      // left to msgpackr: uint64, float32, ext (undefined), non-string key, non-ASCII string
      [0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
      [0xca, 0x3f, 0xc0, 0, 0],
      [0x91, 0xd4, 0x00, 0x00],
      [0x81, 0x01, 0x02],
      [0xa2, 0xc3, 0xa9],
    ];
    for (const bytes of bodies) {
      const payload = Buffer.from(bytes);
      const body = Buffer.concat([Buffer.from([0x98, 0x01, 0x09, 0x03, 0x01, 0x00, 0x00, 0xc0]), payload]);
      const pkt = decodeMessage(body, false);
      expect(pkt.payload, payload.toString('hex')).toEqual(packr.unpack(payload));
      if (typeof pkt.payload === 'object' && pkt.payload !== null)
        expect(Object.getPrototypeOf(pkt.payload)).toBe(Object.getPrototypeOf(packr.unpack(payload)));
    }
  });

  it('binary values are views of the received body, not copies', () => {
    const frame = encodeMessage(req({ data: Buffer.from('abcdef') }));
    const body = Buffer.from(frame.subarray(FRAME_HEADER_SIZE));
    const data = (decodeMessage(body, false).payload as { data: Buffer }).data;
    expect(data.toString()).toBe('abcdef');
    expect(data.buffer).toBe(body.buffer);
  });

  it('timestamps come back as written', () => {
    const ts = {
      clientCalled: 1.5,
      clientSerialized: 0,
      serverReceived: 3,
      serverWaked: 4,
      serverProcessed: 5,
      serverSerialized: 6,
      clientReceived: 7,
      clientWaked: 8,
    };
    const [pkt] = decodeFrames([encodeMessage({ ...req({ x: 1 }), timestamps: ts })]);
    expect(pkt!.timestamps!.clientCalled).toBe(1.5);
    expect(pkt!.timestamps!.serverWaked).toBe(4);
    // The sender stamps its own slot while encoding.
    expect(pkt!.timestamps!.clientSerialized).toBeGreaterThan(1e15);
    expect(pkt!.payload).toEqual({ x: 1 });
  });
});

describe('encodeMessageParts: large binaries by reference', () => {
  it('a small payload is one buffer with the bytes encodeMessage writes', () => {
    const payload = { data: Buffer.alloc(100, 1) };
    const frame = encodeMessageParts(req(payload));
    expect(Array.isArray(frame)).toBe(false);
    expect(frame).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(frame as Uint8Array)).toEqual(encodeMessage(req(payload)));
  });

  it('a payload with binaries at or above the threshold becomes parts that hold them uncopied', () => {
    const a = Buffer.alloc(DEFAULT_ZERO_COPY_THRESHOLD, 1);
    const b = Buffer.alloc(300_000, 2);
    const small = Buffer.alloc(DEFAULT_ZERO_COPY_THRESHOLD - 1, 3);
    const payload = { a, mid: 'between', small, list: [b, 'end'] };
    const parts = encodeMessageParts(req(payload));
    expect(Array.isArray(parts)).toBe(true);
    const list = parts as Uint8Array[];
    // The caller's buffers themselves, not copies; the small one was copied into a slab part.
    expect(list).toContain(a);
    expect(list).toContain(b);
    expect(list).not.toContain(small);
    // Header: the size and CRC of the whole body, across the parts.
    const whole = Buffer.concat(list);
    expect(whole.readUInt32LE(4)).toBe(whole.length - FRAME_HEADER_SIZE);
    expect((whole.readUInt32LE(0) & 0xffffff00) >>> 0).toBe((crc32c(whole.subarray(FRAME_HEADER_SIZE)) & 0xffffff00) >>> 0);
    // Byte for byte what encodeMessage writes in one piece. Buffer.equals, not toEqual: vitest's deep equality
    // walks 370 KB byte by byte in JS, which on a loaded machine outlasts the test timeout.
    expect(whole.equals(encodeMessage(req(payload)))).toBe(true);
    const [pkt] = decodeFrames([whole]);
    const got = pkt!.payload as { a: Buffer; mid: string; small: Buffer; list: [Buffer, string] };
    expect(Object.keys(got)).toEqual(['a', 'mid', 'small', 'list']);
    expect(got.a.equals(a) && got.small.equals(small) && got.list[0].equals(b)).toBe(true);
    expect([got.mid, got.list.length, got.list[1]]).toEqual(['between', 2, 'end']);
  });

  it('works in responses and honours zeroCopyThreshold', () => {
    const data = Buffer.alloc(20_000, 9);
    const rsp = { ...base, flags: 0, payload: okResult({ data }) };
    expect(Array.isArray(encodeMessageParts(rsp))).toBe(false);
    const parts = encodeMessageParts(rsp, { zeroCopyThreshold: 10_000 }) as Uint8Array[];
    expect(parts).toContain(data);
    const [pkt] = decodeFrames([Buffer.concat(parts)]);
    expect((pkt!.payload as { ok: true; value: { data: Buffer } }).value.data.equals(data)).toBe(true);
  });

  it('compression, when asked for, gives one compressed buffer instead', async () => {
    const { initCompression } = await import('../src/index.js');
    await initCompression();
    const data = Buffer.alloc(200_000, 5);
    const frame = encodeMessageParts(req({ data }), { compressionThreshold: 1000 });
    expect(Array.isArray(frame)).toBe(false);
    expect((frame as Buffer).readUInt32LE(0) & 1).toBe(1);
    const [pkt] = decodeFrames([frame as Buffer]);
    expect((pkt!.payload as { data: Buffer }).data.equals(data)).toBe(true);
  });

  it('CRC chaining over parts equals the CRC of the joined bytes, across the native/JS size boundary', () => {
    const parts = [Buffer.from('abc'), Buffer.alloc(5000, 0x5a), Buffer.from('x'), Buffer.alloc(159, 1), Buffer.alloc(161, 2)];
    let crc = 0;
    for (const p of parts) crc = crc32c(p, crc);
    expect(crc).toBe(crc32c(Buffer.concat(parts)));
  });
});
