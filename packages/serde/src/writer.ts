// The frame writer behind encodeMessage: a bump allocator over an output slab, plus a MessagePack writer for
// the payload types most RPCs carry (plain objects, arrays, strings, numbers, booleans, null, undefined, bytes
// and registered extensions). For those it writes exactly the bytes msgpackr writes, so the wire has one
// behaviour; anything else makes it give up and the caller packs the payload with msgpackr instead.
//
// Why not msgpackr for everything: for a 64-byte message its per-call set-up, and the closure and object its
// binary path allocates per Buffer, cost more than the envelope, the CRC and the socket write together.
import { crc32c, crc32cBatched, crc32cRange, crc32cRanges } from './crc.js';
import { checksumWord, FRAME_HEADER_SIZE } from './frame.js';
import { BIG_ENDIAN, bytesOf, CODE_BY_CTOR, copySwapped, elementSize, TYPED_EXT, VIEW_CTORS } from './typed.js';

/** Thrown inside the writer: the value has a type this writer leaves to msgpackr. */
const BAIL = { bail: true };
/** Thrown inside the writer: the slab has no room left; the frame is started again in a bigger one. */
const OVERFLOW = { overflow: true };

const SLAB_SIZE = 64 * 1024;
/** A frame never starts with less room than this (everything but the largest payloads fits at once). */
const MIN_ROOM = 4096;
/** Deeper than this is left to msgpackr (which reports a stack overflow for cycles). */
const MAX_DEPTH = 256;

// Frames are views of the slab; bytes are never written twice, so a frame stays valid after the next encode.
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
/**
 * The slab's ArrayBuffer (its byteOffset is 0: allocUnsafeSlow gives each its own), kept rather than read back for
 * every frame view: a typed array's buffer and byteOffset getters cost ~17 and ~11 ns each here (Node 20).
 */
let slabBuffer: ArrayBufferLike = slab.buffer;
let pos = 0;
// The frame in progress.
let buf = slab;
let p = 0;
let start = 0;
/** Set when the frame carries large binaries by reference: its parts so far, and where the current slab run began. */
let parts: Uint8Array[] | undefined;
let runStart = 0;
let zeroCopyMin = Number.POSITIVE_INFINITY;

// What the writer may do itself, kept in step with the extensions registered in msgpackr (codec.ts).
let binaryOk = true;
let extensionsOk = true;
let typedOk = true;
const extensionTypes = new Map<unknown, { type: number; write(value: unknown): Uint8Array }>();
/** Bytes the frame needed when the slab overflowed. */
let overflowNeed = 0;

/**
 * Called by registerExtension. A class that Buffer instances match (`instanceof`) makes msgpackr use the
 * extension for bytes, so the writer stops writing bytes itself. Two related classes (one extends the other)
 * could make msgpackr pick another extension than the exact-class lookup here, so then every extension value
 * goes to msgpackr.
 */
export function noteExtension(Class: new (...args: never[]) => unknown, type: number, write: (value: never) => Uint8Array): void {
  if (Class === (Buffer as unknown) || Buffer.prototype instanceof Class) binaryOk = false;
  // A base class of the typed arrays (not one of them exactly, which the exact lookup finds) would win in msgpackr.
  if (VIEW_CTORS.some((X) => X.prototype instanceof Class)) typedOk = false;
  for (const other of extensionTypes.keys()) {
    const o = other as new (...args: never[]) => unknown;
    if (o.prototype instanceof Class || Class.prototype instanceof o) extensionsOk = false;
  }
  extensionTypes.set(Class, { type, write: write as (value: unknown) => Uint8Array });
}

/**
 * Begins a frame in the slab, its 8 header bytes reserved, with at least `room` bytes free. `attempt` > 0
 * after an overflow: the frame then starts in a fresh slab of at least twice what it needed when it overflowed.
 */
export function beginFrame(room: number, zeroCopyThreshold: number, attempt: number): void {
  const need = Math.max(room, MIN_ROOM);
  if (attempt > 0 || slab.length - pos < need) {
    newSlab(Math.max(SLAB_SIZE, need, attempt > 0 ? overflowNeed * 2 : 0));
  }
  buf = slab;
  start = pos;
  p = start + FRAME_HEADER_SIZE;
  parts = undefined;
  runStart = start;
  zeroCopyMin = zeroCopyThreshold;
}

