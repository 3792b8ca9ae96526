export { type Address, type Scheme, parseAddress, formatAddress, toAddress, tcpAddress, unixAddress, rdmaAddress } from './address.js';
export {
  type Backend,
  type BackendHandlers,
  type BackendListener,
  type BackendSocket,
  type ConnectOptions,
  type ListenOptions,
  type PeerCredentials,
  registerBackend,
  getBackend,
  hasBackend,
} from './backend.js';
export { Transport, RECEIVE_ALLOWANCE, type TransportState, type TransportHandler, type TransportOptions, type TransportConnectOptions } from './transport.js';
export { ByteBudget, type BudgetWaiter, type ByteBudgetStats } from './budget.js';
export { TransportPool, type TransportPoolOptions } from './pool.js';
export {
  VerbsBackend,
  verbsBackend,
  ibSocketOf,
  HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  type VerbsBackendOptions,
  type VerbsAcceptStats,
} from './verbs-backend.js';
