import type { AuthStats } from './auth.js';
import type { MethodStats } from './service.js';

export interface GroupStats {
  readonly networkType: string;
  readonly addresses: readonly string[];
  readonly connections: number;
  /** Requests running or queued in this group's processor. */
  readonly inFlight: number;
  /** Authentication and authorization counters (zeros when the group has neither). */
  readonly auth: AuthStats;
}

/** A server-wide byte budget (ServerOptions.limits): its cap, what is taken now, the most ever taken. */
export interface BudgetStats {
  readonly limit: number;
  readonly used: number;
  readonly peak: number;
  /** Connections with reading paused until the budget has room. */
  readonly waiting: number;
}

/** What Core.stats reports. */
export interface ServerStats {
  readonly uptimeMs: number;
  readonly connections: number;
  readonly inFlight: number;
  readonly groups: readonly GroupStats[];
  /** Calls and error responses per `Service.method`, summed over groups. */
  readonly methods: Readonly<Record<string, MethodStats>>;
  /** Bytes held in partially received frames, across all connections of all groups. */
  readonly receiveBudget: BudgetStats;
  /** Bytes queued for sending, across all connections of all groups. */
  readonly outputBudget: BudgetStats;
  /** Authentication and authorization counters, summed over groups. */
  readonly auth: AuthStats;
}
