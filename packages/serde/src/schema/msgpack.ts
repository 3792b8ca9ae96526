import { boxesOptional, resolveLazy } from './dsl.js';
import type { AnySchema, Infer, Schema } from './types.js';

// Under the ffnet envelope a schema-typed value crosses as MessagePack, which has no bigint below 2^53 (msgpackr
// hands back numbers), no Map (objects come back with string keys) and no tuple. This walk puts a decoded value
// back into its schema's shapes, in place where it can, so `validate` can then check it. It never throws: what it
// cannot convert it leaves as it is, for validate to name.

function big(v: unknown): unknown {
  return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
}

function key(sc: AnySchema, k: string): unknown {
  switch (sc.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
    case 'f32':
    case 'f64':
      return /^-?[0-9.e+-]+$/i.test(k) ? Number(k) : k;
    case 'u64':
    case 'i64':
      return /^-?[0-9]+$/.test(k) ? BigInt(k) : k;
    case 'bool':
      return k === 'true' ? true : k === 'false' ? false : k;
    case 'enum':
      return key(sc.repr as AnySchema, k);
    case 'alias':
      return key(sc.of as AnySchema, k);
    case 'lazy':
      return key(resolveLazy(sc) as AnySchema, k);
    default:
      return k;
  }
}

function norm(sc: AnySchema, v: unknown, depth: number): unknown {
  if (depth > 512 || v === null || v === undefined) return v === undefined && sc.kind === 'optional' ? null : v;
  switch (sc.kind) {
    case 'u64':
    case 'i64':
      return big(v);
    case 'enum':
      return sc.repr.kind === 'u64' || sc.repr.kind === 'i64' ? big(v) : v;
    case 'alias':
      return norm(sc.of as AnySchema, v, depth + 1);
    case 'lazy':
      return norm(resolveLazy(sc) as AnySchema, v, depth + 1);
    case 'payload':
      return norm(sc.of as AnySchema, v, depth + 1);
    case 'vector':
    case 'set':
      if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = norm(sc.of as AnySchema, v[i], depth + 1);
      return v;
    case 'pair':
      if (Array.isArray(v) && v.length === 2) {
        v[0] = norm(sc.first as AnySchema, v[0], depth + 1);
        v[1] = norm(sc.second as AnySchema, v[1], depth + 1);
      }
      return v;
    case 'map': {
      const k = sc.key as AnySchema;
      const val = sc.value as AnySchema;
      const out = new Map();
      if (v instanceof Map) {
        for (const [a, b] of v) out.set(norm(k, a, depth + 1), norm(val, b, depth + 1));
      } else if (Array.isArray(v)) {
        for (const e of v) if (Array.isArray(e) && e.length === 2) out.set(norm(k, e[0], depth + 1), norm(val, e[1], depth + 1));
      } else if (typeof v === 'object') {
        for (const [a, b] of Object.entries(v)) out.set(key(k, a), norm(val, b, depth + 1));
      } else {
        return v;
      }
      return out;
    }
    case 'optional':
      if (boxesOptional(sc.of)) {
        if (typeof v === 'object' && 'some' in v) (v as { some: unknown }).some = norm(sc.of as AnySchema, (v as { some: unknown }).some, depth + 1);
        return v;
      }
      return norm(sc.of as AnySchema, v, depth + 1);
    case 'result':
      if (typeof v === 'object' && 'ok' in v) (v as { ok: unknown }).ok = norm(sc.of as AnySchema, (v as { ok: unknown }).ok, depth + 1);
      return v;
    case 'variant': {
      if (typeof v !== 'object') return v;
      const tag = (v as { tag?: unknown }).tag;
      const alt = sc.alternatives.find((a) => a.tag === tag);
      if (alt) (v as { value: unknown }).value = norm(alt.type as AnySchema, (v as { value?: unknown }).value, depth + 1);
      return v;
    }
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v)) return v;
      const obj = v as Record<string, unknown>;
      for (const f of sc.fields) {
        if (f.name in obj) obj[f.name] = norm(f.type as AnySchema, obj[f.name], depth + 1);
      }
      return v;
    }
    case 'rdmaRemoteBuf':
      if (typeof v === 'object') {
        const r = v as { addr?: unknown; size?: unknown };
        r.addr = big(r.addr);
        r.size = big(r.size);
      }
      return v;
    default:
      return v;
  }
}

/**
 * Puts a value that crossed the ffnet (MessagePack) envelope back into its schema's shapes: 64-bit integers that
 * arrived as numbers become bigint, maps that arrived as objects or pair lists become `Map` (keys parsed by the key
 * schema), a missing optional becomes null. Objects and arrays are updated in place. Follow it with `validate`:
 * this never throws, and leaves what it cannot convert for validate to name.
 */
export function fromMsgpack<S extends Schema>(schema: S, value: unknown): Infer<S> {
  return norm(schema as unknown as AnySchema, value, 0) as Infer<S>;
}
