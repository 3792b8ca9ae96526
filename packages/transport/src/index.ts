export { type Address, formatAddress, parseAddress, rdmaAddress, type Scheme, tcpAddress, toAddress, unixAddress } from './address.js';
export {
  type Backend,
  type BackendHandlers,
  type BackendListener,
  type BackendSocket,
  type ConnectOptions,
  getBackend,
  hasBackend,
  type ListenOptions,
  registerBackend,
} from './backend.js';
export { type BudgetWaiter, ByteBudget, type ByteBudgetStats } from './budget.js';
export { TransportPool, type TransportPoolOptions } from './pool.js';
export { Transport, type TransportConnectOptions, type TransportHandler, type TransportOptions, type TransportState } from './transport.js';
export { ibSocketOf, VerbsBackend, type VerbsBackendOptions, verbsBackend } from './verbs-backend.js';
