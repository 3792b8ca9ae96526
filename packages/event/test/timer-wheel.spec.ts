import { setTimeout as sleep } from 'node:timers/promises';
import { FfnetError, StatusCode } from '@ffnet/common';
import { describe, expect, it } from 'vitest';
import { type TimerHandle, TimerWheel } from '../src/index.js';

// How long a due entry may wait beyond what the event loop itself was held up meanwhile (Node's timer granularity
// is 1 ms, plus the wheel's re-arm after an early wake-up). A fixed lateness bound fails on a loaded machine: the
// process can be descheduled for longer than that, and when the CPU is short, entries that fall due while the
// wheel is still firing earlier ones queue behind them. What the wheel itself answers for is the time an entry
// waits once it is due and the entry before it has fired; that is judged against the longest stall a plain Node
// timer saw in the same window (LoopGaps). A wheel armed for the wrong deadline, or that leaves a due entry for a
// later wake-up, exceeds it.
const SLACK_MS = 50;
/** An upper bound only for "it eventually fires": generous, for a shared, loaded 2-core machine. */
const EVENTUALLY_MS = 20_000;

/** Records the longest gap between consecutive ticks of a 1 ms interval: the loop's worst stall meanwhile. */
class LoopGaps {
  max = 0;
  #last = performance.now();
  readonly #timer = setInterval(() => {
    const now = performance.now();
    this.max = Math.max(this.max, now - this.#last);
    this.#last = now;
  }, 1);
  /** Includes the stretch since the last tick, so a stall at the very end is counted too. */
  stop(): number {
    clearInterval(this.#timer);
    this.max = Math.max(this.max, performance.now() - this.#last);
    return this.max;
  }
}

const until = (cond: () => boolean): Promise<void> =>
  new Promise((resolve, reject) => {
    const giveUp = performance.now() + EVENTUALLY_MS;
    const poll = () => {
      if (cond()) resolve();
      else if (performance.now() > giveUp) reject(new Error(`condition not met within ${EVENTUALLY_MS} ms`));
      else setTimeout(poll, 2);
    };
    poll();
  });

describe('TimerWheel at scale', () => {
  it('100k deadlines over 1-2 s fire in deadline order, never early, no later than the loop allowed; cancelled ones never fire', async () => {
    const N = 100_000;
    const wheel = new TimerWheel();
    const deadlines = new Float64Array(N);
    const firedAt = new Float64Array(N).fill(-1);
    const cancelled = new Uint8Array(N);
    const handles: TimerHandle[] = new Array(N);
    const order: number[] = [];
    let expected = N;

    // A few cancels also happen while the batch runs: each early callback cancels a random still-pending entry.
    let midRunCancels = 0;
    const onFire = (i: number): void => {
      firedAt[i] = performance.now();
      order.push(i);
      if (midRunCancels < 1000) {
        const j = Math.floor(Math.random() * N);
        if (firedAt[j] === -1 && cancelled[j] === 0) {
          expect(wheel.cancel(handles[j] as TimerHandle)).toBe(true);
          cancelled[j] = 1;
          expected--;
          midRunCancels++;
        }
      }
    };

    const base = performance.now();
    for (let i = 0; i < N; i++) {
      deadlines[i] = base + 1000 + Math.random() * 1000;
      handles[i] = wheel.schedule(deadlines[i] as number, onFire, i);
    }
    expect(wheel.size).toBe(N);
    for (let i = 0; i < N; i++) {
      if (Math.random() < 0.5) {
        expect(wheel.cancel(handles[i] as TimerHandle)).toBe(true);
        cancelled[i] = 1;
        expected--;
      }
    }
    expect(wheel.size).toBe(expected);
    // Started after the synchronous set-up above, which would otherwise count as a stall. On a loaded machine the
    // set-up can outlast the first deadlines: nothing can fire before the loop is free, at setUpDone.
    const setUpDone = performance.now();
    const gaps = new LoopGaps();

    await until(() => order.length === expected && performance.now() > base + 2000 + SLACK_MS);
    const maxGap = gaps.stop();
    expect(wheel.size).toBe(0);
    expect(midRunCancels).toBeGreaterThan(0);

    const outOfOrder: number[] = [];
    for (let k = 1; k < order.length; k++) {
      if ((deadlines[order[k] as number] as number) < (deadlines[order[k - 1] as number] as number)) outOfOrder.push(k);
    }
    const early: number[] = [];
    const tooLate: number[] = [];
    const firedCancelled: number[] = [];
    const missing: number[] = [];
    for (let i = 0; i < N; i++) {
      const at = firedAt[i] as number;
      if (cancelled[i]) {
        if (at !== -1) firedCancelled.push(i);
        continue;
      }
      if (at === -1) {
        missing.push(i);
        continue;
      }
      if (at < (deadlines[i] as number)) early.push(i);
    }
    // Waiting while due: from its deadline, or from when the entry before it fired (or the set-up ended) if later.
    let maxWait = 0;
    for (let k = 0; k < order.length; k++) {
      const i = order[k] as number;
      const prev = k > 0 ? (firedAt[order[k - 1] as number] as number) : setUpDone;
      const wait = (firedAt[i] as number) - Math.max(deadlines[i] as number, prev);
      if (wait > maxGap + SLACK_MS) tooLate.push(i);
      maxWait = Math.max(maxWait, wait);
    }
    expect({ outOfOrder, early, tooLate, firedCancelled, missing }).toEqual({
      outOfOrder: [],
      early: [],
      tooLate: [],
      firedCancelled: [],
      missing: [],
    });
    expect(order.length).toBe(expected);
    expect(maxWait).toBeLessThanOrEqual(maxGap + SLACK_MS);
    wheel.close();
  });
});

describe('TimerWheel edge cases', () => {
  it('a deadline in the past fires promptly, once', async () => {
    const wheel = new TimerWheel();
    const deadline = performance.now() - 1000;
    const log: string[] = [];
    wheel.schedule(deadline, () => log.push('wheel'));
    // Promptly = on the next timer turn: before a plain 20 ms timer armed just after it. Node runs due timers in
    // expiry order, so this holds however late the loop gets to both.
    setTimeout(() => log.push('20 ms timer'), 20);
    await until(() => log.length === 2);
    await sleep(10);
    expect(log).toEqual(['wheel', '20 ms timer']);
    expect(wheel.size).toBe(0);
  });

  it('cancel after fire, or twice, is a no-op returning false and leaves other entries alone', async () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    const a = wheel.scheduleAfter(1, (s: string) => fired.push(s), 'a');
    // Far enough out that a loaded machine does not get to it before the checks below run.
    wheel.scheduleAfter(1000, (s: string) => fired.push(s), 'b');
    await until(() => fired.length >= 1);
    expect(fired).toEqual(['a']);
    expect(a.pending).toBe(false);
    expect(wheel.cancel(a)).toBe(false);
    expect(wheel.size).toBe(1);
    const c = wheel.scheduleAfter(20, (s: string) => fired.push(s), 'c');
    expect(wheel.cancel(c)).toBe(true);
    expect(wheel.cancel(c)).toBe(false);
    expect(c.pending).toBe(false);
    await until(() => fired.length === 2);
    expect(fired).toEqual(['a', 'b']);
  });

  it('a callback may schedule more: due ones run on a later turn, not in the same batch', async () => {
    const wheel = new TimerWheel();
    const log: string[] = [];
    const t = performance.now();
    wheel.schedule(t, () => {
      log.push('first');
      setImmediate(() => log.push('immediate'));
      wheel.schedule(t - 5, () => log.push('past, scheduled in callback'));
      wheel.scheduleAfter(15, () => log.push('future, scheduled in callback'));
    });
    await until(() => log.length === 4);
    expect(log).toEqual(['first', 'immediate', 'past, scheduled in callback', 'future, scheduled in callback']);
    expect(wheel.size).toBe(0);
  });

  it('a callback may cancel an entry due in the same batch', async () => {
    const wheel = new TimerWheel();
    const log: string[] = [];
    const t = performance.now() + 5;
    let victim: TimerHandle | undefined;
    wheel.schedule(t, () => {
      log.push('killer');
      expect(wheel.cancel(victim as TimerHandle)).toBe(true);
    });
    victim = wheel.schedule(t, () => log.push('victim'));
    wheel.schedule(t + 10, () => log.push('after'));
    await until(() => log.length === 2);
    await sleep(10);
    expect(log).toEqual(['killer', 'after']);
  });

  it('equal deadlines fire in scheduling order; targets get onTimeout(arg) with their own this', async () => {
    const wheel = new TimerWheel();
    const log: string[] = [];
    class Call {
      constructor(readonly id: string) {}
      onTimeout(arg: number): void {
        log.push(`${this.id}:${arg}`);
      }
    }
    const t = performance.now() + 5;
    for (const id of ['x', 'y', 'z']) wheel.schedule(t, new Call(id), log.length + 1);
    wheel.schedule(t, { onTimeout: () => log.push('plain') });
    await until(() => log.length === 4);
    expect(log).toEqual(['x:1', 'y:1', 'z:1', 'plain']);
  });

  it('an earlier deadline scheduled later re-arms the timer; nextDeadline tracks the head', async () => {
    const wheel = new TimerWheel();
    const log: string[] = [];
    const t = performance.now();
    const late = wheel.schedule(t + 5_000, () => log.push('late'));
    wheel.schedule(t + 10, () => log.push('early'));
    expect(wheel.nextDeadline).toBe(t + 10);
    await until(() => log.length === 1);
    expect(log).toEqual(['early']);
    expect(wheel.nextDeadline).toBe(t + 5_000);
    wheel.cancel(late);
    expect(wheel.nextDeadline).toBeUndefined();
  });

  it('after the last entry is cancelled, later and earlier deadlines still fire on time, never early', async () => {
    // An unref'd wheel keeps its Node timer armed for the cancelled deadline; what comes next must not be
    // fired by that spare timer early, nor wait for it when due sooner.
    const wheel = new TimerWheel();
    const fired: { name: string; at: number; deadline: number }[] = [];
    const add = (name: string, delay: number) => {
      const deadline = performance.now() + delay;
      return wheel.schedule(deadline, () => fired.push({ name, at: performance.now(), deadline }));
    };
    // "On time" is judged by order against plain Node timers armed alongside, SLACK_MS after each deadline:
    // Node fires due timers in expiry order, so a wheel that waits for its spare timer (5 s or 10 s away) fires
    // after the probe however loaded the machine is, and a correct one before it.
    const probe = (name: string, delay: number) => setTimeout(() => fired.push({ name, at: -1, deadline: -1 }), delay + SLACK_MS);
    wheel.cancel(add('cancelled-soon', 20));
    add('after', 60);
    probe('probe after', 60);
    wheel.cancel(add('cancelled-far', 10_000));
    await until(() => fired.length === 2);
    wheel.cancel(add('cancelled-again', 5_000));
    add('sooner', 15);
    probe('probe sooner', 15);
    await until(() => fired.length === 4);
    expect(fired.map((f) => f.name)).toEqual(['after', 'probe after', 'sooner', 'probe sooner']);
    for (const f of fired) expect(f.at).toBeGreaterThanOrEqual(f.deadline);
    expect(wheel.size).toBe(0);
    wheel.close();
  });

  it('a deadline beyond setTimeout range stays pending without overflow', async () => {
    const wheel = new TimerWheel();
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const far = wheel.scheduleAfter(2 ** 33, () => {});
      await sleep(20);
      expect(far.pending).toBe(true);
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      wheel.close();
    }
  });

  it('close() drops pending entries unfired, is idempotent, and later schedule() is a typed error', async () => {
    const wheel = new TimerWheel();
    let calls = 0;
    const h = wheel.scheduleAfter(5, () => calls++);
    wheel.close();
    wheel.close();
    expect(wheel.closed).toBe(true);
    expect(wheel.size).toBe(0);
    expect(h.pending).toBe(false);
    expect(wheel.cancel(h)).toBe(false);
    await sleep(30);
    expect(calls).toBe(0);
    expect(() => wheel.schedule(performance.now(), () => {})).toThrow(/closed wheel/);
  });

  it('rejects a non-finite deadline, a bad target and a foreign handle', () => {
    const wheel = new TimerWheel();
    const other = new TimerWheel();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      let caught: unknown;
      try {
        wheel.schedule(bad, () => {});
      } catch (e) {
        caught = e;
      }
      expect(FfnetError.is(caught) && caught.code === StatusCode.InvalidArg).toBe(true);
    }
    expect(() => wheel.schedule(1, {} as unknown as () => void)).toThrow(/onTimeout/);
    const mine = wheel.scheduleAfter(1000, () => {});
    const foreign = other.scheduleAfter(1000, () => {});
    expect(wheel.cancel(foreign)).toBe(false);
    expect(mine.pending && foreign.pending).toBe(true);
    wheel.close();
    other.close();
  });
});
