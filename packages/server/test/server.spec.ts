import { defineService, method, PermissionDeniedError, StatusCode } from '@ffnet/serde';
import { describe, expect, it } from 'vitest';
import { Client, CoreService, EchoService, implement, Server } from '../src/index.js';
import { groupConfig, rejection, sleep } from './helpers.js';

const Named = defineService({ name: 'Named', id: 501, methods: { who: method<Record<string, never>, string>(1) } });
const Other = defineService({ name: 'Other', id: 502, methods: { who: method<Record<string, never>, string>(1) } });

describe('Server', () => {
  it('runs hooks in order around the groups, idempotently', async () => {
    const log: string[] = [];
    const s = new Server({
      groups: [groupConfig('tcp')],
      beforeStart: () => void log.push(`beforeStart:${s.addresses.length > 0}`),
      afterStart: () => void log.push('afterStart'),
      beforeStop: () => void log.push('beforeStop'),
      afterStop: () => void log.push(`afterStop:${s.groups[0]!.listener.state}`),
    });
    await Promise.all([s.start(), s.start()]);
    await Promise.all([s.stop(), s.stop()]);
    expect(log).toEqual(['beforeStart:true', 'afterStart', 'beforeStop', 'afterStop:idle']);
  });

  it('routes addService to the group that names the service, else the first; strict refuses unnamed ones', async () => {
    const s = new Server({ groups: [groupConfig('tcp'), { ...groupConfig('unix'), services: ['Named'] }] });
    const named = implement(Named, { who: () => 'named' });
    const other = implement(Other, { who: () => 'other' });
    expect(s.addService(named, { strict: true })).toBe(s.groups[1]);
    expect(() => s.addService(other, { strict: true })).toThrow(expect.objectContaining({ code: StatusCode.InvalidServiceName }));
    expect(s.addService(other)).toBe(s.groups[0]);
    expect(() => s.addService(other)).toThrow(expect.objectContaining({ code: StatusCode.InvalidArg }));
    await s.start();
    const client = new Client();
    try {
      const [tcp, unix] = s.addresses as [string, string];
      expect(tcp.startsWith('tcp://')).toBe(true);
      expect(unix.startsWith('unix://')).toBe(true);
      expect(await client.stub(Named, unix).who({})).toBe('named');
      expect(await client.stub(Other, tcp).who({})).toBe('other');
      expect((await rejection(client.stub(Named, tcp).who({}))).code).toBe(StatusCode.InvalidMethodID);
      // Built-ins are in every group.
      expect(await client.stub(EchoService, unix).echo({ str: 'u' })).toEqual({ str: 'u' });
    } finally {
      await client.stop();
      await s.stop();
    }
  });

  it('refuses a service without a handler for every method', () => {
    expect(() => implement(Named, {} as never)).toThrow(/no handler for method who/);
  });

  it('drains calls in flight when stopping', async () => {
    const Slow = defineService({ name: 'Slow', id: 503, methods: { wait: method<number, number>(1) } });
    const s = new Server({ groups: [groupConfig('tcp')] });
    s.addService(
      implement(Slow, {
        wait: async (_c, ms) => {
          await sleep(ms);
          return ms;
        },
      }),
    );
    await s.start();
    const client = new Client();
    try {
      const call = client.stub(Slow, s.addresses[0]!).wait(100);
      // In flight at the server, however long a loaded machine takes to deliver it (a fixed sleep can stop first).
      for (let i = 0; i < 2000 && s.stats().inFlight === 0; i++) await sleep(5);
      expect(s.stats().inFlight).toBe(1);
      await s.stop();
      expect(await call).toBe(100);
    } finally {
      await client.stop();
    }
  });

  it('stops itself on Core.shutdown after replying, when enabled', async () => {
    const s = new Server({ groups: [groupConfig('unix')], admin: { shutdown: 'local' } });
    await s.start();
    const client = new Client();
    try {
      expect(await client.stub(CoreService, s.addresses[0]!).shutdown({ graceful: true })).toEqual({});
      for (let i = 0; i < 1000 && s.state !== 'stopped'; i++) await sleep(10);
      expect(s.state).toBe('stopped');
    } finally {
      await client.stop();
      await s.stop();
    }
  });

  it('types handlers and stubs from the definition', () => {
    implement(Named, {
      // @ts-expect-error the response must be a string
      who: () => 42,
    });
    const client = new Client();
    const stub = client.stub(Named, 'tcp://127.0.0.1:1');
    // @ts-expect-error the definition has no method `nope`
    void stub.nope;
    const typed: Promise<string> = stub.who({}, { timeoutMs: 1 });
    typed.catch(() => undefined);
    return client.stop();
  });

  it('masks handler errors that are not FfnetErrors unless the service exposes them', async () => {
    const Files = defineService({
      name: 'Files',
      id: 504,
      methods: { open: method<{ typed?: boolean }, string>(1) },
    });
    const Open = defineService({ name: 'Open', id: 505, methods: { open: method<Record<string, never>, string>(1) } });
    const secret = "ENOENT: no such file or directory, open '/srv/secret/x'";
    const seen: { err: unknown; method: string; peer: string }[] = [];
    const s = new Server({ groups: [groupConfig('tcp')], onHandlerError: (err, info) => seen.push({ err, method: info.method, peer: info.peer }) });
    s.addService(
      implement(Files, {
        open: (_ctx, req) => {
          if (req.typed) throw new PermissionDeniedError('not yours');
          throw new Error(secret);
        },
      }),
    );
    s.addService(implement(Open, { open: () => Promise.reject(new Error(secret)) }, { exposeErrors: true }));
    await s.start();
    const client = new Client();
    try {
      const address = s.addresses[0]!;
      const masked = await rejection(client.stub(Files, address).open({}));
      expect(masked.code).toBe(StatusCode.Unknown);
      expect(masked.name).toBe('UnknownError');
      expect(masked.message).toBe(`internal error (peer ${address})`);
      expect(`${masked.message} ${masked.stack}`).not.toMatch(/secret|ENOENT/);
      expect(seen).toHaveLength(1);
      expect((seen[0]!.err as Error).message).toBe(secret);
      expect(seen[0]!.method).toBe('Files.open');
      expect(seen[0]!.peer).toMatch(/^tcp:\/\/127\.0\.0\.1:/);

      const typed = await rejection(client.stub(Files, address).open({ typed: true }));
      expect(typed.code).toBe(StatusCode.PermissionDenied);
      expect(typed.message).toBe(`not yours (peer ${address})`);

      const exposed = await rejection(client.stub(Open, address).open({}));
      expect(exposed.code).toBe(StatusCode.Unknown);
      expect(exposed.message).toBe(`${secret} (peer ${address})`);
      // Neither the typed error nor the exposed one was masked.
      expect(seen).toHaveLength(1);
      expect(s.groups[0]!.processor.handlerErrors.count).toBe(1);
    } finally {
      await client.stop();
      await s.stop();
    }
  });

  it('needs at least one group', () => {
    expect(() => new Server({ groups: [] })).toThrow(expect.objectContaining({ code: StatusCode.InvalidConfig }));
  });
});
