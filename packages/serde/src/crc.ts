import { crc32c as stdCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C as folly computes it for 3FS frames: reflected Castagnoli polynomial, initial register 0 and
 * no final XOR (so "123456789" gives 0x58E3FA20, not the standard 0xE3069283).
 *
 * @node-rs/crc32 is the standard variant (~init, ~result) running on SSE4.2 from a prebuilt binary.
 * Feeding it 0xFFFFFFFF as the previous *standard* value makes its internal register start at 0, and
 * inverting its result removes the final XOR. Pass the previous raw value to continue over chunks.
 *
 * A native call costs ~150 ns before it touches a byte, so small inputs (most RPC envelopes) go
 * through a slicing-by-8 table in JS instead, which is faster below ~200 bytes.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  return crc32cRange(data, 0, data.length, previous);
}

/** CRC of `data[start..end)`, without making a subarray for small ranges. */
export function crc32cRange(data: Uint8Array, start: number, end: number, previous = 0): number {
  if (end - start < NATIVE_MIN) return crcTable(data, start, end, previous);
  const view = start === 0 && end === data.length ? data : data.subarray(start, end);
  return ~stdCrc32c(view as Buffer, ~previous >>> 0) >>> 0;
}

const NATIVE_MIN = 160;

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

function crcTable(d: Uint8Array, i: number, end: number, previous: number): number {
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
