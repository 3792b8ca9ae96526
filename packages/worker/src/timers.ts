import { TimerWheel } from '@ffnet/event';

let shared: TimerWheel | undefined;

/**
 * The process-wide wheel that Waiters and Processors use unless given their own: every call deadline in the
 * process then costs a heap entry, and the whole process arms a single Node timer.
 */
export function sharedTimerWheel(): TimerWheel {
  if (!shared || shared.closed) shared = new TimerWheel();
  return shared;
}
