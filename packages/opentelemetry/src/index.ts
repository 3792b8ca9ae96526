export { clientTracing, INSTRUMENTATION_NAME, serverTracing, type TracingOptions } from './tracing.js';
export { parseTraceparent, TRACEPARENT, TRACESTATE, W3CTraceContext } from './w3c.js';
