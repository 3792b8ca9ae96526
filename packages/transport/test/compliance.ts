/**
 * Backend compliance suite. Every backend (tcp, unix, and verbs in test/rdma) runs this file unchanged: it uses only
 * the public API — the Backend under test, BackendSocket for raw bytes, Transport for frames (given the backend in
 * `backends`).
 *
 *   describe.each([tcp(), unix()])('$scheme', (backend) => transportCompliance(backend, setupFor(backend.scheme)));
 */
import { readdirSync } from 'node:fs';
import {
  DataCorruptionError,
  encodeFrame,
  FfnetError,
  FRAME_HEADER_SIZE,
  InvalidFormatError,
  InvalidMessageTypeError,
  SendFailedError,
  SocketClosedError,
  StatusCode,
} from '@ffnet/serde';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Address,
  type Backend,
  type BackendListener,
  type BackendSocket,
  formatAddress,
  Transport,
  type TransportHandler,
  type TransportOptions,
} from '../src/index.js';

export interface ComplianceSetup {
  /** A fresh address to listen on (port 0 is fine), one per server the suite starts. */
  address(): Address;
  /** Runs after the whole suite (e.g. remove a temp directory). */
  cleanup?(): void | Promise<void>;
  /**
   * Multiplies every test timeout and wait deadline (default 1). Slow environments (verbs under the emulated
   * Soft-RoCE VM) raise it; it changes how long a case may take, never what it checks.
   */
  timeoutScale?: number;
}

let scale = 1;

interface CloseRecord {
  readonly t: Transport;
  readonly error: FfnetError | undefined;
  readonly unsent: readonly unknown[];
}

/** Collects what one side of a connection sees. */
class Collector implements TransportHandler {
  readonly frames: Buffer[] = [];
  readonly closes: CloseRecord[] = [];
  drains = 0;
  echo = false;
  onFrame(t: Transport, body: Buffer, compressed: boolean): void {
    if (this.echo) t.send(encodeFrame(body, compressed));
    else this.frames.push(body);
  }
  onClose(t: Transport, error: FfnetError | undefined, unsent: readonly unknown[]): void {
    this.closes.push({ t, error, unsent });
  }
  onDrain(): void {
    this.drains++;
  }
  closeOf(t: Transport): CloseRecord | undefined {
    return this.closes.find((c) => c.t === t);
  }
}

