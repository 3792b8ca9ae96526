import { FfnetError, StatusCode } from '@ffnet/common';
import koffi from 'koffi';
import { afterAll, describe, expect, it } from 'vitest';
import { RecvWorkRequests, SendFlags, SendWorkRequests, WcArray, WcOpcode, WcStatus, WrOpcode } from '../src/index.js';
import { OPS, S } from '../src/layout.js';
import { decodeOps, type QueuePair } from '../src/verbs.js';

// The data path without hardware: a fake ibv_context in native memory whose ops slots hold JS callbacks
// (koffi.register), reached exactly the way a provider's functions are: the binding reads the pointers at
// ctx+OPS.* once and calls them with WRs it built in native memory. The callbacks play the provider: they
// walk the WR chain through raw memory and write completions into the caller's ibv_wc array.

interface SeenWr {
  wrId: bigint;
  opcode: number;
  flags: number;
  imm: number;
  remoteAddr: bigint;
  rkey: number;
  sges: { addr: bigint; length: number; lkey: number }[];
}

const W = S.ibv_send_wr;
const R = S.ibv_recv_wr;
const G = S.ibv_sge;
const u32 = (p: bigint, off: number) => koffi.decode(p, off, 'uint32_t') as number;
const ptrAt = (p: bigint, off: number) => koffi.decode(p, off, 'void *') as bigint | null;
const u64 = (p: bigint, off: number) => Buffer.from(koffi.view(p + BigInt(off), 8)).readBigUInt64LE(0);

function readSges(sgl: bigint | null, n: number) {
  const out: SeenWr['sges'] = [];
  for (let i = 0; i < n; i++) {
    const s = sgl! + BigInt(i * G.size);
    out.push({ addr: u64(s, G.addr), length: u32(s, G.length), lkey: u32(s, G.lkey) });
  }
  return out;
}

const posted: { qp: bigint; wrs: SeenWr[] }[] = [];
const received: { wrId: bigint; sges: SeenWr['sges'] }[][] = [];
let pending: { wrId: bigint; status: number; opcode: number; byteLen: number; imm?: number; qpNum: number }[] = [];
let notified = 0;

const PostSend = koffi.proto('int ffnet_test_post_send(void *qp, void *wr, void *bad)');
const PostRecv = koffi.proto('int ffnet_test_post_recv(void *qp, void *wr, void *bad)');
const PollCq = koffi.proto('int ffnet_test_poll_cq(void *cq, int n, void *wc)');
const ReqNotify = koffi.proto('int ffnet_test_req_notify(void *cq, int solicited)');

const callbacks = [
  [
    OPS.post_send,
    koffi.register((qp: bigint, wr: bigint, bad: bigint) => {
      const wrs: SeenWr[] = [];
      for (let p: bigint | null = wr; p; p = ptrAt(p, W.next)) {
        const opcode = koffi.decode(p, W.opcode, 'int') as number;
        if (opcode === 99) {
          koffi.encode(bad, 'void *', p);
          posted.push({ qp, wrs });
          return 22;
        }
        wrs.push({
          wrId: u64(p, W.wr_id),
          opcode,
          flags: u32(p, W.send_flags),
          imm: Buffer.from(koffi.view(p + BigInt(W.imm_data), 4)).readUInt32BE(0),
          remoteAddr: u64(p, W['wr.rdma.remote_addr']),
          rkey: u32(p, W['wr.rdma.rkey']),
          sges: readSges(ptrAt(p, W.sg_list), koffi.decode(p, W.num_sge, 'int') as number),
        });
      }
      posted.push({ qp, wrs });
      return 0;
    }, koffi.pointer(PostSend)),
  ],
  [
    OPS.post_recv,
    koffi.register((_qp: bigint, wr: bigint) => {
      const got: { wrId: bigint; sges: SeenWr['sges'] }[] = [];
      for (let p: bigint | null = wr; p; p = ptrAt(p, R.next)) {
        got.push({ wrId: u64(p, R.wr_id), sges: readSges(ptrAt(p, R.sg_list), koffi.decode(p, R.num_sge, 'int') as number) });
      }
      received.push(got);
      return 0;
    }, koffi.pointer(PostRecv)),
  ],
  [
    OPS.poll_cq,
    koffi.register((_cq: bigint, n: number, wc: bigint) => {
      const dv = new DataView(koffi.view(wc, n * S.ibv_wc.size));
      let k = 0;
      for (; k < n && pending.length; k++) {
        const c = pending.shift()!;
        const o = k * S.ibv_wc.size;
        dv.setBigUint64(o + S.ibv_wc.wr_id, c.wrId, true);
        dv.setInt32(o + S.ibv_wc.status, c.status, true);
        dv.setInt32(o + S.ibv_wc.opcode, c.opcode, true);
        dv.setUint32(o + S.ibv_wc.byte_len, c.byteLen, true);
        dv.setUint32(o + S.ibv_wc.qp_num, c.qpNum, true);
        dv.setUint32(o + S.ibv_wc.vendor_err, c.status ? 0x88 : 0, true);
        if (c.imm !== undefined) {
          dv.setUint32(o + S.ibv_wc.imm_data, c.imm, false);
          dv.setUint32(o + S.ibv_wc.wc_flags, 2, true);
        }
      }
      return k;
    }, koffi.pointer(PollCq)),
  ],
  [
    OPS.req_notify_cq,
    koffi.register(() => {
      notified++;
      return 0;
    }, koffi.pointer(ReqNotify)),
  ],
] as const;

