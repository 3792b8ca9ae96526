import { isUtf8 } from 'node:buffer';
import { InvalidArgError, InvalidFormatError } from '../errors.js';
import { boxesOptional, fieldDefault, resolveLazy } from './dsl.js';
import { SerdeInsufficientLengthError, SerdeVariantIndexExceededError } from './errors.js';
import type { AnySchema, Infer, RdmaRemoteKey, Schema, StatusValue, StructSchema } from './types.js';
import { validate } from './validate.js';

// ---------------------------------------------------------------------------------------------------------------
// Encoding. 3FS writes backwards so every length prefix is known when written; we write forwards into one reused
// scratch buffer and patch each table's length afterwards. Almost every table is shorter than 128 bytes, so the
// one byte reserved for its varint is right and nothing moves; a longer table shifts its own bytes once per extra
// prefix byte (copyWithin, no allocation). Encoding is synchronous and calls no user code, so one module-level
// scratch buffer is safe; the result is one copy out of it.
// ---------------------------------------------------------------------------------------------------------------

const INITIAL_SCRATCH = 4096;
/** Scratch buffers grown past this are dropped after use, so one huge message does not pin its memory. */
const KEEP_SCRATCH_MAX = 1 << 20;

// allocUnsafeSlow: the scratch owns its ArrayBuffer (offset 0), not a slab shared with other Buffers.
let buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_SCRATCH);
let dv: DataView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
/** The whole scratch as a plain Uint8Array: copies out of it need no view of their own per message. */
let bufU8: Uint8Array = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
let pos = 0;

function setScratch(next: Buffer): void {
  buf = next;
  dv = new DataView(next.buffer, next.byteOffset, next.byteLength);
  bufU8 = new Uint8Array(next.buffer, next.byteOffset, next.byteLength);
}

/** Thrown inside the encoder when a value does not fit its schema; encode3fs turns it into a path-naming InvalidArgError. */
const MISMATCH = Symbol('ffnet.schema.mismatch');

function grow(need: number): void {
  let size = buf.length * 2;
  while (size < pos + need) size *= 2;
  const next = Buffer.allocUnsafeSlow(size);
  buf.copy(next, 0, 0, pos);
  setScratch(next);
}

function ensure(n: number): void {
  if (pos + n > buf.length) grow(n);
}

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function writeVarintAt(at: number, v: number): number {
  while (v >= 0x80) {
    buf[at++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[at++] = v;
  return at;
}

function writeVarint(v: number): void {
  ensure(5);
  pos = writeVarintAt(pos, v);
}

/** Reserves one byte for a length prefix; returns where the prefixed bytes start. */
function openLength(): number {
  ensure(1);
  return ++pos;
}

function closeLength(start: number): void {
  const len = pos - start;
  if (len < 0x80) {
    buf[start - 1] = len;
    return;
  }
  const extra = varintSize(len) - 1;
  ensure(extra);
  buf.copyWithin(start + extra, start, pos);
  pos += extra;
  writeVarintAt(start - 1, len);
}

function writeString(v: string): void {
  const n = v.length;
  if (n < 0x80) {
    // Short ASCII strings are most of what crosses the wire: copy chars straight in, fall back on the first non-ASCII.
    ensure(n + 1);
    const at = pos + 1;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + i] = c;
    }
    if (i === n) {
      buf[pos] = n;
      pos = at + n;
      return;
    }
  }
  const len = Buffer.byteLength(v, 'utf8');
  writeVarint(len);
  ensure(len);
  pos += buf.write(v, pos, len, 'utf8');
}

function writeBytes(v: Uint8Array): void {
  const n = v.length;
  writeVarint(n);
  ensure(n);
  buf.set(v, pos);
  pos += n;
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

function writeStatus(v: unknown): void {
  if (typeof v !== 'object' || v === null) throw MISMATCH;
  const { code, message } = v as StatusValue;
  if (!isInt(code, 0, 0xffff)) throw MISMATCH;
  ensure(3);
  dv.setUint16(pos, code, true);
  pos += 2;
  if (message === '' || message === undefined) {
    buf[pos++] = 0;
  } else {
    if (typeof message !== 'string') throw MISMATCH;
    buf[pos++] = 1;
    writeString(message);
  }
}

function writeTable(sc: StructSchema, v: unknown): void {
  if (typeof v !== 'object' || v === null) throw MISMATCH;
  const obj = v as Record<string, unknown>;
  const levels = sc.levels;
  for (let l = 0; l < levels.length; l++) {
    const fields = (levels[l] as StructSchema['levels'][number]).fields;
    const start = openLength();
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as StructSchema['fields'][number];
      enc(f.type as AnySchema, obj[f.name]);
    }
    closeLength(start);
  }
}

