/**
 * The data path. Work requests, their scatter/gather lists and completions live in preallocated native
 * memory and are written/read through one DataView each; building and posting a batch allocates nothing
 * and makes exactly one FFI call (the provider's post_send/post_recv/poll_cq from the ops table).
 *
 * wr_id is a JS number (a safe integer, < 2^53), stored as two 32-bit halves so no BigInt is created.
 */
import { type FfnetErrorOptions, InvalidArgError, RDMAError, RDMAPostFailedError } from '@ffnet/common';
import { enumName, S, SendFlags, WcFlags, WcOpcode, WcStatus, WrOpcode } from './layout.js';
import { allocScratch, errnoText, type Scratch } from './native.js';
import type { QueuePair } from './verbs.js';

const TWO32 = 4294967296;
const W = S.ibv_send_wr;
const R = S.ibv_recv_wr;
const G = S.ibv_sge;
const C = S.ibv_wc;

function setWrId(dv: DataView, off: number, id: number): void {
  dv.setUint32(off, id >>> 0, true);
  dv.setUint32(off + 4, (id / TWO32) >>> 0, true);
}

/** Thrown by post: which WR the provider rejected (`badIndex`); the WRs before it were posted. */
export type PostFailure = RDMAPostFailedError & { readonly errno: number; readonly badIndex: number; readonly posted: number };

abstract class WorkRequests {
  readonly capacity: number;
  readonly maxSge: number;
  protected readonly mem: Scratch;
  protected readonly dv: DataView;
  protected readonly wrPtr: bigint[] = [];
  protected readonly sgePtr: bigint[] = [];
  protected readonly sgeBase: number;
  protected readonly badOff: number;
  /** Address of the `bad_wr` out-parameter slot (precomputed: no BigInt is made per post). */
  protected readonly badPtr: bigint;
  protected n = 0;
  #freed = false;

  protected constructor(capacity: number, maxSge: number, wrSize: number) {
    if (!(capacity >= 1) || !(maxSge >= 1)) throw new InvalidArgError('capacity and maxSge must be ≥ 1');
    this.capacity = capacity;
    this.maxSge = maxSge;
    this.sgeBase = capacity * wrSize;
    this.badOff = this.sgeBase + capacity * maxSge * G.size;
    this.mem = allocScratch(this.badOff + 8);
    this.badPtr = this.mem.ptr + BigInt(this.badOff);
    this.dv = this.mem.view;
    for (let i = 0; i < capacity; i++) {
      this.wrPtr.push(this.mem.ptr + BigInt(i * wrSize));
      this.sgePtr.push(this.mem.ptr + BigInt(this.sgeBase + i * maxSge * G.size));
    }
  }

  /** Number of WRs in the batch. */
  get count(): number {
    return this.n;
  }

  /** Empties the batch (the memory is reused). */
  clear(): void {
    this.n = 0;
  }

  /**
   * Adds a scatter/gather entry to the last WR. `addr` is a native address (RDMABuf.address); `lkey` the
   * local key of the MR covering it.
   */
  sge(addr: bigint, length: number, lkey: number): this {
    const i = this.n - 1;
    if (i < 0) throw new InvalidArgError('sge() before any work request');
    const o = this.numSgeOffset(i);
    const k = this.dv.getInt32(o, true);
    if (k >= this.maxSge) throw new InvalidArgError(`work request ${i} already has ${k} SGEs (max ${this.maxSge})`);
    const s = this.sgeBase + (i * this.maxSge + k) * G.size;
    this.dv.setBigUint64(s + G.addr, addr, true);
    this.dv.setUint32(s + G.length, length, true);
    this.dv.setUint32(s + G.lkey, lkey, true);
    this.dv.setInt32(o, k + 1, true);
    return this;
  }

  /** Frees the native memory; the object is unusable afterwards. */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.mem.free();
  }

  protected abstract numSgeOffset(i: number): number;

  protected fail(what: string, qp: QueuePair, rc: number, wrSize: number): never {
    const bad = this.dv.getBigUint64(this.badOff, true);
    const idx = bad === 0n ? 0 : Number(bad - this.mem.ptr) / wrSize;
    const err = new RDMAPostFailedError(`${what} on qp ${qp.qpNum} (${qp.context.name}) failed: ${errnoText(rc)} at work request ${idx} of ${this.n}`);
    throw Object.assign(err, { errno: rc, badIndex: idx, posted: idx });
  }

  /** Starts WR `i`, zeroed and linked after WR `i-1`. */
  protected begin(wrSize: number): number {
    const i = this.n;
    if (i >= this.capacity) throw new InvalidArgError(`work request batch is full (${this.capacity})`);
    const o = i * wrSize;
    this.mem.bytes.fill(0, o, o + wrSize);
    // next (offset 8) and sg_list (16) are at the same place in send and recv WRs.
    this.dv.setBigUint64(o + W.sg_list, this.sgePtr[i]!, true);
    if (i > 0) this.dv.setBigUint64((i - 1) * wrSize + W.next, this.wrPtr[i]!, true);
    this.n = i + 1;
    return o;
  }
}

