export { type Address, formatAddress, parseAddress, rdmaAddress, type Scheme, shmAddress, tcpAddress, tlsAddress, toAddress, unixAddress } from './address.js';
export { type AllocatorState, type AllocatorTuning, allocatorState, DEFAULT_ALLOCATOR_TUNING, tuneAllocator } from './allocator.js';
export {
  type Backend,
  type BackendCapabilities,
  type BackendHandlers,
  type BackendListener,
  type BackendSocket,
  type ConnectOptions,
  findBackend,
  type ListenOptions,
  type PeerCertificate,
  type PeerCredentials,
  STREAM_CAPABILITIES,
} from './backend.js';
export { type BudgetWaiter, ByteBudget, type ByteBudgetStats } from './budget.js';
export { DEFAULT_BACKENDS } from './defaults.js';
export type { AuthRequest, ConnectionAuthenticator, Credentials, Principal } from './identity.js';
export { DEFAULT_TCP_CONNECT_TIMEOUT_MS, DEFAULT_UNIX_SEND_BUFFER_BYTES, type NetBackendOptions, tcp, unix } from './net-backend.js';
export { TransportPool, type TransportPoolOptions } from './pool.js';
export { TLS_ALPN_PROTOCOL, type TlsBackend, type TlsBackendOptions, type TlsBackendSocket, type TlsCredentials, tls } from './tls-backend.js';
export { RECEIVE_ALLOWANCE, Transport, type TransportConnectOptions, type TransportHandler, type TransportOptions, type TransportState } from './transport.js';
