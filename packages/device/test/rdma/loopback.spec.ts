import { randomBytes } from 'node:crypto';
import { FfnetError, StatusCode } from '@ffnet/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Access,
  type CompletionChannel,
  CompletionPoller,
  type CompletionQueue,
  type IBDevice,
  IBManager,
  type IBPortInfo,
  QpState,
  type QueuePair,
  RDMABUF_DEVICE_SCOPE_ACCESS,
  RDMABuf,
  RecvWorkRequests,
  SendWorkRequests,
  type WcArray,
  type WcError,
  WcOpcode,
  WcStatus,
} from '../../src/index.js';
import { requireVerbsDevice } from './require-device.js';

// A raw verbs loopback built only from @ffnet/device: one CQ on one completion channel, two RC QPs on rxe0
// connected to each other, completions delivered by the channel fd through @ffnet/event's watcher.

interface Completion {
  wrId: number;
  status: number;
  opcode: number;
  byteLen: number;
  imm: number | null;
  qpNum: number;
  error: WcError | null;
  /** poller.events when it was delivered: higher than before the post means a channel event woke us. */
  events: number;
}

let dev: IBDevice;
let port: IBPortInfo;
let channel: CompletionChannel;
let cq: CompletionQueue;
let a: QueuePair;
let b: QueuePair;
let poller: CompletionPoller;
const waiting = new Map<number, (c: Completion) => void>();
const early = new Map<number, Completion>();

function onCompletions(wcs: WcArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const c: Completion = {
      wrId: wcs.wrId(i),
      status: wcs.status(i),
      opcode: wcs.opcode(i),
      byteLen: wcs.byteLen(i),
      imm: wcs.hasImm(i) ? wcs.imm(i) : null,
      qpNum: wcs.qpNum(i),
      error: wcs.status(i) === WcStatus.SUCCESS ? null : wcs.error(i),
      events: poller.events,
    };
    const w = waiting.get(c.wrId);
    if (w) {
      waiting.delete(c.wrId);
      w(c);
    } else early.set(c.wrId, c);
  }
}

