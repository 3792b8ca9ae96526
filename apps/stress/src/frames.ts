/**
 * Hostile frames. Everything here builds bytes by hand (a raw MessagePack writer below) so that it can say
 * things a well-behaved encoder never would: counts that lie, numbers at the edges, keys like `__proto__`.
 * Frames that should pass the CRC check are sealed with serde's own `sealFrame`, so the server's decoder gets
 * past the checksum and has to deal with the body.
 */
import { encodeFrame, FRAME_COMPRESSED, FRAME_HEADER_SIZE, FRAME_MAGIC, MessageFlags, sealFrame } from '@ffnet/serde';
import type { Rng } from './rng.js';
import { CORE_SERVICE_ID, ECHO_SERVICE_ID, StressService } from './service.js';

/** A MessagePack value written verbatim; `raw` splices bytes in as they are (lying headers, odd encodings). */
export type Mp =
  | { t: 'nil' }
  | { t: 'bool'; v: boolean }
  | { t: 'uint'; v: bigint }
  | { t: 'int'; v: bigint }
  | { t: 'f64'; v: number }
  | { t: 'f32'; v: number }
  | { t: 'str'; v: string }
  | { t: 'bin'; v: Uint8Array }
  | { t: 'arr'; items: Mp[]; count?: number }
  | { t: 'map'; entries: [Mp, Mp][]; count?: number }
  | { t: 'raw'; bytes: Uint8Array };

export const mp = {
  nil: (): Mp => ({ t: 'nil' }),
  bool: (v: boolean): Mp => ({ t: 'bool', v }),
  uint: (v: number | bigint): Mp => ({ t: 'uint', v: BigInt(v) }),
  int: (v: number | bigint): Mp => ({ t: 'int', v: BigInt(v) }),
  f64: (v: number): Mp => ({ t: 'f64', v }),
  f32: (v: number): Mp => ({ t: 'f32', v }),
  str: (v: string): Mp => ({ t: 'str', v }),
  bin: (v: Uint8Array): Mp => ({ t: 'bin', v }),
  arr: (items: Mp[], count?: number): Mp => ({ t: 'arr', items, count }),
  map: (entries: [Mp, Mp][], count?: number): Mp => ({ t: 'map', entries, count }),
  obj: (o: Record<string, Mp>): Mp => ({ t: 'map', entries: Object.keys(o).map((k) => [mp.str(k), o[k] as Mp]) }),
  raw: (bytes: Uint8Array | number[]): Mp => ({ t: 'raw', bytes: Uint8Array.from(bytes) }),
};

