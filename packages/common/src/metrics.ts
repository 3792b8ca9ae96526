/**
 * The metrics seam: ffnet records through this interface and an adapter (`@ffnet/prometheus`, or your own) maps
 * it onto a metrics library. Nothing is recorded unless a Metrics is passed (ServerOptions.metrics,
 * ClientOptions.metrics); without one the call path does no metrics work at all.
 *
 * Families are looked up once and their children bound to label values once (per method, per peer), so a call
 * that records does no label lookup: it increments or observes a child it already holds.
 */

/** A monotonically increasing count, bound to its label values. */
export interface Counter {
  inc(value?: number): void;
}

/** A value that goes up and down, bound to its label values. */
export interface Gauge {
  set(value: number): void;
}

/** A distribution (durations in seconds, as Prometheus names them), bound to its label values. */
export interface Histogram {
  observe(value: number): void;
}

/** One metric with its label names; `labels(...)` takes the values in the order of `labelNames`. */
export interface MetricFamily<C> {
  labels(...values: string[]): C;
}

export interface MetricDef {
  /** Full name, without the adapter's prefix (`ffnet_server_calls_total`). */
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
}

export interface HistogramDef extends MetricDef {
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
}

export interface Metrics {
  /** The same family for the same name: several clients and servers may share one Metrics. */
  counter(def: MetricDef): MetricFamily<Counter>;
  gauge(def: MetricDef): MetricFamily<Gauge>;
  histogram(def: HistogramDef): MetricFamily<Histogram>;
  /**
   * Runs `fn` when the metrics are collected (a scrape), before values are read: gauges that would cost a write
   * per message (in flight, budgets, connections) are set here instead. `fn` must be idempotent: an adapter may
   * run it more than once per collection. Returns a function that removes it (a stopped server calls it).
   */
  onCollect(fn: () => void): () => void;
}

/** Seconds: the call durations, from 50 µs (a loopback call) to 10 s (a deadline). */
export const CALL_DURATION_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

const CALL = ['service', 'method'] as const;
const CALL_CODE = ['service', 'method', 'code'] as const;
const SIDE = ['side'] as const;
const SIDE_PEER = ['side', 'peer'] as const;

/**
 * Every metric ffnet records, in one place: names, help, label names and buckets. `side` is `client` or
 * `server`; `peer` is the remote host (its port dropped on the server side, where it is ephemeral); `code` is
 * the numeric status code of a failed call (see StatusCode).
 */
export const METRICS = {
  clientCallDuration: {
    name: 'ffnet_client_call_duration_seconds',
    help: 'Client call latency per service.method, from the stub call to its settling.',
    labelNames: CALL,
    buckets: CALL_DURATION_BUCKETS,
  },
  clientCalls: { name: 'ffnet_client_calls_total', help: 'Client calls made, per service.method.', labelNames: CALL },
  clientErrors: { name: 'ffnet_client_errors_total', help: 'Client calls that failed, per service.method and status code.', labelNames: CALL_CODE },
  clientInFlight: { name: 'ffnet_client_in_flight', help: 'Client calls waiting for their response.', labelNames: [] },
  serverCallDuration: {
    name: 'ffnet_server_call_duration_seconds',
    help: 'Server handling latency per service.method, from the decoded request to the reply.',
    labelNames: CALL,
    buckets: CALL_DURATION_BUCKETS,
  },
  serverCalls: { name: 'ffnet_server_calls_total', help: 'Requests dispatched to a handler, per service.method.', labelNames: CALL },
  serverErrors: {
    name: 'ffnet_server_errors_total',
    help: 'Error responses per service.method and status code (refused requests included).',
    labelNames: CALL_CODE,
  },
  serverInFlight: { name: 'ffnet_server_in_flight', help: 'Requests running or queued in a handler pool.', labelNames: [] },
  serverQueued: { name: 'ffnet_server_queued', help: 'Requests waiting in a per-method concurrency pool.', labelNames: [] },
  bytesReceived: { name: 'ffnet_bytes_received_total', help: 'Frame bytes received, per peer (header included).', labelNames: SIDE_PEER },
  bytesSent: { name: 'ffnet_bytes_sent_total', help: 'Frame bytes handed to the transport, per peer (header included).', labelNames: SIDE_PEER },
  connections: { name: 'ffnet_connections', help: 'Open connections.', labelNames: SIDE },
  connectionsOpened: { name: 'ffnet_connections_opened_total', help: 'Connections dialled or accepted.', labelNames: SIDE },
  reconnects: { name: 'ffnet_reconnects_total', help: 'Dials to an address this client had dialled before.', labelNames: SIDE },
  budgetUsed: { name: 'ffnet_budget_used_bytes', help: 'Bytes taken from a server-wide budget (receive or output).', labelNames: ['budget'] },
  budgetLimit: { name: 'ffnet_budget_limit_bytes', help: 'The cap of a server-wide budget (receive or output).', labelNames: ['budget'] },
  budgetWaiting: { name: 'ffnet_budget_waiting', help: 'Connections with reading paused until the budget has room.', labelNames: ['budget'] },
  rdmaWorkRequests: { name: 'ffnet_rdma_work_requests_total', help: 'RDMA work requests posted, per opcode.', labelNames: ['op'] },
  rdmaCreditStalls: { name: 'ffnet_rdma_credit_stalls_total', help: 'Sends that waited for the peer to return credits.', labelNames: [] },
} as const satisfies Record<string, MetricDef | HistogramDef>;

export type MetricName = keyof typeof METRICS;

/** Past this many distinct peers a Metrics records further ones as `other`: a port scan cannot grow it without bound. */
export const MAX_PEER_LABELS = 1024;
