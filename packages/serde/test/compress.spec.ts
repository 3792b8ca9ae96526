import { compress as zstdCompress, decompress as zstdDecompress } from '@bokuweb/zstd-wasm';
import { describe, expect, it } from 'vitest';
import {
  compressionReady,
  DataCorruptionError,
  decodeMessage,
  encodeFrame,
  encodeMessage,
  errResult,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  InvalidConfigError,
  InvalidFormatError,
  initCompression,
  MessageFlags,
  type MessagePacket,
  okResult,
} from '../src/index.js';

const base = { uuid: 77, serviceId: 10, methodId: 2, version: 0, timeoutMs: 0 };
const compressible = { text: 'all work and no play makes jack a dull boy. '.repeat(4000) };

function receive(frame: Buffer, maxMessageSize?: number): { pkt: MessagePacket; compressed: boolean } {
  let out: { pkt: MessagePacket; compressed: boolean } | undefined;
  new FrameDecoder((body, compressed) => {
    out = { pkt: decodeMessage(body, compressed, { maxMessageSize }), compressed };
  }).push(frame);
  return out!;
}

/** A hand-built zstd frame of raw (0), RLE (1) or compressed (2) blocks. */
function zstdFrame(opts: { fcs?: number; blocks: { type: 0 | 1 | 2; size: number; data: Buffer }[] }): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd])];
  if (opts.fcs === undefined) {
    parts.push(Buffer.from([0x00, 0x38])); // no FCS, window descriptor 128 KiB
  } else {
    const fcs = Buffer.alloc(8);
    fcs.writeBigUInt64LE(BigInt(opts.fcs));
    parts.push(Buffer.from([0xe0]), fcs); // single segment, 8-byte FCS
  }
  opts.blocks.forEach((b, i) => {
    const h = (b.size << 3) | (b.type << 1) | (i === opts.blocks.length - 1 ? 1 : 0);
    parts.push(Buffer.from([h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff]), b.data);
  });
  return Buffer.concat(parts);
}

function expectThrows(fn: () => unknown, Class: abstract new (...a: never[]) => Error, pattern?: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(Class);
  if (pattern) expect((err as Error).message).toMatch(pattern);
}

