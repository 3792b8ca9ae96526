// Hostile input: random bytes, truncations and bit flips of real 3FS bytes never throw anything but typed
// ffnet errors (40, 42, 33), and never allocate by a lying count (a huge count fails before allocation, so
// these loops finish quickly with bounded memory).
import { expect, it } from 'vitest';
import { decode3fs, FfnetError, fromNeutral, type Schema } from '../src/index.js';
import { hexBytes, loadServices, loadVectors } from './fixtures/kit.js';
import { randomBytes, rng } from './random.js';

const ALLOWED = new Set([33, 40, 42]);
const kit = loadServices();

function tryDecode(sc: Schema, b: Uint8Array, what: string): void {
  try {
    decode3fs(sc, b);
  } catch (e) {
    if (!(e instanceof FfnetError) || !ALLOWED.has(e.code)) {
      throw new Error(`${what}: ${Buffer.from(b).toString('hex').slice(0, 200)} threw ${String(e)}`, { cause: e });
    }
  }
}

it('truncations and bit flips of every vector decode or fail typed', () => {
  const rand = rng(1403);
  let typed = 0;
  for (const v of loadVectors()) {
    const full = hexBytes(v.hex);
    for (const mode of ['string', 'bytes'] as const) {
      const sc = fromNeutral(v.type, {}, { strings: mode });
      for (let n = 0; n < full.length; n += Math.max(1, full.length >> 6)) tryDecode(sc, full.subarray(0, n), `${v.name} cut at ${n}`);
      for (let i = 0; i < 20 && full.length > 0; i++) {
        const flipped = full.slice();
        const at = Math.floor(rand() * flipped.length);
        flipped[at] = (flipped[at] as number) ^ (1 << Math.floor(rand() * 8));
        tryDecode(sc, flipped, `${v.name} flipped at ${at}`);
      }
    }
    if (v.error) typed++;
  }
  expect(typed).toBeGreaterThan(0);
});

it('random bytes against every services.json type decode or fail typed', () => {
  const rand = rng(14);
  const names = Object.keys(kit.types);
  let failures = 0;
  for (const name of names) {
    const sc = fromNeutral({ kind: 'ref', name }, kit.types, { strings: 'bytes' });
    for (let i = 0; i < 30; i++) {
      const b = randomBytes(rand, Math.floor(rand() * 64));
      try {
        decode3fs(sc, b);
      } catch (e) {
        failures++;
        if (!(e instanceof FfnetError) || !ALLOWED.has(e.code)) throw new Error(`${name}: threw ${String(e)}`, { cause: e });
      }
    }
  }
  // Random bytes almost never form a valid message: make sure the loop really exercised the error paths.
  expect(failures).toBeGreaterThan(names.length * 10);
});

it('a count of 2^60 items in a short input fails fast as insufficient length', () => {
  const sc = fromNeutral({ kind: 'vector', of: { kind: 'vector', of: 'u8' } });
  const lying = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0x00]);
  expect(() => decode3fs(sc, lying)).toThrow(expect.objectContaining({ code: 40 }));
});