function enc(sc: AnySchema, v: unknown): void {
  switch (sc.kind) {
    case 'bool':
      if (typeof v !== 'boolean') throw MISMATCH;
      ensure(1);
      buf[pos++] = v ? 1 : 0;
      return;
    case 'u8':
      if (!isInt(v, 0, 0xff)) throw MISMATCH;
      ensure(1);
      buf[pos++] = v;
      return;
    case 'i8':
      if (!isInt(v, -0x80, 0x7f)) throw MISMATCH;
      ensure(1);
      buf[pos++] = v & 0xff;
      return;
    case 'u16':
      if (!isInt(v, 0, 0xffff)) throw MISMATCH;
      ensure(2);
      dv.setUint16(pos, v, true);
      pos += 2;
      return;
    case 'i16':
      if (!isInt(v, -0x8000, 0x7fff)) throw MISMATCH;
      ensure(2);
      dv.setInt16(pos, v, true);
      pos += 2;
      return;
    case 'u32':
      if (!isInt(v, 0, 0xffffffff)) throw MISMATCH;
      ensure(4);
      dv.setUint32(pos, v, true);
      pos += 4;
      return;
    case 'i32':
      if (!isInt(v, -0x80000000, 0x7fffffff)) throw MISMATCH;
      ensure(4);
      dv.setInt32(pos, v, true);
      pos += 4;
      return;
    case 'u64':
      if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw MISMATCH;
      ensure(8);
      dv.setBigUint64(pos, v, true);
      pos += 8;
      return;
    case 'i64':
      if (typeof v !== 'bigint' || v < I64_MIN || v > I64_MAX) throw MISMATCH;
      ensure(8);
      dv.setBigInt64(pos, v, true);
      pos += 8;
      return;
    case 'f32':
      if (typeof v !== 'number') throw MISMATCH;
      ensure(4);
      dv.setFloat32(pos, v, true);
      pos += 4;
      return;
    case 'f64':
      if (typeof v !== 'number') throw MISMATCH;
      ensure(8);
      dv.setFloat64(pos, v, true);
      pos += 8;
      return;
    case 'string':
      if (typeof v !== 'string') throw MISMATCH;
      writeString(v);
      return;
    case 'bytes':
      if (!(v instanceof Uint8Array)) throw MISMATCH;
      writeBytes(v);
      return;
    case 'void':
      if (v !== null && v !== undefined) throw MISMATCH;
      return;
    case 'status':
      writeStatus(v);
      return;
    case 'vector':
    case 'set': {
      if (!Array.isArray(v)) throw MISMATCH;
      const of = sc.of as AnySchema;
      writeVarint(v.length);
      for (let i = 0; i < v.length; i++) enc(of, v[i]);
      return;
    }
    case 'map': {
      if (!(v instanceof Map)) throw MISMATCH;
      const k = sc.key as AnySchema;
      const val = sc.value as AnySchema;
      writeVarint(v.size);
      for (const [key, value] of v) {
        enc(k, key);
        enc(val, value);
      }
      return;
    }
    case 'pair':
      if (!Array.isArray(v) || v.length !== 2) throw MISMATCH;
      enc(sc.first as AnySchema, v[0]);
      enc(sc.second as AnySchema, v[1]);
      return;
    case 'optional':
      ensure(1);
      if (v === null || v === undefined) {
        buf[pos++] = 0;
      } else {
        buf[pos++] = 1;
        if (boxesOptional(sc.of)) {
          if (typeof v !== 'object' || !('some' in v)) throw MISMATCH;
          enc(sc.of as AnySchema, (v as { some: unknown }).some);
        } else {
          enc(sc.of as AnySchema, v);
        }
      }
      return;
    case 'result': {
      if (typeof v !== 'object' || v === null) throw MISMATCH;
      ensure(1);
      if ('ok' in v) {
        buf[pos++] = 1;
        enc(sc.of as AnySchema, (v as { ok: unknown }).ok);
      } else if ('error' in v) {
        buf[pos++] = 0;
        writeStatus((v as { error: unknown }).error);
      } else {
        throw MISMATCH;
      }
      return;
    }
    case 'payload': {
      const start = openLength();
      enc(sc.of as AnySchema, v);
      closeLength(start);
      return;
    }
    case 'variant': {
      if (typeof v !== 'object' || v === null) throw MISMATCH;
      const tag = (v as { tag?: unknown }).tag;
      const alts = sc.alternatives;
      for (let i = 0; i < alts.length; i++) {
        const a = alts[i] as (typeof alts)[number];
        if (a.tag === tag) {
          writeString(tag);
          enc(a.type as AnySchema, (v as { value?: unknown }).value);
          return;
        }
      }
      throw MISMATCH;
    }
    case 'enum':
      enc(sc.repr as AnySchema, v);
      return;
    case 'struct':
      writeTable(sc, v);
      return;
    case 'lazy':
      enc(resolveLazy(sc) as AnySchema, v);
      return;
    case 'alias':
      enc(sc.of as AnySchema, v);
      return;
    case 'fixed':
      if (!(v instanceof Uint8Array) || v.length !== sc.size) throw MISMATCH;
      ensure(sc.size);
      buf.set(v, pos);
      pos += sc.size;
      return;
    case 'rdmaRemoteBuf': {
      if (typeof v !== 'object' || v === null) throw MISMATCH;
      const { addr, size, rkeys } = v as { addr: unknown; size: unknown; rkeys: unknown };
      if (typeof addr !== 'bigint' || addr < 0n || addr > U64_MAX || typeof size !== 'bigint' || size < 0n || size > U64_MAX) throw MISMATCH;
      if (!Array.isArray(rkeys)) throw MISMATCH;
      // 3FS writes only the leading keys with devId != -1 (RDMABuf.h:353-394), at most 255 of them in a u8.
      let n = 0;
      while (n < rkeys.length && (rkeys[n] as RdmaRemoteKey)?.devId !== -1) n++;
      if (n > 0xff) throw MISMATCH;
      ensure(17 + n * 8);
      dv.setBigUint64(pos, addr, true);
      dv.setBigUint64(pos + 8, size, true);
      buf[pos + 16] = n;
      pos += 17;
      for (let i = 0; i < n; i++) {
        const k = rkeys[i] as RdmaRemoteKey;
        if (typeof k !== 'object' || k === null || !isInt(k.rkey, 0, 0xffffffff) || !isInt(k.devId, -0x80000000, 0x7fffffff)) throw MISMATCH;
        dv.setUint32(pos, k.rkey, true);
        dv.setInt32(pos + 4, k.devId, true);
        pos += 8;
      }
      return;
    }
  }
}

/** Encodes a value in 3FS's binary serde format, byte for byte what `hf3fs::serde::serialize` writes. */
export function encode3fs<S extends Schema>(schema: S, value: Infer<S>): Uint8Array {
  return encodeWith(encoderOf(schema as unknown as AnySchema), schema, value);
}

