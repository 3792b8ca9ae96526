import { describe, expect, it } from 'vitest';
import { CancelledError, InvalidArgError, ResourceExhaustedError, Semaphore, type SemaphoreWaiter } from '../src/index.js';

const turn = () => new Promise<void>((r) => setImmediate(r));
/** Lets resolved promises' reactions run. */
const ticks = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('Semaphore', () => {
  it('tryAcquire takes what fits and refuses what does not; stats track use, peak and grants', () => {
    const s = new Semaphore(10, { name: 'slots' });
    expect(s.tryAcquire(4)).toBe(true);
    expect(s.tryAcquire(7)).toBe(false);
    expect(s.tryAcquire()).toBe(true);
    expect(s.available).toBe(5);
    s.release(5);
    expect(s.stats).toEqual({ limit: 10, used: 0, peak: 5, waiting: 0, granted: 2 });
    expect(s.tryAcquire(0)).toBe(true);
    expect(s.used).toBe(0);
  });

  it('refuses bad limits, units and waiter caps with InvalidArgError', () => {
    expect(() => new Semaphore(0)).toThrow(InvalidArgError);
    expect(() => new Semaphore(1.5)).toThrow(InvalidArgError);
    expect(() => new Semaphore(1, { maxWaiters: -1 })).toThrow(InvalidArgError);
    const s = new Semaphore(4);
    expect(() => s.tryAcquire(-1)).toThrow(InvalidArgError);
    expect(() => s.tryAcquire(0.5)).toThrow(InvalidArgError);
    expect(() => s.force(Number.NaN)).toThrow(InvalidArgError);
    expect(() => s.release(-2)).toThrow(InvalidArgError);
    expect(s.used).toBe(0);
  });

  it('over-release throws and changes nothing', () => {
    const s = new Semaphore(4, { name: 'budget' });
    s.tryAcquire(3);
    expect(() => s.release(4)).toThrow(InvalidArgError);
    expect(() => s.release(4)).toThrow(/release of 4 units, but only 3 are held/);
    expect(s.used).toBe(3);
    s.release(3);
    expect(() => s.release()).toThrow(InvalidArgError);
  });

  it('acquire grants in FIFO order, and a large request at the head is not overtaken by small ones', async () => {
    const s = new Semaphore(10);
    expect(s.tryAcquire(10)).toBe(true);
    const order: string[] = [];
    const big = s.acquire(8).then(() => order.push('big'));
    const small1 = s.acquire(1).then(() => order.push('small1'));
    const small2 = s.acquire(1).then(() => order.push('small2'));
    expect(s.waiting).toBe(3);
    // With acquires queued, tryAcquire does not jump the queue even when units are free.
    s.release(3);
    expect(s.tryAcquire(1)).toBe(false);
    await ticks();
    expect(order).toEqual([]);
    s.release(5); // 8 free now: big fits, and leaves nothing for the small ones
    await ticks();
    expect(order).toEqual(['big']);
    expect(s.used).toBe(10);
    s.release(2);
    await Promise.all([big, small1, small2]);
    expect(order).toEqual(['big', 'small1', 'small2']);
    expect(s.stats).toMatchObject({ used: 10, waiting: 0, granted: 4 });
  });

  it('an abort while waiting rejects with the reason, takes nothing, and lets those behind move up', async () => {
    const s = new Semaphore(2);
    s.tryAcquire(2);
    const ac = new AbortController();
    const first = s.acquire(2, { signal: ac.signal });
    let secondDone = false;
    const second = s.acquire(1).then(() => {
      secondDone = true;
    });
    s.release(1); // 1 free: the head (2 units) does not fit, so the second waits behind it
    await ticks();
    expect(secondDone).toBe(false);
    const reason = new Error('caller gave up');
    ac.abort(reason);
    await expect(first).rejects.toBe(reason);
    await second;
    expect(secondDone).toBe(true);
    // The aborted acquire took nothing: one unit from before, one for the second.
    expect(s.used).toBe(2);
    expect(s.waiting).toBe(0);
    // Releasing afterwards does not resurrect the aborted waiter.
    s.release(2);
    expect(s.used).toBe(0);
  });

  it('an abort with no reason gives a CancelledError; an already-aborted signal takes nothing', async () => {
    const s = new Semaphore(1);
    const ac = new AbortController();
    ac.abort();
    // Even with room, an aborted signal is refused: the caller already gave up.
    await expect(s.acquire(1, { signal: ac.signal })).rejects.toBeInstanceOf(DOMException);
    expect(s.used).toBe(0);
    s.tryAcquire(1);
    // AbortController always sets a reason; a signal-like EventTarget (as some libraries pass) may have none.
    const fake = Object.assign(new EventTarget(), { aborted: false, reason: undefined }) as unknown as AbortSignal;
    const q = s.acquire(1, { signal: fake });
    (fake as unknown as { aborted: boolean }).aborted = true;
    fake.dispatchEvent(new Event('abort'));
    await expect(q).rejects.toBeInstanceOf(CancelledError);
    expect(s.used).toBe(1);
    expect(s.waiting).toBe(0);
  });

  it('a full waiter queue refuses with ResourceExhaustedError naming the peer, and memory stays bounded', async () => {
    const s = new Semaphore(1, { name: 'handshakes', maxWaiters: 2 });
    s.tryAcquire(1);
    const a = s.acquire();
    const b = s.acquire();
    const refused = s.acquire(1, { peer: 'tcp://10.0.0.9:1234' });
    await expect(refused).rejects.toBeInstanceOf(ResourceExhaustedError);
    await expect(refused).rejects.toThrow(/handshakes: 2 callers already waiting.*peer tcp:\/\/10\.0\.0\.9:1234/);
    // The callback form shares the cap.
    expect(() => s.wait({ onAvailable: () => true })).toThrow(ResourceExhaustedError);
    expect(s.waiting).toBe(2);
    s.release();
    await a;
    s.release();
    await b;
    expect(s.waiting).toBe(0);
  });

  it('handles large units (byte budgets past 2^32)', async () => {
    const GiB = 2 ** 30;
    const s = new Semaphore(2 ** 40, { name: 'bytes' });
    expect(s.tryAcquire(2 ** 39)).toBe(true);
    expect(s.tryAcquire(2 ** 39 + 1)).toBe(false);
    const wait = s.acquire(2 ** 39 + GiB);
    s.release(GiB);
    await wait;
    expect(s.used).toBe(2 ** 40);
    await expect(s.acquire(2 ** 40 + 1)).rejects.toBeInstanceOf(InvalidArgError);
    expect(() => s.tryAcquire(2 ** 53)).toThrow(InvalidArgError);
  });

  it('force goes past the limit and shows in peak; release brings it back', () => {
    const s = new Semaphore(100);
    s.tryAcquire(30);
    s.force(90);
    expect(s.used).toBe(120);
    expect(s.available).toBe(-20);
    expect(s.stats.peak).toBe(120);
    expect(s.tryAcquire(1)).toBe(false);
    s.release(120);
    expect(s.available).toBe(100);
  });

  it('raising the limit grants waiters that now fit; lowering it fails those that never could', async () => {
    const s = new Semaphore(2);
    s.tryAcquire(2);
    let aDone = false;
    const a = s.acquire(2).then(() => {
      aDone = true;
    });
    let bDone = false;
    const b = s.acquire(1).then(() => {
      bDone = true;
    });
    s.limit = 4; // a fits (2 + 2), b does not (5 > 4)
    await a;
    await ticks();
    expect(aDone).toBe(true);
    expect(bDone).toBe(false);
    expect(s.used).toBe(4);
    const c = s.acquire(3);
    s.limit = 2; // takes nothing back; c (3 units) can never fit, b (1) still can
    await expect(c).rejects.toBeInstanceOf(InvalidArgError);
    expect(s.used).toBe(4);
    expect(s.waiting).toBe(1);
    s.release(3); // used 1: b fits under the new limit of 2
    await b;
    expect(s.used).toBe(2);
  });

  it('the callback form wakes waiters oldest first, on a later turn, until each is satisfied', async () => {
    const s = new Semaphore(100);
    s.tryAcquire(100);
    const order: string[] = [];
    const waiter = (name: string, n: number): SemaphoreWaiter => ({
      onAvailable: () => {
        order.push(name);
        return s.tryAcquire(n);
      },
    });
    const big = waiter('big', 80);
    const small = waiter('small', 20);
    s.wait(big);
    s.wait(small);
    s.wait(small); // idempotent
    expect(s.waiting).toBe(2);
    s.release(30);
    expect(order).toEqual([]);
    await turn();
    expect(order).toEqual(['big', 'small']);
    expect(s.waiting).toBe(1);
    s.release(70);
    await turn();
    expect(order).toEqual(['big', 'small', 'big']);
    expect(s.used).toBe(100);
    s.cancel(big);
    s.release(10);
    await turn();
    expect(order).toHaveLength(3);
  });
});
