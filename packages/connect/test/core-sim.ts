/**
 * A host-only simulation of two IBSocketCores joined by one RC queue pair: each side's work requests go onto an
 * in-order wire, a transmitted SEND lands in the peer's oldest posted receive buffer (reading the sender's buffer
 * at that moment, so reusing a send buffer too early corrupts the data), and completions wait in per-side queues
 * until the test delivers them, in whatever order it chooses. It enforces what the hardware would: no SEND without
 * a posted receive (RNR), no receive buffer posted twice, and scribbles over a receive buffer when it is re-posted.
 */
import { type FfnetError, RDMAError } from '@ffnet/serde';
import { type IBSocketConfig, ibSocketSizes, resolveIBSocketConfig } from '../src/config.js';
import { type CompletionError, type CoreTimer, type IBCoreOutput, IBSocketCore, type RdmaWork } from '../src/socket-core.js';
import { WrType, wrId, wrIdType } from '../src/wire.js';

export interface Wr {
  kind: 'send' | 'imm' | 'writeImm';
  id: number;
  idx: number;
  len: number;
  imm: number;
  signaled: boolean;
}

export interface Cqe {
  id: number;
  len: number;
  imm: number;
}

export interface Work extends RdmaWork {
  readonly tag: string;
}

export class SimViolation extends Error {}

export class Side implements IBCoreOutput<Work> {
  readonly core: IBSocketCore<Work>;
  readonly mem: Buffer;
  readonly name: string;
  peer!: Side;
  /** Work requests added but not yet posted. */
  chain: Wr[] = [];
  /** Every posted send-queue work request, in post order (for assertions). */
  readonly posted: Wr[] = [];
  /** Posted and not yet transmitted, in order. */
  readonly wire: Wr[] = [];
  recvChain: number[] = [];
  readonly postedRecv: number[] = [];
  /** Per receive buffer: 0 not posted, 1 posted, 2 holds a completed receive. */
  readonly recvState: Uint8Array;
  readonly reposts: number[] = [];
  readonly sendCq: Cqe[] = [];
  readonly recvCq: Cqe[] = [];
  readonly timers = new Map<CoreTimer, number>();
  readonly chunks: Buffer[] = [];
  readonly settled: { work: Work; err: FfnetError | null }[] = [];
  readonly rdmaPosted: Work[] = [];
  writes = 0;
  drains = 0;
  readies = 0;
  finishes = 0;
  rtsMoves = 0;
  checks = 0;
  failNextPost: Error | null = null;

  /** `name` is this side; its core names the other end `peer of <name>` in errors. */
  constructor(name: string, config: Partial<IBSocketConfig>) {
    const c = resolveIBSocketConfig(config);
    const sizes = ibSocketSizes(c);
    this.name = name;
    this.mem = Buffer.alloc(sizes.bufferBytes);
    this.recvState = new Uint8Array(sizes.maxRecvWr);
    this.core = new IBSocketCore<Work>(c, sizes, this, `peer of ${name}`);
  }

  get config(): IBSocketConfig {
    return this.core.config;
  }

  received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  // ── IBCoreOutput ──
  sendBuf(id: number, idx: number, len: number, signaled: boolean): void {
    this.chain.push({ kind: 'send', id, idx, len, imm: -1, signaled });
  }
  sendImm(id: number, imm: number): void {
    this.chain.push({ kind: 'imm', id, idx: -1, len: 0, imm, signaled: true });
  }
  writeImm(id: number, imm: number): void {
    this.chain.push({ kind: 'writeImm', id, idx: -1, len: 0, imm, signaled: true });
  }
  postSends(): void {
    if (this.failNextPost) {
      const e = this.failNextPost;
      this.failNextPost = null;
      this.chain = [];
      throw e;
    }
    for (const wr of this.chain) {
      this.posted.push(wr);
      this.wire.push(wr);
    }
    this.chain = [];
  }
  recv(id: number, idx: number): void {
    if (wrIdType(id) !== WrType.RECV || id !== wrId(WrType.RECV, idx)) throw new SimViolation(`${this.name}: bad RECV wr_id ${id} for buffer ${idx}`);
    if (this.recvState[idx] === 1) throw new SimViolation(`${this.name}: receive buffer ${idx} posted twice`);
    this.recvChain.push(idx);
  }
  postRecvs(): void {
    const size = this.config.bufSize;
    const base = this.config.sendBufCnt;
    for (const idx of this.recvChain) {
      // The device owns the buffer again: whatever was there may be overwritten at any time.
      this.mem.fill(0xee, (base + idx) * size, (base + idx + 1) * size);
      this.recvState[idx] = 1;
      this.postedRecv.push(idx);
      this.reposts.push(idx);
    }
    this.recvChain = [];
  }
  postRdma(work: Work): void {
    if (this.failNextPost) {
      const e = this.failNextPost;
      this.failNextPost = null;
      throw e;
    }
    this.rdmaPosted.push(work);
  }
  moveToRts(): void {
    this.rtsMoves++;
  }
  setTimer(kind: CoreTimer, ms: number): void {
    this.timers.set(kind, ms);
  }
  clearTimer(kind: CoreTimer): void {
    this.timers.delete(kind);
  }
  ready(): void {
    this.readies++;
  }
  finished(): void {
    this.finishes++;
  }
  data(chunk: Buffer): void {
    this.chunks.push(chunk);
  }
  written(n: number): void {
    this.writes += n;
  }
  drain(): void {
    this.drains++;
  }
  rdmaSettled(work: Work, err: FfnetError | null): void {
    this.settled.push({ work, err });
  }
  checked(): void {
    this.checks++;
  }

