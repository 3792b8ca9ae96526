// Medians per (workload, transport, peer), ffnet's ratio to each peer against the targets, and with --baseline
// the current build against the baseline build.
import { BASELINE_PEER, PEER_NAMES, type PeerName, PROM_PEER, TRANSPORT_NAMES, type TransportName } from './names.js';
import type { RunResult } from './run.js';
import { median, round } from './stats.js';
import { type Counted, countReps, worstSlowdown } from './trust.js';
import { type Metric, type RpcWorkload, type Target, targetsFor } from './workloads.js';

export interface MedianRow {
  workload: RpcWorkload['name'];
  transport: TransportName;
  peer: PeerName;
  /** Repetitions the medians count: the clean ones (all of them when none stayed clean, see `untrusted`). */
  runs: number;
  /** Repetitions run, clean or not. */
  reps: number;
  /** Fewer than a majority of the repetitions clean (trust.ts): the figures are shown, they judge nothing. */
  untrusted: boolean;
  callsPerSec: number;
  mbPerSec?: number;
  p50Us: number;
  p99Us: number;
  /** Lowest and highest value over the counted repetitions, for throughput and p50. */
  spread: { callsPerSec: MinMax; mbPerSec?: MinMax; p50Us: MinMax };
  /** CPU ms (user + sys) per 1000 calls: cost, independent of how long the run was. */
  clientCpuMsPerKCall: number;
  serverCpuMsPerKCall: number;
  /** Median cores of other processes' work during the counted windows; absent when it could not be read. */
  otherCpu?: number;
  /** The worst core slowdown (core-probe.ts) of the counted windows, either side; absent when none was probed. */
  coreSlowdown?: number;
  rssPeakMB: { client: number; server: number };
}

export interface MinMax {
  min: number;
  max: number;
}

/** CPU µs per call (the same number as CPU ms per 1000 calls), client and server. */
export interface CallCpu {
  client: number;
  server: number;
}

export interface Against {
  peer: Exclude<PeerName, 'ffnet'>;
  /** The peer's transport: the row's own, or another one for a cross-transport target (shm against unix). */
  transport: TransportName;
  value: number;
  ratio: number;
  target: Target;
  met: boolean;
  /** met / NOT MET, or UNTRUSTED when ffnet's row or the peer's has no clean majority of repetitions. */
  status: 'met' | 'NOT MET' | 'UNTRUSTED';
  /** The peer's CPU µs per call, and ffnet's over it (above 1 costs ffnet more). */
  cpu: CallCpu;
  cpuRatio: CallCpu;
}

export interface RatioRow {
  workload: RpcWorkload['name'];
  transport: TransportName;
  metric: Metric;
  ffnet: number;
  /** ffnet's CPU µs per call over this transport. */
  ffnetCpu: CallCpu;
  against: Against[];
}

/** The current build against the baseline build (`--baseline`), on the workload's metric and on CPU per call. */
export interface BaselineRow {
  workload: RpcWorkload['name'];
  transport: TransportName;
  metric: Metric;
  /** Repetitions in which both builds ran: the pairs the spread is taken over. */
  reps: number;
  ffnet: number;
  baseline: number;
  /** ffnet / baseline of the medians. For p50Us above 1 is slower; for throughput below 1 is slower. */
  ratio: number;
  /** Lowest and highest ffnet / baseline of single repetitions (each pair ran back to back). */
  spread: { min: number; max: number };
  /** ffnet / baseline of the median CPU ms per 1000 calls: above 1 costs more. */
  cpuRatio: { client: number; server: number };
  /**
   * `within spread` when the repetitions disagree on the direction (1.0 lies inside the spread), else `faster`
   * or `slower`; `one rep` when there is no spread to judge by.
   */
  verdict: 'within spread' | 'faster' | 'slower' | 'one rep';
}

