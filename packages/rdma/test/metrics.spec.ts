// Host test of the RDMA accounting (no verbs device needed): the counters IBSocketCore bumps are turned into
// metric increments at collection time. The per-socket counting itself is tested in connect's socket-core.spec.ts.
import type { Counter, Gauge, Histogram, MetricDef, MetricFamily, Metrics } from '@ffnet/common';
import { ibSocketTotals } from '@ffnet/connect';
import { describe, expect, it } from 'vitest';
import { rdma } from '../src/index.js';
import { feedRdmaMetrics } from '../src/metrics.js';

class MemoryMetrics implements Metrics {
  readonly values = new Map<string, number>();
  readonly collectors = new Set<() => void>();
  #family<C>(def: MetricDef, make: (key: string) => C): MetricFamily<C> {
    return { labels: (...v: string[]) => make(`${def.name}{${v.join(',')}}`) };
  }
  counter(def: MetricDef): MetricFamily<Counter> {
    return this.#family(def, (k) => ({ inc: (n = 1) => this.values.set(k, (this.values.get(k) ?? 0) + n) }));
  }
  gauge(def: MetricDef): MetricFamily<Gauge> {
    return this.#family(def, (k) => ({ set: (n: number) => this.values.set(k, n) }));
  }
  histogram(def: MetricDef): MetricFamily<Histogram> {
    return this.#family(def, () => ({ observe: () => undefined }));
  }
  onCollect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }
  collect(): void {
    for (const f of this.collectors) f();
  }
}

describe('RDMA metrics', () => {
  it('work requests per kind and credit stalls grow by what was added since the last collection', () => {
    const m = new MemoryMetrics();
    let totals = { sendWrs: 10, recvWrs: 64, rdmaWrs: 0, creditStalls: 0 };
    feedRdmaMetrics(m, () => totals);
    m.collect();
    expect(m.values.get('ffnet_rdma_work_requests_total{send}')).toBe(10);
    expect(m.values.get('ffnet_rdma_work_requests_total{recv}')).toBe(64);
    expect(m.values.has('ffnet_rdma_work_requests_total{rdma}')).toBe(false);
    totals = { sendWrs: 25, recvWrs: 70, rdmaWrs: 7, creditStalls: 3 };
    m.collect();
    m.collect();
    expect(m.values.get('ffnet_rdma_work_requests_total{send}')).toBe(25);
    expect(m.values.get('ffnet_rdma_work_requests_total{recv}')).toBe(70);
    expect(m.values.get('ffnet_rdma_work_requests_total{rdma}')).toBe(7);
    expect(m.values.get('ffnet_rdma_credit_stalls_total{}')).toBe(3);
  });

  it('rdma({ metrics }) feeds the process totals once per Metrics, however many backends share it', () => {
    const m = new MemoryMetrics();
    rdma({ metrics: m });
    rdma({ metrics: m });
    expect(m.collectors.size).toBe(1);
    m.collect();
    const t = ibSocketTotals();
    expect(m.values.get('ffnet_rdma_work_requests_total{send}') ?? 0).toBe(t.sendWrs);
    expect(m.values.get('ffnet_rdma_credit_stalls_total{}') ?? 0).toBe(t.creditStalls);
  });
});
