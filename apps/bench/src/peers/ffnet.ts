// ffnet with its defaults: a service defined with @ffnet/serde, served by @ffnet/server, called through
// a typed stub. CRC checked, envelope fully decoded, payload a msgpack bin inside a map: nothing turned off.
import { defineService, method } from '@ffnet/serde';
import { Client, Server, type Stub, implement } from '@ffnet/server';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';
import { sizeError } from './types.js';

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
const CALL_TIMEOUT_MS = 10_000;

function address(ep: Endpoint): string {
  return ep.transport === 'tcp' ? `tcp://${ep.host}:${ep.port}` : `unix://${ep.path}`;
}

function parse(addr: string, listen: Endpoint): Endpoint {
  if (listen.transport === 'unix') return listen;
  const port = Number(addr.slice(addr.lastIndexOf(':') + 1));
  return { transport: 'tcp', host: listen.host, port };
}

class BenchClient implements PeerClient {
  private readonly req: BenchMessage;
  private readonly ok: ((rsp: BenchMessage) => void)[] = [];
  private readonly err: ((e: unknown) => void)[] = [];

  constructor(
    private readonly client: Client,
    private readonly stub: Stub<typeof BenchService>,
    w: RpcWorkload,
    done: DoneFn,
  ) {
    this.req = { data: payload(w.reqSize) };
    // Settle callbacks made once per slot: what a call allocates is ffnet's own doing.
    for (let slot = 0; slot < w.inflight; slot++) {
      this.ok.push((rsp) => done(slot, rsp.data.length === w.rspSize ? undefined : sizeError('ffnet', rsp.data.length, w.rspSize)));
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
  name: 'ffnet',

  async serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer> {
    const respond = responder(w);
    const server = new Server({
      groups: [
        listen.transport === 'tcp'
          ? { networkType: 'tcp', listener: { host: listen.host, port: listen.port } }
          : { networkType: 'unix', listener: { path: listen.path } },
      ],
    });
    server.addService(
      implement(BenchService, {
        call: (_ctx, req) => ({ data: respond(req.data as Buffer) }),
      }),
    );
    await server.start();
    const bound = server.addresses[0];
    if (bound === undefined) throw new Error('ffnet: the server started without an address');
    return { endpoint: parse(bound, listen), close: () => server.stop() };
  },

  async connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient> {
    const client = new Client({ timeoutMs: CALL_TIMEOUT_MS });
    const stub = client.stub(BenchService, address(endpoint));
    // One call before the clock starts, so that connecting is not part of any run.
    await stub.call({ data: payload(w.reqSize) });
    return new BenchClient(client, stub, w, done);
  },
};
