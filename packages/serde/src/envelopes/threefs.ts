// 3FS's MessagePacket in 3FS's serde binary (kit README rule 14), framed exactly like ffnet's envelope (rule 15):
//   table { u64 uuid, u16 serviceId, u16 methodId, u16 flags, Version{u8,u8,u8,u32}, varint(len) ‖ payload,
//           optional<Timestamp{8 × i64 µs}> }
// The envelope fields are written and read here; the payload is the method's schema at work (encode3fs/decode3fs),
// so a received packet keeps its payload as bytes until the Processor or the Client knows which method it is for.
import { zstdDecompress } from '../compress.js';
import { crc32c, crc32cRange } from '../crc.js';
import type { DecodeOptions, EncodeOptions, FrameParts, MessagePacket, Result, Timestamps } from '../envelope.js';
import { compressFrame, MessageFlags, newTimestamps, nowMicros, TIMESTAMP_KEYS } from '../envelope.js';
import { InvalidArgError, InvalidFormatError, VerifyRequestFailedError } from '../errors.js';
import { checksumWord, DEFAULT_MAX_MESSAGE_SIZE, FRAME_HEADER_SIZE, sealFrame } from '../frame.js';
import { copyScratch, decodeRange, encode3fsScratch, scratchCopy } from '../schema/codec.js';
import { unwrap } from '../schema/dsl.js';
import { decode3fs, type Schema } from '../schema/index.js';
import { claim as take } from '../writer.js';

/** Bytes of `MessagePacket.echo`: u64 uuid ‖ u8 major ‖ u8 minor ‖ u8 patch ‖ u32 hash, little-endian. */
export const ECHO_SIZE = 15;
/** u64 uuid + 3 × u16 + the Version table (07 + 7 bytes). */
const FIXED_FIELDS = 8 + 6 + 8;
/** optional flag + table length (64 fits one varint byte) + 8 × i64. */
const TIMESTAMP_SIZE = 1 + 1 + 64;
const TWO_32 = 0x100000000;
const EMPTY: Uint8Array = new Uint8Array(0);
/** Payloads from this size on go out as a part of their own (default of EncodeOptions.zeroCopyThreshold). */
const ZERO_COPY = 64 * 1024;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(b: Uint8Array, p: number, v: number): number {
  while (v >= 0x80) {
    b[p++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 128);
  }
  b[p++] = v;
  return p;
}

function writeU16(b: Uint8Array, p: number, v: number): number {
  b[p] = v;
  b[p + 1] = v >>> 8;
  return p + 2;
}

function writeU32(b: Uint8Array, p: number, v: number): number {
  b[p] = v;
  b[p + 1] = v >>> 8;
  b[p + 2] = v >>> 16;
  b[p + 3] = v >>> 24;
  return p + 4;
}

/** An integer number as i64 (two's complement); integers beyond 2^53 are already approximations in JS. */
function writeI64(b: Uint8Array, p: number, v: number): number {
  const x = Number.isFinite(v) ? Math.trunc(v) : 0;
  const hi = Math.floor(x / TWO_32);
  writeU32(b, p, x - hi * TWO_32);
  return writeU32(b, p + 4, hi | 0);
}

function checkUint(name: string, v: number, max: number): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new InvalidArgError(`MessagePacket.${name} must be an integer in 0..${max}, got ${v}`);
}

/**
 * The payload of a packet as 3FS writes it: a request with the method's request schema, a response as
 * `Result<Rsp>` (u8 hasValue ‖ Rsp, or u8 0 ‖ Status{u16 code ‖ optional<string> message}).
 */
