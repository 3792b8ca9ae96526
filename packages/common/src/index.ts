export { StatusCode, statusName, type StatusCodeName, type StatusCodeValue } from './status.js';
export * from './errors.js';
export {
  Semaphore,
  type SemaphoreOptions,
  type SemaphoreStats,
  type SemaphoreWaiter,
  type AcquireOptions,
} from './semaphore.js';
export { linkSignal, onAbort, abortError, throwIfAborted, type LinkedSignal, type LinkSignalOptions, type Disposer } from './signal.js';
export * as defaults from './defaults.js';
