import { isUtf8 } from 'node:buffer';
import { InvalidArgError } from '../errors.js';
import { boxesOptional, resolveLazy } from './dsl.js';
import type { AnySchema, Infer, RdmaRemoteKey, Schema, StatusValue } from './types.js';

/**
 * A JSON value in the kit's conventions (the counterpart of 3FS's toJsonString): 64-bit integers as decimal
 * strings, bytes as a string when they are UTF-8 and `{"$hex"}` otherwise, maps as `[[k, v], ...]`, variants as
 * `{tag, value}`, Result as `{ok}` / `{error}`, fixed-size classes as `{"$hex"}`.
 */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The shortest decimal that reads back as the same float32 (what the kit writes for f32). */
function f32Json(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  for (let p = 1; p <= 9; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === v) return d;
  }
  return v;
}

function hexOf(b: Uint8Array): { $hex: string } {
  return { $hex: Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') };
}

function bytesJson(b: Uint8Array): JsonValue {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  return isUtf8(buf) ? buf.toString('utf8') : hexOf(b);
}

function statusJson(v: StatusValue): JsonValue {
  return { code: v.code, message: v.message ?? '' };
}

function toJ(sc: AnySchema, v: unknown): JsonValue {
  switch (sc.kind) {
    case 'bool':
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
    case 'f64':
    case 'string':
      return v as JsonValue;
    case 'f32':
      return f32Json(v as number);
    case 'u64':
    case 'i64':
      return (v as bigint).toString();
    case 'bytes':
      return bytesJson(v as Uint8Array);
    case 'void':
      return null;
    case 'status':
      return statusJson(v as StatusValue);
    case 'vector':
    case 'set':
      return (v as unknown[]).map((x) => toJ(sc.of as AnySchema, x));
    case 'map':
      return [...(v as Map<unknown, unknown>)].map(([k, x]) => [toJ(sc.key as AnySchema, k), toJ(sc.value as AnySchema, x)]);
    case 'pair': {
      const [a, b] = v as [unknown, unknown];
      return [toJ(sc.first as AnySchema, a), toJ(sc.second as AnySchema, b)];
    }
    case 'optional':
      // The kit's form has no box: a set optional holding an empty one reads `null`, like an empty one.
      if (v === null || v === undefined) return null;
      return toJ(sc.of as AnySchema, boxesOptional(sc.of) ? (v as { some: unknown }).some : v);
    case 'result':
      return 'ok' in (v as object) ? { ok: toJ(sc.of as AnySchema, (v as { ok: unknown }).ok) } : { error: statusJson((v as { error: StatusValue }).error) };
    case 'payload':
      return toJ(sc.of as AnySchema, v);
    case 'variant': {
      const { tag, value } = v as { tag: string; value: unknown };
      const alt = sc.alternatives.find((a) => a.tag === tag);
      if (!alt) throw new InvalidArgError(`toJson: variant tag ${JSON.stringify(tag)} is not one of the alternatives`);
      return { tag, value: toJ(alt.type as AnySchema, value) };
    }
    case 'enum':
      return typeof v === 'bigint' ? v.toString() : (v as number);
    case 'struct': {
      const out: Record<string, JsonValue> = {};
      const obj = v as Record<string, unknown>;
      for (const f of sc.fields) out[f.name] = toJ(f.type as AnySchema, obj[f.name]);
      return out;
    }
    case 'lazy':
      return toJ(resolveLazy(sc) as AnySchema, v);
    case 'alias':
      return toJ(sc.of as AnySchema, v);
    case 'fixed':
      return hexOf(v as Uint8Array);
    case 'rdmaRemoteBuf': {
      const r = v as { addr: bigint; size: bigint; rkeys: RdmaRemoteKey[] };
      return { addr: r.addr.toString(), size: r.size.toString(), rkeys: r.rkeys.map((k) => ({ rkey: k.rkey, devId: k.devId })) };
    }
  }
}

/** The readable form of a value (validate first if it may not fit; this does not check). */
export function toJson<S extends Schema>(schema: S, value: Infer<S>): JsonValue {
  return toJ(schema as unknown as AnySchema, value);
}

class JsonMismatch {
  readonly segments: string[] = [];
  constructor(readonly expected: string) {}
}

function bad(expected: string): never {
  throw new JsonMismatch(expected);
}

function at<T>(segment: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof JsonMismatch) e.segments.push(segment);
    throw e;
  }
}

