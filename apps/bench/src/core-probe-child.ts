// The core-speed probe's process (started by core-probe.ts, pinned to one CPU with taskset). It times a fixed
// ALU-only loop in its own CPU time: calibration samples at start, then samples spread over each measuring window
// the parent asks for. See core-probe.ts for why CPU time, the loop's size and what the samples are used for.
import type { ProbeConfig, ProbeReply, ProbeRequest, ProbeSamples } from './core-probe.js';
import { cpuMicros } from './cpu-time.js';

const cfg = JSON.parse(process.argv[2] ?? '{}') as ProbeConfig;
const send = (m: ProbeReply): void => {
  if (process.connected) process.send?.(m);
};

/**
 * xorshift32: three shifts and three xors on one register per iteration, no loads or stores, so its speed is the
 * core's and neither the caches' nor the memory bus's. Every value stays an int32, so V8 keeps it in a register.
 */
function spin(n: number, seed: number): number {
  let x = (0x9e3779b9 ^ seed) | 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
  }
  return x;
}

// Fed back into the next seed so the loop's result is used and cannot be optimised away.
let sink = 0;

function sample(into: ProbeSamples): void {
  const w0 = performance.now();
  const c0 = cpuMicros();
  sink = spin(cfg.iterations, sink);
  const cpuUs = cpuMicros() - c0;
  const wallMs = performance.now() - w0;
  into.cpuNs.push((cpuUs * 1000) / cfg.iterations);
  into.wallNs.push((wallMs * 1e6) / cfg.iterations);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function calibrate(): Promise<ProbeSamples> {
  // Enough iterations in short calls for V8 to optimise spin() before the first sample counts.
  for (let i = 0; i < 200; i++) sink = spin(Math.max(1, Math.round(cfg.iterations / 10)), sink);
  const out: ProbeSamples = { cpuNs: [], wallNs: [], probeCpuUs: 0 };
  const c0 = cpuMicros();
  for (let i = 0; i < cfg.calibration; i++) {
    sample(out);
    await sleep(5);
  }
  out.probeCpuUs = cpuMicros() - c0;
  return out;
}

/** One sample every intervalMs across the window, the first half an interval in. */
async function window(ms: number): Promise<ProbeSamples> {
  const out: ProbeSamples = { cpuNs: [], wallNs: [], probeCpuUs: 0 };
  const c0 = cpuMicros();
  const t0 = performance.now();
  for (let k = 0; ; k++) {
    const due = t0 + (k + 0.5) * cfg.intervalMs;
    if (due > t0 + ms) break;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sample(out);
  }
  const rest = t0 + ms - performance.now();
  if (rest > 0) await sleep(rest);
  out.probeCpuUs = cpuMicros() - c0;
  return out;
}

// The parent going away (killed, or exiting without killing us) ends the probe: it must never outlive a bench.
process.on('disconnect', () => process.exit(0));
process.on('message', (m: ProbeRequest) => {
  if (m.t === 'window') {
    window(m.ms).then(
      (s) => send({ t: 'window', id: m.id, ...s }),
      (err: Error) => send({ t: 'error', message: err.message }),
    );
  }
});

calibrate().then(
  (s) => send({ t: 'ready', ...s }),
  (err: Error) => send({ t: 'error', message: err.message }),
);
