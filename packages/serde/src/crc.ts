import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/**
 * CRC-32C as folly computes it for 3FS frames: reflected Castagnoli polynomial, initial register 0 and
 * no final XOR (so "123456789" gives 0x58E3FA20, not the standard 0xE3069283). Pass the previous raw
 * value to continue over chunks.
 *
 * Large inputs go to the first of these that loads (see `crc32cImplementation()`):
 * - `native`: dist/crc32c.node, compiled from native/crc32c.c at install: three interleaved SSE4.2 / ARMv8
 *   CRC streams (~4x @node-rs/crc32 on 1 MiB), and from 1 KiB up carry-less-multiply folding where the x86_64 CPU
 *   has VPCLMULQDQ (another ~2x with 256-bit vectors, ~3.5x with AVX-512; `crc32cImplementation().instructions`);
 * - `node-rs`: @node-rs/crc32, prebuilt for every common platform;
 * - `js`: the slicing-by-8 table below.
 * Small inputs (most RPC envelopes) always use the table: a native call has a fixed cost that the table
 * beats below a per-implementation size, measured with bench/bench.mjs.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  return crc32cRange(data, 0, data.length, previous);
}

/** CRC of `data[start..end)`, without making a subarray. The range must lie inside `data`. */
export function crc32cRange(data: Uint8Array, start: number, end: number, previous = 0): number {
  return end - start < LARGE.min ? crcTable(data, start, end, previous) : LARGE.crc(data, start, end, previous);
}

/**
 * Copies `src[start..end)` to `dst` at `at` and returns the CRC-32C of the bytes copied, continued from `previous`.
 * The checksum is always of what was written to `dst`, so it holds for the copy even when another process may
 * rewrite `src` meanwhile (shared memory). The native addon does both in one pass over the source; the
 * fallbacks copy, then checksum the copy. The two ranges must not overlap.
 */
export function crc32cCopy(src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number, previous = 0): number {
  if (end - start >= LARGE.min && LARGE.copy !== undefined) return LARGE.copy(src, start, end, dst, at, previous);
  if (start < 0 || start > end || end > src.length || at < 0 || at + (end - start) > dst.length) {
    throw new RangeError('crc32cCopy: a range is outside its array');
  }
  dst.set(start === 0 && end === src.length ? src : src.subarray(start, end), at);
  return crc32cRange(dst, at, at + (end - start), previous);
}

/**
 * For each `i < count`, `out[i]` = the CRC-32C of `data[ranges[2i] .. ranges[2i+1])` from a zero register (as an
 * int32: compare with `>>> 0` or by xor). The native addon does them all in one call, which is what makes it pay
 * for small frames: a call costs more than checksumming 100 bytes, so the frames of one read, or of one write, are
 * checksummed together rather than one call each (`crc32cBatched()` says whether this process does that). Every
 * range is checked against `data` before anything is written to `out`.
 */
export function crc32cRanges(data: Uint8Array, ranges: Int32Array, count: number, out: Int32Array): void {
  const batch = LARGE.ranges;
  if (batch !== undefined) {
    batch(data, ranges, count, out);
    return;
  }
  if (!(Number.isInteger(count) && count >= 0 && count * 2 <= ranges.length && count <= out.length)) {
    throw new RangeError('crc32cRanges: count is more than ranges or out hold');
  }
  for (let i = 0; i < count; i++) {
    const start = ranges[2 * i]!;
    const end = ranges[2 * i + 1]!;
    if (start < 0 || start > end || end > data.length) throw new RangeError('crc32cRanges: a range is outside data');
  }
  for (let i = 0; i < count; i++) out[i] = crc32cRange(data, ranges[2 * i]!, ranges[2 * i + 1]!);
}

/**
 * Whether crc32cRanges() checksums many ranges in one native call here. Without it a batch costs what its ranges
 * cost one by one, so callers that would batch small frames only for the saving check them one at a time instead.
 */
export function crc32cBatched(): boolean {
  return LARGE.ranges !== undefined;
}

export type Crc32cImplementationName = 'native' | 'node-rs' | 'js';

export interface Crc32cImplementation {
  /** What checksums inputs above the small-input threshold. */
  name: Crc32cImplementationName;
  /** Why the native addon is not the one in use (absent when it is). */
  reason?: string;
  /**
   * With the native addon, the instructions it runs: `sse4.2`, `sse4.2+vpclmulqdq-256`, `sse4.2+vpclmulqdq-512` or
   * `armv8-crc32`. `FFNET_CRC32C_FOLD=ymm` caps the x86_64 fold at 256-bit vectors, `off` turns it off.
   */
  instructions?: string;
}

/**
 * Which CRC-32C implementation this process uses for large inputs, and if it is not the native addon, why
 * (not built at install and the build's reason, no SSE4.2, `FFNET_CRC32C` forcing a fallback, …).
 */
export function crc32cImplementation(): Crc32cImplementation {
  const impl: Crc32cImplementation = { name: LARGE.name };
  if (LARGE.reason !== undefined) impl.reason = LARGE.reason;
  if (LARGE.instructions !== undefined) impl.instructions = LARGE.instructions;
  return impl;
}

