import { type AnySchema, defaultOf, type Schema } from '../src/index.js';
import { boxesOptional, resolveLazy } from '../src/schema/dsl.js';

/** Deterministic PRNG (mulberry32) so a failing case can be reproduced from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe((n + 3) & ~3);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((rand() * 4294967296) >>> 0, i);
  return b.subarray(0, n);
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

function randomInt(rand: () => number, min: number, max: number): number {
  // Edges half the time: that is where widths and signs go wrong.
  if (rand() < 0.5) return pick(rand, [min, max, 0 >= min && 0 <= max ? 0 : min]);
  return min + Math.floor(rand() * (max - min + 1));
}

function randomBig(rand: () => number, min: bigint, max: bigint): bigint {
  if (rand() < 0.5) return pick(rand, [min, max, min <= 0n && max >= 0n ? 0n : min]);
  const span = max - min + 1n;
  const r = (BigInt(Math.floor(rand() * 2 ** 32)) << 32n) | BigInt(Math.floor(rand() * 2 ** 32));
  return min + (r % span);
}

function randomString(rand: () => number): string {
  const n = Math.floor(rand() * (rand() < 0.1 ? 300 : 12));
  let s = '';
  for (let i = 0; i < n; i++) s += rand() < 0.9 ? String.fromCharCode(32 + Math.floor(rand() * 95)) : pick(rand, ['é', '€', '😀', '\u0000']);
  return s;
}

/** A random value that fits `schema` (deep schemas cut short at `depth`, with the type's default). */
export function randomValue(sc0: Schema, rand: () => number, depth = 0): unknown {
  const sc = sc0 as AnySchema;
  if (depth > 6) return defaultOf(sc0);
  const count = () => Math.floor(rand() * (depth < 3 ? 4 : 2));
  switch (sc.kind) {
    case 'bool':
      return rand() < 0.5;
    case 'u8':
      return randomInt(rand, 0, 0xff);
    case 'i8':
      return randomInt(rand, -0x80, 0x7f);
    case 'u16':
      return randomInt(rand, 0, 0xffff);
    case 'i16':
      return randomInt(rand, -0x8000, 0x7fff);
    case 'u32':
      return randomInt(rand, 0, 0xffffffff);
    case 'i32':
      return randomInt(rand, -0x80000000, 0x7fffffff);
    case 'u64':
      return randomBig(rand, 0n, (1n << 64n) - 1n);
    case 'i64':
      return randomBig(rand, -(1n << 63n), (1n << 63n) - 1n);
    case 'f32':
      return Math.fround((rand() - 0.5) * 1e6);
    case 'f64':
      return (rand() - 0.5) * 1e12;
    case 'string':
      return randomString(rand);
    case 'bytes':
      return randomBytes(rand, Math.floor(rand() * (rand() < 0.1 ? 300 : 16)));
    case 'void':
      return null;
    case 'status':
      return { code: randomInt(rand, 0, 0xffff), message: rand() < 0.5 ? '' : randomString(rand) };
    case 'vector':
    case 'set':
      return Array.from({ length: count() }, () => randomValue(sc.of, rand, depth + 1));
    case 'map': {
      const m = new Map();
      for (let i = count(); i > 0; i--) m.set(randomValue(sc.key, rand, depth + 1), randomValue(sc.value, rand, depth + 1));
      return m;
    }
    case 'pair':
      return [randomValue(sc.first, rand, depth + 1), randomValue(sc.second, rand, depth + 1)];
    case 'optional': {
      if (rand() < 0.3) return null;
      const v = randomValue(sc.of, rand, depth + 1);
      return boxesOptional(sc.of) ? { some: v } : v;
    }
    case 'result':
      return rand() < 0.7 ? { ok: randomValue(sc.of, rand, depth + 1) } : { error: { code: randomInt(rand, 1, 0xffff), message: randomString(rand) } };
    case 'payload':
    case 'alias':
      return randomValue(sc.of, rand, depth);
    case 'variant': {
      const a = pick(rand, sc.alternatives);
      return { tag: a.tag, value: randomValue(a.type, rand, depth + 1) };
    }
    case 'enum':
      return pick(rand, Object.values(sc.values));
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const f of sc.fields) out[f.name] = randomValue(f.type, rand, depth + 1);
      return out;
    }
    case 'lazy':
      return randomValue(resolveLazy(sc), rand, depth + 1);
    case 'fixed':
      return randomBytes(rand, sc.size);
    case 'rdmaRemoteBuf':
      return {
        addr: randomBig(rand, 0n, (1n << 64n) - 1n),
        size: randomBig(rand, 0n, (1n << 64n) - 1n),
        rkeys: Array.from({ length: count() }, () => ({ rkey: randomInt(rand, 0, 0xffffffff), devId: randomInt(rand, 0, 0x7fffffff) })),
      };
  }
}
