import { RESERVE_START_SPACE } from 'msgpackr';
import { packr } from './codec.js';
import { zstdCompress, zstdDecompress } from './compress.js';
import { InvalidArgError, InvalidFormatError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_SIZE, FRAME_HEADER_SIZE, sealFrame } from './frame.js';
import { checkOutgoingMetadata, encodeMetadata, type Metadata, type MetadataLimits, readIncomingMetadata } from './metadata.js';
import { envelope, readEnvelope, readF64 } from './reader.js';
import { abandonFrame, beginFrame, finishFrame, isOverflow, offset, setOffset, target, writeMetadata, writePayload } from './writer.js';

export const MessageFlags = { IsReq: 1, UseCompress: 2, ControlRDMA: 4 } as const;

/** Microseconds since the epoch for each hop of a call; 0 means not set. */
export interface Timestamps {
  clientCalled: number;
  clientSerialized: number;
  serverReceived: number;
  serverWaked: number;
  serverProcessed: number;
  serverSerialized: number;
  clientReceived: number;
  clientWaked: number;
}

export interface MessagePacket<P = unknown> {
  /** Request id chosen by the client; the response echoes it. A safe integer. */
  uuid: number;
  serviceId: number;
  methodId: number;
  /** MessageFlags bits; IsReq says whether `payload` is a request or a Result. */
  flags: number;
  version: number;
  /** The caller's remaining deadline in ms, 0 = none (ffnet extension; fractions round up). */
  timeoutMs: number;
  /** A request: the request value. A response: a `Result`. */
  payload: P;
  timestamps?: Timestamps | undefined;
  /**
   * Request or response metadata (ffnet extension, envelope field 8). Absent or empty writes nothing, so such a
   * message is byte-for-byte what it was before metadata existed.
   */
  metadata?: Metadata | undefined;
  /**
   * 3fs envelope only: the request's u64 uuid and Version (u8 major, minor, patch, u32 hash) as received, 15 bytes
   * little-endian, when they do not fit `uuid` and `version`; a response carrying it echoes them exactly.
   */
  echo?: Uint8Array | undefined;
}

export type Result<T> = { ok: true; value: T } | { ok: false; code: number; message: string };

export function okResult<T>(value: T): Result<T> {
  return { ok: true, value };
}

/** An error Result; `code` is a StatusCode (non-zero u16). */
export function errResult(code: number, message: string): Result<never> {
  return { ok: false, code, message };
}

export interface EncodeOptions {
  /** Compress bodies of at least this many bytes (default Infinity: never). */
  compressionThreshold?: number;
  /** zstd level (default 1, as 3FS's response compression). */
  compressionLevel?: number;
  /**
   * encodeMessageParts only: a Buffer/Uint8Array of at least this many bytes in the payload is not copied but
   * becomes a part of the frame of its own (default 64 KiB; Infinity copies everything).
   */
  zeroCopyThreshold?: number;
  /** Limits the packet's metadata must keep (defaults DEFAULT_METADATA_LIMITS); over them is a MessageTooLargeError. */
  metadataLimits?: MetadataLimits;
}

/** A frame as one buffer, or as parts to be sent back to back (what Transport.send takes). */
export type FrameParts = Uint8Array | Uint8Array[];

/** Payload binaries from this size on are sent by reference by encodeMessageParts. */
export const DEFAULT_ZERO_COPY_THRESHOLD = 64 * 1024;

export interface DecodeOptions {
  /** Largest decompressed body accepted (exclusive), default 512 MiB. */
  maxMessageSize?: number;
  /** For error messages. */
  peer?: string;
  /** Limits received metadata must keep (defaults DEFAULT_METADATA_LIMITS); over them is a MessageTooLargeError. */
  metadataLimits?: MetadataLimits;
}

