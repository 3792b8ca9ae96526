import { FfnetError, StatusCode } from '@ffnet/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type IBDevice, IBManager, RDMABuf, RDMABufPool } from '../../src/index.js';
import { requireVerbsDevice } from './require-device.js';

let rxe: IBDevice;

beforeAll(() => {
  requireVerbsDevice();
  const devices = IBManager.start({ deviceFilter: ['rxe0'], portRefreshMs: 0 });
  rxe = devices[0]!;
});

afterAll(() => {
  IBManager.stop();
});

describe('registered memory on rxe0', () => {
  it('allocates, registers and deregisters 1000 buffers', () => {
    const bufs: RDMABuf[] = [];
    for (let i = 0; i < 1000; i++) bufs.push(RDMABuf.allocate(8192 + (i % 7) * 4096));
    expect(rxe.liveMrs.size).toBe(1000);
    // Distinct lkeys: rxe gives an MR without remote rights (the default, RDMABUF_ACCESS) rkey 0, so rkeys need not be.
    const lkeys = new Set<number>();
    for (const b of bufs) {
      expect(b.address % 4096n).toBe(0n);
      expect(b.mrs).toHaveLength(1);
      const mr = b.mrs[0]!;
      expect(mr.devId).toBe(rxe.id);
      expect(mr.lkey).not.toBe(0);
      lkeys.add(mr.lkey);
      expect(b.toRemoteBuf().rkey(rxe.id)).toBe(mr.rkey);
    }
    expect(lkeys.size).toBe(1000);
    for (const b of bufs) b.release();
    expect(rxe.liveMrs.size).toBe(0);
    expect(bufs.every((b) => !b.valid)).toBe(true);
  });

  it('a pool can be exhausted, a timed allocate then fails, and a freed buffer is reused with its registration', async () => {
    const pool = new RDMABufPool(16384, 4);
    const held = await Promise.all([pool.allocate(), pool.allocate(), pool.allocate(), pool.allocate()]);
    expect(rxe.liveMrs.size).toBe(4);
    let caught: unknown;
    try {
      await pool.allocate({ timeoutMs: 200 });
    } catch (e) {
      caught = e;
    }
    expect(FfnetError.is(caught)).toBe(true);
    expect((caught as FfnetError).code).toBe(StatusCode.RDMANoBuf);
    const victim = held[2]!;
    const { address, mrs } = victim;
    victim.release();
    const again = await pool.allocate({ timeoutMs: 1000 });
    expect(again.address).toBe(address);
    expect(again.mrs).toEqual(mrs);
    expect(rxe.liveMrs.size).toBe(4);
    for (const b of [...held, again]) b.release();
    pool.close();
    expect(rxe.liveMrs.size).toBe(0);
  });

  it('closing the device deregisters what is still registered; the memory stays usable', () => {
    const devs = IBManager.devices;
    const b = RDMABuf.allocate(4096);
    expect(b.mrs).toHaveLength(devs.length);
    IBManager.stop();
    expect(rxe.closed).toBe(true);
    expect(rxe.liveMrs.size).toBe(0);
    b.buffer.fill(5);
    expect(b.buffer[4095]).toBe(5);
    b.release();
    // After stop, new buffers are plain memory.
    const plain = RDMABuf.allocate(4096);
    expect(plain.mrs).toEqual([]);
    plain.release();
  });
});
