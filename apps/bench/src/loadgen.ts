// Keeps a fixed number of calls in flight and times each one. Every peer's client reports
// completions through the same `done`, so the loop costs every peer the same.
import { performance } from 'node:perf_hooks';
import type { PeerClient } from './peers/types.js';
import { minorFaults } from './protocol.js';
import { Histogram } from './stats.js';

export interface Window {
  calls: number;
  seconds: number;
  p50Us: number;
  p99Us: number;
  cpu: NodeJS.CpuUsage;
  minorFaults: number;
}

export class LoadGen {
  private client: PeerClient | null = null;
  private readonly starts: Float64Array;
  private readonly hist = new Histogram();
  private running = false;
  private measuring = false;
  private outstanding = 0;
  private calls = 0;
  private t0 = 0;
  private cpu0: NodeJS.CpuUsage = { user: 0, system: 0 };
  private faults0 = 0;
  private failure: Error | null = null;
  private onFailure: ((err: Error) => void) | null = null;
  private onDrained: (() => void) | null = null;

  constructor(private readonly inflight: number) {
    this.starts = new Float64Array(inflight);
  }

  /** Starts the calls; the returned promise rejects when any call fails. */
  start(client: PeerClient): Promise<never> {
    this.client = client;
    this.running = true;
    const failed = new Promise<never>((_, reject) => {
      this.onFailure = reject;
    });
    for (let slot = 0; slot < this.inflight; slot++) this.issue(slot);
    return failed;
  }

  /** Ends the warm-up: from here on completions are counted and timed. */
  mark(): void {
    this.hist.reset();
    this.calls = 0;
    this.measuring = true;
    this.cpu0 = process.cpuUsage();
    this.faults0 = minorFaults();
    this.t0 = performance.now();
  }

  /** Ends the measuring window; the calls still in flight finish uncounted. */
  stop(): Window {
    const seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const faults = minorFaults() - this.faults0;
    this.measuring = false;
    this.running = false;
    return {
      calls: this.calls,
      seconds,
      p50Us: this.hist.percentile(0.5) / 1000,
      p99Us: this.hist.percentile(0.99) / 1000,
      cpu,
      minorFaults: faults,
    };
  }

  /** Resolves when no call is in flight (or after `timeoutMs`, leaving them to the close). */
  drain(timeoutMs: number): Promise<void> {
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.onDrained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  readonly done = (slot: number, err: Error | undefined): void => {
    if (err !== undefined) {
      this.fail(err);
      return;
    }
    this.outstanding--;
    if (this.measuring) {
      this.calls++;
      this.hist.record((performance.now() - this.starts[slot]!) * 1e6);
    }
    if (this.running) this.issue(slot);
    else if (this.outstanding === 0 && this.onDrained !== null) this.onDrained();
  };

  private issue(slot: number): void {
    this.outstanding++;
    this.starts[slot] = performance.now();
    this.client!.call(slot);
  }

  private fail(err: Error): void {
    if (!this.running || this.failure !== null) return;
    this.failure = err;
    this.running = false;
    this.measuring = false;
    this.onFailure?.(err);
  }
}