/** The cells the two same-run comparisons (against the baseline build, against ffnet+prom) share. */
function pairCells(r: BaselineRow | ObservabilityRow, a: number, b: number): string[] {
  const digits = r.metric === 'p50Us' ? 1 : 0;
  return [
    r.workload,
    r.transport,
    r.metric,
    String(r.reps),
    fmt(a, digits),
    fmt(b, digits),
    `${fmt(r.ratio, 3)}x`,
    `${fmt(r.spread.min, 3)}-${fmt(r.spread.max, 3)}x`,
    `${fmt(r.cpuRatio.client, 3)}x`,
    `${fmt(r.cpuRatio.server, 3)}x`,
  ];
}

/** ffnet with @ffnet/prometheus on both sides against plain ffnet, in the same run (issue 13's cost target). */
export interface ObservabilityRow {
  workload: RpcWorkload['name'];
  transport: TransportName;
  metric: Metric;
  reps: number;
  ffnet: number;
  prom: number;
  /** The instrumented peer's share of plain ffnet's performance: prom / ffnet for throughput, ffnet / prom for p50. */
  ratio: number;
  /** Lowest and highest of that share over single repetitions. */
  spread: { min: number; max: number };
  /** ffnet+prom / ffnet of the median CPU ms per 1000 calls (above 1 costs more): steadier than throughput here. */
  cpuRatio: { client: number; server: number };
  target: number;
  met: boolean;
}

/** WORKLOADS.md / issue 13: W2 with the prom-client adapter at least this share of W2 without it. */
export const OBSERVABILITY_TARGET = 0.85;

export interface Summary {
  medians: MedianRow[];
  ratios: RatioRow[];
  /** Present when the run had the `ffnet@baseline` peer. */
  baseline?: BaselineRow[];
  /** Present when the run had the `ffnet+prom` peer. */
  observability?: ObservabilityRow[];
}

function perKCall(r: RunResult, side: 'client' | 'server'): number {
  const c = r.cpu[side];
  return r.calls > 0 ? ((c.userMs + c.sysMs) * 1000) / r.calls : Number.NaN;
}

function minMax(values: number[]): MinMax {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length === 0 ? { min: Number.NaN, max: Number.NaN } : { min: Math.min(...v), max: Math.max(...v) };
}

function metricValue(w: RpcWorkload, r: MedianRow): number {
  return w.metric === 'mbPerSec' ? (r.mbPerSec ?? Number.NaN) : r[w.metric];
}

/** The transports in `runs`, known ones first in their usual order, then any other (a backend added later). */
function transportsOf(runs: readonly RunResult[]): TransportName[] {
  const seen = new Set(runs.map((r) => r.transport));
  return [...TRANSPORT_NAMES.filter((t) => seen.has(t)), ...[...seen].filter((t) => !TRANSPORT_NAMES.includes(t))];
}

function medianRow(w: RpcWorkload, transport: TransportName, peer: PeerName, c: Counted): MedianRow {
  const rs = c.clean.length > 0 ? c.clean : c.runs;
  const m = (f: (r: RunResult) => number) => median(rs.map(f));
  const row: MedianRow = {
    workload: w.name,
    transport,
    peer,
    runs: rs.length,
    reps: c.reps,
    untrusted: c.untrusted,
    callsPerSec: Math.round(m((r) => r.callsPerSec)),
    p50Us: round(
      m((r) => r.p50Us),
      1,
    ),
    p99Us: round(
      m((r) => r.p99Us),
      1,
    ),
    spread: { callsPerSec: minMax(rs.map((r) => r.callsPerSec)), p50Us: minMax(rs.map((r) => r.p50Us)) },
    clientCpuMsPerKCall: round(
      m((r) => perKCall(r, 'client')),
      2,
    ),
    serverCpuMsPerKCall: round(
      m((r) => perKCall(r, 'server')),
      2,
    ),
    rssPeakMB: {
      client: round(
        m((r) => r.rssPeakMB.client),
        1,
      ),
      server: round(
        m((r) => r.rssPeakMB.server),
        1,
      ),
    },
  };
  const other = m((r) => r.otherCpu ?? Number.NaN);
  if (Number.isFinite(other)) row.otherCpu = round(other, 3);
  const slow = rs.map(worstSlowdown).filter((x): x is number => x !== undefined);
  if (slow.length > 0) row.coreSlowdown = Math.max(...slow);
  if (w.payload !== undefined) {
    row.mbPerSec = round(
      m((r) => r.mbPerSec ?? Number.NaN),
      1,
    );
    row.spread.mbPerSec = minMax(rs.map((r) => r.mbPerSec ?? Number.NaN));
  }
  return row;
}