/** Wall-clock microseconds since the epoch, for Timestamps. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

// Envelope layout (a MessagePack array, README "Wire format"):
//   [uuid, serviceId, methodId, flags, version, timeoutMs, timestamps | nil, payload?, metadata?]
// Everything before the payload is written here, into space msgpackr reserves in front of the packed
// payload together with the 8 frame-header bytes, so a frame is built without a copy and the
// timestamp can be stamped at a fixed offset just before the CRC.
const ENVELOPE_FIELDS = 8;
/** With metadata: the payload slot is always written (undefined as msgpackr's fixext), the map after it. */
const METADATA_FIELDS = 9;
/** The order both envelopes carry a call's timestamps in (3FS's MessagePacket::Timestamp fields). */
export const TIMESTAMP_KEYS = [
  'clientCalled',
  'clientSerialized',
  'serverReceived',
  'serverWaked',
  'serverProcessed',
  'serverSerialized',
  'clientReceived',
  'clientWaked',
] as const satisfies readonly (keyof Timestamps)[];
/** An all-zero Timestamps, every field present (one object shape wherever timestamps are made). */
export function newTimestamps(): Timestamps {
  return {
    clientCalled: 0,
    clientSerialized: 0,
    serverReceived: 0,
    serverWaked: 0,
    serverProcessed: 0,
    serverSerialized: 0,
    clientReceived: 0,
    clientWaked: 0,
  };
}
/** fixarray(8) of float64: fixed width so a stamp can be patched in place. */
const TIMESTAMPS_SIZE = 1 + 8 * 9;
/** Above this, msgpackr's shared slab has grown for one big message; it is handed to that frame. */
const SLAB_KEEP = 1024 * 1024;

function uintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : v <= 0xffffffff ? 5 : 9;
}

function writeUint(buf: Buffer, pos: number, v: number): number {
  // Byte stores: Buffer's writeUInt*BE re-validate their arguments on every call.
  if (v < 0x80) {
    buf[pos] = v;
    return pos + 1;
  }
  if (v < 0x100) {
    buf[pos] = 0xcc;
    buf[pos + 1] = v;
    return pos + 2;
  }
  if (v < 0x10000) {
    buf[pos] = 0xcd;
    buf[pos + 1] = v >>> 8;
    buf[pos + 2] = v;
    return pos + 3;
  }
  if (v <= 0xffffffff) {
    buf[pos++] = 0xce;
  } else {
    buf[pos++] = 0xcf;
    const hi = Math.floor(v / 0x100000000);
    buf[pos++] = hi >>> 24;
    buf[pos++] = hi >>> 16;
    buf[pos++] = hi >>> 8;
    buf[pos++] = hi;
  }
  // `>>>` takes the low 32 bits.
  buf[pos] = v >>> 24;
  buf[pos + 1] = v >>> 16;
  buf[pos + 2] = v >>> 8;
  buf[pos + 3] = v;
  return pos + 4;
}

function checkUint(name: string, v: number, max: number): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new InvalidArgError(`MessagePacket.${name} must be an integer in 0..${max}, got ${v}`);
}

function isResult(v: unknown): v is Result<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { ok?: unknown }).ok === 'boolean';
}

const NO_PAYLOAD = Symbol('none');

/**
 * Serialize a packet into a complete frame: 8-byte header, then the body, CRC sealed, zstd-compressed
 * (header bit 0) when the body reaches `compressionThreshold` and compression actually shrinks it.
 *
 * The returned buffer is a view into a shared output slab. It is never written again, so it can be held and
 * queued; see the README for what that retains.
 */
export function encodeMessage(pkt: MessagePacket, opts?: EncodeOptions): Buffer {
  return encode(pkt, opts, Number.POSITIVE_INFINITY, true, true) as Buffer;
}

/**
 * encodeMessage for senders that can write a frame in parts (Transport.send): a Buffer or Uint8Array of at
 * least `zeroCopyThreshold` bytes (default 64 KiB) in the payload is not copied. The frame is then an array:
 * slab views around the caller's own buffers, the CRC computed across all of them. Those buffers must not
 * change until the frame has been written, or the receiver sees a checksum mismatch and drops the connection.
 * Smaller payloads give a single Buffer, exactly as encodeMessage.
 */
export function encodeMessageParts(pkt: MessagePacket, opts?: EncodeOptions): FrameParts {
  return encode(pkt, opts, opts?.zeroCopyThreshold ?? DEFAULT_ZERO_COPY_THRESHOLD, false, true);
}

