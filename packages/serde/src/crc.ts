import { crc32c as stdCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C as folly computes it for 3FS frames: reflected Castagnoli polynomial, initial register 0 and
 * no final XOR (so "123456789" gives 0x58E3FA20, not the standard 0xE3069283).
 *
 * @node-rs/crc32 is the standard variant (~init, ~result) running on SSE4.2 from a prebuilt binary.
 * Feeding it 0xFFFFFFFF as the previous *standard* value makes its internal register start at 0, and
 * inverting its result removes the final XOR. Pass the previous raw value to continue over chunks.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  return ~stdCrc32c(data as Buffer, ~previous >>> 0) >>> 0;
}
