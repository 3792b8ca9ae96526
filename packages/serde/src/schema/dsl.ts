import { InvalidArgError } from '../errors.js';
import type {
  AliasSchema,
  Alternative,
  AnySchema,
  EnumSchema,
  FieldSpec,
  Fields,
  FieldValues,
  FixedSchema,
  Infer,
  LazySchema,
  MapSchema,
  OptionalSchema,
  PairSchema,
  PayloadSchema,
  PrimitiveSchema,
  RdmaRemoteBufSchema,
  RdmaRemoteBufValue,
  ResultSchema,
  Schema,
  Simplify,
  StatusValue,
  StructLevel,
  StructOptions,
  StructSchema,
  VariantSchema,
  VectorSchema,
} from './types.js';

function prim<V>(kind: PrimitiveSchema<V>['kind']): PrimitiveSchema<V> {
  return Object.freeze({ kind }) as PrimitiveSchema<V>;
}

const INT_REPRS = new Set(['u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64']);

/** True when an optional holds another optional: its value is boxed as `{ some }`. */
export function boxesOptional(of: Schema): boolean {
  const k = of.kind;
  return (k === 'optional' || k === 'alias' || k === 'lazy') && unwrap(of).kind === 'optional';
}

/** Follows lazy and alias nodes to the schema that decides the wire shape. */
export function unwrap(schema: Schema): AnySchema {
  let sc = schema as AnySchema;
  for (;;) {
    if (sc.kind === 'lazy') sc = resolveLazy(sc) as AnySchema;
    else if (sc.kind === 'alias') sc = sc.of as AnySchema;
    else return sc;
  }
}

const lazyCache = new WeakMap<LazySchema, Schema>();

export function resolveLazy(sc: LazySchema): Schema {
  let out = lazyCache.get(sc);
  if (out === undefined) {
    out = sc.resolve();
    if (out === undefined || out === null || typeof (out as { kind?: unknown }).kind !== 'string') {
      throw new InvalidArgError('s.lazy: the thunk did not return a schema');
    }
    lazyCache.set(sc, out);
  }
  return out;
}

/**
 * A fresh default value of a schema: what a default-constructed C++ object holds (0, "", empty containers, null
 * optionals, a struct of its fields' defaults). Mutable values are new on every call.
 */
export function defaultOf<S extends Schema>(schema: S): Infer<S> {
  return zero(schema as unknown as AnySchema, 0) as Infer<S>;
}

function zero(sc: AnySchema, depth: number): unknown {
  if (depth > 64) throw new InvalidArgError('defaultOf: the schema nests more than 64 levels without an optional (a recursive type?)');
  switch (sc.kind) {
    case 'bool':
      return false;
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
    case 'f32':
    case 'f64':
      return 0;
    case 'u64':
    case 'i64':
      return 0n;
    case 'string':
      return '';
    case 'bytes':
      return new Uint8Array(0);
    case 'void':
      return null;
    case 'status':
      return { code: 0, message: '' } satisfies StatusValue;
    case 'vector':
    case 'set':
      return [];
    case 'map':
      return new Map();
    case 'pair':
      return [zero(sc.first as AnySchema, depth + 1), zero(sc.second as AnySchema, depth + 1)];
    case 'optional':
      return null;
    case 'result':
      return { ok: zero(sc.of as AnySchema, depth + 1) };
    case 'payload':
      return zero(sc.of as AnySchema, depth + 1);
    case 'variant': {
      const first = sc.alternatives[0];
      if (!first) throw new InvalidArgError('a variant needs at least one alternative');
      return { tag: first.tag, value: zero(first.type as AnySchema, depth + 1) };
    }
    case 'enum':
      return sc.repr.kind === 'u64' || sc.repr.kind === 'i64' ? 0n : 0;
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const f of sc.fields) out[f.name] = fieldDefault(f);
      return out;
    }
    case 'lazy':
      return zero(resolveLazy(sc) as AnySchema, depth + 1);
    case 'alias':
      return zero(sc.of as AnySchema, depth + 1);
    case 'fixed':
      return new Uint8Array(sc.size);
    case 'rdmaRemoteBuf':
      return { addr: 0n, size: 0n, rkeys: [] } satisfies RdmaRemoteBufValue;
  }
}

/** The value a decoder keeps for a field missing from its table. */
export function fieldDefault(f: FieldSpec): unknown {
  return f.defaultFactory === undefined ? f.defaultValue : f.defaultFactory();
}

function isImmutable(v: unknown): boolean {
  return v === null || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean';
}