/**
 * encodeMessageParts for a frame that goes to Transport.send(): a one-buffer frame may come back with its
 * checksum word 0 (its size is there), for the transport to checksum with the rest of its write batch in one
 * native call (sealPendingFrames) just before the write. Frames in parts, compressed frames and frames packed by
 * msgpackr come back sealed, as from encodeMessageParts. Nothing may read such a frame's bytes as a frame (the
 * receiver would refuse its magic) before it is sealed.
 */
export function encodeMessageUnsealed(pkt: MessagePacket, opts?: EncodeOptions): FrameParts {
  return encode(pkt, opts, opts?.zeroCopyThreshold ?? DEFAULT_ZERO_COPY_THRESHOLD, false, false);
}

/** The envelope of the packet being encoded, checked, for the writers below. */
interface Prefix {
  fields: number;
  uuid: number;
  serviceId: number;
  methodId: number;
  flags: number;
  version: number;
  timeoutMs: number;
  timestamps: Timestamps | undefined;
  isReq: boolean;
  resultTag: number;
  hasTail: boolean;
  /** Whether the payload slot is written: a tail, or a request whose metadata comes after the slot. */
  writeTail: boolean;
  metadata: Metadata | undefined;
}
// Reused: encoding is synchronous.
const prefix: Prefix = {
  fields: 0,
  uuid: 0,
  serviceId: 0,
  methodId: 0,
  flags: 0,
  version: 0,
  timeoutMs: 0,
  timestamps: undefined,
  isReq: false,
  resultTag: -1,
  hasTail: false,
  writeTail: false,
  metadata: undefined,
};
/** At most 8 + 1 + 9 + 3*3 + 2*5 + 73 + 4 = 114 bytes, within msgpackr's RESERVE_START_SPACE of 255. */
const MAX_PREFIX = 114;

function encode(pkt: MessagePacket, opts: EncodeOptions | undefined, zeroCopyThreshold: number, asBuffer: boolean, sealNow: boolean): FrameParts {
  const { uuid, serviceId, methodId, flags, version, timestamps } = pkt;
  checkUint('uuid', uuid, Number.MAX_SAFE_INTEGER);
  checkUint('serviceId', serviceId, 0xffff);
  checkUint('methodId', methodId, 0xffff);
  checkUint('flags', flags, 0xffff);
  checkUint('version', version, 0xffffffff);
  const timeoutMs = Math.ceil(pkt.timeoutMs);
  checkUint('timeoutMs', timeoutMs, 0xffffffff);
  const isReq = (flags & MessageFlags.IsReq) !== 0;

  // A response payload is a Result, written as [0, value] / [0] (value undefined) / [code, message]:
  // the array header and tag go into the envelope prefix, the payload writer writes only value or message.
  let tail: unknown = pkt.payload;
  let resultTag = -1;
  if (!isReq) {
    const r = pkt.payload;
    if (!isResult(r)) throw new InvalidArgError('a response payload must be a Result (okResult / errResult)');
    if (r.ok) {
      resultTag = 0;
      tail = r.value;
    } else {
      checkUint('payload.code', r.code, 0xffff);
      if (r.code === 0) throw new InvalidArgError('an error Result needs a non-zero code');
      if (typeof r.message !== 'string') throw new InvalidArgError('an error Result needs a string message');
      resultTag = r.code;
      tail = r.message;
    }
  }
  const hasTail = tail !== undefined;
  let md = pkt.metadata;
  if (md !== undefined) {
    if (md.size === 0) md = undefined;
    else checkOutgoingMetadata(md, opts?.metadataLimits);
  }
  const pre = prefix;
  pre.fields = md !== undefined ? METADATA_FIELDS : isReq && !hasTail ? ENVELOPE_FIELDS - 1 : ENVELOPE_FIELDS;
  pre.writeTail = hasTail || (isReq && md !== undefined);
  pre.metadata = md;
  pre.uuid = uuid;
  pre.serviceId = serviceId;
  pre.methodId = methodId;
  pre.flags = flags;
  pre.version = version;
  pre.timeoutMs = timeoutMs;
  pre.timestamps = timestamps;
  pre.isReq = isReq;
  pre.resultTag = resultTag;
  pre.hasTail = hasTail;

  let frame: FrameParts | undefined;
  try {
    frame = writeFrame(pre, tail, zeroCopyThreshold, asBuffer, sealNow);
    if (frame === undefined) frame = packFrame(pre, tail);
  } finally {
    pre.timestamps = undefined;
    pre.metadata = undefined;
  }

  const threshold = opts?.compressionThreshold ?? Infinity;
  if (threshold === Infinity) return frame;
  const head = Array.isArray(frame) ? frame[0]! : frame;
  return compressFrame(frame, (head[4]! | (head[5]! << 8) | (head[6]! << 16) | (head[7]! << 24)) >>> 0, opts);
}

