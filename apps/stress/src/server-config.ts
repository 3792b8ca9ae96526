import type { ServerOptions } from '@ffnet/server';

export interface ServerChildConfig {
  readonly unixPath: string;
  /** Server-wide caps (the `limits` option), bytes. */
  readonly receiveBudgetBytes: number;
  readonly outputBudgetBytes: number;
  /** Per-connection cap on queued replies. */
  readonly maxQueuedBytes: number;
  readonly frameTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** The options the stress server runs with: the caps it is judged against come from here. */
export function serverOptions(cfg: ServerChildConfig): ServerOptions {
  const ioWorker = {
    frameTimeoutMs: cfg.frameTimeoutMs,
    idleTimeoutMs: cfg.idleTimeoutMs,
    checkIntervalMs: Math.max(100, Math.min(1000, Math.floor(cfg.frameTimeoutMs / 4))),
    transport: { maxQueuedBytes: cfg.maxQueuedBytes },
  };
  return {
    groups: [
      { networkType: 'tcp', listener: { host: '127.0.0.1' }, ioWorker },
      { networkType: 'unix', listener: { path: cfg.unixPath }, ioWorker },
    ],
    limits: { receiveBudgetBytes: cfg.receiveBudgetBytes, outputBudgetBytes: cfg.outputBudgetBytes },
    // The fuzzer sends Core envelopes too: whatever the defaults become, nobody may stop this server that way.
    admin: { shutdown: 'none' },
  };
}
