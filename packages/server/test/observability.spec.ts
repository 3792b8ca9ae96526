import * as dc from 'node:diagnostics_channel';
import {
  type CallEndMessage,
  type CallErrorMessage,
  type CallStartMessage,
  CHANNELS,
  type ConnectionMessage,
  type Counter,
  type Gauge,
  type Histogram,
  type MetricDef,
  type MetricFamily,
  type Metrics,
} from '@ffnet/common';
import { defineService, InvalidArgError, method, StatusCode } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, CoreService, implement, Server } from '../src/index.js';
import { LatencyHistogram } from '../src/latency.js';
import { groupConfig, rejection } from './helpers.js';

const Obs = defineService({
  name: 'Obs',
  id: 730,
  methods: {
    add: method<{ a: number; b: number }, number>(1),
    fail: method<Record<string, never>, number>(2),
    sleep: method<{ ms: number }, string>(3),
  },
});

const service = implement(Obs, {
  add: (_ctx, req) => req.a + req.b,
  fail: () => {
    throw new InvalidArgError('no such thing');
  },
  sleep: async (_ctx, req) => {
    await new Promise<void>((r) => setTimeout(r, req.ms));
    return 'slept';
  },
});

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop();
});

async function startServer(extra: { metrics?: Metrics } = {}): Promise<Server> {
  const s = new Server({ groups: [groupConfig('tcp')], admin: { inspect: 'local' }, ...extra });
  s.addService(service);
  await s.start();
  running.push(s);
  return s;
}

/** Subscribes to every ffnet channel for the duration of `fn`, recording what arrives in order. */
async function recording(fn: (events: [string, unknown][]) => Promise<void>): Promise<void> {
  const events: [string, unknown][] = [];
  const subs = Object.values(CHANNELS).map((name) => {
    const f = (msg: unknown) => events.push([name, msg]);
    dc.subscribe(name, f);
    return () => dc.unsubscribe(name, f);
  });
  try {
    await fn(events);
  } finally {
    for (const off of subs) off();
  }
}

describe('diagnostics_channel events', () => {
  it('publish call start/end/error on both sides and connection open/close, across a real tcp call', async () => {
    const server = await startServer();
    const address = server.addresses[0]!;
    await recording(async (events) => {
      const client = new Client();
      const stub = client.stub(Obs, address);
      expect(await stub.add({ a: 2, b: 3 })).toBe(5);
      const err = await rejection(stub.fail({}));
      expect(err.code).toBe(StatusCode.InvalidArg);
      await client.stop();
      // The server sees the close once the FIN arrives.
      for (let i = 0; i < 200 && !events.some(([n, m]) => n === CHANNELS.connectionClose && (m as ConnectionMessage).side === 'server'); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }

      const of = <T>(name: string, side?: string) =>
        events.filter(([n, m]) => n === name && (side === undefined || (m as { side: string }).side === side)).map(([, m]) => m as T);

      const cStart = of<CallStartMessage>(CHANNELS.clientCallStart);
      expect(cStart.map((m) => [m.service, m.method, m.peer])).toEqual([
        ['Obs', 'add', address],
        ['Obs', 'fail', address],
      ]);
      const cEnd = of<CallEndMessage>(CHANNELS.clientCallEnd);
      expect(cEnd).toHaveLength(1);
      expect(cEnd[0]).toMatchObject({ side: 'client', service: 'Obs', method: 'add', peer: address, code: 0 });
      expect(cEnd[0]!.durationMs).toBeGreaterThanOrEqual(0);
      const cErr = of<CallErrorMessage>(CHANNELS.clientCallError);
      expect(cErr).toHaveLength(1);
      expect(cErr[0]).toMatchObject({ side: 'client', service: 'Obs', method: 'fail', peer: address, code: StatusCode.InvalidArg });
      expect(cErr[0]!.error).toBe(err);

      const sStart = of<CallStartMessage>(CHANNELS.serverCallStart);
      expect(sStart.map((m) => [m.side, m.service, m.method])).toEqual([
        ['server', 'Obs', 'add'],
        ['server', 'Obs', 'fail'],
      ]);
      expect(sStart[0]!.peer).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
      const sEnd = of<CallEndMessage>(CHANNELS.serverCallEnd);
      expect(sEnd.map((m) => [m.method, m.code])).toEqual([['add', 0]]);
      const sErr = of<CallErrorMessage>(CHANNELS.serverCallError);
      expect(sErr.map((m) => [m.method, m.code, m.error.message])).toEqual([['fail', StatusCode.InvalidArg, expect.stringContaining('no such thing')]]);

      // Start before end, per side and call.
      const order = events.map(([n]) => n);
      expect(order.indexOf(CHANNELS.clientCallStart)).toBeLessThan(order.indexOf(CHANNELS.serverCallStart));
      expect(order.indexOf(CHANNELS.serverCallEnd)).toBeLessThan(order.indexOf(CHANNELS.clientCallEnd));

      const opened = of<ConnectionMessage>(CHANNELS.connectionOpen);
      expect(opened.map((m) => m.side).sort()).toEqual(['client', 'server']);
      expect(opened.find((m) => m.side === 'client')!.peer).toBe(address);
      const closed = of<ConnectionMessage>(CHANNELS.connectionClose);
      expect(closed.map((m) => m.side).sort()).toEqual(['client', 'server']);
      for (const c of closed) {
        expect(c.durationMs).toBeGreaterThanOrEqual(0);
        expect(typeof c.code).toBe('number');
      }
    });
  });

  it('publish nothing once unsubscribed', async () => {
    const server = await startServer();
    const seen: unknown[] = [];
    const f = (m: unknown) => seen.push(m);
    dc.subscribe(CHANNELS.serverCallEnd, f);
    dc.unsubscribe(CHANNELS.serverCallEnd, f);
    const client = new Client();
    running.push(client);
    expect(await client.stub(Obs, server.addresses[0]!).add({ a: 1, b: 1 })).toBe(2);
    expect(seen).toEqual([]);
  });
});

