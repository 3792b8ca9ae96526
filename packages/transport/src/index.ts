export { type Address, type Scheme, parseAddress, formatAddress, toAddress, tcpAddress, unixAddress, rdmaAddress } from './address.js';
export {
  type Backend,
  type BackendCapabilities,
  type BackendHandlers,
  type BackendListener,
  type BackendSocket,
  type ConnectOptions,
  type ListenOptions,
  type PeerCredentials,
  STREAM_CAPABILITIES,
  findBackend,
} from './backend.js';
export { tcp, unix, type NetBackendOptions, DEFAULT_TCP_CONNECT_TIMEOUT_MS } from './net-backend.js';
export { DEFAULT_BACKENDS } from './defaults.js';
export { Transport, RECEIVE_ALLOWANCE, type TransportState, type TransportHandler, type TransportOptions, type TransportConnectOptions } from './transport.js';
export { ByteBudget, type BudgetWaiter, type ByteBudgetStats } from './budget.js';
export { TransportPool, type TransportPoolOptions } from './pool.js';