/** encode3fs by the generic schema walk: the reference the compiled encoders are tested against. */
export function encode3fsGeneric<S extends Schema>(schema: S, value: Infer<S>): Uint8Array {
  return encodeWith(null, schema, value);
}

function encodeWith(compiled: Enc | null, schema: Schema, value: unknown): Uint8Array {
  pos = 0;
  try {
    if (compiled === null) enc(schema as AnySchema, value);
    else compiled(value);
  } catch (e) {
    pos = 0;
    if (e === MISMATCH) {
      // Off the hot path: walk the value again to name the field that does not fit.
      validate(schema, value);
      throw new InvalidArgError('value does not fit its schema');
    }
    throw e;
  }
  // Not ArrayBuffer.slice: that costs 1.5-2× a fresh array and one set() (measured at 66 B and at 1 KiB).
  const out = scratchCopy(pos);
  pos = 0;
  if (buf.length > KEEP_SCRATCH_MAX) {
    setScratch(Buffer.allocUnsafeSlow(INITIAL_SCRATCH));
  }
  return out;
}

/**
 * encode3fs without the copy out, for a writer that copies the bytes into its frame at once (the 3fs envelope): the
 * result is a view of the encoder's scratch buffer, valid only until the next encode3fs / encode3fsTransient. Saves
 * the copy's allocation, which for a small message costs more than the encoding itself.
 */
export function encode3fsTransient<S extends Schema>(schema: S, value: Infer<S>): Uint8Array {
  const n = encode3fsScratch(schema, value);
  return new Uint8Array(buf.buffer, buf.byteOffset, n);
}

/**
 * encode3fs into the encoder's scratch only: returns the length, for copyScratch / scratchCopy to take the bytes
 * before the next encode. The 3fs envelope copies a small payload straight into its frame this way, without
 * making a view of the scratch first (a typed array per message).
 */
export function encode3fsScratch(schema: Schema, value: unknown): number {
  // The view of the previous call is dead by now: a scratch grown by one huge message is dropped here.
  if (buf.length > KEEP_SCRATCH_MAX) {
    setScratch(Buffer.allocUnsafeSlow(INITIAL_SCRATCH));
  }
  pos = 0;
  try {
    encoderOf(schema as unknown as AnySchema)(value);
  } catch (e) {
    pos = 0;
    if (e === MISMATCH) {
      validate(schema, value);
      throw new InvalidArgError('value does not fit its schema');
    }
    throw e;
  }
  const n = pos;
  pos = 0;
  return n;
}

/** Copies the first `n` bytes of the scratch (from encode3fsScratch) into `dst` at `at`. */
export function copyScratch(dst: Uint8Array, at: number, n: number): void {
  // Measured on Node 20: a byte loop wins up to ~32 bytes, a set() from a subarray of the standing view beyond.
  if (n <= 32) {
    const u = bufU8;
    for (let i = 0; i < n; i++) dst[at + i] = u[i] as number;
  } else {
    dst.set(bufU8.subarray(0, n), at);
  }
}

/** The first `n` bytes of the scratch (from encode3fsScratch) as an array of their own. */
export function scratchCopy(n: number): Uint8Array {
  const out = new Uint8Array(n);
  copyScratch(out, 0, n);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding: a cursor over the input with an end that tables narrow. Every read checks what is left first, so a
// short input is SerdeInsufficientLength (40) as in 3FS, never a RangeError; counts are capped by the bytes left.
// ---------------------------------------------------------------------------------------------------------------

interface Cursor {
  /** The input; its slice() copies (Buffer's does not, so bytes are sliced from a plain view when needed). */
  u: Uint8Array;
  /** A Buffer and a DataView over the input, made on first use: a small message often needs neither. */
  b: Buffer | null;
  v: DataView | null;
  p: number;
  end: number;
  /** Items of zero wire size (vector<Void>) this decode may still create: they cost memory but no input bytes. */
  zeroItems: number;
}

/** Per decode: zero-size items are legal 3FS but only a lying writer sends many, and nesting would multiply them. */
const MAX_ZERO_SIZE_ITEMS = 1 << 16;

function view(c: Cursor): DataView {
  if (c.v === null) c.v = new DataView(c.u.buffer, c.u.byteOffset, c.u.byteLength);
  return c.v;
}

function bufOf(c: Cursor): Buffer {
  if (c.b === null) c.b = Buffer.from(c.u.buffer, c.u.byteOffset, c.u.byteLength);
  return c.b;
}

function plain(c: Cursor): Uint8Array {
  return c.u.constructor === Uint8Array ? c.u : new Uint8Array(c.u.buffer, c.u.byteOffset, c.u.byteLength);
}

function short(c: Cursor, need: number | string, what: string): never {
  throw new SerdeInsufficientLengthError(`3fs decode: ${what} needs ${need} bytes but ${c.end - c.p} are left at offset ${c.p}`);
}

function need(c: Cursor, n: number, what: string): void {
  if (c.end - c.p < n) short(c, n, what);
}

function readVarint(c: Cursor, what: string): number {
  // Varint64 as 3FS reads it; values past 2^53 cannot be a length that fits in the input, so they fail as short.
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (c.p >= c.end) short(c, 'a terminated varint of', what);
    const byte = c.u[c.p++] as number;
    result += (byte & 0x7f) * mul;
    if (byte < 0x80) return result;
    mul *= 128;
  }
  throw new InvalidFormatError(`3fs decode: ${what} varint is longer than 10 bytes at offset ${c.p}`);
}

function readLength(c: Cursor, what: string): number {
  const n = readVarint(c, what);
  if (n > c.end - c.p) short(c, n, what);
  return n;
}

