// The compiled codecs (encode3fs/decode3fs) against the generic schema walk they replaced (encode3fsGeneric/
// decode3fsGeneric): the same bytes, the same values and the same errors, on random values of every kit type, on
// random and corrupted bytes, and on values that do not fit.
import { describe, expect, it } from 'vitest';
import { decode3fs, encode3fs, FfnetError, fromNeutral, InvalidArgError, type Schema, s, validate } from '../src/index.js';
import { decode3fsGeneric, decodeRange, encode3fsGeneric } from '../src/schema/codec.js';
import { hexBytes, loadServices, loadVectors } from './fixtures/kit.js';
import { randomBytes, randomValue, rng } from './random.js';

const kit = loadServices();
const names = Object.keys(kit.types);

/** What a call gave: its value, or its error's class, code and message. */
function outcome(f: () => unknown): unknown {
  try {
    return { value: f() };
  } catch (e) {
    return { error: e instanceof FfnetError ? [e.constructor.name, e.code, e.message] : String(e) };
  }
}

describe('compiled vs generic', () => {
  it('random values of every services.json type: same bytes, same decoded values', () => {
    const rand = rng(1415);
    let bytes = 0;
    for (const name of names) {
      const sc = fromNeutral({ kind: 'ref', name }, kit.types);
      for (let i = 0; i < 8; i++) {
        const v = randomValue(sc, rand);
        const generic = encode3fsGeneric(sc, v as never);
        const compiled = encode3fs(sc, v as never);
        expect(Buffer.from(compiled).toString('hex'), name).toBe(Buffer.from(generic).toString('hex'));
        expect(decode3fs(sc, compiled), name).toEqual(decode3fsGeneric(sc, generic));
        bytes += compiled.length;
      }
    }
    // The values were not all defaults: real payloads went through.
    expect(bytes).toBeGreaterThan(names.length * 8 * 16);
  });

  it('random bytes and truncated vectors: the same value or the same error', () => {
    const rand = rng(1416);
    let errors = 0;
    let values = 0;
    for (const name of names) {
      const sc = fromNeutral({ kind: 'ref', name }, kit.types);
      const good = encode3fs(sc, randomValue(sc, rand) as never);
      const inputs = [randomBytes(rand, Math.floor(rand() * 48)), good.subarray(0, Math.floor(rand() * good.length)), good];
      for (const b of inputs) {
        const g = outcome(() => decode3fsGeneric(sc, b));
        expect(
          outcome(() => decode3fs(sc, b)),
          name,
        ).toEqual(g);
        if ('error' in (g as object)) errors++;
        else values++;
      }
    }
    expect(errors).toBeGreaterThan(names.length / 2);
    expect(values).toBeGreaterThanOrEqual(names.length);
    for (const v of loadVectors()) {
      const sc = fromNeutral(v.type as never);
      const b = hexBytes(v.hex);
      for (const cut of [b.length, b.length - 1, b.length >> 1]) {
        const part = b.subarray(0, Math.max(cut, 0));
        expect(
          outcome(() => decode3fs(sc, part)),
          v.name,
        ).toEqual(outcome(() => decode3fsGeneric(sc, part)));
      }
    }
  });

  it('a value that does not fit: the same InvalidArg naming the field', () => {
    const rand = rng(1417);
    let refused = 0;
    for (const name of names) {
      const sc = fromNeutral({ kind: 'ref', name }, kit.types);
      const v = randomValue(sc, rand) as Record<string, unknown>;
      const field = Object.keys(v)[Math.floor(rand() * Object.keys(v).length)];
      if (field === undefined) continue;
      const bad = { ...v, [field]: Symbol('not a value') };
      const g = outcome(() => encode3fsGeneric(sc, bad as never));
      const c = outcome(() => encode3fs(sc, bad as never));
      expect(c, name).toEqual(g);
      expect((c as { error: unknown[] }).error[0]).toBe(InvalidArgError.name);
      expect(String((c as { error: unknown[] }).error[2])).toContain(field);
      refused++;
    }
    expect(refused).toBeGreaterThan(names.length / 2);
  });

  it('recursive schemas (through s.lazy) compile and round-trip', () => {
    interface Tree {
      label: string;
      kids: Tree[];
    }
    const Tree: Schema<Tree> = s.struct('t::Tree', { label: s.string, kids: s.vector(s.lazy((): Schema<Tree> => Tree)) });
    const v: Tree = {
      label: 'a',
      kids: [
        { label: 'b', kids: [] },
        { label: 'c', kids: [{ label: 'd', kids: [] }] },
      ],
    };
    const b = encode3fs(Tree, v);
    expect(Buffer.from(b)).toEqual(Buffer.from(encode3fsGeneric(Tree, v)));
    expect(decode3fs(Tree, b)).toEqual(v);
  });

  it('decodeRange decodes a value inside a larger buffer, with the input checked against the range end', () => {
    const Msg = s.struct('t::Msg', { a: s.u32, b: s.string });
    const inner = encode3fs(Msg, { a: 7, b: 'hi' });
    const outer = new Uint8Array(inner.length + 6).fill(0xee);
    outer.set(inner, 3);
    expect(decodeRange(Msg, outer, 3, 3 + inner.length)).toEqual({ a: 7, b: 'hi' });
    // The range ends inside the value: short input, even though the buffer goes on.
    expect(() => decodeRange(Msg, outer, 3, 3 + inner.length - 1)).toThrow(expect.objectContaining({ code: 40 }));
    expect(validate(Msg, decodeRange(Msg, outer, 3, 3 + inner.length))).toBeUndefined();
  });
});
