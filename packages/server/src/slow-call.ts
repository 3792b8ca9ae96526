import type { Logger } from '@ffnet/common';
import { nowMicros, type Timestamps } from '@ffnet/serde';
import { latencyBreakdown, newTimestamps } from './timestamps.js';

/** Microseconds to milliseconds, to 0.01 ms. */
function ms(us: number): number {
  return Math.round(us / 10) / 100;
}

/**
 * A client's slow-call threshold (3FS's logLongRunningThreshold): calls carry timestamps while it is on, so a slow
 * one is logged with where its time went. One per client; a call pays for it only when the threshold is set.
 */
export class SlowCallLog {
  readonly #log: Logger;
  readonly #thresholdUs: number;
  readonly thresholdMs: number;

  constructor(log: Logger, thresholdMs: number) {
    this.#log = log;
    this.thresholdMs = thresholdMs;
    this.#thresholdUs = thresholdMs * 1000;
  }

  /** The timestamps a call without its own carries, so the server fills in its half. */
  timestamps(): Timestamps {
    return newTimestamps();
  }

  /**
   * A response arrived for the call `label` (`Service.method`) that started at `ts.clientCalled`; `server` is what
   * the response carried, `code` 0 for success.
   */
  check(label: string, peer: string, ts: Timestamps, server: Timestamps | undefined, code: number): void {
    const now = nowMicros();
    const total = now - ts.clientCalled;
    if (total <= this.#thresholdUs || !this.#log.isLevelEnabled('warn')) return;
    const dot = label.indexOf('.');
    const fields: Record<string, unknown> = {
      service: dot < 0 ? label : label.slice(0, dot),
      method: dot < 0 ? label : label.slice(dot + 1),
      peer,
      durationMs: ms(total),
      thresholdMs: this.thresholdMs,
      code,
    };
    if (server !== undefined && server.serverReceived > 0) {
      // The response echoes the request's half (clientSerialized is patched into the sent bytes, not into `ts`).
      const b = latencyBreakdown({ ...server, clientCalled: ts.clientCalled, clientWaked: now });
      fields.breakdown = {
        clientSerializeMs: ms(b.clientSerialize),
        toServerMs: ms(b.toServer),
        serverQueueMs: ms(b.serverQueue),
        serverHandleMs: ms(b.serverHandle),
        serverSerializeMs: ms(b.serverSerialize),
        toClientMs: ms(b.toClient),
        clientWakeMs: ms(b.clientWake),
      };
    }
    this.#log.warn(fields, 'slow call');
  }
}
