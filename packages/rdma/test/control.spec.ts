import { defineService, method, NotImplementedError, StatusCode } from '@ffnet/serde';
import { type CallContext, Client, type ClientOptions, implement, Server } from '@ffnet/server';
import { tcp, unix } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { groupConfig, rejection, sleep } from '../../server/test/helpers.js';
import { isRdmaCall, type RDMAControlOptions, RDMAWriteTransmission, rdma, rdmaControlStats, TransmissionLimiter, writeTransmission } from '../src/index.js';

// Over tcp there is no queue pair, so the "transmission" is a stand-in: the handler runs the real RDMAControl
// handshake (server → client call on the same connection, client semaphore, slot held until the response), then
// holds a "write" open for a while. What is under test is the flow control, not the RDMA.
const Xfer = defineService({
  name: 'Xfer',
  id: 700,
  methods: {
    write: method<{ holdMs: number; applyTimeoutMs?: number; delayMs?: number }, { granted: boolean }>(1),
    direct: method<Record<string, never>, string>(2),
  },
});

const fakeBatch = { isWrite: true, wrCount: 0 } as unknown as ConstructorParameters<typeof RDMAWriteTransmission>[1];

function xferServer() {
  const state = { inWrite: 0, maxInWrite: 0 };
  const server = new Server({ groups: [groupConfig('tcp')] });
  server.addService(
    implement(Xfer, {
      async write(ctx: CallContext, req) {
        if (req.delayMs) await sleep(req.delayMs);
        const granted = await new RDMAWriteTransmission(ctx, fakeBatch).applyTransmission(req.applyTimeoutMs ?? 2000);
        state.inWrite++;
        state.maxInWrite = Math.max(state.maxInWrite, state.inWrite);
        await sleep(req.holdMs);
        state.inWrite--;
        return { granted };
      },
      direct(ctx: CallContext) {
        try {
          writeTransmission(ctx);
          return 'no error';
        } catch (e) {
          return `${(e as { name: string }).name}:${(e as { code: number }).code}:${isRdmaCall(ctx)}`;
        }
      },
    }),
  );
  return { server, state };
}

describe('RDMAControl', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f();
  });

  // RDMAControl comes with the rdma() backend the client dials with; the calls themselves go over tcp.
  async function setup(clientOpts: ClientOptions & { control?: RDMAControlOptions | boolean }) {
    const { server, state } = xferServer();
    await server.start();
    const { control, ...rest } = clientOpts;
    const backend = rdma(control === undefined ? {} : { control });
    const client = new Client({ ...rest, backends: [tcp(), unix(), backend] });
    cleanup.push(
      () => server.stop(),
      () => client.stop(),
    );
    return { stub: client.stub(Xfer, server.addresses[0]!), client, state, backend };
  }

  it('bounds server-initiated writes to maxConcurrentTransmission and frees every slot when calls answer', async () => {
    const { stub, backend, state } = await setup({ control: { maxConcurrentTransmission: 4 }, timeoutMs: 10_000 });
    const before = rdmaControlStats();
    let sawQueue = 0;
    const probe = setInterval(() => {
      sawQueue = Math.max(sawQueue, backend.transmissions!.waiting);
    }, 2);
    const rsps = await Promise.all(Array.from({ length: 16 }, () => stub.write({ holdMs: 25 })));
    clearInterval(probe);
    expect(rsps.every((r) => r.granted)).toBe(true);
    expect(state.maxInWrite).toBe(4);
    expect(sawQueue).toBeGreaterThan(0);
    expect(backend.transmissions!.granted).toBe(16);
    expect(backend.transmissions!.active).toBe(0);
    expect(rdmaControlStats().applied - before.applied).toBe(16);
  });

  it('without the option the flag is not set and writes are not limited', async () => {
    const { stub, backend, state } = await setup({ timeoutMs: 10_000 });
    const before = rdmaControlStats();
    await Promise.all(Array.from({ length: 8 }, () => stub.write({ holdMs: 25 })));
    expect(backend.transmissions).toBeUndefined();
    expect(state.maxInWrite).toBe(8);
    expect(rdmaControlStats().applied).toBe(before.applied);
  });

  it('an apply that times out only counts as failed: the write goes ahead', async () => {
    const { stub, backend } = await setup({ control: { maxConcurrentTransmission: 1 }, timeoutMs: 10_000 });
    const before = rdmaControlStats();
    // The holder keeps its slot far longer than the starved apply waits, so their order does not depend on how
    // promptly a loaded machine runs either timer; it takes the slot before the starved call is made.
    const holder = stub.write({ holdMs: 1000 });
    for (let i = 0; i < 2000 && backend.transmissions?.active !== 1; i++) await sleep(5);
    expect(backend.transmissions!.active).toBe(1);
    const starved = await stub.write({ holdMs: 0, applyTimeoutMs: 50 });
    expect(starved.granted).toBe(false);
    expect((await holder).granted).toBe(true);
    expect(rdmaControlStats().failed - before.failed).toBe(1);
    // The starved apply gave up waiting and took no slot; the holder's slot went back with its response.
    await sleep(20);
    expect(backend.transmissions!.active).toBe(0);
    expect(backend.transmissions!.waiting).toBe(0);
  });

  it('an apply for a call that is no longer pending is answered at once and takes no slot', async () => {
    const { stub, backend } = await setup({ control: { maxConcurrentTransmission: 1 } });
    // The call times out client-side; the server's apply arrives after that with the stale uuid.
    const err = await rejection(stub.write({ holdMs: 0, delayMs: 80 }, { timeoutMs: 20 }));
    expect(err.code).toBe(StatusCode.Timeout);
    await sleep(50);
    expect(backend.transmissions!.granted).toBe(0);
    expect(backend.transmissions!.active).toBe(0);
    // And the limiter still works for the next call.
    expect((await stub.write({ holdMs: 0 })).granted).toBe(true);
    expect(backend.transmissions!.granted).toBe(1);
  });

  it('writeTransmission(ctx) on a tcp call throws NotImplementedError and isRdmaCall(ctx) is false', async () => {
    const { stub } = await setup({});
    expect(await stub.direct({})).toBe(`NotImplementedError:${StatusCode.NotImplemented}:false`);
    expect(new NotImplementedError('x').code).toBe(StatusCode.NotImplemented);
  });
});

describe('TransmissionLimiter', () => {
  it('grants in FIFO order, honours abort, and picks up a raised max', async () => {
    const l = new TransmissionLimiter(1);
    await l.acquire();
    const order: number[] = [];
    const a = l.acquire().then(() => order.push(1));
    const ac = new AbortController();
    const b = l.acquire(ac.signal);
    const c = l.acquire().then(() => order.push(3));
    ac.abort(new Error('gone'));
    await expect(b).rejects.toThrow('gone');
    expect(l.waiting).toBe(2);
    l.release();
    await a;
    expect(order).toEqual([1]);
    l.max = 2;
    await c;
    expect(order).toEqual([1, 3]);
    expect(l.active).toBe(2);
    l.release();
    l.release();
    l.release();
    expect(l.active).toBe(0);
    expect(() => new TransmissionLimiter(0)).toThrow(expect.objectContaining({ code: StatusCode.InvalidArg }));
  });
});
