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
export { PendingCall } from './pending-call.js';
export { Processor, type ProcessorOptions, type ProcessorStats } from './processor.js';
export { CallContext } from './call-context.js';
export { MethodPool, type MethodBinding, type ServiceBinding, type ServiceLookup, type RequestInfo } from './service.js';
export { CANCEL_SERVICE_ID, CANCEL_METHOD_ID, encodeCancelNotice } from './cancel.js';
export {
  connectionLostError,
  toFfnetError,
  HandlerErrors,
  INTERNAL_ERROR_MESSAGE,
  RECENT_HANDLER_ERRORS,
  type HandlerErrorHook,
  type HandlerErrorInfo,
  type MaskedHandlerError,
} from './errors.js';
export { sharedTimerWheel } from './timers.js';
export { frameBodySize, frameMessageSize } from './limits.js';
export { StopControl } from './stop-control.js';
