export { CallContext } from './call-context.js';
export { CANCEL_METHOD_ID, CANCEL_SERVICE_ID, encodeCancelNotice } from './cancel.js';
export { connectionLostError, toFfnetError } from './errors.js';
export {
  DEFAULT_FRAME_MIN_BYTES_PER_SEC,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  IOWorker,
  type IOWorkerOptions,
  type IOWorkerState,
  type IOWorkerStats,
} from './io-worker.js';
export { PendingCall } from './pending-call.js';
export { Processor, type ProcessorOptions, type ProcessorStats } from './processor.js';
export { type MethodBinding, MethodPool, type RequestInfo, type ServiceBinding, type ServiceLookup } from './service.js';
export { sharedTimerWheel } from './timers.js';
export {
  RDMAControlService,
  type RDMAControlStats,
  RDMATransmission,
  type RDMATransmissionReq,
  RDMAWriteTransmission,
  rdmaControlStats,
} from './transmission.js';
export { Waiter, type WaiterOptions, type WaiterStats } from './waiter.js';