function payloadBytes(pkt: MessagePacket, schema: Schema | undefined): PayloadScratch {
  const out = payloadScratch;
  const isReq = (pkt.flags & MessageFlags.IsReq) !== 0;
  if (isReq) {
    if (schema === undefined) throw new InvalidArgError(`the 3fs envelope needs the request schema of service ${pkt.serviceId} method ${pkt.methodId}`);
    out.head = -1;
    out.bodyLen = encode3fsScratch(schema, pkt.payload);
    return out;
  }
  const r = pkt.payload as Result<unknown> | undefined;
  if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new InvalidArgError('a response payload must be a Result (okResult / errResult)');
  if (r.ok) {
    if (schema === undefined) throw new InvalidArgError(`the 3fs envelope needs the response schema of service ${pkt.serviceId} method ${pkt.methodId}`);
    out.head = 1;
    out.bodyLen = encode3fsScratch(schema, r.value);
    return out;
  }
  checkUint('payload.code', r.code, 0xffff);
  if (r.code === 0) throw new InvalidArgError('an error Result needs a non-zero code');
  if (typeof r.message !== 'string') throw new InvalidArgError('an error Result needs a string message');
  out.head = 0;
  out.code = r.code;
  out.message = r.message.length === 0 ? EMPTY : Buffer.from(r.message, 'utf8');
  out.bodyLen = 0;
  return out;
}
interface PayloadScratch {
  head: number;
  code: number;
  message: Uint8Array;
  /** Bytes of the encoded value, left in the codec's scratch (encode3fsScratch) until copied out. */
  bodyLen: number;
}
// Reused: encoding is synchronous.
const payloadScratch: PayloadScratch = { head: -1, code: 0, message: EMPTY, bodyLen: 0 };

/**
 * A packet as a frame in the 3fs envelope: `schema` is the method's request schema for a request (IsReq set) and
 * its response schema for an ok response (an error response needs none). Metadata and the deadline field do not
 * exist in 3FS's MessagePacket: a packet with metadata is refused (InvalidArgError) rather than sent without it,
 * and `timeoutMs` is not sent. `pkt.echo`, when set, supplies the uuid and Version written (a response echoing
 * a 3FS request). The sender's "serialized" stamp is taken last, as with ffnet's envelope.
 */
export function encodeMessage3fs(pkt: MessagePacket, schema: Schema | undefined, opts?: EncodeOptions): FrameParts {
  const { uuid, serviceId, methodId, flags, version, timestamps, echo } = pkt;
  if (echo === undefined) {
    checkUint('uuid', uuid, Number.MAX_SAFE_INTEGER);
    checkUint('version', version, 0xffffffff);
  } else if (!(echo instanceof Uint8Array) || echo.length !== ECHO_SIZE) {
    throw new InvalidArgError(`MessagePacket.echo must be ${ECHO_SIZE} bytes`);
  }
  checkUint('serviceId', serviceId, 0xffff);
  checkUint('methodId', methodId, 0xffff);
  checkUint('flags', flags, 0xffff);
  if (pkt.metadata !== undefined && pkt.metadata.size > 0) {
    throw new InvalidArgError(`the 3fs envelope carries no metadata (service ${serviceId} method ${methodId} has ${pkt.metadata.size} entries)`);
  }
  const p = payloadBytes(pkt, schema);
  // In the codec's scratch: copied into the frame below, or (large) into an array of its own.
  const bodyLen = p.bodyLen;
  // head: -1 request (no Result byte), 1 ok, 0 error (Status follows).
  let plen = bodyLen;
  if (p.head >= 0) plen += 1;
  if (p.head === 0) plen += 2 + (p.message.length === 0 ? 1 : 1 + varintSize(p.message.length) + p.message.length);
  const tsSize = timestamps === undefined ? 1 : TIMESTAMP_SIZE;
  const tableLen = FIXED_FIELDS + varintSize(plen) + plen + tsSize;
  const frameBodyLen = varintSize(tableLen) + tableLen;
  const zeroCopy = bodyLen >= (opts?.zeroCopyThreshold ?? ZERO_COPY);
  const body = zeroCopy ? scratchCopy(bodyLen) : EMPTY;
  // One buffer, or (a large payload) head ‖ payload ‖ tail with the payload not copied.
  const headLen = FRAME_HEADER_SIZE + frameBodyLen - (zeroCopy ? bodyLen + tsSize : 0);
  const b = take(zeroCopy ? headLen : FRAME_HEADER_SIZE + frameBodyLen);
  let at = writeVarint(b, FRAME_HEADER_SIZE, tableLen);
  if (echo === undefined) {
    at = writeU32(b, at, uuid);
    at = writeU32(b, at, Math.floor(uuid / TWO_32));
  } else {
    b.set(echo.subarray(0, 8), at);
    at += 8;
  }
  at = writeU16(b, at, serviceId);
  at = writeU16(b, at, methodId);
  at = writeU16(b, at, flags);
  b[at++] = 7;
  if (echo === undefined) {
    b[at++] = 0;
    b[at++] = 0;
    b[at++] = 0;
    at = writeU32(b, at, version);
  } else {
    b.set(echo.subarray(8), at);
    at += 7;
  }
  at = writeVarint(b, at, plen);
  if (p.head >= 0) b[at++] = p.head;
  if (p.head === 0) {
    at = writeU16(b, at, p.code);
    if (p.message.length === 0) b[at++] = 0;
    else {
      b[at++] = 1;
      at = writeVarint(b, at, p.message.length);
      b.set(p.message, at);
      at += p.message.length;
    }
    p.message = EMPTY;
  }
  p.bodyLen = 0;
  let frame: FrameParts;
  if (!zeroCopy) {
    copyScratch(b, at, bodyLen);
    at += bodyLen;
    writeTimestamps(b, at, timestamps, (flags & MessageFlags.IsReq) !== 0);
    sealFrame(b, false);
    frame = b;
  } else {
    const tail = take(tsSize);
    writeTimestamps(tail, 0, timestamps, (flags & MessageFlags.IsReq) !== 0);
    const crc = crc32c(tail, crc32c(body, crc32cRange(b, FRAME_HEADER_SIZE, headLen)));
    const word = checksumWord(crc, false);
    writeU32(b, 0, word);
    writeU32(b, 4, frameBodyLen);
    frame = [b, body, tail];
  }
  return compressFrame(frame, frameBodyLen, opts);
}

