export {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_SEGMENT_BYTES,
  DEFAULT_RING_BYTES,
  DEFAULT_THRESHOLD_BYTES,
  type ShmBackendOptions,
  shm,
} from './backend.js';
export type { ShmSocket, ShmSocketStats } from './socket.js';
