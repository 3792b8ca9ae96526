// @ffnet/device: RDMA devices through koffi + libibverbs, and registered memory.
// Importing this module never loads native code; everything native is loaded on first use.

export { verbsAvailable, type VerbsAvailability, type VerbsUnavailableReason } from './availability.js';

// Devices and ports (3FS IBDevice / IBManager)
export {
  openDevices,
  IBDevice,
  DeviceManager,
  IBManager,
  describeDevices,
  formatDevices,
  type IBConfig,
  type IBPortInfo,
  type PortChangeListener,
  type DevicesReport,
  type DeviceDescription,
  type PortDescription,
  type GidDescription,
} from './device.js';
export type { SubnetZones } from './netinfo.js';
export { formatGid, isLinkLocalGid, isZeroGid } from './gid.js';

// Registered memory
export { RDMABuf, RDMABufPool, type RDMABufAllocateOptions, type PoolAllocateOptions } from './buf.js';
export { RDMARemoteBuf, RDMA_REMOTE_BUF_EXT_TYPE, type RKey } from './remote.js';
export { RDMABUF_ACCESS } from './memory.js';

// The low-level verbs surface IBSocket builds on
export {
  VerbsContext,
  ProtectionDomain,
  MemoryRegion,
  CompletionChannel,
  CompletionQueue,
  QueuePair,
  type DeviceAttr,
  type PortAttr,
  type GidEntry,
  type AsyncEvent,
  type QpCreateOptions,
  type QpCaps,
  type QpInitAttr,
  type QpRtrAttr,
  type QpRtsAttr,
} from './verbs.js';
export { CompletionPoller, type CompletionPollerOptions } from './poller.js';
export { SendWorkRequests, RecvWorkRequests, WcArray, wcError, type WcError, type PostFailure } from './work.js';
export {
  WrOpcode,
  WcOpcode,
  WcStatus,
  WcFlags,
  SendFlags,
  Access,
  QpState,
  Mtu,
  QpType,
  LinkLayer,
  PortState,
  GidType,
  AsyncEventType,
  enumName,
  mtuBytes,
} from './layout.js';
