import { TimerWheel } from '@ffnet/event';
import { type MessagePacket, okResult, SocketClosedError, StatusCode } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { Waiter } from '../src/index.js';
import { rejection, TestCall } from './helpers.js';

const fakeTransport = (peer: string) => ({ peer }) as unknown as Transport;

function response(uuid: number, value: unknown = 'ok'): MessagePacket {
  return { uuid, serviceId: 1, methodId: 1, flags: 0, version: 0, timeoutMs: 0, payload: okResult(value) };
}

describe('Waiter', () => {
  const wheels: TimerWheel[] = [];
  const newWaiter = () => {
    const wheel = new TimerWheel();
    wheels.push(wheel);
    return new Waiter({ wheel });
  };
  afterEach(() => {
    for (const w of wheels.splice(0)) w.close();
  });

  it('fires a timeout at about 50 ms (3FS TestWaiter)', async () => {
    const waiter = newWaiter();
    const call = new TestCall();
    const later = new TestCall();
    const start = performance.now();
    waiter.register(call, 50);
    waiter.register(later, 200);
    const err = await rejection(call.result);
    const elapsed = call.settledAt - start;
    expect(err.code).toBe(StatusCode.Timeout);
    expect(err.message).toContain('50 ms');
    // Never early, and at its own deadline rather than some later one: the 200 ms call registered with it settles
    // after it. Order, not a fixed upper bound, which a loaded shared machine can miss.
    expect(elapsed).toBeGreaterThanOrEqual(49);
    await rejection(later.result);
    expect(later.settledAt).toBeGreaterThan(call.settledAt);
    expect(later.settledAt - start).toBeGreaterThanOrEqual(199);
    expect(waiter.size).toBe(0);
    expect(waiter.stats.timeouts).toBe(2);
  });

  it('keeps two uuids apart: one answered, one timed out', async () => {
    const waiter = newWaiter();
    const a = new TestCall('A.a');
    const b = new TestCall('B.b');
    const ua = waiter.register(a, 50);
    const ub = waiter.register(b, 50);
    expect(ua).not.toBe(ub);
    expect(waiter.post(response(ub, 'for b'), fakeTransport('x'))).toBe(true);
    const pb = await b.result;
    expect(pb.payload).toEqual({ ok: true, value: 'for b' });
    expect((await rejection(a.result)).code).toBe(StatusCode.Timeout);
    // A response after the timeout is late, not unknown.
    expect(waiter.post(response(ua), fakeTransport('x'))).toBe(false);
    expect(waiter.stats.lateResponses).toBe(1);
    expect(waiter.stats.unknownResponses).toBe(0);
  });

  it('reports a timeout that fired before anyone waited', async () => {
    const waiter = newWaiter();
    const call = new TestCall();
    waiter.register(call, 10);
    await new Promise((r) => setTimeout(r, 60));
    expect(call.settled).toBe(true);
    expect((await rejection(call.result)).code).toBe(StatusCode.Timeout);
  });

  it('counts responses for uuids it never issued', () => {
    const waiter = newWaiter();
    expect(waiter.post(response(12345), fakeTransport('x'))).toBe(false);
    expect(waiter.post(response(0), fakeTransport('x'))).toBe(false);
    expect(waiter.stats.unknownResponses).toBe(2);
  });

  it('tells the transport of a timed-out call, whose backend decides whether to close it', async () => {
    const waiter = newWaiter();
    const told: unknown[] = [];
    const t = { peer: 'rdma://10.0.0.1:1', callTimedOut: (e: unknown) => told.push(e) } as unknown as Transport;
    const call = new TestCall();
    waiter.register(call, 20);
    waiter.bind(call, t);
    const err = await rejection(call.result);
    expect(err.code).toBe(StatusCode.Timeout);
    expect(told).toEqual([err]);
  });

  it('fails only the calls bound to a dead transport, at once', async () => {
    const waiter = newWaiter();
    const t1 = fakeTransport('tcp://10.0.0.1:1');
    const t2 = fakeTransport('tcp://10.0.0.2:2');
    const on1 = new TestCall();
    const on2 = new TestCall();
    const unbound = new TestCall();
    for (const c of [on1, on2, unbound]) waiter.register(c, 10_000);
    expect(waiter.bind(on1, t1)).toBe(true);
    expect(waiter.bind(on2, t2)).toBe(true);
    expect(on1.transport).toBe(t1);
    expect(on1.address).toBe(t1.peer);
    // Only the owner binds its own waiting calls.
    expect(newWaiter().bind(unbound, t1)).toBe(false);
    expect(unbound.transport).toBeUndefined();
    const err = new SocketClosedError('gone', { peer: t1.peer });
    expect(waiter.failTransport(t1, err)).toBe(1);
    expect(await rejection(on1.result)).toBe(err);
    expect(on2.settled).toBe(false);
    expect(unbound.settled).toBe(false);
    expect(waiter.stats.connectionFailures).toBe(1);
    waiter.failAll(err);
    expect(waiter.size).toBe(0);
  });

  it('settles a call once: a response after a failure is dropped', async () => {
    const waiter = newWaiter();
    const call = new TestCall();
    const uuid = waiter.register(call, 0);
    expect(call.fail(new SocketClosedError('x'))).toBe(true);
    expect(call.fail(new SocketClosedError('again'))).toBe(false);
    expect(waiter.post(response(uuid), fakeTransport('x'))).toBe(false);
    expect((await rejection(call.result)).message).toBe('x');
  });

  it('cancels the deadline of a call that got its response', async () => {
    const wheel = new TimerWheel();
    wheels.push(wheel);
    const waiter = new Waiter({ wheel });
    const call = new TestCall();
    const uuid = waiter.register(call, 1000);
    expect(wheel.size).toBe(1);
    waiter.post(response(uuid), fakeTransport('x'));
    expect(wheel.size).toBe(0);
    await call.result;
  });

  it('times out calls with mixed timeouts each at its own deadline, whatever settles in between', async () => {
    const wheel = new TimerWheel();
    wheels.push(wheel);
    const waiter = new Waiter({ wheel });
    const plan = [40, 80, 40, 0, 120, 80, 40];
    const calls = plan.map((ms) => {
      const call = new TestCall(`T.${ms}`);
      const start = performance.now();
      waiter.register(call, ms);
      return { call, ms, start };
    });
    // Settle one from the middle of each timeout's list and one from a head: the rest keep their deadlines.
    expect(waiter.post(response(calls[2]!.call.uuid), fakeTransport('x'))).toBe(true);
    expect(waiter.post(response(calls[1]!.call.uuid), fakeTransport('x'))).toBe(true);
    for (const { call, ms, start } of calls) {
      if (call === calls[1]!.call || call === calls[2]!.call) {
        await call.result;
        continue;
      }
      if (ms === 0) continue;
      const err = await rejection(call.result);
      expect(err.code).toBe(StatusCode.Timeout);
      expect(err.message).toContain(`${ms} ms`);
      expect(call.settledAt - start).toBeGreaterThanOrEqual(ms - 1);
    }
    expect(waiter.size).toBe(1);
    expect(calls[3]!.call.settled).toBe(false);
    expect(waiter.stats.timeouts).toBe(4);
    // Only the call without a deadline is left, and it holds no wheel entry.
    expect(wheel.size).toBe(0);
    waiter.failAll(new SocketClosedError('done'));
  });

  it('holds hundreds of calls in flight, matching each response to its own call', async () => {
    const waiter = newWaiter();
    const calls = Array.from({ length: 300 }, (_, i) => new TestCall(`T.${i}`));
    const uuids = calls.map((c) => waiter.register(c, 10_000));
    expect(new Set(uuids).size).toBe(300);
    expect(waiter.size).toBe(300);
    // Answer in an order unrelated to issue order.
    for (let i = 0; i < 300; i++) {
      const k = (i * 7) % 300;
      expect(waiter.post(response(uuids[k]!, k), fakeTransport('x'))).toBe(true);
    }
    for (let k = 0; k < 300; k++) expect((await calls[k]!.result).payload).toEqual({ ok: true, value: k });
    expect(waiter.size).toBe(0);
    expect(waiter.post(response(uuids[5]!), fakeTransport('x'))).toBe(false);
    expect(waiter.stats.lateResponses).toBe(1);
  });

  it('a call left pending while many others come and go keeps its uuid; new uuids skip it', async () => {
    const waiter = newWaiter();
    const old = new TestCall('Old.call');
    const oldUuid = waiter.register(old, 0);
    const seen = new Set<number>([oldUuid]);
    // Far more calls than slots, one at a time: the uuid sequence wraps around the table past the old call.
    for (let i = 0; i < 1000; i++) {
      const c = new TestCall();
      const uuid = waiter.register(c, 0);
      expect(seen.has(uuid)).toBe(false);
      seen.add(uuid);
      expect(waiter.post(response(uuid, i), fakeTransport('x'))).toBe(true);
      expect((await c.result).payload).toEqual({ ok: true, value: i });
    }
    expect(waiter.has(oldUuid)).toBe(true);
    expect(waiter.post(response(oldUuid, 'old'), fakeTransport('x'))).toBe(true);
    expect((await old.result).payload).toEqual({ ok: true, value: 'old' });
    expect(waiter.stats.unknownResponses).toBe(0);
  });

  it('failAll fails calls in the order they were registered', async () => {
    const waiter = newWaiter();
    const order: string[] = [];
    const calls = Array.from({ length: 100 }, (_, i) => new TestCall(`T.${i}`));
    for (const c of calls) {
      waiter.register(c, 1000);
      c.result.catch(() => order.push(c.label));
    }
    expect(waiter.failAll(new SocketClosedError('stop'))).toBe(100);
    await Promise.allSettled(calls.map((c) => c.result));
    expect(order).toEqual(calls.map((c) => c.label));
    expect(waiter.size).toBe(0);
  });

  it('refuses to register a call twice', () => {
    const waiter = newWaiter();
    const call = new TestCall();
    waiter.register(call, 0);
    expect(() => waiter.register(call, 0)).toThrow(/already registered/);
  });

  it('a held resource is released exactly once, when the call settles, by response, failure or timeout', async () => {
    const waiter = newWaiter();
    const released: string[] = [];
    const slot = (name: string) => ({ release: () => released.push(name) });
    const answered = new TestCall();
    const failed = new TestCall();
    const timed = new TestCall();
    waiter.register(answered, 10_000);
    waiter.register(failed, 10_000);
    waiter.register(timed, 20);
    expect(waiter.hold(answered.uuid, slot('answered'))).toBe(true);
    // A call keeps one resource: a second is refused and stays the caller's.
    expect(waiter.hold(answered.uuid, slot('second'))).toBe(false);
    expect(waiter.hold(failed.uuid, slot('failed'))).toBe(true);
    expect(waiter.hold(timed.uuid, slot('timed'))).toBe(true);
    expect(released).toEqual([]);

    expect(waiter.post(response(answered.uuid), fakeTransport('x'))).toBe(true);
    expect(released).toEqual(['answered']);
    failed.fail(new SocketClosedError('gone'));
    expect(released).toEqual(['answered', 'failed']);
    await rejection(timed.result);
    expect(released).toEqual(['answered', 'failed', 'timed']);
    await rejection(failed.result);
    await answered.result;

    // Nothing waits under a settled uuid, nor under one never issued.
    expect(waiter.hold(answered.uuid, slot('late'))).toBe(false);
    expect(waiter.hold(987654, slot('unknown'))).toBe(false);
    expect(released).toEqual(['answered', 'failed', 'timed']);
  });
});
