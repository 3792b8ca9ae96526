// The CPU-time clock of the micro-benchmarks (serde-micro, envelope-micro) and of the core-speed probe: process CPU, not
// wall time, because on a shared, loaded machine wall time mostly measures how long the scheduler kept us off a core.

export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * Median ns per call of `fn` over 5 windows of `measureMs / 5` of this process's CPU time, after a warm-up window.
 * `fn` runs `batch` times between clock reads, so reading the clock costs nothing per call.
 */
export function nsPerOp(fn: () => void, measureMs: number, batch: number): number {
  const windowUs = Math.max(1, Math.round(measureMs / 5)) * 1000;
  const run = (): number => {
    let n = 0;
    const t0 = cpuMicros();
    let t = t0;
    while (t - t0 < windowUs) {
      for (let k = 0; k < batch; k++) fn();
      n += batch;
      t = cpuMicros();
    }
    return ((t - t0) * 1000) / n;
  };
  run();
  const xs = [run(), run(), run(), run(), run()].sort((a, b) => a - b);
  return xs[2] as number;
}
