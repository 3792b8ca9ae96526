// Under the ffnet envelope a payload travels as msgpack, which does not keep every TypeScript shape a schema gives:
// msgpackr decodes a 64-bit integer as a number when it is safe (int64AsType 'auto') and a map as a plain object with
// string keys. Before a schema checks a received value, those are put back: a number where a u64/i64 (or a 64-bit
// enum) belongs becomes a bigint, an object where a map belongs becomes a Map with its keys converted. Nothing else
// changes, and what does not match is left for `validate` to report. The value is the decoder's own, so it is
// changed in place.
import { unwrap } from '../schema/dsl.js';
import type { AnySchema, Schema } from '../schema/types.js';

const MAX_DEPTH = 256;

/** `value` (fresh from msgpack) in the shape `schema` describes, as far as msgpack lost it. */
export function fromMsgpack(schema: Schema, value: unknown): unknown {
  return shape(unwrap(schema), value, 0);
}

function bigOf(v: unknown): unknown {
  return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
}

/** A map key as msgpack's object keys give it (a string) converted back to the key schema's type. */
function keyOf(sc: AnySchema, k: string): unknown {
  switch (sc.kind) {
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
    case 'f32':
    case 'f64':
      return /^-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?$/i.test(k) ? Number(k) : k;
    case 'u64':
    case 'i64':
      return /^-?[0-9]+$/.test(k) ? BigInt(k) : k;
    case 'bool':
      return k === 'true' ? true : k === 'false' ? false : k;
    case 'enum':
      return keyOf(unwrap(sc.repr), k);
    default:
      return k;
  }
}

function shape(sc: AnySchema, v: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH || v === null || v === undefined) return v;
  switch (sc.kind) {
    case 'u64':
    case 'i64':
      return bigOf(v);
    case 'enum': {
      const repr = unwrap(sc.repr).kind;
      return repr === 'u64' || repr === 'i64' ? bigOf(v) : v;
    }
    case 'vector':
    case 'set': {
      if (!Array.isArray(v)) return v;
      const of = unwrap(sc.of);
      if (isPlain(of)) return v;
      for (let i = 0; i < v.length; i++) v[i] = shape(of, v[i], depth + 1);
      return v;
    }
    case 'pair': {
      if (!Array.isArray(v) || v.length !== 2) return v;
      v[0] = shape(unwrap(sc.first), v[0], depth + 1);
      v[1] = shape(unwrap(sc.second), v[1], depth + 1);
      return v;
    }
    case 'map': {
      const key = unwrap(sc.key);
      const val = unwrap(sc.value);
      if (v instanceof Map) {
        const out = new Map<unknown, unknown>();
        for (const [k, x] of v) out.set(shape(key, k, depth + 1), shape(val, x, depth + 1));
        return out;
      }
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) return v;
      const out = new Map<unknown, unknown>();
      for (const k of Object.keys(v)) out.set(keyOf(key, k), shape(val, (v as Record<string, unknown>)[k], depth + 1));
      return out;
    }
    case 'optional': {
      const of = sc.of;
      const inner = unwrap(of);
      // An optional inside an optional is boxed as { some }.
      if (inner.kind === 'optional' && typeof v === 'object' && 'some' in (v as object)) {
        const box = v as { some: unknown };
        box.some = shape(inner, box.some, depth + 1);
        return box;
      }
      return shape(inner, v, depth + 1);
    }
    case 'result': {
      if (typeof v !== 'object' || !('ok' in (v as object))) return v;
      const r = v as { ok: unknown };
      r.ok = shape(unwrap(sc.of), r.ok, depth + 1);
      return r;
    }
    case 'variant': {
      if (typeof v !== 'object') return v;
      const x = v as { tag?: unknown; value?: unknown };
      for (const a of sc.alternatives) {
        if (a.tag === x.tag) {
          x.value = shape(unwrap(a.type), x.value, depth + 1);
          break;
        }
      }
      return x;
    }
    case 'struct': {
      if (typeof v !== 'object' || Array.isArray(v)) return v;
      const obj = v as Record<string, unknown>;
      for (const f of sc.fields) {
        const t = unwrap(f.type);
        if (isPlain(t) || !(f.name in obj)) continue;
        obj[f.name] = shape(t, obj[f.name], depth + 1);
      }
      return obj;
    }
    case 'payload':
      return shape(unwrap(sc.of), v, depth + 1);
    case 'rdmaRemoteBuf': {
      if (typeof v !== 'object') return v;
      const r = v as { addr?: unknown; size?: unknown };
      r.addr = bigOf(r.addr);
      r.size = bigOf(r.size);
      return r;
    }
    default:
      return v;
  }
}

/** Kinds msgpack gives back exactly as the schema wants them. */
function isPlain(sc: AnySchema): boolean {
  switch (sc.kind) {
    case 'bool':
    case 'u8':
    case 'u16':
    case 'u32':
    case 'i8':
    case 'i16':
    case 'i32':
    case 'f32':
    case 'f64':
    case 'string':
    case 'bytes':
    case 'void':
    case 'status':
    case 'fixed':
      return true;
    case 'enum': {
      const repr = unwrap(sc.repr).kind;
      return repr !== 'u64' && repr !== 'i64';
    }
    default:
      return false;
  }
}
