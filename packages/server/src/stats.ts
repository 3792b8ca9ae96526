import type { MethodStats } from './service.js';

export interface GroupStats {
  readonly networkType: string;
  readonly addresses: readonly string[];
  readonly connections: number;
  /** Requests running or queued in this group's processor. */
  readonly inFlight: number;
}

/** What Core.stats reports. */
export interface ServerStats {
  readonly uptimeMs: number;
  readonly connections: number;
  readonly inFlight: number;
  readonly groups: readonly GroupStats[];
  /** Calls and error responses per `Service.method`, summed over groups. */
  readonly methods: Readonly<Record<string, MethodStats>>;
}
