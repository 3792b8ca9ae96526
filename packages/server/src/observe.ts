import { type Counter, channels, FfnetError, type Histogram, MAX_PEER_LABELS, METRICS, type MetricFamily, type Metrics, StatusCode } from '@ffnet/common';
import type { Transport } from '@ffnet/transport';
import type { CallContext, CallObserver, MethodBinding, ServiceBinding } from '@ffnet/worker';
import type { Connection } from '@ffnet/worker/internal';

type Side = 'client' | 'server';

/** A method's metrics, bound once on its first call (kept on the method itself). */
interface BoundCall {
  readonly service: string;
  readonly method: string;
  readonly calls: Counter;
  readonly duration: Histogram;
}

interface PeerBytes {
  readonly received: Counter;
  readonly sent: Counter;
}

function codeOf(e: unknown): number {
  return FfnetError.is(e) ? e.code : StatusCode.Unknown;
}

/** The method part of a binding's `Service.method` name. */
function methodPart(service: ServiceBinding, method: MethodBinding): string {
  const n = method.name;
  return n.startsWith(`${service.name}.`) ? n.slice(service.name.length + 1) : n;
}

/** An accepted connection's peer without its ephemeral port: one label per host, not per connection. */
function peerHost(peer: string): string {
  const m = /^(.*):\d+$/.exec(peer);
  return m === null ? peer : m[1]!;
}

/** The families one Metrics gets from ffnet, looked up once. */
class Families {
  readonly serverCalls: MetricFamily<Counter>;
  readonly serverErrors: MetricFamily<Counter>;
  readonly serverDuration: MetricFamily<Histogram>;
  readonly clientCalls: MetricFamily<Counter>;
  readonly clientErrors: MetricFamily<Counter>;
  readonly clientDuration: MetricFamily<Histogram>;
  readonly bytesReceived: MetricFamily<Counter>;
  readonly bytesSent: MetricFamily<Counter>;
  readonly opened: MetricFamily<Counter>;
  readonly reconnects: MetricFamily<Counter>;

  constructor(m: Metrics) {
    this.serverCalls = m.counter(METRICS.serverCalls);
    this.serverErrors = m.counter(METRICS.serverErrors);
    this.serverDuration = m.histogram(METRICS.serverCallDuration);
    this.clientCalls = m.counter(METRICS.clientCalls);
    this.clientErrors = m.counter(METRICS.clientErrors);
    this.clientDuration = m.histogram(METRICS.clientCallDuration);
    this.bytesReceived = m.counter(METRICS.bytesReceived);
    this.bytesSent = m.counter(METRICS.bytesSent);
    this.opened = m.counter(METRICS.connectionsOpened);
    this.reconnects = m.counter(METRICS.reconnects);
  }
}

/**
 * The Processor's CallObserver for a server group (side 'server') or a client's own connections (side
 * 'client'): publishes on diagnostics_channel when someone subscribes, records into `metrics` when given.
 * Handlers that run are server calls on either side (a client may serve server-to-client calls).
 */
export class Observer implements CallObserver {
  readonly side: Side;
  readonly metrics: Metrics | undefined;
  readonly countBytes: boolean;
  readonly #f: Families | undefined;
  readonly #peers = new Map<string, PeerBytes>();
  /** Addresses dialled before (client side), for reconnects; bounded like the peer labels. */
  readonly #dialled = new Set<string>();

  constructor(side: Side, metrics: Metrics | undefined) {
    this.side = side;
    this.metrics = metrics;
    this.countBytes = metrics !== undefined;
    this.#f = metrics === undefined ? undefined : new Families(metrics);
  }

  callStart(ctx: CallContext): void {
    const f = this.#f;
    if (f !== undefined) this.#bound(f, ctx.service, ctx.method).calls.inc();
    if (channels.serverCallStart.hasSubscribers) {
      channels.serverCallStart.publish({ side: 'server', service: ctx.service.name, method: methodPart(ctx.service, ctx.method), peer: ctx.peer });
    }
  }

  callEnd(ctx: CallContext, durationMs: number, error: FfnetError | undefined): void {
    const f = this.#f;
    if (f !== undefined) {
      const b = this.#bound(f, ctx.service, ctx.method);
      b.duration.observe(durationMs / 1000);
      if (error !== undefined) f.serverErrors.labels(b.service, b.method, String(error.code)).inc();
    }
    if (error === undefined) {
      if (channels.serverCallEnd.hasSubscribers) {
        const method = methodPart(ctx.service, ctx.method);
        channels.serverCallEnd.publish({ side: 'server', service: ctx.service.name, method, peer: ctx.peer, durationMs, code: 0 });
      }
    } else if (channels.serverCallError.hasSubscribers) {
      const method = methodPart(ctx.service, ctx.method);
      channels.serverCallError.publish({ side: 'server', service: ctx.service.name, method, peer: ctx.peer, durationMs, code: error.code, error });
    }
  }

  callRefused(_t: Transport, service: ServiceBinding | undefined, method: MethodBinding | undefined, error: FfnetError): void {
    const f = this.#f;
    if (f === undefined || service === undefined || method === undefined) return;
    f.serverErrors.labels(service.name, methodPart(service, method), String(error.code)).inc();
  }

  bytesIn(conn: Connection, t: Transport, bytes: number): void {
    this.#peerOf(conn, t).received.inc(bytes);
  }

  bytesOut(conn: Connection, t: Transport, bytes: number): void {
    this.#peerOf(conn, t).sent.inc(bytes);
  }