const ctx = koffi.alloc('uint8_t', S.ibv_context.size) as unknown as bigint;
for (const [off, fp] of callbacks) koffi.encode(ctx, off, 'void *', fp);
const ops = decodeOps(ctx, 'fake0');
const qpPtr = koffi.alloc('uint8_t', S.ibv_qp.size) as unknown as bigint;
const qp = { ptr: qpPtr, qpNum: 0x123, context: { name: 'fake0' }, postSendFn: ops.postSend, postRecvFn: ops.postRecv } as unknown as QueuePair;

afterAll(() => {
  for (const [, fp] of callbacks) koffi.unregister(fp);
  koffi.free(ctx as never);
  koffi.free(qpPtr as never);
});

describe('send/recv work requests through the ops table', () => {
  it('builds a linked chain in native memory and posts it with one post_send', () => {
    const wrs = new SendWorkRequests(4, 2);
    wrs
      .sendWithImm(1, 0xdeadbeef)
      .sge(0x1000n, 64, 7)
      .write(2 ** 40 + 5, 0x7f00_0000_1000n, 0xabc, SendFlags.SIGNALED | SendFlags.INLINE)
      .sge(0x2000n, 100, 8)
      .sge(0x3000n, 200, 9)
      .read(3, 0x7f00_0000_2000n, 0xdef, 0)
      .sge(0x4000n, 1 << 20, 10);
    expect(wrs.count).toBe(3);
    wrs.post(qp);
    expect(wrs.count).toBe(0);
    const { qp: seenQp, wrs: seen } = posted.at(-1)!;
    expect(seenQp).toBe(qpPtr);
    expect(seen).toEqual([
      {
        wrId: 1n,
        opcode: WrOpcode.SEND_WITH_IMM,
        flags: SendFlags.SIGNALED,
        imm: 0xdeadbeef,
        remoteAddr: 0n,
        rkey: 0,
        sges: [{ addr: 0x1000n, length: 64, lkey: 7 }],
      },
      {
        wrId: 2n ** 40n + 5n,
        opcode: WrOpcode.RDMA_WRITE,
        flags: SendFlags.SIGNALED | SendFlags.INLINE,
        imm: 0,
        remoteAddr: 0x7f00_0000_1000n,
        rkey: 0xabc,
        sges: [
          { addr: 0x2000n, length: 100, lkey: 8 },
          { addr: 0x3000n, length: 200, lkey: 9 },
        ],
      },
      {
        wrId: 3n,
        opcode: WrOpcode.RDMA_READ,
        flags: 0,
        imm: 0,
        remoteAddr: 0x7f00_0000_2000n,
        rkey: 0xdef,
        sges: [{ addr: 0x4000n, length: 1 << 20, lkey: 10 }],
      },
    ]);
    // Reuse: a second batch overwrites the first, stale fields (imm, rdma) are cleared.
    wrs.send(4).sge(0x5000n, 1, 1).post(qp);
    expect(posted.at(-1)!.wrs).toEqual([
      { wrId: 4n, opcode: WrOpcode.SEND, flags: SendFlags.SIGNALED, imm: 0, remoteAddr: 0n, rkey: 0, sges: [{ addr: 0x5000n, length: 1, lkey: 1 }] },
    ]);
    wrs.free();
  });

  it('refuses more WRs or SGEs than it was sized for', () => {
    const wrs = new SendWorkRequests(1, 1);
    wrs.send(1).sge(1n, 1, 1);
    expect(() => wrs.sge(2n, 1, 1)).toThrow(/already has 1 SGEs/);
    expect(() => wrs.send(2)).toThrow(/batch is full/);
    try {
      wrs.send(2);
    } catch (e) {
      expect((e as FfnetError).code).toBe(StatusCode.InvalidArg);
    }
    wrs.free();
  });

  it('a rejected WR becomes RDMAPostFailedError with the bad index', () => {
    const wrs = new SendWorkRequests(3, 1);
    wrs
      .send(1)
      .sge(1n, 1, 1)
      .add(99 as never, 2)
      .send(3);
    let caught: unknown;
    try {
      wrs.post(qp);
    } catch (e) {
      caught = e;
    }
    expect(FfnetError.is(caught)).toBe(true);
    const e = caught as FfnetError & { badIndex: number; errno: number };
    expect(e.code).toBe(StatusCode.RDMAPostFailed);
    expect(e.badIndex).toBe(1);
    expect(e.errno).toBe(22);
    expect(e.message).toMatch(/ibv_post_send on qp 291 \(fake0\) failed: EINVAL \(22\) at work request 1 of 3/);
    expect(posted.at(-1)!.wrs.map((w) => w.wrId)).toEqual([1n]);
    expect(wrs.count).toBe(0);
    wrs.free();
  });

  it('posts receive WRs with one post_recv', () => {
    const r = new RecvWorkRequests(8, 1);
    for (let i = 0; i < 8; i++) r.add(100 + i).sge(0x10000n + BigInt(i * 4096), 4096, 77);
    r.post(qp);
    const got = received.at(-1)!;
    expect(got.map((w) => w.wrId)).toEqual([100n, 101n, 102n, 103n, 104n, 105n, 106n, 107n]);
    expect(got[7]!.sges).toEqual([{ addr: 0x10000n + 7n * 4096n, length: 4096, lkey: 77 }]);
    r.free();
  });
});

