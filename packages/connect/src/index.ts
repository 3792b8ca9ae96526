// @ffnet/connect: IBSocket (a byte stream and one-sided RDMA over one RC queue pair) and the IBConnect handshake.

export { IBSocket, IBSocketState, type IBSocketHandlers, type IBSocketOptions, type IBConnectCall, type IBConnectOptions } from './socket.js';
export { RDMAReqBatch } from './rdma.js';
export {
  IBConnectServer,
  IBAcceptBudget,
  connectIBSocket,
  DEFAULT_MAX_ACCEPTED_QPS,
  DEFAULT_MAX_PINNED_BYTES,
  DEFAULT_MAX_BUFFER_BYTES,
  DEFAULT_MAX_WORK_REQUESTS,
  type IBConnectServerOptions,
  type IBAcceptContext,
  type IBAcceptLimits,
} from './connect.js';
export {
  IB_SOCKET_DEFAULTS,
  resolveIBSocketConfig,
  checkIBSocketConfig,
  ibSocketSizes,
  type IBSocketConfig,
  type IBConnectConfig,
  type IBSocketSizes,
  type IBDeviceLimits,
} from './config.js';
export {
  IBConnectService,
  parseQueryRsp,
  parseConnectReq,
  parseConnectRsp,
  type IBQueryReq,
  type IBQueryRsp,
  type IBQueryDevice,
  type IBQueryPort,
  type IBConnectInfo,
  type IBConnectLink,
  type IBConnectReq,
  type IBConnectRsp,
  type IBConnectMethod,
  type IBConnectRequests,
  type IBConnectResponses,
} from './messages.js';
export { selectDevice, localPortCandidates, type LocalPortCandidate, type DeviceSelection, type SelectOptions } from './select.js';
