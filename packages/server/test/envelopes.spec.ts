// Envelopes and schemas end to end between ffnet processes: under 'ffnet' a method with schemas has its request and
// response checked (InvalidArg naming the field) and a method without is untouched; under '3fs' the payloads are
// encoded with the schemas, and what 3FS's MessagePacket cannot carry is refused at configuration or call time.
import { defineService, FfnetError, InvalidArgError, InvalidConfigError, method, StatusCode, s } from '@ffnet/serde';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, CoreService, CoreService3fs, EchoService3fs, implement, Server, staticToken } from '../src/index.js';
import { groupConfig } from './helpers.js';

const Hello = s.struct('test::Hello', { name: s.string, times: s.u8 });
const Greeting = s.struct('test::Greeting', { greeting: s.string });
/** The shapes msgpack does not keep by itself: 64-bit integers (bigint) and maps (Map with typed keys). */
const Wide = s.struct('test::Wide', {
  id: s.u64,
  delta: s.i64,
  names: s.map(s.u32, s.string),
  ids: s.vector(s.u64),
  maybe: s.optional(s.u64),
});

const Greeter = defineService({
  name: 'Greeter',
  id: 720,
  methods: {
    hello: method(1, { request: Hello, response: Greeting }),
    /** Answers whatever the request says its greeting is, to send a response that does not fit. */
    wrong: method(2, { request: Hello, response: Greeting }),
    free: method<{ anything: unknown }, string>(3),
    wide: method(4, { request: Wide, response: Wide }),
  },
});

let handled = 0;
const greeter = implement(Greeter, {
  hello: (_ctx, req) => {
    handled++;
    return { greeting: `hello ${req.name} x${req.times}` };
  },
  wrong: () => {
    handled++;
    return { greeting: 5 } as unknown as { greeting: string };
  },
  free: (_ctx, req) => {
    handled++;
    return JSON.stringify(req);
  },
  wide: (_ctx, req) => {
    // The handler sees the schema's types, whatever the envelope.
    if (typeof req.id !== 'bigint' || !(req.names instanceof Map)) throw new Error('not in the schema shape');
    return { ...req, id: req.id + 1n, ids: [...req.ids, req.id] };
  },
});

/** Greeter without `free`: every method has schemas, as a 3fs group requires. */
const Greeter3fs = defineService({
  name: 'Greeter',
  id: 720,
  methods: { hello: Greeter.methods.hello, wrong: Greeter.methods.wrong, wide: Greeter.methods.wide },
});
const greeter3fs = implement(Greeter3fs, { hello: greeter.handlers.hello, wrong: greeter.handlers.wrong, wide: greeter.handlers.wide });

const wideReq = {
  id: 5n,
  delta: -7n,
  names: new Map([
    [1, 'one'],
    [70000, 'big'],
  ]),
  ids: [1n, 2n ** 60n],
  maybe: 3n,
};
const wideRsp = {
  id: 6n,
  delta: -7n,
  names: new Map([
    [1, 'one'],
    [70000, 'big'],
  ]),
  ids: [1n, 2n ** 60n, 5n],
  maybe: 3n,
};

const running: { stop(): Promise<void> }[] = [];
afterEach(async () => {
  while (running.length > 0) await running.pop()!.stop();
});

async function serve(envelope: 'ffnet' | '3fs'): Promise<string> {
  const server = new Server({ groups: [{ ...groupConfig('tcp'), envelope }] });
  running.push(server);
  server.addService(envelope === '3fs' ? greeter3fs : greeter);
  await server.start();
  return server.addresses[0]!;
}

function client(envelope: 'ffnet' | '3fs'): Client {
  const c = new Client({ envelope, timeoutMs: 5000 });
  running.push(c);
  return c;
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as FfnetError,
  );

