// Schema nodes are plain frozen objects with a `kind`; the value type rides along as a phantom (the symbol key never
// exists at run time), so `Infer<typeof schema>` is free and the codec can switch on `kind` without a class hierarchy.
declare const valueType: unique symbol;

export type IntKind = 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32';
export type BigKind = 'u64' | 'i64';
export type PrimitiveKind = 'bool' | IntKind | BigKind | 'f32' | 'f64' | 'string' | 'bytes' | 'void' | 'status';

export type SchemaKind =
  | PrimitiveKind
  | 'vector'
  | 'set'
  | 'map'
  | 'pair'
  | 'optional'
  | 'result'
  | 'variant'
  | 'enum'
  | 'struct'
  | 'lazy'
  | 'alias'
  | 'fixed'
  | 'rdmaRemoteBuf'
  | 'payload';

/** A 3FS serde type. `V` is the TypeScript value it stands for; read it with `Infer<typeof schema>`. */
export interface Schema<V = unknown> {
  readonly kind: SchemaKind;
  readonly [valueType]?: V;
}

/** The TypeScript value type of a schema: u64/i64 → bigint, optional → T | null, struct → object, ... */
export type Infer<S> = S extends Schema<infer V> ? V : never;

/** 3FS's Status: `u16 code ‖ optional<string> message`; an empty message is absent on the wire. */
export interface StatusValue {
  code: number;
  message: string;
}

/** 3FS's `Result<T>` (folly::Expected<T, Status>). */
export type ResultValue<T> = { ok: T } | { error: StatusValue };

/** One remote key of an RDMARemoteBuf. devId -1 ends the list on the wire. */
export interface RdmaRemoteKey {
  rkey: number;
  devId: number;
}

export interface RdmaRemoteBufValue {
  addr: bigint;
  size: bigint;
  rkeys: RdmaRemoteKey[];
}

export interface PrimitiveSchema<V> extends Schema<V> {
  readonly kind: PrimitiveKind;
}

export interface VectorSchema<E extends Schema = Schema> extends Schema<Infer<E>[]> {
  readonly kind: 'vector' | 'set';
  readonly of: E;
}

export interface MapSchema<K extends Schema = Schema, V extends Schema = Schema> extends Schema<Map<Infer<K>, Infer<V>>> {
  readonly kind: 'map';
  readonly key: K;
  readonly value: V;
}

export interface PairSchema<A extends Schema = Schema, B extends Schema = Schema> extends Schema<[Infer<A>, Infer<B>]> {
  readonly kind: 'pair';
  readonly first: A;
  readonly second: B;
}

/**
 * An optional directly inside an optional boxes its value as `{ some }`, so "set, holding an empty optional"
 * (`01 00`) stays distinct from "empty" (`00`).
 */
export type OptionalValue<T extends Schema> = T extends OptionalSchema ? { some: Infer<T> } | null : Infer<T> | null;

export interface OptionalSchema<T extends Schema = Schema> extends Schema<OptionalValue<T>> {
  readonly kind: 'optional';
  readonly of: T;
}

export interface ResultSchema<T extends Schema = Schema> extends Schema<ResultValue<Infer<T>>> {
  readonly kind: 'result';
  readonly of: T;
}

export interface PayloadSchema<T extends Schema = Schema> extends Schema<Infer<T>> {
  readonly kind: 'payload';
  readonly of: T;
}

export interface Alternative<Tag extends string = string, T extends Schema = Schema> {
  readonly tag: Tag;
  readonly type: T;
}

export type VariantValue<A extends readonly Alternative[]> = {
  [I in keyof A]: A[I] extends Alternative<infer Tag, infer T> ? { tag: Tag; value: Infer<T> } : never;
}[number];

export interface VariantSchema<A extends readonly Alternative[] = readonly Alternative[]> extends Schema<VariantValue<A>> {
  readonly kind: 'variant';
  readonly alternatives: A;
}

export interface EnumSchema<V = number | bigint> extends Schema<V> {
  readonly kind: 'enum';
  readonly name: string;
  /** The underlying integer type. */
  readonly repr: PrimitiveSchema<number> | PrimitiveSchema<bigint>;
  readonly values: Readonly<Record<string, number | bigint>>;
}

export interface FieldSpec {
  readonly name: string;
  readonly type: Schema;
  /** Position in the flattened field list (3FS's field id; not on the wire). */
  readonly id: number;
  /** Kept when the field is missing from a table: a primitive, or a factory so every decode gets its own copy. */
  readonly defaultValue: unknown;
  readonly defaultFactory: (() => unknown) | undefined;
}

/** One table on the wire: the fields one class level declares. Levels without fields are not kept. */
export interface StructLevel {
  readonly className: string;
  readonly fields: readonly FieldSpec[];
}

export interface StructSchema<V = unknown> extends Schema<V> {
  readonly kind: 'struct';
  /** C++ full name, e.g. `hf3fs::core::EchoMessage`. */
  readonly name: string;
  /** The variant tag of this type (kTypeNameForSerde, or the short type name). */
  readonly tag: string;
  readonly levels: readonly StructLevel[];
  /** All fields, base class first. */
  readonly fields: readonly FieldSpec[];
}

export interface LazySchema<V = unknown> extends Schema<V> {
  readonly kind: 'lazy';
  /** The schema the thunk returns (resolved once, on first use). */
  readonly resolve: () => Schema<V>;
}

export interface AliasSchema<T extends Schema = Schema> extends Schema<Infer<T>> {
  readonly kind: 'alias';
  readonly name: string;
  readonly of: T;
}

/** An `is_serde_copyable` class: its raw bytes, always `size` long. */
export interface FixedSchema extends Schema<Uint8Array> {
  readonly kind: 'fixed';
  readonly name: string;
  readonly size: number;
}

export interface RdmaRemoteBufSchema extends Schema<RdmaRemoteBufValue> {
  readonly kind: 'rdmaRemoteBuf';
}

export type AnySchema =
  | PrimitiveSchema<unknown>
  | VectorSchema
  | MapSchema
  | PairSchema
  | OptionalSchema
  | ResultSchema
  | PayloadSchema
  | VariantSchema
  | EnumSchema
  | StructSchema
  | LazySchema
  | AliasSchema
  | FixedSchema
  | RdmaRemoteBufSchema;

/** Field map given to `s.struct`. */
export type Fields = Record<string, Schema>;

export type Simplify<T> = { [K in keyof T]: T[K] } & {};

export type FieldValues<F extends Fields> = Simplify<{ -readonly [K in keyof F]: Infer<F[K]> }>;

export interface StructOptions<B extends StructSchema | undefined = undefined> {
  /** Base class: its levels come first, each its own table. */
  base?: B;
  /** Variant tag (default: the short name, after the last `::`). */
  tag?: string;
  /** Values kept for fields missing from a shorter (older) table; default: the type's zero value. */
  defaults?: Record<string, unknown>;
  /** Class name of this level (default: the short name). */
  className?: string;
  /**
   * Fields of this level that redeclare a base field's name (C++ name hiding, e.g. 3FS meta's `dummy`): each level
   * keeps its own field on the wire, and the value has one property for both. Any other repeated name throws.
   */
  redeclares?: readonly string[];
}
