import type { RpcWorkload } from '../workloads.js';

export type PeerName = 'ffnet' | 'raw-net' | 'grpc-js' | 'ib_write_bw';
export const PEER_NAMES: readonly PeerName[] = ['ffnet', 'raw-net', 'grpc-js', 'ib_write_bw'];
/** What runs without --peers: ib_write_bw only makes sense next to rxe0 in the VM. */
export const DEFAULT_PEERS: readonly PeerName[] = ['ffnet', 'raw-net', 'grpc-js'];

export type TransportName = 'tcp' | 'unix' | 'rdma';
export const TRANSPORT_NAMES: readonly TransportName[] = ['tcp', 'unix', 'rdma'];
/** What runs without --transports: rdma needs a verbs device (the rxe VM, `pnpm bench:rdma`). */
export const DEFAULT_TRANSPORTS: readonly TransportName[] = ['tcp', 'unix'];

/** Where a server listens; a tcp or rdma server asked for port 0 reports the port it got. */
export type Endpoint =
  | { transport: 'tcp' | 'rdma'; host: string; port: number }
  | { transport: 'unix'; path: string };

/**
 * Called by a peer's client for every finished call. `slot` is the in-flight slot the call was
 * issued for; a reply of the wrong size is an error, so a broken peer cannot post good numbers.
 */
export type DoneFn = (slot: number, err: Error | undefined) => void;

export interface PeerServer {
  endpoint: Endpoint;
  close(): Promise<void>;
}

export interface PeerClient {
  /** Issue one call of the workload's request for `slot`; completion is reported through DoneFn. */
  call(slot: number): void;
  close(): Promise<void>;
}

export interface Peer {
  name: PeerName;
  serve(listen: Endpoint, w: RpcWorkload): Promise<PeerServer>;
  connect(endpoint: Endpoint, w: RpcWorkload, done: DoneFn): Promise<PeerClient>;
}

export function sizeError(peer: PeerName, got: number, want: number): Error {
  return new Error(`${peer}: reply of ${got} bytes, expected ${want}`);
}

export function describe(ep: Endpoint): string {
  return ep.transport === 'unix' ? `unix://${ep.path}` : `${ep.transport}://${ep.host}:${ep.port}`;
}
