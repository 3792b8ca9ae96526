export { StatusCode, statusName, type StatusCodeName, type StatusCodeValue } from './status.js';
export * from './errors.js';
export { crc32c, crc32cImplementation, type Crc32cImplementation, type Crc32cImplementationName } from './crc.js';
export {
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FRAME_COMPRESSED,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_ALLOCATE_LARGE_BODY_AT,
  checksumWord,
  sealFrame,
  frameHeader,
  encodeFrame,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameHandler,
} from './frame.js';
export {
  MessageFlags,
  encodeMessage,
  encodeMessageParts,
  decodeMessage,
  okResult,
  errResult,
  nowMicros,
  type MessagePacket,
  type Timestamps,
  type Result,
  type EncodeOptions,
  type FrameParts,
  DEFAULT_ZERO_COPY_THRESHOLD,
  type DecodeOptions,
} from './envelope.js';
export {
  DEFAULT_METADATA_LIMITS,
  isMetadataKey,
  type Metadata,
  type MetadataValue,
  type MetadataLimits,
} from './metadata.js';
export { initCompression, compressionReady } from './compress.js';
export { registerExtension, type ExtensionDef } from './codec.js';
export {
  defineService,
  method,
  type ServiceDef,
  type ServiceSpec,
  type MethodDef,
  type MethodDefs,
  type MethodInfo,
  type MethodNames,
  type RequestOf,
  type ResponseOf,
} from './service.js';
