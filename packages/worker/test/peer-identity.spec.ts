import { type Backend, type ConnectOptions, type Credentials, tcp } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallContext, PeerIdentity } from '../src/index.js';
import { SET_PRINCIPAL } from '../src/internal.js';
import { type Pair, pair, TestService } from './helpers.js';

describe('ctx.peerIdentity', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it('describes a tcp peer: scheme and address, no certificate, credentials or principal; built once per call', async () => {
    const seen: PeerIdentity[] = [];
    let same = false;
    const svc = new TestService({
      1: (ctx: CallContext) => {
        const id = ctx.peerIdentity;
        same = ctx.peerIdentity === id;
        seen.push(id);
        return id.peer;
      },
    });
    p = await pair(svc);
    const r = await p.call(7, 1, null).result;
    expect(same).toBe(true);
    expect(seen[0]).toEqual({
      scheme: 'tcp',
      peer: (r.payload as { value: string }).value,
      certificate: undefined,
      credentials: undefined,
      principal: undefined,
    });
    expect(seen[0]!.peer).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(Object.isFrozen(seen[0])).toBe(true);
  });

  it("holds the connection's principal, unless the call was given its own", async () => {
    const svc = new TestService({
      1: (ctx: CallContext) => {
        ctx.transport.principal = { id: 'conn' };
        return ctx.peerIdentity.principal?.id;
      },
      2: (ctx: CallContext) => {
        const before = ctx.peerIdentity.principal?.id;
        ctx[SET_PRINCIPAL]({ id: 'call', roles: ['admin'] });
        return [before, ctx.peerIdentity.principal?.id, ctx.transport.principal?.id];
      },
    });
    p = await pair(svc);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: true, value: 'conn' });
    expect((await p.call(7, 2, null).result).payload).toEqual({ ok: true, value: ['conn', 'call', 'conn'] });
  });
});

describe('IOWorker credentials', () => {
  let p: Pair | undefined;
  afterEach(async () => {
    await p?.close();
    p = undefined;
  });

  it('are handed to the backend with every connect (ConnectOptions.credentials)', async () => {
    const real = tcp();
    const seen: (ConnectOptions | undefined)[] = [];
    const recording: Backend = {
      scheme: 'tcp',
      available: () => real.available(),
      connect: (a, o) => {
        seen.push(o);
        return real.connect(a, o);
      },
      listen: (a, o, cb) => real.listen(a, o, cb),
    };
    const credentials: Credentials = { metadata: () => new Map([['authorization', 'x']]) };
    p = await pair(new TestService({ 1: () => 'ok' }), { clientIO: { backends: [recording], credentials } });
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: true, value: 'ok' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.credentials).toBe(credentials);
  });
});