/** ffnet's row against one target's peer row: the ratio on the workload's metric, its status and the CPU per call. */
export function judgeTarget(w: RpcWorkload, ff: MedianRow, other: MedianRow, target: Target): Against {
  const x = metricValue(w, ff) / metricValue(w, other);
  const met = target.op === '<=' ? x <= target.ratio : x >= target.ratio;
  const cpu = { client: other.clientCpuMsPerKCall, server: other.serverCpuMsPerKCall };
  return {
    peer: target.vs,
    transport: other.transport,
    value: metricValue(w, other),
    ratio: round(x, 3),
    target,
    met,
    status: ff.untrusted || other.untrusted ? 'UNTRUSTED' : met ? 'met' : 'NOT MET',
    cpu,
    cpuRatio: { client: round(ff.clientCpuMsPerKCall / cpu.client, 3), server: round(ff.serverCpuMsPerKCall / cpu.server, 3) },
  };
}

export function summarize(workloads: RpcWorkload[], runs: RunResult[]): Summary {
  const medians: MedianRow[] = [];
  const ratios: RatioRow[] = [];
  const baseline: BaselineRow[] = [];
  const observability: ObservabilityRow[] = [];
  const transports = transportsOf(runs);
  // What the medians count, per row; the baseline and observability comparisons pair repetitions from it.
  const counted: RunResult[] = [];
  const rowsOf = new Map<string, Map<PeerName, MedianRow>>();
  for (const w of workloads) {
    for (const transport of transports) {
      const rows = new Map<PeerName, MedianRow>();
      for (const peer of PEER_NAMES) {
        const attempts = runs.filter((r) => r.workload === w.name && r.transport === transport && r.peer === peer);
        if (attempts.length === 0) continue;
        const c = countReps(attempts);
        counted.push(...(c.clean.length > 0 ? c.clean : c.runs));
        const row = medianRow(w, transport, peer, c);
        rows.set(peer, row);
        medians.push(row);
      }
      rowsOf.set(`${w.name}/${transport}`, rows);
    }
  }
  for (const w of workloads) {
    for (const transport of transports) {
      const rows = rowsOf.get(`${w.name}/${transport}`)!;
      const ff = rows.get('ffnet');
      if (ff === undefined) continue;
      const ratio: RatioRow = {
        workload: w.name,
        transport,
        metric: w.metric,
        ffnet: metricValue(w, ff),
        ffnetCpu: { client: ff.clientCpuMsPerKCall, server: ff.serverCpuMsPerKCall },
        against: [],
      };
      for (const target of targetsFor(w, transport)) {
        const other = rowsOf.get(`${w.name}/${target.vsTransport ?? transport}`)?.get(target.vs);
        if (other !== undefined) ratio.against.push(judgeTarget(w, ff, other, target));
      }
      ratios.push(ratio);
      const base = rows.get(BASELINE_PEER);
      if (base !== undefined) baseline.push(compareBaseline(w, transport, ff, base, counted));
      const prom = rows.get(PROM_PEER);
      if (prom !== undefined) observability.push(compareObserved(w, transport, ff, prom, counted));
    }
  }
  const out: Summary = { medians, ratios };
  if (baseline.length > 0) out.baseline = baseline;
  if (observability.length > 0) out.observability = observability;
  return out;
}