/**
 * `n` bytes of the slab for a frame written by hand (the 3fs envelope), claimed at once. Frames of both envelopes
 * then lie back to back in one slab, so a batch of them leaves as one write instead of a writev of many pieces.
 * Not for use while a frame is in progress (encoding is synchronous, so it never is).
 */
export function claim(n: number): Uint8Array {
  // A big frame gets its own memory rather than a slab it would mostly fill and then pin.
  if (n > SLAB_SIZE / 4) return Buffer.allocUnsafeSlow(n);
  if (slab.length - pos < n) newSlab(SLAB_SIZE);
  const v = new Uint8Array(slabBuffer, pos, n);
  pos += n;
  return v;
}

function newSlab(size: number): void {
  slab = Buffer.allocUnsafeSlow(size);
  slabBuffer = slab.buffer;
  pos = 0;
}

/** The slab and offset of the frame in progress, for the envelope fields written by hand. */
export function target(): Buffer {
  return buf;
}
export function offset(): number {
  return p;
}
export function setOffset(at: number): void {
  p = at;
}

/**
 * Writes `v` as MessagePack. Returns false (having written nothing that matters) when it holds a type left
 * to msgpackr; throws OVERFLOW when the slab is full.
 */
export function writePayload(v: unknown): boolean {
  try {
    p = value(buf, p, v, 0);
    return true;
  } catch (e) {
    if (e === OVERFLOW) throw e;
    // BAIL, or anything a getter or an extension's write threw: msgpackr then reproduces the outcome.
    return false;
  }
}

/**
 * Writes checked metadata (checkOutgoingMetadata) as a MessagePack map of strings to strings or bytes; throws
 * OVERFLOW when the slab is full, as writePayload.
 */
export function writeMetadata(md: ReadonlyMap<string, string | Uint8Array>): void {
  let q = p;
  const b = buf;
  const n = md.size;
  if (q + 3 > b.length) overflow(q + 3);
  if (n < 0x10) {
    b[q++] = 0x80 | n;
  } else {
    b[q] = 0xde;
    b[q + 1] = n >> 8;
    b[q + 2] = n & 0xff;
    q += 3;
  }
  for (const [key, v] of md) {
    q = str(b, q, key);
    q = typeof v === 'string' ? str(b, q, v) : bin(b, q, v);
  }
  p = q;
}

export function isOverflow(e: unknown): boolean {
  return e === OVERFLOW;
}

/** Drops the frame in progress (the payload went to msgpackr after all). */
export function abandonFrame(): void {
  parts = undefined;
}

/**
 * Seals the frame (size and CRC into the reserved header, `compressed` clear) and claims its bytes. Returns
 * one view (a Buffer if `asBuffer`), or the parts in order when large binaries were taken by reference.
 * `sealNow` false leaves a one-view frame's checksum to sealPendingFrames() (see LATE_SEAL): its checksum word is 0 until then.
 */
export function finishFrame(asBuffer: boolean, sealNow = true): Uint8Array | Uint8Array[] {
  const b = buf;
  const end = p;
  const s = slab;
  // A slab grown for one big frame goes with that frame; the next one starts a fresh slab of the usual size.
  pos = s.length > SLAB_SIZE ? s.length : end;
  const more = parts;
  if (more === undefined) {
    // A plain Uint8Array view is half the cost of a Buffer one; only encodeMessage promises a Buffer.
    const frame = asBuffer ? b.subarray(start, end) : new Uint8Array(slabBuffer, start, end - start);
    if (sealNow || !LATE_SEAL) seal(frame, crc32cRange(frame, FRAME_HEADER_SIZE, frame.length), frame.length - FRAME_HEADER_SIZE);
    else leaveUnsealed(frame, b, start, end);
    return frame;
  }
  parts = undefined;
  if (end > runStart) more.push(new Uint8Array(slabBuffer, runStart, end - runStart));
  const first = more[0]!;
  let crc = crc32cRange(first, FRAME_HEADER_SIZE, first.length);
  let size = first.length - FRAME_HEADER_SIZE;
  for (let i = 1; i < more.length; i++) {
    const part = more[i]!;
    crc = crc32c(part, crc);
    size += part.length;
  }
  seal(first, crc, size);
  return more;
}

/**
 * Frames are left unsealed only where sealPendingFrames() checksums a batch in one native call; elsewhere that
 * would cost what sealing each one does, so they are sealed at once.
 */
