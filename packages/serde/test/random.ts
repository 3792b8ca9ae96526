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
