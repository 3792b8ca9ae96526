// @ffnet/connect: IBSocket (a byte stream and one-sided RDMA over one RC queue pair) and the IBConnect handshake.

export {
  checkIBSocketConfig,
  IB_SOCKET_DEFAULTS,
  type IBConnectConfig,
  type IBDeviceLimits,
  type IBSocketConfig,
  type IBSocketSizes,
  ibSocketSizes,
  resolveIBSocketConfig,
} from './config.js';
export {
  connectIBSocket,
  DEFAULT_MAX_ACCEPTED_QPS,
  DEFAULT_MAX_BUFFER_BYTES,
  DEFAULT_MAX_PINNED_BYTES,
  DEFAULT_MAX_WORK_REQUESTS,
  IBAcceptBudget,
  type IBAcceptContext,
  type IBAcceptLimits,
  IBConnectServer,
  type IBConnectServerOptions,
} from './connect.js';
export {
  type IBConnectInfo,
  type IBConnectLink,
  type IBConnectMethod,
  type IBConnectReq,
  type IBConnectRequests,
  type IBConnectResponses,
  type IBConnectRsp,
  IBConnectService,
  type IBQueryDevice,
  type IBQueryPort,
  type IBQueryReq,
  type IBQueryRsp,
  parseConnectReq,
  parseConnectRsp,
  parseQueryRsp,
} from './messages.js';
export { type RDMAPostOptions, RDMAReqBatch } from './rdma.js';
export { type DeviceSelection, type LocalPortCandidate, localPortCandidates, type SelectOptions, selectDevice } from './select.js';
export {
  type IBConnectCall,
  type IBConnectOptions,
  IBSocket,
  type IBSocketHandlers,
  type IBSocketOptions,
  IBSocketState,
  type RDMAExposeAccess,
  type RDMAExposeOptions,
  RDMAWindow,
} from './socket.js';
export { ibSocketTotals } from './socket-core.js';