  /** Bytes of a request the client sent to `address`, counted where it is encoded. */
  requestBytes(address: string, bytes: number): void {
    const f = this.#f;
    if (f !== undefined) this.#peer(f, address).sent.inc(bytes);
  }

  connectionOpened(_conn: Connection, t: Transport): void {
    const f = this.#f;
    if (f !== undefined) {
      const side = t.incoming ? 'server' : 'client';
      f.opened.labels(side).inc();
      if (!t.incoming) {
        if (this.#dialled.has(t.peer)) f.reconnects.labels(side).inc();
        else if (this.#dialled.size < MAX_PEER_LABELS) this.#dialled.add(t.peer);
      }
    }
    if (channels.connectionOpen.hasSubscribers) channels.connectionOpen.publish({ side: t.incoming ? 'server' : 'client', peer: t.peer });
  }

  connectionClosed(conn: Connection, t: Transport, error: FfnetError | undefined): void {
    if (channels.connectionClose.hasSubscribers) {
      const durationMs = performance.now() - conn.openedAt;
      channels.connectionClose.publish({ side: t.incoming ? 'server' : 'client', peer: t.peer, durationMs, error, code: error === undefined ? 0 : error.code });
    }
  }

  #bound(f: Families, service: ServiceBinding, method: MethodBinding): BoundCall {
    const slot = method as MethodBinding & { observed?: unknown };
    let b = slot.observed as BoundCall | undefined;
    if (b === undefined) {
      const name = methodPart(service, method);
      b = { service: service.name, method: name, calls: f.serverCalls.labels(service.name, name), duration: f.serverDuration.labels(service.name, name) };
      slot.observed = b;
    }
    return b;
  }

  #peerOf(conn: Connection, t: Transport): PeerBytes {
    let p = conn.observed as PeerBytes | undefined;
    if (p === undefined) {
      p = this.#peer(this.#f!, t.incoming ? peerHost(t.peer) : t.peer);
      conn.observed = p;
    }
    return p;
  }

  #peer(f: Families, label: string): PeerBytes {
    let p = this.#peers.get(label);
    if (p === undefined) {
      if (this.#peers.size >= MAX_PEER_LABELS) label = 'other';
      p = this.#peers.get(label);
      if (p === undefined) {
        p = { received: f.bytesReceived.labels(this.side, label), sent: f.bytesSent.labels(this.side, label) };
        this.#peers.set(label, p);
      }
    }
    return p;
  }
}

/** One client call being watched: settles through ok/fail (bound once per watched call, none otherwise). */
class WatchedCall {
  readonly #o: ClientCallObserver;
  readonly #service: string;
  readonly #method: string;
  readonly #peer: string;
  readonly #start = performance.now();
  readonly #bound: BoundCall | undefined;

  constructor(o: ClientCallObserver, service: string, method: string, peer: string, bound: BoundCall | undefined) {
    this.#o = o;
    this.#service = service;
    this.#method = method;
    this.#peer = peer;
    this.#bound = bound;
  }

  readonly ok = (value: unknown): unknown => {
    const ms = performance.now() - this.#start;
    this.#bound?.duration.observe(ms / 1000);
    if (channels.clientCallEnd.hasSubscribers) {
      channels.clientCallEnd.publish({ side: 'client', service: this.#service, method: this.#method, peer: this.#peer, durationMs: ms, code: 0 });
    }
    return value;
  };

  readonly fail = (e: unknown): never => {
    const ms = performance.now() - this.#start;
    const code = codeOf(e);
    const b = this.#bound;
    if (b !== undefined) {
      b.duration.observe(ms / 1000);
      this.#o.families!.clientErrors.labels(this.#service, this.#method, String(code)).inc();
    }
    if (channels.clientCallError.hasSubscribers) {
      const error = e instanceof Error ? e : new Error(String(e));
      channels.clientCallError.publish({ side: 'client', service: this.#service, method: this.#method, peer: this.#peer, durationMs: ms, code, error });
    }
    throw e;
  };
}

/** The client's calls: duration and outcome per service.method, diagnostics_channel events. */
export class ClientCallObserver {
  readonly families: Families | undefined;
  readonly #bound = new Map<string, Map<string, BoundCall>>();

  constructor(metrics: Metrics | undefined) {
    this.families = metrics === undefined ? undefined : new Families(metrics);
  }

  /** True when a call must be watched: metrics, or anyone subscribed to the client call channels. */
  get active(): boolean {
    return (
      this.families !== undefined || channels.clientCallStart.hasSubscribers || channels.clientCallEnd.hasSubscribers || channels.clientCallError.hasSubscribers
    );
  }

  watch(p: Promise<unknown>, w: WatchedCall): Promise<unknown> {
    return p.then(w.ok, w.fail);
  }

  /** Starts watching a call about to be made; pass what it returns to watch() with the call's promise. */
  start(service: string, method: string, peer: string): WatchedCall {
    const f = this.families;
    let b: BoundCall | undefined;
    if (f !== undefined) {
      let byMethod = this.#bound.get(service);
      if (byMethod === undefined) {
        byMethod = new Map();
        this.#bound.set(service, byMethod);
      }
      b = byMethod.get(method);
      // Services and methods come from definitions, so this grows with the code, not with traffic.
      if (b === undefined) {
        b = { service, method, calls: f.clientCalls.labels(service, method), duration: f.clientDuration.labels(service, method) };
        byMethod.set(method, b);
      }
      b.calls.inc();
    }
    if (channels.clientCallStart.hasSubscribers) channels.clientCallStart.publish({ side: 'client', service, method, peer });
    return new WatchedCall(this, service, method, peer, b);
  }
}
