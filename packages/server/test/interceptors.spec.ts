import {
  CancelledError,
  defineService,
  FfnetError,
  MessageTooLargeError,
  type Metadata,
  method,
  RequestRefusedError,
  StatusCode,
  TimeoutError,
  UnauthenticatedError,
  UnknownError,
} from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallContext, Client, type ClientInterceptor, implement, retry, Server, type ServerInterceptor } from '../src/index.js';
import { groupConfig } from './helpers.js';

const Svc = defineService({
  name: 'Icpt',
  id: 710,
  methods: {
    hello: method<{ name: string }, string>(1),
    meta: method<Record<string, never>, Record<string, string>>(2),
    flaky: method<{ key: string }, number>(3),
    slow: method<{ ms: number }, string>(4),
  },
});

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop();
});

const attemptsByKey = new Map<string, number>();

function service() {
  return implement(Svc, {
    hello: (ctx, req) => `hello ${req.name} via ${ctx.name}`,
    meta: (ctx) => {
      ctx.responseMetadata.set('x-echo', String(ctx.metadata.get('x-in') ?? 'none'));
      ctx.responseMetadata.set('x-bin', new Uint8Array([1, 2, 3]));
      const bin = ctx.metadata.get('x-bin-in');
      return { kinds: bin instanceof Uint8Array ? `bin:${[...bin].join(',')}` : 'nobin' };
    },
    flaky: (_ctx, req) => {
      const n = (attemptsByKey.get(req.key) ?? 0) + 1;
      attemptsByKey.set(req.key, n);
      if (n < 3) throw new RequestRefusedError(`not yet (attempt ${n})`);
      return n;
    },
    slow: async (ctx, req) => {
      await new Promise<void>((r) => setTimeout(r, req.ms));
      return `slept, aborted=${ctx.aborted}`;
    },
  });
}

async function start(opts: { interceptors?: ServerInterceptor[]; groupInterceptors?: ServerInterceptor[] } = {}): Promise<string> {
  const s = new Server({
    groups: [{ ...groupConfig('tcp'), ...(opts.groupInterceptors ? { processor: { interceptors: opts.groupInterceptors } } : {}) }],
    ...(opts.interceptors ? { interceptors: opts.interceptors } : {}),
  });
  s.addService(service());
  await s.start();
  running.push(s);
  return s.addresses[0]!;
}

function client(interceptors?: ClientInterceptor[]): Client {
  const c = new Client(interceptors ? { interceptors } : {});
  running.push(c);
  return c;
}

