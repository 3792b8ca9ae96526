// What a caller of exposeOn / ibSocketTo handles, so it needs no direct dependency on @ffnet/connect.
export type { IBSocket, RDMAExposeAccess, RDMAExposeOptions, RDMAPostOptions, RDMAWindow } from '@ffnet/connect';
export {
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_RDMA_CONNECT_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_MS,
  ibSocketOf,
  RDMA_CAPABILITIES,
  rdma,
  type VerbsAcceptStats,
  VerbsBackend,
  type VerbsBackendOptions,
} from './backend.js';
export {
  DEFAULT_MAX_CONCURRENT_TRANSMISSION,
  type RDMAControlOptions,
  rdmaControlService,
  TransmissionLimiter,
} from './control.js';
export { type ExposeOptions, exposeOn, ibSocketTo, RDMAExposure, withExposed } from './expose.js';
export { RDMAControlService, type RDMATransmissionReq } from './service.js';
export {
  ibSocketOfCall,
  isRdmaCall,
  type RDMAControlStats,
  RDMATransmission,
  RDMAWriteTransmission,
  rdmaControlStats,
  readTransmission,
  writeTransmission,
} from './transmission.js';