function shortName(name: string): string {
  const lt = name.indexOf('<');
  const head = lt < 0 ? name : name.slice(0, lt);
  const i = head.lastIndexOf('::');
  return i < 0 ? head : head.slice(i + 2);
}

/** Builds a field spec; `clone` copies a non-primitive default for each decode. */
export function makeField(name: string, type: Schema, id: number, dflt: { value: unknown } | undefined, clone?: (v: unknown) => unknown): FieldSpec {
  if (dflt === undefined) {
    const sc = type as AnySchema;
    const z = zeroIfCheap(sc);
    if (z.cheap) return Object.freeze({ name, type, id, defaultValue: z.value, defaultFactory: undefined });
    return Object.freeze({ name, type, id, defaultValue: undefined, defaultFactory: () => zero(sc, 0) });
  }
  const v = dflt.value;
  if (isImmutable(v)) return Object.freeze({ name, type, id, defaultValue: v, defaultFactory: undefined });
  const copy = clone ?? structuredClone;
  return Object.freeze({ name, type, id, defaultValue: v, defaultFactory: () => copy(v) });
}

function zeroIfCheap(sc: AnySchema): { cheap: boolean; value: unknown } {
  // Resolving a lazy node here would evaluate a thunk before the type it names exists; defer those.
  if (sc.kind === 'lazy' || sc.kind === 'struct' || sc.kind === 'variant' || sc.kind === 'pair' || sc.kind === 'result')
    return { cheap: false, value: undefined };
  if (sc.kind === 'alias' || sc.kind === 'payload') return zeroIfCheap(sc.of as AnySchema);
  const v = zero(sc, 0);
  return { cheap: isImmutable(v), value: v };
}

function struct<F extends Fields, B extends StructSchema | undefined = undefined>(
  name: string,
  fields: F,
  options: StructOptions<B> = {},
): StructSchema<B extends StructSchema<infer BV> ? Simplify<FieldValues<F> & BV> : FieldValues<F>> {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgError('s.struct: a struct needs a name');
  if (typeof fields !== 'object' || fields === null) throw new InvalidArgError(`s.struct ${name}: fields must be an object`);
  const base = options.base;
  const inherited = base ? base.fields : [];
  const levels: StructLevel[] = base ? [...base.levels] : [];
  const defaults = options.defaults ?? {};
  const own: FieldSpec[] = [];
  const seen = new Set(inherited.map((f) => f.name));
  let id = inherited.length;
  for (const key of Object.keys(fields)) {
    const type = fields[key];
    if (!type || typeof (type as { kind?: unknown }).kind !== 'string') throw new InvalidArgError(`s.struct ${name}: field ${key} is not a schema`);
    // A derived class may redeclare a base field's name, as C++ allows (3FS's meta RspBase/`dummy`), when it says so:
    // both stay on the wire, each in its level's table, and the value has one property for both, like the kit's
    // flattened JSON. Unsaid, a repeated name is more likely a mistake.
    if (seen.has(key) && !options.redeclares?.includes(key)) {
      throw new InvalidArgError(`s.struct ${name}: field ${key} is declared twice (in a base and here?); list it in redeclares if meant`);
    }
    seen.add(key);
    own.push(makeField(key, type, id++, Object.hasOwn(defaults, key) ? { value: defaults[key] } : undefined));
  }
  for (const key of Object.keys(defaults)) {
    if (!seen.has(key)) throw new InvalidArgError(`s.struct ${name}: default for unknown field ${key}`);
  }
  // 3FS starts a table per declaring class; a class that declares nothing contributes no table (README rule 5).
  if (own.length > 0) levels.push(Object.freeze({ className: options.className ?? shortName(name), fields: Object.freeze(own) }));
  if (levels.length === 0) throw new InvalidArgError(`s.struct ${name}: a 3FS serde struct needs at least one field`);
  return Object.freeze({
    kind: 'struct',
    name,
    tag: options.tag ?? shortName(name),
    levels: Object.freeze(levels),
    fields: Object.freeze([...inherited, ...own]),
  }) as StructSchema<never>;
}

/** Builds a struct from its levels as given (fromNeutral); fields already carry ids and defaults. */
export function structFromLevels(name: string, tag: string, levels: StructLevel[]): StructSchema {
  const kept = levels.filter((l) => l.fields.length > 0);
  if (kept.length === 0) throw new InvalidArgError(`struct ${name}: a 3FS serde struct needs at least one field`);
  return Object.freeze({
    kind: 'struct',
    name,
    tag,
    levels: Object.freeze(kept.map((l) => Object.freeze({ className: l.className, fields: Object.freeze([...l.fields]) }))),
    fields: Object.freeze(kept.flatMap((l) => l.fields)),
  });
}