function writeTimestamps(b: Uint8Array, at: number, ts: Timestamps | undefined, isReq: boolean): void {
  if (ts === undefined) {
    b[at] = 0;
    return;
  }
  b[at++] = 1;
  b[at++] = 64;
  const stamped = isReq ? 1 : 5;
  for (let i = 0; i < TIMESTAMP_KEYS.length; i++) at = writeI64(b, at, i === stamped ? nowMicros() : ts[TIMESTAMP_KEYS[i]!]);
}

/** A bounds-checked reader over one table; missing trailing fields read as absent, as 3FS's decoder keeps defaults. */
class Reader {
  pos = 0;
  b: Uint8Array = EMPTY;
  end = 0;
  peer: string | undefined = undefined;

  /** Decoding is synchronous: one reader per use site is reset for every message instead of allocated. */
  reset(b: Uint8Array, end: number, peer: string | undefined): this {
    this.b = b;
    this.end = end;
    this.peer = peer;
    this.pos = 0;
    return this;
  }

  bad(why: string): InvalidFormatError {
    return new InvalidFormatError(`malformed 3fs MessagePacket: ${why}`, { peer: this.peer });
  }

  /** Whether another field is present; throws when one starts but does not fit (3FS kSerdeInsufficientLength). */
  has(n: number, what: string): boolean {
    if (this.pos >= this.end) return false;
    if (this.pos + n > this.end) throw this.bad(`${what} needs ${n} bytes, ${this.end - this.pos} left`);
    return true;
  }

  u8(): number {
    return this.b[this.pos++]!;
  }

  u16(): number {
    const b = this.b;
    const p = this.pos;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  u32(): number {
    const b = this.b;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }

  i64(): number {
    const lo = this.u32();
    return lo + (this.u32() | 0) * TWO_32;
  }

  /** Varint64 as 3FS reads lengths; anything beyond what remains is refused by the callers. */
  varint(what: string): number {
    const b = this.b;
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw this.bad(`${what}: truncated varint`);
      const byte = b[this.pos++]!;
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) return v;
      scale *= 128;
    }
    throw this.bad(`${what}: varint longer than 10 bytes`);
  }

  /** A length-prefixed sub-table; returns the end of the enclosing one, to restore after. */
  enter(what: string): number {
    const len = this.varint(what);
    if (len > this.end - this.pos) throw this.bad(`${what} of ${len} bytes, ${this.end - this.pos} left`);
    const outer = this.end;
    this.end = this.pos + len;
    return outer;
  }
}

const packetReader = new Reader();

/** The whole table, as 3FS always writes it: one object of one shape, no per-field checks. */
function readAllTimestamps(r: Reader): Timestamps {
  // Properties are evaluated in order, which is the table's order (TIMESTAMP_KEYS).
  return {
    clientCalled: r.i64(),
    clientSerialized: r.i64(),
    serverReceived: r.i64(),
    serverWaked: r.i64(),
    serverProcessed: r.i64(),
    serverSerialized: r.i64(),
    clientReceived: r.i64(),
    clientWaked: r.i64(),
  };
}

const TIMESTAMP_LABELS = TIMESTAMP_KEYS.map((k) => `timestamp.${k}`);

