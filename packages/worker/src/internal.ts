// `@ffnet/worker/internal`: what the sibling packages (server, rdma) build on and applications do not need. Not
// covered by semver the way the main entry is.
export { CANCEL_SERVICE_ID, CANCEL_METHOD_ID, encodeCancelNotice } from './cancel.js';
export { connectionLostError, toFfnetError, HandlerErrors } from './errors.js';
export { sharedTimerWheel } from './timers.js';
export { frameBodySize, frameMessageSize } from './limits.js';
export { StopControl } from './stop-control.js';
export { nonNegativeMsOption } from './options.js';
export { composeServerInterceptors } from './processor.js';
export type { CallHost, CallQueue } from './call-context.js';
export type { ConnectionOwner, FrameSink, InFlightCall } from './connection.js';
export type { CallOwner } from './pending-call.js';
