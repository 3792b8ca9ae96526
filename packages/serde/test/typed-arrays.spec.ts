import { unpack as plainUnpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { packr } from '../src/codec.js';
import {
  decodeMessage,
  encodeMessage,
  encodeMessageParts,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  InvalidArgError,
  InvalidFormatError,
  MessageFlags,
  type MessagePacket,
  okResult,
  registerExtension,
} from '../src/index.js';
import { copySwapped } from '../src/typed.js';

// Every ArrayBufferView must arrive as the same kind with the same bytes, and no byte the caller did not give may
// leave the process. The encoders' memory (the fast writer's slab, msgpackr's buffer, the bytes around each view)
// is filled with a marker first; payload bytes never take the marker's value, so a run of it in a frame is
// memory that was not the caller's.

const MARK = 0xee;
const MARKER = Buffer.alloc(4, MARK);

/** Payload bytes: a pattern that never contains MARK. */
function fillData(bytes: Uint8Array, seed: number): void {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + seed * 13 + (i >> 8)) % MARK;
}

function bytesOf(v: ArrayBufferView): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function frameBytes(frame: Uint8Array | Uint8Array[]): Buffer {
  return Array.isArray(frame) ? Buffer.concat(frame) : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}

/** Fills the encoder's memory after a frame (where the next frames go) with the marker. */
function poisonAfter(frame: Uint8Array | Uint8Array[]): void {
  const parts = Array.isArray(frame) ? frame : [frame];
  // Only the encoder's own memory: parts in the first part's buffer (the slab), never the caller's views.
  const slab = parts[0]!.buffer;
  let end = 0;
  for (const p of parts) if (p.buffer === slab) end = Math.max(end, p.byteOffset + p.byteLength);
  new Uint8Array(slab, end).fill(MARK);
}

const base = { uuid: 9, serviceId: 3, methodId: 4, version: 0, timeoutMs: 0 };
const req = (payload: unknown): MessagePacket => ({ ...base, flags: MessageFlags.IsReq, payload });

function decodeFrame(frame: Uint8Array | Uint8Array[]): MessagePacket {
  const out: MessagePacket[] = [];
  const dec = new FrameDecoder((b, c) => out.push(decodeMessage(b, c)));
  for (const f of Array.isArray(frame) ? frame : [frame]) dec.push(Buffer.from(f.buffer, f.byteOffset, f.byteLength));
  expect(out).toHaveLength(1);
  return out[0]!;
}

type Kind = { name: string; size: number; make(ab: ArrayBuffer, byteOffset: number, bytes: number): ArrayBufferView; expect: unknown };
const typedKind = (
  C: { new (ab: ArrayBuffer, off: number, len: number): ArrayBufferView; BYTES_PER_ELEMENT: number; name: string },
  expectC: unknown = C,
): Kind => ({
  name: C.name,
  size: C.BYTES_PER_ELEMENT,
  make: (ab, off, bytes) => new C(ab, off, bytes / C.BYTES_PER_ELEMENT),
  expect: expectC,
});
const KINDS: Kind[] = [
  typedKind(Int8Array),
  // Bytes stay a plain bin, which decodes as a Buffer (unchanged).
  typedKind(Uint8Array, Buffer),
  typedKind(Uint8ClampedArray),
  typedKind(Int16Array),
  typedKind(Uint16Array),
  typedKind(Int32Array),
  typedKind(Uint32Array),
  typedKind(Float32Array),
  typedKind(Float64Array),
  typedKind(BigInt64Array),
  typedKind(BigUint64Array),
  { name: 'DataView', size: 1, make: (ab, off, bytes) => new DataView(ab, off, bytes), expect: DataView },
  { name: 'Buffer', size: 1, make: (ab, off, bytes) => Buffer.from(ab, off, bytes), expect: Buffer },
];

/** Byte lengths, rounded up to whole elements: small, the 8/16/32-bit length forms, and around the 64 KiB zero-copy threshold. */
const SIZES = [0, 1, 7, 8, 255, 256, 257, 65535, 65536, 65537, 64 * 1024 + 24, 200_003];

function makeView(kind: Kind, bytes: number, offsetElems: number, seed: number): ArrayBufferView {
  const n = Math.ceil(bytes / kind.size) * kind.size;
  const off = offsetElems * kind.size;
  // Marker bytes before and after the view in its own buffer: none of them may be sent.
  const ab = new ArrayBuffer(off + n + 3 * kind.size + 5);
  new Uint8Array(ab).fill(MARK);
  const v = kind.make(ab, off, n);
  fillData(bytesOf(v), seed);
  return v;
}

