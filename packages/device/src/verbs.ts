/**
 * Thin, explicit wrappers over verbs objects: context, PD, MR, completion channel, CQ, QP.
 * Control-path calls use the exported libibverbs functions with attr structs laid out by `S` in a
 * native scratch block. The data path (post send/recv, poll, re-arm) calls the provider's functions
 * straight from the context's ops table: the four pointers are read and decoded once per context.
 */
import { IBDeviceNotFoundError, IBInitFailedError, InvalidArgError, RDMAError } from '@ffnet/common';
import type { TypeObject } from 'koffi';
import { Access, AsyncEventType, enumName, type LinkLayer, MwType, OPS, PortState, QpAttrMask, QpState, QpType as QpTypes, S } from './layout.js';
import { allocScratch, errnoText, ibv, koffi, lastErrno, libc, type Scratch } from './native.js';

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
const EAGAIN = 11;

/** The provider entry points behind verbs.h's inline functions, decoded once per context. */
export interface VerbsOps {
  readonly postSend: (qp: bigint, wr: bigint, badWr: bigint) => number;
  readonly postRecv: (qp: bigint, wr: bigint, badWr: bigint) => number;
  readonly pollCq: (cq: bigint, n: number, wc: bigint) => number;
  readonly reqNotifyCq: (cq: bigint, solicitedOnly: number) => number;
  /** ibv_alloc_mw / ibv_dealloc_mw (also inline in verbs.h); null when the provider has no memory windows. */
  readonly allocMw: ((pd: bigint, type: number) => bigint | null) | null;
  readonly deallocMw: ((mw: bigint) => number) | null;
}

type Protos = { postSend: TypeObject; postRecv: TypeObject; pollCq: TypeObject; reqNotifyCq: TypeObject; allocMw: TypeObject; deallocMw: TypeObject };
let protos: Protos | undefined;

/** @internal reads the four inline-verb pointers out of `ctx->ops` and makes them callable (exported for tests). */
export function decodeOps(ctx: bigint, device: string): VerbsOps {
  const k = koffi();
  protos ??= {
    postSend: k.proto('int ffnet_ibv_post_send_fn(void *qp, void *wr, void *bad_wr)'),
    postRecv: k.proto('int ffnet_ibv_post_recv_fn(void *qp, void *wr, void *bad_wr)'),
    pollCq: k.proto('int ffnet_ibv_poll_cq_fn(void *cq, int num_entries, void *wc)'),
    reqNotifyCq: k.proto('int ffnet_ibv_req_notify_cq_fn(void *cq, int solicited_only)'),
    allocMw: k.proto('void *ffnet_ibv_alloc_mw_fn(void *pd, int type)'),
    deallocMw: k.proto('int ffnet_ibv_dealloc_mw_fn(void *mw)'),
  };
  const fn = (off: number, proto: TypeObject, name: string) => {
    const p = k.decode(ctx, off, 'void *') as bigint | null;
    if (p === null) throw new IBInitFailedError(`${device}: provider has no ${name} in its ops table`);
    return k.decode(p, proto) as never;
  };
  return {
    postSend: fn(OPS.post_send, protos.postSend, 'post_send'),
    postRecv: fn(OPS.post_recv, protos.postRecv, 'post_recv'),
    pollCq: fn(OPS.poll_cq, protos.pollCq, 'poll_cq'),
    reqNotifyCq: fn(OPS.req_notify_cq, protos.reqNotifyCq, 'req_notify_cq'),
    allocMw: optional(OPS.alloc_mw, protos.allocMw),
    deallocMw: optional(OPS.dealloc_mw, protos.deallocMw),
  };
  function optional(off: number, proto: TypeObject): never | null {
    const p = k.decode(ctx, off, 'void *') as bigint | null;
    return p === null ? null : (k.decode(p, proto) as never);
  }
}

function failed(what: string, device: string, err = lastErrno()): never {
  throw new IBInitFailedError(`${what} on ${device} failed: ${errnoText(err)}`);
}

function setNonBlocking(fd: number): void {
  const c = libc();
  const flags = c.fcntl(fd, F_GETFL) as number;
  if (flags >= 0 && !(flags & O_NONBLOCK)) c.fcntl(fd, F_SETFL, 'int', flags | O_NONBLOCK);
}

