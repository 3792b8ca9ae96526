// The end-to-end RPC suite over rdma://, plus 3FS's TestRDMA list. Runs in the Soft-RoCE VM (pnpm test:rdma):
// servers listen on rxe0's 10.0.2.15; every rdma:// connection is an IBSocket on rxe0.
import { type FfnetError, StatusCode } from '@ffnet/serde';
import { Client, EchoService, implement, Server } from '@ffnet/server';
import { type Transport, tcp, unix } from '@ffnet/transport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eSuite } from '../../../server/test/e2e-suite.js';
import { groupConfig, portOf, rejection, sleep, TestService } from '../../../server/test/helpers.js';
import { rdma } from '../../src/index.js';

const LOST = [StatusCode.SocketClosed, StatusCode.SocketError];

// No IBManager.start() here: the verbs backend opens the devices with defaults on first use.
// Scaled for the emulated VM (TCG rxe is ~100× slower than loopback), by parameters only:
// - 64 callers as on the host, 100 calls each (6400, not 64 000);
// - the shared client's default call timeout is 5 s instead of 1 s (its first call includes the RDMA connect).
// (A SIGKILLed server surfaces as a lost connection: the handshake's TCP connection closes, then a 20 ms grace for
// an RDMA CLOSE already in flight; the suite checks that against the call's deadline, not a fixed figure.)
const backends = [tcp(), unix(), rdma()];
const isRdma = (t: Transport): boolean => t.address.scheme === 'rdma' && t.capabilities.oneSided;

e2eSuite('rdma', {
  concurrency: { callers: 64, calls: 100 },
  client: { timeoutMs: 5000 },
  backends,
  childScript: new URL('../fixtures/child-server.mjs', import.meta.url),
});

function testServer(port = 0): Server {
  const s = new Server({ backends, groups: [groupConfig('rdma', { port })] });
  s.addService(
    implement(TestService, {
      hello: (_ctx, req) => ({ greeting: `hello ${req.name}` }),
      fail: () => {
        throw new Error('unused');
      },
      slow: async (_ctx, req) => {
        await sleep(req.ms);
        return { slept: req.ms };
      },
      blob: (_ctx, req) => ({ data: req.data }),
      waitAbort: () => 'unused',
      peer: (ctx) => ctx.peer,
    }),
  );
  return s;
}

/** The client's outgoing transports, by state. */
function outgoing(c: Client) {
  return c.ioWorker.transports().filter((t) => !t.incoming);
}