function u8(out: number[], ...b: number[]): void {
  for (const x of b) out.push(x & 0xff);
}
function be(out: number[], v: bigint, bytes: number): void {
  for (let i = bytes - 1; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
}
function lenHeader(out: number[], n: number, fix: number, fixMax: number, c16: number, c32: number): void {
  if (n <= fixMax) u8(out, fix | n);
  else if (n <= 0xffff) {
    u8(out, c16);
    be(out, BigInt(n), 2);
  } else {
    u8(out, c32);
    be(out, BigInt(n), 4);
  }
}

function write(out: number[], v: Mp): void {
  switch (v.t) {
    case 'nil':
      u8(out, 0xc0);
      break;
    case 'bool':
      u8(out, v.v ? 0xc3 : 0xc2);
      break;
    case 'uint':
      if (v.v < 0x80n) u8(out, Number(v.v));
      else if (v.v <= 0xffn) u8(out, 0xcc, Number(v.v));
      else if (v.v <= 0xffffn) {
        u8(out, 0xcd);
        be(out, v.v, 2);
      } else if (v.v <= 0xffff_ffffn) {
        u8(out, 0xce);
        be(out, v.v, 4);
      } else {
        u8(out, 0xcf);
        be(out, BigInt.asUintN(64, v.v), 8);
      }
      break;
    case 'int':
      // Always the 64-bit form: the widest, least usual encoding of a signed number.
      u8(out, 0xd3);
      be(out, BigInt.asUintN(64, v.v), 8);
      break;
    case 'f64': {
      const b = Buffer.allocUnsafe(8);
      b.writeDoubleBE(v.v, 0);
      u8(out, 0xcb, ...b);
      break;
    }
    case 'f32': {
      const b = Buffer.allocUnsafe(4);
      b.writeFloatBE(v.v, 0);
      u8(out, 0xca, ...b);
      break;
    }
    case 'str': {
      const b = Buffer.from(v.v, 'utf8');
      if (b.length <= 31) u8(out, 0xa0 | b.length);
      else if (b.length <= 0xff) u8(out, 0xd9, b.length);
      else lenHeader(out, b.length, 0, -1, 0xda, 0xdb);
      for (const x of b) out.push(x);
      break;
    }
    case 'bin':
      if (v.v.length <= 0xff) u8(out, 0xc4, v.v.length);
      else lenHeader(out, v.v.length, 0, -1, 0xc5, 0xc6);
      for (const x of v.v) out.push(x);
      break;
    case 'arr':
      lenHeader(out, v.count ?? v.items.length, 0x90, 15, 0xdc, 0xdd);
      for (const x of v.items) write(out, x);
      break;
    case 'map':
      lenHeader(out, v.count ?? v.entries.length, 0x80, 15, 0xde, 0xdf);
      for (const [k, x] of v.entries) {
        write(out, k);
        write(out, x);
      }
      break;
    case 'raw':
      for (const x of v.bytes) out.push(x);
      break;
  }
}

export function encodeMp(v: Mp): Buffer {
  const out: number[] = [];
  write(out, v);
  return Buffer.from(out);
}

/** The envelope's eight fields (see @ffnet/serde), each replaceable by anything. */
export interface RawEnvelope {
  uuid: Mp;
  serviceId: Mp;
  methodId: Mp;
  flags: Mp;
  version: Mp;
  timeoutMs: Mp;
  timestamps: Mp;
  payload?: Mp;
}

export function envelope(e: RawEnvelope): Mp {
  const items = [e.uuid, e.serviceId, e.methodId, e.flags, e.version, e.timeoutMs, e.timestamps];
  if (e.payload) items.push(e.payload);
  return mp.arr(items);
}

/** A well-formed request envelope for `serviceId.methodId` carrying `payload`. */
export function request(uuid: number, serviceId: number, methodId: number, payload: Mp | undefined, timeoutMs = 5000): RawEnvelope {
  return {
    uuid: mp.uint(uuid),
    serviceId: mp.uint(serviceId),
    methodId: mp.uint(methodId),
    flags: mp.uint(MessageFlags.IsReq),
    version: mp.uint(0),
    timeoutMs: mp.uint(timeoutMs),
    timestamps: mp.nil(),
    payload,
  };
}

/** A frame around `body` with a correct header (CRC and size). */
export function sealed(body: Uint8Array, compressed = false): Buffer {
  return encodeFrame(body, compressed);
}

/** A header that claims `size` body bytes with a plausible magic byte (its CRC cannot match what follows). */
export function lyingHeader(size: number, crcWord = 0x1234_5600 | FRAME_MAGIC): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_SIZE);
  h.writeUInt32LE(crcWord >>> 0, 0);
  h.writeUInt32LE(size >>> 0, 4);
  return h;
}

/** A request for the stress service's echo, correct in every byte. */
export function echoFrame(uuid: number, s: string): Buffer {
  return sealed(encodeMp(envelope(request(uuid, StressService.id, StressService.methods.echo.id, mp.obj({ s: mp.str(s) })))));
}

/** A request for `n` bytes from the stress service, correct in every byte. */
export function bytesFrame(uuid: number, n: number): Buffer {
  return sealed(encodeMp(envelope(request(uuid, StressService.id, StressService.methods.bytes.id, mp.obj({ n: mp.uint(n) })))));
}

/** Numbers at the edges: what each field and payload of the envelope gets in the 'boundary' kind. */
export const BOUNDARY_VALUES: readonly Mp[] = [
  mp.uint(0xffff_ffff),
  mp.uint(0xffff_ffff_ffff_ffffn),
  mp.uint(2 ** 53),
  mp.uint(2n ** 53n + 1n),
  mp.int(-1),
  mp.int(-(2n ** 63n)),
  mp.f64(Number.NaN),
  mp.f64(-0),
  mp.f64(Number.POSITIVE_INFINITY),
  mp.f64(Number.NEGATIVE_INFINITY),
  mp.f64(Number.MAX_VALUE),
  mp.f64(Number.MIN_VALUE),
  mp.f32(Number.NaN),
  mp.uint(0x1_0000),
  mp.uint(0xffff),
  mp.str(''),
  mp.nil(),
  mp.bool(true),
];

