// `@ffnet/worker/internal`: what the sibling packages (server, rdma) build on and applications do not need. Not
// covered by semver the way the main entry is.

export type { CallHost, CallQueue } from './call-context.js';
export { SET_PRINCIPAL } from './call-context.js';
export { CANCEL_METHOD_ID, CANCEL_SERVICE_ID, encodeCancelNotice } from './cancel.js';
export type { Connection, ConnectionOwner, FrameSink, InFlightCall } from './connection.js';
export { connectionLostError, HandlerErrors, toFfnetError } from './errors.js';
export { frameBodySize, frameMessageSize } from './limits.js';
export { nonNegativeMsOption } from './options.js';
export type { CallOwner } from './pending-call.js';
export { composeServerInterceptors } from './processor.js';
export { StopControl } from './stop-control.js';
export { sharedTimerWheel } from './timers.js';