/**
 * A sealed frame whose body of `bodyLen` bytes is replaced by its zstd form (bit 0 set) when it is at least
 * `opts.compressionThreshold` and compression shrinks it; otherwise the frame as it was. Both envelopes use it.
 */
export function compressFrame(frame: FrameParts, bodyLen: number, opts: EncodeOptions | undefined): FrameParts {
  if (bodyLen < (opts?.compressionThreshold ?? Infinity)) return frame;
  const body = Array.isArray(frame) ? Buffer.concat(frame).subarray(FRAME_HEADER_SIZE) : frame.subarray(FRAME_HEADER_SIZE);
  const packed = zstdCompress(body, opts?.compressionLevel ?? 1);
  if (!packed || packed.length >= body.length) return frame;
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + packed.length);
  out.set(packed, FRAME_HEADER_SIZE);
  sealFrame(out, true);
  return out;
}

/** The frame from ffnet's own writer, or undefined when the payload holds a type it leaves to msgpackr. */
function writeFrame(pre: Prefix, tail: unknown, zeroCopyThreshold: number, asBuffer: boolean, sealNow: boolean): FrameParts | undefined {
  for (let attempt = 0; ; attempt++) {
    beginFrame(MAX_PREFIX, zeroCopyThreshold, attempt);
    const buf = target();
    setOffset(writePrefix(buf, offset(), pre));
    try {
      if (pre.writeTail && !writePayload(tail)) {
        abandonFrame();
        return undefined;
      }
      if (pre.metadata !== undefined) writeMetadata(pre.metadata);
    } catch (e) {
      if (isOverflow(e)) continue;
      throw e;
    }
    // The sender's "serialized" stamp is the last moment before the CRC seals the frame.
    if (pre.timestamps) writeF64(buf, stampAt, nowMicros());
    return finishFrame(asBuffer, sealNow);
  }
}

/** The frame with the payload packed by msgpackr, the envelope written into the space it reserves in front. */
function packFrame(pre: Prefix, tail: unknown): Buffer {
  const reserve =
    FRAME_HEADER_SIZE +
    1 +
    uintSize(pre.uuid) +
    uintSize(pre.serviceId) +
    uintSize(pre.methodId) +
    uintSize(pre.flags) +
    uintSize(pre.version) +
    uintSize(pre.timeoutMs) +
    (pre.timestamps ? TIMESTAMPS_SIZE : 1) +
    (pre.resultTag >= 0 ? 1 + uintSize(pre.resultTag) : 0);
  let frame: Buffer;
  try {
    frame = packr.pack(tail, RESERVE_START_SPACE | reserve);
  } catch (e) {
    throw new InvalidArgError(`cannot encode the payload of service ${pre.serviceId} method ${pre.methodId}: ${(e as Error).message}`, { cause: e });
  }
  // msgpackr keeps writing into its slab after a big message grew it; give it a fresh one so the
  // big slab belongs to this frame alone and is freed with it.
  if (frame.buffer.byteLength > SLAB_KEEP) packr.useBuffer(Buffer.allocUnsafeSlow(8192));
  // Rare (a payload only msgpackr writes, with metadata): the map goes after it in a copy.
  if (pre.metadata !== undefined) frame = Buffer.concat([frame, encodeMetadata(pre.metadata)]);
  writePrefix(frame, FRAME_HEADER_SIZE, pre);
  sealFrame(frame, false);
  return frame;
}

