import { checksumWord, crc32c, decodeMessage, FfnetError, FRAME_COMPRESSED, FRAME_HEADER_SIZE, FRAME_MAGIC, FrameDecoder } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { BOUNDARY_VALUES, encodeMp, FRAME_KINDS, fuzzBatch, fuzzFrame, HUGE_COUNT_HEADERS, KIND_WEIGHTS, lyingHeader, mp, pickKind } from '../src/frames.js';
import { Rng } from '../src/rng.js';
import { CORE_SERVICE_ID, ECHO_SERVICE_ID, StressService } from '../src/service.js';

/** The header is exactly what serde writes for this body: right magic, right size, right CRC. */
function hasValidHeader(f: Buffer): boolean {
  const word = f.readUInt32LE(0);
  const size = f.readUInt32LE(4);
  const body = f.subarray(FRAME_HEADER_SIZE);
  return size === body.length && word === checksumWord(crc32c(body), (word & FRAME_COMPRESSED) !== 0);
}

/** Frames the server's own decoder hands out from `bytes`, and whether it refused the stream. */
function deframe(bytes: Buffer): { bodies: Buffer[]; error: unknown } {
  const bodies: Buffer[] = [];
  const dec = new FrameDecoder((b) => bodies.push(Buffer.from(b)));
  try {
    dec.push(bytes);
    return { bodies, error: undefined };
  } catch (e) {
    return { bodies, error: e };
  }
}

function bitsDiffer(a: Buffer, b: Buffer): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    let x = (a[i] as number) ^ (b[i] as number);
    while (x) {
      n += x & 1;
      x >>= 1;
    }
  }
  return n;
}

const many = (kind: (typeof FRAME_KINDS)[number], n = 300, seed = 42): Buffer[] => {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => fuzzFrame(kind, rng));
};

describe('raw MessagePack writer', () => {
  it('writes the edge encodings byte for byte', () => {
    expect(encodeMp(mp.uint(0xffff_ffff_ffff_ffffn)).toString('hex')).toBe('cfffffffffffffffff');
    expect(encodeMp(mp.uint(0xffff_ffff)).toString('hex')).toBe('ceffffffff');
    expect(encodeMp(mp.int(-1)).toString('hex')).toBe('d3ffffffffffffffff');
    expect(encodeMp(mp.f64(-0)).toString('hex')).toBe('cb8000000000000000');
    expect(encodeMp(mp.f64(Number.NaN)).toString('hex')).toBe('cb7ff8000000000000');
    // A count that lies: the header says 3, one element follows.
    expect(encodeMp(mp.arr([mp.nil()], 3)).toString('hex')).toBe('93c0');
    expect(encodeMp(mp.obj({ __proto__: mp.nil() } as never)).length).toBe(1); // a literal __proto__ is no key
    expect(encodeMp(mp.map([[mp.str('__proto__'), mp.nil()]])).toString()).toContain('__proto__');
  });
});