const LATE_SEAL = crc32cBatched();
/** At most this many frames wait for their checksum; the next one seals them first. */
const SEAL_BATCH = 128;
/**
 * The frames left unsealed, all in `pendingSlab`: their body ranges in it (pairs), and the CRCs. Kept here,
 * where the offsets are at hand, rather than read back from each frame's view (a typed array's buffer and
 * byteOffset getters cost more than the checksum of a small frame).
 */
const pendingRanges = new Int32Array(2 * SEAL_BATCH);
const pendingCrcs = new Int32Array(SEAL_BATCH);
let pendingCount = 0;
let pendingSlab: Buffer | undefined;

/** Leaves the frame at `slab[at..end)` for sealPendingFrames(): its size now, its checksum word 0 until then. */
function leaveUnsealed(frame: Uint8Array, slabBuf: Buffer, at: number, end: number): void {
  if (pendingCount === SEAL_BATCH || (pendingCount > 0 && pendingSlab !== slabBuf)) sealPendingFrames();
  writeHeader(frame, 0, end - at - FRAME_HEADER_SIZE);
  pendingSlab = slabBuf;
  pendingRanges[2 * pendingCount] = at + FRAME_HEADER_SIZE;
  pendingRanges[2 * pendingCount + 1] = end;
  pendingCount++;
}

/**
 * Writes the checksum of every frame encodeMessageUnsealed() left unsealed, in one call. Transport does this
 * right before a write that carries such frames, and before it hands one back unsent. Sealing a frame early is
 * harmless, so one call seals them all, whichever connection each is queued on. Synchronous: nothing can
 * encode in between.
 */
export function sealPendingFrames(): void {
  const n = pendingCount;
  if (n === 0) return;
  const s = pendingSlab!;
  pendingCount = 0;
  pendingSlab = undefined;
  // One frame (a call alone in flight): the single-range call is the cheaper one.
  if (n === 1) pendingCrcs[0] = crc32cRange(s, pendingRanges[0]!, pendingRanges[1]!);
  else crc32cRanges(s, pendingRanges, n, pendingCrcs);
  for (let i = 0; i < n; i++) {
    const at = pendingRanges[2 * i]! - FRAME_HEADER_SIZE;
    const word = checksumWord(pendingCrcs[i]!, false);
    s[at] = word;
    s[at + 1] = word >>> 8;
    s[at + 2] = word >>> 16;
    s[at + 3] = word >>> 24;
  }
}

function seal(head: Uint8Array, crc: number, size: number): void {
  writeHeader(head, checksumWord(crc, false), size);
}

function writeHeader(head: Uint8Array, word: number, size: number): void {
  head[0] = word;
  head[1] = word >>> 8;
  head[2] = word >>> 16;
  head[3] = word >>> 24;
  head[4] = size;
  head[5] = size >>> 8;
  head[6] = size >>> 16;
  head[7] = size >>> 24;
}

// The writers below take the buffer and offset as arguments and return the new offset: the hot path then
// runs on locals rather than module state.

function overflow(at: number): never {
  overflowNeed = at - start;
  throw OVERFLOW;
}

function value(b: Buffer, p: number, v: unknown, depth: number): number {
  switch (typeof v) {
    case 'string':
      return str(b, p, v);
    case 'number':
      return num(b, p, v);
    case 'boolean':
      if (p + 1 > b.length) overflow(p + 1);
      b[p] = v ? 0xc3 : 0xc2;
      return p + 1;
    case 'undefined':
      // msgpackr's convention for undefined: fixext 1, type 0, data 0.
      if (p + 3 > b.length) overflow(p + 3);
      b[p] = 0xd4;
      b[p + 1] = 0;
      b[p + 2] = 0;
      return p + 3;
    case 'object': {
      if (v === null) {
        if (p + 1 > b.length) overflow(p + 1);
        b[p] = 0xc0;
        return p + 1;
      }
      if (depth > MAX_DEPTH) throw BAIL;
      const c = (v as { constructor?: unknown }).constructor;
      if (c === Object) return map(b, p, v as Record<string, unknown>, depth);
      if (c === Array) return array(b, p, v as unknown[], depth);
      if ((c === Buffer || c === Uint8Array) && binaryOk) return bin(b, p, v as Uint8Array);
      const ext = extensionsOk ? extensionTypes.get(c) : undefined;
      if (ext !== undefined) return extension(b, p, ext.type, ext.write(v));
      // Other typed arrays and DataView by exact class; subclasses are left to msgpackr's instanceof order.
      const code = typedOk ? CODE_BY_CTOR.get(c) : undefined;
      if (code === undefined) throw BAIL;
      return typed(b, p, v as ArrayBufferView, code);
    }
    default:
      throw BAIL;
  }
}

