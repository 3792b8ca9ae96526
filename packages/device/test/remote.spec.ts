import { decodeMessage, encodeMessage, FfnetError, FRAME_HEADER_SIZE, MessageFlags, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { RDMA_REMOTE_BUF_EXT_TYPE, RDMARemoteBuf } from '../src/index.js';

function expectCode(fn: () => unknown, code: number): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(FfnetError.is(caught), String(caught)).toBe(true);
  expect((caught as FfnetError).code).toBe(code);
}

const sample = () =>
  new RDMARemoteBuf(0x7f12_3456_7000n, 1 << 20, [
    { rkey: 0x1234, devId: 0 },
    { rkey: 0xffff_ffff, devId: 1 },
  ]);

describe('RDMARemoteBuf binary form (3FS §2.2)', () => {
  it('is u64 addr ‖ u64 size ‖ u8 n ‖ n × (u32 rkey ‖ i32 devId), little-endian, 8+8+1+8n bytes', () => {
    const r = sample();
    const bytes = r.encode();
    expect(r.encodedLength).toBe(8 + 8 + 1 + 8 * 2);
    expect(bytes.toString('hex')).toBe(['0070563412 7f0000', '0000100000000000', '02', '34120000 00000000', 'ffffffff 01000000'].join('').replaceAll(' ', ''));
    expect(new RDMARemoteBuf(1n, 0, []).encode().length).toBe(17);
    const back = RDMARemoteBuf.decode(bytes);
    expect(back.equals(r)).toBe(true);
    expect(back.addr).toBe(0x7f12_3456_7000n);
    expect(back.rkey(1)).toBe(0xffff_ffff);
    expect(back.rkey(2)).toBeUndefined();
  });

  it('negative devIds (3FS default -1) and encoding into a larger buffer at an offset', () => {
    const r = new RDMARemoteBuf(42n, 7, [{ rkey: 5, devId: -1 }]);
    const target = Buffer.alloc(40, 0xee);
    r.encode(target, 3);
    expect(target.subarray(0, 3).every((x) => x === 0xee)).toBe(true);
    expect(target.readInt32LE(3 + 17 + 4)).toBe(-1);
    const { value, bytesRead } = RDMARemoteBuf.decodeFrom(target, 3);
    expect(bytesRead).toBe(25);
    expect(value.rkeys).toEqual([{ rkey: 5, devId: -1 }]);
    expectCode(() => r.encode(Buffer.alloc(24)), StatusCode.InvalidArg);
  });

  it('truncated, oversized or trailing input is an InvalidFormatError', () => {
    const bytes = sample().encode();
    for (let n = 0; n < bytes.length; n++) expectCode(() => RDMARemoteBuf.decode(bytes.subarray(0, n)), StatusCode.InvalidFormat);
    expectCode(() => RDMARemoteBuf.decode(Buffer.concat([bytes, Buffer.from([0])])), StatusCode.InvalidFormat);
    const huge = Buffer.from(bytes);
    huge.writeBigUInt64LE(1n << 60n, 8);
    expectCode(() => RDMARemoteBuf.decode(huge), StatusCode.InvalidFormat);
    // A count byte claiming 255 keys with none present must not allocate or read past the end.
    const lying = Buffer.from(bytes.subarray(0, 17));
    lying[16] = 255;
    expectCode(() => RDMARemoteBuf.decode(lying), StatusCode.InvalidFormat);
  });

  it('rejects invalid fields with InvalidArgError', () => {
    expectCode(() => new RDMARemoteBuf(-1n, 1, []), StatusCode.InvalidArg);
    expectCode(() => new RDMARemoteBuf(1n << 64n, 1, []), StatusCode.InvalidArg);
    expectCode(() => new RDMARemoteBuf(1n, -1, []), StatusCode.InvalidArg);
    expectCode(() => new RDMARemoteBuf(1n, 1, [{ rkey: 2 ** 32, devId: 0 }]), StatusCode.InvalidArg);
  });
});

describe('RDMARemoteBuf range semantics (3FS TestRDMABuf RemoteBuf)', () => {
  it('advance / subtract / subrange / first / last / takeFirst / takeLast', () => {
    const r = new RDMARemoteBuf(0x1000n, 1000, [{ rkey: 9, devId: 0 }]);
    expect(r.valid).toBe(true);
    expect(new RDMARemoteBuf(0n, 0, []).valid).toBe(false);
    expect(r.subrange(10, 20)!.addr).toBe(0x100an);
    expect(r.subrange(10, 20)!.rkey(0)).toBe(9);
    expect(r.subrange(990, 11)).toBeNull();
    expect(r.first(1001)).toBeNull();
    expect(r.last(10)!.addr).toBe(0x1000n + 990n);
    expect(r.advance(1001)).toBe(false);
    expect(r.advance(100)).toBe(true);
    expect([r.addr, r.length]).toEqual([0x1064n, 900]);
    expect(r.subtract(901)).toBe(false);
    expect(r.subtract(100)).toBe(true);
    expect(r.length).toBe(800);
    const head = r.takeFirst(300)!;
    expect([head.addr, head.length, r.addr, r.length]).toEqual([0x1064n, 300, 0x1064n + 300n, 500]);
    const tail = r.takeLast(200)!;
    expect([tail.addr, tail.length, r.length]).toEqual([0x1064n + 600n, 200, 300]);
    expect(r.takeLast(301)).toBeNull();
    expect(r.length).toBe(300);
  });
});

describe('RDMARemoteBuf through @ffnet/serde', () => {
  it(`travels inside a message as msgpack extension ${RDMA_REMOTE_BUF_EXT_TYPE}, carrying the binary form`, () => {
    const r = sample();
    const frame = encodeMessage({
      uuid: 7,
      serviceId: 10,
      methodId: 1,
      flags: MessageFlags.IsReq,
      version: 0,
      timeoutMs: 0,
      payload: { bufs: [r, r.first(4096)], note: 'batchRead' },
    });
    // fixext/ext header with our type byte followed by the 33-byte binary form.
    const ext = Buffer.from([0xc7, 33, RDMA_REMOTE_BUF_EXT_TYPE]);
    expect(frame.indexOf(Buffer.concat([ext, r.encode()]))).toBeGreaterThan(0);
    const pkt = decodeMessage(frame.subarray(FRAME_HEADER_SIZE), false);
    const payload = pkt.payload as { bufs: RDMARemoteBuf[]; note: string };
    expect(payload.note).toBe('batchRead');
    expect(payload.bufs[0]).toBeInstanceOf(RDMARemoteBuf);
    expect(payload.bufs[0]!.equals(r)).toBe(true);
    expect(payload.bufs[1]!.length).toBe(4096);
  });
});