function completion(wrId: number, timeoutMs = 60_000): Promise<Completion> {
  const c = early.get(wrId);
  if (c) {
    early.delete(wrId);
    return Promise.resolve(c);
  }
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no completion for wr ${wrId} within ${timeoutMs} ms`)), timeoutMs);
    waiting.set(wrId, (x) => {
      clearTimeout(t);
      resolve(x);
    });
  });
}

function connect(local: QueuePair, remote: QueuePair): void {
  local.modifyToRtr({
    pathMtu: port.attr.activeMtu,
    destQpNum: remote.qpNum,
    rqPsn: 0,
    maxDestRdAtomic: 4,
    minRnrTimer: 12,
    portNum: port.portNum,
    dgid: port.gid!.gid,
    sgidIndex: port.gid!.index,
  });
  expect(local.queryState()).toBe(QpState.RTR);
  local.modifyToRts({ sqPsn: 0, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 4 });
  expect(local.queryState()).toBe(QpState.RTS);
}

beforeAll(() => {
  requireVerbsDevice();
  dev = IBManager.start({ deviceFilter: ['rxe0'], portRefreshMs: 0 })[0]!;
  port = dev.openPort();
  channel = dev.context.createCompChannel();
  cq = dev.context.createCq({ cqe: 128, channel });
  const make = () => dev.pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 32, maxRecvWr: 32, maxSendSge: 2, maxRecvSge: 1 });
  a = make();
  b = make();
  for (const qp of [a, b]) {
    expect(qp.queryState()).toBe(QpState.RESET);
    qp.modifyToInit({ portNum: port.portNum, access: Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ });
    expect(qp.queryState()).toBe(QpState.INIT);
  }
  connect(a, b);
  connect(b, a);
  // The CQ is polled only from the poller's fd-watcher callback: nothing in this file calls poll or drain.
  poller = new CompletionPoller(cq, (wcs, n) => onCompletions(wcs, n), { ref: false });
});

afterAll(() => {
  poller?.close();
  a?.destroy();
  b?.destroy();
  cq?.destroy();
  channel?.destroy();
  IBManager.stop();
});

describe('raw verbs loopback on rxe0', () => {
  it('created a CQ with a channel and two RC QPs in RTS', () => {
    expect(cq.cqe).toBeGreaterThanOrEqual(128);
    expect(channel.fd).toBeGreaterThan(2);
    expect(a.qpNum).not.toBe(b.qpNum);
    expect(a.caps.maxSendWr).toBeGreaterThanOrEqual(32);
  });

  it('SEND / RECV with immediate data', async () => {
    const src = RDMABuf.allocate(4096);
    const dst = RDMABuf.allocate(4096);
    const msg = Buffer.from('hello over rxe0 from @ffnet/device');
    msg.copy(src.buffer);
    const recv = new RecvWorkRequests(1, 1);
    recv.add(1001).sge(dst.address, dst.length, dst.lkey(dev.id)!);
    recv.post(b);
    const send = new SendWorkRequests(1, 1);
    send.sendWithImm(1002, 0xdeadbeef).sge(src.address, msg.length, src.lkey(dev.id)!);
    const ev0 = poller.events;
    send.post(a);
    const [s, r] = await Promise.all([completion(1002), completion(1001)]);
    expect(s).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.SEND, qpNum: a.qpNum });
    expect(s.events).toBeGreaterThan(ev0);
    expect(r).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: msg.length, imm: 0xdeadbeef, qpNum: b.qpNum });
    expect(r.events).toBeGreaterThan(ev0);
    expect(dst.buffer.subarray(0, msg.length).equals(msg)).toBe(true);
    send.free();
    recv.free();
    src.release();
    dst.release();
  });

  it('RDMA WRITE and READ of 1 MiB, contents checked', async () => {
    const MiB = 1 << 20;
    const local = RDMABuf.allocate(MiB);
    // Remote rights on the MR itself: this test is about the raw verbs path, not memory windows.
    const remote = RDMABuf.allocate(MiB, { access: RDMABUF_DEVICE_SCOPE_ACCESS });
    const back = RDMABuf.allocate(MiB);
    randomBytes(MiB).copy(local.buffer);
    remote.buffer.fill(0);
    const rb = remote.toRemoteBuf();
    const wrs = new SendWorkRequests(2, 2);

    wrs.write(2001, rb.addr, rb.rkey(dev.id)!).sge(local.address, MiB, local.lkey(dev.id)!);
    let ev = poller.events;
    wrs.post(a);
    const w = await completion(2001);
    expect(w).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RDMA_WRITE });
    expect(w.events).toBeGreaterThan(ev);
    expect(remote.buffer.equals(local.buffer)).toBe(true);

    randomBytes(MiB).copy(remote.buffer);
    // Two SGEs: the halves land in two different places of `back` (scatter), read from one remote range.
    const half = MiB / 2;
    wrs
      .read(2002, rb.addr, rb.rkey(dev.id)!)
      .sge(back.address + BigInt(half), half, back.lkey(dev.id)!)
      .sge(back.address, half, back.lkey(dev.id)!);
    ev = poller.events;
    wrs.post(a);
    const r = await completion(2002);
    expect(r).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.RDMA_READ, byteLen: MiB });
    expect(r.events).toBeGreaterThan(ev);
    expect(back.buffer.subarray(half).equals(remote.buffer.subarray(0, half))).toBe(true);
    expect(back.buffer.subarray(0, half).equals(remote.buffer.subarray(half))).toBe(true);
    wrs.free();
    for (const x of [local, remote, back]) x.release();
  });

  it('posting on a QP that is not ready is RDMAPostFailedError with the bad index', () => {
    const idle = dev.pd.createQp({ sendCq: cq, maxSendWr: 4, maxRecvWr: 4 });
    const wrs = new SendWorkRequests(1, 1);
    wrs.send(3001);
    let caught: unknown;
    try {
      wrs.post(idle);
    } catch (e) {
      caught = e;
    }
    idle.destroy();
    wrs.free();
    expect(FfnetError.is(caught)).toBe(true);
    expect((caught as FfnetError).code).toBe(StatusCode.RDMAPostFailed);
    expect((caught as { badIndex: number }).badIndex).toBe(0);
    expect((caught as Error).message).toMatch(/ibv_post_send on qp \d+ \(rxe0\) failed: E\w+ \(\d+\) at work request 0 of 1/);
  });

  it('a default RDMABuf (no remote rights on its MR) refuses RDMA WRITE; a CQ acks its events one at a time', async () => {
    expect(() => dev.context.createCq({ cqe: 8, eventAckBatch: 0 })).toThrow(/eventAckBatch/);
    // A second pair of QPs on a CQ that acks every channel event (eventAckBatch 1), so a and b stay usable.
    const ch2 = dev.context.createCompChannel();
    const cq2 = dev.context.createCq({ cqe: 16, channel: ch2, eventAckBatch: 1 });
    const mk = () => dev.pd.createQp({ sendCq: cq2, recvCq: cq2, maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 });
    const c = mk();
    const d = mk();
    for (const qp of [c, d]) qp.modifyToInit({ portNum: port.portNum, access: Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ });
    connect(c, d);
    connect(d, c);
    const poller2 = new CompletionPoller(cq2, (wcs, n) => onCompletions(wcs, n), { ref: false });
    const local = RDMABuf.allocate(4096);
    local.buffer.fill(7);
    const open = RDMABuf.allocate(4096, { access: RDMABUF_DEVICE_SCOPE_ACCESS });
    const closed = RDMABuf.allocate(4096);
    closed.buffer.fill(0);
    const wrs = new SendWorkRequests(1, 1);
    try {
      // Positive control: the device-scope registration (remote rights on the MR) accepts the write.
      const ob = open.toRemoteBuf();
      wrs.write(5001, ob.addr, ob.rkey(dev.id)!).sge(local.address, 4096, local.lkey(dev.id)!);
      wrs.post(c);
      expect((await completion(5001)).status).toBe(WcStatus.SUCCESS);
      expect(open.buffer.every((x) => x === 7)).toBe(true);
      const cb = closed.toRemoteBuf();
      wrs.write(5002, cb.addr, cb.rkey(dev.id)!).sge(local.address, 4096, local.lkey(dev.id)!);
      wrs.post(c);
      const r = await completion(5002);
      expect(r.status).toBe(WcStatus.REM_ACCESS_ERR);
      expect(r.error?.statusName).toBe('REM_ACCESS_ERR');
      expect(closed.buffer.every((x) => x === 0)).toBe(true);
      expect(poller2.events).toBeGreaterThanOrEqual(2);
    } finally {
      wrs.free();
      poller2.close();
      c.destroy();
      d.destroy();
      cq2.destroy();
      ch2.destroy();
      local.release();
      open.release();
      closed.release();
    }
  });

  it('a bad rkey completes with REM_ACCESS_ERR, reported as a typed RDMAError', async () => {
    const local = RDMABuf.allocate(4096);
    const remote = RDMABuf.allocate(4096);
    const rb = remote.toRemoteBuf();
    const wrs = new SendWorkRequests(1, 1);
    wrs.write(4001, rb.addr, (rb.rkey(dev.id)! ^ 0x5a5a00) >>> 0).sge(local.address, 4096, local.lkey(dev.id)!);
    const ev = poller.events;
    wrs.post(a);
    const c = await completion(4001);
    expect(c.status).toBe(WcStatus.REM_ACCESS_ERR);
    expect(c.events).toBeGreaterThan(ev);
    const e = c.error!;
    expect(FfnetError.is(e)).toBe(true);
    expect(e.code).toBe(StatusCode.RDMAError);
    expect(e.name).toBe('RDMAError');
    expect(e.statusName).toBe('REM_ACCESS_ERR');
    expect(e.wrId).toBe(4001);
    expect(e.message).toContain('REM_ACCESS_ERR');
    // The error moved the requester to ERR, as on real hardware.
    expect(a.queryState()).toBe(QpState.ERR);
    wrs.free();
    local.release();
    remote.release();
  });
});