describe("envelope 'ffnet' with schemas", () => {
  it('a request that does not fit is refused by the client before it is sent, naming the field', async () => {
    const address = await serve('ffnet');
    const stub = client('ffnet').stub(Greeter, address);
    const before = handled;
    const e = await failure(stub.hello({ name: 'x', times: 300 }));
    expect(e).toBeInstanceOf(InvalidArgError);
    expect(e.reason).toMatch(/times/);
    expect(handled).toBe(before);
    expect(await stub.hello({ name: 'ann', times: 2 })).toEqual({ greeting: 'hello ann x2' });
  });

  it('the server refuses a request that does not fit (a caller without the schema), naming the field; the handler never runs', async () => {
    const address = await serve('ffnet');
    const c = client('ffnet');
    const before = handled;
    const e = await failure(c.callRaw(address, Greeter.id, Greeter.methods.hello.id, { wrong: 1 }));
    expect(e).toBeInstanceOf(InvalidArgError);
    expect(e.code).toBe(StatusCode.InvalidArg);
    expect(e.reason).toMatch(/Greeter\.hello request/);
    expect(e.reason).toMatch(/name/);
    expect(handled).toBe(before);
  });

  it('a response that does not fit is refused with InvalidArg naming the field', async () => {
    const address = await serve('ffnet');
    const e = await failure(client('ffnet').stub(Greeter, address).wrong({ name: 'x', times: 1 }));
    expect(e).toBeInstanceOf(InvalidArgError);
    expect(e.reason).toMatch(/Greeter\.wrong response/);
    expect(e.reason).toMatch(/greeting/);
    // A caller without the schema: the server itself refuses to send it.
    const raw = await failure(client('ffnet').callRaw(address, Greeter.id, Greeter.methods.wrong.id, { name: 'x', times: 1 }));
    expect(raw).toBeInstanceOf(InvalidArgError);
    expect(raw.reason).toMatch(/Greeter\.wrong response does not fit its schema: response\.greeting/);
  });

  it('64-bit integers and maps arrive in the schema shape (bigint, Map with typed keys), not as msgpack left them', async () => {
    const address = await serve('ffnet');
    expect(await client('ffnet').stub(Greeter, address).wide(wideReq)).toEqual(wideRsp);
  });

  it('a method without schemas takes any value, as before', async () => {
    const address = await serve('ffnet');
    expect(
      await client('ffnet')
        .stub(Greeter, address)
        .free({ anything: [1, 'two', { three: 3 }] }),
    ).toBe('{"anything":[1,"two",{"three":3}]}');
  });
});

describe("envelope '3fs' between ffnet processes", () => {
  it('calls go through with the payloads in 3FS binary, typed as the schemas say', async () => {
    const address = await serve('3fs');
    const c = client('3fs');
    expect(await c.stub(Greeter, address).hello({ name: 'bo', times: 7 })).toEqual({ greeting: 'hello bo x7' });
    expect(await c.stub(EchoService3fs, address).echo({ str: 'echo' })).toEqual({ str: 'echo' });
    expect(await c.stub(CoreService3fs, address).echo({ str: 'core' })).toEqual({ str: 'core' });
    expect(await c.stub(Greeter3fs, address).wide(wideReq)).toEqual(wideRsp);
  });

  it('a response that does not fit is InvalidArg naming the field, not a masked internal error', async () => {
    const address = await serve('3fs');
    const e = await failure(client('3fs').stub(Greeter, address).wrong({ name: 'x', times: 1 }));
    expect(e).toBeInstanceOf(InvalidArgError);
    expect(e.reason).toMatch(/greeting/);
  });

  it("ffnet's Core methods beyond echo are not offered: kInvalidMethodID (2009), as 3FS answers an unknown method", async () => {
    const address = await serve('3fs');
    const Stats = defineService({
      name: 'Core',
      id: CoreService.id,
      methods: { stats: method(CoreService.methods.stats.id, { request: Hello, response: Greeting }) },
    });
    const e = await failure(client('3fs').stub(Stats, address).stats({ name: '', times: 0 }));
    expect(e.code).toBe(StatusCode.InvalidMethodID);
  });

  it('a service whose methods lack schemas cannot join a 3fs group (InvalidConfig at register time)', () => {
    const server = new Server({ groups: [{ ...groupConfig('tcp'), envelope: '3fs' }] });
    expect(() => server.addService(greeter)).toThrow(InvalidConfigError);
    expect(() => server.addService(greeter)).toThrow(/method free has no request and response schemas/);
  });

  it('refuses what 3FS cannot carry: rdma groups, client credentials, metadata, calls without schemas', async () => {
    expect(() => new Server({ groups: [{ networkType: 'rdma', envelope: '3fs' }] })).toThrow(InvalidConfigError);
    expect(() => new Server({ groups: [{ ...groupConfig('tcp'), envelope: 'json' as '3fs' }] })).toThrow(/'ffnet' or '3fs'/);
    expect(() => new Client({ envelope: '3fs', credentials: staticToken('t') })).toThrow(InvalidConfigError);
    const address = await serve('3fs');
    const c = client('3fs');
    const md = await failure(c.stub(Greeter, address).hello({ name: 'x', times: 1 }, { metadata: new Map([['k', 'v']]) }));
    expect(md).toBeInstanceOf(InvalidArgError);
    expect(md.reason).toMatch(/no metadata/);
    const raw = await failure(c.callRaw(address, Greeter.id, 1, { name: 'x', times: 1 }));
    expect(raw).toBeInstanceOf(InvalidArgError);
    expect(raw.reason).toMatch(/schemas/);
  });

  it('an ffnet client cannot talk to a 3fs group: the frame does not decode and the connection closes, the call fails typed', async () => {
    const address = await serve('3fs');
    const e = await failure(client('ffnet').stub(Greeter, address).hello({ name: 'x', times: 1 }));
    expect(e).toBeInstanceOf(FfnetError);
    expect([StatusCode.SocketClosed, StatusCode.SocketError, StatusCode.Timeout]).toContain(e.code);
  });
});