describe('WcArray', () => {
  it('reads what poll_cq wrote, including big-endian imm and 64-bit wr_id, and types error completions', () => {
    const wcs = new WcArray(4);
    pending = [
      { wrId: 2n ** 52n + 3n, status: WcStatus.SUCCESS, opcode: WcOpcode.RECV, byteLen: 512, imm: 0x01020304, qpNum: 0x123 },
      { wrId: 9n, status: WcStatus.SUCCESS, opcode: WcOpcode.RDMA_WRITE, byteLen: 0, qpNum: 0x123 },
      { wrId: 10n, status: WcStatus.REM_ACCESS_ERR, opcode: WcOpcode.RDMA_WRITE, byteLen: 0, qpNum: 0x124 },
    ];
    const n = ops.pollCq(0n, wcs.capacity, wcs.ptr);
    expect(n).toBe(3);
    expect([wcs.wrId(0), wcs.status(0), wcs.opcode(0), wcs.byteLen(0), wcs.isRecv(0), wcs.hasImm(0), wcs.imm(0), wcs.qpNum(0)]).toEqual([
      2 ** 52 + 3,
      WcStatus.SUCCESS,
      WcOpcode.RECV,
      512,
      true,
      true,
      0x01020304,
      0x123,
    ]);
    expect([wcs.isRecv(1), wcs.hasImm(1)]).toEqual([false, false]);
    const err = wcs.error(2);
    expect(FfnetError.is(err)).toBe(true);
    expect(err.code).toBe(StatusCode.RDMAError);
    expect(err.statusName).toBe('REM_ACCESS_ERR');
    expect(err.status).toBe(WcStatus.REM_ACCESS_ERR);
    expect(err.wrId).toBe(10);
    expect(err.message).toMatch(/REM_ACCESS_ERR \(status 10, vendor_err 0x88, wr_id 10\) on qp 292/);
    expect(ops.reqNotifyCq(0n, 0)).toBe(0);
    expect(notified).toBe(1);
    wcs.free();
  });
});
