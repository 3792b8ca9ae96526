import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConnectFailedError,
  DataCorruptionError,
  encodeFrame,
  type FfnetError,
  InvalidArgError,
  InvalidFormatError,
  PermissionDeniedError,
  ResourceExhaustedError,
  SocketClosedError,
  TimeoutError,
} from '@ffnet/serde';
import { type BackendListener, type BackendSocket, shmAddress, Transport, type TransportHandler } from '@ffnet/transport';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CaptureLogger } from '../../common/test/fixtures/log-capture.js';
import { until } from '../../transport/test/compliance.js';
import { DEFAULT_RING_BYTES, DEFAULT_THRESHOLD_BYTES, shm } from '../src/index.js';
import type { ShmSocket } from '../src/socket.js';
import { hello, rawPeer, segment, sendHello } from './fixtures-hostile.js';

const dir = mkdtempSync(join(tmpdir(), 'ffnet-shm-t-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const addr = () => shmAddress(join(dir, `t${n++}.sock`));

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

interface Accepted {
  readonly sock: BackendSocket;
  readonly data: Buffer[];
  close?: FfnetError | undefined;
  closed: boolean;
}

async function listen(opts: Parameters<typeof shm>[0] = {}, log?: CaptureLogger) {
  const backend = shm(opts);
  const accepted: Accepted[] = [];
  const listener: BackendListener = await backend.listen(addr(), log ? { logger: log } : {}, (sock) => {
    const a: Accepted = { sock, data: [], closed: false };
    sock.setHandlers({
      data: (c) => a.data.push(Buffer.from(c)),
      drain() {},
      written() {},
      close: (e) => {
        a.close = e;
        a.closed = true;
      },
    });
    accepted.push(a);
  });
  cleanups.push(() => listener.close());
  cleanups.push(() => {
    for (const a of accepted) a.sock.destroy();
  });
  return { backend, listener, accepted };
}

class Frames implements TransportHandler {
  frames: Buffer[] = [];
  closes: (FfnetError | undefined)[] = [];
  echo = false;
  onFrame(t: Transport, body: Buffer, compressed: boolean): void {
    if (this.echo) t.send(encodeFrame(body, compressed));
    else this.frames.push(Buffer.from(body));
  }
  onClose(_t: Transport, e: FfnetError | undefined): void {
    this.closes.push(e);
  }
}

/** A Transport serving on shm() (default options) and a raw ShmSocket dialling it, whose writes are frames. */
async function rawClientToTransport() {
  const server = new Frames();
  const b = shm();
  const serverSocks: ShmSocket[] = [];
  const l = await b.listen(addr(), {}, (s) => {
    serverSocks.push(s as ShmSocket);
    const t2 = Transport.adopt(s, server);
    cleanups.push(() => t2.invalidate(new SocketClosedError('test cleanup')));
  });
  cleanups.push(() => l.close());
  const sock = (await b.connect(l.address)) as ShmSocket;
  cleanups.push(() => sock.destroy());
  sock.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
  return { server, serverSocks, sock };
}

describe('shm()', () => {
  it('is usable here, with its defaults, and checks its options', () => {
    const b = shm();
    expect(b.scheme).toBe('shm');
    expect(b.available()).toEqual({ ok: true });
    expect(b.thresholdBytes).toBe(DEFAULT_THRESHOLD_BYTES);
    expect(b.ringBytes).toBe(DEFAULT_RING_BYTES);
    expect(b.connectTimeoutMs).toBe(1000);
    expect(() => shm({ ringBytes: 1000 })).toThrow(InvalidArgError);
    expect(() => shm({ thresholdBytes: 0 })).toThrow(InvalidArgError);
    expect(() => shm({ maxSegmentBytes: 2 ** 31 })).toThrow(InvalidArgError);
  });

  it('moves large frames through the rings both ways, bytes equal, and small ones inline', async () => {
    const server = new Frames();
    server.echo = true;
    const b = shm();
    const serverSocks: ShmSocket[] = [];
    const l = await b.listen(addr(), {}, (s) => {
      serverSocks.push(s as ShmSocket);
      cleanups.push(() => t2.invalidate(new SocketClosedError('test cleanup')));
      const t2 = Transport.adopt(s, server);
    });
    cleanups.push(() => l.close());
    const client = new Frames();
    const t = Transport.connect(l.address, client, { backends: [b] });
    cleanups.push(() => t.invalidate(new SocketClosedError('test cleanup')));
    await t.ready;
    const bodies = [Buffer.from('small'), ...[1, 2, 3].map((i) => Buffer.alloc(1024 * 1024 + i).fill(i * 37))];
    for (const body of bodies) t.send(encodeFrame(body));
    await until(() => client.frames.length === bodies.length, 'echoes');
    for (const [i, f] of client.frames.entries()) expect(Buffer.compare(f, bodies[i]!)).toBe(0);
    const cs = (t as unknown as { sock: ShmSocket }).sock.stats();
    const ss = serverSocks[0]!.stats();
    // The three large bodies crossed the rings each way; the unix socket carried headers and the small frame only.
    expect(cs.ringBytesSent).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(cs.inlineBytesSent).toBeLessThan(64 * 1024);
    expect(ss.ringBytesReceived).toBe(cs.ringBytesSent);
    expect(ss.ringBytesSent).toBeGreaterThanOrEqual(3 * 1024 * 1024);
    expect(cs.ringBytesReceived).toBe(ss.ringBytesSent);
  });

  it('with the defaults, eight 1 MiB frames in flight at once all cross the ring, none inline', async () => {
    // W3/W4 keep 8 calls of 1 MiB in flight. A default ring smaller than that sent what did not fit inline on the
    // socket, and the receiver paid for both paths (the ring fix of issue 15).
    const { server, serverSocks, sock } = await rawClientToTransport();
    const frames = Array.from({ length: 8 }, (_, i) => encodeFrame(Buffer.alloc(1024 * 1024, i + 1)));
    // One write, before the server can read or credit anything back.
    sock.write(frames);
    await until(() => server.frames.length === 8, 'the eight frames');
    for (const [i, f] of server.frames.entries()) expect(f.equals(Buffer.alloc(1024 * 1024, i + 1))).toBe(true);
    const total = frames.reduce((s, f) => s + f.length, 0);
    expect(sock.stats().ringBytesSent).toBe(total);
    expect(sock.stats().inlineBytesSent).toBe(0);
    // Each frame's header is in the ring, so the first piece of each is staged until the decoder knows the frame;
    // from then on the ring bytes still to come count toward the body's share and land in the body once.
    expect(serverSocks[0]!.stats().ringBytesStaged).toBe(8 * 64 * 1024);
  });

  it('a ring extent after its frame header goes straight into the body: nothing is staged', async () => {
    const { server, serverSocks, sock } = await rawClientToTransport();
    // As serde writes a large message: header and envelope in a small buffer (inline), the payload on its own.
    const frames = [1, 2, 3].map((i) => encodeFrame(Buffer.alloc(1024 * 1024 + 100, i)));
    sock.write(frames.flatMap((f) => [f.subarray(0, 108), f.subarray(108)]));
    await until(() => server.frames.length === 3, 'the three frames');
    for (const [i, f] of server.frames.entries()) expect(f.equals(Buffer.alloc(1024 * 1024 + 100, i + 1))).toBe(true);
    const st = serverSocks[0]!.stats();
    expect(st.ringBytesReceived).toBe(3 * 1024 * 1024);
    expect(st.ringBytesStaged).toBe(0);
  });

  it('a frame completed by a ring extent is delivered under a new readCount, not the one of the read before', async () => {
    // The Processor reads the clock once per readCount: a frame delivered under the previous read's count would get
    // that read's receive time.
    const seen: number[] = [];
    let server: Transport | undefined;
    const b = shm();
    const l = await b.listen(addr(), {}, (s) => {
      server = Transport.adopt(s, { onFrame: (t) => seen.push(t.readCount), onClose() {} });
      cleanups.push(() => server!.invalidate(new SocketClosedError('test cleanup')));
    });
    cleanups.push(() => l.close());
    const sock = (await b.connect(l.address)) as ShmSocket;
    cleanups.push(() => sock.destroy());
    sock.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
    const f = encodeFrame(Buffer.alloc(1024 * 1024 + 100, 9));
    // The header and envelope inline first, in a read of their own; the payload later, through the ring.
    sock.write([f.subarray(0, 108)]);
    await until(() => server !== undefined && server.readCount > 0, 'the header to be read');
    const headerRead = server!.readCount;
    sock.write([f.subarray(108)]);
    await until(() => seen.length === 1, 'the frame');
    expect(sock.stats().ringBytesSent).toBe(f.length - 108);
    expect(seen[0]).toBeGreaterThan(headerRead);
  });

  it('an owner with copyIn() takes ring extents through it, one pass, and the ring is credited once they are copied', async () => {
    const b = shm();
    const inline: Buffer[] = [];
    const copies: number[] = [];
    let copiedBytes = 0;
    const l = await b.listen(addr(), {}, (s) => {
      cleanups.push(() => s.destroy());
      s.setHandlers({
        data: (c) => inline.push(Buffer.from(c)),
        copyIn: (src, start, end, copied) => {
          copies.push(end - start);
          // Check what the extent holds while it is ours to read, as an owner copying it would.
          expect(src.subarray(start, end).every((x) => x === 0x42)).toBe(true);
          copied(end - start);
          copiedBytes += end - start;
          return end - start;
        },
        drain() {},
        written() {},
        close() {},
      });
    });
    cleanups.push(() => l.close());
    const sock = (await b.connect(l.address)) as ShmSocket;
    cleanups.push(() => sock.destroy());
    sock.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
    const payload = Buffer.alloc(8 * 1024 * 1024, 0x42);
    // 3 × 8 MiB through a 16 MiB ring: the third fits only if the first was credited back.
    for (let round = 1; round <= 3; round++) {
      sock.write([Buffer.from('head'), payload]);
      await until(() => copiedBytes === round * payload.length, `round ${round}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(copies).toEqual([payload.length, payload.length, payload.length]);
    expect(Buffer.concat(inline).toString()).toBe('headheadhead');
    expect(sock.stats().inlineBytesSent).toBe(12);
    expect(sock.stats().ringBytesSent).toBe(3 * payload.length);
  });

  it('a frame whose ring bytes fail the CRC closes its connection with DataCorruptionError', async () => {
    const server = new Frames();
    const b = shm();
    const l = await b.listen(addr(), {}, (s) => {
      const t2 = Transport.adopt(s, server);
      cleanups.push(() => t2.invalidate(new SocketClosedError('test cleanup')));
    });
    cleanups.push(() => l.close());
    const sock = (await b.connect(l.address)) as ShmSocket;
    cleanups.push(() => sock.destroy());
    let closed = false;
    sock.setHandlers({
      data() {},
      drain() {},
      written() {},
      close: () => {
        closed = true;
      },
    });
    const frame = encodeFrame(Buffer.alloc(256 * 1024, 7));
    frame[frame.length - 10]! ^= 1;
    sock.write([frame]);
    await until(() => server.closes.length === 1 && closed, 'the corrupt frame to close the connection');
    expect(server.closes[0]).toBeInstanceOf(DataCorruptionError);
    expect(sock.stats().ringBytesSent).toBe(frame.length);
  });

  it('a client dialling a plain unix listener fails to connect instead of hanging', async () => {
    const { unix } = await import('@ffnet/transport');
    const path = join(dir, `plain${n++}.sock`);
    const l = await unix().listen({ scheme: 'unix', host: '', port: 0, path }, {}, (s) => {
      s.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
      cleanups.push(() => s.destroy());
    });
    cleanups.push(() => l.close());
    const err = await shm({ handshakeTimeoutMs: 300 })
      .connect(shmAddress(path))
      .catch((e: FfnetError) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as FfnetError).peer).toBe(`shm://${path}`);
  });
});

describe('hostile peers', () => {
  async function refused(log: CaptureLogger) {
    const rec = await log.waitFor('shm hello refused');
    return rec.fields.err as FfnetError;
  }

  async function stillServes(server: Awaited<ReturnType<typeof listen>>): Promise<void> {
    const good = await shm({ ringBytes: 65536 }).connect(server.listener.address);
    cleanups.push(() => good.destroy());
    good.setHandlers({ data() {}, drain() {}, written() {}, close() {} });
    good.write([Buffer.from('ok')]);
    await until(() => server.accepted.some((a) => a.data.length > 0), 'a good connection after the refusal');
  }

  const cases: [string, () => { data: Buffer; fds: number[] }, number, new (...a: never[]) => FfnetError][] = [
    ['unsealed segments', () => ({ data: hello(65536, 65536), fds: [segment(65536, 0), segment(65536, 0)] }), 3, PermissionDeniedError],
    ['segments that can still shrink', () => ({ data: hello(65536, 65536), fds: [segment(65536, 4 | 1), segment(65536)] }), 3, PermissionDeniedError],
    ['a segment over maxSegmentBytes', () => ({ data: hello(65536, 4 << 20), fds: [segment(65536), segment(4 << 20)] }), 2, ResourceExhaustedError],
    ['a segment larger than the hello says', () => ({ data: hello(65536, 65536), fds: [segment(65536), segment(131072)] }), 1, InvalidFormatError],
    ['one fd instead of two', () => ({ data: hello(65536, 65536), fds: [segment(65536)] }), 1, InvalidFormatError],
    ['no fds at all', () => ({ data: hello(65536, 65536), fds: [] }), 1, InvalidFormatError],
    ['a bad magic', () => ({ data: hello(65536, 65536, 0x12345678), fds: [segment(65536), segment(65536)] }), 1, InvalidFormatError],
  ];
  for (const [what, make, status, Err] of cases) {
    it(`refuses ${what} with ${Err.name} naming the peer; only that connection closes`, async () => {
      const log = new CaptureLogger();
      const server = await listen({ maxSegmentBytes: 1 << 20 }, log);
      const p = await rawPeer(server.listener.address.path);
      cleanups.push(() => p.sock.destroy());
      const { data, fds } = make();
      sendHello(p, data, fds);
      await p.closed;
      expect(Buffer.concat(p.got)).toEqual(Buffer.from([4, status]));
      const err = await refused(log);
      expect(err).toBeInstanceOf(Err);
      expect(err.peer).toBe(`shm://${server.listener.address.path}`);
      expect(server.accepted).toHaveLength(0);
      await stillServes(server);
    });
  }

  it('a client gets ConnectFailedError with the reason when the server refuses its segments', async () => {
    const server = await listen({ maxSegmentBytes: 1 << 20 });
    const err = await shm({ ringBytes: 2 << 20 })
      .connect(server.listener.address)
      .catch((e: FfnetError) => e);
    expect(err).toBeInstanceOf(ConnectFailedError);
    expect((err as FfnetError).message).toMatch(/maxSegmentBytes/);
  });

  it('closes a connection that sends no hello within handshakeTimeoutMs', async () => {
    const log = new CaptureLogger();
    const server = await listen({ handshakeTimeoutMs: 100 }, log);
    const p = await rawPeer(server.listener.address.path);
    cleanups.push(() => p.sock.destroy());
    await p.closed;
    expect(await refused(log)).toBeInstanceOf(TimeoutError);
  });

  it('bounds hellos in progress: past maxPendingHandshakes new connections close at once, and a slot frees when one ends', async () => {
    const server = await listen({ maxPendingHandshakes: 2, handshakeTimeoutMs: 20_000 });
    const silent = [await rawPeer(server.listener.address.path), await rawPeer(server.listener.address.path)];
    for (const p of silent) cleanups.push(() => p.sock.destroy());
    const third = await rawPeer(server.listener.address.path);
    cleanups.push(() => third.sock.destroy());
    // Closed by the cap, long before the 20 s hello deadline would close it.
    const early = await Promise.race([third.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3000))]);
    expect(early).toBe(true);
    silent[0]!.sock.destroy();
    await silent[0]!.closed;
    // One slot is free again: a real client gets through.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await shm({ ringBytes: 65536 })
        .connect(server.listener.address)
        .then((s) => {
          s.destroy();
          return true;
        })
        .catch(() => false);
      if (!ok) await new Promise((r) => setTimeout(r, 20));
    }
    expect(ok).toBe(true);
  });

  const afterHello: [string, (size: number) => Buffer][] = [
    ['a ring descriptor past the end of the segment', (size) => rec(2, size - 10, 100)],
    ['a zero-length ring descriptor', () => rec(2, 0, 0)],
    ['a descriptor whose offset + length overflows', () => rec(2, 0xffff_fff0, 0x100)],
    ['a credit for bytes never sent', () => rec(3, 1000)],
    ['an unknown record type', () => Buffer.from([9, 0, 0, 0, 0])],
  ];
  function rec(type: number, a: number, b?: number): Buffer {
    const r = Buffer.alloc(b === undefined ? 5 : 9);
    r[0] = type;
    r.writeUInt32LE(a, 1);
    if (b !== undefined) r.writeUInt32LE(b, 5);
    return r;
  }
  for (const [what, bytes] of afterHello) {
    it(`closes only the connection that sends ${what}, with InvalidFormatError naming the peer`, async () => {
      const server = await listen();
      const size = 65536;
      const p = await rawPeer(server.listener.address.path);
      cleanups.push(() => p.sock.destroy());
      sendHello(p, hello(size, size), [segment(size), segment(size)]);
      await until(() => Buffer.concat(p.got).length >= 2, 'the ACK');
      expect(Buffer.concat(p.got).subarray(0, 2)).toEqual(Buffer.from([4, 0]));
      p.sock.write(bytes(size));
      await until(() => server.accepted[0]?.closed === true, 'the server side to close');
      const e = server.accepted[0]!.close;
      expect(e).toBeInstanceOf(InvalidFormatError);
      expect(e!.peer).toBe(`shm://${server.listener.address.path}`);
      expect(server.accepted[0]!.data).toHaveLength(0);
      await p.closed;
      await stillServes(server);
    });
  }

  it('copies ring bytes out before delivering them: rewriting the ring afterwards changes nothing received', async () => {
    const { createRequire } = await import('node:module');
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const mmap = koffi.load('libc.so.6').func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
    const server = await listen();
    const size = 65536;
    const p = await rawPeer(server.listener.address.path);
    cleanups.push(() => p.sock.destroy());
    const c2s = segment(size);
    const { dup } = { dup: koffi.load('libc.so.6').func('int dup(int)') };
    const keep = dup(c2s) as number;
    const ring = Buffer.from(koffi.view(mmap(null, size, 3, 1, keep, 0) as never, size));
    sendHello(p, hello(size, size), [c2s, segment(size)]);
    await until(() => Buffer.concat(p.got).length >= 2, 'the ACK');
    ring.fill(0xaa, 0, 1000);
    p.sock.write(rec(2, 0, 1000));
    await until(() => server.accepted[0]?.data.length === 1, 'the extent');
    ring.fill(0x55, 0, 1000);
    expect(server.accepted[0]!.data[0]).toEqual(Buffer.alloc(1000, 0xaa));
  });
});