  // ── the simulated hardware ──

  /** Puts the oldest posted send-queue request on the wire: into the peer's oldest posted receive. */
  transmit(): Wr {
    const wr = this.wire.shift();
    if (!wr) throw new SimViolation(`${this.name}: nothing to transmit`);
    const peer = this.peer;
    const ridx = peer.postedRecv.shift();
    if (ridx === undefined) throw new SimViolation(`${this.name} → ${peer.name}: RNR, the peer has no receive posted`);
    peer.recvState[ridx] = 2;
    if (wr.kind === 'send') {
      const size = this.config.bufSize;
      if (wr.len > size) throw new SimViolation(`${this.name}: SEND of ${wr.len} bytes from a ${size}-byte buffer`);
      this.mem.copy(peer.mem, (peer.config.sendBufCnt + ridx) * size, wr.idx * size, wr.idx * size + wr.len);
      peer.recvCq.push({ id: wrId(WrType.RECV, ridx), len: wr.len, imm: -1 });
    } else {
      peer.recvCq.push({ id: wrId(WrType.RECV, ridx), len: 0, imm: wr.imm });
    }
    if (wr.signaled) this.sendCq.push({ id: wr.id, len: 0, imm: -1 });
    return wr;
  }

  transmitAll(): void {
    while (this.wire.length > 0) this.transmit();
  }

  /** Delivers the receive completions in order (as RC does) and the send completions in the given order. */
  deliverRecv(): boolean {
    const c = this.recvCq.shift();
    if (!c) return false;
    this.core.completed(c.id, c.len, c.imm);
    return true;
  }

  deliverSend(at = 0): boolean {
    const [c] = this.sendCq.splice(at, 1);
    if (!c) return false;
    this.core.completed(c.id, c.len, c.imm);
    return true;
  }

  /** One poll round: every completion queued so far, then progress(). */
  poll(): void {
    while (this.deliverRecv() || this.deliverSend()) {}
    this.core.progress();
  }

  fireTimer(kind: CoreTimer): void {
    if (!this.timers.has(kind)) throw new SimViolation(`${this.name}: timer ${kind} is not armed`);
    this.timers.delete(kind);
    this.core.timerFired(kind);
  }
}

/** A completion error shaped like the verbs layer's WcError. */
/** Client `a` and server `b`, connected the way the shells do it: attach, accept, RTS, probe. */
export function connectedPair(config: Partial<IBSocketConfig>): { a: Side; b: Side } {
  const a = new Side('a', config);
  const b = new Side('b', config);
  a.peer = b;
  b.peer = a;
  a.core.attach(a.mem);
  b.core.attach(b.mem);
  b.core.accepted(15_000);
  a.core.connecting();
  a.core.rts();
  a.core.probe();
  a.transmit();
  b.poll();
  a.poll();
  return { a, b };
}

/** Transmits and polls on both sides until nothing moves; throws if it never settles. */
export function settle(a: Side, b: Side, maxRounds = 10_000): void {
  // At least one round: a resumed reader has data to consume even when nothing is in flight.
  for (let i = 0; i < maxRounds; i++) {
    a.transmitAll();
    b.transmitAll();
    a.poll();
    b.poll();
    const busy = a.wire.length + b.wire.length + a.sendCq.length + a.recvCq.length + b.sendCq.length + b.recvCq.length;
    if (busy === 0) return;
  }
  throw new SimViolation(`no quiescence after ${maxRounds} rounds`);
}

export function wcError(statusName: string, peer: string): CompletionError {
  return Object.assign(new RDMAError(`work completion error ${statusName}`, { peer }), { statusName });
}
