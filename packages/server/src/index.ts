export {
  Server,
  type ServerOptions,
  type ServerLimits,
  type ServerState,
  type LifecycleHook,
  DEFAULT_RECEIVE_BUDGET_BYTES,
  DEFAULT_OUTPUT_BUDGET_BYTES,
} from './server.js';
export { type AdminOptions, type AdminAccess, isLocalPeer } from './admin.js';
export { ServiceGroup, type ServiceGroupConfig, type NetworkType } from './group.js';
export { Client, type ClientOptions, type CallOptions, type CompressionOptions, type Stub } from './client.js';
export {
  retry,
  type RetryOptions,
  RETRY_SAFE_CODES,
  RETRY_IF_IDEMPOTENT_CODES,
  type ClientCall,
  type ClientNext,
  type ClientInterceptor,
  type ServerHandler,
  type ServerInterceptor,
} from './interceptor.js';
export {
  implement,
  ServiceRegistry,
  type Service,
  type Handler,
  type Handlers,
  type ImplementOptions,
  type MethodOptions,
  type MethodStats,
} from './service.js';
export {
  EchoService,
  CoreService,
  echoService,
  coreService,
  type EchoMessage,
  type GetConfigReq,
  type GetConfigRsp,
  type ShutdownReq,
  type CoreHost,
  MAX_CONFIG_KEY_LENGTH,
} from './builtins.js';
export type { ServerStats, GroupStats, BudgetStats } from './stats.js';
export { newTimestamps, latencyBreakdown, type LatencyBreakdown } from './timestamps.js';
export { CallContext, type RequestInfo } from '@ffnet/worker';
export type { ClientExtension } from './plugin.js';
