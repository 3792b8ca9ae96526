// ffnet with envelope '3fs' (issue 14): the same service, server and stub as the `ffnet` peer, but every message is
// 3FS's MessagePacket in 3FS binary, the payload encoded with the method's schema (`BenchMessage3fs`, one bytes
// field) instead of msgpack. Run beside `ffnet` (`--peers ffnet,ffnet-3fs`) it measures what the 3fs envelope costs.
import { defineService, method, s } from '@ffnet/serde';
import { Client, implement, Server, type Stub } from '@ffnet/server';
import { type Backend, tcp, tls, unix } from '@ffnet/transport';
import { readTlsMaterial } from '../tls-certs.js';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';
import { describe, sizeError } from './types.js';

export const BenchMessage3fs = s.struct('ffnet::bench::BenchMessage', { data: s.bytes });

export const BenchService3fs = defineService({
  name: 'Bench',
  id: 7001,
  methods: {
    call: method(1, { request: BenchMessage3fs, response: BenchMessage3fs }),
  },
});

const CALL_TIMEOUT_MS = 10_000;

function parse(addr: string, listen: Endpoint): Endpoint {
  if ('path' in listen) return listen;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return { transport: listen.transport, host: listen.host, port };
}

class BenchClient implements PeerClient {
  private readonly req: { data: Uint8Array };
  private readonly ok: ((rsp: { data: Uint8Array }) => void)[] = [];
  private readonly err: ((e: unknown) => void)[] = [];

  constructor(
    private readonly client: Client,
    private readonly stub: Stub<typeof BenchService3fs>,
    w: RpcWorkload,
    done: DoneFn,
  ) {
    this.req = { data: payload(w.reqSize) };
    for (let slot = 0; slot < w.inflight; slot++) {
      this.ok.push((rsp) => done(slot, rsp.data.length === w.rspSize ? undefined : sizeError('ffnet-3fs', rsp.data.length, w.rspSize)));
      this.err.push((e) => done(slot, e instanceof Error ? e : new Error(String(e))));
    }
  }

  call(slot: number): void {
    this.stub.call(this.req).then(this.ok[slot], this.err[slot]);
  }

  close(): Promise<void> {
    return this.client.stop();
  }
}

export const peer: Peer = {
  name: 'ffnet-3fs',

  async serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer> {
    if (listen.transport === 'rdma') throw new Error("ffnet-3fs: envelope '3fs' does not run over rdma");
    const backends: Backend[] = [tcp(), unix()];
    if (listen.transport === 'tls') {
      const { cert, key } = readTlsMaterial();
      backends.push(tls({ cert, key, minVersion: 'TLSv1.3' }));
    }
    const server = new Server({
      backends,
      groups: [
        'path' in listen
          ? { networkType: 'unix', envelope: '3fs', listener: { path: listen.path } }
          : { networkType: listen.transport, envelope: '3fs', listener: { host: listen.host, port: listen.port } },
      ],
    });
    const respond = responder(w);
    server.addService(implement(BenchService3fs, { call: (_ctx, req) => ({ data: respond(req.data as Buffer) }) }));
    await server.start();
    const bound = server.addresses[0];
    if (bound === undefined) throw new Error('ffnet-3fs: the server started without an address');
    return { endpoint: parse(bound, listen), close: () => server.stop() };
  },

  async connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient> {
    const backends: Backend[] = [tcp(), unix()];
    if (endpoint.transport === 'tls') backends.push(tls({ ca: readTlsMaterial().ca, minVersion: 'TLSv1.3' }));
    const client = new Client({ timeoutMs: CALL_TIMEOUT_MS, backends, envelope: '3fs' });
    const stub = client.stub(BenchService3fs, describe(endpoint));
    await stub.call({ data: payload(w.reqSize) });
    return new BenchClient(client, stub, w, done);
  },
};
