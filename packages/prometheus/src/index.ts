import type { Counter, Gauge, Histogram, HistogramDef, MetricDef, MetricFamily, Metrics } from '@ffnet/common';
import { InvalidArgError } from '@ffnet/common';
import { register as globalRegistry, type Registry } from 'prom-client';

export interface PrometheusMetricsOptions {
  /** Where the metrics are registered (default prom-client's global `register`). */
  registry?: Registry;
  /** Put before every metric name (default none): `myapp_` gives `myapp_ffnet_server_calls_total`. */
  prefix?: string;
}

type Labels = Record<string, string | number>;

/** One exported sample, in the shape prom-client's registry serialises (what `getMetricsAsJSON()` returns). */
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}

/** What a registry asks of a metric it holds (prom-client's `registerMetric` contract). */
interface RegisteredMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }>;
  reset(): void;
}

/** Idempotent readers registered with onCollect, per registry: every ffnet gauge on it runs them when read. */
const collectors = new WeakMap<Registry, Set<() => void>>();
/** The families on a registry, by full name: a server and a client on one registry share them. */
const families = new WeakMap<Registry, Map<string, Family<unknown>>>();

function labelsOf(names: readonly string[], values: readonly string[], what: string): Labels {
  if (values.length !== names.length) throw new InvalidArgError(`${what} takes ${names.length} label value(s) (${names.join(', ')}), got ${values.length}`);
  const out: Labels = {};
  for (let i = 0; i < names.length; i++) out[names[i]!] = values[i]!;
  return out;
}

/**
 * A family keeps its children's values in plain numbers, so recording is an addition on an object ffnet already
 * holds: labels are turned into a key once, when a child is bound, and into text only when the registry is read.
 */
abstract class Family<C> implements MetricFamily<C>, RegisteredMetric {
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator = 'sum' as const;
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly children = new Map<string, C & { readonly labels: Labels }>();
  readonly #registry: Registry;

  constructor(def: MetricDef, name: string, registry: Registry) {
    this.name = name;
    this.help = def.help;
    this.labelNames = def.labelNames;
    this.#registry = registry;
  }

  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let c = this.children.get(key);
    if (c === undefined) {
      c = this.child(labelsOf(this.labelNames, values, this.name));
      this.children.set(key, c);
    }
    return c;
  }

  protected abstract child(labels: Labels): C & { readonly labels: Labels };
  protected abstract samples(): Sample[];

  async get() {
    if (this.type === 'gauge') for (const fn of collectors.get(this.#registry) ?? []) fn();
    return { name: this.name, help: this.help, type: this.type, values: this.samples(), aggregator: this.aggregator };
  }

  /** Zeroes the values; the children stay bound, so ffnet's handles keep recording into what is exported. */
  reset(): void {
    for (const c of this.children.values()) (c as unknown as { clear(): void }).clear();
  }
}

class CounterChild implements Counter {
  value = 0;
  constructor(readonly labels: Labels) {}
  clear(): void {
    this.value = 0;
  }
  inc(n = 1): void {
    // Counters only go up; a negative or NaN increment is ffnet's bug, not worth a throw on the call path.
    if (n > 0) this.value += n;
  }
}

class CounterFamily extends Family<Counter> {
  readonly type = 'counter' as const;
  protected child(labels: Labels): CounterChild {
    return new CounterChild(labels);
  }
  protected samples(): Sample[] {
    return [...this.children.values()].map((c) => ({ value: (c as CounterChild).value, labels: c.labels }));
  }
}

class GaugeChild implements Gauge {
  value = 0;
  constructor(readonly labels: Labels) {}
  set(v: number): void {
    this.value = v;
  }
  clear(): void {
    this.value = 0;
  }
}

class GaugeFamily extends Family<Gauge> {
  readonly type = 'gauge' as const;
  protected child(labels: Labels): GaugeChild {
    return new GaugeChild(labels);
  }
  protected samples(): Sample[] {
    return [...this.children.values()].map((c) => ({ value: (c as GaugeChild).value, labels: c.labels }));
  }
}

class HistogramChild implements Histogram {
  /** Per bucket, not cumulative; the last is +Inf. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    // A dozen or so bounds: a linear scan beats a binary search and allocates nothing.
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

class HistogramFamily extends Family<Histogram> {
  readonly type = 'histogram' as const;
  readonly bounds: readonly number[];
  constructor(def: HistogramDef, name: string, registry: Registry) {
    super(def, name, registry);
    if (def.labelNames.includes('le')) throw new InvalidArgError(`histogram ${name}: 'le' is reserved for buckets`);
    const b = [...def.buckets];
    for (let i = 1; i < b.length; i++) if (!(b[i]! > b[i - 1]!)) throw new InvalidArgError(`histogram ${name}: buckets must ascend`);
    this.bounds = b;
  }
  protected child(labels: Labels): HistogramChild {
    return new HistogramChild(labels, this.bounds);
  }
  protected samples(): Sample[] {
    const out: Sample[] = [];
    for (const c of this.children.values()) {
      const h = c as HistogramChild;
      let acc = 0;
      for (let i = 0; i <= h.bounds.length; i++) {
        acc += h.counts[i]!;
        out.push({ metricName: `${this.name}_bucket`, labels: { ...h.labels, le: i < h.bounds.length ? h.bounds[i]! : '+Inf' }, value: acc });
      }
      out.push({ metricName: `${this.name}_sum`, labels: h.labels, value: h.sum });
      out.push({ metricName: `${this.name}_count`, labels: h.labels, value: h.count });
    }
    return out;
  }
}

/**
 * ffnet's Metrics in a prom-client Registry: pass the result as `metrics` to a Server and/or a Client, and serve
 * `registry.metrics()` as usual. Values live in the families and are turned into samples when the registry is
 * read, so recording costs an addition, never a label lookup. Several servers and clients may share one registry
 * (the families are shared); gauges are set by whoever collects last, so give each server its own prefix if several
 * share a registry.
 */
export function prometheusMetrics(opts: PrometheusMetricsOptions = {}): Metrics {
  const registry = opts.registry ?? globalRegistry;
  const prefix = opts.prefix ?? '';
  if (!/^[a-zA-Z_:]?[a-zA-Z0-9_:]*$/.test(prefix))
    throw new InvalidArgError(`prometheusMetrics: prefix ${JSON.stringify(prefix)} is not a valid metric name start`);
  let byName = families.get(registry);
  if (byName === undefined) {
    byName = new Map();
    families.set(registry, byName);
  }
  const shared = byName;
  function family<F extends Family<unknown>>(def: MetricDef, make: (name: string) => F): F {
    const name = prefix + def.name;
    const existing = shared.get(name);
    if (existing !== undefined) return existing as F;
    const f = make(name);
    // Throws if something else already took the name in this registry.
    registry.registerMetric(f as unknown as Parameters<Registry['registerMetric']>[0]);
    shared.set(name, f);
    return f;
  }
  return {
    counter: (def) => family(def, (name) => new CounterFamily(def, name, registry)),
    gauge: (def) => family(def, (name) => new GaugeFamily(def, name, registry)),
    histogram: (def) => family(def, (name) => new HistogramFamily(def, name, registry)),
    onCollect(fn: () => void): () => void {
      let set = collectors.get(registry);
      if (set === undefined) {
        set = new Set();
        collectors.set(registry, set);
      }
      const s = set;
      s.add(fn);
      return () => {
        s.delete(fn);
      };
    },
  };
}
