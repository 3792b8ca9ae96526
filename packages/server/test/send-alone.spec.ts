import { defineService, method } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, implement, Server } from '../src/index.js';
import { groupConfig } from './helpers.js';

const Echo = defineService({ name: 'Echo', id: 611, methods: { echo: method<number, number>(1) } });

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

describe.each(['tcp', 'unix'] as const)('a client call over %s', (kind) => {
  it('is written at once when it is the only call in flight, and batched with the turn otherwise', async () => {
    const server = new Server({ groups: [groupConfig(kind)] });
    server.addService(implement(Echo, { echo: (_ctx, n) => n + 1 }));
    await server.start();
    stops.push(() => server.stop());
    const client = new Client();
    stops.push(() => client.stop());
    const stub = client.stub(Echo, server.addresses[0]!);
    expect(await stub.echo(0)).toBe(1);
    const [t] = client.ioWorker.transports() as [Transport];
    const hints: boolean[] = [];
    const send = t.send.bind(t);
    t.send = (frame, tag, alone = false) => {
      hints.push(alone);
      return send(frame, tag, alone);
    };
    expect(await stub.echo(1)).toBe(2);
    expect(hints).toEqual([true]);
    // A burst: the first call is alone when it is sent, the others join the turn's batch behind it.
    expect(await Promise.all([stub.echo(10), stub.echo(20), stub.echo(30)])).toEqual([11, 21, 31]);
    expect(hints).toEqual([true, true, false, false]);
    expect(client.waiter.size).toBe(0);
  });
});