function hexBytes(v: unknown): Uint8Array | undefined {
  if (typeof v !== 'object' || v === null || typeof (v as { $hex?: unknown }).$hex !== 'string') return undefined;
  const hex = (v as { $hex: string }).$hex;
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) bad('{"$hex"} with an even number of hex digits');
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

function bigOf(v: unknown, min: bigint, max: bigint, what: string): bigint {
  let out: bigint;
  if (typeof v === 'string' && /^-?[0-9]+$/.test(v)) out = BigInt(v);
  else if (typeof v === 'number' && Number.isSafeInteger(v)) out = BigInt(v);
  else if (typeof v === 'bigint') out = v;
  else bad(`${what} (a decimal string)`);
  if (out < min || out > max) bad(`${what} in range`);
  return out;
}

function intOf(v: unknown, min: number, max: number, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) bad(what);
  return v;
}

function statusOf(v: unknown): StatusValue {
  if (typeof v !== 'object' || v === null) bad('Status {code, message}');
  const { code, message } = v as { code?: unknown; message?: unknown };
  const c = at('.code', () => intOf(code, 0, 0xffff, 'u16'));
  if (message !== undefined && message !== null && typeof message !== 'string') at('.message', () => bad('string'));
  return { code: c, message: (message as string | undefined) ?? '' };
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function fromJ(sc: AnySchema, v: unknown): unknown {
  switch (sc.kind) {
    case 'bool':
      if (typeof v !== 'boolean') bad('bool');
      return v;
    case 'u8':
      return intOf(v, 0, 0xff, 'u8');
    case 'u16':
      return intOf(v, 0, 0xffff, 'u16');
    case 'u32':
      return intOf(v, 0, 0xffffffff, 'u32');
    case 'i8':
      return intOf(v, -0x80, 0x7f, 'i8');
    case 'i16':
      return intOf(v, -0x8000, 0x7fff, 'i16');
    case 'i32':
      return intOf(v, -0x80000000, 0x7fffffff, 'i32');
    case 'u64':
      return bigOf(v, 0n, U64_MAX, 'u64');
    case 'i64':
      return bigOf(v, I64_MIN, I64_MAX, 'i64');
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') bad(sc.kind);
      return v;
    case 'string': {
      if (typeof v === 'string') return v;
      const b = hexBytes(v);
      if (b === undefined) bad('string');
      const buf = Buffer.from(b);
      if (!isUtf8(buf)) bad('UTF-8 text (declare the field s.bytes for raw bytes)');
      return buf.toString('utf8');
    }
    case 'bytes': {
      if (typeof v === 'string') return Uint8Array.from(Buffer.from(v, 'utf8'));
      const b = hexBytes(v);
      if (b === undefined) bad('bytes (a string or {"$hex"})');
      return b;
    }
    case 'void':
      if (v !== null && v !== undefined) bad('null');
      return null;
    case 'status':
      return statusOf(v);
    case 'vector':
    case 'set':
      if (!Array.isArray(v)) bad(`${sc.kind} (array)`);
      return v.map((x, i) => at(`[${i}]`, () => fromJ(sc.of as AnySchema, x)));
    case 'map': {
      if (!Array.isArray(v)) bad('map ([[key, value], ...])');
      const out = new Map();
      for (let i = 0; i < v.length; i++) {
        const e: unknown = v[i];
        at(`[${i}]`, () => {
          if (!Array.isArray(e) || e.length !== 2) bad('[key, value]');
          const key = at('[0]', () => fromJ(sc.key as AnySchema, e[0]));
          out.set(
            key,
            at('[1]', () => fromJ(sc.value as AnySchema, e[1])),
          );
        });
      }
      return out;
    }
    case 'pair':
      if (!Array.isArray(v) || v.length !== 2) bad('pair ([a, b])');
      return [at('[0]', () => fromJ(sc.first as AnySchema, v[0])), at('[1]', () => fromJ(sc.second as AnySchema, v[1]))];
    case 'optional': {
      if (v === null || v === undefined) return null;
      if (!boxesOptional(sc.of)) return fromJ(sc.of as AnySchema, v);
      // `{"some": x}` keeps a set-but-empty inner optional, which bare JSON null cannot say.
      const inner = typeof v === 'object' && 'some' in v ? (v as { some: unknown }).some : v;
      return { some: at('.some', () => fromJ(sc.of as AnySchema, inner)) };
    }
    case 'result': {
      if (typeof v !== 'object' || v === null) bad('Result ({ok} or {error})');
      if ('ok' in v) return { ok: at('.ok', () => fromJ(sc.of as AnySchema, (v as { ok: unknown }).ok)) };
      if ('error' in v) return { error: at('.error', () => statusOf((v as { error: unknown }).error)) };
      return bad('Result ({ok} or {error})');
    }
    case 'payload':
      return fromJ(sc.of as AnySchema, v);
    case 'variant': {
      if (typeof v !== 'object' || v === null) bad('variant ({tag, value})');
      const tag = (v as { tag?: unknown }).tag;
      const alt = sc.alternatives.find((a) => a.tag === tag);
      if (!alt) return at('.tag', () => bad(`one of ${sc.alternatives.map((a) => a.tag).join(', ')}`));
      return { tag: alt.tag, value: at(`<${alt.tag}>`, () => fromJ(alt.type as AnySchema, (v as { value?: unknown }).value)) };
    }
    case 'enum': {
      // The kit writes enums as numbers; a name is accepted too, for hand-written input.
      if (typeof v === 'string' && Object.hasOwn(sc.values, v)) return sc.values[v];
      return fromJ(sc.repr as AnySchema, v);
    }
    case 'struct': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(`${sc.name} (object)`);
      const obj = v as Record<string, unknown>;
      const known = new Set(sc.fields.map((f) => f.name));
      for (const k of Object.keys(obj)) if (!known.has(k)) at(`.${k}`, () => bad(`no such field in ${sc.name}`));
      const out: Record<string, unknown> = {};
      for (const f of sc.fields) {
        out[f.name] = at(`.${f.name}`, () => {
          const x = obj[f.name];
          if (x === undefined) bad(`${f.name} (field missing)`);
          return fromJ(f.type as AnySchema, x);
        });
      }
      return out;
    }
    case 'lazy':
      return fromJ(resolveLazy(sc) as AnySchema, v);
    case 'alias':
      return fromJ(sc.of as AnySchema, v);
    case 'fixed': {
      const b = hexBytes(v);
      if (b === undefined || b.length !== sc.size) bad(`${sc.name} ({"$hex"} of ${sc.size} bytes)`);
      return b;
    }
    case 'rdmaRemoteBuf': {
      if (typeof v !== 'object' || v === null) bad('RDMARemoteBuf {addr, size, rkeys}');
      const r = v as { addr?: unknown; size?: unknown; rkeys?: unknown };
      const addr = at('.addr', () => bigOf(r.addr, 0n, U64_MAX, 'u64'));
      const size = at('.size', () => bigOf(r.size, 0n, U64_MAX, 'u64'));
      if (!Array.isArray(r.rkeys)) at('.rkeys', () => bad('array'));
      const rkeys = (r.rkeys as unknown[]).map((k, i) =>
        at(`.rkeys[${i}]`, () => {
          if (typeof k !== 'object' || k === null) bad('{rkey, devId}');
          const kk = k as { rkey?: unknown; devId?: unknown };
          return { rkey: at('.rkey', () => intOf(kk.rkey, 0, 0xffffffff, 'u32')), devId: at('.devId', () => intOf(kk.devId, -0x80000000, 0x7fffffff, 'i32')) };
        }),
      );
      return { addr, size, rkeys };
    }
  }
}

/**
 * Reads the readable form back into a value (CLI input, config). Strict: unknown fields and missing fields are
 * refused with InvalidArgError naming the path, e.g. `value.items[3].len: expected u32`.
 */
export function fromJson<S extends Schema>(schema: S, json: unknown, name = 'value'): Infer<S> {
  try {
    return fromJ(schema as unknown as AnySchema, json) as Infer<S>;
  } catch (e) {
    if (e instanceof JsonMismatch) {
      let path = name;
      for (let i = e.segments.length - 1; i >= 0; i--) path += e.segments[i];
      throw new InvalidArgError(`${path}: expected ${e.expected}`);
    }
    throw e;
  }
}
