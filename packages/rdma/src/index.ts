export {
  rdma,
  VerbsBackend,
  ibSocketOf,
  RDMA_CAPABILITIES,
  DEFAULT_RDMA_CONNECT_TIMEOUT_MS,
  HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  type VerbsBackendOptions,
  type VerbsAcceptStats,
} from './backend.js';
export {
  RDMATransmission,
  RDMAWriteTransmission,
  readTransmission,
  writeTransmission,
  isRdmaCall,
  ibSocketOfCall,
  rdmaControlStats,
  type RDMAControlStats,
} from './transmission.js';
export { RDMAControlService, type RDMATransmissionReq } from './service.js';
export {
  TransmissionLimiter,
  rdmaControlService,
  DEFAULT_MAX_CONCURRENT_TRANSMISSION,
  type RDMAControlOptions,
} from './control.js';
