import { describe, expect, expectTypeOf, it } from 'vitest';
import { defineService, InvalidArgError, type MethodDef, type MethodNames, method, type RequestOf, type ResponseOf, type ServiceDef } from '../src/index.js';

interface EchoReq {
  str: string;
}
interface EchoRsp {
  str: string;
  len: number;
}

const Echo = defineService({
  name: 'Echo',
  id: 10000,
  methods: {
    echo: method<EchoReq, EchoRsp>(1),
    ping: method<void, number>(2),
    loose: { id: 3 },
  },
});

describe('defineService', () => {
  it('keeps name, ids and method names, frozen', () => {
    expect(Echo.name).toBe('Echo');
    expect(Echo.id).toBe(10000);
    expect(Echo.methods.echo).toEqual({ id: 1, name: 'echo' });
    expect(Echo.methods.ping.name).toBe('ping');
    expect(Object.isFrozen(Echo)).toBe(true);
    expect(Object.isFrozen(Echo.methods)).toBe(true);
    expect(Object.isFrozen(Echo.methods.echo)).toBe(true);
    expect(() => {
      (Echo.methods as Record<string, unknown>).extra = { id: 9 };
    }).toThrow(TypeError);
  });

  it('looks methods up by wire id', () => {
    expect(Echo.methodById(1)).toBe(Echo.methods.echo);
    expect(Echo.methodById(3)?.name).toBe('loose');
    expect(Echo.methodById(4)).toBeUndefined();
  });

  it('rejects duplicate method ids', () => {
    expect(() => defineService({ name: 'Dup', id: 1, methods: { a: { id: 7 }, b: method(7) } })).toThrow(InvalidArgError);
    expect(() => defineService({ name: 'Dup', id: 1, methods: { a: { id: 7 }, b: method(7) } })).toThrow(/a and b both have id 7/);
  });

  it('rejects method ids outside u16', () => {
    for (const id of [-1, 65536, 1.5, Number.NaN, '1' as unknown as number]) {
      expect(() => defineService({ name: 'S', id: 1, methods: { m: { id } } })).toThrow(InvalidArgError);
    }
    expect(defineService({ name: 'S', id: 1, methods: { lo: { id: 0 }, hi: { id: 65535 } } }).methodById(65535)?.name).toBe('hi');
  });

  it('rejects bad service ids and names', () => {
    for (const id of [-1, 65536, 2.5, Number.POSITIVE_INFINITY]) {
      expect(() => defineService({ name: 'S', id, methods: {} })).toThrow(InvalidArgError);
    }
    expect(() => defineService({ name: '', id: 1, methods: {} })).toThrow(InvalidArgError);
    expect(() => defineService({ name: 'S', id: 1, methods: null as never })).toThrow(InvalidArgError);
  });

  it('infers request and response types for stubs and handlers', () => {
    expectTypeOf<MethodNames<typeof Echo>>().toEqualTypeOf<'echo' | 'ping' | 'loose'>();
    expectTypeOf<RequestOf<typeof Echo, 'echo'>>().toEqualTypeOf<EchoReq>();
    expectTypeOf<ResponseOf<typeof Echo, 'echo'>>().toEqualTypeOf<EchoRsp>();
    expectTypeOf<RequestOf<typeof Echo, 'ping'>>().toEqualTypeOf<void>();
    expectTypeOf<ResponseOf<typeof Echo, 'ping'>>().toEqualTypeOf<number>();
    expectTypeOf<RequestOf<typeof Echo, 'loose'>>().toEqualTypeOf<unknown>();
    expectTypeOf(Echo.methods.echo.name).toEqualTypeOf<'echo'>();
    expectTypeOf(Echo).toMatchTypeOf<ServiceDef>();
    expectTypeOf(method<EchoReq, EchoRsp>(1)).toEqualTypeOf<MethodDef<EchoReq, EchoRsp>>();

    // What a server package builds on: a typed handler map and a typed stub.
    type Handlers<S extends ServiceDef> = { [K in MethodNames<S>]: (req: RequestOf<S, K>) => Promise<ResponseOf<S, K>> };
    type Stub<S extends ServiceDef> = { [K in MethodNames<S>]: (req: RequestOf<S, K>) => Promise<ResponseOf<S, K>> };
    const handlers: Handlers<typeof Echo> = {
      echo: async (req) => ({ str: req.str, len: req.str.length }),
      ping: async () => 1,
      loose: async (x) => x,
    };
    expectTypeOf(handlers.echo).parameter(0).toEqualTypeOf<EchoReq>();
    expectTypeOf<Stub<typeof Echo>['echo']>().returns.resolves.toEqualTypeOf<EchoRsp>();
    // @ts-expect-error a wrong request shape does not type-check
    const wrong: RequestOf<typeof Echo, 'echo'> = { nope: 1 };
    // @ts-expect-error an unknown method name does not type-check
    expectTypeOf<RequestOf<typeof Echo, 'nosuch'>>().toBeNever();
    expect(wrong).toBeDefined();
    expect(handlers.echo).toBeTypeOf('function');
  });
});
