// Messages between the harness (parent) and its server/client children, over the IPC channel.
import type { Endpoint, PeerName } from './peers/types.js';
import type { WorkloadName } from './workloads.js';

export interface ChildConfig {
  role: 'server' | 'client';
  peer: PeerName;
  workload: WorkloadName;
  /** server: where to listen (tcp port 0 = any); client: where the server is. */
  endpoint: Endpoint;
  warmupMs: number;
  measureMs: number;
}

export interface CpuMs {
  userMs: number;
  sysMs: number;
  /** Minor page faults in the window: first touches of fresh memory, which show up as sys time. */
  minorFaults?: number;
}

export type ChildMessage =
  | { t: 'ready'; endpoint: Endpoint }
  | { t: 'mark' }
  | { t: 'result'; calls: number; seconds: number; p50Us: number; p99Us: number; cpu: CpuMs; rssPeakMB: number }
  | { t: 'report'; cpu: CpuMs; rssPeakMB: number }
  | { t: 'error'; message: string };

export type ParentMessage = { t: 'mark' } | { t: 'report' };

export function cpuMs(u: NodeJS.CpuUsage, minorFaults?: number): CpuMs {
  const out: CpuMs = { userMs: Math.round(u.user / 100) / 10, sysMs: Math.round(u.system / 100) / 10 };
  if (minorFaults !== undefined) out.minorFaults = minorFaults;
  return out;
}

export function minorFaults(): number {
  return process.resourceUsage().minorPageFault;
}

export function rssPeakMB(): number {
  // resourceUsage().maxRSS is in KiB.
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}