/** The envelope fields up to the payload: [uuid, serviceId, methodId, flags, version, timeoutMs, ts, (Result head)]. */
function writePrefix(buf: Buffer, pos: number, pre: Prefix): number {
  buf[pos++] = 0x90 | pre.fields;
  pos = writeUint(buf, pos, pre.uuid);
  pos = writeUint(buf, pos, pre.serviceId);
  pos = writeUint(buf, pos, pre.methodId);
  pos = writeUint(buf, pos, pre.flags);
  pos = writeUint(buf, pos, pre.version);
  pos = writeUint(buf, pos, pre.timeoutMs);
  if (pre.timestamps) {
    pos = writeTimestamps(buf, pos, pre.timestamps, pre.isReq);
  } else {
    buf[pos++] = 0xc0;
  }
  if (pre.resultTag >= 0) {
    buf[pos++] = pre.hasTail ? 0x92 : 0x91;
    pos = writeUint(buf, pos, pre.resultTag);
  }
  return pos;
}

/** Where writeTimestamps put the sender's own stamp, for a writer that stamps again after the payload. */
let stampAt = 0;

function writeTimestamps(buf: Buffer, pos: number, ts: Timestamps, isReq: boolean): number {
  buf[pos++] = 0x98;
  // The sender's "serialized" stamp is taken here, the last moment before the CRC seals the frame.
  const stamped = isReq ? 1 : 5;
  for (let i = 0; i < TIMESTAMP_KEYS.length; i++) {
    buf[pos++] = 0xcb;
    if (i === stamped) {
      stampAt = pos;
      writeF64(buf, pos, nowMicros());
    } else {
      writeF64(buf, pos, ts[TIMESTAMP_KEYS[i]!]);
    }
    pos += 8;
  }
  return pos;
}

function writeF64(buf: Uint8Array, pos: number, v: number): void {
  f64[0] = Number.isFinite(v) ? v : 0;
  for (let k = 0; k < 8; k++) buf[pos + k] = f64Bytes[BIG_ENDIAN ? k : 7 - k]!;
}

// Scratch for writing float64 big-endian without Buffer.writeDoubleBE's per-call argument checks.
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
const BIG_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Decode a frame body (as FrameDecoder hands it out) into a packet. For a response (IsReq clear)
 * `payload` is a `Result`. Anything malformed is an InvalidFormatError (DataCorruptionError for
 * corrupt compressed data). Binary values in the payload are views into `body` (or into the
 * decompressed copy), which the caller owns.
 */
export function decodeMessage(body: Buffer, compressed: boolean, opts?: DecodeOptions): MessagePacket {
  const peer = opts?.peer;
  if (compressed) body = zstdDecompress(body, opts?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, peer);
  return (readEnvelope(body) && fromFields(body, opts)) || unpackMessage(body, peer, opts);
}

/** The packet readEnvelope found, or undefined when a field is out of range (msgpackr's path then reports it). */
function fromFields(body: Buffer, opts: DecodeOptions | undefined): MessagePacket | undefined {
  const e = envelope;
  const { uuid, serviceId, methodId, flags, version, timeoutMs } = e;
  let payload = e.payload;
  e.payload = undefined;
  const md = e.metadata;
  e.metadata = undefined;
  if (serviceId > 0xffff || methodId > 0xffff || flags > 0xffff) return undefined;
  if (e.resultTag === 0) {
    payload = { ok: true, value: payload };
  } else if (e.resultTag > 0) {
    payload = { ok: false, code: e.resultTag, message: payload };
  } else if ((flags & MessageFlags.IsReq) === 0) {
    // A Result: [0, value?] or [code, message], as readResult checks it.
    if (!Array.isArray(payload) || payload.length < 1 || payload.length > 2) return undefined;
    const tag: unknown = payload[0];
    if (tag === 0) payload = { ok: true, value: payload[1] };
    else if (isUint(tag, 0xffff) && payload.length === 2 && typeof payload[1] === 'string') payload = { ok: false, code: tag, message: payload[1] };
    else return undefined;
  }
  const pkt: MessagePacket = { uuid, serviceId, methodId, flags, version, timeoutMs, payload };
  if (e.timestampsAt >= 0) {
    const ts = {} as Timestamps;
    for (let i = 0; i < TIMESTAMP_KEYS.length; i++) {
      const x = readF64(body, e.timestampsAt + 2 + i * 9);
      if (!Number.isFinite(x)) return undefined;
      ts[TIMESTAMP_KEYS[i]!] = x;
    }
    pkt.timestamps = ts;
  }
  if (md !== undefined) pkt.metadata = readIncomingMetadata(md, opts?.metadataLimits, opts?.peer);
  return pkt;
}

