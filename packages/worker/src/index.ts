export type { MethodBinding, PeerIdentity, RequestInfo, ServiceBinding, ServiceLookup } from './call-context.js';
export { CallContext, type ServerHandler, type ServerInterceptor } from './call-context.js';
export {
  type HandlerErrorHook,
  type HandlerErrorInfo,
  type HandlerErrors,
  INTERNAL_ERROR_MESSAGE,
  type MaskedHandlerError,
  RECENT_HANDLER_ERRORS,
} from './errors.js';
export {
  DEFAULT_FRAME_MIN_BYTES_PER_SEC,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  IOWorker,
  type IOWorkerOptions,
  type IOWorkerState,
  type IOWorkerStats,
} from './io-worker.js';
export type { CallObserver } from './observer.js';
export { type CallResource, PendingCall } from './pending-call.js';
export { Processor, type ProcessorOptions, type ProcessorStats } from './processor.js';
export { MethodPool } from './service.js';
export { Waiter, type WaiterOptions, type WaiterStats } from './waiter.js';
