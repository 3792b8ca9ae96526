// Peer and transport names: the vocabulary every other module shares, kept free of imports so that the
// workload catalogue and the peer interfaces can both use it without importing each other.

/**
 * `ffnet@baseline` is ffnet from another built checkout (`--baseline DIR`), run beside the current one. `raw-tls`
 * is raw-net's framing over node:tls: it is to tls what raw-net is to tcp and unix. `zeromq` is zeromq.js
 * (DEALER/ROUTER) over tcp and ipc.
 */
export type PeerName = 'ffnet' | 'ffnet@baseline' | 'ffnet+prom' | 'ffnet-3fs' | 'raw-net' | 'raw-tls' | 'grpc-js' | 'zeromq' | 'ib_write_bw';
export const PEER_NAMES: readonly PeerName[] = ['ffnet', 'ffnet@baseline', 'ffnet+prom', 'ffnet-3fs', 'raw-net', 'raw-tls', 'grpc-js', 'zeromq', 'ib_write_bw'];
/** ffnet with @ffnet/prometheus on both sides (the observability cost, issue 13): judged against plain ffnet. */
export const PROM_PEER = 'ffnet+prom' satisfies PeerName;
/**
 * What runs without --peers: ib_write_bw only makes sense next to rxe0 in the VM; raw-tls runs over tls only;
 * ffnet+prom and ffnet-3fs (ffnet with envelope '3fs') are asked for by name, beside ffnet.
 */
export const DEFAULT_PEERS: readonly PeerName[] = ['ffnet', 'raw-net', 'raw-tls', 'grpc-js', 'zeromq'];
export const BASELINE_PEER = 'ffnet@baseline' satisfies PeerName;

export type TransportName = 'tcp' | 'unix' | 'tls' | 'rdma' | 'shm';
export const TRANSPORT_NAMES: readonly TransportName[] = ['tcp', 'unix', 'tls', 'rdma', 'shm'];
/** What runs without --transports: rdma needs a verbs device (the rxe VM, `pnpm bench:rdma`). */
export const DEFAULT_TRANSPORTS: readonly TransportName[] = ['tcp', 'unix'];