function intRepr(repr: Schema): PrimitiveSchema<number> | PrimitiveSchema<bigint> {
  if (!INT_REPRS.has(repr?.kind)) throw new InvalidArgError(`s.enum: the underlying type must be an integer schema, not ${String(repr?.kind)}`);
  return repr as PrimitiveSchema<number>;
}

function fixed(name: string, size: number): FixedSchema {
  if (!Number.isInteger(size) || size <= 0 || size > 1 << 20) throw new InvalidArgError(`s.fixed ${name}: size ${size} is not an integer in 1..1048576`);
  return Object.freeze({ kind: 'fixed', name, size });
}

/** The schema DSL: the TypeScript counterpart of 3FS's `SERDE_STRUCT_FIELD` types. */
export const s = Object.freeze({
  bool: prim<boolean>('bool'),
  u8: prim<number>('u8'),
  u16: prim<number>('u16'),
  u32: prim<number>('u32'),
  u64: prim<bigint>('u64'),
  i8: prim<number>('i8'),
  i16: prim<number>('i16'),
  i32: prim<number>('i32'),
  i64: prim<bigint>('i64'),
  f32: prim<number>('f32'),
  f64: prim<number>('f64'),
  /** A JS string, UTF-8 on the wire; bytes that are not UTF-8 fail to decode (use `s.bytes` for those). */
  string: prim<string>('string'),
  /** Raw bytes, the same wire as `string`. */
  bytes: prim<Uint8Array>('bytes'),
  void: prim<null>('void'),
  status: prim<StatusValue>('status'),
  vector<E extends Schema>(of: E): VectorSchema<E> {
    return Object.freeze({ kind: 'vector', of });
  },
  /** A set, as an array in wire order (3FS writes std::set sorted). */
  set<E extends Schema>(of: E): VectorSchema<E> {
    return Object.freeze({ kind: 'set', of });
  },
  map<K extends Schema, V extends Schema>(key: K, value: V): MapSchema<K, V> {
    return Object.freeze({ kind: 'map', key, value });
  },
  pair<A extends Schema, B extends Schema>(first: A, second: B): PairSchema<A, B> {
    return Object.freeze({ kind: 'pair', first, second });
  },
  optional<T extends Schema>(of: T): OptionalSchema<T> {
    return Object.freeze({ kind: 'optional', of });
  },
  result<T extends Schema>(of: T): ResultSchema<T> {
    return Object.freeze({ kind: 'result', of });
  },
  /** The MessagePacket payload: `varint(len) ‖ T`. */
  payload<T extends Schema>(of: T): PayloadSchema<T> {
    return Object.freeze({ kind: 'payload', of });
  },
  /** Alternatives by 3FS tag; on decode the first alternative with the tag wins (as in 3FS). */
  variant<const A extends readonly Alternative[]>(alternatives: A): VariantSchema<A> {
    if (!Array.isArray(alternatives) || alternatives.length === 0) throw new InvalidArgError('s.variant needs at least one alternative');
    return Object.freeze({ kind: 'variant', alternatives: Object.freeze([...alternatives]) as unknown as A });
  },
  enum<const V extends Record<string, number | bigint>>(name: string, repr: Schema<number> | Schema<bigint>, values: V): EnumSchema<V[keyof V]> {
    return Object.freeze({ kind: 'enum', name, repr: intRepr(repr), values: Object.freeze({ ...values }) }) as EnumSchema<V[keyof V]>;
  },
  struct,
  /** A schema resolved on first use: for recursive types and for refs declared later. */
  lazy<V>(thunk: () => Schema<V>): LazySchema<V> {
    if (typeof thunk !== 'function') throw new InvalidArgError('s.lazy needs a function');
    return Object.freeze({ kind: 'lazy', resolve: thunk });
  },
  /** A STRONG_TYPEDEF: encoded exactly as its underlying type. */
  alias<T extends Schema>(name: string, of: T): AliasSchema<T> {
    return Object.freeze({ kind: 'alias', name, of });
  },
  fixed,
  uuid: fixed('Uuid', 16),
  /** 8 raw bytes: u32 ip (network order), u16 port, u16 type. */
  address: fixed('Address', 8),
  /** 8 raw bytes: i64 nanoseconds. */
  duration: fixed('Duration', 8),
  /** i64 microseconds since the epoch. */
  utcTime: Object.freeze({ kind: 'alias', name: 'UtcTime', of: prim<bigint>('i64') }) as AliasSchema<PrimitiveSchema<bigint>>,
  rdmaRemoteBuf: Object.freeze({ kind: 'rdmaRemoteBuf' }) as RdmaRemoteBufSchema,
});
