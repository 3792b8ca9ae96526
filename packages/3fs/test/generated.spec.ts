import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode3fs, encode3fs, fromJson, fromNeutral, type Schema, s, toJson } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { loadServices, type NeutralType } from '../../serde/test/fixtures/kit.js';
import { generate } from '../scripts/generate.mjs';
import * as all from '../src/index.js';
import {
  BatchReadReq,
  Core,
  DropUserCacheRsp,
  Echo,
  IBConnect,
  Meta,
  Mgmtd,
  RDMAControl,
  RenameRsp,
  SerdeConformance,
  Storage,
  services,
} from '../src/index.js';

const kit = loadServices();
const generatedDir = new URL('../src/generated/', import.meta.url);

/** Exported name of each kit service (3FS's C++ names carry a `Serde` suffix). */
const EXPORTED: Record<string, string> = { Service: 'Echo', MetaSerde: 'Meta', StorageSerde: 'Storage' };

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/**
 * The kit's default value of a neutral type, in its JSON conventions: structs from their fields' `default`s, and a
 * default-constructed value where the kit records none (the hf3fs::meta structs).
 */
function kitDefault(t: NeutralType): unknown {
  if (typeof t === 'string') {
    if (t === 'bool') return false;
    if (t === 'string') return '';
    if (t === 'void') return null;
    if (t === 'status') return { code: 0, message: '' };
    if (t === 'u64' || t === 'i64') return '0';
    return 0;
  }
  if (t.kind === 'ref') {
    const st = kit.types[t.name];
    if (!st) throw new Error(`no type ${t.name}`);
    const out: Record<string, unknown> = {};
    for (const level of st.levels) for (const f of level) out[f.name] = 'default' in f ? f.default : kitDefault(f.type);
    return out;
  }
  switch (t.kind) {
    case 'vector':
    case 'set':
    case 'map':
      return [];
    case 'optional':
      return null;
    case 'alias':
      return kitDefault(t.of);
    case 'convert':
      return kitDefault(t.as);
    case 'enum':
      return t.repr === 'u64' || t.repr === 'i64' ? '0' : 0;
    case 'fixed':
      return { $hex: '00'.repeat(t.size) };
    case 'custom':
      return { addr: '0', size: '0', rkeys: [] };
    case 'variant':
      return { tag: t.alternatives[0]!.tag, value: kitDefault(t.alternatives[0]!.type) };
    case 'result':
      return { ok: kitDefault(t.of) };
    case 'pair':
      return [kitDefault(t.first), kitDefault(t.second)];
    default:
      throw new Error(`kitDefault: kind ${t.kind}`);
  }
}

/**
 * A deterministic, non-trivial value of a neutral type in the kit's JSON conventions: every integer, string and
 * container gets content derived from `seed`, so a field in the wrong place, of the wrong width or the wrong kind
 * changes the bytes.
 */
function sample(t: NeutralType, seed: number, depth = 0): unknown {
  const n = (seed * 2654435761) >>> 0;
  if (typeof t === 'string') {
    switch (t) {
      case 'bool':
        return n % 2 === 1;
      case 'u8':
        return n % 256;
      case 'i8':
        return (n % 256) - 128;
      case 'u16':
        return n % 65536;
      case 'i16':
        return (n % 65536) - 32768;
      case 'u32':
        return n;
      case 'i32':
        return n | 0;
      case 'u64':
        return (BigInt(n) * 4294967311n).toString();
      case 'i64':
        return (-BigInt(n) * 65537n).toString();
      case 'f32':
        return Math.fround(n / 7);
      case 'f64':
        return n / 3;
      case 'string':
        return `s${n.toString(36)}`;
      case 'void':
        return null;
      case 'status':
        return { code: n % 65536, message: n % 2 ? `m${seed}` : '' };
      default:
        throw new Error(`sample: primitive ${t}`);
    }
  }
  const kids = depth > 6 ? 0 : 1 + (n % 2);
  switch (t.kind) {
    case 'ref': {
      const st = kit.types[t.name]!;
      const out: Record<string, unknown> = {};
      let i = 0;
      for (const level of st.levels) for (const f of level) out[f.name] = sample(f.type, seed * 31 + ++i, depth + 1);
      return out;
    }
    case 'vector':
    case 'set': {
      const items = Array.from({ length: kids }, (_, i) => sample(t.of, seed + 101 * (i + 1), depth + 1));
      // A set is sorted and unique in 3FS; one element keeps it so whatever the element type.
      return t.kind === 'set' ? items.slice(0, 1) : items;
    }
    case 'map':
      return Array.from({ length: Math.min(kids, 1) }, (_, i) => [sample(t.key, seed + i, depth + 1), sample(t.value, seed + 7 + i, depth + 1)]);
    case 'pair':
      return [sample(t.first, seed + 1, depth + 1), sample(t.second, seed + 2, depth + 1)];
    case 'optional':
      return depth > 6 || n % 3 === 0 ? null : sample(t.of, seed + 3, depth + 1);
    case 'variant': {
      // Only alternatives whose tag is unique: a duplicated tag decodes as its first alternative, by design.
      const unique = t.alternatives.filter((a) => t.alternatives.filter((b) => b.tag === a.tag).length === 1);
      const alt = unique[n % unique.length]!;
      return { tag: alt.tag, value: sample(alt.type, seed + 5, depth + 1) };
    }
    case 'result':
      return n % 2 ? { ok: sample(t.of, seed + 9, depth + 1) } : { error: { code: 1 + (n % 60000), message: `e${seed}` } };
    case 'enum': {
      const values = Object.values(t.values);
      return values[n % values.length];
    }
    case 'alias':
      return sample(t.of, seed, depth);
    case 'convert':
      if (t.name === 'ChunkId' || t.name === 'ibv_gid') return { $hex: hex(Uint8Array.from({ length: 16 }, (_, i) => (n + i * 13) & 0xff)) };
      return sample(t.as, seed, depth);
    case 'fixed':
      return { $hex: hex(Uint8Array.from({ length: t.size }, (_, i) => (n >>> (i % 4)) & 0xff)) };
    case 'custom':
      return { addr: String(n), size: String(n % 4096), rkeys: [{ rkey: n, devId: n % 7 }] };
    default:
      throw new Error(`sample: kind ${t.kind}`);
  }
}

