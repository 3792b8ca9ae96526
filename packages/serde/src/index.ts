export { StatusCode, statusName, type StatusCodeName, type StatusCodeValue } from './status.js';
export * from './errors.js';
export { crc32c } from './crc.js';
export {
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FRAME_COMPRESSED,
  DEFAULT_MAX_MESSAGE_SIZE,
  checksumWord,
  sealFrame,
  frameHeader,
  encodeFrame,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameHandler,
} from './frame.js';
