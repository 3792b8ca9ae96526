import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FfnetError, StatusCode } from '@ffnet/common';
import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { Access, RDMABUF_ACCESS, RDMABUF_DEVICE_SCOPE_ACCESS, RDMABuf, RDMABufPool } from '../src/index.js';
import type { MrOwner } from '../src/memory.js';
import type { MemoryRegion, ProtectionDomain } from '../src/verbs.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects garbage until `done()` holds (finalizers run as separate tasks after a GC). */
async function collectUntil(done: () => boolean, rounds = 50): Promise<boolean> {
  for (let i = 0; i < rounds && !done(); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  return done();
}

/**
 * A device double for the registration bookkeeping: what RDMABuf does with MRs (register on each device,
 * deregister before free, leak rather than free when deregistration fails) is observable without hardware.
 */
function fakeDevice(id: number, opts: { failDereg?: boolean } = {}) {
  const log: string[] = [];
  let next = 100 * (id + 1);
  const pd = {
    registerMemory(addr: bigint, length: number, access: number): MemoryRegion {
      const key = next++;
      let dead = false;
      log.push(`reg ${addr} ${length} ${access}`);
      return {
        addr,
        length,
        lkey: key,
        rkey: key + 0x10000,
        get deregistered() {
          return dead;
        },
        deregister() {
          log.push(`dereg ${key}`);
          if (opts.failDereg) return false;
          dead = true;
          return true;
        },
      } as unknown as MemoryRegion;
    },
  } as unknown as ProtectionDomain;
  const owner: MrOwner = { id, name: `fake${id}`, pd, liveMrs: new Set() };
  return { owner, log };
}

function expectCode(e: unknown, code: number): void {
  expect(FfnetError.is(e), String(e)).toBe(true);
  expect((e as FfnetError).code).toBe(code);
}

describe('RDMABuf without a device', () => {
  it('is page-aligned native memory seen as a Buffer without a copy', () => {
    const b = RDMABuf.allocate(10_000);
    expect(b.valid).toBe(true);
    expect(b.length).toBe(10_000);
    expect(b.capacity).toBe(10_000);
    expect(b.address % 4096n).toBe(0n);
    expect(b.mrs).toEqual([]);
    expect(b.buffer.length).toBe(10_000);
    // The Buffer's bytes are the native bytes at `address`.
    expect(koffi.address(b.buffer)).toBe(b.address);
    b.buffer.write('hello', 3);
    expect(koffi.decode(b.address + 3n, 'char', 5)).toBe('hello');
    b.release();
  });

  it('follows 3FS TestRDMABuf range semantics', () => {
    const b = RDMABuf.allocate(1024);
    for (let i = 0; i < 1024; i++) b.buffer[i] = i & 0xff;

    const sub = b.subrange(100, 200)!;
    expect(sub.length).toBe(200);
    expect(sub.address).toBe(b.address + 100n);
    expect(sub.buffer[0]).toBe(100);
    expect(b.subrange(900, 200)).toBeNull();
    expect(b.subrange(1024, 0)!.length).toBe(0);

    expect(b.first(10)!.buffer[9]).toBe(9);
    expect(b.last(10)!.address).toBe(b.address + 1014n);
    expect(b.first(1025)).toBeNull();
    expect(b.last(1025)).toBeNull();

    expect(b.advance(1025)).toBe(false);
    expect(b.length).toBe(1024);
    expect(b.advance(24)).toBe(true);
    expect(b.length).toBe(1000);
    expect(b.offset).toBe(24);
    expect(b.buffer[0]).toBe(24);
    expect(b.subtract(1001)).toBe(false);
    expect(b.subtract(100)).toBe(true);
    expect(b.length).toBe(900);
    expect(b.buffer.length).toBe(900);

    const head = b.takeFirst(100)!;
    expect(head.address).toBe(b.address - 100n);
    expect(head.length).toBe(100);
    expect(b.length).toBe(800);
    const tail = b.takeLast(300)!;
    expect(tail.address).toBe(b.address + 500n);
    expect(b.length).toBe(500);
    expect(b.takeFirst(501)).toBeNull();
    expect(b.length).toBe(500);

    expect(b.contains(b.address, 500)).toBe(true);
    expect(b.contains(b.address + 1n, 500)).toBe(false);
    expect(b.contains(b.address - 1n, 1)).toBe(false);

    b.resetRange();
    expect(b.length).toBe(1024);
    expect(b.offset).toBe(0);
    b.release();
  });

  it('toRemoteBuf describes the current range', () => {
    const b = RDMABuf.allocate(8192);
    b.advance(4096);
    const r = b.toRemoteBuf();
    expect(r.addr).toBe(b.address);
    expect(r.length).toBe(4096);
    expect(r.rkeys).toEqual([]);
    b.release();
  });

  it('release is idempotent and invalidates every view of the allocation', () => {
    const b = RDMABuf.allocate(4096);
    const sub = b.subrange(0, 16)!;
    sub.release();
    expect(b.valid).toBe(false);
    expect(sub.valid).toBe(false);
    b.release();
    let caught: unknown;
    try {
      void b.buffer;
    } catch (e) {
      caught = e;
    }
    expectCode(caught, StatusCode.InvalidArg);
    expect(b.subrange(0, 1)).toBeNull();
  });

  it('rejects bad sizes with InvalidArgError', () => {
    for (const size of [0, -1, 1.5, Number.NaN]) {
      let caught: unknown;
      try {
        RDMABuf.allocate(size);
      } catch (e) {
        caught = e;
      }
      expectCode(caught, StatusCode.InvalidArg);
    }
  });
});

describe('RDMABuf registration bookkeeping (device double)', () => {
  it('registers on every device with LOCAL_WRITE|MW_BIND|RELAXED_ORDERING (no remote rights) and deregisters before freeing', () => {
    const d0 = fakeDevice(0);
    const d1 = fakeDevice(1);
    const b = RDMABuf.allocate(4096, { devices: [d0.owner, d1.owner] });
    expect(d0.log).toEqual([`reg ${b.address} 4096 ${0x100011}`]);
    expect(b.mrs).toEqual([
      { devId: 0, lkey: 100, rkey: 0x10064 },
      { devId: 1, lkey: 200, rkey: 0x100c8 },
    ]);
    expect(b.lkey(1)).toBe(200);
    expect(b.rkey(2)).toBeUndefined();
    expect(b.toRemoteBuf().rkeys).toEqual([
      { rkey: 0x10064, devId: 0 },
      { rkey: 0x100c8, devId: 1 },
    ]);
    expect(d0.owner.liveMrs.size).toBe(1);
    b.release();
    expect(d0.log.at(-1)).toBe('dereg 100');
    expect(d1.log.at(-1)).toBe('dereg 200');
    expect(d0.owner.liveMrs.size).toBe(0);
  });

  it('the device-scope opt-out adds remote read and write on the MR itself', () => {
    const d0 = fakeDevice(0);
    const b = RDMABuf.allocate(4096, { devices: [d0.owner], access: RDMABUF_DEVICE_SCOPE_ACCESS });
    expect(d0.log).toEqual([`reg ${b.address} 4096 ${0x100017}`]);
    expect(RDMABUF_ACCESS & (Access.REMOTE_READ | Access.REMOTE_WRITE | Access.REMOTE_ATOMIC)).toBe(0);
    b.release();
  });

  it('never frees memory whose deregistration failed', () => {
    const bad = fakeDevice(0, { failDereg: true });
    const b = RDMABuf.allocate(4096, { devices: [bad.owner] });
    b.buffer.fill(0xab);
    const addr = b.address;
    b.release();
    expect(bad.log.at(-1)).toBe('dereg 100');
    expect(bad.owner.liveMrs.size).toBe(1);
    // Still allocated: reading it is safe and shows the bytes we wrote.
    expect(Buffer.from(koffi.view(addr, 4096)).every((x) => x === 0xab)).toBe(true);
  });

  it('the FinalizationRegistry deregisters and frees an unreleased buffer once nothing can reach its memory', async () => {
    const d = fakeDevice(0);
    (() => {
      const b = RDMABuf.allocate(4096, { devices: [d.owner] });
      b.buffer.fill(1);
    })();
    expect(d.owner.liveMrs.size).toBe(1);
    expect(await collectUntil(() => d.owner.liveMrs.size === 0)).toBe(true);
    expect(d.log.at(-1)).toBe('dereg 100');
  });

  it('a Buffer view kept alive keeps the memory registered and allocated', async () => {
    const d = fakeDevice(0);
    const view = (() => RDMABuf.allocate(4096, { devices: [d.owner] }).buffer)();
    view.fill(7);
    await collectUntil(() => false, 10);
    expect(d.owner.liveMrs.size).toBe(1);
    expect(view.every((x) => x === 7)).toBe(true);
  });
});

describe('RDMABufPool', () => {
  it('hands out up to count buffers, then a timed allocate fails with RDMANoBufError', async () => {
    const pool = new RDMABufPool(4096, 3);
    const bufs = [await pool.allocate(), await pool.allocate(), pool.tryAllocate()!];
    expect(bufs.every((b) => b.length === 4096 && b.address % 4096n === 0n)).toBe(true);
    expect(new Set(bufs.map((b) => b.address)).size).toBe(3);
    expect(pool.available).toBe(0);
    expect(pool.inUse).toBe(3);
    expect(pool.tryAllocate()).toBeNull();
    const t0 = Date.now();
    let caught: unknown;
    try {
      await pool.allocate({ timeoutMs: 50 });
    } catch (e) {
      caught = e;
    }
    expectCode(caught, StatusCode.RDMANoBuf);
    expect((caught as Error).message).toMatch(/within 50 ms/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(pool.waiting).toBe(0);
    for (const b of bufs) b.release();
    pool.close();
  });

  it('reuses a freed buffer and wakes waiters in FIFO order', async () => {
    const pool = new RDMABufPool(8192, 1);
    const a = await pool.allocate();
    a.buffer.fill(9);
    const addr = a.address;
    const order: number[] = [];
    const w1 = pool.allocate().then((b) => {
      order.push(1);
      return b;
    });
    const w2 = pool.allocate({ timeoutMs: 5000 }).then((b) => {
      order.push(2);
      return b;
    });
    expect(pool.waiting).toBe(2);
    a.release();
    const b1 = await w1;
    expect(b1.address).toBe(addr);
    expect(b1.length).toBe(8192);
    expect(b1.buffer[0]).toBe(9);
    expect(a.valid).toBe(false);
    expect(b1.valid).toBe(true);
    b1.release();
    const b2 = await w2;
    expect(b2.address).toBe(addr);
    expect(order).toEqual([1, 2]);
    b2.release();
    pool.close();
  });

  it('a range change on a lease does not leak into the next lease', async () => {
    const pool = new RDMABufPool(4096, 1);
    const a = await pool.allocate();
    a.advance(100);
    a.release();
    const b = await pool.allocate();
    expect(b.length).toBe(4096);
    expect(b.offset).toBe(0);
    b.release();
    pool.close();
  });

  it('allocate honours AbortSignal', async () => {
    const pool = new RDMABufPool(4096, 1);
    const a = await pool.allocate();
    const ac = new AbortController();
    const p = pool.allocate({ signal: ac.signal });
    ac.abort(new Error('caller gave up'));
    let caught: unknown;
    try {
      await p;
    } catch (e) {
      caught = e;
    }
    expectCode(caught, StatusCode.RDMANoBuf);
    expect((caught as Error).cause).toEqual(new Error('caller gave up'));
    expect(pool.waiting).toBe(0);
    let pre: unknown;
    try {
      await pool.allocate({ signal: AbortSignal.abort() });
    } catch (e) {
      pre = e;
    }
    expectCode(pre, StatusCode.RDMANoBuf);
    a.release();
    expect(pool.available).toBe(1);
    pool.close();
  });

  it('close fails waiters and later allocations; leased buffers are freed when released', async () => {
    const d = fakeDevice(0);
    const pool = new RDMABufPool(4096, 2, { devices: [d.owner] });
    const a = await pool.allocate();
    const b = await pool.allocate();
    b.release();
    const waiter = pool.allocate();
    // b went back to the free list before the waiter arrived, so the waiter got it: allocate a third time.
    const blocked = pool.allocate();
    const w = await waiter;
    pool.close();
    let caught: unknown;
    try {
      await blocked;
    } catch (e) {
      caught = e;
    }
    expectCode(caught, StatusCode.RDMANoBuf);
    expect((caught as Error).message).toMatch(/closed/);
    expect(d.owner.liveMrs.size).toBe(2);
    a.release();
    w.release();
    expect(d.owner.liveMrs.size).toBe(0);
    let after: unknown;
    try {
      await pool.allocate();
    } catch (e) {
      after = e;
    }
    expectCode(after, StatusCode.RDMANoBuf);
  });

  it('a lease dropped without release() comes back to the pool through the FinalizationRegistry', async () => {
    const pool = new RDMABufPool(4096, 1);
    (() => {
      const lost = pool.tryAllocate()!;
      lost.buffer.fill(3);
    })();
    expect(pool.available).toBe(0);
    expect(await collectUntil(() => pool.available === 1)).toBe(true);
    const again = await pool.allocate({ timeoutMs: 1000 });
    expect(again.buffer[0]).toBe(3);
    again.release();
    pool.close();
  });
});