describe('server interceptors', () => {
  it('compose outermost first, server-wide outside the group ones, around the handler and back', async () => {
    const log: string[] = [];
    const tag =
      (name: string): ServerInterceptor =>
      (next) =>
      async (ctx, req) => {
        log.push(`${name}>`);
        const r = await next(ctx, req);
        log.push(`<${name}`);
        return r;
      };
    const addr = await start({ interceptors: [tag('a'), tag('b')], groupInterceptors: [tag('c')] });
    expect(await client().stub(Svc, addr).hello({ name: 'x' })).toBe('hello x via Icpt.hello');
    expect(log).toEqual(['a>', 'b>', 'c>', '<c', '<b', '<a']);
  });

  it('see service, method, metadata, deadline, signal and peer', async () => {
    let seen: Record<string, unknown> | undefined;
    const look: ServerInterceptor = (next) => (ctx: CallContext, req) => {
      seen = {
        service: ctx.service.name,
        serviceId: ctx.serviceId,
        method: ctx.method.name,
        methodId: ctx.methodId,
        token: ctx.metadata.get('authorization'),
        deadlineLeft: ctx.deadline - performance.now(),
        signal: ctx.signal instanceof AbortSignal && !ctx.signal.aborted,
        peer: ctx.peer,
      };
      return next(ctx, req);
    };
    const addr = await start({ interceptors: [look] });
    await client()
      .stub(Svc, addr)
      .hello({ name: 'x' }, { timeoutMs: 5000, metadata: new Map([['authorization', 'Bearer t']]) });
    expect(seen).toMatchObject({ service: 'Icpt', serviceId: 710, method: 'Icpt.hello', methodId: 1, token: 'Bearer t', signal: true });
    expect(seen!.deadlineLeft as number).toBeGreaterThan(0);
    expect(seen!.deadlineLeft as number).toBeLessThanOrEqual(5000);
    expect(seen!.peer as string).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  });

  it('short-circuit with a value or a typed error, which the caller gets with the peer', async () => {
    const auth: ServerInterceptor = (next) => (ctx, req) => {
      if (ctx.metadata.get('authorization') !== 'Bearer good') throw new UnauthenticatedError('missing or bad token');
      if (ctx.methodId === 1 && (req as { name: string }).name === 'cached') return 'from cache';
      return next(ctx, req);
    };
    const addr = await start({ interceptors: [auth] });
    const stub = client().stub(Svc, addr);
    const err = await stub.hello({ name: 'x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnauthenticatedError);
    expect((err as FfnetError).code).toBe(StatusCode.Unauthenticated);
    expect((err as FfnetError).peer).toBe(addr);
    const good = { metadata: new Map([['authorization', 'Bearer good']]) };
    expect(await stub.hello({ name: 'cached' }, good)).toBe('from cache');
    expect(await stub.hello({ name: 'y' }, good)).toBe('hello y via Icpt.hello');
  });

  it('a plain Error thrown by an interceptor is masked as 999, as a handler throw', async () => {
    const boom: ServerInterceptor = () => () => {
      throw new Error('secret detail');
    };
    const addr = await start({ interceptors: [boom] });
    const err = await client()
      .stub(Svc, addr)
      .hello({ name: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownError);
    expect((err as Error).message).not.toContain('secret detail');
  });

  it('can retry the handler by calling next again', async () => {
    const again: ServerInterceptor = (next) => async (ctx, req) => {
      for (;;) {
        try {
          return await next(ctx, req);
        } catch (e) {
          if (!(e instanceof RequestRefusedError)) throw e;
        }
      }
    };
    const addr = await start({ interceptors: [again] });
    expect(await client().stub(Svc, addr).flaky({ key: 'server-retry' })).toBe(3);
  });
});

describe('metadata round trip', () => {
  it('string and binary values both ways, with and without interceptors', async () => {
    const addr = await start();
    const rsp: Metadata = new Map();
    const md = new Map<string, string | Uint8Array>([
      ['x-in', 'hi'],
      ['x-bin-in', new Uint8Array([9, 8])],
    ]);
    const out = await client().stub(Svc, addr).meta({}, { metadata: md, responseMetadata: rsp });
    expect(out).toEqual({ kinds: 'bin:9,8' });
    expect(rsp.get('x-echo')).toBe('hi');
    expect([...(rsp.get('x-bin') as Uint8Array)]).toEqual([1, 2, 3]);

    // Through a client interceptor that adds metadata and reads the response's.
    let seen: string | undefined;
    const c = client([
      (next) => async (call) => {
        call.metadata.set('x-in', 'from-interceptor');
        const r = await next(call);
        seen = call.responseMetadata.get('x-echo') as string;
        return r;
      },
    ]);
    await c.stub(Svc, addr).meta({});
    expect(seen).toBe('from-interceptor');
  });

  it('a handler cannot write the request metadata of a call that sent none', async () => {
    const addr = await start({
      interceptors: [
        (next) => (ctx, req) => {
          (ctx.metadata as Metadata).set('x', 'y');
          return next(ctx, req);
        },
      ],
    });
    const err = await client()
      .stub(Svc, addr)
      .hello({ name: 'x' })
      .catch((e: unknown) => e);
    expect((err as FfnetError).code).toBe(StatusCode.InvalidArg);
    expect((err as Error).message).toContain('read-only');
  });

  it('limits: too much request metadata fails locally, too much response metadata reaches the caller typed', async () => {
    const addr = await start({
      interceptors: [
        (next) => (ctx, req) => {
          if (ctx.methodId === 1) ctx.responseMetadata.set('big', 'x'.repeat(10_000));
          return next(ctx, req);
        },
      ],
    });
    const stub = client().stub(Svc, addr);
    const tooBig = await stub.meta({}, { metadata: new Map([['big', 'x'.repeat(9000)]]) }).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(MessageTooLargeError);
    expect((tooBig as FfnetError).peer).toBe(addr);
    const rspTooBig = await stub.hello({ name: 'x' }).catch((e: unknown) => e);
    expect(rspTooBig).toBeInstanceOf(MessageTooLargeError);
    // The connection survived both: the next call works.
    expect(await stub.meta({})).toEqual({ kinds: 'nobin' });
  });

  it('received metadata over the receiver limit refuses the frame with a typed error', async () => {
    const addr = await start();
    const c = new Client({ metadataLimits: { maxBytes: 4 } });
    running.push(c);
    // The response carries 'x-echo' + 'none' + 'x-bin' + 3 bytes, over 4: the client refuses it.
    const err = await c
      .stub(Svc, addr)
      .meta({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FfnetError);
    expect([StatusCode.SocketError, StatusCode.MessageTooLarge]).toContain((err as FfnetError).code);
    const cause = (err as FfnetError).cause;
    expect(err instanceof MessageTooLargeError || cause instanceof MessageTooLargeError).toBe(true);
  });
});

describe('client interceptors', () => {
  it('compose outermost first and see service, method, ids, deadline, signal and peer', async () => {
    const addr = await start();
    const log: string[] = [];
    const seen: unknown[] = [];
    const tag =
      (name: string): ClientInterceptor =>
      (next) =>
      async (call) => {
        log.push(`${name}>`);
        seen.push([call.service, call.method, call.serviceId, call.methodId, call.peer, call.signal !== undefined, call.deadline > performance.now()]);
        const r = await next(call);
        log.push(`<${name}`);
        return r;
      };
    const ac = new AbortController();
    const c = client([tag('a'), tag('b')]);
    expect(await c.stub(Svc, addr).hello({ name: 'x' }, { signal: ac.signal })).toBe('hello x via Icpt.hello');
    expect(log).toEqual(['a>', 'b>', '<b', '<a']);
    expect(seen[0]).toEqual(['Icpt', 'hello', 710, 1, addr, true, true]);
  });

  it('short-circuit with a value, or with an error that reaches the caller typed with the peer', async () => {
    const addr = await start();
    const c = client([
      (next) => (call) => {
        if ((call.request as { name: string }).name === 'local') return Promise.resolve('answered locally');
        if ((call.request as { name: string }).name === 'deny') throw new UnauthenticatedError('no credentials');
        if ((call.request as { name: string }).name === 'plain') return Promise.reject(new Error('oops'));
        return next(call);
      },
    ]);
    const stub = c.stub(Svc, addr);
    expect(await stub.hello({ name: 'local' })).toBe('answered locally');
    const denied = await stub.hello({ name: 'deny' }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(UnauthenticatedError);
    expect((denied as FfnetError).peer).toBe(addr);
    const plain = await stub.hello({ name: 'plain' }).catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(UnknownError);
    expect((plain as FfnetError).peer).toBe(addr);
    expect((plain as FfnetError).cause).toBeInstanceOf(Error);
  });

  it('retry() resends what never reached a handler (RequestRefused), up to maxRetries', async () => {
    const addr = await start();
    const c = client([retry({ maxRetries: 3, backoffMs: 1 })]);
    expect(await c.stub(Svc, addr).flaky({ key: 'client-retry' })).toBe(3);
    const fewer = client([retry({ maxRetries: 1, backoffMs: 1 })]);
    const err = await fewer
      .stub(Svc, addr)
      .flaky({ key: 'client-retry-2' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestRefusedError);
    expect(attemptsByKey.get('client-retry-2')).toBe(2);
  });

  it('retry() resends a Timeout only for idempotent methods', async () => {
    // The server answers Timeout twice per name (as a handler whose own downstream call timed out would), then ok.
    const seenByName = new Map<string, number>();
    const addr = await start({
      interceptors: [
        (next) => (ctx, req) => {
          const name = (req as { name: string }).name;
          const n = (seenByName.get(name) ?? 0) + 1;
          seenByName.set(name, n);
          if (n < 3) throw new TimeoutError('downstream timed out');
          return next(ctx, req);
        },
      ],
    });
    const c = client([retry({ maxRetries: 5, backoffMs: 1 })]);
    const stub = c.stub(Svc, addr);
    expect(await stub.hello({ name: 'a' }).catch((e: unknown) => e)).toBeInstanceOf(TimeoutError);
    expect(seenByName.get('a')).toBe(1);
    expect(await stub.hello({ name: 'b' }, { idempotent: true })).toBe('hello b via Icpt.hello');
    expect(seenByName.get('b')).toBe(3);
    const named = client([retry({ maxRetries: 5, backoffMs: 1, idempotent: ['Icpt.hello'] })]);
    expect(await named.stub(Svc, addr).hello({ name: 'c' })).toBe('hello c via Icpt.hello');
    expect(seenByName.get('c')).toBe(3);
  });

  it('retry() stops at the call deadline: attempts share it', async () => {
    const addr = await start();
    let attempts = 0;
    const c = client([
      retry({ maxRetries: 5, backoffMs: 0 }),
      (next) => (call) => {
        attempts++;
        return next(call);
      },
    ]);
    const err = await c
      .stub(Svc, addr)
      .slow({ ms: 400 }, { timeoutMs: 100, idempotent: true })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    // The deadline itself passed: no time is left for another attempt.
    expect(attempts).toBe(1);
  });

  it('retry() never retries a call the caller cancelled', async () => {
    const addr = await start();
    let attempts = 0;
    const c = client([
      retry({ maxRetries: 5, backoffMs: 0 }),
      (next) => (call) => {
        attempts++;
        return next(call);
      },
    ]);
    const ac = new AbortController();
    const p = c.stub(Svc, addr).slow({ ms: 300 }, { signal: ac.signal, idempotent: true });
    setTimeout(() => ac.abort(), 50);
    expect(await p.catch((e: unknown) => e)).toBeInstanceOf(CancelledError);
    expect(attempts).toBe(1);
  });
});