/** A shorter table (an older writer): missing trailing fields read as 0, a field cut short is an error. */
function readSomeTimestamps(r: Reader): Timestamps {
  const ts = newTimestamps();
  for (let i = 0; i < TIMESTAMP_KEYS.length; i++) if (r.has(8, TIMESTAMP_LABELS[i]!)) ts[TIMESTAMP_KEYS[i]!] = r.i64();
  return ts;
}

/**
 * What the receiver knows from a packet's header, so that decodeMessage3fs can decode the payload in its pass over
 * the frame (the ids and the uuid come before the payload): no view of the payload, no second pass once the
 * method is known. Called synchronously inside decodeMessage3fs.
 */
export interface HeaderSchemas3fs {
  /** The request schema of method `methodId` of service `serviceId`, or undefined to leave the payload as bytes. */
  requestSchema(serviceId: number, methodId: number): Schema | undefined;
  /** The response schema of the call waiting for `uuid`, or undefined to leave the payload as bytes. */
  responseSchema(uuid: number): Schema | undefined;
}

const NOT_DECODED: unknown = Symbol('ffnet.3fs.notDecoded');

/** Request schemas whose value may itself be a Uint8Array: decoded later, so that bytes always mean "not decoded yet". */
const valueMayBeBytes = new WeakMap<Schema, boolean>();

function mayBeBytes(schema: Schema): boolean {
  let out = valueMayBeBytes.get(schema);
  if (out === undefined) {
    let sc = unwrap(schema);
    while (sc.kind === 'optional') sc = unwrap(sc.of);
    out = sc.kind === 'bytes' || sc.kind === 'fixed';
    valueMayBeBytes.set(schema, out);
  }
  return out;
}

/**
 * The payload `body[start, end)` decoded with the schema the header points at: a request's value, or an ok
 * response's `Result`. NOT_DECODED (the caller keeps the bytes) when there is no schema, for an error Result, and
 * when it does not decode: the later decodeRequest3fs / decodeResult3fs then makes the error it always made.
 */
function inHeaderPass(
  schemas: HeaderSchemas3fs,
  body: Uint8Array,
  start: number,
  end: number,
  flags: number,
  serviceId: number,
  methodId: number,
  uuid: number,
): unknown {
  if ((flags & MessageFlags.IsReq) !== 0) {
    const schema = schemas.requestSchema(serviceId, methodId);
    if (schema === undefined || mayBeBytes(schema)) return NOT_DECODED;
    try {
      return decodeRange(schema, body, start, end);
    } catch {
      return NOT_DECODED;
    }
  }
  if (end === start || body[start] !== 1) return NOT_DECODED;
  const schema = schemas.responseSchema(uuid);
  if (schema === undefined) return NOT_DECODED;
  try {
    return { ok: true, value: decodeRange(schema, body, start + 1, end) };
  } catch {
    return NOT_DECODED;
  }
}

/**
 * Decode a 3fs-envelope frame body into a packet whose `payload` is still bytes (a view into `body` or its
 * decompressed copy): the request, or the response's `Result<Rsp>`, for decodeRequest3fs / decodeResult3fs once the
 * method is known. Missing trailing fields take their defaults and extra trailing bytes are ignored, as in 3FS; a
 * field that starts but does not fit, or a length beyond the body, is an InvalidFormatError. `timeoutMs` is 0
 * (3FS has no deadline field). `echo` is set when the uuid is beyond 2^53 or the Version has major/minor/patch,
 * so that a response can echo them exactly. With `schemas`, a payload whose schema the header points at is
 * decoded in the same pass instead: a request's value (never a Uint8Array then: schemas whose value could be
 * one are left as bytes), an ok response's `Result`; bytes still mean "decode me later".
 */
