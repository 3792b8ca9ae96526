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

/**
 * The options the stress server runs with. `limits`, `frameTimeoutMs` and the transport's `maxQueuedBytes` are
 * the hardening round's caps; a server that does not know an option ignores it, which is why the object is built
 * loosely and cast.
 */
export function serverOptions(cfg: ServerChildConfig): ServerOptions {
  const ioWorker = {
    frameTimeoutMs: cfg.frameTimeoutMs,
    idleTimeoutMs: cfg.idleTimeoutMs,
    checkIntervalMs: Math.max(100, Math.min(1000, Math.floor(cfg.frameTimeoutMs / 4))),
    transport: { maxQueuedBytes: cfg.maxQueuedBytes },
  };
  const options: Record<string, unknown> = {
    groups: [
      { networkType: 'tcp', listener: { host: '127.0.0.1' }, ioWorker },
      { networkType: 'unix', listener: { path: cfg.unixPath }, ioWorker },
    ],
    limits: { receiveBudgetBytes: cfg.receiveBudgetBytes, outputBudgetBytes: cfg.outputBudgetBytes },
  };
  return options as unknown as ServerOptions;
}