function compareObserved(w: RpcWorkload, transport: TransportName, ff: MedianRow, prom: MedianRow, runs: RunResult[]): ObservabilityRow {
  const pick = (peer: PeerName) => runs.filter((r) => r.workload === w.name && r.transport === transport && r.peer === peer);
  const lowerIsBetter = w.metric === 'p50Us';
  const share = (plain: number, observed: number) => (lowerIsBetter ? plain / observed : observed / plain);
  const observed = pick(PROM_PEER);
  const perRep: number[] = [];
  for (const c of pick('ffnet')) {
    const o = observed.find((r) => r.rep === c.rep);
    if (o !== undefined) perRep.push(share(metricOf(w, c), metricOf(w, o)));
  }
  const value = (r: MedianRow) => (w.metric === 'mbPerSec' ? (r.mbPerSec ?? Number.NaN) : r[w.metric]);
  const ratio = share(value(ff), value(prom));
  return {
    workload: w.name,
    transport,
    metric: w.metric,
    reps: perRep.length,
    ffnet: value(ff),
    prom: value(prom),
    ratio: round(ratio, 3),
    spread: { min: round(Math.min(...perRep), 3), max: round(Math.max(...perRep), 3) },
    cpuRatio: {
      client: round(prom.clientCpuMsPerKCall / ff.clientCpuMsPerKCall, 3),
      server: round(prom.serverCpuMsPerKCall / ff.serverCpuMsPerKCall, 3),
    },
    target: OBSERVABILITY_TARGET,
    met: ratio >= OBSERVABILITY_TARGET,
  };
}

function metricOf(w: RpcWorkload, r: RunResult): number {
  return w.metric === 'mbPerSec' ? (r.mbPerSec ?? Number.NaN) : r[w.metric];
}

