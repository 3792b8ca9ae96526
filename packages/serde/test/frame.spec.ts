import { describe, expect, it } from 'vitest';
import {
  checksumWord,
  crc32c,
  DataCorruptionError,
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeFrame,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  frameHeader,
  InvalidArgError,
  InvalidFormatError,
  InvalidMessageTypeError,
  ResourceExhaustedError,
  sealFrame,
} from '../src/index.js';
import { randomBytes, rng } from './random.js';

interface Got {
  body: Buffer;
  compressed: boolean;
}

function collect(options?: ConstructorParameters<typeof FrameDecoder>[1]): { dec: FrameDecoder; got: Got[] } {
  const got: Got[] = [];
  // Copy: bodies are views into pushed chunks, and the tests reuse nothing, but a copy proves content.
  const dec = new FrameDecoder((body, compressed) => got.push({ body: Buffer.from(body), compressed }), options);
  return { dec, got };
}

describe('crc32c (3FS variant)', () => {
  it('gives 0x58E3FA20 for "123456789" and header word 0x58E3FA86', () => {
    const data = Buffer.from('123456789');
    expect(crc32c(data)).toBe(0x58e3fa20);
    expect(checksumWord(crc32c(data), false)).toBe(0x58e3fa86);
    expect(checksumWord(crc32c(data), true)).toBe(0x58e3fa87);
    const h = frameHeader(data);
    expect(h.readUInt32LE(0)).toBe(0x58e3fa86);
    expect(h.readUInt32LE(4)).toBe(9);
  });

  it('continues over chunks and accepts plain Uint8Arrays', () => {
    const data = Buffer.from('123456789');
    expect(crc32c(data.subarray(4), crc32c(data.subarray(0, 4)))).toBe(0x58e3fa20);
    expect(crc32c(new Uint8Array(data))).toBe(0x58e3fa20);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('matches a bitwise reference implementation on random data', () => {
    const ref = (d: Uint8Array): number => {
      let c = 0;
      for (const byte of d) {
        c ^= byte;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return c >>> 0;
    };
    const rand = rng(7);
    for (let i = 0; i < 50; i++) {
      const d = randomBytes(rand, (rand() * 300) | 0);
      expect(crc32c(d)).toBe(ref(d));
    }
  });
});

describe('frame encoding', () => {
  it('sealFrame, frameHeader and encodeFrame agree', () => {
    const body = Buffer.from('hello frame');
    const framed = encodeFrame(body, true);
    expect(framed.subarray(0, FRAME_HEADER_SIZE)).toEqual(frameHeader(body, true));
    expect(framed.subarray(FRAME_HEADER_SIZE)).toEqual(body);
    const slab = Buffer.alloc(100, 0xee);
    slab.set(body, 20 + FRAME_HEADER_SIZE);
    sealFrame(slab, true, 20, 20 + FRAME_HEADER_SIZE + body.length);
    expect(slab.subarray(20, 20 + FRAME_HEADER_SIZE + body.length)).toEqual(framed);
    expect(slab[19]).toBe(0xee);
  });
});

describe('FrameDecoder', () => {
  const rand = rng(42);
  const bodies = Array.from({ length: 40 }, (_, i) => randomBytes(rand, i === 0 ? 0 : (rand() * 3000) | 0));
  const flags = bodies.map(() => rand() < 0.3);
  const stream = Buffer.concat(bodies.map((b, i) => encodeFrame(b, flags[i])));

  function expectAll(got: Got[]): void {
    expect(got.length).toBe(bodies.length);
    got.forEach((g, i) => {
      expect(g.body.equals(bodies[i]!)).toBe(true);
      expect(g.compressed).toBe(flags[i]);
    });
  }

  it('decodes a whole stream pushed at once, with views not copies', () => {
    const views: Buffer[] = [];
    const dec = new FrameDecoder((b) => views.push(b));
    dec.push(stream);
    expect(views.length).toBe(bodies.length);
    expect(views[1]!.buffer).toBe(stream.buffer);
    expect(dec.bufferedBytes).toBe(0);
  });

  it('decodes the stream one byte at a time', () => {
    const { dec, got } = collect();
    for (let i = 0; i < stream.length; i++) dec.push(stream.subarray(i, i + 1));
    expectAll(got);
    expect(dec.bufferedBytes).toBe(0);
  });

  it('decodes any random split of the stream (200 seeded splits)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const { dec, got } = collect();
      let off = 0;
      while (off < stream.length) {
        // Mix tiny pieces (splitting headers) with large ones (spanning several frames).
        const n = r() < 0.5 ? 1 + ((r() * 12) | 0) : 1 + ((r() * 9000) | 0);
        dec.push(stream.subarray(off, off + n));
        off += n;
      }
      expectAll(got);
      expect(dec.bufferedBytes, `seed ${seed}`).toBe(0);
    }
  });

  it('ignores empty chunks', () => {
    const { dec, got } = collect();
    dec.push(Buffer.alloc(0));
    dec.push(stream.subarray(0, 5));
    dec.push(Buffer.alloc(0));
    dec.push(stream.subarray(5));
    expectAll(got);
  });

  it('accepts CRCs with the top bit set (regression: signed compare)', () => {
    const rand2 = rng(99);
    let high = 0;
    const { dec, got } = collect();
    for (let i = 0; i < 64; i++) {
      const b = randomBytes(rand2, 16);
      if (crc32c(b) >= 0x80000000) high++;
      dec.push(encodeFrame(b));
    }
    expect(high).toBeGreaterThan(0);
    expect(got.length).toBe(64);
  });

  it('rejects bad magic with InvalidMessageTypeError naming the peer', () => {
    const { dec } = collect({ peer: 'tcp://10.0.0.1:8000' });
    const f = encodeFrame(Buffer.from('abc'));
    f[0] = 0x42;
    expect(() => dec.push(f)).toThrow(InvalidMessageTypeError);
    expect(() => dec.push(encodeFrame(Buffer.from('x')))).toThrow(/bad frame magic 0x42.*peer tcp:\/\/10\.0\.0\.1:8000/);
  });

  it('rejects bad magic even when the header arrives split', () => {
    const { dec } = collect();
    const f = encodeFrame(Buffer.from('abc'));
    f[0] = 0x00;
    dec.push(f.subarray(0, 3));
    expect(() => dec.push(f.subarray(3, 8))).toThrow(InvalidMessageTypeError);
  });

  it('rejects a CRC mismatch with DataCorruptionError, after good frames were delivered', () => {
    const { dec, got } = collect();
    const good = encodeFrame(Buffer.from('good'));
    const bad = encodeFrame(Buffer.from('bad body'));
    bad[FRAME_HEADER_SIZE + 2]! ^= 0x01;
    let err: unknown;
    try {
      dec.push(Buffer.concat([good, bad]));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataCorruptionError);
    expect((err as DataCorruptionError).code).toBe(2);
    expect(got.map((g) => g.body.toString())).toEqual(['good']);
    // The connection is finished: the same error again, nothing buffered.
    expect(() => dec.push(good)).toThrow(err as Error);
    expect(dec.bufferedBytes).toBe(0);
  });

  it('a read of many small frames (checksummed together) delivers every one before a corrupt one, then refuses it', () => {
    // 200 frames in one chunk: more than one checksum batch; the corrupt one sits in the third batch.
    const frames = Array.from({ length: 200 }, (_, i) => encodeFrame(Buffer.from(`frame ${i} `.repeat(1 + (i % 9)))));
    frames[150]![FRAME_HEADER_SIZE + 3]! ^= 0x40;
    const { dec, got } = collect();
    expect(() => dec.push(Buffer.concat(frames))).toThrow(DataCorruptionError);
    expect(got.map((g) => g.body.toString())).toEqual(frames.slice(0, 150).map((f) => f.subarray(FRAME_HEADER_SIZE).toString()));
  });

  it('delivers the frames ahead of a bad header in the same read, then refuses the header', () => {
    const good = Array.from({ length: 70 }, (_, i) => encodeFrame(Buffer.alloc(40, i)));
    const bad = encodeFrame(Buffer.from('never delivered'));
    bad[0] = 0x42;
    const oversize = encodeFrame(Buffer.from('too big'));
    for (const [tail, want] of [
      [bad, InvalidMessageTypeError],
      [oversize, InvalidFormatError],
    ] as const) {
      const { dec, got } = collect({ maxMessageSize: 1000 });
      if (tail === oversize) tail.writeUInt32LE(5000, 4);
      expect(() => dec.push(Buffer.concat([...good, tail, ...good]))).toThrow(want);
      expect(got.map((g) => g.body[0])).toEqual(good.map((_, i) => i));
    }
  });

  it('a handler that feeds another decoder mid-read leaves both streams intact', () => {
    const inner = Array.from({ length: 30 }, (_, i) => encodeFrame(Buffer.alloc(30, 100 + i)));
    const outer = Array.from({ length: 30 }, (_, i) => encodeFrame(Buffer.alloc(50, i)));
    const b = collect();
    const seen: number[] = [];
    const a = new FrameDecoder((body) => {
      seen.push(body[0]!);
      // Another connection's read handled inside this one's delivery.
      if (seen.length === 10) b.dec.push(Buffer.concat(inner));
    });
    a.push(Buffer.concat(outer));
    expect(seen).toEqual(outer.map((_, i) => i));
    expect(b.got.map((g) => g.body[0])).toEqual(inner.map((_, i) => 100 + i));
  });

  it('ignores the compressed bit and magic byte when checking the CRC', () => {
    const { dec, got } = collect();
    const f = encodeFrame(Buffer.from('abc'), false);
    f[0] = 0x87;
    dec.push(f);
    expect(got[0]!.compressed).toBe(true);
  });

  it('rejects size >= maxMessageSize (configurable) before buffering the body', () => {
    const { dec } = collect({ maxMessageSize: 1024 });
    const ok = encodeFrame(Buffer.alloc(1023));
    dec.push(ok);
    const h = frameHeader(Buffer.alloc(1024));
    expect(() => dec.push(h)).toThrow(InvalidFormatError);
    expect(dec.maxMessageSize).toBe(1024);
  });

  it('defaults maxMessageSize to 512 MiB', () => {
    const { dec } = collect();
    expect(dec.maxMessageSize).toBe(512 * 1024 * 1024);
    expect(DEFAULT_MAX_MESSAGE_SIZE).toBe(512 * 1024 * 1024);
    const h = Buffer.alloc(8);
    h.writeUInt32LE(0x86, 0);
    h.writeUInt32LE(DEFAULT_MAX_MESSAGE_SIZE, 4);
    expect(() => dec.push(h)).toThrow(/at or above the limit/);
  });

  it('a header claiming 500 MiB followed by a few KB and a stall allocates only what arrived', () => {
    global.gc?.();
    const before = process.memoryUsage();
    const { dec, got } = collect();
    const h = Buffer.alloc(8);
    h.writeUInt32LE(0x86, 0);
    h.writeUInt32LE(500 * 1024 * 1024, 4);
    dec.push(h.subarray(0, 5));
    dec.push(Buffer.concat([h.subarray(5), Buffer.alloc(1000, 1)]));
    for (let i = 0; i < 4; i++) dec.push(Buffer.alloc(1024, 2));
    const after = process.memoryUsage();
    expect(got.length).toBe(0);
    expect(dec.bufferedBytes).toBe(8 + 1000 + 4096);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 * 1024 * 1024);
    expect(after.rss - before.rss).toBeLessThan(64 * 1024 * 1024);
  });

  it('delivers a frame spanning many chunks once, as one contiguous body', () => {
    const body = randomBytes(rng(3), 200_000);
    const f = encodeFrame(body);
    const { dec, got } = collect();
    for (let off = 0; off < f.length; off += 7_000) {
      dec.push(f.subarray(off, off + 7_000));
      if (off + 7_000 < f.length) expect(dec.bufferedBytes).toBe(off + 7_000);
    }
    expect(got.length).toBe(1);
    expect(got[0]!.body.equals(body)).toBe(true);
  });

  describe('large frames (checksummed as they arrive, body buffer at 1/8)', () => {
    const r = rng(77);
    // Large bodies around the 64 KiB threshold and well above it, between small frames.
    const sizes = [10, 65_535, 65_536, 9, 300_000, 1_048_576 + 13, 0, 70_000, 5];
    const bodies = sizes.map((n) => randomBytes(r, n));
    const flags = sizes.map((_, i) => i % 3 === 1);
    const stream = Buffer.concat(bodies.map((b, i) => encodeFrame(b, flags[i])));

    function check(got: Got[]): void {
      expect(got.length).toBe(bodies.length);
      got.forEach((g, i) => {
        expect(g.body.equals(bodies[i]!), `frame ${i} (${sizes[i]} bytes)`).toBe(true);
        expect(g.compressed).toBe(flags[i]);
      });
    }

    it('survives any split: single bytes around headers, Node-sized reads, whole stream', () => {
      for (let seed = 1; seed <= 30; seed++) {
        const rs = rng(seed);
        const { dec, got } = collect();
        let off = 0;
        while (off < stream.length) {
          const n = rs() < 0.3 ? 1 + ((rs() * 9) | 0) : 1 + ((rs() * 65_536) | 0);
          dec.push(stream.subarray(off, off + n));
          off += n;
        }
        check(got);
        expect(dec.bufferedBytes, `seed ${seed}`).toBe(0);
      }
      const { dec, got } = collect();
      dec.push(stream);
      check(got);
    });

    it('counts a partial large frame in bufferedBytes, header included', () => {
      const f = encodeFrame(bodies[4]!);
      const { dec, got } = collect();
      dec.push(f.subarray(0, 3));
      dec.push(f.subarray(3, 100_000));
      expect(dec.bufferedBytes).toBe(100_000);
      dec.push(f.subarray(100_000, 250_000));
      expect(dec.bufferedBytes).toBe(250_000);
      dec.push(f.subarray(250_000));
      expect(got.length).toBe(1);
      expect(dec.bufferedBytes).toBe(0);
    });

    it('a corrupted byte in either half of a large body fails the frame, not the ones before it', () => {
      for (const at of [FRAME_HEADER_SIZE + 17, FRAME_HEADER_SIZE + 200_000]) {
        const good = encodeFrame(Buffer.from('before'));
        const bad = encodeFrame(bodies[4]!);
        bad[at] = bad[at]! ^ 0x40;
        const { dec, got } = collect({ peer: 'tcp://10.0.0.9:8000' });
        dec.push(good);
        const all = Buffer.concat([bad, good]);
        let err: unknown;
        for (let off = 0; off < all.length && err === undefined; off += 65_536) {
          try {
            dec.push(all.subarray(off, off + 65_536));
          } catch (e) {
            err = e;
          }
        }
        expect(err).toBeInstanceOf(DataCorruptionError);
        expect((err as Error).message).toMatch(/checksum mismatch.*over 300000 bytes.*10\.0\.0\.9:8000/);
        expect(got.length).toBe(1);
        expect(() => dec.push(good)).toThrow(DataCorruptionError);
      }
    });

    it('readTarget: none before 1/8, then the rest of the body; bytes read into it are taken in place', () => {
      const body = bodies[4]!; // 300,000 bytes
      const f = encodeFrame(body);
      const views: Buffer[] = [];
      const dec = new FrameDecoder((b) => views.push(b));
      expect(dec.readTarget()).toBeUndefined();
      dec.push(f.subarray(0, 30_000));
      expect(dec.readTarget()).toBeUndefined();
      dec.push(f.subarray(30_000, 160_000));
      let at = 160_000;
      // Simulate a reader that reads straight into the target, in uneven pieces, as a socket would.
      for (const n of [1, 50_000, 80_000]) {
        const t = dec.readTarget()!;
        expect(t.length).toBe(f.length - at);
        f.copy(t, 0, at, at + n);
        dec.push(t.subarray(0, n));
        at += n;
      }
      // Under 16 KiB left: not worth a read of its own, the rest comes as an ordinary chunk.
      expect(f.length - at).toBeLessThan(16 * 1024);
      expect(dec.readTarget()).toBeUndefined();
      dec.push(Buffer.concat([f.subarray(at), encodeFrame(Buffer.from('next'))]));
      expect(views.length).toBe(2);
      expect(views[0]!.equals(body)).toBe(true);
      expect(views[1]!.toString()).toBe('next');
      expect(dec.readTarget()).toBeUndefined();
    });

    it('a body read in place in 16 KiB pieces (as tls hands them over) is checksummed whole: a flipped byte anywhere fails it', () => {
      // Flipped bytes lie before the body exists (the copied first eighth), in the middle of the part read in
      // place, and in its last bytes; the size is a multiple of nothing in particular.
      const body = randomBytes(rng(15), 1024 * 1024 + 12_345);
      const f = encodeFrame(body);
      const feed = (frame: Buffer): { delivered: Buffer[]; err: unknown } => {
        const delivered: Buffer[] = [];
        const dec = new FrameDecoder((b) => delivered.push(Buffer.from(b)));
        let at = 0;
        try {
          while (at < frame.length) {
            const n = Math.min(16 * 1024, frame.length - at);
            const t = dec.readTarget();
            if (t === undefined) {
              dec.push(frame.subarray(at, at + n));
            } else {
              frame.copy(t, 0, at, at + n);
              dec.push(t.subarray(0, n));
            }
            at += n;
          }
        } catch (e) {
          return { delivered, err: e };
        }
        return { delivered, err: undefined };
      };
      const intact = feed(f);
      expect(intact.err).toBeUndefined();
      expect(intact.delivered.length).toBe(1);
      expect(intact.delivered[0]!.equals(body)).toBe(true);
      for (const pos of [0, 100_000, 140_000, 128 * 1024 * 3, 700_001, body.length - 1]) {
        const bad = Buffer.from(f);
        bad[FRAME_HEADER_SIZE + pos] = bad[FRAME_HEADER_SIZE + pos]! ^ 0x10;
        const r = feed(bad);
        expect(r.err, `flipped at ${pos}`).toBeInstanceOf(DataCorruptionError);
        expect(r.delivered.length, `flipped at ${pos}`).toBe(0);
      }
    });

    it('readTarget(pending): bytes the reader already holds count toward the share, never beyond 1/8 of them', () => {
      const body = bodies[4]!; // 300,000 bytes: its share is 37,500
      const f = encodeFrame(body);
      const views: Buffer[] = [];
      const dec = new FrameDecoder((b) => views.push(b));
      dec.push(f.subarray(0, 100)); // the header and 92 body bytes
      // 92 + 37,000 held is under the share: no body yet, whatever the reader holds counts no more than it is.
      expect(dec.readTarget(37_000)).toBeUndefined();
      expect(dec.heldBytes).toBe(100);
      // 92 + 37,500 reaches it: the body exists now, before those bytes are pushed, and they land in it once.
      const t = dec.readTarget(37_500)!;
      expect(t.length).toBe(f.length - 100);
      expect(dec.heldBytes).toBe(8 + body.length);
      f.copy(t, 0, 100);
      dec.push(t);
      expect(views.length).toBe(1);
      expect(views[0]!.equals(body)).toBe(true);
      // The view delivered is the target itself: nothing was copied after the reader's copy.
      expect(views[0]!.buffer).toBe(t.buffer);
    });

    it('readTarget(pending) asks the budget like an ordinary allocation; a refusal for good fails the decoder', () => {
      const f = encodeFrame(bodies[4]!);
      const asked: number[] = [];
      let allow = false;
      const dec = new FrameDecoder(() => {}, {
        reserve: (n) => {
          asked.push(n);
          if (n > 1e9) throw new ResourceExhaustedError('over the limit');
          return allow;
        },
      });
      dec.push(f.subarray(0, 100));
      expect(dec.readTarget(100_000)).toBeUndefined();
      expect(asked).toEqual([f.length - 8 - 92]);
      allow = true;
      expect(dec.readTarget(100_000)?.length).toBe(f.length - 100);
      const big = Buffer.alloc(8);
      big.writeUInt32LE(0x86, 0);
      big.writeUInt32LE(1.5e9, 4);
      const dec2 = new FrameDecoder(() => {}, {
        maxMessageSize: 2 ** 31,
        reserve: (n) => {
          if (n > 1e9) throw new ResourceExhaustedError('over the limit');
          return true;
        },
      });
      dec2.push(big);
      expect(dec2.readTarget(2 ** 30)).toBeUndefined();
      expect(() => dec2.push(Buffer.alloc(10))).toThrow(ResourceExhaustedError);
    });

    it('copyIn: copies into the body and checksums the copy in one pass; copied() runs before the frame is delivered', () => {
      const body = randomBytes(rng(21), 1024 * 1024 + 77);
      const f = encodeFrame(body);
      const events: string[] = [];
      const views: Buffer[] = [];
      const dec = new FrameDecoder((b) => {
        events.push('frame');
        views.push(b);
      });
      const copied = (n: number) => events.push(`copied ${n}`);
      // No frame yet: nothing to copy into, the caller pushes as usual.
      expect(dec.copyIn(f, 0, f.length, copied)).toBe(0);
      dec.push(f.subarray(0, 100));
      // The ring's shared memory, which the peer could still change: the decoder reads each byte once.
      const ring = Buffer.from(f);
      expect(dec.copyIn(ring, 100, 400_000, copied)).toBe(399_900);
      expect(dec.copyIn(ring, 400_000, f.length, copied)).toBe(f.length - 400_000);
      expect(events).toEqual(['copied 399900', `copied ${f.length - 400_000}`, 'frame']);
      expect(views[0]!.equals(body)).toBe(true);
      // The body is the decoder's own memory: rewriting the source afterwards changes nothing delivered.
      ring.fill(0);
      expect(views[0]!.equals(body)).toBe(true);
    });

    it('copyIn: bytes that do not match the header CRC fail the frame; it takes no more than the rest of the body', () => {
      const f = encodeFrame(bodies[4]!);
      const dec = new FrameDecoder(() => {});
      dec.push(f.subarray(0, 100));
      const bad = Buffer.from(f);
      bad[200_000] = bad[200_000]! ^ 1;
      expect(() => dec.copyIn(bad, 100, f.length, () => {})).toThrow(DataCorruptionError);
      expect(() => dec.push(Buffer.alloc(1))).toThrow(DataCorruptionError);
      // A source running past the frame: only the body's rest is taken; the next frame's bytes are the caller's.
      const two = Buffer.concat([f, encodeFrame(Buffer.from('next'))]);
      const got: Buffer[] = [];
      const dec2 = new FrameDecoder((b) => got.push(Buffer.from(b)));
      dec2.push(two.subarray(0, 100));
      expect(dec2.copyIn(two, 100, two.length, () => {})).toBe(f.length - 100);
      dec2.push(two.subarray(f.length));
      expect(got.map((b) => b.length)).toEqual([bodies[4]!.length, 4]);
    });

    it('readTarget bytes that do not match the body fail the CRC like any other', () => {
      const f = encodeFrame(bodies[4]!);
      const dec = new FrameDecoder(() => {});
      dec.push(f.subarray(0, 200_000));
      const t = dec.readTarget()!;
      f.copy(t, 0, 200_000);
      t[5] = t[5]! ^ 1;
      expect(() => dec.push(t.subarray(0, f.length - 200_000))).toThrow(DataCorruptionError);
      expect(dec.readTarget()).toBeUndefined();
    });

    it('a header claiming 300 MiB with 30 MiB sent holds no 300 MiB buffer; past 1/8 it gets its body', () => {
      const { dec, got } = collect();
      const h = Buffer.alloc(8);
      h.writeUInt32LE(0x86, 0);
      h.writeUInt32LE(300 * 1024 * 1024, 4);
      dec.push(h);
      const piece = Buffer.alloc(1024 * 1024, 3);
      global.gc?.();
      const before = process.memoryUsage().arrayBuffers;
      // The same 1 MiB pushed 30 times: the decoder holds views, so below 1/8 nothing new is allocated.
      for (let i = 0; i < 30; i++) dec.push(piece);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
      expect(dec.bufferedBytes).toBe(8 + 30 * 1024 * 1024);
      expect(dec.readTarget()).toBeUndefined();
      for (let i = 0; i < 8; i++) dec.push(piece);
      // (Less than the full 300 MiB may show: garbage from earlier tests can be collected meanwhile.)
      expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThan(250 * 1024 * 1024);
      expect(dec.readTarget()!.length).toBe(300 * 1024 * 1024 - 38 * 1024 * 1024);
      expect(got.length).toBe(0);
    });

    it('allocateLargeBodyAt sets when the body buffer appears; 1 means only once complete', () => {
      const f = encodeFrame(bodies[4]!); // 300,000-byte body
      for (const [at, firstTargetAfter] of [
        [0.5, 150_000],
        [0.25, 75_000],
      ] as const) {
        const dec = new FrameDecoder(() => {}, { allocateLargeBodyAt: at });
        dec.push(f.subarray(0, 8 + firstTargetAfter - 1));
        expect(dec.readTarget(), `at ${at}`).toBeUndefined();
        dec.push(f.subarray(8 + firstTargetAfter - 1, 8 + firstTargetAfter));
        expect(dec.readTarget()!.length, `at ${at}`).toBe(300_000 - firstTargetAfter);
      }
      const views: Buffer[] = [];
      const strict = new FrameDecoder((b) => views.push(b), { allocateLargeBodyAt: 1 });
      strict.push(f.subarray(0, f.length - 1));
      expect(strict.readTarget()).toBeUndefined();
      strict.push(f.subarray(f.length - 1));
      expect(views[0]!.equals(bodies[4]!)).toBe(true);
      for (const bad of [0, -1, 1.5, Number.NaN]) {
        expect(() => new FrameDecoder(() => {}, { allocateLargeBodyAt: bad })).toThrow(InvalidArgError);
      }
    });
  });

  it('a throwing handler finishes the decoder with that error', () => {
    const boom = new Error('handler failed');
    const dec = new FrameDecoder(() => {
      throw boom;
    });
    expect(() => dec.push(encodeFrame(Buffer.from('a')))).toThrow(boom);
    expect(() => dec.push(encodeFrame(Buffer.from('b')))).toThrow(boom);
  });
});