export interface DeviceAttr {
  fwVer: string;
  /** Hex of the 8 GUID bytes in wire order (`5054:00ff:fe12:3456` style is `formatGuid`). */
  nodeGuid: string;
  sysImageGuid: string;
  maxMrSize: bigint;
  vendorId: number;
  vendorPartId: number;
  hwVer: number;
  maxQp: number;
  maxQpWr: number;
  deviceCapFlags: number;
  maxSge: number;
  maxCq: number;
  maxCqe: number;
  maxMr: number;
  maxPd: number;
  maxQpRdAtom: number;
  maxQpInitRdAtom: number;
  physPortCnt: number;
}

export interface PortAttr {
  state: PortState;
  maxMtu: number;
  activeMtu: number;
  gidTblLen: number;
  portCapFlags: number;
  maxMsgSz: number;
  pkeyTblLen: number;
  lid: number;
  smLid: number;
  lmc: number;
  activeWidth: number;
  activeSpeed: number;
  physState: number;
  linkLayer: LinkLayer;
}

export interface GidEntry {
  index: number;
  gid: Buffer;
  /** `GidType`: IB, ROCE_V1 or ROCE_V2, as reported by `_ibv_query_gid_ex`. */
  type: number;
  ndevIfindex: number;
}

export interface AsyncEvent {
  type: AsyncEventType;
  typeName: string;
  /** Port number for port events (0 otherwise). */
  portNum: number;
}

const guid = (dv: DataView, off: number) => {
  let s = '';
  for (let i = 0; i < 8; i += 2)
    s +=
      (i ? ':' : '') +
      dv
        .getUint16(off + i, false)
        .toString(16)
        .padStart(4, '0');
  return s;
};

const PORT_EVENTS = new Set<number>([
  AsyncEventType.PORT_ACTIVE,
  AsyncEventType.PORT_ERR,
  AsyncEventType.LID_CHANGE,
  AsyncEventType.PKEY_CHANGE,
  AsyncEventType.SM_CHANGE,
  AsyncEventType.CLIENT_REREGISTER,
  AsyncEventType.GID_CHANGE,
]);

/** An open device (`struct ibv_context *`). */
export class VerbsContext {
  readonly ptr: bigint;
  readonly name: string;
  /** @internal the inline verbs, decoded once for this context. */
  readonly ops: VerbsOps;
  #closed = false;
  // Attr structs for control-path calls (the largest, ibv_device_attr, is 232 bytes); one per context.
  readonly #scratch = allocScratch(256);
  #asyncFdNonBlocking = false;

  private constructor(ptr: bigint, name: string) {
    this.ptr = ptr;
    this.name = name;
    this.ops = decodeOps(ptr, name);
  }

