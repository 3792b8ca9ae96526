import { connect, createServer, type Socket } from 'node:net';
import { defineService, encodeMessage, type FfnetError, InvalidConfigError, MessageFlags, method, StatusCode } from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { afterEach, describe, expect, it } from 'vitest';
import { type CallContext, Client, EchoService, implement, Server, type ServerOptions } from '../src/index.js';
import { groupConfig, rejection, sleep } from './helpers.js';

const MiB = 1024 * 1024;
/** Far beyond the test timeout: a stop that resolves can only have been cut short by the logic under test. */
const HUGE_MS = 120_000;

const Stuck = defineService({ name: 'Stuck', id: 620, methods: { hang: method<Record<string, never>, never>(1) } });

/** A handler that never settles and ignores its signal, recording when (and why) the signal aborted. */
class StuckProbe {
  started!: Promise<CallContext>;
  #start!: (ctx: CallContext) => void;
  abortedAt: number | undefined;
  reason: FfnetError | undefined;
  constructor() {
    this.started = new Promise((r) => {
      this.#start = r;
    });
  }
  readonly service = implement(Stuck, {
    hang: (ctx) => {
      ctx.signal.addEventListener('abort', () => {
        this.abortedAt = performance.now();
        this.reason = ctx.signal.reason as FfnetError;
      });
      this.#start(ctx);
      return new Promise<never>(() => {});
    },
  });
}

const cleanup: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function stuckServer(opts: Partial<ServerOptions>): Promise<{ server: Server; probe: StuckProbe; call: Promise<unknown> }> {
  const server = new Server({ groups: [groupConfig('tcp')], ...opts });
  const probe = new StuckProbe();
  server.addService(probe.service);
  await server.start();
  const client = new Client();
  cleanup.push(() => client.stop({ signal: AbortSignal.abort() }));
  cleanup.push(() => server.stop({ signal: AbortSignal.abort() }));
  // timeoutMs 0: no deadline travels, so nothing but the stop can abort the handler.
  const call = client.stub(Stuck, server.addresses[0]!).hang({}, { timeoutMs: 0 });
  call.catch(() => undefined);
  await probe.started;
  return { server, probe, call };
}

function settledFlag(p: Promise<unknown>): { settled: boolean } {
  const flag = { settled: false };
  p.then(
    () => (flag.settled = true),
    () => (flag.settled = true),
  );
  return flag;
}