describe('per-method latency in stats', () => {
  it('server.stats() and Core.stats carry count and quantiles per Service.method', async () => {
    const server = await startServer();
    const client = new Client({ timeoutMs: 10_000 });
    running.push(client);
    const stub = client.stub(Obs, server.addresses[0]!);
    for (let i = 0; i < 5; i++) await stub.sleep({ ms: 30 });
    for (let i = 0; i < 20; i++) await stub.add({ a: i, b: 1 });
    await rejection(stub.fail({}));

    const { methods } = server.stats();
    const sleep = methods['Obs.sleep']!;
    expect(sleep.calls).toBe(5);
    expect(sleep.latencyMs.count).toBe(5);
    // Timers never fire early by more than a tick; the quantiles are bucket edges clamped to the max.
    expect(sleep.latencyMs.p50).toBeGreaterThanOrEqual(25);
    expect(sleep.latencyMs.p50).toBeLessThanOrEqual(sleep.latencyMs.p90);
    expect(sleep.latencyMs.p90).toBeLessThanOrEqual(sleep.latencyMs.p99);
    expect(sleep.latencyMs.p99).toBeLessThanOrEqual(sleep.latencyMs.max);
    expect(methods['Obs.add']!.latencyMs.count).toBe(20);
    expect(methods['Obs.add']!.latencyMs.p50).toBeLessThan(sleep.latencyMs.p50);
    expect(methods['Obs.fail']).toMatchObject({ calls: 1, errors: 1, latencyMs: { count: 1 } });

    const core = await client.stub(CoreService, server.addresses[0]!).stats({});
    expect(core.methods['Obs.sleep']!.latencyMs.count).toBe(5);
    expect(core.methods['Obs.sleep']!.latencyMs.p50).toBeGreaterThanOrEqual(25);
  });
});

describe('LatencyHistogram', () => {
  it('gives quantiles within 1/16 of the exact ones over a wide range', () => {
    const h = new LatencyHistogram();
    const values: number[] = [];
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      // 1 µs .. ~1000 s, log-uniform
      const v = 10 ** ((x / 2 ** 31) * 9 - 3);
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1]!;
      const got = h.quantile(q);
      expect(got).toBeGreaterThanOrEqual(exact * (1 - 1 / 16) - 0.001);
      expect(got).toBeLessThanOrEqual(exact * (1 + 1 / 16) + 0.001);
    }
    expect(h.summary().max).toBe(values.at(-1));
    expect(h.summary().count).toBe(5000);
  });

  it('merges and keeps a fixed size whatever it records', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.record(1);
    b.record(100);
    b.record(-5);
    b.record(1e12);
    a.merge(b);
    expect(a.count).toBe(4);
    expect(a.maxMs).toBe(1e12);
    expect(a.quantile(0.25)).toBe(0);
    expect(a.quantile(0.5)).toBeGreaterThanOrEqual(1);
    expect(a.quantile(0.5)).toBeLessThan(1.07);
    expect(a.counts.length).toBe(b.counts.length);
  });
});

