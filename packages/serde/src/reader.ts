// The counterpart of writer.ts for decodeMessage: reads the envelope and the payload types most RPCs carry
// (plain maps with ASCII string keys, arrays, ASCII strings, integers up to 32 bits, float64, booleans, nil and
// bytes), giving exactly the values msgpackr gives for them. On anything else, or on anything malformed, it
// gives up and decodeMessage decodes the whole body with msgpackr, which also makes the errors: this reader
// never decides that input is bad, so the safety properties stay msgpackr's.

import { readTyped, TYPED_EXT } from './typed.js';
import { bufferView, deliveredBody } from './view.js';

/** Deeper than this is left to msgpackr. */
const MAX_DEPTH = 256;

/** Thrown inside the reader to give up. */
const BAIL = { bail: true };

// Scratch for float64 big-endian without a DataView per body.
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

class Reader {
  src: Buffer = Buffer.alloc(0);
  p = 0;
  end = 0;
  /** `src`'s ArrayBuffer and offset when known without reading them (view.ts): bin values are then made directly. */
  ab: ArrayBufferLike | undefined = undefined;
  base = 0;

  /** An unsigned integer field, or -1. */
  uint(): number {
    const b = this.src;
    const p = this.p;
    if (p >= this.end) return -1;
    const t = b[p]!;
    if (t < 0x80) {
      this.p = p + 1;
      return t;
    }
    switch (t) {
      case 0xcc:
        if (p + 2 > this.end) return -1;
        this.p = p + 2;
        return b[p + 1]!;
      case 0xcd:
        if (p + 3 > this.end) return -1;
        this.p = p + 3;
        return (b[p + 1]! << 8) | b[p + 2]!;
      case 0xce:
        if (p + 5 > this.end) return -1;
        this.p = p + 5;
        return ((b[p + 1]! << 24) | (b[p + 2]! << 16) | (b[p + 3]! << 8) | b[p + 4]!) >>> 0;
      default:
        return -1;
    }
  }

