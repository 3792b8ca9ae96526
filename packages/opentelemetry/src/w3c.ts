import {
  type Context,
  createTraceState,
  isSpanContextValid,
  type SpanContext,
  type TextMapGetter,
  type TextMapPropagator,
  type TextMapSetter,
  trace,
} from '@opentelemetry/api';

export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';

// W3C Trace Context (https://www.w3.org/TR/trace-context/): `version-traceid-parentid-flags`, lower-case hex.
const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
// The spec asks vendors to propagate at least 512 characters; past a few KB a header is refused rather than parsed,
// so a peer cannot make every call allocate a large trace state.
const MAX_TRACESTATE = 4096;

/**
 * The W3C `traceparent`/`tracestate` pair as a TextMapPropagator, the default of the tracing interceptors. It is
 * built in so that tracing propagates with nothing but @opentelemetry/api installed (the api's global propagator
 * is a no-op until an SDK registers one); pass the api's `propagation` to use whatever the SDK registered instead.
 */
export class W3CTraceContext implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const sc = trace.getSpanContext(ctx);
    if (sc === undefined || !isSpanContextValid(sc)) return;
    const flags = (sc.traceFlags & 0xff).toString(16).padStart(2, '0');
    setter.set(carrier, TRACEPARENT, `00-${sc.traceId}-${sc.spanId}-${flags}`);
    const state = sc.traceState?.serialize();
    if (state) setter.set(carrier, TRACESTATE, state);
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const sc = parseTraceparent(first(getter.get(carrier, TRACEPARENT)));
    if (sc === undefined) return ctx;
    const state = first(getter.get(carrier, TRACESTATE));
    if (state !== undefined && state.length <= MAX_TRACESTATE) sc.traceState = createTraceState(state);
    return trace.setSpanContext(ctx, sc);
  }

  fields(): string[] {
    return [TRACEPARENT, TRACESTATE];
  }
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A remote span context from a `traceparent` value; undefined for anything the spec says to ignore. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined || value.length > 512) return undefined;
  const m = TRACEPARENT_RE.exec(value.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields. Later versions may append fields, which are ignored.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const sc: SpanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  return isSpanContextValid(sc) ? sc : undefined;
}