/** The general decoder: msgpackr for the whole body, then every field checked. */
function unpackMessage(body: Buffer, peer: string | undefined, opts: DecodeOptions | undefined): MessagePacket {
  let a: unknown;
  try {
    a = packr.unpack(body);
  } catch (e) {
    throw new InvalidFormatError(`undecodable message body (${body.length} bytes): ${(e as Error).message}`, { peer, cause: e });
  }
  const bad = (why: string) => new InvalidFormatError(`malformed message envelope: ${why}`, { peer });
  if (!Array.isArray(a)) throw bad(`expected an array, got ${typeof a}`);
  // Fewer fields than a payload-less request is an error; more than ours are a newer peer's additions.
  if (a.length < ENVELOPE_FIELDS - 1) throw bad(`${a.length} fields, expected ${ENVELOPE_FIELDS - 1} or more`);
  const [uuid, serviceId, methodId, flags, version, timeoutMs, ts] = a as unknown[];
  if (!isUint(uuid, MAX_SAFE)) throw bad('uuid is not a safe unsigned integer');
  if (!isUint(serviceId, 0xffff)) throw bad('serviceId is not a u16');
  if (!isUint(methodId, 0xffff)) throw bad('methodId is not a u16');
  if (!isUint(flags, 0xffff)) throw bad('flags is not a u16');
  if (!isUint(version, 0xffffffff)) throw bad('version is not a u32');
  if (!isUint(timeoutMs, 0xffffffff)) throw bad('timeoutMs is not a u32');
  const pkt: MessagePacket = { uuid, serviceId, methodId, flags, version, timeoutMs, payload: a[7] };
  if (ts !== null) pkt.timestamps = readTimestamps(ts, bad);
  if ((flags & MessageFlags.IsReq) === 0) pkt.payload = readResult(a.length > 7 ? a[7] : NO_PAYLOAD, bad);
  if (a.length > 8) {
    const md = readIncomingMetadata(a[8], opts?.metadataLimits, peer);
    if (md !== undefined) pkt.metadata = md;
  }
  return pkt;
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

function readTimestamps(v: unknown, bad: (why: string) => Error): Timestamps {
  if (!Array.isArray(v) || v.length !== TIMESTAMP_KEYS.length) throw bad(`timestamps must be nil or an array of ${TIMESTAMP_KEYS.length} numbers`);
  const ts = {} as Timestamps;
  for (let i = 0; i < TIMESTAMP_KEYS.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) throw bad(`timestamp ${TIMESTAMP_KEYS[i]} is not a number`);
    ts[TIMESTAMP_KEYS[i]!] = x;
  }
  return ts;
}

function readResult(v: unknown, bad: (why: string) => Error): Result<unknown> {
  if (v === NO_PAYLOAD) throw bad('a response has no Result');
  if (!Array.isArray(v) || v.length < 1 || v.length > 2) throw bad('a response Result must be [0, value?] or [code, message]');
  const tag: unknown = v[0];
  if (!isUint(tag, 0xffff)) throw bad('a Result tag must be 0 or a u16 status code');
  if (tag === 0) return { ok: true, value: v[1] };
  const message: unknown = v[1];
  if (v.length !== 2 || typeof message !== 'string') throw bad(`error Result ${tag} has no string message`);
  return { ok: false, code: tag, message };
}