  value(depth: number): unknown {
    const b = this.src;
    let p = this.p;
    if (p >= this.end) throw BAIL;
    const t = b[p++]!;
    this.p = p;
    if (t < 0x80) return t;
    if (t < 0x90) return this.map(t & 0x0f, depth);
    if (t < 0xa0) return this.array(t & 0x0f, depth);
    if (t < 0xc0) return this.str(t & 0x1f);
    if (t >= 0xe0) return t - 0x100;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.len(1));
      case 0xc5:
        return this.bin(this.len(2));
      case 0xc6:
        return this.bin(this.len(4));
      case 0xc7:
        return this.ext(this.len(1));
      case 0xc8:
        return this.ext(this.len(2));
      case 0xc9:
        return this.ext(this.len(4));
      case 0xcb: {
        if (p + 8 > this.end) throw BAIL;
        for (let k = 0; k < 8; k++) F64_BYTES[BIG_ENDIAN ? k : 7 - k] = b[p + k]!;
        this.p = p + 8;
        return F64[0];
      }
      case 0xd4:
        // msgpackr's undefined (fixext 1, type 0, data 0), the payload slot of a request that has only metadata.
        if (p + 2 > this.end || b[p] !== 0 || b[p + 1] !== 0) throw BAIL;
        this.p = p + 2;
        return undefined;
      case 0xcc:
        return this.len(1);
      case 0xcd:
        return this.len(2);
      case 0xce:
        return this.len(4);
      case 0xd0:
        return (this.len(1) << 24) >> 24;
      case 0xd1:
        return (this.len(2) << 16) >> 16;
      case 0xd2:
        return this.len(4) | 0;
      case 0xd9:
        return this.str(this.len(1));
      case 0xda:
        return this.str(this.len(2));
      case 0xdb:
        return this.str(this.len(4));
      case 0xdc:
        return this.array(this.len(2), depth);
      case 0xdd:
        return this.array(this.len(4), depth);
      case 0xde:
        return this.map(this.len(2), depth);
      case 0xdf:
        return this.map(this.len(4), depth);
      default:
        // 64-bit integers, float32, fixext (undefined included), and 0xc1.
        throw BAIL;
    }
  }

  /** A big-endian unsigned length of `n` bytes. */
  len(n: number): number {
    const b = this.src;
    const p = this.p;
    if (p + n > this.end) throw BAIL;
    this.p = p + n;
    if (n === 1) return b[p]!;
    if (n === 2) return (b[p]! << 8) | b[p + 1]!;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  str(n: number): string {
    const b = this.src;
    const p = this.p;
    const e = p + n;
    if (e > this.end) throw BAIL;
    // ASCII only: msgpackr's own UTF-8 decoding is then trivially the same.
    let s = '';
    if (n < 16) {
      for (let i = p; i < e; i++) {
        const c = b[i]!;
        if (c >= 0x80) throw BAIL;
        s += String.fromCharCode(c);
      }
    } else {
      for (let i = p; i < e; i++) if (b[i]! >= 0x80) throw BAIL;
      s = b.toString('latin1', p, e);
    }
    this.p = e;
    return s;
  }

  /**
   * A short map key, from a cache of the keys seen before: the same string object each time, so V8 has it
   * internalized already and stores it into the object without looking it up (as msgpackr's key cache).
   */
  key(n: number): string {
    const b = this.src;
    const p = this.p;
    if (p + n > this.end) throw BAIL;
    const h = ((n << 5) ^ (n > 1 ? (b[p]! << 8) | b[p + 1]! : n > 0 ? b[p]! : 0) ^ (n > 2 ? b[p + n - 1]! << 3 : 0)) & 0xfff;
    const cached = KEYS[h];
    if (cached !== undefined && cached.length === n) {
      let i = 0;
      while (i < n && cached.charCodeAt(i) === b[p + i]) i++;
      if (i === n) {
        this.p = p + n;
        return cached;
      }
    }
    const s = this.str(n);
    KEYS[h] = s;
    return s;
  }

  bin(n: number): Buffer {
    const p = this.p;
    if (p + n > this.end) throw BAIL;
    this.p = p + n;
    const ab = this.ab;
    return ab !== undefined ? bufferView(ab, this.base + p, n) : this.src.subarray(p, p + n);
  }

  /** An extension of `n` data bytes: typed arrays only, the rest (and garbage, which readTyped throws on) is msgpackr's. */
  ext(n: number): unknown {
    const p = this.p;
    if (p + 1 + n > this.end || this.src[p] !== TYPED_EXT) throw BAIL;
    this.p = p + 1 + n;
    return readTyped(this.src, p + 1, n);
  }

  /** The metadata map: string keys to strings or bytes, into a Map; anything else is left to msgpackr. */
  metadata(): Map<string, string | Buffer> {
    const b = this.src;
    if (this.p >= this.end) throw BAIL;
    const t = b[this.p++]!;
    const n = t >= 0x80 && t < 0x90 ? t & 0x0f : t === 0xde ? this.len(2) : -1;
    if (n < 0 || n * 2 > this.end - this.p) throw BAIL;
    const md = new Map<string, string | Buffer>();
    for (let i = 0; i < n; i++) {
      const k = this.p < this.end ? b[this.p]! : 0;
      let key: string;
      if (k >= 0xa0 && k < 0xc0) {
        this.p++;
        key = this.key(k & 0x1f);
      } else if (k === 0xd9) {
        this.p++;
        key = this.str(this.len(1));
      } else {
        throw BAIL;
      }
      const v = this.value(MAX_DEPTH - 1);
      if (typeof v !== 'string' && !(v instanceof Uint8Array)) throw BAIL;
      // A repeated key is msgpackr's to resolve (the last one wins there too, but it decides).
      if (md.has(key)) throw BAIL;
      md.set(key, v as string | Buffer);
    }
    return md;
  }

  array(n: number, depth: number): unknown[] {
    if (depth >= MAX_DEPTH || n > this.end - this.p) throw BAIL;
    const a = new Array<unknown>(n);
    for (let i = 0; i < n; i++) a[i] = this.value(depth + 1);
    return a;
  }

  map(n: number, depth: number): Record<string, unknown> {
    if (depth >= MAX_DEPTH || n * 2 > this.end - this.p) throw BAIL;
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const b = this.src;
      const t = this.p < this.end ? b[this.p]! : 0;
      let key: string;
      if (t >= 0xa0 && t < 0xc0) {
        this.p++;
        key = this.key(t & 0x1f);
      } else if (t === 0xd9) {
        this.p++;
        key = this.str(this.len(1));
      } else {
        // Non-string keys are converted by msgpackr's rules.
        throw BAIL;
      }
      // As msgpackr: a key that could reach the prototype becomes a harmless own key.
      if (key === '__proto__') key = '__proto_';
      o[key] = this.value(depth + 1);
    }
    return o;
  }
}

