import { describe, expect, it } from 'vitest';
import { quantile, statusKiB } from '../src/proc.js';
import { PROFILES } from '../src/profiles.js';
import { type Caps, judge, type Observed, rssCap, verdictLine } from '../src/verdict.js';

const MiB = 1024 * 1024;
const caps: Caps = {
  receiveBudgetBytes: 64 * MiB,
  outputBudgetBytes: 64 * MiB,
  rssSlackBytes: 160 * MiB,
  fdSlack: 2,
  heapFraction: 0.05,
  heapFloorBytes: 4 * MiB,
};
const clean: Observed = {
  crashes: 0,
  hangs: 0,
  healthyFailures: 0,
  baselineRssBytes: 60 * MiB,
  peakRssBytes: 200 * MiB,
  fdsBefore: 22,
  fdsAfter: 22,
  heapBefore: 8 * MiB,
  heapAfter: 8.5 * MiB,
  stalledPeersLeftOpen: 0,
  harnessErrors: [],
};

describe('verdict', () => {
  it('passes a clean run and says so in the closing line', () => {
    const v = judge(caps, clean);
    expect(v).toMatchObject({ pass: true, reasons: [] });
    expect(verdictLine(v)).toBe('stress: PASS');
  });

  it('the RSS cap is baseline + both budgets + slack, and peak above it fails', () => {
    expect(rssCap(caps, 60 * MiB)).toBe((60 + 64 + 64 + 160) * MiB);
    expect(judge(caps, { ...clean, peakRssBytes: 348 * MiB }).pass).toBe(true);
    const v = judge(caps, { ...clean, peakRssBytes: 348 * MiB + 1 });
    expect(v.pass).toBe(false);
    expect(v.reasons).toEqual(['peak RSS 348.0 MiB above cap 348.0 MiB']);
  });

  it('fails on any crash, hang, healthy failure, stalled peer or harness error, listing each', () => {
    const v = judge(caps, {
      ...clean,
      crashes: 1,
      hangs: 2,
      healthyFailures: 3,
      stalledPeersLeftOpen: 4,
      harnessErrors: ['churn: time limit reached after 10 connections'],
    });
    expect(v.pass).toBe(false);
    expect(v.reasons).toEqual([
      '1 crash(es)',
      '2 hang(s)',
      '3 healthy-client failure(s)',
      '4 stalled peer(s) still open after their hold',
      'churn: time limit reached after 10 connections',
    ]);
    expect(verdictLine(v)).toBe(`stress: FAIL ${v.reasons.join('; ')}`);
  });

  it('fds must come back within the slack, either way', () => {
    expect(judge(caps, { ...clean, fdsAfter: 24 }).pass).toBe(true);
    expect(judge(caps, { ...clean, fdsAfter: 20 }).pass).toBe(true);
    expect(judge(caps, { ...clean, fdsAfter: 25 }).reasons).toEqual(['fds 22 before, 25 after (slack 2)']);
    expect(judge(caps, { ...clean, fdsAfter: undefined }).reasons).toEqual(['fds after: server unavailable']);
  });

  it('heap tolerance is 5 % of the baseline, or the floor when that is larger', () => {
    // 8 MiB baseline: 5 % is 0.4 MiB, so the 4 MiB floor applies.
    expect(judge(caps, { ...clean, heapAfter: 12 * MiB }).pass).toBe(true);
    expect(judge(caps, { ...clean, heapAfter: 12 * MiB + 1 }).pass).toBe(false);
    // 200 MiB baseline: 5 % is 10 MiB.
    const big = { ...clean, heapBefore: 200 * MiB };
    expect(judge(caps, { ...big, heapAfter: 210 * MiB }).pass).toBe(true);
    const v = judge(caps, { ...big, heapAfter: 211 * MiB });
    expect(v.heapToleranceBytes).toBe(10 * MiB);
    expect(v.reasons).toEqual(['heap 200.0 MiB before, 211.0 MiB after (tolerance 10.0 MiB)']);
    expect(judge(caps, { ...clean, heapAfter: undefined }).reasons).toEqual(['heap after: server unavailable']);
  });
});

describe('measurement helpers', () => {
  it('reads VmRSS and VmHWM lines of /proc/<pid>/status', () => {
    const status = 'Name:\tnode\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\nThreads:\t7\n';
    expect(statusKiB(status, 'VmRSS')).toBe(65432);
    expect(statusKiB(status, 'VmHWM')).toBe(123456);
    expect(statusKiB(status, 'VmSwap')).toBe(0);
  });

  it('quantile is nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(quantile(xs, 0.5)).toBe(50);
    expect(quantile(xs, 0.99)).toBe(99);
    expect(quantile(xs, 1)).toBe(100);
    expect(quantile([], 0.99)).toBe(0);
  });

  it('profiles: the CI one is smaller and its holds outlast its frame timeout', () => {
    const { ci, full } = PROFILES;
    expect(ci.fuzz.frames).toBeGreaterThanOrEqual(200_000);
    expect(full.fuzz.frames).toBeGreaterThanOrEqual(1_000_000);
    expect(full.calls.calls).toBe(1_000_000);
    expect(full.churn.connections).toBe(10_000);
    expect(full.lying.stages.map((s) => s.connections)).toEqual([1, 100, 1000]);
    expect(ci.lying.stages.map((s) => s.connections)).toContain(100);
    for (const p of [ci, full]) {
      expect(p.lying.holdMs).toBeGreaterThanOrEqual(p.server.frameTimeoutMs * 1.5);
      expect(p.slowloris.holdMs).toBeGreaterThanOrEqual(p.server.frameTimeoutMs * 1.5);
    }
  });
});
