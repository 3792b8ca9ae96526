export { EventFd, type EventFdOptions } from './eventfd.js';
export { FdWatcher, type FdWatcherOptions, type ReadableCallback, watchFd } from './fd-watcher.js';
export { nativeSupport } from './native.js';
export {
  type TimerCallback,
  type TimerHandle,
  type TimerTarget,
  TimerWheel,
  type TimerWheelOptions,
} from './timer-wheel.js';