function expectSame(got: unknown, sent: ArrayBufferView, kind: Kind): void {
  expect((got as object | undefined)?.constructor).toBe(kind.expect);
  const g = got as ArrayBufferView;
  expect(g.byteLength).toBe(sent.byteLength);
  expect(bytesOf(g).equals(bytesOf(sent))).toBe(true);
  // Bytes equal means values equal; the element-wise look is for the failure message on small arrays.
  if (!(sent instanceof DataView) && sent.byteLength <= 4096)
    expect(Array.from(g as unknown as ArrayLike<unknown>)).toEqual(Array.from(sent as unknown as ArrayLike<unknown>));
}

/** Wrappers put the view inside plain objects and arrays, nested, with neighbours on both sides. */
const WRAP: ((v: ArrayBufferView) => { payload: unknown; pick(p: unknown): unknown })[] = [
  (v) => ({ payload: v, pick: (p) => p }),
  (v) => ({ payload: { before: 'x', v, after: 1 }, pick: (p) => (p as { v: unknown }).v }),
  (v) => ({ payload: [1, v, 'tail'], pick: (p) => (p as unknown[])[1] }),
  (v) => ({ payload: { a: { b: [true, { c: v }] }, z: [v.byteLength] }, pick: (p) => (p as { a: { b: [boolean, { c: unknown }] } }).a.b[1].c }),
];

type Encode = (payload: unknown) => { frame: Uint8Array | Uint8Array[]; pick(p: unknown): unknown };
const ENCODERS: [string, Encode][] = [
  ['encodeMessage', (payload) => ({ frame: encodeMessage(req(payload)), pick: (p) => p })],
  ['encodeMessageParts', (payload) => ({ frame: encodeMessageParts(req(payload)), pick: (p) => p })],
  ['encodeMessageParts, 1 KiB zero-copy threshold', (payload) => ({ frame: encodeMessageParts(req(payload), { zeroCopyThreshold: 1024 }), pick: (p) => p })],
  // A Date makes the fast writer give the payload to msgpackr, and the fast reader give the body to msgpackr.
  ['msgpackr fallback', (payload) => ({ frame: encodeMessage(req({ d: new Date(0), payload })), pick: (p) => (p as { payload: unknown }).payload })],
  ['response', (payload) => ({ frame: encodeMessageParts({ ...base, flags: 0, payload: okResult(payload) }), pick: (p) => (p as { value: unknown }).value })],
];

function fillEncodersWithMarker(): void {
  // Large frames full of the marker through both writers, then the tails of their buffers as well.
  const big = Buffer.alloc(300_000, MARK);
  poisonAfter(encodeMessage(req({ big })));
  poisonAfter(encodeMessage(req({ big, d: new Date(0) })));
  packr.useBuffer(Buffer.alloc(512 * 1024, MARK));
  poisonAfter(encodeMessage(req({ small: 1 })));
}

