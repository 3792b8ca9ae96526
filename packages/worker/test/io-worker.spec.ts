import { createServer } from 'node:net';
import { ConnectFailedError, encodeMessage, MessageFlags, StatusCode } from '@ffnet/serde';
import { encodeMessageUnsealed } from '@ffnet/serde/internal';
import { formatAddress, tcp, tcpAddress } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { IOWorker, Processor, Waiter } from '../src/index.js';
import { type Pair, pair, rejection, sleep, TestCall, TestService } from './helpers.js';

/** A loopback port with nothing listening on it. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('IOWorker', () => {
  let p: Pair | undefined;
  const workers: IOWorker[] = [];
  afterEach(async () => {
    await p?.close();
    p = undefined;
    for (const w of workers.splice(0)) await w.stop();
  });

  function clientWorker(opts: { sendRetryTimes?: number; waitToRetryMs?: number } = {}) {
    const waiter = new Waiter();
    const io = new IOWorker({ ...opts, processor: new Processor({ waiter }) });
    io.start();
    workers.push(io);
    const send = (address: string, maxRetries?: number) => {
      const call = new TestCall('T.m', maxRetries);
      waiter.register(call, 5000);
      io.sendAsync(
        address,
        encodeMessage({ uuid: call.uuid, serviceId: 7, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: 1 }),
        call,
      );
      return call;
    };
    return { io, waiter, send };
  }

  it('fails with SendFailed after two attempts when nobody listens, retrying after waitToRetryMs', async () => {
    const c = clientWorker({ waitToRetryMs: 100 });
    const start = performance.now();
    const call = c.send(`tcp://127.0.0.1:${await deadPort()}`);
    const err = await rejection(call.result);
    expect(err.code).toBe(StatusCode.SendFailed);
    expect(err.cause).toBeInstanceOf(ConnectFailedError);
    expect(err.message).toContain('2 attempt');
    expect(call.attempts).toBe(2);
    expect(call.settledAt - start).toBeGreaterThanOrEqual(99);
    expect(c.io.stats.retries).toBe(1);
    expect(c.io.stats.connects).toBe(2);
  });

  it('makes one attempt with sendRetryTimes 0, per call or per worker', async () => {
    const port = await deadPort();
    const perCall = clientWorker();
    const a = perCall.send(`tcp://127.0.0.1:${port}`, 0);
    expect((await rejection(a.result)).code).toBe(StatusCode.SendFailed);
    expect(a.attempts).toBe(1);
    const perWorker = clientWorker({ sendRetryTimes: 0 });
    const b = perWorker.send(`tcp://127.0.0.1:${port}`);
    expect((await rejection(b.result)).code).toBe(StatusCode.SendFailed);
    expect(b.attempts).toBe(1);
  });

  it('an unsealed request that its first connection never wrote goes out whole on the retry', async () => {
    const port = await deadPort();
    const c = clientWorker({ waitToRetryMs: 300 });
    const call = new TestCall('T.m1');
    c.waiter.register(call, 5000);
    const frame = encodeMessageUnsealed({ uuid: call.uuid, serviceId: 7, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: 41 });
    c.io.sendAsync(`tcp://127.0.0.1:${port}`, frame, call);
    // The first connect is refused; a server comes up on that port before the retry.
    await sleep(100);
    expect(call.attempts).toBe(1);
    const sio = new IOWorker({ processor: new Processor({ lookup: new TestService({ 1: (_c, n: number) => n + 1 }) }) });
    sio.start();
    workers.push(sio);
    const listener = await tcp().listen(tcpAddress('127.0.0.1', port), {}, (sock) => sio.adopt(sock));
    try {
      const rsp = await call.result;
      expect((rsp.payload as { value: number }).value).toBe(42);
      expect(call.attempts).toBe(2);
      expect(sio.processor.stats.badFrames).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('queues frames sent while connecting and delivers them on one connection', async () => {
    p = await pair(new TestService({ 1: (_c, n: number) => n }));
    const calls = Array.from({ length: 20 }, (_, i) => p!.call(7, 1, i));
    const values = (await Promise.all(calls.map((c) => c.result))).map((r) => (r.payload as { value: number }).value);
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(p.client.io.stats.connects).toBe(1);
    expect(p.client.io.connections).toBe(1);
    expect(p.server.io.stats.accepted).toBe(1);
  });

  it('fails calls written on a connection at once when it dies, not at their deadline', async () => {
    let started: () => void = () => {};
    const running = new Promise<void>((r) => {
      started = r;
    });
    p = await pair(
      new TestService({
        1: (ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', resolve);
            started();
          }),
      }),
    );
    const call = p.call(7, 1, null, { timeoutMs: 10_000 });
    await running;
    const t0 = performance.now();
    expect(p.server.io.dropConnections({ incoming: true })).toBe(1);
    const err = await rejection(call.result);
    expect([StatusCode.SocketClosed, StatusCode.SocketError]).toContain(err.code);
    expect(err.peer).toBe(p.address);
    // Far below the 10 s deadline (half of it: generous for a loaded machine, still not a timeout).
    expect(call.settledAt - t0).toBeLessThan(5000);
    expect(p.client.waiter.stats.connectionFailures).toBe(1);
  });

  it('reconnects for the next call after a connection was dropped', async () => {
    p = await pair(new TestService({ 1: () => 'ok' }));
    await p.call(7, 1, null).result;
    p.client.io.dropConnections();
    expect(p.client.io.connections).toBe(0);
    expect((await p.call(7, 1, null).result).payload).toEqual({ ok: true, value: 'ok' });
    expect(p.client.io.stats.connects).toBe(2);
  });

  it('closes connections idle past idleTimeoutMs', async () => {
    p = await pair(new TestService({ 1: () => 'ok' }), { clientIO: { idleTimeoutMs: 50, checkIntervalMs: 0 } });
    await p.call(7, 1, null).result;
    expect(p.client.io.checkConnections()).toBe(0);
    expect(p.client.io.connections).toBe(1);
    expect(p.client.io.checkConnections(Date.now() + 60)).toBe(1);
    expect(p.client.io.connections).toBe(0);
  });

  it('rejects bad addresses through the call', async () => {
    const c = clientWorker();
    const err = await rejection(c.send('tcp://no-port-here').result);
    expect(err.code).toBe(StatusCode.InvalidAddr);
  });

  it('stop() fails calls waiting for a retry, is idempotent, and start() works again', async () => {
    const c = clientWorker({ waitToRetryMs: 10_000 });
    const call = c.send(`tcp://127.0.0.1:${await deadPort()}`);
    while (c.io.stats.retries === 0) await sleep(5);
    const s1 = c.io.stop();
    const s2 = c.io.stop();
    expect(s2).toBe(s1);
    await s1;
    const err = await rejection(call.result);
    expect(err.code).toBe(StatusCode.SendFailed);
    expect(err.message).toContain('stopped');
    expect(c.io.state).toBe('stopped');
    const after = c.send('tcp://127.0.0.1:1');
    expect((await rejection(after.result)).message).toContain('stopped');
    c.io.start();
    expect(c.io.state).toBe('running');
  });

  it('destroys sockets offered while not running', async () => {
    const io = new IOWorker({ processor: new Processor() });
    let closed = false;
    const listener = await tcp().listen(tcpAddress('127.0.0.1', 0), {}, (s) => {
      expect(io.adopt(s)).toBeUndefined();
    });
    const sock = await tcp().connect(listener.address);
    await new Promise<void>((r) =>
      sock.setHandlers({
        data: () => undefined,
        drain: () => undefined,
        written: () => undefined,
        close: () => {
          closed = true;
          r();
        },
      }),
    );
    expect(closed).toBe(true);
    await listener.close();
    expect(formatAddress(listener.address)).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  });
});
