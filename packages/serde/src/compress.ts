import { DataCorruptionError, InvalidConfigError, InvalidFormatError } from './errors.js';

type Zstd = typeof import('@bokuweb/zstd-wasm');

let zstd: Zstd | undefined;
let loading: Promise<void> | undefined;

/**
 * Load the zstd WebAssembly module (once; later calls return the same promise). Compressing or
 * decompressing before it has resolved throws InvalidConfigError, so an endpoint that enables
 * compression, or may receive compressed frames, awaits this during start-up.
 */
export function initCompression(): Promise<void> {
  loading ??= import('@bokuweb/zstd-wasm').then(async (m) => {
    await m.init();
    zstd = m;
  });
  return loading;
}

/** Whether `initCompression()` has completed. */
export function compressionReady(): boolean {
  return zstd !== undefined;
}

function ready(what: string, peer: string | undefined): Zstd {
  if (zstd) return zstd;
  throw new InvalidConfigError(`cannot ${what} a zstd frame body: await initCompression() first`, { peer });
}

/**
 * zstd of `data` as one frame with its content size declared, or undefined if zstd fails: like 3FS,
 * the caller then sends the frame uncompressed.
 */
export function zstdCompress(data: Uint8Array, level: number): Uint8Array | undefined {
  const z = ready('compress', undefined);
  try {
    return z.compress(data, level);
  } catch {
    // Documented above: the frame goes out uncompressed, as in 3FS.
    return undefined;
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
/** zstd's Block_Maximum_Size: no block regenerates more than this. */
const BLOCK_MAX = 128 * 1024;

/**
 * Decompress one zstd frame, refusing before any allocation when what it can produce reaches `limit`.
 * The wasm decoder allocates the whole output up front (the declared content size, or our bound when
 * the frame leaves it out), so that number is checked first.
 */
export function zstdDecompress(src: Buffer, limit: number, peer?: string): Buffer {
  const z = ready('decompress', peer);
  const { declared, bound } = zstdFrameBound(src, limit, peer);
  let out: Uint8Array;
  try {
    out = z.decompress(src, { defaultHeapSize: bound });
  } catch (e) {
    throw new DataCorruptionError(`corrupt zstd data in a ${src.length}-byte frame body`, { peer, cause: e });
  }
  if (declared >= 0 && out.length !== declared) {
    throw new DataCorruptionError(`zstd frame declared ${declared} bytes but produced ${out.length}`, { peer });
  }
  return Buffer.from(out.buffer, out.byteOffset, out.length);
}

/**
 * Walk one zstd frame's header and block headers (RFC 8878 §3.1.1) without decoding anything:
 * `declared` is Frame_Content_Size or -1, `bound` the most bytes the frame can produce. Anything that
 * is not exactly one well-formed frame, or that could reach `limit`, is an InvalidFormatError.
 */
function zstdFrameBound(src: Buffer, limit: number, peer: string | undefined): { declared: number; bound: number } {
  const bad = (why: string) => new InvalidFormatError(`bad zstd frame body (${src.length} bytes): ${why}`, { peer });
  if (src.length < 6 || src.readUInt32LE(0) !== ZSTD_MAGIC) throw bad('no zstd frame magic');
  const fhd = src[4]!;
  if (fhd & 0x08) throw bad('reserved header bit set');
  const fcsFlag = fhd >>> 6;
  const singleSegment = (fhd & 0x20) !== 0;
  let pos = 5;
  let window = 0;
  if (!singleSegment) {
    const wd = src[pos++]!;
    const base = 2 ** (10 + (wd >>> 3));
    window = base + (base / 8) * (wd & 7);
  }
  pos += [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (pos + fcsBytes > src.length) throw bad('truncated header');
  let declared = -1;
  if (fcsBytes === 1) declared = src[pos]!;
  else if (fcsBytes === 2) declared = src.readUInt16LE(pos) + 256;
  else if (fcsBytes === 4) declared = src.readUInt32LE(pos);
  else if (fcsBytes === 8) declared = src.readUInt32LE(pos + 4) * 2 ** 32 + src.readUInt32LE(pos);
  pos += fcsBytes;
  if (declared >= limit) throw bad(`declared content size ${declared} is at or above the limit ${limit}`);
  if (singleSegment) window = declared;
  const blockMax = Math.min(window, BLOCK_MAX);

  let bound = 0;
  for (;;) {
    if (pos + 3 > src.length) throw bad('truncated block header');
    const bh = src[pos]! | (src[pos + 1]! << 8) | (src[pos + 2]! << 16);
    pos += 3;
    const type = (bh >>> 1) & 3;
    const size = bh >>> 3;
    if (type === 3) throw bad('reserved block type');
    if (size > blockMax) throw bad(`block of ${size} bytes exceeds the ${blockMax}-byte maximum`);
    if (type === 0) {
      bound += size;
      pos += size;
    } else if (type === 1) {
      bound += size;
      pos += 1;
    } else {
      bound += blockMax;
      pos += size;
    }
    if (bound >= limit && declared < 0) throw bad(`content could reach ${bound} bytes, at or above the limit ${limit}`);
    if (bh & 1) break;
  }
  if (fhd & 0x04) pos += 4;
  if (pos !== src.length) throw bad(pos > src.length ? 'truncated block' : 'trailing bytes after the frame');
  if (declared > bound) throw bad(`declared content size ${declared} exceeds what its blocks can produce (${bound})`);
  return { declared, bound: declared >= 0 ? declared : bound };
}
