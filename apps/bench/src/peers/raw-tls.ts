// raw-tls: raw-net's framing and batching (src/peers/raw-net.ts) over node:tls, the Node ceiling for tls rows as
// raw-net is for tcp. Same certificate (ECDSA P-256 from the bench CA), TLS 1.3 only, the server's certificate
// verified against the CA and the address's IP (as ffnet's tls() does by default); no client certificate.
import * as tls from 'node:tls';
import { readTlsMaterial } from '../tls-certs.js';
import type { RpcWorkload } from '../workloads.js';
import { responder } from '../workloads.js';
import { RawClient, ServerConn } from './raw-net.js';
import type { DoneFn, Endpoint, Peer, PeerClient, PeerServer } from './types.js';

function hostPort(ep: Endpoint): { host: string; port: number } {
  if (ep.transport !== 'tls') throw new Error(`raw-tls runs over tls only, not ${ep.transport}`);
  return { host: ep.host, port: ep.port };
}

export const peer: Peer = {
  name: 'raw-tls',

  serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer> {
    const { host, port } = hostPort(listen);
    const { cert, key } = readTlsMaterial();
    const respond = responder(w);
    const server = tls.createServer({ cert, key, minVersion: 'TLSv1.3' }, (sock) => new ServerConn(sock, respond));
    // A client going away in the middle of a handshake is not the server's failure.
    server.on('tlsClientError', () => {});
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        const addr = server.address();
        resolve({
          endpoint: { transport: 'tls', host, port: addr !== null && typeof addr === 'object' ? addr.port : port },
          close: () => new Promise<void>((res) => server.close(() => res())),
        });
      });
    });
  },

  connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient> {
    const { host, port } = hostPort(endpoint);
    const { ca } = readTlsMaterial();
    return new Promise((resolve, reject) => {
      const sock = tls.connect({ host, port, ca, minVersion: 'TLSv1.3', rejectUnauthorized: true });
      sock.once('error', reject);
      sock.once('secureConnect', () => {
        sock.off('error', reject);
        if (sock.getProtocol() !== 'TLSv1.3') {
          sock.destroy();
          reject(new Error(`raw-tls: negotiated ${sock.getProtocol()}, not TLSv1.3`));
          return;
        }
        resolve(new RawClient(sock, w, done, 'raw-tls'));
      });
    });
  },
};
