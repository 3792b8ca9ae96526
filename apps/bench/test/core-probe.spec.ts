// The core-speed probe: its arithmetic, and real probes pinned with taskset (CI has taskset; without it the bench
// does not pin and never starts a probe, so those tests are skipped there). No assertion on how fast a core is
// beyond sanity bounds: only that samples come, are finite, and read CPU time rather than wall time.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
// The real probes come from dist/ (built before the tests, as for harness.spec.ts): the probe's process is
// dist/core-probe-child.js, found next to the module that starts it.
import { CALIBRATION_SAMPLES, CoreProbe, coreProbes, PROBE_INTERVAL_MS } from '../dist/core-probe.js';
import { bestOf, slowdownOf } from '../src/core-probe.js';
import { median } from '../src/stats.js';

const hasTaskset = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;
const PROBE_MODULE = fileURLToPath(new URL('../dist/core-probe.js', import.meta.url));

describe('reference and slowdown arithmetic', () => {
  it('the reference is the lowest finite, positive sample seen so far', () => {
    expect(bestOf(undefined, [])).toBeUndefined();
    expect(bestOf(undefined, [1.7, 1.64, 1.9])).toBe(1.64);
    expect(bestOf(1.6, [1.7, 1.64])).toBe(1.6);
    expect(bestOf(1.7, [1.65])).toBe(1.65);
    expect(bestOf(undefined, [Number.NaN, 0, -1, Number.POSITIVE_INFINITY])).toBeUndefined();
    expect(bestOf(undefined, [Number.NaN, 2])).toBe(2);
  });

  it('slowdown is the median sample over the reference, and the slowest sample over it, to 2 decimals', () => {
    expect(slowdownOf([1.66, 1.7, 1.68], 1.66)).toEqual({ median: 1.01, max: 1.02 });
    // An episode covering most of the window moves the median; one slow sample only moves the max.
    expect(slowdownOf([3.1, 3.0, 1.7, 3.2, 2.9], 1.66)).toEqual({ median: 1.81, max: 1.93 });
    expect(slowdownOf([1.66, 1.66, 3.3, 1.67], 1.66)).toEqual({ median: 1, max: 1.99 });
    expect(slowdownOf([1.5, 2.5], 1)).toEqual({ median: 2, max: 2.5 });
    expect(slowdownOf([], 1.66)).toBeNull();
    expect(slowdownOf([Number.NaN], 1.66)).toBeNull();
    expect(slowdownOf([1.7], undefined)).toBeNull();
    expect(slowdownOf([1.7], 0)).toBeNull();
  });
});

/** A process of ours spinning on `cpu` until killed. */
function busyLoop(cpu: string): ChildProcess {
  return spawn('taskset', ['-c', cpu, process.execPath, '-e', 'for (;;) {}'], { stdio: 'ignore' });
}

function affinity(pid: number): string {
  return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
}