/** Polls `cond` each loop turn; fails with `what` instead of hanging until the test timeout. */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms * scale;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function u32Frame(i: number, extra = 0): Buffer {
  const body = Buffer.alloc(4 + extra, i & 0xff);
  body.writeUInt32LE(i, 0);
  return encodeFrame(body);
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

export function transportCompliance(backend: Backend, setup: ComplianceSetup): void {
  const scheme = backend.scheme;
  const backends = [backend];
  const k = setup.timeoutScale ?? 1;
  /** A case's timeout, scaled. */
  const ms = (n: number): number => n * k;
  const listeners: BackendListener[] = [];
  const open: Transport[] = [];
  const raws: BackendSocket[] = [];

  interface Server {
    readonly address: Address;
    readonly handler: Collector;
    readonly transports: Transport[];
  }

  async function startServer(opts: { echo?: boolean; paused?: boolean; transport?: TransportOptions } = {}): Promise<Server> {
    const handler = new Collector();
    handler.echo = opts.echo ?? false;
    const transports: Transport[] = [];
    const listener = await backend.listen(setup.address(), {}, (sock) => {
      const t = Transport.adopt(sock, handler, opts.transport);
      if (opts.paused) t.pause();
      transports.push(t);
      open.push(t);
    });
    listeners.push(listener);
    return { address: listener.address, handler, transports };
  }

  async function connect(server: Server, handler: TransportHandler = new Collector(), opts: TransportOptions = {}): Promise<Transport> {
    const t = Transport.connect(server.address, handler, { ...opts, backends });
    open.push(t);
    await t.ready;
    return t;
  }

  /** A backend socket with no framing, for feeding raw bytes. */
  async function raw(server: Server): Promise<{ sock: BackendSocket; closed: Promise<FfnetError | undefined> }> {
    const sock = await backend.connect(server.address, { timeoutMs: 5000 });
    raws.push(sock);
    let onClose: (e: FfnetError | undefined) => void = () => {};
    const closed = new Promise<FfnetError | undefined>((r) => {
      onClose = r;
    });
    sock.setHandlers({ data() {}, drain() {}, written() {}, close: (e) => onClose(e) });
    return { sock, closed };
  }

  afterEach(async () => {
    for (const t of open.splice(0)) t.invalidate(new SocketClosedError('test cleanup'));
    for (const s of raws.splice(0)) s.destroy();
    await Promise.all(listeners.splice(0).map((l) => l.close()));
  });

  beforeAll(() => {
    scale = k;
  });

  afterAll(async () => {
    scale = 1;
    await setup.cleanup?.();
  });

  describe(`transport compliance: ${scheme}`, () => {
    it(
      'round-trips frames from 1 B to 64 MiB with their content intact',
      async () => {
        // All of it is queued at once, both ways: past the 64 MiB default queue cap.
        const queue = { maxQueuedBytes: 128 * 1024 * 1024 };
        const server = await startServer({ echo: true, transport: queue });
        const client = new Collector();
        const t = await connect(server, client, queue);
        // A random block of prime length: a chunk dropped, repeated or reordered anywhere changes the content.
        const block = Buffer.alloc(65521);
        for (let i = 0; i < block.length; i++) block[i] = (Math.random() * 256) | 0;
        const sizes = [1, 7, 8, 9, 1000, 65536, 65537, 1024 * 1024 + 3, 16 * 1024 * 1024, 64 * 1024 * 1024];
        const bodies = sizes.map((n, k) => {
          const b = Buffer.allocUnsafe(n).fill(block);
          b[0] = k; // distinct first byte: a swapped pair of equal-looking bodies still fails
          return b;
        });
        for (const b of bodies) t.send(encodeFrame(b));
        await until(() => client.frames.length === bodies.length, 'all echoes', 60_000);
        for (let k = 0; k < bodies.length; k++) {
          expect(client.frames[k]!.length).toBe(sizes[k]);
          expect(client.frames[k]!.equals(bodies[k]!)).toBe(true);
        }
        expect(t.state).toBe('ready');
        expect(t.queuedBytes).toBe(0);
      },
      ms(120_000),
    );

    it('delivers 10k pipelined frames in order, both ways', async () => {
      const server = await startServer({ echo: true });
      const client = new Collector();
      const t = await connect(server, client);
      const n = 10_000;
      for (let i = 0; i < n; i++) t.send(u32Frame(i, i % 97));
      await until(() => client.frames.length === n, '10k echoes');
      for (let i = 0; i < n; i++) {
        const f = client.frames[i]!;
        expect(f.readUInt32LE(0)).toBe(i);
        expect(f.length).toBe(4 + (i % 97));
      }
    });

    it('sends every frame queued in one turn, including from promise continuations, as one write', async () => {
      const server = await startServer();
      const sock = await backend.connect(server.address, { timeoutMs: 5000 });
      raws.push(sock);
      const calls: number[] = [];
      const write = sock.write.bind(sock);
      // A spy around the real socket: counts write() calls, the bytes still go through the real backend.
      sock.write = (bufs) => {
        calls.push(bufs.length);
        return write(bufs);
      };
      const t = Transport.adopt(sock, new Collector());
      open.push(t);
      // Running after an await, this test body is itself a promise continuation, like a handler's reply.
      for (let i = 0; i < 100; i++) t.send(u32Frame(i));
      // 100 more replies from separate promise chains of different depths in the same turn.
      await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          for (let d = 0; d < i % 5; d++) await null;
          t.send(u32Frame(100 + i));
        }),
      );
      await until(() => server.handler.frames.length === 200, '200 frames at the server');
      // The flush tick runs only once the whole microtask queue has drained: one write for all 200.
      expect(calls).toEqual([200]);
      const got = server.handler.frames.map((f) => f.readUInt32LE(0));
      expect(got.slice(0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      expect(got.slice(100).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => 100 + i));
    });

    for (const kind of ['bad CRC', 'bad magic', 'oversize'] as const) {
      it(`a frame with ${kind} closes only its own connection`, async () => {
        const server = await startServer({ echo: true, transport: { maxMessageSize: 1024 * 1024 } });
        const good = new Collector();
        const t = await connect(server, good);
        t.send(u32Frame(1));
        await until(() => good.frames.length === 1, 'first echo');

        const bad = await raw(server);
        const frame = u32Frame(7, 100);
        if (kind === 'bad CRC') frame[FRAME_HEADER_SIZE + 50]! ^= 0x01;
        if (kind === 'bad magic') frame[0] = 0x42;
        if (kind === 'oversize') frame.writeUInt32LE(2 * 1024 * 1024, 4);
        bad.sock.write([frame]);
        await bad.closed;

        await until(() => server.handler.closes.length === 1, 'the bad connection to close');
        const rec = server.handler.closes[0]!;
        const expected = { 'bad CRC': DataCorruptionError, 'bad magic': InvalidMessageTypeError, oversize: InvalidFormatError }[kind];
        expect(rec.error).toBeInstanceOf(expected);
        expect(rec.t.state).toBe('closed');

        // The good connection and its server side are untouched and keep working.
        expect(server.transports.filter((s) => s.state === 'ready')).toHaveLength(1);
        t.send(u32Frame(2));
        await until(() => good.frames.length === 2, 'echo after the bad frame');
        expect(good.frames[1]!.readUInt32LE(0)).toBe(2);
        expect(good.closes).toHaveLength(0);
      });
    }

    it('a peer that closes mid-frame gives SocketClosedError on the reader', async () => {
      const server = await startServer();
      const whole = u32Frame(9, 1000);
      const bad = await raw(server);
      bad.sock.write([whole, whole.subarray(0, 500)]);
      bad.sock.end();
      await until(() => server.handler.closes.length === 1, 'the reader to see the close');
      const rec = server.handler.closes[0]!;
      expect(server.handler.frames).toHaveLength(1); // the complete frame before the cut still arrives
      expect(rec.error).toBeInstanceOf(SocketClosedError);
      expect(rec.error!.code).toBe(StatusCode.SocketClosed);
      expect(rec.error!.message).toMatch(/mid-frame/);
    });

    it('a frame cut by a peer on the client side also gives SocketClosedError', async () => {
      const listener = await backend.listen(setup.address(), {}, (sock) => {
        raws.push(sock);
        sock.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
        const f = u32Frame(3, 64);
        sock.write([f.subarray(0, 20)]);
        sock.end();
      });
      listeners.push(listener);
      const client = new Collector();
      const t = Transport.connect(listener.address, client, { backends });
      open.push(t);
      await t.closed;
      expect(client.closes).toHaveLength(1);
      expect(client.closes[0]!.error).toBeInstanceOf(SocketClosedError);
      expect(client.closes[0]!.error!.message).toMatch(/mid-frame \(20 bytes/);
    });

    it('rejects a write after close with SocketClosedError', async () => {
      const server = await startServer({ echo: true });
      const client = new Collector();
      const t = await connect(server, client);
      t.send(u32Frame(1));
      const closing = t.close();
      expect(t.state).toBe('closing');
      expect(() => t.send(u32Frame(2))).toThrow(SocketClosedError);
      await closing;
      expect(t.state).toBe('closed');
      expect(() => t.send(u32Frame(3))).toThrow(SocketClosedError);
      // Graceful: the frame queued before close() was flushed and reached the server, and nothing was unsent.
      await until(() => server.handler.closes.length === 1, 'server side close');
      expect(client.closes).toEqual([{ t, error: undefined, unsent: [] }]);

      const t2 = await connect(server);
      t2.invalidate(new SendFailedError('test'));
      expect(() => t2.send(u32Frame(4))).toThrow(SocketClosedError);
    });

    it('a peer that goes away closes the transport with SocketClosedError, and later sends are rejected', async () => {
      const server = await startServer();
      const client = new Collector();
      const t = await connect(server, client);
      await until(() => server.transports.length === 1, 'accept');
      server.transports[0]!.invalidate(new SocketClosedError('server drops it'));
      await t.closed;
      expect(client.closes[0]!.error).toBeInstanceOf(SocketClosedError);
      expect(() => t.send(u32Frame(1))).toThrow(SocketClosedError);
    });

    it(
      'opens and closes 1000 connections without leaking fds',
      async () => {
        const server = await startServer({ echo: true });
        const settle = async (): Promise<void> => {
          await until(() => server.transports.every((s) => s.state === 'closed'), 'server transports to close');
          for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        };
        // Warm up once so lazily created loop resources are not counted as a leak.
        const warm = await connect(server);
        await warm.close();
        await settle();
        const before = fdCount();
        const batch = 50;
        for (let k = 0; k < 1000; k += batch) {
          const ts = await Promise.all(Array.from({ length: batch }, () => connect(server)));
          await Promise.all(ts.map((t) => t.close()));
          open.length = 0;
        }
        await settle();
        expect(server.transports).toHaveLength(1001);
        const after = fdCount();
        // Slack of 4 fds for anything the runtime opens on its own meanwhile (it is not per connection).
        expect(after - before).toBeLessThanOrEqual(4);
      },
      ms(60_000),
    );

    it(
      'backpressure: send returns false under a stalled reader, the queue is bounded, drain fires',
      async () => {
        const server = await startServer({ paused: true });
        const hwm = 256 * 1024;
        const cap = 4 * 1024 * 1024;
        const client = new Collector();
        let drained: (() => void) | undefined;
        client.onDrain = () => {
          client.drains++;
          drained?.();
        };
        const t = await connect(server, client, { highWaterMark: hwm, maxQueuedBytes: cap });
        const body = 16 * 1024;
        let sent = 0;
        let stalled = false;
        // What send() saw each time it said false: the transport's own accounting, whatever the kernel buffers.
        const queuedAtFalse: number[] = [];
        // Keep the sender honest: after false, wait for onDrain. With the reader paused the OS buffers fill up
        // and the drain stops coming; that is the stall. How much the kernel takes first depends on its socket
        // buffer sizing (autotuning can grow them by megabytes), so nothing below depends on that amount.
        while (sent * body < 512 * 1024 * 1024) {
          let ok = true;
          while (ok) ok = t.send(u32Frame(sent++, body - 4 - FRAME_HEADER_SIZE));
          queuedAtFalse.push(t.queuedBytes);
          const got = await new Promise<boolean>((resolve) => {
            drained = () => resolve(true);
            setTimeout(() => resolve(false), 300);
          });
          if (!got) {
            stalled = true;
            break;
          }
        }
        expect(stalled).toBe(true);
        expect(server.handler.frames).toHaveLength(0); // the reader really is stalled
        // false exactly when the queue passed the mark, by at most the frame that passed it.
        for (const q of queuedAtFalse) {
          expect(q).toBeGreaterThan(hwm);
          expect(q).toBeLessThanOrEqual(hwm + body);
        }
        // No drain came, so the queue is still above the drain point (half the mark); the kernel may have taken
        // some of it since send() said false, but never enough to drain it.
        expect(t.queuedBytes).toBeGreaterThan(hwm / 2);
        // The hard cap holds: past it, send() refuses instead of growing the queue.
        let refused: unknown;
        try {
          for (;;) {
            t.send(u32Frame(sent, body - 4 - FRAME_HEADER_SIZE));
            sent++;
          }
        } catch (e) {
          refused = e;
        }
        expect(refused).toBeInstanceOf(SendFailedError);
        expect(t.queuedBytes).toBeLessThanOrEqual(cap);
        const drainsBefore = client.drains;
        const wait = new Promise<void>((resolve) => {
          drained = resolve;
        });
        server.transports[0]!.resume();
        await wait;
        expect(client.drains).toBe(drainsBefore + 1);
        await until(() => server.handler.frames.length === sent, 'every accepted frame to arrive');
        for (let i = 0; i < sent; i++) expect(server.handler.frames[i]!.readUInt32LE(0)).toBe(i);
        expect(t.queuedBytes).toBe(0);
      },
      ms(60_000),
    );

    it('invalidate fails frames queued while connecting with their tags', async () => {
      const server = await startServer();
      const client = new Collector();
      const t = Transport.connect(server.address, client, { backends });
      open.push(t);
      expect(t.state).toBe('connecting');
      t.send(u32Frame(0), 'a');
      t.send(u32Frame(1)); // untagged: not listed
      t.send(u32Frame(2), 'c');
      const reason = new SendFailedError('given up');
      t.invalidate(reason);
      expect(t.state).toBe('closed');
      expect(client.closes).toEqual([{ t, error: reason, unsent: ['a', 'c'] }]);
      await expect(t.ready).rejects.toBe(reason);
      t.invalidate(new SendFailedError('again')); // idempotent: no second onClose
      expect(client.closes).toHaveLength(1);
    });

    it(
      'invalidate under a stalled reader reports exactly the frames the peer never got',
      async () => {
        const server = await startServer({ paused: true });
        const client = new Collector();
        const t = await connect(server, client, { highWaterMark: 64 * 1024 });
        const body = 32 * 1024;
        let sent = 0;
        // Fill until frames stay queued in the transport (the OS buffers are full).
        for (let round = 0; round < 2000; round++) {
          for (let i = 0; i < 16; i++, sent++) t.send(u32Frame(sent, body), sent);
          await new Promise((r) => setTimeout(r, 1));
          if (t.queuedBytes > 8 * body) break;
        }
        expect(t.queuedBytes).toBeGreaterThan(8 * body);
        t.invalidate(new SocketClosedError('gave up on the peer'));
        const unsent = client.closes[0]!.unsent as number[];
        expect(unsent.length).toBeGreaterThan(0);
        // A contiguous tail of what was sent, in order.
        const first = unsent[0]!;
        expect(unsent).toEqual(Array.from({ length: sent - first }, (_, i) => first + i));
        // Everything not reported as unsent reaches the peer once it reads again.
        server.transports[0]!.resume();
        await until(() => server.handler.closes.length === 1, 'server to see the end');
        const received = server.handler.frames.length;
        expect(received).toBeGreaterThanOrEqual(first);
        for (let i = 0; i < received; i++) expect(server.handler.frames[i]!.readUInt32LE(0)).toBe(i);
      },
      ms(60_000),
    );

    it('a failed connect reports ConnectFailedError naming the peer, with queued tags', async () => {
      const listener = await backend.listen(setup.address(), {}, () => {});
      const addr = listener.address;
      await listener.close();
      const client = new Collector();
      const t = Transport.connect(addr, client, { backends });
      t.send(u32Frame(1), 'x');
      await expect(t.ready).rejects.toMatchObject({ code: StatusCode.ConnectFailed, peer: formatAddress(addr) });
      expect(client.closes).toHaveLength(1);
      expect(client.closes[0]!.unsent).toEqual(['x']);
      expect(client.closes[0]!.error!.message).toContain(formatAddress(addr));
      expect(t.state).toBe('closed');
    });

    it('an aborted connect closes with the abort as the cause', async () => {
      const server = await startServer();
      const ac = new AbortController();
      const client = new Collector();
      const t = Transport.connect(server.address, client, { signal: ac.signal, backends });
      ac.abort(new Error('caller gave up'));
      await t.closed;
      expect(client.closes[0]!.error!.code).toBe(StatusCode.ConnectFailed);
      expect(client.closes[0]!.error!.message).toMatch(/aborted: caller gave up/);
    });

    it('graceful close waits for the queue to flush, then ends', async () => {
      const server = await startServer();
      const client = new Collector();
      const t = await connect(server, client);
      const n = 2000;
      for (let i = 0; i < n; i++) t.send(u32Frame(i, 1000), i);
      await t.close();
      expect(client.closes).toEqual([{ t, error: undefined, unsent: [] }]);
      await until(() => server.handler.frames.length === n, 'all frames at the server');
      await until(() => server.handler.closes.length === 1, 'server close');
      // For the server the peer went away: SocketClosedError, but nothing cut mid-frame.
      expect(server.handler.closes[0]!.error).toBeInstanceOf(SocketClosedError);
      expect(server.handler.closes[0]!.error!.message).not.toMatch(/mid-frame/);
    });

    it('tracks activity in lastActiveAt', async () => {
      const server = await startServer({ echo: true });
      const client = new Collector();
      const t = await connect(server, client);
      const t0 = t.lastActiveAt;
      await new Promise((r) => setTimeout(r, 20));
      t.send(u32Frame(1));
      await until(() => client.frames.length === 1, 'echo');
      expect(t.lastActiveAt).toBeGreaterThan(t0);
      expect(FfnetError.is(new SocketClosedError('x'))).toBe(true);
    });
  });
}