/** Containers and strings whose headers claim far more than follows: a decoder must not believe them. */
export const HUGE_COUNT_HEADERS: readonly Uint8Array[] = [
  Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff]), // array32 of 4 G elements
  Uint8Array.from([0xdd, 0x7f, 0xff, 0xff, 0xff]), // array32 of 2 G elements
  Uint8Array.from([0xdf, 0xff, 0xff, 0xff, 0xff]), // map32 of 4 G entries
  Uint8Array.from([0xdc, 0xff, 0xff]), // array16 of 65535
  Uint8Array.from([0xde, 0xff, 0xff]), // map16 of 65535
  Uint8Array.from([0xdb, 0xff, 0xff, 0xff, 0xff]), // str32 of 4 GiB
  Uint8Array.from([0xc6, 0xff, 0xff, 0xff, 0xff]), // bin32 of 4 GiB
  Uint8Array.from([0xc9, 0xff, 0xff, 0xff, 0xff, 0x01]), // ext32 of 4 GiB
  Uint8Array.from([0xc7, 0xff, 0x7f]), // ext8, type 127
  Uint8Array.from([0xd4, 0xff, 0x00]), // fixext1 type -1 (timestamp) with 1 byte
];

/** Keys that would reach an object's prototype in a careless decoder. */
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', '__defineGetter__', 'hasOwnProperty', 'toString'];

export const FRAME_KINDS = ['random', 'bitflip', 'garbage', 'proto', 'boundary', 'hugecount', 'truncated', 'zstd', 'valid'] as const;
export type FrameKind = (typeof FRAME_KINDS)[number];

export interface FuzzOptions {
  /** Send envelopes to the Core service (10001), whose `shutdown` a hostile peer may try; default true. */
  fuzzCore?: boolean;
}

function targetService(rng: Rng, opts: FuzzOptions): number {
  const ids = opts.fuzzCore === false ? [ECHO_SERVICE_ID, StressService.id] : [ECHO_SERVICE_ID, CORE_SERVICE_ID, StressService.id];
  return rng.chance(0.9) ? rng.pick(ids) : rng.int(0x10000);
}

function protoPayload(rng: Rng): Mp {
  const key = rng.pick(PROTO_KEYS);
  const inner = mp.obj({ polluted: mp.bool(true), s: mp.str('x') });
  const entries: [Mp, Mp][] = [
    [mp.str(key), inner],
    [mp.str('s'), mp.str('proto')],
    [mp.str('n'), mp.uint(rng.int(64))],
  ];
  // Nested too, and as an array element, so every path through the reader meets it.
  if (rng.chance(0.5)) entries.push([mp.str('nested'), mp.map([[mp.str('__proto__'), mp.obj({ isAdmin: mp.bool(true) })]])]);
  if (rng.chance(0.3)) entries.push([mp.str('list'), mp.arr([mp.map([[mp.str('__proto__'), mp.nil()]])])]);
  return mp.map(entries);
}

function boundaryEnvelope(rng: Rng, opts: FuzzOptions): Mp {
  const e = request(rng.u32(), targetService(rng, opts), rng.range(0, 8), mp.obj({ s: mp.str('b'), n: rng.pick(BOUNDARY_VALUES) }));
  const fields: (keyof RawEnvelope)[] = ['uuid', 'serviceId', 'methodId', 'flags', 'version', 'timeoutMs', 'timestamps', 'payload'];
  const hits = rng.range(1, 2);
  for (let i = 0; i < hits; i++) e[rng.pick(fields)] = rng.pick(BOUNDARY_VALUES);
  return envelope(e);
}

function hugeCountBody(rng: Rng, opts: FuzzOptions): Buffer {
  const head = rng.pick(HUGE_COUNT_HEADERS);
  const tail = rng.bytes(rng.int(16));
  if (rng.chance(0.5)) {
    // As the whole envelope.
    return Buffer.concat([head, tail]);
  }
  // As the payload of an otherwise good request.
  const e = request(rng.u32(), targetService(rng, opts), rng.range(1, 2), mp.raw(Buffer.concat([head, tail])));
  return encodeMp(envelope(e));
}