/** Whether `pid` is still running (a killed process not yet reaped is a zombie: it counts as gone). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe.skipIf(!hasTaskset)('a real probe pinned with taskset', { timeout: 60_000 }, () => {
  const started: { kill(): void }[] = [];
  afterEach(() => {
    for (const p of started.splice(0)) p.kill();
  });

  it('calibrates at start, samples a window on its CPU and gives finite slowdowns', async () => {
    const probe = await CoreProbe.start('0');
    started.push(probe);
    expect(affinity(probe.pid!)).toBe('0');
    expect(probe.calibration?.cpuNs).toHaveLength(CALIBRATION_SAMPLES);
    const ref = probe.reference!;
    // Sanity only: an xorshift step is a few cycles (~1.6 ns here); 0.1-50 ns rules out a broken clock or loop.
    expect(ref).toBeGreaterThan(0.1);
    expect(ref).toBeLessThan(50);

    const w = await probe.window(1000);
    expect(w).not.toBeNull();
    // One sample per interval, the first half an interval in: 5 in 1 s at 200 ms.
    expect(w!.cpuNs).toHaveLength(Math.floor(1000 / PROBE_INTERVAL_MS));
    expect(w!.wallNs).toHaveLength(w!.cpuNs.length);
    const slow = slowdownOf(w!.cpuNs, probe.reference)!;
    // The reference includes this window's samples, so the median cannot read faster than it.
    expect(slow.median).toBeGreaterThanOrEqual(1);
    expect(slow.median).toBeLessThan(10);
    expect(slow.max).toBeGreaterThanOrEqual(slow.median);
    expect(probe.reference!).toBeLessThanOrEqual(ref);
    // Its cost: the loop and the wake-ups, well under 1 % of the core over the window (measured ~0.3 %).
    expect(w!.probeCpuUs).toBeGreaterThan(0);
    expect(w!.probeCpuUs).toBeLessThan(0.02 * 1000 * 1000);
  });

  it('a process competing for the same core does not read as a slow core: the probe times its own CPU', async () => {
    // A ~20 ms loop (not the bench's 0.33 ms) so the competitor surely preempts it mid-sample: then wall time
    // reads about twice the CPU time, and only CPU time says the core itself is as fast as before.
    const probe = await CoreProbe.start('0', { iterations: 12_000_000, intervalMs: 100, calibration: 5 });
    started.push(probe);
    const quiet = await probe.window(1500);
    const hog = busyLoop('0');
    started.push({ kill: () => hog.kill('SIGKILL') });
    await new Promise((r) => setTimeout(r, 200));
    const shared = await probe.window(1500);
    hog.kill('SIGKILL');
    expect(quiet).not.toBeNull();
    expect(shared).not.toBeNull();
    const wallOverCpu = median(shared!.wallNs.map((w, i) => w / shared!.cpuNs[i]!));
    // The premise: the competitor really took the core for part of each sample.
    expect(wallOverCpu).toBeGreaterThan(1.3);
    // The point: by CPU time the core is not slower (a real slow episode reads 1.7-1.9x; generous bound).
    expect(median(shared!.cpuNs) / median(quiet!.cpuNs)).toBeLessThan(1.3);
    expect(slowdownOf(shared!.cpuNs, probe.reference)!.median).toBeLessThan(1.3);
  });

  it('a probe that died answers no window and is no longer alive', async () => {
    const probe = await CoreProbe.start('0', { iterations: 200_000, intervalMs: 100, calibration: 3 });
    started.push(probe);
    expect(probe.alive).toBe(true);
    const pending = probe.window(2000);
    probe.kill();
    expect(await pending).toBeNull();
    await new Promise((r) => setTimeout(r, 100));
    expect(probe.alive).toBe(false);
    expect(await probe.window(200)).toBeNull();
  });

  it.skipIf(availableParallelism() < 2)('probes a pinning per side, sharing one probe when both sides share a CPU', async () => {
    const probes = await coreProbes({ server: '0', client: '1' });
    expect(probes).not.toBeNull();
    expect(probes!.pids).toHaveLength(2);
    expect(probes!.pids.map(affinity)).toEqual(['0', '1']);
    const speed = await probes!.window(600);
    expect(speed).not.toBeNull();
    for (const side of ['server', 'client'] as const) {
      expect(speed!.coreSlowdown[side]).toBeGreaterThanOrEqual(0.8);
      expect(speed!.coreSlowdown[side]).toBeLessThan(10);
      expect(speed!.coreSlowdownMax[side]).toBeGreaterThanOrEqual(speed!.coreSlowdown[side]);
    }
    expect(speed!.probeCpuMs).toBeGreaterThan(0);
    // Started once per bench process: the same CPU list again reuses the running probe.
    const again = await coreProbes({ server: '1', client: '1' });
    expect(again!.pids).toEqual([probes!.pids[1]]);
  });

  it('probes end with the bench process, which they do not keep alive', () => {
    const script = `const { coreProbes } = await import(${JSON.stringify(PROBE_MODULE)});
      const p = await coreProbes({ server: '0', client: '0' });
      console.log(JSON.stringify(p.pids));`;
    // execFileSync returns only once the script has exited by itself, with the probe still running until then.
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    const pids = JSON.parse(out.trim()) as number[];
    expect(pids).toHaveLength(1);
    expect(running(pids[0]!)).toBe(false);
  });
});