function readUtf8(c: Cursor, n: number): string {
  const b = c.u;
  const start = c.p;
  if (n < 32) {
    let out = '';
    let i = 0;
    for (; i < n; i++) {
      const ch = b[start + i] as number;
      if (ch >= 0x80) break;
      out += String.fromCharCode(ch);
    }
    if (i === n) {
      c.p = start + n;
      return out;
    }
  }
  const end = start + n;
  if (!isUtf8(b.subarray(start, end))) {
    throw new InvalidFormatError(`3fs decode: a string of ${n} bytes at offset ${start} is not valid UTF-8 (declare the field s.bytes to keep raw bytes)`);
  }
  c.p = end;
  return bufOf(c).toString('utf8', start, end);
}

/** Smallest number of bytes one value can take on the wire: caps a count by the bytes left. */
function minSize(sc: AnySchema, depth = 0): number {
  if (depth > 16) return 1;
  switch (sc.kind) {
    case 'void':
      return 0;
    case 'bool':
    case 'u8':
    case 'i8':
      return 1;
    case 'u16':
    case 'i16':
      return 2;
    case 'u32':
    case 'i32':
    case 'f32':
      return 4;
    case 'u64':
    case 'i64':
    case 'f64':
      return 8;
    case 'status':
      return 3;
    case 'pair':
      return minSize(sc.first as AnySchema, depth + 1) + minSize(sc.second as AnySchema, depth + 1);
    case 'enum':
      return minSize(sc.repr as AnySchema, depth + 1);
    case 'struct':
      return sc.levels.length;
    case 'lazy':
      return minSize(resolveLazy(sc) as AnySchema, depth + 1);
    case 'alias':
      return minSize(sc.of as AnySchema, depth + 1);
    case 'fixed':
      return sc.size;
    case 'rdmaRemoteBuf':
      return 17;
    case 'map':
      return 1;
    default:
      return 1;
  }
}

const minSizeCache = new WeakMap<object, number>();

/** Most items a count may announce: by the bytes left, or a per-decode budget for zero-size items (vector<Void>). */
function readCount(c: Cursor, item: AnySchema, item2: AnySchema | undefined, what: string): number {
  const n = readVarint(c, what);
  let min = minSizeCache.get(item2 ?? item);
  if (min === undefined) {
    min = minSize(item) + (item2 ? minSize(item2) : 0);
    minSizeCache.set(item2 ?? item, min);
  }
  const left = c.end - c.p;
  if (min === 0) {
    if (n > c.zeroItems) throw new InvalidFormatError(`3fs decode: ${what} of ${n} zero-size items exceeds the ${MAX_ZERO_SIZE_ITEMS} one message may hold`);
    c.zeroItems -= n;
  } else if (n > left / min) {
    short(c, n * min, `${what} of ${n} items`);
  }
  return n;
}

function readStatus(c: Cursor): StatusValue {
  need(c, 3, 'status');
  const code = view(c).getUint16(c.p, true);
  c.p += 2;
  const has = c.u[c.p++];
  if (has === 0) return { code, message: '' };
  const n = readLength(c, 'status message');
  return { code, message: readUtf8(c, n) };
}

function readTable(c: Cursor, sc: StructSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const levels = sc.levels;
  const outerEnd = c.end;
  for (let l = 0; l < levels.length; l++) {
    const fields = (levels[l] as StructSchema['levels'][number]).fields;
    const len = readLength(c, `table of ${sc.name}`);
    const tableEnd = c.p + len;
    c.end = tableEnd;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i] as StructSchema['fields'][number];
      // A shorter (older) table: the missing trailing fields keep their defaults (Serde.h:499-507).
      out[f.name] = c.p < tableEnd ? dec(c, f.type as AnySchema) : fieldDefault(f);
    }
    // Extra trailing bytes from a newer writer are skipped: the next table starts after `len`.
    c.p = tableEnd;
    c.end = outerEnd;
  }
  return out;
}