function map(b: Buffer, p: number, o: Record<string, unknown>, depth: number): number {
  // map16 always, count patched afterwards: what msgpackr writes for objects without variableMapSize.
  if (p + 3 > b.length) overflow(p + 3);
  b[p] = 0xde;
  const at = p + 1;
  p += 3;
  let n = 0;
  for (const key in o) {
    // The same own-key test as msgpackr, an own `hasOwnProperty` included.
    // biome-ignore lint/suspicious/noPrototypeBuiltins: msgpackr calls the object's own hasOwnProperty
    if (typeof o.hasOwnProperty !== 'function' || o.hasOwnProperty(key)) {
      p = str(b, p, key);
      p = value(b, p, o[key], depth + 1);
      n++;
    }
  }
  if (n > 0xffff) throw BAIL;
  b[at] = n >> 8;
  b[at + 1] = n & 0xff;
  return p;
}

function array(b: Buffer, p: number, a: unknown[], depth: number): number {
  const n = a.length;
  if (p + 5 > b.length) overflow(p + 5);
  if (n < 0x10) {
    b[p++] = 0x90 | n;
  } else if (n < 0x10000) {
    b[p] = 0xdc;
    b[p + 1] = n >> 8;
    b[p + 2] = n & 0xff;
    p += 3;
  } else {
    b[p] = 0xdd;
    p = u32(b, p + 1, n);
  }
  for (let i = 0; i < n; i++) p = value(b, p, a[i], depth + 1);
  return p;
}

function num(b: Buffer, p: number, v: number): number {
  if (p + 9 > b.length) overflow(p + 9);
  if (v >>> 0 === v) {
    if (v < 0x80) {
      b[p] = v;
      return p + 1;
    }
    if (v < 0x100) {
      b[p] = 0xcc;
      b[p + 1] = v;
      return p + 2;
    }
    if (v < 0x10000) {
      b[p] = 0xcd;
      b[p + 1] = v >> 8;
      b[p + 2] = v & 0xff;
      return p + 3;
    }
    b[p] = 0xce;
    return u32(b, p + 1, v);
  }
  if (v >> 0 === v) {
    if (v >= -0x20) {
      b[p] = 0x100 + v;
      return p + 1;
    }
    if (v >= -0x80) {
      b[p] = 0xd0;
      b[p + 1] = v + 0x100;
      return p + 2;
    }
    if (v >= -0x8000) {
      b[p] = 0xd1;
      b[p + 1] = (v >> 8) & 0xff;
      b[p + 2] = v & 0xff;
      return p + 3;
    }
    b[p] = 0xd2;
    return u32(b, p + 1, v >>> 0);
  }
  // Everything else, 64-bit integers included, is a float64 (msgpackr without useFloat32).
  b[p] = 0xcb;
  F64[0] = v;
  for (let k = 0; k < 8; k++) b[p + 1 + k] = F64_BYTES[BIG_ENDIAN ? k : 7 - k]!;
  return p + 9;
}

function u32(b: Buffer, at: number, v: number): number {
  b[at] = v >>> 24;
  b[at + 1] = v >>> 16;
  b[at + 2] = v >>> 8;
  b[at + 3] = v;
  return at + 4;
}

function str(b: Buffer, p: number, s: string): number {
  const n = s.length;
  let header: number;
  let len: number;
  if (n < 0x40) {
    // Short strings in JS, as msgpackr does (a lone surrogate becomes its 3-byte form, as there).
    header = n < 0x20 ? 1 : 2;
    if (p + header + n * 3 > b.length) overflow(p + header + n * 3);
    let q = p + header;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        b[q++] = c;
      } else if (c < 0x800) {
        b[q++] = (c >> 6) | 0xc0;
        b[q++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xfc00) === 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x03ff) << 10) + (s.charCodeAt(i + 1) & 0x03ff);
        i++;
        b[q++] = (c >> 18) | 0xf0;
        b[q++] = ((c >> 12) & 0x3f) | 0x80;
        b[q++] = ((c >> 6) & 0x3f) | 0x80;
        b[q++] = (c & 0x3f) | 0x80;
      } else {
        b[q++] = (c >> 12) | 0xe0;
        b[q++] = ((c >> 6) & 0x3f) | 0x80;
        b[q++] = (c & 0x3f) | 0x80;
      }
    }
    len = q - p - header;
  } else {
    header = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    if (p + header + n * 3 > b.length) overflow(p + header + n * 3);
    len = b.write(s, p + header, 'utf8');
  }
  // The header was sized from the UTF-16 length; move the bytes if the UTF-8 length needs a longer one.
  if (len < 0x20) {
    b[p++] = 0xa0 | len;
  } else if (len < 0x100) {
    if (header < 2) b.copyWithin(p + 2, p + 1, p + 1 + len);
    b[p] = 0xd9;
    b[p + 1] = len;
    p += 2;
  } else if (len < 0x10000) {
    if (header < 3) b.copyWithin(p + 3, p + header, p + header + len);
    b[p] = 0xda;
    b[p + 1] = len >> 8;
    b[p + 2] = len & 0xff;
    p += 3;
  } else {
    if (header < 5) b.copyWithin(p + 5, p + header, p + header + len);
    b[p] = 0xdb;
    p = u32(b, p + 1, len);
  }
  return p + len;
}