async function eventually(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const until = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('Server.stop is bounded', () => {
  it("aborts a stuck handler's signal after stopGraceMs and resolves at stopTimeoutMs, when the caller sent no deadline", async () => {
    const { server, probe, call } = await stuckServer({ stopGraceMs: 200, stopTimeoutMs: 1500 });
    const t0 = performance.now();
    await server.stop();
    const took = performance.now() - t0;
    expect(server.state).toBe('stopped');
    expect(probe.reason?.code).toBe(StatusCode.Cancelled);
    expect(probe.reason?.message).toMatch(/the server is stopping/);
    // Never early: the grace period passed before the signal aborted, and the bound before stop gave up.
    expect(probe.abortedAt! - t0).toBeGreaterThanOrEqual(190);
    expect(took).toBeGreaterThanOrEqual(1490);
    // The connection was destroyed under the call.
    expect([StatusCode.SocketClosed, StatusCode.SocketError]).toContain((await rejection(call)).code);
  });

  it('a later stop with an aborted signal cuts a pending stop short', async () => {
    const { server, probe } = await stuckServer({ stopGraceMs: HUGE_MS, stopTimeoutMs: HUGE_MS });
    const first = server.stop();
    const flag = settledFlag(first);
    await sleep(100);
    expect(flag.settled).toBe(false);
    expect(probe.reason).toBeUndefined();
    await server.stop({ signal: AbortSignal.abort() });
    await first;
    expect(server.state).toBe('stopped');
    expect(probe.reason?.code).toBe(StatusCode.Cancelled);
  });

  it('a stop whose signal aborts later finishes then', async () => {
    const { server, probe } = await stuckServer({ stopGraceMs: HUGE_MS, stopTimeoutMs: HUGE_MS });
    const ac = new AbortController();
    const stopping = server.stop({ signal: ac.signal });
    const flag = settledFlag(stopping);
    await sleep(100);
    expect(flag.settled).toBe(false);
    ac.abort();
    await stopping;
    expect(probe.reason?.code).toBe(StatusCode.Cancelled);
  });
});

/** A raw peer that sends 1 MiB Echo requests and never reads, until the server has replies queued for it. */
async function flood(address: string, serverTransport: () => Transport | undefined): Promise<Socket> {
  const u = new URL(address.replace(/^tcp:/, 'http:'));
  const sock = connect(Number(u.port), u.hostname);
  sock.on('error', () => undefined);
  sock.pause();
  await new Promise<void>((r) => sock.once('connect', () => r()));
  const str = 'x'.repeat(MiB);
  let uuid = 1;
  // Replies back up into the kernel's buffers, then into the transport's queue: how much that takes depends on
  // the socket buffer sizes, so keep sending until the queue is there.
  await eventually('replies queued on the server', () => {
    const t = serverTransport();
    if (t !== undefined && t.queuedBytes > 0) return true;
    if (sock.writableLength < 64 * MiB) {
      sock.write(
        encodeMessage({ uuid: uuid++, serviceId: EchoService.id, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: { str } }),
      );
    }
    return false;
  });
  return sock;
}

describe.each([
  ['stop({ signal: AbortSignal.abort() })', false],
  ['a later stop({ signal: AbortSignal.abort() }) during a graceful stop', true],
] as const)('Server: %s with a peer that does not read', (_name, pendingFirst) => {
  it('destroys the connection without waiting for closeTimeoutMs', async () => {
    const server = new Server({
      groups: [{ ...groupConfig('tcp'), ioWorker: { transport: { closeTimeoutMs: HUGE_MS } } }],
      stopGraceMs: HUGE_MS,
      stopTimeoutMs: HUGE_MS,
    });
    await server.start();
    cleanup.push(() => server.stop({ signal: AbortSignal.abort() }));
    const sock = await flood(server.addresses[0]!, () => server.groups[0]!.ioWorker.transports()[0]);
    cleanup.push(() => sock.destroy());
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    let first: Promise<void> | undefined;
    if (pendingFirst) {
      first = server.stop();
      const flag = settledFlag(first);
      await sleep(200);
      // Still flushing to a peer that does not read.
      expect(flag.settled).toBe(false);
    }
    await server.stop({ signal: AbortSignal.abort() });
    await first;
    expect(server.state).toBe('stopped');
    expect(server.groups[0]!.ioWorker.connections).toBe(0);
    // The peer sees the connection end once it reads what it had been sent.
    sock.resume();
    await closed;
  });
});

describe.each([
  ['stop({ signal: AbortSignal.abort() })', 'abort'],
  ['a later stop({ signal: AbortSignal.abort() }) during a graceful stop', 'pending'],
  ['stop() past stopTimeoutMs', 'bound'],
] as const)('Client: %s with a server that does not read', (_name, how) => {
  it('destroys the connection without waiting for closeTimeoutMs', async () => {
    const accepted: Socket[] = [];
    const raw = createServer({ pauseOnConnect: true }, (s) => {
      s.on('error', () => undefined);
      accepted.push(s);
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => raw.close(r)));
    cleanup.push(() => {
      for (const s of accepted) s.destroy();
    });
    const address = `tcp://127.0.0.1:${(raw.address() as { port: number }).port}`;
    const client = new Client({ ioWorker: { transport: { closeTimeoutMs: HUGE_MS } }, stopTimeoutMs: how === 'bound' ? 500 : HUGE_MS });
    cleanup.push(() => client.stop({ signal: AbortSignal.abort() }));
    const echo = client.stub(EchoService, address);
    const str = 'y'.repeat(MiB);
    await eventually('requests queued on the client', () => {
      const t = client.ioWorker.transports()[0];
      if (t !== undefined && t.state === 'ready' && t.queuedBytes > 0 && accepted.length > 0) return true;
      if ((t?.queuedBytes ?? 0) < 64 * MiB) echo.echo({ str }, { timeoutMs: 0 }).catch(() => undefined);
      return false;
    });
    const t0 = performance.now();
    if (how === 'abort') {
      await client.stop({ signal: AbortSignal.abort() });
    } else if (how === 'pending') {
      const first = client.stop();
      const flag = settledFlag(first);
      await sleep(200);
      expect(flag.settled).toBe(false);
      await client.stop({ signal: AbortSignal.abort() });
      await first;
    } else {
      await client.stop();
      // Never early: the bound is what ended it.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(490);
    }
    expect(client.connections).toBe(0);
    expect(client.ioWorker.state).toBe('stopped');
  });
});

describe('stop bounds are validated the same way by Server and Client', () => {
  const bad: unknown[] = [-1, Number.NaN, '100', null];
  it.each(bad)('refuses stopTimeoutMs %s with InvalidConfigError naming the option, in both', (v) => {
    const check = (make: () => unknown): void => {
      let err: unknown;
      try {
        make();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidConfigError);
      expect(err).toMatchObject({ code: StatusCode.InvalidConfig, message: expect.stringContaining('stopTimeoutMs') });
    };
    check(() => new Server({ groups: [groupConfig('tcp')], stopTimeoutMs: v as number }));
    check(() => new Client({ stopTimeoutMs: v as number }));
    // The server's grace bound goes through the same check.
    expect(() => new Server({ groups: [groupConfig('tcp')], stopGraceMs: v as number })).toThrow(InvalidConfigError);
  });

  it('takes 0, a finite bound and Infinity, and defaults both to the common default', async () => {
    for (const v of [0, 250, Number.POSITIVE_INFINITY]) {
      expect(new Server({ groups: [groupConfig('tcp')], stopTimeoutMs: v }).stopTimeoutMs).toBe(v);
      const client = new Client({ stopTimeoutMs: v });
      cleanup.push(() => client.stop());
      expect(client.stopTimeoutMs).toBe(v);
    }
    const client = new Client();
    cleanup.push(() => client.stop());
    expect(client.stopTimeoutMs).toBe(new Server({ groups: [groupConfig('tcp')] }).stopTimeoutMs);
    expect(client.stopTimeoutMs).toBe(10_000);
  });
});