const KEYS = new Array<string | undefined>(4096).fill(undefined);
const reader = new Reader();

/** The envelope as readEnvelope found it. Reused: decoding is synchronous. */
export interface EnvelopeFields {
  uuid: number;
  serviceId: number;
  methodId: number;
  flags: number;
  version: number;
  timeoutMs: number;
  /** Offset of the timestamps array, or -1 for nil. */
  timestampsAt: number;
  hasPayload: boolean;
  /** A response's Result tag (0 ok, else a status code) when read in place, else -1. */
  resultTag: number;
  payload: unknown;
  /** The metadata map when the body has the 9th field, else undefined. */
  metadata: Map<string, string | Buffer> | undefined;
}

export const envelope: EnvelopeFields = {
  uuid: 0,
  serviceId: 0,
  methodId: 0,
  flags: 0,
  version: 0,
  timeoutMs: 0,
  timestampsAt: -1,
  hasPayload: false,
  resultTag: -1,
  payload: undefined,
  metadata: undefined,
};

/**
 * Reads a body of exactly 7 or 8 envelope fields into `envelope`. False when the body holds anything it leaves
 * to msgpackr (or is malformed); `envelope` is then meaningless.
 */
export function readEnvelope(body: Buffer): boolean {
  const r = reader;
  r.src = body;
  r.p = 0;
  r.end = body.length;
  const at = deliveredBody;
  if (body === at.view) {
    r.ab = at.ab;
    r.base = at.offset;
  }
  try {
    const head = body.length > 0 ? body[0]! : 0;
    if (head !== 0x97 && head !== 0x98 && head !== 0x99) return false;
    r.p = 1;
    const e = envelope;
    e.uuid = r.uint();
    e.serviceId = r.uint();
    e.methodId = r.uint();
    e.flags = r.uint();
    e.version = r.uint();
    e.timeoutMs = r.uint();
    // uint() gives -1 for anything but a u32, and reads nothing more after that.
    if (e.timeoutMs < 0 || e.version < 0 || e.flags < 0 || e.methodId < 0 || e.serviceId < 0 || e.uuid < 0) return false;
    const ts = r.p < r.end ? body[r.p]! : -1;
    if (ts === 0xc0) {
      e.timestampsAt = -1;
      r.p++;
    } else if (ts === 0x98 && r.p + 73 <= r.end) {
      // Fixed width: 8 float64s, read by the caller.
      for (let i = 0; i < 8; i++) if (body[r.p + 1 + i * 9] !== 0xcb) return false;
      e.timestampsAt = r.p;
      r.p += 73;
    } else {
      return false;
    }
    e.hasPayload = head !== 0x97;
    e.metadata = undefined;
    e.resultTag = -1;
    if (!e.hasPayload) {
      e.payload = undefined;
    } else if ((e.flags & 1) === 0 && r.p < r.end && (body[r.p] === 0x91 || body[r.p] === 0x92)) {
      // A response's Result, [tag, value?]: read in place rather than as an array to unwrap.
      const n = body[r.p]! & 0x0f;
      r.p++;
      const tag = r.uint();
      if (tag < 0 || tag > 0xffff) return false;
      e.resultTag = tag;
      e.payload = n === 2 ? r.value(0) : undefined;
      if (tag !== 0 && (n !== 2 || typeof e.payload !== 'string')) return false;
    } else {
      e.payload = r.value(0);
    }
    if (head === 0x99) e.metadata = r.metadata();
    return r.p === r.end;
  } catch {
    // BAIL, or a stack overflow in a deep value: msgpackr gets the body and the final word.
    return false;
  } finally {
    r.src = EMPTY;
    r.ab = undefined;
  }
}

const EMPTY = Buffer.alloc(0);

/** The float64 at `at` (big-endian), as written in a timestamps slot. */
export function readF64(body: Uint8Array, at: number): number {
  for (let k = 0; k < 8; k++) F64_BYTES[BIG_ENDIAN ? k : 7 - k] = body[at + k]!;
  return F64[0]!;
}
