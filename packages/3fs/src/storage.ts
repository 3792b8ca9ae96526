import { InvalidArgError } from '@ffnet/serde';
import type { UInt8Vector } from './generated/schemas.js';

/**
 * Bits of the `featureFlags` u32 in Storage requests (3FS `fbs/storage/Common.h`, `enum class FeatureFlags`). The
 * schemas carry the field as a plain u32, so the bit values are written down here.
 */
export const FeatureFlags = Object.freeze({
  DEFAULT: 0,
  BYPASS_DISKIO: 1,
  BYPASS_RDMAXMIT: 2,
  /** The data travels in the message (`inlinebuf`) instead of by RDMA: what a client over TCP must ask for. */
  SEND_DATA_INLINE: 4,
  ALLOW_READ_UNCOMMITTED: 8,
  SERVER_COMPUTE_CHECKSUM: 16,
} as const);

/** Whether every bit of `flag` is set in `flags` (3FS's BITFLAGS_CONTAIN). */
export function hasFeature(flags: number, flag: number): boolean {
  return (flags & flag) >>> 0 === flag >>> 0;
}

/**
 * An `UInt8Vector` (3FS's `std::vector<uint8_t>` wrapper for inline data) holding a copy of `bytes`. The schema's
 * value is a number array, as vector<u8> decodes; these two helpers are the only place inline data changes form.
 */
export function toInlineBuf(bytes: Uint8Array): UInt8Vector {
  return { data: Array.from(bytes) };
}

/** The bytes of an `UInt8Vector`. Every element must be a byte (InvalidArgError otherwise, naming the index). */
export function fromInlineBuf(buf: UInt8Vector): Uint8Array {
  const { data } = buf;
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (!Number.isInteger(b) || b < 0 || b > 255) throw new InvalidArgError(`inlinebuf.data[${i}]: expected u8, got ${String(b)}`);
    out[i] = b;
  }
  return out;
}
