// The DSL written by hand (not via fromNeutral): 3FS rules from the kit README checked on our own schemas.
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  decode3fs,
  defaultOf,
  defineService,
  encode3fs,
  type FfnetError,
  fromJson,
  type Infer,
  InvalidArgError,
  InvalidFormatError,
  isValid,
  method,
  type RequestOf,
  SerdeInsufficientLengthError,
  SerdeVariantIndexExceededError,
  s,
  toJson,
  validate,
} from '../src/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

const Base = s.struct('t::Base', { id: s.u32, name: s.string });
const Level1 = s.struct('t::Level1', { flag: s.bool }, { base: Base });
const Empty = s.struct('t::Empty', {}, { base: Level1 });
const Level2 = s.struct('t::Level2', { score: s.i16 }, { base: Empty });

describe('structs and inheritance', () => {
  it('one table per declaring class, none for a class without fields, no outer wrapper', () => {
    expect(Level2.levels.map((l) => l.className)).toEqual(['Base', 'Level1', 'Level2']);
    const v = { id: 1, name: 'a', flag: true, score: -2 };
    expect(hex(encode3fs(Level2, v))).toBe(`0601000000016101010${'2feff'}`);
    expect(decode3fs(Level2, encode3fs(Level2, v))).toEqual(v);
    // A derived class that declares nothing encodes exactly like its base.
    expect(hex(encode3fs(Empty, { id: 1, name: 'a', flag: true }))).toBe(hex(encode3fs(Level1, { id: 1, name: 'a', flag: true })));
  });

  it('missing trailing fields take the declared defaults; extra trailing bytes are skipped, per level', () => {
    const V2 = s.struct('t::V2', { a: s.u32, b: s.string, c: s.u64, d: s.vector(s.u8) }, { defaults: { b: 'dflt', c: 7n } });
    const D2 = s.struct('t::D2', { x: s.u8, y: s.u8 }, { base: V2, defaults: { y: 9 } });
    // Level 0 holds only `a`; level 1 holds only `x`.
    const got = decode3fs(D2, bytes('0405000000' + '0103'));
    expect(got).toEqual({ a: 5, b: 'dflt', c: 7n, d: [], x: 3, y: 9 });
    // Level 0 complete plus 2 bytes a newer writer added; level 1 complete plus 1.
    const newer = decode3fs(D2, bytes('10' + '05000000' + '00' + '0200000000000000' + '00' + 'aabb' + '0303aacc'));
    expect(newer).toEqual({ a: 5, b: '', c: 2n, d: [], x: 3, y: 0xaa });
    // Defaults that are objects are fresh per decode.
    const again = decode3fs(D2, bytes('0405000000' + '0103'));
    expect(again.d).toEqual([]);
    expect(again.d).not.toBe(got.d);
  });

  it('a struct needs at least one field, and field names are unique across levels', () => {
    expect(() => s.struct('t::None', {})).toThrow(InvalidArgError);
    expect(() => s.struct('t::Dup', { id: s.u8 }, { base: Base })).toThrow(/declared twice/);
  });

  it('a table longer than 127 bytes gets a multi-byte length prefix', () => {
    const Big = s.struct('t::Big', { a: s.string, b: s.u8 });
    const v = { a: 'x'.repeat(300), b: 1 };
    const out = encode3fs(Big, v);
    // 300 + 2 (string prefix) + 1 = 303 = 0xaf 0x02
    expect(hex(out.subarray(0, 4))).toBe('af02ac02');
    expect(out.length).toBe(2 + 303);
    expect(decode3fs(Big, out)).toEqual(v);
    const Nested = s.struct('t::Nested', { inner: s.vector(Big), tail: s.u16 });
    const nv = { inner: [v, { a: 'é'.repeat(100), b: 2 }], tail: 513 };
    expect(decode3fs(Nested, encode3fs(Nested, nv))).toEqual(nv);
  });
});