/** One fuzzed frame of `kind`; `valid` is a correct stress-service request (echo, or bytes up to 4 KiB). */
export function fuzzFrame(kind: FrameKind, rng: Rng, opts: FuzzOptions = {}): Buffer {
  switch (kind) {
    case 'random':
      return rng.bytes(rng.range(1, 256));
    case 'bitflip': {
      const f = Buffer.from(validFrame(rng));
      // 1 to 3 distinct bits, anywhere: header (CRC, magic, size) or body.
      const flips = Math.min(rng.range(1, 3), f.length * 8);
      const bits = new Set<number>();
      while (bits.size < flips) bits.add(rng.int(f.length * 8));
      for (const bit of bits) f[bit >> 3] = (f[bit >> 3] as number) ^ (1 << (bit & 7));
      return f;
    }
    case 'garbage':
      return sealed(rng.bytes(rng.range(1, 256)));
    case 'proto':
      return sealed(encodeMp(envelope(request(rng.u32(), rng.chance(0.5) ? StressService.id : ECHO_SERVICE_ID, 1, protoPayload(rng)))));
    case 'boundary':
      return sealed(encodeMp(boundaryEnvelope(rng, opts)));
    case 'hugecount':
      return sealed(hugeCountBody(rng, opts));
    case 'truncated': {
      const f = validFrame(rng);
      return f.subarray(0, rng.int(f.length));
    }
    case 'zstd': {
      // The compressed bit on: a zstd magic and a frame header claiming a huge content size, or plain noise.
      const body = rng.chance(0.5)
        ? Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xe0]), rng.bytes(8), rng.bytes(rng.int(64))])
        : rng.bytes(rng.range(1, 128));
      return sealed(body, true);
    }
    case 'valid':
      return validFrame(rng);
  }
}

function validFrame(rng: Rng): Buffer {
  return rng.chance(0.8) ? echoFrame(rng.u32(), 'v'.repeat(rng.int(64))) : bytesFrame(rng.u32(), rng.int(4096));
}

/**
 * How often each kind is drawn. Most are frames the server must answer (valid, `__proto__`) or that decode to
 * something odd but framed correctly, so a connection usually carries several before the one that gets it
 * closed; every kind still appears thousands of times in a run.
 */
export const KIND_WEIGHTS: Readonly<Record<FrameKind, number>> = {
  random: 4,
  bitflip: 8,
  garbage: 8,
  proto: 20,
  boundary: 20,
  hugecount: 10,
  truncated: 4,
  zstd: 6,
  valid: 20,
};

export function pickKind(rng: Rng, weights: Readonly<Record<FrameKind, number>> = KIND_WEIGHTS): FrameKind {
  let total = 0;
  for (const k of FRAME_KINDS) total += weights[k];
  let x = rng.int(total);
  for (const k of FRAME_KINDS) {
    x -= weights[k];
    if (x < 0) return k;
  }
  return 'valid';
}

export interface Batch {
  readonly bytes: Buffer;
  readonly frames: number;
  readonly kinds: Partial<Record<FrameKind, number>>;
}

/** What the server accepts and answers: a run of these keeps a connection open, so the frames after it are read. */
const RUN_WEIGHTS: Readonly<Record<FrameKind, number>> = {
  random: 0,
  bitflip: 0,
  garbage: 0,
  proto: 3,
  boundary: 0,
  hugecount: 0,
  truncated: 0,
  zstd: 0,
  valid: 1,
};

/**
 * `n` fuzzed frames back to back, for one write. Half the batches draw every frame by KIND_WEIGHTS (so the
 * connection usually ends within a few frames); the other half are a run the server answers (mostly `__proto__`
 * requests) ending in one frame drawn by KIND_WEIGHTS, so the server also reads long, answered streams.
 */
export function fuzzBatch(rng: Rng, n: number, opts: FuzzOptions = {}): Batch {
  const parts: Buffer[] = [];
  const kinds: Partial<Record<FrameKind, number>> = {};
  const run = rng.chance(0.5);
  for (let i = 0; i < n; i++) {
    const kind = run && i < n - 1 ? pickKind(rng, RUN_WEIGHTS) : pickKind(rng);
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    parts.push(fuzzFrame(kind, rng, opts));
  }
  return { bytes: Buffer.concat(parts), frames: n, kinds };
}

/** The checksum word a correct header has for `body` (for tests and checks). */
export function expectedWord(frame: Uint8Array): number {
  const copy = Buffer.from(frame);
  sealFrame(copy, (frame[0]! & FRAME_COMPRESSED) !== 0);
  return copy.readUInt32LE(0);
}
