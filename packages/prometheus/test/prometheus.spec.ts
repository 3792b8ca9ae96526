import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineService, InvalidArgError, method, StatusCode } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { prometheusMetrics } from '../src/index.js';

const Calc = defineService({
  name: 'Calc',
  id: 740,
  methods: {
    add: method<{ a: number; b: number }, number>(1),
    div: method<{ a: number; b: number }, number>(2),
  },
});

const calc = implement(Calc, {
  add: (_ctx, r) => r.a + r.b,
  div: (_ctx, r) => {
    if (r.b === 0) throw new InvalidArgError('division by zero');
    return r.a / r.b;
  },
});

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop();
});

/** Serves `registry` on a real HTTP server, as an application would for Prometheus to scrape. */
async function serveRegistry(registry: Registry): Promise<string> {
  const http: HttpServer = createServer((_req, res) => {
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(body);
      },
      (e: unknown) => {
        res.writeHead(500);
        res.end(String(e));
      },
    );
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  running.push({ stop: () => new Promise<void>((r) => http.close(() => r())) });
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`;
}

/** The text exposition format's sample lines, as name{labels} → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(url: string): Promise<{ text: string; samples: Map<string, number> }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  const text = await res.text();
  return { text, samples: parse(text) };
}

describe('prometheusMetrics', () => {
  it('a real tcp server and client record into a prom-client registry scraped over HTTP', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }], metrics });
    server.addService(calc);
    await server.start();
    running.push(server);
    const address = server.addresses[0]!;
    const client = new Client({ metrics });
    running.push(client);
    const stub = client.stub(Calc, address);
    for (let i = 0; i < 7; i++) expect(await stub.add({ a: i, b: 1 })).toBe(i + 1);
    expect(await stub.div({ a: 6, b: 3 })).toBe(2);
    for (let i = 0; i < 2; i++) await expect(stub.div({ a: 1, b: 0 })).rejects.toMatchObject({ code: StatusCode.InvalidArg });

    const url = await serveRegistry(registry);
    const { text, samples } = await scrape(url);
    expect(text).toContain('# TYPE ffnet_server_call_duration_seconds histogram');
    expect(text).toContain('# TYPE ffnet_server_calls_total counter');

    // Latency histograms per service.method, on both sides: +Inf bucket and _count equal the calls.
    for (const side of ['server', 'client']) {
      const h = `ffnet_${side}_call_duration_seconds`;
      expect(samples.get(`${h}_count{service="Calc",method="add"}`), side).toBe(7);
      expect(samples.get(`${h}_bucket{service="Calc",method="add",le="+Inf"}`), side).toBe(7);
      expect(samples.get(`${h}_count{service="Calc",method="div"}`), side).toBe(3);
      expect(samples.get(`${h}_sum{service="Calc",method="add"}`)!).toBeGreaterThan(0);
      // Buckets are cumulative: never decreasing with le.
      const buckets = [...samples].filter(([k]) => k.startsWith(`${h}_bucket{`) && k.includes('method="add"')).map(([, v]) => v);
      expect(buckets.length).toBe(18);
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!).toBeGreaterThanOrEqual(buckets[i - 1]!);
      // A loopback call under the 10 s bucket, and above 0.
      expect(samples.get(`${h}_bucket{service="Calc",method="add",le="10"}`)).toBe(7);
    }

    // Calls, and errors by code.
    expect(samples.get('ffnet_server_calls_total{service="Calc",method="add"}')).toBe(7);
    expect(samples.get('ffnet_server_calls_total{service="Calc",method="div"}')).toBe(3);
    expect(samples.get(`ffnet_server_errors_total{service="Calc",method="div",code="${StatusCode.InvalidArg}"}`)).toBe(2);
    expect(samples.get('ffnet_client_calls_total{service="Calc",method="div"}')).toBe(3);
    expect(samples.get(`ffnet_client_errors_total{service="Calc",method="div",code="${StatusCode.InvalidArg}"}`)).toBe(2);
    expect(samples.has('ffnet_server_errors_total{service="Calc",method="add",code="0"}')).toBe(false);

    // Bytes per peer: what one side sent, the other received.
    const clientSent = samples.get(`ffnet_bytes_sent_total{side="client",peer="${address}"}`)!;
    expect(clientSent).toBeGreaterThan(10 * 8);
    expect(samples.get('ffnet_bytes_received_total{side="server",peer="tcp://127.0.0.1"}')).toBe(clientSent);
    const serverSent = samples.get('ffnet_bytes_sent_total{side="server",peer="tcp://127.0.0.1"}')!;
    expect(serverSent).toBeGreaterThan(10 * 8);
    expect(samples.get(`ffnet_bytes_received_total{side="client",peer="${address}"}`)).toBe(serverSent);

    // Connections, and gauges read at scrape time.
    expect(samples.get('ffnet_connections_opened_total{side="client"}')).toBe(1);
    expect(samples.get('ffnet_connections_opened_total{side="server"}')).toBe(1);
    expect(samples.get('ffnet_connections{side="server"}')).toBe(1);
    expect(samples.get('ffnet_connections{side="client"}')).toBe(1);
    expect(samples.get('ffnet_server_in_flight')).toBe(0);
    expect(samples.get('ffnet_client_in_flight')).toBe(0);
    expect(samples.get('ffnet_budget_limit_bytes{budget="receive"}')).toBe(server.receiveBudget.limit);
    expect(samples.get('ffnet_budget_used_bytes{budget="output"}')).toBe(0);

    // A reconnect, and the client's connection gone from the gauge after its stop.
    client.ioWorker.dropConnections();
    expect(await stub.add({ a: 1, b: 1 })).toBe(2);
    const again = (await scrape(url)).samples;
    expect(again.get('ffnet_reconnects_total{side="client"}')).toBe(1);
    expect(again.get('ffnet_server_calls_total{service="Calc",method="add"}')).toBe(8);
    expect(again.get('ffnet_connections_opened_total{side="server"}')).toBe(2);
  });

  it('prefixes names, shares families on one registry, and zeroes on registry.resetMetrics()', async () => {
    const registry = new Registry();
    const a = prometheusMetrics({ registry, prefix: 'app_' });
    const b = prometheusMetrics({ registry, prefix: 'app_' });
    const def = { name: 'x_total', help: 'x', labelNames: ['k'] } as const;
    a.counter(def).labels('1').inc(2);
    b.counter(def).labels('1').inc(3);
    expect(parse(await registry.metrics()).get('app_x_total{k="1"}')).toBe(5);
    const bound = a.counter(def).labels('1');
    registry.resetMetrics();
    bound.inc();
    expect(parse(await registry.metrics()).get('app_x_total{k="1"}')).toBe(1);
    expect(() => a.counter(def).labels('1', '2')).toThrow(InvalidArgError);
    expect(() => prometheusMetrics({ registry, prefix: 'bad-' })).toThrow(InvalidArgError);

    // Collectors run at read time and can be removed.
    let reads = 0;
    const g = a.gauge({ name: 'g', help: 'g', labelNames: [] }).labels();
    const off = a.onCollect(() => g.set(++reads));
    expect(parse(await registry.metrics()).get('app_g')).toBeGreaterThanOrEqual(1);
    off();
    const before = reads;
    await registry.metrics();
    expect(reads).toBe(before);
  });
});