describe('variants, enums, status, result, void', () => {
  const V = s.variant([
    { tag: 'int', type: s.i32 },
    { tag: 'int', type: s.u32 },
    { tag: 'basic_string', type: s.string },
  ]);
  it('a variant is string(tag) ‖ value and the first alternative with a tag wins', () => {
    expect(hex(encode3fs(V, { tag: 'int', value: -1 }))).toBe('03696e74ffffffff');
    expect(decode3fs(V, bytes('03696e74ffffffff'))).toEqual({ tag: 'int', value: -1 });
    expect(decode3fs(V, bytes('0c62617369635f737472696e67026869'))).toEqual({ tag: 'basic_string', value: 'hi' });
  });
  it('an unknown tag is kSerdeVariantIndexExceeded (42)', () => {
    const e = (() => {
      try {
        decode3fs(V, bytes('03666f6f'));
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(SerdeVariantIndexExceededError);
    expect((e as FfnetError).code).toBe(42);
  });
  it('enums are their raw underlying integer', () => {
    const Color = s.enum('t::Color', s.u8, { Red: 0, Blue: 7 });
    expect(hex(encode3fs(Color, 7))).toBe('07');
    const Wide = s.enum('t::Wide', s.u64, { Big: 1n << 40n });
    expect(decode3fs(Wide, encode3fs(Wide, 1n << 40n))).toBe(1n << 40n);
    expect(fromJson(Color, 'Blue')).toBe(7);
  });
  it('Status omits an empty message; Result is u8 ‖ (T | Status); Void is nothing', () => {
    expect(hex(encode3fs(s.status, { code: 3, message: '' }))).toBe('030000');
    expect(hex(encode3fs(s.status, { code: 2005, message: 'timed out' }))).toBe('d507010974696d6564206f7574');
    expect(hex(encode3fs(s.result(s.void), { ok: null }))).toBe('01');
    expect(hex(encode3fs(s.result(s.u32), { error: { code: 1, message: 'no' } }))).toBe('00010001026e6f');
    expect(decode3fs(s.result(s.u32), bytes('012a000000'))).toEqual({ ok: 42 });
    expect(encode3fs(s.void, null).length).toBe(0);
  });
});

describe('custom encodings', () => {
  it('RDMARemoteBuf writes only the leading keys with devId != -1', () => {
    const v = {
      addr: 0xdeadbeefn,
      size: 16n,
      rkeys: [
        { rkey: 1, devId: 0 },
        { rkey: 2, devId: -1 },
        { rkey: 3, devId: 2 },
      ],
    };
    const out = encode3fs(s.rdmaRemoteBuf, v);
    expect(hex(out)).toBe('efbeadde000000001000000000000000' + '01' + '0100000000000000');
    expect(decode3fs(s.rdmaRemoteBuf, out)).toEqual({ addr: 0xdeadbeefn, size: 16n, rkeys: [{ rkey: 1, devId: 0 }] });
  });
  it('UtcTime is i64 µs; Uuid, Address, Duration are raw fixed bytes', () => {
    expect(hex(encode3fs(s.utcTime, 1700000000123456n))).toBe('40222018240a0600');
    const addr = bytes('7f00000128230000');
    expect(decode3fs(s.address, encode3fs(s.address, addr))).toEqual(addr);
    expect(() => encode3fs(s.uuid, new Uint8Array(15))).toThrow(InvalidArgError);
    expect(encode3fs(s.duration, new Uint8Array(8)).length).toBe(8);
  });
  it('an optional inside an optional boxes its value so 01 00 and 00 stay distinct', () => {
    const O = s.optional(s.optional(s.u8));
    expect(hex(encode3fs(O, { some: null }))).toBe('0100');
    expect(hex(encode3fs(O, null))).toBe('00');
    expect(hex(encode3fs(O, { some: 5 }))).toBe('010105');
    expect(decode3fs(O, bytes('0100'))).toEqual({ some: null });
    expect(decode3fs(O, bytes('00'))).toBeNull();
    expect(fromJson(O, { some: null })).toEqual({ some: null });
  });
  it('bytes carry any bytes; string refuses non-UTF-8 instead of mangling it', () => {
    expect(decode3fs(s.bytes, bytes('040001feff'))).toEqual(bytes('0001feff'));
    expect(() => decode3fs(s.string, bytes('040001feff'))).toThrow(InvalidFormatError);
    expect(toJson(s.bytes, bytes('0001feff'))).toEqual({ $hex: '0001feff' });
    expect(toJson(s.bytes, bytes('6869'))).toBe('hi');
  });
  it('recursive types through s.lazy', () => {
    type Tree = { v: number; kids: Tree[] };
    const T: ReturnType<typeof s.struct<{ v: typeof s.u8; kids: ReturnType<typeof s.vector<ReturnType<typeof s.lazy<Tree>>>> }>> = s.struct('t::Tree', {
      v: s.u8,
      kids: s.vector(s.lazy<Tree>(() => T as never)),
    });
    const tree = {
      v: 1,
      kids: [
        { v: 2, kids: [] },
        { v: 3, kids: [{ v: 4, kids: [] }] },
      ],
    };
    expect(decode3fs(T, encode3fs(T, tree))).toEqual(tree);
  });
});

describe('decode errors are typed and bounded', () => {
  it('short input is kSerdeInsufficientLength (40), never a RangeError', () => {
    for (const [sc, h] of [
      [s.u32, '0102'],
      [s.string, '056162'],
      [Base, '090100'],
      [s.u64, ''],
      [s.rdmaRemoteBuf, `${'00'.repeat(16)}05`],
    ] as const) {
      let err: unknown;
      try {
        decode3fs(sc, bytes(h));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SerdeInsufficientLengthError);
      expect((err as FfnetError).code).toBe(40);
    }
  });
  it('a lying count is refused before anything is allocated for it', () => {
    // count = 2^35 u64 items in a 10-byte input
    expect(() => decode3fs(s.vector(s.u64), bytes('8080808080010000'))).toThrow(SerdeInsufficientLengthError);
    // Zero-size items cost no input: a budget per message, so nesting cannot multiply them.
    expect(decode3fs(s.vector(s.void), bytes('03'))).toEqual([null, null, null]);
    expect(() => decode3fs(s.vector(s.void), bytes('ffffffff0f'))).toThrow(InvalidFormatError);
    const nested = s.vector(s.vector(s.void));
    const wire = [0x40];
    for (let i = 0; i < 64; i++) wire.push(0x80, 0x08); // 64 inner vectors of 1024 voids each = 65536: at the budget
    expect((decode3fs(nested, Uint8Array.from(wire)) as unknown[]).length).toBe(64);
    wire[0] = 0x41;
    wire.push(0x01); // one more void over the budget
    expect(() => decode3fs(nested, Uint8Array.from(wire))).toThrow(/zero-size items/);
  });
});

describe('validate', () => {
  const Item = s.struct('t::Item', { len: s.u32, tag: s.optional(s.string) });
  const Req = s.struct('t::Req', { items: s.vector(Item), owner: s.u64, m: s.map(s.string, s.i8) });
  const good: Infer<typeof Req> = { items: [{ len: 1, tag: null }], owner: 1n, m: new Map([['a', 1]]) };
  it('names the field path', () => {
    expect(() => validate(Req, good, 'req')).not.toThrow();
    const bad = { ...good, items: [good.items[0], good.items[0], good.items[0], { len: 'x', tag: null }] };
    expect(() => validate(Req, bad, 'req')).toThrow('req.items[3].len: expected u32, got string');
    expect(() => validate(Req, { ...good, owner: 1 }, 'req')).toThrow('req.owner: expected u64 (bigint), got number 1');
    expect(() => validate(Req, { ...good, m: new Map([['k', 300]]) }, 'req')).toThrow('req.m["k"]: expected i8, got number 300');
    expect(() => validate(Req, { items: [] }, 'req')).toThrow(/req\.owner: .*field missing/);
    expect(isValid(Req, good)).toBe(true);
    expect(isValid(Req, { ...good, owner: -1n })).toBe(false);
  });
  it('encode3fs refuses a value that does not fit with the same path-naming InvalidArgError', () => {
    expect(() => encode3fs(Req, { ...good, items: [{ len: -1, tag: null }] } as never)).toThrow('value.items[0].len: expected u32, got number -1');
  });
  it('never echoes string contents', () => {
    expect(() => validate(s.u8, 'hunter2')).toThrow(/got string$/);
  });
});

describe('method() with schemas', () => {
  const Echo = s.struct('hf3fs::core::EchoMessage', { str: s.string });
  const Svc = defineService({ name: 'Core', id: 10001, methods: { echo: method(1, { request: Echo, response: Echo }), bare: method<string, number>(2) } });
  it('keeps schemas on MethodInfo and infers the types', () => {
    expect(Svc.methods.echo.request).toBe(Echo);
    expect(Svc.methods.echo.response).toBe(Echo);
    expect(Svc.methods.bare.request).toBeUndefined();
    expectTypeOf<RequestOf<typeof Svc, 'echo'>>().toEqualTypeOf<{ str: string }>();
    expectTypeOf<Infer<typeof Level2>>().toEqualTypeOf<{ id: number; name: string; flag: boolean; score: number }>();
    const opt = s.optional(s.u64);
    expectTypeOf<Infer<typeof opt>>().toEqualTypeOf<bigint | null>();
    const v = s.variant([
      { tag: 'int', type: s.i32 },
      { tag: 'Point', type: s.pair(s.u8, s.string) },
    ]);
    expectTypeOf<Infer<typeof v>>().toEqualTypeOf<{ tag: 'int'; value: number } | { tag: 'Point'; value: [number, string] }>();
  });
  it('refuses a non-schema', () => {
    expect(() => method(1, { request: {} as never, response: Echo })).toThrow(InvalidArgError);
  });
  it('defaultOf builds the zero value', () => {
    expect(defaultOf(Level2)).toEqual({ id: 0, name: '', flag: false, score: 0 });
  });
});
