// The frames of one read, and of one write, are checksummed in one crc32cRanges() call where the native addon
// does that (crc32cBatched()); a call costs more than checksumming a small frame. Counted through a wrapper.
import { describe, expect, it, vi } from 'vitest';

const calls = vi.hoisted(() => ({ ranges: 0, frames: 0 }));
vi.mock('../src/crc.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/crc.js')>();
  return {
    ...real,
    crc32cRanges: (data: Uint8Array, ranges: Int32Array, count: number, out: Int32Array) => {
      calls.ranges++;
      calls.frames += count;
      real.crc32cRanges(data, ranges, count, out);
    },
  };
});

const { crc32cBatched, decodeMessage, encodeFrame, encodeMessageParts, FrameDecoder, FRAME_HEADER_SIZE, initCompression } = await import('../src/index.js');
const { encodeMessageUnsealed, sealPendingFrames } = await import('../src/internal.js');
const { crc32cImplementation } = await import('../src/index.js');

const batched = crc32cBatched();
const { dataRequest: request } = await import('./messages.js');

describe('checksums in batches', () => {
  it('batches exactly where the native addon is in use', () => {
    expect(batched).toBe(crc32cImplementation().name === 'native');
  });

  it('a read of 40 small frames is checksummed in one call', () => {
    const frames = Array.from({ length: 40 }, (_, i) => encodeFrame(Buffer.alloc(90, i)));
    const got: number[] = [];
    const dec = new FrameDecoder((body) => got.push(body[0]!));
    calls.ranges = 0;
    calls.frames = 0;
    dec.push(Buffer.concat(frames));
    expect(got).toEqual(frames.map((_, i) => i));
    expect(calls).toEqual(batched ? { ranges: 1, frames: 40 } : { ranges: 0, frames: 0 });
  });

  it('encodeMessageUnsealed leaves a one-buffer frame for sealPendingFrames, which makes it what encodeMessageParts gives', () => {
    const sealed = [5, 6].map((uuid) => Buffer.from(encodeMessageParts(request(uuid)) as Uint8Array));
    calls.ranges = 0;
    calls.frames = 0;
    const frames = [5, 6].map((uuid) => encodeMessageUnsealed(request(uuid)) as Uint8Array);
    for (const [i, frame] of frames.entries()) {
      expect(frame).toBeInstanceOf(Uint8Array);
      // The size is written at once (senders read it); only the checksum word waits.
      expect(Buffer.from(frame.subarray(4)).equals(sealed[i]!.subarray(4))).toBe(true);
      expect(frame.subarray(0, 4).every((b) => b === 0)).toBe(batched);
    }
    sealPendingFrames();
    expect(frames.map((f, i) => Buffer.from(f).equals(sealed[i]!))).toEqual([true, true]);
    expect(calls).toEqual(batched ? { ranges: 1, frames: 2 } : { ranges: 0, frames: 0 });
    // Nothing left to seal: no call. A lone frame (a call alone in flight) takes the cheaper single-range call.
    sealPendingFrames();
    const lone = encodeMessageUnsealed(request(7)) as Uint8Array;
    sealPendingFrames();
    expect(Buffer.from(lone).equals(Buffer.from(encodeMessageParts(request(7)) as Uint8Array))).toBe(true);
    expect(calls.ranges).toBe(batched ? 1 : 0);
    expect(decodeMessage(Buffer.from(lone).subarray(FRAME_HEADER_SIZE), false).uuid).toBe(7);
  });

  it('seals 300 frames in one call per run of up to 128 in one slab; frames that come back sealed are not touched', async () => {
    await initCompression();
    const frames: Uint8Array[] = [];
    const want: Buffer[] = [];
    // Sealed encodes made between the unsealed ones (they share the slab) must not disturb them.
    const compressed = encodeMessageUnsealed(request(9999, 'x'.repeat(5000)), { compressionLevel: 1, compressionThreshold: 100 }) as Uint8Array;
    // Its uncompressed form was left in the slab to seal; not counted below.
    sealPendingFrames();
    calls.ranges = 0;
    calls.frames = 0;
    for (let i = 0; i < 300; i++) {
      // Every 50th is 20 KiB, so the frames span several of the writer's 64 KiB slabs.
      const data = Buffer.alloc(i % 50 === 49 ? 20_000 : 64, i);
      frames.push(encodeMessageUnsealed(request(i + 1, data)) as Uint8Array);
      want.push(Buffer.from(encodeMessageParts(request(i + 1, data)) as Uint8Array));
    }
    const packed = encodeMessageUnsealed(request(10_000, new Map([[1, 2]]))) as Uint8Array;
    expect(compressed[0]).toBe(0x87);
    expect(packed[0]).toBe(0x86);
    const before = [Buffer.from(compressed), Buffer.from(packed)];
    sealPendingFrames();
    for (const [i, f] of frames.entries()) expect(Buffer.from(f).equals(want[i]!), `frame ${i}`).toBe(true);
    expect(Buffer.from(compressed).equals(before[0]!)).toBe(true);
    expect(Buffer.from(packed).equals(before[1]!)).toBe(true);
    if (batched) {
      // A new slab, or a 129th frame, seals what is pending first; a run of one frame takes the single-range call.
      const slabs = new Set(frames.map((f) => f.buffer)).size;
      expect(slabs).toBeGreaterThan(1);
      expect(calls.frames).toBeGreaterThan(300 - slabs);
      expect(calls.frames).toBeLessThanOrEqual(300);
      expect(calls.ranges).toBeGreaterThanOrEqual(3);
      expect(calls.ranges).toBeLessThan(slabs + 6);
    } else {
      expect(calls.ranges).toBe(0);
    }
  });
});
