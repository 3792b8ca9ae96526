/**
 * For sibling packages (@ffnet/rdma, @ffnet/worker), not for applications: what they need of a Transport's
 * insides. Nothing here is covered by semver.
 */
export { socketOf } from './transport.js';
export { noBackendError } from './backend.js';
export { BackendSocketBase } from './socket-base.js';
