import { performance } from 'node:perf_hooks';

/** What one load run measured. Latencies are in milliseconds. */
export interface LoadResult {
  readonly calls: number;
  readonly errors: number;
  /** The first failure, when there was one. */
  readonly firstError: unknown;
  readonly seconds: number;
  readonly callsPerSec: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LoadProgress {
  readonly done: number;
  /** undefined when the run is bounded by time instead of a count. */
  readonly total: number | undefined;
  readonly errors: number;
  readonly elapsedMs: number;
}

export interface LoadOptions {
  /** Stop after this many calls (default: unbounded, then durationMs must be given). */
  readonly count?: number;
  /** Stop issuing calls after this long. */
  readonly durationMs?: number;
  /** Calls kept in flight, default 1. */
  readonly concurrency?: number;
  /** End the run at the first failed call instead of counting it and going on. */
  readonly stopOnError?: boolean;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: LoadProgress) => void;
  readonly progressMs?: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

/**
 * Runs `call` with `concurrency` calls in flight until `count` calls or `durationMs` have passed, timing each.
 * Shared by `ffnet ping` and the demo so both report latency the same way.
 */
export async function runLoad(call: () => Promise<unknown>, opts: LoadOptions): Promise<LoadResult> {
  const { count, durationMs, stopOnError = false, signal, onProgress, progressMs = 250 } = opts;
  const concurrency = Math.max(1, opts.concurrency ?? 1);
  if (count === undefined && durationMs === undefined) throw new RangeError('runLoad needs a count or a durationMs');
  const latencies: number[] = [];
  let issued = 0;
  let errors = 0;
  let firstError: unknown;
  let stop = false;
  const t0 = performance.now();
  const deadline = durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + durationMs;
  const progress = (): void => onProgress?.({ done: latencies.length + errors, total: count, errors, elapsedMs: performance.now() - t0 });
  const timer = onProgress ? setInterval(progress, progressMs) : undefined;

  const worker = async (): Promise<void> => {
    while (!stop && (count === undefined || issued < count) && !signal?.aborted && performance.now() < deadline) {
      issued++;
      const start = performance.now();
      try {
        await call();
        latencies.push(performance.now() - start);
      } catch (e) {
        errors++;
        if (firstError === undefined) firstError = e;
        if (stopOnError) stop = true;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    if (timer) clearInterval(timer);
  }
  progress();
  const seconds = (performance.now() - t0) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    calls: latencies.length,
    errors,
    firstError,
    seconds,
    callsPerSec: seconds > 0 ? latencies.length / seconds : 0,
    p50Ms: percentile(sorted, 0.5),
    p90Ms: percentile(sorted, 0.9),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : Number.NaN,
  };
}

/** `0.123 ms`, `12.3 ms`, `1.23 s`: three significant digits. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (ms >= 1000) return `${(ms / 1000).toPrecision(3)} s`;
  return `${ms.toPrecision(3)} ms`;
}
