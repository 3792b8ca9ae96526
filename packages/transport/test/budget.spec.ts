import { InvalidArgError } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { type BudgetWaiter, ByteBudget } from '../src/index.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

describe('ByteBudget', () => {
  it('takes what fits, refuses what does not, and tracks use and peak', () => {
    const b = new ByteBudget(100, 'test budget');
    expect(b.tryAcquire(60)).toBe(true);
    expect(b.tryAcquire(41)).toBe(false);
    expect(b.used).toBe(60);
    expect(b.tryAcquire(40)).toBe(true);
    expect(b.tryAcquire(1)).toBe(false);
    b.release(70);
    expect(b.stats).toEqual({ limit: 100, used: 30, peak: 100, waiting: 0 });
    // force() is for what must pass: it may go over, and shows in the peak.
    b.force(90);
    expect(b.used).toBe(120);
    expect(b.stats.peak).toBe(120);
    expect(b.tryAcquire(1)).toBe(false);
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => new ByteBudget(0)).toThrow(InvalidArgError);
    expect(() => new ByteBudget(1.5)).toThrow(InvalidArgError);
  });

  it('wakes waiters oldest first after a release, on a later turn, until each is satisfied', async () => {
    const b = new ByteBudget(100);
    expect(b.tryAcquire(100)).toBe(true);
    const order: string[] = [];
    const waiter = (name: string, n: number): BudgetWaiter => ({
      onBudget: () => {
        order.push(name);
        return b.tryAcquire(n);
      },
    });
    const big = waiter('big', 80);
    const small = waiter('small', 20);
    b.wait(big);
    b.wait(small);
    expect(b.stats.waiting).toBe(2);
    b.release(30);
    // Not inside release(): the releasing code finishes first.
    expect(order).toEqual([]);
    await turn();
    // big does not fit yet and keeps its place; small does and leaves.
    expect(order).toEqual(['big', 'small']);
    expect(b.stats.waiting).toBe(1);
    b.release(70);
    await turn();
    expect(order).toEqual(['big', 'small', 'big']);
    expect(b.stats.waiting).toBe(0);
    expect(b.used).toBe(100);
    b.cancel(big);
    b.release(10);
    await turn();
    expect(order).toHaveLength(3);
  });
});
