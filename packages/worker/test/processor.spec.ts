import { connect } from 'node:net';
import { FfnetError, InvalidArgError, StatusCode, encodeFrame } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallContext, encodeCancelNotice } from '../src/index.js';
import { type Pair, TestService, pair, rejection, sleep } from './helpers.js';

describe('Processor', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it('runs sync and async handlers and returns their values', async () => {
    const svc = new TestService({ 1: (_c, r) => r * 2, 2: async (_c, r) => `${r}!` });
    p = await pair(svc);
    const a = await p.call(7, 1, 21).result;
    const b = await p.call(7, 2, 'hi').result;
    expect(a.payload).toEqual({ ok: true, value: 42 });
    expect(b.payload).toEqual({ ok: true, value: 'hi!' });
    expect(svc.methods.get(1)!.calls).toBe(1);
  });

  it('turns throws into error responses with their code, and counts them; onError can rewrite', async () => {
    const svc = new TestService({
      1: () => {
        throw new FfnetError(4321, 'custom failure');
      },
      2: async () => {
        throw new Error('plain failure');
      },
      3: () => {
        throw new InvalidArgError('to be rewritten');
      },
    });
    svc.rewrite = (err) => (err.code === StatusCode.InvalidArg ? new FfnetError(777, 'rewritten') : undefined);
    p = await pair(svc);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: false, code: 4321, message: 'custom failure' });
    expect((await p.call(7, 2, null).result).payload).toEqual({ ok: false, code: StatusCode.Unknown, message: 'plain failure' });
    expect((await p.call(7, 3, null).result).payload).toEqual({ ok: false, code: 777, message: 'rewritten' });
    expect(svc.errorsSeen.map((e) => e.err.code)).toEqual([4321, StatusCode.Unknown, StatusCode.InvalidArg]);
    expect(svc.errorsSeen[0]!.req.methodId).toBe(1);
    expect(svc.methods.get(1)!.errors).toBe(1);
    expect(p.server.processor.processing).toBe(0);
  });

  it('answers InvalidMethodID for an unknown method or service', async () => {
    const svc = new TestService({ 1: () => 1 });
    p = await pair(svc);
    const m = (await p.call(7, 99, null).result).payload as { ok: false; code: number; message: string };
    const s = (await p.call(4242, 1, null).result).payload as { ok: false; code: number; message: string };
    expect(m.code).toBe(StatusCode.InvalidMethodID);
    expect(m.message).toContain('method 99');
    expect(s.code).toBe(StatusCode.InvalidMethodID);
    expect(s.message).toContain('service 4242');
    // The unknown method went through the service's onError; the unknown service has none.
    expect(svc.errorsSeen).toHaveLength(1);
    expect(p.server.processor.stats.invalidMethod).toBe(2);
  });

  it('refuses requests above maxProcessingRequests (3FS TooManyProcessingRequests)', async () => {
    const svc = new TestService({ 1: () => sleep(100).then(() => 'done') });
    p = await pair(svc, { server: { maxProcessingRequests: 10 } });
    const calls = Array.from({ length: 16 }, () => p!.call(7, 1, null));
    const results = await Promise.all(calls.map((c) => c.result));
    const refused = results.filter((r) => !(r.payload as { ok: boolean }).ok);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.length).toBe(6);
    for (const r of refused) expect((r.payload as { code: number }).code).toBe(StatusCode.RequestRefused);
    expect(svc.errorsSeen.length).toBe(refused.length);
    expect(p.server.processor.stats.refused).toBe(6);
  });

  it('drops requests while frozen and recovers when unfrozen', async () => {
    const svc = new TestService({ 1: () => 'ok' });
    p = await pair(svc);
    p.server.processor.setFrozen(true);
    const err = await rejection(p.call(7, 1, null, { timeoutMs: 100 }).result);
    expect(err.code).toBe(StatusCode.Timeout);
    expect(p.server.processor.stats.dropped).toBe(1);
    p.server.processor.setFrozen(false);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: true, value: 'ok' });
  });

  it('stop() waits for requests in flight and refuses new ones', async () => {
    let finished = false;
    // The slow handler runs until the test lets it finish, so "in flight" does not depend on how fast a loaded
    // machine delivers the request or how long a sleep really lasts.
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    let release: () => void = () => {};
    const released = new Promise<void>((r) => {
      release = r;
    });
    const svc = new TestService({
      1: async () => {
        started();
        await released;
        finished = true;
        return 'slow';
      },
      2: () => 'fast',
    });
    p = await pair(svc);
    const slow = p.call(7, 1, null);
    await running;
    expect(p.server.processor.processing).toBe(1);
    let stopDone = false;
    const stopped = p.server.processor.stop().then(() => {
      stopDone = true;
    });
    const refused = await p.call(7, 2, null).result;
    expect((refused.payload as { code: number }).code).toBe(StatusCode.RequestRefused);
    await sleep(20);
    expect(stopDone).toBe(false); // never before the request in flight is done
    release();
    await stopped;
    expect(finished).toBe(true);
    expect((await slow.result).payload).toEqual({ ok: true, value: 'slow' });
    p.server.processor.start();
    expect((await p.call(7, 2, null).result).payload).toEqual({ ok: true, value: 'fast' });
  });

  it('bounds a pooled method to its concurrency and runs the queue in order', async () => {
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const svc = new TestService({
      1: {
        concurrency: 2,
        fn: async (_c, n: number) => {
          running++;
          peak = Math.max(peak, running);
          order.push(n);
          await sleep(20);
          running--;
          return n;
        },
      },
    });
    p = await pair(svc);
    const calls = Array.from({ length: 6 }, (_, i) => p!.call(7, 1, i));
    const values = (await Promise.all(calls.map((c) => c.result))).map((r) => (r.payload as { value: number }).value);
    expect(values).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('runs a queue of synchronous pooled handlers without recursing', async () => {
    const svc = new TestService({ 1: { concurrency: 1, fn: (_c, n: number) => n + 1 } });
    p = await pair(svc);
    const calls = Array.from({ length: 3000 }, (_, i) => p!.call(7, 1, i, { timeoutMs: 10_000 }));
    const last = await calls[2999]!.result;
    expect(last.payload).toEqual({ ok: true, value: 3000 });
  });

  it('closes only the connection that sent an undecodable body', async () => {
    const svc = new TestService({ 1: () => 'ok' });
    p = await pair(svc);
    const port = Number(p.address.split(':').pop());
    const raw = connect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => raw.on('close', () => r()));
    raw.on('error', () => undefined);
    // CRC-valid frame whose body is not MessagePack (0xc1 is never used).
    raw.write(encodeFrame(Buffer.from([0xc1, 0xc1, 0xc1])));
    await closed;
    expect(p.server.processor.stats.badFrames).toBe(1);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: true, value: 'ok' });
  });

  it('aborts ctx.signal on a cancel notice', async () => {
    let seen: unknown;
    let onStart: () => void = () => {};
    const handlerStarted = new Promise<void>((r) => {
      onStart = r;
    });
    const svc = new TestService({
      1: (ctx: CallContext) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            seen = ctx.signal.reason;
            resolve('aborted');
          });
          onStart();
        }),
    });
    p = await pair(svc);
    const call = p.call(7, 1, null);
    await handlerStarted;
    call.transport!.send(encodeCancelNotice(call.uuid));
    expect((await call.result).payload).toEqual({ ok: true, value: 'aborted' });
    expect((seen as FfnetError).code).toBe(StatusCode.Cancelled);
    expect((seen as FfnetError).name).toBe('CancelledError');
    expect(p.server.processor.stats.cancelNotices).toBe(1);
  });

  it("aborts ctx.signal at the caller's deadline", async () => {
    let reason: FfnetError | undefined;
    const svc = new TestService({
      1: (ctx: CallContext) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason as FfnetError;
            resolve('late');
          });
        }),
    });
    p = await pair(svc);
    const err = await rejection(p.call(7, 1, null, { timeoutMs: 60 }).result);
    expect(err.code).toBe(StatusCode.Timeout);
    // The server's own deadline runs from when it received the request, so it may pass a little after the
    // client's: wait for it (bounded) rather than for a fixed time.
    for (let i = 0; i < 1000 && reason === undefined; i++) await sleep(5);
    expect(reason?.code).toBe(StatusCode.Timeout);
  });

  it('aborts ctx.signal when the connection dies', async () => {
    let onStart: () => void = () => {};
    const handlerStarted = new Promise<void>((r) => {
      onStart = r;
    });
    let onAbort: (reason: FfnetError) => void = () => {};
    const aborted = new Promise<FfnetError>((r) => {
      onAbort = r;
    });
    const svc = new TestService({
      1: (ctx: CallContext) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener('abort', () => {
            onAbort(ctx.signal.reason as FfnetError);
            resolve('never delivered');
          });
          onStart();
        }),
    });
    p = await pair(svc);
    const call = p.call(7, 1, null);
    await handlerStarted;
    p.client.io.dropConnections();
    const err = await rejection(call.result);
    expect([StatusCode.SocketClosed, StatusCode.SocketError]).toContain(err.code);
    expect([StatusCode.SocketClosed, StatusCode.SocketError]).toContain((await aborted).code);
    // The handler's promise settles a microtask later; its reply is dropped, but it still leaves the count.
    await sleep(1);
    expect(p.server.processor.processing).toBe(0);
  });
});
