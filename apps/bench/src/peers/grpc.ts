// grpc-js: what users would pick instead. Unary calls whose messages are the payload bytes
// themselves (identity serializers, so no protobuf cost), one channel; insecure credentials over tcp and unix,
// TLS credentials (the bench CA, the same ECDSA P-256 server certificate as the other peers) over tls.
import * as grpc from '@grpc/grpc-js';
import { readTlsMaterial, TLS_SERVER_NAME } from '../tls-certs.js';
import type { RpcWorkload } from '../workloads.js';
import { payload, responder } from '../workloads.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';
import { sizeError } from './types.js';

const METHOD = '/ffnet.bench.Bench/Call';

function identity(b: Buffer): Buffer {
  return b;
}

const service: grpc.ServiceDefinition = {
  call: {
    path: METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

// 1 MiB payloads are well inside grpc-js's 4 MiB default, but the limit must not shape a bulk run.
const options: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

// The target is an IP; the certificate is checked against the name it carries, as the other peers check theirs.
const tlsOptions: grpc.ChannelOptions = { ...options, 'grpc.ssl_target_name_override': TLS_SERVER_NAME, 'grpc.default_authority': TLS_SERVER_NAME };

function target(ep: Endpoint): string {
  return 'path' in ep ? `unix://${ep.path}` : `ipv4:${ep.host}:${ep.port}`;
}

class Client implements PeerClient {
  private readonly req: Buffer;
  private readonly callbacks: grpc.requestCallback<Buffer>[] = [];

  constructor(
    private readonly client: grpc.Client,
    w: RpcWorkload,
    done: DoneFn,
  ) {
    this.req = payload(w.reqSize);
    // One callback per slot, made once, so a call allocates only what grpc-js itself allocates.
    for (let slot = 0; slot < w.inflight; slot++) {
      this.callbacks.push((err, rsp) => {
        if (err) done(slot, err);
        else if (rsp === undefined || rsp.length !== w.rspSize) done(slot, sizeError('grpc-js', rsp?.length ?? -1, w.rspSize));
        else done(slot, undefined);
      });
    }
  }

  call(slot: number): void {
    this.client.makeUnaryRequest(METHOD, identity, identity, this.req, this.callbacks[slot]!);
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}

export const peer: Peer = {
  name: 'grpc-js',

  serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer> {
    const respond = responder(w);
    const server = new grpc.Server(options);
    let creds = grpc.ServerCredentials.createInsecure();
    if (listen.transport === 'tls') {
      const { cert, key } = readTlsMaterial();
      creds = grpc.ServerCredentials.createSsl(null, [{ private_key: key, cert_chain: cert }], false);
    }
    server.addService(service, {
      call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, respond(call.request)),
    });
    const addr = 'path' in listen ? `unix://${listen.path}` : `${listen.host}:${listen.port}`;
    return new Promise((resolve, reject) => {
      server.bindAsync(addr, creds, (err, port) => {
        if (err) {
          reject(err);
          return;
        }
        resolve({
          endpoint: 'path' in listen ? listen : { ...listen, port },
          close: () => new Promise<void>((res) => server.tryShutdown(() => res())),
        });
      });
    });
  },

  connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient> {
    const client =
      endpoint.transport === 'tls'
        ? new grpc.Client(target(endpoint), grpc.credentials.createSsl(readTlsMaterial().ca), tlsOptions)
        : new grpc.Client(target(endpoint), grpc.credentials.createInsecure(), options);
    return new Promise((resolve, reject) => {
      client.waitForReady(Date.now() + 10_000, (err) => {
        if (err) {
          client.close();
          reject(err);
        } else {
          resolve(new Client(client, w, done));
        }
      });
    });
  },
};