describe('typed arrays and DataView in payloads', () => {
  for (const kind of KINDS) {
    it(`${kind.name}: every size, offset, nesting and encoder round-trips exactly and sends no foreign byte`, () => {
      fillEncodersWithMarker();
      let seed = 0;
      for (const [encName, enc] of ENCODERS) {
        for (const size of SIZES) {
          for (const offsetElems of [0, 1, 3]) {
            seed++;
            const view = makeView(kind, size, offsetElems, seed);
            const wrap = WRAP[seed % WRAP.length]!(view);
            const { frame, pick } = enc(wrap.payload);
            const wire = frameBytes(frame);
            const where = `${encName}, ${view.byteLength} bytes at offset ${view.byteOffset}`;
            expect(wire.includes(MARKER), `marker in the frame: ${where}`).toBe(false);
            const pkt = decodeFrame(frame);
            const payload = pick((pkt.flags & MessageFlags.IsReq) !== 0 ? pkt.payload : (pkt.payload as { value: unknown }));
            expectSame(wrap.pick(payload), view, kind);
            poisonAfter(frame);
          }
        }
      }
    });
  }

  it('writes the wire form byte for byte: ext 0x74, kind code, little-endian bytes', () => {
    const body = encodeMessage(req(new Float64Array([1.5]))).subarray(FRAME_HEADER_SIZE + 8);
    expect(body.toString('hex')).toBe('c7097408000000000000f83f');
    const i16 = encodeMessage(req(new Int16Array([1, -2]))).subarray(FRAME_HEADER_SIZE + 8);
    expect(i16.toString('hex')).toBe('c70574030100feff');
    const dv = encodeMessage(req(new DataView(Uint8Array.from([9, 8, 7]).buffer, 1))).subarray(FRAME_HEADER_SIZE + 8);
    expect(dv.toString('hex')).toBe('c703741108' + '07');
    // The msgpackr fallback writes the same bytes for the same value.
    const viaPackr = encodeMessage(req([new Date(0), new Float64Array([1.5])]));
    expect(viaPackr.subarray(viaPackr.length - 12).toString('hex')).toBe('c7097408000000000000f83f');
    // Bytes stay a plain bin.
    expect(
      encodeMessage(req(Buffer.from([1, 2])))
        .subarray(FRAME_HEADER_SIZE + 8)
        .toString('hex'),
    ).toBe('c4020102');
    expect(
      encodeMessage(req(new Uint8Array([1, 2])))
        .subarray(FRAME_HEADER_SIZE + 8)
        .toString('hex'),
    ).toBe('c4020102');
  });

  it('plain msgpackr reads what ffnet writes', () => {
    const frame = encodeMessage(req({ f: new Float32Array([0.5, -2]), b: new BigInt64Array([-5n]) }));
    const got = plainUnpack(frame.subarray(FRAME_HEADER_SIZE))[7];
    expect(got.f).toBeInstanceOf(Float32Array);
    expect(Array.from(got.f)).toEqual([0.5, -2]);
    expect(Array.from(got.b)).toEqual([-5n]);
  });

  it('a subclass travels as its built-in kind, with its values', () => {
    class Samples extends Float64Array {}
    const s = new Samples([1.25, -3, Number.NaN]);
    const pkt = decodeFrame(encodeMessage(req({ s })));
    const got = (pkt.payload as { s: Float64Array }).s;
    expect(got.constructor).toBe(Float64Array);
    expect(bytesOf(got).equals(bytesOf(s))).toBe(true);
  });

  it('decodes aligned elements as a view of the body and misaligned ones into fresh aligned memory', () => {
    const sent = new Float64Array([1.5, -2.25, 1e300]);
    const body = encodeMessage(req(sent)).subarray(FRAME_HEADER_SIZE);
    for (let shift = 0; shift < 8; shift++) {
      const host = new ArrayBuffer(body.length + 16);
      const copy = Buffer.from(host, shift, body.length);
      body.copy(copy);
      const got = decodeMessage(copy, false).payload as Float64Array;
      expect(got).toBeInstanceOf(Float64Array);
      expect(Array.from(got)).toEqual([1.5, -2.25, 1e300]);
      // The elements start 12 bytes into the body: c7 len 74 code after the 8-byte envelope prefix.
      const aligned = (shift + 12) % 8 === 0;
      expect(got.buffer === host).toBe(aligned);
    }
  });

  it('refuses garbage with InvalidFormatError', () => {
    const prefix = [0x98, 1, 3, 4, 1, 0, 0, 0xc0];
    const bad = [
      [[0xc7, 0x08, 0x74, 0x08, 1, 2, 3, 4, 5, 6, 7], /whole number of Float64Array/], // 7 bytes of Float64
      [[0xc7, 0x03, 0x74, 0x05, 1, 2], /whole number of Int32Array/],
      [[0xc7, 0x02, 0x74, 99, 0], /unknown kind code 99/],
      [[0xc7, 0x00, 0x74], /without a kind code/],
      [[0xd5, 0x74, 0x08, 0x00], /whole number of Float64Array/], // fixext 2: the msgpackr path
      [[0xc7, 0x09, 0x74, 0x08, 1, 2, 3], /./], // truncated
    ] as const;
    for (const [ext, why] of bad) {
      const body = Buffer.from([...prefix, ...ext]);
      expect(() => decodeMessage(body, false)).toThrow(InvalidFormatError);
      expect(() => decodeMessage(body, false)).toThrow(why);
    }
  });

  it("an extension whose write returns another view sends that view's bytes; a non-view is refused", () => {
    class Vec {
      constructor(readonly xs: number[]) {}
    }
    registerExtension<Vec>({
      type: 77,
      Class: Vec,
      write: (v) => new Float64Array(v.xs) as unknown as Uint8Array,
      read: (b) => new Vec(Array.from(new Float64Array(Uint8Array.prototype.slice.call(b).buffer))),
    });
    fillEncodersWithMarker();
    for (const payload of [{ v: new Vec([1.5, -7]) }, { v: new Vec([1.5, -7]), d: new Date(0) }]) {
      const frame = encodeMessage(req(payload));
      expect(frame.includes(MARKER)).toBe(false);
      expect((decodeFrame(frame).payload as { v: Vec }).v.xs).toEqual([1.5, -7]);
      poisonAfter(frame);
    }
    class Bad {}
    registerExtension<Bad>({ type: 78, Class: Bad, write: () => [1, 2, 3] as unknown as Uint8Array, read: () => new Bad() });
    expect(() => encodeMessage(req({ b: new Bad() }))).toThrow(InvalidArgError);
    expect(() => encodeMessage(req({ b: new Bad() }))).toThrow(/write must return a Uint8Array/);
  });

  it('swaps element bytes for a big-endian host', () => {
    const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
    const dst = new Uint8Array(18).fill(MARK);
    copySwapped(dst, 1, src, 0, 16, 8);
    expect(Array.from(dst)).toEqual([MARK, 8, 7, 6, 5, 4, 3, 2, 1, 16, 15, 14, 13, 12, 11, 10, 9, MARK]);
    copySwapped(dst, 0, src, 2, 4, 2);
    expect(Array.from(dst.subarray(0, 4))).toEqual([4, 3, 6, 5]);
  });
});
