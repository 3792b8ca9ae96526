// Medians per (workload, transport, peer) and ffnet's ratio to each peer against the targets.
import type { RunResult } from './harness.js';
import { PEER_NAMES, type PeerName, TRANSPORT_NAMES, type TransportName } from './peers/types.js';
import { median, round } from './stats.js';
import type { Metric, RpcWorkload, Target } from './workloads.js';

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

export interface Summary {
  medians: MedianRow[];
  ratios: RatioRow[];
}

function perKCall(r: RunResult, side: 'client' | 'server'): number {
  const c = r.cpu[side];
  return r.calls > 0 ? ((c.userMs + c.sysMs) * 1000) / r.calls : Number.NaN;
}

export function summarize(workloads: RpcWorkload[], runs: RunResult[]): Summary {
  const medians: MedianRow[] = [];
  const ratios: RatioRow[] = [];
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
          p50Us: round(m((r) => r.p50Us), 1),
          p99Us: round(m((r) => r.p99Us), 1),
          clientCpuMsPerKCall: round(m((r) => perKCall(r, 'client')), 2),
          serverCpuMsPerKCall: round(m((r) => perKCall(r, 'server')), 2),
          rssPeakMB: { client: round(m((r) => r.rssPeakMB.client), 1), server: round(m((r) => r.rssPeakMB.server), 1) },
        };
        if (w.payload !== undefined) row.mbPerSec = round(m((r) => r.mbPerSec ?? Number.NaN), 1);
        rows.set(peer, row);
        medians.push(row);
      }
      const ff = rows.get('ffnet');
      if (ff === undefined) continue;
      const value = (r: MedianRow) => (w.metric === 'mbPerSec' ? (r.mbPerSec ?? Number.NaN) : r[w.metric]);
      const ratio: RatioRow = { workload: w.name, transport, metric: w.metric, ffnet: value(ff), against: [] };
      for (const peer of PEER_NAMES) {
        if (peer === 'ffnet') continue;
        const other = rows.get(peer);
        const target = w.targets[peer];
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
    }
  }
  return { medians, ratios };
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
  return `Medians\n${medians}\n\nffnet against its peers (targets from shared/bench/WORKLOADS.md)\n${ratios}`;
}
