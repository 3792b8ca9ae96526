export {
  type CallEndMessage,
  type CallErrorMessage,
  type CallStartMessage,
  CHANNELS,
  type ChannelName,
  type ConnectionMessage,
  channels,
} from './channels.js';
export * as defaults from './defaults.js';
export * from './errors.js';
export {
  componentLogger,
  type DebugLoggerOptions,
  type DebugSelection,
  debugLogger,
  errorFields,
  getDefaultLogger,
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LogLevel,
  noopLogger,
  parseDebugEnv,
  setDefaultLogger,
} from './log.js';
export {
  CALL_DURATION_BUCKETS,
  type Counter,
  type Gauge,
  type Histogram,
  type HistogramDef,
  MAX_PEER_LABELS,
  METRICS,
  type MetricDef,
  type MetricFamily,
  type MetricName,
  type Metrics,
} from './metrics.js';
export {
  type AcquireOptions,
  Semaphore,
  type SemaphoreOptions,
  type SemaphoreStats,
  type SemaphoreWaiter,
} from './semaphore.js';
export { abortError, type Disposer, type LinkedSignal, type LinkSignalOptions, linkSignal, onAbort, throwIfAborted } from './signal.js';
export { StatusCode, type StatusCodeName, type StatusCodeValue, statusName } from './status.js';
