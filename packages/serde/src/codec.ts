import { Packr, addExtension } from 'msgpackr';
import { InvalidArgError } from './errors.js';
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
  Class: new (...args: never[]) => T;
  /** The extension's bytes for a value. Must not call into msgpackr's pack or encodeMessage itself. */
  write(value: T): Uint8Array;
  /** The value for an extension's bytes: a view into the received frame, copy it to keep it. */
  read(data: Buffer): T;
}

const registered = new Map<number, ExtensionDef<unknown>>();

/**
 * Teach the codec a class of your own (for example an RDMA remote-buffer descriptor). This is the only
 * place ffnet calls msgpackr's process-wide `addExtension`; each type id and each class can be
 * registered once. Both ends must register the same extensions.
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
  noteExtension(Class, type, write as (value: never) => Uint8Array);
  addExtension({
    Class,
    type,
    pack: (value: T) => write(value),
    unpack: (data: Uint8Array) => read(data as Buffer),
  });
}
