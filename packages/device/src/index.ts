// @ffnet/device: RDMA devices through koffi + libibverbs, and registered memory.
// Importing this module never loads native code; everything native is loaded on first use.

export { type VerbsAvailability, type VerbsUnavailableReason, verbsAvailable } from './availability.js';
// Registered memory
export { type PoolAllocateOptions, RDMABuf, type RDMABufAllocateOptions, RDMABufPool } from './buf.js';
// Devices and ports (3FS IBDevice / IBManager)
export {
  type DeviceDescription,
  DeviceManager,
  type DevicesReport,
  describeDevices,
  formatDevices,
  type GidDescription,
  type IBConfig,
  IBDevice,
  IBManager,
  type IBPortInfo,
  openDevices,
  type PortChangeListener,
  type PortDescription,
} from './device.js';
export { formatGid, isLinkLocalGid, isZeroGid } from './gid.js';
export {
  Access,
  AsyncEventType,
  enumName,
  GidType,
  LinkLayer,
  Mtu,
  MwType,
  mtuBytes,
  PortState,
  QpState,
  QpType,
  SendFlags,
  WcFlags,
  WcOpcode,
  WcStatus,
  WrOpcode,
} from './layout.js';
export { RDMABUF_ACCESS, RDMABUF_DEVICE_SCOPE_ACCESS } from './memory.js';
export type { SubnetZones } from './netinfo.js';
export { CompletionPoller, type CompletionPollerOptions } from './poller.js';
export { RDMA_REMOTE_BUF_EXT_TYPE, RDMARemoteBuf, type RKey } from './remote.js';
// The low-level verbs surface IBSocket builds on
export {
  type AsyncEvent,
  CompletionChannel,
  CompletionQueue,
  type DeviceAttr,
  type GidEntry,
  MemoryRegion,
  MemoryWindow,
  type PortAttr,
  ProtectionDomain,
  type QpCaps,
  type QpCreateOptions,
  type QpInitAttr,
  type QpRtrAttr,
  type QpRtsAttr,
  QueuePair,
  VerbsContext,
} from './verbs.js';
export { type PostFailure, RecvWorkRequests, SendWorkRequests, WcArray, type WcError, wcError } from './work.js';
