import { addExtension, Packr } from 'msgpackr';
import { InvalidArgError } from './errors.js';
import { BIG_ENDIAN, bytesOf, copySwapped, elementSize, extensionBytes, readTyped, TYPED_EXT, viewCode } from './typed.js';
import { noteExtension } from './writer.js';

/**
 * The one msgpackr instance ffnet packs and unpacks with. Plain MessagePack only, so any msgpack
 * library can read what ffnet writes:
 * - `useRecords: false`: objects are maps, not msgpackr records (records need msgpackr on both ends).
 * - `int64AsType: 'auto'`: 64-bit integers decode as numbers when safe, else as bigint.
 * - `structuredClone: false`: a peer cannot send msgpackr's reference/pointer extensions.
 * Decoded `bin` values are views into the decoded buffer (no `copyBuffers`): see the README.
 */
export const packr = new Packr({
  useRecords: false,
  // Supported by msgpackr 1.12 but missing from its typings.
  int64AsType: 'auto' as 'bigint',
  structuredClone: false,
});

export interface ExtensionDef<T> {
  /** MessagePack extension type, 1-100 (msgpackr keeps 101-127 and 66 for itself; negatives are the spec's). */
  type: number;
  /** Values that are `instanceof Class` are written with this extension. */
  Class: new (
    ...args: never[]
  ) => T;
  /**
   * The extension's bytes for a value; another typed array or a DataView is taken as its own bytes. Must not
   * call into msgpackr's pack or encodeMessage itself.
   */
  write(value: T): Uint8Array;
  /** The value for an extension's bytes: a view into the received frame, copy it to keep it. */
  read(data: Buffer): T;
}

const registered = new Map<number, ExtensionDef<unknown>>();

type Allocate = (size: number) => { target: Uint8Array; position: number };

/**
 * msgpackr's own packing of views writes `byteLength` bytes of header and then `Uint8Array.set(view)`, which for
 * anything but bytes converts element values and leaves the rest of the bin as whatever its buffer held, and it
 * writes a DataView as an empty bin. This replaces it for every view: bytes (Buffer, Uint8Array and subclasses)
 * as the same `bin` as before, everything else as the 0x74 extension the fast writer writes (typed.ts).
 */
function packView(v: ArrayBufferView, allocate: Allocate): undefined {
  const n = v.byteLength;
  const bytes = bytesOf(v);
  if (v instanceof Uint8Array) {
    const head = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    const { target, position } = allocate(head + n);
    const p = writeHead(target, position, n, 0xc4);
    target.set(bytes, p);
    return;
  }
  const code = viewCode(v);
  const len = n + 1;
  const head = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
  const { target, position } = allocate(head + 2 + n);
  let p = writeHead(target, position, len, 0xc7);
  target[p++] = TYPED_EXT;
  target[p++] = code;
  const size = elementSize(code);
  if (BIG_ENDIAN && size > 1) copySwapped(target, p, bytes, 0, n, size);
  else target.set(bytes, p);
}

/** A bin (`first` 0xc4) or ext (0xc7) header of the 8-, 16- or 32-bit length form `len` needs. */
function writeHead(t: Uint8Array, p: number, len: number, first: number): number {
  if (len < 0x100) {
    t[p] = first;
    t[p + 1] = len;
    return p + 2;
  }
  if (len < 0x10000) {
    t[p] = first + 1;
    t[p + 1] = len >> 8;
    t[p + 2] = len & 0xff;
    return p + 3;
  }
  t[p] = first + 2;
  t[p + 1] = len >>> 24;
  t[p + 2] = len >>> 16;
  t[p + 3] = len >>> 8;
  t[p + 4] = len;
  return p + 5;
}

// msgpackr tries extension classes in order, the most recently added first: these come before its built-in view
// handling, and after them every registerExtension class, as the fast writer expects. The unpack side reads
// 0x74 with length checks and typed errors instead of msgpackr's own reader.
const TypedArray = Object.getPrototypeOf(Int8Array) as () => unknown;
for (const Class of [TypedArray, DataView]) {
  addExtension({ Class, type: TYPED_EXT, pack: packView as never, unpack: (data: Uint8Array) => readTyped(data) });
}

/**
 * Teach the codec a class of your own (for example an RDMA remote-buffer descriptor). This module is the
 * only one that calls msgpackr's process-wide `addExtension` (here, and for views above); each type id and
 * each class can be registered once. Both ends must register the same extensions.
 */
export function registerExtension<T>(def: ExtensionDef<T>): void {
  const { type, Class, write, read } = def;
  if (!Number.isInteger(type) || type < 1 || type > 100 || type === 0x42) {
    throw new InvalidArgError(`extension type ${type} is not in 1-100 (66 is taken by msgpackr)`);
  }
  if (typeof Class !== 'function' || typeof write !== 'function' || typeof read !== 'function') {
    throw new InvalidArgError(`extension ${type} needs Class, write and read functions`);
  }
  const taken = registered.get(type);
  if (taken) throw new InvalidArgError(`extension type ${type} is already registered for ${taken.Class.name}`);
  for (const other of registered.values()) {
    if (other.Class === Class) throw new InvalidArgError(`class ${Class.name} is already registered as extension ${other.type}`);
  }
  registered.set(type, def as ExtensionDef<unknown>);
  // A view other than bytes is taken as its bytes: msgpackr would write its element count and convert elements.
  const bytes = (value: T) => extensionBytes(write(value), type);
  noteExtension(Class, type, bytes as (value: never) => Uint8Array);
  addExtension({
    Class,
    type,
    pack: bytes,
    unpack: (data: Uint8Array) => read(data as Buffer),
  });
}