describe('TestRDMA', () => {
  let server: Server;
  let address: string;

  beforeAll(async () => {
    server = testServer();
    await server.start();
    address = server.addresses[0]!;
  });

  afterAll(async () => {
    await server.stop();
  });

  it('Basic: a call over rdma:// runs on an RDMA transport at both ends', async () => {
    // The first call's deadline also covers the RDMA connect, which under TCG on a loaded host can pass the 1 s default.
    const client = new Client({ backends, timeoutMs: 10_000 });
    try {
      expect(address.startsWith('rdma://')).toBe(true);
      expect(await client.stub(TestService, address).hello({ name: 'verbs' })).toEqual({ greeting: 'hello verbs' });
      expect(await client.stub(TestService, address).peer({})).toMatch(/^rdma:\/\//);
      const ts = outgoing(client);
      expect(ts).toHaveLength(1);
      expect(isRdma(ts[0]!)).toBe(true);
      expect(server.groups[0]!.ioWorker.transports().some((t) => isRdma(t) && t.incoming)).toBe(true);
    } finally {
      await client.stop();
    }
  });

  it('Concurrent: 128 callers at once', async () => {
    const client = new Client({ backends, timeoutMs: 30_000 });
    try {
      const echo = client.stub(EchoService, address);
      const results = await Promise.all(
        Array.from({ length: 128 }, async (_, id) => {
          for (let i = 0; i < 5; i++) {
            const str = `${id}/${i}`;
            const r = await echo.echo({ str });
            if (r.str !== str) throw new Error(`caller ${id} got ${r.str} for ${str}`);
          }
          return id;
        }),
      );
      expect(results).toHaveLength(128);
      expect(outgoing(client)).toHaveLength(1);
    } finally {
      await client.stop();
    }
  });

  it('ShortTimeout: a 100 ms timeout closes the RDMA connection; the next call reconnects and works', async () => {
    const client = new Client({ backends, timeoutMs: 30_000 });
    try {
      const test = client.stub(TestService, address);
      expect(await test.hello({ name: 'warm' })).toEqual({ greeting: 'hello warm' });
      const first = outgoing(client)[0]!;
      const err = await rejection(test.slow({ ms: 1000 }, { timeoutMs: 100 }));
      expect(err.code).toBe(StatusCode.Timeout);
      // As 3FS closeIB(): the connection the call went out on is closed, not reused.
      await first.closed;
      expect(first.state).toBe('closed');
      expect(await test.hello({ name: 'again' })).toEqual({ greeting: 'hello again' });
      const now = outgoing(client);
      expect(now).toHaveLength(1);
      expect(now[0]).not.toBe(first);
      expect(isRdma(now[0]!)).toBe(true);
    } finally {
      await client.stop();
    }
  });

  it('ConnectionLost: the server drops the connection mid-call → typed error, then recovery', async () => {
    const client = new Client({ backends, timeoutMs: 30_000 });
    try {
      const test = client.stub(TestService, address);
      expect(await test.hello({ name: 'before' })).toEqual({ greeting: 'hello before' });
      const pending = test.slow({ ms: 2000 });
      pending.catch(() => undefined);
      await sleep(100);
      expect(server.groups[0]!.ioWorker.dropConnections({ incoming: true })).toBeGreaterThan(0);
      const err = await rejection(pending);
      expect(LOST).toContain(err.code);
      expect(err.peer).toBe(address);
      expect(await test.hello({ name: 'after' })).toEqual({ greeting: 'hello after' });
    } finally {
      await client.stop();
    }
  });

  it('ServerRestart: with sendRetryTimes 0, calls succeed again after a pause', async () => {
    const s1 = testServer();
    await s1.start();
    const addr = s1.addresses[0]!;
    const client = new Client({ backends, sendRetryTimes: 0, timeoutMs: 30_000 });
    let s2: Server | undefined;
    try {
      const test = client.stub(TestService, addr);
      expect(await test.hello({ name: 'one' })).toEqual({ greeting: 'hello one' });
      await s1.stop();
      s2 = testServer(portOf(addr));
      await s2.start();
      expect(s2.addresses[0]).toBe(addr);
      await sleep(200);
      for (let i = 0; i < 5; i++) expect(await test.hello({ name: `two ${i}` })).toEqual({ greeting: `hello two ${i}` });
    } finally {
      await client.stop();
      await s1.stop();
      await s2?.stop();
    }
  });

  it("an rdma group's port also serves tcp:// callers", async () => {
    const client = new Client({ backends });
    try {
      const tcp = address.replace('rdma://', 'tcp://');
      expect(await client.stub(TestService, tcp).hello({ name: 'tcp' })).toEqual({ greeting: 'hello tcp' });
      expect(await client.stub(TestService, tcp).peer({})).toMatch(/^tcp:\/\//);
      expect(isRdma(outgoing(client)[0]!)).toBe(false);
    } finally {
      await client.stop();
    }
  });

  it('a failed handshake leaves a typed error naming the peer', async () => {
    const client = new Client({ backends, sendRetryTimes: 0 });
    try {
      const dead = `rdma://${address.slice('rdma://'.length).split(':')[0]}:1`;
      const err = (await rejection(client.stub(EchoService, dead).echo({ str: 'x' }))) as FfnetError;
      expect(err.code).toBe(StatusCode.SendFailed);
      expect((err.cause as FfnetError).code).toBe(StatusCode.ConnectFailed);
      expect(err.peer).toBe(dead);
    } finally {
      await client.stop();
    }
  });
});
