// ffnet with its defaults: a service defined with @ffnet/serde, served by @ffnet/server, called through
// a typed stub. CRC checked, envelope fully decoded, payload a msgpack bin inside a map: nothing turned off.
// Over tls: tls() with its defaults (server certificate verified against the bench CA and the address's IP, ALPN
// ffnet), TLS 1.3 required as for the other tls peers, no client certificate.

import type { Metrics } from '@ffnet/common';
import { defineService, method } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { type Backend, tcp, tls, unix } from '@ffnet/transport';
import type { PeerName } from '../names.js';
import { readTlsMaterial } from '../tls-certs.js';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';
import { describe, sizeError } from './types.js';

export interface BenchMessage {
  data: Uint8Array;
}

export const BenchService = defineService({
  name: 'Bench',
  id: 7001,
  methods: {
    call: method<BenchMessage, BenchMessage>(1),
  },
});

/**
 * Longer than the 1 s default only so that a stall of the shared 2-core machine does not fail a whole
 * run; the deadline is still armed and enforced for every call.
 */
export const CALL_TIMEOUT_MS = 10_000;

export function parse(addr: string, listen: Endpoint): Endpoint {
  if ('path' in listen) return listen;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return { transport: listen.transport, host: listen.host, port };
}

/** The Bench service's `call` under either envelope (ffnet's stub and ffnet-3fs's have this shape). */
export interface BenchStub {
  call(req: BenchMessage): PromiseLike<BenchMessage>;
}

/** The client side of the Bench peers (ffnet, ffnet+prom, ffnet-3fs): `name` is the peer its size errors name. */
export class BenchClient implements PeerClient {
  private readonly req: BenchMessage;
  private readonly ok: ((rsp: BenchMessage) => void)[] = [];
  private readonly err: ((e: unknown) => void)[] = [];

  constructor(
    private readonly client: Client,
    private readonly stub: BenchStub,
    w: RpcWorkload,
    done: DoneFn,
    private readonly instrumented?: { stop(): void },
    name: PeerName = 'ffnet',
  ) {
    this.req = { data: payload(w.reqSize) };
    // Settle callbacks made once per slot: what a call allocates is ffnet's own doing.
    for (let slot = 0; slot < w.inflight; slot++) {
      this.ok.push((rsp) => done(slot, rsp.data.length === w.rspSize ? undefined : sizeError(name, rsp.data.length, w.rspSize)));
      this.err.push((e) => done(slot, e instanceof Error ? e : new Error(String(e))));
    }
  }

  call(slot: number): void {
    this.stub.call(this.req).then(this.ok[slot], this.err[slot]);
  }

  async close(): Promise<void> {
    await this.client.stop();
    this.instrumented?.stop();
  }
}

/** The ffnet peer; `instrument` gives each side's `metrics` and a stop for whatever reads them (ffnet+prom). */
export function ffnetPeer(name: Peer['name'], instrument?: () => { metrics: Metrics; stop(): void }): Peer {
  return {
    name,
    serve: (listen, w) => serve(listen, w, instrument?.()),
    connect: (endpoint, w, done) => connect(endpoint, w, done, instrument?.()),
  };
}

export const peer: Peer = ffnetPeer('ffnet');

/**
 * shm() only when the run is over shm: loaded on demand, so that this file also runs against a baseline checkout
 * built before @ffnet/shm existed (`--baseline` over tls runs this peer with the baseline's packages).
 */
async function shmBackends(transport: Endpoint['transport']): Promise<Backend[]> {
  if (transport !== 'shm') return [];
  const { shm } = await import('@ffnet/shm');
  return [shm()];
}

/**
 * rdma() only when the run is over rdma, as a program that speaks tcp or unix never loads @ffnet/rdma. Loaded
 * always, it (koffi and the verbs bindings) grew the child's old generation, and every full GC that received 1 MiB
 * bodies trigger (V8 collects once enough external memory is allocated) scans it: W4's client spent about 3× the
 * CPU per call with it loaded (apps/bench README, "What mattered").
 */
async function rdmaBackends(transport: Endpoint['transport'], control: boolean): Promise<Backend[]> {
  if (transport !== 'rdma') return [];
  const { rdma } = await import('@ffnet/rdma');
  return [rdma(control ? { control: { maxConcurrentTransmission: 64 } } : {})];
}

async function serve(listen: Endpoint, w: RpcWorkload, instrumented?: { metrics: Metrics; stop(): void }): Promise<PeerServer> {
  const backends: Backend[] = [tcp(), unix(), ...(await rdmaBackends(listen.transport, false)), ...(await shmBackends(listen.transport))];
  if (listen.transport === 'tls') {
    const { cert, key } = readTlsMaterial();
    backends.push(tls({ cert, key, minVersion: 'TLSv1.3' }));
  }
  const server = new Server({
    backends,
    ...(instrumented === undefined ? {} : { metrics: instrumented.metrics }),
    groups: [
      'path' in listen
        ? { networkType: listen.transport, listener: { path: listen.path } }
        : { networkType: listen.transport, listener: { host: listen.host, port: listen.port } },
    ],
  });
  let release = () => {};
  if (w.payload === 'rdma') {
    const one = (await import('./ffnet-w5.js')).oneSidedService(w);
    server.addService(one.service);
    release = one.close;
  } else {
    const respond = responder(w);
    server.addService(
      implement(BenchService, {
        call: (_ctx, req) => ({ data: respond(req.data as Buffer) }),
      }),
    );
  }
  await server.start();
  const bound = server.addresses[0];
  if (bound === undefined) throw new Error('ffnet: the server started without an address');
  return {
    endpoint: parse(bound, listen),
    close: async () => {
      await server.stop();
      instrumented?.stop();
      release();
    },
  };
}

async function connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn, instrumented?: { metrics: Metrics; stop(): void }): Promise<PeerClient> {
  // RDMAControl (the server asks this client for a slot before each one-sided write) is off, as 3FS's
  // enable_rdma_control defaults to false; FFNET_BENCH_RDMA_CONTROL=1 turns it on to measure what it costs.
  const control = endpoint.transport === 'rdma' && process.env.FFNET_BENCH_RDMA_CONTROL === '1';
  const backends: Backend[] = [tcp(), unix(), ...(await rdmaBackends(endpoint.transport, control)), ...(await shmBackends(endpoint.transport))];
  if (endpoint.transport === 'tls') backends.push(tls({ ca: readTlsMaterial().ca, minVersion: 'TLSv1.3' }));
  const client = new Client({ timeoutMs: CALL_TIMEOUT_MS, backends, ...(instrumented === undefined ? {} : { metrics: instrumented.metrics }) });
  if (w.payload === 'rdma') {
    const { OneSidedClient, OneSidedService } = await import('./ffnet-w5.js');
    const c = new OneSidedClient(client, client.stub(OneSidedService, describe(endpoint)), describe(endpoint), w, done);
    await c.first();
    return c;
  }
  const stub = client.stub(BenchService, describe(endpoint));
  // One call before the clock starts, so that connecting is not part of any run.
  await stub.call({ data: payload(w.reqSize) });
  return new BenchClient(client, stub, w, done, instrumented);
}