/**
 * A reusable batch of send work requests, posted as one linked chain with a single `post_send`.
 *
 *   wrs.clear();
 *   wrs.write(id, remote.addr, rkey, SendFlags.SIGNALED).sge(local.address, local.length, lkey);
 *   wrs.post(qp);
 */
export class SendWorkRequests extends WorkRequests {
  constructor(capacity = 1, maxSge = 1) {
    super(capacity, maxSge, W.size);
  }

  /** Appends a WR with `opcode` (WrOpcode) and `flags` (SendFlags); chain `.sge()`, `.imm()`, `.rdma()`. */
  add(opcode: WrOpcode, wrId: number, flags = 0): this {
    const o = this.begin(W.size);
    setWrId(this.dv, o + W.wr_id, wrId);
    this.dv.setInt32(o + W.opcode, opcode, true);
    this.dv.setUint32(o + W.send_flags, flags, true);
    return this;
  }

  /** Immediate data of the last WR (host order; written big-endian as `__be32`). */
  imm(value: number): this {
    this.dv.setUint32((this.n - 1) * W.size + W.imm_data, value >>> 0, false);
    return this;
  }

  /** Remote address and rkey of the last WR (RDMA WRITE/READ). */
  rdma(remoteAddr: bigint, rkey: number): this {
    const o = (this.n - 1) * W.size;
    this.dv.setBigUint64(o + W['wr.rdma.remote_addr'], remoteAddr, true);
    this.dv.setUint32(o + W['wr.rdma.rkey'], rkey, true);
    return this;
  }

  /**
   * BIND_MW of a type-2 window: binds `mw` to [addr, addr+length) of `mr` with `access` (REMOTE_READ/REMOTE_WRITE)
   * under the new rkey `rkey` (mw.nextRkey()). Once the post returns, call mw.rebound(rkey). The window is then
   * usable by the peer of this QP only, from the moment the bind executes (before any later WR on the queue).
   */
  bindMw(wrId: number, mw: bigint, rkey: number, mr: bigint, addr: bigint, length: number, access: number, flags = 0): this {
    this.add(WrOpcode.BIND_MW, wrId, flags);
    const o = (this.n - 1) * W.size;
    const dv = this.dv;
    dv.setBigUint64(o + W['bind_mw.mw'], mw, true);
    dv.setUint32(o + W['bind_mw.rkey'], rkey >>> 0, true);
    dv.setBigUint64(o + W['bind_mw.bind_info.mr'], mr, true);
    dv.setBigUint64(o + W['bind_mw.bind_info.addr'], addr, true);
    dv.setBigUint64(o + W['bind_mw.bind_info.length'], BigInt(length), true);
    dv.setUint32(o + W['bind_mw.bind_info.mw_access_flags'], access >>> 0, true);
    return this;
  }

  /** LOCAL_INV: invalidates the window (or MR) known by `rkey`; remote accesses with it fail from then on. */
  localInv(wrId: number, rkey: number, flags: number = SendFlags.SIGNALED): this {
    this.add(WrOpcode.LOCAL_INV, wrId, flags);
    this.dv.setUint32((this.n - 1) * W.size + W.invalidate_rkey, rkey >>> 0, true);
    return this;
  }

  send(wrId: number, flags: number = SendFlags.SIGNALED): this {
    return this.add(WrOpcode.SEND, wrId, flags);
  }

  sendWithImm(wrId: number, imm: number, flags: number = SendFlags.SIGNALED): this {
    return this.add(WrOpcode.SEND_WITH_IMM, wrId, flags).imm(imm);
  }

  write(wrId: number, remoteAddr: bigint, rkey: number, flags: number = SendFlags.SIGNALED): this {
    return this.add(WrOpcode.RDMA_WRITE, wrId, flags).rdma(remoteAddr, rkey);
  }

  writeWithImm(wrId: number, remoteAddr: bigint, rkey: number, imm: number, flags: number = SendFlags.SIGNALED): this {
    return this.add(WrOpcode.RDMA_WRITE_WITH_IMM, wrId, flags).rdma(remoteAddr, rkey).imm(imm);
  }

  read(wrId: number, remoteAddr: bigint, rkey: number, flags: number = SendFlags.SIGNALED): this {
    return this.add(WrOpcode.RDMA_READ, wrId, flags).rdma(remoteAddr, rkey);
  }