function dec(c: Cursor, sc: AnySchema): unknown {
  switch (sc.kind) {
    case 'bool':
      need(c, 1, 'bool');
      return c.u[c.p++] !== 0;
    case 'u8':
      need(c, 1, 'u8');
      return c.u[c.p++];
    case 'i8': {
      need(c, 1, 'i8');
      const x = view(c).getInt8(c.p);
      c.p += 1;
      return x;
    }
    case 'u16': {
      need(c, 2, 'u16');
      const x = view(c).getUint16(c.p, true);
      c.p += 2;
      return x;
    }
    case 'i16': {
      need(c, 2, 'i16');
      const x = view(c).getInt16(c.p, true);
      c.p += 2;
      return x;
    }
    case 'u32': {
      need(c, 4, 'u32');
      const x = view(c).getUint32(c.p, true);
      c.p += 4;
      return x;
    }
    case 'i32': {
      need(c, 4, 'i32');
      const x = view(c).getInt32(c.p, true);
      c.p += 4;
      return x;
    }
    case 'u64': {
      need(c, 8, 'u64');
      const x = view(c).getBigUint64(c.p, true);
      c.p += 8;
      return x;
    }
    case 'i64': {
      need(c, 8, 'i64');
      const x = view(c).getBigInt64(c.p, true);
      c.p += 8;
      return x;
    }
    case 'f32': {
      need(c, 4, 'f32');
      const x = view(c).getFloat32(c.p, true);
      c.p += 4;
      return x;
    }
    case 'f64': {
      need(c, 8, 'f64');
      const x = view(c).getFloat64(c.p, true);
      c.p += 8;
      return x;
    }
    case 'string': {
      const n = readLength(c, 'string');
      return readUtf8(c, n);
    }
    case 'bytes': {
      const n = readLength(c, 'bytes');
      // A copy: the input is usually a pooled frame buffer that is reused after the call.
      const out = plain(c).slice(c.p, c.p + n);
      c.p += n;
      return out;
    }
    case 'void':
      return null;
    case 'status':
      return readStatus(c);
    case 'vector':
    case 'set': {
      const of = sc.of as AnySchema;
      const n = readCount(c, of, undefined, sc.kind);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = dec(c, of);
      return out;
    }
    case 'map': {
      const k = sc.key as AnySchema;
      const val = sc.value as AnySchema;
      const n = readCount(c, k, val, 'map');
      const out = new Map();
      for (let i = 0; i < n; i++) {
        const key = dec(c, k);
        out.set(key, dec(c, val));
      }
      return out;
    }
    case 'pair': {
      const a = dec(c, sc.first as AnySchema);
      return [a, dec(c, sc.second as AnySchema)];
    }
    case 'optional':
      need(c, 1, 'optional flag');
      if (c.u[c.p++] === 0) return null;
      return boxesOptional(sc.of) ? { some: dec(c, sc.of as AnySchema) } : dec(c, sc.of as AnySchema);
    case 'result':
      need(c, 1, 'result flag');
      return c.u[c.p++] === 0 ? { error: readStatus(c) } : { ok: dec(c, sc.of as AnySchema) };
    case 'payload': {
      const n = readLength(c, 'payload');
      const outerEnd = c.end;
      const end = c.p + n;
      c.end = end;
      const out = dec(c, sc.of as AnySchema);
      c.p = end;
      c.end = outerEnd;
      return out;
    }
    case 'variant': {
      const n = readLength(c, 'variant tag');
      const tag = bufOf(c).toString('latin1', c.p, c.p + n);
      const at = c.p;
      c.p += n;
      for (const a of sc.alternatives) {
        if (a.tag === tag) return { tag: a.tag, value: dec(c, a.type as AnySchema) };
      }
      throw new SerdeVariantIndexExceededError(
        `3fs decode: variant tag ${JSON.stringify(tag.slice(0, 64))} at offset ${at} is not one of ${sc.alternatives.map((a) => a.tag).join(', ')}`,
      );
    }
    case 'enum':
      return dec(c, sc.repr as AnySchema);
    case 'struct':
      return readTable(c, sc);
    case 'lazy':
      return dec(c, resolveLazy(sc) as AnySchema);
    case 'alias':
      return dec(c, sc.of as AnySchema);
    case 'fixed': {
      need(c, sc.size, sc.name);
      const out = plain(c).slice(c.p, c.p + sc.size);
      c.p += sc.size;
      return out;
    }
    case 'rdmaRemoteBuf': {
      need(c, 17, 'RDMARemoteBuf');
      const addr = view(c).getBigUint64(c.p, true);
      const size = view(c).getBigUint64(c.p + 8, true);
      const n = c.u[c.p + 16] as number;
      c.p += 17;
      need(c, n * 8, 'RDMARemoteBuf rkeys');
      const rkeys: RdmaRemoteKey[] = new Array(n);
      for (let i = 0; i < n; i++) {
        rkeys[i] = { rkey: view(c).getUint32(c.p, true), devId: view(c).getInt32(c.p + 4, true) };
        c.p += 8;
      }
      return { addr, size, rkeys };
    }
  }
}

/**
 * Decodes 3FS binary serde. Errors are typed: SerdeInsufficientLengthError (40) for short input,
 * SerdeVariantIndexExceededError (42) for an unknown variant tag, InvalidFormatError otherwise. Bytes after the
 * value are ignored, as 3FS ignores them.
 */
export function decode3fs<S extends Schema>(schema: S, bytes: Uint8Array): Infer<S> {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgError('decode3fs: bytes must be a Uint8Array');
  return decodeRange(schema, bytes, 0, bytes.length) as Infer<S>;
}

