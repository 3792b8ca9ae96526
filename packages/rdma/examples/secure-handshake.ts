import { rdma } from '@ffnet/rdma';
import { Client, EchoService, Server } from '@ffnet/server';
import { type Credentials, type Principal, tcp, tls } from '@ffnet/transport';

/** PEM files of a CA, a server certificate (its SAN names the rdma:// host) and a client certificate. */
export interface Pki {
  ca: string;
  server: { key: string; cert: string };
  client: { key: string; cert: string };
}

export async function secureRdmaEcho(pki: Pki, host: string): Promise<unknown> {
  const tokens = new Map<string, Principal>([['Bearer batch-7f3a', { id: 'batch-job', roles: ['reader'] }]]);
  // Server: the IBConnect handshake runs over mTLS, and the peer must also bring a known token before any queue
  // pair is made for it. A tls:// caller on the same port is served too (acceptTcp over the tls channel).
  const serverRdma = rdma({
    channel: tls({ ...pki.server, ca: pki.ca, requireClientCert: true }),
    authenticate: (req) => (req.certificate === undefined ? undefined : tokens.get(String(req.metadata?.get('authorization')))),
  });
  const server = new Server({ backends: [tcp(), serverRdma], groups: [{ networkType: 'rdma', listener: { host, port: 0 } }] });
  await server.start();

  // Client: verifies the server's certificate against the rdma:// host and sends its token on the handshake.
  const credentials: Credentials = { metadata: () => new Map([['authorization', 'Bearer batch-7f3a']]) };
  // The first call waits for the TLS and IBConnect handshakes: allow more than the 1 s default for it.
  const client = new Client({ timeoutMs: 10_000, backends: [tcp(), rdma({ channel: tls({ ...pki.client, ca: pki.ca }), credentials })] });
  try {
    return await client.stub(EchoService, server.addresses[0]!).echo({ str: 'over a verified handshake' });
  } finally {
    await client.stop();
    await server.stop();
  }
}
