// Is each pinned core running at its usual speed during a measuring window? On the shared VM the cores sometimes
// run ~1.7-1.9x slower for seconds to tens of seconds (a busy SMT sibling or a neighbour on the host) while
// nothing in the guest's /proc shows it: otherCpu stays near 0 and a run's throughput halves. One probe process
// per pinned CPU (core-probe-child.ts) times a fixed ALU-only loop every PROBE_INTERVAL_MS of the window; a window
// whose median sample is well above the best this core has done in this bench process ran on a slow core.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Pinning } from './run.js';
import { median, round } from './stats.js';

const PROBE_CHILD = fileURLToPath(new URL('./core-probe-child.js', import.meta.url));

/**
 * Loop iterations per sample. At full speed an iteration takes ~1.6-1.7 ns on this VM (AMD EPYC), so a sample is
 * ~0.33 ms of CPU. The clock is the probe's own CPU time (process.cpuUsage; Node 20 has no threadCpuUsage, and
 * the probe's other threads are idle while the loop runs): Linux brings the running task's runtime up to date on
 * the read, so it is good to about 1 µs, 0.3 % of a sample. Measured with 100 samples pinned to one core: 32-42
 * distinct values of 330-350 µs, the median within 3 % of the lowest. Wall time would not do: a sample the pinned
 * child preempts reads slow although the core is not (with a busy loop on the same core and a 20 ms loop, wall
 * time read 2.0-2.3x the CPU time, CPU time 1.00-1.04x its quiet figure).
 */
export const PROBE_ITERATIONS = 200_000;
/**
 * 5 samples a second (15 in a 3 s window). Each costs the loop (~0.33 ms) and a wake-up of the Node process (~0.3 ms
 * of CPU on this VM): ~10 ms per 3 s window, 0.34 % of the core the run's child is pinned to; every 100 ms cost twice that.
 */
export const PROBE_INTERVAL_MS = 200;
/** Samples at probe start, before the first run, so the first window already has a reference. */
export const CALIBRATION_SAMPLES = 20;

export interface ProbeConfig {
  iterations: number;
  intervalMs: number;
  calibration: number;
}

/** ns per loop iteration by the probe's CPU time and by wall time (the latter shows how often it was preempted). */
export interface ProbeSamples {
  cpuNs: number[];
  wallNs: number[];
  /** The probe process's CPU over the calibration or window, loop and timers included: its whole cost. */
  probeCpuUs: number;
}

export type ProbeRequest = { t: 'window'; id: number; ms: number };
export type ProbeReply = ({ t: 'ready' } & ProbeSamples) | ({ t: 'window'; id: number } & ProbeSamples) | { t: 'error'; message: string };

/** The lowest finite, positive ns per iteration of `prev` and `samples`: the core at its best so far. */
export function bestOf(prev: number | undefined, samples: readonly number[]): number | undefined {
  let best = prev;
  for (const s of samples) if (Number.isFinite(s) && s > 0 && (best === undefined || s < best)) best = s;
  return best;
}

/**
 * A window's samples against the core's reference: the median and the slowest sample over it, to 2 decimals
 * (1.00 = full speed). Null without samples or reference.
 */
export function slowdownOf(samples: readonly number[], reference: number | undefined): { median: number; max: number } | null {
  const xs = samples.filter((s) => Number.isFinite(s) && s > 0);
  if (xs.length === 0 || reference === undefined || !(reference > 0)) return null;
  return { median: round(median(xs) / reference, 2), max: round(Math.max(...xs) / reference, 2) };
}

/** One probe process pinned to `cpu` (a taskset CPU list), with the best speed it has seen there. */
export class CoreProbe {
  private readonly proc: ChildProcess;
  private best: number | undefined;
  private seq = 0;
  private readonly pending = new Map<number, (s: ProbeSamples | null) => void>();
  private failure: string | null = null;
  private readonly readyP: Promise<ProbeSamples>;
  /** What the calibration found (kept for tests and diagnostics). */
  calibration: ProbeSamples | undefined;