/** decode3fs by the generic schema walk: the reference the compiled decoders are tested against. */
export function decode3fsGeneric<S extends Schema>(schema: S, bytes: Uint8Array): Infer<S> {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgError('decode3fs: bytes must be a Uint8Array');
  const c: Cursor = { u: bytes, b: Buffer.isBuffer(bytes) ? bytes : null, v: null, p: 0, end: bytes.length, zeroItems: MAX_ZERO_SIZE_ITEMS };
  try {
    return dec(c, schema as unknown as AnySchema) as Infer<S>;
  } catch (e) {
    if (e instanceof RangeError) {
      // Defence in depth: every read is bounds-checked first, so this means a bug; still never leak a RangeError.
      throw new InvalidFormatError(`3fs decode: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Compiled codecs. Each schema node is compiled once, on first use, into a closure specialised for it (cached in a
// WeakMap, since schema nodes are frozen): the per-value `switch (sc.kind)`, the repeated property reads of the
// schema and the per-field generic dispatch of the walk above are paid once instead of per message. Closures, not
// generated source: no schema string (field names, tags) ever becomes code. Every closure does what its case in
// enc()/dec() does, with the same checks in the same order, so bytes, values and errors are the walk's; the walk is
// kept as encode3fsGeneric/decode3fsGeneric, the reference the tests compare against.
// ---------------------------------------------------------------------------------------------------------------

type Enc = (v: unknown) => void;
type Dec = (c: Cursor) => unknown;

const encoders = new WeakMap<object, Enc>();
const decoders = new WeakMap<object, Dec>();

// One entry in front of each WeakMap: a connection mostly sends one message type after another, and a WeakMap
// lookup per message costs about as much as encoding a small struct.
let lastEncSchema: object | undefined;
let lastEnc: Enc | undefined;
let lastDecSchema: object | undefined;
let lastDec: Dec | undefined;

function encoderOf(sc: AnySchema): Enc {
  if (sc === lastEncSchema) return lastEnc as Enc;
  let e = encoders.get(sc);
  if (e === undefined) {
    e = compileEnc(sc);
    encoders.set(sc, e);
  }
  lastEncSchema = sc;
  lastEnc = e;
  return e;
}

function decoderOf(sc: AnySchema): Dec {
  if (sc === lastDecSchema) return lastDec as Dec;
  let d = decoders.get(sc);
  if (d === undefined) {
    d = compileDec(sc);
    decoders.set(sc, d);
  }
  lastDecSchema = sc;
  lastDec = d;
  return d;
}

const encBool: Enc = (v) => {
  if (typeof v !== 'boolean') throw MISMATCH;
  ensure(1);
  buf[pos++] = v ? 1 : 0;
};
const encU8: Enc = (v) => {
  if (!isInt(v, 0, 0xff)) throw MISMATCH;
  ensure(1);
  buf[pos++] = v;
};
const encI8: Enc = (v) => {
  if (!isInt(v, -0x80, 0x7f)) throw MISMATCH;
  ensure(1);
  buf[pos++] = v & 0xff;
};
const encU16: Enc = (v) => {
  if (!isInt(v, 0, 0xffff)) throw MISMATCH;
  ensure(2);
  buf[pos] = v;
  buf[pos + 1] = v >>> 8;
  pos += 2;
};
const encI16: Enc = (v) => {
  if (!isInt(v, -0x8000, 0x7fff)) throw MISMATCH;
  ensure(2);
  buf[pos] = v;
  buf[pos + 1] = v >>> 8;
  pos += 2;
};
const encU32: Enc = (v) => {
  if (!isInt(v, 0, 0xffffffff)) throw MISMATCH;
  ensure(4);
  dv.setUint32(pos, v, true);
  pos += 4;
};
const encI32: Enc = (v) => {
  if (!isInt(v, -0x80000000, 0x7fffffff)) throw MISMATCH;
  ensure(4);
  dv.setInt32(pos, v, true);
  pos += 4;
};
const encU64: Enc = (v) => {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw MISMATCH;
  ensure(8);
  dv.setBigUint64(pos, v, true);
  pos += 8;
};
const encI64: Enc = (v) => {
  if (typeof v !== 'bigint' || v < I64_MIN || v > I64_MAX) throw MISMATCH;
  ensure(8);
  dv.setBigInt64(pos, v, true);
  pos += 8;
};
const encF32: Enc = (v) => {
  if (typeof v !== 'number') throw MISMATCH;
  ensure(4);
  dv.setFloat32(pos, v, true);
  pos += 4;
};
const encF64: Enc = (v) => {
  if (typeof v !== 'number') throw MISMATCH;
  ensure(8);
  dv.setFloat64(pos, v, true);
  pos += 8;
};
const encString: Enc = (v) => {
  if (typeof v !== 'string') throw MISMATCH;
  writeString(v);
};
const encBytes: Enc = (v) => {
  if (!(v instanceof Uint8Array)) throw MISMATCH;
  writeBytes(v);
};
const encVoid: Enc = (v) => {
  if (v !== null && v !== undefined) throw MISMATCH;
};

function compileEnc(sc: AnySchema): Enc {
  switch (sc.kind) {
    case 'bool':
      return encBool;
    case 'u8':
      return encU8;
    case 'i8':
      return encI8;
    case 'u16':
      return encU16;
    case 'i16':
      return encI16;
    case 'u32':
      return encU32;
    case 'i32':
      return encI32;
    case 'u64':
      return encU64;
    case 'i64':
      return encI64;
    case 'f32':
      return encF32;
    case 'f64':
      return encF64;
    case 'string':
      return encString;
    case 'bytes':
      return encBytes;
    case 'void':
      return encVoid;
    case 'status':
      return writeStatus;
    case 'vector':
    case 'set': {
      const of = encoderOf(sc.of as AnySchema);
      return (v) => {
        if (!Array.isArray(v)) throw MISMATCH;
        writeVarint(v.length);
        for (let i = 0; i < v.length; i++) of(v[i]);
      };
    }
    case 'map': {
      const k = encoderOf(sc.key as AnySchema);
      const val = encoderOf(sc.value as AnySchema);
      return (v) => {
        if (!(v instanceof Map)) throw MISMATCH;
        writeVarint(v.size);
        for (const [key, value] of v) {
          k(key);
          val(value);
        }
      };
    }
    case 'pair': {
      const a = encoderOf(sc.first as AnySchema);
      const b = encoderOf(sc.second as AnySchema);
      return (v) => {
        if (!Array.isArray(v) || v.length !== 2) throw MISMATCH;
        a(v[0]);
        b(v[1]);
      };
    }
    case 'optional': {
      const of = encoderOf(sc.of as AnySchema);
      if (boxesOptional(sc.of)) {
        return (v) => {
          ensure(1);
          if (v === null || v === undefined) {
            buf[pos++] = 0;
            return;
          }
          buf[pos++] = 1;
          if (typeof v !== 'object' || !('some' in v)) throw MISMATCH;
          of((v as { some: unknown }).some);
        };
      }
      return (v) => {
        ensure(1);
        if (v === null || v === undefined) {
          buf[pos++] = 0;
          return;
        }
        buf[pos++] = 1;
        of(v);
      };
    }
    case 'result': {
      const of = encoderOf(sc.of as AnySchema);
      return (v) => {
        if (typeof v !== 'object' || v === null) throw MISMATCH;
        ensure(1);
        if ('ok' in v) {
          buf[pos++] = 1;
          of((v as { ok: unknown }).ok);
        } else if ('error' in v) {
          buf[pos++] = 0;
          writeStatus((v as { error: unknown }).error);
        } else {
          throw MISMATCH;
        }
      };
    }
    case 'payload': {
      const of = encoderOf(sc.of as AnySchema);
      return (v) => {
        const start = openLength();
        of(v);
        closeLength(start);
      };
    }
    case 'variant': {
      const tags = sc.alternatives.map((a) => a.tag);
      const encs = sc.alternatives.map((a) => encoderOf(a.type as AnySchema));
      return (v) => {
        if (typeof v !== 'object' || v === null) throw MISMATCH;
        const tag = (v as { tag?: unknown }).tag;
        for (let i = 0; i < tags.length; i++) {
          if (tags[i] === tag) {
            writeString(tag as string);
            (encs[i] as Enc)((v as { value?: unknown }).value);
            return;
          }
        }
        throw MISMATCH;
      };
    }
    case 'enum':
      return encoderOf(sc.repr as AnySchema);
    case 'struct':
      return compileStructEnc(sc);
    case 'lazy': {
      // Resolved on first use, not at compile time: a recursive schema reaches itself only through a lazy node.
      let inner: Enc | undefined;
      return (v) => {
        if (inner === undefined) inner = encoderOf(resolveLazy(sc) as AnySchema);
        inner(v);
      };
    }
    case 'alias':
      return encoderOf(sc.of as AnySchema);
    case 'fixed': {
      const size = sc.size;
      return (v) => {
        if (!(v instanceof Uint8Array) || v.length !== size) throw MISMATCH;
        ensure(size);
        buf.set(v, pos);
        pos += size;
      };
    }
    case 'rdmaRemoteBuf':
      return (v) => enc(sc, v);
  }
}

function compileStructEnc(sc: StructSchema): Enc {
  const levels = sc.levels.map((l) => ({
    names: l.fields.map((f) => f.name),
    encs: l.fields.map((f) => encoderOf(f.type as AnySchema)),
  }));
  if (levels.length === 1) {
    const { names, encs } = levels[0] as (typeof levels)[number];
    const n = names.length;
    if (n === 1) {
      const k0 = names[0] as string;
      const e0 = encs[0] as Enc;
      return (v) => {
        if (typeof v !== 'object' || v === null) throw MISMATCH;
        const start = openLength();
        e0((v as Record<string, unknown>)[k0]);
        closeLength(start);
      };
    }
    return (v) => {
      if (typeof v !== 'object' || v === null) throw MISMATCH;
      const obj = v as Record<string, unknown>;
      const start = openLength();
      for (let i = 0; i < n; i++) (encs[i] as Enc)(obj[names[i] as string]);
      closeLength(start);
    };
  }
  return (v) => {
    if (typeof v !== 'object' || v === null) throw MISMATCH;
    const obj = v as Record<string, unknown>;
    for (let l = 0; l < levels.length; l++) {
      const { names, encs } = levels[l] as (typeof levels)[number];
      const start = openLength();
      for (let i = 0; i < names.length; i++) (encs[i] as Enc)(obj[names[i] as string]);
      closeLength(start);
    }
  };
}

function readU16(c: Cursor): number {
  const b = c.u;
  const p = c.p;
  c.p = p + 2;
  return (b[p] as number) | ((b[p + 1] as number) << 8);
}

function readU32(c: Cursor): number {
  const b = c.u;
  const p = c.p;
  c.p = p + 4;
  return ((b[p] as number) | ((b[p + 1] as number) << 8) | ((b[p + 2] as number) << 16) | ((b[p + 3] as number) << 24)) >>> 0;
}

const decBool: Dec = (c) => {
  need(c, 1, 'bool');
  return c.u[c.p++] !== 0;
};
const decU8: Dec = (c) => {
  need(c, 1, 'u8');
  return c.u[c.p++];
};
const decI8: Dec = (c) => {
  need(c, 1, 'i8');
  return ((c.u[c.p++] as number) << 24) >> 24;
};
const decU16: Dec = (c) => {
  need(c, 2, 'u16');
  return readU16(c);
};
const decI16: Dec = (c) => {
  need(c, 2, 'i16');
  return (readU16(c) << 16) >> 16;
};
const decU32: Dec = (c) => {
  need(c, 4, 'u32');
  return readU32(c);
};
const decI32: Dec = (c) => {
  need(c, 4, 'i32');
  return readU32(c) | 0;
};
const decString: Dec = (c) => readUtf8(c, readLength(c, 'string'));
const decBytes: Dec = (c) => {
  const n = readLength(c, 'bytes');
  // A copy: the input is usually a pooled frame buffer that is reused after the call.
  let out: Uint8Array;
  if (n <= 64) {
    // Small arrays live on V8's heap: a byte loop beats making a view of the input to slice from.
    out = new Uint8Array(n);
    const u = c.u;
    const p = c.p;
    for (let i = 0; i < n; i++) out[i] = u[p + i] as number;
  } else {
    out = plain(c).slice(c.p, c.p + n);
  }
  c.p += n;
  return out;
};
const decVoid: Dec = () => null;

function compileDec(sc: AnySchema): Dec {
  switch (sc.kind) {
    case 'bool':
      return decBool;
    case 'u8':
      return decU8;
    case 'i8':
      return decI8;
    case 'u16':
      return decU16;
    case 'i16':
      return decI16;
    case 'u32':
      return decU32;
    case 'i32':
      return decI32;
    case 'string':
      return decString;
    case 'bytes':
      return decBytes;
    case 'void':
      return decVoid;
    case 'status':
      return readStatus;
    case 'u64':
    case 'i64':
    case 'f32':
    case 'f64':
    case 'rdmaRemoteBuf':
      // DataView reads either way: the walk's case is the specialised code already.
      return (c) => dec(c, sc);
    case 'vector':
    case 'set': {
      const item = sc.of as AnySchema;
      const of = decoderOf(item);
      const kind = sc.kind;
      return (c) => {
        const n = readCount(c, item, undefined, kind);
        const out = new Array(n);
        for (let i = 0; i < n; i++) out[i] = of(c);
        return out;
      };
    }
    case 'map': {
      const ks = sc.key as AnySchema;
      const vs = sc.value as AnySchema;
      const k = decoderOf(ks);
      const val = decoderOf(vs);
      return (c) => {
        const n = readCount(c, ks, vs, 'map');
        const out = new Map();
        for (let i = 0; i < n; i++) {
          const key = k(c);
          out.set(key, val(c));
        }
        return out;
      };
    }
    case 'pair': {
      const a = decoderOf(sc.first as AnySchema);
      const b = decoderOf(sc.second as AnySchema);
      return (c) => {
        const x = a(c);
        return [x, b(c)];
      };
    }
    case 'optional': {
      const of = decoderOf(sc.of as AnySchema);
      if (boxesOptional(sc.of)) {
        return (c) => {
          need(c, 1, 'optional flag');
          if (c.u[c.p++] === 0) return null;
          return { some: of(c) };
        };
      }
      return (c) => {
        need(c, 1, 'optional flag');
        if (c.u[c.p++] === 0) return null;
        return of(c);
      };
    }
    case 'result': {
      const of = decoderOf(sc.of as AnySchema);
      return (c) => {
        need(c, 1, 'result flag');
        return c.u[c.p++] === 0 ? { error: readStatus(c) } : { ok: of(c) };
      };
    }
    case 'payload': {
      const of = decoderOf(sc.of as AnySchema);
      return (c) => {
        const n = readLength(c, 'payload');
        const outerEnd = c.end;
        const end = c.p + n;
        c.end = end;
        const out = of(c);
        c.p = end;
        c.end = outerEnd;
        return out;
      };
    }
    case 'variant': {
      const alts = sc.alternatives;
      const decs = alts.map((a) => decoderOf(a.type as AnySchema));
      return (c) => {
        const n = readLength(c, 'variant tag');
        const tag = bufOf(c).toString('latin1', c.p, c.p + n);
        const at = c.p;
        c.p += n;
        for (let i = 0; i < alts.length; i++) {
          const a = alts[i] as (typeof alts)[number];
          if (a.tag === tag) return { tag: a.tag, value: (decs[i] as Dec)(c) };
        }
        throw new SerdeVariantIndexExceededError(
          `3fs decode: variant tag ${JSON.stringify(tag.slice(0, 64))} at offset ${at} is not one of ${alts.map((a) => a.tag).join(', ')}`,
        );
      };
    }
    case 'enum':
      return decoderOf(sc.repr as AnySchema);
    case 'struct':
      return compileStructDec(sc);
    case 'lazy': {
      let inner: Dec | undefined;
      return (c) => {
        if (inner === undefined) inner = decoderOf(resolveLazy(sc) as AnySchema);
        return inner(c);
      };
    }
    case 'alias':
      return decoderOf(sc.of as AnySchema);
    case 'fixed': {
      const size = sc.size;
      const name = sc.name;
      return (c) => {
        need(c, size, name);
        const out = plain(c).slice(c.p, c.p + size);
        c.p += size;
        return out;
      };
    }
  }
}

function compileStructDec(sc: StructSchema): Dec {
  const what = `table of ${sc.name}`;
  const levels = sc.levels.map((l) => ({
    fields: l.fields,
    names: l.fields.map((f) => f.name),
    decs: l.fields.map((f) => decoderOf(f.type as AnySchema)),
  }));
  if (levels.length === 1 && (levels[0] as (typeof levels)[number]).names.length === 1) {
    const { fields, names, decs } = levels[0] as (typeof levels)[number];
    const f0 = fields[0] as StructSchema['fields'][number];
    const k0 = names[0] as string;
    const d0 = decs[0] as Dec;
    return (c) => {
      const out: Record<string, unknown> = {};
      const outerEnd = c.end;
      const len = readLength(c, what);
      const tableEnd = c.p + len;
      c.end = tableEnd;
      out[k0] = c.p < tableEnd ? d0(c) : fieldDefault(f0);
      c.p = tableEnd;
      c.end = outerEnd;
      return out;
    };
  }
  return (c) => {
    const out: Record<string, unknown> = {};
    const outerEnd = c.end;
    for (let l = 0; l < levels.length; l++) {
      const { fields, names, decs } = levels[l] as (typeof levels)[number];
      const len = readLength(c, what);
      const tableEnd = c.p + len;
      c.end = tableEnd;
      for (let i = 0; i < names.length; i++) {
        // A shorter (older) table: the missing trailing fields keep their defaults (Serde.h:499-507).
        out[names[i] as string] = c.p < tableEnd ? (decs[i] as Dec)(c) : fieldDefault(fields[i] as StructSchema['fields'][number]);
      }
      // Extra trailing bytes from a newer writer are skipped: the next table starts after `len`.
      c.p = tableEnd;
      c.end = outerEnd;
    }
    return out;
  };
}

/** Cursors are reused (decoding is synchronous); a re-entrant decode (from a default factory) takes a fresh one. */
let spareCursor: Cursor | null = null;

/**
 * Decodes `bytes[start, end)` with the compiled decoder of `schema`: the entry for a value inside a larger buffer
 * (the 3fs envelope decodes a payload in the pass over its header, without a view of it). Offsets in error
 * messages are from the start of `bytes`.
 */
export function decodeRange(schema: Schema, bytes: Uint8Array, start: number, end: number): unknown {
  const d = decoderOf(schema as AnySchema);
  let c = spareCursor;
  spareCursor = null;
  if (c === null) c = { u: bytes, b: null, v: null, p: 0, end: 0, zeroItems: 0 };
  c.u = bytes;
  c.b = Buffer.isBuffer(bytes) ? bytes : null;
  c.v = null;
  c.p = start;
  c.end = end;
  c.zeroItems = MAX_ZERO_SIZE_ITEMS;
  try {
    return d(c);
  } catch (e) {
    if (e instanceof RangeError) {
      // Defence in depth: every read is bounds-checked first, so this means a bug; still never leak a RangeError.
      throw new InvalidFormatError(`3fs decode: ${e.message}`, { cause: e });
    }
    throw e;
  } finally {
    // Not kept alive by the spare cursor: the input is often a pooled frame.
    c.u = EMPTY_INPUT;
    c.b = null;
    c.v = null;
    spareCursor = c;
  }
}

const EMPTY_INPUT = new Uint8Array(0);
