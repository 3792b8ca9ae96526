import { FRAME_HEADER_SIZE } from '@ffnet/serde';

/**
 * The body size of an encoded frame, every part counted (payload buffers that encodeMessageParts passes through
 * uncopied included): the size the peer's decoder compares with its maxMessageSize.
 */
export function frameBodySize(frame: Uint8Array | readonly Uint8Array[]): number {
  if (frame instanceof Uint8Array) return frame.byteLength - FRAME_HEADER_SIZE;
  let n = -FRAME_HEADER_SIZE;
  for (let i = 0; i < frame.length; i++) n += frame[i]!.byteLength;
  return n;
}
