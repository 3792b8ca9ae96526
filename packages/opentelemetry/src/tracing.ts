import { FfnetError } from '@ffnet/serde';
import type { CallContext, ClientCall, ClientInterceptor, ServerInterceptor } from '@ffnet/server';
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContext } from './w3c.js';

/** The instrumentation scope spans are reported under when no tracer is passed. */
export const INSTRUMENTATION_NAME = '@ffnet/opentelemetry';

export interface TracingOptions {
  /**
   * Where spans go. Default: the global tracer provider's tracer for `@ffnet/opentelemetry`, looked up lazily by
   * the api, so a provider registered after the interceptor was made is still used; with none registered, spans
   * are no-ops and calls run as without tracing.
   */
  tracer?: Tracer;
  /**
   * How the span context travels in the call's metadata. Default: W3C `traceparent` and `tracestate`. Pass the
   * api's `propagation` to use the globally registered propagator (with baggage, say) instead.
   */
  propagator?: Pick<TextMapPropagator, 'inject' | 'extract'>;
}

type Metadata = Map<string, string | Uint8Array>;

const setter: TextMapSetter<Metadata> = {
  set: (md, key, value) => {
    md.set(key, value);
  },
};

const getter: TextMapGetter<ReadonlyMap<string, string | Uint8Array>> = {
  get: (md, key) => {
    const v = md.get(key);
    return typeof v === 'string' ? v : undefined;
  },
  keys: (md) => [...md.keys()],
};

/**
 * `scheme://host:port` (IPv6 hosts in brackets) or `unix:///path` → OTel network attributes. `side` says whose
 * address it is: the server's for a client span, the caller's for a server span.
 */
function addressAttributes(peer: string, side: 'server' | 'network.peer', into: Attributes): void {
  const sep = peer.indexOf('://');
  if (sep < 0) return;
  const scheme = peer.slice(0, sep);
  const rest = peer.slice(sep + 3);
  into['ffnet.transport'] = scheme;
  if (scheme === 'unix') {
    into['network.transport'] = 'unix';
    into[`${side}.address`] = rest;
    return;
  }
  if (scheme === 'tcp' || scheme === 'tls') into['network.transport'] = 'tcp';
  const colon = rest.lastIndexOf(':');
  const host = colon < 0 ? rest : rest.slice(0, colon);
  const port = colon < 0 ? Number.NaN : Number(rest.slice(colon + 1));
  into[`${side}.address`] = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (Number.isInteger(port)) into[`${side}.port`] = port;
}

/** Error status, the exception event, and the ffnet status code of a failed call. */
function fail(span: Span, e: unknown): void {
  if (FfnetError.is(e)) {
    span.setAttribute('rpc.ffnet.status_code', e.code);
    span.setAttribute('error.type', e.codeName);
  } else {
    span.setAttribute('error.type', e instanceof Error ? e.name : typeof e);
  }
  // By name: given the error itself the SDK reports its numeric `code` as exception.type, which says less than
  // the class (the code is in rpc.ffnet.status_code already).
  if (e instanceof Error) span.recordException({ name: e.name, message: e.message, ...(e.stack === undefined ? {} : { stack: e.stack }) });
  else span.recordException(String(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}

function tracerOf(opts: TracingOptions | undefined): Tracer {
  return opts?.tracer ?? trace.getTracer(INSTRUMENTATION_NAME);
}

/**
 * A client interceptor that wraps each call in a CLIENT span named `Service/method` (rpc.system `ffnet`,
 * rpc.service, rpc.method, server.address/port) and sends its context in the call's metadata. The span is a
 * child of the span active where the call was made. Put it first in `interceptors` for one span per call; after
 * `retry()` it makes one span per attempt.
 */
export function clientTracing(opts?: TracingOptions): ClientInterceptor {
  const tracer = tracerOf(opts);
  const propagator = opts?.propagator ?? new W3CTraceContext();
  return (next) => (call: ClientCall) => {
    const attributes: Attributes = { 'rpc.system': 'ffnet', 'rpc.service': call.service, 'rpc.method': call.method };
    addressAttributes(call.peer, 'server', attributes);
    const parent = context.active();
    const span = tracer.startSpan(`${call.service}/${call.method}`, { kind: SpanKind.CLIENT, attributes }, parent);
    const active = trace.setSpan(parent, span);
    let pending: Promise<unknown>;
    try {
      propagator.inject(active, call.metadata, setter);
      // Active while the rest of the chain runs, so spans that inner interceptors start nest under this one.
      pending = context.with(active, next, undefined, call);
    } catch (e) {
      fail(span, e);
      span.end();
      throw e;
    }
    return endOnSettle(span, pending);
  };
}

/** Ends `span` when `p` settles, marking it failed on a rejection; the caller sees p's own outcome. */
function endOnSettle<T>(span: Span, p: PromiseLike<T>): Promise<T> {
  return Promise.resolve(p).then(
    (value) => {
      span.end();
      return value;
    },
    (e: unknown) => {
      fail(span, e);
      span.end();
      throw e;
    },
  );
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function';
}

/**
 * A server interceptor that runs each handler inside a SERVER span named `Service/method`, a child of the
 * caller's span when the request carries one (`traceparent`), with network.peer.address/port of the caller. The
 * span is the active one while the handler runs (including after its awaits), so spans the handler starts nest
 * under it. A throw or rejection sets error status, records the exception and the ffnet status code.
 */
export function serverTracing(opts?: TracingOptions): ServerInterceptor {
  const tracer = tracerOf(opts);
  const propagator = opts?.propagator ?? new W3CTraceContext();
  return (next) => (ctx: CallContext, req: unknown) => {
    const service = ctx.service.name;
    const full = ctx.name;
    const method = full.startsWith(`${service}.`) ? full.slice(service.length + 1) : full;
    const attributes: Attributes = { 'rpc.system': 'ffnet', 'rpc.service': service, 'rpc.method': method };
    addressAttributes(ctx.peer, 'network.peer', attributes);
    const base = context.active();
    const parent: Context = ctx.metadata.size === 0 ? base : propagator.extract(base, ctx.metadata, getter);
    const span = tracer.startSpan(`${service}/${method}`, { kind: SpanKind.SERVER, attributes }, parent);
    let result: unknown;
    try {
      result = context.with(trace.setSpan(parent, span), next, undefined, ctx, req);
    } catch (e) {
      fail(span, e);
      span.end();
      throw e;
    }
    if (!isThenable(result)) {
      span.end();
      return result;
    }
    return endOnSettle(span, result);
  };
}
