// ffnet with envelope '3fs' (issue 14): the same service, server and stub as the `ffnet` peer, but every message is
// 3FS's MessagePacket in 3FS binary, the payload encoded with the method's schema (`BenchMessage3fs`, one bytes
// field) instead of msgpack. Run beside `ffnet` (`--peers ffnet,ffnet-3fs`) it measures what the 3fs envelope costs.
import { defineService, method, s } from '@ffnet/serde';
import { Client, implement, Server } from '@ffnet/server';
import { type Backend, tcp, tls, unix } from '@ffnet/transport';
import { readTlsMaterial } from '../tls-certs.js';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import { BenchClient, CALL_TIMEOUT_MS, parse } from './ffnet.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';
import { describe } from './types.js';

export const BenchMessage3fs = s.struct('ffnet::bench::BenchMessage', { data: s.bytes });

export const BenchService3fs = defineService({
  name: 'Bench',
  id: 7001,
  methods: {
    call: method(1, { request: BenchMessage3fs, response: BenchMessage3fs }),
  },
});

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
    return new BenchClient(client, stub, w, done, undefined, 'ffnet-3fs');
  },
};