  private constructor(
    readonly cpu: string,
    cfg: ProbeConfig,
  ) {
    this.proc = spawn('taskset', ['-c', cpu, process.execPath, PROBE_CHILD, JSON.stringify(cfg)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    // The probe lives as long as the bench: it must not be what keeps the bench from exiting.
    this.proc.unref();
    (this.proc.channel as { unref?: () => void } | undefined)?.unref?.();
    this.readyP = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`core probe on CPU ${cpu}: no calibration within 20 s`)), 20_000);
      this.proc.on('message', (m: ProbeReply) => {
        if (m.t === 'ready') {
          clearTimeout(timer);
          this.calibration = m;
          this.best = bestOf(this.best, m.cpuNs);
          resolve(m);
        } else if (m.t === 'window') {
          this.best = bestOf(this.best, m.cpuNs);
          this.pending.get(m.id)?.(m);
          this.pending.delete(m.id);
        } else {
          this.fail(m.message);
          clearTimeout(timer);
          reject(new Error(`core probe on CPU ${cpu}: ${m.message}`));
        }
      });
      this.proc.on('error', (err) => {
        this.fail(err.message);
        clearTimeout(timer);
        reject(new Error(`core probe on CPU ${cpu}: ${err.message}`));
      });
      this.proc.on('close', (code, signal) => {
        this.fail(`exited with ${code ?? signal}`);
        clearTimeout(timer);
        reject(new Error(`core probe on CPU ${cpu} exited with ${code ?? signal}`));
      });
    });
    this.readyP.catch(() => {});
  }

  /** Starts a probe on `cpu` and waits for its calibration. */
  static async start(cpu: string, cfg: ProbeConfig = { iterations: PROBE_ITERATIONS, intervalMs: PROBE_INTERVAL_MS, calibration: CALIBRATION_SAMPLES }) {
    const p = new CoreProbe(cpu, cfg);
    try {
      await p.readyP;
    } catch (err) {
      p.kill();
      throw err;
    }
    return p;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Running and answering: a probe that died is no longer the run's own process, and judges nothing. */
  get alive(): boolean {
    return this.failure === null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The best (lowest) ns per iteration seen on this core so far. */
  get reference(): number | undefined {
    return this.best;
  }

  /**
   * Samples the next `ms` (the probe times itself, as the harness's WindowSampler does); resolves with the samples,
   * or null when the probe is gone or did not answer in time. The reference includes this window's samples.
   */
  window(ms: number): Promise<ProbeSamples | null> {
    if (this.failure !== null || !this.proc.connected) return Promise.resolve(null);
    const id = ++this.seq;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, ms + 10_000);
      this.pending.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
      this.proc.send({ t: 'window', id, ms } satisfies ProbeRequest);
    });
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  private fail(message: string): void {
    this.failure ??= message;
    for (const resolve of this.pending.values()) resolve(null);
    this.pending.clear();
  }
}

/** What the probes found over one window, for the run's result line. */
export interface CoreSpeed {
  /** Median sample over the core's reference, per side (1.00 = full speed). */
  coreSlowdown: { server: number; client: number };
  /** Slowest single sample over the reference, per side. */
  coreSlowdownMax: { server: number; client: number };
  /** CPU the probes used during the window, all of them together. */
  probeCpuMs: number;
}

export interface CoreProbes {
  /** Live probe processes, to count as the run's own in WindowSampler (a dead pid would leave otherCpu unread). */
  readonly pids: number[];
  /** Samples both pinned CPUs over the next `ms`; null when a probe failed (the run is then not judged by it). */
  window(ms: number): Promise<CoreSpeed | null>;
}

const started = new Map<string, Promise<CoreProbe | null>>();
const live = new Set<CoreProbe>();
const lost = new Set<CoreProbe>();
let exitHook = false;

function probeFor(cpu: string): Promise<CoreProbe | null> {
  let p = started.get(cpu);
  if (p === undefined) {
    if (!exitHook) {
      exitHook = true;
      // A probe still calibrating at exit is not in `live`; it exits itself when its IPC channel closes.
      process.once('exit', () => {
        for (const probe of live) probe.kill();
      });
    }
    p = CoreProbe.start(cpu).then(
      (probe) => {
        live.add(probe);
        return probe;
      },
      (err: Error) => {
        console.error(`bench: ${err.message}; runs on CPU ${cpu} are not judged by core speed`);
        return null;
      },
    );
    started.set(cpu, p);
  }
  return p;
}

/**
 * The probes of a pinning, started at the first pinned run of this bench process (one per distinct CPU list, so a
 * server and client sharing a CPU share a probe) and killed when it exits. Null when a probe could not start.
 */
export async function coreProbes(pin: Pinning): Promise<CoreProbes | null> {
  const [server, client] = await Promise.all([probeFor(pin.server), probeFor(pin.client)]);
  if (server === null || client === null) return null;
  const probes = server === client ? [server] : [server, client];
  return {
    get pids() {
      return probes.filter((p) => p.alive && p.pid !== undefined).map((p) => p.pid!);
    },
    async window(ms) {
      const got = await Promise.all(probes.map((p) => p.window(ms)));
      const of = (probe: CoreProbe) => {
        const s = got[probes.indexOf(probe)];
        return s === null || s === undefined ? null : slowdownOf(s.cpuNs, probe.reference);
      };
      const srv = of(server);
      const cli = of(client);
      if (srv === null || cli === null) {
        for (const p of probes) {
          if (!p.alive && !lost.has(p)) {
            lost.add(p);
            console.error(`bench: the core probe on CPU ${p.cpu} is gone; runs there are no longer judged by core speed`);
          }
        }
        return null;
      }
      const cpuUs = got.reduce((sum, s) => sum + (s?.probeCpuUs ?? 0), 0);
      return {
        coreSlowdown: { server: srv.median, client: cli.median },
        coreSlowdownMax: { server: srv.max, client: cli.max },
        probeCpuMs: round(cpuUs / 1000, 2),
      };
    },
  };
}