/** Binary fields the generator types as `s.bytes`: their JSON sample must be `{$hex}` to fit both schemas. */
const BINARY_FIELDS = new Set(['kit::conf::Everything.bin', 'kit::conf::BytesReq.data', 'kit::conf::BytesRsp.data', 'kit::conf::FillRsp.data']);

function sampleStruct(name: string, seed: number): Record<string, unknown> {
  const v = sample({ kind: 'ref', name }, seed) as Record<string, unknown>;
  for (const key of BINARY_FIELDS) {
    const [type, field] = key.split('.') as [string, string];
    if (type === name) v[field] = { $hex: hex(Uint8Array.from({ length: 5 }, (_, i) => (seed + i * 77) & 0xff)) };
  }
  return v;
}

const methods = services.flatMap((svc) =>
  Object.values(svc.methods).map((m) => {
    const kitSvc = kit.services.find((k) => (EXPORTED[k.name] ?? k.name) === svc.name)!;
    const kitMethod = kitSvc.methods.find((k) => k.name === m.name)!;
    return { label: `${svc.name}.${m.name}`, m, kitMethod };
  }),
);

describe('@ffnet/3fs generated definitions', () => {
  it('regenerating from the kit yields exactly the committed files', () => {
    const out = generate(kit);
    expect(Object.keys(out).sort()).toEqual(['schemas.ts', 'services.ts']);
    for (const [file, text] of Object.entries(out)) {
      const committed = readFileSync(fileURLToPath(new URL(file, generatedDir)), 'utf8');
      // toBe, not a length check: any drift (a kit update, a generator change not rerun) fails with the diff.
      expect(committed, `src/generated/${file} is stale: run pnpm --filter @ffnet/3fs generate`).toBe(text);
    }
  });

  it('the header names the 3FS commit the kit was dumped from', () => {
    const commit = /@([0-9a-f]{40})$/.exec(kit.source)![1]!;
    for (const file of ['schemas.ts', 'services.ts']) {
      const head = readFileSync(fileURLToPath(new URL(file, generatedDir)), 'utf8')
        .split('\n', 3)
        .join('\n');
      expect(head).toContain(`github.com/deepseek-ai/3FS@${commit}`);
    }
  });

  it('has every kit service with 3FS ids, and every method with its id and schemas', () => {
    expect(services.map((s) => [s.name, s.id])).toEqual(kit.services.map((k) => [EXPORTED[k.name] ?? k.name, k.id]));
    expect([Echo.id, Core.id, Mgmtd.id, Meta.id, Storage.id, IBConnect.id, RDMAControl.id, SerdeConformance.id]).toEqual([
      10000, 10001, 217, 4, 3, 11, 10, 12345,
    ]);
    for (const k of kit.services) {
      const svc = services.find((s) => s.name === (EXPORTED[k.name] ?? k.name))!;
      expect(Object.keys(svc.methods)).toEqual(k.methods.map((m) => m.name));
      for (const km of k.methods) {
        const m = svc.methodById(km.id)!;
        expect(m.name).toBe(km.name);
        const req = m.request as { kind: string; name: string };
        const rsp = m.response as { kind: string; name: string };
        expect([req.kind, req.name]).toEqual(['struct', (km.request as { name: string }).name]);
        expect([rsp.kind, rsp.name]).toEqual(['struct', (km.response as { name: string }).name]);
      }
    }
    expect(methods).toHaveLength(kit.services.reduce((n, k) => n + k.methods.length, 0));
    expect(Storage.methods.batchRead.request).toBe(BatchReadReq);
  });

  it.each(methods)('$label: the default request and response round-trip through encode3fs/decode3fs', ({ m, kitMethod }) => {
    for (const [schema, type] of [
      [m.request, kitMethod.request],
      [m.response, kitMethod.response],
    ] as [Schema, NeutralType][]) {
      const value = fromJson(schema, kitDefault(type));
      const bytes = encode3fs(schema, value);
      expect(bytes.length).toBeGreaterThan(0);
      const back = decode3fs(schema, bytes);
      expect(back).toEqual(value);
      expect(hex(encode3fs(schema, back))).toBe(hex(bytes));
    }
  });

  it.each(methods)('$label: encodes like the kit schema itself (fromNeutral) on defaults and on a sample', ({ m, kitMethod }) => {
    for (const [schema, type] of [
      [m.request, kitMethod.request],
      [m.response, kitMethod.response],
    ] as [Schema, NeutralType][]) {
      const reference = fromNeutral(type, kit.types, { strings: 'bytes' });
      const name = (type as { name: string }).name;
      for (const json of [kitDefault(type), sampleStruct(name, 1), sampleStruct(name, 2)]) {
        const want = encode3fs(reference, fromJson(reference, json));
        const got = encode3fs(schema, fromJson(schema, json));
        expect(hex(got)).toBe(hex(want));
        // And the readable form reads back to the same bytes (bytes, not values: an f32's shortest decimal is
        // another JS number than the float32 it names until it is rounded to float32 again on encode).
        const value = decode3fs(schema, got);
        expect(hex(encode3fs(schema, fromJson(schema, toJson(schema, value))))).toBe(hex(got));
      }
    }
  });

  it('a derived level that redeclares a base field (meta RspBase.dummy) keeps a table per level', () => {
    // C++ lets DropUserCacheRsp declare `dummy` again over RspBase's: two levels, each a table of one Void field.
    expect(DropUserCacheRsp.levels.map((l) => l.fields.map((f) => f.name))).toEqual([['dummy'], ['dummy']]);
    expect(hex(encode3fs(DropUserCacheRsp, { dummy: null }))).toBe('0000');
    const stat = { dummy: null, stat: null };
    expect(RenameRsp.levels.map((l) => l.fields.map((f) => f.name))).toEqual([['dummy'], ['dummy', 'stat']]);
    expect(hex(encode3fs(RenameRsp, stat))).toBe('00' + '0100');
    expect(decode3fs(RenameRsp, encode3fs(RenameRsp, stat))).toEqual(stat);
    // The DSL wants the redeclaration said; unsaid, a repeated name is refused as a likely mistake.
    expect(() => s.struct('t::Again', { dummy: s.void }, { base: all.RspBase })).toThrow(/declared twice/);
    expect(s.struct('t::Again', { dummy: s.void }, { base: all.RspBase, redeclares: ['dummy'] }).levels).toHaveLength(2);
  });

  it('every one of the 214 structs is exported, and decodes empty tables to the kit defaults', () => {
    const byName = new Map<string, Schema>();
    for (const v of Object.values(all)) {
      if (typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'struct') byName.set((v as { name: string }).name, v as Schema);
    }
    const names = Object.keys(kit.types);
    expect(names).toHaveLength(214);
    // Uuids default to zero here, where 3FS's ClientId draws a random one (the kit recorded one draw).
    const uuidsZeroed = (v: unknown) =>
      JSON.stringify(v, (k, x) => (k === 'uuid' && typeof x === 'object' && x !== null && '$hex' in x ? { $hex: '00'.repeat(16) } : x));
    for (const name of names) {
      const gen = byName.get(name);
      expect(gen, name).toBeDefined();
      const reference = fromNeutral({ kind: 'ref', name }, kit.types, { strings: 'bytes' });
      // A table per inheritance level, each empty: every field is missing and keeps its default (3FS Serde.h:499-507).
      const empty = new Uint8Array(kit.types[name]!.levels.length);
      const got = toJson(gen!, decode3fs(gen!, empty));
      const want = toJson(reference, decode3fs(reference, empty));
      expect(uuidsZeroed(got), name).toBe(uuidsZeroed(want));
    }
  });
});