export function decodeMessage3fs(body: Buffer, compressed: boolean, opts?: DecodeOptions, schemas?: HeaderSchemas3fs): MessagePacket {
  const peer = opts?.peer;
  if (compressed) body = zstdDecompress(body, opts?.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE, peer);
  const r = packetReader.reset(body, body.length, peer);
  r.enter('MessagePacket table');
  let uuidLo = 0;
  let uuidHi = 0;
  let serviceId = 0;
  let methodId = 0;
  let flags = 0;
  let major = 0;
  let minor = 0;
  let patch = 0;
  let hash = 0;
  let payload: unknown = EMPTY;
  let timestamps: Timestamps | undefined;
  if (r.has(8, 'uuid')) {
    uuidLo = r.u32();
    uuidHi = r.u32();
  }
  if (r.has(2, 'serviceId')) serviceId = r.u16();
  if (r.has(2, 'methodId')) methodId = r.u16();
  if (r.has(2, 'flags')) flags = r.u16();
  if (r.has(1, 'version')) {
    const outer = r.enter('Version table');
    if (r.has(1, 'version.major')) major = r.u8();
    if (r.has(1, 'version.minor')) minor = r.u8();
    if (r.has(1, 'version.patch')) patch = r.u8();
    if (r.has(4, 'version.hash')) hash = r.u32();
    r.pos = r.end;
    r.end = outer;
  }
  if (r.has(1, 'payload')) {
    const len = r.varint('payload length');
    if (len > r.end - r.pos) throw r.bad(`payload of ${len} bytes, ${r.end - r.pos} left`);
    const start = r.pos;
    r.pos += len;
    payload = schemas === undefined ? NOT_DECODED : inHeaderPass(schemas, body, start, r.pos, flags, serviceId, methodId, uuidLo + uuidHi * TWO_32);
    if (payload === NOT_DECODED) payload = body.subarray(start, r.pos);
  }
  if (r.has(1, 'timestamp')) {
    const present = r.u8();
    if (present > 1) throw r.bad(`optional timestamp flag ${present}`);
    if (present === 1) {
      r.enter('Timestamp table');
      timestamps = r.end - r.pos >= 64 ? readAllTimestamps(r) : readSomeTimestamps(r);
    }
  }
  r.b = EMPTY;
  const uuid = uuidLo + uuidHi * TWO_32;
  const pkt: MessagePacket = { uuid, serviceId, methodId, flags, version: hash, timeoutMs: 0, payload };
  if (timestamps !== undefined) pkt.timestamps = timestamps;
  if (uuidHi >= 0x200000 || (major | minor | patch) !== 0) {
    const echo = new Uint8Array(ECHO_SIZE);
    writeU32(echo, 0, uuidLo);
    writeU32(echo, 4, uuidHi);
    echo[8] = major;
    echo[9] = minor;
    echo[10] = patch;
    writeU32(echo, 11, hash);
    pkt.echo = echo;
  }
  return pkt;
}

/** A request payload (bytes from decodeMessage3fs) decoded with its method's schema; what does not decode is 2002. */
export function decodeRequest3fs(schema: Schema, payload: Uint8Array, what: string, peer?: string): unknown {
  try {
    return decode3fs(schema, payload);
  } catch (e) {
    throw new VerifyRequestFailedError(`the request of ${what} does not decode: ${(e as Error).message}`, { peer, cause: e });
  }
}

/**
 * A response payload (`Result<Rsp>` bytes from decodeMessage3fs) as a Result: the value decoded with the method's
 * response schema, or the Status. What does not decode is an InvalidFormatError naming the method.
 */
export function decodeResult3fs(schema: Schema | undefined, payload: Uint8Array, what: string, peer?: string): Result<unknown> {
  const bad = (why: string, cause?: unknown) =>
    new InvalidFormatError(`the response of ${what} does not decode: ${why}`, cause === undefined ? { peer } : { peer, cause });
  if (payload.length === 0) throw bad('no Result');
  const tag = payload[0]!;
  if (tag === 1) {
    if (schema === undefined) throw bad('no response schema to decode it with');
    try {
      return { ok: true, value: decode3fs(schema, payload.subarray(1)) };
    } catch (e) {
      throw bad((e as Error).message, e);
    }
  }
  if (tag !== 0) throw bad(`Result tag ${tag}`);
  if (payload.length < 3) throw bad('truncated Status');
  const code = payload[1]! | (payload[2]! << 8);
  let message = '';
  if (payload.length > 3 && payload[3] === 1) {
    const r = new Reader().reset(payload, payload.length, peer);
    r.pos = 4;
    const len = r.varint('Status message length');
    if (len > payload.length - r.pos) throw bad(`Status message of ${len} bytes, ${payload.length - r.pos} left`);
    message = Buffer.from(payload.buffer, payload.byteOffset + r.pos, len).toString('utf8');
  }
  // 3FS never sends an error with code 0; keep it an error rather than mistake it for success.
  return { ok: false, code: code === 0 ? 999 : code, message };
}
