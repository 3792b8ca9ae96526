import { type Gauge, METRICS } from '@ffnet/common';
import type { ByteBudget } from '@ffnet/transport';
import type { ServiceGroup } from './group.js';

interface GaugeHost {
  readonly groups: readonly ServiceGroup[];
  readonly receiveBudget: ByteBudget;
  readonly outputBudget: ByteBudget;
}

/**
 * Registers a server's gauges (in flight, queued, connections, budget use) to be read when its metrics are
 * collected, not written per message. Returns the remover, or undefined without metrics. Gauges are set, not
 * added: servers sharing one Metrics should each use their own prefix.
 */
export function collectServerGauges(server: GaugeHost): (() => void) | undefined {
  const metrics = server.groups.find((g) => g.config.metrics !== undefined)?.config.metrics;
  if (metrics === undefined) return undefined;
  const inFlight = metrics.gauge(METRICS.serverInFlight).labels();
  const queued = metrics.gauge(METRICS.serverQueued).labels();
  const connections = metrics.gauge(METRICS.connections).labels('server');
  const used = metrics.gauge(METRICS.budgetUsed);
  const limit = metrics.gauge(METRICS.budgetLimit);
  const waiting = metrics.gauge(METRICS.budgetWaiting);
  const budgets: [ByteBudget, Gauge, Gauge, Gauge][] = [
    [server.receiveBudget, used.labels('receive'), limit.labels('receive'), waiting.labels('receive')],
    [server.outputBudget, used.labels('output'), limit.labels('output'), waiting.labels('output')],
  ];
  return metrics.onCollect(() => {
    let n = 0;
    let q = 0;
    let c = 0;
    for (const g of server.groups) {
      n += g.processor.processing;
      q += g.services.queued();
      c += g.ioWorker.connections;
    }
    inFlight.set(n);
    queued.set(q);
    connections.set(c);
    for (const [b, u, l, w] of budgets) {
      const s = b.stats;
      u.set(s.used);
      l.set(s.limit);
      w.set(s.waiting);
    }
  });
}