  /**
   * Posts the whole batch with one `ibv_post_send` and clears it. On failure throws RDMAPostFailedError with
   * `badIndex`: WRs before it were posted, the rest were not (the batch is cleared either way).
   */
  post(qp: QueuePair): void {
    if (this.n === 0) return;
    this.dv.setBigUint64(this.badOff, 0n, true);
    const rc = qp.postSendFn(qp.ptr, this.mem.ptr, this.badPtr);
    if (rc !== 0) {
      try {
        this.fail('ibv_post_send', qp, rc, W.size);
      } finally {
        this.n = 0;
      }
    }
    this.n = 0;
  }

  protected numSgeOffset(i: number): number {
    return i * W.size + W.num_sge;
  }
}

/** A reusable batch of receive work requests, posted with a single `post_recv`. */
export class RecvWorkRequests extends WorkRequests {
  constructor(capacity = 1, maxSge = 1) {
    super(capacity, maxSge, R.size);
  }

  add(wrId: number): this {
    const o = this.begin(R.size);
    setWrId(this.dv, o + R.wr_id, wrId);
    return this;
  }

  post(qp: QueuePair): void {
    if (this.n === 0) return;
    this.dv.setBigUint64(this.badOff, 0n, true);
    const rc = qp.postRecvFn(qp.ptr, this.mem.ptr, this.badPtr);
    if (rc !== 0) {
      try {
        this.fail('ibv_post_recv', qp, rc, R.size);
      } finally {
        this.n = 0;
      }
    }
    this.n = 0;
  }

  protected numSgeOffset(i: number): number {
    return i * R.size + R.num_sge;
  }
}

/** An RDMAError for a failed completion, with the status name in the message and as data. */
export type WcError = RDMAError & {
  readonly status: WcStatus;
  readonly statusName: string;
  readonly wrId: number;
  readonly vendorErr: number;
};

/** Builds the typed error for a completion with `status` ≠ SUCCESS. */
export function wcError(status: number, wrId: number, vendorErr: number, context: string, options?: FfnetErrorOptions): WcError {
  const statusName = enumName(WcStatus, status);
  const err = new RDMAError(
    `work completion error ${statusName} (status ${status}, vendor_err 0x${vendorErr.toString(16)}, wr_id ${wrId}) ${context}`,
    options,
  );
  return Object.assign(err, { status: status as WcStatus, statusName, wrId, vendorErr });
}

/** Preallocated `struct ibv_wc[capacity]`, filled by CompletionQueue.poll and read through accessors. */
export class WcArray {
  readonly capacity: number;
  readonly #mem: Scratch;
  readonly #dv: DataView;

  constructor(capacity = 16) {
    if (!(capacity >= 1)) throw new InvalidArgError('capacity must be ≥ 1');
    this.capacity = capacity;
    this.#mem = allocScratch(capacity * C.size);
    this.#dv = this.#mem.view;
  }

  get ptr(): bigint {
    return this.#mem.ptr;
  }

  wrId(i: number): number {
    const o = i * C.size + C.wr_id;
    return this.#dv.getUint32(o, true) + this.#dv.getUint32(o + 4, true) * TWO32;
  }

  status(i: number): WcStatus {
    return this.#dv.getInt32(i * C.size + C.status, true) as WcStatus;
  }

  opcode(i: number): WcOpcode {
    return this.#dv.getInt32(i * C.size + C.opcode, true) as WcOpcode;
  }

  /** Receive completions (RECV, RECV_RDMA_WITH_IMM) have bit 0x80 in the opcode. */
  isRecv(i: number): boolean {
    return (this.#dv.getInt32(i * C.size + C.opcode, true) & WcOpcode.RECV) !== 0;
  }

  byteLen(i: number): number {
    return this.#dv.getUint32(i * C.size + C.byte_len, true);
  }

  flags(i: number): number {
    return this.#dv.getUint32(i * C.size + C.wc_flags, true);
  }

  hasImm(i: number): boolean {
    return (this.flags(i) & WcFlags.WITH_IMM) !== 0;
  }

  /** Immediate data in host order (valid when hasImm). */
  imm(i: number): number {
    return this.#dv.getUint32(i * C.size + C.imm_data, false);
  }

  qpNum(i: number): number {
    return this.#dv.getUint32(i * C.size + C.qp_num, true);
  }

  vendorErr(i: number): number {
    return this.#dv.getUint32(i * C.size + C.vendor_err, true);
  }

  /** The typed error for entry `i` (call only when `status(i) !== WcStatus.SUCCESS`). */
  error(i: number, options?: FfnetErrorOptions): WcError {
    return wcError(this.status(i), this.wrId(i), this.vendorErr(i), `on qp ${this.qpNum(i)}`, options);
  }

  free(): void {
    this.#mem.free();
  }
}
