import { unpack as plainUnpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import {
  decodeMessage,
  encodeMessage,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  InvalidArgError,
  InvalidFormatError,
  MessageFlags,
  registerExtension,
} from '../src/index.js';

/** Stand-in for device's RDMARemoteBuf: u64 addr, u32 length, u32 rkey. */
class RemoteBuf {
  constructor(
    readonly addr: bigint,
    readonly length: number,
    readonly rkey: number,
  ) {}
}

registerExtension<RemoteBuf>({
  type: 42,
  Class: RemoteBuf,
  write(v) {
    const b = Buffer.allocUnsafe(16);
    b.writeBigUInt64LE(v.addr, 0);
    b.writeUInt32LE(v.length, 8);
    b.writeUInt32LE(v.rkey, 12);
    return b;
  },
  read(b) {
    if (b.length !== 16) throw new Error(`RemoteBuf needs 16 bytes, got ${b.length}`);
    return new RemoteBuf(b.readBigUInt64LE(0), b.readUInt32LE(8), b.readUInt32LE(12));
  },
});

const base = { uuid: 1, serviceId: 11, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0 };

describe('registerExtension', () => {
  it('round-trips a registered class inside a payload', () => {
    const bufs = [new RemoteBuf(0xdead_beef_0000n, 4096, 7), new RemoteBuf(2n ** 63n, 0, 0xffffffff)];
    const frame = encodeMessage({ ...base, payload: { bufs, tag: 'x' } });
    let got: { bufs: RemoteBuf[]; tag: string } | undefined;
    new FrameDecoder((b, c) => {
      got = decodeMessage(b, c).payload as typeof got;
    }).push(frame);
    expect(got!.bufs[0]).toBeInstanceOf(RemoteBuf);
    expect(got!.bufs).toEqual(bufs);
    expect(got!.tag).toBe('x');
    // On the wire it is a standard fixext16 with type 42.
    expect(frame.subarray(FRAME_HEADER_SIZE).includes(Buffer.from([0xd8, 42]))).toBe(true);
    expect(plainUnpack(frame.subarray(FRAME_HEADER_SIZE))[7].tag).toBe('x');
  });

  it('a throwing read turns into InvalidFormatError', () => {
    const body = Buffer.from([0x98, 1, 11, 1, 1, 0, 0, 0xc0, 0xd6, 42, 1, 2, 3, 4]); // fixext4: wrong size
    expect(() => decodeMessage(body, false)).toThrow(InvalidFormatError);
    expect(() => decodeMessage(body, false)).toThrow(/RemoteBuf needs 16 bytes/);
  });

  it('rejects a type id or class registered twice', () => {
    class Other {}
    const def = { Class: Other, write: () => Buffer.alloc(0), read: () => new Other() };
    expect(() => registerExtension({ ...def, type: 42 })).toThrow(InvalidArgError);
    expect(() => registerExtension({ ...def, type: 42 })).toThrow(/already registered for RemoteBuf/);
    expect(() => registerExtension({ type: 43, Class: RemoteBuf, write: () => Buffer.alloc(0), read: () => new RemoteBuf(0n, 0, 0) })).toThrow(
      /already registered as extension 42/,
    );
  });

  it("rejects type ids outside 1-100 and msgpackr's own", () => {
    class Other {}
    const def = { Class: Other, write: () => Buffer.alloc(0), read: () => new Other() };
    for (const type of [0, -1, 101, 114, 127, 66, 1.5]) {
      expect(() => registerExtension({ ...def, type })).toThrow(InvalidArgError);
    }
    expect(() => registerExtension({ type: 44, Class: Other } as never)).toThrow(InvalidArgError);
  });
});
