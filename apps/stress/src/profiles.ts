import type { Caps } from './verdict.js';

const MiB = 1024 * 1024;

export interface Profile {
  readonly name: 'full' | 'ci';
  /** The global watchdog: past it the run is killed and fails. */
  readonly watchdogMs: number;
  readonly server: {
    readonly receiveBudgetBytes: number;
    readonly outputBudgetBytes: number;
    readonly maxQueuedBytes: number;
    readonly frameTimeoutMs: number;
    readonly idleTimeoutMs: number;
  };
  readonly caps: Omit<Caps, 'receiveBudgetBytes' | 'outputBudgetBytes'>;
  readonly fuzz: { readonly frames: number; readonly framesPerWrite: number; readonly concurrency: number; readonly timeLimitMs: number };
  /** Lying-header stages: connections, and how much of the claimed body each sends before it stalls. */
  readonly lying: { readonly stages: readonly { connections: number; partBytes: number }[]; readonly claimBytes: number; readonly holdMs: number };
  readonly amplify: { readonly connections: number; readonly requests: number; readonly holdMs: number };
  readonly slowloris: { readonly silent: number; readonly dribble: number; readonly holdMs: number };
  readonly kill9: { readonly rounds: number; readonly clientsPerRound: number };
  readonly calls: { readonly calls: number; readonly processes: number; readonly concurrency: number; readonly timeLimitMs: number };
  readonly churn: { readonly connections: number; readonly concurrency: number; readonly timeLimitMs: number };
  readonly healthy: {
    readonly intervalMs: number;
    readonly timeoutMs: number;
    readonly unloadedCalls: number;
    /** No successful healthy call for this long, with the server process alive, is a hang. */
    readonly hangMs: number;
  };
  /** After the attacks: how long to wait for the server's fds to come back before measuring anyway. */
  readonly settleMs: number;
  /** The bound on the server's own stop at the end; past it, it is a hang and is killed. */
  readonly stopBoundMs: number;
}

/**
 * Allowances, the same for both profiles (see README, "Reading the report"):
 * - RSS: baseline + receive budget + output budget + 160 MiB. The slack covers what is not request or reply
 *   bytes: V8's young generation and old-space growth under a million short-lived messages, per-connection
 *   socket and transport state for the 1000-connection stage, and malloc arenas that do not shrink.
 * - fds: 2, for what libuv may open lazily on first use (a signal pipe, a threadpool wake-up) after the warm-up.
 * - heap: 5 % of the baseline or 4 MiB, whichever is larger: code V8 compiles for paths the attacks reach only
 *   late, and inline caches, are heap too, and a baseline heap of ~8 MiB makes 5 % smaller than one such step.
 */
const caps = { rssSlackBytes: 160 * MiB, fdSlack: 2, heapFraction: 0.05, heapFloorBytes: 4 * MiB };

export const PROFILES: Readonly<Record<'full' | 'ci', Profile>> = {
  full: {
    name: 'full',
    watchdogMs: 40 * 60_000,
    server: {
      receiveBudgetBytes: 256 * MiB,
      outputBudgetBytes: 256 * MiB,
      maxQueuedBytes: 64 * MiB,
      frameTimeoutMs: 5_000,
      idleTimeoutMs: 5 * 60_000,
    },
    caps,
    fuzz: { frames: 1_200_000, framesPerWrite: 256, concurrency: 8, timeLimitMs: 15 * 60_000 },
    lying: {
      stages: [
        // 1/8 of the claim: enough that the decoder allocates the whole claimed body.
        { connections: 1, partBytes: 32 * MiB },
        { connections: 100, partBytes: 1 * MiB },
        { connections: 1000, partBytes: 64 * 1024 },
      ],
      claimBytes: 256 * MiB,
      holdMs: 30_000,
    },
    amplify: { connections: 4, requests: 256, holdMs: 8_000 },
    slowloris: { silent: 200, dribble: 200, holdMs: 30_000 },
    kill9: { rounds: 20, clientsPerRound: 2 },
    calls: { calls: 1_000_000, processes: 2, concurrency: 128, timeLimitMs: 15 * 60_000 },
    churn: { connections: 10_000, concurrency: 16, timeLimitMs: 5 * 60_000 },
    healthy: { intervalMs: 20, timeoutMs: 5_000, unloadedCalls: 500, hangMs: 10_000 },
    settleMs: 20_000,
    stopBoundMs: 15_000,
  },
  ci: {
    name: 'ci',
    watchdogMs: 8 * 60_000,
    server: {
      receiveBudgetBytes: 64 * MiB,
      outputBudgetBytes: 64 * MiB,
      maxQueuedBytes: 16 * MiB,
      frameTimeoutMs: 2_000,
      idleTimeoutMs: 60_000,
    },
    caps,
    fuzz: { frames: 240_000, framesPerWrite: 256, concurrency: 4, timeLimitMs: 3 * 60_000 },
    lying: {
      stages: [
        { connections: 1, partBytes: 32 * MiB },
        { connections: 100, partBytes: 1 * MiB },
      ],
      claimBytes: 256 * MiB,
      holdMs: 20_000,
    },
    amplify: { connections: 2, requests: 128, holdMs: 4_000 },
    slowloris: { silent: 50, dribble: 50, holdMs: 20_000 },
    kill9: { rounds: 6, clientsPerRound: 2 },
    calls: { calls: 100_000, processes: 2, concurrency: 64, timeLimitMs: 2 * 60_000 },
    churn: { connections: 2_000, concurrency: 8, timeLimitMs: 60_000 },
    healthy: { intervalMs: 20, timeoutMs: 5_000, unloadedCalls: 200, hangMs: 10_000 },
    settleMs: 15_000,
    stopBoundMs: 10_000,
  },
};
