export { debugLogger, type LogFields, type Logger, type LogLevel, setDefaultLogger } from '@ffnet/common';
export type { AuthRequest, ConnectionAuthenticator, Credentials, PeerCertificate, PeerCredentials, Principal } from '@ffnet/transport';
export { CallContext, type PeerIdentity, type RequestInfo } from '@ffnet/worker';
export { ADMIN_ROLE, type AdminAccess, type AdminOptions, isLocalPeer } from './admin.js';
export {
  AUTHORIZATION_KEY,
  type AuthErrorHook,
  type AuthErrorInfo,
  type AuthOptions,
  type AuthorizeCall,
  type Authorizer,
  type AuthStats,
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_MAX_AUTH_FAILURES,
} from './auth.js';
export {
  CoreEchoMessageSchema,
  type CoreHost,
  CoreService,
  coreService,
  type EchoMessage,
  EchoMessageSchema,
  EchoService,
  echoService,
  type GetConfigReq,
  type GetConfigRsp,
  MAX_CONFIG_KEY_LENGTH,
  type ShutdownReq,
} from './builtins.js';
export { type CallOptions, Client, type ClientOptions, type CompressionOptions, type Stub } from './client.js';
export { type FetchedToken, staticToken, type TokenCredentialsOptions, tokenCredentials } from './credentials.js';
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
export { CoreEchoMessage3fs, CoreService3fs, coreService3fs, EchoMessage3fs, EchoService3fs, echoService3fs } from './threefs-builtins.js';
export { type LatencyBreakdown, latencyBreakdown, newTimestamps } from './timestamps.js';
