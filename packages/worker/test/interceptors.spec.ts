import { encodeMessage, InvalidArgError, MessageFlags, type Metadata, StatusCode } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallContext, Processor, type ServerInterceptor } from '../src/index.js';
import { composeServerInterceptors } from '../src/internal.js';
import { type Pair, pair, rejection, TestCall, TestService } from './helpers.js';

/** A request with metadata, sent through the pair's client side. */
function callWith(p: Pair, methodId: number, payload: unknown, metadata: Metadata): TestCall {
  const call = new TestCall(`T.m${methodId}`);
  p.client.waiter.register(call, 2000);
  const frame = encodeMessage({ uuid: call.uuid, serviceId: 7, methodId, flags: MessageFlags.IsReq, version: 0, timeoutMs: 2000, payload, metadata });
  p.client.io.sendAsync(p.address, frame, call);
  return call;
}

describe('Processor interceptors', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it('are composed once, the first outermost, around the handler', async () => {
    const log: string[] = [];
    let composed = 0;
    const tag =
      (name: string): ServerInterceptor =>
      (next) => {
        composed++;
        return (ctx, req) => {
          log.push(`${name}>`);
          const r = next(ctx, req);
          log.push(`<${name}`);
          return r;
        };
      };
    const svc = new TestService({
      1: (_c, r) => {
        log.push('handler');
        return r * 2;
      },
    });
    p = await pair(svc, { server: { interceptors: [tag('a'), tag('b')] } });
    expect((await p.call(7, 1, 4).result).payload).toEqual({ ok: true, value: 8 });
    expect((await p.call(7, 1, 5).result).payload).toEqual({ ok: true, value: 10 });
    expect(log).toEqual(['a>', 'b>', 'handler', '<b', '<a', 'a>', 'b>', 'handler', '<b', '<a']);
    expect(composed).toBe(2);
  });

  it('none: no chain at all, so a request runs its handler directly', () => {
    expect(composeServerInterceptors(undefined)).toBeUndefined();
    expect(composeServerInterceptors([])).toBeUndefined();
    expect(() => new Processor({ interceptors: [42 as unknown as ServerInterceptor] })).toThrow(InvalidArgError);
    expect(() => new Processor({ interceptors: [(() => undefined) as unknown as ServerInterceptor] })).toThrow(InvalidArgError);
  });

  it('short-circuit with a value or a typed error; the error keeps its code', async () => {
    let ran = 0;
    const svc = new TestService({ 1: () => ++ran });
    const gate: ServerInterceptor = (next) => (ctx, req) => {
      if (req === 'cached') return 'cached value';
      if (req === 'deny') throw new InvalidArgError('denied by interceptor');
      return next(ctx, req);
    };
    p = await pair(svc, { server: { interceptors: [gate] } });
    expect((await p.call(7, 1, 'cached').result).payload).toEqual({ ok: true, value: 'cached value' });
    expect((await p.call(7, 1, 'deny').result).payload).toEqual({ ok: false, code: StatusCode.InvalidArg, message: 'denied by interceptor' });
    expect((await p.call(7, 1, 'go').result).payload).toEqual({ ok: true, value: 1 });
    expect(ran).toBe(1);
  });

  it('request metadata reaches ctx.metadata; ctx.responseMetadata comes back, with values and with errors', async () => {
    let seen: ReadonlyMap<string, unknown> | undefined;
    const svc = new TestService({
      1: (ctx: CallContext) => {
        seen = ctx.metadata;
        ctx.responseMetadata.set('x-out', new Uint8Array([5, 6]));
        return 'ok';
      },
      2: (ctx: CallContext) => {
        ctx.responseMetadata.set('retry-after-ms', '50');
        throw new InvalidArgError('nope');
      },
    });
    p = await pair(svc);
    const r = await callWith(p, 1, null, new Map([['x-in', 'hello']])).result;
    expect(seen!.get('x-in')).toBe('hello');
    expect(r.payload).toEqual({ ok: true, value: 'ok' });
    expect([...(r.metadata!.get('x-out') as Uint8Array)]).toEqual([5, 6]);
    const e = await callWith(p, 2, null, new Map()).result;
    expect(e.payload).toEqual({ ok: false, code: StatusCode.InvalidArg, message: 'nope' });
    expect(e.metadata!.get('retry-after-ms')).toBe('50');
    // A call without metadata sees an empty map; the response still carries what the handler set.
    const plain = await p.call(7, 1, null).result;
    expect(seen!.size).toBe(0);
    expect(plain.metadata!.has('x-out')).toBe(true);
  });

  it('request metadata over the processor limit refuses the frame: its connection closes, the server survives', async () => {
    const svc = new TestService({ 1: () => 'ok' });
    p = await pair(svc, { server: { metadataLimits: { maxEntries: 1 } } });
    const err = await rejection(
      callWith(
        p,
        1,
        null,
        new Map([
          ['a', '1'],
          ['b', '2'],
        ]),
      ).result,
    );
    expect([StatusCode.SocketClosed, StatusCode.SocketError]).toContain(err.code);
    expect(p.server.processor.stats.badFrames).toBe(1);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: true, value: 'ok' });
  });
});