type RangeCrc = (data: Uint8Array, start: number, end: number, previous: number) => number;
type CopyCrc = (src: Uint8Array, start: number, end: number, dst: Uint8Array, at: number, previous: number) => number;
type RangesCrc = (data: Uint8Array, ranges: Int32Array, count: number, out: Int32Array) => void;

interface Large {
  name: Crc32cImplementationName;
  reason: string | undefined;
  crc: RangeCrc;
  /** Copy and checksum in one pass (the native addon only). */
  copy?: CopyCrc;
  /** Many ranges in one call (the native addon only). */
  ranges?: RangesCrc;
  /** Inputs shorter than this use the JS table. */
  min: number;
  /** What the native addon runs (it says so itself). */
  instructions?: string;
}

// Where the JS table stops winning (Node 20, x64; bench/crc-bench.mjs): a call into the addon costs ~60 ns
// for anything up to ~256 bytes, @node-rs/crc32 ~150 ns, the table ~0.9 ns a byte.
const NATIVE_MIN = 64;
const NODE_RS_MIN = 160;

const require = createRequire(import.meta.url);
// One path for both dist/crc.js and src/crc.ts (tests run the sources): the addon is only ever built into dist/.
const ADDON = fileURLToPath(new URL('../dist/crc32c.node', import.meta.url));
const SKIPPED = fileURLToPath(new URL('../dist/crc32c.skipped.txt', import.meta.url));

const LARGE: Large = chooseLarge(process.env.FFNET_CRC32C);

function chooseLarge(forced: string | undefined): Large {
  if (forced === 'js') return { name: 'js', reason: 'FFNET_CRC32C=js', crc: crcTable, min: Number.POSITIVE_INFINITY };
  if (forced === 'node-rs') return nodeRs('FFNET_CRC32C=node-rs');
  let addon: { crc32c?: RangeCrc; crc32cCopy?: CopyCrc; crc32cRanges?: RangesCrc; instructions?: unknown };
  try {
    addon = require(ADDON) as typeof addon;
  } catch (e) {
    return nodeRs(addonMissing(e));
  }
  if (typeof addon.crc32c !== 'function') return nodeRs('the CPU has no SSE4.2 / ARMv8 CRC32 instructions');
  const large: Large = { name: 'native', reason: undefined, crc: addon.crc32c, min: NATIVE_MIN };
  // An addon built before crc32cCopy existed (an older dist/) still checksums; copies then take two passes.
  if (typeof addon.crc32cCopy === 'function') large.copy = addon.crc32cCopy;
  if (typeof addon.crc32cRanges === 'function') large.ranges = addon.crc32cRanges;
  if (typeof addon.instructions === 'string') large.instructions = addon.instructions;
  return large;
}

function addonMissing(e: unknown): string {
  if ((e as { code?: unknown }).code !== 'MODULE_NOT_FOUND') return `loading ${ADDON} failed: ${(e as Error).message}`;
  if (existsSync(SKIPPED)) return `native addon not built: ${readFileSync(SKIPPED, 'utf8').trim()}`;
  return `native addon not built (no ${ADDON}; run scripts/build-native.mjs)`;
}

function nodeRs(reason: string): Large {
  let lib: typeof import('@node-rs/crc32');
  try {
    lib = require('@node-rs/crc32') as typeof lib;
  } catch (e) {
    const why = `${reason}; @node-rs/crc32 did not load: ${(e as Error).message}`;
    return { name: 'js', reason: why, crc: crcTable, min: Number.POSITIVE_INFINITY };
  }
  const std = lib.crc32c;
  // @node-rs/crc32 is the standard variant (~init, ~result). Feeding it the inverted previous raw value
  // makes its register start at `previous`, and inverting its result removes the final XOR.
  const crc: RangeCrc = (data, start, end, previous) => {
    const view = start === 0 && end === data.length ? data : data.subarray(start, end);
    return ~std(view, ~previous >>> 0) >>> 0;
  };
  return { name: 'node-rs', reason, crc, min: NODE_RS_MIN };
}

/** Slicing-by-8 tables: T[k * 256 + b] is the CRC of byte b followed by k zero bytes. */
const T = new Int32Array(8 * 256);
for (let b = 0; b < 256; b++) {
  let c = b;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[b] = c;
}
for (let b = 0; b < 256; b++) {
  for (let k = 1; k < 8; k++) {
    const prev = T[(k - 1) * 256 + b]!;
    T[k * 256 + b] = (prev >>> 8) ^ T[prev & 0xff]!;
  }
}

/** The JS table on its own (tests compare it with the native implementations). */
export function crcTable(d: Uint8Array, i: number, end: number, previous: number): number {
  let c = previous | 0;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (d[i]! | (d[i + 1]! << 8) | (d[i + 2]! << 16) | (d[i + 3]! << 24));
    c =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + d[i + 4]!]! ^
      T[512 + d[i + 5]!]! ^
      T[256 + d[i + 6]!]! ^
      T[d[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ d[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}
