export { FdWatcher, watchFd, type FdWatcherOptions, type ReadableCallback } from './fd-watcher.js';
export { EventFd, type EventFdOptions } from './eventfd.js';
export { nativeSupport } from './native.js';
export {
  TimerWheel,
  type TimerHandle,
  type TimerTarget,
  type TimerCallback,
  type TimerWheelOptions,
} from './timer-wheel.js';
