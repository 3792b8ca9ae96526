export { CallContext, type RequestInfo } from '@ffnet/worker';
export { type AdminAccess, type AdminOptions, isLocalPeer } from './admin.js';
export {
  type CoreHost,
  CoreService,
  coreService,
  type EchoMessage,
  EchoService,
  echoService,
  type GetConfigReq,
  type GetConfigRsp,
  MAX_CONFIG_KEY_LENGTH,
  type ShutdownReq,
} from './builtins.js';
export { type CallOptions, Client, type ClientOptions, type CompressionOptions, type Stub } from './client.js';
export { type NetworkType, ServiceGroup, type ServiceGroupConfig } from './group.js';
export {
  type ClientCall,
  type ClientInterceptor,
  type ClientNext,
  RETRY_IF_IDEMPOTENT_CODES,
  RETRY_SAFE_CODES,
  type RetryOptions,
  retry,
  type ServerHandler,
  type ServerInterceptor,
} from './interceptor.js';
export type { ClientExtension } from './plugin.js';
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
