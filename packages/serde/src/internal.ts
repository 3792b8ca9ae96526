// What sibling packages need and applications should not: a frame left unsealed is only safe in the hands of a
// Transport, which seals it right before it is written (Transport.send).
export { encodeMessageUnsealed } from './envelope.js';
export { sealPendingFrames } from './writer.js';
