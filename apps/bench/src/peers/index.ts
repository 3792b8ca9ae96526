import type { Peer, PeerName } from './types.js';

/** Loads only the peer a child needs, so a raw-net run never pays for loading grpc-js or ffnet. */
export async function loadPeer(name: PeerName): Promise<Peer> {
  switch (name) {
    case 'raw-net':
      return (await import('./raw-net.js')).peer;
    case 'raw-tls':
      return (await import('./raw-tls.js')).peer;
    case 'grpc-js':
      return (await import('./grpc.js')).peer;
    case 'zeromq':
      return (await import('./zeromq.js')).peer;
    case 'ffnet':
      return (await import('./ffnet.js')).peer;
    case 'ffnet+prom':
      return (await import('./ffnet-prom.js')).peer;
    case 'ffnet-3fs':
      return (await import('./ffnet-3fs.js')).peer;
    case 'ffnet@baseline':
      throw new Error('ffnet@baseline runs the child of the --baseline checkout, which loads it as ffnet');
    case 'ib_write_bw':
      throw new Error('ib_write_bw runs as its own processes (src/ib-write-bw.ts), not in a bench child');
  }
}
