// Typed arrays and DataViews on the wire. A MessagePack `bin` has no element type, and copying a Float64Array
// into a byte buffer with Uint8Array.set converts element values, so anything but bytes travels as an
// extension that names its kind: ext type 0x74, data = kind code, then the elements' little-endian bytes.
// That is msgpackr's own form (`moreTypes`) with its codes, so msgpackr peers read it as well.
import { InvalidArgError, InvalidFormatError } from './errors.js';

/** The extension type ('t'); msgpackr keeps 101-127, and registerExtension only hands out 1-100. */
export const TYPED_EXT = 0x74;
/** Kind code of a DataView (msgpackr's; 16 is its ArrayBuffer). */
export const DATA_VIEW_CODE = 17;
const ARRAY_BUFFER_CODE = 16;

type ViewCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => ArrayBufferView;
type SizedCtor = ViewCtor & { new (length: number): ArrayBufferView; BYTES_PER_ELEMENT: number };

/** msgpackr's code order: the code of a kind is its index here. */
const KINDS: readonly SizedCtor[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
] as unknown as SizedCtor[];

const CODE_BY_NAME = new Map<string, number>(KINDS.map((k, i) => [k.name, i]));
/**
 * Exact constructors the fast writer writes as this extension; subclasses go through msgpackr (instanceof
 * order). Not Uint8Array: bytes stay a plain `bin`.
 */
export const CODE_BY_CTOR = new Map<unknown, number>([...KINDS.map((k, i) => [k, i] as const), [DataView, DATA_VIEW_CODE]]);
CODE_BY_CTOR.delete(Uint8Array);
/** Every constructor a view can have here, for the check against registered extension classes. */
export const VIEW_CTORS: readonly (abstract new (...args: never[]) => unknown)[] = [...(KINDS as unknown as ViewCtor[]), DataView];

export const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

// %TypedArray%.prototype[@@toStringTag] names the built-in kind of any typed array, subclass or not, and is
// undefined for everything else; a subclass cannot fake it.
const TYPED_ARRAY_PROTO = Object.getPrototypeOf(Int8Array.prototype) as object;
const kindTag = Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTO, Symbol.toStringTag)!.get! as (this: unknown) => string | undefined;

/**
 * The kind code of any typed array or DataView, subclasses included. Throws InvalidArgError for a kind this
 * wire form has no code for (Float16Array where the runtime has one), rather than send something else.
 */
export function viewCode(v: ArrayBufferView): number {
  const name = kindTag.call(v);
  if (name === undefined) {
    if (v instanceof DataView) return DATA_VIEW_CODE;
  } else {
    const code = CODE_BY_NAME.get(name);
    if (code !== undefined) return code;
  }
  throw new InvalidArgError(`cannot encode a ${name ?? v.constructor?.name ?? 'view'}: no wire form for this kind (see @ffnet/serde "Typed arrays")`);
}

/** Bytes per element of a kind code (1 for a DataView). */
export function elementSize(code: number): number {
  return code === DATA_VIEW_CODE ? 1 : KINDS[code]!.BYTES_PER_ELEMENT;
}

/** The view's own bytes, in memory order: exactly its byteLength bytes from its byteOffset. */
export function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Copies `n` bytes of elements of `size` bytes, reversing each element (native big-endian <-> little-endian). */
export function copySwapped(dst: Uint8Array, at: number, src: Uint8Array, from: number, n: number, size: number): void {
  for (let i = 0; i < n; i += size) for (let k = 0; k < size; k++) dst[at + i + k] = src[from + i + size - 1 - k]!;
}

/**
 * What an extension's `write` returned, as bytes: a Uint8Array as it is, another view as its own bytes (never
 * its elements converted to bytes). Anything else is refused.
 */
export function extensionBytes(data: unknown, type: number): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return bytesOf(data);
  throw new InvalidArgError(`extension ${type}: write must return a Uint8Array, got ${data === null ? 'null' : typeof data}`);
}

/**
 * The value for a 0x74 extension's data, `length` bytes of `data` from `start` (kind code, then little-endian
 * bytes). An aligned typed array or a
 * DataView is a view into `data`'s memory, as decoded bins are; a misaligned one is copied into fresh memory.
 * Garbage (empty, unknown code, a byte count that is not a whole number of elements) is an InvalidFormatError.
 */
export function readTyped(data: Uint8Array, start = 0, length = data.length - start): ArrayBufferView | ArrayBuffer {
  if (length < 1) throw new InvalidFormatError('typed-array extension without a kind code');
  const code = data[start]!;
  const n = length - 1;
  const from = data.byteOffset + start + 1;
  if (code === DATA_VIEW_CODE) return new DataView(data.buffer, from, n);
  if (code === ARRAY_BUFFER_CODE) return new Uint8Array(data.buffer, from, n).slice().buffer;
  const Kind = KINDS[code];
  if (Kind === undefined) throw new InvalidFormatError(`typed-array extension with unknown kind code ${code}`);
  const size = Kind.BYTES_PER_ELEMENT;
  if (n % size !== 0) throw new InvalidFormatError(`typed-array extension: ${n} bytes is not a whole number of ${Kind.name} elements`);
  if (size === 1 || (!BIG_ENDIAN && from % size === 0)) return new Kind(data.buffer, from, n / size);
  // A fresh ArrayBuffer is aligned for every kind (and measured cheaper here than `new Kind(count)`).
  const copy = new ArrayBuffer(n);
  const dst = new Uint8Array(copy);
  if (BIG_ENDIAN) copySwapped(dst, 0, data, start + 1, n, size);
  else dst.set(new Uint8Array(data.buffer, from, n));
  return new Kind(copy, 0, n / size);
}
