// @ffnet/pino against the real pino, writing to a stream the test reads back, over a real tcp call.
import { Writable } from 'node:stream';
import { Client, CoreService, EchoService, Server } from '@ffnet/server';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { pinoLogger } from '../src/index.js';

/** A pino destination that keeps each JSON line it is given, parsed. */
function sink(): { stream: Writable; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      partial += chunk.toString('utf8');
      let nl = partial.indexOf('\n');
      while (nl >= 0) {
        records.push(JSON.parse(partial.slice(0, nl)));
        partial = partial.slice(nl + 1);
        nl = partial.indexOf('\n');
      }
      done();
    },
  });
  return { stream, records };
}

async function until(records: Record<string, unknown>[], pred: (r: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  for (;;) {
    const r = records.find(pred);
    if (r !== undefined) return r;
    await new Promise((res) => setTimeout(res, 10));
  }
}

const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

describe('pinoLogger over a real tcp call', () => {
  it('a refused admin call and a closed connection become pino records with the expected fields', async () => {
    const { stream, records } = sink();
    const logger = pinoLogger(pino({ level: 'debug', base: { app: 'test' } }, stream));
    const server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 } }], logger });
    await server.start();
    stops.push(() => server.stop());
    const address = server.addresses[0]!;
    const client = new Client({ timeoutMs: 5000 });
    await client.stub(EchoService, address).echo({ str: 'hi' });
    await expect(client.stub(CoreService, address).stats({})).rejects.toMatchObject({ code: 2102 });
    await client.stop();

    const refused = await until(records, (r) => r.msg === 'admin call refused');
    // pino's numbers: 40 is warn. Bindings from the pino instance and from ffnet's child both apply.
    expect(refused).toMatchObject({ level: 40, app: 'test', component: 'server', method: 'Core.stats', access: 'admin' });
    expect(String(refused.peer)).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);

    const closed = await until(records, (r) => r.msg === 'connection closed');
    expect(closed).toMatchObject({ level: 20, component: 'transport', incoming: true, peer: refused.peer });
    // The peer hung up: the reason and the error, through pino's own err serializer.
    expect(closed.reason).toBe('connection closed by peer');
    expect(closed.err).toMatchObject({ type: 'SocketClosedError', code: 2013 });
  });

  it("follows pino's level: at info, ffnet's debug records are not even built", async () => {
    const { stream, records } = sink();
    const p = pino({ level: 'info' }, stream);
    const logger = pinoLogger(p);
    expect(logger.isLevelEnabled('debug')).toBe(false);
    expect(logger.isLevelEnabled('warn')).toBe(true);
    const child = logger.child({ component: 'transport' });
    child.debug({ n: 1 }, 'hidden');
    child.warn({ n: 2 }, 'shown');
    // Turned down at run time: the adapter asks pino each time.
    p.level = 'debug';
    expect(child.isLevelEnabled('debug')).toBe(true);
    child.debug({ n: 3 }, 'now shown');
    await new Promise((r) => setImmediate(r));
    expect(records.map((r) => [r.msg, r.component, r.n])).toEqual([
      ['shown', 'transport', 2],
      ['now shown', 'transport', 3],
    ]);
  });

  it('refuses something that is not a pino logger', () => {
    expect(() => pinoLogger({} as never)).toThrow(TypeError);
  });
});