describe('fuzz frame kinds produce what they claim', () => {
  it('valid: correct frames that decode to stress-service requests', () => {
    for (const f of many('valid')) {
      expect(hasValidHeader(f)).toBe(true);
      const { bodies, error } = deframe(f);
      expect(error).toBeUndefined();
      const m = decodeMessage(bodies[0]!, false);
      expect(m.serviceId).toBe(StressService.id);
      expect([1, 2]).toContain(m.methodId);
    }
  });

  it('garbage: a correct header around a body that is not an envelope', () => {
    for (const f of many('garbage')) {
      expect(hasValidHeader(f)).toBe(true);
      const { bodies, error } = deframe(f);
      expect(error).toBeUndefined();
      let thrown: unknown;
      try {
        decodeMessage(bodies[0]!, false);
      } catch (e) {
        thrown = e;
      }
      expect(FfnetError.is(thrown)).toBe(true);
    }
  });

  it('proto: correct requests whose payload carries prototype keys, which pollute nothing', () => {
    let protoKey = 0;
    for (const f of many('proto')) {
      expect(hasValidHeader(f)).toBe(true);
      const body = f.subarray(FRAME_HEADER_SIZE);
      if (body.includes('__proto__')) protoKey++;
      const m = decodeMessage(body, false);
      expect([StressService.id, ECHO_SERVICE_ID]).toContain(m.serviceId);
      expect(Object.getPrototypeOf(m.payload)).toBe(Object.prototype);
    }
    expect(protoKey).toBeGreaterThan(100);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('boundary: correct headers, eight-field envelopes, every edge value used', () => {
    const seen = new Set<string>();
    const frames = many('boundary', 2000);
    const encodings = BOUNDARY_VALUES.map((v) => encodeMp(v)).filter((e) => e.length >= 5);
    for (const f of frames) {
      expect(hasValidHeader(f)).toBe(true);
      expect(f[FRAME_HEADER_SIZE]).toBe(0x98);
      for (const e of encodings) if (f.subarray(FRAME_HEADER_SIZE).includes(e)) seen.add(e.toString('hex'));
    }
    expect([...seen].sort()).toEqual(encodings.map((e) => e.toString('hex')).sort());
  });

  it('hugecount: correct headers around counts that lie, refused without allocating what they claim', () => {
    const before = process.memoryUsage().arrayBuffers;
    for (const f of many('hugecount')) {
      expect(hasValidHeader(f)).toBe(true);
      const body = f.subarray(FRAME_HEADER_SIZE);
      expect(HUGE_COUNT_HEADERS.some((h) => body.includes(Buffer.from(h)))).toBe(true);
      try {
        decodeMessage(body, false);
      } catch (e) {
        expect(FfnetError.is(e)).toBe(true);
      }
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('bitflip: a valid frame with 1 to 3 bits flipped', () => {
    for (let seed = 1; seed <= 300; seed++) {
      // Same seed, same draws: the frame before the flips.
      const flipped = fuzzFrame('bitflip', new Rng(seed));
      const original = fuzzFrame('valid', new Rng(seed));
      expect(flipped.length).toBe(original.length);
      const d = bitsDiffer(flipped, original);
      expect(d).toBeGreaterThanOrEqual(1);
      expect(d).toBeLessThanOrEqual(3);
    }
  });

  it('truncated: a strict prefix of a valid frame', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const cut = fuzzFrame('truncated', new Rng(seed));
      const whole = fuzzFrame('valid', new Rng(seed));
      expect(cut.length).toBeLessThan(whole.length);
      expect(whole.subarray(0, cut.length).equals(cut)).toBe(true);
    }
  });

  it('zstd: correct CRC with the compressed bit set', () => {
    for (const f of many('zstd')) {
      expect(hasValidHeader(f)).toBe(true);
      expect(f[0]! & FRAME_COMPRESSED).toBe(FRAME_COMPRESSED);
    }
  });

  it('random: 1 to 256 bytes', () => {
    for (const f of many('random')) {
      expect(f.length).toBeGreaterThanOrEqual(1);
      expect(f.length).toBeLessThanOrEqual(256);
    }
  });

  it('core envelopes appear only when asked for', () => {
    const services = (fuzzCore: boolean) => {
      const rng = new Rng(3);
      const ids = new Set<number>();
      for (let i = 0; i < 3000; i++) {
        const body = fuzzFrame('boundary', rng, { fuzzCore }).subarray(FRAME_HEADER_SIZE);
        // serviceId is the envelope's second field; the first (uuid) is a u32 (5 bytes) unless replaced.
        if (body[1] === 0xce && body[6] === 0xcd) ids.add(body.readUInt16BE(7));
      }
      return ids;
    };
    expect(services(true).has(CORE_SERVICE_ID)).toBe(true);
    expect(services(false).has(CORE_SERVICE_ID)).toBe(false);
  });
});

describe('batches and headers', () => {
  it('a batch is its frames back to back, with a count per kind, the same for the same seed', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const b = fuzzBatch(new Rng(seed), 200);
      expect(b.frames).toBe(200);
      expect(Object.values(b.kinds).reduce((x, y) => x + y, 0)).toBe(200);
      expect(fuzzBatch(new Rng(seed), 200).bytes.equals(b.bytes)).toBe(true);
    }
  });

  it('half the batches are an answered run (valid and __proto__ requests) ending in one hostile frame', () => {
    let runs = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const b = fuzzBatch(new Rng(seed), 100);
      const answered = (b.kinds.valid ?? 0) + (b.kinds.proto ?? 0);
      if (answered >= 99) {
        runs++;
        // The run deframes cleanly up to its last frame, and the server's decoder answers each: check the first 99.
        const { bodies } = deframe(b.bytes);
        expect(bodies.length).toBeGreaterThanOrEqual(99);
        for (const body of bodies.slice(0, 99)) expect(() => decodeMessage(body, false)).not.toThrow();
      }
    }
    expect(runs).toBeGreaterThan(70);
    expect(runs).toBeLessThan(130);
  });

  it('every kind is drawn, roughly by its weight', () => {
    const rng = new Rng(5);
    const counts: Record<string, number> = {};
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const k = pickKind(rng);
      counts[k] = (counts[k] ?? 0) + 1;
    }
    const total = Object.values(KIND_WEIGHTS).reduce((x, y) => x + y, 0);
    for (const k of FRAME_KINDS) {
      const want = (KIND_WEIGHTS[k] / total) * n;
      expect(Math.abs((counts[k] ?? 0) - want)).toBeLessThan(want * 0.1);
    }
  });

  it('a lying header has a frame magic and claims the given size', () => {
    const h = lyingHeader(256 * 1024 * 1024);
    expect(h.length).toBe(FRAME_HEADER_SIZE);
    expect(h.readUInt32LE(0) & 0xfe).toBe(FRAME_MAGIC);
    expect(h.readUInt32LE(4)).toBe(256 * 1024 * 1024);
  });
});
