/**
 * For sibling packages (@ffnet/rdma, @ffnet/worker), not for applications: what they need of a Transport's
 * insides. Nothing here is covered by semver.
 */

export { noBackendError } from './backend.js';
export { isPrincipal, principalFresh } from './identity.js';
export {
  abortReason,
  acceptedNetSocket,
  describe,
  type Errno,
  listenPaused,
  NetSocket,
  netSocketFd,
  type PausedListen,
  socketError,
} from './net-backend.js';
export { BackendSocketBase } from './socket-base.js';
export { socketOf } from './transport.js';
export { checkUnixOwner } from './unix-owner.js';
