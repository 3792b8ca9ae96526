// The pure logic behind "can this run be trusted": other processes' CPU from /proc samples, the
// contamination and rerun decisions, spread, and targets that compare two transports.
import { describe, expect, it } from 'vitest';
import { machineId, otherCpu, otherTaskCpu, parsePidStat, parseProcStat, readTaskTicks, stealCpu } from '../src/machine.js';
import { parseOptions } from '../src/options.js';
import type { RunResult } from '../src/run.js';
import { formatSummary, summarize } from '../src/summary.js';
import {
  attemptUntilClean,
  countReps,
  DEFAULT_MAX_CORE_SLOWDOWN,
  DEFAULT_MAX_OTHER_CPU,
  DEFAULT_MAX_SLOWDOWN,
  judge,
  RowSpeeds,
  shouldRerun,
  worstSlowdown,
} from '../src/trust.js';
import { type RpcWorkload, TARGETS, WORKLOADS } from '../src/workloads.js';

const W = (name: string) => WORKLOADS.find((w) => w.name === name) as RpcWorkload;

/** /proc/stat text: per core [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice]. */
function procStat(cores: number[][]): string {
  const sum = cores[0]!.map((_, i) => cores.reduce((a, c) => a + c[i]!, 0));
  return [`cpu  ${sum.join(' ')}`, ...cores.map((c, i) => `cpu${i} ${c.join(' ')}`), 'intr 1 2 3', 'ctxt 99'].join('\n');
}

describe('other processes’ CPU from two /proc/stat samples', () => {
  // Two cores, 1 s apart at 100 ticks/s: each core's total grows by 100.
  const before = parseProcStat(
    procStat([
      [1000, 10, 500, 8000, 20, 5, 5, 0, 0, 0],
      [2000, 0, 600, 7000, 10, 0, 10, 0, 0, 0],
    ]),
  );

  it('parses busy (user+nice+system+irq+softirq+steal) and total jiffies, leaving guest time out', () => {
    expect(before.busy).toBe(1000 + 10 + 500 + 5 + 5 + 2000 + 600 + 10);
    expect(before.total).toBe(before.busy + 8000 + 20 + 7000 + 10);
    expect(before.cores).toHaveLength(2);
    // guest and guest_nice are already counted in user and nice: adding them again would count twice.
    const guest = parseProcStat('cpu  10 0 0 90 0 0 0 0 10 0\ncpu0 10 0 0 90 0 0 0 0 10 0');
    expect(guest).toMatchObject({ busy: 10, total: 100 });
    expect(() => parseProcStat('intr 1')).toThrow(/no aggregate cpu line/);
  });

  it("subtracts the run's own ticks over the same window and divides by its length", () => {
    // Core 0: 90 of 100 ticks busy; core 1: 60 of 100. The run's processes used 120 ticks together.
    const after = parseProcStat(
      procStat([
        [1080, 10, 505, 8010, 20, 5, 10, 0, 0, 0],
        [2050, 0, 605, 7040, 10, 0, 15, 0, 0, 0],
      ]),
    );
    const got = otherCpu(before, after, 120);
    expect(got.otherCpu).toBe(0.3);
    expect(got.busyPerCore).toEqual([0.9, 0.6]);
    // Nothing else running: all of the busy time is ours, and sampling noise below zero is clamped.
    expect(otherCpu(before, after, 150).otherCpu).toBe(0);
    expect(otherCpu(before, after, 160).otherCpu).toBe(0);
    // Steal time (a neighbour VM on the host) counts as other work too.
    const stolen = parseProcStat(
      procStat([
        [1000, 10, 500, 8080, 20, 5, 5, 20, 0, 0],
        [2000, 0, 600, 7100, 10, 0, 10, 0, 0, 0],
      ]),
    );
    expect(otherCpu(before, stolen, 0).otherCpu).toBe(0.2);
  });

  it('steal between two samples, in cores', () => {
    const before = parseProcStat(
      procStat([
        [1000, 0, 500, 8100, 0, 0, 0, 0, 0, 0],
        [1000, 0, 500, 8100, 0, 0, 0, 0, 0, 0],
      ]),
    );
    const after = parseProcStat(
      procStat([
        [1000, 0, 500, 8160, 0, 0, 0, 40, 0, 0],
        [1000, 0, 500, 8200, 0, 0, 0, 0, 0, 0],
      ]),
    );
    expect(stealCpu(before, after)).toBe(0.4);
    expect(stealCpu(before, before)).toBe(0);
  });

  it("other tasks' CPU from their own times: deltas, newcomers whole, the run's own processes left out", () => {
    const before = new Map([
      [10, 500],
      [11, 40],
      [12, 7],
    ]);
    // Task 10 used 30 ticks, 11 none, 12 exited (its last part is lost), 13 started in the window and used 20.
    const after = new Map([
      [10, 530],
      [11, 40],
      [13, 20],
    ]);
    expect(otherTaskCpu(before, after, 2)).toBe(0.25);
    expect(otherTaskCpu(before, before, 2)).toBe(0);
    expect(otherTaskCpu(before, after, 0)).toBe(0);
    // Against this machine's /proc: this process is excluded when asked, and listed otherwise.
    const all = readTaskTicks(new Set());
    const others = readTaskTicks(new Set([process.pid]));
    expect(all?.has(process.pid)).toBe(true);
    expect(others?.has(process.pid)).toBe(false);
    expect((others?.size ?? 0) + 1).toBeGreaterThanOrEqual(all?.size ?? 0);
  });

  it('reads utime + stime of a process, whatever its command name holds', () => {
    const fields = ['S', '1', '2', '3', '0', '-1', '4194560', '100', '0', '0', '0', '250', '40', '0', '0', '20'];
    expect(parsePidStat(`1234 (node) ${fields.join(' ')}`)).toBe(290);
    expect(parsePidStat(`1234 (we ird) (x)) ${fields.join(' ')}`)).toBe(290);
    expect(parsePidStat('1234 (node) S 1')).toBeNull();
  });

  it('names a machine by a short stable hash of hostname, CPU model and kernel', () => {
    const id = machineId('vm', 'AMD EPYC', '6.1.0');
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(machineId('vm', 'AMD EPYC', '6.1.0')).toBe(id);
    expect(machineId('vm2', 'AMD EPYC', '6.1.0')).not.toBe(id);
    expect(machineId('vm', 'AMD EPYC', '6.2.0')).not.toBe(id);
  });
});