function compareBaseline(w: RpcWorkload, transport: TransportName, ff: MedianRow, base: MedianRow, runs: RunResult[]): BaselineRow {
  const pick = (peer: PeerName) => runs.filter((r) => r.workload === w.name && r.transport === transport && r.peer === peer);
  const current = pick('ffnet');
  const before = pick(BASELINE_PEER);
  const perRep: number[] = [];
  for (const c of current) {
    const b = before.find((r) => r.rep === c.rep);
    if (b !== undefined) perRep.push(metricOf(w, c) / metricOf(w, b));
  }
  const value = (r: MedianRow) => (w.metric === 'mbPerSec' ? (r.mbPerSec ?? Number.NaN) : r[w.metric]);
  const min = Math.min(...perRep);
  const max = Math.max(...perRep);
  const lowerIsBetter = w.metric === 'p50Us';
  let verdict: BaselineRow['verdict'];
  if (perRep.length < 2) verdict = 'one rep';
  else if (min <= 1 && max >= 1) verdict = 'within spread';
  else verdict = min > 1 === lowerIsBetter ? 'slower' : 'faster';
  return {
    workload: w.name,
    transport,
    metric: w.metric,
    reps: perRep.length,
    ffnet: value(ff),
    baseline: value(base),
    ratio: round(value(ff) / value(base), 3),
    spread: { min: round(min, 3), max: round(max, 3) },
    cpuRatio: {
      client: round(ff.clientCpuMsPerKCall / base.clientCpuMsPerKCall, 3),
      server: round(ff.serverCpuMsPerKCall / base.serverCpuMsPerKCall, 3),
    },
    verdict,
  };
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

const fmt = (x: number | undefined, digits = 0) =>
  x === undefined || !Number.isFinite(x) ? '-' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Lowest and highest as shares of the median ("0.95-1.04x"): how far single repetitions strayed. */
function spreadText(mm: MinMax | undefined, mid: number | undefined): string {
  if (mm === undefined || mid === undefined || !Number.isFinite(mm.min) || !(mid > 0)) return '-';
  return `${fmt(mm.min / mid, 2)}-${fmt(mm.max / mid, 2)}x`;
}

const pair = (c: CallCpu, digits = 2) => `${fmt(c.client, digits)}/${fmt(c.server, digits)}`;

export function formatSummary(s: Summary): string {
  const medians = table(
    [
      'workload',
      'transport',
      'peer',
      'reps',
      'calls/s',
      'MB/s',
      'tput spread',
      'p50 µs',
      'p50 spread',
      'p99 µs',
      'cli cpu ms/kcall',
      'srv cpu ms/kcall',
      'other cpu',
      'core slow',
      'rss cli/srv MB',
      'trust',
    ],
    s.medians.map((r) => [
      r.workload,
      r.transport,
      r.peer,
      `${r.runs}/${r.reps}`,
      fmt(r.callsPerSec),
      fmt(r.mbPerSec),
      r.mbPerSec === undefined ? spreadText(r.spread.callsPerSec, r.callsPerSec) : spreadText(r.spread.mbPerSec, r.mbPerSec),
      fmt(r.p50Us, 1),
      spreadText(r.spread.p50Us, r.p50Us),
      fmt(r.p99Us, 1),
      fmt(r.clientCpuMsPerKCall, 2),
      fmt(r.serverCpuMsPerKCall, 2),
      fmt(r.otherCpu, 2),
      r.coreSlowdown === undefined ? '-' : `${fmt(r.coreSlowdown, 2)}x`,
      `${fmt(r.rssPeakMB.client)}/${fmt(r.rssPeakMB.server)}`,
      r.untrusted ? 'UNTRUSTED' : 'ok',
    ]),
  );
  const ratioRows = s.ratios.flatMap((r) =>
    r.against.map((a) => [
      r.workload,
      r.transport,
      a.transport === r.transport ? a.peer : `${a.peer}@${a.transport}`,
      r.metric,
      fmt(r.ffnet, r.metric === 'p50Us' ? 1 : 0),
      fmt(a.value, r.metric === 'p50Us' ? 1 : 0),
      `${fmt(a.ratio, 3)}x`,
      `${a.target.op} ${a.target.ratio}x`,
      a.status,
      pair(r.ffnetCpu),
      pair(a.cpu),
      `${fmt(a.cpuRatio.client, 2)}/${fmt(a.cpuRatio.server, 2)}x`,
      a.target.source,
    ]),
  );
  const ratios =
    ratioRows.length === 0
      ? '(no ratios: ffnet and at least one other peer must both run)'
      : table(
          [
            'workload',
            'transport',
            'vs',
            'metric',
            'ffnet',
            'peer',
            'ffnet/peer',
            'target',
            'status',
            'ffnet µs/call cli/srv',
            'peer µs/call cli/srv',
            'cpu ffnet/peer',
            'source',
          ],
          ratioRows,
        );
  let text =
    `Medians of the clean repetitions (reps: counted/run; spread: lowest-highest repetition over the median; other cpu: cores of other work; core slow: the slowest core's worst window over its best speed)\n${medians}` +
    `\n\nffnet against its peers (targets: issue 15, issue 12, issue 14, WORKLOADS.md; cpu: µs per call, client/server)\n${ratios}`;
  if (s.baseline !== undefined) {
    const rows = s.baseline.map((b) => [...pairCells(b, b.ffnet, b.baseline), b.verdict]);
    const head = ['workload', 'transport', 'metric', 'reps', 'ffnet', 'baseline', 'ffnet/base', 'per-rep', 'cli cpu/call', 'srv cpu/call', 'verdict'];
    text += `\n\nffnet against ffnet@baseline, alternated in the same run (p50Us and cpu: above 1x is slower; throughput: below 1x is slower)\n${table(head, rows)}`;
  }
  if (s.observability !== undefined) {
    const rows = s.observability.map((o) => [...pairCells(o, o.ffnet, o.prom), `>= ${o.target}x`, o.met ? 'met' : 'NOT MET']);
    const head = ['workload', 'transport', 'metric', 'reps', 'ffnet', 'ffnet+prom', 'share', 'per-rep', 'cli cpu/call', 'srv cpu/call', 'target', 'status'];
    text += `\n\nObservability cost: ffnet with @ffnet/prometheus on both sides against plain ffnet, same run (share: above 1x is no cost)\n${table(head, rows)}`;
  }
  return text;
}
