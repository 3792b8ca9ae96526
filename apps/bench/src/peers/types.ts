import type { PeerName } from '../names.js';
import type { RpcWorkload } from '../workloads.js';

export {
  BASELINE_PEER,
  DEFAULT_PEERS,
  DEFAULT_TRANSPORTS,
  PEER_NAMES,
  type PeerName,
  TRANSPORT_NAMES,
  type TransportName,
} from '../names.js';

/** Where a server listens; a tcp or rdma server asked for port 0 reports the port it got. */
export type Endpoint = { transport: 'tcp' | 'tls' | 'rdma'; host: string; port: number } | { transport: 'unix' | 'shm'; path: string };

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
  return 'path' in ep ? `${ep.transport}://${ep.path}` : `${ep.transport}://${ep.host}:${ep.port}`;
}
