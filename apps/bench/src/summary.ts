// Medians per (workload, transport, peer), ffnet's ratio to each peer against the targets, and with --baseline
// the current build against the baseline build.
import { BASELINE_PEER, PEER_NAMES, type PeerName, PROM_PEER, TRANSPORT_NAMES, type TransportName } from './names.js';
import type { RunResult } from './run.js';
import { median, round } from './stats.js';
import { type Metric, type RpcWorkload, type Target, targetsFor } from './workloads.js';

export interface MedianRow {
  workload: RpcWorkload['name'];
  transport: TransportName;
  peer: PeerName;
  runs: number;
  callsPerSec: number;
  mbPerSec?: number;
  p50Us: number;
  p99Us: number;
  /** CPU ms (user + sys) per 1000 calls: cost, independent of how long the run was. */
  clientCpuMsPerKCall: number;
  serverCpuMsPerKCall: number;
  rssPeakMB: { client: number; server: number };
}

export interface RatioRow {
  workload: RpcWorkload['name'];
  transport: TransportName;
  metric: Metric;
  ffnet: number;
  against: { peer: Exclude<PeerName, 'ffnet'>; value: number; ratio: number; target: Target; met: boolean }[];
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

export function summarize(workloads: RpcWorkload[], runs: RunResult[]): Summary {
  const medians: MedianRow[] = [];
  const ratios: RatioRow[] = [];
  const baseline: BaselineRow[] = [];
  const observability: ObservabilityRow[] = [];
  for (const w of workloads) {
    for (const transport of TRANSPORT_NAMES) {
      const rows = new Map<PeerName, MedianRow>();
      for (const peer of PEER_NAMES) {
        const rs = runs.filter((r) => r.workload === w.name && r.transport === transport && r.peer === peer);
        if (rs.length === 0) continue;
        const m = (f: (r: RunResult) => number) => median(rs.map(f));
        const row: MedianRow = {
          workload: w.name,
          transport,
          peer,
          runs: rs.length,
          callsPerSec: Math.round(m((r) => r.callsPerSec)),
          p50Us: round(
            m((r) => r.p50Us),
            1,
          ),
          p99Us: round(
            m((r) => r.p99Us),
            1,
          ),
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
        if (w.payload !== undefined)
          row.mbPerSec = round(
            m((r) => r.mbPerSec ?? Number.NaN),
            1,
          );
        rows.set(peer, row);
        medians.push(row);
      }
      const ff = rows.get('ffnet');
      if (ff === undefined) continue;
      const value = (r: MedianRow) => (w.metric === 'mbPerSec' ? (r.mbPerSec ?? Number.NaN) : r[w.metric]);
      const ratio: RatioRow = { workload: w.name, transport, metric: w.metric, ffnet: value(ff), against: [] };
      const targets = targetsFor(w, transport);
      for (const peer of PEER_NAMES) {
        if (peer === 'ffnet') continue;
        const other = rows.get(peer);
        const target = targets[peer];
        if (other === undefined || target === undefined) continue;
        const x = value(ff) / value(other);
        ratio.against.push({
          peer,
          value: value(other),
          ratio: round(x, 3),
          target,
          met: target.op === '<=' ? x <= target.ratio : x >= target.ratio,
        });
      }
      ratios.push(ratio);
      const base = rows.get(BASELINE_PEER);
      if (base !== undefined) baseline.push(compareBaseline(w, transport, ff, base, runs));
      const prom = rows.get(PROM_PEER);
      if (prom !== undefined) observability.push(compareObserved(w, transport, ff, prom, runs));
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

export function formatSummary(s: Summary): string {
  const medians = table(
    ['workload', 'transport', 'peer', 'runs', 'calls/s', 'MB/s', 'p50 µs', 'p99 µs', 'cli cpu ms/kcall', 'srv cpu ms/kcall', 'rss cli/srv MB'],
    s.medians.map((r) => [
      r.workload,
      r.transport,
      r.peer,
      String(r.runs),
      fmt(r.callsPerSec),
      fmt(r.mbPerSec),
      fmt(r.p50Us, 1),
      fmt(r.p99Us, 1),
      fmt(r.clientCpuMsPerKCall, 2),
      fmt(r.serverCpuMsPerKCall, 2),
      `${fmt(r.rssPeakMB.client)}/${fmt(r.rssPeakMB.server)}`,
    ]),
  );
  const ratioRows = s.ratios.flatMap((r) =>
    r.against.map((a) => [
      r.workload,
      r.transport,
      a.peer,
      r.metric,
      fmt(r.ffnet, r.metric === 'p50Us' ? 1 : 0),
      fmt(a.value, r.metric === 'p50Us' ? 1 : 0),
      `${fmt(a.ratio, 3)}x`,
      `${a.target.op} ${a.target.ratio}x`,
      a.met ? 'met' : 'NOT MET',
    ]),
  );
  const ratios =
    ratioRows.length === 0
      ? '(no ratios: ffnet and at least one other peer must both run)'
      : table(['workload', 'transport', 'vs', 'metric', 'ffnet', 'peer', 'ffnet/peer', 'target', 'status'], ratioRows);
  let text = `Medians\n${medians}\n\nffnet against its peers (targets from shared/bench/WORKLOADS.md)\n${ratios}`;
  if (s.baseline !== undefined) {
    const rows = s.baseline.map((b) => {
      const digits = b.metric === 'p50Us' ? 1 : 0;
      return [
        b.workload,
        b.transport,
        b.metric,
        String(b.reps),
        fmt(b.ffnet, digits),
        fmt(b.baseline, digits),
        `${fmt(b.ratio, 3)}x`,
        `${fmt(b.spread.min, 3)}-${fmt(b.spread.max, 3)}x`,
        `${fmt(b.cpuRatio.client, 3)}x`,
        `${fmt(b.cpuRatio.server, 3)}x`,
        b.verdict,
      ];
    });
    const head = ['workload', 'transport', 'metric', 'reps', 'ffnet', 'baseline', 'ffnet/base', 'per-rep', 'cli cpu/call', 'srv cpu/call', 'verdict'];
    text += `\n\nffnet against ffnet@baseline, alternated in the same run (p50Us and cpu: above 1x is slower; throughput: below 1x is slower)\n${table(head, rows)}`;
  }
  if (s.observability !== undefined) {
    const rows = s.observability.map((o) => {
      const digits = o.metric === 'p50Us' ? 1 : 0;
      return [
        o.workload,
        o.transport,
        o.metric,
        String(o.reps),
        fmt(o.ffnet, digits),
        fmt(o.prom, digits),
        `${fmt(o.ratio, 3)}x`,
        `${fmt(o.spread.min, 3)}-${fmt(o.spread.max, 3)}x`,
        `${fmt(o.cpuRatio.client, 3)}x`,
        `${fmt(o.cpuRatio.server, 3)}x`,
        `>= ${o.target}x`,
        o.met ? 'met' : 'NOT MET',
      ];
    });
    const head = ['workload', 'transport', 'metric', 'reps', 'ffnet', 'ffnet+prom', 'share', 'per-rep', 'cli cpu/call', 'srv cpu/call', 'target', 'status'];
    text += `\n\nObservability cost: ffnet with @ffnet/prometheus on both sides against plain ffnet, same run (share: above 1x is no cost)\n${table(head, rows)}`;
  }
  return text;
}
