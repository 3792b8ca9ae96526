import { defineService, FfnetError, method, PermissionDeniedError, StatusCode } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clientTracing, parseTraceparent, serverTracing, W3CTraceContext } from '../src/index.js';

const Greeter = defineService({
  name: 'Greeter',
  id: 7,
  methods: {
    greet: method<{ name: string }, { text: string; traceparent: string | null }>(1),
    nested: method<Record<string, never>, { ok: boolean }>(2),
    refuse: method<Record<string, never>, never>(3),
    crash: method<Record<string, never>, never>(4),
  },
});

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('ffnet-test');
const contextManager = new AsyncLocalStorageContextManager();

function serve(interceptors: Parameters<typeof serverTracing>[0] | 'none'): Server {
  const server = new Server({
    groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }],
    interceptors: interceptors === 'none' ? [] : [serverTracing(interceptors)],
  });
  server.addService(
    implement(Greeter, {
      // Synchronous: the span ends when the handler returns.
      greet: (ctx, req) => ({ text: `hello ${req.name}`, traceparent: (ctx.metadata.get('traceparent') as string | undefined) ?? null }),
      // Asynchronous, starting its own span after an await: it must still nest under the server span.
      nested: async () => {
        await new Promise((r) => setTimeout(r, 5));
        tracer.startActiveSpan('db.query', (span) => span.end());
        return { ok: true };
      },
      refuse: async () => {
        await Promise.resolve();
        throw new PermissionDeniedError('not for you');
      },
      crash: () => {
        throw new TypeError('boom');
      },
    }),
  );
  return server;
}

const byKind = (spans: ReadableSpan[], kind: SpanKind) => spans.filter((s) => s.kind === kind);