function run(over: Partial<RunResult>): RunResult {
  const w = W(over.workload ?? 'W2');
  return {
    peer: 'ffnet',
    workload: w.name,
    transport: 'tcp',
    rep: 1,
    inflight: w.inflight,
    reqBytes: w.reqSize,
    rspBytes: w.rspSize,
    calls: 1000,
    seconds: 1,
    callsPerSec: 1000,
    p50Us: 100,
    p99Us: 200,
    cpu: { client: { userMs: 1, sysMs: 1 }, server: { userMs: 2, sysMs: 2 } },
    rssPeakMB: { client: 50, server: 60 },
    pin: null,
    machine: 'test0000',
    attempt: 1,
    ...over,
  };
}

describe('contamination and reruns', () => {
  it('marks a run contaminated above the limit only, and never judges what it could not read', () => {
    const cpuOnly = (max: number | null) => ({ maxOtherCpu: max, maxSlowdown: null });
    expect(judge(run({ otherCpu: 0.16 }), cpuOnly(0.15))).toMatchObject({ contaminated: true, contaminatedBy: ['otherCpu'] });
    expect(judge(run({ otherCpu: 0.15 }), cpuOnly(0.15)).contaminated).toBe(false);
    expect('contaminatedBy' in judge(run({ otherCpu: 0.15 }), cpuOnly(0.15))).toBe(false);
    expect(judge(run({ otherCpu: 0.02 }), cpuOnly(DEFAULT_MAX_OTHER_CPU)).contaminated).toBe(false);
    expect('contaminated' in judge(run({}), cpuOnly(0.15))).toBe(false);
    expect('contaminated' in judge(run({ otherCpu: 1.5 }), cpuOnly(null))).toBe(false);
  });

  it('marks a run contaminated when either pinned core ran slower than --max-slowdown times its row, and says why', () => {
    const limits = { maxOtherCpu: 0.15, maxSlowdown: 1.2 };
    const slow = (server: number, client: number, otherCpu = 0.01) => run({ otherCpu, rowSlowdown: { server, client }, coreSlowdown: { server, client } });
    expect(judge(slow(1.02, 1.0), limits)).toMatchObject({ contaminated: false });
    expect(judge(slow(1.2, 1.2), limits).contaminated).toBe(false);
    expect(judge(slow(1.21, 1.0), limits)).toMatchObject({ contaminated: true, contaminatedBy: ['slowCore'] });
    expect(judge(slow(1.0, 1.85), limits)).toMatchObject({ contaminated: true, contaminatedBy: ['slowCore'] });
    // Both at once: both reasons, so a reader sees each.
    expect(judge(slow(1.9, 1.0, 0.5), limits)).toMatchObject({ contaminated: true, contaminatedBy: ['otherCpu', 'slowCore'] });
    expect(judge(slow(1.0, 1.0, 0.5), limits)).toMatchObject({ contaminated: true, contaminatedBy: ['otherCpu'] });
    // `--max-slowdown off`: the slowdown is recorded but judges nothing; other CPU still does.
    expect(judge(slow(3, 3), { maxOtherCpu: 0.15, maxSlowdown: null }).contaminated).toBe(false);
    expect('contaminated' in judge(slow(3, 3), { maxOtherCpu: null, maxSlowdown: null })).toBe(false);
    // Not probed (no pinning, ib_write_bw): the slowdown limit judges nothing, so no field unless other CPU is read.
    expect('contaminated' in judge(run({}), limits)).toBe(false);
    expect(judge(run({ otherCpu: 0.01 }), limits).contaminated).toBe(false);
    // Probed but other CPU unreadable: the slowdown alone decides.
    expect(judge(run({ rowSlowdown: { server: 1.5, client: 1 } }), limits)).toMatchObject({ contaminated: true, contaminatedBy: ['slowCore'] });
    expect(judge(run({ rowSlowdown: { server: 1.05, client: 1 } }), limits).contaminated).toBe(false);
    expect(worstSlowdown(run({ coreSlowdown: { server: 1.1, client: 1.3 } }))).toBe(1.3);
    expect(worstSlowdown(run({}))).toBeUndefined();
  });

  it('judges the core against its own best by --max-core-slowdown, whatever the row did', () => {
    const limits = { maxOtherCpu: 0.15, maxSlowdown: 1.2, maxCoreSlowdown: 1.5 };
    const at = (core: number, row = 1) => run({ otherCpu: 0.01, coreSlowdown: { server: 1, client: core }, rowSlowdown: { server: 1, client: row } });
    // A row all of whose windows ran on a slow core: nothing against the row, everything against the core.
    expect(judge(at(1.8), limits)).toMatchObject({ contaminated: true, contaminatedBy: ['slowCore'] });
    expect(judge(at(1.5), limits).contaminated).toBe(false);
    // One reason however many of the two limits it broke.
    expect(judge(at(1.8, 1.5), limits).contaminatedBy).toEqual(['slowCore']);
    expect(judge(at(1.8), { ...limits, maxCoreSlowdown: null }).contaminated).toBe(false);
    expect(judge(run({ coreSlowdown: { server: 1.6, client: 1 } }), { maxOtherCpu: null, maxSlowdown: 1.2, maxCoreSlowdown: 1.5 }).contaminated).toBe(true);
  });

  it("judges a window against its own row, so a workload's own load on the probe's core is not held against it", () => {
    const limits = { maxOtherCpu: 0.15, maxSlowdown: DEFAULT_MAX_SLOWDOWN, maxCoreSlowdown: DEFAULT_MAX_CORE_SLOWDOWN };
    expect(DEFAULT_MAX_CORE_SLOWDOWN).toBeNull();
    const rows = new RowSpeeds();
    const w = (workload: RunResult['workload'], peer: RunResult['peer'], rep: number, server: number, client: number) =>
      run({ workload, peer, rep, otherCpu: 0.01, coreSlowdown: { server, client } });
    // W4's windows as ffnet read them over tcp on 9523ae91 (reference-issue15-s24-full.json); every peer's W4 client
    // core read 1.47-1.85 against its idle best, raw-net's included. Against their row they are clean; judged
    // against the core's best (the old rule, at 1.2) they were all rejected.
    const bulk = [w('W4', 'ffnet', 1, 1.18, 1.51), w('W4', 'ffnet', 2, 1.25, 1.52), w('W4', 'ffnet', 3, 1.19, 1.62)];
    for (const r of bulk) {
      rows.see(r);
      judge(r, limits);
    }
    expect(bulk.map((r) => r.contaminated)).toEqual([false, false, false]);
    // Against the median of the row so far: 1.25 over (1.18 + 1.25) / 2, 1.52 over (1.51 + 1.52) / 2.
    expect(bulk[1]!.rowSlowdown).toEqual({ server: 1.03, client: 1 });
    expect(
      bulk.map(
        (r) => judge({ ...r, rowSlowdown: undefined, contaminated: undefined }, { maxOtherCpu: 0.15, maxSlowdown: null, maxCoreSlowdown: 1.2 }).contaminated,
      ),
    ).toEqual([true, true, true]);
    // A window well off its row's others is still caught, as it ends: 2.0 over (1.52 + 1.62) / 2.
    const off = w('W4', 'ffnet', 4, 1.16, 2.0);
    rows.see(off);
    expect(judge(off, limits)).toMatchObject({ contaminated: true, contaminatedBy: ['slowCore'], rowSlowdown: { client: 1.27 } });
    // Rows are kept apart: another peer's or workload's windows do not move this row's median.
    const other = w('W1', 'ffnet', 1, 1.0, 1.0);
    rows.see(other);
    expect(other.rowSlowdown).toEqual({ server: 1, client: 1 });
    const raw = w('W4', 'raw-net', 1, 1.3, 1.3);
    rows.see(raw);
    expect(raw.rowSlowdown).toEqual({ server: 1, client: 1 });
    // Unprobed runs are left alone.
    const unprobed = run({ workload: 'W4', peer: 'ffnet' });
    rows.see(unprobed);
    expect(unprobed.rowSlowdown).toBeUndefined();
  });

  it('a row whose first window read unusually fast does not make its other windows slow (the median, not the best)', () => {
    const limits = { maxOtherCpu: 0.15, maxSlowdown: 1.2 };
    const rows = new RowSpeeds();
    // reference-issue15-s24-full-4.json, ffnet W4 over tcp, client core: 1.13 in its first window, 1.38-1.47 after.
    const all = [1.13, 1.38, 1.39, 1.43, 1.47, 1.41, 1.46].map((c, i) => run({ rep: i + 1, otherCpu: 0.01, coreSlowdown: { server: 1.15, client: c } }));
    for (const r of all) {
      rows.see(r);
      judge(r, limits);
    }
    expect(rows.rejudge(all, limits)).toEqual([]);
    expect(all.every((r) => r.contaminated === false)).toBe(true);
    // Against the row's fastest window, as first built, six of the seven were 1.22-1.30x: all rejected.
    expect(all.filter((r) => r.coreSlowdown!.client / 1.13 > 1.2)).toHaveLength(6);
  });

  it("judges every window again once the bench has ended, against its row's median of the whole bench", () => {
    const limits = { maxOtherCpu: 0.15, maxSlowdown: 1.2, maxCoreSlowdown: 1.5 };
    const rows = new RowSpeeds();
    const all = [1.45, 1.02, 1.05, 1.04].map((c, i) => run({ rep: i + 1, otherCpu: i === 3 ? 0.5 : 0.01, coreSlowdown: { server: 1, client: c } }));
    for (const r of all) {
      rows.see(r);
      judge(r, limits);
    }
    // The first window had only itself to go by; the last was caught by other CPU.
    expect(all.map((r) => r.contaminated)).toEqual([false, false, false, true]);
    const changed = rows.rejudge(all, limits);
    expect(changed).toEqual([all[0]]);
    // 1.45 over (1.04 + 1.05) / 2.
    expect(all[0]).toMatchObject({ contaminated: true, contaminatedBy: ['slowCore'], rowSlowdown: { client: 1.39 } });
    expect(all.map((r) => r.contaminated)).toEqual([true, false, false, true]);
    expect(all[3]!.contaminatedBy).toEqual(['otherCpu']);
    // Two clean of four is no majority: the row's figures now judge nothing.
    expect(countReps(all)).toMatchObject({ reps: 4, untrusted: true });
    expect(countReps(all).clean.map((r) => r.rep)).toEqual([2, 3]);
    // Judging again changes nothing more.
    expect(rows.rejudge(all, limits)).toEqual([]);
  });

  it('reruns a slow-core attempt like any contaminated one, keeping it out of the medians', async () => {
    const speeds = [1.8, 1.75, 1.01];
    const got = await attemptUntilClean(
      (n) => Promise.resolve(run({ attempt: n, otherCpu: 0, callsPerSec: n === 3 ? 500 : 290, coreSlowdown: { server: speeds[n - 1]!, client: 1 } })),
      { maxOtherCpu: 0.15, maxSlowdown: DEFAULT_MAX_SLOWDOWN, maxCoreSlowdown: 1.5, retries: 2 },
      new RowSpeeds(),
      () => {},
    );
    expect(got.map((r) => r.contaminatedBy ?? [])).toEqual([['slowCore'], ['slowCore'], []]);
    const rows = summarize([W('W2')], got).medians;
    expect(rows[0]).toMatchObject({ runs: 1, reps: 1, callsPerSec: 500, coreSlowdown: 1.01, untrusted: false });
    expect(formatSummary(summarize([W('W2')], got))).toMatch(/1\.01x/);
  });

  it('reruns a contaminated attempt while retries are left', () => {
    expect(shouldRerun(run({ contaminated: true, attempt: 1 }), 2)).toBe(true);
    expect(shouldRerun(run({ contaminated: true, attempt: 2 }), 2)).toBe(true);
    expect(shouldRerun(run({ contaminated: true, attempt: 3 }), 2)).toBe(false);
    expect(shouldRerun(run({ contaminated: true, attempt: 1 }), 0)).toBe(false);
    expect(shouldRerun(run({ contaminated: false, attempt: 1 }), 2)).toBe(false);
  });

  it('tries again until an attempt is clean, keeping every attempt', async () => {
    const others = [0.9, 0.4, 0.05, 0.01];
    const seen: [number, boolean][] = [];
    const got = await attemptUntilClean(
      (n) => Promise.resolve(run({ attempt: n, otherCpu: others[n - 1]! })),
      { maxOtherCpu: 0.15, maxSlowdown: null, retries: 5 },
      new RowSpeeds(),
      (r, again) => seen.push([r.attempt, again]),
    );
    expect(got.map((r) => [r.attempt, r.contaminated])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    expect(seen).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    // Out of retries: the last attempt stays contaminated.
    const stuck = await attemptUntilClean(
      (n) => Promise.resolve(run({ attempt: n, otherCpu: 1 })),
      { maxOtherCpu: 0.15, maxSlowdown: null, retries: 2 },
      new RowSpeeds(),
      () => {},
    );
    expect(stuck.map((r) => r.contaminated)).toEqual([true, true, true]);
    // A failing attempt propagates (the caller lists it as FAILED), after the attempts before it were reported.
    const reported: number[] = [];
    await expect(
      attemptUntilClean(
        (n) => (n === 1 ? Promise.resolve(run({ attempt: 1, otherCpu: 1 })) : Promise.reject(new Error('bench client exited with 1'))),
        { maxOtherCpu: 0.15, maxSlowdown: null, retries: 2 },
        new RowSpeeds(),
        (r) => reported.push(r.attempt),
      ),
    ).rejects.toThrow(/exited/);
    expect(reported).toEqual([1]);
  });

  it('counts the clean attempt of each repetition; a row without a clean majority is untrusted', () => {
    const c = countReps([
      run({ rep: 1, attempt: 1, contaminated: true, callsPerSec: 1 }),
      run({ rep: 1, attempt: 2, contaminated: false, callsPerSec: 10 }),
      run({ rep: 2, attempt: 1, contaminated: false, callsPerSec: 20 }),
      run({ rep: 3, attempt: 1, contaminated: true, callsPerSec: 2 }),
      run({ rep: 3, attempt: 2, contaminated: true, callsPerSec: 3 }),
    ]);
    expect(c.reps).toBe(3);
    expect(c.clean.map((r) => r.callsPerSec)).toEqual([10, 20]);
    // Repetition 3 never came clean: its last attempt stands for it, outside the median.
    expect(c.runs.map((r) => r.callsPerSec)).toEqual([10, 20, 3]);
    expect(c.untrusted).toBe(false);
    const one = countReps([run({ rep: 1, contaminated: false }), run({ rep: 2, contaminated: true }), run({ rep: 3, contaminated: true })]);
    expect(one.untrusted).toBe(true);
    expect(countReps([run({ rep: 1 })]).untrusted).toBe(false);
    expect(countReps([run({ rep: 1, contaminated: true })]).untrusted).toBe(true);
  });

  it('parses --max-other-cpu and --retries, with the defaults', () => {
    expect(parseOptions(['--pin', 'off'])).toMatchObject({ maxOtherCpu: DEFAULT_MAX_OTHER_CPU, retries: 2 });
    expect(parseOptions(['--pin', 'off', '--max-other-cpu', '0.3', '--retries', '0'])).toMatchObject({ maxOtherCpu: 0.3, retries: 0 });
    expect(parseOptions(['--pin', 'off', '--max-other-cpu', 'off'])).toMatchObject({ maxOtherCpu: null });
    expect(() => parseOptions(['--max-other-cpu', 'lots'])).toThrow(/--max-other-cpu needs/);
    expect(() => parseOptions(['--retries', '1.5'])).toThrow(/--retries needs/);
  });

  it('parses --max-slowdown, with its default and off', () => {
    expect(parseOptions(['--pin', 'off'])).toMatchObject({ maxSlowdown: DEFAULT_MAX_SLOWDOWN });
    expect(parseOptions(['--pin', 'off', '--max-slowdown', '1.5'])).toMatchObject({ maxSlowdown: 1.5 });
    expect(parseOptions(['--pin', 'off', '--max-slowdown', 'off'])).toMatchObject({ maxSlowdown: null });
    expect(parseOptions(['--pin', 'off'])).toMatchObject({ maxCoreSlowdown: null });
    expect(parseOptions(['--pin', 'off', '--max-core-slowdown', '1.8'])).toMatchObject({ maxCoreSlowdown: 1.8 });
    expect(parseOptions(['--pin', 'off', '--max-core-slowdown', 'off'])).toMatchObject({ maxCoreSlowdown: null });
    expect(() => parseOptions(['--pin', 'off', '--max-core-slowdown', '0.9'])).toThrow(/--max-core-slowdown needs/);
    expect(() => parseOptions(['--pin', 'off', '--max-slowdown', '0.9'])).toThrow(/--max-slowdown needs/);
    expect(() => parseOptions(['--pin', 'off', '--max-slowdown', 'fast'])).toThrow(/--max-slowdown needs/);
  });
});

describe('medians from clean repetitions, with their spread', () => {
  const w2 = W('W2');

  it('leaves contaminated attempts out of the median and shows min-max of the counted ones', () => {
    const s = summarize(
      [w2],
      [
        run({ rep: 1, callsPerSec: 900, p50Us: 110, otherCpu: 0.01, contaminated: false }),
        run({ rep: 2, attempt: 1, callsPerSec: 100, p50Us: 900, otherCpu: 1.2, contaminated: true }),
        run({ rep: 2, attempt: 2, callsPerSec: 1000, p50Us: 100, otherCpu: 0.03, contaminated: false }),
        run({ rep: 3, callsPerSec: 1100, p50Us: 90, otherCpu: 0.02, contaminated: false }),
      ],
    );
    expect(s.medians[0]).toMatchObject({
      runs: 3,
      reps: 3,
      untrusted: false,
      callsPerSec: 1000,
      p50Us: 100,
      otherCpu: 0.02,
      spread: { callsPerSec: { min: 900, max: 1100 }, p50Us: { min: 90, max: 110 } },
    });
    expect(formatSummary(s)).toMatch(/W2\s+tcp\s+ffnet\s+3\/3\s+1,000\s+-\s+0\.90-1\.10x\s+100\.0\s+0\.90-1\.10x.*\s0\.02\s.*\sok/);
  });

  it('marks a row untrusted, and its targets UNTRUSTED instead of met / NOT MET', () => {
    const s = summarize(
      [w2],
      [run({ callsPerSec: 800, contaminated: true, otherCpu: 0.5 }), run({ peer: 'raw-net', callsPerSec: 1000, contaminated: false, otherCpu: 0 })],
    );
    expect(s.medians.find((m) => m.peer === 'ffnet')).toMatchObject({ runs: 1, reps: 1, untrusted: true, callsPerSec: 800 });
    const a = s.ratios[0]!.against[0]!;
    expect(a).toMatchObject({ peer: 'raw-net', ratio: 0.8, met: true, status: 'UNTRUSTED' });
    const text = formatSummary(s);
    expect(text).toMatch(/W2\s+tcp\s+ffnet\s+1\/1\s.*UNTRUSTED/);
    expect(text).toMatch(/W2\s+tcp\s+raw-net\s+callsPerSec\s+800\s+1,000\s+0\.800x\s+>= 0\.75x\s+UNTRUSTED/);
  });

  it("puts both sides' CPU per call and their ratio beside each target", () => {
    const s = summarize(
      [w2],
      [
        run({ cpu: { client: { userMs: 3, sysMs: 1 }, server: { userMs: 5, sysMs: 1 } } }),
        run({ peer: 'raw-net', cpu: { client: { userMs: 1, sysMs: 1 }, server: { userMs: 2, sysMs: 1 } } }),
      ],
    );
    expect(s.ratios[0]!.ffnetCpu).toEqual({ client: 4, server: 6 });
    expect(s.ratios[0]!.against[0]).toMatchObject({ cpu: { client: 2, server: 3 }, cpuRatio: { client: 2, server: 2 } });
    expect(formatSummary(s)).toMatch(/W2\s+tcp\s+raw-net\s+callsPerSec.*\s4\.00\/6\.00\s+2\.00\/3\.00\s+2\.00\/2\.00x\s+issue 15/);
  });
});

describe('targets', () => {
  it("holds issue 15's ratios over tcp and unix, the tls and W5 targets, each with its source", () => {
    const find = (workload: string, transport: string, vs: string) =>
      TARGETS.filter((t) => t.workload === workload && t.transport === transport && t.vs === vs).map(({ op, ratio, source }) => `${op} ${ratio} (${source})`);
    for (const transport of ['tcp', 'unix']) {
      expect(find('W1', transport, 'raw-net')).toEqual(['<= 1.1 (issue 15)']);
      expect(find('W2', transport, 'raw-net')).toEqual(['>= 0.75 (issue 15)']);
      for (const w of ['W3', 'W4']) {
        expect(find(w, transport, 'raw-net')).toEqual(['>= 0.9 (issue 15)']);
        expect(find(w, transport, 'zeromq')).toEqual(['>= 1.2 (issue 15)']);
        expect(find(w, transport, 'grpc-js')).toEqual(['>= 8 (WORKLOADS.md)']);
      }
    }
    expect(find('W2', 'tls', 'grpc-js')).toEqual([expect.stringMatching(/^>= 30 \(issue 12/)]);
    expect(find('W4', 'tls', 'raw-tls')).toEqual([expect.stringMatching(/^>= 0.8 \(issue 12/)]);
    expect(find('W5', 'rdma', 'ib_write_bw')).toEqual([expect.stringMatching(/^>= 0.8 /)]);
    for (const t of TARGETS) expect(t.source).not.toBe('');
  });

  it('judges ffnet over one transport against a peer over another, and prints nothing without that run', () => {
    const w3 = W('W3');
    const unixOnly = [run({ workload: 'W3', transport: 'unix', mbPerSec: 1000 }), run({ workload: 'W3', transport: 'unix', peer: 'raw-net', mbPerSec: 1500 })];
    const without = summarize([w3], unixOnly);
    expect(without.ratios.flatMap((r) => r.against.map((a) => `${r.transport}:${a.peer}@${a.transport}`))).toEqual(['unix:raw-net@unix']);
    expect(formatSummary(without)).not.toMatch(/raw-net@unix/);

    // A transport this build does not list yet (the shm slice adds it): its rows and cross target appear.
    const shm = run({ workload: 'W3', mbPerSec: 3300 });
    (shm as { transport: string }).transport = 'shm';
    const s = summarize([w3], [...unixOnly, shm]);
    const row = s.ratios.find((r) => (r.transport as string) === 'shm')!;
    expect(row.against).toEqual([
      expect.objectContaining({
        peer: 'raw-net',
        transport: 'unix',
        value: 1500,
        ratio: 2.2,
        met: true,
        status: 'met',
        target: expect.objectContaining({ vsTransport: 'unix', ratio: 2, op: '>=' }),
      }),
    ]);
    expect(s.medians.map((m) => `${m.transport}:${m.peer}`)).toEqual(['unix:ffnet', 'unix:raw-net', 'shm:ffnet']);
    expect(formatSummary(s)).toMatch(/W3\s+shm\s+raw-net@unix\s+mbPerSec\s+3,300\s+1,500\s+2\.200x\s+>= 2x\s+met/);
    const slow = summarize([w3], [...unixOnly, { ...shm, mbPerSec: 2900 }]);
    expect(slow.ratios.find((r) => (r.transport as string) === 'shm')!.against[0]).toMatchObject({ ratio: 1.933, status: 'NOT MET' });
  });
});