function bin(b: Buffer, p: number, v: Uint8Array): number {
  // length, not byteLength: the same for bytes, and inlined where byteLength is a call.
  const n = v.length;
  if (p + 5 > b.length) overflow(p + 5);
  if (n < 0x100) {
    b[p] = 0xc4;
    b[p + 1] = n;
    p += 2;
  } else if (n < 0x10000) {
    b[p] = 0xc5;
    b[p + 1] = n >> 8;
    b[p + 2] = n & 0xff;
    p += 3;
  } else {
    b[p] = 0xc6;
    p = u32(b, p + 1, n);
  }
  if (n >= zeroCopyMin) return byReference(b, p, v);
  if (p + n > b.length) overflow(p + n);
  b.set(v, p);
  return p + n;
}

/** Sends `bytes` by reference, next to the slab bytes around it: the frame becomes a list of parts. */
function byReference(b: Buffer, p: number, bytes: Uint8Array): number {
  parts ??= [];
  parts.push(new Uint8Array(slabBuffer, runStart, p - runStart), bytes);
  runStart = p;
  return p;
}

/**
 * A typed array other than Uint8Array, or a DataView: ext 0x74, kind code, little-endian element bytes, in the
 * header forms msgpackr uses for it. Its bytes are taken as bytes; `Uint8Array.set` would convert elements.
 */
function typed(b: Buffer, p: number, v: ArrayBufferView, code: number): number {
  const n = v.byteLength;
  const len = n + 1;
  if (p + 7 > b.length) overflow(p + 7);
  if (len < 0x100) {
    b[p] = 0xc7;
    b[p + 1] = len;
    p += 2;
  } else if (len < 0x10000) {
    b[p] = 0xc8;
    b[p + 1] = len >> 8;
    b[p + 2] = len & 0xff;
    p += 3;
  } else {
    b[p] = 0xc9;
    p = u32(b, p + 1, len);
  }
  b[p] = TYPED_EXT;
  b[p + 1] = code;
  p += 2;
  const size = elementSize(code);
  if (BIG_ENDIAN && size > 1) {
    if (p + n > b.length) overflow(p + n);
    copySwapped(b, p, bytesOf(v), 0, n, size);
    return p + n;
  }
  if (n >= zeroCopyMin) return byReference(b, p, bytesOf(v));
  if (p + n > b.length) overflow(p + n);
  b.set(bytesOf(v), p);
  return p + n;
}

/** `data` is what extensionBytes (typed.ts) made of the extension's write: always bytes. */
function extension(b: Buffer, p: number, type: number, data: Uint8Array): number {
  const n = data.length;
  if (p + 6 + n > b.length) overflow(p + 6 + n);
  switch (n) {
    case 1:
      b[p++] = 0xd4;
      break;
    case 2:
      b[p++] = 0xd5;
      break;
    case 4:
      b[p++] = 0xd6;
      break;
    case 8:
      b[p++] = 0xd7;
      break;
    case 16:
      b[p++] = 0xd8;
      break;
    default:
      if (n < 0x100) {
        b[p++] = 0xc7;
        b[p++] = n;
      } else if (n < 0x10000) {
        b[p++] = 0xc8;
        b[p++] = n >> 8;
        b[p++] = n & 0xff;
      } else {
        b[p++] = 0xc9;
        p = u32(b, p, n);
      }
  }
  b[p++] = type;
  b.set(data, p);
  return p + n;
}

// Scratch for float64 big-endian without DataView or Buffer's argument checks.
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