describe('tracing across a real tcp Server and Client', () => {
  let server: Server;
  let client: Client;
  let port: number;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    server = serve({ tracer });
    await server.start();
    port = Number(new URL(server.addresses[0]!).port);
    client = new Client({ interceptors: [clientTracing({ tracer })], timeoutMs: 5000 });
  });
  afterAll(async () => {
    await client.stop();
    await server.stop();
    context.disable();
  });
  afterEach(() => exporter.reset());

  it('a CLIENT span and a SERVER span in one trace, the server span the child, with RPC attributes', async () => {
    const rsp = await client.stub(Greeter, server.addresses[0]!).greet({ name: 'otel' });
    expect(rsp.text).toBe('hello otel');
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    const [c] = byKind(spans, SpanKind.CLIENT);
    const [s] = byKind(spans, SpanKind.SERVER);
    expect(c!.name).toBe('Greeter/greet');
    expect(s!.name).toBe('Greeter/greet');
    expect(s!.spanContext().traceId).toBe(c!.spanContext().traceId);
    expect(s!.parentSpanContext?.spanId).toBe(c!.spanContext().spanId);
    expect(s!.parentSpanContext?.isRemote).toBe(true);
    // The client span has no parent: no span was active where the call was made.
    expect(c!.parentSpanContext).toBeUndefined();
    // What the handler received is the client span's context in W3C form.
    expect(rsp.traceparent).toBe(`00-${c!.spanContext().traceId}-${c!.spanContext().spanId}-01`);
    expect(c!.attributes).toMatchObject({
      'rpc.system': 'ffnet',
      'rpc.service': 'Greeter',
      'rpc.method': 'greet',
      'server.address': '127.0.0.1',
      'server.port': port,
      'network.transport': 'tcp',
    });
    expect(s!.attributes).toMatchObject({ 'rpc.system': 'ffnet', 'rpc.service': 'Greeter', 'rpc.method': 'greet', 'network.peer.address': '127.0.0.1' });
    expect(s!.attributes['network.peer.port']).toEqual(expect.any(Number));
    expect(c!.status.code).toBe(SpanStatusCode.UNSET);
    expect(s!.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('the client span is a child of the span active at the call; a handler span nests under the server span', async () => {
    await tracer.startActiveSpan('request', async (outer) => {
      await client.stub(Greeter, server.addresses[0]!).nested({});
      outer.end();
    });
    const spans = exporter.getFinishedSpans();
    const outer = spans.find((s) => s.name === 'request')!;
    const [c] = byKind(spans, SpanKind.CLIENT);
    const [s] = byKind(spans, SpanKind.SERVER);
    const inner = spans.find((x) => x.name === 'db.query')!;
    expect(spans).toHaveLength(4);
    expect(c!.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
    expect(s!.parentSpanContext?.spanId).toBe(c!.spanContext().spanId);
    expect(inner.parentSpanContext?.spanId).toBe(s!.spanContext().spanId);
    for (const x of spans) expect(x.spanContext().traceId).toBe(outer.spanContext().traceId);
  });

  it('a failing call: error status on both spans, the ffnet status code, the exception recorded on the server span', async () => {
    const err = await client
      .stub(Greeter, server.addresses[0]!)
      .refuse({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionDeniedError);
    const spans = exporter.getFinishedSpans();
    const [c] = byKind(spans, SpanKind.CLIENT);
    const [s] = byKind(spans, SpanKind.SERVER);
    for (const x of [c!, s!]) {
      expect(x.status.code).toBe(SpanStatusCode.ERROR);
      expect(x.status.message).toContain('not for you');
      expect(x.attributes['rpc.ffnet.status_code']).toBe(StatusCode.PermissionDenied);
      expect(x.attributes['error.type']).toBe('PermissionDenied');
    }
    expect(s!.events.map((e) => e.name)).toContain('exception');
    expect(s!.events.find((e) => e.name === 'exception')!.attributes?.['exception.type']).toBe('PermissionDeniedError');
    expect(s!.parentSpanContext?.spanId).toBe(c!.spanContext().spanId);
  });

  it('a handler that throws synchronously a plain Error: the server span records it, the client span has the Unknown code', async () => {
    await expect(client.stub(Greeter, server.addresses[0]!).crash({})).rejects.toMatchObject({ code: StatusCode.Unknown });
    const spans = exporter.getFinishedSpans();
    const [c] = byKind(spans, SpanKind.CLIENT);
    const [s] = byKind(spans, SpanKind.SERVER);
    expect(s!.status.code).toBe(SpanStatusCode.ERROR);
    expect(s!.attributes['error.type']).toBe('TypeError');
    expect(s!.events.find((e) => e.name === 'exception')!.attributes?.['exception.message']).toBe('boom');
    expect(c!.status.code).toBe(SpanStatusCode.ERROR);
    expect(c!.attributes['rpc.ffnet.status_code']).toBe(StatusCode.Unknown);
  });

  it('a call that never reaches a server: the client span fails with the connect error', async () => {
    const err = (await client
      .stub(Greeter, 'tcp://127.0.0.1:1')
      .greet({ name: 'x' }, { timeoutMs: 2000 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )) as FfnetError;
    expect(FfnetError.is(err)).toBe(true);
    const [c] = byKind(exporter.getFinishedSpans(), SpanKind.CLIENT);
    expect(c!.status.code).toBe(SpanStatusCode.ERROR);
    expect(c!.attributes['rpc.ffnet.status_code']).toBe(err.code);
    expect(c!.attributes['server.port']).toBe(1);
    expect(byKind(exporter.getFinishedSpans(), SpanKind.SERVER)).toHaveLength(0);
  });

  it('tracestate travels with traceparent', async () => {
    const parent = trace.wrapSpanContext({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      traceState: (await import('@opentelemetry/api')).createTraceState('vendor=abc'),
    });
    await context.with(trace.setSpan(context.active(), parent), () => client.stub(Greeter, server.addresses[0]!).greet({ name: 'x' }));
    const [s] = byKind(exporter.getFinishedSpans(), SpanKind.SERVER);
    expect(s!.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(s!.spanContext().traceState?.get('vendor')).toBe('abc');
  });
});

describe('with the global propagation API', () => {
  it('propagator: propagation uses whatever propagator is registered globally', async () => {
    // The W3C format under other keys, registered globally: what travels must be its keys, not traceparent.
    const w3c = new W3CTraceContext();
    propagation.setGlobalPropagator({
      inject: (ctx, carrier, set) => w3c.inject(ctx, carrier, { set: (c, k, v) => set.set(c, `x-${k}`, v) }),
      extract: (ctx, carrier, get) => w3c.extract(ctx, carrier, { get: (c, k) => get.get(c, `x-${k}`), keys: (c) => get.keys(c) }),
      fields: () => ['x-traceparent', 'x-tracestate'],
    });
    const server = serve({ tracer, propagator: propagation });
    await server.start();
    const client = new Client({ interceptors: [clientTracing({ tracer, propagator: propagation })], timeoutMs: 5000 });
    try {
      const rsp = await client.stub(Greeter, server.addresses[0]!).greet({ name: 'x' });
      expect(rsp.traceparent).toBeNull();
      const spans = exporter.getFinishedSpans();
      const [c] = byKind(spans, SpanKind.CLIENT);
      const [s] = byKind(spans, SpanKind.SERVER);
      expect(s!.parentSpanContext?.spanId).toBe(c!.spanContext().spanId);
    } finally {
      propagation.disable();
      exporter.reset();
      await client.stop();
      await server.stop();
    }
  });
});

describe('without a tracer provider', () => {
  it('calls still work, no spans are recorded and no traceparent is sent', async () => {
    // No tracer passed and none registered globally: the api hands out no-op spans.
    const server = serve({});
    await server.start();
    const client = new Client({ interceptors: [clientTracing()], timeoutMs: 5000 });
    try {
      const rsp = await client.stub(Greeter, server.addresses[0]!).greet({ name: 'plain' });
      expect(rsp).toEqual({ text: 'hello plain', traceparent: null });
      await expect(client.stub(Greeter, server.addresses[0]!).refuse({})).rejects.toBeInstanceOf(PermissionDeniedError);
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    } finally {
      await client.stop();
      await server.stop();
    }
  });

  it('a traced client calling an untraced server: the server sees the traceparent and answers', async () => {
    const server = serve('none');
    await server.start();
    const client = new Client({ interceptors: [clientTracing({ tracer })], timeoutMs: 5000 });
    try {
      const rsp = await client.stub(Greeter, server.addresses[0]!).greet({ name: 'x' });
      const [c] = exporter.getFinishedSpans();
      expect(rsp.traceparent).toBe(`00-${c!.spanContext().traceId}-${c!.spanContext().spanId}-01`);
    } finally {
      exporter.reset();
      await client.stop();
      await server.stop();
    }
  });
});

describe('parseTraceparent', () => {
  const good = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it('accepts the spec example', () => {
    expect(parseTraceparent(good)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1, isRemote: true });
  });
  it.each([
    ['all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['all-zero span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['version ff', 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
    ['upper-case hex', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
    ['version 00 with an extra field', `${good}-extra`],
    ['a short trace id', '00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01'],
    ['over 512 characters', `01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-${'x'.repeat(600)}`],
  ])('ignores %s', (_why, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });
  it('accepts a later version with extra fields, ignoring them', () => {
    expect(parseTraceparent(`cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-ever`)?.traceFlags).toBe(0);
  });
});
