export { type ExtensionDef, registerExtension } from './codec.js';
export { compressionReady, initCompression } from './compress.js';
export { type Crc32cImplementation, type Crc32cImplementationName, crc32c, crc32cImplementation } from './crc.js';
export {
  DEFAULT_ZERO_COPY_THRESHOLD,
  type DecodeOptions,
  decodeMessage,
  type EncodeOptions,
  encodeMessage,
  encodeMessageParts,
  errResult,
  type FrameParts,
  MessageFlags,
  type MessagePacket,
  nowMicros,
  okResult,
  type Result,
  type Timestamps,
} from './envelope.js';
export {
  decodeMessage3fs,
  decodeRequest3fs,
  decodeResult3fs,
  ECHO_SIZE,
  ENVELOPE_NAMES,
  type Envelope,
  type EnvelopeName,
  type MethodSchemas,
  encodeMessage3fs,
  envelopeNamed,
  ffnetEnvelope,
  threefsEnvelope,
} from './envelopes/index.js';
export * from './errors.js';
export {
  checksumWord,
  DEFAULT_ALLOCATE_LARGE_BODY_AT,
  DEFAULT_MAX_MESSAGE_SIZE,
  encodeFrame,
  FRAME_COMPRESSED,
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FrameDecoder,
  type FrameDecoderOptions,
  type FrameHandler,
  frameHeader,
  sealFrame,
} from './frame.js';
export {
  DEFAULT_METADATA_LIMITS,
  isMetadataKey,
  type Metadata,
  type MetadataLimits,
  type MetadataValue,
} from './metadata.js';
export {
  defineService,
  type MethodDef,
  type MethodDefs,
  type MethodInfo,
  type MethodNames,
  method,
  type RequestOf,
  type ResponseOf,
  type ServiceDef,
  type ServiceSpec,
} from './service.js';
export { StatusCode, type StatusCodeName, type StatusCodeValue, statusName } from './status.js';
