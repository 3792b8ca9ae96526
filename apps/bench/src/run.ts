// What one run is asked to do and what it reports: shared by the harness and the runners it dispatches to
// (ib-write-bw.ts), which therefore need not import the harness.
import type { PeerName, TransportName } from './names.js';
import type { CpuMs } from './protocol.js';
import type { RpcWorkload } from './workloads.js';

/** CPU lists for `taskset -c`; null when the run is not pinned. */
export interface Pinning {
  server: string;
  client: string;
}

export interface RunOptions {
  peer: PeerName;
  workload: RpcWorkload;
  transport: TransportName;
  warmupMs: number;
  measureMs: number;
  pin: Pinning | null;
  rep: number;
  /** 1 for the first try of this (peer, workload, transport, rep), 2 and up for reruns of a contaminated one. */
  attempt: number;
  /** Machine id (machine.ts) written into every result line. */
  machineId: string;
  /** When set, both children run with --cpu-prof and write their profiles here. */
  profileDir?: string;
  /** Root of the built checkout whose own bench child runs the `ffnet@baseline` peer. */
  baselineDir?: string;
}

export interface RunResult {
  peer: PeerName;
  workload: RpcWorkload['name'];
  transport: TransportName;
  rep: number;
  inflight: number;
  reqBytes: number;
  rspBytes: number;
  calls: number;
  seconds: number;
  callsPerSec: number;
  mbPerSec?: number;
  p50Us: number;
  p99Us: number;
  cpu: { client: CpuMs; server: CpuMs };
  rssPeakMB: { client: number; server: number };
  pin: Pinning | null;
  /** machine.ts's id of the host the run happened on. */
  machine: string;
  attempt: number;
  /**
   * Cores kept busy by other processes during the measuring window, on average; absent where it cannot be
   * read (no /proc, ib_write_bw's own processes).
   */
  otherCpu?: number;
  /** Busy share of each core over the window, the run's own processes included. */
  busyPerCore?: number[];
  /** The machine-wide /proc/stat estimate of otherCpu, kept for reference (tick-sampled: see readTaskTicks). */
  machineOtherCpu?: number;
  /**
   * Per pinned side, the median of the core-speed probe's samples in the window over the best that core has done
   * in this bench process (core-probe.ts): 1.00 = full speed. Absent without pinning, and for ib_write_bw.
   */
  coreSlowdown?: { server: number; client: number };
  /** The slowest single probe sample of the window over the same reference. */
  coreSlowdownMax?: { server: number; client: number };
  /**
   * `coreSlowdown` over the median `coreSlowdown` of the same (workload, transport, peer) in this bench, per side
   * (trust.ts, RowSpeeds): what `--max-slowdown` judges. Set as the run ends and again once the bench has ended.
   */
  rowSlowdown?: { server: number; client: number };
  /** CPU the core-speed probes used during the window (their cost, left out of otherCpu). */
  probeCpuMs?: number;
  /**
   * otherCpu above `--max-other-cpu`, rowSlowdown above `--max-slowdown` or (when set) coreSlowdown above
   * `--max-core-slowdown`: kept in the results, left out of the medians.
   */
  contaminated?: boolean;
  /** Why a contaminated run is: other processes' CPU, a slow core, or both. */
  contaminatedBy?: ContaminationReason[];
}

export type ContaminationReason = 'otherCpu' | 'slowCore';