  /** Opens the device called `name` (an IB device name such as `rxe0` or `mlx5_0`). */
  static open(name: string): VerbsContext {
    const v = ibv();
    const k = koffi();
    const n = [0];
    k.errno(0);
    const list = v.get_device_list(n) as bigint | null;
    if (list === null) failed('ibv_get_device_list', name);
    try {
      for (let i = 0; i < n[0]!; i++) {
        const dev = k.decode(list, i * 8, 'void *') as bigint;
        if (v.get_device_name(dev) !== name) continue;
        const ctx = v.open_device(dev) as bigint | null;
        if (ctx === null) failed('ibv_open_device', name);
        try {
          return new VerbsContext(ctx, name);
        } catch (e) {
          v.close_device(ctx);
          throw e;
        }
      }
    } finally {
      v.free_device_list(list);
    }
    throw new IBDeviceNotFoundError(`RDMA device ${name} not found`);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `ctx->async_fd`, for watching async events (port up/down, GID change, QP fatal…). */
  get asyncFd(): number {
    return koffi().decode(this.ptr, S.ibv_context.async_fd, 'int') as number;
  }

  get numCompVectors(): number {
    return koffi().decode(this.ptr, S.ibv_context.num_comp_vectors, 'int') as number;
  }

  queryDevice(): DeviceAttr {
    const { ptr, view: dv, bytes } = this.#scratch;
    const A = S.ibv_device_attr;
    bytes.fill(0, 0, A.size);
    if (ibv().query_device(this.ptr, ptr) !== 0) failed('ibv_query_device', this.name);
    const fw = bytes.subarray(A.fw_ver, A.fw_ver + 64);
    const i32 = (o: number) => dv.getInt32(o, true);
    return {
      fwVer: fw.toString('latin1', 0, fw.indexOf(0) >= 0 ? fw.indexOf(0) : 64),
      nodeGuid: guid(dv, A.node_guid),
      sysImageGuid: guid(dv, A.sys_image_guid),
      maxMrSize: dv.getBigUint64(A.max_mr_size, true),
      vendorId: dv.getUint32(A.vendor_id, true),
      vendorPartId: dv.getUint32(A.vendor_part_id, true),
      hwVer: dv.getUint32(A.hw_ver, true),
      maxQp: i32(A.max_qp),
      maxQpWr: i32(A.max_qp_wr),
      deviceCapFlags: dv.getUint32(A.device_cap_flags, true),
      maxSge: i32(A.max_sge),
      maxCq: i32(A.max_cq),
      maxCqe: i32(A.max_cqe),
      maxMr: i32(A.max_mr),
      maxPd: i32(A.max_pd),
      maxQpRdAtom: i32(A.max_qp_rd_atom),
      maxQpInitRdAtom: i32(A.max_qp_init_rd_atom),
      physPortCnt: dv.getUint8(A.phys_port_cnt),
    };
  }

  queryPort(portNum: number): PortAttr {
    const { ptr, view: dv, bytes } = this.#scratch;
    const A = S.ibv_port_attr;
    bytes.fill(0, 0, A.size);
    if (ibv().query_port(this.ptr, portNum, ptr) !== 0) failed(`ibv_query_port(${portNum})`, this.name);
    return {
      state: dv.getInt32(A.state, true) as PortState,
      maxMtu: dv.getInt32(A.max_mtu, true),
      activeMtu: dv.getInt32(A.active_mtu, true),
      gidTblLen: dv.getInt32(A.gid_tbl_len, true),
      portCapFlags: dv.getUint32(A.port_cap_flags, true),
      maxMsgSz: dv.getUint32(A.max_msg_sz, true),
      pkeyTblLen: dv.getUint16(A.pkey_tbl_len, true),
      lid: dv.getUint16(A.lid, true),
      smLid: dv.getUint16(A.sm_lid, true),
      lmc: dv.getUint8(A.lmc),
      activeWidth: dv.getUint8(A.active_width),
      activeSpeed: dv.getUint8(A.active_speed),
      physState: dv.getUint8(A.phys_state),
      linkLayer: dv.getUint8(A.link_layer) as LinkLayer,
    };
  }

  /** One GID table entry through `_ibv_query_gid_ex` (type included); null for an empty/invalid slot. */
  queryGid(portNum: number, index: number): GidEntry | null {
    const { ptr, view: dv, bytes } = this.#scratch;
    const E = S.ibv_gid_entry;
    bytes.fill(0, 0, E.size);
    if (ibv().query_gid_ex(this.ptr, portNum, index, ptr, 0, E.size) !== 0) return null;
    return {
      index: dv.getUint32(E.gid_index, true),
      gid: Buffer.from(bytes.subarray(E.gid, E.gid + 16)),
      type: dv.getUint32(E.gid_type, true),
      ndevIfindex: dv.getUint32(E.ndev_ifindex, true),
    };
  }

  allocPd(): ProtectionDomain {
    this.#check();
    const pd = ibv().alloc_pd(this.ptr) as bigint | null;
    if (pd === null) failed('ibv_alloc_pd', this.name);
    return new ProtectionDomain(this, pd);
  }

  createCompChannel(): CompletionChannel {
    this.#check();
    const ch = ibv().create_comp_channel(this.ptr) as bigint | null;
    if (ch === null) failed('ibv_create_comp_channel', this.name);
    return new CompletionChannel(this, ch);
  }

  /**
   * A CQ with room for `cqe` completions, attached to `channel` when given (needed for event-driven polling).
   * `eventAckBatch` (default 128, 3FS's event_ack_batch) is how many channel events are acked at once.
   */
  createCq(opts: { cqe: number; channel?: CompletionChannel | null; compVector?: number; eventAckBatch?: number }): CompletionQueue {
    this.#check();
    const batch = opts.eventAckBatch ?? DEFAULT_EVENT_ACK_BATCH;
    if (!Number.isSafeInteger(batch) || batch <= 0) throw new InvalidArgError(`createCq: eventAckBatch must be a positive integer, got ${batch}`);
    const ch = opts.channel ?? null;
    const cq = ibv().create_cq(this.ptr, opts.cqe, null, ch ? ch.ptr : null, opts.compVector ?? 0) as bigint | null;
    if (cq === null) failed(`ibv_create_cq(${opts.cqe})`, this.name);
    return new CompletionQueue(this, cq, ch, batch);
  }

  /**
   * Reads and acks one async event without blocking; null when none is pending. The fd is switched to
   * O_NONBLOCK on first use, so call this only from a readiness callback on `asyncFd`.
   */
  getAsyncEvent(): AsyncEvent | null {
    this.#check();
    if (!this.#asyncFdNonBlocking) {
      setNonBlocking(this.asyncFd);
      this.#asyncFdNonBlocking = true;
    }
    const { ptr, view: dv } = this.#scratch;
    const E = S.ibv_async_event;
    const v = ibv();
    if (v.get_async_event(this.ptr, ptr) !== 0) {
      const err = lastErrno();
      if (err === EAGAIN) return null;
      failed('ibv_get_async_event', this.name, err);
    }
    const type = dv.getInt32(E.event_type, true) as AsyncEventType;
    const ev: AsyncEvent = {
      type,
      typeName: String(v.event_type_str(type)),
      portNum: PORT_EVENTS.has(type) ? dv.getInt32(E.element, true) : 0,
    };
    v.ack_async_event(ptr);
    return ev;
  }

  /** Closes the device. Every PD, MR, CQ, QP and channel made from it must be destroyed first. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#scratch.free();
    const rc = ibv().close_device(this.ptr) as number;
    if (rc !== 0) failed('ibv_close_device', this.name, rc > 0 ? rc : lastErrno());
  }

  #check(): void {
    if (this.#closed) throw new IBInitFailedError(`RDMA device ${this.name} is closed`);
  }
}

export class ProtectionDomain {
  readonly context: VerbsContext;
  readonly ptr: bigint;
  #freed = false;

  /** @internal */
  constructor(context: VerbsContext, ptr: bigint) {
    this.context = context;
    this.ptr = ptr;
  }

  /**
   * Registers [addr, addr+length) with `access` (see `Access`). Uses `ibv_reg_mr_iova2` with iova = addr,
   * which is what verbs.h's ibv_reg_mr macro does too whenever an optional bit such as RELAXED_ORDERING is set.
   */
  registerMemory(addr: bigint, length: number, access: number): MemoryRegion {
    if (this.#freed) throw new IBInitFailedError(`protection domain on ${this.context.name} is deallocated`);
    const mr = ibv().reg_mr_iova2(this.ptr, addr, length, addr, access) as bigint | null;
    if (mr === null) failed(`ibv_reg_mr_iova2(${length} bytes)`, this.context.name);
    const k = koffi();
    return new MemoryRegion(this, mr, addr, length, k.decode(mr, S.ibv_mr.lkey, 'uint32_t') as number, k.decode(mr, S.ibv_mr.rkey, 'uint32_t') as number);
  }

  createQp(opts: QpCreateOptions): QueuePair {
    return QueuePair.create(this, opts);
  }

  /**
   * A type-2 memory window on this PD (ibv_alloc_mw). It grants nothing until a BIND_MW work request binds it to
   * a range of an MR registered with MW_BIND, and then only to the one QP that posted the bind.
   */
  allocMw(): MemoryWindow {
    if (this.#freed) throw new IBInitFailedError(`protection domain on ${this.context.name} is deallocated`);
    const alloc = this.context.ops.allocMw;
    if (alloc === null) throw new IBInitFailedError(`${this.context.name}: the provider has no memory windows (ops.alloc_mw is NULL)`);
    koffi().errno(0);
    const mw = alloc(this.ptr, MwType.TYPE_2);
    if (mw === null) failed('ibv_alloc_mw(type 2)', this.context.name);
    return new MemoryWindow(this, mw);
  }

  dealloc(): void {
    if (this.#freed) return;
    this.#freed = true;
    const rc = ibv().dealloc_pd(this.ptr) as number;
    if (rc !== 0) failed('ibv_dealloc_pd', this.context.name, rc);
  }
}

export class MemoryRegion {
  readonly pd: ProtectionDomain;
  readonly ptr: bigint;
  readonly addr: bigint;
  readonly length: number;
  readonly lkey: number;
  readonly rkey: number;
  #deregistered = false;

  /** @internal */
  constructor(pd: ProtectionDomain, ptr: bigint, addr: bigint, length: number, lkey: number, rkey: number) {
    this.pd = pd;
    this.ptr = ptr;
    this.addr = addr;
    this.length = length;
    this.lkey = lkey;
    this.rkey = rkey;
  }

  get deregistered(): boolean {
    return this.#deregistered;
  }

  /** Idempotent. Returns false (and keeps the MR alive) if the provider refused. */
  deregister(): boolean {
    if (this.#deregistered) return true;
    const rc = ibv().dereg_mr(this.ptr) as number;
    if (rc !== 0) return false;
    this.#deregistered = true;
    return true;
  }
}

/**
 * A type-2 memory window. The provider identifies the window by the rkey stored in the ibv_mw struct, and for type 2
 * windows the consumer owns that rkey (verbs spec o10-37.2.x): each bind must pick a new one (nextRkey(), the low
 * 8 bits bumped, as ibv_inc_rkey does) and the struct is updated to it here once the bind is posted, so the next
 * invalidate and bind name the window by what the device holds.
 */
export class MemoryWindow {
  readonly pd: ProtectionDomain;
  readonly ptr: bigint;
  #rkey: number;
  #freed = false;

  /** @internal */
  constructor(pd: ProtectionDomain, ptr: bigint) {
    this.pd = pd;
    this.ptr = ptr;
    this.#rkey = koffi().decode(ptr, S.ibv_mw.rkey, 'uint32_t') as number;
  }

  /** The rkey the device currently knows the window by (valid for remote access only while bound). */
  get rkey(): number {
    return this.#rkey;
  }

  /** The rkey the next bind gives the window: same index, the 8-bit key bumped, so every old rkey stops working. */
  nextRkey(): number {
    const r = this.#rkey;
    return ((r & 0xffff_ff00) | ((r + 1) & 0xff)) >>> 0;
  }

  /** @internal after a BIND_MW carrying `rkey` was posted (the provider has already copied the old one). */
  rebound(rkey: number): void {
    this.#rkey = rkey >>> 0;
    koffi().encode(this.ptr, S.ibv_mw.rkey, 'uint32_t', this.#rkey);
  }

  get freed(): boolean {
    return this.#freed;
  }

  /** ibv_dealloc_mw: also invalidates a bound window. Idempotent; returns false (window kept) if the provider refused. */
  dealloc(): boolean {
    if (this.#freed) return true;
    const rc = this.pd.context.ops.deallocMw?.(this.ptr) ?? -1;
    if (rc !== 0) return false;
    this.#freed = true;
    return true;
  }
}

/**
 * A completion channel: its fd becomes readable when an armed CQ attached to it gets a completion.
 * The fd is made O_NONBLOCK here (as 3FS does), so reading events never blocks the loop.
 */
export class CompletionChannel {
  readonly context: VerbsContext;
  readonly ptr: bigint;
  readonly fd: number;
  readonly #cqs = new Map<bigint, CompletionQueue>();
  // Two pointer-sized out-parameters for ibv_get_cq_event.
  readonly #out = allocScratch(16);
  #destroyed = false;

  /** @internal */
  constructor(context: VerbsContext, ptr: bigint) {
    this.context = context;
    this.ptr = ptr;
    this.fd = koffi().decode(ptr, S.ibv_comp_channel.fd, 'int') as number;
    setNonBlocking(this.fd);
  }

  /** @internal */
  attach(cq: CompletionQueue): void {
    this.#cqs.set(cq.ptr, cq);
  }

  /** @internal */
  detach(cq: CompletionQueue): void {
    this.#cqs.delete(cq.ptr);
  }

  /**
   * Consumes every pending completion event (non-blocking) and credits each to its CQ, which acks them
   * in batches. Returns how many were read; 0 on a spurious wake-up.
   */
  readEvents(): number {
    if (this.#destroyed) return 0;
    const v = ibv();
    const { ptr, view: dv } = this.#out;
    let n = 0;
    for (;;) {
      if (v.get_cq_event(this.ptr, ptr, ptr + 8n) !== 0) {
        const err = lastErrno();
        if (err === EAGAIN || n > 0) return n;
        failed('ibv_get_cq_event', this.context.name, err);
      }
      n++;
      this.#cqs.get(dv.getBigUint64(0, true))?.eventReceived();
    }
  }

  destroy(): void {
    if (this.#destroyed) return;
    if (this.#cqs.size > 0) throw new IBInitFailedError(`completion channel on ${this.context.name} still has ${this.#cqs.size} CQ(s)`);
    this.#destroyed = true;
    this.#out.free();
    const rc = ibv().destroy_comp_channel(this.ptr) as number;
    if (rc !== 0) failed('ibv_destroy_comp_channel', this.context.name, rc > 0 ? rc : lastErrno());
  }
}

/** Events are acked in batches: ibv_ack_cq_events takes a mutex, so once per event would be wasteful. */
const DEFAULT_EVENT_ACK_BATCH = 128;

export class CompletionQueue {
  readonly context: VerbsContext;
  readonly ptr: bigint;
  readonly channel: CompletionChannel | null;
  /** Actual capacity granted by the provider (≥ requested). */
  readonly cqe: number;
  readonly #poll: VerbsOps['pollCq'];
  readonly #notify: VerbsOps['reqNotifyCq'];
  readonly #ackBatch: number;
  #unacked = 0;
  #destroyed = false;

  /** @internal */
  constructor(context: VerbsContext, ptr: bigint, channel: CompletionChannel | null, eventAckBatch = DEFAULT_EVENT_ACK_BATCH) {
    this.context = context;
    this.#ackBatch = eventAckBatch;
    this.ptr = ptr;
    this.channel = channel;
    this.cqe = koffi().decode(ptr, S.ibv_cq.cqe, 'int') as number;
    this.#poll = context.ops.pollCq;
    this.#notify = context.ops.reqNotifyCq;
    channel?.attach(this);
  }

  /**
   * Polls up to `max` completions into `wcs` (starting at entry 0). Returns the count. Hot path: one FFI call
   * into the provider, no allocation.
   */
  poll(wcs: { readonly ptr: bigint; readonly capacity: number }, max = wcs.capacity): number {
    const n = this.#poll(this.ptr, Math.min(max, wcs.capacity), wcs.ptr);
    if (n < 0) throw new RDMAError(`ibv_poll_cq on ${this.context.name} failed (${n})`);
    return n;
  }

  /** Arms the CQ: the channel fd fires on the next completion (or next solicited one). */
  requestNotify(solicitedOnly = false): void {
    const rc = this.#notify(this.ptr, solicitedOnly ? 1 : 0);
    if (rc !== 0) throw new RDMAError(`ibv_req_notify_cq on ${this.context.name} failed: ${errnoText(rc)}`);
  }

  /**
   * The readiness-callback step before polling: read the channel's events, then re-arm. Completions that
   * arrive after this are either seen by the poll that follows or raise a new event, so nothing is lost.
   */
  consumeEvents(): number {
    const n = this.channel ? this.channel.readEvents() : 0;
    this.requestNotify();
    return n;
  }

  /** @internal */
  eventReceived(): void {
    if (++this.#unacked >= this.#ackBatch) this.#ack();
  }

  #ack(): void {
    if (this.#unacked === 0) return;
    ibv().ack_cq_events(this.ptr, this.#unacked);
    this.#unacked = 0;
  }

  /** Acks outstanding events (ibv_destroy_cq would wait for them forever), then destroys the CQ. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#ack();
    const rc = ibv().destroy_cq(this.ptr) as number;
    if (rc !== 0) failed('ibv_destroy_cq', this.context.name, rc > 0 ? rc : lastErrno());
    this.#destroyed = true;
    this.channel?.detach(this);
  }
}

export interface QpCreateOptions {
  sendCq: CompletionQueue;
  recvCq?: CompletionQueue;
  type?: QpTypes;
  maxSendWr: number;
  maxRecvWr: number;
  maxSendSge?: number;
  maxRecvSge?: number;
  maxInlineData?: number;
  /** Signal every send WR (default false: only WRs with SendFlags.SIGNALED complete visibly). */
  sqSigAll?: boolean;
}

export interface QpCaps {
  maxSendWr: number;
  maxRecvWr: number;
  maxSendSge: number;
  maxRecvSge: number;
  maxInlineData: number;
}

export interface QpInitAttr {
  portNum: number;
  pkeyIndex?: number;
  /** `Access` bits for remote peers; default REMOTE_WRITE | REMOTE_READ (3FS). */
  access?: number;
}

export interface QpRtrAttr {
  /** `Mtu` enum value (1..5). */
  pathMtu: number;
  destQpNum: number;
  rqPsn: number;
  maxDestRdAtomic: number;
  minRnrTimer: number;
  /** Port number put in the address vector. */
  portNum: number;
  sl?: number;
  /** IB: the peer's LID (is_global = 0). */
  dlid?: number;
  /** RoCE: the peer's GID makes the address global (is_global = 1). */
  dgid?: Uint8Array;
  sgidIndex?: number;
  hopLimit?: number;
  trafficClass?: number;
}

export interface QpRtsAttr {
  sqPsn: number;
  timeout: number;
  retryCnt: number;
  rnrRetry: number;
  maxRdAtomic: number;
}

/** A queue pair. Posting goes through the provider's ops directly (see SendWorkRequests/RecvWorkRequests). */
export class QueuePair {
  readonly pd: ProtectionDomain;
  readonly ptr: bigint;
  readonly qpNum: number;
  readonly sendCq: CompletionQueue;
  readonly recvCq: CompletionQueue;
  /** Capabilities actually granted by the provider. */
  readonly caps: QpCaps;
  /** @internal */ readonly postSendFn: VerbsOps['postSend'];
  /** @internal */ readonly postRecvFn: VerbsOps['postRecv'];
  readonly #attr = allocScratch(S.ibv_qp_attr.size + S.ibv_qp_init_attr.size);
  #destroyed = false;

  private constructor(pd: ProtectionDomain, ptr: bigint, sendCq: CompletionQueue, recvCq: CompletionQueue, caps: QpCaps) {
    this.pd = pd;
    this.ptr = ptr;
    this.qpNum = koffi().decode(ptr, S.ibv_qp.qp_num, 'uint32_t') as number;
    this.sendCq = sendCq;
    this.recvCq = recvCq;
    this.caps = caps;
    this.postSendFn = pd.context.ops.postSend;
    this.postRecvFn = pd.context.ops.postRecv;
  }

  /** @internal */
  static create(pd: ProtectionDomain, o: QpCreateOptions): QueuePair {
    const scratch = allocScratch(S.ibv_qp_init_attr.size);
    try {
      return QueuePair.#create(pd, o, scratch);
    } finally {
      scratch.free();
    }
  }

  static #create(pd: ProtectionDomain, o: QpCreateOptions, { ptr, view: dv }: Scratch): QueuePair {
    const I = S.ibv_qp_init_attr;
    const recvCq = o.recvCq ?? o.sendCq;
    dv.setBigUint64(I.send_cq, o.sendCq.ptr, true);
    dv.setBigUint64(I.recv_cq, recvCq.ptr, true);
    dv.setUint32(I['cap.max_send_wr'], o.maxSendWr, true);
    dv.setUint32(I['cap.max_recv_wr'], o.maxRecvWr, true);
    dv.setUint32(I['cap.max_send_sge'], o.maxSendSge ?? 1, true);
    dv.setUint32(I['cap.max_recv_sge'], o.maxRecvSge ?? 1, true);
    dv.setUint32(I['cap.max_inline_data'], o.maxInlineData ?? 0, true);
    dv.setInt32(I.qp_type, o.type ?? QpTypes.RC, true);
    dv.setInt32(I.sq_sig_all, o.sqSigAll ? 1 : 0, true);
    const qp = ibv().create_qp(pd.ptr, ptr) as bigint | null;
    if (qp === null) failed(`ibv_create_qp(send ${o.maxSendWr}, recv ${o.maxRecvWr})`, pd.context.name);
    // ibv_create_qp writes the granted capabilities back into init_attr.cap.
    const caps: QpCaps = {
      maxSendWr: dv.getUint32(I['cap.max_send_wr'], true),
      maxRecvWr: dv.getUint32(I['cap.max_recv_wr'], true),
      maxSendSge: dv.getUint32(I['cap.max_send_sge'], true),
      maxRecvSge: dv.getUint32(I['cap.max_recv_sge'], true),
      maxInlineData: dv.getUint32(I['cap.max_inline_data'], true),
    };
    return new QueuePair(pd, qp, o.sendCq, recvCq, caps);
  }

  get context(): VerbsContext {
    return this.pd.context;
  }

  /** RESET → INIT. */
  modifyToInit(a: QpInitAttr): void {
    const A = S.ibv_qp_attr;
    const dv = this.#begin(QpState.INIT);
    dv.setUint16(A.pkey_index, a.pkeyIndex ?? 0, true);
    dv.setUint8(A.port_num, a.portNum);
    dv.setUint32(A.qp_access_flags, a.access ?? Access.REMOTE_WRITE | Access.REMOTE_READ, true);
    this.#modify(QpAttrMask.STATE | QpAttrMask.PKEY_INDEX | QpAttrMask.PORT | QpAttrMask.ACCESS_FLAGS, 'INIT');
  }

  /** INIT → RTR. With `dgid` the address vector is global (RoCE); otherwise `dlid` addresses an IB peer. */
  modifyToRtr(a: QpRtrAttr): void {
    const A = S.ibv_qp_attr;
    const dv = this.#begin(QpState.RTR);
    dv.setInt32(A.path_mtu, a.pathMtu, true);
    dv.setUint32(A.dest_qp_num, a.destQpNum, true);
    dv.setUint32(A.rq_psn, a.rqPsn, true);
    dv.setUint8(A.max_dest_rd_atomic, a.maxDestRdAtomic);
    dv.setUint8(A.min_rnr_timer, a.minRnrTimer);
    dv.setUint8(A['ah_attr.sl'], a.sl ?? 0);
    dv.setUint8(A['ah_attr.port_num'], a.portNum);
    if (a.dgid) {
      if (a.dgid.length !== 16) throw new IBInitFailedError(`dgid must be 16 bytes, got ${a.dgid.length}`);
      dv.setUint8(A['ah_attr.is_global'], 1);
      this.#attr.bytes.set(a.dgid, A['ah_attr.grh.dgid']);
      dv.setUint8(A['ah_attr.grh.sgid_index'], a.sgidIndex ?? 0);
      dv.setUint8(A['ah_attr.grh.hop_limit'], a.hopLimit ?? 255);
      dv.setUint8(A['ah_attr.grh.traffic_class'], a.trafficClass ?? 0);
    } else {
      dv.setUint16(A['ah_attr.dlid'], a.dlid ?? 0, true);
    }
    this.#modify(
      QpAttrMask.STATE |
        QpAttrMask.AV |
        QpAttrMask.PATH_MTU |
        QpAttrMask.DEST_QPN |
        QpAttrMask.RQ_PSN |
        QpAttrMask.MAX_DEST_RD_ATOMIC |
        QpAttrMask.MIN_RNR_TIMER,
      'RTR',
    );
  }

  /** RTR → RTS. */
  modifyToRts(a: QpRtsAttr): void {
    const A = S.ibv_qp_attr;
    const dv = this.#begin(QpState.RTS);
    dv.setUint32(A.sq_psn, a.sqPsn, true);
    dv.setUint8(A.timeout, a.timeout);
    dv.setUint8(A.retry_cnt, a.retryCnt);
    dv.setUint8(A.rnr_retry, a.rnrRetry);
    dv.setUint8(A.max_rd_atomic, a.maxRdAtomic);
    this.#modify(QpAttrMask.STATE | QpAttrMask.SQ_PSN | QpAttrMask.TIMEOUT | QpAttrMask.RETRY_CNT | QpAttrMask.RNR_RETRY | QpAttrMask.MAX_QP_RD_ATOMIC, 'RTS');
  }

  /** Any state → ERR: outstanding WRs complete with WR_FLUSH_ERR. */
  modifyToError(): void {
    this.#begin(QpState.ERR);
    this.#modify(QpAttrMask.STATE, 'ERR');
  }

  modifyToReset(): void {
    this.#begin(QpState.RESET);
    this.#modify(QpAttrMask.STATE, 'RESET');
  }

  queryState(): QpState {
    const { ptr, view: dv, bytes } = this.#attr;
    bytes.fill(0);
    const rc = ibv().query_qp(this.ptr, ptr, QpAttrMask.STATE, ptr + BigInt(S.ibv_qp_attr.size)) as number;
    if (rc !== 0) failed('ibv_query_qp', this.context.name, rc);
    return dv.getInt32(S.ibv_qp_attr.qp_state, true) as QpState;
  }

  destroy(): void {
    if (this.#destroyed) return;
    const rc = ibv().destroy_qp(this.ptr) as number;
    if (rc !== 0) failed('ibv_destroy_qp', this.context.name, rc > 0 ? rc : lastErrno());
    this.#destroyed = true;
    this.#attr.free();
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  #begin(state: QpState): DataView {
    this.#attr.bytes.fill(0);
    this.#attr.view.setInt32(S.ibv_qp_attr.qp_state, state, true);
    return this.#attr.view;
  }

  #modify(mask: number, to: string): void {
    const rc = ibv().modify_qp(this.ptr, this.#attr.ptr, mask) as number;
    if (rc !== 0) {
      throw new IBInitFailedError(`ibv_modify_qp(qp ${this.qpNum} → ${to}) on ${this.context.name} failed: ${errnoText(rc)}`);
    }
  }
}

/** Port state names for display (`PORT_ACTIVE` …). */
export function portStateName(state: number): string {
  return enumName(PortState, state);
}
