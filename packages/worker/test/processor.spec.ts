import { connect } from 'node:net';
import { encodeFrame, FfnetError, InvalidArgError, PermissionDeniedError, StatusCode } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallContext, type HandlerErrorInfo, RECENT_HANDLER_ERRORS } from '../src/index.js';
import { encodeCancelNotice, HandlerErrors } from '../src/internal.js';
import { type Pair, pair, rejection, sleep, TestService } from './helpers.js';

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
    // Not an FfnetError: masked (see 'handler errors that are not FfnetErrors').
    expect((await p.call(7, 2, null).result).payload).toEqual({ ok: false, code: StatusCode.Unknown, message: 'internal error' });
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

  it('requests of one read share the clock reading of that read (receivedAt, hence their deadlines)', async () => {
    const seen: { receivedAt: number; read: number; deadline: number; at: number }[] = [];
    const svc = new TestService({
      1: (ctx: CallContext) => {
        seen.push({ receivedAt: ctx.receivedAt, read: ctx.transport.readCount, deadline: ctx.deadline, at: performance.now() });
        // Each handler takes a while, so a clock read per request would tell them apart.
        const until = performance.now() + 3;
        while (performance.now() < until) {}
        return null;
      },
    });
    p = await pair(svc);
    // Sent in one turn: one write, so (loopback, a few bytes) one read on the server.
    const calls = [p.call(7, 1, 0, { timeoutMs: 5000 }), p.call(7, 1, 1, { timeoutMs: 5000 }), p.call(7, 1, 2, { timeoutMs: 5000 })];
    await Promise.all(calls.map((c) => c.result));
    expect(new Set(seen.map((s) => s.read)).size).toBe(1);
    expect(new Set(seen.map((s) => s.receivedAt)).size).toBe(1);
    for (const s of seen) {
      expect(s.receivedAt).toBeLessThanOrEqual(s.at);
      expect(s.deadline).toBe(s.receivedAt + 5000);
    }
    expect(seen[2]!.at - seen[0]!.receivedAt).toBeGreaterThanOrEqual(6);
    // A later read reads the clock again.
    await p.call(7, 1, 3).result;
    expect(seen[3]!.read).toBeGreaterThan(seen[0]!.read);
    expect(seen[3]!.receivedAt).toBeGreaterThan(seen[2]!.at);
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

describe('handler errors that are not FfnetErrors', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  const SECRET = "ENOENT: no such file or directory, open '/srv/secret/x'";
  /** Nothing of the thrown value may reach the caller: not its message, path, name or stack. */
  function expectMasked(payload: unknown): void {
    expect(payload).toEqual({ ok: false, code: StatusCode.Unknown, message: 'internal error' });
    expect(JSON.stringify(payload)).not.toMatch(/secret|ENOENT|srv|TypeError|getter|\.ts|at /);
  }

  it('reach the caller as 999 "internal error"; the original goes to the hook, recent() and the cause', async () => {
    const thrown = new Error(SECRET);
    const seen: { err: unknown; info: HandlerErrorInfo }[] = [];
    const svc = new TestService({
      1: () => {
        throw thrown;
      },
      2: async () => {
        throw new TypeError('cannot read /srv/secret/y');
      },
      3: () => {
        throw 'ENOENT /srv/secret/z';
      },
      4: () => {
        throw new PermissionDeniedError('not yours');
      },
      // A response that does not encode: the encoder's error quotes the getter's message.
      5: () => ({
        get x() {
          throw new Error('getter read /srv/secret/w');
        },
      }),
    });
    p = await pair(svc, { server: { onHandlerError: (err, info) => seen.push({ err, info }) } });
    for (const m of [1, 2, 3, 5]) expectMasked((await p.call(7, m, null).result).payload);
    // A typed error is the service's API: code and reason go out.
    expect((await p.call(7, 4, null).result).payload).toEqual({ ok: false, code: StatusCode.PermissionDenied, message: 'not yours' });

    expect(seen.map((s) => s.info.method)).toEqual(['T.m1', 'T.m2', 'T.m3', 'T.m5']);
    expect(seen[0]!.err).toBe(thrown);
    expect((seen[1]!.err as Error).message).toBe('cannot read /srv/secret/y');
    expect(seen[2]!.err).toBe('ENOENT /srv/secret/z');
    expect(seen[3]!.err).toBeInstanceOf(InvalidArgError);
    expect((seen[3]!.err as Error).message).toMatch(/getter read \/srv\/secret\/w/);
    expect(seen[0]!.info).toMatchObject({ service: 'T', peer: expect.stringMatching(/^tcp:\/\/127\.0\.0\.1:/), uuid: expect.any(Number) });

    const recent = p.server.processor.handlerErrors.recent();
    expect(recent.map((r) => r.error)).toEqual(seen.map((s) => s.err));
    expect(p.server.processor.handlerErrors.count).toBe(4);
    // onError sees the masked error, with the original as its (local) cause.
    const masked = svc.errorsSeen[0]!.err;
    expect(masked.code).toBe(StatusCode.Unknown);
    expect(masked.cause).toBe(thrown);
  });

  it('a service with exposeErrors sends the message', async () => {
    const svc = new TestService({
      1: () => {
        throw new Error(SECRET);
      },
    });
    svc.exposeErrors = true;
    p = await pair(svc);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: false, code: StatusCode.Unknown, message: SECRET });
    expect(p.server.processor.handlerErrors.count).toBe(0);
  });

  it("an onError hook's own plain failure is masked too", async () => {
    const svc = new TestService({
      1: () => {
        throw new FfnetError(4321, 'typed');
      },
    });
    svc.rewrite = () => {
      throw new Error(SECRET);
    };
    p = await pair(svc);
    expectMasked((await p.call(7, 1, null).result).payload);
    expect((p.server.processor.handlerErrors.recent()[0]!.error as Error).message).toBe(SECRET);
  });

  it('keeps only the most recent failures, and a throwing hook does not stop the answer', () => {
    const h = new HandlerErrors(() => {
      throw new Error('hook failed');
    });
    const info = { service: 'S', method: 'S.m', peer: 'tcp://127.0.0.1:1', uuid: 1 };
    const n = RECENT_HANDLER_ERRORS + 5;
    for (let i = 0; i < n; i++) {
      const err = h.toResponse(new Error(`e${i}`), false, { ...info, uuid: i }, true);
      expect(err.code).toBe(StatusCode.Unknown);
      expect(err.reason).toBe('internal error');
    }
    expect(h.count).toBe(n);
    const recent = h.recent();
    expect(recent).toHaveLength(RECENT_HANDLER_ERRORS);
    expect(recent.map((r) => r.uuid)).toEqual(Array.from({ length: RECENT_HANDLER_ERRORS }, (_, i) => i + 5));
  });
});
