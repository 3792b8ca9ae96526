import { connect, type Socket } from 'node:net';
import {
  decodeMessage,
  defineService,
  encodeMessage,
  type FfnetError,
  FRAME_HEADER_SIZE,
  FrameDecoder,
  MessageFlags,
  method,
  ResourceExhaustedError,
  TimeoutError,
} from '@ffnet/serde';
import type { Transport } from '@ffnet/transport';
import { DEFAULT_FRAME_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, IOWorker, Processor } from '@ffnet/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, EchoService, implement, Server, type ServerOptions } from '../src/index.js';
import { portOf, sleep } from './helpers.js';

const MiB = 1024 * 1024;
const ONE_MIB = Buffer.alloc(MiB, 0x5a);

const Amp = defineService({ name: 'Amp', id: 321, methods: { big: method<null, Uint8Array>(1) } });

/** Polls `cond` every 10 ms; fails naming `what` after `ms` (generous: the machine is loaded). */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function request(uuid: number): Buffer {
  return encodeMessage({ uuid, serviceId: Amp.id, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: null });
}

/** A frame header claiming a `size`-byte body (magic only: the body never completes, so its CRC never matters). */
function header(size: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_SIZE);
  h.writeUInt32LE(0x86, 0);
  h.writeUInt32LE(size, 4);
  return h;
}