describe('FrameDecoder: hold, budgets and trickled bytes', () => {
  const frames = (n: number, size = 5): Buffer[] => Array.from({ length: n }, (_, i) => encodeFrame(Buffer.alloc(size, i)));

  it('hold() from inside a handler stops delivery at the next frame boundary; resume() delivers the rest in order', () => {
    const got: number[] = [];
    const dec = new FrameDecoder((body) => {
      got.push(body[0]!);
      if (got.length === 3) dec.hold();
    });
    const all = frames(10);
    dec.push(Buffer.concat(all.slice(0, 8)));
    expect(got).toEqual([0, 1, 2]);
    // The undelivered frames of that chunk are held, and so is what arrives meanwhile.
    expect(dec.heldBytes).toBe(5 * all[0]!.length);
    dec.push(Buffer.concat(all.slice(8)));
    expect(got).toEqual([0, 1, 2]);
    expect(dec.heldBytes).toBe(7 * all[0]!.length);
    dec.resume();
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(dec.heldBytes).toBe(0);
  });

  it('holds a partial frame and the bytes after it, and hold() again inside resume() stops again', () => {
    const got: number[] = [];
    let stopAt = 2;
    const dec = new FrameDecoder((body) => {
      got.push(body[0]!);
      if (got.length === stopAt) dec.hold();
    });
    const all = Buffer.concat(frames(6, 100));
    // Split mid-frame so a partial frame is pending across the hold.
    dec.push(all.subarray(0, 250));
    expect(got).toEqual([0, 1]);
    // Frame 3 ends at byte 432: it completes inside what was held, and the hold stops right after it.
    dec.push(all.subarray(250, 440));
    stopAt = 4;
    dec.resume();
    expect(got).toEqual([0, 1, 2, 3]);
    expect(dec.heldBytes).toBe(440 - 432);
    dec.push(all.subarray(440));
    expect(got).toEqual([0, 1, 2, 3]);
    dec.resume();
    expect(got).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('a push from inside a handler is delivered after the frames before it', () => {
    const got: number[] = [];
    const [a, b, c] = frames(3);
    const dec = new FrameDecoder((body) => {
      got.push(body[0]!);
      if (body[0] === 0) dec.push(c!);
    });
    dec.push(Buffer.concat([a!, b!]));
    expect(got).toEqual([0, 1, 2]);
  });

  it('asks reserve() before allocating a large body, counts it at full size, and defers on false', () => {
    const size = 1024 * 1024;
    const frame = encodeFrame(randomBytes(rng(7), size));
    let allow = false;
    const asked: number[] = [];
    const { dec, got } = collect({
      reserve: (n) => {
        asked.push(n);
        return allow;
      },
    });
    // 1/8 of the body is where the allocation is due.
    dec.push(frame.subarray(0, FRAME_HEADER_SIZE + size / 8));
    expect(asked).toEqual([size - size / 8]);
    expect(dec.pendingAllocation).toBe(size - size / 8);
    expect(dec.heldBytes).toBe(FRAME_HEADER_SIZE + size / 8);
    expect(dec.readTarget()).toBeUndefined();
    allow = true;
    dec.push(frame.subarray(FRAME_HEADER_SIZE + size / 8, FRAME_HEADER_SIZE + size / 4));
    expect(asked).toHaveLength(2);
    expect(dec.pendingAllocation).toBe(0);
    // Allocated: counted at its full size although only a quarter arrived.
    expect(dec.heldBytes).toBe(FRAME_HEADER_SIZE + size);
    dec.push(frame.subarray(FRAME_HEADER_SIZE + size / 4));
    expect(got).toHaveLength(1);
    expect(got[0]!.body.equals(frame.subarray(FRAME_HEADER_SIZE))).toBe(true);
    expect(dec.heldBytes).toBe(0);
  });

  it('a large body refused all the way is joined once complete, with its content intact', () => {
    const size = 256 * 1024;
    const frame = encodeFrame(randomBytes(rng(9), size));
    const { dec, got } = collect({ reserve: () => false });
    for (let off = 0; off < frame.length; off += 10_000) dec.push(frame.subarray(off, off + 10_000));
    expect(got).toHaveLength(1);
    expect(got[0]!.body.equals(frame.subarray(FRAME_HEADER_SIZE))).toBe(true);
  });

  it('a throwing reserve() fails the decoder with its error', () => {
    const size = 128 * 1024;
    const boom = new InvalidArgError('no room');
    const dec = new FrameDecoder(() => {}, {
      reserve: () => {
        throw boom;
      },
    });
    const frame = encodeFrame(Buffer.alloc(size));
    expect(() => dec.push(frame.subarray(0, FRAME_HEADER_SIZE + size / 2))).toThrow(boom);
    expect(() => dec.push(frame.subarray(FRAME_HEADER_SIZE + size / 2))).toThrow(boom);
  });

  // One Buffer view per trickled byte costs ~80 bytes of heap and pins the read buffer it points into.
  it.each([
    ['a small frame', 60_000],
    ['a large frame', 1024 * 1024],
  ])('keeps few buffers for %s trickled a byte per push, and decodes it intact', (_what, size) => {
    const frame = encodeFrame(randomBytes(rng(size), size));
    const { dec, got } = collect();
    // Each byte a view into a shared 64 KiB read buffer, as net-backend's arenas hand them out.
    const arena = Buffer.alloc(64 * 1024);
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      const at = i % arena.length;
      arena[at] = frame[i]!;
      dec.push(arena.subarray(at, at + 1));
    }
    expect(dec.heldBytes).toBe(n);
    // Staging buffers of up to 4 KiB: a handful of buffers, not one per byte.
    expect(dec.heldParts).toBeLessThanOrEqual(Math.ceil(n / 256) + 2);
    dec.push(frame.subarray(n));
    expect(got).toHaveLength(1);
    expect(got[0]!.body.equals(frame.subarray(FRAME_HEADER_SIZE))).toBe(true);
  });

  it('tracks the size of the frame in progress and counts delivered frames', () => {
    const { dec } = collect();
    const [a, b] = frames(2, 300);
    expect(dec.partialFrameSize).toBe(0);
    dec.push(a!.subarray(0, 4));
    expect(dec.partialFrameSize).toBe(0);
    dec.push(a!.subarray(4, 20));
    expect(dec.partialFrameSize).toBe(a!.length);
    dec.push(Buffer.concat([a!.subarray(20), b!.subarray(0, 10)]));
    expect(dec.framesDelivered).toBe(1);
    expect(dec.partialFrameSize).toBe(b!.length);
  });
});
