import { InvalidArgError, InvalidFormatError, MessageTooLargeError } from './errors.js';

/** A metadata value: text, or bytes (a Buffer decodes as a view into the frame, like payload bytes). */
export type MetadataValue = string | Uint8Array;

/**
 * Per-call metadata: auth tokens, trace context. Keys are lower-case HTTP token characters, so they mean the
 * same thing whoever spells them; the Map keeps insertion order, which is the order on the wire.
 */
export type Metadata = Map<string, MetadataValue>;

export interface MetadataLimits {
  /** Most entries in one message (default 64). */
  maxEntries?: number;
  /** Longest key in bytes (default 128). */
  maxKeyBytes?: number;
  /** Most bytes of keys and values together, UTF-8 for strings (default 8 KiB). */
  maxBytes?: number;
}

export const DEFAULT_METADATA_LIMITS: Readonly<Required<MetadataLimits>> = Object.freeze({ maxEntries: 64, maxKeyBytes: 128, maxBytes: 8 * 1024 });

// Lower-case tchar (RFC 9110): digits, a-z and !#$%&'*+-.^_`|~.
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TOKEN[c.charCodeAt(0)] = 1;

/** Whether `key` is a valid metadata key (length aside). */
export function isMetadataKey(key: string): boolean {
  if (key.length === 0 || key === '__proto__') return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return false;
  }
  return true;
}

function limitsOf(l: MetadataLimits | undefined): Required<MetadataLimits> {
  return l === undefined ? DEFAULT_METADATA_LIMITS : { ...DEFAULT_METADATA_LIMITS, ...l };
}

function valueBytes(v: MetadataValue): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.byteLength;
}

/**
 * Checks metadata about to be sent: a bad key or value is the caller's InvalidArgError, anything over the limits
 * a MessageTooLargeError, both before a byte is written.
 */
export function checkOutgoingMetadata(md: Metadata, limits: MetadataLimits | undefined, peer?: string): void {
  const l = limitsOf(limits);
  if (md.size > l.maxEntries) throw new MessageTooLargeError(`metadata has ${md.size} entries, above the limit of ${l.maxEntries}`, { peer });
  let total = 0;
  for (const [key, value] of md) {
    if (typeof key !== 'string' || !isMetadataKey(key)) throw new InvalidArgError(`metadata key ${JSON.stringify(String(key))} is not a lower-case token`);
    if (key.length > l.maxKeyBytes)
      throw new MessageTooLargeError(`metadata key ${key.slice(0, 32)}… is ${key.length} bytes, above the limit of ${l.maxKeyBytes}`, { peer });
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) throw new InvalidArgError(`metadata value of ${key} must be a string or a Uint8Array`);
    total += key.length + valueBytes(value);
  }
  if (total > l.maxBytes) throw new MessageTooLargeError(`metadata is ${total} bytes, above the limit of ${l.maxBytes}`, { peer });
}

/**
 * The metadata field of a received message (a MessagePack map, as msgpackr or the fast reader gave it) as a
 * Metadata, checked against `limits`. Malformed is an InvalidFormatError, over a limit a MessageTooLargeError.
 */
export function readIncomingMetadata(v: unknown, limits: MetadataLimits | undefined, peer: string | undefined): Metadata | undefined {
  if (v === null || v === undefined) return undefined;
  const l = limitsOf(limits);
  let entries: Iterable<[unknown, unknown]>;
  let size: number;
  if (v instanceof Map) {
    entries = v;
    size = v.size;
  } else if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) {
    const keys = Object.keys(v);
    size = keys.length;
    entries = keys.map((k) => [k, (v as Record<string, unknown>)[k]] as [unknown, unknown]);
  } else {
    throw new InvalidFormatError('malformed message envelope: metadata must be nil or a map', { peer });
  }
  if (size > l.maxEntries) throw new MessageTooLargeError(`received metadata has ${size} entries, above the limit of ${l.maxEntries}`, { peer });
  const md: Metadata = new Map();
  let total = 0;
  for (const [key, value] of entries) {
    if (typeof key !== 'string' || !isMetadataKey(key))
      throw new InvalidFormatError('malformed message envelope: a metadata key is not a lower-case token', { peer });
    if (key.length > l.maxKeyBytes)
      throw new MessageTooLargeError(`received metadata key is ${key.length} bytes, above the limit of ${l.maxKeyBytes}`, { peer });
    if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
      throw new InvalidFormatError(`malformed message envelope: metadata value of ${key} is neither a string nor bytes`, { peer });
    }
    total += key.length + valueBytes(value);
    if (total > l.maxBytes) throw new MessageTooLargeError(`received metadata is over the limit of ${l.maxBytes} bytes`, { peer });
    md.set(key, value);
  }
  return md;
}

function strHeader(n: number): Buffer {
  if (n < 0x20) return Buffer.from([0xa0 | n]);
  if (n < 0x100) return Buffer.from([0xd9, n]);
  return Buffer.from([0xda, n >> 8, n & 0xff]);
}

function binHeader(n: number): Buffer {
  if (n < 0x100) return Buffer.from([0xc4, n]);
  if (n < 0x10000) return Buffer.from([0xc5, n >> 8, n & 0xff]);
  return Buffer.from([0xc6, n >>> 24, n >>> 16, n >>> 8, n]);
}

/**
 * Checked metadata as its MessagePack map, the same bytes the frame writer writes. Only for frames whose payload
 * msgpackr packs; values within the limits keep every length under 64 KiB unless the caller raised them.
 */
export function encodeMetadata(md: Metadata): Buffer {
  const parts: Buffer[] = [md.size < 0x10 ? Buffer.from([0x80 | md.size]) : Buffer.from([0xde, md.size >> 8, md.size & 0xff])];
  for (const [key, v] of md) {
    for (const s of typeof v === 'string' ? [key, v] : [key]) {
      const bytes = Buffer.from(s, 'utf8');
      if (bytes.length >= 0x10000) parts.push(Buffer.from([0xdb, bytes.length >>> 24, bytes.length >>> 16, bytes.length >>> 8, bytes.length]));
      else parts.push(strHeader(bytes.length));
      parts.push(bytes);
    }
    if (typeof v !== 'string') parts.push(binHeader(v.byteLength), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  return Buffer.concat(parts);
}
