import { defineService, method } from '@ffnet/serde';
import { clientTracing, serverTracing } from '@ffnet/opentelemetry';
import { Client, implement, Server } from '@ffnet/server';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

// An SDK, set up once per process. Swap InMemorySpanExporter for an OTLP exporter to ship the spans.
const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const Greeter = defineService({
  name: 'Greeter',
  id: 1,
  methods: { greet: method<{ name: string }, { text: string }>(1) },
});

const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1' } }], interceptors: [serverTracing()] });
server.addService(
  implement(Greeter, {
    greet: async (_ctx, req) => {
      // The server span is active here: this one nests under it.
      await trace.getTracer('greeter').startActiveSpan('lookup', async (span) => span.end());
      return { text: `hello ${req.name}` };
    },
  }),
);
await server.start();

const client = new Client({ interceptors: [clientTracing()] });
await client.stub(Greeter, server.addresses[0]!).greet({ name: 'ffnet' });
await Promise.all([client.stop(), server.stop()]);

// One trace: the client span, the server span under it, the handler's span under that.
const spans = exporter.getFinishedSpans();
const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
for (const span of spans) {
  const parent = byId.get(span.parentSpanContext?.spanId ?? '');
  console.log(`${SpanKind[span.kind]} ${span.name}${parent ? ` under ${SpanKind[parent.kind]} ${parent.name}` : ''}`);
}