describe('memory stays bounded whatever peers send', () => {
  let server: Server | undefined;
  let client: Client | undefined;
  const sockets: Socket[] = [];
  let calls = 0;

  async function start(opts: Partial<ServerOptions> & { io?: Record<string, unknown> } = {}): Promise<number> {
    calls = 0;
    const { io, ...rest } = opts;
    server = new Server({ groups: [{ networkType: 'tcp', listener: { host: '127.0.0.1', port: 0 }, ioWorker: io }], ...rest });
    server.addService(
      implement(Amp, {
        big: () => {
          calls++;
          return ONE_MIB;
        },
      }),
    );
    await server.start();
    return portOf(server.addresses[0]!);
  }

  function raw(port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(s));
      s.once('error', reject);
      sockets.push(s);
    });
  }

  function serverTransports(): Transport[] {
    return server!.groups[0]!.ioWorker.transports();
  }

  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await client?.stop();
    client = undefined;
    await server?.stop();
    server = undefined;
  });

  it('a peer that asks for 1 MiB replies and never reads: reading pauses, output stays under the cap, every reply arrives once it reads', async () => {
    const n = 600;
    const port = await start();
    const s = await raw(port);
    s.pause(); // never reads: its receive buffer fills, then the server's socket buffer, then the server's queue
    const all = Buffer.concat(Array.from({ length: n }, (_, i) => request(i + 1)));
    s.write(all); // one write, a few KB

    await until(() => serverTransports().length === 1, 'the connection');
    const t = serverTransports()[0]!;
    let maxQueued = 0;
    const probe = setInterval(() => {
      maxQueued = Math.max(maxQueued, t.queuedBytes);
    }, 5);
    try {
      await until(() => t.readingPaused, 'reading to pause');
      // Stable for a while: the server does not go on dispatching while the peer is not reading.
      let seen = -1;
      while (seen !== calls) {
        seen = calls;
        await sleep(500);
      }
      expect(calls).toBeLessThan(n);
      expect(t.readingPaused).toBe(true);
    } finally {
      clearInterval(probe);
    }
    const cap = 64 * MiB;
    const reply = ONE_MIB.length + 256; // body plus envelope
    expect(maxQueued).toBeLessThanOrEqual(cap + reply);
    const stats = server!.stats();
    expect(stats.outputBudget.peak).toBeLessThanOrEqual(cap + reply);
    expect(stats.outputBudget.limit).toBe(256 * MiB);

    // Now it reads: every request is answered, none dropped, each exactly once.
    const uuids = new Set<number>();
    let frames = 0;
    const dec = new FrameDecoder((body, compressed) => {
      frames++;
      const pkt = decodeMessage(body, compressed);
      uuids.add(pkt.uuid);
    });
    s.on('data', (chunk: Buffer) => dec.push(chunk));
    s.resume();
    await until(() => frames === n, `${n} replies`, 60_000);
    expect(uuids.size).toBe(n);
    expect(calls).toBe(n);
    expect(t.state).toBe('ready');
    await until(() => server!.stats().outputBudget.used === 0, 'the output budget to empty');
  }, 90_000);

  it('a reply that cannot be queued closes the connection with ResourceExhaustedError naming the peer and the cap', async () => {
    const port = await start({ io: { transport: { maxQueuedBytes: 512 * 1024 } } });
    const s = await raw(port);
    s.pause();
    await until(() => serverTransports().length === 1, 'the connection');
    const t = serverTransports()[0]!;
    const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
    // Two replies in one read: the second finds the first still queued, and 1 MiB more passes 512 KiB.
    s.write(Buffer.concat([request(1), request(2)]));
    const err = (await t.closed) as FfnetError;
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.peer).toBe(t.peer);
    expect(err.message).toMatch(/cannot be queued/);
    expect(err.message).toMatch(/524288-byte limit/);
    s.resume();
    await closed;
    expect(server!.stats().outputBudget.used).toBe(0);
  });

  it('receive budget: stalled big frames never take more than the cap, the rest wait paused, small calls still work', async () => {
    const budget = 4 * MiB;
    const port = await start({ limits: { receiveBudgetBytes: budget }, io: { frameTimeoutMs: 2000, frameMinBytesPerSec: 0 } });
    const peers = 8;
    const size = 2 * MiB;
    // Each claims a 2 MiB frame and sends half of it: a quarter of the body is enough for its allocation (1/8).
    for (let i = 0; i < peers; i++) {
      const s = await raw(port);
      s.on('error', () => {});
      s.write(header(size));
      s.write(Buffer.alloc(size / 2, i));
    }
    await until(() => serverTransports().length === peers, 'all peers');
    const stalled = serverTransports();
    await until(() => server!.stats().receiveBudget.waiting > 0, 'some peers to wait for the budget');
    const stats = server!.stats().receiveBudget;
    expect(stats.limit).toBe(budget);
    expect(stats.peak).toBeLessThanOrEqual(budget);
    expect(stats.used).toBeLessThanOrEqual(budget);
    expect(serverTransports().filter((t) => t.readingPaused).length).toBeGreaterThan(0);
    for (const t of serverTransports()) expect(t.receiveBudgetBytes).toBeLessThanOrEqual(budget);
    // What is really held (an allocated body at its full size): the budget, plus at most the 64 KiB allowance
    // and one read past it for each connection that stopped reading.
    const held = stalled.reduce((n, t) => n + t.receivedHeldBytes, 0);
    expect(held).toBeLessThanOrEqual(budget + peers * 128 * 1024);

    // A healthy client's small call goes through meanwhile.
    client = new Client();
    const echo = client.stub(EchoService, server!.addresses[0]!);
    expect(await echo.echo({ str: 'still here' })).toEqual({ str: 'still here' });

    // Past the frame deadline, the stalled ones are closed: waiting ones for the budget, the others as slow.
    const settled = (await Promise.all(stalled.map((t) => t.closed))) as (FfnetError | undefined)[];
    const kinds = settled.map((e) => e?.name);
    expect(kinds.filter((k) => k === 'ResourceExhaustedError').length).toBeGreaterThan(0);
    expect(kinds.every((k) => k === 'ResourceExhaustedError' || k === 'TimeoutError')).toBe(true);
    expect(server!.stats().receiveBudget.peak).toBeLessThanOrEqual(budget);
    await until(() => server!.stats().receiveBudget.used === 0, 'the receive budget to empty');
  }, 60_000);

  it('a connection waiting for the receive budget reads again, and completes its frame, once another releases it', async () => {
    const budget = 3 * MiB;
    const port = await start({ limits: { receiveBudgetBytes: budget } });
    // Real requests with a 2 MiB payload: each one's body alone takes 2 MiB of the budget once allocated.
    const big = (uuid: number) =>
      encodeMessage({ uuid, serviceId: Amp.id, methodId: 1, flags: MessageFlags.IsReq, version: 0, timeoutMs: 0, payload: Buffer.alloc(2 * MiB, uuid) });
    const fa = big(1);
    const fb = big(2);
    const a = await raw(port);
    a.write(fa.subarray(0, fa.length / 2));
    await until(() => server!.stats().receiveBudget.used >= 2 * MiB, 'the first body to be allocated');
    const b = await raw(port);
    b.write(fb); // all of it: the server stops reading it when the budget cannot cover it
    await until(() => server!.stats().receiveBudget.waiting === 1, 'the second connection to wait');
    await sleep(200);
    expect(calls).toBe(0);
    expect(server!.stats().receiveBudget.peak).toBeLessThanOrEqual(budget);
    // The first frame completes and is handled: its bytes go back, and the waiting connection goes on.
    a.write(fa.subarray(fa.length / 2));
    await until(() => calls === 2, 'both requests to be handled');
    expect(server!.stats().receiveBudget.waiting).toBe(0);
    expect(server!.stats().receiveBudget.peak).toBeLessThanOrEqual(budget);
    await until(() => server!.stats().receiveBudget.used === 0, 'the receive budget to empty');
    expect(serverTransports().every((t) => t.state === 'ready')).toBe(true);
  });

  it('a frame that cannot fit the whole receive budget closes its connection at once with ResourceExhaustedError', async () => {
    const port = await start({ limits: { receiveBudgetBytes: 1 * MiB } });
    const s = await raw(port);
    s.on('error', () => {});
    await until(() => serverTransports().length === 1, 'the connection');
    const t = serverTransports()[0]!;
    s.write(header(8 * MiB));
    s.write(Buffer.alloc(2 * MiB));
    const err = (await t.closed) as FfnetError;
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect(err.peer).toBe(t.peer);
    expect(err.message).toMatch(/1048576-byte server receive budget/);
    expect(server!.stats().receiveBudget.peak).toBeLessThanOrEqual(MiB);
  });

  it('slow loris: a header and nothing more, or a byte every 100 ms, is closed with TimeoutError past frameTimeoutMs', async () => {
    const port = await start({ io: { frameTimeoutMs: 500 } });
    const stalled = await raw(port);
    stalled.on('error', () => {});
    stalled.write(header(100));
    await until(() => serverTransports().length === 1, 'the first connection');
    const first = serverTransports()[0]!;
    const trickler = await raw(port);
    trickler.on('error', () => {});
    await until(() => serverTransports().length === 2, 'the second connection');
    const second = serverTransports().find((t) => t !== first)!;
    const started = Date.now();
    const body = header(1000);
    let i = 0;
    const drip = setInterval(() => {
      if (!trickler.destroyed) trickler.write(body.subarray(i % 8, (i % 8) + 1));
      i++;
    }, 100);
    try {
      const [a, b] = (await Promise.all([first.closed, second.closed])) as FfnetError[];
      for (const e of [a!, b!]) {
        expect(e).toBeInstanceOf(TimeoutError);
        expect(e.message).toMatch(/not complete after \d+ ms \(limit \d+ ms\): \d+ bytes received/);
      }
      expect(a!.peer).toBe(first.peer);
      // Never early: trickled bytes are activity, but not progress past the deadline.
      expect(Date.now() - started).toBeGreaterThanOrEqual(500 - 100);
    } finally {
      clearInterval(drip);
    }
  }, 30_000);

  it('a header claiming a large frame buys no time: the deadline grows with bytes received, not with the claim', async () => {
    // frameMinBytesPerSec stays at its default (1 MiB/s): 128 MiB claimed would have bought 128 s if the claim counted.
    const port = await start({ io: { frameTimeoutMs: 500 } });
    const liar = await raw(port);
    liar.on('error', () => {});
    liar.write(Buffer.concat([header(128 * MiB), Buffer.alloc(64 * 1024, 1)]));
    await until(() => serverTransports().length === 1, 'the connection');
    const err = (await serverTransports()[0]!.closed) as FfnetError;
    expect(err).toBeInstanceOf(TimeoutError);
    const m = /limit (\d+) ms\): (\d+) bytes received/.exec(err.message);
    expect(m).not.toBeNull();
    // 500 ms plus 64 KiB at 1 MiB/s (63 ms): far below the 128 s the claimed size would give.
    expect(Number(m![1])).toBeLessThan(500 + 1000);
    expect(Number(m![2])).toBeGreaterThanOrEqual(64 * 1024);
  }, 30_000);

  it('idle connections are closed after minutes by default, and after idleTimeoutMs when set', async () => {
    expect(DEFAULT_IDLE_TIMEOUT_MS).toBe(5 * 60 * 1000);
    expect(DEFAULT_FRAME_TIMEOUT_MS).toBe(30_000);
    const w = new IOWorker({ processor: new Processor() });
    expect(w.idleTimeoutMs).toBe(DEFAULT_IDLE_TIMEOUT_MS);
    expect(w.frameTimeoutMs).toBe(30_000);
    // The check must run often enough to enforce the frame deadline.
    expect(w.checkIntervalMs).toBeLessThanOrEqual(1000);
    expect(new IOWorker({ processor: new Processor(), frameTimeoutMs: 500 }).checkIntervalMs).toBeLessThanOrEqual(50);

    const port = await start({ io: { idleTimeoutMs: 300 } });
    const s = await raw(port);
    s.on('error', () => {});
    await until(() => serverTransports().length === 1, 'the connection');
    const t = serverTransports()[0]!;
    const err = (await t.closed) as FfnetError;
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/idle for \d+ ms \(limit 300 ms\)/);
    // Never early: the last activity is at least the limit ago.
    expect(Date.now() - t.lastActiveAt).toBeGreaterThanOrEqual(300);
  });
});
