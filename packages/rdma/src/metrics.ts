import { type Counter, METRICS, type Metrics } from '@ffnet/common';
import { ibSocketTotals } from '@ffnet/connect';

type Totals = ReturnType<typeof ibSocketTotals>;

/** Metrics already fed, so two rdma() backends given the same Metrics do not count the process's totals twice. */
const fed = new WeakSet<Metrics>();

/**
 * Feeds `metrics` with the process's IBSocket work requests (per kind: send, recv, rdma) and credit stalls,
 * read when the metrics are collected: the verbs path only bumps plain counters (ibSocketTotals), whatever is
 * attached. The counters grow by what was added since the previous collection.
 */
export function feedRdmaMetrics(metrics: Metrics, read: () => Totals = ibSocketTotals): void {
  if (fed.has(metrics)) return;
  fed.add(metrics);
  const wrs = metrics.counter(METRICS.rdmaWorkRequests);
  const kinds: [keyof Totals, Counter][] = [
    ['sendWrs', wrs.labels('send')],
    ['recvWrs', wrs.labels('recv')],
    ['rdmaWrs', wrs.labels('rdma')],
    ['creditStalls', metrics.counter(METRICS.rdmaCreditStalls).labels()],
  ];
  const last: Totals = { sendWrs: 0, recvWrs: 0, rdmaWrs: 0, creditStalls: 0 };
  metrics.onCollect(() => {
    const now = read();
    for (const [k, c] of kinds) {
      const d = now[k] - last[k];
      if (d > 0) c.inc(d);
      last[k] = now[k];
    }
  });
}