describe('compression', () => {
  // Runs first: the zstd module is per test file, and nothing has loaded it yet.
  it('before initCompression, compressing and decompressing throw InvalidConfigError', () => {
    expect(compressionReady()).toBe(false);
    const pkt = { ...base, flags: MessageFlags.IsReq, payload: compressible };
    expectThrows(() => encodeMessage(pkt, { compressionThreshold: 1 }), InvalidConfigError, /initCompression/);
    // Below the threshold nothing needs zstd.
    expect(receive(encodeMessage(pkt, { compressionThreshold: 1e9 })).compressed).toBe(false);
    expectThrows(() => decodeMessage(Buffer.from([1, 2, 3]), true), InvalidConfigError);
  });

  it('initCompression is idempotent', async () => {
    const a = initCompression();
    expect(initCompression()).toBe(a);
    await a;
    expect(compressionReady()).toBe(true);
  });

  it('compresses requests at or above the threshold and sets header bit 0', () => {
    const pkt = { ...base, flags: MessageFlags.IsReq | MessageFlags.UseCompress, payload: compressible };
    const plain = encodeMessage(pkt);
    const bodySize = plain.length - FRAME_HEADER_SIZE;
    const at = encodeMessage(pkt, { compressionThreshold: bodySize });
    const below = encodeMessage(pkt, { compressionThreshold: bodySize + 1 });
    expect(at[0]! & 1).toBe(1);
    expect(at.length).toBeLessThan(plain.length / 20);
    expect(below[0]! & 1).toBe(0);
    expect(below.equals(plain)).toBe(true);
    const got = receive(at);
    expect(got.compressed).toBe(true);
    expect(got.pkt).toEqual(pkt);
  });

  it('compresses responses too (ok and error Results), at any level', () => {
    const ok = { ...base, flags: 0, payload: okResult(compressible) };
    const err = { ...base, flags: 0, payload: errResult(2013, 'closed: '.repeat(10_000)) };
    for (const level of [1, 3, 19]) {
      const f = encodeMessage(ok, { compressionThreshold: 1024, compressionLevel: level });
      expect(f[0]! & 1).toBe(1);
      expect(receive(f).pkt).toEqual(ok);
    }
    const fe = encodeMessage(err, { compressionThreshold: 1024 });
    expect(fe[0]! & 1).toBe(1);
    expect(receive(fe).pkt.payload).toEqual({ ok: false, code: 2013, message: 'closed: '.repeat(10_000) });
  });

  it('our compressed body is a standard zstd frame of the plain body', () => {
    const pkt = { ...base, flags: MessageFlags.IsReq, payload: compressible };
    const plainBody = encodeMessage(pkt).subarray(FRAME_HEADER_SIZE);
    const packedBody = encodeMessage(pkt, { compressionThreshold: 1 }).subarray(FRAME_HEADER_SIZE);
    expect(Buffer.from(zstdDecompress(packedBody)).equals(plainBody)).toBe(true);
  });

  it('decodes a body another zstd encoder compressed', () => {
    const pkt = { ...base, flags: MessageFlags.IsReq, payload: { bin: Buffer.alloc(300_000, 9) } };
    const plainBody = encodeMessage(pkt).subarray(FRAME_HEADER_SIZE);
    const frame = encodeFrame(Buffer.from(zstdCompress(plainBody, 7)), true);
    const got = receive(frame).pkt.payload as { bin: Buffer };
    expect(Buffer.isBuffer(got.bin)).toBe(true);
    expect(got.bin.equals(pkt.payload.bin)).toBe(true);
  });

  it('sends incompressible bodies uncompressed even above the threshold', () => {
    const noise = Buffer.alloc(64 * 1024);
    let x = 0x12345678;
    for (let i = 0; i < noise.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      noise[i] = x & 0xff;
    }
    const pkt = { ...base, flags: MessageFlags.IsReq, payload: noise };
    const f = encodeMessage(pkt, { compressionThreshold: 1 });
    expect(f[0]! & 1).toBe(0);
    expect((receive(f).pkt.payload as Buffer).equals(noise)).toBe(true);
  });

  it('decodes frames without a declared content size (bounded by their blocks)', () => {
    const plainBody = encodeMessage({ ...base, flags: MessageFlags.IsReq, payload: 'raw blocks' }).subarray(FRAME_HEADER_SIZE);
    const z = zstdFrame({ blocks: [{ type: 0, size: plainBody.length, data: plainBody }] });
    expect(decodeMessage(z, true).payload).toBe('raw blocks');
    const rle = zstdFrame({
      blocks: [
        { type: 0, size: 8, data: Buffer.from([0x98, 1, 1, 1, 1, 0, 0, 0xc0]) },
        { type: 0, size: 3, data: Buffer.from([0xc5, 0x01, 0x00]) }, // bin16 of 256 bytes
        { type: 1, size: 256, data: Buffer.from([0xab]) },
      ],
    });
    expect(decodeMessage(rle, true).payload).toEqual(Buffer.alloc(256, 0xab));
  });

  it('refuses a declared content size at or above maxMessageSize before allocating', () => {
    const before = process.memoryUsage().rss;
    const claim = zstdFrame({ fcs: 600 * 1024 * 1024, blocks: [{ type: 1, size: 100, data: Buffer.from([0]) }] });
    expectThrows(() => decodeMessage(claim, true), InvalidFormatError, /declared content size 629145600 is at or above the limit 536870912/);
    // Under the limit but more than its blocks can produce: also refused before the wasm allocates it.
    const lie = zstdFrame({ fcs: 500 * 1024 * 1024, blocks: [{ type: 1, size: 100, data: Buffer.from([0]) }] });
    expectThrows(() => decodeMessage(lie, true), InvalidFormatError, /exceeds what its blocks can produce/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('honours a configured maxMessageSize for real compressed frames and unsized frames', () => {
    const pkt = { ...base, flags: MessageFlags.IsReq, payload: compressible };
    const f = encodeMessage(pkt, { compressionThreshold: 1 });
    const plainSize = encodeMessage(pkt).length - FRAME_HEADER_SIZE;
    expect(() => receive(f, plainSize)).toThrow(InvalidFormatError);
    expect(receive(f, plainSize + 1).pkt).toEqual(pkt);
    // 64 RLE blocks of 128 KiB could produce 8 MiB.
    const bomb = zstdFrame({ blocks: Array.from({ length: 64 }, () => ({ type: 1 as const, size: 128 * 1024, data: Buffer.from([0]) })) });
    expectThrows(() => decodeMessage(bomb, true, { maxMessageSize: 1024 * 1024 }), InvalidFormatError, /could reach/);
  });

  it('malformed zstd: typed errors, never a crash', () => {
    const cases: [Buffer, abstract new (...a: never[]) => Error][] = [
      [Buffer.from([1, 2, 3]), InvalidFormatError],
      [Buffer.from('not a zstd frame at all'), InvalidFormatError],
      [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x08, 0x00]), InvalidFormatError], // reserved bit
      [zstdFrame({ fcs: 10, blocks: [{ type: 0, size: 10, data: Buffer.alloc(4) }] }), InvalidFormatError], // truncated
      [Buffer.concat([zstdFrame({ fcs: 1, blocks: [{ type: 0, size: 1, data: Buffer.alloc(1) }] }), Buffer.from([0])]), InvalidFormatError],
      [zstdFrame({ blocks: [{ type: 2, size: 5, data: Buffer.from([0xff, 0xee, 0xdd, 0xcc, 0xbb]) }] }), DataCorruptionError],
      [zstdFrame({ fcs: 20, blocks: [{ type: 0, size: 10, data: Buffer.alloc(10) }] }), InvalidFormatError], // declared 20, blocks give 10
    ];
    for (const [body, Class] of cases) expectThrows(() => decodeMessage(body, true), Class);
    // Valid zstd whose content is not an envelope.
    expectThrows(() => decodeMessage(Buffer.from(zstdCompress(Buffer.from('hello hello hello'), 1)), true), InvalidFormatError, /undecodable/);
  });
});
