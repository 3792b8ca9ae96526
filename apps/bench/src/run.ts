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
}