/** A Metrics that keeps every value in maps, to check what ffnet records without an adapter. */
class MemoryMetrics implements Metrics {
  readonly values = new Map<string, number>();
  readonly observations = new Map<string, number[]>();
  readonly collectors = new Set<() => void>();
  #family<C>(def: MetricDef, make: (key: string) => C): MetricFamily<C> {
    return { labels: (...v: string[]) => make(`${def.name}{${def.labelNames.map((n, i) => `${n}=${v[i]}`).join(',')}}`) };
  }
  counter(def: MetricDef): MetricFamily<Counter> {
    return this.#family(def, (k) => ({ inc: (n = 1) => this.values.set(k, (this.values.get(k) ?? 0) + n) }));
  }
  gauge(def: MetricDef): MetricFamily<Gauge> {
    return this.#family(def, (k) => ({ set: (n: number) => this.values.set(k, n) }));
  }
  histogram(def: MetricDef): MetricFamily<Histogram> {
    return this.#family(def, (k) => ({
      observe: (n: number) => {
        const list = this.observations.get(k) ?? [];
        list.push(n);
        this.observations.set(k, list);
      },
    }));
  }
  onCollect(fn: () => void): () => void {
    this.collectors.add(fn);
    return () => this.collectors.delete(fn);
  }
  collect(): void {
    for (const f of this.collectors) f();
  }
}

describe('metrics through the Metrics interface', () => {
  it('record calls, errors by code, latency, bytes per peer, connections and gauges on both sides', async () => {
    const sm = new MemoryMetrics();
    const cm = new MemoryMetrics();
    const server = await startServer({ metrics: sm });
    const address = server.addresses[0]!;
    const client = new Client({ metrics: cm });
    running.push(client);
    const stub = client.stub(Obs, address);
    for (let i = 0; i < 3; i++) await stub.add({ a: i, b: i });
    await rejection(stub.fail({}));

    expect(sm.values.get('ffnet_server_calls_total{service=Obs,method=add}')).toBe(3);
    expect(sm.values.get('ffnet_server_calls_total{service=Obs,method=fail}')).toBe(1);
    expect(sm.values.get(`ffnet_server_errors_total{service=Obs,method=fail,code=${StatusCode.InvalidArg}}`)).toBe(1);
    expect(sm.observations.get('ffnet_server_call_duration_seconds{service=Obs,method=add}')).toHaveLength(3);
    expect(cm.values.get('ffnet_client_calls_total{service=Obs,method=add}')).toBe(3);
    expect(cm.values.get(`ffnet_client_errors_total{service=Obs,method=fail,code=${StatusCode.InvalidArg}}`)).toBe(1);
    expect(cm.observations.get('ffnet_client_call_duration_seconds{service=Obs,method=fail}')).toHaveLength(1);

    const sentByClient = cm.values.get(`ffnet_bytes_sent_total{side=client,peer=${address}}`)!;
    const receivedByServer = sm.values.get('ffnet_bytes_received_total{side=server,peer=tcp://127.0.0.1}')!;
    expect(sentByClient).toBeGreaterThan(4 * 8);
    expect(receivedByServer).toBe(sentByClient);
    expect(cm.values.get(`ffnet_bytes_received_total{side=client,peer=${address}}`)).toBe(
      sm.values.get('ffnet_bytes_sent_total{side=server,peer=tcp://127.0.0.1}'),
    );
    expect(cm.values.get('ffnet_connections_opened_total{side=client}')).toBe(1);
    expect(sm.values.get('ffnet_connections_opened_total{side=server}')).toBe(1);

    sm.collect();
    cm.collect();
    expect(sm.values.get('ffnet_connections{side=server}')).toBe(1);
    expect(sm.values.get('ffnet_server_in_flight{}')).toBe(0);
    expect(sm.values.get('ffnet_budget_limit_bytes{budget=receive}')).toBe(server.receiveBudget.limit);
    expect(sm.values.get('ffnet_budget_used_bytes{budget=output}')).toBe(0);
    expect(cm.values.get('ffnet_connections{side=client}')).toBe(1);
    expect(cm.values.get('ffnet_client_in_flight{}')).toBe(0);

    // A second connection to the same address is a reconnect.
    client.ioWorker.dropConnections();
    expect(await stub.add({ a: 1, b: 1 })).toBe(2);
    expect(cm.values.get('ffnet_reconnects_total{side=client}')).toBe(1);

    // Stopped, the server's gauges are no longer collected.
    await server.stop();
    expect(sm.collectors.size).toBe(0);
  });
});
