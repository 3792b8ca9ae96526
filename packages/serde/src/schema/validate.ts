import { InvalidArgError } from '../errors.js';
import { boxesOptional, resolveLazy } from './dsl.js';
import type { AnySchema, Schema } from './types.js';

// A failure carries its path segments innermost first; they are only built once something does not fit, so a
// value that fits costs a walk and no allocation.
interface Failure {
  segments: string[];
  expected: string;
  got: unknown;
}

function fail(expected: string, got: unknown): Failure {
  return { segments: [], expected, got };
}

function isInt(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function checkStatus(v: unknown): Failure | null {
  if (typeof v !== 'object' || v === null) return fail('Status {code, message}', v);
  const { code, message } = v as { code?: unknown; message?: unknown };
  if (!isInt(code, 0, 0xffff)) return within(fail('u16', code), '.code');
  if (message !== undefined && typeof message !== 'string') return within(fail('string', message), '.message');
  return null;
}

function within(f: Failure, segment: string): Failure {
  f.segments.push(segment);
  return f;
}

function check(sc: AnySchema, v: unknown, depth: number): Failure | null {
  if (depth > 512) return fail('a value nested at most 512 levels deep', v);
  switch (sc.kind) {
    case 'bool':
      return typeof v === 'boolean' ? null : fail('bool', v);
    case 'u8':
      return isInt(v, 0, 0xff) ? null : fail('u8', v);
    case 'i8':
      return isInt(v, -0x80, 0x7f) ? null : fail('i8', v);
    case 'u16':
      return isInt(v, 0, 0xffff) ? null : fail('u16', v);
    case 'i16':
      return isInt(v, -0x8000, 0x7fff) ? null : fail('i16', v);
    case 'u32':
      return isInt(v, 0, 0xffffffff) ? null : fail('u32', v);
    case 'i32':
      return isInt(v, -0x80000000, 0x7fffffff) ? null : fail('i32', v);
    case 'u64':
      return typeof v === 'bigint' && v >= 0n && v <= U64_MAX ? null : fail('u64 (bigint)', v);
    case 'i64':
      return typeof v === 'bigint' && v >= I64_MIN && v <= I64_MAX ? null : fail('i64 (bigint)', v);
    case 'f32':
      return typeof v === 'number' ? null : fail('f32', v);
    case 'f64':
      return typeof v === 'number' ? null : fail('f64', v);
    case 'string':
      return typeof v === 'string' ? null : fail('string', v);
    case 'bytes':
      return v instanceof Uint8Array ? null : fail('bytes (Uint8Array)', v);
    case 'void':
      return v === null || v === undefined ? null : fail('void (null)', v);
    case 'status':
      return checkStatus(v);
    case 'vector':
    case 'set': {
      if (!Array.isArray(v)) return fail(`${sc.kind} (array)`, v);
      const of = sc.of as AnySchema;
      for (let i = 0; i < v.length; i++) {
        const f = check(of, v[i], depth + 1);
        if (f) return within(f, `[${i}]`);
      }
      return null;
    }
    case 'map': {
      if (!(v instanceof Map)) return fail('map (Map)', v);
      let i = 0;
      for (const [key, value] of v) {
        const fk = check(sc.key as AnySchema, key, depth + 1);
        if (fk) return within(fk, `<key ${i}>`);
        const fv = check(sc.value as AnySchema, value, depth + 1);
        if (fv) return within(fv, `[${typeof key === 'string' ? JSON.stringify(key) : String(key)}]`);
        i++;
      }
      return null;
    }
    case 'pair': {
      if (!Array.isArray(v) || v.length !== 2) return fail('pair ([a, b])', v);
      const f0 = check(sc.first as AnySchema, v[0], depth + 1);
      if (f0) return within(f0, '[0]');
      const f1 = check(sc.second as AnySchema, v[1], depth + 1);
      return f1 ? within(f1, '[1]') : null;
    }
    case 'optional': {
      if (v === null || v === undefined) return null;
      if (!boxesOptional(sc.of)) return check(sc.of as AnySchema, v, depth + 1);
      if (typeof v !== 'object' || !('some' in v)) return fail('{ some } (an optional inside an optional is boxed)', v);
      const f = check(sc.of as AnySchema, (v as { some: unknown }).some, depth + 1);
      return f ? within(f, '.some') : null;
    }
    case 'result': {
      if (typeof v !== 'object' || v === null) return fail('Result ({ok} or {error})', v);
      if ('ok' in v) {
        const f = check(sc.of as AnySchema, (v as { ok: unknown }).ok, depth + 1);
        return f ? within(f, '.ok') : null;
      }
      if ('error' in v) {
        const f = checkStatus((v as { error: unknown }).error);
        return f ? within(f, '.error') : null;
      }
      return fail('Result ({ok} or {error})', v);
    }
    case 'payload':
      return check(sc.of as AnySchema, v, depth + 1);
    case 'variant': {
      if (typeof v !== 'object' || v === null) return fail('variant ({tag, value})', v);
      const tag = (v as { tag?: unknown }).tag;
      for (const a of sc.alternatives) {
        if (a.tag === tag) {
          const f = check(a.type as AnySchema, (v as { value?: unknown }).value, depth + 1);
          return f ? within(f, `<${a.tag}>`) : null;
        }
      }
      return within(fail(`one of ${sc.alternatives.map((a) => a.tag).join(', ')}`, tag), '.tag');
    }
    case 'enum': {
      const f = check(sc.repr as AnySchema, v, depth + 1);
      if (f) f.expected = `${sc.name} (${f.expected})`;
      return f;
    }
    case 'struct': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(`${sc.name} (object)`, v);
      const obj = v as Record<string, unknown>;
      const fields = sc.fields;
      for (let i = 0; i < fields.length; i++) {
        const fs = fields[i] as (typeof fields)[number];
        const fv = obj[fs.name];
        const f = check(fs.type as AnySchema, fv, depth + 1);
        if (f) {
          if (fv === undefined && !(fs.name in obj)) f.expected = `${f.expected} (field missing)`;
          return within(f, `.${fs.name}`);
        }
      }
      return null;
    }
    case 'lazy':
      return check(resolveLazy(sc) as AnySchema, v, depth + 1);
    case 'alias': {
      const f = check(sc.of as AnySchema, v, depth + 1);
      if (f) f.expected = `${sc.name} (${f.expected})`;
      return f;
    }
    case 'fixed':
      return v instanceof Uint8Array && v.length === sc.size ? null : fail(`${sc.name} (Uint8Array of ${sc.size} bytes)`, v);
    case 'rdmaRemoteBuf': {
      if (typeof v !== 'object' || v === null) return fail('RDMARemoteBuf {addr, size, rkeys}', v);
      const r = v as { addr?: unknown; size?: unknown; rkeys?: unknown };
      if (typeof r.addr !== 'bigint' || r.addr < 0n || r.addr > U64_MAX) return within(fail('u64 (bigint)', r.addr), '.addr');
      if (typeof r.size !== 'bigint' || r.size < 0n || r.size > U64_MAX) return within(fail('u64 (bigint)', r.size), '.size');
      if (!Array.isArray(r.rkeys)) return within(fail('array', r.rkeys), '.rkeys');
      for (let i = 0; i < r.rkeys.length; i++) {
        const k = r.rkeys[i] as { rkey?: unknown; devId?: unknown } | null;
        if (typeof k !== 'object' || k === null) return within(fail('{rkey, devId}', k), `.rkeys[${i}]`);
        if (!isInt(k.rkey, 0, 0xffffffff)) return within(within(fail('u32', k.rkey), '.rkey'), `.rkeys[${i}]`);
        if (!isInt(k.devId, -0x80000000, 0x7fffffff)) return within(within(fail('i32', k.devId), '.devId'), `.rkeys[${i}]`);
      }
      if (r.rkeys.length > 255 && r.rkeys.slice(0, 256).every((k) => (k as { devId: number }).devId !== -1)) {
        return within(fail('at most 255 keys', r.rkeys.length), '.rkeys');
      }
      return null;
    }
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  if (v instanceof Map) return 'Map';
  if (typeof v === 'number') return Number.isInteger(v) ? `number ${v}` : `number ${String(v)}`;
  if (typeof v === 'bigint') return `bigint ${v}`;
  // Never echo string contents: a value can carry a secret (a token, a password) into a log line.
  return typeof v;
}

/** Checks a value against its schema without encoding it; cheap and allocation-free when it fits. */
export function isValid(schema: Schema, value: unknown): boolean {
  return check(schema as AnySchema, value, 0) === null;
}

/**
 * Throws InvalidArgError naming the field path when `value` does not fit `schema`, e.g.
 * `req.items[3].len: expected u32, got string`. `name` is the root of the path (default `value`).
 */
export function validate(schema: Schema, value: unknown, name = 'value'): void {
  const f = check(schema as AnySchema, value, 0);
  if (f === null) return;
  let path = name;
  for (let i = f.segments.length - 1; i >= 0; i--) path += f.segments[i];
  throw new InvalidArgError(`${path}: expected ${f.expected}, got ${describe(f.got)}`);
}
