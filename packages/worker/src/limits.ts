import { FRAME_COMPRESSED, FRAME_HEADER_SIZE } from '@ffnet/serde';

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * The body size of an encoded frame, every part counted (payload buffers that encodeMessageParts passes through
 * uncopied included): the size the peer's decoder compares with its maxMessageSize.
 */
export function frameBodySize(frame: Uint8Array | readonly Uint8Array[]): number {
  // length, not byteLength: the same for Uint8Arrays, and inlined where byteLength is a call (once per message).
  if (frame instanceof Uint8Array) return frame.length - FRAME_HEADER_SIZE;
  let n = -FRAME_HEADER_SIZE;
  for (let i = 0; i < frame.length; i++) n += frame[i]!.length;
  return n;
}

/**
 * The size a receiver holds an encoded frame to: its body, or for a zstd-compressed body the content size the zstd
 * frame declares, which the receiver's decompression is bounded by (RFC 8878 §3.1.1.1).
 */
export function frameMessageSize(frame: Uint8Array | readonly Uint8Array[]): number {
  const body = frameBodySize(frame);
  // The encoder writes a compressed frame as one buffer.
  if (!(frame instanceof Uint8Array) || (frame[0]! & FRAME_COMPRESSED) === 0) return body;
  const declared = zstdContentSize(frame, FRAME_HEADER_SIZE);
  return Math.max(declared, body);
}

/** Frame_Content_Size of the zstd frame at `at`, or -1 when it is absent or the header is not a zstd frame's. */
function zstdContentSize(b: Uint8Array, at: number): number {
  if (b.length < at + 6 || (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0 !== ZSTD_MAGIC) return -1;
  const fhd = b[at + 4]!;
  const singleSegment = (fhd & 0x20) !== 0;
  const pos = at + 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fhd >>> 6]!;
  if (fcsBytes === 0 || pos + fcsBytes > b.length) return -1;
  let size = 0;
  for (let i = fcsBytes - 1; i >= 0; i--) size = size * 256 + b[pos + i]!;
  return fcsBytes === 2 ? size + 256 : size;
}
