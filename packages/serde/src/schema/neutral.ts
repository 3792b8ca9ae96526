import { InvalidArgError } from '../errors.js';
import { makeField, s, structFromLevels } from './dsl.js';
import { fromJson } from './json.js';
import type { AnySchema, FieldSpec, FixedSchema, Schema, StructSchema } from './types.js';

export interface FromNeutralOptions {
  /**
   * What the neutral `"string"` becomes. 3FS strings are bytes that need not be UTF-8: `'string'` (default) gives
   * JS strings and refuses non-UTF-8 bytes on decode; `'bytes'` gives Uint8Array and carries any bytes.
   */
  strings?: 'string' | 'bytes';
}

type Neutral = string | { kind: string; [k: string]: unknown };

const PRIMS: Record<string, Schema> = {
  bool: s.bool,
  u8: s.u8,
  u16: s.u16,
  u32: s.u32,
  u64: s.u64,
  i8: s.i8,
  i16: s.i16,
  i32: s.i32,
  i64: s.i64,
  f32: s.f32,
  f64: s.f64,
  void: s.void,
  status: s.status,
};

const FIXED: Record<string, FixedSchema> = { Uuid: s.uuid, Address: s.address, Duration: s.duration };

function neutralKey(t: unknown): string {
  return typeof t === 'string' ? t : JSON.stringify(t);
}

/**
 * Builds a schema from the conformance kit's neutral type format (services.json / vectors.json). `types` is
 * services.json's `types` map, which `{kind:'ref'}` names point into; refs resolve lazily, so recursive types work
 * and each named struct is built once per call.
 */
export function fromNeutral(type: unknown, types: Record<string, unknown> = {}, options: FromNeutralOptions = {}): Schema {
  const strings = options.strings ?? 'string';
  const refs = new Map<string, Schema>();
  const built = new Map<string, Schema>();

  function ref(name: string): Schema {
    let out = refs.get(name);
    if (out === undefined) {
      const def = types[name];
      if (def === undefined) throw new InvalidArgError(`fromNeutral: ref ${name} is not in types`);
      let resolved: Schema | undefined;
      out = s.lazy(() => {
        resolved ??= build(def, `types[${name}]`);
        return resolved;
      });
      refs.set(name, out);
    }
    return out;
  }

  function build(t: unknown, where: string): Schema {
    if (typeof t === 'string') {
      if (t === 'string') return strings === 'bytes' ? s.bytes : s.string;
      const p = PRIMS[t];
      if (!p) throw new InvalidArgError(`fromNeutral: ${where}: unknown primitive ${JSON.stringify(t)}`);
      return p;
    }
    if (typeof t !== 'object' || t === null || typeof (t as { kind?: unknown }).kind !== 'string') {
      throw new InvalidArgError(`fromNeutral: ${where}: not a type`);
    }
    const n = t as Exclude<Neutral, string>;
    switch (n.kind) {
      case 'ref':
        return ref(String(n.name));
      case 'vector':
        return s.vector(build(n.of, `${where}.of`));
      case 'set':
        return s.set(build(n.of, `${where}.of`));
      case 'map':
        return s.map(build(n.key, `${where}.key`), build(n.value, `${where}.value`));
      case 'pair':
        return s.pair(build(n.first, `${where}.first`), build(n.second, `${where}.second`));
      case 'optional':
        return s.optional(build(n.of, `${where}.of`));
      case 'result':
        return s.result(build(n.of, `${where}.of`));
      case 'payload':
        return s.payload(build(n.of, `${where}.of`));
      case 'variant': {
        const alts = n.alternatives as { tag: string; type: unknown }[];
        return s.variant(alts.map((a, i) => ({ tag: a.tag, type: build(a.type, `${where}.alternatives[${i}]`) })));
      }
      case 'enum': {
        const repr = build(n.repr, `${where}.repr`) as AnySchema;
        const big = repr.kind === 'u64' || repr.kind === 'i64';
        const values: Record<string, number | bigint> = {};
        for (const [k, v] of Object.entries(n.values as Record<string, number | string>)) values[k] = big ? BigInt(v) : Number(v);
        return s.enum(String(n.name), repr as Schema<number>, values);
      }
      case 'alias':
        return s.alias(String(n.name), build(n.of, `${where}.of`));
      case 'convert': {
        if (n.name === 'UtcTime') return s.utcTime;
        return s.alias(String(n.name), build(n.as, `${where}.as`));
      }
      case 'fixed': {
        const known = FIXED[String(n.name)];
        if (known && known.size === n.size) return known;
        return s.fixed(String(n.name), Number(n.size));
      }
      case 'custom':
        if (n.name === 'RDMARemoteBuf') return s.rdmaRemoteBuf;
        throw new InvalidArgError(`fromNeutral: ${where}: unknown custom type ${String(n.name)}`);
      case 'struct': {
        const key = neutralKey(t);
        const done = built.get(key);
        if (done) return done;
        const classes = (n.levelClasses as string[]) ?? [];
        const levels = (n.levels as { name: string; id: number; type: unknown; default?: unknown }[][]).map((fields, li) => ({
          className: classes[li] ?? String(n.name),
          fields: fields.map((f): FieldSpec => {
            const ft = build(f.type, `${where}.${f.name}`);
            if (!('default' in f)) return makeField(f.name, ft, f.id, undefined);
            // The kit records defaults in its JSON value form; a lazy ref is resolved only when the default is used.
            let cached: { value: unknown } | undefined;
            const materialize = () => {
              cached ??= { value: fromJson(ft, f.default, `${String(n.name)}.${f.name} default`) };
              return cached.value;
            };
            const d = f.default;
            if (d === null || typeof d === 'boolean' || (typeof d === 'number' && !isBig(ft))) {
              return makeField(f.name, ft, f.id, { value: materialize() });
            }
            return Object.freeze({ name: f.name, type: ft, id: f.id, defaultValue: undefined, defaultFactory: () => cloneValue(materialize()) });
          }),
        }));
        const out: StructSchema = structFromLevels(String(n.name), String(n.tag ?? n.name), levels);
        built.set(key, out);
        return out;
      }
      default:
        throw new InvalidArgError(`fromNeutral: ${where}: unknown kind ${JSON.stringify(n.kind)}`);
    }
  }

  return build(type, 'type');
}

function isBig(sc: Schema): boolean {
  let x = sc as AnySchema;
  while (x.kind === 'alias') x = x.of as AnySchema;
  return x.kind === 'u64' || x.kind === 'i64' || x.kind === 'enum';
}

/** Deep copy of a decoded value (plain objects, arrays, Maps, Uint8Arrays, primitives). */
function cloneValue(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof Uint8Array) return v.slice();
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [cloneValue(k), cloneValue(x)]));
  if (Array.isArray(v)) return v.map(cloneValue);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = cloneValue(x);
  return out;
}
