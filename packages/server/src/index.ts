export {
  CallContext,
  RDMAControlService,
  type RDMAControlStats,
  RDMATransmission,
  type RDMATransmissionReq,
  RDMAWriteTransmission,
  type RequestInfo,
  rdmaControlStats,
} from '@ffnet/worker';
export {
  type CoreHost,
  CoreService,
  coreService,
  type EchoMessage,
  EchoService,
  echoService,
  type GetConfigReq,
  type GetConfigRsp,
  type ShutdownReq,
} from './builtins.js';
export { type CallOptions, Client, type ClientOptions, type CompressionOptions, type Stub } from './client.js';
export { type NetworkType, ServiceGroup, type ServiceGroupConfig } from './group.js';
export {
  DEFAULT_MAX_CONCURRENT_TRANSMISSION,
  type RDMAControlOptions,
  rdmaControlService,
  type TransmissionHolder,
  TransmissionLimiter,
} from './rdma-control.js';
export {
  DEFAULT_OUTPUT_BUDGET_BYTES,
  DEFAULT_RECEIVE_BUDGET_BYTES,
  type LifecycleHook,
  Server,
  type ServerLimits,
  type ServerOptions,
  type ServerState,
} from './server.js';
export {
  type Handler,
  type Handlers,
  type ImplementOptions,
  implement,
  type MethodOptions,
  type MethodStats,
  type Service,
  ServiceRegistry,
} from './service.js';
export type { BudgetStats, GroupStats, ServerStats } from './stats.js';
export { type LatencyBreakdown, latencyBreakdown, newTimestamps } from './timestamps.js';
