import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortError, CancelledError, InvalidArgError, linkSignal, onAbort, TimeoutError, throwIfAborted } from '../src/index.js';

const aborted = (s: AbortSignal) => new Promise<void>((r) => s.addEventListener('abort', () => r(), { once: true }));

const listenerCount = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

describe('linkSignal', () => {
  it('aborts with the parent’s reason, and detaches from the parent', () => {
    const parent = new AbortController();
    const link = linkSignal(parent.signal);
    expect(listenerCount(parent.signal)).toBe(1);
    expect(link.aborted).toBe(false);
    expect(link.reason).toBeUndefined();
    const why = new Error('user gave up');
    parent.abort(why);
    expect(link.signal.aborted).toBe(true);
    expect(link.reason).toBe(why);
    expect(listenerCount(parent.signal)).toBe(0);
  });

  it('an already-aborted parent gives an aborted signal at once, with no listener left behind', () => {
    const parent = new AbortController();
    parent.abort('gone');
    const link = linkSignal(parent.signal, { timeoutMs: 10_000 });
    expect(link.aborted).toBe(true);
    expect(link.reason).toBe('gone');
    expect(listenerCount(parent.signal)).toBe(0);
  });

  it('times out with a TimeoutError naming what and the peer', async () => {
    const link = linkSignal(undefined, { timeoutMs: 5, peer: 'tcp://10.0.0.1:8000', what: 'connect' });
    expect(link.remainingMs()).toBeLessThanOrEqual(5);
    await aborted(link.signal);
    expect(link.reason).toBeInstanceOf(TimeoutError);
    const e = link.reason as TimeoutError;
    expect(e.reason).toBe('connect timed out after 5 ms');
    expect(e.peer).toBe('tcp://10.0.0.1:8000');
    expect(link.remainingMs()).toBe(0);
  });

  it('a deadline already passed aborts at once; the earlier of deadline and timeout wins', () => {
    const past = linkSignal(undefined, { deadline: Date.now() - 1, what: 'call' });
    expect(past.reason).toBeInstanceOf(TimeoutError);
    expect((past.reason as TimeoutError).reason).toBe('call passed its deadline');
    const both = linkSignal(undefined, { timeoutMs: 60_000, deadline: Date.now() + 1_000 });
    expect(both.remainingMs()).toBeLessThanOrEqual(1_000);
    expect(both.remainingMs()).toBeGreaterThan(0);
    both.dispose();
    const none = linkSignal();
    expect(none.remainingMs()).toBe(Number.POSITIVE_INFINITY);
  });

  it('dispose() clears the timer and the parent listener: nothing fires afterwards', async () => {
    const parent = new AbortController();
    const link = linkSignal(parent.signal, { timeoutMs: 5 });
    link.dispose();
    link.dispose();
    expect(listenerCount(parent.signal)).toBe(0);
    await new Promise((r) => setTimeout(r, 30));
    parent.abort();
    expect(link.aborted).toBe(false);
  });

  it('abort() aborts once, with the given reason, and detaches', () => {
    const parent = new AbortController();
    const link = linkSignal(parent.signal);
    link.abort('mine');
    link.abort('second');
    expect(link.reason).toBe('mine');
    expect(listenerCount(parent.signal)).toBe(0);
  });

  it('refuses a negative or NaN timeout', () => {
    expect(() => linkSignal(undefined, { timeoutMs: -1 })).toThrow(InvalidArgError);
    expect(() => linkSignal(undefined, { deadline: Number.NaN })).toThrow(InvalidArgError);
  });
});

describe('onAbort', () => {
  it('runs once on abort with the reason; the disposer removes it', () => {
    const ac = new AbortController();
    const seen: unknown[] = [];
    const off = onAbort(ac.signal, (r) => seen.push(r));
    expect(listenerCount(ac.signal)).toBe(1);
    off();
    expect(listenerCount(ac.signal)).toBe(0);
    const ac2 = new AbortController();
    onAbort(ac2.signal, (r) => seen.push(r));
    ac2.abort('x');
    ac2.abort('y');
    expect(seen).toEqual(['x']);
  });

  it('runs at once for an already-aborted signal, and is a no-op without one', () => {
    const ac = new AbortController();
    ac.abort('early');
    const seen: unknown[] = [];
    const off = onAbort(ac.signal, (r) => seen.push(r));
    expect(seen).toEqual(['early']);
    off();
    expect(onAbort(undefined, () => seen.push('never'))).toBeTypeOf('function');
    expect(seen).toEqual(['early']);
  });
});

describe('abortError / throwIfAborted', () => {
  it('keeps an ffnet reason, maps a DOM timeout to TimeoutError and anything else to CancelledError', () => {
    const t = new TimeoutError('late');
    const a = new AbortController();
    a.abort(t);
    expect(abortError(a.signal)).toBe(t);

    const dom = AbortSignal.abort(new DOMException('signal timed out', 'TimeoutError'));
    const e1 = abortError(dom, 'unix:///run/s');
    expect(e1).toBeInstanceOf(TimeoutError);
    expect(e1.peer).toBe('unix:///run/s');
    expect(e1.cause).toBe(dom.reason);

    const plain = new AbortController();
    plain.abort();
    const e2 = abortError(plain.signal);
    expect(e2).toBeInstanceOf(CancelledError);
    expect(e2.cause).toBe(plain.signal.reason);
  });

  it('throwIfAborted throws only for an aborted signal', () => {
    expect(() => throwIfAborted(undefined)).not.toThrow();
    const ac = new AbortController();
    expect(() => throwIfAborted(ac.signal)).not.toThrow();
    ac.abort('stop');
    expect(() => throwIfAborted(ac.signal, 'tcp://h:1')).toThrow(CancelledError);
  });
});
