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
  type MemoryWindow,
  QpState,
  type QueuePair,
  RDMABuf,
  SendWorkRequests,
  type WcArray,
  type WcError,
  WcOpcode,
  WcStatus,
} from '../../src/index.js';
import { requireVerbsDevice } from './require-device.js';

// Type-2 memory windows on rxe0, with raw QPs: what IBSocket.expose builds on. Two connected pairs, a<->b and
// c<->d. `target` is a default RDMABuf (no remote rights on its MR) owned by b's side: a window bound by b makes it
// reachable from a, never from c (another connection), and not after the window is invalidated.

interface Completion {
  wrId: number;
  status: number;
  opcode: number;
  error: WcError | null;
}

let dev: IBDevice;
let port: IBPortInfo;
let channel: CompletionChannel;
let cq: CompletionQueue;
let poller: CompletionPoller;
const qps: QueuePair[] = [];
const waiting = new Map<number, (c: Completion) => void>();
const early = new Map<number, Completion>();

function onCompletions(wcs: WcArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const ok = wcs.status(i) === WcStatus.SUCCESS;
    const c: Completion = {
      wrId: wcs.wrId(i),
      status: wcs.status(i),
      opcode: ok ? wcs.opcode(i) : -1,
      error: ok ? null : wcs.error(i, { peer: 'qp test peer' }),
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

function pair(): [QueuePair, QueuePair] {
  const mk = () => {
    const qp = dev.pd.createQp({ sendCq: cq, recvCq: cq, maxSendWr: 16, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 });
    qp.modifyToInit({ portNum: port.portNum, access: Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ });
    qps.push(qp);
    return qp;
  };
  const x = mk();
  const y = mk();
  for (const [l, r] of [
    [x, y],
    [y, x],
  ] as const) {
    l.modifyToRtr({
      pathMtu: port.attr.activeMtu,
      destQpNum: r.qpNum,
      rqPsn: 0,
      maxDestRdAtomic: 4,
      minRnrTimer: 12,
      portNum: port.portNum,
      dgid: port.gid!.gid,
      sgidIndex: port.gid!.index,
    });
    l.modifyToRts({ sqPsn: 0, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 4 });
  }
  return [x, y];
}

beforeAll(() => {
  requireVerbsDevice();
  dev = IBManager.start({ deviceFilter: ['rxe0'], portRefreshMs: 0 })[0]!;
  port = dev.openPort();
  channel = dev.context.createCompChannel();
  cq = dev.context.createCq({ cqe: 256, channel });
  poller = new CompletionPoller(cq, (wcs, n) => onCompletions(wcs, n), { ref: false });
});

afterAll(() => {
  poller?.close();
  for (const qp of qps) qp.destroy();
  cq?.destroy();
  channel?.destroy();
  IBManager.stop();
});

describe('type-2 memory windows on rxe0', () => {
  it('a window bound on one QP serves that QP only, and only until it is invalidated', async () => {
    const [a, b] = pair();
    const [c] = pair();
    const target = RDMABuf.allocate(8192);
    const src = RDMABuf.allocate(4096);
    const wrs = new SendWorkRequests(2, 1);
    let mw: MemoryWindow | undefined;
    try {
      target.buffer.fill(0);
      mw = dev.pd.allocMw();
      const first = mw.rkey;
      const rkey = mw.nextRkey();
      expect(rkey >>> 8).toBe(first >>> 8);
      expect(rkey).not.toBe(first);
      wrs.bindMw(100, mw.ptr, rkey, target.mrPtr(dev.id)!, target.address, 4096, Access.REMOTE_WRITE | Access.REMOTE_READ, 2);
      wrs.post(b);
      mw.rebound(rkey);
      const bound = await completion(100);
      expect(bound).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.BIND_MW });
      expect(mw.rkey).toBe(rkey);

      // The peer of b (a) writes through the window.
      src.buffer.fill(0x11);
      wrs.write(101, target.address, rkey).sge(src.address, 4096, src.lkey(dev.id)!);
      wrs.post(a);
      expect((await completion(101)).status).toBe(WcStatus.SUCCESS);
      expect(target.buffer.subarray(0, 4096).every((x) => x === 0x11)).toBe(true);

      // Another connection (c -> d) with the window's rkey, while it is bound: refused (and only c<->d breaks).
      src.buffer.fill(0x22);
      wrs.write(102, target.address, rkey).sge(src.address, 4096, src.lkey(dev.id)!);
      wrs.post(c);
      const other = await completion(102);
      expect(other.status).toBe(WcStatus.REM_ACCESS_ERR);
      expect(FfnetError.is(other.error)).toBe(true);
      expect(other.error!.code).toBe(StatusCode.RDMAError);
      expect(other.error!.statusName).toBe('REM_ACCESS_ERR');
      expect(other.error!.peer).toBe('qp test peer');
      expect(target.buffer.subarray(0, 4096).every((x) => x === 0x11)).toBe(true);

      // b invalidates the window; a reusing the old rkey is refused.
      wrs.localInv(103, rkey);
      wrs.post(b);
      expect(await completion(103)).toMatchObject({ status: WcStatus.SUCCESS, opcode: WcOpcode.LOCAL_INV });
      src.buffer.fill(0x33);
      wrs.write(104, target.address, rkey).sge(src.address, 4096, src.lkey(dev.id)!);
      wrs.post(a);
      const late = await completion(104);
      expect(late.status).toBe(WcStatus.REM_ACCESS_ERR);
      expect(target.buffer.subarray(0, 4096).every((x) => x === 0x11)).toBe(true);
      expect(a.queryState()).toBe(QpState.ERR);
    } finally {
      wrs.free();
      expect(mw?.dealloc() ?? true).toBe(true);
      target.release();
      src.release();
    }
  });

  it('an invalidated window can be bound again under a new rkey; the old one stays dead', async () => {
    const [a, b] = pair();
    const target = RDMABuf.allocate(4096);
    const src = RDMABuf.allocate(4096);
    const wrs = new SendWorkRequests(2, 1);
    const mw = dev.pd.allocMw();
    try {
      const bind = async (id: number) => {
        const rkey = mw.nextRkey();
        wrs.bindMw(id, mw.ptr, rkey, target.mrPtr(dev.id)!, target.address, 4096, Access.REMOTE_WRITE, 2);
        wrs.post(b);
        mw.rebound(rkey);
        expect((await completion(id)).status).toBe(WcStatus.SUCCESS);
        return rkey;
      };
      const write = async (id: number, rkey: number, fill: number) => {
        src.buffer.fill(fill);
        wrs.write(id, target.address, rkey).sge(src.address, 4096, src.lkey(dev.id)!);
        wrs.post(a);
        return (await completion(id)).status;
      };
      const k1 = await bind(200);
      expect(await write(201, k1, 1)).toBe(WcStatus.SUCCESS);
      wrs.localInv(202, k1);
      wrs.post(b);
      expect((await completion(202)).status).toBe(WcStatus.SUCCESS);
      const k2 = await bind(203);
      expect(k2).not.toBe(k1);
      expect(await write(204, k2, 2)).toBe(WcStatus.SUCCESS);
      expect(target.buffer.every((x) => x === 2)).toBe(true);
      expect(await write(205, k1, 3)).toBe(WcStatus.REM_ACCESS_ERR);
      expect(target.buffer.every((x) => x === 2)).toBe(true);
    } finally {
      wrs.free();
      expect(mw.dealloc()).toBe(true);
      expect(mw.dealloc()).toBe(true);
      target.release();
      src.release();
    }
  });
});
