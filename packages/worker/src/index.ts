export {
  IOWorker,
  type IOWorkerOptions,
  type IOWorkerState,
  type IOWorkerStats,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_FRAME_MIN_BYTES_PER_SEC,
} from './io-worker.js';
export { Waiter, type WaiterOptions, type WaiterStats } from './waiter.js';
export { PendingCall, type CallResource } from './pending-call.js';
export { Processor, type ProcessorOptions, type ProcessorStats } from './processor.js';
export { CallContext, type ServerHandler, type ServerInterceptor } from './call-context.js';
export { MethodPool } from './service.js';
export type { MethodBinding, ServiceBinding, ServiceLookup, RequestInfo } from './call-context.js';
export {
  type HandlerErrors,
  INTERNAL_ERROR_MESSAGE,
  RECENT_HANDLER_ERRORS,
  type HandlerErrorHook,
  type HandlerErrorInfo,
  type MaskedHandlerError,
} from './errors.js';
